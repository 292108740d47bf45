//! The HTTPS server: `POST /mutate`, `GET /healthz`, `GET /metrics`, one HTTP/1.1 connection
//! (keep-alive) per accepted TLS stream, through podiam's one accept loop (`podiam-tls`), which
//! bounds the handshake, each request head (and keep-alive idleness) and each body in time.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::Webhook;
pub use podiam_tls::{Timeouts, Transport};

/// The largest AdmissionReview accepted (the API server caps objects at ~3 MiB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// The routes.
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(webhook)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn mutate(State(w): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_json(&headers) {
        w.metrics().bad_request();
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Invalid Content-Type, expected `application/json`",
        )
            .into_response();
    }
    match w.admit(&body).await {
        Ok(r) => match serde_json::to_vec(&r.response) {
            Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        Err(reason) => {
            w.metrics().bad_request();
            tracing::debug!(%reason, "bad admission request");
            (StatusCode::BAD_REQUEST, reason).into_response()
        }
    }
}

/// 200 once the service accounts are loaded (the first list of a watch), 503 before.
async fn readyz(State(w): State<Arc<Webhook>>) -> Response {
    if w.is_ready() {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "service accounts not listed yet",
        )
            .into_response()
    }
}

async fn metrics(State(w): State<Arc<Webhook>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        w.metrics().render(),
    )
        .into_response()
}

/// Serves HTTPS on `listener` until `shutdown` resolves, with the default time limits.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_tls_with(listener, app, tls, Timeouts::default(), shutdown).await
}

/// Serves HTTPS on `listener` until `shutdown` resolves, with these time limits (handshake,
/// request head and keep-alive idleness, request body).
pub async fn serve_tls_with(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    podiam_tls::serve(
        listener,
        app,
        Transport::Tls(tls),
        timeouts,
        shutdown,
        |_, _| {},
    )
    .await
}

/// Serves plain HTTP (for a separate metrics port) until `shutdown` resolves, with the same
/// time limits as the HTTPS listener.
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    podiam_tls::serve(
        listener,
        app,
        Transport::Plain,
        Timeouts::default(),
        shutdown,
        |_, _| {},
    )
    .await
}
