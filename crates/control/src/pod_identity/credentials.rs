//! Credentials for a pod (EKS Auth API): AssumeRoleForPodIdentity and its direct mode, which
//! verify a projected service-account token and assume the association's role.

use std::collections::BTreeMap;
use std::sync::Arc;

use podiam_jose::{JwtError, UnverifiedToken, Validation};
use podiam_policy as policy;

use super::params::{
    AUDIENCE, PodIdentityCredentials, SERVICE_PRINCIPAL, SESSION_SECS, SESSION_TAG_KEYS,
    TOKEN_LEEWAY_SECS, role_arn_param, session_name,
};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys};
use crate::error::{AwsError, ErrorCode, Result};
use crate::model::{self};
use crate::names;
use crate::session::SessionClaims;
use crate::sts::AssumeCommon;

impl Control {
    /// AssumeRoleForPodIdentity (EKS Auth, signed by the node's identity).
    pub async fn assume_role_for_pod_identity(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        token: &str,
    ) -> Result<PodIdentityCredentials> {
        crate::eks::cluster_name(cluster)?;
        let account = caller.account().to_owned();
        self.cluster_for(
            caller,
            meta,
            Action::EksAuthAssumeRoleForPodIdentity,
            cluster,
            Keys::none(),
        )?;
        self.pod_identity_credentials(&account, meta, cluster, token)
            .await
    }

    /// Direct-mode Pod Identity: [`Self::pod_identity_credentials`] for an unauthenticated
    /// caller, whose only credential is the token. A token that does not verify and a cluster
    /// (or account) that does not exist get one and the same answer, so the endpoint tells an
    /// anonymous caller nothing about which clusters exist; the details go to the log.
    pub async fn direct_pod_identity_credentials(
        &self,
        account: &str,
        meta: &RequestMeta,
        cluster: &str,
        token: &str,
    ) -> Result<PodIdentityCredentials> {
        let generic = || {
            AwsError::invalid_token(format!(
                "The service account token is not valid for cluster {cluster}."
            ))
        };
        check_token_shape(token)?;
        let exists = self
            .db
            .read()
            .clusters
            .contains_key(&(account.to_owned(), cluster.to_owned()));
        if !exists {
            return Err(generic());
        }
        meta.audit
            .note(|f| f.resource_account = Some(account.to_owned()));
        match self
            .pod_identity_credentials(account, meta, cluster, token)
            .await
        {
            // A token that does not verify, or whose issuer cannot be reached to verify it,
            // reads as a missing cluster does.
            Err(e)
                if matches!(
                    e.code,
                    crate::error::ErrorCode::InvalidToken
                        | crate::error::ErrorCode::IdpCommunicationError
                ) =>
            {
                tracing::info!(account, cluster, error = %e.message, "direct-mode token refused");
                Err(generic())
            }
            other => other,
        }
    }

