//! `pilar-bench office`: the office web page at kabupaten scale. A real server on loopback gets a
//! synthetic roster of N one-person households (all in kecamatan 73.14.01, so one supervisor sees
//! every one), its facts are derived (one progress report, not timed), and a signed-in supervisor
//! asks for the dashboard, the first page of the households table, a search by a head's name and
//! a search by NIK over HTTP, each several times: the median and the slowest are printed beside
//! the 1 s target, with the server's peak memory; on SQLite, then on PostgreSQL when one
//! can be had (`--database` picks).

use super::files::measured;
use super::sync::{Databases, backend_name, backends, memory, server_pid};
use anyhow::{Context, Result, ensure};
use pilar_tests::{Backend, TEST_ADMIN_PASSWORD, TestDevice, TestServer};
use std::time::{Duration, Instant};

/// The kecamatan the synthetic roster's villages are in.
const KECAMATAN: &str = "73.14.01";

/// What `pilar-bench office` runs.
pub struct Settings {
    /// Households in the kabupaten.
    pub households: usize,
    /// Requests per page (the median and the slowest are reported).
    pub runs: usize,
    /// Which backends to measure; `None`: both when a PostgreSQL can be had, else SQLite.
    pub database: Option<Databases>,
}

fn client() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// Sign in through the page's form; returns the session cookie (`name=value`).
fn sign_in(url: &str, user: &str, password: &str) -> Result<String> {
    let answer =
        client()?.post(format!("{url}/login")).form(&[("user", user), ("password", password), ("next", "/")]).send()?;
    ensure!(answer.status() == 303, "sign-in answered {}", answer.status());
    let cookie = answer.headers().get("set-cookie").context("no session cookie")?.to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_string())
}

/// Time `runs` requests of `path`: (median, slowest, the last page's text).
fn timed(url: &str, cookie: &str, path: &str, runs: usize) -> Result<(Duration, Duration, String)> {
    let client = client()?;
    let mut times = Vec::with_capacity(runs);
    let mut text = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        let answer = client.get(format!("{url}{path}")).header("cookie", cookie).send()?;
        ensure!(answer.status() == 200, "{path} answered {}", answer.status());
        text = answer.text()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], times[times.len() - 1], text))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The first data row's head name and NIK of the synthetic roster (columns by header).
fn first_person(roster: &str) -> Result<(String, String)> {
    let mut lines = roster.lines();
    let header: Vec<&str> = lines.next().context("empty roster")?.split(',').collect();
    let row: Vec<&str> = lines.next().context("no rows")?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).and_then(|i| row.get(i)).map(|v| v.to_string());
    Ok((column("full_name").context("full_name")?, column("nik").context("nik")?))
}

/// Run the benchmark on each backend asked for.
pub fn run(settings: &Settings) -> Result<()> {
    let (list, note) = backends(settings.database)?;
    if let Some(note) = note {
        println!("{note}");
    }
    for backend in list {
        run_on(backend, settings)?;
    }
    Ok(())
}

fn run_on(backend: Backend, settings: &Settings) -> Result<()> {
    let Settings { households, runs, .. } = *settings;
    let server = TestServer::start_on(backend, &[], Some(TEST_ADMIN_PASSWORD));
    let pid = server_pid(&server.data_dir());
    let url = server.url().to_string();
    let admin = TestDevice::new();
    admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
    let password = "sandi-spv-bench-12345";
    let out = admin.run_with_stdin(
        &["admin", "user", "add", "spv.bench", "--role", "supervisor", "--password-stdin"],
        &format!("{password}\n"),
    );
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    admin.ok(&["admin", "assign", "spv.bench", "--kecamatan", KECAMATAN]);
    let dir = tempfile::TempDir::new()?;
    let roster = dir.path().join("households.csv");
    let roster_text = roster.to_str().context("temp path")?;
    let count = households.to_string();
    admin.ok(&["debug", "roster-sample", "--rows", &count, "--largest-family", "1", "--out", roster_text]);
    let (name, nik) = first_person(&std::fs::read_to_string(&roster)?)?;
    println!(
        "pilar-bench office: {households} one-person households in kecamatan {KECAMATAN}, a server on 127.0.0.1 ({})",
        backend_name(backend)
    );
    let import = measured(&admin, &["roster", "import", roster_text, "--json"])?;
    println!("  roster import: {:.1} s", import.wall.as_secs_f64());
    let derived = measured(&admin, &["progress", "--area", KECAMATAN, "--json"])?;
    println!("  facts derived (first progress report, not part of the figures): {:.1} s", derived.wall.as_secs_f64());

    let cookie = sign_in(&url, "spv.bench", password)?;
    let pages = [
        ("dashboard", "/dashboard".to_string()),
        ("households, first page", "/households".to_string()),
        ("search by a head's name", format!("/households?q={}", name.replace(' ', "+"))),
        ("search by NIK", format!("/households?q={nik}")),
    ];
    println!("  {runs} requests each, signed in as the kecamatan's supervisor (target: under 1 s):");
    for (what, path) in &pages {
        let (median, slowest, text) = timed(&url, &cookie, path, runs)?;
        ensure!(!text.contains("id=\"error\""), "{what} answered an error page");
        let verdict = if slowest < Duration::from_secs(1) { "PASS" } else { "MISSED" };
        println!("    {what}: median {}, slowest {} — {verdict}", ms(median), ms(slowest));
    }
    let peak = pid.and_then(memory).map(|(hwm, _)| format!("{:.1} MiB", hwm as f64 / 1048576.0));
    println!("  server peak memory: {}", peak.unwrap_or_else(|| "?".into()));
    Ok(())
}
