//! Signing side, key import/export, kid, JWK sets, and full sign → verify round trips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use aws_lc_rs::digest;
use common::*;
use podiam_jose::{
    Algorithm, JwkError, JwkSet, JwtError, KeyAlgorithm, KeyError, KeyType, MAX_JWKS_KEYS,
    MAX_JWKS_LEN, SigningKey, UnverifiedToken, Validation, jwks_json, pem, verify,
};
use serde_json::{Value, json};

const RSA_PKCS8: &str = include_str!("fixtures/rsa2048.pkcs8.pem");
const RSA_PKCS1: &str = include_str!("fixtures/rsa2048.pkcs1.pem");
const RSA_PUB: &str = include_str!("fixtures/rsa2048.pub.pem");
const RSA_KID: &str = "oVRG-QG63Xs7Of3lheqMGQeaL6Wd3UpazMRQcuYP2Hc";
const P256_PKCS8: &str = include_str!("fixtures/p256.pkcs8.pem");
const P256_SEC1: &str = include_str!("fixtures/p256.sec1.pem");
const P256_KID: &str = "1BE1MQkucY5FHE_cEaCZCAdu6qi00QO8sT_uivqAph4";
const P384_PKCS8: &str = include_str!("fixtures/p384.pkcs8.pem");
const RSA1024_PKCS8: &str = include_str!("fixtures/rsa1024.pkcs8.pem");

fn run(token: &str, keys: &JwkSet) -> Result<podiam_jose::VerifiedClaims, JwtError> {
    let aud = audiences();
    verify(&UnverifiedToken::parse(token)?, keys, &validation(&aud))
}

// ---- DER helpers written independently of the crate (minimal DER encoder) ----

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(body.len()));
    out.extend_from_slice(body);
    out
}

fn der_uint(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

/// RFC 3279 / RFC 8017 SubjectPublicKeyInfo for rsaEncryption, as Go's
/// x509.MarshalPKIXPublicKey (and so kube-apiserver) produces it.
fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_encryption_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let alg_id = tlv(0x30, &[&rsa_encryption_oid[..], &[0x05, 0x00]].concat());
    let rsa_pub = tlv(0x30, &[der_uint(n), der_uint(e)].concat());
    let bit_string = tlv(0x03, &[&[0u8][..], &rsa_pub].concat());
    tlv(0x30, &[alg_id, bit_string].concat())
}

/// RFC 5480 SubjectPublicKeyInfo for a P-256 key (uncompressed point).
fn p256_spki(x: &[u8], y: &[u8]) -> Vec<u8> {
    let ec_public_key_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let p256_oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let alg_id = tlv(0x30, &[&ec_public_key_oid[..], &p256_oid[..]].concat());
    let point = [&[0x04u8][..], x, y].concat();
    let bit_string = tlv(0x03, &[&[0u8][..], &point].concat());
    tlv(0x30, &[alg_id, bit_string].concat())
}

fn kid_of(spki: &[u8]) -> String {
    b64(digest::digest(&digest::SHA256, spki).as_ref())
}

// ---- kid --------------------------------------------------------------------------------------

#[test]
fn rsa_kid_matches_kube_apiserver_algorithm() {
    let key = SigningKey::from_pem(RSA_PKCS8).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Rs256);
    // Known value computed with openssl (see fixtures/README.md).
    assert_eq!(key.kid(), RSA_KID);
    // Independently: hand-built PKIX DER from the JWK's n and e.
    let jwk = key.public_jwk();
    let spki = rsa_spki(
        &unb64(jwk["n"].as_str().unwrap()),
        &unb64(jwk["e"].as_str().unwrap()),
    );
    assert_eq!(spki, key.public_key_der());
    assert_eq!(kid_of(&spki), RSA_KID);
    // The public PEM is byte-identical to openssl's.
    assert_eq!(key.public_key_pem(), RSA_PUB);
    assert_eq!(pem::decode(pem::PUBLIC_KEY_LABEL, RSA_PUB).unwrap(), spki);
}

