//! EKS access entries (EKS API): who may authenticate to a cluster's Kubernetes API as which
//! user and groups, and which AWS-managed access policies grant them what, at cluster or
//! namespace scope. Also the cluster's `accessConfig` (authentication mode, the creator's
//! bootstrap entry) and UpdateClusterConfig.
//!
//! An entry names an IAM role or user of the cluster's account that exists when the entry is
//! made; it is stored under `(account, CLUSTER/PRINCIPAL_ARN)` with its associated policies in
//! the same record, so an association is one versioned write of its entry. Every operation on
//! entries needs the access-entry API to be on: authentication mode `API_AND_CONFIG_MAP` or
//! `API`. This module records who is who, and (`authn`) verifies `aws eks get-token` tokens and
//! maps their signers to Kubernetes identities through these records or (`configmap`) through
//! the cluster's legacy aws-auth ConfigMap.

mod authn;
mod config;
mod configmap;
mod configmap_yaml;
mod entries;
mod params;
mod policies;

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
pub use params::{
    ACCESS_POLICIES, AccessPolicy, AccessScope, CLUSTER_ADMIN_POLICY, CreateAccessEntry, MODE_API,
    MODE_API_AND_CONFIG_MAP, MODE_CONFIG_MAP, NAMESPACES_PER_SCOPE, UpdateAccessEntry,
};

#[cfg(test)]
mod authn_tests;
#[cfg(test)]
mod configmap_review_tests;
#[cfg(test)]
mod configmap_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
