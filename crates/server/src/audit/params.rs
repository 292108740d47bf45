//! `requestParameters`: what an event records of a request's parameters, without its secrets
//! (web identity and service-account tokens, passwords, presigning parameters), bounded
//! whatever the request; and the resources the parameters name.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Map, Value};

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
pub(super) fn query_json(source: &[u8]) -> Value {
    let mut root = Node::Map(std::collections::BTreeMap::new());
    // What the service read: the first value of a name (the query parser keeps the first).
    let mut names_read = std::collections::HashSet::new();
    // Names are decoded first, and a value only when its parameter is kept: a web identity
    // token is never decoded only to be thrown away.
    let pairs = source
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .take(MAX_QUERY_PARAMS);
    'pairs: for pair in pairs {
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
        // Query members are PascalCase (`RoleName`, `Tags.member.1.Key`): a name with a part
        // that is not (`roleName`) is not one the service reads, and would otherwise be
        // recorded under the camel-cased name of one it does, in its place.
        if parts.peek().is_none()
            || k.split('.')
                .filter(|p| *p != "member" && *p != "entry")
                .any(|p| !p.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit()))
            || !names_read.insert(k.clone())
        {
            continue;
        }
        // A name that would overwrite one already recorded (`RoleName.X` after `RoleName`, or
        // `Tags` after `Tags.member.1.Key`) is left out: what came first stays.
        let mut node = &mut root;
        for part in parts {
            if matches!(node, Node::Leaf(s) if !s.is_empty()) {
                continue 'pairs;
            }
            node = node.child(part);
        }
        if matches!(node, Node::Leaf(s) if s.is_empty()) {
            *node = Node::Leaf(form_decode(v).into_owned());
        }
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
pub(super) fn named_resources(params: &Value) -> Vec<(String, String)> {
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
    fn query_parameters_are_recorded_as_the_service_reads_them() {
        // The service reads the first value of an exact name, and never `roleName`: the event
        // names the role acted on, whatever follows it.
        for body in [
            &b"RoleName=victim&RoleName=decoy"[..],
            b"RoleName=victim&roleName=decoy",
            b"roleName=decoy&RoleName=victim",
            b"RoleName=victim&RoleName.x=decoy&Tags.member.1.Key=k&Tags.member.1.key=decoy",
            b"RoleName=victim&RoleName.X=decoy&RoleName.X.Y=decoy",
        ] {
            let v = query_json(body);
            assert_eq!(
                v["roleName"],
                "victim",
                "{}: {v}",
                String::from_utf8_lossy(body)
            );
            assert!(!v.to_string().contains("decoy"), "{v}");
        }
        let v = query_json(b"Tags.member.1.Key=k&Tags=decoy&Tags.member.1.Value=x");
        assert_eq!(v["tags"][0]["key"], "k");
        assert_eq!(v["tags"][0]["value"], "x");
        assert!(!v.to_string().contains("decoy"), "{v}");
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
}
