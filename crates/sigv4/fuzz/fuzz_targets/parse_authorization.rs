//! cargo-fuzz target: arbitrary `Authorization` header, query string, `x-amz-date`, session
//! token and body bytes into `podiam_sigv4::parse` (and on into `verify`). See `../harness.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    let _ = harness::run(data);
});
