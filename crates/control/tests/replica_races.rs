//! Writes that race across replicas: one replica adds a reference to a record (an access key to
//! its user, an attachment or a boundary to a managed policy, a trust policy naming a principal,
//! an association to its cluster) while another, which has not seen it, deletes that record.
//! Whichever commits second must conflict, in both orders, and nothing may be left referring to a
//! record that is gone: a user, policy or cluster created later under the same name would
//! otherwise inherit the reference (a key, an attachment, a trust, an association).
//!
//! Each race runs on two `Control`s over one SQLite file whose stores do not follow each other's
//! change feed: the second replica decides on what it read at open, the widest form of the window
//! between a replica's read and its commit. A third `Control` opened afterwards reads what the
//! store holds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use podiam_control::access::CreateAccessEntry;
use podiam_control::auth::RequestMeta;
use podiam_control::crypto::MasterKey;
use podiam_control::iam::{CreateRole, PageReq};
use podiam_control::pod_identity::CreateAssociation;
use podiam_control::{Caller, Config, Control, ErrorCode, SystemClock};
use podiam_store::SqliteStore;

const ACCT: &str = "111122223333";
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn root() -> Caller {
    Caller::Root {
        account: ACCT.into(),
    }
}

fn meta() -> RequestMeta {
    RequestMeta::default()
}

fn trust_naming(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

fn service_trust(service: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":["sts:AssumeRole","sts:TagSession"]}}]}}"#
    )
}

/// A scratch SQLite file, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("podiam-races-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("podiam.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(path: &Path, master: &str) -> Control {
    let store = SqliteStore::open(path).await.unwrap();
    Control::open(
        Config::default(),
        Arc::new(store),
        MasterKey::from_base64(master).unwrap(),
        Arc::new(SystemClock),
    )
    .await
    .unwrap()
}

/// A first replica with the account bootstrapped and `setup` done, a second replica opened
/// after that (it never reads the first one's later writes), and a way to open a third.
struct Replicas {
    scratch: Scratch,
    master: String,
    a: Control,
    b: Control,
}

impl Replicas {
    async fn new(test: &str) -> Self {
        let scratch = Scratch::new(test);
        let (_, master) = MasterKey::generate().unwrap();
        let a = open(&scratch.db(), &master).await;
        a.bootstrap(Some(ACCT)).await.unwrap().unwrap();
        let m = meta();
        a.create_user(&root(), &m, "alice", None, None, vec![])
            .await
            .unwrap();
        a.create_policy(&root(), &m, "shared", None, ALLOW_ALL.into(), None, vec![])
            .await
            .unwrap();
        for (name, trust) in [
            ("app", service_trust("pods.eks.amazonaws.com")),
            ("eks", service_trust("eks.amazonaws.com")),
        ] {
            a.create_role(
                &root(),
                &m,
                CreateRole {
                    name: name.into(),
                    trust_policy: trust,
                    ..CreateRole::default()
                },
            )
            .await
            .unwrap();
        }
        let body = serde_json::json!({"name": "prod", "roleArn": format!("arn:aws:iam::{ACCT}:role/eks"), "resourcesVpcConfig": {},
            "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": false}});
        a.create_cluster(&root(), &m, &body).await.unwrap();
        let b = open(&scratch.db(), &master).await;
        Self {
            scratch,
            master,
            a,
            b,
        }
    }

    /// A replica opened now: what the store holds.
    async fn fresh(&self) -> Control {
        open(&self.scratch.db(), &self.master).await
    }
}

fn policy_arn() -> String {
    format!("arn:aws:iam::{ACCT}:policy/shared")
}

fn association(sa: &str) -> CreateAssociation {
    CreateAssociation {
        namespace: "default".into(),
        service_account: sa.into(),
        role_arn: format!("arn:aws:iam::{ACCT}:role/app"),
        target_role_arn: None,
        disable_session_tags: false,
        policy: None,
        tags: BTreeMap::new(),
        client_request_token: None,
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: podiam_control::Result<T>, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code, ErrorCode::ConcurrentModification, "{what}: {e:?}");
}

