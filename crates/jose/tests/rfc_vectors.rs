//! Published test vectors: RFC 7515 (JWS) Appendix A and RFC 7520 (JOSE Cookbook) §4.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use podiam_jose::{JwkSet, JwtError, UnverifiedToken, Validation, verify};

/// RFC 7515 Appendix A.2.1/A.3.1 payload (`{"iss":"joe",\r\n "exp":1300819380,\r\n
/// "http://example.com/is_root":true}`), base64url.
const RFC7515_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// RFC 7515 Appendix A.2.1: the RSA key's public members.
const RFC7515_A2_JWK_PUBLIC: &str = r#"{"kty":"RSA",
 "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
 "e":"AQAB"}"#;

/// RFC 7515 Appendix A.2.1: the same key with its private members, as printed in the RFC.
const RFC7515_A2_JWK_PRIVATE: &str = r#"{"kty":"RSA",
 "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
 "e":"AQAB",
 "d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
 "p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc",
 "q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc",
 "dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0",
 "dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU",
 "qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"}"#;

/// RFC 7515 Appendix A.2.2: the complete RS256 JWS.
const RFC7515_A2_JWS: &str = concat!(
    "eyJhbGciOiJSUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7",
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4",
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K",
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv",
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB",
    "p0igcN_IoypGlUPQGe77Rw",
);

/// RFC 7515 Appendix A.3.1: the P-256 key's public members.
const RFC7515_A3_JWK: &str = r#"{"kty":"EC",
 "crv":"P-256",
 "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
 "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

/// RFC 7515 Appendix A.3.1: with the private member `d`.
const RFC7515_A3_JWK_PRIVATE: &str = r#"{"kty":"EC",
 "crv":"P-256",
 "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
 "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
 "d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;

/// RFC 7515 Appendix A.3.2: the complete ES256 JWS.
const RFC7515_A3_JWS: &str = concat!(
    "eyJhbGciOiJFUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
);

/// RFC 7515 Appendix A.4.1: the P-521 key's public members.
const RFC7515_A4_JWK: &str = r#"{"kty":"EC",
 "crv":"P-521",
 "x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
 "y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"}"#;

/// RFC 7515 Appendix A.4.2: ES512 over the ASCII payload "Payload" (not a JWT).
const RFC7515_A4_JWS: &str = concat!(
    "eyJhbGciOiJFUzUxMiJ9",
    ".",
    "UGF5bG9hZA",
    ".",
    "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZq",
    "wqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8Kp",
    "EHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn",
);

/// RFC 7515 Appendix A.1: an HS256 JWS (must be refused: HMAC is not on the allow-list).
const RFC7515_A1_JWS: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);

/// RFC 7515 Appendix A.1.1: the HMAC key (a `kty: oct` JWK).
const RFC7515_A1_JWK: &str = r#"{"kty":"oct",
 "k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

/// RFC 7515 Appendix A.5: an unsecured JWS (`alg: none`, empty signature).
const RFC7515_A5_JWS: &str = concat!(
    "eyJhbGciOiJub25lIn0",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
);

/// RFC 7520 §3.3 Figure 3: RSA 2048-bit public key.
const RFC7520_RSA_JWK: &str = r#"{
 "kty": "RSA",
 "kid": "bilbo.baggins@hobbiton.example",
 "use": "sig",
 "n": "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw",
 "e": "AQAB"
}"#;

/// RFC 7520 §4.1.3: RS256 JWS (compact), header `{"alg":"RS256","kid":"bilbo.baggins@hobbiton.example"}`,
/// payload Figure 8 (not JSON).
const RFC7520_4_1_JWS: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZX",
    "hhbXBsZSJ9",
    ".",
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH",
    "lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk",
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcm",
    "UgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4",
    ".",
    "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmK",
    "ZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4J",
    "IwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8w",
    "W1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluP",
    "xUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_f",
    "cIe8u9ipH84ogoree7vjbU5y18kDquDg",
);

