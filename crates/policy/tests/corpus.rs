//! The policy case corpus: one JSON file per case under `tests/corpus/<topic>/NNN-slug.json`,
//! each a request and the policies that apply to it (or a single document that must or must
//! not parse), with the decision the AWS IAM documentation gives for it.
//!
//! Every case is loaded and evaluated; all failures are collected and reported together
//! with the file, the description and `Decision::explain()`. A case marked
//! `"known_deviation"` documents where the engine knowingly differs from the documented AWS
//! behaviour: the engine's result must then DIFFER from `expect` (it is listed as a
//! deviation, and fails only if it unexpectedly matches).
//!
//! Case shape (all keys are checked; unknown keys are an error):
//!
//! ```json
//! {
//!   "description": "...", "source": "https://docs.aws.amazon.com/...",
//!   "policies": {
//!     "identity": [ {document} | "raw text", ... ],     // or a single document
//!     "resource": {document}, "resource_kind": "Resource" | "Trust",
//!     "boundary": {document},
//!     "session": [ {document}, ... ]                    // or a single document
//!   },
//!   "request": {
//!     "principal": {"kind": "Root" | "User" | "AssumedRole" | "FederatedUser" | "WebIdentity"
//!                   | "Service" | "Anonymous", "arn": ..., "account": ..., "role_arn": ...,
//!                   "provider": ..., "name": ...},
//!     "action": "s3:GetObject", "resource": "arn:...", "resource_account": "111122223333",
//!     "context": {"aws:TagKeys": ["a", "b"], "aws:SourceIp": "10.0.0.1"}
//!   },
//!   "expect": "Allow" | "ExplicitDeny" | "ImplicitDeny",
//!   "known_deviation": "why the engine differs"          // optional
//! }
//! ```
//!
//! or, for a document that must be rejected (or accepted) by `Policy::parse`:
//!
//! ```json
//! { "description": "...", "source": "...", "kind": "Identity",
//!   "policy_text": "{...raw text...}" /* or "policy": {document} */,
//!   "expect_parse_error": true }
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use podiam_policy::{Context, Effect, Policy, PolicyKind, PolicySet, Principal, Request, evaluate};
use serde_json::{Map, Value};

/// The corpus must not silently shrink.
const MIN_CASES: usize = 300;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A policy document as given in a case: JSON (serialized back to text) or raw text.
fn document_text(value: &Value, what: &str) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Object(_) => Ok(serde_json::to_string(value).unwrap()),
        other => Err(format!(
            "{what}: expected a policy document (object) or raw text (string), got {other}"
        )),
    }
}

fn parse_kind(name: &str) -> Result<PolicyKind, String> {
    Ok(match name {
        "Identity" => PolicyKind::Identity,
        "Resource" => PolicyKind::Resource,
        "Trust" => PolicyKind::Trust,
        "Session" => PolicyKind::Session,
        "Boundary" => PolicyKind::Boundary,
        other => return Err(format!("unknown policy kind {other:?}")),
    })
}

fn parse_effect(name: &str) -> Result<Effect, String> {
    Ok(match name {
        "Allow" => Effect::Allow,
        "ExplicitDeny" => Effect::ExplicitDeny,
        "ImplicitDeny" => Effect::ImplicitDeny,
        other => {
            return Err(format!(
                "expect must be Allow, ExplicitDeny or ImplicitDeny, got {other:?}"
            ));
        }
    })
}

fn check_keys(map: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(format!(
            "{what}: unknown key {unknown:?} (allowed: {allowed:?})"
        )),
        None => Ok(()),
    }
}

fn get_str<'a>(map: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, String> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{what}: {key} must be a string, got {other}")),
        None => Err(format!("{what}: missing {key}")),
    }
}

fn opt_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<&'a str>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(_) => get_str(map, key, what).map(Some),
    }
}

