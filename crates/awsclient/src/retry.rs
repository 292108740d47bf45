//! Retries with exponential backoff and full-range jitter, for the errors the AWS SDKs retry:
//! throttling, 5xx answers and connection failures. Every loop is bounded by
//! [`RetryPolicy::max_attempts`]; nothing else is retried (a 4xx other than throttling is the
//! caller's mistake and would fail again).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

/// How many times to try, and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts at most, the first included (≥ 1; 0 is taken as 1).
    pub max_attempts: u32,
    /// The wait before the first retry; each further retry doubles it (up to 64×).
    pub base: Duration,
    /// The doubled wait never exceeds this.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The policy of podiam's API clients: 3 attempts, 100 ms doubling, at most 5 s.
    pub fn standard() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The wait before retry number `retry` (0 for the first): `base × 2^retry` (capped at
    /// 64× and at `max_backoff`) plus a random part up to as much again, so that clients that
    /// failed together do not retry together.
    pub fn delay(&self, retry: u32) -> Duration {
        let backoff = self
            .base
            .saturating_mul(1 << retry.min(6))
            .min(self.max_backoff);
        let nanos = u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX);
        backoff.saturating_add(Duration::from_nanos(rand::random_range(0..=nanos)))
    }
}

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Final: success, or an error not worth retrying.
    Done(Result<T, E>),
    /// A retryable error.
    Retry(E),
}

/// Runs `attempt` until it is done or `policy.max_attempts` attempts were made (the last
/// retryable error is then returned), sleeping [`RetryPolicy::delay`] between attempts.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, what: &str, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut made: u32 = 1;
    loop {
        match attempt().await {
            Attempt::Done(r) => return r,
            Attempt::Retry(e) if made >= policy.max_attempts => return Err(e),
            Attempt::Retry(e) => {
                tracing::debug!(error = %e, attempt = made, call = what, "retrying");
                tokio::time::sleep(policy.delay(made - 1)).await;
                made += 1;
            }
        }
    }
}

/// Error codes that mean "slow down" whatever the status (the SDKs' standard retry mode).
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// A complete HTTP answer.
#[derive(Clone)]
pub struct HttpResponse {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies may carry credentials: status and size only.
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl HttpResponse {
    /// The AWS error code of an error answer: `x-amzn-ErrorType`, else the JSON body's
    /// `__type`/`code`/`Code`, else the XML body's first `<Code>`; cleaned of namespaces and
    /// suffixes ([`clean_error_type`]).
    pub fn error_code(&self) -> Option<String> {
        let from_header = self
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let from_json = || {
            let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
            ["__type", "code", "Code"]
                .iter()
                .find_map(|n| json.get(*n).and_then(serde_json::Value::as_str))
                .map(str::to_owned)
        };
        let from_xml = || {
            let text = std::str::from_utf8(&self.body).ok()?;
            let start = text.find("<Code>")?.checked_add("<Code>".len())?;
            let rest = text.get(start..)?;
            rest.get(..rest.find("</Code>")?).map(str::to_owned)
        };
        from_header
            .or_else(from_json)
            .or_else(from_xml)
            .map(|t| clean_error_type(&t).to_owned())
            .filter(|t| !t.is_empty())
    }

    /// Whether the SDKs would retry this answer: a 5xx, a 429, or a throttling error code.
    pub fn is_retryable(&self) -> bool {
        self.status >= 500
            || self.status == 429
            || (self.status >= 400
                && self
                    .error_code()
                    .is_some_and(|c| THROTTLING_CODES.contains(&c.as_str())))
    }
}

/// Cleans a rest-json error type: drop anything after `:` and up to `#`.
pub fn clean_error_type(t: &str) -> &str {
    let t = t.split(':').next().unwrap_or(t);
    t.rsplit('#').next().unwrap_or(t).trim()
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The request could not be built (an invalid URL, no credentials); not retried.
    #[error("{0}")]
    Request(String),
    /// No complete answer: connection failure, timeout, an unreadable body.
    #[error("{message}")]
    Transport {
        /// What failed, with its causes.
        message: String,
        /// Whether it was a timeout.
        timeout: bool,
    },
}

/// The text of `e` and of its causes, `: `-separated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

enum Failure {
    Answer(HttpResponse),
    Error(SendError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Answer(r) => match r.error_code() {
                Some(code) => write!(f, "HTTP {} ({code})", r.status),
                None => write!(f, "HTTP {}", r.status),
            },
            Self::Error(e) => e.fmt(f),
        }
    }
}

