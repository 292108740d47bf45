//! Pattern entries and username templates (session tags, `{{RoleName}}`): the API rules, and
//! what a token review maps through them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use super::authn_tests::{CLUSTER, Key, ROUTE, entry, refused, setup, tok, user_key};
use super::params::{principal, username};
use super::pattern;
use super::tests::{ACCT, VIEW, World, create, role, user_caller};
use super::*;
use crate::auth::Caller;
use crate::error::ErrorCode;
use crate::iam::CreateRole;
use crate::model;
use crate::sts::{AssumeCommon, AssumeRoleExtra};

const SSO: &str = "aws-reserved/sso.amazonaws.com";
const TAG_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
const TAGGER_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}"#;

/// A role that the `tagger` user may assume with session tags.
async fn new_role(w: &World, name: &str, path: Option<&str>) -> String {
    w.c.create_role(
        &w.root,
        &w.m,
        CreateRole {
            name: name.into(),
            path: path.map(str::to_owned),
            trust_policy: TAG_TRUST.into(),
            ..CreateRole::default()
        },
    )
    .await
    .unwrap();
    format!("arn:aws:iam::{ACCT}:role{}{name}", path.unwrap_or("/"))
}

async fn tagger(w: &World) -> Caller {
    user_caller(w, "tagger", TAGGER_POLICY).await
}

