//! podiam's node agent for EKS Pod Identity, a reimplementation of `eks-pod-identity-agent`.
//!
//! Pods' AWS SDKs call `http://169.254.170.23/v1/credentials` (or `[fd00:ec2::23]`) with their
//! projected service account token in `Authorization`; the agent exchanges the token with EKS
//! Auth `AssumeRoleForPodIdentity` (SigV4-signed with the node's own credentials) and answers in
//! the container credentials provider format. Answers are cached per token (by its SHA-256) and
//! refreshed ahead of expiry.
//!
//! Inbound requests are limited per pod (a verified token's namespace, service account and pod
//! uid), with one shared bucket for tokens not verified yet and a global ceiling (`inbound`).
//! With [`Config::cluster_issuer_url`] set, a new token's signature and claims are checked
//! against the cluster's published keys before any EKS Auth call (`clusterkeys`); without
//! it, EKS Auth alone verifies tokens, as the real agent does.
//! [`Config::dangerous_allow_http_issuer`] lets those keys come over plain http (tests only).
//!
//! Embedding (tests, benchmarks):
//!
//! ```no_run
//! # async fn demo() -> Result<(), podiam_agent::Error> {
//! let mut config = podiam_agent::Config::new("my-cluster");
//! config.bind = vec!["127.0.0.1".parse().unwrap()];
//! config.port = 0;
//! config.probe_port = 0;
//! config.endpoint = Some("http://127.0.0.1:8080".into());
//! let agent = podiam_agent::start(config).await?;
//! println!("credentials on {:?}", agent.credential_addrs());
//! agent.shutdown().await;
//! # Ok(()) }
//! ```

mod cache;
mod clusterkeys;
mod config;
mod eksauth;
mod inbound;
pub mod init;
mod metrics;
mod server;
pub mod token;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, DEFAULT_ADDRESS_V4, DEFAULT_ADDRESS_V6};
pub use eksauth::{NON_RECOVERABLE, UpstreamError};
pub use metrics::Metrics;
/// The client-side types [`Config`] is made of, from `podiam-awsclient`.
pub use podiam_awsclient::{AwsCredentials, Clock, Env};
use podiam_awsclient::{CredentialsProvider, Service, resolve_endpoint, resolve_region};
pub use server::CREDENTIALS_PATH;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// No credentials listener could be bound.
    #[error("no credentials listener could be bound")]
    NoListener,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

fn valid_cluster_name(name: &str) -> bool {
    let mut chars = name.chars();
    (1..=100).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A running agent.
pub struct Agent {
    credential_addrs: Vec<SocketAddr>,
    probe_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    region: String,
    shared: Arc<server::Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("credential_addrs", &self.credential_addrs)
            .field("probe_addr", &self.probe_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// The bound credentials listeners.
    pub fn credential_addrs(&self) -> &[SocketAddr] {
        &self.credential_addrs
    }

    /// The bound probe listener.
    pub fn probe_addr(&self) -> SocketAddr {
        self.probe_addr
    }

    /// The bound metrics listener, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The EKS Auth URL called.
    pub fn upstream_url(&self) -> &str {
        self.shared.retriever.upstream_url()
    }

    /// The region used to sign.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Listeners bound and node credentials resolved.
    pub fn is_ready(&self) -> bool {
        self.shared.ready()
    }

    /// Entries in the credential cache.
    pub fn cache_len(&self) -> usize {
        self.shared.retriever.cache_len()
    }

    /// Per-pod inbound buckets held.
    pub fn inbound_pod_buckets(&self) -> usize {
        self.shared.inbound.pod_buckets()
    }

    /// Verified tokens remembered by the inbound limiter.
    pub fn verified_tokens(&self) -> usize {
        self.shared.inbound.verified_tokens()
    }

    /// Refused tokens remembered by the inbound limiter.
    pub fn refused_tokens(&self) -> usize {
        self.shared.inbound.refused_tokens()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The Prometheus text of `/metrics`.
    pub fn render_metrics(&self) -> String {
        self.shared
            .metrics
            .render(self.cache_len(), self.is_ready())
    }

    /// Runs one refresh pass now (as the janitor does every `refresh_interval`).
    pub async fn refresh_now(&self) {
        self.shared.retriever.refresh_due().await;
    }

    /// Stops accepting, lets open connections finish (up to `shutdown_grace`), stops the
    /// background tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        tracing::debug!("podiam agent stopped");
    }
}

async fn bind_credentials(ip: IpAddr, port: u16) -> Result<Option<TcpListener>, Error> {
    let addr = SocketAddr::new(ip, port);
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e)
            if ip.is_ipv6()
                && (e.kind() == std::io::ErrorKind::AddrNotAvailable
                    || matches!(e.raw_os_error(), Some(97 | 99))) =>
        {
            tracing::warn!(%addr, error = %e, "IPv6 address not available; skipping this listener");
            Ok(None)
        }
        Err(source) => Err(Error::Bind { addr, source }),
    }
}

