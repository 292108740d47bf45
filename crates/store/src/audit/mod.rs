//! The audit event log (what CloudTrail's `LookupEvents` reads): an append-only table of events,
//! apart from the records and the change feed (events never show in [`crate::Store::load_all`]
//! or [`crate::Store::changes_since`], and writing them never takes the change-feed counter).
//!
//! # Layout
//!
//! Both backends keep two tables (migration `0003_audit.sql` on SQLite, `0004_audit.sql` on
//! PostgreSQL):
//!
//! - `audit_events`, one row per (account, event). On PostgreSQL its primary key is
//!   `(account, event_time, event_id)`; on SQLite it is a rowid table (rows appended at its end,
//!   records kept off overflow pages) with an index on `(account, event_time, event_id)`: either
//!   way, the newest-first order of a lookup within one account. A unique index on
//!   `(account, event_id)` makes a retried event a no-op and serves the `EventId` lookup; a
//!   partial index on `(account, access_key_id, event_time, event_id)` of the events that have a
//!   key serves the signed half of the `AccessKeyId` lookup. The event's resources are kept in
//!   the row too, as JSON, so that a page of events is read by one statement.
//! - `audit_resources`, one row per distinct resource name of an event, keyed by
//!   `(account, rname, event_time, event_id)`: the `ResourceName` lookup, in time order, and
//!   the issued half of the `AccessKeyId` lookup (an event that issued a key names it as a
//!   resource of type [`ISSUED_KEY_TYPE`]); the two halves are merged by one `UNION`.
//!
//! So an event costs the table's row and two index entries, a third when it has an access key,
//! and one row per resource name. The other attributes (`EventName`, `EventSource`, `Username`, `ReadOnly`,
//! `ResourceType`) are not indexed: they match large shares of an account's events, and their
//! lookups read the account's events newest first, filtering, until the page is full.
//!
//! Rows are inserted many per statement (multi-row `VALUES` on SQLite, arrays through `UNNEST`
//! on PostgreSQL): per-statement costs dwarf a row's.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::borrow::Cow;

use crate::{StoreError, backend};

/// One audit event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// The account the event is visible to (a `LookupEvents` caller only ever sees its own
    /// account's events). An event visible to two accounts is written as two rows.
    pub account: String,
    /// Time-ordered unique id (the caller passes a UUIDv7 string, lower-case hyphenated; its
    /// byte order is its time order). Unique within the account; must not be empty.
    pub event_id: String,
    /// Event time, milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// The API action, e.g. `AssumeRoleWithWebIdentity`.
    pub event_name: String,
    /// The service, e.g. `sts.amazonaws.com`.
    pub event_source: String,
    /// The caller's user name, `""` when none.
    pub username: String,
    /// The access key the caller signed with, `""` when none.
    pub access_key_id: String,
    /// Whether the action only reads.
    pub read_only: bool,
    /// (resource type, resource name) pairs, e.g. `("AWS::IAM::Role",
    /// "arn:aws:iam::1:role/r")`. Names must not be empty.
    pub resources: Vec<(String, String)>,
    /// The full CloudTrail JSON record, opaque to the store.
    pub record: String,
}

/// The one lookup attribute of a query (CloudTrail allows at most one). Each matches exactly;
/// a value of `""` matches no event (`""` is how a row says "none").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditAttr {
    /// The event's id (indexed).
    EventId(String),
    /// The event's name (not indexed: read in time order, filtered).
    EventName(String),
    /// The caller's user name (not indexed).
    Username(String),
    /// Any of the event's resource names (indexed).
    ResourceName(String),
    /// Any of the event's resource types (not indexed).
    ResourceType(String),
    /// An access key: the events the caller signed with it, and the events that issued it (those
    /// with a resource of type [`ISSUED_KEY_TYPE`] named by the key). Both indexed.
    AccessKeyId(String),
    /// The service (not indexed).
    EventSource(String),
    /// The read-only flag (not indexed).
    ReadOnly(bool),
}

