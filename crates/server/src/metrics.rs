//! `podiam serve`'s metrics: one `prometheus-client` registry, rendered at `/metrics` as
//! Prometheus text. Label values come from fixed sets (protocol, action, AWS error code,
//! denial reason) or, for issuers, from at most [`MAX_ISSUERS`] distinct values, so a caller
//! cannot grow the exposition.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use axum::response::Response;
use parking_lot::{Mutex, RwLock};
use podiam_control::AwsError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Issuers with their own label value; the rest share `other`.
pub const MAX_ISSUERS: usize = 64;

/// Latency buckets (seconds) of requests and commits.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The credential paths timed by `podiam_credential_duration_seconds`.
pub const CREDENTIAL_PATHS: [&str; 4] = [
    "AssumeRoleWithWebIdentity",
    "AssumeRole",
    "AssumeRoleForPodIdentity",
    "PodIdentityDirect",
];

type RequestLabels = [(&'static str, &'static str); 3];
type OneLabel = [(&'static str, &'static str); 1];
type IssuerLabel = [(&'static str, String); 1];

/// serve's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// The counters of `requests` already created, by their labels: a request looks its counter
    /// up here (a fast hash of three short strings) rather than through the family's map.
    request_counters: RwLock<HashMap<RequestLabels, Counter, foldhash::fast::RandomState>>,
    credential: Family<OneLabel, Histogram>,
    /// The histogram of each of [`CREDENTIAL_PATHS`], in that order.
    credential_paths: Vec<Histogram>,
    denials: Family<OneLabel, Counter>,
    jwks_fetches: Family<IssuerLabel, Counter>,
    jwks_failures: Family<IssuerLabel, Counter>,
    issuers: Mutex<HashSet<String>>,
    feed_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    stale: Gauge<i64, AtomicI64>,
    commit: Histogram,
    aws_auth_reloads: Family<OneLabel, Counter>,
    audit: Family<OneLabel, Counter>,
    audit_suppressed: Family<OneLabel, Counter>,
    audit_queue: Gauge<i64, AtomicI64>,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let credential =
            Family::<OneLabel, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        let credential_paths = CREDENTIAL_PATHS
            .iter()
            .map(|p| credential.get_or_create(&[("path", p)]).clone())
            .collect();
        let denials = Family::<OneLabel, Counter>::default();
        let jwks_fetches = Family::<IssuerLabel, Counter>::default();
        let jwks_failures = Family::<IssuerLabel, Counter>::default();
        let feed_lag = Gauge::default();
        let stale = Gauge::default();
        let commit = histogram();
        let aws_auth_reloads = Family::<OneLabel, Counter>::default();
        let audit = Family::<OneLabel, Counter>::default();
        let audit_suppressed = Family::<OneLabel, Counter>::default();
        let audit_queue = Gauge::default();
        registry.register(
            "podiam_audit_events",
            "Audit events, by outcome: written, dropped (the queue was full), failed (the store or log refused the batch), suppressed (refusals past their allowance: unsigned requests together, each signed caller, all signed callers)",
            audit.clone(),
        );
        registry.register(
            "podiam_audit_suppressed",
            "Refusals not kept in the audit trail, by the allowance they found used up: anonymous (unsigned requests together), caller, account, all_signed",
            audit_suppressed.clone(),
        );
        registry.register(
            "podiam_audit_queue_events",
            "Audit events waiting to be written",
            audit_queue.clone(),
        );
        registry.register(
            "podiam_requests",
            "Requests, by protocol, action and AWS error code (or HTTP status)",
            requests.clone(),
        );
        registry.register(
            "podiam_credential_duration_seconds",
            "Time to answer a credential request, by path",
            credential.clone(),
        );
        registry.register(
            "podiam_access_denied",
            "AccessDenied answers, by the reason the policy evaluation gave",
            denials.clone(),
        );
        registry.register(
            "podiam_jwks_fetches",
            "Fetches of an external issuer's discovery document and keys",
            jwks_fetches.clone(),
        );
        registry.register(
            "podiam_jwks_fetch_failures",
            "Failed fetches of an external issuer's keys",
            jwks_failures.clone(),
        );
        registry.register(
            "podiam_feed_lag_seconds",
            "Time since this replica last read the shared store's change feed (0 for a store nobody else writes)",
            feed_lag.clone(),
        );
        registry.register("podiam_stale", "1 when this replica's view is older than --max-staleness (credential calls answer 503)", stale.clone());
        registry.register(
            "podiam_store_commit_duration_seconds",
            "Time the store took to commit a batch of changes",
            commit.clone(),
        );
        registry.register(
            "podiam_aws_auth_reloads",
            "Loads of an aws-auth ConfigMap file, by result (ok, or error: the last good version stays)",
            aws_auth_reloads.clone(),
        );
        Self {
            registry,
            requests,
            request_counters: RwLock::default(),
            credential,
            credential_paths,
            denials,
            jwks_fetches,
            jwks_failures,
            issuers: Mutex::new(HashSet::new()),
            feed_lag,
            stale,
            commit,
            aws_auth_reloads,
            audit,
            audit_suppressed,
            audit_queue,
        }
    }
}

