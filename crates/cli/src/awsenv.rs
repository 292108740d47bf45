//! The standard AWS configuration, as far as podiam's tools need it: the node agent's
//! resolution (credentials from the environment, the shared files and profile, or web identity;
//! region and endpoint from the environment or the profile), plus one signed JSON call.

use anyhow::{anyhow, bail, Context};

/// Resolved settings.
pub struct AwsEnv {
    pub creds: podiam_awsclient::AwsCredentials,
    pub region: String,
    pub endpoint: String,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv").field("access_key_id", &self.creds.access_key_id).field("region", &self.region).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl AwsEnv {
    /// Resolve for `service` (its `AWS_ENDPOINT_URL_<SERVICE>` and `services` subsection are honoured).
    pub async fn load(service: podiam_awsclient::Service) -> anyhow::Result<Self> {
        let env = podiam_awsclient::Env::from_process();
        let region = podiam_awsclient::resolve_region(None, &env);
        let endpoint = podiam_awsclient::configured_endpoint(&env, service).ok_or_else(|| {
            anyhow!("no podiam endpoint: set AWS_ENDPOINT_URL or endpoint_url in profile {:?}", env.profile_name())
        })?;
        let creds = podiam_awsclient::resolve_chain(&env, &region, &http_client()?, &podiam_awsclient::Clock::system())
            .await
            .map_err(|e| anyhow!("no credentials: {e}"))?
            .credentials;
        Ok(Self {
            creds,
            region,
            endpoint,
        })
    }

    /// Send a SigV4-signed JSON request to podiam and return the JSON answer.
    pub async fn call(&self, method: &str, path: &str, service: &str, body: Option<&serde_json::Value>) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.endpoint);
        let parsed = reqwest::Url::parse(&url).context("endpoint url")?;
        let rb = podiam_awsclient::signed_request(
            &http_client()?,
            reqwest::Method::from_bytes(method.as_bytes())?,
            parsed,
            body.map(|b| b.to_string().into_bytes()),
            &self.creds,
            &self.region,
            service,
            podiam_awsclient::Clock::system().now_ms(),
        )
        .map_err(|e| anyhow!("endpoint {url}: {e}"))?;
        let resp = rb.send().await.with_context(|| format!("calling {url}"))?;
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
