-- The office page counts, filters and pages households in SQL (SQLite's migration 13; issue 18):
-- each household's facts gain the head's name and RT as searched and the last visit's outcome,
-- the table is read in its order through an index, and each household's visits per local day are
-- kept for the dashboard's chart. Every household is marked stale, so the next refresh fills them.
ALTER TABLE household_facts ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE household_facts ADD COLUMN rt_key TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE household_facts ADD COLUMN last_outcome BIGINT;
CREATE INDEX household_facts_list ON household_facts (village, name_key, household_id) WHERE merged_into IS NULL;
CREATE TABLE household_visit_days (
    household_id TEXT COLLATE "C" NOT NULL,
    village TEXT COLLATE "C" NOT NULL,
    day TEXT COLLATE "C" NOT NULL,
    visits BIGINT NOT NULL,
    PRIMARY KEY (household_id, day)
);
CREATE INDEX household_visit_days_day ON household_visit_days (day, village);
INSERT INTO facts_stale (household_id, version) SELECT household_id, version FROM household_facts
    ON CONFLICT DO NOTHING;
