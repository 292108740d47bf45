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
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard};
use podiam_store::{ChangeEvent, ChangeSet, RecordRef, Store, StoreError, Write};
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
    /// Pod Identity associations.
    pub associations: Associations,
}

impl Tables {
    /// How many records the tables hold.
    pub fn len(&self) -> usize {
        self.accounts.len()
            + self.access_keys.len()
            + self.users.len()
            + self.roles.len()
            + self.policies.len()
            + self.providers.len()
            + self.clusters.len()
            + self.session_keys.len()
            + self.associations.len()
    }

    /// Whether the tables hold nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fast hasher for tables that hold a million keys (a cold start hashes each several times);
/// randomly seeded per process.
type FastHash = foldhash::fast::RandomState;

/// Pod Identity associations, held for the credential path (by namespace and service account)
/// and for the API (by id, and per cluster in id order: ListPodIdentityAssociations pages by id).
/// Keys join names with NUL, which no validated Kubernetes, cluster or account name contains.
#[derive(Debug, Default)]
pub struct Associations {
    /// `account NUL cluster` → association id → association.
    by_cluster: HashMap<String, BTreeMap<String, Entry<model::PodIdentityAssociation>>, FastHash>,
    /// `account NUL cluster NUL namespace NUL service account` → association id.
    by_subject: HashMap<String, String, FastHash>,
    /// `account NUL association id` → cluster name.
    cluster_of: HashMap<String, String, FastHash>,
}

/// A key ordering ids as `str` does, mostly without reading the heap: the first 24 bytes
/// inline (NUL-padded; ids hold no NUL), the whole id only when it is longer.
fn sort_key(id: &str) -> ([u8; 24], Option<&str>) {
    let mut prefix = [0; 24];
    for (p, b) in prefix.iter_mut().zip(id.bytes()) {
        *p = b;
    }
    (prefix, (id.len() > 24).then_some(id))
}

fn join(parts: &[&str]) -> String {
    parts.join("\0")
}

impl Associations {
    /// The association `id` of (account, cluster).
    pub fn get(
        &self,
        account: &str,
        cluster: &str,
        id: &str,
    ) -> Option<&Entry<model::PodIdentityAssociation>> {
        self.by_cluster.get(&join(&[account, cluster]))?.get(id)
    }

    /// The association `id` of an account, whatever its cluster.
    pub fn get_by_id(
        &self,
        account: &str,
        id: &str,
    ) -> Option<&Entry<model::PodIdentityAssociation>> {
        let cluster = self.cluster_of.get(&join(&[account, id]))?;
        self.get(account, cluster, id)
    }

