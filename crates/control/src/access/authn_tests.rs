#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use podiam_sigv4::SigningParams;

use super::tests::{ACCT, World, cluster, create, role, user_caller, world};
use super::*;
use crate::auth::Caller;
use crate::iam::CreateRole;
use crate::sts::{AssumeCommon, AssumeRoleExtra};

pub(super) const HOST: &str = "podiam.test:8443";
pub(super) const CLUSTER: &str = "c";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn amz_date(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&f).unwrap()
}

/// What signs a token.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) id: String,
    pub(super) secret: String,
    pub(super) session: Option<String>,
}

/// A token as `aws eks get-token` makes it, with knobs for the refusals.
pub(super) struct Tok<'a> {
    pub(super) key: &'a Key,
    pub(super) host: &'a str,
    pub(super) cluster: Option<&'a str>,
    pub(super) at: i64,
    pub(super) query: &'a str,
}

impl Tok<'_> {
    fn url(&self) -> String {
        let mut headers: Vec<(&str, &[u8])> = vec![("host", self.host.as_bytes())];
        if let Some(c) = self.cluster {
            headers.push((CLUSTER_ID_HEADER, c.as_bytes()));
        }
        let req = podiam_sigv4::Request {
            method: "GET",
            path: "/",
            query: self.query,
            headers: &headers,
            body: b"",
        };
        let date = amz_date(self.at);
        let mut p = SigningParams::new(&self.key.id, &self.key.secret, "us-east-1", "sts", &date);
        p.session_token = self.key.session.as_deref();
        format!("https://{}/?{}", self.host, p.presign(&req, 60))
    }
    pub(super) fn token(&self) -> String {
        format!("{TOKEN_PREFIX}{}", b64(&self.url()))
    }
}

pub(super) fn tok<'a>(w: &World, key: &'a Key) -> Tok<'a> {
    Tok {
        key,
        host: HOST,
        cluster: Some(CLUSTER),
        at: w.c.now(),
        query: "Action=GetCallerIdentity&Version=2011-06-15",
    }
}

pub(super) const ROUTE: ClusterRoute<'static> = ClusterRoute {
    account: None,
    name: CLUSTER,
};

