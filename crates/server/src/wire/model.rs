//! The modeled input constraints of the AWS service models (length, value range, pattern, enum),
//! enforced on the wire before any operation runs, so a request AWS would refuse with
//! `ValidationError` (`InvalidParameterException` in EKS) is refused the same way here and
//! never reaches a write.
//!
//! The table ([`super::model_table`]) is generated from botocore's models by
//! `scripts/gen_model_constraints.py`; this module only reads requests (query parameters,
//! rest-json labels, query strings and bodies) against it. Members a request leaves out are not
//! this module's business: the operations report those themselves.

use std::collections::HashMap;
use std::sync::LazyLock;

use podiam_control::AwsError;
use regex::Regex;
use serde_json::Value;

use super::model_table::OPERATIONS;
use super::query::{Params, lower_first};

/// The service an operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    Sts,
    Iam,
    Eks,
    EksAuth,
}

/// Where a rest-json member travels (query-protocol members are all `Body`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    Body,
    Label,
    QueryString,
}

/// The member's modeled type, as far as the checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    List,
    Map,
}

/// One shape's constraints: `min`/`max` are lengths for strings, lists and maps and values for
/// integers.
#[derive(Debug)]
pub(crate) struct Check {
    pub kind: Kind,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// AWS's pattern, as the message quotes it.
    pub pattern: Option<&'static str>,
    /// The same pattern for Rust's `regex`, anchored.
    pub regex: Option<&'static str>,
    pub one_of: &'static [&'static str],
}

/// A constrained top-level input member.
#[derive(Debug)]
pub(crate) struct Member {
    pub name: &'static str,
    /// The name on the wire (a rest-json label or query-string name may differ).
    pub wire: &'static str,
    pub at: At,
    pub check: Check,
    /// For a list its members' constraints; for a map its keys'.
    pub each: Option<Check>,
}

/// A served operation.
#[derive(Debug)]
pub(crate) struct Operation {
    pub service: Service,
    pub name: &'static str,
    pub method: &'static str,
    pub uri: &'static str,
    pub members: &'static [Member],
    /// Every input member's name: for the query protocol each parameter name it can be sent as,
    /// list indexes written `#` (`Tags.member.#.Key`); for rest-json the body's top-level
    /// members.
    pub inputs: &'static [&'static str],
}

/// The input member names of `service`'s operation `name` (see [`Operation::inputs`]), if
/// podiam serves it as modeled.
pub(crate) fn inputs(service: Service, name: &str) -> Option<&'static [&'static str]> {
    OPERATIONS
        .iter()
        .find(|o| o.service == service && o.name == name)
        .map(|o| o.inputs)
}

/// Every pattern of the table, compiled once. A pattern that does not compile is left out (and
/// `every_pattern_compiles` fails).
static REGEXES: LazyLock<HashMap<&'static str, Regex>> = LazyLock::new(|| {
    OPERATIONS
        .iter()
        .flat_map(|o| o.members.iter())
        .flat_map(|m| [Some(&m.check), m.each.as_ref()])
        .flatten()
        .filter_map(|c| c.regex)
        .filter_map(|r| Regex::new(r).ok().map(|re| (r, re)))
        .collect()
});

