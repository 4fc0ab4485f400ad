//! The device store: one SQLite file (WAL) holding the device's households, search columns,
//! outbox, sync cursors, identity and photos (their bytes and upload queue).
//!
//! Invariants:
//! - Every read-modify-write of a stored household (a save, an applied pull, a pack page, a
//!   repair, a purge) happens inside one IMMEDIATE write transaction ([`StoreTx`]): the document is
//!   loaded after the write lock is taken, so a save and a sync in two processes serialise instead
//!   of one overwriting the other's document.
//! - Every save is one SQLite transaction that writes the document, its search columns and its
//!   outbox row together; a crash mid-save leaves the previous state.
//! - Search columns are derived from the household's current values on every write, never edited
//!   on their own: from the document, or, for changes received from the server, from the
//!   registers kept beside it (`households.registers`, the same reading of the same values).
//! - A household is its stored document followed by its logged changes (`household_log`, changes
//!   received since the document was stored); loading one reads its row and its log, and applies
//!   the log with the checks every change from elsewhere passes, so a damaged logged change is
//!   found like a damaged document. Nothing keeps documents in memory.

mod forms;
mod households;
mod photos;
mod query;
mod received;
mod repair;
mod syncing;

pub use households::{OutboxEntry, StoredHousehold, name_key};
pub use photos::{PendingPhoto, StoredPhoto};
pub use query::{ListFilter, Summary, mask_identifier};
pub use received::{Appended, LOG_LIMIT};
pub(crate) use repair::damage_reason;
pub use repair::{Repair, StoreCheck};
pub use syncing::{OutgoingChange, PageSizes, SyncCommit};

use crate::ids::VillageCode;
use crate::model::{DeviceId, Editor, ModelError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// File name of the store inside a device's home directory.
pub const DB_FILE: &str = "pilar.db";

/// Schema version written at creation; older stores are upgraded by [`UPGRADES`] on open, newer
/// ones refused rather than misread.
const SCHEMA_VERSION: i64 = 6;

/// Upgrades from each older version to the next, in order (index 0 upgrades version 1 to 2).
const UPGRADES: [&str; 5] = [
    // 2: outbox rows remember the sync batch they went out in; a response acknowledges the batch.
    "ALTER TABLE outbox ADD COLUMN batch TEXT; CREATE INDEX outbox_batch ON outbox (batch);",
    // 3: households waiting to be restored from the server, and page sizes that follow the link.
    SCHEMA_3,
    // 4: changes received after a household's stored document, and its registers. A household
    // stored before has none of either: its first received change takes the slow way once.
    SCHEMA_4,
    // 5: photos (bytes, the households referencing them, the upload queue).
    photos::SCHEMA_5,
    // 6: form versions delivered by sync, the defaults per kabupaten, the catalog token.
    forms::SCHEMA_6,
];

/// Added in schema 4 (also part of a new store): a household is its stored document (`doc`,
/// empty for one that came as changes) followed by the changes in `household_log`, in order;
/// `registers` holds its current values without history ([`crate::model::Registers`]), so a
/// received change updates the search columns without loading the document. Any write that loads
/// the document stores it whole again and empties its log.
const SCHEMA_4: &str = r#"
ALTER TABLE households ADD COLUMN registers BLOB;
CREATE TABLE household_log (
    household_id TEXT NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    change BLOB NOT NULL
);
CREATE INDEX household_log_household ON household_log (household_id);
"#;

/// Tables added in schema 3 (also part of a new store).
const SCHEMA_3: &str = r#"
CREATE TABLE repairs (
    household_id TEXT PRIMARY KEY,
    village TEXT NOT NULL,
    reason TEXT NOT NULL,
    since TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE page_sizes (id INTEGER PRIMARY KEY CHECK (id = 1), pull_changes INTEGER NOT NULL, pack_households INTEGER NOT NULL);
"#;

const SCHEMA: &str = r#"
CREATE TABLE device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    device_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    form TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE villages (code TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE households (
    id TEXT PRIMARY KEY,
    village TEXT NOT NULL,
    rt TEXT,
    head_name TEXT,
    name_key TEXT,
    kk_number TEXT,
    last_outcome INTEGER,
    last_visit_at TEXT,
    visit_count INTEGER NOT NULL,
    member_count INTEGER NOT NULL,
    review_status TEXT,
    conflict_count INTEGER NOT NULL,
    doc BLOB NOT NULL,
    heads TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX households_village_rt ON households (village, rt);
CREATE INDEX households_kk ON households (kk_number);
CREATE TABLE people (
    household_id TEXT NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    name_key TEXT,
    nik TEXT,
    PRIMARY KEY (household_id, member_id)
) WITHOUT ROWID;
CREATE INDEX people_nik ON people (nik);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    household_id TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    change BLOB NOT NULL,
    action TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rejected_reason TEXT,
    batch TEXT
);
CREATE INDEX outbox_household ON outbox (household_id);
CREATE INDEX outbox_batch ON outbox (batch);
CREATE TABLE cursors (village TEXT PRIMARY KEY, cursor INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE access_token (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE sync_state (id INTEGER PRIMARY KEY CHECK (id = 1), batch TEXT);
CREATE TABLE pack_progress (village TEXT PRIMARY KEY, after TEXT, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    server_url TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    role TEXT NOT NULL
);
"#;

/// What can go wrong with the device store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, permissions, corruption).
    #[error("device store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A household document could not be read or written.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The home directory has no store yet.
    #[error(
        "no device store in {0}: log in first with `pilar login --server URL --user NAME` (or create a store without a server with `pilar init`)"
    )]
    NotInitialised(PathBuf),
    /// The home directory already has a store.
    #[error("a device store already exists in {0}; use it, or choose another --home")]
    AlreadyInitialised(PathBuf),
    /// The store was written by another version of Pilar.
    #[error(
        "device store schema version {found} is not supported (this pilar reads version {SCHEMA_VERSION}); upgrade pilar"
    )]
    SchemaVersion {
        /// The version found in the file.
        found: i64,
    },
    /// No household matches the given id or prefix.
    #[error("no household matches {0:?}; find it with `pilar list` or `pilar search`")]
    NoSuchHousehold(String),
    /// An id prefix matches several households.
    #[error("{prefix:?} matches {count} households; give more characters of the id")]
    AmbiguousId {
        /// The prefix given.
        prefix: String,
        /// How many households it matches.
        count: usize,
    },
    /// The home directory could not be created or read.
    #[error("cannot use home directory {path}: {source}")]
    Home {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Stored data that should have been written by Pilar is not in the expected form.
    #[error("device store is damaged: {0}")]
    Corrupt(String),
}

/// The identity of this device install, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// This install's id; also its Automerge actor.
    pub device: DeviceId,
    /// The user working on this device.
    pub user: String,
    /// The form (`id@version`) new households are created with.
    pub form: String,
}

