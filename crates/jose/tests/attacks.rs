//! Attack cases against the verifier. Each test documents the rule it protects; removing the
//! rule makes the test fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    KeyPair as _, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RsaKeyPair,
};
use common::*;
use podiam_jose::{JwkSet, JwtError, SigningKey, UnverifiedToken, verify};
use serde_json::{Value, json};

fn run(token: &str, keys: &JwkSet) -> Result<podiam_jose::VerifiedClaims, JwtError> {
    let aud = audiences();
    let parsed = UnverifiedToken::parse(token)?;
    verify(&parsed, keys, &validation(&aud))
}

fn rsa_pair(key: &SigningKey) -> RsaKeyPair {
    RsaKeyPair::from_pkcs8(&key.to_pkcs8_der()).unwrap()
}

/// A set with `key`'s JWK minus its `alg` member.
fn unpinned(key: &SigningKey) -> JwkSet {
    let mut jwk = key.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    JwkSet::from_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap()
}

fn header(alg: &str, kid: Option<&str>) -> Value {
    match kid {
        Some(k) => json!({"alg": alg, "kid": k}),
        None => json!({"alg": alg}),
    }
}

#[test]
fn sanity_valid_token_verifies() {
    let keys = set_of(&[rsa_a(), ec_a()]);
    let v = run(&rsa_a().sign(&k8s_claims()).unwrap(), &keys).unwrap();
    assert_eq!(v.subject.as_deref(), Some(SUB));
    let v = run(&ec_a().sign(&k8s_claims()).unwrap(), &keys).unwrap();
    assert_eq!(v.kid.as_deref(), Some(ec_a().kid()));
}

// ---- algorithm allow-list -------------------------------------------------------------

#[test]
fn alg_none_in_any_spelling_is_rejected() {
    let keys = set_of(&[rsa_a()]);
    let claims = k8s_claims().to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in [None, Some(rsa_a().kid())] {
            let h = header(alg, kid).to_string();
            // Unsecured form: empty signature.
            let unsecured = craft(&h, &claims, |_| Vec::new());
            assert!(
                matches!(run(&unsecured, &keys), Err(JwtError::Malformed(_))),
                "{alg} empty sig"
            );
            // With some signature bytes, even a genuine RS256 signature over the input.
            let signed = craft(&h, &claims, |m| rsa_a().sign_raw(m).unwrap());
            assert_eq!(
                run(&signed, &keys).unwrap_err(),
                JwtError::UnsupportedAlgorithm(alg.into()),
                "{alg}"
            );
        }
    }
}

#[test]
fn hs256_keyed_with_the_rsa_public_key_is_rejected() {
    // The classic key-confusion attack: the attacker knows the issuer's public key and uses
    // its PEM (or DER, or raw modulus) as an HMAC secret, hoping the verifier feeds "the key"
    // to HMAC because the header says HS256.
    let victim = rsa_a();
    let keys = set_of(&[victim]);
    let claims = k8s_claims().to_string();
    let pem = victim.public_key_pem();
    let jwk_n = unb64(victim.public_jwk()["n"].as_str().unwrap());
    let secrets: [(&str, Vec<u8>); 4] = [
        ("pem", pem.clone().into_bytes()),
        ("pem-no-newline", pem.trim_end().as_bytes().to_vec()),
        ("der", victim.public_key_der().to_vec()),
        ("modulus", jwk_n),
    ];
    for (hs, alg) in [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ] {
        for (what, secret) in &secrets {
            for kid in [None, Some(victim.kid())] {
                let key = hmac::Key::new(alg, secret);
                let h = header(hs, kid).to_string();
                let token = craft(&h, &claims, |m| hmac::sign(&key, m).as_ref().to_vec());
                // The forgery is a genuine HMAC under that secret...
                let parsed = UnverifiedToken::parse(&token).unwrap();
                hmac::verify(&key, parsed.signing_input().as_bytes(), parsed.signature()).unwrap();
                // ...and is still refused.
                assert_eq!(
                    run(&token, &keys).unwrap_err(),
                    JwtError::UnsupportedAlgorithm(hs.into()),
                    "{hs} {what} {kid:?}"
                );
            }
        }
    }
}

