//! The in-memory state and its write-through to the store.
//!
//! Every record is cached in [`Tables`]; reads take a short read lock and never touch the
//! database. Mutations are serialized by one writer lock: a service reads, computes a batch of
//! [`Change`]s, commits it to the store (all or nothing), and only then updates the tables.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};
use podiam_store::{Record, Store, Write};
use serde::Serialize;

use crate::error::AwsError;
use crate::model::{self, kind};

/// A cached record with its store version.
#[derive(Debug)]
pub struct Entry<T> {
    /// Store version.
    pub version: i64,
    /// The record.
    pub value: Arc<T>,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self { version: self.version, value: Arc::clone(&self.value) }
    }
}

/// `(account, id)`.
pub type Key = (String, String);

/// Everything podiam knows, in memory.
#[derive(Debug, Default)]
pub struct Tables {
    /// Accounts by id.
    pub accounts: BTreeMap<String, Entry<model::Account>>,
    /// Long-term access keys by access key id.
    pub access_keys: HashMap<String, Entry<model::AccessKey>>,
    /// Users by (account, lowercase name).
    pub users: BTreeMap<Key, Entry<model::User>>,
    /// Roles by (account, lowercase name).
    pub roles: BTreeMap<Key, Entry<model::Role>>,
    /// Managed policies by (account, lowercase name).
    pub policies: BTreeMap<Key, Entry<model::ManagedPolicy>>,
    /// OIDC providers by (account, URL without scheme).
    pub providers: BTreeMap<Key, Entry<model::OidcProvider>>,
    /// Clusters by (account, name).
    pub clusters: BTreeMap<Key, Entry<model::Cluster>>,
    /// Hosted issuer id → (account, cluster name).
    pub issuers: HashMap<String, Key>,
    /// Session keys by id.
    pub session_keys: BTreeMap<u32, Entry<model::SessionKey>>,
    /// Pod Identity associations by (account, cluster, association id).
    pub associations: BTreeMap<(String, String, String), Entry<model::PodIdentityAssociation>>,
    /// (account, cluster, namespace, service account) → association id.
    pub association_index: HashMap<(String, String, String, String), String>,
    /// (account, association id) → cluster name.
    pub association_cluster: HashMap<Key, String>,
}

/// One change of a batch.
#[derive(Debug)]
pub enum Change {
    /// Create a record that must not exist.
    Insert {
        /// Kind.
        kind: &'static str,
        /// Account.
        account: String,
        /// Id.
        id: String,
        /// Document.
        doc: String,
    },
    /// Replace a record read at `version`.
    Update {
        /// Kind.
        kind: &'static str,
        /// Account.
        account: String,
        /// Id.
        id: String,
        /// Document.
        doc: String,
        /// Version read.
        version: i64,
    },
    /// Delete a record.
    Delete {
        /// Kind.
        kind: &'static str,
        /// Account.
        account: String,
        /// Id.
        id: String,
    },
}

impl Change {
    /// Insert `value`.
    pub fn insert<T: Serialize>(kind: &'static str, account: &str, id: &str, value: &T) -> Result<Self, AwsError> {
        Ok(Self::Insert { kind, account: account.to_owned(), id: id.to_owned(), doc: to_doc(value)? })
    }
    /// Update to `value`, expecting `version`.
    pub fn update<T: Serialize>(kind: &'static str, account: &str, id: &str, value: &T, version: i64) -> Result<Self, AwsError> {
        Ok(Self::Update { kind, account: account.to_owned(), id: id.to_owned(), doc: to_doc(value)?, version })
    }
    /// Delete.
    pub fn delete(kind: &'static str, account: &str, id: &str) -> Self {
        Self::Delete { kind, account: account.to_owned(), id: id.to_owned() }
    }
}

fn to_doc<T: Serialize>(value: &T) -> Result<String, AwsError> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "record serialization failed");
        AwsError::service_failure()
    })
}

/// The state plus its store.
pub struct Db {
    store: Arc<dyn Store>,
    tables: RwLock<Tables>,
    writer: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

/// Proof that the caller holds the writer lock.
pub struct WriteGuard<'a>(#[expect(dead_code, reason = "held for its lifetime")] tokio::sync::MutexGuard<'a, ()>);

