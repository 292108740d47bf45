//! CloudTrail `LookupEvents` over the stored events: one lookup attribute at most, a time
//! range, pages of up to 50 events, newest first, and only the caller's own account's events.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_store::{AuditAttr, AuditCursor, AuditQuery, AuditRow};

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::error::{AwsError, ErrorCode, Result};

/// `LookupEvents`' input, as decoded from the wire.
#[derive(Clone, Debug, Default)]
pub struct LookupRequest {
    /// `LookupAttributes`: (AttributeKey, AttributeValue) pairs.
    pub attributes: Vec<(String, String)>,
    /// `StartTime`, seconds since the epoch.
    pub start: Option<f64>,
    /// `EndTime`, seconds since the epoch.
    pub end: Option<f64>,
    /// `EventCategory`.
    pub event_category: Option<String>,
    /// `MaxResults`.
    pub max_results: Option<i64>,
    /// `NextToken`.
    pub next_token: Option<String>,
}

/// One page of events.
#[derive(Debug, Default)]
pub struct LookupPage {
    /// The events, newest first.
    pub events: Vec<AuditRow>,
    /// The token of the next page.
    pub next_token: Option<String>,
}

const TOKEN_PURPOSE: &str = "podiam cloudtrail next token v1";
/// CloudTrail's page size, default and largest.
const MAX_RESULTS: i64 = 50;
/// Longest attribute value CloudTrail accepts.
const MAX_VALUE: usize = 2000;

fn error(code: ErrorCode, message: impl Into<String>) -> AwsError {
    AwsError::new(code, message)
}

/// The one lookup attribute, checked.
fn attribute(attrs: &[(String, String)]) -> Result<Option<AuditAttr>> {
    let bad = |m: String| error(ErrorCode::InvalidLookupAttributes, m);
    let [(key, value)] = attrs else {
        return if attrs.is_empty() {
            Ok(None)
        } else {
            Err(bad(
                "You cannot specify more than one lookup attribute.".into()
            ))
        };
    };
    // CloudTrail counts `_`, space, `,` and newline twice towards the limit.
    let weight: usize = value
        .chars()
        .map(|c| {
            if matches!(c, '_' | ' ' | ',' | '\n') {
                2
            } else {
                1
            }
        })
        .sum();
    if value.is_empty() || weight > MAX_VALUE {
        return Err(bad(format!(
            "The attribute value for {key} must be 1 to {MAX_VALUE} characters long."
        )));
    }
    let v = value.clone();
    Ok(Some(match key.as_str() {
        "EventId" => AuditAttr::EventId(v),
        "EventName" => AuditAttr::EventName(v),
        "Username" => AuditAttr::Username(v),
        "ResourceName" => AuditAttr::ResourceName(v),
        "ResourceType" => AuditAttr::ResourceType(v),
        "AccessKeyId" => AuditAttr::AccessKeyId(v),
        "EventSource" => AuditAttr::EventSource(v),
        "ReadOnly" => match v.as_str() {
            "true" => AuditAttr::ReadOnly(true),
            "false" => AuditAttr::ReadOnly(false),
            _ => {
                return Err(bad(
                    "The ReadOnly attribute value must be true or false.".into()
                ));
            }
        },
        other => return Err(bad(format!("Invalid lookup attribute key: {other}."))),
    }))
}

fn millis(secs: f64) -> Result<i64> {
    if !secs.is_finite() || !(0.0..=253_402_300_799.0).contains(&secs) {
        return Err(error(
            ErrorCode::InvalidTimeRange,
            "The time range is outside the range of possible values.",
        ));
    }
    // The range check above bounds the product well inside i64.
    #[expect(clippy::cast_possible_truncation, reason = "bounded above")]
    Ok((secs * 1000.0).floor() as i64)
}

/// How long a lookup waits for the events queued before it.
const LOOKUP_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

