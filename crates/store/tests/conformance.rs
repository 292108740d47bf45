//! Store conformance: the behaviour every backend must show, written once over `&dyn Store` and
//! run against SQLite (in memory and on disk) always, and against a real PostgreSQL when
//! `PODIAM_TEST_POSTGRES_URL` is set (`scripts/test.sh` starts one with `scripts/postgres.sh`);
//! without it the PostgreSQL tests print a notice and pass, or fail under CI (`CI=true`). Each
//! PostgreSQL test works in a schema of its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::{Duration, Instant};

use std::ops::ControlFlow;

use podiam_store::{
    ChangeEvent, PgStore, Record, RecordRef, SqliteStore, Store, StoreError, Write,
};
use sqlx::{Connection, Executor};

use common::{drop_schema, pg_schema, temp_dir};

const ACCT: &str = "111122223333";

fn ins(id: &str, doc: &str) -> Write {
    Write::Insert {
        kind: "role".into(),
        account: ACCT.into(),
        id: id.into(),
        doc: doc.into(),
    }
}

fn upd(id: &str, doc: &str, v: i64) -> Write {
    Write::Update {
        kind: "role".into(),
        account: ACCT.into(),
        id: id.into(),
        doc: doc.into(),
        expect_version: v,
    }
}

fn del(id: &str, v: i64) -> Write {
    Write::Delete {
        kind: "role".into(),
        account: ACCT.into(),
        id: id.into(),
        expect_version: v,
    }
}

fn put(id: &str, doc: &str, version: i64) -> ChangeEvent {
    ChangeEvent::Put(Record {
        kind: "role".into(),
        account: ACCT.into(),
        id: id.into(),
        doc: doc.into(),
        version,
    })
}

fn gone(id: &str) -> ChangeEvent {
    ChangeEvent::Delete {
        kind: "role".into(),
        account: ACCT.into(),
        id: id.into(),
    }
}

// ------------------------------------------------------------------------------- scenarios