#[test]
fn ec_kid_matches_kube_apiserver_algorithm() {
    let key = SigningKey::from_pem(P256_PKCS8).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Es256);
    assert_eq!(key.kid(), P256_KID);
    let jwk = key.public_jwk();
    let spki = p256_spki(
        &unb64(jwk["x"].as_str().unwrap()),
        &unb64(jwk["y"].as_str().unwrap()),
    );
    assert_eq!(spki, key.public_key_der());
    assert_eq!(kid_of(&spki), P256_KID);
}

#[test]
fn generated_kids_are_sha256_of_spki() {
    for key in [rsa_a(), ec_a()] {
        assert_eq!(key.kid(), kid_of(key.public_key_der()));
        assert_eq!(key.kid().len(), 43);
        assert!(!key.kid().contains('='));
    }
    assert_ne!(rsa_a().kid(), rsa_b().kid());
}

// ---- import / export ---------------------------------------------------------------------------

#[test]
fn pkcs1_and_sec1_pem_import_to_the_same_keys() {
    assert_eq!(SigningKey::from_pem(RSA_PKCS1).unwrap().kid(), RSA_KID);
    assert_eq!(SigningKey::from_pem(P256_SEC1).unwrap().kid(), P256_KID);
}

#[test]
fn pkcs8_round_trips() {
    for key in [rsa_a(), ec_a()] {
        let der = key.to_pkcs8_der();
        let again = SigningKey::from_pkcs8_der(key.algorithm(), &der).unwrap();
        assert_eq!(again.kid(), key.kid());
        let pem_text = key.private_key_pem();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem_text.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem_text.lines().all(|l| l.len() <= 64));
        assert_eq!(pem::decode(pem::PRIVATE_KEY_LABEL, &pem_text).unwrap(), der);
        assert_eq!(SigningKey::from_pem(&pem_text).unwrap().kid(), key.kid());
        let pub_pem = key.public_key_pem();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        // A token signed by the re-imported key verifies under the original's JWKS.
        let token = again.sign(&k8s_claims()).unwrap();
        assert!(run(&token, &set_of(&[key])).is_ok());
    }
}

#[test]
fn generated_keys_have_the_promised_shapes() {
    let jwk = rsa_a().public_jwk();
    assert_eq!(unb64(jwk["n"].as_str().unwrap()).len(), 256);
    assert_eq!(jwk["e"], "AQAB");
    let set = set_of(&[rsa_a(), ec_a()]);
    assert_eq!(set.keys()[0].key_type(), KeyType::Rsa { bits: 2048 });
    assert_eq!(
        set.keys()[1].key_type(),
        KeyType::Ec(podiam_jose::Curve::P256)
    );
}

#[test]
fn wrong_key_types_are_refused() {
    let der = |p: &str| pem::decode(pem::PRIVATE_KEY_LABEL, p).unwrap();
    for (alg, pem_text, what) in [
        (KeyAlgorithm::Es256, P384_PKCS8, "p-384 as es256"),
        (KeyAlgorithm::Es256, RSA_PKCS8, "rsa as es256"),
        (KeyAlgorithm::Rs256, P256_PKCS8, "ec as rs256"),
        (KeyAlgorithm::Rs256, RSA1024_PKCS8, "rsa-1024"),
    ] {
        assert!(
            matches!(
                SigningKey::from_pkcs8_der(alg, &der(pem_text)),
                Err(KeyError::InvalidKey(_))
            ),
            "{what}"
        );
    }
    assert!(SigningKey::from_pem(P384_PKCS8).is_err());
    assert!(SigningKey::from_pem(RSA1024_PKCS8).is_err());
    assert!(matches!(
        SigningKey::from_pem(RSA_PUB),
        Err(KeyError::Pem(_))
    ));
    assert!(SigningKey::from_pkcs8_der(KeyAlgorithm::Rs256, b"garbage").is_err());
    assert!(SigningKey::from_pkcs8_der(KeyAlgorithm::Es256, &[]).is_err());
}

