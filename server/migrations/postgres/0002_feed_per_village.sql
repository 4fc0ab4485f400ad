-- The feed numbered per village, facts derived from a queue (SQLite's migration 7; issue 14). A
-- change's position is counted per village from the village's head row, bumped in the transaction
-- that inserts the change, so positions commit in order under concurrent writers. Facts are
-- recomputed for the households in facts_stale. The duplicate fold's tables are named for it.
ALTER TABLE changes ADD COLUMN pos BIGINT;
UPDATE changes SET pos = seq;
CREATE UNIQUE INDEX changes_village_pos ON changes (village, pos);
DROP INDEX changes_village_seq;
CREATE TABLE feed_heads (
    village TEXT COLLATE "C" PRIMARY KEY,
    head BIGINT NOT NULL
);
CREATE TABLE feed_floor (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    floor BIGINT NOT NULL
);
INSERT INTO feed_floor (id, floor) VALUES (1, COALESCE((SELECT max(seq) FROM changes), 0));
ALTER TABLE households ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE TABLE facts_stale (
    household_id TEXT COLLATE "C" PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO facts_stale (household_id, version)
    SELECT h.id, h.version FROM households h LEFT JOIN household_facts f ON f.household_id = h.id
    WHERE f.seq IS NULL OR f.seq < h.updated_seq;
UPDATE household_facts SET seq = 1;
ALTER TABLE household_facts RENAME COLUMN seq TO version;
DROP TABLE facts_watermark;
DROP INDEX households_updated;
ALTER TABLE households RENAME COLUMN updated_seq TO updated_pos;
ALTER TABLE merges RENAME TO folds;
ALTER TABLE merge_conflicts RENAME TO fold_disagreements;
