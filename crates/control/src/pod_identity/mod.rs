//! EKS Pod Identity: associations (EKS API) and `AssumeRoleForPodIdentity` (EKS Auth API).
//!
//! An association maps (cluster, namespace, service account) to a role in the cluster's account,
//! optionally chained into a target role in any account with the association's generated
//! `sts:ExternalId`. `AssumeRoleForPodIdentity` verifies a projected service-account token
//! against the cluster's issuer (audience `pods.eks.amazonaws.com`), finds the association, and
//! assumes the role as the service principal `pods.eks.amazonaws.com` with the six session tags,
//! evaluating the role's trust policy with them as `aws:RequestTag/*`.

mod associations;
mod credentials;
mod params;
mod tags;

pub use params::{
    AUDIENCE, CreateAssociation, PodIdentityCredentials, SERVICE_PRINCIPAL, SESSION_SECS,
    SESSION_TAG_KEYS, TOKEN_LEEWAY_SECS, UpdateAssociation, session_name,
};

#[cfg(test)]
mod tests;
