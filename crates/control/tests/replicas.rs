//! Replicas: two `Db`s over one shared store follow each other's writes through the change feed.
//! Runs over SQLite (one file, two handles, marked shared) always and over PostgreSQL (with
//! LISTEN/NOTIFY wake-ups) when `PODIAM_TEST_POSTGRES_URL` is set (required under `CI=true`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use podiam_control::model::kind;
use podiam_control::state::{Change, Db};
use podiam_store::{BoxFut, ChangeSet, PgStore, Record, SqliteStore, Store, StoreError, Write};
use serde_json::json;

const ACCT: &str = "111122223333";

/// SQLite store that claims to be shared, so that `Db` follows its feed as a replica would.
struct SharedSqlite(SqliteStore);

impl Store for SharedSqlite {
    fn load_all(&self) -> BoxFut<'_, Result<Vec<Record>, StoreError>> {
        self.0.load_all()
    }
    fn apply<'a>(
        &'a self,
        writes: &'a [Write],
        now_unix: i64,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        self.0.apply(writes, now_unix)
    }
    fn close(&self) -> BoxFut<'_, ()> {
        self.0.close()
    }
    fn head(&self) -> BoxFut<'_, Result<i64, StoreError>> {
        self.0.head()
    }
    fn changes_since(&self, cursor: i64) -> BoxFut<'_, Result<ChangeSet, StoreError>> {
        self.0.changes_since(cursor)
    }
    fn shared(&self) -> bool {
        true
    }
}

fn role(name: &str, trust: &str) -> serde_json::Value {
    json!({
        "name": name, "id": format!("AROA{}", name.to_uppercase()), "path": "/", "trust_policy": trust,
        "max_session_duration": 3600, "created": 1,
    })
}

fn assoc(id: &str, sa: &str) -> serde_json::Value {
    json!({
        "id": id, "cluster": "c1", "namespace": "default", "service_account": sa,
        "role_arn": format!("arn:aws:iam::{ACCT}:role/r"), "external_id": "x", "created_ms": 1, "modified_ms": 1,
    })
}

fn key(name: &str) -> (String, String) {
    (ACCT.to_owned(), name.to_owned())
}

/// `PODIAM_TEST_POSTGRES_URL` and a fresh schema name (`tag` keeps it short), or `None` when
/// the variable is unset (the test is skipped, saying so). Under CI (`CI=true`) an unset
/// variable panics instead: there the replicas must run on PostgreSQL, not be skipped.
fn pg_schema(test: &str, tag: &str) -> Option<(String, String)> {
    let Ok(url) = std::env::var("PODIAM_TEST_POSTGRES_URL") else {
        let why = "PODIAM_TEST_POSTGRES_URL is unset (scripts/postgres.sh starts a server)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: {why}; under CI=true a test that cannot reach its database fails");
        }
        eprintln!("SKIPPED {test}: {why}");
        return None;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Some((url, format!("podiam_{tag}_{}_{nanos}", std::process::id())))
}

