//! A cluster's `accessConfig`: read from CreateCluster, changed by UpdateClusterConfig, and the
//! cluster creator's bootstrap access entry.

use serde_json::Value;

use super::params::{
    CLUSTER_ADMIN_POLICY, MODE_API, MODE_API_AND_CONFIG_MAP, MODE_CONFIG_MAP, principal,
};
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys};
use crate::error::{AwsError, Result};
use crate::model::{self, kind};
use crate::state::{Change, access_entry_id};

/// CreateCluster's `accessConfig` as requested: each member `None` when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterAccessInput {
    /// authenticationMode.
    pub authentication_mode: Option<String>,
    /// bootstrapClusterCreatorAdminPermissions.
    pub bootstrap_creator_admin: Option<bool>,
}

/// The result of UpdateClusterConfig: an update podiam applies at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterUpdate {
    /// A random UUID.
    pub id: String,
    /// `AccessConfigUpdate`.
    pub kind: &'static str,
    /// `(type, value)` pairs: `AuthenticationMode`.
    pub params: Vec<(&'static str, String)>,
    /// When the update was made (unix milliseconds).
    pub created_ms: i64,
}

fn mode(v: &str) -> Result<&'static str> {
    match v {
        MODE_CONFIG_MAP => Ok(MODE_CONFIG_MAP),
        MODE_API_AND_CONFIG_MAP => Ok(MODE_API_AND_CONFIG_MAP),
        MODE_API => Ok(MODE_API),
        other => Err(AwsError::invalid_parameter(format!(
            "the authentication mode {other:?} is invalid: use API, API_AND_CONFIG_MAP or CONFIG_MAP"
        ))),
    }
}

/// How far a mode opens the access-entry API; modes only move up this order.
fn rank(mode: &str) -> u8 {
    match mode {
        MODE_CONFIG_MAP => 0,
        MODE_API_AND_CONFIG_MAP => 1,
        _ => 2,
    }
}

/// `accessConfig` of a CreateCluster body.
fn access_input(body: &Value) -> Result<ClusterAccessInput> {
    let Some(ac) = body.get("accessConfig").filter(|v| !v.is_null()) else {
        return Ok(ClusterAccessInput::default());
    };
    let ac = ac
        .as_object()
        .ok_or_else(|| AwsError::invalid_parameter("accessConfig must be an object"))?;
    let authentication_mode = match ac.get("authenticationMode") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(mode(m)?.to_owned()),
        Some(_) => {
            return Err(AwsError::invalid_parameter(
                "authenticationMode must be a string",
            ));
        }
    };
    let bootstrap_creator_admin = match ac.get("bootstrapClusterCreatorAdminPermissions") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(AwsError::invalid_parameter(
                "bootstrapClusterCreatorAdminPermissions must be a boolean",
            ));
        }
    };
    Ok(ClusterAccessInput {
        authentication_mode,
        bootstrap_creator_admin,
    })
}

impl Control {
    /// The `accessConfig` a CreateCluster body asks for (EKS's API defaults: `CONFIG_MAP`, the
    /// creator bootstrapped) with the creator, and the condition keys of its given members.
    pub(crate) fn cluster_access_request(
        &self,
        caller: &Caller,
        body: &Value,
    ) -> Result<(model::AccessConfig, Keys)> {
        let input = access_input(body)?;
        let authentication_mode = input
            .authentication_mode
            .clone()
            .unwrap_or_else(|| MODE_CONFIG_MAP.to_owned());
        let bootstrap = input.bootstrap_creator_admin.unwrap_or(true);
        if !bootstrap && authentication_mode == MODE_CONFIG_MAP {
            return Err(AwsError::invalid_parameter(
                "bootstrapClusterCreatorAdminPermissions must be true if the cluster authentication mode is CONFIG_MAP",
            ));
        }
        // The creator as a lasting IAM identity: a user, or the role of a session. An account
        // root is no IAM role or user, so it gets no entry.
        let (creator_arn, creator_id) = match caller {
            Caller::Root { .. } => (None, None),
            Caller::User { user, .. } => (Some(caller.arn()), Some(user.id.clone())),
            Caller::Session(s) => (Some(s.role_arn()), Some(s.role_id.clone())),
        };
        let keys = Keys::none()
            .with_opt(
                "eks:authenticationMode",
                input.authentication_mode.as_deref(),
            )
            .with_opt(
                "eks:bootstrapClusterCreatorAdminPermissions",
                input
                    .bootstrap_creator_admin
                    .map(|b| if b { "true" } else { "false" }),
            );
        Ok((
            model::AccessConfig {
                authentication_mode,
                bootstrap_creator_admin: bootstrap,
                creator_arn,
                creator_id,
            },
            keys,
        ))
    }

