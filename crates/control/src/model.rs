//! The records podiam keeps, as stored (JSON documents in the store) and cached in memory.
//!
//! Secrets inside records (secret access keys, private keys) are sealed with the master key
//! ([`crate::crypto::Sealed`]) before they reach the store.

use serde::{Deserialize, Serialize};

use crate::crypto::Sealed;

/// Record kinds (the store's `kind` column).
pub mod kind {
    /// The installation's global settings (account list, session keys).
    pub const ACCOUNT: &str = "account";
    /// Access keys (root and users), keyed by access key id.
    pub const ACCESS_KEY: &str = "access_key";
    /// IAM users, keyed by lowercase name.
    pub const USER: &str = "user";
    /// IAM roles, keyed by lowercase name.
    pub const ROLE: &str = "role";
    /// Customer managed policies, keyed by `path + name`.
    pub const POLICY: &str = "policy";
    /// IAM OIDC providers, keyed by URL without scheme.
    pub const OIDC_PROVIDER: &str = "oidc_provider";
    /// EKS clusters, keyed by name.
    pub const CLUSTER: &str = "cluster";
    /// Session-token encryption keys (account `""`).
    pub const SESSION_KEY: &str = "session_key";
    /// EKS Pod Identity associations, keyed by association id.
    pub const POD_IDENTITY_ASSOCIATION: &str = "pod_identity_association";
    /// EKS access entries, keyed by `CLUSTER/PRINCIPAL_ARN` (cluster names hold no `/`).
    pub const ACCESS_ENTRY: &str = "access_entry";
}

/// A tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// An account of this installation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    /// 12-digit id.
    pub id: String,
    /// Creation time (unix seconds).
    pub created: i64,
    /// The installation's administrator account: the one created at first start. Its root alone
    /// rotates and retires the installation-wide session keys.
    #[serde(default)]
    pub admin: bool,
}

/// A long-term access key (the account root's or a user's).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA...`.
    pub id: String,
    /// Owning account.
    pub account: String,
    /// Owning user name; `None` for the account root.
    pub user: Option<String>,
    /// The owning user's unique id (`AIDA...`): a user created later under the same name is
    /// another principal and cannot use the key. Absent in keys written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The secret, sealed.
    pub secret: Sealed,
    /// `Active` or `Inactive`.
    pub status: String,
    /// Creation time.
    pub created: i64,
}

impl AccessKey {
    /// Whether this is a key of `user`: its name and its unique id (a user deleted and created
    /// again under the name does not inherit its keys). A key written before the id was
    /// recorded belongs to the user of its name only if it is not older than that user: an
    /// older one was made for a predecessor.
    pub fn belongs_to(&self, user: &User) -> bool {
        self.user.as_deref() == Some(user.name.as_str())
            && match &self.user_id {
                Some(id) => *id == user.id,
                None => self.created >= user.created,
            }
    }
}

/// An inline policy attached to a user or role.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InlinePolicy {
    /// Policy name.
    pub name: String,
    /// The JSON document as written.
    pub document: String,
}

/// An IAM user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    /// Name as written.
    pub name: String,
    /// `AIDA...`.
    pub id: String,
    /// Path.
    pub path: String,
    /// Creation time.
    pub created: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Inline policies.
    #[serde(default)]
    pub inline_policies: Vec<InlinePolicy>,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Permissions boundary ARN.
    #[serde(default)]
    pub boundary: Option<String>,
}

/// An IAM role.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Role {
    /// Name as written.
    pub name: String,
    /// `AROA...`.
    pub id: String,
    /// Path.
    pub path: String,
    /// Trust policy document as written.
    pub trust_policy: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// 3600..=43200.
    pub max_session_duration: i64,
    /// Creation time.
    pub created: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Inline policies.
    #[serde(default)]
    pub inline_policies: Vec<InlinePolicy>,
    /// Attached managed policy ARNs.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Permissions boundary ARN.
    #[serde(default)]
    pub boundary: Option<String>,
    /// Sessions issued before this time are denied (revocation); unix seconds.
    #[serde(default)]
    pub revoked_before: Option<i64>,
}

/// One version of a managed policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `v1`, `v2`, ...
    pub id: String,
    /// Document as written.
    pub document: String,
    /// Creation time.
    pub created: i64,
}

