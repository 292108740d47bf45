//! A minimal EKS API client: `ListPodIdentityAssociations`, every page, SigV4-signed (service
//! `eks`) with credentials from the standard AWS chain. The region, the endpoint
//! (`AWS_ENDPOINT_URL_EKS`, `AWS_ENDPOINT_URL`, the profile's `services` section and
//! `endpoint_url`), the trust store (`AWS_CA_BUNDLE`, the profile's `ca_bundle`) and the
//! retries are podiam-awsclient's, as for every other podiam client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use podiam_awsclient::retry::{self, RetryPolicy};
use podiam_awsclient::{Clock, CredentialsProvider, Env, Service};
use serde::Deserialize;

use crate::sources::{AssociationSource, Associations};

/// Why listing failed.
#[derive(Debug, thiserror::Error)]
pub enum EksError {
    /// No usable credentials.
    #[error("credentials: {0}")]
    Credentials(String),
    /// Transport failure.
    #[error("calling {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// A non-200 answer.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body (truncated).
        body: String,
    },
    /// An unparsable answer.
    #[error("{url}: {message}")]
    Decode {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    associations: Vec<Summary>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    #[serde(default)]
    cluster_name: Option<String>,
    namespace: String,
    service_account: String,
}

/// The client.
pub struct EksClient {
    http: reqwest::Client,
    base: reqwest::Url,
    cluster: String,
    region: String,
    credentials: Arc<CredentialsProvider>,
    clock: Clock,
    retry: RetryPolicy,
}

impl std::fmt::Debug for EksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksClient")
            .field("base", &self.base.as_str())
            .field("cluster", &self.cluster)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// AWS-style percent-encoding (everything but `A-Za-z0-9-_.~`).
pub(crate) fn aws_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl EksClient {
    /// A client for `cluster` configured from `env`: the region (`region` overrides it), the
    /// EKS endpoint (`endpoint`, e.g. `http://podiam:8080`, overrides it), the CA bundle and
    /// the credential chain.
    pub fn new(
        endpoint: Option<&str>,
        cluster: &str,
        region: Option<&str>,
        env: Env,
    ) -> Result<Self, String> {
        let region = podiam_awsclient::resolve_region(region, &env);
        let endpoint = podiam_awsclient::resolve_endpoint(endpoint, &env, Service::Eks, &region);
        let http = podiam_awsclient::http_client_builder(reqwest::Client::builder(), &env)
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let clock = Clock::system();
        let credentials = Arc::new(CredentialsProvider::new(
            None,
            env,
            region.clone(),
            http.clone(),
            clock.clone(),
            Duration::from_secs(300),
            Duration::from_secs(5),
        ));
        Self::with_parts(&endpoint, cluster, &region, http, credentials, clock)
    }

    /// A client with explicit parts (tests use fixed credentials).
    pub fn with_parts(
        endpoint: &str,
        cluster: &str,
        region: &str,
        http: reqwest::Client,
        credentials: Arc<CredentialsProvider>,
        clock: Clock,
    ) -> Result<Self, String> {
        let base = reqwest::Url::parse(endpoint.trim_end_matches('/'))
            .map_err(|e| format!("invalid EKS endpoint {endpoint:?}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("invalid EKS endpoint {endpoint:?}: not http(s)"));
        }
        if podiam_awsclient::host_header(&base).is_none() {
            return Err(format!("invalid EKS endpoint {endpoint:?}: no host"));
        }
        Ok(Self {
            http,
            base,
            cluster: cluster.to_owned(),
            region: region.to_owned(),
            credentials,
            clock,
            retry: RetryPolicy::standard(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The EKS endpoint called, no trailing `/`.
    pub fn endpoint(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The region signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Lists every association of the cluster (following `nextToken`).
    pub async fn list_associations(&self) -> Result<Associations, EksError> {
        let mut out = Associations::default();
        let mut token: Option<String> = None;
        // A bound on pages so that a misbehaving server cannot loop us forever.
        for _ in 0..10_000 {
            let page = self.page(token.as_deref()).await?;
            for a in page.associations {
                if a.cluster_name.as_deref().is_none_or(|c| c == self.cluster) {
                    out.insert(&a.namespace, &a.service_account);
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    async fn page(&self, next: Option<&str>) -> Result<ListPage, EksError> {
        let base_path = self.base.path().trim_end_matches('/');
        let path = format!(
            "{base_path}/clusters/{}/pod-identity-associations",
            aws_encode(&self.cluster)
        );
        let mut query = "maxResults=100".to_owned();
        if let Some(t) = next {
            query.push_str("&nextToken=");
            query.push_str(&aws_encode(t));
        }
        let mut url = self.base.clone();
        url.set_path(&path);
        url.set_query(Some(&query));
        let url_s = url.to_string();
        let creds = self
            .credentials
            .get()
            .await
            .map_err(|e| EksError::Credentials(e.to_string()))?;
        // Signed again for each attempt: the date is part of the signature.
        let resp = retry::send(&self.retry, "EKS ListPodIdentityAssociations", || {
            podiam_awsclient::signed_request(
                &self.http,
                reqwest::Method::GET,
                url.clone(),
                None,
                &creds,
                &self.region,
                Service::Eks.signing_name(),
                self.clock.now_ms(),
            )
        })
        .await
        .map_err(|e| EksError::Transport {
            url: url_s.clone(),
            message: e.to_string(),
        })?;
        let (status, body) = (resp.status, resp.body);
        if status != 200 {
            let text = String::from_utf8_lossy(&body);
            return Err(EksError::Status {
                url: url_s,
                status,
                body: text.chars().take(512).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| EksError::Decode {
            url: url_s,
            message: e.to_string(),
        })
    }
}

/// Associations listed from an EKS API (`ListPodIdentityAssociations`), held in memory and
/// replaced by each successful refresh; a failed refresh keeps the previous set.
pub struct EksAssociations {
    client: EksClient,
    current: RwLock<Arc<Associations>>,
    loaded: AtomicBool,
}

impl std::fmt::Debug for EksAssociations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksAssociations")
            .field("client", &self.client)
            .field("loaded", &self.loaded)
            .finish_non_exhaustive()
    }
}

impl EksAssociations {
    /// A source over `client`; nothing is listed until [`Self::refresh`].
    pub fn new(client: EksClient) -> Self {
        Self {
            client,
            current: RwLock::new(Arc::new(Associations::default())),
            loaded: AtomicBool::new(false),
        }
    }

    /// Lists every association now and replaces the held set; returns how many.
    pub async fn refresh(&self) -> Result<usize, EksError> {
        let list = self.client.list_associations().await?;
        let n = list.len();
        *self.current.write() = Arc::new(list);
        if !self.loaded.swap(true, Ordering::AcqRel) {
            tracing::info!(associations = n, "pod identity associations loaded");
        }
        Ok(n)
    }

    /// Whether one refresh has succeeded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Refreshes every `every` (the first immediately) until the task is aborted.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                if let Err(e) = me.refresh().await {
                    if me.is_loaded() {
                        tracing::warn!(error = %e, "listing pod identity associations failed; keeping the previous set");
                    } else {
                        tracing::warn!(error = %e, "listing pod identity associations failed; none listed yet, so pods get no Pod Identity");
                    }
                }
            }
        })
    }
}

impl AssociationSource for EksAssociations {
    fn has_association(&self, namespace: &str, service_account: &str) -> bool {
        self.current
            .read()
            .has_association(namespace, service_account)
    }

    fn is_ready(&self) -> bool {
        self.is_loaded()
    }
}
