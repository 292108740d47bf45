//! The HTTP listeners: credentials (`/v1/credentials`), probe and metrics. Plain hyper HTTP/1
//! with keep-alive; the cache-hit path allocates only the response header map.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::{Answer, Retriever};
use crate::clusterkeys::{ClusterKeys, Verdict};
use crate::eksauth::UpstreamError;
use crate::inbound::{Class, Inbound};
use crate::metrics::Metrics;
use crate::token::{self, TokenError};
use podiam_awsclient::Clock;
use podiam_awsclient::CredentialsProvider;

/// The credentials path.
pub const CREDENTIALS_PATH: &str = "/v1/credentials";

type Resp = Response<Full<Bytes>>;

/// What the handlers share.
pub(crate) struct Shared {
    pub retriever: Arc<Retriever>,
    pub metrics: Arc<Metrics>,
    pub node: Arc<CredentialsProvider>,
    pub inbound: Inbound,
    /// The cluster's keys, when an issuer is configured.
    pub keys: Option<ClusterKeys>,
    pub clock: Clock,
    /// Accepted `Host` addresses (the bind addresses).
    pub hosts: Vec<IpAddr>,
    /// `[a b]`, for the 403 message.
    pub hosts_display: String,
    pub bound: AtomicBool,
}

impl Shared {
    pub fn ready(&self) -> bool {
        self.bound.load(Ordering::Relaxed) && self.node.is_resolved()
    }
}

/// Which server a listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    Credentials,
    Probe,
    Metrics,
}

static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

fn body_response(status: StatusCode, content_type: &HeaderValue, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, content_type.clone());
    r
}

/// Go's `http.Error`: text/plain, nosniff, the message plus a newline.
fn text(status: StatusCode, msg: &str) -> Resp {
    let mut body = String::with_capacity(msg.len() + 1);
    body.push_str(msg);
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut r = body_response(status, &TEXT_PLAIN, Bytes::from(body));
    r.headers_mut()
        .insert("x-content-type-options", NOSNIFF.clone());
    r
}

/// The IP of a `Host` value: port and `[]` stripped; a bare IPv6 address is accepted.
fn host_ip(host: &str) -> Option<IpAddr> {
    if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest.get(..end)?.parse().ok();
    }
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    host.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

fn stripped_host(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if host.parse::<IpAddr>().is_ok() {
        return host;
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// How long a token refusal is remembered (at most until the token expires): long enough to
/// turn a flood of one bad token into one check a minute, short enough that a refusal caused
/// by stale keys on either side heals quickly.
const REFUSAL_MEMORY_MS: i64 = 60_000;
/// How long a verified token without `exp` is remembered.
const VERIFIED_MEMORY_MS: i64 = 3_600_000;

fn too_many() -> Resp {
    text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
}

fn answer(a: Answer) -> Resp {
    match a {
        Answer::Credentials(body) => body_response(StatusCode::OK, &APPLICATION_JSON, body),
        Answer::Token(e) => token_error(&e),
        Answer::Upstream(e) => upstream_error(&e),
    }
}

fn token_error(e: &TokenError) -> Resp {
    text(StatusCode::BAD_REQUEST, &e.message())
}

fn upstream_error(e: &UpstreamError) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(status, &e.body())
}

/// Whether EKS Auth's refusal holds for the token's whole life (its signature or claims),
/// unlike `AccessDenied` or `ResourceNotFound`, which an association change can lift.
fn refuses_the_token(e: &UpstreamError) -> bool {
    matches!(e.code(), "InvalidTokenException" | "ExpiredTokenException")
}

/// A credentials request with `token`, admitted by what is known of it (see `inbound`).
async fn serve_token(shared: &Shared, token: &str) -> Resp {
    if token.is_empty() {
        return token_error(&TokenError::Empty);
    }
    let key = crate::cache::key_of(token);
    let now = shared.clock.now_ms();
    match shared.inbound.classify(&key, now) {
        Class::Refused(e) => return upstream_error(&e),
        Class::Verified(bucket) => {
            if !shared.inbound.admit_verified(bucket.as_deref()) {
                return too_many();
            }
            return answer(shared.retriever.get(token, key).await);
        }
        Class::Unverified => {}
    }
    // The real agent's parse and time checks cost no bucket: garbage drains nothing.
    let (times, claimed_pod) = match token::parse_with_pod(token) {
        Ok(p) => p,
        Err(e) => return token_error(&e),
    };
    if let Err(e) = times.validate(now) {
        return token_error(&e);
    }
    let memory = Memory {
        key,
        claimed_pod: claimed_pod.map(|p| p.key()),
        verified_until: times
            .exp_ms
            .unwrap_or_else(|| now.saturating_add(VERIFIED_MEMORY_MS)),
        refused_until: times
            .exp_ms
            .unwrap_or(i64::MAX)
            .min(now.saturating_add(REFUSAL_MEMORY_MS)),
    };
    // Cached, or being fetched for earlier requests (a pod's first requests racing): joining
    // costs no new work, so no charge; a flood of one new token cannot drain the shared
    // bucket while its first fetch is under way.
    if let Some(a) = shared.retriever.join(token, key).await {
        return memory.settle(shared, a);
    }
    // A token the agent can check is checked before it costs any shared budget: a forged one
    // is refused here for the price of a signature check, so a pod minting forgeries cannot
    // drain the bucket every other pod's new tokens share; a valid one is charged to its own
    // pod's bucket.
    let mut checked = false;
    if let Some(keys) = &shared.keys {
        match keys.verify(token, now).await {
            Verdict::Valid { pod, exp_ms } => {
                shared.inbound.remember_verified(
                    key,
                    pod.key(),
                    memory.verified_until.min(exp_ms),
                    now,
                );
                if let Class::Verified(bucket) = shared.inbound.classify(&key, now) {
                    if !shared.inbound.admit_verified(bucket.as_deref()) {
                        return too_many();
                    }
                    checked = true;
                }
            }
            Verdict::Invalid(e) => {
                tracing::info!(code = e.code(), "refused a service account token locally");
                shared.metrics.local_refusal();
                let e = Arc::new(e);
                shared
                    .inbound
                    .remember_refused(key, Arc::clone(&e), memory.refused_until, now);
                return upstream_error(&e);
            }
            Verdict::Unavailable => {}
        }
    }
    if !checked && !shared.inbound.admit_unverified() {
        return too_many();
    }
    memory.settle(shared, shared.retriever.get(token, key).await)
}

/// What to remember of an unverified token once its answer is known.
struct Memory {
    key: crate::inbound::TokenKey,
    /// The pod its (unverified) claims name.
    claimed_pod: Option<crate::inbound::PodKey>,
    verified_until: i64,
    refused_until: i64,
}

impl Memory {
    fn settle(&self, shared: &Shared, a: Answer) -> Resp {
        let now = shared.clock.now_ms();
        match &a {
            // EKS Auth accepted the token (now or for the cached entry): its claims are the
            // pod's. A locally verified token is already remembered; this only refreshes it.
            Answer::Credentials(_) => shared.inbound.remember_verified(
                self.key,
                self.claimed_pod.unwrap_or(self.key),
                self.verified_until,
                now,
            ),
            Answer::Upstream(e) if refuses_the_token(e) => {
                shared
                    .inbound
                    .remember_refused(self.key, Arc::clone(e), self.refused_until, now);
            }
            _ => {}
        }
        answer(a)
    }
}

async fn credentials(shared: &Shared, req: &Request<Incoming>) -> Resp {
    if req.uri().path() != CREDENTIALS_PATH {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))
        .unwrap_or("");
    if !host_ip(host).is_some_and(|ip| shared.hosts.contains(&ip)) {
        let msg = format!(
            "Access Denied. Called agent through invalid address, please use either {} address not {}",
            shared.hosts_display,
            stripped_host(host)
        );
        return text(StatusCode::FORBIDDEN, &msg);
    }
    let token = match req.headers().get(AUTHORIZATION) {
        None => "",
        Some(v) => match std::str::from_utf8(v.as_bytes()) {
            Ok(t) => t,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Service account token cannot be parsed: token is malformed: token is not valid UTF-8",
                );
            }
        },
    };
    serve_token(shared, token).await
}

