//! The in-memory state and its write-through to the store.
//!
//! Every record is cached in [`Tables`]; reads take a short read lock and never touch the
//! database. Mutations are serialized by one writer lock: a service reads, computes a batch of
//! [`Change`]s, commits it to the store (all or nothing), and only then updates the tables.
//!
//! # Replicas
//!
//! When the store is shared with other `podiam serve` processes ([`Store::shared`], PostgreSQL),
//! the tables also follow the store's change feed: a background task (started by [`Db::open`])
//! reads [`Store::changes_since`] whenever the store's watch signal fires (PostgreSQL
//! `NOTIFY`, milliseconds after another replica commits) and at least every
//! [`FOLLOW_POLL`], and applies the other replicas' records and deletions. The feed is also
//! read before every write (so decisions are made on current state) and after a write
//! conflicts. Reading the feed and committing hold the same writer lock, and the feed returns
//! records in their current state, so the tables never go back in time; a record whose version
//! is already cached (this replica's own write) is skipped. While the store is unreachable the
//! tables keep serving reads from memory; writes fail.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard};
use podiam_store::{ChangeEvent, ChangeSet, Record, Store, StoreError, Write};
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
        Self {
            version: self.version,
            value: Arc::clone(&self.value),
        }
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
    /// Bumped on every change of `session_keys`, so key rings built from them know they are stale.
    pub session_keys_generation: u64,
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
    pub fn insert<T: Serialize>(
        kind: &'static str,
        account: &str,
        id: &str,
        value: &T,
    ) -> Result<Self, AwsError> {
        Ok(Self::Insert {
            kind,
            account: account.to_owned(),
            id: id.to_owned(),
            doc: to_doc(value)?,
        })
    }
    /// Update to `value`, expecting `version`.
    pub fn update<T: Serialize>(
        kind: &'static str,
        account: &str,
        id: &str,
        value: &T,
        version: i64,
    ) -> Result<Self, AwsError> {
        Ok(Self::Update {
            kind,
            account: account.to_owned(),
            id: id.to_owned(),
            doc: to_doc(value)?,
            version,
        })
    }
    /// Delete.
    pub fn delete(kind: &'static str, account: &str, id: &str) -> Self {
        Self::Delete {
            kind,
            account: account.to_owned(),
            id: id.to_owned(),
        }
    }
}

fn to_doc<T: Serialize>(value: &T) -> Result<String, AwsError> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "record serialization failed");
        AwsError::service_failure()
    })
}

/// How often a replica reads the change feed when no wake-up arrives (the signal can be lost,
/// for example while the listening connection reconnects).
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Changes applied per hold of the tables' write lock.
const APPLY_SLICE: usize = 1024;

/// How long a write waits for its catch-up read of the change feed.
const WRITE_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(1);

/// The state plus its store.
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    tables: RwLock<Tables>,
    writer: tokio::sync::Mutex<()>,
    /// Every change of the feed up to this cursor is in `tables`. Changed under `writer` only.
    cursor: AtomicI64,
    /// Whether the last read of the feed succeeded (failures are logged once per outage, and
    /// writes skip their catch-up read while the store is down).
    feed_ok: AtomicBool,
    /// Number of committed batches of this replica (changed under `writer`).
    commits: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

/// Proof that the caller holds the writer lock.
pub struct WriteGuard<'a>(
    #[expect(dead_code, reason = "held for its lifetime")] tokio::sync::MutexGuard<'a, ()>,
);

impl Db {
    /// Load every record from `store`; if the store is shared with other replicas, start
    /// following its change feed (needs a Tokio runtime).
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, AwsError> {
        // The cursor first: whatever is committed while loading is read again from the feed,
        // which is harmless (newer or equal states only).
        let cursor = store.head().await?;
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
        let shared = store.shared();
        let db = Self {
            inner: Arc::new(Inner {
                store,
                tables: RwLock::new(tables),
                writer: tokio::sync::Mutex::new(()),
                cursor: AtomicI64::new(cursor),
                feed_ok: AtomicBool::new(true),
                commits: AtomicU64::new(0),
            }),
        };
        if shared {
            let wake = db.inner.store.watch();
            tokio::spawn(follow(Arc::downgrade(&db.inner), wake, FOLLOW_POLL));
        }
        Ok(db)
    }

