//! The webhook's metrics, in a `prometheus-client` registry rendered as Prometheus text.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::mutate::Method;

/// Latency histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

type MethodLabel = [(&'static str, &'static str); 1];

/// The webhook's counters.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    mutations: Family<MethodLabel, Counter>,
    missing_sa: Counter,
    associations_unavailable: Counter,
    waits: Family<MethodLabel, Counter>,
    bad_requests: Counter,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mutations = Family::<MethodLabel, Counter>::default();
        for m in [Method::Irsa, Method::PodIdentity, Method::None] {
            drop(mutations.get_or_create(&[("method", m.as_str())]));
        }
        let waits = Family::<MethodLabel, Counter>::default();
        for r in ["found", "missing"] {
            drop(waits.get_or_create(&[("result", r)]));
        }
        let missing_sa = Counter::default();
        let associations_unavailable = Counter::default();
        let bad_requests = Counter::default();
        let duration = Histogram::new(BUCKETS);
        registry.register(
            "podiam_webhook_mutations",
            "Pods admitted, by the identity injected",
            mutations.clone(),
        );
        registry.register(
            "podiam_webhook_missing_service_accounts",
            "Pods whose service account was not known",
            missing_sa.clone(),
        );
        registry.register(
            "podiam_webhook_associations_unavailable",
            "Pods admitted while the Pod Identity associations had never been listed (EKS API unreachable): no Pod Identity could be injected",
            associations_unavailable.clone(),
        );
        registry.register(
            "podiam_webhook_service_account_lookup_waits",
            "Lookups that waited the grace period for an unknown service account, by outcome",
            waits.clone(),
        );
        registry.register(
            "podiam_webhook_bad_requests",
            "Admission requests rejected (415, 400)",
            bad_requests.clone(),
        );
        registry.register(
            "podiam_webhook_admission_duration_seconds",
            "Time to compute an admission response",
            duration.clone(),
        );
        Self {
            registry,
            mutations,
            missing_sa,
            associations_unavailable,
            waits,
            bad_requests,
            duration,
        }
    }
}

impl Metrics {
    /// Records one admission.
    pub fn admission(&self, method: Method, took: Duration) {
        self.mutations
            .get_or_create(&[("method", method.as_str())])
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Records a pod whose service account the webhook does not know.
    pub fn missing_service_account(&self) {
        self.missing_sa.inc();
    }

    /// Records a pod admitted while the Pod Identity associations were not listed yet.
    pub fn associations_unavailable(&self) {
        self.associations_unavailable.inc();
    }

    /// Pods admitted while the Pod Identity associations were not listed yet, so far.
    pub fn admissions_without_associations(&self) -> u64 {
        self.associations_unavailable.get()
    }

    /// Records a lookup that waited for a service account (the grace period), and whether the
    /// service account turned up.
    pub fn lookup_waited(&self, found: bool) {
        let r = if found { "found" } else { "missing" };
        self.waits.get_or_create(&[("result", r)]).inc();
    }

    /// Lookups that waited so far: (found, not found).
    pub fn lookups_waited(&self) -> (u64, u64) {
        let get = |r| self.waits.get(&[("result", r)]).map_or(0, |c| c.get());
        (get("found"), get("missing"))
    }

    /// Pods whose service account was not known, so far.
    pub fn missing_service_accounts(&self) -> u64 {
        self.missing_sa.get()
    }

    /// Records a rejected request (415 or 400).
    pub fn bad_request(&self) {
        self.bad_requests.inc();
    }

    /// Mutations so far for `method`.
    pub fn mutations(&self, method: Method) -> u64 {
        self.mutations
            .get(&[("method", method.as_str())])
            .map_or(0, |c| c.get())
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut s, &self.registry);
        s
    }
}
