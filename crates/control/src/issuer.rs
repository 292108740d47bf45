//! Hosted OIDC issuers of clusters, as EKS gives every cluster one.
//!
//! A hosted issuer is `<issuer base>/id/<ID>`; podiam serves its discovery document and JWKS,
//! holds its signing keys (sealed at rest), rotates them with overlap (a retired key stays in the
//! JWKS for `issuer_key_retention_secs`), exports them for `kube-apiserver`, and mints
//! projected-token-shaped tokens for development and tests.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use podiam_jose::{JwkSet, KeyAlgorithm, SigningKey};

use crate::auth::{Caller, RequestMeta};
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::state::Change;
use crate::Control;

/// Parsed keys of one hosted issuer, cached by cluster record version.
#[derive(Default)]
pub(crate) struct HostedKeys {
    by_issuer: RwLock<HashMap<String, (i64, Arc<IssuerKeys>)>>,
}

/// The usable keys of a hosted issuer.
pub struct IssuerKeys {
    /// Verification keys (current and still-retained).
    pub jwks: Arc<JwkSet>,
    /// JWKS document text.
    pub jwks_json: String,
    /// The signing key.
    pub signer: Option<Arc<SigningKey>>,
    /// Every key still in the JWKS, newest last.
    pub all: Vec<Arc<SigningKey>>,
}

/// What `podiam issuer export` prints.
#[derive(Debug, Clone)]
pub struct IssuerExport {
    /// The issuer URL.
    pub issuer: String,
    /// PKCS#8 PEM of the signing key.
    pub signing_key_pem: String,
    /// PKIX PEMs of every key in the JWKS.
    pub public_keys_pem: String,
    /// The JWKS document.
    pub jwks: String,
}

/// Inputs of a development token.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Namespace.
    pub namespace: String,
    /// Service account name.
    pub service_account: String,
    /// Audiences (default `sts.amazonaws.com`).
    pub audiences: Vec<String>,
    /// Pod name.
    pub pod_name: Option<String>,
    /// Pod uid.
    pub pod_uid: Option<String>,
    /// Node name.
    pub node_name: Option<String>,
    /// Lifetime in seconds (600..=172800, default 3600).
    pub expiration: Option<i64>,
}

fn alg_of(name: &str) -> KeyAlgorithm {
    if name == "ES256" { KeyAlgorithm::Es256 } else { KeyAlgorithm::Rs256 }
}

impl Control {
    /// Generate a new sealed issuer key for a cluster.
    pub(crate) fn new_issuer_key(&self, cluster: &str, alg: &str) -> Result<model::IssuerKey> {
        let key = SigningKey::generate(alg_of(alg)).map_err(|e| {
            tracing::error!(error = %e, "issuer key generation failed");
            AwsError::server_exception()
        })?;
        let kid = key.kid().to_owned();
        let der = key.to_pkcs8_der();
        let private = self.seal(&der, &format!("issuer_key/{cluster}/{kid}"))?;
        Ok(model::IssuerKey { kid, alg: alg.to_owned(), private, created: self.now(), retired: None })
    }

    /// The keys of a hosted issuer by its id, parsed once per cluster version.
    pub fn hosted_issuer_keys(&self, oidc_id: &str) -> Option<Arc<IssuerKeys>> {
        let (key, entry) = {
            let t = self.db.read();
            let key = t.issuers.get(oidc_id)?.clone();
            let e = t.clusters.get(&key)?.clone();
            (key, e)
        };
        if let Some((v, k)) = self.hosted.by_issuer.read().get(oidc_id)
            && *v == entry.version {
                return Some(Arc::clone(k));
            }
        let now = self.now();
        let retention = self.config.issuer_key_retention_secs;
        let mut all = Vec::new();
        for k in &entry.value.keys {
            if k.retired.is_some_and(|r| now > r + retention) {
                continue;
            }
            let der = self.open_sealed(&k.private, &format!("issuer_key/{}/{}", key.1, k.kid)).ok()?;
            match SigningKey::from_pkcs8_der(alg_of(&k.alg), &der) {
                Ok(s) => all.push(Arc::new(s)),
                Err(e) => tracing::error!(error = %e, kid = %k.kid, "stored issuer key unreadable"),
            }
        }
        let signer = entry.value.keys.iter().rev().find(|k| k.retired.is_none()).and_then(|k| all.iter().find(|s| s.kid() == k.kid)).cloned();
        let refs: Vec<&SigningKey> = all.iter().map(|k| k.as_ref()).collect();
        let jwks_json = podiam_jose::jwks_json(&refs);
        let jwks = Arc::new(JwkSet::from_json(jwks_json.as_bytes()).ok()?);
        let keys = Arc::new(IssuerKeys { jwks, jwks_json, signer, all });
        self.hosted.by_issuer.write().insert(oidc_id.to_owned(), (entry.version, Arc::clone(&keys)));
        Some(keys)
    }

    /// The hosted issuer id of an issuer URL, if podiam hosts it.
    pub fn hosted_issuer_id(&self, issuer: &str) -> Option<String> {
        let base = self.config.issuer_base_url.trim_end_matches('/');
        let id = issuer.strip_prefix(base)?.strip_prefix("/id/")?;
        self.db.read().issuers.contains_key(id).then(|| id.to_owned())
    }

    /// The discovery document of a hosted issuer.
    pub fn discovery_document(&self, oidc_id: &str) -> Option<String> {
        let t = self.db.read();
        let key = t.issuers.get(oidc_id)?;
        let c = t.clusters.get(key)?;
        let algs: Vec<String> = {
            let mut a: Vec<String> = c.value.keys.iter().map(|k| k.alg.clone()).collect();
            a.sort();
            a.dedup();
            a
        };
        let doc = serde_json::json!({
            "issuer": c.value.issuer,
            "jwks_uri": format!("{}/keys", c.value.issuer),
            "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "claims_supported": ["sub", "iss"],
        });
        Some(doc.to_string())
    }

