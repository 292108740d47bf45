//! Role trust-policy scenarios the STS endpoints rely on: IRSA (web identity), EKS Pod
//! Identity (service principal), same- and cross-account AssumeRole, NotPrincipal /
//! NotAction / wildcards / explicit deny.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use podiam_policy::{
    Context, Decision, Effect, Policy, PolicyError, PolicyKind, PolicySet, Principal,
    PrincipalMatch, Reason, Request, evaluate,
};

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC";
const SUB: &str = "oidc.example.com/id/ABC:sub";
const AUD: &str = "oidc.example.com/id/ABC:aud";

fn trust(json: &str) -> Policy {
    Policy::parse(json, PolicyKind::Trust)
        .unwrap()
        .with_label("trust policy of role app")
}

fn identity(json: &str) -> Policy {
    Policy::parse(json, PolicyKind::Identity)
        .unwrap()
        .with_label("caller policy")
}

fn decide(principal: &Principal, action: &str, ctx: &Context, set: &PolicySet<'_>) -> Decision {
    let req = Request {
        principal,
        action,
        resource: ROLE,
        context: ctx,
    };
    evaluate(&req, set)
}

fn trust_only(p: &Policy) -> PolicySet<'_> {
    PolicySet {
        resource: Some(p),
        resource_account: Some(ACCT),
        ..PolicySet::default()
    }
}

// ---------------------------------------------------------------- (a) IRSA

fn irsa_policy(op: &str, sub: &str) -> Policy {
    if op == "StringEquals" {
        // Both keys under one operator (repeating "StringEquals" would be a duplicate key).
        return trust(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
                "Principal":{{"Federated":"{PROVIDER}"}},
                "Action":"sts:AssumeRoleWithWebIdentity",
                "Condition":{{"StringEquals":{{"{SUB}":"{sub}","{AUD}":"sts.amazonaws.com"}}}}}}]}}"#
        ));
    }
    trust(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Principal":{{"Federated":"{PROVIDER}"}},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{{"{op}":{{"{SUB}":"{sub}"}},"StringEquals":{{"{AUD}":"sts.amazonaws.com"}}}}}}]}}"#
    ))
}

fn web(sub: &str, aud: &str) -> Context {
    Context::new().with(SUB, sub).with(AUD, aud)
}

#[test]
fn irsa_allows_the_right_subject_and_audience() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:my-sa");
    let d = decide(
        &Principal::web_identity(PROVIDER),
        "sts:AssumeRoleWithWebIdentity",
        &web("system:serviceaccount:default:my-sa", "sts.amazonaws.com"),
        &trust_only(&p),
    );
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.reason, Reason::ResourceAllow);
    assert_eq!(d.matched.len(), 1);
    assert_eq!(d.matched[0].principal_match, Some(PrincipalMatch::Broad));
    assert_eq!(d.matched[0].policy, "trust policy of role app");
    assert!(d.missing_context_keys.is_empty());
}

#[test]
fn irsa_action_is_case_insensitive() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:my-sa");
    let d = decide(
        &Principal::web_identity(PROVIDER),
        "STS:assumerolewithwebidentity",
        &web("system:serviceaccount:default:my-sa", "sts.amazonaws.com"),
        &trust_only(&p),
    );
    assert!(d.is_allowed());
}

#[test]
fn irsa_denies_wrong_subject() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:my-sa");
    for sub in [
        "system:serviceaccount:default:other",
        "system:serviceaccount:default:My-SA",
        "system:serviceaccount:kube-system:my-sa",
        "",
    ] {
        let d = decide(
            &Principal::web_identity(PROVIDER),
            "sts:AssumeRoleWithWebIdentity",
            &web(sub, "sts.amazonaws.com"),
            &trust_only(&p),
        );
        assert_eq!(d.effect, Effect::ImplicitDeny, "{sub}");
        assert_eq!(d.reason, Reason::TrustPolicyDenies);
        assert!(d.matched.is_empty());
    }
}

