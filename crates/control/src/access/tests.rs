#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use super::params::{groups, node_identity, principal, scope, username, uuid};
use super::*;
use crate::auth::{Caller, RequestMeta};
use crate::error::ErrorCode;
use crate::iam::CreateRole;
use crate::model;
use crate::{Config, Control, SystemClock};

pub(super) const ACCT: &str = "111122223333";
pub(super) const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
pub(super) const EDIT: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";

// --- pure rules

#[test]
fn principals_are_iam_roles_or_users() {
    let p = principal("arn:aws:iam::111122223333:role/team/dev").unwrap();
    assert_eq!((p.path.as_str(), p.name.as_str()), ("/team/", "dev"));
    assert!(principal("arn:aws:iam::111122223333:user/alice").is_ok());
    for bad in [
        "arn:aws:sts::111122223333:assumed-role/dev/s",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:policy/p",
        "arn:aws:iam::1111:role/dev",
        "arn:aws:iam:us-east-1:111122223333:role/dev",
        "arn:aws-cn:iam::111122223333:role/dev",
        "arn:aws:iam::111122223333:role/",
        "arn:aws:iam::111122223333:role/bad name",
        "not-an-arn",
    ] {
        let e = principal(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{bad}");
    }
}

#[test]
fn groups_usernames_and_scopes() {
    assert_eq!(
        groups(&["a".into(), "b".into(), "a".into()]).unwrap(),
        ["a", "b"]
    );
    assert!(groups(&["system:masters".into()]).is_err());
    assert!(groups(&["System:Masters".into()]).is_err());
    assert!(groups(&[String::new()]).is_err());
    assert!(
        groups(&vec!["g".to_owned(); 101]).is_ok(),
        "duplicates collapse"
    );
    let many: Vec<String> = (0..101).map(|i| format!("g{i}")).collect();
    assert!(groups(&many).is_err());
    assert!(username("dev-{{SessionName}}").is_ok());
    assert!(username("{{AccountID}}:{{SessionNameRaw}}").is_ok());
    for bad in [
        "",
        "system:admin",
        "eks:x",
        "AWS:x",
        "amazon:x",
        "iam:x",
        "{{Nope}}",
        "a}}",
    ] {
        assert!(username(bad).is_err(), "{bad}");
    }
    let ns = |k: &str, n: &[&str]| AccessScope {
        kind: k.into(),
        namespaces: n.iter().map(|s| (*s).to_owned()).collect(),
    };
    assert_eq!(
        scope(&ns("namespace", &["b", "a", "b"])).unwrap(),
        ns("namespace", &["a", "b"])
    );
    assert!(scope(&ns("cluster", &[])).is_ok());
    assert!(scope(&ns("cluster", &["a"])).is_err());
    assert!(scope(&ns("namespace", &[])).is_err());
    assert!(scope(&ns("namespace", &["Bad"])).is_err());
    assert!(scope(&ns("account", &[])).is_err());
    let many: Vec<String> = (0..=NAMESPACES_PER_SCOPE)
        .map(|i| format!("n{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(scope(&ns("namespace", &many)).is_err());
}

#[test]
fn node_types_have_fixed_identities() {
    assert_eq!(
        node_identity("EC2_LINUX"),
        Some(("system:node:{{EC2PrivateDNSName}}", &["system:nodes"][..]))
    );
    assert_eq!(
        node_identity("EC2_WINDOWS").unwrap().1,
        ["system:nodes", "eks:kube-proxy-windows"]
    );
    assert_eq!(
        node_identity("HYBRID_LINUX").unwrap().0,
        "system:node:{{SessionName}}"
    );
    assert!(node_identity("STANDARD").is_none());
    let u = uuid().unwrap();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "4");
    assert_ne!(u, uuid().unwrap());
}

// --- the service

pub(super) struct World {
    pub(super) c: Control,
    pub(super) root: Caller,
    pub(super) m: RequestMeta,
}

pub(super) async fn world() -> World {
    let (c, root, m) =
        crate::testing::root_control(Config::default(), Arc::new(SystemClock), ACCT).await;
    for name in ["dev", "node"] {
        c.create_role(
            &root,
            &m,
            CreateRole {
                name: name.into(),
                trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
                ..CreateRole::default()
            },
        )
        .await
        .unwrap();
    }
    World { c, root, m }
}

pub(super) async fn cluster(w: &World, caller: &Caller, name: &str, access: serde_json::Value) {
    let body = serde_json::json!({"name": name, "roleArn": format!("arn:aws:iam::{ACCT}:role/dev"), "resourcesVpcConfig": {}, "accessConfig": access});
    w.c.create_cluster(caller, &w.m, &body).await.unwrap();
}

pub(super) fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:role/{name}")
}

pub(super) fn create(arn: &str) -> CreateAccessEntry {
    CreateAccessEntry {
        principal_arn: arn.into(),
        ..CreateAccessEntry::default()
    }
}

pub(super) async fn user_caller(w: &World, name: &str, policy: &str) -> Caller {
    w.c.create_user(&w.root, &w.m, name, None, None, vec![])
        .await
        .unwrap();
    w.c.put_user_policy(&w.root, &w.m, name, "p", policy.into())
        .await
        .unwrap();
    Caller::User {
        account: ACCT.into(),
        user: Arc::clone(&w.c.db.read().users[&(ACCT.to_owned(), name.to_owned())].value),
    }
}

#[tokio::test]
async fn config_map_clusters_refuse_entries_until_the_mode_moves_on() {
    let w = world().await;
    cluster(&w, &w.root, "c", serde_json::Value::Null).await;
    let c = w.c.describe_cluster(&w.root, &w.m, "c").unwrap();
    assert_eq!(c.access_config, model::AccessConfig::default());
    let e =
        w.c.create_access_entry(&w.root, &w.m, "c", create(&role("dev")))
            .await
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    let e =
        w.c.list_access_entries(&w.root, &w.m, "c", None, None, None);
    assert_eq!(e.unwrap_err().code, ErrorCode::InvalidRequest);
    let to = |m: &str| serde_json::json!({"accessConfig": {"authenticationMode": m}});
    // Straight to API, back, or to the same mode: refused.
    for (mode, code) in [
        ("API", ErrorCode::InvalidParameter),
        ("CONFIG_MAP", ErrorCode::InvalidParameter),
        ("NOPE", ErrorCode::InvalidParameter),
    ] {
        let e =
            w.c.update_cluster_config(&w.root, &w.m, "c", &to(mode))
                .await;
        assert_eq!(e.unwrap_err().code, code, "{mode}");
    }
    let u =
        w.c.update_cluster_config(&w.root, &w.m, "c", &to("API_AND_CONFIG_MAP"))
            .await
            .unwrap();
    assert_eq!(u.kind, "AccessConfigUpdate");
    assert_eq!(
        u.params,
        [("AuthenticationMode", "API_AND_CONFIG_MAP".to_owned())]
    );
    w.c.create_access_entry(&w.root, &w.m, "c", create(&role("dev")))
        .await
        .unwrap();
    for mode in ["CONFIG_MAP", "API_AND_CONFIG_MAP"] {
        let e =
            w.c.update_cluster_config(&w.root, &w.m, "c", &to(mode))
                .await;
        assert_eq!(e.unwrap_err().code, ErrorCode::InvalidParameter);
    }
    w.c.update_cluster_config(&w.root, &w.m, "c", &to("API"))
        .await
        .unwrap();
    let other = serde_json::json!({"logging": {"clusterLogging": []}});
    let e = w.c.update_cluster_config(&w.root, &w.m, "c", &other).await;
    assert_eq!(e.unwrap_err().code, ErrorCode::InvalidParameter);
    let e =
        w.c.update_cluster_config(&w.root, &w.m, "nope", &to("API"))
            .await;
    assert_eq!(e.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn entries_default_their_identity_and_refuse_duplicates() {
    let w = world().await;
    cluster(
        &w,
        &w.root,
        "c",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    assert!(
        w.c.list_access_entries(&w.root, &w.m, "c", None, None, None)
            .unwrap()
            .0
            .is_empty(),
        "a root creator gets no bootstrap entry"
    );
    let mut input = create(&role("DEV"));
    input.kubernetes_groups = vec!["devs".into()];
    input.client_request_token = Some("t1".into());
    input.tags = BTreeMap::from([("team".into(), "a".into())]);
    let e =
        w.c.create_access_entry(&w.root, &w.m, "c", input.clone())
            .await
            .unwrap();
    assert_eq!(e.principal_arn, role("dev"), "the canonical ARN is stored");
    assert_eq!(
        e.username,
        format!("arn:aws:sts::{ACCT}:assumed-role/dev/{{{{SessionName}}}}")
    );
    assert_eq!(
        (e.kind.as_str(), e.kubernetes_groups.as_slice()),
        ("STANDARD", &["devs".to_owned()][..])
    );
    let arn = w.c.access_entry_arn(ACCT, &e);
    assert_eq!(
        arn,
        format!(
            "arn:aws:eks:us-east-1:{ACCT}:access-entry/c/role/{ACCT}/dev/{}",
            e.uuid
        )
    );
    // The same create again is answered with the entry it made; another is refused.
    let again =
        w.c.create_access_entry(&w.root, &w.m, "c", input.clone())
            .await
            .unwrap();
    assert_eq!(again.uuid, e.uuid);
    input.client_request_token = Some("t2".into());
    let dup =
        w.c.create_access_entry(&w.root, &w.m, "c", input)
            .await
            .unwrap_err();
    assert_eq!(dup.code, ErrorCode::ResourceInUse);
    // Described by the ARN in another case, as IAM names match.
    let d =
        w.c.describe_access_entry(&w.root, &w.m, "c", &role("Dev"))
            .unwrap();
    assert_eq!(d.uuid, e.uuid);

    // Node types: fixed username and groups, roles only.
    let mut node = create(&role("node"));
    node.kind = Some("EC2_WINDOWS".into());
    let n =
        w.c.create_access_entry(&w.root, &w.m, "c", node.clone())
            .await
            .unwrap();
    assert_eq!(n.username, "system:node:{{EC2PrivateDNSName}}");
    assert_eq!(
        n.kubernetes_groups,
        ["system:nodes", "eks:kube-proxy-windows"]
    );
    let refused = [
        (
            CreateAccessEntry {
                kubernetes_groups: vec!["g".into()],
                ..node.clone()
            },
            ErrorCode::InvalidParameter,
        ),
        (
            CreateAccessEntry {
                username: Some("n".into()),
                ..node.clone()
            },
            ErrorCode::InvalidParameter,
        ),
        (
            CreateAccessEntry {
                kind: Some("EC2".into()),
                ..create(&role("node"))
            },
            ErrorCode::InvalidParameter,
        ),
        (
            CreateAccessEntry {
                kubernetes_groups: vec!["system:masters".into()],
                ..create(&role("node"))
            },
            ErrorCode::InvalidParameter,
        ),
        (create(&role("missing")), ErrorCode::InvalidParameter),
        (
            create("arn:aws:iam::444455556666:role/dev"),
            ErrorCode::InvalidParameter,
        ),
        (
            create(&format!("arn:aws:sts::{ACCT}:assumed-role/dev/s")),
            ErrorCode::InvalidParameter,
        ),
    ];
    for (input, code) in refused {
        let e =
            w.c.create_access_entry(&w.root, &w.m, "c", input.clone())
                .await
                .unwrap_err();
        assert_eq!(e.code, code, "{input:?}");
    }
    let r =
        w.c.create_access_entry(&w.root, &w.m, "nope", create(&role("dev")))
            .await;
    assert_eq!(r.unwrap_err().code, ErrorCode::ResourceNotFound);
    let r =
        w.c.associate_access_policy(
            &w.root,
            &w.m,
            "c",
            &role("node"),
            VIEW,
            &AccessScope {
                kind: "cluster".into(),
                namespaces: vec![],
            },
        )
        .await;
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidParameter);
    let r =
        w.c.update_access_entry(
            &w.root,
            &w.m,
            "c",
            &role("node"),
            UpdateAccessEntry {
                username: Some("x".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidParameter);

    // Update replaces groups and username; delete removes the entry.
    let u =
        w.c.update_access_entry(
            &w.root,
            &w.m,
            "c",
            &role("dev"),
            UpdateAccessEntry {
                kubernetes_groups: Some(vec![]),
                username: Some("dev-{{SessionName}}".into()),
                client_request_token: None,
            },
        )
        .await
        .unwrap();
    assert!(u.kubernetes_groups.is_empty());
    assert_eq!(u.username, "dev-{{SessionName}}");
    assert_eq!(u.created_ms, e.created_ms);
    w.c.delete_access_entry(&w.root, &w.m, "c", &role("dev"))
        .await
        .unwrap();
    let gone =
        w.c.describe_access_entry(&w.root, &w.m, "c", &role("dev"))
            .unwrap_err();
    assert_eq!(gone.code, ErrorCode::ResourceNotFound);
    let gone =
        w.c.delete_access_entry(&w.root, &w.m, "c", &role("dev"))
            .await
            .unwrap_err();
    assert_eq!(gone.code, ErrorCode::ResourceNotFound);
}