#[test]
fn rsa_pss_is_rejected_even_when_genuine() {
    let keys = set_of(&[rsa_a()]);
    let kp = rsa_pair(rsa_a());
    let claims = k8s_claims().to_string();
    let token = craft(
        &header("PS256", Some(rsa_a().kid())).to_string(),
        &claims,
        |m| {
            let mut sig = vec![0u8; kp.public_modulus_len()];
            kp.sign(&RSA_PSS_SHA256, &SystemRandom::new(), m, &mut sig)
                .unwrap();
            sig
        },
    );
    assert_eq!(
        run(&token, &keys).unwrap_err(),
        JwtError::UnsupportedAlgorithm("PS256".into())
    );
}

#[test]
fn unknown_or_miscased_algorithms_are_rejected() {
    let keys = set_of(&[rsa_a(), ec_a()]);
    let claims = k8s_claims().to_string();
    for alg in [
        "rs256", "Rs256", "RS256 ", "RS1", "ES256K", "EdDSA", "ES521", "RSA", "X",
    ] {
        let token = craft(&header(alg, None).to_string(), &claims, |m| {
            rsa_a().sign_raw(m).unwrap()
        });
        assert_eq!(
            run(&token, &keys).unwrap_err(),
            JwtError::UnsupportedAlgorithm(alg.into()),
            "{alg}"
        );
    }
}

// ---- keys only from the set -------------------------------------------------------------

#[test]
fn embedded_jwk_jku_x5u_x5c_are_ignored() {
    let victim_keys = set_of(&[rsa_a()]);
    let attacker = rsa_attacker();
    let claims = k8s_claims();
    let headers = [
        json!({"alg": "RS256", "jwk": attacker.public_jwk()}),
        json!({"alg": "RS256", "jwk": attacker.public_jwk(), "kid": attacker.kid()}),
        json!({"alg": "RS256", "jku": "https://attacker.example/jwks.json"}),
        json!({"alg": "RS256", "x5u": "https://attacker.example/cert.pem"}),
        json!({"alg": "RS256", "x5c": [common::b64(attacker.public_key_der())]}),
    ];
    for h in headers {
        let token = craft_with(attacker, &h, &claims);
        // The forged token is genuine under the attacker's key...
        let attacker_keys = set_of(&[attacker]);
        assert!(run(&token, &attacker_keys).is_ok(), "{h}");
        // ...but the trusted set does not contain it.
        let err = run(&token, &victim_keys).unwrap_err();
        let want = if h.get("kid").is_some() {
            JwtError::UnknownKid
        } else {
            JwtError::BadSignature
        };
        assert_eq!(err, want, "{h}");
    }
}

#[test]
fn crit_header_is_rejected_even_when_signed() {
    let keys = set_of(&[rsa_a()]);
    for h in [
        json!({"alg": "RS256", "kid": rsa_a().kid(), "crit": ["exp"], "exp": 1}),
        json!({"alg": "RS256", "kid": rsa_a().kid(), "crit": []}),
        json!({"alg": "RS256", "kid": rsa_a().kid(), "crit": null}),
        json!({"alg": "RS256", "kid": rsa_a().kid(), "b64": false, "crit": ["b64"]}),
    ] {
        let token = craft_with(rsa_a(), &h, &k8s_claims());
        assert!(
            matches!(run(&token, &keys), Err(JwtError::Malformed(m)) if m.contains("crit")),
            "{h}"
        );
    }
}

// ---- key selection ------------------------------------------------------------------------

