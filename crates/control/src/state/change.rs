//! A batch's changes, as the store writes them.

use podiam_store::Write;
use serde::Serialize;

use crate::error::AwsError;

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
    /// Delete a record read at `version`.
    Delete {
        /// Kind.
        kind: &'static str,
        /// Account.
        account: String,
        /// Id.
        id: String,
        /// Version read.
        version: i64,
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
            Change::Delete {
                kind,
                account,
                id,
                version,
            } => Self::Delete {
                kind: kind.to_owned(),
                account,
                id,
                expect_version: version,
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
    /// Delete the record read at `version`: if anyone wrote it since (on another replica, say),
    /// the batch conflicts instead of deleting what the caller did not see.
    pub fn delete(kind: &'static str, account: &str, id: &str, version: i64) -> Self {
        Self::Delete {
            kind,
            account: account.to_owned(),
            id: id.to_owned(),
            version,
        }
    }
    /// Write `value`, read at `version`, again unchanged: for a write that is valid only while
    /// that record stays as read (a child added to it, a reference to it). The record's version
    /// moves on, so a concurrent versioned [`Change::delete`] of it conflicts, and if it was
    /// deleted or changed meanwhile, this batch conflicts instead.
    pub fn touch<T: Serialize>(
        kind: &'static str,
        account: &str,
        id: &str,
        value: &T,
        version: i64,
    ) -> Result<Self, AwsError> {
        Self::update(kind, account, id, value, version)
    }
}

fn to_doc<T: Serialize>(value: &T) -> Result<String, AwsError> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "record serialization failed");
        AwsError::service_failure()
    })
}
