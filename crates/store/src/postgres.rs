//! The PostgreSQL store, shared by any number of `podiam serve` replicas.
//!
//! Same schema, migrations (numbered as SQLite's up to 2) and semantics as
//! [`crate::SqliteStore`]: atomic batches, optimistic versions, conflicts as
//! [`StoreError::Conflict`] and any database or connection failure as [`StoreError::Backend`].
//! Batches commit in the order of their change sequence (see the crate documentation) and
//! `NOTIFY` on commit (channel [`CHANNEL`], or `podiam_changes.<schema>` outside schema
//! `public`, so that installations sharing a database in separate schemas do not wake each
//! other); a `LISTEN`ing connection turns that into the [`Store::watch`] signal.

use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Postgres, Row};
use tokio::sync::watch;

use crate::batch::{BatchBackend, BatchSql, apply_writes};
use crate::{
    AuditPage, AuditQuery, AuditRow, BoxFut, ChangeEvent, ChangeSet, Record, Store, StoreError,
    Write, audit, backend,
};

/// Append-only migrations: (version, SQL). Versions 1 and 2 match SQLite's; 3 has no SQLite
/// counterpart, and 4 is SQLite's 3.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_records.sql")),
    (2, include_str!("../migrations/postgres/0002_changes.sql")),
    (
        3,
        include_str!("../migrations/postgres/0003_feed_horizon.sql"),
    ),
    (4, include_str!("../migrations/postgres/0004_audit.sql")),
];

/// The `NOTIFY` channel of committed batches in schema `public` (payload: the batch's change
/// sequence).
pub const CHANNEL: &str = "podiam_changes";

/// Key of the transaction-level advisory lock that serializes migrations of replicas starting
/// at once ("podiam" in ASCII).
const MIGRATION_LOCK: i64 = 0x706f_6469_616d;

/// How long a query waits for a connection before failing with [`StoreError::Backend`]: while
/// the database is down, writes fail after this long rather than hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the listener waits before reconnecting after a failure.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

