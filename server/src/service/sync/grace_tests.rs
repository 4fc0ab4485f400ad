//! The bounded grace after an assignment ends: pending work of a device that held the
//! village is accepted within the grace for households that existed before the end; everything
//! else is `out_of_scope` and stored nowhere, and a refusal names no village that was not the
//! caller's.

use crate::service::Service;
use crate::service::scope::{EndedVillage, SyncCaller};
use crate::storage::Transactions;
use std::collections::BTreeMap;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId};
use sync_core::protocol::Role;
use sync_core::sync::{PushHousehold, SyncRequest, SyncResponse};
use sync_core::value::FieldValue;
use time::{Duration, OffsetDateTime};

const VILLAGE: &str = "73.14.01.1001";
const OTHER_VILLAGE: &str = "73.14.01.1002";

fn storage() -> (tempfile::TempDir, Service) {
    super::tests::storage()
}

/// When the device first logged in: well before anything these tests write.
fn registered() -> OffsetDateTime {
    time::macros::datetime!(2026-11-01 08:00 UTC)
}

/// When the assignment ended.
fn end() -> OffsetDateTime {
    time::macros::datetime!(2026-11-18 12:00 UTC)
}

fn holding(user: &str, device: DeviceId, village: &str) -> SyncCaller {
    SyncCaller {
        user: user.into(),
        role: Role::Enumerator,
        device,
        active: vec![village.to_string()],
        ended: Vec::new(),
        registered_at: registered(),
    }
}

/// The caller after the village was taken: `held` before the end, the grace `open` or not.
fn after_end(device: DeviceId, held: bool, open: bool) -> SyncCaller {
    let ended = EndedVillage {
        village: VILLAGE.to_string(),
        ended_at: end(),
        grace_until: end() + Duration::days(14),
        grace_open: open,
        held_before_end: held,
    };
    SyncCaller {
        user: "pkh.lama".into(),
        role: Role::Enumerator,
        device,
        active: Vec::new(),
        ended: vec![ended],
        registered_at: registered(),
    }
}

fn editor(caller: &SyncCaller, now: OffsetDateTime) -> Editor {
    Editor { user: caller.user.clone(), device: caller.device, now }
}

/// A new synthetic household in `village`, created by `caller` at `at`: the document and its push.
fn create(caller: &SyncCaller, village: &str, at: OffsetDateTime) -> (Household, PushHousehold) {
    let form = sync_core::form::FormDefinition::default_dtsen();
    let edits = Edits {
        answers: BTreeMap::from([
            ("village_code".to_string(), Some(FieldValue::Text(village.to_string()))),
            ("head_name".to_string(), Some(FieldValue::Text("La Sintetis".to_string()))),
        ]),
        ..Edits::default()
    };
    let id = HouseholdId::random();
    let (household, change) = Household::create(id, &form.key(), &editor(caller, at), &edits).expect("create");
    let push = PushHousehold {
        household: id,
        village: Some(village.to_string()),
        changes: vec![serde_bytes::ByteBuf::from(change.bytes)],
    };
    (household, push)
}

/// An edit of `household` by `caller` at `at` (floor area), as a push without the village.
fn edit(household: &mut Household, caller: &SyncCaller, at: OffsetDateTime) -> PushHousehold {
    let edits = Edits {
        answers: BTreeMap::from([("floor_area_m2".to_string(), Some(FieldValue::Int(42)))]),
        ..Edits::default()
    };
    let saved = household.apply(&editor(caller, at), "edit", &edits, |_| Ok::<(), ()>(()));
    let change = saved.expect("apply").expect("valid").1.expect("a change");
    PushHousehold { household: household.id(), village: None, changes: vec![serde_bytes::ByteBuf::from(change.bytes)] }
}

/// `caller`'s copy of a household another device created (from that device's push).
fn copy(push: &PushHousehold, caller: &SyncCaller) -> Household {
    let changes: Vec<Vec<u8>> = push.changes.iter().map(|c| c.to_vec()).collect();
    Household::from_changes(push.household, &changes, caller.device).expect("copy")
}

fn sync(storage: &Service, caller: &SyncCaller, push: Vec<PushHousehold>, now: OffsetDateTime) -> SyncResponse {
    let request = SyncRequest { batch: uuid::Uuid::new_v4(), cursors: BTreeMap::new(), push, max_changes: 100 };
    sync_core::sync::decode(&storage.sync(caller, &request, now).expect("sync"), 64 << 20).expect("decode")
}

