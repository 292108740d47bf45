//! The agent's metrics, in a `prometheus-client` registry rendered as Prometheus text.
//!
//! The `pod_identity_*` names are eks-pod-identity-agent's, so its dashboards work unchanged.
//! They carry no `_total`, which this library's encoder adds to every counter: they are
//! registered untyped ([`Untyped`]) so their samples keep the original names, and
//! [`Metrics::render`] declares them `counter` again, as the Go client does.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// eks-pod-identity-agent's counters, whose names have no `_total`.
const EKS_AGENT_COUNTERS: [&str; 3] = [
    "pod_identity_http_response",
    "pod_identity_cache_state",
    "pod_identity_cache_errors",
];

type Labels1 = [(&'static str, String); 1];
type Labels2 = [(&'static str, String); 2];

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: Family<Labels1, Counter>,
    cache_state: Family<Labels1, Counter>,
    errors: Family<Labels2, Counter>,
    upstream_calls: Counter,
    upstream_errors: Counter,
    latency: Histogram,
    refreshes: Counter,
    local_refusals: Counter,
    cache_entries: Gauge<i64, AtomicI64>,
    ready: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http = Family::<Labels1, Counter>::default();
        let cache_state = Family::<Labels1, Counter>::default();
        let errors = Family::<Labels2, Counter>::default();
        let upstream_calls = Counter::default();
        let upstream_errors = Counter::default();
        let latency = Histogram::new(LATENCY_BUCKETS);
        let refreshes = Counter::default();
        let local_refusals = Counter::default();
        let cache_entries = Gauge::default();
        let ready = Gauge::default();
        for state in ["hit", "miss", "evicted"] {
            drop(cache_state.get_or_create(&[("state", state.to_owned())]));
        }
        registry.register(
            "pod_identity_http_response",
            "Responses of the credentials endpoint, by HTTP status",
            Untyped(http.clone()),
        );
        registry.register(
            "pod_identity_cache_state",
            "Credential cache lookups and evictions",
            Untyped(cache_state.clone()),
        );
        registry.register(
            "pod_identity_cache_errors",
            "Failed EKS Auth fetches, by kind and error code",
            Untyped(errors.clone()),
        );
        registry.register(
            "podiam_agent_upstream_calls",
            "HTTP attempts to EKS Auth",
            upstream_calls.clone(),
        );
        registry.register(
            "podiam_agent_upstream_errors",
            "Failed HTTP attempts to EKS Auth",
            upstream_errors.clone(),
        );
        registry.register(
            "podiam_agent_upstream_latency_seconds",
            "Latency of HTTP attempts to EKS Auth",
            latency.clone(),
        );
        registry.register(
            "podiam_agent_cache_refreshes",
            "Background credential refreshes that succeeded",
            refreshes.clone(),
        );
        registry.register(
            "podiam_agent_local_refusals",
            "Tokens refused against the cluster's keys without an EKS Auth call",
            local_refusals.clone(),
        );
        registry.register(
            "podiam_agent_cache_entries",
            "Credential sets held in the cache",
            cache_entries.clone(),
        );
        registry.register(
            "podiam_agent_ready",
            "1 when the listeners are bound and node credentials resolved",
            ready.clone(),
        );
        Self {
            registry,
            http,
            cache_state,
            errors,
            upstream_calls,
            upstream_errors,
            latency,
            refreshes,
            local_refusals,
            cache_entries,
            ready,
        }
    }
}

impl Metrics {
    /// Count a response of the credentials listeners.
    pub fn http_response(&self, code: u16) {
        self.http.get_or_create(&[("code", code.to_string())]).inc();
    }

    fn state(&self, state: &str) -> u64 {
        self.cache_state
            .get(&[("state", state.to_owned())])
            .map_or(0, |c| c.get())
    }

    /// A cache hit.
    pub fn hit(&self) {
        self.cache_state
            .get_or_create(&[("state", "hit".to_owned())])
            .inc();
    }

    /// A cache miss.
    pub fn miss(&self) {
        self.cache_state
            .get_or_create(&[("state", "miss".to_owned())])
            .inc();
    }

    /// An entry evicted (refresh failure, expiry or the size bound).
    pub fn evicted(&self) {
        self.cache_state
            .get_or_create(&[("state", "evicted".to_owned())])
            .inc();
    }

    /// A background refresh.
    pub fn refreshed(&self) {
        self.refreshes.inc();
    }

    /// A token refused by the agent against the cluster's keys, with no upstream call.
    pub fn local_refusal(&self) {
        self.local_refusals.inc();
    }

    /// A failed upstream fetch, by kind and error code.
    pub fn cache_error(&self, kind: ErrorKind, code: &str) {
        let kind = match kind {
            ErrorKind::Recoverable => "Recoverable",
            ErrorKind::NonRecoverable => "NonRecoverable",
        };
        // The code comes from upstream: keep it to a label-safe alphabet.
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .take(64)
            .collect();
        self.errors
            .get_or_create(&[("type", kind.to_owned()), ("code", code)])
            .inc();
    }

    /// One upstream HTTP attempt and its latency.
    pub fn upstream_call(&self, latency: Duration, ok: bool) {
        self.upstream_calls.inc();
        if !ok {
            self.upstream_errors.inc();
        }
        self.latency.observe(latency.as_secs_f64());
    }

    /// Upstream HTTP attempts so far.
    pub fn upstream_calls(&self) -> u64 {
        self.upstream_calls.get()
    }

    /// The cache counters: (hit, miss, evicted).
    pub fn cache_counts(&self) -> (u64, u64, u64) {
        (self.state("hit"), self.state("miss"), self.state("evicted"))
    }

    /// The Prometheus text exposition.
    pub fn render(&self, cache_entries: usize, ready: bool) -> String {
        self.cache_entries
            .set(i64::try_from(cache_entries).unwrap_or(i64::MAX));
        self.ready.set(i64::from(ready));
        let mut o = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut o, &self.registry);
        for name in EKS_AGENT_COUNTERS {
            o = o.replacen(
                &format!("# TYPE {name} untyped\n"),
                &format!("# TYPE {name} counter\n"),
                1,
            );
        }
        o
    }
}

/// A metric exposed untyped: its samples keep the registered name exactly (no `_total`).
#[derive(Debug, Clone)]
pub struct Untyped<M>(pub M);

impl<M: EncodeMetric> EncodeMetric for Untyped<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
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