impl Metrics {
    /// Count one answered request.
    pub fn request(&self, protocol: &'static str, action: &'static str, code: &'static str) {
        let labels = [("protocol", protocol), ("action", action), ("code", code)];
        if let Some(c) = self.request_counters.read().get(&labels) {
            c.inc();
            return;
        }
        let c = self.requests.get_or_create(&labels).clone();
        c.inc();
        self.request_counters.write().insert(labels, c);
    }

    /// Time one credential request (`path` from [`CREDENTIAL_PATHS`]).
    pub fn credential(&self, path: &'static str, took: Duration) {
        let seconds = took.as_secs_f64();
        match CREDENTIAL_PATHS.iter().position(|p| *p == path) {
            Some(i) => {
                if let Some(h) = self.credential_paths.get(i) {
                    h.observe(seconds);
                }
            }
            None => self
                .credential
                .get_or_create(&[("path", path)])
                .observe(seconds),
        }
    }

    /// Count one AccessDenied by its reason word.
    pub fn denied(&self, reason: &'static str) {
        self.denials.get_or_create(&[("reason", reason)]).inc();
    }

    /// The Prometheus text, with the replica gauges read now.
    pub fn render(
        &self,
        feed_lag: Option<Duration>,
        stale: bool,
        audit: Option<&podiam_control::audit::AuditSink>,
    ) -> String {
        self.feed_lag.set(feed_lag.map_or(0.0, |d| d.as_secs_f64()));
        self.stale.set(i64::from(stale));
        if let Some(a) = audit {
            let s = a.stats();
            for (outcome, n) in [
                ("written", &s.written),
                ("dropped", &s.dropped),
                ("failed", &s.failed),
                ("suppressed", &s.suppressed),
            ] {
                let c = self.audit.get_or_create(&[("outcome", outcome)]);
                let now = n.load(std::sync::atomic::Ordering::Relaxed);
                c.inc_by(now.saturating_sub(c.get()));
            }
            for (e, n) in podiam_control::audit::limit::Exhausted::ALL
                .iter()
                .zip(&s.suppressed_by)
            {
                let c = self
                    .audit_suppressed
                    .get_or_create(&[("allowance", e.label())]);
                let now = n.load(std::sync::atomic::Ordering::Relaxed);
                c.inc_by(now.saturating_sub(c.get()));
            }
            self.audit_queue
                .set(i64::try_from(a.queued()).unwrap_or(i64::MAX));
        }
        let mut o = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut o, &self.registry);
        o
    }

    fn issuer_label(&self, issuer: &str) -> String {
        let mut known = self.issuers.lock();
        if known.contains(issuer) {
            return issuer.to_owned();
        }
        if known.len() < MAX_ISSUERS {
            known.insert(issuer.to_owned());
            return issuer.to_owned();
        }
        "other".to_owned()
    }
}

// === impl Observer ===