/// Wait until `cond` holds on `db`, at most `limit`; returns how long it took.
async fn eventually(db: &Db, limit: Duration, cond: impl Fn(&Db) -> bool) -> Duration {
    let t = Instant::now();
    while !cond(db) {
        assert!(t.elapsed() < limit, "not replicated within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

/// The replica behaviour, over two stores on one database. `limit`: how soon a follower must
/// see the other's write without being asked.
async fn replicas_scenario(s1: Arc<dyn Store>, s2: Arc<dyn Store>, limit: Duration) {
    let a = Db::open(s1).await.unwrap();
    let b = Db::open(s2).await.unwrap();

    // Insert on A → B by itself.
    {
        let g = a.write().await;
        a.commit(
            &g,
            vec![Change::insert(kind::ROLE, ACCT, "r1", &role("r1", "{}")).unwrap()],
            1,
        )
        .await
        .unwrap();
    }
    let took = eventually(&b, limit, |d| d.read().roles.contains_key(&key("r1"))).await;
    eprintln!("insert replicated in {took:?}");
    assert_eq!(b.read().roles[&key("r1")].version, 1);

    // Update on B → A, at the new version.
    {
        let g = b.write().await;
        b.commit(
            &g,
            vec![Change::update(kind::ROLE, ACCT, "r1", &role("r1", "{\"v\":2}"), 1).unwrap()],
            2,
        )
        .await
        .unwrap();
    }
    eventually(&a, limit, |d| {
        d.read()
            .roles
            .get(&key("r1"))
            .is_some_and(|e| e.version == 2)
    })
    .await;
    assert_eq!(a.read().roles[&key("r1")].value.trust_policy, "{\"v\":2}");

    // B's own write is not applied again: same entry (same Arc) after B reads the feed.
    let before = Arc::clone(&b.read().roles[&key("r1")].value);
    b.refresh().await.unwrap();
    assert!(
        Arc::ptr_eq(&before, &b.read().roles[&key("r1")].value),
        "own write re-applied"
    );

    // Delete on A → gone on B.
    {
        let g = a.write().await;
        a.commit(&g, vec![Change::delete(kind::ROLE, ACCT, "r1", 2)], 3)
            .await
            .unwrap();
    }
    let took = eventually(&b, limit, |d| !d.read().roles.contains_key(&key("r1"))).await;
    eprintln!("delete replicated in {took:?}");

    // Deleted and created again with the same name between two reads of the feed: the
    // follower ends with the new record, not the old one.
    {
        let g = a.write().await;
        a.commit(
            &g,
            vec![Change::insert(kind::ROLE, ACCT, "r2", &role("r2", "{\"gen\":1}")).unwrap()],
            4,
        )
        .await
        .unwrap();
    }
    b.refresh().await.unwrap();
    {
        let g = a.write().await;
        a.commit(&g, vec![Change::delete(kind::ROLE, ACCT, "r2", 1)], 5)
            .await
            .unwrap();
        a.commit(
            &g,
            vec![Change::insert(kind::ROLE, ACCT, "r2", &role("r2", "{\"gen\":2}")).unwrap()],
            6,
        )
        .await
        .unwrap();
    }
    eventually(&b, limit, |d| {
        d.read()
            .roles
            .get(&key("r2"))
            .is_some_and(|e| e.value.trust_policy == "{\"gen\":2}")
    })
    .await;

    // Pod Identity associations replicate with their indexes, and leave them on delete.
    {
        let g = a.write().await;
        a.commit(
            &g,
            vec![
                Change::insert(
                    kind::POD_IDENTITY_ASSOCIATION,
                    ACCT,
                    "a-1",
                    &assoc("a-1", "sa1"),
                )
                .unwrap(),
            ],
            7,
        )
        .await
        .unwrap();
    }
    eventually(&b, limit, |d| {
        d.read()
            .associations
            .find(ACCT, "c1", "default", "sa1")
            .is_some_and(|e| e.value.id == "a-1")
    })
    .await;
    assert!(b.read().associations.get(ACCT, "c1", "a-1").is_some());
    assert!(b.read().associations.get_by_id(ACCT, "a-1").is_some());
    assert_eq!(b.read().associations.count(ACCT, "c1"), 1);
    {
        let g = a.write().await;
        a.commit(
            &g,
            vec![Change::delete(
                kind::POD_IDENTITY_ASSOCIATION,
                ACCT,
                "a-1",
                1,
            )],
            8,
        )
        .await
        .unwrap();
    }
    eventually(&b, limit, |d| {
        d.read()
            .associations
            .find(ACCT, "c1", "default", "sa1")
            .is_none()
    })
    .await;
    assert!(
        b.read().associations.is_empty() && b.read().associations.get_by_id(ACCT, "a-1").is_none()
    );
    assert_eq!(b.read().associations.count(ACCT, "c1"), 0);

    // A write decides on current state: taking the writer lock reads the feed first, so B sees
    // A's role immediately even if its follower has not run yet.
    {
        let g = a.write().await;
        a.commit(
            &g,
            vec![Change::insert(kind::ROLE, ACCT, "r3", &role("r3", "{}")).unwrap()],
            9,
        )
        .await
        .unwrap();
    }
    {
        let _g = b.write().await;
        assert!(
            b.read().roles.contains_key(&key("r3")),
            "write() catches up before deciding"
        );
    }

    // A conflicting write (stale version) fails with 409 and leaves B caught up.
    {
        let g = a.write().await;
        a.commit(
            &g,
            vec![Change::update(kind::ROLE, ACCT, "r3", &role("r3", "{\"a\":1}"), 1).unwrap()],
            10,
        )
        .await
        .unwrap();
        let gb = b.write().await;
        let v = b.read().roles[&key("r3")].version;
        drop(g);
        // B read version 2 under its lock; A updates again meanwhile.
        let ga = a.write().await;
        a.commit(
            &ga,
            vec![Change::update(kind::ROLE, ACCT, "r3", &role("r3", "{\"a\":2}"), 2).unwrap()],
            11,
        )
        .await
        .unwrap();
        drop(ga);
        let err = b
            .commit(
                &gb,
                vec![Change::update(kind::ROLE, ACCT, "r3", &role("r3", "{\"b\":1}"), v).unwrap()],
                12,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, podiam_control::ErrorCode::ConcurrentModification);
        assert_eq!(
            b.read().roles[&key("r3")].version,
            3,
            "caught up after the conflict"
        );
    }
    a.refresh().await.unwrap();
    b.refresh().await.unwrap();
    assert_eq!(a.cursor(), b.cursor());
    assert_eq!(a.read().roles.len(), b.read().roles.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replicas_follow_each_other() {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "podiam-replicas-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("podiam.db");
    let s1: Arc<dyn Store> = Arc::new(SharedSqlite(SqliteStore::open(&path).await.unwrap()));
    let s2: Arc<dyn Store> = Arc::new(SharedSqlite(SqliteStore::open(&path).await.unwrap()));
    // No wake-up signal: polling alone must deliver within a second.
    replicas_scenario(Arc::clone(&s1), Arc::clone(&s2), Duration::from_secs(1)).await;
    s1.close().await;
    s2.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_follow_each_other() {
    let Some((url, schema)) = pg_schema("postgres_replicas_follow_each_other", "r") else {
        return;
    };
    let p1 = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    let p2 = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    let s1: Arc<dyn Store> = Arc::new(p1);
    let s2: Arc<dyn Store> = Arc::new(p2);
    // LISTEN/NOTIFY: well under a second.
    replicas_scenario(Arc::clone(&s1), Arc::clone(&s2), Duration::from_millis(900)).await;
    s1.close().await;
    s2.close().await;
}

/// A store whose feed can be cut (a replica away from the database), for the expiry test.
struct Pausable {
    inner: PgStore,
    paused: std::sync::atomic::AtomicBool,
}

impl Store for Pausable {
    fn load_all(&self) -> BoxFut<'_, Result<Vec<Record>, StoreError>> {
        self.inner.load_all()
    }
    fn apply<'a>(
        &'a self,
        writes: &'a [Write],
        now_unix: i64,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        self.inner.apply(writes, now_unix)
    }
    fn close(&self) -> BoxFut<'_, ()> {
        self.inner.close()
    }
    fn head(&self) -> BoxFut<'_, Result<i64, StoreError>> {
        self.inner.head()
    }
    fn changes_since(&self, cursor: i64) -> BoxFut<'_, Result<ChangeSet, StoreError>> {
        if self.paused.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(StoreError::Backend(
                "cut off".into(),
            ))));
        }
        self.inner.changes_since(cursor)
    }
    fn shared(&self) -> bool {
        true
    }
}

