//! Re-confirmed answers are kept: a save writes every answer the enumerator gave, even one the
//! field already holds, so a colleague's concurrent different value becomes a visible conflict;
//! and concurrent values that are all equal are no conflict at all.

use std::collections::BTreeMap;
use sync_core::entry;
use sync_core::exchange::pull_from_store;
use sync_core::form::FormDefinition;
use sync_core::ids::VillageCode;
use sync_core::model::{DeviceId, Edits, FieldPath, HouseholdId, MemberId, NewVisit, VisitId};
use sync_core::store::{DeviceIdentity, DeviceStore};
use sync_core::value::FieldValue;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

const VILLAGE: &str = "73.14.01.1001"; // Bilokka, Panca Lautang, Sidenreng Rappang

struct Device {
    _dir: TempDir,
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
    Device { _dir: dir, store }
}

fn form() -> &'static FormDefinition {
    FormDefinition::default_dtsen()
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_string())
}

fn floor() -> FieldPath {
    FieldPath::Answer("floor_area_m2".into())
}

/// Two devices holding the same household, whose floor area is 36 on both, and one member.
fn two_devices_sharing_a_household() -> (Device, Device, HouseholdId, MemberId) {
    let mut a = device("pkh.a");
    let mut b = device("tksk.b");
    let answers = BTreeMap::from([
        ("head_name".to_string(), text("Wa Ode Sintetis")),
        ("rt".to_string(), text("003")),
        ("floor_area_m2".to_string(), FieldValue::Int(36)),
        ("roof_material".to_string(), FieldValue::Int(2)),
    ]);
    let member = BTreeMap::from([
        ("full_name".to_string(), text("Wa Ode Sintetis")),
        ("presence".to_string(), FieldValue::Int(1)),
        ("sex".to_string(), FieldValue::Int(2)),
        ("relationship".to_string(), FieldValue::Int(1)),
    ]);
    let member_id = MemberId::random();
    let village = VillageCode::parse(VILLAGE).expect("village");
    let id = entry::add_household_with_ids(
        &mut a.store,
        form(),
        &village,
        HouseholdId::random(),
        answers,
        vec![(member_id, member)],
        datetime!(2026-11-02 09:00 +8),
    )
    .expect("add household")
    .household;
    pull_from_store(&a.store, &mut b.store, datetime!(2026-11-02 10:00 +8)).expect("a→b");
    (a, b, id, member_id)
}

fn answers(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, Option<FieldValue>> {
    pairs.iter().map(|(k, v)| (k.to_string(), Some(v.clone()))).collect()
}

/// A visit (found, partial) that gives `pairs` as the household's answers.
fn visit(d: &mut Device, id: HouseholdId, pairs: &[(&str, FieldValue)], at: OffsetDateTime) -> Option<String> {
    let edits = Edits {
        answers: answers(pairs),
        visit: Some(NewVisit {
            id: VisitId::random(),
            outcome: 2,
            lat: None,
            lon: None,
            accuracy_m: None,
            note: None,
            answers: BTreeMap::new(),
        }),
        ..Edits::default()
    };
    entry::save(&mut d.store, form(), id, "visit", &edits, at).expect("visit").change
}

fn edit(d: &mut Device, id: HouseholdId, pairs: &[(&str, FieldValue)], at: OffsetDateTime) -> Option<String> {
    let edits = Edits { answers: answers(pairs), ..Edits::default() };
    entry::save(&mut d.store, form(), id, "edit", &edits, at).expect("edit").change
}

fn exchange(a: &mut Device, b: &mut Device) {
    let now = datetime!(2026-11-04 09:00 +8);
    pull_from_store(&a.store, &mut b.store, now).expect("a→b");
    pull_from_store(&b.store, &mut a.store, now).expect("b→a");
}

/// The conflicts of the household on `d`: each path with its (value, user) pairs, sorted.
fn conflicts(d: &Device, id: HouseholdId) -> Vec<(FieldPath, Vec<(FieldValue, String)>)> {
    let household = d.store.load(id).expect("load").household;
    let mut out: Vec<(FieldPath, Vec<(FieldValue, String)>)> = household
        .conflicts()
        .into_iter()
        .map(|(path, values)| {
            let mut values: Vec<(FieldValue, String)> = values.into_iter().map(|a| (a.value, a.writer.user)).collect();
            values.sort_by(|x, y| x.1.cmp(&y.1));
            (path, values)
        })
        .collect();
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}

#[test]
fn a_visit_reconfirming_a_value_while_a_colleague_changes_it_lists_both_values_as_a_conflict() {
    for a_first in [true, false] {
        let (mut a, mut b, id, _) = two_devices_sharing_a_household();
        let confirmed = visit(&mut a, id, &[("floor_area_m2", FieldValue::Int(36))], datetime!(2026-11-03 09:00 +8));
        edit(&mut b, id, &[("floor_area_m2", FieldValue::Int(42))], datetime!(2026-11-03 10:30 +8));
        if a_first {
            exchange(&mut a, &mut b)
        } else {
            exchange(&mut b, &mut a)
        }
        let expected = vec![(
            floor(),
            vec![(FieldValue::Int(36), "pkh.a".to_string()), (FieldValue::Int(42), "tksk.b".to_string())],
        )];
        for d in [&a, &b] {
            assert_eq!(conflicts(d, id), expected, "a_first={a_first}");
            let listed = d.store.list(&Default::default()).expect("list");
            assert_eq!(listed[0].conflicts, 1, "the list counts the conflict (a_first={a_first})");
            let values = d.store.load(id).expect("load").household.field_values(&floor()).expect("values");
            let reconfirmed = values.iter().find(|v| v.writer.user == "pkh.a").expect("a's value is kept");
            assert_eq!(Some(&reconfirmed.writer.change), confirmed.as_ref(), "written by a's visit");
            assert_eq!(reconfirmed.writer.device, a.store.identity().device.to_string());
            assert_eq!(reconfirmed.writer.at, "2026-11-03T01:00:00Z");
        }
    }
}

#[test]
fn an_edit_naming_a_field_confirms_it_and_leaves_the_fields_it_does_not_name_alone() {
    let (mut a, mut b, id, _) = two_devices_sharing_a_household();
    let change = edit(&mut a, id, &[("floor_area_m2", FieldValue::Int(36))], datetime!(2026-11-03 09:00 +8));
    assert!(change.is_some(), "a correction that names a field writes it, even unchanged");
    edit(
        &mut b,
        id,
        &[("floor_area_m2", FieldValue::Int(42)), ("roof_material", FieldValue::Int(3))],
        datetime!(2026-11-03 10:30 +8),
    );
    exchange(&mut a, &mut b);
    for d in [&a, &b] {
        let listed = conflicts(d, id);
        assert_eq!(listed.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), vec![floor()], "{listed:?}");
        let state = d.store.load(id).expect("load").household.state();
        assert_eq!(state.answers.get("roof_material"), Some(&FieldValue::Int(3)), "a did not touch the roof");
    }
}