#[test]
fn sign_requires_an_object() {
    for bad in [json!([1]), json!("x"), json!(null), json!(1)] {
        assert_eq!(rsa_a().sign(&bad).unwrap_err(), KeyError::ClaimsNotObject);
    }
}

#[test]
fn debug_never_prints_key_material() {
    for key in [rsa_a(), ec_a()] {
        let dbg = format!("{key:?}");
        assert!(dbg.starts_with(&format!("SigningKey {{ kid: \"{}\", alg: ", key.kid())));
        assert!(dbg.ends_with(", .. }"));
        let body: String = key
            .private_key_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        for chunk in body.as_bytes().chunks(16) {
            assert!(!dbg.contains(std::str::from_utf8(chunk).unwrap()));
        }
    }
}

// ---- round trips --------------------------------------------------------------------------------

#[test]
fn rs256_and_es256_round_trip_with_kubernetes_claims() {
    let keys = set_of(&[rsa_a(), ec_a()]);
    for (key, alg) in [(rsa_a(), Algorithm::Rs256), (ec_a(), Algorithm::Es256)] {
        let token = key.sign(&k8s_claims()).unwrap();
        // Header exactly like kube-apiserver's: alg and kid, nothing else.
        let header = unb64(token.split('.').next().unwrap());
        assert_eq!(
            String::from_utf8(header).unwrap(),
            format!("{{\"alg\":\"{}\",\"kid\":\"{}\"}}", alg.name(), key.kid())
        );
        let parsed = UnverifiedToken::parse(&token).unwrap();
        assert_eq!(parsed.claims(), k8s_claims().as_object().unwrap());
        let aud = audiences();
        let v = verify(&parsed, &keys, &validation(&aud)).unwrap();
        assert_eq!(v.alg, alg);
        assert_eq!(v.kid.as_deref(), Some(key.kid()));
        assert_eq!(v.issuer, ISS);
        assert_eq!(v.subject.as_deref(), Some(SUB));
        assert_eq!(v.audiences, vec!["sts.amazonaws.com".to_owned()]);
        assert_eq!(v.matched_audience.as_deref(), Some("sts.amazonaws.com"));
        assert_eq!(v.expires_at, NOW + 86_400);
        assert_eq!(v.issued_at, NOW - 60);
        assert_eq!(v.not_before, Some(NOW - 60));
        assert_eq!(v.claims["kubernetes.io"]["serviceaccount"]["name"], "api");
        // The consuming form gives the same result.
        let owned = parsed.into_verified(&keys, &validation(&aud)).unwrap();
        assert_eq!(owned, v);
    }
}

#[test]
fn several_accepted_audiences() {
    let keys = set_of(&[rsa_a()]);
    let token = rsa_a()
        .sign(&with_claim(
            "aud",
            json!(["https://kubernetes.default.svc", "sts.amazonaws.com"]),
        ))
        .unwrap();
    let aud = vec!["other".to_owned(), "sts.amazonaws.com".to_owned()];
    let v = verify(
        &UnverifiedToken::parse(&token).unwrap(),
        &keys,
        &Validation::new(ISS, &aud, NOW),
    )
    .unwrap();
    assert_eq!(v.matched_audience.as_deref(), Some("sts.amazonaws.com"));
    assert_eq!(v.audiences.len(), 2);
}

// ---- claim rules through the whole pipeline --------------------------------------------------------

