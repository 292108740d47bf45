//! rest-json (EKS, EKS Auth): JSON bodies, epoch-number timestamps, errors in
//! `x-amzn-ErrorType` plus `{"message": ...}`.

use podiam_control::AwsError;

/// The JSON body of an error.
pub fn error_body(e: &AwsError) -> String {
    serde_json::json!({ "message": e.message }).to_string()
}

/// Epoch seconds with milliseconds, as a JSON number (the SDKs require a number).
pub fn epoch(ms: i64) -> serde_json::Value {
    // i64 → f64 is exact for any realistic millisecond timestamp (< 2^53).
    #[expect(clippy::cast_precision_loss, reason = "millisecond timestamps are far below 2^53")]
    let secs = ms as f64 / 1000.0;
    serde_json::json!(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(error_body(&AwsError::resource_not_found("no cluster \"x\"")), r#"{"message":"no cluster \"x\""}"#);
        assert_eq!(epoch(1_700_862_734_922).to_string(), "1700862734.922");
    }
}