/// A replica away from the store for longer than tombstones are kept gets an expired feed
/// when it is back, and reloads: what was deleted meanwhile is gone, what was written is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expired_feed_reloads_everything() {
    let Some((url, schema)) = pg_schema("postgres_expired_feed_reloads_everything", "x") else {
        return;
    };
    let pa = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    let a = Db::open(Arc::new(pa.clone())).await.unwrap();
    {
        let g = a.write().await;
        let batch = vec![
            Change::insert(kind::ROLE, ACCT, "kept", &role("kept", "{}")).unwrap(),
            Change::insert(kind::ROLE, ACCT, "doomed", &role("doomed", "{}")).unwrap(),
            Change::insert(
                kind::POD_IDENTITY_ASSOCIATION,
                ACCT,
                "a-1",
                &assoc("a-1", "sa1"),
            )
            .unwrap(),
        ];
        a.commit(&g, batch, 1).await.unwrap();
    }
    let away = Arc::new(Pausable {
        inner: PgStore::connect_in_schema(&url, &schema).await.unwrap(),
        paused: std::sync::atomic::AtomicBool::new(false),
    });
    let b = Db::open(Arc::clone(&away) as Arc<dyn Store>).await.unwrap();
    assert!(b.read().roles.contains_key(&key("doomed")));

    // B is cut off; meanwhile A deletes and writes, and the tombstones are pruned.
    away.paused.store(true, Ordering::SeqCst);
    {
        let g = a.write().await;
        let batch = vec![
            Change::delete(kind::ROLE, ACCT, "doomed", 1),
            Change::delete(kind::POD_IDENTITY_ASSOCIATION, ACCT, "a-1", 1),
            Change::insert(kind::ROLE, ACCT, "new", &role("new", "{}")).unwrap(),
        ];
        a.commit(&g, batch, 2).await.unwrap();
    }
    assert!(pa.prune_tombstones(i64::MAX).await.unwrap() >= 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        b.read().roles.contains_key(&key("doomed")),
        "B could not have learnt anything"
    );

    // Back: the feed is expired for B's cursor, so B reloads.
    away.paused.store(false, Ordering::SeqCst);
    eventually(&b, Duration::from_secs(3), |d| {
        !d.read().roles.contains_key(&key("doomed"))
    })
    .await;
    {
        let t = b.read();
        assert!(t.roles.contains_key(&key("kept")) && t.roles.contains_key(&key("new")));
        assert!(
            t.associations.is_empty()
                && t.associations.find(ACCT, "c1", "default", "sa1").is_none()
        );
    }
    // And it follows the feed normally again from the reloaded cursor.
    {
        let g = a.write().await;
        a.commit(&g, vec![Change::delete(kind::ROLE, ACCT, "kept", 1)], 3)
            .await
            .unwrap();
    }
    eventually(&b, Duration::from_secs(2), |d| {
        !d.read().roles.contains_key(&key("kept"))
    })
    .await;
    assert!(b.read().roles.contains_key(&key("new")));
}

