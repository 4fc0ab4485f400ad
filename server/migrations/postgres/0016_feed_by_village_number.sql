-- The feed keyed by its village as a number (issue 15, server disk). A village code
-- ("73.14.01.1001", the only form pilar-server admits) is kept in `changes` as the bigint of its
-- ten digits (7314011001). The key (village, pos) is then two bigints, which PostgreSQL's btree
-- splits after the new entry when a village's positions arrive in ascending order (at most two
-- int8 columns qualify): the key was half empty with the code as text (410 KB for 5,900 changes
-- at the end of `pilar-bench sync`). The table is rebuilt with fixed-width columns first and
-- without the null bitmap the column dropped by migration 0006 left in every row. The server
-- binds and reads the code as text (`pilar_village_number($1)`, `pilar_village_text(village)`);
-- SQLite keeps it as text (postgres_schema::COMPACT_COLUMNS).
CREATE FUNCTION pilar_village_number(code TEXT) RETURNS BIGINT LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    IF code !~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}$' THEN
        RAISE EXCEPTION 'the village code "%" is not of the form 73.14.01.1001 (two, two, two and four digits)', code
            USING ERRCODE = '22023';
    END IF;
    RETURN replace(code, '.', '')::BIGINT;
END $$;
CREATE FUNCTION pilar_village_text(number BIGINT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT substr(d, 1, 2) || '.' || substr(d, 3, 2) || '.' || substr(d, 5, 2) || '.' || substr(d, 7, 4)
    FROM lpad(number::TEXT, 10, '0') AS d
$$;
CREATE TABLE changes_by_number (
    village BIGINT NOT NULL,
    pos BIGINT NOT NULL,
    household_id UUID NOT NULL,
    device_id UUID NOT NULL,
    hash BYTEA NOT NULL,
    user_name TEXT COLLATE "C" NOT NULL,
    bytes BYTEA NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL
);
INSERT INTO changes_by_number (village, pos, household_id, device_id, hash, user_name, bytes, received_at)
    SELECT pilar_village_number(village), pos, household_id, device_id, hash, user_name, bytes, received_at
    FROM changes ORDER BY village, pos;
DROP TABLE changes;
ALTER TABLE changes_by_number RENAME TO changes;
ALTER TABLE changes ADD CONSTRAINT changes_pkey PRIMARY KEY (village, pos);
ALTER TABLE changes ADD CONSTRAINT changes_hash_once EXCLUDE USING hash (hash WITH =);
