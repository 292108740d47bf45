//! The action table: every API action podiam serves, the resource it is authorized on and the
//! condition keys its request sets, following the AWS Service Authorization Reference for IAM,
//! STS, EKS and EKS Auth (and podiam's own `podiam:` extensions).
//!
//! Authorization goes through [`Control::authorize`], which takes an [`Action`] of this table and
//! a [`Target`]. A target is built only from a stored entity after lookup (its canonical ARN:
//! stored path and case, the installation's partition, its tags for `aws:ResourceTag/*`), from
//! the validated name of an entity about to be created, or as the wildcard resource of actions
//! that have none. No handler can hand the engine an ARN spelled by the caller.
//!
//! Outside the table: `sts:GetCallerIdentity`, which AWS never denies, and the installation-wide
//! session keys, which only the installation administrator's root manages.
//!
//! The request keys an action sets are declared here ([`Action::keys`]); [`Keys`] refuses, in
//! debug builds, a key the table does not declare, and the table test proves that each declared
//! key reaches the policy engine.

use crate::model;

/// The partition of every ARN podiam issues and accepts.
pub const PARTITION: &str = "aws";

/// The kind of resource an action is authorized on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// No resource type: the action is authorized on `*`.
    Wildcard,
    /// `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
    Role,
    /// `arn:aws:iam::ACCOUNT:user/PATH/NAME`.
    User,
    /// `arn:aws:iam::ACCOUNT:policy/PATH/NAME`.
    Policy,
    /// `arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`.
    OidcProvider,
    /// A role or a user (the principal of SimulatePrincipalPolicy).
    Principal,
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    Cluster,
    /// `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`.
    Association,
    /// `arn:aws:eks:REGION:ACCOUNT:access-entry/CLUSTER/role|user/ACCOUNT/NAME/UUID`.
    AccessEntry,
    /// A cluster, an association or an access entry (EKS tagging).
    EksResource,
}

macro_rules! actions {
    ($( $variant:ident => $name:literal, $kind:ident, [$($key:literal),* $(,)?]; )*) => {
        /// Every action podiam authorizes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action {
            $(
                #[doc = $name]
                $variant,
            )*
        }

        impl Action {
            /// The whole table.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The IAM action name (`service:Action`).
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }

            /// The resource type the action is authorized on.
            pub fn resource_kind(self) -> ResourceKind {
                match self { $(Action::$variant => ResourceKind::$kind),* }
            }

            /// The condition keys the request of this action sets, beyond the global ones
            /// every request carries and `aws:ResourceTag/*` of its resource. A key ending in
            /// `/` stands for every key with that prefix.
            pub fn keys(self) -> &'static [&'static str] {
                match self { $(Action::$variant => &[$($key),*]),* }
            }
        }
    };
}

const REQ_TAG: &str = "aws:RequestTag/";
const TAG_KEYS: &str = "aws:TagKeys";