impl BatchBackend for Postgres {
    const SQL: BatchSql = BatchSql {
        next_seq: "UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value",
        insert: "INSERT INTO records (kind, account, id, doc, version, updated_at, seq) VALUES ($1, $2, $3, $4, 1, $5, $6) ON CONFLICT DO NOTHING",
        update: "UPDATE records SET doc = $1, version = version + 1, updated_at = $2, seq = $3 WHERE kind = $4 AND account = $5 AND id = $6 AND version = $7",
        delete: "DELETE FROM records WHERE kind = $1 AND account = $2 AND id = $3 AND version = $4",
        tombstone: "INSERT INTO tombstones (kind, account, id, seq, deleted_at) VALUES ($1, $2, $3, $4, $5) \
                    ON CONFLICT (kind, account, id) DO UPDATE SET seq = excluded.seq, deleted_at = excluded.deleted_at",
    };

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    signal: Arc<Signal>,
    channel: Arc<str>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// The wake-up signal and whether its listener runs.
struct Signal {
    tx: watch::Sender<u64>,
    listening: Mutex<bool>,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/database?...`) and apply pending
    /// migrations. Several replicas may do this at once.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url).map_err(backend)?;
        Self::connect_with(opts).await
    }

    /// Connect to `url` and keep podiam's tables in `schema` (created if missing; lowercase
    /// letters, digits and `_`), so that several installations or test runs can share one
    /// database.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let valid = schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && schema.len() <= 50
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(StoreError::Backend(
                format!("invalid schema name {schema:?}").into(),
            ));
        }
        let opts = PgConnectOptions::from_str(url).map_err(backend)?;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts)
            .await
            .map_err(backend)?;
        // Concurrent `CREATE SCHEMA IF NOT EXISTS` can still collide: serialize them.
        let created = async {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut conn)
                .await?;
            let r = sqlx::Executor::execute(
                &mut conn,
                format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str(),
            )
            .await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut conn)
                .await?;
            r
        }
        .await;
        let _ = sqlx::Connection::close(conn).await;
        created.map_err(backend)?;
        Self::connect_with(opts.options([("search_path", schema)])).await
    }

    /// Connect with explicit options (for example a `search_path`) and apply pending migrations.
    pub async fn connect_with(opts: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(opts)
            .await
            .map_err(backend)?;
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&pool)
            .await
            .map_err(backend)?;
        let schema = schema.unwrap_or_else(|| "public".to_owned());
        // Channel names are identifiers: at most 63 bytes.
        let channel = if schema == "public" || CHANNEL.len() + 1 + schema.len() > 63 {
            CHANNEL.to_owned()
        } else {
            format!("{CHANNEL}.{schema}")
        };
        let (tx, _) = watch::channel(0);
        let store = Self {
            pool,
            signal: Arc::new(Signal {
                tx,
                listening: Mutex::new(false),
            }),
            channel: channel.into(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Apply pending migrations in one transaction, under an advisory lock so that replicas
    /// starting together apply each migration exactly once (DDL is transactional in
    /// PostgreSQL: a failed migration leaves nothing behind).
    fn migrate(&self) -> BoxFut<'_, Result<(), StoreError>> {
        // Boxed as `Send` here, where the transaction's lifetimes are concrete, so that callers
        // can spawn the connect future.
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(backend)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query("CREATE TABLE IF NOT EXISTS podiam_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM podiam_migrations")
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            for (version, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                sqlx::Executor::execute(&mut *tx, *sql)
                    .await
                    .map_err(backend)?;
                sqlx::query("INSERT INTO podiam_migrations (version, applied_at) VALUES ($1, extract(epoch FROM now())::bigint)")
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tracing::info!(version, "store migration applied");
            }
            tx.commit().await.map_err(backend)
        })
    }

    /// Start the `LISTEN` task once.
    fn start_listener(&self) {
        let Ok(mut listening) = self.signal.listening.lock() else {
            return;
        };
        if *listening {
            return;
        }
        *listening = true;
        tokio::spawn(listen(
            self.pool.clone(),
            Arc::clone(&self.channel),
            Arc::downgrade(&self.signal),
        ));
    }
}

/// Bump the signal; false once the store is gone.
fn wake(signal: &Weak<Signal>) -> bool {
    match signal.upgrade() {
        Some(s) => {
            s.tx.send_modify(|n| *n = n.wrapping_add(1));
            true
        }
        None => false,
    }
}

/// `LISTEN` on `channel` and bump the signal on every notification; reconnect after failures
/// (and bump then too: notifications sent while disconnected are lost). Ends when the pool is
/// closed or the store dropped.
async fn listen(pool: PgPool, channel: Arc<str>, signal: Weak<Signal>) {
    loop {
        if pool.is_closed() || signal.strong_count() == 0 {
            return;
        }
        let connected = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(&channel).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match connected {
            Ok(mut l) => {
                if !wake(&signal) {
                    return;
                }
                loop {
                    match l.try_recv().await {
                        // A notification, or a lost connection that the listener re-established
                        // (missed notifications: wake anyway).
                        Ok(_) => {
                            if !wake(&signal) {
                                return;
                            }
                        }
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "store change listener lost its connection");
                            break;
                        }
                    }
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => tracing::debug!(error = %e, "store change listener cannot connect"),
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

impl Store for PgStore {
    fn load_all(&self) -> BoxFut<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            // Unordered: PostgreSQL's sort of a million documents costs seconds of a cold start;
            // the keys are sorted here instead (the trait's order, as SQLite gives it).
            let rows = sqlx::query("SELECT kind, account, id, doc, version FROM records")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            let mut out = rows
                .iter()
                .map(|r| {
                    Ok(Record {
                        kind: r.try_get(0).map_err(backend)?,
                        account: r.try_get(1).map_err(backend)?,
                        id: r.try_get(2).map_err(backend)?,
                        doc: r.try_get(3).map_err(backend)?,
                        version: r.try_get(4).map_err(backend)?,
                    })
                })
                .collect::<Result<Vec<Record>, StoreError>>()?;
            drop(rows);
            out.sort_unstable_by(|a, b| {
                (&a.kind, &a.account, &a.id).cmp(&(&b.kind, &b.account, &b.id))
            });
            Ok(out)
        })
    }

    fn for_each_record<'a>(
        &'a self,
        sink: crate::RecordSink<'a>,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            use futures_util::TryStreamExt as _;
            // Rows are decoded as they arrive, borrowed from the row buffer: no second copy of a
            // million documents, and the server's sending overlaps the replica's decoding.
            let mut rows = sqlx::query("SELECT kind, account, id, doc, version FROM records")
                .fetch(&self.pool);
            while let Some(row) = rows.try_next().await.map_err(backend)? {
                let r = crate::RecordRef {
                    kind: row.try_get(0).map_err(backend)?,
                    account: row.try_get(1).map_err(backend)?,
                    id: row.try_get(2).map_err(backend)?,
                    doc: row.try_get(3).map_err(backend)?,
                    version: row.try_get(4).map_err(backend)?,
                };
                if sink(r).is_break() {
                    break;
                }
            }
            Ok(())
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
            let seq = apply_writes::<Postgres>(&mut *tx, writes, now_unix).await?;
            // Delivered to listeners when (and only if) the transaction commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&*self.channel)
                .bind(seq.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
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
            // One snapshot for the horizon and the changes. Tombstones come first at equal seq
            // (a key deleted and inserted again in one batch is present).
            let mut tx = self.pool.begin().await.map_err(backend)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let horizon: i64 = sqlx::query_scalar("SELECT seq FROM feed_horizon WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            if cursor < horizon {
                // Tombstones after the cursor may be gone: the feed cannot be trusted from here.
                return Ok(ChangeSet {
                    changes: Vec::new(),
                    cursor,
                    expired: true,
                });
            }
            let rows = sqlx::query(
                "SELECT seq, 0 AS ord, kind, account, id, NULL::text AS doc, 0::bigint AS version FROM tombstones WHERE seq > $1 \
                 UNION ALL \
                 SELECT seq, 1 AS ord, kind, account, id, doc, version FROM records WHERE seq > $1 \
                 ORDER BY 1, 2",
            )
            .bind(cursor)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            let mut set = ChangeSet {
                changes: Vec::with_capacity(rows.len()),
                cursor,
                expired: false,
            };
            for r in &rows {
                let seq: i64 = r.try_get(0).map_err(backend)?;
                set.cursor = set.cursor.max(seq);
                let kind: String = r.try_get(2).map_err(backend)?;
                let account: String = r.try_get(3).map_err(backend)?;
                let id: String = r.try_get(4).map_err(backend)?;
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

    fn prune_tombstones(&self, deleted_before_unix: i64) -> BoxFut<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(backend)?;
            let (pruned, highest): (i64, Option<i64>) = sqlx::query_as(
                "WITH gone AS (DELETE FROM tombstones WHERE deleted_at < $1 RETURNING seq) \
                 SELECT count(*), max(seq) FROM gone",
            )
            .bind(deleted_before_unix)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            if let Some(h) = highest {
                sqlx::query("UPDATE feed_horizon SET seq = GREATEST(seq, $1) WHERE id = 1")
                    .bind(h)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(u64::try_from(pruned).unwrap_or(0))
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn append_audit<'a>(&'a self, rows: &'a [AuditRow]) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(audit::postgres::append(&self.pool, rows))
    }

    fn lookup_audit<'a>(&'a self, q: &'a AuditQuery) -> BoxFut<'a, Result<AuditPage, StoreError>> {
        Box::pin(audit::postgres::lookup(&self.pool, q))
    }

    fn prune_audit(&self, before_ms: i64) -> BoxFut<'_, Result<u64, StoreError>> {
        Box::pin(audit::postgres::prune(&self.pool, before_ms))
    }

    fn watch(&self) -> Option<watch::Receiver<u64>> {
        self.start_listener();
        Some(self.signal.tx.subscribe())
    }
}
