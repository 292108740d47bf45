#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::authn_tests::{
    CLUSTER, Key, OTHER, ROUTE, entry, new_role, other_account, other_user_key, refused,
    session_key, setup, tok, user_key,
};
use super::tests::{ACCT, World, cluster, role};
use super::*;

// --- reviews through the ConfigMap

/// A cluster `name` of the test account in `mode`, with `yaml` as its aws-auth ConfigMap.
async fn cm_cluster(w: &World, name: &str, mode: &str, yaml: Option<&str>) {
    cluster(
        w,
        &w.root,
        name,
        serde_json::json!({"authenticationMode": mode}),
    )
    .await;
    if let Some(y) = yaml {
        w.c.set_aws_auth(&name.parse().unwrap(), AwsAuth::parse(y).unwrap());
    }
}

fn route(name: &str) -> ClusterRoute<'_> {
    ClusterRoute {
        account: None,
        name,
    }
}

fn review(w: &World, name: &str, k: &Key) -> Result<KubeUser, TokenRefused> {
    let mut t = tok(w, k);
    t.cluster = Some(name);
    w.c.review_eks_token(route(name), &t.token())
}

fn refused_on(w: &World, name: &str, k: &Key, why: &str) {
    let mut t = tok(w, k);
    t.cluster = Some(name);
    refused(w, route(name), &t.token(), why);
}

fn role_map(rolearn: &str, username: &str, groups: &str) -> String {
    format!(
        "mapRoles: |\n  - rolearn: {rolearn}\n    username: \"{username}\"\n    groups: {groups}\n"
    )
}

#[tokio::test]
async fn a_config_map_cluster_maps_a_role_session_by_the_role_without_its_path() {
    let w = setup().await;
    new_role(&w, "deep", Some("/team/a/")).await;
    let yaml = role_map(
        &role("deep"),
        "ops:{{SessionName}}",
        "[ops, 'g-{{AccountID}}']",
    );
    cm_cluster(&w, "cm", "CONFIG_MAP", Some(&yaml)).await;
    let pathed = format!("arn:aws:iam::{ACCT}:role/team/a/deep");
    let k = session_key(&w, &pathed, "jane@example.com").await;
    let u = review(&w, "cm", &k).unwrap();
    assert_eq!(u.username, "ops:jane-example.com");
    assert_eq!(u.groups, ["ops".to_owned(), format!("g-{ACCT}")]);
    assert_eq!(u.mapped_by, MappedBy::ConfigMap);
    let rid = w.c.db.read().roles[&(ACCT.to_owned(), "deep".to_owned())]
        .value
        .id
        .clone();
    assert_eq!(u.uid, format!("aws-iam-authenticator:{ACCT}:{rid}"));
    // The same extra as an entry-mapped user, and nothing more.
    let keys: Vec<&str> = u.extra.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "accessKeyId",
            "arn",
            "canonicalArn",
            "principalId",
            "sessionName"
        ]
    );
    assert_eq!(
        u.extra["arn"],
        [format!(
            "arn:aws:sts::{ACCT}:assumed-role/deep/jane@example.com"
        )]
    );
    assert_eq!(u.extra["canonicalArn"], [role("deep")]);
    assert_eq!(u.extra["principalId"], [rid]);
    assert_eq!(u.extra["accessKeyId"], std::slice::from_ref(&k.id));

    // Written with its path, the entry never matches (as with the authenticator).
    w.c.set_aws_auth(
        &"cm".parse().unwrap(),
        AwsAuth::parse(&role_map(&pathed, "ops", "[]")).unwrap(),
    );
    refused_on(&w, "cm", &k, "not in the cluster's aws-auth ConfigMap");
}

