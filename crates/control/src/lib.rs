//! podiam's services: IAM, STS, EKS and the hosted OIDC issuers, as pure logic over the store
//! and the engines (policy, JOSE, SigV4).
//!
//! Nothing here knows HTTP: the server decodes a request, calls a method of [`Control`] and
//! encodes the result or the [`AwsError`]. Time comes from an injected [`Clock`].

pub mod access;
pub mod audit;
pub mod auth;
pub mod authz;
#[cfg(test)]
mod authz_table_tests;
pub mod crypto;
pub mod eks;
pub mod error;
pub mod iam;
pub mod issuer;
pub mod model;
pub mod names;
pub mod observe;
pub mod pod_identity;
pub mod session;
pub mod simulate;
pub mod state;
pub mod sts;
#[cfg(test)]
mod testing;
pub mod webid;

use std::sync::Arc;

use parking_lot::RwLock;

pub use auth::Caller;
pub use error::{AwsError, ErrorCode, Protocol, Result, Wire};

use crate::crypto::MasterKey;
use crate::model::kind;
use crate::session::{SessionKeyMaterial, SessionKeyring};
use crate::state::{Change, Db};

/// Seconds between a session-key rotation and the new key's first use for minting: replicas
/// learn a stored change within one second, so every replica verifies the new key before any
/// session signed with it exists.
pub const SESSION_KEY_ACTIVATION_SECS: i64 = 3;

/// Seconds between a hosted-issuer key rotation and the new key's first signature: the new key
/// is in the JWKS of every replica before any token signed with it exists, as the session keys;
/// the previous key signs until then.
pub const ISSUER_KEY_ACTIVATION_SECS: i64 = 3;

/// The source of time for the services.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Settings of the services.
#[derive(Clone, Debug)]
pub struct Config {
    /// The region podiam answers as (`us-east-1` by default).
    pub region: String,
    /// Base URL of hosted cluster issuers: a cluster's issuer is `<base>/id/<ID>`.
    pub issuer_base_url: String,
    /// Allow `http://` discovery and JWKS URLs for external OIDC providers. Development only.
    pub dangerous_allow_http_issuer: bool,
    /// How long hosted issuer keys stay in the JWKS after rotation (seconds): at least the
    /// longest lifetime of a token they signed.
    pub issuer_key_retention_secs: i64,
    /// Pod Identity associations allowed per cluster (EKS: 5000).
    pub max_associations_per_cluster: usize,
    /// Access entries allowed per cluster (EKS publishes no quota; bounded like associations).
    pub max_access_entries_per_cluster: usize,
    /// On a shared store, how long a replica that cannot read the change feed keeps issuing
    /// credentials from memory (seconds; 0 = as long as the outage lasts). Past it, credential
    /// calls answer 503 ServiceUnavailable and `/readyz` 503, since other replicas may have
    /// deleted what this one still holds.
    pub max_staleness_secs: u64,
    /// The hosts (`host[:port]`, as in a URL) of this server's STS endpoint that an EKS token's
    /// presigned URL may be addressed to (`aws eks get-token` presigns for the STS endpoint the
    /// CLI is configured with). Empty: no token is accepted.
    pub token_sts_hosts: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            issuer_base_url: "https://oidc.podiam.local".into(),
            dangerous_allow_http_issuer: false,
            issuer_key_retention_secs: 2 * 86_400,
            max_associations_per_cluster: 5000,
            max_access_entries_per_cluster: 5000,
            max_staleness_secs: 300,
            token_sts_hosts: vec![],
        }
    }
}

/// The services, sharing the state.
pub struct Control {
    /// Settings.
    pub config: Config,
    db: Db,
    master: MasterKey,
    sessions: RwLock<(u64, Arc<SessionKeyring>)>,
    clock: Arc<dyn Clock>,
    jwks: webid::JwksCache,
    hosted: issuer::HostedKeys,
    policies: auth::PolicyCache,
    hooks: observe::Hooks,
    aws_auth: access::AwsAuthSources,
    audit: std::sync::OnceLock<audit::AuditSink>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the first start created, for printing. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct Bootstrap {
    /// The account id.
    pub account: String,
    /// Root access key id.
    pub access_key_id: String,
    /// Root secret (shown once, written to the credentials file).
    pub secret_access_key: String,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("account", &self.account)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"...")
            .finish()
    }
}

