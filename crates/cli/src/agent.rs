//! `podiam agent`: the EKS Pod Identity node agent (serving credentials on 169.254.170.23 and
//! fd00:ec2::23), and `podiam agent init`, which creates the link holding those addresses.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// `podiam agent [init]`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand, Debug)]
enum AgentCommand {
    /// Create the dummy link holding the agent's addresses (run once per node, privileged).
    Init(InitArgs),
}

/// Settings of the agent server (the real agent's `server` flags).
#[derive(Args, Debug)]
struct ServerArgs {
    /// The EKS cluster name (as registered in podiam's EKS API).
    #[arg(short = 'c', long, required = true)]
    cluster_name: Option<String>,
    /// Address to serve credentials on, repeatable or comma-separated; also the only accepted
    /// `Host` values [default: 169.254.170.23, fd00:ec2::23].
    #[arg(short = 'b', long = "bind", visible_alias = "bind-hosts", value_delimiter = ',', value_parser = parse_ip)]
    bind: Vec<IpAddr>,
    /// Credentials port (0 picks a free one).
    #[arg(short = 'p', long, default_value_t = 80)]
    port: u16,
    /// Probe port on 127.0.0.1 (`/healthz`, `/readyz`).
    #[arg(long, default_value_t = 2703)]
    probe_port: u16,
    /// Metrics address.
    #[arg(long, default_value = "0.0.0.0", value_parser = parse_ip)]
    metrics_address: IpAddr,
    /// Metrics port (`/metrics`); 0 disables the metrics server.
    #[arg(long, default_value_t = 2705)]
    metrics_port: u16,
    /// EKS Auth endpoint URL [default: AWS_ENDPOINT_URL_EKS_AUTH, AWS_ENDPOINT_URL, the
    /// profile's services section or endpoint_url, or https://eks-auth.<region>.api.aws].
    /// The agent trusts AWS_CA_BUNDLE (or the profile's ca_bundle) when set.
    #[arg(long)]
    endpoint: Option<String>,
    /// Region [default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// Credential sets cached at most; 0 disables the cache.
    #[arg(long, default_value_t = 2000)]
    max_cache_size: usize,
    /// Refresh cached credentials at the latest after this long: seconds, or a duration such
    /// as `3h`, `90m`; 0 disables the cache.
    #[arg(long, visible_alias = "max-credential-retention-before-renewal", default_value = "10800", value_parser = crate::duration::parse_secs_or_go)]
    max_credential_retention: Duration,
    /// How often cached credentials are checked for a due refresh: seconds, or `1m` and the
    /// like.
    #[arg(long, default_value = "60", value_parser = crate::duration::parse_secs_or_go)]
    refresh_interval: Duration,
    /// Background refresh calls to EKS Auth per second at most.
    #[arg(long, default_value_t = 3.0)]
    max_service_qps: f64,
    /// Inbound requests per second on the credentials listeners, all pods together; 0
    /// disables this ceiling.
    #[arg(long, default_value_t = 1000)]
    inbound_rps: u32,
    /// Inbound burst, all pods together.
    #[arg(long, default_value_t = 500)]
    inbound_burst: u32,
    /// Inbound requests per second of one pod (its verified namespace, service account and
    /// pod uid); 0 disables per-pod limits.
    #[arg(long, default_value_t = 50)]
    inbound_pod_rps: u32,
    /// Inbound burst of one pod.
    #[arg(long, default_value_t = 100)]
    inbound_pod_burst: u32,
    /// Inbound requests per second of tokens not verified yet (first fetches), all together;
    /// 0 disables the limit.
    #[arg(long, default_value_t = 100)]
    inbound_unverified_rps: u32,
    /// Inbound burst of tokens not verified yet.
    #[arg(long, default_value_t = 200)]
    inbound_unverified_burst: u32,
    /// Pods with their own inbound bucket at most (also verified and refused tokens
    /// remembered at most); further pods share one bucket.
    #[arg(long, default_value_t = 4096)]
    inbound_max_pods: usize,
    /// The cluster's service account issuer URL (`kubectl get --raw
    /// /.well-known/openid-configuration`). When set, tokens are verified against its
    /// published keys (signature, issuer, audience pods.eks.amazonaws.com, expiry, pod
    /// binding) before any EKS Auth call, and forged ones are refused locally. Unset: EKS
    /// Auth alone verifies tokens.
    #[arg(long)]
    cluster_issuer_url: Option<String>,
    /// Read the cluster's JWK set from this file (e.g. a mounted ConfigMap) instead of the
    /// issuer's discovery document; needs --cluster-issuer-url.
    #[arg(long, requires = "cluster_issuer_url")]
    cluster_jwks_file: Option<std::path::PathBuf>,
    /// DANGEROUS: accept a plain-http cluster issuer and jwks_uri (development only).
    #[arg(long)]
    dangerous_allow_http_issuer: bool,
}

