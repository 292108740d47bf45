//! Access policies: AssociateAccessPolicy, DisassociateAccessPolicy,
//! ListAssociatedAccessPolicies, ListAccessPolicies.

use super::params::{
    ACCESS_POLICIES, AccessPolicy, AccessScope, decode_token, encode_token, node_identity,
    page_size, policy_arn, scope,
};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::error::{AwsError, Result};
use crate::model;

/// The condition keys of an association: `eks:policyArn`, `eks:accessScope` and, for a
/// namespace scope, `eks:namespaces`.
fn scope_keys(policy: &str, scope: &str, namespaces: &[String]) -> Keys {
    let keys = Keys::none()
        .with("eks:policyArn", policy)
        .with("eks:accessScope", scope);
    if namespaces.is_empty() {
        keys
    } else {
        keys.with_multi("eks:namespaces", namespaces.to_vec())
    }
}

impl Control {
    /// AssociateAccessPolicy: associates `policy` with the entry at `scope`, or replaces the
    /// scope of a policy already associated (its `associatedAt` stays).
    pub async fn associate_access_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        principal_arn: &str,
        policy: &str,
        requested: &AccessScope,
    ) -> Result<(String, model::AssociatedAccessPolicy)> {
        let policy = policy_arn(policy)?;
        let s = scope(requested)?;
        let (a, assoc) = self
            .update_entry(
                caller,
                meta,
                Action::EksAssociateAccessPolicy,
                cluster,
                principal_arn,
                |_| scope_keys(policy, &s.kind, &s.namespaces),
                |a, now_ms| {
                    if node_identity(&a.kind).is_some() {
                        return Err(AwsError::invalid_parameter(format!(
                            "Access policies can't be associated with an access entry of type {}.",
                            a.kind
                        )));
                    }
                    Ok(
                        match a.policies.iter_mut().find(|p| p.policy_arn == policy) {
                            Some(p) => {
                                p.scope.clone_from(&s.kind);
                                p.namespaces.clone_from(&s.namespaces);
                                p.modified_ms = now_ms;
                                p.clone()
                            }
                            None => {
                                let p = model::AssociatedAccessPolicy {
                                    policy_arn: policy.to_owned(),
                                    scope: s.kind.clone(),
                                    namespaces: s.namespaces.clone(),
                                    associated_ms: now_ms,
                                    modified_ms: now_ms,
                                };
                                a.policies.push(p.clone());
                                a.policies.sort_by(|x, y| x.policy_arn.cmp(&y.policy_arn));
                                p
                            }
                        },
                    )
                },
            )
            .await?;
        Ok((a.principal_arn, assoc))
    }

    /// DisassociateAccessPolicy.
    pub async fn disassociate_access_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        principal_arn: &str,
        policy: &str,
    ) -> Result<()> {
        self.update_entry(
            caller,
            meta,
            Action::EksDisassociateAccessPolicy,
            cluster,
            principal_arn,
            |stored| {
                // The scope keys are those of the association being removed, if there is one.
                match stored.and_then(|s| s.policies.iter().find(|p| p.policy_arn == policy)) {
                    Some(p) => scope_keys(policy, &p.scope, &p.namespaces),
                    None => Keys::none().with("eks:policyArn", policy),
                }
            },
            |a, _| {
                let before = a.policies.len();
                a.policies.retain(|p| p.policy_arn != policy);
                if a.policies.len() == before {
                    return Err(AwsError::resource_not_found(format!(
                        "The access policy {policy} is not associated with the access entry of {} in cluster {cluster}.",
                        a.principal_arn
                    )));
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// ListAssociatedAccessPolicies: `(principal ARN, page, next token)`, in policy ARN order.
    pub fn list_associated_access_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        principal_arn: &str,
        max_results: Option<i64>,
        next: Option<&str>,
    ) -> Result<(String, Vec<model::AssociatedAccessPolicy>, Option<String>)> {
        let max = page_size(max_results)?;
        let after = decode_token(next)?;
        let e = self.entry_for(
            caller,
            meta,
            Action::EksListAssociatedAccessPolicies,
            cluster,
            principal_arn,
            |_| Keys::none(),
        )?;
        let rest: Vec<&model::AssociatedAccessPolicy> = e
            .value
            .policies
            .iter()
            .filter(|p| after.as_deref().is_none_or(|a| p.policy_arn.as_str() > a))
            .collect();
        let page: Vec<model::AssociatedAccessPolicy> =
            rest.iter().take(max).map(|p| (*p).clone()).collect();
        let token = (rest.len() > max)
            .then(|| page.last().map(|p| encode_token(&p.policy_arn)))
            .flatten();
        Ok((e.value.principal_arn.clone(), page, token))
    }

    /// ListAccessPolicies: the AWS-managed access policies, `(name, ARN)` in name order.
    pub fn list_access_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        max_results: Option<i64>,
        next: Option<&str>,
    ) -> Result<(Vec<AccessPolicy>, Option<String>)> {
        self.authorize(
            caller,
            Action::EksListAccessPolicies,
            &Target::wildcard(caller.account()),
            meta,
            Keys::none(),
        )?;
        let max = page_size(max_results)?;
        let after = decode_token(next)?;
        let rest: Vec<AccessPolicy> = ACCESS_POLICIES
            .iter()
            .filter(|(n, _)| after.as_deref().is_none_or(|a| *n > a))
            .copied()
            .collect();
        let page: Vec<_> = rest.iter().take(max).copied().collect();
        let token = (rest.len() > max)
            .then(|| page.last().map(|(n, _)| encode_token(n)))
            .flatten();
        Ok((page, token))
    }
}
