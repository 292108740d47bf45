//! Property tests: JSON round trip of random valid policies, and monotonicity of evaluation
//! (adding a Deny never turns a denial into an Allow; adding an Allow never turns an Allow
//! into a denial).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use podiam_policy::{Context, Effect, Policy, PolicyKind, PolicySet, Principal, Request, evaluate};
use proptest::prelude::*;
use serde_json::{Value, json};

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:*",
    "*",
    "s3:Get*",
    "sts:AssumeRole",
    "sts:TagSession",
    "iam:?etUser",
    "sts:AssumeRoleWith*",
];

const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/${aws:username}/*",
    "arn:aws:s3:::other",
    "arn:aws:iam::111122223333:role/app",
    "arn:*:s3:::bucket/data/*",
    "arn:aws:iam::*:role/${aws:PrincipalTag/team, 'app'}",
];

fn principals() -> Vec<Value> {
    vec![
        json!("*"),
        json!({"AWS": "111122223333"}),
        json!({"AWS": ["arn:aws:iam::111122223333:user/alice", "444455556666"]}),
        json!({"AWS": "arn:aws:iam::111122223333:role/app"}),
        json!({"AWS": "arn:aws:sts::111122223333:assumed-role/app/s1"}),
        json!({"Service": "pods.eks.amazonaws.com"}),
        json!({"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.example.com"}),
        json!({"AWS": "arn:aws:iam::444455556666:root", "Service": ["ec2.amazonaws.com"]}),
    ]
}

fn conditions() -> Vec<Value> {
    vec![
        json!({"StringEquals": {"aws:username": "alice"}}),
        json!({"StringNotEquals": {"aws:username": ["bob", "carol"]}}),
        json!({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}),
        json!({"Bool": {"aws:SecureTransport": true}}),
        json!({"NumericLessThan": {"s3:max-keys": 100}}),
        json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}),
        json!({"ForAnyValue:StringLike": {"aws:TagKeys": "a*"}}),
        json!({"IpAddressIfExists": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}),
        json!({"Null": {"aws:TokenIssueTime": "true"}}),
        json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
        json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}),
        json!({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "${aws:username}"}, "NumericEquals": {"k:n": 1.5}}),
    ]
}

/// The shape of a statement, rendered per policy kind.
#[derive(Clone, Debug)]
struct Parts {
    allow: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    not_principal: bool,
    principal: usize,
    condition: Option<(usize, Option<usize>)>,
    sid: bool,
}

fn parts() -> impl Strategy<Value = Parts> {
    let n_principals = principals().len();
    let n_conditions = conditions().len();
    (
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.2),
        prop::collection::vec(prop::sample::select(ACTIONS), 1..3),
        prop::bool::weighted(0.2),
        prop::collection::vec(prop::sample::select(RESOURCES), 1..3),
        prop::bool::weighted(0.2),
        0..n_principals,
        prop::option::weighted(0.4, (0..n_conditions, prop::option::of(0..n_conditions))),
        any::<bool>(),
    )
        .prop_map(
            |(
                allow,
                not_action,
                actions,
                not_resource,
                resources,
                not_principal,
                principal,
                condition,
                sid,
            )| Parts {
                allow,
                not_action,
                actions,
                not_resource,
                resources,
                not_principal,
                principal,
                condition,
                sid,
            },
        )
}

fn with_effect(mut p: Parts, allow: bool) -> Parts {
    p.allow = allow;
    p
}

fn render(p: &Parts, kind: PolicyKind, index: usize) -> Value {
    let mut s = serde_json::Map::new();
    if p.sid {
        s.insert("Sid".into(), json!(format!("S{index}")));
    }
    s.insert(
        "Effect".into(),
        json!(if p.allow { "Allow" } else { "Deny" }),
    );
    if matches!(kind, PolicyKind::Resource | PolicyKind::Trust) {
        // IAM rejects NotPrincipal in role trust policies.
        let key = if p.not_principal && kind == PolicyKind::Resource {
            "NotPrincipal"
        } else {
            "Principal"
        };
        s.insert(key.into(), principals()[p.principal].clone());
    }
    let key = if p.not_action { "NotAction" } else { "Action" };
    s.insert(
        key.into(),
        if p.actions.len() == 1 {
            json!(p.actions[0])
        } else {
            json!(p.actions)
        },
    );
    if kind != PolicyKind::Trust {
        let key = if p.not_resource {
            "NotResource"
        } else {
            "Resource"
        };
        s.insert(key.into(), json!(p.resources));
    }
    if let Some((a, b)) = p.condition {
        let all = conditions();
        let mut block = all[a].as_object().unwrap().clone();
        if let Some(b) = b {
            for (k, v) in all[b].as_object().unwrap() {
                block.insert(k.clone(), v.clone());
            }
        }
        s.insert("Condition".into(), Value::Object(block));
    }
    Value::Object(s)
}

fn document(
    kind: PolicyKind,
    version: Option<&str>,
    id: bool,
    statements: &[Parts],
    single: bool,
) -> String {
    let mut doc = serde_json::Map::new();
    if let Some(v) = version {
        doc.insert("Version".into(), json!(v));
    }
    if id {
        doc.insert("Id".into(), json!("generated"));
    }
    let rendered: Vec<Value> = statements
        .iter()
        .enumerate()
        .map(|(i, p)| render(p, kind, i))
        .collect();
    let statement = if single && rendered.len() == 1 {
        rendered[0].clone()
    } else {
        Value::Array(rendered)
    };
    doc.insert("Statement".into(), statement);
    Value::Object(doc).to_string()
}

fn kind() -> impl Strategy<Value = PolicyKind> {
    prop::sample::select(vec![
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::Trust,
        PolicyKind::Session,
        PolicyKind::Boundary,
    ])
}

fn build(kind: PolicyKind, statements: &[Parts]) -> Policy {
    let text = document(kind, Some("2012-10-17"), false, statements, false);
    Policy::parse_with_limits(&text, kind, podiam_policy::Limits { max_bytes: 100_000 })
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn json_round_trip(
        kind in kind(),
        version in prop::sample::select(vec![None, Some("2008-10-17"), Some("2012-10-17")]),
        id in any::<bool>(),
        single in any::<bool>(),
        statements in prop::collection::vec(parts(), 1..5),
    ) {
        let text = document(kind, version, id, &statements, single);
        let limits = podiam_policy::Limits { max_bytes: 100_000 };
        let policy = Policy::parse_with_limits(&text, kind, limits).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let out = policy.to_json();
        let again = Policy::parse_with_limits(&out, kind, limits).map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
        prop_assert_eq!(&again, &policy);
        prop_assert_eq!(again.to_json(), out);
        // Whitespace does not matter.
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        prop_assert_eq!(Policy::parse_with_limits(&pretty, kind, limits).unwrap(), policy);
        prop_assert_eq!(podiam_policy::policy_size(&pretty), podiam_policy::policy_size(&text));
    }
}

// ---------------------------------------------------------------- monotonicity

fn principal_pool() -> Vec<Principal> {
    vec![
        Principal::user("arn:aws:iam::111122223333:user/alice", "111122223333"),
        Principal::assumed_role(
            "arn:aws:sts::111122223333:assumed-role/app/s1",
            "arn:aws:iam::111122223333:role/app",
            "111122223333",
        ),
        Principal::root("111122223333"),
        Principal::user("arn:aws:iam::444455556666:user/carol", "444455556666"),
        Principal::web_identity("arn:aws:iam::111122223333:oidc-provider/oidc.example.com"),
        Principal::service("pods.eks.amazonaws.com"),
        Principal::anonymous(),
    ]
}

const REQUEST_RESOURCES: &[&str] = &[
    "arn:aws:s3:::bucket/alice/x",
    "arn:aws:s3:::bucket/data/y",
    "arn:aws:s3:::other",
    "arn:aws:iam::111122223333:role/app",
    "*",
];

fn context_entries() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("aws:username", vec!["alice"]),
        ("aws:SecureTransport", vec!["true"]),
        ("s3:max-keys", vec!["10"]),
        ("aws:TagKeys", vec!["a", "c"]),
        ("aws:SourceIp", vec!["10.1.2.3"]),
        ("aws:CurrentTime", vec!["2025-01-01T00:00:00Z"]),
        (
            "aws:PrincipalArn",
            vec!["arn:aws:iam::111122223333:user/alice"],
        ),
        ("aws:PrincipalTag/team", vec!["app"]),
        ("s3:prefix", vec!["home/alice/docs"]),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    identity: Vec<Vec<Parts>>,
    resource: Option<(bool, Vec<Parts>)>,
    boundary: Option<Vec<Parts>>,
    session: Vec<Vec<Parts>>,
    resource_account: Option<bool>,
    principal: usize,
    action: &'static str,
    resource_name: &'static str,
    context: Vec<bool>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let stmts = || prop::collection::vec(parts(), 1..3);
    (
        prop::collection::vec(stmts(), 0..3),
        prop::option::weighted(0.6, (any::<bool>(), stmts())),
        prop::option::weighted(0.25, stmts()),
        prop::option::weighted(0.25, stmts()).prop_map(|s| s.into_iter().collect::<Vec<_>>()),
        prop::option::of(any::<bool>()),
        0..principal_pool().len(),
        prop::sample::select(vec![
            "s3:GetObject",
            "sts:AssumeRole",
            "iam:GetUser",
            "sts:TagSession",
            "ec2:RunInstances",
        ]),
        prop::sample::select(REQUEST_RESOURCES),
        prop::collection::vec(any::<bool>(), context_entries().len()),
    )
        .prop_map(
            |(
                identity,
                resource,
                boundary,
                session,
                resource_account,
                principal,
                action,
                resource_name,
                context,
            )| {
                Scenario {
                    identity,
                    resource,
                    boundary,
                    session,
                    resource_account,
                    principal,
                    action,
                    resource_name,
                    context,
                }
            },
        )
}

/// Where an extra statement goes.
#[derive(Clone, Copy, Debug)]
enum Target {
    NewIdentity,
    Identity,
    Resource,
    Boundary,
    Session,
}

fn decide(s: &Scenario) -> Effect {
    let identity: Vec<Policy> = s
        .identity
        .iter()
        .map(|p| build(PolicyKind::Identity, p))
        .collect();
    let resource = s.resource.as_ref().map(|(trust, p)| {
        let kind = if *trust {
            PolicyKind::Trust
        } else {
            PolicyKind::Resource
        };
        build(kind, p)
    });
    let boundary = s.boundary.as_ref().map(|p| build(PolicyKind::Boundary, p));
    let session: Vec<Policy> = s
        .session
        .iter()
        .map(|p| build(PolicyKind::Session, p))
        .collect();
    let set = PolicySet {
        identity: identity.iter().collect(),
        resource: resource.as_ref(),
        resource_account: s.resource_account.map(|other| {
            if other {
                "444455556666"
            } else {
                "111122223333"
            }
        }),
        boundary: boundary.as_ref(),
        session: session.iter().collect(),
    };
    let mut ctx = Context::new();
    for ((key, values), on) in context_entries().into_iter().zip(&s.context) {
        if *on {
            ctx.set_multi(key, values);
        }
    }
    let principal = &principal_pool()[s.principal];
    evaluate(
        &Request {
            principal,
            action: s.action,
            resource: s.resource_name,
            context: &ctx,
        },
        &set,
    )
    .effect
}

/// Adds `extra` to an existing policy at `target` (creating a new identity policy when the
/// target does not exist: creating a boundary, session or trust policy would add a
/// restriction, which is not "adding a statement").
fn add(s: &Scenario, target: Target, extra: &Parts) -> Scenario {
    let mut s = s.clone();
    let extra = extra.clone();
    match target {
        Target::Identity if !s.identity.is_empty() => s.identity[0].push(extra),
        Target::Resource if s.resource.is_some() => {
            if let Some((_, p)) = s.resource.as_mut() {
                p.push(extra);
            }
        }
        Target::Boundary if s.boundary.is_some() => {
            if let Some(p) = s.boundary.as_mut() {
                p.push(extra);
            }
        }
        Target::Session if !s.session.is_empty() => s.session[0].push(extra),
        _ => s.identity.push(vec![extra]),
    }
    s
}

fn target() -> impl Strategy<Value = Target> {
    prop::sample::select(vec![
        Target::NewIdentity,
        Target::Identity,
        Target::Resource,
        Target::Boundary,
        Target::Session,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn adding_a_deny_never_allows(s in scenario(), target in target(), extra in parts()) {
        let before = decide(&s);
        let after = decide(&add(&s, target, &with_effect(extra, false)));
        if before != Effect::Allow {
            prop_assert_ne!(after, Effect::Allow);
        }
        if before == Effect::ExplicitDeny {
            prop_assert_eq!(after, Effect::ExplicitDeny);
        }
    }

    #[test]
    fn adding_an_allow_never_denies(s in scenario(), target in target(), extra in parts()) {
        let before = decide(&s);
        let after = decide(&add(&s, target, &with_effect(extra, true)));
        if before == Effect::Allow {
            prop_assert_eq!(after, Effect::Allow);
        }
        if before == Effect::ExplicitDeny {
            prop_assert_eq!(after, Effect::ExplicitDeny);
        }
    }
}

/// The generators produce both outcomes often enough for the monotonicity properties to
/// mean something.
#[test]
fn scenarios_cover_allow_and_deny() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut allow, mut explicit, mut implicit) = (0, 0, 0);
    for _ in 0..400 {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        match decide(&s) {
            Effect::Allow => allow += 1,
            Effect::ExplicitDeny => explicit += 1,
            Effect::ImplicitDeny => implicit += 1,
        }
    }
    assert!(
        allow >= 25 && explicit >= 25 && implicit >= 25,
        "allow {allow}, explicit {explicit}, implicit {implicit}"
    );
}

// ---------------------------------------------------------------- robustness

const SEEDS: &[&str] = &[
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.example.com/id/ABC:sub":"system:serviceaccount:default:my-sa"}}}]}"#,
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:Get*"],"Resource":"arn:aws:s3:::b/${aws:username, 'x'}/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"ForAllValues:StringLike":{"aws:TagKeys":["a*"]}}}}"#,
    r#"{"Statement":[{"Sid":"A","Effect":"Deny","NotPrincipal":{"AWS":["111122223333"]},"NotAction":"s3:*","NotResource":"*","Condition":{"Null":{"k:x":"true"},"BinaryEquals":{"k:b":"aGk="},"NumericLessThan":{"k:n":1.5}}}]}"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// Mutated documents never panic the parser; whatever parses round-trips and evaluates.
    #[test]
    fn mutated_documents_never_panic(
        seed in prop::sample::select(SEEDS),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(vec!['{', '}', '"', ':', ',', '[', ']', '*', '?', '$', '\\', 'a', '1', ' ', 'é', '\u{0}'])), 1..6),
    ) {
        let mut chars: Vec<char> = seed.chars().collect();
        for (at, op, c) in edits {
            let i = at.index(chars.len() + 1);
            match op {
                0 => chars.insert(i, c),
                1 if i < chars.len() => { chars.remove(i); }
                _ if i < chars.len() => chars[i] = c,
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        for kind in [PolicyKind::Identity, PolicyKind::Resource, PolicyKind::Trust] {
            if let Ok(policy) = Policy::parse(&text, kind) {
                let again = Policy::parse(&policy.to_json(), kind).unwrap();
                prop_assert_eq!(&again, &policy);
                let principal = Principal::user("arn:aws:iam::111122223333:user/alice", "111122223333");
                let ctx = Context::new().with("aws:username", "alice");
                let req = Request { principal: &principal, action: "s3:GetObject", resource: "arn:aws:s3:::b/alice/x", context: &ctx };
                let _ = podiam_policy::evaluate_policy(&req, &policy);
            }
        }
    }
}
