//! Access entries: Create, Describe, List, Update, Delete.

use std::sync::Arc;

use super::entry_authz::{changes_entry, stored_entry_keys};
use super::params::{
    CreateAccessEntry, MODE_CONFIG_MAP, Principal, PrincipalKind, UpdateAccessEntry, decode_token,
    default_username, encode_token, entry_kind, groups, node_identity, page_size, policy_arn,
    principal, username,
};
use super::pattern;
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::eks::check_tags;
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::state::{Change, Entry, access_entries_of, access_entry_id};

/// The error of every entry operation on a cluster whose access-entry API is off.
pub(super) fn api_on(c: &model::Cluster) -> Result<()> {
    if c.access_config.authentication_mode == MODE_CONFIG_MAP {
        return Err(AwsError::invalid_request(format!(
            "The cluster {}'s authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
            c.name
        )));
    }
    Ok(())
}

pub(super) fn entry_not_found(cluster: &str, principal_arn: &str) -> AwsError {
    AwsError::resource_not_found(format!(
        "The specified access entry resource is not found for principal {principal_arn} in cluster {cluster}."
    ))
}

fn cluster_not_found(cluster: &str) -> AwsError {
    AwsError::resource_not_found(format!("No cluster found for name: {cluster}."))
}

impl Control {
    /// `arn:aws:eks:REGION:ACCOUNT:access-entry/CLUSTER/role|user/ACCOUNT/NAME/UUID`.
    pub fn access_entry_arn(&self, account: &str, e: &model::AccessEntry) -> String {
        Target::access_entry(&self.config.region, account, e)
            .arn()
            .to_owned()
    }

    /// The canonical ARN (stored path and case) of the IAM role or user `p` names, if it exists.
    pub(super) fn principal_canonical(&self, p: &Principal) -> Option<String> {
        let t = self.db.read();
        let key = (p.account.clone(), p.name.to_lowercase());
        match p.kind {
            PrincipalKind::Role => t
                .roles
                .get(&key)
                .filter(|e| e.value.path == p.path)
                .map(|e| Target::role(&p.account, &e.value).arn().to_owned()),
            PrincipalKind::User => t
                .users
                .get(&key)
                .filter(|e| e.value.path == p.path)
                .map(|e| Target::user(&p.account, &e.value).arn().to_owned()),
        }
    }

    /// The unique id of the stored IAM role or user `p` names, if it exists.
    pub(super) fn principal_unique_id(&self, p: &Principal) -> Option<String> {
        let t = self.db.read();
        let key = (p.account.clone(), p.name.to_lowercase());
        match p.kind {
            PrincipalKind::Role => t
                .roles
                .get(&key)
                .filter(|e| e.value.path == p.path)
                .map(|e| e.value.id.clone()),
            PrincipalKind::User => t
                .users
                .get(&key)
                .filter(|e| e.value.path == p.path)
                .map(|e| e.value.id.clone()),
        }
    }

    /// The stored key of the entry `principal_arn` names in `cluster`: the ARN as given when an
    /// entry has it, else the canonical ARN of the IAM principal it names (requests may spell a
    /// name in another case, as IAM allows).
    fn entry_key(&self, account: &str, cluster: &str, principal_arn: &str) -> String {
        let exact = access_entry_id(cluster, principal_arn);
        if self
            .db
            .read()
            .access_entries
            .contains_key(&(account.to_owned(), exact.clone()))
        {
            return exact;
        }
        principal(principal_arn)
            .ok()
            .and_then(|p| self.principal_canonical(&p))
            .map_or(exact, |c| access_entry_id(cluster, &c))
    }

    /// Refuse pattern `p` when a pattern entry of `cluster` has its specificity and can match a
    /// role it matches: which of the two maps such a role would be a coin toss.
    /// `ResourceInUseException`, as for a second entry of one principal: the request is valid on
    /// its own, and becomes acceptable once the other entry is gone.
    fn pattern_conflict(&self, account: &str, cluster: &str, p: &Principal) -> Result<()> {
        let t = self.db.read();
        let other = access_entries_of(&t.access_entries, account, cluster, None)
            .map(|e| &e.value.principal_arn)
            .find(|arn| principal(arn).is_ok_and(|o| o.pattern && pattern::conflict(p, &o)));
        match other {
            Some(arn) => Err(AwsError::resource_in_use(format!(
                "The specified access entry pattern overlaps the access entry {arn} on this cluster: both are as specific, and a role could match both."
            ))),
            None => Ok(()),
        }
    }

