//! The load scenario shared by `pilar-bench load` and the e2e test: hundreds of devices log in and
//! sync against one real `pilar-server`. Requests are prepared in this process with sync-core (each
//! device writes under its own actor) and posted concurrently by a pool of worker threads, so the
//! machine's cores measure the server, not hundreds of client processes. Every answer is checked,
//! and at the end a fresh supervisor device proves that the server holds every household and every
//! change exactly once (snapshot packs and the whole feed from cursor 0).
//!
//! The scenario, for `devices` devices (10 per enumerator account, each account in one village of
//! kecamatan 73.14.01):
//! 1. the admin creates the accounts and assigns villages; every device logs in (one argon2
//!    verification each), all through the worker pool;
//! 2. round 1: every device pushes its new households, each with a first edit;
//! 3. every `pack_every`-th device downloads its village's snapshot pack (as a device does on its
//!    first sync of a village) and continues from the pack's feed position; the others start their
//!    feed at cursor 0;
//! 4. rounds 2..R: every device edits its own households (a visit in round 2) and, once it holds
//!    it, a household of a colleague in the same village (so two devices write one household at
//!    once), pushes, and pulls with its cursor;
//! 5. drain: pull-only requests until no device has more to receive;
//! 6. checks: every device received exactly the changes of others in its village, each once, never
//!    its own and nothing from other villages; a fresh supervisor's packs hold exactly every
//!    household with exactly its changes; the supervisor's pull from cursor 0 returns every change
//!    exactly once.
//!
//! A few devices post a batch a second time after a round: the answer must be the same bytes.

use crate::synthetic::Generator;
use crate::{TEST_ADMIN_PASSWORD, TestServer};
use anyhow::{Context, Result, anyhow, bail, ensure};
use automerge::{Automerge, Change, ChangeHash};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use sync_core::form::FormDefinition;
use sync_core::ids::{DistrictCode, regions};
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, MemberId, NewVisit, VisitId};
use sync_core::protocol::{LoginRequest, LoginResponse};
use sync_core::sync::{PackPage, PushHousehold, SyncRequest, SyncResponse, decode, encode};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

/// The kecamatan whose villages the devices work in (Panca Lautang, Sidenreng Rappang: 10 villages).
pub const KECAMATAN: &str = "73.14.01";

/// Most changes a device asks for in one answer (what `pilar sync` asks for).
const MAX_CHANGES: u32 = 5000;
/// Largest answer body accepted after decompression.
const DECODE_LIMIT: usize = 64 << 20;
/// How long one HTTP request may take before the scenario counts it as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Most pull-only rounds after the last round before the scenario gives up (the feed must drain).
const MAX_DRAIN_ROUNDS: usize = 50;

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Devices syncing, each a fresh device id (its own Automerge actor).
    pub devices: usize,
    /// Sync rounds: round 1 pushes new households, later rounds push edits and pull.
    pub rounds: usize,
    /// Households each device creates in round 1.
    pub households_per_device: usize,
    /// Devices logged in per enumerator account (each account holds one village).
    pub devices_per_enumerator: usize,
    /// Worker threads posting requests at once.
    pub workers: usize,
    /// Logins posted at once (each costs the server an argon2 verification and its memory).
    pub login_workers: usize,
    /// Every n-th device downloads its village's snapshot pack before round 2 (0: none does).
    pub pack_every: usize,
    /// Every n-th device posts its batch a second time after each round (0: none does).
    pub replay_every: usize,
    /// Seed of the households, the edits and every id.
    pub seed: u64,
}

impl Settings {
    /// `devices` devices, `rounds` rounds, `households_per_device` new households each; 10
    /// devices per account, 32 workers (and 32 logins at once), every 10th device downloads a
    /// pack, every 25th replays.
    pub fn new(devices: usize, rounds: usize, households_per_device: usize, seed: u64) -> Settings {
        Settings {
            devices,
            rounds,
            households_per_device,
            devices_per_enumerator: 10,
            workers: 32,
            login_workers: 32,
            pack_every: 10,
            replay_every: 25,
            seed,
        }
    }
}

/// Requests of one kind posted together through the worker pool, and what they moved.
#[derive(Debug, Clone)]
pub struct Phase {
    /// What the phase did, e.g. `round 2`.
    pub name: String,
    /// Each request's latency (send to last byte of the answer), sorted.
    pub latencies: Vec<Duration>,
    /// First send to last answer.
    pub wall: Duration,
    /// Changes pushed and acknowledged.
    pub pushed: u64,
    /// Changes received by devices.
    pub pulled: u64,
    /// Request bodies, bytes.
    pub bytes_up: u64,
    /// Answer bodies, bytes.
    pub bytes_down: u64,
    /// The server's CPU time (user + system) during the phase, when /proc has it.
    pub server_cpu: Option<Duration>,
}