#[tokio::test]
async fn a_user_maps_by_its_arn_with_its_path() {
    let w = setup().await;
    w.c.create_user(&w.root, &w.m, "bob", Some("/eng/".into()), None, vec![])
        .await
        .unwrap();
    let (k, secret, _) =
        w.c.create_access_key(&w.root, &w.m, Some("bob"))
            .await
            .unwrap();
    let k = Key {
        id: k.id,
        secret,
        session: None,
    };
    let yaml = format!(
        "mapUsers: |\n  - userarn: arn:aws:iam::{ACCT}:user/eng/bob\n    username: bob-{{{{AccessKeyID}}}}\n    groups: [devs]\n"
    );
    cm_cluster(&w, "cm", "CONFIG_MAP", Some(&yaml)).await;
    let u = review(&w, "cm", &k).unwrap();
    assert_eq!(u.username, format!("bob-{}", k.id));
    assert_eq!(u.groups, ["devs"]);
    assert_eq!(u.extra["sessionName"], [""]);
    assert_eq!(
        u.extra["canonicalArn"],
        [format!("arn:aws:iam::{ACCT}:user/eng/bob")]
    );

    let yaml =
        format!("mapUsers: |\n  - userarn: arn:aws:iam::{ACCT}:user/bob\n    username: bob\n");
    w.c.set_aws_auth(&"cm".parse().unwrap(), AwsAuth::parse(&yaml).unwrap());
    refused_on(&w, "cm", &k, "not in the cluster's aws-auth ConfigMap");
}

#[tokio::test]
async fn map_accounts_maps_any_principal_of_the_account_as_its_canonical_arn() {
    let w = setup().await;
    new_role(&w, "deep", Some("/p/")).await;
    let k_user = user_key(&w, "alice").await;
    let yaml = format!(
        "{}mapAccounts: |\n  - '{ACCT}'\n",
        role_map(&role("listed"), "listed", "[l]")
    );
    cm_cluster(&w, "cm", "CONFIG_MAP", Some(&yaml)).await;
    let u = review(&w, "cm", &k_user).unwrap();
    assert_eq!(u.username, format!("arn:aws:iam::{ACCT}:user/alice"));
    assert!(u.groups.is_empty());
    let k = session_key(&w, &format!("arn:aws:iam::{ACCT}:role/p/deep"), "s1").await;
    let u = review(&w, "cm", &k).unwrap();
    assert_eq!(u.username, role("deep"));
    // mapRoles comes first.
    new_role(&w, "listed", None).await;
    let k = session_key(&w, &role("listed"), "s1").await;
    let u = review(&w, "cm", &k).unwrap();
    assert_eq!(
        (u.username.as_str(), u.groups.as_slice()),
        ("listed", &["l".to_owned()][..])
    );
}

#[tokio::test]
async fn another_accounts_principal_never_maps_through_the_config_map() {
    let w = setup().await;
    let other = OTHER;
    let (oroot, _) = other_account(&w).await;
    let k = other_user_key(&w, &oroot, "mallory").await;
    let yaml = format!(
        "mapUsers: |\n  - userarn: arn:aws:iam::{other}:user/mallory\n    username: mallory\n    groups: [system:masters]\nmapAccounts: |\n  - '{other}'\n"
    );
    cm_cluster(&w, "cm", "CONFIG_MAP", Some(&yaml)).await;
    refused_on(&w, "cm", &k, "not in the cluster's account");
    let pinned = ClusterRoute {
        account: Some(ACCT),
        name: "cm",
    };
    let mut t = tok(&w, &k);
    t.cluster = Some("cm");
    refused(&w, pinned, &t.token(), "not in the cluster's account");
}

