//! IAM policy simulation (`SimulatePrincipalPolicy`, `SimulateCustomPolicy`) and the
//! explanation behind `podiam explain`.
//!
//! The simulation evaluates exactly as a real request would (same engine, same combination
//! rules) with the context the caller supplies; nothing is written.

use std::sync::Arc;

use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::{AwsError, Result};
use crate::names;

/// A `ContextEntries` member.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// ContextKeyName.
    pub name: String,
    /// ContextKeyValues.
    pub values: Vec<String>,
    /// ContextKeyType (`string`, `stringList`, `numeric`, ...).
    pub kind: String,
}

/// Inputs of a simulation.
#[derive(Debug, Clone, Default)]
pub struct SimulateInput {
    /// PolicySourceArn (principal simulation only): a user or role of the caller's account.
    pub policy_source_arn: Option<String>,
    /// PolicyInputList: identity policies (added to the principal's for principal simulation).
    pub policy_inputs: Vec<String>,
    /// PermissionsBoundaryPolicyInputList.
    pub boundary_inputs: Vec<String>,
    /// ActionNames.
    pub actions: Vec<String>,
    /// ResourceArns (default `*`).
    pub resources: Vec<String>,
    /// ResourcePolicy.
    pub resource_policy: Option<String>,
    /// ResourceOwner.
    pub resource_owner: Option<String>,
    /// CallerArn.
    pub caller_arn: Option<String>,
    /// ContextEntries.
    pub context: Vec<ContextEntry>,
}

/// Where a matched statement sits in its source document (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

/// A statement that decided a result.
#[derive(Debug, Clone)]
pub struct SimStatement {
    /// SourcePolicyId.
    pub source_policy_id: String,
    /// SourcePolicyType.
    pub source_policy_type: String,
    /// StartPosition.
    pub start: Option<Position>,
    /// EndPosition.
    pub end: Option<Position>,
}

/// One `EvaluationResults` member.
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// EvalActionName.
    pub action: String,
    /// EvalResourceName.
    pub resource: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: &'static str,
    /// MatchedStatements.
    pub matched: Vec<SimStatement>,
    /// MissingContextValues.
    pub missing: Vec<String>,
    /// Allowed by the permissions boundary, when one was given.
    pub boundary_allowed: Option<bool>,
    /// The engine's explanation.
    pub explanation: String,
}

/// A policy taking part in a simulation, with where it came from.
struct Source {
    id: String,
    kind: String,
    doc: String,
    policy: policy::Policy,
}

const VALID_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

fn parse_source(id: String, kind: &str, doc: &str, pk: policy::PolicyKind) -> Result<Source> {
    let p = policy::Policy::parse(doc, pk)
        .map_err(|e| AwsError::malformed_policy(format!("{id}: {e}")))?;
    Ok(Source {
        policy: p.with_label(id.clone()),
        id,
        kind: kind.to_owned(),
        doc: doc.to_owned(),
    })
}

