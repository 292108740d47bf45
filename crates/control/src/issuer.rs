//! Hosted OIDC issuers of clusters, as EKS gives every cluster one.
//!
//! A hosted issuer is `<issuer base>/id/<ID>`; podiam serves its discovery document and JWKS,
//! holds its signing keys (sealed at rest), rotates them in two phases (a new key is in the JWKS
//! at once and signs from [`ISSUER_KEY_ACTIVATION_SECS`] later, so every replica verifies it before
//! any token it signed exists; a retired key stays in the JWKS for `issuer_key_retention_secs`
//! after it stopped signing), exports them for `kube-apiserver`, and mints projected-token-shaped
//! tokens for development and tests.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use podiam_jose::{JwkSet, KeyAlgorithm, SigningKey};

use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys};
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::state::Change;
use crate::{Control, ISSUER_KEY_ACTIVATION_SECS};

/// Parsed keys of one hosted issuer, cached by cluster record version.
#[derive(Default)]
pub(crate) struct HostedKeys {
    by_issuer: RwLock<HashMap<String, CachedKeys>>,
}

/// One cache entry: valid for its record version until the next activation or retirement.
struct CachedKeys {
    version: i64,
    /// The first second at which the signer or the JWKS differs (a key activates, retires or
    /// leaves the JWKS); `i64::MAX` when nothing is scheduled.
    valid_until: i64,
    keys: Arc<IssuerKeys>,
}

/// The usable keys of a hosted issuer.
pub struct IssuerKeys {
    /// Verification keys (current and still-retained).
    pub jwks: Arc<JwkSet>,
    /// JWKS document text.
    pub jwks_json: String,
    /// The key that signs now: the newest one active and not retired (the oldest key if none is).
    pub signer: Option<Arc<SigningKey>>,
    /// Every key still in the JWKS, newest last.
    pub all: Vec<Arc<SigningKey>>,
}

/// What `podiam issuer export` prints. `Debug` leaves the private key out.
#[derive(Clone)]
pub struct IssuerExport {
    /// The issuer URL.
    pub issuer: String,
    /// PKCS#8 PEM of the newest key (the one that signs once active).
    pub signing_key_pem: String,
    /// PKIX PEMs of every key in the JWKS.
    pub public_keys_pem: String,
    /// The JWKS document.
    pub jwks: String,
}