/// Records: atomic batches, optimistic versions, conflicts, keys.
async fn records_scenario(store: &dyn Store) {
    assert!(store.load_all().await.unwrap().is_empty());
    store
        .apply(&[ins("a", "{\"n\":1}"), ins("b", "{}")], 10)
        .await
        .unwrap();
    let all = store.load_all().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, "a");
    assert_eq!(all[0].version, 1);

    // Duplicate insert conflicts and the batch leaves nothing behind.
    let err = store
        .apply(&[ins("c", "{}"), ins("a", "{}")], 11)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref id, .. } if id == "a"),
        "{err:?}"
    );
    assert_eq!(store.load_all().await.unwrap().len(), 2, "no partial write");

    // Optimistic update.
    store.apply(&[upd("a", "{\"n\":2}", 1)], 12).await.unwrap();
    assert!(matches!(
        store.apply(&[upd("a", "{\"n\":2}", 1)], 13).await,
        Err(StoreError::Conflict { .. })
    ));
    let all = store.load_all().await.unwrap();
    assert_eq!(all[0].doc, "{\"n\":2}");
    assert_eq!(all[0].version, 2);

    // Updating an absent record conflicts.
    assert!(
        matches!(store.apply(&[upd("zz", "{}", 1)], 13).await, Err(StoreError::Conflict { ref id, .. }) if id == "zz")
    );

    // Delete, and deleting an absent record conflicts.
    // A delete decided on an old version conflicts and deletes nothing.
    assert!(
        matches!(store.apply(&[del("a", 1)], 14).await, Err(StoreError::Conflict { ref id, .. }) if id == "a")
    );
    assert_eq!(
        store.load_all().await.unwrap().len(),
        2,
        "a stale delete deletes nothing"
    );
    store.apply(&[del("b", 1)], 14).await.unwrap();
    assert!(matches!(
        store.apply(&[del("b", 1)], 15).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.load_all().await.unwrap().len(), 1);

    // Same id in another account or kind is a different record.
    store
        .apply(
            &[
                Write::Insert {
                    kind: "role".into(),
                    account: "444455556666".into(),
                    id: "a".into(),
                    doc: "{}".into(),
                },
                Write::Insert {
                    kind: "user".into(),
                    account: ACCT.into(),
                    id: "a".into(),
                    doc: "{}".into(),
                },
            ],
            16,
        )
        .await
        .unwrap();
    assert_eq!(store.load_all().await.unwrap().len(), 3);

    // Documents come back byte for byte (no JSON normalization), unicode included.
    let doc = r#"{"z":1,  "a":"é☃\"\\"}"#;
    store.apply(&[ins("doc", doc)], 17).await.unwrap();
    assert_eq!(
        store
            .load_all()
            .await
            .unwrap()
            .iter()
            .find(|r| r.id == "doc")
            .unwrap()
            .doc,
        doc
    );
    store.apply(&[del("doc", 1)], 18).await.unwrap();

    // An empty batch is a no-op.
    store.apply(&[], 19).await.unwrap();
    assert_eq!(store.load_all().await.unwrap().len(), 3);

    // The streamed read sees exactly what load_all does (in any order), and stops when told.
    let mut streamed = Vec::new();
    store
        .for_each_record(&mut |r: RecordRef<'_>| {
            streamed.push(Record {
                kind: r.kind.into(),
                account: r.account.into(),
                id: r.id.into(),
                doc: r.doc.into(),
                version: r.version,
            });
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    streamed.sort_by(|a, b| (&a.kind, &a.account, &a.id).cmp(&(&b.kind, &b.account, &b.id)));
    assert_eq!(streamed, store.load_all().await.unwrap());
    let mut seen = 0;
    store
        .for_each_record(&mut |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert_eq!(seen, 1, "Break stops the read");
}

/// The change feed: head, changes_since, tombstones, ordering.
async fn feed_scenario(store: &dyn Store) {
    let h0 = store.head().await.unwrap();
    let none = store.changes_since(h0).await.unwrap();
    assert!(none.changes.is_empty());
    assert_eq!(none.cursor, h0);

    store
        .apply(&[ins("a", "{\"n\":1}"), ins("b", "{}")], 10)
        .await
        .unwrap();
    let c1 = store.changes_since(h0).await.unwrap();
    assert_eq!(
        c1.changes,
        vec![put("a", "{\"n\":1}", 1), put("b", "{}", 1)]
    );
    assert!(c1.cursor > h0);
    assert_eq!(
        store.head().await.unwrap(),
        c1.cursor,
        "head is the newest batch"
    );

    // A failed batch leaves no trace in the feed; neither does an empty one.
    assert!(
        store
            .apply(&[ins("c", "{}"), ins("a", "{}")], 11)
            .await
            .is_err()
    );
    store.apply(&[], 11).await.unwrap();
    assert!(
        store
            .changes_since(c1.cursor)
            .await
            .unwrap()
            .changes
            .is_empty()
    );
    assert_eq!(store.head().await.unwrap(), c1.cursor);

    // An update shows as the record's new state.
    store.apply(&[upd("a", "{\"n\":2}", 1)], 12).await.unwrap();
    let c2 = store.changes_since(c1.cursor).await.unwrap();
    assert_eq!(c2.changes, vec![put("a", "{\"n\":2}", 2)]);

    // A deletion shows as a tombstone.
    store.apply(&[del("b", 1)], 13).await.unwrap();
    let c3 = store.changes_since(c2.cursor).await.unwrap();
    assert_eq!(c3.changes, vec![gone("b")]);

    // Deleted then inserted again: the tombstone comes first, then the new record.
    store
        .apply(&[ins("b", "{\"again\":true}")], 14)
        .await
        .unwrap();
    let c4 = store.changes_since(c2.cursor).await.unwrap();
    assert_eq!(c4.changes, vec![gone("b"), put("b", "{\"again\":true}", 1)]);
    assert_eq!(
        store.changes_since(c3.cursor).await.unwrap().changes,
        vec![put("b", "{\"again\":true}", 1)]
    );

    // Deleted and inserted again in one batch: present, after its tombstone.
    store
        .apply(&[del("b", 1), ins("b", "{\"third\":1}")], 15)
        .await
        .unwrap();
    let c5 = store.changes_since(c4.cursor).await.unwrap();
    assert_eq!(c5.changes, vec![gone("b"), put("b", "{\"third\":1}", 1)]);

    // From the start: every key once, in commit order, at its current state.
    let all = store.changes_since(h0).await.unwrap();
    assert_eq!(
        all.changes,
        vec![
            put("a", "{\"n\":2}", 2),
            gone("b"),
            put("b", "{\"third\":1}", 1)
        ]
    );
    assert_eq!(all.cursor, c5.cursor);
    assert_eq!(store.head().await.unwrap(), c5.cursor);

    // A batch touching several keys is one step of the cursor.
    store
        .apply(&[ins("x", "{}"), ins("y", "{}"), del("a", 2)], 16)
        .await
        .unwrap();
    let c6 = store.changes_since(c5.cursor).await.unwrap();
    assert_eq!(c6.changes.len(), 3);
    assert!(c6.changes.contains(&gone("a")) && c6.changes.contains(&put("x", "{}", 1)));
    assert!(
        store
            .changes_since(c6.cursor)
            .await
            .unwrap()
            .changes
            .is_empty()
    );
}

/// Two handles on one database (two replicas): each sees the other's writes through the feed,
/// and racing conditional writes let exactly one through.
async fn two_handles_scenario(a: &dyn Store, b: &dyn Store) {
    let h = b.head().await.unwrap();
    a.apply(&[ins("shared", "{\"from\":\"a\"}")], 20)
        .await
        .unwrap();
    let seen = b.changes_since(h).await.unwrap();
    assert_eq!(seen.changes, vec![put("shared", "{\"from\":\"a\"}", 1)]);
    assert_eq!(
        b.load_all()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.id == "shared")
            .count(),
        1
    );

    b.apply(&[upd("shared", "{\"from\":\"b\"}", 1)], 21)
        .await
        .unwrap();
    // `a` still thinks version 1: conflict.
    assert!(matches!(
        a.apply(&[upd("shared", "{}", 1)], 22).await,
        Err(StoreError::Conflict { .. })
    ));
    // Nor may `a` delete what it read at version 1.
    assert!(matches!(
        a.apply(&[del("shared", 1)], 22).await,
        Err(StoreError::Conflict { .. })
    ));
    b.apply(&[del("shared", 2)], 23).await.unwrap();
    let later = b.changes_since(seen.cursor).await.unwrap();
    assert_eq!(later.changes, vec![gone("shared")]);

    // Both insert the same key at once, many times: exactly one wins each round, and the
    // feed stays in commit order with no gaps.
    let start = a.head().await.unwrap();
    for i in 0..20 {
        let id = format!("race-{i}");
        let (wa, wb) = ([ins(&id, "{\"w\":\"a\"}")], [ins(&id, "{\"w\":\"b\"}")]);
        let (ra, rb) = tokio::join!(a.apply(&wa, 30), b.apply(&wb, 30));
        assert!(
            ra.is_ok() != rb.is_ok(),
            "round {i}: exactly one insert wins: {ra:?} {rb:?}"
        );
        for r in [ra, rb] {
            if let Err(e) = r {
                assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
            }
        }
    }
    let feed = a.changes_since(start).await.unwrap();
    assert_eq!(feed.changes.len(), 20);
    assert_eq!(feed.cursor, b.head().await.unwrap());
}

/// Pruning tombstones (PostgreSQL: the shared store's feed): old ones go, and a cursor from
/// before them is told the feed expired rather than handed a feed missing deletions.
async fn prune_scenario(store: &dyn Store) {
    let h0 = store.head().await.unwrap();
    store
        .apply(&[ins("p1", "{}"), ins("p2", "{}")], 100)
        .await
        .unwrap();
    store.apply(&[del("p1", 1)], 100).await.unwrap();
    let h1 = store.head().await.unwrap();
    store.apply(&[del("p2", 1)], 300).await.unwrap();
    // Nothing was deleted before 100: nothing pruned, the feed from h0 is whole.
    assert_eq!(store.prune_tombstones(100).await.unwrap(), 0);
    let f = store.changes_since(h0).await.unwrap();
    assert!(!f.expired);
    assert!(
        f.changes.contains(&gone("p1")) && f.changes.contains(&gone("p2")),
        "{f:?}"
    );
    // The tombstone of the deletion at 100 goes: a cursor before it is expired...
    assert_eq!(store.prune_tombstones(200).await.unwrap(), 1);
    let f = store.changes_since(h0).await.unwrap();
    assert!(f.expired && f.changes.is_empty(), "{f:?}");
    assert_eq!(f.cursor, h0);
    // ...a cursor at or after it still reads the rest.
    let f = store.changes_since(h1).await.unwrap();
    assert!(!f.expired);
    assert_eq!(f.changes, vec![gone("p2")]);
    // Pruning again changes nothing and the horizon never goes back.
    assert_eq!(store.prune_tombstones(200).await.unwrap(), 0);
    assert!(store.changes_since(h0).await.unwrap().expired);
    let head = store.head().await.unwrap();
    assert!(!store.changes_since(head).await.unwrap().expired);
    // Records themselves are untouched by pruning.
    assert_eq!(
        store
            .load_all()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.id.starts_with('p'))
            .count(),
        0
    );
    store.apply(&[ins("p3", "{}")], 400).await.unwrap();
    assert_eq!(store.prune_tombstones(i64::MAX).await.unwrap(), 1);
    assert!(store.load_all().await.unwrap().iter().any(|r| r.id == "p3"));
}

