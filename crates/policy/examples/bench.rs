//! Single-threaded micro-benchmark of the policy engine.
//!
//! `cargo run --release -p podiam-policy --example bench` (or `bench/policy.sh`) measures:
//! (a) evaluating a typical IRSA trust policy, (b) evaluating a 10-statement identity policy
//! with conditions, (c) parsing a ~2 KB policy document; and prints a markdown table.
//!
//! Environment: `POLICY_BENCH_SECONDS` (default 1.5) is the minimum measured time per case;
//! `POLICY_BENCH_STRICT=1` exits with status 3 when a target is not met;
//! `POLICY_BENCH_ONLY=irsa|identity|parse` runs one case (for profiling).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use podiam_policy::{Context, Policy, PolicyKind, PolicySet, Principal, Request, evaluate};

const ACCOUNT: &str = "111122223333";
const ISSUER: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

struct Row {
    name: &'static str,
    ops_per_sec: f64,
    ns_per_op: f64,
    iterations: u64,
    target: f64,
}

/// Runs `op` in batches until at least `min` has elapsed (after a short warm-up) and
/// returns (iterations, elapsed).
fn measure(min: Duration, mut op: impl FnMut() -> bool) -> (u64, Duration) {
    // Warm-up and sanity check: every call must succeed.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        for _ in 0..1_000 {
            assert!(op(), "benchmark operation failed");
        }
    }
    let mut batch = 1_000u64;
    let mut iterations = 0u64;
    let start = Instant::now();
    loop {
        let mut ok = 0u64;
        for _ in 0..batch {
            ok += u64::from(op());
        }
        assert_eq!(ok, batch, "benchmark operation failed");
        iterations += batch;
        let elapsed = start.elapsed();
        if elapsed >= min {
            return (iterations, elapsed);
        }
        batch = (batch * 2).min(1 << 20);
    }
}

fn row(name: &'static str, target: f64, min: Duration, op: impl FnMut() -> bool) -> Option<Row> {
    let only = std::env::var("POLICY_BENCH_ONLY").unwrap_or_default();
    if !name
        .to_ascii_lowercase()
        .contains(&only.to_ascii_lowercase())
    {
        return None;
    }
    let (iterations, elapsed) = measure(min, op);
    let secs = elapsed.as_secs_f64();
    Some(Row {
        name,
        ops_per_sec: iterations as f64 / secs,
        ns_per_op: secs * 1e9 / iterations as f64,
        iterations,
        target,
    })
}

fn irsa_trust() -> String {
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Effect": "Allow",
      "Principal": {{"Federated": "arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"}},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {{
        "StringEquals": {{
          "{ISSUER}:sub": "system:serviceaccount:default:my-app",
          "{ISSUER}:aud": "sts.amazonaws.com"
        }}
      }}
    }}
  ]
}}"#
    )
}

/// Ten statements mixing StringLike, IpAddress, DateLessThan, Bool, ForAnyValue, a policy
/// variable, Null, NumericLessThan and a Deny; all of them apply to `s3:GetObject`, so every
/// condition is evaluated.
fn identity_policy() -> &'static str {
    r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "HomePrefix", "Effect": "Allow", "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::corp-data/home/${aws:username}/*"},
    {"Sid": "ProjectLike", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
     "Resource": "arn:aws:s3:::corp-data/*",
     "Condition": {"StringLike": {"aws:PrincipalTag/project": ["alpha-*", "beta-?"]}}},
    {"Sid": "OfficeNetwork", "Effect": "Allow", "Action": "s3:*", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]}}},
    {"Sid": "NotExpired", "Effect": "Allow", "Action": "s3:*Object", "Resource": "*",
     "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
    {"Sid": "TlsOnly", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Sid": "TagKeys", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
     "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["cost-center", "owner"]}}},
    {"Sid": "TeamFolder", "Effect": "Allow", "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::corp-data/${aws:PrincipalTag/team, 'shared'}/*",
     "Condition": {"StringEquals": {"s3:ExistingObjectTag/owner": "${aws:username}"}}},
    {"Sid": "MfaRecent", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
     "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
                   "Null": {"aws:TokenIssueTime": "false"}}},
    {"Sid": "Regions", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2", "eu-west-1"]}}},
    {"Sid": "OrgOnly", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
     "Condition": {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/r-ab12/ou-*"},
                   "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/*"}}}
  ]
}"#
}

