//! A seeded mutation fuzzer on stable Rust, run as ordinary tests: whatever bytes arrive, sync-body
//! decoding, the server's change admission and form-input parsing must answer (a value, an error, a
//! verdict with a reason) and never panic. cargo-fuzz needs nightly; this needs only `cargo test`.
//!
//! Each target starts from its seed corpus (`sync-core/fuzz/corpus/<target>/`, checked in, plus
//! the same seeds built in memory), runs every corpus input as it is, then mutates inputs picked
//! from it: bit flips, interesting bytes and CBOR headers, inserts, deletions, splices, truncation,
//! and for admission crafted Automerge changes (odd paths, wrong types, huge strings, objects where
//! scalars belong, other actors, concurrent forks).
//!
//! - `PILAR_FUZZ_ITERATIONS`: mutated inputs per target (default 300, a few seconds in all).
//! - `PILAR_FUZZ_SEED`: the mutation seed (default fixed, so CI is reproducible); printed with the
//!   failing input as hex when a target panics, and the input is saved under the target dir.
//! - `PILAR_FUZZ_WRITE_CORPUS=1`: rewrite the seed files of the checked-in corpus.
//!
//! A longer run: `PILAR_FUZZ_ITERATIONS=200000 PILAR_FUZZ_SEED=$RANDOM cargo test --release -p
//! sync-core --test fuzz -- --nocapture`.

use automerge::legacy::{Key, ObjectId, OpId, OpType, SortedVec};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use sync_core::entry::{only_set, parse_answers, parse_json_answers};
use sync_core::form::{FormDefinition, MemberAnswers, Scope, ValidationContext, validate_household, validate_visit};
use sync_core::ids::{DistrictCode, KkNumber, Nik, NikContext, RegencyCode, Sex, VillageCode, check_kk, check_nik};
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, MemberId, NewVisit, VisitId};
use sync_core::sync::{
    PackPage, PackedHousehold, PullHousehold, PushHousehold, Pusher, Rejection, SyncRequest, SyncResponse, Verdict,
    admit, decode, encode,
};
use sync_core::value::FieldValue;
use time::macros::{date, datetime};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence on every platform and crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n.max(1))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")))
}

fn iterations() -> usize {
    env_number("PILAR_FUZZ_ITERATIONS").map(|n| n as usize).unwrap_or(300)
}

fn seed() -> u64 {
    env_number("PILAR_FUZZ_SEED").unwrap_or(0x5049_4c41_5231_3131)
}

/// Named seed inputs of a target.
type Seeds = fn() -> Vec<(String, Vec<u8>)>;
/// A new input from one of the corpus (given the whole corpus, for splicing).
type Mutator = fn(&mut Rng, &[u8], &[Vec<u8>]) -> Vec<u8>;

/// One fuzz target: its seed inputs, how to mutate an input, and what must never panic.
struct Target {
    name: &'static str,
    seeds: Seeds,
    mutate: Mutator,
    run: fn(&[u8]),
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// The checked-in corpus files of a target, by file name.
fn load_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(target)) else { return Vec::new() };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).unwrap_or_else(|err| panic!("read corpus file {name}: {err}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

thread_local! {
    /// While set, panics on this thread are recorded instead of printed (they are expected to be
    /// caught, and reported once by [`check`] if they matter).
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Run `f`, catching a panic as its message (with location) without printing it.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|last| *last.borrow_mut() = info.to_string());
            } else {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|_| LAST_PANIC.with(|last| last.take()))
}

/// Run one input; on a panic save the input and fail with everything needed to reproduce it.
fn check(target: &Target, input: &[u8], what: &str) {
    let Err(panic) = quietly(|| (target.run)(input)) else { return };
    let digest = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let saved = option_env!("CARGO_TARGET_TMPDIR").map(|dir| {
        let path = PathBuf::from(dir).join("fuzz-failures").join(target.name).join(format!("crash-{digest:016x}"));
        let written = path
            .parent()
            .map(std::fs::create_dir_all)
            .and_then(Result::ok)
            .and_then(|()| std::fs::write(&path, input).ok());
        if written.is_some() { path.display().to_string() } else { "(could not save it)".to_string() }
    });
    let shown = if input.len() > 4096 {
        format!("{}… ({} bytes in all)", hex(&input[..4096]), input.len())
    } else {
        hex(input)
    };
    panic!(
        "fuzz target {} panicked on {what} (PILAR_FUZZ_SEED={}): {panic}\nsaved to {}; once fixed, copy it into {}\ninput ({} bytes, hex): {shown}",
        target.name,
        seed(),
        saved.unwrap_or_else(|| "(no CARGO_TARGET_TMPDIR)".into()),
        corpus_dir(target.name).display(),
        input.len(),
    );
}

