//! The PostgreSQL backend of the storage seam ([`crate::storage::Database`]): SQL only, on a pool
//! of synchronous `postgres` connections (each drives a small runtime of its own, so the pool is
//! used, and dropped, off tokio's async workers), the schema of `crate::postgres_schema` brought
//! up to date when the database is opened.
//!
//! Transactions (the seam's contract, checked by `storage::conformance`):
//! - A read is `REPEATABLE READ READ ONLY`: one snapshot, never waits for a writer, never fails
//!   for a concurrent write.
//! - A write is `REPEATABLE READ` (snapshot isolation): of two transactions that write the same
//!   row, the second fails with a serialization failure (40001), and a deadlock ends one of them
//!   (40P01); such a transaction is run again from the start, up to [`MAX_WRITE_ATTEMPTS`] times.
//!   Every rule above the seam that reads a row to decide writes that row back (a household's
//!   document, a device's refresh chain, an import's state), so it never decides on a row that
//!   another server changed meanwhile. `SERIALIZABLE` would add predicate locks, whose false
//!   conflicts on small tables (every village's feed in one index page) made writers to different
//!   villages fail each other over and over; the feed needs row locks, not predicates.
//! - The feed head of a village ([`Tx::lock_feed_head`](crate::storage::Tx::lock_feed_head)) is
//!   its `feed_heads` row, locked `FOR UPDATE` after a transaction-scoped advisory lock on the
//!   village: appenders to one village queue there. One that waited finds the head moved after
//!   its snapshot and fails; it runs again holding a session-level advisory lock on that village
//!   taken *before* `BEGIN`, so its snapshot starts after the previous appender committed and it
//!   cannot lose the head again. Villages never wait for each other.
//! - Facts derivation takes its stale households with `FOR UPDATE SKIP LOCKED`, so several
//!   servers share the work instead of deriving the same households.
//!
//! Times are stored as SQLite stores them (RFC 3339 UTC text, whole seconds, `COLLATE "C"`), so
//! both backends hold the same values and text order is time order.

pub mod photos;
mod tx;

use super::StorageError;
use postgres::error::SqlState;
use postgres::{IsolationLevel, Statement};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::r2d2;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Connections a server keeps at most (PostgreSQL's own default allows 100 in all).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Times a write transaction is run before its serialization failure is returned.
const MAX_WRITE_ATTEMPTS: u32 = 40;

/// The first key of the advisory locks on village feed heads (the bytes of "feed"); the second
/// is `hashtext(village)`. Two-key advisory locks never collide with the migrations' one-key lock.
const FEED_LOCK_SPACE: i32 = i32::from_be_bytes(*b"feed");

/// The PostgreSQL backend: a connection pool on one database.
pub struct PostgresDatabase {
    /// Always `Some` until dropped (taken in `Drop` to close the connections off async workers).
    pool: Option<r2d2::Pool<Manager>>,
    /// The URL without its password, for messages.
    shown: String,
    /// Write transactions run again after a serialization failure, deadlock or busy feed head.
    retries: AtomicU64,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase").field("url", &self.shown).finish_non_exhaustive()
    }
}

impl PostgresDatabase {
    /// Connect to the database at `url` (`postgres://user[:password]@host[:port]/database`) with
    /// a pool of at most [`DEFAULT_MAX_CONNECTIONS`], and bring its schema up to date.
    ///
    /// Blocking, and must not run on an async worker (`postgres` drives a runtime of its own).
    pub fn open(url: &str) -> Result<PostgresDatabase, StorageError> {
        PostgresDatabase::open_with(url, DEFAULT_MAX_CONNECTIONS)
    }

    /// [`PostgresDatabase::open`] with at most `max_connections` connections.
    pub fn open_with(url: &str, max_connections: u32) -> Result<PostgresDatabase, StorageError> {
        let shown = redacted(url);
        let mut config: postgres::Config = url.parse().map_err(|e| {
            StorageError::Backend(
                format!("the database URL {shown} is not a PostgreSQL connection URL ({e}); write it as postgres://user@host:port/database").into(),
            )
        })?;
        // PostgreSQL's notices ("relation … already exists, skipping") are not news for the log.
        let options = match config.get_options() {
            Some(given) => format!("{given} -c client_min_messages=warning"),
            None => "-c client_min_messages=warning".to_string(),
        };
        config.options(&options);
        let manager = Manager(PostgresConnectionManager::new(config, postgres::NoTls));
        // One connection is made now (a wrong address or password fails the start-up, not the
        // first request); more are made as requests need them.
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| {
                StorageError::Backend(
                    format!("cannot connect to the PostgreSQL database {shown}: {e}; check that it runs and that the URL's user, password and database are right").into(),
                )
            })?;
        let db = PostgresDatabase { pool: Some(pool), shown, retries: AtomicU64::new(0) };
        let mut conn = db.connection()?;
        crate::postgres_schema::migrate(&mut conn.client)?;
        // Statements prepared before the migration would describe the old tables.
        conn.statements.clear();
        drop(conn);
        Ok(db)
    }

    /// How many write transactions were run again (after a serialization failure, a deadlock,
    /// or a busy feed head) since the database was opened: a figure for tests and benchmarks.
    pub fn retried_writes(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StorageError> {
        let pool = self.pool.as_ref().ok_or_else(|| StorageError::Backend("the database is closed".into()))?;
        pool.get().map_err(|e| {
            StorageError::Backend(
                format!(
                    "no connection to the PostgreSQL database {} within 30 s ({e}); check that it runs and accepts \
                     connections",
                    self.shown
                )
                .into(),
            )
        })
    }

    /// One attempt at a write transaction: the session locks of `prelock` first (in order), then
    /// `BEGIN … REPEATABLE READ`, `work`, `COMMIT`, and the session locks released. Villages whose
    /// feed head was busy are added to `contended`.
    fn attempt_write(
        &self,
        conn: &mut Connection,
        prelock: &BTreeSet<String>,
        contended: &mut BTreeSet<String>,
        work: &mut dyn FnMut(&mut dyn crate::storage::Tx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        for village in prelock {
            if let Err(e) =
                conn.client.execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&FEED_LOCK_SPACE, village])
            {
                release_session_locks(conn);
                return Err(e.into());
            }
        }
        let result = (|| {
            let Connection { client, statements, .. } = &mut *conn;
            let mut transaction = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).start()?;
            let mut tx = tx::PgTx { tx: &mut transaction, statements, write: true, prelocked: prelock, contended };
            work(&mut tx)?;
            transaction.commit()?;
            Ok(())
        })();
        if !prelock.is_empty() {
            release_session_locks(conn);
        }
        result
    }
}