pub(super) async fn setup() -> World {
    let mut w = world().await;
    w.c.config.token_sts_hosts = vec![HOST.to_owned()];
    cluster(
        &w,
        &w.root,
        CLUSTER,
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    // Roles are assumed by a user: an account root may not call AssumeRole.
    user_caller(
        &w,
        "assumer",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    )
    .await;
    w
}

pub(super) fn assumer(w: &World) -> Caller {
    Caller::User {
        account: ACCT.into(),
        user: std::sync::Arc::clone(
            &w.c.db.read().users[&(ACCT.to_owned(), "assumer".to_owned())].value,
        ),
    }
}

/// The second account of the tests.
pub(super) const OTHER: &str = "444455556666";

/// Create account [`OTHER`]: its root, and the root's key from the account's bootstrap.
pub(super) async fn other_account(w: &World) -> (Caller, Key) {
    let boot = w.c.create_account(OTHER).await.unwrap().unwrap();
    let key = Key {
        id: boot.access_key_id,
        secret: boot.secret_access_key,
        session: None,
    };
    (
        Caller::Root {
            account: OTHER.into(),
        },
        key,
    )
}

/// A key of the new IAM user `name` of account [`OTHER`] (which `other_account` made).
pub(super) async fn other_user_key(w: &World, oroot: &Caller, name: &str) -> Key {
    w.c.create_user(oroot, &w.m, name, None, None, vec![])
        .await
        .unwrap();
    let (k, secret, _) =
        w.c.create_access_key(oroot, &w.m, Some(name))
            .await
            .unwrap();
    Key {
        id: k.id,
        secret,
        session: None,
    }
}

pub(super) async fn user_key(w: &World, name: &str) -> Key {
    w.c.create_user(&w.root, &w.m, name, None, None, vec![])
        .await
        .unwrap();
    let (k, secret, _) =
        w.c.create_access_key(&w.root, &w.m, Some(name))
            .await
            .unwrap();
    Key {
        id: k.id,
        secret,
        session: None,
    }
}

const ROOT_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

pub(super) async fn new_role(w: &World, name: &str, path: Option<&str>) {
    w.c.create_role(
        &w.root,
        &w.m,
        CreateRole {
            name: name.into(),
            path: path.map(str::to_owned),
            trust_policy: ROOT_TRUST.into(),
            ..CreateRole::default()
        },
    )
    .await
    .unwrap();
}

pub(super) async fn session_key(w: &World, arn: &str, session: &str) -> Key {
    let out =
        w.c.assume_role(
            &assumer(w),
            &w.m,
            AssumeCommon {
                role_arn: arn.into(),
                session_name: session.into(),
                duration: None,
                policy: None,
                policy_arns: vec![],
            },
            AssumeRoleExtra::default(),
        )
        .await
        .unwrap();
    Key {
        id: out.credentials.access_key_id,
        secret: out.credentials.secret_access_key,
        session: Some(out.credentials.session_token),
    }
}

pub(super) async fn entry(w: &World, arn: &str, username: Option<&str>, groups: &[&str]) {
    let mut e = create(arn);
    e.username = username.map(str::to_owned);
    e.kubernetes_groups = groups.iter().map(|g| (*g).to_owned()).collect();
    w.c.create_access_entry(&w.root, &w.m, CLUSTER, e)
        .await
        .unwrap();
}

pub(super) fn refused(w: &World, route: ClusterRoute<'_>, token: &str, why: &str) {
    let e = w.c.review_eks_token(route, token).unwrap_err();
    assert!(
        e.reason().contains(why),
        "expected a refusal for {why:?}, got {:?}",
        e.reason()
    );
}

// --- accepted tokens and their mapping

#[tokio::test]
async fn an_iam_user_maps_to_its_arn_and_the_entry_groups() {
    let w = setup().await;
    let k = user_key(&w, "alice").await;
    let arn = format!("arn:aws:iam::{ACCT}:user/alice");
    entry(&w, &arn, None, &["devs"]).await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    assert_eq!(u.username, arn);
    assert_eq!(u.groups, ["devs"]);
    let id = w.c.db.read().users[&(ACCT.to_owned(), "alice".to_owned())]
        .value
        .id
        .clone();
    assert_eq!(u.uid, format!("aws-iam-authenticator:{ACCT}:{id}"));
    assert_eq!(u.extra["arn"], std::slice::from_ref(&arn));
    assert_eq!(u.extra["canonicalArn"], [arn]);
    assert_eq!(u.extra["accessKeyId"], std::slice::from_ref(&k.id));
    assert_eq!(u.extra["principalId"], [id]);
    assert_eq!(u.extra["sessionName"], [""]);
}

#[tokio::test]
async fn a_role_session_maps_by_the_default_username_with_its_session_name() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    entry(&w, &role("ops"), None, &["ops"]).await;
    let k = session_key(&w, &role("ops"), "jane@example.com").await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    // `@` becomes `-` in {{SessionName}}, as EKS renders it.
    assert_eq!(
        u.username,
        format!("arn:aws:sts::{ACCT}:assumed-role/ops/jane-example.com")
    );
    assert_eq!(u.groups, ["ops"]);
    let rid = w.c.db.read().roles[&(ACCT.to_owned(), "ops".to_owned())]
        .value
        .id
        .clone();
    assert_eq!(u.uid, format!("aws-iam-authenticator:{ACCT}:{rid}"));
    assert_eq!(
        u.extra["arn"],
        [format!(
            "arn:aws:sts::{ACCT}:assumed-role/ops/jane@example.com"
        )]
    );
    assert_eq!(u.extra["canonicalArn"], [role("ops")]);
    assert_eq!(u.extra["sessionName"], ["jane@example.com"]);
}

