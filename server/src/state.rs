//! What every handler shares ([`AppState`]: the use cases, the clock, token keys, limits), how blocking work leaves
//! the async workers ([`AppState::blocking`]), and the set-up at start: the database chosen with
//! `--database`, and for SQLite the data directory, created on first start and locked for one
//! server process ([`DataDirLock`]).

use crate::auth::{self, REFRESH_KEY_NAME, RefreshKey, TokenKeys};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ApiError;
use crate::inflate::InflateGate;
use crate::service::Service;
use crate::service::throttle::{LoginThrottle, Policy};
use crate::storage::{DatabaseLocation, NewUser};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use sync_core::protocol::Role;

/// Name of the account created on first start.
pub const FIRST_ADMIN: &str = "admin";

/// Limits and lifetimes read from the configuration, for handlers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a refresh token stays valid without use.
    pub refresh_token_lifetime: time::Duration,
    /// How long after an assignment ends a device that held the village may upload pending work.
    pub ended_assignment_grace: time::Duration,
}

/// The state shared by every request: cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// The use cases, over the database chosen at start-up.
    pub service: Arc<Service>,
    /// The server's clock (the system clock, or `--now` for tests).
    pub clock: Arc<dyn Clock>,
    /// Access-token signing and checking.
    pub tokens: Arc<TokenKeys>,
    /// Derives each refresh token's successor (so a retried refresh gets the same one).
    pub refresh_key: Arc<RefreshKey>,
    /// Limits and lifetimes.
    pub settings: Arc<Settings>,
    /// The byte budget for decompressing request bodies, shared by every request.
    pub inflating: Arc<InflateGate>,
    /// The login throttle's rule and key (the failed-login counts are in the database).
    pub login_throttle: Arc<LoginThrottle>,
    /// The data directory's lock, held while any clone of the state lives (SQLite only).
    pub data_dir_lock: Option<Arc<DataDirLock>>,
    /// Turns for blocking work ([`AppState::blocking`]): how many run at once ([`blocking_turns`]).
    pub blocking_turns: Arc<tokio::sync::Semaphore>,
    /// Photo bytes (`photos/` in the data directory on SQLite); `None` where no photo store is
    /// built yet (PostgreSQL): the photo endpoints then refuse and devices keep their photos.
    pub photos: Arc<dyn crate::storage::photos::PhotoStore>,
}

/// How many blocking tasks (database work, password checks) run at once: four per core, at least
/// eight. More would not finish sooner on these cores (SQLite has one writer, PostgreSQL's pool is
/// bounded), but each would hold a thread of tokio's blocking pool (up to 512), its stack and its
/// allocator arena, and the documents and response it is building: 500 devices syncing at once
/// took a server to 164 MiB. The rest wait on the async side, where a waiting request costs a
/// few hundred bytes.
pub fn blocking_turns() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    (cores * 4).max(8)
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The result of opening a data directory (no `Debug`: it may hold the generated password).
pub struct Opened {
    /// The state to serve with.
    pub state: AppState,
    /// The first admin's password when this start created it and generated it (print it once).
    pub generated_admin_password: Option<String>,
}

impl AppState {
    /// Open the database of `config` and make what a first start needs: the schema, the signing
    /// key (in the database), the first admin account. With SQLite (the default) the data
    /// directory is created (0700) and locked first; with PostgreSQL nothing is kept on this
    /// machine's disk, so several servers can share the database.
    ///
    /// The first admin's password is `admin_password` (main reads `PILAR_ADMIN_PASSWORD`) when
    /// given; otherwise one is generated and returned so that the caller prints it once. It is
    /// used only when the database has no users yet.
    pub fn open(config: &Config, admin_password: Option<String>) -> Result<Opened> {
        let location = config.database_location()?;
        let clock = crate::clock::from_setting(config.now.as_deref())?;
        let (database, data_dir_lock, key_file, photos) = match &location {
            DatabaseLocation::Sqlite(_) => {
                create_data_dir(&config.data_dir)?;
                // Before anything in the directory is read or written: a second server would
                // answer "database is locked" and race the first over the first admin.
                let lock = DataDirLock::acquire(&config.lock_path(), &config.data_dir)?;
                let database = location.open().with_context(|| format!("cannot open the database {location}"))?;
                let photos_dir = config.data_dir.join("photos");
                let photos: Arc<dyn crate::storage::photos::PhotoStore> = Arc::new(
                    crate::storage::photos::FilePhotoStore::open(&photos_dir)
                        .with_context(|| format!("cannot use the photo directory {}", photos_dir.display()))?,
                );
                (database, Some(Arc::new(lock)), Some(config.signing_key_path()), photos)
            }
            DatabaseLocation::Postgres(url) => {
                let database = location.open().with_context(|| format!("cannot open the database {location}"))?;
                let photos: Arc<dyn crate::storage::photos::PhotoStore> = Arc::new(
                    crate::storage::postgres::photos::PostgresPhotoStore::open(url)
                        .with_context(|| format!("cannot use the photo tables of {location}"))?,
                );
                (database, None, None, photos)
            }
        };
        let service = Service::new(database);
        let key = auth::signing_key(&service, key_file.as_deref())?;
        let generated_admin_password = create_first_admin(&service, admin_password, clock.now())?;
        let tokens = TokenKeys::new(&key, time::Duration::minutes(config.access_token_minutes as i64));
        let refresh_key = RefreshKey::new(&service.server_key(REFRESH_KEY_NAME)?)?;
        let login_throttle = LoginThrottle::open(&service, Policy::default())?;
        let settings = Settings {
            max_body_bytes: config.max_body_bytes,
            refresh_token_lifetime: time::Duration::days(config.refresh_token_days as i64),
            ended_assignment_grace: time::Duration::days(config.ended_assignment_grace_days as i64),
        };
        let state = AppState {
            service: Arc::new(service),
            clock,
            tokens: Arc::new(tokens),
            refresh_key: Arc::new(refresh_key),
            settings: Arc::new(settings),
            inflating: Arc::new(InflateGate::new(config.max_inflating_bytes, crate::inflate::DEFAULT_WAIT)),
            login_throttle: Arc::new(login_throttle),
            data_dir_lock,
            blocking_turns: Arc::new(tokio::sync::Semaphore::new(blocking_turns())),
            photos,
        };
        Ok(Opened { state, generated_admin_password })
    }

