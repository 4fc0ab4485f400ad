//! `pilar-server migrate --from … --to postgres://…`: move a whole server from its SQLite database
//! into a new, empty PostgreSQL database, table by table as SQLite's schema lists them, verified
//! row by row before the copy commits, so devices notice nothing but the address.
//!
//! How (and why):
//! - **The source** is a data directory (`server.db` inside, as `pilar-server --data-dir` keeps it)
//!   or `sqlite://PATH`. It is opened read-only and read in one transaction (one snapshot). The
//!   data directory's lock ([`crate::state::DataDirLock`]) is taken for the whole run: a server
//!   still running on the source is refused, and none can start on it meanwhile. Reading a live
//!   WAL database would be consistent, but work the old server acknowledged after the snapshot
//!   would be missing on PostgreSQL, so the server must be stopped first.
//! - **Schema versions**: the source must be at the SQLite schema this binary writes
//!   ([`crate::storage::sqlite::MIGRATIONS`]); an older one is refused with the fix (start this
//!   `pilar-server` on it once, which upgrades it, stop it, migrate again), never upgraded here,
//!   since the source stays untouched. The target's schema is created (or brought up to date) by
//!   [`crate::postgres_schema::migrate`].
//! - **The target must be empty**: no row in any table (a server that started on it once made its
//!   first admin and keys: that is not empty). Only `feed_floor`, whose row the schema itself
//!   writes, is replaced.
//! - **The copy** is generic: every table of SQLite's schema, columns by name, INTEGER → `bigint`,
//!   TEXT → `text`, BLOB → `bytea`, parents before children (foreign keys), each table streamed
//!   with `COPY … (FORMAT binary)`, all in one PostgreSQL transaction: a failure leaves nothing
//!   written. Identity columns are then moved past the copied numbers (`setval`, also past
//!   SQLite's AUTOINCREMENT counter).
//! - **Verification**, inside that transaction before it commits: row counts per table, then every
//!   row of every table compared in key order, byte columns (documents, changes, stored sync
//!   responses, secrets) by SHA-256 (`sha256()` on PostgreSQL's side). A difference rolls back.
//! - **Output**: progress per table (rows copied of total) and the summary; never a row's
//!   content, and a PostgreSQL error is reported without its DETAIL (which quotes key values).

mod copy;
mod progress;
mod tables;
mod verify;

pub use progress::{BarProgress, LineProgress, Progress, QuietProgress};

use crate::state::DataDirLock;
use crate::storage::DatabaseLocation;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The only table the PostgreSQL schema fills itself (`feed_floor`'s one row, 0 on a new
/// database): a new target holds it, and the copy replaces it with the source's.
pub const FILLED_BY_SCHEMA: &[&str] = &["feed_floor"];

/// Arguments of `pilar-server migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The SQLite server to copy: its data directory (the server.db inside it), or
    /// sqlite://PATH. Stop the server first; the source is only read.
    #[arg(long, value_name = "DIR|sqlite://PATH")]
    pub from: String,
    /// The new, empty PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/NAME (create it
    /// with createdb; its tables are created here).
    #[arg(long, value_name = "URL", env = "PILAR_MIGRATE_TO", hide_env_values = true)]
    pub to: String,
    /// With --from sqlite://PATH: the --data-dir of the server that ran on it, whose lock keeps
    /// that server and this copy apart (default: the directory holding PATH).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The SQLite server to copy: its database file and the data directory whose lock guards it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The SQLite database file.
    pub database: PathBuf,
    /// The data directory holding the lock file of the server that uses the database.
    pub data_dir: PathBuf,
}

impl Source {
    /// The source named by `--from` (a data directory or `sqlite://PATH`) and `--data-dir`.
    pub fn parse(from: &str, data_dir: Option<&Path>) -> Result<Source, MigrateError> {
        let from = from.trim();
        let database = if let Some(path) = from.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(MigrateError::Usage("--from sqlite:// names no file; write sqlite://PATH".into()));
            }
            PathBuf::from(path)
        } else if from.contains("://") {
            return Err(MigrateError::Usage(format!(
                "--from {} is not a SQLite server; give its data directory or sqlite://PATH",
                crate::storage::postgres::redacted(from)
            )));
        } else {
            Path::new(from).join(crate::config::DATABASE_FILE)
        };
        if !database.is_file() {
            return Err(MigrateError::Usage(format!(
                "there is no SQLite database at {}; give --from the server's data directory (the one holding {}) or \
                 sqlite://PATH",
                database.display(),
                crate::config::DATABASE_FILE
            )));
        }
        let data_dir = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => match database.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            },
        };
        Ok(Source { database, data_dir })
    }
}

