//! Evaluation: one statement, one policy, and the combination of all policies that apply
//! to a request (AWS "policy evaluation logic").
//!
//! The combination rules live in [`combine`]; every other function only gathers facts.

use std::fmt::Write as _;

use crate::context::Context;
use crate::effect::StatementEffect;
use crate::policy::{ActionClause, Policy, PolicyKind, PrincipalClause, ResourceClause, Statement};
use crate::principal::{Principal, PrincipalKind, PrincipalMatch};

/// One request to authorize.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Who is asking.
    pub principal: &'a Principal,
    /// The action, e.g. `sts:AssumeRoleWithWebIdentity` (matched case-insensitively).
    pub action: &'a str,
    /// The resource ARN (matched case-sensitively); `*` for actions without resources.
    pub resource: &'a str,
    /// Condition keys and values (also the source of policy variables).
    pub context: &'a Context,
}

/// The final decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Allowed.
    Allow,
    /// Denied by a matching `Deny` statement.
    ExplicitDeny,
    /// Denied because nothing (sufficient) allows it.
    ImplicitDeny,
}

impl Effect {
    /// True for [`Effect::Allow`].
    #[must_use]
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }
}

/// The result of evaluating a single policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyEffect {
    /// At least one `Allow` statement applies and no `Deny` statement does.
    Allow,
    /// At least one `Deny` statement applies.
    Deny,
    /// No statement applies.
    NotApplicable,
}

/// Which role a policy plays in an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicySource {
    /// An identity-based policy of the principal.
    Identity,
    /// The resource-based policy (for `AssumeRole*`: the role's trust policy).
    Resource,
    /// The principal's permissions boundary.
    Boundary,
    /// A session policy of the principal's session.
    Session,
}

impl PolicySource {
    fn describe(self) -> &'static str {
        match self {
            Self::Identity => "identity-based policy",
            Self::Resource => "resource-based policy",
            Self::Boundary => "permissions boundary",
            Self::Session => "session policy",
        }
    }

    fn of_kind(kind: PolicyKind) -> Self {
        match kind {
            PolicyKind::Identity => Self::Identity,
            PolicyKind::Resource | PolicyKind::Trust => Self::Resource,
            PolicyKind::Boundary => Self::Boundary,
            PolicyKind::Session => Self::Session,
        }
    }
}

/// A statement that applied to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedStatement {
    /// The policy's label ([`Policy::label`]).
    pub policy: String,
    /// The role of the policy in the evaluation.
    pub source: PolicySource,
    /// Index of the statement in the policy.
    pub index: usize,
    /// The statement's `Sid`.
    pub sid: Option<String>,
    /// The statement's effect.
    pub effect: StatementEffect,
    /// How its `Principal`/`NotPrincipal` matched (`None` for statements without one).
    pub principal_match: Option<PrincipalMatch>,
}

impl MatchedStatement {
    fn describe(&self) -> String {
        let stmt = match self.sid.as_deref().filter(|s| !s.is_empty()) {
            Some(sid) => format!("statement '{sid}'"),
            None => format!("statement #{}", self.index),
        };
        if self.policy.is_empty() {
            format!("{stmt} of the {}", self.source.describe())
        } else {
            format!("{stmt} of policy '{}'", self.policy)
        }
    }
}

/// The result of [`evaluate_policy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyResult {
    /// Allow, Deny or not applicable.
    pub effect: PolicyEffect,
    /// Every statement that applied, in order.
    pub matched: Vec<MatchedStatement>,
    /// The strongest principal match among the applicable `Allow` statements (resource and
    /// trust policies); see [`PrincipalMatch`].
    pub principal_match: Option<PrincipalMatch>,
    /// Condition keys that conditions looked up and the request lacked.
    pub missing_context_keys: Vec<String>,
}

