//! The end-to-end harness: run the real `pilar` binary on real store directories
//! ([`TestDevice`]) against a real `pilar-server` process ([`TestServer`]), and make synthetic
//! households (never real people: domain.md §3). [`faults::FaultProxy`] stands between devices
//! and a server to break connections on purpose. [`Postgres`] gives a test its own PostgreSQL database;
//! `PILAR_TEST_BACKEND=postgres` runs every [`TestServer`] on one ([`server_db`]).
//! [`browser::Browser`] drives a headless Chromium through chromedriver for the web page's tests.

pub mod browser;
pub mod faults;
pub mod http_framing;
pub mod load;
pub mod postgres;
pub mod server_db;
pub mod sync_http;
pub mod synthetic;

pub use crate::postgres::Postgres;
pub use crate::server_db::{Backend, Cell, backend};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// Path of a binary built by this workspace, next to the running test or bench executable.
///
/// `cargo test --workspace` builds `pilar` and `pilar-server` before running any test (the cli and
/// server crates have their own integration tests, which make cargo build the binaries).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the whole workspace's tests (`cargo test --workspace`) or `cargo build --workspace` first",
        path.display()
    );
    path
}

/// One device: a home directory for `pilar`, removed when dropped.
pub struct TestDevice {
    home: TempDir,
    now: Option<String>,
}

impl Default for TestDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDevice {
    /// A device with an empty home directory (no store until `init`).
    pub fn new() -> TestDevice {
        TestDevice { home: TempDir::new().expect("temp home"), now: None }
    }

    /// The device's home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Fix the clock the CLI sees (`PILAR_NOW`), for reproducible times.
    pub fn set_now(&mut self, rfc3339: &str) {
        self.now = Some(rfc3339.to_string());
    }

    /// Run `pilar` with `args` on this device.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("pilar"));
        cmd.arg("--home").arg(self.home.path()).args(args).env_remove("PILAR_HOME");
        match &self.now {
            Some(now) => cmd.env("PILAR_NOW", now),
            None => cmd.env_remove("PILAR_NOW"),
        };
        cmd.output().expect("run pilar")
    }

    /// Run `pilar` with `input` on its standard input (e.g. a password for `pilar login`).
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = Command::new(binary("pilar"));
        cmd.arg("--home").arg(self.home.path()).args(args).env_remove("PILAR_HOME");
        match &self.now {
            Some(now) => cmd.env("PILAR_NOW", now),
            None => cmd.env_remove("PILAR_NOW"),
        };
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run pilar");
        let mut stdin = child.stdin.take().expect("stdin");
        // A command may finish (e.g. refused by the server) before it reads its input; then the
        // pipe is closed and its exit status and output tell the story.
        if let Err(e) = stdin.write_all(input.as_bytes())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            panic!("write stdin: {e}");
        }
        drop(stdin);
        child.wait_with_output().expect("wait for pilar")
    }

    /// `pilar login` to `server` as `user`, the password on stdin; require success, return stdout.
    pub fn login(&self, server: &TestServer, user: &str, password: &str) -> String {
        self.login_at(server.url(), user, password)
    }

    /// `pilar login` to the server at `url` (e.g. a [`faults::FaultProxy`] in front of it), as
    /// `user`; the device keeps using that URL. Require success, return stdout.
    pub fn login_at(&self, url: &str, user: &str, password: &str) -> String {
        let out = self.run_with_stdin(&["login", "--server", url, "--user", user], &format!("{password}\n"));
        assert!(
            out.status.success(),
            "pilar login as {user} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run `pilar`, require success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pilar {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run `pilar` with `--json`, require success, parse stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("pilar {args:?} printed invalid JSON ({e}): {text}"))
    }

    /// Run `pilar`, require failure (non-zero exit), return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "pilar {args:?} should have failed but succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    /// The id of the household whose head is `head`, as this device lists it (tests find
    /// households by their synthetic heads' names).
    pub fn household_headed_by(&self, head: &str) -> String {
        let listed = self.json(&["list"]);
        let found = listed.as_array().expect("list").iter().find(|h| h["head_name"] == head);
        found.unwrap_or_else(|| panic!("{head} not on the device: {listed}"))["id"].as_str().expect("id").to_string()
    }
}

