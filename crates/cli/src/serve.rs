//! `podiam serve`: configuration (flags, then `PODIAM_*` env, then an optional TOML file, then
//! defaults), data directory, master key, bootstrap, listener.
//!
//! Longer than 600 lines because every setting's flag, file key, merge and `Debug` line sit
//! together here (and are tested together), so that a new setting is one place to read.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use podiam_control::crypto::MasterKey;
use podiam_control::{Config, Control, SystemClock};
use serde::Deserialize;

/// Settings of `podiam serve`. Each flag also reads `PODIAM_<NAME>`; a value not given by
/// flag or env comes from `--config FILE` (TOML, same names with `_`), else the default.
/// `Debug` hides the store URL (a PostgreSQL URL may carry a password).
#[derive(Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PODIAM_LISTEN")]
    listen: Option<String>,
    /// Data directory (created 0700) [default: ./podiam-data].
    #[arg(long, env = "PODIAM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where records are kept: `postgres://user:password@host:port/database` (PostgreSQL, which
    /// any number of replicas can share: each follows the others' writes within a second;
    /// replicas must use the same master key, see --master-key-file) or `sqlite:///path`
    /// [default: SQLite in <data-dir>/podiam.db].
    #[arg(long, env = "PODIAM_STORE")]
    store: Option<String>,
    /// Optional TOML configuration file.
    #[arg(long, env = "PODIAM_CONFIG")]
    config: Option<PathBuf>,
    /// Region podiam answers as [default: us-east-1].
    #[arg(long, env = "PODIAM_REGION")]
    region: Option<String>,
    /// Account id of the first account (12 digits) [default: random].
    #[arg(long, env = "PODIAM_ACCOUNT_ID")]
    account_id: Option<String>,
    /// URL clients use to reach this server, written as `endpoint_url` [default: http://<listen>].
    #[arg(long, env = "PODIAM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Base URL of hosted cluster issuers [default: https://oidc.podiam.local].
    #[arg(long, env = "PODIAM_ISSUER_BASE_URL")]
    issuer_base_url: Option<String>,
    /// File holding the base64 master key [default: <data-dir>/master.key, created]. Replicas
    /// sharing a PostgreSQL store must all use the same key: it seals the session and issuer
    /// keys they share (a replica with another key refuses to start).
    #[arg(long, env = "PODIAM_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Further accounts to create (12-digit ids, comma-separated or repeated); each account's
    /// root key is written as profile `podiam-<id>`.
    #[arg(
        long = "additional-account",
        env = "PODIAM_ADDITIONAL_ACCOUNTS",
        value_delimiter = ','
    )]
    additional_accounts: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with `--tls-key`).
    #[arg(long, env = "PODIAM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "PODIAM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With a shared store: how long (seconds) a replica that cannot read PostgreSQL keeps
    /// issuing credentials from memory; past it, credential calls and /readyz answer 503
    /// (0 = for the whole outage) [default: 300].
    #[arg(long, env = "PODIAM_MAX_STALENESS")]
    max_staleness: Option<u64>,
    /// DEVELOPMENT ONLY: allow http:// issuers for OIDC providers and JWKS fetches.
    #[arg(long, env = "PODIAM_DANGEROUS_ALLOW_HTTP_ISSUER")]
    dangerous_allow_http_issuer: bool,
    /// Serve direct-mode Pod Identity at /podiam/pod-identity/<account>/<cluster>/v1/credentials,
    /// over HTTPS only (needs --tls-cert): any holder of a pod's token who reaches this server
    /// gets that pod's credentials, with no node identity. Only for nodes that cannot run the
    /// agent.
    #[arg(long, env = "PODIAM_ENABLE_DIRECT_POD_IDENTITY")]
    enable_direct_pod_identity: bool,
    /// Hosts (`host[:port]`) of this server's STS endpoint that `aws eks get-token` tokens may
    /// be presigned for (comma-separated or repeated) [default: the host of --public-url].
    #[arg(
        long = "token-sts-host",
        env = "PODIAM_TOKEN_STS_HOSTS",
        value_delimiter = ','
    )]
    token_sts_hosts: Vec<String>,
    /// A cluster's aws-auth ConfigMap file (manifest or `data`), read again when it changes:
    /// `CLUSTER=PATH`, CLUSTER `NAME` or `ACCOUNT/NAME` (comma-separated or repeated).
    #[arg(long = "aws-auth", env = "PODIAM_AWS_AUTH", value_delimiter = ',')]
    aws_auth: Vec<String>,
    /// A cluster's aws-auth ConfigMap watched in the cluster: `CLUSTER=KUBECONFIG` (the
    /// kubeconfig's credentials read kube-system ConfigMaps; comma-separated or repeated).
    #[arg(
        long = "aws-auth-kubeconfig",
        env = "PODIAM_AWS_AUTH_KUBECONFIG",
        value_delimiter = ','
    )]
    aws_auth_kubeconfig: Vec<String>,
    /// Also write every audit event as one line of JSON to this file (appended, created 0600),
    /// or to standard output with `-`.
    #[arg(long, env = "PODIAM_AUDIT_LOG")]
    audit_log: Option<String>,
    /// Days audit events are kept in the store for `LookupEvents` (0: none are stored)
    /// [default: 90].
    #[arg(long, env = "PODIAM_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u32>,
    /// Withhold credentials whose audit event cannot be written (the caller gets 503 and
    /// retries), instead of dropping the event and counting it.
    #[arg(long, env = "PODIAM_AUDIT_REQUIRED")]
    audit_required: bool,
}

