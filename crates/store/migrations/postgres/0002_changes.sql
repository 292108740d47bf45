-- podiam store, migration 2: the change feed that replicas follow.
-- Every batch takes the next value of change_seq (holding its row lock until it commits, so
-- batches commit in seq order); written records carry it in `seq`; deleted keys leave a
-- tombstone. Commits also NOTIFY channel `podiam_changes` with the new seq.
ALTER TABLE records ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX records_seq ON records (seq);
CREATE TABLE tombstones (
    kind       TEXT   NOT NULL,
    account    TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (kind, account, id)
);
CREATE INDEX tombstones_seq ON tombstones (seq);
CREATE TABLE change_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT  NOT NULL
);
INSERT INTO change_seq (id, value) VALUES (1, 0);
