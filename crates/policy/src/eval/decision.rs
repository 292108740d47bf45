//! The answer of an evaluation: its effect, why, the statements that decided it, and a
//! one-line explanation.

use std::fmt::Write as _;

use super::{Effect, MatchedStatement, PolicySource};
use crate::effect::StatementEffect;

/// Why a decision came out the way it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A `Deny` statement applied.
    ExplicitDeny,
    /// Identity-based policies allow (within the boundary and session policies).
    IdentityAllow,
    /// The resource-based policy allows the principal on its own.
    ResourceAllow,
    /// The account root user acting in its own account.
    RootAllow,
    /// Cross-account: both the identity side and the resource policy allow.
    CrossAccountAllow,
    /// No statement allows.
    NoAllow,
    /// The role's trust policy (which must allow) does not.
    TrustPolicyDenies,
    /// The resource policy only names the principal's account, and no identity-based policy
    /// allows.
    IdentityRequired,
    /// Something allows, but the permissions boundary does not.
    BoundaryDenies,
    /// Something allows, but the session policies do not.
    SessionDenies,
    /// Cross-account: the identity side allows but the resource policy does not.
    CrossAccountResourceDenies,
    /// Cross-account: the resource policy allows but the identity side does not.
    CrossAccountIdentityDenies,
}

/// The result of [`evaluate`](super::evaluate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allow, explicit deny or implicit deny.
    pub effect: Effect,
    /// Why.
    pub reason: Reason,
    /// Every statement that applied, across all policies.
    pub matched: Vec<MatchedStatement>,
    /// Condition keys that conditions looked up and the request lacked (deduplicated).
    pub missing_context_keys: Vec<String>,
    /// The action evaluated.
    pub action: String,
    /// The resource evaluated.
    pub resource: String,
}

impl Decision {
    /// True if allowed.
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.effect.is_allowed()
    }

    /// The statements that made the decision: the `Deny` statements for an explicit deny,
    /// the granting `Allow` statements for an allow, none for an implicit deny.
    #[must_use]
    pub fn deciding_statements(&self) -> Vec<&MatchedStatement> {
        let wanted = |m: &&MatchedStatement| match self.reason {
            Reason::ExplicitDeny => m.effect == StatementEffect::Deny,
            Reason::IdentityAllow => {
                m.effect == StatementEffect::Allow && m.source == PolicySource::Identity
            }
            Reason::ResourceAllow => {
                m.effect == StatementEffect::Allow && m.source == PolicySource::Resource
            }
            Reason::CrossAccountAllow => {
                m.effect == StatementEffect::Allow
                    && matches!(m.source, PolicySource::Identity | PolicySource::Resource)
            }
            _ => false,
        };
        self.matched.iter().filter(wanted).collect()
    }

    /// A one-line human explanation, e.g. `denied: no statement allows
    /// sts:AssumeRoleWithWebIdentity on arn:aws:iam::1:role/x (implicit deny)`.
    #[must_use]
    pub fn explain(&self) -> String {
        let what = format!("{} on {}", self.action, self.resource);
        let by = || {
            let names: Vec<String> = self
                .deciding_statements()
                .iter()
                .map(|m| m.describe())
                .collect();
            names.join(" and ")
        };
        let mut out = match self.reason {
            Reason::ExplicitDeny => format!(
                "denied: {what} is explicitly denied by {} (explicit deny)",
                by()
            ),
            Reason::IdentityAllow | Reason::ResourceAllow | Reason::CrossAccountAllow => {
                format!("allowed: {what} by {}", by())
            }
            Reason::RootAllow => format!("allowed: {what} for the account root user"),
            Reason::NoAllow => format!("denied: no statement allows {what} (implicit deny)"),
            Reason::TrustPolicyDenies => {
                format!(
                    "denied: the role trust policy does not allow {what} for this principal (implicit deny)"
                )
            }
            Reason::IdentityRequired => format!(
                "denied: the resource-based policy trusts the principal's account, but no identity-based policy allows {what} (implicit deny)"
            ),
            Reason::BoundaryDenies => {
                format!("denied: {what} is not allowed by the permissions boundary (implicit deny)")
            }
            Reason::SessionDenies => {
                format!("denied: {what} is not allowed by the session policy (implicit deny)")
            }
            Reason::CrossAccountResourceDenies => format!(
                "denied: cross-account request and no resource-based policy statement allows {what} (implicit deny)"
            ),
            Reason::CrossAccountIdentityDenies => format!(
                "denied: cross-account request and no identity-based policy allows {what} (implicit deny)"
            ),
        };
        if !self.missing_context_keys.is_empty() && !self.is_allowed() {
            let _ = write!(
                out,
                "; context keys not present in the request: {}",
                self.missing_context_keys.join(", ")
            );
        }
        out
    }
}
