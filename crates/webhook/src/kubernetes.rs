//! Service accounts from the Kubernetes API: a watch (list, then watch from its
//! resourceVersion, relisting when the API server says the version is too old), as the real
//! webhook's informer does.
//!
//! - Only the annotations under the webhook's prefix are kept (`kubectl apply` leaves a copy of
//!   the whole object in another annotation; there is no reason to hold it).
//! - A pod whose service account is not known yet (created just before the pod, the watch not
//!   yet delivered) can wait a short grace period: the lookup wakes on the next watch event and,
//!   at the same time, asks the API server directly (rate limited to 10 requests/s, burst 20).
//! - ConfigMap-style entries (`--service-account-file`) can be layered underneath: annotations
//!   from the API win, as in the real webhook.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use parking_lot::RwLock;
use podiam_awsclient::TokenBucket;
use tokio::sync::Notify;

use crate::sources::{ServiceAccountInfo, ServiceAccountSource};

/// Direct lookups on a miss: at most this many per second on average...
pub const FETCH_RATE_PER_SEC: f64 = 10.0;
/// ...and this many in a burst.
pub const FETCH_BURST: u32 = 20;

type Annotations = BTreeMap<String, String>;

/// The service accounts of a cluster, kept current by a watch.
pub struct KubeServiceAccounts {
    client: Client,
    prefix: String,
    accounts: RwLock<HashMap<String, Annotations>>,
    config: Option<Arc<dyn ServiceAccountSource>>,
    changed: Notify,
    synced: AtomicBool,
    limiter: TokenBucket,
    fetches: AtomicU64,
    events: AtomicU64,
}

impl std::fmt::Debug for KubeServiceAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeServiceAccounts")
            .field("prefix", &self.prefix)
            .field("accounts", &self.accounts.read().len())
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

impl KubeServiceAccounts {
    /// A source over `client` keeping the annotations under `annotation_prefix`; `config` holds
    /// ConfigMap-style entries consulted for accounts whose annotations name no role. Nothing is
    /// known until [`Self::spawn_watch`] has listed.
    pub fn new(
        client: Client,
        annotation_prefix: &str,
        config: Option<Arc<dyn ServiceAccountSource>>,
    ) -> Self {
        Self {
            client,
            prefix: format!("{}/", annotation_prefix.trim_end_matches('/')),
            accounts: RwLock::new(HashMap::new()),
            config,
            changed: Notify::new(),
            synced: AtomicBool::new(false),
            limiter: TokenBucket::new(FETCH_RATE_PER_SEC, FETCH_BURST),
            fetches: AtomicU64::new(0),
            events: AtomicU64::new(0),
        }
    }

    /// Whether the first list has completed.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// How many service accounts are held.
    pub fn len(&self) -> usize {
        self.accounts.read().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Direct lookups made so far (misses that asked the API server).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Watch events applied so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Waits until the first list has completed or `timeout` passes; `true` when synced.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_synced() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_synced();
            }
        }
    }

    fn key(sa: &ServiceAccount) -> Option<String> {
        let ns = sa.metadata.namespace.as_deref()?;
        let name = sa.metadata.name.as_deref()?;
        Some(format!("{ns}/{name}"))
    }

    fn kept_annotations(&self, sa: &ServiceAccount) -> Annotations {
        sa.metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(&self.prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Applies one watch event.
    fn apply(
        &self,
        event: Event<ServiceAccount>,
        listing: &mut Option<HashMap<String, Annotations>>,
    ) {
        self.events.fetch_add(1, Ordering::Relaxed);
        match event {
            Event::Init => *listing = Some(HashMap::new()),
            Event::InitApply(sa) => {
                if let (Some(l), Some(k)) = (listing.as_mut(), Self::key(&sa)) {
                    l.insert(k, self.kept_annotations(&sa));
                }
            }
            Event::InitDone => {
                if let Some(l) = listing.take() {
                    let n = l.len();
                    *self.accounts.write() = l;
                    if !self.synced.swap(true, Ordering::AcqRel) {
                        tracing::info!(
                            service_accounts = n,
                            "service accounts listed from the Kubernetes API"
                        );
                    } else {
                        tracing::debug!(service_accounts = n, "service accounts relisted");
                    }
                }
                self.changed.notify_waiters();
            }
            Event::Apply(sa) => {
                if let Some(k) = Self::key(&sa) {
                    let a = self.kept_annotations(&sa);
                    self.accounts.write().insert(k, a);
                    self.changed.notify_waiters();
                }
            }
            Event::Delete(sa) => {
                if let Some(k) = Self::key(&sa) {
                    self.accounts.write().remove(&k);
                }
            }
        }
    }

    /// Watches every namespace's service accounts until the task is aborted; errors (API server
    /// unreachable, unauthorized, a watch that expired) are logged and retried with backoff.
    pub fn spawn_watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let api: Api<ServiceAccount> = Api::all(me.client.clone());
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            let mut stream = std::pin::pin!(stream);
            let mut listing = None;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => me.apply(event, &mut listing),
                    Err(e) => {
                        tracing::warn!(error = %e, "watching service accounts failed; retrying")
                    }
                }
            }
        })
    }

    fn lookup(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        let annotations = self
            .accounts
            .read()
            .get(&format!("{namespace}/{name}"))
            .cloned();
        let config = self.config.as_ref().and_then(|c| c.get(namespace, name));
        match (annotations, config) {
            (None, None) => None,
            (Some(annotations), c) => Some(ServiceAccountInfo {
                annotations,
                config: c.and_then(|c| c.config),
            }),
            (None, Some(c)) => Some(c),
        }
    }

    /// Asks the API server for one service account, if the rate limit allows.
    async fn fetch(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        if !self.limiter.try_acquire() {
            tracing::debug!(
                namespace,
                name,
                "service account lookup not sent: rate limited"
            );
            return None;
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(sa)) => Some(ServiceAccountInfo {
                annotations: self.kept_annotations(&sa),
                config: self
                    .config
                    .as_ref()
                    .and_then(|c| c.get(namespace, name))
                    .and_then(|c| c.config),
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(namespace, name, error = %e, "service account lookup failed");
                None
            }
        }
    }

    async fn wait_for_account(
        &self,
        namespace: &str,
        name: &str,
        grace: Duration,
    ) -> Option<ServiceAccountInfo> {
        if let Some(found) = self.lookup(namespace, name) {
            return Some(found);
        }
        if grace.is_zero() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + grace;
        let watched = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(found) = self.lookup(namespace, name) {
                    return found;
                }
                notified.await;
            }
        };
        let fetched = async {
            match self.fetch(namespace, name).await {
                Some(found) => found,
                None => std::future::pending().await,
            }
        };
        tokio::time::timeout_at(deadline, async {
            tokio::select! {
                found = watched => found,
                found = fetched => found,
            }
        })
        .await
        .ok()
    }
}

impl ServiceAccountSource for KubeServiceAccounts {
    fn get(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        self.lookup(namespace, name)
    }

    fn wait_for<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        grace: Duration,
    ) -> Pin<Box<dyn Future<Output = Option<ServiceAccountInfo>> + Send + 'a>> {
        Box::pin(self.wait_for_account(namespace, name, grace))
    }

    fn can_wait(&self) -> bool {
        true
    }

    fn is_ready(&self) -> bool {
        self.is_synced()
    }
}

/// A client from a kubeconfig file, or else the in-cluster configuration (service account token
/// and `KUBERNETES_SERVICE_HOST`), or else `KUBECONFIG` / `~/.kube/config`.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| e.to_string())?,
    };
    Client::try_from(config).map_err(|e| e.to_string())
}
