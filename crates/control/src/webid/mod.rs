//! Keys of external OIDC issuers: discovery, JWKS fetch and cache.
//!
//! `https://<issuer>/.well-known/openid-configuration` names the `jwks_uri`; both are fetched over
//! TLS trusted by the system roots or, as AWS does, by the IAM provider's thumbprints (`tls.rs`:
//! the served chain must verify to the thumbprinted certificate), to addresses the issuer may
//! reach (`net.rs`: no link-local or metadata targets, no redirects off the origin, bounded
//! bodies). Plain http only with `dangerous_allow_http_issuer`.
//!
//! Fetches are triggered by unauthenticated callers, so what one caller can make podiam do is
//! bounded:
//! - The cache is keyed by [`IssuerTrust`]: the issuer URL *and* what trusted its TLS certificate
//!   (sorted thumbprints, or the system roots alone), so keys fetched under one provider's
//!   thumbprints never serve another provider, another account or Pod Identity.
//! - One fetch at a time per cache key (single flight); other issuers never wait for it.
//! - A fetch (discovery and JWKS, redirects included) has [`FETCH_BUDGET`] in all.
//! - A failure is remembered: no new attempt for [`BACKOFF_MIN`], doubling per consecutive
//!   failure up to [`BACKOFF_MAX`]; meanwhile callers get the stale keys or an error at once.
//! - Key sets are cached (Cache-Control `max-age` honoured within bounds), refetched at most
//!   once per [`REFETCH_INTERVAL`] on an unknown `kid`, and served stale for up to [`STALE_FOR`]
//!   when a fetch fails.
//!
//! [`FetchError`] carries URLs and reasons for the log; callers must not show it to the client.
//!
//! The cache's decisions (`Entry`) take the instant as an argument and are tested as pure
//! functions; only [`JwksCache`]'s edges read the monotonic clock.

mod net;
mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use podiam_jose::{JwkSet, JwtError, UnverifiedToken, Validation, VerifiedClaims};

pub use net::{Class, MAX_REDIRECTS, classify};

/// Minimum time between two fetches of one issuer's keys on an unknown `kid`.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long keys are served after their cache lifetime when the issuer is unreachable.
pub const STALE_FOR: Duration = Duration::from_secs(24 * 3600);
/// Total time of one fetch: discovery document and JWKS, connections and redirects included.
pub const FETCH_BUDGET: Duration = Duration::from_secs(8);
/// Wait after a first failed fetch before the next attempt.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait between attempts after repeated failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Largest discovery document read.
pub const MAX_DISCOVERY_LEN: usize = 1 << 20;
/// Largest JWKS read: what [`JwkSet::from_json`] accepts (it also bounds the key count to
/// [`podiam_jose::MAX_JWKS_KEYS`]).
pub const MAX_JWKS_LEN: usize = podiam_jose::MAX_JWKS_LEN;
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Cache keys kept before entries with nothing worth keeping are dropped. Keys exist only for
/// registered providers and clusters (a fetch needs one), so this is a backstop.
const MAX_ENTRIES: usize = 10_000;

/// Why keys could not be had. The display names URLs and reasons: for the log only.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL may not be fetched: not https (and http not allowed), credentials in it, or an
    /// address the issuer may not reach.
    #[error("refusing to fetch {url:?}: {reason}")]
    NotAllowed {
        /// URL.
        url: String,
        /// Reason.
        reason: &'static str,
    },
    /// Connection, TLS, redirect or transfer failure.
    #[error("could not fetch {url}: {reason}")]
    Network {
        /// URL.
        url: String,
        /// Reason.
        reason: String,
    },
    /// A non-success HTTP status.
    #[error("fetching {url} answered http status {status}")]
    Status {
        /// URL.
        url: String,
        /// Status.
        status: u16,
    },
    /// The body is over the limit.
    #[error("the response of {url} is larger than {max} bytes")]
    TooLarge {
        /// URL.
        url: String,
        /// Limit.
        max: usize,
    },
    /// The discovery document or JWKS is invalid.
    #[error("invalid document at {url}: {reason}")]
    Invalid {
        /// URL.
        url: String,
        /// Reason.
        reason: String,
    },
    /// The fetch did not finish within [`FETCH_BUDGET`].
    #[error("fetching the keys of {issuer} did not finish in time")]
    Timeout {
        /// Issuer.
        issuer: String,
    },
    /// A recent fetch failed; the next attempt is not due yet.
    #[error(
        "the keys of {issuer} are unavailable: the last fetch failed, next attempt in {retry_in:?}"
    )]
    BackingOff {
        /// Issuer.
        issuer: String,
        /// Time until the next attempt.
        retry_in: Duration,
    },
    /// No HTTP client could be built (TLS roots unreadable).
    #[error("no http client: {0}")]
    Client(String),
}

