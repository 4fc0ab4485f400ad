-- The dashboard at kabupaten scale (SQLite's migration 14; issue 18): how many households hold
-- each duplicate key, kept as keys come and go, so shared keys are found without grouping every
-- key; and the list's index holds every column the table filters and the progress report counts
-- by, so neither reads the facts' rows.
CREATE TABLE household_key_counts (
    kind TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    holders BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
INSERT INTO household_key_counts (kind, key, holders) SELECT kind, key, count(*) FROM household_keys GROUP BY kind, key;
CREATE INDEX household_key_counts_shared ON household_key_counts (holders) WHERE holders >= 2;
DROP INDEX household_facts_list;
CREATE INDEX household_facts_list ON household_facts (village, name_key, household_id, rt_key, review, last_outcome,
    conflict_count, last_visit_by, final_outcome, visits, merged_into) WHERE merged_into IS NULL;