/// Run every corpus input, then `iterations()` mutated ones.
fn fuzz(target: &Target) {
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, input) in load_corpus(target.name).into_iter().chain((target.seeds)()) {
        if seen.insert(input.clone()) {
            check(target, &input, &format!("corpus input {name}"));
            corpus.push(input);
        }
    }
    assert!(!corpus.is_empty(), "target {} has no seed inputs", target.name);
    // Each target gets its own stream, so adding a target does not change the others' inputs.
    let salt = target.name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = Rng(seed() ^ salt);
    let started = std::time::Instant::now();
    let n = iterations();
    let mut skipped = 0;
    for i in 0..n {
        let base = rng.pick(&corpus).clone();
        // A mutation that trips a library while building the input (e.g. Automerge refusing to
        // encode a crafted change) yields no input; the target only ever sees finished bytes.
        let Ok(input) = quietly(|| (target.mutate)(&mut rng, &base, &corpus)) else {
            skipped += 1;
            continue;
        };
        check(target, &input, &format!("mutated input {i}"));
    }
    eprintln!(
        "fuzz {}: {} corpus inputs, {} mutated inputs in {:.1?} (seed {})",
        target.name,
        corpus.len(),
        n - skipped,
        started.elapsed(),
        seed()
    );
}

/// Byte values that make parsers take unusual paths (CBOR major types and lengths, limits).
const INTERESTING_BYTES: [u8; 16] =
    [0, 1, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x5f, 0x7f, 0x80, 0x9f, 0xbf, 0xfe, 0xff];

/// CBOR headers that claim more than any body holds, nest deeply, or break early.
fn interesting_cbor(rng: &mut Rng) -> Vec<u8> {
    match rng.below(7) {
        0 => vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0], // byte string of 2^64 - 16 bytes
        1 => vec![0x9b, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff], // huge array
        2 => vec![0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // huge map
        3 => vec![0x7a, 0xff, 0xff, 0xff, 0xff],                         // long text
        4 => vec![0x81; 1 + rng.below(600)],                             // nested arrays
        5 => vec![0xff],                                                 // a stray break
        _ => vec![0xc6 + rng.below(10) as u8],                           // a tag
    }
}

/// One to four stacked byte-level mutations of `input`, sometimes splicing in another input.
fn mutate_bytes(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        let at = rng.below(len + 1);
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                out[i] = *rng.pick(&INTERESTING_BYTES);
            }
            3 => {
                let n = 1 + rng.below(16);
                let bytes = rng.bytes(n);
                out.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let end = (at + 1 + rng.below(64)).min(len);
                out.drain(at.min(len - 1)..end);
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let piece = out[from..(from + 1 + rng.below(64)).min(len)].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, piece);
            }
            6 => out.truncate(at),
            7 => {
                let other = rng.pick(others);
                let cut = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[cut..]);
            }
            8 if len >= 8 => {
                let i = rng.below(len - 7);
                let random = rng.next();
                let value = *rng.pick(&[u64::MAX, 0, 1 << 63, u64::from(u32::MAX), random]);
                out[i..i + 8].copy_from_slice(&value.to_be_bytes());
            }
            9 => {
                let header = interesting_cbor(rng);
                out.splice(at..at, header);
            }
            _ => {
                // Repeat a stretch many times: size and repetition stress.
                if len > 0 {
                    let from = rng.below(len);
                    let piece = out[from..(from + 1 + rng.below(32)).min(len)].to_vec();
                    let times = 1 + rng.below(2000);
                    let block: Vec<u8> = piece.iter().copied().cycle().take(piece.len() * times).collect();
                    out.splice(at..at, block);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A seeded household: deterministic ids, time and changes
// ---------------------------------------------------------------------------------------------

const DEVICE: DeviceId = DeviceId(Uuid::from_u128(0x0000_5117_1a00_4000_8000_0000_0000_f022));
const OTHER_DEVICE: DeviceId = DeviceId(Uuid::from_u128(0x0000_5117_1a00_4000_8000_0000_0000_07e4));
const HOUSEHOLD: HouseholdId = HouseholdId(Uuid::from_u128(0x0000_5117_1a00_4000_8000_0000_0000_0001));
const MEMBER: MemberId = MemberId(Uuid::from_u128(0x0000_5117_1a00_4000_8000_0000_0000_0002));
const VISIT: VisitId = VisitId(Uuid::from_u128(0x0000_5117_1a00_4000_8000_0000_0000_0003));

fn form() -> &'static FormDefinition {
    FormDefinition::default_dtsen()
}

/// The versions the server knows: the built-in one.
fn forms() -> &'static sync_core::form::FormSet {
    static SET: std::sync::OnceLock<sync_core::form::FormSet> = std::sync::OnceLock::new();
    SET.get_or_init(sync_core::form::FormSet::built_in)
}

fn editor(device: DeviceId) -> Editor {
    Editor { user: "pkh.fuzz".into(), device, now: datetime!(2026-11-20 09:00 +8) }
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.into())
}

/// The seeded household's changes, each one save action: creation, then a member, a visit, more
/// answers. The server's stored copy holds the creation only.
struct Seeded {
    create: Vec<u8>,
    later: Vec<Vec<u8>>,
    stored: Vec<u8>,
    full: Vec<u8>,
}

