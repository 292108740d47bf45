//! cargo-fuzz target: arbitrary bytes as the two inputs the audit trail parses — a request
//! body turned into an event's `requestParameters` (query protocol and rest-json), and a
//! CloudTrail `LookupEvents` body — which must never panic, and whose parameters never carry a
//! token or a secret under any name spelled as one, at any depth.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_server::fuzzing::{audit_request_parameters, lookup_events_body};
use serde_json::Value;

const SECRET_NAMES: &[&str] = &["token", "webidentitytoken", "sessiontoken", "secretaccesskey", "password"];

fn no_secret_names(v: &Value) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                assert!(!SECRET_NAMES.contains(&k.to_ascii_lowercase().as_str()), "{k}");
                no_secret_names(v);
            }
        }
        Value::Array(a) => a.iter().for_each(no_secret_names),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = lookup_events_body(data);
    for (protocol, path) in [("sts", "/"), ("eks-auth", "/clusters/c/assume-role-for-pod-identity"), ("podiam", "/podiam/clusters/c/authenticate")] {
        if let Some(v) = audit_request_parameters(protocol, path, data) {
            no_secret_names(&v);
        }
    }
});
