//! Bounded sync state: one stored response per device, none older than its lifetime, a
//! retry with a smaller page answered again, stored work acknowledged after a scope change, and
//! abandoned roster imports pruned.

use super::STORED_RESPONSE_LIFETIME;
use crate::service::Service;
use crate::service::roster::STAGED_IMPORT_LIFETIME;
use crate::service::scope::SyncCaller;
use crate::storage::{SqliteDatabase, Transactions};
use std::collections::BTreeMap;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId};
use sync_core::protocol::Role;
use sync_core::sync::{PushHousehold, SyncRequest, SyncResponse};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

const VILLAGE: &str = "73.14.01.1001";

pub(super) fn storage() -> (tempfile::TempDir, Service) {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
    (dir, Service::new(std::sync::Arc::new(db)))
}

fn noon() -> OffsetDateTime {
    time::macros::datetime!(2026-11-20 12:00 UTC)
}

fn enumerator(device: DeviceId) -> SyncCaller {
    SyncCaller {
        user: "pkh.contoh".into(),
        role: Role::Enumerator,
        device,
        active: vec![VILLAGE.to_string()],
        ended: Vec::new(),
        registered_at: noon() - time::Duration::days(30),
    }
}

/// A new synthetic household's creation, pushed with its village.
fn new_household(caller: &SyncCaller, now: OffsetDateTime) -> PushHousehold {
    let form = sync_core::form::FormDefinition::default_dtsen();
    let editor = Editor { user: caller.user.clone(), device: caller.device, now };
    let edits = Edits {
        answers: BTreeMap::from([
            ("village_code".to_string(), Some(FieldValue::Text(VILLAGE.to_string()))),
            ("head_name".to_string(), Some(FieldValue::Text("La Sintetis".to_string()))),
        ]),
        ..Edits::default()
    };
    let id = HouseholdId::random();
    let (_, change) = Household::create(id, &form.key(), &editor, &edits).expect("create");
    PushHousehold {
        household: id,
        village: Some(VILLAGE.to_string()),
        changes: vec![serde_bytes::ByteBuf::from(change.bytes)],
    }
}

fn request(push: Vec<PushHousehold>, cursor: Option<u64>, max_changes: u32) -> SyncRequest {
    SyncRequest {
        batch: uuid::Uuid::new_v4(),
        cursors: cursor.map(|c| BTreeMap::from([(VILLAGE.to_string(), c)])).unwrap_or_default(),
        push,
        max_changes,
    }
}

fn decode(body: &[u8]) -> SyncResponse {
    sync_core::sync::decode(body, 64 * 1024 * 1024).expect("decode response")
}

/// Whether the response to `batch` of `device` is remembered, and for which page size.
fn stored(service: &Service, device: DeviceId, batch: uuid::Uuid) -> Option<Option<u32>> {
    service.database().read(|tx| tx.stored_response(device, batch)).expect("stored response").map(|r| r.max_changes)
}

#[test]
fn a_device_keeps_one_stored_response_however_often_it_syncs() {
    let (_dir, storage) = storage();
    let a = enumerator(DeviceId::random());
    let b = enumerator(DeviceId::random());
    storage.sync(&b, &request(vec![new_household(&b, noon())], Some(0), 100), noon()).expect("b syncs");
    let b_batch = {
        let sync = request(vec![new_household(&b, noon())], Some(0), 100);
        storage.sync(&b, &sync, noon()).expect("b syncs again");
        sync.batch
    };
    let mut last = None;
    let mut earlier = Vec::new();
    for round in 0..60 {
        let push = if round % 3 == 0 { vec![new_household(&a, noon())] } else { Vec::new() };
        let sync = request(push, Some(0), 100);
        let body = storage.sync(&a, &sync, noon()).expect("a syncs");
        assert!(stored(&storage, a.device, sync.batch).is_some(), "round {round}: the pending batch is kept");
        assert!(earlier.iter().all(|b| stored(&storage, a.device, *b).is_none()), "round {round}: only that one");
        earlier.push(sync.batch);
        last = Some((sync, body));
    }
    assert!(stored(&storage, b.device, b_batch).is_some(), "another device keeps its own");
    // The pending batch is still answered byte for byte.
    let (sync, body) = last.expect("synced");
    assert_eq!(storage.sync(&a, &sync, noon()).expect("retry"), body);
}

