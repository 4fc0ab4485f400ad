//! The seeded, randomised convergence model (issue 11, point 7): 3–6 device stores and one server
//! storage in process, driven by random saves, supervisor reviews and resolutions, and sync round
//! trips with faults (dropped requests and responses, duplicated and late requests, saves between a
//! request and its answer, server restarts). At the end every device holds exactly the server's
//! households of its villages with identical heads, and no change any device or the supervisor saved
//! is lost: each is in every copy, and each value written is current, a visible concurrent value, or
//! superseded by a write that saw it.
//!
//! No HTTP: the service and sync-core calls are made exactly as `routes/sync.rs` and
//! `routes/supervise.rs` make them (scope from the assignments, documents only for the caller's
//! villages), with request and response bodies encoded and decoded as on the wire.
//!
//! - `PILAR_MODEL_CASES=<n>` runs n cases (default [`DEFAULT_CASES`]); seeds are 0..n.
//! - `PILAR_MODEL_SEED=<seed>` replays one case and prints its operation log.
//! - A failing case prints its seed and its operation log.

use automerge::{Change, ChangeHash};
use pilar_server::auth::Caller;
use pilar_server::service::Service;
use pilar_server::service::accounts::{DeviceLogin, DeviceRegistration};
use pilar_server::service::review::Choice;
use pilar_server::service::scope::{SyncCaller, in_areas};
use pilar_server::storage::{NewUser, SqliteDatabase, StorageError};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use sync_core::entry::{self, EntryError};
use sync_core::form::FormDefinition;
use sync_core::ids::VillageCode;
use sync_core::model::{
    DeviceId, Editor, Edits, FieldPath, Household, HouseholdId, MemberId, NewVisit, ReviewDecision, VisitId,
};
use sync_core::protocol::Role;
use sync_core::store::{DeviceIdentity, DeviceStore};
use sync_core::sync::{self, DocumentsRequest, DocumentsResponse, SyncRequest, SyncResponse};
use sync_core::value::FieldValue;
use tempfile::TempDir;
use time::OffsetDateTime;
use uuid::Uuid;

/// Cases run by `cargo test` (seeds 0..n); `PILAR_MODEL_CASES` raises it for a long run.
const DEFAULT_CASES: usize = 200;
/// The villages of the model (Kelurahan Bilokka and Wette'E, Kec. Panca Lautang).
const VILLAGES: [&str; 2] = ["73.14.01.1001", "73.14.01.1002"];
/// Their kecamatan, the supervisor's area.
const KECAMATAN: &str = "73.14.01";
/// Largest body accepted after decompression, as the route's limit.
const BODY_LIMIT: usize = 64 << 20;
/// Round trips one device makes at most while settling at the end (a backstop, not a target).
const SETTLE_ROUND_TRIPS: usize = 200;
/// Passes over all devices at the end before the model declares that they do not converge.
const SETTLE_PASSES: usize = 12;

/// Obviously fake names (tests/src/synthetic.rs style).
const NAMES: [&str; 8] = [
    "La Sintetis",
    "Wa Contoh",
    "Andi Percobaan",
    "Becce Uji",
    "Baso Wette'E",
    "Tenri Regapu’u",
    "Sitti Ciro-Ciroe",
    "Muh Olimoo'o",
];

/// Household answers the model edits, with small value ranges so concurrent edits meet often.
const HOUSEHOLD_FIELDS: [&str; 9] = [
    "floor_area_m2",
    "bedrooms",
    "rt",
    "rw",
    "livestock_cattle",
    "address",
    "kk_code",
    "family_status",
    "roof_condition",
];
/// Member answers the model edits.
const MEMBER_FIELDS: [&str; 3] = ["marital_status", "difficulty_seeing", "difficulty_walking"];

/// A valid random value for one of the fields above.
fn field_value(rng: &mut StdRng, field: &str) -> FieldValue {
    let int = |rng: &mut StdRng, lo: i64, hi: i64| FieldValue::Int(rng.random_range(lo..=hi));
    match field {
        "floor_area_m2" => int(rng, 30, 33),
        "bedrooms" => int(rng, 1, 3),
        "rt" => FieldValue::Text(format!("{:03}", rng.random_range(1..=3))),
        "rw" => FieldValue::Text(format!("{:03}", rng.random_range(1..=2))),
        "livestock_cattle" => int(rng, 0, 2),
        "address" => FieldValue::Text(format!("Jl. Contoh No. {}", rng.random_range(1..=3))),
        "kk_code" => int(rng, 0, 2),
        "family_status" => int(rng, 1, 3),
        "roof_condition" => int(rng, 1, 2),
        "marital_status" => int(rng, 1, 4),
        "difficulty_seeing" | "difficulty_walking" => int(rng, 1, 4),
        other => panic!("the model has no values for field {other}"),
    }
}

/// The field name at the end of a path (`answers.rt` → `rt`).
fn field_name(path: &FieldPath) -> Option<&str> {
    match path {
        FieldPath::Answer(k) | FieldPath::Member(_, k) => Some(k.as_str()),
        _ => None,
    }
}

fn cases_from_env() -> usize {
    std::env::var("PILAR_MODEL_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_CASES)
}

/// A directory for one case's databases: tmpfs when there is one (every commit is an fsync with
/// `synchronous=FULL`, and the model makes thousands), else the system temp directory.
fn case_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new().prefix("pilar-model-").tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new().prefix("pilar-model-").tempdir().expect("temp dir")
}