impl podiam_control::observe::Observer for Metrics {
    fn jwks_fetch(&self, issuer: &str, ok: bool) {
        let label = [("issuer", self.issuer_label(issuer))];
        self.jwks_fetches.get_or_create(&label).inc();
        if !ok {
            self.jwks_failures.get_or_create(&label).inc();
        }
    }

    fn store_commit(&self, took: Duration) {
        self.commit.observe(took.as_secs_f64());
    }

    fn aws_auth_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.aws_auth_reloads
            .get_or_create(&[("result", result)])
            .inc();
    }
}

/// The error a response carries, set by the error renderers (for the audit event).
#[derive(Clone, Debug)]
pub(crate) struct AnsweredError {
    pub code: podiam_control::ErrorCode,
    pub message: String,
}

/// What a handler answered, for the request counter: set on the response by the error
/// renderers and the protocol handlers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Answered {
    pub protocol: &'static str,
    pub action: &'static str,
    pub code: Option<&'static str>,
    pub denial: Option<&'static str>,
}

/// Record on `resp` which protocol and action answered it.
pub(crate) fn mark(resp: &mut Response, protocol: &'static str, action: &'static str) {
    let a = resp.extensions_mut().get_or_insert_default::<Answered>();
    a.protocol = protocol;
    a.action = action;
}

/// Record on `resp` the error it carries.
pub(crate) fn mark_error(resp: &mut Response, e: &AwsError) {
    resp.extensions_mut().insert(AnsweredError {
        code: e.code,
        message: e.message.clone(),
    });
    let a = resp.extensions_mut().get_or_insert_default::<Answered>();
    a.code = Some(e.code.wire(podiam_control::error::Protocol::Query).name);
    if e.code == podiam_control::error::ErrorCode::AccessDenied {
        a.denial = Some(denial_reason(&e.message));
    }
}

/// The reason word of an AccessDenied message, from the clause that ends AWS's current form
/// ("... with an explicit deny in a permissions boundary", "... because no session policy
/// allows ..."). Principals and ARNs hold no spaces, so the clause cannot be forged by a name.
pub fn denial_reason(message: &str) -> &'static str {
    if message.contains(" with an explicit deny in ") {
        return "explicit_deny";
    }
    match message.rsplit_once(" because no ") {
        Some((_, tail)) if tail.starts_with("identity-based policy") => "no_identity_allow",
        Some((_, tail)) if tail.starts_with("permissions boundary") => "boundary",
        Some((_, tail)) if tail.starts_with("session policy") => "session",
        Some((_, tail)) if tail.starts_with("resource-based policy") => "resource",
        _ => "other",
    }
}

/// The fixed action label of a query-protocol `Action` (anything else is `other`).
pub(crate) fn query_action(action: &str) -> &'static str {
    QUERY_ACTIONS
        .iter()
        .find(|a| **a == action)
        .copied()
        .unwrap_or("other")
}

const QUERY_ACTIONS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "GetCallerIdentity",
    "GetSessionToken",
    "AddClientIDToOpenIDConnectProvider",
    "AttachRolePolicy",
    "AttachUserPolicy",
    "CreateAccessKey",
    "CreateOpenIDConnectProvider",
    "CreatePolicy",
    "CreatePolicyVersion",
    "CreateRole",
    "CreateUser",
    "DeleteAccessKey",
    "DeleteOpenIDConnectProvider",
    "DeletePolicy",
    "DeletePolicyVersion",
    "DeleteRole",
    "DeleteRolePolicy",
    "DeleteUser",
    "DeleteUserPolicy",
    "DetachRolePolicy",
    "DetachUserPolicy",
    "GetAccessKeyInfo",
    "GetOpenIDConnectProvider",
    "GetPolicy",
    "GetPolicyVersion",
    "GetRole",
    "GetRolePolicy",
    "GetUser",
    "GetUserPolicy",
    "ListAccessKeys",
    "ListAttachedRolePolicies",
    "ListAttachedUserPolicies",
    "ListOpenIDConnectProviderTags",
    "ListOpenIDConnectProviders",
    "ListPolicies",
    "ListPolicyVersions",
    "ListRolePolicies",
    "ListRoleTags",
    "ListRoles",
    "ListUserPolicies",
    "ListUsers",
    "PutRolePolicy",
    "PutUserPolicy",
    "RemoveClientIDFromOpenIDConnectProvider",
    "SetDefaultPolicyVersion",
    "SimulateCustomPolicy",
    "SimulatePrincipalPolicy",
    "TagOpenIDConnectProvider",
    "TagRole",
    "UntagOpenIDConnectProvider",
    "UntagRole",
    "UpdateAssumeRolePolicy",
    "UpdateOpenIDConnectProviderThumbprint",
    "UpdateRole",
    "UpdateRoleDescription",
];

