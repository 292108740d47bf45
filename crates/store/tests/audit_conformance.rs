//! Audit log conformance: what every backend's [`Store::append_audit`],
//! [`Store::lookup_audit`] and [`Store::prune_audit`] must do, written once over `&dyn Store`
//! and run against SQLite (in memory and on disk) always, and against a real PostgreSQL when
//! `PODIAM_TEST_POSTGRES_URL` is set (each PostgreSQL test in a schema of its own). The
//! scenarios are in `audit_scenarios/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod audit_scenarios;
mod common;

use std::time::Duration;

use podiam_store::{AuditRow, PgStore, SqliteStore, Store, StoreError, Write};
use sqlx::{Connection, Executor};

use audit_scenarios::{A, ROLE, Raw, ev, find, query, res, run_all};
use common::{drop_schema, pg_schema, temp_dir};

// --------------------------------------------------------------------------------- SQLite

#[tokio::test]
async fn sqlite_memory_audit() {
    run_all(&SqliteStore::memory().await.unwrap(), &Raw::Memory).await;
}

#[tokio::test]
async fn sqlite_file_audit_and_reopen() {
    let dir = temp_dir("audit");
    let path = dir.join("podiam.db");
    let s = SqliteStore::open(&path).await.unwrap();
    run_all(&s, &Raw::File(path.clone())).await;
    s.close().await;
    // Events survive a reopen, which applies no migration twice.
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(find(&s, A, None).await, ["a4", "a3", "a2", "a1"]);
    s.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store that implements no audit methods fails them rather than losing events.
#[tokio::test]
async fn a_store_without_an_audit_log_fails_its_calls() {
    struct Bare(SqliteStore);
    impl Store for Bare {
        fn load_all(
            &self,
        ) -> podiam_store::BoxFut<'_, Result<Vec<podiam_store::Record>, StoreError>> {
            self.0.load_all()
        }
        fn apply<'a>(
            &'a self,
            writes: &'a [Write],
            now_unix: i64,
        ) -> podiam_store::BoxFut<'a, Result<(), StoreError>> {
            self.0.apply(writes, now_unix)
        }
        fn close(&self) -> podiam_store::BoxFut<'_, ()> {
            self.0.close()
        }
        fn head(&self) -> podiam_store::BoxFut<'_, Result<i64, StoreError>> {
            self.0.head()
        }
        fn changes_since(
            &self,
            cursor: i64,
        ) -> podiam_store::BoxFut<'_, Result<podiam_store::ChangeSet, StoreError>> {
            self.0.changes_since(cursor)
        }
    }
    let s = Bare(SqliteStore::memory().await.unwrap());
    assert!(matches!(
        s.append_audit(&[ev(A, "a", 1)]).await,
        Err(StoreError::Backend(_))
    ));
    assert!(s.lookup_audit(&query(A, None)).await.is_err());
    assert!(s.prune_audit(0).await.is_err());
}

// ----------------------------------------------------------------------------- PostgreSQL

#[tokio::test]
async fn postgres_audit() {
    let Some((opts, url)) = pg_schema("postgres_audit").await else {
        return;
    };
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    run_all(&s, &Raw::Pg(Box::new(opts.clone()))).await;
    s.close().await;
    drop_schema(&opts, &url).await;
}

/// Replicas appending the same batch and pruning at once: no error, no duplicate, and the
/// pruned counts add up.
#[tokio::test]
async fn postgres_audit_concurrent_replicas() {
    let Some((opts, url)) = pg_schema("postgres_audit_concurrent_replicas").await else {
        return;
    };
    let a = PgStore::connect_with(opts.clone()).await.unwrap();
    let b = PgStore::connect_with(opts.clone()).await.unwrap();
    let rows: Vec<AuditRow> = (0..3000)
        .map(|i| {
            let mut e = ev(&format!("30000000000{}", i % 3), &format!("c{i:05}"), i);
            e.resources = vec![res(ROLE, &format!("role/c{}", i % 5))];
            e
        })
        .collect();
    let (ra, rb) = tokio::join!(a.append_audit(&rows), b.append_audit(&rows));
    ra.unwrap();
    rb.unwrap();
    let raw = Raw::Pg(Box::new(opts.clone()));
    assert_eq!(raw.count("audit_events").await, Some(3000));
    assert_eq!(raw.count("audit_resources").await, Some(3000));
    let (pa, pb) = tokio::join!(a.prune_audit(2400), b.prune_audit(2400));
    assert_eq!(pa.unwrap() + pb.unwrap(), 2400);
    assert_eq!(raw.count("audit_events").await, Some(600));
    assert_eq!(raw.count("audit_resources").await, Some(600));
    assert_eq!(find(&b, "300000000000", None).await.len(), 200);
    a.close().await;
    b.close().await;
    drop_schema(&opts, &url).await;
}

/// Audit writes do not wait for the change-feed counter: a record batch holding its lock does
/// not hold up an append.
#[tokio::test]
async fn postgres_audit_ignores_the_change_feed_lock() {
    let Some((opts, url)) = pg_schema("postgres_audit_ignores_the_change_feed_lock").await else {
        return;
    };
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    let mut c = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    c.execute("BEGIN").await.unwrap();
    c.execute("UPDATE change_seq SET value = value WHERE id = 1")
        .await
        .unwrap();
    let mut e = ev(A, "locked", 1);
    e.resources = vec![res(ROLE, "role/l")];
    tokio::time::timeout(Duration::from_secs(3), s.append_audit(&[e]))
        .await
        .expect("not blocked by the counter's lock")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(3), s.prune_audit(i64::MIN))
        .await
        .expect("not blocked by the counter's lock")
        .unwrap();
    c.execute("ROLLBACK").await.unwrap();
    c.close().await.unwrap();
    assert_eq!(find(&s, A, None).await, ["locked"]);
    s.close().await;
    drop_schema(&opts, &url).await;
}
