//! Phase 2: signature and claim verification (see [`verify`] for the rules).

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::JwtError;
use crate::jwk::JwkSet;
use crate::token::UnverifiedToken;

/// What a verified token must satisfy.
///
/// Construct with [`Validation::new`] (leeway 300 s, `sub` required, audience checked) and
/// adjust the public fields. The audience check can only be disabled through
/// [`Validation::dangerous_skip_audience`]; an empty `audiences` list rejects every token.
#[derive(Debug, Clone)]
pub struct Validation<'a> {
    /// `iss` must equal this exactly (byte-for-byte: no normalisation of trailing slashes,
    /// case or scheme).
    pub issuer: &'a str,
    /// `aud` (string or array) must contain at least one of these.
    pub audiences: &'a [String],
    /// Current time, unix seconds (injected; the crate reads no clock).
    pub now: i64,
    /// Clock-skew allowance in seconds applied to `exp`, `nbf` and `iat` (AWS STS: 300).
    /// Negative values are treated as 0.
    pub leeway_secs: i64,
    /// Whether `sub` must be present (and a non-empty string).
    pub require_sub: bool,
    skip_audience: bool,
}

impl<'a> Validation<'a> {
    /// Default STS-style validation: leeway 300 s, `sub` required, audience checked.
    pub fn new(issuer: &'a str, audiences: &'a [String], now: i64) -> Self {
        Validation {
            issuer,
            audiences,
            now,
            leeway_secs: 300,
            require_sub: true,
            skip_audience: false,
        }
    }

    /// Disables the audience check entirely (a present `aud` must still be well-typed).
    /// Only for tests and for tokens whose audience is checked elsewhere; never for STS.
    #[must_use]
    pub fn dangerous_skip_audience(mut self) -> Self {
        self.skip_audience = true;
        self
    }
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The algorithm the signature was verified with.
    pub alg: Algorithm,
    /// The `kid` of the key that verified the signature (from the JWK set), if it has one.
    pub kid: Option<String>,
    /// `iss`.
    pub issuer: String,
    /// `sub`, if present.
    pub subject: Option<String>,
    /// `aud`, normalised to a list (empty only if absent under `dangerous_skip_audience`).
    pub audiences: Vec<String>,
    /// The first of [`Validation::audiences`] found in `aud` (`None` if skipped).
    pub matched_audience: Option<String>,
    /// `exp`.
    pub expires_at: i64,
    /// `iat`.
    pub issued_at: i64,
    /// `nbf`, if present.
    pub not_before: Option<i64>,
    /// All claims.
    pub claims: Map<String, Value>,
}

/// Verifies a parsed token's signature against `keys` and its claims against `v`.
///
/// Key selection is described at [`JwkSet::verify_signature`].
///
/// Order of checks: algorithm allow-list → key selection → signature → claims. Claims are
/// only interpreted after the signature verified, so an attacker learns nothing from claim
/// errors on forged tokens. Claim rules (AWS STS `AssumeRoleWithWebIdentity` semantics):
///
/// | claim | rule | error |
/// |---|---|---|
/// | `iss` | string, byte-equal to [`Validation::issuer`] | missing → `MissingClaim`, non-string → `InvalidClaim`, other → `WrongIssuer` |
/// | `aud` | string or non-empty array of strings containing one of [`Validation::audiences`] | missing → `MissingClaim`, bad type / empty array / non-string element → `InvalidClaim`, no match → `WrongAudience` |
/// | `sub` | if [`Validation::require_sub`]: non-empty string; if present: a string | `MissingClaim` / `InvalidClaim` |
/// | `exp` | integer JSON number; `now <= exp + leeway` | `MissingClaim` / `InvalidClaim` / `Expired` |
/// | `iat` | integer JSON number; `iat <= now + leeway` | `MissingClaim` / `InvalidClaim` |
/// | `nbf` | optional; integer JSON number; `nbf <= now + leeway` | `InvalidClaim` / `NotYetValid` |
///
/// "Integer JSON number" means a number written without fraction or exponent that fits an
/// `i64`: `"exp":"123"` (string), `123.0`, `1.23e2` and `1e20` are all `InvalidClaim`.
/// Kubernetes always emits plain integers and AWS STS rejects non-integer timestamps.
/// Type and identity checks come before time checks, so an expired token with a wrong
/// audience reports `WrongAudience`.
pub fn verify(
    token: &UnverifiedToken,
    keys: &JwkSet,
    v: &Validation<'_>,
) -> Result<VerifiedClaims, JwtError> {
    let (alg, kid) = check_signature(token, keys)?;
    let checked = check_claims(token.claims(), v)?;
    Ok(checked.finish(alg, kid, token.claims().clone()))
}

