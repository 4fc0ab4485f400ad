//! `pilar-bench sync`: a real `pilar-server` on loopback behind the byte-counting [`Proxy`], N
//! synthetic households in the 10 villages of kecamatan 73.14.01 and K devices. Measures first
//! sync, routine sync after M edits per device, a sync with nothing to do and K concurrent syncs:
//! bytes on the wire both ways (HTTP framing included), requests, round trips and seconds, each
//! beside its physical floor (the zstd-compressed size of the data that had to move), computed in
//! the same run; plus the server's peak memory. Runs on SQLite, on PostgreSQL (a throwaway cluster
//! of its own, as the tests start one) or on both in one run, then prints their figures side by
//! side; on PostgreSQL it also posts the concurrent batches to two servers on one database.

use crate::apply::{self, PackApply, PullApply, copy_store};
use crate::floor;
use crate::proxy::{Proxy, Traffic};
use anyhow::{Context, Result, anyhow, ensure};
use pilar_tests::synthetic::Generator;
use pilar_tests::{Backend, Cell, TEST_ADMIN_PASSWORD, TestDevice, TestServer, binary};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use sync_core::entry;
use sync_core::form::FormDefinition;
use sync_core::ids::{DistrictCode, VillageCode, regions};
use sync_core::model::{Edits, HouseholdId};
use sync_core::store::DeviceStore;
use sync_core::sync::{SyncRequest, encode};
use sync_core::value::FieldValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What to run.
pub struct Settings {
    /// Households seeded on the server.
    pub households: usize,
    /// Devices.
    pub devices: usize,
    /// Households each device edits per round.
    pub edits: usize,
    /// Seed for households and edits.
    pub seed: u64,
    /// Which backends to measure; `None`: both when a PostgreSQL can be had, else SQLite.
    pub database: Option<Databases>,
}

/// The backends `pilar-bench sync --database` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Databases {
    /// SQLite in the server's data directory (the default server).
    Sqlite,
    /// PostgreSQL: a throwaway cluster the bench starts (or `PILAR_TEST_POSTGRES`).
    Postgres,
    /// SQLite, then PostgreSQL, in one run; the figures side by side.
    Both,
}

/// The backends to run, in order, and a note when the choice was made for the user.
pub(super) fn backends(choice: Option<Databases>) -> Result<(Vec<Backend>, Option<String>)> {
    let postgres = pilar_tests::postgres::available();
    match choice {
        Some(Databases::Sqlite) => Ok((vec![Backend::Sqlite], None)),
        Some(Databases::Postgres | Databases::Both) => {
            postgres.map_err(|why| anyhow!("--database postgres needs a PostgreSQL: {why}"))?;
            let list = if choice == Some(Databases::Both) {
                vec![Backend::Sqlite, Backend::Postgres]
            } else {
                vec![Backend::Postgres]
            };
            Ok((list, None))
        }
        None => match postgres {
            Ok(()) => Ok((vec![Backend::Sqlite, Backend::Postgres], None)),
            Err(why) => Ok((
                vec![Backend::Sqlite],
                Some(format!("note: SQLite only, no PostgreSQL figures in this run: {why}")),
            )),
        },
    }
}

/// `SQLite` or `PostgreSQL`.
pub(super) fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// Panca Lautang, Sidenreng Rappang: 10 villages.
const KECAMATAN: &str = "73.14.01";
/// Households per snapshot pack page (the server's page size).
const PACK_PAGE: usize = 200;
/// zstd level of the floors: the level the sync bodies use.
const ZSTD_LEVEL: i32 = 3;
const KB: u64 = 1024;
/// How long a batch posted at once may take before the bench gives up on it.
const POST_TIMEOUT: Duration = Duration::from_secs(600);

/// One `pilar sync --json` run.
pub(crate) struct SyncRun {
    summary: Value,
    start: Instant,
    end: Instant,
}

impl SyncRun {
    fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }

    fn field(&self, name: &str) -> u64 {
        self.summary[name].as_u64().unwrap_or(0)
    }

    fn round_trips(&self) -> u64 {
        self.field("round_trips")
    }
}

/// A server, the proxy in front of it and an admin device (which talks to the server directly).
pub(crate) struct Campaign {
    backend: Backend,
    pub(crate) server: TestServer,
    proxy: Proxy,
    admin: TestDevice,
    pub(crate) villages: Vec<VillageCode>,
    /// The server's process id, if found in /proc.
    pid: Option<u32>,
}

impl Campaign {
    /// A server on `backend` with the proxy in front, the admin logged in, the kecamatan's villages.
    pub(crate) fn start(backend: Backend) -> Result<Campaign> {
        // Panics (with the server's log) if the server does not come up; waits on its listening line.
        let server = TestServer::start_on(backend, &[], Some(TEST_ADMIN_PASSWORD));
        let proxy = proxy_in_front(&server)?;
        let admin = TestDevice::new();
        login(&admin, server.url(), "admin", TEST_ADMIN_PASSWORD)?;
        let district = DistrictCode::parse(KECAMATAN)?;
        let villages: Vec<VillageCode> = regions().villages_in_district(&district).map(|v| v.code).collect();
        ensure!(!villages.is_empty(), "kecamatan {KECAMATAN} has no villages in the region table");
        let pid = Some(server.pid());
        Ok(Campaign { backend, server, proxy, admin, villages, pid })
    }

    /// An enumerator assigned every village of the kecamatan, logged in through the proxy.
    pub(crate) fn enumerator(&self, name: &str) -> Result<TestDevice> {
        let password = format!("sandi-{name}-bench");
        let out = self.admin.run_with_stdin(
            &["admin", "user", "add", name, "--role", "enumerator", "--password-stdin"],
            &format!("{password}\n"),
        );
        ensure!(out.status.success(), "creating {name} failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut args = vec!["admin".to_string(), "assign".into(), name.into()];
        for v in &self.villages {
            args.extend(["--village".to_string(), v.to_string()]);
        }
        let out = self.admin.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        ensure!(out.status.success(), "assigning {name} failed: {}", String::from_utf8_lossy(&out.stderr));
        let device = TestDevice::new();
        login(&device, &self.proxy.url(), name, &password)?;
        Ok(device)
    }

    /// Run `pilar sync --json` on `device` and measure it at the proxy and in the server's log.
    fn measured_sync(&self, device: &TestDevice) -> Result<Measured> {
        let log_at = self.server.log().len();
        let cpu = self.cpu();
        let mark = self.proxy.mark();
        let run = sync(device.home())?;
        let traffic = self.proxy.since(mark);
        let server_cpu = self.cpu().zip(cpu).map(|(after, before)| after.saturating_sub(before));
        let logged = logged_requests(self.server.log().get(log_at..).unwrap_or_default());
        let server = logged.iter().map(|r| r.latency).sum();
        let server_sync = logged.iter().filter(|r| r.path == "/v1/sync").map(|r| r.latency).sum();
        Ok(Measured { run, traffic, server, server_sync, server_cpu })
    }

    /// The server's bytes on disk now.
    fn disk(&self) -> Result<DiskUse> {
        match self.backend {
            Backend::Sqlite => {
                let dir = self.server.data_dir();
                let mut parts = Vec::new();
                let mut bytes = 0;
                for name in ["server.db", "server.db-wal", "server.db-shm"] {
                    let size = std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
                    bytes += size;
                    parts.push(format!("{name} {}", thousands(size)));
                }
                let mut detail = parts.join(" + ");
                if let Some(tables) = sqlite_tables(&dir.join("server.db")) {
                    detail.push_str(&format!("; in server.db: {tables}"));
                }
                Ok(DiskUse { bytes, detail })
            }
            Backend::Postgres => {
                let rows = self.server.query(
                    "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint,                      pg_database_size(current_database())::bigint                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace                      WHERE c.relkind IN ('r', 'm') AND n.nspname = current_schema()",
                    &[],
                );
                let (Some(Cell::Int(tables)), Some(Cell::Int(database))) =
                    (rows.first().and_then(|r| r.first()), rows.first().and_then(|r| r.get(1)))
                else {
                    return Err(anyhow!("PostgreSQL gave no relation sizes: {rows:?}"));
                };
                let tables = u64::try_from(*tables).unwrap_or(0);
                // The largest tables, each with its indexes and TOAST, and the dead row versions
                // PostgreSQL's statistics count in it (space a vacuum makes reusable).
                let largest: Vec<String> = self
                    .server
                    .query(
                        "SELECT c.relname::text, pg_total_relation_size(c.oid)::bigint,
                                COALESCE(s.n_dead_tup, 0)::bigint, COALESCE(s.n_live_tup, 0)::bigint
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
                         WHERE c.relkind = 'r' AND n.nspname = current_schema()
                         ORDER BY 2 DESC LIMIT 8",
                        &[],
                    )
                    .iter()
                    .filter_map(|r| match (r.first(), r.get(1), r.get(2), r.get(3)) {
                        (
                            Some(Cell::Text(name)),
                            Some(Cell::Int(size)),
                            Some(Cell::Int(dead)),
                            Some(Cell::Int(live)),
                        ) => Some(format!("{name} {} ({live} live, {dead} dead rows)", thousands(*size as u64))),
                        _ => None,
                    })
                    .collect();
                Ok(DiskUse {
                    bytes: tables,
                    detail: format!(
                        "the schema's tables with indexes and TOAST; pg_database_size {} with the catalogs, WAL \
                         not counted; largest: {}",
                        thousands(u64::try_from(*database).unwrap_or(0)),
                        largest.join(", ")
                    ),
                })
            }
        }
    }

    /// CPU time the server has used so far (user + system).
    fn cpu(&self) -> Option<Duration> {
        self.pid.and_then(cpu_time)
    }

    /// On PostgreSQL, the CPU time each of the cluster's processes serving this database (its
    /// backends, and the background processes of no database: WAL writer, checkpointer, …) has
    /// used so far, by pid; `None` on SQLite, which runs inside the server.
    fn database_cpu(&self) -> Option<BTreeMap<u32, Duration>> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let rows = self.server.query(
            "SELECT pid FROM pg_stat_activity WHERE (datname = current_database() OR datname IS NULL) \
             AND pid <> pg_backend_pid()",
            &[],
        );
        let pids = rows.iter().filter_map(|row| match row.first() {
            Some(Cell::Int(pid)) => u32::try_from(*pid).ok(),
            _ => None,
        });
        Some(pids.filter_map(|pid| Some((pid, cpu_time(pid)?))).collect())
    }
}