#[tokio::test]
async fn every_username_template_is_filled() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    entry(
        &w,
        &role("ops"),
        Some("u:{{AccountID}}:{{SessionName}}:{{SessionNameRaw}}:{{AccessKeyID}}"),
        &[],
    )
    .await;
    let k = session_key(&w, &role("ops"), "a@b").await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    assert_eq!(u.username, format!("u:{ACCT}:a-b:a@b:{}", k.id));
    assert!(u.groups.is_empty());
}

#[tokio::test]
async fn a_session_of_a_role_with_a_path_finds_the_entry_stored_with_the_path() {
    let w = setup().await;
    new_role(&w, "deep", Some("/team/a/")).await;
    let pathed = format!("arn:aws:iam::{ACCT}:role/team/a/deep");
    entry(&w, &pathed, None, &["team"]).await;
    let k = session_key(&w, &pathed, "s1").await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    assert_eq!(
        u.username,
        format!("arn:aws:sts::{ACCT}:assumed-role/deep/s1")
    );
    assert_eq!(u.groups, ["team"]);
}

#[tokio::test]
async fn a_node_entry_maps_to_system_node_and_an_ec2_dns_template_is_refused() {
    let w = setup().await;
    new_role(&w, "hybrid", None).await;
    let mut e = create(&role("hybrid"));
    e.kind = Some("HYBRID_LINUX".into());
    w.c.create_access_entry(&w.root, &w.m, CLUSTER, e)
        .await
        .unwrap();
    let k = session_key(&w, &role("hybrid"), "mi-0123").await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    assert_eq!(u.username, "system:node:mi-0123");
    assert_eq!(u.groups, ["system:nodes"]);

    let mut e = create(&role("node"));
    e.kind = Some("EC2_LINUX".into());
    let w2 = w;
    w2.c.create_access_entry(&w2.root, &w2.m, CLUSTER, e)
        .await
        .unwrap();
    // `node` trusts ec2.amazonaws.com only: a role that root may assume gets the same entry.
    new_role(&w2, "ec2", None).await;
    let mut e = create(&role("ec2"));
    e.kind = Some("EC2_LINUX".into());
    w2.c.create_access_entry(&w2.root, &w2.m, CLUSTER, e)
        .await
        .unwrap();
    let k = session_key(&w2, &role("ec2"), "i-0123456789abcdef0").await;
    refused(&w2, ROUTE, &tok(&w2, &k).token(), "EC2PrivateDNSName");
}

#[tokio::test]
async fn a_sixty_second_url_is_good_for_fifteen_minutes() {
    let w = setup().await;
    let k = user_key(&w, "alice").await;
    entry(&w, &format!("arn:aws:iam::{ACCT}:user/alice"), None, &[]).await;
    let mut t = tok(&w, &k);
    t.at = w.c.now() - 14 * 60;
    assert!(w.c.review_eks_token(ROUTE, &t.token()).is_ok());
    t.at = w.c.now() - 16 * 60;
    refused(&w, ROUTE, &t.token(), "expired");
    t.at = w.c.now() + 10 * 60;
    refused(&w, ROUTE, &t.token(), "future");
}

// --- refusals

