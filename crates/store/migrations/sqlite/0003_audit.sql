-- podiam store, migration 3: the audit event log (CloudTrail LookupEvents), apart from the
-- records and the change feed. Append-only but for pruning by age. One row per (account, event),
-- in a rowid table: rows are appended at its end, and the CloudTrail record (1-2 KB) stays on
-- the table's leaf pages. (Clustering the rows by (account, event_time, event_id) WITHOUT ROWID
-- saves an index but spills every such record to an overflow page: measured, it wrote half as
-- many events per second into twice the space.) `resources` is the event's (type, name) pairs
-- as a JSON array of two-element arrays.
CREATE TABLE audit_events (
    account       TEXT    NOT NULL,
    event_time    INTEGER NOT NULL,
    event_id      TEXT    NOT NULL CHECK (event_id <> ''),
    event_name    TEXT    NOT NULL,
    event_source  TEXT    NOT NULL,
    username      TEXT    NOT NULL,
    access_key_id TEXT    NOT NULL,
    read_only     INTEGER NOT NULL,
    resources     TEXT    NOT NULL,
    record        TEXT    NOT NULL
);
-- The newest-first order of a lookup within an account; a lookup without a selective attribute
-- walks it.
CREATE INDEX audit_events_time ON audit_events (account, event_time, event_id);
-- An event id is unique within its account (what makes a retried batch harmless), and the
-- EventId lookup.
CREATE UNIQUE INDEX audit_events_id ON audit_events (account, event_id);
-- The AccessKeyId lookup; events without a key (most) are not indexed.
CREATE INDEX audit_events_key ON audit_events (account, access_key_id, event_time, event_id)
    WHERE access_key_id <> '';
-- The ResourceName lookup: one row per distinct resource name of an event.
CREATE TABLE audit_resources (
    account    TEXT    NOT NULL,
    rname      TEXT    NOT NULL CHECK (rname <> ''),
    rtype      TEXT    NOT NULL,
    event_time INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    PRIMARY KEY (account, rname, event_time, event_id)
) WITHOUT ROWID;
