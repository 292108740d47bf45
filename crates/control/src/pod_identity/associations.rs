//! Pod Identity associations (EKS API): Create, Describe, List, Update, Delete.

use std::sync::Arc;

use super::params::{
    CreateAssociation, SERVICE_PRINCIPAL, UpdateAssociation, association_id, check_session_policy,
    external_id, k8s_name, role_arn_param,
};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::eks::check_tags;
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::names;
use crate::state::Change;

impl Control {
    /// `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`.
    pub fn association_arn(&self, account: &str, cluster: &str, id: &str) -> String {
        format!(
            "arn:aws:eks:{}:{account}:podidentityassociation/{cluster}/{id}",
            self.config.region
        )
    }

    pub(super) fn cluster_entry(&self, account: &str, name: &str) -> Result<Arc<model::Cluster>> {
        let e = self
            .db
            .read()
            .clusters
            .get(&(account.to_owned(), name.to_owned()))
            .map(|e| Arc::clone(&e.value));
        e.ok_or_else(|| AwsError::resource_not_found(format!("No cluster found for name: {name}.")))
    }

    /// The association `id` of `cluster` in the caller's account, authorized for `action` on
    /// the stored association (its tags as `aws:ResourceTag/*`), or on the ARN of the id as
    /// given when there is none.
    fn association_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        cluster: &str,
        id: &str,
    ) -> Result<crate::state::Entry<model::PodIdentityAssociation>> {
        let account = caller.account();
        let e = self
            .db
            .read()
            .associations
            .get(account, cluster, id)
            .cloned();
        let target = match &e {
            Some(e) => Target::association(&self.config.region, account, &e.value),
            None => Target::new_association(&self.config.region, account, cluster, id),
        };
        self.authorize(caller, action, &target, meta, Keys::none())?;
        self.cluster_entry(account, cluster)?;
        e.ok_or_else(|| {
            AwsError::resource_not_found(format!(
                "Pod identity association {id} not found in cluster {cluster}."
            ))
        })
    }

    /// The association role must be a role of the cluster's account that exists.
    fn check_association_role(&self, account: &str, arn: &str) -> Result<()> {
        let r = role_arn_param(arn, "roleArn")?;
        if r.account.as_str() != account {
            return Err(AwsError::invalid_parameter(format!(
                "roleArn {arn} must be in the cluster's account {account}; use targetRoleArn for a role in another account"
            )));
        }
        let exists = self
            .db
            .read()
            .roles
            .get(&(account.to_owned(), r.name.to_lowercase()))
            .is_some_and(|e| e.value.path == r.path);
        if !exists {
            return Err(AwsError::invalid_parameter(format!(
                "Role {arn} does not exist."
            )));
        }
        Ok(())
    }

    /// CreatePodIdentityAssociation.
    pub async fn create_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        input: CreateAssociation,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        let account = caller.account().to_owned();
        crate::eks::cluster_name(cluster)?;
        k8s_name(&input.namespace, "namespace", 63)?;
        k8s_name(&input.service_account, "serviceAccount", 253)?;
        names::bounded(&input.role_arn, "roleArn", 1, 2048)
            .map_err(|e| AwsError::invalid_parameter(e.message))?;
        if let Some(t) = &input.target_role_arn {
            role_arn_param(t, "targetRoleArn")?;
        }
        if let Some(p) = &input.policy {
            if !input.disable_session_tags {
                return Err(AwsError::invalid_parameter(
                    "policy can only be set when disableSessionTags is true",
                ));
            }
            check_session_policy(p)?;
        }
        check_tags(&input.tags)?;
        if let Some(t) = &input.client_request_token
            && (t.is_empty() || t.len() > 64)
        {
            return Err(AwsError::invalid_parameter(
                "clientRequestToken must be 1-64 characters",
            ));
        }
        let mut input = input;
        let req_tags =
            Keys::none().request_tags(input.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let guard = self.db.write().await;
        let (cluster_record, cluster_version) = self
            .cluster_for(
                caller,
                meta,
                Action::EksCreatePodIdentityAssociation,
                cluster,
                req_tags,
            )?
            .ok_or_else(|| {
                AwsError::resource_not_found(format!("No cluster found for name: {cluster}."))
            })?;
        self.check_association_role(&account, &input.role_arn)?;
        // The association keeps the role's canonical ARN (stored case and path), the one
        // `iam:PassRole` was authorized on.
        let cluster_arn = self.cluster_arn(&account, cluster);
        let (role_arn, role_touch) = self.pass_role(
            caller,
            meta,
            &input.role_arn,
            SERVICE_PRINCIPAL,
            &cluster_arn,
            true,
        )?;
        input.role_arn = role_arn;
        let existing = self
            .db
            .read()
            .associations
            .find(&account, cluster, &input.namespace, &input.service_account)
            .map(|e| Arc::clone(&e.value));
        if let Some(a) = existing {
            // A retry of the same create returns the association it made.
            let same = input.client_request_token.is_some()
                && a.client_request_token == input.client_request_token
                && a.role_arn == input.role_arn
                && a.target_role_arn == input.target_role_arn
                && a.disable_session_tags == input.disable_session_tags
                && a.policy == input.policy
                && a.tags == input.tags;
            if same {
                return Ok(a);
            }
            return Err(AwsError::resource_in_use(format!(
                "Association already exists: {} for namespace {} and service account {} in cluster {cluster}",
                a.id, a.namespace, a.service_account
            )));
        }
        let count = self.db.read().associations.count(&account, cluster);
        if count >= self.config.max_associations_per_cluster {
            return Err(AwsError::resource_limit(format!(
                "cluster {cluster} already has the maximum of {} pod identity associations",
                self.config.max_associations_per_cluster
            )));
        }
        let now_ms = self.now_ms();
        let a = model::PodIdentityAssociation {
            id: association_id()?,
            cluster: cluster.to_owned(),
            namespace: input.namespace,
            service_account: input.service_account,
            role_arn: input.role_arn,
            target_role_arn: input.target_role_arn,
            external_id: external_id()?,
            disable_session_tags: input.disable_session_tags,
            policy: input.policy,
            tags: input.tags,
            created_ms: now_ms,
            modified_ms: now_ms,
            owner_arn: None,
            client_request_token: input.client_request_token,
        };
        let now = self.now();
        // The cluster as read: a DeleteCluster on another replica that did not see this
        // association, or another replica's association for the same service account, conflicts
        // with this batch instead of leaving an association to a cluster that is gone, or two.
        let mut changes = vec![
            Change::insert(kind::POD_IDENTITY_ASSOCIATION, &account, &a.id, &a)?,
            Change::touch(
                kind::CLUSTER,
                &account,
                cluster,
                &*cluster_record,
                cluster_version,
            )?,
        ];
        // And the role, whose tags and path the PassRole decision read.
        changes.extend(role_touch);
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(a))
    }

    /// DescribePodIdentityAssociation.
    pub fn describe_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        id: &str,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        Ok(self
            .association_for(
                caller,
                meta,
                Action::EksDescribePodIdentityAssociation,
                cluster,
                id,
            )?
            .value)
    }

    /// ListPodIdentityAssociations, filtered by namespace and service account, paginated by
    /// association id.
    #[allow(clippy::too_many_arguments)]
    pub fn list_pod_identity_associations(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        namespace: Option<&str>,
        service_account: Option<&str>,
        max_results: Option<i64>,
        next: Option<&str>,
    ) -> Result<(Vec<Arc<model::PodIdentityAssociation>>, Option<String>)> {
        let account = caller.account().to_owned();
        self.cluster_for(
            caller,
            meta,
            Action::EksListPodIdentityAssociations,
            cluster,
            Keys::none(),
        )?;
        let max = match max_results {
            None => 100,
            Some(n @ 1..=100) => usize::try_from(n).unwrap_or(100),
            Some(_) => {
                return Err(AwsError::invalid_parameter(
                    "maxResults must be between 1 and 100",
                ));
            }
        };
        let after = match next {
            None => None,
            Some(t) if t.starts_with("a-") && t.len() <= 64 => Some(t.to_owned()),
            Some(_) => return Err(AwsError::invalid_parameter("nextToken is not valid")),
        };
        self.cluster_entry(&account, cluster)?;
        let t = self.db.read();
        let mut out: Vec<Arc<model::PodIdentityAssociation>> = Vec::new();
        let mut more = false;
        for (_, e) in t
            .associations
            .of_cluster(&account, cluster, after.as_deref())
        {
            if namespace.is_some_and(|n| n != e.value.namespace)
                || service_account.is_some_and(|s| s != e.value.service_account)
            {
                continue;
            }
            if out.len() == max {
                more = true;
                break;
            }
            out.push(Arc::clone(&e.value));
        }
        let token = if more {
            out.last().map(|a| a.id.clone())
        } else {
            None
        };
        Ok((out, token))
    }

    /// UpdatePodIdentityAssociation.
    pub async fn update_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        id: &str,
        input: UpdateAssociation,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        let account = caller.account().to_owned();
        if let Some(t) = input.target_role_arn.as_deref().filter(|t| !t.is_empty()) {
            role_arn_param(t, "targetRoleArn")?;
        }
        if let Some(p) = input.policy.as_deref().filter(|p| !p.is_empty()) {
            check_session_policy(p)?;
        }
        let guard = self.db.write().await;
        let e = self.association_for(
            caller,
            meta,
            Action::EksUpdatePodIdentityAssociation,
            cluster,
            id,
        )?;
        let mut a = (*e.value).clone();
        let mut role_touch = None;
        if let Some(r) = input.role_arn {
            self.check_association_role(&account, &r)?;
            let cluster_arn = self.cluster_arn(&account, cluster);
            let (arn, touch) =
                self.pass_role(caller, meta, &r, SERVICE_PRINCIPAL, &cluster_arn, true)?;
            a.role_arn = arn;
            role_touch = touch;
        }
        if let Some(t) = input.target_role_arn {
            a.target_role_arn = (!t.is_empty()).then_some(t);
        }
        if let Some(d) = input.disable_session_tags {
            a.disable_session_tags = d;
        }
        if let Some(p) = input.policy {
            a.policy = (!p.is_empty()).then_some(p);
        }
        if a.policy.is_some() && !a.disable_session_tags {
            return Err(AwsError::invalid_parameter(
                "policy can only be set when disableSessionTags is true",
            ));
        }
        a.modified_ms = self.now_ms();
        let now = self.now();
        let mut changes = vec![Change::update(
            kind::POD_IDENTITY_ASSOCIATION,
            &account,
            id,
            &a,
            e.version,
        )?];
        changes.extend(role_touch);
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(a))
    }

    /// DeletePodIdentityAssociation: returns the deleted association.
    pub async fn delete_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        id: &str,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        let account = caller.account().to_owned();
        let guard = self.db.write().await;
        let e = self.association_for(
            caller,
            meta,
            Action::EksDeletePodIdentityAssociation,
            cluster,
            id,
        )?;
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(
                    kind::POD_IDENTITY_ASSOCIATION,
                    &account,
                    id,
                    e.version,
                )],
                now,
            )
            .await?;
        Ok(e.value)
    }
}