impl UnverifiedToken {
    /// Like [`verify`], consuming the token to avoid copying its claims.
    pub fn into_verified(
        self,
        keys: &JwkSet,
        v: &Validation<'_>,
    ) -> Result<VerifiedClaims, JwtError> {
        let (alg, kid) = check_signature(&self, keys)?;
        let checked = check_claims(self.claims(), v)?;
        Ok(checked.finish(alg, kid, self.into_claims()))
    }
}

fn check_signature(
    token: &UnverifiedToken,
    keys: &JwkSet,
) -> Result<(Algorithm, Option<String>), JwtError> {
    let (alg, key) = keys.select_and_verify(
        token.alg(),
        token.kid(),
        token.signing_input().as_bytes(),
        token.signature(),
    )?;
    Ok((alg, key.kid().map(str::to_owned)))
}

struct Checked {
    issuer: String,
    subject: Option<String>,
    audiences: Vec<String>,
    matched_audience: Option<String>,
    expires_at: i64,
    issued_at: i64,
    not_before: Option<i64>,
}

impl Checked {
    fn finish(
        self,
        alg: Algorithm,
        kid: Option<String>,
        claims: Map<String, Value>,
    ) -> VerifiedClaims {
        VerifiedClaims {
            alg,
            kid,
            issuer: self.issuer,
            subject: self.subject,
            audiences: self.audiences,
            matched_audience: self.matched_audience,
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            not_before: self.not_before,
            claims,
        }
    }
}

/// Claim validation alone (the signature must already have been verified).
fn check_claims(claims: &Map<String, Value>, v: &Validation<'_>) -> Result<Checked, JwtError> {
    // iss
    let issuer = match claims.get("iss") {
        None => return Err(JwtError::MissingClaim("iss")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(JwtError::InvalidClaim("iss")),
    };
    if issuer != v.issuer {
        return Err(JwtError::WrongIssuer);
    }

    // aud
    let audiences: Vec<String> = match claims.get("aud") {
        None if v.skip_audience => Vec::new(),
        None => return Err(JwtError::MissingClaim("aud")),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(JwtError::InvalidClaim("aud"));
            }
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(JwtError::InvalidClaim("aud"))?
        }
        Some(_) => return Err(JwtError::InvalidClaim("aud")),
    };
    let matched_audience = if v.skip_audience {
        None
    } else {
        let found = v
            .audiences
            .iter()
            .find(|want| audiences.iter().any(|have| have == *want))
            .ok_or(JwtError::WrongAudience)?;
        Some(found.clone())
    };

    // sub
    let subject = match claims.get("sub") {
        None if v.require_sub => return Err(JwtError::MissingClaim("sub")),
        None => None,
        Some(Value::String(s)) if v.require_sub && s.is_empty() => {
            return Err(JwtError::InvalidClaim("sub"));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(JwtError::InvalidClaim("sub")),
    };

    // timestamps: types first, then times.
    let expires_at = required_time(claims, "exp")?;
    let issued_at = required_time(claims, "iat")?;
    let not_before = match claims.get("nbf") {
        None => None,
        Some(value) => Some(integer_time(value).ok_or(JwtError::InvalidClaim("nbf"))?),
    };
    let leeway = v.leeway_secs.max(0);
    if v.now > expires_at.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    if not_before.is_some_and(|nbf| nbf > v.now.saturating_add(leeway)) {
        return Err(JwtError::NotYetValid);
    }
    if issued_at > v.now.saturating_add(leeway) {
        return Err(JwtError::InvalidClaim("iat"));
    }

    Ok(Checked {
        issuer: issuer.clone(),
        subject,
        audiences,
        matched_audience,
        expires_at,
        issued_at,
        not_before,
    })
}

fn required_time(claims: &Map<String, Value>, name: &'static str) -> Result<i64, JwtError> {
    let value = claims.get(name).ok_or(JwtError::MissingClaim(name))?;
    integer_time(value).ok_or(JwtError::InvalidClaim(name))
}

