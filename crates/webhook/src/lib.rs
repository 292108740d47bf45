//! podiam's mutating admission webhook: a reimplementation of
//! aws/amazon-eks-pod-identity-webhook for any Kubernetes cluster.
//!
//! - [`mutate`]: the pod mutation (IRSA and EKS Pod Identity), pure.
//! - [`sources`]: service accounts and Pod Identity associations (traits + implementations).
//! - [`kubernetes`]: service accounts watched from the Kubernetes API.
//! - [`eks`]: Pod Identity associations listed from an EKS API ([`EksAssociations`]).
//! - [`Webhook`]: AdmissionReview in, AdmissionReview out.
//! - [`server`]: the HTTPS server (`/mutate`, `/healthz`, `/metrics`).
//! - [`tls`]: reloading certificates and self-signed setup.

pub mod eks;
pub mod kubernetes;
pub mod metrics;
pub mod mutate;
pub mod server;
pub mod sources;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub use eks::EksAssociations;
pub use metrics::Metrics;
pub use mutate::{Method, Settings};
pub use sources::{
    AssociationSource, Associations, ConfigEntry, FileServiceAccounts, NoAssociations,
    ServiceAccountInfo, ServiceAccountSource, ServiceAccounts,
};

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// The admission logic: settings plus the two lookups.
pub struct Webhook {
    settings: Settings,
    service_accounts: Arc<dyn ServiceAccountSource>,
    associations: Arc<dyn AssociationSource>,
    lookup_grace: Duration,
    metrics: Metrics,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The result of one review.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The response AdmissionReview.
    pub response: Value,
    /// What was injected.
    pub method: Method,
}

impl Webhook {
    /// A webhook over these sources.
    pub fn new(
        settings: Settings,
        service_accounts: Arc<dyn ServiceAccountSource>,
        associations: Arc<dyn AssociationSource>,
    ) -> Self {
        Self {
            settings,
            service_accounts,
            associations,
            lookup_grace: Duration::ZERO,
            metrics: Metrics::default(),
        }
    }

    /// How long [`Self::admit`] may wait for a service account the source does not know yet
    /// (`--service-account-lookup-grace-period`; zero, the default, never waits).
    #[must_use]
    pub fn with_lookup_grace(mut self, grace: Duration) -> Self {
        self.lookup_grace = grace;
        self
    }

    /// Whether the service accounts have loaded (`/readyz`). Associations are not waited for:
    /// a webhook kept unready by an unreachable EKS API would leave every pod unmutated (the
    /// configuration's `failurePolicy: Ignore`), IRSA pods included.
    pub fn is_ready(&self) -> bool {
        self.service_accounts.is_ready()
    }

    /// What the server calls: [`Self::review_bytes`], except that a pod whose service account
    /// is not known yet waits up to the lookup grace period for it.
    pub async fn admit(&self, body: &[u8]) -> Result<Reviewed, String> {
        let started = Instant::now();
        let review: Value =
            serde_json::from_slice(body).map_err(|e| format!("malformed AdmissionReview: {e}"))?;
        let mut prefetched = None;
        if !self.lookup_grace.is_zero()
            && self.service_accounts.can_wait()
            && let Some((namespace, name)) = pod_service_account(&review)
        {
            let mut found = self.service_accounts.get(namespace, name);
            if found.is_none() {
                found = self
                    .service_accounts
                    .wait_for(namespace, name, self.lookup_grace)
                    .await;
                self.metrics.lookup_waited(found.is_some());
            }
            prefetched = Some(found);
        }
        let out = self.review_with(&review, prefetched)?;
        self.metrics.admission(out.method, started.elapsed());
        Ok(out)
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Reviews a raw AdmissionReview body (admission.k8s.io/v1 or v1beta1). `Err` carries the
    /// reason the review is malformed (answered with HTTP 400).
    pub fn review_bytes(&self, body: &[u8]) -> Result<Reviewed, String> {
        let started = Instant::now();
        let review: Value =
            serde_json::from_slice(body).map_err(|e| format!("malformed AdmissionReview: {e}"))?;
        let out = self.review(&review)?;
        self.metrics.admission(out.method, started.elapsed());
        Ok(out)
    }

    /// Reviews a parsed AdmissionReview.
    pub fn review(&self, review: &Value) -> Result<Reviewed, String> {
        self.review_with(review, None)
    }

    /// `prefetched`: the service account lookup already done (by [`Self::admit`]).
    fn review_with(
        &self,
        review: &Value,
        prefetched: Option<Option<ServiceAccountInfo>>,
    ) -> Result<Reviewed, String> {
        let Some(obj) = review.as_object() else {
            return Err("malformed AdmissionReview: not a JSON object".into());
        };
        let api_version = match obj.get("apiVersion") {
            None => V1,
            Some(Value::String(v)) if v == V1 || v == V1BETA1 => v.as_str(),
            Some(v) => {
                return Err(format!(
                    "unsupported apiVersion {v}: expected {V1} or {V1BETA1}"
                ));
            }
        };
        match obj.get("kind") {
            None => {}
            Some(Value::String(k)) if k == "AdmissionReview" => {}
            Some(k) => return Err(format!("unsupported kind {k}: expected AdmissionReview")),
        }
        let Some(request) = obj.get("request").filter(|r| r.is_object()) else {
            return Err("bad content: the AdmissionReview has no request".into());
        };
        let uid = match request.get("uid") {
            Some(Value::String(u)) if !u.is_empty() => u.clone(),
            _ => return Err("bad content: request.uid is missing".into()),
        };
        let operation = request.get("operation").and_then(Value::as_str);
        let object = request.get("object");
        let (method, patch) = match (operation, object) {
            (Some(op), _) if op != "CREATE" => (Method::None, None),
            (_, Some(pod)) if pod.is_object() => {
                let is_pod = pod
                    .get("spec")
                    .and_then(|s| s.get("containers"))
                    .is_some_and(Value::is_array);
                if is_pod {
                    self.mutate_pod(request, pod, prefetched)
                } else {
                    (Method::None, None)
                }
            }
            _ => return Err("bad content: request.object is not a Pod".into()),
        };
        let mut response = json!({"uid": uid, "allowed": true});
        if let (Some(patch), Some(r)) = (patch, response.as_object_mut()) {
            let bytes = serde_json::to_vec(&patch).map_err(|e| e.to_string())?;
            r.insert("patchType".into(), Value::from("JSONPatch"));
            r.insert(
                "patch".into(),
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
        Ok(Reviewed {
            response: json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response}),
            method,
        })
    }

    fn mutate_pod(
        &self,
        request: &Value,
        pod: &Value,
        prefetched: Option<Option<ServiceAccountInfo>>,
    ) -> (Method, Option<Vec<Value>>) {
        let namespace = pod_namespace(request, pod);
        let sa_name = mutate::service_account_name(pod);
        let sa = prefetched.unwrap_or_else(|| self.service_accounts.get(namespace, sa_name));
        let has_association = self.associations.has_association(namespace, sa_name);
        if !self.associations.is_ready() {
            // Not one listing has succeeded: whether this pod should get Pod Identity is
            // unknown, and it is admitted as if it should not.
            self.metrics.associations_unavailable();
            tracing::warn!(
                namespace,
                service_account = sa_name,
                "Pod Identity associations not listed yet (EKS API unreachable?); admitting the pod without Pod Identity"
            );
        }
        if sa.is_none() {
            self.metrics.missing_service_account();
        }
        let out = mutate::mutate(
            &self.settings,
            pod,
            mutate::Inputs {
                service_account: sa.as_ref(),
                has_association,
            },
        );
        if out.patch.is_some() {
            tracing::debug!(
                namespace,
                service_account = sa_name,
                method = out.method.as_str(),
                "pod mutated"
            );
        }
        (out.method, out.patch)
    }
}

/// The namespace of the pod under review: the request's, else the pod's, else `default`.
fn pod_namespace<'a>(request: &'a Value, pod: &'a Value) -> &'a str {
    request
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            pod.get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
        })
        .unwrap_or("default")
}