#[test]
fn irsa_denies_wrong_or_missing_audience() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:my-sa");
    let sub = "system:serviceaccount:default:my-sa";
    let d = decide(
        &Principal::web_identity(PROVIDER),
        "sts:AssumeRoleWithWebIdentity",
        &web(sub, "other"),
        &trust_only(&p),
    );
    assert_eq!(d.effect, Effect::ImplicitDeny);
    let d = decide(
        &Principal::web_identity(PROVIDER),
        "sts:AssumeRoleWithWebIdentity",
        &Context::new().with(SUB, sub),
        &trust_only(&p),
    );
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.missing_context_keys, [AUD]);
    assert!(
        d.explain()
            .contains("context keys not present in the request: oidc.example.com/id/ABC:aud"),
        "{}",
        d.explain()
    );
}

#[test]
fn irsa_denies_other_provider() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:my-sa");
    let ctx = web("system:serviceaccount:default:my-sa", "sts.amazonaws.com");
    for provider in [
        "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/XYZ",
        "arn:aws:iam::444455556666:oidc-provider/oidc.example.com/id/ABC",
        "arn:aws:iam::111122223333:oidc-provider/OIDC.example.com/id/ABC",
        "accounts.google.com",
    ] {
        let d = decide(
            &Principal::web_identity(provider),
            "sts:AssumeRoleWithWebIdentity",
            &ctx,
            &trust_only(&p),
        );
        assert_eq!(d.effect, Effect::ImplicitDeny, "{provider}");
    }
}

#[test]
fn irsa_denies_other_action_and_other_principal_types() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:my-sa");
    let ctx = web("system:serviceaccount:default:my-sa", "sts.amazonaws.com");
    for action in ["sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:TagSession"] {
        let d = decide(
            &Principal::web_identity(PROVIDER),
            action,
            &ctx,
            &trust_only(&p),
        );
        assert_eq!(d.effect, Effect::ImplicitDeny, "{action}");
    }
    for principal in [
        Principal::user("arn:aws:iam::111122223333:user/alice", ACCT),
        Principal::service("pods.eks.amazonaws.com"),
        Principal::anonymous(),
        Principal::root(ACCT),
    ] {
        let d = decide(
            &principal,
            "sts:AssumeRoleWithWebIdentity",
            &ctx,
            &trust_only(&p),
        );
        assert_eq!(d.effect, Effect::ImplicitDeny, "{principal:?}");
    }
}

#[test]
fn irsa_string_like_namespace_wildcard() {
    let p = irsa_policy("StringLike", "system:serviceaccount:default:*");
    let allow = |sub: &str| {
        decide(
            &Principal::web_identity(PROVIDER),
            "sts:AssumeRoleWithWebIdentity",
            &web(sub, "sts.amazonaws.com"),
            &trust_only(&p),
        )
        .is_allowed()
    };
    assert!(allow("system:serviceaccount:default:my-sa"));
    assert!(allow("system:serviceaccount:default:"));
    assert!(!allow("system:serviceaccount:kube-system:my-sa"));
    assert!(!allow("system:serviceaccount:defaultx:my-sa"));
    assert!(!allow("System:serviceaccount:default:my-sa"));
}

// ---------------------------------------------------------------- (b) Pod Identity

fn pod_identity_policy() -> Policy {
    trust(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowEksAuthToAssumeRoleForPodIdentity","Effect":"Allow",
            "Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],
            "Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"default"}}}]}"#,
    )
}

