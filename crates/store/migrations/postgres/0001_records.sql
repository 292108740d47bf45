-- podiam store, migration 1 (append-only: never edit a shipped migration, add a new file).
-- Every entity is a versioned JSON record addressed by (kind, account, id). The document is
-- kept as text, exactly as written.
CREATE TABLE records (
    kind       TEXT   NOT NULL,
    account    TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    doc        TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, account, id)
);
