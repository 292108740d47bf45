//! One event in CloudTrail's record shape (`eventVersion` 1.09), built from what the HTTP layer
//! saw of a request and the [`FactsInner`] the services noted, with the rows the store keeps
//! for `LookupEvents`.

use std::net::IpAddr;

use podiam_store::AuditRow;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{FactsInner, Identity, KubeFacts};
use crate::auth::{Caller, iso8601};

/// The resource type of a pod named in an event (a podiam extension: CloudTrail has none).
pub const POD_RESOURCE_TYPE: &str = "podiam::Kubernetes::Pod";
/// The resource type of an access key (IAM's, as CloudTrail names it): the store's
/// `AccessKeyId` lookup finds the events that issued a key by it.
pub use podiam_store::ISSUED_KEY_TYPE as ACCESS_KEY_RESOURCE_TYPE;

/// What the HTTP layer knows of a request.
#[derive(Debug)]
pub struct EventInput<'a> {
    /// When it was answered, milliseconds since the epoch.
    pub time_ms: i64,
    /// The event id (a UUIDv7, so ids sort by time).
    pub event_id: String,
    /// `sts.amazonaws.com`, ...
    pub event_source: &'static str,
    /// The API action.
    pub event_name: &'a str,
    /// `AwsApiCall` or `AwsServiceEvent`.
    pub event_type: &'static str,
    /// The region podiam answers as.
    pub region: &'a str,
    /// The peer.
    pub source_ip: Option<IpAddr>,
    /// The `User-Agent` header.
    pub user_agent: &'a str,
    /// `x-amzn-RequestId`.
    pub request_id: &'a str,
    /// Whether the action only reads.
    pub read_only: bool,
    /// The request's parameters, without secrets.
    pub request_parameters: Option<Value>,
    /// The error answered: AWS code and message.
    pub error: Option<(&'static str, String)>,
    /// Resources the request named (type, name), beyond those of the facts.
    pub resources: Vec<(String, String)>,
    /// The caller's or the resource's account when the facts know neither (a refused token's
    /// role ARN).
    pub fallback_account: Option<String>,
    /// What the services noted.
    pub facts: FactsInner,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    user_identity: Value,
    event_time: String,
    event_source: &'static str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: String,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    request_parameters: &'a Option<Value>,
    response_elements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<Value>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<Value>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
}

/// A built event: the JSON record, and the store rows (one per account that sees it).
#[derive(Debug)]
pub struct Built {
    /// The CloudTrail record, one line of JSON.
    pub json: String,
    /// One row per account the event is visible to (none when no account is known).
    pub rows: Vec<AuditRow>,
    /// Whether credentials were issued (what `--audit-required` waits for).
    pub issued: bool,
    /// A refusal of a request no signature vouches for (a token anyone may send): such events
    /// are rate-limited, so that anonymous callers cannot fill the store.
    pub anonymous_refusal: bool,
}

/// Whether a request's event is a refusal no signature vouches for (a token anyone may send):
/// such events are kept smaller and rate-limited, so that anonymous callers cannot fill the
/// store.
pub fn is_anonymous_refusal(f: &FactsInner, refused: bool) -> bool {
    refused && !matches!(f.identity, Some(Identity::Caller { .. }))
}

/// Build the event.
pub fn build(input: EventInput<'_>) -> Built {
    let f = &input.facts;
    let (user_identity, username, signing_key) = user_identity(f.identity.as_ref());
    let caller_account = f.identity.as_ref().and_then(Identity::account);
    let recipient = f
        .resource_account
        .as_deref()
        .or(caller_account)
        .or(input.fallback_account.as_deref())
        .unwrap_or_default()
        .to_owned();
    let mut resources: Vec<(String, String)> = Vec::new();
    if let Some(i) = &f.issued {
        resources.push(("AWS::IAM::Role".into(), i.role_arn.clone()));
        resources.push((ACCESS_KEY_RESOURCE_TYPE.into(), i.access_key_id.clone()));
    }
    if let Some(k) = &f.created_key {
        resources.push((ACCESS_KEY_RESOURCE_TYPE.into(), k.clone()));
    }
    if let Some(k) = &f.kube {
        if let Some(c) = &k.cluster {
            resources.push(("AWS::EKS::Cluster".into(), c.clone()));
        }
        if let (Some(ns), Some(pod)) = (&k.namespace, &k.pod_name) {
            resources.push((POD_RESOURCE_TYPE.into(), format!("{ns}/{pod}")));
        }
    }
    for r in input.resources {
        if !resources.contains(&r) {
            resources.push(r);
        }
    }
    let response_elements = response_elements(f);
    let additional = additional_data(f);
    let record = Record {
        event_version: "1.09",
        user_identity,
        event_time: iso8601(input.time_ms.div_euclid(1000)),
        event_source: input.event_source,
        event_name: input.event_name,
        aws_region: input.region,
        source_ip_address: input
            .source_ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        user_agent: input.user_agent,
        error_code: input.error.as_ref().map(|e| e.0),
        error_message: input.error.as_ref().map(|e| e.1.as_str()),
        request_parameters: &input.request_parameters,
        response_elements,
        additional_event_data: additional,
        request_id: input.request_id,
        event_id: &input.event_id,
        read_only: input.read_only,
        resources: resources
            .iter()
            .map(|(t, n)| json!({"type": t, "ARN": n, "accountId": recipient}))
            .collect(),
        event_type: input.event_type,
        management_event: true,
        recipient_account_id: &recipient,
        event_category: "Management",
    };
    let json = serde_json::to_string(&record).unwrap_or_default();
    let mut accounts: Vec<&str> = Vec::with_capacity(2);
    for a in [caller_account, Some(recipient.as_str())]
        .into_iter()
        .flatten()
    {
        if !a.is_empty() && !accounts.contains(&a) {
            accounts.push(a);
        }
    }
    let rows = accounts
        .iter()
        .map(|a| AuditRow {
            account: (*a).to_owned(),
            event_id: input.event_id.clone(),
            event_time_ms: input.time_ms,
            event_name: input.event_name.to_owned(),
            event_source: input.event_source.to_owned(),
            username: username.clone(),
            access_key_id: signing_key.clone(),
            read_only: input.read_only,
            resources: resources.clone(),
            record: json.clone(),
        })
        .collect();
    Built {
        json,
        rows,
        issued: (f.issued.is_some() || f.created_key.is_some()) && input.error.is_none(),
        anonymous_refusal: is_anonymous_refusal(f, input.error.is_some()),
    }
}

