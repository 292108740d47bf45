//! Kubernetes RBAC rules, as the access policies grant them: the rule shape of a
//! `ClusterRole`, how a rule matches a request (as kube-apiserver's RBAC authorizer matches it),
//! and the cluster roles the AWS-managed access policies correspond to.
//!
//! `admin`, `edit` and `view` are aggregated roles: a cluster defines them as the union of the
//! rules of every `ClusterRole` labelled `rbac.authorization.k8s.io/aggregate-to-<role>`, and
//! `view` is itself labelled into `edit`, `edit` into `admin`. [`RoleSet::aggregate`] computes
//! them the same way from a list of cluster roles. The built-in set ([`RoleSet::builtin`]) is
//! the bootstrap roles of the Kubernetes version in `cluster_roles.json` (as its kube-apiserver
//! serves them; a test compares the two).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

/// A policy rule (`rbac.authorization.k8s.io/v1` `PolicyRule`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    /// Verbs, or `*`.
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group), or `*`.
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/log`, `*/scale`, `*`).
    pub resources: Vec<String>,
    /// Names the rule is limited to; empty means every name.
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/healthz`, `/api/*`, `*`).
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

/// What a request asks (a SubjectAccessReview's resource or non-resource attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A request on an API resource.
    Resource {
        /// The verb (`get`, `list`, `create`, ...).
        verb: String,
        /// The API group (`""` for core).
        group: String,
        /// The resource (`pods`).
        resource: String,
        /// The subresource (`log`), or empty.
        subresource: String,
        /// The object name, or empty.
        name: String,
        /// The namespace, or empty for a cluster-scoped resource or an all-namespaces request.
        namespace: String,
    },
    /// A request on a path outside the API resources (`/healthz`, `/version`).
    NonResource {
        /// The verb (the lower-case HTTP method name).
        verb: String,
        /// The path.
        path: String,
    },
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

impl Rule {
    /// Whether the rule allows `req`, as RBAC matches: verbs and API groups exactly or `*`;
    /// resources `*`, `resource`, `resource/subresource` or `*/subresource` (as upstream's
    /// `ResourceMatches`: `resource/*` matches only a subresource literally named `*`);
    /// resource names (when listed) exactly; non-resource URLs exactly or by a trailing `*`.
    pub fn allows(&self, req: &Request) -> bool {
        match req {
            Request::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                has(&self.verbs, verb)
                    && has(&self.api_groups, group)
                    && self.resource_matches(resource, subresource)
                    && (self.resource_names.is_empty()
                        || self.resource_names.iter().any(|n| n == name))
            }
            Request::NonResource { verb, path } => {
                has(&self.verbs, verb)
                    && self.non_resource_urls.iter().any(|u| {
                        u == "*"
                            || u == path
                            || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
        }
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            // Kubernetes knows `resource/subresource` and `*/subresource`; `resource/*` is
            // not a wildcard there, so it is none here either.
            match r.split_once('/') {
                Some((res, sub)) => sub == subresource && (res == resource || res == "*"),
                None => false,
            }
        })
    }
}

/// A `ClusterRole` as listed by the API (`kubectl get clusterroles -o json`), the fields
/// aggregation reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterRole {
    /// `metadata.name` (or `name` in podiam's own file).
    pub name: String,
    /// The `aggregate-to-*` labels (others are ignored).
    pub labels: BTreeMap<String, String>,
    /// `aggregationRule`.
    pub aggregation_rule: Option<AggregationRule>,
    /// `rules`.
    pub rules: Vec<Rule>,
}

/// A `ClusterRole`'s `aggregationRule`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AggregationRule {
    /// Label selectors; a role matching any one is aggregated.
    pub cluster_role_selectors: Vec<Selector>,
}

/// A label selector (`matchLabels` only: what the bootstrap roles use; a selector with
/// `matchExpressions` selects nothing, never more than it says).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Selector {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions` (not evaluated).
    pub match_expressions: Vec<serde_json::Value>,
}