    /// The association of (account, cluster, namespace, service account).
    pub fn find(
        &self,
        account: &str,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Option<&Entry<model::PodIdentityAssociation>> {
        let id = self
            .by_subject
            .get(&join(&[account, cluster, namespace, service_account]))?;
        self.get(account, cluster, id)
    }

    /// The associations of a cluster in id order, after `after` (exclusive) when given.
    pub fn of_cluster<'a>(
        &'a self,
        account: &str,
        cluster: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a str, &'a Entry<model::PodIdentityAssociation>)> + 'a {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        self.by_cluster
            .get(&join(&[account, cluster]))
            .into_iter()
            .flat_map(move |m| m.range((lower.clone(), Bound::Unbounded)))
            .map(|(id, e)| (id.as_str(), e))
    }

    /// How many associations a cluster has.
    pub fn count(&self, account: &str, cluster: &str) -> usize {
        self.by_cluster
            .get(&join(&[account, cluster]))
            .map_or(0, BTreeMap::len)
    }

    /// How many associations there are.
    pub fn len(&self) -> usize {
        self.cluster_of.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cluster_of.is_empty()
    }

    /// A table of `(account, id, association)` records, each id once (a cold start). Records
    /// are indexed in arrival order (which is also the order of their allocations, so the
    /// strings read are close in memory), and each cluster's ids are sorted on an inline prefix
    /// rather than by a million searching inserts that each chase pointers.
    fn from_records(records: Vec<(String, String, Entry<model::PodIdentityAssociation>)>) -> Self {
        type Run = Vec<(String, Entry<model::PodIdentityAssociation>)>;
        let mut t = Self {
            by_cluster: HashMap::default(),
            by_subject: HashMap::with_capacity_and_hasher(records.len(), FastHash::default()),
            cluster_of: HashMap::with_capacity_and_hasher(records.len(), FastHash::default()),
        };
        let mut runs: HashMap<String, Run, FastHash> = HashMap::default();
        for (account, id, e) in records {
            let a = &e.value;
            // Two associations of one subject (a race between replicas) resolve to the larger
            // id on every replica, whatever order the rows arrive in.
            t.by_subject
                .entry(join(&[
                    &account,
                    &a.cluster,
                    &a.namespace,
                    &a.service_account,
                ]))
                .and_modify(|cur| {
                    if id > *cur {
                        cur.clone_from(&id);
                    }
                })
                .or_insert_with(|| id.clone());
            t.cluster_of
                .insert(join(&[&account, &id]), a.cluster.clone());
            runs.entry(join(&[&account, &a.cluster]))
                .or_default()
                .push((id, e));
        }
        for (key, run) in runs {
            let order: Vec<usize> = {
                let mut keyed: Vec<_> = run
                    .iter()
                    .enumerate()
                    .map(|(i, (id, _))| (sort_key(id), i))
                    .collect();
                keyed.sort_unstable();
                keyed.into_iter().map(|(_, i)| i).collect()
            };
            let mut slots: Vec<Option<_>> = run.into_iter().map(Some).collect();
            // Already sorted and unique: BTreeMap's build only confirms the order.
            let map = order
                .into_iter()
                .filter_map(|i| slots.get_mut(i).and_then(Option::take))
                .collect();
            t.by_cluster.insert(key, map);
        }
        t
    }

    /// Adds or replaces the association `id` of `account`. `loading`: filling an empty table
    /// with each id once, so there is no previous version to unindex.
    fn insert(
        &mut self,
        account: &str,
        id: &str,
        e: Entry<model::PodIdentityAssociation>,
        loading: bool,
    ) {
        if !loading {
            self.remove(account, id);
        }
        let a = &e.value;
        self.by_subject.insert(
            join(&[account, &a.cluster, &a.namespace, &a.service_account]),
            id.to_owned(),
        );
        self.cluster_of
            .insert(join(&[account, id]), a.cluster.clone());
        self.by_cluster
            .entry(join(&[account, &a.cluster]))
            .or_default()
            .insert(id.to_owned(), e);
    }

    /// Drops the association `id` of `account` and its index entries.
    fn remove(&mut self, account: &str, id: &str) -> Option<Entry<model::PodIdentityAssociation>> {
        let cluster = self.cluster_of.remove(&join(&[account, id]))?;
        let ck = join(&[account, &cluster]);
        let m = self.by_cluster.get_mut(&ck)?;
        let e = m.remove(id)?;
        if m.is_empty() {
            self.by_cluster.remove(&ck);
        }
        let a = &e.value;
        let sk = join(&[account, &cluster, &a.namespace, &a.service_account]);
        if self.by_subject.get(&sk).is_some_and(|x| x == id) {
            self.by_subject.remove(&sk);
        }
        Some(e)
    }
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

impl From<Change> for Write {
    fn from(c: Change) -> Self {
        match c {
            Change::Insert {
                kind,
                account,
                id,
                doc,
            } => Self::Insert {
                kind: kind.to_owned(),
                account,
                id,
                doc,
            },
            Change::Update {
                kind,
                account,
                id,
                doc,
                version,
            } => Self::Update {
                kind: kind.to_owned(),
                account,
                id,
                doc,
                expect_version: version,
            },
            Change::Delete { kind, account, id } => Self::Delete {
                kind: kind.to_owned(),
                account,
                id,
            },
        }
    }
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

/// How long tombstones of deleted records stay in a shared store's change feed. A replica cut
/// off from the store for longer reloads every record when it is back.
pub const TOMBSTONE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How often each replica prunes tombstones older than [`TOMBSTONE_RETENTION`].
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

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
    /// When the feed was last read successfully (or the tables loaded), for the staleness bound.
    synced_at: parking_lot::Mutex<std::time::Instant>,
    /// Number of committed batches of this replica (changed under `writer`).
    commits: AtomicU64,
    hooks: crate::observe::Hooks,
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
        let read_at = std::time::Instant::now();
        let cursor = store.head().await?;
        let tables = load_tables(store.as_ref(), true).await?;
        let shared = store.shared();
        let db = Self {
            inner: Arc::new(Inner {
                store,
                tables: RwLock::new(tables),
                writer: tokio::sync::Mutex::new(()),
                cursor: AtomicI64::new(cursor),
                feed_ok: AtomicBool::new(true),
                synced_at: parking_lot::Mutex::new(read_at),
                commits: AtomicU64::new(0),
                hooks: crate::observe::Hooks::default(),
            }),
        };
        if shared {
            let wake = db.inner.store.watch();
            tokio::spawn(follow(Arc::downgrade(&db.inner), wake, FOLLOW_POLL));
            tokio::spawn(prune(Arc::downgrade(&db.inner), PRUNE_EVERY));
        }
        Ok(db)
    }

    /// Where commits are reported (the services share this slot).
    pub fn hooks(&self) -> crate::observe::Hooks {
        self.inner.hooks.clone()
    }

    /// How long the tables may have missed other replicas' writes: the time since the change
    /// feed was last read successfully. `None` for a store nobody else writes (always current).
    pub fn staleness(&self) -> Option<Duration> {
        self.inner
            .store
            .shared()
            .then(|| self.inner.synced_at.lock().elapsed())
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
            let cursor = self.inner.cursor.load(Ordering::Acquire);
            match tokio::time::timeout(WRITE_CATCH_UP_TIMEOUT, self.inner.fetch(cursor)).await {
                Err(_) => tracing::debug!("change feed read before a write timed out"),
                Ok(Err(_)) => {}
                // Never decide a write on tables that may miss deletions: reload first, however
                // long it takes (rare: the replica was cut off for longer than tombstones last).
                Ok(Ok(read)) if read.set.expired => {
                    if let Err(e) = self.inner.reload().await {
                        tracing::error!(error = %e, "reloading after an expired change feed failed");
                    }
                }
                Ok(Ok(read)) => {
                    self.inner.apply_set(read);
                }
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
        // The store gets the changes as they are; memory then takes them from the same writes
        // (no second copy of the documents).
        let writes: Vec<Write> = changes.into_iter().map(Write::from).collect();
        let started = std::time::Instant::now();
        let applied = self.inner.store.apply(&writes, now).await;
        self.inner.hooks.store_commit(started.elapsed());
        if let Err(e) = applied {
            if matches!(e, StoreError::Conflict { .. }) && self.inner.store.shared() {
                // Another replica got there first: learn what it wrote, so a retry decides on
                // current state.
                let _ = self.inner.catch_up().await;
            }
            return Err(e.into());
        }
        let mut t = self.inner.tables.write();
        self.inner.commits.fetch_add(1, Ordering::AcqRel);
        for w in writes {
            let (kind, account, id, doc, version) = match w {
                Write::Insert {
                    kind,
                    account,
                    id,
                    doc,
                } => (kind, account, id, doc, 1),
                Write::Update {
                    kind,
                    account,
                    id,
                    doc,
                    expect_version,
                } => (kind, account, id, doc, expect_version + 1),
                Write::Delete { kind, account, id } => {
                    remove_record(&mut t, &kind, account, id);
                    continue;
                }
            };
            let r = RecordRef {
                kind: &kind,
                account: &account,
                id: &id,
                doc: &doc,
                version,
            };
            if let Err(e) = apply_record(&mut t, r, false) {
                tracing::error!(error = %e, "committed record failed to load into memory");
            }
        }
        Ok(())
    }
}

/// One read of the change feed, and when it started.
struct Read {
    set: ChangeSet,
    started: std::time::Instant,
}

impl Inner {
    /// Read the change feed after `cursor`, logging the store's going away and coming back once.
    async fn fetch(&self, cursor: i64) -> Result<Read, AwsError> {
        let started = std::time::Instant::now();
        match self.store.changes_since(cursor).await {
            Ok(set) => {
                if !self.feed_ok.swap(true, Ordering::Relaxed) {
                    tracing::warn!("store reachable again: following other replicas' changes");
                }
                Ok(Read { set, started })
            }
            Err(e) => {
                if self.feed_ok.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %crate::error::ErrorChain(&e), "store unreachable: serving reads from memory, writes fail until it is back");
                }
                Err(AwsError::service_failure())
            }
        }
    }

