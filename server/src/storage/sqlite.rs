//! The embedded SQLite backend of [`Storage`]: one writer connection behind a mutex, a small pool
//! of read-only connections, WAL with `synchronous=FULL` (an acknowledged write survives power
//! loss), and schema migrations numbered by `PRAGMA user_version`.
//!
//! Times are stored as RFC 3339 UTC text truncated to whole seconds (`2026-01-02T03:04:05Z`), so
//! text order is time order.

mod export;
mod feed;
mod merge;
mod roster;
mod schema;
pub mod supervise;
mod tx;

use super::EndedAssignment;
use super::SyncCaller;
use super::{
    DeviceAccess, DeviceLogin, DeviceRecord, DeviceRegistration, NewUser, RefreshOutcome, RefreshRotation, Storage,
    StorageError, UserRecord, UserSummary, VillageScope,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use sync_core::model::DeviceId;
use sync_core::model::HouseholdId;
use sync_core::protocol::Role;
use sync_core::sync::{PackPage, SyncRequest};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use schema::MIGRATIONS;

/// Households whose facts one write transaction recomputes (about 0.1 s of work).
const FACTS_PER_TRANSACTION: u32 = 200;

/// Read connections kept open between requests; more are opened under load and closed after.
const IDLE_READERS: usize = 4;

/// How stale `last_seen_at` may get before an authenticated request rewrites it.
const LAST_SEEN_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// The SQLite backend: a database file in the data directory.
pub struct SqliteDatabase {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// The name the backend had before the seam (the transition keeps both).
pub type SqliteStorage = SqliteDatabase;

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteDatabase {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        let mut writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        // 32 MiB of page cache for the writer (SQLite's default is 2 MiB): deriving the facts of
        // a large import touches index pages all over the database, and with the default cache
        // they are read and written back again and again.
        writer.pragma_update(None, "cache_size", -32768)?;
        migrate(&mut writer)?;
        Ok(SqliteDatabase { path: path.to_path_buf(), writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) })
    }

    /// Run `f` in one IMMEDIATE transaction on the writer connection; commits when `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        // A panic mid-transaction rolls it back when the transaction drops, so the connection
        // behind a poisoned lock is still sound.
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Run `f` on a read-only connection (WAL readers never wait for the writer).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let pooled = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Bring the derived household facts up to date, a few hundred households per write
    /// transaction so syncs interleave with a large refresh (the first list after a big import).
    fn refresh_facts(&self) -> Result<(), StorageError> {
        while self.write(|tx| supervise::refresh(tx, FACTS_PER_TRANSACTION))? > 0 {}
        Ok(())
    }

    fn open_reader(&self) -> Result<Connection, StorageError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        Ok(conn)
    }
}