fn probe(shared: &Shared, path: &str, metrics: bool) -> Resp {
    match path {
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" if shared.ready() => text(StatusCode::OK, "ok"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: node credentials not resolved",
        ),
        "/metrics" if metrics => {
            let body = shared
                .metrics
                .render(shared.retriever.cache_len(), shared.ready());
            let ct = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
            body_response(StatusCode::OK, &ct, Bytes::from(body))
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

async fn dispatch(
    site: Site,
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    Ok(match site {
        Site::Credentials => {
            let r = credentials(&shared, &req).await;
            shared.metrics.http_response(r.status().as_u16());
            r
        }
        Site::Probe => probe(&shared, req.uri().path(), false),
        Site::Metrics => probe(&shared, req.uri().path(), true),
    })
}

/// Connections one listener serves at once; past it new ones are closed at once, so the agent
/// never runs out of descriptors.
pub(crate) const MAX_CONNECTIONS: usize = 8192;
/// Connections one peer address holds at once: one pod cannot take the slots of the others
/// (pods on a node have addresses of their own; host-network processes share the node's).
pub(crate) const MAX_CONNECTIONS_PER_PEER: usize = 1024;

/// Open connections by peer address, released when a connection ends.
#[derive(Default)]
struct PeerSlots(parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

struct PeerSlot(Arc<PeerSlots>, std::net::IpAddr);

impl PeerSlots {
    fn take(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let mut m = self.0.lock();
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot(Arc::clone(self), ip))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = (self.0).0.lock();
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Accepts connections on `listener` until `shutdown` turns true, then lets open
/// connections finish for up to `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    site: Site,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    let mut conns = JoinSet::new();
    let conn_shutdown = shutdown.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let peers = Arc::new(PeerSlots::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let (Ok(slot), Some(peer_slot)) = (Arc::clone(&slots).try_acquire_owned(), peers.take(peer.ip())) else {
                    tracing::warn!(%peer, "connection limit reached; closing a new connection");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let builder = builder.clone();
                let mut shutdown = conn_shutdown.clone();
                conns.spawn(async move {
                    let _slots = (slot, peer_slot);
                    let svc = service_fn(move |req| dispatch(site, Arc::clone(&shared), req));
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = crate::stopped(&mut shutdown) => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = crate::stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
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
    fn hosts() {
        let v4: IpAddr = "169.254.170.23".parse().unwrap();
        let v6: IpAddr = "fd00:ec2::23".parse().unwrap();
        assert_eq!(host_ip("169.254.170.23"), Some(v4));
        assert_eq!(host_ip("169.254.170.23:80"), Some(v4));
        assert_eq!(host_ip("[fd00:ec2::23]:80"), Some(v6));
        assert_eq!(host_ip("[fd00:ec2::23]"), Some(v6));
        assert_eq!(host_ip("fd00:ec2::23"), Some(v6));
        assert_eq!(host_ip("evil.example:80"), None);
        assert_eq!(host_ip(""), None);
        assert_eq!(stripped_host("evil.example:80"), "evil.example");
        assert_eq!(stripped_host("[::1]:80"), "::1");
    }
}