    /// Apply the change feed after the cursor to the tables. The caller holds the writer lock.
    async fn catch_up(&self) -> Result<usize, AwsError> {
        let read = self.fetch(self.cursor.load(Ordering::Acquire)).await?;
        if read.set.expired {
            return self.reload().await;
        }
        Ok(self.apply_set(read))
    }

    /// Replace the tables with every record read afresh: the feed expired for this replica's
    /// cursor (it was away longer than the tombstones are kept). The caller holds the writer
    /// lock; readers keep the old tables until the swap. Returns the records loaded.
    async fn reload(&self) -> Result<usize, AwsError> {
        tracing::warn!(
            "change feed expired for this replica's cursor (tombstones pruned): reloading every record"
        );
        let read_at = std::time::Instant::now();
        let cursor = self.store.head().await?;
        // Lenient: a record this version cannot read is left out (fail closed, as the feed
        // does), rather than keeping tables known to miss deletions.
        let mut fresh = load_tables(self.store.as_ref(), false).await?;
        let n = fresh.len();
        let old = {
            let mut t = self.tables.write();
            // Key rings built from the old tables must see a new generation.
            fresh.session_keys_generation = t.session_keys_generation.wrapping_add(1);
            self.cursor.store(cursor, Ordering::Release);
            *self.synced_at.lock() = read_at;
            std::mem::replace(&mut *t, fresh)
        };
        // Freed outside the lock (a million records take a while).
        drop(old);
        Ok(n)
    }

