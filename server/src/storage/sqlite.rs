//! The embedded SQLite backend of the storage seam ([`crate::storage::Database`]): SQL only. One
//! writer connection behind a mutex, a small pool
//! of read-only connections, WAL with `synchronous=FULL` (an acknowledged write survives power
//! loss), and schema migrations numbered by `PRAGMA user_version`.
//!
//! Times are stored as RFC 3339 UTC text truncated to whole seconds (`2026-01-02T03:04:05Z`), so
//! text order is time order.

mod schema;
mod tx;

use super::StorageError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use schema::MIGRATIONS;

/// Read connections kept open between requests; more are opened under load and closed after.
const IDLE_READERS: usize = 4;

/// WAL pages after which a commit copies the WAL into the database (SQLite's default is 1,000).
const WAL_CHECKPOINT_PAGES: i64 = 64;

/// The size the WAL file is cut back to once it has been copied into the database.
const WAL_LIMIT_BYTES: u64 = 256 << 10;

/// How long a statement waits for a lock another connection holds before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The SQLite backend: a database file in the data directory.
pub struct SqliteDatabase {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteDatabase {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteDatabase, StorageError> {
        let mut writer = Connection::open(path)?;
        // Pages freed inside the file (a remembered response replaced, a row rewritten smaller)
        // go back to the file system (`return_free_pages`), so the file follows the data: only
        // settable before the first table exists, so a database created before this keeps its
        // free pages for reuse (`VACUUM` with the server stopped converts it: ARCHITECTURE.md).
        if writer.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? == 0 {
            writer.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        }
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        // 8 MiB of page cache for the writer (SQLite's default is 2 MiB): deriving the facts of
        // a large import touches index pages all over the database, and with the default cache
        // they are read and written back again and again. 32 MiB derived a 20,000-household
        // import's facts in 7.0 s instead of 8.4, but a full cache is most of the server's memory:
        // `pilar-bench load` peaked at 109.3 MiB with it, 92.0 MiB with 8 (issue 15 sets 100 MB).
        writer.pragma_update(None, "cache_size", -8192)?;
        // The WAL is checkpointed into the database every WAL_CHECKPOINT_PAGES pages, and when
        // the writer starts it again from the beginning its file is cut to WAL_LIMIT_BYTES: a
        // large transaction (a roster import) leaves no WAL of its size on disk (SQLite keeps the
        // file at its largest size otherwise: 7.5 MB beside a 9.5 MB database in `pilar-bench
        // sync`).
        writer.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        writer.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES as i64)?;
        migrate(&mut writer)?;
        Ok(SqliteDatabase { path: path.to_path_buf(), writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) })
    }

    /// Run `f` in one IMMEDIATE transaction on the writer connection; commits when `f` succeeds.
    fn write_conn<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        // A panic mid-transaction rolls it back when the transaction drops, so the connection
        // behind a poisoned lock is still sound.
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        return_free_pages(&conn);
        self.cut_wal(&conn);
        Ok(value)
    }

    /// After a commit that left the WAL file larger than [`WAL_LIMIT_BYTES`] (a transaction
    /// larger than that), copy the WAL into the database and empty its file now, rather than at
    /// the next write. Never waits: a reader still on an older snapshot makes the checkpoint give
    /// up at once (the next write restarts the WAL and cuts it then); a failure only leaves the
    /// file as it was, so it is logged, not returned (the transaction has committed).
    fn cut_wal(&self, conn: &Connection) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        if std::fs::metadata(&wal).map_or(true, |m| m.len() <= WAL_LIMIT_BYTES) {
            return;
        }
        let checkpoint = || -> Result<(), rusqlite::Error> {
            conn.busy_timeout(std::time::Duration::ZERO)?;
            let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
            conn.busy_timeout(BUSY_TIMEOUT)?;
            done.map(drop)
        };
        if let Err(e) = checkpoint() {
            tracing::warn!(error = %e, "cannot checkpoint the WAL after a large transaction; the next write will");
        }
    }

    /// Run `f` on a read-only connection (WAL readers never wait for the writer).
    fn read_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StorageError>) -> Result<T, StorageError> {
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
        self.read_conn(|conn| {
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
        self.write_conn(|tx| work(&mut tx::SqliteTx { conn: tx }))
    }
}

/// Free pages a database may hold before [`return_free_pages`] gives them all back (128 KiB at
/// 4 KiB pages): fewer are soon reused, and moving pages costs writes.
const FREE_PAGES_KEPT: i64 = 32;

/// After a commit that left more than [`FREE_PAGES_KEPT`] pages free inside the database file,
/// give them back to the file system (`PRAGMA incremental_vacuum`, a no-op on a database made
/// without incremental auto-vacuum). A failure only leaves the pages free, so it is logged.
fn return_free_pages(conn: &Connection) {
    let vacuum = || -> Result<(), rusqlite::Error> {
        let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        if free > FREE_PAGES_KEPT {
            // Each step frees one page: step it to the end.
            // Each step frees one page: step it to the end.
            let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
        }
        Ok(())
    };
    if let Err(e) = vacuum() {
        tracing::warn!(error = %e, "cannot give free pages back after a commit; they stay for reuse");
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // FULL: a commit reported as done survives power loss (the server acknowledges only then).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{NewUser, Transactions, conformance};
    use rusqlite::params;
    use sync_core::protocol::Role;

    fn storage() -> (tempfile::TempDir, SqliteDatabase) {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let storage = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
        (dir, storage)
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
    fn a_large_transaction_leaves_no_large_wal_behind() {
        let (dir, storage) = storage();
        let wal = || std::fs::metadata(dir.path().join("server.db-wal")).map(|m| m.len()).unwrap_or(0);
        // 8 MiB in one transaction (a roster import's size), then an ordinary small write.
        let large = vec![7u8; 8 << 20];
        storage
            .write_conn(|tx| {
                tx.execute(
                    "INSERT INTO sync_batches (device_id, batch, response, created_at) VALUES ('d', 'b1', ?1, 't')",
                    params![large],
                )?;
                Ok(())
            })
            .expect("large write");
        assert!(wal() <= WAL_LIMIT_BYTES, "the WAL is {} B right after a large transaction", wal());
        // A reader on an older snapshot keeps the checkpoint from finishing; it does not wait
        // for the reader, and the next write after the reader ends cuts the WAL.
        let reader = storage.open_reader().expect("reader");
        reader.execute_batch("BEGIN; SELECT count(*) FROM sync_batches;").expect("read");
        storage
            .write_conn(|tx| {
                tx.execute(
                    "INSERT INTO sync_batches (device_id, batch, response, created_at) VALUES ('d', 'b2', ?1, 't')",
                    params![large],
                )?;
                Ok(())
            })
            .expect("large write beside a reader");
        reader.execute_batch("COMMIT").expect("end read");
        storage
            .write_conn(|tx| {
                tx.execute("DELETE FROM sync_batches", [])?;
                Ok(())
            })
            .expect("small write");
        storage.write_conn(|tx| Ok(tx.execute("UPDATE sync_batches SET created_at = 'u'", [])?)).expect("write");
        assert!(wal() <= WAL_LIMIT_BYTES, "the WAL is {} B after the large transaction was checkpointed", wal());
    }

    #[test]
    fn pages_freed_by_a_commit_go_back_to_the_file_system() {
        let (dir, storage) = storage();
        let size = || {
            let writer = storage.writer.lock().expect("writer");
            writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
            std::fs::metadata(dir.path().join("server.db")).expect("db").len()
        };
        let empty = size();
        // Responses remembered for 200 devices (4 MiB), then forgotten (each device's next batch).
        storage
            .write_conn(|tx| {
                for n in 0..200 {
                    tx.execute(
                        "INSERT INTO sync_batches (device_id, batch, response, created_at) VALUES (?1, 'b', ?2, 't')",
                        params![format!("d{n}"), vec![n as u8; 20 << 10]],
                    )?;
                }
                Ok(())
            })
            .expect("remember");
        assert!(size() > empty + (3 << 20), "the responses are on disk");
        storage.write_conn(|tx| Ok(tx.execute("DELETE FROM sync_batches", [])?)).expect("forget");
        let free: i64 = storage
            .write_conn(|tx| Ok(tx.pragma_query_value(None, "freelist_count", |r| r.get(0))?))
            .expect("free pages");
        assert!(free <= FREE_PAGES_KEPT, "{free} pages stay free inside the file");
        assert!(size() < empty + (256 << 10), "the file is {} B after the responses went (empty: {empty} B)", size());
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let (dir, storage) = storage();
        let user = NewUser {
            name: "pkh.contoh01".into(),
            role: Role::Enumerator,
            password_hash: "x".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(Transactions::write(&storage, |tx| tx.insert_user(&user)).expect("create user"));
        drop(storage);
        let storage = SqliteDatabase::open(&dir.path().join("server.db")).expect("reopen");
        assert_eq!(Transactions::read(&storage, |tx| tx.user_count()).expect("count"), 1);
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
        let storage = SqliteDatabase::open(&path).expect("upgrade");
        let (created, held): (String, Vec<(String, String)>) = storage
            .read_conn(|conn| {
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
            .write_conn(|tx| {
                tx.execute_batch(
                    "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at)
                     VALUES ('h2', '73.14.01.1002', x'00', '', 3, '2026-04-01T00:00:00Z')",
                )?;
                Ok(())
            })
            .expect("insert");
        let created: String = storage
            .read_conn(
                |conn| Ok(conn.query_row("SELECT created_at FROM households WHERE id = 'h2'", [], |r| r.get(0))?),
            )
            .expect("read");
        assert_eq!(created, "2026-04-01T00:00:00Z");
    }

    #[test]
    fn documents_and_changes_stored_uncompressed_by_an_older_server_are_read_as_they_were() {
        use sync_core::model::{DeviceId, Editor, Household, HouseholdId};
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join("server.db");
        let device = DeviceId(uuid::Uuid::from_u128(7));
        let editor = Editor { user: "pkh.lama".into(), device, now: time::OffsetDateTime::UNIX_EPOCH };
        let id = HouseholdId(uuid::Uuid::from_u128(1));
        let form = sync_core::form::FormDefinition::default_dtsen().key();
        let (household, saved) = Household::create_batched(id, &form, &editor, &std::collections::BTreeMap::new(), &[])
            .expect("a household");
        let (doc, change) = (household.save(), saved.bytes);
        {
            let mut conn = Connection::open(&path).expect("open");
            let tx = conn.transaction().expect("tx");
            for sql in &MIGRATIONS[..8] {
                tx.execute_batch(sql).expect("an older schema");
            }
            tx.pragma_update(None, "user_version", 8).expect("version");
            tx.execute(
                "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at, created_at)
                 VALUES (?1, '73.14.01.1001', ?2, '', 1, '2026-02-20T00:00:00Z', '2026-02-20T00:00:00Z')",
                rusqlite::params![id.to_string(), doc],
            )
            .expect("a household of an older server");
            tx.execute(
                "INSERT INTO changes (hash, household_id, village, device_id, user_name, bytes, received_at, pos)
                 VALUES ('c1', ?1, '73.14.01.1001', ?2, 'pkh.lama', ?3, '2026-02-20T00:00:00Z', 1)",
                rusqlite::params![id.to_string(), device.to_string(), change],
            )
            .expect("a change of an older server");
            tx.commit().expect("commit");
        }
        let storage = SqliteDatabase::open(&path).expect("upgrade");
        let (row, feed) = Transactions::read(&storage, |tx| {
            Ok((tx.household(id)?.expect("stored"), tx.feed_after("73.14.01.1001", 0, 1, None, 10)?))
        })
        .expect("read");
        assert_eq!(row.doc, doc, "the document as the older server stored it");
        assert_eq!(Household::load(id, &row.doc, device).expect("loads").heads(), household.heads());
        assert_eq!(feed.into_iter().map(|c| c.bytes).collect::<Vec<_>>(), [change]);
    }

    #[test]
    fn upgrading_to_village_numbering_keeps_every_cursor_devices_hold_valid() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join("server.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            let tx = conn.transaction().expect("tx");
            for sql in &MIGRATIONS[..6] {
                tx.execute_batch(sql).expect("an older schema");
            }
            tx.pragma_update(None, "user_version", 6).expect("version");
            // Global sequence numbers 1..=5 over two villages; h2 has facts, h1 does not.
            tx.execute_batch(
                "INSERT INTO households (id, village, doc, heads, updated_seq, updated_at) VALUES
                     ('00000000-0000-0000-0000-000000000001', '73.14.01.1001', x'00', '', 4, '2026-02-20T00:00:00Z'),
                     ('00000000-0000-0000-0000-000000000002', '73.14.01.1002', x'00', '', 5, '2026-02-20T00:00:00Z');
                 INSERT INTO household_facts (household_id, village, seq, brief, conflicts, conflict_count, visits)
                     VALUES ('00000000-0000-0000-0000-000000000002', '73.14.01.1002', 5, '{}', '[]', 0, 0);
                 INSERT INTO changes (hash, household_id, village, device_id, user_name, bytes, received_at) VALUES
                     ('c1', '00000000-0000-0000-0000-000000000001', '73.14.01.1001', 'd', 'u', x'01', '2026-02-10T00:00:00Z'),
                     ('c2', '00000000-0000-0000-0000-000000000002', '73.14.01.1002', 'd', 'u', x'02', '2026-02-10T00:00:00Z'),
                     ('c3', '00000000-0000-0000-0000-000000000001', '73.14.01.1001', 'd', 'u', x'03', '2026-02-10T00:00:00Z'),
                     ('c4', '00000000-0000-0000-0000-000000000001', '73.14.01.1001', 'd', 'u', x'04', '2026-02-10T00:00:00Z'),
                     ('c5', '00000000-0000-0000-0000-000000000002', '73.14.01.1002', 'd', 'u', x'05', '2026-02-10T00:00:00Z');",
            )
            .expect("rows of an older server");
            tx.commit().expect("commit");
        }
        let db = SqliteDatabase::open(&path).expect("upgrade");
        let positions = |village: &str| {
            Transactions::read(&db, |tx| {
                let head = tx.feed_head(village)?;
                Ok(tx.feed_after(village, 0, head, None, 100)?.into_iter().map(|c| c.position).collect::<Vec<_>>())
            })
            .expect("feed")
        };
        assert_eq!(positions("73.14.01.1001"), [1, 3, 4], "changes keep their numbers");
        // A device's cursor was at most the last global number (5), in any village, even one
        // without changes: every village's numbering continues above it.
        for village in ["73.14.01.1001", "73.14.01.1002", "73.14.01.1003"] {
            assert_eq!(Transactions::read(&db, |tx| tx.feed_head(village)).expect("head"), 5, "{village}");
        }
        let entry = crate::service::feed::Entry {
            hash: "c6",
            household: sync_core::model::HouseholdId(uuid::Uuid::nil()),
            device: sync_core::model::DeviceId(uuid::Uuid::nil()),
            user: "u",
        };
        let head = Transactions::write(&db, |tx| {
            crate::service::feed::append(tx, "73.14.01.1003", &[entry], OffsetDateTime::UNIX_EPOCH)
        })
        .expect("append");
        assert_eq!(head, 6, "a device at cursor 5 for that village gets it");
        let page =
            Transactions::read(&db, |tx| crate::service::feed::read(tx, "73.14.01.1003", 5, None, 10)).expect("read");
        assert_eq!((page.changes.len(), page.cursor), (1, 6));
        let stale: std::collections::BTreeMap<String, u64> = Transactions::read(&db, |tx| {
            Ok(tx.stale_facts(10)?.into_iter().map(|(id, v)| (id.to_string(), v)).collect())
        })
        .expect("stale");
        // Migration 7 queued the household without facts at its version; migration 13 queued
        // the one with facts again (its facts gained columns) at the version they were from.
        assert_eq!(
            stale,
            std::collections::BTreeMap::from([
                ("00000000-0000-0000-0000-000000000001".to_string(), 1),
                ("00000000-0000-0000-0000-000000000002".to_string(), 1)
            ]),
            "households are derived after the upgrade"
        );
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join("server.db");
        Connection::open(&path).expect("open").pragma_update(None, "user_version", 99).expect("set version");
        let err = SqliteDatabase::open(&path).expect_err("newer schema");
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

    /// A device's every sync hands its villages again; the last time moves on only once it is an
    /// hour old, so the rows are not rewritten on every sync (issue 15, server disk).
    #[test]
    fn the_last_time_a_village_was_handed_moves_on_by_the_hour() {
        let (_dir, storage) = storage();
        let device = crate::storage::DeviceId(uuid::Uuid::from_u128(7));
        let villages = ["73.14.01.1001".to_string()];
        let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let last = |storage: &SqliteDatabase| -> String {
            storage
                .read_conn(|conn| {
                    Ok(conn.query_row("SELECT last_at FROM device_villages", [], |r| r.get::<_, String>(0))?)
                })
                .expect("read")
        };
        for (minutes, expected) in [(0, 0), (10, 0), (59, 0), (60, 60), (61, 60), (30, 60), (125, 125)] {
            let at = start + time::Duration::minutes(minutes);
            storage.write(|tx| tx.hand_villages(device, &villages, at)).expect("hand");
            assert_eq!(last(&storage), stored_time(start + time::Duration::minutes(expected)), "at +{minutes} min");
        }
        assert_eq!(storage.read(|tx| tx.villages_handed(device)).expect("first")[&villages[0]], start);
    }
}
