//! The API server's token webhook: `POST /podiam/clusters/{name}/authenticate` (or
//! `/podiam/clusters/{account}/{name}/authenticate`, which pins the cluster's account) answers a
//! `TokenReview` (`authentication.k8s.io/v1` or `v1beta1`) for an `aws eks get-token` token.
//!
//! The caller is not authenticated at the HTTP level; every byte is treated as hostile. A
//! review that decodes gets HTTP 200 either way: `status.authenticated: true` with the user, or
//! `false` with one generic error string — the reason goes to the log only, so the answer says
//! nothing about whether a principal, key, entry or cluster exists. A request that is not a
//! TokenReview at all gets a 400 (404 for another path, 405 for another method).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use podiam_control::access::{ClusterRoute, REFUSED};

use crate::{App, Incoming};

/// The largest review accepted: a token is at most 8 KiB; the rest is a small envelope.
const MAX_REVIEW_BODY: usize = 64 * 1024;

const API_VERSIONS: [&str; 2] = ["authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"];

/// The route's cluster, if `path` is a review path.
fn route(path: &str) -> Option<ClusterRoute<'_>> {
    cluster_route(path, "/authenticate")
}

/// The cluster of `/podiam/clusters/[ACCOUNT/]NAME<suffix>`.
pub(crate) fn cluster_route<'a>(path: &'a str, suffix: &str) -> Option<ClusterRoute<'a>> {
    let rest = path
        .strip_prefix("/podiam/clusters/")?
        .strip_suffix(suffix)?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [name] => Some(ClusterRoute {
            account: None,
            name,
        }),
        [account, name] => Some(ClusterRoute {
            account: Some(account),
            name,
        }),
        _ => None,
    }
}

/// Whether `path` is served here.
pub(crate) fn is_review_path(path: &str) -> bool {
    route(path).is_some()
}

pub(crate) fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

pub(crate) fn handle(app: &App, inc: &Incoming) -> Response {
    let mut r = answer(app, inc);
    crate::metrics::mark(&mut r, "podiam", "TokenReview");
    r
}

fn answer(app: &App, inc: &Incoming) -> Response {
    let route = match review_route(inc, route) {
        Ok(r) => r,
        Err((status, message)) => return plain(status, message),
    };
    let Ok(review) = serde_json::from_slice::<serde_json::Value>(&inc.body) else {
        return plain(StatusCode::BAD_REQUEST, "the body is not a TokenReview");
    };
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let Some(api_version) = API_VERSIONS
        .iter()
        .find(|v| field(&review, "apiVersion").as_deref() == Some(**v))
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "apiVersion must be authentication.k8s.io/v1 or v1beta1",
        );
    };
    if field(&review, "kind").as_deref() != Some("TokenReview") {
        return plain(StatusCode::BAD_REQUEST, "kind must be TokenReview");
    }
    let token = match review.get("spec").map(|s| s.get("token")) {
        None | Some(None) => String::new(),
        Some(Some(serde_json::Value::String(t))) => t.clone(),
        Some(Some(_)) => return plain(StatusCode::BAD_REQUEST, "spec.token must be a string"),
    };
    let status = match app.control.review_eks_token(route, &token) {
        Ok(u) => {
            inc.meta.audit.note(|f| {
                let arn = u
                    .extra
                    .get("arn")
                    .and_then(|a| a.first())
                    .cloned()
                    .unwrap_or_default();
                let account = arn.split(':').nth(4).unwrap_or_default().to_owned();
                let kind = if arn.contains(":assumed-role/") {
                    "AssumedRole"
                } else if arn.ends_with(":root") {
                    "Root"
                } else {
                    "IAMUser"
                };
                f.identity =
                    Some(podiam_control::audit::Identity::Principal { kind, arn, account });
                f.response
                    .insert("username".into(), serde_json::json!(u.username));
                f.response
                    .insert("groups".into(), serde_json::json!(u.groups));
            });
            tracing::info!(
                cluster = route.name,
                username = %u.username,
                uid = %u.uid,
                "token review: authenticated"
            );
            serde_json::json!({
                "authenticated": true,
                "user": {
                    "username": u.username,
                    "uid": u.uid,
                    "groups": u.groups,
                    "extra": u.extra,
                },
            })
        }
        Err(e) => {
            tracing::warn!(
                cluster = route.name,
                reason = e.reason(),
                "token review: refused"
            );
            inc.meta.audit.note(|f| {
                f.error = Some(("Unauthenticated", e.reason().to_owned()));
                if let Some(a) = route.account {
                    f.resource_account = Some(a.to_owned());
                }
            });
            serde_json::json!({ "authenticated": false, "error": REFUSED })
        }
    };
    let body = serde_json::json!({
        "apiVersion": api_version,
        "kind": "TokenReview",
        "status": status,
    });
    json_ok(&body)
}

/// The cluster of a review request, once it is a POST of at most [`MAX_REVIEW_BODY`] bytes to
/// a path `route` accepts; otherwise the status and message to answer (404, 405, 413).
pub(crate) fn review_route<'a>(
    inc: &'a Incoming,
    route: fn(&str) -> Option<ClusterRoute<'_>>,
) -> Result<ClusterRoute<'a>, (StatusCode, &'static str)> {
    let r = route(&inc.path).ok_or((StatusCode::NOT_FOUND, "not found"))?;
    if inc.method != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    if inc.body.len() > MAX_REVIEW_BODY {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "the review is too large"));
    }
    Ok(r)
}

/// A 200 answer holding the review `body`.
pub(crate) fn json_ok(body: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn review_paths() {
        let r = route("/podiam/clusters/c/authenticate").unwrap();
        assert_eq!((r.account, r.name), (None, "c"));
        let r = route("/podiam/clusters/111122223333/c/authenticate").unwrap();
        assert_eq!((r.account, r.name), (Some("111122223333"), "c"));
        for p in [
            "/podiam/clusters/authenticate",
            "/podiam/clusters/a/b/c/authenticate",
            "/podiam/clusters/c/token",
            "/podiam/clusters/c/authenticate/",
        ] {
            assert!(route(p).is_none(), "{p}");
        }
    }
}