#[test]
fn kid_of_key_a_signed_by_key_b_is_rejected() {
    let keys = set_of(&[rsa_a(), rsa_b()]);
    let h = header("RS256", Some(rsa_a().kid()));
    let token = craft_with(rsa_b(), &h, &k8s_claims());
    // Only key A is tried; B (which would verify) is not.
    assert_eq!(run(&token, &keys).unwrap_err(), JwtError::BadSignature);
    // Control: naming B works.
    let ok = craft_with(
        rsa_b(),
        &header("RS256", Some(rsa_b().kid())),
        &k8s_claims(),
    );
    assert!(run(&ok, &keys).is_ok());
}

#[test]
fn kid_match_is_exact() {
    let keys = set_of(&[rsa_a()]);
    let kid = rsa_a().kid();
    for variant in [
        kid.to_uppercase(),
        kid.to_lowercase(),
        format!("{kid} "),
        format!(" {kid}"),
        kid[..kid.len() - 1].to_owned(),
        format!("{kid}="),
        String::new(),
    ] {
        if variant == kid {
            continue;
        }
        let token = craft_with(rsa_a(), &header("RS256", Some(&variant)), &k8s_claims());
        assert_eq!(
            run(&token, &keys).unwrap_err(),
            JwtError::UnknownKid,
            "{variant:?}"
        );
    }
}

#[test]
fn unknown_kid_is_distinct() {
    let keys = set_of(&[rsa_a(), ec_a()]);
    let token = craft_with(
        rsa_b(),
        &header("RS256", Some(rsa_b().kid())),
        &k8s_claims(),
    );
    assert_eq!(run(&token, &keys).unwrap_err(), JwtError::UnknownKid);
    // An empty set: same.
    let empty = JwkSet::from_json(br#"{"keys":[]}"#).unwrap();
    assert_eq!(
        run(&rsa_a().sign(&k8s_claims()).unwrap(), &empty).unwrap_err(),
        JwtError::UnknownKid
    );
}

#[test]
fn without_kid_every_compatible_key_is_tried() {
    // AWS tries all keys when the token has no kid; so do we (documented choice).
    let keys = set_of(&[rsa_a(), ec_a(), rsa_b()]);
    let token = craft_with(rsa_b(), &header("RS256", None), &k8s_claims());
    let v = run(&token, &keys).unwrap();
    assert_eq!(v.kid.as_deref(), Some(rsa_b().kid()));
    let token = craft_with(ec_a(), &header("ES256", None), &k8s_claims());
    assert_eq!(
        run(&token, &keys).unwrap().kid.as_deref(),
        Some(ec_a().kid())
    );
    // None of them verifies: bad signature.
    let token = craft_with(rsa_attacker(), &header("RS256", None), &k8s_claims());
    assert_eq!(run(&token, &keys).unwrap_err(), JwtError::BadSignature);
}

#[test]
fn rs256_token_against_ec_only_set_is_rejected() {
    let keys = set_of(&[ec_a()]);
    let token = craft_with(rsa_a(), &header("RS256", None), &k8s_claims());
    assert_eq!(run(&token, &keys).unwrap_err(), JwtError::UnknownKid);
    // Pointing the kid at the EC key does not make it usable for RS256.
    let token = craft_with(rsa_a(), &header("RS256", Some(ec_a().kid())), &k8s_claims());
    assert_eq!(
        run(&token, &keys).unwrap_err(),
        JwtError::IncompatibleKey("RS256".into())
    );
}

#[test]
fn es256_token_against_rsa_key_is_rejected() {
    let keys = set_of(&[rsa_a()]);
    let token = craft_with(ec_a(), &header("ES256", Some(rsa_a().kid())), &k8s_claims());
    assert_eq!(
        run(&token, &keys).unwrap_err(),
        JwtError::IncompatibleKey("ES256".into())
    );
}

fn p384_jwk(kid: &str, kp: &EcdsaKeyPair) -> Value {
    let point = kp.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-384", "kid": kid,
           "x": common::b64(&point[1..49]), "y": common::b64(&point[49..97])})
}

