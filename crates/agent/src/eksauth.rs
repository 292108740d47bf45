//! The EKS Auth client: `AssumeRoleForPodIdentity`, SigV4-signed with the node credentials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

use podiam_awsclient::clock::{Clock, rfc3339};
use podiam_awsclient::retry::{Attempt, RetryPolicy, clean_error_type, error_chain};
use podiam_awsclient::{CredentialsProvider, host_header, signed_request};

use crate::metrics::Metrics;

/// Error codes after which a cached entry is evicted rather than retried.
pub const NON_RECOVERABLE: &[&str] = &[
    "AccessDeniedException",
    "InvalidTokenException",
    "ExpiredTokenException",
    "ResourceNotFoundException",
];

/// Pod credentials returned by EKS Auth, with their pre-rendered container-provider JSON.
#[derive(Clone)]
pub struct PodCredentials {
    /// The response body served to pods.
    pub body: Bytes,
    /// When the credentials expire, Unix seconds.
    pub expiration: i64,
    /// The access key id.
    pub access_key_id: String,
}

impl std::fmt::Debug for PodCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A failed `AssumeRoleForPodIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// EKS Auth answered with an error.
    Service {
        /// Its HTTP status.
        status: u16,
        /// The error code (`x-amzn-ErrorType`, cleaned).
        code: String,
        /// The error message.
        message: String,
        /// `x-amzn-RequestId`.
        request_id: String,
    },
    /// Refused by the agent itself before any call, as EKS Auth would refuse it: a token
    /// whose signature, issuer, audience or pod binding does not hold against the cluster's
    /// published keys. Served like an EKS Auth 400 (`fault: client`).
    Rejected {
        /// The EKS Auth error code (`InvalidTokenException`, `ExpiredTokenException`).
        code: &'static str,
        /// Why.
        message: String,
    },
    /// No answer (connection, timeout), an unreadable answer, or no node credentials.
    Local {
        /// A code naming the problem.
        code: &'static str,
        /// What happened.
        message: String,
    },
}

impl UpstreamError {
    /// The HTTP status served to the pod.
    pub fn status(&self) -> u16 {
        match self {
            Self::Service { status, .. } if (400..600).contains(status) => *status,
            Self::Rejected { .. } => 400,
            _ => 500,
        }
    }

    /// The error code.
    pub fn code(&self) -> &str {
        match self {
            Self::Service { code, .. } => code,
            Self::Rejected { code, .. } | Self::Local { code, .. } => code,
        }
    }

    /// Whether a cached entry survives this error.
    pub fn is_recoverable(&self) -> bool {
        !NON_RECOVERABLE.contains(&self.code())
    }

    /// The text/plain body served to the pod:
    /// `[<request-id>]: (<code>): <message>, fault: client|server\n`.
    pub fn body(&self) -> String {
        let (request_id, message) = match self {
            Self::Service {
                request_id,
                message,
                ..
            } => (request_id.as_str(), message.as_str()),
            Self::Rejected { message, .. } | Self::Local { message, .. } => ("", message.as_str()),
        };
        let fault = if self.status() < 500 {
            "client"
        } else {
            "server"
        };
        format!(
            "[{request_id}]: ({}): {message}, fault: {fault}\n",
            self.code()
        )
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.body().trim_end())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssumeResponse {
    assumed_role_user: AssumedRoleUser,
    credentials: WireCredentials,
}

#[derive(Deserialize)]
struct AssumedRoleUser {
    arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCredentials {
    session_token: String,
    secret_access_key: String,
    access_key_id: String,
    expiration: f64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    account_id: &'a str,
    expiration: &'a str,
}

/// Renders the container-provider JSON body from an EKS Auth response body.
pub(crate) fn render(body: &[u8]) -> Result<PodCredentials, UpstreamError> {
    let resp: AssumeResponse = serde_json::from_slice(body).map_err(|e| UpstreamError::Local {
        code: "InvalidResponse",
        message: format!("unparseable EKS Auth response: {e}"),
    })?;
    let c = &resp.credentials;
    let account_id = resp
        .assumed_role_user
        .arn
        .split(':')
        .nth(4)
        .unwrap_or_default();
    let expiration = c.expiration.floor() as i64;
    let rendered = serde_json::to_vec(&ContainerCredentials {
        access_key_id: &c.access_key_id,
        secret_access_key: &c.secret_access_key,
        token: &c.session_token,
        account_id,
        expiration: &rfc3339(expiration),
    })
    .map_err(|_| UpstreamError::Local {
        code: "InternalError",
        message: "Unable to serialize credentials".into(),
    })?;
    Ok(PodCredentials {
        body: Bytes::from(rendered),
        expiration,
        access_key_id: c.access_key_id.clone(),
    })
}

/// Settings of [`EksAuthClient`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Endpoint base URL, no trailing `/`.
    pub endpoint: String,
    /// SigV4 region.
    pub region: String,
    /// Cluster name (validated).
    pub cluster_name: String,
    /// Retries after a connection error, timeout or 5xx.
    pub retries: u32,
}

/// The EKS Auth client.
pub struct EksAuthClient {
    http: reqwest::Client,
    url: reqwest::Url,
    region: String,
    retry: RetryPolicy,
    node: Arc<CredentialsProvider>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for EksAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksAuthClient")
            .field("url", &self.url.as_str())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl EksAuthClient {
    /// A client for `settings`.
    pub fn new(
        settings: &ClientSettings,
        http: reqwest::Client,
        node: Arc<CredentialsProvider>,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let url = format!(
            "{}/clusters/{}/assume-role-for-pod-identity",
            settings.endpoint, settings.cluster_name
        );
        let url = reqwest::Url::parse(&url)
            .map_err(|e| format!("invalid EKS Auth endpoint {:?}: {e}", settings.endpoint))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "invalid EKS Auth endpoint {:?}: not http(s)",
                settings.endpoint
            ));
        }
        if host_header(&url).is_none() {
            return Err(format!(
                "invalid EKS Auth endpoint {:?}: no host",
                settings.endpoint
            ));
        }
        Ok(Self {
            http,
            url,
            region: settings.region.clone(),
            // 25 ms doubling (up to 64×), plus as much again at random.
            retry: RetryPolicy {
                max_attempts: settings.retries.saturating_add(1),
                base: Duration::from_millis(25),
                max_backoff: Duration::from_millis(25 * 64),
            },
            node,
            clock,
            metrics,
        })
    }

    /// The full URL called.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// `AssumeRoleForPodIdentity` for `token`, with retries on connection errors, timeouts
    /// and 5xx answers.
    pub async fn assume_role_for_pod_identity(
        &self,
        token: &str,
    ) -> Result<PodCredentials, UpstreamError> {
        let body = serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap_or_default();
        podiam_awsclient::retry(&self.retry, "EKS Auth", || self.attempt(&body)).await
    }

    async fn attempt(&self, body: &[u8]) -> Attempt<PodCredentials, UpstreamError> {
        let creds = match self.node.get().await {
            Ok(c) => c,
            Err(e) => {
                return Attempt::Done(Err(UpstreamError::Local {
                    code: "NodeCredentialsUnavailable",
                    message: e.to_string(),
                }));
            }
        };
        let rb = match signed_request(
            &self.http,
            reqwest::Method::POST,
            self.url.clone(),
            Some(body.to_vec()),
            &creds,
            &self.region,
            "eks-auth",
            self.clock.now_ms(),
        ) {
            Ok(rb) => rb,
            Err(message) => {
                return Attempt::Done(Err(UpstreamError::Local {
                    code: "InvalidEndpoint",
                    message,
                }));
            }
        };
        let started = Instant::now();
        let resp = rb.send().await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.metrics.upstream_call(started.elapsed(), false);
                let code = if e.is_timeout() {
                    "RequestTimeout"
                } else {
                    "RequestError"
                };
                // Connection failures and timeouts are retried; anything else is final.
                let err = UpstreamError::Local {
                    code,
                    message: format!("calling EKS Auth: {}", error_chain(&e)),
                };
                return if e.is_connect() || e.is_timeout() || e.is_request() {
                    Attempt::Retry(err)
                } else {
                    Attempt::Done(Err(err))
                };
            }
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("x-amzn-requestid").unwrap_or_default();
        let error_type = header("x-amzn-errortype");
        let text = resp.bytes().await;
        self.metrics
            .upstream_call(started.elapsed(), status == 200 && text.is_ok());
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry(UpstreamError::Local {
                    code: "RequestError",
                    message: format!("reading the EKS Auth response: {}", error_chain(&e)),
                });
            }
        };
        if (200..300).contains(&status) {
            return Attempt::Done(render(&text));
        }
        let err = service_error(status, error_type.as_deref(), &text, request_id);
        if status >= 500 {
            Attempt::Retry(err)
        } else {
            Attempt::Done(Err(err))
        }
    }
}

fn service_error(
    status: u16,
    error_type: Option<&str>,
    body: &[u8],
    request_id: String,
) -> UpstreamError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| json.get(*n).and_then(serde_json::Value::as_str))
            .map(str::to_owned)
    };
    let code = error_type
        .map(str::to_owned)
        .or_else(|| field(&["__type", "code", "Code"]))
        .map(|t| clean_error_type(&t).to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            match status {
                429 => "ThrottlingException",
                s if s >= 500 => "InternalServerException",
                _ => "UnknownError",
            }
            .to_owned()
        });
    let message = field(&["message", "Message"])
        .unwrap_or_else(|| format!("EKS Auth answered HTTP {status}"));
    UpstreamError::Service {
        status,
        code,
        message,
        request_id,
    }
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
    fn renders_the_container_shape() {
        let body = br#"{"subject":{"namespace":"default","serviceAccount":"sa"},"audience":"pods.eks.amazonaws.com",
          "podIdentityAssociation":{"associationArn":"arn:aws:eks:us-west-2:111122223333:podidentityassociation/c/a-1","associationId":"a-1"},
          "assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/r/eks-c-p-u","assumeRoleId":"AROA:x"},
          "credentials":{"sessionToken":"tok","secretAccessKey":"sec","accessKeyId":"ASIA1","expiration":1700862734}}"#;
        let c = render(body).unwrap();
        assert_eq!(
            std::str::from_utf8(&c.body).unwrap(),
            r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"sec","Token":"tok","AccountId":"111122223333","Expiration":"2023-11-24T21:52:14Z"}"#
        );
        assert!(!format!("{c:?}").contains("sec"));
    }

    #[test]
    fn error_types_and_bodies() {
        let e = service_error(
            400,
            Some("aws#AccessDeniedException:x"),
            br#"{"message":"no"}"#,
            "rid".into(),
        );
        assert_eq!(
            e.body(),
            "[rid]: (AccessDeniedException): no, fault: client\n"
        );
        assert!(!e.is_recoverable());
        let e = service_error(503, None, b"", String::new());
        assert_eq!(
            e.body(),
            "[]: (InternalServerException): EKS Auth answered HTTP 503, fault: server\n"
        );
        assert!(e.is_recoverable());
        assert_eq!(e.status(), 503);
    }
}