impl Phase {
    /// The latency below which `p` (0–100) percent of the requests finished (nearest rank).
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// Requests answered per second of wall clock.
    pub fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Changes acknowledged (merged into stored households) per second of wall clock.
    pub fn merged_per_second(&self) -> f64 {
        self.pushed as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Several phases as one (latencies pooled, walls, counts and CPU added).
    pub fn combine(name: &str, phases: &[&Phase]) -> Phase {
        let mut latencies: Vec<Duration> = phases.iter().flat_map(|p| p.latencies.iter().copied()).collect();
        latencies.sort();
        Phase {
            name: name.to_string(),
            latencies,
            wall: phases.iter().map(|p| p.wall).sum(),
            pushed: phases.iter().map(|p| p.pushed).sum(),
            pulled: phases.iter().map(|p| p.pulled).sum(),
            bytes_up: phases.iter().map(|p| p.bytes_up).sum(),
            bytes_down: phases.iter().map(|p| p.bytes_down).sum(),
            server_cpu: phases.iter().map(|p| p.server_cpu).sum(),
        }
    }
}

/// The server's memory, from /proc (`None` when not readable).
#[derive(Debug, Clone, Default)]
pub struct ServerMemory {
    /// Peak resident set (VmHWM) from start through the logins, bytes.
    pub peak_through_logins: Option<u64>,
    /// Resident set after the logins, before round 1, bytes (memory the logins left behind).
    pub rss_before_sync: Option<u64>,
    /// Peak resident set during the sync rounds alone, bytes: the peak is reset after the logins
    /// (`/proc/<pid>/clear_refs`); `None` if the reset was refused (then see `peak_overall`).
    pub peak_during_sync: Option<u64>,
    /// Peak resident set over the whole run, bytes (without the reset above).
    pub peak_overall: Option<u64>,
    /// Resident set at the end, bytes.
    pub rss_at_end: Option<u64>,
}

/// What the final checks found on the server (each equal to what the devices pushed, or the run
/// fails).
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// Households in the fresh supervisor's snapshot packs.
    pub households_in_packs: usize,
    /// Changes in those households' documents.
    pub changes_in_documents: usize,
    /// Changes the supervisor pulled from cursor 0 in every village.
    pub changes_in_feed: usize,
    /// Pack pages and sync requests the check took.
    pub requests: usize,
}

/// Everything a load run measured and checked.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// What was run.
    pub settings: Settings,
    /// The server's process id.
    pub server_pid: u32,
    /// Villages in use.
    pub villages: usize,
    /// Enumerator accounts.
    pub enumerators: usize,
    /// Households created by the devices.
    pub households: usize,
    /// Changes pushed and acknowledged.
    pub changes_pushed: u64,
    /// Of those, edits a device made to a colleague's household.
    pub colleague_edits: u64,
    /// Changes delivered to devices (pulls).
    pub changes_pulled: u64,
    /// Batches posted twice that got identical answers.
    pub replays: usize,
    /// Devices that started from a snapshot pack.
    pub pack_devices: usize,
    /// Account creation and assignment (admin requests).
    pub accounts: Phase,
    /// Device logins.
    pub logins: Phase,
    /// Snapshot pack pages of the pack devices.
    pub packs: Option<Phase>,
    /// The sync rounds, then the drain rounds.
    pub rounds: Vec<Phase>,
    /// The server's memory.
    pub memory: ServerMemory,
    /// The final checks.
    pub verified: Verified,
    /// Whole run, server start to the end of the checks.
    pub total: Duration,
}

impl LoadReport {
    /// Every sync request of the run as one phase.
    pub fn sync(&self) -> Phase {
        Phase::combine("all sync requests", &self.rounds.iter().collect::<Vec<_>>())
    }
}

/// The latency below which `p` percent of `sorted` lie (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One device: its identity, session, the documents it writes and what it received.
struct Device {
    id: DeviceId,
    user: String,
    village: String,
    /// Index of the village in the scenario's list.
    village_index: usize,
    token: String,
    /// Households it created, in creation order.
    own: Vec<Household>,
    /// The colleague's household it also edits, and its document once received.
    colleague: Option<HouseholdId>,
    colleague_doc: Option<Household>,
    /// Feed position in its village; `None` until its first pull round.
    cursor: Option<u64>,
    /// Started from a snapshot pack.
    from_pack: bool,
    /// Every change received, in order (duplicates would show here).
    pulled: Vec<ChangeHash>,
    /// More changes wait on the server.
    has_more: bool,
}

/// Every change pushed and acknowledged, by village.
#[derive(Default)]
struct Ledger {
    /// Per village: (change, the device that wrote it, round).
    changes: Vec<Vec<(ChangeHash, usize, usize)>>,
    /// Per household: its village and its changes.
    households: BTreeMap<HouseholdId, (usize, BTreeSet<ChangeHash>)>,
    /// Colleague edits acknowledged.
    colleague_edits: u64,
}

/// One prepared sync request.
struct Prepared {
    device: usize,
    body: Vec<u8>,
    /// The changes in it: household, hash.
    changes: Vec<(HouseholdId, ChangeHash)>,
    colleague_edits: u64,
}

/// One answered HTTP request.
struct Timed {
    status: StatusCode,
    body: Vec<u8>,
    sent: Instant,
    answered: Instant,
    bytes_up: u64,
}

/// Worker threads, each with its own HTTP client (own connections), posting jobs in order.
struct Pool {
    clients: Vec<Client>,
}

impl Pool {
    fn new(workers: usize) -> Result<Pool> {
        let clients = (0..workers.max(1))
            .map(|_| Client::builder().timeout(REQUEST_TIMEOUT).build().context("cannot build an HTTP client"))
            .collect::<Result<_>>()?;
        Ok(Pool { clients })
    }

    /// Run `work` on every job, `clients.len()` at a time; results in job order.
    fn run<J: Sync, R: Send>(&self, jobs: &[J], work: impl Fn(&Client, &J) -> R + Sync) -> Result<Vec<R>> {
        let next = AtomicUsize::new(0);
        let per_worker: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .clients
                .iter()
                .take(jobs.len().max(1))
                .map(|client| {
                    let (next, work) = (&next, &work);
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((i, work(client, job)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow!("a worker thread panicked")))
                .collect::<Result<Vec<_>>>()
        })?;
        let mut all: Vec<(usize, R)> = per_worker.into_iter().flatten().collect();
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, r)| r).collect())
    }
}

