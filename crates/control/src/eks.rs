//! EKS clusters: Create, Describe, List, Delete.
//!
//! podiam stores the networking and logging fields EKS requires but does not act on them. A
//! cluster is `ACTIVE` as soon as it is created. Each cluster gets a hosted OIDC issuer
//! (RSA-2048 by default; the tag `podiam.io/issuer-algorithm=ES256` asks for P-256) unless the
//! tag `podiam.io/external-issuer=<https URL>` names its own API server's issuer.

use std::collections::BTreeMap;
use std::sync::Arc;

use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::state::{Change, access_entries_of, access_entry_id, of_account};

/// Tag that selects the hosted issuer's key algorithm.
pub const TAG_ISSUER_ALGORITHM: &str = "podiam.io/issuer-algorithm";
/// Tag that names an external issuer instead of a hosted one.
pub const TAG_EXTERNAL_ISSUER: &str = "podiam.io/external-issuer";

/// Clusters per account (EKS's default quota per region).
pub const CLUSTERS_PER_ACCOUNT: usize = 100;
/// The largest cluster specification stored (the JSON of the fields podiam keeps but does not
/// act on): far above any real CreateCluster request, small enough that no tenant can fill
/// the shared control plane's memory with padding.
pub const MAX_SPEC_BYTES: usize = 16 * 1024;

/// Validate a cluster name: 1-100 of `[0-9A-Za-z][A-Za-z0-9\-_]*`.
pub fn cluster_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = name.len() <= 100
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AwsError::invalid_parameter(format!(
            "the cluster name {name:?} must be 1-100 characters, start with a letter or digit and contain only letters, digits, '-' and '_'"
        )))
    }
}

/// EKS tag rules: at most 50, keys 1-128 and values 0-256 characters, no `aws:` prefix.
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > 50 {
        return Err(AwsError::invalid_parameter(
            "a resource can have at most 50 tags",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(AwsError::invalid_parameter(format!(
                "tag {k:?} is not valid: keys 1-128, values 0-256 characters"
            )));
        }
        if policy::fold_key(k).starts_with("aws:") {
            return Err(AwsError::invalid_parameter(format!(
                "tag key {k:?} uses the reserved prefix aws:"
            )));
        }
    }
    // Keys that fold to one key would be one `aws:ResourceTag/...` to the policy engine.
    let mut folded: Vec<String> = tags.keys().map(|k| policy::fold_key(k)).collect();
    folded.sort();
    if folded.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(AwsError::invalid_parameter(
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
        ));
    }
    Ok(())
}

impl Control {
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub fn cluster_arn(&self, account: &str, name: &str) -> String {
        format!(
            "arn:aws:eks:{}:{account}:cluster/{name}",
            self.config.region
        )
    }

