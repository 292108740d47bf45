//! HTTPS for `podiam serve`: the rustls configuration over a certificate re-read when its files
//! change, and the mark of a request that arrived over TLS (it sees `aws:SecureTransport = true`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use podiam_tls::ReloadingCert;

/// Marks a request that arrived over TLS.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SecureTransport;

/// A rustls server configuration from PEM files (the certificate chain and its private key),
/// which must form a usable pair now. When either file changes on disk, new connections get
/// the new pair (files checked at most every 2 s); a pair that fails to load is logged and the
/// previous one kept.
pub fn load_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    load_config_checking_every(cert, key, Duration::from_secs(2))
}

/// [`load_config`], checking the files at most every `every`.
pub fn load_config_checking_every(
    cert: &Path,
    key: &Path,
    every: Duration,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let cert = ReloadingCert::open(cert, key)?.with_check_every(every);
    podiam_tls::server_config(Arc::new(cert))
}
