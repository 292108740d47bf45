//! STS: AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity, GetAccessKeyInfo.
//!
//! Web identity tokens are verified as STS does (see SECURITY.md): the provider is found by the
//! token's `iss` in the role's account, keys come from the issuer's JWKS (or podiam's own keys for
//! a hosted issuer), `aud` must be one of the provider's client ids, and the role's trust policy
//! is evaluated with the token's claims as condition keys. Sessions are minted self-contained.

use std::collections::BTreeMap;
use std::sync::Arc;

use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta, principal_of};
use crate::authz::{Action, Keys, Target};
use crate::error::{AwsError, ErrorCode, Result};
use crate::iam::policy_chars;
use crate::model;
use crate::names;
use crate::session::SessionClaims;

mod web_identity;

/// Leeway past `exp` (and before `nbf`) that STS allows.
pub const TOKEN_LEEWAY_SECS: i64 = 300;
/// The `https://aws.amazon.com/tags` claim of web identity tokens.
pub const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
/// Chained sessions last at most this long.
pub const CHAINED_MAX_SECS: i64 = 3600;
/// AWS's message for `IDPCommunicationError` (double space included): nothing about the
/// issuer's URLs, statuses or connection errors reaches the anonymous caller.
pub const IDP_COMMUNICATION_MESSAGE: &str = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements";

/// Temporary credentials.
#[derive(Clone)]
pub struct Credentials {
    /// `ASIA...`.
    pub access_key_id: String,
    /// Secret.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// Expiry (unix seconds).
    pub expiration: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The result of an AssumeRole*.
#[derive(Clone, Debug)]
pub struct AssumedRole {
    /// The credentials.
    pub credentials: Credentials,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// `ROLEID:SESSION`.
    pub assumed_role_id: String,
    /// Percentage of the packed policy and tag size limit used, when policies or tags were passed.
    pub packed_policy_size: Option<u32>,
    /// Source identity.
    pub source_identity: Option<String>,
    /// Web identity: the token's `sub`.
    pub subject: Option<String>,
    /// Web identity: the ARN of the IAM OIDC provider that verified the token.
    pub provider: Option<String>,
    /// Web identity: the audience that matched.
    pub audience: Option<String>,
}

/// Inputs common to the AssumeRole* calls.
#[derive(Debug, Clone, Default)]
pub struct AssumeCommon {
    /// RoleArn.
    pub role_arn: String,
    /// RoleSessionName.
    pub session_name: String,
    /// DurationSeconds.
    pub duration: Option<i64>,
    /// Policy (inline session policy).
    pub policy: Option<String>,
    /// PolicyArns.
    pub policy_arns: Vec<String>,
}

/// Inputs of AssumeRole beyond the common ones.
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleExtra {
    /// ExternalId.
    pub external_id: Option<String>,
    /// Tags.
    pub tags: Vec<model::Tag>,
    /// TransitiveTagKeys.
    pub transitive_tag_keys: Vec<String>,
    /// SourceIdentity.
    pub source_identity: Option<String>,
}

impl Control {
    fn validate_common(&self, c: &AssumeCommon) -> Result<(names::RoleArn, i64)> {
        names::bounded(&c.role_arn, "roleArn", 20, 2048)?;
        names::role_session_name(&c.session_name)?;
        let duration = c.duration.unwrap_or(3600);
        if !(900..=43200).contains(&duration) {
            return Err(names::constraint(
                &duration.to_string(),
                "durationSeconds",
                "Member must have value less than or equal to 43200 and greater than or equal to 900",
            ));
        }
        if let Some(p) = &c.policy {
            names::bounded(p, "policy", 1, 2048)?;
            policy::Policy::parse(p, policy::PolicyKind::Session)
                .map_err(|e| AwsError::malformed_policy(e.to_string()))?;
        }
        if c.policy_arns.len() > 10 {
            return Err(names::constraint(
                "",
                "policyArns",
                "Member must have length less than or equal to 10",
            ));
        }
        for a in &c.policy_arns {
            names::bounded(a, "policyArns.member.arn", 20, 2048)?;
            if names::Arn::parse(a)
                .is_none_or(|x| x.service != "iam" || !x.resource.starts_with("policy/"))
            {
                return Err(AwsError::invalid_input(format!("invalid policy arn {a:?}")));
            }
        }
        let arn = names::RoleArn::parse(&c.role_arn)
            .ok_or_else(|| AwsError::validation(format!("{} is invalid", c.role_arn)))?;
        // Managed session policies are the role account's own: another account's policy is
        // never read (nor is whether it exists revealed).
        for a in &c.policy_arns {
            if names::Arn::parse(a)
                .is_none_or(|x| x.account != arn.account.as_str() || !x.region.is_empty())
            {
                return Err(AwsError::new(
                    ErrorCode::InvalidParameterValue,
                    format!(
                        "Policy {a} is not a managed policy of the role's account {}.",
                        arn.account
                    ),
                ));
            }
        }
        Ok((arn, duration))
    }

