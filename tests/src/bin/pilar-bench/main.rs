//! `pilar-bench`: Pilar's benchmark. Measures what a person waits for, on this machine, with the
//! real binaries; every figure in README.md comes from a run of it.
//!
//! Build first: `cargo build --release --workspace`, then `target/release/pilar-bench store` or
//! `target/release/pilar-bench sync` or `target/release/pilar-bench files` or
//! `target/release/pilar-bench load` or `target/release/pilar-bench roster-check` or
//! `target/release/pilar-bench apply` or `target/release/pilar-bench photos`.

mod apply;
mod files;
mod floor;
mod load;
mod office;
mod photos;
mod proxy;
mod roster_check;
mod store;
mod sync;

use clap::{Parser, Subcommand};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Pilar's benchmark: real binaries, real stores, wall-clock figures")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// A device store of N synthetic households: list and search latency through `pilar`.
    Store {
        /// Households in the store.
        #[arg(long, default_value_t = 3000)]
        households: usize,
        /// Runs per command (the median is reported).
        #[arg(long, default_value_t = 9)]
        runs: usize,
        /// Seed for the synthetic households.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// A real server on loopback behind a byte-counting proxy, N households in 10 villages and K
    /// devices: first, routine, idle and concurrent sync, bytes on the wire against their floors;
    /// on SQLite and PostgreSQL side by side, and two servers on one PostgreSQL.
    Sync {
        /// Households seeded on the server (all in every device's scope).
        #[arg(long, default_value_t = 3000)]
        households: usize,
        /// Devices (one enumerator each, all assigned the same villages).
        #[arg(long, default_value_t = 10)]
        devices: usize,
        /// Households each device edits before a routine sync (and again before the concurrent one).
        #[arg(long, default_value_t = 100)]
        edits: usize,
        /// Seed for the synthetic households and the edits.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Backends to measure, one after another in this run [default: both when a PostgreSQL
        /// can be had (a throwaway cluster started here, or PILAR_TEST_POSTGRES), else sqlite].
        #[arg(long, value_enum)]
        database: Option<sync::Databases>,
    },
    /// A device's apply speed alone, in-process (no process start, no network in the timing): a
    /// server on SQLite with N households; their pack pages applied to a fresh device store, then
    /// a response pulling a colleague's edits of M households applied to a device holding all.
    Apply {
        /// Households seeded on the server (the fresh device downloads them all).
        #[arg(long, default_value_t = 3000)]
        households: usize,
        /// Households a colleague edits (one change each): the changes the timed pull brings.
        #[arg(long, default_value_t = 1000)]
        changes: usize,
        /// Timed runs per figure (the median is reported).
        #[arg(long, default_value_t = apply::RUNS)]
        runs: usize,
        /// Seed for the synthetic households and the edits.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Real servers on loopback: import a synthetic roster of N person rows with `pilar roster
    /// import`, then export M households of a fresh server with `pilar export` as XLSX and CSV
    /// (time, peak memory of `pilar` and of the server, file sizes).
    Files {
        /// Person rows in the import phase's roster (families of 1 to 5).
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Households (one person each) imported into a fresh server and exported.
        #[arg(long, default_value_t = 100_000)]
        households: usize,
        /// Skip the import phase (roster import, check, re-import).
        #[arg(long)]
        skip_import: bool,
        /// Skip the export phase.
        #[arg(long)]
        skip_export: bool,
    },
    /// The office web page with N households in one kecamatan (facts derived): dashboard, the
    /// households table and searches by name and by NIK, timed over HTTP as a signed-in supervisor.
    Office {
        /// Households in the kecamatan.
        #[arg(long, default_value_t = 100_000)]
        households: usize,
        /// Requests per page (the median and the slowest are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The server's database (default: SQLite, then PostgreSQL when one can be had).
        #[arg(long, value_enum)]
        database: Option<sync::Databases>,
    },
    /// `pilar roster import --check` on synthetic rosters of each size: time and peak memory of
    /// `pilar`, which stays flat as the file grows (no server involved).
    RosterCheck {
        /// Roster sizes in MiB, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10, 50])]
        sizes_mb: Vec<u64>,
    },
    /// A real server and N devices (fresh device ids, 10 per enumerator account) syncing at once:
    /// requests prepared in-process and posted by a pool of worker threads; latency
    /// percentiles, requests/s, changes merged/s, server CPU and peak memory; fails on any error,
    /// lost or duplicated change.
    Load {
        /// Devices.
        #[arg(long, default_value_t = 500)]
        devices: usize,
        /// Sync rounds (round 1 pushes new households; later rounds push edits and pull).
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// Households each device creates in round 1 (and edits in every later round).
        #[arg(long, default_value_t = 2)]
        households_per_device: usize,
        /// Worker threads posting requests at once.
        #[arg(long, default_value_t = 32)]
        workers: usize,
        /// Logins posted at once (each costs the server an argon2id verification and its memory).
        #[arg(long, default_value_t = 32)]
        login_workers: usize,
        /// Seed for households, edits and ids.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Photo uploads against a real server: `pilar sync` throughput on loopback and through a
    /// throttled link with one cut (and the bytes the cut wasted), the server's cost per chunk
    /// for a household with a long history, and the server's peak memory while N devices upload
    /// 3 photos each at once, for two photo sizes.
    Photos {
        /// Photo sizes uploaded on loopback, KB (1000 bytes), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [300, 1000, 2000])]
        loopback_kb: Vec<usize>,
        /// Size of the photo sent through the throttled link, KB.
        #[arg(long, default_value_t = 300)]
        throttled_kb: usize,
        /// Speed of the throttled link, bytes per second each way.
        #[arg(long, default_value_t = 5000)]
        throttle_bytes_per_second: u64,
        /// Devices uploading at once in the memory figure.
        #[arg(long, default_value_t = 50)]
        devices: usize,
        /// Photos each device uploads in the memory figure.
        #[arg(long, default_value_t = 3)]
        photos_per_device: usize,
        /// Photo sizes of the memory figure, KB, comma-separated (a fresh server each).
        #[arg(long, value_delimiter = ',', default_values_t = [200, 2000])]
        memory_kb: Vec<usize>,
        /// Saves of the long household in the chunk-cost figure.
        #[arg(long, default_value_t = 1000)]
        history: usize,
        /// Seed of the synthetic photos and ids.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::Store { households, runs, seed } => store::run(households, runs, seed),
        Bench::Sync { households, devices, edits, seed, database } => {
            sync::run(&sync::Settings { households, devices, edits, seed, database })
        }
        Bench::Files { rows, households, skip_import, skip_export } => {
            files::run(&files::Settings { rows, households, skip_import, skip_export })
        }
        Bench::RosterCheck { sizes_mb } => roster_check::run(&sizes_mb),
        Bench::Office { households, runs, database } => office::run(&office::Settings { households, runs, database }),
        Bench::Apply { households, changes, runs, seed } => {
            apply::run(&apply::Settings { households, changes, runs, seed })
        }
        Bench::Photos {
            loopback_kb,
            throttled_kb,
            throttle_bytes_per_second,
            devices,
            photos_per_device,
            memory_kb,
            history,
            seed,
        } => photos::run(&photos::Settings {
            loopback_sizes: loopback_kb.iter().map(|kb| kb * 1000).collect(),
            throttled_size: throttled_kb * 1000,
            throttle_bytes_per_second,
            devices,
            photos_per_device,
            memory_sizes: memory_kb.iter().map(|kb| kb * 1000).collect(),
            history,
            seed,
        }),
        Bench::Load { devices, rounds, households_per_device, workers, login_workers, seed } => {
            let settings = pilar_tests::load::Settings {
                workers,
                login_workers,
                ..pilar_tests::load::Settings::new(devices, rounds, households_per_device, seed)
            };
            load::run(&settings)
        }
    }
}

/// The median of `v` (the upper one of an even count); zero for an empty list.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// `12.3 ms`.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