impl Control {
    /// SimulateCustomPolicy (`principal == false`) or SimulatePrincipalPolicy.
    pub fn simulate(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        input: &SimulateInput,
        principal: bool,
    ) -> Result<Vec<EvalResult>> {
        if input.actions.is_empty() {
            return Err(AwsError::validation(
                "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null",
            ));
        }
        for a in &input.actions {
            names::bounded(a, "actionNames.member", 3, 128)?;
        }
        for e in &input.context {
            if !VALID_TYPES.contains(&e.kind.as_str()) {
                return Err(names::constraint(
                    &e.kind,
                    "contextEntries.member.contextKeyType",
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        VALID_TYPES.join(", ")
                    ),
                ));
            }
            names::bounded(&e.name, "contextEntries.member.contextKeyName", 5, 256)?;
        }
        let account = caller.account().to_owned();
        let mut identity: Vec<Source> = Vec::new();
        let mut boundary: Option<Source> = None;
        let principal_obj;
        if principal {
            let arn = input
                .policy_source_arn
                .as_deref()
                .ok_or_else(|| AwsError::validation("PolicySourceArn is required"))?;
            // Authorized on the stored user or role (its path and case), never on the ARN as typed.
            let (target, found) = self.simulation_target(&account, arn)?;
            self.authorize(
                caller,
                Action::IamSimulatePrincipalPolicy,
                &target,
                meta,
                Keys::none(),
            )?;
            if !found {
                return Err(AwsError::no_such_entity(format!(
                    "the principal {arn} cannot be found"
                )));
            }
            let (p, sources, b) = self.principal_sources(&account, target.arn())?;
            principal_obj = p;
            identity.extend(sources);
            boundary = b;
        } else {
            self.authorize(
                caller,
                Action::IamSimulateCustomPolicy,
                &Target::wildcard(&account),
                meta,
                Keys::none(),
            )?;
            if input.policy_inputs.is_empty() {
                return Err(AwsError::validation(
                    "1 validation error detected: Value null at 'policyInputList' failed to satisfy constraint: Member must not be null",
                ));
            }
            principal_obj = match input.caller_arn.as_deref() {
                Some(a) => principal_from_arn(a, &account)?,
                None => policy::Principal::user(
                    format!("arn:aws:iam::{account}:user/simulated"),
                    account.clone(),
                ),
            };
        }
        for (i, doc) in input.policy_inputs.iter().enumerate() {
            identity.push(parse_source(
                format!("PolicyInputList.{}", i + 1),
                "IAM Policy",
                doc,
                policy::PolicyKind::Identity,
            )?);
        }
        for (i, doc) in input.boundary_inputs.iter().enumerate() {
            boundary = Some(parse_source(
                format!("PermissionsBoundaryPolicyInputList.{}", i + 1),
                "IAM Policy",
                doc,
                policy::PolicyKind::Boundary,
            )?);
        }
        let resource_policy = match &input.resource_policy {
            Some(doc) => Some(parse_source(
                "ResourcePolicy".into(),
                "resource",
                doc,
                policy::PolicyKind::Resource,
            )?),
            None => None,
        };
        let principal_obj = match (principal, input.caller_arn.as_deref()) {
            (true, Some(a)) => principal_from_arn(a, &account)?,
            _ => principal_obj,
        };
        let mut context = policy::Context::new();
        for e in &input.context {
            context.set_multi(e.name.clone(), e.values.clone());
        }
        let resources = if input.resources.is_empty() {
            vec!["*".to_owned()]
        } else {
            input.resources.clone()
        };
        let all: Vec<&Source> = identity
            .iter()
            .chain(boundary.iter())
            .chain(resource_policy.iter())
            .collect();
        let mut out = Vec::new();
        for action in &input.actions {
            for resource in &resources {
                let owner = input
                    .resource_owner
                    .as_deref()
                    .and_then(|o| {
                        names::Arn::parse(o)
                            .map(|a| a.account.to_owned())
                            .or_else(|| Some(o.to_owned()))
                    })
                    .or_else(|| {
                        names::Arn::parse(resource)
                            .map(|a| a.account.to_owned())
                            .filter(|a| !a.is_empty())
                    })
                    .unwrap_or_else(|| account.clone());
                let set = policy::PolicySet {
                    identity: identity.iter().map(|s| &s.policy).collect(),
                    resource: resource_policy.as_ref().map(|s| &s.policy),
                    resource_account: Some(&owner),
                    boundary: boundary.as_ref().map(|s| &s.policy),
                    session: vec![],
                };
                let req = policy::Request {
                    principal: &principal_obj,
                    action,
                    resource,
                    context: &context,
                };
                let d = policy::evaluate(&req, &set);
                let matched = d
                    .deciding_statements()
                    .iter()
                    .map(|m| {
                        let src = all.iter().find(|s| s.id == m.policy);
                        let span = src.and_then(|s| statement_span(&s.doc, m.index));
                        SimStatement {
                            source_policy_id: m.policy.clone(),
                            source_policy_type: src
                                .map_or_else(|| "none".to_owned(), |s| s.kind.clone()),
                            start: span.map(|s| s.0),
                            end: span.map(|s| s.1),
                        }
                    })
                    .collect();
                let boundary_allowed = boundary.as_ref().map(|b| {
                    policy::evaluate_policy(&req, &b.policy).effect == policy::PolicyEffect::Allow
                });
                out.push(EvalResult {
                    action: action.clone(),
                    resource: resource.clone(),
                    decision: match d.effect {
                        policy::Effect::Allow => "allowed",
                        policy::Effect::ExplicitDeny => "explicitDeny",
                        policy::Effect::ImplicitDeny => "implicitDeny",
                    },
                    matched,
                    missing: d.missing_context_keys.clone(),
                    boundary_allowed,
                    explanation: d.explain(),
                });
            }
        }
        Ok(out)
    }

    /// The target of SimulatePrincipalPolicy: the stored user or role `arn` names (same path,
    /// name matched as IAM matches names), and whether it exists.
    fn simulation_target(&self, account: &str, arn: &str) -> Result<(Target, bool)> {
        let parsed = names::Arn::parse(arn)
            .filter(|a| a.service == "iam" && a.region.is_empty() && a.account == account);
        let invalid = || {
            AwsError::invalid_input(format!(
                "invalid policy source arn {arn:?}: must be a user or role of this account"
            ))
        };
        let parsed = parsed.ok_or_else(invalid)?;
        let (kind, rest) = if let Some(r) = parsed.resource.strip_prefix("role") {
            (ResourceKind::Role, r)
        } else if let Some(r) = parsed.resource.strip_prefix("user") {
            (ResourceKind::User, r)
        } else {
            return Err(invalid());
        };
        let (path, name) = rest.rsplit_once('/').ok_or_else(invalid)?;
        let path = format!("{path}/");
        let t = self.db.read();
        let key = (account.to_owned(), name.to_lowercase());
        let stored = match kind {
            ResourceKind::Role => t
                .roles
                .get(&key)
                .filter(|e| e.value.path == path)
                .map(|e| Target::role(account, &e.value)),
            _ => t
                .users
                .get(&key)
                .filter(|e| e.value.path == path)
                .map(|e| Target::user(account, &e.value)),
        };
        Ok(match stored {
            Some(t) => (t, true),
            None => (Target::new_iam(kind, account, &path, name), false),
        })
    }

    /// The identity policies, boundary and engine principal of a user or role ARN.
    fn principal_sources(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<(policy::Principal, Vec<Source>, Option<Source>)> {
        let parsed = names::Arn::parse(arn).filter(|a| a.service == "iam" && a.account == account);
        let parsed = parsed.ok_or_else(|| {
            AwsError::invalid_input(format!(
                "invalid policy source arn {arn:?}: must be a user or role of this account"
            ))
        })?;
        let name = parsed
            .resource
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let t = self.db.read();
        let managed = |a: &str| -> Option<(String, String)> {
            let x = names::Arn::parse(a)?;
            let e = t.policies.get(&(
                x.account.to_owned(),
                x.resource.rsplit('/').next()?.to_lowercase(),
            ))?;
            let v = e
                .value
                .versions
                .iter()
                .find(|v| v.id == e.value.default_version)?;
            Some((a.to_owned(), v.document.clone()))
        };
        let (principal, inline, attached, boundary_arn, kind) =
            if parsed.resource.starts_with("role/") {
                let e = t
                    .roles
                    .get(&(account.to_owned(), name))
                    .map(|e| Arc::clone(&e.value));
                let r = e.ok_or_else(|| {
                    AwsError::no_such_entity(format!("the role {arn} cannot be found"))
                })?;
                let role_arn = names::role_arn(account, &r);
                let p = policy::Principal::assumed_role(
                    format!("arn:aws:sts::{account}:assumed-role/{}/simulation", r.name),
                    role_arn,
                    account.to_owned(),
                );
                (
                    p,
                    r.inline_policies.clone(),
                    r.attached.clone(),
                    r.boundary.clone(),
                    "role",
                )
            } else if parsed.resource.starts_with("user/") {
                let e = t
                    .users
                    .get(&(account.to_owned(), name))
                    .map(|e| Arc::clone(&e.value));
                let u = e.ok_or_else(|| {
                    AwsError::no_such_entity(format!("the user {arn} cannot be found"))
                })?;
                let p = policy::Principal::user(names::user_arn(account, &u), account.to_owned());
                (
                    p,
                    u.inline_policies.clone(),
                    u.attached.clone(),
                    u.boundary.clone(),
                    "user",
                )
            } else {
                return Err(AwsError::invalid_input(format!(
                    "invalid policy source arn {arn:?}: must be a user or role"
                )));
            };
        let mut sources = Vec::new();
        for p in inline {
            sources.push(parse_source(
                p.name.clone(),
                kind,
                &p.document,
                policy::PolicyKind::Identity,
            )?);
        }
        for a in attached {
            if let Some((id, doc)) = managed(&a) {
                sources.push(parse_source(
                    id,
                    "user-managed",
                    &doc,
                    policy::PolicyKind::Identity,
                )?);
            }
        }
        let boundary = match boundary_arn.and_then(|a| managed(&a)) {
            Some((id, doc)) => Some(parse_source(
                id,
                "user-managed",
                &doc,
                policy::PolicyKind::Boundary,
            )?),
            None => None,
        };
        Ok((principal, sources, boundary))
    }
}

