-- Sessions of the office web page (SQLite's migration 12; issue 18): the SHA-256 of the cookie's
-- token (never the token), the user, the anti-forgery token, and when it began, ends and was last
-- used.
CREATE TABLE web_sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    user_name TEXT COLLATE "C" NOT NULL,
    csrf TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    seen_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_name);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
