//! The API server's authorization webhook: a SubjectAccessReview is allowed when an access
//! policy associated with the caller's access entry grants the request in its scope, with the
//! permissions of the cluster role the policy corresponds to ([`super::rbac`]). Anything else
//! is no opinion (never a denial), so the cluster's own RBAC still decides.
//!
//! A review names a user by what the API server's authenticators said: username, uid, groups
//! and extra. Any authenticator of the cluster (client certificates, service-account tokens,
//! another OIDC issuer, impersonation) can produce any username, so podiam grants nothing on a
//! name. It grants only to a user that its own TokenReview answer mapped through an access
//! entry: that answer carries, in `extra`, the entry's principal ([`ENTRY_EXTRA`]) and an HMAC
//! under a key derived from the master key ([`BINDING_EXTRA`]) over the cluster's account and
//! name, the entry's principal and random id, the username and the uid. A review whose binding
//! does not verify for this cluster and the entry as it stands now gets no opinion: a user
//! mapped by another authenticator, by another cluster's webhook, through an entry since
//! deleted (a re-created entry has a new id) or with any field changed. The permissions are
//! those of the entry's policies when the review is answered: disassociating a policy takes
//! effect on the next review the API server does not answer from its cache.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::params::MODE_CONFIG_MAP;
use super::rbac::{self, Request, RoleSet};
use crate::Control;
use crate::model;
use crate::state::access_entry_id;

/// The `extra` key naming the access entry (its principal ARN as stored) that mapped a user.
pub const ENTRY_EXTRA: &str = "podiam.io/access-entry";
/// The `extra` key holding the user's binding to the entry and cluster.
pub const BINDING_EXTRA: &str = "podiam.io/access-binding";
const BINDING_PURPOSE: &str = "podiam kubernetes access binding v1";
/// How long a binding is honoured after podiam's TokenReview answer wrote it. kube-apiserver
/// caches an answer for `--authentication-token-webhook-cache-ttl` (2 minutes by default) and
/// then asks again, which writes a new binding; 20 minutes leaves room for longer caches while
/// bounding what a copied binding is worth and how long a revoked session keeps what its
/// entry's policies grant.
pub const BINDING_MAX_AGE_SECS: i64 = 1200;
/// Clock skew between replicas tolerated on a binding's time.
const BINDING_MAX_FUTURE_SECS: i64 = 300;

/// What a SubjectAccessReview asks about whom.
#[derive(Clone, Debug, Default)]
pub struct AccessReview {
    /// `spec.user`.
    pub user: String,
    /// `spec.uid`.
    pub uid: String,
    /// `spec.extra`.
    pub extra: BTreeMap<String, Vec<String>>,
    /// The resource or non-resource attributes.
    pub request: Option<Request>,
}