/// Figures over all cases, printed at the end.
#[derive(Debug, Default, Clone)]
struct Stats {
    operations: usize,
    saves: usize,
    refused_saves: usize,
    interleaved_saves: usize,
    round_trips: usize,
    pack_pages: usize,
    repairs: usize,
    dropped_requests: usize,
    dropped_responses: usize,
    duplicated_requests: usize,
    late_duplicates: usize,
    restarts: usize,
    reviews: usize,
    resolutions: usize,
    conflicts_seen: usize,
    devices: usize,
    households: usize,
    changes_checked: usize,
    values_checked: usize,
    /// Written values no current value's change saw, hidden by a later change that saw them
    /// (a resolution that kept the winning value).
    hidden_by_resolution: usize,
    /// Written values current under an earlier writer of the same value.
    current_under_first_writer: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.operations += o.operations;
        self.saves += o.saves;
        self.refused_saves += o.refused_saves;
        self.interleaved_saves += o.interleaved_saves;
        self.round_trips += o.round_trips;
        self.pack_pages += o.pack_pages;
        self.repairs += o.repairs;
        self.dropped_requests += o.dropped_requests;
        self.dropped_responses += o.dropped_responses;
        self.duplicated_requests += o.duplicated_requests;
        self.late_duplicates += o.late_duplicates;
        self.restarts += o.restarts;
        self.reviews += o.reviews;
        self.resolutions += o.resolutions;
        self.conflicts_seen += o.conflicts_seen;
        self.devices += o.devices;
        self.households += o.households;
        self.changes_checked += o.changes_checked;
        self.values_checked += o.values_checked;
        self.hidden_by_resolution += o.hidden_by_resolution;
        self.current_under_first_writer += o.current_under_first_writer;
    }
}

/// One device install: its own enumerator user and store.
struct Device {
    label: String,
    user: String,
    id: DeviceId,
    villages: Vec<String>,
    store: DeviceStore,
    /// Households the server asked for in full (kept between round trips of one sync, as the CLI).
    full: Vec<HouseholdId>,
}

/// A change someone saved, and the values it wrote (only writes that took effect).
struct SavedChange {
    who: String,
    household: HouseholdId,
    hash: String,
    op: usize,
    writes: Vec<(FieldPath, FieldValue)>,
}

/// One case: a server storage, devices, a supervisor, and what was saved.
struct Case {
    seed: u64,
    rng: StdRng,
    log: Vec<String>,
    server_path: PathBuf,
    server: Option<Service>,
    devices: Vec<Device>,
    supervisor: String,
    supervisor_device: DeviceId,
    now: OffsetDateTime,
    saved: Vec<SavedChange>,
    /// Requests sent earlier that the network delivers again later: (device, encoded request).
    late: Vec<(usize, Vec<u8>)>,
    stats: Stats,
    _dir: TempDir,
}

/// The server's use cases over the SQLite database at `path` (opened again after a restart).
fn open_server(path: &Path) -> Service {
    Service::new(std::sync::Arc::new(SqliteDatabase::open(path).expect("open the server database")))
}

