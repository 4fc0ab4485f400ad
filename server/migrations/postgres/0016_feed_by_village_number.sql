-- The feed keyed by its village as a number (issue 15, server disk). A village code
-- ("73.14.01.1001", the only form pilar-server admits) is kept in `changes` as the bigint of its
-- ten digits (7314011001). The key (village, pos) is then two bigints, which PostgreSQL's btree
-- splits after the new entry when a village's positions arrive in ascending order (at most two
-- int8 columns qualify): the key was half empty with the code as text (410 KB for 5,900 changes
-- at the end of `pilar-bench sync`). The table is rebuilt with fixed-width columns first,
-- the arrival time as `timestamptz` (whole seconds, UTC) and without the null bitmap the column
-- dropped by migration 0006 left in every row: 144 → 128 bytes a row. The server binds and reads
-- the code as text (`pilar_village_number($1)`, `pilar_village_text(village)`); SQLite keeps
-- both as text (postgres_schema::COMPACT_COLUMNS).
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
-- A time kept as `timestamptz` as SQLite's text (`stored_time`: whole seconds, UTC).
CREATE FUNCTION pilar_time_text(at TIMESTAMPTZ) RETURNS TEXT LANGUAGE sql STABLE STRICT AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;
CREATE TABLE changes_by_number (
    village BIGINT NOT NULL,
    pos BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    household_id UUID NOT NULL,
    device_id UUID NOT NULL,
    hash BYTEA NOT NULL,
    user_name TEXT COLLATE "C" NOT NULL,
    bytes BYTEA NOT NULL
);
INSERT INTO changes_by_number (village, pos, received_at, household_id, device_id, hash, user_name, bytes)
    SELECT pilar_village_number(village), pos, received_at::timestamptz, household_id, device_id, hash, user_name,
        bytes
    FROM changes ORDER BY village, pos;
DROP TABLE changes;
ALTER TABLE changes_by_number RENAME TO changes;
ALTER TABLE changes ADD CONSTRAINT changes_pkey PRIMARY KEY (village, pos);
ALTER TABLE changes ADD CONSTRAINT changes_hash_once EXCLUDE USING hash (hash WITH =);
