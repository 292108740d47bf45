//! CloudTrail's `LookupEvents` over the AWS JSON 1.1 protocol (`POST /` with
//! `X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`, signed
//! for `cloudtrail`), so `aws cloudtrail lookup-events` and the SDKs read podiam's audit trail.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use podiam_control::audit::lookup::LookupRequest;
use podiam_control::{AwsError, ErrorCode, Protocol};
use serde_json::{Value, json};

use crate::{App, Incoming};

const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Whether a `POST /` is a CloudTrail call.
pub(crate) fn is_cloudtrail(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(TARGET_PREFIX))
}

pub(crate) async fn handle(app: &App, inc: Incoming) -> Response {
    let target = inc
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default()
        .to_owned();
    let action = if target == "LookupEvents" {
        "LookupEvents"
    } else {
        "other"
    };
    let mut resp = match answer(app, &inc, &target).await {
        Ok(v) => (
            StatusCode::OK,
            [("content-type", CONTENT_TYPE)],
            v.to_string(),
        )
            .into_response(),
        Err(e) => error(&e, &inc.meta.request_id),
    };
    crate::metrics::mark(&mut resp, "cloudtrail", action);
    resp
}

/// A JSON 1.1 error: `{"__type": NAME, "message": ...}`, 400 for every fault of the caller.
pub(crate) fn error(e: &AwsError, rid: &str) -> Response {
    let wire = e.wire(Protocol::CloudTrail);
    if !wire.is_sender() {
        tracing::error!(code = %e.code, request_id = rid, "internal error");
    }
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (
        status,
        [
            ("content-type", CONTENT_TYPE),
            ("x-amzn-errortype", wire.name),
        ],
        json!({"__type": wire.name, "message": e.message}).to_string(),
    )
        .into_response();
    crate::metrics::mark_error(&mut r, e);
    r
}

async fn answer(app: &App, inc: &Incoming, target: &str) -> Result<Value, AwsError> {
    let caller = inc.caller(app, "cloudtrail")?;
    if target != "LookupEvents" {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("The operation {target} is not supported by podiam."),
        ));
    }
    let req = decode(&inc.body)?;
    let page = app.control.lookup_events(&caller, &inc.meta, req).await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|r| {
            let mut e = json!({
                "EventId": r.event_id,
                "EventName": r.event_name,
                "ReadOnly": if r.read_only { "true" } else { "false" },
                "EventTime": crate::wire::restjson::epoch(r.event_time_ms / 1000 * 1000),
                "EventSource": r.event_source,
                "Resources": r.resources.iter().map(|(t, n)| json!({"ResourceType": t, "ResourceName": n})).collect::<Vec<_>>(),
                "CloudTrailEvent": r.record,
            });
            if let Some(o) = e.as_object_mut() {
                if !r.access_key_id.is_empty() {
                    o.insert("AccessKeyId".into(), json!(r.access_key_id));
                }
                if !r.username.is_empty() {
                    o.insert("Username".into(), json!(r.username));
                }
            }
            e
        })
        .collect();
    let mut out = json!({ "Events": events });
    if let (Some(t), Some(o)) = (page.next_token, out.as_object_mut()) {
        o.insert("NextToken".into(), json!(t));
    }
    Ok(out)
}

fn serialization(m: &str) -> AwsError {
    AwsError::new(ErrorCode::Serialization, m)
}

/// The request body, its members typed as the model types them.
pub(crate) fn decode(body: &[u8]) -> Result<LookupRequest, AwsError> {
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| serialization("The request body is not JSON."))?
    };
    let o = v
        .as_object()
        .ok_or_else(|| serialization("The request body must be a JSON object."))?;
    let mut req = LookupRequest::default();
    let string = |k: &str| -> Result<Option<String>, AwsError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(serialization(&format!("{k} must be a string."))),
        }
    };
    let time = |k: &str| -> Result<Option<f64>, AwsError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(serialization(&format!(
                "{k} must be a timestamp (epoch seconds)."
            ))),
        }
    };
    if let Some(a) = o.get("LookupAttributes") {
        let list = a
            .as_array()
            .ok_or_else(|| serialization("LookupAttributes must be a list."))?;
        for item in list {
            let kv = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
            match (kv("AttributeKey"), kv("AttributeValue")) {
                (Some(k), Some(v)) => req.attributes.push((k, v)),
                _ => {
                    return Err(AwsError::new(
                        ErrorCode::InvalidLookupAttributes,
                        "Each lookup attribute needs an AttributeKey and an AttributeValue.",
                    ));
                }
            }
        }
    }
    req.start = time("StartTime")?;
    req.end = time("EndTime")?;
    req.event_category = string("EventCategory")?;
    req.next_token = string("NextToken")?;
    req.max_results = match o.get("MaxResults") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| {
            AwsError::new(
                ErrorCode::InvalidMaxResults,
                "MaxResults must be an integer.",
            )
        })?),
        Some(_) => return Err(serialization("MaxResults must be an integer.")),
    };
    Ok(req)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodies_decode_as_the_model_types_them() {
        let r = decode(br#"{"LookupAttributes":[{"AttributeKey":"AccessKeyId","AttributeValue":"ASIA1"}],"StartTime":1.5,"MaxResults":3,"NextToken":"t"}"#).unwrap();
        assert_eq!(
            r.attributes,
            vec![("AccessKeyId".to_owned(), "ASIA1".to_owned())]
        );
        assert_eq!(
            (r.start, r.max_results, r.next_token.as_deref()),
            (Some(1.5), Some(3), Some("t"))
        );
        assert!(decode(b"").unwrap().attributes.is_empty());
        for (body, code) in [
            (&b"not json"[..], ErrorCode::Serialization),
            (b"[]", ErrorCode::Serialization),
            (br#"{"StartTime":"yesterday"}"#, ErrorCode::Serialization),
            (br#"{"MaxResults":"5"}"#, ErrorCode::Serialization),
            (br#"{"MaxResults":2.5}"#, ErrorCode::InvalidMaxResults),
            (
                br#"{"LookupAttributes":[{"AttributeKey":"EventName"}]}"#,
                ErrorCode::InvalidLookupAttributes,
            ),
            (br#"{"LookupAttributes":{"a":1}}"#, ErrorCode::Serialization),
        ] {
            assert_eq!(
                decode(body).unwrap_err().code,
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
