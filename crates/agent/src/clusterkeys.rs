//! The cluster's token signing keys, and the local check of a pod's token against them.
//!
//! Configured with the cluster's issuer URL (the only `iss` accepted), the keys come from the
//! issuer's discovery document -> `jwks_uri`, or from a JWK set file (a mounted ConfigMap).
//! A token is verified with `podiam-jose` exactly as EKS Auth (and podiam's control plane)
//! does before any upstream call: allow-listed algorithm bound to the key, signature, `iss`,
//! `aud` containing `pods.eks.amazonaws.com`, `exp`/`iat`/`nbf` with 60 s of leeway, and the
//! pod binding of [`PodIdentity::from_claims`]. A refusal has EKS Auth's error shape
//! ([`UpstreamError::Rejected`]).
//!
//! The key set is cached (Cache-Control `max-age` within 1 min..24 h, else 1 h; a file is
//! re-read every minute), refetched on an unknown `kid`, and every fetch attempt, successful
//! or not, is at most one per `refetch_interval`: a flood of tokens with made-up `kid`s costs
//! one fetch. A failed fetch serves the last keys for up to 24 h more. With no usable keys at
//! all the verdict is [`Verdict::Unavailable`] and the caller lets EKS Auth decide, as it
//! would without this module: an unreachable issuer must not take pods' credentials away.
//! No redirects are followed, bodies are size-bounded, and plain http is refused unless the
//! loudly named `dangerous_allow_http_issuer` is set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use podiam_jose::{JwkSet, JwtError, UnverifiedToken, Validation};

use crate::eksauth::UpstreamError;
use crate::token::PodIdentity;
use podiam_awsclient::Clock;

/// The audience of Pod Identity tokens.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// Clock-skew allowance on `exp`, `nbf` and `iat` (podiam's EKS Auth uses the same).
pub const LEEWAY_SECS: i64 = 60;
/// How long the last keys are served when the issuer cannot be reached.
const STALE_FOR_MS: i64 = 24 * 3600 * 1000;
const DEFAULT_TTL_MS: i64 = 3600 * 1000;
const MIN_TTL_MS: i64 = 60 * 1000;
const MAX_TTL_MS: i64 = 24 * 3600 * 1000;
const FILE_TTL_MS: i64 = 60 * 1000;
const MAX_DISCOVERY_LEN: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `<issuer>/.well-known/openid-configuration` -> `jwks_uri`.
    Discovery,
    /// A JWK set document on disk.
    File(PathBuf),
}

/// Settings of [`ClusterKeys`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub issuer: String,
    pub source: Source,
    pub dangerous_allow_http_issuer: bool,
    pub refetch_interval: Duration,
}

/// The outcome of a local check.
pub(crate) enum Verdict {
    /// Signature and claims hold; the token is bound to this pod until `exp_ms`.
    Valid {
        /// The pod.
        pod: PodIdentity,
        /// `exp`, Unix milliseconds.
        exp_ms: i64,
    },
    /// Refused, with EKS Auth's error.
    Invalid(UpstreamError),
    /// No keys to check with: let EKS Auth decide.
    Unavailable,
}

struct Cached {
    keys: Arc<JwkSet>,
    fetched_ms: i64,
    ttl_ms: i64,
}

/// The cluster's keys and the local verifier.
pub(crate) struct ClusterKeys {
    settings: Settings,
    audiences: [String; 1],
    http: reqwest::Client,
    clock: Clock,
    cached: RwLock<Option<Cached>>,
    last_attempt_ms: Mutex<Option<i64>>,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKeys")
            .field("issuer", &self.settings.issuer)
            .field("source", &self.settings.source)
            .finish_non_exhaustive()
    }
}

/// https (or, dangerously, http), and not at a link-local address (the instance metadata
/// service and the agent's own addresses live there: a key URL never does).
fn is_allowed_url(url: &str, allow_http: bool) -> bool {
    let scheme_ok = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    else {
        return false;
    };
    let link_local = match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80),
        Err(_) => false,
    };
    scheme_ok && !link_local
}

