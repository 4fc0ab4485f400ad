//! `pilar-bench roster-check`: the peak memory of `pilar roster import --check` on synthetic
//! rosters of growing size (10 MB and 50 MB by default), to show it stays flat as the file grows.
//! No server: a check reads and validates the file on this machine and sends nothing.
//!
//! The peak is the child's `VmHWM` from /proc, read every 2 ms while it runs (the kernel keeps
//! the high-water mark, so only growth in its last 2 ms could be missed).

use super::files::{measured, mib};
use anyhow::{Context, Result, ensure};
use pilar_tests::TestDevice;

/// Bytes per person row of a synthetic roster, measured on a sample of this many rows.
const SAMPLE_ROWS: usize = 10_000;

/// Check synthetic rosters of each size in `sizes_mb` (MiB) and print time and peak memory.
pub fn run(sizes_mb: &[u64]) -> Result<()> {
    let admin = TestDevice::new();
    let dir = tempfile::TempDir::new()?;
    let sample = dir.path().join("sample.csv");
    let sample_text = sample.to_str().context("temp path")?;
    admin.ok(&["debug", "roster-sample", "--rows", &SAMPLE_ROWS.to_string(), "--out", sample_text]);
    let bytes_per_row = std::fs::metadata(&sample)?.len() as f64 / SAMPLE_ROWS as f64;
    println!("pilar-bench roster-check: `pilar roster import <file> --check` on synthetic one-row-per-person rosters");
    for size in sizes_mb {
        let rows = ((size * 1024 * 1024) as f64 / bytes_per_row).round() as usize;
        let roster = dir.path().join(format!("roster-{size}mb.csv"));
        let roster_text = roster.to_str().context("temp path")?;
        admin.ok(&["debug", "roster-sample", "--rows", &rows.to_string(), "--out", roster_text]);
        let bytes = std::fs::metadata(&roster)?.len();
        let check = measured(&admin, &["roster", "import", roster_text, "--check"])?;
        ensure!(check.stdout.contains("0 error(s)"), "the synthetic roster should be clean: {}", check.stdout);
        println!(
            "  {} ({bytes} bytes, {rows} rows): {:.1} s ({:.0} rows/s); pilar peak memory {}",
            mib(bytes),
            check.wall.as_secs_f64(),
            rows as f64 / check.wall.as_secs_f64().max(1e-9),
            mib(check.peak)
        );
        std::fs::remove_file(&roster)?;
    }
    Ok(())
}
