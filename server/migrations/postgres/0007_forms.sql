-- Questionnaires an office publishes (SQLite's migration 11; issue 17): each version once, never
-- changed (its definition as canonical JSON), and which version new visits use per kabupaten
-- (`area`) or everywhere (`area` empty). The built-in DTSEN version 1 is not stored.
CREATE TABLE forms (
    key TEXT COLLATE "C" PRIMARY KEY,
    form_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    title TEXT COLLATE "C" NOT NULL,
    definition TEXT COLLATE "C" NOT NULL,
    published_by TEXT COLLATE "C" NOT NULL,
    published_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (form_id, version)
);
CREATE TABLE form_defaults (
    area TEXT COLLATE "C" PRIMARY KEY,
    form_key TEXT COLLATE "C" NOT NULL,
    set_by TEXT COLLATE "C" NOT NULL,
    set_at TEXT COLLATE "C" NOT NULL
);