/// The CPU time PostgreSQL's processes used between two [`Campaign::database_cpu`] snapshots (a
/// process that started in between counts whole; one that ended in between is missed).
fn database_cpu_since(
    before: &Option<BTreeMap<u32, Duration>>,
    after: &Option<BTreeMap<u32, Duration>>,
) -> Option<Duration> {
    let (before, after) = (before.as_ref()?, after.as_ref()?);
    Some(after.iter().map(|(pid, cpu)| cpu.saturating_sub(before.get(pid).copied().unwrap_or_default())).sum())
}

/// A byte-counting proxy in front of `server`.
fn proxy_in_front(server: &TestServer) -> Result<Proxy> {
    let address: SocketAddr = server
        .url()
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("unexpected server URL {}", server.url()))?
        .parse()
        .with_context(|| format!("server address in {}", server.url()))?;
    Proxy::start(address)
}

/// One measured `pilar sync`.
struct Measured {
    run: SyncRun,
    traffic: Traffic,
    /// The server's time on its requests: the sum of their logged latencies.
    server: Duration,
    /// Of `server`, the sync requests' (not the pack pages').
    server_sync: Duration,
    /// CPU time the server used meanwhile.
    server_cpu: Option<Duration>,
}

fn login(device: &TestDevice, url: &str, user: &str, password: &str) -> Result<()> {
    let out = device.run_with_stdin(&["login", "--server", url, "--user", user], &format!("{password}\n"));
    ensure!(out.status.success(), "pilar login as {user} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// `pilar --home HOME sync --json`; an error unless everything was sent and nothing refused.
pub(crate) fn sync(home: &Path) -> Result<SyncRun> {
    let start = Instant::now();
    let out = Command::new(binary("pilar"))
        .arg("--home")
        .arg(home)
        .args(["sync", "--json"])
        .env_remove("PILAR_HOME")
        .env_remove("PILAR_NOW")
        .output()
        .context("cannot run pilar sync")?;
    let end = Instant::now();
    ensure!(out.status.success(), "pilar sync failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("pilar sync --json printed {}", String::from_utf8_lossy(&out.stdout)))?;
    let run = SyncRun { summary, start, end };
    ensure!(run.field("still_unsent") == 0 && run.field("rejected") == 0, "sync left work behind: {}", run.summary);
    Ok(run)
}

fn zstd_size(data: &[u8]) -> Result<u64> {
    Ok(zstd::bulk::compress(data, ZSTD_LEVEL).context("zstd")?.len() as u64)
}

/// A device's outbox before it syncs.
struct Outbox {
    /// The change bytes, concatenated.
    bytes: Vec<u8>,
    /// How many changes.
    count: usize,
    /// The sync request's framing of these changes without the changes: household ids, villages
    /// of new households, cursors, batch id.
    framing: SyncRequest,
}

/// The device's next request, built as `pilar sync` builds it, on a copy of its store (the
/// measured `pilar sync` then builds the same batch itself, as in the field).
fn outbox(home: &Path) -> Result<Outbox> {
    // Building a request records it as the pending batch, which the device's next `pilar sync`
    // would then send as a retry (and follow with a fresh batch): build it on a copy of the store.
    let scratch = tempfile::tempdir()?;
    copy_store(home, scratch.path())?;
    let mut store = DeviceStore::open(scratch.path())?;
    let mut framing =
        sync_core::sync::build_request(&mut store, &[], uuid::Uuid::new_v4(), 5000, time::OffsetDateTime::now_utc())?;
    let mut bytes = Vec::new();
    let mut count = 0;
    for push in &mut framing.push {
        count += push.changes.len();
        for change in push.changes.drain(..) {
            bytes.extend_from_slice(&change);
        }
    }
    Ok(Outbox { bytes, count, framing })
}

/// A device's next batch, encoded as `pilar sync` would send it, and its access token. Building
/// it records the batch as pending, so the device's next `pilar sync` retries this very batch.
fn pending_batch(home: &Path) -> Result<(Vec<u8>, String)> {
    let mut store = DeviceStore::open(home)?;
    let request =
        sync_core::sync::build_request(&mut store, &[], uuid::Uuid::new_v4(), 5000, time::OffsetDateTime::now_utc())?;
    drop(store);
    Ok((encode(&request), access_token(home)?))
}

/// The access token the device in `home` keeps; an error if it expires within a minute (the
/// bench then takes longer than a token lives: sync the device first).
pub(crate) fn access_token(home: &Path) -> Result<String> {
    let store = DeviceStore::open(home)?;
    let (token, expires_at) = store.access_token()?.ok_or_else(|| anyhow!("the device keeps no access token"))?;
    ensure!(
        expires_at > OffsetDateTime::now_utc().unix_timestamp() + 60,
        "the device's access token expires within a minute; sync it to get a fresh one"
    );
    Ok(token)
}

/// Add `n` synthetic households (from `seed`) to the device store in `home`, in-process, spread
/// over `villages` in turn.
pub(crate) fn seed_households(home: &Path, villages: &[VillageCode], n: usize, seed: u64) -> Result<()> {
    ensure!(!villages.is_empty(), "no village to seed households in");
    let mut store = DeviceStore::open(home)?;
    let form = FormDefinition::default_dtsen();
    let now = OffsetDateTime::now_utc();
    let mut generator = Generator::new(seed);
    for i in 0..n {
        let village = &villages[i % villages.len()];
        let h = generator.household(village, i);
        entry::add_household(&mut store, form, village, h.answers, h.members, now)
            .map_err(|e| anyhow!("seeding household {i}: {e:?}"))?;
    }
    Ok(())
}

/// Post one batch when every thread is ready; check that all `m` changes were acknowledged.
fn post_batch(
    base: &str,
    token: &str,
    body: &[u8],
    m: usize,
    start: &std::sync::Barrier,
) -> Result<(Instant, Instant)> {
    // A slow answer is a figure, not a failure: wait far longer than reqwest's default 30 s.
    let client = reqwest::blocking::Client::builder().timeout(POST_TIMEOUT).build()?;
    start.wait();
    let began = Instant::now();
    let response = pilar_tests::sync_http::sync_request(&client, base, token, body.to_vec()).send()?;
    let status = response.status();
    let bytes = response.bytes()?;
    let ended = Instant::now();
    ensure!(status.is_success(), "the server answered {status} to a batch");
    let decoded: sync_core::sync::SyncResponse = sync_core::sync::decode(&bytes, 64 << 20)?;
    ensure!(decoded.acknowledged as usize == m, "the server acknowledged {} of {m} changes", decoded.acknowledged);
    Ok((began, ended))
}

/// Five household answers with valid codes (lighting 1–3, so no electricity check can object).
fn routine_edits(rng: &mut StdRng) -> Edits {
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
    Edits { answers, ..Edits::default() }
}

/// What an edit round wrote, for the information floors of the syncs that move it.
#[derive(Default)]
pub(crate) struct Written {
    /// One [`floor::written_line`] per save action: the fields written and their values.
    pub(crate) fields: Vec<String>,
    /// One [`floor::household_line`] per edited household, after the edit.
    pub(crate) states: Vec<String>,
}

/// Edit `ids` on the device in-process, one save action each.
pub(crate) fn edit(home: &Path, ids: &[HouseholdId], rng: &mut StdRng) -> Result<Written> {
    let mut store = DeviceStore::open(home)?;
    let form = FormDefinition::default_dtsen();
    let now = OffsetDateTime::now_utc();
    let mut written = Written::default();
    for id in ids {
        let edits = routine_edits(rng);
        let saved = entry::save(&mut store, form, *id, "edit", &edits, now)
            .map_err(|e| anyhow!("editing household {id}: {e:?}"))?;
        ensure!(saved.change.is_some(), "editing household {id} changed nothing");
        written.fields.push(floor::written_line(*id, &edits.answers));
        written.states.push(floor::household_line(&store.load(*id)?.household));
    }
    Ok(written)
}

/// One request as the server logged it (`finished processing request`).
#[derive(Debug)]
struct Logged {
    path: String,
    end: OffsetDateTime,
    latency: Duration,
}

/// How many write transactions a piece of the server's log says were run again (PostgreSQL's
/// serialization failures and deadlocks; SQLite's single writer has none).
fn logged_retries(log: &str) -> u64 {
    log.lines().filter(|l| l.contains("a write transaction runs again")).count() as u64
}

/// The requests in a piece of the server's log (tracing's default format, no colours).
fn logged_requests(log: &str) -> Vec<Logged> {
    let mut out = Vec::new();
    for line in log.lines().filter(|l| l.contains("finished processing request")) {
        let Some(end) = line.split_whitespace().next().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
            continue;
        };
        let path = line.split("path=").nth(1).and_then(|r| r.split(['}', ' ']).next()).unwrap_or_default();
        let Some(latency) = line.split("latency=").nth(1) else { continue };
        let mut words = latency.split_whitespace();
        let (Some(number), Some(unit)) = (words.next().and_then(|n| n.parse::<f64>().ok()), words.next()) else {
            continue;
        };
        let seconds = match unit {
            "s" => number,
            "ms" => number / 1e3,
            "μs" | "us" => number / 1e6,
            "ns" => number / 1e9,
            _ => continue,
        };
        out.push(Logged { path: path.to_string(), end, latency: Duration::from_secs_f64(seconds) });
    }
    out
}

/// Total `pushed=` of the server's `sync` lines in a piece of its log.
fn logged_pushed(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(" sync ") && l.contains("pushed="))
        .filter_map(|l| l.split("pushed=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The time the server spent on sync requests: the union of their [start, end] intervals, and the
/// sum of their latencies.
fn server_sync_time(requests: &[Logged]) -> (Duration, Duration, usize) {
    let mut spans: Vec<(OffsetDateTime, OffsetDateTime)> =
        requests.iter().filter(|r| r.path == "/v1/sync").map(|r| (r.end - r.latency, r.end)).collect();
    spans.sort();
    let count = spans.len();
    let sum = requests.iter().filter(|r| r.path == "/v1/sync").map(|r| r.latency).sum();
    let mut union = time::Duration::ZERO;
    let mut current: Option<(OffsetDateTime, OffsetDateTime)> = None;
    for (s, e) in spans {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                union += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        union += ce - cs;
    }
    (Duration::try_from(union).unwrap_or_default(), sum, count)
}

/// The server's PID: our child process running `pilar-server` on this data directory (found in
/// /proc, since the harness keeps the child handle to itself).
/// The pid of the `pilar-server` child of this process serving `data_dir`.
pub(crate) fn server_pid(data_dir: &Path) -> Option<u32> {
    let me = std::process::id();
    let data_dir = data_dir.to_string_lossy().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name in parentheses: state, ppid, ...
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("pilar-server") && cmdline.contains(&data_dir) {
            return Some(pid);
        }
    }
    None
}

/// User + system CPU time of a process (/proc/PID/stat fields 14 and 15, in USER_HZ = 100 ticks/s).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in bytes.
pub(crate) fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// `load average 6.02 4.10 3.55 (1, 5, 15 min) on 2 cores`, from /proc/loadavg (other work on a
/// shared machine slows every figure).
pub(crate) fn load_average() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let three: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("load average {} (1, 5, 15 min) on {cores} cores", three.join(" "))
}

/// `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> =
        digits.as_bytes().rchunks(3).rev().map(|g| std::str::from_utf8(g).unwrap_or_default()).collect();
    groups.join(",")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub(crate) fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "MISSED",
        None => "-",
    }
}