#[tokio::test]
async fn templates_fill_and_an_ec2_dns_name_is_refused() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    let yaml = role_map(
        &role("ops"),
        "u:{{AccountID}}:{{SessionName}}:{{SessionNameRaw}}:{{AccessKeyID}}",
        "[]",
    );
    cm_cluster(&w, "cm", "CONFIG_MAP", Some(&yaml)).await;
    let k = session_key(&w, &role("ops"), "a@b").await;
    let u = review(&w, "cm", &k).unwrap();
    assert_eq!(u.username, format!("u:{ACCT}:a-b:a@b:{}", k.id));
    let node = role_map(
        &role("ops"),
        "system:node:{{EC2PrivateDNSName}}",
        "[system:nodes]",
    );
    w.c.set_aws_auth(&"cm".parse().unwrap(), AwsAuth::parse(&node).unwrap());
    refused_on(&w, "cm", &k, "EC2PrivateDNSName");
    // podiam's own placeholders are for access entries: the ConfigMap keeps the authenticator's.
    for (username, groups) in [
        ("{{SessionTag:team}}", "[]"),
        ("x:{{RoleName}}", "[]"),
        ("u", "['g:{{RoleName}}']"),
    ] {
        let yaml = role_map(&role("ops"), username, groups);
        w.c.set_aws_auth(&"cm".parse().unwrap(), AwsAuth::parse(&yaml).unwrap());
        refused_on(&w, "cm", &k, "aws-iam-authenticator does not have");
    }
}

#[tokio::test]
async fn each_mode_takes_its_own_source() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    new_role(&w, "qa", None).await;
    let yaml = format!(
        "mapRoles: |\n  - {{rolearn: '{}', username: cm-ops}}\n  - {{rolearn: '{}', username: cm-qa}}\n",
        role("ops"),
        role("qa")
    );
    let ops = session_key(&w, &role("ops"), "s1").await;
    let qa = session_key(&w, &role("qa"), "s1").await;

    // API: access entries only; the ConfigMap is not read.
    w.c.set_aws_auth(&CLUSTER.parse().unwrap(), AwsAuth::parse(&yaml).unwrap());
    refused(&w, ROUTE, &tok(&w, &ops).token(), "no access entry");
    entry(&w, &role("ops"), Some("entry-ops"), &[]).await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &ops).token()).unwrap();
    assert_eq!(u.username, "entry-ops");
    assert_eq!(u.mapped_by, MappedBy::AccessEntry);

    // API_AND_CONFIG_MAP: an entry wins; the ConfigMap maps a principal without one.
    cm_cluster(&w, "both", "API_AND_CONFIG_MAP", Some(&yaml)).await;
    let mut e = super::tests::create(&role("ops"));
    e.username = Some("entry-ops".into());
    w.c.create_access_entry(&w.root, &w.m, "both", e)
        .await
        .unwrap();
    let u = review(&w, "both", &ops).unwrap();
    assert_eq!(
        (u.username.as_str(), u.mapped_by),
        ("entry-ops", MappedBy::AccessEntry)
    );
    let u = review(&w, "both", &qa).unwrap();
    assert_eq!(
        (u.username.as_str(), u.mapped_by),
        ("cm-qa", MappedBy::ConfigMap)
    );
    // A ConfigMap user carries no access binding: access policies grant it nothing, even
    // those of an entry it names in a forged extra.
    assert!(!u.extra.contains_key(BINDING_EXTRA));
    let mut forged = u.extra.clone();
    forged.insert(ENTRY_EXTRA.into(), vec![role("ops")]);
    let scope = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    w.c.associate_access_policy(
        &w.root,
        &w.m,
        "both",
        &role("ops"),
        CLUSTER_ADMIN_POLICY,
        &scope,
    )
    .await
    .unwrap();
    for extra in [u.extra.clone(), forged] {
        let r = AccessReview {
            user: u.username.clone(),
            uid: u.uid.clone(),
            extra,
            request: Some(rbac::Request::NonResource {
                verb: "get".into(),
                path: "/healthz".into(),
            }),
        };
        assert!(matches!(
            w.c.review_access(route("both"), &r),
            Decision::NoOpinion(_)
        ));
    }

    // CONFIG_MAP: the ConfigMap only; without one every token is refused.
    cm_cluster(&w, "cm", "CONFIG_MAP", None).await;
    refused_on(&w, "cm", &ops, "no aws-auth ConfigMap");
    w.c.set_aws_auth(&"cm".parse().unwrap(), AwsAuth::parse(&yaml).unwrap());
    assert_eq!(review(&w, "cm", &ops).unwrap().username, "cm-ops");
}

