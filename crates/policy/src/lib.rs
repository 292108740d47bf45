//! # podiam-policy
//!
//! The IAM JSON policy language: parse → validate into a typed AST → evaluate → explain.
//! The crate is pure: no I/O, no clock, no environment; everything an evaluation needs
//! (principal, action, resource, condition keys such as `aws:CurrentTime`) comes in through
//! the [`Request`].
//!
//! ```
//! use podiam_policy::{evaluate, Context, Policy, PolicyKind, PolicySet, Principal, Request};
//!
//! let trust = Policy::parse(r#"{
//!   "Version": "2012-10-17",
//!   "Statement": {
//!     "Effect": "Allow",
//!     "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC"},
//!     "Action": "sts:AssumeRoleWithWebIdentity",
//!     "Condition": {"StringEquals": {"oidc.example.com/id/ABC:sub": "system:serviceaccount:default:app"}}
//!   }
//! }"#, PolicyKind::Trust)?.with_label("trust policy of role app");
//!
//! let principal = Principal::web_identity("arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC");
//! let context = Context::new().with("oidc.example.com/id/ABC:sub", "system:serviceaccount:default:app");
//! let request = Request {
//!     principal: &principal,
//!     action: "sts:AssumeRoleWithWebIdentity",
//!     resource: "arn:aws:iam::111122223333:role/app",
//!     context: &context,
//! };
//! let set = PolicySet { resource: Some(&trust), resource_account: Some("111122223333"), ..PolicySet::default() };
//! let decision = evaluate(&request, &set);
//! assert!(decision.is_allowed());
//! assert_eq!(
//!     decision.explain(),
//!     "allowed: sts:AssumeRoleWithWebIdentity on arn:aws:iam::111122223333:role/app \
//!      by statement #0 of policy 'trust policy of role app'"
//! );
//! # Ok::<(), podiam_policy::PolicyError>(())
//! ```
//!
//! ## Semantics chosen where the AWS documentation is ambiguous
//!
//! * **Element and operator names are case-sensitive** (`Effect`, `StringEquals`); `Effect`
//!   values must be exactly `Allow`/`Deny`. Condition *keys* are case-insensitive.
//! * **Sid**: in IAM policy kinds (identity, trust, session, boundary) `[0-9A-Za-z]*` only and
//!   unique among non-empty Sids (IAM's documented rules). [`PolicyKind::Resource`] accepts
//!   any string and duplicates, as other services' resource policies do. Empty Sids may repeat.
//! * **Version**: only `2012-10-17` and `2008-10-17`; absent means `2008-10-17`, in which
//!   `${...}` is literal text.
//! * **Policy values are validated at parse time**: numbers, dates, booleans (`Bool` and
//!   `Null` take `true`/`false`, ASCII case-insensitive), base64 and CIDRs that do not parse
//!   are rejected rather than silently never matching. A `Bool` value may instead contain
//!   policy variables (AWS supports them for the Boolean operator): it is substituted per
//!   request and must then read `true`/`false`; otherwise it matches nothing.
//! * **Empty condition value list** (`{"StringEquals": {"k": []}}`) is accepted: a positive
//!   operator never matches, a negated one always does. An operator with no keys is true.
//! * **Unresolvable policy variables** (key absent or multivalued, no default): the value
//!   containing it matches nothing (AWS: "might cause the entire statement to be invalid").
//!   In a negated operator that value therefore excludes nothing. A substituted value, a
//!   default and the `${*}`/`${?}`/`${$}` escapes are literal text, never wildcards.
//! * **Operators without a set qualifier on a key with several values**: AWS says
//!   "multivalued context keys require a condition set operator" and classifies a key by "the
//!   number of values in the request context" (IAM User Guide, "Single-valued vs. multivalued
//!   context keys"), but documents no answer for the misuse. A key with exactly one value
//!   compares normally, however it was set ([`Context::set_multi`] with one value included).
//!   With two or more values the condition fails closed per statement effect: in an `Allow`
//!   it never holds; in a `Deny` a negated operator (`StringNotEquals`, ...) always holds and
//!   a positive one holds when any request value matches, so such a `Deny` still applies.
//! * **`ForAllValues`/`ForAnyValue` with negated operators**: per request value, "matches
//!   none of the policy values". A key set to an empty list is the same as an absent key.
//!   `IfExists` does not change their answer for an absent key: `ForAllValues:…IfExists` is
//!   true (as `ForAllValues` is) and `ForAnyValue:…IfExists` is false (as `ForAnyValue` is).
//! * **ARN matching**: the first five `:` fields are matched separately and wildcards do not
//!   cross them; the resource field may contain `:`/`/` and wildcards cross those. In
//!   `Resource`/`NotResource` (not in the `Arn*` operators, which "check each of the six
//!   colon-delimited components separately"), a `*` that is the *last character* of one of the
//!   first five fields may also expand beyond the `:` boundaries, as the IAM User Guide states
//!   (`arn:aws:logs:*:log-group:/aws/lambda/*` matches
//!   `arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/fn`); other wildcards stay in
//!   their field. A pattern made only of `*` matches everything; an ARN pattern with fewer
//!   than six fields matches no ARN; a request value that is not an ARN is matched against the
//!   whole pattern as text. `ArnEquals` and `ArnLike` are identical (AWS documents both as
//!   wildcard matches).
//! * **Dates**: ISO 8601 (extended and basic, optional time, fraction and zone; no zone =
//!   UTC) or epoch seconds (with optional fraction); an all-digit string is epoch seconds.
//!   Compared at millisecond precision. Numbers compare as `f64`.
//! * **IP addresses**: IPv4-mapped IPv6 request addresses are treated as IPv4; a v4 address
//!   never matches a v6 block and vice versa. Host bits in policy CIDRs are ignored.
//! * **Principals** (see [`PrincipalSpec`]): `{"AWS": "*"}` equals `"*"` and matches
//!   everyone including anonymous and web-identity callers; ARNs compare case-sensitively;
//!   `Service` compares ASCII case-insensitively; `Federated` exactly; a role ARN matches the
//!   role's sessions only when equal to [`Principal::role_arn`] (path included);
//!   `CanonicalUser` never matches; wildcards inside principal ARNs are rejected;
//!   `Federated`/`Service` values must be provider ARNs or DNS-like names (`*` rejected).
//! * **NotPrincipal** with `Deny` excludes a principal only if every identity of its chain
//!   (account, role, session / account, user) is listed, as AWS documents; with `Allow` it
//!   grants every principal except those named, and a principal counts as named if *any*
//!   identity of its chain is listed (the session, its role or its account); a `Deny` with `NotPrincipal`
//!   always applies to an IAM principal that has a permissions boundary
//!   ([`PolicySet::boundary`]), whatever it lists (documented AWS behaviour). `NotPrincipal` is
//!   rejected in [`PolicyKind::Trust`] documents, as IAM rejects it in role trust policies.
//! * **Evaluation** (see [`evaluate`]): a resource-policy grant that names only the account is
//!   a delegation (the identity side must allow), also in the same account; `*`, service and
//!   provider grants are limited by boundary and session policies like role-ARN grants;
//!   several session policies are combined as a union; the root user is implicitly allowed
//!   in its own account; a [`PolicyKind::Trust`] resource policy must always allow. Whether
//!   the principal is root is taken from [`PrincipalKind::Root`].
//! * **Sizes** are counted as AWS counts them: characters excluding whitespace outside
//!   strings ([`policy_size`]); exceeding the limit maps to `LimitExceeded`.
//! * **Numbers in conditions** are normalized to strings: integers exactly, floats in
//!   shortest round-trip form (`1.50` becomes `1.5`).

