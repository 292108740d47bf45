//! The audit log scenarios of `audit_conformance.rs` (lookups in `lookups.rs`, writes and
//! pruning in `writes.rs`), written once over `&dyn Store`. They share one store per backend:
//! each works in accounts of its own, and the pruning scenario only at times long before every
//! other scenario's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod lookups;
mod writes;

use std::path::PathBuf;

use podiam_store::{AuditAttr, AuditPage, AuditQuery, AuditRow, Store};
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;

pub const ROLE: &str = "AWS::IAM::Role";
pub const POLICY: &str = "AWS::IAM::Policy";

/// Where a test can count a backend's rows behind the store's back.
pub enum Raw {
    /// An in-memory SQLite: nothing else can open it.
    Memory,
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL schema.
    Pg(Box<PgConnectOptions>),
}

impl Raw {
    /// The number of rows of `table`, when it can be known.
    pub async fn count(&self, table: &str) -> Option<i64> {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Raw::Memory => None,
            Raw::File(path) => {
                let url = format!("sqlite://{}", path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let n = sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                Some(n)
            }
            Raw::Pg(opts) => {
                let mut c = sqlx::PgConnection::connect_with(opts).await.unwrap();
                let n = sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                Some(n)
            }
        }
    }
}

pub fn res(rtype: &str, rname: &str) -> (String, String) {
    (rtype.to_owned(), rname.to_owned())
}

/// An event with plain attributes: override what a test looks at.
pub fn ev(account: &str, id: &str, t: i64) -> AuditRow {
    AuditRow {
        account: account.into(),
        event_id: id.into(),
        event_time_ms: t,
        event_name: "AssumeRoleWithWebIdentity".into(),
        event_source: "sts.amazonaws.com".into(),
        username: String::new(),
        access_key_id: String::new(),
        read_only: false,
        resources: Vec::new(),
        record: format!("{{\"eventID\":\"{id}\"}}"),
    }
}

pub fn query(account: &str, attr: Option<AuditAttr>) -> AuditQuery {
    AuditQuery {
        account: account.into(),
        attr,
        start_ms: None,
        end_ms: None,
        limit: 1000,
        after: None,
    }
}

pub fn ids(rows: &[AuditRow]) -> Vec<&str> {
    rows.iter().map(|r| r.event_id.as_str()).collect()
}

/// Every matching row, following the pages; checks each page's size and cursor.
pub async fn all(store: &dyn Store, q: &AuditQuery) -> Vec<AuditRow> {
    let mut q = q.clone();
    let mut out = Vec::new();
    loop {
        let AuditPage { rows, next } = store.lookup_audit(&q).await.unwrap();
        assert!(rows.len() <= q.limit, "a page holds at most its limit");
        if let Some(c) = &next {
            assert_eq!(rows.len(), q.limit, "a page before the last is full");
            let last = rows.last().unwrap();
            assert_eq!(
                (c.event_time_ms, c.event_id.as_str()),
                (last.event_time_ms, last.event_id.as_str()),
                "the cursor is the last row's position"
            );
        }
        out.extend(rows);
        match next {
            Some(c) => q.after = Some(c),
            None => return out,
        }
    }
}

/// The ids of the events of `account` matching `attr`, newest first.
pub async fn find(store: &dyn Store, account: &str, attr: Option<AuditAttr>) -> Vec<String> {
    ids(&all(store, &query(account, attr)).await)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------------------------------------- scenarios

pub const A: &str = "111122223333";
pub const B: &str = "444455556666";
pub const C: &str = "777788889999";

/// Every scenario, on one store (they use accounts and times of their own).
pub async fn run_all(store: &dyn Store, raw: &Raw) {
    lookups::attributes_scenario(store).await;
    lookups::ordering_scenario(store).await;
    lookups::pagination_scenario(store).await;
    lookups::bounds_scenario(store).await;
    lookups::issued_keys_scenario(store).await;
    writes::duplicates_scenario(store, raw).await;
    writes::atomic_scenario(store).await;
    writes::separate_from_records_scenario(store).await;
    writes::nul_scenario(store).await;
    writes::prune_scenario(store, raw).await;
    // The other scenarios' events are untouched by pruning theirs.
    assert_eq!(find(store, A, None).await.len(), 4);
    assert_eq!(find(store, "100000000002", None).await.len(), 2500);
}