    /// Run blocking work (database calls, password hashing) on tokio's blocking pool, never on an
    /// async worker, when a turn is free ([`blocking_turns`]). The closure gets the use cases; a
    /// panic inside becomes an internal error.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Service) -> Result<T, ApiError> + Send + 'static,
    {
        let service = Arc::clone(&self.service);
        // Keep the request's span, so events logged inside carry its method and path.
        let span = tracing::Span::current();
        // The turn is held by the work itself, so a request whose client went away still counts
        // until its work ends. The semaphore is never closed.
        let turn = Arc::clone(&self.blocking_turns)
            .acquire_owned()
            .await
            .map_err(|closed| ApiError::internal(anyhow::anyhow!("blocking turns closed: {closed}")))?;
        let work = move || {
            let _turn = turn;
            span.in_scope(|| f(service.as_ref()))
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            Err(join) => Err(ApiError::internal(anyhow::anyhow!("blocking task failed: {join}"))),
        }
    }
}

/// The exclusive advisory lock on a data directory's lock file, with the holder's pid written in
/// it: one `pilar-server` per data directory. The operating system drops the lock when the process
/// ends, however it ends (even SIGKILL), so a stale file never blocks a restart.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Who holds a data directory's lock when [`DataDirLock::try_acquire`] finds it taken.
#[derive(Debug)]
pub struct LockHeld {
    /// The holder's pid as it wrote it in the lock file (it may not have written it yet).
    pub pid: Option<String>,
}

impl std::fmt::Display for LockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pid {
            Some(pid) => write!(f, "another pilar-server (pid {pid})"),
            None => f.write_str("another pilar-server"),
        }
    }
}

impl DataDirLock {
    /// Take the lock at `path` (the lock file of data directory `dir`), or fail at once naming the
    /// directory and the pid of the server holding it.
    pub fn acquire(path: &Path, dir: &Path) -> Result<DataDirLock> {
        match DataDirLock::try_acquire(path) {
            Ok(Ok(lock)) => Ok(lock),
            Ok(Err(other)) => bail!(
                "data directory {} is in use by {other}; stop that server first, or give this one another \
                 --data-dir",
                dir.display()
            ),
            Err(e) => Err(e),
        }
    }

    /// Take the lock at `path`, or say who holds it (`Ok(Err(_))`); `Err` when the file cannot be
    /// opened or locked at all. `pilar-server migrate` uses it to keep a server off its source.
    pub fn try_acquire(path: &Path) -> Result<Result<DataDirLock, LockHeld>> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|()| writeln!(file, "{}", std::process::id()))
                    .with_context(|| format!("cannot write the lock file {}", path.display()))?;
                Ok(Ok(DataDirLock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The pid is for the message only; the other server may not have written it yet.
                let _ = file.read_to_string(&mut holder);
                let pid = Some(holder.trim().to_string()).filter(|pid| !pid.is_empty());
                Ok(Err(LockHeld { pid }))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e)
                .with_context(|| format!("cannot lock {}; check the data directory's permissions", path.display())),
        }
    }
}

fn create_data_dir(dir: &std::path::Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        bail!("data directory {} exists but is not a directory; choose another --data-dir", dir.display());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        // The database holds password hashes and personal data: only the server's user reads it.
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// Create the first admin when the database has no users; returns a generated password.
fn create_first_admin(
    service: &Service,
    password: Option<String>,
    now: time::OffsetDateTime,
) -> Result<Option<String>> {
    if service.user_count()? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) if p.chars().count() < auth::MIN_PASSWORD_LEN => bail!(
            "{} must be at least {} characters long; choose a longer admin password",
            crate::config::ADMIN_PASSWORD_ENV,
            auth::MIN_PASSWORD_LEN
        ),
        Some(p) => (p, false),
        None => (auth::generate_password(), true),
    };
    let password_hash = auth::hash_password(&password)?;
    service.create_user(&NewUser {
        name: FIRST_ADMIN.to_string(),
        role: Role::Admin,
        password_hash,
        created_at: now,
    })?;
    tracing::info!(user = FIRST_ADMIN, "created the first admin account");
    Ok(generated.then_some(password))
}