impl Selector {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_expressions.is_empty()
            && !self.match_labels.is_empty()
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// The effective rules of cluster roles, by name.
#[derive(Clone, Debug, Default)]
pub struct RoleSet {
    roles: BTreeMap<String, Vec<Rule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleFile {
    cluster_roles: Vec<ClusterRole>,
}

impl RoleSet {
    /// The bootstrap cluster roles podiam is built with.
    pub fn builtin() -> &'static RoleSet {
        static SET: OnceLock<RoleSet> = OnceLock::new();
        SET.get_or_init(|| {
            let file: RoleFile = serde_json::from_str(include_str!("cluster_roles.json"))
                .unwrap_or(RoleFile {
                    cluster_roles: vec![],
                });
            RoleSet::aggregate(&file.cluster_roles)
        })
    }

    /// Each role's effective rules: its own, or for an aggregated role the union of the
    /// effective rules of every other role its selectors match (to a fixed point, so chains
    /// such as view → edit → admin resolve; a cycle contributes nothing more).
    pub fn aggregate(roles: &[ClusterRole]) -> RoleSet {
        let mut out = BTreeMap::new();
        for r in roles {
            let mut seen = BTreeSet::new();
            let mut rules = Vec::new();
            collect(roles, r, &mut seen, &mut rules);
            out.insert(r.name.clone(), rules);
        }
        RoleSet { roles: out }
    }

    /// The effective rules of a role (none for an unknown role).
    pub fn rules(&self, role: &str) -> &[Rule] {
        self.roles.get(role).map_or(&[], Vec::as_slice)
    }
}

fn collect<'a>(
    all: &'a [ClusterRole],
    r: &'a ClusterRole,
    seen: &mut BTreeSet<&'a str>,
    out: &mut Vec<Rule>,
) {
    if !seen.insert(&r.name) {
        return;
    }
    match &r.aggregation_rule {
        None => {
            for rule in &r.rules {
                if !out.contains(rule) {
                    out.push(rule.clone());
                }
            }
        }
        Some(agg) => {
            for other in all.iter().filter(|o| o.name != r.name) {
                if agg
                    .cluster_role_selectors
                    .iter()
                    .any(|s| s.matches(&other.labels))
                {
                    collect(all, other, seen, out);
                }
            }
        }
    }
}

/// The Kubernetes permissions of an AWS-managed access policy: the cluster role it corresponds
/// to (cluster-admin, admin, edit, view), or for `AmazonEKSAdminViewPolicy` reading every
/// resource, Secrets included. Access policies podiam does not model grant nothing.
pub fn policy_rules<'a>(set: &'a RoleSet, policy_arn: &str) -> &'a [Rule] {
    static ADMIN_VIEW: OnceLock<Vec<Rule>> = OnceLock::new();
    let name = policy_arn
        .strip_prefix("arn:aws:eks::aws:cluster-access-policy/")
        .unwrap_or_default();
    match name {
        "AmazonEKSClusterAdminPolicy" => set.rules("cluster-admin"),
        "AmazonEKSAdminPolicy" => set.rules("admin"),
        "AmazonEKSEditPolicy" => set.rules("edit"),
        "AmazonEKSViewPolicy" => set.rules("view"),
        "AmazonEKSAdminViewPolicy" => ADMIN_VIEW.get_or_init(|| {
            vec![Rule {
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..Rule::default()
            }]
        }),
        _ => &[],
    }
}

/// The cluster role an access policy corresponds to, for messages.
pub fn policy_role_name(policy_arn: &str) -> Option<&'static str> {
    match policy_arn.strip_prefix("arn:aws:eks::aws:cluster-access-policy/")? {
        "AmazonEKSClusterAdminPolicy" => Some("cluster-admin"),
        "AmazonEKSAdminPolicy" => Some("admin"),
        "AmazonEKSEditPolicy" => Some("edit"),
        "AmazonEKSViewPolicy" => Some("view"),
        "AmazonEKSAdminViewPolicy" => Some("get/list/watch on every resource"),
        _ => None,
    }
}