const API_VERSIONS: [&str; 2] = ["authorization.k8s.io/v1", "authorization.k8s.io/v1beta1"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReview {
    api_version: String,
    kind: String,
    #[serde(default)]
    spec: WireSpec,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct WireSpec {
    resource_attributes: Option<WireResourceAttributes>,
    non_resource_attributes: Option<WireNonResourceAttributes>,
    user: String,
    /// v1beta1 names the groups `group`; podiam grants by entry, not by group, so they are read
    /// only to refuse a malformed review.
    #[serde(alias = "group")]
    groups: Vec<String>,
    uid: String,
    extra: BTreeMap<String, Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct WireResourceAttributes {
    namespace: String,
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    name: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct WireNonResourceAttributes {
    path: String,
    verb: String,
}

/// Decode a SubjectAccessReview body: its `apiVersion` (to answer in kind) and what it asks,
/// or the message of a 400. Fields the review does not carry are empty; a review naming both
/// or neither attribute kind asks nothing (no opinion).
pub fn parse_access_review(body: &[u8]) -> Result<(&'static str, AccessReview), &'static str> {
    let review: WireReview =
        serde_json::from_slice(body).map_err(|_| "the body is not a SubjectAccessReview")?;
    let api_version = API_VERSIONS
        .iter()
        .find(|v| **v == review.api_version)
        .ok_or("apiVersion must be authorization.k8s.io/v1 or v1beta1")?;
    if review.kind != "SubjectAccessReview" {
        return Err("kind must be SubjectAccessReview");
    }
    let spec = review.spec;
    let request = match (spec.resource_attributes, spec.non_resource_attributes) {
        (Some(r), None) => Some(Request::Resource {
            verb: r.verb,
            group: r.group,
            resource: r.resource,
            subresource: r.subresource,
            name: r.name,
            namespace: r.namespace,
        }),
        (None, Some(n)) => Some(Request::NonResource {
            verb: n.verb,
            path: n.path,
        }),
        _ => None,
    };
    Ok((
        api_version,
        AccessReview {
            user: spec.user,
            uid: spec.uid,
            extra: spec.extra,
            request,
        },
    ))
}

/// The answer to a review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An access policy grants the request; the reason names the entry, policy and scope.
    Allowed(String),
    /// podiam has no opinion; the reason is for the server log.
    NoOpinion(String),
}

/// The binding message: every field length-prefixed, so no two field lists collide.
fn binding_message(fields: &[&str]) -> Vec<u8> {
    let mut m = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for f in fields {
        m.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_be_bytes());
        m.extend_from_slice(f.as_bytes());
    }
    m
}

/// The account in an `aws-iam-authenticator:<account>:<id>` uid.
fn uid_parts(uid: &str) -> Option<(&str, &str)> {
    let rest = uid.strip_prefix("aws-iam-authenticator:")?;
    let (account, id) = rest.split_once(':')?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty())
        .then_some((account, id))
}

fn one<'a>(extra: &'a BTreeMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    match extra.get(key).map(Vec::as_slice) {
        Some([v]) => Some(v),
        _ => None,
    }
}

impl Control {
    /// The binding tag of a user mapped through `entry` of `cluster` in `account`.
    pub(super) fn access_binding(
        &self,
        account: &str,
        entry: &model::AccessEntry,
        username: &str,
        uid: &str,
    ) -> String {
        self.access_binding_at(account, entry, username, uid, self.now())
    }

    /// [`Self::access_binding`] as written at `issued` (unix seconds).
    pub(super) fn access_binding_at(
        &self,
        account: &str,
        entry: &model::AccessEntry,
        username: &str,
        uid: &str,
        issued: i64,
    ) -> String {
        let issued = issued.to_string();
        let tag = self.master.mac(
            BINDING_PURPOSE,
            &binding_message(&[
                account,
                &entry.cluster,
                &entry.principal_arn,
                &entry.uuid,
                &issued,
                username,
                uid,
            ]),
        );
        format!(
            "{issued}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Answer a SubjectAccessReview for the cluster of `route`.
    pub fn review_access(&self, route: super::ClusterRoute<'_>, review: &AccessReview) -> Decision {
        match self.access_grant(route, review) {
            Ok(reason) => Decision::Allowed(reason),
            Err(reason) => Decision::NoOpinion(reason),
        }
    }

    fn access_grant(
        &self,
        route: super::ClusterRoute<'_>,
        review: &AccessReview,
    ) -> Result<String, String> {
        let no = |s: &str| Err(s.to_owned());
        let Some(entry_principal) = one(&review.extra, ENTRY_EXTRA) else {
            return no("the user was not mapped by a podiam access entry");
        };
        let Some(binding) = one(&review.extra, BINDING_EXTRA) else {
            return no("the user carries no podiam access binding");
        };
        let Some((account, principal_id)) = uid_parts(&review.uid) else {
            return no("the user's uid is not an aws-iam-authenticator uid");
        };
        let Some(request) = &review.request else {
            return no("the review names neither resource nor non-resource attributes");
        };
        let (issued, tag) = binding.split_once('.').unwrap_or(("", binding));
        let issued_at = issued
            .parse::<i64>()
            .ok()
            .filter(|_| issued.bytes().all(|b| b.is_ascii_digit()));
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .unwrap_or_default();
        let (cluster, entry) = {
            let t = self.db.read();
            let cluster = super::authn::route_cluster(&t, route, account);
            let entry = cluster.as_ref().ok().and_then(|c| {
                t.access_entries
                    .get(&(
                        account.to_owned(),
                        access_entry_id(&c.name, entry_principal),
                    ))
                    .map(|e| Arc::clone(&e.value))
            });
            (cluster, entry)
        };
        // The tag is checked whether or not the cluster and entry exist (against an empty id
        // when not), so the time a forged review takes does not say which do.
        let message = binding_message(&[
            account,
            route.name,
            entry_principal,
            entry.as_ref().map_or("", |e| e.uuid.as_str()),
            issued,
            &review.user,
            &review.uid,
        ]);
        let verified = self.master.verify_mac(BINDING_PURPOSE, &message, &tag);
        let cluster = cluster.map_err(|e| e.reason().to_owned())?;
        if cluster.access_config.authentication_mode == MODE_CONFIG_MAP {
            return no("the cluster is in CONFIG_MAP mode: its access entries are off");
        }
        let Some(entry) = entry else {
            return no("the access entry that mapped the user is gone");
        };
        if entry
            .principal_id
            .as_deref()
            .is_some_and(|id| id != principal_id)
        {
            return no("the access entry was made for another principal of the same ARN");
        }
        if !verified {
            return no("the access binding does not verify for this cluster and entry");
        }
        let now = self.now();
        match issued_at {
            Some(t) if t <= now + BINDING_MAX_FUTURE_SECS && now - t <= BINDING_MAX_AGE_SECS => {}
            _ => return no("the access binding has expired: a new token review renews it"),
        }
        grant(RoleSet::builtin(), &entry, request)
            .ok_or_else(|| "no access policy of the entry grants the request".to_owned())
    }
}

/// What one associated access policy does with a request: whether the request is in the
/// policy's scope, and the first rule of its cluster role that allows it.
#[derive(Clone, Debug)]
pub struct PolicyVerdict<'a> {
    /// The policy's ARN.
    pub policy_arn: &'a str,
    /// The cluster role it corresponds to (`None`: podiam grants nothing for it).
    pub role: Option<&'static str>,
    /// `cluster scope` or `namespaces a,b`.
    pub scope: String,
    /// Whether the request falls in the scope (a namespace scope covers only requests in one of
    /// its namespaces, never cluster-wide requests or non-resource URLs).
    pub in_scope: bool,
    /// The rule that allows the request, when in scope.
    pub rule: Option<&'a rbac::Rule>,
}

impl PolicyVerdict<'_> {
    /// Whether this policy grants the request.
    pub fn grants(&self) -> bool {
        self.in_scope && self.rule.is_some()
    }
}

/// Each associated policy's verdict on `request`, in the entry's policy order.
pub fn policy_verdicts<'a>(
    set: &'a RoleSet,
    policies: &'a [model::AssociatedAccessPolicy],
    request: &Request,
) -> Vec<PolicyVerdict<'a>> {
    policies
        .iter()
        .map(|p| {
            let in_scope = match (p.scope.as_str(), request) {
                ("cluster", _) => true,
                ("namespace", Request::Resource { namespace, .. }) => {
                    !namespace.is_empty() && p.namespaces.iter().any(|n| n == namespace)
                }
                _ => false,
            };
            let rule = rbac::policy_rules(set, &p.policy_arn)
                .iter()
                .find(|r| r.allows(request));
            PolicyVerdict {
                policy_arn: &p.policy_arn,
                role: rbac::policy_role_name(&p.policy_arn),
                scope: if p.scope == "cluster" {
                    "cluster scope".to_owned()
                } else {
                    format!("namespaces {}", p.namespaces.join(","))
                },
                in_scope,
                rule,
            }
        })
        .collect()
}

/// The first associated policy of `entry` that allows `request` in its scope, as a reason.
pub(crate) fn grant(
    set: &RoleSet,
    entry: &model::AccessEntry,
    request: &Request,
) -> Option<String> {
    policy_verdicts(set, &entry.policies, request)
        .into_iter()
        .find(PolicyVerdict::grants)
        .map(|v| {
            let name = v.policy_arn.rsplit('/').next().unwrap_or(v.policy_arn);
            format!(
                "podiam: access entry {} of cluster {}: {name} ({})",
                entry.principal_arn, entry.cluster, v.scope
            )
        })
}