/// Issue 15 (server disk): a stored response keeps where its pulled changes are in the feed, not
/// their bytes (the stored documents hold them), and a retry is still answered byte for byte,
/// without the changes the feed gained after the first answer.
#[test]
fn a_stored_response_keeps_the_place_of_its_pulled_changes_and_replays_byte_for_byte() {
    let (_dir, storage) = storage();
    let writer = enumerator(DeviceId::random());
    let reader = enumerator(DeviceId::random());
    let households: Vec<PushHousehold> = (0..10).map(|_| new_household(&writer, noon())).collect();
    storage.sync(&writer, &request(households, None, 100), noon()).expect("writer pushes 10 households");

    // The reader pushes one of its own (left out of its pull) and pulls the writer's ten.
    let sync = request(vec![new_household(&reader, noon())], Some(0), 100);
    let body = storage.sync(&reader, &sync, noon()).expect("first try");
    let first = decode(&body);
    let pulled = |r: &SyncResponse| r.pull.iter().map(|h| h.changes.len()).sum::<usize>();
    assert_eq!((pulled(&first), first.acknowledged, first.cursors[VILLAGE]), (10, 1, 11));

    let kept = storage.database().read(|tx| tx.stored_response(reader.device, sync.batch)).expect("read");
    let kept = kept.expect("the pending batch's response is kept");
    assert!(decode(&kept.body).pull.is_empty(), "the stored body carries no change bytes");
    assert!(kept.body.len() < body.len() / 4, "stored {} B for a {} B answer", kept.body.len(), body.len());

    // The feed moves on; the answer was lost and the same batch comes back.
    let more: Vec<PushHousehold> = (0..3).map(|_| new_household(&writer, noon())).collect();
    storage.sync(&writer, &request(more, None, 100), noon()).expect("writer pushes 3 more");
    assert_eq!(storage.sync(&reader, &sync, noon()).expect("retry"), body, "replayed byte for byte");

    // A cursor this numbering never handed out is read from the start, and replayed the same way.
    let restored = request(Vec::new(), Some(99), 100);
    let from_start = storage.sync(&reader, &restored, noon()).expect("cursor past the head");
    assert_eq!((pulled(&decode(&from_start)), decode(&from_start).cursors[VILLAGE]), (13, 14));
    assert_eq!(storage.sync(&reader, &restored, noon()).expect("retry"), from_start);

    // A page cut short replays the same cut.
    let small = request(Vec::new(), Some(0), 4);
    let cut = storage.sync(&reader, &small, noon()).expect("a small page");
    assert_eq!((pulled(&decode(&cut)), decode(&cut).has_more), (4, true));
    storage.sync(&writer, &request(vec![new_household(&writer, noon())], None, 100), noon()).expect("one more");
    assert_eq!(storage.sync(&reader, &small, noon()).expect("retry"), cut);
}

