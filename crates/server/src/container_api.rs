//! Direct mode of EKS Pod Identity: the container-credentials endpoint served by `podiam serve`
//! itself, for nodes that cannot run the agent (the Fargate gap).
//!
//! `GET /podiam/pod-identity/{account}/{cluster}/v1/credentials` with the pod's projected token
//! as the raw `Authorization` value answers exactly as the node agent does: the SDK container
//! provider's JSON on success, the agent's `text/plain` error line otherwise. The token is the
//! only credential, as with the agent, but with no node in between: whoever holds a pod's token
//! and reaches serve gets that pod's credentials. So the mode is off unless serve is started
//! with `--enable-direct-pod-identity` (the router answers 404 then), and a request that did not
//! arrive over TLS is refused before its token is read.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use podiam_control::{AwsError, Protocol};

use crate::App;

/// Handle a direct-mode credentials request for `path` (already known to start with the prefix).
pub(crate) async fn handle(
    app: &App,
    path: &str,
    headers: &HeaderMap,
    meta: &podiam_control::auth::RequestMeta,
) -> Response {
    let rid = meta.request_id.clone();
    let rest = path.trim_start_matches("/podiam/pod-identity/");
    let parts: Vec<&str> = rest.split('/').collect();
    let (account, cluster) = match parts.as_slice() {
        [account, cluster, "v1", "credentials"] => (*account, *cluster),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                [("content-type", "text/plain")],
                "404 page not found\n",
            )
                .into_response();
        }
    };
    if !meta.secure_transport {
        // The agent's own refusal of a request it must not serve (a wrong address) is a 403
        // of its own, outside EKS Auth's model.
        let body = format!(
            "[{rid}]: (AccessDeniedException): direct-mode Pod Identity is served over HTTPS only, fault: client\n"
        );
        return (
            StatusCode::FORBIDDEN,
            [("content-type", "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim();
    if token.is_empty() {
        return agent_error(
            &AwsError::invalid_parameter("Service account token cannot be empty"),
            &rid,
        );
    }
    match app
        .control
        .direct_pod_identity_credentials(account, meta, cluster, token)
        .await
    {
        Ok(r) => {
            let account_id = r
                .assumed
                .arn
                .split(':')
                .nth(4)
                .unwrap_or_default()
                .to_owned();
            let body = serde_json::json!({
                "AccessKeyId": r.assumed.credentials.access_key_id,
                "SecretAccessKey": r.assumed.credentials.secret_access_key,
                "Token": r.assumed.credentials.session_token,
                "AccountId": account_id,
                "Expiration": podiam_control::auth::iso8601(r.assumed.credentials.expiration),
            });
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => agent_error(&e, &rid),
    }
}

/// The node agent's error line: `[<request-id>]: (<Code>): <message>, fault: client|server`,
/// with the status and code EKS Auth answered (the agent relays them), so EKS Auth's names.
pub(crate) fn agent_error(e: &AwsError, rid: &str) -> Response {
    let wire = e.wire(Protocol::EksAuth);
    if !wire.is_sender() {
        tracing::error!(code = %e.code, request_id = rid, "internal error");
    }
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_REQUEST);
    let fault = if wire.is_sender() { "client" } else { "server" };
    let mut r = (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        format!("[{rid}]: ({}): {}, fault: {fault}\n", wire.name, e.message),
    )
        .into_response();
    crate::metrics::mark_error(&mut r, e);
    r
}
