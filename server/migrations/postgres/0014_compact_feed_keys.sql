-- Compact keys for the rows sync writes most (issue 15, server disk): a change's hash as its 32
-- bytes instead of 64 hex characters, household and device ids as `uuid` (16 bytes) instead of
-- 36 characters; the facts queue's household id likewise. SQLite keeps them as text; the server
-- binds and reads them as text on both backends (`$1::text::uuid`, `household_id::text`,
-- `decode($1, 'hex')`, `encode(hash, 'hex')`), and `pilar-server migrate` converts them
-- (postgres_schema::COMPACT_COLUMNS).
ALTER TABLE changes
    ALTER COLUMN hash TYPE BYTEA USING decode(hash, 'hex'),
    ALTER COLUMN household_id TYPE UUID USING household_id::uuid,
    ALTER COLUMN device_id TYPE UUID USING device_id::uuid;
ALTER TABLE facts_stale ALTER COLUMN household_id TYPE UUID USING household_id::uuid;