#[tokio::test]
async fn a_recreated_role_is_mapped_by_its_arn_and_the_old_session_stays_dead() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    cm_cluster(
        &w,
        "cm",
        "CONFIG_MAP",
        Some(&role_map(&role("ops"), "ops", "[]")),
    )
    .await;
    let old = session_key(&w, &role("ops"), "s1").await;
    assert!(review(&w, "cm", &old).is_ok());
    w.c.delete_role(&w.root, &w.m, "ops").await.unwrap();
    new_role(&w, "ops", None).await;
    refused_on(&w, "cm", &old, "signature refused");
    // EKS behaviour: the ConfigMap names an ARN, not a principal id, so the new role maps.
    let new = session_key(&w, &role("ops"), "s1").await;
    let u = review(&w, "cm", &new).unwrap();
    assert_eq!(u.username, "ops");
    let rid = w.c.db.read().roles[&(ACCT.to_owned(), "ops".to_owned())]
        .value
        .id
        .clone();
    assert_eq!(u.uid, format!("aws-iam-authenticator:{ACCT}:{rid}"));
}

#[tokio::test]
async fn a_root_never_maps_through_the_config_map() {
    let w = setup().await;
    let other = OTHER;
    let (oroot, root) = other_account(&w).await;
    let body = serde_json::json!({"name": "r", "roleArn": format!("arn:aws:iam::{other}:role/eks"), "resourcesVpcConfig": {}, "accessConfig": {"authenticationMode": "CONFIG_MAP"}});
    w.c.create_cluster(&oroot, &w.m, &body).await.unwrap();
    let yaml = format!(
        "mapUsers: |\n  - {{userarn: 'arn:aws:iam::{other}:root', username: admin, groups: [system:masters]}}\nmapAccounts: |\n  - '{other}'\n"
    );
    w.c.set_aws_auth(
        &format!("{other}/r").parse().unwrap(),
        AwsAuth::parse(&yaml).unwrap(),
    );
    refused_on(&w, "r", &root, "root");
}

#[tokio::test]
async fn a_source_named_by_name_alone_needs_a_name_no_other_account_uses() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    let k = session_key(&w, &role("ops"), "s1").await;
    cm_cluster(
        &w,
        "cm",
        "CONFIG_MAP",
        Some(&role_map(&role("ops"), "by-name", "[]")),
    )
    .await;
    assert_eq!(review(&w, "cm", &k).unwrap().username, "by-name");
    // The pinned source wins over the unpinned one.
    w.c.set_aws_auth(
        &format!("{ACCT}/cm").parse().unwrap(),
        AwsAuth::parse(&role_map(&role("ops"), "pinned", "[]")).unwrap(),
    );
    assert_eq!(review(&w, "cm", &k).unwrap().username, "pinned");

    cm_cluster(
        &w,
        "shared",
        "CONFIG_MAP",
        Some(&role_map(&role("ops"), "x", "[]")),
    )
    .await;
    let other = OTHER;
    let (oroot, _) = other_account(&w).await;
    let body = serde_json::json!({"name": "shared", "roleArn": format!("arn:aws:iam::{other}:role/eks"), "resourcesVpcConfig": {}, "accessConfig": {"authenticationMode": "CONFIG_MAP"}});
    w.c.create_cluster(&oroot, &w.m, &body).await.unwrap();
    let pinned = ClusterRoute {
        account: Some(ACCT),
        name: "shared",
    };
    let mut t = tok(&w, &k);
    t.cluster = Some("shared");
    refused(&w, pinned, &t.token(), "no aws-auth ConfigMap");
}
