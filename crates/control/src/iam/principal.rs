//! What roles and users share, written once over [`Principal`]: the lookup and authorization
//! of one by name, updates, creation checks, listing and tags (their policies are in
//! `principal_policies`). The role and user entry points (`roles`, `users`) only name their
//! action.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::limits;
use super::page::{Page, PageReq, paginate};
use super::validate::{merge_tags, remove_tags, tag_pairs, validate_tag_keys, validate_tags};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::{AwsError, Result};
use crate::model::{self, Tag, kind};
use crate::names::{self, policy_arn};
use crate::state::{Change, Entry, Key, Tables, of_account};

/// An IAM identity that holds policies: a role or a user. The constants are what IAM's
/// messages and quotas say of each.
pub(crate) trait Principal: Clone + Serialize + Send + Sync + 'static {
    /// Its record kind in the store.
    const KIND: &'static str;
    /// The entity as messages name it: `role`, `user`.
    const ENTITY: &'static str;
    /// The request member that names it: `roleName`, `userName`.
    const NAME_MEMBER: &'static str;
    /// Its resource kind, for a target that does not exist.
    const RESOURCE: ResourceKind;
    /// Entities of its kind per account: the quota's name and value.
    const PER_ACCOUNT: (&'static str, usize);
    /// Aggregate length of its inline policies.
    const INLINE_CHARS: usize;
    /// The quota attachments count against.
    const ATTACHED_QUOTA: &'static str;

    /// Its table, by (account, lowercase name).
    fn table(t: &Tables) -> &BTreeMap<Key, Entry<Self>>;
    /// The authorization target of a stored entity.
    fn target(account: &str, e: &Self) -> Target;
    /// Name as created.
    fn name(&self) -> &str;
    /// IAM path.
    fn path(&self) -> &str;
    /// Tags.
    fn tags_mut(&mut self) -> &mut Vec<Tag>;
    /// Tags.
    fn tags(&self) -> &[Tag];
    /// Inline policies.
    fn inline_policies(&self) -> &[model::InlinePolicy];
    /// Inline policies.
    fn inline_policies_mut(&mut self) -> &mut Vec<model::InlinePolicy>;
    /// ARNs of the attached managed policies.
    fn attached(&self) -> &[String];
    /// ARNs of the attached managed policies.
    fn attached_mut(&mut self) -> &mut Vec<String>;
    /// The permissions boundary's ARN.
    fn boundary(&self) -> Option<&str>;
    /// The permissions boundary's ARN.
    fn boundary_mut(&mut self) -> &mut Option<String>;
}

/// The accessors, alike for both entities.
macro_rules! principal_fields {
    () => {
        fn name(&self) -> &str {
            &self.name
        }
        fn path(&self) -> &str {
            &self.path
        }
        fn tags(&self) -> &[Tag] {
            &self.tags
        }
        fn tags_mut(&mut self) -> &mut Vec<Tag> {
            &mut self.tags
        }
        fn inline_policies(&self) -> &[model::InlinePolicy] {
            &self.inline_policies
        }
        fn inline_policies_mut(&mut self) -> &mut Vec<model::InlinePolicy> {
            &mut self.inline_policies
        }
        fn attached(&self) -> &[String] {
            &self.attached
        }
        fn attached_mut(&mut self) -> &mut Vec<String> {
            &mut self.attached
        }
        fn boundary(&self) -> Option<&str> {
            self.boundary.as_deref()
        }
        fn boundary_mut(&mut self) -> &mut Option<String> {
            &mut self.boundary
        }
    };
}

