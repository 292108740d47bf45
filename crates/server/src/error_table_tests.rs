//! Every [`ErrorCode`], rendered by each protocol's renderer, checked against what the clients
//! know: the error shapes of the botocore models (`iam` and `sts` for the query protocol, `eks`,
//! `eks-auth`) where the model defines the name, else AWS's common errors (the signed-request
//! and request-shape errors every service's front door answers with, which no model lists).
//!
//! The models are read from botocore's data directory: `$PODIAM_BOTOCORE_DATA`, else the
//! repository's `.venv` (scripts/pyenv.sh). Without them only the pinned renderings are checked,
//! unless `CI=true`, where their absence fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::response::Response;
use podiam_control::{AwsError, ErrorCode, Protocol};

/// Names AWS answers with that no model defines, and their statuses, per protocol.
/// Query: docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html (and IAM's). rest-json:
/// the front door's names of the same errors, as the SDKs parse them (`x-amzn-ErrorType`).
const COMMON_QUERY: &[(&str, u16)] = &[
    ("AccessDenied", 403),
    ("IncompleteSignature", 400),
    ("InvalidAction", 400),
    ("InvalidClientTokenId", 403),
    ("InvalidParameterValue", 400),
    ("MissingAction", 400),
    ("MissingAuthenticationToken", 403),
    ("MissingParameter", 400),
    ("RequestEntityTooLarge", 413),
    ("RequestTimeout", 408),
    ("ServiceUnavailable", 503),
    ("SignatureDoesNotMatch", 403),
    ("UnknownOperationException", 404),
    ("ValidationError", 400),
    ("ExpiredToken", 403),
];
const COMMON_REST_JSON: &[(&str, u16)] = &[
    ("AccessDeniedException", 403),
    ("ExpiredTokenException", 403),
    ("IncompleteSignatureException", 400),
    ("InvalidAction", 400),
    ("InvalidSignatureException", 403),
    ("MissingAction", 400),
    ("MissingAuthenticationTokenException", 403),
    ("RequestEntityTooLargeException", 413),
    ("RequestTimeoutException", 408),
    ("UnknownOperationException", 404),
    ("UnrecognizedClientException", 403),
];

/// Codes only CloudTrail's `LookupEvents` answers (its JSON 1.1 renderer alone shows them).
const CLOUDTRAIL_ONLY: &[ErrorCode] = &[
    ErrorCode::InvalidLookupAttributes,
    ErrorCode::InvalidTimeRange,
    ErrorCode::InvalidMaxResults,
    ErrorCode::InvalidNextToken,
    ErrorCode::InvalidEventCategory,
    ErrorCode::Serialization,
];
/// The JSON 1.1 front door's names of the signed-request errors, all 400 (and the two faults
/// of the service).
const COMMON_JSON: &[(&str, u16)] = &[
    ("AccessDeniedException", 400),
    ("ExpiredTokenException", 400),
    ("IncompleteSignatureException", 400),
    ("InvalidSignatureException", 400),
    ("MissingAuthenticationTokenException", 400),
    ("SerializationException", 400),
    ("UnknownOperationException", 400),
    ("UnrecognizedClientException", 400),
    ("ServiceUnavailableException", 503),
];

/// What real clients were seen to need, spelled out in full (the table must not drift).
const PINNED: &[(ErrorCode, Protocol, &str, u16)] = &[
    (
        ErrorCode::InvalidClientTokenId,
        Protocol::Query,
        "InvalidClientTokenId",
        403,
    ),
    (
        ErrorCode::InvalidClientTokenId,
        Protocol::Eks,
        "UnrecognizedClientException",
        403,
    ),
    (
        ErrorCode::InvalidClientTokenId,
        Protocol::EksAuth,
        "UnrecognizedClientException",
        403,
    ),
    (
        ErrorCode::SignatureDoesNotMatch,
        Protocol::Query,
        "SignatureDoesNotMatch",
        403,
    ),
    (
        ErrorCode::SignatureDoesNotMatch,
        Protocol::Eks,
        "InvalidSignatureException",
        403,
    ),
    (
        ErrorCode::SignatureDoesNotMatch,
        Protocol::EksAuth,
        "InvalidSignatureException",
        403,
    ),
    (
        ErrorCode::ExpiredToken,
        Protocol::Query,
        "ExpiredToken",
        403,
    ),
    (
        ErrorCode::ExpiredToken,
        Protocol::Eks,
        "ExpiredTokenException",
        403,
    ),
    (
        ErrorCode::AccessDenied,
        Protocol::Query,
        "AccessDenied",
        403,
    ),
    (
        ErrorCode::AccessDenied,
        Protocol::Eks,
        "AccessDeniedException",
        403,
    ),
    (
        ErrorCode::AccessDenied,
        Protocol::EksAuth,
        "AccessDeniedException",
        400,
    ),
    (
        ErrorCode::NoSuchEntity,
        Protocol::Query,
        "NoSuchEntity",
        404,
    ),
    (
        ErrorCode::ResourceNotFound,
        Protocol::Eks,
        "ResourceNotFoundException",
        404,
    ),
    (
        ErrorCode::ResourceNotFound,
        Protocol::EksAuth,
        "ResourceNotFoundException",
        404,
    ),
    (
        ErrorCode::ExpiredIdentityToken,
        Protocol::Query,
        "ExpiredTokenException",
        400,
    ),
    (
        ErrorCode::ExpiredIdentityToken,
        Protocol::EksAuth,
        "ExpiredTokenException",
        400,
    ),
    (
        ErrorCode::InvalidToken,
        Protocol::EksAuth,
        "InvalidTokenException",
        400,
    ),
    (
        ErrorCode::InternalFailure,
        Protocol::Query,
        "ServiceFailure",
        500,
    ),
    (
        ErrorCode::InternalFailure,
        Protocol::Eks,
        "ServerException",
        500,
    ),
    (
        ErrorCode::InternalFailure,
        Protocol::EksAuth,
        "InternalServerException",
        500,
    ),
];

