//! The inputs and constants of Pod Identity and the rules their values follow.

use std::collections::BTreeMap;

use podiam_policy as policy;

use crate::error::{AwsError, Result};
use crate::names;
use crate::sts::AssumedRole;

/// The audience of Pod Identity tokens.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The service principal that assumes association roles.
pub const SERVICE_PRINCIPAL: &str = "pods.eks.amazonaws.com";
/// Lifetime of credentials for the association role (the agent caches them up to this long).
pub const SESSION_SECS: i64 = 6 * 3600;
/// Leeway for the token's `exp` and `nbf` (as kube-apiserver allows).
pub const TOKEN_LEEWAY_SECS: i64 = 60;
/// The six session tags, in AWS's order.
pub const SESSION_TAG_KEYS: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

/// CreatePodIdentityAssociation input.
#[derive(Clone, Debug, Default)]
pub struct CreateAssociation {
    /// namespace.
    pub namespace: String,
    /// serviceAccount.
    pub service_account: String,
    /// roleArn.
    pub role_arn: String,
    /// targetRoleArn.
    pub target_role_arn: Option<String>,
    /// disableSessionTags.
    pub disable_session_tags: bool,
    /// policy.
    pub policy: Option<String>,
    /// tags.
    pub tags: BTreeMap<String, String>,
    /// clientRequestToken.
    pub client_request_token: Option<String>,
}

/// UpdatePodIdentityAssociation input: `None` leaves a field unchanged; an empty string removes
/// the target role or the policy.
#[derive(Clone, Debug, Default)]
pub struct UpdateAssociation {
    /// roleArn.
    pub role_arn: Option<String>,
    /// targetRoleArn.
    pub target_role_arn: Option<String>,
    /// disableSessionTags.
    pub disable_session_tags: Option<bool>,
    /// policy.
    pub policy: Option<String>,
    /// clientRequestToken.
    pub client_request_token: Option<String>,
}

/// The result of AssumeRoleForPodIdentity.
#[derive(Clone, Debug)]
pub struct PodIdentityCredentials {
    /// The token's namespace.
    pub namespace: String,
    /// The token's service account.
    pub service_account: String,
    /// The association.
    pub association_arn: String,
    /// Its id.
    pub association_id: String,
    /// The final session (the target role's when the association has one).
    pub assumed: AssumedRole,
}

/// Validate a Kubernetes name: lowercase DNS subdomain (`max` 63 for namespaces, 253 for
/// service accounts).
pub(super) fn k8s_name(s: &str, what: &str, max: usize) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && (max > 63 || !s.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(AwsError::invalid_parameter(format!(
            "{what} {s:?} is not a valid Kubernetes name"
        )))
    }
}

pub(super) fn check_session_policy(p: &str) -> Result<()> {
    if p.is_empty() || p.chars().count() > 2048 {
        return Err(AwsError::invalid_parameter(
            "policy must be 1-2048 characters",
        ));
    }
    policy::Policy::parse(p, policy::PolicyKind::Session)
        .map(|_| ())
        .map_err(|e| {
            AwsError::invalid_parameter(format!("policy is not a valid session policy: {e}"))
        })
}

pub(super) fn role_arn_param(arn: &str, what: &str) -> Result<names::RoleArn> {
    names::RoleArn::parse(arn).ok_or_else(|| {
        AwsError::invalid_parameter(format!("{what} {arn:?} is not a valid IAM role ARN"))
    })
}

/// `a-` followed by 17 random lowercase letters and digits.
pub(super) fn association_id() -> Result<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = crate::crypto::random_bytes::<17>().map_err(|_| AwsError::server_exception())?;
    let mut id = String::from("a-");
    for b in bytes {
        id.push(char::from(
            ALPHABET
                .get(usize::from(b) % ALPHABET.len())
                .copied()
                .unwrap_or(b'a'),
        ));
    }
    Ok(id)
}

/// A random external id: 32 hex digits from the system RNG.
pub(super) fn external_id() -> Result<String> {
    Ok(hex::encode(
        crate::crypto::random_bytes::<16>().map_err(|_| AwsError::server_exception())?,
    ))
}

/// `eks-<cluster>-<pod>-<uuid>` fitted into 64 characters: the UUID is kept whole and the
/// cluster and pod names are shortened, the longer one first.
pub fn session_name(cluster: &str, pod: &str, uuid: &str) -> String {
    let budget = 64usize.saturating_sub("eks---".len() + uuid.len());
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
            .collect()
    };
    let (c, p) = (clean(cluster), clean(pod));
    let (mut lc, mut lp) = (c.len(), p.len());
    while lc + lp > budget {
        if lc >= lp { lc -= 1 } else { lp -= 1 }
    }
    format!(
        "eks-{}-{}-{uuid}",
        c.get(..lc).unwrap_or_default(),
        p.get(..lp).unwrap_or_default()
    )
}
