//! Each answered request that the audit trail keeps becomes one CloudTrail-shaped event: every
//! credential issued or refused, every Kubernetes token review, every call that changes
//! something, and every AccessDenied. Read-only calls that succeed are not kept (CloudTrail's
//! event history keeps them; podiam keeps the trail small enough to answer "who had this key").
//!
//! The request's parameters are recorded without secrets: web identity and service-account
//! tokens, passwords and presigning parameters are left out, and no response body is copied:
//! the services note what the event may show ([`podiam_control::audit::FactsInner`]).

use axum::response::Response;
use podiam_control::audit::record::{self, EventInput};
use podiam_control::audit::{Enqueued, Facts};
use podiam_control::{AwsError, ErrorCode, Protocol};
use serde_json::Value;

use crate::App;
use crate::metrics::{AnsweredError, CREDENTIAL_PATHS};

mod params;

pub(crate) use params::{Seen, request_parameters};

/// Largest `requestParameters` kept whole, serialized; beyond it only the names are kept (a
/// query request may carry 1,000 parameters).
const MAX_PARAMETERS_BYTES: usize = 32 * 1024;
/// Largest `requestParameters` of an anonymous refusal, serialized.
const MAX_ANONYMOUS_PARAMETERS_BYTES: usize = 1024;
/// Longest user agent of an anonymous refusal kept.
const MAX_ANONYMOUS_AGENT_CHARS: usize = 256;
/// Longest `errorMessage` kept (messages may quote what the caller sent).
const MAX_MESSAGE_CHARS: usize = 1024;

