//! Throughput of the STS hot path (one trust policy per request). Ignored by default; run
//! with `cargo test --release -p podiam-policy --test throughput -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Instant;

use podiam_policy::{Context, Policy, PolicyKind, PolicySet, Principal, Request, evaluate};

#[test]
#[ignore = "benchmark"]
fn irsa_trust_evaluation_throughput() {
    let provider = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789";
    let trust = Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{provider}"}},
            "Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{
            "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789:aud":"sts.amazonaws.com"}},
            "StringLike":{{"oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789:sub":"system:serviceaccount:default:*"}}}}}}]}}"#
        ),
        PolicyKind::Trust,
    )
    .unwrap()
    .with_label("trust policy of role app");
    let principal = Principal::web_identity(provider);
    let ctx = Context::new()
        .with(
            "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789:aud",
            "sts.amazonaws.com",
        )
        .with(
            "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789:sub",
            "system:serviceaccount:default:app",
        )
        .with("aws:CurrentTime", "2025-01-01T00:00:00Z")
        .with("aws:SourceIp", "10.0.0.1");
    let set = PolicySet {
        resource: Some(&trust),
        resource_account: Some("111122223333"),
        ..PolicySet::default()
    };
    let req = Request {
        principal: &principal,
        action: "sts:AssumeRoleWithWebIdentity",
        resource: "arn:aws:iam::111122223333:role/app",
        context: &ctx,
    };
    let n = 200_000u32;
    let start = Instant::now();
    let mut allowed = 0u32;
    for _ in 0..n {
        allowed += u32::from(evaluate(&req, &set).is_allowed());
    }
    let elapsed = start.elapsed();
    assert_eq!(allowed, n);
    let per_sec = f64::from(n) / elapsed.as_secs_f64();
    println!("{n} evaluations in {elapsed:?}: {per_sec:.0}/s on one core");
    assert!(per_sec > 50_000.0, "{per_sec:.0}/s");

    // Parsing (if the server does not cache parsed trust policies).
    let text = trust.to_json();
    let start = Instant::now();
    for _ in 0..20_000 {
        assert!(Policy::parse(&text, PolicyKind::Trust).is_ok());
    }
    let per_sec = 20_000.0 / start.elapsed().as_secs_f64();
    println!("parse: {per_sec:.0}/s on one core");
    assert!(per_sec > 10_000.0, "{per_sec:.0}/s");
}