    pub(crate) fn role_for_assume(
        &self,
        arn: &names::RoleArn,
        action: &str,
    ) -> Result<Arc<model::Role>> {
        let e = self
            .db
            .read()
            .roles
            .get(&(arn.account.as_str().to_owned(), arn.name.to_lowercase()))
            .cloned();
        // AWS does not reveal whether a role exists: a missing role is AccessDenied.
        let denied = || AwsError::access_denied(format!("not authorized to perform {action}"));
        let e = e.ok_or_else(denied)?;
        if e.value.path != arn.path {
            return Err(denied());
        }
        Ok(e.value)
    }

    /// The unique ids of the managed session policies `arns` names now (empty where none).
    fn session_policy_ids(&self, arns: &[String]) -> Vec<String> {
        let t = self.db.read();
        arns.iter()
            .map(|arn| {
                names::Arn::parse(arn)
                    .and_then(|a| {
                        let name = a.resource.rsplit('/').next()?.to_lowercase();
                        let e = t.policies.get(&(a.account.to_owned(), name))?;
                        (names::policy_arn(a.account, &e.value) == *arn).then(|| e.value.id.clone())
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Evaluate `role`'s trust policy for every action in `actions`; the identity side is
    /// supplied by `caller` for signed calls. The role is the target (its canonical ARN and tags
    /// as `aws:ResourceTag/*`); `keys` are the request's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn trust_allows(
        &self,
        role: &model::Role,
        account: &str,
        principal: &policy::Principal,
        actions: &[Action],
        meta: &RequestMeta,
        keys: &Keys,
        caller: Option<&Caller>,
    ) -> Result<()> {
        let trust = self
            .policies
            .get(&role.trust_policy, policy::PolicyKind::Trust, &format!("trust policy of role {}", role.name))
            .map_err(|e| {
                tracing::error!(role = %role.name, error = %e, "stored trust policy does not parse");
                AwsError::access_denied("the role's trust policy could not be read")
            })?;
        let target = Target::role(account, role);
        for &action in actions {
            let outcome = match caller {
                Some(c) => self.decide(c, action, &target, Some(&trust), meta, keys)?,
                None => {
                    // An unsigned (web identity) or service principal: the trust policy alone.
                    #[cfg(test)]
                    crate::auth::record::push(action, &target, keys);
                    // Only the keys the trust policy can read go into the context (the
                    // decision is the same, see `may_read_context_key`): building a dozen
                    // entries nobody reads was a good part of a web identity request.
                    let wanted = |k: &str| trust.may_read_context_key(k);
                    let mut context = policy::Context::default();
                    let now = self.now();
                    if wanted("aws:CurrentTime") {
                        context.set("aws:CurrentTime", crate::auth::iso8601(now));
                    }
                    if wanted("aws:EpochTime") {
                        context.set("aws:EpochTime", now.to_string());
                    }
                    if wanted("aws:SecureTransport") {
                        context.set(
                            "aws:SecureTransport",
                            if meta.secure_transport {
                                "true"
                            } else {
                                "false"
                            },
                        );
                    }
                    if wanted("aws:RequestedRegion") {
                        context.set("aws:RequestedRegion", &self.config.region);
                    }
                    if let Some(ip) = meta.source_ip
                        && wanted("aws:SourceIp")
                    {
                        context.set("aws:SourceIp", ip.to_string());
                    }
                    crate::auth::resource_context_for(&mut context, &target, wanted);
                    for (k, v) in keys.entries() {
                        if wanted(k) {
                            context.set_multi(k, v.clone());
                        }
                    }
                    let set = policy::PolicySet {
                        identity: vec![],
                        resource: Some(&trust),
                        resource_account: Some(account),
                        boundary: None,
                        session: vec![],
                    };
                    let req = policy::Request {
                        principal,
                        action: action.name(),
                        resource: target.arn(),
                        context: &context,
                    };
                    crate::auth::Outcome::of(&policy::evaluate(&req, &set))
                }
            };
            if !outcome.allowed {
                return Err(outcome.denied(
                    &caller.map_or_else(|| principal.arn.clone(), Caller::arn),
                    action,
                    &target,
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn mint(
        &self,
        meta: &RequestMeta,
        session: &SessionClaims,
        common: &AssumeCommon,
    ) -> Result<AssumedRole> {
        self.check_staleness()?;
        let ring = self.session_keyring();
        let (token, secret) = ring.mint(session).ok_or_else(AwsError::service_failure)?;
        let packed = packed_size(session, common)?;
        meta.audit.note(|f| {
            f.issued = Some(crate::audit::Issued {
                access_key_id: session.access_key_id.clone(),
                expiration: session.expires,
                assumed_role_arn: session.arn(),
                assumed_role_id: session.user_id(),
                role_arn: session.role_arn(),
            });
            f.resource_account = Some(session.account.clone());
        });
        Ok(AssumedRole {
            credentials: Credentials {
                access_key_id: session.access_key_id.clone(),
                secret_access_key: secret,
                session_token: token,
                expiration: session.expires,
            },
            arn: session.arn(),
            assumed_role_id: session.user_id(),
            packed_policy_size: packed,
            source_identity: session.source_identity.clone(),
            subject: None,
            provider: None,
            audience: None,
        })
    }

    /// AssumeRole (signed). Every refusal reads the same, naming the role ARN as the request
    /// spelled it, as STS does: whether the role exists, its stored spelling, and which policy
    /// said no are not the caller's to learn (they go to the log).
    pub async fn assume_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        common: AssumeCommon,
        extra_in: AssumeRoleExtra,
    ) -> Result<AssumedRole> {
        let requested = common.role_arn.clone();
        self.assume_role_checked(caller, meta, common, extra_in).await.map_err(|e| {
            if e.code == crate::error::ErrorCode::AccessDenied {
                tracing::info!(caller = %caller.arn(), role = %requested, reason = %e.message, "AssumeRole refused");
                AwsError::access_denied(format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {requested}", caller.arn()))
            } else {
                e
            }
        })
    }

    async fn assume_role_checked(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        common: AssumeCommon,
        extra_in: AssumeRoleExtra,
    ) -> Result<AssumedRole> {
        let (role_arn, duration) = self.validate_common(&common)?;
        meta.audit
            .note(|f| f.resource_account = Some(role_arn.account.as_str().to_owned()));
        if let Some(x) = &extra_in.external_id {
            names::bounded(x, "externalId", 2, 1224)?;
            if !x
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
            {
                return Err(names::constraint(
                    x,
                    "externalId",
                    "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
                ));
            }
        }
        if let Some(s) = &extra_in.source_identity {
            names::bounded(s, "sourceIdentity", 2, 64)?;
            if !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
            {
                return Err(names::constraint(
                    s,
                    "sourceIdentity",
                    "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
                ));
            }
            if s.to_ascii_lowercase().starts_with("aws:") {
                return Err(AwsError::validation(
                    "source identity cannot start with the reserved prefix aws:",
                ));
            }
        }
        if extra_in.tags.len() > 50 {
            return Err(names::constraint(
                "",
                "tags",
                "Member must have length less than or equal to 50",
            ));
        }
        for t in &extra_in.tags {
            names::tag(&t.key, &t.value)?;
        }
        check_duplicate_tag_keys(extra_in.tags.iter().map(|t| t.key.as_str()))?;
        let same_key = |a: &str, b: &str| policy::fold_key(a) == policy::fold_key(b);
        for k in &extra_in.transitive_tag_keys {
            if !extra_in.tags.iter().any(|t| same_key(&t.key, k)) {
                return Err(AwsError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("transitive tag key {k:?} is not one of the session tags"),
                ));
            }
        }
        let account = role_arn.account.as_str().to_owned();
        if matches!(caller, Caller::Root { .. }) {
            return Err(AwsError::access_denied(
                "roles may not be assumed by root accounts",
            ));
        }
        let role = self.role_for_assume(&role_arn, Action::StsAssumeRole.name())?;
        let parent = match caller {
            Caller::Session(s) => Some(Arc::clone(s)),
            _ => None,
        };
        let chained = parent.is_some();
        if chained && duration > CHAINED_MAX_SECS {
            return Err(AwsError::validation(
                "the requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining",
            ));
        }
        if duration > role.max_session_duration {
            return Err(AwsError::validation(
                "the requested DurationSeconds exceeds the MaxSessionDuration set for this role",
            ));
        }
        // Transitive tags of the parent session carry over and cannot be overridden.
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        let mut transitive: Vec<String> = Vec::new();
        if let Some(p) = &parent {
            for k in &p.transitive {
                if let Some(v) = p.tags.get(k) {
                    // Compared as the policy engine compares keys: a look-alike that folds to
                    // the transitive key (`\u{212A}ubernetes-namespace`) is that key.
                    if extra_in.tags.iter().any(|t| same_key(&t.key, k)) {
                        return Err(AwsError::new(
                            ErrorCode::InvalidParameterValue,
                            format!("the session tag {k:?} is transitive and cannot be set again"),
                        ));
                    }
                    tags.insert(k.clone(), v.clone());
                    transitive.push(k.clone());
                }
            }
        }
        for t in &extra_in.tags {
            tags.insert(t.key.clone(), t.value.clone());
        }
        for k in &extra_in.transitive_tag_keys {
            if let Some(t) = extra_in.tags.iter().find(|t| same_key(&t.key, k))
                && !transitive.contains(&t.key)
            {
                transitive.push(t.key.clone());
            }
        }
        let source_identity = match (
            parent.as_ref().and_then(|p| p.source_identity.clone()),
            &extra_in.source_identity,
        ) {
            (Some(old), Some(new)) if &old != new => {
                return Err(AwsError::access_denied(
                    "source identity cannot be changed in a role chain",
                ));
            }
            (Some(old), _) => Some(old),
            (None, new) => new.clone(),
        };
        // Every tag the new session will carry, passed or inherited as transitive from the
        // parent, is a session tag being set: the trust policy must allow sts:TagSession and
        // sees them all as aws:RequestTag/* and aws:TagKeys, so a Deny on tagging (or a
        // condition on a tag's value) cannot be walked around by chaining.
        let keys = Keys::none()
            .with("sts:RoleSessionName", common.session_name.as_str())
            .with_opt("sts:ExternalId", extra_in.external_id.as_deref())
            // The source identity the new session will carry, passed or inherited from the
            // parent session: either way it is set on the new session, so the trust policy
            // must allow sts:SetSourceIdentity and sees it as sts:SourceIdentity.
            .with_opt("sts:SourceIdentity", source_identity.as_deref())
            .and(session_tag_keys(&tags, &transitive));
        let mut actions = vec![Action::StsAssumeRole];
        if !tags.is_empty() {
            actions.push(Action::StsTagSession);
        }
        if source_identity.is_some() {
            actions.push(Action::StsSetSourceIdentity);
        }
        let principal = principal_of(caller, None);
        self.trust_allows(
            &role,
            &account,
            &principal,
            &actions,
            meta,
            &keys,
            Some(caller),
        )?;
        let now = self.now();
        let session = SessionClaims {
            access_key_id: names::access_key_id("ASIA", &account),
            account,
            role_name: role.name.clone(),
            role_path: role.path.clone(),
            role_id: role.id.clone(),
            session_name: common.session_name.clone(),
            issued: now,
            expires: now + duration,
            tags,
            transitive,
            source_identity,
            policy: common.policy.clone(),
            policy_arns: common.policy_arns.clone(),
            policy_ids: self.session_policy_ids(&common.policy_arns),
            chained,
            federated_provider: None,
        };
        self.mint(meta, &session, &common)
    }

    /// GetAccessKeyInfo: the account of an access key id.
    /// AWS authorizes it as `sts:GetAccessKeyInfo` on `*` (GetCallerIdentity, by contrast, needs
    /// no permission and cannot be denied, as in AWS).
    pub fn get_access_key_info(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        akid: &str,
    ) -> Result<String> {
        names::bounded(akid, "accessKeyId", 16, 128)?;
        self.authorize(
            caller,
            Action::StsGetAccessKeyInfo,
            &Target::wildcard(caller.account()),
            meta,
            Keys::none(),
        )?;
        names::account_of_access_key(akid)
            .or_else(|| {
                self.db
                    .read()
                    .access_keys
                    .get(akid)
                    .map(|k| k.value.account.clone())
            })
            .ok_or_else(|| AwsError::validation(format!("the access key id {akid:?} is not valid")))
    }
}

/// The request keys of session tags: `aws:RequestTag/*`, `aws:TagKeys` and
/// `sts:TransitiveTagKeys`.
pub(crate) fn session_tag_keys(tags: &BTreeMap<String, String>, transitive: &[String]) -> Keys {
    let keys = Keys::none().request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if tags.is_empty() || transitive.is_empty() {
        keys
    } else {
        keys.with_multi("sts:TransitiveTagKeys", transitive.to_vec())
    }
}

/// Refuse session tags whose keys fold to one key (the engine would see one).
pub(crate) fn check_duplicate_tag_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    for k in keys {
        let f = policy::fold_key(k);
        if seen.contains(&f) {
            return Err(AwsError::new(
                ErrorCode::InvalidParameterValue,
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
        seen.push(f);
    }
    Ok(())
}

/// podiam's packed size: session policy characters plus tag characters against a 2048-character
/// budget, in percent. (AWS compresses before measuring; podiam's measure is simpler and
/// stricter.) Over 100 → `PackedPolicyTooLarge`.
fn packed_size(s: &SessionClaims, c: &AssumeCommon) -> Result<Option<u32>> {
    if s.tags.is_empty() && c.policy.is_none() && c.policy_arns.is_empty() {
        return Ok(None);
    }
    let chars = c.policy.as_deref().map_or(0, policy_chars)
        + c.policy_arns.iter().map(String::len).sum::<usize>()
        + s.tags.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let pct = u32::try_from(chars * 100 / 2048).unwrap_or(u32::MAX);
    if pct > 100 {
        return Err(AwsError::new(
            ErrorCode::PackedPolicyTooLarge,
            format!("packed size of the session policies and tags exceeds the limit: {pct}%"),
        ));
    }
    Ok(Some(pct))
}