impl Control {
    /// `LookupEvents`, authorized as `cloudtrail:LookupEvents` on `*`.
    pub async fn lookup_events(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        req: LookupRequest,
    ) -> Result<LookupPage> {
        self.authorize(
            caller,
            Action::CloudTrailLookupEvents,
            &Target::wildcard(caller.account()),
            meta,
            Keys::none(),
        )?;
        let attr = attribute(&req.attributes)?;
        match req.event_category.as_deref() {
            None => {}
            // Insights events: podiam has none.
            Some("insight") => return Ok(LookupPage::default()),
            Some(other) => {
                return Err(error(
                    ErrorCode::InvalidEventCategory,
                    format!("Invalid event category: {other}."),
                ));
            }
        }
        let limit = req.max_results.unwrap_or(MAX_RESULTS);
        if !(1..=MAX_RESULTS).contains(&limit) {
            return Err(error(
                ErrorCode::InvalidMaxResults,
                format!("MaxResults must be between 1 and {MAX_RESULTS}."),
            ));
        }
        let start = req.start.map(millis).transpose()?;
        let end = req.end.map(millis).transpose()?;
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(error(
                ErrorCode::InvalidTimeRange,
                "Start time must be before or equal to end time.",
            ));
        }
        let account = caller.account().to_owned();
        // The token is bound to the account and the query: a token of another query (or
        // another account) is refused as CloudTrail refuses it.
        let binding = format!("{account}\n{attr:?}\n{start:?}\n{end:?}");
        let after = req
            .next_token
            .as_deref()
            .map(|t| self.decode_token(&binding, t))
            .transpose()?;
        let q = AuditQuery {
            account,
            attr,
            start_ms: start,
            end_ms: end,
            limit: usize::try_from(limit).unwrap_or(50),
            after,
        };
        // What this replica accepted before the call is visible to it: the first page waits
        // (briefly) for the queue ahead of it to be written.
        if q.after.is_none()
            && let Some(a) = self.audit()
        {
            a.flush(LOOKUP_FLUSH).await;
        }
        let page = self.db.store().lookup_audit(&q).await.map_err(|e| {
            tracing::warn!(error = %e, "reading audit events failed");
            AwsError::service_failure()
        })?;
        Ok(LookupPage {
            events: page.rows,
            next_token: page.next.map(|c| self.encode_token(&binding, &c)),
        })
    }

    fn encode_token(&self, binding: &str, c: &AuditCursor) -> String {
        let body = format!("{}.{}", c.event_time_ms, c.event_id);
        let tag = self
            .master
            .mac(TOKEN_PURPOSE, format!("{binding}\n{body}").as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    fn decode_token(&self, binding: &str, token: &str) -> Result<AuditCursor> {
        let bad = || {
            error(
                ErrorCode::InvalidNextToken,
                "A token that is not valid, or a token that was previously used in a request with different parameters.",
            )
        };
        let (body, tag) = token.rsplit_once('.').ok_or_else(bad)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        if !self
            .master
            .verify_mac(TOKEN_PURPOSE, format!("{binding}\n{body}").as_bytes(), &tag)
        {
            return Err(bad());
        }
        let (time, id) = body.split_once('.').ok_or_else(bad)?;
        Ok(AuditCursor {
            event_time_ms: time.parse().map_err(|_| bad())?,
            event_id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn one(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_owned(), v.to_owned())]
    }

    #[test]
    fn attributes_are_checked_as_cloudtrail_checks_them() {
        assert_eq!(attribute(&[]).unwrap(), None);
        assert_eq!(
            attribute(&one("AccessKeyId", "ASIAX")).unwrap(),
            Some(AuditAttr::AccessKeyId("ASIAX".into()))
        );
        assert_eq!(
            attribute(&one("ReadOnly", "false")).unwrap(),
            Some(AuditAttr::ReadOnly(false))
        );
        let code = |a: &[(String, String)]| attribute(a).unwrap_err().code;
        assert_eq!(
            code(&one("ReadOnly", "no")),
            ErrorCode::InvalidLookupAttributes
        );
        assert_eq!(
            code(&one("Region", "x")),
            ErrorCode::InvalidLookupAttributes
        );
        assert_eq!(
            code(&one("EventName", "")),
            ErrorCode::InvalidLookupAttributes
        );
        assert_eq!(
            code(&one("EventName", &"_".repeat(1001))),
            ErrorCode::InvalidLookupAttributes
        );
        assert!(attribute(&one("EventName", &"a".repeat(2000))).is_ok());
        let two = [one("EventName", "a"), one("Username", "b")].concat();
        assert_eq!(code(&two), ErrorCode::InvalidLookupAttributes);
    }

    #[test]
    fn times_outside_the_calendar_are_refused() {
        assert_eq!(millis(1.5).unwrap(), 1500);
        for bad in [f64::NAN, f64::INFINITY, -1.0, 1e15] {
            assert_eq!(millis(bad).unwrap_err().code, ErrorCode::InvalidTimeRange);
        }
    }
}