/// RFC 7520 §4.2.2: the PS384 protected header (RSA-PSS must be refused).
const RFC7520_4_2_HEADER: &str =
    "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";

fn set(jwk: &str) -> JwkSet {
    JwkSet::from_json(format!("{{\"keys\":[{jwk}]}}").as_bytes()).unwrap()
}

/// Splits a compact JWS into (alg-bearing header, signing input, signature bytes) without any
/// JSON interpretation of the payload.
fn raw_parts(jws: &str) -> (String, Vec<u8>) {
    let (input, sig) = jws.rsplit_once('.').unwrap();
    (input.to_owned(), common::unb64(sig))
}

fn joe_validation(aud: &[String]) -> Validation<'_> {
    let mut v = Validation::new("joe", aud, 1_300_819_380 - 100).dangerous_skip_audience();
    v.require_sub = false;
    v
}

#[test]
fn rfc7515_a2_rs256_signature_verifies() {
    let keys = set(RFC7515_A2_JWK_PUBLIC);
    assert_eq!(keys.len(), 1);
    let token = UnverifiedToken::parse(RFC7515_A2_JWS).unwrap();
    assert_eq!(token.alg(), "RS256");
    assert_eq!(token.kid(), None);
    assert_eq!(token.issuer(), Some("joe"));
    assert_eq!(token.claims()["exp"], 1_300_819_380);
    assert_eq!(token.claims()["http://example.com/is_root"], true);
    let key = keys
        .verify_signature(
            token.alg(),
            token.kid(),
            token.signing_input().as_bytes(),
            token.signature(),
        )
        .unwrap();
    assert_eq!(key.kid(), None);
}

#[test]
fn rfc7515_a2_full_verify_requires_iat() {
    // The RFC example has no `iat`; our rules (and STS) require it. The signature layer passes
    // first, so the error is about the claim — proving the claims were only looked at after
    // a valid signature.
    let keys = set(RFC7515_A2_JWK_PUBLIC);
    let token = UnverifiedToken::parse(RFC7515_A2_JWS).unwrap();
    let aud = Vec::new();
    assert_eq!(
        verify(&token, &keys, &joe_validation(&aud)).unwrap_err(),
        JwtError::MissingClaim("iat")
    );
}

