//! Property tests: parsing never panics; sign → parse round-trips claims.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use podiam_jose::{JwkSet, UnverifiedToken};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("\\PC{0,16}", json_value(), 0..10)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = UnverifiedToken::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_token_shaped_strings(s in "[A-Za-z0-9_=+/.-]{0,400}") {
        let _ = UnverifiedToken::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_base64_of_arbitrary_bytes(
        h in prop::collection::vec(any::<u8>(), 0..64),
        p in prop::collection::vec(any::<u8>(), 0..256),
        sig in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let t = format!("{}.{}.{}", b64(&h), b64(&p), b64(&sig));
        let _ = UnverifiedToken::parse(&t);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_json_segments(
        h in json_value(),
        p in json_value(),
        sig in prop::collection::vec(any::<u8>(), 1..80),
    ) {
        let t = format!("{}.{}.{}", b64(h.to_string().as_bytes()), b64(p.to_string().as_bytes()), b64(&sig));
        if let Ok(parsed) = UnverifiedToken::parse(&t) {
            prop_assert!(h.is_object() && p.is_object());
            let keys = set_of(&[ec_a()]);
            let _ = keys.verify_signature(parsed.alg(), parsed.kid(), parsed.signing_input().as_bytes(), parsed.signature());
        }
    }

    #[test]
    fn jwks_parsing_never_panics(doc in json_value(), raw in any::<Vec<u8>>()) {
        let wrapped = serde_json::json!({"keys": [doc.clone()]}).to_string();
        let _ = JwkSet::from_json(wrapped.as_bytes());
        let _ = JwkSet::from_json(doc.to_string().as_bytes());
        let _ = JwkSet::from_json(&raw);
    }
}

proptest! {
    // Signing is comparatively slow (RSA especially): fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn sign_then_parse_round_trips_claims(c in claims(), rsa in any::<bool>()) {
        let key = if rsa { rsa_a() } else { ec_a() };
        let token = key.sign(&Value::Object(c.clone())).unwrap();
        let parsed = UnverifiedToken::parse(&token).unwrap();
        prop_assert_eq!(parsed.claims(), &c);
        prop_assert_eq!(parsed.kid(), Some(key.kid()));
        let keys = set_of(&[rsa_a(), ec_a()]);
        let used = keys
            .verify_signature(parsed.alg(), parsed.kid(), parsed.signing_input().as_bytes(), parsed.signature())
            .unwrap();
        prop_assert_eq!(used.kid(), Some(key.kid()));
    }
}
