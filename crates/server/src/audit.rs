//! Each answered request that the audit trail keeps becomes one CloudTrail-shaped event: every
//! credential issued or refused, every Kubernetes token review, every call that changes
//! something, and every AccessDenied. Read-only calls that succeed are not kept (CloudTrail's
//! event history keeps them; podiam keeps the trail small enough to answer "who had this key").
//!
//! The request's parameters are recorded without secrets: web identity and service-account
//! tokens, passwords and presigning parameters are left out, and no response body is copied:
//! the services note what the event may show ([`podiam_control::audit::FactsInner`]).

use std::net::IpAddr;

use axum::body::Bytes;
use axum::http::Method;
use axum::response::Response;
use podiam_control::audit::record::{self, EventInput};
use podiam_control::audit::{Enqueued, Facts};
use podiam_control::{AwsError, ErrorCode, Protocol};
use serde_json::{Map, Value};

use crate::App;
use crate::metrics::{AnsweredError, CREDENTIAL_PATHS};

/// What the HTTP layer keeps of a request for its event.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Bytes,
    pub user_agent: String,
    pub source_ip: Option<IpAddr>,
}

/// Longest string value kept in `requestParameters` (policy documents can be 128 KiB).
const MAX_VALUE_CHARS: usize = 8192;
/// Largest `requestParameters` kept whole, serialized; beyond it only the names are kept (a
/// query request may carry 1,000 parameters).
const MAX_PARAMETERS_BYTES: usize = 32 * 1024;
/// Largest `requestParameters` of an anonymous refusal, serialized.
const MAX_ANONYMOUS_PARAMETERS_BYTES: usize = 1024;
/// Longest user agent of an anonymous refusal kept.
const MAX_ANONYMOUS_AGENT_CHARS: usize = 256;
/// Longest `errorMessage` kept (messages may quote what the caller sent).
const MAX_MESSAGE_CHARS: usize = 1024;

