//! Evaluation: one statement, one policy, and the combination of all policies that apply
//! to a request (AWS "policy evaluation logic").
//!
//! The combination rules live in [`combine`]; every other function only gathers facts.

use crate::context::Context;
use crate::effect::StatementEffect;
use crate::policy::{ActionClause, Policy, PolicyKind, PrincipalClause, ResourceClause, Statement};
use crate::principal::{Principal, PrincipalKind, PrincipalMatch};

mod decision;

pub use decision::{Decision, Reason};

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
mod tests;
