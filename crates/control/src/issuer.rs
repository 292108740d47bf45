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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::crypto::MasterKey;
    use crate::iam::CreateRole;
    use crate::sts::AssumeCommon;
    use crate::{Clock, Config};

    const ACCT: &str = "111122223333";
    const T0: i64 = 1_700_000_000;

    #[test]
    fn export_debug_leaves_the_private_key_out() {
        let e = IssuerExport {
            issuer: "https://oidc.podiam.local/id/X".into(),
            signing_key_pem:
                "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecret\n-----END PRIVATE KEY-----\n".into(),
            public_keys_pem: "-----BEGIN PUBLIC KEY-----\n".into(),
            jwks: "{}".into(),
        };
        let shown = format!("{e:?} {e:#?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MIGHAgEAsecret"),
            "{shown}"
        );
        assert!(shown.contains("signing_key_pem: \"...\""), "{shown}");
    }

    /// A clock the test moves by hand (whole seconds).
    struct TestClock(AtomicI64);

    impl Clock for TestClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst) * 1000
        }
    }

    struct Fx {
        c: Control,
        clock: Arc<TestClock>,
        root: Caller,
        meta: RequestMeta,
        oidc_id: String,
        role_arn: String,
    }

    impl Fx {
        fn set(&self, t: i64) {
            self.clock.0.store(t, Ordering::SeqCst);
        }
        fn token(&self) -> String {
            let req = TokenRequest {
                namespace: "default".into(),
                service_account: "app".into(),
                ..TokenRequest::default()
            };
            self.c
                .mint_service_account_token(&self.root, &self.meta, "c1", &req)
                .unwrap()
        }
        async fn rotate(&self) -> (String, i64) {
            self.c
                .rotate_issuer_key(&self.root, &self.meta, "c1")
                .await
                .unwrap()
        }
        async fn assume(&self, token: &str) -> Result<String> {
            let common = AssumeCommon {
                role_arn: self.role_arn.clone(),
                session_name: "sess".into(),
                ..AssumeCommon::default()
            };
            self.c
                .assume_role_with_web_identity(&self.meta, common, token)
                .await
                .map(|a| a.arn)
        }
        fn jwks_kids(&self) -> Vec<String> {
            let doc: serde_json::Value =
                serde_json::from_str(&self.c.jwks_document(&self.oidc_id).unwrap()).unwrap();
            doc["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        }
        fn signer_kid(&self) -> String {
            self.c
                .hosted_issuer_keys(&self.oidc_id)
                .unwrap()
                .signer
                .as_ref()
                .unwrap()
                .kid()
                .to_owned()
        }
        /// The stored cluster record and its version.
        fn stored(&self) -> (Arc<model::Cluster>, i64) {
            let t = self.c.db.read();
            let e = &t.clusters[&(ACCT.to_owned(), "c1".to_owned())];
            (Arc::clone(&e.value), e.version)
        }
    }

    fn kid_of(token: &str) -> String {
        podiam_jose::UnverifiedToken::parse(token)
            .unwrap()
            .kid()
            .unwrap()
            .to_owned()
    }

    /// A control plane at `T0` with hosted cluster `c1`, its issuer federated and a role trusting
    /// `system:serviceaccount:default:app` from it.
    async fn fixture(retention: i64) -> Fx {
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let config = Config {
            issuer_key_retention_secs: retention,
            ..Config::default()
        };
        let store = podiam_store::SqliteStore::memory().await.unwrap();
        let (master, _) = MasterKey::generate().unwrap();
        let c = Control::open(
            config,
            Arc::new(store),
            master,
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .await
        .unwrap();
        c.bootstrap(Some(ACCT)).await.unwrap().unwrap();
        let root = Caller::Root {
            account: ACCT.into(),
        };
        let meta = RequestMeta::default();
        let body = serde_json::json!({
            "name": "c1",
            "roleArn": format!("arn:aws:iam::{ACCT}:role/eks"),
            "resourcesVpcConfig": {},
            "tags": {"podiam.io/issuer-algorithm": "ES256"},
        });
        let cluster = c.create_cluster(&root, &meta, &body).await.unwrap();
        let hostpath = cluster.issuer.trim_start_matches("https://").to_owned();
        c.create_oidc_provider(
            &root,
            &meta,
            &cluster.issuer,
            vec!["sts.amazonaws.com".into()],
            vec![],
            vec![],
        )
        .await
        .unwrap();
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCT}:oidc-provider/{hostpath}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {format!("{hostpath}:sub"): "system:serviceaccount:default:app"}},
        }]});
        let role = CreateRole {
            name: "app".into(),
            trust_policy: trust.to_string(),
            ..CreateRole::default()
        };
        c.create_role(&root, &meta, role).await.unwrap();
        let oidc_id = cluster.oidc_id.clone();
        Fx {
            c,
            clock,
            root,
            meta,
            oidc_id,
            role_arn: format!("arn:aws:iam::{ACCT}:role/app"),
        }
    }

    #[tokio::test]
    async fn a_rotated_key_is_published_at_once_and_signs_only_once_active() {
        let f = fixture(2 * 86_400).await;
        let before = f.token();
        let old = kid_of(&before);
        assert_eq!(f.jwks_kids(), std::slice::from_ref(&old));

        let (new, active_from) = f.rotate().await;
        assert_eq!(active_from, T0 + ISSUER_KEY_ACTIVATION_SECS);
        assert_ne!(new, old);
        assert_eq!(
            f.jwks_kids(),
            [old.clone(), new.clone()],
            "both keys are in the JWKS at once"
        );
        let (stored, _) = f.stored();
        assert_eq!(
            stored.keys[0].retired,
            Some(active_from),
            "the old key retires when the new one activates"
        );
        assert_eq!(
            (stored.keys[1].active_from, stored.keys[1].retired),
            (active_from, None)
        );

        // Before activation the old key signs, and everything verifies.
        for t in [T0, active_from - 1] {
            f.set(t);
            let tok = f.token();
            assert_eq!(kid_of(&tok), old, "at {t} the new key must not sign yet");
            assert!(f.assume(&tok).await.unwrap().ends_with("/app/sess"));
        }
        // From activation the new key signs; tokens of the old key still verify.
        f.set(active_from);
        let after = f.token();
        assert_eq!(kid_of(&after), new);
        assert!(f.assume(&after).await.unwrap().ends_with("/app/sess"));
        assert!(
            f.assume(&before).await.unwrap().ends_with("/app/sess"),
            "old tokens still verify"
        );
        assert_eq!(f.jwks_kids(), [old, new]);
    }

    #[tokio::test]
    async fn cached_keys_switch_signer_without_a_new_record_version() {
        let f = fixture(2 * 86_400).await;
        let (new, active_from) = f.rotate().await;
        let (_, version) = f.stored();
        let pending = f.c.hosted_issuer_keys(&f.oidc_id).unwrap();
        assert_ne!(pending.signer.as_ref().unwrap().kid(), new);
        f.set(active_from - 1);
        let again = f.c.hosted_issuer_keys(&f.oidc_id).unwrap();
        assert!(
            Arc::ptr_eq(&pending, &again),
            "a hit before the next activation reuses the entry"
        );
        f.set(active_from);
        assert_eq!(f.signer_kid(), new);
        assert_eq!(f.stored().1, version, "no new record version was needed");
        let active = f.c.hosted_issuer_keys(&f.oidc_id).unwrap();
        f.set(active_from + 1000);
        assert!(
            Arc::ptr_eq(&active, &f.c.hosted_issuer_keys(&f.oidc_id).unwrap()),
            "nothing scheduled before the retention ends"
        );
    }

    #[tokio::test]
    async fn rotating_twice_quickly_activates_each_key_in_turn() {
        let f = fixture(2 * 86_400).await;
        let a = f.signer_kid();
        let (b, b_from) = f.rotate().await;
        f.set(T0 + 1);
        let (c, c_from) = f.rotate().await;
        assert_eq!((b_from, c_from), (T0 + 3, T0 + 4));
        assert_eq!(f.jwks_kids(), [a.clone(), b.clone(), c.clone()]);
        let (stored, _) = f.stored();
        let retired: Vec<Option<i64>> = stored.keys.iter().map(|k| k.retired).collect();
        assert_eq!(retired, [Some(b_from), Some(c_from), None]);
        for (t, want) in [
            (T0 + 1, &a),
            (T0 + 2, &a),
            (T0 + 3, &b),
            (T0 + 4, &c),
            (T0 + 100, &c),
        ] {
            f.set(t);
            assert_eq!(&f.signer_kid(), want, "signer at T0+{}", t - T0);
            assert_eq!(&kid_of(&f.token()), want);
        }
        // A rotation long after leaves the first key, whose retention has not ended, in place.
        f.set(T0 + 200);
        let (d, _) = f.rotate().await;
        assert_eq!(f.jwks_kids(), [a, b, c, d]);
    }

    #[tokio::test]
    async fn a_retired_key_leaves_the_jwks_after_retention_and_its_tokens_are_refused() {
        let retention = 700;
        let f = fixture(retention).await;
        let before = f.token();
        let old = kid_of(&before);
        let (new, active_from) = f.rotate().await;
        let (_, version) = f.stored();
        // Retention counts from when the old key stopped signing, not from the rotation.
        f.set(active_from + retention);
        assert_eq!(f.jwks_kids(), [old.clone(), new.clone()]);
        assert!(f.assume(&before).await.unwrap().ends_with("/app/sess"));
        f.set(active_from + retention + 1);
        assert_eq!(
            f.jwks_kids(),
            std::slice::from_ref(&new),
            "the cache expires when the key leaves the JWKS"
        );
        assert_eq!(f.stored().1, version);
        let err = f.assume(&before).await.unwrap_err();
        assert_eq!(
            err.code,
            crate::error::ErrorCode::InvalidIdentityToken,
            "{err:?}"
        );
        assert!(
            f.assume(&f.token()).await.unwrap().ends_with("/app/sess"),
            "the new key's tokens verify"
        );
        // The next rotation drops it from the record too.
        let (newest, _) = f.rotate().await;
        let kids: Vec<String> = f.stored().0.keys.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [new, newest]);
    }

    #[tokio::test]
    async fn export_gives_the_newest_key_and_every_public_key() {
        let f = fixture(2 * 86_400).await;
        let old = f.signer_kid();
        let (new, _) = f.rotate().await;
        let x = f.c.export_issuer(&f.root, &f.meta, "c1").unwrap();
        assert_eq!(
            SigningKey::from_pem(&x.signing_key_pem).unwrap().kid(),
            new,
            "the key that will sign"
        );
        assert_eq!(
            f.signer_kid(),
            old,
            "while podiam still signs with the old one"
        );
        let keys = f.c.hosted_issuer_keys(&f.oidc_id).unwrap();
        let pems: String = keys.all.iter().map(|k| k.public_key_pem()).collect();
        assert_eq!(x.public_keys_pem, pems);
        assert_eq!(x.public_keys_pem.matches("BEGIN PUBLIC KEY").count(), 2);
        assert_eq!(x.jwks, keys.jwks_json);
    }

    #[test]
    fn keys_stored_before_activation_times_decode_as_active() {
        let old = serde_json::json!({"kid": "k1", "alg": "RS256", "private": "c2VhbGVk", "created": 5, "retired": 9});
        let k: model::IssuerKey = serde_json::from_value(old).unwrap();
        assert_eq!((k.active_from, k.retired), (0, Some(9)));
        let current =
            serde_json::json!({"kid": "k2", "alg": "RS256", "private": "c2VhbGVk", "created": 9});
        let k2: model::IssuerKey = serde_json::from_value(current).unwrap();
        assert_eq!((k2.active_from, k2.retired), (0, None));
        assert!(signs_at(&k2, 9) && !signs_at(&k, 9) && signs_at(&k, 8));
    }

    #[test]
    fn the_next_change_is_the_first_activation_retirement_or_expiry_after_now() {
        let key = |active_from: i64, retired: Option<i64>| model::IssuerKey {
            kid: String::new(),
            alg: "RS256".into(),
            private: crate::crypto::Sealed(String::new()),
            created: 0,
            retired,
            active_from,
        };
        let keys = [key(0, Some(103)), key(103, Some(104)), key(104, None)];
        assert_eq!(next_change(&keys, 100, 50), 103);
        assert_eq!(next_change(&keys, 103, 50), 104);
        assert_eq!(
            next_change(&keys, 104, 50),
            154,
            "the first key leaves the JWKS after 103 + 50"
        );
        assert_eq!(next_change(&keys, 154, 50), 155);
        assert_eq!(next_change(&keys, 155, 50), i64::MAX);
        assert_eq!(next_change(&[key(0, None)], 100, 50), i64::MAX);
    }
}