#[test]
fn claim_failures_after_a_valid_signature() {
    let keys = set_of(&[rsa_a()]);
    let cases: Vec<(Value, JwtError)> = vec![
        (with_claim("exp", json!(NOW - 301)), JwtError::Expired),
        (with_claim("exp", json!(NOW - 86_400)), JwtError::Expired),
        (with_claim("nbf", json!(NOW + 301)), JwtError::NotYetValid),
        (
            with_claim("iat", json!(NOW + 3600)),
            JwtError::InvalidClaim("iat"),
        ),
        (
            with_claim("exp", json!((NOW + 10).to_string())),
            JwtError::InvalidClaim("exp"),
        ),
        (
            with_claim("exp", json!(1.5e9)),
            JwtError::InvalidClaim("exp"),
        ),
        (with_claim("iat", json!("0")), JwtError::InvalidClaim("iat")),
        (without_claim("exp"), JwtError::MissingClaim("exp")),
        (without_claim("iat"), JwtError::MissingClaim("iat")),
        (without_claim("sub"), JwtError::MissingClaim("sub")),
        (without_claim("iss"), JwtError::MissingClaim("iss")),
        (without_claim("aud"), JwtError::MissingClaim("aud")),
        (
            with_claim("iss", json!(format!("{ISS}/"))),
            JwtError::WrongIssuer,
        ),
        (
            with_claim("iss", json!(&ISS[..ISS.len() - 1])),
            JwtError::WrongIssuer,
        ),
        (
            with_claim("iss", json!(format!("{ISS}x"))),
            JwtError::WrongIssuer,
        ),
        (
            with_claim("iss", json!(format!("x{ISS}"))),
            JwtError::WrongIssuer,
        ),
        (
            with_claim("aud", json!(["https://kubernetes.default.svc"])),
            JwtError::WrongAudience,
        ),
        (
            with_claim("aud", json!("sts.amazonaws.com.evil")),
            JwtError::WrongAudience,
        ),
        (with_claim("aud", json!([])), JwtError::InvalidClaim("aud")),
        (with_claim("aud", json!(1)), JwtError::InvalidClaim("aud")),
    ];
    for (claims, want) in cases {
        let token = rsa_a().sign(&claims).unwrap();
        assert_eq!(run(&token, &keys).unwrap_err(), want, "{claims}");
    }
}

#[test]
fn expiry_boundary_through_the_pipeline() {
    let keys = set_of(&[rsa_a()]);
    // exp + 300 == now: accepted; exp + 300 == now - 1: expired.
    let at = rsa_a().sign(&with_claim("exp", json!(NOW - 300))).unwrap();
    assert!(run(&at, &keys).is_ok());
    let past = rsa_a().sign(&with_claim("exp", json!(NOW - 301))).unwrap();
    assert_eq!(run(&past, &keys).unwrap_err(), JwtError::Expired);
    let within = rsa_a().sign(&with_claim("exp", json!(NOW - 120))).unwrap();
    assert!(run(&within, &keys).is_ok());
    // Forged expired tokens report a bad signature, not "expired".
    let forged = craft_with(
        rsa_attacker(),
        &json!({"alg": "RS256", "kid": rsa_a().kid()}),
        &with_claim("exp", json!(NOW - 301)),
    );
    assert_eq!(run(&forged, &keys).unwrap_err(), JwtError::BadSignature);
}

// ---- JWK set documents -------------------------------------------------------------------------------

#[test]
fn jwks_json_parses_back_and_to_json_keeps_only_public_members() {
    let doc = jwks_json(&[rsa_a(), ec_a()]);
    let set = JwkSet::from_json(doc.as_bytes()).unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.skipped().is_empty());
    let again = JwkSet::from_json(set.to_json().as_bytes()).unwrap();
    assert_eq!(again.len(), 2);
    let v: Value = serde_json::from_str(&set.to_json()).unwrap();
    assert_eq!(v["keys"][0], rsa_a().public_jwk());
    assert_eq!(v["keys"][1], ec_a().public_jwk());
    assert_eq!(set.keys()[0].alg(), Some(Algorithm::Rs256));
    assert!(set.keys()[0].supports(Algorithm::Rs256));
    assert!(!set.keys()[0].supports(Algorithm::Rs384));
    assert!(set.keys()[1].supports(Algorithm::Es256));
}