    /// The credentials of the pod presenting `token` in `cluster` of `account`: token
    /// verification, association lookup, trust evaluation, optional role chaining.
    pub async fn pod_identity_credentials(
        &self,
        account: &str,
        meta: &RequestMeta,
        cluster: &str,
        token: &str,
    ) -> Result<PodIdentityCredentials> {
        check_token_shape(token)?;
        let c = self.cluster_entry(account, cluster)?;
        let claims = self.verify_cluster_token(&c, token).await?;
        meta.audit.note(|f| {
            f.kube = crate::audit::KubeFacts::from_claims(&claims, Some(cluster.to_owned()));
            // Direct mode: no signer; the pod's token is the identity.
            if f.identity.is_none() {
                f.identity = Some(crate::audit::Identity::WebIdentity {
                    provider: c.issuer.clone(),
                    subject: claims
                        .get("sub")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    audience: AUDIENCE.to_owned(),
                    verified: true,
                });
            }
        });
        let pod = PodClaims::from_claims(&claims)?;
        let assoc = {
            let t = self.db.read();
            t.associations
                .find(account, cluster, &pod.namespace, &pod.service_account)
                .map(|e| Arc::clone(&e.value))
        };
        let assoc = assoc.ok_or_else(|| {
            AwsError::resource_not_found(format!(
                "No Pod Identity Association exists for service account {} in namespace {} of cluster {cluster}",
                pod.service_account, pod.namespace
            ))
        })?;
        meta.audit.note(|f| {
            f.response.insert(
                "podIdentityAssociation".into(),
                serde_json::json!({
                    "associationArn": self.association_arn(account, cluster, &assoc.id),
                    "associationId": assoc.id,
                }),
            );
        });
        let role_arn = role_arn_param(&assoc.role_arn, "roleArn")?;
        let role = self.role_for_assume(&role_arn, "sts:AssumeRole")?;
        let cluster_arn = self.cluster_arn(account, cluster);
        let mut tags = BTreeMap::new();
        if !assoc.disable_session_tags {
            let values = [
                cluster_arn.as_str(),
                cluster,
                &pod.namespace,
                &pod.service_account,
                &pod.pod_name,
                &pod.pod_uid,
            ];
            for (k, v) in SESSION_TAG_KEYS.iter().zip(values) {
                tags.insert((*k).to_owned(), v.to_owned());
            }
        }
        let transitive: Vec<String> = tags.keys().cloned().collect();
        let uuid = uuid::Uuid::new_v4().to_string();
        let session_name = session_name(cluster, &pod.pod_name, &uuid);
        // The service assumes the role on behalf of the cluster: `aws:SourceAccount` and
        // `aws:SourceArn` name it, as EKS sets them, so a trust policy can confine the role
        // to one cluster (the confused-deputy guard EKS documents).
        let keys = Keys::none()
            .with("sts:RoleSessionName", session_name.as_str())
            .with("aws:SourceAccount", account)
            .with("aws:SourceArn", cluster_arn.as_str())
            .and(crate::sts::session_tag_keys(&tags, &transitive));
        let mut actions = vec![Action::StsAssumeRole];
        if !tags.is_empty() {
            actions.push(Action::StsTagSession);
        }
        let principal = policy::Principal::service(SERVICE_PRINCIPAL);
        self.trust_allows(
            &role,
            role_arn.account.as_str(),
            &principal,
            &actions,
            meta,
            &keys,
            None,
        )?;
        let now = self.now();
        let chained = assoc.target_role_arn.is_some();
        let first = SessionClaims {
            access_key_id: names::access_key_id("ASIA", role_arn.account.as_str()),
            account: role_arn.account.as_str().to_owned(),
            role_name: role.name.clone(),
            role_path: role.path.clone(),
            role_id: role.id.clone(),
            session_name: session_name.clone(),
            issued: now,
            expires: now + SESSION_SECS,
            tags: tags.clone(),
            transitive: transitive.clone(),
            source_identity: None,
            // Without a target role, the association's policy restricts this session.
            policy: if chained { None } else { assoc.policy.clone() },
            policy_arns: vec![],
            policy_ids: vec![],
            chained: false,
            federated_provider: None,
        };
        let final_session = match &assoc.target_role_arn {
            None => first,
            Some(target) => {
                let target_arn = role_arn_param(target, "targetRoleArn")?;
                let target_role = self.role_for_assume(&target_arn, "sts:AssumeRole")?;
                let parent = Caller::Session(Arc::new(first));
                // The session tags pass on as transitive: the target's trust sees them as it
                // sees any session tags being set (as AssumeRole does for a chained session).
                let keys = Keys::none()
                    .with("sts:RoleSessionName", session_name.as_str())
                    .with("sts:ExternalId", assoc.external_id.as_str())
                    .and(crate::sts::session_tag_keys(&tags, &transitive));
                let mut actions = vec![Action::StsAssumeRole];
                if !tags.is_empty() {
                    actions.push(Action::StsTagSession);
                }
                let principal = crate::auth::principal_of(&parent, Some(&role));
                self.trust_allows(
                    &target_role,
                    target_arn.account.as_str(),
                    &principal,
                    &actions,
                    meta,
                    &keys,
                    Some(&parent),
                )?;
                SessionClaims {
                    access_key_id: names::access_key_id("ASIA", target_arn.account.as_str()),
                    account: target_arn.account.as_str().to_owned(),
                    role_name: target_role.name.clone(),
                    role_path: target_role.path.clone(),
                    role_id: target_role.id.clone(),
                    session_name,
                    issued: now,
                    expires: now + crate::sts::CHAINED_MAX_SECS,
                    tags,
                    transitive,
                    source_identity: None,
                    policy: assoc.policy.clone(),
                    policy_arns: vec![],
                    policy_ids: vec![],
                    chained: true,
                    federated_provider: None,
                }
            }
        };
        let common = AssumeCommon {
            policy: final_session.policy.clone(),
            ..AssumeCommon::default()
        };
        let assumed = self.mint(meta, &final_session, &common)?;
        Ok(PodIdentityCredentials {
            namespace: pod.namespace,
            service_account: pod.service_account,
            association_arn: self.association_arn(account, cluster, &assoc.id),
            association_id: assoc.id.clone(),
            assumed,
        })
    }