// --------------------------------------------------------------------------------- SQLite

#[tokio::test]
async fn sqlite_memory_conformance() {
    records_scenario(&SqliteStore::memory().await.unwrap()).await;
    feed_scenario(&SqliteStore::memory().await.unwrap()).await;
    let s = SqliteStore::memory().await.unwrap();
    assert!(
        !s.shared() && s.watch().is_none(),
        "SQLite is one process: nothing to follow"
    );
    // Nobody follows its feed, so nothing is pruned and the feed never expires.
    s.apply(&[ins("x", "{}")], 1).await.unwrap();
    s.apply(&[del("x", 1)], 1).await.unwrap();
    assert_eq!(s.prune_tombstones(i64::MAX).await.unwrap(), 0);
    assert!(!s.changes_since(0).await.unwrap().expired);
}

#[tokio::test]
async fn sqlite_file_conformance_and_reopen() {
    let dir = temp_dir("file");
    let path = dir.join("podiam.db");
    {
        let s = SqliteStore::open(&path).await.unwrap();
        records_scenario(&s).await;
        s.close().await;
    }
    // Reopening applies no migration twice and keeps every record.
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.load_all().await.unwrap().len(), 3);
    s.close().await;

    let path = dir.join("feed.db");
    let s = SqliteStore::open(&path).await.unwrap();
    feed_scenario(&s).await;
    s.close().await;
    let s = SqliteStore::open(&path).await.unwrap();
    assert!(
        s.head().await.unwrap() > 0,
        "the change sequence survives a reopen"
    );
    s.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sqlite_two_handles_on_one_file() {
    let dir = temp_dir("two");
    let path = dir.join("podiam.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    two_handles_scenario(&a, &b).await;
    a.close().await;
    b.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database written by the first release (migration 1 only) upgrades in place: records keep
/// their data, and the feed starts after them.
#[tokio::test]
async fn sqlite_upgrade_from_migration_1() {
    let dir = temp_dir("upgrade");
    let path = dir.join("podiam.db");
    {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        c.execute("CREATE TABLE podiam_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)").await.unwrap();
        c.execute(include_str!("../migrations/sqlite/0001_records.sql"))
            .await
            .unwrap();
        c.execute("INSERT INTO podiam_migrations VALUES (1, 0)")
            .await
            .unwrap();
        c.execute("INSERT INTO records VALUES ('role', '111122223333', 'old', '{}', 3, 0)")
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let s = SqliteStore::open(&path).await.unwrap();
    let all = s.load_all().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].version, 3);
    let h = s.head().await.unwrap();
    assert!(s.changes_since(h).await.unwrap().changes.is_empty());
    s.apply(&[upd("old", "{\"new\":1}", 3)], 1).await.unwrap();
    assert_eq!(
        s.changes_since(h).await.unwrap().changes,
        vec![put("old", "{\"new\":1}", 4)]
    );
    s.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----------------------------------------------------------------------------- PostgreSQL

#[tokio::test]
async fn postgres_conformance() {
    let Some((opts, url)) = pg_schema("postgres_conformance").await else {
        return;
    };
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    assert!(s.shared());
    records_scenario(&s).await;
    s.close().await;
    // Reconnecting applies no migration twice and keeps every record.
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    assert_eq!(s.load_all().await.unwrap().len(), 3);
    s.close().await;
    drop_schema(&opts, &url).await;

    let Some((opts, url)) = pg_schema("postgres_conformance").await else {
        return;
    };
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    feed_scenario(&s).await;
    s.close().await;
    drop_schema(&opts, &url).await;

    let Some((opts, url)) = pg_schema("postgres_conformance").await else {
        return;
    };
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    prune_scenario(&s).await;
    s.close().await;
    drop_schema(&opts, &url).await;
}

#[tokio::test]
async fn postgres_two_replicas() {
    let Some((opts, url)) = pg_schema("postgres_two_replicas").await else {
        return;
    };
    let a = PgStore::connect_with(opts.clone()).await.unwrap();
    let b = PgStore::connect_with(opts.clone()).await.unwrap();
    two_handles_scenario(&a, &b).await;
    a.close().await;
    b.close().await;
    drop_schema(&opts, &url).await;
}

/// Replicas starting at once on an empty database: every one migrates without error, each
/// migration is applied once.
#[tokio::test]
async fn postgres_concurrent_migrations() {
    let Some((opts, url)) = pg_schema("postgres_concurrent_migrations").await else {
        return;
    };
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let o = opts.clone();
            tokio::spawn(async move { PgStore::connect_with(o).await })
        })
        .collect();
    let mut stores = Vec::new();
    for h in handles {
        stores.push(h.await.unwrap().unwrap());
    }
    let mut c = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM podiam_migrations ORDER BY version")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    c.close().await.unwrap();
    stores[0].apply(&[ins("a", "{}")], 1).await.unwrap();
    assert_eq!(stores[5].load_all().await.unwrap().len(), 1);
    for s in stores {
        s.close().await;
    }
    drop_schema(&opts, &url).await;
}

