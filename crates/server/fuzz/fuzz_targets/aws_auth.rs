//! cargo-fuzz target: arbitrary bytes as an aws-auth ConfigMap file (`serve --aws-auth`): the
//! parser must answer a mapping or an error, within its bounds, for any input; a parsed
//! mapping's lookups must not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_control::access::AwsAuth;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(map) = AwsAuth::parse(&text) {
        let _ = map.warnings();
        let _ = map.lookup("arn:aws:iam::111122223333:role/ops", "111122223333");
        let _ = map.lookup("arn:aws:iam::111122223333:user/eng/alice", "111122223333");
    }
});
