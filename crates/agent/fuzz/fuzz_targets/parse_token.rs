//! The agent's pre-check of the `Authorization` value a pod sends: any bytes must give a
//! token's times or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = podiam_agent::token::parse(s);
    }
});
