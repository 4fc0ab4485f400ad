//! `pilar-bench store`: a device store of N synthetic households, and the latency of listing and
//! searching it through whole `pilar` processes.

use crate::{median, ms};
use pilar_tests::binary;
use pilar_tests::synthetic::Generator;
use std::process::Command;
use std::time::{Duration, Instant};
use sync_core::entry;
use sync_core::form::FormDefinition;
use sync_core::ids::{DistrictCode, VillageCode, regions};
use sync_core::model::DeviceId;
use sync_core::store::{DeviceIdentity, DeviceStore, ListFilter};

/// Seed a store with `households` (from `seed`), then time each list and search command `runs` times.
pub fn run(households: usize, runs: usize, seed: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let table = regions();
    let total_villages = table.village_count(); // forces the full load of all four levels
    let region_load = started.elapsed();
    let dir = tempfile::TempDir::new()?;
    let district = DistrictCode::parse("73.14.01")?; // Panca Lautang, Sidenreng Rappang
    let villages: Vec<VillageCode> = table.villages_in_district(&district).map(|v| v.code).collect();
    let identity = DeviceIdentity {
        device: DeviceId::random(),
        user: "bench.pkh".into(),
        form: FormDefinition::default_dtsen().key(),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut store = DeviceStore::create(dir.path(), &identity, &villages, now)?;
    let form = FormDefinition::default_dtsen();
    let mut generator = Generator::new(seed);
    let seeding = Instant::now();
    let mut a_name = String::new();
    let mut a_nik = String::new();
    let mut an_id = String::new();
    for i in 0..households {
        let village = &villages[i % villages.len()];
        let h = generator.household(village, i);
        if i == households / 2 {
            a_name = h.members[0]["full_name"].to_string();
            a_nik = h.members[0]["nik"].to_string();
        }
        let saved = entry::add_household(&mut store, form, village, h.answers, h.members, now)
            .map_err(|e| anyhow::anyhow!("seeding household {i}: {e:?}"))?;
        if i == households / 2 {
            an_id = saved.household.to_string();
        }
    }
    let seeding = seeding.elapsed();
    drop(store);
    let db_bytes = std::fs::metadata(dir.path().join(sync_core::store::DB_FILE))?.len()
        + std::fs::metadata(dir.path().join("pilar.db-wal")).map(|m| m.len()).unwrap_or(0);

    let home = dir.path().to_str().ok_or_else(|| anyhow::anyhow!("temp path is not UTF-8"))?.to_string();
    let nik_prefix: String = a_nik.chars().take(8).collect();
    let village = villages[0].to_string();
    let commands: Vec<(String, Vec<String>)> = vec![
        ("list (all, JSON)".into(), vec!["list".into(), "--json".into()]),
        ("list (all, table)".into(), vec!["list".into()]),
        (
            "list --village --rt".into(),
            vec!["list".into(), "--village".into(), village, "--rt".into(), "003".into(), "--json".into()],
        ),
        (
            "list --not-visited --limit 50".into(),
            vec!["list".into(), "--not-visited".into(), "--limit".into(), "50".into(), "--json".into()],
        ),
        ("search <name>".into(), vec!["search".into(), a_name.clone(), "--json".into()]),
        ("search <8-digit NIK prefix>".into(), vec!["search".into(), nik_prefix, "--json".into()]),
        ("search <full NIK>".into(), vec!["search".into(), a_nik.clone(), "--json".into()]),
        ("show <household>".into(), vec!["show".into(), an_id.clone(), "--json".into()]),
    ];
    println!("pilar-bench store: {households} synthetic households (seed {seed}) in 10 villages of kecamatan 73.14.01");
    println!(
        "seeding (in-process, one save each): {} ({:.0} households/s)",
        ms(seeding),
        households as f64 / seeding.as_secs_f64()
    );
    println!("store size: {:.1} MB", db_bytes as f64 / 1e6);
    println!("region table first full load (in-process, {total_villages} villages): {}", ms(region_load));
    println!();
    println!("{:<34} {:>10} {:>10} {:>8}", "command (whole `pilar` process)", "median", "max", "rows");
    for (label, args) in &commands {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let out = Command::new(binary("pilar")).arg("--home").arg(&home).args(args).output()?;
            times.push(t.elapsed());
            anyhow::ensure!(out.status.success(), "pilar {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            if args.last().map(String::as_str) == Some("--json") {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
                rows = v.as_array().map(Vec::len).unwrap_or(1);
            } else {
                rows = String::from_utf8_lossy(&out.stdout).lines().count().saturating_sub(2);
            }
        }
        let max = *times.iter().max().unwrap_or(&Duration::ZERO);
        println!("{:<34} {:>10} {:>10} {:>8}", label, ms(median(times)), ms(max), rows);
    }
    // The same queries in-process, without process start-up.
    let store = DeviceStore::open(dir.path())?;
    let mut list = Vec::new();
    let mut search = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let n = store.list(&ListFilter::default())?.len();
        list.push(t.elapsed());
        anyhow::ensure!(n == households, "listed {n} of {households}");
        let t = Instant::now();
        store.search(&a_name, 50)?;
        search.push(t.elapsed());
    }
    println!();
    println!("in-process: list all {} · search by name {}", ms(median(list)), ms(median(search)));
    Ok(())
}