#[tokio::test]
async fn a_key_created_elsewhere_stops_a_stale_delete_of_its_user() {
    let r = Replicas::new("key-then-delete").await;
    let m = meta();
    let (key, _, _) =
        r.a.create_access_key(&root(), &m, Some("alice"))
            .await
            .unwrap();
    assert_conflict(
        r.b.delete_user(&root(), &m, "alice").await,
        "B deletes alice without knowing her new key",
    );
    let c = r.fresh().await;
    let (_, keys) = c.list_access_keys(&root(), &m, Some("alice")).unwrap();
    assert_eq!(keys.len(), 1, "the user and her key are both still there");
    assert_eq!(keys[0].id, key.id);
}

#[tokio::test]
async fn a_user_deleted_elsewhere_stops_a_stale_key_creation() {
    let r = Replicas::new("delete-then-key").await;
    let m = meta();
    r.b.delete_user(&root(), &m, "alice").await.unwrap();
    assert_conflict(
        r.a.create_access_key(&root(), &m, Some("alice")).await,
        "A still sees alice",
    );
    // A user of the same name created next has no key of her predecessor.
    let c = r.fresh().await;
    c.create_user(&root(), &m, "alice", None, None, vec![])
        .await
        .unwrap();
    let (_, keys) = c.list_access_keys(&root(), &m, Some("alice")).unwrap();
    assert!(keys.is_empty(), "no key outlived its user: {keys:?}");
}

#[tokio::test]
async fn two_replicas_cannot_exceed_the_key_quota_together() {
    let r = Replicas::new("key-quota").await;
    let m = meta();
    r.a.create_access_key(&root(), &m, Some("alice"))
        .await
        .unwrap();
    r.a.create_access_key(&root(), &m, Some("alice"))
        .await
        .unwrap();
    // B saw none: its third key would exceed AWS's two per user.
    assert_conflict(
        r.b.create_access_key(&root(), &m, Some("alice")).await,
        "B does not know of A's two keys",
    );
    let c = r.fresh().await;
    assert_eq!(
        c.list_access_keys(&root(), &m, Some("alice"))
            .unwrap()
            .1
            .len(),
        2
    );
}

#[tokio::test]
async fn an_attachment_made_elsewhere_stops_a_stale_policy_delete() {
    let r = Replicas::new("attach-then-delete").await;
    let m = meta();
    r.a.attach_role_policy(&root(), &m, "app", &policy_arn())
        .await
        .unwrap();
    assert_conflict(
        r.b.delete_policy(&root(), &m, &policy_arn()).await,
        "B deletes a policy it thinks unattached",
    );
    let c = r.fresh().await;
    let (_, attachments) = c.get_policy(&root(), &m, &policy_arn()).unwrap();
    assert_eq!(attachments, 1);
}

#[tokio::test]
async fn a_policy_deleted_elsewhere_stops_a_stale_attachment() {
    let r = Replicas::new("delete-then-attach").await;
    let m = meta();
    r.b.delete_policy(&root(), &m, &policy_arn()).await.unwrap();
    assert_conflict(
        r.a.attach_role_policy(&root(), &m, "app", &policy_arn())
            .await,
        "A still sees the policy",
    );
    // A policy created next under the name is attached to nothing.
    let c = r.fresh().await;
    c.create_policy(&root(), &m, "shared", None, ALLOW_ALL.into(), None, vec![])
        .await
        .unwrap();
    let (_, attachments) = c.get_policy(&root(), &m, &policy_arn()).unwrap();
    assert_eq!(attachments, 0, "the new policy inherited no attachment");
    let attached = c
        .list_attached_role_policies(&root(), &m, "app", &PageReq::default())
        .unwrap();
    assert!(attached.items.is_empty());
}

#[tokio::test]
async fn a_boundary_set_elsewhere_stops_a_stale_policy_delete_and_the_reverse() {
    let r = Replicas::new("boundary").await;
    let m = meta();
    r.a.put_role_boundary(&root(), &m, "app", &policy_arn())
        .await
        .unwrap();
    assert_conflict(
        r.b.delete_policy(&root(), &m, &policy_arn()).await,
        "B deletes a boundary in use",
    );

    let r = Replicas::new("boundary-reverse").await;
    r.b.delete_policy(&root(), &m, &policy_arn()).await.unwrap();
    assert_conflict(
        r.a.put_role_boundary(&root(), &m, "app", &policy_arn())
            .await,
        "A bounds a role by a deleted policy",
    );
    assert_conflict(
        r.a.create_user(&root(), &m, "bob", None, Some(&policy_arn()), vec![])
            .await,
        "A creates a user bounded by a deleted policy",
    );
}