fn seeded() -> &'static Seeded {
    static SEEDED: OnceLock<Seeded> = OnceLock::new();
    SEEDED.get_or_init(|| {
        let first = Edits {
            answers: BTreeMap::from([
                ("head_name".to_string(), Some(text("La Sintetis"))),
                ("village_code".to_string(), Some(text("73.14.01.1001"))),
                ("kk_number".to_string(), Some(text("7314010503159101"))),
            ]),
            ..Edits::default()
        };
        let (mut household, created) =
            Household::create(HOUSEHOLD, &form().key(), &editor(DEVICE), &first).expect("create");
        let stored = household.save();
        let member = BTreeMap::from([
            ("full_name".to_string(), text("Andi Sintetis")),
            ("sex".to_string(), FieldValue::Int(1)),
            ("relationship".to_string(), FieldValue::Int(1)),
            ("nik".to_string(), text("7314011503809101")),
        ]);
        let visit = NewVisit {
            id: VISIT,
            outcome: 2,
            lat: Some(-3.99),
            lon: Some(119.6),
            accuracy_m: Some(8.0),
            note: Some("catatan sintetis".into()),
            answers: BTreeMap::new(),
        };
        let steps = [
            Edits { add_members: vec![(MEMBER, member)], ..Edits::default() },
            Edits { visit: Some(visit), ..Edits::default() },
            Edits {
                answers: BTreeMap::from([
                    ("floor_area_m2".to_string(), Some(FieldValue::Int(36))),
                    ("roof_material".to_string(), Some(FieldValue::Int(2))),
                ]),
                ..Edits::default()
            },
        ];
        let later = steps
            .iter()
            .map(|edits| {
                let (_, saved) = household
                    .apply(&editor(DEVICE), "edit", edits, |_| Ok::<(), ()>(()))
                    .expect("apply")
                    .expect("accepted");
                saved.expect("a change").bytes
            })
            .collect();
        Seeded { create: created.bytes, later, stored, full: household.save() }
    })
}

/// One more save action on top of the stored household, by `device`.
fn edit_change(device: DeviceId, edits: &Edits) -> Vec<u8> {
    let mut household = Household::load(HOUSEHOLD, &seeded().stored, device).expect("load seeded");
    let (_, saved) =
        household.apply(&editor(device), "edit", edits, |_| Ok::<(), ()>(())).expect("apply").expect("accepted");
    saved.expect("a change").bytes
}

// ---------------------------------------------------------------------------------------------
// Target: sync bodies
// ---------------------------------------------------------------------------------------------

fn wire_messages() -> Vec<(String, Vec<u8>)> {
    let s = seeded();
    let changes = |list: &[Vec<u8>]| list.iter().cloned().map(ByteBuf::from).collect::<Vec<_>>();
    let request = SyncRequest {
        batch: Uuid::from_u128(7),
        cursors: BTreeMap::from([("73.14.01.1001".to_string(), 42), ("73.14.01.1002".to_string(), 0)]),
        push: vec![PushHousehold {
            household: HOUSEHOLD,
            village: Some("73.14.01.1001".into()),
            changes: changes(&[vec![s.create.clone()], s.later.clone()].concat()),
        }],
        max_changes: 5000,
    };
    let empty_request = SyncRequest { batch: Uuid::nil(), cursors: BTreeMap::new(), push: Vec::new(), max_changes: 0 };
    let response = SyncResponse {
        acknowledged: 3,
        rejected: vec![Rejection {
            household: HouseholdId(Uuid::from_u128(9)),
            code: "review_forbidden".into(),
            reason: "enumerators cannot write review fields; a supervisor reviews".into(),
        }],
        need_full: vec![HouseholdId(Uuid::from_u128(10))],
        pull: vec![PullHousehold { household: HOUSEHOLD, village: "73.14.01.1001".into(), changes: changes(&s.later) }],
        cursors: BTreeMap::from([("73.14.01.1001".to_string(), 57)]),
        has_more: true,
        villages: vec!["73.14.01.1001".into(), "73.14.01.1002".into()],
        forms: String::new(),
    };
    let page = PackPage {
        village: "73.14.01.1001".into(),
        seq: 99,
        households: vec![PackedHousehold { household: HOUSEHOLD, document: ByteBuf::from(s.full.clone()) }],
        next_after: Some(HOUSEHOLD),
        total: 2,
    };
    let last_page =
        PackPage { village: "73.14.01.1001".into(), seq: 0, households: Vec::new(), next_after: None, total: 1 };
    vec![
        ("request".into(), cbor(&request)),
        ("request-empty".into(), cbor(&empty_request)),
        ("response".into(), cbor(&response)),
        ("response-empty".into(), cbor(&SyncResponse::default())),
        ("pack-page".into(), cbor(&page)),
        ("pack-page-last".into(), cbor(&last_page)),
    ]
}

/// A wire message as plain CBOR (before compression).
fn cbor<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(message, &mut out).expect("encode cbor");
    out
}

/// Decode `body` as every sync message; whatever decodes must survive a round trip unchanged.
fn decode_every_message(body: &[u8]) {
    fn one<T>(body: &[u8])
    where
        T: serde::de::DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
    {
        for limit in [64, 1 << 20] {
            if let Ok(message) = decode::<T>(body, limit) {
                let again: T = decode(&encode(&message), 1 << 28).expect("a decoded message encodes and decodes again");
                assert_eq!(again, message, "round trip");
            }
        }
    }
    one::<SyncRequest>(body);
    one::<SyncResponse>(body);
    one::<PackPage>(body);
}

/// Target `wire_cbor`: mutated CBOR, compressed as a client would, then decoded.
fn run_wire_cbor(input: &[u8]) {
    let body = zstd::bulk::compress(input, 1).expect("compress");
    decode_every_message(&body);
}

