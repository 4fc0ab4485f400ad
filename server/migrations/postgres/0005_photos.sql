-- Photo bytes for servers on PostgreSQL (issue 16): several servers share one database, so the
-- bytes live in it, not in one server's data directory (a SQLite server keeps them as files:
-- server/src/storage/photos.rs). One row per photo (the bytes held from its start, and whether
-- the SHA-256 of the whole was verified), its bytes in chunks of what each request carried.
-- PostgreSQL only: the schema parity test leaves photo_* tables out.
CREATE TABLE photo_uploads (
    photo TEXT COLLATE "C" PRIMARY KEY,
    held BIGINT NOT NULL,
    whole BOOLEAN NOT NULL
);
CREATE TABLE photo_chunks (
    photo TEXT COLLATE "C" NOT NULL REFERENCES photo_uploads (photo) ON DELETE CASCADE,
    start BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (photo, start)
);
