//! IAM: OIDC providers, roles and their policies, managed policies, users and access keys.
//!
//! Every operation is authorized as `iam:<Action>` on the entity's ARN, inside the caller's
//! account. Inputs are validated to the AWS limits before anything is written; a batch of
//! changes is committed whole or not at all.

use std::sync::Arc;

use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, ResourceKind, Target};
use crate::error::{AwsError, ErrorCode, Result};
use crate::model::{self, Tag, kind};
use crate::names;
use crate::state::Change;

/// AWS quotas podiam enforces (IAM defaults).
pub mod limits {
    /// OIDC providers per account.
    pub const PROVIDERS_PER_ACCOUNT: usize = 100;
    /// Client ids per OIDC provider.
    pub const CLIENT_IDS: usize = 100;
    /// Thumbprints per OIDC provider.
    pub const THUMBPRINTS: usize = 5;
    /// Tags per entity.
    pub const TAGS: usize = 50;
    /// Roles per account.
    pub const ROLES_PER_ACCOUNT: usize = 1000;
    /// Users per account.
    pub const USERS_PER_ACCOUNT: usize = 5000;
    /// Managed policies attached to a role or user.
    pub const ATTACHED_PER_ENTITY: usize = 10;
    /// Trust policy length (characters, whitespace excluded).
    pub const TRUST_POLICY_CHARS: usize = 2048;
    /// Aggregate inline policy length per role (characters, whitespace excluded).
    pub const ROLE_INLINE_CHARS: usize = 10_240;
    /// Aggregate inline policy length per user.
    pub const USER_INLINE_CHARS: usize = 2048;
    /// Managed policy document length.
    pub const MANAGED_POLICY_CHARS: usize = 6144;
    /// Versions kept per managed policy.
    pub const POLICY_VERSIONS: usize = 5;
    /// Access keys per user.
    pub const ACCESS_KEYS_PER_USER: usize = 2;
    /// Customer managed policies per account.
    pub const POLICIES_PER_ACCOUNT: usize = 1500;
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Marker for the next page, when truncated.
    pub marker: Option<String>,
}

/// A page request.
#[derive(Debug, Clone, Default)]
pub struct PageReq {
    /// Marker from the previous page.
    pub marker: Option<String>,
    /// 1..=1000, default 100.
    pub max_items: Option<i64>,
}

impl PageReq {
    fn size(&self) -> Result<usize> {
        match self.max_items {
            None => Ok(100),
            Some(n @ 1..=1000) => Ok(usize::try_from(n).unwrap_or(100)),
            Some(n) => Err(names::constraint(
                &n.to_string(),
                "maxItems",
                "Member must have value between 1 and 1000",
            )),
        }
    }
}

fn paginate<T: Clone>(items: impl Iterator<Item = (String, T)>, page: &PageReq) -> Result<Page<T>> {
    let size = page.size()?;
    let mut out = Vec::new();
    let mut marker = None;
    for (key, item) in items {
        if let Some(m) = &page.marker
            && key.as_str() <= m.as_str()
        {
            continue;
        }
        if out.len() == size {
            marker = out.last().map(|(k, _): &(String, T)| k.clone());
            break;
        }
        out.push((key, item));
    }
    Ok(Page {
        items: out.into_iter().map(|(_, v)| v).collect(),
        marker,
    })
}