/// An integer JSON number that fits `i64` (floats, strings and huge values are `None`).
fn integer_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://oidc.example/id/ABC";
    const NOW: i64 = 1_700_000_000;

    fn aud() -> Vec<String> {
        vec!["sts.amazonaws.com".to_owned()]
    }

    fn base() -> Map<String, Value> {
        match json!({
            "iss": ISS, "sub": "system:serviceaccount:ns:sa", "aud": ["sts.amazonaws.com"],
            "exp": NOW + 3600, "iat": NOW - 10, "nbf": NOW - 10,
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn with(k: &str, v: Value) -> Map<String, Value> {
        let mut m = base();
        m.insert(k.to_owned(), v);
        m
    }

    fn without(k: &str) -> Map<String, Value> {
        let mut m = base();
        m.remove(k);
        m
    }

    fn check(m: &Map<String, Value>) -> Result<Checked, JwtError> {
        let a = aud();
        check_claims(m, &Validation::new(ISS, &a, NOW))
    }

    fn err(m: &Map<String, Value>) -> JwtError {
        match check(m) {
            Ok(_) => panic!("accepted {m:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_kubernetes_shaped_claims() {
        let c = check(&base()).unwrap();
        assert_eq!(c.issuer, ISS);
        assert_eq!(c.matched_audience.as_deref(), Some("sts.amazonaws.com"));
        assert_eq!(c.subject.as_deref(), Some("system:serviceaccount:ns:sa"));
        assert_eq!(c.expires_at, NOW + 3600);
        assert_eq!(c.not_before, Some(NOW - 10));
        // aud as a plain string too.
        assert!(check(&with("aud", json!("sts.amazonaws.com"))).is_ok());
        // aud with several values, one matching.
        assert!(check(&with("aud", json!(["x", "sts.amazonaws.com"]))).is_ok());
        // nbf is optional.
        assert!(check(&without("nbf")).is_ok());
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(err(&without("iss")), JwtError::MissingClaim("iss"));
        assert_eq!(err(&with("iss", json!(1))), JwtError::InvalidClaim("iss"));
        assert_eq!(
            err(&with("iss", json!([ISS]))),
            JwtError::InvalidClaim("iss")
        );
        for wrong in [
            format!("{ISS}/"),
            format!("{ISS}X"),
            ISS[..ISS.len() - 1].to_owned(),
            ISS.to_uppercase(),
            ISS.replace("https", "http"),
            format!(" {ISS}"),
            String::new(),
        ] {
            assert_eq!(
                err(&with("iss", json!(wrong))),
                JwtError::WrongIssuer,
                "{wrong}"
            );
        }
    }

    #[test]
    fn audience_rules() {
        assert_eq!(err(&without("aud")), JwtError::MissingClaim("aud"));
        assert_eq!(err(&with("aud", json!("other"))), JwtError::WrongAudience);
        assert_eq!(
            err(&with("aud", json!(["other", "x"]))),
            JwtError::WrongAudience
        );
        assert_eq!(
            err(&with("aud", json!("sts.amazonaws.com/"))),
            JwtError::WrongAudience
        );
        assert_eq!(err(&with("aud", json!([]))), JwtError::InvalidClaim("aud"));
        assert_eq!(err(&with("aud", json!(5))), JwtError::InvalidClaim("aud"));
        assert_eq!(
            err(&with("aud", json!(null))),
            JwtError::InvalidClaim("aud")
        );
        assert_eq!(
            err(&with("aud", json!(["sts.amazonaws.com", 5]))),
            JwtError::InvalidClaim("aud")
        );
        assert_eq!(
            err(&with("aud", json!({"sts.amazonaws.com": true}))),
            JwtError::InvalidClaim("aud")
        );
        // An empty accepted-audience list rejects everything unless explicitly skipped.
        let none: Vec<String> = Vec::new();
        assert_eq!(
            check_claims(&base(), &Validation::new(ISS, &none, NOW)).err(),
            Some(JwtError::WrongAudience)
        );
        let skip = Validation::new(ISS, &none, NOW).dangerous_skip_audience();
        assert!(check_claims(&base(), &skip).is_ok());
        assert!(check_claims(&without("aud"), &skip).is_ok());
        assert_eq!(
            check_claims(&with("aud", json!(5)), &skip).err(),
            Some(JwtError::InvalidClaim("aud"))
        );
    }

    #[test]
    fn subject_rules() {
        assert_eq!(err(&without("sub")), JwtError::MissingClaim("sub"));
        assert_eq!(err(&with("sub", json!(""))), JwtError::InvalidClaim("sub"));
        assert_eq!(err(&with("sub", json!(7))), JwtError::InvalidClaim("sub"));
        let a = aud();
        let mut v = Validation::new(ISS, &a, NOW);
        v.require_sub = false;
        assert!(check_claims(&without("sub"), &v).is_ok());
        assert_eq!(
            check_claims(&with("sub", json!(7)), &v).err(),
            Some(JwtError::InvalidClaim("sub"))
        );
    }

    #[test]
    fn timestamp_types() {
        for name in ["exp", "iat"] {
            let n: &'static str = if name == "exp" { "exp" } else { "iat" };
            assert_eq!(err(&without(name)), JwtError::MissingClaim(n));
            for bad in [
                json!(NOW.to_string()),
                json!(null),
                json!(true),
                json!([NOW]),
                json!(1.5),
                json!(1e300),
                json!(u64::MAX),
            ] {
                assert_eq!(
                    err(&with(name, bad.clone())),
                    JwtError::InvalidClaim(n),
                    "{name} {bad}"
                );
            }
        }
        assert_eq!(err(&with("nbf", json!("1"))), JwtError::InvalidClaim("nbf"));
        assert_eq!(err(&with("nbf", json!(1.0))), JwtError::InvalidClaim("nbf"));
    }

    #[test]
    fn float_that_looks_integral_is_rejected() {
        // serde_json keeps `123.0` as a float.
        let m: Map<String, Value> =
            serde_json::from_str(&format!("{{\"exp\":{}.0}}", NOW + 10)).unwrap();
        let mut claims = base();
        claims.insert("exp".into(), m["exp"].clone());
        assert_eq!(err(&claims), JwtError::InvalidClaim("exp"));
    }

    #[test]
    fn expiry_boundary_is_exact() {
        let a = aud();
        let v = Validation::new(ISS, &a, NOW);
        // exp + leeway == now: still valid.
        assert!(check_claims(&with("exp", json!(NOW - 300)), &v).is_ok());
        // One second later: expired.
        assert_eq!(
            check_claims(&with("exp", json!(NOW - 301)), &v).err(),
            Some(JwtError::Expired)
        );
        // Within leeway.
        assert!(check_claims(&with("exp", json!(NOW - 1)), &v).is_ok());
        // Zero leeway.
        let mut strict = v.clone();
        strict.leeway_secs = 0;
        assert!(check_claims(&with("exp", json!(NOW)), &strict).is_ok());
        assert_eq!(
            check_claims(&with("exp", json!(NOW - 1)), &strict).err(),
            Some(JwtError::Expired)
        );
        // Negative leeway is treated as zero, not as extra strictness or overflow.
        strict.leeway_secs = -1000;
        assert!(check_claims(&with("exp", json!(NOW)), &strict).is_ok());
        // Extreme values do not overflow.
        assert!(check_claims(&with("exp", json!(i64::MAX)), &v).is_ok());
        assert_eq!(
            check_claims(&with("exp", json!(i64::MIN)), &v).err(),
            Some(JwtError::Expired)
        );
    }

    #[test]
    fn not_before_and_issued_at_boundaries() {
        let a = aud();
        let v = Validation::new(ISS, &a, NOW);
        assert!(check_claims(&with("nbf", json!(NOW + 300)), &v).is_ok());
        assert_eq!(
            check_claims(&with("nbf", json!(NOW + 301)), &v).err(),
            Some(JwtError::NotYetValid)
        );
        assert!(check_claims(&with("iat", json!(NOW + 300)), &v).is_ok());
        assert_eq!(
            check_claims(&with("iat", json!(NOW + 301)), &v).err(),
            Some(JwtError::InvalidClaim("iat"))
        );
        assert_eq!(
            check_claims(&with("iat", json!(i64::MAX)), &v).err(),
            Some(JwtError::InvalidClaim("iat"))
        );
    }
}