#[test]
fn rfc7515_a2_tampered_is_rejected() {
    let keys = set(RFC7515_A2_JWK_PUBLIC);
    // The same payload bytes re-encoded with one claim changed ("joe" -> "jof").
    let payload = String::from_utf8(common::unb64(RFC7515_PAYLOAD)).unwrap();
    let forged_payload = common::b64(payload.replace("\"joe\"", "\"jof\"").as_bytes());
    let forged = RFC7515_A2_JWS.replace(RFC7515_PAYLOAD, &forged_payload);
    let token = UnverifiedToken::parse(&forged).unwrap();
    assert_eq!(token.issuer(), Some("jof"));
    let aud = Vec::new();
    assert_eq!(
        verify(&token, &keys, &joe_validation(&aud)).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn rfc7515_a3_es256_signature_verifies() {
    let keys = set(RFC7515_A3_JWK);
    let token = UnverifiedToken::parse(RFC7515_A3_JWS).unwrap();
    assert_eq!(token.alg(), "ES256");
    assert_eq!(token.signature().len(), 64);
    keys.verify_signature(
        "ES256",
        None,
        token.signing_input().as_bytes(),
        token.signature(),
    )
    .unwrap();
    // The same key cannot be used for ES384 or RS256.
    assert_eq!(
        keys.verify_signature(
            "ES384",
            None,
            token.signing_input().as_bytes(),
            token.signature()
        )
        .unwrap_err(),
        JwtError::UnknownKid
    );
    let aud = Vec::new();
    assert_eq!(
        verify(&token, &keys, &joe_validation(&aud)).unwrap_err(),
        JwtError::MissingClaim("iat")
    );
}

#[test]
fn rfc7515_a4_es512_signature_verifies() {
    let keys = set(RFC7515_A4_JWK);
    assert_eq!(keys.len(), 1);
    let (input, sig) = raw_parts(RFC7515_A4_JWS);
    assert_eq!(sig.len(), 132);
    keys.verify_signature("ES512", None, input.as_bytes(), &sig)
        .unwrap();
    // Its payload is not a JSON object, so it is not a JWT.
    assert!(matches!(
        UnverifiedToken::parse(RFC7515_A4_JWS),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn rfc7520_4_1_rs256_signature_verifies_by_kid() {
    let keys = set(RFC7520_RSA_JWK);
    let (input, sig) = raw_parts(RFC7520_4_1_JWS);
    let key = keys
        .verify_signature(
            "RS256",
            Some("bilbo.baggins@hobbiton.example"),
            input.as_bytes(),
            &sig,
        )
        .unwrap();
    assert_eq!(key.kid(), Some("bilbo.baggins@hobbiton.example"));
    assert_eq!(
        keys.verify_signature("RS256", Some("frodo"), input.as_bytes(), &sig)
            .unwrap_err(),
        JwtError::UnknownKid
    );
    // Same signature claimed as RS384/RS512: wrong hash, must fail.
    for alg in ["RS384", "RS512"] {
        assert_eq!(
            keys.verify_signature(
                alg,
                Some("bilbo.baggins@hobbiton.example"),
                input.as_bytes(),
                &sig
            )
            .unwrap_err(),
            JwtError::BadSignature
        );
    }
}

#[test]
fn rfc7520_4_2_ps384_is_unsupported() {
    let keys = set(RFC7520_RSA_JWK);
    let input = format!("{RFC7520_4_2_HEADER}.e30");
    assert_eq!(
        keys.verify_signature(
            "PS384",
            Some("bilbo.baggins@hobbiton.example"),
            input.as_bytes(),
            &[0u8; 256]
        )
        .unwrap_err(),
        JwtError::UnsupportedAlgorithm("PS384".into())
    );
}

#[test]
fn rfc7515_a1_hs256_is_unsupported_and_oct_keys_are_never_loaded() {
    let token = UnverifiedToken::parse(RFC7515_A1_JWS).unwrap();
    assert_eq!(token.alg(), "HS256");
    assert_eq!(token.header().typ(), Some("JWT"));
    let oct = set(RFC7515_A1_JWK);
    assert!(oct.is_empty());
    assert_eq!(oct.skipped().len(), 1);
    let aud = Vec::new();
    for keys in [oct, set(RFC7515_A2_JWK_PUBLIC)] {
        assert_eq!(
            verify(&token, &keys, &joe_validation(&aud)).unwrap_err(),
            JwtError::UnsupportedAlgorithm("HS256".into())
        );
    }
}

#[test]
fn rfc7515_a5_unsecured_jws_is_rejected() {
    assert!(matches!(
        UnverifiedToken::parse(RFC7515_A5_JWS),
        Err(JwtError::Malformed(m)) if m.contains("empty segment")
    ));
}

#[test]
fn rfc_private_jwks_are_ignored() {
    for jwk in [RFC7515_A2_JWK_PRIVATE, RFC7515_A3_JWK_PRIVATE] {
        let keys = set(jwk);
        assert!(keys.is_empty(), "{jwk}");
        assert!(
            keys.skipped()[0].reason.contains("private"),
            "{:?}",
            keys.skipped()
        );
    }
    // And so the RFC token does not verify against the private form.
    let token = UnverifiedToken::parse(RFC7515_A2_JWS).unwrap();
    let aud = Vec::new();
    assert_eq!(
        verify(&token, &set(RFC7515_A2_JWK_PRIVATE), &joe_validation(&aud)).unwrap_err(),
        JwtError::UnknownKid
    );
}