/// The account field of an ARN (`arn:partition:service:region:ACCOUNT:...`).
fn arn_account(arn: &str) -> Option<String> {
    arn.split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

fn parse_principal(value: &Value) -> Result<Principal, String> {
    let Value::Object(map) = value else {
        return Err("request.principal must be an object".into());
    };
    let what = "request.principal";
    let kind = get_str(map, "kind", what)?;
    let account = |arn: &str| -> Result<String, String> {
        match opt_str(map, "account", what)? {
            Some(a) => Ok(a.to_owned()),
            None => arn_account(arn).ok_or_else(|| format!("{what}: no account in {arn}")),
        }
    };
    Ok(match kind {
        "Root" => {
            check_keys(map, &["kind", "account"], what)?;
            Principal::root(get_str(map, "account", what)?)
        }
        "User" => {
            check_keys(map, &["kind", "arn", "account"], what)?;
            let arn = get_str(map, "arn", what)?;
            Principal::user(arn, account(arn)?)
        }
        "AssumedRole" => {
            check_keys(map, &["kind", "arn", "account", "role_arn"], what)?;
            let arn = get_str(map, "arn", what)?;
            Principal::assumed_role(arn, get_str(map, "role_arn", what)?, account(arn)?)
        }
        "FederatedUser" => {
            check_keys(map, &["kind", "arn", "account"], what)?;
            let arn = get_str(map, "arn", what)?;
            Principal::federated_user(arn, account(arn)?)
        }
        "WebIdentity" => {
            check_keys(map, &["kind", "provider"], what)?;
            Principal::web_identity(get_str(map, "provider", what)?)
        }
        "Service" => {
            check_keys(map, &["kind", "name"], what)?;
            Principal::service(get_str(map, "name", what)?)
        }
        "Anonymous" => {
            check_keys(map, &["kind"], what)?;
            Principal::anonymous()
        }
        other => return Err(format!("{what}: unknown kind {other:?}")),
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_context(value: Option<&Value>) -> Result<Context, String> {
    let mut ctx = Context::new();
    let Some(value) = value else {
        return Ok(ctx);
    };
    let Value::Object(map) = value else {
        return Err("request.context must be an object".into());
    };
    for (key, v) in map {
        match v {
            Value::Array(items) => {
                let values = items
                    .iter()
                    .map(|i| scalar_text(i).ok_or_else(|| format!("context {key}: bad value {i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                ctx.set_multi(key.clone(), values);
            }
            other => {
                let text = scalar_text(other)
                    .ok_or_else(|| format!("context {key}: bad value {other}"))?;
                ctx.set(key.clone(), text);
            }
        }
    }
    Ok(ctx)
}

/// One or several documents.
fn document_list(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| document_text(v, &format!("{what}[{i}]")))
            .collect(),
        other => Ok(vec![document_text(other, what)?]),
    }
}

struct Policies {
    identity: Vec<Policy>,
    resource: Option<Policy>,
    boundary: Option<Policy>,
    session: Vec<Policy>,
}

fn parse_doc(text: &str, kind: PolicyKind, label: String) -> Result<Policy, String> {
    Policy::parse(text, kind)
        .map(|p| p.with_label(label.clone()))
        .map_err(|e| format!("{label} does not parse: {e}"))
}

fn parse_policies(value: &Value) -> Result<Policies, String> {
    let Value::Object(map) = value else {
        return Err("policies must be an object".into());
    };
    check_keys(
        map,
        &[
            "identity",
            "resource",
            "resource_kind",
            "boundary",
            "session",
        ],
        "policies",
    )?;
    let mut out = Policies {
        identity: Vec::new(),
        resource: None,
        boundary: None,
        session: Vec::new(),
    };
    if let Some(v) = map.get("identity") {
        for (i, text) in document_list(v, "identity")?.iter().enumerate() {
            out.identity.push(parse_doc(
                text,
                PolicyKind::Identity,
                format!("identity[{i}]"),
            )?);
        }
    }
    if let Some(v) = map.get("session") {
        for (i, text) in document_list(v, "session")?.iter().enumerate() {
            out.session.push(parse_doc(
                text,
                PolicyKind::Session,
                format!("session[{i}]"),
            )?);
        }
    }
    let resource_kind = match opt_str(map, "resource_kind", "policies")? {
        None => PolicyKind::Resource,
        Some(k @ ("Resource" | "Trust")) => parse_kind(k)?,
        Some(other) => return Err(format!("resource_kind must be Resource or Trust: {other}")),
    };
    if let Some(v) = map.get("resource") {
        let label = match resource_kind {
            PolicyKind::Trust => "trust",
            _ => "resource",
        };
        out.resource = Some(parse_doc(
            &document_text(v, "resource")?,
            resource_kind,
            label.into(),
        )?);
    } else if map.contains_key("resource_kind") {
        return Err("resource_kind without resource".into());
    }
    if let Some(v) = map.get("boundary") {
        out.boundary = Some(parse_doc(
            &document_text(v, "boundary")?,
            PolicyKind::Boundary,
            "boundary".into(),
        )?);
    }
    Ok(out)
}

struct EvalCase {
    policies: Policies,
    principal: Principal,
    action: String,
    resource: String,
    resource_account: Option<String>,
    context: Context,
    expect: Effect,
}

enum Body {
    Eval(Box<EvalCase>),
    Parse {
        text: String,
        kind: PolicyKind,
        expect_error: bool,
    },
}

struct Case {
    file: String,
    topic: String,
    description: String,
    known_deviation: Option<String>,
    body: Body,
}

fn load_case(path: &Path, topic: &str) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("unreadable: {e}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("a case must be a JSON object".into());
    };
    let description = get_str(&map, "description", "case")?.to_owned();
    let source = get_str(&map, "source", "case")?;
    if !source.starts_with("https://") {
        return Err(format!("source must be an https URL: {source}"));
    }
    let known_deviation = match map.get("known_deviation") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "known_deviation must be a non-empty string: {other}"
            ));
        }
    };
    let body = if let Some(flag) = map.get("expect_parse_error") {
        check_keys(
            &map,
            &[
                "description",
                "source",
                "known_deviation",
                "expect_parse_error",
                "kind",
                "policy_text",
                "policy",
            ],
            "parse case",
        )?;
        let Value::Bool(expect_error) = flag else {
            return Err("expect_parse_error must be a boolean".into());
        };
        let text = match (map.get("policy_text"), map.get("policy")) {
            (Some(Value::String(t)), None) => t.clone(),
            (None, Some(doc @ Value::Object(_))) => document_text(doc, "policy")?,
            _ => {
                return Err(
                    "a parse case needs exactly one of policy_text (string) or policy (object)"
                        .into(),
                );
            }
        };
        Body::Parse {
            text,
            kind: parse_kind(get_str(&map, "kind", "parse case")?)?,
            expect_error: *expect_error,
        }
    } else {
        check_keys(
            &map,
            &[
                "description",
                "source",
                "known_deviation",
                "policies",
                "request",
                "expect",
            ],
            "case",
        )?;
        let policies = parse_policies(map.get("policies").ok_or("missing policies")?)?;
        let Some(Value::Object(req)) = map.get("request") else {
            return Err("missing request object".into());
        };
        check_keys(
            req,
            &[
                "principal",
                "action",
                "resource",
                "resource_account",
                "context",
            ],
            "request",
        )?;
        Body::Eval(Box::new(EvalCase {
            policies,
            principal: parse_principal(req.get("principal").ok_or("missing request.principal")?)?,
            action: get_str(req, "action", "request")?.to_owned(),
            resource: get_str(req, "resource", "request")?.to_owned(),
            resource_account: opt_str(req, "resource_account", "request")?.map(str::to_owned),
            context: parse_context(req.get("context"))?,
            expect: parse_effect(get_str(&map, "expect", "case")?)?,
        }))
    };
    Ok(Case {
        file: path
            .strip_prefix(corpus_dir())
            .unwrap_or(path)
            .display()
            .to_string(),
        topic: topic.to_owned(),
        description,
        known_deviation,
        body,
    })
}

