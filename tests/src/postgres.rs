//! A fresh PostgreSQL database per test: [`Postgres::database`] creates `pilar_test_<random>` on
//! the cluster that `PILAR_TEST_POSTGRES` names (`tests/run` starts one and sets it), or on a
//! throwaway cluster this test process starts itself once, and drops the database with the value.
//!
//! The throwaway cluster follows `tests/run`'s recipe: PostgreSQL's own `initdb` and `pg_ctl`
//! (Debian's `/usr/lib/postgresql/<version>/bin`, or on `PATH`), run as the `postgres` user when
//! the tests run as root (PostgreSQL refuses root), in a temporary directory with the unix socket
//! inside it, TCP on 127.0.0.1 on a free port, trust authentication, fsync off. A watchdog process
//! stops it (`pg_ctl stop -m immediate`, by the cluster's pid file) and removes the directory when
//! the test process exits, however it exits: it waits for the end of a pipe only this process
//! holds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The environment variable naming a PostgreSQL cluster for tests: a superuser URL such as
/// `postgres://postgres@127.0.0.1:54321/postgres`, able to create and drop databases.
pub const CLUSTER_ENV: &str = "PILAR_TEST_POSTGRES";

/// One test's own database, created empty on the test cluster and dropped (best effort, with
/// `WITH (FORCE)`, so connections a server still holds do not keep it) when this value is dropped.
#[derive(Debug)]
pub struct Postgres {
    name: String,
    url: String,
    cluster_url: String,
}