/// Inputs of CreateRole.
#[derive(Debug, Clone, Default)]
pub struct CreateRole {
    /// RoleName.
    pub name: String,
    /// Path (default `/`).
    pub path: Option<String>,
    /// AssumeRolePolicyDocument.
    pub trust_policy: String,
    /// Description.
    pub description: Option<String>,
    /// MaxSessionDuration (default 3600).
    pub max_session_duration: Option<i64>,
    /// PermissionsBoundary.
    pub boundary: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// An attached managed policy, as ListAttached*Policies reports it.
#[derive(Debug, Clone)]
pub struct AttachedPolicy {
    /// Policy name.
    pub name: String,
    /// Policy ARN.
    pub arn: String,
}

/// Count a policy's characters the way IAM does: whitespace outside strings is not counted.
pub fn policy_chars(doc: &str) -> usize {
    let mut n = 0;
    let mut in_str = false;
    let mut esc = false;
    for c in doc.chars() {
        if in_str {
            n += 1;
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            n += 1;
        } else if !c.is_whitespace() {
            n += 1;
        }
    }
    n
}

/// Parse and validate a policy document for writing.
pub fn validate_policy(
    doc: &str,
    kind: policy::PolicyKind,
    max_chars: usize,
    member: &str,
) -> Result<policy::Policy> {
    names::bounded(doc, member, 1, 131_072)?;
    if policy_chars(doc) > max_chars {
        return Err(AwsError::limit_exceeded(format!(
            "cannot exceed quota for {member}: {max_chars}"
        )));
    }
    policy::Policy::parse(doc, kind).map_err(|e| AwsError::malformed_policy(e.to_string()))
}

fn validate_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > limits::TAGS {
        return Err(AwsError::limit_exceeded(format!(
            "the number of tags has reached the maximum limit of {}",
            limits::TAGS
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        names::tag(&t.key, &t.value)?;
        let folded = policy::fold_key(&t.key);
        if folded.starts_with("aws:") {
            return Err(AwsError::invalid_input(format!(
                "tag key {:?} uses the reserved prefix aws:",
                t.key
            )));
        }
        // Keys that fold to one key are one key (the engine sees one `aws:RequestTag/...`):
        // IAM refuses them side by side.
        if tags
            .iter()
            .take(i)
            .any(|o| policy::fold_key(&o.key) == folded)
        {
            return Err(AwsError::invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

fn validate_tag_keys(keys: &[String]) -> Result<()> {
    if keys.len() > limits::TAGS {
        return Err(names::constraint(
            "",
            "tagKeys",
            &format!(
                "Member must have length less than or equal to {}",
                limits::TAGS
            ),
        ));
    }
    for k in keys {
        names::bounded(k, "tagKeys.member", 1, 128)?;
    }
    Ok(())
}

/// Merge tags into an entity's tags (a key folding to the same key is replaced).
fn merge_tags(existing: &[Tag], new: &[Tag]) -> Result<Vec<Tag>> {
    validate_tags(new)?;
    let mut out: Vec<Tag> = existing
        .iter()
        .filter(|t| {
            !new.iter()
                .any(|n| policy::fold_key(&n.key) == policy::fold_key(&t.key))
        })
        .cloned()
        .collect();
    out.extend(new.iter().cloned());
    if out.len() > limits::TAGS {
        return Err(AwsError::limit_exceeded(format!(
            "the number of tags has reached the maximum limit of {}",
            limits::TAGS
        )));
    }
    Ok(out)
}

/// Remove the tags whose keys fold to one of `keys`.
fn remove_tags(existing: &[Tag], keys: &[String]) -> Vec<Tag> {
    let folded: Vec<String> = keys.iter().map(|k| policy::fold_key(k)).collect();
    existing
        .iter()
        .filter(|t| !folded.contains(&policy::fold_key(&t.key)))
        .cloned()
        .collect()
}

pub use crate::names::{policy_arn, provider_arn, role_arn, user_arn};

/// The key of a provider URL: the URL without its scheme and trailing slash.
pub fn provider_key(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.trim_end_matches('/').to_owned()
}

impl Control {
    // === OIDC providers ===

    /// CreateOpenIDConnectProvider.
    pub async fn create_oidc_provider(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        url: &str,
        client_ids: Vec<String>,
        thumbprints: Vec<String>,
        tags: Vec<Tag>,
    ) -> Result<String> {
        let account = caller.account().to_owned();
        names::bounded(url, "url", 1, 255)?;
        let http_ok = self.config.dangerous_allow_http_issuer && url.starts_with("http://");
        if !url.starts_with("https://") && !http_ok {
            return Err(AwsError::invalid_input(format!(
                "invalid url {url:?}: the url must begin with https://"
            )));
        }
        let key = provider_key(url);
        if key.is_empty()
            || key.contains(['?', '#', ' '])
            || key
                .split('/')
                .next()
                .is_some_and(|h| h.is_empty() || h.contains(':'))
        {
            return Err(AwsError::invalid_input(format!(
                "invalid url {url:?}: expected https://host[/path] without port, query or fragment"
            )));
        }
        validate_client_ids(&client_ids)?;
        let thumbprints = validate_thumbprints(thumbprints)?;
        validate_tags(&tags)?;
        let target = Target::new_oidc_provider(&account, &key);
        self.authorize(
            caller,
            Action::IamCreateOpenIdConnectProvider,
            &target,
            meta,
            Keys::none().request_tags(tag_pairs(&tags)),
        )?;
        let guard = self.db.write().await;
        {
            let t = self.db.read();
            if t.providers.contains_key(&(account.clone(), key.clone())) {
                return Err(AwsError::already_exists(format!(
                    "provider with url {url} already exists"
                )));
            }
            if t.providers
                .range((account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &account)
                .count()
                >= limits::PROVIDERS_PER_ACCOUNT
            {
                return Err(AwsError::limit_exceeded(format!(
                    "cannot exceed quota for OpenIdConnectProvidersPerAccount: {}",
                    limits::PROVIDERS_PER_ACCOUNT
                )));
            }
        }
        let now = self.now();
        let p = model::OidcProvider {
            url: format!("{}{key}", if http_ok { "http://" } else { "https://" }),
            client_ids: dedup(client_ids),
            thumbprints,
            created: now,
            tags,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(kind::OIDC_PROVIDER, &account, &key, &p)?],
                now,
            )
            .await?;
        Ok(target.arn().to_owned())
    }

    /// The provider an ARN names in the caller's account, authorized for `action` on the stored
    /// provider (or, when there is none, on the ARN's own key, before answering NoSuchEntity).
    fn provider_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        arn: &str,
        keys: Keys,
    ) -> Result<(String, Arc<model::OidcProvider>, i64)> {
        names::bounded(arn, "openIDConnectProviderArn", 20, 2048)?;
        let parsed = names::Arn::parse(arn).filter(|a| a.service == "iam" && a.region.is_empty());
        let key = parsed
            .as_ref()
            .and_then(|a| a.resource.strip_prefix("oidc-provider/"));
        let (Some(a), Some(key)) = (parsed.as_ref(), key) else {
            return Err(AwsError::invalid_input(format!(
                "invalid openid connect provider arn {arn:?}"
            )));
        };
        let not_found =
            || AwsError::no_such_entity(format!("openid connect provider not found for arn {arn}"));
        if a.account != caller.account() {
            return Err(not_found());
        }
        let account = caller.account();
        let e = self
            .db
            .read()
            .providers
            .get(&(account.to_owned(), key.to_owned()))
            .cloned();
        let target = match &e {
            Some(e) => Target::oidc_provider(account, key, &e.value),
            None => Target::new_oidc_provider(account, key),
        };
        self.authorize(caller, action, &target, meta, keys)?;
        let e = e.ok_or_else(not_found)?;
        Ok((key.to_owned(), e.value, e.version))
    }

    /// GetOpenIDConnectProvider.
    pub fn get_oidc_provider(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<Arc<model::OidcProvider>> {
        Ok(self
            .provider_for(
                caller,
                meta,
                Action::IamGetOpenIdConnectProvider,
                arn,
                Keys::none(),
            )?
            .1)
    }

    /// ListOpenIDConnectProviders: ARNs.
    pub fn list_oidc_providers(&self, caller: &Caller, meta: &RequestMeta) -> Result<Vec<String>> {
        let account = caller.account().to_owned();
        self.authorize(
            caller,
            Action::IamListOpenIdConnectProviders,
            &Target::wildcard(&account),
            meta,
            Keys::none(),
        )?;
        let t = self.db.read();
        Ok(t.providers
            .range((account.clone(), String::new())..)
            .take_while(|((a, _), _)| a == &account)
            .map(|((a, k), _)| provider_arn(a, k))
            .collect())
    }

    /// DeleteOpenIDConnectProvider.
    pub async fn delete_oidc_provider(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<()> {
        let guard = self.db.write().await;
        let (key, _, _) = self.provider_for(
            caller,
            meta,
            Action::IamDeleteOpenIdConnectProvider,
            arn,
            Keys::none(),
        )?;
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::OIDC_PROVIDER, caller.account(), &key)],
                now,
            )
            .await
    }

    async fn update_provider(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        arn: &str,
        keys: Keys,
        f: impl FnOnce(&mut model::OidcProvider) -> Result<()>,
    ) -> Result<()> {
        let guard = self.db.write().await;
        let (key, p, version) = self.provider_for(caller, meta, action, arn, keys)?;
        let mut p = (*p).clone();
        f(&mut p)?;
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::OIDC_PROVIDER,
                    caller.account(),
                    &key,
                    &p,
                    version,
                )?],
                now,
            )
            .await
    }

    /// AddClientIDToOpenIDConnectProvider.
    pub async fn add_client_id(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        client_id: &str,
    ) -> Result<()> {
        names::bounded(client_id, "clientID", 1, 255)?;
        self.update_provider(
            caller,
            meta,
            Action::IamAddClientIdToOpenIdConnectProvider,
            arn,
            Keys::none(),
            |p| {
                if !p.client_ids.iter().any(|c| c == client_id) {
                    if p.client_ids.len() >= limits::CLIENT_IDS {
                        return Err(AwsError::limit_exceeded(format!(
                            "cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {}",
                            limits::CLIENT_IDS
                        )));
                    }
                    p.client_ids.push(client_id.to_owned());
                }
                Ok(())
            },
        )
        .await
    }

    /// RemoveClientIDFromOpenIDConnectProvider.
    pub async fn remove_client_id(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        client_id: &str,
    ) -> Result<()> {
        names::bounded(client_id, "clientID", 1, 255)?;
        self.update_provider(
            caller,
            meta,
            Action::IamRemoveClientIdFromOpenIdConnectProvider,
            arn,
            Keys::none(),
            |p| {
                p.client_ids.retain(|c| c != client_id);
                Ok(())
            },
        )
        .await
    }

    /// UpdateOpenIDConnectProviderThumbprint.
    pub async fn update_thumbprints(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        thumbprints: Vec<String>,
    ) -> Result<()> {
        let thumbprints = validate_thumbprints(thumbprints)?;
        self.update_provider(
            caller,
            meta,
            Action::IamUpdateOpenIdConnectProviderThumbprint,
            arn,
            Keys::none(),
            |p| {
                p.thumbprints = thumbprints;
                Ok(())
            },
        )
        .await
    }

    /// TagOpenIDConnectProvider.
    pub async fn tag_oidc_provider(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        tags: Vec<Tag>,
    ) -> Result<()> {
        validate_tags(&tags)?;
        let keys = Keys::none().request_tags(tag_pairs(&tags));
        self.update_provider(
            caller,
            meta,
            Action::IamTagOpenIdConnectProvider,
            arn,
            keys,
            |p| {
                p.tags = merge_tags(&p.tags, &tags)?;
                Ok(())
            },
        )
        .await
    }

    /// ListOpenIDConnectProviderTags.
    pub fn list_oidc_provider_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<Vec<Tag>> {
        Ok(self
            .provider_for(
                caller,
                meta,
                Action::IamListOpenIdConnectProviderTags,
                arn,
                Keys::none(),
            )?
            .1
            .tags
            .clone())
    }

    /// UntagOpenIDConnectProvider.
    pub async fn untag_oidc_provider(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        keys: Vec<String>,
    ) -> Result<()> {
        validate_tag_keys(&keys)?;
        self.update_provider(
            caller,
            meta,
            Action::IamUntagOpenIdConnectProvider,
            arn,
            Keys::none().tag_keys(&keys),
            |p| {
                p.tags = remove_tags(&p.tags, &keys);
                Ok(())
            },
        )
        .await
    }

    // === roles ===

    /// The role `name` names in `account`, authorized for `action` on the stored role (path and
    /// case as stored), or, when there is none, on the name as given before NoSuchEntity: the
    /// caller learns whether a role exists only where it may act on it. `keys` are the
    /// request's keys; `iam:PermissionsBoundary` is added from the stored role where the
    /// action sets it.
    fn role_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
    ) -> Result<(Arc<model::Role>, i64)> {
        names::entity_name(name, "roleName", 64)?;
        let account = caller.account();
        let e = self
            .db
            .read()
            .roles
            .get(&(account.to_owned(), name.to_lowercase()))
            .cloned();
        let (target, keys) = match &e {
            Some(e) => {
                let stored = boundary_key(action, e.value.boundary.as_deref(), &keys);
                (Target::role(account, &e.value), keys.and(stored))
            }
            None => (
                Target::new_iam(ResourceKind::Role, account, "/", name),
                keys,
            ),
        };
        self.authorize(caller, action, &target, meta, keys)?;
        let e = e.ok_or_else(|| {
            AwsError::no_such_entity(format!("the role with name {name} cannot be found"))
        })?;
        Ok((e.value, e.version))
    }

    /// IAM refuses a trust policy naming a user or role that does not exist: `"AWS"` principals
    /// that are user or role ARNs of an account podiam holds must name an existing entity (path
    /// included). Other accounts' entities cannot be checked and are accepted.
    fn check_trust_principals(&self, trust: &policy::Policy) -> Result<()> {
        let t = self.db.read();
        for st in trust.statements() {
            let Some(policy::PrincipalClause::Principal(policy::PrincipalSpec::Map(entries))) =
                st.principal()
            else {
                continue;
            };
            for value in entries
                .iter()
                .filter(|(k, _)| *k == policy::PrincipalType::Aws)
                .flat_map(|(_, v)| v)
            {
                let raw = value.as_str();
                let Some(rest) = raw.strip_prefix("arn:aws:iam::") else {
                    continue;
                };
                let Some((account, resource)) = rest.split_once(':') else {
                    continue;
                };
                if raw.contains('*') || !t.accounts.contains_key(account) {
                    continue;
                }
                let exists = |path_and_name: &str, arn_of: &dyn Fn(&str) -> Option<String>| {
                    let name = path_and_name.rsplit('/').next().unwrap_or_default();
                    arn_of(&name.to_lowercase()).is_some_and(|arn| arn == raw)
                };
                let known = if let Some(p) = resource.strip_prefix("user/") {
                    exists(p, &|id| {
                        t.users
                            .get(&(account.to_owned(), id.to_owned()))
                            .map(|e| user_arn(account, &e.value))
                    })
                } else if let Some(p) = resource.strip_prefix("role/") {
                    exists(p, &|id| {
                        t.roles
                            .get(&(account.to_owned(), id.to_owned()))
                            .map(|e| role_arn(account, &e.value))
                    })
                } else {
                    true
                };
                if !known {
                    return Err(AwsError::malformed_policy(format!(
                        "Invalid principal in policy: \"AWS\":\"{raw}\""
                    )));
                }
            }
        }
        Ok(())
    }

    /// CreateRole.
    pub async fn create_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        input: CreateRole,
    ) -> Result<Arc<model::Role>> {
        let account = caller.account().to_owned();
        names::entity_name(&input.name, "roleName", 64)?;
        let path = input.path.unwrap_or_else(|| "/".into());
        names::iam_path(&path)?;
        if let Some(d) = &input.description {
            names::role_description(d)?;
        }
        let max = input.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max) {
            return Err(names::constraint(
                &max.to_string(),
                "maxSessionDuration",
                "Member must have value less than or equal to 43200 and greater than or equal to 3600",
            ));
        }
        let trust = validate_policy(
            &input.trust_policy,
            policy::PolicyKind::Trust,
            limits::TRUST_POLICY_CHARS,
            "ACLSizePerRole",
        )?;
        let boundary = match &input.boundary {
            Some(b) => Some(policy_arn(&account, &self.policy_entry(&account, b)?.1)),
            None => None,
        };
        validate_tags(&input.tags)?;
        let target = Target::new_iam(ResourceKind::Role, &account, &path, &input.name);
        let keys = Keys::none().request_tags(tag_pairs(&input.tags)).and(
            boundary.as_deref().map_or_else(Keys::none, |b| {
                Keys::none().with("iam:PermissionsBoundary", b)
            }),
        );
        self.authorize(caller, Action::IamCreateRole, &target, meta, keys)?;
        let guard = self.db.write().await;
        self.check_trust_principals(&trust)?;
        let id = input.name.to_lowercase();
        {
            let t = self.db.read();
            if t.roles.contains_key(&(account.clone(), id.clone())) {
                return Err(AwsError::already_exists(format!(
                    "role with name {} already exists",
                    input.name
                )));
            }
            if t.roles
                .range((account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &account)
                .count()
                >= limits::ROLES_PER_ACCOUNT
            {
                return Err(AwsError::limit_exceeded(format!(
                    "cannot exceed quota for RolesPerAccount: {}",
                    limits::ROLES_PER_ACCOUNT
                )));
            }
        }
        let now = self.now();
        let role = model::Role {
            name: input.name,
            id: names::unique_id("AROA"),
            path,
            trust_policy: input.trust_policy,
            description: input.description,
            max_session_duration: max,
            created: now,
            tags: input.tags,
            inline_policies: vec![],
            attached: vec![],
            boundary,
            revoked_before: None,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(kind::ROLE, &account, &id, &role)?],
                now,
            )
            .await?;
        Ok(Arc::new(role))
    }

    /// GetRole.
    pub fn get_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<Arc<model::Role>> {
        Ok(self
            .role_for(caller, meta, Action::IamGetRole, name, Keys::none())?
            .0)
    }

    /// ListRoles.
    pub fn list_roles(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        path_prefix: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<Arc<model::Role>>> {
        let account = caller.account().to_owned();
        self.authorize(
            caller,
            Action::IamListRoles,
            &Target::wildcard(&account),
            meta,
            Keys::none(),
        )?;
        let prefix = path_prefix.unwrap_or("/");
        let t = self.db.read();
        paginate(
            t.roles
                .range((account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &account)
                .filter(|(_, e)| e.value.path.starts_with(prefix))
                .map(|((_, k), e)| (k.clone(), Arc::clone(&e.value))),
            page,
        )
    }

    async fn update_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
        f: impl FnOnce(&mut model::Role) -> Result<()>,
    ) -> Result<Arc<model::Role>> {
        let guard = self.db.write().await;
        let (role, version) = self.role_for(caller, meta, action, name, keys)?;
        let mut role = (*role).clone();
        f(&mut role)?;
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::ROLE,
                    caller.account(),
                    &name.to_lowercase(),
                    &role,
                    version,
                )?],
                now,
            )
            .await?;
        Ok(Arc::new(role))
    }

    /// UpdateRole (description, max session duration).
    pub async fn update_role_settings(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        description: Option<String>,
        max_session_duration: Option<i64>,
    ) -> Result<()> {
        if let Some(d) = &description {
            names::role_description(d)?;
        }
        if let Some(m) = max_session_duration
            && !(3600..=43200).contains(&m)
        {
            return Err(names::constraint(
                &m.to_string(),
                "maxSessionDuration",
                "Member must have value less than or equal to 43200 and greater than or equal to 3600",
            ));
        }
        self.update_role(
            caller,
            meta,
            Action::IamUpdateRole,
            name,
            Keys::none(),
            |r| {
                if let Some(d) = description {
                    r.description = Some(d);
                }
                if let Some(m) = max_session_duration {
                    r.max_session_duration = m;
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// UpdateAssumeRolePolicy.
    pub async fn update_assume_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        doc: String,
    ) -> Result<()> {
        let trust = validate_policy(
            &doc,
            policy::PolicyKind::Trust,
            limits::TRUST_POLICY_CHARS,
            "ACLSizePerRole",
        )?;
        self.check_trust_principals(&trust)?;
        self.update_role(
            caller,
            meta,
            Action::IamUpdateAssumeRolePolicy,
            name,
            Keys::none(),
            |r| {
                r.trust_policy = doc;
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// DeleteRole.
    pub async fn delete_role(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<()> {
        let guard = self.db.write().await;
        let (role, _) = self.role_for(caller, meta, Action::IamDeleteRole, name, Keys::none())?;
        if !role.inline_policies.is_empty() {
            return Err(AwsError::delete_conflict(
                "cannot delete entity, must delete policies first",
            ));
        }
        if !role.attached.is_empty() {
            return Err(AwsError::delete_conflict(
                "cannot delete entity, must detach all policies first",
            ));
        }
        let now = self.now();
        let mut changes = self.trust_rewrites(
            &role_arn(caller.account(), &role),
            &role.id,
            Some(&name.to_lowercase()),
        )?;
        changes.push(Change::delete(
            kind::ROLE,
            caller.account(),
            &name.to_lowercase(),
        ));
        self.db.commit(&guard, changes, now).await
    }

    /// Every trust policy that names the deleted principal `arn`, rewritten with its unique id in
    /// place of the ARN, as IAM does: a user or role created later under the same name is
    /// another principal and inherits none of its predecessor's trust. (`except`: the key of a
    /// role being deleted in the same batch.)
    fn trust_rewrites(
        &self,
        arn: &str,
        unique_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<Change>> {
        let t = self.db.read();
        let mut out = Vec::new();
        for ((account, key), e) in &t.roles {
            if except.is_some_and(|x| x == key)
                && account.as_str() == arn.split(':').nth(4).unwrap_or_default()
            {
                continue;
            }
            let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&e.value.trust_policy)
            else {
                continue;
            };
            if replace_principal(&mut doc, arn, unique_id) {
                let mut r = (*e.value).clone();
                r.trust_policy =
                    serde_json::to_string(&doc).map_err(|_| AwsError::service_failure())?;
                out.push(Change::update(kind::ROLE, account, key, &r, e.version)?);
            }
        }
        Ok(out)
    }

    /// TagRole.
    pub async fn tag_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        tags: Vec<Tag>,
    ) -> Result<()> {
        validate_tags(&tags)?;
        let keys = Keys::none().request_tags(tag_pairs(&tags));
        self.update_role(caller, meta, Action::IamTagRole, name, keys, |r| {
            r.tags = merge_tags(&r.tags, &tags)?;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// UntagRole.
    pub async fn untag_role(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        keys: Vec<String>,
    ) -> Result<()> {
        validate_tag_keys(&keys)?;
        self.update_role(
            caller,
            meta,
            Action::IamUntagRole,
            name,
            Keys::none().tag_keys(&keys),
            |r| {
                r.tags = remove_tags(&r.tags, &keys);
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// ListRoleTags.
    pub fn list_role_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<Vec<Tag>> {
        Ok(self
            .role_for(caller, meta, Action::IamListRoleTags, name, Keys::none())?
            .0
            .tags
            .clone())
    }

    /// PutRolePolicy.
    pub async fn put_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_name: &str,
        doc: String,
    ) -> Result<()> {
        names::policy_name(policy_name, "policyName")?;
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            limits::ROLE_INLINE_CHARS,
            "PolicySize",
        )?;
        self.update_role(
            caller,
            meta,
            Action::IamPutRolePolicy,
            role,
            Keys::none(),
            |r| {
                put_inline(
                    &mut r.inline_policies,
                    policy_name,
                    doc,
                    limits::ROLE_INLINE_CHARS,
                )
            },
        )
        .await
        .map(|_| ())
    }

    /// GetRolePolicy.
    pub fn get_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_name: &str,
    ) -> Result<(String, model::InlinePolicy)> {
        names::policy_name(policy_name, "policyName")?;
        let (r, _) = self.role_for(caller, meta, Action::IamGetRolePolicy, role, Keys::none())?;
        let p = r
            .inline_policies
            .iter()
            .find(|p| p.name == policy_name)
            .cloned();
        let p = p.ok_or_else(|| {
            AwsError::no_such_entity(format!(
                "the role policy with name {policy_name} cannot be found"
            ))
        })?;
        Ok((r.name.clone(), p))
    }

    /// DeleteRolePolicy.
    pub async fn delete_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_name: &str,
    ) -> Result<()> {
        names::policy_name(policy_name, "policyName")?;
        self.update_role(
            caller,
            meta,
            Action::IamDeleteRolePolicy,
            role,
            Keys::none(),
            |r| delete_inline(&mut r.inline_policies, policy_name, "role"),
        )
        .await
        .map(|_| ())
    }

    /// ListRolePolicies: names.
    pub fn list_role_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        page: &PageReq,
    ) -> Result<Page<String>> {
        let (r, _) = self.role_for(
            caller,
            meta,
            Action::IamListRolePolicies,
            role,
            Keys::none(),
        )?;
        inline_names(&r.inline_policies, page)
    }

    /// AttachRolePolicy.
    pub async fn attach_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let (found, keys) = self.attachable(caller.account(), policy_arn)?;
        self.update_role(caller, meta, Action::IamAttachRolePolicy, role, keys, |r| {
            attach(&mut r.attached, &found?, "PoliciesPerRole")
        })
        .await
        .map(|_| ())
    }

    /// DetachRolePolicy.
    pub async fn detach_role_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let keys = Keys::none().with("iam:PolicyARN", policy_arn);
        self.update_role(caller, meta, Action::IamDetachRolePolicy, role, keys, |r| {
            detach(&mut r.attached, policy_arn)
        })
        .await
        .map(|_| ())
    }

    /// ListAttachedRolePolicies.
    pub fn list_attached_role_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
        page: &PageReq,
    ) -> Result<Page<AttachedPolicy>> {
        let (r, _) = self.role_for(
            caller,
            meta,
            Action::IamListAttachedRolePolicies,
            role,
            Keys::none(),
        )?;
        attached_page(&r.attached, page)
    }

    /// Revoke every session of a role issued before now, in one call: the same inline policy
    /// the AWS console writes (`AWSRevokeOlderSessions`, a Deny on everything for sessions whose
    /// `aws:TokenIssueTime` is earlier than now). Returns the cut-off time.
    pub async fn revoke_role_sessions(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        role: &str,
    ) -> Result<String> {
        let cutoff = crate::auth::iso8601(self.now());
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{cutoff}"}}}}}}]}}"#
        );
        self.put_role_policy(caller, meta, role, "AWSRevokeOlderSessions", doc)
            .await?;
        Ok(cutoff)
    }

    /// UpdateRoleDescription: returns the updated role.
    pub async fn update_role_description(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        description: String,
    ) -> Result<Arc<model::Role>> {
        names::role_description(&description)?;
        self.update_role(
            caller,
            meta,
            Action::IamUpdateRoleDescription,
            name,
            Keys::none(),
            |r| {
                r.description = Some(description);
                Ok(())
            },
        )
        .await
    }

    /// PutRolePermissionsBoundary.
    pub async fn put_role_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        boundary: &str,
    ) -> Result<()> {
        let (found, keys) = self.boundary_arg(caller.account(), boundary)?;
        self.update_role(
            caller,
            meta,
            Action::IamPutRolePermissionsBoundary,
            name,
            keys,
            |r| {
                r.boundary = Some(found?);
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// DeleteRolePermissionsBoundary.
    pub async fn delete_role_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<()> {
        self.update_role(
            caller,
            meta,
            Action::IamDeleteRolePermissionsBoundary,
            name,
            Keys::none(),
            |r| {
                r.boundary.take().map(|_| ()).ok_or_else(|| {
                    AwsError::no_such_entity(format!("the role {name} has no permissions boundary"))
                })
            },
        )
        .await
        .map(|_| ())
    }

    /// The boundary a Put*PermissionsBoundary names and its `iam:PermissionsBoundary` key (a
    /// policy that does not exist is reported after authorization, as for attachments).
    fn boundary_arg(&self, account: &str, arn: &str) -> Result<(Result<String>, Keys)> {
        let (found, _) = self.attachable(account, arn)?;
        let keys = Keys::none().with("iam:PermissionsBoundary", found.as_deref().unwrap_or(arn));
        Ok((found, keys))
    }

    // === managed policies ===

    /// The canonical ARN of the managed policy of `account` that `arn` names exactly, and the
    /// `iam:PolicyARN` key of the request. A malformed ARN is refused at once; a policy that does
    /// not exist is reported (NoSuchEntity) only after authorization, so an unauthorized caller
    /// learns nothing of which policies exist.
    fn attachable(&self, account: &str, arn: &str) -> Result<(Result<String>, Keys)> {
        match self.policy_entry(account, arn) {
            Ok((_, p, _)) => {
                let canonical = policy_arn(account, &p);
                let keys = Keys::none().with("iam:PolicyARN", canonical.as_str());
                Ok((Ok(canonical), keys))
            }
            Err(e) if e.code == ErrorCode::NoSuchEntity => {
                Ok((Err(e), Keys::none().with("iam:PolicyARN", arn)))
            }
            Err(e) => Err(e),
        }
    }

    fn policy_entry(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<(String, Arc<model::ManagedPolicy>, i64)> {
        names::bounded(arn, "policyArn", 20, 2048)?;
        let a = names::Arn::parse(arn).filter(|a| {
            a.service == "iam" && a.region.is_empty() && a.resource.starts_with("policy/")
        });
        let a = a.ok_or_else(|| AwsError::invalid_input(format!("ARN {arn} is not valid")))?;
        let not_found = || {
            AwsError::no_such_entity(format!("policy {arn} does not exist or is not attachable"))
        };
        if a.account != account {
            // AWS managed policies (account "aws") and other accounts' policies are not available.
            return Err(not_found());
        }
        let id = a
            .resource
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let e = self
            .db
            .read()
            .policies
            .get(&(account.to_owned(), id.clone()))
            .cloned()
            .ok_or_else(not_found)?;
        if policy_arn(account, &e.value) != arn {
            return Err(not_found());
        }
        Ok((id, e.value, e.version))
    }

    /// The managed policy `arn` names in the caller's account, authorized for `action` on the
    /// stored policy (or on the ARN as given, before NoSuchEntity, when there is none).
    fn policy_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        arn: &str,
    ) -> Result<(String, Arc<model::ManagedPolicy>, i64)> {
        let account = caller.account();
        match self.policy_entry(account, arn) {
            Ok(found) => {
                self.authorize(
                    caller,
                    action,
                    &Target::policy(account, &found.1),
                    meta,
                    Keys::none(),
                )?;
                Ok(found)
            }
            Err(e) if e.code == ErrorCode::NoSuchEntity => {
                let a = names::Arn::parse(arn).ok_or_else(AwsError::service_failure)?;
                let rest = a.resource.strip_prefix("policy").unwrap_or_default();
                let (path, name) = rest.rsplit_once('/').map_or(("/", rest), |(p, n)| (p, n));
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    format!("{path}/")
                };
                if a.account == account {
                    self.authorize(
                        caller,
                        action,
                        &Target::new_iam(ResourceKind::Policy, account, &path, name),
                        meta,
                        Keys::none(),
                    )?;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// CreatePolicy.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        path: Option<String>,
        doc: String,
        description: Option<String>,
        tags: Vec<Tag>,
    ) -> Result<Arc<model::ManagedPolicy>> {
        let account = caller.account().to_owned();
        names::policy_name(name, "policyName")?;
        let path = path.unwrap_or_else(|| "/".into());
        names::iam_path(&path)?;
        if let Some(d) = &description {
            names::bounded(d, "description", 0, 1000)?;
        }
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            limits::MANAGED_POLICY_CHARS,
            "PolicySize",
        )?;
        validate_tags(&tags)?;
        let target = Target::new_iam(ResourceKind::Policy, &account, &path, name);
        self.authorize(
            caller,
            Action::IamCreatePolicy,
            &target,
            meta,
            Keys::none().request_tags(tag_pairs(&tags)),
        )?;
        let guard = self.db.write().await;
        let id = name.to_lowercase();
        {
            let t = self.db.read();
            if t.policies.contains_key(&(account.clone(), id.clone())) {
                return Err(AwsError::already_exists(format!(
                    "a policy called {name} already exists. duplicate names are not allowed"
                )));
            }
            if t.policies
                .range((account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &account)
                .count()
                >= limits::POLICIES_PER_ACCOUNT
            {
                return Err(AwsError::limit_exceeded(format!(
                    "cannot exceed quota for PoliciesPerAccount: {}",
                    limits::POLICIES_PER_ACCOUNT
                )));
            }
        }
        let now = self.now();
        let p = model::ManagedPolicy {
            name: name.to_owned(),
            id: names::unique_id("ANPA"),
            path,
            description,
            versions: vec![model::PolicyVersion {
                id: "v1".into(),
                document: doc,
                created: now,
            }],
            default_version: "v1".into(),
            next_version: 2,
            created: now,
            updated: now,
            tags,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(kind::POLICY, &account, &id, &p)?],
                now,
            )
            .await?;
        Ok(Arc::new(p))
    }

    /// GetPolicy, with its attachment count.
    pub fn get_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<(Arc<model::ManagedPolicy>, usize)> {
        let (_, p, _) = self.policy_for(caller, meta, Action::IamGetPolicy, arn)?;
        Ok((p, self.attachment_count(caller.account(), arn)))
    }

    fn boundary_count(&self, account: &str, arn: &str) -> usize {
        let t = self.db.read();
        let roles = t
            .roles
            .range((account.to_owned(), String::new())..)
            .take_while(|((a, _), _)| a == account);
        let users = t
            .users
            .range((account.to_owned(), String::new())..)
            .take_while(|((a, _), _)| a == account);
        roles
            .filter(|(_, e)| e.value.boundary.as_deref() == Some(arn))
            .count()
            + users
                .filter(|(_, e)| e.value.boundary.as_deref() == Some(arn))
                .count()
    }

    fn attachment_count(&self, account: &str, arn: &str) -> usize {
        let t = self.db.read();
        let roles = t
            .roles
            .range((account.to_owned(), String::new())..)
            .take_while(|((a, _), _)| a == account);
        let users = t
            .users
            .range((account.to_owned(), String::new())..)
            .take_while(|((a, _), _)| a == account);
        roles
            .filter(|(_, e)| e.value.attached.iter().any(|x| x == arn))
            .count()
            + users
                .filter(|(_, e)| e.value.attached.iter().any(|x| x == arn))
                .count()
    }

    /// ListPolicies (Scope=Local|All; podiam has no AWS managed policies).
    pub fn list_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        path_prefix: Option<&str>,
        only_attached: bool,
        page: &PageReq,
    ) -> Result<Page<(Arc<model::ManagedPolicy>, usize)>> {
        let account = caller.account().to_owned();
        self.authorize(
            caller,
            Action::IamListPolicies,
            &Target::wildcard(&account),
            meta,
            Keys::none(),
        )?;
        let prefix = path_prefix.unwrap_or("/");
        let found: Vec<(String, Arc<model::ManagedPolicy>)> = self
            .db
            .read()
            .policies
            .range((account.clone(), String::new())..)
            .take_while(|((a, _), _)| a == &account)
            .filter(|(_, e)| e.value.path.starts_with(prefix))
            .map(|((_, k), e)| (k.clone(), Arc::clone(&e.value)))
            .collect();
        let items: Vec<(String, (Arc<model::ManagedPolicy>, usize))> = found
            .into_iter()
            .map(|(k, p)| {
                let n = self.attachment_count(&account, &policy_arn(&account, &p));
                (k, (p, n))
            })
            .filter(|(_, (_, n))| !only_attached || *n > 0)
            .collect();
        paginate(items.into_iter(), page)
    }

    /// DeletePolicy.
    pub async fn delete_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<()> {
        let guard = self.db.write().await;
        let (id, _, _) = self.policy_for(caller, meta, Action::IamDeletePolicy, arn)?;
        if self.attachment_count(caller.account(), arn) > 0 {
            return Err(AwsError::delete_conflict(
                "cannot delete a policy attached to entities",
            ));
        }
        // A boundary in use is a reference by ARN: deleting it and creating a policy of the same
        // name would lift every boundary that names it.
        if self.boundary_count(caller.account(), arn) > 0 {
            return Err(AwsError::delete_conflict(
                "cannot delete a policy that is in use as a permissions boundary",
            ));
        }
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::POLICY, caller.account(), &id)],
                now,
            )
            .await
    }

    /// GetPolicyVersion.
    pub fn get_policy_version(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        version: &str,
    ) -> Result<(model::PolicyVersion, bool)> {
        let (_, p, _) = self.policy_for(caller, meta, Action::IamGetPolicyVersion, arn)?;
        let v = p.versions.iter().find(|v| v.id == version).cloned();
        let v = v.ok_or_else(|| {
            AwsError::no_such_entity(format!("policy {arn} version {version} does not exist"))
        })?;
        let default = v.id == p.default_version;
        Ok((v, default))
    }

    /// CreatePolicyVersion.
    pub async fn create_policy_version(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        doc: String,
        set_default: bool,
    ) -> Result<(model::PolicyVersion, bool)> {
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            limits::MANAGED_POLICY_CHARS,
            "PolicySize",
        )?;
        let guard = self.db.write().await;
        let (id, p, version) =
            self.policy_for(caller, meta, Action::IamCreatePolicyVersion, arn)?;
        let mut p = (*p).clone();
        if p.versions.len() >= limits::POLICY_VERSIONS {
            return Err(AwsError::limit_exceeded(format!(
                "a managed policy can have up to {} versions. before you create a new version, you must delete an existing version",
                limits::POLICY_VERSIONS
            )));
        }
        let now = self.now();
        let v = model::PolicyVersion {
            id: format!("v{}", p.next_version),
            document: doc,
            created: now,
        };
        p.next_version += 1;
        p.versions.push(v.clone());
        if set_default {
            p.default_version = v.id.clone();
        }
        p.updated = now;
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::POLICY,
                    caller.account(),
                    &id,
                    &p,
                    version,
                )?],
                now,
            )
            .await?;
        Ok((v, set_default))
    }

    // === users and access keys ===

    /// The user `name` names in the caller's account, authorized for `action` as
    /// [`Self::role_for`] authorizes roles.
    fn user_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
    ) -> Result<(Arc<model::User>, i64)> {
        names::entity_name(name, "userName", 64)?;
        let account = caller.account();
        let e = self
            .db
            .read()
            .users
            .get(&(account.to_owned(), name.to_lowercase()))
            .cloned();
        let (target, keys) = match &e {
            Some(e) => {
                let stored = boundary_key(action, e.value.boundary.as_deref(), &keys);
                (Target::user(account, &e.value), keys.and(stored))
            }
            None => (
                Target::new_iam(ResourceKind::User, account, "/", name),
                keys,
            ),
        };
        self.authorize(caller, action, &target, meta, keys)?;
        let e = e.ok_or_else(|| {
            AwsError::no_such_entity(format!("the user with name {name} cannot be found"))
        })?;
        Ok((e.value, e.version))
    }

    /// The user a call names, or the calling user itself when it names none.
    fn user_name_or_self(user: Option<&str>, caller: &Caller) -> Result<String> {
        match (user, caller) {
            (Some(n), _) => Ok(n.to_owned()),
            (None, Caller::User { user, .. }) => Ok(user.name.clone()),
            (None, _) => Err(AwsError::validation(
                "must specify userName when calling with non-user credentials",
            )),
        }
    }

    /// CreateUser.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_user(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        path: Option<String>,
        boundary: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<Arc<model::User>> {
        let account = caller.account().to_owned();
        names::entity_name(name, "userName", 64)?;
        let path = path.unwrap_or_else(|| "/".into());
        names::iam_path(&path)?;
        let boundary = match boundary {
            Some(b) => Some(policy_arn(&account, &self.policy_entry(&account, b)?.1)),
            None => None,
        };
        validate_tags(&tags)?;
        let target = Target::new_iam(ResourceKind::User, &account, &path, name);
        let keys = Keys::none().request_tags(tag_pairs(&tags)).and(
            boundary.as_deref().map_or_else(Keys::none, |b| {
                Keys::none().with("iam:PermissionsBoundary", b)
            }),
        );
        self.authorize(caller, Action::IamCreateUser, &target, meta, keys)?;
        let guard = self.db.write().await;
        let id = name.to_lowercase();
        {
            let t = self.db.read();
            if t.users.contains_key(&(account.clone(), id.clone())) {
                return Err(AwsError::already_exists(format!(
                    "user with name {name} already exists"
                )));
            }
            if t.users
                .range((account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &account)
                .count()
                >= limits::USERS_PER_ACCOUNT
            {
                return Err(AwsError::limit_exceeded(format!(
                    "cannot exceed quota for UsersPerAccount: {}",
                    limits::USERS_PER_ACCOUNT
                )));
            }
        }
        let now = self.now();
        let user = model::User {
            name: name.to_owned(),
            id: names::unique_id("AIDA"),
            path,
            created: now,
            tags,
            inline_policies: vec![],
            attached: vec![],
            boundary,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(kind::USER, &account, &id, &user)?],
                now,
            )
            .await?;
        Ok(Arc::new(user))
    }

    /// GetUser (the caller itself when `name` is absent).
    pub fn get_user(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: Option<&str>,
    ) -> Result<Arc<model::User>> {
        let name = Self::user_name_or_self(name, caller)?;
        Ok(self
            .user_for(caller, meta, Action::IamGetUser, &name, Keys::none())?
            .0)
    }

    /// DeleteUser.
    pub async fn delete_user(&self, caller: &Caller, meta: &RequestMeta, name: &str) -> Result<()> {
        let guard = self.db.write().await;
        let (user, _) = self.user_for(caller, meta, Action::IamDeleteUser, name, Keys::none())?;
        let has_keys = self.db.read().access_keys.values().any(|k| {
            k.value.account == caller.account() && k.value.user.as_deref() == Some(&user.name)
        });
        if has_keys {
            return Err(AwsError::delete_conflict(
                "cannot delete entity, must delete access keys first",
            ));
        }
        if !user.inline_policies.is_empty() {
            return Err(AwsError::delete_conflict(
                "cannot delete entity, must delete policies first",
            ));
        }
        if !user.attached.is_empty() {
            return Err(AwsError::delete_conflict(
                "cannot delete entity, must detach all policies first",
            ));
        }
        let now = self.now();
        let mut changes =
            self.trust_rewrites(&user_arn(caller.account(), &user), &user.id, None)?;
        changes.push(Change::delete(
            kind::USER,
            caller.account(),
            &name.to_lowercase(),
        ));
        self.db.commit(&guard, changes, now).await
    }

    async fn update_user(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        name: &str,
        keys: Keys,
        f: impl FnOnce(&mut model::User) -> Result<()>,
    ) -> Result<()> {
        let guard = self.db.write().await;
        let (u, version) = self.user_for(caller, meta, action, name, keys)?;
        let mut u = (*u).clone();
        f(&mut u)?;
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::USER,
                    caller.account(),
                    &name.to_lowercase(),
                    &u,
                    version,
                )?],
                now,
            )
            .await
    }

    /// PutUserPolicy.
    pub async fn put_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_name: &str,
        doc: String,
    ) -> Result<()> {
        names::policy_name(policy_name, "policyName")?;
        validate_policy(
            &doc,
            policy::PolicyKind::Identity,
            limits::USER_INLINE_CHARS,
            "PolicySize",
        )?;
        self.update_user(
            caller,
            meta,
            Action::IamPutUserPolicy,
            user,
            Keys::none(),
            |u| {
                put_inline(
                    &mut u.inline_policies,
                    policy_name,
                    doc,
                    limits::USER_INLINE_CHARS,
                )
            },
        )
        .await
    }

    /// GetUserPolicy.
    pub fn get_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_name: &str,
    ) -> Result<(String, model::InlinePolicy)> {
        names::policy_name(policy_name, "policyName")?;
        let (u, _) = self.user_for(caller, meta, Action::IamGetUserPolicy, user, Keys::none())?;
        let p = u
            .inline_policies
            .iter()
            .find(|p| p.name == policy_name)
            .cloned();
        let p = p.ok_or_else(|| {
            AwsError::no_such_entity(format!(
                "the user policy with name {policy_name} cannot be found"
            ))
        })?;
        Ok((u.name.clone(), p))
    }

    /// DeleteUserPolicy.
    pub async fn delete_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_name: &str,
    ) -> Result<()> {
        names::policy_name(policy_name, "policyName")?;
        self.update_user(
            caller,
            meta,
            Action::IamDeleteUserPolicy,
            user,
            Keys::none(),
            |u| delete_inline(&mut u.inline_policies, policy_name, "user"),
        )
        .await
    }

    /// ListUserPolicies: names.
    pub fn list_user_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        page: &PageReq,
    ) -> Result<Page<String>> {
        let (u, _) = self.user_for(
            caller,
            meta,
            Action::IamListUserPolicies,
            user,
            Keys::none(),
        )?;
        inline_names(&u.inline_policies, page)
    }

    /// AttachUserPolicy.
    pub async fn attach_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let (found, keys) = self.attachable(caller.account(), policy_arn)?;
        self.update_user(caller, meta, Action::IamAttachUserPolicy, user, keys, |u| {
            attach(&mut u.attached, &found?, "PoliciesPerUser")
        })
        .await
    }

    /// DetachUserPolicy.
    pub async fn detach_user_policy(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let keys = Keys::none().with("iam:PolicyARN", policy_arn);
        self.update_user(caller, meta, Action::IamDetachUserPolicy, user, keys, |u| {
            detach(&mut u.attached, policy_arn)
        })
        .await
    }

    /// ListAttachedUserPolicies.
    pub fn list_attached_user_policies(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: &str,
        page: &PageReq,
    ) -> Result<Page<AttachedPolicy>> {
        let (u, _) = self.user_for(
            caller,
            meta,
            Action::IamListAttachedUserPolicies,
            user,
            Keys::none(),
        )?;
        attached_page(&u.attached, page)
    }

    /// PutUserPermissionsBoundary.
    pub async fn put_user_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        boundary: &str,
    ) -> Result<()> {
        let (found, keys) = self.boundary_arg(caller.account(), boundary)?;
        self.update_user(
            caller,
            meta,
            Action::IamPutUserPermissionsBoundary,
            name,
            keys,
            |u| {
                u.boundary = Some(found?);
                Ok(())
            },
        )
        .await
    }

    /// DeleteUserPermissionsBoundary.
    pub async fn delete_user_boundary(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<()> {
        self.update_user(
            caller,
            meta,
            Action::IamDeleteUserPermissionsBoundary,
            name,
            Keys::none(),
            |u| {
                u.boundary.take().map(|_| ()).ok_or_else(|| {
                    AwsError::no_such_entity(format!("the user {name} has no permissions boundary"))
                })
            },
        )
        .await
    }

    /// ListUsers.
    pub fn list_users(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        path_prefix: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<Arc<model::User>>> {
        let account = caller.account().to_owned();
        self.authorize(
            caller,
            Action::IamListUsers,
            &Target::wildcard(&account),
            meta,
            Keys::none(),
        )?;
        let prefix = path_prefix.unwrap_or("/");
        let t = self.db.read();
        paginate(
            t.users
                .range((account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &account)
                .filter(|(_, e)| e.value.path.starts_with(prefix))
                .map(|((_, k), e)| (k.clone(), Arc::clone(&e.value))),
            page,
        )
    }

    /// CreateAccessKey for a user (the caller itself when `user` is absent).
    pub async fn create_access_key(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: Option<&str>,
    ) -> Result<(model::AccessKey, String, String)> {
        let name = Self::user_name_or_self(user, caller)?;
        let account = caller.account().to_owned();
        let guard = self.db.write().await;
        let (u, _) = self.user_for(
            caller,
            meta,
            Action::IamCreateAccessKey,
            &name,
            Keys::none(),
        )?;
        let count = self
            .db
            .read()
            .access_keys
            .values()
            .filter(|k| k.value.account == account && k.value.user.as_deref() == Some(&u.name))
            .count();
        if count >= limits::ACCESS_KEYS_PER_USER {
            return Err(AwsError::limit_exceeded(format!(
                "cannot exceed quota for AccessKeysPerUser: {}",
                limits::ACCESS_KEYS_PER_USER
            )));
        }
        let akid = names::access_key_id("AKIA", &account);
        let secret = crate::random_secret()?;
        let now = self.now();
        let key = model::AccessKey {
            id: akid.clone(),
            account: account.clone(),
            user: Some(u.name.clone()),
            secret: self.seal(secret.as_bytes(), &format!("access_key/{akid}"))?,
            status: "Active".into(),
            created: now,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(kind::ACCESS_KEY, &account, &akid, &key)?],
                now,
            )
            .await?;
        Ok((key, secret, u.name.clone()))
    }

    /// DeleteAccessKey.
    pub async fn delete_access_key(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: Option<&str>,
        akid: &str,
    ) -> Result<()> {
        names::bounded(akid, "accessKeyId", 16, 128)?;
        let name = Self::user_name_or_self(user, caller)?;
        let account = caller.account().to_owned();
        let guard = self.db.write().await;
        let (u, _) = self.user_for(
            caller,
            meta,
            Action::IamDeleteAccessKey,
            &name,
            Keys::none(),
        )?;
        let owned = self.db.read().access_keys.get(akid).is_some_and(|k| {
            k.value.account == account && k.value.user.as_deref() == Some(&u.name)
        });
        if !owned {
            return Err(AwsError::no_such_entity(format!(
                "the access key with id {akid} cannot be found"
            )));
        }
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::ACCESS_KEY, &account, akid)],
                now,
            )
            .await
    }

    /// ListAccessKeys.
    pub fn list_access_keys(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        user: Option<&str>,
    ) -> Result<(String, Vec<model::AccessKey>)> {
        let name = Self::user_name_or_self(user, caller)?;
        let account = caller.account().to_owned();
        let (u, _) = self.user_for(caller, meta, Action::IamListAccessKeys, &name, Keys::none())?;
        let mut keys: Vec<model::AccessKey> = self
            .db
            .read()
            .access_keys
            .values()
            .filter(|k| k.value.account == account && k.value.user.as_deref() == Some(&u.name))
            .map(|k| (*k.value).clone())
            .collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((u.name.clone(), keys))
    }
}

