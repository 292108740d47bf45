//! The standard AWS configuration, as far as podiam's tools need it, through podiam-awsclient:
//! credentials from the environment, the shared files and profile, or web identity; the region
//! and the service's configured endpoint; the trust of `AWS_CA_BUNDLE` or the profile's
//! `ca_bundle`; plus one signed JSON call with the shared retries.

use anyhow::{Context, anyhow, bail};
use podiam_awsclient::retry::{self, RetryPolicy};
use podiam_awsclient::{Env, Service};

/// Resolved settings.
pub struct AwsEnv {
    pub creds: podiam_awsclient::AwsCredentials,
    pub region: String,
    pub endpoint: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv")
            .field("access_key_id", &self.creds.access_key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AwsEnv {
    /// Resolve for `service` (its `AWS_ENDPOINT_URL_<SERVICE>` and `services` subsection are honoured).
    pub async fn load(service: Service) -> anyhow::Result<Self> {
        let env = Env::from_process();
        let region = podiam_awsclient::resolve_region(None, &env);
        let endpoint = podiam_awsclient::configured_endpoint(&env, service).ok_or_else(|| {
            anyhow!(
                "no podiam endpoint: set AWS_ENDPOINT_URL or endpoint_url in profile {:?}",
                env.profile_name()
            )
        })?;
        let http = http_client(&env)?;
        let creds = podiam_awsclient::resolve_chain(
            &env,
            &region,
            &http,
            &podiam_awsclient::Clock::system(),
        )
        .await
        .map_err(|e| anyhow!("no credentials: {e}"))?
        .credentials;
        Ok(Self {
            creds,
            region,
            endpoint,
            http,
        })
    }

    /// Send a SigV4-signed JSON request to podiam and return the JSON answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        service: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        self.call_with_target(method, path, service, body, None)
            .await
    }

    /// [`Self::call`], with an `X-Amz-Target` header (AWS JSON 1.1 operations).
    pub async fn call_with_target(
        &self,
        method: &str,
        path: &str,
        service: &str,
        body: Option<&serde_json::Value>,
        target: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.endpoint);
        let parsed = reqwest::Url::parse(&url).context("endpoint url")?;
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let body = body.map(|b| b.to_string().into_bytes());
        let clock = podiam_awsclient::Clock::system();
        let resp = retry::send(&RetryPolicy::standard(), "podiam", || {
            podiam_awsclient::signed_request(
                &self.http,
                method.clone(),
                parsed.clone(),
                body.clone(),
                &self.creds,
                &self.region,
                service,
                clock.now_ms(),
            )
            .map(|rb| match target {
                Some(t) => rb.header("x-amz-target", t),
                None => rb,
            })
            .map_err(|e| format!("endpoint {url}: {e}"))
        })
        .await
        .with_context(|| format!("calling {url}"))?;
        let text = String::from_utf8_lossy(&resp.body);
        if !(200..300).contains(&resp.status) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let status = reqwest::StatusCode::from_u16(resp.status)
                .map_or_else(|_| resp.status.to_string(), |s| s.to_string());
            let name = v.get("__type").and_then(|m| m.as_str());
            bail!(
                "{status}: {}{}",
                name.map(|n| format!("{n}: ")).unwrap_or_default(),
                v.get("message").and_then(|m| m.as_str()).unwrap_or(&text)
            );
        }
        serde_json::from_str(&text).context("response is not JSON")
    }
}

/// The HTTP client of podiam's tools: the platform's trust store, or only the certificates of
/// `AWS_CA_BUNDLE` (else the profile's `ca_bundle`) when one is set, as the AWS CLI does.
fn http_client(env: &Env) -> anyhow::Result<reqwest::Client> {
    podiam_awsclient::http_client_builder(reqwest::Client::builder(), env)?
        .build()
        .context("building the HTTP client")
}

/// The `host[:port]` of a URL, as a client writes it in a presigned URL's `host`.
pub(crate) fn url_authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest.get(..end)?;
    (!host.is_empty() && !host.contains('@')).then(|| host.to_owned())
}

#[cfg(test)]
mod authority_tests {
    use super::url_authority;

    #[test]
    fn the_default_token_host_is_the_public_url_authority() {
        assert_eq!(
            url_authority("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            url_authority("https://podiam.example.com/").as_deref(),
            Some("podiam.example.com")
        );
        assert_eq!(url_authority("podiam").as_deref(), None);
        assert_eq!(url_authority("https://u@h/").as_deref(), None);
    }
}