fn bounded(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}...(truncated)")
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `requestParameters` no larger than `max` bytes serialized: past it, the parameter names
/// (as many as fit).
fn bounded_parameters(v: Value, max: usize) -> Value {
    let mut size = ByteCount(0);
    if serde_json::to_writer(&mut size, &v).is_ok() && size.0 <= max {
        return v;
    }
    let mut room = max.saturating_sub(64);
    let names: Vec<Value> = v
        .as_object()
        .map(|o| {
            o.keys()
                .take(100)
                .map(|k| bounded(k.clone(), 128))
                .take_while(|k| {
                    let fits = k.len() + 3 <= room;
                    room = room.saturating_sub(k.len() + 3);
                    fits
                })
                .map(Value::String)
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({"podiam:truncated": true, "parameterNames": names})
}

/// The event source and error naming of a protocol label; `None` for what is not an API call.
fn source(protocol: &str) -> Option<(&'static str, Protocol)> {
    Some(match protocol {
        "sts" => ("sts.amazonaws.com", Protocol::Query),
        "iam" => ("iam.amazonaws.com", Protocol::Query),
        "eks" | "podiam" => ("eks.amazonaws.com", Protocol::Eks),
        "eks-auth" | "pod-identity-direct" => ("eks-auth.amazonaws.com", Protocol::EksAuth),
        "cloudtrail" => ("cloudtrail.amazonaws.com", Protocol::CloudTrail),
        _ => return None,
    })
}

fn read_only(action: &str) -> bool {
    ["Get", "List", "Describe", "Lookup", "Simulate"]
        .iter()
        .any(|p| action.starts_with(p))
        || action == "Explain"
}

/// Whether the event of this answer is kept. Authorization reviews (one per Kubernetes
/// request) are not: their decisions follow from the access entries, whose changes are kept.
fn kept(action: &str, read_only: bool, error: Option<&AnsweredError>) -> bool {
    !matches!(action, "other" | "SubjectAccessReview")
        && (CREDENTIAL_PATHS.contains(&action)
            || matches!(action, "TokenReview" | "CreateToken")
            || !read_only
            || error.is_some_and(|e| e.code == ErrorCode::AccessDenied))
}

/// Build and queue the event of an answered request. Returns a replacement response when the
/// answer carries credentials whose event could not be written under `--audit-required`.
pub(crate) async fn record(
    app: &App,
    (protocol_label, action): (&'static str, &'static str),
    error: Option<AnsweredError>,
    success: bool,
    facts: &Facts,
    mut seen: Seen,
    request_id: &str,
) -> Option<Response> {
    let sink = app.control.audit()?;
    let (event_source, protocol) = source(protocol_label)?;
    // Direct mode switched off answers 404 like any unknown path.
    if action == "PodIdentityDirect" && !app.options.direct_pod_identity {
        return None;
    }
    let ro = read_only(action) && !CREDENTIAL_PATHS.contains(&action);
    if !kept(action, ro, error.as_ref()) {
        return None;
    }
    let f = facts.take();
    let error = match (&f.error, error) {
        (Some((c, m)), _) => Some((*c, m.clone())),
        (None, Some(e)) => Some((e.code.wire(protocol).name, e.message)),
        (None, None) => None,
    }
    .map(|(c, m)| (c, bounded(m, MAX_MESSAGE_CHARS)));
    // A refusal no signature vouches for is kept small: its caller chose every byte of it.
    let anonymous = record::is_anonymous_refusal(&f, error.is_some());
    let (max_params, max_agent) = if anonymous {
        (MAX_ANONYMOUS_PARAMETERS_BYTES, MAX_ANONYMOUS_AGENT_CHARS)
    } else {
        (MAX_PARAMETERS_BYTES, usize::MAX)
    };
    // The resources are named even when the parameters are cut to their names.
    let (params, resources) = params::request_facts(protocol_label, action, &seen);
    let params = params.map(|v| bounded_parameters(v, max_params));
    let user_agent = if seen.user_agent.len() > max_agent {
        bounded(std::mem::take(&mut seen.user_agent), max_agent)
    } else {
        std::mem::take(&mut seen.user_agent)
    };
    let now_ms = app.control.now_ms();
    let input = EventInput {
        time_ms: now_ms,
        event_id: event_id(now_ms),
        event_source,
        event_name: action,
        event_type: if action == "TokenReview" {
            "AwsServiceEvent"
        } else {
            "AwsApiCall"
        },
        region: &app.control.config.region,
        source_ip: seen.source_ip,
        user_agent: &user_agent,
        request_id,
        read_only: ro,
        request_parameters: params,
        error,
        resources,
        fallback_account: None,
        facts: f,
    };
    let mut built = record::build(input);
    // A service-account token podiam mints is a credential too: waited for like the others.
    built.issued |= success && action == "CreateToken";
    let issuing = built.issued || CREDENTIAL_PATHS.contains(&action);
    // Only this installation's accounts get rows: an anonymous caller names any account id
    // it likes in a role ARN, and must not make the store keep events for accounts that do not
    // exist (those events are in the log only).
    built.rows.retain(|r| app.control.has_account(&r.account));
    match sink.submit(built) {
        Enqueued::Queued => None,
        Enqueued::Wait(rx) => match rx.await {
            Ok(true) => None,
            _ => Some(withheld(protocol_label, request_id)),
        },
        Enqueued::Dropped if sink.required() && success => {
            issuing.then(|| withheld(protocol_label, request_id))
        }
        Enqueued::Dropped => None,
    }
}

/// The answer that replaces credentials whose event could not be written.
fn withheld(protocol: &str, request_id: &str) -> Response {
    let e = AwsError::service_unavailable(
        "the audit trail cannot record this request now; no credentials were issued; try again",
    );
    match protocol {
        "sts" => crate::query_api::render_error(&e, crate::wire::xml::STS_NS, request_id),
        "iam" => crate::query_api::render_error(&e, crate::wire::xml::IAM_NS, request_id),
        "pod-identity-direct" => crate::container_api::agent_error(&e, request_id),
        "eks" | "podiam" => {
            crate::eks_api::error(&e, crate::wire::restjson::Service::Eks, request_id)
        }
        _ => crate::eks_api::error(&e, crate::wire::restjson::Service::EksAuth, request_id),
    }
}

/// A UUIDv7 of `now_ms`: ids sort by time. Its 74 random bits come from the thread's
/// user-space generator (`uuid`'s own asks the kernel, a system call per event).
fn event_id(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or_default();
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(ms, &random)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn oversized_parameters_keep_the_names_that_fit() {
        let junk: String = (0..100)
            .map(|i| format!("Junk{i:02}={}&", "j".repeat(500)))
            .collect();
        let v = params::query_json(junk.as_bytes(), None).0;
        for max in [MAX_ANONYMOUS_PARAMETERS_BYTES, MAX_PARAMETERS_BYTES] {
            let b = bounded_parameters(v.clone(), max);
            assert!(b.to_string().len() <= max, "{max}: {b}");
            assert_eq!(b["podiam:truncated"], true);
            assert!(!b["parameterNames"].as_array().unwrap().is_empty());
        }
        let small = params::query_json(b"RoleName=r", None).0;
        assert_eq!(bounded_parameters(small.clone(), 64), small);
    }

    #[test]
    fn what_is_kept() {
        let denied = AnsweredError {
            code: ErrorCode::AccessDenied,
            message: String::new(),
        };
        let other = AnsweredError {
            code: ErrorCode::NoSuchEntity,
            message: String::new(),
        };
        assert!(kept("AssumeRoleWithWebIdentity", false, Some(&other)));
        assert!(kept("CreateRole", false, None));
        assert!(kept("GetRole", true, Some(&denied)));
        assert!(!kept("GetRole", true, None));
        assert!(!kept("GetRole", true, Some(&other)));
        assert!(!kept("other", false, Some(&denied)));
        assert!(read_only("ListRoles") && read_only("LookupEvents") && !read_only("CreateRole"));
    }
}
