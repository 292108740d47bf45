//! What `podiam agent` can be told, with the real `eks-pod-identity-agent`'s defaults.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use podiam_awsclient::{AwsCredentials, Clock, Env};

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
