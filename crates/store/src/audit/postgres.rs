//! The audit log on PostgreSQL: a batch is two statements whatever its size, the rows passed as
//! one array per column and expanded by `UNNEST` (no bind-parameter limit, one cached plan).
//! Pruning replicas take turns (an advisory lock per chunk), so that they never wait on each
//! other's row locks in opposite orders.

use std::collections::HashSet;

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::{
    AuditPage, AuditQuery, AuditRow, Bind, Dialect, FIRST_ACCOUNT, NEXT_ACCOUNT, PRUNE_CHUNK,
    PRUNE_EVENTS, clean_query, clean_rows, decode_resources, encode_resources, lookup_sql, page,
    resource_keys,
};
use crate::{StoreError, backend};

/// Key of the transaction-level advisory lock that serializes pruning transactions of
/// replicas ("podaud" in ASCII; distinct from the migration lock).
const PRUNE_LOCK: i64 = 0x706f_6461_7564;

/// Inserts the events of the arrays `$1..$10`, skipping those that exist; returns the inserted.
const INSERT_EVENTS: &str = "INSERT INTO audit_events (account, event_id, event_time, \
     event_name, event_source, username, access_key_id, read_only, resources, record) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::boolean[], $9::text[], $10::text[]) \
     ON CONFLICT DO NOTHING RETURNING account, event_id";

/// Inserts the resource rows of the arrays `$1..$5`.
const INSERT_RESOURCES: &str = "INSERT INTO audit_resources (account, rname, rtype, \
     event_time, event_id) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) \
     ON CONFLICT DO NOTHING";

/// Deletes account `$1`'s resource rows keyed by the arrays `$2..$4`.
const DELETE_RESOURCES: &str = "DELETE FROM audit_resources r \
     USING UNNEST($2::text[], $3::bigint[], $4::text[]) AS d(rname, event_time, event_id) \
     WHERE r.account = $1 AND r.rname = d.rname AND r.event_time = d.event_time \
     AND r.event_id = d.event_id";

/// Writes `rows` in one transaction; events already stored (same account and id) are skipped,
/// with their resources.
pub(crate) async fn append(pool: &PgPool, rows: &[AuditRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = &*clean_rows(rows);
    let resources = rows
        .iter()
        .map(|r| encode_resources(&r.resources))
        .collect::<Result<Vec<String>, StoreError>>()?;
    let col = |f: fn(&AuditRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let mut tx = pool.begin().await.map_err(backend)?;
    let inserted: Vec<(String, String)> = sqlx::query_as(INSERT_EVENTS)
        .bind(col(|r| &r.account))
        .bind(col(|r| &r.event_id))
        .bind(rows.iter().map(|r| r.event_time_ms).collect::<Vec<i64>>())
        .bind(col(|r| &r.event_name))
        .bind(col(|r| &r.event_source))
        .bind(col(|r| &r.username))
        .bind(col(|r| &r.access_key_id))
        .bind(rows.iter().map(|r| r.read_only).collect::<Vec<bool>>())
        .bind(resources.iter().map(String::as_str).collect::<Vec<&str>>())
        .bind(col(|r| &r.record))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    let mut inserted: HashSet<(String, String)> = inserted.into_iter().collect();
    // Resource rows of the inserted events (of the first copy, if a batch repeats an event).
    let mut accounts: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut types: Vec<&str> = Vec::new();
    let mut times: Vec<i64> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for r in rows {
        if inserted.is_empty() {
            break;
        }
        if inserted.remove(&(r.account.clone(), r.event_id.clone())) {
            for (rname, rtype) in resource_keys(&r.resources) {
                accounts.push(&r.account);
                names.push(rname);
                types.push(rtype);
                times.push(r.event_time_ms);
                ids.push(&r.event_id);
            }
        }
    }
    if !names.is_empty() {
        sqlx::query(INSERT_RESOURCES)
            .bind(accounts)
            .bind(names)
            .bind(types)
            .bind(times)
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

/// One page of a lookup.
pub(crate) async fn lookup(pool: &PgPool, q: &AuditQuery) -> Result<AuditPage, StoreError> {
    let q = &*clean_query(q);
    let Some(l) = lookup_sql(q, Dialect::Postgres) else {
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

/// An event read with the columns of [`super::EVENT_COLUMNS`].
fn decode_row(r: &PgRow) -> Result<AuditRow, StoreError> {
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
/// most [`PRUNE_CHUNK`] events per transaction; returns how many events this call deleted
/// (replicas pruning at once share the work).
pub(crate) async fn prune(pool: &PgPool, before_ms: i64) -> Result<u64, StoreError> {
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
async fn prune_chunk(pool: &PgPool, account: &str, before_ms: i64) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    // Another replica's chunk commits first; this one then selects what is left.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PRUNE_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let gone: Vec<(i64, String, String)> = sqlx::query_as(PRUNE_EVENTS)
        .bind(account)
        .bind(before_ms)
        .bind(PRUNE_CHUNK)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    let mut names: Vec<String> = Vec::new();
    let mut times: Vec<i64> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for (time, id, resources) in &gone {
        for (rname, _) in resource_keys(&decode_resources(resources)?) {
            names.push(rname.to_owned());
            times.push(*time);
            ids.push(id);
        }
    }
    if !names.is_empty() {
        sqlx::query(DELETE_RESOURCES)
            .bind(account)
            .bind(names)
            .bind(times)
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
}

/// The column lists the statements above spell out, checked against the shared ones.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EVENT_COLUMNS, RESOURCE_COLUMNS};

    #[test]
    fn statements_list_the_shared_columns() {
        assert!(INSERT_EVENTS.contains(&format!("({EVENT_COLUMNS})")));
        assert!(INSERT_RESOURCES.contains(&format!("({RESOURCE_COLUMNS})")));
    }
}
