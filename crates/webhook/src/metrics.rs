//! Prometheus metrics, rendered by hand in the text exposition format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::mutate::Method;

/// Latency histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The webhook's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    irsa: AtomicU64,
    pod_identity: AtomicU64,
    none: AtomicU64,
    missing_sa: AtomicU64,
    waited_found: AtomicU64,
    waited_missing: AtomicU64,
    bad_requests: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one admission.
    pub fn admission(&self, method: Method, took: Duration) {
        match method {
            Method::Irsa => &self.irsa,
            Method::PodIdentity => &self.pod_identity,
            Method::None => &self.none,
        }
        .fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records a pod whose service account the webhook does not know.
    pub fn missing_service_account(&self) {
        self.missing_sa.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a lookup that waited for a service account (the grace period), and whether the
    /// service account turned up.
    pub fn lookup_waited(&self, found: bool) {
        if found {
            &self.waited_found
        } else {
            &self.waited_missing
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Lookups that waited so far: (found, not found).
    pub fn lookups_waited(&self) -> (u64, u64) {
        (
            self.waited_found.load(Ordering::Relaxed),
            self.waited_missing.load(Ordering::Relaxed),
        )
    }

    /// Pods whose service account was not known, so far.
    pub fn missing_service_accounts(&self) -> u64 {
        self.missing_sa.load(Ordering::Relaxed)
    }

    /// Records a rejected request (415 or 400).
    pub fn bad_request(&self) {
        self.bad_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Mutations so far for `method`.
    pub fn mutations(&self, method: Method) -> u64 {
        match method {
            Method::Irsa => &self.irsa,
            Method::PodIdentity => &self.pod_identity,
            Method::None => &self.none,
        }
        .load(Ordering::Relaxed)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let _ = writeln!(
            s,
            "# HELP podiam_webhook_mutations_total Pods admitted, by the identity injected."
        );
        let _ = writeln!(s, "# TYPE podiam_webhook_mutations_total counter");
        for m in [Method::Irsa, Method::PodIdentity, Method::None] {
            let _ = writeln!(
                s,
                "podiam_webhook_mutations_total{{method=\"{}\"}} {}",
                m.as_str(),
                self.mutations(m)
            );
        }
        let _ = writeln!(
            s,
            "# HELP podiam_webhook_missing_service_accounts_total Pods whose service account was not known."
        );
        let _ = writeln!(
            s,
            "# TYPE podiam_webhook_missing_service_accounts_total counter"
        );
        let _ = writeln!(
            s,
            "podiam_webhook_missing_service_accounts_total {}",
            self.missing_sa.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP podiam_webhook_service_account_lookup_waits_total Lookups that waited the grace period for an unknown service account, by outcome."
        );
        let _ = writeln!(
            s,
            "# TYPE podiam_webhook_service_account_lookup_waits_total counter"
        );
        let (found, missing) = self.lookups_waited();
        let _ = writeln!(
            s,
            "podiam_webhook_service_account_lookup_waits_total{{result=\"found\"}} {found}"
        );
        let _ = writeln!(
            s,
            "podiam_webhook_service_account_lookup_waits_total{{result=\"missing\"}} {missing}"
        );
        let _ = writeln!(
            s,
            "# HELP podiam_webhook_bad_requests_total Admission requests rejected (415, 400)."
        );
        let _ = writeln!(s, "# TYPE podiam_webhook_bad_requests_total counter");
        let _ = writeln!(
            s,
            "podiam_webhook_bad_requests_total {}",
            self.bad_requests.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP podiam_webhook_admission_duration_seconds Time to compute an admission response."
        );
        let _ = writeln!(
            s,
            "# TYPE podiam_webhook_admission_duration_seconds histogram"
        );
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                s,
                "podiam_webhook_admission_duration_seconds_bucket{{le=\"{le}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "podiam_webhook_admission_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "podiam_webhook_admission_duration_seconds_sum {sum}");
        let _ = writeln!(s, "podiam_webhook_admission_duration_seconds_count {count}");
        s
    }
}
