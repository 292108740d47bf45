//! AssumeRoleWithWebIdentity: the token, its issuer's keys, the OIDC provider and the role's
//! trust policy, checked in an order that makes an anonymous caller learn nothing for free.

use std::collections::BTreeMap;
use std::sync::Arc;

use podiam_jose::{JwtError, UnverifiedToken, Validation};
use podiam_policy as policy;

use super::{
    AssumeCommon, AssumedRole, IDP_COMMUNICATION_MESSAGE, TAGS_CLAIM, TOKEN_LEEWAY_SECS,
    check_duplicate_tag_keys, session_tag_keys,
};
use crate::Control;
use crate::auth::RequestMeta;
use crate::authz::{Action, Keys};
use crate::error::{AwsError, Result};
use crate::iam::provider_key;
use crate::model;
use crate::names::{self, provider_arn};
use crate::session::SessionClaims;

fn invalid_token(msg: impl Into<String>) -> AwsError {
    AwsError::invalid_identity_token(msg)
}

impl Control {
    /// AssumeRoleWithWebIdentity (unsigned).
    ///
    /// Order of checks, so an anonymous caller cannot make podiam fetch for nothing: the token's
    /// shape and issuer, the OIDC provider in the role's account, then the role. Only for a role
    /// that exists are the issuer's keys fetched; for a missing role the token is still checked
    /// against keys already cached (so a forged token reads the same whether or not the role
    /// exists), and the answer is AWS's AccessDenied.
    ///
    /// Every AccessDenied reads AWS's one message, whether the role is missing or its trust
    /// policy says no; the reason goes to the log.
    pub async fn assume_role_with_web_identity(
        &self,
        meta: &RequestMeta,
        common: AssumeCommon,
        token: &str,
    ) -> Result<AssumedRole> {
        let requested = common.role_arn.clone();
        self.assume_role_with_web_identity_checked(meta, common, token).await.map_err(|e| {
            if e.code == crate::error::ErrorCode::AccessDenied {
                tracing::info!(role = %requested, reason = %e.message, "AssumeRoleWithWebIdentity refused");
                AwsError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
            } else {
                e
            }
        })
    }

