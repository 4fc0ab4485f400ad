//! Merging two household documents that are the same family: the retired household is folded
//! into the survivor, once at the merge and again whenever offline work on the retired one arrives.

use std::collections::BTreeMap;
use sync_core::ids::Nik;
use sync_core::model::{
    Combined, DeviceId, Editor, Edits, FieldPath, Fold, Household, HouseholdId, HouseholdState, MERGE_ACTION,
    MERGE_FOLD_ACTION, Member, MemberId, ModelError, NewVisit, Saved, VisitId,
};
use sync_core::value::FieldValue;
use time::OffsetDateTime;
use time::macros::datetime;

const FORM: &str = "dtsen-ground-check@1";
/// Male, 15 Aug 1985, Kec. Panca Lautang (73.14.01), serial 9001.
const HEAD_NIK: &str = "7314011508859001";
/// Female (day 55 = 15 + 40), 15 Aug 1987, Kec. Panca Lautang, serial 9002.
const WIFE_NIK: &str = "7314015508879002";
/// Male, 2 Mar 2010, Kec. Panca Lautang, serial 9003.
const CHILD_NIK: &str = "7314010203109003";

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_string())
}

fn int(i: i64) -> FieldValue {
    FieldValue::Int(i)
}

/// A synthetic NIK, checked against the reject rules so the test data stays realistic.
fn nik(raw: &str) -> FieldValue {
    Nik::parse(raw).expect("synthetic nik passes the rules");
    text(raw)
}

