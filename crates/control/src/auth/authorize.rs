//! Authorization of every action by the policy engine: the caller's identity policies,
//! boundary and session policies, gathered and parsed once, and the decision with its reason.

use std::sync::Arc;

use podiam_policy as policy;

use super::caller::{Caller, RequestMeta, iso8601};
use crate::Control;
use crate::authz::{Action, Keys, Target};
use crate::error::{AwsError, Result};
use crate::model;

impl Control {
    /// Authorize `action` on `target` for `caller`, with the request's condition keys. The only
    /// way a service authorizes a call: the action comes from the table of [`crate::authz`] and
    /// the target from a stored entity. `Err(AccessDenied)` saying why when not allowed.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        target: &Target,
        meta: &RequestMeta,
        keys: Keys,
    ) -> Result<()> {
        let outcome = self.decide(caller, action, target, None, meta, &keys)?;
        if outcome.allowed {
            Ok(())
        } else {
            Err(outcome.denied(&caller.arn(), action, target))
        }
    }

    /// The identity side of a decision, optionally together with a resource-based policy (a
    /// role's trust policy).
    pub(crate) fn decide(
        &self,
        caller: &Caller,
        action: Action,
        target: &Target,
        resource_policy: Option<&policy::Policy>,
        meta: &RequestMeta,
        keys: &Keys,
    ) -> Result<Outcome> {
        debug_assert!(
            target.fits(action),
            "{} authorized on a {:?}",
            action.name(),
            target.kind()
        );
        if !target.fits(action) {
            return Err(AwsError::service_failure());
        }
        for (k, _) in keys.entries() {
            debug_assert!(
                action.declares(k),
                "{} sets undeclared key {k}",
                action.name()
            );
        }
        #[cfg(test)]
        record::push(action, target, keys);
        if let Caller::Root { account } = caller
            && resource_policy.is_none()
        {
            let allowed = account == target.account();
            return Ok(Outcome {
                allowed,
                reason: if allowed {
                    policy::Reason::RootAllow
                } else {
                    policy::Reason::NoAllow
                },
                deny_source: None,
            });
        }
        let ctx_parts = self.identity_parts(caller)?;
        let mut context = self.base_context(caller, ctx_parts.role.as_deref(), meta);
        resource_context(&mut context, target);
        for (k, v) in keys.entries() {
            context.set_multi(k, v.clone());
        }
        let principal = principal_of(caller, ctx_parts.role.as_deref());
        let identity: Vec<&policy::Policy> = ctx_parts.identity.iter().map(AsRef::as_ref).collect();
        let session: Vec<&policy::Policy> = ctx_parts.session.iter().map(AsRef::as_ref).collect();
        let set = policy::PolicySet {
            identity,
            resource: resource_policy,
            resource_account: Some(target.account()),
            boundary: ctx_parts.boundary.as_deref(),
            session,
        };
        let req = policy::Request {
            principal: &principal,
            action: action.name(),
            resource: target.arn(),
            context: &context,
        };
        Ok(Outcome::of(&policy::evaluate(&req, &set)))
    }

    /// The request context every authorization sees.
    pub(crate) fn base_context(
        &self,
        caller: &Caller,
        role: Option<&model::Role>,
        meta: &RequestMeta,
    ) -> policy::Context {
        let mut c = policy::Context::default();
        let now = self.now();
        c.set("aws:CurrentTime", iso8601(now));
        c.set("aws:EpochTime", now.to_string());
        c.set(
            "aws:SecureTransport",
            if meta.secure_transport {
                "true"
            } else {
                "false"
            },
        );
        if let Some(ip) = meta.source_ip {
            c.set("aws:SourceIp", ip.to_string());
        }
        c.set(
            "aws:PrincipalArn",
            &match caller {
                Caller::Session(s) => s.role_arn(),
                other => other.arn(),
            },
        );
        c.set("aws:PrincipalAccount", caller.account());
        c.set("aws:PrincipalType", caller.principal_type());
        c.set("aws:userid", caller.user_id());
        c.set("aws:RequestedRegion", &self.config.region);
        // Every call podiam authorizes comes from the principal itself, never from a service
        // acting on its behalf: `aws:ViaAWSService` is false and `aws:CalledVia` absent.
        c.set("aws:ViaAWSService", "false");
        match caller {
            Caller::User { user, .. } => {
                c.set("aws:username", &user.name);
            }
            Caller::Session(s) => {
                c.set("aws:TokenIssueTime", iso8601(s.issued));
                c.set("aws:MultiFactorAuthPresent", "false");
                if let Some(si) = &s.source_identity {
                    c.set("aws:SourceIdentity", si);
                }
                if let Some(f) = &s.federated_provider {
                    c.set("aws:FederatedProvider", f);
                }
            }
            Caller::Root { .. } => {}
        }
        for (k, v) in caller.principal_tags(role) {
            c.set(format!("aws:PrincipalTag/{k}"), &v);
        }
        c
    }

    fn identity_parts(&self, caller: &Caller) -> Result<IdentityParts> {
        let t = self.db.read();
        let mut parts = IdentityParts::default();
        let parse = |doc: &str,
                     label: String,
                     kind: policy::PolicyKind|
         -> Option<Arc<policy::Policy>> {
            match self.policies.get(doc, kind, &label) {
                Ok(p) => Some(p),
                Err(e) => {
                    // Documents are validated when written; one that no longer parses (a
                    // store written by another version) reads as denying everything:
                    // skipping it could drop a Deny that another policy's Allow then wins.
                    tracing::error!(error = %e, policy = %label, "stored policy failed to parse; it denies everything");
                    deny_all().ok()
                }
            }
        };
        // A managed policy of the principal's own account, named by its exact canonical ARN
        // (path and case as stored); anything else reads as absent.
        let own = caller.account().to_owned();
        let managed = |arn: &str| -> Option<(String, String)> {
            let a = crate::names::Arn::parse(arn)?;
            if !a.resource.starts_with("policy/") || a.account != own {
                return None;
            }
            let name = a.resource.rsplit('/').next()?.to_lowercase();
            let e = t.policies.get(&(a.account.to_owned(), name))?;
            if crate::names::policy_arn(a.account, &e.value) != arn {
                return None;
            }
            let v = e
                .value
                .versions
                .iter()
                .find(|v| v.id == e.value.default_version)?;
            Some((arn.to_owned(), v.document.clone()))
        };
        let (inline, attached, boundary) = match caller {
            Caller::Root { .. } => return Ok(parts),
            Caller::User { account, user } => {
                let u = t
                    .users
                    .get(&(account.clone(), user.name.to_lowercase()))
                    .map(|e| Arc::clone(&e.value));
                let u = u
                    .filter(|u| u.id == user.id)
                    .ok_or_else(AwsError::invalid_client_token_id)?;
                (
                    u.inline_policies.clone(),
                    u.attached.clone(),
                    u.boundary.clone(),
                )
            }
            Caller::Session(s) => {
                // Authentication refuses sessions of deleted roles; one deleted since then is
                // refused here, never evaluated without its policies.
                let r = t
                    .roles
                    .get(&(s.account.clone(), s.role_name.to_lowercase()))
                    .map(|e| Arc::clone(&e.value));
                let r = r
                    .filter(|r| r.id == s.role_id)
                    .ok_or_else(AwsError::invalid_client_token_id)?;
                if let Some(p) = &s.policy {
                    parts.session.extend(parse(
                        p,
                        "session policy".into(),
                        policy::PolicyKind::Session,
                    ));
                }
                for (i, arn) in s.policy_arns.iter().enumerate() {
                    // Bound to the policy that existed at mint time (sessions minted before
                    // the ids were recorded carry none and are read by ARN).
                    if let Some(id) = s.policy_ids.get(i) {
                        let now_id = crate::names::Arn::parse(arn).and_then(|a| {
                            let name = a.resource.rsplit('/').next()?.to_lowercase();
                            t.policies
                                .get(&(a.account.to_owned(), name))
                                .map(|e| e.value.id.clone())
                        });
                        if id.is_empty() || now_id.as_deref() != Some(id.as_str()) {
                            continue;
                        }
                    }
                    if let Some((label, doc)) = managed(arn) {
                        parts
                            .session
                            .extend(parse(&doc, label, policy::PolicyKind::Session));
                    }
                }
                if (s.policy.is_some() || !s.policy_arns.is_empty()) && parts.session.is_empty() {
                    // Session policies were given but none can be read: allow nothing.
                    parts.session.push(deny_all()?);
                }
                let out = (
                    r.inline_policies.clone(),
                    r.attached.clone(),
                    r.boundary.clone(),
                );
                parts.role = Some(r);
                out
            }
        };
        for p in &inline {
            parts.identity.extend(parse(
                &p.document,
                format!("inline policy {}", p.name),
                policy::PolicyKind::Identity,
            ));
        }
        for arn in &attached {
            if let Some((label, doc)) = managed(arn) {
                parts
                    .identity
                    .extend(parse(&doc, label, policy::PolicyKind::Identity));
            }
        }
        if let Some(arn) = boundary {
            parts.boundary = Some(
                match managed(&arn)
                    .and_then(|(label, doc)| parse(&doc, label, policy::PolicyKind::Boundary))
                {
                    Some(p) => p,
                    None => deny_all()?,
                },
            );
        }
        Ok(parts)
    }
}