async fn key(w: &World, by: &Caller, arn: &str, session: &str, tags: &[(&str, &str)]) -> Key {
    let out =
        w.c.assume_role(
            by,
            &w.m,
            AssumeCommon {
                role_arn: arn.into(),
                session_name: session.into(),
                duration: None,
                policy: None,
                policy_arns: vec![],
            },
            AssumeRoleExtra {
                tags: tags
                    .iter()
                    .map(|(k, v)| model::Tag {
                        key: (*k).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                ..AssumeRoleExtra::default()
            },
        )
        .await
        .unwrap();
    Key {
        id: out.credentials.access_key_id,
        secret: out.credentials.secret_access_key,
        session: Some(out.credentials.session_token),
    }
}

async fn try_create(w: &World, arn: &str, kind: Option<&str>) -> crate::error::Result<()> {
    let mut e = create(arn);
    e.kind = kind.map(str::to_owned);
    w.c.create_access_entry(&w.root, &w.m, CLUSTER, e)
        .await
        .map(|_| ())
}

fn review(w: &World, k: &Key) -> KubeUser {
    w.c.review_eks_token(ROUTE, &tok(w, k).token()).unwrap()
}

// --- the API

#[tokio::test]
async fn a_pattern_entry_is_created_described_listed_updated_and_deleted() {
    let w = setup().await;
    let pat = role("team-*");
    let mut input = create(&pat);
    input.kubernetes_groups = vec!["team".into()];
    let e =
        w.c.create_access_entry(&w.root, &w.m, CLUSTER, input)
            .await
            .unwrap();
    // Nothing needs to exist; the pattern is stored as given, bound to no role id.
    assert_eq!(e.principal_arn, pat);
    assert_eq!(e.principal_id, None);
    assert_eq!(
        e.username,
        format!("arn:aws:sts::{ACCT}:assumed-role/{{{{RoleName}}}}/{{{{SessionName}}}}")
    );
    let arn = w.c.access_entry_arn(ACCT, &e);
    assert!(
        arn.starts_with(&format!(
            "arn:aws:eks:us-east-1:{ACCT}:access-entry/{CLUSTER}/role/{ACCT}/team-*/"
        )),
        "{arn}"
    );
    let d =
        w.c.describe_access_entry(&w.root, &w.m, CLUSTER, &pat)
            .unwrap();
    assert_eq!(d, e);
    let (list, _) =
        w.c.list_access_entries(&w.root, &w.m, CLUSTER, None, None, None)
            .unwrap();
    assert_eq!(list, std::slice::from_ref(&pat));
    let u =
        w.c.update_access_entry(
            &w.root,
            &w.m,
            CLUSTER,
            &pat,
            UpdateAccessEntry {
                username: Some("team:{{RoleName}}:{{SessionName}}".into()),
                ..UpdateAccessEntry::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.username, "team:{{RoleName}}:{{SessionName}}");
    let cluster_scope = AccessScope {
        kind: "cluster".into(),
        namespaces: vec![],
    };
    w.c.associate_access_policy(&w.root, &w.m, CLUSTER, &pat, VIEW, &cluster_scope)
        .await
        .unwrap();
    let (p, assoc, _) =
        w.c.list_associated_access_policies(&w.root, &w.m, CLUSTER, &pat, None, None)
            .unwrap();
    assert_eq!((p.as_str(), assoc.len()), (pat.as_str(), 1));
    let (only, _) =
        w.c.list_access_entries(&w.root, &w.m, CLUSTER, Some(VIEW), None, None)
            .unwrap();
    assert_eq!(only, std::slice::from_ref(&pat));
    w.c.disassociate_access_policy(&w.root, &w.m, CLUSTER, &pat, VIEW)
        .await
        .unwrap();
    w.c.delete_access_entry(&w.root, &w.m, CLUSTER, &pat)
        .await
        .unwrap();
    let e = w.c.describe_access_entry(&w.root, &w.m, CLUSTER, &pat);
    assert_eq!(e.unwrap_err().code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn patterns_are_role_names_with_a_literal_prefix_and_standard_only() {
    let w = setup().await;
    for (arn, why) in [
        (role("*"), "would match every role"),
        (role("?eam"), "would match every role"),
        (format!("arn:aws:iam::{ACCT}:user/dev-*"), "only role names"),
        (
            "arn:aws:iam::*:role/team-*".to_owned(),
            "outside the role name",
        ),
        (
            "arn:aws:iam::1111*:role/team-*".to_owned(),
            "outside the role name",
        ),
        (role("te*m/dev"), "outside the role name"),
        (role("team/*/dev"), "outside the role name"),
        (
            "arn:aws:iam::444455556666:role/team-*".to_owned(),
            "not in the cluster's account",
        ),
    ] {
        let e = try_create(&w, &arn, None).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{arn}");
        assert!(e.message.contains(why), "{arn}: {}", e.message);
    }
    for kind in ["EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX"] {
        let e = try_create(&w, &role("node-*"), Some(kind))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{kind}");
        assert!(e.message.contains("must name one role"), "{}", e.message);
    }
    // A literal path is a prefix too; `?` is one character.
    try_create(&w, &role("team/*"), None).await.unwrap();
    try_create(&w, &role("t?am-*"), None).await.unwrap();
    let p = principal(&role("team/*")).unwrap();
    assert!(p.pattern);
    assert_eq!(pattern::specificity(&p), (0, "/team/".len()));
}

#[tokio::test]
async fn overlapping_patterns_of_equal_specificity_are_refused() {
    let w = setup().await;
    try_create(&w, &role("team-*"), None).await.unwrap();
    for arn in [role("team-*"), role("team-?x*"), role("team-*a")] {
        let e = try_create(&w, &arn, None).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ResourceInUse, "{arn}");
        assert!(
            e.message.contains(&role("team-*")) || e.message.contains("already in use"),
            "{arn}: {}",
            e.message
        );
    }
    let e = try_create(&w, &role("team-?x*"), None).await.unwrap_err();
    assert!(e.message.contains(&role("team-*")), "{}", e.message);
    // Longer or shorter prefixes, another path, or names no role can share: accepted.
    for arn in [role("team-a*"), role("tea*"), role("x/team-*")] {
        try_create(&w, &arn, None).await.unwrap();
    }
    try_create(&w, &role("ab*x"), None).await.unwrap();
    try_create(&w, &role("ab*y"), None).await.unwrap();
}

#[tokio::test]
async fn pattern_entries_count_toward_the_cluster_limit() {
    let mut w = setup().await;
    w.c.config.max_access_entries_per_cluster = 2;
    try_create(&w, &role("a-*"), None).await.unwrap();
    try_create(&w, &role("b-*"), None).await.unwrap();
    let e = try_create(&w, &role("c-*"), None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceLimitExceeded);
}

#[test]
fn username_templates_are_checked_when_an_entry_is_written() {
    for ok in [
        "u:{{SessionTag:team}}",
        "r/{{RoleName}}/{{SessionTag:cost center}}/{{SessionName}}",
        "u:{{SessionTag:a:b}}",
    ] {
        assert!(username(ok).is_ok(), "{ok}");
    }
    for (bad, why) in [
        ("{{SessionTag:}}", "does not name a tag key"),
        ("{{SessionTag:a}b}}", "does not name a tag key"),
        ("{{SessionTag}}", "is not a template"),
        ("{{sessiontag:team}}", "is not a template"),
        ("{{Nope}}", "is not a template"),
        ("{{EC2PrivateDNSName}}", "node types only"),
        ("u:{{SessionName", "without }}"),
        ("u}}", "without {{"),
        ("{{SessionTag:team}}}}", "without {{"),
        ("system:{{SessionTag:team}}", "can't start with system:"),
        // A tag's value chosen by the session's tagger must not begin a username.
    ] {
        let e = username(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{bad}");
        assert!(e.message.contains(why), "{bad}: {}", e.message);
    }
}

#[tokio::test]
async fn update_access_entry_checks_templates_too() {
    let w = setup().await;
    try_create(&w, &role("team-*"), None).await.unwrap();
    let e =
        w.c.update_access_entry(
            &w.root,
            &w.m,
            CLUSTER,
            &role("team-*"),
            UpdateAccessEntry {
                username: Some("{{SessionTag:}}".into()),
                ..UpdateAccessEntry::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameter);
}

// --- token reviews through pattern entries

#[tokio::test]
async fn a_pattern_maps_roles_created_after_it_and_a_re_created_role() {
    let w = setup().await;
    let t = tagger(&w).await;
    entry(&w, &role("team-*"), None, &["team"]).await;
    let arn = new_role(&w, "team-a", None).await;
    let u = review(&w, &key(&w, &t, &arn, "jane@example.com", &[]).await);
    assert_eq!(
        u.username,
        format!("arn:aws:sts::{ACCT}:assumed-role/team-a/jane-example.com")
    );
    assert_eq!(u.groups, ["team"]);
    assert_eq!(u.entry_principal_arn(), role("team-*"));
    let id = w.c.db.read().roles[&(ACCT.to_owned(), "team-a".to_owned())]
        .value
        .id
        .clone();
    assert_eq!(u.uid, format!("aws-iam-authenticator:{ACCT}:{id}"));
    w.c.delete_role(&w.root, &w.m, "team-a").await.unwrap();
    new_role(&w, "team-a", None).await;
    let u = review(&w, &key(&w, &t, &arn, "s1", &[]).await);
    assert_eq!(u.entry_principal_arn(), role("team-*"));
    assert_ne!(u.uid, format!("aws-iam-authenticator:{ACCT}:{id}"));
}

#[tokio::test]
async fn an_exact_entry_beats_a_pattern_and_the_longest_prefix_wins() {
    let w = setup().await;
    let t = tagger(&w).await;
    entry(&w, &role("team-*"), None, &["team"]).await;
    entry(&w, &role("team-ops-*"), None, &["ops"]).await;
    let exact = new_role(&w, "team-ops-lead", None).await;
    entry(&w, &exact, None, &["lead"]).await;
    let dev = new_role(&w, "team-dev", None).await;
    let ops = new_role(&w, "team-ops-x", None).await;
    for (signer, group, arn) in [
        (&dev, "team", role("team-*")),
        (&ops, "ops", role("team-ops-*")),
        (&exact, "lead", exact.clone()),
    ] {
        let u = review(&w, &key(&w, &t, signer, "s1", &[]).await);
        let name = signer;
        assert_eq!(u.groups, [group], "{name}");
        assert_eq!(u.entry_principal_arn(), arn, "{name}");
    }
}

#[tokio::test]
async fn sso_roles_match_a_pattern_with_their_path_or_without_any() {
    let w = setup().await;
    let t = tagger(&w).await;
    let global = new_role(
        &w,
        "AWSReservedSSO_Admin_0123456789abcdef",
        Some(&format!("/{SSO}/")),
    )
    .await;
    let regional = new_role(
        &w,
        "AWSReservedSSO_Admin_fedcba9876543210",
        Some(&format!("/{SSO}/eu-west-2/")),
    )
    .await;
    let elsewhere = new_role(&w, "AWSReservedSSO_Admin_00000000000000aa", Some("/other/")).await;
    let pathless = role("AWSReservedSSO_Admin_*");
    entry(&w, &pathless, None, &["any-region"]).await;
    // The path-less form covers the SSO path and one region below it, nothing else.
    for arn in [&global, &regional] {
        let u = review(&w, &key(&w, &t, arn, "jane", &[]).await);
        assert_eq!(u.entry_principal_arn(), pathless, "{arn}");
    }
    let k = key(&w, &t, &elsewhere, "jane", &[]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "no access entry");
    // A pattern with the path is literal about it, and beats the path-less one.
    let pathed = role(&format!("{SSO}/AWSReservedSSO_Admin_*"));
    entry(&w, &pathed, None, &["global"]).await;
    let u = review(&w, &key(&w, &t, &global, "jane", &[]).await);
    assert_eq!(
        (u.entry_principal_arn(), u.groups.as_slice()),
        (pathed.as_str(), &["global".to_owned()][..])
    );
    let u = review(&w, &key(&w, &t, &regional, "jane", &[]).await);
    assert_eq!(u.entry_principal_arn(), pathless);
    // A path-less pattern of another name does not reach into paths.
    entry(&w, &role("deep-*"), None, &[]).await;
    let deep = new_role(&w, "deep-x", Some("/team/")).await;
    let k = key(&w, &t, &deep, "s1", &[]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "no access entry");
}

#[tokio::test]
async fn a_pattern_matches_no_user_and_no_role_of_another_account() {
    let w = setup().await;
    entry(&w, &role("team-*"), None, &[]).await;
    let k = user_key(&w, "team-user").await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "no access entry");
    // Case matters, as in IAM policy ARNs.
    let t = tagger(&w).await;
    let upper = new_role(&w, "Team-a", None).await;
    let k = key(&w, &t, &upper, "s1", &[]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "no access entry");
    // The matcher itself keeps to the account it is asked about.
    let mut other = (*w
        .c
        .describe_access_entry(&w.root, &w.m, CLUSTER, &role("team-*"))
        .unwrap())
    .clone();
    other.principal_arn = "arn:aws:iam::444455556666:role/team-*".into();
    let other = Arc::new(other);
    assert_eq!(
        pattern::best([&other].into_iter(), ACCT, "/", "team-a"),
        Ok(None)
    );
    assert!(
        pattern::best([&other].into_iter(), "444455556666", "/", "team-a")
            .unwrap()
            .is_some()
    );
}

// --- username templates at review

#[tokio::test]
async fn session_tags_fill_the_username_with_keys_compared_without_case() {
    let w = setup().await;
    let t = tagger(&w).await;
    let arn = new_role(&w, "team-a", None).await;
    entry(
        &w,
        &role("team-*"),
        Some("t:{{SessionTag:Team}}:{{RoleName}}:{{SessionName}}"),
        &[],
    )
    .await;
    let u = review(&w, &key(&w, &t, &arn, "jane", &[("team", "blue")]).await);
    assert_eq!(u.username, "t:blue:team-a:jane");
    // EKS's five extra keys and podiam's binding to the entry (the pattern), nothing else.
    assert_eq!(u.extra[ENTRY_EXTRA], [role("team-*")]);
    assert_eq!(
        u.extra.keys().collect::<Vec<_>>(),
        [
            "accessKeyId",
            "arn",
            "canonicalArn",
            BINDING_EXTRA,
            ENTRY_EXTRA,
            "principalId",
            "sessionName"
        ]
    );
}

#[tokio::test]
async fn a_missing_or_empty_tag_or_a_user_signer_refuses_the_token() {
    let w = setup().await;
    let t = tagger(&w).await;
    let arn = new_role(&w, "team-a", None).await;
    entry(&w, &arn, Some("u:{{SessionTag:team}}"), &[]).await;
    let k = key(&w, &t, &arn, "s1", &[("other", "x")]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "does not carry");
    let k = key(&w, &t, &arn, "s1", &[("team", "")]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "value is empty");
    let k = user_key(&w, "alice").await;
    entry(
        &w,
        &format!("arn:aws:iam::{ACCT}:user/alice"),
        Some("u:{{SessionTag:team}}"),
        &[],
    )
    .await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "is an IAM user");
    let k2 = user_key(&w, "bob").await;
    entry(
        &w,
        &format!("arn:aws:iam::{ACCT}:user/bob"),
        Some("u:{{RoleName}}"),
        &[],
    )
    .await;
    refused(&w, ROUTE, &tok(&w, &k2).token(), "is an IAM user");
}

#[tokio::test]
async fn a_tag_value_or_session_name_cannot_smuggle_in_system() {
    let w = setup().await;
    let t = tagger(&w).await;
    let a = new_role(&w, "team-a", None).await;
    entry(&w, &a, Some("u:{{SessionTag:user}}"), &[]).await;
    // A tag value can spell neither another principal's ARN-shaped name nor a prefix.
    for v in [
        "system:masters",
        "x:y",
        "/a",
        &format!("arn:aws:iam::{ACCT}:user/alice"),
    ] {
        let k = key(&w, &t, &a, "s1", &[("user", v)]).await;
        refused(
            &w,
            ROUTE,
            &tok(&w, &k).token(),
            "characters a username template does not take",
        );
    }
    let b = new_role(&w, "team-b", None).await;
    entry(&w, &b, Some("{{SessionName}}:x"), &[]).await;
    let k = key(&w, &t, &b, "system", &[]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "reserved prefix system:");
    let k = key(&w, &t, &a, "s1", &[("user", "jane.doe@example.com")]).await;
    assert_eq!(review(&w, &k).username, "u:jane.doe@example.com");
}

// --- IAM authorization of pattern entries

#[tokio::test]
async fn iam_policies_see_the_pattern_as_text_and_can_deny_every_pattern() {
    let w = setup().await;
    try_create(&w, &role("team-*"), None).await.unwrap();
    // A grant on one role's entries does not reach the pattern entry: in the entry's ARN the
    // `*` is a character, which a policy's `team-a` does not match.
    let one = user_caller(&w, "one", &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"eks:DescribeAccessEntry","Resource":"arn:aws:eks:*:{ACCT}:access-entry/{CLUSTER}/role/{ACCT}/team-a/*"}}]}}"#)).await;
    let e =
        w.c.describe_access_entry(&one, &w.m, CLUSTER, &role("team-*"));
    assert_eq!(e.unwrap_err().code, ErrorCode::AccessDenied);
    // The documented way to keep someone from making pattern entries: deny principal ARNs
    // holding a literal `*` or `?` (`${*}`, `${?}`).
    let no_patterns = user_caller(
        &w,
        "nopat",
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"eks:*","Resource":"*"},
        {"Effect":"Deny","Action":"eks:CreateAccessEntry","Resource":"*",
         "Condition":{"StringLike":{"eks:principalArn":["*${*}*","*${?}*"]}}}]}"#,
    )
    .await;
    for arn in [role("ops-*"), role("ops-?")] {
        let e =
            w.c.create_access_entry(&no_patterns, &w.m, CLUSTER, create(&arn))
                .await
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied, "{arn}");
    }
    new_role(&w, "ops-1", None).await;
    w.c.create_access_entry(&no_patterns, &w.m, CLUSTER, create(&role("ops-1")))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_exact_entry_for_an_earlier_role_refuses_rather_than_falling_to_a_pattern() {
    let w = setup().await;
    let t = tagger(&w).await;
    entry(&w, &role("team-*"), None, &["team"]).await;
    let arn = new_role(&w, "team-a", None).await;
    entry(&w, &arn, None, &["exact"]).await;
    w.c.delete_role(&w.root, &w.m, "team-a").await.unwrap();
    new_role(&w, "team-a", None).await;
    // The exact entry still names the role; it was made for the old one, so the token is
    // refused: the pattern does not quietly take over a name an exact entry holds.
    let k = key(&w, &t, &arn, "s1", &[]).await;
    refused(&w, ROUTE, &tok(&w, &k).token(), "earlier principal");
}
