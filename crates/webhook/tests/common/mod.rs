//! Shared test helpers: a small RFC 6902 applier (add/replace/remove), fixture loading,
//! AdmissionReviews and temp dirs.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use base64::Engine as _;
use podiam_webhook::{Associations, ServiceAccounts, Settings, Webhook};
use serde_json::{Value, json};

fn unescape(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

/// Applies one JSON Patch (add, replace, remove) to `doc`.
pub fn apply_patch(doc: &mut Value, patch: &[Value]) {
    for op in patch {
        let kind = op["op"].as_str().unwrap();
        let path = op["path"].as_str().unwrap();
        assert!(path.starts_with('/'), "bad path {path}");
        let tokens: Vec<String> = path[1..].split('/').map(unescape).collect();
        let (last, parents) = tokens.split_last().unwrap();
        let mut cur = &mut *doc;
        for t in parents {
            cur = match cur {
                Value::Object(m) => m
                    .get_mut(t)
                    .unwrap_or_else(|| panic!("{path}: no member {t}")),
                Value::Array(a) => a.get_mut(t.parse::<usize>().unwrap()).unwrap(),
                _ => panic!("{path}: cannot descend into a scalar"),
            };
        }
        match (kind, cur) {
            ("add" | "replace", Value::Object(m)) => {
                if kind == "replace" {
                    assert!(m.contains_key(last), "replace of a missing member {path}");
                }
                m.insert(last.clone(), op["value"].clone());
            }
            ("add", Value::Array(a)) => {
                if last == "-" {
                    a.push(op["value"].clone());
                } else {
                    let i: usize = last.parse().unwrap();
                    assert!(i <= a.len(), "{path}: index out of range");
                    a.insert(i, op["value"].clone());
                }
            }
            ("replace", Value::Array(a)) => a[last.parse::<usize>().unwrap()] = op["value"].clone(),
            ("remove", Value::Object(m)) => {
                m.remove(last).unwrap();
            }
            ("remove", Value::Array(a)) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            (k, _) => panic!("unsupported op {k} at {path}"),
        }
    }
}

/// Settings from a fixture's `settings` object; the Pod Identity jitter is fixed at 80000.
pub fn settings(v: Option<&Value>) -> Settings {
    let mut s = Settings {
        jitter: Arc::new(|| 80_000),
        ..Settings::default()
    };
    let Some(v) = v else { return s };
    if let Some(p) = v["annotationPrefix"].as_str() {
        s.annotation_prefix = p.into();
    }
    if let Some(r) = v["defaultRegion"].as_str() {
        s.default_region = Some(r.into());
    }
    if let Some(b) = v["regionalSts"].as_bool() {
        s.regional_sts = b;
    }
    if let Some(n) = v["tokenExpiration"].as_i64() {
        s.token_expiration = n;
    }
    if let Some(a) = v["tokenAudience"].as_str() {
        s.token_audience = a.into();
    }
    if let Some(u) = v["injectStsEndpoint"].as_str() {
        s.inject_sts_endpoint = Some(u.into());
    }
    s
}

/// The webhook of a fixture.
pub fn webhook(fx: &Value) -> Webhook {
    let ns = fx["namespace"].as_str().unwrap_or("default");
    let pod = &fx["pod"];
    let sa_name = podiam_webhook::mutate::service_account_name(pod).to_owned();
    let mut sas = match fx.get("serviceAccountConfig") {
        Some(cm) => ServiceAccounts::parse(&cm.to_string()).unwrap(),
        None => ServiceAccounts::default(),
    };
    if let Some(ann) = fx.get("serviceAccountAnnotations") {
        sas.insert_annotations(ns, &sa_name, podiam_webhook::sources::string_map(Some(ann)));
    }
    let assoc: Associations = fx
        .get("associations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_owned(),
                        p[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Webhook::new(settings(fx.get("settings")), Arc::new(sas), Arc::new(assoc))
}

/// A fresh temporary directory, removed with what it holds when dropped (so a run leaves
/// nothing under the system temp dir). Dereferences to its path.
pub struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> TempDir {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("podiam-webhook-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// An AdmissionReview v1 for `pod`.
pub fn review(uid: &str, namespace: &str, operation: &str, pod: &Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace, "operation": operation, "object": pod}})
}

/// The decoded patch of a response AdmissionReview, if any.
pub fn decoded_patch(resp: &Value) -> Option<Vec<Value>> {
    let r = &resp["response"];
    let p = r.get("patch")?.as_str()?;
    assert_eq!(r["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}
