//! `podiam explain`: why is this action allowed or denied?
//!
//! Offline, over policy files (no server needed), or online for a user or role of a running
//! server (the server evaluates exactly as it would for a real request).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use podiam_policy as policy;
use serde_json::json;

use crate::awsenv::AwsEnv;

/// `podiam explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The action, e.g. `s3:GetObject`.
    #[arg(long)]
    action: String,
    /// The resource ARN [default: *].
    #[arg(long, default_value = "*")]
    resource: String,
    /// An identity policy file (repeatable).
    #[arg(long = "policy")]
    policies: Vec<PathBuf>,
    /// A resource-based policy file.
    #[arg(long)]
    resource_policy: Option<PathBuf>,
    /// A role trust policy file (evaluated as the resource policy of sts:AssumeRole*).
    #[arg(long, conflicts_with = "resource_policy")]
    trust_policy: Option<PathBuf>,
    /// A permissions boundary file.
    #[arg(long)]
    boundary: Option<PathBuf>,
    /// A session policy file (repeatable).
    #[arg(long = "session-policy")]
    session_policies: Vec<PathBuf>,
    /// The caller: an IAM user/role/assumed-role/root ARN, `federated:<provider ARN>` or
    /// `service:<name>` [default: a user of account 111122223333].
    #[arg(long)]
    principal: Option<String>,
    /// The account owning the resource [default: from the resource ARN, else the principal's].
    #[arg(long)]
    resource_account: Option<String>,
    /// A context value `KEY=VALUE` (repeat a key for several values).
    #[arg(long = "context")]
    context: Vec<String>,
    /// Ask a running podiam about this IAM user or role ARN instead of reading policy files.
    #[arg(long, conflicts_with_all = ["policies", "resource_policy", "trust_policy", "boundary", "session_policies"])]
    principal_arn: Option<String>,
}

pub async fn run(a: ExplainArgs) -> anyhow::Result<()> {
    let mut ctx: Vec<(String, String)> = Vec::new();
    for c in &a.context {
        let (k, v) = c
            .split_once('=')
            .with_context(|| format!("--context {c:?} must be KEY=VALUE"))?;
        ctx.push((k.to_owned(), v.to_owned()));
    }
    if let Some(arn) = &a.principal_arn {
        let env = AwsEnv::load(podiam_awsclient::Service::Iam).await?;
        let mut context = serde_json::Map::new();
        for (k, v) in &ctx {
            let e = context.entry(k.clone()).or_insert_with(|| json!([]));
            if let Some(arr) = e.as_array_mut() {
                arr.push(json!(v));
            }
        }
        let body = json!({"principalArn": arn, "action": a.action, "resource": a.resource, "context": context});
        let v = env
            .call("POST", "/podiam/explain", "iam", Some(&body))
            .await?;
        let decision = v
            .get("decision")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        println!("{}", headline(decision));
        println!(
            "  {}",
            v.get("explanation")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
        );
        print_missing(
            v.get("missingContextValues")
                .and_then(|m| m.as_array())
                .map(|m| {
                    m.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        );
        return exit_for(decision);
    }
    let load = |p: &PathBuf, kind: policy::PolicyKind| -> anyhow::Result<policy::Policy> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let pol = policy::Policy::parse(&text, kind)
            .map_err(|e| anyhow::anyhow!("{}: MalformedPolicyDocument: {e}", p.display()))?;
        Ok(pol.with_label(p.display().to_string()))
    };
    let identity = a
        .policies
        .iter()
        .map(|p| load(p, policy::PolicyKind::Identity))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let resource = match (&a.resource_policy, &a.trust_policy) {
        (Some(p), _) => Some(load(p, policy::PolicyKind::Resource)?),
        (_, Some(p)) => Some(load(p, policy::PolicyKind::Trust)?),
        _ => None,
    };
    let boundary = a
        .boundary
        .as_ref()
        .map(|p| load(p, policy::PolicyKind::Boundary))
        .transpose()?;
    let session = a
        .session_policies
        .iter()
        .map(|p| load(p, policy::PolicyKind::Session))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if identity.is_empty() && resource.is_none() {
        bail!(
            "give at least one --policy, --resource-policy or --trust-policy, or --principal-arn for a running server"
        );
    }
    let principal = principal_of(
        a.principal
            .as_deref()
            .unwrap_or("arn:aws:iam::111122223333:user/example"),
    )?;
    let mut context = policy::Context::new();
    for (k, v) in &ctx {
        let mut vals: Vec<String> = context.get(k).map(<[String]>::to_vec).unwrap_or_default();
        vals.push(v.clone());
        context.set_multi(k.clone(), vals);
    }
    let resource_account = a
        .resource_account
        .clone()
        .or_else(|| {
            a.resource
                .split(':')
                .nth(4)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .or_else(|| principal.account.clone());
    let set = policy::PolicySet {
        identity: identity.iter().collect(),
        resource: resource.as_ref(),
        resource_account: resource_account.as_deref(),
        boundary: boundary.as_ref(),
        session: session.iter().collect(),
    };
    let req = policy::Request {
        principal: &principal,
        action: &a.action,
        resource: &a.resource,
        context: &context,
    };
    let d = policy::evaluate(&req, &set);
    let decision = match d.effect {
        policy::Effect::Allow => "allowed",
        policy::Effect::ExplicitDeny => "explicitDeny",
        policy::Effect::ImplicitDeny => "implicitDeny",
    };
    println!("{}", headline(decision));
    println!("  {}", d.explain());
    print_missing(d.missing_context_keys.clone());
    exit_for(decision)
}

fn headline(decision: &str) -> &'static str {
    match decision {
        "allowed" => "ALLOWED",
        "explicitDeny" => {
            "DENIED (explicit deny: a Deny statement matched; an Allow cannot override it)"
        }
        _ => "DENIED (implicit deny: nothing allows it)",
    }
}

fn print_missing(missing: Vec<String>) {
    if !missing.is_empty() {
        println!(
            "  the request had no value for: {} — conditions on them did not match; pass --context KEY=VALUE to see the decision with them",
            missing.join(", ")
        );
    }
}

fn exit_for(decision: &str) -> anyhow::Result<()> {
    // Exit status 0 = allowed, 3 = denied, so scripts can branch on it.
    if decision == "allowed" {
        Ok(())
    } else {
        std::process::exit(3)
    }
}

fn principal_of(s: &str) -> anyhow::Result<policy::Principal> {
    if let Some(p) = s.strip_prefix("federated:") {
        return Ok(policy::Principal::web_identity(p));
    }
    if let Some(p) = s.strip_prefix("service:") {
        return Ok(policy::Principal::service(p));
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let (Some(service), Some(account), Some(res)) = (parts.get(2), parts.get(4), parts.get(5))
    else {
        bail!("--principal {s:?} is not an ARN, federated:<provider> or service:<name>");
    };
    Ok(match (*service, *res) {
        ("iam", "root") => policy::Principal::root(*account),
        ("iam", r) if r.starts_with("user/") => policy::Principal::user(s, *account),
        ("sts", r) if r.starts_with("assumed-role/") => {
            let role = r
                .trim_start_matches("assumed-role/")
                .split('/')
                .next()
                .unwrap_or_default();
            policy::Principal::assumed_role(
                s,
                format!("arn:aws:iam::{account}:role/{role}"),
                *account,
            )
        }
        _ => bail!("--principal {s:?}: expected a user, root or assumed-role ARN"),
    })
}
