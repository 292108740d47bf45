//! What a principal holding some IAM or EKS permissions cannot reach through access entries:
//! pattern entries need their own grant and respect Denys naming the roles they map; only the
//! account root makes AWS's reserved roles; every action on an entry carries the entry's keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::authn_tests::{CLUSTER, new_role, setup};
use super::tests::{ACCT, create, role, user_caller};
use super::*;
use crate::error::ErrorCode;
use crate::iam::CreateRole;

const ROLE_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn eks_star_does_not_grant_pattern_entries() {
    let w = setup().await;
    let eks = user_caller(
        &w,
        "eks-admin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:*","Resource":"*"}]}"#,
    )
    .await;
    let e =
        w.c.create_access_entry(&eks, &w.m, CLUSTER, create(&role("team-*")))
            .await
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(
        e.message.contains("podiam:ManageAccessEntryPattern"),
        "{}",
        e.message
    );
    // The same user may still make exact entries.
    new_role(&w, "team-a", None).await;
    w.c.create_access_entry(&eks, &w.m, CLUSTER, create(&role("team-a")))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pattern_cannot_side_step_a_deny_naming_a_role_it_maps() {
    let w = setup().await;
    new_role(&w, "ci-deployer", None).await;
    let d = user_caller(
        &w,
        "delegate",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":["eks:*","podiam:ManageAccessEntryPattern"],"Resource":"*"}},
            {{"Effect":"Deny","Action":"eks:*","Resource":"*",
              "Condition":{{"ArnEquals":{{"eks:principalArn":"arn:aws:iam::{ACCT}:role/ci-deployer"}}}}}}]}}"#
        ),
    )
    .await;
    for arn in [role("ci-deployer"), role("ci-deploye?"), role("ci-*")] {
        let e =
            w.c.create_access_entry(&d, &w.m, CLUSTER, create(&arn))
                .await
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied, "{arn}");
    }
    assert!(w.c.db.read().access_entries.is_empty());
    // A pattern that maps no denied role is the delegate's to make.
    w.c.create_access_entry(&d, &w.m, CLUSTER, create(&role("web-*")))
        .await
        .unwrap();
}

#[tokio::test]
async fn only_the_root_makes_roles_aws_reserves() {
    let w = setup().await;
    let builder = user_caller(
        &w,
        "builder",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:CreateRole","Resource":"*"}]}"#,
    )
    .await;
    for (path, name) in [
        (
            "/aws-reserved/sso.amazonaws.com/eu-west-1/",
            "AWSReservedSSO_Admins_0123456789abcdef",
        ),
        ("/aws-reserved/sso.amazonaws.com/", "x"),
        ("/AWS-Reserved/x/", "x"),
        (
            "/aws-service-role/eks.amazonaws.com/",
            "AWSServiceRoleForAmazonEKS",
        ),
        ("/", "AWSReservedSSO_Admins_0123456789abcdef"),
        ("/", "awsreservedsso_admins"),
    ] {
        let e =
            w.c.create_role(
                &builder,
                &w.m,
                CreateRole {
                    name: name.into(),
                    path: Some(path.into()),
                    trust_policy: ROLE_TRUST.into(),
                    ..CreateRole::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{path}{name}");
    }
    assert!(
        w.c.db
            .read()
            .roles
            .keys()
            .all(|(_, n)| !n.contains("reserved"))
    );
}

#[tokio::test]
async fn a_pathless_sso_pattern_maps_no_role_at_the_root_path() {
    let w = setup().await;
    let pathless = role("AWSReservedSSO_Admins_*");
    assert!(pattern_match(&pathless, &role("AWSReservedSSO_Admins_0123456789abcdef")).is_none());
    let at_sso =
        role("aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admins_0123456789abcdef");
    assert!(pattern_match(&pathless, &at_sso).is_some());
    drop(w);
}

#[tokio::test]
async fn an_update_carries_the_values_the_entry_will_have() {
    let w = setup().await;
    new_role(&w, "builder-role", None).await;
    w.c.create_access_entry(&w.root, &w.m, CLUSTER, create(&role("builder-role")))
        .await
        .unwrap();
    let d = user_caller(
        &w,
        "delegate",
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"eks:*","Resource":"*"},
        {"Effect":"Deny","Action":["eks:CreateAccessEntry","eks:UpdateAccessEntry"],"Resource":"*",
         "Condition":{"ForAnyValue:StringEquals":{"eks:kubernetesGroups":["cluster-admins"]}}},
        {"Effect":"Deny","Action":["eks:CreateAccessEntry","eks:UpdateAccessEntry"],"Resource":"*",
         "Condition":{"StringLike":{"eks:username":"*{{SessionTag*"}}}]}"#,
    )
    .await;
    let update = |groups: Option<Vec<&str>>, username: Option<&str>| UpdateAccessEntry {
        kubernetes_groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
        username: username.map(str::to_owned),
        client_request_token: None,
    };
    for u in [
        update(Some(vec!["devs", "cluster-admins"]), None),
        update(None, Some("t:{{SessionTag:team}}")),
    ] {
        let e =
            w.c.update_access_entry(&d, &w.m, CLUSTER, &role("builder-role"), u)
                .await
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
    }
    w.c.update_access_entry(
        &d,
        &w.m,
        CLUSTER,
        &role("builder-role"),
        update(Some(vec!["devs"]), None),
    )
    .await
    .unwrap();
    // A Deny on the entry's principal reaches every action on it, not only its creation.
    let p = user_caller(
        &w,
        "limited",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"eks:*","Resource":"*"}},
            {{"Effect":"Deny","Action":"eks:*","Resource":"*",
              "Condition":{{"ArnEquals":{{"eks:principalArn":"arn:aws:iam::{ACCT}:role/builder-role"}}}}}}]}}"#
        ),
    )
    .await;
    let e =
        w.c.describe_access_entry(&p, &w.m, CLUSTER, &role("builder-role"))
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    let scope = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    let e =
        w.c.associate_access_policy(
            &p,
            &w.m,
            CLUSTER,
            &role("builder-role"),
            CLUSTER_ADMIN_POLICY,
            &scope,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
}

