//! Policy-set evaluation outside trust policies: identity policies, permissions boundaries,
//! session policies, resource-based policies, root, anonymous callers, single-policy
//! evaluation and explanations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use podiam_policy::{
    Context, Effect, Policy, PolicyEffect, PolicyKind, PolicySet, PolicySource, Principal,
    PrincipalMatch, Reason, Request, StatementEffect, evaluate, evaluate_policy,
};

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const OBJECT: &str = "arn:aws:s3:::bucket/data/report.csv";

fn parse(kind: PolicyKind, label: &str, statements: &str) -> Policy {
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    Policy::parse(&doc, kind)
        .unwrap_or_else(|e| panic!("{e}: {doc}"))
        .with_label(label)
}

fn allow(action: &str, resource: &str) -> String {
    format!(r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#)
}

fn deny(action: &str, resource: &str) -> String {
    format!(r#"{{"Effect":"Deny","Action":"{action}","Resource":"{resource}"}}"#)
}

fn alice() -> Principal {
    Principal::user("arn:aws:iam::111122223333:user/alice", ACCT)
}

fn session() -> Principal {
    Principal::assumed_role(
        "arn:aws:sts::111122223333:assumed-role/app/s1",
        "arn:aws:iam::111122223333:role/app",
        ACCT,
    )
}

fn run(
    principal: &Principal,
    action: &str,
    resource: &str,
    set: &PolicySet<'_>,
) -> podiam_policy::Decision {
    let ctx = Context::new();
    evaluate(
        &Request {
            principal,
            action,
            resource,
            context: &ctx,
        },
        set,
    )
}

// ---------------------------------------------------------------- identity policies

#[test]
fn identity_allow_and_implicit_deny() {
    let id = parse(
        PolicyKind::Identity,
        "read",
        &allow("s3:Get*", "arn:aws:s3:::bucket/*"),
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    let d = run(&alice(), "s3:GetObject", OBJECT, &set);
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(
        d.explain(),
        format!("allowed: s3:GetObject on {OBJECT} by statement #0 of policy 'read'")
    );
    let d = run(&alice(), "s3:PutObject", OBJECT, &set);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(
        d.explain(),
        format!("denied: no statement allows s3:PutObject on {OBJECT} (implicit deny)")
    );
    assert_eq!(
        run(&alice(), "s3:GetObject", "arn:aws:s3:::other/x", &set).effect,
        Effect::ImplicitDeny
    );
    assert_eq!(
        run(&alice(), "s3:GetObject", "arn:aws:s3:::bucket", &set).effect,
        Effect::ImplicitDeny
    );
}

#[test]
fn no_policies_is_implicit_deny() {
    let d = run(&alice(), "s3:GetObject", OBJECT, &PolicySet::default());
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.reason, Reason::NoAllow);
    assert!(d.matched.is_empty());
}

#[test]
fn explicit_deny_in_another_identity_policy_wins() {
    let a = parse(PolicyKind::Identity, "admin", &allow("*", "*"));
    let d = parse(
        PolicyKind::Identity,
        "guard",
        &deny("s3:Delete*", "arn:aws:s3:::bucket/*"),
    );
    let set = PolicySet {
        identity: vec![&a, &d],
        ..PolicySet::default()
    };
    let decision = run(&alice(), "s3:DeleteObject", OBJECT, &set);
    assert_eq!(decision.effect, Effect::ExplicitDeny);
    assert_eq!(decision.matched.len(), 2);
    assert_eq!(decision.deciding_statements()[0].policy, "guard");
    assert_eq!(
        run(&alice(), "s3:GetObject", OBJECT, &set).effect,
        Effect::Allow
    );
}

#[test]
fn not_resource_and_resource_wildcards() {
    let id = parse(
        PolicyKind::Identity,
        "p",
        r#"{"Effect":"Allow","Action":"s3:*","NotResource":["arn:aws:s3:::secret","arn:aws:s3:::secret/*"]}"#,
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    assert!(run(&alice(), "s3:GetObject", OBJECT, &set).is_allowed());
    assert!(!run(&alice(), "s3:GetObject", "arn:aws:s3:::secret/x", &set).is_allowed());
    assert!(!run(&alice(), "s3:ListBucket", "arn:aws:s3:::secret", &set).is_allowed());
    let id = parse(
        PolicyKind::Identity,
        "p",
        &allow("ec2:*", "arn:aws:ec2:us-east-?:111122223333:instance/*"),
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    assert!(
        run(
            &alice(),
            "ec2:StartInstances",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
            &set
        )
        .is_allowed()
    );
    assert!(
        !run(
            &alice(),
            "ec2:StartInstances",
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-1",
            &set
        )
        .is_allowed()
    );
    assert!(
        !run(
            &alice(),
            "ec2:StartInstances",
            "arn:aws:ec2:us-east-1:444455556666:instance/i-1",
            &set
        )
        .is_allowed()
    );
}

#[test]
fn resource_star_ending_an_arn_field_expands_beyond_colons() {
    // IAM User Guide, Resource element: "If the * wildcard is the last character of a
    // resource ARN segment, it can expand to match beyond the colon boundaries."
    let id = parse(
        PolicyKind::Identity,
        "p",
        &allow("logs:*", "arn:aws:logs:*:log-group:/aws/lambda/*"),
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    let log = "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/fn";
    assert!(run(&alice(), "logs:PutLogEvents", log, &set).is_allowed());
    assert!(
        !run(
            &alice(),
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/ecs/fn",
            &set
        )
        .is_allowed()
    );
    // A wildcard that does not end its field stays inside it, and `?` never crosses.
    for pattern in [
        "arn:aws:logs:us-*-1:log-group:/aws/lambda/*",
        "arn:aws:logs:?:log-group:/aws/lambda/*",
    ] {
        let id = parse(PolicyKind::Identity, "p", &allow("logs:*", pattern));
        let set = PolicySet {
            identity: vec![&id],
            ..PolicySet::default()
        };
        assert!(
            !run(&alice(), "logs:PutLogEvents", log, &set).is_allowed(),
            "{pattern}"
        );
    }
    // The ArnLike operator compares the six fields separately (no crossing).
    let id = parse(
        PolicyKind::Identity,
        "p",
        r#"{"Effect":"Allow","Action":"logs:*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:logs:*:log-group:/aws/lambda/*"}}}"#,
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    let ctx = Context::new().with("aws:SourceArn", log);
    let req = Request {
        principal: &alice(),
        action: "logs:PutLogEvents",
        resource: log,
        context: &ctx,
    };
    assert!(!evaluate(&req, &set).is_allowed());
}

#[test]
fn not_principal_deny_always_applies_to_principals_with_a_boundary() {
    let id = parse(PolicyKind::Identity, "id", &allow("s3:GetObject", "*"));
    let bucket = parse(
        PolicyKind::Resource,
        "bucket",
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/alice","111122223333"]},"Action":"s3:*","Resource":"*"}"#,
    );
    let boundary = parse(PolicyKind::Boundary, "boundary", &allow("s3:*", "*"));
    let set = PolicySet {
        identity: vec![&id],
        resource: Some(&bucket),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    // Without a boundary, the fully listed user is exempt from the Deny.
    assert_eq!(
        run(&alice(), "s3:GetObject", OBJECT, &set).effect,
        Effect::Allow
    );
    let with_boundary = PolicySet {
        boundary: Some(&boundary),
        ..set.clone()
    };
    let d = run(&alice(), "s3:GetObject", OBJECT, &with_boundary);
    assert_eq!(d.effect, Effect::ExplicitDeny);
    assert_eq!(d.reason, Reason::ExplicitDeny);
    // evaluate_policy knows nothing of boundaries: the user is still exempt there.
    let ctx = Context::new();
    let req = Request {
        principal: &alice(),
        action: "s3:GetObject",
        resource: OBJECT,
        context: &ctx,
    };
    assert_eq!(
        evaluate_policy(&req, &bucket).effect,
        PolicyEffect::NotApplicable
    );
}

#[test]
fn resource_star_only_matches_star_statements_for_non_arn_resources() {
    let id = parse(
        PolicyKind::Identity,
        "p",
        &allow("sts:GetCallerIdentity", "*"),
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    assert!(run(&alice(), "sts:GetCallerIdentity", "*", &set).is_allowed());
    let id = parse(
        PolicyKind::Identity,
        "p",
        &allow("sts:GetCallerIdentity", "arn:aws:sts:::*"),
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    assert!(!run(&alice(), "sts:GetCallerIdentity", "*", &set).is_allowed());
}

// ---------------------------------------------------------------- boundaries and session policies

#[test]
fn permissions_boundary_limits_identity_policies() {
    let id = parse(PolicyKind::Identity, "admin", &allow("*", "*"));
    let boundary = parse(PolicyKind::Boundary, "boundary", &allow("s3:*", "*"));
    let set = PolicySet {
        identity: vec![&id],
        boundary: Some(&boundary),
        ..PolicySet::default()
    };
    assert!(run(&alice(), "s3:GetObject", OBJECT, &set).is_allowed());
    let d = run(
        &alice(),
        "iam:CreateUser",
        "arn:aws:iam::111122223333:user/x",
        &set,
    );
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.reason, Reason::BoundaryDenies);
    assert!(
        d.explain()
            .contains("not allowed by the permissions boundary"),
        "{}",
        d.explain()
    );
    // A boundary alone grants nothing.
    let set = PolicySet {
        boundary: Some(&boundary),
        ..PolicySet::default()
    };
    assert!(!run(&alice(), "s3:GetObject", OBJECT, &set).is_allowed());
    // A Deny in the boundary is an explicit deny.
    let boundary = parse(
        PolicyKind::Boundary,
        "boundary",
        &format!("{},{}", allow("*", "*"), deny("s3:Delete*", "*")),
    );
    let set = PolicySet {
        identity: vec![&id],
        boundary: Some(&boundary),
        ..PolicySet::default()
    };
    assert_eq!(
        run(&alice(), "s3:DeleteObject", OBJECT, &set).effect,
        Effect::ExplicitDeny
    );
}

#[test]
fn session_policies_limit_the_session() {
    let id = parse(PolicyKind::Identity, "role policy", &allow("s3:*", "*"));
    let inline = parse(
        PolicyKind::Session,
        "inline session policy",
        &allow("s3:GetObject", "*"),
    );
    let managed = parse(
        PolicyKind::Session,
        "managed session policy",
        &allow("s3:ListBucket", "*"),
    );
    let set = PolicySet {
        identity: vec![&id],
        session: vec![&inline, &managed],
        ..PolicySet::default()
    };
    assert!(run(&session(), "s3:GetObject", OBJECT, &set).is_allowed());
    assert!(run(&session(), "s3:ListBucket", "arn:aws:s3:::bucket", &set).is_allowed());
    let d = run(&session(), "s3:PutObject", OBJECT, &set);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.reason, Reason::SessionDenies);
    // Session policies cannot grant more than the identity policies.
    let set = PolicySet {
        identity: vec![],
        session: vec![&inline],
        ..PolicySet::default()
    };
    assert!(!run(&session(), "s3:GetObject", OBJECT, &set).is_allowed());
}

// ---------------------------------------------------------------- resource-based policies

fn bucket_policy(principal: &str) -> Policy {
    parse(
        PolicyKind::Resource,
        "bucket policy",
        &format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#
        ),
    )
}

#[test]
fn same_account_resource_policy_naming_the_user_bypasses_boundary() {
    let rp = bucket_policy(r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#);
    let boundary = parse(PolicyKind::Boundary, "boundary", &allow("ec2:*", "*"));
    let set = PolicySet {
        resource: Some(&rp),
        resource_account: Some(ACCT),
        boundary: Some(&boundary),
        ..PolicySet::default()
    };
    let d = run(&alice(), "s3:GetObject", OBJECT, &set);
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.reason, Reason::ResourceAllow);
    assert_eq!(
        d.matched
            .iter()
            .find(|m| m.source == PolicySource::Resource)
            .unwrap()
            .principal_match,
        Some(PrincipalMatch::Exact)
    );
}

#[test]
fn same_account_resource_policy_naming_the_role_is_limited_by_session_policy() {
    let rp = bucket_policy(r#"{"AWS":"arn:aws:iam::111122223333:role/app"}"#);
    let sp = parse(PolicyKind::Session, "session", &allow("ec2:*", "*"));
    let set = PolicySet {
        resource: Some(&rp),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    assert!(run(&session(), "s3:GetObject", OBJECT, &set).is_allowed());
    let set = PolicySet {
        session: vec![&sp],
        ..set
    };
    let d = run(&session(), "s3:GetObject", OBJECT, &set);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.reason, Reason::SessionDenies);
    // Naming the session ARN is not limited by the session policy.
    let rp = bucket_policy(r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/app/s1"}"#);
    let set = PolicySet {
        resource: Some(&rp),
        resource_account: Some(ACCT),
        session: vec![&sp],
        ..PolicySet::default()
    };
    assert!(run(&session(), "s3:GetObject", OBJECT, &set).is_allowed());
}

#[test]
fn public_resource_policy_allows_anonymous_but_not_other_actions() {
    let rp = bucket_policy(r#""*""#);
    let set = PolicySet {
        resource: Some(&rp),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    assert!(run(&Principal::anonymous(), "s3:GetObject", OBJECT, &set).is_allowed());
    assert!(run(&alice(), "s3:GetObject", OBJECT, &set).is_allowed());
    assert!(!run(&Principal::anonymous(), "s3:PutObject", OBJECT, &set).is_allowed());
    assert!(
        !run(
            &Principal::anonymous(),
            "s3:GetObject",
            "arn:aws:s3:::other/x",
            &set
        )
        .is_allowed()
    );
    // Anonymous callers get nothing from identity policies.
    let id = parse(PolicyKind::Identity, "p", &allow("*", "*"));
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    assert!(!run(&Principal::anonymous(), "s3:GetObject", OBJECT, &set).is_allowed());
}

#[test]
fn cross_account_resource_access_needs_both_sides() {
    let carol = Principal::user("arn:aws:iam::444455556666:user/carol", OTHER);
    let rp = bucket_policy(r#"{"AWS":"444455556666"}"#);
    let id = parse(PolicyKind::Identity, "carol", &allow("s3:GetObject", "*"));
    let only_resource = PolicySet {
        resource: Some(&rp),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    let d = run(&carol, "s3:GetObject", OBJECT, &only_resource);
    assert_eq!(d.reason, Reason::CrossAccountIdentityDenies);
    let only_identity = PolicySet {
        identity: vec![&id],
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    let d = run(&carol, "s3:GetObject", OBJECT, &only_identity);
    assert_eq!(d.reason, Reason::CrossAccountResourceDenies);
    assert!(
        d.explain().starts_with("denied: cross-account request"),
        "{}",
        d.explain()
    );
    let both = PolicySet {
        identity: vec![&id],
        resource: Some(&rp),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    assert!(run(&carol, "s3:GetObject", OBJECT, &both).is_allowed());
    // Without a resource account the request is treated as same-account.
    let same = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    assert!(run(&carol, "s3:GetObject", OBJECT, &same).is_allowed());
}

#[test]
fn resource_policy_deny_applies_cross_account_and_to_root() {
    let rp = parse(
        PolicyKind::Resource,
        "bucket policy",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"*"}"#,
    );
    let set = PolicySet {
        resource: Some(&rp),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    };
    assert_eq!(
        run(
            &Principal::root(ACCT),
            "s3:DeleteBucket",
            "arn:aws:s3:::bucket",
            &set
        )
        .effect,
        Effect::ExplicitDeny
    );
    assert_eq!(
        run(&Principal::root(ACCT), "s3:GetObject", OBJECT, &set).effect,
        Effect::Allow
    );
}

#[test]
fn root_is_allowed_in_its_own_account_only() {
    let d = run(
        &Principal::root(ACCT),
        "iam:CreateUser",
        "arn:aws:iam::111122223333:user/x",
        &PolicySet::default(),
    );
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.reason, Reason::RootAllow);
    assert_eq!(
        d.explain(),
        "allowed: iam:CreateUser on arn:aws:iam::111122223333:user/x for the account root user"
    );
    let set = PolicySet {
        resource_account: Some(OTHER),
        ..PolicySet::default()
    };
    assert!(!run(&Principal::root(ACCT), "s3:GetObject", OBJECT, &set).is_allowed());
}

// ---------------------------------------------------------------- single policy evaluation

#[test]
fn evaluate_policy_reports_effect_statements_and_grant() {
    let rp = parse(
        PolicyKind::Resource,
        "bucket policy",
        r#"{"Sid":"Acct","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"s3:*","Resource":"*"},
           {"Sid":"User","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"s3:Get*","Resource":"*"},
           {"Sid":"NoPut","Effect":"Deny","Principal":"*","Action":"s3:Put*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
    );
    let ctx = Context::new().with("aws:SecureTransport", "false");
    let p = alice();
    let r = evaluate_policy(
        &Request {
            principal: &p,
            action: "s3:GetObject",
            resource: OBJECT,
            context: &ctx,
        },
        &rp,
    );
    assert_eq!(r.effect, PolicyEffect::Allow);
    assert_eq!(r.principal_match, Some(PrincipalMatch::Exact));
    assert_eq!(r.matched.len(), 2);
    assert_eq!(r.matched[1].sid.as_deref(), Some("User"));
    assert_eq!(r.matched[1].index, 1);
    assert_eq!(r.matched[1].source, PolicySource::Resource);
    let r = evaluate_policy(
        &Request {
            principal: &p,
            action: "s3:PutObject",
            resource: OBJECT,
            context: &ctx,
        },
        &rp,
    );
    assert_eq!(r.effect, PolicyEffect::Deny);
    assert_eq!(r.matched.last().unwrap().effect, StatementEffect::Deny);
    let r = evaluate_policy(
        &Request {
            principal: &p,
            action: "ec2:RunInstances",
            resource: "*",
            context: &ctx,
        },
        &rp,
    );
    assert_eq!(r.effect, PolicyEffect::NotApplicable);
    assert!(r.matched.is_empty());
    let bob = Principal::user("arn:aws:iam::444455556666:user/bob", OTHER);
    let r = evaluate_policy(
        &Request {
            principal: &bob,
            action: "s3:GetObject",
            resource: OBJECT,
            context: &ctx,
        },
        &rp,
    );
    assert_eq!(r.effect, PolicyEffect::NotApplicable);
}

#[test]
fn missing_context_keys_are_reported_once() {
    let id = parse(
        PolicyKind::Identity,
        "p",
        r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"red"}}},
           {"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"AWS:principaltag/TEAM":"r*"}}}"#,
    );
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    let d = run(&alice(), "s3:GetObject", OBJECT, &set);
    assert!(!d.is_allowed());
    assert_eq!(d.missing_context_keys, ["aws:PrincipalTag/team"]);
}

#[test]
fn unlabelled_policies_are_described_by_role() {
    let id = Policy::parse(
        r#"{"Statement":{"Sid":"X","Effect":"Deny","Action":"*","Resource":"*"}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    let set = PolicySet {
        identity: vec![&id],
        ..PolicySet::default()
    };
    let d = run(&alice(), "s3:GetObject", OBJECT, &set);
    assert_eq!(
        d.explain(),
        format!(
            "denied: s3:GetObject on {OBJECT} is explicitly denied by statement 'X' of the identity-based policy (explicit deny)"
        )
    );
}