/// The policies that apply to one request.
///
/// An empty `identity` list means "no identity-based policy allows". `boundary: None` and an
/// empty `session` list mean "no boundary" and "no session policy" (they do not restrict).
#[derive(Clone, Debug, Default)]
pub struct PolicySet<'a> {
    /// Identity-based policies of the principal (inline and managed, user's groups' too).
    pub identity: Vec<&'a Policy>,
    /// The resource-based policy; for `AssumeRole*` the role's trust policy (kind
    /// [`PolicyKind::Trust`], which must then allow).
    pub resource: Option<&'a Policy>,
    /// The account that owns the resource. With the principal's account it decides whether
    /// the request is cross-account; `None` means the principal's own account.
    pub resource_account: Option<&'a str>,
    /// The principal's permissions boundary.
    pub boundary: Option<&'a Policy>,
    /// Session policies (inline and managed) of the principal's session; they are combined
    /// as a union, and together they must allow.
    pub session: Vec<&'a Policy>,
}

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

/// The result of [`evaluate`].
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

/// Facts gathered from all policies, the input of [`combine`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Facts {
    /// A `Deny` statement applied in any policy.
    explicit_deny: bool,
    /// An identity-based policy allows.
    identity_allows: bool,
    /// The principal is an account root user (implicitly allowed in its own account).
    principal_is_root: bool,
    /// `None`: no boundary; `Some(allows)` otherwise.
    boundary_allows: Option<bool>,
    /// `None`: no session policy; `Some(allows)` otherwise.
    session_allows: Option<bool>,
    /// The strongest principal match of an applicable `Allow` in the resource policy.
    resource_grant: Option<PrincipalMatch>,
    /// The resource policy must allow (role trust policies).
    resource_required: bool,
    /// The principal's account differs from the resource's account.
    cross_account: bool,
}

/// Boundary and session policies both allow (or are absent).
fn guardrails_allow(f: &Facts) -> bool {
    f.boundary_allows.unwrap_or(true) && f.session_allows.unwrap_or(true)
}

/// The principal's own side allows: identity policies (or being root), within the guardrails.
fn identity_side_allows(f: &Facts) -> bool {
    (f.identity_allows || f.principal_is_root) && guardrails_allow(f)
}

/// What a same-account resource-policy grant is worth on its own:
/// * `Exact` (the user / role-session / federated-user ARN itself): allows regardless of
///   identity, boundary and session policies;
/// * `Role` (the role ARN of a session) and `Broad` (`*`, service, federated provider,
///   `NotPrincipal`): allows, but boundary and session policies still limit it;
/// * `Account`: a delegation, the identity side must allow.
fn same_account_resource_allows(f: &Facts) -> bool {
    match f.resource_grant {
        Some(PrincipalMatch::Exact) => true,
        Some(PrincipalMatch::Role | PrincipalMatch::Broad) => guardrails_allow(f),
        Some(PrincipalMatch::Account) | None => false,
    }
}

/// Combines the facts into a decision.
// INVARIANT: (1) an explicit Deny anywhere is final and is checked first; (2) Allow needs at
// least one granting policy: cross-account requests need BOTH the identity side (identity ∧
// boundary ∧ session) AND any resource-policy grant; same-account requests need the identity
// side OR a sufficient resource-policy grant, and when the resource policy is required (role
// trust policies) it must grant at all; (3) everything else is an implicit deny. Adding an
// Allow statement can only turn facts from false to true (and grants stronger), and adding a
// Deny only sets `explicit_deny`, so the function is monotone in both.
fn combine(f: &Facts) -> Effect {
    if f.explicit_deny {
        return Effect::ExplicitDeny;
    }
    let allowed = if f.cross_account {
        f.resource_grant.is_some() && identity_side_allows(f)
    } else if f.resource_required && f.resource_grant.is_none() {
        false
    } else {
        same_account_resource_allows(f) || identity_side_allows(f)
    };
    if allowed {
        Effect::Allow
    } else {
        Effect::ImplicitDeny
    }
}

