//! cargo-fuzz target: arbitrary bytes as an `aws eks get-token` token, checked the way the
//! TokenReview endpoint checks one before any lookup: the raw bytes as a token, and the bytes
//! as the presigned URL inside a well-formed token (so the URL and query checks are reached),
//! then the SigV4 parse of what passes.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use podiam_control::access::{CLUSTER_ID_HEADER, TOKEN_PREFIX, parse_token};

fuzz_target!(|data: &[u8]| {
    let hosts = ["podiam.test:8443".to_owned()];
    let raw = String::from_utf8_lossy(data);
    let wrapped = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    );
    for token in [raw.as_ref(), wrapped.as_str()] {
        if let Ok(url) = parse_token(token, &hosts) {
            let headers: [(&str, &[u8]); 2] =
                [("host", url.host.as_bytes()), (CLUSTER_ID_HEADER, b"c")];
            let req = podiam_sigv4::Request {
                method: "GET",
                path: "/",
                query: &url.query,
                headers: &headers,
                body: b"",
            };
            let _ = podiam_sigv4::parse(&req);
        }
    }
});
