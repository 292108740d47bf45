//! `podiam webhook`: the mutating admission webhook that injects IRSA and EKS Pod Identity
//! settings into pods (amazon-eks-pod-identity-webhook's behaviour and flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use podiam_webhook::kubernetes::{self, KubeServiceAccounts};
use podiam_webhook::{
    AssociationSource, EksAssociations, FileServiceAccounts, NoAssociations, ServiceAccountSource,
    ServiceAccounts, Settings, Webhook, server, tls,
};

/// `podiam webhook`.
#[derive(Args, Debug)]
pub struct WebhookArgs {
    /// HTTPS listen address.
    #[arg(long, env = "PODIAM_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// PEM certificate chain (reloaded when it changes).
    #[arg(
        long,
        env = "PODIAM_WEBHOOK_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key (reloaded when it changes).
    #[arg(long, env = "PODIAM_WEBHOOK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Generate (or reuse) a CA and serving certificate in DIR (ca.crt, ca.key, tls.crt,
    /// tls.key) and print the caBundle for the MutatingWebhookConfiguration.
    #[arg(long, value_name = "DIR")]
    self_signed: Option<PathBuf>,
    /// DNS names (or IPs) of the self-signed serving certificate, repeatable [default: the
    /// Service's names from --service-name/--namespace, localhost, 127.0.0.1].
    #[arg(long = "dns-name", value_delimiter = ',')]
    dns_names: Vec<String>,
    /// The webhook's Service name (for the default certificate names).
    #[arg(long, default_value = "podiam-webhook")]
    service_name: String,
    /// The webhook's namespace (for the default certificate names).
    #[arg(long, default_value = "podiam")]
    namespace: String,
    /// Also serve `/metrics` (and `/healthz`) over plain HTTP on this address (upstream's
    /// --metrics-port 9999).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Service accounts: the ConfigMap mode's `data.config` JSON (`{"ns/sa": {"RoleARN": ...}}`),
    /// a ConfigMap, or a ServiceAccount list (`kubectl get sa -A -o json`); reloaded on change.
    /// With a Kubernetes watch, its entries apply to accounts whose annotations name no role.
    #[arg(long, env = "PODIAM_WEBHOOK_SERVICE_ACCOUNT_FILE")]
    service_account_file: Option<PathBuf>,
    /// Watch ServiceAccounts through the API server of this kubeconfig. Without it, the
    /// webhook watches its own cluster when it runs in one (KUBERNETES_SERVICE_HOST and the
    /// mounted service-account token), else it reads --service-account-file only.
    #[arg(long, env = "PODIAM_WEBHOOK_KUBECONFIG", conflicts_with = "no_kube")]
    kubeconfig: Option<PathBuf>,
    /// Never contact the Kubernetes API (service accounts from --service-account-file only).
    #[arg(long)]
    no_kube: bool,
    /// How long a pod whose service account the watch has not delivered yet waits for it
    /// (while the account is also fetched directly, 10/s at most): `100ms`, `1s`, `0` = no wait;
    /// at most 30s, the API server's own limit for a webhook.
    #[arg(long, default_value = "100ms", value_parser = parse_grace)]
    service_account_lookup_grace_period: Duration,
    /// EKS cluster name: enables Pod Identity injection from the cluster's associations.
    #[arg(long, env = "PODIAM_WEBHOOK_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// EKS API endpoint listing associations [default: AWS_ENDPOINT_URL_EKS, AWS_ENDPOINT_URL,
    /// the profile's services section or endpoint_url, or https://eks.<region>.amazonaws.com].
    /// The client trusts AWS_CA_BUNDLE (or the profile's ca_bundle) when set.
    #[arg(long)]
    endpoint: Option<String>,
    /// Region for signing the EKS calls [default: AWS_REGION, AWS_DEFAULT_REGION, profile,
    /// us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// How often associations are re-listed, seconds.
    #[arg(long, default_value_t = 10)]
    association_refresh: u64,
    /// Annotation prefix.
    #[arg(long, default_value = "eks.amazonaws.com")]
    annotation_prefix: String,
    /// Default IRSA token audience.
    #[arg(long, default_value = "sts.amazonaws.com")]
    token_audience: String,
    /// IRSA token mount path.
    #[arg(long, default_value = podiam_webhook::mutate::DEFAULT_TOKEN_MOUNT_PATH)]
    token_mount_path: String,
    /// Default token expiration, seconds (at least 600).
    #[arg(long, default_value_t = 86_400)]
    token_expiration: i64,
    /// Region injected as AWS_REGION/AWS_DEFAULT_REGION when a container sets neither.
    #[arg(long, visible_alias = "aws-default-region")]
    default_region: Option<String>,
    /// Inject AWS_STS_REGIONAL_ENDPOINTS=regional unless the service account says otherwise.
    #[arg(long)]
    sts_regional_endpoint: bool,
    /// podiam extension: inject AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_EKS_AUTH = URL.
    #[arg(long, value_name = "URL")]
    inject_sts_endpoint: Option<String>,
    /// Pod Identity token audience.
    #[arg(long, default_value = "pods.eks.amazonaws.com")]
    container_credentials_audience: String,
    /// Pod Identity token mount path.
    #[arg(
        long,
        default_value = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
    )]
    container_credentials_token_mount_path: String,
    /// Pod Identity token volume name.
    #[arg(long, default_value = "eks-pod-identity-token")]
    container_credentials_token_volume_name: String,
    /// Pod Identity token file name.
    #[arg(long, default_value = "eks-pod-identity-token")]
    container_credentials_token_path: String,
    /// Pod Identity credentials URI.
    #[arg(long, default_value = "http://169.254.170.23/v1/credentials")]
    container_credentials_full_uri: String,
}