fn bounded(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}...(truncated)")
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `requestParameters` no larger than `max` bytes serialized: past it, the parameter names
/// (as many as fit).
fn bounded_parameters(v: Value, max: usize) -> Value {
    let mut size = ByteCount(0);
    if serde_json::to_writer(&mut size, &v).is_ok() && size.0 <= max {
        return v;
    }
    let mut room = max.saturating_sub(64);
    let names: Vec<Value> = v
        .as_object()
        .map(|o| {
            o.keys()
                .take(100)
                .map(|k| bounded(k.clone(), 128))
                .take_while(|k| {
                    let fits = k.len() + 3 <= room;
                    room = room.saturating_sub(k.len() + 3);
                    fits
                })
                .map(Value::String)
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({"podiam:truncated": true, "parameterNames": names})
}

/// Query parameters never recorded: credentials, and the request's own plumbing.
const SECRET_QUERY_PARAMS: &[&str] = &[
    "WebIdentityToken",
    "SAMLAssertion",
    "Password",
    "NewPassword",
    "OldPassword",
    "Action",
    "Version",
];

/// The event source and error naming of a protocol label; `None` for what is not an API call.
fn source(protocol: &str) -> Option<(&'static str, Protocol)> {
    Some(match protocol {
        "sts" => ("sts.amazonaws.com", Protocol::Query),
        "iam" => ("iam.amazonaws.com", Protocol::Query),
        "eks" | "podiam" => ("eks.amazonaws.com", Protocol::Eks),
        "eks-auth" | "pod-identity-direct" => ("eks-auth.amazonaws.com", Protocol::EksAuth),
        "cloudtrail" => ("cloudtrail.amazonaws.com", Protocol::CloudTrail),
        _ => return None,
    })
}

fn read_only(action: &str) -> bool {
    ["Get", "List", "Describe", "Lookup", "Simulate"]
        .iter()
        .any(|p| action.starts_with(p))
        || action == "Explain"
}

/// Whether the event of this answer is kept. Authorization reviews (one per Kubernetes
/// request) are not: their decisions follow from the access entries, whose changes are kept.
fn kept(action: &str, read_only: bool, error: Option<&AnsweredError>) -> bool {
    !matches!(action, "other" | "SubjectAccessReview")
        && (CREDENTIAL_PATHS.contains(&action)
            || matches!(action, "TokenReview" | "CreateToken")
            || !read_only
            || error.is_some_and(|e| e.code == ErrorCode::AccessDenied))
}

/// Build and queue the event of an answered request. Returns a replacement response when the
/// answer carries credentials whose event could not be written under `--audit-required`.
pub(crate) async fn record(
    app: &App,
    (protocol_label, action): (&'static str, &'static str),
    error: Option<AnsweredError>,
    success: bool,
    facts: &Facts,
    mut seen: Seen,
    request_id: &str,
) -> Option<Response> {
    let sink = app.control.audit()?;
    let (event_source, protocol) = source(protocol_label)?;
    // Direct mode switched off answers 404 like any unknown path.
    if action == "PodIdentityDirect" && !app.options.direct_pod_identity {
        return None;
    }
    let ro = read_only(action) && !CREDENTIAL_PATHS.contains(&action);
    if !kept(action, ro, error.as_ref()) {
        return None;
    }
    let f = facts.take();
    let error = match (&f.error, error) {
        (Some((c, m)), _) => Some((*c, m.clone())),
        (None, Some(e)) => Some((e.code.wire(protocol).name, e.message)),
        (None, None) => None,
    }
    .map(|(c, m)| (c, bounded(m, MAX_MESSAGE_CHARS)));
    // A refusal no signature vouches for is kept small: its caller chose every byte of it.
    let anonymous = record::is_anonymous_refusal(&f, error.is_some());
    let (max_params, max_agent) = if anonymous {
        (MAX_ANONYMOUS_PARAMETERS_BYTES, MAX_ANONYMOUS_AGENT_CHARS)
    } else {
        (MAX_PARAMETERS_BYTES, usize::MAX)
    };
    let params =
        request_parameters(protocol_label, &seen).map(|v| bounded_parameters(v, max_params));
    let user_agent = if seen.user_agent.len() > max_agent {
        bounded(std::mem::take(&mut seen.user_agent), max_agent)
    } else {
        std::mem::take(&mut seen.user_agent)
    };
    let resources = params.as_ref().map(named_resources).unwrap_or_default();
    let now_ms = app.control.now_ms();
    let input = EventInput {
        time_ms: now_ms,
        event_id: event_id(now_ms),
        event_source,
        event_name: action,
        event_type: if action == "TokenReview" {
            "AwsServiceEvent"
        } else {
            "AwsApiCall"
        },
        region: &app.control.config.region,
        source_ip: seen.source_ip,
        user_agent: &user_agent,
        request_id,
        read_only: ro,
        request_parameters: params,
        error,
        resources,
        fallback_account: None,
        facts: f,
    };
    let mut built = record::build(input);
    // A service-account token podiam mints is a credential too: waited for like the others.
    built.issued |= success && action == "CreateToken";
    let issuing = built.issued || CREDENTIAL_PATHS.contains(&action);
    // Only this installation's accounts get rows: an anonymous caller names any account id
    // it likes in a role ARN, and must not make the store keep events for accounts that do not
    // exist (those events are in the log only).
    built.rows.retain(|r| app.control.has_account(&r.account));
    match sink.submit(built) {
        Enqueued::Queued => None,
        Enqueued::Wait(rx) => match rx.await {
            Ok(true) => None,
            _ => Some(withheld(protocol_label, request_id)),
        },
        Enqueued::Dropped if sink.required() && success => {
            issuing.then(|| withheld(protocol_label, request_id))
        }
        Enqueued::Dropped => None,
    }
}

/// The answer that replaces credentials whose event could not be written.
fn withheld(protocol: &str, request_id: &str) -> Response {
    let e = AwsError::service_unavailable(
        "the audit trail cannot record this request now; no credentials were issued; try again",
    );
    match protocol {
        "sts" => crate::query_api::render_error(&e, crate::wire::xml::STS_NS, request_id),
        "iam" => crate::query_api::render_error(&e, crate::wire::xml::IAM_NS, request_id),
        "pod-identity-direct" => crate::container_api::agent_error(&e, request_id),
        "eks" | "podiam" => {
            crate::eks_api::error(&e, crate::wire::restjson::Service::Eks, request_id)
        }
        _ => crate::eks_api::error(&e, crate::wire::restjson::Service::EksAuth, request_id),
    }
}

/// A UUIDv7 of `now_ms`: ids sort by time. Its 74 random bits come from the thread's
/// user-space generator (`uuid`'s own asks the kernel, a system call per event).
fn event_id(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or_default();
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(ms, &random)
        .into_uuid()
        .to_string()
}

/// `requestParameters`: the query protocol's parameters as CloudTrail's camel-case JSON, or a
/// rest-json body with the path's names; secrets left out.
pub(crate) fn request_parameters(protocol: &str, seen: &Seen) -> Option<Value> {
    match protocol {
        "sts" | "iam" => {
            let source: &[u8] = if seen.method == Method::GET {
                seen.query.as_bytes()
            } else {
                &seen.body
            };
            Some(query_json(source))
        }
        "eks" | "eks-auth" | "podiam" | "cloudtrail" => {
            let mut m = match serde_json::from_slice::<Value>(&seen.body) {
                Ok(Value::Object(m)) if !seen.path.ends_with("/authenticate") => m,
                _ => Map::new(),
            };
            strip_secrets(&mut m);
            path_names(&seen.path, &mut m);
            for v in m.values_mut() {
                cap(v);
            }
            (!m.is_empty()).then_some(Value::Object(m))
        }
        _ => None,
    }
}

/// Most query parameters read into an event (IAM's largest requests carry a few hundred).
const MAX_QUERY_PARAMS: usize = 1000;
/// Most name parts of one query parameter (`Tags.member.1.Key` has four).
const MAX_QUERY_DEPTH: usize = 8;

/// A query parameter tree as it is read: lists are kept sparse (by index), so that a caller
/// naming index 999 costs one node, not a thousand.
enum Node {
    Leaf(String),
    Map(std::collections::BTreeMap<String, Node>),
    List(std::collections::BTreeMap<u64, Node>),
}

impl Node {
    fn child(&mut self, part: &str) -> &mut Node {
        if let Ok(i) = part.parse::<u64>() {
            if !matches!(self, Node::List(_)) {
                *self = Node::List(std::collections::BTreeMap::new());
            }
            let Node::List(l) = self else {
                unreachable!("made a list above")
            };
            l.entry(i).or_insert(Node::Leaf(String::new()))
        } else {
            if !matches!(self, Node::Map(_)) {
                *self = Node::Map(std::collections::BTreeMap::new());
            }
            let Node::Map(m) = self else {
                unreachable!("made a map above")
            };
            m.entry(camel(part)).or_insert(Node::Leaf(String::new()))
        }
    }

    /// Lists in index order, without gaps.
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => {
                let mut v = Value::String(s);
                cap(&mut v);
                v
            }
            Node::Map(m) => {
                Value::Object(m.into_iter().map(|(k, n)| (k, n.into_value())).collect())
            }
            Node::List(l) => Value::Array(l.into_values().map(Node::into_value).collect()),
        }
    }
}

