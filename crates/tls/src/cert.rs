//! A rustls certificate resolver that re-reads its PEM files when they change (cert-manager,
//! kubelet secret updates and operators rotate them in place), so new connections get the new
//! certificate without a restart. Used by `podiam serve` and `podiam webhook`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often (at most) the files are checked for changes, on handshakes.
const CHECK_EVERY: Duration = Duration::from_secs(2);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("reading {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("parsing {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading the private key {}: {e}", key.display()))?;
    CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("certificate and key do not form a usable pair: {e}"))
}

fn stamps(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(cert)?, m(key)?))
}

/// Serves the certificate in `cert`/`key`, reloading both when either file's modification time
/// changes (checked at most every 2 s, during handshakes). A pair that fails to load is logged
/// and the previous one kept.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    check: Mutex<(Instant, Option<(SystemTime, SystemTime)>)>,
    check_every: Duration,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair (which must be valid now).
    pub fn open(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Result<Self, String> {
        let (cert, key) = (cert.into(), key.into());
        let provider = provider();
        let st = stamps(&cert, &key);
        let ck = load(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: RwLock::new(Arc::new(ck)),
            check: Mutex::new((Instant::now(), st)),
            check_every: CHECK_EVERY,
        })
    }

    /// Check the files at most this often (2 s by default).
    #[must_use]
    pub fn with_check_every(mut self, every: Duration) -> Self {
        self.check_every = every;
        self
    }

    /// Reloads now if the files changed; `true` when a new pair was loaded.
    pub fn reload_if_changed(&self) -> bool {
        let st = stamps(&self.cert, &self.key);
        {
            let mut c = self.check.lock();
            c.0 = Instant::now();
            if st.is_none() || c.1 == st {
                return false;
            }
            c.1 = st;
        }
        match load(&self.cert, &self.key, &self.provider) {
            Ok(ck) => {
                *self.current.write() = Arc::new(ck);
                tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "serving certificate not reloaded; keeping the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let due = self.check.lock().0.elapsed() >= self.check_every;
        if due {
            self.reload_if_changed();
        }
        Some(Arc::clone(&self.current.read()))
    }
}

/// A rustls server configuration (HTTP/1.1) over a reloading certificate.
pub fn server_config(cert: Arc<ReloadingCert>) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