#[tokio::test]
async fn the_bootstrap_entry_goes_to_the_creator_not_to_its_name() {
    let w = setup().await;
    let creator = user_caller(
        &w,
        "creator",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["eks:*","iam:PassRole"],"Resource":"*"}]}"#,
    )
    .await;
    super::tests::cluster(&w, &creator, "boot", serde_json::Value::Null).await;
    // The creator leaves; someone else takes the name; then the access-entry API is turned on.
    w.c.delete_user_policy(&w.root, &w.m, "creator", "p")
        .await
        .unwrap();
    w.c.delete_user(&w.root, &w.m, "creator").await.unwrap();
    w.c.create_user(&w.root, &w.m, "creator", None, None, vec![])
        .await
        .unwrap();
    w.c.update_cluster_config(
        &w.root,
        &w.m,
        "boot",
        &serde_json::json!({"accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}),
    )
    .await
    .unwrap();
    assert!(
        w.c.db
            .read()
            .access_entries
            .keys()
            .all(|(_, id)| !id.starts_with("boot/")),
        "the impostor got the creator's admin entry"
    );
}

#[tokio::test]
async fn changing_an_existing_pattern_entry_takes_the_pattern_grant_too() {
    let w = setup().await;
    new_role(&w, "ci-deployer", None).await;
    w.c.create_access_entry(&w.root, &w.m, CLUSTER, create(&role("ci-*")))
        .await
        .unwrap();
    let scope = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    let eks = user_caller(
        &w,
        "eks-admin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:*","Resource":"*"}]}"#,
    )
    .await;
    let denied =
        |e: crate::error::AwsError| assert_eq!(e.code, ErrorCode::AccessDenied, "{}", e.message);
    denied(
        w.c.associate_access_policy(
            &eks,
            &w.m,
            CLUSTER,
            &role("ci-*"),
            CLUSTER_ADMIN_POLICY,
            &scope,
        )
        .await
        .unwrap_err(),
    );
    denied(
        w.c.delete_access_entry(&eks, &w.m, CLUSTER, &role("ci-*"))
            .await
            .unwrap_err(),
    );
    // With the pattern grant, a Deny naming a role the pattern maps still holds.
    let d = user_caller(
        &w,
        "delegate",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":["eks:*","podiam:ManageAccessEntryPattern"],"Resource":"*"}},
            {{"Effect":"Deny","Action":"eks:*","Resource":"*",
              "Condition":{{"ArnEquals":{{"eks:principalArn":"arn:aws:iam::{ACCT}:role/ci-deployer"}}}}}}]}}"#
        ),
    )
    .await;
    denied(
        w.c.associate_access_policy(
            &d,
            &w.m,
            CLUSTER,
            &role("ci-*"),
            CLUSTER_ADMIN_POLICY,
            &scope,
        )
        .await
        .unwrap_err(),
    );
    assert!(
        w.c.describe_access_entry(&d, &w.m, CLUSTER, &role("ci-*"))
            .unwrap()
            .policies
            .is_empty()
    );
}

#[tokio::test]
async fn an_update_is_authorized_on_what_the_entry_is_now_too() {
    let w = setup().await;
    new_role(&w, "breakglass", None).await;
    let mut e = create(&role("breakglass"));
    e.username = Some("breakglass".into());
    w.c.create_access_entry(&w.root, &w.m, CLUSTER, e)
        .await
        .unwrap();
    let d = user_caller(
        &w,
        "delegate",
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"eks:*","Resource":"*"},
        {"Effect":"Deny","Action":"eks:*","Resource":"*",
         "Condition":{"StringEquals":{"eks:username":"breakglass"}}}]}"#,
    )
    .await;
    let e =
        w.c.update_access_entry(
            &d,
            &w.m,
            CLUSTER,
            &role("breakglass"),
            UpdateAccessEntry {
                username: Some("renamed".into()),
                ..UpdateAccessEntry::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
}