/// The protocol and action of a rest-json request, from its route.
pub(crate) fn rest_action(method: &axum::http::Method, path: &str) -> (&'static str, &'static str) {
    use axum::http::Method as M;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let action = match (method, segs.as_slice()) {
        (&M::POST, ["clusters"]) => "CreateCluster",
        (&M::GET, ["clusters"]) => "ListClusters",
        (&M::GET, ["clusters", _]) => "DescribeCluster",
        (&M::DELETE, ["clusters", _]) => "DeleteCluster",
        (&M::POST, ["clusters", _, "pod-identity-associations"]) => "CreatePodIdentityAssociation",
        (&M::GET, ["clusters", _, "pod-identity-associations"]) => "ListPodIdentityAssociations",
        (&M::GET, ["clusters", _, "pod-identity-associations", _]) => {
            "DescribePodIdentityAssociation"
        }
        (&M::POST, ["clusters", _, "pod-identity-associations", _]) => {
            "UpdatePodIdentityAssociation"
        }
        (&M::DELETE, ["clusters", _, "pod-identity-associations", _]) => {
            "DeletePodIdentityAssociation"
        }
        (&M::POST, ["clusters", _, "assume-role-for-pod-identity"]) => {
            return ("eks-auth", "AssumeRoleForPodIdentity");
        }
        (&M::POST, ["clusters", _, "update-config"]) => "UpdateClusterConfig",
        (&M::POST, ["clusters", _, "access-entries"]) => "CreateAccessEntry",
        (&M::GET, ["clusters", _, "access-entries"]) => "ListAccessEntries",
        (&M::GET, ["clusters", _, "access-entries", _]) => "DescribeAccessEntry",
        (&M::POST, ["clusters", _, "access-entries", _]) => "UpdateAccessEntry",
        (&M::DELETE, ["clusters", _, "access-entries", _]) => "DeleteAccessEntry",
        (&M::POST, ["clusters", _, "access-entries", _, "access-policies"]) => {
            "AssociateAccessPolicy"
        }
        (&M::GET, ["clusters", _, "access-entries", _, "access-policies"]) => {
            "ListAssociatedAccessPolicies"
        }
        (&M::DELETE, ["clusters", _, "access-entries", _, "access-policies", _]) => {
            "DisassociateAccessPolicy"
        }
        (&M::GET, ["access-policies"]) => "ListAccessPolicies",
        (&M::POST, ["tags", _]) => "TagResource",
        (&M::DELETE, ["tags", _]) => "UntagResource",
        (&M::GET, ["tags", _]) => "ListTagsForResource",
        (_, ["podiam", ..]) => return ("podiam", podiam_action(method, &segs)),
        _ => "other",
    };
    ("eks", action)
}