/// A random (version 4) uuid from the scenario's seeded generator.
fn uuid(rng: &mut StdRng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Send one request and read the whole answer; `bytes_up` is the request body's size.
fn send(request: reqwest::blocking::RequestBuilder, bytes_up: u64) -> Result<Timed> {
    let sent = Instant::now();
    let response = request.send().context("the request got no answer")?;
    let status = response.status();
    let body = response.bytes().context("the answer broke off")?.to_vec();
    Ok(Timed { status, body, sent, answered: Instant::now(), bytes_up })
}

/// A JSON request body.
fn json_request(
    client: &Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<Timed> {
    let mut request =
        client.request(method, url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request, body.len() as u64)
}

/// An error unless the server answered 2xx. Error bodies are the server's `{error, message}`
/// (never personal data).
fn expect_success(timed: &Timed, what: &str) -> Result<()> {
    ensure!(
        timed.status.is_success(),
        "{what}: the server answered {} {}",
        timed.status,
        String::from_utf8_lossy(&timed.body)
    );
    Ok(())
}

/// `POST /v1/login` from `device`.
fn login(client: &Client, base: &str, user: &str, password: &str, device: DeviceId) -> Result<(LoginResponse, Timed)> {
    let request = LoginRequest {
        user: user.to_string(),
        password: password.to_string(),
        device,
        device_name: "load test tablet".to_string(),
    };
    let body = serde_json::to_vec(&request)?;
    let timed = json_request(client, reqwest::Method::POST, &format!("{base}/v1/login"), None, &body)?;
    expect_success(&timed, &format!("login of {user} from device {device}"))?;
    let response = serde_json::from_slice(&timed.body).with_context(|| format!("the login answer for {user}"))?;
    Ok((response, timed))
}

/// `POST /v1/sync` with an encoded request.
fn post_sync(client: &Client, base: &str, token: &str, body: &[u8]) -> Result<Timed> {
    send(crate::sync_http::sync_request(client, base, token, body.to_vec()), body.len() as u64)
}

/// Every page of `village`'s snapshot pack, in order.
fn download_pack(client: &Client, base: &str, token: &str, village: &str) -> Result<Vec<(PackPage, Timed)>> {
    let mut pages = Vec::new();
    let mut after: Option<HouseholdId> = None;
    loop {
        let mut url = format!("{base}/v1/packs/{village}");
        if let Some(after) = after {
            url.push_str(&format!("?after={after}"));
        }
        let timed = send(client.get(url).bearer_auth(token), 0)?;
        expect_success(&timed, &format!("pack page of village {village}"))?;
        let page: PackPage = decode(&timed.body, DECODE_LIMIT).context("a pack page")?;
        ensure!(page.village == village, "asked for the pack of {village}, got a page of {}", page.village);
        after = page.next_after;
        pages.push((page, timed));
        if after.is_none() {
            return Ok(pages);
        }
    }
}

/// A phase from its answered requests.
fn phase(name: &str, timed: &[&Timed], pushed: u64, pulled: u64, server_cpu: Option<Duration>) -> Phase {
    let mut latencies: Vec<Duration> = timed.iter().map(|t| t.answered - t.sent).collect();
    latencies.sort();
    let first = timed.iter().map(|t| t.sent).min();
    let last = timed.iter().map(|t| t.answered).max();
    Phase {
        name: name.to_string(),
        latencies,
        wall: first.zip(last).map(|(f, l)| l - f).unwrap_or_default(),
        pushed,
        pulled,
        bytes_up: timed.iter().map(|t| t.bytes_up).sum(),
        bytes_down: timed.iter().map(|t| t.body.len() as u64).sum(),
        server_cpu,
    }
}

/// User + system CPU time of a process (/proc/PID/stat fields 14 and 15, 100 ticks a second).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A `kB` field of /proc/PID/status (`VmHWM:`, `VmRSS:`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Reset a process's peak resident set (VmHWM) to its current size; false if refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU time the server used since `before`.
fn cpu_since(pid: u32, before: Option<Duration>) -> Option<Duration> {
    cpu_time(pid).zip(before).map(|(after, before)| after.saturating_sub(before))
}

/// Five household answers with valid codes (lighting 1–3, so no electricity check can object),
/// and a visit when asked.
fn routine_edits(rng: &mut StdRng, visit: bool) -> Edits {
    let answers: BTreeMap<String, Option<FieldValue>> = [
        ("floor_area_m2", rng.random_range(18..=250)),
        ("roof_material", rng.random_range(1..=8)),
        ("wall_material", rng.random_range(1..=7)),
        ("water_source", rng.random_range(1..=11)),
        ("lighting_source", rng.random_range(1..=3)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(FieldValue::Int(v))))
    .collect();
    let visit = visit.then(|| NewVisit {
        id: VisitId(uuid(rng)),
        outcome: 1,
        lat: Some(-3.95 - rng.random_range(0.0..0.1)),
        lon: Some(119.75 + rng.random_range(0.0..0.1)),
        accuracy_m: Some(8.0),
        note: None,
        answers: BTreeMap::new(),
    });
    Edits { answers, visit, ..Edits::default() }
}

/// One save action on `household` (new random answers until something changes).
fn edit(household: &mut Household, editor: &Editor, rng: &mut StdRng, visit: bool) -> Result<sync_core::model::Saved> {
    for _ in 0..16 {
        let result = household
            .apply(editor, "edit", &routine_edits(rng, visit), |_| Ok::<(), std::convert::Infallible>(()))
            .with_context(|| format!("editing household {}", household.id()))?;
        let Ok(((), saved)) = result;
        if let Some(saved) = saved {
            return Ok(saved);
        }
    }
    bail!("sixteen random edits of household {} all changed nothing", household.id())
}

/// The hashes of every change in a stored document.
fn document_changes(document: &[u8]) -> Result<BTreeSet<ChangeHash>> {
    let doc = Automerge::load(document).map_err(|e| anyhow!("a document does not load: {e}"))?;
    Ok(doc.get_changes_meta(&[]).into_iter().map(|m| m.hash).collect())
}

/// Apply received changes to the documents the device holds; record every change's hash.
fn receive(device: &mut Device, d: usize, response: &SyncResponse) -> Result<u64> {
    let mut count = 0;
    for pull in &response.pull {
        ensure!(
            pull.village == device.village,
            "device {d} (village {}) received household {} of village {}",
            device.village,
            pull.household,
            pull.village
        );
        let bytes: Vec<Vec<u8>> = pull.changes.iter().map(|c| c.to_vec()).collect();
        for b in &bytes {
            let change =
                Change::from_bytes(b.clone()).map_err(|e| anyhow!("device {d} received an unreadable change: {e}"))?;
            ensure!(
                change.actor_id() != &device.id.actor(),
                "device {d} received one of its own changes back (household {})",
                pull.household
            );
            device.pulled.push(change.hash());
            count += 1;
        }
        let applied = if let Some(own) = device.own.iter_mut().find(|h| h.id() == pull.household) {
            own.apply_changes(&bytes).map(|_| ())
        } else if device.colleague == Some(pull.household) {
            match &mut device.colleague_doc {
                Some(doc) => doc.apply_changes(&bytes).map(|_| ()),
                None => Household::from_changes(pull.household, &bytes, device.id)
                    .map(|doc| device.colleague_doc = Some(doc)),
            }
        } else {
            Ok(())
        };
        applied.with_context(|| format!("device {d} cannot apply the changes it received for {}", pull.household))?;
    }
    Ok(count)
}

/// Post prepared requests, check every answer, apply it to its device and record the changes.
/// Returns the phase and how many replayed batches got identical answers.
#[expect(clippy::too_many_arguments, reason = "one call site per kind of round; a struct would only rename them")]
fn sync_phase(
    name: &str,
    round: usize,
    pool: &Pool,
    base: &str,
    pid: u32,
    devices: &mut [Device],
    ledger: &mut Ledger,
    prepared: Vec<Prepared>,
    replay_every: usize,
) -> Result<(Phase, usize)> {
    let cpu = cpu_time(pid);
    let answers = pool.run(&prepared, |client, p| post_sync(client, base, &devices[p.device].token, &p.body))?;
    let server_cpu = cpu_since(pid, cpu);
    let mut timed = Vec::with_capacity(answers.len());
    for (p, answer) in prepared.iter().zip(answers) {
        timed.push(answer.with_context(|| format!("{name}: the sync request of device {}", p.device))?);
    }
    let (mut pushed, mut pulled) = (0, 0);
    for (p, t) in prepared.iter().zip(&timed) {
        let d = p.device;
        expect_success(t, &format!("{name}: the sync request of device {d}"))?;
        let response: SyncResponse = decode(&t.body, DECODE_LIMIT)
            .with_context(|| format!("{name}: the sync answer to device {d} does not decode"))?;
        ensure!(
            response.rejected.is_empty() && response.need_full.is_empty(),
            "{name}: device {d} had {} household(s) refused ({:?}) and {} asked in full",
            response.rejected.len(),
            response.rejected.iter().map(|r| &r.code).collect::<Vec<_>>(),
            response.need_full.len()
        );
        ensure!(
            response.acknowledged as usize == p.changes.len(),
            "{name}: device {d} pushed {} changes, {} acknowledged",
            p.changes.len(),
            response.acknowledged
        );
        let device = &mut devices[d];
        ensure!(
            response.villages == [device.village.clone()],
            "{name}: device {d} was told it holds villages {:?}, not {}",
            response.villages,
            device.village
        );
        pulled += receive(device, d, &response)?;
        if device.cursor.is_some() {
            let cursor = response.cursors.get(&device.village).copied();
            ensure!(cursor.is_some(), "{name}: the answer to device {d} has no cursor for its village");
            device.cursor = cursor;
        }
        device.has_more = response.has_more;
        let village = device.village_index;
        for (household, hash) in &p.changes {
            ledger.changes[village].push((*hash, d, round));
            ledger.households.entry(*household).or_insert_with(|| (village, BTreeSet::new())).1.insert(*hash);
        }
        ledger.colleague_edits += p.colleague_edits;
        pushed += p.changes.len() as u64;
    }
    // A few batches again: a retry after a lost answer must get the very same bytes.
    let replayed: Vec<(usize, &Prepared)> =
        prepared.iter().enumerate().filter(|(_, p)| (p.device + round).checked_rem(replay_every) == Some(0)).collect();
    let again = pool.run(&replayed, |client, (_, p)| post_sync(client, base, &devices[p.device].token, &p.body))?;
    for ((i, p), answer) in replayed.iter().zip(again) {
        let answer = answer.with_context(|| format!("{name}: replaying the batch of device {}", p.device))?;
        expect_success(&answer, &format!("{name}: replaying the batch of device {}", p.device))?;
        ensure!(
            answer.body == timed[*i].body,
            "{name}: device {} posted its batch again and got a different answer ({} bytes, first {} bytes)",
            p.device,
            answer.body.len(),
            timed[*i].body.len()
        );
    }
    let refs: Vec<&Timed> = timed.iter().collect();
    Ok((phase(name, &refs, pushed, pulled, server_cpu), replayed.len()))
}

/// Run the scenario on a fresh server; an error says what went wrong (and the seed).
pub fn run(settings: &Settings) -> Result<LoadReport> {
    run_scenario(settings).with_context(|| {
        format!(
            "load scenario with {} devices, {} rounds, {} households per device, seed {}",
            settings.devices, settings.rounds, settings.households_per_device, settings.seed
        )
    })
}

fn run_scenario(settings: &Settings) -> Result<LoadReport> {
    let s = settings;
    ensure!(
        s.devices > 0
            && s.rounds > 0
            && s.households_per_device > 0
            && s.devices_per_enumerator > 0
            && s.workers > 0
            && s.login_workers > 0,
        "devices, rounds, households per device, devices per enumerator, workers and login workers must all be at \
         least 1"
    );
    let started = Instant::now();
    let district = DistrictCode::parse(KECAMATAN)?;
    let village_codes: Vec<_> = regions().villages_in_district(&district).map(|v| v.code).collect();
    ensure!(!village_codes.is_empty(), "kecamatan {KECAMATAN} has no villages in the region table");
    let villages: Vec<String> = village_codes.iter().map(ToString::to_string).collect();
    let mut rng = StdRng::seed_from_u64(s.seed);
    let server = TestServer::start();
    let pid = server.pid();
    let base = server.url().to_string();
    let pool = Pool::new(s.workers)?;
    let admin_client = Client::builder().timeout(REQUEST_TIMEOUT).build()?;
    let (admin, _) = login(&admin_client, &base, "admin", TEST_ADMIN_PASSWORD, DeviceId(uuid(&mut rng)))?;

    // Accounts: one enumerator per `devices_per_enumerator` devices, each holding one village.
    let enumerators = s.devices.div_ceil(s.devices_per_enumerator);
    let accounts: Vec<(String, String, usize)> = (0..enumerators)
        .map(|e| (format!("load.enum{e:04}"), format!("sandi-load-{e:04}"), e % villages.len()))
        .collect();
    eprintln!("load: server {base} (pid {pid}); {enumerators} accounts, {} devices", s.devices);
    let cpu = cpu_time(pid);
    let created = pool.run(&accounts, |client, (name, password, village)| -> Result<Vec<Timed>> {
        let user = serde_json::json!({ "name": name, "role": "enumerator", "password": password });
        let t1 = json_request(
            client,
            reqwest::Method::POST,
            &format!("{base}/v1/admin/users"),
            Some(&admin.access_token),
            &serde_json::to_vec(&user)?,
        )?;
        expect_success(&t1, &format!("creating {name}"))?;
        let assign = serde_json::json!({ "villages": [villages[*village]] });
        let t2 = json_request(
            client,
            reqwest::Method::PUT,
            &format!("{base}/v1/admin/users/{name}/villages"),
            Some(&admin.access_token),
            &serde_json::to_vec(&assign)?,
        )?;
        expect_success(&t2, &format!("assigning {name}"))?;
        Ok(vec![t1, t2])
    })?;
    let created: Vec<Timed> = created.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten().collect();
    let accounts_phase = phase("accounts", &created.iter().collect::<Vec<_>>(), 0, 0, cpu_since(pid, cpu));
    eprintln!("load: {enumerators} accounts created and assigned in {:.1} s", accounts_phase.wall.as_secs_f64());

    // Logins: every device a fresh id, all at once through the pool.
    let device_ids: Vec<DeviceId> = (0..s.devices).map(|_| DeviceId(uuid(&mut rng))).collect();
    let cpu = cpu_time(pid);
    let indices: Vec<usize> = (0..s.devices).collect();
    let logins = Pool::new(s.login_workers)?.run(&indices, |client, &d| {
        let (name, password, _) = &accounts[d / s.devices_per_enumerator];
        login(client, &base, name, password, device_ids[d])
    })?;
    let logins_cpu = cpu_since(pid, cpu);
    let mut devices = Vec::with_capacity(s.devices);
    let mut login_timed = Vec::with_capacity(s.devices);
    for (d, (id, answer)) in device_ids.iter().zip(logins).enumerate() {
        let (response, timed) = answer.with_context(|| format!("login of device {d}"))?;
        let (name, _, village_index) = &accounts[d / s.devices_per_enumerator];
        let village = villages[*village_index].clone();
        ensure!(
            response.villages == [village.clone()],
            "device {d} of {name} logged in with villages {:?}, not {village}",
            response.villages
        );
        devices.push(Device {
            id: *id,
            user: name.clone(),
            village,
            village_index: *village_index,
            token: response.access_token,
            own: Vec::new(),
            colleague: None,
            colleague_doc: None,
            cursor: None,
            from_pack: false,
            pulled: Vec::new(),
            has_more: false,
        });
        login_timed.push(timed);
    }
    let logins_phase = phase("logins", &login_timed.iter().collect::<Vec<_>>(), 0, 0, logins_cpu);
    drop(login_timed);
    let mut memory = ServerMemory { peak_through_logins: status_bytes(pid, "VmHWM:"), ..ServerMemory::default() };
    let peak_was_reset = reset_peak(pid);
    memory.rss_before_sync = status_bytes(pid, "VmRSS:");
    eprintln!(
        "load: {} logins in {:.1} s (p50 {:.0} ms)",
        s.devices,
        logins_phase.wall.as_secs_f64(),
        logins_phase.percentile(50.0).as_secs_f64() * 1e3
    );

    // Round 1: new households, each with a first edit.
    let form_key = FormDefinition::default_dtsen().key();
    let mut generator = Generator::new(s.seed);
    let now = OffsetDateTime::now_utc();
    let mut prepared = Vec::with_capacity(s.devices);
    for (d, device) in devices.iter_mut().enumerate() {
        let editor = Editor { user: device.user.clone(), device: device.id, now };
        let village_code = &village_codes[device.village_index];
        let (mut push, mut changes) = (Vec::new(), Vec::new());
        for h in 0..s.households_per_device {
            let id = HouseholdId(uuid(&mut rng));
            let synthetic = generator.household(village_code, d * s.households_per_device + h);
            let mut answers: BTreeMap<String, Option<FieldValue>> =
                synthetic.answers.into_iter().map(|(k, v)| (k, Some(v))).collect();
            answers.insert("village_code".into(), Some(FieldValue::Text(device.village.clone())));
            let add_members = synthetic.members.into_iter().map(|m| (MemberId(uuid(&mut rng)), m)).collect();
            let edits = Edits { answers, add_members, ..Edits::default() };
            let (mut household, first) = Household::create(id, &form_key, &editor, &edits)
                .with_context(|| format!("creating household {id} on device {d}"))?;
            let second = edit(&mut household, &editor, &mut rng, false)?;
            push.push(PushHousehold {
                household: id,
                village: Some(device.village.clone()),
                changes: vec![ByteBuf::from(first.bytes), ByteBuf::from(second.bytes)],
            });
            changes.extend([(id, first.hash), (id, second.hash)]);
            device.own.push(household);
        }
        let request = SyncRequest { batch: uuid(&mut rng), cursors: BTreeMap::new(), push, max_changes: MAX_CHANGES };
        prepared.push(Prepared { device: d, body: encode(&request), changes, colleague_edits: 0 });
    }
    // Each device also edits the first household of the next device in its village (a ring).
    let mut by_village: Vec<Vec<usize>> = vec![Vec::new(); villages.len()];
    for (d, device) in devices.iter().enumerate() {
        by_village[device.village_index].push(d);
    }
    for ring in by_village.iter().filter(|r| r.len() > 1) {
        for (i, &d) in ring.iter().enumerate() {
            let next = ring[(i + 1) % ring.len()];
            devices[d].colleague = devices[next].own.first().map(Household::id);
        }
    }
    let mut ledger = Ledger { changes: vec![Vec::new(); villages.len()], ..Ledger::default() };
    let mut rounds = Vec::new();
    let mut replays = 0;
    let (round1, r) = sync_phase("round 1", 1, &pool, &base, pid, &mut devices, &mut ledger, prepared, s.replay_every)?;
    replays += r;
    eprintln!("load: round 1: {} requests in {:.1} s", round1.latencies.len(), round1.wall.as_secs_f64());
    rounds.push(round1);

    // Snapshot packs for every `pack_every`-th device; the others start their feed at cursor 0.
    let pack_devices: Vec<usize> =
        if s.pack_every > 0 && s.rounds > 1 { (0..s.devices).step_by(s.pack_every).collect() } else { Vec::new() };
    let packs = if pack_devices.is_empty() {
        None
    } else {
        Some(download_packs(&pool, &base, pid, &mut devices, &ledger, &pack_devices)?)
    };
    for device in &mut devices {
        device.cursor.get_or_insert(0);
    }

    // Rounds 2..R: edits of own households (a visit in round 2) and of the colleague's, with pulls.
    for round in 2..=s.rounds {
        let now = OffsetDateTime::now_utc();
        let mut prepared = Vec::with_capacity(s.devices);
        for (d, device) in devices.iter_mut().enumerate() {
            let editor = Editor { user: device.user.clone(), device: device.id, now };
            let (mut push, mut changes, mut colleague_edits) = (Vec::new(), Vec::new(), 0);
            for household in &mut device.own {
                let saved = edit(household, &editor, &mut rng, round == 2)?;
                push.push(PushHousehold {
                    household: household.id(),
                    village: None,
                    changes: vec![ByteBuf::from(saved.bytes)],
                });
                changes.push((household.id(), saved.hash));
            }
            if let Some(doc) = &mut device.colleague_doc {
                let saved = edit(doc, &editor, &mut rng, false)?;
                push.push(PushHousehold {
                    household: doc.id(),
                    village: None,
                    changes: vec![ByteBuf::from(saved.bytes)],
                });
                changes.push((doc.id(), saved.hash));
                colleague_edits += 1;
            }
            let cursors = BTreeMap::from([(device.village.clone(), device.cursor.unwrap_or_default())]);
            let request = SyncRequest { batch: uuid(&mut rng), cursors, push, max_changes: MAX_CHANGES };
            prepared.push(Prepared { device: d, body: encode(&request), changes, colleague_edits });
        }
        let name = format!("round {round}");
        let (phase, r) =
            sync_phase(&name, round, &pool, &base, pid, &mut devices, &mut ledger, prepared, s.replay_every)?;
        replays += r;
        eprintln!("load: {name}: {} requests in {:.1} s", phase.latencies.len(), phase.wall.as_secs_f64());
        rounds.push(phase);
    }

    // Drain: pull-only requests until nothing waits (everyone first, then those with more).
    let mut waiting: Vec<usize> = (0..s.devices).collect();
    let mut drains = 0;
    while !waiting.is_empty() {
        drains += 1;
        ensure!(
            drains <= MAX_DRAIN_ROUNDS,
            "devices still had changes to receive after {MAX_DRAIN_ROUNDS} pull rounds"
        );
        let prepared: Vec<Prepared> = waiting
            .iter()
            .map(|&d| {
                let device = &devices[d];
                let cursors = BTreeMap::from([(device.village.clone(), device.cursor.unwrap_or_default())]);
                let request =
                    SyncRequest { batch: uuid(&mut rng), cursors, push: Vec::new(), max_changes: MAX_CHANGES };
                Prepared { device: d, body: encode(&request), changes: Vec::new(), colleague_edits: 0 }
            })
            .collect();
        let round = s.rounds + drains;
        let (phase, _) =
            sync_phase(&format!("drain {drains}"), round, &pool, &base, pid, &mut devices, &mut ledger, prepared, 0)?;
        rounds.push(phase);
        waiting = (0..s.devices).filter(|&d| devices[d].has_more).collect();
    }
    memory.peak_during_sync = if peak_was_reset { status_bytes(pid, "VmHWM:") } else { None };

    check_deliveries(&devices, &ledger)?;

    // The server holds every household with exactly its changes, and its feed each change once.
    eprintln!("load: rounds done after {:.1} s; checking the server's packs and feed", started.elapsed().as_secs_f64());
    let verified = verify_server(&admin_client, &base, &admin.access_token, &villages, &ledger, &mut rng)?;
    memory.peak_overall = match (memory.peak_through_logins, memory.peak_during_sync) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => status_bytes(pid, "VmHWM:"),
    };
    memory.rss_at_end = status_bytes(pid, "VmRSS:");
    let changes_pushed: u64 = rounds.iter().map(|p| p.pushed).sum();
    let changes_pulled: u64 = rounds.iter().map(|p| p.pulled).sum();
    Ok(LoadReport {
        settings: s.clone(),
        server_pid: pid,
        villages: villages.len().min(enumerators),
        enumerators,
        households: ledger.households.len(),
        changes_pushed,
        colleague_edits: ledger.colleague_edits,
        changes_pulled,
        replays,
        pack_devices: pack_devices.len(),
        accounts: accounts_phase,
        logins: logins_phase,
        packs,
        rounds,
        memory,
        verified,
        total: started.elapsed(),
    })
}

/// The pack devices download their village's snapshot pack (every page), which must hold exactly
/// the households created there and their changes; each continues from the pack's feed position.
fn download_packs(
    pool: &Pool,
    base: &str,
    pid: u32,
    devices: &mut [Device],
    ledger: &Ledger,
    pack_devices: &[usize],
) -> Result<Phase> {
    let cpu = cpu_time(pid);
    let downloads =
        pool.run(pack_devices, |client, &d| download_pack(client, base, &devices[d].token, &devices[d].village))?;
    let server_cpu = cpu_since(pid, cpu);
    let mut timed = Vec::new();
    for (&d, pages) in pack_devices.iter().zip(downloads) {
        let pages = pages.with_context(|| format!("the pack download of device {d}"))?;
        let device = &mut devices[d];
        let mut households = BTreeSet::new();
        for (page, _) in &pages {
            for packed in &page.households {
                let expected = ledger.households.get(&packed.household);
                ensure!(
                    expected.map(|(v, _)| *v) == Some(device.village_index),
                    "device {d}'s pack of {} holds household {}, which no device created there",
                    device.village,
                    packed.household
                );
                ensure!(
                    expected.map(|(_, c)| c) == Some(&document_changes(&packed.document)?),
                    "device {d}'s pack holds household {} without exactly the changes pushed to it",
                    packed.household
                );
                households.insert(packed.household);
                let doc = Household::load(packed.household, &packed.document, device.id)
                    .with_context(|| format!("a pack document on device {d}"))?;
                if let Some(own) = device.own.iter_mut().find(|h| h.id() == packed.household) {
                    own.apply_changes(&doc.changes_since(&own.heads()))?;
                } else if device.colleague == Some(packed.household) {
                    device.colleague_doc = Some(doc);
                }
            }
        }
        let created = ledger.households.values().filter(|(v, _)| *v == device.village_index).count();
        ensure!(
            households.len() == created,
            "device {d}'s pack of {} holds {} households; devices created {created} there",
            device.village,
            households.len()
        );
        device.cursor = pages.iter().map(|(p, _)| p.seq).min();
        device.from_pack = true;
        timed.extend(pages.into_iter().map(|(_, t)| t));
    }
    Ok(phase("packs", &timed.iter().collect::<Vec<_>>(), 0, 0, server_cpu))
}

/// Every device received exactly the others' changes in its village (from its start: all of them,
/// or those after its pack), each once.
fn check_deliveries(devices: &[Device], ledger: &Ledger) -> Result<()> {
    for (d, device) in devices.iter().enumerate() {
        let mut received = BTreeSet::new();
        for hash in &device.pulled {
            ensure!(received.insert(*hash), "device {d} received change {hash} twice");
        }
        let expected: BTreeSet<ChangeHash> = ledger.changes[device.village_index]
            .iter()
            .filter(|(_, by, round)| *by != d && (!device.from_pack || *round > 1))
            .map(|(hash, _, _)| *hash)
            .collect();
        ensure!(
            received == expected,
            "device {d} (village {}{}) received {} changes, expected {}: {} missing, {} unexpected",
            device.village,
            if device.from_pack { ", from a pack" } else { "" },
            received.len(),
            expected.len(),
            expected.difference(&received).count(),
            received.difference(&expected).count()
        );
    }
    Ok(())
}

/// A fresh supervisor device of the kecamatan downloads every village's pack and pulls the whole
/// feed from cursor 0: both must hold exactly what the devices pushed.
fn verify_server(
    client: &Client,
    base: &str,
    admin_token: &str,
    villages: &[String],
    ledger: &Ledger,
    rng: &mut StdRng,
) -> Result<Verified> {
    let (name, password) = ("load.supervisor", "sandi-load-supervisor");
    let user = serde_json::json!({ "name": name, "role": "supervisor", "password": password });
    let t = json_request(
        client,
        reqwest::Method::POST,
        &format!("{base}/v1/admin/users"),
        Some(admin_token),
        &serde_json::to_vec(&user)?,
    )?;
    expect_success(&t, "creating the supervisor")?;
    let assign = serde_json::json!({ "kecamatan": [KECAMATAN] });
    let t = json_request(
        client,
        reqwest::Method::PUT,
        &format!("{base}/v1/admin/users/{name}/kecamatan"),
        Some(admin_token),
        &serde_json::to_vec(&assign)?,
    )?;
    expect_success(&t, "assigning the supervisor")?;
    let (session, _) = login(client, base, name, password, DeviceId(uuid(rng)))?;
    let token = session.access_token;
    let mut verified = Verified::default();

    let mut seen = BTreeSet::new();
    for (v, village) in villages.iter().enumerate() {
        for (page, _) in download_pack(client, base, &token, village)? {
            verified.requests += 1;
            for packed in &page.households {
                let Some((at, changes)) = ledger.households.get(&packed.household) else {
                    bail!("the server holds household {} in {village}, which no device created", packed.household);
                };
                ensure!(
                    *at == v,
                    "household {} is in {village} on the server, not where it was created",
                    packed.household
                );
                ensure!(seen.insert(packed.household), "household {} is in the packs twice", packed.household);
                let stored = document_changes(&packed.document)?;
                ensure!(
                    &stored == changes,
                    "household {} on the server has {} changes, {} were pushed to it ({} missing)",
                    packed.household,
                    stored.len(),
                    changes.len(),
                    changes.difference(&stored).count()
                );
                verified.changes_in_documents += stored.len();
            }
        }
    }
    verified.households_in_packs = seen.len();
    ensure!(
        seen.len() == ledger.households.len(),
        "the server's packs hold {} households; the devices created {}",
        seen.len(),
        ledger.households.len()
    );

    let mut cursors: BTreeMap<String, u64> = villages.iter().map(|v| (v.clone(), 0)).collect();
    let mut feed = BTreeSet::new();
    loop {
        let request =
            SyncRequest { batch: uuid(rng), cursors: cursors.clone(), push: Vec::new(), max_changes: MAX_CHANGES };
        let t = post_sync(client, base, &token, &encode(&request))?;
        verified.requests += 1;
        expect_success(&t, "the supervisor's pull")?;
        let response: SyncResponse = decode(&t.body, DECODE_LIMIT).context("the supervisor's pull answer")?;
        for pull in &response.pull {
            for bytes in &pull.changes {
                let change =
                    Change::from_bytes(bytes.to_vec()).map_err(|e| anyhow!("an unreadable change in the feed: {e}"))?;
                ensure!(feed.insert(change.hash()), "the feed holds change {} twice", change.hash());
                verified.changes_in_feed += 1;
            }
        }
        cursors = response.cursors;
        if !response.has_more {
            break;
        }
    }
    let pushed: BTreeSet<ChangeHash> = ledger.changes.iter().flatten().map(|(hash, _, _)| *hash).collect();
    ensure!(
        feed == pushed,
        "the feed holds {} changes, the devices pushed {}: {} missing, {} unexpected",
        feed.len(),
        pushed.len(),
        pushed.difference(&feed).count(),
        feed.difference(&pushed).count()
    );
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 95.0), Duration::from_millis(190));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(198));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(200));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn combined_phases_pool_latencies_and_add_counts() {
        let phase = |name: &str, ms: &[u64], pushed| Phase {
            name: name.to_string(),
            latencies: ms.iter().copied().map(Duration::from_millis).collect(),
            wall: Duration::from_secs(1),
            pushed,
            pulled: 1,
            bytes_up: 10,
            bytes_down: 20,
            server_cpu: Some(Duration::from_millis(500)),
        };
        let (a, b) = (phase("a", &[1, 5], 10), phase("b", &[3], 30));
        let both = Phase::combine("both", &[&a, &b]);
        assert_eq!(both.latencies, [1, 3, 5].map(Duration::from_millis));
        assert_eq!((both.wall, both.pushed, both.pulled), (Duration::from_secs(2), 40, 2));
        assert_eq!(both.server_cpu, Some(Duration::from_secs(1)));
        assert!((both.merged_per_second() - 20.0).abs() < 1e-9);
        assert!((both.requests_per_second() - 1.5).abs() < 1e-9);
    }
}