    /// Read the feed *without* the writer lock (a slow or unreachable store must not hold up
    /// this replica's writes), then apply it under the lock, unless this replica committed or
    /// caught up meanwhile: then what was read may be older than the tables, so read again.
    async fn follow_once(&self) {
        for _ in 0..3 {
            let commits = self.commits.load(Ordering::Acquire);
            let cursor = self.cursor.load(Ordering::Acquire);
            let Ok(read) = self.fetch(cursor).await else {
                return;
            };
            let _guard = self.writer.lock().await;
            if self.commits.load(Ordering::Acquire) == commits
                && self.cursor.load(Ordering::Acquire) == cursor
            {
                if read.set.expired {
                    if let Err(e) = self.reload().await {
                        tracing::error!(error = %e, "reloading after an expired change feed failed; retrying");
                    }
                } else {
                    self.apply_set(read);
                }
                return;
            }
        }
        // Writes keep racing the reads: read under the lock.
        let _guard = self.writer.lock().await;
        let _ = self.catch_up().await;
    }

    /// Apply one read of the feed to the tables and advance the cursor. The caller holds the
    /// writer lock, and the read started after the tables' last change.
    fn apply_set(&self, read: Read) -> usize {
        let Read { set, started } = read;
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
                        if let Err(e) = apply_record(&mut t, r.as_ref(), false) {
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
        // Current as of when the read started (what the staleness bound measures from).
        *self.synced_at.lock() = started;
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

/// Every record of `store`, decoded into fresh tables. `strict`: a record this version cannot
/// read fails the load (at start: refuse to serve with a silently missing role or key);
/// otherwise it is left out and logged (a reload of a running replica, which must converge).
async fn load_tables(store: &dyn Store, strict: bool) -> Result<Tables, AwsError> {
    let started = std::time::Instant::now();
    let mut tables = Tables::default();
    let mut unreadable = None;
    let mut records = 0_usize;
    // Associations (possibly millions) are collected and indexed at once at the end.
    let mut associations = Vec::new();
    let mut sink = |r: RecordRef<'_>| {
        records += 1;
        let res = if r.kind == kind::POD_IDENTITY_ASSOCIATION {
            entry(r).map(|e| associations.push((r.account.to_owned(), r.id.to_owned(), e)))
        } else {
            apply_record(&mut tables, r, true)
        };
        match res {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) if strict => {
                unreadable = Some(format!("{} {:?}: {e}", r.kind, r.id));
                ControlFlow::Break(())
            }
            Err(e) => {
                tracing::error!(kind = r.kind, id = r.id, error = %e, "unreadable record left out of the reload");
                ControlFlow::Continue(())
            }
        }
    };
    store.for_each_record(&mut sink).await?;
    if let Some(e) = unreadable {
        // A record this version cannot read is a bug or a downgrade; refuse to start
        // rather than serve with a silently missing role or key.
        tracing::error!(record = %e, "unreadable record");
        return Err(AwsError::service_failure());
    }
    tables.associations = Associations::from_records(associations);
    tracing::info!(
        records,
        associations = tables.associations.len(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "state loaded from the store"
    );
    Ok(tables)
}

/// Prunes old tombstones every `every` (the first time after one period) while the database
/// handle lives. Every replica does it; the statement is idempotent.
async fn prune(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let before =
            now.saturating_sub(i64::try_from(TOMBSTONE_RETENTION.as_secs()).unwrap_or(i64::MAX));
        match inner.store.prune_tombstones(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old tombstones pruned from the change feed"),
            Err(e) => {
                tracing::debug!(error = %crate::error::ErrorChain(&e), "pruning tombstones failed; next time")
            }
        }
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
        kind::POD_IDENTITY_ASSOCIATION => t.associations.get_by_id(account, id).map(|e| e.version),
        _ => None,
    }
}

fn entry<T: serde::de::DeserializeOwned>(r: RecordRef<'_>) -> Result<Entry<T>, serde_json::Error> {
    Ok(Entry {
        version: r.version,
        value: Arc::new(serde_json::from_str(r.doc)?),
    })
}

/// Puts a record into the tables. `loading`: the tables are being filled from an empty state
/// with each key once, so there is no previous version to unindex.
fn apply_record(t: &mut Tables, r: RecordRef<'_>, loading: bool) -> Result<(), serde_json::Error> {
    let key = || (r.account.to_owned(), r.id.to_owned());
    match r.kind {
        kind::ACCOUNT => {
            t.accounts.insert(r.id.to_owned(), entry(r)?);
        }
        kind::ACCESS_KEY => {
            t.access_keys.insert(r.id.to_owned(), entry(r)?);
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
            t.associations.insert(r.account, r.id, entry(r)?, loading);
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
        kind::POD_IDENTITY_ASSOCIATION => {
            t.associations.remove(&account, &id);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn assoc(
        id: &str,
        cluster: &str,
        ns: &str,
        sa: &str,
        version: i64,
    ) -> Entry<model::PodIdentityAssociation> {
        let doc = serde_json::json!({
            "id": id, "cluster": cluster, "namespace": ns, "service_account": sa,
            "role_arn": "arn:aws:iam::111122223333:role/r", "external_id": "x", "created_ms": 1, "modified_ms": 1,
        });
        Entry {
            version,
            value: Arc::new(serde_json::from_value(doc).unwrap()),
        }
    }

    #[test]
    fn associations_are_indexed_by_subject_id_and_cluster() {
        let mut t = Associations::default();
        t.insert("111", "a-3", assoc("a-3", "c1", "ns", "sa3", 1), true);
        t.insert("111", "a-1", assoc("a-1", "c1", "ns", "sa1", 1), true);
        t.insert("111", "a-2", assoc("a-2", "c2", "ns", "sa1", 1), true);
        t.insert("222", "a-9", assoc("a-9", "c1", "ns", "sa1", 1), true);
        assert_eq!(t.len(), 4);
        assert_eq!(t.find("111", "c1", "ns", "sa1").unwrap().value.id, "a-1");
        assert_eq!(t.find("111", "c2", "ns", "sa1").unwrap().value.id, "a-2");
        assert_eq!(t.find("222", "c1", "ns", "sa1").unwrap().value.id, "a-9");
        assert!(t.find("111", "c1", "ns", "sa2").is_none());
        assert!(t.find("111", "c1", "other", "sa1").is_none());
        // Names cannot run into each other: ("c1", "ns") is not ("c1n", "s").
        assert!(t.find("111", "c1n", "s", "sa1").is_none());
        assert_eq!(t.get_by_id("111", "a-2").unwrap().value.cluster, "c2");
        assert!(t.get_by_id("222", "a-2").is_none());
        assert!(t.get("111", "c2", "a-1").is_none());
        // Per cluster, in id order, with an exclusive start.
        let ids: Vec<&str> = t.of_cluster("111", "c1", None).map(|(id, _)| id).collect();
        assert_eq!(ids, ["a-1", "a-3"]);
        let ids: Vec<&str> = t
            .of_cluster("111", "c1", Some("a-1"))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["a-3"]);
        assert_eq!(t.of_cluster("111", "none", None).count(), 0);
        assert_eq!(
            (
                t.count("111", "c1"),
                t.count("111", "c2"),
                t.count("333", "c1")
            ),
            (2, 1, 0)
        );
    }

    #[test]
    fn sort_keys_order_ids_as_strings_do() {
        let mut ids = vec![
            "a-b",
            "a-",
            "a-bb",
            "b",
            "",
            "a-0123456789abcdefghijklmno",
            "a-0123456789abcdefghijklmn",
            "a-0123456789abcdefghijklm",
            "a-0123456789abcdefghijklmnp",
            "a-0123456789abcdefghijkl",
        ];
        let mut by_key = ids.clone();
        by_key.sort_by_key(|id| sort_key(id));
        ids.sort_unstable();
        assert_eq!(by_key, ids);
    }

    #[test]
    fn a_bulk_load_indexes_exactly_what_inserts_do() {
        let mut records = Vec::new();
        let mut one_by_one = Associations::default();
        // Several accounts and clusters, interleaved and out of order, as a database returns them.
        for i in (0..300).rev() {
            let (account, cluster) = (["111", "222"][i % 2], ["c1", "c2", "c10"][i % 3]);
            let id = format!("a-{:05}", (i * 7919) % 1000);
            let e = assoc(&id, cluster, &format!("ns{}", i % 5), &format!("sa{i}"), 1);
            one_by_one.insert(account, &id, e.clone(), false);
            records.push((account.to_owned(), id, e));
        }
        let bulk = Associations::from_records(records);
        assert_eq!(bulk.len(), one_by_one.len());
        assert_eq!(bulk.by_subject, one_by_one.by_subject);
        assert_eq!(bulk.cluster_of, one_by_one.cluster_of);
        for account in ["111", "222"] {
            for cluster in ["c1", "c2", "c10"] {
                let ids = |t: &Associations| {
                    t.of_cluster(account, cluster, None)
                        .map(|(id, e)| (id.to_owned(), e.version))
                        .collect::<Vec<_>>()
                };
                assert_eq!(ids(&bulk), ids(&one_by_one), "{account} {cluster}");
                assert!(!ids(&bulk).is_empty());
            }
        }
        assert!(Associations::from_records(Vec::new()).is_empty());
        // Two associations of one subject (a race between replicas): the larger id wins,
        // whatever order the rows come in.
        for ids in [["a-1", "a-2"], ["a-2", "a-1"]] {
            let records = ids
                .iter()
                .map(|id| {
                    (
                        "111".to_owned(),
                        (*id).to_owned(),
                        assoc(id, "c1", "ns", "sa", 1),
                    )
                })
                .collect();
            assert_eq!(
                Associations::from_records(records)
                    .find("111", "c1", "ns", "sa")
                    .unwrap()
                    .value
                    .id,
                "a-2"
            );
        }
    }

    #[test]
    fn replacing_and_removing_keep_the_indexes_exact() {
        let mut t = Associations::default();
        t.insert("111", "a-1", assoc("a-1", "c1", "ns", "sa1", 1), false);
        // A new version of the record under another service account: the old subject is gone.
        t.insert("111", "a-1", assoc("a-1", "c1", "ns", "sa2", 2), false);
        assert!(t.find("111", "c1", "ns", "sa1").is_none());
        assert_eq!(t.find("111", "c1", "ns", "sa2").unwrap().version, 2);
        assert_eq!(t.len(), 1);
        // Removing an id whose subject now points elsewhere leaves the other's index alone.
        t.insert("111", "a-2", assoc("a-2", "c1", "ns", "sa3", 1), false);
        assert_eq!(t.remove("111", "a-1").unwrap().version, 2);
        assert!(t.remove("111", "a-1").is_none(), "removed twice");
        assert!(t.find("111", "c1", "ns", "sa2").is_none());
        assert_eq!(t.find("111", "c1", "ns", "sa3").unwrap().value.id, "a-2");
        t.remove("111", "a-2").unwrap();
        assert!(t.is_empty());
        assert_eq!(t.count("111", "c1"), 0);
        assert!(
            t.by_cluster.is_empty() && t.by_subject.is_empty(),
            "no empty leftovers"
        );
    }
}