/// `NNN-slug.json`.
fn valid_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".json") else {
        return false;
    };
    let Some((num, slug)) = stem.split_once('-') else {
        return false;
    };
    num.len() == 3
        && num.bytes().all(|b| b.is_ascii_digit())
        && !slug.is_empty()
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// All case files, as (topic, path), sorted.
fn case_files(errors: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let root = corpus_dir();
    let mut topics: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    topics.sort();
    for dir in topics {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.is_dir() {
            if !name.ends_with(".md") {
                errors.push(format!("{name}: not a topic directory"));
            }
            continue;
        }
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
            if !valid_file_name(&file_name) {
                errors.push(format!("{name}/{file_name}: not a NNN-slug.json case file"));
                continue;
            }
            out.push((name.clone(), file));
        }
    }
    out
}

/// Per-topic tallies of expectations.
#[derive(Default)]
struct Tally {
    allow: usize,
    explicit_deny: usize,
    implicit_deny: usize,
    parse_error: usize,
    parse_ok: usize,
    deviations: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.allow + self.explicit_deny + self.implicit_deny + self.parse_error + self.parse_ok
    }
}

/// Runs one case: whether the engine agrees with `expect`, and a description of what it did.
fn run_case(case: &Case) -> (bool, String) {
    match &case.body {
        Body::Eval(eval) => {
            let EvalCase {
                policies,
                principal,
                action,
                resource,
                resource_account,
                context,
                expect,
            } = eval.as_ref();
            let request = Request {
                principal,
                action,
                resource,
                context,
            };
            let set = PolicySet {
                identity: policies.identity.iter().collect(),
                resource: policies.resource.as_ref(),
                resource_account: resource_account.as_deref(),
                boundary: policies.boundary.as_ref(),
                session: policies.session.iter().collect(),
            };
            let decision = evaluate(&request, &set);
            // A context holding only the keys some policy may read gives the same decision
            // (what callers that build a context for one policy rely on).
            let policies_in_set = set
                .identity
                .iter()
                .copied()
                .chain(set.resource)
                .chain(set.boundary)
                .chain(set.session.iter().copied());
            let read: Vec<&Policy> = policies_in_set.collect();
            let mut trimmed = Context::new();
            for (key, values) in context.iter() {
                if read.iter().any(|p| p.may_read_context_key(key)) {
                    trimmed.set_multi(key, values.to_vec());
                }
            }
            let trimmed_request = Request {
                context: &trimmed,
                ..request
            };
            // Not a case result: a known deviation must not hide it.
            assert_eq!(
                evaluate(&trimmed_request, &set),
                decision,
                "a context trimmed to the keys the policies may read changes the decision"
            );
            let matches = decision.effect == *expect;
            (
                matches,
                format!(
                    "expected {expect:?}, engine gives {:?}: {}",
                    decision.effect,
                    decision.explain()
                ),
            )
        }
        Body::Parse {
            text,
            kind,
            expect_error,
        } => {
            let result = Policy::parse(text, *kind);
            let got_error = result.is_err();
            let outcome = match &result {
                Ok(_) => "the document parses".to_owned(),
                Err(e) => format!("rejected: {e}"),
            };
            let expected = if *expect_error {
                "a parse error"
            } else {
                "the document to parse"
            };
            (
                got_error == *expect_error,
                format!("expected {expected} ({kind:?}), {outcome}"),
            )
        }
    }
}