impl Db {
    /// Load every record from `store`.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, AwsError> {
        let records = store.load_all().await?;
        let mut tables = Tables::default();
        for r in records {
            if let Err(e) = apply_record(&mut tables, &r) {
                // A record this version cannot read is a bug or a downgrade; refuse to start
                // rather than serve with a silently missing role or key.
                tracing::error!(kind = %r.kind, id = %r.id, error = %e, "unreadable record");
                return Err(AwsError::service_failure());
            }
        }
        Ok(Self { store, tables: RwLock::new(tables), writer: tokio::sync::Mutex::new(()) })
    }

    /// Read the tables.
    pub fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read()
    }

    /// Take the writer lock: read, decide, then [`Db::commit`] under it.
    pub async fn write(&self) -> WriteGuard<'_> {
        WriteGuard(self.writer.lock().await)
    }

    /// Commit a batch to the store, then to memory. All or nothing.
    pub async fn commit(&self, _guard: &WriteGuard<'_>, changes: Vec<Change>, now: i64) -> Result<(), AwsError> {
        let writes: Vec<Write> = changes
            .iter()
            .map(|c| match c {
                Change::Insert { kind, account, id, doc } => {
                    Write::Insert { kind: (*kind).to_owned(), account: account.clone(), id: id.clone(), doc: doc.clone() }
                }
                Change::Update { kind, account, id, doc, version } => Write::Update {
                    kind: (*kind).to_owned(),
                    account: account.clone(),
                    id: id.clone(),
                    doc: doc.clone(),
                    expect_version: *version,
                },
                Change::Delete { kind, account, id } => {
                    Write::Delete { kind: (*kind).to_owned(), account: account.clone(), id: id.clone() }
                }
            })
            .collect();
        self.store.apply(&writes, now).await?;
        let mut t = self.tables.write();
        for c in changes {
            let res = match c {
                Change::Insert { kind, account, id, doc } => {
                    apply_record(&mut t, &Record { kind: kind.into(), account, id, doc, version: 1 })
                }
                Change::Update { kind, account, id, doc, version } => {
                    apply_record(&mut t, &Record { kind: kind.into(), account, id, doc, version: version + 1 })
                }
                Change::Delete { kind, account, id } => {
                    remove_record(&mut t, kind, account, id);
                    Ok(())
                }
            };
            if let Err(e) = res {
                tracing::error!(error = %e, "committed record failed to load into memory");
            }
        }
        Ok(())
    }
}

fn entry<T: serde::de::DeserializeOwned>(r: &Record) -> Result<Entry<T>, serde_json::Error> {
    Ok(Entry { version: r.version, value: Arc::new(serde_json::from_str(&r.doc)?) })
}

fn apply_record(t: &mut Tables, r: &Record) -> Result<(), serde_json::Error> {
    let key = || (r.account.clone(), r.id.clone());
    match r.kind.as_str() {
        kind::ACCOUNT => {
            t.accounts.insert(r.id.clone(), entry(r)?);
        }
        kind::ACCESS_KEY => {
            t.access_keys.insert(r.id.clone(), entry(r)?);
        }
        kind::USER => {
            t.users.insert(key(), entry(r)?);
        }
        kind::ROLE => {
            t.roles.insert(key(), entry(r)?);
        }
        kind::POLICY => {
            t.policies.insert(key(), entry(r)?);
        }
        kind::OIDC_PROVIDER => {
            t.providers.insert(key(), entry(r)?);
        }
        kind::CLUSTER => {
            let e: Entry<model::Cluster> = entry(r)?;
            if e.value.hosted {
                t.issuers.insert(e.value.oidc_id.clone(), key());
            }
            t.clusters.insert(key(), e);
        }
        kind::SESSION_KEY => {
            let e: Entry<model::SessionKey> = entry(r)?;
            t.session_keys.insert(e.value.id, e);
        }
        kind::POD_IDENTITY_ASSOCIATION => {
            let e: Entry<model::PodIdentityAssociation> = entry(r)?;
            let a = &e.value;
            remove_association(t, &r.account, &r.id);
            t.association_index.insert(
                (r.account.clone(), a.cluster.clone(), a.namespace.clone(), a.service_account.clone()),
                r.id.clone(),
            );
            t.association_cluster.insert(key(), a.cluster.clone());
            t.associations.insert((r.account.clone(), a.cluster.clone(), r.id.clone()), e);
        }
        other => tracing::warn!(kind = other, "unknown record kind ignored"),
    }
    Ok(())
}

fn remove_record(t: &mut Tables, kind: &str, account: String, id: String) {
    match kind {
        kind::ACCOUNT => {
            t.accounts.remove(&id);
        }
        kind::ACCESS_KEY => {
            t.access_keys.remove(&id);
        }
        kind::USER => {
            t.users.remove(&(account, id));
        }
        kind::ROLE => {
            t.roles.remove(&(account, id));
        }
        kind::POLICY => {
            t.policies.remove(&(account, id));
        }
        kind::OIDC_PROVIDER => {
            t.providers.remove(&(account, id));
        }
        kind::CLUSTER => {
            if let Some(e) = t.clusters.remove(&(account, id)) {
                t.issuers.remove(&e.value.oidc_id);
            }
        }
        kind::SESSION_KEY => {
            if let Ok(n) = id.parse::<u32>() {
                t.session_keys.remove(&n);
            }
        }
        kind::POD_IDENTITY_ASSOCIATION => remove_association(t, &account, &id),
        _ => {}
    }
}

/// Drop an association and its index entries.
fn remove_association(t: &mut Tables, account: &str, id: &str) {
    let Some(cluster) = t.association_cluster.remove(&(account.to_owned(), id.to_owned())) else { return };
    if let Some(e) = t.associations.remove(&(account.to_owned(), cluster.clone(), id.to_owned())) {
        let a = &e.value;
        let k = (account.to_owned(), cluster, a.namespace.clone(), a.service_account.clone());
        if t.association_index.get(&k).is_some_and(|x| x == id) {
            t.association_index.remove(&k);
        }
    }
}