/// Why a migration did not happen; each message says what to do. Nothing is ever written to the
/// target unless the whole copy verified.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The arguments name no usable source or target.
    #[error("{0}")]
    Usage(String),
    /// A `pilar-server` still runs on the source.
    #[error(
        "the data directory {dir} is in use by {holder}; stop that server first (work it acknowledged after the \
         copy would never reach PostgreSQL), then migrate again"
    )]
    SourceInUse {
        /// The locked data directory.
        dir: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
    },
    /// The source's SQLite schema is not the one this binary writes.
    #[error("{0}")]
    SourceSchema(String),
    /// The target holds rows (or tables) already.
    #[error(
        "the target database {url} is not empty: it holds {found}; migrate into a new, empty database (createdb), \
         or drop and create this one again if nothing in it is needed (a pilar-server that started on it once made \
         its first admin and keys there)"
    )]
    TargetNotEmpty {
        /// The target, without its password.
        url: String,
        /// What was found, e.g. "1 row in users, 3 rows in server_secrets".
        found: String,
    },
    /// The copy differs from the source; it was rolled back.
    #[error(
        "verification failed: {0}; the copy was rolled back and the target holds none of it. Nothing was changed \
         in the source; please report this as a bug"
    )]
    Mismatch(String),
    /// The source could not be read.
    #[error("the source database {path}: {message}")]
    Source {
        /// The source file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// The target failed (connection, permissions, a constraint); nothing was committed.
    #[error("the target database {url}: {message}; nothing was committed")]
    Target {
        /// The target, without its password.
        url: String,
        /// What PostgreSQL said (without the DETAIL that quotes row values).
        message: String,
    },
}

/// What a finished migration copied and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Tables copied (every table of SQLite's schema).
    pub tables: usize,
    /// Rows copied in all.
    pub rows: u64,
    /// Households copied.
    pub households: u64,
    /// Household documents found equal on both sides (SHA-256).
    pub documents_verified: u64,
    /// Feed changes found equal on both sides (SHA-256 of their bytes).
    pub changes_verified: u64,
    /// Rows per table, in copy order.
    pub per_table: Vec<(String, u64)>,
    /// Whole photos copied from the data directory's files, each verified by its SHA-256.
    pub photos: u64,
    /// Their bytes.
    pub photo_bytes: u64,
    /// Photo files whose bytes do not match their name: not copied.
    pub damaged_photos: u64,
    /// How long the whole migration took.
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migrated {} tables, {} rows: {} households ({} documents verified by SHA-256), {} feed changes \
             verified, every row of every table compared; {} photos ({} B) verified by SHA-256{}; {:.1} s",
            self.tables,
            self.rows,
            self.households,
            self.documents_verified,
            self.changes_verified,
            self.photos,
            self.photo_bytes,
            if self.damaged_photos == 0 {
                String::new()
            } else {
                format!(
                    " ({} damaged photo files not copied: their bytes do not match their name; devices still \
                     holding them send them again)",
                    self.damaged_photos
                )
            },
            self.elapsed.as_secs_f64()
        )
    }
}

