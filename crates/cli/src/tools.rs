//! Operator tools that talk to a running `podiam serve` through the standard AWS configuration.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use podiam_awsclient::Service;

use crate::awsenv::AwsEnv;

/// `podiam token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Cluster name.
    #[arg(long)]
    cluster: String,
    /// Namespace of the service account.
    #[arg(long)]
    namespace: String,
    /// Service account name.
    #[arg(long)]
    service_account: String,
    /// Audience (repeatable) [default: sts.amazonaws.com].
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// Pod name (adds the pod and node claims).
    #[arg(long)]
    pod_name: Option<String>,
    /// Pod uid.
    #[arg(long)]
    pod_uid: Option<String>,
    /// Lifetime in seconds (600..=172800) [default: 3600].
    #[arg(long)]
    expiration: Option<i64>,
}

pub async fn token(a: TokenArgs) -> anyhow::Result<()> {
    let env = AwsEnv::load(Service::Eks).await?;
    let body = json!({
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "audiences": a.audiences,
        "podName": a.pod_name,
        "podUid": a.pod_uid,
        "expirationSeconds": a.expiration,
    });
    let v = env
        .call(
            "POST",
            &format!("/podiam/clusters/{}/token", a.cluster),
            "eks",
            Some(&body),
        )
        .await?;
    let t = v
        .get("token")
        .and_then(|t| t.as_str())
        .context("no token in the answer")?;
    println!("{t}");
    Ok(())
}

/// `podiam issuer`.
#[derive(Args, Debug)]
pub struct IssuerArgs {
    #[command(subcommand)]
    command: IssuerCommand,
}

#[derive(Subcommand, Debug)]
enum IssuerCommand {
    /// Write the hosted issuer's signing key and public keys to DIR and print the
    /// kube-apiserver flags that make a cluster sign its tokens with them. The signing key is
    /// the newest key (after a rotation, the new one, which kube-apiserver uses once restarted
    /// with it); the public keys are every key in the JWKS.
    Export {
        /// Cluster name.
        #[arg(long)]
        cluster: String,
        /// Output directory (files are created 0600).
        #[arg(long)]
        out_dir: std::path::PathBuf,
    },
    /// Rotate the hosted issuer's signing key: the new key is in the JWKS at once and podiam signs
    /// with it after a few seconds (when every replica has it); the old key signs until then and
    /// stays in the JWKS for the retention period. A cluster signs with the new key once you
    /// export again and restart kube-apiserver, which must happen within that period.
    Rotate {
        /// Cluster name.
        #[arg(long)]
        cluster: String,
    },
}

pub async fn issuer(a: IssuerArgs) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let env = AwsEnv::load(Service::Eks).await?;
    match a.command {
        IssuerCommand::Export { cluster, out_dir } => {
            let v = env
                .call(
                    "GET",
                    &format!("/podiam/clusters/{cluster}/issuer"),
                    "eks",
                    None,
                )
                .await?;
            let s = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_str())
                    .map(str::to_owned)
                    .context("incomplete answer")
            };
            std::fs::create_dir_all(&out_dir)?;
            let write = |name: &str, text: &str| -> anyhow::Result<std::path::PathBuf> {
                let p = out_dir.join(name);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&p)?;
                // `mode` applies only to a new file: narrow one that was already there before
                // a private key lands in it.
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
                f.write_all(text.as_bytes())?;
                Ok(p)
            };
            let key = write("sa-signer.key", &s("signingKeyPem")?)?;
            let public = write("sa-signer.pub", &s("publicKeysPem")?)?;
            let issuer = s("issuer")?;
            println!("--service-account-issuer={issuer}");
            println!("--service-account-signing-key-file={}", key.display());
            println!("--service-account-key-file={}", public.display());
            println!("--api-audiences=sts.amazonaws.com,pods.eks.amazonaws.com");
        }
        IssuerCommand::Rotate { cluster } => {
            let v = env
                .call(
                    "POST",
                    &format!("/podiam/clusters/{cluster}/issuer/rotate"),
                    "eks",
                    None,
                )
                .await?;
            println!(
                "new signing key: {} (in the JWKS now, signs from {})",
                v.get("kid").and_then(|k| k.as_str()).unwrap_or_default(),
                v.get("activeFrom")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `podiam role`.
#[derive(Args, Debug)]
pub struct RoleArgs {
    #[command(subcommand)]
    command: RoleCommand,
}

#[derive(Subcommand, Debug)]
enum RoleCommand {
    /// Deny every action to sessions of the role issued before now (writes the
    /// `AWSRevokeOlderSessions` inline policy, as the AWS console does).
    RevokeSessions {
        /// Role name.
        #[arg(long)]
        role: String,
    },
}

pub async fn role(a: RoleArgs) -> anyhow::Result<()> {
    let env = AwsEnv::load(Service::Iam).await?;
    match a.command {
        RoleCommand::RevokeSessions { role } => {
            let v = env
                .call(
                    "POST",
                    &format!("/podiam/roles/{role}/revoke-sessions"),
                    "iam",
                    None,
                )
                .await?;
            println!(
                "sessions of {role} issued before {} are revoked",
                v.get("revokedBefore")
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `podiam session-keys`.
#[derive(Args, Debug)]
pub struct SessionKeysArgs {
    #[command(subcommand)]
    command: SessionKeysCommand,
}

#[derive(Subcommand, Debug)]
enum SessionKeysCommand {
    /// Add a new session-token key: every replica verifies it at once, it mints after a few
    /// seconds, and the old keys keep verifying the sessions they minted. Needs the root of the
    /// installation's administrator account (the account created at first start).
    Rotate,
    /// Retire a session-token key: every session it sealed is refused from then on (rotate
    /// first; the newest key cannot be retired). Needs the installation administrator's root.
    Retire {
        /// The key's id (see `list`).
        #[arg(long)]
        key_id: u32,
    },
    /// The session-token keys in force and when each started minting.
    List,
}

pub async fn session_keys(a: SessionKeysArgs) -> anyhow::Result<()> {
    let env = AwsEnv::load(Service::Iam).await?;
    match a.command {
        SessionKeysCommand::Rotate => {
            let v = env
                .call("POST", "/podiam/session-keys/rotate", "iam", None)
                .await?;
            println!(
                "session key {} mints from {}",
                v.get("keyId")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or_default(),
                v.get("activeFrom")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or_default()
            );
        }
        SessionKeysCommand::Retire { key_id } => {
            let v = env
                .call(
                    "POST",
                    &format!("/podiam/session-keys/{key_id}/retire"),
                    "iam",
                    None,
                )
                .await?;
            println!(
                "session key {key_id} retired; keys in force: {}",
                v.get("keys").map(ToString::to_string).unwrap_or_default()
            );
        }
        SessionKeysCommand::List => {
            let v = env.call("GET", "/podiam/session-keys", "iam", None).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}