fn id_from(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

impl Case {
    fn new(seed: u64) -> Case {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = case_dir();
        let server_path = dir.path().join("server.db");
        let server = open_server(&server_path);
        let now = time::macros::datetime!(2026-11-20 08:00 +8) + time::Duration::seconds(rng.random_range(0..86_400));
        let supervisor = "spv.sintetis".to_string();
        let supervisor_device = DeviceId(id_from(&mut rng));
        let mut case = Case {
            seed,
            rng,
            log: Vec::new(),
            server_path,
            server: Some(server),
            devices: Vec::new(),
            supervisor,
            supervisor_device,
            now,
            saved: Vec::new(),
            late: Vec::new(),
            stats: Stats::default(),
            _dir: dir,
        };
        case.create_user(&case.supervisor.clone(), Role::Supervisor);
        case.storage()
            .set_kecamatan_assignments(&case.supervisor, &[KECAMATAN.to_string()], case.now)
            .expect("assign the kecamatan");
        let count = case.rng.random_range(3..=6);
        for i in 0..count {
            let villages: Vec<String> = match case.rng.random_range(0..3) {
                0 => vec![VILLAGES[0].to_string()],
                1 => vec![VILLAGES[1].to_string()],
                _ => VILLAGES.iter().map(|v| v.to_string()).collect(),
            };
            case.add_device(i, villages);
        }
        case.stats.devices = count;
        case
    }

    fn storage(&self) -> &Service {
        self.server.as_ref().expect("the server is running")
    }

    fn note(&mut self, line: String) {
        self.log.push(line);
    }

    fn tick(&mut self) {
        self.now += time::Duration::seconds(self.rng.random_range(1..=120));
    }

    fn create_user(&self, name: &str, role: Role) {
        let user =
            NewUser { name: name.to_string(), role, password_hash: "not-a-password-hash".into(), created_at: self.now };
        self.storage().create_user(&user).expect("create user");
    }

    fn add_device(&mut self, index: usize, villages: Vec<String>) {
        let label = format!("d{index}");
        let user = format!("enum.{index}");
        let id = DeviceId(id_from(&mut self.rng));
        self.create_user(&user, Role::Enumerator);
        self.storage().set_village_assignments(&user, &villages, self.now).expect("assign villages");
        let login = DeviceLogin {
            device: id,
            user: &user,
            name: &label,
            refresh_hash: &format!("{:064x}", self.rng.random::<u128>()),
            now: self.now,
        };
        assert_eq!(self.storage().register_device(&login).expect("register device"), DeviceRegistration::Registered);
        let identity = DeviceIdentity { device: id, user: user.clone(), form: FormDefinition::default_dtsen().key() };
        let codes: Vec<VillageCode> = villages.iter().map(|v| VillageCode::parse(v).expect("village code")).collect();
        let home = self.server_path.with_file_name(&label);
        let store = DeviceStore::create(&home, &identity, &codes, self.now).expect("create device store");
        self.note(format!("{label}: user {user}, device {id}, villages {villages:?}"));
        self.devices.push(Device { label, user, id, villages, store, full: Vec::new() });
    }

    /// The caller of a sync as `routes/sync.rs` builds it for an enumerator.
    fn caller(&self, d: usize) -> SyncCaller {
        let device = &self.devices[d];
        let caller = Caller { user: device.user.clone(), role: Role::Enumerator, device: device.id };
        self.storage().sync_caller(&caller, time::Duration::days(14), self.now).expect("the caller's scope")
    }

    // ---------------------------------------------------------------- the run

    fn run(&mut self) {
        let seed = self.seed;
        self.note(format!("-- case {seed}: {} device(s)", self.devices.len()));
        let steps = self.rng.random_range(20..=70);
        for _ in 0..steps {
            self.tick();
            self.stats.operations += 1;
            let d = self.rng.random_range(0..self.devices.len());
            match self.rng.random_range(0..100) {
                0..=37 => self.save(d, false),
                38..=77 => self.round_trip(d),
                78..=84 => self.review(),
                85..=91 => self.resolve(),
                92..=94 => self.restart(),
                95..=97 => self.deliver_late(),
                _ => {
                    // A new `pilar sync` process: what the last one kept in memory is gone.
                    self.devices[d].full.clear();
                    let label = self.devices[d].label.clone();
                    self.note(format!("{label}: sync process ends (need-full list forgotten)"));
                }
            }
        }
        self.settle();
        self.check();
    }

    // ---------------------------------------------------------------- saves

    fn save(&mut self, d: usize, interleaved: bool) {
        if interleaved {
            self.stats.interleaved_saves += 1;
        }
        let held = self.devices[d].store.household_villages().expect("household villages");
        let roll = self.rng.random_range(0..100);
        if held.is_empty() || roll < 15 {
            return self.new_household(d, interleaved);
        }
        // Most saves go to the first households (by id, the same on every device), so devices
        // often edit one household concurrently.
        let hot = if self.rng.random_bool(0.6) { &held[..held.len().min(2)] } else { &held[..] };
        let (id, _) = *hot.choose(&mut self.rng).expect("a household");
        let state = match self.devices[d].store.load(id) {
            Ok(stored) => stored.household.state(),
            Err(e) => {
                let label = self.devices[d].label.clone();
                self.note(format!("{label}: cannot load {id} to edit it: {e}"));
                return;
            }
        };
        let members: Vec<MemberId> = state.current_members().map(|m| m.id).collect();
        let next_seq = state.members.iter().filter_map(|m| m.seq()).max().unwrap_or(0) + 1;
        let mut edits = Edits::default();
        let mut writes: Vec<(FieldPath, FieldValue)> = Vec::new();
        let action = match roll {
            15..=54 => {
                let n = self.rng.random_range(1..=2);
                for _ in 0..n {
                    // Half of the edits go to three fields, so concurrent edits meet.
                    let fields = if self.rng.random_bool(0.5) { &HOUSEHOLD_FIELDS[..3] } else { &HOUSEHOLD_FIELDS[..] };
                    let field = *fields.choose(&mut self.rng).expect("field");
                    let value = field_value(&mut self.rng, field);
                    edits.answers.insert(field.to_string(), Some(value.clone()));
                    writes.retain(|(p, _)| p != &FieldPath::Answer(field.to_string()));
                    writes.push((FieldPath::Answer(field.to_string()), value));
                }
                "edit"
            }
            55..=69 if !members.is_empty() => {
                let member = *members.choose(&mut self.rng).expect("member");
                let field = *MEMBER_FIELDS.choose(&mut self.rng).expect("field");
                let value = field_value(&mut self.rng, field);
                edits.edit_members.push((member, BTreeMap::from([(field.to_string(), Some(value.clone()))])));
                writes.push((FieldPath::Member(member, field.to_string()), value));
                "member-edit"
            }
            70..=74 if members.len() > 1 => {
                let member = *members.choose(&mut self.rng).expect("member");
                edits.remove_members.push((member, "pindah (data sintetis)".to_string()));
                "member-remove"
            }
            75..=84 => {
                let member = MemberId(id_from(&mut self.rng));
                let answers = self.member_answers(next_seq, false);
                edits.add_members.push((member, answers));
                "member-add"
            }
            _ => {
                let outcome = *[2_i64, 3, 4, 7].choose(&mut self.rng).expect("outcome");
                let mut answers = BTreeMap::from([("purpose".to_string(), FieldValue::Int(1))]);
                match outcome {
                    4 => {
                        answers.insert("refusal_reason".into(), FieldValue::Text("sibuk (sintetis)".into()));
                    }
                    7 => {
                        answers.insert("not_found_informant".into(), FieldValue::Text("Ketua RT (sintetis)".into()));
                    }
                    _ => {}
                }
                edits.visit = Some(NewVisit {
                    id: VisitId(id_from(&mut self.rng)),
                    outcome,
                    lat: Some(-3.9),
                    lon: Some(119.6),
                    accuracy_m: Some(8.0),
                    note: None,
                    answers,
                });
                "visit"
            }
        };
        let form = FormDefinition::default_dtsen();
        let now = self.now;
        let result = entry::save(&mut self.devices[d].store, form, id, action, &edits, now);
        self.saved_or_refused(d, id, action, result, writes, interleaved);
    }

    fn member_answers(&mut self, seq: i64, head: bool) -> BTreeMap<String, FieldValue> {
        let female = self.rng.random_bool(0.5);
        let year = if head { self.rng.random_range(1950..=1990) } else { self.rng.random_range(1995..=2020) };
        BTreeMap::from([
            ("seq".to_string(), FieldValue::Int(seq)),
            ("full_name".to_string(), FieldValue::Text(NAMES.choose(&mut self.rng).expect("name").to_string())),
            ("presence".to_string(), FieldValue::Int(if head || self.rng.random_bool(0.5) { 1 } else { 4 })),
            ("sex".to_string(), FieldValue::Int(if female { 2 } else { 1 })),
            ("relationship".to_string(), FieldValue::Int(if head { 1 } else { 3 })),
            ("birth_date".to_string(), FieldValue::Text(format!("{year:04}-05-15"))),
        ])
    }

    fn new_household(&mut self, d: usize, interleaved: bool) {
        let village = self.devices[d].villages.choose(&mut self.rng).expect("village").clone();
        let code = VillageCode::parse(&village).expect("village code");
        let id = HouseholdId(id_from(&mut self.rng));
        let size = self.rng.random_range(1..=3);
        let members: Vec<(MemberId, BTreeMap<String, FieldValue>)> =
            (1..=size).map(|seq| (MemberId(id_from(&mut self.rng)), self.member_answers(seq, seq == 1))).collect();
        let answers = BTreeMap::from([
            ("head_name".to_string(), FieldValue::Text(NAMES.choose(&mut self.rng).expect("name").to_string())),
            ("rt".to_string(), field_value(&mut self.rng, "rt")),
            ("rw".to_string(), field_value(&mut self.rng, "rw")),
            ("address".to_string(), field_value(&mut self.rng, "address")),
            ("member_count".to_string(), FieldValue::Int(size)),
        ]);
        let form = FormDefinition::default_dtsen();
        let now = self.now;
        let result = entry::add_household_with_ids(&mut self.devices[d].store, form, &code, id, answers, members, now);
        let label = self.devices[d].label.clone();
        self.note(format!("{label}: new household {id} in {village}"));
        self.saved_or_refused(d, id, "create", result, Vec::new(), interleaved);
    }

    fn saved_or_refused(
        &mut self,
        d: usize,
        id: HouseholdId,
        action: &str,
        result: Result<entry::Saved, EntryError>,
        writes: Vec<(FieldPath, FieldValue)>,
        interleaved: bool,
    ) {
        let label = self.devices[d].label.clone();
        let during = if interleaved { " (during a sync)" } else { "" };
        match result {
            Ok(saved) => {
                let Some(hash) = saved.change else {
                    self.note(format!("{label}: {action} {id}{during}: nothing changed"));
                    return;
                };
                self.stats.saves += 1;
                // Only writes that took effect are tracked: a save writes every answer it names,
                // even unchanged (a confirmation), but clearing an empty field writes nothing.
                let household = self.devices[d].store.load(id).expect("load the saved household").household;
                let effective: Vec<(FieldPath, FieldValue)> = writes
                    .into_iter()
                    .filter(|(path, _)| {
                        household.field_values(path).unwrap_or_default().iter().any(|a| a.writer.change == hash)
                    })
                    .collect();
                let described: Vec<String> = effective.iter().map(|(p, v)| format!("{p}={v}")).collect();
                self.note(format!("{label}: {action} {id}{during} -> change {} {}", short(&hash), described.join(" ")));
                let op = self.log.len() - 1;
                self.saved.push(SavedChange { who: label, household: id, hash, op, writes: effective });
            }
            Err(EntryError::Refused(report)) => {
                self.stats.refused_saves += 1;
                let rules: Vec<String> = report.rejects().map(|p| format!("{}:{}", p.field, p.rule)).collect();
                self.note(format!("{label}: {action} {id}{during} refused by validation ({})", rules.join(", ")));
            }
            Err(e) => panic!("{label}: {action} of household {id} failed: {e}"),
        }
    }

    /// Between 0 and 2 saves on device `d` while its request or answer is on the way.
    fn maybe_interleave(&mut self, d: usize) {
        if self.rng.random_bool(0.3) {
            for _ in 0..self.rng.random_range(1..=2) {
                self.tick();
                self.save(d, true);
            }
        }
    }

    // ---------------------------------------------------------------- sync

    /// One round trip of device `d`, in the CLI's order: a repair if households wait for one, else
    /// the next pack page of a village without a cursor, else a sync request.
    fn round_trip(&mut self, d: usize) {
        self.stats.round_trips += 1;
        let label = self.devices[d].label.clone();
        if sync::repair_request(&self.devices[d].store).expect("repair request").is_some() {
            return self.repair(d, true);
        }
        let cursors = self.devices[d].store.cursors().expect("cursors");
        let downloading =
            self.devices[d].store.villages().expect("villages").into_iter().find(|v| !cursors.contains_key(v));
        if let Some(village) = downloading {
            let limit = self.rng.random_range(1..=3);
            self.pack_page(d, &village, limit, true);
            return;
        }
        let max_changes = *[1_u32, 2, 3, 5, 10, 1000].choose(&mut self.rng).expect("page");
        let (request, sent) = self.build(d, max_changes);
        self.maybe_interleave(d);
        if self.rng.random_bool(0.1) {
            self.stats.dropped_requests += 1;
            self.note(format!("{label}: batch {} dropped on the way to the server", short_uuid(request.batch)));
            return;
        }
        let body = self.post_sync(d, &sent);
        if self.rng.random_bool(0.1) {
            self.stats.duplicated_requests += 1;
            let again = self.post_sync(d, &sent);
            assert!(again == body, "{label}: the duplicated batch {} got a different answer", request.batch);
            self.note(format!("{label}: batch {} sent twice, same answer", short_uuid(request.batch)));
        }
        if self.rng.random_bool(0.08) {
            self.late.push((d, sent));
        }
        self.maybe_interleave(d);
        if self.rng.random_bool(0.04) {
            self.restart();
        }
        if self.rng.random_bool(0.12) {
            self.stats.dropped_responses += 1;
            self.note(format!("{label}: answer to batch {} lost on the way back", short_uuid(request.batch)));
            return;
        }
        self.apply(d, &request, &body);
    }

    /// `build_request` as the CLI calls it, and the request as the server decodes it.
    fn build(&mut self, d: usize, max_changes: u32) -> (SyncRequest, Vec<u8>) {
        let fresh = id_from(&mut self.rng);
        let now = self.now;
        let device = &mut self.devices[d];
        let request =
            sync::build_request(&mut device.store, &device.full, fresh, max_changes, now).expect("build request");
        let sent = sync::encode(&request);
        let pushed: usize = request.push.iter().map(|p| p.changes.len()).sum();
        let retry = if request.batch == fresh { "" } else { " (retry of a lost answer)" };
        let label = device.label.clone();
        self.note(format!(
            "{label}: batch {}{retry}: {pushed} change(s) of {} household(s), {} in full, cursors {:?}, max {max_changes}",
            short_uuid(request.batch),
            request.push.len(),
            self.devices[d].full.len(),
            request.cursors
        ));
        (request, sent)
    }

    /// `POST /v1/sync` without HTTP: decode the body, derive the scope, call the storage.
    fn post_sync(&mut self, d: usize, body: &[u8]) -> Vec<u8> {
        let request: SyncRequest = sync::decode(body, BODY_LIMIT).expect("the server decodes the request");
        let caller = self.caller(d);
        self.storage().sync(&caller, &request, self.now).expect("the server handles the sync")
    }

    fn apply(&mut self, d: usize, request: &SyncRequest, body: &[u8]) {
        let response: SyncResponse = sync::decode(body, BODY_LIMIT).expect("the device decodes the answer");
        let now = self.now;
        let device = &mut self.devices[d];
        let outcome = sync::apply_response(&mut device.store, request, &response, now).expect("apply the answer");
        device.full = outcome.need_full.clone();
        let label = device.label.clone();
        self.stats.repairs += outcome.repairs;
        self.note(format!(
            "{label}: answer to batch {} applied: acknowledged {}, rejected {}, received {} in {} household(s), need full {}, repairs {}, more {}",
            short_uuid(request.batch),
            outcome.acknowledged,
            outcome.rejected,
            outcome.received,
            outcome.households_changed,
            outcome.need_full.len(),
            outcome.repairs,
            outcome.has_more
        ));
    }

    /// `GET /v1/packs/{village}` as the route serves it, then `apply_pack_page` (or a lost answer).
    fn pack_page(&mut self, d: usize, village: &str, limit: u32, faults: bool) -> bool {
        self.stats.pack_pages += 1;
        let label = self.devices[d].label.clone();
        let after = self.devices[d]
            .store
            .pack_progress(village)
            .expect("pack progress")
            .and_then(|(a, _)| a)
            .map(|a| a.parse::<HouseholdId>().expect("pack position"));
        let caller = self.caller(d);
        assert!(caller.active.iter().any(|v| v == village), "{label}: downloads village {village} it does not hold");
        // Half the devices ask for compact pages (format 2), half are older ones (format 1).
        let compact = d.is_multiple_of(2);
        let (content_type, body) = if compact {
            let body =
                self.storage().compact_pack_page(village, after, limit.clamp(1, 500)).expect("compact pack page");
            (sync::PACK_CONTENT_TYPE, body.as_ref().clone())
        } else {
            (
                sync::CONTENT_TYPE,
                sync::encode(&self.storage().pack_page(village, after, limit.clamp(1, 200)).expect("pack page")),
            )
        };
        if faults {
            self.maybe_interleave(d);
            if self.rng.random_bool(0.15) {
                self.stats.dropped_responses += 1;
                self.note(format!("{label}: pack page of {village} after {after:?} cut on the way"));
                return false;
            }
        }
        let page = sync::decode_pack(Some(content_type), &body, BODY_LIMIT).expect("decode pack page");
        let now = self.now;
        let progress = sync::apply_pack(&mut self.devices[d].store, &page, now).expect("apply pack page");
        self.note(format!(
            "{label}: pack page of {village} ({}): {} household(s), next {:?}",
            if compact { "rows" } else { "documents" },
            progress.households,
            progress.next_after
        ));
        progress.households > 0
    }

    /// `POST /v1/documents` as the route serves it (only the caller's villages), then
    /// `apply_repair` (or a lost answer).
    fn repair(&mut self, d: usize, faults: bool) {
        let label = self.devices[d].label.clone();
        let Some(request) = sync::repair_request(&self.devices[d].store).expect("repair request") else { return };
        let request: DocumentsRequest = sync::decode(&sync::encode(&request), BODY_LIMIT).expect("decode");
        let caller = self.caller(d);
        let found = self.storage().documents(&request.households).expect("documents");
        let mut answer = DocumentsResponse::default();
        for id in &request.households {
            match found.iter().find(|(h, _, _)| h == id) {
                Some((_, village, document)) if caller.may_read(village) => {
                    answer.households.push(sync::PackedHousehold {
                        household: *id,
                        document: serde_bytes::ByteBuf::from(document.clone()),
                    })
                }
                _ => answer.unavailable.push(*id),
            }
        }
        let body = sync::encode(&answer);
        if faults && self.rng.random_bool(0.15) {
            self.stats.dropped_responses += 1;
            self.note(format!("{label}: repair answer for {} household(s) lost", request.households.len()));
            return;
        }
        let answer: DocumentsResponse = sync::decode(&body, BODY_LIMIT).expect("decode documents");
        let now = self.now;
        let outcome = sync::apply_repair(&mut self.devices[d].store, &answer, now).expect("apply repair");
        self.note(format!(
            "{label}: repair: restored {}, unavailable {}, orphaned own changes {}",
            outcome.restored, outcome.unavailable, outcome.orphaned_changes
        ));
        assert_eq!(outcome.orphaned_changes, 0, "{label}: a repair left own changes outside every history");
    }

    /// A request sent long ago arrives at the server again; its answer goes nowhere.
    fn deliver_late(&mut self) {
        if self.late.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.late.len());
        let (d, body) = self.late.swap_remove(i);
        self.stats.late_duplicates += 1;
        let request: SyncRequest = sync::decode(&body, BODY_LIMIT).expect("decode");
        let label = self.devices[d].label.clone();
        self.note(format!("{label}: an old copy of batch {} reaches the server again", short_uuid(request.batch)));
        let _ = self.post_sync(d, &body);
    }

    fn restart(&mut self) {
        self.stats.restarts += 1;
        self.server = None;
        self.server = Some(open_server(&self.server_path));
        self.note("server restarted".into());
    }

    // ---------------------------------------------------------------- supervisor

    fn supervisor_editor(&self) -> Editor {
        Editor { user: self.supervisor.clone(), device: self.supervisor_device.on_server(), now: self.now }
    }

    fn areas(&self) -> Vec<String> {
        self.storage().kecamatan_scope(&self.supervisor).expect("kecamatan scope")
    }

    /// The server's document of a household.
    fn server_household(&self, id: HouseholdId) -> Option<Household> {
        self.storage()
            .documents(&[id])
            .expect("documents")
            .into_iter()
            .next()
            .map(|(_, _, doc)| Household::load(id, &doc, self.supervisor_device).expect("server document loads"))
    }

    /// The supervisor's change: the single new head after a server-side write, if heads moved.
    fn server_change(&self, id: HouseholdId, before: &[ChangeHash]) -> Option<String> {
        let after = self.server_household(id)?.heads();
        if after == before {
            return None;
        }
        assert_eq!(after.len(), 1, "a server-side write leaves exactly one head");
        Some(after[0].to_string())
    }

    fn review(&mut self) {
        let areas = self.areas();
        let list = self.storage().review_list(Some(&areas), None).expect("review list");
        let Some(brief) = list.choose(&mut self.rng).cloned() else { return };
        let id = brief.household;
        assert!(in_areas(&brief.village, Some(&areas)), "review list outside the areas");
        let decision = if self.rng.random_bool(0.5) { ReviewDecision::Approve } else { ReviewDecision::Return };
        let comment = match decision {
            ReviewDecision::Return => Some("cek lagi luas lantai (sintetis)"),
            ReviewDecision::Approve => self.rng.random_bool(0.3).then_some("sudah sesuai (sintetis)"),
        };
        let before = self.server_household(id).expect("reviewed household exists").heads();
        let editor = self.supervisor_editor();
        match self.storage().review(id, &editor, decision, comment) {
            Ok(_) => {
                self.stats.reviews += 1;
                let hash = self.server_change(id, &before).expect("a review writes a change");
                self.note(format!("spv: review {decision:?} {id} -> change {}", short(&hash)));
                let op = self.log.len() - 1;
                self.saved.push(SavedChange { who: "spv".into(), household: id, hash, op, writes: Vec::new() });
            }
            Err(e @ (StorageError::Refused(_) | StorageError::Stale(_))) => {
                self.note(format!("spv: review {decision:?} {id} refused: {e}"));
            }
            Err(e) => panic!("spv: review of {id} failed: {e}"),
        }
    }

    fn resolve(&mut self) {
        let areas = self.areas();
        let conflicts = self.storage().conflicts(Some(&areas)).expect("conflicts");
        self.stats.conflicts_seen += conflicts.len();
        let Some(item) = conflicts.choose(&mut self.rng).cloned() else { return };
        let id = item.household.household;
        let path: FieldPath = item.path.parse().expect("conflict path parses");
        let household = self.server_household(id).expect("household in conflict exists");
        let listed = household.field_values(&path).expect("field values");
        assert_eq!(
            listed.iter().map(|a| &a.value).collect::<Vec<_>>(),
            item.values.iter().map(|v| &v.value).collect::<Vec<_>>(),
            "the conflict inbox lists the document's concurrent values of {path}"
        );
        let before = household.heads();
        let (choice, value) = match field_name(&path) {
            Some(field) if self.rng.random_bool(0.3) => {
                let value = field_value(&mut self.rng, field);
                (Choice::Value(value.to_string()), value)
            }
            _ => {
                let n = self.rng.random_range(1..=item.values.len());
                (Choice::Pick(n), item.values[n - 1].value.clone())
            }
        };
        let editor = self.supervisor_editor();
        match self.storage().resolve(id, &editor, &path, &choice) {
            Ok(_) => {
                self.stats.resolutions += 1;
                let after = self.server_household(id).expect("household").field_values(&path).expect("values");
                assert_eq!(after.len(), 1, "a resolved field holds one value");
                assert_eq!(after[0].value, value, "a resolved field holds the chosen value");
                let Some(hash) = self.server_change(id, &before) else {
                    self.note(format!("spv: resolve {id} {path} changed nothing"));
                    return;
                };
                self.note(format!(
                    "spv: resolve {id} {path} ({} values) = {value} -> change {}",
                    item.values.len(),
                    short(&hash)
                ));
                let op = self.log.len() - 1;
                self.saved.push(SavedChange {
                    who: "spv".into(),
                    household: id,
                    hash,
                    op,
                    writes: vec![(path, value)],
                });
            }
            Err(e @ (StorageError::Refused(_) | StorageError::Stale(_))) => {
                self.note(format!("spv: resolve {id} {path} refused: {e}"));
            }
            Err(e) => panic!("spv: resolve of {id} {path} failed: {e}"),
        }
    }

    // ---------------------------------------------------------------- the end

    /// Sync every device without faults until a whole pass moves nothing.
    fn settle(&mut self) {
        self.note("-- settling: every device syncs without faults until nothing moves".into());
        for pass in 0..SETTLE_PASSES {
            let mut moved = false;
            for d in 0..self.devices.len() {
                moved |= self.settle_device(d);
            }
            if !moved {
                self.note(format!("-- settled after {} pass(es)", pass + 1));
                return;
            }
        }
        panic!("the devices still exchange changes after {SETTLE_PASSES} passes: they do not converge");
    }

    /// One complete `pilar sync` of device `d` without faults; whether anything moved.
    fn settle_device(&mut self, d: usize) -> bool {
        let label = self.devices[d].label.clone();
        let mut moved = false;
        for _ in 0..SETTLE_ROUND_TRIPS {
            self.tick();
            if sync::repair_request(&self.devices[d].store).expect("repair request").is_some() {
                self.repair(d, false);
                moved = true;
                continue;
            }
            let cursors = self.devices[d].store.cursors().expect("cursors");
            let downloading =
                self.devices[d].store.villages().expect("villages").into_iter().find(|v| !cursors.contains_key(v));
            if let Some(village) = downloading {
                self.pack_page(d, &village, 200, false);
                moved = true;
                continue;
            }
            let (request, sent) = self.build(d, 1000);
            let body = self.post_sync(d, &sent);
            let response: SyncResponse = sync::decode(&body, BODY_LIMIT).expect("decode");
            let pushed: usize = request.push.iter().map(|p| p.changes.len()).sum();
            self.apply(d, &request, &body);
            let unsent = self.devices[d].store.outbox().expect("outbox").iter().any(|e| e.rejected_reason.is_none());
            let repairs = !self.devices[d].store.repairs().expect("repairs").is_empty();
            moved |= pushed > 0 || !response.pull.is_empty();
            if !response.has_more && response.need_full.is_empty() && !unsent && !repairs {
                return moved;
            }
        }
        panic!("{label}: a sync did not finish within {SETTLE_ROUND_TRIPS} round trips");
    }

    /// Every device holds exactly the server's households of its villages, with identical heads,
    /// nothing unsent or waiting for repair, every saved change everywhere, every written value
    /// still accounted for.
    fn check(&mut self) {
        let conn = rusqlite::Connection::open_with_flags(&self.server_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open server.db read-only");
        let mut server: BTreeMap<HouseholdId, (String, BTreeSet<String>)> = BTreeMap::new();
        {
            let mut stmt = conn.prepare("SELECT id, village, heads FROM households").expect("prepare");
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                .expect("query");
            for row in rows {
                let (id, village, heads) = row.expect("row");
                let heads = heads.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect();
                server.insert(id.parse().expect("household id"), (village, heads));
            }
        }
        self.stats.households = server.len();
        let now = self.now;
        for device in &mut self.devices {
            let label = &device.label;
            let outbox = device.store.outbox().expect("outbox");
            assert!(
                outbox.is_empty(),
                "{label}: {} change(s) still in the outbox after settling: {outbox:?}",
                outbox.len()
            );
            let repairs = device.store.repairs().expect("repairs");
            assert!(repairs.is_empty(), "{label}: households still wait for repair: {repairs:?}");
            let check = device.store.check(false, now).expect("store check");
            assert!(check.is_clean(), "{label}: the store check found problems: {check:?}");
            let held: BTreeMap<HouseholdId, BTreeSet<String>> = device
                .store
                .heads_by_household()
                .expect("heads")
                .into_iter()
                .map(|(id, heads)| (id, heads.iter().map(|h| h.to_string()).collect()))
                .collect();
            let expected: BTreeMap<HouseholdId, BTreeSet<String>> = server
                .iter()
                .filter(|(_, (village, _))| device.villages.contains(village))
                .map(|(id, (_, heads))| (*id, heads.clone()))
                .collect();
            for (id, heads) in &expected {
                match held.get(id) {
                    None => panic!("{label}: lacks household {id} of its villages"),
                    Some(h) if h != heads => panic!("{label}: household {id} has heads {h:?}, the server {heads:?}"),
                    Some(_) => {}
                }
            }
            for id in held.keys() {
                assert!(expected.contains_key(id), "{label}: holds household {id} the server does not give it");
            }
        }
        // Every saved change is in the server's document and in every copy of its villages.
        let mut documents: HashMap<HouseholdId, Household> = HashMap::new();
        for saved in &self.saved {
            let id = saved.household;
            if let std::collections::hash_map::Entry::Vacant(slot) = documents.entry(id) {
                let Some(household) = self.server_household(id) else {
                    panic!("{}'s household {id} (op {}) never reached the server", saved.who, saved.op)
                };
                slot.insert(household);
            }
            let hash: ChangeHash = saved.hash.parse().expect("change hash");
            assert!(
                documents[&id].has_change(&hash),
                "{}'s change {} to household {id} (op {}) is not in the server's document",
                saved.who,
                saved.hash,
                saved.op
            );
            for device in &self.devices {
                let village = &server[&id].0;
                if device.villages.contains(village) {
                    let copy = device.store.load(id).expect("device copy").household;
                    assert!(
                        copy.has_change(&hash),
                        "{}: lacks {}'s change {} to household {id} (op {})",
                        device.label,
                        saved.who,
                        saved.hash,
                        saved.op
                    );
                }
            }
            self.stats.changes_checked += 1;
        }
        // Every value written is current, a visible concurrent value, or superseded by a write
        // whose change saw it.
        let mut ancestry: HashMap<(HouseholdId, String), BTreeSet<String>> = HashMap::new();
        for saved in &self.saved {
            let household = &documents[&saved.household];
            for (path, value) in &saved.writes {
                self.stats.values_checked += 1;
                let current = household.field_values(path).expect("field values");
                if current.iter().any(|a| a.writer.change == saved.hash) {
                    continue;
                }
                // Automerge 0.12 keeps the first writer's op when a change puts the value that
                // already wins over a conflict (a resolution that keeps the value shown): the
                // value written is current, under its first writer's name.
                if current.iter().any(|a| &a.value == value) {
                    self.stats.current_under_first_writer += 1;
                    continue;
                }
                let mut saw_it = |change: &str| {
                    change != saved.hash
                        && !ancestry
                            .entry((saved.household, change.to_string()))
                            .or_insert_with(|| not_ancestors(household, change))
                            .contains(&saved.hash)
                };
                if current.iter().any(|a| saw_it(&a.writer.change)) {
                    continue;
                }
                // In the same way, a resolution that keeps the value shown hides the other values
                // without being the writer of the current one: a value it hid was superseded by a
                // change that saw it, though no current value is written by that change.
                let history = household.field_history(path).unwrap_or_default();
                let superseded = history.iter().any(|c| saw_it(&c.writer.change));
                if superseded {
                    self.stats.hidden_by_resolution += 1;
                }
                let values: Vec<String> =
                    current.iter().map(|a| format!("{} by {}", a.value, short(&a.writer.change))).collect();
                let history: Vec<String> = history
                    .iter()
                    .map(|c| format!("{:?} by {}", c.value.as_ref().map(|v| v.to_string()), short(&c.writer.change)))
                    .collect();
                assert!(
                    superseded,
                    "{}'s write {path}={value} (change {}, op {}) in household {} is lost: the field holds [{}], \
                     none written by a change that saw it; the field's history: [{}]; the household's changes:\n{}",
                    saved.who,
                    saved.hash,
                    saved.op,
                    saved.household,
                    values.join(", "),
                    history.join(", "),
                    describe_changes(household).join("\n")
                );
            }
        }
    }
}

/// Hashes of the changes that are NOT in the ancestry of `later` (itself included).
fn not_ancestors(household: &Household, later: &str) -> BTreeSet<String> {
    let later: ChangeHash = later.parse().expect("change hash");
    household
        .changes_since(&[later])
        .into_iter()
        .map(|bytes| Change::from_bytes(bytes).expect("stored change decodes").hash().to_string())
        .collect()
}

/// Every change of a document, in causal order: hash, actor, seq, deps, message (for failure
/// reports; messages hold the user and the save action, never answers).
fn describe_changes(household: &Household) -> Vec<String> {
    household
        .changes_since(&[])
        .into_iter()
        .map(|bytes| {
            let change = Change::from_bytes(bytes).expect("stored change decodes");
            let deps: Vec<String> = change.deps().iter().map(|d| short(&d.to_string()).to_string()).collect();
            format!(
                "    {} actor {} seq {} start_op {} ops {} deps [{}] {}",
                short(&change.hash().to_string()),
                &change.actor_id().to_hex_string()[..8],
                change.seq(),
                change.start_op(),
                change.len(),
                deps.join(","),
                change.message().unwrap_or_default()
            )
        })
        .collect()
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(8)]
}

