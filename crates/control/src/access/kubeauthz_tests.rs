#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::authn_tests::{CLUSTER, ROUTE, entry, new_role, session_key, setup, tok, user_key};
use super::rbac::{Request, RoleSet, Rule};
use super::tests::{ACCT, World, role};
use super::*;

const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
const EDIT: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
const ADMIN: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy";

fn res(verb: &str, group: &str, resource: &str, namespace: &str) -> Request {
    Request::Resource {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: String::new(),
        name: String::new(),
        namespace: namespace.into(),
    }
}

fn pods(verb: &str, namespace: &str) -> Request {
    res(verb, "", "pods", namespace)
}

async fn associate(w: &World, arn: &str, policy: &str, namespaces: &[&str]) {
    let scope = AccessScope {
        kind: if namespaces.is_empty() {
            "cluster"
        } else {
            "namespace"
        }
        .into(),
        namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
    };
    w.c.associate_access_policy(&w.root, &w.m, CLUSTER, arn, policy, &scope)
        .await
        .unwrap();
}

/// The review the API server would send for `u` asking `request`.
fn review(u: &KubeUser, request: Request) -> AccessReview {
    AccessReview {
        user: u.username.clone(),
        uid: u.uid.clone(),
        extra: u.extra.clone(),
        request: Some(request),
    }
}

fn allowed(w: &World, r: &AccessReview) -> bool {
    matches!(w.c.review_access(ROUTE, r), Decision::Allowed(_))
}

fn no_opinion(w: &World, r: &AccessReview, why: &str) {
    match w.c.review_access(ROUTE, r) {
        Decision::NoOpinion(reason) => assert!(reason.contains(why), "{reason:?} lacks {why:?}"),
        Decision::Allowed(reason) => panic!("expected no opinion ({why}), allowed: {reason}"),
    }
}

/// A user `alice` with an entry and a view policy on namespace team-a.
async fn viewer() -> (World, KubeUser) {
    let w = setup().await;
    let k = user_key(&w, "alice").await;
    let arn = format!("arn:aws:iam::{ACCT}:user/alice");
    entry(&w, &arn, None, &[]).await;
    associate(&w, &arn, VIEW, &["team-a"]).await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    (w, u)
}

// --- grants

