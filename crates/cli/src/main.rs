//! The `podiam` binary: subcommands over the podiam crates. Thin by design.

mod access;
mod agent;
mod audit;
mod awsauth;
mod awsauth_kube;
mod awsenv;
mod cluster;
mod duration;
mod explain;
mod serve;
mod tools;
mod webhook;

use std::io::IsTerminal as _;

use clap::{Parser, Subcommand, ValueEnum};

/// podiam: AWS-compatible workload identity for any Kubernetes cluster.
#[derive(Parser, Debug)]
#[command(name = "podiam", version, about)]
struct Cli {
    /// Log line format on stderr: `text` (colour only on a terminal) or `json` (one object a
    /// line, with the request span's fields) [default: text; serve also reads `log_format`
    /// from its --config file].
    #[arg(long, global = true, env = "PODIAM_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the control plane: IAM, STS, EKS APIs and hosted OIDC issuers.
    Serve(serve::ServeArgs),
    /// Mint a projected-service-account-shaped token from a cluster's hosted issuer (for
    /// development and tests).
    Token(tools::TokenArgs),
    /// Hosted issuer operations: export keys and kube-apiserver flags, rotate the signing key.
    Issuer(tools::IssuerArgs),
    /// Explain why an action is allowed or denied, from policy files or for a user or role of a
    /// running server. Exit status 0 = allowed, 3 = denied.
    Explain(explain::ExplainArgs),
    /// Role operations: revoke every session issued before now.
    Role(tools::RoleArgs),
    /// Cluster operations: write the kube-apiserver webhook configuration for `aws eks
    /// get-token` authentication and access-policy authorization.
    Cluster(cluster::ClusterArgs),
    /// Access entries: explain why a Kubernetes request by an IAM principal is allowed by an
    /// access policy or left to RBAC. Exit status 0 = allowed, 3 = no opinion.
    Access(access::AccessArgs),
    /// The audit trail: who holds an access key, what a pod was given.
    Audit(audit::AuditArgs),
    /// Session-token keys: rotate.
    SessionKeys(tools::SessionKeysArgs),
    /// Run the EKS Pod Identity node agent (`podiam agent --cluster-name NAME`), or set up its
    /// link (`podiam agent init`).
    Agent(agent::AgentArgs),
    /// Run the mutating admission webhook that injects IRSA and EKS Pod Identity settings
    /// into pods.
    Webhook(Box<webhook::WebhookArgs>),
}

/// Logs to stderr, filtered by `PODIAM_LOG` (default `info`); colour only when stderr is a
/// terminal, so files and log collectors get no escape codes.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PODIAM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// mimalloc: events built on the request threads are freed on the audit writer's, and glibc's
/// allocator serializes such frees on the allocating thread's arena lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = match (&cli.log_format, &cli.command) {
        (Some(f), _) => *f,
        (None, Command::Serve(a)) => a.file_log_format().unwrap_or_default(),
        (None, _) => LogFormat::default(),
    };
    init_logging(format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("podiam: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Token(a) => tools::token(a).await,
            Command::Issuer(a) => tools::issuer(a).await,
            Command::Explain(a) => explain::run(a).await,
            Command::Role(a) => tools::role(a).await,
            Command::Cluster(a) => cluster::cluster(a).await,
            Command::Access(a) => access::run(a).await,
            Command::Audit(a) => audit::run(a).await,
            Command::SessionKeys(a) => tools::session_keys(a).await,
            Command::Agent(a) => agent::run(a).await,
            Command::Webhook(a) => webhook::run(*a).await,
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("podiam: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