/// The example roster of docs/examples (synthetic), which several scenarios import.
pub fn example_roster() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/roster.csv")
}

/// The seed of a randomised test: `$var` when set (to replay a failure), else a fresh one. Tests
/// print it before they start, so every failure names the seed that reproduces it.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{var}={text:?} is not a number")),
        Err(_) => rand::random(),
    }
}

/// The first admin's password in test servers (set through `PILAR_ADMIN_PASSWORD`).
pub const TEST_ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// How long a test waits for a starting server to print its address before giving up.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a test waits for a stopping server to exit before it kills it and fails.
pub const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A real `pilar-server` process on 127.0.0.1 (port 0), with a fresh data directory; killed when
/// dropped. Its logs go to `server.log` beside the data directory. It can be stopped (SIGTERM or
/// SIGKILL, by its own process handle or pid) and started again on the same data directory and
/// address ([`TestServer::restart`]), so devices logged in to it keep working.
pub struct TestServer {
    child: Child,
    url: String,
    stdout_lines: Vec<String>,
    dir: TempDir,
    args: Vec<String>,
    admin_password: Option<String>,
    /// The server's own PostgreSQL database when the run uses that backend (dropped after the
    /// server is stopped).
    _postgres: Option<Postgres>,
    /// The PostgreSQL database it serves from (its own, or another server's).
    database_url: Option<String>,
}

impl TestServer {
    /// A server with `PILAR_ADMIN_PASSWORD` = [`TEST_ADMIN_PASSWORD`] and default settings.
    pub fn start() -> TestServer {
        TestServer::start_with(&[], Some(TEST_ADMIN_PASSWORD))
    }

    /// A server with extra flags, and the admin password from the environment or (`None`)
    /// generated and printed by the server.
    ///
    /// Waits by reading the server's `listening on` line, never by sleeping.
    /// On the PostgreSQL backend ([`backend`]) the server gets a fresh database of its own.
    pub fn start_with(args: &[&str], admin_password: Option<&str>) -> TestServer {
        TestServer::start_on(backend(), args, admin_password)
    }

