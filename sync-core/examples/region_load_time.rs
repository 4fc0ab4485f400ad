//! Prints how long the region table takes to load on first use, level by level.
//!
//! Run with `cargo run --release -p sync-core --example region_load_time`. Each level of the table
//! is indexed on its first lookup, so the figures are: `regions()` itself, the first kecamatan
//! lookup (all a NIK check needs), the first village lookup, and everything else.

use std::time::{Duration, Instant};

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    let took = start.elapsed();
    println!("{what:<42} {took:>12.3?}");
    (value, took)
}

fn main() {
    let (table, a) = timed("regions()", sync_core::ids::regions);
    let (_, b) = timed("first kecamatan lookup (7,285 rows)", || table.district_exists("73.14.01"));
    let (_, c) = timed("first village lookup (83,762 rows)", || table.village("73.14.01.1001"));
    let (_, d) = timed("provinces and regencies", || table.province_count() + table.regency_count());
    let (_, e) = timed("a warm village lookup", || table.village("35.13.15.2017"));
    println!("{:<42} {:>12.3?}", "first full load (all levels)", a + b + c + d);
    let _ = e;
}