fn fields(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn editor(user: &str, device: DeviceId, now: OffsetDateTime) -> Editor {
    Editor { user: user.to_string(), device, now }
}

fn save(household: &mut Household, editor: &Editor, action: &str, edits: Edits) {
    household.apply(editor, action, &edits, |_| Ok::<(), ()>(())).expect("apply").expect("accepted");
}

fn visit(household: &mut Household, editor: &Editor, outcome: i64) -> VisitId {
    let id = VisitId::random();
    let visit = NewVisit {
        id,
        outcome,
        lat: Some(-3.91),
        lon: Some(119.62),
        accuracy_m: Some(8.0),
        note: Some("rumah panggung".to_string()),
        answers: fields(&[("purpose", int(1))]),
    };
    save(household, editor, "visit", Edits { visit: Some(visit), ..Edits::default() });
    id
}

fn set_answer(household: &mut Household, editor: &Editor, field: &str, value: FieldValue) {
    let edits = Edits { answers: BTreeMap::from([(field.to_string(), Some(value))]), ..Edits::default() };
    save(household, editor, "edit", edits);
}

fn set_member(household: &mut Household, editor: &Editor, member: MemberId, field: &str, value: FieldValue) {
    let edits =
        Edits { edit_members: vec![(member, BTreeMap::from([(field.to_string(), Some(value))]))], ..Edits::default() };
    save(household, editor, "member-edit", edits);
}

fn member(state: &HouseholdState, id: MemberId) -> &Member {
    state.members.iter().find(|m| m.id == id).expect("member present")
}

/// The action a saved change was made for (from its message).
fn action_of(bytes: &[u8]) -> String {
    let change = automerge::Change::from_bytes(bytes.to_vec()).expect("change");
    let message: serde_json::Value = serde_json::from_str(change.message().expect("message")).expect("json");
    message["a"].as_str().expect("action").to_string()
}

/// Another device that held `before` applies one change and ends up where `after` is.
fn replays_elsewhere(id: HouseholdId, before: &[u8], change: &Saved, after: &Household) {
    let mut copy = Household::load(id, before, DeviceId::random()).expect("load copy");
    assert_eq!(copy.apply_changes(std::slice::from_ref(&change.bytes)).expect("applies"), 1);
    copy.check_layout().expect("layout");
    assert_eq!(copy.state(), after.state());
    assert_eq!(copy.heads(), after.heads());
}

/// Two registrations of the same synthetic family, by two enumerators on two devices.
struct Scene {
    pkh_a: Editor,
    tksk_b: Editor,
    office: Editor,
    /// Enumerator A's own copy of the survivor (syncs to the server later).
    survivor_a: Household,
    /// Enumerator B's own copy of the retired household (offline after the merge).
    retired_b: Household,
    /// The server's copies, which the office merges.
    survivor: Household,
    retired: Household,
    s_head: MemberId,
    s_wife: MemberId,
    r_head: MemberId,
    r_wife: MemberId,
    r_child: MemberId,
    r_gone: MemberId,
    s_visit: VisitId,
    r_visit: VisitId,
}

fn scene() -> Scene {
    let office_device = DeviceId::random();
    let pkh_a = editor("pkh.a", DeviceId::random(), datetime!(2026-11-03 09:00 +8));
    let tksk_b = editor("tksk.b", DeviceId::random(), datetime!(2026-11-05 10:00 +8));
    let office = editor("spv.panca", office_device, datetime!(2026-11-10 14:00 +8));

    let (s_head, s_wife) = (MemberId::random(), MemberId::random());
    let first = Edits {
        answers: BTreeMap::from([
            ("head_name".to_string(), Some(text("La Sintetis"))),
            ("rt".to_string(), Some(text("003"))),
            ("address".to_string(), Some(text("Jl. Contoh No. 1"))),
        ]),
        add_members: vec![
            (
                s_head,
                fields(&[
                    ("seq", int(1)),
                    ("full_name", text("La Sintetis")),
                    ("nik", nik(HEAD_NIK)),
                    ("presence", int(1)),
                    ("sex", int(1)),
                ]),
            ),
            (
                s_wife,
                fields(&[
                    ("seq", int(2)),
                    ("full_name", text("Wa Ode Sintetis")),
                    ("presence", int(1)),
                    ("sex", int(2)),
                ]),
            ),
        ],
        ..Edits::default()
    };
    let (mut survivor_a, _) = Household::create(HouseholdId::random(), FORM, &pkh_a, &first).expect("create survivor");
    let s_visit = visit(&mut survivor_a, &pkh_a, 1);

    let (r_head, r_wife, r_child, r_gone) =
        (MemberId::random(), MemberId::random(), MemberId::random(), MemberId::random());
    let first = Edits {
        answers: BTreeMap::from([
            ("head_name".to_string(), Some(text("La Sintetis"))),
            ("rt".to_string(), Some(text("004"))),
            ("floor_area_m2".to_string(), Some(int(36))),
        ]),
        add_members: vec![
            (
                r_head,
                fields(&[
                    ("seq", int(1)),
                    ("full_name", text("LA SINTETIS")),
                    ("nik", nik(HEAD_NIK)),
                    ("presence", int(2)),
                    ("birth_date", text("1985-08-15")),
                ]),
            ),
            (r_wife, fields(&[("seq", int(2)), ("full_name", text("  wa ode   sintetis ")), ("nik", nik(WIFE_NIK))])),
            (
                r_child,
                fields(&[
                    ("seq", int(3)),
                    ("full_name", text("Andi Sintetis")),
                    ("nik", nik(CHILD_NIK)),
                    ("sex", int(1)),
                    ("relationship", int(3)),
                ]),
            ),
            (r_gone, fields(&[("seq", int(4)), ("full_name", text("Baso Sintetis")), ("sex", int(1))])),
        ],
        ..Edits::default()
    };
    let (mut retired_b, _) = Household::create(HouseholdId::random(), FORM, &tksk_b, &first).expect("create retired");
    let r_visit = visit(&mut retired_b, &tksk_b, 1);
    let removal = Edits { remove_members: vec![(r_gone, "meninggal".to_string())], ..Edits::default() };
    save(&mut retired_b, &tksk_b, "member-remove", removal);

    let survivor = Household::load(survivor_a.id(), &survivor_a.save(), office_device).expect("server survivor");
    let retired = Household::load(retired_b.id(), &retired_b.save(), office_device).expect("server retired");
    Scene {
        pkh_a,
        tksk_b,
        office,
        survivor_a,
        retired_b,
        survivor,
        retired,
        s_head,
        s_wife,
        r_head,
        r_wife,
        r_child,
        r_gone,
        s_visit,
        r_visit,
    }
}

/// The office's first merge of the scene's two households.
fn first_merge(s: &mut Scene) -> Combined {
    s.survivor.combine(&mut s.retired, &Fold::default(), &s.office).expect("merge")
}

/// Enumerator B's offline work reaches the server's copy of the retired household.
fn sync_retired(s: &mut Scene) {
    let changes = s.retired_b.changes_since(&[]);
    s.retired.apply_changes(&changes).expect("sync retired");
}

/// Enumerator A's work reaches the server's copy of the survivor.
fn sync_survivor(s: &mut Scene) {
    let changes = s.survivor_a.changes_since(&[]);
    s.survivor.apply_changes(&changes).expect("sync survivor");
}

/// A fold as the server persists it (JSON) and reads it back.
fn persisted(fold: &Fold) -> Fold {
    serde_json::from_str(&serde_json::to_string(fold).expect("to json")).expect("from json")
}

#[test]
fn first_merge_pairs_members_copies_visits_fills_answers_and_reports_disagreements() {
    let mut s = scene();
    let survivor_before = s.survivor.save();
    let retired_before = s.retired.save();
    let combined = first_merge(&mut s);

    let state = s.survivor.state();
    // Answers: missing ones filled, equal ones untouched, differing ones kept.
    assert_eq!(state.answers.get("floor_area_m2"), Some(&int(36)));
    assert_eq!(state.answers.get("rt"), Some(&text("003")));
    assert_eq!(state.answers.get("head_name"), Some(&text("La Sintetis")));

    // Members: the head by NIK, the wife by name, the child added, the removed one left behind.
    let current: Vec<MemberId> = state.current_members().map(|m| m.id).collect();
    assert_eq!(current.len(), 3, "no one duplicated, no one removed copied");
    assert!(!state.members.iter().any(|m| m.id == s.r_gone));
    let head = member(&state, s.s_head);
    assert_eq!(head.answers.get("birth_date"), Some(&text("1985-08-15")), "filled from the retired head");
    assert_eq!(head.answers.get("presence"), Some(&int(1)), "the survivor keeps its own value");
    assert_eq!(head.answers.get("full_name"), Some(&text("La Sintetis")));
    let wife = member(&state, s.s_wife);
    assert_eq!(wife.answers.get("nik"), Some(&text(WIFE_NIK)), "a name-only match gets the NIK");
    let child = member(&state, s.r_child);
    assert_eq!(child.answers.get("full_name"), Some(&text("Andi Sintetis")));
    assert_eq!(child.answers.get("relationship"), Some(&int(3)));
    assert_eq!(
        combined.fold.members,
        BTreeMap::from([(s.r_head, s.s_head), (s.r_wife, s.s_wife), (s.r_child, s.r_child)])
    );

    // Visits: both, the copied one still the enumerator's.
    assert_eq!(state.visits.len(), 2);
    let copied = state.visits.iter().find(|v| v.id == s.r_visit).expect("retired visit copied");
    let original = s.retired.state().visits.into_iter().find(|v| v.id == s.r_visit).expect("retired visit");
    assert_eq!(copied, &original);
    assert_eq!(copied.user, "tksk.b");
    assert_eq!(copied.device, s.tksk_b.device.to_string());
    assert_eq!(copied.answers.get("purpose"), Some(&int(1)));
    assert!(state.visits.iter().any(|v| v.id == s.s_visit));

    // Disagreements, each with both writers.
    let paths: Vec<&FieldPath> = combined.disagreements.iter().map(|d| &d.path).collect();
    assert_eq!(
        paths,
        vec![&FieldPath::Answer("rt".into()), &FieldPath::Member(s.s_head, "presence".into())],
        "{:?}",
        combined.disagreements
    );
    let rt = &combined.disagreements[0];
    assert_eq!(rt.kept.len(), 1);
    assert_eq!((rt.kept[0].value.clone(), rt.kept[0].writer.user.as_str()), (text("003"), "pkh.a"));
    assert_eq!(rt.kept[0].writer.device, s.pkh_a.device.to_string());
    assert_eq!((rt.other.value.clone(), rt.other.writer.user.as_str()), (text("004"), "tksk.b"));
    assert_eq!(rt.other.writer.device, s.tksk_b.device.to_string());
    assert_eq!(rt.other.writer.at, "2026-11-05T02:00:00Z");
    let presence = &combined.disagreements[1];
    assert_eq!((presence.kept[0].value.clone(), presence.kept[0].writer.user.as_str()), (int(1), "pkh.a"));
    assert_eq!((presence.other.value.clone(), presence.other.writer.user.as_str()), (int(2), "tksk.b"));

    // The retired household points at the survivor.
    assert_eq!(s.retired.state().links.get("merged_into"), Some(&text(&s.survivor.id().to_string())));

    // One change per document, by the office, replayable on other devices.
    let survivor_change = combined.survivor_change.as_ref().expect("survivor written");
    let retired_change = combined.retired_change.as_ref().expect("retired written");
    assert_eq!(action_of(&survivor_change.bytes), MERGE_ACTION);
    assert_eq!(action_of(&retired_change.bytes), MERGE_ACTION);
    let writer = s.survivor.writer_of_change(&survivor_change.hash).expect("writer");
    assert_eq!((writer.user.as_str(), writer.device), ("spv.panca", s.office.device.to_string()));
    assert_eq!(s.survivor.heads(), vec![survivor_change.hash]);
    assert_eq!(s.retired.heads(), vec![retired_change.hash]);
    s.survivor.check_layout().expect("survivor layout");
    s.retired.check_layout().expect("retired layout");
    replays_elsewhere(s.survivor.id(), &survivor_before, survivor_change, &s.survivor);
    replays_elsewhere(s.retired.id(), &retired_before, retired_change, &s.retired);

    // Values travel as scalars and never reach Debug output.
    let debug = format!("{combined:?}");
    for secret in ["Sintetis", "sintetis", HEAD_NIK, WIFE_NIK, "Contoh"] {
        assert!(!debug.contains(secret), "debug output leaks personal data");
    }
    assert_eq!(combined.fold.survivor_heads, s.survivor.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>());
}

#[test]
fn a_later_fold_brings_in_offline_work_on_the_retired_household() {
    let mut s = scene();
    let merged = first_merge(&mut s);

    // Enumerator B, offline since before the merge, keeps working on the retired household.
    let b = editor("tksk.b", s.tksk_b.device, datetime!(2026-11-12 08:30 +8));
    let new_visit = visit(&mut s.retired_b, &b, 1);
    set_member(&mut s.retired_b, &b, s.r_wife, "presence", int(2));
    let baby = MemberId::random();
    let add = Edits {
        add_members: vec![(baby, fields(&[("seq", int(5)), ("full_name", text("Besse Sintetis")), ("sex", int(2))]))],
        ..Edits::default()
    };
    save(&mut s.retired_b, &b, "member-add", add);
    let remove = Edits { remove_members: vec![(s.r_child, "pindah".to_string())], ..Edits::default() };
    save(&mut s.retired_b, &b, "member-remove", remove);
    sync_retired(&mut s);

    let survivor_before = s.survivor.save();
    let retired_heads_before = s.retired.heads();
    let later = editor("spv.panca", s.office.device, datetime!(2026-11-13 10:00 +8));
    let folded = s.survivor.combine(&mut s.retired, &persisted(&merged.fold), &later).expect("fold");

    assert!(folded.disagreements.is_empty(), "{:?}", folded.disagreements);
    assert!(folded.retired_change.is_none(), "a later fold leaves the retired household alone");
    assert_eq!(s.retired.heads(), retired_heads_before);
    let change = folded.survivor_change.as_ref().expect("survivor written");
    assert_eq!(action_of(&change.bytes), MERGE_FOLD_ACTION);

    let state = s.survivor.state();
    let copied = state.visits.iter().find(|v| v.id == new_visit).expect("new visit copied");
    assert_eq!((copied.user.as_str(), copied.at.as_str()), ("tksk.b", "2026-11-12T08:30:00+08:00"));
    assert_eq!(member(&state, s.s_wife).answers.get("presence"), Some(&int(2)), "newer field work wins");
    let besse = member(&state, baby);
    assert_eq!(besse.answers.get("full_name"), Some(&text("Besse Sintetis")));
    assert!(besse.removed.is_none());
    let removal = member(&state, s.r_child).removed.as_ref().expect("removed in the survivor too");
    assert_eq!((removal.by.as_str(), removal.reason.as_str()), ("tksk.b", "pindah"));
    assert_eq!(removal.at, "2026-11-12T08:30:00+08:00");
    assert_eq!(folded.fold.members.get(&baby), Some(&baby));
    assert_eq!(folded.fold.members.len(), 4);
    s.survivor.check_layout().expect("layout");
    replays_elsewhere(s.survivor.id(), &survivor_before, change, &s.survivor);

    // Nothing new: nothing written, nothing reported, the same fold back.
    let again = s.survivor.combine(&mut s.retired, &persisted(&folded.fold), &later).expect("fold again");
    assert!(again.survivor_change.is_none());
    assert!(again.retired_change.is_none());
    assert!(again.disagreements.is_empty());
    assert_eq!(again.fold, folded.fold);
}

#[test]
fn a_field_changed_on_both_sides_after_the_merge_is_a_disagreement() {
    let mut s = scene();
    let merged = first_merge(&mut s);

    // After the merge, enumerator A edits the survivor and enumerator B the retired household.
    let a = editor("pkh.a", s.pkh_a.device, datetime!(2026-11-11 09:00 +8));
    set_answer(&mut s.survivor_a, &a, "address", text("Jl. Contoh No. 2"));
    set_answer(&mut s.survivor_a, &a, "rw", text("002"));
    set_member(&mut s.survivor_a, &a, s.s_head, "marital_status", int(2));
    let b = editor("tksk.b", s.tksk_b.device, datetime!(2026-11-12 09:00 +8));
    set_answer(&mut s.retired_b, &b, "address", text("Jl. Contoh No. 3"));
    set_answer(&mut s.retired_b, &b, "rw", text("002"));
    set_answer(&mut s.retired_b, &b, "rt", text("005"));
    set_member(&mut s.retired_b, &b, s.r_head, "marital_status", int(1));
    sync_survivor(&mut s);
    sync_retired(&mut s);

    let later = editor("spv.panca", s.office.device, datetime!(2026-11-13 10:00 +8));
    let folded = s.survivor.combine(&mut s.retired, &merged.fold, &later).expect("fold");

    let paths: Vec<&FieldPath> = folded.disagreements.iter().map(|d| &d.path).collect();
    assert_eq!(
        paths,
        vec![&FieldPath::Answer("address".into()), &FieldPath::Member(s.s_head, "marital_status".into())],
        "the same value on both sides (rw) is no disagreement"
    );
    let address = &folded.disagreements[0];
    assert_eq!(address.kept.len(), 1);
    assert_eq!(
        (address.kept[0].value.clone(), address.kept[0].writer.user.as_str()),
        (text("Jl. Contoh No. 2"), "pkh.a")
    );
    assert_eq!((address.other.value.clone(), address.other.writer.user.as_str()), (text("Jl. Contoh No. 3"), "tksk.b"));
    assert_eq!(address.other.writer.at, "2026-11-12T01:00:00Z");
    let marital = &folded.disagreements[1];
    assert_eq!((marital.kept[0].value.clone(), marital.other.value.clone()), (int(2), int(1)));

    let state = s.survivor.state();
    assert_eq!(state.answers.get("address"), Some(&text("Jl. Contoh No. 2")), "the survivor keeps its value");
    assert_eq!(state.answers.get("rt"), Some(&text("005")), "a field only the retired side touched comes in");
    assert_eq!(member(&state, s.s_head).answers.get("marital_status"), Some(&int(2)));
    assert!(s.survivor.conflicts().is_empty(), "a fold never leaves concurrent values behind");
}

#[test]
fn merging_a_household_into_itself_or_into_a_second_survivor_is_refused() {
    let mut s = scene();
    let mut same = Household::load(s.survivor.id(), &s.survivor.save(), s.office.device).expect("load");
    let before = s.survivor.heads();
    let err = s.survivor.combine(&mut same, &Fold::default(), &s.office).expect_err("refused");
    assert!(matches!(err, ModelError::MergeIntoItself(_)), "{err}");
    assert_eq!(s.survivor.heads(), before, "nothing written");

    first_merge(&mut s);
    let (mut other, _) = Household::create(HouseholdId::random(), FORM, &s.pkh_a, &Edits::default()).expect("create");
    let retired_heads = s.retired.heads();
    let err = other.combine(&mut s.retired, &Fold::default(), &s.office).expect_err("refused");
    assert!(matches!(err, ModelError::AlreadyMerged { household, .. } if household == s.retired.id()), "{err}");
    assert_eq!(s.retired.heads(), retired_heads, "nothing written");

    // Folding the survivor back into the household it absorbed would make a cycle.
    let err = s.retired.combine(&mut s.survivor, &Fold::default(), &s.office).expect_err("refused");
    assert!(matches!(err, ModelError::AlreadyMerged { .. }), "{err}");

    for message in [err.to_string(), ModelError::MergeIntoItself(s.survivor.id()).to_string()] {
        assert!(message.starts_with(char::is_lowercase), "{message}");
        assert!(!message.contains("Sintetis") && !message.contains(HEAD_NIK), "{message}");
    }
}

#[test]
fn a_fold_that_names_changes_the_document_lacks_is_refused() {
    let mut s = scene();
    let merged = first_merge(&mut s);
    let mut wrong = merged.fold.clone();
    wrong.retired_heads = wrong.survivor_heads.clone();
    let err = s.survivor.combine(&mut s.retired, &wrong, &s.office).expect_err("refused");
    assert!(matches!(err, ModelError::FoldMismatch { household } if household == s.retired.id()), "{err}");
}
