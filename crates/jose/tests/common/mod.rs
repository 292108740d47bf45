//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_jose::{JwkSet, KeyAlgorithm, SigningKey, Validation, jwks_json};
use serde_json::{Value, json};

pub const ISS: &str = "https://oidc.podiam.example/id/5C6F1D2A";
pub const NOW: i64 = 1_760_000_000;
pub const SUB: &str = "system:serviceaccount:payments:api";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn cached(cell: &'static OnceLock<SigningKey>, alg: KeyAlgorithm) -> &'static SigningKey {
    cell.get_or_init(|| SigningKey::generate(alg).unwrap())
}

/// Victim/issuer RSA key "A".
pub fn rsa_a() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    cached(&K, KeyAlgorithm::Rs256)
}

/// Second issuer RSA key "B" (rotation partner).
pub fn rsa_b() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    cached(&K, KeyAlgorithm::Rs256)
}

/// Attacker's RSA key, never in any trusted set.
pub fn rsa_attacker() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    cached(&K, KeyAlgorithm::Rs256)
}

pub fn ec_a() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    cached(&K, KeyAlgorithm::Es256)
}

pub fn ec_attacker() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    cached(&K, KeyAlgorithm::Es256)
}

pub fn set_of(keys: &[&SigningKey]) -> JwkSet {
    let set = JwkSet::from_json(jwks_json(keys).as_bytes()).unwrap();
    assert_eq!(set.len(), keys.len(), "skipped: {:?}", set.skipped());
    set
}

pub fn audiences() -> Vec<String> {
    vec!["sts.amazonaws.com".to_owned()]
}

pub fn validation(aud: &[String]) -> Validation<'_> {
    Validation::new(ISS, aud, NOW)
}

/// Claims shaped like a Kubernetes projected service-account token.
pub fn k8s_claims() -> Value {
    json!({
        "aud": ["sts.amazonaws.com"],
        "exp": NOW + 86_400,
        "iat": NOW - 60,
        "iss": ISS,
        "jti": "7d1c3d0e-6a64-4bd1-8c43-0c8f1b3f3a11",
        "kubernetes.io": {
            "namespace": "payments",
            "node": {"name": "ip-10-0-1-23.ec2.internal", "uid": "5b7f6f2e-1a3c-4f5e-9d33-0a1b2c3d4e5f"},
            "pod": {"name": "api-7d9c8b6f5-x2x9q", "uid": "0f4d2a11-3b6c-4d88-a1e2-6c7d8e9f0a1b"},
            "serviceaccount": {"name": "api", "uid": "c0ffee00-1234-4abc-8def-0123456789ab"},
            "warnafter": NOW + 3_540
        },
        "nbf": NOW - 60,
        "sub": SUB
    })
}

pub fn with_claim(name: &str, value: Value) -> Value {
    let mut c = k8s_claims();
    c.as_object_mut().unwrap().insert(name.to_owned(), value);
    c
}

pub fn without_claim(name: &str) -> Value {
    let mut c = k8s_claims();
    c.as_object_mut().unwrap().remove(name);
    c
}

/// Builds a compact JWS from raw header/claims JSON text, signing the exact signing input.
pub fn craft(header: &str, claims: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// Signs `claims` with `key` under an arbitrary header.
pub fn craft_with(key: &SigningKey, header: &Value, claims: &Value) -> String {
    craft(&header.to_string(), &claims.to_string(), |m| {
        key.sign_raw(m).unwrap()
    })
}

/// Flips one character of a token segment (0 = header, 1 = payload, 2 = signature) at
/// character `pos` to a different base64url character, keeping the encoding canonical where
/// possible by only touching interior characters.
pub fn tamper(token: &str, segment: usize, pos: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let seg = &mut parts[segment];
    let mut chars: Vec<char> = seg.chars().collect();
    chars[pos] = if chars[pos] == 'A' { 'B' } else { 'A' };
    *seg = chars.into_iter().collect();
    parts.join(".")
}
