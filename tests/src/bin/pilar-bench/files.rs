//! `pilar-bench files`: the supervisor's files at kabupaten scale, against real servers on
//! loopback. The import phase imports a synthetic roster of `rows` person rows (families of 1–5)
//! through `pilar roster import`; the export phase imports `households` one-person households into
//! a fresh server and exports the kabupaten with `pilar export`, as XLSX and as CSV. Each phase
//! reports the wall time and the peak memory of the `pilar` process and of the server; the import
//! also the bytes on the wire (through the byte-counting proxy) and the server's CPU time.

use super::proxy::Proxy;
use super::sync::{memory, server_pid};
use anyhow::{Context, Result, ensure};
use pilar_tests::{TEST_ADMIN_PASSWORD, TestDevice, TestServer, binary};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The kabupaten the synthetic rosters live in (Kab. Sidenreng Rappang; villages of 73.14.01).
const EXPORT_AREA: &str = "73.14";

/// What `pilar-bench files` runs.
pub struct Settings {
    /// Person rows in the import phase's roster.
    pub rows: usize,
    /// Households imported and then exported in the export phase.
    pub households: usize,
    /// Skip the import phase.
    pub skip_import: bool,
    /// Skip the export phase.
    pub skip_export: bool,
}

/// A `pilar` run measured from outside: wall time, peak memory (`VmHWM`, sampled every 2 ms
/// while it runs, so a peak in its last few milliseconds may be missed), its standard output.
pub(super) struct Measured {
    /// Wall time from start to exit.
    pub wall: Duration,
    /// Peak resident memory, bytes.
    pub peak: u64,
    /// Standard output.
    pub stdout: String,
}