/// Binds every listener, starts the background tasks and returns the running agent.
pub async fn start(config: Config) -> Result<Agent, Error> {
    if !valid_cluster_name(&config.cluster_name) {
        return Err(Error::Config(format!(
            "invalid cluster name {:?}",
            config.cluster_name
        )));
    }
    if config.bind.is_empty() {
        return Err(Error::Config("no bind address".into()));
    }
    if config.max_service_qps.is_nan() || config.max_service_qps <= 0.0 {
        return Err(Error::Config("max-service-qps must be > 0".into()));
    }
    let retention_secs = config.max_credential_retention.as_secs_f64();
    if config.max_cache_size > 0
        && config.max_service_qps * retention_secs < config.max_cache_size as f64 / 2.0
    {
        tracing::warn!(
            "max-service-qps × max-credential-retention < max-cache-size / 2: a full cache cannot be refreshed in time"
        );
    }
    let keys = match (&config.cluster_issuer_url, &config.cluster_jwks_file) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Error::Config(
                "cluster-jwks-file needs cluster-issuer-url (the issuer its tokens name)".into(),
            ));
        }
        (Some(issuer), file) => Some(
            clusterkeys::ClusterKeys::new(
                clusterkeys::Settings {
                    issuer: issuer.clone(),
                    source: file.clone().map_or(clusterkeys::Source::Discovery, |f| {
                        clusterkeys::Source::File(f)
                    }),
                    dangerous_allow_http_issuer: config.dangerous_allow_http_issuer,
                    refetch_interval: config.jwks_refetch_interval,
                },
                config.clock.clone(),
            )
            .map_err(Error::Config)?,
        ),
    };
    if keys.is_none() {
        tracing::info!(
            "no cluster issuer configured: tokens are verified by EKS Auth only (set cluster-issuer-url to refuse forged tokens locally)"
        );
    }
    let region = resolve_region(config.region.as_deref(), &config.env);
    let endpoint = resolve_endpoint(
        config.endpoint.as_deref(),
        &config.env,
        Service::EksAuth,
        &region,
    );
    let http = podiam_awsclient::http_client_builder(reqwest::Client::builder(), &config.env)
        .map_err(|e| Error::Config(e.to_string()))?
        .timeout(config.upstream_timeout)
        .connect_timeout(config.upstream_connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Client(e.to_string()))?;
    let metrics = Arc::new(Metrics::default());
    let node = Arc::new(CredentialsProvider::new(
        config.static_credentials.clone(),
        config.env.clone(),
        region.clone(),
        http.clone(),
        config.clock.clone(),
        config.node_credentials_reread,
        config.node_credentials_retry,
    ));
    let client = eksauth::EksAuthClient::new(
        &eksauth::ClientSettings {
            endpoint,
            region: region.clone(),
            cluster_name: config.cluster_name.clone(),
            retries: config.upstream_retries,
        },
        http,
        Arc::clone(&node),
        config.clock.clone(),
        Arc::clone(&metrics),
    )
    .map_err(Error::Config)?;
    let retriever = Arc::new(cache::Retriever::new(
        config.max_cache_size,
        client,
        config.clock.clone(),
        Arc::clone(&metrics),
        cache::Timings {
            retention_ms: millis(config.max_credential_retention),
            min_ttl_ms: millis(config.min_credential_ttl),
            retry_ms: millis(config.recoverable_retry),
        },
        config.max_service_qps,
    ));

    // Listeners first: a bind failure must not leave tasks behind.
    let mut credential_listeners = Vec::new();
    for ip in &config.bind {
        if let Some(l) = bind_credentials(*ip, config.port).await? {
            credential_listeners.push(l);
        }
    }
    if credential_listeners.is_empty() {
        return Err(Error::NoListener);
    }
    let probe_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), config.probe_port);
    let probe = TcpListener::bind(probe_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: probe_addr,
            source,
        })?;
    let metrics_listener = match config.metrics_port {
        None => None,
        Some(p) => {
            let addr = SocketAddr::new(config.metrics_address, p);
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Bind { addr, source })?,
            )
        }
    };
    let local = |l: &TcpListener, fallback: SocketAddr| l.local_addr().unwrap_or(fallback);
    let credential_addrs: Vec<SocketAddr> = credential_listeners
        .iter()
        .zip(&config.bind)
        .map(|(l, ip)| local(l, SocketAddr::new(*ip, config.port)))
        .collect();
    let probe_addr = local(&probe, probe_addr);
    let metrics_addr = metrics_listener.as_ref().map(|l| {
        local(
            l,
            SocketAddr::new(config.metrics_address, config.metrics_port.unwrap_or(0)),
        )
    });

    let hosts_display = format!(
        "[{}]",
        config
            .bind
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let inbound = inbound::Inbound::new(
        inbound::Rate::new(config.inbound_rps, config.inbound_burst),
        inbound::Rate::new(
            config.inbound_unverified_rps,
            config.inbound_unverified_burst,
        ),
        inbound::Rate::new(config.inbound_pod_rps, config.inbound_pod_burst),
        config.inbound_max_pods,
    );
    let shared = Arc::new(server::Shared {
        retriever: Arc::clone(&retriever),
        metrics,
        node: Arc::clone(&node),
        inbound,
        keys,
        clock: config.clock.clone(),
        hosts: config.bind.clone(),
        hosts_display,
        bound: std::sync::atomic::AtomicBool::new(false),
    });

    let (shutdown, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let grace = config.shutdown_grace;
    for l in credential_listeners {
        tasks.push(tokio::spawn(server::serve(
            l,
            server::Site::Credentials,
            Arc::clone(&shared),
            rx.clone(),
            grace,
        )));
    }
    tasks.push(tokio::spawn(server::serve(
        probe,
        server::Site::Probe,
        Arc::clone(&shared),
        rx.clone(),
        grace,
    )));
    if let Some(l) = metrics_listener {
        tasks.push(tokio::spawn(server::serve(
            l,
            server::Site::Metrics,
            Arc::clone(&shared),
            rx.clone(),
            grace,
        )));
    }
    // Node credentials: resolve now and keep them fresh.
    {
        let mut rx = rx.clone();
        let node = Arc::clone(&node);
        let every = config.node_credentials_retry.max(Duration::from_millis(10));
        tasks.push(tokio::spawn(async move {
            loop {
                let _ = node.get().await;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = crate::stopped(&mut rx) => return,
                }
            }
        }));
    }
    // The janitor.
    {
        let mut rx = rx;
        let every = config.refresh_interval.max(Duration::from_millis(10));
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = crate::stopped(&mut rx) => return,
                }
                tokio::select! {
                    _ = retriever.refresh_due() => {}
                    _ = crate::stopped(&mut rx) => return,
                }
            }
        }));
    }
    shared.bound.store(true, Ordering::Relaxed);
    tracing::info!(
        cluster = %config.cluster_name,
        region = %region,
        upstream = %shared.retriever.upstream_url(),
        listeners = ?credential_addrs,
        "podiam agent started"
    );
    Ok(Agent {
        credential_addrs,
        probe_addr,
        metrics_addr,
        region,
        shared,
        shutdown,
        tasks,
    })
}

/// Resolves once `rx` turns true (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let agent = start(config).await?;
    shutdown.await;
    agent.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests;