/// A model's errors: code (as on the wire) → status (`None` where the model gives none).
type ModelErrors = BTreeMap<String, Option<u16>>;

fn data_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("PODIAM_BOTOCORE_DATA") {
        return Some(PathBuf::from(d));
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages/botocore/data"))
        .find(|p| p.is_dir())
}

/// The errors of service `svc`'s newest model, or `None` when no model is there.
fn model_errors(data: &Path, svc: &str) -> Option<ModelErrors> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(data.join(svc))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    let dir = versions.pop()?;
    let plain = dir.join("service-2.json");
    let text = if plain.is_file() {
        std::fs::read_to_string(plain).ok()?
    } else {
        // botocore ships its models gzipped; gzip(1) spares a dependency for one test.
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(dir.join("service-2.json.gz"))
            .output()
            .ok()?;
        assert!(out.status.success(), "gzip -dc failed on the {svc} model");
        String::from_utf8(out.stdout).ok()?
    };
    let model: serde_json::Value = serde_json::from_str(&text).expect("model is JSON");
    let mut errors = ModelErrors::new();
    for (name, shape) in model["shapes"].as_object().expect("shapes") {
        if shape.get("exception").and_then(serde_json::Value::as_bool) != Some(true) {
            continue;
        }
        let e = &shape["error"];
        let code = e.get("code").and_then(|c| c.as_str()).unwrap_or(name);
        let status = e
            .get("httpStatusCode")
            .and_then(serde_json::Value::as_u64)
            .map(|s| u16::try_from(s).unwrap());
        errors.insert(code.to_owned(), status);
    }
    Some(errors)
}

/// The models of each protocol, if present.
fn models() -> Option<BTreeMap<&'static str, ModelErrors>> {
    let data = data_dir()?;
    let mut out = BTreeMap::new();
    for svc in ["iam", "sts", "eks", "eks-auth", "cloudtrail"] {
        out.insert(svc, model_errors(&data, svc)?);
    }
    Some(out)
}