#[test]
fn curve_must_match_algorithm() {
    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let doc = json!({"keys": [p384_jwk("p384", &p384), ec_a().public_jwk()]}).to_string();
    let keys = JwkSet::from_json(doc.as_bytes()).unwrap();
    assert_eq!(keys.len(), 2);
    let claims = k8s_claims().to_string();
    let sign384 = |m: &[u8]| {
        p384.sign(&SystemRandom::new(), m)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    // Genuine ES384 on the P-384 key verifies.
    let ok = craft(&header("ES384", Some("p384")).to_string(), &claims, sign384);
    assert_eq!(run(&ok, &keys).unwrap().alg, podiam_jose::Algorithm::Es384);
    // P-384 key named with ES256 / ES512: incompatible.
    for alg in ["ES256", "ES512"] {
        let t = craft(&header(alg, Some("p384")).to_string(), &claims, sign384);
        assert_eq!(
            run(&t, &keys).unwrap_err(),
            JwtError::IncompatibleKey(alg.into())
        );
    }
    // P-256 key named with ES384: incompatible.
    let t = craft(
        &header("ES384", Some(ec_a().kid())).to_string(),
        &claims,
        |m| ec_a().sign_raw(m).unwrap(),
    );
    assert_eq!(
        run(&t, &keys).unwrap_err(),
        JwtError::IncompatibleKey("ES384".into())
    );
}

#[test]
fn jwk_alg_pins_the_algorithm() {
    // The set says this RSA key is RS384-only; an RS256 (or RS512) token signed by the very
    // same key must be refused.
    let mut jwk = rsa_a().public_jwk();
    jwk["alg"] = json!("RS384");
    let keys = JwkSet::from_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    let claims = k8s_claims().to_string();
    let kp = rsa_pair(rsa_a());
    let rsa_sign = |enc: &'static dyn signature::RsaEncoding| {
        let kp = &kp;
        move |m: &[u8]| {
            let mut sig = vec![0u8; kp.public_modulus_len()];
            kp.sign(enc, &SystemRandom::new(), m, &mut sig).unwrap();
            sig
        }
    };
    let kid = Some(rsa_a().kid());
    let rs384 = craft(
        &header("RS384", kid).to_string(),
        &claims,
        rsa_sign(&RSA_PKCS1_SHA384),
    );
    assert!(run(&rs384, &keys).is_ok());
    let rs256 = craft(&header("RS256", kid).to_string(), &claims, |m| {
        rsa_a().sign_raw(m).unwrap()
    });
    assert_eq!(
        run(&rs256, &keys).unwrap_err(),
        JwtError::IncompatibleKey("RS256".into())
    );
    let rs512 = craft(
        &header("RS512", None).to_string(),
        &claims,
        rsa_sign(&RSA_PKCS1_SHA512),
    );
    assert_eq!(run(&rs512, &keys).unwrap_err(), JwtError::UnknownKid);
    // Without the pin the same RS512 token is fine.
    assert!(run(&rs512, &unpinned(rsa_a())).is_ok());
    // Our own published JWKs pin the signing algorithm, like kube-apiserver's.
    assert_eq!(
        run(&rs512, &set_of(&[rsa_a()])).unwrap_err(),
        JwtError::UnknownKid
    );
}

#[test]
fn header_alg_must_match_the_signature_hash() {
    // An RS256 signature relabelled RS384/RS512 does not verify (key without an `alg` pin, so
    // the hash mismatch itself is what fails).
    let keys = unpinned(rsa_a());
    for alg in ["RS384", "RS512"] {
        let t = craft_with(rsa_a(), &header(alg, Some(rsa_a().kid())), &k8s_claims());
        assert_eq!(run(&t, &keys).unwrap_err(), JwtError::BadSignature, "{alg}");
    }
}

// ---- tampering ------------------------------------------------------------------------------

