//! Following the store's change feed: the shared state of a [`Db`](super::Db), reading the
//! feed, applying other replicas' writes, and pruning old tombstones.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use podiam_store::{ChangeEvent, ChangeSet, Store};

use super::records::{apply_record, cached_version, load_tables, remove_record};
use super::tables::Tables;
use crate::error::AwsError;

/// How often a replica reads the change feed when no wake-up arrives (the signal can be lost,
/// for example while the listening connection reconnects).
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Changes applied per hold of the tables' write lock.
pub(super) const APPLY_SLICE: usize = 1024;

/// How long a write waits for its catch-up read of the change feed.
pub(super) const WRITE_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long tombstones of deleted records stay in a shared store's change feed. A replica cut
/// off from the store for longer reloads every record when it is back.
pub const TOMBSTONE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How often each replica prunes tombstones older than [`TOMBSTONE_RETENTION`].
pub(super) const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What a [`Db`](super::Db) shares with its follower.
pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) tables: RwLock<Tables>,
    pub(super) writer: tokio::sync::Mutex<()>,
    /// Every change of the feed up to this cursor is in `tables`. Changed under `writer` only.
    pub(super) cursor: AtomicI64,
    /// Whether the last read of the feed succeeded (failures are logged once per outage, and
    /// writes skip their catch-up read while the store is down).
    pub(super) feed_ok: AtomicBool,
    /// When the feed was last read successfully (or the tables loaded), for the staleness bound.
    pub(super) synced_at: parking_lot::Mutex<std::time::Instant>,
    /// Number of committed batches of this replica (changed under `writer`).
    pub(super) commits: AtomicU64,
    pub(super) hooks: crate::observe::Hooks,
}

/// One read of the change feed, and when it started.
pub(super) struct Read {
    pub(super) set: ChangeSet,
    pub(super) started: std::time::Instant,
}

impl Inner {
    /// Read the change feed after `cursor`, logging the store's going away and coming back once.
    pub(super) async fn fetch(&self, cursor: i64) -> Result<Read, AwsError> {
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
    pub(super) async fn catch_up(&self) -> Result<usize, AwsError> {
        let read = self.fetch(self.cursor.load(Ordering::Acquire)).await?;
        if read.set.expired {
            return self.reload().await;
        }
        Ok(self.apply_set(read))
    }

    /// Replace the tables with every record read afresh: the feed expired for this replica's
    /// cursor (it was away longer than the tombstones are kept). The caller holds the writer
    /// lock; readers keep the old tables until the swap. Returns the records loaded.
    pub(super) async fn reload(&self) -> Result<usize, AwsError> {
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
    pub(super) fn apply_set(&self, read: Read) -> usize {
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
pub(super) async fn follow(
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

/// Prunes old tombstones every `every` (the first time after one period) while the database
/// handle lives. Every replica does it; the statement is idempotent.
pub(super) async fn prune(inner: Weak<Inner>, every: Duration) {
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