#[tokio::test]
async fn tokens_for_another_cluster_tampered_or_unsigned_cluster_ids_are_refused() {
    let w = setup().await;
    let k = user_key(&w, "alice").await;
    entry(&w, &format!("arn:aws:iam::{ACCT}:user/alice"), None, &[]).await;
    cluster(
        &w,
        &w.root,
        "other",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;

    let mut t = tok(&w, &k);
    t.cluster = Some("other");
    refused(&w, ROUTE, &t.token(), "signature refused");

    // A flipped signature character.
    let url = tok(&w, &k).url();
    let i = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flip = if &url[i..=i] == "0" { "1" } else { "0" };
    let bad = format!("{}{flip}{}", &url[..i], &url[i + 1..]);
    refused(
        &w,
        ROUTE,
        &format!("{TOKEN_PREFIX}{}", b64(&bad)),
        "signature refused",
    );

    // Signed without the cluster header at all.
    let mut t = tok(&w, &k);
    t.cluster = None;
    refused(&w, ROUTE, &t.token(), "x-k8s-aws-id is not a signed header");

    // Another host than podiam's STS.
    let mut t = tok(&w, &k);
    t.host = "sts.amazonaws.com";
    refused(&w, ROUTE, &t.token(), "not one of the accepted STS hosts");

    // Another action, signed.
    let mut t = tok(&w, &k);
    t.query = "Action=GetSessionToken&Version=2011-06-15";
    refused(&w, ROUTE, &t.token(), "not GetCallerIdentity");
}

#[tokio::test]
async fn principals_without_an_entry_roots_and_config_map_clusters_are_refused() {
    let w = setup().await;
    let k = user_key(&w, "alice").await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "no access entry");

    // A root (of a second account, whose bootstrap hands its key out) has no entry to map.
    let other = OTHER;
    let (oroot, root) = other_account(&w).await;
    let body = serde_json::json!({"name": "r", "roleArn": format!("arn:aws:iam::{other}:role/eks"), "resourcesVpcConfig": {}, "accessConfig": {"authenticationMode": "API"}});
    w.c.create_cluster(&oroot, &w.m, &body).await.unwrap();
    let mut t = tok(&w, &root);
    t.cluster = Some("r");
    let route = ClusterRoute {
        account: Some(other),
        name: "r",
    };
    refused(&w, route, &t.token(), "root");

    cluster(&w, &w.root, "cm", serde_json::Value::Null).await;
    let route = ClusterRoute {
        account: None,
        name: "cm",
    };
    let mut t = tok(&w, &k);
    t.cluster = Some("cm");
    refused(&w, route, &t.token(), "no aws-auth ConfigMap");

    let route = ClusterRoute {
        account: None,
        name: "nope",
    };
    t.cluster = Some("nope");
    refused(&w, route, &t.token(), "no such cluster");
}

#[tokio::test]
async fn a_deleted_key_and_a_recreated_role_are_refused() {
    let w = setup().await;
    let k = user_key(&w, "alice").await;
    entry(&w, &format!("arn:aws:iam::{ACCT}:user/alice"), None, &[]).await;
    let token = tok(&w, &k).token();
    assert!(w.c.review_eks_token(ROUTE, &token).is_ok());
    w.c.delete_access_key(&w.root, &w.m, Some("alice"), &k.id)
        .await
        .unwrap();
    refused(&w, ROUTE, &token, "signature refused");

    new_role(&w, "ops", None).await;
    entry(&w, &role("ops"), None, &[]).await;
    let old = session_key(&w, &role("ops"), "s1").await;
    w.c.delete_role(&w.root, &w.m, "ops").await.unwrap();
    new_role(&w, "ops", None).await;
    // The old role's session dies with it; the new role's session is another principal than
    // the one the entry was made for.
    refused(&w, ROUTE, &tok(&w, &old).token(), "signature refused");
    let new = session_key(&w, &role("ops"), "s1").await;
    refused(&w, ROUTE, &tok(&w, &new).token(), "earlier principal");
}

#[tokio::test]
async fn a_revoked_session_is_refused() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    entry(&w, &role("ops"), None, &[]).await;
    let k = session_key(&w, &role("ops"), "s1").await;
    assert!(w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).is_ok());
    {
        let mut t = w.c.db.tables_for_test();
        let key = (ACCT.to_owned(), "ops".to_owned());
        let mut r = (*t.roles[&key].value).clone();
        r.revoked_before = Some(w.c.now() + 1);
        t.roles.get_mut(&key).unwrap().value = std::sync::Arc::new(r);
    }
    refused(&w, ROUTE, &tok(&w, &k).token(), "revoked");
}

