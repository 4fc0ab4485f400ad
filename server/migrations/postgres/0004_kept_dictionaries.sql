-- Documents and changes kept as zstd frames (SQLite's migration 9; issue 15, server disk): the
-- dictionaries they are compressed with, by zstd's id for each (which every frame names), in
-- the order they were trained. Rows written before stay readable as they are
-- (server/src/storage/at_rest.rs).
CREATE TABLE kept_dictionaries (
    id BIGINT PRIMARY KEY,
    dictionary BYTEA NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
