//! The audit log on SQLite: multi-row `INSERT ... VALUES` statements, each chunk a power of two
//! in size (few distinct statements to prepare and cache) and well under SQLite's limit of
//! 32766 bound values.

use std::collections::HashSet;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::{
    AuditPage, AuditQuery, AuditRow, Bind, Dialect, EVENT_COLUMNS, FIRST_ACCOUNT, NEXT_ACCOUNT,
    PRUNE_CHUNK, PRUNE_EVENTS, RESOURCE_COLUMNS, chunk_len, clean_query, clean_rows,
    decode_resources, encode_resources, lookup_sql, page, resource_keys, values_sql,
};
use crate::{StoreError, backend};

/// Events per insert statement (10 values each).
const EVENT_CHUNK: usize = 256;
/// Resource rows per insert or delete statement (5 values each).
const RESOURCE_CHUNK: usize = 512;

/// Deletes the account's (the first parameter) resource rows of the keys that follow:
/// `values_sql` appends the `(?, ?, ?), ...` (name, time, id) groups and the closing
/// parenthesis.
pub(crate) const DELETE_RESOURCES_HEAD: &str = "DELETE FROM audit_resources WHERE account = ? \
     AND (rname, event_time, event_id) IN (VALUES ";

/// Writes `rows` in one transaction; events already stored (same account and id) are skipped,
/// with their resources.
pub(crate) async fn append(pool: &SqlitePool, rows: &[AuditRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = &*clean_rows(rows);
    let encoded = rows
        .iter()
        .map(|r| Ok((r, encode_resources(&r.resources)?)))
        .collect::<Result<Vec<(&AuditRow, String)>, StoreError>>()?;
    let head = format!("INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES ");
    let mut tx = pool.begin().await.map_err(backend)?;
    // The events this batch inserted (RETURNING skips those that existed).
    let mut inserted: HashSet<(String, String)> = HashSet::with_capacity(rows.len());
    let mut rest = encoded.as_slice();
    while let Some((chunk, tail)) = rest.split_at_checked(chunk_len(rest.len(), EVENT_CHUNK)) {
        if chunk.is_empty() {
            break;
        }
        rest = tail;
        let sql = values_sql(
            &head,
            10,
            chunk.len(),
            " ON CONFLICT DO NOTHING RETURNING account, event_id",
        );
        let mut q = sqlx::query(&sql);
        for (r, resources) in chunk {
            q = q
                .bind(r.account.as_str())
                .bind(r.event_id.as_str())
                .bind(r.event_time_ms)
                .bind(r.event_name.as_str())
                .bind(r.event_source.as_str())
                .bind(r.username.as_str())
                .bind(r.access_key_id.as_str())
                .bind(r.read_only)
                .bind(resources.as_str())
                .bind(r.record.as_str());
        }
        for row in q.fetch_all(&mut *tx).await.map_err(backend)? {
            inserted.insert((
                row.try_get(0).map_err(backend)?,
                row.try_get(1).map_err(backend)?,
            ));
        }
    }
    // Resource rows of the inserted events (of the first copy, if a batch repeats an event).
    let mut resources: Vec<(&AuditRow, &str, &str)> = Vec::new();
    for r in rows {
        if inserted.is_empty() {
            break;
        }
        if inserted.remove(&(r.account.clone(), r.event_id.clone())) {
            for (rname, rtype) in resource_keys(&r.resources) {
                resources.push((r, rname, rtype));
            }
        }
    }
    let head = format!("INSERT INTO audit_resources ({RESOURCE_COLUMNS}) VALUES ");
    let mut rest = resources.as_slice();
    while let Some((chunk, tail)) = rest.split_at_checked(chunk_len(rest.len(), RESOURCE_CHUNK)) {
        if chunk.is_empty() {
            break;
        }
        rest = tail;
        let sql = values_sql(&head, 5, chunk.len(), " ON CONFLICT DO NOTHING");
        let mut q = sqlx::query(&sql);
        for (r, rname, rtype) in chunk {
            q = q
                .bind(r.account.as_str())
                .bind(*rname)
                .bind(*rtype)
                .bind(r.event_time_ms)
                .bind(r.event_id.as_str());
        }
        q.execute(&mut *tx).await.map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

/// One page of a lookup.
pub(crate) async fn lookup(pool: &SqlitePool, q: &AuditQuery) -> Result<AuditPage, StoreError> {
    let q = &*clean_query(q);
    let Some(l) = lookup_sql(q, Dialect::Sqlite) else {
        return Ok(AuditPage::default());
    };
    let mut query = sqlx::query(&l.sql);
    for b in &l.binds {
        query = match *b {
            Bind::Text(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
            Bind::Bool(v) => query.bind(v),
        };
    }
    let rows = query.fetch_all(pool).await.map_err(backend)?;
    let rows = rows
        .iter()
        .map(decode_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(page(rows, q.limit))
}

/// An event read with the columns of [`EVENT_COLUMNS`].
fn decode_row(r: &SqliteRow) -> Result<AuditRow, StoreError> {
    let resources: String = r.try_get(8).map_err(backend)?;
    Ok(AuditRow {
        account: r.try_get(0).map_err(backend)?,
        event_id: r.try_get(1).map_err(backend)?,
        event_time_ms: r.try_get(2).map_err(backend)?,
        event_name: r.try_get(3).map_err(backend)?,
        event_source: r.try_get(4).map_err(backend)?,
        username: r.try_get(5).map_err(backend)?,
        access_key_id: r.try_get(6).map_err(backend)?,
        read_only: r.try_get(7).map_err(backend)?,
        resources: decode_resources(&resources)?,
        record: r.try_get(9).map_err(backend)?,
    })
}

/// Deletes the events older than `before_ms` and their resource rows, account by account, at
/// most [`PRUNE_CHUNK`] events per transaction; returns how many events went.
pub(crate) async fn prune(pool: &SqlitePool, before_ms: i64) -> Result<u64, StoreError> {
    let mut total = 0u64;
    let mut account: Option<String> = sqlx::query_scalar(FIRST_ACCOUNT)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    while let Some(acct) = account {
        loop {
            let n = prune_chunk(pool, &acct, before_ms).await?;
            total = total.saturating_add(n);
            if n < PRUNE_CHUNK.unsigned_abs() {
                break;
            }
        }
        account = sqlx::query_scalar(NEXT_ACCOUNT)
            .bind(&acct)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    }
    Ok(total)
}

/// One transaction of [`prune`]: up to [`PRUNE_CHUNK`] of `account`'s oldest events.
async fn prune_chunk(pool: &SqlitePool, account: &str, before_ms: i64) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let gone: Vec<(i64, String, String)> = sqlx::query_as(PRUNE_EVENTS)
        .bind(account)
        .bind(before_ms)
        .bind(PRUNE_CHUNK)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    let mut keys: Vec<(String, i64, &str)> = Vec::new();
    for (time, id, resources) in &gone {
        for (rname, _) in resource_keys(&decode_resources(resources)?) {
            keys.push((rname.to_owned(), *time, id));
        }
    }
    let mut rest = keys.as_slice();
    while let Some((chunk, tail)) = rest.split_at_checked(chunk_len(rest.len(), RESOURCE_CHUNK)) {
        if chunk.is_empty() {
            break;
        }
        rest = tail;
        let sql = values_sql(DELETE_RESOURCES_HEAD, 3, chunk.len(), ")");
        let mut q = sqlx::query(&sql).bind(account);
        for (rname, time, id) in chunk {
            q = q.bind(rname.as_str()).bind(*time).bind(*id);
        }
        q.execute(&mut *tx).await.map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
}
