-- Failed logins in the database (SQLite's migration 8; issue 14), so every server on one database
-- counts the same failures and a restart forgets none. One row per user name (a keyed hash, never
-- the name typed) or client address (IPv6 per /64); times in milliseconds; forget_at_ms is when
-- the row may be pruned (decided above the seam, server/src/service/throttle.rs).
CREATE TABLE login_failures (
    kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('user', 'address')),
    subject TEXT COLLATE "C" NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_ms BIGINT NOT NULL,
    blocked_until_ms BIGINT,
    forget_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX login_failures_forget ON login_failures (forget_at_ms);