impl Control {
    /// Open the services over `store`.
    pub async fn open(
        config: Config,
        store: Arc<dyn podiam_store::Store>,
        master: MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let db = Db::open(store).await?;
        let hooks = db.hooks();
        let jwks =
            webid::JwksCache::new(config.dangerous_allow_http_issuer).with_hooks(hooks.clone());
        let c = Self {
            config,
            db,
            master,
            sessions: RwLock::new((u64::MAX, Arc::new(SessionKeyring::default()))),
            clock,
            jwks,
            hosted: issuer::HostedKeys::default(),
            policies: auth::PolicyCache::default(),
            hooks,
            aws_auth: access::AwsAuthSources::default(),
            audit: std::sync::OnceLock::new(),
        };
        c.ensure_session_key().await?;
        Ok(c)
    }

    /// Start the audit trail (once; later calls change nothing). Needs a Tokio runtime; fails
    /// if the audit log cannot be opened.
    pub fn start_audit(&self, config: &audit::AuditConfig) -> std::io::Result<()> {
        if self.audit.get().is_none() {
            let sink = audit::AuditSink::start(
                config,
                Arc::clone(self.db.store()),
                Arc::clone(&self.clock),
            )?;
            let _ = self.audit.set(sink);
        }
        Ok(())
    }

    /// The audit trail, when it was started.
    pub fn audit(&self) -> Option<&audit::AuditSink> {
        self.audit.get()
    }

    /// Install the observer of JWKS fetches and store commits (once; `false` if one was).
    pub fn observe(&self, o: std::sync::Arc<dyn observe::Observer>) -> bool {
        self.hooks.install(o)
    }

    /// How long this replica's view may have missed other replicas' writes (the time since
    /// the change feed was last read); `None` for a store nobody else writes.
    pub fn feed_lag(&self) -> Option<std::time::Duration> {
        self.db.staleness()
    }

    /// Whether this replica's view of a shared store is older than `max_staleness_secs` (its
    /// change feed unreadable that long): `Some(how old)` then.
    pub fn too_stale(&self) -> Option<std::time::Duration> {
        let bound = self.config.max_staleness_secs;
        let age = self.db.staleness()?;
        (bound > 0 && age.as_secs() >= bound).then_some(age)
    }

