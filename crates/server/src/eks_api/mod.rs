//! EKS (rest-json) and podiam's own signed extensions under `/podiam/`.

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use podiam_control::issuer::TokenRequest;
use podiam_control::pod_identity::{CreateAssociation, UpdateAssociation};
use podiam_control::{AwsError, ErrorCode, model};
use serde_json::{Value, json};

mod access;

use crate::wire::model as wire_model;
use crate::wire::restjson::{self, Service, epoch};
use crate::{App, Incoming};

pub(crate) async fn handle(app: &App, inc: Incoming) -> Response {
    let rid = inc.meta.request_id.clone();
    let service = service_of(&inc.path);
    match route(app, &inc).await {
        Ok(v) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => error(&e, service, &rid),
    }
}

/// Which service a path belongs to: EKS Auth's one operation, or EKS (and podiam's extensions).
fn service_of(path: &str) -> Service {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["clusters", _, "assume-role-for-pod-identity"] => Service::EksAuth,
        _ => Service::Eks,
    }
}

/// A rest-json error response, in `service`'s names.
pub(crate) fn error(e: &AwsError, service: Service, rid: &str) -> Response {
    let (wire, body) = restjson::error(e, service);
    if !wire.is_sender() {
        tracing::error!(code = %e.code, request_id = rid, "internal error");
    }
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (status, [("content-type", "application/json")], body).into_response();
    r.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(wire.name));
    crate::metrics::mark_error(&mut r, e);
    r
}

