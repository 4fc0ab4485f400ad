//! Load: 500 devices log in and sync against one server at once (requests prepared in this
//! process, posted by 32 worker threads). Nothing may fail, be lost or arrive twice; speed is
//! measured by `pilar-bench load`, not asserted here.

use pilar_tests::load::{self, Settings};

/// The seed: `PILAR_TEST_SEED` when set (to rerun a failure), otherwise the clock's nanoseconds.
fn seed() -> u64 {
    match std::env::var("PILAR_TEST_SEED") {
        Ok(text) => text.trim().parse().expect("PILAR_TEST_SEED must be a whole number"),
        Err(_) => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into())
        }
    }
}

#[test]
fn five_hundred_devices_sync_at_once_without_errors_loss_or_duplicates() {
    let seed = seed();
    eprintln!("load scenario seed {seed} (rerun with PILAR_TEST_SEED={seed})");
    let settings = Settings::new(500, 3, 1, seed);
    let report = load::run(&settings).unwrap_or_else(|e| panic!("{e:#}\n(rerun with PILAR_TEST_SEED={seed})"));

    // `run` fails on any error, loss or duplicate; these state the scenario's size, so a change
    // that quietly shrank it (no colleague edits, no packs, no replays) fails too.
    assert_eq!(report.households, 500, "seed {seed}");
    assert_eq!(report.verified.households_in_packs, 500, "seed {seed}");
    // Round 1: create + edit; round 2: one edit per household and one colleague edit per pack
    // device; round 3: one edit per household and one colleague edit per device.
    assert_eq!(report.colleague_edits, 50 + 500, "seed {seed}");
    assert_eq!(report.changes_pushed, 1000 + 500 + 500 + report.colleague_edits, "seed {seed}");
    assert_eq!(report.verified.changes_in_feed as u64, report.changes_pushed, "seed {seed}");
    assert_eq!(report.verified.changes_in_documents as u64, report.changes_pushed, "seed {seed}");
    assert_eq!(report.pack_devices, 50, "seed {seed}");
    assert!(report.replays >= 3 * 500 / 25, "only {} batches replayed; seed {seed}", report.replays);
    assert!(report.changes_pulled > 0, "seed {seed}");
    eprintln!(
        "load: {} sync requests, p50 {:?}, p99 {:?}; whole run {:.1} s",
        report.sync().latencies.len(),
        report.sync().percentile(50.0),
        report.sync().percentile(99.0),
        report.total.as_secs_f64()
    );
}
