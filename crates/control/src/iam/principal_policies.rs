//! The policies of roles and users, written once over [`Principal`]: inline policies,
//! attached managed policies and permissions boundaries.

use podiam_policy as policy;

use super::limits;
use super::page::{Page, PageReq, paginate};
use super::principal::Principal;
use super::validate::{policy_chars, validate_policy};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys};
use crate::error::{AwsError, Result};
use crate::model;
use crate::names;

/// An attached managed policy, as ListAttached*Policies reports it.
#[derive(Debug, Clone)]
pub struct AttachedPolicy {
    /// Policy name.
    pub name: String,
    /// Policy ARN.
    pub arn: String,
}

impl Control {
    /// Put{Role,User}Policy.
    pub(super) async fn put_inline_policy<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        policy_name: &str,
        doc: String,
    ) -> Result<()> {
        names::policy_name(policy_name, "policyName")?;
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            P::INLINE_CHARS,
            "PolicySize",
        )?;
        self.update_principal::<P>(caller, meta, action, name, Keys::none(), |e| {
            put_inline(e.inline_policies_mut(), policy_name, doc, P::INLINE_CHARS)
        })
        .await
        .map(|_| ())
    }

    /// Get{Role,User}Policy: the entity's name and the policy.
    pub(super) fn get_inline_policy<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        policy_name: &str,
    ) -> Result<(String, model::InlinePolicy)> {
        names::policy_name(policy_name, "policyName")?;
        let (e, _) = self.principal_for::<P>(caller, meta, action, name, Keys::none())?;
        let p = e
            .inline_policies()
            .iter()
            .find(|p| p.name == policy_name)
            .cloned();
        let p = p.ok_or_else(|| {
            AwsError::no_such_entity(format!(
                "the {} policy with name {policy_name} cannot be found",
                P::ENTITY
            ))
        })?;
        Ok((e.name().to_owned(), p))
    }

    /// Delete{Role,User}Policy.
    pub(super) async fn delete_inline_policy<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        policy_name: &str,
    ) -> Result<()> {
        names::policy_name(policy_name, "policyName")?;
        self.update_principal::<P>(caller, meta, action, name, Keys::none(), |e| {
            delete_inline(e.inline_policies_mut(), policy_name, P::ENTITY)
        })
        .await
        .map(|_| ())
    }

    /// List{Role,User}Policies: names.
    pub(super) fn list_inline_policies<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        page: &PageReq,
    ) -> Result<Page<String>> {
        let (e, _) = self.principal_for::<P>(caller, meta, action, name, Keys::none())?;
        let mut names: Vec<String> = e.inline_policies().iter().map(|p| p.name.clone()).collect();
        names.sort();
        paginate(names.into_iter().map(|n| (n.clone(), n)), page)
    }

    /// Attach{Role,User}Policy.
    pub(super) async fn attach_policy<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let (_, keys) = self.attachable(caller.account(), policy_arn)?;
        // Resolved again under the writer lock: a DeletePolicy that committed since the lookup
        // above must not leave this attachment naming a policy that no longer exists (whoever
        // created one under that name next would decide what it grants).
        self.update_principal_with::<P>(caller, meta, action, name, keys, |e| {
            let (found, _) = self.attachable(caller.account(), policy_arn)?;
            let found = found?;
            attach(e.attached_mut(), &found, P::ATTACHED_QUOTA)?;
            Ok(vec![self.policy_touch(caller.account(), &found)?])
        })
        .await
        .map(|_| ())
    }

    /// Detach{Role,User}Policy.
    pub(super) async fn detach_policy<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let keys = Keys::none().with("iam:PolicyARN", policy_arn);
        self.update_principal::<P>(caller, meta, action, name, keys, |e| {
            detach(e.attached_mut(), policy_arn)
        })
        .await
        .map(|_| ())
    }

    /// ListAttached{Role,User}Policies.
    pub(super) fn list_attached_policies<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        page: &PageReq,
    ) -> Result<Page<AttachedPolicy>> {
        let (e, _) = self.principal_for::<P>(caller, meta, action, name, Keys::none())?;
        let items: Vec<(String, AttachedPolicy)> = e
            .attached()
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    AttachedPolicy {
                        name: a.rsplit('/').next().unwrap_or(a).to_owned(),
                        arn: a.clone(),
                    },
                )
            })
            .collect();
        paginate(items.into_iter(), page)
    }

    /// Put{Role,User}PermissionsBoundary.
    pub(super) async fn put_boundary<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        boundary: &str,
    ) -> Result<()> {
        let (_, keys) = self.boundary_arg(caller.account(), boundary)?;
        // Resolved again under the writer lock, as for attachments.
        self.update_principal_with::<P>(caller, meta, action, name, keys, |e| {
            let (found, _) = self.boundary_arg(caller.account(), boundary)?;
            let found = found?;
            let touch = self.policy_touch(caller.account(), &found)?;
            *e.boundary_mut() = Some(found);
            Ok(vec![touch])
        })
        .await
        .map(|_| ())
    }

    /// Delete{Role,User}PermissionsBoundary.
    pub(super) async fn delete_boundary<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
    ) -> Result<()> {
        self.update_principal::<P>(caller, meta, action, name, Keys::none(), |e| {
            e.boundary_mut().take().map(|_| ()).ok_or_else(|| {
                AwsError::no_such_entity(format!(
                    "the {} {name} has no permissions boundary",
                    P::ENTITY
                ))
            })
        })
        .await
        .map(|_| ())
    }
}

fn delete_inline(list: &mut Vec<model::InlinePolicy>, name: &str, entity: &str) -> Result<()> {
    let before = list.len();
    list.retain(|p| p.name != name);
    if list.len() == before {
        return Err(AwsError::no_such_entity(format!(
            "the {entity} policy with name {name} cannot be found"
        )));
    }
    Ok(())
}

fn put_inline(
    list: &mut Vec<model::InlinePolicy>,
    name: &str,
    doc: String,
    max_total: usize,
) -> Result<()> {
    let others: usize = list
        .iter()
        .filter(|p| p.name != name)
        .map(|p| policy_chars(&p.document))
        .sum();
    if others + policy_chars(&doc) > max_total {
        return Err(AwsError::limit_exceeded(format!(
            "maximum policy size of {max_total} bytes exceeded"
        )));
    }
    match list.iter_mut().find(|p| p.name == name) {
        Some(p) => p.document = doc,
        None => list.push(model::InlinePolicy {
            name: name.to_owned(),
            document: doc,
        }),
    }
    Ok(())
}

fn attach(list: &mut Vec<String>, arn: &str, quota: &str) -> Result<()> {
    if list.iter().any(|a| a == arn) {
        return Ok(());
    }
    if list.len() >= limits::ATTACHED_PER_ENTITY {
        return Err(AwsError::limit_exceeded(format!(
            "cannot exceed quota for {quota}: {}",
            limits::ATTACHED_PER_ENTITY
        )));
    }
    list.push(arn.to_owned());
    Ok(())
}

fn detach(list: &mut Vec<String>, arn: &str) -> Result<()> {
    let before = list.len();
    list.retain(|a| a != arn);
    if list.len() == before {
        return Err(AwsError::no_such_entity(format!(
            "policy {arn} was not found"
        )));
    }
    Ok(())
}