fn podiam_action(method: &axum::http::Method, segs: &[&str]) -> &'static str {
    use axum::http::Method as M;
    match (method, segs) {
        (&M::GET, ["podiam", "clusters", _, "issuer"]) => "GetIssuer",
        (&M::POST, ["podiam", "clusters", _, "issuer", "rotate"]) => "RotateIssuerKey",
        (&M::POST, ["podiam", "clusters", _, "token"]) => "CreateToken",
        (&M::POST, ["podiam", "explain"]) => "Explain",
        (&M::POST, ["podiam", "clusters", _, "authenticate"])
        | (&M::POST, ["podiam", "clusters", _, _, "authenticate"]) => "TokenReview",
        (&M::POST, ["podiam", "roles", _, "revoke-sessions"]) => "RevokeSessions",
        (&M::GET, ["podiam", "session-keys"]) => "ListSessionKeys",
        (&M::POST, ["podiam", "session-keys", "rotate"]) => "RotateSessionKeys",
        (&M::POST, ["podiam", "session-keys", _, "retire"]) => "RetireSessionKey",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;
    use podiam_control::observe::Observer as _;

    #[test]
    fn denial_reasons_come_from_the_closing_clause() {
        let m = |why: &str| {
            format!(
                "User: arn:aws:iam::111122223333:user/a is not authorized to perform: iam:GetRole on resource: arn:aws:iam::111122223333:role/r {why}"
            )
        };
        assert_eq!(
            denial_reason(&m("with an explicit deny in an identity-based policy")),
            "explicit_deny"
        );
        assert_eq!(
            denial_reason(&m("with an explicit deny in a permissions boundary")),
            "explicit_deny"
        );
        assert_eq!(
            denial_reason(&m(
                "because no identity-based policy allows the iam:GetRole action"
            )),
            "no_identity_allow"
        );
        assert_eq!(
            denial_reason(&m(
                "because no permissions boundary allows the iam:GetRole action"
            )),
            "boundary"
        );
        assert_eq!(
            denial_reason(&m(
                "because no session policy allows the iam:GetRole action"
            )),
            "session"
        );
        assert_eq!(
            denial_reason(&m(
                "because no resource-based policy allows the iam:GetRole action"
            )),
            "resource"
        );
        assert_eq!(
            denial_reason("Not authorized to perform sts:AssumeRoleWithWebIdentity"),
            "other"
        );
    }

    #[test]
    fn issuers_beyond_the_cap_share_one_label() {
        let m = Metrics::default();
        for i in 0..MAX_ISSUERS + 10 {
            m.jwks_fetch(&format!("https://issuer-{i}.example"), i % 2 == 0);
        }
        let text = m.render(None, false, None);
        let fetch_lines = text
            .lines()
            .filter(|l| l.starts_with("podiam_jwks_fetches_total{"))
            .count();
        assert_eq!(fetch_lines, MAX_ISSUERS + 1, "{text}");
        assert!(
            text.contains("podiam_jwks_fetches_total{issuer=\"other\"} 10\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "podiam_jwks_fetch_failures_total{issuer=\"https://issuer-1.example\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn aws_auth_loads_count_by_result() {
        let m = Metrics::default();
        m.aws_auth_reload(true);
        m.aws_auth_reload(false);
        m.aws_auth_reload(false);
        let text = m.render(None, false, None);
        assert!(
            text.contains("podiam_aws_auth_reloads_total{result=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("podiam_aws_auth_reloads_total{result=\"error\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn actions_come_from_fixed_sets() {
        assert_eq!(query_action("AssumeRole"), "AssumeRole");
        assert_eq!(query_action("Anything-a-caller-sends"), "other");
        let post = axum::http::Method::POST;
        assert_eq!(
            rest_action(&post, "/clusters/c1/assume-role-for-pod-identity"),
            ("eks-auth", "AssumeRoleForPodIdentity")
        );
        assert_eq!(
            rest_action(&post, "/clusters/c1/pod-identity-associations"),
            ("eks", "CreatePodIdentityAssociation")
        );
        assert_eq!(rest_action(&post, "/podiam/explain"), ("podiam", "Explain"));
        assert_eq!(
            rest_action(&post, "/podiam/clusters/c1/authenticate"),
            ("podiam", "TokenReview")
        );
        assert_eq!(
            rest_action(&post, "/podiam/clusters/111122223333/c1/authenticate"),
            ("podiam", "TokenReview")
        );
        assert_eq!(rest_action(&post, "/clusters/a/b/c/d/e"), ("eks", "other"));
    }
}