/// JSON members never recorded, at any depth, compared without case: tokens and secrets.
const SECRET_JSON_MEMBERS: &[&str] = &[
    "token",
    "webIdentityToken",
    "sessionToken",
    "secretAccessKey",
    "password",
];

fn strip_secrets(m: &mut Map<String, Value>) {
    m.retain(|k, _| {
        !SECRET_JSON_MEMBERS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(k))
    });
    for v in m.values_mut() {
        strip_value(v);
    }
}

fn strip_value(v: &mut Value) {
    match v {
        Value::Object(o) => strip_secrets(o),
        Value::Array(a) => a.iter_mut().for_each(strip_value),
        _ => {}
    }
}

/// `Tags.member.1.Key=k` → `{"tags": [{"key": "k"}]}`; names camel-cased as CloudTrail
/// writes them. At most [`MAX_QUERY_PARAMS`] parameters of [`MAX_QUERY_DEPTH`] parts each are
/// read, so the work is bounded whatever the request.
fn query_json(source: &[u8]) -> Value {
    let mut root = Node::Map(std::collections::BTreeMap::new());
    // Names are decoded first, and a value only when its parameter is kept: a web identity
    // token is never decoded only to be thrown away.
    let pairs = source
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .take(MAX_QUERY_PARAMS);
    for pair in pairs {
        let mut halves = pair.splitn(2, |b| *b == b'=');
        let (k, v) = (
            halves.next().unwrap_or_default(),
            halves.next().unwrap_or_default(),
        );
        let k = form_decode(k);
        // Compared without case and at every level of the name: a parameter spelled or nested
        // otherwise is not the one the service read, but it may still hold the secret.
        if k.split('.').any(|part| {
            SECRET_QUERY_PARAMS
                .iter()
                .chain(SECRET_JSON_MEMBERS)
                .any(|s| s.eq_ignore_ascii_case(part))
                || part
                    .get(..6)
                    .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"))
        }) {
            continue;
        }
        let mut parts = k
            .split('.')
            .filter(|p| !p.is_empty() && *p != "member" && *p != "entry")
            .take(MAX_QUERY_DEPTH)
            .peekable();
        if parts.peek().is_none() {
            continue;
        }
        let mut node = &mut root;
        for part in parts {
            node = node.child(part);
        }
        *node = Node::Leaf(form_decode(v).into_owned());
    }
    root.into_value()
}