    /// The insert of the creator's bootstrap entry (AmazonEKSClusterAdminPolicy at cluster
    /// scope), when `config` asks for one, the access-entry API is on, and the creator has no
    /// entry yet. The caller holds the writer lock.
    pub(crate) fn bootstrap_entry(
        &self,
        account: &str,
        cluster: &str,
        config: &model::AccessConfig,
    ) -> Result<Option<Change>> {
        let Some(creator) = config.creator_arn.as_deref() else {
            return Ok(None);
        };
        if !config.bootstrap_creator_admin || config.authentication_mode == MODE_CONFIG_MAP {
            return Ok(None);
        }
        let id = access_entry_id(cluster, creator);
        if self
            .db
            .read()
            .access_entries
            .contains_key(&(account.to_owned(), id.clone()))
        {
            return Ok(None);
        }
        let p = principal(creator)?;
        // Only for the principal that created the cluster: a role or user deleted since, or
        // re-created under the same name by someone else, gets nothing.
        if config.creator_id.is_none() || self.principal_unique_id(&p) != config.creator_id {
            tracing::warn!(
                cluster,
                creator,
                "no bootstrap access entry: the cluster's creator is gone or is another principal now"
            );
            return Ok(None);
        }
        let mut e = self.new_access_entry(cluster, &p, creator, "STANDARD".into(), None, vec![])?;
        e.policies.push(model::AssociatedAccessPolicy {
            policy_arn: CLUSTER_ADMIN_POLICY.to_owned(),
            scope: "cluster".into(),
            namespaces: vec![],
            associated_ms: e.created_ms,
            modified_ms: e.created_ms,
        });
        Ok(Some(Change::insert(kind::ACCESS_ENTRY, account, &id, &e)?))
    }

    /// UpdateClusterConfig: podiam updates `accessConfig.authenticationMode` alone, one way
    /// (`CONFIG_MAP` → `API_AND_CONFIG_MAP` → `API`), at once. Turning the access-entry API on
    /// makes the creator's bootstrap entry when the cluster was created asking for one.
    pub async fn update_cluster_config(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        name: &str,
        body: &Value,
    ) -> Result<ClusterUpdate> {
        let account = caller.account().to_owned();
        let obj = body
            .as_object()
            .ok_or_else(|| AwsError::invalid_parameter("the request body must be a JSON object"))?;
        if let Some(other) = obj
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.as_str())
            .find(|k| !matches!(*k, "accessConfig" | "clientRequestToken" | "name"))
        {
            return Err(AwsError::invalid_parameter(format!(
                "podiam updates only accessConfig; {other} cannot be updated"
            )));
        }
        let wanted = match obj
            .get("accessConfig")
            .and_then(|a| a.get("authenticationMode"))
        {
            Some(Value::String(m)) => mode(m)?,
            None | Some(Value::Null) => {
                return Err(AwsError::invalid_parameter(
                    "No changes needed: the request updates nothing",
                ));
            }
            Some(_) => {
                return Err(AwsError::invalid_parameter(
                    "authenticationMode must be a string",
                ));
            }
        };
        let guard = self.db.write().await;
        let keys = Keys::none().with("eks:authenticationMode", wanted);
        let (c, version) = self
            .cluster_for(caller, meta, Action::EksUpdateClusterConfig, name, keys)?
            .ok_or_else(|| {
                AwsError::resource_not_found(format!("No cluster found for name: {name}."))
            })?;
        let current = c.access_config.authentication_mode.as_str();
        if current == wanted {
            return Err(AwsError::invalid_parameter(format!(
                "No changes needed: the authentication mode is already {wanted}"
            )));
        }
        if rank(wanted) != rank(current) + 1 {
            return Err(AwsError::invalid_parameter(format!(
                "Unsupported authentication mode update from {current} to {wanted}: modes change one step at a time, CONFIG_MAP to API_AND_CONFIG_MAP to API, and never back"
            )));
        }
        let mut updated = (*c).clone();
        updated.access_config.authentication_mode = wanted.to_owned();
        let mut changes = vec![Change::update(
            kind::CLUSTER,
            &account,
            name,
            &updated,
            version,
        )?];
        if let Some(b) = self.bootstrap_entry(&account, name, &updated.access_config)? {
            changes.push(b);
        }
        let update = ClusterUpdate {
            id: super::params::uuid()?,
            kind: "AccessConfigUpdate",
            params: vec![("AuthenticationMode", wanted.to_owned())],
            created_ms: self.now_ms(),
        };
        let now = self.now();
        self.db.commit(&guard, changes, now).await?;
        Ok(update)
    }
}