/// Target `wire_zstd`: mutated compressed bodies (and anything else), decoded as they come.
fn run_wire_zstd(input: &[u8]) {
    decode_every_message(input);
}

fn wire_cbor_seeds() -> Vec<(String, Vec<u8>)> {
    wire_messages()
}

fn wire_zstd_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = wire_messages()
        .into_iter()
        .map(|(name, cbor)| (name, zstd::bulk::compress(&cbor, 3).expect("compress")))
        .collect();
    seeds.push(("not-zstd".into(), b"this is not a sync message".to_vec()));
    seeds.push(("empty".into(), Vec::new()));
    // A small body that expands a long way (the decoder must stop at its limit).
    seeds.push(("bomb".into(), zstd::bulk::compress(&vec![0u8; 4 << 20], 19).expect("compress")));
    seeds
}

#[test]
fn sync_bodies_never_panic_when_decoded_from_mutated_cbor() {
    fuzz(&Target { name: "wire_cbor", seeds: wire_cbor_seeds, mutate: mutate_bytes, run: run_wire_cbor });
}

#[test]
fn sync_bodies_never_panic_when_decoded_from_mutated_raw_bytes() {
    fuzz(&Target { name: "wire_zstd", seeds: wire_zstd_seeds, mutate: mutate_bytes, run: run_wire_zstd });
}

// ---------------------------------------------------------------------------------------------
// Target: change admission
// ---------------------------------------------------------------------------------------------

/// One admission input: whether the server already stores the household (its creation), who
/// pushes (see [`pusher_for`]; stored under its old name `role`, so the corpus still reads), and
/// the pushed changes.
#[derive(Debug, Serialize, Deserialize)]
struct AdmitCase {
    stored: bool,
    #[serde(rename = "role")]
    pusher: u8,
    changes: Vec<ByteBuf>,
}

/// Who pushes a case: 0 the changes' own user; 1 another user on the same device (every change
/// names the wrong user); 2 the right user on a device registered a week after the changes.
fn pusher_for(code: u8) -> Pusher<'static> {
    let registered = match code % 3 {
        2 => datetime!(2026-11-27 09:00 +8),
        _ => datetime!(2026-11-01 09:00 +8),
    };
    let user = if code % 3 == 1 { "pkh.lain" } else { "pkh.fuzz" };
    Pusher { user, device: DEVICE, registered_at: registered, now: datetime!(2026-11-27 10:00 +8) }
}

impl AdmitCase {
    fn new(stored: bool, pusher: u8, changes: Vec<Vec<u8>>) -> AdmitCase {
        AdmitCase { stored, pusher, changes: changes.into_iter().map(ByteBuf::from).collect() }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("encode case");
        out
    }
}

fn admit_seeds() -> Vec<(String, Vec<u8>)> {
    let s = seeded();
    let answers = |pairs: &[(&str, FieldValue)]| Edits {
        answers: pairs.iter().map(|(k, v)| (k.to_string(), Some(v.clone()))).collect(),
        ..Edits::default()
    };
    let review = Edits { review: BTreeMap::from([("status".to_string(), Some(text("approved")))]), ..Edits::default() };
    let cases = [
        ("new", AdmitCase::new(false, 0, vec![s.create.clone()])),
        ("new-with-history", AdmitCase::new(false, 0, [vec![s.create.clone()], s.later.clone()].concat())),
        ("edits", AdmitCase::new(true, 0, s.later.clone())),
        ("already-known", AdmitCase::new(true, 0, vec![s.create.clone()])),
        ("missing-history", AdmitCase::new(true, 0, vec![s.later[1].clone()])),
        ("foreign-actor", AdmitCase::new(true, 0, vec![edit_change(OTHER_DEVICE, &answers(&[("rt", text("001"))]))])),
        ("review-by-enumerator", AdmitCase::new(true, 0, vec![edit_change(DEVICE, &review)])),
        ("review-by-supervisor", AdmitCase::new(true, 1, vec![edit_change(DEVICE, &review)])),
        (
            "wrong-type",
            AdmitCase::new(true, 0, vec![edit_change(DEVICE, &answers(&[("floor_area_m2", text("luas"))]))]),
        ),
        (
            "unknown-field",
            AdmitCase::new(true, 2, vec![edit_change(DEVICE, &answers(&[("warna", FieldValue::Int(1))]))]),
        ),
        (
            "server-only-field",
            AdmitCase::new(true, 0, vec![edit_change(DEVICE, &answers(&[("dtsen_decile", FieldValue::Int(1))]))]),
        ),
        ("garbage", AdmitCase::new(true, 0, vec![b"not an automerge change".to_vec()])),
    ];
    cases.into_iter().map(|(name, case)| (name.to_string(), case.encode())).collect()
}