mod condition;
mod context;
mod effect;
mod error;
mod eval;
mod json;
mod policy;
mod principal;
mod template;
mod wildcard;

pub use condition::{
    Condition, ConditionBlock, ConditionOperator, OperatorBlock, OperatorKind, SetQualifier,
};
pub use context::{Context, fold_key};
pub use effect::StatementEffect;
pub use error::PolicyError;
pub use eval::{
    Decision, Effect, MatchedStatement, PolicyEffect, PolicyResult, PolicySet, PolicySource,
    Reason, Request, evaluate, evaluate_policy,
};
pub use json::policy_size;
pub use policy::{
    ActionClause, ActionPattern, Limits, Policy, PolicyKind, PrincipalClause, ResourceClause,
    ResourcePattern, Statement, Version,
};
pub use principal::{
    Principal, PrincipalKind, PrincipalMatch, PrincipalSpec, PrincipalType, PrincipalValue,
};

/// Internal checks exposed to the cargo-fuzz targets (feature `fuzzing`; not a stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// True unless the fast JSON parser accepts `text` and serde_json does not, or builds a
    /// different tree, or measures a different [`crate::policy_size`].
    #[must_use]
    pub fn json_fast_path_agrees(text: &str) -> bool {
        crate::json::fast_path_agrees(text)
    }
}