    /// [`TestServer::start_with`] on the given backend, whatever this run's [`backend`] is (a
    /// test of several servers on one database runs on PostgreSQL in every run).
    pub fn start_on(backend: Backend, args: &[&str], admin_password: Option<&str>) -> TestServer {
        let dir = TempDir::new().expect("temp dir");
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let database = Postgres::database();
                args.extend(["--database".to_string(), database.url().to_string()]);
                Some(database)
            }
        };
        let admin_password = admin_password.map(str::to_string);
        let (child, url, stdout_lines) = spawn_server(dir.path(), "127.0.0.1:0", &args, admin_password.as_deref());
        let database_url = postgres.as_ref().map(|p| p.url().to_string());
        TestServer { child, url, stdout_lines, dir, args, admin_password, _postgres: postgres, database_url }
    }

    /// A server on a PostgreSQL database the test owns (e.g. one `pilar-server migrate` filled),
    /// with extra flags; drop it before the database.
    pub fn start_on_postgres(database: &Postgres, args: &[&str], admin_password: Option<&str>) -> TestServer {
        let dir = TempDir::new().expect("temp dir");
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--database".to_string(), database.url().to_string()]);
        let admin_password = admin_password.map(str::to_string);
        let (child, url, stdout_lines) = spawn_server(dir.path(), "127.0.0.1:0", &args, admin_password.as_deref());
        let database_url = Some(database.url().to_string());
        TestServer { child, url, stdout_lines, dir, args, admin_password, _postgres: None, database_url }
    }

    /// Another server process on this server's database (PostgreSQL: several servers serve the
    /// same devices), with the same flags; it listens on a port of its own. Drop it before this
    /// server, which owns the database.
    ///
    /// Panics on SQLite, where one data directory belongs to one server.
    pub fn another_on_the_same_database(&self) -> TestServer {
        assert!(
            self.database_url.is_some(),
            "several servers share one database only on PostgreSQL (run with {}=postgres)",
            server_db::BACKEND_ENV
        );
        let dir = TempDir::new().expect("temp dir");
        let (child, url, stdout_lines) =
            spawn_server(dir.path(), "127.0.0.1:0", &self.args, self.admin_password.as_deref());
        TestServer {
            child,
            url,
            stdout_lines,
            dir,
            args: self.args.clone(),
            admin_password: self.admin_password.clone(),
            _postgres: None,
            database_url: self.database_url.clone(),
        }
    }

    /// The backend this server runs on.
    pub fn backend(&self) -> Backend {
        if self.database_url.is_some() { Backend::Postgres } else { Backend::Sqlite }
    }

    /// Rows of `sql` on the server's database, read beside the running server (SQLite: a
    /// read-only connection under WAL; PostgreSQL: a client of its own). Parameters are `?1`,
    /// `?2`, … and passed as text; write SQL both backends take.
    pub fn query(&self, sql: &str, params: &[&str]) -> Vec<Vec<Cell>> {
        match &self.database_url {
            Some(database) => server_db::postgres(database, sql, params).0,
            None => server_db::sqlite(&self.data_dir().join("server.db"), sql, params, false).0,
        }
    }

    /// Run a statement that changes rows (best with the server stopped); returns how many rows
    /// it changed.
    pub fn execute(&self, sql: &str, params: &[&str]) -> u64 {
        match &self.database_url {
            Some(database) => server_db::postgres(database, sql, params).1,
            None => server_db::sqlite(&self.data_dir().join("server.db"), sql, params, true).1,
        }
    }

    /// The key the server signs access tokens with (a server secret in its database).
    pub fn signing_key(&self) -> Vec<u8> {
        let rows = self.query("SELECT value FROM server_secrets WHERE name = 'signing_key'", &[]);
        rows.first().map(|row| row[0].bytes().to_vec()).expect("the server stored its signing key")
    }

    /// The server process's id (for signals and for its memory and CPU time in /proc; the handle
    /// is used where it can be).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send the server process `signal` (`TERM`, `INT`, ...) with `kill`, by its pid.
    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Wait for the server process to exit; if it has not within `timeout`, kill it (SIGKILL)
    /// and fail the test. Returns its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match wait_or_kill(&mut self.child, timeout) {
            Some(status) => status,
            None => panic!("pilar-server did not exit within {timeout:?}; log:\n{}", self.log()),
        }
    }

    /// Stop the server with SIGTERM and wait (at most [`SERVER_EXIT_TIMEOUT`]) for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(SERVER_EXIT_TIMEOUT)
    }

    /// Kill the server at once (SIGKILL, by its handle), as a power cut or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kill the server (SIGKILL, if it still runs) and start a new one on the same data
    /// directory, flags and address; returns when it listens again.
    pub fn restart(&mut self) {
        self.kill();
        let address = self.url.strip_prefix("http://").expect("http URL").to_string();
        let (child, url, stdout_lines) =
            spawn_server(self.dir.path(), &address, &self.args, self.admin_password.as_deref());
        assert_eq!(url, self.url, "the restarted server listens where the first one did");
        self.child = child;
        self.stdout_lines = stdout_lines;
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's data directory (SQLite's database; nothing on PostgreSQL).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the server printed to stdout before it was listening (e.g. a generated password).
    pub fn startup_output(&self) -> &[String] {
        &self.stdout_lines
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// Wait for `child` to exit; if it has not within `timeout`, kill it (SIGKILL) and return `None`.
/// The timeout is a safety net so that a test fails instead of hanging, not a synchronisation.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let pid = child.id();
    let (done, watched) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let overdue = matches!(watched.recv_timeout(timeout), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
        if overdue {
            // Not reaped yet (wait() below is still blocked), so the pid is still this child's.
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        overdue
    });
    let status = child.wait().expect("wait for the child process");
    let _ = done.send(());
    let overdue = watchdog.join().expect("watchdog thread");
    (!overdue).then_some(status)
}

