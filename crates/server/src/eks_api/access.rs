//! EKS access entries, access policies and UpdateClusterConfig (rest-json): decode, call the
//! access service, encode.

use axum::http::Method;
use podiam_control::access::{AccessScope, CreateAccessEntry, UpdateAccessEntry};
use podiam_control::{AwsError, model};
use serde_json::{Value, json};

use super::{decode_segment, json_body, max_results, opt_str, query_param, req_str, tag_map};
use crate::wire::restjson::epoch;
use crate::{App, Incoming};

/// The answer to an access-entry request, or `None` when the path is none of them.
pub(crate) async fn route(
    app: &App,
    inc: &Incoming,
    segs: &[&str],
) -> Option<Result<Value, AwsError>> {
    let m = &inc.method;
    let known = matches!(
        (m, segs),
        (
            &Method::POST | &Method::GET,
            ["clusters", _, "access-entries"]
        ) | (
            &Method::GET | &Method::POST | &Method::DELETE,
            ["clusters", _, "access-entries", _]
        ) | (
            &Method::POST | &Method::GET,
            ["clusters", _, "access-entries", _, "access-policies"]
        ) | (
            &Method::DELETE,
            ["clusters", _, "access-entries", _, "access-policies", _]
        ) | (&Method::GET, ["access-policies"])
            | (&Method::POST, ["clusters", _, "update-config"])
    );
    if !known {
        return None;
    }
    Some(answer(app, inc, segs).await)
}

async fn answer(app: &App, inc: &Incoming, segs: &[&str]) -> Result<Value, AwsError> {
    let c = &app.control;
    let caller = inc.caller(app, "eks")?;
    let acct = caller.account().to_owned();
    let meta = &inc.meta;
    match (&inc.method, segs) {
        (&Method::POST, ["clusters", name, "access-entries"]) => {
            let b = json_body(inc)?;
            let input = CreateAccessEntry {
                principal_arn: req_str(&b, "principalArn")?,
                kubernetes_groups: str_list(&b, "kubernetesGroups")?.unwrap_or_default(),
                username: opt_str(&b, "username")?,
                kind: opt_str(&b, "type")?,
                tags: tag_map(b.get("tags"))?,
                client_request_token: opt_str(&b, "clientRequestToken")?,
            };
            let e = c
                .create_access_entry(&caller, meta, &decode_segment(name)?, input)
                .await?;
            Ok(json!({ "accessEntry": entry_json(app, &acct, &e) }))
        }
        (&Method::GET, ["clusters", name, "access-entries"]) => {
            let (list, next) = c.list_access_entries(
                &caller,
                meta,
                &decode_segment(name)?,
                query_param(inc, "associatedPolicyArn").as_deref(),
                max_results(inc)?,
                query_param(inc, "nextToken").as_deref(),
            )?;
            Ok(with_token(json!({ "accessEntries": list }), next))
        }
        (&Method::GET, ["clusters", name, "access-entries", p]) => {
            let e = c.describe_access_entry(
                &caller,
                meta,
                &decode_segment(name)?,
                &decode_segment(p)?,
            )?;
            Ok(json!({ "accessEntry": entry_json(app, &acct, &e) }))
        }
        (&Method::POST, ["clusters", name, "access-entries", p]) => {
            let b = json_body(inc)?;
            let input = UpdateAccessEntry {
                kubernetes_groups: str_list(&b, "kubernetesGroups")?,
                username: opt_str(&b, "username")?,
                client_request_token: opt_str(&b, "clientRequestToken")?,
            };
            let e = c
                .update_access_entry(
                    &caller,
                    meta,
                    &decode_segment(name)?,
                    &decode_segment(p)?,
                    input,
                )
                .await?;
            Ok(json!({ "accessEntry": entry_json(app, &acct, &e) }))
        }
        (&Method::DELETE, ["clusters", name, "access-entries", p]) => {
            c.delete_access_entry(&caller, meta, &decode_segment(name)?, &decode_segment(p)?)
                .await?;
            Ok(json!({}))
        }
        (&Method::POST, ["clusters", name, "access-entries", p, "access-policies"]) => {
            let b = json_body(inc)?;
            let policy = req_str(&b, "policyArn")?;
            let s = b
                .get("accessScope")
                .filter(|v| !v.is_null())
                .ok_or_else(|| AwsError::invalid_parameter("accessScope is required"))?;
            if !s.is_object() {
                return Err(AwsError::invalid_parameter("accessScope must be an object"));
            }
            let scope = AccessScope {
                kind: opt_str(s, "type")?
                    .ok_or_else(|| AwsError::invalid_parameter("accessScope.type is required"))?,
                namespaces: str_list(s, "namespaces")?.unwrap_or_default(),
            };
            let cluster = decode_segment(name)?;
            let (principal, a) = c
                .associate_access_policy(
                    &caller,
                    meta,
                    &cluster,
                    &decode_segment(p)?,
                    &policy,
                    &scope,
                )
                .await?;
            Ok(json!({
                "clusterName": cluster,
                "principalArn": principal,
                "associatedAccessPolicy": associated_json(&a),
            }))
        }
        (&Method::GET, ["clusters", name, "access-entries", p, "access-policies"]) => {
            let cluster = decode_segment(name)?;
            let (principal, list, next) = c.list_associated_access_policies(
                &caller,
                meta,
                &cluster,
                &decode_segment(p)?,
                max_results(inc)?,
                query_param(inc, "nextToken").as_deref(),
            )?;
            let items: Vec<Value> = list.iter().map(associated_json).collect();
            Ok(with_token(
                json!({
                    "clusterName": cluster,
                    "principalArn": principal,
                    "associatedAccessPolicies": items,
                }),
                next,
            ))
        }
        (
            &Method::DELETE,
            [
                "clusters",
                name,
                "access-entries",
                p,
                "access-policies",
                pol,
            ],
        ) => {
            c.disassociate_access_policy(
                &caller,
                meta,
                &decode_segment(name)?,
                &decode_segment(p)?,
                &decode_segment(pol)?,
            )
            .await?;
            Ok(json!({}))
        }
        (&Method::GET, ["access-policies"]) => {
            let (list, next) = c.list_access_policies(
                &caller,
                meta,
                max_results(inc)?,
                query_param(inc, "nextToken").as_deref(),
            )?;
            let items: Vec<Value> = list
                .iter()
                .map(|(n, a)| json!({ "name": n, "arn": a }))
                .collect();
            Ok(with_token(json!({ "accessPolicies": items }), next))
        }
        (&Method::POST, ["clusters", name, "update-config"]) => {
            let u = c
                .update_cluster_config(&caller, meta, &decode_segment(name)?, &json_body(inc)?)
                .await?;
            Ok(json!({ "update": {
                "id": u.id,
                "status": "Successful",
                "type": u.kind,
                "params": u.params.iter().map(|(t, v)| json!({ "type": t, "value": v })).collect::<Vec<_>>(),
                "createdAt": epoch(u.created_ms),
                "errors": [],
            }}))
        }
        _ => Err(AwsError::invalid_parameter(
            "no such access-entry operation",
        )),
    }
}