/// Keys worth writing: form fields of every scope, layout keys, and odd ones.
fn interesting_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: Vec<String> = [Scope::Household, Scope::Member, Scope::Visit]
            .into_iter()
            .flat_map(|scope| form().fields(scope).iter().map(|f| f.name.clone()))
            .collect();
        keys.extend(
            ["schema", "form", "household_id", "answers", "members", "visits", "review", "links", "photos"]
                .map(String::from),
        );
        keys.extend(
            ["at", "user", "device", "outcome", "removed_at", "status", "approved_heads", "merged_into"]
                .map(String::from),
        );
        keys.extend(["", " ", "__proto__", "ÿ", "名前", "a.b", "members.x", "\u{0}"].map(String::from));
        keys.push("k".repeat(5000));
        keys.push(MEMBER.to_string());
        keys.push(VISIT.to_string());
        keys
    })
}

fn random_scalar(rng: &mut Rng) -> ScalarValue {
    match rng.below(12) {
        0 => ScalarValue::Int(*rng.pick(&[0, 1, -1, 2, 98, i64::MAX, i64::MIN, 1 << 40])),
        1 => ScalarValue::Int(rng.next() as i64),
        2 => ScalarValue::Uint(rng.next()),
        3 => ScalarValue::F64(*rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e308, -3.99, 36.0])),
        4 => ScalarValue::Str("".into()),
        5 => ScalarValue::Str(
            rng.pick(&["7314011503809101", "73.14.01.1001", "1985-07-12", "ya", "2", "La Sintetis"]).to_string().into(),
        ),
        6 => {
            // Huge strings: now and then a quarter of a megabyte.
            let n = if rng.one_in(20) { 256 * 1024 } else { rng.below(3000) };
            ScalarValue::Str("x".repeat(n).into())
        }
        7 => ScalarValue::Boolean(rng.one_in(2)),
        8 => ScalarValue::Null,
        9 => {
            let n = rng.below(64);
            ScalarValue::Bytes(rng.bytes(n))
        }
        10 => ScalarValue::counter(rng.next() as i64),
        _ => ScalarValue::Timestamp(rng.next() as i64),
    }
}

/// A change written with Automerge directly on top of `base`: one to six random operations in
/// random places of the household layout (or outside it), by `actor`.
fn craft_change(rng: &mut Rng, base: &Automerge, actor: ActorId) -> Option<Vec<u8>> {
    let mut doc = if rng.one_in(8) {
        // A fork from an older version: concurrent with what the base holds since.
        let heads = base.get_changes(&[]).first().map(|c| vec![c.hash()]).unwrap_or_default();
        base.fork_at(&heads).ok()?
    } else {
        base.fork()
    };
    doc.set_actor(actor);
    let mut objects: Vec<(ObjId, ObjType)> = vec![(ROOT, ObjType::Map)];
    for key in ["answers", "members", "visits", "review", "links", "photos"] {
        if let Ok(Some((_, id))) = doc.get(ROOT, key) {
            objects.push((id, ObjType::Map));
        }
    }
    let keys = interesting_keys();
    let mut tx = doc.transaction();
    for _ in 0..1 + rng.below(6) {
        let (obj, kind) = rng.pick(&objects).clone();
        let key = rng.pick(keys).clone();
        let is_seq = matches!(kind, ObjType::List | ObjType::Text);
        let made = match rng.below(8) {
            0..=2 if !is_seq => tx.put(&obj, key.as_str(), random_scalar(rng)).map(|_| None),
            3 if !is_seq => {
                let kind = *rng.pick(&[ObjType::Map, ObjType::Map, ObjType::List, ObjType::Text]);
                tx.put_object(&obj, key.as_str(), kind).map(|id| Some((id, kind)))
            }
            4 if !is_seq => tx.delete(&obj, key.as_str()).map(|_| None),
            5 if !is_seq => tx.increment(&obj, key.as_str(), rng.next() as i64).map(|_| None),
            _ if kind == ObjType::Text => tx.splice_text(&obj, 0, 0, "teks sintetis").map(|_| None),
            _ if kind == ObjType::List => {
                if rng.one_in(3) {
                    tx.insert_object(&obj, 0, ObjType::Map).map(|id| Some((id, ObjType::Map)))
                } else {
                    tx.insert(&obj, 0, random_scalar(rng)).map(|_| None)
                }
            }
            _ => {
                // A fresh member or visit map keyed by a new uuid, as a device adds one.
                let parent = if rng.one_in(2) { "members" } else { "visits" };
                match tx.get(ROOT, parent) {
                    Ok(Some((_, parent))) => {
                        let id = Uuid::from_u128(u128::from(rng.next()) << 64 | u128::from(rng.next())).to_string();
                        tx.put_object(&parent, id.as_str(), ObjType::Map).map(|id| Some((id, ObjType::Map)))
                    }
                    _ => Ok(None),
                }
            }
        };
        // Operations Automerge refuses (a counter increment on a string...) are simply skipped.
        if let Ok(Some(object)) = made {
            objects.push(object);
        }
    }
    let message = match rng.below(4) {
        0 => "not json".to_string(),
        1 => String::new(),
        2 => "u".repeat(rng.below(4000)),
        _ => r#"{"u":"pkh.fuzz","a":"edit"}"#.to_string(),
    };
    // Extreme times come from `mutate_expanded`: Automerge itself will not commit them.
    let random = (rng.next() >> 20) as i64;
    let time = *rng.pick(&[0, 1_795_000_000_000, random]);
    let (hash, _) = tx.commit_with(CommitOptions::default().with_message(message).with_time(time));
    let hash = hash?;
    doc.get_change_by_hash(&hash).map(|mut c| c.bytes().into_owned())
}