/// Sends the request `build` makes (called again for each attempt, so that a signature is
/// fresh) under `policy`, retrying connection failures, timeouts, unreadable bodies and
/// retryable answers ([`HttpResponse::is_retryable`]). Any answer is returned as it is,
/// error statuses included (the last one when retries are exhausted); `Err` means no answer.
pub async fn send<F>(
    policy: &RetryPolicy,
    what: &str,
    mut build: F,
) -> Result<HttpResponse, SendError>
where
    F: FnMut() -> Result<reqwest::RequestBuilder, String>,
{
    let outcome = retry(policy, what, || {
        let request = build();
        async move {
            let rb = match request {
                Ok(rb) => rb,
                Err(message) => {
                    return Attempt::Done(Err(Failure::Error(SendError::Request(message))));
                }
            };
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let err = SendError::Transport {
                        message: error_chain(&e),
                        timeout: e.is_timeout(),
                    };
                    return if e.is_connect() || e.is_timeout() || e.is_request() {
                        Attempt::Retry(Failure::Error(err))
                    } else {
                        Attempt::Done(Err(Failure::Error(err)))
                    };
                }
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    return Attempt::Retry(Failure::Error(SendError::Transport {
                        message: format!("reading the answer: {}", error_chain(&e)),
                        timeout: e.is_timeout(),
                    }));
                }
            };
            let answer = HttpResponse {
                status,
                headers,
                body,
            };
            if answer.is_retryable() {
                Attempt::Retry(Failure::Answer(answer))
            } else {
                Attempt::Done(Ok(answer))
            }
        }
    })
    .await;
    match outcome {
        Ok(answer) | Err(Failure::Answer(answer)) => Ok(answer),
        Err(Failure::Error(e)) => Err(e),
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        }
    }

    /// A server on 127.0.0.1 answering each request with the next of `answers` (the last one
    /// once they run out), one request per connection; counts the requests.
    async fn server(answers: Vec<&'static str>) -> (String, Arc<AtomicU32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&count);
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let n = seen.fetch_add(1, Ordering::SeqCst) as usize;
                let answer = answers[n.min(answers.len() - 1)];
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(k) = sock.read(&mut buf).await else {
                        break;
                    };
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (url, count)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    const UNAVAILABLE: &str =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const INTERNAL: &str =
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const TOO_MANY: &str =
        "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const THROTTLED_HEADER: &str = "HTTP/1.1 400 Bad Request\r\nx-amzn-ErrorType: aws#ThrottlingException:x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const THROTTLED_XML: &str = "HTTP/1.1 400 Bad Request\r\ncontent-length: 81\r\nconnection: close\r\n\r\n<ErrorResponse><Error><Code>Throttling</Code></Error><RequestId/></ErrorResponse>";
    const INVALID: &str = "HTTP/1.1 400 Bad Request\r\ncontent-length: 34\r\nconnection: close\r\n\r\n{\"__type\":\"ValidationException\"}  ";
    const DENIED: &str = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    async fn run(
        policy: RetryPolicy,
        answers: Vec<&'static str>,
    ) -> (Result<HttpResponse, SendError>, u32) {
        let (url, count) = server(answers).await;
        let http = reqwest::Client::new();
        let r = send(&policy, "test", || Ok(http.get(&url))).await;
        (r, count.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn retryable_answers_are_retried_until_success() {
        for first in [
            UNAVAILABLE,
            INTERNAL,
            TOO_MANY,
            THROTTLED_HEADER,
            THROTTLED_XML,
        ] {
            let (r, n) = run(fast(3), vec![first, first, OK]).await;
            let r = r.unwrap();
            assert_eq!((r.status, n), (200, 3), "{first}");
        }
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_the_last_answer_returned() {
        let (r, n) = run(fast(3), vec![UNAVAILABLE]).await;
        assert_eq!((r.unwrap().status, n), (503, 3));
        let (r, n) = run(fast(1), vec![UNAVAILABLE, OK]).await;
        assert_eq!((r.unwrap().status, n), (503, 1));
        // 0 attempts still makes one.
        let (r, n) = run(fast(0), vec![TOO_MANY, OK]).await;
        assert_eq!((r.unwrap().status, n), (429, 1));
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        for answer in [INVALID, DENIED] {
            let (r, n) = run(fast(3), vec![answer, OK]).await;
            let r = r.unwrap();
            assert_eq!(n, 1, "{answer}");
            assert!(!r.is_retryable());
        }
        let (r, _) = run(fast(3), vec![INVALID]).await;
        assert_eq!(
            r.unwrap().error_code().as_deref(),
            Some("ValidationException")
        );
    }

    #[tokio::test]
    async fn connection_failures_are_retried_then_reported() {
        // A port nobody listens on any more.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let http = reqwest::Client::new();
        let tries = AtomicU32::new(0);
        let r = send(&fast(3), "test", || {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok(http.get(&url))
        })
        .await;
        assert!(
            matches!(r, Err(SendError::Transport { timeout: false, .. })),
            "{r:?}"
        );
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_not_retried() {
        let tries = AtomicU32::new(0);
        let r = send(&fast(3), "test", || {
            tries.fetch_add(1, Ordering::SeqCst);
            Err("no credentials".to_owned())
        })
        .await;
        assert_eq!(r.unwrap_err().to_string(), "no credentials");
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn generic_loop_is_bounded() {
        let tries = AtomicU32::new(0);
        let r: Result<(), String> = retry(&fast(4), "test", || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Attempt::Retry("busy".to_owned()) }
        })
        .await;
        assert_eq!(
            (r, tries.load(Ordering::SeqCst)),
            (Err("busy".to_owned()), 4)
        );
        let tries = AtomicU32::new(0);
        let r: Result<u8, String> = retry(&fast(4), "test", || {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Attempt::Retry("busy".to_owned())
                } else {
                    Attempt::Done(Ok(7))
                }
            }
        })
        .await;
        assert_eq!((r, tries.load(Ordering::SeqCst)), (Ok(7), 2));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..200 {
            for (retry, floor) in [
                (0, 25),
                (1, 50),
                (2, 100),
                (3, 200),
                (5, 800),
                (6, 1000),
                (30, 1000),
            ] {
                let d = p.delay(retry);
                let floor = Duration::from_millis(floor);
                assert!(d >= floor && d <= floor * 2, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn error_types() {
        assert_eq!(
            clean_error_type("AccessDeniedException:http://internal.amazon.com/x"),
            "AccessDeniedException"
        );
        assert_eq!(
            clean_error_type("aws.protocols#ThrottlingException"),
            "ThrottlingException"
        );
    }
}