impl AuditAttr {
    /// The value, when it is text (every attribute but `ReadOnly`).
    fn text(&self) -> Option<&str> {
        match self {
            Self::EventId(v)
            | Self::EventName(v)
            | Self::Username(v)
            | Self::ResourceName(v)
            | Self::ResourceType(v)
            | Self::AccessKeyId(v)
            | Self::EventSource(v) => Some(v),
            Self::ReadOnly(_) => None,
        }
    }

    fn text_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::EventId(v)
            | Self::EventName(v)
            | Self::Username(v)
            | Self::ResourceName(v)
            | Self::ResourceType(v)
            | Self::AccessKeyId(v)
            | Self::EventSource(v) => Some(v),
            Self::ReadOnly(_) => None,
        }
    }
}

/// A lookup: one account's events, newest first, optionally filtered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this account's events.
    pub account: String,
    /// The attribute to match, if any.
    pub attr: Option<AuditAttr>,
    /// Only events at or after this time (milliseconds since the epoch).
    pub start_ms: Option<i64>,
    /// Only events at or before this time.
    pub end_ms: Option<i64>,
    /// Page size (1..=1000; the caller validates; 0 returns an empty page).
    pub limit: usize,
    /// Continue strictly after this position (the previous page's [`AuditPage::next`]).
    pub after: Option<AuditCursor>,
}

/// A position in the newest-first order: `(event_time_ms, event_id)` of the last row returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    /// The row's event time.
    pub event_time_ms: i64,
    /// The row's event id.
    pub event_id: String,
}

/// One page of a lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// The matching events, newest first: by `(event_time_ms, event_id)` descending.
    pub rows: Vec<AuditRow>,
    /// Where the next page starts: `Some` if and only if more rows match.
    pub next: Option<AuditCursor>,
}

/// The resource type under which an event names the access key it issued, so that an
/// [`AuditAttr::AccessKeyId`] lookup finds where a key came from as well as what it did.
pub const ISSUED_KEY_TYPE: &str = "AWS::IAM::AccessKey";

/// The columns of `audit_events` in the order the statements here read and write them.
pub(crate) const EVENT_COLUMNS: &str = "account, event_id, event_time, event_name, event_source, \
     username, access_key_id, read_only, resources, record";

/// The columns of `audit_resources` in the order the statements here write them.
pub(crate) const RESOURCE_COLUMNS: &str = "account, rname, rtype, event_time, event_id";

/// How many events one pruning transaction deletes at most, so that a prune never holds the
/// database (SQLite's one writer) for long.
pub(crate) const PRUNE_CHUNK: i64 = 1000;

/// The first account that has events.
pub(crate) const FIRST_ACCOUNT: &str = "SELECT account FROM audit_events ORDER BY account LIMIT 1";

/// The account after `$1` that has events (one index probe: accounts are walked without
/// reading their events).
pub(crate) const NEXT_ACCOUNT: &str =
    "SELECT account FROM audit_events WHERE account > $1 ORDER BY account LIMIT 1";

/// Deletes the oldest (at most `$3`) events of account `$1` older than `$2`; returns their
/// keys and resources, whose `audit_resources` rows the caller deletes next.
pub(crate) const PRUNE_EVENTS: &str = "DELETE FROM audit_events WHERE account = $1 \
     AND (event_time, event_id) IN (SELECT event_time, event_id FROM audit_events \
     WHERE account = $1 AND event_time < $2 ORDER BY event_time, event_id LIMIT $3) \
     RETURNING event_time, event_id, resources";

/// A value bound to a lookup statement.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bind<'a> {
    /// A string.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A flag.
    Bool(bool),
}

/// Where the dialects differ in a lookup.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dialect {
    /// SQLite's JSON functions.
    Sqlite,
    /// PostgreSQL's.
    Postgres,
}

