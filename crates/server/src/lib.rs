//! podiam's HTTP layer: one listener, routed by protocol.
//!
//! - `POST /` (or `GET /?...`) with `Version=2011-06-15` → STS, `Version=2010-05-08` → IAM
//!   (AWS query protocol, XML responses).
//! - `/clusters...`, `/tags/...` → EKS (rest-json); `/clusters/{name}/assume-role-for-pod-identity`
//!   → EKS Auth (rest-json, signed as `eks-auth`).
//! - `/id/<ID>/.well-known/openid-configuration`, `/id/<ID>/keys` → hosted issuer documents.
//! - `/podiam/...` → podiam's own signed extensions (tokens, issuer rotation and export).
//! - `/podiam/clusters/{name}/authenticate` (and `/podiam/clusters/{account}/{name}/authenticate`)
//!   → the API server's TokenReview webhook for `aws eks get-token` tokens (unsigned: the token
//!   is the credential; see `tokenreview`).
//! - `/podiam/clusters/[{account}/]{name}/authorize` → the API server's SubjectAccessReview
//!   webhook: what the access entries' access policies grant (unsigned; see `accessreview`).
//! - `/podiam/pod-identity/{account}/{cluster}/v1/credentials` → direct-mode Pod Identity
//!   credentials (the node agent's endpoint, authenticated by the pod's token alone): only with
//!   [`Options::direct_pod_identity`], and only over TLS; otherwise 404 as for any unknown path.
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus text: see [`metrics`]).
//!
//! Every request runs in a `request` span carrying its `request_id` (the `x-amzn-RequestId`
//! answered), so each log line of the request names it.
//!
//! Handlers only decode, call a service, encode. Errors are rendered once per protocol.

mod accessreview;
mod audit;
mod cloudtrail_api;
mod container_api;
mod eks_api;
#[cfg(test)]
mod error_table_tests;
pub mod metrics;
mod query_api;
mod tls;
mod tokenreview;
pub mod wire;

pub use podiam_tls::{Timeouts, Transport};
pub use tls::{
    load_config as load_tls_config, load_config_checking_every as load_tls_config_checking_every,
};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use podiam_control::auth::{RequestMeta, SigningScope};
use podiam_control::{AwsError, Caller, Control, ErrorCode};
use tracing::Instrument as _;

pub use metrics::Metrics;

/// Entry points for the fuzz targets: parsers of untrusted input that have no public API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode a `LookupEvents` body; whether it decoded.
    pub fn lookup_events_body(body: &[u8]) -> bool {
        crate::cloudtrail_api::decode(body).is_ok()
    }

    /// An audit event's `requestParameters` for a request of `protocol` at `path`.
    pub fn audit_request_parameters(
        protocol: &str,
        path: &str,
        body: &[u8],
    ) -> Option<serde_json::Value> {
        let seen = crate::audit::Seen {
            method: axum::http::Method::POST,
            path: path.to_owned(),
            body: axum::body::Bytes::copy_from_slice(body),
            ..crate::audit::Seen::default()
        };
        crate::audit::request_parameters(protocol, &seen)
    }
}

/// Largest request body accepted (the biggest legitimate one is a 131072-character policy,
/// URL-encoded).
pub const MAX_BODY: usize = 1 << 20;

/// What the router serves beyond the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Serve direct-mode Pod Identity (`/podiam/pod-identity/...`, over TLS only). Off by
    /// default: it redeems a pod's token for that pod's credentials from wherever the caller is,
    /// with no node identity, so a leaked token is usable from anywhere that reaches serve.
    pub direct_pod_identity: bool,
}

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct App {
    /// The services.
    pub control: Arc<Control>,
    /// What is turned on.
    pub options: Options,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
}

/// The router of `podiam serve`. The first router over a `control` also receives its JWKS
/// fetch and store commit reports.
pub fn router(control: Arc<Control>, options: Options) -> Router {
    let metrics = Arc::new(Metrics::default());
    control.observe(Arc::clone(&metrics) as Arc<dyn podiam_control::observe::Observer>);
    Router::new().fallback(dispatch).with_state(App {
        control,
        options,
        metrics,
    })
}

