//! The access service against a real (in-memory) store: policies, authorization, tags. The
//! world and its helpers are in `tests.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use std::sync::Arc;

use super::tests::{ACCT, EDIT, VIEW, World, cluster, create, role, user_caller, world};
use super::*;
use crate::auth::{Caller, RequestMeta};
use crate::error::ErrorCode;

#[tokio::test]
async fn policies_associate_filter_and_page() {
    let w = world().await;
    cluster(
        &w,
        &w.root,
        "c",
        serde_json::json!({"authenticationMode": "API_AND_CONFIG_MAP"}),
    )
    .await;
    w.c.create_access_entry(&w.root, &w.m, "c", create(&role("dev")))
        .await
        .unwrap();
    w.c.create_access_entry(&w.root, &w.m, "c", create(&role("node")))
        .await
        .unwrap();
    let ns = AccessScope {
        kind: "namespace".into(),
        namespaces: vec!["b".into(), "a".into()],
    };
    let (p, a) =
        w.c.associate_access_policy(&w.root, &w.m, "c", &role("dev"), VIEW, &ns)
            .await
            .unwrap();
    assert_eq!(p, role("dev"));
    assert_eq!(
        (a.scope.as_str(), a.namespaces.as_slice()),
        ("namespace", &["a".to_owned(), "b".to_owned()][..])
    );
    // Associating again replaces the scope and keeps associatedAt.
    let cl = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    let (_, b) =
        w.c.associate_access_policy(&w.root, &w.m, "c", &role("dev"), VIEW, &cl)
            .await
            .unwrap();
    assert_eq!(
        (b.scope.as_str(), b.associated_ms),
        ("cluster", a.associated_ms)
    );
    w.c.associate_access_policy(&w.root, &w.m, "c", &role("dev"), EDIT, &cl)
        .await
        .unwrap();
    let bad =
        w.c.associate_access_policy(
            &w.root,
            &w.m,
            "c",
            &role("dev"),
            "arn:aws:eks::aws:cluster-access-policy/Nope",
            &cl,
        )
        .await;
    assert_eq!(bad.unwrap_err().code, ErrorCode::InvalidParameter);

    let (_, page, next) =
        w.c.list_associated_access_policies(&w.root, &w.m, "c", &role("dev"), Some(1), None)
            .unwrap();
    assert_eq!(page[0].policy_arn, EDIT);
    let (_, page, last) = w
        .c
        .list_associated_access_policies(&w.root, &w.m, "c", &role("dev"), Some(1), next.as_deref())
        .unwrap();
    assert_eq!((page[0].policy_arn.as_str(), last), (VIEW, None));

    let only = |p: &str| {
        w.c.list_access_entries(&w.root, &w.m, "c", Some(p), None, None)
            .unwrap()
            .0
    };
    assert_eq!(only(VIEW), [role("dev")]);
    let (all, next) =
        w.c.list_access_entries(&w.root, &w.m, "c", None, Some(1), None)
            .unwrap();
    assert_eq!(all, [role("dev")]);
    let (rest, none) =
        w.c.list_access_entries(&w.root, &w.m, "c", None, Some(1), next.as_deref())
            .unwrap();
    assert_eq!((rest, none), (vec![role("node")], None));
    for (max, tok) in [(Some(0), None), (Some(101), None), (None, Some("zz"))] {
        let e =
            w.c.list_access_entries(&w.root, &w.m, "c", None, max, tok)
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter);
    }

    w.c.disassociate_access_policy(&w.root, &w.m, "c", &role("dev"), VIEW)
        .await
        .unwrap();
    assert!(only(VIEW).is_empty());
    let e =
        w.c.disassociate_access_policy(&w.root, &w.m, "c", &role("dev"), VIEW)
            .await;
    assert_eq!(e.unwrap_err().code, ErrorCode::ResourceNotFound);

    let (pols, next) =
        w.c.list_access_policies(&w.root, &w.m, Some(2), None)
            .unwrap();
    assert_eq!(pols.len(), 2);
    let (more, _) =
        w.c.list_access_policies(&w.root, &w.m, None, next.as_deref())
            .unwrap();
    assert_eq!(pols.len() + more.len(), ACCESS_POLICIES.len());

    // The cluster's entries go with it.
    w.c.delete_cluster(&w.root, &w.m, "c").await.unwrap();
    assert!(w.c.db.read().access_entries.is_empty());
}