/// A lookup as one statement (`$n` placeholders, which both backends take) and its values.
#[derive(Debug)]
pub(crate) struct Lookup<'a> {
    /// The statement.
    pub sql: String,
    /// Its values, `$1` first.
    pub binds: Vec<Bind<'a>>,
}

impl<'a> Lookup<'a> {
    /// Adds a value; returns its placeholder.
    fn bind(&mut self, b: Bind<'a>) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

/// The statement of a lookup: it reads up to `limit + 1` rows (the extra row tells whether
/// there are more), with the columns of [`EVENT_COLUMNS`]. `None` when nothing can match (an
/// empty attribute value, a start after the end, a zero limit).
pub(crate) fn lookup_sql(q: &AuditQuery, dialect: Dialect) -> Option<Lookup<'_>> {
    let start = q.start_ms.unwrap_or(i64::MIN);
    let end = q.end_ms.unwrap_or(i64::MAX);
    let empty_value = q
        .attr
        .as_ref()
        .and_then(AuditAttr::text)
        .is_some_and(str::is_empty);
    if q.limit == 0 || start > end || empty_value {
        return None;
    }
    let mut l = Lookup {
        sql: String::new(),
        binds: Vec::with_capacity(8),
    };
    let account = l.bind(Bind::Text(&q.account));
    let (start, end) = (l.bind(Bind::Int(start)), l.bind(Bind::Int(end)));
    let after = q.after.as_ref().map(|c| {
        (
            l.bind(Bind::Int(c.event_time_ms)),
            l.bind(Bind::Text(&c.event_id)),
        )
    });
    // The conditions on the walked table `k`: its account, the time range and the cursor.
    let range = |k: &str| {
        let mut c = format!(
            "{k}.account = {account} AND {k}.event_time >= {start} AND {k}.event_time <= {end}"
        );
        if let Some((t, id)) = &after {
            c.push_str(&format!(
                " AND ({k}.event_time, {k}.event_id) < ({t}, {id})"
            ));
        }
        c
    };
    let filter = match &q.attr {
        None => String::new(),
        Some(AuditAttr::EventId(v)) => format!(" AND e.event_id = {}", l.bind(Bind::Text(v))),
        Some(AuditAttr::EventName(v)) => {
            format!(" AND e.event_name = {}", l.bind(Bind::Text(v)))
        }
        Some(AuditAttr::Username(v)) => format!(" AND e.username = {}", l.bind(Bind::Text(v))),
        Some(AuditAttr::EventSource(v)) => {
            format!(" AND e.event_source = {}", l.bind(Bind::Text(v)))
        }
        Some(AuditAttr::ReadOnly(v)) => format!(" AND e.read_only = {}", l.bind(Bind::Bool(*v))),
        Some(AuditAttr::AccessKeyId(v) | AuditAttr::ResourceName(v)) => {
            // Bound once, used by the half (or halves) built below.
            l.bind(Bind::Text(v))
        }
        Some(AuditAttr::ResourceType(v)) => {
            let p = l.bind(Bind::Text(v));
            match dialect {
                Dialect::Sqlite => format!(
                    " AND EXISTS (SELECT 1 FROM json_each(e.resources) AS x WHERE json_extract(x.value, '$[0]') = {p})"
                ),
                Dialect::Postgres => format!(
                    " AND EXISTS (SELECT 1 FROM jsonb_array_elements(e.resources::jsonb) AS x(v) WHERE x.v ->> 0 = {p})"
                ),
            }
        }
    };
    let fetch = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let limit = l.bind(Bind::Int(fetch));
    let columns = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // A walk of `k`'s newest-first order, joined to the events when `k` is the resources.
    let walk = |k: &str, from: &str, cond: &str| {
        format!(
            "SELECT {columns} FROM {from} WHERE {} {cond} \
             ORDER BY {k}.event_time DESC, {k}.event_id DESC LIMIT {limit}",
            range(k)
        )
    };
    let by_resource = "audit_resources r JOIN audit_events e ON e.account = r.account \
         AND e.event_time = r.event_time AND e.event_id = r.event_id";
    l.sql = match &q.attr {
        Some(AuditAttr::ResourceName(_)) => {
            walk("r", by_resource, &format!("AND r.rname = {filter}"))
        }
        Some(AuditAttr::AccessKeyId(_)) => {
            // Without statistics SQLite may prefer walking the time index to the key index once
            // a cursor bounds both; the key index is the one that skips other keys' events. The
            // literal condition lets the planner use the partial index.
            let signed_from = match dialect {
                Dialect::Sqlite => "audit_events e INDEXED BY audit_events_key",
                Dialect::Postgres => "audit_events e",
            };
            let signed = walk(
                "e",
                signed_from,
                &format!("AND e.access_key_id = {filter} AND e.access_key_id <> ''"),
            );
            let issued = walk(
                "r",
                by_resource,
                &format!("AND r.rname = {filter} AND r.rtype = '{ISSUED_KEY_TYPE}'"),
            );
            // Each half reads at most a page in order; the union is ordered again.
            format!(
                "SELECT * FROM ({signed}) AS signed UNION SELECT * FROM ({issued}) AS issued \
                 ORDER BY event_time DESC, event_id DESC LIMIT {limit}"
            )
        }
        _ => walk("e", "audit_events e", &filter),
    };
    Some(l)
}

/// Text as both backends keep it: NUL, which PostgreSQL's `text` cannot hold, becomes U+FFFD,
/// in what is written and in what a lookup compares. Event fields come from callers (a token's
/// subject, a resource name); one of them must never make a batch of other callers' events fail.
fn clean(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{FFFD}");
    }
}

