-- Households rebuilt compactly (issue 15, server disk): every sync rewrites a household's row, so
-- each byte of it is written once per visit and left behind once per dead version. Heads (the
-- document's change hashes, comma-separated hex in SQLite) are kept as their concatenated 32-byte
-- hashes, the two times (whole seconds, UTC) as `timestamptz`, and fixed-width columns come
-- first so that no padding sits between them: 553 → 486 bytes a row on average at the end of
-- `pilar-bench sync`. The server converts them where it binds and reads them; in SQL,
-- `pilar_heads_bytes`, `pilar_heads_text` and `pilar_time_text` give SQLite's text back
-- (`pilar-server migrate` converts and verifies them: postgres_schema::COMPACT_COLUMNS).
--
-- The feed's hash index is rebuilt full (fillfactor 100): a lookup still reads one bucket, and
-- the index holds 5,900 hashes in 205 KB instead of 311 KB.
CREATE FUNCTION pilar_heads_bytes(heads TEXT) RETURNS BYTEA LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT decode(replace(heads, ',', ''), 'hex')
$$;
CREATE FUNCTION pilar_heads_text(heads BYTEA) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT coalesce(string_agg(encode(substr(heads, i, 32), 'hex'), ',' ORDER BY i), '')
    FROM generate_series(1, length(heads), 32) AS i
$$;
CREATE TABLE households_compact (
    id UUID PRIMARY KEY,
    updated_pos BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ NOT NULL,
    -- When the household was first stored; set from updated_at when an insert leaves it out.
    created_at TIMESTAMPTZ,
    village TEXT COLLATE "C" NOT NULL,
    heads BYTEA NOT NULL,
    doc BYTEA NOT NULL
);
INSERT INTO households_compact (id, updated_pos, version, updated_at, created_at, village, heads, doc)
    SELECT id, updated_pos, version, updated_at::timestamptz, created_at::timestamptz, village,
        pilar_heads_bytes(heads), doc
    FROM households ORDER BY village, id;
DROP TABLE households;
ALTER TABLE households_compact RENAME TO households;
ALTER INDEX households_compact_pkey RENAME TO households_pkey;
CREATE INDEX households_village ON households (village, id);
CREATE TRIGGER households_created_at BEFORE INSERT ON households
    FOR EACH ROW EXECUTE FUNCTION households_created_at();
ALTER TABLE changes DROP CONSTRAINT changes_hash_once;
ALTER TABLE changes ADD CONSTRAINT changes_hash_once EXCLUDE USING hash (hash WITH =) WITH (fillfactor = 100);
