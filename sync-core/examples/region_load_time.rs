//! Prints how long the first call to `regions()` takes: run with `cargo run --release -p sync-core --example region_load_time`.

use std::time::Instant;

fn main() {
    let start = Instant::now();
    let table = sync_core::ids::regions();
    let first = start.elapsed();
    let start = Instant::now();
    let again = sync_core::ids::regions();
    let second = start.elapsed();
    println!(
        "regions(): first call {first:?} ({} provinces, {} regencies, {} kecamatan, {} villages); second call {second:?}",
        table.province_count(),
        table.regency_count(),
        table.district_count(),
        again.village_count(),
    );
}
