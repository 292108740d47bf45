#![allow(clippy::unwrap_used)]

use super::provider_key;
use super::validate::{policy_chars, validate_thumbprints};

#[test]
fn policy_chars_ignores_whitespace_outside_strings() {
    assert_eq!(policy_chars("{ \"a b\" : 1 }"), "{\"a b\":1}".len());
    assert_eq!(policy_chars("{\"a\\\" b\":\n 1}"), "{\"a\\\" b\":1}".len());
}

#[test]
fn provider_keys() {
    assert_eq!(
        provider_key("https://oidc.example.com/id/ABC/"),
        "oidc.example.com/id/ABC"
    );
    assert_eq!(provider_key("https://h"), "h");
}

#[test]
fn thumbprint_rules() {
    assert!(validate_thumbprints(vec!["A".repeat(40)]).is_ok());
    assert_eq!(
        validate_thumbprints(vec!["a".repeat(39)]).unwrap_err().code,
        crate::error::ErrorCode::ValidationError
    );
    assert_eq!(
        validate_thumbprints(vec!["g".repeat(40)]).unwrap_err().code,
        crate::error::ErrorCode::InvalidInput
    );
    assert_eq!(
        validate_thumbprints(vec!["a".repeat(40); 6])
            .unwrap_err()
            .code,
        crate::error::ErrorCode::LimitExceeded
    );
}