/// Run `pilar --home <device> args…` and measure it.
pub(super) fn measured(device: &TestDevice, args: &[&str]) -> Result<Measured> {
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
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    let output = child.wait_with_output()?;
    ensure!(status.success(), "pilar {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(Measured { wall, peak, stdout: String::from_utf8_lossy(&output.stdout).into_owned() })
}

/// `12.3 MiB`.
pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The server's peak memory so far, as text (`?` when it cannot be read).
fn server_peak(pid: Option<u32>) -> String {
    pid.and_then(memory).map(|(hwm, _)| mib(hwm)).unwrap_or_else(|| "?".into())
}

/// User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15, in ticks of
/// 10 ms).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Reset the server's `VmHWM` to its current resident memory (Linux `clear_refs` 5), so the next
/// reading is the peak of what follows. Returns whether it worked; if not, later readings are the
/// peak since the server started.
fn reset_server_peak(pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
}

/// Run the files benchmark.
pub fn run(settings: &Settings) -> Result<()> {
    if !settings.skip_import {
        import_phase(settings.rows)?;
    }
    if !settings.skip_export {
        export_phase(settings.households)?;
    }
    Ok(())
}

/// A roster of `rows` person rows, imported, checked and re-imported.
fn import_phase(rows: usize) -> Result<()> {
    let server = TestServer::start_with(&[], Some(TEST_ADMIN_PASSWORD));
    let pid = server_pid(&server.data_dir());
    let address: SocketAddr = server.url().trim_start_matches("http://").parse().context("server address")?;
    let proxy = Proxy::start(address)?;
    let admin = TestDevice::new();
    admin.login_at(&proxy.url(), "admin", TEST_ADMIN_PASSWORD);
    let dir = tempfile::TempDir::new()?;
    let roster = dir.path().join("roster.csv");
    let roster_text = roster.to_str().context("temp path")?;
    admin.ok(&["debug", "roster-sample", "--rows", &rows.to_string(), "--out", roster_text]);
    let size = std::fs::metadata(&roster)?.len();
    println!(
        "pilar-bench files: a synthetic roster of {rows} person rows ({size} bytes, families of 1–5) on a server on 127.0.0.1"
    );

    let mark = proxy.mark();
    let cpu_before = pid.and_then(cpu_time);
    let import = measured(&admin, &["roster", "import", roster_text, "--json"])?;
    let server_cpu = pid.and_then(cpu_time).zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let traffic = proxy.since(mark);
    let outcome: serde_json::Value = serde_json::from_str(&import.stdout).context("import output")?;
    let created = outcome["created"].as_u64().unwrap_or(0);
    ensure!(created > 0, "the import created nothing: {outcome}");
    println!(
        "roster import: {rows} rows = {created} households in {:.1} s ({:.0} rows/s), check + upload + commit; \
         {} requests, {} bytes up, {} bytes down; server CPU {}; pilar peak memory {}; server peak memory {}",
        import.wall.as_secs_f64(),
        rows as f64 / import.wall.as_secs_f64().max(1e-9),
        traffic.exchanges.len(),
        traffic.up,
        traffic.down,
        server_cpu.map_or_else(|| "?".into(), |cpu| format!("{:.1} s", cpu.as_secs_f64())),
        mib(import.peak),
        server_peak(pid)
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
    Ok(())
}

/// `households` one-person households imported into a fresh server (so they do not mix with the
/// import phase's families, whose `SYN-…` ids they share), then the kabupaten exported as XLSX and
/// as CSV.
fn export_phase(households: usize) -> Result<()> {
    let server = TestServer::start_with(&[], Some(TEST_ADMIN_PASSWORD));
    let pid = server_pid(&server.data_dir());
    let admin = TestDevice::new();
    admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
    let dir = tempfile::TempDir::new()?;
    let roster = dir.path().join("households.csv");
    let roster_text = roster.to_str().context("temp path")?;
    let count = households.to_string();
    admin.ok(&["debug", "roster-sample", "--rows", &count, "--largest-family", "1", "--out", roster_text]);
    println!(
        "pilar-bench files: export of {households} one-person households ({} bytes of roster) from a fresh server on 127.0.0.1",
        std::fs::metadata(&roster)?.len()
    );
    let import = measured(&admin, &["roster", "import", roster_text, "--json"])?;
    let outcome: serde_json::Value = serde_json::from_str(&import.stdout).context("import output")?;
    let created = outcome["created"].as_u64().unwrap_or(0);
    ensure!(created == households as u64, "the import created {created} households, not {households}: {outcome}");
    println!(
        "  roster import of {households} households: {:.1} s; pilar peak memory {}; server peak memory {}",
        import.wall.as_secs_f64(),
        mib(import.peak),
        server_peak(pid)
    );

    // The supervisor's lists read derived facts. The server derives them in the background from
    // the moment the import commits, and a list asked for before it is done derives the rest
    // itself: the first report straight after the import measures what a supervisor waits. It
    // runs before the exports, so they find a quiet server.
    let reset = reset_server_peak(pid);
    let first = measured(&admin, &["progress", "--area", EXPORT_AREA, "--json"])?;
    let report: serde_json::Value = serde_json::from_str(&first.stdout).context("progress output")?;
    let counted: u64 =
        report["villages"].as_array().context("villages")?.iter().filter_map(|v| v["total"].as_u64()).sum();
    ensure!(counted == households as u64, "progress counted {counted} households, not {households}");
    let again = measured(&admin, &["progress", "--area", EXPORT_AREA, "--json"])?;
    println!(
        "  progress --area {EXPORT_AREA}: first report straight after the import {:.1} s (the facts of {households} households derived by then); again {:.2} s; \
         pilar peak memory {}; server peak memory {}{}",
        first.wall.as_secs_f64(),
        again.wall.as_secs_f64(),
        mib(first.peak.max(again.peak)),
        server_peak(pid),
        if reset { "" } else { " (peak since start, clear_refs failed)" }
    );
    let xlsx = dir.path().join("export.xlsx");
    let xlsx_text = xlsx.to_str().context("temp path")?;
    let reset = reset_server_peak(pid);
    let server_before = pid.and_then(memory).map(|(_, rss)| mib(rss)).unwrap_or_else(|| "?".into());
    let export = measured(&admin, &["export", "--area", EXPORT_AREA, "--out", xlsx_text, "--json"])?;
    let summary = exported(&export, households)?;
    let size = std::fs::metadata(&xlsx)?.len();
    println!(
        "  export --area {EXPORT_AREA} (xlsx): {} households, {} members, {} visits in {:.1} s ({:.0} households/s); \
         {size} bytes ({}); pilar peak memory {}; server peak memory during the export {} (resident {} before{})",
        summary["households"],
        summary["members"],
        summary["visits"],
        export.wall.as_secs_f64(),
        households as f64 / export.wall.as_secs_f64().max(1e-9),
        mib(size),
        mib(export.peak),
        server_peak(pid),
        server_before,
        if reset { "" } else { "; peak since start, clear_refs failed" }
    );

    let prefix = dir.path().join("export");
    let prefix_text = prefix.to_str().context("temp path")?;
    let reset = reset_server_peak(pid);
    let export =
        measured(&admin, &["export", "--area", EXPORT_AREA, "--format", "csv", "--out", prefix_text, "--json"])?;
    let summary = exported(&export, households)?;
    let files = summary["files"].as_array().context("files in export output")?;
    ensure!(files.len() == 3, "a csv export writes three files: {summary}");
    let mut total = 0;
    let mut sizes = Vec::new();
    for file in files {
        let path = Path::new(file.as_str().context("file name")?);
        let size = std::fs::metadata(path)?.len();
        total += size;
        sizes.push(format!("{} {size}", path.file_name().unwrap_or_default().to_string_lossy()));
    }
    println!(
        "  export --area {EXPORT_AREA} --format csv: {:.1} s ({:.0} households/s); {total} bytes ({}: {}); \
         pilar peak memory {}; server peak memory during the export {}{}",
        export.wall.as_secs_f64(),
        households as f64 / export.wall.as_secs_f64().max(1e-9),
        mib(total),
        sizes.join(", "),
        mib(export.peak),
        server_peak(pid),
        if reset { "" } else { " (peak since start, clear_refs failed)" }
    );

    Ok(())
}

/// The `--json` summary of an export, after checking it covered all `households`.
fn exported(export: &Measured, households: usize) -> Result<serde_json::Value> {
    let summary: serde_json::Value = serde_json::from_str(&export.stdout).context("export output")?;
    let written = summary["households"].as_u64().unwrap_or(0);
    ensure!(written == households as u64, "the export wrote {written} households, not {households}: {summary}");
    Ok(summary)
}