    /// The JWKS of a hosted issuer.
    pub fn jwks_document(&self, oidc_id: &str) -> Option<String> {
        self.hosted_issuer_keys(oidc_id).map(|k| k.jwks_json.clone())
    }

    fn hosted_cluster(&self, caller: &Caller, name: &str) -> Result<(Arc<model::Cluster>, i64)> {
        let e = self.db.read().clusters.get(&(caller.account().to_owned(), name.to_owned())).cloned();
        let e = e.ok_or_else(|| AwsError::resource_not_found(format!("no cluster found for name: {name}.")))?;
        if !e.value.hosted {
            return Err(AwsError::invalid_request(format!("cluster {name} uses the external issuer {}; podiam holds no keys for it", e.value.issuer)));
        }
        Ok((e.value, e.version))
    }

    /// Mint a token with the claims kube-apiserver puts in a projected service-account token,
    /// signed by the cluster's hosted issuer.
    pub fn mint_service_account_token(&self, caller: &Caller, meta: &RequestMeta, cluster: &str, req: &TokenRequest) -> Result<String> {
        let arn = self.cluster_arn(caller.account(), cluster);
        self.authorize(caller, "podiam:MintServiceAccountToken", &arn, caller.account(), meta, &[])?;
        let (c, _) = self.hosted_cluster(caller, cluster)?;
        let dns = |s: &str, what: &str| -> Result<()> {
            let ok = !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if ok { Ok(()) } else { Err(AwsError::invalid_parameter(format!("{what} {s:?} is not a valid kubernetes name"))) }
        };
        dns(&req.namespace, "namespace")?;
        dns(&req.service_account, "service account")?;
        let exp = req.expiration.unwrap_or(3600);
        if !(600..=172_800).contains(&exp) {
            return Err(AwsError::invalid_parameter("expiration must be between 600 and 172800 seconds"));
        }
        let audiences = if req.audiences.is_empty() { vec!["sts.amazonaws.com".to_owned()] } else { req.audiences.clone() };
        let keys = self.hosted_issuer_keys(&c.oidc_id).ok_or_else(AwsError::server_exception)?;
        let signer = keys.signer.clone().ok_or_else(AwsError::server_exception)?;
        let now = self.now();
        let mut k8s = serde_json::json!({
            "namespace": req.namespace,
            "serviceaccount": {"name": req.service_account, "uid": uuid::Uuid::new_v4().to_string()},
        });
        if let (Some(obj), Some(pod)) = (k8s.as_object_mut(), &req.pod_name) {
            obj.insert("pod".into(), serde_json::json!({"name": pod, "uid": req.pod_uid.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string())}));
            obj.insert("node".into(), serde_json::json!({"name": req.node_name.clone().unwrap_or_else(|| "podiam-node".into()), "uid": uuid::Uuid::new_v4().to_string()}));
        }
        let claims = serde_json::json!({
            "aud": audiences,
            "exp": now + exp,
            "iat": now,
            "iss": c.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": format!("system:serviceaccount:{}:{}", req.namespace, req.service_account),
        });
        signer.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            AwsError::server_exception()
        })
    }

    /// Rotate a hosted issuer's signing key: a new key signs from now on; the old one stays in
    /// the JWKS until tokens it signed can no longer be valid.
    pub async fn rotate_issuer_key(&self, caller: &Caller, meta: &RequestMeta, cluster: &str) -> Result<String> {
        let arn = self.cluster_arn(caller.account(), cluster);
        self.authorize(caller, "podiam:RotateIssuerKey", &arn, caller.account(), meta, &[])?;
        let guard = self.db.write().await;
        let (c, version) = self.hosted_cluster(caller, cluster)?;
        let mut c = (*c).clone();
        let now = self.now();
        let alg = c.keys.last().map_or_else(|| "RS256".to_owned(), |k| k.alg.clone());
        let retention = self.config.issuer_key_retention_secs;
        c.keys.retain(|k| k.retired.is_none_or(|r| now <= r + retention));
        for k in &mut c.keys {
            if k.retired.is_none() {
                k.retired = Some(now);
            }
        }
        let key = self.new_issuer_key(cluster, &alg)?;
        let kid = key.kid.clone();
        c.keys.push(key);
        self.db.commit(&guard, vec![Change::update(kind::CLUSTER, caller.account(), cluster, &c, version)?], now).await?;
        Ok(kid)
    }

    /// Export the hosted issuer's keys for `kube-apiserver`.
    pub fn export_issuer(&self, caller: &Caller, meta: &RequestMeta, cluster: &str) -> Result<IssuerExport> {
        let arn = self.cluster_arn(caller.account(), cluster);
        self.authorize(caller, "podiam:ExportIssuerKey", &arn, caller.account(), meta, &[])?;
        let (c, _) = self.hosted_cluster(caller, cluster)?;
        let keys = self.hosted_issuer_keys(&c.oidc_id).ok_or_else(AwsError::server_exception)?;
        let signer = keys.signer.clone().ok_or_else(AwsError::server_exception)?;
        Ok(IssuerExport {
            issuer: c.issuer.clone(),
            signing_key_pem: signer.private_key_pem(),
            public_keys_pem: keys.all.iter().map(|k| k.public_key_pem()).collect::<Vec<_>>().join(""),
            jwks: keys.jwks_json.clone(),
        })
    }
}