/// Rewrite a change at the level of its decoded fields (header and operations) and encode it
/// again: what a hand-made client could send, past everything Automerge's own API enforces.
fn mutate_expanded(rng: &mut Rng, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut change = automerge::Change::from_bytes(bytes.to_vec()).ok()?.decode();
    let actor = change.actor_id.clone();
    for _ in 0..1 + rng.below(3) {
        let random = rng.next();
        let ops = change.operations.len();
        match rng.below(10) {
            0 => change.time = *rng.pick(&[i64::MIN, i64::MAX, -1, 0, random as i64, 253_402_300_800_000]),
            1 => change.seq = *rng.pick(&[0, 2, change.seq + 1, change.seq.saturating_sub(1), u64::MAX, random]),
            2 => {
                let start = *rng.pick(&[1, 2, u64::MAX, 1 << 53, change.start_op.get() + 1000, random]);
                change.start_op = NonZeroU64::new(start).unwrap_or(NonZeroU64::MIN);
            }
            3 => match rng.below(3) {
                0 => change.deps.clear(),
                1 => {
                    let hash: [u8; 32] = rng.bytes(32).try_into().ok()?;
                    change.deps.push(automerge::ChangeHash(hash));
                }
                _ => {
                    let first = change.deps.first().copied();
                    change.deps.extend(first);
                }
            },
            4 => change.message = rng.pick(&[None, Some(String::new()), Some("m".repeat(100_000))]).clone(),
            5 => change.extra_bytes = rng.bytes(random as usize % 32),
            6 | 7 if ops > 0 => {
                let op = &mut change.operations[rng.below(ops)];
                match rng.below(7) {
                    0 => op.action = OpType::Put(random_scalar(rng)),
                    1 => {
                        op.action =
                            OpType::Make(*rng.pick(&[ObjType::Map, ObjType::List, ObjType::Text, ObjType::Table]))
                    }
                    2 => op.action = OpType::Delete,
                    3 => op.action = OpType::Increment(random as i64),
                    4 => op.key = Key::Map(rng.pick(interesting_keys()).as_str().into()),
                    5 => op.insert = !op.insert,
                    _ => {
                        op.obj =
                            if rng.one_in(3) { ObjectId::Root } else { ObjectId::Id(OpId(random % 40, actor.clone())) };
                        op.pred = SortedVec::from(vec![OpId(rng.below(40) as u64, actor.clone())]);
                    }
                }
            }
            8 if ops > 0 => {
                let i = rng.below(ops);
                if rng.one_in(2) {
                    change.operations.remove(i);
                } else {
                    let copy = change.operations[i].clone();
                    change.operations.insert(i, copy);
                }
            }
            _ => change.actor_id = OTHER_DEVICE.actor(),
        }
    }
    change.hash = None;
    let mut encoded = automerge::Change::from(change);
    Some(encoded.bytes().into_owned())
}

fn mutate_admit(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let Ok(mut case) = ciborium::from_reader::<AdmitCase, _>(input) else {
        return mutate_bytes(rng, input, others);
    };
    for _ in 0..1 + rng.below(3) {
        match rng.below(10) {
            0 => case.stored = !case.stored,
            1 => case.pusher = rng.below(3) as u8,
            2 if !case.changes.is_empty() => {
                let i = rng.below(case.changes.len());
                case.changes.remove(i);
            }
            3 if !case.changes.is_empty() => {
                let i = rng.below(case.changes.len());
                let copy = case.changes[i].clone();
                case.changes.insert(rng.below(case.changes.len() + 1), copy);
            }
            4 if case.changes.len() > 1 => {
                let (a, b) = (rng.below(case.changes.len()), rng.below(case.changes.len()));
                case.changes.swap(a, b);
            }
            5 if !case.changes.is_empty() => {
                let i = rng.below(case.changes.len());
                let other_changes: Vec<Vec<u8>> = case.changes.iter().map(|c| c.to_vec()).collect();
                case.changes[i] = ByteBuf::from(mutate_bytes(rng, &case.changes[i], &other_changes));
            }
            6 if !case.changes.is_empty() => {
                let i = rng.below(case.changes.len());
                if let Some(bytes) = mutate_expanded(rng, &case.changes[i]) {
                    case.changes[i] = ByteBuf::from(bytes);
                }
            }
            7 => {
                // A change from another case.
                if let Ok(other) = ciborium::from_reader::<AdmitCase, _>(rng.pick(others).as_slice())
                    && !other.changes.is_empty()
                {
                    let change = rng.pick(&other.changes).clone();
                    case.changes.push(change);
                }
            }
            _ => {
                // A crafted change on top of what the server would hold.
                let s = seeded();
                let mut base = Automerge::load(&s.stored).expect("seeded document loads");
                if rng.one_in(3) {
                    let _ = base
                        .apply_changes(s.later.iter().filter_map(|b| automerge::Change::from_bytes(b.clone()).ok()));
                }
                let actor = if rng.one_in(10) { OTHER_DEVICE.actor() } else { DEVICE.actor() };
                if let Some(change) = craft_change(rng, &base, actor) {
                    if !case.stored && case.changes.is_empty() {
                        case.changes.push(ByteBuf::from(s.create.clone()));
                    }
                    case.changes.push(ByteBuf::from(change));
                }
            }
        }
    }
    case.encode()
}

