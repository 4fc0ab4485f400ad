//! `pilar-bench load`: hundreds of devices syncing against one real `pilar-server` (the scenario
//! of `pilar_tests::load`): requests prepared in this process and posted by a pool of worker
//! threads, so the cores measure the server. Prints latency percentiles, requests/s, changes
//! merged/s, the server's CPU time and peak memory per phase, and what the final checks found.

use anyhow::Result;
use pilar_tests::load::{self, LoadReport, Phase, Settings};
use std::time::Duration;

/// Run the scenario and print its tables.
pub fn run(settings: &Settings) -> Result<()> {
    let report = load::run(settings)?;
    print(&report);
    Ok(())
}

/// `12.3` (milliseconds).
fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn cpu(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64())).unwrap_or_else(|| "?".into())
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map(|b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))).unwrap_or_else(|| "?".into())
}

fn row(p: &Phase) {
    println!(
        "{:<18} {:>6} {:>7.2} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9.0} {:>8} {:>10} {:>11} {:>7}",
        p.name,
        p.latencies.len(),
        p.wall.as_secs_f64(),
        p.requests_per_second(),
        millis(p.percentile(50.0)),
        millis(p.percentile(95.0)),
        millis(p.percentile(99.0)),
        millis(p.percentile(100.0)),
        p.pushed,
        p.merged_per_second(),
        p.pulled,
        p.bytes_up,
        p.bytes_down,
        cpu(p.server_cpu),
    );
}

fn print(r: &LoadReport) {
    let s = &r.settings;
    println!(
        "pilar-bench load: {} devices ({} enumerator accounts, {} per account, {} villages of kecamatan {}), {} rounds, \
         {} new households per device, {} worker threads ({} for the logins), seed {}",
        s.devices,
        r.enumerators,
        s.devices_per_enumerator,
        r.villages,
        load::KECAMATAN,
        s.rounds,
        s.households_per_device,
        s.workers,
        s.login_workers,
        s.seed
    );
    println!(
        "requests prepared in this process with sync-core and posted at once by the worker pool; latency: send to the \
         last byte of the answer; wall: first send to last answer; bytes: request and answer bodies (zstd CBOR, JSON \
         for accounts and logins); srv cpu: the server's user+system CPU seconds in the phase"
    );
    println!();
    println!(
        "{:<18} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>8} {:>10} {:>11} {:>7}",
        "phase",
        "reqs",
        "wall s",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "pushed",
        "merged/s",
        "pulled",
        "up B",
        "down B",
        "srv cpu"
    );
    row(&r.accounts);
    row(&r.logins);
    if let Some(packs) = &r.packs {
        row(packs);
    }
    for p in &r.rounds {
        row(p);
    }
    let sync = r.sync();
    row(&sync);
    println!();
    println!(
        "sync: {} requests, p50 {} ms, p95 {} ms, p99 {} ms; {:.0} requests/s and {:.0} changes merged/s over the \
         rounds' wall time ({:.2} s); server CPU {} s",
        sync.latencies.len(),
        millis(sync.percentile(50.0)),
        millis(sync.percentile(95.0)),
        millis(sync.percentile(99.0)),
        sync.requests_per_second(),
        sync.merged_per_second(),
        sync.wall.as_secs_f64(),
        cpu(sync.server_cpu),
    );
    println!(
        "work: {} households created, {} changes pushed and acknowledged ({} of them edits of a colleague's \
         household, written concurrently with its owner's), {} changes delivered by pulls, {} devices started from a \
         snapshot pack, {} batches posted twice got identical answers",
        r.households, r.changes_pushed, r.colleague_edits, r.changes_pulled, r.pack_devices, r.replays
    );
    let m = &r.memory;
    println!(
        "server (pid {}) memory: peak (VmHWM) through the logins {}; resident after the logins {}; peak during the \
         sync rounds alone {} (peak reset after the logins); whole run {}; resident at the end {}",
        r.server_pid,
        mib(m.peak_through_logins),
        mib(m.rss_before_sync),
        mib(m.peak_during_sync),
        mib(m.peak_overall),
        mib(m.rss_at_end)
    );
    let v = &r.verified;
    println!(
        "checked: every answer 200 and decoded; every push acknowledged whole, nothing refused; every device received \
         exactly its colleagues' changes, once, never its own; a fresh supervisor's packs hold {} households with \
         exactly their {} changes and the feed from cursor 0 holds {} changes, each once ({} requests)",
        v.households_in_packs, v.changes_in_documents, v.changes_in_feed, v.requests
    );
    println!(
        "issue 15 target: server peak memory (VmHWM) of the whole run {} (target ≤ 100 MB): {} (printed, never the \
         exit code)",
        mib(m.peak_overall),
        crate::sync::verdict(m.peak_overall.map(|peak| peak <= crate::sync::MEMORY_TARGET))
    );
    println!("whole run {:.1} s (server start to the end of the checks)", r.total.as_secs_f64());
}
