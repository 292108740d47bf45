//! The one loop that applies a batch of writes, shared by both backends: only the SQL text of
//! each statement (the placeholder dialect) differs between SQLite and PostgreSQL.

use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use crate::{StoreError, Write, backend, conflict};

/// The statements of a batch, in a backend's dialect. Every backend binds their parameters in
/// the order written here.
pub(crate) struct BatchSql {
    /// Takes the next batch number and locks the counter until commit; returns the number.
    pub next_seq: &'static str,
    /// kind, account, id, doc, updated_at, seq; affects no row if the key exists.
    pub insert: &'static str,
    /// doc, updated_at, seq, kind, account, id, expected version.
    pub update: &'static str,
    /// kind, account, id, expected version.
    pub delete: &'static str,
    /// kind, account, id, seq, deleted_at; replaces an older tombstone of the key.
    pub tombstone: &'static str,
}

/// A backend whose batches [`apply_writes`] applies.
pub(crate) trait BatchBackend: Database {
    /// The backend's statements.
    const SQL: BatchSql;
    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// Apply `writes` in order inside the open transaction `tx`, each one conditional; returns the
/// batch's change sequence number. The first write that does not hold returns its
/// [`StoreError::Conflict`]: the caller then drops the transaction, which rolls every earlier
/// write of the batch back.
pub(crate) async fn apply_writes<DB>(
    tx: &mut DB::Connection,
    writes: &[Write],
    now_unix: i64,
) -> Result<i64, StoreError>
where
    DB: BatchBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let sql = &DB::SQL;
    // First statement: the counter's row lock is held until commit, so batches commit in seq
    // order (what makes the change feed gap-free).
    let seq: i64 = sqlx::query_scalar::<DB, i64>(sql.next_seq)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    for w in writes {
        let affected = match w {
            Write::Insert {
                kind,
                account,
                id,
                doc,
            } => sqlx::query::<DB>(sql.insert)
                .bind(kind.as_str())
                .bind(account.as_str())
                .bind(id.as_str())
                .bind(doc.as_str())
                .bind(now_unix)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(backend)?,
            Write::Update {
                kind,
                account,
                id,
                doc,
                expect_version,
            } => sqlx::query::<DB>(sql.update)
                .bind(doc.as_str())
                .bind(now_unix)
                .bind(seq)
                .bind(kind.as_str())
                .bind(account.as_str())
                .bind(id.as_str())
                .bind(*expect_version)
                .execute(&mut *tx)
                .await
                .map_err(backend)?,
            Write::Delete {
                kind,
                account,
                id,
                expect_version,
            } => {
                let deleted = sqlx::query::<DB>(sql.delete)
                    .bind(kind.as_str())
                    .bind(account.as_str())
                    .bind(id.as_str())
                    .bind(*expect_version)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                if DB::rows_affected(&deleted) == 1 {
                    sqlx::query::<DB>(sql.tombstone)
                        .bind(kind.as_str())
                        .bind(account.as_str())
                        .bind(id.as_str())
                        .bind(seq)
                        .bind(now_unix)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                deleted
            }
        };
        if DB::rows_affected(&affected) != 1 {
            return Err(conflict(w));
        }
    }
    Ok(seq)
}
