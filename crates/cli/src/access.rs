//! `podiam access explain`: why would kubectl, as this IAM principal, be allowed or not by the
//! cluster's access entries? Reads the cluster's authentication mode, the principal's access
//! entry and its associated access policies through the EKS API (so the caller needs
//! `eks:DescribeCluster`, `eks:DescribeAccessEntry` and `eks:ListAssociatedAccessPolicies`), then
//! evaluates the request exactly as the authorization webhook does, policy by policy.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use podiam_awsclient::Service;
use podiam_control::access::rbac::{Request, RoleSet};
use podiam_control::access::{MODE_CONFIG_MAP, most_specific, pattern_match, policy_verdicts};
use podiam_control::model::AssociatedAccessPolicy;
use serde_json::Value;

use crate::awsenv::AwsEnv;

/// `podiam access`.
#[derive(Args, Debug)]
pub struct AccessArgs {
    #[command(subcommand)]
    command: AccessCommand,
}

#[derive(Subcommand, Debug)]
enum AccessCommand {
    /// Explain the access-policy decision for one Kubernetes request by an IAM principal. Exit
    /// status 0 = an access policy allows it, 3 = podiam has no opinion (Kubernetes RBAC, with
    /// the entry's username and groups, decides).
    Explain(ExplainArgs),
}

#[derive(Args, Debug)]
struct ExplainArgs {
    /// Cluster name.
    #[arg(long)]
    cluster: String,
    /// The IAM role or user ARN (as the access entry names it).
    #[arg(long)]
    principal: String,
    /// The Kubernetes verb (get, list, watch, create, update, patch, delete, ...).
    #[arg(long)]
    verb: String,
    /// The resource as kubectl names it: `pods`, `deployments.apps`, `pods/log`.
    #[arg(long, conflicts_with = "non_resource_url")]
    resource: Option<String>,
    /// The namespace (none: a cluster-scoped or all-namespaces request).
    #[arg(long, short = 'n', default_value = "")]
    namespace: String,
    /// The object name.
    #[arg(long, default_value = "")]
    name: String,
    /// A non-resource URL (`/healthz`, `/metrics`) instead of a resource.
    #[arg(long)]
    non_resource_url: Option<String>,
}

/// `pods` / `deployments.apps` / `pods/log` / `deployments.apps/scale` → (group, resource,
/// subresource).
fn split_resource(r: &str) -> (String, String, String) {
    let (res, sub) = r.split_once('/').unwrap_or((r, ""));
    let (res, group) = res.split_once('.').unwrap_or((res, ""));
    (group.to_owned(), res.to_owned(), sub.to_owned())
}

