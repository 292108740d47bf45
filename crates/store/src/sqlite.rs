//! The embedded SQLite store: one file in the data directory, WAL journal, synchronous commits
//! (an acknowledged write survives `kill -9`). The database holds sealed secrets and every other
//! record: it and its `-wal`/`-shm` files are readable by their owner only (0600).

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::SqliteQueryResult;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};

use crate::batch::{BatchBackend, BatchSql, apply_writes};
use crate::{
    AuditPage, AuditQuery, AuditRow, BoxFut, ChangeEvent, ChangeSet, Record, Store, StoreError,
    Write, audit, backend,
};

/// Append-only migrations: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_records.sql")),
    (2, include_str!("../migrations/sqlite/0002_changes.sql")),
    (3, include_str!("../migrations/sqlite/0003_audit.sql")),
];

impl BatchBackend for Sqlite {
    const SQL: BatchSql = BatchSql {
        next_seq: "UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value",
        insert: "INSERT INTO records (kind, account, id, doc, version, updated_at, seq) VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING",
        update: "UPDATE records SET doc = ?, version = version + 1, updated_at = ?, seq = ? WHERE kind = ? AND account = ? AND id = ? AND version = ?",
        delete: "DELETE FROM records WHERE kind = ? AND account = ? AND id = ? AND version = ?",
        tombstone: "INSERT INTO tombstones (kind, account, id, seq, deleted_at) VALUES (?, ?, ?, ?, ?) \
                    ON CONFLICT (kind, account, id) DO UPDATE SET seq = excluded.seq, deleted_at = excluded.deleted_at",
    };

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// SQLite-backed [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed, mode 0600) the database at `path` and apply pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        // SQLite creates the `-wal` and `-shm` files with the database file's mode, so creating
        // the database 0600 here (not with the process umask) makes all three private.
        private_file(path, true)?;
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(5));
        // Writes go through one connection so batches never contend for SQLite's single writer.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        let store = Self { pool };
        store.migrate().await?;
        // Files an older version left with the umask's mode.
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            private_file(Path::new(&side), false)?;
        }
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub async fn memory() -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS podiam_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM podiam_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query("INSERT INTO podiam_migrations (version, applied_at) VALUES (?, strftime('%s','now'))")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }
}

/// A file operation on the database's path that failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
struct PathError {
    path: std::path::PathBuf,
    #[source]
    source: std::io::Error,
}

/// Make `path` readable by its owner only: create it 0600 if `create` and it is missing, and
/// narrow the mode of an existing file.
fn private_file(path: &Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| {
        StoreError::Backend(Box::new(PathError {
            path: path.to_owned(),
            source: e,
        }))
    };
    if create {
        // `create` without `truncate`: an existing database is left as it is.
        #[expect(
            clippy::suspicious_open_options,
            reason = "opened only to create it if missing, never written here"
        )]
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
    }
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => Ok(()),
        Err(e) => Err(io(e)),
    }
}