/// A customer managed policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManagedPolicy {
    /// Name.
    pub name: String,
    /// `ANPA...`.
    pub id: String,
    /// Path.
    pub path: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Versions, oldest first.
    pub versions: Vec<PolicyVersion>,
    /// The default version id.
    pub default_version: String,
    /// Next version number.
    pub next_version: u32,
    /// Creation time.
    pub created: i64,
    /// Last update.
    pub updated: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// An IAM OIDC identity provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OidcProvider {
    /// URL as given (`https://host/path`).
    pub url: String,
    /// Client ids (audiences).
    pub client_ids: Vec<String>,
    /// SHA-1 thumbprints of a certificate of the issuer's TLS chain, lowercase hex.
    pub thumbprints: Vec<String>,
    /// Creation time.
    pub created: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// One signing key of a hosted cluster issuer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuerKey {
    /// Key id (base64url SHA-256 of the PKIX public key).
    pub kid: String,
    /// `RS256` or `ES256`.
    pub alg: String,
    /// PKCS#8 DER of the private key, sealed.
    pub private: Sealed,
    /// Creation time.
    pub created: i64,
    /// When a newer key replaced it as the signing key (the newer key's `active_from`, so it may
    /// lie a few seconds ahead); it stays in the JWKS `issuer_key_retention_secs` longer.
    #[serde(default)]
    pub retired: Option<i64>,
    /// From when the key signs (unix seconds): a rotated key is in the JWKS at once but signs only
    /// after every replica has had time to learn it. Keys stored before this field are 0 (active).
    #[serde(default)]
    pub active_from: i64,
}

/// An EKS cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// The request body fields EKS stores but podiam does not act on (networking, logging, ...).
    pub spec: serde_json::Value,
    /// Cluster service role ARN.
    pub role_arn: String,
    /// Kubernetes version.
    pub version: String,
    /// Creation time (unix milliseconds).
    pub created_ms: i64,
    /// Tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Issuer id (the last path segment of the hosted issuer URL).
    pub oidc_id: String,
    /// The issuer URL: hosted (`<issuer base>/id/<oidc_id>`) or external.
    pub issuer: String,
    /// `true` when podiam hosts the issuer and holds its keys.
    pub hosted: bool,
    /// Hosted issuer keys, oldest first; the newest unretired one signs.
    #[serde(default)]
    pub keys: Vec<IssuerKey>,
    /// Who may authenticate to the cluster, and how (clusters stored before access entries
    /// existed read as EKS's API default: `CONFIG_MAP`, creator bootstrapped).
    #[serde(default)]
    pub access_config: AccessConfig,
}

/// A cluster's `accessConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessConfig {
    /// `CONFIG_MAP`, `API_AND_CONFIG_MAP` or `API`.
    pub authentication_mode: String,
    /// Whether the creator was made a cluster admin at creation.
    pub bootstrap_creator_admin: bool,
    /// The creating IAM role or user (`None` for an account root, or a cluster stored before
    /// access entries existed): the principal of the bootstrap access entry, made when the
    /// access-entry API is turned on for a cluster created in `CONFIG_MAP` mode.
    #[serde(default)]
    pub creator_arn: Option<String>,
    /// The unique id of that role or user at creation: the bootstrap entry is made only for
    /// the principal that created the cluster, never for one re-created under its name since.
    /// `None` in a cluster stored before ids were recorded, which then gets no bootstrap entry.
    #[serde(default)]
    pub creator_id: Option<String>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            authentication_mode: "CONFIG_MAP".into(),
            bootstrap_creator_admin: true,
            creator_arn: None,
            creator_id: None,
        }
    }
}