#[test]
fn tampered_payload_header_or_signature_is_rejected() {
    let keys = set_of(&[rsa_a(), ec_a()]);
    for key in [rsa_a(), ec_a()] {
        let token = key.sign(&k8s_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        for (segment, positions) in [
            (1usize, vec![0, parts[1].len() / 2, parts[1].len() - 3]),
            (2, vec![0, parts[2].len() / 2, parts[2].len() - 3]),
        ] {
            for pos in positions {
                let bad = tamper(&token, segment, pos);
                match run(&bad, &keys) {
                    Err(JwtError::BadSignature) | Err(JwtError::Malformed(_)) => {}
                    other => panic!("segment {segment} pos {pos}: {other:?}"),
                }
            }
        }
        // A semantically meaningful payload edit (sub) keeps the JSON valid.
        let payload = String::from_utf8(unb64(parts[1])).unwrap();
        let forged = payload.replace(SUB, "system:serviceaccount:kube-system:admin");
        assert_ne!(payload, forged);
        let bad = format!("{}.{}.{}", parts[0], b64(forged.as_bytes()), parts[2]);
        assert_eq!(run(&bad, &keys).unwrap_err(), JwtError::BadSignature);
        // Header edit that keeps alg and kid but adds typ.
        let h = String::from_utf8(unb64(parts[0])).unwrap();
        let h2 = h.replacen('{', "{\"typ\":\"JWT\",", 1);
        let bad = format!("{}.{}.{}", b64(h2.as_bytes()), parts[1], parts[2]);
        assert_eq!(run(&bad, &keys).unwrap_err(), JwtError::BadSignature);
        // Signature transplanted from another token of the same key.
        let other = key.sign(&with_claim("jti", json!("other"))).unwrap();
        let other_sig = other.rsplit_once('.').unwrap().1;
        let bad = format!("{}.{}.{}", parts[0], parts[1], other_sig);
        assert_eq!(run(&bad, &keys).unwrap_err(), JwtError::BadSignature);
    }
}

// ---- ECDSA specifics ------------------------------------------------------------------------

fn es256_token_with_sig(sig: &[u8]) -> String {
    let h = header("ES256", Some(ec_a().kid())).to_string();
    craft(&h, &k8s_claims().to_string(), |_| sig.to_vec())
}

#[test]
fn es256_signature_of_wrong_length_is_rejected() {
    let keys = set_of(&[ec_a()]);
    let good = ec_a().sign(&k8s_claims()).unwrap();
    let sig = unb64(good.rsplit_once('.').unwrap().1);
    assert_eq!(sig.len(), 64);
    let mut longer = sig.clone();
    longer.push(0);
    let mut zero_prefixed = vec![0u8];
    zero_prefixed.extend_from_slice(&sig);
    for bad in [
        &sig[..63],
        &sig[..32],
        &sig[1..],
        &longer[..],
        &zero_prefixed[..],
        &[0u8; 96][..],
    ] {
        assert_eq!(
            run(&es256_token_with_sig(bad), &keys).unwrap_err(),
            JwtError::BadSignature,
            "len {}",
            bad.len()
        );
    }
    // An ASN.1/DER-encoded ECDSA signature (what a naive signer emits) is not JWS form.
    let der_kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &ec_a().to_pkcs8_der()).unwrap();
    let h = header("ES256", Some(ec_a().kid())).to_string();
    let t = craft(&h, &k8s_claims().to_string(), |m| {
        der_kp
            .sign(&SystemRandom::new(), m)
            .unwrap()
            .as_ref()
            .to_vec()
    });
    assert_eq!(run(&t, &keys).unwrap_err(), JwtError::BadSignature);
}

