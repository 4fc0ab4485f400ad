//! Devices sync through a [`FaultProxy`] that drops requests, drops answers after the server
//! committed, truncates answers, duplicates requests, delays and throttles to 2G: every device
//! retries `pilar sync` until it succeeds, every failure it reports is a network failure that
//! matches an injected fault, and in the end every device and the server hold the same households
//! with nothing lost and nothing duplicated.
//!
//! The faults are drawn from a seed, printed at the start; `PILAR_FAULT_SEED` sets it.

use pilar_tests::faults::{Cut, Fault, FaultPlan, FaultProxy, FaultRecord, Throttle};
use pilar_tests::{Campaign, TestDevice};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::Instant;
use sync_core::store::DeviceStore;

const BILOKKA: &str = "73.14.01.1001";
/// Sync attempts a device gets before the test gives up on it.
const MAX_ATTEMPTS: usize = 30;
/// The request kinds faults are injected into. A device keeps its 15-minute access token, so
/// the random rounds expire it before each device's sync to make token refreshes meet faults too.
const FAULTED: [&str; 3] = ["sync", "pack", "refresh"];

fn fault_seed() -> u64 {
    match std::env::var("PILAR_FAULT_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("PILAR_FAULT_SEED={text:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(11),
    }
}

/// The exit-code contract of `pilar sync` for network trouble (no connection, the connection
/// broke during the request or the answer): exit code 3, and stderr says the work is safe on
/// this device.
fn assert_reported_as_network_fault(output: &Output, context: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "a network failure must exit with code 3 ({context}); stderr:\n{stderr}");
    assert!(
        stderr.contains("safe on this device"),
        "a network failure says the work is safe on this device ({context}):\n{stderr}"
    );
}

fn describe(records: &[FaultRecord]) -> String {
    records.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n")
}

/// What the faults did to one test run, for the summary line.
#[derive(Default)]
struct Tally {
    attempts: usize,
    failures: usize,
    faults: BTreeMap<String, usize>,
}

impl Tally {
    fn print(&self, seed: u64) {
        let faults: Vec<String> = self.faults.iter().map(|(f, n)| format!("{n} × {f}")).collect();
        eprintln!(
            "fault seed {seed}: {} sync attempts, {} failed as network failures; injected: {}",
            self.attempts,
            self.failures,
            faults.join(", ")
        );
    }
}

