#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::iam::CreateRole;
use crate::sts::AssumeCommon;
use crate::{Clock, Config};

const ACCT: &str = "111122223333";
const T0: i64 = 1_700_000_000;

#[test]
fn export_debug_leaves_the_private_key_out() {
    let e = IssuerExport {
        issuer: "https://oidc.podiam.local/id/X".into(),
        signing_key_pem: "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecret\n-----END PRIVATE KEY-----\n"
            .into(),
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
    let (c, root, meta) =
        crate::testing::root_control(config, Arc::clone(&clock) as Arc<dyn Clock>, ACCT).await;
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
