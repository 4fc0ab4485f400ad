//! `pilar-server`: parse the configuration, open (and lock) the data directory, bind, print the
//! address, serve until SIGTERM or ctrl-c, stop within the grace period. `pilar-server migrate`
//! copies a SQLite server into PostgreSQL instead (`pilar_server::migrate`).

use anyhow::{Context, Result};
use clap::Parser;
use pilar_server::config::ADMIN_PASSWORD_ENV;
use pilar_server::{AppState, Config};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Limit glibc's malloc to two arenas; first thing in `main`, before any thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    // Arenas glibc's malloc may make. By default it makes one for each thread that allocates
    // under contention, up to eight per core, and keeps what each one freed: ten concurrent syncs
    // took the server from 69 to 139 MiB in `pilar-bench sync`, 114 MiB with blocking work in
    // turns; with two arenas 93 MiB (issue 15 sets 100 MB). mimalloc gave 233 MiB in that run.
    const MALLOC_ARENAS: i32 = 2;
    // SAFETY: `mallopt` only sets a malloc parameter; it is called before any other thread exists
    // and takes no pointers. It returns 0 on failure, which leaves glibc's default (more memory,
    // nothing else).
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
}

/// Other C libraries keep their allocators' defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// The command line: the server's flags, or a subcommand.
#[derive(clap::Parser)]
#[command(name = "pilar-server", version, about = "Pilar's sync server", max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Copy this server from SQLite into a new, empty PostgreSQL database (stop the server first),
    /// verify the copy and commit it; then start pilar-server --database postgres://… on it.
    Migrate(pilar_server::migrate::Args),
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let Cli { config, command } = Cli::parse();
    // Logs go to stderr (stdout carries the one-time admin password and the listening line);
    // RUST_LOG filters them, default info.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match command {
        None => run(config),
        Some(Command::Migrate(args)) => migrate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(args: &pilar_server::migrate::Args) -> Result<()> {
    use pilar_server::migrate::{self, BarProgress, LineProgress, Progress, Source};
    let source = Source::parse(&args.from, args.data_dir.as_deref())?;
    let mut progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
        Box::new(BarProgress::default())
    } else {
        Box::new(LineProgress::default())
    };
    let summary = migrate::run(&source, &args.to, progress.as_mut())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}")?;
    writeln!(
        stdout,
        "next: start pilar-server --database {} and point the devices' address at it",
        pilar_server::storage::postgres::redacted(&args.to)
    )?;
    Ok(())
}

fn run(config: Config) -> Result<()> {
    let admin_password = std::env::var(ADMIN_PASSWORD_ENV).ok();
    let opened = AppState::open(&config, admin_password)?;
    let location = config.database_location()?;
    let mut stdout = std::io::stdout().lock();
    if let Some(password) = &opened.generated_admin_password {
        writeln!(
            stdout,
            "created user {} with password {password} (shown only this once; keep it safe, or set \
             PILAR_ADMIN_PASSWORD before the first start)",
            pilar_server::state::FIRST_ADMIN
        )?;
    }
    // Held until the process ends, whatever still runs on the blocking pool.
    let _lock = opened.state.data_dir_lock.clone();
    let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}; choose another --listen address", config.listen))?;
        let address = listener.local_addr()?;
        writeln!(stdout, "pilar-server listening on http://{address}")?;
        stdout.flush()?;
        drop(stdout);
        tracing::info!(%address, database = %location, "listening");
        pilar_server::serve(listener, opened.state, grace).await.context("server failed")
    });
    // Requests cut at the deadline and background work (deriving facts after a roster import)
    // must not keep the process alive: their transactions roll back, and nothing was acknowledged.
    runtime.shutdown_background();
    let stopped = served?;
    tracing::info!(requests_cut = stopped.cut, "stopped");
    Ok(())
}