    /// Refuses to issue credentials from a view that is [`Self::too_stale`]: 503
    /// `ServiceUnavailable`, which SDKs retry (on another replica behind a load balancer).
    pub(crate) fn check_staleness(&self) -> Result<()> {
        match self.too_stale() {
            None => Ok(()),
            Some(age) => Err(AwsError::service_unavailable(format!(
                "the store has been unreachable for {} s; this replica no longer issues credentials",
                age.as_secs()
            ))),
        }
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Now, in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Whether `account` is one of this installation's.
    pub fn has_account(&self, account: &str) -> bool {
        self.db.read().accounts.contains_key(account)
    }

    /// The accounts of this installation.
    pub fn accounts(&self) -> Vec<String> {
        self.db.read().accounts.keys().cloned().collect()
    }

    /// Create the first account and its root access key if there is no account yet.
    /// Returns `Some` on the first start (with the secret), `None` afterwards.
    pub async fn bootstrap(&self, account_id: Option<&str>) -> Result<Option<Bootstrap>> {
        if !self.db.read().accounts.is_empty() {
            return Ok(None);
        }
        let account = match account_id {
            Some(a) => a.to_owned(),
            None => random_account_id(),
        };
        self.add_account(&account, true).await
    }

    /// Create an account and its root access key; `None` when it exists already.
    pub async fn create_account(&self, account: &str) -> Result<Option<Bootstrap>> {
        self.add_account(account, false).await
    }

    /// The installation administrator's account: the account created at first start (or, in a
    /// store from before the flag existed, the oldest account). Its root alone manages what is
    /// installation-wide, such as the session keys; every other account's root is a tenant.
    pub fn installation_admin(&self) -> Option<String> {
        let t = self.db.read();
        let accounts = t.accounts.values().map(|e| Arc::clone(&e.value));
        let flagged = accounts.clone().find(|a| a.admin).map(|a| a.id.clone());
        flagged.or_else(|| {
            accounts
                .min_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)))
                .map(|a| a.id.clone())
        })
    }

    fn require_installation_admin(&self, caller: &Caller, what: &str) -> Result<()> {
        match caller {
            Caller::Root { account }
                if self.installation_admin().as_deref() == Some(account.as_str()) =>
            {
                Ok(())
            }
            _ => Err(AwsError::access_denied(format!(
                "User: {} is not authorized to {what}: only the root of the installation's administrator account may",
                caller.arn()
            ))),
        }
    }

    async fn add_account(&self, account: &str, admin: bool) -> Result<Option<Bootstrap>> {
        let account = names::AccountId::parse(account)
            .ok_or_else(|| {
                AwsError::invalid_input(format!("account id {account:?} must be 12 digits"))
            })?
            .to_string();
        let guard = self.db.write().await;
        if self.db.read().accounts.contains_key(&account) {
            return Ok(None);
        }
        let now = self.now();
        let akid = names::access_key_id("AKIA", &account);
        let secret = random_secret()?;
        let sealed = self.seal(secret.as_bytes(), &format!("access_key/{akid}"))?;
        let changes = vec![
            Change::insert(
                kind::ACCOUNT,
                "",
                &account,
                &model::Account {
                    id: account.clone(),
                    created: now,
                    admin,
                },
            )?,
            Change::insert(
                kind::ACCESS_KEY,
                &account,
                &akid,
                &model::AccessKey {
                    id: akid.clone(),
                    account: account.clone(),
                    user: None,
                    user_id: None,
                    secret: sealed,
                    status: "Active".into(),
                    created: now,
                },
            )?,
        ];
        self.db.commit(&guard, changes, now).await?;
        Ok(Some(Bootstrap {
            account,
            access_key_id: akid,
            secret_access_key: secret,
        }))
    }

    /// Make sure a session key exists and load the key ring.
    async fn ensure_session_key(&self) -> Result<()> {
        if self.db.read().session_keys.is_empty() {
            let guard = self.db.write().await;
            if self.db.read().session_keys.is_empty() {
                let bytes =
                    crypto::random_bytes::<32>().map_err(|_| AwsError::service_failure())?;
                let now = self.now();
                let key = model::SessionKey {
                    id: 1,
                    key: self.seal(&bytes, "session_key/1")?,
                    created: now,
                    active_from: 0,
                };
                self.db
                    .commit(
                        &guard,
                        vec![Change::insert(kind::SESSION_KEY, "", "1", &key)?],
                        now,
                    )
                    .await?;
            }
        }
        self.reload_session_keys().map(|_| ())
    }

    fn reload_session_keys(&self) -> Result<Arc<SessionKeyring>> {
        let mut keys = Vec::new();
        let (generation, stored): (u64, Vec<Arc<model::SessionKey>>) = {
            let t = self.db.read();
            (
                t.session_keys_generation,
                t.session_keys
                    .values()
                    .map(|e| Arc::clone(&e.value))
                    .collect(),
            )
        };
        for k in stored {
            let bytes = self.open_sealed(&k.key, &format!("session_key/{}", k.id))?;
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| AwsError::service_failure())?;
            keys.push(
                SessionKeyMaterial::new(k.id, &arr)
                    .ok_or_else(AwsError::service_failure)?
                    .active_from(k.active_from),
            );
        }
        let ring = Arc::new(SessionKeyring::new(keys));
        *self.sessions.write() = (generation, Arc::clone(&ring));
        Ok(ring)
    }

    /// The key ring, rebuilt when the stored keys changed (here or on another replica).
    fn session_keyring(&self) -> Arc<SessionKeyring> {
        let generation = self.db.read().session_keys_generation;
        {
            let s = self.sessions.read();
            if s.0 == generation {
                return Arc::clone(&s.1);
            }
        }
        self.reload_session_keys().unwrap_or_else(|e| {
            tracing::error!(error = %e, "session keys could not be reloaded; keeping the previous ring");
            Arc::clone(&self.sessions.read().1)
        })
    }

    /// Rotate the session-token key: a new key verifies at once on every replica that has it and
    /// mints from `now + SESSION_KEY_ACTIVATION_SECS`, by which time every replica has it; old
    /// keys keep verifying the sessions they minted until retired. The keys belong to the
    /// installation: only the root of its administrator account may rotate them. Returns the
    /// new key's id and activation time.
    pub async fn rotate_session_key(&self, caller: &Caller) -> Result<(u32, i64)> {
        self.require_installation_admin(caller, "rotate the session keys")?;
        let guard = self.db.write().await;
        let id = self
            .db
            .read()
            .session_keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .saturating_add(1);
        let bytes = crypto::random_bytes::<32>().map_err(|_| AwsError::service_failure())?;
        let now = self.now();
        let active_from = now + SESSION_KEY_ACTIVATION_SECS;
        let key = model::SessionKey {
            id,
            key: self.seal(&bytes, &format!("session_key/{id}"))?,
            created: now,
            active_from,
        };
        self.db
            .commit(
                &guard,
                vec![Change::insert(
                    kind::SESSION_KEY,
                    "",
                    &id.to_string(),
                    &key,
                )?],
                now,
            )
            .await?;
        tracing::info!(id, active_from, "session key rotated");
        Ok((id, active_from))
    }

    /// Retire a session-token key: every session it sealed is refused from then on, on every
    /// replica (revocation of everything minted before a rotation). The newest key, which mints
    /// or is about to, cannot be retired: rotate first. Only the installation administrator's
    /// root may. Returns the ids of the keys left.
    pub async fn retire_session_key(&self, caller: &Caller, id: u32) -> Result<Vec<u32>> {
        self.require_installation_admin(caller, "retire session keys")?;
        let guard = self.db.write().await;
        let (ids, version) = {
            let t = self.db.read();
            let ids: Vec<u32> = t.session_keys.keys().copied().collect();
            (ids, t.session_keys.get(&id).map(|e| e.version))
        };
        let Some(version) = version else {
            return Err(AwsError::no_such_entity(format!(
                "session key {id} does not exist"
            )));
        };
        if ids.last() == Some(&id) {
            return Err(AwsError::invalid_input(format!(
                "session key {id} is the newest key; rotate before retiring it"
            )));
        }
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(
                    kind::SESSION_KEY,
                    "",
                    &id.to_string(),
                    version,
                )],
                now,
            )
            .await?;
        tracing::info!(id, "session key retired; its sessions are refused");
        Ok(ids.into_iter().filter(|k| *k != id).collect())
    }

    /// The ids of the session keys in force (installation administrator only).
    pub fn session_key_ids(&self, caller: &Caller) -> Result<Vec<(u32, i64)>> {
        self.require_installation_admin(caller, "list the session keys")?;
        Ok(self
            .db
            .read()
            .session_keys
            .values()
            .map(|e| (e.value.id, e.value.active_from))
            .collect())
    }

    fn seal(&self, plain: &[u8], context: &str) -> Result<crypto::Sealed> {
        self.master.seal(plain, context).map_err(|e| {
            tracing::error!(error = %e, "sealing failed");
            AwsError::service_failure()
        })
    }

    fn open_sealed(&self, sealed: &crypto::Sealed, context: &str) -> Result<Vec<u8>> {
        self.master.open(sealed, context).map_err(|e| {
            tracing::error!(error = %e, context, "opening a sealed secret failed");
            AwsError::service_failure()
        })
    }
}

/// A random 12-digit account id that does not start with 0.
fn random_account_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let n: u64 = rng.random_range(100_000_000_000..1_000_000_000_000);
    n.to_string()
}

/// A 40-character secret access key.
fn random_secret() -> Result<String> {
    use base64::Engine;
    let bytes = crypto::random_bytes::<30>().map_err(|_| AwsError::service_failure())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod debug_tests {
    use super::Bootstrap;

    #[test]
    fn bootstrap_debug_leaves_the_secret_out() {
        let b = Bootstrap {
            account: "111122223333".into(),
            access_key_id: "AKIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let shown = format!("{b:?} {b:#?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert_eq!(
            format!("{b:?}"),
            r#"Bootstrap { account: "111122223333", access_key_id: "AKIAEXAMPLEEXAMPLE01", secret_access_key: "..." }"#
        );
    }
}