    /// CreateCluster from its rest-json body.
    pub async fn create_cluster(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        body: &serde_json::Value,
    ) -> Result<Arc<model::Cluster>> {
        let account = caller.account().to_owned();
        let obj = body
            .as_object()
            .ok_or_else(|| AwsError::invalid_parameter("the request body must be a JSON object"))?;
        let str_field = |k: &str| obj.get(k).and_then(|v| v.as_str());
        let name = str_field("name")
            .ok_or_else(|| AwsError::invalid_parameter("name is required"))?
            .to_owned();
        cluster_name(&name)?;
        let role_arn = str_field("roleArn")
            .ok_or_else(|| AwsError::invalid_parameter("roleArn is required"))?
            .to_owned();
        if crate::names::RoleArn::parse(&role_arn).is_none() {
            return Err(AwsError::invalid_parameter(format!(
                "roleArn {role_arn:?} is not a valid role ARN"
            )));
        }
        if !obj.get("resourcesVpcConfig").is_some_and(|v| v.is_object()) {
            return Err(AwsError::invalid_parameter(
                "resourcesVpcConfig is required",
            ));
        }
        let version = match obj.get("version") {
            None | Some(serde_json::Value::Null) => "1.33".to_owned(),
            Some(serde_json::Value::String(v)) if is_k8s_version(v) => v.clone(),
            Some(v) => {
                return Err(AwsError::invalid_parameter(format!(
                    "unsupported kubernetes version {v}"
                )));
            }
        };
        let mut tags = BTreeMap::new();
        if let Some(t) = obj.get("tags") {
            let t = t
                .as_object()
                .ok_or_else(|| AwsError::invalid_parameter("tags must be a map"))?;
            for (k, v) in t {
                let v = v
                    .as_str()
                    .ok_or_else(|| AwsError::invalid_parameter("tag values must be strings"))?;
                tags.insert(k.clone(), v.to_owned());
            }
            check_tags(&tags)?;
        }
        let alg = match tags.get(TAG_ISSUER_ALGORITHM).map(String::as_str) {
            None | Some("RS256") => "RS256",
            Some("ES256") => "ES256",
            Some(other) => {
                return Err(AwsError::invalid_parameter(format!(
                    "{TAG_ISSUER_ALGORITHM} must be RS256 or ES256, not {other:?}"
                )));
            }
        };
        let external = tags.get(TAG_EXTERNAL_ISSUER).cloned();
        if let Some(url) = &external {
            let ok = url.starts_with("https://")
                || (self.config.dangerous_allow_http_issuer && url.starts_with("http://"));
            if !ok || url.contains(['?', '#']) {
                return Err(AwsError::invalid_parameter(format!(
                    "{TAG_EXTERNAL_ISSUER} must be an https URL without query or fragment"
                )));
            }
        }
        let (access_config, access_keys) = self.cluster_access_request(caller, body)?;
        let target = Target::new_cluster(&self.config.region, &account, &name);
        let req_keys = Keys::none()
            .request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .and(access_keys);
        self.authorize(caller, Action::EksCreateCluster, &target, meta, req_keys)?;
        let guard = self.db.write().await;
        // Creating a cluster hands it a role: the caller must be allowed to pass it. A role the
        // cluster names that does not exist is passed as named (EKS only keeps the ARN).
        let (role_arn, role_touch) = self.pass_role(
            caller,
            meta,
            &role_arn,
            "eks.amazonaws.com",
            target.arn(),
            false,
        )?;
        if self
            .db
            .read()
            .clusters
            .contains_key(&(account.clone(), name.clone()))
        {
            return Err(AwsError::resource_in_use(format!(
                "cluster already exists with name: {name}"
            )));
        }
        let oidc_id = hex::encode_upper(
            crate::crypto::random_bytes::<16>().map_err(|_| AwsError::server_exception())?,
        );
        let (issuer, hosted, keys) = match external {
            Some(url) => (url.trim_end_matches('/').to_owned(), false, vec![]),
            None => (
                format!(
                    "{}/id/{oidc_id}",
                    self.config.issuer_base_url.trim_end_matches('/')
                ),
                true,
                vec![self.new_issuer_key(&name, alg)?],
            ),
        };
        let mut spec = body.clone();
        if let Some(o) = spec.as_object_mut() {
            for k in [
                "name",
                "roleArn",
                "version",
                "tags",
                "clientRequestToken",
                "accessConfig",
            ] {
                o.remove(k);
            }
        }
        if serde_json::to_vec(&spec).map_or(usize::MAX, |v| v.len()) > MAX_SPEC_BYTES {
            return Err(AwsError::invalid_parameter(format!(
                "the cluster configuration must not exceed {MAX_SPEC_BYTES} bytes"
            )));
        }
        let count = of_account(&self.db.read().clusters, &account).count();
        if count >= CLUSTERS_PER_ACCOUNT {
            return Err(AwsError::resource_limit(format!(
                "cannot create more than {CLUSTERS_PER_ACCOUNT} clusters in this account"
            )));
        }
        let c = model::Cluster {
            name: name.clone(),
            spec,
            role_arn,
            version,
            created_ms: self.now_ms(),
            tags,
            oidc_id,
            issuer,
            hosted,
            keys,
            access_config,
        };
        let mut changes = vec![Change::insert(kind::CLUSTER, &account, &name, &c)?];
        // The creator's bootstrap entry is made with the cluster, or not at all.
        changes.extend(self.bootstrap_entry(&account, &name, &c.access_config)?);
        changes.extend(role_touch);
        let now = self.now();
        self.db.commit(&guard, changes, now).await?;
        Ok(Arc::new(c))
    }

