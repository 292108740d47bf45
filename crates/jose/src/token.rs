//! Phase 1: splitting and decoding a compact JWS without verifying it.
//!
//! [`UnverifiedToken::parse`] applies every size limit before work can grow with the input:
//! the token length is checked first, then the segment count, then each segment is decoded
//! (strict base64url) and the JSON is parsed under a depth limit with duplicate members
//! rejected. Nothing here trusts the content; it only makes it available (e.g. `iss`, to pick
//! the issuer's key set) for [`crate::verify`].

use std::fmt;

use serde_json::{Map, Value};

use crate::error::JwtError;
use crate::{MAX_HEADER_LEN, MAX_JSON_DEPTH, MAX_SIGNATURE_LEN, MAX_TOKEN_LEN, b64, json};

/// The decoded JOSE header of a token: the members this crate looks at.
///
/// Members that could name a key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, `x5t#S256`) are ignored:
/// keys only ever come from the caller's [`crate::JwkSet`]. A `crit` member makes the token
/// malformed (no extensions are understood).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

impl Header {
    /// The `alg` member, verbatim (not yet checked against the allow-list).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// The `kid` member, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` member, if present (informational; not validated).
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    fn from_json(map: &Map<String, Value>) -> Result<Self, JwtError> {
        if map.contains_key("crit") {
            return Err(JwtError::Malformed(
                "header has a \"crit\" member; no extensions are supported".to_owned(),
            ));
        }
        let alg = match map.get("alg") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) => {
                return Err(JwtError::Malformed("header \"alg\" is empty".to_owned()));
            }
            Some(_) => {
                return Err(JwtError::Malformed(
                    "header \"alg\" is not a string".to_owned(),
                ));
            }
            None => return Err(JwtError::Malformed("header has no \"alg\"".to_owned())),
        };
        let kid = optional_string(map, "kid")?;
        let typ = optional_string(map, "typ")?;
        Ok(Header { alg, kid, typ })
    }
}

fn optional_string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, JwtError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Malformed(format!(
            "header {name:?} is not a string"
        ))),
    }
}

/// A compact JWS that has been split and decoded but NOT verified.
///
/// Use [`UnverifiedToken::issuer`] to find the issuer's key set, then [`crate::verify`] (or
/// [`UnverifiedToken::into_verified`]). `Debug` shows the header and claims but never the
/// signature, so logging a parsed token does not log a replayable credential.
#[derive(Clone)]
pub struct UnverifiedToken {
    header: Header,
    claims: Map<String, Value>,
    /// `BASE64URL(header) '.' BASE64URL(payload)` exactly as received.
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedToken {
    /// Splits and decodes a compact JWS.
    ///
    /// Rejected as [`JwtError::Malformed`]: more than [`MAX_TOKEN_LEN`] bytes; not exactly
    /// three `.`-separated segments; an empty segment (including the empty signature of
    /// `alg: none` tokens); any segment that is not canonical unpadded base64url; a header
    /// over [`MAX_HEADER_LEN`] bytes or a signature over [`MAX_SIGNATURE_LEN`] bytes once
    /// decoded; header or claims that are not a JSON object, nest deeper than
    /// [`MAX_JSON_DEPTH`], or repeat a member name; a header without a string `alg`, with a
    /// non-string `kid`/`typ`, or with `crit`.
    pub fn parse(token: &str) -> Result<Self, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed(format!(
                "token is longer than {MAX_TOKEN_LEN} characters"
            )));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "token does not have exactly three segments".to_owned(),
            ));
        };
        if h64.is_empty() || p64.is_empty() || s64.is_empty() {
            return Err(JwtError::Malformed("token has an empty segment".to_owned()));
        }
        // Encoded-length bounds first, so nothing oversized is ever decoded.
        if s64.len() > encoded_len(MAX_SIGNATURE_LEN) {
            return Err(JwtError::Malformed("signature is too long".to_owned()));
        }
        if h64.len() > encoded_len(MAX_HEADER_LEN) {
            return Err(JwtError::Malformed("header is too long".to_owned()));
        }
        let signature = b64::decode_segment(s64)
            .ok_or_else(|| JwtError::Malformed("signature is not base64url".to_owned()))?;
        let header_bytes = b64::decode_segment(h64)
            .ok_or_else(|| JwtError::Malformed("header is not base64url".to_owned()))?;
        let header_map = json::parse_object(&header_bytes, MAX_JSON_DEPTH)
            .map_err(|e| JwtError::Malformed(format!("header: {e}")))?;
        let header = Header::from_json(&header_map)?;
        let payload = b64::decode_segment(p64)
            .ok_or_else(|| JwtError::Malformed("payload is not base64url".to_owned()))?;
        let claims = json::parse_object(&payload, MAX_JSON_DEPTH)
            .map_err(|e| JwtError::Malformed(format!("claims: {e}")))?;
        let signing_input_len = h64.len() + 1 + p64.len();
        let signing_input = token
            .get(..signing_input_len)
            .ok_or_else(|| JwtError::Malformed("token is not splittable".to_owned()))?
            .to_owned();
        Ok(UnverifiedToken {
            header,
            claims,
            signing_input,
            signature,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header `alg`, verbatim (not yet checked).
    pub fn alg(&self) -> &str {
        self.header.alg()
    }

    /// The header `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid()
    }

    /// The unverified `iss` claim, if it is a string. Use it only to choose which issuer's
    /// key set to verify against.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The unverified claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The JWS signing input (`header '.' payload`, as received).
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    pub(crate) fn into_claims(self) -> Map<String, Value> {
        self.claims
    }
}