/// What a key set is cached by: the issuer URL and what its TLS certificate is trusted by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IssuerTrust {
    issuer: String,
    // INVARIANT: sorted and deduplicated, so equal trust compares equal.
    thumbprints: Vec<tls::Thumbprint>,
}

impl IssuerTrust {
    /// `issuer` trusted by the system roots or by a certificate with one of `thumbprints`
    /// (hex SHA-1, as IAM stores them; entries that are not 40 hex digits trust nothing).
    pub fn new(issuer: &str, thumbprints: &[String]) -> Self {
        let mut prints: Vec<tls::Thumbprint> = thumbprints
            .iter()
            .filter_map(|t| hex::decode(t).ok())
            .filter_map(|b| b.try_into().ok())
            .collect();
        prints.sort_unstable();
        prints.dedup();
        Self {
            issuer: issuer.to_owned(),
            thumbprints: prints,
        }
    }

    /// `issuer` trusted by the system roots alone.
    pub fn system_roots(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            thumbprints: Vec::new(),
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl std::fmt::Display for IssuerTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (system roots", self.issuer)?;
        for t in &self.thumbprints {
            write!(f, ", thumbprint {}", hex::encode(t))?;
        }
        f.write_str(")")
    }
}

/// Verify `token` with the `keys` of an external issuer.
///
/// A token without `kid` is accepted only when the issuer publishes exactly one usable key (as
/// AWS STS does); with more, it is refused rather than tried against every key of a set the
/// issuer — possibly the attacker — controls. Hosted issuers do not need this: their keys are
/// podiam's own and their tokens always carry a `kid`.
pub fn verify(
    token: &UnverifiedToken,
    keys: &JwkSet,
    v: &Validation<'_>,
) -> Result<VerifiedClaims, JwtError> {
    if token.kid().is_none() && keys.len() > 1 {
        return Err(JwtError::Malformed(
            "the token has no kid and the issuer publishes more than one key".into(),
        ));
    }
    podiam_jose::verify(token, keys, v)
}

/// The JWKS cache of external issuers.
pub struct JwksCache {
    allow_http: bool,
    budget: Duration,
    entries: Mutex<HashMap<IssuerTrust, Entry>>,
    flights: Mutex<HashMap<IssuerTrust, Arc<tokio::sync::Mutex<()>>>>,
    hooks: crate::observe::Hooks,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("allow_http", &self.allow_http)
            .field("entries", &self.entries.lock().len())
            .finish()
    }
}

impl JwksCache {
    /// A new cache; `allow_http` permits plain-http issuers (development only).
    pub fn new(allow_http: bool) -> Self {
        Self {
            allow_http,
            budget: FETCH_BUDGET,
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            hooks: crate::observe::Hooks::default(),
        }
    }

    /// Report fetches to `hooks`.
    pub fn with_hooks(mut self, hooks: crate::observe::Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    #[cfg(test)]
    fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Keys of `trust`'s issuer. `refresh` asks for a refetch (unknown kid), honoured at most
    /// once per [`REFETCH_INTERVAL`].
    pub async fn keys(
        &self,
        trust: &IssuerTrust,
        refresh: bool,
    ) -> Result<Arc<JwkSet>, FetchError> {
        if let Some(r) = self.lookup(trust, refresh, Instant::now()) {
            return r;
        }
        let flight = self.flight(trust);
        // Concurrent misses of this key wait for the one fetch, then find its result (keys, or
        // a failure to back off from). Other keys have their own lock.
        let _fetching = flight.lock().await;
        if let Some(r) = self.lookup(trust, refresh, Instant::now()) {
            return r;
        }
        let result = match tokio::time::timeout(self.budget, self.fetch(trust)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                issuer: trust.issuer.clone(),
            }),
        };
        self.hooks.jwks_fetch(&trust.issuer, result.is_ok());
        let now = Instant::now();
        let mut entries = self.entries.lock();
        let entry = entries.entry(trust.clone()).or_default();
        match result {
            Ok((keys, ttl)) => {
                let keys = Arc::new(keys);
                entry.succeeded(now, Arc::clone(&keys), ttl);
                Ok(keys)
            }
            Err(e) => {
                let stale = entry.failed(now);
                tracing::warn!(issuer = %trust, error = %e, failures = entry.failures, serving_stale = stale.is_some(), "jwks fetch failed");
                stale.ok_or(e)
            }
        }
    }

    /// Keys already cached for `trust` (fresh, or stale within [`STALE_FOR`]), without fetching.
    pub fn cached(&self, trust: &IssuerTrust) -> Option<Arc<JwkSet>> {
        self.entries
            .lock()
            .get(trust)
            .and_then(|e| e.usable(Instant::now()))
    }

    fn lookup(
        &self,
        trust: &IssuerTrust,
        refresh: bool,
        now: Instant,
    ) -> Option<Result<Arc<JwkSet>, FetchError>> {
        let entries = self.entries.lock();
        match entries.get(trust)?.lookup(now, refresh) {
            Lookup::Use(keys) => Some(Ok(keys)),
            Lookup::Fail(retry_in) => Some(Err(FetchError::BackingOff {
                issuer: trust.issuer.clone(),
                retry_in,
            })),
            Lookup::Fetch => None,
        }
    }

    /// The single-flight lock of `trust`.
    fn flight(&self, trust: &IssuerTrust) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock();
        if flights.len() >= MAX_ENTRIES && !flights.contains_key(trust) {
            let now = Instant::now();
            let mut entries = self.entries.lock();
            entries.retain(|_, e| e.worth_keeping(now));
            flights.retain(|k, f| Arc::strong_count(f) > 1 || entries.contains_key(k));
        }
        Arc::clone(flights.entry(trust.clone()).or_default())
    }

    async fn fetch(&self, trust: &IssuerTrust) -> Result<(JwkSet, Duration), FetchError> {
        let issuer = trust.issuer.as_str();
        let policy = net::Policy::for_issuer(issuer, self.allow_http)?;
        let client = policy
            .client(tls::client_config(&trust.thumbprints).map_err(FetchError::Client)?)
            .map_err(FetchError::Client)?;
        let discovery_url = policy.check(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))?;
        let (body, _) = net::get(&client, discovery_url.clone(), MAX_DISCOVERY_LEN).await?;
        let invalid = |url: &reqwest::Url, reason: &str| FetchError::Invalid {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| invalid(&discovery_url, &e.to_string()))?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(invalid(
                &discovery_url,
                "issuer in the discovery document does not match",
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid(&discovery_url, "no jwks_uri"))?;
        let jwks_url = policy.check(jwks_uri)?;
        let (body, max_age) = net::get(&client, jwks_url.clone(), MAX_JWKS_LEN).await?;
        let keys = JwkSet::from_json(&body).map_err(|e| invalid(&jwks_url, &e.to_string()))?;
        for s in keys.skipped() {
            tracing::debug!(issuer, index = s.index, kid = ?s.kid, reason = %s.reason, "jwks key skipped");
        }
        let ttl = max_age.map_or(DEFAULT_TTL, |s| {
            Duration::from_secs(s).clamp(MIN_TTL, MAX_TTL)
        });
        Ok((keys, ttl))
    }
}

