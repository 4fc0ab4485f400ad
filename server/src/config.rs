//! Start-up settings of `pilar-server`: flags with environment-variable fallbacks, and the paths
//! derived from the data directory.

use crate::storage::{DatabaseLocation, StorageError};
use std::path::PathBuf;

/// Name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "server.db";

/// Name of the access-token signing key file older servers kept in the data directory (mode
/// 0600); the key now lives in the database and this file is only read to adopt it.
pub const SIGNING_KEY_FILE: &str = "jwt.key";

/// Name of the lock file inside the data directory: one server per data directory.
pub const LOCK_FILE: &str = "pilar-server.lock";

/// The environment variable that sets the first admin's password (read only on first start).
pub const ADMIN_PASSWORD_ENV: &str = "PILAR_ADMIN_PASSWORD";

/// Settings for one server process; every flag also reads an environment variable.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "pilar-server", version, about = "Pilar's sync server", max_term_width = 100)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "PILAR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory holding the SQLite database; created on first start (not used with a PostgreSQL
    /// --database).
    #[arg(long, env = "PILAR_DATA_DIR", default_value = "./pilar-data")]
    pub data_dir: PathBuf,
    /// The database: empty for the embedded SQLite database in --data-dir (server.db),
    /// sqlite://PATH for a SQLite file elsewhere, or postgres://USER[:PASSWORD]@HOST[:PORT]/NAME
    /// for PostgreSQL (15 or newer), which several pilar-server processes can share; the schema
    /// is created or upgraded on start. The signing and server keys live in the database.
    #[arg(long, env = "PILAR_DATABASE", value_name = "URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "PILAR_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Lifetime of an access token, in minutes.
    #[arg(long, env = "PILAR_ACCESS_TOKEN_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub access_token_minutes: u64,
    /// Days a refresh token stays valid without being used (devices are offline for days).
    #[arg(long, env = "PILAR_REFRESH_TOKEN_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub refresh_token_days: u64,
    /// Days after a village's assignment ends during which a device that held the village may
    /// still upload its pending work there (households the server had, or that the device created,
    /// before the end); afterwards such uploads are refused as out of scope.
    #[arg(long, env = "PILAR_ENDED_ASSIGNMENT_GRACE_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u64).range(0..=365))]
    pub ended_assignment_grace_days: u64,
    /// Most bytes all requests together may be decompressing (and holding decoded) at once; a
    /// compressed body reserves its declared size, or the per-body limit (8 × --max-body-bytes)
    /// when it declares none. A request that finds no room within 5 s gets 503 with Retry-After.
    #[arg(long, env = "PILAR_MAX_INFLATING_BYTES", default_value_t = crate::inflate::DEFAULT_MAX_INFLATING_BYTES)]
    pub max_inflating_bytes: usize,
    /// On SIGTERM or ctrl-c: seconds the requests in flight get to finish before the server exits
    /// anyway (new connections are refused at once; idle connections are closed at once).
    #[arg(long, env = "PILAR_SHUTDOWN_GRACE_SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_seconds: u64,
    /// Start the server's clock at this RFC 3339 time (it runs on from there); for tests and
    /// demonstrations only, like the CLI's PILAR_NOW.
    #[arg(long, env = crate::clock::NOW_ENV, hide = true)]
    pub now: Option<String>,
}

impl Config {
    /// Settings for tests and embedding: the given data directory, defaults for the rest.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: "127.0.0.1:0".to_string(),
            data_dir: data_dir.into(),
            database: None,
            max_body_bytes: 16 * 1024 * 1024,
            access_token_minutes: 15,
            refresh_token_days: 90,
            shutdown_grace_seconds: 20,
            max_inflating_bytes: crate::inflate::DEFAULT_MAX_INFLATING_BYTES,
            ended_assignment_grace_days: 14,
            now: None,
        }
    }

    /// Path of the SQLite database in the data directory (the default database).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// The database chosen with `--database` (the SQLite file in the data directory by default).
    pub fn database_location(&self) -> Result<DatabaseLocation, StorageError> {
        match self.database.as_deref().map(str::trim).filter(|url| !url.is_empty()) {
            None => Ok(DatabaseLocation::Sqlite(self.database_path())),
            Some(url) => DatabaseLocation::parse(url),
        }
    }

    /// Path of the lock file that keeps a second server off this data directory.
    pub fn lock_path(&self) -> PathBuf {
        self.data_dir.join(LOCK_FILE)
    }

    /// Path of the signing key file of servers before the key moved into the database (read
    /// once, on SQLite, when the database holds no signing key yet).
    pub fn signing_key_path(&self) -> PathBuf {
        self.data_dir.join(SIGNING_KEY_FILE)
    }
}