/// A realistic bucket policy of about 2 KB.
fn large_policy() -> String {
    let mut statements = Vec::new();
    for (i, team) in ["analytics", "billing", "platform", "security"]
        .iter()
        .enumerate()
    {
        statements.push(format!(
            r#"    {{
      "Sid": "Team{i}ReadWrite",
      "Effect": "Allow",
      "Principal": {{"AWS": ["arn:aws:iam::{ACCOUNT}:role/{team}-writer", "arn:aws:iam::{ACCOUNT}:role/{team}-reader"]}},
      "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
      "Resource": ["arn:aws:s3:::corp-data/{team}/*", "arn:aws:s3:::corp-data"],
      "Condition": {{"StringLike": {{"s3:prefix": ["{team}/*"]}}, "IpAddress": {{"aws:SourceIp": ["10.{i}.0.0/16", "2001:db8:{i}::/48"]}}}}
    }}"#
        ));
    }
    statements.push(format!(
        r#"    {{
      "Sid": "DenyInsecureTransport",
      "Effect": "Deny",
      "Principal": "*",
      "Action": "s3:*",
      "Resource": ["arn:aws:s3:::corp-data", "arn:aws:s3:::corp-data/*"],
      "Condition": {{"Bool": {{"aws:SecureTransport": "false"}}, "DateGreaterThan": {{"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, "StringNotEquals": {{"aws:PrincipalAccount": "{ACCOUNT}"}}}}
    }}"#
    ));
    format!(
        "{{\n  \"Version\": \"2012-10-17\",\n  \"Id\": \"corp-data-bucket-policy\",\n  \"Statement\": [\n{}\n  ]\n}}",
        statements.join(",\n")
    )
}

fn main() {
    let min = Duration::from_secs_f64(
        std::env::var("POLICY_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.5),
    );
    let strict = std::env::var("POLICY_BENCH_STRICT").is_ok_and(|v| v == "1");
    let mut rows = Vec::new();

    // (a) IRSA trust policy.
    let trust = Policy::parse(&irsa_trust(), PolicyKind::Trust)
        .unwrap()
        .with_label("trust policy of role my-app");
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}");
    let web = Principal::web_identity(provider);
    let ctx = Context::new()
        .with(
            format!("{ISSUER}:sub"),
            "system:serviceaccount:default:my-app",
        )
        .with(format!("{ISSUER}:aud"), "sts.amazonaws.com")
        .with(format!("{ISSUER}:amr"), "authenticated")
        .with("aws:CurrentTime", "2025-06-01T12:00:00Z")
        .with("aws:SourceIp", "10.1.2.3");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/my-app");
    let set = PolicySet {
        resource: Some(&trust),
        resource_account: Some(ACCOUNT),
        ..PolicySet::default()
    };
    let req = Request {
        principal: &web,
        action: "sts:AssumeRoleWithWebIdentity",
        resource: &role,
        context: &ctx,
    };
    rows.extend(row(
        "IRSA trust policy evaluation (Federated + StringEquals sub/aud)",
        1_000_000.0,
        min,
        || evaluate(black_box(&req), black_box(&set)).is_allowed(),
    ));

    // (b) 10-statement identity policy.
    let identity = Policy::parse(identity_policy(), PolicyKind::Identity)
        .unwrap()
        .with_label("identity policy");
    assert_eq!(identity.statements().len(), 10);
    let user = Principal::user(format!("arn:aws:iam::{ACCOUNT}:user/alice"), ACCOUNT);
    let ctx = Context::new()
        .with("aws:username", "alice")
        .with("aws:PrincipalTag/project", "alpha-7")
        .with("aws:PrincipalTag/team", "data")
        .with("aws:SourceIp", "192.0.2.17")
        .with("aws:CurrentTime", "2025-06-01T12:00:00Z")
        .with("aws:SecureTransport", "true")
        .with_multi("aws:TagKeys", ["project", "owner"])
        .with("s3:ExistingObjectTag/owner", "alice")
        .with("aws:MultiFactorAuthAge", "120")
        .with("aws:TokenIssueTime", "2025-06-01T11:58:00Z")
        .with("aws:RequestedRegion", "us-east-1")
        .with_multi(
            "aws:PrincipalOrgPaths",
            ["o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"],
        )
        .with(
            "aws:PrincipalArn",
            format!("arn:aws:iam::{ACCOUNT}:user/alice"),
        );
    let set = PolicySet {
        identity: vec![&identity],
        ..PolicySet::default()
    };
    let req = Request {
        principal: &user,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::corp-data/data/report.csv",
        context: &ctx,
    };
    let decision = evaluate(&req, &set);
    assert!(decision.is_allowed(), "{}", decision.explain());
    // Every Allow statement applies, so every condition was evaluated.
    assert_eq!(decision.matched.len(), 7, "{:?}", decision.matched);
    rows.extend(row(
        "10-statement identity policy evaluation (conditions, variables)",
        200_000.0,
        min,
        || evaluate(black_box(&req), black_box(&set)).is_allowed(),
    ));

    // (c) Parsing a ~2 KB document.
    let text = large_policy();
    let parsed = Policy::parse(&text, PolicyKind::Resource).unwrap();
    assert_eq!(parsed.statements().len(), 5);
    let size = text.len();
    rows.extend(row("parse a 2 KB policy document", 50_000.0, min, || {
        Policy::parse(black_box(&text), PolicyKind::Resource).is_ok()
    }));

    println!("| case | ops/s | target | met |");
    println!("|---|---:|---:|:---:|");
    let mut all_met = true;
    for r in &rows {
        let met = r.ops_per_sec >= r.target;
        all_met &= met;
        println!(
            "| {} | {} | ≥ {} | {} |",
            r.name,
            group(r.ops_per_sec),
            group(r.target),
            if met { "yes" } else { "**no**" }
        );
    }
    println!();
    for r in &rows {
        println!(
            "- {}: {:.0} ns/op over {} iterations",
            r.name, r.ns_per_op, r.iterations
        );
    }
    println!(
        "- parsed document: {size} bytes ({} characters without whitespace)",
        podiam_policy::policy_size(&text)
    );
    println!(
        "- single thread, at least {:.1} s per case",
        min.as_secs_f64()
    );
    if strict && !all_met {
        std::process::exit(3);
    }
}

/// `1234567.8` -> `1,234,568`.
fn group(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