/// Replace `arn` by `id` among the `AWS` principals of `Principal` and `NotPrincipal` in every
/// statement of a policy document; whether anything was replaced.
fn replace_principal(doc: &mut serde_json::Value, arn: &str, id: &str) -> bool {
    let mut changed = false;
    let mut visit = |st: &mut serde_json::Value| {
        for element in ["Principal", "NotPrincipal"] {
            let Some(aws) = st.get_mut(element).and_then(|p| p.get_mut("AWS")) else {
                continue;
            };
            match aws {
                serde_json::Value::String(s) if s == arn => {
                    *s = id.to_owned();
                    changed = true;
                }
                serde_json::Value::Array(list) => {
                    for v in list.iter_mut() {
                        if v.as_str() == Some(arn) {
                            *v = serde_json::Value::String(id.to_owned());
                            changed = true;
                        }
                    }
                }
                _ => {}
            }
        }
    };
    match doc.get_mut("Statement") {
        Some(serde_json::Value::Array(sts)) => sts.iter_mut().for_each(&mut visit),
        Some(st @ serde_json::Value::Object(_)) => visit(st),
        _ => {}
    }
    changed
}

/// `iam:PermissionsBoundary` from an entity's boundary, where `action` sets it and the request
/// does not name a new one (Put*PermissionsBoundary authorizes the boundary being set).
fn boundary_key(action: Action, boundary: Option<&str>, request: &Keys) -> Keys {
    match boundary {
        Some(b)
            if action.declares("iam:PermissionsBoundary")
                && !request.has("iam:PermissionsBoundary") =>
        {
            Keys::none().with("iam:PermissionsBoundary", b)
        }
        _ => Keys::none(),
    }
}

fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))
}

fn delete_inline(list: &mut Vec<model::InlinePolicy>, name: &str, entity: &str) -> Result<()> {
    let before = list.len();
    list.retain(|p| p.name != name);
    if list.len() == before {
        return Err(AwsError::no_such_entity(format!(
            "the {entity} policy with name {name} cannot be found"
        )));
    }
    Ok(())
}

fn inline_names(list: &[model::InlinePolicy], page: &PageReq) -> Result<Page<String>> {
    let mut names: Vec<String> = list.iter().map(|p| p.name.clone()).collect();
    names.sort();
    paginate(names.into_iter().map(|n| (n.clone(), n)), page)
}

fn attached_page(list: &[String], page: &PageReq) -> Result<Page<AttachedPolicy>> {
    let items: Vec<(String, AttachedPolicy)> = list
        .iter()
        .map(|a| {
            (
                a.clone(),
                AttachedPolicy {
                    name: a.rsplit('/').next().unwrap_or(a).to_owned(),
                    arn: a.clone(),
                },
            )
        })
        .collect();
    paginate(items.into_iter(), page)
}

fn put_inline(
    list: &mut Vec<model::InlinePolicy>,
    name: &str,
    doc: String,
    max_total: usize,
) -> Result<()> {
    let others: usize = list
        .iter()
        .filter(|p| p.name != name)
        .map(|p| policy_chars(&p.document))
        .sum();
    if others + policy_chars(&doc) > max_total {
        return Err(AwsError::limit_exceeded(format!(
            "maximum policy size of {max_total} bytes exceeded"
        )));
    }
    match list.iter_mut().find(|p| p.name == name) {
        Some(p) => p.document = doc,
        None => list.push(model::InlinePolicy {
            name: name.to_owned(),
            document: doc,
        }),
    }
    Ok(())
}

