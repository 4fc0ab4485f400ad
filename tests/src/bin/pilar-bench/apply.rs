//! How fast a device stores what a sync brings, timed in-process: the pack pages of a first sync
//! applied to a fresh device store (`sync_core::sync::apply_pack`, as `pilar sync` calls it),
//! and a sync response pulling colleagues' changes applied to a device holding every household
//! (`sync_core::sync::apply_response`). The bytes are fetched over HTTP once, framed as `pilar`
//! frames them; each timed run starts from a fresh copy of the store, so only the device's work
//! is timed (no process start, no network). `pilar-bench sync` prints these figures for every
//! backend it runs; `pilar-bench apply` measures them alone, quickly.

use crate::sync::{Campaign, access_token, edit, load_average, seed_households, sync, thousands};
use anyhow::{Context, Result, anyhow, ensure};
use pilar_tests::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;
use std::time::{Duration, Instant};
use sync_core::form::FormDefinition;
use sync_core::model::{DeviceId, HouseholdId};
use sync_core::store::{DeviceIdentity, DeviceStore};
use sync_core::sync::{CONTENT_TYPE, PACK_CONTENT_TYPE, Pack, SyncRequest, SyncResponse};
use tempfile::TempDir;
use time::OffsetDateTime;

/// Timed runs per figure (the median is reported).
pub const RUNS: usize = 5;
/// Target of issue 15: households a fresh device stores per second from pack pages.
pub const PACK_TARGET: f64 = 6_000.0;
/// Target of issue 15: pulled changes a device applies per second.
pub const PULL_TARGET: f64 = 10_000.0;
/// Households a pack page asks for: `pilar`'s page size before any failure shrinks it.
const PACK_LIMIT: u32 = sync_core::store::PageSizes::MAX_PACK;
/// The most changes one timed pull asks for (the pull is one response, whatever its size).
const PULL_LIMIT: u32 = 20_000;
/// What a decoded body may grow to (as `pilar` allows).
const MAX_BODY: usize = 256 << 20;

/// What to run for `pilar-bench apply`.
pub struct Settings {
    /// Households seeded on the server (and downloaded by the fresh device).
    pub households: usize,
    /// Households a colleague edits, one change each: the changes the timed pull brings.
    pub changes: usize,
    /// Timed runs per figure.
    pub runs: usize,
    /// Seed for the households and the edits.
    pub seed: u64,
}