fn row_is_clean(r: &AuditRow) -> bool {
    let ok = |s: &String| !s.contains('\0');
    ok(&r.account)
        && ok(&r.event_id)
        && ok(&r.event_name)
        && ok(&r.event_source)
        && ok(&r.username)
        && ok(&r.access_key_id)
        && ok(&r.record)
        && r.resources.iter().all(|(t, n)| ok(t) && ok(n))
}

/// `rows` as stored (see [`clean`]): borrowed when nothing needs cleaning, as is usual.
pub(crate) fn clean_rows(rows: &[AuditRow]) -> Cow<'_, [AuditRow]> {
    if rows.iter().all(row_is_clean) {
        return Cow::Borrowed(rows);
    }
    Cow::Owned(
        rows.iter()
            .cloned()
            .map(|mut r| {
                for s in [
                    &mut r.account,
                    &mut r.event_id,
                    &mut r.event_name,
                    &mut r.event_source,
                    &mut r.username,
                    &mut r.access_key_id,
                    &mut r.record,
                ] {
                    clean(s);
                }
                for (t, n) in &mut r.resources {
                    clean(t);
                    clean(n);
                }
                r
            })
            .collect(),
    )
}

/// A query's values as stored (see [`clean`]).
pub(crate) fn clean_query(q: &AuditQuery) -> Cow<'_, AuditQuery> {
    let mut q = Cow::Borrowed(q);
    let dirty = |s: &str| s.contains('\0');
    let attr_dirty = q.attr.as_ref().and_then(AuditAttr::text).is_some_and(dirty);
    if dirty(&q.account) || attr_dirty || q.after.as_ref().is_some_and(|c| dirty(&c.event_id)) {
        let o = q.to_mut();
        clean(&mut o.account);
        if let Some(c) = &mut o.after {
            clean(&mut c.event_id);
        }
        if let Some(v) = o.attr.as_mut().and_then(AuditAttr::text_mut) {
            clean(v);
        }
    }
    q
}

