//! podiam's storage layer.
//!
//! The store owns durability and nothing else: it keeps versioned JSON records addressed by
//! `(kind, account, id)` and applies batches of writes atomically. It knows no IAM or EKS rules;
//! the services above it decide what a record means and keep hot records in memory, so the
//! credential path never waits on the database.
//!
//! Implementations: [`SqliteStore`] (the embedded default). Migrations are append-only and
//! recorded in `podiam_migrations`.

mod sqlite;

use std::future::Future;
use std::pin::Pin;

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
    /// Delete a record; fails with [`StoreError::Conflict`] if it is absent.
    Delete {
        /// Record kind.
        kind: String,
        /// Owning account.
        account: String,
        /// Key.
        id: String,
    },
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
    /// The database failed; details are logged, not shown to clients.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// The storage interface every backend implements.
pub trait Store: Send + Sync + 'static {
    /// Every record, for warming the in-memory state at start.
    fn load_all(&self) -> BoxFut<'_, Result<Vec<Record>, StoreError>>;
    /// Apply all writes atomically: all of them or none.
    fn apply<'a>(&'a self, writes: &'a [Write], now_unix: i64) -> BoxFut<'a, Result<(), StoreError>>;
    /// Flush and close.
    fn close(&self) -> BoxFut<'_, ()>;
}