/// The concurrent phase.
struct Concurrent {
    /// The K batches posted at once: bytes, first send to last response, server CPU.
    push_traffic: Traffic,
    push_wall: Duration,
    push_cpu: Option<Duration>,
    /// PostgreSQL's CPU time meanwhile (none on SQLite).
    push_db_cpu: Option<Duration>,
    /// Write transactions the server ran again meanwhile (it logs each).
    push_retries: u64,
    /// Then K `pilar sync` processes at once (each gets its batch's response replayed and applies
    /// it, pulling the others' changes).
    traffic: Traffic,
    runs: Vec<SyncRun>,
    merges: u64,
    /// First process start to last process exit.
    wall: Duration,
    /// Union of the server's sync request intervals, their latency sum, and how many.
    server_union: Duration,
    server_sum: Duration,
    server_requests: usize,
    /// CPU time the server used during the phase.
    server_cpu: Option<Duration>,
}

impl Concurrent {
    /// Server merges per second: K concurrent batches, first send to last response.
    fn push_rate(&self) -> f64 {
        self.merges as f64 / self.push_wall.as_secs_f64().max(1e-9)
    }

    /// Merges per second of wall clock, first process start to last exit.
    fn rate(&self) -> f64 {
        self.merges as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The same K batches posted at once, split round robin across several servers on one PostgreSQL
/// database (each device's next batch, after a catch-up, on households no phase edited before).
struct Several {
    /// Servers, each behind a proxy of its own.
    servers: usize,
    /// Bytes through all proxies.
    traffic: Traffic,
    /// First send to last response.
    wall: Duration,
    merges: u64,
    /// Changes each server logged as pushed.
    per_server: Vec<u64>,
    /// Write transactions the servers ran again meanwhile.
    retries: u64,
    /// CPU time of all servers, and of PostgreSQL, meanwhile.
    server_cpu: Option<Duration>,
    db_cpu: Option<Duration>,
    /// Peak memory (`VmHWM`) of the servers started for this phase, at its end.
    extra_peaks: Vec<u64>,
}

impl Several {
    fn rate(&self) -> f64 {
        self.merges as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Where the routine sync's bytes go, for the first device (push only).
struct RoutineBreakdown {
    /// The request's framing without the changes (household ids, villages, cursors, batch id),
    /// encoded as pilar encodes a request.
    request_framing: u64,
}

/// Everything measured on one backend.
struct Results {
    backend: Backend,
    settings: (usize, usize, usize, u64),
    villages: usize,
    began: OffsetDateTime,
    /// [`load_average`] when the backend's run began.
    load_at_start: String,
    seed: Measured,
    seed_floor: u64,
    first_floor: u64,
    /// The information floor of a first sync: every household's state line ([`floor`]).
    first_information_floor: u64,
    first_rt_limit: u64,
    first: Vec<Measured>,
    /// A fresh device applying the first sync's pack pages, in-process.
    pack_apply: PackApply,
    /// A device holding every household applying a pull: of the changes of every device but the
    /// last (what the last device pulls), then of every routine change.
    pull_apply: Vec<PullApply>,
    /// The server's bytes on disk beside the floor of what it keeps, after the seed upload and at
    /// the end.
    disk: [DiskFigure; 2],
    /// Each device's routine sync with its floors.
    routine: Vec<(Measured, RoutineFloors)>,
    breakdown: RoutineBreakdown,
    idle: Vec<Measured>,
    concurrent: Concurrent,
    /// PostgreSQL only: the concurrent batches across two servers.
    several: Option<Several>,
    /// The server's memory, if its process was found.
    memory: Option<ServerMemory>,
}

/// The floors of one device's routine sync.
struct RoutineFloors {
    /// zstd-3 of the device's own changes.
    push: u64,
    /// zstd-3 of the changes pushed and pulled (the devices before it pushed them).
    full: u64,
    /// Information floor of the fields the device's save actions wrote ([`floor::written_line`]).
    push_information: u64,
    /// Information floor of the fields written by this device and the devices before it.
    full_information: u64,
    /// Not a floor, a comparison: zstd-19 of the state lines of every household that changed.
    full_state_lines: u64,
}

/// Target of issue 15: the server's peak memory (VmHWM), bytes (100 MB).
pub(crate) const MEMORY_TARGET: u64 = 100_000_000;
/// Target of issue 15: the server's bytes on disk ÷ the floor of what it keeps.
const DISK_TARGET: f64 = 1.5;
/// Target of issue 15: first-sync bytes ÷ the information floor.
const FIRST_INFORMATION_TARGET: f64 = 1.2;

/// The server's bytes on disk.
struct DiskUse {
    /// SQLite: the database file, its WAL and shared-memory files; PostgreSQL: every table of the
    /// server's schema with its indexes and TOAST (`pg_total_relation_size`).
    bytes: u64,
    /// What `bytes` is made of, for the printout.
    detail: String,
}

/// Where a SQLite database's pages go: the largest tables and indexes with their bytes (SQLite's
/// `dbstat`, read-only beside the running server), or `None` if it cannot be read.
fn sqlite_tables(path: &Path) -> Option<String> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let mut statement = conn
        .prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC LIMIT 10")
        .ok()?;
    let rows = statement
        .query_map([], |row| Ok(format!("{} {}", row.get::<_, String>(0)?, thousands(row.get::<_, i64>(1)? as u64))))
        .ok()?;
    Some(rows.collect::<Result<Vec<_>, _>>().ok()?.join(", "))
}

/// The server's bytes on disk at one moment, beside the floor of what it keeps then.
struct DiskFigure {
    when: &'static str,
    disk: DiskUse,
    /// zstd-3 of every document's `save()` plus zstd-3 of every change in the feed.
    floor: u64,
}

/// What the server must keep, from a device holding all of it.
struct KeptFloor {
    /// zstd-3 of every document's `save()` (one stream) plus zstd-3 of every change (another).
    floor: u64,
    /// Changes in all documents: every change the feed holds.
    changes: usize,
}

/// The floor of what a server must keep, computed from the device store in `home` that holds every
/// household and every change (the feed holds each change of each document once; this bench
/// writes no change on the server). Level 3, not 19: a server compresses as it writes, at a level
/// it can afford on every sync, and 3 is the level the sync bodies use.
fn kept_floor(home: &Path) -> Result<KeptFloor> {
    let store = DeviceStore::open(home)?;
    let (mut documents, mut changes, mut count) = (Vec::new(), Vec::new(), 0);
    for (id, _) in store.household_villages()? {
        let household = store.load(id)?.household;
        documents.extend(household.save());
        for change in household.changes_since(&[]) {
            changes.extend(change);
            count += 1;
        }
    }
    Ok(KeptFloor { floor: zstd_size(&documents)? + zstd_size(&changes)?, changes: count })
}

/// The server's memory use.
struct ServerMemory {
    pid: u32,
    /// VmHWM (peak resident set) at the end, bytes.
    peak: u64,
    /// VmRSS at the end, bytes.
    rss: u64,
    /// VmHWM after each phase.
    steps: Vec<(String, u64)>,
}

/// Run the whole benchmark on each chosen backend, print each one's tables, then their figures
/// side by side.
pub fn run(settings: &Settings) -> Result<()> {
    let (backends, note) = backends(settings.database)?;
    if let Some(note) = &note {
        eprintln!("{note}");
    }
    let mut all = Vec::with_capacity(backends.len());
    for backend in backends {
        let results = run_on(settings, backend)?;
        print(&results);
        println!();
        all.push(results);
    }
    print_side_by_side(&all, note.as_deref());
    Ok(())
}

/// Run the whole benchmark on one backend (a server of its own, dropped at the end).
fn run_on(settings: &Settings, backend: Backend) -> Result<Results> {
    let Settings { households: n, devices: k, edits: m, seed, .. } = *settings;
    ensure!(n > 0 && k > 0 && m > 0 && m <= n, "need households > 0, devices > 0 and 0 < edits ≤ households");
    let began = OffsetDateTime::now_utc();
    let load_at_start = load_average();
    let campaign = Campaign::start(backend)?;
    let pid = campaign.pid;
    let mut peaks: Vec<(String, u64)> = Vec::new();
    let mut note_peak = |label: &str| {
        if let Some((hwm, _)) = pid.and_then(memory) {
            peaks.push((label.to_string(), hwm));
        }
    };
    note_peak("after start");
    eprintln!(
        "pilar-bench sync on {}: server {} behind proxy {}; seeding {n} households",
        backend_name(backend),
        campaign.server.url(),
        campaign.proxy.url()
    );

    // --- Seed: one enumerator adds N households in-process, then uploads them with `pilar sync`.
    let seeder = campaign.enumerator("bench.seeder")?;
    seed_households(seeder.home(), &campaign.villages, n, seed)?;
    let seed_outbox = outbox(seeder.home())?;
    ensure!(seed_outbox.count == n, "the seeder's outbox holds {} changes, not {n}", seed_outbox.count);
    let seed_floor = zstd_size(&seed_outbox.bytes)?;
    let seeded = campaign.measured_sync(&seeder)?;
    ensure!(seeded.run.field("changes_sent") == n as u64, "seed upload sent {}", seeded.run.summary);
    note_peak("after seed upload");
    let disk_after_seed = campaign.disk()?;

    // The first-sync floor: every document's save(), as the seeder holds them, compressed together.
    let store = DeviceStore::open(seeder.home())?;
    let ids = store.household_villages()?;
    ensure!(ids.len() == n, "the seeder holds {} households, not {n}", ids.len());
    let mut documents = Vec::new();
    let mut lines = Vec::with_capacity(n);
    let mut per_village: BTreeMap<String, usize> = campaign.villages.iter().map(|v| (v.to_string(), 0)).collect();
    for (id, village) in &ids {
        let household = store.load(*id)?.household;
        documents.extend(household.save());
        lines.push(floor::household_line(&household));
        *per_village.entry(village.clone()).or_default() += 1;
    }
    drop(store);
    let first_floor = zstd_size(&documents)?;
    let first_information_floor = floor::information_floor(&lines)?;
    drop((documents, lines));
    let pack_pages: u64 = per_village.values().map(|&c| c.div_ceil(PACK_PAGE).max(1) as u64).sum();
    let ids: Vec<HouseholdId> = ids.into_iter().map(|(id, _)| id).collect();

    // --- K devices: first sync, one after another.
    eprintln!("creating {k} devices; first sync of each");
    let mut devices = Vec::with_capacity(k);
    for d in 1..=k {
        devices.push(campaign.enumerator(&format!("bench.enum{d:02}"))?);
    }
    let mut first = Vec::with_capacity(k);
    for device in &devices {
        let measured = campaign.measured_sync(device)?;
        ensure!(
            measured.run.field("households_from_packs") == n as u64,
            "first sync received {}",
            measured.run.summary
        );
        first.push(measured);
    }
    note_peak("after first syncs");

    // --- A fresh device's apply, in-process: the pack pages fetched once (from the server, not
    // through the proxy), then applied to a new store per run.
    eprintln!("timing a fresh device's apply of the pack pages ({} runs)", apply::RUNS);
    let token = access_token(seeder.home())?;
    let village_codes: Vec<String> = campaign.villages.iter().map(ToString::to_string).collect();
    let pages = apply::fetch_pack_pages(campaign.server.url(), &token, &village_codes)?;
    let pack_apply = apply::time_pack_apply(&pages, &village_codes, apply::RUNS)?;
    drop(pages);
    ensure!(pack_apply.households == n, "the pack pages held {} households, not {n}", pack_apply.households);

    // --- Routine: every device edits M households offline, then they sync one after another.
    eprintln!("routine sync: {k} devices edit {m} households each, then sync one after another");
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_ed17);
    let mut outboxes = Vec::with_capacity(k);
    let mut written = Vec::with_capacity(k);
    for (d, device) in devices.iter().enumerate() {
        let mine: Vec<HouseholdId> = (0..m).map(|j| ids[(d * m + j) % n]).collect();
        written.push(edit(device.home(), &mine, &mut rng)?);
        let o = outbox(device.home())?;
        ensure!(o.count == m, "device {} has {} changes to send, not {m}", d + 1, o.count);
        outboxes.push(o);
    }
    let breakdown = match outboxes.first() {
        Some(o) => RoutineBreakdown { request_framing: encode(&o.framing).len() as u64 },
        None => RoutineBreakdown { request_framing: 0 },
    };
    let mut routine = Vec::with_capacity(k);
    let mut moved: Vec<u8> = Vec::new();
    let (mut moved_fields, mut moved_states): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    // The fresh device's store (every household, cursors at the seed) pulls, as the seeder (who
    // wrote none of the edits), what the devices before the last one pushed, and then everything.
    let mut pull_before_last = None;
    for (d, ((device, o), w)) in devices.iter().zip(&outboxes).zip(&written).enumerate() {
        if d + 1 == k && k > 1 {
            pull_before_last = Some(apply::fetch_pull(pack_apply.device.path(), campaign.server.url(), &token)?);
        }
        // What had to move: this device's changes up, and those of the devices before it down.
        moved.extend_from_slice(&o.bytes);
        moved_fields.extend(w.fields.iter().map(String::as_str));
        moved_states.extend(w.states.iter().map(String::as_str));
        let floors = RoutineFloors {
            push: zstd_size(&o.bytes)?,
            full: zstd_size(&moved)?,
            push_information: floor::information_floor(&w.fields)?,
            full_information: floor::information_floor(&moved_fields)?,
            full_state_lines: floor::information_floor(&moved_states)?,
        };
        let measured = campaign.measured_sync(device)?;
        ensure!(measured.run.field("changes_sent") == m as u64, "routine sync sent {}", measured.run.summary);
        routine.push((measured, floors));
    }
    let pull_all = apply::fetch_pull(pack_apply.device.path(), campaign.server.url(), &token)?;
    eprintln!("timing a device's apply of pulled changes ({} runs each)", apply::RUNS);
    let mut pull_apply = Vec::new();
    for pull in pull_before_last.iter().chain([&pull_all]) {
        pull_apply.push(apply::time_pull_apply(pack_apply.device.path(), pull, apply::RUNS)?);
    }
    drop((pull_before_last, pull_all));
    let expected: Vec<usize> = if k > 1 { vec![(k - 1) * m, k * m] } else { vec![m] };
    let pulled: Vec<usize> = pull_apply.iter().map(|p| p.changes).collect();
    ensure!(pulled == expected, "the timed pulls brought {pulled:?} changes, not {expected:?}");
    // Catch up (not measured), so that every device has everything before the idle sync.
    for device in &devices {
        sync(device.home())?;
    }

    // --- Idle: nothing to send, nothing to receive.
    let mut idle = Vec::with_capacity(k);
    for device in &devices {
        let measured = campaign.measured_sync(device)?;
        let summary = &measured.run.summary;
        ensure!(
            measured.run.field("changes_sent") == 0 && measured.run.field("changes_received") == 0,
            "the idle sync moved changes: {summary}"
        );
        idle.push(measured);
    }
    note_peak("after routine and idle syncs");

    // --- Concurrent: every device edits M other households, then all K sync at once.
    eprintln!("concurrent sync: {k} devices at once, {m} edited households each");
    for (d, device) in devices.iter().enumerate() {
        let mine: Vec<HouseholdId> = (0..m).map(|j| ids[(k * m + d * m + j) % n]).collect();
        edit(device.home(), &mine, &mut rng)?;
    }
    // First the server alone: each device's batch, built as `pilar sync` builds it, is posted by
    // one thread per device, all at once, so the figure is the server's and not the ten client
    // processes' (which on two cores take most of the CPU). Then each device runs `pilar sync`,
    // which gets its batch's stored response replayed and applies it.
    let log_at = campaign.server.log().len();
    let cpu = campaign.cpu();
    let db_cpu = campaign.database_cpu();
    let mark = campaign.proxy.mark();
    let base = campaign.proxy.url();
    let batches: Vec<(Vec<u8>, String)> = devices.iter().map(|d| pending_batch(d.home())).collect::<Result<_>>()?;
    let posts = post_at_once(&batches, &[base.as_str()], m)?;
    let push_traffic = campaign.proxy.since(mark);
    let push_cpu = campaign.cpu().zip(cpu).map(|(after, before)| after.saturating_sub(before));
    let push_db_cpu = database_cpu_since(&db_cpu, &campaign.database_cpu());
    let push_wall = span(&posts);
    let push_log = campaign.server.log().get(log_at..).unwrap_or_default().to_string();
    let merges = (k * m) as u64;
    let pushed = logged_pushed(&push_log);
    ensure!(pushed == merges, "the server logged {pushed} pushed changes, not {merges}");
    let push_retries = logged_retries(&push_log);

    let log_at = campaign.server.log().len();
    let cpu = campaign.cpu();
    let mark = campaign.proxy.mark();
    let runs = sync_at_once(&devices);
    let traffic = campaign.proxy.since(mark);
    let server_cpu = campaign.cpu().zip(cpu).map(|(after, before)| after.saturating_sub(before));
    let runs: Vec<SyncRun> = runs?;
    let log = campaign.server.log().get(log_at..).unwrap_or_default().to_string();
    let first_start = runs.iter().map(|r| r.start).min().unwrap_or_else(Instant::now);
    let last_end = runs.iter().map(|r| r.end).max().unwrap_or(first_start);
    let (server_union, server_sum, server_requests) = server_sync_time(&logged_requests(&log));
    note_peak("after concurrent syncs");

    // --- Several servers (PostgreSQL): the next K batches split across two servers.
    let several = if backend == Backend::Postgres && k >= 2 {
        let edited: Vec<Vec<HouseholdId>> =
            (0..k).map(|d| (0..m).map(|j| ids[(2 * k * m + d * m + j) % n]).collect()).collect();
        let several = several_servers(&campaign, &devices, &edited, &mut rng, m)?;
        note_peak("after the two-server phase");
        Some(several)
    } else {
        None
    };
    let memory = pid.and_then(|pid| memory(pid).map(|(peak, rss)| ServerMemory { pid, peak, rss, steps: peaks }));

    // --- What the server keeps, beside its floor: the seeder catches up (not measured) and then
    // holds every document and every change the feed holds.
    let disk_at_end = campaign.disk()?;
    sync(seeder.home())?;
    let kept = kept_floor(seeder.home())?;
    let edits_pushed = k * m * if several.is_some() { 3 } else { 2 };
    ensure!(
        kept.changes == n + edits_pushed,
        "the caught-up seeder holds {} changes, not the {} the server admitted",
        kept.changes,
        n + edits_pushed
    );

    Ok(Results {
        backend,
        settings: (n, k, m, seed),
        villages: campaign.villages.len(),
        began,
        load_at_start,
        seed: seeded,
        seed_floor,
        first_floor,
        first_information_floor,
        pack_apply,
        pull_apply,
        disk: [
            DiskFigure { when: "after the seed upload", disk: disk_after_seed, floor: first_floor + seed_floor },
            DiskFigure { when: "at the end", disk: disk_at_end, floor: kept.floor },
        ],
        first_rt_limit: pack_pages + 2,
        first,
        routine,
        breakdown,
        idle,
        concurrent: Concurrent {
            push_traffic,
            push_wall,
            push_cpu,
            push_db_cpu,
            push_retries,
            traffic,
            runs,
            merges,
            wall: last_end - first_start,
            server_union,
            server_sum,
            server_requests,
            server_cpu,
        },
        several,
        memory,
    })
}

/// Post each batch (body, access token) from a thread of its own, all released at once; batch
/// `i` goes to `bases[i % bases.len()]`. Returns each post's send and answer instants.
fn post_at_once(batches: &[(Vec<u8>, String)], bases: &[&str], m: usize) -> Result<Vec<(Instant, Instant)>> {
    ensure!(!bases.is_empty(), "no server to post to");
    let start = std::sync::Barrier::new(batches.len());
    let posts: Vec<Result<(Instant, Instant)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .iter()
            .enumerate()
            .map(|(i, (body, token))| {
                let (start, base) = (&start, bases[i % bases.len()]);
                scope.spawn(move || post_batch(base, token, body, m, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a push thread panicked")))).collect()
    });
    posts.into_iter().collect()
}

/// First send to last answer.
fn span(posts: &[(Instant, Instant)]) -> Duration {
    let first = posts.iter().map(|p| p.0).min();
    let last = posts.iter().map(|p| p.1).max();
    last.zip(first).map(|(e, s)| e - s).unwrap_or_default()
}

/// `pilar sync` on every device at once.
fn sync_at_once(devices: &[TestDevice]) -> Result<Vec<SyncRun>> {
    let runs: Vec<Result<SyncRun>> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices.iter().map(|d| scope.spawn(move || sync(d.home()))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a sync thread panicked")))).collect()
    });
    runs.into_iter().collect()
}

/// Start a second server on the campaign's PostgreSQL database (a proxy of its own in front),
/// let every device catch up, edit `edited[d]` on device `d`, then post the K batches at once,
/// round robin across the two servers. Afterwards (not measured) every device syncs through the
/// first server, which replays the stored response of a batch the second one merged.
fn several_servers(
    campaign: &Campaign,
    devices: &[TestDevice],
    edited: &[Vec<HouseholdId>],
    rng: &mut StdRng,
    m: usize,
) -> Result<Several> {
    let k = devices.len();
    eprintln!("several servers: a second pilar-server on the same database; {k} batches of {m} split across both");
    let second = campaign.server.another_on_the_same_database();
    let second_proxy = proxy_in_front(&second)?;
    for device in devices {
        sync(device.home())?;
    }
    for (device, ids) in devices.iter().zip(edited) {
        edit(device.home(), ids, rng)?;
    }
    let servers = [&campaign.server, &second];
    let proxies = [&campaign.proxy, &second_proxy];
    let pids = [campaign.server.pid(), second.pid()];
    let cpu = |pids: &[u32]| pids.iter().map(|&pid| cpu_time(pid)).sum::<Option<Duration>>();
    let batches: Vec<(Vec<u8>, String)> = devices.iter().map(|d| pending_batch(d.home())).collect::<Result<_>>()?;
    let log_at: Vec<usize> = servers.iter().map(|s| s.log().len()).collect();
    let marks: Vec<_> = proxies.iter().map(|p| p.mark()).collect();
    let cpu_before = cpu(&pids);
    let db_before = campaign.database_cpu();
    let bases: Vec<String> = proxies.iter().map(|p| p.url()).collect();
    let posts = post_at_once(&batches, &bases.iter().map(String::as_str).collect::<Vec<_>>(), m)?;
    let wall = span(&posts);
    let server_cpu = cpu(&pids).zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let db_cpu = database_cpu_since(&db_before, &campaign.database_cpu());
    let mut traffic = Traffic::default();
    for (proxy, mark) in proxies.iter().zip(marks) {
        let t = proxy.since(mark);
        traffic.up += t.up;
        traffic.down += t.down;
        traffic.connections += t.connections;
        traffic.exchanges.extend(t.exchanges);
    }
    let logs: Vec<String> =
        servers.iter().zip(&log_at).map(|(s, &at)| s.log().get(at..).unwrap_or_default().to_string()).collect();
    let per_server: Vec<u64> = logs.iter().map(|log| logged_pushed(log)).collect();
    let retries = logs.iter().map(|log| logged_retries(log)).sum();
    let merges = (k * m) as u64;
    ensure!(
        per_server.iter().sum::<u64>() == merges,
        "the servers logged {per_server:?} pushed changes, not {merges} in all"
    );
    // Every batch's answer is remembered in the database: the devices sync through the first
    // server, which replays what the second answered.
    sync_at_once(devices)?;
    let extra_peaks = memory(second.pid()).map(|(peak, _)| vec![peak]).unwrap_or_default();
    Ok(Several { servers: servers.len(), traffic, wall, merges, per_server, retries, server_cpu, db_cpu, extra_peaks })
}

/// `1.23`, or `?` when unknown.
fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64())).unwrap_or_else(|| "?".into())
}