impl crate::storage::Database for SqliteDatabase {
    fn read_tx(
        &self,
        work: &mut dyn FnMut(&mut dyn crate::storage::ReadTx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.read(|conn| {
            // A deferred transaction: one snapshot for everything `work` reads.
            let tx = conn.unchecked_transaction()?;
            work(&mut tx::SqliteTx { conn: &tx })?;
            tx.commit()?;
            Ok(())
        })
    }

    fn write_tx(
        &self,
        work: &mut dyn FnMut(&mut dyn crate::storage::Tx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.write(|tx| work(&mut tx::SqliteTx { conn: tx }))
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // FULL: a commit reported as done survives power loss (the server acknowledges only then).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let supported = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > supported {
        return Err(StorageError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// A time as stored: RFC 3339, UTC, whole seconds.
pub fn stored_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parse a time written by [`stored_time`].
pub fn parse_stored_time(text: &str) -> Result<OffsetDateTime, StorageError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| StorageError::Corrupt(format!("bad time {text:?}")))
}

fn parse_role(text: &str) -> Result<Role, StorageError> {
    Role::parse(text).ok_or_else(|| StorageError::Corrupt(format!("unknown role {text:?}")))
}

fn parse_device(text: &str) -> Result<DeviceId, StorageError> {
    text.parse().map_err(|_| StorageError::Corrupt(format!("bad device id {text:?}")))
}

fn user_exists(conn: &Connection, name: &str) -> Result<bool, StorageError> {
    Ok(conn.query_row("SELECT 1 FROM users WHERE name = ?1", params![name], |_| Ok(())).optional()?.is_some())
}

/// Replace the active rows of one assignment table (`village_assignments` or
/// `kecamatan_assignments`, whose code column is `column`) for `user`.
fn replace_assignments(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    column: &str,
    user: &str,
    codes: &[String],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    if !user_exists(tx, user)? {
        return Err(StorageError::NoSuchUser(user.to_string()));
    }
    let now = stored_time(now);
    let active: Vec<String> = {
        let mut stmt =
            tx.prepare(&format!("SELECT {column} FROM {table} WHERE user_name = ?1 AND ended_at IS NULL"))?;
        stmt.query_map(params![user], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for code in active.iter().filter(|c| !codes.contains(c)) {
        tx.execute(
            &format!("UPDATE {table} SET ended_at = ?3 WHERE user_name = ?1 AND {column} = ?2 AND ended_at IS NULL"),
            params![user, code, now],
        )?;
    }
    for code in codes.iter().filter(|c| !active.contains(c)) {
        tx.execute(
            &format!("INSERT OR IGNORE INTO {table} (user_name, {column}, started_at) VALUES (?1, ?2, ?3)"),
            params![user, code, now],
        )?;
    }
    Ok(())
}

/// Record in `tx` that `device` was handed `villages` at `now` (the first time is kept).
pub(super) fn hand_villages(
    tx: &rusqlite::Transaction<'_>,
    device: DeviceId,
    villages: &[String],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    let (device, now) = (device.to_string(), stored_time(now));
    let mut upsert = tx.prepare_cached(
        "INSERT INTO device_villages (device_id, village, first_at, last_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (device_id, village) DO UPDATE SET last_at = excluded.last_at WHERE last_at < excluded.last_at",
    )?;
    for village in villages {
        upsert.execute(params![device, village, now])?;
    }
    Ok(())
}

fn active_codes(conn: &Connection, table: &str, column: &str, user: &str) -> Result<Vec<String>, StorageError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {column} FROM {table} WHERE user_name = ?1 AND ended_at IS NULL ORDER BY {column}"
    ))?;
    let codes = stmt.query_map(params![user], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(codes)
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 6]> {
    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?])
}

fn device_record(row: [Option<String>; 6]) -> Result<DeviceRecord, StorageError> {
    let [id, name, user, registered_at, last_seen_at, revoked_at] = row;
    let required = |v: Option<String>| v.ok_or_else(|| StorageError::Corrupt("device row with a NULL column".into()));
    Ok(DeviceRecord {
        id: parse_device(&required(id)?)?,
        name: required(name)?,
        user: required(user)?,
        registered_at: parse_stored_time(&required(registered_at)?)?,
        last_seen_at: parse_stored_time(&required(last_seen_at)?)?,
        revoked_at: revoked_at.as_deref().map(parse_stored_time).transpose()?,
    })
}

const DEVICE_COLUMNS: &str = "id, name, user_name, registered_at, last_seen_at, revoked_at";

impl Storage for SqliteStorage {
    fn user_count(&self) -> Result<u64, StorageError> {
        self.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))?.max(0) as u64))
    }

    fn create_user(&self, user: &NewUser) -> Result<(), StorageError> {
        self.write(|tx| {
            if user_exists(tx, &user.name)? {
                return Err(StorageError::UserExists(user.name.clone()));
            }
            tx.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user.name, user.role.as_str(), user.password_hash, stored_time(user.created_at)],
            )?;
            Ok(())
        })
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_row(
                    "SELECT name, role, password_hash, created_at FROM users WHERE name = ?1",
                    params![name],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(name, role, password_hash, created_at)| {
                Ok(UserRecord {
                    name,
                    role: parse_role(&role)?,
                    password_hash,
                    created_at: parse_stored_time(&created_at)?,
                })
            })
            .transpose()
        })
    }

    fn users(&self) -> Result<Vec<UserSummary>, StorageError> {
        self.read(|conn| {
            let mut users = BTreeMap::new();
            let mut stmt = conn.prepare("SELECT name, role, created_at FROM users ORDER BY name")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
            for row in rows {
                let (name, role, created_at) = row?;
                let summary = UserSummary {
                    name: name.clone(),
                    role: parse_role(&role)?,
                    created_at: parse_stored_time(&created_at)?,
                    villages: Vec::new(),
                    kecamatan: Vec::new(),
                };
                users.insert(name, summary);
            }
            let mut stmt = conn.prepare(
                "SELECT user_name, village FROM village_assignments WHERE ended_at IS NULL ORDER BY user_name, village",
            )?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (user, village) = row?;
                if let Some(summary) = users.get_mut(&user) {
                    summary.villages.push(village);
                }
            }
            let mut stmt = conn.prepare(
                "SELECT user_name, kecamatan FROM kecamatan_assignments WHERE ended_at IS NULL
                 ORDER BY user_name, kecamatan",
            )?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (user, kecamatan) = row?;
                if let Some(summary) = users.get_mut(&user) {
                    summary.kecamatan.push(kecamatan);
                }
            }
            Ok(users.into_values().collect())
        })
    }

    fn set_village_assignments(
        &self,
        user: &str,
        villages: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.write(|tx| replace_assignments(tx, "village_assignments", "village", user, villages, now))
    }

    fn set_kecamatan_assignments(
        &self,
        user: &str,
        kecamatan: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.write(|tx| replace_assignments(tx, "kecamatan_assignments", "kecamatan", user, kecamatan, now))
    }

    fn village_scope(&self, user: &str) -> Result<VillageScope, StorageError> {
        self.read(|conn| {
            let active = active_codes(conn, "village_assignments", "village", user)?;
            // A village assigned, ended and assigned again has several rows: the latest end counts.
            let mut stmt = conn.prepare(
                "SELECT village, max(ended_at) FROM village_assignments a WHERE user_name = ?1 AND ended_at IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM village_assignments b
                                 WHERE b.user_name = a.user_name AND b.village = a.village AND b.ended_at IS NULL)
                 GROUP BY village ORDER BY village",
            )?;
            let rows = stmt
                .query_map(params![user], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let ended = rows
                .into_iter()
                .map(|(village, ended_at)| Ok(EndedAssignment { village, ended_at: parse_stored_time(&ended_at)? }))
                .collect::<Result<_, StorageError>>()?;
            Ok(VillageScope { active, ended })
        })
    }

    fn kecamatan_scope(&self, user: &str) -> Result<Vec<String>, StorageError> {
        self.read(|conn| active_codes(conn, "kecamatan_assignments", "kecamatan", user))
    }

    fn note_villages_handed(
        &self,
        device: DeviceId,
        villages: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        if villages.is_empty() {
            return Ok(());
        }
        self.write(|tx| hand_villages(tx, device, villages, now))
    }

    fn villages_handed(&self, device: DeviceId) -> Result<BTreeMap<String, OffsetDateTime>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT village, first_at FROM device_villages WHERE device_id = ?1")?;
            let rows = stmt
                .query_map(params![device.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(village, first)| Ok((village, parse_stored_time(&first)?))).collect()
        })
    }

    fn register_device(&self, login: &DeviceLogin<'_>) -> Result<DeviceRegistration, StorageError> {
        self.write(|tx| {
            let id = login.device.to_string();
            let now = stored_time(login.now);
            let existing = tx
                .query_row("SELECT user_name, revoked_at FROM devices WHERE id = ?1", params![id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .optional()?;
            match existing {
                None => {
                    tx.execute(
                        "INSERT INTO devices (id, user_name, name, registered_at, last_seen_at, refresh_hash,
                             refresh_issued_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?4)",
                        params![id, login.user, login.name, now, login.refresh_hash],
                    )?;
                    Ok(DeviceRegistration::Registered)
                }
                Some((_, Some(_revoked))) => Ok(DeviceRegistration::Revoked),
                Some((owner, None)) if owner != login.user => Ok(DeviceRegistration::RegisteredToAnotherUser),
                Some((_, None)) => {
                    tx.execute(
                        "UPDATE devices SET name = ?2, last_seen_at = ?3, refresh_hash = ?4, refresh_issued_at = ?3,
                             previous_refresh_hash = NULL, previous_refresh_until = NULL
                         WHERE id = ?1",
                        params![id, login.name, now, login.refresh_hash],
                    )?;
                    Ok(DeviceRegistration::Registered)
                }
            }
        })
    }

    fn rotate_refresh_token(&self, rotation: &RefreshRotation<'_>) -> Result<RefreshOutcome, StorageError> {
        self.write(|tx| {
            let id = rotation.device.to_string();
            let row = tx
                .query_row(
                    "SELECT d.user_name, d.revoked_at, d.refresh_hash, d.refresh_issued_at, d.previous_refresh_hash,
                         d.previous_refresh_until, u.role
                     FROM devices d JOIN users u ON u.name = d.user_name WHERE d.id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, String>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((user, revoked_at, current, issued_at, previous, previous_until, role)) = row else {
                return Ok(RefreshOutcome::Invalid);
            };
            if revoked_at.is_some() {
                return Ok(RefreshOutcome::Revoked);
            }
            let now = stored_time(rotation.now);
            if current.as_deref() == Some(rotation.old_hash) {
                let fresh = issued_at.is_some_and(|t| t >= stored_time(rotation.issued_after));
                if !fresh {
                    return Ok(RefreshOutcome::Invalid);
                }
                tx.execute(
                    "UPDATE devices SET refresh_hash = ?2, refresh_issued_at = ?3, last_seen_at = ?3,
                         previous_refresh_hash = ?4, previous_refresh_until = ?5
                     WHERE id = ?1",
                    params![id, rotation.new_hash, now, rotation.old_hash, stored_time(rotation.retry_until)],
                )?;
                return Ok(RefreshOutcome::Rotated { user, role: parse_role(&role)? });
            }
            let older_link = match previous.as_deref() {
                Some(previous) if previous == rotation.old_hash => {
                    // The token just replaced. Its successor is still current only if the device
                    // never used it: then the answer to the first exchange was lost, and it is
                    // given again.
                    let successor_unused = current.as_deref() == Some(rotation.new_hash);
                    let window_open = previous_until.is_some_and(|until| until >= now);
                    if successor_unused && window_open {
                        tx.execute("UPDATE devices SET last_seen_at = ?2 WHERE id = ?1", params![id, now])?;
                        return Ok(RefreshOutcome::Retried { user, role: parse_role(&role)? });
                    }
                    true
                }
                // A token further back in the chain: the current one descends from it.
                _ => current.as_deref().is_some_and(|current| (rotation.later_in_chain)(current)),
            };
            if !older_link {
                return Ok(RefreshOutcome::Invalid);
            }
            // A replaced token came back outside the retry window: one of the two presenters is
            // not the device. End the chain and every session of the device; it logs in again.
            tx.execute(
                "UPDATE devices SET refresh_hash = NULL, refresh_issued_at = NULL, previous_refresh_hash = NULL,
                     previous_refresh_until = NULL, sessions_ended_ms = ?2
                 WHERE id = ?1",
                params![id, i64::try_from(rotation.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)],
            )?;
            Ok(RefreshOutcome::Reused { user })
        })
    }

    fn server_key(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        self.write(|tx| {
            let found: Option<Vec<u8>> = tx
                .query_row("SELECT value FROM server_secrets WHERE name = ?1", params![name], |r| r.get(0))
                .optional()?;
            if let Some(key) = found {
                return Ok(key);
            }
            let key: [u8; 32] = rand::random();
            tx.execute("INSERT INTO server_secrets (name, value) VALUES (?1, ?2)", params![name, key.to_vec()])?;
            Ok(key.to_vec())
        })
    }

    fn device_access(&self, device: DeviceId, user: &str, now: OffsetDateTime) -> Result<DeviceAccess, StorageError> {
        let id = device.to_string();
        let row = self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT d.user_name, d.revoked_at, d.last_seen_at, u.role, d.sessions_ended_ms
                     FROM devices d JOIN users u ON u.name = d.user_name WHERE d.id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                        ))
                    },
                )
                .optional()?)
        })?;
        let Some((owner, revoked_at, last_seen_at, role, sessions_ended_at)) = row else {
            return Ok(DeviceAccess::Unknown);
        };
        if revoked_at.is_some() {
            return Ok(DeviceAccess::Revoked);
        }
        if owner != user {
            return Ok(DeviceAccess::Unknown);
        }
        // Rewrite last-seen at most once a minute, so most requests stay read-only.
        if last_seen_at < stored_time(now - LAST_SEEN_GRANULARITY) {
            self.write(|tx| {
                tx.execute(
                    "UPDATE devices SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
                    params![id, stored_time(now)],
                )?;
                Ok(())
            })?;
        }
        Ok(DeviceAccess::Active {
            role: parse_role(&role)?,
            sessions_ended_at: sessions_ended_at
                .map(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000))
                .transpose()
                .map_err(|_| StorageError::Corrupt("bad sessions_ended_ms".into()))?,
        })
    }

    fn device_registered_at(&self, device: DeviceId) -> Result<Option<OffsetDateTime>, StorageError> {
        let stored: Option<String> = self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT registered_at FROM devices WHERE id = ?1")?
                .query_row(params![device.to_string()], |r| r.get(0))
                .optional()?)
        })?;
        stored.map(|t| parse_stored_time(&t)).transpose()
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StorageError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY user_name, registered_at, id"))?;
            let rows = stmt.query_map([], device_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(device_record).collect()
        })
    }

    fn revoke_device(&self, device: DeviceId, now: OffsetDateTime) -> Result<Option<DeviceRecord>, StorageError> {
        self.write(|tx| {
            let id = device.to_string();
            tx.execute(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?2), refresh_hash = NULL, refresh_issued_at = NULL,
                     previous_refresh_hash = NULL, previous_refresh_until = NULL
                 WHERE id = ?1",
                params![id, stored_time(now)],
            )?;
            let row = tx
                .query_row(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"), params![id], device_row)
                .optional()?;
            row.map(device_record).transpose()
        })
    }

    fn sync(&self, caller: &SyncCaller, request: &SyncRequest, now: OffsetDateTime) -> Result<Vec<u8>, StorageError> {
        let form = sync_core::form::FormDefinition::default_dtsen();
        // The checks (load, apply, validate, save each document) run on a read connection before
        // the write lock, so concurrent devices use every core; the write transaction re-checks
        // only households that changed in between.
        let decisions = self.read(|conn| {
            if feed::replay(conn, caller, request)?.is_some() {
                return Ok(None);
            }
            request
                .push
                .iter()
                .map(|push| feed::decide(conn, caller, push, form, now))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })?;
        self.write(|tx| {
            if let Some(body) = feed::replay(tx, caller, request)? {
                return Ok(body);
            }
            let decisions = match decisions {
                Some(d) => d,
                None => request
                    .push
                    .iter()
                    .map(|push| feed::decide(tx, caller, push, form, now))
                    .collect::<Result<_, _>>()?,
            };
            feed::commit(tx, caller, request, decisions, form, 5000, now)
        })
    }

    fn pack_page(&self, village: &str, after: Option<HouseholdId>, limit: u32) -> Result<PackPage, StorageError> {
        self.read(|conn| feed::pack_page(conn, village, after, limit))
    }

    fn documents(&self, ids: &[HouseholdId]) -> Result<Vec<(HouseholdId, String, Vec<u8>)>, StorageError> {
        self.read(|conn| feed::documents(conn, ids))
    }

    fn roster_stage(
        &self,
        import: uuid::Uuid,
        chunk: u32,
        user: &str,
        households: &[sync_core::roster::RosterHousehold],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.write(|tx| roster::stage(tx, import, chunk, user, households, now))
    }

    fn roster_commit(
        &self,
        import: uuid::Uuid,
        chunks: u32,
        editor: &sync_core::model::Editor,
    ) -> Result<crate::roster::ImportSummary, StorageError> {
        let form = sync_core::form::FormDefinition::default_dtsen();
        self.write(|tx| roster::commit(tx, import, chunks, editor, form))
    }

    fn export_page(
        &self,
        area: &str,
        after: Option<HouseholdId>,
        limit: u32,
        filter: &sync_core::protocol::ExportFilter,
    ) -> Result<sync_core::protocol::ExportPage, StorageError> {
        self.read(|conn| export::page(conn, area, after, limit, filter))
    }

    fn refresh_derived(&self) -> Result<(), StorageError> {
        self.refresh_facts()
    }

    fn household_village(&self, id: HouseholdId) -> Result<Option<String>, StorageError> {
        self.read(|conn| supervise::village_of(conn, id))
    }

    fn households_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<(HouseholdId, String)>, StorageError> {
        self.read(|conn| supervise::with_prefix(conn, prefix, limit))
    }

    fn review_list(
        &self,
        areas: Option<&[String]>,
        status: Option<sync_core::model::ReviewStatus>,
    ) -> Result<Vec<sync_core::protocol::HouseholdBrief>, StorageError> {
        self.refresh_facts()?;
        self.write(|tx| supervise::review_list(tx, areas, status))
    }

    fn review(
        &self,
        id: HouseholdId,
        editor: &sync_core::model::Editor,
        decision: sync_core::model::ReviewDecision,
        comment: Option<&str>,
    ) -> Result<sync_core::protocol::HouseholdBrief, StorageError> {
        self.write(|tx| supervise::review(tx, id, editor, decision, comment))
    }

    fn conflicts(&self, areas: Option<&[String]>) -> Result<Vec<sync_core::protocol::ConflictItem>, StorageError> {
        self.refresh_facts()?;
        self.write(|tx| {
            let devices = supervise::device_names(tx)?;
            supervise::conflicts(tx, areas, &devices)
        })
    }

    fn resolve(
        &self,
        id: HouseholdId,
        editor: &sync_core::model::Editor,
        path: &sync_core::model::FieldPath,
        choice: &supervise::Choice,
    ) -> Result<sync_core::protocol::HouseholdBrief, StorageError> {
        self.write(|tx| supervise::resolve(tx, id, editor, path, choice))
    }

    fn duplicates(&self, areas: Option<&[String]>) -> Result<Vec<sync_core::protocol::DuplicatePair>, StorageError> {
        self.refresh_facts()?;
        self.write(|tx| supervise::duplicates(tx, areas))
    }

    fn merge(
        &self,
        survivor: HouseholdId,
        retired: HouseholdId,
        editor: &sync_core::model::Editor,
    ) -> Result<sync_core::protocol::MergeReply, StorageError> {
        self.write(|tx| merge::merge(tx, survivor, retired, editor))
    }

    fn dismiss(&self, a: HouseholdId, b: HouseholdId, user: &str, now: OffsetDateTime) -> Result<(), StorageError> {
        self.write(|tx| supervise::dismiss(tx, a, b, user, now))
    }

    fn progress(&self, areas: Option<&[String]>) -> Result<sync_core::protocol::ProgressReport, StorageError> {
        self.refresh_facts()?;
        self.write(|tx| supervise::progress(tx, areas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance;

    fn storage() -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let storage = SqliteStorage::open(&dir.path().join("server.db")).expect("open");
        (dir, storage)
    }

    #[test]
    fn a_decision_made_before_a_concurrent_write_is_made_again_under_the_lock() {
        use std::collections::BTreeMap;
        use sync_core::model::{DeviceId, Editor, Edits, Household};
        use sync_core::sync::{PushHousehold, SyncRequest};
        use sync_core::value::FieldValue;
        let (_dir, storage) = storage();
        let form = sync_core::form::FormDefinition::default_dtsen();
        let village = sync_core::ids::VillageCode::parse("73.14.01.1001").expect("Bilokka").to_string();
        let now = time::macros::datetime!(2026-11-20 09:00 UTC);
        let caller = |device| SyncCaller {
            user: "pkh.contoh".into(),
            role: Role::Enumerator,
            device,
            active: vec![village.clone()],
            ended: Vec::new(),
            registered_at: now - time::Duration::days(1),
        };
        let (a, b) = (caller(DeviceId::random()), caller(DeviceId::random()));
        let set = |field: &str, value: FieldValue| Edits {
            answers: BTreeMap::from([(field.to_string(), Some(value))]),
            ..Edits::default()
        };
        let request = |push: PushHousehold| SyncRequest {
            batch: uuid::Uuid::new_v4(),
            cursors: BTreeMap::new(),
            push: vec![push],
            max_changes: 100,
        };
        let editor = |who: &SyncCaller| Editor { user: who.user.clone(), device: who.device, now };
        let id = HouseholdId::random();
        let mut created = set("village_code", FieldValue::Text(village.clone()));
        created.answers.insert("head_name".into(), Some(FieldValue::Text("La Sintetis".into())));
        let (mut on_a, create) = Household::create(id, &form.key(), &editor(&a), &created).expect("create");
        let push = |changes: Vec<Vec<u8>>, village: Option<String>| PushHousehold {
            household: id,
            village,
            changes: changes.into_iter().map(serde_bytes::ByteBuf::from).collect(),
        };
        storage.sync(&a, &request(push(vec![create.bytes.clone()], Some(village.clone()))), now).expect("create");
        let mut on_b = Household::from_changes(id, &[create.bytes], b.device).expect("b has it");
        let edit = |h: &mut Household, who: &SyncCaller, field: &str, value: i64| {
            let saved = h.apply(&editor(who), "edit", &set(field, FieldValue::Int(value)), |_| Ok::<(), ()>(()));
            saved.expect("apply").expect("ok").1.expect("a change").bytes
        };
        let b_request = request(push(vec![edit(&mut on_b, &b, "floor_area_m2", 36)], None));
        let a_request = request(push(vec![edit(&mut on_a, &a, "roof_material", 2)], None));

        // B's checks run against the document as it was; A's edit commits before B takes the lock.
        let decisions = storage
            .read(|conn| {
                b_request.push.iter().map(|p| feed::decide(conn, &b, p, form, now)).collect::<Result<Vec<_>, _>>()
            })
            .expect("decide");
        storage.sync(&a, &a_request, now).expect("a commits first");
        storage.write(|tx| feed::commit(tx, &b, &b_request, decisions, form, 100, now)).expect("b commits");

        // The stored document holds both edits: B's stale decision was made again.
        let doc: Vec<u8> = storage
            .read(
                |conn| Ok(conn.query_row("SELECT doc FROM households WHERE id = ?1", [id.to_string()], |r| r.get(0))?),
            )
            .expect("stored");
        let answers = Household::load(id, &doc, DeviceId::random()).expect("load").state().answers;
        assert_eq!(answers.get("floor_area_m2"), Some(&FieldValue::Int(36)));
        assert_eq!(answers.get("roof_material"), Some(&FieldValue::Int(2)));
    }

    fn fresh() -> conformance::Fresh {
        let (dir, db) = storage();
        conformance::Fresh { db: std::sync::Arc::new(db), keep: Box::new(dir) }
    }

    #[test]
    fn sqlite_passes_the_conformance_suite() {
        conformance::run_all(&fresh);
    }

    #[test]
    fn sqlite_passes_the_storage_conformance_suite() {
        for (name, case) in conformance::accounts::CASES {
            let (_dir, storage) = storage();
            eprintln!("conformance case: {name}");
            case(&storage);
        }
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let (dir, storage) = storage();
        storage
            .create_user(&NewUser {
                name: "pkh.contoh01".into(),
                role: Role::Enumerator,
                password_hash: "x".into(),
                created_at: OffsetDateTime::UNIX_EPOCH,
            })
            .expect("create user");
        drop(storage);
        let storage = SqliteStorage::open(&dir.path().join("server.db")).expect("reopen");
        assert_eq!(storage.user_count().expect("count"), 1);
        let conn = storage.open_reader().expect("reader");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn upgrading_to_the_trust_schema_dates_stored_households_and_the_villages_devices_held() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join("server.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            let tx = conn.transaction().expect("tx");
            for sql in &MIGRATIONS[..5] {
                tx.execute_batch(sql).expect("an older schema");
            }
            tx.pragma_update(None, "user_version", 5).expect("version");
            tx.execute_batch(
                "INSERT INTO users VALUES ('pkh.lama', 'enumerator', 'x', '2026-01-01T00:00:00Z');
                 INSERT INTO devices (id, user_name, name, registered_at, last_seen_at)
                     VALUES ('dev-a', 'pkh.lama', 't', '2026-02-01T00:00:00Z', '2026-02-01T00:00:00Z');
                 INSERT INTO village_assignments (user_name, village, started_at, ended_at)
                     VALUES ('pkh.lama', '73.14.01.1001', '2026-01-15T00:00:00Z', '2026-03-01T00:00:00Z'),
                            ('pkh.lama', '73.14.01.1002', '2026-01-15T00:00:00Z', NULL);
                 INSERT INTO households VALUES ('h1', '73.14.01.1001', x'00', '', 2, '2026-02-20T00:00:00Z');
                 INSERT INTO changes (hash, household_id, village, device_id, user_name, bytes, received_at) VALUES
                     ('c1', 'h1', '73.14.01.1001', 'dev-a', 'pkh.lama', x'00', '2026-02-10T00:00:00Z'),
                     ('c2', 'h1', '73.14.01.1001', 'dev-a', 'pkh.lama', x'00', '2026-02-20T00:00:00Z');",
            )
            .expect("rows of an older server");
            tx.commit().expect("commit");
        }
        let storage = SqliteStorage::open(&path).expect("upgrade");
        let (created, held): (String, Vec<(String, String)>) = storage
            .read(|conn| {
                let created = conn.query_row("SELECT created_at FROM households WHERE id = 'h1'", [], |r| r.get(0))?;
                let mut stmt =
                    conn.prepare("SELECT village, first_at FROM device_villages WHERE device_id = 'dev-a' ORDER BY 1")?;
                let held = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
                Ok((created, held))
            })
            .expect("read");
        assert_eq!(created, "2026-02-10T00:00:00Z", "the first change's arrival");
        let expected = [
            ("73.14.01.1001".to_string(), "2026-02-10T00:00:00Z".to_string()),
            ("73.14.01.1002".to_string(), "2026-02-01T00:00:00Z".to_string()),
        ];
        assert_eq!(held, expected, "where it wrote, and its user's active villages");
        // Households stored from now on are dated by the trigger.
        storage
            .write(|tx| {
                tx.execute_batch(
                    "INSERT INTO households (id, village, doc, heads, updated_seq, updated_at)
                     VALUES ('h2', '73.14.01.1002', x'00', '', 3, '2026-04-01T00:00:00Z')",
                )?;
                Ok(())
            })
            .expect("insert");
        let created: String = storage
            .read(|conn| Ok(conn.query_row("SELECT created_at FROM households WHERE id = 'h2'", [], |r| r.get(0))?))
            .expect("read");
        assert_eq!(created, "2026-04-01T00:00:00Z");
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join("server.db");
        Connection::open(&path).expect("open").pragma_update(None, "user_version", 99).expect("set version");
        let err = SqliteStorage::open(&path).expect_err("newer schema");
        assert!(err.to_string().contains("upgrade pilar-server"), "{err}");
    }

    #[test]
    fn stored_times_sort_as_text_in_time_order() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let later = t + time::Duration::milliseconds(1500);
        assert_eq!(stored_time(t), "2027-01-15T08:00:00Z");
        assert!(stored_time(t) < stored_time(later));
        assert_eq!(parse_stored_time(&stored_time(later)).expect("parse"), t + time::Duration::seconds(1));
    }
}