impl Store for SqliteStore {
    fn load_all(&self) -> BoxFut<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kind, account, id, doc, version FROM records ORDER BY kind, account, id",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            Ok(rows
                .iter()
                .map(|r| Record {
                    kind: r.get(0),
                    account: r.get(1),
                    id: r.get(2),
                    doc: r.get(3),
                    version: r.get(4),
                })
                .collect())
        })
    }

    fn apply<'a>(
        &'a self,
        writes: &'a [Write],
        now_unix: i64,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if writes.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await.map_err(backend)?;
            apply_writes::<Sqlite>(&mut *tx, writes, now_unix).await?;
            tx.commit().await.map_err(backend)
        })
    }

    fn close(&self) -> BoxFut<'_, ()> {
        Box::pin(async move { self.pool.close().await })
    }

    fn head(&self) -> BoxFut<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT value FROM change_seq WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(backend)
        })
    }

    fn changes_since(&self, cursor: i64) -> BoxFut<'_, Result<ChangeSet, StoreError>> {
        Box::pin(async move {
            // One statement, so one consistent snapshot; tombstones first at equal seq (a key
            // deleted and inserted again in one batch is present).
            let rows = sqlx::query(
                "SELECT seq, 0 AS ord, kind, account, id, NULL AS doc, 0 AS version FROM tombstones WHERE seq > ? \
                 UNION ALL \
                 SELECT seq, 1 AS ord, kind, account, id, doc, version FROM records WHERE seq > ? \
                 ORDER BY 1, 2",
            )
            .bind(cursor)
            .bind(cursor)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            let mut set = ChangeSet {
                changes: Vec::with_capacity(rows.len()),
                cursor,
                expired: false,
            };
            for r in &rows {
                let seq: i64 = r.try_get(0).map_err(backend)?;
                set.cursor = set.cursor.max(seq);
                let (kind, account, id): (String, String, String) = (
                    r.try_get(2).map_err(backend)?,
                    r.try_get(3).map_err(backend)?,
                    r.try_get(4).map_err(backend)?,
                );
                let doc: Option<String> = r.try_get(5).map_err(backend)?;
                set.changes.push(match doc {
                    Some(doc) => ChangeEvent::Put(Record {
                        kind,
                        account,
                        id,
                        doc,
                        version: r.try_get(6).map_err(backend)?,
                    }),
                    None => ChangeEvent::Delete { kind, account, id },
                });
            }
            Ok(set)
        })
    }

    fn append_audit<'a>(&'a self, rows: &'a [AuditRow]) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(audit::sqlite::append(&self.pool, rows))
    }

    fn lookup_audit<'a>(&'a self, q: &'a AuditQuery) -> BoxFut<'a, Result<AuditPage, StoreError>> {
        Box::pin(audit::sqlite::lookup(&self.pool, q))
    }

    fn prune_audit(&self, before_ms: i64) -> BoxFut<'_, Result<u64, StoreError>> {
        Box::pin(audit::sqlite::prune(&self.pool, before_ms))
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::PathBuf;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "podiam-store-{name}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn side(db: &Path, suffix: &str) -> PathBuf {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }

    #[tokio::test]
    async fn database_files_are_created_private() {
        let dir = temp_dir("mode");
        let db = dir.join("podiam.db");
        let store = SqliteStore::open(&db).await.unwrap();
        // The WAL and shared-memory files exist while the database is open (the migrations wrote).
        for p in [db.clone(), side(&db, "-wal"), side(&db, "-shm")] {
            assert!(p.exists(), "{} missing", p.display());
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_existing_world_readable_database_is_narrowed() {
        let dir = temp_dir("narrow");
        let db = dir.join("podiam.db");
        for p in [db.clone(), side(&db, "-wal")] {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&p)
                .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let store = SqliteStore::open(&db).await.unwrap();
        for p in [db.clone(), side(&db, "-wal"), side(&db, "-shm")] {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The lookups and pruning read through the indexes, in the index order: no full scan of
    /// an audit table, no sort.
    #[tokio::test]
    async fn audit_statements_use_the_indexes() {
        use crate::audit::{
            AuditCursor, Bind, Dialect, NEXT_ACCOUNT, PRUNE_EVENTS, lookup_sql, values_sql,
        };
        use crate::{AuditAttr, AuditQuery};

        async fn plan(pool: &SqlitePool, sql: &str, binds: &[Bind<'_>]) -> String {
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query(&sql);
            for b in binds {
                q = match *b {
                    Bind::Text(v) => q.bind(v),
                    Bind::Int(v) => q.bind(v),
                    Bind::Bool(v) => q.bind(v),
                };
            }
            q.fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(3))
                .collect::<Vec<String>>()
                .join("\n")
        }
        let store = SqliteStore::memory().await.unwrap();
        let pool = &store.pool;
        let attrs = [
            (None, "USING INDEX audit_events_time"),
            (
                Some(AuditAttr::EventId("x".into())),
                "USING INDEX audit_events_id",
            ),
            (
                Some(AuditAttr::EventName("x".into())),
                "USING INDEX audit_events_time",
            ),
            (
                Some(AuditAttr::Username("x".into())),
                "USING INDEX audit_events_time",
            ),
            (
                Some(AuditAttr::EventSource("x".into())),
                "USING INDEX audit_events_time",
            ),
            (
                Some(AuditAttr::ReadOnly(true)),
                "USING INDEX audit_events_time",
            ),
            (
                Some(AuditAttr::ResourceType("x".into())),
                "USING INDEX audit_events_time",
            ),
            (
                Some(AuditAttr::AccessKeyId("x".into())),
                "USING INDEX audit_events_key",
            ),
            (
                Some(AuditAttr::ResourceName("x".into())),
                "SEARCH r USING PRIMARY KEY",
            ),
        ];
        for (attr, index) in attrs {
            for after in [
                None,
                Some(AuditCursor {
                    event_time_ms: 5,
                    event_id: "e".into(),
                }),
            ] {
                let q = AuditQuery {
                    account: "1".into(),
                    attr: attr.clone(),
                    start_ms: Some(1),
                    end_ms: None,
                    limit: 10,
                    after,
                };
                let l = lookup_sql(&q, Dialect::Sqlite).unwrap();
                let p = plan(pool, &l.sql, &l.binds).await;
                assert!(p.contains(index), "{attr:?}: {p}");
                if matches!(attr, Some(AuditAttr::AccessKeyId(_))) {
                    // Two index walks of at most a page each, merged: only the merge sorts
                    // (at most two pages) and scans (the halves' results).
                    assert!(p.contains("SEARCH r USING PRIMARY KEY"), "{p}");
                    assert!(p.contains("MERGE (UNION)"), "{p}");
                    let mut lines = p.lines().peekable();
                    while let Some(line) = lines.next() {
                        if line.contains("SCAN") {
                            assert!(line == "SCAN signed" || line == "SCAN issued", "{p}");
                            assert_eq!(lines.peek(), Some(&"USE TEMP B-TREE FOR ORDER BY"));
                            lines.next();
                        } else {
                            assert!(!line.contains("TEMP B-TREE"), "{p}");
                        }
                    }
                    continue;
                }
                assert!(!p.contains("TEMP B-TREE"), "{attr:?}: {p}");
                for line in p.lines().filter(|l| l.contains("SCAN")) {
                    assert!(line.contains("VIRTUAL TABLE"), "{attr:?}: {p}");
                }
            }
        }
        let p = plan(
            pool,
            PRUNE_EVENTS,
            &[Bind::Text("1"), Bind::Int(5), Bind::Int(10)],
        )
        .await;
        assert!(!p.contains("SCAN"), "{p}");
        let p = plan(pool, NEXT_ACCOUNT, &[Bind::Text("1")]).await;
        assert!(!p.contains("SCAN") && !p.contains("TEMP B-TREE"), "{p}");
        let sql = values_sql(audit::sqlite::DELETE_RESOURCES_HEAD, 3, 2, ")");
        let p = plan(pool, &sql, &[Bind::Text("1")]).await;
        assert!(
            p.contains("SEARCH audit_resources USING PRIMARY KEY"),
            "{p}"
        );
    }
}