/// Release every session-level advisory lock of `conn`; a connection that cannot is dropped from
/// the pool (it would keep villages locked).
fn release_session_locks(conn: &mut Connection) {
    if conn.client.execute("SELECT pg_advisory_unlock_all()", &[]).is_err() {
        conn.broken = true;
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Closing a `postgres::Client` runs its own runtime, which panics on a thread that drives
        // async tasks (the server drops its state on one): close the pool on a thread of its own.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl crate::storage::Database for PostgresDatabase {
    fn read_tx(
        &self,
        work: &mut dyn FnMut(&mut dyn crate::storage::ReadTx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut conn = self.connection()?;
        let Connection { client, statements, .. } = &mut *conn;
        let mut transaction =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let (prelocked, mut contended) = (BTreeSet::new(), BTreeSet::new());
        let mut tx = tx::PgTx {
            tx: &mut transaction,
            statements,
            write: false,
            prelocked: &prelocked,
            contended: &mut contended,
        };
        work(&mut tx)?;
        transaction.commit()?;
        Ok(())
    }

    fn write_tx(
        &self,
        work: &mut dyn FnMut(&mut dyn crate::storage::Tx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.write_tx_appending(&BTreeSet::new(), work)
    }

    fn write_tx_appending(
        &self,
        villages: &BTreeSet<String>,
        work: &mut dyn FnMut(&mut dyn crate::storage::Tx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        // The named villages are locked before the snapshot is taken: a concurrent appender to
        // one of them commits before this begins or after it ends, never under it.
        let mut prelock = villages.clone();
        let mut attempt = 1;
        loop {
            let mut contended = BTreeSet::new();
            let mut conn = self.connection()?;
            let result = self.attempt_write(&mut conn, &prelock, &mut contended, work);
            drop(conn);
            match result {
                Err(e) if attempt < MAX_WRITE_ATTEMPTS && retriable(&e) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    // At info: how often writers meet is what an operator of several servers tunes by.
                    tracing::info!(attempt, "a write transaction runs again after a concurrent write");
                    // A transaction that lost a village's feed head takes the village's lock before
                    // it begins, and cannot lose it again; other conflicts back off a little, at
                    // random, so that they do not meet again.
                    let queued = contended.iter().any(|v| !prelock.contains(v));
                    prelock.extend(contended);
                    if !queued {
                        pause(attempt);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Whether `e` is a failure PostgreSQL asks to retry: a serialization failure or a deadlock.
fn retriable(e: &StorageError) -> bool {
    let StorageError::Backend(source) = e else { return false };
    match source.downcast_ref::<postgres::Error>().and_then(postgres::Error::code) {
        Some(code) => *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED,
        None => false,
    }
}

/// A random pause before attempt `attempt + 1`: up to 1 ms, doubling, at most 64 ms.
fn pause(attempt: u32) {
    let ceiling_us = 1000u64 << attempt.min(6);
    std::thread::sleep(Duration::from_micros(rand::random_range(0..ceiling_us)));
}

impl From<postgres::Error> for StorageError {
    fn from(e: postgres::Error) -> StorageError {
        StorageError::Backend(Box::new(e))
    }
}

/// A pooled connection with the statements prepared on it (each SQL text is parsed once per
/// connection, not once per call).
struct Connection {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
    /// Set when the connection must not go back to the pool.
    broken: bool,
}

/// The pool's connection manager: `r2d2_postgres`'s, with a statement cache per connection.
struct Manager(PostgresConnectionManager<postgres::NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection { client: self.0.connect()?, statements: HashMap::new(), broken: false })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.broken || self.0.has_broken(&mut conn.client)
    }
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{}{user}:***{}", &url[..scheme_end], &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_hide_only_the_password() {
        assert_eq!(redacted("postgres://u:secret@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(redacted("postgres://u@h:1/db"), "postgres://u@h:1/db");
        assert_eq!(redacted("postgresql://h/db"), "postgresql://h/db");
    }
}
