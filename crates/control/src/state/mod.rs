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

mod change;
mod db;
mod feed;
mod records;
mod tables;

pub use change::Change;
pub use db::{Db, WriteGuard};
pub use feed::{FOLLOW_POLL, TOMBSTONE_RETENTION};
pub use tables::{
    Associations, Entry, Key, Tables, access_entries_of, access_entry_id, of_account,
};

#[cfg(test)]
mod tests;