#[tokio::test]
async fn a_cluster_name_in_two_accounts_needs_the_account_route() {
    let w = setup().await;
    let other = OTHER;
    let (oroot, _) = other_account(&w).await;
    let k = other_user_key(&w, &oroot, "mallory").await;
    let body = serde_json::json!({"name": CLUSTER, "roleArn": format!("arn:aws:iam::{other}:role/eks"), "resourcesVpcConfig": {}, "accessConfig": {"authenticationMode": "API"}});
    w.c.create_cluster(&oroot, &w.m, &body).await.unwrap();
    let mut e = create(&format!("arn:aws:iam::{other}:user/mallory"));
    e.kubernetes_groups = vec!["admins".into()];
    w.c.create_access_entry(&oroot, &w.m, CLUSTER, e)
        .await
        .unwrap();
    let token = tok(&w, &k).token();
    // Account A's API server asks about "c": account B's principal must not get in through B's
    // own cluster "c".
    refused(&w, ROUTE, &token, "several accounts");
    let a = ClusterRoute {
        account: Some(ACCT),
        name: CLUSTER,
    };
    refused(&w, a, &token, "not in the cluster's account");
    let b = ClusterRoute {
        account: Some(other),
        name: CLUSTER,
    };
    assert_eq!(w.c.review_eks_token(b, &token).unwrap().groups, ["admins"]);
}

// --- the token's shape

#[test]
fn token_shapes_are_checked_before_any_lookup() {
    let hosts = [HOST.to_owned()];
    let q = "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=00";
    let ok = |url: &str| parse_token(&format!("{TOKEN_PREFIX}{}", b64(url)), &hosts);
    let good = ok(&format!("https://{HOST}/?{q}")).unwrap();
    assert_eq!((good.host.as_str(), good.query.as_str()), (HOST, q));
    assert!(ok(&format!("http://PODIAM.test:8443/?{q}")).is_ok());
    let bad = [
        format!("https://{HOST}/?{q}#f"),
        format!("https://u@{HOST}/?{q}"),
        format!("https://{HOST}/x?{q}"),
        format!("https://{HOST}?{q}"),
        format!("ftp://{HOST}/?{q}"),
        format!("https://other/?{q}"),
        format!("https://{HOST}/?{q}&Extra=1"),
        format!("https://{HOST}/?{q}&Action=GetCallerIdentity"),
        format!(
            "https://{HOST}/?{}",
            q.replace("X-Amz-Expires=60", "X-Amz-Expires=901")
        ),
        format!("https://{HOST}/?{}", q.replace("&X-Amz-Expires=60", "")),
        format!(
            "https://{HOST}/?{}",
            q.replace("Version=2011-06-15", "Version=2010-05-08")
        ),
        format!("https://{HOST}/?{}", q.replace("%3Bx-k8s-aws-id", "")),
        format!(
            "https://{HOST}/?{}",
            q.replace("%3Bx-k8s-aws-id", "%3Bx-k8s-aws-id%3Bx-amz-date")
        ),
        format!("https://{HOST}/?{q} "),
    ];
    for url in bad {
        assert!(ok(&url).is_err(), "{url}");
    }
    let raw = format!("https://{HOST}/?{q}");
    for t in [
        b64(&raw),
        format!("k8s-aws-v2.{}", b64(&raw)),
        format!("{TOKEN_PREFIX}{}=", b64(&raw)),
        format!("{TOKEN_PREFIX}{}+/", b64(&raw)),
        format!("{TOKEN_PREFIX}{}", "A".repeat(MAX_TOKEN_CHARS)),
        format!("{TOKEN_PREFIX}%%%"),
        String::new(),
    ] {
        assert!(parse_token(&t, &hosts).is_err(), "{t}");
    }
    // No accepted host configured: nothing parses.
    assert!(parse_token(&format!("{TOKEN_PREFIX}{}", b64(&raw)), &[]).is_err());
}