/// A request as the handlers see it: raw pieces for SigV4, decoded pieces for the codecs.
pub(crate) struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub meta: RequestMeta,
}

impl Incoming {
    /// Authenticate with SigV4 for `service`; an unsigned request is refused.
    pub fn caller(&self, app: &App, service: &str) -> Result<Caller, AwsError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        let req = podiam_sigv4::Request {
            method: self.method.as_str(),
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        app.control
            .authenticate(&req, SigningScope { service }, &self.meta.audit)
            .and_then(|c| c.ok_or_else(AwsError::missing_authentication))
    }
}

async fn dispatch(State(app): State<App>, req: Request<Body>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", request_id = %request_id);
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let facts = if app.control.audit().is_some() {
        podiam_control::audit::FactsSlot::recording()
    } else {
        podiam_control::audit::FactsSlot::default()
    };
    let mut seen = None;
    let mut resp = answer(
        app.clone(),
        req,
        request_id.clone(),
        facts.clone(),
        &mut seen,
    )
    .instrument(span.clone())
    .await;
    let took = started.elapsed();
    let answered = resp
        .extensions()
        .get::<metrics::Answered>()
        .copied()
        .unwrap_or_default();
    let (protocol, action) = match answered.protocol {
        "" => route_label(&method, &path),
        p => (p, answered.action),
    };
    let code = answered.code.unwrap_or_else(|| status_label(resp.status()));
    app.metrics.request(protocol, action, code);
    if let Some(reason) = answered.denial {
        app.metrics.denied(reason);
    }
    if let (Some(f), Some(seen)) = (facts.facts(), seen)
        && let Some(r) = audit::record(
            &app,
            (protocol, action),
            resp.extensions().get::<metrics::AnsweredError>().cloned(),
            resp.status().is_success(),
            f,
            seen,
            &request_id,
        )
        .instrument(span.clone())
        .await
    {
        resp = r;
    }
    // Direct mode switched off answers 404 like any unknown path: not a credential call.
    let credential_path = action != "PodIdentityDirect" || app.options.direct_pod_identity;
    if let Some(p) = metrics::CREDENTIAL_PATHS
        .iter()
        .find(|p| **p == action)
        .filter(|_| credential_path)
    {
        app.metrics.credential(p, took);
    }
    span.in_scope(|| {
        tracing::debug!(
            protocol,
            action,
            code,
            took_ms = took.as_millis() as u64,
            "answered"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// The protocol and action of a request no handler marked.
fn route_label(method: &Method, path: &str) -> (&'static str, &'static str) {
    match path {
        "/healthz" | "/readyz" | "/metrics" => ("probe", "Probe"),
        p if p.starts_with("/id/") => ("oidc", "IssuerDocument"),
        p if p.starts_with("/podiam/pod-identity/") => ("pod-identity-direct", "PodIdentityDirect"),
        p if p.starts_with("/clusters")
            || p.starts_with("/tags/")
            || p.starts_with("/podiam/")
            || p == "/access-policies" =>
        {
            metrics::rest_action(method, p)
        }
        "/" => ("query", "other"),
        _ => ("other", "other"),
    }
}

/// The code label of an answer that carries no AWS error: its HTTP status.
fn status_label(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200 => "200",
        204 => "204",
        400 => "400",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        _ if s.is_success() => "2xx",
        _ if s.is_client_error() => "4xx",
        _ => "5xx",
    }
}

async fn answer(
    app: App,
    req: Request<Body>,
    request_id: String,
    facts: podiam_control::audit::FactsSlot,
    seen: &mut Option<audit::Seen>,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let secure_transport = req.extensions().get::<tls::SecureTransport>().is_some();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) if caused_by::<podiam_tls::BodyTimeout>(&e) => {
            let e = AwsError::new(
                ErrorCode::RequestTimeout,
                "the request body was not received in time",
            );
            return plain_error(&e, &request_id);
        }
        Err(e) if caused_by::<podiam_tls::BodyBudgetExceeded>(&e) => {
            // Too many bodies in flight at once: retryable, as SDKs retry 503.
            let e = AwsError::new(
                ErrorCode::ServiceUnavailable,
                "too many request bodies are being received; try again",
            );
            return plain_error(&e, &request_id);
        }
        Err(_) => {
            let e = AwsError::new(
                ErrorCode::RequestEntityTooLarge,
                format!("request body larger than {MAX_BODY} bytes"),
            );
            return plain_error(&e, &request_id);
        }
    };
    let inc = Incoming {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        meta: RequestMeta {
            source_ip: peer,
            secure_transport,
            request_id: request_id.clone(),
            audit: facts,
        },
    };
    if inc.meta.audit.facts().is_some() {
        *seen = Some(audit::Seen {
            method: inc.method.clone(),
            path: inc.path.clone(),
            query: inc.query.clone(),
            body: inc.body.clone(),
            user_agent: inc
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(1024).collect())
                .unwrap_or_default(),
            source_ip: peer,
        });
    }
    let path = inc.path.clone();
    match (inc.method.clone(), path.as_str()) {
        (_, "/healthz") => (StatusCode::OK, "ok").into_response(),
        (Method::GET, "/metrics") => (
            StatusCode::OK,
            [(
                "content-type",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            app.metrics.render(
                app.control.feed_lag(),
                app.control.too_stale().is_some(),
                app.control.audit(),
            ),
        )
            .into_response(),
        (_, "/readyz") => match app.control.too_stale() {
            None => (StatusCode::OK, "ready").into_response(),
            Some(age) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unreachable for {} s", age.as_secs()),
            )
                .into_response(),
        },
        (Method::POST, "/") if cloudtrail_api::is_cloudtrail(&inc.headers) => {
            cloudtrail_api::handle(&app, inc).await
        }
        (Method::POST | Method::GET, "/") => query_api::handle(&app, inc).await,
        (_, p) if p.starts_with("/id/") => issuer_document(&app, p),
        (_, p) if tokenreview::is_review_path(p) => tokenreview::handle(&app, &inc),
        (_, p) if accessreview::is_review_path(p) => accessreview::handle(&app, &inc),
        (_, p) if p.starts_with("/podiam/pod-identity/") && app.options.direct_pod_identity => {
            container_api::handle(&app, p, &inc.headers, &inc.meta).await
        }
        (_, p) if p.starts_with("/podiam/pod-identity/") => unknown_path(&path, &request_id),
        (_, p)
            if p.starts_with("/clusters")
                || p.starts_with("/tags/")
                || p.starts_with("/podiam/")
                || p == "/access-policies" =>
        {
            eks_api::handle(&app, inc).await
        }
        _ => unknown_path(&path, &request_id),
    }
}

fn issuer_document(app: &App, path: &str) -> Response {
    let rest = path.trim_start_matches("/id/");
    let (id, doc) = if let Some(id) = rest.strip_suffix("/.well-known/openid-configuration") {
        (id, app.control.discovery_document(id))
    } else if let Some(id) = rest.strip_suffix("/keys") {
        (id, app.control.jwks_document(id))
    } else {
        ("", None)
    };
    match doc {
        Some(d) if !id.contains('/') => (
            StatusCode::OK,
            [
                ("content-type", "application/json"),
                ("cache-control", "public, max-age=3600"),
            ],
            d,
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            r#"{"message":"not found"}"#,
        )
            .into_response(),
    }
}

fn unknown_path(path: &str, request_id: &str) -> Response {
    let e = AwsError::new(
        ErrorCode::UnknownOperation,
        format!("no operation at {path}"),
    );
    eks_api::error(&e, wire::restjson::Service::Eks, request_id)
}

/// Whether reading the body failed because the client did not send it in time.
fn caused_by<T: std::error::Error + 'static>(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<T>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// An error before the protocol is known (the body never arrived): the query protocol's shape.
fn plain_error(e: &AwsError, request_id: &str) -> Response {
    query_api::render_error(e, wire::xml::STS_NS, request_id)
}

/// Serves the router on `listener` (plain HTTP, or HTTPS: requests then see
/// `aws:SecureTransport = true`) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Arc<Control>,
    options: Options,
    transport: Transport,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let secure = matches!(transport, Transport::Tls(_));
    podiam_tls::serve(
        listener,
        router(control, options),
        transport,
        timeouts,
        shutdown,
        move |req, peer| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            if secure {
                req.extensions_mut().insert(tls::SecureTransport);
            }
        },
    )
    .await
}
