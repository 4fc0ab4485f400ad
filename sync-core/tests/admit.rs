//! The server's admission checks on pushed changes, through the public API.

use std::collections::BTreeMap;
use sync_core::form::FormDefinition;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId};
use sync_core::sync::{Pusher, Verdict, admit};
use sync_core::value::FieldValue;
use time::macros::datetime;

fn editor(device: DeviceId) -> Editor {
    Editor { user: "pkh.a".into(), device, now: datetime!(2026-11-20 09:00 +8) }
}

/// The device's user as the server knows them: registered three weeks before the edits, syncing
/// an hour after them.
fn pusher(device: DeviceId) -> Pusher<'static> {
    Pusher { user: "pkh.a", device, registered_at: datetime!(2026-11-01 08:00 +8), now: datetime!(2026-11-20 10:00 +8) }
}

fn answers(pairs: &[(&str, FieldValue)]) -> Edits {
    Edits { answers: pairs.iter().map(|(k, v)| (k.to_string(), Some(v.clone()))).collect(), ..Edits::default() }
}

fn form() -> &'static FormDefinition {
    FormDefinition::default_dtsen()
}

fn new_household(device: DeviceId) -> (HouseholdId, Household, Vec<u8>) {
    let id = HouseholdId::random();
    let edits = answers(&[
        ("head_name", FieldValue::Text("La Sintetis".into())),
        ("village_code", FieldValue::Text("73.14.01.1001".into())),
    ]);
    let (household, saved) = Household::create(id, &form().key(), &editor(device), &edits).expect("create");
    (id, household, saved.bytes)
}

