//! cargo-fuzz target: arbitrary bytes as an AWS query-protocol body, read the way the STS and
//! IAM handlers read it (scalars, integers, booleans, member lists, tag structures).

#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_server::wire::query::Params;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Params::parse(data) {
        let _ = p.get("Action");
        let _ = p.int("DurationSeconds");
        let _ = p.bool("SetAsDefault");
        let _ = p.list("ClientIDList");
        let _ = p.struct_list("PolicyArns", "arn");
        let _ = p.tags("Tags");
    }
});
