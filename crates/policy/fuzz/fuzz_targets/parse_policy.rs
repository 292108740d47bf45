//! Fuzz target: parsing never panics, the fast JSON parser agrees with serde_json, and every
//! accepted policy survives a JSON round trip and can be evaluated (with and without a
//! permissions boundary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_policy::{
    Context, Limits, Policy, PolicyKind, PolicySet, Principal, Request, evaluate, evaluate_policy,
};

const KINDS: [PolicyKind; 5] =
    [PolicyKind::Identity, PolicyKind::Resource, PolicyKind::Trust, PolicyKind::Session, PolicyKind::Boundary];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    assert!(
        podiam_policy::fuzzing::json_fast_path_agrees(text),
        "the fast JSON parser disagrees with serde_json on {text:?}"
    );
    for kind in KINDS {
        let Ok(policy) = Policy::parse_with_limits(text, kind, Limits { max_bytes: 1 << 20 }) else { continue };
        let json = policy.to_json();
        let again = Policy::parse_with_limits(&json, kind, Limits { max_bytes: 1 << 20 })
            .unwrap_or_else(|e| panic!("round trip failed: {e}: {json}"));
        assert_eq!(again, policy, "{json}");
        let principal = Principal::user("arn:aws:iam::111122223333:user/alice", "111122223333");
        let context = Context::new().with("aws:username", "alice").with("aws:SourceIp", "10.0.0.1");
        for resource in ["arn:aws:s3:::b/alice/x", "arn:aws:logs:us-east-1:111122223333:log-group:/a:b:c"] {
            let request = Request { principal: &principal, action: "s3:GetObject", resource, context: &context };
            let _ = evaluate_policy(&request, &policy);
            let set = match kind {
                PolicyKind::Resource | PolicyKind::Trust => {
                    PolicySet { resource: Some(&policy), resource_account: Some("111122223333"), ..PolicySet::default() }
                }
                PolicyKind::Boundary => PolicySet { boundary: Some(&policy), ..PolicySet::default() },
                PolicyKind::Session => PolicySet { session: vec![&policy], ..PolicySet::default() },
                PolicyKind::Identity => PolicySet { identity: vec![&policy], boundary: Some(&policy), ..PolicySet::default() },
            };
            let decision = evaluate(&request, &set);
            let _ = decision.explain();
        }
    }
});