/// `serve`'s TOML file. Not `Debug`: `store` may carry a password.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    public_url: Option<String>,
    issuer_base_url: Option<String>,
    master_key_file: Option<PathBuf>,
    additional_accounts: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    dangerous_allow_http_issuer: Option<bool>,
    enable_direct_pod_identity: Option<bool>,
    token_sts_hosts: Option<Vec<String>>,
    aws_auth: Option<Vec<String>>,
    aws_auth_kubeconfig: Option<Vec<String>>,
    max_staleness: Option<u64>,
    audit_log: Option<String>,
    audit_retention_days: Option<u32>,
    audit_required: Option<bool>,
    /// Read before logging starts (see [`ServeArgs::file_log_format`]).
    log_format: Option<crate::LogFormat>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store.as_ref().map(|_| "..."))
            .field("config", &self.config)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("public_url", &self.public_url)
            .field("issuer_base_url", &self.issuer_base_url)
            .field("master_key_file", &self.master_key_file)
            .field("additional_accounts", &self.additional_accounts)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("max_staleness", &self.max_staleness)
            .field(
                "dangerous_allow_http_issuer",
                &self.dangerous_allow_http_issuer,
            )
            .field(
                "enable_direct_pod_identity",
                &self.enable_direct_pod_identity,
            )
            .field("token_sts_hosts", &self.token_sts_hosts)
            .field("aws_auth", &self.aws_auth)
            .field("aws_auth_kubeconfig", &self.aws_auth_kubeconfig)
            .field("audit_log", &self.audit_log)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("audit_required", &self.audit_required)
            .finish()
    }
}

impl ServeArgs {
    /// `log_format` of the `--config` file, read early: logging starts before `run`. A file that
    /// cannot be read is reported by `run`.
    pub(crate) fn file_log_format(&self) -> Option<crate::LogFormat> {
        let text = std::fs::read_to_string(self.config.as_ref()?).ok()?;
        toml::from_str::<FileConfig>(&text).ok()?.log_format
    }