/// A cluster's `accessConfig` as DescribeCluster shows it.
pub(crate) fn access_config_json(c: &model::Cluster) -> Value {
    json!({
        "bootstrapClusterCreatorAdminPermissions": c.access_config.bootstrap_creator_admin,
        "authenticationMode": c.access_config.authentication_mode,
    })
}

fn entry_json(app: &App, account: &str, e: &model::AccessEntry) -> Value {
    json!({
        "clusterName": e.cluster,
        "principalArn": e.principal_arn,
        "kubernetesGroups": e.kubernetes_groups,
        "accessEntryArn": app.control.access_entry_arn(account, e),
        "createdAt": epoch(e.created_ms),
        "modifiedAt": epoch(e.modified_ms),
        "tags": e.tags,
        "username": e.username,
        "type": e.kind,
    })
}

fn associated_json(a: &model::AssociatedAccessPolicy) -> Value {
    let mut scope = json!({ "type": a.scope });
    if let Some(o) = scope.as_object_mut()
        && a.scope == "namespace"
    {
        o.insert("namespaces".into(), json!(a.namespaces));
    }
    json!({
        "policyArn": a.policy_arn,
        "accessScope": scope,
        "associatedAt": epoch(a.associated_ms),
        "modifiedAt": epoch(a.modified_ms),
    })
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let (Some(o), Some(n)) = (v.as_object_mut(), next) {
        o.insert("nextToken".into(), json!(n));
    }
    v
}

/// An optional list of strings.
fn str_list(b: &Value, k: &str) -> Result<Option<Vec<String>>, AwsError> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    AwsError::invalid_parameter(format!("{k} must be a list of strings"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(AwsError::invalid_parameter(format!(
            "{k} must be a list of strings"
        ))),
    }
}
