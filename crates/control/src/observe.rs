//! Hooks through which the services report what the operations surface counts: JWKS fetches,
//! store commits and aws-auth ConfigMap loads. The services know nothing of Prometheus; the
//! HTTP layer installs an [`Observer`] once, and until it does every report is dropped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Receives the services' reports. Every method has an empty default.
pub trait Observer: Send + Sync {
    /// One fetch of an external issuer's discovery document and JWKS, and whether it succeeded.
    fn jwks_fetch(&self, _issuer: &str, _ok: bool) {}
    /// One batch committed to the store, and how long the store took.
    fn store_commit(&self, _took: Duration) {}
    /// One load of a cluster's aws-auth ConfigMap, and whether it was accepted.
    fn aws_auth_reload(&self, _ok: bool) {}
}

/// The slot of the observer, shared by the parts of the services that report.
#[derive(Clone, Default)]
pub struct Hooks(Arc<OnceLock<Arc<dyn Observer>>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Hooks")
            .field(&self.0.get().is_some())
            .finish()
    }
}

impl Hooks {
    /// Install `o`; `false` if an observer was already installed (the first one stays).
    pub fn install(&self, o: Arc<dyn Observer>) -> bool {
        self.0.set(o).is_ok()
    }

    pub(crate) fn jwks_fetch(&self, issuer: &str, ok: bool) {
        if let Some(o) = self.0.get() {
            o.jwks_fetch(issuer, ok);
        }
    }

    pub(crate) fn store_commit(&self, took: Duration) {
        if let Some(o) = self.0.get() {
            o.store_commit(took);
        }
    }

    pub(crate) fn aws_auth_reload(&self, ok: bool) {
        if let Some(o) = self.0.get() {
            o.aws_auth_reload(ok);
        }
    }
}