impl std::fmt::Debug for IssuerExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerExport")
            .field("issuer", &self.issuer)
            .field("signing_key_pem", &"...")
            .field("public_keys_pem", &self.public_keys_pem)
            .field("jwks", &self.jwks)
            .finish()
    }
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
    if name == "ES256" {
        KeyAlgorithm::Es256
    } else {
        KeyAlgorithm::Rs256
    }
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
        Ok(model::IssuerKey {
            kid,
            alg: alg.to_owned(),
            private,
            created: self.now(),
            retired: None,
            active_from: 0,
        })
    }

    /// The keys of a hosted issuer by its id, parsed once per cluster version and again at each
    /// scheduled activation or retirement (the signer and the JWKS depend on the time).
    pub fn hosted_issuer_keys(&self, oidc_id: &str) -> Option<Arc<IssuerKeys>> {
        let (key, entry) = {
            let t = self.db.read();
            let key = t.issuers.get(oidc_id)?.clone();
            let e = t.clusters.get(&key)?.clone();
            (key, e)
        };
        let now = self.now();
        if let Some(c) = self.hosted.by_issuer.read().get(oidc_id)
            && c.version == entry.version
            && now < c.valid_until
        {
            return Some(Arc::clone(&c.keys));
        }
        let retention = self.config.issuer_key_retention_secs;
        let mut loaded: Vec<(&model::IssuerKey, Arc<SigningKey>)> = Vec::new();
        for k in &entry.value.keys {
            if k.retired.is_some_and(|r| now > r.saturating_add(retention)) {
                continue;
            }
            let der = self
                .open_sealed(&k.private, &format!("issuer_key/{}/{}", key.1, k.kid))
                .ok()?;
            match SigningKey::from_pkcs8_der(alg_of(&k.alg), &der) {
                Ok(s) => loaded.push((k, Arc::new(s))),
                Err(e) => tracing::error!(error = %e, kid = %k.kid, "stored issuer key unreadable"),
            }
        }
        let signer = loaded
            .iter()
            .rev()
            .find(|(k, _)| signs_at(k, now))
            .or_else(|| loaded.first())
            .map(|(_, s)| Arc::clone(s));
        let all: Vec<Arc<SigningKey>> = loaded.into_iter().map(|(_, s)| s).collect();
        let refs: Vec<&SigningKey> = all.iter().map(|k| k.as_ref()).collect();
        let jwks_json = podiam_jose::jwks_json(&refs);
        let jwks = Arc::new(JwkSet::from_json(jwks_json.as_bytes()).ok()?);
        let keys = Arc::new(IssuerKeys {
            jwks,
            jwks_json,
            signer,
            all,
        });
        let valid_until = next_change(&entry.value.keys, now, retention);
        self.hosted.by_issuer.write().insert(
            oidc_id.to_owned(),
            CachedKeys {
                version: entry.version,
                valid_until,
                keys: Arc::clone(&keys),
            },
        );
        Some(keys)
    }

    /// The hosted issuer id of an issuer URL, if podiam hosts it.
    pub fn hosted_issuer_id(&self, issuer: &str) -> Option<String> {
        let base = self.config.issuer_base_url.trim_end_matches('/');
        let id = issuer.strip_prefix(base)?.strip_prefix("/id/")?;
        self.db
            .read()
            .issuers
            .contains_key(id)
            .then(|| id.to_owned())
    }

    /// The name of the cluster whose hosted issuer is `issuer`.
    pub(crate) fn cluster_of_issuer(&self, issuer: &str) -> Option<String> {
        let id = self.hosted_issuer_id(issuer)?;
        let t = self.db.read();
        let key = t.issuers.get(&id)?;
        t.clusters.get(key).map(|c| c.value.name.clone())
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
        self.hosted_issuer_keys(oidc_id)
            .map(|k| k.jwks_json.clone())
    }

    fn hosted_cluster(&self, caller: &Caller, name: &str) -> Result<(Arc<model::Cluster>, i64)> {
        let e = self
            .db
            .read()
            .clusters
            .get(&(caller.account().to_owned(), name.to_owned()))
            .cloned();
        let e = e.ok_or_else(|| {
            AwsError::resource_not_found(format!("no cluster found for name: {name}."))
        })?;
        if !e.value.hosted {
            return Err(AwsError::invalid_request(format!(
                "cluster {name} uses the external issuer {}; podiam holds no keys for it",
                e.value.issuer
            )));
        }
        Ok((e.value, e.version))
    }

    /// Mint a token with the claims kube-apiserver puts in a projected service-account token,
    /// signed by the cluster's hosted issuer.
    pub fn mint_service_account_token(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        req: &TokenRequest,
    ) -> Result<String> {
        // What the token will say is a request key, so a policy can confine minting to a
        // namespace, a service account or an audience.
        let audiences = if req.audiences.is_empty() {
            vec!["sts.amazonaws.com".to_owned()]
        } else {
            req.audiences.clone()
        };
        let keys = Keys::none()
            .with("podiam:Namespace", req.namespace.as_str())
            .with("podiam:ServiceAccount", req.service_account.as_str())
            .with_multi("podiam:Audience", audiences.clone());
        self.cluster_for(
            caller,
            meta,
            Action::PodiamMintServiceAccountToken,
            cluster,
            keys,
        )?;
        let (c, _) = self.hosted_cluster(caller, cluster)?;
        let dns = |s: &str, what: &str| -> Result<()> {
            let ok = !s.is_empty()
                && s.len() <= 253
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if ok {
                Ok(())
            } else {
                Err(AwsError::invalid_parameter(format!(
                    "{what} {s:?} is not a valid kubernetes name"
                )))
            }
        };
        dns(&req.namespace, "namespace")?;
        dns(&req.service_account, "service account")?;
        let exp = req.expiration.unwrap_or(3600);
        if !(600..=172_800).contains(&exp) {
            return Err(AwsError::invalid_parameter(
                "expiration must be between 600 and 172800 seconds",
            ));
        }
        let keys = self
            .hosted_issuer_keys(&c.oidc_id)
            .ok_or_else(AwsError::server_exception)?;
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

    /// Rotate a hosted issuer's signing key in two phases: the new key is in the JWKS at once
    /// (every replica that has the change verifies with it) and signs from
    /// `now + ISSUER_KEY_ACTIVATION_SECS`, by which time every replica has it; the current signer
    /// signs until then and stays in the JWKS `issuer_key_retention_secs` longer, until tokens it
    /// signed can no longer be valid. Returns the new key's kid and activation time.
    pub async fn rotate_issuer_key(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
    ) -> Result<(String, i64)> {
        let guard = self.db.write().await;
        self.cluster_for(
            caller,
            meta,
            Action::PodiamRotateIssuerKey,
            cluster,
            Keys::none(),
        )?;
        let (c, version) = self.hosted_cluster(caller, cluster)?;
        let mut c = (*c).clone();
        let now = self.now();
        let active_from = now + ISSUER_KEY_ACTIVATION_SECS;
        let alg = c
            .keys
            .last()
            .map_or_else(|| "RS256".to_owned(), |k| k.alg.clone());
        let retention = self.config.issuer_key_retention_secs;
        c.keys
            .retain(|k| k.retired.is_none_or(|r| now <= r.saturating_add(retention)));
        // The current signer (and a key still pending from a rotation moments ago) signs until
        // the new key does: the retention window counts from when it stopped signing.
        for k in &mut c.keys {
            if k.retired.is_none() {
                k.retired = Some(active_from);
            }
        }
        let mut key = self.new_issuer_key(cluster, &alg)?;
        key.active_from = active_from;
        let kid = key.kid.clone();
        c.keys.push(key);
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::CLUSTER,
                    caller.account(),
                    cluster,
                    &c,
                    version,
                )?],
                now,
            )
            .await?;
        tracing::info!(cluster, kid, active_from, "issuer key rotated");
        Ok((kid, active_from))
    }

    /// Export the hosted issuer's keys for `kube-apiserver`: the newest key as the signing key,
    /// even while podiam still signs with the previous one after a rotation (kube-apiserver
    /// signs with it only once the operator restarts it with the exported files, by which time
    /// every replica has the key in its JWKS), and the public keys of every key in the JWKS, so
    /// that tokens of the previous key keep verifying.
    pub fn export_issuer(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
    ) -> Result<IssuerExport> {
        self.cluster_for(
            caller,
            meta,
            Action::PodiamExportIssuerKey,
            cluster,
            Keys::none(),
        )?;
        let (c, _) = self.hosted_cluster(caller, cluster)?;
        let keys = self
            .hosted_issuer_keys(&c.oidc_id)
            .ok_or_else(AwsError::server_exception)?;
        let signer = keys
            .all
            .last()
            .cloned()
            .ok_or_else(AwsError::server_exception)?;
        Ok(IssuerExport {
            issuer: c.issuer.clone(),
            signing_key_pem: signer.private_key_pem(),
            public_keys_pem: keys
                .all
                .iter()
                .map(|k| k.public_key_pem())
                .collect::<Vec<_>>()
                .join(""),
            jwks: keys.jwks_json.clone(),
        })
    }
}

/// Whether `k` signs at `now`: active by then and not retired at or before it.
fn signs_at(k: &model::IssuerKey, now: i64) -> bool {
    k.active_from <= now && k.retired.is_none_or(|r| r > now)
}

/// The first second after `now` at which a key of `keys` activates, retires or leaves the JWKS
/// (`retention` seconds after it retired); `i64::MAX` when none does.
fn next_change(keys: &[model::IssuerKey], now: i64, retention: i64) -> i64 {
    keys.iter()
        .flat_map(|k| {
            [
                Some(k.active_from),
                k.retired,
                k.retired
                    .map(|r| r.saturating_add(retention).saturating_add(1)),
            ]
        })
        .flatten()
        .filter(|&t| t > now)
        .min()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