#[derive(Default)]
struct IdentityParts {
    identity: Vec<Arc<policy::Policy>>,
    session: Vec<Arc<policy::Policy>>,
    boundary: Option<Arc<policy::Policy>>,
    role: Option<Arc<model::Role>>,
}

/// Parsed policies by (kind, label, document): stored documents are parsed once, not on every
/// request. Bounded: cleared when it grows past [`PolicyCache::MAX`] entries.
#[derive(Default)]
pub(crate) struct PolicyCache {
    /// foldhash: the key holds the whole document, hashed on every authorization (SipHash of
    /// a trust policy was over a thousand instructions of each AssumeRoleWithWebIdentity).
    map: parking_lot::RwLock<
        std::collections::HashMap<
            (String, String),
            Arc<policy::Policy>,
            foldhash::fast::RandomState,
        >,
    >,
}

impl PolicyCache {
    const MAX: usize = 16_384;

    /// The parsed policy of `doc`, labelled `label`.
    pub(crate) fn get(
        &self,
        doc: &str,
        kind: policy::PolicyKind,
        label: &str,
    ) -> Result<Arc<policy::Policy>, policy::PolicyError> {
        let key = (format!("{kind:?}/{label}"), doc.to_owned());
        if let Some(p) = self.map.read().get(&key) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(policy::Policy::parse(doc, kind)?.with_label(label.to_owned()));
        let mut map = self.map.write();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(key, Arc::clone(&p));
        Ok(p)
    }
}

