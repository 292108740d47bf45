//! podiam's storage layer.
//!
//! The store owns durability and nothing else: it keeps versioned JSON records addressed by
//! `(kind, account, id)` and applies batches of writes atomically. It knows no IAM or EKS rules;
//! the services above it decide what a record means and keep hot records in memory, so the
//! credential path never waits on the database.
//!
//! Implementations: [`SqliteStore`] (the embedded default, one process) and [`PgStore`]
//! (PostgreSQL, shared by any number of `podiam serve` replicas). Migrations are append-only,
//! numbered in order within each backend, and recorded in `podiam_migrations` (the backends'
//! numbers part at 3: PostgreSQL's 3 is the feed horizon, which SQLite does not need, so the
//! audit log is SQLite's 3 and PostgreSQL's 4).
//!
//! # Change feed
//!
//! Every committed batch takes the next number of one counter (`change_seq`) while holding that
//! counter's row lock until it commits, so batches commit in the order of their numbers. Each
//! written record carries the number of the batch that last wrote it (`records.seq`) and each
//! deleted key leaves a tombstone with the number of its deletion (`tombstones.seq`).
//! [`Store::changes_since`] returns, oldest first, every record and tombstone newer than a
//! cursor: a replica that warmed its cache with [`Store::head`] then [`Store::load_all`] follows
//! the other replicas' writes by polling it. [`Store::watch`] wakes the poller right after a
//! commit (PostgreSQL `LISTEN`/`NOTIFY`), so polling can be rare and changes still arrive within
//! milliseconds.
//!
//! Tombstones are kept (one row per key ever deleted, updated in place when deleted again); a
//! read of the feed is not paginated (a follower far behind reads everything newer at once).
//! Serializing commits on the counter costs write throughput, which an IAM control plane does
//! not need; reads never touch it.
//!
//! # Audit log
//!
//! Apart from the records, the store keeps an append-only log of audit events (what
//! CloudTrail's `LookupEvents` reads): [`Store::append_audit`], [`Store::lookup_audit`] and
//! [`Store::prune_audit`]. Its writes take no part in the change feed: they never wait on the
//! counter's lock and never show in [`Store::changes_since`] or [`Store::load_all`]. See
//! [`AuditRow`] and the layout described in the `audit` module.

mod audit;
mod batch;
mod postgres;
mod sqlite;

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

pub use audit::{AuditAttr, AuditCursor, AuditPage, AuditQuery, AuditRow, ISSUED_KEY_TYPE};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A boxed future, so that `dyn Store` works without extra crates.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// What the record is (`role`, `oidc_provider`, ...).
    pub kind: String,
    /// The owning account id, or `""` for records global to the installation.
    pub account: String,
    /// The record's key within `(kind, account)`.
    pub id: String,
    /// The JSON document.
    pub doc: String,
    /// Incremented on every update, starting at 1.
    pub version: i64,
}

impl Record {
    /// The record, borrowed.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            kind: &self.kind,
            account: &self.account,
            id: &self.id,
            doc: &self.doc,
            version: self.version,
        }
    }
}

/// A record borrowed from wherever the backend holds it (see [`Store::for_each_record`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// What the record is.
    pub kind: &'a str,
    /// The owning account id, or `""`.
    pub account: &'a str,
    /// The record's key within `(kind, account)`.
    pub id: &'a str,
    /// The JSON document.
    pub doc: &'a str,
    /// The record's version.
    pub version: i64,
}