async fn body(r: Response) -> String {
    String::from_utf8(
        axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

/// What a protocol's renderer puts on the wire for `code`: (name, status).
async fn rendered(code: ErrorCode, protocol: Protocol) -> (String, u16) {
    let e = AwsError::new(code, "m");
    match protocol {
        Protocol::Query => {
            let r = crate::query_api::render_error(&e, crate::wire::xml::IAM_NS, "rid");
            let status = r.status().as_u16();
            let xml = body(r).await;
            let name = xml
                .split("<Code>")
                .nth(1)
                .and_then(|s| s.split("</Code>").next())
                .unwrap();
            let kind = if status < 500 {
                "<Type>Sender</Type>"
            } else {
                "<Type>Receiver</Type>"
            };
            assert!(xml.contains(kind), "{code:?}: {xml}");
            (name.to_owned(), status)
        }
        Protocol::Eks | Protocol::EksAuth => {
            let service = if protocol == Protocol::Eks {
                crate::wire::restjson::Service::Eks
            } else {
                crate::wire::restjson::Service::EksAuth
            };
            let r = crate::eks_api::error(&e, service, "rid");
            let status = r.status().as_u16();
            let name = r.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
            assert_eq!(body(r).await, r#"{"message":"m"}"#);
            if protocol == Protocol::EksAuth {
                // Direct mode relays EKS Auth's answer in the node agent's error line.
                let r = crate::container_api::agent_error(&e, "rid");
                assert_eq!(r.status().as_u16(), status, "{code:?}");
                let fault = if status < 500 { "client" } else { "server" };
                assert_eq!(
                    body(r).await,
                    format!("[rid]: ({name}): m, fault: {fault}\n")
                );
            }
            (name, status)
        }
        Protocol::CloudTrail => {
            let r = crate::cloudtrail_api::error(&e, "rid");
            let status = r.status().as_u16();
            let name = r.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
            (name, status)
        }
    }
}

#[tokio::test]
async fn every_code_renders_as_the_clients_expect() {
    let models = models();
    if models.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the botocore models are missing (scripts/pyenv.sh)"
        );
        eprintln!("botocore models not found: checking against the common errors only");
    }
    let mut checked_against_model = 0;
    for &code in ErrorCode::ALL {
        if CLOUDTRAIL_ONLY.contains(&code) {
            continue;
        }
        for protocol in Protocol::ALL {
            let (name, status) = rendered(code, protocol).await;
            assert_eq!(
                (name.as_str(), status),
                (code.wire(protocol).name, code.wire(protocol).status),
                "{code:?} {protocol:?}"
            );
            let common = match protocol {
                Protocol::Query => COMMON_QUERY,
                Protocol::Eks | Protocol::EksAuth => COMMON_REST_JSON,
                Protocol::CloudTrail => COMMON_JSON,
            };
            let services: &[&str] = match protocol {
                Protocol::Query => &["iam", "sts"],
                Protocol::Eks => &["eks"],
                Protocol::EksAuth => &["eks-auth"],
                Protocol::CloudTrail => &["cloudtrail"],
            };
            let modeled: Option<Option<u16>> = models
                .as_ref()
                .and_then(|m| services.iter().find_map(|s| m[s].get(&name).copied()));
            match modeled {
                Some(Some(want)) => {
                    assert_eq!(
                        status, want,
                        "{code:?} as {name} on {protocol:?}: the model says {want}"
                    );
                    checked_against_model += 1;
                }
                Some(None) => checked_against_model += 1,
                None => {
                    // Not in the model: one of AWS's common errors. Without the models there
                    // is no telling a common error from a modeled one whose status differs
                    // (EKS Auth's ExpiredTokenException is 400, the front door's 403), so
                    // only the pinned renderings are checked then.
                    if models.is_some() {
                        let known = common.iter().find(|(n, _)| *n == name);
                        let (_, want) = known.unwrap_or_else(|| panic!("{code:?} renders as {name} on {protocol:?}: neither modeled nor a common error"));
                        assert_eq!(status, *want, "{code:?} as {name} on {protocol:?}");
                    }
                }
            }
        }
    }
    if models.is_some() {
        assert!(
            checked_against_model > 40,
            "only {checked_against_model} renderings were checked against a model"
        );
    }
    for &(code, protocol, name, status) in PINNED {
        assert_eq!(
            rendered(code, protocol).await,
            (name.to_owned(), status),
            "{code:?} {protocol:?}"
        );
    }
}

#[test]
fn the_models_list_what_the_table_relies_on() {
    let Some(m) = models() else { return };
    assert_eq!(m["eks-auth"].get("AccessDeniedException"), Some(&Some(400)));
    assert_eq!(m["eks"].get("AccessDeniedException"), Some(&Some(403)));
    assert_eq!(m["sts"].get("ExpiredTokenException"), Some(&Some(400)));
    assert_eq!(m["iam"].get("NoSuchEntity"), Some(&Some(404)));
    // The signed-request errors are no model's: their names come from the common errors.
    assert!(!m["eks"].contains_key("UnrecognizedClientException"));
}

/// `LookupEvents`' errors and the signed-request errors, as CloudTrail's JSON 1.1 renderer puts
/// them on the wire: `__type` and `x-amzn-ErrorType` alike, names from the cloudtrail model or
/// the JSON front door's, 400 for the caller's faults.
#[tokio::test]
async fn cloudtrail_answers_its_models_names() {
    let models = models();
    let codes = [
        ErrorCode::InvalidClientTokenId,
        ErrorCode::SignatureDoesNotMatch,
        ErrorCode::IncompleteSignature,
        ErrorCode::MissingAuthenticationToken,
        ErrorCode::ExpiredToken,
        ErrorCode::AccessDenied,
        ErrorCode::UnknownOperation,
        ErrorCode::ServiceUnavailable,
    ];
    for code in CLOUDTRAIL_ONLY.iter().chain(&codes).copied() {
        let r = crate::cloudtrail_api::error(&AwsError::new(code, "m"), "rid");
        let status = r.status().as_u16();
        let header = r.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        let v: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
        assert_eq!(v["__type"], header.as_str(), "{code:?}");
        assert_eq!(v["message"], "m");
        let w = code.wire(Protocol::CloudTrail);
        assert_eq!((header.as_str(), status), (w.name, w.status), "{code:?}");
        let modeled = models
            .as_ref()
            .map(|m| m["cloudtrail"].contains_key(&header));
        let common = COMMON_JSON.iter().find(|(n, _)| *n == header);
        match (modeled, common) {
            (_, Some((_, want))) => assert_eq!(status, *want, "{code:?} as {header}"),
            (Some(true), None) => assert_eq!(status, 400, "{code:?} as {header}"),
            (None, None) => assert!(CLOUDTRAIL_ONLY.contains(&code), "{code:?} as {header}"),
            (Some(false), None) => {
                panic!("{code:?} renders as {header}: neither modeled nor common")
            }
        }
    }
    if let Some(m) = models {
        for name in [
            "InvalidLookupAttributesException",
            "InvalidTimeRangeException",
            "InvalidMaxResultsException",
            "InvalidNextTokenException",
            "InvalidEventCategoryException",
        ] {
            assert!(m["cloudtrail"].contains_key(name), "{name}");
        }
    }
}