/// The page of the `limit + 1` rows a lookup read: at most `limit` of them, and the cursor of
/// the last when there were more.
pub(crate) fn page(mut rows: Vec<AuditRow>, limit: usize) -> AuditPage {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|r| AuditCursor {
            event_time_ms: r.event_time_ms,
            event_id: r.event_id.clone(),
        })
    } else {
        None
    };
    AuditPage { rows, next }
}

/// The JSON of an event's resources (`[["type","name"],...]`), as the `resources` column holds.
pub(crate) fn encode_resources(resources: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(resources).map_err(backend)
}

/// The resources of a `resources` column.
pub(crate) fn decode_resources(json: &str) -> Result<Vec<(String, String)>, StoreError> {
    serde_json::from_str(json).map_err(backend)
}

/// The `audit_resources` rows of an event: each distinct resource name once, as (name, type).
pub(crate) fn resource_keys(resources: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(resources.len());
    for (rtype, rname) in resources {
        if !out.iter().any(|(n, _)| n == rname) {
            out.push((rname, rtype));
        }
    }
    out
}

/// The size of the next multi-row statement for `remaining` rows: the largest power of two
/// not above `remaining` nor `max`, so that a backend prepares (and caches) few distinct
/// statements.
pub(crate) fn chunk_len(remaining: usize, max: usize) -> usize {
    let n = remaining.min(max);
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// `head` followed by `rows` groups of `cols` placeholders (`(?, ...), (...)`) and `tail`.
///
/// The placeholders are SQLite's anonymous `?`, numbered after any in `head`: sqlx asks SQLite
/// the name of every parameter it binds, which SQLite finds by scanning the statement's named
/// parameters, so numbered `$N` placeholders made a 2,560-value insert quadratic (a quarter of
/// the writer's time went there).
pub(crate) fn values_sql(head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let mut s = String::with_capacity(head.len() + tail.len() + rows * (cols * 2 + 2));
    s.push_str(head);
    for i in 0..rows {
        s.push_str(if i == 0 { "(" } else { ",(" });
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('?');
        }
        s.push(')');
    }
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn chunks_are_powers_of_two() {
        assert_eq!(chunk_len(0, 256), 0);
        assert_eq!(chunk_len(1, 256), 1);
        assert_eq!(chunk_len(3, 256), 2);
        assert_eq!(chunk_len(255, 256), 128);
        assert_eq!(chunk_len(256, 256), 256);
        assert_eq!(chunk_len(10_000, 256), 256);
    }

    #[test]
    fn values_are_anonymous_placeholders() {
        assert_eq!(values_sql("V ", 2, 2, " T"), "V (?,?),(?,?) T".to_owned());
    }

    #[test]
    fn nothing_can_match_without_a_statement() {
        let q = |attr, start, end, limit| AuditQuery {
            account: "1".into(),
            attr,
            start_ms: start,
            end_ms: end,
            limit,
            after: None,
        };
        assert!(lookup_sql(&q(None, None, None, 0), Dialect::Sqlite).is_none());
        assert!(lookup_sql(&q(None, Some(2), Some(1), 5), Dialect::Sqlite).is_none());
        assert!(
            lookup_sql(
                &q(Some(AuditAttr::Username(String::new())), None, None, 5),
                Dialect::Sqlite
            )
            .is_none()
        );
        let one = q(None, Some(1), Some(1), 5);
        let l = lookup_sql(&one, Dialect::Postgres).unwrap();
        assert_eq!(l.binds.len(), 4);
    }

    #[test]
    fn resource_names_are_kept_once() {
        let r = vec![
            ("T1".to_owned(), "n".to_owned()),
            ("T2".to_owned(), "n".to_owned()),
            ("T1".to_owned(), "m".to_owned()),
        ];
        assert_eq!(resource_keys(&r), vec![("n", "T1"), ("m", "T1")]);
        assert_eq!(decode_resources(&encode_resources(&r).unwrap()).unwrap(), r);
    }
}
