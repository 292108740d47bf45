//! Tags of EKS resources, clusters, associations and access entries alike:
//! ListTagsForResource, TagResource, UntagResource.

use std::collections::BTreeMap;
use std::sync::Arc;

use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::eks::check_tags;
use crate::error::{AwsError, Result};
use crate::model::kind;
use crate::names;
use crate::state::{Change, access_entries_of, access_entry_id};

/// The stored record an EKS resource ARN names: its kind and store id.
enum Named {
    Cluster(String),
    Association(String),
    AccessEntry(String),
}

impl Control {
    /// Resolve an EKS resource ARN of the caller's account to the stored cluster, association or
    /// access entry: `(stored target, target as named, record)`. Other accounts' and regions'
    /// ARNs name nothing.
    fn eks_resource(&self, caller: &Caller, arn: &str) -> Result<(Option<Target>, Target, Named)> {
        let not_found = || AwsError::not_found(format!("resource not found: {arn}"));
        let a = names::Arn::parse(arn)
            .ok_or_else(|| AwsError::bad_request(format!("{arn:?} is not a valid ARN")))?;
        let account = caller.account();
        if a.service != "eks" || a.account != account || a.region != self.config.region {
            return Err(not_found());
        }
        let t = self.db.read();
        let region = &self.config.region;
        if let Some(name) = a.resource.strip_prefix("cluster/") {
            let stored = t
                .clusters
                .get(&(account.to_owned(), name.to_owned()))
                .map(|c| Target::cluster(region, account, &c.value));
            return Ok((
                stored,
                Target::new_cluster(region, account, name),
                Named::Cluster(name.to_owned()),
            ));
        }
        if let Some((cluster, id)) = a
            .resource
            .strip_prefix("podidentityassociation/")
            .and_then(|r| r.split_once('/'))
        {
            let stored = t
                .associations
                .get(account, cluster, id)
                .map(|e| Target::association(region, account, &e.value));
            return Ok((
                stored,
                Target::new_association(region, account, cluster, id),
                Named::Association(id.to_owned()),
            ));
        }
        if let Some(rest) = a.resource.strip_prefix("access-entry/") {
            // CLUSTER/role|user/ACCOUNT/NAME/UUID: the entry of the cluster with that UUID.
            let mut parts = rest.splitn(5, '/');
            let (Some(cluster), Some(pkind), Some(pacct), Some(pname), Some(uuid)) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Err(not_found());
            };
            if !matches!(pkind, "role" | "user") || names::AccountId::parse(pacct).is_none() {
                return Err(not_found());
            }
            let stored = access_entries_of(&t.access_entries, account, cluster, None)
                .find(|e| {
                    e.value.uuid == uuid
                        && Target::access_entry(region, account, &e.value).arn() == arn
                })
                .map(|e| Arc::clone(&e.value));
            let principal = format!("arn:aws:iam::{pacct}:{pkind}/{pname}");
            let named = Target::new_access_entry(region, account, cluster, &principal, uuid);
            return Ok(match stored {
                Some(e) => (
                    Some(Target::access_entry(region, account, &e)),
                    named,
                    Named::AccessEntry(access_entry_id(cluster, &e.principal_arn)),
                ),
                None => (None, named, Named::AccessEntry(String::new())),
            });
        }
        Err(not_found())
    }

    /// The stored EKS resource an ARN names, authorized for `action`; one that does not exist is
    /// authorized under the ARN as given before NotFound, so the caller learns whether it
    /// exists only where allowed to act on it.
    fn eks_resource_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        arn: &str,
        keys: Keys,
    ) -> Result<(Target, Named)> {
        let (stored, named, record) = self.eks_resource(caller, arn)?;
        self.authorize(
            caller,
            action,
            stored.as_ref().unwrap_or(&named),
            meta,
            keys,
        )?;
        let target =
            stored.ok_or_else(|| AwsError::not_found(format!("resource not found: {arn}")))?;
        Ok((target, record))
    }

    /// ListTagsForResource (EKS).
    pub fn list_eks_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<BTreeMap<String, String>> {
        let (target, _) = self.eks_resource_for(
            caller,
            meta,
            Action::EksListTagsForResource,
            arn,
            Keys::none(),
        )?;
        Ok(target.tags().iter().cloned().collect())
    }

    /// TagResource / UntagResource (EKS): add `add`, then remove `remove`.
    pub async fn change_eks_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        add: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> Result<()> {
        let bad = AwsError::bad_request;
        let (action, keys) = if remove.is_empty() {
            check_tags(&add).map_err(|e| bad(e.message))?;
            (
                Action::EksTagResource,
                Keys::none().request_tags(add.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            )
        } else {
            (Action::EksUntagResource, Keys::none().tag_keys(&remove))
        };
        if add.is_empty() && remove.is_empty() {
            return Err(bad("no tags were given".into()));
        }
        let guard = self.db.write().await;
        let (_, record) = self.eks_resource_for(caller, meta, action, arn, keys)?;
        let account = caller.account().to_owned();
        let apply = |tags: &mut BTreeMap<String, String>| -> Result<()> {
            // A new key replaces the old one it folds to, as IAM's tags do.
            for k in add.keys() {
                let f = policy::fold_key(k);
                tags.retain(|old, _| policy::fold_key(old) != f);
            }
            tags.extend(add.clone());
            let gone: Vec<String> = remove.iter().map(|k| policy::fold_key(k)).collect();
            tags.retain(|k, _| !gone.contains(&policy::fold_key(k)));
            if tags.len() > 50 {
                return Err(bad("a resource can have at most 50 tags".into()));
            }
            Ok(())
        };
        let gone = || AwsError::not_found(format!("resource not found: {arn}"));
        let change = match record {
            Named::Cluster(cluster) => {
                let e = self
                    .db
                    .read()
                    .clusters
                    .get(&(account.clone(), cluster.clone()))
                    .cloned();
                let e = e.ok_or_else(gone)?;
                let mut c = (*e.value).clone();
                apply(&mut c.tags)?;
                Change::update(kind::CLUSTER, &account, &cluster, &c, e.version)?
            }
            Named::Association(id) => {
                let e = self
                    .db
                    .read()
                    .associations
                    .get_by_id(&account, &id)
                    .cloned();
                let e = e.ok_or_else(gone)?;
                let mut a = (*e.value).clone();
                apply(&mut a.tags)?;
                Change::update(kind::POD_IDENTITY_ASSOCIATION, &account, &id, &a, e.version)?
            }
            Named::AccessEntry(id) => {
                let e = self
                    .db
                    .read()
                    .access_entries
                    .get(&(account.clone(), id.clone()))
                    .cloned();
                let e = e.ok_or_else(gone)?;
                let mut a = (*e.value).clone();
                apply(&mut a.tags)?;
                Change::update(kind::ACCESS_ENTRY, &account, &id, &a, e.version)?
            }
        };
        let now = self.now();
        self.db.commit(&guard, vec![change], now).await
    }
}
