//! EKS clusters: Create, Describe, List, Delete.
//!
//! podiam stores the networking and logging fields EKS requires but does not act on them. A
//! cluster is `ACTIVE` as soon as it is created. Each cluster gets a hosted OIDC issuer
//! (RSA-2048 by default; the tag `podiam.io/issuer-algorithm=ES256` asks for P-256) unless the
//! tag `podiam.io/external-issuer=<https URL>` names its own API server's issuer.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::{Caller, RequestMeta};
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::state::Change;
use crate::Control;

/// Tag that selects the hosted issuer's key algorithm.
pub const TAG_ISSUER_ALGORITHM: &str = "podiam.io/issuer-algorithm";
/// Tag that names an external issuer instead of a hosted one.
pub const TAG_EXTERNAL_ISSUER: &str = "podiam.io/external-issuer";

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

impl Control {
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub fn cluster_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:eks:{}:{account}:cluster/{name}", self.config.region)
    }

    /// CreateCluster from its rest-json body.
    pub async fn create_cluster(&self, caller: &Caller, meta: &RequestMeta, body: &serde_json::Value) -> Result<Arc<model::Cluster>> {
        let account = caller.account().to_owned();
        let obj = body.as_object().ok_or_else(|| AwsError::invalid_parameter("the request body must be a JSON object"))?;
        let str_field = |k: &str| obj.get(k).and_then(|v| v.as_str());
        let name = str_field("name").ok_or_else(|| AwsError::invalid_parameter("name is required"))?.to_owned();
        cluster_name(&name)?;
        let role_arn = str_field("roleArn").ok_or_else(|| AwsError::invalid_parameter("roleArn is required"))?.to_owned();
        if crate::names::RoleArn::parse(&role_arn).is_none() {
            return Err(AwsError::invalid_parameter(format!("roleArn {role_arn:?} is not a valid role ARN")));
        }
        if !obj.get("resourcesVpcConfig").is_some_and(|v| v.is_object()) {
            return Err(AwsError::invalid_parameter("resourcesVpcConfig is required"));
        }
        let version = match obj.get("version") {
            None | Some(serde_json::Value::Null) => "1.33".to_owned(),
            Some(serde_json::Value::String(v)) if is_k8s_version(v) => v.clone(),
            Some(v) => return Err(AwsError::invalid_parameter(format!("unsupported kubernetes version {v}"))),
        };
        let mut tags = BTreeMap::new();
        if let Some(t) = obj.get("tags") {
            let t = t.as_object().ok_or_else(|| AwsError::invalid_parameter("tags must be a map"))?;
            for (k, v) in t {
                let v = v.as_str().ok_or_else(|| AwsError::invalid_parameter("tag values must be strings"))?;
                tags.insert(k.clone(), v.to_owned());
            }
            crate::pod_identity::check_tags(&tags)?;
        }
        let alg = match tags.get(TAG_ISSUER_ALGORITHM).map(String::as_str) {
            None | Some("RS256") => "RS256",
            Some("ES256") => "ES256",
            Some(other) => return Err(AwsError::invalid_parameter(format!("{TAG_ISSUER_ALGORITHM} must be RS256 or ES256, not {other:?}"))),
        };
        let external = tags.get(TAG_EXTERNAL_ISSUER).cloned();
        if let Some(url) = &external {
            let ok = url.starts_with("https://") || (self.config.dangerous_allow_http_issuer && url.starts_with("http://"));
            if !ok || url.contains(['?', '#']) {
                return Err(AwsError::invalid_parameter(format!("{TAG_EXTERNAL_ISSUER} must be an https URL without query or fragment")));
            }
        }
        let arn = self.cluster_arn(&account, &name);
        self.authorize(caller, "eks:CreateCluster", &arn, &account, meta, &[])?;
        // Creating a cluster hands it a role: the caller must be allowed to pass it.
        self.authorize(caller, "iam:PassRole", &role_arn, &account, meta, &[("iam:PassedToService".into(), vec!["eks.amazonaws.com".into()])])?;
        let guard = self.db.write().await;
        if self.db.read().clusters.contains_key(&(account.clone(), name.clone())) {
            return Err(AwsError::resource_in_use(format!("cluster already exists with name: {name}")));
        }
        let oidc_id = hex::encode_upper(crate::crypto::random_bytes::<16>().map_err(|_| AwsError::server_exception())?);
        let (issuer, hosted, keys) = match external {
            Some(url) => (url.trim_end_matches('/').to_owned(), false, vec![]),
            None => (
                format!("{}/id/{oidc_id}", self.config.issuer_base_url.trim_end_matches('/')),
                true,
                vec![self.new_issuer_key(&name, alg)?],
            ),
        };
        let mut spec = body.clone();
        if let Some(o) = spec.as_object_mut() {
            for k in ["name", "roleArn", "version", "tags", "clientRequestToken"] {
                o.remove(k);
            }
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
        };
        let now = self.now();
        self.db.commit(&guard, vec![Change::insert(kind::CLUSTER, &account, &name, &c)?], now).await?;
        Ok(Arc::new(c))
    }

    /// DescribeCluster.
    pub fn describe_cluster(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<Arc<model::Cluster>> {
        let arn = self.cluster_arn(caller.account(), name);
        self.authorize(caller, "eks:DescribeCluster", &arn, caller.account(), meta, &[])?;
        let e = self.db.read().clusters.get(&(caller.account().to_owned(), name.to_owned())).cloned();
        e.map(|e| e.value).ok_or_else(|| AwsError::resource_not_found(format!("no cluster found for name: {name}.")))
    }

    /// ListClusters: names, paginated by `nextToken` (the last name returned).
    pub fn list_clusters(&self, caller: &Caller, meta: &RequestMeta, max_results: Option<i64>, next: Option<&str>) -> Result<(Vec<String>, Option<String>)> {
        let account = caller.account().to_owned();
        let arn = format!("arn:aws:eks:{}:{account}:cluster/*", self.config.region);
        self.authorize(caller, "eks:ListClusters", &arn, &account, meta, &[])?;
        let max = match max_results {
            None => 100,
            Some(n @ 1..=100) => usize::try_from(n).unwrap_or(100),
            Some(_) => return Err(AwsError::invalid_parameter("maxResults must be between 1 and 100")),
        };
        let t = self.db.read();
        let names: Vec<String> = t
            .clusters
            .range((account.clone(), String::new())..)
            .take_while(|((a, _), _)| a == &account)
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
    pub async fn delete_cluster(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<Arc<model::Cluster>> {
        let arn = self.cluster_arn(caller.account(), name);
        self.authorize(caller, "eks:DeleteCluster", &arn, caller.account(), meta, &[])?;
        let guard = self.db.write().await;
        let e = self.db.read().clusters.get(&(caller.account().to_owned(), name.to_owned())).cloned();
        let e = e.ok_or_else(|| AwsError::resource_not_found(format!("no cluster found for name: {name}.")))?;
        let now = self.now();
        // The cluster's Pod Identity associations go with it.
        let mut changes = self.cluster_association_deletes(caller.account(), name);
        changes.push(Change::delete(kind::CLUSTER, caller.account(), name));
        self.db.commit(&guard, changes, now).await?;
        Ok(e.value)
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