/// Issue 15 (server disk): the first dictionary is trained on households' first state; after
/// visits rewrote enough of them, a dictionary trained on the rewritten documents replaces it
/// for later writes, and rows written before stay readable with the one they name.
#[test]
fn documents_rewritten_by_visits_get_a_dictionary_that_fits_them() {
    use crate::service::kept::{RETRAIN_AFTER, Retrained};
    use crate::storage::at_rest;
    let (_dir, storage) = storage();
    let seeder = enumerator(DeviceId::random());
    let visitor = enumerator(DeviceId::random());
    let created: Vec<PushHousehold> = (0..300).map(|_| new_household(&seeder, noon())).collect();
    storage.sync(&seeder, &request(created.clone(), None, 100), noon()).expect("first upload");
    let current = || storage.database().read(|tx| tx.current_kept_dictionary()).expect("read");
    let first = current().expect("trained on the first upload");

    // Visits: the visitor edits every household three times, 100 households per sync.
    let mut households: Vec<Household> = created
        .iter()
        .map(|p| Household::from_changes(p.household, &[p.changes[0].to_vec()], visitor.device).expect("load"))
        .collect();
    let mut rewritten = 0;
    for round in 0..3u32 {
        let at = noon() + time::Duration::hours(i64::from(round) + 1);
        let editor = Editor { user: visitor.user.clone(), device: visitor.device, now: at };
        for (chunk_index, chunk) in households.chunks_mut(100).enumerate() {
            let push = chunk
                .iter_mut()
                .enumerate()
                .map(|(i, household)| {
                    let n = (chunk_index * 100 + i) as i64 + i64::from(round) * 1000;
                    let edits = Edits {
                        answers: BTreeMap::from([
                            ("floor_area_m2".to_string(), Some(FieldValue::Int(20 + n % 200))),
                            ("roof_material".to_string(), Some(FieldValue::Int(1 + n % 5))),
                            ("phone".to_string(), Some(FieldValue::Text(format!("0800{:08}", n * 7919 % 100_000_000)))),
                        ]),
                        ..Edits::default()
                    };
                    let (_, change) =
                        household.apply(&editor, "visit", &edits, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
                    PushHousehold {
                        household: household.id(),
                        village: None,
                        changes: vec![serde_bytes::ByteBuf::from(change.expect("a change").bytes)],
                    }
                })
                .collect();
            let answer = decode(&storage.sync(&visitor, &request(push, None, 100), at).expect("visit synced"));
            assert_eq!((answer.acknowledged, answer.rejected.len()), (100, 0), "{:?}", answer.rejected);
            rewritten += 100;
            if rewritten < RETRAIN_AFTER {
                assert_eq!(current(), Some(first), "not due after {rewritten} rewritten documents");
            }
        }
    }
    storage.wait_for_dictionary_training();
    let second = current().expect("a dictionary");
    assert_ne!(second, first, "trained again after {RETRAIN_AFTER} rewritten documents");

    // The new one keeps today's documents in at most 80 % of what the first one needs.
    let ids: Vec<HouseholdId> = households.iter().map(|h| h.id()).collect();
    let documents: Vec<Vec<u8>> = households.iter().map(|h| h.save_nocompress()).collect();
    let documents: Vec<&[u8]> = documents.iter().map(Vec::as_slice).collect();
    let dictionary = |id| storage.database().read(|tx| tx.kept_dictionary(id)).expect("read").expect("kept");
    let (old, new) = (
        at_rest::compressed_size(&documents, &dictionary(first)),
        at_rest::compressed_size(&documents, &dictionary(second)),
    );
    assert!(new * 10 <= old * 8, "new dictionary {new} B, first {old} B");
    // Every household reads back whichever dictionary its row names.
    assert_eq!(storage.documents(&ids).expect("documents").len(), 300);
    // Nothing more is due until twice as many documents were rewritten.
    assert_eq!(storage.retrain_dictionary_if_due(noon() + time::Duration::days(1)).expect("check"), Retrained::NotDue);
}

#[test]
fn stored_responses_past_their_lifetime_are_dropped() {
    let (_dir, storage) = storage();
    let gone = enumerator(DeviceId::random());
    let recent = enumerator(DeviceId::random());
    let active = enumerator(DeviceId::random());
    let expired = noon() - STORED_RESPONSE_LIFETIME - time::Duration::minutes(1);
    let gone_sync = request(Vec::new(), Some(0), 100);
    storage.sync(&gone, &gone_sync, expired).expect("a tablet that never comes back");
    let recent_sync = request(Vec::new(), Some(0), 100);
    let recent_at = noon() - STORED_RESPONSE_LIFETIME + time::Duration::minutes(1);
    storage.sync(&recent, &recent_sync, recent_at).expect("a tablet offline for days");
    assert!(stored(&storage, gone.device, gone_sync.batch).is_some());
    storage.sync(&active, &request(Vec::new(), Some(0), 100), noon()).expect("another device syncs");
    assert!(stored(&storage, gone.device, gone_sync.batch).is_none(), "expired");
    assert!(stored(&storage, recent.device, recent_sync.batch).is_some(), "still within the lifetime");
}

#[test]
fn a_retry_with_a_smaller_page_is_answered_again_with_fewer_changes() {
    let (_dir, storage) = storage();
    let writer = enumerator(DeviceId::random());
    let reader = enumerator(DeviceId::random());
    let households: Vec<PushHousehold> = (0..10).map(|_| new_household(&writer, noon())).collect();
    storage.sync(&writer, &request(households, None, 100), noon()).expect("writer pushes 10 households");

    let mut sync = request(Vec::new(), Some(0), 100);
    let big = decode(&storage.sync(&reader, &sync, noon()).expect("first try"));
    let pulled = |r: &SyncResponse| r.pull.iter().map(|h| h.changes.len()).sum::<usize>();
    assert_eq!((pulled(&big), big.has_more), (10, false));

    // The big answer was cut on the way; the device retries the same batch with a smaller page.
    sync.max_changes = 4;
    let body = storage.sync(&reader, &sync, noon()).expect("retry with a smaller page");
    let small = decode(&body);
    assert_eq!((pulled(&small), small.has_more), (4, true), "recomputed, not the stored big answer");
    assert!(small.cursors[VILLAGE] < big.cursors[VILLAGE], "the cursor moves only past what was sent");
    assert_eq!(stored(&storage, reader.device, sync.batch), Some(Some(4)), "the smaller answer replaced the big one");
    assert_eq!(storage.sync(&reader, &sync, noon()).expect("retry again"), body, "now replayed byte for byte");
}

#[test]
fn stored_work_is_acknowledged_when_its_batch_comes_back_after_a_scope_change() {
    let (_dir, storage) = storage();
    let mut device = enumerator(DeviceId::random());
    let push = new_household(&device, noon());
    let first = decode(&storage.sync(&device, &request(vec![push.clone()], None, 100), noon()).expect("stored"));
    assert_eq!((first.acknowledged, first.rejected.len()), (1, 0));

    // The village is taken away entirely; the device did not get the answer and sends the same
    // changes again, under a new batch id (its stored response is gone too).
    device.active.clear();
    let again = decode(&storage.sync(&device, &request(vec![push], None, 100), noon()).expect("sent again"));
    assert_eq!((again.acknowledged, again.rejected.len()), (1, 0), "{:?}", again.rejected);

    // New work in that village is still refused.
    let refused =
        decode(&storage.sync(&device, &request(vec![new_household(&device, noon())], None, 100), noon()).expect("new"));
    assert_eq!(refused.rejected.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["out_of_scope"]);
}

#[test]
fn an_abandoned_roster_import_is_pruned_when_another_is_staged() {
    let (_dir, storage) = storage();
    let (abandoned, fresh, next) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let started = noon() - STAGED_IMPORT_LIFETIME - time::Duration::minutes(1);
    storage.roster_stage(abandoned, 0, "admin", &[], started).expect("stage");
    storage.roster_stage(abandoned, 1, "admin", &[], started).expect("stage");
    storage.roster_stage(fresh, 0, "admin", &[], noon() - time::Duration::hours(1)).expect("stage");
    storage.roster_stage(next, 0, "admin", &[], noon()).expect("stage another import");
    let staged = |import: uuid::Uuid| {
        storage
            .database()
            .read(|tx| Ok((tx.roster_import(import)?.is_some(), tx.roster_chunk(import, 0)?.is_some())))
            .expect("read")
    };
    assert_eq!(staged(abandoned), (false, false), "dropped with its chunks");
    assert_eq!(staged(fresh), (true, true), "younger than a day");
}

#[test]
fn a_decision_made_before_a_concurrent_write_is_made_again_under_the_lock() {
    use std::collections::BTreeMap;
    use sync_core::model::{DeviceId, Editor, Edits, Household};
    use sync_core::sync::{PushHousehold, SyncRequest};
    use sync_core::value::FieldValue;
    let (_dir, storage) = storage();
    use crate::storage::Transactions;
    let form = sync_core::form::FormDefinition::default_dtsen();
    let forms = &sync_core::form::FormSet::built_in();
    let village = sync_core::ids::VillageCode::parse("73.14.01.1001").expect("Bilokka").to_string();
    let now = time::macros::datetime!(2026-11-20 09:00 UTC);
    let caller = |device| SyncCaller {
        user: "pkh.contoh".into(),
        role: Role::Enumerator,
        device,
        active: vec![village.clone()],
        ended: Vec::new(),
        registered_at: now - time::Duration::days(1),
    };
    let (a, b) = (caller(DeviceId::random()), caller(DeviceId::random()));
    let set = |field: &str, value: FieldValue| Edits {
        answers: BTreeMap::from([(field.to_string(), Some(value))]),
        ..Edits::default()
    };
    let request = |push: PushHousehold| SyncRequest {
        batch: uuid::Uuid::new_v4(),
        cursors: BTreeMap::new(),
        push: vec![push],
        max_changes: 100,
    };
    let editor = |who: &SyncCaller| Editor { user: who.user.clone(), device: who.device, now };
    let id = HouseholdId::random();
    let mut created = set("village_code", FieldValue::Text(village.clone()));
    created.answers.insert("head_name".into(), Some(FieldValue::Text("La Sintetis".into())));
    let (mut on_a, create) = Household::create(id, &form.key(), &editor(&a), &created).expect("create");
    let push = |changes: Vec<Vec<u8>>, village: Option<String>| PushHousehold {
        household: id,
        village,
        changes: changes.into_iter().map(serde_bytes::ByteBuf::from).collect(),
    };
    storage.sync(&a, &request(push(vec![create.bytes.clone()], Some(village.clone()))), now).expect("create");
    let mut on_b = Household::from_changes(id, &[create.bytes], b.device).expect("b has it");
    let edit = |h: &mut Household, who: &SyncCaller, field: &str, value: i64| {
        let saved = h.apply(&editor(who), "edit", &set(field, FieldValue::Int(value)), |_| Ok::<(), ()>(()));
        saved.expect("apply").expect("ok").1.expect("a change").bytes
    };
    let b_request = request(push(vec![edit(&mut on_b, &b, "floor_area_m2", 36)], None));
    let a_request = request(push(vec![edit(&mut on_a, &a, "roof_material", 2)], None));

    // B's checks run against the document as it was; A's edit commits before B takes the lock.
    let decisions = storage
        .database()
        .read(|tx| b_request.push.iter().map(|p| super::decide(tx, &b, p, forms, now)).collect::<Result<Vec<_>, _>>())
        .expect("decide");
    storage.sync(&a, &a_request, now).expect("a commits first");
    storage
        .database()
        .write(|tx| {
            super::commit(
                tx,
                &super::Pulling { recent: &Default::default(), max_changes: 100 },
                &b,
                &b_request,
                Some(&decisions),
                forms,
                now,
            )
        })
        .expect("b commits");

    // The stored document holds both edits: B's stale decision was made again.
    let doc: Vec<u8> = storage.documents(&[id]).expect("stored").pop().expect("the household").2;
    let answers = Household::load(id, &doc, DeviceId::random()).expect("load").state().answers;
    assert_eq!(answers.get("floor_area_m2"), Some(&FieldValue::Int(36)));
    assert_eq!(answers.get("roof_material"), Some(&FieldValue::Int(2)));
}