/// `podiam agent init`.
#[derive(Args, Debug)]
struct InitArgs {
    /// Name of the dummy link.
    #[arg(long, default_value = "pod-id-link0")]
    link: String,
    /// IPv4 address (required to succeed).
    #[arg(long, default_value = "169.254.170.23")]
    address: Ipv4Addr,
    /// IPv6 address (best effort: a failure is only logged).
    #[arg(long, default_value = "fd00:ec2::23")]
    address6: Ipv6Addr,
    /// Do not assign the IPv6 address.
    #[arg(long)]
    no_ipv6: bool,
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    t.parse()
        .map_err(|e| format!("{s:?} is not an IP address: {e}"))
}

/// Runs `podiam agent` or `podiam agent init`.
pub async fn run(a: AgentArgs) -> anyhow::Result<()> {
    match a.command {
        Some(AgentCommand::Init(i)) => {
            let v6 = (!i.no_ipv6).then_some(i.address6);
            let link = podiam_agent::init::init_link(&i.link, i.address, v6)
                .context("podiam agent init")?;
            println!(
                "podiam agent init: link {} holds {}{}",
                link,
                i.address,
                v6.map(|v| format!(" and {v}")).unwrap_or_default()
            );
            Ok(())
        }
        None => serve(a.server).await,
    }
}

async fn serve(s: ServerArgs) -> anyhow::Result<()> {
    let Some(cluster) = s.cluster_name else {
        bail!("--cluster-name is required")
    };
    let mut config = podiam_agent::Config::new(cluster);
    if !s.bind.is_empty() {
        config.bind = s.bind;
    }
    config.port = s.port;
    config.probe_port = s.probe_port;
    config.metrics_address = s.metrics_address;
    config.metrics_port = (s.metrics_port != 0).then_some(s.metrics_port);
    config.endpoint = s.endpoint;
    config.region = s.region;
    config.max_cache_size = s.max_cache_size;
    config.max_credential_retention = s.max_credential_retention;
    config.max_service_qps = s.max_service_qps;
    config.refresh_interval = s.refresh_interval;
    config.inbound_rps = s.inbound_rps;
    config.inbound_burst = s.inbound_burst;
    config.inbound_pod_rps = s.inbound_pod_rps;
    config.inbound_pod_burst = s.inbound_pod_burst;
    config.inbound_unverified_rps = s.inbound_unverified_rps;
    config.inbound_unverified_burst = s.inbound_unverified_burst;
    config.inbound_max_pods = s.inbound_max_pods;
    config.cluster_issuer_url = s.cluster_issuer_url;
    config.cluster_jwks_file = s.cluster_jwks_file;
    config.dangerous_allow_http_issuer = s.dangerous_allow_http_issuer;
    let agent = podiam_agent::start(config).await.context("podiam agent")?;
    {
        let mut out = std::io::stdout().lock();
        for addr in agent.credential_addrs() {
            writeln!(out, "podiam agent: listening on {addr}")?;
        }
        writeln!(out, "podiam agent: probe on {}", agent.probe_addr())?;
        if let Some(m) = agent.metrics_addr() {
            writeln!(out, "podiam agent: metrics on {m}")?;
        }
        out.flush()?;
    }
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down");
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
    fn ips() {
        assert_eq!(
            parse_ip("[fd00:ec2::23]").unwrap().to_string(),
            "fd00:ec2::23"
        );
        assert_eq!(parse_ip("127.0.0.1").unwrap().to_string(), "127.0.0.1");
    }
}
