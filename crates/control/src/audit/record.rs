//! One event in CloudTrail's record shape (`eventVersion` 1.09), built from what the HTTP layer
//! saw of a request and the [`FactsInner`] the services noted, with the rows the store keeps
//! for `LookupEvents`.

use std::borrow::Cow;
use std::net::IpAddr;

use podiam_store::AuditRow;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{FactsInner, Identity};
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

// The record is serialized from borrowed, typed parts (not built as a `serde_json::Value`): one
// event is built per credential issued, at the full rate of the credential paths.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    user_identity: UserIdentity<'a>,
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
    response_elements: Option<ResponseElements<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<AdditionalData<'a>>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    resources: &'a [Resource<'a>],
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
}

/// `userIdentity`, in CloudTrail's member order.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_context: Option<SessionContext<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext<'a> {
    session_issuer: SessionIssuer<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_id_federation_data: Option<WebIdFederationData<'a>>,
    attributes: SessionAttributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_identity: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionIssuer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    principal_id: &'a str,
    arn: String,
    account_id: &'a str,
    user_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebIdFederationData<'a> {
    federated_provider: &'a str,
    attributes: Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionAttributes {
    creation_date: String,
    mfa_authenticated: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseElements<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<CredentialNames<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assumed_role_user: Option<AssumedRoleUser<'a>>,
    #[serde(flatten)]
    rest: &'a Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialNames<'a> {
    access_key_id: &'a str,
    expiration: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssumedRoleUser<'a> {
    assumed_role_id: &'a str,
    arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes: Option<KubeData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_verified: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_jti: Option<&'a str>,
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(rename = "accountId")]
    account_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "ARN")]
    arn: &'a str,
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
    /// A refusal of a signed request: the caller it is counted against, whose refusals are
    /// rate-limited too.
    pub refused_by: Option<RefusedBy>,
}

/// The signed caller a refusal is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedBy {
    /// The caller's account.
    pub account: String,
    /// Its user's or root's ARN, or for a role session the role's: sessions are minted at will
    /// by whoever may assume the role, and must not each count apart.
    pub caller: String,
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
    let resource_list: Vec<Resource<'_>> = resources
        .iter()
        .map(|(t, n)| Resource {
            account_id: &recipient,
            kind: t,
            arn: n,
        })
        .collect();
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
        response_elements: response_elements(f),
        additional_event_data: additional_data(f),
        request_id: input.request_id,
        event_id: &input.event_id,
        read_only: input.read_only,
        resources: &resource_list,
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
        refused_by: match (&f.identity, &input.error) {
            (Some(Identity::Caller { caller, .. }), Some(_)) => Some(RefusedBy {
                account: caller.account().to_owned(),
                caller: match caller {
                    Caller::Session(c) => c.role_arn(),
                    Caller::Root { .. } | Caller::User { .. } => caller.arn(),
                },
            }),
            _ => None,
        },
    }
}

/// `userIdentity`, the lookup user name, and the access key id that signed.
fn user_identity(id: Option<&Identity>) -> (UserIdentity<'_>, String, String) {
    let unknown = UserIdentity {
        kind: "Unknown",
        ..UserIdentity::default()
    };
    match id {
        None => (unknown, String::new(), String::new()),
        Some(Identity::Unknown { access_key_id }) => (
            UserIdentity {
                access_key_id: access_key_id.as_deref(),
                ..unknown
            },
            String::new(),
            access_key_id.clone().unwrap_or_default(),
        ),
        Some(Identity::WebIdentity {
            provider,
            subject,
            audience,
            ..
        }) => (
            UserIdentity {
                kind: "WebIdentityUser",
                principal_id: Some(format!("{provider}:{audience}:{subject}").into()),
                user_name: Some(subject),
                identity_provider: Some(provider),
                ..UserIdentity::default()
            },
            subject.clone(),
            String::new(),
        ),
        Some(Identity::Principal { kind, arn, account }) => (
            UserIdentity {
                kind,
                arn: Some(arn.as_str().into()),
                account_id: Some(account),
                ..UserIdentity::default()
            },
            arn.rsplit('/').next().unwrap_or_default().to_owned(),
            String::new(),
        ),
        Some(Identity::Caller {
            caller,
            access_key_id,
        }) => {
            let base = UserIdentity {
                arn: Some(caller.arn().into()),
                access_key_id: Some(access_key_id),
                ..UserIdentity::default()
            };
            let (v, name) = match caller {
                Caller::Root { account } => (
                    UserIdentity {
                        kind: "Root",
                        principal_id: Some(account.as_str().into()),
                        account_id: Some(account),
                        ..base
                    },
                    "root".to_owned(),
                ),
                Caller::User { account, user } => (
                    UserIdentity {
                        kind: "IAMUser",
                        principal_id: Some(user.id.as_str().into()),
                        account_id: Some(account),
                        user_name: Some(&user.name),
                        ..base
                    },
                    user.name.clone(),
                ),
                Caller::Session(c) => (
                    UserIdentity {
                        kind: "AssumedRole",
                        principal_id: Some(c.user_id().into()),
                        account_id: Some(&c.account),
                        session_context: Some(SessionContext {
                            session_issuer: SessionIssuer {
                                kind: "Role",
                                principal_id: &c.role_id,
                                arn: c.role_arn(),
                                account_id: &c.account,
                                user_name: &c.role_name,
                            },
                            web_id_federation_data: c.federated_provider.as_deref().map(|p| {
                                WebIdFederationData {
                                    federated_provider: p,
                                    attributes: Map::new(),
                                }
                            }),
                            attributes: SessionAttributes {
                                creation_date: iso8601(c.issued),
                                mfa_authenticated: "false",
                            },
                            source_identity: c.source_identity.as_deref(),
                        }),
                        ..base
                    },
                    c.session_name.clone(),
                ),
            };
            (v, name, access_key_id.clone())
        }
    }
}

fn response_elements(f: &FactsInner) -> Option<ResponseElements<'_>> {
    if f.issued.is_none() && f.response.is_empty() {
        return None;
    }
    Some(ResponseElements {
        credentials: f.issued.as_ref().map(|i| CredentialNames {
            access_key_id: &i.access_key_id,
            expiration: iso8601(i.expiration),
        }),
        assumed_role_user: f.issued.as_ref().map(|i| AssumedRoleUser {
            assumed_role_id: &i.assumed_role_id,
            arn: &i.assumed_role_arn,
        }),
        rest: &f.response,
    })
}

fn additional_data(f: &FactsInner) -> Option<AdditionalData<'_>> {
    let kubernetes = f.kube.as_ref().map(|k| KubeData {
        cluster: k.cluster.as_deref(),
        namespace: k.namespace.as_deref(),
        service_account: k.service_account.as_deref(),
        pod_name: k.pod_name.as_deref(),
        pod_uid: k.pod_uid.as_deref(),
        node_name: k.node_name.as_deref(),
        token_jti: k.jti.as_deref(),
    });
    let token_verified = match &f.identity {
        Some(Identity::WebIdentity { verified, .. }) => Some(*verified),
        _ => None,
    };
    (kubernetes.is_some() || token_verified.is_some()).then_some(AdditionalData {
        kubernetes,
        token_verified,
    })
}