    /// Read the tables.
    pub fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.inner.tables.read()
    }

    /// Take the writer lock: read, decide, then [`Db::commit`] under it. On a shared store, the
    /// tables first catch up with the other replicas' writes.
    pub async fn write(&self) -> WriteGuard<'_> {
        let guard = WriteGuard(self.inner.writer.lock().await);
        if self.inner.store.shared() && self.inner.feed_ok.load(Ordering::Relaxed) {
            // Best effort, and bounded: the commit's version checks decide anyway, and a store
            // that does not answer must fail the write promptly, not twice as slowly.
            if tokio::time::timeout(WRITE_CATCH_UP_TIMEOUT, self.inner.catch_up())
                .await
                .is_err()
            {
                tracing::debug!("change feed read before a write timed out");
            }
        }
        guard
    }

    /// Apply the other replicas' writes now; returns how many changes were applied. (A
    /// follower does this by itself; this is for callers that must not wait for it.)
    pub async fn refresh(&self) -> Result<usize, AwsError> {
        let _guard = self.inner.writer.lock().await;
        self.inner.catch_up().await
    }

    /// The change-feed cursor the tables are current with.
    pub fn cursor(&self) -> i64 {
        self.inner.cursor.load(Ordering::Acquire)
    }

    /// Commit a batch to the store, then to memory. All or nothing.
    pub async fn commit(
        &self,
        _guard: &WriteGuard<'_>,
        changes: Vec<Change>,
        now: i64,
    ) -> Result<(), AwsError> {
        let writes: Vec<Write> = changes
            .iter()
            .map(|c| match c {
                Change::Insert {
                    kind,
                    account,
                    id,
                    doc,
                } => Write::Insert {
                    kind: (*kind).to_owned(),
                    account: account.clone(),
                    id: id.clone(),
                    doc: doc.clone(),
                },
                Change::Update {
                    kind,
                    account,
                    id,
                    doc,
                    version,
                } => Write::Update {
                    kind: (*kind).to_owned(),
                    account: account.clone(),
                    id: id.clone(),
                    doc: doc.clone(),
                    expect_version: *version,
                },
                Change::Delete { kind, account, id } => Write::Delete {
                    kind: (*kind).to_owned(),
                    account: account.clone(),
                    id: id.clone(),
                },
            })
            .collect();
        if let Err(e) = self.inner.store.apply(&writes, now).await {
            if matches!(e, StoreError::Conflict { .. }) && self.inner.store.shared() {
                // Another replica got there first: learn what it wrote, so a retry decides on
                // current state.
                let _ = self.inner.catch_up().await;
            }
            return Err(e.into());
        }
        let mut t = self.inner.tables.write();
        self.inner.commits.fetch_add(1, Ordering::AcqRel);
        for c in changes {
            let res = match c {
                Change::Insert {
                    kind,
                    account,
                    id,
                    doc,
                } => apply_record(
                    &mut t,
                    &Record {
                        kind: kind.into(),
                        account,
                        id,
                        doc,
                        version: 1,
                    },
                ),
                Change::Update {
                    kind,
                    account,
                    id,
                    doc,
                    version,
                } => apply_record(
                    &mut t,
                    &Record {
                        kind: kind.into(),
                        account,
                        id,
                        doc,
                        version: version + 1,
                    },
                ),
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

impl Inner {
    /// Read the change feed after `cursor`, logging the store's going away and coming back once.
    async fn fetch(&self, cursor: i64) -> Result<ChangeSet, AwsError> {
        match self.store.changes_since(cursor).await {
            Ok(set) => {
                if !self.feed_ok.swap(true, Ordering::Relaxed) {
                    tracing::warn!("store reachable again: following other replicas' changes");
                }
                Ok(set)
            }
            Err(e) => {
                if self.feed_ok.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "store unreachable: serving reads from memory, writes fail until it is back");
                }
                Err(AwsError::service_failure())
            }
        }
    }

    /// Apply the change feed after the cursor to the tables. The caller holds the writer lock.
    async fn catch_up(&self) -> Result<usize, AwsError> {
        let set = self.fetch(self.cursor.load(Ordering::Acquire)).await?;
        Ok(self.apply_set(set))
    }

    /// Read the feed *without* the writer lock (a slow or unreachable store must not hold up
    /// this replica's writes), then apply it under the lock, unless this replica committed or
    /// caught up meanwhile: then what was read may be older than the tables, so read again.
    async fn follow_once(&self) {
        for _ in 0..3 {
            let commits = self.commits.load(Ordering::Acquire);
            let cursor = self.cursor.load(Ordering::Acquire);
            let Ok(set) = self.fetch(cursor).await else {
                return;
            };
            let _guard = self.writer.lock().await;
            if self.commits.load(Ordering::Acquire) == commits
                && self.cursor.load(Ordering::Acquire) == cursor
            {
                self.apply_set(set);
                return;
            }
        }
        // Writes keep racing the reads: read under the lock.
        let _guard = self.writer.lock().await;
        let _ = self.catch_up().await;
    }

    /// Apply one read of the feed to the tables and advance the cursor. The caller holds the
    /// writer lock, and the read started after the tables' last change.
    fn apply_set(&self, set: ChangeSet) -> usize {
        let mut applied = 0;
        // A large read (a bulk import, a long outage) is applied in slices, so that readers are
        // not held up for the whole of it; a small one (the usual case) at once.
        let mut changes = set.changes.into_iter().peekable();
        while changes.peek().is_some() {
            let mut t = self.tables.write();
            for c in changes.by_ref().take(APPLY_SLICE) {
                match c {
                    ChangeEvent::Put(r) => {
                        if cached_version(&t, &r.kind, &r.account, &r.id) == Some(r.version) {
                            continue; // this replica's own write, or already seen
                        }
                        if let Err(e) = apply_record(&mut t, &r) {
                            // Fail closed: drop what we can no longer read rather than keep a
                            // stale role or key.
                            tracing::error!(kind = %r.kind, id = %r.id, error = %e, "unreadable record from another replica; dropped from memory");
                            remove_record(&mut t, &r.kind, r.account, r.id);
                        }
                        applied += 1;
                    }
                    ChangeEvent::Delete { kind, account, id } => {
                        remove_record(&mut t, &kind, account, id);
                        applied += 1;
                    }
                }
            }
        }
        self.cursor.store(set.cursor, Ordering::Release);
        if applied > 0 {
            tracing::debug!(
                applied,
                cursor = set.cursor,
                "applied other replicas' changes"
            );
        }
        applied
    }
}

/// Follow the store's change feed until the [`Db`] is dropped: on every wake-up, and at least
/// every `poll`.
async fn follow(
    inner: Weak<Inner>,
    mut wake: Option<tokio::sync::watch::Receiver<u64>>,
    poll: Duration,
) {
    loop {
        let signal_alive = match wake.as_mut() {
            Some(rx) => tokio::select! {
                r = rx.changed() => r.is_ok(),
                () = tokio::time::sleep(poll) => true,
            },
            None => {
                tokio::time::sleep(poll).await;
                true
            }
        };
        if !signal_alive {
            wake = None;
        }
        let Some(inner) = inner.upgrade() else { return };
        // Errors are logged once per outage; the next round retries.
        inner.follow_once().await;
    }
}

/// The cached version of a record, if it is cached.
fn cached_version(t: &Tables, kind: &str, account: &str, id: &str) -> Option<i64> {
    let key = || (account.to_owned(), id.to_owned());
    match kind {
        kind::ACCOUNT => t.accounts.get(id).map(|e| e.version),
        kind::ACCESS_KEY => t.access_keys.get(id).map(|e| e.version),
        kind::USER => t.users.get(&key()).map(|e| e.version),
        kind::ROLE => t.roles.get(&key()).map(|e| e.version),
        kind::POLICY => t.policies.get(&key()).map(|e| e.version),
        kind::OIDC_PROVIDER => t.providers.get(&key()).map(|e| e.version),
        kind::CLUSTER => t.clusters.get(&key()).map(|e| e.version),
        kind::SESSION_KEY => id
            .parse::<u32>()
            .ok()
            .and_then(|n| t.session_keys.get(&n))
            .map(|e| e.version),
        kind::POD_IDENTITY_ASSOCIATION => t
            .association_cluster
            .get(&key())
            .and_then(|cluster| {
                t.associations
                    .get(&(account.to_owned(), cluster.clone(), id.to_owned()))
            })
            .map(|e| e.version),
        _ => None,
    }
}

fn entry<T: serde::de::DeserializeOwned>(r: &Record) -> Result<Entry<T>, serde_json::Error> {
    Ok(Entry {
        version: r.version,
        value: Arc::new(serde_json::from_str(&r.doc)?),
    })
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
            t.session_keys_generation += 1;
        }
        kind::POD_IDENTITY_ASSOCIATION => {
            let e: Entry<model::PodIdentityAssociation> = entry(r)?;
            let a = &e.value;
            remove_association(t, &r.account, &r.id);
            t.association_index.insert(
                (
                    r.account.clone(),
                    a.cluster.clone(),
                    a.namespace.clone(),
                    a.service_account.clone(),
                ),
                r.id.clone(),
            );
            t.association_cluster.insert(key(), a.cluster.clone());
            t.associations
                .insert((r.account.clone(), a.cluster.clone(), r.id.clone()), e);
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
                t.session_keys_generation += 1;
            }
        }
        kind::POD_IDENTITY_ASSOCIATION => remove_association(t, &account, &id),
        _ => {}
    }
}

/// Drop an association and its index entries.
fn remove_association(t: &mut Tables, account: &str, id: &str) {
    let Some(cluster) = t
        .association_cluster
        .remove(&(account.to_owned(), id.to_owned()))
    else {
        return;
    };
    if let Some(e) = t
        .associations
        .remove(&(account.to_owned(), cluster.clone(), id.to_owned()))
    {
        let a = &e.value;
        let k = (
            account.to_owned(),
            cluster,
            a.namespace.clone(),
            a.service_account.clone(),
        );
        if t.association_index.get(&k).is_some_and(|x| x == id) {
            t.association_index.remove(&k);
        }
    }
}