impl Principal for model::Role {
    const KIND: &'static str = kind::ROLE;
    const ENTITY: &'static str = "role";
    const NAME_MEMBER: &'static str = "roleName";
    const RESOURCE: ResourceKind = ResourceKind::Role;
    const PER_ACCOUNT: (&'static str, usize) = ("RolesPerAccount", limits::ROLES_PER_ACCOUNT);
    const INLINE_CHARS: usize = limits::ROLE_INLINE_CHARS;
    const ATTACHED_QUOTA: &'static str = "PoliciesPerRole";

    fn table(t: &Tables) -> &BTreeMap<Key, Entry<Self>> {
        &t.roles
    }
    fn target(account: &str, e: &Self) -> Target {
        Target::role(account, e)
    }
    principal_fields!();
}

impl Principal for model::User {
    const KIND: &'static str = kind::USER;
    const ENTITY: &'static str = "user";
    const NAME_MEMBER: &'static str = "userName";
    const RESOURCE: ResourceKind = ResourceKind::User;
    const PER_ACCOUNT: (&'static str, usize) = ("UsersPerAccount", limits::USERS_PER_ACCOUNT);
    const INLINE_CHARS: usize = limits::USER_INLINE_CHARS;
    const ATTACHED_QUOTA: &'static str = "PoliciesPerUser";

    fn table(t: &Tables) -> &BTreeMap<Key, Entry<Self>> {
        &t.users
    }
    fn target(account: &str, e: &Self) -> Target {
        Target::user(account, e)
    }
    principal_fields!();
}

impl Control {
    /// The role or user `name` names in the caller's account, authorized for `action` on the
    /// stored entity (path and case as stored), or, when there is none, on the name as given
    /// before NoSuchEntity: the caller learns whether an entity exists only where it may act on
    /// it. `keys` are the request's keys; `iam:PermissionsBoundary` is added from the stored
    /// entity where the action sets it.
    pub(super) fn principal_for<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
    ) -> Result<(Arc<P>, i64)> {
        names::entity_name(name, P::NAME_MEMBER, 64)?;
        let account = caller.account();
        let e = P::table(&self.db.read())
            .get(&(account.to_owned(), name.to_lowercase()))
            .cloned();
        let (target, keys) = match &e {
            Some(e) => {
                let stored = boundary_key(action, e.value.boundary(), &keys);
                (P::target(account, &e.value), keys.and(stored))
            }
            None => (Target::new_iam(P::RESOURCE, account, "/", name), keys),
        };
        self.authorize(caller, action, &target, meta, keys)?;
        let e = e.ok_or_else(|| {
            AwsError::no_such_entity(format!(
                "the {} with name {name} cannot be found",
                P::ENTITY
            ))
        })?;
        Ok((e.value, e.version))
    }

    /// Apply `f` to the entity `name` names, authorized as [`Self::principal_for`], and commit
    /// it.
    pub(super) async fn update_principal<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
        f: impl FnOnce(&mut P) -> Result<()>,
    ) -> Result<Arc<P>> {
        self.update_principal_with::<P>(caller, meta, action, name, keys, |e| {
            f(e).map(|()| Vec::new())
        })
        .await
    }