/// (namespace, service account) of a well-formed review that creates a pod; `None` for
/// anything else (malformed reviews are refused before anything waits).
fn pod_service_account(review: &Value) -> Option<(&str, &str)> {
    if !matches!(
        review.get("apiVersion").and_then(Value::as_str),
        None | Some(V1 | V1BETA1)
    ) {
        return None;
    }
    let request = review.get("request")?;
    if request
        .get("uid")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return None;
    }
    if request
        .get("operation")
        .and_then(Value::as_str)
        .is_some_and(|op| op != "CREATE")
    {
        return None;
    }
    let pod = request.get("object")?;
    pod.get("spec")?.get("containers")?.as_array()?;
    Some((
        pod_namespace(request, pod),
        mutate::service_account_name(pod),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Associations that have never been listed (the EKS API unreachable since the start).
    struct Unlisted;

    impl AssociationSource for Unlisted {
        fn has_association(&self, _: &str, _: &str) -> bool {
            false
        }

        fn is_ready(&self) -> bool {
            false
        }
    }

    fn review(ns: &str, sa: &str) -> Value {
        json!({"apiVersion": V1, "kind": "AdmissionReview", "request": {
            "uid": "u-1", "operation": "CREATE", "namespace": ns,
            "object": {"metadata": {"name": "p"}, "spec": {"serviceAccountName": sa,
                       "containers": [{"name": "app", "image": "app:1"}]}}}})
    }

    fn irsa_accounts() -> Arc<ServiceAccounts> {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(
            "eks.amazonaws.com/role-arn".to_owned(),
            "arn:aws:iam::111122223333:role/r".to_owned(),
        );
        let mut sas = ServiceAccounts::default();
        sas.insert_annotations("shop", "api", annotations);
        Arc::new(sas)
    }

    #[test]
    fn admissions_without_listed_associations_are_counted() {
        let w = Webhook::new(Settings::default(), irsa_accounts(), Arc::new(Unlisted));
        // The IRSA injection still happens; the pod is counted as admitted without associations.
        let r = w.review(&review("shop", "api")).unwrap();
        assert_eq!(r.method, Method::Irsa);
        let r = w.review(&review("shop", "other")).unwrap();
        assert_eq!(r.method, Method::None);
        assert_eq!(w.metrics().admissions_without_associations(), 2);
        assert!(
            w.metrics()
                .render()
                .contains("podiam_webhook_associations_unavailable_total 2"),
            "{}",
            w.metrics().render()
        );
    }

    #[test]
    fn listed_or_absent_associations_are_not_counted() {
        for assoc in [
            Arc::new(NoAssociations) as Arc<dyn AssociationSource>,
            Arc::new(Associations::default()),
        ] {
            let w = Webhook::new(Settings::default(), irsa_accounts(), assoc);
            w.review(&review("shop", "api")).unwrap();
            assert_eq!(w.metrics().admissions_without_associations(), 0);
            assert!(
                w.metrics()
                    .render()
                    .contains("podiam_webhook_associations_unavailable_total 0")
            );
        }
    }
}
