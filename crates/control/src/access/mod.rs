//! EKS access entries (EKS API): who may authenticate to a cluster's Kubernetes API as which
//! user and groups, and which AWS-managed access policies grant them what, at cluster or
//! namespace scope. Also the cluster's `accessConfig` (authentication mode, the creator's
//! bootstrap entry) and UpdateClusterConfig.
//!
//! An entry names an IAM role or user of the cluster's account that exists when the entry is
//! made, or (a podiam extension, `pattern`) a role-name pattern such as `role/team-*` that
//! needs nothing to exist; it is stored under `(account, CLUSTER/PRINCIPAL_ARN)` (the pattern
//! as given) with its associated policies in the same record, so an association is one
//! versioned write of its entry. Usernames are templates (`template`), checked when written
//! and rendered per token. Every operation on
//! entries needs the access-entry API to be on: authentication mode `API_AND_CONFIG_MAP` or
//! `API`. This module records who is who, and (`authn`) verifies `aws eks get-token` tokens and
//! maps their signers to Kubernetes identities through these records or (`configmap`) through
//! the cluster's legacy aws-auth ConfigMap, and (`kubeauthz`) answers the API server's
//! SubjectAccessReviews with what the entries' access policies grant.

mod authn;
mod config;
mod configmap;
mod configmap_yaml;
mod entries;
mod entry_authz;
mod kubeauthz;
mod params;
mod pattern;
mod policies;
pub mod rbac;
mod template;
mod token;

pub use authn::{
    CLUSTER_ID_HEADER, ClusterRoute, KubeUser, MAX_TOKEN_CHARS, MappedBy, PresignedUrl, REFUSED,
    TOKEN_PREFIX, TOKEN_VALIDITY_SECS, TokenRefused, parse_token,
};
pub use config::{ClusterAccessInput, ClusterUpdate};
pub(crate) use configmap::AwsAuthSources;
pub use configmap::{
    AwsAuth, AwsAuthCluster, AwsAuthError, AwsAuthMapping, AwsAuthMatch, MAX_AWS_AUTH_BYTES,
    MAX_AWS_AUTH_ENTRIES, MAX_AWS_AUTH_GROUPS,
};
pub use kubeauthz::{
    AccessReview, BINDING_EXTRA, Decision, ENTRY_EXTRA, PolicyVerdict, parse_access_review,
    policy_verdicts,
};
pub use params::{
    ACCESS_POLICIES, AccessPolicy, AccessScope, CLUSTER_ADMIN_POLICY, CreateAccessEntry, MODE_API,
    MODE_API_AND_CONFIG_MAP, MODE_CONFIG_MAP, NAMESPACES_PER_SCOPE, UpdateAccessEntry,
};
pub use pattern::{Specificity, most_specific, pattern_match};

#[cfg(test)]
mod authn_tests;
#[cfg(test)]
mod configmap_review_tests;
#[cfg(test)]
mod configmap_tests;
#[cfg(test)]
mod escalation_tests;
#[cfg(test)]
mod kubeauthz_tests;
#[cfg(test)]
mod pattern_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
