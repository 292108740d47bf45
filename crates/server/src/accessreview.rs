//! The API server's authorization webhook: `POST /podiam/clusters/{name}/authorize` (or
//! `/podiam/clusters/{account}/{name}/authorize`) answers a `SubjectAccessReview`
//! (`authorization.k8s.io/v1` or `v1beta1`) with what the caller's access entry's access
//! policies grant (`podiam_control::access::Decision`): `allowed: true` with a reason naming
//! the entry and policy, or no opinion (`allowed: false`, never `denied`), so that the
//! cluster's RBAC decides everything podiam does not grant.
//!
//! The caller is not authenticated at the HTTP level: a review only ever grants to a user that
//! podiam's own TokenReview answer bound to an access entry of this cluster, so a forged review
//! learns nothing and gains nothing. A body that is not a SubjectAccessReview gets a 400.

use axum::http::StatusCode;
use axum::response::Response;
use podiam_control::access::{ClusterRoute, Decision, parse_access_review};

use crate::tokenreview::{cluster_route, json_ok, plain, review_route};
use crate::{App, Incoming};

fn route(path: &str) -> Option<ClusterRoute<'_>> {
    cluster_route(path, "/authorize")
}

/// Whether `path` is served here.
pub(crate) fn is_review_path(path: &str) -> bool {
    route(path).is_some()
}

pub(crate) fn handle(app: &App, inc: &Incoming) -> Response {
    let mut r = answer(app, inc);
    crate::metrics::mark(&mut r, "podiam", "SubjectAccessReview");
    r
}

fn answer(app: &App, inc: &Incoming) -> Response {
    let route = match review_route(inc, route) {
        Ok(r) => r,
        Err((status, message)) => return plain(status, message),
    };
    let (api_version, review) = match parse_access_review(&inc.body) {
        Ok(r) => r,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    let decision = app.control.review_access(route, &review);
    let status = match decision {
        Decision::Allowed(reason) => {
            tracing::info!(cluster = route.name, %reason, "access review: allowed");
            serde_json::json!({ "allowed": true, "reason": reason })
        }
        Decision::NoOpinion(reason) => {
            tracing::debug!(cluster = route.name, %reason, "access review: no opinion");
            serde_json::json!({ "allowed": false })
        }
    };
    let body = serde_json::json!({
        "apiVersion": api_version,
        "kind": "SubjectAccessReview",
        "status": status,
    });
    json_ok(&body)
}
