//! The inputs of the access-entry operations, the AWS-managed access policies, and the rules
//! entry values follow.

use std::collections::BTreeMap;

use super::template;
use crate::error::{AwsError, Result};
use crate::names;

/// Authentication mode: the `aws-auth` ConfigMap only; the access-entry API is off.
pub const MODE_CONFIG_MAP: &str = "CONFIG_MAP";
/// Authentication mode: access entries and the ConfigMap.
pub const MODE_API_AND_CONFIG_MAP: &str = "API_AND_CONFIG_MAP";
/// Authentication mode: access entries only.
pub const MODE_API: &str = "API";

/// The policy the cluster creator's bootstrap entry gets, at cluster scope.
pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

/// An AWS-managed access policy: `(name, ARN)`.
pub type AccessPolicy = (&'static str, &'static str);

/// The AWS-managed access policies podiam knows, in name order (ListAccessPolicies pages through
/// them in this order).
pub const ACCESS_POLICIES: &[AccessPolicy] = &[
    (
        "AmazonEKSAdminPolicy",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy",
    ),
    (
        "AmazonEKSAdminViewPolicy",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy",
    ),
    ("AmazonEKSClusterAdminPolicy", CLUSTER_ADMIN_POLICY),
    (
        "AmazonEKSEditPolicy",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
    ),
    (
        "AmazonEKSViewPolicy",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
    ),
    (
        "AmazonEMRJobPolicy",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEMRJobPolicy",
    ),
];

/// Namespaces one access scope may name. EKS publishes no number; this bounds what a single
/// entry can make every replica hold.
pub const NAMESPACES_PER_SCOPE: usize = 100;
/// Kubernetes groups one entry may carry (bounded for the same reason).
pub const GROUPS_PER_ENTRY: usize = 100;

/// CreateAccessEntry input.
#[derive(Clone, Debug, Default)]
pub struct CreateAccessEntry {
    /// principalArn.
    pub principal_arn: String,
    /// kubernetesGroups.
    pub kubernetes_groups: Vec<String>,
    /// username.
    pub username: Option<String>,
    /// type (`STANDARD` when absent).
    pub kind: Option<String>,
    /// tags.
    pub tags: BTreeMap<String, String>,
    /// clientRequestToken.
    pub client_request_token: Option<String>,
}

/// UpdateAccessEntry input: `None` leaves a field as it is; an empty group list removes the
/// groups.
#[derive(Clone, Debug, Default)]
pub struct UpdateAccessEntry {
    /// kubernetesGroups.
    pub kubernetes_groups: Option<Vec<String>>,
    /// username.
    pub username: Option<String>,
    /// clientRequestToken.
    pub client_request_token: Option<String>,
}

/// An access scope as requested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessScope {
    /// `cluster` or `namespace`.
    pub kind: String,
    /// The namespaces of a `namespace` scope.
    pub namespaces: Vec<String>,
}

/// Whether the principal of an entry is a role or a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrincipalKind {
    Role,
    User,
}

/// An IAM principal ARN, parsed.
#[derive(Clone, Debug)]
pub(super) struct Principal {
    pub kind: PrincipalKind,
    pub account: String,
    pub path: String,
    pub name: String,
    /// The name holds `*` or `?`: a pattern (see [`super::pattern`]); only the name may.
    pub pattern: bool,
}

/// Parse `principalArn`: an IAM role or user ARN, whose name may be a pattern (`*`, `?`; the
/// rules a pattern entry must also follow are in [`super::pattern`]). Session ARNs
/// (`arn:aws:sts::...`), roots, other resources and wildcards anywhere but in the name are
/// refused: an entry is for a lasting identity.
pub(super) fn principal(arn: &str) -> Result<Principal> {
    let bad = || {
        AwsError::invalid_parameter(format!(
            "The specified principalArn is invalid: {arn:?} is not the ARN of an IAM role or user."
        ))
    };
    let a = names::Arn::parse(arn).ok_or_else(bad)?;
    if a.service != "iam" || !a.region.is_empty() {
        return Err(bad());
    }
    let wildcard = || {
        AwsError::invalid_parameter(format!(
            "The specified principalArn is invalid: {arn:?} has a wildcard outside the role name; only the last part of a role ARN may be a pattern."
        ))
    };
    if a.account.contains(['*', '?']) {
        return Err(wildcard());
    }
    let account = names::AccountId::parse(a.account).ok_or_else(bad)?;
    let (kind, rest) = if let Some(r) = a.resource.strip_prefix("role/") {
        (PrincipalKind::Role, r)
    } else if let Some(r) = a.resource.strip_prefix("user/") {
        (PrincipalKind::User, r)
    } else {
        return Err(bad());
    };
    let (path, name) = match rest.rfind('/') {
        Some(i) => (
            format!("/{}", rest.get(..=i).unwrap_or_default()),
            rest.get(i + 1..).unwrap_or_default(),
        ),
        None => ("/".to_owned(), rest),
    };
    if path.contains(['*', '?']) {
        return Err(wildcard());
    }
    let name_ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-*?".contains(c));
    let path_ok = path.len() <= 512 && !path.contains("//");
    if !name_ok || !path_ok {
        return Err(bad());
    }
    Ok(Principal {
        kind,
        account: account.as_str().to_owned(),
        path,
        name: name.to_owned(),
        pattern: name.contains(['*', '?']),
    })
}