/// `userIdentity`, the lookup user name, and the access key id that signed.
fn user_identity(id: Option<&Identity>) -> (Value, String, String) {
    match id {
        None => (json!({"type": "Unknown"}), String::new(), String::new()),
        Some(Identity::Unknown { access_key_id }) => {
            let mut v = json!({"type": "Unknown"});
            if let (Some(k), Some(o)) = (access_key_id, v.as_object_mut()) {
                o.insert("accessKeyId".into(), json!(k));
            }
            (v, String::new(), access_key_id.clone().unwrap_or_default())
        }
        Some(Identity::WebIdentity {
            provider,
            subject,
            audience,
            ..
        }) => (
            json!({
                "type": "WebIdentityUser",
                "principalId": format!("{provider}:{audience}:{subject}"),
                "userName": subject,
                "identityProvider": provider,
            }),
            subject.clone(),
            String::new(),
        ),
        Some(Identity::Principal { kind, arn, account }) => {
            let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
            (
                json!({"type": kind, "arn": arn, "accountId": account}),
                name,
                String::new(),
            )
        }
        Some(Identity::Caller {
            caller,
            access_key_id,
        }) => {
            let v = match caller {
                Caller::Root { account } => json!({
                    "type": "Root",
                    "principalId": account,
                    "arn": caller.arn(),
                    "accountId": account,
                    "accessKeyId": access_key_id,
                }),
                Caller::User { account, user } => json!({
                    "type": "IAMUser",
                    "principalId": user.id,
                    "arn": caller.arn(),
                    "accountId": account,
                    "accessKeyId": access_key_id,
                    "userName": user.name,
                }),
                Caller::Session(c) => {
                    let mut context = json!({
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": c.role_id,
                            "arn": c.role_arn(),
                            "accountId": c.account,
                            "userName": c.role_name,
                        },
                        "attributes": {
                            "creationDate": iso8601(c.issued),
                            "mfaAuthenticated": "false",
                        },
                    });
                    if let (Some(p), Some(o)) = (&c.federated_provider, context.as_object_mut()) {
                        o.insert(
                            "webIdFederationData".into(),
                            json!({"federatedProvider": p, "attributes": {}}),
                        );
                    }
                    if let (Some(s), Some(o)) = (&c.source_identity, context.as_object_mut()) {
                        o.insert("sourceIdentity".into(), json!(s));
                    }
                    json!({
                        "type": "AssumedRole",
                        "principalId": c.user_id(),
                        "arn": c.arn(),
                        "accountId": c.account,
                        "accessKeyId": access_key_id,
                        "sessionContext": context,
                    })
                }
            };
            let name = match caller {
                Caller::Root { .. } => "root".to_owned(),
                Caller::User { user, .. } => user.name.clone(),
                Caller::Session(c) => c.session_name.clone(),
            };
            (v, name, access_key_id.clone())
        }
    }
}

fn response_elements(f: &FactsInner) -> Option<Value> {
    let mut m = Map::new();
    if let Some(i) = &f.issued {
        m.insert(
            "credentials".into(),
            json!({"accessKeyId": i.access_key_id, "expiration": iso8601(i.expiration)}),
        );
        m.insert(
            "assumedRoleUser".into(),
            json!({"assumedRoleId": i.assumed_role_id, "arn": i.assumed_role_arn}),
        );
    }
    for (k, v) in &f.response {
        m.insert(k.clone(), v.clone());
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn additional_data(f: &FactsInner) -> Option<Value> {
    let mut m = Map::new();
    if let Some(k) = &f.kube {
        m.insert("kubernetes".into(), kube_json(k));
    }
    if let Some(Identity::WebIdentity { verified, .. }) = &f.identity {
        m.insert("tokenVerified".into(), json!(verified));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn kube_json(k: &KubeFacts) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(key.into(), json!(v));
        }
    };
    put("cluster", &k.cluster);
    put("namespace", &k.namespace);
    put("serviceAccount", &k.service_account);
    put("podName", &k.pod_name);
    put("podUid", &k.pod_uid);
    put("nodeName", &k.node_name);
    put("tokenJti", &k.jti);
    Value::Object(m)
}