/// Copy the SQLite server `source` into the empty PostgreSQL database at `target_url`, verify it,
/// and commit; progress goes to `progress`. Blocking (the synchronous PostgreSQL client): call it
/// outside any async runtime.
pub fn run(source: &Source, target_url: &str, progress: &mut dyn Progress) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let shown = match DatabaseLocation::parse(target_url) {
        Ok(DatabaseLocation::Postgres(url)) => crate::storage::postgres::redacted(&url),
        _ => {
            return Err(MigrateError::Usage(format!(
                "--to {} is not a PostgreSQL database; write postgres://USER@HOST:PORT/NAME",
                crate::storage::postgres::redacted(target_url)
            )));
        }
    };
    // Held until the end: no server starts on the source while it is copied.
    let _lock = lock_source(source)?;
    let mut sqlite = tables::open_source(&source.database)?;
    let tables = tables::source_tables(&sqlite, &source.database)?;

    let mut client = copy::connect(target_url, &shown)?;
    copy::refuse_unless_empty(&mut client, &shown)?;
    crate::postgres_schema::migrate(&mut client)
        .map_err(|e| MigrateError::Target { url: shown.clone(), message: format!("cannot create the schema: {e}") })?;
    let target_err = |e: postgres::Error| copy::target_error(&shown, e);

    // One snapshot of the source for the copy and the verification.
    let snapshot = sqlite.transaction().map_err(|e| tables::source_error(&source.database, e))?;
    let mut tx = client.transaction().map_err(target_err)?;
    copy::lock_and_check_empty(&mut tx, &tables, &shown)?;
    let mut per_table = Vec::with_capacity(tables.len());
    for table in &tables {
        let target_columns = copy::target_columns(&mut tx, &table.name, &shown)?;
        tables::check_same_columns(table, &target_columns)?;
        let copied = copy::copy_table(&snapshot, &mut tx, table, &source.database, &shown, progress)?;
        per_table.push((table.name.clone(), copied));
    }
    copy::check_no_other_tables(&mut tx, &tables, &shown)?;
    let photos = copy::copy_photos(&source.data_dir, &mut tx, &shown, progress)?;
    copy::move_identities_past_copied_rows(&snapshot, &mut tx, &source.database, &shown)?;
    progress.step("verifying: row counts and every row of every table (byte columns by SHA-256)");
    let verified = verify::compare(&snapshot, &mut tx, &tables, &source.database, &shown, progress)?;
    tx.commit().map_err(target_err)?;
    drop(snapshot);

    let rows = per_table.iter().map(|(_, n)| n).sum();
    Ok(Summary {
        tables: tables.len(),
        rows,
        households: per_table.iter().find(|(t, _)| t == "households").map_or(0, |(_, n)| *n),
        documents_verified: verified.documents,
        changes_verified: verified.changes,
        per_table,
        photos: photos.photos,
        photo_bytes: photos.bytes,
        damaged_photos: photos.damaged,
        elapsed: started.elapsed(),
    })
}

fn lock_source(source: &Source) -> Result<DataDirLock, MigrateError> {
    let path = source.data_dir.join(crate::config::LOCK_FILE);
    match DataDirLock::try_acquire(&path) {
        Ok(Ok(lock)) => Ok(lock),
        Ok(Err(holder)) => Err(MigrateError::SourceInUse { dir: source.data_dir.clone(), holder: holder.to_string() }),
        Err(e) => Err(MigrateError::Usage(format!(
            "{e:#}; give --data-dir the data directory of the server that used the source"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_a_data_directory_or_a_sqlite_url_and_its_lock_is_beside_the_file_unless_told() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join(crate::config::DATABASE_FILE);
        std::fs::write(&file, b"").expect("a file");

        let source = Source::parse(dir.path().to_str().expect("utf-8"), None).expect("a data directory");
        assert_eq!((source.database.as_path(), source.data_dir.as_path()), (file.as_path(), dir.path()));

        let url = format!("sqlite://{}", file.display());
        let source = Source::parse(&url, None).expect("sqlite://PATH");
        assert_eq!((source.database.as_path(), source.data_dir.as_path()), (file.as_path(), dir.path()));
        let elsewhere = Path::new("/var/lib/pilar");
        let source = Source::parse(&url, Some(elsewhere)).expect("sqlite://PATH with --data-dir");
        assert_eq!(source.data_dir, elsewhere);

        let missing =
            Source::parse(dir.path().join("nothing").to_str().expect("utf-8"), None).expect_err("no database");
        assert!(missing.to_string().contains("there is no SQLite database"), "{missing}");
        let postgres = Source::parse("postgres://u:secret@h/db", None).expect_err("not SQLite");
        assert!(postgres.to_string().contains("is not a SQLite server"), "{postgres}");
        assert!(!postgres.to_string().contains("secret"), "no password in messages: {postgres}");
        assert!(Source::parse("sqlite://", None).is_err());
    }
}