/// The entry type as stored: `STANDARD` when absent, or one of the node types podiam serves.
pub(super) fn entry_kind(kind: Option<&str>) -> Result<String> {
    match kind.unwrap_or("STANDARD") {
        k @ ("STANDARD" | "EC2_LINUX" | "EC2_WINDOWS" | "FARGATE_LINUX" | "HYBRID_LINUX") => {
            Ok(k.to_owned())
        }
        other => Err(AwsError::invalid_parameter(format!(
            "The specified type {other:?} is not supported: use STANDARD, EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX or HYBRID_LINUX."
        ))),
    }
}

/// The fixed username and groups of a node type; `None` for `STANDARD`.
pub(super) fn node_identity(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    match kind {
        "EC2_LINUX" => Some(("system:node:{{EC2PrivateDNSName}}", &["system:nodes"])),
        "EC2_WINDOWS" => Some((
            "system:node:{{EC2PrivateDNSName}}",
            &["system:nodes", "eks:kube-proxy-windows"],
        )),
        "FARGATE_LINUX" => Some((
            "system:node:{{SessionName}}",
            &["system:nodes", "system:node-proxier"],
        )),
        "HYBRID_LINUX" => Some(("system:node:{{SessionName}}", &["system:nodes"])),
        _ => None,
    }
}

/// The username EKS gives a `STANDARD` entry that names none: a role's sessions by session
/// name, a user by its ARN. A pattern entry's sessions by the name of the role that matched
/// (`{{RoleName}}`), so that two roles matching one pattern never share a username.
pub(super) fn default_username(p: &Principal, canonical_arn: &str) -> String {
    match p.kind {
        PrincipalKind::Role if p.pattern => format!(
            "arn:aws:sts::{}:assumed-role/{{{{RoleName}}}}/{{{{SessionName}}}}",
            p.account
        ),
        PrincipalKind::Role => format!(
            "arn:aws:sts::{}:assumed-role/{}/{{{{SessionName}}}}",
            p.account, p.name
        ),
        PrincipalKind::User => canonical_arn.to_owned(),
    }
}

/// Kubernetes group names: 1-253 printable characters each, at most [`GROUPS_PER_ENTRY`], none
/// in the `system:` namespace Kubernetes reserves for itself. Duplicates are dropped.
pub(super) fn groups(gs: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(gs.len());
    for g in gs {
        if g.is_empty() || g.chars().count() > 253 || g.chars().any(char::is_control) {
            return Err(AwsError::invalid_parameter(format!(
                "The kubernetes group {g:?} is invalid: group names are 1-253 printable characters."
            )));
        }
        if g.to_ascii_lowercase().starts_with("system:") {
            return Err(AwsError::invalid_parameter(format!(
                "The kubernetes group {g:?} is invalid: group names can't start with system:."
            )));
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
        if out.len() > GROUPS_PER_ENTRY {
            return Err(AwsError::invalid_parameter(format!(
                "kubernetesGroups can hold at most {GROUPS_PER_ENTRY} groups"
            )));
        }
    }
    Ok(out)
}

/// Prefixes a username may not start with: Kubernetes' and AWS's own identities. Checked on the
/// template when an entry is made or changed, and again on the rendered name of a `STANDARD`
/// entry (a session name or tag value at the start must not smuggle one in).
pub(super) const RESERVED_USERNAME_PREFIXES: [&str; 5] =
    ["system:", "eks:", "aws:", "amazon:", "iam:"];

/// The reserved prefix `u` starts with, compared without regard to ASCII case.
pub(super) fn reserved_prefix(u: &str) -> Option<&'static str> {
    let lower = u.to_ascii_lowercase();
    RESERVED_USERNAME_PREFIXES
        .iter()
        .find(|p| lower.starts_with(**p))
        .copied()
}

