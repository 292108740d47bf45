//! Customer managed policies: Create, Get, List, Delete and versions, and the lookup of a
//! policy an attachment or a permissions boundary names.

use std::sync::Arc;

use podiam_policy as policy;

use super::limits;
use super::page::{Page, PageReq, paginate};
use super::principal::Principal as _;
use super::validate::{tag_pairs, validate_policy, validate_tags};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::{AwsError, ErrorCode, Result};
use crate::model::{self, Tag, kind};
use crate::names::{self, policy_arn};
use crate::state::{Change, of_account};

impl Control {
    /// The boundary a Put*PermissionsBoundary names and its `iam:PermissionsBoundary` key (a
    /// policy that does not exist is reported after authorization, as for attachments).
    pub(super) fn boundary_arg(&self, account: &str, arn: &str) -> Result<(Result<String>, Keys)> {
        let (found, _) = self.attachable(account, arn)?;
        let keys = Keys::none().with("iam:PermissionsBoundary", found.as_deref().unwrap_or(arn));
        Ok((found, keys))
    }

    /// The canonical ARN of the managed policy of `account` that `arn` names exactly, and the
    /// `iam:PolicyARN` key of the request. A malformed ARN is refused at once; a policy that does
    /// not exist is reported (NoSuchEntity) only after authorization, so an unauthorized caller
    /// learns nothing of which policies exist.
    pub(super) fn attachable(&self, account: &str, arn: &str) -> Result<(Result<String>, Keys)> {
        match self.policy_entry(account, arn) {
            Ok((_, p, _)) => {
                let canonical = policy_arn(account, &p);
                let keys = Keys::none().with("iam:PolicyARN", canonical.as_str());
                Ok((Ok(canonical), keys))
            }
            Err(e) if e.code == ErrorCode::NoSuchEntity => {
                Ok((Err(e), Keys::none().with("iam:PolicyARN", arn)))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn policy_entry(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<(String, Arc<model::ManagedPolicy>, i64)> {
        names::bounded(arn, "policyArn", 20, 2048)?;
        let a = names::Arn::parse(arn).filter(|a| {
            a.service == "iam" && a.region.is_empty() && a.resource.starts_with("policy/")
        });
        let a = a.ok_or_else(|| AwsError::invalid_input(format!("ARN {arn} is not valid")))?;
        let not_found = || {
            AwsError::no_such_entity(format!("policy {arn} does not exist or is not attachable"))
        };
        if a.account != account {
            // AWS managed policies (account "aws") and other accounts' policies are not available.
            return Err(not_found());
        }
        let id = a
            .resource
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let e = self
            .db
            .read()
            .policies
            .get(&(account.to_owned(), id.clone()))
            .cloned()
            .ok_or_else(not_found)?;
        if policy_arn(account, &e.value) != arn {
            return Err(not_found());
        }
        Ok((id, e.value, e.version))
    }

    /// The managed policy `arn` names in the caller's account, authorized for `action` on the
    /// stored policy (or on the ARN as given, before NoSuchEntity, when there is none).
    fn policy_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        arn: &str,
    ) -> Result<(String, Arc<model::ManagedPolicy>, i64)> {
        let account = caller.account();
        match self.policy_entry(account, arn) {
            Ok(found) => {
                self.authorize(
                    caller,
                    action,
                    &Target::policy(account, &found.1),
                    meta,
                    Keys::none(),
                )?;
                Ok(found)
            }
            Err(e) if e.code == ErrorCode::NoSuchEntity => {
                let a = names::Arn::parse(arn).ok_or_else(AwsError::service_failure)?;
                let rest = a.resource.strip_prefix("policy").unwrap_or_default();
                let (path, name) = rest.rsplit_once('/').map_or(("/", rest), |(p, n)| (p, n));
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    format!("{path}/")
                };
                if a.account == account {
                    self.authorize(
                        caller,
                        action,
                        &Target::new_iam(ResourceKind::Policy, account, &path, name),
                        meta,
                        Keys::none(),
                    )?;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// CreatePolicy.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        path: Option<String>,
        doc: String,
        description: Option<String>,
        tags: Vec<Tag>,
    ) -> Result<Arc<model::ManagedPolicy>> {
        let account = caller.account().to_owned();
        names::policy_name(name, "policyName")?;
        let path = path.unwrap_or_else(|| "/".into());
        names::iam_path(&path)?;
        if let Some(d) = &description {
            names::bounded(d, "description", 0, 1000)?;
        }
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            limits::MANAGED_POLICY_CHARS,
            "PolicySize",
        )?;
        validate_tags(&tags)?;
        let target = Target::new_iam(ResourceKind::Policy, &account, &path, name);
        self.authorize(
            caller,
            Action::IamCreatePolicy,
            &target,
            meta,
            Keys::none().request_tags(tag_pairs(&tags)),
        )?;
        let guard = self.db.write().await;
        let id = name.to_lowercase();
        {
            let t = self.db.read();
            if t.policies.contains_key(&(account.clone(), id.clone())) {
                return Err(AwsError::already_exists(format!(
                    "a policy called {name} already exists. duplicate names are not allowed"
                )));
            }
            if of_account(&t.policies, &account).count() >= limits::POLICIES_PER_ACCOUNT {
                return Err(AwsError::limit_exceeded(format!(
                    "cannot exceed quota for PoliciesPerAccount: {}",
                    limits::POLICIES_PER_ACCOUNT
                )));
            }
        }
        let now = self.now();
        let p = model::ManagedPolicy {
            name: name.to_owned(),
            id: names::unique_id("ANPA"),
            path,
            description,
            versions: vec![model::PolicyVersion {
                id: "v1".into(),
                document: doc,
                created: now,
            }],
            default_version: "v1".into(),
            next_version: 2,
            created: now,
            updated: now,
            tags,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(kind::POLICY, &account, &id, &p)?],
                now,
            )
            .await?;
        Ok(Arc::new(p))
    }

    /// GetPolicy, with its attachment count.
    pub fn get_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<(Arc<model::ManagedPolicy>, usize)> {
        let (_, p, _) = self.policy_for(caller, meta, Action::IamGetPolicy, arn)?;
        Ok((p, self.attachment_count(caller.account(), arn)))
    }

    fn boundary_count(&self, account: &str, arn: &str) -> usize {
        let t = self.db.read();
        let uses = |b: Option<&str>| b == Some(arn);
        of_account(&t.roles, account)
            .filter(|(_, e)| uses(e.value.boundary()))
            .count()
            + of_account(&t.users, account)
                .filter(|(_, e)| uses(e.value.boundary()))
                .count()
    }

    fn attachment_count(&self, account: &str, arn: &str) -> usize {
        let t = self.db.read();
        let uses = |attached: &[String]| attached.iter().any(|x| x == arn);
        of_account(&t.roles, account)
            .filter(|(_, e)| uses(e.value.attached()))
            .count()
            + of_account(&t.users, account)
                .filter(|(_, e)| uses(e.value.attached()))
                .count()
    }

    /// ListPolicies (Scope=Local|All; podiam has no AWS managed policies).
    pub fn list_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        path_prefix: Option<&str>,
        only_attached: bool,
        page: &PageReq,
    ) -> Result<Page<(Arc<model::ManagedPolicy>, usize)>> {
        let account = caller.account().to_owned();
        self.authorize(
            caller,
            Action::IamListPolicies,
            &Target::wildcard(&account),
            meta,
            Keys::none(),
        )?;
        let prefix = path_prefix.unwrap_or("/");
        let found: Vec<(String, Arc<model::ManagedPolicy>)> =
            of_account(&self.db.read().policies, &account)
                .filter(|(_, e)| e.value.path.starts_with(prefix))
                .map(|((_, k), e)| (k.clone(), Arc::clone(&e.value)))
                .collect();
        let items: Vec<(String, (Arc<model::ManagedPolicy>, usize))> = found
            .into_iter()
            .map(|(k, p)| {
                let n = self.attachment_count(&account, &policy_arn(&account, &p));
                (k, (p, n))
            })
            .filter(|(_, (_, n))| !only_attached || *n > 0)
            .collect();
        paginate(items.into_iter(), page)
    }

    /// DeletePolicy.
    pub async fn delete_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<()> {
        let guard = self.db.write().await;
        let (id, _, version) = self.policy_for(caller, meta, Action::IamDeletePolicy, arn)?;
        if self.attachment_count(caller.account(), arn) > 0 {
            return Err(AwsError::delete_conflict(
                "cannot delete a policy attached to entities",
            ));
        }
        // A boundary in use is a reference by ARN: deleting it and creating a policy of the same
        // name would lift every boundary that names it.
        if self.boundary_count(caller.account(), arn) > 0 {
            return Err(AwsError::delete_conflict(
                "cannot delete a policy that is in use as a permissions boundary",
            ));
        }
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::POLICY, caller.account(), &id, version)],
                now,
            )
            .await
    }

    /// GetPolicyVersion.
    pub fn get_policy_version(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        version: &str,
    ) -> Result<(model::PolicyVersion, bool)> {
        let (_, p, _) = self.policy_for(caller, meta, Action::IamGetPolicyVersion, arn)?;
        let v = p.versions.iter().find(|v| v.id == version).cloned();
        let v = v.ok_or_else(|| {
            AwsError::no_such_entity(format!("policy {arn} version {version} does not exist"))
        })?;
        let default = v.id == p.default_version;
        Ok((v, default))
    }

    /// CreatePolicyVersion.
    pub async fn create_policy_version(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        doc: String,
        set_default: bool,
    ) -> Result<(model::PolicyVersion, bool)> {
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            limits::MANAGED_POLICY_CHARS,
            "PolicySize",
        )?;
        let guard = self.db.write().await;
        let (id, p, version) =
            self.policy_for(caller, meta, Action::IamCreatePolicyVersion, arn)?;
        let mut p = (*p).clone();
        if p.versions.len() >= limits::POLICY_VERSIONS {
            return Err(AwsError::limit_exceeded(format!(
                "a managed policy can have up to {} versions. before you create a new version, you must delete an existing version",
                limits::POLICY_VERSIONS
            )));
        }
        let now = self.now();
        let v = model::PolicyVersion {
            id: format!("v{}", p.next_version),
            document: doc,
            created: now,
        };
        p.next_version += 1;
        p.versions.push(v.clone());
        if set_default {
            p.default_version = v.id.clone();
        }
        p.updated = now;
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::POLICY,
                    caller.account(),
                    &id,
                    &p,
                    version,
                )?],
                now,
            )
            .await?;
        Ok((v, set_default))
    }
}