fn invalid(message: String) -> UpstreamError {
    UpstreamError::Rejected {
        code: "InvalidTokenException",
        message,
    }
}

impl ClusterKeys {
    /// Checks the settings and builds the HTTP client (no fetch yet).
    pub fn new(settings: Settings, clock: Clock) -> Result<Self, String> {
        let issuer = &settings.issuer;
        if reqwest::Url::parse(issuer).is_err()
            || !is_allowed_url(issuer, settings.dangerous_allow_http_issuer)
        {
            return Err(format!(
                "cluster issuer url {issuer:?} must be an https url (plain http only with dangerous-allow-http-issuer)"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            audiences: [AUDIENCE.to_owned()],
            settings,
            http,
            clock,
            cached: RwLock::new(None),
            last_attempt_ms: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Checks `token` locally at `now_ms`.
    pub async fn verify(&self, token: &str, now_ms: i64) -> Verdict {
        let unverified = match UnverifiedToken::parse(token) {
            Ok(t) => t,
            Err(e) => {
                return Verdict::Invalid(invalid(format!(
                    "the service account token is malformed: {e}"
                )));
            }
        };
        let Some(keys) = self.keys(false).await else {
            return Verdict::Unavailable;
        };
        let mut v = Validation::new(
            &self.settings.issuer,
            &self.audiences,
            now_ms.div_euclid(1000),
        );
        v.leeway_secs = LEEWAY_SECS;
        let verified = match podiam_jose::verify(&unverified, &keys, &v) {
            Err(JwtError::UnknownKid) => match self.keys(true).await {
                Some(keys) => podiam_jose::verify(&unverified, &keys, &v),
                None => Err(JwtError::UnknownKid),
            },
            other => other,
        };
        match verified {
            Ok(claims) => match PodIdentity::from_claims(&claims.claims) {
                Ok(pod) => Verdict::Valid {
                    pod,
                    exp_ms: claims.expires_at.saturating_mul(1000),
                },
                Err(why) => Verdict::Invalid(invalid(why.to_owned())),
            },
            Err(JwtError::Expired) => Verdict::Invalid(UpstreamError::Rejected {
                code: "ExpiredTokenException",
                message: "the service account token has expired".to_owned(),
            }),
            Err(e) => Verdict::Invalid(invalid(format!(
                "the service account token is not valid for this cluster: {e}"
            ))),
        }
    }

    /// The keys; `refresh` asks for a refetch (an unknown `kid`). `None` when none are usable.
    async fn keys(&self, refresh: bool) -> Option<Arc<JwkSet>> {
        if let Some(k) = self.current(refresh) {
            return Some(k);
        }
        // One fetch at a time: the others wait for it, then find its result.
        let _one = self.fetching.lock().await;
        if let Some(k) = self.current(refresh) {
            return Some(k);
        }
        let now = self.clock.now_ms();
        if !self.may_attempt(now) {
            return self.stale(now);
        }
        *self.last_attempt_ms.lock() = Some(now);
        match self.fetch().await {
            Ok((keys, ttl_ms)) => {
                if keys.is_empty() {
                    tracing::warn!(issuer = %self.settings.issuer, "the cluster's key set has no usable key");
                }
                let keys = Arc::new(keys);
                *self.cached.write() = Some(Cached {
                    keys: Arc::clone(&keys),
                    fetched_ms: now,
                    ttl_ms,
                });
                Some(keys)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.settings.issuer, error = %e, "cannot fetch the cluster's token signing keys");
                self.stale(now)
            }
        }
    }

    fn may_attempt(&self, now: i64) -> bool {
        let interval =
            i64::try_from(self.settings.refetch_interval.as_millis()).unwrap_or(i64::MAX);
        self.last_attempt_ms
            .lock()
            .is_none_or(|last| now.saturating_sub(last) >= interval)
    }

    /// Keys usable without a fetch: fresh ones, or, when a refetch is asked for but one was
    /// attempted within the interval, whatever is cached.
    fn current(&self, refresh: bool) -> Option<Arc<JwkSet>> {
        let now = self.clock.now_ms();
        let cached = self.cached.read();
        let c = cached.as_ref()?;
        let fresh = now.saturating_sub(c.fetched_ms) < c.ttl_ms;
        let usable = if refresh {
            !self.may_attempt(now)
        } else {
            fresh
        };
        usable.then(|| Arc::clone(&c.keys))
    }

    fn stale(&self, now: i64) -> Option<Arc<JwkSet>> {
        let cached = self.cached.read();
        let c = cached.as_ref()?;
        (now.saturating_sub(c.fetched_ms) < c.ttl_ms.saturating_add(STALE_FOR_MS))
            .then(|| Arc::clone(&c.keys))
    }

    async fn fetch(&self) -> Result<(JwkSet, i64), String> {
        match &self.settings.source {
            Source::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                let keys =
                    JwkSet::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok((keys, FILE_TTL_MS))
            }
            Source::Discovery => {
                let issuer = &self.settings.issuer;
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let (body, _) = self.get(&url, MAX_DISCOVERY_LEN).await?;
                let doc: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
                if doc.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer.as_str()) {
                    return Err(format!("{url}: the issuer does not match"));
                }
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?;
                if !is_allowed_url(jwks_uri, self.settings.dangerous_allow_http_issuer) {
                    return Err(format!("{url}: jwks_uri {jwks_uri:?} is not https"));
                }
                let (body, ttl_ms) = self.get(jwks_uri, podiam_jose::MAX_JWKS_LEN).await?;
                let keys = JwkSet::from_json(&body).map_err(|e| format!("{jwks_uri}: {e}"))?;
                Ok((keys, ttl_ms))
            }
        }
    }

    async fn get(&self, url: &str, max: usize) -> Result<(Vec<u8>, i64), String> {
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status().as_u16()));
        }
        let ttl_ms = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .map_or(DEFAULT_TTL_MS, |s| {
                i64::try_from(s)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000)
                    .clamp(MIN_TTL_MS, MAX_TTL_MS)
            });
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > max {
                return Err(format!("{url}: larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, ttl_ms))
    }
}

/// `max-age=N` of a Cache-Control header.
fn max_age(v: &str) -> Option<u64> {
    v.split(',').find_map(|d| {
        d.trim()
            .strip_prefix("max-age=")
            .and_then(|n| n.trim().parse().ok())
    })
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

    fn settings(issuer: &str, allow_http: bool) -> Settings {
        Settings {
            issuer: issuer.to_owned(),
            source: Source::Discovery,
            dangerous_allow_http_issuer: allow_http,
            refetch_interval: Duration::from_secs(30),
        }
    }

    #[test]
    fn issuer_must_be_https_unless_dangerously_allowed() {
        assert!(
            ClusterKeys::new(
                settings("https://oidc.example/id/1", false),
                Clock::system()
            )
            .is_ok()
        );
        assert!(
            ClusterKeys::new(settings("http://oidc.example/id/1", false), Clock::system()).is_err()
        );
        assert!(
            ClusterKeys::new(settings("http://oidc.example/id/1", true), Clock::system()).is_ok()
        );
        assert!(ClusterKeys::new(settings("oidc.example", true), Clock::system()).is_err());
        assert!(!is_allowed_url("https://169.254.169.254/keys", true));
        assert!(!is_allowed_url("https://[fe80::1]/keys", true));
        assert!(is_allowed_url(
            "https://10.0.0.1:6443/openid/v1/jwks",
            false
        ));
    }

    #[test]
    fn cache_control() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("no-store"), None);
    }
}
