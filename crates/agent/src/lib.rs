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
mod eksauth;
mod inbound;
pub mod init;
mod metrics;
mod server;
pub mod token;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use eksauth::{NON_RECOVERABLE, UpstreamError};
pub use metrics::Metrics;
/// The client-side types [`Config`] is made of, from `podiam-awsclient`.
pub use podiam_awsclient::{AwsCredentials, Clock, Env};
use podiam_awsclient::{CredentialsProvider, Service, resolve_endpoint, resolve_region};
pub use server::CREDENTIALS_PATH;

/// The default IPv4 bind (and `Host`) address.
pub const DEFAULT_ADDRESS_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// The default IPv6 bind (and `Host`) address, `fd00:ec2::23`.
pub const DEFAULT_ADDRESS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);

/// Everything `podiam agent` can be told. [`Config::new`] gives the real agent's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The EKS cluster name (1-100 of `[0-9A-Za-z][A-Za-z0-9-_]*`).
    pub cluster_name: String,
    /// Addresses to serve credentials on; also the only accepted `Host` values. An IPv6
    /// address that cannot be bound (`EADDRNOTAVAIL`, no IPv6) is skipped with a warning.
    pub bind: Vec<IpAddr>,
    /// Credentials port (80). 0 picks a free port per bind address.
    pub port: u16,
    /// Probe port on 127.0.0.1 (2703). 0 picks a free port.
    pub probe_port: u16,
    /// Metrics address (0.0.0.0).
    pub metrics_address: IpAddr,
    /// Metrics port: `None` disables the metrics server, `Some(0)` picks a free port (2705).
    pub metrics_port: Option<u16>,
    /// EKS Auth endpoint URL override (else the configured endpoint:
    /// `AWS_ENDPOINT_URL_EKS_AUTH`, `AWS_ENDPOINT_URL`, the profile's `services` section and
    /// `endpoint_url`; else `https://eks-auth.<region>.api.aws`).
    pub endpoint: Option<String>,
    /// Region override (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, `us-east-1`).
    pub region: Option<String>,
    /// Cache entries at most (2000); 0 disables the cache.
    pub max_cache_size: usize,
    /// Refresh cached credentials at the latest after this long (3 h); 0 disables the cache.
    pub max_credential_retention: Duration,
    /// Background refresh calls to EKS Auth per second at most (3).
    pub max_service_qps: f64,
    /// Inbound requests per second on the credentials listeners, all pods together (1000);
    /// 0 disables this ceiling.
    pub inbound_rps: u32,
    /// Inbound burst (500).
    pub inbound_burst: u32,
    /// Inbound requests per second of one pod (a verified token's namespace, service account
    /// and pod uid; every token of the pod shares it) (50); 0 disables per-pod limits. Charged
    /// before the global ceiling, so one pod cannot drain it.
    pub inbound_pod_rps: u32,
    /// Per-pod burst (100).
    pub inbound_pod_burst: u32,
    /// Inbound requests per second of tokens not verified yet, all together (100): first
    /// fetches. Tokens refused by the agent's local parse and time checks, tokens already
    /// refused, and requests joining a fetch under way are not charged. 0 disables the limit.
    pub inbound_unverified_rps: u32,
    /// Unverified burst (200).
    pub inbound_unverified_burst: u32,
    /// Pods with their own bucket at most, and verified and refused tokens remembered at most,
    /// each (4096). Pods beyond it share one bucket with the per-pod rate.
    pub inbound_max_pods: usize,
    /// The cluster's service account issuer URL (the only `iss` accepted). When set, the agent
    /// verifies a new token's signature, issuer, audience (`pods.eks.amazonaws.com`), times
    /// and pod binding against the issuer's published keys before calling EKS Auth, and
    /// refuses a token that fails locally. `None` (the default): EKS Auth alone verifies.
    pub cluster_issuer_url: Option<String>,
    /// Read the cluster's JWK set from this file instead of the issuer's discovery document
    /// (re-read every minute, and on an unknown `kid`); needs [`Config::cluster_issuer_url`].
    pub cluster_jwks_file: Option<PathBuf>,
    /// DANGEROUS: accept a plain-http issuer and `jwks_uri` (tests and local development).
    pub dangerous_allow_http_issuer: bool,
    /// Fetch the cluster's keys at most once per this long on unknown `kid`s or failures (30 s).
    pub jwks_refetch_interval: Duration,
    /// The environment for the region, endpoints, CA bundle and node credential chain.
    pub env: Env,
    /// Node credentials to use instead of the chain (tests).
    pub static_credentials: Option<AwsCredentials>,
    /// The clock (tests move it forward).
    pub clock: Clock,
    /// Do not serve cached credentials with this little validity left (15 s).
    pub min_credential_ttl: Duration,
    /// How often the janitor looks for entries to refresh (60 s).
    pub refresh_interval: Duration,
    /// Base delay before retrying a recoverable refresh failure; a random delay up to as much
    /// again is added (60 s).
    pub recoverable_retry: Duration,
    /// EKS Auth HTTP timeout per attempt (1 s).
    pub upstream_timeout: Duration,
    /// EKS Auth connect timeout (500 ms).
    pub upstream_connect_timeout: Duration,
    /// Retries after connection errors, timeouts and 5xx (2).
    pub upstream_retries: u32,
    /// Re-resolve node credentials from shared files this often (60 s).
    pub node_credentials_reread: Duration,
    /// Retry a failed node credential resolution after this long (5 s).
    pub node_credentials_retry: Duration,
    /// How long open connections may finish on shutdown (35 s).
    pub shutdown_grace: Duration,
}

impl Config {
    /// The real agent's defaults for `cluster_name`, with the process environment.
    pub fn new(cluster_name: impl Into<String>) -> Self {
        Self {
            cluster_name: cluster_name.into(),
            bind: vec![
                IpAddr::V4(DEFAULT_ADDRESS_V4),
                IpAddr::V6(DEFAULT_ADDRESS_V6),
            ],
            port: 80,
            probe_port: 2703,
            metrics_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            metrics_port: Some(2705),
            endpoint: None,
            region: None,
            max_cache_size: 2000,
            max_credential_retention: Duration::from_secs(3 * 3600),
            max_service_qps: 3.0,
            inbound_rps: 1000,
            inbound_burst: 500,
            inbound_pod_rps: 50,
            inbound_pod_burst: 100,
            inbound_unverified_rps: 100,
            inbound_unverified_burst: 200,
            inbound_max_pods: 4096,
            cluster_issuer_url: None,
            cluster_jwks_file: None,
            dangerous_allow_http_issuer: false,
            jwks_refetch_interval: Duration::from_secs(30),
            env: Env::from_process(),
            static_credentials: None,
            clock: Clock::system(),
            min_credential_ttl: Duration::from_secs(15),
            refresh_interval: Duration::from_secs(60),
            recoverable_retry: Duration::from_secs(60),
            upstream_timeout: Duration::from_secs(1),
            upstream_connect_timeout: Duration::from_millis(500),
            upstream_retries: 2,
            node_credentials_reread: Duration::from_secs(60),
            node_credentials_retry: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(35),
        }
    }
}

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
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        assert!(valid_cluster_name("my-cluster_1"));
        assert!(!valid_cluster_name("-x"));
        assert!(!valid_cluster_name(""));
        assert!(!valid_cluster_name("a/b"));
        assert!(!valid_cluster_name(&"a".repeat(101)));
        assert_eq!(DEFAULT_ADDRESS_V6.to_string(), "fd00:ec2::23");
    }
}
