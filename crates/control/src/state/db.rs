//! The database handle: reads, the writer lock and commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard};
use podiam_store::{RecordRef, Store, StoreError, Write};

use super::change::Change;
use super::feed::{FOLLOW_POLL, Inner, PRUNE_EVERY, WRITE_CATCH_UP_TIMEOUT, follow, prune};
use super::records::{apply_record, load_tables, remove_record};
use super::tables::Tables;
use crate::error::AwsError;

/// The state plus its store.
pub struct Db {
    inner: Arc<Inner>,
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

    /// The store itself (for what is not a record: audit events).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
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

    /// The tables for writing, bypassing the store: tests that need a state no operation
    /// writes (a record from another version, say).
    #[cfg(test)]
    pub(crate) fn tables_for_test(&self) -> parking_lot::RwLockWriteGuard<'_, Tables> {
        self.inner.tables.write()
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
                Write::Delete {
                    kind, account, id, ..
                } => {
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