/// Check a query-protocol (IAM or STS) request of `action` against the model.
pub(crate) fn check_query(service: Service, action: &str, p: &Params) -> Result<(), AwsError> {
    let Some(op) = OPERATIONS
        .iter()
        .find(|o| o.service == service && o.name == action)
    else {
        return Ok(());
    };
    for m in op.members {
        match m.check.kind {
            Kind::Str => {
                if let Some(v) = p.get(m.wire) {
                    check_str(&m.check, v, m.wire)?;
                }
            }
            Kind::Int => {
                if let Some(n) = p.get(m.wire).and_then(|v| v.trim().parse::<i64>().ok()) {
                    check_int(&m.check, n, m.wire)?;
                }
            }
            Kind::List | Kind::Map => {
                if p.get(m.wire).is_none() && !p.has_prefix(&format!("{}.", m.wire)) {
                    continue;
                }
                let n = p.member_count(m.wire);
                check_count(&m.check, n, &format!("[{n} members]"), m.wire)?;
                if let Some(each) = &m.each {
                    let values = p.list(m.wire);
                    for v in &values {
                        check_each(each, v, &values, m.wire)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The served rest-json operation (EKS or EKS Auth) a method and path name, with its labels.
pub(crate) fn rest_operation<'p>(
    method: &str,
    path: &'p str,
) -> Option<(&'static Operation, Vec<(&'static str, &'p str)>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    OPERATIONS
        .iter()
        .filter(|o| matches!(o.service, Service::Eks | Service::EksAuth) && o.method == method)
        .find_map(|o| {
            let tmpl: Vec<&str> = o.uri.trim_matches('/').split('/').collect();
            if tmpl.len() != segs.len() {
                return None;
            }
            let mut labels = Vec::new();
            for (t, s) in tmpl.iter().zip(&segs) {
                match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(label) => labels.push((label, *s)),
                    None if t == s => {}
                    None => return None,
                }
            }
            Some((o, labels))
        })
}

/// Check a rest-json request against the model: `labels` already percent-decoded, `query` the
/// decoded query string pairs, `body` the JSON object (or `{}`).
pub(crate) fn check_rest(
    op: &Operation,
    labels: &[(&str, String)],
    query: &[(String, String)],
    body: &Value,
) -> Result<(), AwsError> {
    for m in op.members {
        match m.at {
            At::Label => {
                if let Some((_, v)) = labels.iter().find(|(l, _)| *l == m.wire) {
                    check_str(&m.check, v, m.name)?;
                }
            }
            At::QueryString => {
                let values: Vec<String> = query
                    .iter()
                    .filter(|(k, _)| k == m.wire)
                    .map(|(_, v)| v.clone())
                    .collect();
                if values.is_empty() {
                    continue;
                }
                match m.check.kind {
                    Kind::Str => check_str(&m.check, values.first().map_or("", |v| v), m.name)?,
                    Kind::Int => {
                        if let Some(n) = values.first().and_then(|v| v.parse::<i64>().ok()) {
                            check_int(&m.check, n, m.name)?;
                        }
                    }
                    Kind::List | Kind::Map => {
                        check_count(&m.check, values.len(), &format!("{values:?}"), m.name)?;
                        if let Some(each) = &m.each {
                            for v in &values {
                                check_each(each, v, &values, m.name)?;
                            }
                        }
                    }
                }
            }
            At::Body => match (m.check.kind, body.get(m.wire)) {
                (Kind::Str, Some(Value::String(v))) => check_str(&m.check, v, m.name)?,
                (Kind::Int, Some(Value::Number(n))) => {
                    if let Some(n) = n.as_i64() {
                        check_int(&m.check, n, m.name)?;
                    }
                }
                (Kind::List, Some(Value::Array(a))) => {
                    check_count(&m.check, a.len(), &format!("[{} members]", a.len()), m.name)?;
                    if let Some(each) = &m.each {
                        let values: Vec<String> = a
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect();
                        for v in &values {
                            check_each(each, v, &values, m.name)?;
                        }
                    }
                }
                (Kind::Map, Some(Value::Object(o))) => {
                    check_count(
                        &m.check,
                        o.len(),
                        &format!("{{{} entries}}", o.len()),
                        m.name,
                    )?;
                    if let Some(each) = &m.each {
                        let keys: Vec<String> = o.keys().cloned().collect();
                        for k in &keys {
                            check_each(each, k, &keys, m.name)?;
                        }
                    }
                }
                _ => {}
            },
        }
    }
    Ok(())
}

// === the checks ===

/// What `value` fails of `c`, in AWS's words; `None` when it satisfies every constraint.
fn violation(c: &Check, value: &str) -> Option<String> {
    // AWS counts UTF-16 code units; characters outside the BMP are the only difference.
    let units = if value.is_ascii() {
        value.len()
    } else {
        value.encode_utf16().count()
    };
    let n = i64::try_from(units).unwrap_or(i64::MAX);
    if let Some(min) = c.min.filter(|min| n < *min) {
        return Some(format!(
            "Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(max) = c.max.filter(|max| n > *max) {
        return Some(format!(
            "Member must have length less than or equal to {max}"
        ));
    }
    if !c.one_of.is_empty() && !c.one_of.contains(&value) {
        return Some(format!(
            "Member must satisfy enum value set: [{}]",
            c.one_of.join(", ")
        ));
    }
    if let (Some(pattern), Some(re)) = (c.pattern, c.regex.and_then(|r| REGEXES.get(r)))
        && !re.is_match(value)
    {
        return Some(format!(
            "Member must satisfy regular expression pattern: {pattern}"
        ));
    }
    None
}

fn check_str(c: &Check, value: &str, member: &str) -> Result<(), AwsError> {
    match violation(c, value) {
        Some(v) => Err(podiam_control::names::constraint(
            value,
            &lower_first(member),
            &v,
        )),
        None => Ok(()),
    }
}

fn check_int(c: &Check, n: i64, member: &str) -> Result<(), AwsError> {
    if let Some(min) = c.min.filter(|min| n < *min) {
        return Err(podiam_control::names::constraint(
            &n.to_string(),
            &lower_first(member),
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if let Some(max) = c.max.filter(|max| n > *max) {
        return Err(podiam_control::names::constraint(
            &n.to_string(),
            &lower_first(member),
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn check_count(c: &Check, n: usize, shown: &str, member: &str) -> Result<(), AwsError> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    if let Some(min) = c.min.filter(|min| n < *min) {
        return Err(podiam_control::names::constraint(
            shown,
            &lower_first(member),
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if let Some(max) = c.max.filter(|max| n > *max) {
        return Err(podiam_control::names::constraint(
            shown,
            &lower_first(member),
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A list member (or map key) that fails: AWS names the whole list and nests the constraint.
fn check_each(c: &Check, value: &str, all: &[String], member: &str) -> Result<(), AwsError> {
    match violation(c, value) {
        Some(v) => Err(podiam_control::names::constraint(
            &format!("[{}]", all.join(", ")),
            &lower_first(member),
            &format!("Member must satisfy constraint: [{v}]"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for o in OPERATIONS {
            for m in o.members {
                for c in [Some(&m.check), m.each.as_ref()].into_iter().flatten() {
                    if let Some(r) = c.regex {
                        assert!(REGEXES.contains_key(r), "{} {}: {r}", o.name, m.name);
                    }
                }
            }
        }
    }

    #[test]
    fn query_members_are_checked() {
        let p = Params::parse(b"Action=CreateRole&RoleName=a%20b").unwrap();
        let e = check_query(Service::Iam, "CreateRole", &p).unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'a b' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
        let p = Params::parse(b"RoleName=ok&MaxSessionDuration=60").unwrap();
        let e = check_query(Service::Iam, "UpdateRole", &p).unwrap_err();
        assert!(
            e.message
                .ends_with("Member must have value greater than or equal to 3600")
        );
        let p = Params::parse(b"ThumbprintList.member.1=abc").unwrap();
        let e = check_query(Service::Iam, "UpdateOpenIDConnectProviderThumbprint", &p).unwrap_err();
        assert!(
            e.message
                .ends_with("Member must satisfy constraint: [Member must have length greater than or equal to 40]"),
            "{}",
            e.message
        );
        let p = Params::parse(b"RoleName=fine-name&Path=/a/").unwrap();
        assert!(check_query(Service::Iam, "CreateRole", &p).is_ok());
        assert!(check_query(Service::Iam, "NoSuchAction", &p).is_ok());
    }

    #[test]
    fn rest_operations_are_found_and_checked() {
        let (op, labels) =
            rest_operation("POST", "/clusters/c1/assume-role-for-pod-identity").unwrap();
        assert_eq!(
            (op.name, labels),
            ("AssumeRoleForPodIdentity", vec![("clusterName", "c1")])
        );
        let (op, _) =
            rest_operation("DELETE", "/clusters/c1/pod-identity-associations/a-1").unwrap();
        assert_eq!(op.name, "DeletePodIdentityAssociation");
        assert!(rest_operation("PUT", "/clusters").is_none());
        let (op, _) = rest_operation("POST", "/clusters").unwrap();
        let body = serde_json::json!({"name": "-bad"});
        assert!(check_rest(op, &[], &[], &body).is_err());
        let body = serde_json::json!({"name": "good", "tags": {}});
        assert!(check_rest(op, &[], &[], &body).is_err());
        let body = serde_json::json!({"name": "good", "tags": {"k": "v"}});
        assert!(check_rest(op, &[], &[], &body).is_ok());
    }
}
