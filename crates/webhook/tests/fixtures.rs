//! The fixture suite: each `tests/fixtures/*.json` holds an input pod, the service account's
//! annotations and/or ConfigMap-mode entries, the association set, the flags, and the expected
//! mutated pod (`null` = no patch). The returned JSON Patch is applied and the result compared
//! as parsed JSON; re-admitting the expected pod must give no patch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn run(name: &str, fx: &Value) -> Result<(), String> {
    let w = common::webhook(fx);
    let ns = fx["namespace"].as_str().unwrap_or("default");
    let op = fx["operation"].as_str().unwrap_or("CREATE");
    let pod = &fx["pod"];
    let uid = format!("uid-{name}");
    let out = w
        .review(&common::review(&uid, ns, op, pod))
        .map_err(|e| format!("review failed: {e}"))?;
    let resp = &out.response;
    if resp["response"]["uid"] != uid.as_str() || resp["response"]["allowed"] != true {
        return Err(format!("bad response envelope: {resp}"));
    }
    if out.method.as_str() != fx["method"].as_str().unwrap() {
        return Err(format!(
            "method {} != {}",
            out.method.as_str(),
            fx["method"]
        ));
    }
    let patch = common::decoded_patch(resp);
    match (&fx["expected"], &patch) {
        (Value::Null, None) => {}
        (Value::Null, Some(p)) => {
            return Err(format!("expected no patch, got {}", Value::from(p.clone())));
        }
        (_, None) => return Err("expected a patch, got none".into()),
        (expected, Some(p)) => {
            let mut got = pod.clone();
            common::apply_patch(&mut got, p);
            if &got != expected {
                return Err(format!(
                    "mutated pod differs\n got: {}\nwant: {}",
                    serde_json::to_string_pretty(&got).unwrap(),
                    serde_json::to_string_pretty(expected).unwrap()
                ));
            }
            if let Some(want) = fx.get("expectedPatch")
                && &Value::from(p.clone()) != want
            {
                return Err(format!(
                    "patch differs\n got: {}\nwant: {want}",
                    Value::from(p.clone())
                ));
            }
            // Idempotence: admitting the mutated pod again changes nothing.
            let again = w.review(&common::review(&uid, ns, op, &got)).unwrap();
            if let Some(p2) = common::decoded_patch(&again.response) {
                return Err(format!(
                    "re-admission produced a patch: {}",
                    Value::from(p2)
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn fixture_suite() {
    let all = fixtures();
    assert!(all.len() >= 30, "only {} fixtures", all.len());
    let mut failures = Vec::new();
    for (name, fx) in &all {
        if let Err(e) = run(name, fx) {
            failures.push(format!("--- {name}: {}\n{e}", fx["description"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    eprintln!("{} fixtures passed", all.len());
}
