//! The service account token checks the real agent makes before calling EKS Auth: the token
//! must be a three-segment JWS whose header and claims are base64url JSON objects, and its
//! `exp`/`nbf` must hold now (golang-jwt v5 semantics and messages). The signature is not
//! verified here: EKS Auth does that.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Go's `base64.RawURLEncoding` (lenient about trailing bits, no padding).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// The largest token accepted (projected tokens are about 1-2 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The time claims of a token, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenTimes {
    /// `exp`, if present.
    pub exp_ms: Option<i64>,
    /// `nbf`, if present.
    pub nbf_ms: Option<i64>,
}

/// Why a token is refused (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No token.
    Empty,
    /// Not a parseable JWT.
    Parse(String),
    /// Parsed, but `exp`/`nbf` do not hold now.
    Claims(String),
}

impl TokenError {
    /// The response body the real agent sends (without the trailing newline).
    pub fn message(&self) -> String {
        match self {
            Self::Empty => "Service account token cannot be empty".to_owned(),
            Self::Parse(e) => format!("Service account token cannot be parsed: {e}"),
            Self::Claims(e) => format!("Service account token failed basic claim validations: {e}"),
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

fn malformed(what: &str, err: impl std::fmt::Display) -> TokenError {
    TokenError::Parse(format!("token is malformed: {what}: {err}"))
}

fn b64_error(e: base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => {
            format!("illegal base64 data at input byte {i}")
        }
        base64::DecodeError::InvalidLength(n) => format!("illegal base64 data at input byte {n}"),
        other => format!("illegal base64 data: {other}"),
    }
}

const KNOWN_ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA", "none",
];

/// A NumericDate claim: absent/null, or a number of seconds.
fn numeric_date(
    claims: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(f64::MAX);
            // Saturating float-to-int conversion.
            Ok(Some((secs * 1000.0) as i64))
        }
        Some(_) => Err(malformed(
            "could not JSON decode claim",
            format!(
                "json: cannot unmarshal non-number into Go struct field RegisteredClaims.{name} of type jwt.NumericDate"
            ),
        )),
    }
}

/// Parses (without verifying) a JWS compact token and returns its time claims.
pub fn parse(token: &str) -> Result<TokenTimes, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Parse(
            "token is malformed: token is too large".to_owned(),
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Parse(
            "token is malformed: token contains an invalid number of segments".to_owned(),
        ));
    };
    let header = B64
        .decode(h)
        .map_err(|e| malformed("could not base64 decode header", b64_error(e)))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| malformed("could not JSON decode header", e))?;
    let claims = B64
        .decode(c)
        .map_err(|e| malformed("could not base64 decode claim", b64_error(e)))?;
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&claims).map_err(|e| malformed("could not JSON decode claim", e))?;
    match header.get("alg").and_then(serde_json::Value::as_str) {
        None => {
            return Err(TokenError::Parse(
                "token is unverifiable: signing method (alg) is unspecified".to_owned(),
            ));
        }
        Some(alg) if !KNOWN_ALGS.contains(&alg) => {
            return Err(TokenError::Parse(
                "token is unverifiable: signing method (alg) is unavailable".to_owned(),
            ));
        }
        Some(_) => {}
    }
    B64.decode(s)
        .map_err(|e| malformed("could not base64 decode signature", b64_error(e)))?;
    let exp_ms = numeric_date(&claims, "exp")?;
    let nbf_ms = numeric_date(&claims, "nbf")?;
    numeric_date(&claims, "iat")?;
    Ok(TokenTimes { exp_ms, nbf_ms })
}

impl TokenTimes {
    /// golang-jwt v5's default validation at `now_ms`: not expired (`now < exp`) and valid
    /// already (`now >= nbf`).
    pub fn validate(&self, now_ms: i64) -> Result<(), TokenError> {
        let expired = self.exp_ms.is_some_and(|exp| now_ms >= round_secs(exp));
        let early = self.nbf_ms.is_some_and(|nbf| now_ms < round_secs(nbf));
        match (expired, early) {
            (false, false) => Ok(()),
            (true, false) => Err(TokenError::Claims(
                "token has invalid claims: token is expired".to_owned(),
            )),
            (false, true) => Err(TokenError::Claims(
                "token has invalid claims: token is not valid yet".to_owned(),
            )),
            (true, true) => Err(TokenError::Claims(
                "token has invalid claims: token is expired, token is not valid yet".to_owned(),
            )),
        }
    }

    /// Is the token still usable at `now_ms`?
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.exp_ms.is_none_or(|exp| now_ms < round_secs(exp))
            && self.nbf_ms.is_none_or(|nbf| now_ms >= round_secs(nbf))
    }
}

/// golang-jwt truncates NumericDate to whole seconds.
fn round_secs(ms: i64) -> i64 {
    ms.div_euclid(1000).saturating_mul(1000)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        B64.encode(s)
    }

    fn tok(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"RS256","kid":"k"}"#),
            enc(claims)
        )
    }

    #[test]
    fn parses_and_validates() {
        let t = parse(&tok(r#"{"exp":2000,"nbf":1000,"iat":1000}"#)).unwrap();
        assert_eq!(
            t,
            TokenTimes {
                exp_ms: Some(2_000_000),
                nbf_ms: Some(1_000_000)
            }
        );
        assert!(t.validate(1_500_000).is_ok());
        assert_eq!(
            t.validate(2_000_000).unwrap_err().message(),
            "Service account token failed basic claim validations: token has invalid claims: token is expired"
        );
        assert!(
            t.validate(999_999)
                .unwrap_err()
                .message()
                .ends_with("token is not valid yet")
        );
        assert!(parse(&tok("{}")).unwrap().validate(0).is_ok());
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(""), Err(TokenError::Empty));
        let e = parse("abc").unwrap_err().message();
        assert_eq!(
            e,
            "Service account token cannot be parsed: token is malformed: token contains an invalid number of segments"
        );
        assert!(parse("a.b.c.d").is_err());
        assert!(
            parse("!!.e30.c2ln")
                .unwrap_err()
                .message()
                .contains("could not base64 decode header")
        );
        assert!(
            parse(&format!("{}.{}.x", enc("[]"), enc("{}")))
                .unwrap_err()
                .message()
                .contains("could not JSON decode header")
        );
        assert!(
            parse(&format!("{}.{}.x", enc(r#"{"alg":"RS256"}"#), enc("nope")))
                .unwrap_err()
                .message()
                .contains("could not JSON decode claim")
        );
        assert!(
            parse(&tok(r#"{"exp":"soon"}"#))
                .unwrap_err()
                .message()
                .contains("could not JSON decode claim")
        );
        assert!(
            parse(&format!("{}.{}.x", enc("{}"), enc("{}")))
                .unwrap_err()
                .message()
                .contains("unspecified")
        );
        assert!(
            parse(&format!("{}.{}.x", enc(r#"{"alg":"XX1"}"#), enc("{}")))
                .unwrap_err()
                .message()
                .contains("unavailable")
        );
        assert!(
            parse(&format!("{}.{}.a+b", enc(r#"{"alg":"RS256"}"#), enc("{}")))
                .unwrap_err()
                .message()
                .contains("signature")
        );
    }
}
