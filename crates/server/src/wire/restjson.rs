//! rest-json (EKS, EKS Auth): JSON bodies, epoch-number timestamps, errors in
//! `x-amzn-ErrorType` plus `{"message": ...}`.

use podiam_control::{AwsError, Protocol, Wire};

/// The two rest-json services, each with its model's error names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// EKS (and podiam's own extensions under `/podiam/`).
    Eks,
    /// EKS Auth.
    EksAuth,
}

impl Service {
    /// The protocol column of the error table.
    pub fn protocol(self) -> Protocol {
        match self {
            Self::Eks => Protocol::Eks,
            Self::EksAuth => Protocol::EksAuth,
        }
    }
}

/// An error as `service` answers it: the `x-amzn-ErrorType` name and status, and the body.
pub fn error(e: &AwsError, service: Service) -> (Wire, String) {
    (e.wire(service.protocol()), error_body(e))
}

/// The JSON body of an error.
pub fn error_body(e: &AwsError) -> String {
    serde_json::json!({ "message": e.message }).to_string()
}

/// Epoch seconds with milliseconds, as a JSON number (the SDKs require a number).
pub fn epoch(ms: i64) -> serde_json::Value {
    // i64 → f64 is exact for any realistic millisecond timestamp (< 2^53).
    #[expect(
        clippy::cast_precision_loss,
        reason = "millisecond timestamps are far below 2^53"
    )]
    let secs = ms as f64 / 1000.0;
    serde_json::json!(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            error_body(&AwsError::resource_not_found("no cluster \"x\"")),
            r#"{"message":"no cluster \"x\""}"#
        );
        assert_eq!(epoch(1_700_862_734_922).to_string(), "1700862734.922");
    }

    #[test]
    fn each_service_names_its_errors() {
        let denied = AwsError::access_denied("no");
        assert_eq!(
            error(&denied, Service::Eks).0,
            Wire {
                name: "AccessDeniedException",
                status: 403
            }
        );
        assert_eq!(
            error(&denied, Service::EksAuth).0,
            Wire {
                name: "AccessDeniedException",
                status: 400
            }
        );
        let unknown_key = AwsError::invalid_client_token_id();
        assert_eq!(
            error(&unknown_key, Service::Eks).0,
            Wire {
                name: "UnrecognizedClientException",
                status: 403
            }
        );
        assert_eq!(
            error(&unknown_key, Service::EksAuth).0,
            Wire {
                name: "UnrecognizedClientException",
                status: 403
            }
        );
    }
}
