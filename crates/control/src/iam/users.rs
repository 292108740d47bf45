//! IAM users: Create, Get, List, Delete, and each operation on a user's policies and
//! boundary (written once for roles and users in `principal`).

use std::sync::Arc;

use super::page::{Page, PageReq};
use super::principal::{check_no_policies, creation_keys};
use super::principal_policies::AttachedPolicy;
use super::validate::validate_tags;
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::{AwsError, Result};
use crate::model::{self, Tag, User, kind};
use crate::names::{self, user_arn};
use crate::state::Change;

impl Control {
    /// The user a call names, or the calling user itself when it names none.
    pub(super) fn user_name_or_self(user: Option<&str>, caller: &Caller) -> Result<String> {
        match (user, caller) {
            (Some(n), _) => Ok(n.to_owned()),
            (None, Caller::User { user, .. }) => Ok(user.name.clone()),
            (None, _) => Err(AwsError::validation(
                "must specify userName when calling with non-user credentials",
            )),
        }
    }

    /// CreateUser.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_user(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        path: Option<String>,
        boundary: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<Arc<User>> {
        let account = caller.account().to_owned();
        names::entity_name(name, "userName", 64)?;
        let path = path.unwrap_or_else(|| "/".into());
        names::iam_path(&path)?;
        let boundary = self.new_boundary(&account, boundary)?;
        validate_tags(&tags)?;
        let target = Target::new_iam(ResourceKind::User, &account, &path, name);
        let keys = creation_keys(&tags, boundary.as_deref());
        self.authorize(caller, Action::IamCreateUser, &target, meta, keys)?;
        let guard = self.db.write().await;
        // The boundary again under the writer lock, as for roles.
        self.new_boundary(&account, boundary.as_deref())?;
        self.check_room::<User>(&account, name)?;
        let id = name.to_lowercase();
        let now = self.now();
        let user = User {
            name: name.to_owned(),
            id: names::unique_id("AIDA"),
            path,
            created: now,
            tags,
            inline_policies: vec![],
            attached: vec![],
            boundary,
        };
        let mut changes = vec![Change::insert(kind::USER, &account, &id, &user)?];
        if let Some(b) = &user.boundary {
            changes.push(self.policy_touch(&account, b)?);
        }
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(user))
    }

    /// GetUser (the caller itself when `name` is absent).
    pub fn get_user(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: Option<&str>,
    ) -> Result<Arc<User>> {
        let name = Self::user_name_or_self(name, caller)?;
        Ok(self
            .principal_for::<User>(caller, meta, Action::IamGetUser, &name, Keys::none())?
            .0)
    }

    /// DeleteUser.
    pub async fn delete_user(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<()> {
        let guard = self.db.write().await;
        let (user, version) =
            self.principal_for::<User>(caller, meta, Action::IamDeleteUser, name, Keys::none())?;
        let has_keys = self
            .db
            .read()
            .access_keys
            .values()
            .any(|k| k.value.account == caller.account() && k.value.belongs_to(&user));
        if has_keys {
            return Err(AwsError::delete_conflict(
                "cannot delete entity, must delete access keys first",
            ));
        }
        check_no_policies(&*user)?;
        let now = self.now();
        let mut changes =
            self.trust_rewrites(&user_arn(caller.account(), &user), &user.id, None)?;
        changes.push(Change::delete(
            kind::USER,
            caller.account(),
            &name.to_lowercase(),
            version,
        ));
        self.db.commit(&guard, changes, now).await
    }

    /// ListUsers.
    pub fn list_users(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        path_prefix: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<Arc<User>>> {
        self.list_principals::<User>(caller, meta, Action::IamListUsers, path_prefix, page)
    }

    /// PutUserPolicy.
    pub async fn put_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_name: &str,
        doc: String,
    ) -> Result<()> {
        self.put_inline_policy::<User>(
            caller,
            meta,
            Action::IamPutUserPolicy,
            user,
            policy_name,
            doc,
        )
        .await
    }

    /// GetUserPolicy.
    pub fn get_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_name: &str,
    ) -> Result<(String, model::InlinePolicy)> {
        self.get_inline_policy::<User>(caller, meta, Action::IamGetUserPolicy, user, policy_name)
    }

    /// DeleteUserPolicy.
    pub async fn delete_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_name: &str,
    ) -> Result<()> {
        self.delete_inline_policy::<User>(
            caller,
            meta,
            Action::IamDeleteUserPolicy,
            user,
            policy_name,
        )
        .await
    }

    /// ListUserPolicies: names.
    pub fn list_user_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        page: &PageReq,
    ) -> Result<Page<String>> {
        self.list_inline_policies::<User>(caller, meta, Action::IamListUserPolicies, user, page)
    }

    /// AttachUserPolicy.
    pub async fn attach_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.attach_policy::<User>(caller, meta, Action::IamAttachUserPolicy, user, policy_arn)
            .await
    }

    /// DetachUserPolicy.
    pub async fn detach_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.detach_policy::<User>(caller, meta, Action::IamDetachUserPolicy, user, policy_arn)
            .await
    }

    /// ListAttachedUserPolicies.
    pub fn list_attached_user_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        page: &PageReq,
    ) -> Result<Page<AttachedPolicy>> {
        self.list_attached_policies::<User>(
            caller,
            meta,
            Action::IamListAttachedUserPolicies,
            user,
            page,
        )
    }

    /// PutUserPermissionsBoundary.
    pub async fn put_user_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        boundary: &str,
    ) -> Result<()> {
        self.put_boundary::<User>(
            caller,
            meta,
            Action::IamPutUserPermissionsBoundary,
            name,
            boundary,
        )
        .await
    }

    /// DeleteUserPermissionsBoundary.
    pub async fn delete_user_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<()> {
        self.delete_boundary::<User>(caller, meta, Action::IamDeleteUserPermissionsBoundary, name)
            .await
    }
}