/// An EKS access entry: an IAM principal's identity in a cluster's Kubernetes API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// Cluster name.
    pub cluster: String,
    /// The IAM role or user ARN, as stored in IAM (its path and case).
    pub principal_arn: String,
    /// The unique id (`AROA...`/`AIDA...`) of the role or user the entry was made for: a
    /// principal deleted and re-created under the same ARN is another principal, and the entry
    /// does not authenticate it. `None` for entries stored before ids were recorded (matched by
    /// ARN alone).
    #[serde(default)]
    pub principal_id: Option<String>,
    /// `STANDARD` or a node type.
    pub kind: String,
    /// The Kubernetes username (may hold `{{SessionName}}`-style templates).
    pub username: String,
    /// Kubernetes groups.
    #[serde(default)]
    pub kubernetes_groups: Vec<String>,
    /// The random UUID that ends the entry's ARN.
    pub uuid: String,
    /// Tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Creation time (unix milliseconds).
    pub created_ms: i64,
    /// Last modification (unix milliseconds).
    pub modified_ms: i64,
    /// The idempotency token of the create call.
    #[serde(default)]
    pub client_request_token: Option<String>,
    /// Associated access policies, in policy ARN order.
    #[serde(default)]
    pub policies: Vec<AssociatedAccessPolicy>,
}

/// An access policy associated with an access entry, and its scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociatedAccessPolicy {
    /// `arn:aws:eks::aws:cluster-access-policy/NAME`.
    pub policy_arn: String,
    /// `cluster` or `namespace`.
    pub scope: String,
    /// The namespaces of a `namespace` scope.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// First association (unix milliseconds).
    pub associated_ms: i64,
    /// Last change of the scope (unix milliseconds).
    pub modified_ms: i64,
}

/// A session-token encryption key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionKey {
    /// Small numeric id carried in each token.
    pub id: u32,
    /// 32 key bytes, sealed.
    pub key: Sealed,
    /// Creation time.
    pub created: i64,
    /// From when the key mints sessions (unix seconds): a rotated key verifies at once but mints
    /// only after every replica has had time to learn it.
    #[serde(default)]
    pub active_from: i64,
}

/// An EKS Pod Identity association: (cluster, namespace, service account) → role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIdentityAssociation {
    /// `a-` and 17 lowercase letters and digits.
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Kubernetes service account name.
    pub service_account: String,
    /// The role assumed for the pods (in the cluster's account).
    pub role_arn: String,
    /// A role (in any account) chained into from `role_arn`.
    #[serde(default)]
    pub target_role_arn: Option<String>,
    /// The `sts:ExternalId` presented to the target role; generated once per association.
    pub external_id: String,
    /// Do not add the six session tags.
    #[serde(default)]
    pub disable_session_tags: bool,
    /// Session policy restricting the final session.
    #[serde(default)]
    pub policy: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Creation time (unix milliseconds).
    pub created_ms: i64,
    /// Last modification (unix milliseconds).
    pub modified_ms: i64,
    /// Owner (an add-on), if any.
    #[serde(default)]
    pub owner_arn: Option<String>,
    /// The idempotency token of the create call.
    #[serde(default)]
    pub client_request_token: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::{AccessKey, User};

    fn user(name: &str, id: &str) -> User {
        user_at(name, id, 1)
    }

    fn user_at(name: &str, id: &str, created: i64) -> User {
        serde_json::from_value(
            serde_json::json!({"name": name, "id": id, "path": "/", "created": created}),
        )
        .unwrap()
    }

    fn key(user: Option<&str>, user_id: Option<&str>) -> AccessKey {
        let mut k = serde_json::json!({
            "id": "AKIAEXAMPLE", "account": "111122223333", "user": user,
            "secret": "sealed", "status": "Active", "created": 1,
        });
        if let Some(id) = user_id {
            k["user_id"] = id.into();
        }
        serde_json::from_value(k).unwrap()
    }

    #[test]
    fn a_key_belongs_to_the_user_it_was_made_for_and_no_successor() {
        let alice = user("alice", "AIDAFIRST");
        let successor = user("alice", "AIDASECOND");
        let k = key(Some("alice"), Some("AIDAFIRST"));
        assert!(k.belongs_to(&alice));
        assert!(!k.belongs_to(&successor), "same name, another user");
        assert!(!k.belongs_to(&user("bob", "AIDAFIRST")), "another name");
        assert!(!key(None, None).belongs_to(&alice), "the root's key");
        // Keys written before the id was recorded go by name, but not to a user younger than
        // the key (the key was made for a predecessor of that name).
        let old = key(Some("alice"), None);
        assert!(old.belongs_to(&alice) && old.belongs_to(&successor));
        assert!(!old.belongs_to(&user_at("alice", "AIDATHIRD", 2)));
        assert!(!serde_json::to_string(&old).unwrap().contains("user_id"));
    }
}
