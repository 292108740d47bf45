//! Throughput smoke check for the STS hot path (parse + RS256 verify + claims).
//! Run: `cargo test --release -p podiam-jose --test perf -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Instant;

use common::*;
use podiam_jose::{UnverifiedToken, verify};

#[test]
#[ignore = "timing; run explicitly in release mode"]
fn rs256_parse_and_verify_throughput() {
    let keys = set_of(&[rsa_a(), ec_a()]);
    let aud = audiences();
    for (name, token) in [
        ("RS256", rsa_a().sign(&k8s_claims()).unwrap()),
        ("ES256", ec_a().sign(&k8s_claims()).unwrap()),
    ] {
        let n = 20_000u32;
        let start = Instant::now();
        for _ in 0..n {
            let t = UnverifiedToken::parse(&token).unwrap();
            verify(&t, &keys, &validation(&aud)).unwrap();
        }
        let per = start.elapsed() / n;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(UnverifiedToken::parse(&token).unwrap());
        }
        let parse = start.elapsed() / n;
        println!(
            "{name}: parse+verify {per:?}/token ({:.0}/s on one core), parse alone {parse:?}",
            1.0 / per.as_secs_f64()
        );
    }
}