/// A commit through one handle wakes the other's watch signal within a second (NOTIFY), and
/// its feed then has the write.
#[tokio::test]
async fn postgres_watch_wakes_followers() {
    let Some((opts, url)) = pg_schema("postgres_watch_wakes_followers").await else {
        return;
    };
    let writer = PgStore::connect_with(opts.clone()).await.unwrap();
    let follower = PgStore::connect_with(opts.clone()).await.unwrap();
    let mut rx = follower.watch().expect("PostgreSQL has a wake-up signal");
    // The listener signals once when it has connected.
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    let cursor = follower.head().await.unwrap();
    for i in 0..3 {
        rx.borrow_and_update();
        let t = Instant::now();
        writer
            .apply(&[ins(&format!("w{i}"), "{}")], 1)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), rx.changed())
            .await
            .expect("woken within a second")
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(
        follower.changes_since(cursor).await.unwrap().changes.len(),
        3
    );
    // A failed batch does not notify.
    rx.borrow_and_update();
    assert!(writer.apply(&[ins("w0", "{}")], 1).await.is_err());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.changed())
            .await
            .is_err(),
        "no wake-up for a rolled-back batch"
    );
    writer.close().await;
    follower.close().await;
    drop_schema(&opts, &url).await;
}

/// An unreachable or closed database is a `Backend` error, promptly, not a hang.
#[tokio::test]
async fn postgres_failures_are_backend_errors() {
    // Nothing listens on port 1.
    let t = Instant::now();
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/podiam")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    let Some((opts, url)) = pg_schema("postgres_failures_are_backend_errors").await else {
        return;
    };
    let s = PgStore::connect_with(opts.clone()).await.unwrap();
    s.close().await;
    assert!(matches!(
        s.apply(&[ins("a", "{}")], 1).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(s.load_all().await, Err(StoreError::Backend(_))));
    assert!(matches!(
        s.changes_since(0).await,
        Err(StoreError::Backend(_))
    ));
    drop_schema(&opts, &url).await;
}
