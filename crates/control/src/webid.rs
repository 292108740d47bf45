//! Keys of external OIDC issuers: discovery, JWKS fetch and cache.
//!
//! `https://<issuer>/.well-known/openid-configuration` names the `jwks_uri`; both are fetched over
//! TLS trusted by the system roots or, as AWS does, by the IAM provider's thumbprints (SHA-1 of a
//! certificate in the served chain). Plain http only with `dangerous_allow_http_issuer`.
//! Key sets are cached (Cache-Control `max-age` honoured within bounds), refetched at most once
//! per [`REFETCH_INTERVAL`] on an unknown `kid`, and served stale for up to [`STALE_FOR`] when a
//! fetch fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use podiam_jose::JwkSet;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Minimum time between two fetches of one issuer's keys on an unknown `kid`.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long keys are served after their cache lifetime when the issuer is unreachable.
pub const STALE_FOR: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_BODY: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The issuer or its jwks_uri is not an https URL (and http is not allowed).
    #[error("issuer url {0:?} must use https")]
    NotHttps(String),
    /// The network fetch failed.
    #[error("could not fetch {url}: {reason}")]
    Fetch {
        /// URL.
        url: String,
        /// Reason.
        reason: String,
    },
    /// The discovery document or JWKS is invalid.
    #[error("invalid document at {url}: {reason}")]
    Invalid {
        /// URL.
        url: String,
        /// Reason.
        reason: String,
    },
}

struct Cached {
    keys: Arc<JwkSet>,
    fetched: Instant,
    ttl: Duration,
    last_attempt: Instant,
}

/// The JWKS cache of external issuers.
pub struct JwksCache {
    allow_http: bool,
    entries: RwLock<HashMap<String, Cached>>,
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    /// A new cache.
    pub fn new(allow_http: bool) -> Self {
        Self { allow_http, entries: RwLock::new(HashMap::new()), fetching: tokio::sync::Mutex::new(()) }
    }

    /// Keys of `issuer`. `refresh` asks for a refetch (unknown kid), honoured at most once per
    /// [`REFETCH_INTERVAL`].
    pub async fn keys(&self, issuer: &str, thumbprints: &[String], refresh: bool) -> Result<Arc<JwkSet>, FetchError> {
        if let Some(k) = self.fresh(issuer, refresh) {
            return Ok(k);
        }
        // One fetch at a time: concurrent misses wait for it and then find it cached.
        let _g = self.fetching.lock().await;
        if let Some(k) = self.fresh(issuer, refresh) {
            return Ok(k);
        }
        let now = Instant::now();
        match self.fetch(issuer, thumbprints).await {
            Ok((keys, ttl)) => {
                let keys = Arc::new(keys);
                self.entries.write().insert(issuer.to_owned(), Cached { keys: Arc::clone(&keys), fetched: now, ttl, last_attempt: now });
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(issuer, error = %e, "jwks fetch failed");
                let mut entries = self.entries.write();
                match entries.get_mut(issuer) {
                    Some(c) if now.duration_since(c.fetched) < c.ttl + STALE_FOR => {
                        c.last_attempt = now;
                        Ok(Arc::clone(&c.keys))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    fn fresh(&self, issuer: &str, refresh: bool) -> Option<Arc<JwkSet>> {
        let entries = self.entries.read();
        let c = entries.get(issuer)?;
        let age = c.fetched.elapsed();
        if refresh {
            // A refetch was asked for; refuse it (serve cached) if one happened recently.
            return (c.last_attempt.elapsed() < REFETCH_INTERVAL).then(|| Arc::clone(&c.keys));
        }
        (age < c.ttl).then(|| Arc::clone(&c.keys))
    }

    async fn fetch(&self, issuer: &str, thumbprints: &[String]) -> Result<(JwkSet, Duration), FetchError> {
        self.check_scheme(issuer)?;
        let client = client(thumbprints)?;
        let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let (body, _) = get(&client, &discovery_url).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Invalid { url: discovery_url.clone(), reason: e.to_string() })?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(FetchError::Invalid { url: discovery_url, reason: "issuer in the discovery document does not match".into() });
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| FetchError::Invalid { url: discovery_url.clone(), reason: "no jwks_uri".into() })?
            .to_owned();
        self.check_scheme(&jwks_uri)?;
        let (body, ttl) = get(&client, &jwks_uri).await?;
        let keys = JwkSet::from_json(&body).map_err(|e| FetchError::Invalid { url: jwks_uri, reason: e.to_string() })?;
        Ok((keys, ttl))
    }

    fn check_scheme(&self, url: &str) -> Result<(), FetchError> {
        if url.starts_with("https://") || (self.allow_http && url.starts_with("http://")) {
            Ok(())
        } else {
            Err(FetchError::NotHttps(url.to_owned()))
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(Vec<u8>, Duration), FetchError> {
    let fail = |reason: String| FetchError::Fetch { url: url.to_owned(), reason };
    let mut resp = client.get(url).send().await.map_err(|e| fail(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("http status {}", resp.status())));
    }
    let ttl = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(max_age)
        .map_or(DEFAULT_TTL, |s| Duration::from_secs(s).clamp(MIN_TTL, MAX_TTL));
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(fail("response too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, ttl))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// `max-age=N` of a Cache-Control header.
fn max_age(v: &str) -> Option<u64> {
    v.split(',').find_map(|d| d.trim().strip_prefix("max-age=").and_then(|n| n.trim().parse().ok()))
}

fn client(thumbprints: &[String]) -> Result<reqwest::Client, FetchError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let platform = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
        .map_err(|e| FetchError::Fetch { url: String::new(), reason: format!("tls roots: {e}") })?;
    let prints = thumbprints.iter().filter_map(|t| hex::decode(t).ok()).collect();
    let verifier = Arc::new(ThumbprintVerifier { platform, thumbprints: prints, provider: Arc::clone(&provider) });
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Fetch { url: String::new(), reason: e.to_string() })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| FetchError::Fetch { url: String::new(), reason: e.to_string() })
}

/// System roots first; failing that, trust a chain that contains a certificate whose SHA-1
/// is one of the provider's thumbprints (the end-entity certificate must still name the host).
#[derive(Debug)]
struct ThumbprintVerifier {
    platform: rustls_platform_verifier::Verifier,
    thumbprints: Vec<Vec<u8>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for ThumbprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.platform.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Ok(v) => Ok(v),
            Err(e) if self.thumbprints.is_empty() => Err(e),
            Err(e) => {
                let matched = std::iter::once(end_entity).chain(intermediates.iter()).any(|c| {
                    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, c.as_ref());
                    self.thumbprints.iter().any(|t| t.as_slice() == d.as_ref())
                });
                if !matched {
                    return Err(e);
                }
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age("public, max-age=3600"), Some(3600));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