fn attach(list: &mut Vec<String>, arn: &str, quota: &str) -> Result<()> {
    if list.iter().any(|a| a == arn) {
        return Ok(());
    }
    if list.len() >= limits::ATTACHED_PER_ENTITY {
        return Err(AwsError::limit_exceeded(format!(
            "cannot exceed quota for {quota}: {}",
            limits::ATTACHED_PER_ENTITY
        )));
    }
    list.push(arn.to_owned());
    Ok(())
}

fn detach(list: &mut Vec<String>, arn: &str) -> Result<()> {
    let before = list.len();
    list.retain(|a| a != arn);
    if list.len() == before {
        return Err(AwsError::no_such_entity(format!(
            "policy {arn} was not found"
        )));
    }
    Ok(())
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

fn validate_client_ids(ids: &[String]) -> Result<()> {
    if ids.len() > limits::CLIENT_IDS {
        return Err(AwsError::limit_exceeded(format!(
            "cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {}",
            limits::CLIENT_IDS
        )));
    }
    for c in ids {
        names::bounded(c, "clientIDList.member", 1, 255)?;
    }
    Ok(())
}

fn validate_thumbprints(t: Vec<String>) -> Result<Vec<String>> {
    if t.len() > limits::THUMBPRINTS {
        return Err(AwsError::limit_exceeded(format!(
            "thumbprint list must contain fewer than {} entries",
            limits::THUMBPRINTS + 1
        )));
    }
    for x in &t {
        if x.len() != 40 {
            return Err(names::constraint(
                x,
                "thumbprintList.member",
                "Member must have length equal to 40",
            ));
        }
        if !x.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AwsError::invalid_input(format!(
                "thumbprint {x:?} must be 40 hexadecimal characters"
            )));
        }
    }
    Ok(dedup(t.into_iter().map(|x| x.to_lowercase()).collect()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_chars_ignores_whitespace_outside_strings() {
        assert_eq!(policy_chars("{ \"a b\" : 1 }"), "{\"a b\":1}".len());
        assert_eq!(policy_chars("{\"a\\\" b\":\n 1}"), "{\"a\\\" b\":1}".len());
    }

    #[test]
    fn provider_keys() {
        assert_eq!(
            provider_key("https://oidc.example.com/id/ABC/"),
            "oidc.example.com/id/ABC"
        );
        assert_eq!(provider_key("https://h"), "h");
    }

    #[test]
    fn thumbprint_rules() {
        assert!(validate_thumbprints(vec!["A".repeat(40)]).is_ok());
        assert_eq!(
            validate_thumbprints(vec!["a".repeat(39)]).unwrap_err().code,
            crate::error::ErrorCode::ValidationError
        );
        assert_eq!(
            validate_thumbprints(vec!["g".repeat(40)]).unwrap_err().code,
            crate::error::ErrorCode::InvalidInput
        );
        assert_eq!(
            validate_thumbprints(vec!["a".repeat(40); 6])
                .unwrap_err()
                .code,
            crate::error::ErrorCode::LimitExceeded
        );
    }
}