#[test]
fn corpus() {
    let start = Instant::now();
    let mut load_errors = Vec::new();
    let files = case_files(&mut load_errors);
    let mut cases = Vec::new();
    for (topic, path) in &files {
        match load_case(path, topic) {
            Ok(case) => cases.push(case),
            Err(e) => load_errors.push(format!(
                "{}: {e}",
                path.strip_prefix(corpus_dir()).unwrap_or(path).display()
            )),
        }
    }

    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut deviations = Vec::new();
    for case in &cases {
        let tally = tallies.entry(case.topic.clone()).or_default();
        match &case.body {
            Body::Eval(eval) => match eval.expect {
                Effect::Allow => tally.allow += 1,
                Effect::ExplicitDeny => tally.explicit_deny += 1,
                Effect::ImplicitDeny => tally.implicit_deny += 1,
            },
            Body::Parse { expect_error, .. } => {
                if *expect_error {
                    tally.parse_error += 1;
                } else {
                    tally.parse_ok += 1;
                }
            }
        }
        let (matches, detail) = run_case(case);
        match (&case.known_deviation, matches) {
            (None, true) => {}
            (None, false) => failures.push(format!(
                "{}\n    {}\n    {detail}",
                case.file, case.description
            )),
            (Some(why), false) => {
                tally.deviations += 1;
                deviations.push(format!(
                    "{}\n    {}\n    deviation: {why}\n    {detail}",
                    case.file, case.description
                ));
            }
            (Some(why), true) => failures.push(format!(
                "{}\n    {}\n    marked as a known deviation ({why}) but the engine now agrees \
                 with the documented result; remove \"known_deviation\"\n    {detail}",
                case.file, case.description
            )),
        }
    }

    // Every topic with evaluation cases has both outcomes, and denies are not outnumbered.
    for (topic, t) in &tallies {
        let denies = t.explicit_deny + t.implicit_deny;
        if t.allow + denies > 0 && (t.allow == 0 || denies == 0 || denies < t.allow) {
            load_errors.push(format!(
                "topic {topic}: needs allow and deny cases with denies >= allows \
                 (allow {}, deny {denies})",
                t.allow
            ));
        }
    }

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| topic | allow | explicit deny | implicit deny | parse error | parse ok | total | deviations |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut sum = Tally::default();
    for (topic, t) in &tallies {
        let _ = writeln!(
            report,
            "| {topic} | {} | {} | {} | {} | {} | {} | {} |",
            t.allow,
            t.explicit_deny,
            t.implicit_deny,
            t.parse_error,
            t.parse_ok,
            t.total(),
            t.deviations
        );
        sum.allow += t.allow;
        sum.explicit_deny += t.explicit_deny;
        sum.implicit_deny += t.implicit_deny;
        sum.parse_error += t.parse_error;
        sum.parse_ok += t.parse_ok;
        sum.deviations += t.deviations;
    }
    let _ = writeln!(
        report,
        "| **total** | {} | {} | {} | {} | {} | {} | {} |",
        sum.allow,
        sum.explicit_deny,
        sum.implicit_deny,
        sum.parse_error,
        sum.parse_ok,
        sum.total(),
        sum.deviations
    );
    println!("{report}");
    if !deviations.is_empty() {
        println!("known deviations from the documented AWS behaviour:");
        for d in &deviations {
            println!("  {d}");
        }
    }
    println!(
        "{} cases in {:.1?} ({} failures, {} load errors)",
        cases.len(),
        start.elapsed(),
        failures.len(),
        load_errors.len()
    );

    if cases.len() < MIN_CASES {
        load_errors.push(format!(
            "only {} cases found, at least {MIN_CASES} required",
            cases.len()
        ));
    }
    let mut problems = String::new();
    for e in &load_errors {
        let _ = writeln!(problems, "load error: {e}");
    }
    for f in &failures {
        let _ = writeln!(problems, "FAIL {f}");
    }
    assert!(
        problems.is_empty(),
        "{} failing case(s), {} load error(s):\n{problems}",
        failures.len(),
        load_errors.len()
    );
}
