#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

#[test]
fn role_arn_shape() {
    assert!(looks_like_role_arn("arn:aws:iam::123456789012:role/app"));
    assert!(looks_like_role_arn(
        "arn:aws-cn:iam::123456789012:role/path/app@x"
    ));
    assert!(!looks_like_role_arn("app"));
    assert!(!looks_like_role_arn("arn:aws:iam::12345:role/app"));
    assert!(!looks_like_role_arn("arn:aws:iam::123456789012:user/app"));
}

#[test]
fn go_bools_and_expirations() {
    assert_eq!(parse_go_bool("t"), Some(true));
    assert_eq!(parse_go_bool("yes"), None);
    assert_eq!(parse_expiration("100"), Some(600));
    assert_eq!(parse_expiration("abc"), None);
    assert_eq!(parse_expiration("90000"), Some(90000));
}

#[test]
fn windows_paths() {
    assert_eq!(
        token_file_value(true, DEFAULT_TOKEN_MOUNT_PATH, "token"),
        "C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token"
    );
}

#[test]
fn jitter_range() {
    let j = random_jitter();
    for _ in 0..1000 {
        let v = j();
        assert!((MIN_JITTERED_EXPIRATION..=DEFAULT_TOKEN_EXPIRATION).contains(&v));
    }
}
