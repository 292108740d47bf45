//! AWS quotas podiam enforces (IAM defaults).

/// OIDC providers per account.
pub const PROVIDERS_PER_ACCOUNT: usize = 100;
/// Client ids per OIDC provider.
pub const CLIENT_IDS: usize = 100;
/// Thumbprints per OIDC provider.
pub const THUMBPRINTS: usize = 5;
/// Tags per entity.
pub const TAGS: usize = 50;
/// Roles per account.
pub const ROLES_PER_ACCOUNT: usize = 1000;
/// Users per account.
pub const USERS_PER_ACCOUNT: usize = 5000;
/// Managed policies attached to a role or user.
pub const ATTACHED_PER_ENTITY: usize = 10;
/// Trust policy length (characters, whitespace excluded).
pub const TRUST_POLICY_CHARS: usize = 2048;
/// Aggregate inline policy length per role (characters, whitespace excluded).
pub const ROLE_INLINE_CHARS: usize = 10_240;
/// Aggregate inline policy length per user.
pub const USER_INLINE_CHARS: usize = 2048;
/// Managed policy document length.
pub const MANAGED_POLICY_CHARS: usize = 6144;
/// Versions kept per managed policy.
pub const POLICY_VERSIONS: usize = 5;
/// Access keys per user.
pub const ACCESS_KEYS_PER_USER: usize = 2;
/// Customer managed policies per account.
pub const POLICIES_PER_ACCOUNT: usize = 1500;