/// One name or value of an `application/x-www-form-urlencoded` body: `+` is a space, then
/// percent-decoding, invalid UTF-8 replaced.
fn form_decode(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        std::borrow::Cow::Owned(
            percent_encoding::percent_decode(&spaced)
                .decode_utf8_lossy()
                .into_owned(),
        )
    } else {
        percent_encoding::percent_decode(raw).decode_utf8_lossy()
    }
}

fn camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn cap(v: &mut Value) {
    match v {
        Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
            let kept: String = s.chars().take(MAX_VALUE_CHARS).collect();
            *s = format!("{kept}...(truncated)");
        }
        Value::Array(a) => a.iter_mut().for_each(cap),
        Value::Object(o) => o.values_mut().for_each(cap),
        _ => {}
    }
}

/// The names a rest-json path carries.
fn path_names(path: &str, m: &mut Map<String, Value>) {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let mut put = |k: &str, v: &String| {
        m.entry(k.to_owned())
            .or_insert_with(|| Value::String(v.clone()));
    };
    let mut i = 0;
    while let Some(s) = segs.get(i) {
        let next = segs.get(i + 1);
        match (s.as_str(), next) {
            ("clusters", Some(n)) => put("clusterName", n),
            ("pod-identity-associations", Some(n)) => put("associationId", n),
            ("access-entries", Some(n)) => put("principalArn", n),
            ("access-policies", Some(n)) => put("policyArn", n),
            ("tags", Some(n)) => put("resourceArn", n),
            _ => {}
        }
        i += 1;
    }
}

