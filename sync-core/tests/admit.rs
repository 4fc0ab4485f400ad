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

/// The versions the server knows: the built-in one.
fn forms() -> &'static sync_core::form::FormSet {
    static SET: std::sync::OnceLock<sync_core::form::FormSet> = std::sync::OnceLock::new();
    SET.get_or_init(sync_core::form::FormSet::built_in)
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
    match admit(None, id, std::slice::from_ref(&bytes), &pusher(device), forms()) {
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
    match admit(None, id, &[bytes], &pusher(caller), forms()) {
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
        let Verdict::Admit(a) = admit(None, id, std::slice::from_ref(&first), &pusher(device), forms()) else {
            panic!("create admitted")
        };
        a.household
    };
    let review = Edits {
        review: BTreeMap::from([("status".to_string(), Some(FieldValue::Text("approved".into())))]),
        ..Edits::default()
    };
    let change = edit(&mut household, device, &review);
    match admit(Some(stored()), id, std::slice::from_ref(&change), &pusher(device), forms()) {
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
        match admit(None, id, &[first, change], &pusher(device), forms()) {
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
    assert!(matches!(admit(None, id, std::slice::from_ref(&second), &pusher(device), forms()), Verdict::NeedFull));
    let Verdict::Admit(a) = admit(None, id, &[first.clone(), second.clone()], &pusher(device), forms()) else {
        panic!("full history admitted")
    };
    let stored = a.household;
    assert!(matches!(admit(Some(stored), id, &[first, second], &pusher(device), forms()), Verdict::AlreadyKnown));
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
        let Verdict::Admit(a) = admit(None, id, std::slice::from_ref(&first), &pusher(device), forms()) else {
            panic!("create admitted")
        };
        a.household
    };
    for (what, bad) in cases {
        match admit(Some(stored()), id, std::slice::from_ref(&bad), &pusher(device), forms()) {
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
    assert!(matches!(admit(Some(stored()), id, &[change], &pusher(device), forms()), Verdict::Admit(_)));
}

// --- The path policy, the writer rules and the value rules, case by case ---

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
use sync_core::model::{MemberId, NewVisit, VisitId};

/// The stored household the cases below write into: created on the device (with the server-only
/// `dtsen_decile` a roster import would have set), with one member and one visit.
fn stored_with_member_and_visit(device: DeviceId) -> (Household, MemberId, VisitId) {
    let id = HouseholdId::random();
    let mut edits = answers(&[
        ("head_name", FieldValue::Text("La Sintetis".into())),
        ("village_code", FieldValue::Text("73.14.01.1001".into())),
        ("dtsen_decile", FieldValue::Int(3)),
    ]);
    let member = MemberId::random();
    edits
        .add_members
        .push((member, BTreeMap::from([("full_name".to_string(), FieldValue::Text("Andi Sintetis".into()))])));
    let (mut household, _) = Household::create(id, &form().key(), &editor(device), &edits).expect("create");
    let visit = VisitId::random();
    edit(&mut household, device, &Edits { visit: Some(new_visit(visit)), ..Edits::default() });
    (household, member, visit)
}

fn new_visit(id: VisitId) -> NewVisit {
    NewVisit {
        id,
        outcome: 3,
        lat: Some(-3.99),
        lon: Some(119.65),
        accuracy_m: Some(8.0),
        note: Some("tidak ada orang".into()),
        answers: BTreeMap::new(),
    }
}

/// Milliseconds of a time, as a change records it.
fn millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A change made by hand on top of `household`, under `device`'s actor, with this message and
/// time: what a hostile client could send with the project's own library.
fn crafted(
    household: &Household,
    device: DeviceId,
    message: Option<&str>,
    time: i64,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut doc = automerge::Automerge::load(&household.save()).expect("load").with_actor(device.actor());
    let mut tx = doc.transaction();
    write(&mut tx);
    let mut options = CommitOptions::default().with_time(time);
    if let Some(message) = message {
        options = options.with_message(message.to_string());
    }
    let (hash, _) = tx.commit_with(options);
    let mut change = doc.get_change_by_hash(&hash.expect("a change")).expect("committed").clone();
    change.bytes().into_owned()
}

/// The map at `path` (dot-separated keys from the root).
fn obj(tx: &impl ReadDoc, path: &str) -> ObjId {
    path.split('.').fold(ROOT, |parent, key| match tx.get(&parent, key).expect("read") {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("{path}: {key} is not a map ({other:?})"),
    })
}

const OWN: &str = r#"{"u":"pkh.a","a":"edit"}"#;

#[test]
fn each_forbidden_write_gets_its_code_and_what_devices_write_is_admitted() {
    let device = DeviceId::random();
    let (stored, member, visit) = stored_with_member_and_visit(device);
    let at = millis(editor(device).now);
    let now = pusher(device).now;
    let members = format!("members.{member}");
    let visits = format!("visits.{visit}");
    let put = |path: &str, key: &'static str, value: FieldValue| {
        let path = path.to_string();
        crafted(&stored, device, Some(OWN), at, move |tx| {
            let target = obj(tx, &path);
            let scalar = match value {
                FieldValue::Text(t) => automerge::ScalarValue::Str(t.into()),
                FieldValue::Int(i) => automerge::ScalarValue::Int(i),
                FieldValue::Decimal(d) => automerge::ScalarValue::F64(d),
                FieldValue::Bool(b) => automerge::ScalarValue::Boolean(b),
            };
            tx.put(&target, key, scalar).expect("put");
        })
    };
    let delete = |path: &str, key: &str| {
        let (path, key) = (path.to_string(), key.to_string());
        crafted(&stored, device, Some(OWN), at, move |tx| {
            let target = if path.is_empty() { ROOT } else { obj(tx, &path) };
            tx.delete(&target, key.as_str()).expect("delete");
        })
    };
    let visit_by = |user: &str, visit_device: String, when: time::OffsetDateTime| {
        let user = user.to_string();
        crafted(&stored, device, Some(OWN), at, move |tx| {
            let visits = obj(tx, "visits");
            let v = tx.put_object(&visits, VisitId::random().to_string().as_str(), ObjType::Map).expect("visit");
            tx.put(&v, "at", sync_core::model::rfc3339_seconds(when)).expect("at");
            tx.put(&v, "user", user.as_str()).expect("user");
            tx.put(&v, "device", visit_device.as_str()).expect("device");
            tx.put(&v, "outcome", 3).expect("outcome");
        })
    };
    let photo_by = |user: &str, photo_device: String, kind: &str, whole: bool| {
        let (user, kind) = (user.to_string(), kind.to_string());
        crafted(&stored, device, Some(OWN), at, move |tx| {
            let photos = obj(tx, "photos");
            let sha = sync_core::photo::PhotoId::of_bytes(kind.as_bytes());
            let p = tx.put_object(&photos, sha.as_str(), ObjType::Map).expect("photo");
            tx.put(&p, "kind", kind.as_str()).expect("kind");
            if whole {
                tx.put(&p, "bytes", 120_000).expect("bytes");
                tx.put(&p, "mime", "image/jpeg").expect("mime");
                tx.put(&p, "taken_at", sync_core::model::rfc3339_seconds(now)).expect("taken_at");
                tx.put(&p, "by", user.as_str()).expect("by");
                tx.put(&p, "device", photo_device.as_str()).expect("device");
            }
        })
    };
    let hours = |h: i64| time::Duration::hours(h);
    let registered = pusher(device).registered_at;
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        // The writer.
        (
            "another user in the message",
            crafted(&stored, device, Some(r#"{"u":"pkh.b","a":"edit"}"#), at, |tx| {
                let a = obj(tx, "answers");
                tx.put(&a, "rt", "7").expect("put");
            }),
            Some("forged_writer"),
        ),
        (
            "no message",
            crafted(&stored, device, None, at, |tx| {
                let a = obj(tx, "answers");
                tx.put(&a, "rt", "7").expect("put");
            }),
            Some("forged_writer"),
        ),
        (
            "dated after the server's clock and the skew",
            crafted(&stored, device, Some(OWN), millis(now + hours(25)), |tx| {
                let a = obj(tx, "answers");
                tx.put(&a, "rt", "7").expect("put");
            }),
            Some("forged_writer"),
        ),
        (
            "dated ahead but within the skew",
            crafted(&stored, device, Some(OWN), millis(now + hours(23)), |tx| {
                let a = obj(tx, "answers");
                tx.put(&a, "rt", "7").expect("put");
            }),
            None,
        ),
        (
            "dated before the registration and the skew",
            crafted(&stored, device, Some(OWN), millis(registered - hours(25)), |tx| {
                let a = obj(tx, "answers");
                tx.put(&a, "rt", "7").expect("put");
            }),
            Some("forged_writer"),
        ),
        ("a visit by a colleague", visit_by("pkh.b", device.to_string(), now), Some("forged_writer")),
        ("a visit on another device", visit_by("pkh.a", DeviceId::random().to_string(), now), Some("forged_writer")),
        (
            "a visit dated last year",
            visit_by("pkh.a", device.to_string(), now - time::Duration::days(365)),
            Some("forged_writer"),
        ),
        ("an own visit", visit_by("pkh.a", device.to_string(), now), None),
        (
            "a removal by a colleague",
            put(&members, "removed_by", FieldValue::Text("pkh.b".into())),
            Some("forged_writer"),
        ),
        // The paths.
        ("deleting a server-only answer", delete("answers", "dtsen_decile"), Some("not_device_editable")),
        (
            "writing a server-only answer",
            put("answers", "dtsen_decile", FieldValue::Int(1)),
            Some("not_device_editable"),
        ),
        ("clearing an answer", delete("answers", "head_name"), None),
        (
            "writing links",
            put("links", "merged_into", FieldValue::Text(HouseholdId::random().to_string())),
            Some("not_device_editable"),
        ),
        ("writing review", put("review", "status", FieldValue::Text("approved".into())), Some("review_forbidden")),
        (
            "a photo reference not keyed by a SHA-256",
            crafted(&stored, device, Some(OWN), at, |tx| {
                let p = obj(tx, "photos");
                tx.put_object(&p, "ab12", ObjType::Map).expect("photo");
            }),
            Some("invalid_layout"),
        ),
        ("an own photo reference", photo_by("pkh.a", device.to_string(), "kk_card", true), None),
        (
            "a photo reference by a colleague",
            photo_by("pkh.b", device.to_string(), "kk_card", true),
            Some("forged_writer"),
        ),
        (
            "a photo reference naming another device",
            photo_by("pkh.a", DeviceId::random().to_string(), "kk_card", true),
            Some("forged_writer"),
        ),
        (
            "a photo reference of an unknown kind",
            photo_by("pkh.a", device.to_string(), "selfie", true),
            Some("invalid_value"),
        ),
        (
            "a photo reference lacking keys",
            photo_by("pkh.a", device.to_string(), "other", false),
            Some("invalid_layout"),
        ),
        ("deleting a member map", delete("members", &member.to_string()), Some("invalid_layout")),
        ("deleting a visit map", delete("visits", &visit.to_string()), Some("invalid_layout")),
        ("deleting a top-level map", delete("", "links"), Some("invalid_layout")),
        (
            "creating a member again",
            crafted(&stored, device, Some(OWN), at, |tx| {
                let m = obj(tx, "members");
                tx.put_object(&m, member.to_string().as_str(), ObjType::Map).expect("member");
            }),
            Some("invalid_layout"),
        ),
        ("editing a recorded visit", put(&visits, "outcome", FieldValue::Int(1)), Some("invalid_layout")),
        ("clearing a member's answer", delete(&members, "full_name"), None),
        ("an unknown answer", put("answers", "warna_favorit", FieldValue::Int(1)), Some("unknown_field")),
        // The values.
        (
            "a 100 KB head name",
            put("answers", "head_name", FieldValue::Text("La Sintetis ".repeat(8_500))),
            Some("invalid_value"),
        ),
        (
            "markup in the KK number",
            put("answers", "kk_number", FieldValue::Text("<b>7314010503159101</b>".into())),
            Some("invalid_value"),
        ),
        ("a path in the RT", put("answers", "rt", FieldValue::Text("../../etc/passwd".into())), Some("invalid_value")),
        (
            "SQL in a member's NIK",
            put(&members, "nik", FieldValue::Text("'; DROP TABLE changes; --".into())),
            Some("invalid_value"),
        ),
        ("a code outside the choices", put("answers", "roof_material", FieldValue::Int(77)), Some("invalid_value")),
        ("a valid member NIK", put(&members, "nik", FieldValue::Text("7314011503809101".into())), None),
        (
            "a long removal reason",
            put(&members, "removed_reason", FieldValue::Text("x".repeat(5_000))),
            Some("invalid_value"),
        ),
    ];
    for (what, change, expected) in cases {
        let verdict = admit(
            Some(Household::load(stored.id(), &stored.save(), device).expect("load")),
            stored.id(),
            std::slice::from_ref(&change),
            &pusher(device),
            forms(),
        );
        match (verdict, expected) {
            (Verdict::Reject { code, reason }, Some(expected)) => {
                assert_eq!(code, expected, "{what}: {reason}");
                assert!(
                    !reason.contains("Sintetis La") && !reason.contains("DROP") && !reason.contains("<b>"),
                    "{what}: the reason repeats the value: {reason}"
                );
            }
            (Verdict::Admit(_), None) => {}
            (other, expected) => panic!("{what}: expected {expected:?}, got {other:?}"),
        }
    }
}

/// The built-in form and a version 2 with a new boolean question.
fn forms_with_version_2() -> sync_core::form::FormSet {
    let mut set = sync_core::form::FormSet::built_in();
    let mut v2 = form().clone();
    v2.version = 2;
    let mut question = v2.household[0].clone();
    question.name = "bantuan_daerah".into();
    question.kind = sync_core::form::FieldKind::Boolean;
    question.required = sync_core::form::Required::No;
    v2.household.push(question);
    set.insert(std::sync::Arc::new(v2));
    set
}

fn verdict_code(verdict: Verdict) -> String {
    match verdict {
        Verdict::Admit(a) => format!("admit {}", a.household.form_key()),
        Verdict::Reject { code, reason } => format!("{code}: {reason}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_household_moves_only_to_a_newer_published_version_of_its_form() {
    let device = DeviceId::random();
    let (id, household, first) = new_household(device);
    let stored = || Household::load(id, &household.save(), device).expect("load");
    let set = forms_with_version_2();
    let moved = |key: &str, answer: Option<(&str, FieldValue)>| {
        let mut copy = stored();
        let mut edits = answer.map(|a| answers(&[a])).unwrap_or_default();
        edits.form = Some(key.to_string());
        edit(&mut copy, device, &edits)
    };
    let new_answer = || Some(("bantuan_daerah", FieldValue::Bool(true)));

    // A visit made with version 2 records it, and its new question is admitted with it.
    let change = moved("dtsen-ground-check@2", new_answer());
    let Verdict::Admit(at_2) = admit(Some(stored()), id, std::slice::from_ref(&change), &pusher(device), &set) else {
        panic!("the move to version 2 is admitted");
    };
    assert_eq!(at_2.household.form_key(), "dtsen-ground-check@2");
    // Back to an older version: refused.
    let mut back = Household::load(id, &at_2.household.save(), device).expect("load");
    let downgrade = edit(&mut back, device, &Edits { form: Some("dtsen-ground-check@1".into()), ..Edits::default() });
    let at_2 = || Household::load(id, &at_2.household.save(), device).expect("load");
    let refused = verdict_code(admit(Some(at_2()), id, &[downgrade], &pusher(device), &set));
    assert!(refused.starts_with("invalid_layout") && refused.contains("newer version"), "{refused}");
    // The new question without the move is not a field of version 1.
    let mut copy = stored();
    let change = edit(&mut copy, device, &answers(&[("bantuan_daerah", FieldValue::Bool(true))]));
    let refused = verdict_code(admit(Some(stored()), id, &[change], &pusher(device), &set));
    assert!(refused.starts_with("unknown_field"), "{refused}");
    // A version the server has not published (or not a key at all), or a published version of
    // another form: refused. (Writing the version it records is no change at all.)
    let mut with_other = set.clone();
    with_other.insert(std::sync::Arc::new(sync_core::form::FormDefinition {
        id: "another-form".into(),
        version: 2,
        ..form().clone()
    }));
    for (key, code) in
        [("dtsen-ground-check@3", "unknown_form"), ("not a key", "unknown_form"), ("another-form@2", "invalid_layout")]
    {
        let change = moved(key, None);
        let refused = verdict_code(admit(Some(stored()), id, &[change], &pusher(device), &with_other));
        assert!(refused.starts_with(code), "{key}: {refused}");
    }
    // A new household recorded with a version the server does not know is refused as a whole.
    let mut unknown = form().clone();
    unknown.version = 7;
    let (other, _, bytes) = {
        let id = HouseholdId::random();
        let edits = answers(&[
            ("head_name", FieldValue::Text("La Sintetis".into())),
            ("village_code", FieldValue::Text("73.14.01.1001".into())),
        ]);
        let (h, saved) = Household::create(id, &unknown.key(), &editor(device), &edits).expect("create");
        (id, h, saved.bytes)
    };
    let refused = verdict_code(admit(None, other, &[bytes], &pusher(device), &set));
    assert!(refused.starts_with("unknown_form") && refused.contains("dtsen-ground-check@7"), "{refused}");
    assert!(matches!(admit(None, id, &[first], &pusher(device), &set), Verdict::Admit(_)));
}

#[test]
fn two_devices_moving_a_household_at_once_read_the_highest_version() {
    let (a, b) = (DeviceId::random(), DeviceId::random());
    let (id, household, _) = new_household(a);
    let saved = household.save();
    let mut on_a = Household::load(id, &saved, a).expect("load");
    let mut on_b = Household::load(id, &saved, b).expect("load");
    let to = |key: &str| Edits { form: Some(key.to_string()), ..Edits::default() };
    let from_a = edit(&mut on_a, a, &to("dtsen-ground-check@3"));
    let _ = edit(&mut on_b, b, &to("dtsen-ground-check@2"));
    on_b.apply_changes(&[from_a]).expect("merge");
    assert_eq!(on_b.form_key(), "dtsen-ground-check@3");
    assert_eq!(on_b.state().form, "dtsen-ground-check@3", "the state reads the same version");
}