#[tokio::test]
async fn a_namespace_scoped_view_policy_reads_its_namespace_only() {
    let (w, u) = viewer().await;
    for verb in ["get", "list", "watch"] {
        assert!(allowed(&w, &review(&u, pods(verb, "team-a"))), "{verb}");
    }
    match w
        .c
        .review_access(ROUTE, &review(&u, pods("list", "team-a")))
    {
        Decision::Allowed(reason) => {
            assert!(reason.contains("AmazonEKSViewPolicy"), "{reason}");
            assert!(reason.contains("team-a"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    no_opinion(&w, &review(&u, pods("list", "team-b")), "no access policy");
    no_opinion(
        &w,
        &review(&u, pods("create", "team-a")),
        "no access policy",
    );
    no_opinion(
        &w,
        &review(&u, pods("delete", "team-a")),
        "no access policy",
    );
    // view does not read Secrets, and namespace scope never reaches cluster-wide requests.
    no_opinion(
        &w,
        &review(&u, res("get", "", "secrets", "team-a")),
        "no access policy",
    );
    no_opinion(&w, &review(&u, pods("list", "")), "no access policy");
    no_opinion(
        &w,
        &review(&u, res("list", "", "nodes", "")),
        "no access policy",
    );
    let healthz = Request::NonResource {
        verb: "get".into(),
        path: "/healthz".into(),
    };
    no_opinion(&w, &review(&u, healthz), "no access policy");
}

#[tokio::test]
async fn cluster_scoped_policies_grant_their_cluster_roles_everywhere() {
    let w = setup().await;
    new_role(&w, "ops", None).await;
    entry(&w, &role("ops"), None, &[]).await;
    associate(&w, &role("ops"), EDIT, &[]).await;
    let k = session_key(&w, &role("ops"), "jane").await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    assert!(allowed(&w, &review(&u, pods("create", "any"))));
    assert!(allowed(
        &w,
        &review(&u, res("patch", "apps", "deployments", "x"))
    ));
    assert!(allowed(&w, &review(&u, res("get", "", "secrets", "x"))));
    // edit is not admin: no RBAC objects, no cluster-scoped writes.
    no_opinion(
        &w,
        &review(
            &u,
            res("create", "rbac.authorization.k8s.io", "rolebindings", "x"),
        ),
        "no access policy",
    );
    no_opinion(
        &w,
        &review(&u, res("delete", "", "nodes", "")),
        "no access policy",
    );
    associate(&w, &role("ops"), ADMIN, &["x"]).await;
    assert!(allowed(
        &w,
        &review(
            &u,
            res("create", "rbac.authorization.k8s.io", "rolebindings", "x")
        )
    ));
    no_opinion(
        &w,
        &review(
            &u,
            res("create", "rbac.authorization.k8s.io", "rolebindings", "y"),
        ),
        "no access policy",
    );
}

#[tokio::test]
async fn cluster_admin_grants_non_resource_urls_and_a_disassociation_takes_effect() {
    let (w, u) = viewer().await;
    let arn = format!("arn:aws:iam::{ACCT}:user/alice");
    associate(&w, &arn, CLUSTER_ADMIN_POLICY, &[]).await;
    let metrics = Request::NonResource {
        verb: "get".into(),
        path: "/metrics".into(),
    };
    assert!(allowed(&w, &review(&u, metrics.clone())));
    assert!(allowed(&w, &review(&u, res("delete", "", "nodes", ""))));
    w.c.disassociate_access_policy(&w.root, &w.m, CLUSTER, &arn, CLUSTER_ADMIN_POLICY)
        .await
        .unwrap();
    no_opinion(&w, &review(&u, metrics), "no access policy");
    assert!(allowed(&w, &review(&u, pods("get", "team-a"))));
}

// --- who gets nothing

#[tokio::test]
async fn a_user_named_like_a_mapped_user_but_not_bound_gets_no_opinion() {
    let (w, u) = viewer().await;
    // The same username and uid from another authenticator: no podiam extra at all.
    let mut r = review(&u, pods("get", "team-a"));
    r.extra.clear();
    no_opinion(&w, &r, "not mapped by a podiam access entry");
    // The entry key without a binding, or with several values.
    let mut r = review(&u, pods("get", "team-a"));
    r.extra.remove(BINDING_EXTRA);
    no_opinion(&w, &r, "no podiam access binding");
    let mut r = review(&u, pods("get", "team-a"));
    let b = r.extra[BINDING_EXTRA][0].clone();
    r.extra.insert(BINDING_EXTRA.into(), vec![b.clone(), b]);
    no_opinion(&w, &r, "no podiam access binding");
}

#[tokio::test]
async fn every_bound_field_is_checked() {
    let (w, u) = viewer().await;
    let mut r = review(&u, pods("get", "team-a"));
    r.user = "alice2".into();
    no_opinion(&w, &r, "does not verify");
    let mut r = review(&u, pods("get", "team-a"));
    r.uid = format!("aws-iam-authenticator:{ACCT}:AIDAOTHER");
    no_opinion(&w, &r, "another principal");
    let mut r = review(&u, pods("get", "team-a"));
    r.uid = "system:serviceaccount".into();
    no_opinion(&w, &r, "not an aws-iam-authenticator uid");
    let mut r = review(&u, pods("get", "team-a"));
    r.extra.insert(BINDING_EXTRA.into(), vec!["AAAA".into()]);
    no_opinion(&w, &r, "does not verify");
    let mut r = review(&u, pods("get", "team-a"));
    r.extra.insert(BINDING_EXTRA.into(), vec!["%%%".into()]);
    no_opinion(&w, &r, "does not verify");
    // Pointing the binding at another entry of the cluster.
    let other = format!("arn:aws:iam::{ACCT}:user/bob");
    user_key(&w, "bob").await;
    entry(&w, &other, None, &[]).await;
    associate(&w, &other, CLUSTER_ADMIN_POLICY, &[]).await;
    let mut r = review(&u, pods("get", "team-a"));
    r.extra.insert(ENTRY_EXTRA.into(), vec![other]);
    no_opinion(&w, &r, "");
    assert!(!allowed(&w, &r));
    let mut r = review(&u, pods("get", "team-a"));
    r.request = None;
    no_opinion(&w, &r, "neither resource nor non-resource");
    assert!(allowed(&w, &review(&u, pods("get", "team-a"))));
}

#[tokio::test]
async fn a_binding_is_for_one_cluster_and_one_entry_lifetime() {
    let (w, u) = viewer().await;
    let arn = format!("arn:aws:iam::{ACCT}:user/alice");
    // The same user's binding presented to another cluster's webhook.
    super::tests::cluster(
        &w,
        &w.root,
        "d",
        serde_json::json!({"authenticationMode": "API"}),
    )
    .await;
    w.c.create_access_entry(&w.root, &w.m, "d", super::tests::create(&arn))
        .await
        .unwrap();
    let scope = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    w.c.associate_access_policy(&w.root, &w.m, "d", &arn, CLUSTER_ADMIN_POLICY, &scope)
        .await
        .unwrap();
    let d = ClusterRoute {
        account: None,
        name: "d",
    };
    assert!(matches!(
        w.c.review_access(d, &review(&u, pods("get", "team-a"))),
        Decision::NoOpinion(ref r) if r.contains("does not verify")
    ));
    // Another account's route.
    let pinned = ClusterRoute {
        account: Some("999988887777"),
        name: CLUSTER,
    };
    assert!(matches!(
        w.c.review_access(pinned, &review(&u, pods("get", "team-a"))),
        Decision::NoOpinion(_)
    ));
    // Deleted: nothing; re-created with a broader policy: the old binding does not carry over.
    w.c.delete_access_entry(&w.root, &w.m, CLUSTER, &arn)
        .await
        .unwrap();
    no_opinion(&w, &review(&u, pods("get", "team-a")), "gone");
    entry(&w, &arn, None, &[]).await;
    associate(&w, &arn, CLUSTER_ADMIN_POLICY, &[]).await;
    no_opinion(&w, &review(&u, pods("get", "team-a")), "does not verify");
}

#[tokio::test]
async fn a_config_map_cluster_grants_nothing_through_entries() {
    let (w, u) = viewer().await;
    assert!(allowed(&w, &review(&u, pods("get", "team-a"))));
    // The API never turns access entries off again; stored state that says so is obeyed.
    let key = (ACCT.to_owned(), CLUSTER.to_owned());
    let (mut c, version) = {
        let t = w.c.db.read();
        let e = &t.clusters[&key];
        ((*e.value).clone(), e.version)
    };
    c.access_config.authentication_mode = "CONFIG_MAP".into();
    let g = w.c.db.write().await;
    let change =
        crate::state::Change::update(crate::model::kind::CLUSTER, ACCT, CLUSTER, &c, version)
            .unwrap();
    w.c.db.commit(&g, vec![change], w.c.now()).await.unwrap();
    drop(g);
    no_opinion(&w, &review(&u, pods("get", "team-a")), "CONFIG_MAP");
}

// --- the rules themselves

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Rule {
    let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect();
    Rule {
        verbs: v(verbs),
        api_groups: v(groups),
        resources: v(resources),
        resource_names: v(names),
        non_resource_urls: vec![],
    }
}

fn sub(verb: &str, resource: &str, subresource: &str, name: &str) -> Request {
    Request::Resource {
        verb: verb.into(),
        group: String::new(),
        resource: resource.into(),
        subresource: subresource.into(),
        name: name.into(),
        namespace: "n".into(),
    }
}

#[test]
fn rules_match_as_rbac_matches() {
    let r = rule(&["get"], &[""], &["pods"], &[]);
    assert!(r.allows(&sub("get", "pods", "", "")));
    assert!(
        !r.allows(&sub("get", "pods", "log", "")),
        "a subresource is not the resource"
    );
    assert!(!r.allows(&sub("list", "pods", "", "")));
    assert!(!r.allows(&res("get", "apps", "pods", "n")));
    let r = rule(&["get"], &[""], &["pods/log"], &[]);
    assert!(r.allows(&sub("get", "pods", "log", "")));
    assert!(!r.allows(&sub("get", "pods", "", "")));
    assert!(!r.allows(&sub("get", "pods", "exec", "")));
    let r = rule(&["*"], &["*"], &["*/scale"], &[]);
    assert!(r.allows(&sub("update", "deployments", "scale", "")));
    assert!(!r.allows(&sub("update", "deployments", "", "")));
    // `resource/*` is no wildcard in Kubernetes RBAC.
    let r = rule(&["get"], &[""], &["pods/*"], &[]);
    assert!(!r.allows(&sub("get", "pods", "exec", "")));
    assert!(!r.allows(&sub("get", "pods", "", "")));
    let r = rule(&["get"], &["*"], &["*/log"], &[]);
    assert!(r.allows(&sub("get", "pods", "log", "")));
    assert!(
        !r.allows(&sub("get", "pods", "", "")),
        "*/sub never matches the resource"
    );
    let r = rule(&["get"], &[""], &["configmaps"], &["a"]);
    assert!(r.allows(&sub("get", "configmaps", "", "a")));
    assert!(!r.allows(&sub("get", "configmaps", "", "b")));
    assert!(!r.allows(&sub("list", "configmaps", "", "")));
    let nr = Rule {
        verbs: vec!["get".into()],
        non_resource_urls: vec!["/api/*".into(), "/healthz".into()],
        ..Rule::default()
    };
    let path = |p: &str| Request::NonResource {
        verb: "get".into(),
        path: p.into(),
    };
    assert!(nr.allows(&path("/healthz")));
    assert!(nr.allows(&path("/api/v1")));
    assert!(!nr.allows(&path("/healthz/x")));
    assert!(!nr.allows(&path("/apis")));
    assert!(
        !nr.allows(&sub("get", "healthz", "", "")),
        "URLs never match resources"
    );
    assert!(
        !rule(&["get"], &["*"], &["*"], &[]).allows(&path("/healthz")),
        "resources never match URLs"
    );
}

#[test]
fn the_builtin_roles_aggregate_view_into_edit_into_admin() {
    let set = RoleSet::builtin();
    let view = set.rules("view");
    let edit = set.rules("edit");
    let admin = set.rules("admin");
    assert!(!view.is_empty() && !edit.is_empty() && !admin.is_empty());
    for r in view {
        assert!(edit.contains(r), "edit lacks view's {r:?}");
    }
    for r in edit {
        assert!(admin.contains(r), "admin lacks edit's {r:?}");
    }
    let allows = |rules: &[Rule], q: &Request| rules.iter().any(|r| r.allows(q));
    let secrets = res("get", "", "secrets", "n");
    assert!(!allows(view, &secrets));
    assert!(allows(edit, &secrets));
    assert!(allows(
        set.rules("cluster-admin"),
        &res("escalate", "x", "y", "")
    ));
    assert!(set.rules("no-such-role").is_empty());
}

#[test]
fn aggregation_follows_labels_and_survives_cycles() {
    let role_json = serde_json::json!([
        {"name": "a", "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-a": "true"}}]}},
        {"name": "b", "labels": {"to-a": "true"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-b": "true"}}]}},
        {"name": "leaf", "labels": {"to-b": "true"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
        {"name": "loop", "labels": {"to-a": "true", "to-b": "true"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-a": "true"}}]}},
        {"name": "expr", "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "to-b", "operator": "Exists"}]}]}}
    ]);
    let roles: Vec<rbac::ClusterRole> = serde_json::from_value(role_json).unwrap();
    let set = RoleSet::aggregate(&roles);
    assert_eq!(set.rules("a").len(), 1);
    assert_eq!(set.rules("b").len(), 1);
    assert_eq!(set.rules("loop").len(), 1);
    assert!(
        set.rules("expr").is_empty(),
        "an unevaluated selector selects nothing"
    );
}

#[tokio::test]
async fn a_pattern_entry_grants_its_policies_to_every_role_it_maps() {
    let w = setup().await;
    entry(&w, &role("dev-*"), None, &[]).await;
    associate(&w, &role("dev-*"), VIEW, &["dev"]).await;
    new_role(&w, "dev-1", None).await;
    new_role(&w, "other", None).await;
    let k = session_key(&w, &role("dev-1"), "dev-session").await;
    let u = w.c.review_eks_token(ROUTE, &tok(&w, &k).token()).unwrap();
    assert_eq!(u.extra[ENTRY_EXTRA], [role("dev-*")]);
    assert!(allowed(&w, &review(&u, pods("list", "dev"))));
    no_opinion(&w, &review(&u, pods("list", "prod")), "no access policy");
    // The binding names the pattern entry: pointing it at an exact entry breaks it.
    entry(&w, &role("other"), None, &[]).await;
    associate(&w, &role("other"), CLUSTER_ADMIN_POLICY, &[]).await;
    let mut r = review(&u, pods("list", "prod"));
    r.extra.insert(ENTRY_EXTRA.into(), vec![role("other")]);
    assert!(!allowed(&w, &r));
}

#[tokio::test]
async fn a_binding_is_honoured_for_twenty_minutes_from_its_review() {
    let (w, u) = viewer().await;
    let arn = format!("arn:aws:iam::{ACCT}:user/alice");
    let entry = std::sync::Arc::clone(
        &w.c.db.read().access_entries[&(ACCT.to_owned(), format!("{CLUSTER}/{arn}"))].value,
    );
    let now = w.c.now();
    let at = |t: i64| {
        let mut r = review(&u, pods("get", "team-a"));
        let b = w.c.access_binding_at(ACCT, &entry, &u.username, &u.uid, t);
        r.extra.insert(BINDING_EXTRA.into(), vec![b]);
        r
    };
    assert!(allowed(&w, &at(now - 1100)));
    assert!(allowed(&w, &at(now + 60)));
    no_opinion(&w, &at(now - 1300), "expired");
    no_opinion(&w, &at(now + 3600), "expired");
    // The time is bound: moving it forward breaks the tag.
    let mut r = review(&u, pods("get", "team-a"));
    let b = r.extra[BINDING_EXTRA][0].clone();
    let (t, tag) = b.split_once('.').unwrap();
    let later = t.parse::<i64>().unwrap() + 1;
    r.extra
        .insert(BINDING_EXTRA.into(), vec![format!("{later}.{tag}")]);
    no_opinion(&w, &r, "does not verify");
    let mut r = review(&u, pods("get", "team-a"));
    r.extra
        .insert(BINDING_EXTRA.into(), vec![format!("+{t}.{tag}")]);
    assert!(!allowed(&w, &r));
}
