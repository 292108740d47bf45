//! The clients' notion of wall-clock time, adjustable for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time as Unix milliseconds, plus an offset that tests can move forward.
///
/// Every time-dependent decision of the agent and the clients (token `exp`/`nbf`, credential validity,
/// refresh scheduling, SigV4 dates) reads this clock. Clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        sys.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Now, in Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Move this clock (and every clone) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Formats Unix milliseconds as the SigV4 `x-amz-date`, `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| "19700101T000000Z".to_owned())
}

/// Parses an RFC 3339 timestamp (as in STS XML) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(1_700_862_734), "2023-11-24T21:52:14Z");
        assert_eq!(amz_date(1_440_938_160_000), "20150830T123600Z");
        assert_eq!(parse_rfc3339("2023-11-24T21:52:14Z"), Some(1_700_862_734));
        assert_eq!(parse_rfc3339("2023-11-24T21:52:14.5Z"), Some(1_700_862_734));
    }

    #[test]
    fn advance_is_shared() {
        let c = Clock::system();
        let d = c.clone();
        let before = d.now_ms();
        c.advance(Duration::from_secs(3600));
        assert!(d.now_ms() >= before + 3_600_000);
    }
}