/// The device store, open on one SQLite file.
pub struct DeviceStore {
    conn: Connection,
    identity: DeviceIdentity,
    path: PathBuf,
}

impl std::fmt::Debug for DeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStore").field("path", &self.path).field("device", &self.identity.device).finish()
    }
}

/// How long a write waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // WAL: readers never block the writer; FULL: a save reported as done survives power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A save waits for a sync page being applied in another process (and the reverse); pages are
    // sized to commit in well under this.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

impl DeviceStore {
    /// Create a new store in `home` for `identity`, working in `villages`.
    pub fn create(
        home: &Path,
        identity: &DeviceIdentity,
        villages: &[VillageCode],
        now: OffsetDateTime,
    ) -> Result<DeviceStore, StoreError> {
        std::fs::create_dir_all(home).map_err(|source| StoreError::Home { path: home.to_path_buf(), source })?;
        let path = home.join(DB_FILE);
        if path.exists() {
            return Err(StoreError::AlreadyInitialised(home.to_path_buf()));
        }
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(SCHEMA_3)?;
        tx.execute_batch(SCHEMA_4)?;
        tx.execute_batch(photos::SCHEMA_5)?;
        tx.execute_batch(forms::SCHEMA_6)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.execute(
            "INSERT INTO device (id, device_id, user_name, form, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![identity.device.to_string(), identity.user, identity.form, crate::model::rfc3339_seconds(now)],
        )?;
        for v in villages {
            tx.execute("INSERT OR IGNORE INTO villages (code) VALUES (?1)", params![v.as_str()])?;
        }
        tx.commit()?;
        Ok(DeviceStore { conn, identity: identity.clone(), path })
    }