#[test]
fn psychic_signatures_are_rejected() {
    // CVE-2022-21449: r = s = 0 verified for any message under a broken verifier.
    let keys = set_of(&[ec_a()]);
    let n: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let zero = [0u8; 32];
    let candidates: Vec<Vec<u8>> = vec![
        [zero, zero].concat(),
        [n, n].concat(),
        [zero, n].concat(),
        [n, zero].concat(),
        [[0xffu8; 32], [0xffu8; 32]].concat(),
    ];
    for sig in &candidates {
        assert_eq!(
            run(&es256_token_with_sig(sig), &keys).unwrap_err(),
            JwtError::BadSignature
        );
        // Without a kid too (every key tried).
        let t = craft(
            &header("ES256", None).to_string(),
            &k8s_claims().to_string(),
            |_| sig.clone(),
        );
        assert_eq!(run(&t, &keys).unwrap_err(), JwtError::BadSignature);
    }
    // aws-lc itself also refuses r = s = 0 (two independent layers).
    let spki_point = {
        let jwk = ec_a().public_jwk();
        let mut p = vec![4u8];
        p.extend(unb64(jwk["x"].as_str().unwrap()));
        p.extend(unb64(jwk["y"].as_str().unwrap()));
        p
    };
    let raw = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &spki_point);
    assert!(raw.verify(b"anything", &[0u8; 64]).is_err());
}

#[test]
fn malleated_high_s_signature_verifies_like_aws() {
    // ECDSA (r, s) and (r, n - s) are both valid; JWS does not require low-s and neither does
    // AWS. This also proves our hard-coded group order is the real one: with a wrong `n` the
    // range check or the verification would fail.
    let keys = set_of(&[ec_a()]);
    let n: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let token = ec_a().sign(&k8s_claims()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = unb64(sig);
    let s = &sig[32..];
    // n - s, big-endian.
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(n[i]) - i16::from(s[i]) - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0);
    let malleated = [&sig[..32], &out[..]].concat();
    let t = format!("{input}.{}", b64(&malleated));
    assert!(run(&t, &keys).is_ok());
}

// ---- RSA specifics -------------------------------------------------------------------------

