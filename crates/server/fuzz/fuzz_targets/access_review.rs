//! cargo-fuzz target: arbitrary bytes as a SubjectAccessReview body, decoded the way the
//! authorization webhook decodes one, and what it asks matched against every rule of every
//! access policy's cluster role (the work a review does after its binding verifies).

#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_control::access::rbac::{RoleSet, policy_rules};
use podiam_control::access::{ACCESS_POLICIES, parse_access_review};

fuzz_target!(|data: &[u8]| {
    if let Ok((_, review)) = parse_access_review(data) {
        if let Some(request) = &review.request {
            for (_, arn) in ACCESS_POLICIES {
                for rule in policy_rules(RoleSet::builtin(), arn) {
                    let _ = rule.allows(request);
                }
            }
        }
    }
});