// === impl Entry ===

/// What is known of one cache key: the last keys fetched, and the failures since.
#[derive(Default)]
struct Entry {
    keys: Option<Keys>,
    /// Consecutive failed fetches.
    failures: u32,
    /// No fetch before this instant (set after a failure).
    retry_at: Option<Instant>,
    /// The last fetch, successful or not (rate-limits refetches on an unknown `kid`).
    last_attempt: Option<Instant>,
}

struct Keys {
    set: Arc<JwkSet>,
    fetched: Instant,
    ttl: Duration,
}

#[derive(Debug)]
enum Lookup {
    Use(Arc<JwkSet>),
    Fail(Duration),
    Fetch,
}

impl Entry {
    fn lookup(&self, now: Instant, refresh: bool) -> Lookup {
        if let Some(k) = &self.keys {
            let fresh = now.saturating_duration_since(k.fetched) < k.ttl;
            let recent = self
                .last_attempt
                .is_some_and(|t| now.saturating_duration_since(t) < REFETCH_INTERVAL);
            // A refetch was asked for; refuse it (serve cached) if one happened recently.
            if (refresh && recent) || (!refresh && fresh) {
                return Lookup::Use(Arc::clone(&k.set));
            }
        }
        match self.retry_at {
            Some(at) if now < at => match self.usable(now) {
                Some(keys) => Lookup::Use(keys),
                None => Lookup::Fail(at.saturating_duration_since(now)),
            },
            _ => Lookup::Fetch,
        }
    }

    /// The keys, if within their lifetime plus [`STALE_FOR`].
    fn usable(&self, now: Instant) -> Option<Arc<JwkSet>> {
        let k = self.keys.as_ref()?;
        (now.saturating_duration_since(k.fetched) < k.ttl + STALE_FOR).then(|| Arc::clone(&k.set))
    }

    fn succeeded(&mut self, now: Instant, set: Arc<JwkSet>, ttl: Duration) {
        *self = Self {
            keys: Some(Keys {
                set,
                fetched: now,
                ttl,
            }),
            failures: 0,
            retry_at: None,
            last_attempt: Some(now),
        };
    }

    /// Record a failure; the stale keys still usable, if any.
    fn failed(&mut self, now: Instant) -> Option<Arc<JwkSet>> {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + backoff(self.failures));
        self.last_attempt = Some(now);
        self.usable(now)
    }

    fn worth_keeping(&self, now: Instant) -> bool {
        self.usable(now).is_some() || self.retry_at.is_some_and(|at| now < at)
    }
}

/// Wait after `failures` consecutive failures: [`BACKOFF_MIN`] doubling up to [`BACKOFF_MAX`].
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