    /// Open the existing store in `home`.
    pub fn open(home: &Path) -> Result<DeviceStore, StoreError> {
        let path = home.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::NotInitialised(home.to_path_buf()));
        }
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if !(1..=SCHEMA_VERSION).contains(&version) {
            return Err(StoreError::SchemaVersion { found: version });
        }
        for (index, upgrade) in UPGRADES.iter().enumerate().skip((version - 1) as usize) {
            // Each upgrade commits with its version number, so a crash leaves a store that opens.
            let tx = conn.transaction()?;
            tx.execute_batch(upgrade)?;
            tx.pragma_update(None, "user_version", index as i64 + 2)?;
            tx.commit()?;
        }
        let identity = conn
            .query_row("SELECT device_id, user_name, form FROM device WHERE id = 1", [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .optional()?
            .ok_or_else(|| StoreError::Corrupt("no device identity row".into()))?;
        let device = identity.0.parse().map_err(|_| StoreError::Corrupt(format!("bad device id {:?}", identity.0)))?;
        Ok(DeviceStore { conn, identity: DeviceIdentity { device, user: identity.1, form: identity.2 }, path })
    }

    /// This device's identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The path of the SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An editor for a save made now on this device.
    pub fn editor(&self, now: OffsetDateTime) -> Editor {
        Editor { user: self.identity.user.clone(), device: self.identity.device, now }
    }

    /// The villages this device works in.
    pub fn villages(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT code FROM villages ORDER BY code")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `village` is one this device works in.
    pub fn works_in(&self, village: &VillageCode) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM villages WHERE code = ?1", params![village.as_str()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The sync cursor for a village (0 before the first sync).
    pub fn cursor(&self, village: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT cursor FROM cursors WHERE village = ?1", params![village], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }
}

/// The device's link to a server, kept after `pilar login`.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The device-bound refresh token (secret: never printed).
    pub refresh_token: String,
    /// The user's role on the server.
    pub role: crate::protocol::Role,
}

impl std::fmt::Debug for Session {
    // The refresh token is a credential: keep it out of Debug output and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("server", &self.server).field("role", &self.role).finish_non_exhaustive()
    }
}

impl DeviceStore {
    /// The server session, if this device has logged in.
    pub fn session(&self) -> Result<Option<Session>, StoreError> {
        let row = self
            .conn
            .query_row("SELECT server_url, refresh_token, role FROM session WHERE id = 1", [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((server, refresh_token, role)) => {
                let role = crate::protocol::Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?} in session")))?;
                Ok(Some(Session { server, refresh_token, role }))
            }
        }
    }

    /// Remember (or replace) the server session.
    pub fn set_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO session (id, server_url, refresh_token, role) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET server_url = excluded.server_url,
                 refresh_token = excluded.refresh_token, role = excluded.role",
            params![session.server, session.refresh_token, session.role.as_str()],
        )?;
        Ok(())
    }

    /// Keep the short-lived access token between commands, so a routine sync is one round trip
    /// instead of a token refresh plus the sync. `expires_at` is in Unix seconds.
    pub fn set_access_token(&mut self, token: &str, expires_at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO access_token (id, token, expires_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at",
            params![token, expires_at],
        )?;
        Ok(())
    }

    /// The kept access token and its expiry (Unix seconds), if any.
    pub fn access_token(&self) -> Result<Option<(String, i64)>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT token, expires_at FROM access_token WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Replace the list of villages this device works in (the server decides it).
    pub fn set_villages(&mut self, villages: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM villages", [])?;
        for v in villages {
            tx.execute("INSERT OR IGNORE INTO villages (code) VALUES (?1)", params![v])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Delete the whole store of `home` (a revoked device wipes itself). Idempotent.
    pub fn wipe(home: &Path) -> Result<(), StoreError> {
        for name in [DB_FILE.to_string(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
            let path = home.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Home { path, source }),
            }
        }
        Ok(())
    }
}

impl DeviceStore {
    /// The SQLite connection, for sibling modules that add queries (merge, sync).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Begin a write transaction (BEGIN IMMEDIATE: the write lock is taken now, waiting for another
    /// process's write to finish). Load, change and store households through it, then
    /// [`StoreTx::commit`]; dropping it rolls everything back.
    pub fn write(&mut self) -> Result<StoreTx<'_>, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(StoreTx { tx, identity: &self.identity })
    }
}

/// One write transaction on the device store: the only way stored households are changed, so
/// every read-modify-write sees the latest committed document and nothing is overwritten.
pub struct StoreTx<'a> {
    tx: rusqlite::Transaction<'a>,
    identity: &'a DeviceIdentity,
}

impl std::fmt::Debug for StoreTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTx").field("device", &self.identity.device).finish_non_exhaustive()
    }
}

impl StoreTx<'_> {
    /// Make everything done through this transaction durable at once.
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }

    /// This device's identity.
    pub fn identity(&self) -> &DeviceIdentity {
        self.identity
    }

    /// The transaction's connection, for sibling modules' queries.
    pub(crate) fn conn(&self) -> &Connection {
        &self.tx
    }
}
