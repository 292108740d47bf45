//! The audit trail: every credential issued or refused, every mutating call and every
//! AccessDenied becomes one event in CloudTrail's record shape, kept in the store (visible from
//! every replica through `LookupEvents`) and optionally written as JSON lines for log shippers.
//!
//! - [`Facts`] is what the services learn while they answer a request (who called, the
//!   Kubernetes facts of a verified token, the credentials issued). The HTTP layer hands every
//!   request an empty one in [`crate::auth::RequestMeta`], and assembles the event from it and
//!   from what it saw of the request ([`record`]).
//! - [`AuditSink`] is the bounded queue between the request and the store: events are written by
//!   one background thread in batches, never on the credential path's critical section
//!   ([`writer`]).
//! - [`lookup`] answers CloudTrail's `LookupEvents`.
//!
//! Secrets never enter an event: requests are recorded without their tokens and passwords, and
//! responses only name the credentials issued, by access key id and expiration.

pub mod limit;
pub mod lookup;
pub mod record;
pub mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use parking_lot::Mutex;

use crate::auth::Caller;

pub use writer::{AuditConfig, AuditSink, AuditStats, Enqueued};

/// Who made a request, as far as it got.
#[derive(Clone, Debug)]
pub enum Identity {
    /// A SigV4-authenticated principal, with the access key id that signed.
    Caller {
        /// The principal.
        caller: Caller,
        /// The signing access key id.
        access_key_id: String,
    },
    /// The holder of a web identity token (AssumeRoleWithWebIdentity, direct-mode Pod
    /// Identity). `verified` is `false` when the token was refused before its signature was
    /// checked: the names are then the token's claims as sent, attacker-chosen.
    WebIdentity {
        /// The IAM OIDC provider ARN, or the token's issuer when no provider matched.
        provider: String,
        /// The token's `sub`.
        subject: String,
        /// The audience that matched (empty when none did).
        audience: String,
        /// Whether the token's signature was verified.
        verified: bool,
    },
    /// A principal named by a Kubernetes token review (an `aws eks get-token` token).
    Principal {
        /// `IAMUser`, `AssumedRole` or `Root`.
        kind: &'static str,
        /// The principal's ARN.
        arn: String,
        /// Its account.
        account: String,
    },
    /// A request whose signature was refused: only what it claimed.
    Unknown {
        /// The access key id the request named, if well-formed.
        access_key_id: Option<String>,
    },
}

impl Identity {
    /// The account the identity belongs to, if known.
    pub fn account(&self) -> Option<&str> {
        match self {
            Identity::Caller { caller, .. } => Some(caller.account()),
            Identity::Principal { account, .. } => Some(account),
            Identity::WebIdentity { .. } | Identity::Unknown { .. } => None,
        }
    }
}

/// The Kubernetes facts of a verified service-account token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeFacts {
    /// The EKS cluster name, when the issuer is a cluster podiam knows.
    pub cluster: Option<String>,
    /// `kubernetes.io/namespace` (or the subject's namespace).
    pub namespace: Option<String>,
    /// The service account name.
    pub service_account: Option<String>,
    /// The pod the token is bound to.
    pub pod_name: Option<String>,
    /// Its uid.
    pub pod_uid: Option<String>,
    /// The node the pod runs on.
    pub node_name: Option<String>,
    /// The token's `jti`.
    pub jti: Option<String>,
}

impl KubeFacts {
    /// The facts of a token's verified claims (`sub` = `system:serviceaccount:NS:SA`, the
    /// `kubernetes.io` claim, `jti`); `None` when the token names no service account.
    pub fn from_claims(
        claims: &serde_json::Map<String, serde_json::Value>,
        cluster: Option<String>,
    ) -> Option<Self> {
        let sub = claims.get("sub").and_then(|v| v.as_str())?;
        let (ns, sa) = sub
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
            .map_or((None, None), |(n, s)| {
                (Some(n.to_owned()), Some(s.to_owned()))
            });
        let k8s = claims.get("kubernetes.io").and_then(|v| v.as_object());
        let field = |a: &str, b: &str| -> Option<String> {
            k8s?.get(a)?
                .as_object()?
                .get(b)?
                .as_str()
                .map(str::to_owned)
        };
        if ns.is_none() && k8s.is_none() {
            return None;
        }
        Some(Self {
            cluster,
            namespace: ns.or_else(|| {
                k8s.and_then(|k| k.get("namespace"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            }),
            service_account: sa.or_else(|| field("serviceaccount", "name")),
            pod_name: field("pod", "name"),
            pod_uid: field("pod", "uid"),
            node_name: field("node", "name"),
            jti: claims
                .get("jti")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
    }
}

/// Credentials a request was given, by name only: never a secret or a session token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The temporary access key id.
    pub access_key_id: String,
    /// Expiration, seconds since the Unix epoch.
    pub expiration: i64,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub assumed_role_arn: String,
    /// `ROLEID:SESSION`.
    pub assumed_role_id: String,
    /// The role's ARN.
    pub role_arn: String,
}

/// What the services learned about one request, filled in as it is answered.
#[derive(Debug, Default)]
pub struct Facts(Mutex<FactsInner>);

/// The contents of [`Facts`].
#[derive(Clone, Debug, Default)]
pub struct FactsInner {
    /// Who called.
    pub identity: Option<Identity>,
    /// The Kubernetes facts of a verified token.
    pub kube: Option<KubeFacts>,
    /// The credentials issued.
    pub issued: Option<Issued>,
    /// A long-term access key created (`CreateAccessKey`): named as a resource, so that the
    /// `AccessKeyId` lookup finds where it came from, and waited for under `--audit-required`
    /// like issued credentials.
    pub created_key: Option<String>,
    /// The account whose resource the request was about (a role's account), when it is not
    /// the caller's.
    pub resource_account: Option<String>,
    /// Further response facts (Pod Identity's association, the username a token review mapped).
    pub response: serde_json::Map<String, serde_json::Value>,
    /// The error of an answer that is not an AWS error (a token review's refusal): code and
    /// message.
    pub error: Option<(&'static str, String)>,
}

impl Facts {
    /// Change the facts.
    pub fn with<R>(&self, f: impl FnOnce(&mut FactsInner) -> R) -> R {
        f(&mut self.0.lock())
    }
    /// The facts, leaving them empty: once the answer is made, for its event.
    pub fn take(&self) -> FactsInner {
        std::mem::take(&mut *self.0.lock())
    }
}

/// A request's facts, or nothing when auditing is off. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FactsSlot(Option<Arc<Facts>>);

impl FactsSlot {
    /// A slot that keeps facts.
    pub fn recording() -> Self {
        Self(Some(Arc::new(Facts::default())))
    }
    /// Record into the facts, if they are kept.
    pub fn note(&self, f: impl FnOnce(&mut FactsInner)) {
        if let Some(x) = &self.0 {
            x.with(f);
        }
    }
    /// The facts, if kept.
    pub fn facts(&self) -> Option<&Arc<Facts>> {
        self.0.as_ref()
    }
}