/// The engine principal for a `CallerArn`.
fn principal_from_arn(arn: &str, account: &str) -> Result<policy::Principal> {
    let a = names::Arn::parse(arn)
        .ok_or_else(|| AwsError::invalid_input(format!("invalid caller arn {arn:?}")))?;
    let acct = if a.account.is_empty() {
        account
    } else {
        a.account
    };
    if a.service == "iam" && a.resource.starts_with("user/") {
        Ok(policy::Principal::user(arn, acct))
    } else if a.service == "iam" && a.resource == "root" {
        Ok(policy::Principal::root(acct))
    } else if a.service == "sts" && a.resource.starts_with("assumed-role/") {
        let role = a
            .resource
            .trim_start_matches("assumed-role/")
            .split('/')
            .next()
            .unwrap_or_default();
        Ok(policy::Principal::assumed_role(
            arn,
            format!("arn:aws:iam::{acct}:role/{role}"),
            acct,
        ))
    } else {
        Err(AwsError::invalid_input(format!(
            "invalid caller arn {arn:?}: must be a user, root or assumed-role arn"
        )))
    }
}

/// The (start, end) positions of statement `index` in a policy document: the element of the
/// `Statement` array (or the `Statement` object itself). `None` when it cannot be located.
fn statement_span(doc: &str, index: usize) -> Option<(Position, Position)> {
    let b = doc.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let mut str_start = 0usize;
    let mut last_key_at_1: Option<(usize, usize)> = None;
    let mut in_statement: Option<usize> = None; // depth of the Statement value
    let mut elem = 0usize;
    let mut elem_start: Option<usize> = None;
    while i < b.len() {
        let c = *b.get(i)?;
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
                if depth == 1 {
                    last_key_at_1 = Some((str_start, i));
                }
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                str_start = i + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if in_statement.is_none() && depth == 2 {
                    if let Some((s, e)) = last_key_at_1
                        && doc.get(s..e) == Some("Statement")
                    {
                        in_statement = Some(depth);
                        if c == b'{' && index == 0 {
                            elem_start = Some(i);
                        }
                    }
                } else if in_statement == Some(depth - 1) && c == b'{' && elem == index {
                    elem_start = Some(i);
                }
            }
            b'}' | b']' => {
                if let (Some(d), Some(s)) = (in_statement, elem_start) {
                    let closes_elem = (depth == d + 1 && c == b'}')
                        || (depth == d
                            && c == b'}'
                            && b.get(s) == Some(&b'{')
                            && doc.get(s..).is_some());
                    if closes_elem && (depth == d + 1 || index == 0) {
                        return Some((position(doc, s), position(doc, i)));
                    }
                }
                if in_statement.is_some_and(|d| depth == d + 1) && c == b'}' {
                    elem += 1;
                }
                if in_statement == Some(depth) {
                    in_statement = None;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn position(doc: &str, offset: usize) -> Position {
    let before = doc.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |n| offset - n - 1) + 1;
    Position { line, column }
}

#[cfg(test)]
mod tests;