/// Copy a device store's files (database, WAL, shared memory) from `from` into `to`.
pub fn copy_store(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Every pack page of `villages`, as `pilar sync` asks for them on a first sync (GET accepting
/// compact pages, format 2, before documents; `pilar`'s page size; `after` the last one), decoded
/// by the type the server answered with.
pub fn fetch_pack_pages(base: &str, token: &str, villages: &[String]) -> Result<Vec<Pack>> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let accept = format!("{PACK_CONTENT_TYPE}, {CONTENT_TYPE};q=0.5");
    let mut pages = Vec::new();
    for village in villages {
        let mut after: Option<HouseholdId> = None;
        loop {
            let path = match after {
                Some(a) => format!("/v1/packs/{village}?after={a}&limit={PACK_LIMIT}"),
                None => format!("/v1/packs/{village}?limit={PACK_LIMIT}"),
            };
            let response = client.get(format!("{base}{path}")).bearer_auth(token).header("accept", &accept).send()?;
            let status = response.status();
            let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = response.bytes()?;
            ensure!(status.is_success(), "the server answered {status} to {path}");
            let page = sync_core::sync::decode_pack(content_type.as_deref(), &body, MAX_BODY)
                .with_context(|| format!("decoding {path}"))?;
            after = page.next_after();
            pages.push(page);
            if after.is_none() {
                break;
            }
        }
    }
    Ok(pages)
}

/// The timed runs of applying a first sync's pack pages to a fresh device.
pub struct PackApply {
    /// Households in the pages.
    pub households: usize,
    /// Pages.
    pub pages: usize,
    /// Each run's time for all pages.
    pub runs: Vec<Duration>,
    /// Each run's CPU time (this thread's user + system; the rest of a run is waiting, e.g. on
    /// fsync or for a core on a busy machine).
    pub cpu: Vec<Duration>,
    /// The store the last run filled: a device holding every household, cursors set.
    pub device: TempDir,
}

impl PackApply {
    /// The median run.
    pub fn median(&self) -> Duration {
        crate::median(self.runs.clone())
    }

    /// Households stored per second in the median run.
    pub fn rate(&self) -> f64 {
        self.households as f64 / self.median().as_secs_f64().max(1e-9)
    }

    /// Households stored per second of CPU time (median run): the figure a busy shared machine
    /// disturbs least.
    pub fn cpu_rate(&self) -> f64 {
        self.households as f64 / crate::median(self.cpu.clone()).as_secs_f64().max(1e-9)
    }
}

/// A fresh device store working in `villages` (a device that has just logged in and been told its
/// villages).
fn fresh_device(villages: &[String]) -> Result<TempDir> {
    let dir = tempfile::tempdir()?;
    let identity = DeviceIdentity {
        device: DeviceId::random(),
        user: "bench.fresh".into(),
        form: FormDefinition::default_dtsen().key(),
    };
    let mut store = DeviceStore::create(dir.path(), &identity, &[], OffsetDateTime::now_utc())?;
    store.set_villages(villages)?;
    Ok(dir)
}

/// Apply `pages` to a fresh device store `runs` times (each run on a new store), timing each run's
/// `apply_pack` calls and nothing else.
pub fn time_pack_apply(pages: &[Pack], villages: &[String], runs: usize) -> Result<PackApply> {
    ensure!(runs > 0, "need at least one run");
    let (mut times, mut cpu) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut last = None;
    for _ in 0..runs {
        let dir = fresh_device(villages)?;
        let mut store = DeviceStore::open(dir.path())?;
        let now = OffsetDateTime::now_utc();
        let cpu_before = thread_cpu();
        let started = Instant::now();
        for page in pages {
            sync_core::sync::apply_pack(&mut store, page, now)
                .map_err(|e| anyhow!("applying a pack page of {}: {e}", page.village()))?;
        }
        times.push(started.elapsed());
        cpu.push(thread_cpu().saturating_sub(cpu_before));
        drop(store);
        last = Some(dir);
    }
    let device = last.ok_or_else(|| anyhow!("no run"))?;
    let households = pages.iter().map(Pack::households).sum();
    Ok(PackApply { households, pages: pages.len(), runs: times, cpu, device })
}

/// A sync response pulling changes, and the request it answers.
pub struct Pull {
    /// The request, built from the device's store as `pilar sync` builds it.
    pub request: SyncRequest,
    /// The server's answer.
    pub response: SyncResponse,
}

impl Pull {
    /// Changes the response pulls.
    pub fn changes(&self) -> usize {
        self.response.pull.iter().map(|p| p.changes.len()).sum()
    }
}

/// Ask the server, as the caller of `token`, for what changed after the cursors of the device
/// store in `device` (the request is built on a copy, so `device` stays as it was).
pub fn fetch_pull(device: &Path, base: &str, token: &str) -> Result<Pull> {
    let scratch = tempfile::tempdir()?;
    copy_store(device, scratch.path())?;
    let mut store = DeviceStore::open(scratch.path())?;
    let request =
        sync_core::sync::build_request(&mut store, &[], uuid::Uuid::new_v4(), PULL_LIMIT, OffsetDateTime::now_utc())?;
    ensure!(request.push.is_empty(), "the device to pull into has changes of its own to send");
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let response =
        pilar_tests::sync_http::sync_request(&client, base, token, sync_core::sync::encode(&request)).send()?;
    let status = response.status();
    let body = response.bytes()?;
    ensure!(status.is_success(), "the server answered {status} to the pull");
    let response: SyncResponse = sync_core::sync::decode(&body, MAX_BODY).context("decoding the pull")?;
    ensure!(!response.has_more, "the pull did not fit one response");
    Ok(Pull { request, response })
}

/// The timed runs of applying one pull.
pub struct PullApply {
    /// Changes the response pulls.
    pub changes: usize,
    /// Households they change.
    pub households: usize,
    /// Each run's time in `apply_response`.
    pub runs: Vec<Duration>,
    /// Each run's CPU time (this thread's user + system).
    pub cpu: Vec<Duration>,
}

impl PullApply {
    /// The median run.
    pub fn median(&self) -> Duration {
        crate::median(self.runs.clone())
    }

    /// Changes applied per second in the median run.
    pub fn rate(&self) -> f64 {
        self.changes as f64 / self.median().as_secs_f64().max(1e-9)
    }

    /// Changes applied per second of CPU time (median run).
    pub fn cpu_rate(&self) -> f64 {
        self.changes as f64 / crate::median(self.cpu.clone()).as_secs_f64().max(1e-9)
    }
}

/// Apply `pull` to a fresh copy of the device store in `device`, `runs` times, timing
/// `apply_response` alone; checks that every run applied every change.
pub fn time_pull_apply(device: &Path, pull: &Pull, runs: usize) -> Result<PullApply> {
    ensure!(runs > 0, "need at least one run");
    let changes = pull.changes();
    let (mut times, mut cpu) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let copy = tempfile::tempdir()?;
        copy_store(device, copy.path())?;
        let mut store = DeviceStore::open(copy.path())?;
        let now = OffsetDateTime::now_utc();
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let outcome = sync_core::sync::apply_response(&mut store, &pull.request, &pull.response, now)
            .map_err(|e| anyhow!("applying the pull: {e}"))?;
        times.push(started.elapsed());
        cpu.push(thread_cpu().saturating_sub(cpu_before));
        ensure!(
            outcome.received == changes && outcome.repairs == 0,
            "the pull applied {} of {changes} changes ({} households listed for repair)",
            outcome.received,
            outcome.repairs
        );
    }
    Ok(PullApply { changes, households: pull.response.pull.len(), runs: times, cpu })
}

