//! `requestParameters`: what an event records of a request's parameters, without its secrets
//! (web identity and service-account tokens, passwords, presigning parameters), bounded
//! whatever the request; and the resources the parameters name.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Map, Value};

use crate::wire::model::{self, Service};
use crate::wire::query;

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
    request_facts(protocol, "", seen).0
}

/// [`request_parameters`] of the operation `action`, and the resources the request names (type,
/// name), for `ResourceName`/`ResourceType` lookups. Of an operation of the AWS service models,
/// only the members the model names are recorded: what the service ignores is not the caller's
/// to make the event carry.
pub(super) fn request_facts(
    protocol: &str,
    action: &str,
    seen: &Seen,
) -> (Option<Value>, Vec<(String, String)>) {
    let service = match protocol {
        "sts" => Some(Service::Sts),
        "iam" => Some(Service::Iam),
        "eks" => Some(Service::Eks),
        "eks-auth" => Some(Service::EksAuth),
        _ => None,
    };
    let modeled = service.and_then(|s| model::inputs(s, action));
    match protocol {
        "sts" | "iam" => {
            let source: &[u8] = if seen.method == Method::GET {
                seen.query.as_bytes()
            } else {
                &seen.body
            };
            let (v, resources) = query_json(source, modeled);
            (Some(v), resources)
        }
        "eks" | "eks-auth" | "podiam" | "cloudtrail" => {
            let mut m = match serde_json::from_slice::<Value>(&seen.body) {
                Ok(Value::Object(m)) if !seen.path.ends_with("/authenticate") => m,
                _ => Map::new(),
            };
            if let Some(names) = modeled {
                m.retain(|k, _| names.contains(&k.as_str()));
            }
            strip_secrets(&mut m);
            path_names(&seen.path, &mut m);
            for v in m.values_mut() {
                cap(v);
            }
            let v = (!m.is_empty()).then_some(Value::Object(m));
            let resources = v.as_ref().map(named_resources).unwrap_or_default();
            (v, resources)
        }
        _ => (None, Vec::new()),
    }
}

/// Most query parameters read into an event (IAM's largest requests carry a few hundred).
const MAX_QUERY_PARAMS: usize = 1000;
/// Most name parts of one query parameter (`Tags.member.1.Key` has four).
const MAX_QUERY_DEPTH: usize = 8;

/// A query parameter tree as it is read: lists are kept sparse (by index), so that a caller
/// naming index 999 costs one node, not a thousand.
enum Node {
    /// Not set yet.
    Empty,
    /// The values given under this path, first first: one, unless names the service reads
    /// apart (`RoleName`, `roleName`) come to the same camel-cased path, when each is kept (at
    /// most [`MAX_AMBIGUOUS`]) rather than one standing for the others.
    Leaf(Vec<(String, String)>),
    Map(std::collections::BTreeMap<String, Node>),
    List(std::collections::BTreeMap<u32, Node>),
}

/// Most values kept at one path.
const MAX_AMBIGUOUS: usize = 4;

/// One step of a parameter name: a member or a list index.
enum Step<'a> {
    Member(&'a str),
    Index(u32),
}

impl Node {
    /// The node a step leads to, made if it is not there; `None` when this node is of another
    /// kind (what was recorded first is never replaced by what comes after).
    fn child(&mut self, step: &Step<'_>) -> Option<&mut Node> {
        if matches!(self, Node::Empty) {
            *self = match step {
                Step::Member(_) => Node::Map(std::collections::BTreeMap::new()),
                Step::Index(_) => Node::List(std::collections::BTreeMap::new()),
            };
        }
        match (self, step) {
            (Node::Map(m), Step::Member(name)) => {
                Some(m.entry(query::lower_first(name)).or_insert(Node::Empty))
            }
            (Node::List(l), Step::Index(i)) => Some(l.entry(*i).or_insert(Node::Empty)),
            _ => None,
        }
    }