fn ratio(bytes: u64, floor: u64) -> f64 {
    bytes as f64 / floor.max(1) as f64
}

/// Print the per-device tables, the summary table and the notes.
fn print(r: &Results) {
    let (n, k, m, seed) = r.settings;
    println!(
        "pilar-bench sync on {}: {n} households (seed {seed}) in {} villages of kecamatan {KECAMATAN}, {k} devices, {m} \
         edits each",
        backend_name(r.backend),
        r.villages
    );
    println!("run started {}; {}", r.began.format(&Rfc3339).unwrap_or_default(), r.load_at_start);
    println!(
        "bytes: counted at a TCP proxy on 127.0.0.1 in both directions, HTTP framing included; requests: HTTP request \
         heads parsed at the proxy (Content-Length/chunked framing); rt: `round_trips` from `pilar sync --json` (pack \
         pages + sync POSTs); server s: sum of the server's logged latencies for the process's requests; srv cpu: the \
         server's user+system CPU time meanwhile"
    );
    println!();
    println!(
        "first sync, per device (floor {} B = zstd-{ZSTD_LEVEL} of all {n} documents' save() concatenated; information \
         floor {} B = zstd-{} of every household's current state as newline-delimited JSON, no history):",
        thousands(r.first_floor),
        thousands(r.first_information_floor),
        floor::INFORMATION_LEVEL
    );
    println!(
        "{:>6} {:>10} {:>12} {:>7} {:>7} {:>4} {:>4} {:>7} {:>8} {:>7}  requests",
        "device", "up", "down", "×floor", "×info", "rt", "conn", "s", "server s", "srv cpu"
    );
    for (d, x) in r.first.iter().enumerate() {
        println!(
            "{:>6} {:>10} {:>12} {:>7.3} {:>7.3} {:>4} {:>4} {:>7.2} {:>8.3} {:>7}  {}",
            d + 1,
            thousands(x.traffic.up),
            thousands(x.traffic.down),
            ratio(x.traffic.total(), r.first_floor),
            ratio(x.traffic.total(), r.first_information_floor),
            x.run.round_trips(),
            x.traffic.connections,
            x.run.seconds(),
            x.server.as_secs_f64(),
            secs(x.server_cpu),
            x.traffic.requests_text()
        );
    }
    println!();
    println!(
        "routine sync after {m} edits per device, in sync order (device d also pulls the changes of devices 1..d-1; \
         full floor = zstd-{ZSTD_LEVEL} of the changes pushed and pulled; info = information floor, zstd-{} of the \
         fields those save actions wrote, one NDJSON line per save: household id, field, value; state lines = zstd-{} \
         of the whole state lines of the households they changed, for comparison):",
        floor::INFORMATION_LEVEL,
        floor::INFORMATION_LEVEL
    );
    println!(
        "{:>6} {:>8} {:>8} {:>10} {:>10} {:>7} {:>9} {:>9} {:>7} {:>11} {:>4} {:>6} {:>8} {:>7}  requests",
        "device",
        "up",
        "down",
        "push floor",
        "full floor",
        "×full",
        "push info",
        "full info",
        "×info",
        "state lines",
        "rt",
        "s",
        "server s",
        "srv cpu"
    );
    for (d, (x, f)) in r.routine.iter().enumerate() {
        println!(
            "{:>6} {:>8} {:>8} {:>10} {:>10} {:>7.3} {:>9} {:>9} {:>7.3} {:>11} {:>4} {:>6.2} {:>8.3} {:>7}  {}",
            d + 1,
            thousands(x.traffic.up),
            thousands(x.traffic.down),
            thousands(f.push),
            thousands(f.full),
            ratio(x.traffic.total(), f.full),
            thousands(f.push_information),
            thousands(f.full_information),
            ratio(x.traffic.total(), f.full_information),
            thousands(f.full_state_lines),
            x.run.round_trips(),
            x.run.seconds(),
            x.server.as_secs_f64(),
            secs(x.server_cpu),
            x.traffic.requests_text()
        );
    }
    println!();
    println!("idle sync, per device:");
    println!(
        "{:>6} {:>5} {:>5} {:>6} {:>4} {:>6} {:>8} {:>7}  requests",
        "device", "up", "down", "total", "rt", "s", "server s", "srv cpu"
    );
    for (d, x) in r.idle.iter().enumerate() {
        println!(
            "{:>6} {:>5} {:>5} {:>6} {:>4} {:>6.3} {:>8.3} {:>7}  {}",
            d + 1,
            x.traffic.up,
            x.traffic.down,
            x.traffic.total(),
            x.run.round_trips(),
            x.run.seconds(),
            x.server.as_secs_f64(),
            secs(x.server_cpu),
            x.traffic.requests_text()
        );
    }

    let rows = summary_rows(r);
    println!();
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>6} {:>17} {:>3} {:>6} {:>6}  requests",
        "phase", "up", "down", "total", "floor", "×floor", "info", "×info", "target", "rt", "s", "result"
    );
    for row in &rows {
        println!(
            "{:<40} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>6} {:>17} {:>3} {:>6.2} {:>6}  {}",
            row.phase,
            thousands(row.traffic.up),
            thousands(row.traffic.down),
            thousands(row.traffic.total()),
            row.floor.map(thousands).unwrap_or_else(|| "-".into()),
            row.floor.map(|f| format!("{:.3}", ratio(row.traffic.total(), f))).unwrap_or_else(|| "-".into()),
            row.information_floor.map(thousands).unwrap_or_else(|| "-".into()),
            row.information_floor
                .map(|f| format!("{:.3}", ratio(row.traffic.total(), f)))
                .unwrap_or_else(|| "-".into()),
            row.target,
            row.round_trips,
            row.seconds,
            verdict(row.pass),
            row.traffic.requests_text()
        );
    }
    println!();
    let seed = &r.seed;
    println!(
        "seed upload: {n} new households in {:.2} s wall = {:.0} merges/s (process start and the empty pack pages \
         included); the server's time on the upload's sync request {:.3} s = {:.0} merges/s; server CPU {} s",
        seed.run.seconds(),
        n as f64 / seed.run.seconds(),
        seed.server_sync.as_secs_f64(),
        n as f64 / seed.server_sync.as_secs_f64().max(1e-9),
        secs(seed.server_cpu),
    );
    if let Some((x, RoutineFloors { push: push_floor, .. })) = r.routine.first() {
        let (up_head, down_head) = x.traffic.heads();
        let b = &r.breakdown;
        println!(
            "routine push, device 1: up {} B = HTTP head {up_head} + body {} (changes' floor {}; ids, villages, \
             cursors and batch id alone encode to {}); down {} B = HTTP head {down_head} + body {}",
            thousands(x.traffic.up),
            thousands(x.traffic.up - up_head),
            thousands(*push_floor),
            thousands(b.request_framing),
            thousands(x.traffic.down),
            thousands(x.traffic.down - down_head),
        );
    }
    if let Some(x) = r.idle.iter().max_by_key(|x| x.traffic.total()) {
        let (up_head, down_head) = x.traffic.heads();
        println!(
            "idle sync: {} B = HTTP heads {} (up {up_head}, down {down_head}) + bodies {}; token refresh requests: {}",
            x.traffic.total(),
            up_head + down_head,
            x.traffic.total() - up_head - down_head,
            x.traffic.count("refresh")
        );
    }
    let routine_server: Duration = r.routine.iter().map(|(x, _)| x.server_sync).sum();
    println!(
        "routine, one device at a time: {} merges in {:.3} s of the server's sync request time = {:.0} merges/s \
         server-side without contention (pulls included)",
        r.routine.len() * m,
        routine_server.as_secs_f64(),
        (r.routine.len() * m) as f64 / routine_server.as_secs_f64().max(1e-9)
    );
    let c = &r.concurrent;
    println!(
        "server merges: {k} batches of {m} posted at once: {} merges in {:.3} s, first send to last response = {:.0} \
         merges/s (target ≥ 1,000: {}); {} B up, {} B down; server CPU {} s{}; write transactions run again {}",
        c.merges,
        c.push_wall.as_secs_f64(),
        c.push_rate(),
        verdict(Some(c.push_rate() >= 1000.0)),
        thousands(c.push_traffic.up),
        thousands(c.push_traffic.down),
        secs(c.push_cpu),
        database_cpu_text(c.push_db_cpu, c.push_cpu, c.push_wall),
        c.push_retries,
    );
    if let Some(x) = &r.several {
        println!(
            "several servers: {k} batches of {m} posted at once, round robin across {} servers on one database \
             (merged {}): {} merges in {:.3} s = {:.0} merges/s (one server: {:.0}/s); {} B up, {} B down; servers' \
             CPU {} s{}; write transactions run again {}",
            x.servers,
            x.per_server.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" + "),
            x.merges,
            x.wall.as_secs_f64(),
            x.rate(),
            c.push_rate(),
            thousands(x.traffic.up),
            thousands(x.traffic.down),
            secs(x.server_cpu),
            database_cpu_text(x.db_cpu, x.server_cpu, x.wall),
            x.retries,
        );
    }
    println!(
        "then {k} `pilar sync` processes at once (replayed responses applied, colleagues' changes pulled): {:.2} s \
         wall, first process start to last exit ({:.0} merges/s as seen by the devices); the server's {} sync \
         requests spanned {:.3} s (union of their logged intervals; latency sum {:.3} s); server CPU {} s; seconds \
         per device process: {}",
        c.wall.as_secs_f64(),
        c.rate(),
        c.server_requests,
        c.server_union.as_secs_f64(),
        c.server_sum.as_secs_f64(),
        secs(c.server_cpu),
        c.runs.iter().map(|x| format!("{:.2}", x.seconds())).collect::<Vec<_>>().join(" ")
    );
    match &r.memory {
        Some(ServerMemory { pid, peak, rss, steps }) => {
            let steps: Vec<String> = steps.iter().map(|(label, b)| format!("{label} {}", mib(*b))).collect();
            println!(
                "server (pid {pid}) peak memory: VmHWM {} (VmRSS at the end {}); VmHWM {}",
                mib(*peak),
                mib(*rss),
                steps.join(", ")
            );
        }
        None => println!("server peak memory: the server's process was not found in /proc"),
    }
    if let Some(x) = &r.several {
        let peaks: Vec<String> = x.extra_peaks.iter().map(|b| mib(*b)).collect();
        println!("the second server's peak memory: VmHWM {}", peaks.join(", "));
    }
    if r.backend == Backend::Postgres {
        println!(
            "(the server's memory only: PostgreSQL's own processes, a throwaway cluster with fsync off, are not counted)"
        );
    }
    println!();
    let p = &r.pack_apply;
    println!(
        "fresh device, in-process: {} households in {} pack pages through apply_pack in {} = {:.0} households/s \
         (fetched once over HTTP, then each run into a new store; `pilar sync` as a whole process took {} s for the \
         first device)",
        thousands(p.households as u64),
        p.pages,
        apply::runs_text(p.median(), &p.runs, &p.cpu),
        p.rate(),
        r.first.first().map(|x| format!("{:.2}", x.run.seconds())).unwrap_or_else(|| "?".into()),
    );
    for pull in &r.pull_apply {
        println!(
            "device holding all {n} households, in-process: a response pulling {} changes in {} households through \
             apply_response in {} = {:.0} changes/s (each run on a fresh copy of the store)",
            thousands(pull.changes as u64),
            thousands(pull.households as u64),
            apply::runs_text(pull.median(), &pull.runs, &pull.cpu),
            pull.rate()
        );
    }
    for d in &r.disk {
        println!(
            "server on disk {}: {} B ({}) beside its floor {} B (zstd-{ZSTD_LEVEL} of every document's save() plus \
             zstd-{ZSTD_LEVEL} of every change in the feed) = {:.2}×",
            d.when,
            thousands(d.disk.bytes),
            d.disk.detail,
            thousands(d.floor),
            ratio(d.disk.bytes, d.floor)
        );
    }
    let missed: Vec<&str> = rows.iter().filter(|row| row.pass == Some(false)).map(|row| row.phase.as_str()).collect();
    if missed.is_empty() {
        println!("all targets met");
    } else {
        println!("targets MISSED: {}", missed.join("; "));
    }
    println!();
    println!("issue 15 targets (printed, never the exit code):");
    let goals = issue15_goals(r);
    for goal in &goals {
        println!("{:<58} {:>44}  target {:<10} {}", goal.key, goal.value, goal.target, verdict(goal.pass));
    }
    let missed: Vec<&str> = goals.iter().filter(|g| g.pass == Some(false)).map(|g| g.key.as_str()).collect();
    if missed.is_empty() {
        println!("issue 15: all targets met");
    } else {
        println!("issue 15: targets MISSED: {}", missed.join("; "));
    }
}