    /// The cluster `name` names in the caller's account, authorized for `action` on the stored
    /// cluster (its tags as `aws:ResourceTag/*`), or on the name as given when there is none.
    pub(crate) fn cluster_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
    ) -> Result<Option<(Arc<model::Cluster>, i64)>> {
        let account = caller.account();
        let e = self
            .db
            .read()
            .clusters
            .get(&(account.to_owned(), name.to_owned()))
            .cloned();
        let target = match &e {
            Some(e) => Target::cluster(&self.config.region, account, &e.value),
            None => Target::new_cluster(&self.config.region, account, name),
        };
        self.authorize(caller, action, &target, meta, keys)?;
        Ok(e.map(|e| (e.value, e.version)))
    }

    /// `iam:PassRole` of the role `arn` names (in the caller's account) to `service`, for the
    /// resource `associated`: authorized on the stored role, whose canonical ARN is returned.
    /// Without `must_exist`, a role that does not exist is authorized (and returned) as named.
    ///
    /// With the ARN comes the [`Change::touch`] of the stored role, for the batch the pass is
    /// for: the decision read the role's path and tags, so a replica that changed or deleted
    /// the role meanwhile conflicts with that batch rather than have it commit on a decision
    /// made from what the role no longer is.
    pub(crate) fn pass_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        service: &str,
        associated: &str,
        must_exist: bool,
    ) -> Result<(String, Option<Change>)> {
        let r = crate::names::RoleArn::parse(arn).ok_or_else(|| {
            AwsError::invalid_parameter(format!("roleArn {arn:?} is not a valid role ARN"))
        })?;
        let account = caller.account();
        if r.account.as_str() != account {
            return Err(AwsError::invalid_parameter(format!(
                "Role {arn} must be in the account {account} of the caller."
            )));
        }
        let key = r.name.to_lowercase();
        let stored = self
            .db
            .read()
            .roles
            .get(&(account.to_owned(), key.clone()))
            .filter(|x| x.value.path == r.path)
            .cloned();
        let target = match &stored {
            Some(e) => Target::role(account, &e.value),
            None if must_exist => {
                return Err(AwsError::invalid_parameter(format!(
                    "Role {arn} does not exist."
                )));
            }
            None => Target::new_iam(ResourceKind::Role, account, &r.path, &r.name),
        };
        let keys = Keys::none()
            .with("iam:PassedToService", service)
            .with("iam:AssociatedResourceArn", associated);
        self.authorize(caller, Action::IamPassRole, &target, meta, keys)?;
        let touch = match stored {
            Some(e) => Some(Change::touch(
                kind::ROLE,
                account,
                &key,
                &*e.value,
                e.version,
            )?),
            None => None,
        };
        Ok((target.arn().to_owned(), touch))
    }

    /// DescribeCluster.
    pub fn describe_cluster(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<Arc<model::Cluster>> {
        let e = self.cluster_for(caller, meta, Action::EksDescribeCluster, name, Keys::none())?;
        e.map(|e| e.0).ok_or_else(|| {
            AwsError::resource_not_found(format!("no cluster found for name: {name}."))
        })
    }

    /// ListClusters: names, paginated by `nextToken` (the last name returned).
    pub fn list_clusters(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        max_results: Option<i64>,
        next: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let account = caller.account().to_owned();
        self.authorize(
            caller,
            Action::EksListClusters,
            &Target::wildcard(&account),
            meta,
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
        let t = self.db.read();
        let names: Vec<String> = of_account(&t.clusters, &account)
            .map(|((_, n), _)| n.clone())
            .filter(|n| next.is_none_or(|m| n.as_str() > m))
            .take(max + 1)
            .collect();
        if names.len() > max {
            let page: Vec<String> = names.into_iter().take(max).collect();
            let token = page.last().cloned();
            Ok((page, token))
        } else {
            Ok((names, None))
        }
    }

    /// DeleteCluster: returns the deleted cluster.
    pub async fn delete_cluster(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<Arc<model::Cluster>> {
        let guard = self.db.write().await;
        let e = self.cluster_for(caller, meta, Action::EksDeleteCluster, name, Keys::none())?;
        let (cluster, version) = e.ok_or_else(|| {
            AwsError::resource_not_found(format!("no cluster found for name: {name}."))
        })?;
        let now = self.now();
        // The cluster's Pod Identity associations and access entries go with it.
        let mut changes = self.cluster_association_deletes(caller.account(), name);
        changes.extend(self.cluster_access_entry_deletes(caller.account(), name));
        changes.push(Change::delete(
            kind::CLUSTER,
            caller.account(),
            name,
            version,
        ));
        self.db.commit(&guard, changes, now).await?;
        Ok(cluster)
    }

    /// The deletions of every association of a cluster (when the cluster is deleted).
    fn cluster_association_deletes(&self, account: &str, cluster: &str) -> Vec<Change> {
        let t = self.db.read();
        t.associations
            .of_cluster(account, cluster, None)
            .map(|(id, e)| Change::delete(kind::POD_IDENTITY_ASSOCIATION, account, id, e.version))
            .collect()
    }

    /// The deletions of every access entry of a cluster (when the cluster is deleted).
    fn cluster_access_entry_deletes(&self, account: &str, cluster: &str) -> Vec<Change> {
        let t = self.db.read();
        access_entries_of(&t.access_entries, account, cluster, None)
            .map(|e| {
                Change::delete(
                    kind::ACCESS_ENTRY,
                    account,
                    &access_entry_id(cluster, &e.value.principal_arn),
                    e.version,
                )
            })
            .collect()
    }
}

fn is_k8s_version(v: &str) -> bool {
    let mut parts = v.split('.');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        assert!(cluster_name("my-cluster_1").is_ok());
        assert!(cluster_name("").is_err());
        assert!(cluster_name("-x").is_err());
        assert!(cluster_name("a b").is_err());
        assert!(cluster_name(&"a".repeat(101)).is_err());
        assert!(is_k8s_version("1.31"));
        assert!(!is_k8s_version("1.31.0"));
        assert!(!is_k8s_version("latest"));
    }
}