    /// Lists in index order, without gaps; a path given several values by different names is
    /// the list of them.
    fn into_value(self) -> Value {
        match self {
            Node::Empty => Value::Null,
            Node::Leaf(mut values) => {
                let mut v = if values.len() == 1 {
                    Value::String(values.pop().map(|(_, v)| v).unwrap_or_default())
                } else {
                    Value::Array(values.into_iter().map(|(_, v)| Value::String(v)).collect())
                };
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

/// The steps of a query parameter name as the protocol writes them: members
/// (`[A-Za-z][A-Za-z0-9]*`), `member.N` for list items and `entry.N` for map entries (`N` a
/// decimal index from 1, no leading zero). `None` for any other name: the service reads no
/// such parameter, and recording it would let it stand for one the service does read.
fn steps(name: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::with_capacity(4);
    let mut parts = name.split('.');
    while let Some(p) = parts.next() {
        if p == "member" || p == "entry" {
            let i = parts.next()?;
            if i.starts_with('0')
                || i.len() > 6
                || !i.bytes().all(|b| b.is_ascii_digit())
                || out.is_empty()
            {
                return None;
            }
            out.push(Step::Index(i.parse().ok()?));
        } else if p.starts_with(|c: char| c.is_ascii_alphabetic())
            && p.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            out.push(Step::Member(p));
        } else {
            return None;
        }
        if out.len() > MAX_QUERY_DEPTH {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `name` (already of [`steps`]' grammar) is one of the modeled parameter names, which
/// write list indexes `#` (`Tags.member.#.Key`). Compared part by part, without building the
/// name: it runs for every parameter of every event.
fn is_modeled(names: &[&str], name: &str) -> bool {
    names.iter().any(|m| {
        let (mut want, mut got) = (m.split('.'), name.split('.'));
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g))
                    if w == g || (w == "#" && g.bytes().all(|b| b.is_ascii_digit())) => {}
                _ => return false,
            }
        }
    })
}

/// The node at the end of `steps`, made as needed; `None` where a node of another kind is in
/// the way.
fn place<'n>(node: &'n mut Node, steps: &[Step<'_>]) -> Option<&'n mut Node> {
    match steps.split_first() {
        None => Some(node),
        Some((step, rest)) => place(node.child(step)?, rest),
    }
}

/// The query parameters naming a resource the service acts on, and its type: what
/// `ResourceName` lookups find. Read as the service reads them (the first value of the exact
/// name), not from the recorded tree.
const RESOURCE_QUERY_PARAMS: &[(&str, &str)] = &[
    ("RoleName", "AWS::IAM::Role"),
    ("UserName", "AWS::IAM::User"),
    ("PolicyArn", "AWS::IAM::Policy"),
    ("OpenIDConnectProviderArn", "AWS::IAM::OIDCProvider"),
    ("AccessKeyId", "AWS::IAM::AccessKey"),
];

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
/// writes them; and the resources the request names. At most [`MAX_QUERY_PARAMS`] parameters
/// of [`MAX_QUERY_DEPTH`] steps each are read, so the work is bounded whatever the request.
pub(super) fn query_json(
    source: &[u8],
    modeled: Option<&[&str]>,
) -> (Value, Vec<(String, String)>) {
    let mut root = Node::Map(std::collections::BTreeMap::new());
    let mut resources: Vec<(String, String)> = Vec::new();
    // Split and decoded as the service's parser does ([`crate::wire::query`]); names first, and
    // a value only when its parameter is kept: a web identity token is never decoded only to be
    // thrown away.
    for (k, v) in query::pairs(source).take(MAX_QUERY_PARAMS) {
        let k = query::decode(k);
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
        let Some(steps) = steps(&k) else { continue };
        if let Some(names) = modeled
            && !is_modeled(names, &k)
        {
            continue;
        }
        if let Some((_, ty)) = RESOURCE_QUERY_PARAMS.iter().find(|(n, _)| *n == k.as_ref())
            && !resources.iter().any(|(t, _)| t == ty)
        {
            // The first value of the exact name, as the service reads it (a long one is left
            // out rather than indexed: names are not validated yet when a request is refused).
            let value = query::decode(v);
            if !value.is_empty() && value.len() <= 2048 {
                resources.push(((*ty).to_owned(), value.into_owned()));
            }
        }
        let Some(node) = place(&mut root, &steps) else {
            continue;
        };
        match node {
            Node::Empty => {
                *node = Node::Leaf(vec![(k.into_owned(), query::decode(v).into_owned())])
            }
            // The same name again: the service reads the first. Another name that comes to the
            // same path: kept beside it.
            Node::Leaf(values)
                if values.len() < MAX_AMBIGUOUS && !values.iter().any(|(n, _)| *n == k) =>
            {
                values.push((k.into_owned(), query::decode(v).into_owned()));
            }
            _ => {}
        }
    }
    (root.into_value(), resources)
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

/// The names a rest-json path carries. They replace body members of the same name: the
/// service acts on the path's.
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
        m.insert(k.to_owned(), Value::String(v.clone()));
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

/// The resources a rest-json request names, for `ResourceName`/`ResourceType` lookups.
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
mod tests;
