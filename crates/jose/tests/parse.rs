//! Phase 1 (`UnverifiedToken::parse`) structural limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use podiam_jose::{JwtError, MAX_TOKEN_LEN, UnverifiedToken};
use serde_json::json;

fn malformed(token: &str) -> String {
    match UnverifiedToken::parse(token) {
        Err(JwtError::Malformed(m)) => m,
        other => panic!(
            "expected malformed for {:?}: {other:?}",
            &token[..token.len().min(80)]
        ),
    }
}

fn valid() -> String {
    rsa_a().sign(&k8s_claims()).unwrap()
}

#[test]
fn valid_token_parses() {
    let t = UnverifiedToken::parse(&valid()).unwrap();
    assert_eq!(t.alg(), "RS256");
    assert_eq!(t.kid(), Some(rsa_a().kid()));
    assert_eq!(t.issuer(), Some(ISS));
    assert_eq!(t.header().typ(), None);
    assert_eq!(
        t.claims()["kubernetes.io"]["pod"]["name"],
        "api-7d9c8b6f5-x2x9q"
    );
}

#[test]
fn segment_count_must_be_three() {
    let t = valid();
    let parts: Vec<&str> = t.split('.').collect();
    for bad in [
        parts[0].to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{t}.{}", parts[2]),
        format!("{t}."),
        format!(".{t}"),
        format!(
            "{}.{}.{}.{}.{}",
            parts[0], parts[1], parts[2], parts[1], parts[2]
        ),
        String::new(),
        ".".into(),
    ] {
        assert!(malformed(&bad).contains("segment"), "{bad}");
    }
}

#[test]
fn empty_segments_are_rejected() {
    let t = valid();
    let p: Vec<&str> = t.split('.').collect();
    for bad in [
        format!(".{}.{}", p[1], p[2]),
        format!("{}..{}", p[0], p[2]),
        format!("{}.{}.", p[0], p[1]),
        "..".to_owned(),
    ] {
        assert!(malformed(&bad).contains("empty segment"), "{bad}");
    }
}

#[test]
fn padding_is_rejected_in_every_segment() {
    let t = valid();
    let p: Vec<&str> = t.split('.').collect();
    for i in 0..3 {
        for pad in ["=", "==", "==="] {
            let mut q: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
            q[i].push_str(pad);
            let m = malformed(&q.join("."));
            assert!(m.contains("base64url"), "{i} {pad}: {m}");
        }
    }
    // A correctly padded encoding of a JSON header is still rejected.
    let padded = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE,
        br#"{"alg":"RS256","x":12}"#,
    );
    assert!(padded.ends_with('='));
    assert!(malformed(&format!("{padded}.{}.{}", p[1], p[2])).contains("base64url"));
}

#[test]
fn non_alphabet_characters_are_rejected() {
    let t = valid();
    let p: Vec<&str> = t.split('.').collect();
    for i in 0..3 {
        for c in ['+', '/', '*', ' ', '\n', '\t', '%', 'é', '\0', '\u{200b}'] {
            let mut q: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
            q[i].insert(4, c);
            let m = malformed(&q.join("."));
            assert!(m.contains("base64url"), "{i} {c:?}: {m}");
        }
    }
    // Standard-alphabet rewrite of a url-safe token (- -> +, _ -> /) is rejected.
    let std_alpha = t.replace('-', "+").replace('_', "/");
    if std_alpha != t {
        malformed(&std_alpha);
    }
}

#[test]
fn non_canonical_trailing_bits_are_rejected() {
    // The signature segment's last char carries unused low bits; flipping them would give a
    // second textual form of the same token.
    let t = valid();
    let (rest, sig) = t.rsplit_once('.').unwrap();
    assert_eq!(sig.len() % 4, 2, "256-byte signature leaves 4 unused bits");
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let twin = alphabet.chars().nth(idx | 1).unwrap();
    assert_ne!(twin, last);
    let alt = format!("{rest}.{}{twin}", &sig[..sig.len() - 1]);
    assert!(malformed(&alt).contains("base64url"));
}