#[tokio::test]
async fn the_creator_is_bootstrapped_when_the_api_is_on() {
    let w = world().await;
    let admin = user_caller(&w, "admin", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["eks:*","iam:PassRole"],"Resource":"*"}]}"#).await;
    cluster(
        &w,
        &admin,
        "api",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    let (entries, _) =
        w.c.list_access_entries(&admin, &w.m, "api", Some(CLUSTER_ADMIN_POLICY), None, None)
            .unwrap();
    let me = format!("arn:aws:iam::{ACCT}:user/admin");
    assert_eq!(entries, std::slice::from_ref(&me));
    let e = w.c.describe_access_entry(&admin, &w.m, "api", &me).unwrap();
    assert_eq!(e.username, me);
    assert_eq!(e.policies[0].scope, "cluster");

    cluster(&w, &admin, "off", serde_json::json!({"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": false})).await;
    assert!(
        w.c.list_access_entries(&admin, &w.m, "off", None, None, None)
            .unwrap()
            .0
            .is_empty()
    );

    // Created in CONFIG_MAP mode: the entry is made when the API is turned on.
    cluster(&w, &admin, "later", serde_json::Value::Null).await;
    w.c.update_cluster_config(
        &admin,
        &w.m,
        "later",
        &serde_json::json!({"accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        w.c.list_access_entries(&admin, &w.m, "later", None, None, None)
            .unwrap()
            .0,
        [me]
    );

    let body = serde_json::json!({"name": "bad", "roleArn": role("dev"), "resourcesVpcConfig": {}, "accessConfig": {"bootstrapClusterCreatorAdminPermissions": false}});
    let e = w.c.create_cluster(&admin, &w.m, &body).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameter);
    assert!(w.c.describe_cluster(&w.root, &w.m, "bad").is_err());
}

#[tokio::test]
async fn authorization_is_per_action_and_condition_and_refusals_write_nothing() {
    let w = world().await;
    cluster(
        &w,
        &w.root,
        "c",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    w.c.create_access_entry(&w.root, &w.m, "c", create(&role("dev")))
        .await
        .unwrap();
    let reader = user_caller(&w, "reader", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:DescribeAccessEntry","Resource":"*"}]}"#).await;
    w.c.describe_access_entry(&reader, &w.m, "c", &role("dev"))
        .unwrap();
    let e =
        w.c.create_access_entry(&reader, &w.m, "c", create(&role("node")))
            .await
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    let e =
        w.c.delete_access_entry(&reader, &w.m, "c", &role("dev"))
            .await
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);

    let scoped = user_caller(&w, "scoped", r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"eks:CreateAccessEntry","Resource":"*","Condition":{"StringEquals":{"eks:accessEntryType":"STANDARD"},"ArnLike":{"eks:principalArn":"arn:aws:iam::111122223333:role/node"}}},
        {"Effect":"Allow","Action":"eks:AssociateAccessPolicy","Resource":"*","Condition":{"StringEquals":{"eks:accessScope":"namespace","eks:policyArn":"arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"},"ForAllValues:StringEquals":{"eks:namespaces":["team-a"]}}}]}"#).await;
    let mut ec2 = create(&role("node"));
    ec2.kind = Some("EC2_LINUX".into());
    let e =
        w.c.create_access_entry(&scoped, &w.m, "c", ec2)
            .await
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    let e =
        w.c.create_access_entry(
            &scoped,
            &w.m,
            "c",
            create(&format!("arn:aws:iam::{ACCT}:user/reader")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    let before =
        w.c.list_access_entries(&w.root, &w.m, "c", None, None, None)
            .unwrap()
            .0;
    assert_eq!(before, [role("dev")], "no refused create wrote anything");
    w.c.create_access_entry(&scoped, &w.m, "c", create(&role("node")))
        .await
        .unwrap();

    let team = |ns: &[&str]| AccessScope {
        kind: "namespace".into(),
        namespaces: ns.iter().map(|s| (*s).to_owned()).collect(),
    };
    let cl = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    for (policy, s) in [
        (VIEW, cl.clone()),
        (EDIT, team(&["team-a"])),
        (VIEW, team(&["team-a", "team-b"])),
    ] {
        let e =
            w.c.associate_access_policy(&scoped, &w.m, "c", &role("node"), policy, &s)
                .await
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied, "{policy} {s:?}");
    }
    assert!(
        w.c.describe_access_entry(&w.root, &w.m, "c", &role("node"))
            .unwrap()
            .policies
            .is_empty()
    );
    w.c.associate_access_policy(&scoped, &w.m, "c", &role("node"), VIEW, &team(&["team-a"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn access_entries_are_tagged_by_arn() {
    let w = world().await;
    cluster(
        &w,
        &w.root,
        "c",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    let e =
        w.c.create_access_entry(&w.root, &w.m, "c", create(&role("dev")))
            .await
            .unwrap();
    let arn = w.c.access_entry_arn(ACCT, &e);
    w.c.change_eks_tags(
        &w.root,
        &w.m,
        &arn,
        BTreeMap::from([("k".into(), "v".into())]),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        w.c.list_eks_tags(&w.root, &w.m, &arn).unwrap(),
        BTreeMap::from([("k".into(), "v".into())])
    );
    w.c.change_eks_tags(&w.root, &w.m, &arn, BTreeMap::new(), vec!["k".into()])
        .await
        .unwrap();
    assert!(
        w.c.describe_access_entry(&w.root, &w.m, "c", &role("dev"))
            .unwrap()
            .tags
            .is_empty()
    );
    let other = arn.replace(&e.uuid, "00000000-0000-4000-8000-000000000000");
    assert_eq!(
        w.c.list_eks_tags(&w.root, &w.m, &other).unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn entries_and_access_config_survive_a_reload() {
    use crate::crypto::MasterKey;
    use crate::{Config, Control, SystemClock};
    let store: Arc<dyn podiam_store::Store> =
        Arc::new(podiam_store::SqliteStore::memory().await.unwrap());
    let (master, text) = MasterKey::generate().unwrap();
    let first = Control::open(
        Config::default(),
        Arc::clone(&store),
        master,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    first.bootstrap(Some(ACCT)).await.unwrap().unwrap();
    let w = World {
        c: first,
        root: Caller::Root {
            account: ACCT.into(),
        },
        m: RequestMeta::default(),
    };
    w.c.create_role(
        &w.root,
        &w.m,
        crate::iam::CreateRole {
            name: "dev".into(),
            trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    cluster(
        &w,
        &w.root,
        "c",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    w.c.create_access_entry(&w.root, &w.m, "c", create(&role("dev")))
        .await
        .unwrap();
    let ns = AccessScope {
        kind: "namespace".into(),
        namespaces: vec!["a".into()],
    };
    w.c.associate_access_policy(&w.root, &w.m, "c", &role("dev"), VIEW, &ns)
        .await
        .unwrap();
    let before =
        w.c.describe_access_entry(&w.root, &w.m, "c", &role("dev"))
            .unwrap();

    let again = Control::open(
        Config::default(),
        store,
        MasterKey::from_base64(&text).unwrap(),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    assert_eq!(
        again
            .describe_access_entry(&w.root, &w.m, "c", &role("dev"))
            .unwrap(),
        before
    );
    assert_eq!(
        again
            .describe_cluster(&w.root, &w.m, "c")
            .unwrap()
            .access_config
            .authentication_mode,
        MODE_API
    );
}