    /// Fill every setting not given by flag or env from the `--config` file.
    fn merge_file(&mut self) -> anyhow::Result<()> {
        let Some(path) = &self.config else {
            return Ok(());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let f: FileConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        self.apply(f)
    }

    fn apply(&mut self, f: FileConfig) -> anyhow::Result<()> {
        let a = self;
        a.listen = a.listen.take().or(f.listen);
        a.data_dir = a.data_dir.take().or(f.data_dir);
        a.store = a.store.take().or(f.store);
        a.region = a.region.take().or(f.region);
        a.account_id = a.account_id.take().or(f.account_id);
        a.public_url = a.public_url.take().or(f.public_url);
        a.issuer_base_url = a.issuer_base_url.take().or(f.issuer_base_url);
        a.max_staleness = a.max_staleness.take().or(f.max_staleness);
        a.master_key_file = a.master_key_file.take().or(f.master_key_file);
        if a.additional_accounts.is_empty() {
            a.additional_accounts = f.additional_accounts.unwrap_or_default();
        }
        if a.token_sts_hosts.is_empty() {
            a.token_sts_hosts = f.token_sts_hosts.unwrap_or_default();
        }
        if a.aws_auth.is_empty() {
            a.aws_auth = f.aws_auth.unwrap_or_default();
        }
        if a.aws_auth_kubeconfig.is_empty() {
            a.aws_auth_kubeconfig = f.aws_auth_kubeconfig.unwrap_or_default();
        }
        if a.tls_cert.is_none() && a.tls_key.is_none() {
            a.tls_cert = f.tls_cert;
            a.tls_key = f.tls_key;
        }
        if a.tls_cert.is_some() != a.tls_key.is_some() {
            bail!("tls_cert and tls_key go together: set both (by flag, env or file) or neither");
        }
        a.audit_log = a.audit_log.take().or(f.audit_log);
        a.audit_retention_days = a.audit_retention_days.take().or(f.audit_retention_days);
        a.audit_required |= f.audit_required.unwrap_or(false);
        a.dangerous_allow_http_issuer |= f.dangerous_allow_http_issuer.unwrap_or(false);
        a.enable_direct_pod_identity |= f.enable_direct_pod_identity.unwrap_or(false);
        Ok(())
    }
}

pub async fn run(mut a: ServeArgs) -> anyhow::Result<()> {
    a.merge_file()?;
    let listen = a.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let data_dir = a.data_dir.unwrap_or_else(|| PathBuf::from("podiam-data"));
    let defaults = Config::default();
    let mut config = Config {
        region: a.region.unwrap_or(defaults.region),
        issuer_base_url: a.issuer_base_url.unwrap_or(defaults.issuer_base_url),
        dangerous_allow_http_issuer: a.dangerous_allow_http_issuer,
        max_staleness_secs: a.max_staleness.unwrap_or(defaults.max_staleness_secs),
        ..defaults
    };
    if config.dangerous_allow_http_issuer {
        tracing::warn!("DANGEROUS: http:// issuers are allowed; never use this in production");
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))?;
    let store = open_store(a.store.as_deref(), &data_dir).await?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(
            podiam_server::load_tls_config(cert, key).map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr()?;
    let public_url = a.public_url.unwrap_or_else(|| {
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            local.ip().to_string()
        };
        let host = if local.is_ipv6() && !local.ip().is_unspecified() {
            format!("[{host}]")
        } else {
            host
        };
        format!(
            "{}://{host}:{}",
            if tls.is_some() { "https" } else { "http" },
            local.port()
        )
    });
    config.token_sts_hosts = if a.token_sts_hosts.is_empty() {
        crate::awsenv::url_authority(&public_url)
            .into_iter()
            .collect()
    } else {
        a.token_sts_hosts.clone()
    };
    let region = config.region.clone();
    // Replicas starting together on an empty shared store race to create the first records
    // (session key, account): the loser sees a conflict, and tries again over what the winner
    // wrote.
    let mut attempt = 0;
    let control = loop {
        attempt += 1;
        let master = master_key(a.master_key_file.as_deref(), &data_dir)?;
        match Control::open(
            config.clone(),
            Arc::clone(&store),
            master,
            Arc::new(SystemClock),
        )
        .await
        {
            Ok(c) => break c,
            Err(e)
                if e.code == podiam_control::ErrorCode::ConcurrentModification && attempt < 5 =>
            {
                continue;
            }
            Err(e) => bail!(
                "starting services: {e} (see the log above; replicas sharing a store must use the same master key, --master-key-file)"
            ),
        }
    };
    let mut attempt = 0;
    let boot = loop {
        attempt += 1;
        match control.bootstrap(a.account_id.as_deref()).await {
            Ok(b) => break b,
            Err(e)
                if e.code == podiam_control::ErrorCode::ConcurrentModification && attempt < 5 =>
            {
                continue;
            }
            Err(e) => bail!("bootstrap: {e}"),
        }
    };
    // Before serving: a source that does not load fails start-up.
    let aws_auth = crate::awsauth::load(&control, &a.aws_auth)?;
    let files: Vec<_> = aws_auth
        .iter()
        .map(crate::awsauth::Watched::cluster)
        .collect();
    let aws_auth_kube = crate::awsauth_kube::connect(&a.aws_auth_kubeconfig, &files).await?;
    let cred_path = data_dir.join("credentials");
    if let Some(b) = &boot {
        write_private(
            &cred_path,
            &format!(
                "[podiam]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                b.access_key_id, b.secret_access_key
            ),
        )?;
    }
    for extra in &a.additional_accounts {
        if let Some(b) = control
            .create_account(extra)
            .await
            .map_err(|e| anyhow::anyhow!("account {extra}: {e}"))?
        {
            let mut text = std::fs::read_to_string(&cred_path).unwrap_or_default();
            text.push_str(&format!(
                "[podiam-{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                b.account, b.access_key_id, b.secret_access_key
            ));
            write_private(&cred_path, &text)?;
        }
    }
    let mut config_text =
        format!("[profile podiam]\nregion = {region}\nendpoint_url = {public_url}\n");
    for extra in &a.additional_accounts {
        config_text.push_str(&format!(
            "[profile podiam-{extra}]\nregion = {region}\nendpoint_url = {public_url}\n"
        ));
    }
    write_private(&data_dir.join("config"), &config_text)?;
    let dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir.clone());
    let accounts = control.accounts();
    let account = boot
        .as_ref()
        .map(|b| b.account.clone())
        .or_else(|| accounts.first().cloned())
        .unwrap_or_default();
    eprintln!(
        "podiam serving on {public_url} (account {account}, region {region}){}\n\nuse it with the AWS CLI or any SDK:\n  export AWS_CONFIG_FILE={d}/config AWS_SHARED_CREDENTIALS_FILE={d}/credentials AWS_PROFILE=podiam\n  aws sts get-caller-identity\n",
        if boot.is_some() {
            "; first start: account and root access key created"
        } else {
            ""
        },
        d = dir.display()
    );
    let options = podiam_server::Options {
        direct_pod_identity: a.enable_direct_pod_identity,
    };
    if options.direct_pod_identity {
        match tls {
            Some(_) => tracing::warn!(
                "direct-mode Pod Identity is on: any holder of a pod's token who reaches this server gets that pod's credentials"
            ),
            None => tracing::warn!(
                "direct-mode Pod Identity is on but this server has no --tls-cert: every such request will be refused"
            ),
        }
    }
    let transport = match tls {
        Some(tls) => podiam_server::Transport::Tls(tls),
        None => podiam_server::Transport::Plain,
    };
    let audit = podiam_control::audit::AuditConfig {
        retention_days: a.audit_retention_days.unwrap_or(90),
        log: match a.audit_log.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("-") => Some(podiam_control::audit::writer::AuditLog::Stdout),
            Some(p) => Some(podiam_control::audit::writer::AuditLog::File(
                PathBuf::from(p),
            )),
        },
        required: a.audit_required,
        ..podiam_control::audit::AuditConfig::default()
    };
    if audit.retention_days > 0 || audit.log.is_some() {
        control
            .start_audit(&audit)
            .context("opening the audit log")?;
    } else if audit.required {
        bail!(
            "--audit-required needs somewhere to write events: --audit-log, or a retention above 0"
        );
    }
    let control = Arc::new(control);
    crate::awsauth::watch(Arc::clone(&control), aws_auth);
    crate::awsauth_kube::watch(Arc::clone(&control), aws_auth_kube);
    podiam_server::serve(
        listener,
        Arc::clone(&control),
        options,
        transport,
        podiam_server::Timeouts::default(),
        shutdown_signal(),
    )
    .await?;
    // What is queued is written before exit; then the writer ends before the runtime does
    // (a store call of its that outlived the runtime would abort it).
    if let Some(a) = control.audit() {
        if !a.flush(std::time::Duration::from_secs(10)).await {
            tracing::warn!("audit events still queued at exit were not all written");
        }
        if !a.close(std::time::Duration::from_secs(5)).await {
            tracing::warn!("the audit writer did not stop in time");
        }
    }
    Ok(())
}