/// A path segment, percent-encoded (an ARN holds `:` and `/`).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn run(a: AccessArgs) -> anyhow::Result<()> {
    let AccessCommand::Explain(a) = a.command;
    let request = match (&a.resource, &a.non_resource_url) {
        (Some(r), None) => {
            let (group, resource, subresource) = split_resource(r);
            Request::Resource {
                verb: a.verb.clone(),
                group,
                resource,
                subresource,
                name: a.name.clone(),
                namespace: a.namespace.clone(),
            }
        }
        (None, Some(p)) => Request::NonResource {
            verb: a.verb.clone(),
            path: p.clone(),
        },
        _ => bail!("give --resource or --non-resource-url"),
    };
    let env = AwsEnv::load(Service::Eks).await?;
    let cluster = env
        .call(
            "GET",
            &format!("/clusters/{}", segment(&a.cluster)),
            "eks",
            None,
        )
        .await?;
    let mode = cluster
        .pointer("/cluster/accessConfig/authenticationMode")
        .and_then(Value::as_str)
        .unwrap_or(MODE_CONFIG_MAP)
        .to_owned();
    println!("cluster {} (authentication mode {mode})", a.cluster);
    if mode == MODE_CONFIG_MAP {
        println!("access entries are off in CONFIG_MAP mode: podiam grants nothing; RBAC decides");
        std::process::exit(3);
    }
    let entry_url = |principal: &str| {
        format!(
            "/clusters/{}/access-entries/{}",
            segment(&a.cluster),
            segment(principal)
        )
    };
    let mut base = entry_url(&a.principal);
    let entry = match env.call("GET", &base, "eks", None).await {
        Ok(v) => v,
        Err(e) if e.to_string().starts_with("404") => {
            match pattern_entry(&env, &a.cluster, &a.principal).await? {
                Some(pattern) => {
                    println!("{} is mapped by the pattern entry {pattern}", a.principal);
                    base = entry_url(&pattern);
                    env.call("GET", &base, "eks", None).await?
                }
                None => {
                    println!(
                        "{} has no access entry in the cluster: its tokens are not accepted (401)",
                        a.principal
                    );
                    std::process::exit(3);
                }
            }
        }
        Err(e) => return Err(e),
    };
    let e = entry.get("accessEntry").context("incomplete answer")?;
    let groups: Vec<&str> = e
        .get("kubernetesGroups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!(
        "access entry {} ({}): username {}, groups [{}]",
        a.principal,
        e.get("type").and_then(Value::as_str).unwrap_or("STANDARD"),
        e.get("username")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        groups.join(", ")
    );
    let mut policies = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("{base}/access-policies?nextToken={}", segment(t)),
            None => format!("{base}/access-policies"),
        };
        let page = env.call("GET", &path, "eks", None).await?;
        for p in page
            .get("associatedAccessPolicies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
            policies.push(AssociatedAccessPolicy {
                policy_arn: s("/policyArn").to_owned(),
                scope: s("/accessScope/type").to_owned(),
                namespaces: p
                    .pointer("/accessScope/namespaces")
                    .and_then(Value::as_array)
                    .map(|n| {
                        n.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                associated_ms: 0,
                modified_ms: 0,
            });
        }
        token = page
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    println!("request: {}", describe(&request));
    if policies.is_empty() {
        println!("  no access policy is associated with the entry");
    }
    let verdicts = policy_verdicts(RoleSet::builtin(), &policies, &request);
    for v in &verdicts {
        let name = v.policy_arn.rsplit('/').next().unwrap_or(v.policy_arn);
        let why = match (v.role, v.in_scope, v.rule) {
            (None, _, _) => "podiam does not model this policy: it grants nothing".to_owned(),
            (Some(_), false, _) => "the request is outside the policy's scope".to_owned(),
            (Some(role), true, None) => format!("no rule of {role} allows the request"),
            (Some(role), true, Some(rule)) => format!("ALLOWS, by {role}'s rule {rule:?}"),
        };
        println!("  {name} ({}): {why}", v.scope);
    }
    if verdicts.iter().any(|v| v.grants()) {
        println!("decision: allowed by an access policy");
        Ok(())
    } else {
        println!(
            "decision: no opinion from podiam; Kubernetes RBAC decides for the entry's username and groups"
        );
        std::process::exit(3);
    }
}

/// The pattern entry that maps `role` (as token review picks it: the most specific; a tie maps
/// nothing), from ListAccessEntries.
async fn pattern_entry(env: &AwsEnv, cluster: &str, role: &str) -> anyhow::Result<Option<String>> {
    let mut candidates = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/clusters/{}/access-entries", segment(cluster));
        if let Some(t) = &token {
            path = format!("{path}?nextToken={}", segment(t));
        }
        let page = env.call("GET", &path, "eks", None).await?;
        candidates.extend(
            page.get("accessEntries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(|arn| Some((pattern_match(arn, role)?, arn.to_owned()))),
        );
        token = page
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    most_specific(candidates.into_iter()).map_err(|_tie| {
        anyhow::anyhow!(
            "two pattern entries of equal specificity map {role}: its tokens are refused"
        )
    })
}

fn describe(r: &Request) -> String {
    match r {
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            namespace,
        } => {
            let mut s = format!("{verb} {resource}");
            if !group.is_empty() {
                s = format!("{s}.{group}");
            }
            if !subresource.is_empty() {
                s = format!("{s}/{subresource}");
            }
            if !name.is_empty() {
                s = format!("{s} {name}");
            }
            if namespace.is_empty() {
                format!("{s} (cluster-wide)")
            } else {
                format!("{s} in namespace {namespace}")
            }
        }
        Request::NonResource { verb, path } => format!("{verb} {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_split_as_kubectl_names_them() {
        let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(split_resource("pods"), s("", "pods", ""));
        assert_eq!(split_resource("pods/log"), s("", "pods", "log"));
        assert_eq!(
            split_resource("deployments.apps"),
            s("apps", "deployments", "")
        );
        assert_eq!(
            split_resource("deployments.apps/scale"),
            s("apps", "deployments", "scale")
        );
        assert_eq!(
            split_resource("rolebindings.rbac.authorization.k8s.io"),
            s("rbac.authorization.k8s.io", "rolebindings", "")
        );
        assert_eq!(
            segment("arn:aws:iam::1:role/a b"),
            "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b"
        );
    }
}
