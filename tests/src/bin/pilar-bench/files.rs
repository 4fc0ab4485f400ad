//! `pilar-bench files`: the supervisor's files at kabupaten scale. Imports a synthetic roster of
//! `rows` person rows through `pilar roster import` against a real server on loopback, and reports
//! the wall time and the peak memory of the `pilar` process and of the server.

use super::sync::{memory, server_pid};
use anyhow::{Context, Result, ensure};
use pilar_tests::{TEST_ADMIN_PASSWORD, TestDevice, TestServer, binary};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `pilar` run measured from outside: wall time, peak memory (`VmHWM`, sampled every 10 ms
/// while it runs, so a peak in its last few milliseconds may be missed), its standard output.
struct Measured {
    wall: Duration,
    peak: u64,
    stdout: String,
}

/// Run `pilar --home <device> args…` and measure it.
fn measured(device: &TestDevice, args: &[&str]) -> Result<Measured> {
    let started = Instant::now();
    let mut child = Command::new(binary("pilar"))
        .arg("--home")
        .arg(device.home())
        .args(args)
        .env_remove("PILAR_HOME")
        .env_remove("PILAR_NOW")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start pilar")?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some((hwm, _)) = memory(pid) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let output = child.wait_with_output()?;
    ensure!(status.success(), "pilar {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(Measured { wall, peak, stdout: String::from_utf8_lossy(&output.stdout).into_owned() })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Run the files benchmark.
pub fn run(rows: usize) -> Result<()> {
    let server = TestServer::start_with(&[], Some(TEST_ADMIN_PASSWORD));
    let pid = server_pid(&server.data_dir());
    let admin = TestDevice::new();
    admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
    let dir = tempfile::TempDir::new()?;
    let roster = dir.path().join("roster.csv");
    let roster_text = roster.to_str().context("temp path")?;
    admin.ok(&["debug", "roster-sample", "--rows", &rows.to_string(), "--out", roster_text]);
    let size = std::fs::metadata(&roster)?.len();
    println!(
        "pilar-bench files: a synthetic roster of {rows} person rows ({size} bytes, families of 1–5) on a server on 127.0.0.1"
    );

    let import = measured(&admin, &["roster", "import", roster_text, "--json"])?;
    let outcome: serde_json::Value = serde_json::from_str(&import.stdout).context("import output")?;
    let created = outcome["created"].as_u64().unwrap_or(0);
    ensure!(created > 0, "the import created nothing: {outcome}");
    let server_peak = pid.and_then(memory).map(|(hwm, _)| hwm);
    println!(
        "roster import: {rows} rows = {created} households in {:.1} s ({:.0} rows/s), check + upload + commit; \
         pilar peak memory {}; server peak memory {}",
        import.wall.as_secs_f64(),
        rows as f64 / import.wall.as_secs_f64().max(1e-9),
        mib(import.peak),
        server_peak.map(mib).unwrap_or_else(|| "?".into())
    );
    let check = measured(&admin, &["roster", "import", roster_text, "--check"])?;
    println!(
        "roster check only (read and validate, nothing sent): {:.1} s; pilar peak memory {}",
        check.wall.as_secs_f64(),
        mib(check.peak)
    );
    let again = measured(&admin, &["roster", "import", roster_text, "--json"])?;
    let outcome: serde_json::Value = serde_json::from_str(&again.stdout).context("re-import output")?;
    println!(
        "re-import of the same roster: {:.1} s, {} created, {} unchanged",
        again.wall.as_secs_f64(),
        outcome["created"],
        outcome["unchanged"]
    );
    let _ = Path::new(roster_text);
    Ok(())
}