fn json_body(inc: &Incoming) -> Result<Value, AwsError> {
    if inc.body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&inc.body).map_err(|e| {
        AwsError::invalid_parameter(format!("the request body is not valid JSON: {e}"))
    })?;
    if !v.is_object() {
        return Err(AwsError::invalid_parameter(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

fn query_param(inc: &Incoming, name: &str) -> Option<String> {
    form_urlencoded::parse(inc.query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `maxResults` query parameter, if given: an integer (its range is the operation's to
/// check).
fn max_results(inc: &Incoming) -> Result<Option<i64>, AwsError> {
    query_param(inc, "maxResults")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| AwsError::invalid_parameter("maxResults must be an integer"))
        })
        .transpose()
}

fn decode_segment(s: &str) -> Result<String, AwsError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| AwsError::invalid_parameter("path segment is not valid UTF-8"))
}

/// The model's constraints on a served operation's labels, query string and body members,
/// checked before anything is read or written. The checks look at the request alone and reveal
/// nothing of the account, so they need not wait for the caller to be authenticated.
fn check_model(inc: &Incoming) -> Result<(), AwsError> {
    let Some((op, raw)) = wire_model::rest_operation(inc.method.as_str(), &inc.path) else {
        return Ok(());
    };
    let labels = raw
        .into_iter()
        .map(|(l, v)| decode_segment(v).map(|v| (l, v)))
        .collect::<Result<Vec<_>, _>>()?;
    let query: Vec<(String, String)> = form_urlencoded::parse(inc.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    wire_model::check_rest(op, &labels, &query, &json_body(inc)?)
}

async fn route(app: &App, inc: &Incoming) -> Result<Value, AwsError> {
    let c = &app.control;
    check_model(inc)?;
    let segs: Vec<&str> = inc.path.trim_matches('/').split('/').collect();
    if let Some(answer) = access::route(app, inc, &segs).await {
        return answer;
    }
    match (&inc.method, segs.as_slice()) {
        (&Method::POST, ["clusters"]) => {
            let caller = inc.caller(app, "eks")?;
            let cl = c
                .create_cluster(&caller, &inc.meta, &json_body(inc)?)
                .await?;
            Ok(json!({ "cluster": cluster_json(app, caller.account(), &cl) }))
        }
        (&Method::GET, ["clusters"]) => {
            let caller = inc.caller(app, "eks")?;
            let max = max_results(inc)?;
            let (names, next) = c.list_clusters(
                &caller,
                &inc.meta,
                max,
                query_param(inc, "nextToken").as_deref(),
            )?;
            Ok(json!({ "clusters": names, "nextToken": next }))
        }
        (&Method::GET, ["clusters", name]) => {
            let caller = inc.caller(app, "eks")?;
            let cl = c.describe_cluster(&caller, &inc.meta, &decode_segment(name)?)?;
            Ok(json!({ "cluster": cluster_json(app, caller.account(), &cl) }))
        }
        (&Method::DELETE, ["clusters", name]) => {
            let caller = inc.caller(app, "eks")?;
            let cl = c
                .delete_cluster(&caller, &inc.meta, &decode_segment(name)?)
                .await?;
            let mut v = cluster_json(app, caller.account(), &cl);
            if let Some(o) = v.as_object_mut() {
                o.insert("status".into(), json!("DELETING"));
            }
            Ok(json!({ "cluster": v }))
        }
        // --- EKS Pod Identity associations ---
        (&Method::POST, ["clusters", name, "pod-identity-associations"]) => {
            let caller = inc.caller(app, "eks")?;
            let b = json_body(inc)?;
            let input = CreateAssociation {
                namespace: req_str(&b, "namespace")?,
                service_account: req_str(&b, "serviceAccount")?,
                role_arn: req_str(&b, "roleArn")?,
                target_role_arn: opt_str(&b, "targetRoleArn")?,
                disable_session_tags: opt_bool(&b, "disableSessionTags")?.unwrap_or(false),
                policy: opt_str(&b, "policy")?,
                tags: tag_map(b.get("tags"))?,
                client_request_token: opt_str(&b, "clientRequestToken")?,
            };
            let a = c
                .create_pod_identity_association(&caller, &inc.meta, &decode_segment(name)?, input)
                .await?;
            Ok(json!({ "association": association_json(app, caller.account(), &a) }))
        }
        (&Method::GET, ["clusters", name, "pod-identity-associations"]) => {
            let caller = inc.caller(app, "eks")?;
            let max = max_results(inc)?;
            let (list, next) = c.list_pod_identity_associations(
                &caller,
                &inc.meta,
                &decode_segment(name)?,
                query_param(inc, "namespace").as_deref(),
                query_param(inc, "serviceAccount").as_deref(),
                max,
                query_param(inc, "nextToken").as_deref(),
            )?;
            let items: Vec<Value> = list
                .iter()
                .map(|a| {
                    let mut v = json!({
                        "clusterName": a.cluster,
                        "namespace": a.namespace,
                        "serviceAccount": a.service_account,
                        "associationArn": c.association_arn(caller.account(), &a.cluster, &a.id),
                        "associationId": a.id,
                    });
                    if let (Some(o), Some(owner)) = (v.as_object_mut(), &a.owner_arn) {
                        o.insert("ownerArn".into(), json!(owner));
                    }
                    v
                })
                .collect();
            let mut out = json!({ "associations": items });
            if let (Some(o), Some(n)) = (out.as_object_mut(), next) {
                o.insert("nextToken".into(), json!(n));
            }
            Ok(out)
        }
        (&Method::GET, ["clusters", name, "pod-identity-associations", id]) => {
            let caller = inc.caller(app, "eks")?;
            let a = c.describe_pod_identity_association(
                &caller,
                &inc.meta,
                &decode_segment(name)?,
                &decode_segment(id)?,
            )?;
            Ok(json!({ "association": association_json(app, caller.account(), &a) }))
        }
        (&Method::POST, ["clusters", name, "pod-identity-associations", id]) => {
            let caller = inc.caller(app, "eks")?;
            let b = json_body(inc)?;
            let input = UpdateAssociation {
                role_arn: opt_str(&b, "roleArn")?,
                target_role_arn: opt_str(&b, "targetRoleArn")?,
                disable_session_tags: opt_bool(&b, "disableSessionTags")?,
                policy: opt_str(&b, "policy")?,
                client_request_token: opt_str(&b, "clientRequestToken")?,
            };
            let a = c
                .update_pod_identity_association(
                    &caller,
                    &inc.meta,
                    &decode_segment(name)?,
                    &decode_segment(id)?,
                    input,
                )
                .await?;
            Ok(json!({ "association": association_json(app, caller.account(), &a) }))
        }
        (&Method::DELETE, ["clusters", name, "pod-identity-associations", id]) => {
            let caller = inc.caller(app, "eks")?;
            let a = c
                .delete_pod_identity_association(
                    &caller,
                    &inc.meta,
                    &decode_segment(name)?,
                    &decode_segment(id)?,
                )
                .await?;
            Ok(json!({ "association": association_json(app, caller.account(), &a) }))
        }
        // --- EKS Auth ---
        (&Method::POST, ["clusters", name, "assume-role-for-pod-identity"]) => {
            let caller = inc.caller(app, "eks-auth")?;
            let b = json_body(inc)?;
            let token = req_str(&b, "token")?;
            for k in ["eksNodeName", "instanceId", "zone"] {
                opt_str(&b, k)?;
            }
            let r = c
                .assume_role_for_pod_identity(&caller, &inc.meta, &decode_segment(name)?, &token)
                .await?;
            Ok(json!({
                "subject": { "namespace": r.namespace, "serviceAccount": r.service_account },
                "audience": podiam_control::pod_identity::AUDIENCE,
                "podIdentityAssociation": { "associationArn": r.association_arn, "associationId": r.association_id },
                "assumedRoleUser": { "arn": r.assumed.arn, "assumeRoleId": r.assumed.assumed_role_id },
                "credentials": {
                    "sessionToken": r.assumed.credentials.session_token,
                    "secretAccessKey": r.assumed.credentials.secret_access_key,
                    "accessKeyId": r.assumed.credentials.access_key_id,
                    "expiration": r.assumed.credentials.expiration,
                },
            }))
        }
        // --- EKS tags (clusters and associations) ---
        (&Method::GET, ["tags", arn]) => {
            let caller = inc.caller(app, "eks")?;
            let tags = c.list_eks_tags(&caller, &inc.meta, &decode_segment(arn)?)?;
            Ok(json!({ "tags": tags }))
        }
        (&Method::POST, ["tags", arn]) => {
            let caller = inc.caller(app, "eks")?;
            let b = json_body(inc)?;
            let tags = tag_map(b.get("tags")).map_err(|e| AwsError::bad_request(e.message))?;
            c.change_eks_tags(&caller, &inc.meta, &decode_segment(arn)?, tags, vec![])
                .await?;
            Ok(json!({}))
        }
        (&Method::DELETE, ["tags", arn]) => {
            let caller = inc.caller(app, "eks")?;
            let keys: Vec<String> = form_urlencoded::parse(inc.query.as_bytes())
                .filter(|(k, _)| k == "tagKeys")
                .map(|(_, v)| v.into_owned())
                .collect();
            if keys.is_empty() {
                return Err(AwsError::bad_request("tagKeys is required"));
            }
            c.change_eks_tags(
                &caller,
                &inc.meta,
                &decode_segment(arn)?,
                Default::default(),
                keys,
            )
            .await?;
            Ok(json!({}))
        }
        // --- podiam extensions (signed as service "eks") ---
        (&Method::POST, ["podiam", "clusters", name, "token"]) => {
            let caller = inc.caller(app, "eks")?;
            let b = json_body(inc)?;
            let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
            let req = TokenRequest {
                namespace: s("namespace")
                    .ok_or_else(|| AwsError::invalid_parameter("namespace is required"))?,
                service_account: s("serviceAccount")
                    .ok_or_else(|| AwsError::invalid_parameter("serviceAccount is required"))?,
                audiences: match b.get("audiences") {
                    None => vec![],
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_owned).ok_or_else(|| {
                                AwsError::invalid_parameter("audiences must be strings")
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(AwsError::invalid_parameter("audiences must be a list")),
                },
                pod_name: s("podName"),
                pod_uid: s("podUid"),
                node_name: s("nodeName"),
                expiration: b.get("expirationSeconds").and_then(Value::as_i64),
            };
            let token =
                c.mint_service_account_token(&caller, &inc.meta, &decode_segment(name)?, &req)?;
            Ok(json!({ "token": token }))
        }
        (&Method::POST, ["podiam", "clusters", name, "issuer", "rotate"]) => {
            let caller = inc.caller(app, "eks")?;
            let (kid, active_from) = c
                .rotate_issuer_key(&caller, &inc.meta, &decode_segment(name)?)
                .await?;
            Ok(json!({ "kid": kid, "activeFrom": active_from }))
        }
        (&Method::GET, ["podiam", "clusters", name, "issuer"]) => {
            let caller = inc.caller(app, "eks")?;
            let x = c.export_issuer(&caller, &inc.meta, &decode_segment(name)?)?;
            Ok(json!({
                "issuer": x.issuer,
                "signingKeyPem": x.signing_key_pem,
                "publicKeysPem": x.public_keys_pem,
                "jwks": serde_json::from_str::<Value>(&x.jwks).unwrap_or(Value::Null),
            }))
        }
        (&Method::POST, ["podiam", "session-keys", "rotate"]) => {
            let caller = inc.caller(app, "iam")?;
            let (id, active_from) = c.rotate_session_key(&caller).await?;
            Ok(json!({ "keyId": id, "activeFrom": active_from }))
        }
        (&Method::GET, ["podiam", "session-keys"]) => {
            let caller = inc.caller(app, "iam")?;
            let keys = c.session_key_ids(&caller)?;
            Ok(
                json!({ "keys": keys.iter().map(|(id, from)| json!({"keyId": id, "activeFrom": from})).collect::<Vec<_>>() }),
            )
        }
        (&Method::POST, ["podiam", "session-keys", id, "retire"]) => {
            let caller = inc.caller(app, "iam")?;
            let id: u32 = id.parse().map_err(|_| {
                AwsError::invalid_input(format!("session key id {id:?} is not a number"))
            })?;
            let left = c.retire_session_key(&caller, id).await?;
            Ok(json!({ "retired": id, "keys": left }))
        }
        (&Method::POST, ["podiam", "roles", name, "revoke-sessions"]) => {
            let caller = inc.caller(app, "iam")?;
            let cutoff = c
                .revoke_role_sessions(&caller, &inc.meta, &decode_segment(name)?)
                .await?;
            Ok(json!({ "revokedBefore": cutoff }))
        }
        (&Method::POST, ["podiam", "explain"]) => {
            let caller = inc.caller(app, "iam")?;
            let b = json_body(inc)?;
            let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
            let mut context = Vec::new();
            if let Some(obj) = b.get("context").and_then(Value::as_object) {
                for (k, v) in obj {
                    let values = match v {
                        Value::Array(a) => a
                            .iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect(),
                        Value::String(x) => vec![x.clone()],
                        other => vec![other.to_string()],
                    };
                    context.push(podiam_control::simulate::ContextEntry {
                        name: k.clone(),
                        values,
                        kind: "stringList".into(),
                    });
                }
            }
            let input = podiam_control::simulate::SimulateInput {
                policy_source_arn: Some(
                    s("principalArn")
                        .ok_or_else(|| AwsError::invalid_parameter("principalArn is required"))?,
                ),
                actions: vec![
                    s("action").ok_or_else(|| AwsError::invalid_parameter("action is required"))?,
                ],
                resources: s("resource").into_iter().collect(),
                context,
                ..Default::default()
            };
            let r = c.simulate(&caller, &inc.meta, &input, true)?;
            let r = r.first().ok_or_else(AwsError::server_exception)?;
            Ok(json!({
                "decision": r.decision,
                "explanation": r.explanation,
                "matchedStatements": r.matched.iter().map(|m| json!({"policy": m.source_policy_id, "type": m.source_policy_type, "line": m.start.map(|p| p.line)})).collect::<Vec<_>>(),
                "missingContextValues": r.missing,
            }))
        }
        _ => Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("no operation {} {}", inc.method, inc.path),
        )),
    }
}

fn cluster_json(app: &App, account: &str, c: &model::Cluster) -> Value {
    let mut v = json!({
        "name": c.name,
        "arn": app.control.cluster_arn(account, &c.name),
        "createdAt": epoch(c.created_ms),
        "version": c.version,
        "endpoint": format!("https://{}.podiam.local", c.oidc_id),
        "roleArn": c.role_arn,
        "identity": { "oidc": { "issuer": c.issuer } },
        "status": "ACTIVE",
        "certificateAuthority": {},
        "platformVersion": "podiam.1",
        "tags": c.tags,
        "accessConfig": access::access_config_json(c),
    });
    if let (Some(o), Some(spec)) = (v.as_object_mut(), c.spec.as_object()) {
        for (k, val) in spec {
            o.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    v
}

fn req_str(b: &Value, k: &str) -> Result<String, AwsError> {
    opt_str(b, k)?.ok_or_else(|| AwsError::invalid_parameter(format!("{k} is required")))
}

fn opt_str(b: &Value, k: &str) -> Result<Option<String>, AwsError> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AwsError::invalid_parameter(format!("{k} must be a string"))),
    }
}