    /// [`Self::update_principal`] where `f`, run under the writer lock, also returns the
    /// [`Change::touch`]es of the records the new state refers to (a managed policy attached,
    /// a principal named), committed in the same batch.
    pub(super) async fn update_principal_with<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
        f: impl FnOnce(&mut P) -> Result<Vec<Change>>,
    ) -> Result<Arc<P>> {
        let guard = self.db.write().await;
        let (e, version) = self.principal_for::<P>(caller, meta, action, name, keys)?;
        let mut e = (*e).clone();
        let refs = f(&mut e)?;
        let now = self.now();
        let mut changes = vec![Change::update(
            P::KIND,
            caller.account(),
            &name.to_lowercase(),
            &e,
            version,
        )?];
        changes.extend(refs);
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(e))
    }

    /// The boundary a Create{Role,User} names, as its canonical ARN.
    pub(super) fn new_boundary(&self, account: &str, arn: Option<&str>) -> Result<Option<String>> {
        match arn {
            Some(b) => Ok(Some(policy_arn(account, &self.policy_entry(account, b)?.1))),
            None => Ok(None),
        }
    }

    /// The [`Change::touch`] of the managed policy `arn` names, for a batch that makes an entity
    /// refer to it (attachment, boundary): a DeletePolicy on another replica that did not see the
    /// reference conflicts with it, so no entity is left naming a deleted policy's ARN (which the
    /// next policy created under that name would then fill).
    pub(super) fn policy_touch(&self, account: &str, arn: &str) -> Result<Change> {
        let (id, p, version) = self.policy_entry(account, arn)?;
        Change::touch(kind::POLICY, account, &id, &*p, version)
    }

    /// Whether an entity named `name` may be created in `account`: none exists under the name
    /// and the account's quota has room. Called under the writer lock.
    pub(super) fn check_room<P: Principal>(&self, account: &str, name: &str) -> Result<()> {
        let t = self.db.read();
        let table = P::table(&t);
        if table.contains_key(&(account.to_owned(), name.to_lowercase())) {
            return Err(AwsError::already_exists(format!(
                "{} with name {name} already exists",
                P::ENTITY
            )));
        }
        let (quota, max) = P::PER_ACCOUNT;
        if of_account(table, account).count() >= max {
            return Err(AwsError::limit_exceeded(format!(
                "cannot exceed quota for {quota}: {max}"
            )));
        }
        Ok(())
    }

    /// List{Roles,Users}.
    pub(super) fn list_principals<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        path_prefix: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<Arc<P>>> {
        let account = caller.account();
        self.authorize(
            caller,
            action,
            &Target::wildcard(account),
            meta,
            Keys::none(),
        )?;
        let prefix = path_prefix.unwrap_or("/");
        let t = self.db.read();
        paginate(
            of_account(P::table(&t), account)
                .filter(|(_, e)| e.value.path().starts_with(prefix))
                .map(|((_, k), e)| (k.clone(), Arc::clone(&e.value))),
            page,
        )
    }

    /// Tag{Role,User}.
    pub(super) async fn tag_principal<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        tags: Vec<Tag>,
    ) -> Result<()> {
        validate_tags(&tags)?;
        let keys = Keys::none().request_tags(tag_pairs(&tags));
        self.update_principal::<P>(caller, meta, action, name, keys, |e| {
            *e.tags_mut() = merge_tags(e.tags(), &tags)?;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Untag{Role,User}.
    pub(super) async fn untag_principal<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Vec<String>,
    ) -> Result<()> {
        validate_tag_keys(&keys)?;
        self.update_principal::<P>(
            caller,
            meta,
            action,
            name,
            Keys::none().tag_keys(&keys),
            |e| {
                *e.tags_mut() = remove_tags(e.tags(), &keys);
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// List{Role,User}Tags.
    pub(super) fn list_principal_tags<P: Principal>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
    ) -> Result<Vec<Tag>> {
        let (e, _) = self.principal_for::<P>(caller, meta, action, name, Keys::none())?;
        Ok(e.tags().to_vec())
    }
}

/// The request keys of a Create{Role,User}: its tags and the boundary it sets.
pub(super) fn creation_keys(tags: &[Tag], boundary: Option<&str>) -> Keys {
    Keys::none()
        .request_tags(tag_pairs(tags))
        .and(boundary.map_or_else(Keys::none, |b| {
            Keys::none().with("iam:PermissionsBoundary", b)
        }))
}

/// An entity holding policies cannot be deleted (IAM's DeleteConflict).
pub(super) fn check_no_policies<P: Principal>(e: &P) -> Result<()> {
    if !e.inline_policies().is_empty() {
        return Err(AwsError::delete_conflict(
            "cannot delete entity, must delete policies first",
        ));
    }
    if !e.attached().is_empty() {
        return Err(AwsError::delete_conflict(
            "cannot delete entity, must detach all policies first",
        ));
    }
    Ok(())
}

/// `iam:PermissionsBoundary` from an entity's boundary, where `action` sets it and the request
/// does not name a new one (Put*PermissionsBoundary authorizes the boundary being set).
fn boundary_key(action: Action, boundary: Option<&str>, request: &Keys) -> Keys {
    match boundary {
        Some(b)
            if action.declares("iam:PermissionsBoundary")
                && !request.has("iam:PermissionsBoundary") =>
        {
            Keys::none().with("iam:PermissionsBoundary", b)
        }
        _ => Keys::none(),
    }
}