#[test]
fn a_member_edit_reconfirming_an_answer_keeps_it_against_a_concurrent_change() {
    let (mut a, mut b, id, member) = two_devices_sharing_a_household();
    let set = |value: i64| Edits {
        edit_members: vec![(member, BTreeMap::from([("presence".to_string(), Some(FieldValue::Int(value)))]))],
        ..Edits::default()
    };
    entry::save(&mut a.store, form(), id, "member-edit", &set(1), datetime!(2026-11-03 09:00 +8)).expect("a");
    entry::save(&mut b.store, form(), id, "member-edit", &set(2), datetime!(2026-11-03 10:00 +8)).expect("b");
    exchange(&mut a, &mut b);
    let path = FieldPath::Member(member, "presence".into());
    let expected =
        vec![(path, vec![(FieldValue::Int(1), "pkh.a".to_string()), (FieldValue::Int(2), "tksk.b".to_string())])];
    for d in [&a, &b] {
        assert_eq!(conflicts(d, id), expected);
    }
}

#[test]
fn two_devices_writing_the_same_value_at_once_is_no_conflict_but_both_writes_stay_in_history() {
    let (mut a, mut b, id, _) = two_devices_sharing_a_household();
    // Both change the floor area to 42, and both re-confirm the roof: equal values everywhere.
    visit(
        &mut a,
        id,
        &[("floor_area_m2", FieldValue::Int(42)), ("roof_material", FieldValue::Int(2))],
        datetime!(2026-11-03 09:00 +8),
    );
    visit(
        &mut b,
        id,
        &[("floor_area_m2", FieldValue::Int(42)), ("roof_material", FieldValue::Int(2))],
        datetime!(2026-11-03 10:00 +8),
    );
    exchange(&mut a, &mut b);
    for d in [&a, &b] {
        assert_eq!(conflicts(d, id), Vec::new(), "equal values are no conflict");
        assert_eq!(d.store.list(&Default::default()).expect("list")[0].conflicts, 0);
        let household = d.store.load(id).expect("load").household;
        let values = household.field_values(&floor()).expect("values");
        let mut writers: Vec<&str> = values.iter().map(|v| v.writer.user.as_str()).collect();
        writers.sort();
        assert_eq!(writers, ["pkh.a", "tksk.b"], "both writers stay attributed");
        let history = household.field_history(&floor()).expect("history");
        assert_eq!(history.len(), 3, "created, then written by a and by b: {history:?}");
    }
    // A later change to 40 by b is a plain edit seen by both: one value again.
    edit(&mut b, id, &[("floor_area_m2", FieldValue::Int(40))], datetime!(2026-11-05 09:00 +8));
    exchange(&mut a, &mut b);
    let values = a.store.load(id).expect("load").household.field_values(&floor()).expect("values");
    assert_eq!(values.iter().map(|v| v.value.clone()).collect::<Vec<_>>(), [FieldValue::Int(40)]);
}