/// Open the store named by `--store` (default: SQLite in the data directory).
async fn open_store(
    spec: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn podiam_store::Store>> {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty());
    Ok(match spec {
        None => Arc::new(
            podiam_store::SqliteStore::open(&data_dir.join("podiam.db"))
                .await
                .context("opening the store")?,
        ),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            // The URL may carry a password: never print it.
            let store = podiam_store::PgStore::connect(url)
                .await
                .context("opening the PostgreSQL store")?;
            tracing::info!("store: PostgreSQL (shared: following other replicas' writes)");
            Arc::new(store)
        }
        Some(url) if url.starts_with("sqlite:") => {
            let rest = url.trim_start_matches("sqlite:");
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                bail!(
                    "--store {url}: no path (use sqlite:///absolute/path or sqlite://relative/path)"
                );
            }
            Arc::new(
                podiam_store::SqliteStore::open(Path::new(path))
                    .await
                    .with_context(|| format!("opening the store {path}"))?,
            )
        }
        Some(other) => {
            let scheme = other.split_once(':').map_or(other, |(s, _)| s);
            bail!("--store: unsupported store {scheme:?} (use postgres://... or sqlite:///path)")
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The master key: `PODIAM_MASTER_KEY` (base64), else the key file, else a new key written to
/// `<data-dir>/master.key` (0600).
fn master_key(file: Option<&Path>, data_dir: &Path) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::env::var("PODIAM_MASTER_KEY") {
        return MasterKey::from_base64(&text).context("PODIAM_MASTER_KEY");
    }
    let path = file.map_or_else(|| data_dir.join("master.key"), Path::to_path_buf);
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_base64(&text)
            .with_context(|| format!("master key in {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {
            let (key, text) = MasterKey::generate()?;
            write_private(&path, &format!("{text}\n"))?;
            Ok(key)
        }
        Err(e) => bail!("reading master key {}: {e}", path.display()),
    }
}

/// Write a file readable only by its owner (0600), atomically.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;

    #[test]
    fn serve_args_debug_hides_the_store_url() {
        let a = ServeArgs {
            store: Some("postgres://podiam:hunter2-secret@db:5432/podiam".into()),
            ..ServeArgs::default()
        };
        let shown = format!("{a:?} {a:#?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("store: Some(\"...\")"), "{shown}");
    }

    /// One value for every key of the file, in the file's syntax.
    const EVERY_KEY: &str = r#"
listen = "127.0.0.1:9999"
data_dir = "/var/lib/podiam-test"
store = "sqlite:///tmp/podiam-test.db"
region = "eu-west-3"
account_id = "111122223333"
public_url = "https://podiam.example"
issuer_base_url = "https://oidc.example"
master_key_file = "/etc/podiam/master.key"
additional_accounts = ["444455556666"]
token_sts_hosts = ["podiam.example"]
aws_auth = ["111122223333/prod=/etc/podiam/aws-auth.yaml"]
aws_auth_kubeconfig = ["dev=/etc/podiam/dev.kubeconfig"]
tls_cert = "/etc/podiam/tls.crt"
tls_key = "/etc/podiam/tls.key"
max_staleness = 42
audit_log = "/var/log/podiam/audit.jsonl"
audit_retention_days = 7
audit_required = true
dangerous_allow_http_issuer = true
enable_direct_pod_identity = true
log_format = "json"
"#;

    #[test]
    fn every_serve_setting_is_settable_from_the_file() {
        let dir = std::env::temp_dir().join(format!("podiam-serve-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("serve.toml");
        std::fs::write(&path, EVERY_KEY).unwrap();
        let mut a = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert_eq!(a.file_log_format(), Some(crate::LogFormat::Json));
        a.merge_file().unwrap();
        assert_eq!(a.listen.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(a.data_dir, Some(PathBuf::from("/var/lib/podiam-test")));
        assert_eq!(a.store.as_deref(), Some("sqlite:///tmp/podiam-test.db"));
        assert_eq!(a.region.as_deref(), Some("eu-west-3"));
        assert_eq!(a.account_id.as_deref(), Some("111122223333"));
        assert_eq!(a.public_url.as_deref(), Some("https://podiam.example"));
        assert_eq!(a.issuer_base_url.as_deref(), Some("https://oidc.example"));
        assert_eq!(
            a.master_key_file,
            Some(PathBuf::from("/etc/podiam/master.key"))
        );
        assert_eq!(a.additional_accounts, vec!["444455556666".to_owned()]);
        assert_eq!(a.token_sts_hosts, vec!["podiam.example".to_owned()]);
        assert_eq!(a.aws_auth, ["111122223333/prod=/etc/podiam/aws-auth.yaml"]);
        assert_eq!(a.aws_auth_kubeconfig, ["dev=/etc/podiam/dev.kubeconfig"]);
        assert_eq!(a.tls_cert, Some(PathBuf::from("/etc/podiam/tls.crt")));
        assert_eq!(a.tls_key, Some(PathBuf::from("/etc/podiam/tls.key")));
        assert_eq!(a.max_staleness, Some(42));
        assert_eq!(a.audit_log.as_deref(), Some("/var/log/podiam/audit.jsonl"));
        assert_eq!(a.audit_retention_days, Some(7));
        assert!(a.audit_required);
        assert!(a.dangerous_allow_http_issuer);
        assert!(a.enable_direct_pod_identity);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_serve_flag_has_a_file_key() {
        use clap::Args as _;
        let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
        let keys: Vec<&str> = EVERY_KEY
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .collect();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "config" {
                continue;
            }
            assert!(
                keys.contains(&id),
                "--{} has no key in serve's TOML file",
                arg.get_long().unwrap_or(id)
            );
        }
        // `log_format` is the global --log-format, also read from serve's file.
        assert!(keys.contains(&"log_format"));
    }

    #[test]
    fn flags_win_over_the_file_and_tls_goes_in_pairs() {
        let f: FileConfig =
            toml::from_str("region = \"eu-west-3\"\ntls_cert = \"/c\"\ntls_key = \"/k\"\n")
                .unwrap();
        let mut a = ServeArgs {
            region: Some("us-west-2".into()),
            ..ServeArgs::default()
        };
        a.apply(f).unwrap();
        assert_eq!(a.region.as_deref(), Some("us-west-2"));
        assert_eq!(a.tls_cert, Some(PathBuf::from("/c")));
        let f: FileConfig = toml::from_str("tls_cert = \"/c\"\n").unwrap();
        let err = ServeArgs::default().apply(f).unwrap_err();
        assert!(
            err.to_string().contains("tls_cert and tls_key go together"),
            "{err}"
        );
    }

    #[test]
    fn the_config_file_turns_direct_pod_identity_on() {
        let f: FileConfig = toml::from_str("enable_direct_pod_identity = true\n").unwrap();
        assert_eq!(f.enable_direct_pod_identity, Some(true));
    }
}
