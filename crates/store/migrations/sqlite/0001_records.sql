-- podiam store, migration 1 (append-only: never edit a shipped migration, add a new file).
-- Every entity is a versioned JSON record addressed by (kind, account, id).
CREATE TABLE records (
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    doc        TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, account, id)
);