fn short_uuid(id: Uuid) -> String {
    id.to_string()[..8].to_string()
}

/// Run one case; on failure, the message with the seed and the operation log.
fn run_case(seed: u64) -> Result<Stats, String> {
    let mut case: Option<Case> = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let c = case.insert(Case::new(seed));
        c.run();
    }));
    match result {
        Ok(()) => Ok(case.map(|c| c.stats).unwrap_or_default()),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            let log = case.map(|c| c.log).unwrap_or_default();
            Err(format!(
                "convergence model case with seed {seed} failed: {message}\n\
                 replay it with: PILAR_MODEL_SEED={seed} cargo test -p pilar-server --test convergence -- --nocapture\n\
                 operation log ({} lines):\n  {}",
                log.len(),
                log.join("\n  ")
            ))
        }
    }
}

#[test]
fn devices_and_server_converge_and_no_saved_change_is_lost_under_faults() {
    let started = Instant::now();
    if let Some(seed) = std::env::var("PILAR_MODEL_SEED").ok().and_then(|s| s.trim().parse::<u64>().ok()) {
        match run_case(seed) {
            Ok(stats) => println!("case {seed} passed: {stats:?}"),
            Err(report) => panic!("{report}"),
        }
        return;
    }
    let cases = cases_from_env();
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let totals: Mutex<Stats> = Mutex::new(Stats::default());
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cases {
                        return;
                    }
                    match run_case(i as u64) {
                        Ok(stats) => totals.lock().unwrap_or_else(|e| e.into_inner()).add(&stats),
                        Err(report) => failures.lock().unwrap_or_else(|e| e.into_inner()).push((i as u64, report)),
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    println!("{cases} case(s) in {:.1} s: {totals:?}", started.elapsed().as_secs_f64());
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(seed, _)| *seed);
    if let Some((_, report)) = failures.first() {
        let seeds: Vec<u64> = failures.iter().map(|(s, _)| *s).collect();
        panic!("{} of {cases} case(s) failed (seeds {seeds:?}); the first:\n{report}", failures.len());
    }
}