/// A policy that denies everything: stands in for policies that exist but cannot be read.
fn deny_all() -> Result<Arc<policy::Policy>> {
    policy::Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        policy::PolicyKind::Identity,
    )
    .map(Arc::new)
    .map_err(|_| AwsError::service_failure())
}

/// The policy-engine principal of a caller.
pub(crate) fn principal_of(caller: &Caller, role: Option<&model::Role>) -> policy::Principal {
    match caller {
        Caller::Root { account } => policy::Principal {
            kind: policy::PrincipalKind::Root,
            arn: caller.arn(),
            account: Some(account.clone()),
            role_arn: None,
            federated: None,
            service: None,
        },
        Caller::User { account, .. } => policy::Principal {
            kind: policy::PrincipalKind::User,
            arn: caller.arn(),
            account: Some(account.clone()),
            role_arn: None,
            federated: None,
            service: None,
        },
        Caller::Session(s) => policy::Principal {
            kind: policy::PrincipalKind::AssumedRole,
            arn: s.arn(),
            account: Some(s.account.clone()),
            role_arn: Some(match role {
                Some(r) => format!("arn:aws:iam::{}:role{}{}", s.account, r.path, r.name),
                None => s.role_arn(),
            }),
            federated: None,
            service: None,
        },
    }
}

