//! cargo-fuzz target: arbitrary bytes as the two inputs the audit trail parses — a request
//! body turned into an event's `requestParameters` (query protocol and rest-json), and a
//! CloudTrail `LookupEvents` body — which must never panic, and whose parameters never carry a
//! web identity token.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_server::fuzzing::{audit_request_parameters, lookup_events_body};

fuzz_target!(|data: &[u8]| {
    let _ = lookup_events_body(data);
    for (protocol, path) in [("sts", "/"), ("eks-auth", "/clusters/c/assume-role-for-pod-identity"), ("podiam", "/podiam/clusters/c/authenticate")] {
        if let Some(v) = audit_request_parameters(protocol, path, data) {
            let text = v.to_string();
            assert!(!text.contains("\"webIdentityToken\""));
            assert!(v.get("token").is_none());
        }
    }
});
