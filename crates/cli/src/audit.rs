//! `podiam audit who`: who was given an access key, and what a pod was given, from the audit
//! trail through CloudTrail's `LookupEvents` (so the caller needs `cloudtrail:LookupEvents`,
//! and sees only its own account's events).

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use podiam_awsclient::Service;
use serde_json::{Value, json};

use crate::awsenv::AwsEnv;

const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
/// The resource type podiam gives the pod of a credential event.
const POD_TYPE: &str = "podiam::Kubernetes::Pod";

/// `podiam audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Who holds a key (`--access-key ASIA...`: one line, exit status 1 when no event issued
    /// it), or what a pod was given (`--pod NAMESPACE/NAME`: one line per event).
    Who(WhoArgs),
}

#[derive(Args, Debug)]
struct WhoArgs {
    /// A temporary access key id: which role, session, cluster, namespace, service account, pod
    /// and node it was issued to, when, and through which path.
    #[arg(long, required_unless_present = "pod", conflicts_with = "pod")]
    access_key: Option<String>,
    /// A pod, `NAMESPACE/NAME`: every credential it was issued or refused, newest first.
    #[arg(long)]
    pod: Option<String>,
    /// Only this cluster's pod (with --pod).
    #[arg(long, requires = "pod")]
    cluster: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Text,
    Json,
}

pub async fn run(a: AuditArgs) -> anyhow::Result<()> {
    let AuditCommand::Who(w) = a.command;
    let env = AwsEnv::load(Service::CloudTrail).await?;
    if let Some(key) = &w.access_key {
        let events = lookup(&env, "AccessKeyId", key, None).await?;
        let issuing = events.iter().find(|e| {
            e.pointer("/responseElements/credentials/accessKeyId")
                .and_then(Value::as_str)
                == Some(key.as_str())
        });
        let Some(e) = issuing else {
            bail!(
                "no event issued {key}: it was not issued by this installation to this account, or its event is older than the retention"
            );
        };
        match w.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(e)?),
            Output::Text => println!("{}", describe(e)),
        }
        return Ok(());
    }
    let pod = w.pod.unwrap_or_default();
    if pod.split('/').count() != 2 || pod.starts_with('/') || pod.ends_with('/') {
        bail!("--pod takes NAMESPACE/NAME");
    }
    let events: Vec<Value> = lookup(&env, "ResourceName", &pod, Some(POD_TYPE))
        .await?
        .into_iter()
        .filter(|e| {
            w.cluster.as_deref().is_none_or(|c| {
                e.pointer("/additionalEventData/kubernetes/cluster")
                    .and_then(Value::as_str)
                    == Some(c)
            })
        })
        .collect();
    match w.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&events)?),
        Output::Text => {
            if events.is_empty() {
                println!("no credential events for pod {pod}");
            }
            for e in &events {
                println!("{}", describe(e));
            }
        }
    }
    Ok(())
}

/// Every event matching one lookup attribute (all pages), as their CloudTrail records; with
/// `resource_type`, only events naming a resource of that type and name.
async fn lookup(
    env: &AwsEnv,
    key: &str,
    value: &str,
    resource_type: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({
            "LookupAttributes": [{"AttributeKey": key, "AttributeValue": value}],
            "MaxResults": 50,
        });
        if let (Some(t), Some(o)) = (&token, body.as_object_mut()) {
            o.insert("NextToken".into(), json!(t));
        }
        let page = env
            .call_with_target("POST", "/", "cloudtrail", Some(&body), Some(TARGET))
            .await?;
        for e in page
            .get("Events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let named = resource_type.is_none_or(|t| {
                e.get("Resources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|r| {
                        r.get("ResourceType").and_then(Value::as_str) == Some(t)
                            && r.get("ResourceName").and_then(Value::as_str) == Some(value)
                    })
            });
            if !named {
                continue;
            }
            if let Some(record) = e.get("CloudTrailEvent").and_then(Value::as_str)
                && let Ok(v) = serde_json::from_str::<Value>(record)
            {
                out.push(v);
            }
        }
        token = page
            .get("NextToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// One line: what happened, to whom, through which path.
fn describe(e: &Value) -> String {
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let k = |f: &str| s(&format!("/additionalEventData/kubernetes/{f}")).to_owned();
    let mut parts = vec![format!("{} {}", s("/eventTime"), s("/eventName"))];
    match e.pointer("/responseElements/credentials/accessKeyId") {
        Some(Value::String(key)) => parts.push(format!(
            "issued {key} (expires {})",
            s("/responseElements/credentials/expiration")
        )),
        _ => parts.push(format!(
            "refused: {} {}",
            s("/errorCode"),
            s("/errorMessage")
        )),
    }
    let arn = s("/responseElements/assumedRoleUser/arn");
    if !arn.is_empty() {
        parts.push(format!("session {arn}"));
    } else if let Some(r) = e
        .pointer("/requestParameters/roleArn")
        .and_then(Value::as_str)
    {
        parts.push(format!("role {r}"));
    }
    for (label, field) in [
        ("cluster", "cluster"),
        ("namespace", "namespace"),
        ("service account", "serviceAccount"),
    ] {
        let v = k(field);
        if !v.is_empty() {
            parts.push(format!("{label} {v}"));
        }
    }
    let (pod, uid) = (k("podName"), k("podUid"));
    if !pod.is_empty() {
        parts.push(format!("pod {pod} (uid {uid})"));
    }
    let node = k("nodeName");
    if !node.is_empty() {
        parts.push(format!("node {node}"));
    }
    parts.push(format!(
        "by {} from {}",
        match s("/userIdentity/arn") {
            "" => s("/userIdentity/principalId"),
            a => a,
        },
        s("/sourceIPAddress")
    ));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_names_the_pod_the_role_and_the_path() {
        let e = json!({
            "eventTime": "2026-12-06T10:00:00Z",
            "eventName": "AssumeRoleForPodIdentity",
            "sourceIPAddress": "10.0.0.5",
            "userIdentity": {"arn": "arn:aws:sts::1:assumed-role/node/i-1"},
            "responseElements": {
                "credentials": {"accessKeyId": "ASIAEXAMPLE", "expiration": "2026-12-06T16:00:00Z"},
                "assumedRoleUser": {"arn": "arn:aws:sts::1:assumed-role/app/eks-c-web"},
            },
            "additionalEventData": {"kubernetes": {
                "cluster": "c", "namespace": "ns", "serviceAccount": "sa",
                "podName": "web", "podUid": "u-1", "nodeName": "n1",
            }},
        });
        let line = describe(&e);
        for want in [
            "issued ASIAEXAMPLE",
            "assumed-role/app/eks-c-web",
            "cluster c",
            "namespace ns",
            "service account sa",
            "pod web (uid u-1)",
            "node n1",
            "AssumeRoleForPodIdentity",
            "10.0.0.5",
        ] {
            assert!(line.contains(want), "{want} missing from {line}");
        }
        let refused = json!({"eventName": "AssumeRoleWithWebIdentity", "errorCode": "AccessDenied", "requestParameters": {"roleArn": "arn:aws:iam::1:role/r"}});
        let line = describe(&refused);
        assert!(
            line.contains("refused: AccessDenied") && line.contains("role arn:aws:iam::1:role/r"),
            "{line}"
        );
    }
}