/// How often each verdict came up, to show the fuzzer reaches every branch.
static VERDICTS: [AtomicUsize; 4] =
    [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];

fn run_admit(input: &[u8]) {
    let Ok(case) = ciborium::from_reader::<AdmitCase, _>(input) else { return };
    let s = seeded();
    let pushed: Vec<Vec<u8>> = case.changes.iter().map(|c| c.to_vec()).collect();
    let existing = case.stored.then(|| Household::load(HOUSEHOLD, &s.stored, DEVICE).expect("seeded document loads"));
    let verdict = admit(existing, HOUSEHOLD, &pushed, &pusher_for(case.pusher), forms());
    let slot = match &verdict {
        Verdict::Admit(admitted) => {
            // What the server does next with an admitted household must work too.
            assert!(!admitted.new_changes.is_empty(), "an admission stores at least one change");
            let household = &admitted.household;
            household.check_layout().expect("an admitted household keeps the layout");
            let state = household.state();
            let _ = household.review_status(&state);
            let _ = household.conflicts();
            let saved = household.save();
            let reloaded = Household::load(HOUSEHOLD, &saved, DEVICE).expect("an admitted household saves and loads");
            assert_eq!(reloaded.heads(), household.heads());
            0
        }
        Verdict::AlreadyKnown => 1,
        Verdict::NeedFull => 2,
        Verdict::Reject { code, reason } => {
            assert!(!code.is_empty() && !reason.is_empty(), "a rejection has a code and a reason");
            assert!(!reason.starts_with(char::is_uppercase), "reasons are lowercase sentences: {reason}");
            3
        }
    };
    VERDICTS[slot].fetch_add(1, Ordering::Relaxed);
    // A device receiving the same changes from the server must not panic either.
    let mut device_copy = Household::load(HOUSEHOLD, &s.stored, OTHER_DEVICE).expect("seeded document loads");
    if device_copy.apply_changes(&pushed).is_ok() && device_copy.check_layout().is_ok() {
        let state = device_copy.state();
        let _ = device_copy.review_status(&state);
        let _ = device_copy.conflicts();
    }
}

#[test]
fn change_admission_never_panics_and_every_refusal_has_a_reason() {
    fuzz(&Target { name: "admit", seeds: admit_seeds, mutate: mutate_admit, run: run_admit });
    let [admitted, known, need_full, rejected] = VERDICTS.each_ref().map(|v| v.load(Ordering::Relaxed));
    eprintln!("admit verdicts: {admitted} admitted, {known} already known, {need_full} need full, {rejected} rejected");
    assert!(admitted > 0 && known > 0 && need_full > 0 && rejected > 0, "every verdict was reached");
}

// ---------------------------------------------------------------------------------------------
// Target: form input parsing
// ---------------------------------------------------------------------------------------------

/// Text fragments that make input parsers take unusual paths.
const TOKENS: [&str; 40] = [
    "=",
    "+",
    ",",
    ".",
    "-",
    " ",
    "\n",
    "\t",
    "1e308",
    "-1e400",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "٣",
    "İ",
    "ß",
    "ǅ",
    "\u{301}",
    "🙂",
    "\u{0}",
    "\u{feff}",
    "[1,4]",
    r#"{"a":1}"#,
    "null",
    "true",
    "ya",
    "tidak",
    "1+4+16",
    "73.14.01.1001",
    "7314011001",
    "7314015207859001",
    "2026-02-30",
    "98",
    "genteng",
    "floor_area_m2=",
    "members.",
];

fn mutate_text(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    if rng.one_in(2) {
        return mutate_bytes(rng, input, others);
    }
    let mut out = String::from_utf8_lossy(input).into_owned();
    for _ in 0..1 + rng.below(3) {
        let mut at = rng.below(out.len() + 1);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        let token = match rng.below(6) {
            0 => rng.pick(interesting_keys()).clone(),
            1 => "9".repeat(1 + rng.below(40)),
            2 if rng.one_in(10) => "7".repeat(100_000),
            _ => rng.pick(&TOKENS).to_string(),
        };
        out.insert_str(at, &token);
    }
    out.into_bytes()
}

