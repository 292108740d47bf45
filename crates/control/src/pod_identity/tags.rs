//! Tags of EKS resources, clusters and associations alike: ListTagsForResource, TagResource,
//! UntagResource.

use std::collections::BTreeMap;

use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::eks::check_tags;
use crate::error::{AwsError, Result};
use crate::model::kind;
use crate::names;
use crate::state::Change;

impl Control {
    /// Resolve an EKS resource ARN of the caller's account to the stored cluster or association:
    /// `(target, cluster, association id)`. Other accounts' and regions' ARNs name nothing.
    #[allow(clippy::type_complexity)]
    fn eks_resource(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<(Option<Target>, Target, String, Option<String>)> {
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
            return Ok(
                match t.clusters.get(&(account.to_owned(), name.to_owned())) {
                    Some(c) => (
                        Some(Target::cluster(region, account, &c.value)),
                        Target::new_cluster(region, account, name),
                        name.to_owned(),
                        None,
                    ),
                    None => (
                        None,
                        Target::new_cluster(region, account, name),
                        name.to_owned(),
                        None,
                    ),
                },
            );
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
                cluster.to_owned(),
                Some(id.to_owned()),
            ));
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
    ) -> Result<(Target, String, Option<String>)> {
        let (stored, named, cluster, id) = self.eks_resource(caller, arn)?;
        self.authorize(
            caller,
            action,
            stored.as_ref().unwrap_or(&named),
            meta,
            keys,
        )?;
        let target =
            stored.ok_or_else(|| AwsError::not_found(format!("resource not found: {arn}")))?;
        Ok((target, cluster, id))
    }

    /// ListTagsForResource (EKS).
    pub fn list_eks_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<BTreeMap<String, String>> {
        let (target, _, _) = self.eks_resource_for(
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
        let (_, cluster, id) = self.eks_resource_for(caller, meta, action, arn, keys)?;
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
        let change = match id {
            None => {
                let e = self
                    .db
                    .read()
                    .clusters
                    .get(&(account.clone(), cluster.clone()))
                    .cloned();
                let e =
                    e.ok_or_else(|| AwsError::not_found(format!("resource not found: {arn}")))?;
                let mut c = (*e.value).clone();
                apply(&mut c.tags)?;
                Change::update(kind::CLUSTER, &account, &cluster, &c, e.version)?
            }
            Some(id) => {
                let e = self.association_entry(&account, &cluster, &id)?;
                let mut a = (*e.value).clone();
                apply(&mut a.tags)?;
                Change::update(kind::POD_IDENTITY_ASSOCIATION, &account, &id, &a, e.version)?
            }
        };
        let now = self.now();
        self.db.commit(&guard, vec![change], now).await
    }
}
