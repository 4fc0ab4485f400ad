//! The SQLite schema, one migration per entry, applied in order by `PRAGMA user_version`.

/// The schema, one migration per entry: entry `i` moves the database from `user_version` `i` to
/// `i + 1`. Never edit an entry that has shipped; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: accounts, assignments (with history), devices and their refresh tokens.
    r#"
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'enumerator')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE village_assignments (
    id INTEGER PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    village TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE UNIQUE INDEX village_assignments_active ON village_assignments (user_name, village) WHERE ended_at IS NULL;
CREATE INDEX village_assignments_village ON village_assignments (village, user_name);
CREATE TABLE kecamatan_assignments (
    id INTEGER PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    kecamatan TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE UNIQUE INDEX kecamatan_assignments_active ON kecamatan_assignments (user_name, kecamatan) WHERE ended_at IS NULL;
CREATE INDEX kecamatan_assignments_kecamatan ON kecamatan_assignments (kecamatan, user_name);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    name TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    revoked_at TEXT,
    refresh_hash TEXT UNIQUE,
    refresh_issued_at TEXT
) WITHOUT ROWID;
CREATE INDEX devices_user ON devices (user_name);
"#,
    // 2: the sync feed: households, admitted changes with feed sequence numbers, replayable responses.
    r#"
CREATE TABLE households (
    id TEXT PRIMARY KEY,
    village TEXT NOT NULL,
    doc BLOB NOT NULL,
    heads TEXT NOT NULL,
    updated_seq INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX households_village ON households (village, id);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    household_id TEXT NOT NULL,
    village TEXT NOT NULL,
    device_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    bytes BLOB NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX changes_village_seq ON changes (village, seq);
CREATE TABLE sync_batches (
    device_id TEXT NOT NULL,
    batch TEXT NOT NULL,
    response BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (device_id, batch)
);
"#,
    // 3: roster imports (staged chunks, the DTSEN family-id index).
    r#"
CREATE TABLE roster_imports (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    committed_at TEXT,
    summary TEXT
) WITHOUT ROWID;
CREATE TABLE roster_chunks (
    import_id TEXT NOT NULL REFERENCES roster_imports (id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    households BLOB NOT NULL,
    PRIMARY KEY (import_id, chunk)
) WITHOUT ROWID;
CREATE TABLE roster_keys (family_id TEXT PRIMARY KEY, household_id TEXT NOT NULL) WITHOUT ROWID;
"#,
    // 4: supervision: derived household facts, duplicate keys and dismissals, merges.
    r#"
CREATE TABLE household_facts (
    household_id TEXT PRIMARY KEY,
    village TEXT NOT NULL,
    seq INTEGER NOT NULL,
    brief TEXT NOT NULL,
    conflicts TEXT NOT NULL,
    conflict_count INTEGER NOT NULL,
    review TEXT,
    final_outcome INTEGER,
    last_visit_by TEXT,
    visits INTEGER NOT NULL,
    merged_into TEXT
);
CREATE INDEX household_facts_village ON household_facts (village);
CREATE TABLE household_keys (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    household_id TEXT NOT NULL,
    PRIMARY KEY (kind, key, household_id)
) WITHOUT ROWID;
CREATE INDEX household_keys_household ON household_keys (household_id);
CREATE TABLE duplicate_dismissals (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE TABLE merges (
    retired TEXT PRIMARY KEY,
    survivor TEXT NOT NULL,
    fold TEXT NOT NULL,
    by_user TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE merge_conflicts (
    id INTEGER PRIMARY KEY,
    survivor TEXT NOT NULL,
    retired TEXT NOT NULL,
    path TEXT NOT NULL,
    other TEXT NOT NULL,
    created_at TEXT NOT NULL,
    resolved_by TEXT,
    resolved_at TEXT
);
CREATE INDEX merge_conflicts_open ON merge_conflicts (survivor) WHERE resolved_at IS NULL;
CREATE INDEX households_updated ON households (updated_seq, id);
CREATE TABLE facts_watermark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    household_id TEXT NOT NULL
);
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"#,
    // 5: bounded state and retriable refreshes: the replaced refresh token with its retry window,
    // the page size a stored sync response was made for, and indexes for pruning by age.
    r#"
ALTER TABLE devices ADD COLUMN previous_refresh_hash TEXT;
ALTER TABLE devices ADD COLUMN previous_refresh_until TEXT;
ALTER TABLE sync_batches ADD COLUMN max_changes INTEGER;
CREATE INDEX sync_batches_created ON sync_batches (created_at);
CREATE INDEX roster_imports_staged ON roster_imports (created_at) WHERE committed_at IS NULL;
"#,
    // 6: the trust boundary: sessions ended by refresh-token reuse, which device was handed which
    // village and when, and when each household was first stored (for the grace after an
    // assignment ends).
    r#"
ALTER TABLE devices ADD COLUMN sessions_ended_ms INTEGER;
CREATE TABLE device_villages (
    device_id TEXT NOT NULL,
    village TEXT NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (device_id, village)
) WITHOUT ROWID;
ALTER TABLE households ADD COLUMN created_at TEXT;
CREATE INDEX changes_household_received ON changes (household_id, received_at);
UPDATE households SET created_at = COALESCE(
    (SELECT min(received_at) FROM changes c WHERE c.household_id = households.id), updated_at);
DROP INDEX changes_household_received;
-- Devices held what they already wrote to, and (leniently, as before this table) what their user
-- holds now; assignments that ended before the upgrade keep only the former.
INSERT OR IGNORE INTO device_villages (device_id, village, first_at, last_at)
    SELECT device_id, village, min(received_at), max(received_at) FROM changes GROUP BY device_id, village;
INSERT OR IGNORE INTO device_villages (device_id, village, first_at, last_at)
    SELECT d.id, a.village, max(a.started_at, d.registered_at), max(a.started_at, d.registered_at)
    FROM village_assignments a JOIN devices d ON d.user_name = a.user_name
    WHERE a.ended_at IS NULL AND d.revoked_at IS NULL;
CREATE TRIGGER households_created_at AFTER INSERT ON households FOR EACH ROW WHEN NEW.created_at IS NULL
BEGIN
    UPDATE households SET created_at = NEW.updated_at WHERE id = NEW.id;
END;
"#,
    // 7: the feed numbered per village, facts derived from a queue (issue 14). A change's position
    // is counted per village from the village's head row, bumped in the transaction that inserts
    // the change, so positions commit in order under concurrent writers. Devices keep the cursors
    // they hold: every existing change keeps its global sequence number as its position, and every
    // village's numbering continues above the last global number (the floor), so an old cursor is
    // never above a new change. Facts are recomputed for the households in `facts_stale` (marked by
    // every household write with its new version) instead of a watermark over a global sequence.
    // A household's `updated_pos` is its last change's position in its village. The duplicate
    // fold's tables are named for it ("merge" is Automerge's word).
    r#"
ALTER TABLE changes ADD COLUMN pos INTEGER;
UPDATE changes SET pos = seq;
CREATE UNIQUE INDEX changes_village_pos ON changes (village, pos);
DROP INDEX changes_village_seq;
CREATE TABLE feed_heads (
    village TEXT PRIMARY KEY,
    head INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE feed_floor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    floor INTEGER NOT NULL
);
INSERT INTO feed_floor (id, floor) VALUES (1, max(
    COALESCE((SELECT max(seq) FROM changes), 0),
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)));
ALTER TABLE households ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE facts_stale (
    household_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
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
"#,
    // 8: failed logins in the database (issue 14), so every server on one database counts the
    // same failures and a restart forgets none. One row per user name (a keyed hash, never the
    // name typed) or client address (IPv6 per /64); times in milliseconds; `forget_at_ms` is when
    // the row may be pruned (decided above the seam, `service::throttle`).
    r#"
CREATE TABLE login_failures (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'address')),
    subject TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    blocked_until_ms INTEGER,
    forget_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
) WITHOUT ROWID;
CREATE INDEX login_failures_forget ON login_failures (forget_at_ms);
"#,
    // 9: documents and changes kept as zstd frames (issue 15, server disk): the dictionaries they
    // are compressed with, by zstd's id for each (which every frame names), in the order they were
    // trained. Rows written before stay readable as they are (`storage/at_rest.rs`).
    r#"
CREATE TABLE kept_dictionaries (
    id INTEGER PRIMARY KEY,
    dictionary BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"#,
    // 10: the feed kept by its place (issue 15, server disk): a change is found by (village,
    // position), which the feed reads by, and by hash, which keeps it once; the global sequence
    // number (unused since migration 7) and its index go. Rows are copied as they are.
    r#"
CREATE TABLE changes_by_place (
    village TEXT NOT NULL,
    pos INTEGER NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    household_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    bytes BLOB NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (village, pos)
) WITHOUT ROWID;
INSERT INTO changes_by_place (village, pos, hash, household_id, device_id, user_name, bytes, received_at)
    SELECT village, pos, hash, household_id, device_id, user_name, bytes, received_at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_by_place RENAME TO changes;
"#,
    // 11: questionnaires an office publishes (issue 17): each version once, never changed (its
    // definition as canonical JSON), and which version new visits use per kabupaten (`area`) or
    // everywhere (`area` empty). The built-in DTSEN version 1 is not stored: every server has it.
    r#"
CREATE TABLE forms (
    key TEXT PRIMARY KEY,
    form_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT NOT NULL,
    UNIQUE (form_id, version)
) WITHOUT ROWID;
CREATE TABLE form_defaults (
    area TEXT PRIMARY KEY,
    form_key TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 12: sessions of the office web page (issue 18): the SHA-256 of the cookie's token (never the
    // token), the user, the anti-forgery token, and when it began, ends and was last used.
    r#"
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    seen_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions (user_name);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
"#,
    // 13: the office page counts, filters and pages households in SQL (issue 18): each household's
    // facts gain the head's name and RT as searched and the last visit's outcome, the table is
    // read in its order through an index, and each household's visits per local day are kept for
    // the dashboard's chart. Every household is marked stale, so the next refresh fills them.
    r#"
ALTER TABLE household_facts ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
ALTER TABLE household_facts ADD COLUMN rt_key TEXT NOT NULL DEFAULT '';
ALTER TABLE household_facts ADD COLUMN last_outcome INTEGER;
CREATE INDEX household_facts_list ON household_facts (village, name_key, household_id) WHERE merged_into IS NULL;
CREATE TABLE household_visit_days (
    household_id TEXT NOT NULL,
    village TEXT NOT NULL,
    day TEXT NOT NULL,
    visits INTEGER NOT NULL,
    PRIMARY KEY (household_id, day)
) WITHOUT ROWID;
CREATE INDEX household_visit_days_day ON household_visit_days (day, village);
INSERT OR IGNORE INTO facts_stale (household_id, version) SELECT household_id, version FROM household_facts;
"#,
    // 14: the dashboard at kabupaten scale (issue 18): how many households hold each duplicate key,
    // kept as keys come and go, so shared keys are found without grouping every key; and the
    // list's index holds every column the table filters and the progress report counts by, so
    // neither reads the facts' rows.
    r#"
CREATE TABLE household_key_counts (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    holders INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
INSERT INTO household_key_counts (kind, key, holders) SELECT kind, key, count(*) FROM household_keys GROUP BY kind, key;
CREATE INDEX household_key_counts_shared ON household_key_counts (holders) WHERE holders >= 2;
DROP INDEX household_facts_list;
CREATE INDEX household_facts_list ON household_facts (village, name_key, household_id, rt_key, review, last_outcome,
    conflict_count, last_visit_by, final_outcome, visits, merged_into) WHERE merged_into IS NULL;
"#,
    // 15: a duplicate key's row carries its holder's village and last visitor (kept with the
    // facts), so the dashboard counts suspected duplicates per village and enumerator from the
    // shared keys alone, without looking up each holder's facts.
    r#"
ALTER TABLE household_keys ADD COLUMN village TEXT;
ALTER TABLE household_keys ADD COLUMN last_visit_by TEXT;
UPDATE household_keys SET
    village = (SELECT f.village FROM household_facts f WHERE f.household_id = household_keys.household_id),
    last_visit_by = (SELECT f.last_visit_by FROM household_facts f WHERE f.household_id = household_keys.household_id);
"#,
    // 16: a stored sync response keeps where its pull read the feed, not the pulled changes'
    // bytes (issue 15, server disk): a replay reads them again. Rows stored before keep their
    // whole answer (the column is NULL) and are replayed as they are.
    r#"
ALTER TABLE sync_batches ADD COLUMN pull_from TEXT;
"#,
];
