//! IAM OIDC providers: Create, Get, List, Delete, client ids, thumbprints and tags.

use std::sync::Arc;

use super::limits;
use super::validate::{
    dedup, merge_tags, remove_tags, tag_pairs, validate_client_ids, validate_tag_keys,
    validate_tags, validate_thumbprints,
};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::error::{AwsError, Result};
use crate::model::{self, Tag, kind};
use crate::names::{self, provider_arn};
use crate::state::{Change, of_account};

impl Control {
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
            if of_account(&t.providers, &account).count() >= limits::PROVIDERS_PER_ACCOUNT {
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
        Ok(of_account(&t.providers, &account)
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
        let (key, _, version) = self.provider_for(
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
                vec![Change::delete(
                    kind::OIDC_PROVIDER,
                    caller.account(),
                    &key,
                    version,
                )],
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
}

/// The key of a provider URL: the URL without its scheme and trailing slash.
pub fn provider_key(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.trim_end_matches('/').to_owned()
}
