//! The action table, walked: one scenario calls every action of [`Action::ALL`] with names
//! spelled in another case than stored, and the test proves that each authorization saw the
//! stored entity's canonical ARN and that every key the table declares for an action reached
//! the policy engine's request context in at least one of its calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::access::{AccessScope, CreateAccessEntry, UpdateAccessEntry};
use crate::auth::{Caller, record};
use crate::authz::{Action, ResourceKind};
use crate::iam::{CreateRole, PageReq};
use crate::model::Tag;
use crate::pod_identity::{CreateAssociation, UpdateAssociation};
use crate::simulate::SimulateInput;
use crate::sts::{AssumeCommon, AssumeRoleExtra};
use crate::{Config, SystemClock};

const ACCT: &str = "111122223333";

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

/// Keys the scenario cannot produce: web-identity session tags come from a token claim that
/// podiam's development tokens do not carry (tested end to end with a signed token instead).
const NOT_PRODUCED: &[(Action, &str)] = &[
    (Action::StsAssumeRoleWithWebIdentity, "aws:RequestTag/"),
    (Action::StsAssumeRoleWithWebIdentity, "aws:TagKeys"),
    (
        Action::StsAssumeRoleWithWebIdentity,
        "sts:TransitiveTagKeys",
    ),
    (Action::StsTagSession, "aws:FederatedProvider"),
];