/// What [`Store::for_each_record`] hands each record to; [`ControlFlow::Break`] stops the read.
pub type RecordSink<'a> = &'a mut (dyn FnMut(RecordRef<'_>) -> ControlFlow<()> + Send);

/// One write of a batch.
#[derive(Clone, Debug)]
pub enum Write {
    /// Insert a new record; fails with [`StoreError::Conflict`] if it exists.
    Insert {
        /// Record kind.
        kind: String,
        /// Owning account.
        account: String,
        /// Key.
        id: String,
        /// JSON document.
        doc: String,
    },
    /// Replace an existing record whose version is `expect_version`; fails with
    /// [`StoreError::Conflict`] otherwise (optimistic concurrency).
    Update {
        /// Record kind.
        kind: String,
        /// Owning account.
        account: String,
        /// Key.
        id: String,
        /// JSON document.
        doc: String,
        /// Version the caller read.
        expect_version: i64,
    },
    /// Delete the record whose version is `expect_version`; fails with [`StoreError::Conflict`]
    /// if it is absent or was written since (a delete decides on what it read, like an update:
    /// a child added to the record meanwhile bumps its version, so the delete cannot strand it).
    Delete {
        /// Record kind.
        kind: String,
        /// Owning account.
        account: String,
        /// Key.
        id: String,
        /// Version the caller read.
        expect_version: i64,
    },
}

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeEvent {
    /// The record was inserted or updated; this is its state when the feed was read.
    Put(Record),
    /// The record was deleted.
    Delete {
        /// Record kind.
        kind: String,
        /// Owning account.
        account: String,
        /// Key.
        id: String,
    },
}

/// What [`Store::changes_since`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// The changes, in commit order. A key deleted and inserted again after the cursor shows
    /// its deletion before its current record; a record written several times shows once.
    pub changes: Vec<ChangeEvent>,
    /// The cursor to pass next time.
    pub cursor: i64,
    /// The cursor is older than the feed's horizon (tombstones after it were pruned): the
    /// changes cannot be known, `changes` is empty, and the reader must reload every record.
    pub expired: bool,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write did not hold (record exists, absent, or changed).
    #[error("conflicting write to {kind} {id:?}")]
    Conflict {
        /// Record kind.
        kind: String,
        /// Key.
        id: String,
    },
    /// The database failed; the cause is kept as the source, for the log (never shown to
    /// clients).
    #[error("storage failure")]
    Backend(#[source] BoxError),
}

/// The storage interface every backend implements.
pub trait Store: Send + Sync + 'static {
    /// Every record, for warming the in-memory state at start, ordered by (kind, account, id).
    fn load_all(&self) -> BoxFut<'_, Result<Vec<Record>, StoreError>>;
    /// Every record, in no particular order, handed to `sink` as it is read: a cold start
    /// need not hold the whole store twice, and decoding overlaps the database's sending. The
    /// default reads [`Store::load_all`].
    fn for_each_record<'a>(&'a self, sink: RecordSink<'a>) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            for r in self.load_all().await? {
                if sink(r.as_ref()).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }
    /// Apply all writes atomically: all of them or none.
    fn apply<'a>(
        &'a self,
        writes: &'a [Write],
        now_unix: i64,
    ) -> BoxFut<'a, Result<(), StoreError>>;
    /// Flush and close.
    fn close(&self) -> BoxFut<'_, ()>;
    /// The cursor of the newest committed batch. Read it *before* [`Store::load_all`]: then
    /// `changes_since(head)` returns every write the load may have missed (and possibly some it
    /// saw, which are harmless to apply again).
    fn head(&self) -> BoxFut<'_, Result<i64, StoreError>>;
    /// The writes committed after `cursor`, in commit order, as the records' current states and
    /// tombstones of deleted keys; and the cursor to pass next time.
    fn changes_since(&self, cursor: i64) -> BoxFut<'_, Result<ChangeSet, StoreError>>;
    /// Deletes the tombstones of deletions committed before `deleted_before_unix`, so that the
    /// feed does not grow with every key ever deleted; readers whose cursor is older than what
    /// was pruned get [`ChangeSet::expired`]. Returns how many were deleted. The default keeps
    /// them (a store nobody else follows).
    fn prune_tombstones(&self, deleted_before_unix: i64) -> BoxFut<'_, Result<u64, StoreError>> {
        let _ = deleted_before_unix;
        Box::pin(std::future::ready(Ok(0)))
    }
    /// Whether other processes may write this store concurrently (replicas over PostgreSQL): a
    /// cache of it must then follow [`Store::changes_since`].
    fn shared(&self) -> bool {
        false
    }
    /// A value that changes soon after any process commits a batch (PostgreSQL `NOTIFY`), to
    /// wake a follower of [`Store::changes_since`] early. `None` when the store has no such
    /// signal; followers then only poll. The signal may be lost (a dropped connection):
    /// followers must poll as well.
    fn watch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Appends audit events, all of them or none (one transaction). An event whose
    /// `(account, event_id)` is already stored is skipped silently, so a retried batch is
    /// harmless. An event with an empty `event_id` or a resource with an empty name fails the
    /// batch. Never takes the change-feed counter: audit writes do not wait for record
    /// commits. The default fails: a store must implement the audit log to keep one.
    fn append_audit<'a>(&'a self, rows: &'a [AuditRow]) -> BoxFut<'a, Result<(), StoreError>> {
        let _ = rows;
        Box::pin(std::future::ready(Err(no_audit_log())))
    }
    /// One page of an account's audit events matching `q`, newest first by
    /// `(event_time_ms, event_id)`; see [`AuditAttr`] for which attributes are indexed. The
    /// default fails.
    fn lookup_audit<'a>(&'a self, q: &'a AuditQuery) -> BoxFut<'a, Result<AuditPage, StoreError>> {
        let _ = q;
        Box::pin(std::future::ready(Err(no_audit_log())))
    }
    /// Deletes the audit events older than `before_ms` (milliseconds since the epoch), in
    /// short transactions; returns how many events went. Safe to run on several replicas at
    /// once (each returns what it deleted). The default fails.
    fn prune_audit(&self, before_ms: i64) -> BoxFut<'_, Result<u64, StoreError>> {
        let _ = before_ms;
        Box::pin(std::future::ready(Err(no_audit_log())))
    }
}

/// The failure of the audit methods of a store that keeps no audit log.
fn no_audit_log() -> StoreError {
    StoreError::Backend("this store keeps no audit log".into())
}

impl StoreError {
    /// Whether the database refused this write's data (a constraint, a value it cannot hold),
    /// as opposed to failing to answer (unreachable, timed out, closed): writing the same data
    /// again will fail again, while other data may succeed.
    pub fn is_refused_data(&self) -> bool {
        match self {
            Self::Conflict { .. } => true,
            Self::Backend(e) => e.downcast_ref::<sqlx::Error>().is_some_and(|e| {
                matches!(
                    e,
                    sqlx::Error::Database(_) | sqlx::Error::Encode(_) | sqlx::Error::Decode(_)
                )
            }),
        }
    }
}

/// The cause of a [`StoreError::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Any database failure, as [`StoreError::Backend`] with the failure as its source.
pub(crate) fn backend(e: impl Into<BoxError>) -> StoreError {
    StoreError::Backend(e.into())
}

/// The conflict error of a write that did not hold.
pub(crate) fn conflict(w: &Write) -> StoreError {
    let (kind, id) = match w {
        Write::Insert { kind, id, .. }
        | Write::Update { kind, id, .. }
        | Write::Delete { kind, id, .. } => (kind.clone(), id.clone()),
    };
    StoreError::Conflict { kind, id }
}
