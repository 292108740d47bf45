//! The service account token checks the real agent makes before calling EKS Auth: the token
//! must be a three-segment JWS whose header and claims are base64url JSON objects, and its
//! `exp`/`nbf` must hold now (golang-jwt v5 semantics and messages). Also the pod a token is
//! bound to ([`PodIdentity`]), read from its claims. The signature is not verified here: the
//! cluster's keys (`clusterkeys`, when configured) or EKS Auth do that, and a [`PodIdentity`]
//! is only trusted once one of them has.

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
    parse_claims(token).map(|(times, _)| times)
}

/// Like [`parse`], also returning the pod the token claims to be bound to (`None` if its
/// claims do not name one). Unverified: trust it only once the token's signature is checked.
pub fn parse_with_pod(token: &str) -> Result<(TokenTimes, Option<PodIdentity>), TokenError> {
    parse_claims(token).map(|(times, claims)| (times, PodIdentity::from_claims(&claims).ok()))
}

/// The pod a projected service account token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodIdentity {
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The pod's uid.
    pub pod_uid: String,
}

impl PodIdentity {
    /// The checks EKS Auth makes: `sub` is `system:serviceaccount:<namespace>:<name>`, the
    /// `kubernetes.io` namespace and service account, when present, agree with it, and the
    /// token is bound to a pod (`kubernetes.io.pod.uid`). The error says which check failed.
    pub fn from_claims(
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, &'static str> {
        let sub = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .ok_or("the token has no subject")?;
        let (namespace, service_account) = sub
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty())
            .ok_or("the token's subject is not a service account")?;
        let k8s = claims
            .get("kubernetes.io")
            .and_then(serde_json::Value::as_object);
        let field = |outer: &str, inner: &str| {
            k8s.and_then(|k| k.get(outer))
                .and_then(serde_json::Value::as_object)
                .and_then(|o| o.get(inner))
                .and_then(serde_json::Value::as_str)
        };
        if k8s
            .and_then(|k| k.get("namespace"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|ns| ns != namespace)
        {
            return Err("the token's namespace claim does not match its subject");
        }
        if field("serviceaccount", "name").is_some_and(|n| n != service_account) {
            return Err("the token's service account claim does not match its subject");
        }
        let pod_uid = field("pod", "uid")
            .filter(|u| !u.is_empty())
            .ok_or("the token is not bound to a pod")?;
        Ok(Self {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            pod_uid: pod_uid.to_owned(),
        })
    }

    /// SHA-256 over the three names, each followed by a NUL (no name contains one).
    pub(crate) fn key(&self) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [&self.namespace, &self.service_account, &self.pod_uid] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        let mut k = [0u8; 32];
        for (dst, src) in k.iter_mut().zip(ctx.finish().as_ref()) {
            *dst = *src;
        }
        k
    }
}

type Claims = serde_json::Map<String, serde_json::Value>;

fn parse_claims(token: &str) -> Result<(TokenTimes, Claims), TokenError> {
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
    let claims: Claims =
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
    Ok((TokenTimes { exp_ms, nbf_ms }, claims))
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
    fn pod_identity_from_claims() {
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        let ok = claims(serde_json::json!({
            "sub": "system:serviceaccount:ns:sa",
            "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa"},
                              "pod": {"name": "p", "uid": "u-1"}}
        }));
        let id = PodIdentity::from_claims(&ok).unwrap();
        assert_eq!(
            (
                id.namespace.as_str(),
                id.service_account.as_str(),
                id.pod_uid.as_str()
            ),
            ("ns", "sa", "u-1")
        );
        let other = PodIdentity {
            pod_uid: "u-2".into(),
            ..id.clone()
        };
        assert_ne!(id.key(), other.key());
        for (bad, why) in [
            (serde_json::json!({}), "the token has no subject"),
            (
                serde_json::json!({"sub": "alice"}),
                "the token's subject is not a service account",
            ),
            (
                serde_json::json!({"sub": "system:serviceaccount:ns:sa",
                    "kubernetes.io": {"namespace": "other", "pod": {"uid": "u"}}}),
                "the token's namespace claim does not match its subject",
            ),
            (
                serde_json::json!({"sub": "system:serviceaccount:ns:sa",
                    "kubernetes.io": {"serviceaccount": {"name": "x"}, "pod": {"uid": "u"}}}),
                "the token's service account claim does not match its subject",
            ),
            (
                serde_json::json!({"sub": "system:serviceaccount:ns:sa"}),
                "the token is not bound to a pod",
            ),
        ] {
            assert_eq!(PodIdentity::from_claims(&claims(bad)), Err(why));
        }
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