pub async fn run(a: WebhookArgs) -> anyhow::Result<()> {
    if a.token_expiration < podiam_webhook::mutate::MIN_TOKEN_EXPIRATION {
        bail!("--token-expiration must be at least 600");
    }
    let (cert, key) = match (&a.self_signed, &a.tls_cert, &a.tls_key) {
        (Some(dir), _, _) => {
            let names = if a.dns_names.is_empty() {
                tls::default_dns_names(&a.service_name, &a.namespace)
            } else {
                a.dns_names.clone()
            };
            let ss = tls::ensure_self_signed(dir, &names).map_err(|e| anyhow!(e))?;
            let bundle = ss.ca_bundle().map_err(|e| anyhow!(e))?;
            println!(
                "podiam webhook: {} certificates in {}",
                if ss.generated { "generated" } else { "reusing" },
                dir.display()
            );
            println!("caBundle: {bundle}");
            (ss.cert, ss.key)
        }
        (None, Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => bail!("give --tls-cert and --tls-key, or --self-signed DIR"),
    };
    let reloading = Arc::new(tls::ReloadingCert::open(&cert, &key).map_err(|e| anyhow!(e))?);
    let tls_config = tls::server_config(reloading).map_err(|e| anyhow!(e))?;

    let mut tasks = Vec::new();
    let file: Option<Arc<dyn ServiceAccountSource>> = match &a.service_account_file {
        Some(f) => {
            let src = Arc::new(FileServiceAccounts::open(f).map_err(|e| anyhow!(e))?);
            tasks.push(src.spawn_watch(Duration::from_secs(2)));
            Some(src)
        }
        None => None,
    };
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let service_accounts: Arc<dyn ServiceAccountSource> = if !a.no_kube
        && (a.kubeconfig.is_some() || in_cluster)
    {
        let client = kubernetes::client(a.kubeconfig.as_deref())
            .await
            .map_err(|e| anyhow!("Kubernetes API: {e}"))?;
        let src = Arc::new(KubeServiceAccounts::new(client, &a.annotation_prefix, file));
        tasks.push(src.spawn_watch());
        // Serve once the first list is in, so that early pods see their service accounts;
        // /readyz says 503 until then if the API server is slow.
        if src.wait_synced(Duration::from_secs(10)).await {
            println!("podiam webhook: watching {} service accounts", src.len());
        } else {
            tracing::warn!("service accounts not listed yet; /readyz answers 503 until they are");
        }
        src
    } else {
        file.unwrap_or_else(|| Arc::new(ServiceAccounts::default()))
    };
    let associations: Arc<dyn AssociationSource> = match &a.cluster_name {
        Some(cluster) => {
            let client = podiam_webhook::eks::EksClient::new(
                a.endpoint.as_deref(),
                cluster,
                a.region.as_deref(),
                podiam_awsclient::Env::from_process(),
            )
            .map_err(|e| anyhow!(e))?;
            let endpoint = client.endpoint().to_owned();
            let src = Arc::new(EksAssociations::new(client));
            // Warm up before serving so that early pods see their associations.
            match tokio::time::timeout(Duration::from_secs(10), src.refresh()).await {
                Ok(Ok(n)) => {
                    tracing::info!(cluster, %endpoint, associations = n, "associations listed")
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "listing associations failed; retrying in the background")
                }
                Err(_) => {
                    tracing::warn!("listing associations timed out; retrying in the background")
                }
            }
            tasks.push(src.spawn_refresh(Duration::from_secs(a.association_refresh.max(1))));
            src
        }
        None => Arc::new(NoAssociations),
    };

    let settings = Settings {
        annotation_prefix: a.annotation_prefix,
        token_audience: a.token_audience,
        token_mount_path: a.token_mount_path,
        token_expiration: a.token_expiration,
        default_region: a.default_region.filter(|r| !r.is_empty()),
        regional_sts: a.sts_regional_endpoint,
        cc_audience: a.container_credentials_audience,
        cc_mount_path: a.container_credentials_token_mount_path,
        cc_volume_name: a.container_credentials_token_volume_name,
        cc_token_path: a.container_credentials_token_path,
        cc_full_uri: a.container_credentials_full_uri,
        inject_sts_endpoint: a.inject_sts_endpoint.filter(|u| !u.is_empty()),
        ..Settings::default()
    };
    let webhook = Arc::new(
        Webhook::new(settings, service_accounts, associations)
            .with_lookup_grace(a.service_account_lookup_grace_period),
    );
    let app = server::router(Arc::clone(&webhook));

    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if let Some(m) = a.metrics_listen {
        let ml = tokio::net::TcpListener::bind(m)
            .await
            .with_context(|| format!("binding {m}"))?;
        println!("podiam webhook: metrics on http://{}", ml.local_addr()?);
        let app = app.clone();
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server::serve_plain(ml, app, stopped(rx)).await {
                tracing::warn!(error = %e, "metrics listener failed");
            }
        }));
    }
    println!("podiam webhook: listening on https://{addr}");
    let serving = tokio::spawn(server::serve_tls(
        listener,
        app,
        tls_config,
        stopped(stop_rx),
    ));
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = serving.await;
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// The lookup grace period: a Go duration of at most 30 s (the API server gives a webhook 30 s
/// at most, `timeoutSeconds`).
fn parse_grace(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse_go(s)?;
    if d > Duration::from_secs(30) {
        return Err(format!(
            "{s:?} is longer than 30s, the API server's limit for a webhook"
        ));
    }
    Ok(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods() {
        assert_eq!(parse_grace("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_grace("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_grace("30s").unwrap(), Duration::from_secs(30));
        for bad in ["", "ms", "10", "1h", "31s", "-1s", "1..2s", "abc"] {
            assert!(parse_grace(bad).is_err(), "{bad:?} accepted");
        }
    }
}
