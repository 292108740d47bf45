//! The standard AWS configuration, as far as podiam's tools need it: credentials from the
//! environment or the shared credentials file, region and endpoint from the environment or the
//! shared config file (`AWS_PROFILE`, default `default`).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

/// Resolved settings.
pub struct AwsEnv {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: String,
    pub endpoint: String,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv").field("access_key_id", &self.access_key_id).field("region", &self.region).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Parse an INI file into section → key → value.
fn ini(path: &PathBuf) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else { return out };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_owned();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone()).or_default().insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

impl AwsEnv {
    /// Resolve for `service` (its `AWS_ENDPOINT_URL_<SERVICE>` is honoured).
    pub fn load(service_env: &str) -> anyhow::Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let cfg_path = env("AWS_CONFIG_FILE").map_or_else(|| home().join(".aws/config"), PathBuf::from);
        let cred_path = env("AWS_SHARED_CREDENTIALS_FILE").map_or_else(|| home().join(".aws/credentials"), PathBuf::from);
        let cfg = ini(&cfg_path);
        let section = if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
        let pcfg = cfg.get(&section).cloned().unwrap_or_default();
        let creds = ini(&cred_path).get(&profile).cloned().unwrap_or_default();
        let (akid, secret, token) = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(a), Some(s)) => (a, s, env("AWS_SESSION_TOKEN")),
            _ => (
                creds.get("aws_access_key_id").cloned().ok_or_else(|| anyhow!("no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or profile {profile:?} in {}", cred_path.display()))?,
                creds.get("aws_secret_access_key").cloned().ok_or_else(|| anyhow!("profile {profile:?} has no aws_secret_access_key"))?,
                creds.get("aws_session_token").cloned(),
            ),
        };
        let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).or_else(|| pcfg.get("region").cloned()).unwrap_or_else(|| "us-east-1".into());
        let endpoint = env(&format!("AWS_ENDPOINT_URL_{service_env}"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| pcfg.get("endpoint_url").cloned())
            .ok_or_else(|| anyhow!("no podiam endpoint: set AWS_ENDPOINT_URL or endpoint_url in profile {profile:?}"))?;
        Ok(Self { access_key_id: akid, secret_access_key: secret, session_token: token, region, endpoint: endpoint.trim_end_matches('/').to_owned() })
    }

    /// Send a SigV4-signed JSON request to podiam and return the JSON answer.
    pub async fn call(&self, method: &str, path: &str, service: &str, body: Option<&serde_json::Value>) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.endpoint);
        let parsed = reqwest::Url::parse(&url).context("endpoint url")?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("endpoint {url} has no host"),
        };
        let body_bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let now = time::OffsetDateTime::now_utc();
        let amz_date = now
            .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
            .context("formatting time")?;
        let mut headers: Vec<(String, String)> = vec![("host".into(), host)];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let hdr_refs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let req = podiam_sigv4::Request { method, path: parsed.path(), query: parsed.query().unwrap_or(""), headers: &hdr_refs, body: body_bytes.as_bytes() };
        let signed = podiam_sigv4::sign(&req, &self.access_key_id, &self.secret_access_key, self.session_token.as_deref(), &self.region, service, &amz_date);
        let client = http_client()?;
        let mut rb = client.request(reqwest::Method::from_bytes(method.as_bytes())?, parsed.clone());
        for (k, v) in headers.iter().chain(signed.iter()) {
            if k != "host" {
                rb = rb.header(k, v);
            }
        }
        let resp = rb.body(body_bytes).send().await.with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            bail!("{status}: {}", v.get("message").and_then(|m| m.as_str()).unwrap_or(&text));
        }
        serde_json::from_str(&text).context("response is not JSON")
    }
}

/// The HTTP client of podiam's tools: the platform's trust store, or only the certificates of
/// `AWS_CA_BUNDLE` when it is set (as the AWS CLI does).
fn http_client() -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder();
    if let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).with_context(|| format!("reading AWS_CA_BUNDLE {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).context("parsing AWS_CA_BUNDLE")?;
        b = b.tls_certs_only(certs);
    }
    b.build().context("building the HTTP client")
}