#[test]
fn pod_identity_allows_assume_role_and_tag_session() {
    let p = pod_identity_policy();
    let ctx = Context::new()
        .with("aws:RequestTag/kubernetes-namespace", "default")
        .with("aws:RequestTag/kubernetes-service-account", "app");
    for action in ["sts:AssumeRole", "sts:TagSession"] {
        let d = decide(
            &Principal::service("pods.eks.amazonaws.com"),
            action,
            &ctx,
            &trust_only(&p),
        );
        assert!(d.is_allowed(), "{action}");
        assert_eq!(
            d.explain(),
            format!(
                "allowed: {action} on {ROLE} by statement 'AllowEksAuthToAssumeRoleForPodIdentity' of policy 'trust policy of role app'"
            )
        );
    }
}

#[test]
fn pod_identity_denials() {
    let p = pod_identity_policy();
    let good = Context::new().with("aws:RequestTag/kubernetes-namespace", "default");
    let svc = Principal::service("pods.eks.amazonaws.com");
    // Wrong namespace, tag value case, missing tag.
    for ctx in [
        Context::new().with("aws:RequestTag/kubernetes-namespace", "kube-system"),
        Context::new().with("aws:RequestTag/kubernetes-namespace", "Default"),
        Context::new(),
    ] {
        assert_eq!(
            decide(&svc, "sts:AssumeRole", &ctx, &trust_only(&p)).effect,
            Effect::ImplicitDeny
        );
    }
    // Other service, other action, non-service principals.
    assert!(
        !decide(
            &Principal::service("ec2.amazonaws.com"),
            "sts:AssumeRole",
            &good,
            &trust_only(&p)
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &svc,
            "sts:AssumeRoleWithWebIdentity",
            &good,
            &trust_only(&p)
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &Principal::web_identity("pods.eks.amazonaws.com"),
            "sts:AssumeRole",
            &good,
            &trust_only(&p)
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &Principal::root(ACCT),
            "sts:AssumeRole",
            &good,
            &trust_only(&p)
        )
        .is_allowed()
    );
}

#[test]
fn pod_identity_tag_key_is_case_insensitive() {
    let p = pod_identity_policy();
    let ctx = Context::new().with("AWS:requesttag/Kubernetes-Namespace", "default");
    assert!(
        decide(
            &Principal::service("pods.eks.amazonaws.com"),
            "sts:AssumeRole",
            &ctx,
            &trust_only(&p)
        )
        .is_allowed()
    );
}

// ---------------------------------------------------------------- (c) AssumeRole

fn trust_naming(principal: &str) -> Policy {
    trust(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}}}"#
    ))
}