/// Explains [`combine`]'s result (must agree with it; tested).
fn reason(f: &Facts, effect: Effect) -> Reason {
    match effect {
        Effect::ExplicitDeny => Reason::ExplicitDeny,
        Effect::Allow if f.cross_account => Reason::CrossAccountAllow,
        Effect::Allow if same_account_resource_allows(f) && !identity_side_allows(f) => {
            Reason::ResourceAllow
        }
        Effect::Allow if f.principal_is_root && !f.identity_allows => Reason::RootAllow,
        Effect::Allow => Reason::IdentityAllow,
        Effect::ImplicitDeny => {
            let something_allows = f.identity_allows
                || f.principal_is_root
                || matches!(
                    f.resource_grant,
                    Some(PrincipalMatch::Role | PrincipalMatch::Broad)
                );
            if f.cross_account {
                if f.resource_grant.is_none() && (f.identity_allows || f.principal_is_root) {
                    if identity_side_allows(f) {
                        Reason::CrossAccountResourceDenies
                    } else if !f.boundary_allows.unwrap_or(true) {
                        Reason::BoundaryDenies
                    } else {
                        Reason::SessionDenies
                    }
                } else if f.resource_grant.is_some() {
                    if f.identity_allows && !f.boundary_allows.unwrap_or(true) {
                        Reason::BoundaryDenies
                    } else if f.identity_allows {
                        Reason::SessionDenies
                    } else {
                        Reason::CrossAccountIdentityDenies
                    }
                } else {
                    Reason::NoAllow
                }
            } else if f.resource_required && f.resource_grant.is_none() {
                Reason::TrustPolicyDenies
            } else if something_allows && !f.boundary_allows.unwrap_or(true) {
                Reason::BoundaryDenies
            } else if something_allows && !f.session_allows.unwrap_or(true) {
                Reason::SessionDenies
            } else if f.resource_grant == Some(PrincipalMatch::Account) {
                Reason::IdentityRequired
            } else {
                Reason::NoAllow
            }
        }
    }
}

fn is_cross_account(principal: &Principal, resource_account: Option<&str>) -> bool {
    match (principal.account.as_deref(), resource_account) {
        (Some(own), Some(resource)) if principal.kind.is_iam() => own != resource,
        _ => false,
    }
}

/// What every statement of one evaluation is matched against.
#[derive(Clone, Copy)]
struct Target<'r, 'a> {
    req: &'r Request<'a>,
    /// The action, ASCII-lowercased once.
    action_lower: &'r str,
    /// The principal has a permissions boundary ([`PolicySet::boundary`]).
    boundary_attached: bool,
}

/// Does `stmt` apply to the request? `None` if not; otherwise how its principal matched
/// (`None` inside for statements without `Principal`/`NotPrincipal`).
fn statement_applies(
    stmt: &Statement,
    target: Target<'_, '_>,
    missing: &mut Vec<String>,
) -> Option<Option<PrincipalMatch>> {
    let Target {
        req,
        action_lower,
        boundary_attached,
    } = target;
    let action_ok = match stmt.action() {
        ActionClause::Action(patterns) => {
            patterns.iter().any(|p| p.matches_lowercase(action_lower))
        }
        ActionClause::NotAction(patterns) => {
            !patterns.iter().any(|p| p.matches_lowercase(action_lower))
        }
    };
    if !action_ok {
        return None;
    }
    let principal_match = match stmt.principal() {
        None => None,
        Some(PrincipalClause::Principal(spec)) => Some(spec.matches(req.principal)?),
        Some(PrincipalClause::NotPrincipal(spec)) => {
            // AWS: a `Deny` with `NotPrincipal` always denies an IAM principal that has a
            // permissions boundary, whatever `NotPrincipal` lists.
            let boundary_overrides = stmt.effect() == StatementEffect::Deny
                && boundary_attached
                && req.principal.kind.is_iam();
            if !boundary_overrides && spec.excludes(req.principal, stmt.effect()) {
                return None;
            }
            Some(PrincipalMatch::Broad)
        }
    };
    let resource_ok = match stmt.resource() {
        None => true,
        Some(ResourceClause::Resource(patterns)) => patterns
            .iter()
            .any(|p| p.matches(req.resource, req.context)),
        Some(ResourceClause::NotResource(patterns)) => !patterns
            .iter()
            .any(|p| p.matches(req.resource, req.context)),
    };
    if !resource_ok {
        return None;
    }
    if !stmt
        .condition()
        .is_none_or(|c| c.evaluate(req.context, stmt.effect(), missing))
    {
        return None;
    }
    Some(principal_match)
}