/// A replica whose store goes away keeps its tables for reads; writes fail with a 500-class
/// error, promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_keeps_reads_and_fails_writes() {
    let Some((url, schema)) = pg_schema("postgres_outage_keeps_reads_and_fails_writes", "o") else {
        return;
    };
    let p = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    let db = Db::open(Arc::new(p.clone())).await.unwrap();
    {
        let g = db.write().await;
        db.commit(
            &g,
            vec![Change::insert(kind::ROLE, ACCT, "r1", &role("r1", "{}")).unwrap()],
            1,
        )
        .await
        .unwrap();
    }
    // Closing the pool makes every query fail, like a database that went away.
    p.close().await;
    tokio::time::sleep(Duration::from_millis(700)).await; // the follower notices
    assert!(
        db.read().roles.contains_key(&key("r1")),
        "reads keep working from memory"
    );
    let t = Instant::now();
    let err = {
        let g = db.write().await;
        db.commit(
            &g,
            vec![Change::insert(kind::ROLE, ACCT, "r2", &role("r2", "{}")).unwrap()],
            2,
        )
        .await
        .unwrap_err()
    };
    assert_eq!(err.code, podiam_control::ErrorCode::InternalFailure);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(db.read().roles.contains_key(&key("r1")) && !db.read().roles.contains_key(&key("r2")));
}

/// A large read of the feed (a bulk import: more than one slice of the tables' write lock)
/// arrives whole, deletions included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_feed_reads_arrive_whole() {
    let dir = std::env::temp_dir().join(format!("podiam-replicas-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("podiam.db");
    let s1: Arc<dyn Store> = Arc::new(SharedSqlite(SqliteStore::open(&path).await.unwrap()));
    let s2: Arc<dyn Store> = Arc::new(SharedSqlite(SqliteStore::open(&path).await.unwrap()));
    let a = Db::open(Arc::clone(&s1)).await.unwrap();
    let b = Db::open(Arc::clone(&s2)).await.unwrap();
    let n = 2500;
    {
        let g = a.write().await;
        let batch = (0..n).map(|i| {
            Change::insert(
                kind::ROLE,
                ACCT,
                &format!("bulk-{i}"),
                &role(&format!("bulk-{i}"), "{}"),
            )
            .unwrap()
        });
        a.commit(&g, batch.collect(), 1).await.unwrap();
        let gone = (0..n)
            .step_by(2)
            .map(|i| Change::delete(kind::ROLE, ACCT, &format!("bulk-{i}"), 1));
        a.commit(&g, gone.collect(), 2).await.unwrap();
    }
    // Usually one read of 2500 changes: a tombstone per deleted role, a record per remaining
    // one (the follower may have read part of it already).
    b.refresh().await.unwrap();
    assert_eq!(b.read().roles.len(), n / 2);
    assert!(
        b.read().roles.contains_key(&key("bulk-1")) && !b.read().roles.contains_key(&key("bulk-0"))
    );
    drop((a, b));
    s1.close().await;
    s2.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
