//! Prometheus text exposition of the agent's counters (hand-written; no registry crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Whether a refresh error keeps the cached entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Kept, retried later.
    Recoverable,
    /// Evicted.
    NonRecoverable,
}

/// The agent's metrics. All updates are relaxed atomics except the (rare) error map.
#[derive(Debug)]
pub struct Metrics {
    http: Box<[AtomicU64]>,
    hit: AtomicU64,
    miss: AtomicU64,
    evicted: AtomicU64,
    errors: parking_lot::Mutex<BTreeMap<(ErrorKind, String), u64>>,
    upstream_calls: AtomicU64,
    upstream_errors: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    refreshes: AtomicU64,
    local_refusals: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            http: (0..600).map(|_| AtomicU64::new(0)).collect(),
            hit: AtomicU64::new(0),
            miss: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            errors: parking_lot::Mutex::new(BTreeMap::new()),
            upstream_calls: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            latency: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_us: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            local_refusals: AtomicU64::new(0),
        }
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Count a response of the credentials listeners.
    pub fn http_response(&self, code: u16) {
        if let Some(c) = self.http.get(usize::from(code)) {
            inc(c);
        }
    }

    /// A cache hit.
    pub fn hit(&self) {
        inc(&self.hit);
    }

    /// A cache miss.
    pub fn miss(&self) {
        inc(&self.miss);
    }

    /// An entry evicted (refresh failure, expiry or the size bound).
    pub fn evicted(&self) {
        inc(&self.evicted);
    }

    /// A background refresh.
    pub fn refreshed(&self) {
        inc(&self.refreshes);
    }

    /// A token refused by the agent against the cluster's keys, with no upstream call.
    pub fn local_refusal(&self) {
        inc(&self.local_refusals);
    }

    /// A failed upstream fetch, by kind and error code.
    pub fn cache_error(&self, kind: ErrorKind, code: &str) {
        *self
            .errors
            .lock()
            .entry((kind, code.to_owned()))
            .or_insert(0) += 1;
    }

    /// One upstream HTTP attempt and its latency.
    pub fn upstream_call(&self, latency: Duration, ok: bool) {
        inc(&self.upstream_calls);
        if !ok {
            inc(&self.upstream_errors);
        }
        let secs = latency.as_secs_f64();
        for (bound, c) in LATENCY_BUCKETS.iter().zip(&self.latency) {
            if secs <= *bound {
                inc(c);
            }
        }
        inc(&self.latency_count);
        self.latency_sum_us.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Upstream HTTP attempts so far.
    pub fn upstream_calls(&self) -> u64 {
        self.upstream_calls.load(Ordering::Relaxed)
    }

    /// The cache counters: (hit, miss, evicted).
    pub fn cache_counts(&self) -> (u64, u64, u64) {
        (
            self.hit.load(Ordering::Relaxed),
            self.miss.load(Ordering::Relaxed),
            self.evicted.load(Ordering::Relaxed),
        )
    }

    /// The Prometheus text exposition.
    pub fn render(&self, cache_entries: usize, ready: bool) -> String {
        let mut o = String::with_capacity(2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        o.push_str("# HELP pod_identity_http_response Responses of the credentials endpoint, by HTTP status.\n");
        o.push_str("# TYPE pod_identity_http_response counter\n");
        for (code, c) in self.http.iter().enumerate() {
            let n = get(c);
            if n > 0 {
                let _ = writeln!(o, "pod_identity_http_response{{code=\"{code}\"}} {n}");
            }
        }
        o.push_str("# HELP pod_identity_cache_state Credential cache lookups and evictions.\n");
        o.push_str("# TYPE pod_identity_cache_state counter\n");
        let _ = writeln!(
            o,
            "pod_identity_cache_state{{state=\"hit\"}} {}",
            get(&self.hit)
        );
        let _ = writeln!(
            o,
            "pod_identity_cache_state{{state=\"miss\"}} {}",
            get(&self.miss)
        );
        let _ = writeln!(
            o,
            "pod_identity_cache_state{{state=\"evicted\"}} {}",
            get(&self.evicted)
        );
        o.push_str(
            "# HELP pod_identity_cache_errors Failed EKS Auth fetches, by kind and error code.\n",
        );
        o.push_str("# TYPE pod_identity_cache_errors counter\n");
        for ((kind, code), n) in self.errors.lock().iter() {
            let kind = match kind {
                ErrorKind::Recoverable => "Recoverable",
                ErrorKind::NonRecoverable => "NonRecoverable",
            };
            let code: String = code
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            let _ = writeln!(
                o,
                "pod_identity_cache_errors{{type=\"{kind}\",code=\"{code}\"}} {n}"
            );
        }
        o.push_str("# HELP podiam_agent_upstream_calls_total HTTP attempts to EKS Auth.\n");
        o.push_str("# TYPE podiam_agent_upstream_calls_total counter\n");
        let _ = writeln!(
            o,
            "podiam_agent_upstream_calls_total {}",
            get(&self.upstream_calls)
        );
        o.push_str("# HELP podiam_agent_upstream_errors_total Failed HTTP attempts to EKS Auth.\n");
        o.push_str("# TYPE podiam_agent_upstream_errors_total counter\n");
        let _ = writeln!(
            o,
            "podiam_agent_upstream_errors_total {}",
            get(&self.upstream_errors)
        );
        o.push_str(
            "# HELP podiam_agent_upstream_latency_seconds Latency of HTTP attempts to EKS Auth.\n",
        );
        o.push_str("# TYPE podiam_agent_upstream_latency_seconds histogram\n");
        for (bound, c) in LATENCY_BUCKETS.iter().zip(&self.latency) {
            let _ = writeln!(
                o,
                "podiam_agent_upstream_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(c)
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            o,
            "podiam_agent_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "podiam_agent_upstream_latency_seconds_sum {}",
            get(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(o, "podiam_agent_upstream_latency_seconds_count {count}");
        o.push_str("# HELP podiam_agent_cache_refreshes_total Background credential refreshes that succeeded.\n");
        o.push_str("# TYPE podiam_agent_cache_refreshes_total counter\n");
        let _ = writeln!(
            o,
            "podiam_agent_cache_refreshes_total {}",
            get(&self.refreshes)
        );
        o.push_str("# HELP podiam_agent_local_refusals_total Tokens refused against the cluster's keys without an EKS Auth call.\n");
        o.push_str("# TYPE podiam_agent_local_refusals_total counter\n");
        let _ = writeln!(
            o,
            "podiam_agent_local_refusals_total {}",
            get(&self.local_refusals)
        );
        o.push_str("# HELP podiam_agent_cache_entries Credential sets held in the cache.\n");
        o.push_str("# TYPE podiam_agent_cache_entries gauge\n");
        let _ = writeln!(o, "podiam_agent_cache_entries {cache_entries}");
        o.push_str("# HELP podiam_agent_ready 1 when the listeners are bound and node credentials resolved.\n");
        o.push_str("# TYPE podiam_agent_ready gauge\n");
        let _ = writeln!(o, "podiam_agent_ready {}", u8::from(ready));
        o
    }
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
    fn renders() {
        let m = Metrics::default();
        m.http_response(200);
        m.http_response(200);
        m.hit();
        m.cache_error(ErrorKind::NonRecoverable, "AccessDeniedException");
        m.upstream_call(Duration::from_millis(20), true);
        let t = m.render(3, true);
        assert!(t.contains("pod_identity_http_response{code=\"200\"} 2\n"));
        assert!(t.contains("pod_identity_cache_state{state=\"hit\"} 1\n"));
        assert!(t.contains(
            "pod_identity_cache_errors{type=\"NonRecoverable\",code=\"AccessDeniedException\"} 1\n"
        ));
        assert!(t.contains("podiam_agent_upstream_latency_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(t.contains("podiam_agent_upstream_latency_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(t.contains("podiam_agent_upstream_calls_total 1\n"));
        assert!(t.contains("podiam_agent_cache_entries 3\n"));
    }
}