#[test]
fn rsa_signature_of_wrong_length_is_rejected() {
    let keys = set_of(&[rsa_a()]);
    let token = rsa_a().sign(&k8s_claims()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = unb64(sig);
    assert_eq!(sig.len(), 256);
    let mut zero_prefixed = vec![0u8];
    zero_prefixed.extend_from_slice(&sig);
    let mut longer = sig.clone();
    longer.push(0);
    for bad in [
        &sig[..255],
        &sig[1..],
        &zero_prefixed[..],
        &longer[..],
        &[0u8; 256][..],
        &[0xffu8; 256][..],
    ] {
        let t = format!("{input}.{}", b64(bad));
        assert_eq!(
            run(&t, &keys).unwrap_err(),
            JwtError::BadSignature,
            "len {}",
            bad.len()
        );
    }
}

// ---- key-set hygiene -------------------------------------------------------------------------

fn single(jwk: Value) -> JwkSet {
    JwkSet::from_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap()
}

#[test]
fn unusable_keys_in_the_set_never_verify() {
    let token = rsa_a().sign(&k8s_claims()).unwrap();
    let base = rsa_a().public_jwk();
    let variants: Vec<(&str, Value)> = vec![
        ("use enc", {
            let mut j = base.clone();
            j["use"] = json!("enc");
            j
        }),
        ("use SIG", {
            let mut j = base.clone();
            j["use"] = json!("SIG");
            j
        }),
        ("key_ops sign", {
            let mut j = base.clone();
            j["key_ops"] = json!(["sign"]);
            j
        }),
        ("key_ops empty", {
            let mut j = base.clone();
            j["key_ops"] = json!([]);
            j
        }),
        ("private d", {
            let mut j = base.clone();
            j["d"] = json!("AQAB");
            j
        }),
        ("private p", {
            let mut j = base.clone();
            j["p"] = json!("AQAB");
            j
        }),
        ("alg HS256", {
            let mut j = base.clone();
            j["alg"] = json!("HS256");
            j
        }),
        ("alg ES256", {
            let mut j = base.clone();
            j["alg"] = json!("ES256");
            j
        }),
        ("alg none", {
            let mut j = base.clone();
            j["alg"] = json!("none");
            j
        }),
        ("kty oct", {
            let mut j = base.clone();
            j["kty"] = json!("oct");
            j
        }),
        ("kty rsa", {
            let mut j = base.clone();
            j["kty"] = json!("rsa");
            j
        }),
        ("kid number", {
            let mut j = base.clone();
            j["kid"] = json!(1);
            j
        }),
        ("n missing", {
            let mut j = base.clone();
            j.as_object_mut().unwrap().remove("n");
            j
        }),
        ("e even", {
            let mut j = base.clone();
            j["e"] = json!("AQAA");
            j
        }),
        ("e one", {
            let mut j = base.clone();
            j["e"] = json!("AQ");
            j
        }),
    ];
    for (what, jwk) in variants {
        let keys = single(jwk);
        assert!(keys.is_empty(), "{what} was kept");
        assert_eq!(keys.skipped().len(), 1, "{what}");
        assert!(run(&token, &keys).is_err(), "{what}");
    }
}

#[test]
fn small_and_huge_rsa_moduli_are_skipped() {
    let mut small = vec![0xc5u8; 128]; // 1024 bits
    small[127] |= 1;
    let mut just_under = vec![0x7fu8; 256]; // 2047 bits
    just_under[255] |= 1;
    let mut huge = vec![0xc5u8; 1025]; // 8200 bits
    huge[1024] |= 1;
    for (bits, n) in [(1024, small), (2047, just_under), (8200, huge)] {
        let keys = single(json!({"kty": "RSA", "n": b64(&n), "e": "AQAB", "kid": "x"}));
        assert!(keys.is_empty(), "{bits}");
        assert!(
            keys.skipped()[0].reason.contains(&bits.to_string()),
            "{:?}",
            keys.skipped()
        );
    }
    // A leading zero byte in `n` is tolerated (some producers emit it) and does not count.
    let mut n = unb64(rsa_a().public_jwk()["n"].as_str().unwrap());
    n.insert(0, 0);
    let mut jwk = rsa_a().public_jwk();
    jwk["n"] = json!(b64(&n));
    let keys = single(jwk);
    assert_eq!(keys.len(), 1);
    assert!(run(&rsa_a().sign(&k8s_claims()).unwrap(), &keys).is_ok());
}

#[test]
fn ec_points_off_curve_or_short_are_skipped() {
    let jwk = ec_a().public_jwk();
    let x = unb64(jwk["x"].as_str().unwrap());
    let mut y = unb64(jwk["y"].as_str().unwrap());
    y[31] ^= 1;
    let mut off = jwk.clone();
    off["y"] = json!(b64(&y));
    let mut short = jwk.clone();
    short["x"] = json!(b64(&x[1..]));
    let mut wrong_crv = jwk.clone();
    wrong_crv["crv"] = json!("P-384");
    let mut k1 = jwk.clone();
    k1["crv"] = json!("secp256k1");
    let mut zero = jwk.clone();
    zero["x"] = json!(b64(&[0u8; 32]));
    zero["y"] = json!(b64(&[0u8; 32]));
    let mut kty_lower = jwk.clone();
    kty_lower["kty"] = json!("ec");
    let mut alg_es384 = jwk.clone();
    alg_es384["alg"] = json!("ES384");
    let mut alg_rs256 = jwk.clone();
    alg_rs256["alg"] = json!("RS256");
    let mut crv_lower = jwk.clone();
    crv_lower["crv"] = json!("p-256");
    for (what, j) in [
        ("off-curve", off),
        ("short x", short),
        ("P-384 label", wrong_crv),
        ("secp256k1", k1),
        ("zero point", zero),
        ("kty ec", kty_lower),
        ("crv p-256", crv_lower),
        ("alg ES384 on P-256", alg_es384),
        ("alg RS256 on EC", alg_rs256),
    ] {
        let keys = single(j);
        assert!(keys.is_empty(), "{what}");
    }
}