    /// Verify a projected token against the cluster's issuer with the Pod Identity audience.
    async fn verify_cluster_token(
        &self,
        c: &model::Cluster,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let invalid = AwsError::invalid_token;
        let unverified = UnverifiedToken::parse(token)
            .map_err(|e| invalid(format!("The service account token is malformed: {e}")))?;
        let audiences = [AUDIENCE.to_owned()];
        let mut v = Validation::new(&c.issuer, &audiences, self.now());
        v.leeway_secs = TOKEN_LEEWAY_SECS;
        let map_err = |e: JwtError| match e {
            JwtError::Expired => AwsError::new(
                ErrorCode::ExpiredIdentityToken,
                "The service account token has expired.",
            ),
            other => invalid(format!(
                "The service account token is not valid for cluster {}: {other}",
                c.name
            )),
        };
        if c.hosted {
            let keys = self.hosted_issuer_keys(&c.oidc_id).ok_or_else(|| {
                AwsError::new(
                    ErrorCode::InternalFailure,
                    "The cluster's issuer keys are unavailable.",
                )
            })?;
            return podiam_jose::verify(&unverified, &keys.jwks, &v)
                .map(|c| c.claims)
                .map_err(map_err);
        }
        // Trusted by the system roots alone: a cluster's issuer has no thumbprints, and keys
        // fetched under a provider's thumbprints are cached apart (see webid::IssuerTrust).
        let trust = crate::webid::IssuerTrust::system_roots(&c.issuer);
        let fetch_err = |e: crate::webid::FetchError| {
            tracing::info!(issuer = %c.issuer, error = %e, "cluster issuer keys unavailable");
            // IDPCommunicationError renders as EKS Auth's ServiceUnavailableException (503),
            // and tells this failure apart from a stale replica's.
            AwsError::new(
                crate::error::ErrorCode::IdpCommunicationError,
                "Couldn't retrieve the verification keys of the cluster's issuer.",
            )
        };
        let keys = self.jwks.keys(&trust, false).await.map_err(fetch_err)?;
        match crate::webid::verify(&unverified, &keys, &v) {
            Err(JwtError::UnknownKid) => {
                let keys = self.jwks.keys(&trust, true).await.map_err(fetch_err)?;
                crate::webid::verify(&unverified, &keys, &v)
                    .map(|c| c.claims)
                    .map_err(map_err)
            }
            other => other.map(|c| c.claims).map_err(map_err),
        }
    }
}

/// The EKS Auth model's token pattern: three base64url segments (`=` allowed), at most 20000
/// characters in all.
pub(super) fn check_token_shape(token: &str) -> Result<()> {
    let seg_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    let parts: Vec<&str> = token.split('.').collect();
    if token.len() > 20_000 || parts.len() != 3 || !parts.iter().all(|p| seg_ok(p)) {
        return Err(AwsError::invalid_parameter(
            "token must be a JSON Web Token of three base64url segments, at most 20000 characters",
        ));
    }
    Ok(())
}

/// The pod a projected token is bound to.
struct PodClaims {
    namespace: String,
    service_account: String,
    pod_name: String,
    pod_uid: String,
}

impl PodClaims {
    fn from_claims(claims: &serde_json::Map<String, serde_json::Value>) -> Result<Self> {
        let invalid = |m: &str| AwsError::invalid_token(m);
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid("The token has no subject"))?;
        let rest = sub
            .strip_prefix("system:serviceaccount:")
            .ok_or_else(|| invalid("The token's subject is not a service account"))?;
        let (namespace, service_account) = rest
            .split_once(':')
            .ok_or_else(|| invalid("The token's subject is not a service account"))?;
        let k8s = claims.get("kubernetes.io").and_then(|v| v.as_object());
        let field = |path: [&str; 2]| -> Option<String> {
            k8s?.get(path[0])?
                .as_object()?
                .get(path[1])?
                .as_str()
                .map(str::to_owned)
        };
        if let Some(ns) = k8s
            .and_then(|k| k.get("namespace"))
            .and_then(|v| v.as_str())
            && ns != namespace
        {
            return Err(invalid(
                "the token's namespace claim does not match its subject",
            ));
        }
        if field(["serviceaccount", "name"]).is_some_and(|n| n != service_account) {
            return Err(invalid(
                "the token's service account claim does not match its subject",
            ));
        }
        let pod_name =
            field(["pod", "name"]).ok_or_else(|| invalid("The token is not bound to a pod"))?;
        let pod_uid =
            field(["pod", "uid"]).ok_or_else(|| invalid("The token is not bound to a pod"))?;
        Ok(Self {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            pod_name,
            pod_uid,
        })
    }
}
