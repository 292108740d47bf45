//! The webhook's AdmissionReview handling: any request body must give a response or an error
//! (the 400 reason), never a panic; a pod with an identity in a config that maps every service
//! account exercises the mutation itself.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use podiam_webhook::{Associations, ServiceAccounts, Settings, Webhook};

fuzz_target!(|data: &[u8]| {
    let sas = ServiceAccounts::parse(
        r#"{"*/default": {"RoleARN": "arn:aws:iam::111122223333:role/r", "Audience": "sts.amazonaws.com", "UseRegionalSTS": true, "TokenExpiration": 3600}}"#,
    )
    .unwrap_or_default();
    let hook = Webhook::new(Settings::default(), Arc::new(sas), Arc::new(Associations::default()));
    let _ = hook.review_bytes(data);
});