/// The resources a request names, for `ResourceName`/`ResourceType` lookups.
fn named_resources(params: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(o) = params.as_object() else {
        return out;
    };
    for (key, ty) in [
        ("roleName", "AWS::IAM::Role"),
        ("userName", "AWS::IAM::User"),
        ("policyArn", "AWS::IAM::Policy"),
        ("openIDConnectProviderArn", "AWS::IAM::OIDCProvider"),
        ("accessKeyId", "AWS::IAM::AccessKey"),
        ("clusterName", "AWS::EKS::Cluster"),
        ("name", "AWS::EKS::Cluster"),
    ] {
        // Names are not validated yet when a request is refused: a long one is left out
        // rather than indexed.
        if let Some(Value::String(v)) = o.get(key)
            && !v.is_empty()
            && v.len() <= 2048
        {
            out.push((ty.to_owned(), v.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn query_parameters_become_camel_case_json_without_secrets() {
        let v = query_json(
            b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&WebIdentityToken=eyJ.secret.sig&Tags.member.2.Key=b&Tags.member.1.Key=a&Tags.member.1.Value=x&X-Amz-Signature=abc",
        );
        assert_eq!(v["roleArn"], "arn:aws:iam::1:role/r");
        assert_eq!(v["tags"][0]["key"], "a");
        assert_eq!(v["tags"][0]["value"], "x");
        assert_eq!(v["tags"][1]["key"], "b");
        let text = v.to_string();
        for secret in [
            "eyJ.secret.sig",
            "WebIdentityToken",
            "webIdentityToken",
            "abc",
            "AssumeRoleWithWebIdentity",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn query_values_decode_as_forms_do() {
        // What `form_urlencoded` reads, `+` and percent escapes and invalid UTF-8 included,
        // whether or not a name is encoded; a secret's name is found encoded too.
        let body: &[u8] = b"Description=a+b%2Bc%20d&Path=%2F%FF%2F&&Role%4eame=r&Web%49dentityToken=x%41y&Lone&=v";
        let v = query_json(body);
        let expected: Vec<(String, String)> = form_urlencoded::parse(body)
            .filter(|(k, _)| !k.is_empty() && k != "WebIdentityToken")
            .map(|(k, v)| (camel(&k), v.into_owned()))
            .collect();
        assert_eq!(expected.len(), 4, "{expected:?}");
        for (k, want) in expected {
            assert_eq!(v[&k], Value::String(want), "{k} in {v}");
        }
        assert_eq!(v["description"], "a b+c d");
        assert!(!v.to_string().contains("xAy"), "{v}");
    }

    #[test]
    fn hostile_indexes_and_shapes_do_not_blow_up() {
        let v = query_json(b"A.99999999999=x&A.b=y&A=z&.=1&..=2&B.0=q&C.7=c&C.3=b");
        assert!(v.to_string().len() < 20_000, "{v}");
        // Lists keep the indexes given, in order, without padding.
        assert_eq!(v["c"], serde_json::json!(["b", "c"]));
        // A thousand far indexes cost a thousand nodes, not a million.
        let far: String = (0..2000).map(|i| format!("A{i}.999=x&")).collect();
        let v = query_json(far.as_bytes());
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), MAX_QUERY_PARAMS);
        assert!(o.values().all(|x| x == &serde_json::json!(["x"])));
        // A secret's name nested anywhere in a parameter's name is left out too.
        let nested = query_json(
            b"RoleArn=r&.WebIdentityToken=eyJ.a&Tags.member.1.Password=p&A.X-Amz-Signature.B=s",
        );
        assert_eq!(nested, serde_json::json!({"roleArn": "r"}));
        let deep = format!("{}=x", vec!["a"; 10_000].join("."));
        assert!(query_json(deep.as_bytes()).to_string().len() < 100);
        let long = format!("PolicyDocument={}", "a".repeat(200_000));
        let v = query_json(long.as_bytes());
        assert!(v["policyDocument"].as_str().unwrap().len() < 9000);
    }

    #[test]
    fn oversized_parameters_keep_the_names_that_fit() {
        let junk: String = (0..100)
            .map(|i| format!("Junk{i:02}={}&", "j".repeat(500)))
            .collect();
        let v = query_json(junk.as_bytes());
        for max in [MAX_ANONYMOUS_PARAMETERS_BYTES, MAX_PARAMETERS_BYTES] {
            let b = bounded_parameters(v.clone(), max);
            assert!(b.to_string().len() <= max, "{max}: {b}");
            assert_eq!(b["podiam:truncated"], true);
            assert!(!b["parameterNames"].as_array().unwrap().is_empty());
        }
        let small = query_json(b"RoleName=r");
        assert_eq!(bounded_parameters(small.clone(), 64), small);
    }

    #[test]
    fn rest_json_requests_lose_their_tokens_and_gain_their_path_names() {
        let seen = Seen {
            method: Method::POST,
            path: "/clusters/prod/assume-role-for-pod-identity".into(),
            body: Bytes::from_static(br#"{"token":"eyJ.secret.sig","eksNodeName":"n1"}"#),
            ..Seen::default()
        };
        let v = request_parameters("eks-auth", &seen).unwrap();
        assert_eq!(v["clusterName"], "prod");
        assert_eq!(v["eksNodeName"], "n1");
        assert!(!v.to_string().contains("secret"), "{v}");
        // Nested anywhere, in any case.
        let nested = Seen {
            method: Method::POST,
            path: "/clusters/prod/access-entries".into(),
            body: Bytes::from_static(
                br#"{"a":{"TOKEN":"secret1","b":[{"SessionToken":"secret2","keep":"k"}]},"Password":"secret3"}"#,
            ),
            ..Seen::default()
        };
        let v = request_parameters("eks", &nested).unwrap();
        assert!(!v.to_string().contains("secret"), "{v}");
        assert_eq!(v["a"]["b"][0]["keep"], "k");
        let review = Seen {
            method: Method::POST,
            path: "/podiam/clusters/prod/authenticate".into(),
            body: Bytes::from_static(br#"{"spec":{"token":"k8s-aws-v1.secret"}}"#),
            ..Seen::default()
        };
        let v = request_parameters("podiam", &review).unwrap();
        assert!(!v.to_string().contains("secret"), "{v}");
        assert_eq!(v["clusterName"], "prod");
    }

    #[test]
    fn what_is_kept() {
        let denied = AnsweredError {
            code: ErrorCode::AccessDenied,
            message: String::new(),
        };
        let other = AnsweredError {
            code: ErrorCode::NoSuchEntity,
            message: String::new(),
        };
        assert!(kept("AssumeRoleWithWebIdentity", false, Some(&other)));
        assert!(kept("CreateRole", false, None));
        assert!(kept("GetRole", true, Some(&denied)));
        assert!(!kept("GetRole", true, None));
        assert!(!kept("GetRole", true, Some(&other)));
        assert!(!kept("other", false, Some(&denied)));
        assert!(read_only("ListRoles") && read_only("LookupEvents") && !read_only("CreateRole"));
    }
}
