-- A duplicate key's row carries its holder's village and last visitor (SQLite's migration 15),
-- kept with the facts, so the dashboard counts suspected duplicates per village and enumerator
-- from the shared keys alone, without looking up each holder's facts.
ALTER TABLE household_keys ADD COLUMN village TEXT COLLATE "C";
ALTER TABLE household_keys ADD COLUMN last_visit_by TEXT COLLATE "C";
UPDATE household_keys k SET village = f.village, last_visit_by = f.last_visit_by
    FROM household_facts f WHERE f.household_id = k.household_id;