/// User + system CPU time of the calling thread so far (`/proc/thread-self/stat`, in ticks of
/// 10 ms); zero where that file cannot be read.
fn thread_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else { return Duration::ZERO };
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((tick(11) + tick(12)) * 10)
}

/// `1.230 s (runs 1.200 1.230 1.310; CPU median 0.95 s)`.
pub fn runs_text(median: Duration, runs: &[Duration], cpu: &[Duration]) -> String {
    let each: Vec<String> = runs.iter().map(|d| format!("{:.3}", d.as_secs_f64())).collect();
    format!(
        "{:.3} s (runs {}; CPU median {:.2} s)",
        median.as_secs_f64(),
        each.join(" "),
        crate::median(cpu.to_vec()).as_secs_f64()
    )
}

/// `pilar-bench apply`: a server on SQLite, N households uploaded, the fresh device's pack apply
/// timed, then a colleague's edits of M households pulled and their apply timed.
pub fn run(settings: &Settings) -> Result<()> {
    let Settings { households: n, changes: m, runs, seed } = *settings;
    ensure!(n > 0 && m > 0 && m <= n && runs > 0, "need households > 0, 0 < changes ≤ households and runs > 0");
    let campaign = Campaign::start(Backend::Sqlite)?;
    let base = campaign.server.url().to_string();
    eprintln!("pilar-bench apply: server {base}; seeding {n} households");
    println!(
        "pilar-bench apply: {n} households (seed {seed}), {m} pulled changes, median of {runs} runs; {}",
        load_average()
    );
    let seeder = campaign.enumerator("bench.seeder")?;
    seed_households(seeder.home(), &campaign.villages, n, seed)?;
    sync(seeder.home())?;
    let token = access_token(seeder.home())?;
    let villages: Vec<String> = campaign.villages.iter().map(ToString::to_string).collect();
    let pages = fetch_pack_pages(&base, &token, &villages)?;
    let packs = time_pack_apply(&pages, &villages, runs)?;
    ensure!(packs.households == n, "the packs held {} households, not {n}", packs.households);
    println!(
        "first sync on a fresh device: {} households in {} pack pages applied in {} = {} households/s, {} per CPU second \
         (target ≥ {}: {})",
        packs.households,
        packs.pages,
        runs_text(packs.median(), &packs.runs, &packs.cpu),
        thousands(packs.rate().round() as u64),
        thousands(packs.cpu_rate().round() as u64),
        thousands(PACK_TARGET as u64),
        crate::sync::verdict(Some(packs.rate() >= PACK_TARGET))
    );

    eprintln!("a colleague edits {m} households and syncs");
    let colleague = campaign.enumerator("bench.colleague")?;
    sync(colleague.home())?;
    let ids: Vec<HouseholdId> =
        DeviceStore::open(colleague.home())?.household_villages()?.into_iter().map(|(id, _)| id).take(m).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_ed17);
    edit(colleague.home(), &ids, &mut rng)?;
    sync(colleague.home())?;
    let pull = fetch_pull(packs.device.path(), &base, &token)?;
    ensure!(pull.changes() == m, "the pull brought {} changes, not {m}", pull.changes());
    let pulled = time_pull_apply(packs.device.path(), &pull, runs)?;
    println!(
        "pulled changes on a device holding all {n} households: {} changes in {} households applied in {} = {} \
         changes/s, {} per CPU second (target ≥ {}: {})",
        pulled.changes,
        pulled.households,
        runs_text(pulled.median(), &pulled.runs, &pulled.cpu),
        thousands(pulled.rate().round() as u64),
        thousands(pulled.cpu_rate().round() as u64),
        thousands(PULL_TARGET as u64),
        crate::sync::verdict(Some(pulled.rate() >= PULL_TARGET))
    );
    Ok(())
}
