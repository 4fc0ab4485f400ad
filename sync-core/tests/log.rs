//! Changes received for a household the device holds go into the household's log with its
//! registers, not into a re-saved document: lists and searches see them at once, loading the
//! household applies them, a local save stores the document whole again, a long log is folded in,
//! and a damaged logged change is found like a damaged document.

use std::collections::BTreeMap;
use sync_core::entry;
use sync_core::exchange::pull_from_store;
use sync_core::form::FormDefinition;
use sync_core::ids::VillageCode;
use sync_core::model::{DeviceId, Edits, HouseholdId};
use sync_core::store::{DB_FILE, DeviceIdentity, DeviceStore, LOG_LIMIT, ListFilter};
use sync_core::value::FieldValue;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

const VILLAGE: &str = "73.14.01.1001"; // Bilokka, Panca Lautang, Sidenreng Rappang

struct Device {
    dir: TempDir,
    store: DeviceStore,
}

fn device(user: &str) -> Device {
    let dir = TempDir::new().expect("temp dir");
    let identity = DeviceIdentity {
        device: DeviceId::random(),
        user: user.to_string(),
        form: FormDefinition::default_dtsen().key(),
    };
    let village = VillageCode::parse(VILLAGE).expect("real village");
    let store = DeviceStore::create(dir.path(), &identity, &[village], datetime!(2026-11-01 08:00 +8)).expect("create");
    Device { dir, store }
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_string())
}

fn add_household(d: &mut Device, head: &str) -> HouseholdId {
    let answers = BTreeMap::from([("head_name".to_string(), text(head)), ("rt".to_string(), text("003"))]);
    let village = VillageCode::parse(VILLAGE).expect("village");
    let at = datetime!(2026-11-02 09:00 +8);
    entry::add_household(&mut d.store, FormDefinition::default_dtsen(), &village, answers, Vec::new(), at)
        .expect("add household")
        .household
}

fn set(d: &mut Device, id: HouseholdId, field: &str, value: FieldValue, at: OffsetDateTime) {
    let edits = Edits { answers: BTreeMap::from([(field.to_string(), Some(value))]), ..Edits::default() };
    entry::save(&mut d.store, FormDefinition::default_dtsen(), id, "edit", &edits, at).expect("save");
}

fn logged(d: &Device, id: HouseholdId) -> i64 {
    let conn = rusqlite::Connection::open(d.dir.path().join(DB_FILE)).expect("open");
    conn.query_row("SELECT count(*) FROM household_log WHERE household_id = ?1", [id.to_string()], |r| r.get(0))
        .expect("count")
}

/// `a` holds a household that `b` received from it.
fn shared() -> (Device, Device, HouseholdId) {
    let mut a = device("pkh.a");
    let mut b = device("tksk.b");
    let id = add_household(&mut a, "Wa Ode Sintetis");
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 10:00 +8)).expect("exchange");
    (a, b, id)
}

#[test]
fn a_received_change_is_logged_and_lists_and_searches_see_it_at_once() {
    let (mut a, mut b, id) = shared();
    set(&mut a, id, "head_name", text("La Sintetis"), datetime!(2026-11-02 11:00 +8));
    let report = pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 12:00 +8)).expect("exchange");
    assert_eq!((report.changes_applied, report.households_changed), (1, 1));
    assert_eq!(logged(&b, id), 1, "the change went into the log");
    let listed = b.store.list(&ListFilter::default()).expect("list");
    assert_eq!(listed[0].head_name.as_deref(), Some("La Sintetis"));
    assert_eq!(b.store.search("la sintetis", 10).expect("search").len(), 1);
    let loaded = b.store.load(id).expect("load").household;
    assert_eq!(loaded.heads(), a.store.load(id).expect("load").household.heads());
    assert_eq!(loaded.state(), a.store.load(id).expect("load").household.state());
    // A local save stores the document whole again.
    set(&mut b, id, "bedrooms", FieldValue::Int(2), datetime!(2026-11-02 13:00 +8));
    assert_eq!(logged(&b, id), 0, "the save folded the log into the document");
    pull_from_store(&b.store, &mut a.store, datetime!(2026-11-02 14:00 +8)).expect("exchange");
    assert_eq!(b.store.load(id).expect("load").household.state(), a.store.load(id).expect("load").household.state());
}

#[test]
fn concurrent_edits_received_into_the_log_count_as_a_conflict() {
    let (mut a, mut b, id) = shared();
    set(&mut a, id, "bedrooms", FieldValue::Int(2), datetime!(2026-11-02 11:00 +8));
    set(&mut b, id, "bedrooms", FieldValue::Int(3), datetime!(2026-11-02 11:00 +8));
    let report = pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 12:00 +8)).expect("exchange");
    assert_eq!(report.new_conflicts, 1);
    assert_eq!(logged(&b, id), 1);
    let listed = b.store.list(&ListFilter::default()).expect("list");
    assert_eq!(listed[0].conflicts, 1, "{listed:?}");
    assert_eq!(b.store.load(id).expect("load").household.conflicts().len(), 1);
}

