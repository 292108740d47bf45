//! Access keys of IAM users: Create, Delete, List.

use super::limits;
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys};
use crate::error::{AwsError, Result};
use crate::model::{self, User, kind};
use crate::names;
use crate::state::Change;

impl Control {
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
        let (u, user_version) = self.principal_for::<User>(
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
            .filter(|k| k.value.account == account && k.value.belongs_to(&u))
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
            user_id: Some(u.id.clone()),
            secret: self.seal(secret.as_bytes(), &format!("access_key/{akid}"))?,
            status: "Active".into(),
            created: now,
        };
        self.db
            .commit(
                &guard,
                // The user as read: a replica deleting it meanwhile conflicts with this batch
                // (or this one with its), so no key outlives its user.
                vec![
                    Change::insert(kind::ACCESS_KEY, &account, &akid, &key)?,
                    Change::touch(
                        kind::USER,
                        &account,
                        &u.name.to_lowercase(),
                        &*u,
                        user_version,
                    )?,
                ],
                now,
            )
            .await?;
        meta.audit.note(|f| {
            f.created_key = Some(akid.clone());
            f.response.insert(
                "accessKey".into(),
                serde_json::json!({"accessKeyId": akid, "status": "Active", "userName": u.name}),
            );
        });
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
        let (u, _) = self.principal_for::<User>(
            caller,
            meta,
            Action::IamDeleteAccessKey,
            &name,
            Keys::none(),
        )?;
        let owned = self
            .db
            .read()
            .access_keys
            .get(akid)
            .filter(|k| k.value.account == account && k.value.belongs_to(&u))
            .map(|k| k.version);
        let Some(version) = owned else {
            return Err(AwsError::no_such_entity(format!(
                "the access key with id {akid} cannot be found"
            )));
        };
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::ACCESS_KEY, &account, akid, version)],
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
        let (u, _) = self.principal_for::<User>(
            caller,
            meta,
            Action::IamListAccessKeys,
            &name,
            Keys::none(),
        )?;
        let mut keys: Vec<model::AccessKey> = self
            .db
            .read()
            .access_keys
            .values()
            .filter(|k| k.value.account == account && k.value.belongs_to(&u))
            .map(|k| (*k.value).clone())
            .collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((u.name.clone(), keys))
    }
}