/// A chosen username: 1-512 printable characters, no reserved prefix, only the templates
/// [`template::CHOSEN`] lists, well formed.
pub(super) fn username(u: &str) -> Result<()> {
    let invalid =
        |why: &str| AwsError::invalid_parameter(format!("The username {u:?} is invalid: {why}."));
    if u.is_empty() || u.chars().count() > 512 || u.chars().any(char::is_control) {
        return Err(invalid("usernames are 1-512 printable characters"));
    }
    if let Some(p) = reserved_prefix(u) {
        return Err(invalid(&format!("usernames can't start with {p}")));
    }
    let parts = template::parse(u).map_err(|why| invalid(&why))?;
    // A session tag is chosen by whoever may tag the session: a username must not begin with
    // one, or that caller could name itself like any other user.
    if !template::delimited(&parts) {
        return Err(invalid(
            "{{SessionTag:KEY}} and {{RoleName}} must follow literal text ending in : or / (for example team:{{SessionTag:KEY}})",
        ));
    }
    if parts.contains(&template::Part::Ec2PrivateDnsName) {
        return Err(invalid(&format!(
            "{{{{EC2PrivateDNSName}}}} is for node types only: the templates are {}",
            template::CHOSEN
        )));
    }
    Ok(())
}

/// A known access policy ARN.
pub(super) fn policy_arn(arn: &str) -> Result<&'static str> {
    ACCESS_POLICIES
        .iter()
        .find(|(_, a)| *a == arn)
        .map(|(_, a)| *a)
        .ok_or_else(|| {
            AwsError::invalid_parameter(format!(
                "The specified policyArn {arn:?} is not an access policy; ListAccessPolicies lists them."
            ))
        })
}

/// A requested scope, checked: `cluster` with no namespaces, or `namespace` with 1 to
/// [`NAMESPACES_PER_SCOPE`] valid namespace names (duplicates dropped, sorted).
pub(super) fn scope(s: &AccessScope) -> Result<AccessScope> {
    match s.kind.as_str() {
        "cluster" if s.namespaces.is_empty() => Ok(AccessScope {
            kind: "cluster".into(),
            namespaces: vec![],
        }),
        "cluster" => Err(AwsError::invalid_parameter(
            "namespaces can only be specified with an access scope of type namespace",
        )),
        "namespace" => {
            if s.namespaces.is_empty() || s.namespaces.len() > NAMESPACES_PER_SCOPE {
                return Err(AwsError::invalid_parameter(format!(
                    "an access scope of type namespace needs 1-{NAMESPACES_PER_SCOPE} namespaces"
                )));
            }
            for n in &s.namespaces {
                namespace(n)?;
            }
            let mut ns = s.namespaces.clone();
            ns.sort();
            ns.dedup();
            Ok(AccessScope {
                kind: "namespace".into(),
                namespaces: ns,
            })
        }
        other => Err(AwsError::invalid_parameter(format!(
            "the access scope type {other:?} is invalid: use cluster or namespace"
        ))),
    }
}

/// A Kubernetes namespace name: an RFC 1123 label (1-63 of `[a-z0-9-]`, alphanumeric at both
/// ends).
fn namespace(n: &str) -> Result<()> {
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && n.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && n.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AwsError::invalid_parameter(format!(
            "the namespace {n:?} is not a valid Kubernetes namespace name"
        )))
    }
}

/// A random version-4 UUID, lowercase and hyphenated: the last segment of an entry's ARN.
pub(super) fn uuid() -> Result<String> {
    let mut b = crate::crypto::random_bytes::<16>().map_err(|_| AwsError::server_exception())?;
    if let Some(x) = b.get_mut(6) {
        *x = (*x & 0x0f) | 0x40;
    }
    if let Some(x) = b.get_mut(8) {
        *x = (*x & 0x3f) | 0x80;
    }
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    ))
}

/// `maxResults` of the list operations: 1-100, 100 when absent.
pub(super) fn page_size(max_results: Option<i64>) -> Result<usize> {
    match max_results {
        None => Ok(100),
        Some(n @ 1..=100) => Ok(usize::try_from(n).unwrap_or(100)),
        Some(_) => Err(AwsError::invalid_parameter(
            "maxResults must be between 1 and 100",
        )),
    }
}

/// A page token: the hex of the last key returned (opaque to clients, and refused unless it
/// decodes).
pub(super) fn encode_token(last: &str) -> String {
    hex::encode(last)
}

/// The key a page token names.
pub(super) fn decode_token(token: Option<&str>) -> Result<Option<String>> {
    let Some(t) = token else { return Ok(None) };
    let bad = || AwsError::invalid_parameter("nextToken is not valid");
    if t.is_empty() || t.len() > 4096 {
        return Err(bad());
    }
    let bytes = hex::decode(t).map_err(|_| bad())?;
    String::from_utf8(bytes).map(Some).map_err(|_| bad())
}
