-- podiam store, migration 3: tombstones are pruned once old. feed_horizon holds the highest seq
-- whose tombstone may have been deleted: a follower whose cursor is below it cannot learn every
-- deletion from the feed and reloads everything instead.
CREATE TABLE feed_horizon (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);
INSERT INTO feed_horizon (id, seq) VALUES (1, 0);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);