impl fmt::Debug for UnverifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("header", &self.header)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Length of the unpadded base64url encoding of `n` bytes.
const fn encoded_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64::encode(json.as_bytes())
    }

    fn tok(h: &str, p: &str) -> String {
        format!("{}.{}.{}", seg(h), seg(p), b64::encode(&[1, 2, 3]))
    }

    #[test]
    fn parses_minimal_token() {
        let t = UnverifiedToken::parse(&tok(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT","jwk":{"kty":"RSA"}}"#,
            r#"{"iss":"https://issuer","n":1}"#,
        ))
        .unwrap();
        assert_eq!(t.alg(), "RS256");
        assert_eq!(t.kid(), Some("k1"));
        assert_eq!(t.header().typ(), Some("JWT"));
        assert_eq!(t.issuer(), Some("https://issuer"));
        assert_eq!(t.signature(), &[1, 2, 3]);
        assert_eq!(t.signing_input().matches('.').count(), 1);
    }

    #[test]
    fn header_rules() {
        let p = r#"{"iss":"x"}"#;
        for (h, want) in [
            (r#"{"kid":"a"}"#, "no \"alg\""),
            (r#"{"alg":""}"#, "empty"),
            (r#"{"alg":256}"#, "not a string"),
            (r#"{"alg":null}"#, "not a string"),
            (r#"{"alg":"RS256","kid":7}"#, "\"kid\" is not a string"),
            (
                r#"{"alg":"RS256","typ":["JWT"]}"#,
                "\"typ\" is not a string",
            ),
            (r#"{"alg":"RS256","crit":["exp"],"exp":1}"#, "crit"),
            (r#"{"alg":"RS256","crit":[]}"#, "crit"),
            (r#"{"alg":"RS256","b64":false,"crit":["b64"]}"#, "crit"),
            (r#"{"alg":"RS256","alg":"none"}"#, "duplicate"),
        ] {
            match UnverifiedToken::parse(&tok(h, p)) {
                Err(JwtError::Malformed(m)) => assert!(m.contains(want), "{h}: {m}"),
                other => panic!("{h}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_omits_signature_and_signing_input() {
        let raw = tok(r#"{"alg":"RS256"}"#, r#"{"iss":"x"}"#);
        let t = UnverifiedToken::parse(&raw).unwrap();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&raw));
        assert!(!dbg.contains("signature"));
        assert!(!dbg.contains(&seg(r#"{"iss":"x"}"#)));
    }

    #[test]
    fn encoded_len_bounds() {
        assert_eq!(encoded_len(0), 0);
        assert_eq!(encoded_len(1), 2);
        assert_eq!(encoded_len(256), 342);
        assert_eq!(encoded_len(1024), 1366);
        assert_eq!(b64::encode(&[0u8; 1024]).len(), encoded_len(1024));
    }
}
