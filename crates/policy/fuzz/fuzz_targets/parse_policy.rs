//! Fuzz target: parsing never panics, and every accepted policy survives a JSON round trip
//! and can be evaluated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_policy::{Context, Limits, Policy, PolicyKind, Principal, Request, evaluate_policy};

const KINDS: [PolicyKind; 5] =
    [PolicyKind::Identity, PolicyKind::Resource, PolicyKind::Trust, PolicyKind::Session, PolicyKind::Boundary];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for kind in KINDS {
        let Ok(policy) = Policy::parse_with_limits(text, kind, Limits { max_bytes: 1 << 20 }) else { continue };
        let json = policy.to_json();
        let again = Policy::parse_with_limits(&json, kind, Limits { max_bytes: 1 << 20 })
            .unwrap_or_else(|e| panic!("round trip failed: {e}: {json}"));
        assert_eq!(again, policy, "{json}");
        let principal = Principal::user("arn:aws:iam::111122223333:user/alice", "111122223333");
        let context = Context::new().with("aws:username", "alice").with("aws:SourceIp", "10.0.0.1");
        let request =
            Request { principal: &principal, action: "s3:GetObject", resource: "arn:aws:s3:::b/alice/x", context: &context };
        let _ = evaluate_policy(&request, &policy);
    }
});
