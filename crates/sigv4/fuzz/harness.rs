//! The body of the `parse_authorization` fuzz target, shared with the crate's
//! `tests/fuzz_seeds.rs` (which runs it over the seed corpus and random inputs on stable).
//!
//! Input layout: the fields are separated by NUL bytes —
//! `authorization \0 query \0 x-amz-date \0 x-amz-security-token \0 body`.
//! An empty authorization field means "no Authorization header".

use podiam_sigv4::{Expectations, Options, Request, canonical_request, parse, verify};

/// Runs one input: `parse` must not panic and must be deterministic; whatever it accepts goes
/// through `canonical_request` and `verify`, which must not panic either (and cannot succeed).
/// Returns whether `parse` found a signature.
pub fn run(data: &[u8]) -> bool {
    let mut fields = data.splitn(5, |b| *b == 0);
    let authorization = fields.next().unwrap_or_default();
    let query = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let date = fields.next().unwrap_or_default();
    let token = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();

    let mut headers: Vec<(&str, &[u8])> = vec![("host", b"sts.amazonaws.com")];
    if !authorization.is_empty() {
        headers.push(("Authorization", authorization));
    }
    if !date.is_empty() {
        headers.push(("X-Amz-Date", date));
    }
    if !token.is_empty() {
        headers.push(("x-amz-security-token", token));
    }
    let req = Request {
        method: "POST",
        path: "/a/./b/../%2e%2E//c",
        query: &query,
        headers: &headers,
        body,
    };

    let first = parse(&req);
    assert_eq!(first, parse(&req), "parse is deterministic");
    if let Err(e) = &first {
        // Every error maps to an AWS code and renders.
        assert!(!e.code().is_empty());
        assert!(e.status() == 400 || e.status() == 403);
        let _ = e.to_string();
    }
    let Ok(Some(parsed)) = first else {
        return false;
    };
    let _ = (
        parsed.access_key_id(),
        parsed.scope(),
        parsed.amz_date(),
        parsed.security_token(),
        parsed.signed_header_names().count(),
        parsed.is_presigned(),
        parsed.expires_secs(),
    );
    let _ = canonical_request(&req, &parsed, Options::default());
    let expect = Expectations::new("sts");
    let verdict = verify(&req, &parsed, "secret", &expect, parsed.request_time_unix());
    // Random input cannot carry a valid signature for this secret.
    assert!(verdict.is_err());
    true
}