impl Postgres {
    /// Create a fresh, empty database `pilar_test_<random>` and return it.
    ///
    /// Panics when no cluster can be had: `PILAR_TEST_POSTGRES` is unset and PostgreSQL is not
    /// installed (run the tests with `tests/run`, which installs and starts it), or the cluster
    /// refuses the database.
    pub fn database() -> Postgres {
        let cluster_url = cluster_url();
        let name = format!("pilar_test_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(&cluster_url, &name);
        let statement = format!("CREATE DATABASE \"{name}\"");
        let created = off_async(|| admin_client(&cluster_url)?.batch_execute(&statement).map_err(|e| e.to_string()));
        if let Err(e) = created {
            panic!("cannot create the test database {name} on {}: {e}", redacted(&cluster_url));
        }
        Postgres { name, url, cluster_url }
    }

    /// The database's URL (`postgres://…/pilar_test_…`), for `pilar-server --database` or a client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A synchronous client connected to this database. Use it off async tasks (as the `postgres`
    /// crate requires), e.g. in a plain `#[test]` or inside `spawn_blocking`.
    pub fn connect(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.url, ::postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test database {}: {e}", self.name))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let cluster_url = self.cluster_url.clone();
        let dropped =
            off_async(move || admin_client(&cluster_url)?.batch_execute(&statement).map_err(|e| e.to_string()));
        if let Err(e) = dropped {
            // Best effort: the cluster is a throwaway one; a leftover database goes with it.
            eprintln!("warning: the test database {} was not dropped: {e}", self.name);
        }
    }
}

/// Whether [`Postgres::database`] can have a cluster, so that a caller (the benchmark) can choose
/// another backend instead of panicking: `Ok` when `PILAR_TEST_POSTGRES` names one, or PostgreSQL's
/// programs are installed here (and, as root, the `postgres` user exists to run them); else why not.
pub fn available() -> Result<(), String> {
    if std::env::var(CLUSTER_ENV).is_ok_and(|url| !url.trim().is_empty()) {
        return Ok(());
    }
    if postgres_bin_dir().is_none() {
        return Err(format!(
            "PostgreSQL is not installed here (no initdb in /usr/lib/postgresql/*/bin or on PATH) and {CLUSTER_ENV} \
             names no cluster: install Debian's postgresql-15 package, or set {CLUSTER_ENV}=postgres://… to a \
             cluster you run"
        ));
    }
    if running_as_root()? {
        id_of("-u")?;
    }
    Ok(())
}

/// The URL of the cluster tests create their databases on: `PILAR_TEST_POSTGRES`, or a cluster
/// this process starts on first use (and stops when it exits).
fn cluster_url() -> String {
    if let Ok(url) = std::env::var(CLUSTER_ENV)
        && !url.trim().is_empty()
    {
        return url.trim().to_string();
    }
    static OWN: OnceLock<Result<OwnCluster, String>> = OnceLock::new();
    match OWN.get_or_init(OwnCluster::start) {
        Ok(cluster) => cluster.url.clone(),
        Err(problem) => panic!("{problem}"),
    }
}

/// A client on the cluster's own database, as the superuser of the URL.
fn admin_client(cluster_url: &str) -> Result<::postgres::Client, String> {
    ::postgres::Client::connect(cluster_url, ::postgres::NoTls)
        .map_err(|e| format!("cannot connect to {}: {e}", redacted(cluster_url)))
}

/// Run `f` on a thread of its own: the synchronous `postgres` client blocks on a runtime of its
/// own, which panics on a thread that already drives async tasks (a `#[tokio::test]`).
fn off_async<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` without a password, for messages.
fn redacted(url: &str) -> String {
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

/// A cluster this test process started; its watchdog stops it when the process exits.
struct OwnCluster {
    url: String,
    /// The write end of the watchdog's standard input: closed (by the kernel) when this process
    /// exits, which tells the watchdog to stop the cluster. Never written to.
    _watchdog: Mutex<ChildStdin>,
}

/// How many ports are tried when another process takes the free one first.
const PORT_ATTEMPTS: usize = 5;

impl OwnCluster {
    fn start() -> Result<OwnCluster, String> {
        let bin = postgres_bin_dir().ok_or_else(|| {
            format!(
                "PostgreSQL is not installed here (no initdb in /usr/lib/postgresql/*/bin or on PATH), and \
                 {CLUSTER_ENV} names no cluster: run the tests with `tests/run`, which installs PostgreSQL 15 when \
                 missing and starts a throwaway cluster, or set {CLUSTER_ENV}=postgres://… to a cluster you run"
            )
        })?;
        let as_postgres = running_as_root()?;
        let dir = tempfile::Builder::new()
            .prefix("pilar-pg-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory for the test cluster: {e}"))?
            .keep();
        if as_postgres {
            let (uid, gid) = (id_of("-u")?, id_of("-g")?);
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to the postgres user: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let pg_ctl = bin.join("pg_ctl");
        let watchdog = spawn_watchdog(&dir, as_postgres, &pg_ctl, &data)?;

        let initdb = postgres_command(as_postgres, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .stdin(Stdio::null())
            .output();
        check("initdb", initdb)?;
        let settings = format!(
            "\n# pilar tests: a throwaway cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n",
            dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .map_err(|e| format!("cannot configure the test cluster: {e}"))?;

        let log = dir.join("postgres.log");
        let mut last_problem = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let started = postgres_command(as_postgres, &pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &format!("-p {port}"), "start"])
                .stdin(Stdio::null())
                .output();
            match check("pg_ctl start", started) {
                Ok(()) => {
                    return Ok(OwnCluster {
                        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                        _watchdog: Mutex::new(watchdog),
                    });
                }
                Err(problem) => last_problem = problem,
            }
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!("the test cluster did not start ({last_problem}); its log:\n{log_text}"))
    }
}

/// PostgreSQL's server programs: Debian's `/usr/lib/postgresql/<version>/bin` (15 when there,
/// else the newest), or the directory on `PATH` holding `initdb`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort_by_key(|(version, _)| (*version == 15, *version));
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

/// Whether this process runs as root (then PostgreSQL's programs run as the `postgres` user).
fn running_as_root() -> Result<bool, String> {
    let output = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run `id -u`: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// The `postgres` user's uid (`-u`) or gid (`-g`).
fn id_of(flag: &str) -> Result<u32, String> {
    let output = Command::new("id").args([flag, "postgres"]).output().map_err(|e| format!("cannot run `id`: {e}"))?;
    String::from_utf8_lossy(&output.stdout).trim().parse().map_err(|_| {
        "the tests run as root and there is no `postgres` user to run PostgreSQL as (it refuses root): install \
         Debian's postgresql-15 package (it creates the user), or run the tests as another user"
            .to_string()
    })
}

/// A command running `program`, as the `postgres` user when `as_postgres`.
fn postgres_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A process that waits for its standard input to close (this process exiting), then stops the
/// cluster by its pid file and removes its directory. It runs in a process group of its own, so a
/// ctrl-c at the terminal does not end it before it has cleaned up.
fn spawn_watchdog(dir: &Path, as_postgres: bool, pg_ctl: &Path, data: &Path) -> Result<ChildStdin, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(r#"trap '' HUP INT TERM; cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$0""#).arg(dir);
    if as_postgres {
        cmd.args(["runuser", "-u", "postgres", "--"]);
    }
    cmd.arg(pg_ctl).arg("-D").arg(data).args(["-m", "immediate", "stop"]);
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the test cluster's watchdog: {e}"))?;
    child.stdin.take().ok_or_else(|| "the watchdog has no standard input".to_string())
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("cannot find a free port: {e}"))
}

/// `Ok` when the program ran and succeeded, else what it said.
fn check(what: &str, output: std::io::Result<Output>) -> Result<(), String> {
    let output = output.map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "t2"),
            "postgres://u:p@h:1/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://h", "t3"), "postgresql://h/t3");
    }

    #[test]
    fn redacted_hides_only_the_password() {
        assert_eq!(redacted("postgres://u:secret@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(redacted("postgres://u@h:1/db"), "postgres://u@h:1/db");
    }
}
