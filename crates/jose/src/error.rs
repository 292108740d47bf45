//! Error types for token verification ([`JwtError`]), key-set parsing ([`JwkError`]) and
//! signing-key handling ([`KeyError`]).
//!
//! Display messages are lowercase, never contain the token, and quote (escaped, truncated)
//! any attacker-controlled input they mention.

use thiserror::Error;

/// The longest piece of untrusted input an error message will carry.
const MAX_QUOTED_CHARS: usize = 64;

/// Truncates untrusted input for inclusion in an error (it is quoted and escaped by the
/// `Display` impls through `{:?}`).
pub(crate) fn snippet(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_QUOTED_CHARS).collect();
        out.push('…');
        out
    }
}

/// Why a token was rejected.
///
/// The STS front end maps [`JwtError::Expired`] to `ExpiredTokenException` and every other
/// variant to `InvalidIdentityToken`; [`JwtError::UnknownKid`] additionally tells the caller
/// that refetching the issuer's JWKS once may help.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is not a well-formed compact JWS / JWT (bad segment count, bad base64url,
    /// non-object JSON, limits exceeded, forbidden header parameter such as `crit`, ...).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header `alg` is not on the verifier's allow-list (RS256/384/512, ES256/384/512).
    /// Carries the (truncated) header value.
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No key of the key set could be selected: the header `kid` is not in the set, or the
    /// header has no `kid` and the set has no key usable with the header `alg`.
    /// Refetching the JWKS once may help.
    #[error("no key in the issuer's key set matches the token")]
    UnknownKid,
    /// The key(s) named by the header `kid` exist but cannot be used with the header `alg`
    /// (wrong key type or curve, or the JWK pins a different `alg`). Carries the header `alg`.
    #[error("the key selected by kid cannot verify algorithm {0:?}")]
    IncompatibleKey(String),
    /// The signature does not verify with any selected key.
    #[error("signature verification failed")]
    BadSignature,
    /// `exp` (plus leeway) is in the past.
    #[error("token is expired")]
    Expired,
    /// `nbf` (minus leeway) is in the future.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iss` does not equal the expected issuer.
    #[error("token issuer does not match")]
    WrongIssuer,
    /// `aud` contains none of the accepted audiences.
    #[error("token audience does not match")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing required claim {0:?}")]
    MissingClaim(&'static str),
    /// A claim is present but has the wrong JSON type or an unacceptable value.
    #[error("invalid claim {0:?}")]
    InvalidClaim(&'static str),
}

/// Why a JWK set document was rejected as a whole. (Individual unusable keys are skipped,
/// not errors; see [`crate::JwkSet::skipped`].)
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The document is not JSON of the shape `{"keys":[...]}`.
    #[error("malformed jwk set: {0}")]
    Malformed(String),
    /// The document is larger than [`crate::MAX_JWKS_LEN`] bytes.
    #[error("jwk set is too large ({len} bytes, limit {max})")]
    TooLarge {
        /// Size of the document in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The `keys` array has more than [`crate::MAX_JWKS_KEYS`] entries.
    #[error("jwk set has too many keys ({count}, limit {max})")]
    TooManyKeys {
        /// Number of entries in `keys`.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Errors of the signing side: key generation, import/export and signing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key material was rejected (wrong type, wrong curve, too small, unparsable).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// PEM framing error.
    #[error("invalid pem: {0}")]
    Pem(String),
    /// The claims to sign are not a JSON object.
    #[error("claims must be a json object")]
    ClaimsNotObject,
    /// The cryptographic library reported a failure.
    #[error("cryptographic operation failed")]
    Crypto,
}

impl From<aws_lc_rs::error::Unspecified> for KeyError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        KeyError::Crypto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_truncates_and_display_quotes() {
        let long = "A".repeat(500);
        let e = JwtError::UnsupportedAlgorithm(snippet(&long));
        let msg = e.to_string();
        assert!(msg.len() < 120, "{msg}");
        assert!(msg.starts_with("unsupported signing algorithm \"AAAA"));
        let e = JwtError::UnsupportedAlgorithm(snippet("a\"b\n"));
        assert_eq!(e.to_string(), "unsupported signing algorithm \"a\\\"b\\n\"");
    }

    #[test]
    fn messages_are_lowercase() {
        let all = [
            JwtError::Malformed("x".into()),
            JwtError::UnsupportedAlgorithm("x".into()),
            JwtError::UnknownKid,
            JwtError::IncompatibleKey("x".into()),
            JwtError::BadSignature,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::WrongIssuer,
            JwtError::WrongAudience,
            JwtError::MissingClaim("exp"),
            JwtError::InvalidClaim("exp"),
        ];
        for e in all {
            let m = e.to_string();
            let first = m.chars().next().unwrap_or('x');
            assert!(first.is_lowercase(), "{m}");
        }
    }
}