/// Start `pilar-server` on `dir/data` listening on `listen`; return the process, its URL and what
/// it printed before listening. The log (`dir/server.log`) is appended to, across restarts.
fn spawn_server(
    dir: &Path,
    listen: &str,
    args: &[String],
    admin_password: Option<&str>,
) -> (Child, String, Vec<String>) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("server log");
    let mut cmd = Command::new(binary("pilar-server"));
    cmd.arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("PILAR_LISTEN")
        .env_remove("PILAR_DATA_DIR")
        .env_remove("PILAR_DATABASE")
        .env_remove("PILAR_MAX_BODY_BYTES")
        .env_remove("PILAR_SHUTDOWN_GRACE_SECONDS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    match admin_password {
        Some(p) => cmd.env("PILAR_ADMIN_PASSWORD", p),
        None => cmd.env_remove("PILAR_ADMIN_PASSWORD"),
    };
    let mut child = cmd.spawn().expect("start pilar-server");
    let stdout = child.stdout.take().expect("server stdout");
    // A reader thread forwards stdout lines (and keeps draining the pipe afterwards).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout_lines = Vec::new();
    let url = loop {
        match rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(line) => {
                let address = line.strip_prefix("pilar-server listening on ").map(str::to_string);
                stdout_lines.push(line);
                if let Some(url) = address {
                    break url;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!("pilar-server did not report its address; stdout: {stdout_lines:?}\nlog:\n{log}");
            }
        }
    };
    (child, url, stdout_lines)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Only this test's own child process, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The conflicts in `pilar show --json` output: each conflicting field with the sorted users who
/// wrote its values.
pub fn conflict_writers(shown: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    shown["conflicts"]
        .as_array()
        .expect("conflicts in show output")
        .iter()
        .map(|c| {
            let mut users: Vec<String> = c["values"]
                .as_array()
                .expect("conflict values")
                .iter()
                .map(|v| v["writer"]["user"].as_str().expect("writer user").to_string())
                .collect();
            users.sort();
            (c["field"].as_str().expect("conflict field").to_string(), users)
        })
        .collect()
}

/// A server with its admin logged in on a device: the start of every campaign scenario.
pub struct Campaign {
    /// The running server.
    pub server: TestServer,
    /// The admin's device, logged in.
    pub admin: TestDevice,
}

impl Campaign {
    /// A server with default settings.
    pub fn start() -> Campaign {
        Campaign::start_with(&[])
    }

    /// A server started with extra flags.
    pub fn start_with(args: &[&str]) -> Campaign {
        Campaign::start_on(backend(), args)
    }

    /// A server on the given backend, started with extra flags.
    pub fn start_on(backend: Backend, args: &[&str]) -> Campaign {
        let server = TestServer::start_on(backend, args, Some(TEST_ADMIN_PASSWORD));
        let admin = TestDevice::new();
        admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
        Campaign { server, admin }
    }

    /// Create an enumerator assigned to `villages`, and a device logged in as them.
    pub fn enumerator(&self, name: &str, villages: &[&str]) -> TestDevice {
        self.enumerator_at(name, villages, self.server.url())
    }

    /// Create an enumerator assigned to `villages`, and a device logged in as them through the
    /// server URL `url` (a [`faults::FaultProxy`]'s), which it then syncs through.
    pub fn enumerator_at(&self, name: &str, villages: &[&str], url: &str) -> TestDevice {
        let password = self.user(name, villages);
        let device = TestDevice::new();
        device.login_at(url, name, &password);
        device
    }

    /// Create an enumerator assigned to `villages`; returns the password.
    pub fn user(&self, name: &str, villages: &[&str]) -> String {
        let password = self.account(name, "enumerator");
        let mut args = vec!["admin", "assign", name];
        for v in villages {
            args.extend(["--village", v]);
        }
        self.admin.ok(&args);
        password
    }

    /// Create a supervisor of `kecamatan`, and a device logged in as them.
    pub fn supervisor(&self, name: &str, kecamatan: &[&str]) -> TestDevice {
        let password = self.account(name, "supervisor");
        let mut args = vec!["admin", "assign", name];
        for k in kecamatan {
            args.extend(["--kecamatan", k]);
        }
        self.admin.ok(&args);
        let device = TestDevice::new();
        device.login(&self.server, name, &password);
        device
    }

    /// Create an account with `role`; returns its password.
    fn account(&self, name: &str, role: &str) -> String {
        let password = format!("sandi-{name}-12345");
        let out = self.admin.run_with_stdin(
            &["admin", "user", "add", name, "--role", role, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        password
    }
}