    /// The entry of `principal_arn` in `cluster` (caller's account), authorized for `action` on
    /// the stored entry (its tags as `aws:ResourceTag/*`), or on the ARN as named (UUID `*`)
    /// when there is none; `keys` sees the stored entry. Then: the cluster must exist, have
    /// the access-entry API on, and hold the entry.
    pub(super) fn entry_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        cluster: &str,
        principal_arn: &str,
        keys: impl FnOnce(Option<&model::AccessEntry>) -> Keys,
    ) -> Result<Entry<model::AccessEntry>> {
        // Only a role or user ARN can name an entry: anything else is a bad request, whatever
        // is stored.
        principal(principal_arn)?;
        let account = caller.account();
        let key = (
            account.to_owned(),
            self.entry_key(account, cluster, principal_arn),
        );
        let (c, e) = {
            let t = self.db.read();
            (
                t.clusters
                    .get(&(account.to_owned(), cluster.to_owned()))
                    .map(|e| Arc::clone(&e.value)),
                t.access_entries.get(&key).cloned(),
            )
        };
        let region = &self.config.region;
        let target = match &e {
            Some(e) => Target::access_entry(region, account, &e.value),
            None => Target::new_access_entry(region, account, cluster, principal_arn, "*"),
        };
        // Every action on an entry sees what the entry is (or the principal asked for, when it
        // is missing); an update's own keys name its new values instead.
        let keys = stored_entry_keys(
            keys(e.as_ref().map(|e| e.value.as_ref())),
            e.as_ref().map(|e| e.value.as_ref()),
            principal_arn,
        );
        self.authorize(caller, action, &target, meta, keys.clone())?;
        if let Some(stored) = &e
            && changes_entry(action)
            && let Ok(sp) = principal(&stored.value.principal_arn)
            && sp.pattern
        {
            self.authorize_pattern(caller, meta, action, &target, cluster, &sp, &keys)?;
        }
        let c = c.ok_or_else(|| cluster_not_found(cluster))?;
        api_on(&c)?;
        e.ok_or_else(|| entry_not_found(cluster, principal_arn))
    }

    /// Apply `f` to the entry authorized as [`Self::entry_for`], under the writer lock, with the
    /// time in milliseconds; stamp the modification and commit it at the version read. Returns
    /// the new entry and what `f` returned.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update_entry<T>(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        cluster: &str,
        principal_arn: &str,
        keys: impl FnOnce(Option<&model::AccessEntry>) -> Keys,
        f: impl FnOnce(&mut model::AccessEntry, i64) -> Result<T>,
    ) -> Result<(model::AccessEntry, T)> {
        let guard = self.db.write().await;
        let e = self.entry_for(caller, meta, action, cluster, principal_arn, keys)?;
        let mut a = (*e.value).clone();
        let now_ms = self.now_ms();
        let out = f(&mut a, now_ms)?;
        a.modified_ms = now_ms;
        let id = access_entry_id(cluster, &a.principal_arn);
        let change = Change::update(kind::ACCESS_ENTRY, caller.account(), &id, &a, e.version)?;
        self.db.commit(&guard, vec![change], self.now()).await?;
        Ok((a, out))
    }

    /// A new entry record (CreateAccessEntry, and the cluster creator's bootstrap entry).
    pub(super) fn new_access_entry(
        &self,
        cluster: &str,
        p: &Principal,
        canonical_arn: &str,
        kind: String,
        chosen_username: Option<String>,
        kubernetes_groups: Vec<String>,
    ) -> Result<model::AccessEntry> {
        let (username, kubernetes_groups) = match node_identity(&kind) {
            Some((u, g)) => (u.to_owned(), g.iter().map(|s| (*s).to_owned()).collect()),
            None => (
                match chosen_username {
                    Some(u) => u,
                    // The stored name's case, not the request's.
                    None => default_username(
                        &principal(canonical_arn).unwrap_or_else(|_| p.clone()),
                        canonical_arn,
                    ),
                },
                kubernetes_groups,
            ),
        };
        let now_ms = self.now_ms();
        // A pattern binds to no role id (see `pattern`).
        let principal_id = principal(canonical_arn)
            .ok()
            .filter(|c| !c.pattern)
            .and_then(|c| self.principal_unique_id(&c));
        // An exact entry always binds to the principal's id: never one that matches a name
        // alone, which whoever re-creates the name would inherit.
        if principal_id.is_none() && !p.pattern {
            return Err(AwsError::invalid_parameter(format!(
                "The specified principalArn is invalid: {canonical_arn} does not exist."
            )));
        }
        Ok(model::AccessEntry {
            cluster: cluster.to_owned(),
            principal_arn: canonical_arn.to_owned(),
            principal_id,
            kind,
            username,
            kubernetes_groups,
            uuid: super::params::uuid()?,
            tags: Default::default(),
            created_ms: now_ms,
            modified_ms: now_ms,
            client_request_token: None,
            policies: vec![],
        })
    }

    /// CreateAccessEntry.
    pub async fn create_access_entry(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        input: CreateAccessEntry,
    ) -> Result<Arc<model::AccessEntry>> {
        let account = caller.account().to_owned();
        crate::eks::cluster_name(cluster)?;
        let p = principal(&input.principal_arn)?;
        let kind = entry_kind(input.kind.as_deref())?;
        let node = node_identity(&kind).is_some();
        if node && !input.kubernetes_groups.is_empty() {
            return Err(AwsError::invalid_parameter(format!(
                "kubernetesGroups can't be specified for an access entry of type {kind}: its groups are fixed"
            )));
        }
        if node && input.username.is_some() {
            return Err(AwsError::invalid_parameter(format!(
                "username can't be specified for an access entry of type {kind}: its username is fixed"
            )));
        }
        if p.pattern {
            pattern::check(&p, &input.principal_arn, &kind)?;
        }
        if node && p.kind != PrincipalKind::Role {
            return Err(AwsError::invalid_parameter(format!(
                "The principalArn of an access entry of type {kind} must be an IAM role."
            )));
        }
        let kubernetes_groups = groups(&input.kubernetes_groups)?;
        if let Some(u) = &input.username {
            username(u)?;
        }
        check_tags(&input.tags)?;
        if let Some(t) = &input.client_request_token
            && (t.is_empty() || t.len() > 64)
        {
            return Err(AwsError::invalid_parameter(
                "clientRequestToken must be 1-64 characters",
            ));
        }
        if p.account != account {
            return Err(AwsError::invalid_parameter(format!(
                "The specified principalArn is invalid: {} is not in the cluster's account {account}.",
                input.principal_arn
            )));
        }
        let guard = self.db.write().await;
        // A pattern names no role: nothing needs to exist yet, and it is stored as given.
        let canonical = if p.pattern {
            Some(input.principal_arn.clone())
        } else {
            self.principal_canonical(&p)
        };
        let keys = Keys::none()
            .request_tags(input.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .with(
                "eks:principalArn",
                canonical.as_deref().unwrap_or(&input.principal_arn),
            )
            .with("eks:accessEntryType", kind.as_str())
            .with_opt("eks:username", input.username.as_deref());
        let keys = if kubernetes_groups.is_empty() {
            keys
        } else {
            keys.with_multi("eks:kubernetesGroups", kubernetes_groups.clone())
        };
        if p.pattern {
            let target = match self
                .db
                .read()
                .clusters
                .get(&(account.clone(), cluster.to_owned()))
            {
                Some(c) => Target::cluster(&self.config.region, &account, &c.value),
                None => Target::new_cluster(&self.config.region, &account, cluster),
            };
            self.authorize_pattern(
                caller,
                meta,
                Action::EksCreateAccessEntry,
                &target,
                cluster,
                &p,
                &keys,
            )?;
        }
        let (c, cluster_version) = self
            .cluster_for(caller, meta, Action::EksCreateAccessEntry, cluster, keys)?
            .ok_or_else(|| cluster_not_found(cluster))?;
        api_on(&c)?;
        let canonical = canonical.ok_or_else(|| {
            AwsError::invalid_parameter(format!(
                "The specified principalArn is invalid: {} does not exist.",
                input.principal_arn
            ))
        })?;
        let id = access_entry_id(cluster, &canonical);
        let existing = self
            .db
            .read()
            .access_entries
            .get(&(account.clone(), id.clone()))
            .map(|e| Arc::clone(&e.value));
        if let Some(e) = existing {
            // A retry of the same create returns the entry it made.
            let same = input.client_request_token.is_some()
                && e.client_request_token == input.client_request_token
                && e.kind == kind
                && e.tags == input.tags
                && (node
                    || (e.kubernetes_groups == kubernetes_groups
                        && input.username.as_ref().is_none_or(|u| *u == e.username)));
            if same {
                return Ok(e);
            }
            return Err(AwsError::resource_in_use(format!(
                "The specified access entry resource is already in use on this cluster: {canonical}."
            )));
        }
        if p.pattern {
            self.pattern_conflict(&account, cluster, &p)?;
        }
        // Pattern entries count like any other.
        let count =
            access_entries_of(&self.db.read().access_entries, &account, cluster, None).count();
        if count >= self.config.max_access_entries_per_cluster {
            return Err(AwsError::resource_limit(format!(
                "cluster {cluster} already has the maximum of {} access entries",
                self.config.max_access_entries_per_cluster
            )));
        }
        let mut e = self.new_access_entry(
            cluster,
            &p,
            &canonical,
            kind,
            input.username,
            kubernetes_groups,
        )?;
        e.tags = input.tags;
        e.client_request_token = input.client_request_token;
        let now = self.now();
        // The cluster as read, as for Pod Identity associations: a DeleteCluster elsewhere that
        // did not see this entry, or another replica's entry for the principal, conflicts.
        let changes = vec![
            Change::insert(kind::ACCESS_ENTRY, &account, &id, &e)?,
            Change::touch(kind::CLUSTER, &account, cluster, &*c, cluster_version)?,
        ];
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(e))
    }

    /// DescribeAccessEntry.
    pub fn describe_access_entry(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        principal_arn: &str,
    ) -> Result<Arc<model::AccessEntry>> {
        Ok(self
            .entry_for(
                caller,
                meta,
                Action::EksDescribeAccessEntry,
                cluster,
                principal_arn,
                |_| Keys::none(),
            )?
            .value)
    }

    /// ListAccessEntries: principal ARNs in ARN order, optionally only the entries an access
    /// policy is associated with.
    pub fn list_access_entries(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        associated_policy: Option<&str>,
        max_results: Option<i64>,
        next: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let account = caller.account().to_owned();
        let (c, _) = self
            .cluster_for(
                caller,
                meta,
                Action::EksListAccessEntries,
                cluster,
                Keys::none(),
            )?
            .ok_or_else(|| cluster_not_found(cluster))?;
        let max = page_size(max_results)?;
        let after = decode_token(next)?;
        let policy = associated_policy.map(policy_arn).transpose()?;
        api_on(&c)?;
        let t = self.db.read();
        let mut out = Vec::new();
        let mut more = false;
        for e in access_entries_of(&t.access_entries, &account, cluster, after.as_deref()) {
            if policy.is_some_and(|p| !e.value.policies.iter().any(|a| a.policy_arn == p)) {
                continue;
            }
            if out.len() == max {
                more = true;
                break;
            }
            out.push(e.value.principal_arn.clone());
        }
        let token = if more {
            out.last().map(|l| encode_token(l))
        } else {
            None
        };
        Ok((out, token))
    }

    /// UpdateAccessEntry: the groups and username of a `STANDARD` entry.
    pub async fn update_access_entry(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        principal_arn: &str,
        input: UpdateAccessEntry,
    ) -> Result<Arc<model::AccessEntry>> {
        let new_groups = input.kubernetes_groups.as_deref().map(groups).transpose()?;
        if let Some(u) = &input.username {
            username(u)?;
        }
        let (new_username, update_groups) = (input.username.clone(), new_groups.clone());
        // Authorized on what the entry is now as well as on what it will be: a condition on
        // either cannot be side-stepped by renaming the entry first.
        self.entry_for(
            caller,
            meta,
            Action::EksUpdateAccessEntry,
            cluster,
            principal_arn,
            |_| Keys::none(),
        )?;
        let (a, ()) = self
            .update_entry(
                caller,
                meta,
                Action::EksUpdateAccessEntry,
                cluster,
                principal_arn,
                |stored| {
                    // The values the entry will have: the new ones where given.
                    let Some(e) = stored else {
                        return Keys::none();
                    };
                    let username = new_username.as_deref().unwrap_or(&e.username);
                    let groups = update_groups.as_ref().unwrap_or(&e.kubernetes_groups);
                    let k = Keys::none().with("eks:username", username);
                    if groups.is_empty() {
                        k
                    } else {
                        k.with_multi("eks:kubernetesGroups", groups.clone())
                    }
                },
                |a, _| {
                    if node_identity(&a.kind).is_some()
                        && (input.kubernetes_groups.is_some() || input.username.is_some())
                    {
                        return Err(AwsError::invalid_parameter(format!(
                            "The username and kubernetesGroups of an access entry of type {} are fixed.",
                            a.kind
                        )));
                    }
                    if let Some(g) = new_groups {
                        a.kubernetes_groups = g;
                    }
                    if let Some(u) = input.username {
                        a.username = u;
                    }
                    Ok(())
                },
            )
            .await?;
        Ok(Arc::new(a))
    }

    /// DeleteAccessEntry (with its policy associations).
    pub async fn delete_access_entry(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        principal_arn: &str,
    ) -> Result<()> {
        let account = caller.account().to_owned();
        let guard = self.db.write().await;
        let e = self.entry_for(
            caller,
            meta,
            Action::EksDeleteAccessEntry,
            cluster,
            principal_arn,
            |_| Keys::none(),
        )?;
        let id = access_entry_id(cluster, &e.value.principal_arn);
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::ACCESS_ENTRY, &account, &id, e.version)],
                now,
            )
            .await
    }
}