fn opt_bool(b: &Value, k: &str) -> Result<Option<bool>, AwsError> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(x)) => Ok(Some(*x)),
        Some(_) => Err(AwsError::invalid_parameter(format!(
            "{k} must be a boolean"
        ))),
    }
}

fn tag_map(v: Option<&Value>) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut out = std::collections::BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = v
                    .as_str()
                    .ok_or_else(|| AwsError::invalid_parameter("tag values must be strings"))?;
                out.insert(k.clone(), v.to_owned());
            }
        }
        Some(_) => return Err(AwsError::invalid_parameter("tags must be a map of strings")),
    }
    Ok(out)
}

fn association_json(app: &App, account: &str, a: &model::PodIdentityAssociation) -> Value {
    let mut v = json!({
        "clusterName": a.cluster,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "roleArn": a.role_arn,
        "associationArn": app.control.association_arn(account, &a.cluster, &a.id),
        "associationId": a.id,
        "tags": a.tags,
        "createdAt": epoch(a.created_ms),
        "modifiedAt": epoch(a.modified_ms),
        "disableSessionTags": a.disable_session_tags,
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = &a.target_role_arn {
            o.insert("targetRoleArn".into(), json!(t));
            // The target role's trust policy matches this with `sts:ExternalId`.
            o.insert("externalId".into(), json!(a.external_id));
        }
        if let Some(p) = &a.policy {
            o.insert("policy".into(), json!(p));
        }
        if let Some(owner) = &a.owner_arn {
            o.insert("ownerArn".into(), json!(owner));
        }
    }
    v
}
