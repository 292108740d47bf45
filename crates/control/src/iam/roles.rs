//! IAM roles: Create, Get, List, Update, Delete, and each operation on a role's policies,
//! boundary and tags (written once for roles and users in `principal`).

use std::sync::Arc;

use podiam_policy as policy;

use super::limits;
use super::page::{Page, PageReq};
use super::principal::{check_no_policies, creation_keys};
use super::principal_policies::AttachedPolicy;
use super::validate::{validate_policy, validate_tags};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::Result;
use crate::model::{self, Role, Tag, kind};
use crate::names::{self, role_arn};
use crate::state::Change;

/// Inputs of CreateRole.
#[derive(Debug, Clone, Default)]
pub struct CreateRole {
    /// RoleName.
    pub name: String,
    /// Path (default `/`).
    pub path: Option<String>,
    /// AssumeRolePolicyDocument.
    pub trust_policy: String,
    /// Description.
    pub description: Option<String>,
    /// MaxSessionDuration (default 3600).
    pub max_session_duration: Option<i64>,
    /// PermissionsBoundary.
    pub boundary: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

impl Control {
    /// CreateRole.
    pub async fn create_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        input: CreateRole,
    ) -> Result<Arc<Role>> {
        let account = caller.account().to_owned();
        names::entity_name(&input.name, "roleName", 64)?;
        let path = input.path.unwrap_or_else(|| "/".into());
        names::iam_path(&path)?;
        // Only the account root may stand in for AWS and make its reserved roles (podiam has
        // no IAM Identity Center to make them); anyone else allowed iam:CreateRole may not.
        if !matches!(caller, Caller::Root { .. }) {
            names::unreserved_role(&path, &input.name)?;
        }
        if let Some(d) = &input.description {
            names::role_description(d)?;
        }
        let max = input.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max) {
            return Err(names::constraint(
                &max.to_string(),
                "maxSessionDuration",
                "Member must have value less than or equal to 43200 and greater than or equal to 3600",
            ));
        }
        let trust = validate_policy(
            &input.trust_policy,
            policy::PolicyKind::Trust,
            limits::TRUST_POLICY_CHARS,
            "ACLSizePerRole",
        )?;
        let boundary = self.new_boundary(&account, input.boundary.as_deref())?;
        validate_tags(&input.tags)?;
        let target = Target::new_iam(ResourceKind::Role, &account, &path, &input.name);
        let keys = creation_keys(&input.tags, boundary.as_deref());
        self.authorize(caller, Action::IamCreateRole, &target, meta, keys)?;
        let guard = self.db.write().await;
        // The boundary again under the writer lock: a DeletePolicy committed since the lookup
        // above must not leave the new role bounded by a policy that no longer exists.
        self.new_boundary(&account, boundary.as_deref())?;
        let mut refs = self.check_trust_principals(&trust, None)?;
        if let Some(b) = &boundary {
            refs.push(self.policy_touch(&account, b)?);
        }
        self.check_room::<Role>(&account, &input.name)?;
        let id = input.name.to_lowercase();
        let now = self.now();
        let role = Role {
            name: input.name,
            id: names::unique_id("AROA"),
            path,
            trust_policy: input.trust_policy,
            description: input.description,
            max_session_duration: max,
            created: now,
            tags: input.tags,
            inline_policies: vec![],
            attached: vec![],
            boundary,
            revoked_before: None,
        };
        let mut changes = vec![Change::insert(kind::ROLE, &account, &id, &role)?];
        changes.extend(refs);
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(role))
    }

    /// GetRole.
    pub fn get_role(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<Arc<Role>> {
        Ok(self
            .principal_for::<Role>(caller, meta, Action::IamGetRole, name, Keys::none())?
            .0)
    }

    /// ListRoles.
    pub fn list_roles(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        path_prefix: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<Arc<Role>>> {
        self.list_principals::<Role>(caller, meta, Action::IamListRoles, path_prefix, page)
    }

    /// UpdateRole (description, max session duration).
    pub async fn update_role_settings(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        description: Option<String>,
        max_session_duration: Option<i64>,
    ) -> Result<()> {
        if let Some(d) = &description {
            names::role_description(d)?;
        }
        if let Some(m) = max_session_duration
            && !(3600..=43200).contains(&m)
        {
            return Err(names::constraint(
                &m.to_string(),
                "maxSessionDuration",
                "Member must have value less than or equal to 43200 and greater than or equal to 3600",
            ));
        }
        self.update_principal::<Role>(
            caller,
            meta,
            Action::IamUpdateRole,
            name,
            Keys::none(),
            |r| {
                if let Some(d) = description {
                    r.description = Some(d);
                }
                if let Some(m) = max_session_duration {
                    r.max_session_duration = m;
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// UpdateAssumeRolePolicy.
    pub async fn update_assume_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        doc: String,
    ) -> Result<()> {
        let trust = validate_policy(
            &doc,
            policy::PolicyKind::Trust,
            limits::TRUST_POLICY_CHARS,
            "ACLSizePerRole",
        )?;
        // The principals it names are checked once authorized, under the writer lock, and
        // asserted by the commit (see `check_trust_principals`).
        let account = caller.account();
        self.update_principal_with::<Role>(
            caller,
            meta,
            Action::IamUpdateAssumeRolePolicy,
            name,
            Keys::none(),
            |r| {
                let own = r.name.to_lowercase();
                let refs = self.check_trust_principals(&trust, Some((account, own.as_str())))?;
                r.trust_policy = doc;
                Ok(refs)
            },
        )
        .await
        .map(|_| ())
    }

    /// DeleteRole.
    pub async fn delete_role(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<()> {
        let guard = self.db.write().await;
        let (role, version) =
            self.principal_for::<Role>(caller, meta, Action::IamDeleteRole, name, Keys::none())?;
        check_no_policies(&*role)?;
        let now = self.now();
        let mut changes = self.trust_rewrites(
            &role_arn(caller.account(), &role),
            &role.id,
            Some(&name.to_lowercase()),
        )?;
        changes.push(Change::delete(
            kind::ROLE,
            caller.account(),
            &name.to_lowercase(),
            version,
        ));
        self.db.commit(&guard, changes, now).await
    }

    /// TagRole.
    pub async fn tag_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        tags: Vec<Tag>,
    ) -> Result<()> {
        self.tag_principal::<Role>(caller, meta, Action::IamTagRole, name, tags)
            .await
    }

    /// UntagRole.
    pub async fn untag_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        keys: Vec<String>,
    ) -> Result<()> {
        self.untag_principal::<Role>(caller, meta, Action::IamUntagRole, name, keys)
            .await
    }

    /// ListRoleTags.
    pub fn list_role_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<Vec<Tag>> {
        self.list_principal_tags::<Role>(caller, meta, Action::IamListRoleTags, name)
    }

    /// PutRolePolicy.
    pub async fn put_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_name: &str,
        doc: String,
    ) -> Result<()> {
        self.put_inline_policy::<Role>(
            caller,
            meta,
            Action::IamPutRolePolicy,
            role,
            policy_name,
            doc,
        )
        .await
    }

    /// GetRolePolicy.
    pub fn get_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_name: &str,
    ) -> Result<(String, model::InlinePolicy)> {
        self.get_inline_policy::<Role>(caller, meta, Action::IamGetRolePolicy, role, policy_name)
    }

    /// DeleteRolePolicy.
    pub async fn delete_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_name: &str,
    ) -> Result<()> {
        self.delete_inline_policy::<Role>(
            caller,
            meta,
            Action::IamDeleteRolePolicy,
            role,
            policy_name,
        )
        .await
    }

    /// ListRolePolicies: names.
    pub fn list_role_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        page: &PageReq,
    ) -> Result<Page<String>> {
        self.list_inline_policies::<Role>(caller, meta, Action::IamListRolePolicies, role, page)
    }

    /// AttachRolePolicy.
    pub async fn attach_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.attach_policy::<Role>(caller, meta, Action::IamAttachRolePolicy, role, policy_arn)
            .await
    }

    /// DetachRolePolicy.
    pub async fn detach_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.detach_policy::<Role>(caller, meta, Action::IamDetachRolePolicy, role, policy_arn)
            .await
    }

    /// ListAttachedRolePolicies.
    pub fn list_attached_role_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        page: &PageReq,
    ) -> Result<Page<AttachedPolicy>> {
        self.list_attached_policies::<Role>(
            caller,
            meta,
            Action::IamListAttachedRolePolicies,
            role,
            page,
        )
    }

    /// Revoke every session of a role issued before now, in one call: the same inline policy
    /// the AWS console writes (`AWSRevokeOlderSessions`, a Deny on everything for sessions whose
    /// `aws:TokenIssueTime` is earlier than now). Returns the cut-off time.
    pub async fn revoke_role_sessions(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
    ) -> Result<String> {
        let cutoff = crate::auth::iso8601(self.now());
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{cutoff}"}}}}}}]}}"#
        );
        self.put_role_policy(caller, meta, role, "AWSRevokeOlderSessions", doc)
            .await?;
        Ok(cutoff)
    }

    /// UpdateRoleDescription: returns the updated role.
    pub async fn update_role_description(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        description: String,
    ) -> Result<Arc<Role>> {
        names::role_description(&description)?;
        self.update_principal::<Role>(
            caller,
            meta,
            Action::IamUpdateRoleDescription,
            name,
            Keys::none(),
            |r| {
                r.description = Some(description);
                Ok(())
            },
        )
        .await
    }

    /// PutRolePermissionsBoundary.
    pub async fn put_role_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        boundary: &str,
    ) -> Result<()> {
        self.put_boundary::<Role>(
            caller,
            meta,
            Action::IamPutRolePermissionsBoundary,
            name,
            boundary,
        )
        .await
    }

    /// DeleteRolePermissionsBoundary.
    pub async fn delete_role_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<()> {
        self.delete_boundary::<Role>(caller, meta, Action::IamDeleteRolePermissionsBoundary, name)
            .await
    }
}
