//! Runs the `parse_authorization` fuzz harness (`fuzz/harness.rs`) on stable: over the
//! committed seed corpus, over single-byte mutations of every seed, and over random bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

use proptest::prelude::*;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_authorization");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn seed_corpus_parses_as_labelled() {
    let outcomes: Vec<(String, bool)> = seeds()
        .into_iter()
        .map(|(name, data)| (name, harness::run(&data)))
        .collect();
    let expected: Vec<(String, bool)> = [
        ("header-vanilla", true),
        ("header-with-token", true),
        ("malformed", false),
        ("other-scheme", false),
        ("presigned", true),
    ]
    .iter()
    .map(|(n, b)| ((*n).to_owned(), *b))
    .collect();
    assert_eq!(outcomes, expected);
}

#[test]
fn every_single_byte_mutation_of_the_seeds_is_handled() {
    let mut parsed = 0;
    let mut rejected = 0;
    for (_, data) in seeds() {
        for i in 0..data.len() {
            for b in [0u8, b'/', b',', b'=', b'%', b' ', 0xff] {
                let mut m = data.clone();
                m[i] = b;
                if harness::run(&m) {
                    parsed += 1;
                } else {
                    rejected += 1;
                }
            }
        }
    }
    // Both outcomes occur: the mutations reach past the first checks.
    assert!(
        parsed > 100 && rejected > 100,
        "parsed {parsed}, rejected {rejected}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        harness::run(&data);
    }

    #[test]
    fn random_structured_inputs_never_panic(
        auth in "AWS4-HMAC-SHA256( [A-Za-z]{0,14}=[A-Za-z0-9/;,_ -]{0,40}){0,4}",
        query in "([A-Za-z%+-]{0,16}=[A-Za-z0-9%+/-]{0,16}&?){0,6}",
        date in "[0-9TZ]{0,17}",
    ) {
        let mut data = auth.into_bytes();
        data.push(0);
        data.extend_from_slice(query.as_bytes());
        data.push(0);
        data.extend_from_slice(date.as_bytes());
        harness::run(&data);
    }
}