fn form_input_seeds() -> Vec<(String, Vec<u8>)> {
    [
        ("select-code", "roof_material=2"),
        ("select-label", "roof_material=Genteng"),
        ("multi-sum", "1+4"),
        ("nik", "7314015207859001"),
        ("nik-spaced", " 7314 0152.0785-9001 "),
        ("kk", "7314-0101-0120-9001"),
        ("village-dotted", "73.14.01.1001"),
        ("village-digits", "7314011001"),
        ("district", "73.14.01"),
        ("regency", "73.14"),
        ("decimal-comma", "-3,99"),
        ("date", "1985-07-12"),
        ("yes", "ya"),
        ("answers-lines", "floor_area_m2=36\nroof_material=2\nhead_name=La Sintetis\nmember_count=3"),
        ("json-answers", r#"{"floor_area_m2": 36, "id_documents": [1, 4], "rt": 3, "latitude": -3.99}"#),
        ("member-lines", "full_name=Andi Sintetis\nsex=1\nnik=7314011503809101\nbirth_date=1980-03-15\nrelationship=1"),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
    .collect()
}

/// `name=value` pairs, one a line (a value may contain `=`).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|line| line.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string()))).collect()
}

fn run_form_input(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let form = form();
    let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let today = date!(2026 - 11 - 20);
    for scope in [Scope::Household, Scope::Member, Scope::Visit] {
        for field in form.fields(scope) {
            let _ = field.parse_input(&text);
            if let Some(value) = &json {
                let _ = field.coerce_json(value);
            }
        }
    }
    // The entry paths a save takes: parse every pair, then validate what parsed.
    let lines = pairs(&text);
    let parsed = |scope| {
        let from_lines = parse_answers(form, scope, &lines).ok();
        let from_json = json.as_ref().and_then(|v| v.as_object()).and_then(|o| parse_json_answers(form, scope, o).ok());
        from_json.or(from_lines).map(only_set).unwrap_or_default()
    };
    let household = parsed(Scope::Household);
    let member = parsed(Scope::Member);
    let visit = parsed(Scope::Visit);
    let members = [MemberAnswers { key: "1".into(), answers: &member }];
    for complete in [false, true] {
        let ctx = ValidationContext { today, complete };
        for report in
            [validate_household(form, &household, &members, &ctx), validate_visit(form, &visit, &household, &ctx)]
        {
            let _ = report.is_blocking();
        }
    }
    // Identifiers: parse, check with and without context, and read every part of a valid one.
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let leaks = |message: &str| digits.len() >= 12 && message.contains(&digits);
    // Captured birth dates as validation builds them: a valid date, some parts unknown (98).
    let born = |year, month, day| Some(sync_core::ids::BirthDate { year, month, day });
    let contexts = [
        NikContext::new(today),
        NikContext { sex: Some(Sex::Female), birth_date: born(2000, Some(2), Some(29)), today },
        NikContext { sex: Some(Sex::Male), birth_date: born(9999, Some(12), None), today },
        NikContext { sex: None, birth_date: born(1900, None, None), today },
    ];
    for ctx in &contexts {
        let (nik, findings) = check_nik(&text, ctx);
        assert!(!findings.iter().any(|f| leaks(&f.message)), "a nik finding repeats the whole number");
        if let Some(nik) = nik {
            let _ = (nik.sex(), nik.birth_day(), nik.birth_month(), nik.inferred_birth_year(today), nik.masked());
            let _ = (nik.district_prefix(), nik.serial());
            assert!(!leaks(&format!("{nik:?}")), "Debug of a nik masks it");
        }
    }
    if let Err(e) = Nik::parse(&text) {
        assert!(!leaks(&e.to_string()), "a nik error repeats the whole number");
    }
    let (kk, findings) = check_kk(&text, today);
    assert!(!findings.iter().any(|f| leaks(&f.message)), "a kk finding repeats the whole number");
    if let Some(kk) = kk {
        let _ = (kk.recorded_day(), kk.recorded_month(), kk.inferred_recorded_year(today), kk.masked(), kk.serial());
    }
    let _ = KkNumber::parse(&text);
    for code in [VillageCode::parse(&text), VillageCode::parse_format_only(&text)].into_iter().flatten() {
        let _ = (code.district(), code.regency(), code.province_code(), code.kind(), code.name(), code.is_known());
    }
    for code in [DistrictCode::parse(&text), DistrictCode::parse_format_only(&text)].into_iter().flatten() {
        let _ = (code.regency(), code.province_code(), code.name(), code.is_known());
    }
    for code in [RegencyCode::parse(&text), RegencyCode::parse_format_only(&text)].into_iter().flatten() {
        let _ = (code.province_code(), code.is_city(), code.name(), code.is_known());
    }
}

#[test]
fn form_input_parsing_never_panics_and_never_repeats_a_whole_identifier() {
    fuzz(&Target { name: "form_input", seeds: form_input_seeds, mutate: mutate_text, run: run_form_input });
}

// ---------------------------------------------------------------------------------------------
// The checked-in corpus
// ---------------------------------------------------------------------------------------------

/// `PILAR_FUZZ_WRITE_CORPUS=1 cargo test -p sync-core --test fuzz` rewrites the seed files;
/// saved failures (`crash-*`) stay. Without the variable this checks every target has a corpus.
#[test]
fn every_target_has_a_checked_in_seed_corpus() {
    let targets: [(&str, Seeds); 4] = [
        ("wire_cbor", wire_cbor_seeds),
        ("wire_zstd", wire_zstd_seeds),
        ("admit", admit_seeds),
        ("form_input", form_input_seeds),
    ];
    let write = std::env::var_os("PILAR_FUZZ_WRITE_CORPUS").is_some();
    for (target, seeds) in targets {
        let dir = corpus_dir(target);
        if write {
            std::fs::create_dir_all(&dir).expect("create corpus dir");
            for (name, bytes) in seeds() {
                std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write corpus file");
            }
        }
        let files = load_corpus(target);
        assert!(
            files.iter().any(|(name, _)| name.starts_with("seed-")),
            "{} has no seed files; run PILAR_FUZZ_WRITE_CORPUS=1 cargo test -p sync-core --test fuzz",
            dir.display()
        );
    }
}