actions! {
    // --- IAM: OpenID Connect providers
    IamCreateOpenIdConnectProvider => "iam:CreateOpenIDConnectProvider", OidcProvider, ["aws:RequestTag/", "aws:TagKeys"];
    IamGetOpenIdConnectProvider => "iam:GetOpenIDConnectProvider", OidcProvider, [];
    IamListOpenIdConnectProviders => "iam:ListOpenIDConnectProviders", Wildcard, [];
    IamDeleteOpenIdConnectProvider => "iam:DeleteOpenIDConnectProvider", OidcProvider, [];
    IamAddClientIdToOpenIdConnectProvider => "iam:AddClientIDToOpenIDConnectProvider", OidcProvider, [];
    IamRemoveClientIdFromOpenIdConnectProvider => "iam:RemoveClientIDFromOpenIDConnectProvider", OidcProvider, [];
    IamUpdateOpenIdConnectProviderThumbprint => "iam:UpdateOpenIDConnectProviderThumbprint", OidcProvider, [];
    IamTagOpenIdConnectProvider => "iam:TagOpenIDConnectProvider", OidcProvider, ["aws:RequestTag/", "aws:TagKeys"];
    IamUntagOpenIdConnectProvider => "iam:UntagOpenIDConnectProvider", OidcProvider, ["aws:TagKeys"];
    IamListOpenIdConnectProviderTags => "iam:ListOpenIDConnectProviderTags", OidcProvider, [];
    // --- IAM: roles
    IamCreateRole => "iam:CreateRole", Role, ["aws:RequestTag/", "aws:TagKeys", "iam:PermissionsBoundary"];
    IamGetRole => "iam:GetRole", Role, [];
    IamListRoles => "iam:ListRoles", Wildcard, [];
    IamUpdateRole => "iam:UpdateRole", Role, [];
    IamUpdateRoleDescription => "iam:UpdateRoleDescription", Role, [];
    IamPutRolePermissionsBoundary => "iam:PutRolePermissionsBoundary", Role, ["iam:PermissionsBoundary"];
    IamDeleteRolePermissionsBoundary => "iam:DeleteRolePermissionsBoundary", Role, ["iam:PermissionsBoundary"];
    IamUpdateAssumeRolePolicy => "iam:UpdateAssumeRolePolicy", Role, [];
    IamDeleteRole => "iam:DeleteRole", Role, [];
    IamTagRole => "iam:TagRole", Role, ["aws:RequestTag/", "aws:TagKeys"];
    IamUntagRole => "iam:UntagRole", Role, ["aws:TagKeys"];
    IamListRoleTags => "iam:ListRoleTags", Role, [];
    IamPutRolePolicy => "iam:PutRolePolicy", Role, ["iam:PermissionsBoundary"];
    IamGetRolePolicy => "iam:GetRolePolicy", Role, [];
    IamDeleteRolePolicy => "iam:DeleteRolePolicy", Role, ["iam:PermissionsBoundary"];
    IamListRolePolicies => "iam:ListRolePolicies", Role, [];
    IamAttachRolePolicy => "iam:AttachRolePolicy", Role, ["iam:PolicyARN", "iam:PermissionsBoundary"];
    IamDetachRolePolicy => "iam:DetachRolePolicy", Role, ["iam:PolicyARN", "iam:PermissionsBoundary"];
    IamListAttachedRolePolicies => "iam:ListAttachedRolePolicies", Role, [];
    IamPassRole => "iam:PassRole", Role, ["iam:PassedToService", "iam:AssociatedResourceArn"];
    // --- IAM: managed policies
    IamCreatePolicy => "iam:CreatePolicy", Policy, ["aws:RequestTag/", "aws:TagKeys"];
    IamGetPolicy => "iam:GetPolicy", Policy, [];
    IamListPolicies => "iam:ListPolicies", Wildcard, [];
    IamDeletePolicy => "iam:DeletePolicy", Policy, [];
    IamGetPolicyVersion => "iam:GetPolicyVersion", Policy, [];
    IamCreatePolicyVersion => "iam:CreatePolicyVersion", Policy, [];
    // --- IAM: users and access keys
    IamCreateUser => "iam:CreateUser", User, ["aws:RequestTag/", "aws:TagKeys", "iam:PermissionsBoundary"];
    IamPutUserPermissionsBoundary => "iam:PutUserPermissionsBoundary", User, ["iam:PermissionsBoundary"];
    IamDeleteUserPermissionsBoundary => "iam:DeleteUserPermissionsBoundary", User, ["iam:PermissionsBoundary"];
    IamGetUser => "iam:GetUser", User, [];
    IamListUsers => "iam:ListUsers", Wildcard, [];
    IamDeleteUser => "iam:DeleteUser", User, [];
    IamPutUserPolicy => "iam:PutUserPolicy", User, ["iam:PermissionsBoundary"];
    IamGetUserPolicy => "iam:GetUserPolicy", User, [];
    IamDeleteUserPolicy => "iam:DeleteUserPolicy", User, ["iam:PermissionsBoundary"];
    IamListUserPolicies => "iam:ListUserPolicies", User, [];
    IamAttachUserPolicy => "iam:AttachUserPolicy", User, ["iam:PolicyARN", "iam:PermissionsBoundary"];
    IamDetachUserPolicy => "iam:DetachUserPolicy", User, ["iam:PolicyARN", "iam:PermissionsBoundary"];
    IamListAttachedUserPolicies => "iam:ListAttachedUserPolicies", User, [];
    IamCreateAccessKey => "iam:CreateAccessKey", User, [];
    IamDeleteAccessKey => "iam:DeleteAccessKey", User, [];
    IamListAccessKeys => "iam:ListAccessKeys", User, [];
    // --- IAM: policy simulation
    IamSimulatePrincipalPolicy => "iam:SimulatePrincipalPolicy", Principal, [];
    IamSimulateCustomPolicy => "iam:SimulateCustomPolicy", Wildcard, [];
    // --- STS (authorized on the role, by the identity side and the role's trust policy). One
    // AssumeRole* request authorizes up to three actions with one request context, so the three
    // share their keys. AssumeRoleWithWebIdentity also sets `<issuer host/path>:sub|aud|azp|amr`.
    StsAssumeRole => "sts:AssumeRole", Role, ["aws:RequestTag/", "aws:TagKeys", "sts:TransitiveTagKeys", "sts:ExternalId", "sts:RoleSessionName", "sts:SourceIdentity", "aws:SourceAccount", "aws:SourceArn"];
    StsAssumeRoleWithWebIdentity => "sts:AssumeRoleWithWebIdentity", Role, ["aws:RequestTag/", "aws:TagKeys", "sts:TransitiveTagKeys", "sts:RoleSessionName", "aws:FederatedProvider"];
    StsTagSession => "sts:TagSession", Role, ["aws:RequestTag/", "aws:TagKeys", "sts:TransitiveTagKeys", "sts:ExternalId", "sts:RoleSessionName", "sts:SourceIdentity", "aws:FederatedProvider", "aws:SourceAccount", "aws:SourceArn"];
    StsSetSourceIdentity => "sts:SetSourceIdentity", Role, ["aws:RequestTag/", "aws:TagKeys", "sts:TransitiveTagKeys", "sts:ExternalId", "sts:RoleSessionName", "sts:SourceIdentity"];
    StsGetAccessKeyInfo => "sts:GetAccessKeyInfo", Wildcard, [];
    // --- EKS
    EksCreateCluster => "eks:CreateCluster", Cluster, ["aws:RequestTag/", "aws:TagKeys", "eks:authenticationMode", "eks:bootstrapClusterCreatorAdminPermissions"];
    EksDescribeCluster => "eks:DescribeCluster", Cluster, [];
    EksListClusters => "eks:ListClusters", Wildcard, [];
    EksDeleteCluster => "eks:DeleteCluster", Cluster, [];
    EksUpdateClusterConfig => "eks:UpdateClusterConfig", Cluster, ["eks:authenticationMode"];
    EksCreatePodIdentityAssociation => "eks:CreatePodIdentityAssociation", Cluster, ["aws:RequestTag/", "aws:TagKeys"];
    EksDescribePodIdentityAssociation => "eks:DescribePodIdentityAssociation", Association, [];
    EksListPodIdentityAssociations => "eks:ListPodIdentityAssociations", Cluster, [];
    EksUpdatePodIdentityAssociation => "eks:UpdatePodIdentityAssociation", Association, [];
    EksDeletePodIdentityAssociation => "eks:DeletePodIdentityAssociation", Association, [];
    EksCreateAccessEntry => "eks:CreateAccessEntry", Cluster, ["aws:RequestTag/", "aws:TagKeys", "eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksDescribeAccessEntry => "eks:DescribeAccessEntry", AccessEntry, ["eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksListAccessEntries => "eks:ListAccessEntries", Cluster, [];
    EksUpdateAccessEntry => "eks:UpdateAccessEntry", AccessEntry, ["eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksDeleteAccessEntry => "eks:DeleteAccessEntry", AccessEntry, ["eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksAssociateAccessPolicy => "eks:AssociateAccessPolicy", AccessEntry, ["eks:policyArn", "eks:accessScope", "eks:namespaces", "eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksDisassociateAccessPolicy => "eks:DisassociateAccessPolicy", AccessEntry, ["eks:policyArn", "eks:accessScope", "eks:namespaces", "eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksListAssociatedAccessPolicies => "eks:ListAssociatedAccessPolicies", AccessEntry, ["eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username"];
    EksListAccessPolicies => "eks:ListAccessPolicies", Wildcard, [];
    EksListTagsForResource => "eks:ListTagsForResource", EksResource, [];
    EksTagResource => "eks:TagResource", EksResource, ["aws:RequestTag/", "aws:TagKeys"];
    EksUntagResource => "eks:UntagResource", EksResource, ["aws:TagKeys"];
    // --- EKS Auth
    EksAuthAssumeRoleForPodIdentity => "eks-auth:AssumeRoleForPodIdentity", Cluster, [];
    // --- CloudTrail
    CloudTrailLookupEvents => "cloudtrail:LookupEvents", Wildcard, [];
    // --- podiam's extensions
    PodiamMintServiceAccountToken => "podiam:MintServiceAccountToken", Cluster, ["podiam:Namespace", "podiam:ServiceAccount", "podiam:Audience"];
    PodiamRotateIssuerKey => "podiam:RotateIssuerKey", Cluster, [];
    PodiamExportIssuerKey => "podiam:ExportIssuerKey", Cluster, [];
    PodiamManageAccessEntryPattern => "podiam:ManageAccessEntryPattern", Cluster, ["aws:RequestTag/", "aws:TagKeys", "eks:principalArn", "eks:accessEntryType", "eks:kubernetesGroups", "eks:username", "eks:policyArn", "eks:accessScope", "eks:namespaces"];
}

impl Action {
    /// Whether the table declares `key` for this action (case-insensitively; prefixes ending in
    /// `/` cover every key below them).
    pub fn declares(self, key: &str) -> bool {
        let k = podiam_policy::fold_key(key);
        self.keys().iter().any(|d| {
            let d = podiam_policy::fold_key(d);
            if d.ends_with('/') {
                k.starts_with(&d) && k.len() > d.len()
            } else {
                k == d
            }
        })
    }
}

/// What an action is authorized on: a canonical ARN, its owner and its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    kind: ResourceKind,
    arn: String,
    account: String,
    /// Resource tags (`aws:ResourceTag/*`).
    tags: Vec<(String, String)>,
    /// IAM resources also answer `iam:ResourceTag/*`.
    iam: bool,
}

impl Target {
    /// The canonical ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }
    /// The owning account.
    pub fn account(&self) -> &str {
        &self.account
    }
    /// The kind.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }
    /// The resource tags.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }
    pub(crate) fn iam(&self) -> bool {
        self.iam
    }

    fn iam_entity(
        kind: ResourceKind,
        account: &str,
        resource: String,
        tags: &[model::Tag],
    ) -> Self {
        Self {
            kind,
            arn: format!("arn:{PARTITION}:iam::{account}:{resource}"),
            account: account.to_owned(),
            tags: tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
            iam: true,
        }
    }

    /// A stored role.
    pub(crate) fn role(account: &str, r: &model::Role) -> Self {
        Self::iam_entity(
            ResourceKind::Role,
            account,
            format!("role{}{}", r.path, r.name),
            &r.tags,
        )
    }
    /// A stored user.
    pub(crate) fn user(account: &str, u: &model::User) -> Self {
        Self::iam_entity(
            ResourceKind::User,
            account,
            format!("user{}{}", u.path, u.name),
            &u.tags,
        )
    }
    /// A stored managed policy.
    pub(crate) fn policy(account: &str, p: &model::ManagedPolicy) -> Self {
        Self::iam_entity(
            ResourceKind::Policy,
            account,
            format!("policy{}{}", p.path, p.name),
            &p.tags,
        )
    }
    /// A stored OpenID Connect provider (`key`: its URL without scheme).
    pub(crate) fn oidc_provider(account: &str, key: &str, p: &model::OidcProvider) -> Self {
        Self::iam_entity(
            ResourceKind::OidcProvider,
            account,
            format!("oidc-provider/{key}"),
            &p.tags,
        )
    }
    /// A role or user about to be created, or one that does not exist (the caller then learns
    /// that only where allowed to act on it): the ARN of the validated name and path, no tags.
    pub(crate) fn new_iam(kind: ResourceKind, account: &str, path: &str, name: &str) -> Self {
        let prefix = match kind {
            ResourceKind::Role => "role",
            ResourceKind::User => "user",
            ResourceKind::Policy => "policy",
            _ => "",
        };
        Self::iam_entity(kind, account, format!("{prefix}{path}{name}"), &[])
    }
    /// An OpenID Connect provider about to be created, or one that does not exist.
    pub(crate) fn new_oidc_provider(account: &str, key: &str) -> Self {
        Self::iam_entity(
            ResourceKind::OidcProvider,
            account,
            format!("oidc-provider/{key}"),
            &[],
        )
    }
    /// A stored cluster.
    pub(crate) fn cluster(region: &str, account: &str, c: &model::Cluster) -> Self {
        let mut t = Self::new_cluster(region, account, &c.name);
        t.tags = c.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        t
    }
    /// A cluster about to be created, or one that does not exist.
    pub(crate) fn new_cluster(region: &str, account: &str, name: &str) -> Self {
        Self {
            kind: ResourceKind::Cluster,
            arn: format!("arn:{PARTITION}:eks:{region}:{account}:cluster/{name}"),
            account: account.to_owned(),
            tags: vec![],
            iam: false,
        }
    }
    /// A stored Pod Identity association.
    pub(crate) fn association(
        region: &str,
        account: &str,
        a: &model::PodIdentityAssociation,
    ) -> Self {
        let mut t = Self::new_association(region, account, &a.cluster, &a.id);
        t.tags = a.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        t
    }
    /// An association that does not exist.
    pub(crate) fn new_association(region: &str, account: &str, cluster: &str, id: &str) -> Self {
        Self {
            kind: ResourceKind::Association,
            arn: format!(
                "arn:{PARTITION}:eks:{region}:{account}:podidentityassociation/{cluster}/{id}"
            ),
            account: account.to_owned(),
            tags: vec![],
            iam: false,
        }
    }
    /// A stored access entry.
    pub(crate) fn access_entry(region: &str, account: &str, e: &model::AccessEntry) -> Self {
        let mut t = Self::new_access_entry(region, account, &e.cluster, &e.principal_arn, &e.uuid);
        t.tags = e.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        t
    }
    /// An access entry that does not exist: `uuid` is `*` (a missing entry has none), which
    /// policies naming the principal's entries with a trailing `/*` still match.
    pub(crate) fn new_access_entry(
        region: &str,
        account: &str,
        cluster: &str,
        principal_arn: &str,
        uuid: &str,
    ) -> Self {
        // `arn:aws:iam::ACCOUNT:role/PATH/NAME` → `role/ACCOUNT/NAME` (EKS leaves the path out).
        let (acct, kind, name) = principal_parts(principal_arn);
        Self {
            kind: ResourceKind::AccessEntry,
            arn: format!(
                "arn:{PARTITION}:eks:{region}:{account}:access-entry/{cluster}/{kind}/{acct}/{name}/{uuid}"
            ),
            account: account.to_owned(),
            tags: vec![],
            iam: false,
        }
    }
    /// The resource `*` of actions without a resource type, in `account`.
    pub(crate) fn wildcard(account: &str) -> Self {
        Self {
            kind: ResourceKind::Wildcard,
            arn: "*".into(),
            account: account.to_owned(),
            tags: vec![],
            iam: false,
        }
    }

    /// Whether this target may stand for `action` (its resource type, or a wildcard lookup
    /// for actions without one).
    pub fn fits(&self, action: Action) -> bool {
        let want = action.resource_kind();
        match want {
            ResourceKind::Principal => matches!(self.kind, ResourceKind::Role | ResourceKind::User),
            ResourceKind::EksResource => matches!(
                self.kind,
                ResourceKind::Cluster | ResourceKind::Association | ResourceKind::AccessEntry
            ),
            other => other == self.kind,
        }
    }
}

/// `(account, role|user, name)` of an IAM principal ARN, for access-entry ARNs. Callers pass
/// validated role or user ARNs; anything else yields empty parts.
fn principal_parts(arn: &str) -> (&str, &str, &str) {
    // arn:aws:iam::ACCOUNT:KIND/PATH/NAME
    let mut it = arn.splitn(6, ':');
    let (Some(account), Some(resource)) = (it.nth(4), it.next()) else {
        return ("", "", "");
    };
    let (kind, rest) = resource.split_once('/').unwrap_or((resource, ""));
    let name = rest.rsplit('/').next().unwrap_or(rest);
    (account, kind, name)
}

/// The request's condition keys of one authorization.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub(crate) entries: Vec<(String, Vec<String>)>,
}

impl Keys {
    /// No request keys.
    pub fn none() -> Self {
        Self::default()
    }
    /// Set `key` to one value.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.entries.push((key.into(), vec![value.into()]));
        self
    }
    /// Set `key` to several values.
    #[must_use]
    pub fn with_multi(mut self, key: impl Into<String>, values: Vec<String>) -> Self {
        self.entries.push((key.into(), values));
        self
    }
    /// Set `key` when `value` is present.
    #[must_use]
    pub fn with_opt(self, key: impl Into<String>, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }
    /// `aws:RequestTag/<key>` for each tag and `aws:TagKeys` (when there are tags).
    #[must_use]
    pub fn request_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut keys = Vec::new();
        for (k, v) in tags {
            self.entries
                .push((format!("{REQ_TAG}{k}"), vec![v.to_owned()]));
            keys.push(k.to_owned());
        }
        if !keys.is_empty() {
            self.entries.push((TAG_KEYS.into(), keys));
        }
        self
    }
    /// `aws:TagKeys` alone (untagging).
    #[must_use]
    pub fn tag_keys(mut self, keys: &[String]) -> Self {
        if !keys.is_empty() {
            self.entries.push((TAG_KEYS.into(), keys.to_vec()));
        }
        self
    }
    /// Whether `key` is set (case-insensitively).
    pub fn has(&self, key: &str) -> bool {
        let k = podiam_policy::fold_key(key);
        self.entries
            .iter()
            .any(|(e, _)| podiam_policy::fold_key(e) == k)
    }
    /// Append other keys.
    #[must_use]
    pub fn and(mut self, other: Keys) -> Self {
        self.entries.extend(other.entries);
        self
    }
    /// The entries.
    pub fn entries(&self) -> &[(String, Vec<String>)] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert!(seen.insert(a.name()), "{} listed twice", a.name());
            let (svc, op) = a.name().split_once(':').unwrap();
            assert!(
                ["iam", "sts", "eks", "eks-auth", "cloudtrail", "podiam"].contains(&svc),
                "{}",
                a.name()
            );
            assert!(
                op.chars().next().unwrap().is_ascii_uppercase(),
                "{}",
                a.name()
            );
            for k in a.keys() {
                assert!(
                    k.contains(':'),
                    "{}: key {k} has no service prefix",
                    a.name()
                );
            }
        }
    }

    #[test]
    fn declared_keys_match_by_prefix_and_case() {
        assert!(Action::IamTagRole.declares("aws:RequestTag/team"));
        assert!(Action::IamTagRole.declares("AWS:requesttag/Team"));
        assert!(!Action::IamTagRole.declares("aws:RequestTag/"));
        assert!(!Action::IamUntagRole.declares("aws:RequestTag/team"));
        assert!(Action::IamAttachRolePolicy.declares("iam:PolicyARN"));
        assert!(!Action::IamGetRole.declares("iam:PolicyARN"));
    }

    #[test]
    fn targets_fit_their_actions_only() {
        let t = Target::new_iam(ResourceKind::Role, "111122223333", "/a/", "R");
        assert_eq!(t.arn(), "arn:aws:iam::111122223333:role/a/R");
        assert!(t.fits(Action::IamGetRole));
        assert!(t.fits(Action::IamSimulatePrincipalPolicy));
        assert!(!t.fits(Action::IamGetUser));
        assert!(!t.fits(Action::IamListRoles));
        assert!(Target::wildcard("111122223333").fits(Action::IamListRoles));
        let c = Target::new_cluster("us-east-1", "111122223333", "c");
        assert!(
            c.fits(Action::EksTagResource)
                && c.fits(Action::EksDescribeCluster)
                && !c.fits(Action::EksDescribePodIdentityAssociation)
        );
    }
}