#[tokio::test]
async fn a_trust_naming_a_user_stops_a_stale_delete_of_that_user_and_the_reverse() {
    let alice = format!("arn:aws:iam::{ACCT}:user/alice");
    let r = Replicas::new("trust").await;
    let m = meta();
    r.a.update_assume_role_policy(&root(), &m, "app", trust_naming(&alice))
        .await
        .unwrap();
    assert_conflict(
        r.b.delete_user(&root(), &m, "alice").await,
        "B deletes alice without rewriting the trust that names her",
    );

    let r = Replicas::new("trust-reverse").await;
    r.b.delete_user(&root(), &m, "alice").await.unwrap();
    assert_conflict(
        r.a.update_assume_role_policy(&root(), &m, "app", trust_naming(&alice))
            .await,
        "A saves a trust naming a deleted user",
    );
    assert_conflict(
        r.a.create_role(
            &root(),
            &m,
            CreateRole {
                name: "new".into(),
                trust_policy: trust_naming(&alice),
                ..CreateRole::default()
            },
        )
        .await,
        "A creates a role trusting a deleted user",
    );
    // A role's trust may name the role itself without conflicting with its own update.
    let app = format!("arn:aws:iam::{ACCT}:role/app");
    r.a.update_assume_role_policy(&root(), &m, "app", trust_naming(&app))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_association_made_elsewhere_stops_a_stale_cluster_delete_and_the_reverse() {
    let r = Replicas::new("assoc").await;
    let m = meta();
    r.a.create_pod_identity_association(&root(), &m, "prod", association("app"))
        .await
        .unwrap();
    assert_conflict(
        r.b.delete_cluster(&root(), &m, "prod").await,
        "B deletes the cluster without its new association",
    );
    let c = r.fresh().await;
    let (list, _) = c
        .list_pod_identity_associations(&root(), &m, "prod", None, None, None, None)
        .unwrap();
    assert_eq!(list.len(), 1);

    let r = Replicas::new("assoc-reverse").await;
    r.b.delete_cluster(&root(), &m, "prod").await.unwrap();
    assert_conflict(
        r.a.create_pod_identity_association(&root(), &m, "prod", association("app"))
            .await,
        "A associates with a deleted cluster",
    );
    // A cluster created next under the name has no association of its predecessor.
    let c = r.fresh().await;
    let body = serde_json::json!({"name": "prod", "roleArn": format!("arn:aws:iam::{ACCT}:role/eks"), "resourcesVpcConfig": {}});
    c.create_cluster(&root(), &m, &body).await.unwrap();
    let (list, _) = c
        .list_pod_identity_associations(&root(), &m, "prod", None, None, None, None)
        .unwrap();
    assert!(list.is_empty(), "no association outlived its cluster");
}

#[tokio::test]
async fn two_replicas_cannot_associate_one_service_account_twice() {
    let r = Replicas::new("assoc-twice").await;
    let m = meta();
    r.a.create_pod_identity_association(&root(), &m, "prod", association("app"))
        .await
        .unwrap();
    assert_conflict(
        r.b.create_pod_identity_association(&root(), &m, "prod", association("app"))
            .await,
        "B does not see A's association of default/app",
    );
    let c = r.fresh().await;
    let (list, _) = c
        .list_pod_identity_associations(&root(), &m, "prod", None, Some("app"), None, None)
        .unwrap();
    assert_eq!(list.len(), 1, "one association per service account");
}

#[tokio::test]
async fn a_stale_delete_of_a_changed_record_conflicts() {
    let r = Replicas::new("stale-delete").await;
    let m = meta();
    // A attaches a policy to the role; B, which saw the role bare, may not delete it.
    r.a.put_role_policy(&root(), &m, "app", "inline", ALLOW_ALL.into())
        .await
        .unwrap();
    assert_conflict(
        r.b.delete_role(&root(), &m, "app").await,
        "B deletes a role that has a policy now",
    );
    let c = r.fresh().await;
    c.get_role(&root(), &m, "app").unwrap();
}

fn access_entry(principal: &str) -> CreateAccessEntry {
    CreateAccessEntry {
        principal_arn: principal.into(),
        kubernetes_groups: vec!["devs".into()],
        ..CreateAccessEntry::default()
    }
}

#[tokio::test]
async fn an_access_entry_made_elsewhere_stops_a_stale_cluster_delete_and_the_reverse() {
    let alice = format!("arn:aws:iam::{ACCT}:user/alice");
    let r = Replicas::new("entry").await;
    let m = meta();
    r.a.create_access_entry(&root(), &m, "prod", access_entry(&alice))
        .await
        .unwrap();
    assert_conflict(
        r.b.delete_cluster(&root(), &m, "prod").await,
        "B deletes the cluster without its new access entry",
    );
    let c = r.fresh().await;
    let (list, _) = c
        .list_access_entries(&root(), &m, "prod", None, None, None)
        .unwrap();
    assert_eq!(list, std::slice::from_ref(&alice));

    let r = Replicas::new("entry-reverse").await;
    r.b.delete_cluster(&root(), &m, "prod").await.unwrap();
    assert_conflict(
        r.a.create_access_entry(&root(), &m, "prod", access_entry(&alice))
            .await,
        "A adds an access entry to a deleted cluster",
    );
    // A cluster created next under the name grants nobody its predecessor's access.
    let c = r.fresh().await;
    let body = serde_json::json!({"name": "prod", "roleArn": format!("arn:aws:iam::{ACCT}:role/eks"), "resourcesVpcConfig": {},
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": false}});
    c.create_cluster(&root(), &m, &body).await.unwrap();
    let (list, _) = c
        .list_access_entries(&root(), &m, "prod", None, None, None)
        .unwrap();
    assert!(
        list.is_empty(),
        "no access entry outlived its cluster: {list:?}"
    );
}

#[tokio::test]
async fn overlapping_pattern_entries_made_on_two_replicas_cannot_both_commit() {
    // Each replica checks the new pattern against the patterns it has seen; the one that has
    // not seen the other's must conflict on the cluster it read, or a review would have two
    // equally good entries to choose from.
    let r = Replicas::new("patterns").await;
    let m = meta();
    let team = format!("arn:aws:iam::{ACCT}:role/team-*");
    let team_x = format!("arn:aws:iam::{ACCT}:role/team-?x*");
    r.a.create_access_entry(&root(), &m, "prod", access_entry(&team))
        .await
        .unwrap();
    assert_conflict(
        r.b.create_access_entry(&root(), &m, "prod", access_entry(&team_x))
            .await,
        "B adds a pattern overlapping one it has not seen",
    );
    let c = r.fresh().await;
    let (list, _) = c
        .list_access_entries(&root(), &m, "prod", None, None, None)
        .unwrap();
    assert_eq!(list, std::slice::from_ref(&team));
}

#[tokio::test]
async fn a_role_changed_elsewhere_stops_a_stale_pass_role() {
    // PassRole is decided on the role's tags: a replica that still sees the old tags must not
    // commit an association on that decision.
    let r = Replicas::new("passrole").await;
    let m = meta();
    r.a.tag_role(
        &root(),
        &m,
        "app",
        vec![podiam_control::model::Tag {
            key: "passable".into(),
            value: "no".into(),
        }],
    )
    .await
    .unwrap();
    assert_conflict(
        r.b.create_pod_identity_association(&root(), &m, "prod", association("app"))
            .await,
        "B passes the role as it was before A tagged it",
    );

    // And a role deleted elsewhere cannot be passed to a new association.
    let r = Replicas::new("passrole-deleted").await;
    r.b.delete_role(&root(), &m, "app").await.unwrap();
    assert_conflict(
        r.a.create_pod_identity_association(&root(), &m, "prod", association("app"))
            .await,
        "A associates a role B deleted",
    );
    let c = r.fresh().await;
    let (list, _) = c
        .list_pod_identity_associations(&root(), &m, "prod", None, None, None, None)
        .unwrap();
    assert!(list.is_empty(), "no association names a deleted role");
}