/// Changes in the feed of both villages.
fn stored_changes(storage: &Service) -> usize {
    storage
        .database()
        .read(|tx| {
            let mut n = 0;
            for village in [VILLAGE, OTHER_VILLAGE] {
                let head = tx.feed_head(village)?;
                n += tx.feed_after(village, 0, head, None, u32::MAX)?.len();
            }
            Ok(n)
        })
        .expect("count")
}

fn refusals(response: &SyncResponse) -> Vec<(&str, &str)> {
    response.rejected.iter().map(|r| (r.code.as_str(), r.reason.as_str())).collect()
}

#[test]
fn the_device_that_held_the_village_uploads_its_pending_work_within_the_grace() {
    let (_dir, storage) = storage();
    let device = DeviceId::random();
    let before = holding("pkh.lama", device, VILLAGE);
    // Stored before the end, and edited offline after it; another household created offline
    // before the end and never sent.
    let (mut stored, push) = create(&before, VILLAGE, end() - Duration::days(3));
    sync(&storage, &before, vec![push], end() - Duration::days(3));
    let (_, unsent) = create(&before, VILLAGE, end() - Duration::hours(2));
    let pending_edit = edit(&mut stored, &before, end() + Duration::days(1));

    let response =
        sync(&storage, &after_end(device, true, true), vec![pending_edit, unsent], end() + Duration::days(2));
    assert_eq!((response.acknowledged, refusals(&response)), (2, vec![]));
    assert_eq!(stored_changes(&storage), 3);
    assert!(response.villages.is_empty() && response.pull.is_empty(), "nothing of the village is sent back");
}

#[test]
fn work_created_after_the_end_or_from_another_device_or_after_the_grace_is_out_of_scope() {
    let (_dir, storage) = storage();
    let device = DeviceId::random();
    let before = holding("pkh.lama", device, VILLAGE);
    let (mut stored, created) = create(&before, VILLAGE, end() - Duration::days(3));
    sync(&storage, &before, vec![created.clone()], end() - Duration::days(3));
    // A colleague who holds the village now creates a household after the end.
    let colleague = holding("pkh.baru", DeviceId::random(), VILLAGE);
    let (_, later) = create(&colleague, VILLAGE, end() + Duration::hours(1));
    sync(&storage, &colleague, vec![later.clone()], end() + Duration::hours(1));
    let stored_before = stored_changes(&storage);

    let now = end() + Duration::days(2);
    let in_grace = after_end(device, true, true);
    let newcomer = after_end(DeviceId::random(), false, true);
    let closed = after_end(device, true, false);
    let cases = [
        (
            "a household the device created after the end",
            &in_grace,
            create(&in_grace, VILLAGE, end() + Duration::hours(3)).1,
        ),
        ("an edit of a household stored after the end", &in_grace, edit(&mut copy(&later, &in_grace), &in_grace, now)),
        (
            "an edit from a device that never held the village",
            &newcomer,
            edit(&mut copy(&created, &newcomer), &newcomer, now),
        ),
        (
            "a new household from a device that never held it",
            &newcomer,
            create(&newcomer, VILLAGE, end() - Duration::days(1)).1,
        ),
        ("an edit after the grace", &closed, edit(&mut stored, &closed, now)),
    ];
    for (case, caller, push) in cases {
        let response = sync(&storage, caller, vec![push], now);
        let refused = refusals(&response);
        assert_eq!(refused.len(), 1, "{case}: {refused:?}");
        assert_eq!(refused[0].0, "out_of_scope", "{case}: {refused:?}");
        assert!(refused[0].1.contains("supervisor"), "{case}: says what to do: {}", refused[0].1);
        assert_eq!(response.acknowledged, 0, "{case}");
    }
    assert_eq!(stored_changes(&storage), stored_before, "nothing of the refused work was stored");
}

#[test]
fn a_refusal_names_nothing_of_a_village_that_was_never_the_callers() {
    let (_dir, storage) = storage();
    let other = holding("pkh.lain", DeviceId::random(), OTHER_VILLAGE);
    let (_, push) = create(&other, OTHER_VILLAGE, end());
    sync(&storage, &other, vec![push.clone()], end());

    let outsider = after_end(DeviceId::random(), true, true);
    let pushed = edit(&mut copy(&push, &outsider), &outsider, end() + Duration::hours(1));
    let response = sync(&storage, &outsider, vec![pushed], end() + Duration::hours(1));
    let refused = refusals(&response);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "out_of_scope");
    assert!(!refused[0].1.contains(OTHER_VILLAGE), "the household's village is not named: {}", refused[0].1);
}
