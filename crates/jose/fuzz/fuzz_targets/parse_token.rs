//! Feeds arbitrary bytes to the token parser and the JWK set parser, and input of the form
//! `<token>\n<jwks>` through full verification. Run from `crates/jose` with
//! `cargo fuzz run parse_token` (seed corpus in `fuzz/corpus/parse_token`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_jose::{JwkSet, UnverifiedToken, Validation, verify};

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = JwkSet::from_json(data) {
        let _ = set.to_json();
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(token) = UnverifiedToken::parse(&text) {
        let _ = (token.issuer(), token.kid(), token.alg());
    }
    if let Some((tok, jwks)) = text.split_once('\n') {
        if let (Ok(token), Ok(keys)) = (
            UnverifiedToken::parse(tok),
            JwkSet::from_json(jwks.as_bytes()),
        ) {
            let aud = vec!["sts.amazonaws.com".to_owned()];
            let v = Validation::new(token.issuer().unwrap_or(""), &aud, 1_760_000_000);
            let _ = verify(&token, &keys, &v);
        }
    }
});