/// One figure of issue 15 beside its target.
struct Goal {
    /// The figure, the same on every backend (the side-by-side table matches goals by it).
    key: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

/// The figures issue 15 sets targets for, measured in this run.
fn issue15_goals(r: &Results) -> Vec<Goal> {
    let (_, k, _, _) = r.settings;
    let mut goals = Vec::new();
    let information = r.first_information_floor;
    let mut first = |key: String, x: &Measured| {
        let times = ratio(x.traffic.total(), information);
        goals.push(Goal {
            key,
            value: format!("{times:.2} ({} B)", thousands(x.traffic.total())),
            target: format!("≤ {FIRST_INFORMATION_TARGET}"),
            pass: Some(times <= FIRST_INFORMATION_TARGET),
        });
    };
    if let Some(x) = r.first.first() {
        first("first sync bytes ÷ information floor, device 1".into(), x);
    }
    if let Some(x) = r.first.iter().max_by_key(|x| x.traffic.total()) {
        first(format!("first sync bytes ÷ information floor, largest of {k}"), x);
    }
    let p = &r.pack_apply;
    goals.push(Goal {
        key: "first sync: households/s applied on a fresh device".into(),
        value: format!(
            "{}/s ({:.3} s; {}/s of CPU)",
            thousands(p.rate().round() as u64),
            p.median().as_secs_f64(),
            thousands(p.cpu_rate().round() as u64)
        ),
        target: format!("≥ {}", thousands(apply::PACK_TARGET as u64)),
        pass: Some(p.rate() >= apply::PACK_TARGET),
    });
    for pull in &r.pull_apply {
        goals.push(Goal {
            key: format!("pulled changes applied/s ({} changes)", thousands(pull.changes as u64)),
            value: format!(
                "{}/s ({:.3} s; {}/s of CPU)",
                thousands(pull.rate().round() as u64),
                pull.median().as_secs_f64(),
                thousands(pull.cpu_rate().round() as u64)
            ),
            target: format!("≥ {}", thousands(apply::PULL_TARGET as u64)),
            pass: Some(pull.rate() >= apply::PULL_TARGET),
        });
    }
    goals.push(Goal {
        key: "server peak memory (VmHWM), whole sync run".into(),
        value: r.memory.as_ref().map(|m| mib(m.peak)).unwrap_or_else(|| "?".into()),
        target: "≤ 100 MB".into(),
        pass: r.memory.as_ref().map(|m| m.peak <= MEMORY_TARGET),
    });
    for d in &r.disk {
        goals.push(Goal {
            key: format!("server disk ÷ its floor, {}", d.when),
            value: format!("{:.2} ({} B)", ratio(d.disk.bytes, d.floor), thousands(d.disk.bytes)),
            target: format!("≤ {DISK_TARGET}"),
            pass: Some(ratio(d.disk.bytes, d.floor) <= DISK_TARGET),
        });
    }
    goals
}

/// `; PostgreSQL CPU 0.80 s (servers and PostgreSQL together 1.7 of 2 cores)`, or nothing on
/// SQLite.
fn database_cpu_text(db: Option<Duration>, servers: Option<Duration>, wall: Duration) -> String {
    let Some(db) = db else { return String::new() };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let busy = servers.map(|s| (s + db).as_secs_f64() / wall.as_secs_f64().max(1e-9));
    format!(
        "; PostgreSQL CPU {:.2} s (servers and PostgreSQL together {} of {cores} cores)",
        db.as_secs_f64(),
        busy.map(|b| format!("{b:.2}")).unwrap_or_else(|| "?".into())
    )
}

/// One line of the summary table.
struct Row {
    /// The phase, the same on every backend (the side-by-side table matches rows by it).
    key: String,
    phase: String,
    traffic: Traffic,
    floor: Option<u64>,
    /// The information floor of the same bytes ([`floor`]).
    information_floor: Option<u64>,
    target: String,
    pass: Option<bool>,
    round_trips: u64,
    seconds: f64,
    /// Merges per second, for the phases that merge batches posted at once.
    rate: Option<f64>,
}

fn summary_rows(r: &Results) -> Vec<Row> {
    let (n, k, m, _) = r.settings;
    let mut rows = vec![Row {
        key: format!("seed upload ({n} new households)"),
        phase: format!("seed upload ({n} new households)"),
        traffic: r.seed.traffic.clone(),
        floor: Some(r.seed_floor),
        information_floor: Some(r.first_information_floor),
        target: "side figure".into(),
        pass: None,
        round_trips: r.seed.run.round_trips(),
        seconds: r.seed.run.seconds(),
        rate: None,
    }];
    let first_row = |phase: String, x: &Measured| Row {
        key: phase.clone(),
        phase,
        traffic: x.traffic.clone(),
        floor: Some(r.first_floor),
        information_floor: Some(r.first_information_floor),
        target: format!("≤1.3×, rt≤{}", r.first_rt_limit),
        pass: Some(ratio(x.traffic.total(), r.first_floor) <= 1.3 && x.run.round_trips() <= r.first_rt_limit),
        round_trips: x.run.round_trips(),
        seconds: x.run.seconds(),
        rate: None,
    };
    if let Some(x) = r.first.first() {
        rows.push(first_row("first sync, device 1".into(), x));
    }
    if let Some(x) = r.first.iter().max_by_key(|x| x.traffic.total()) {
        rows.push(first_row(format!("first sync, largest of {k}"), x));
    }
    let routine_row = |key: String, phase: String, x: &Measured, floor: u64, information_floor: u64| Row {
        key,
        phase,
        traffic: x.traffic.clone(),
        floor: Some(floor),
        information_floor: Some(information_floor),
        target: "≤1.5×+1KB, 1 sync".into(),
        pass: Some(
            x.traffic.total() as f64 <= 1.5 * floor as f64 + KB as f64
                && x.traffic.count("sync") == 1
                && x.run.round_trips() == 1,
        ),
        round_trips: x.run.round_trips(),
        seconds: x.run.seconds(),
        rate: None,
    };
    if let Some((x, f)) = r.routine.first() {
        let phase = format!("routine, push only ({m} edits, dev 1)");
        rows.push(routine_row(phase.clone(), phase, x, f.push, f.push_information));
    }
    // Devices 2..K also pull the changes of the devices that synced before them.
    let worst =
        r.routine.iter().enumerate().skip(1).max_by(|(_, a), (_, b)| {
            ratio(a.0.traffic.total(), a.1.full).total_cmp(&ratio(b.0.traffic.total(), b.1.full))
        });
    if let Some((d, (x, f))) = worst {
        let (key, phase) =
            ("routine, with pulls (worst)".to_string(), format!("routine, with pulls (worst: device {})", d + 1));
        rows.push(routine_row(key, phase, x, f.full, f.full_information));
    }
    if let Some((x, f)) = r.routine.last().filter(|_| k > 1) {
        let phase = format!("routine, with pulls (device {k})");
        rows.push(routine_row(phase.clone(), phase, x, f.full, f.full_information));
    }
    if let Some(x) = r.idle.iter().max_by_key(|x| x.traffic.total()) {
        rows.push(Row {
            key: format!("idle sync (largest of {k})"),
            phase: format!("idle sync (largest of {k})"),
            traffic: x.traffic.clone(),
            floor: None,
            information_floor: None,
            target: "<1KB".into(),
            pass: Some(x.traffic.total() < KB),
            round_trips: x.run.round_trips(),
            seconds: x.run.seconds(),
            rate: None,
        });
    }
    let c = &r.concurrent;
    rows.push(Row {
        key: format!("{k} batches at once, one server"),
        phase: format!("{k} batches at once, server ({} merges, {:.0}/s)", c.merges, c.push_rate()),
        traffic: c.push_traffic.clone(),
        floor: None,
        information_floor: None,
        target: "≥1000 merges/s".into(),
        pass: Some(c.push_rate() >= 1000.0),
        round_trips: k as u64,
        seconds: c.push_wall.as_secs_f64(),
        rate: Some(c.push_rate()),
    });
    rows.push(Row {
        key: format!("then {k} `pilar sync` at once"),
        phase: format!("then {k} `pilar sync` at once (replays applied)"),
        traffic: c.traffic.clone(),
        floor: None,
        information_floor: None,
        target: "-".into(),
        pass: None,
        round_trips: c.runs.iter().map(SyncRun::round_trips).sum(),
        seconds: c.wall.as_secs_f64(),
        rate: None,
    });
    if let Some(x) = &r.several {
        rows.push(Row {
            key: format!("{k} batches at once, {} servers", x.servers),
            phase: format!("{k} batches at once, {} servers ({} merges, {:.0}/s)", x.servers, x.merges, x.rate()),
            traffic: x.traffic.clone(),
            floor: None,
            information_floor: None,
            target: "≥1000 merges/s".into(),
            pass: Some(x.rate() >= 1000.0),
            round_trips: k as u64,
            seconds: x.wall.as_secs_f64(),
            rate: Some(x.rate()),
        });
    }
    rows
}

/// The figures of every backend side by side, one row per phase (a Markdown table, as README
/// shows it), then each backend's server memory.
fn print_side_by_side(all: &[Results], note: Option<&str>) {
    let Some(first) = all.first() else { return };
    let (n, k, m, seed) = first.settings;
    let tables: Vec<(Backend, Vec<Row>)> = all.iter().map(|r| (r.backend, summary_rows(r))).collect();
    let mut keys: Vec<&str> = Vec::new();
    for (_, rows) in &tables {
        for row in rows {
            if !keys.contains(&row.key.as_str()) {
                keys.push(&row.key);
            }
        }
    }
    println!(
        "side by side: {n} households (seed {seed}), {k} devices, {m} edits each; total = bytes both ways on the wire; \
         s = seconds (merges/s for batches posted at once)"
    );
    if let Some(note) = note {
        println!("{note}");
    }
    let mut head = vec!["sync".to_string(), "floor (B)".into(), "info floor (B)".into()];
    for (backend, _) in &tables {
        let name = backend_name(*backend);
        head.extend([format!("{name} total (B)"), "× floor".into(), "× info".into(), format!("{name} s")]);
    }
    head.extend(["requests".to_string(), "target".into(), "met".into()]);
    println!("| {} |", head.join(" | "));
    println!("|{}", "---|".repeat(head.len()));
    for key in keys {
        let found: Vec<Option<&Row>> = tables.iter().map(|(_, rows)| rows.iter().find(|r| r.key == key)).collect();
        let Some(any) = found.iter().flatten().next() else { continue };
        let mut cells = vec![
            key.to_string(),
            any.floor.map(thousands).unwrap_or_else(|| "–".into()),
            any.information_floor.map(thousands).unwrap_or_else(|| "–".into()),
        ];
        for row in &found {
            match row {
                Some(row) => {
                    let seconds = match row.rate {
                        Some(rate) => format!("{:.2} ({}/s)", row.seconds, thousands(rate.round() as u64)),
                        None => format!("{:.2}", row.seconds),
                    };
                    let times = |floor: Option<u64>| {
                        floor.map(|f| format!("{:.2}", ratio(row.traffic.total(), f))).unwrap_or_else(|| "–".into())
                    };
                    cells.extend([
                        thousands(row.traffic.total()),
                        times(row.floor),
                        times(row.information_floor),
                        seconds,
                    ]);
                }
                None => cells.extend(["–".to_string(), "–".into(), "–".into(), "–".into()]),
            }
        }
        let mut requests: Vec<String> = found.iter().flatten().map(|r| r.traffic.requests_text()).collect();
        requests.dedup();
        cells.push(requests.join(" / "));
        cells.push(any.target.clone());
        let verdicts: Vec<&str> = found.iter().flatten().map(|r| verdict(r.pass)).collect();
        cells.push(if verdicts.iter().all(|v| *v == verdicts[0]) {
            verdicts[0].to_string()
        } else {
            verdicts.join(" / ")
        });
        println!("| {} |", cells.join(" | "));
    }
    println!();
    let goals: Vec<(Backend, Vec<Goal>)> = all.iter().map(|r| (r.backend, issue15_goals(r))).collect();
    let mut head = vec!["issue 15 figure".to_string()];
    head.extend(goals.iter().map(|(backend, _)| backend_name(*backend).to_string()));
    head.extend(["target".to_string(), "met".into()]);
    println!("| {} |", head.join(" | "));
    println!("|{}", "---|".repeat(head.len()));
    let mut keys: Vec<&str> = Vec::new();
    for (_, list) in &goals {
        for goal in list {
            if !keys.contains(&goal.key.as_str()) {
                keys.push(&goal.key);
            }
        }
    }
    for key in keys {
        let found: Vec<Option<&Goal>> = goals.iter().map(|(_, list)| list.iter().find(|g| g.key == key)).collect();
        let Some(any) = found.iter().flatten().next() else { continue };
        let mut cells = vec![key.to_string()];
        cells.extend(found.iter().map(|g| g.map(|g| g.value.clone()).unwrap_or_else(|| "–".into())));
        cells.push(any.target.clone());
        let verdicts: Vec<&str> = found.iter().flatten().map(|g| verdict(g.pass)).collect();
        cells.push(if verdicts.iter().all(|v| *v == verdicts[0]) {
            verdicts[0].to_string()
        } else {
            verdicts.join(" / ")
        });
        println!("| {} |", cells.join(" | "));
    }
    for r in all {
        let name = backend_name(r.backend);
        match &r.memory {
            Some(memory) => {
                let steps: Vec<String> = memory.steps.iter().map(|(label, b)| format!("{label} {}", mib(*b))).collect();
                println!("{name}: server peak memory (VmHWM) {}; {}", mib(memory.peak), steps.join(", "));
            }
            None => println!("{name}: the server's process was not found in /proc"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-22T13:33:36.100000Z  INFO request{method=POST path=/v1/sync}: pilar_server::routes::sync: sync device=d pushed=100 response_bytes=9\n\
2026-11-22T13:33:36.100500Z  INFO request{method=POST path=/v1/sync}: tower_http::trace::on_response: finished processing request latency=100 ms status=200\n\
2026-11-22T13:33:36.150000Z  INFO request{method=POST path=/v1/sync}: tower_http::trace::on_response: finished processing request latency=100 ms status=200\n\
2026-11-22T13:33:36.299541Z  INFO request{method=GET path=/health}: tower_http::trace::on_response: finished processing request latency=0 ms status=200\n";

    #[test]
    fn server_log_lines_give_paths_latencies_and_busy_time() {
        let requests = logged_requests(LOG);
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].path, "/v1/sync");
        assert_eq!(requests[2].path, "/health");
        let (union, sum, count) = server_sync_time(&requests);
        assert_eq!(count, 2);
        assert_eq!(sum, Duration::from_millis(200));
        // [0.0005, 0.1005] and [0.05, 0.15] overlap: 0.1495 s busy.
        assert_eq!(union, Duration::from_micros(149_500));
        assert_eq!(logged_pushed(LOG), 100);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
