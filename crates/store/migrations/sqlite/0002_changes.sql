-- podiam store, migration 2: the change feed that replicas follow.
-- Every batch takes the next value of change_seq (holding its row until it commits, so batches
-- commit in seq order); written records carry it in `seq`; deleted keys leave a tombstone.
ALTER TABLE records ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX records_seq ON records (seq);
CREATE TABLE tombstones (
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (kind, account, id)
);
CREATE INDEX tombstones_seq ON tombstones (seq);
CREATE TABLE change_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO change_seq (id, value) VALUES (1, 0);