/// Run `pilar sync` until it exits 0. Every failed attempt must have met a broken exchange in
/// the proxy's log and be reported as a network failure. Returns the successful summary.
fn sync_until_done(device: &TestDevice, who: &str, proxy: &FaultProxy, seed: u64, tally: &mut Tally) -> Value {
    for attempt in 1..=MAX_ATTEMPTS {
        let mark = proxy.mark();
        let out = device.run(&["sync", "--json"]);
        let records = proxy.log_since(mark);
        tally.attempts += 1;
        for r in &records {
            if r.fault != Fault::Pass {
                *tally.faults.entry(format!("{} ({})", kind_of(&r.fault), r.kind())).or_default() += 1;
            }
        }
        let context = format!("{who}, attempt {attempt}, PILAR_FAULT_SEED={seed}; exchanges:\n{}", describe(&records));
        if out.status.success() {
            let summary: Value = serde_json::from_slice(&out.stdout).expect("sync --json prints JSON");
            assert_eq!(summary["rejected"], 0, "nothing is refused ({context}): {summary}");
            assert_eq!(summary["still_unsent"], 0, "a successful sync sent everything ({context}): {summary}");
            return summary;
        }
        tally.failures += 1;
        assert!(
            records.iter().any(FaultRecord::broke),
            "pilar sync failed although no exchange was broken ({context})\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_reported_as_network_fault(&out, &context);
    }
    panic!("{who}: pilar sync did not succeed in {MAX_ATTEMPTS} attempts (PILAR_FAULT_SEED={seed})");
}

fn kind_of(fault: &Fault) -> String {
    match fault {
        Fault::Truncate { .. } => "truncate".into(),
        Fault::Delay(_) => "delay".into(),
        Fault::Throttle(_) => "throttle".into(),
        other => other.to_string(),
    }
}

/// Make the device's kept access token look expired: its next command refreshes it first.
fn expire_access_token(device: &TestDevice) {
    let mut store = DeviceStore::open(device.home()).expect("open device store");
    if let Some((token, _)) = store.access_token().expect("access token") {
        store.set_access_token(&token, 0).expect("expire the access token");
    }
}

/// Every household a device holds, with its document heads: equal heads mean equal documents.
fn heads(device: &TestDevice) -> BTreeMap<String, Vec<String>> {
    let store = DeviceStore::open(device.home()).expect("open device store");
    store
        .household_villages()
        .expect("households")
        .into_iter()
        .map(|(id, _)| {
            let mut heads: Vec<String> =
                store.load(id).expect("load household").household.heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            (id.to_string(), heads)
        })
        .collect()
}

/// What the devices recorded: visits and members per household.
#[derive(Default)]
struct Recorded {
    households: BTreeMap<String, (usize, usize)>,
}

/// One enumerator's offline work, drawn from `rng`: a new household, visits, a member, an edit,
/// on its own households and on the shared one.
fn offline_work(device: &TestDevice, who: &str, shared: &str, rng: &mut StdRng, recorded: &mut Recorded) {
    let head = format!("{} Sintetis", ["La", "Wa Ode", "Andi", "Becce", "Puang", "Sitti"][rng.random_range(0..6)]);
    let added = device.json(&["add", "--village", BILOKKA, "--head-name", &head]);
    let id = added["household"].as_str().expect("household id").to_string();
    recorded.households.insert(id.clone(), (0, 0));
    for target in [id.as_str(), shared] {
        let area = rng.random_range(20..200).to_string();
        device.ok(&["visit", target, "--outcome", "2", "--answer", &format!("floor_area_m2={area}")]);
        recorded.households.get_mut(target).expect("recorded").0 += 1;
    }
    let name = format!("{} Sintetis {who}", ["Andi", "Dewi", "Hasan", "Nur"][rng.random_range(0..4)]);
    device.ok(&[
        "member",
        "add",
        shared,
        "--name",
        &name,
        "--answer",
        "sex=1",
        "--answer",
        "presence=1",
        "--answer",
        "relationship=3",
    ]);
    recorded.households.get_mut(shared).expect("recorded").1 += 1;
    let roof = rng.random_range(1..4).to_string();
    device.ok(&["edit", shared, "--answer", &format!("roof_material={roof}")]);
}

#[test]
fn devices_syncing_through_a_faulty_link_converge_with_nothing_lost_or_duplicated() {
    let seed = fault_seed();
    eprintln!("fault seed {seed} (PILAR_FAULT_SEED={seed} repeats these faults)");
    let mut rng = StdRng::seed_from_u64(seed);
    let campaign = Campaign::start();
    let proxy = FaultProxy::start(campaign.server.url(), FaultPlan::pass());
    let url = proxy.url();
    let names = ["pkh.a", "tksk.b", "psm.c", "pkh.d"];
    let devices: Vec<TestDevice> = names.iter().map(|n| campaign.enumerator_at(n, &[BILOKKA], &url)).collect();
    let mut tally = Tally::default();
    let mut recorded = Recorded::default();

    // A household everybody works on.
    for d in &devices {
        d.json(&["sync"]);
    }
    let shared = devices[0].json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis Bersama"])["household"]
        .as_str()
        .expect("household id")
        .to_string();
    recorded.households.insert(shared.clone(), (0, 0));
    for d in &devices {
        d.json(&["sync"]);
    }

    // Each kind of fault at least once, in a fixed order, whatever the seed (sync and pack only:
    // no refresh happens in this phase).
    for d in names.iter().zip(&devices) {
        offline_work(d.1, d.0, &shared, &mut rng, &mut recorded);
    }
    proxy.set_plan(
        FaultPlan::scripted([
            Fault::DropAnswer(Cut::Reset),
            Fault::DropRequest,
            Fault::Truncate { after: 200 },
            Fault::Duplicate,
            Fault::DropAnswer(Cut::Close),
        ])
        .only(&FAULTED),
    );
    for (who, d) in names.iter().zip(&devices) {
        sync_until_done(d, who, &proxy, seed, &mut tally);
    }

    // Then random faults from the seed over three more rounds of offline work, in random orders.
    proxy.set_plan(
        FaultPlan::random(seed)
            .with(0.10, Fault::DropRequest)
            .with(0.08, Fault::DropAnswer(Cut::Reset))
            .with(0.06, Fault::DropAnswer(Cut::Close))
            .with(0.03, Fault::Truncate { after: 20 })
            .with(0.03, Fault::Truncate { after: 400 })
            .with(0.03, Fault::Truncate { after: 3000 })
            .with(0.10, Fault::Duplicate)
            .with(0.05, Fault::Delay(std::time::Duration::from_millis(150)))
            .with(0.02, Fault::Throttle(Throttle::two_g()))
            .only(&FAULTED),
    );
    for _round in 0..3 {
        let mut order: Vec<usize> = (0..devices.len()).collect();
        for (i, d) in devices.iter().enumerate() {
            offline_work(d, names[i], &shared, &mut rng, &mut recorded);
        }
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for i in order {
            expire_access_token(&devices[i]);
            sync_until_done(&devices[i], names[i], &proxy, seed, &mut tally);
        }
    }
    // Everyone pulls what the others sent last (still through the faults).
    for (who, d) in names.iter().zip(&devices) {
        sync_until_done(d, who, &proxy, seed, &mut tally);
    }
    tally.print(seed);
    let log = proxy.log();
    for r in &log {
        assert!(r.upstream_error.is_none(), "the proxy only broke what it was told to (seed {seed}): {r}");
        if r.fault == Fault::Duplicate {
            assert_eq!(
                r.duplicate_status, r.status,
                "a duplicated request is answered like the original (seed {seed}): {r}"
            );
        }
    }

    // A clean device's first sync, straight from the server, shows what the server holds.
    let fresh = campaign.enumerator("pkh.fresh", &[BILOKKA]);
    fresh.json(&["sync"]);
    let server = heads(&fresh);
    let mut expected_ids: Vec<&String> = recorded.households.keys().collect();
    expected_ids.sort();
    assert_eq!(server.keys().collect::<Vec<_>>(), expected_ids, "exactly the recorded households (seed {seed})");
    for (who, d) in names.iter().zip(&devices) {
        assert_eq!(heads(d), server, "{who} holds the server's documents (seed {seed})");
    }
    for (id, (visits, members)) in &recorded.households {
        let shown = fresh.json(&["show", id]);
        let h = &shown["household"];
        assert_eq!(
            h["visits"].as_array().expect("visits").len(),
            *visits,
            "visits of {id}, none lost or doubled (seed {seed})"
        );
        assert_eq!(h["members"].as_array().expect("members").len(), *members, "members of {id} (seed {seed})");
    }
    // Same answers everywhere, down to the conflicts.
    let shared_shown = fresh.json(&["show", &shared]);
    for d in &devices {
        assert_eq!(d.json(&["show", &shared]), shared_shown, "seed {seed}");
    }
}

/// Households in one village of a synthetic roster of `rows` single-person families (the roster
/// sample spreads families over ten villages).
const ROSTER_ROWS: usize = 3000;
const HOUSEHOLDS_IN_BILOKKA: usize = ROSTER_ROWS / 10;

#[test]
fn a_first_sync_of_hundreds_of_households_over_2g_resumes_after_a_cut() {
    let campaign = Campaign::start();
    let roster = campaign.admin.home().join("roster.csv");
    let roster_path = roster.to_str().expect("path");
    let rows = ROSTER_ROWS.to_string();
    campaign.admin.ok(&["debug", "roster-sample", "--rows", &rows, "--largest-family", "1", "--out", roster_path]);
    let imported = campaign.admin.json(&["roster", "import", roster_path]);
    assert_eq!(imported["created"].as_u64(), Some(ROSTER_ROWS as u64), "{imported}");

    let proxy = FaultProxy::start(campaign.server.url(), FaultPlan::pass());
    let device = campaign.enumerator_at("pkh.bilokka", &[BILOKKA], &proxy.url());
    // Two pages of 150 (a compact page would hold the whole village).
    let pages = sync_core::store::PageSizes { pull_changes: 1000, pack_households: 150 };
    sync_core::store::DeviceStore::open(device.home()).expect("store").set_page_sizes(pages).expect("page sizes");
    // 2G all the way; the second pack page's answer is lost on the first attempt.
    let two_g = Fault::Throttle(Throttle::two_g());
    proxy.set_plan(FaultPlan::scripted([two_g, Fault::DropAnswer(Cut::Reset)]).then(two_g).only(&FAULTED));

    let started = Instant::now();
    let cut = device.run(&["sync", "--json"]);
    let first = proxy.log();
    assert_eq!(first.iter().filter(|r| r.kind() == "pack").count(), 2, "{}", describe(&first));
    assert_reported_as_network_fault(&cut, &format!("a cut pack download:\n{}", describe(&first)));
    let kept = device.json(&["list"]).as_array().expect("list").len();
    assert!(kept > 0 && kept < HOUSEHOLDS_IN_BILOKKA, "the first page was kept: {kept}");

    let mark = proxy.mark();
    let done = device.json(&["sync"]);
    let second = proxy.log_since(mark);
    let took = started.elapsed();
    assert_eq!(
        done["households_from_packs"].as_u64(),
        Some((HOUSEHOLDS_IN_BILOKKA - kept) as u64),
        "the second attempt resumes after the kept page: {done}"
    );
    assert_eq!(device.json(&["list"]).as_array().expect("list").len(), HOUSEHOLDS_IN_BILOKKA);
    let down: usize = first.iter().chain(&second).map(|r| r.delivered).sum();
    eprintln!(
        "2G first sync of {HOUSEHOLDS_IN_BILOKKA} households: {down} bytes down in {took:.1?} over {} exchanges",
        first.len() + second.len()
    );
    let faulted = second.iter().filter(|r| FAULTED.contains(&r.kind()));
    assert!(faulted.clone().all(|r| r.fault == two_g && r.status == Some(200)), "{}", describe(&second));
    assert!(second.iter().all(|r| r.status == Some(200)), "{}", describe(&second));
}