/// The model alone: one document forked into two, each edited, then merged.
mod model {
    use super::*;
    use std::convert::Infallible;
    use sync_core::model::{Editor, Household};

    fn editor(user: &str, device: DeviceId, now: OffsetDateTime) -> Editor {
        Editor { user: user.to_string(), device, now }
    }

    fn floor_area(value: i64, confirmed: bool) -> Edits {
        Edits { answers: answers(&[("floor_area_m2", FieldValue::Int(value))]), confirmed, ..Edits::default() }
    }

    fn apply(household: &mut Household, editor: &Editor, edits: &Edits) -> bool {
        let outcome = household.apply(editor, "edit", edits, |_| Ok::<(), Infallible>(())).expect("apply");
        let Ok(((), saved)) = outcome;
        saved.is_some()
    }

    /// Two forks of a household whose floor area is 36, edited by `a_edits` and `b_edits`, merged.
    fn forked_and_merged(a_edits: &Edits, b_edits: &Edits) -> (Household, bool) {
        let (a_device, b_device) = (DeviceId::random(), DeviceId::random());
        let creator = editor("pkh.a", a_device, datetime!(2026-11-02 09:00 +8));
        let (mut a, _) =
            Household::create(HouseholdId::random(), &form().key(), &creator, &floor_area(36, false)).expect("create");
        let mut b = Household::load(a.id(), &a.save(), b_device).expect("fork");
        let a_wrote = apply(&mut a, &editor("pkh.a", a_device, datetime!(2026-11-03 09:00 +8)), a_edits);
        apply(&mut b, &editor("tksk.b", b_device, datetime!(2026-11-03 10:00 +8)), b_edits);
        a.apply_changes(&b.changes_since(&[])).expect("merge");
        (a, a_wrote)
    }

    fn listed(household: &Household) -> Vec<(FieldPath, Vec<(FieldValue, String)>)> {
        household
            .conflicts()
            .into_iter()
            .map(|(path, values)| {
                let mut values: Vec<_> = values.into_iter().map(|a| (a.value, a.writer.user)).collect();
                values.sort_by(|x, y| x.1.cmp(&y.1));
                (path, values)
            })
            .collect()
    }

    #[test]
    fn a_confirmed_put_of_the_current_value_conflicts_with_a_concurrent_other_value() {
        let (merged, a_wrote) = forked_and_merged(&floor_area(36, true), &floor_area(42, true));
        assert!(a_wrote, "the confirmation is a change of its own");
        let expected = vec![(
            floor(),
            vec![(FieldValue::Int(36), "pkh.a".to_string()), (FieldValue::Int(42), "tksk.b".to_string())],
        )];
        assert_eq!(listed(&merged), expected);
    }

    #[test]
    fn an_unconfirmed_put_of_the_current_value_writes_nothing_and_the_other_value_stands() {
        // Roster updates, folds and resolutions write only what differs.
        let (merged, a_wrote) = forked_and_merged(&floor_area(36, false), &floor_area(42, true));
        assert!(!a_wrote);
        assert_eq!(listed(&merged), Vec::new());
        assert_eq!(merged.state().answers.get("floor_area_m2"), Some(&FieldValue::Int(42)));
    }

    #[test]
    fn equal_concurrent_values_are_no_conflict_and_a_confirmation_settles_them() {
        let (merged, _) = forked_and_merged(&floor_area(42, true), &floor_area(42, true));
        assert_eq!(listed(&merged), Vec::new());
        let values = merged.field_values(&floor()).expect("values");
        assert_eq!(values.len(), 2, "both writers are still known");
        assert!(!sync_core::model::values_disagree(&values));

        // Equal confirmations on both forks, and an equal one again: still no conflict, and a
        // save that does not confirm it writes nothing over them.
        let (mut merged, _) = forked_and_merged(&floor_area(36, true), &floor_area(36, true));
        assert_eq!(listed(&merged), Vec::new());
        let later = editor("spv.c", DeviceId::random(), datetime!(2026-11-04 09:00 +8));
        assert!(!apply(&mut merged, &later, &floor_area(36, false)));
        assert!(apply(&mut merged, &later, &floor_area(36, true)), "a confirmation over them is written");
        assert_eq!(merged.field_values(&floor()).expect("values").len(), 1, "and settles them into one");
    }
}