#[tokio::test]
async fn every_action_authorizes_the_stored_entity_with_every_declared_key() {
    let (c, root, m) =
        crate::testing::root_control(Config::default(), Arc::new(SystemClock), ACCT).await;
    record::take();

    // --- IAM, with entities stored as /people/Alice, /team/MixedCase, /p/Pol, /b/Boundary and
    // named in requests in lower case.
    let pol = c
        .create_policy(
            &root,
            &m,
            "Pol",
            Some("/p/".into()),
            allow_all(),
            None,
            tags(&[("Env", "prod")]),
        )
        .await
        .unwrap();
    let pol_arn = format!("arn:aws:iam::{ACCT}:policy/p/Pol");
    let boundary_arn = format!("arn:aws:iam::{ACCT}:policy/b/Boundary");
    c.create_policy(
        &root,
        &m,
        "Boundary",
        Some("/b/".into()),
        allow_all(),
        None,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(pol.name, "Pol");
    c.get_policy(&root, &m, &pol_arn).unwrap();
    c.list_policies(&root, &m, None, false, &PageReq::default())
        .unwrap();
    c.create_policy_version(&root, &m, &pol_arn, allow_all(), false)
        .await
        .unwrap();
    c.get_policy_version(&root, &m, &pol_arn, "v1").unwrap();

    c.create_user(
        &root,
        &m,
        "Alice",
        Some("/people/".into()),
        Some(&boundary_arn),
        tags(&[("Team", "a")]),
    )
    .await
    .unwrap();
    c.delete_user_boundary(&root, &m, "alice").await.unwrap();
    c.put_user_boundary(&root, &m, "alice", &boundary_arn)
        .await
        .unwrap();
    c.get_user(&root, &m, Some("alice")).unwrap();
    c.list_users(&root, &m, None, &PageReq::default()).unwrap();
    c.put_user_policy(&root, &m, "alice", "inline", allow_all())
        .await
        .unwrap();
    c.get_user_policy(&root, &m, "alice", "inline").unwrap();
    c.list_user_policies(&root, &m, "alice", &PageReq::default())
        .unwrap();
    c.attach_user_policy(&root, &m, "alice", &pol_arn)
        .await
        .unwrap();
    c.list_attached_user_policies(&root, &m, "alice", &PageReq::default())
        .unwrap();
    let (key, _, _) = c.create_access_key(&root, &m, Some("alice")).await.unwrap();
    c.list_access_keys(&root, &m, Some("alice")).unwrap();

    let alice_arn = format!("arn:aws:iam::{ACCT}:user/people/Alice");
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]},
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]},
    ]});
    let role = CreateRole {
        name: "MixedCase".into(),
        path: Some("/team/".into()),
        trust_policy: trust.to_string(),
        boundary: Some(boundary_arn.clone()),
        tags: tags(&[("Env", "prod")]),
        ..CreateRole::default()
    };
    c.create_role(&root, &m, role).await.unwrap();
    let role_arn = format!("arn:aws:iam::{ACCT}:role/team/MixedCase");
    c.get_role(&root, &m, "mixedcase").unwrap();
    c.list_roles(&root, &m, None, &PageReq::default()).unwrap();
    c.update_role_settings(&root, &m, "mixedcase", Some("d".into()), None)
        .await
        .unwrap();
    c.update_role_description(&root, &m, "mixedcase", "e".into())
        .await
        .unwrap();
    c.delete_role_boundary(&root, &m, "mixedcase")
        .await
        .unwrap();
    c.put_role_boundary(&root, &m, "mixedcase", &boundary_arn)
        .await
        .unwrap();
    c.update_assume_role_policy(&root, &m, "mixedcase", trust.to_string())
        .await
        .unwrap();
    c.tag_role(&root, &m, "mixedcase", tags(&[("Level", "1")]))
        .await
        .unwrap();
    c.untag_role(&root, &m, "mixedcase", vec!["level".into()])
        .await
        .unwrap();
    c.list_role_tags(&root, &m, "mixedcase").unwrap();
    c.put_role_policy(&root, &m, "mixedcase", "inline", allow_all())
        .await
        .unwrap();
    c.get_role_policy(&root, &m, "mixedcase", "inline").unwrap();
    c.list_role_policies(&root, &m, "mixedcase", &PageReq::default())
        .unwrap();
    c.attach_role_policy(&root, &m, "mixedcase", &pol_arn)
        .await
        .unwrap();
    c.list_attached_role_policies(&root, &m, "mixedcase", &PageReq::default())
        .unwrap();

    let sim = SimulateInput {
        actions: vec!["s3:GetObject".into()],
        ..SimulateInput::default()
    };
    let principal_sim = SimulateInput {
        policy_source_arn: Some(format!("arn:aws:iam::{ACCT}:role/team/mixedcase")),
        ..sim.clone()
    };
    c.simulate(&root, &m, &principal_sim, true).unwrap();
    c.simulate(
        &root,
        &m,
        &SimulateInput {
            policy_inputs: vec![allow_all()],
            ..sim
        },
        false,
    )
    .unwrap();

    // --- STS, as Alice, with every AssumeRole input.
    let alice = Caller::User {
        account: ACCT.into(),
        user: Arc::clone(&c.db.read().users[&(ACCT.to_owned(), "alice".to_owned())].value),
    };
    let common = AssumeCommon {
        role_arn: role_arn.clone(),
        session_name: "s1".into(),
        ..AssumeCommon::default()
    };
    let extra = AssumeRoleExtra {
        external_id: Some("ext-1".into()),
        tags: tags(&[("Project", "x")]),
        transitive_tag_keys: vec!["Project".into()],
        source_identity: Some("alice".into()),
    };
    c.assume_role(&alice, &m, common, extra).await.unwrap();
    c.get_access_key_info(&alice, &m, &key.id).unwrap();
    c.lookup_events(&alice, &m, Default::default())
        .await
        .unwrap();

    // --- EKS and EKS Auth, on a hosted cluster.
    let body = serde_json::json!({"name": "Demo", "roleArn": role_arn.to_lowercase(), "resourcesVpcConfig": {}, "tags": {"Env": "prod"},
        "accessConfig": {"authenticationMode": "CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": true}});
    let cluster = c.create_cluster(&root, &m, &body).await.unwrap();
    assert_eq!(
        cluster.role_arn, role_arn,
        "the cluster keeps the stored role's canonical ARN"
    );
    c.describe_cluster(&root, &m, "Demo").unwrap();
    c.list_clusters(&root, &m, None, None).unwrap();
    let input = CreateAssociation {
        namespace: "default".into(),
        service_account: "app".into(),
        role_arn: format!("arn:aws:iam::{ACCT}:role/team/mixedcase"),
        tags: BTreeMap::from([("Env".into(), "prod".into())]),
        ..CreateAssociation::default()
    };
    let a = c
        .create_pod_identity_association(&root, &m, "Demo", input)
        .await
        .unwrap();
    assert_eq!(
        a.role_arn, role_arn,
        "the association keeps the stored role's canonical ARN"
    );
    c.describe_pod_identity_association(&root, &m, "Demo", &a.id)
        .unwrap();
    c.list_pod_identity_associations(&root, &m, "Demo", None, None, None, None)
        .unwrap();
    c.update_pod_identity_association(
        &root,
        &m,
        "Demo",
        &a.id,
        UpdateAssociation {
            role_arn: Some(role_arn.clone()),
            ..UpdateAssociation::default()
        },
    )
    .await
    .unwrap();
    let assoc_arn = c.association_arn(ACCT, "Demo", &a.id);
    let cluster_arn = c.cluster_arn(ACCT, "Demo");
    c.change_eks_tags(
        &root,
        &m,
        &assoc_arn,
        BTreeMap::from([("Tier".into(), "1".into())]),
        vec![],
    )
    .await
    .unwrap();
    c.change_eks_tags(&root, &m, &cluster_arn, BTreeMap::new(), vec!["Env".into()])
        .await
        .unwrap();
    c.list_eks_tags(&root, &m, &assoc_arn).unwrap();

    // --- EKS access entries, the principal named in lower case.
    c.update_cluster_config(
        &root,
        &m,
        "Demo",
        &serde_json::json!({"accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}),
    )
    .await
    .unwrap();
    let principal = format!("arn:aws:iam::{ACCT}:role/team/mixedcase");
    let entry = c
        .create_access_entry(
            &root,
            &m,
            "Demo",
            CreateAccessEntry {
                principal_arn: principal.clone(),
                kubernetes_groups: vec!["devs".into()],
                username: Some("dev-{{SessionName}}".into()),
                tags: BTreeMap::from([("Env".into(), "prod".into())]),
                ..CreateAccessEntry::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        entry.principal_arn, role_arn,
        "the entry keeps the stored role's canonical ARN"
    );
    let entry_arn = c.access_entry_arn(ACCT, &entry);
    c.describe_access_entry(&root, &m, "Demo", &principal)
        .unwrap();
    c.list_access_entries(&root, &m, "Demo", None, None, None)
        .unwrap();
    c.update_access_entry(
        &root,
        &m,
        "Demo",
        &principal,
        UpdateAccessEntry {
            kubernetes_groups: Some(vec!["ops".into()]),
            ..UpdateAccessEntry::default()
        },
    )
    .await
    .unwrap();
    // A pattern entry: podiam:ManageAccessEntryPattern on top of every change to it.
    let pattern = format!("arn:aws:iam::{ACCT}:role/team/mixed*");
    let pattern_entry = c
        .create_access_entry(
            &root,
            &m,
            "Demo",
            CreateAccessEntry {
                principal_arn: pattern.clone(),
                kubernetes_groups: vec!["devs".into()],
                username: Some("dev:{{SessionName}}".into()),
                tags: BTreeMap::from([("Env".into(), "prod".into())]),
                ..CreateAccessEntry::default()
            },
        )
        .await
        .unwrap();
    c.associate_access_policy(
        &root,
        &m,
        "Demo",
        &pattern,
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
        &AccessScope {
            kind: "namespace".into(),
            namespaces: vec!["web".into()],
        },
    )
    .await
    .unwrap();
    let pattern_entry_arn = c.access_entry_arn(ACCT, &pattern_entry);
    let view = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
    let scope = AccessScope {
        kind: "namespace".into(),
        namespaces: vec!["default".into()],
    };
    c.associate_access_policy(&root, &m, "Demo", &principal, view, &scope)
        .await
        .unwrap();
    c.list_associated_access_policies(&root, &m, "Demo", &principal, None, None)
        .unwrap();
    c.list_access_policies(&root, &m, None, None).unwrap();
    c.change_eks_tags(
        &root,
        &m,
        &entry_arn,
        BTreeMap::from([("Tier".into(), "1".into())]),
        vec![],
    )
    .await
    .unwrap();
    c.list_eks_tags(&root, &m, &entry_arn).unwrap();
    c.disassociate_access_policy(&root, &m, "Demo", &principal, view)
        .await
        .unwrap();
    c.delete_access_entry(&root, &m, "Demo", &principal)
        .await
        .unwrap();
    let token_req = crate::issuer::TokenRequest {
        namespace: "default".into(),
        service_account: "app".into(),
        audiences: vec!["pods.eks.amazonaws.com".into()],
        pod_name: Some("p".into()),
        pod_uid: Some("u".into()),
        node_name: None,
        expiration: None,
    };
    let token = c
        .mint_service_account_token(&root, &m, "Demo", &token_req)
        .unwrap();
    c.assume_role_for_pod_identity(&root, &m, "Demo", &token)
        .await
        .unwrap();
    c.export_issuer(&root, &m, "Demo").unwrap();
    c.rotate_issuer_key(&root, &m, "Demo").await.unwrap();

    // --- Web identity, through the cluster's hosted issuer.
    let provider = c
        .create_oidc_provider(
            &root,
            &m,
            &cluster.issuer,
            vec!["sts.amazonaws.com".into()],
            vec![],
            tags(&[("Env", "prod")]),
        )
        .await
        .unwrap();
    let web_trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": provider.clone()}, "Action": "sts:AssumeRoleWithWebIdentity"}]});
    c.create_role(
        &root,
        &m,
        CreateRole {
            name: "Web".into(),
            trust_policy: web_trust.to_string(),
            ..CreateRole::default()
        },
    )
    .await
    .unwrap();
    let web_token = c
        .mint_service_account_token(
            &root,
            &m,
            "Demo",
            &crate::issuer::TokenRequest {
                audiences: vec![],
                ..token_req
            },
        )
        .unwrap();
    let web = AssumeCommon {
        role_arn: format!("arn:aws:iam::{ACCT}:role/web"),
        session_name: "web".into(),
        ..AssumeCommon::default()
    };
    c.assume_role_with_web_identity(&m, web, &web_token)
        .await
        .unwrap();
    c.get_oidc_provider(&root, &m, &provider).unwrap();
    c.list_oidc_providers(&root, &m).unwrap();
    c.list_oidc_provider_tags(&root, &m, &provider).unwrap();
    c.add_client_id(&root, &m, &provider, "other")
        .await
        .unwrap();
    c.remove_client_id(&root, &m, &provider, "other")
        .await
        .unwrap();
    c.update_thumbprints(&root, &m, &provider, vec!["a".repeat(40)])
        .await
        .unwrap();
    c.tag_oidc_provider(&root, &m, &provider, tags(&[("Tier", "1")]))
        .await
        .unwrap();
    c.untag_oidc_provider(&root, &m, &provider, vec!["Tier".into()])
        .await
        .unwrap();

    // --- Deletions.
    c.delete_pod_identity_association(&root, &m, "Demo", &a.id)
        .await
        .unwrap();
    c.delete_cluster(&root, &m, "Demo").await.unwrap();
    c.delete_oidc_provider(&root, &m, &provider).await.unwrap();
    c.detach_role_policy(&root, &m, "mixedcase", &pol_arn)
        .await
        .unwrap();
    c.delete_role_policy(&root, &m, "mixedcase", "inline")
        .await
        .unwrap();
    c.delete_role(&root, &m, "mixedcase").await.unwrap();
    c.detach_user_policy(&root, &m, "alice", &pol_arn)
        .await
        .unwrap();
    c.delete_user_policy(&root, &m, "alice", "inline")
        .await
        .unwrap();
    c.delete_access_key(&root, &m, Some("alice"), &key.id)
        .await
        .unwrap();
    c.delete_user(&root, &m, "alice").await.unwrap();
    c.delete_policy(&root, &m, &pol_arn).await.unwrap();

    // --- What the engine saw.
    let seen = record::take();
    let canonical: BTreeSet<String> = [
        role_arn.clone(),
        format!("arn:aws:iam::{ACCT}:role/Web"),
        format!("arn:aws:iam::{ACCT}:user/people/Alice"),
        pol_arn.clone(),
        boundary_arn.clone(),
        provider.clone(),
        cluster_arn.clone(),
        assoc_arn.clone(),
        entry_arn.clone(),
        pattern_entry_arn.clone(),
        "*".to_owned(),
    ]
    .into();
    let mut keys_of: HashMap<Action, BTreeSet<String>> = HashMap::new();
    for (action, target, keys) in &seen {
        assert!(
            canonical.contains(target.arn()),
            "{}: authorized on {}, not a stored entity's canonical ARN",
            action.name(),
            target.arn()
        );
        assert!(
            target.fits(*action),
            "{}: on a {:?}",
            action.name(),
            target.kind()
        );
        if target.kind() == ResourceKind::Role
            && target.arn() == role_arn
            && *action != Action::IamCreateRole
        {
            // The role keeps Env=prod throughout: every authorization on it carries the tag.
            assert!(
                target.tags().iter().any(|(k, v)| k == "Env" && v == "prod"),
                "{}: the role's stored tags are missing",
                action.name()
            );
        }
        let set = keys_of.entry(*action).or_default();
        for (k, v) in keys.entries() {
            assert!(!v.is_empty(), "{}: key {k} without values", action.name());
            set.insert(k.clone());
        }
    }
    for action in Action::ALL {
        let Some(set) = keys_of.get(action) else {
            panic!("{} was never authorized by the scenario", action.name())
        };
        for declared in action.keys() {
            if NOT_PRODUCED.contains(&(*action, *declared)) {
                continue;
            }
            let reached = set.iter().any(|k| {
                if declared.ends_with('/') {
                    k.starts_with(declared)
                } else {
                    k == declared
                }
            });
            assert!(
                reached,
                "{}: declared key {declared} never reached the engine (saw {set:?})",
                action.name()
            );
        }
    }
}

fn allow_all() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        .into()
}