/// A decision and why, for the AccessDenied message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    reason: policy::Reason,
    deny_source: Option<policy::PolicySource>,
}

impl Outcome {
    pub(crate) fn of(d: &policy::Decision) -> Self {
        let deny_source = (d.reason == policy::Reason::ExplicitDeny)
            .then(|| d.deciding_statements().first().map(|m| m.source))
            .flatten();
        Self {
            allowed: d.is_allowed(),
            reason: d.reason,
            deny_source,
        }
    }

    /// AccessDenied in AWS's current form, which says why.
    pub(crate) fn denied(&self, principal: &str, action: Action, target: &Target) -> AwsError {
        let a = action.name();
        let why = match (self.reason, self.deny_source) {
            (policy::Reason::ExplicitDeny, source) => {
                let kind = match source {
                    Some(policy::PolicySource::Resource) => "a resource-based policy",
                    Some(policy::PolicySource::Boundary) => "a permissions boundary",
                    Some(policy::PolicySource::Session) => "a session policy",
                    _ => "an identity-based policy",
                };
                format!("with an explicit deny in {kind}")
            }
            (policy::Reason::BoundaryDenies, _) => {
                format!("because no permissions boundary allows the {a} action")
            }
            (policy::Reason::SessionDenies, _) => {
                format!("because no session policy allows the {a} action")
            }
            (policy::Reason::TrustPolicyDenies | policy::Reason::CrossAccountResourceDenies, _) => {
                format!("because no resource-based policy allows the {a} action")
            }
            _ => format!("because no identity-based policy allows the {a} action"),
        };
        AwsError::access_denied(format!(
            "User: {principal} is not authorized to perform: {a} on resource: {} {why}",
            target.arn()
        ))
    }
}

/// The keys of the resource: `aws:ResourceAccount`, `aws:ResourceTag/*` (and `iam:ResourceTag/*`
/// on IAM resources).
pub(crate) fn resource_context(c: &mut policy::Context, target: &Target) {
    resource_context_for(c, target, |_| true);
}

/// [`resource_context`], leaving out the keys `wanted` says no to.
pub(crate) fn resource_context_for(
    c: &mut policy::Context,
    target: &Target,
    wanted: impl Fn(&str) -> bool,
) {
    if wanted("aws:ResourceAccount") {
        c.set("aws:ResourceAccount", target.account());
    }
    for (k, v) in target.tags() {
        let key = format!("aws:ResourceTag/{k}");
        if wanted(&key) {
            c.set(key, v);
        }
        if target.iam() {
            let key = format!("iam:ResourceTag/{k}");
            if wanted(&key) {
                c.set(key, v);
            }
        }
    }
}

/// What the authorizations of a test thread saw, so the table test can prove that the ARN is
/// canonical and each declared key reaches the engine.
#[cfg(test)]
pub(crate) mod record {
    use std::cell::RefCell;

    use crate::authz::{Action, Keys, Target};

    thread_local! {
        static SEEN: RefCell<Vec<(Action, Target, Keys)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn push(action: Action, target: &Target, keys: &Keys) {
        SEEN.with(|s| s.borrow_mut().push((action, target.clone(), keys.clone())));
    }

    /// Everything recorded since the last call.
    pub(crate) fn take() -> Vec<(Action, Target, Keys)> {
        SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}