fn edit(household: &mut Household, device: DeviceId, edits: &Edits) -> Vec<u8> {
    let (_, saved) = household.apply(&editor(device), "edit", edits, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
    saved.expect("a change").bytes
}

#[test]
fn a_new_household_from_its_own_device_is_admitted() {
    let device = DeviceId::random();
    let (id, _, bytes) = new_household(device);
    match admit(None, id, std::slice::from_ref(&bytes), &pusher(device), form()) {
        Verdict::Admit(a) => {
            assert_eq!(a.new_changes.len(), 1);
            assert_eq!(a.household.state().answers["head_name"], FieldValue::Text("La Sintetis".into()));
        }
        other => panic!("expected admit, got {other:?}"),
    }
}

#[test]
fn a_change_written_by_another_device_is_rejected() {
    let writer = DeviceId::random();
    let caller = DeviceId::random();
    let (id, _, bytes) = new_household(writer);
    match admit(None, id, &[bytes], &pusher(caller), form()) {
        Verdict::Reject { code, reason } => {
            assert_eq!(code, "foreign_actor");
            assert!(reason.contains(&writer.to_string()), "{reason}");
        }
        other => panic!("expected rejection, got {other:?}"),
    }
}

#[test]
fn a_device_writing_review_is_rejected_whatever_its_role() {
    // Review is the server's (written for a supervisor by the review endpoint); the path policy
    // is the same for every device role, so admission does not even take the role.
    let device = DeviceId::random();
    let (id, mut household, first) = new_household(device);
    let stored = || {
        let Verdict::Admit(a) = admit(None, id, std::slice::from_ref(&first), &pusher(device), form()) else {
            panic!("create admitted")
        };
        a.household
    };
    let review = Edits {
        review: BTreeMap::from([("status".to_string(), Some(FieldValue::Text("approved".into())))]),
        ..Edits::default()
    };
    let change = edit(&mut household, device, &review);
    match admit(Some(stored()), id, std::slice::from_ref(&change), &pusher(device), form()) {
        Verdict::Reject { code, .. } => assert_eq!(code, "review_forbidden"),
        other => panic!("expected rejection, got {other:?}"),
    }
}

#[test]
fn wrong_types_unknown_fields_and_server_only_fields_are_rejected() {
    let device = DeviceId::random();
    let cases = [
        ("floor_area_m2", FieldValue::Text("luas".into()), "invalid_value"),
        ("favourite_colour", FieldValue::Int(1), "unknown_field"),
        ("dtsen_decile", FieldValue::Int(1), "not_device_editable"),
    ];
    for (field, value, expected) in cases {
        let (id, mut household, first) = new_household(device);
        let change = edit(&mut household, device, &answers(&[(field, value)]));
        match admit(None, id, &[first, change], &pusher(device), form()) {
            Verdict::Reject { code, .. } => assert_eq!(code, expected, "{field}"),
            other => panic!("{field}: expected rejection, got {other:?}"),
        }
    }
}

#[test]
fn changes_missing_their_history_ask_for_the_full_household_and_known_ones_are_acknowledged() {
    let device = DeviceId::random();
    let (id, mut household, first) = new_household(device);
    let second = edit(&mut household, device, &answers(&[("floor_area_m2", FieldValue::Int(36))]));
    assert!(matches!(admit(None, id, std::slice::from_ref(&second), &pusher(device), form()), Verdict::NeedFull));
    let Verdict::Admit(a) = admit(None, id, &[first.clone(), second.clone()], &pusher(device), form()) else {
        panic!("full history admitted")
    };
    let stored = a.household;
    assert!(matches!(admit(Some(stored), id, &[first, second], &pusher(device), form()), Verdict::AlreadyKnown));
}

#[test]
fn sync_messages_round_trip_and_refuse_garbage() {
    use sync_core::sync::{SyncRequest, decode, encode};
    let request = SyncRequest {
        batch: uuid::Uuid::nil(),
        cursors: BTreeMap::from([("73.14.01.1001".to_string(), 42)]),
        push: Vec::new(),
        max_changes: 1000,
    };
    let bytes = encode(&request);
    assert_eq!(decode::<SyncRequest>(&bytes, 1 << 20).expect("decode"), request);
    assert!(decode::<SyncRequest>(b"not zstd at all", 1 << 20).is_err());
    assert!(decode::<SyncRequest>(&bytes, 4).is_err(), "expansion limit");
}

/// A real edit rewritten field by field, re-encoded: what a hand-made client could send.
fn rewritten(bytes: &[u8], rewrite: impl FnOnce(&mut automerge::ExpandedChange)) -> Vec<u8> {
    let mut expanded = automerge::Change::from_bytes(bytes.to_vec()).expect("a change").decode();
    rewrite(&mut expanded);
    expanded.hash = None;
    automerge::Change::from(expanded).bytes().into_owned()
}

#[test]
fn hand_made_changes_that_would_crash_automerge_are_refused_as_malformed() {
    // Each of these made Automerge 0.12 panic, or save a document it could not load again, on
    // the server (admission) and on a device (receiving): found by tests/fuzz.rs.
    let device = DeviceId::random();
    let (id, mut household, first) = new_household(device);
    let change = edit(&mut household, device, &answers(&[("floor_area_m2", FieldValue::Int(36))]));
    let cases: [(&str, Vec<u8>); 5] = [
        ("a number that skips its writer's sequence", rewritten(&change, |e| e.seq = u64::MAX)),
        ("an impossible time", rewritten(&change, |e| e.time = i64::MIN)),
        ("a deletion of nothing", rewritten(&change, |e| e.operations[0].action = automerge::legacy::OpType::Delete)),
        ("a write outside its history", rewritten(&change, |e| e.deps.clear())),
        ("operation numbers reused", rewritten(&change, |e| e.start_op = std::num::NonZeroU64::MIN)),
    ];
    let stored = || {
        let Verdict::Admit(a) = admit(None, id, std::slice::from_ref(&first), &pusher(device), form()) else {
            panic!("create admitted")
        };
        a.household
    };
    for (what, bad) in cases {
        match admit(Some(stored()), id, std::slice::from_ref(&bad), &pusher(device), form()) {
            Verdict::Reject { code, reason } => {
                assert_eq!(code, "malformed_change", "{what}: {reason}");
                assert!(reason.contains("not written by pilar"), "{what}: {reason}");
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        let mut on_a_device = stored();
        assert!(on_a_device.apply_changes(&[bad]).is_err(), "{what}: a device refuses it too");
        assert_eq!(on_a_device.heads(), stored().heads(), "{what}: nothing was applied");
    }
    // The untouched change still goes in.
    assert!(matches!(admit(Some(stored()), id, &[change], &pusher(device), form()), Verdict::Admit(_)));
}
