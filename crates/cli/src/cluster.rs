//! `podiam cluster webhook-config`: the two webhook kubeconfig files and the kube-apiserver
//! flags that make a cluster authenticate `aws eks get-token` tokens and authorize access
//! policies through podiam.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use podiam_awsclient::Service;

use crate::awsenv::AwsEnv;

/// `podiam cluster`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Write DIR/authn-webhook.kubeconfig and DIR/authz-webhook.kubeconfig (kube-apiserver's
    /// TokenReview and SubjectAccessReview webhooks, served by podiam for the cluster) and print
    /// the kube-apiserver flags that use them. The server is podiam's endpoint (AWS_ENDPOINT_URL
    /// or the profile's endpoint_url); the CA the API server trusts it with is AWS_CA_BUNDLE
    /// (or the profile's ca_bundle), else the system's trust store.
    WebhookConfig {
        /// Cluster name.
        #[arg(long)]
        cluster: String,
        /// Output directory.
        #[arg(long)]
        out_dir: PathBuf,
        /// The URL kube-apiserver reaches podiam at, when it differs from the endpoint this
        /// command uses (e.g. an in-cluster Service name).
        #[arg(long)]
        server: Option<String>,
        /// A PEM file of the CA(s) kube-apiserver trusts podiam's certificate with (default:
        /// AWS_CA_BUNDLE or the profile's ca_bundle).
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

pub async fn cluster(a: ClusterArgs) -> anyhow::Result<()> {
    let ClusterCommand::WebhookConfig {
        cluster,
        out_dir,
        server,
        ca_file,
    } = a.command;
    let env = AwsEnv::load(Service::Eks).await?;
    let described = env
        .call("GET", &format!("/clusters/{cluster}"), "eks", None)
        .await?;
    let c = described.get("cluster").context("incomplete answer")?;
    let arn = c
        .get("arn")
        .and_then(|v| v.as_str())
        .context("the cluster has no ARN")?;
    let account = arn.split(':').nth(4).unwrap_or_default();
    if account.is_empty() {
        bail!("unexpected cluster ARN {arn}");
    }
    let mode = c
        .pointer("/accessConfig/authenticationMode")
        .and_then(|v| v.as_str())
        .unwrap_or("CONFIG_MAP");
    let base = server.unwrap_or_else(|| env.endpoint.clone());
    let base = base.trim_end_matches('/');
    if !base.starts_with("https://") {
        bail!("kube-apiserver calls webhooks over HTTPS only: {base} is not https://");
    }
    let ca_path = ca_file.or_else(|| {
        podiam_awsclient::tls::ca_bundle_path(&podiam_awsclient::Env::from_process())
            .map(|(p, _)| p)
    });
    let ca = match &ca_path {
        Some(p) => {
            Some(std::fs::read(p).with_context(|| format!("reading the CA file {}", p.display()))?)
        }
        None => None,
    };
    std::fs::create_dir_all(&out_dir)?;
    let route = format!("{base}/podiam/clusters/{account}/{cluster}");
    let authn = write_kubeconfig(
        &out_dir,
        "authn-webhook.kubeconfig",
        &format!("{route}/authenticate"),
        ca.as_deref(),
    )?;
    let authz = write_kubeconfig(
        &out_dir,
        "authz-webhook.kubeconfig",
        &format!("{route}/authorize"),
        ca.as_deref(),
    )?;
    if mode == "CONFIG_MAP" {
        eprintln!(
            "note: cluster {cluster} is in CONFIG_MAP mode: access entries are off, so tokens map only \
             through an aws-auth ConfigMap and access policies grant nothing \
             (aws eks update-cluster-config --access-config authenticationMode=API_AND_CONFIG_MAP)"
        );
    }
    println!(
        "--authentication-token-webhook-config-file={}",
        authn.display()
    );
    println!("--authentication-token-webhook-version=v1");
    println!("--authorization-webhook-config-file={}", authz.display());
    println!("--authorization-webhook-version=v1");
    // A policy disassociated stops granting once the API server's cached answer expires.
    println!("--authorization-webhook-cache-authorized-ttl=30s");
    println!("--authorization-mode=Node,RBAC,Webhook");
    Ok(())
}

/// A kubeconfig naming one server (JSON, which kube-apiserver reads as it reads YAML).
fn write_kubeconfig(
    dir: &Path,
    name: &str,
    server: &str,
    ca: Option<&[u8]>,
) -> anyhow::Result<PathBuf> {
    let mut cluster = serde_json::Map::new();
    cluster.insert("server".into(), server.into());
    if let Some(ca) = ca {
        cluster.insert(
            "certificate-authority-data".into(),
            base64::engine::general_purpose::STANDARD.encode(ca).into(),
        );
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "podiam", "cluster": cluster }],
        "users": [{ "name": "kube-apiserver", "user": {} }],
        "contexts": [{ "name": "podiam", "context": { "cluster": "podiam", "user": "kube-apiserver" } }],
        "current-context": "podiam",
    });
    let path = dir.join(name);
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(path)
}
