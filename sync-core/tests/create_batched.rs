//! A household created in one batch (`Household::create_batched`, the roster import's path) is
//! the household `Household::create` makes from the same answers and members: the same state,
//! a change that a device accepts through its checks on changes from elsewhere, a document that
//! loads again, and later edits merge with it as with any other household.

use std::collections::BTreeMap;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, MemberId};
use sync_core::value::FieldValue;
use time::macros::datetime;

/// Answers by field name.
type Answers = BTreeMap<String, FieldValue>;

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_owned())
}

/// A synthetic family (domain.md §3): NIK serials 9000 and up, family id `SYN-`.
fn family() -> (Answers, Vec<(MemberId, Answers)>) {
    let answers = BTreeMap::from([
        ("dtsen_family_id".to_string(), text("SYN-0000001")),
        ("village_code".to_string(), text("73.14.01.1001")),
        ("kk_number".to_string(), text("7314010101209001")),
        ("rt".to_string(), text("003")),
        ("head_name".to_string(), text("Wette'E Bin Ali")),
    ]);
    let head = BTreeMap::from([
        ("full_name".to_string(), text("Wette'E Bin Ali")),
        ("nik".to_string(), text("7314011503809001")),
        ("sex".to_string(), FieldValue::Int(1)),
        ("relationship".to_string(), FieldValue::Int(1)),
        ("presence".to_string(), FieldValue::Int(1)),
    ]);
    let spouse = BTreeMap::from([
        ("full_name".to_string(), text("Besse Regapu’u")),
        ("sex".to_string(), FieldValue::Int(2)),
        ("relationship".to_string(), FieldValue::Int(2)),
        ("presence".to_string(), FieldValue::Int(1)),
        // A removal key is never an answer, however it arrives.
        ("removed_at".to_string(), text("2026-01-01T00:00:00Z")),
    ]);
    (answers, vec![(MemberId::random(), head), (MemberId::random(), spouse)])
}

fn editor() -> Editor {
    Editor { user: "admin".into(), device: DeviceId::random(), now: datetime!(2026-11-02 09:00 +8) }
}

#[test]
fn a_batched_household_is_the_household_create_makes() {
    let (answers, members) = family();
    let editor = editor();
    let id = HouseholdId::random();
    let (batched, saved) =
        Household::create_batched(id, "dtsen-ground-check@1", &editor, &answers, &members).expect("batched");
    let edits = Edits {
        answers: answers.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        add_members: members.clone(),
        ..Edits::default()
    };
    let (created, _) = Household::create(id, "dtsen-ground-check@1", &editor, &edits).expect("create");
    assert_eq!(batched.state(), created.state());
    assert_eq!(batched.form_key(), "dtsen-ground-check@1");
    assert!(!batched.state().members[1].answers.contains_key("removed_at"));
    assert!(batched.state().members[1].removed.is_none());

    // A device builds it from the change alone, through the checks on changes from elsewhere.
    let device = DeviceId::random();
    let received = Household::from_changes(id, std::slice::from_ref(&saved.bytes), device).expect("accepted");
    assert_eq!(received.state(), batched.state());
    assert_eq!(received.heads(), vec![saved.hash]);
    let loaded = Household::load(id, &batched.save(), device).expect("loads");
    assert_eq!(loaded.state(), batched.state());
}

#[test]
fn edits_to_a_batched_household_merge_like_any_other() {
    let (answers, members) = family();
    let editor = editor();
    let id = HouseholdId::random();
    let (server, saved) =
        Household::create_batched(id, "dtsen-ground-check@1", &editor, &answers, &members).expect("batched");
    let device_a = DeviceId::random();
    let device_b = DeviceId::random();
    let mut a = Household::from_changes(id, std::slice::from_ref(&saved.bytes), device_a).expect("a");
    let mut b = Household::load(id, &server.save(), device_b).expect("b");
    let edit = |field: &str, value: FieldValue| Edits {
        answers: BTreeMap::from([(field.to_string(), Some(value))]),
        ..Edits::default()
    };
    let on = |device| Editor { user: "pkh.sintetis".into(), device, now: datetime!(2026-11-03 09:00 +8) };
    let (_, from_a) =
        a.apply(&on(device_a), "edit", &edit("rt", text("004")), |_| Ok::<(), ()>(())).expect("a").expect("ok");
    let (_, from_b) = b
        .apply(&on(device_b), "edit", &edit("address", text("Jl. Contoh No. 5")), |_| Ok::<(), ()>(()))
        .expect("b")
        .expect("ok");
    a.apply_changes(&[from_b.expect("b changed").bytes]).expect("a takes b");
    b.apply_changes(&[from_a.expect("a changed").bytes]).expect("b takes a");
    assert_eq!(a.state(), b.state());
    assert_eq!(a.state().answers.get("rt"), Some(&text("004")));
    assert_eq!(a.state().answers.get("address"), Some(&text("Jl. Contoh No. 5")));
    assert_eq!(a.state().members.len(), 2);
}