#[test]
fn jwks_parsing_is_lenient_about_unknown_members() {
    let mut rsa = rsa_a().public_jwk();
    rsa["x5c"] = json!(["MIIB..."]);
    rsa["x5t"] = json!("abc");
    rsa["ext"] = json!(true);
    rsa["custom"] = json!({"nested": [1, 2, 3]});
    rsa.as_object_mut().unwrap().remove("use");
    rsa.as_object_mut().unwrap().remove("alg");
    let mut ec = ec_a().public_jwk();
    ec["key_ops"] = json!(["verify"]);
    let doc = json!({
        "keys": [rsa, {"kty": "oct", "k": "c2VjcmV0"}, "not-an-object", ec],
        "extra": "ignored"
    });
    let set = JwkSet::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.skipped().len(), 2);
    assert_eq!(set.skipped()[0].index, 1);
    assert_eq!(set.skipped()[1].index, 2);
    let out = set.to_json();
    assert!(!out.contains("x5c") && !out.contains("custom") && !out.contains("\"k\""));
    // Padded members are tolerated in a JWKS (not in tokens).
    let mut padded = ec_a().public_jwk();
    padded["x"] = json!(format!("{}=", padded["x"].as_str().unwrap()));
    let set = JwkSet::from_json(json!({"keys": [padded]}).to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert!(run(&ec_a().sign(&k8s_claims()).unwrap(), &set).is_ok());
}

#[test]
fn jwks_document_errors() {
    for bad in [
        &b"[]"[..],
        b"{}",
        b"{\"keys\":{}}",
        b"{\"keys\":null}",
        b"not json",
        b"",
        b"{\"keys\":[],\"keys\":[]}",
    ] {
        assert!(
            matches!(JwkSet::from_json(bad), Err(JwkError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let big = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(MAX_JWKS_LEN));
    assert!(matches!(
        JwkSet::from_json(big.as_bytes()),
        Err(JwkError::TooLarge { .. })
    ));
    let many = format!("{{\"keys\":[{}]}}", vec!["{}"; MAX_JWKS_KEYS + 1].join(","));
    assert!(matches!(
        JwkSet::from_json(many.as_bytes()),
        Err(JwkError::TooManyKeys { .. })
    ));
    let max = format!("{{\"keys\":[{}]}}", vec!["{}"; MAX_JWKS_KEYS].join(","));
    assert_eq!(
        JwkSet::from_json(max.as_bytes()).unwrap().skipped().len(),
        MAX_JWKS_KEYS
    );
}

#[test]
fn find_by_kid() {
    let set = set_of(&[rsa_a(), ec_a()]);
    assert_eq!(
        set.find(Some(ec_a().kid())).unwrap().kid(),
        Some(ec_a().kid())
    );
    assert!(set.find(Some("nope")).is_none());
    assert!(set.find(None).is_none());
    let one = set_of(&[rsa_a()]);
    assert_eq!(one.find(None).unwrap().kid(), Some(rsa_a().kid()));
}

// ---- interop -----------------------------------------------------------------------------------------

/// Tokens and a JWKS produced by an independent implementation (Python `cryptography`, from
/// the fixture keys), shipped as fuzz seeds: `<token>\n<jwks>`.
#[test]
fn independently_signed_tokens_verify() {
    for seed in [
        include_str!("../fuzz/corpus/parse_token/k8s_rs256_with_jwks.txt"),
        include_str!("../fuzz/corpus/parse_token/k8s_es256_with_jwks.txt"),
    ] {
        let (token, jwks) = seed.split_once('\n').unwrap();
        let keys = JwkSet::from_json(jwks.as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.keys()[0].kid(), Some(RSA_KID));
        assert_eq!(keys.keys()[1].kid(), Some(P256_KID));
        let v = run(token, &keys).unwrap();
        assert_eq!(v.subject.as_deref(), Some(SUB));
        // And our keys, loaded from the same fixtures, publish the identical JWKS.
        let ours = jwks_json(&[
            &SigningKey::from_pem(RSA_PKCS8).unwrap(),
            &SigningKey::from_pem(P256_PKCS8).unwrap(),
        ]);
        assert_eq!(ours, jwks);
    }
}