    async fn assume_role_with_web_identity_checked(
        &self,
        meta: &RequestMeta,
        common: AssumeCommon,
        token: &str,
    ) -> Result<AssumedRole> {
        let (role_arn, duration) = self.validate_common(&common)?;
        let account = role_arn.account.as_str().to_owned();
        meta.audit
            .note(|f| f.resource_account = Some(account.clone()));
        names::bounded(token, "webIdentityToken", 4, 20000)?;
        let unverified = UnverifiedToken::parse(token)
            .map_err(|e| invalid_token(format!("the web identity token is malformed: {e}")))?;
        let iss = unverified
            .issuer()
            .ok_or_else(|| invalid_token("the web identity token has no issuer (iss)"))?
            .to_owned();
        meta.audit.note(|f| {
            // As sent: the signature is not checked yet.
            f.identity = Some(crate::audit::Identity::WebIdentity {
                provider: iss.chars().take(256).collect(),
                subject: claim_str(unverified.claims(), "sub", 256),
                audience: String::new(),
                verified: false,
            });
        });
        let key = provider_key(&iss);
        let provider = self
            .db
            .read()
            .providers
            .get(&(account.clone(), key.clone()))
            .map(|e| Arc::clone(&e.value));
        let provider = provider.ok_or_else(|| {
            invalid_token(format!(
                "no OpenIDConnect provider found in your account for {iss}"
            ))
        })?;
        if provider.url != iss {
            return Err(invalid_token(format!(
                "no OpenIDConnect provider found in your account for {iss}"
            )));
        }
        let action = Action::StsAssumeRoleWithWebIdentity;
        let role = self.role_for_assume(&role_arn, action.name());
        let now = self.now();
        let mut validation = Validation::new(&iss, &provider.client_ids, now);
        validation.leeway_secs = TOKEN_LEEWAY_SECS;
        let claims = self
            .verify_web_identity(&iss, &provider, unverified, &validation, role.is_ok())
            .await?;
        let role = role?;
        // INVARIANT: with a role, fetching was allowed, so there are claims or an error.
        let claims = claims.ok_or_else(AwsError::service_failure)?;
        if duration > role.max_session_duration {
            return Err(AwsError::validation(
                "the requested DurationSeconds exceeds the MaxSessionDuration set for this role",
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let audience = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str())
                .find(|a| provider.client_ids.iter().any(|c| c == a))
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        let provider_arn = provider_arn(&account, &key);
        meta.audit.note(|f| {
            f.identity = Some(crate::audit::Identity::WebIdentity {
                provider: provider_arn.clone(),
                subject: sub.clone(),
                audience: audience.clone(),
                verified: true,
            });
            f.kube = crate::audit::KubeFacts::from_claims(&claims, self.cluster_of_issuer(&iss));
        });
        let (tags, transitive) = web_identity_tags(&claims)?;
        // Condition keys: `<issuer host/path>:sub|aud|azp|amr`.
        let claim_key = |claim: &str| {
            let mut k = String::with_capacity(key.len() + 1 + claim.len());
            k.push_str(&key);
            k.push(':');
            k.push_str(claim);
            k
        };
        let mut keys = Keys::none()
            .with(claim_key("sub"), sub.as_str())
            .with(claim_key("aud"), audience.as_str())
            .with("aws:FederatedProvider", provider_arn.as_str())
            .with("sts:RoleSessionName", common.session_name.as_str())
            .with_opt(claim_key("azp"), claims.get("azp").and_then(|v| v.as_str()));
        match claims.get("amr") {
            Some(serde_json::Value::String(s)) => keys = keys.with(claim_key("amr"), s.as_str()),
            Some(serde_json::Value::Array(a)) => {
                keys = keys.with_multi(
                    claim_key("amr"),
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                );
            }
            _ => {}
        }
        let keys = keys.and(session_tag_keys(&tags, &transitive));
        let principal = policy::Principal {
            kind: policy::PrincipalKind::WebIdentity,
            arn: provider_arn.clone(),
            account: None,
            role_arn: None,
            federated: Some(provider_arn),
            service: None,
        };
        let mut actions = vec![action];
        if !tags.is_empty() {
            actions.push(Action::StsTagSession);
        }
        self.trust_allows(&role, &account, &principal, &actions, meta, &keys, None)?;
        let policy::Principal {
            arn: provider_arn,
            federated: federated_provider,
            ..
        } = principal;
        let session = SessionClaims {
            access_key_id: names::access_key_id("ASIA", &account),
            account: account.clone(),
            role_name: role.name.clone(),
            role_path: role.path.clone(),
            role_id: role.id.clone(),
            session_name: common.session_name.clone(),
            issued: now,
            expires: now + duration,
            tags,
            transitive,
            source_identity: None,
            policy: common.policy.clone(),
            policy_arns: common.policy_arns.clone(),
            policy_ids: self.session_policy_ids(&common.policy_arns),
            chained: false,
            federated_provider,
        };
        let mut out = self.mint(meta, &session, &common)?;
        out.subject = Some(sub);
        // The model's documentation says `Provider` holds the token's `iss`, but for an IAM OIDC
        // provider STS answers that provider's ARN (`arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`),
        // as recorded responses show (e.g. SPIFFE's walkthrough of OIDC federation to AWS).
        out.provider = Some(provider_arn);
        out.audience = Some(audience);
        Ok(out)
    }

    /// Verify a web identity token with its issuer's keys: podiam's own for a hosted issuer,
    /// else the JWKS (fetched only when `may_fetch`; `Ok(None)` if it is not cached then).
    async fn verify_web_identity(
        &self,
        iss: &str,
        provider: &model::OidcProvider,
        token: UnverifiedToken,
        v: &Validation<'_>,
        may_fetch: bool,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let map_err = |e: JwtError| match e {
            JwtError::Expired => AwsError::expired_web_identity_token(
                "token expired: current date/time must be before the expiration date/time",
            ),
            other => invalid_token(format!("the web identity token is invalid: {other}")),
        };
        if let Some(id) = self.hosted_issuer_id(iss) {
            let keys = self
                .hosted_issuer_keys(&id)
                .ok_or_else(AwsError::service_failure)?;
            // By value: the claims move into the result instead of being copied.
            return token
                .into_verified(&keys.jwks, v)
                .map(|c| Some(c.claims))
                .map_err(map_err);
        }
        let trust = crate::webid::IssuerTrust::new(iss, &provider.thumbprints);
        if !may_fetch {
            // No fetch for a role that does not exist; with nothing cached, the answer is the
            // one an existing role gets when its issuer cannot be reached, so the refusal does
            // not tell whether the role exists.
            return match self.jwks.cached(&trust) {
                Some(keys) => crate::webid::verify(&token, &keys, v)
                    .map(|c| Some(c.claims))
                    .map_err(map_err),
                None => Err(AwsError::idp_communication(IDP_COMMUNICATION_MESSAGE)),
            };
        }
        // The detail (URLs, statuses, connection errors) is logged by the cache and here; the
        // anonymous caller gets AWS's message only.
        let fetch_err = |e: crate::webid::FetchError| {
            tracing::info!(issuer = iss, error = %e, "openid connect provider keys unavailable");
            AwsError::idp_communication(IDP_COMMUNICATION_MESSAGE)
        };
        let keys = self.jwks.keys(&trust, false).await.map_err(fetch_err)?;
        match crate::webid::verify(&token, &keys, v) {
            Err(JwtError::UnknownKid) => {
                // The issuer may have rotated: refetch once (rate-limited inside the cache).
                let keys = self.jwks.keys(&trust, true).await.map_err(fetch_err)?;
                crate::webid::verify(&token, &keys, v)
                    .map(|c| Some(c.claims))
                    .map_err(map_err)
            }
            other => other.map(|c| Some(c.claims)).map_err(map_err),
        }
    }
}

/// A string claim as sent, cut to `max` characters (it may be anything an attacker chose).
fn claim_str(
    claims: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: usize,
) -> String {
    claims
        .get(name)
        .and_then(|v| v.as_str())
        .map(|s| s.chars().take(max).collect())
        .unwrap_or_default()
}

/// Session tags of a web identity token: `{"principal_tags": {"k": ["v"]}, "transitive_tag_keys": ["k"]}`.
fn web_identity_tags(
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut tags = BTreeMap::new();
    let mut transitive = Vec::new();
    let Some(t) = claims.get(TAGS_CLAIM) else {
        return Ok((tags, transitive));
    };
    let bad = |m: &str| invalid_token(format!("invalid {TAGS_CLAIM} claim: {m}"));
    let t = t.as_object().ok_or_else(|| bad("not an object"))?;
    if let Some(p) = t.get("principal_tags") {
        for (k, v) in p
            .as_object()
            .ok_or_else(|| bad("principal_tags is not an object"))?
        {
            let v = match v {
                serde_json::Value::Array(a) if a.len() == 1 => a.first().and_then(|x| x.as_str()),
                serde_json::Value::String(s) => Some(s.as_str()),
                _ => None,
            };
            let v = v.ok_or_else(|| bad("each tag must have exactly one string value"))?;
            names::tag(k, v).map_err(|e| bad(&e.message))?;
            tags.insert(k.clone(), v.to_owned());
        }
        check_duplicate_tag_keys(tags.keys().map(String::as_str))
            .map_err(|_| bad("duplicate tag keys (tag keys are case insensitive)"))?;
    }
    if let Some(x) = t.get("transitive_tag_keys") {
        for k in x
            .as_array()
            .ok_or_else(|| bad("transitive_tag_keys is not an array"))?
        {
            let k = k
                .as_str()
                .ok_or_else(|| bad("transitive_tag_keys must be strings"))?;
            if !tags.contains_key(k) {
                return Err(bad("a transitive tag key is not one of the principal tags"));
            }
            transitive.push(k.to_owned());
        }
    }
    if tags.len() > 50 {
        return Err(bad("more than 50 tags"));
    }
    Ok((tags, transitive))
}