#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    allow: bool,
    deny: bool,
    grant: Option<PrincipalMatch>,
}

fn evaluate_into(
    policy: &Policy,
    source: PolicySource,
    target: Target<'_, '_>,
    matched: &mut Vec<MatchedStatement>,
    missing: &mut Vec<String>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for (index, stmt) in policy.statements().iter().enumerate() {
        let Some(principal_match) = statement_applies(stmt, target, missing) else {
            continue;
        };
        match stmt.effect() {
            StatementEffect::Allow => {
                outcome.allow = true;
                outcome.grant = outcome
                    .grant
                    .max(Some(principal_match.unwrap_or(PrincipalMatch::Broad)));
            }
            StatementEffect::Deny => outcome.deny = true,
        }
        matched.push(MatchedStatement {
            policy: policy.label().to_owned(),
            source,
            index,
            sid: stmt.sid().map(str::to_owned),
            effect: stmt.effect(),
            principal_match,
        });
    }
    outcome
}

fn evaluate_group(
    policies: &[&Policy],
    source: PolicySource,
    target: Target<'_, '_>,
    matched: &mut Vec<MatchedStatement>,
    missing: &mut Vec<String>,
) -> Outcome {
    policies.iter().fold(Outcome::default(), |acc, policy| {
        let o = evaluate_into(policy, source, target, matched, missing);
        Outcome {
            allow: acc.allow || o.allow,
            deny: acc.deny || o.deny,
            grant: acc.grant.max(o.grant),
        }
    })
}

/// Evaluates a single policy against a request (for simulation and explanations). The
/// policy's role is taken from its kind. The principal is taken to have no permissions
/// boundary (see [`evaluate`] for what a boundary changes).
#[must_use]
pub fn evaluate_policy(req: &Request<'_>, policy: &Policy) -> PolicyResult {
    let action_lower = req.action.to_ascii_lowercase();
    let mut matched = Vec::new();
    let mut missing = Vec::new();
    let source = PolicySource::of_kind(policy.kind());
    let target = Target {
        req,
        action_lower: &action_lower,
        boundary_attached: false,
    };
    let o = evaluate_into(policy, source, target, &mut matched, &mut missing);
    let effect = if o.deny {
        PolicyEffect::Deny
    } else if o.allow {
        PolicyEffect::Allow
    } else {
        PolicyEffect::NotApplicable
    };
    PolicyResult {
        effect,
        matched,
        principal_match: o.grant,
        missing_context_keys: missing,
    }
}