#[test]
fn length_limit_is_exact() {
    // Find header/claim sizes giving a token of exactly MAX_TOKEN_LEN characters.
    let mut exact = None;
    'outer: for kid in ["", "k", "kk", "kkk"] {
        let header = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
        for pad in 13_000..15_000 {
            let claims = with_claim("pad", json!("x".repeat(pad))).to_string();
            // Signature length is fixed (256 bytes), so size with a dummy and sign once found.
            let t = craft(&header, &claims, |_| vec![0; 256]);
            if t.len() == MAX_TOKEN_LEN {
                exact = Some(craft(&header, &claims, |m| rsa_a().sign_raw(m).unwrap()));
                break 'outer;
            }
            if t.len() > MAX_TOKEN_LEN {
                break;
            }
        }
    }
    let exact = exact.expect("no exact-length token found");
    assert_eq!(exact.len(), MAX_TOKEN_LEN);
    UnverifiedToken::parse(&exact).unwrap();
    // 20001 characters: rejected before any decoding.
    let over = format!("{exact}A");
    assert_eq!(over.len(), MAX_TOKEN_LEN + 1);
    assert!(malformed(&over).contains("longer than 20000"));
    let over = format!("{}{}", "A".repeat(MAX_TOKEN_LEN - 4), "A.A.A");
    assert_eq!(over.len(), MAX_TOKEN_LEN + 1);
    assert!(malformed(&over).contains("longer than 20000"));
}

#[test]
fn claims_and_header_must_be_json_objects() {
    let h = r#"{"alg":"RS256"}"#;
    let sign = |m: &[u8]| rsa_a().sign_raw(m).unwrap();
    for claims in [
        "[]",
        r#"["iss"]"#,
        "1",
        "\"x\"",
        "null",
        "true",
        " ",
        "{",
        "{}}",
        "{\"a\":1}garbage",
        "\u{feff}{}",
    ] {
        let m = malformed(&craft(h, claims, sign));
        assert!(m.starts_with("claims"), "{claims:?}: {m}");
    }
    for header in ["[]", r#"["RS256"]"#, "\"RS256\"", "null"] {
        let m = malformed(&craft(header, "{}", sign));
        assert!(m.starts_with("header"), "{header:?}: {m}");
    }
    // Invalid UTF-8 in the payload.
    let input = format!("{}.{}", b64(h.as_bytes()), b64(b"{\"iss\":\"\xff\"}"));
    let t = format!("{input}.{}", b64(&sign(input.as_bytes())));
    assert!(malformed(&t).starts_with("claims"));
}

#[test]
fn nesting_depth_is_limited() {
    let nest = |depth: usize| {
        let mut s = String::from("{\"n\":");
        s.push_str(&"{\"n\":".repeat(depth - 2));
        s.push_str("[1]");
        s.push_str(&"}".repeat(depth - 1));
        s
    };
    let sign = |m: &[u8]| rsa_a().sign_raw(m).unwrap();
    let ok = craft(r#"{"alg":"RS256"}"#, &nest(32), sign);
    UnverifiedToken::parse(&ok).unwrap();
    let deep = craft(r#"{"alg":"RS256"}"#, &nest(33), sign);
    assert!(malformed(&deep).contains("too deep"));
    let very_deep = craft(
        r#"{"alg":"RS256"}"#,
        &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        sign,
    );
    assert!(malformed(&very_deep).contains("too deep"));
    let deep_header = format!(
        "{{\"alg\":\"RS256\",\"x\":{}1{}}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    assert!(malformed(&craft(&deep_header, "{}", sign)).contains("too deep"));
}

#[test]
fn duplicate_claims_are_rejected() {
    let sign = |m: &[u8]| rsa_a().sign_raw(m).unwrap();
    let t = craft(
        r#"{"alg":"RS256"}"#,
        &format!(r#"{{"iss":"https://evil.example","iss":"{ISS}"}}"#),
        sign,
    );
    assert!(malformed(&t).contains("duplicate json member \"iss\""));
    let t = craft(r#"{"alg":"RS256","kid":"a","kid":"b"}"#, "{}", sign);
    assert!(malformed(&t).contains("duplicate"));
}

#[test]
fn oversized_header_and_signature_are_rejected() {
    let big_header = format!("{{\"alg\":\"RS256\",\"x\":\"{}\"}}", "a".repeat(5000));
    let t = craft(&big_header, "{}", |_| vec![1]);
    assert!(malformed(&t).contains("header is too long"));
    let t = craft(r#"{"alg":"RS256"}"#, "{}", |_| vec![1; 1025]);
    assert!(malformed(&t).contains("signature is too long"));
    let t = craft(r#"{"alg":"RS256"}"#, "{}", |_| vec![1; 1024]);
    UnverifiedToken::parse(&t).unwrap();
}

#[test]
fn error_messages_never_echo_the_token() {
    let t = valid();
    let bad_inputs = [
        format!("{t}="),
        format!("{t}.x"),
        t.replace('.', "*"),
        format!("{}{}", t, "A".repeat(MAX_TOKEN_LEN)),
    ];
    for bad in bad_inputs {
        let err = UnverifiedToken::parse(&bad).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
        for part in t.split('.') {
            assert!(!err.contains(&part[..part.len().min(16)]), "{err}");
        }
    }
}