fn allow_assume_role() -> Policy {
    identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/*"}}"#,
    )
}

fn alice() -> Principal {
    Principal::user("arn:aws:iam::111122223333:user/alice", ACCT)
}

#[test]
fn same_account_trust_naming_account_root_needs_identity_allow() {
    for name in ["arn:aws:iam::111122223333:root", ACCT] {
        let t = trust_naming(name);
        let ctx = Context::new();
        let d = decide(&alice(), "sts:AssumeRole", &ctx, &trust_only(&t));
        assert_eq!(d.effect, Effect::ImplicitDeny, "{name}");
        assert_eq!(d.reason, Reason::IdentityRequired);
        let id = allow_assume_role();
        let set = PolicySet {
            identity: vec![&id],
            ..trust_only(&t)
        };
        let d = decide(&alice(), "sts:AssumeRole", &ctx, &set);
        assert_eq!(d.effect, Effect::Allow, "{name}");
        assert_eq!(d.reason, Reason::IdentityAllow);
    }
}

#[test]
fn same_account_trust_naming_the_user_allows_alone() {
    let t = trust_naming("arn:aws:iam::111122223333:user/alice");
    let d = decide(&alice(), "sts:AssumeRole", &Context::new(), &trust_only(&t));
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.reason, Reason::ResourceAllow);
    assert_eq!(d.matched[0].principal_match, Some(PrincipalMatch::Exact));
    // Another user of the same account is not named.
    let bob = Principal::user("arn:aws:iam::111122223333:user/bob", ACCT);
    assert_eq!(
        decide(&bob, "sts:AssumeRole", &Context::new(), &trust_only(&t)).effect,
        Effect::ImplicitDeny
    );
}

#[test]
fn identity_allow_alone_cannot_assume_a_role() {
    let t = trust_naming("arn:aws:iam::111122223333:user/bob");
    let id = allow_assume_role();
    let set = PolicySet {
        identity: vec![&id],
        ..trust_only(&t)
    };
    let d = decide(&alice(), "sts:AssumeRole", &Context::new(), &set);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.reason, Reason::TrustPolicyDenies);
}

#[test]
fn role_session_named_by_role_arn_is_limited_by_its_boundary() {
    let caller_role = "arn:aws:iam::111122223333:role/ci/builder";
    let session = Principal::assumed_role(
        "arn:aws:sts::111122223333:assumed-role/builder/job-1",
        caller_role,
        ACCT,
    );
    let t = trust_naming(caller_role);
    assert!(decide(&session, "sts:AssumeRole", &Context::new(), &trust_only(&t)).is_allowed());
    let boundary = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        PolicyKind::Boundary,
    )
    .unwrap();
    let set = PolicySet {
        boundary: Some(&boundary),
        ..trust_only(&t)
    };
    let d = decide(&session, "sts:AssumeRole", &Context::new(), &set);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.reason, Reason::BoundaryDenies);
    // Naming the session ARN exactly is not limited by the boundary.
    let t = trust_naming("arn:aws:sts::111122223333:assumed-role/builder/job-1");
    let set = PolicySet {
        boundary: Some(&boundary),
        ..trust_only(&t)
    };
    assert!(decide(&session, "sts:AssumeRole", &Context::new(), &set).is_allowed());
    // A different session of the same role is not named by the session ARN.
    let other = Principal::assumed_role(
        "arn:aws:sts::111122223333:assumed-role/builder/job-2",
        caller_role,
        ACCT,
    );
    assert!(!decide(&other, "sts:AssumeRole", &Context::new(), &set).is_allowed());
}

#[test]
fn cross_account_needs_trust_and_identity() {
    let carol = Principal::user("arn:aws:iam::444455556666:user/carol", OTHER);
    let id = allow_assume_role();
    for name in [
        "arn:aws:iam::444455556666:user/carol",
        "arn:aws:iam::444455556666:root",
        OTHER,
    ] {
        let t = trust_naming(name);
        let d = decide(&carol, "sts:AssumeRole", &Context::new(), &trust_only(&t));
        assert_eq!(d.effect, Effect::ImplicitDeny, "{name}");
        assert_eq!(d.reason, Reason::CrossAccountIdentityDenies);
        let set = PolicySet {
            identity: vec![&id],
            ..trust_only(&t)
        };
        let d = decide(&carol, "sts:AssumeRole", &Context::new(), &set);
        assert_eq!(d.effect, Effect::Allow, "{name}");
        assert_eq!(d.reason, Reason::CrossAccountAllow);
        assert_eq!(d.deciding_statements().len(), 2);
    }
}

#[test]
fn cross_account_denials() {
    let carol = Principal::user("arn:aws:iam::444455556666:user/carol", OTHER);
    let id = allow_assume_role();
    // Trust names the wrong account.
    let t = trust_naming("arn:aws:iam::999988887777:root");
    let set = PolicySet {
        identity: vec![&id],
        ..trust_only(&t)
    };
    let d = decide(&carol, "sts:AssumeRole", &Context::new(), &set);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    // Trust names the resource account (not the caller's).
    let t = trust_naming(ACCT);
    let set = PolicySet {
        identity: vec![&id],
        ..trust_only(&t)
    };
    assert_eq!(
        decide(&carol, "sts:AssumeRole", &Context::new(), &set).effect,
        Effect::ImplicitDeny
    );
    // Identity policy allows a different role only.
    let narrow = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/other"}}"#,
    );
    let t = trust_naming("arn:aws:iam::444455556666:user/carol");
    let set = PolicySet {
        identity: vec![&narrow],
        ..trust_only(&t)
    };
    assert_eq!(
        decide(&carol, "sts:AssumeRole", &Context::new(), &set).effect,
        Effect::ImplicitDeny
    );
}

// ---------------------------------------------------------------- (d) NotPrincipal, NotAction, wildcards, deny

#[test]
fn not_principal_is_rejected_in_trust_policies() {
    // IAM rejects NotPrincipal in a role trust policy (CreateRole / UpdateAssumeRolePolicy
    // answer MalformedPolicyDocument).
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"},
        {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/alice","111122223333"]},"Action":"sts:AssumeRole"}
    ]}"#;
    let err = Policy::parse(doc, PolicyKind::Trust).unwrap_err();
    assert_eq!(err, PolicyError::NotPrincipalNotAllowed);
    assert_eq!(err.to_string(), "has prohibited field NotPrincipal");
    assert_eq!(err.aws_error_code(), "MalformedPolicyDocument");
    // The same document is a valid resource-based policy once it names a resource.
    assert!(
        Policy::parse(
            &doc.replace("\"Action\"", "\"Resource\":\"*\",\"Action\""),
            PolicyKind::Resource
        )
        .is_ok()
    );
}

#[test]
fn deny_with_not_principal_exempts_only_fully_listed_principals() {
    // NotPrincipal lives in resource-based policies (not trust policies); the role ARN is the
    // resource here.
    let resource = |json: &str| {
        Policy::parse(json, PolicyKind::Resource)
            .unwrap()
            .with_label("resource policy")
    };
    let t = resource(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"},
            {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/alice","111122223333"]},"Action":"sts:AssumeRole","Resource":"*"}
        ]}"#,
    );
    let id = allow_assume_role();
    let set = PolicySet {
        identity: vec![&id],
        ..trust_only(&t)
    };
    let d = decide(&alice(), "sts:AssumeRole", &Context::new(), &set);
    assert_eq!(d.effect, Effect::Allow);
    let bob = Principal::user("arn:aws:iam::111122223333:user/bob", ACCT);
    let d = decide(&bob, "sts:AssumeRole", &Context::new(), &set);
    assert_eq!(d.effect, Effect::ExplicitDeny);
    assert_eq!(
        d.explain(),
        format!(
            "denied: sts:AssumeRole on {ROLE} is explicitly denied by statement #1 of policy 'resource policy' (explicit deny)"
        )
    );
    // A principal with a permissions boundary is always denied by a Deny with NotPrincipal,
    // even when fully listed (documented AWS behaviour).
    let boundary = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        PolicyKind::Boundary,
    )
    .unwrap();
    let bounded = PolicySet {
        boundary: Some(&boundary),
        ..set.clone()
    };
    assert_eq!(
        decide(&alice(), "sts:AssumeRole", &Context::new(), &bounded).effect,
        Effect::ExplicitDeny
    );
    // Listing only the user (not the account) does not exempt the user.
    let t = resource(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"},
            {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole","Resource":"*"}
        ]}"#,
    );
    let set = PolicySet {
        identity: vec![&id],
        ..trust_only(&t)
    };
    assert_eq!(
        decide(&alice(), "sts:AssumeRole", &Context::new(), &set).effect,
        Effect::ExplicitDeny
    );
}

#[test]
fn allow_with_not_action() {
    let t = trust(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"NotAction":"sts:AssumeRoleWith*"}}"#,
    );
    let ctx = Context::new();
    assert!(decide(&alice(), "sts:AssumeRole", &ctx, &trust_only(&t)).is_allowed());
    assert!(decide(&alice(), "sts:TagSession", &ctx, &trust_only(&t)).is_allowed());
    assert!(
        !decide(
            &alice(),
            "sts:AssumeRoleWithWebIdentity",
            &ctx,
            &trust_only(&t)
        )
        .is_allowed()
    );
    assert!(!decide(&alice(), "sts:AssumeRoleWithSAML", &ctx, &trust_only(&t)).is_allowed());
}

#[test]
fn action_wildcards_in_trust_policies() {
    let t = trust(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:Assume?ole*"}}"#,
    );
    let ctx = Context::new();
    assert!(decide(&alice(), "sts:AssumeRole", &ctx, &trust_only(&t)).is_allowed());
    assert!(decide(&alice(), "sts:AssumeRoleWithSAML", &ctx, &trust_only(&t)).is_allowed());
    assert!(!decide(&alice(), "sts:TagSession", &ctx, &trust_only(&t)).is_allowed());
    assert!(!decide(&alice(), "iam:AssumeRole", &ctx, &trust_only(&t)).is_allowed());
}

#[test]
fn explicit_deny_in_trust_overrides_allow() {
    let t = trust(&format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity"}},
            {{"Sid":"NoKubeSystem","Effect":"Deny","Principal":"*","Action":"sts:*",
              "Condition":{{"StringLike":{{"{SUB}":"system:serviceaccount:kube-system:*"}}}}}}
        ]}}"#
    ));
    let p = Principal::web_identity(PROVIDER);
    let ok = decide(
        &p,
        "sts:AssumeRoleWithWebIdentity",
        &web("system:serviceaccount:default:a", "x"),
        &trust_only(&t),
    );
    assert!(ok.is_allowed());
    let d = decide(
        &p,
        "sts:AssumeRoleWithWebIdentity",
        &web("system:serviceaccount:kube-system:a", "x"),
        &trust_only(&t),
    );
    assert_eq!(d.effect, Effect::ExplicitDeny);
    assert_eq!(d.reason, Reason::ExplicitDeny);
    assert_eq!(d.deciding_statements().len(), 1);
    assert_eq!(
        d.deciding_statements()[0].sid.as_deref(),
        Some("NoKubeSystem")
    );
}

#[test]
fn explicit_deny_in_caller_identity_policy_blocks_assume_role() {
    let t = trust_naming("arn:aws:iam::111122223333:user/alice");
    let deny = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"sts:*","Resource":"*"}}"#,
    );
    let set = PolicySet {
        identity: vec![&deny],
        ..trust_only(&t)
    };
    let d = decide(&alice(), "sts:AssumeRole", &Context::new(), &set);
    assert_eq!(d.effect, Effect::ExplicitDeny);
    assert!(
        d.explain().contains("policy 'caller policy'"),
        "{}",
        d.explain()
    );
}

// ---------------------------------------------------------------- context keys read

/// What a caller building a context for one trust policy may leave out.
#[test]
fn context_keys_a_trust_policy_may_read() {
    let p = irsa_policy("StringEquals", "system:serviceaccount:default:app");
    assert!(p.may_read_context_key(SUB));
    assert!(
        p.may_read_context_key(&SUB.to_uppercase()),
        "keys are case-insensitive"
    );
    assert!(p.may_read_context_key(AUD));
    for other in [
        "aws:CurrentTime",
        "aws:SourceIp",
        "sts:RoleSessionName",
        "oidc.example.com/id/ABC:azp",
    ] {
        assert!(!p.may_read_context_key(other), "{other}");
    }
    // Kelvin sign: a non-ASCII spelling that folds to the condition's key.
    let k = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"aws:PrincipalTag/kind":"x"}}}]}"#,
    );
    assert!(k.may_read_context_key("aws:PrincipalTag/\u{212A}ind"));
    assert!(!k.may_read_context_key("aws:PrincipalTag/kin"));
    // A policy variable may name any key, in a condition value or a resource.
    let v = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:RoleSessionName":"${aws:PrincipalTag/name}"}}}]}"#,
    );
    assert!(v.may_read_context_key("aws:SourceIp"));
    let none = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
    );
    assert!(!none.may_read_context_key("aws:SourceIp"));
}