/// Evaluates a request against all the policies that apply to it, following the AWS policy
/// evaluation logic:
///
/// 1. a `Deny` that applies in any policy (identity, resource, boundary, session) is final;
/// 2. cross-account (principal account ≠ `resource_account`): the identity side (identity
///    policies, within the boundary and session policies) AND the resource policy must allow;
/// 3. same account: the identity side allows, OR the resource policy allows by itself —
///    naming the user/session ARN exactly bypasses boundary and session policies, naming the
///    role ARN or `*`/service/provider is still limited by them, and naming only the account
///    delegates to the identity side;
/// 4. a role trust policy ([`PolicyKind::Trust`]) must always allow;
/// 5. the account root user is implicitly allowed in its own account (explicit denies still
///    apply); principals without an account (web identity, services, anonymous) are allowed
///    only by resource policies: `Allow` statements of identity policies passed for them are
///    ignored (their `Deny` statements still apply);
/// 6. a `Deny` statement with `NotPrincipal` applies to every IAM principal that has a
///    permissions boundary ([`PolicySet::boundary`] is set), whatever `NotPrincipal` lists
///    (documented AWS behaviour); otherwise it spares a principal only if every identity of
///    its chain is listed, while an `Allow` with `NotPrincipal` grants only principals none of
///    whose identities is listed ([`PrincipalSpec::excludes`](crate::PrincipalSpec::excludes)).
#[must_use]
pub fn evaluate(req: &Request<'_>, set: &PolicySet<'_>) -> Decision {
    let action_lower = req.action.to_ascii_lowercase();
    let mut matched = Vec::new();
    let mut missing = Vec::new();
    let target = Target {
        req,
        action_lower: &action_lower,
        boundary_attached: set.boundary.is_some(),
    };
    let mut run = |policies: &[&Policy], source| {
        evaluate_group(policies, source, target, &mut matched, &mut missing)
    };
    let identity = run(&set.identity, PolicySource::Identity);
    let boundary = set.boundary.map(|p| run(&[p], PolicySource::Boundary));
    let session = (!set.session.is_empty()).then(|| run(&set.session, PolicySource::Session));
    let resource = set.resource.map(|p| run(&[p], PolicySource::Resource));
    let facts = Facts {
        explicit_deny: identity.deny
            || boundary.is_some_and(|o| o.deny)
            || session.is_some_and(|o| o.deny)
            || resource.is_some_and(|o| o.deny),
        // Only IAM principals have identity-based policies; Deny statements still count.
        identity_allows: identity.allow && req.principal.kind.is_iam(),
        principal_is_root: req.principal.kind == PrincipalKind::Root,
        boundary_allows: boundary.map(|o| o.allow),
        session_allows: session.map(|o| o.allow),
        resource_grant: resource.and_then(|o| o.grant),
        resource_required: set.resource.is_some_and(|p| p.kind() == PolicyKind::Trust),
        cross_account: is_cross_account(req.principal, set.resource_account),
    };
    let effect = combine(&facts);
    Decision {
        effect,
        reason: reason(&facts, effect),
        matched,
        missing_context_keys: missing,
        action: req.action.to_owned(),
        resource: req.resource.to_owned(),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use PrincipalMatch::*;

    fn facts() -> Facts {
        Facts::default()
    }

    #[test]
    fn explicit_deny_overrides_everything() {
        let f = Facts {
            explicit_deny: true,
            identity_allows: true,
            principal_is_root: true,
            resource_grant: Some(Exact),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ExplicitDeny);
        assert_eq!(reason(&f, combine(&f)), Reason::ExplicitDeny);
    }

    #[test]
    fn nothing_allows_is_implicit_deny() {
        assert_eq!(combine(&facts()), Effect::ImplicitDeny);
        assert_eq!(reason(&facts(), Effect::ImplicitDeny), Reason::NoAllow);
    }

    #[test]
    fn identity_allow_same_account() {
        let f = Facts {
            identity_allows: true,
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
        assert_eq!(reason(&f, Effect::Allow), Reason::IdentityAllow);
    }

    #[test]
    fn boundary_and_session_limit_identity() {
        let f = Facts {
            identity_allows: true,
            boundary_allows: Some(false),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::BoundaryDenies);
        let f = Facts {
            identity_allows: true,
            session_allows: Some(false),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::SessionDenies);
        let f = Facts {
            identity_allows: true,
            boundary_allows: Some(true),
            session_allows: Some(true),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
        // A boundary alone grants nothing.
        let f = Facts {
            boundary_allows: Some(true),
            session_allows: Some(true),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
    }

    #[test]
    fn exact_resource_grant_bypasses_guardrails() {
        let f = Facts {
            resource_grant: Some(Exact),
            boundary_allows: Some(false),
            session_allows: Some(false),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
        assert_eq!(reason(&f, Effect::Allow), Reason::ResourceAllow);
    }

    #[test]
    fn role_and_broad_grants_are_limited_by_guardrails() {
        for grant in [Role, Broad] {
            let f = Facts {
                resource_grant: Some(grant),
                ..facts()
            };
            assert_eq!(combine(&f), Effect::Allow, "{grant:?}");
            let f = Facts {
                resource_grant: Some(grant),
                boundary_allows: Some(false),
                ..facts()
            };
            assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
            assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::BoundaryDenies);
            let f = Facts {
                resource_grant: Some(grant),
                session_allows: Some(false),
                ..facts()
            };
            assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
            assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::SessionDenies);
        }
    }

    #[test]
    fn account_grant_delegates_to_identity() {
        let f = Facts {
            resource_grant: Some(Account),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::IdentityRequired);
        let f = Facts {
            resource_grant: Some(Account),
            identity_allows: true,
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
    }

    #[test]
    fn required_resource_policy() {
        let f = Facts {
            resource_required: true,
            identity_allows: true,
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::TrustPolicyDenies);
        let f = Facts {
            resource_required: true,
            resource_grant: Some(Account),
            identity_allows: true,
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
        let f = Facts {
            resource_required: true,
            resource_grant: Some(Account),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        let f = Facts {
            resource_required: true,
            resource_grant: Some(Exact),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
    }

    #[test]
    fn cross_account_needs_both() {
        let base = Facts {
            cross_account: true,
            ..facts()
        };
        let f = Facts {
            identity_allows: true,
            ..base
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        assert_eq!(
            reason(&f, Effect::ImplicitDeny),
            Reason::CrossAccountResourceDenies
        );
        for grant in [Account, Broad, Role, Exact] {
            let f = Facts {
                resource_grant: Some(grant),
                ..base
            };
            assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
            assert_eq!(
                reason(&f, Effect::ImplicitDeny),
                Reason::CrossAccountIdentityDenies
            );
            let f = Facts {
                resource_grant: Some(grant),
                identity_allows: true,
                ..base
            };
            assert_eq!(combine(&f), Effect::Allow, "{grant:?}");
            assert_eq!(reason(&f, Effect::Allow), Reason::CrossAccountAllow);
            let f = Facts {
                resource_grant: Some(grant),
                identity_allows: true,
                boundary_allows: Some(false),
                ..base
            };
            assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
            assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::BoundaryDenies);
        }
    }

    #[test]
    fn root_is_implicitly_allowed_in_its_account() {
        let f = Facts {
            principal_is_root: true,
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
        assert_eq!(reason(&f, Effect::Allow), Reason::RootAllow);
        let f = Facts {
            principal_is_root: true,
            cross_account: true,
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny);
        let f = Facts {
            principal_is_root: true,
            cross_account: true,
            resource_grant: Some(Account),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow);
    }

    /// Exhaustive: `reason` agrees with `combine` on allow/deny for every combination, and
    /// `combine` is monotone in every boolean fact and in the grant strength.
    #[test]
    fn reason_agrees_and_combine_is_monotone() {
        let grants = [None, Some(Account), Some(Broad), Some(Role), Some(Exact)];
        let opts = [None, Some(false), Some(true)];
        let mut all = Vec::new();
        for bits in 0u8..16 {
            for grant in grants {
                for boundary in opts {
                    for session in opts {
                        all.push(Facts {
                            explicit_deny: false,
                            identity_allows: bits & 1 != 0,
                            principal_is_root: bits & 2 != 0,
                            resource_required: bits & 4 != 0,
                            cross_account: bits & 8 != 0,
                            resource_grant: grant,
                            boundary_allows: boundary,
                            session_allows: session,
                        });
                    }
                }
            }
        }
        for f in &all {
            let effect = combine(f);
            let r = reason(f, effect);
            let allow_reasons = [
                Reason::IdentityAllow,
                Reason::ResourceAllow,
                Reason::RootAllow,
                Reason::CrossAccountAllow,
            ];
            assert_eq!(
                effect == Effect::Allow,
                allow_reasons.contains(&r),
                "{f:?} -> {effect:?} {r:?}"
            );
            // More allowing never denies.
            if effect == Effect::Allow {
                let more = [
                    Facts {
                        identity_allows: true,
                        ..*f
                    },
                    Facts {
                        resource_grant: f.resource_grant.max(Some(Account)),
                        ..*f
                    },
                    Facts {
                        resource_grant: Some(Exact),
                        ..*f
                    },
                    Facts {
                        boundary_allows: f.boundary_allows.map(|_| true),
                        ..*f
                    },
                    Facts {
                        session_allows: f.session_allows.map(|_| true),
                        ..*f
                    },
                ];
                for g in more {
                    assert_eq!(combine(&g), Effect::Allow, "{f:?} -> {g:?}");
                }
                assert_eq!(
                    combine(&Facts {
                        explicit_deny: true,
                        ..*f
                    }),
                    Effect::ExplicitDeny
                );
            }
        }
    }
}