#[test]
fn a_log_past_its_limit_is_folded_into_the_document() {
    let (mut a, mut b, id) = shared();
    let mut at = datetime!(2026-11-02 11:00 +8);
    for round in 0..=LOG_LIMIT {
        at += time::Duration::minutes(1);
        set(&mut a, id, "bedrooms", FieldValue::Int(1 + round % 9), at);
        pull_from_store(&a.store, &mut b.store, at).expect("exchange");
    }
    assert!(logged(&b, id) < LOG_LIMIT, "the log was folded in: {}", logged(&b, id));
    assert_eq!(b.store.load(id).expect("load").household.state(), a.store.load(id).expect("load").household.state());
}

#[test]
fn a_damaged_logged_change_is_found_like_a_damaged_document() {
    let (mut a, mut b, id) = shared();
    set(&mut a, id, "bedrooms", FieldValue::Int(2), datetime!(2026-11-02 11:00 +8));
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 12:00 +8)).expect("exchange");
    assert_eq!(logged(&b, id), 1);
    {
        let conn = rusqlite::Connection::open(b.dir.path().join(DB_FILE)).expect("open");
        let mut change: Vec<u8> = conn.query_row("SELECT change FROM household_log", [], |r| r.get(0)).expect("logged");
        let end = change.len();
        change[end - 3..].copy_from_slice(&[0, 0, 0]);
        conn.execute("UPDATE household_log SET change = ?1", [change]).expect("damage");
    }
    assert!(b.store.load(id).is_err(), "the household does not load");
    let check = b.store.check(false, datetime!(2026-11-02 13:00 +8)).expect("check");
    assert_eq!(check.damaged.iter().map(|(h, _)| *h).collect::<Vec<_>>(), vec![id]);
    let edits =
        Edits { answers: BTreeMap::from([("bedrooms".to_string(), Some(FieldValue::Int(4)))]), ..Edits::default() };
    let refused =
        entry::save(&mut b.store, FormDefinition::default_dtsen(), id, "edit", &edits, datetime!(2026-11-02 13:00 +8));
    assert!(refused.is_err(), "a save waits for the repair");
    assert!(b.store.awaits_repair(id).expect("repairs"), "listed for repair from the server");
}

#[test]
fn received_member_changes_reach_the_people_search_at_once() {
    let (mut a, mut b, id) = shared();
    let member = sync_core::model::MemberId::random();
    let fields = |name: &str| {
        BTreeMap::from([
            ("seq".to_string(), FieldValue::Int(1)),
            ("full_name".to_string(), text(name)),
            ("sex".to_string(), FieldValue::Int(2)),
            ("relationship".to_string(), FieldValue::Int(1)),
            ("presence".to_string(), FieldValue::Int(1)),
        ])
    };
    let found = |d: &Device, name: &str| d.store.search(name, 10).expect("search").len();
    let save = |d: &mut Device, edits: Edits, at: OffsetDateTime| {
        entry::save(&mut d.store, FormDefinition::default_dtsen(), id, "member", &edits, at).expect("save");
    };
    let add = Edits { add_members: vec![(member, fields("Besse Rekaan"))], ..Edits::default() };
    save(&mut a, add, datetime!(2026-11-02 11:00 +8));
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 11:30 +8)).expect("exchange");
    assert_eq!(logged(&b, id), 1, "the member came through the log");
    assert_eq!(found(&b, "besse rekaan"), 1, "an added member is searchable");
    // A change that writes no member leaves the people rows as they are.
    set(&mut a, id, "bedrooms", FieldValue::Int(2), datetime!(2026-11-02 12:00 +8));
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 12:30 +8)).expect("exchange");
    assert_eq!(found(&b, "besse rekaan"), 1);
    let rename = Edits {
        edit_members: vec![(member, BTreeMap::from([("full_name".to_string(), Some(text("Besse Contoh")))]))],
        ..Edits::default()
    };
    save(&mut a, rename, datetime!(2026-11-02 13:00 +8));
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 13:30 +8)).expect("exchange");
    assert_eq!(
        (found(&b, "besse rekaan"), found(&b, "besse contoh")),
        (0, 1),
        "a renamed member is found by the new name"
    );
    let remove = Edits { remove_members: vec![(member, "pindah".to_string())], ..Edits::default() };
    save(&mut a, remove, datetime!(2026-11-02 14:00 +8));
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 14:30 +8)).expect("exchange");
    assert_eq!(logged(&b, id), 4, "every change came through the log");
    assert_eq!(found(&b, "besse contoh"), 0, "a removed member is no longer found");
}

#[test]
fn registers_stored_as_cbor_by_an_earlier_version_still_take_received_changes_into_the_log() {
    let (mut a, mut b, id) = shared();
    // Write b's registers as earlier versions stored them (CBOR of the same registers).
    {
        let registers = b.store.load(id).expect("load").household.registers().expect("registers");
        let mut cbor = Vec::new();
        ciborium::into_writer(&registers, &mut cbor).expect("cbor");
        let conn = rusqlite::Connection::open(b.dir.path().join(DB_FILE)).expect("open");
        assert_eq!(conn.execute("UPDATE households SET registers = ?1", [cbor]).expect("update"), 1);
    }
    set(&mut a, id, "head_name", text("La Sintetis"), datetime!(2026-11-02 11:00 +8));
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 12:00 +8)).expect("exchange");
    assert_eq!(logged(&b, id), 1, "the change went into the log: the CBOR registers were read");
    assert_eq!(b.store.search("la sintetis", 10).expect("search").len(), 1);
    assert_eq!(b.store.load(id).expect("load").household.state(), a.store.load(id).expect("load").household.state());
}
