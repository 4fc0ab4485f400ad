//! Bounded sync state on SQLite: one stored response per device, none older than its lifetime, a
//! retry with a smaller page answered again, stored work acknowledged after a scope change, and
//! abandoned roster imports pruned.

use super::STORED_RESPONSE_LIFETIME;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::sqlite::roster::STAGED_IMPORT_LIFETIME;
use crate::storage::{Storage, SyncCaller};
use rusqlite::params;
use std::collections::BTreeMap;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId};
use sync_core::protocol::Role;
use sync_core::sync::{PushHousehold, SyncRequest, SyncResponse};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

const VILLAGE: &str = "73.14.01.1001";

fn storage() -> (tempfile::TempDir, SqliteStorage) {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let storage = SqliteStorage::open(&dir.path().join("server.db")).expect("open");
    (dir, storage)
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

fn stored_responses(storage: &SqliteStorage, device: Option<DeviceId>) -> i64 {
    storage
        .read(|conn| {
            Ok(match device {
                Some(d) => conn.query_row(
                    "SELECT count(*) FROM sync_batches WHERE device_id = ?1",
                    params![d.to_string()],
                    |r| r.get(0),
                )?,
                None => conn.query_row("SELECT count(*) FROM sync_batches", [], |r| r.get(0))?,
            })
        })
        .expect("count stored responses")
}

#[test]
fn a_device_keeps_one_stored_response_however_often_it_syncs() {
    let (_dir, storage) = storage();
    let a = enumerator(DeviceId::random());
    let b = enumerator(DeviceId::random());
    storage.sync(&b, &request(vec![new_household(&b, noon())], Some(0), 100), noon()).expect("b syncs");
    let mut last = None;
    for round in 0..60 {
        let push = if round % 3 == 0 { vec![new_household(&a, noon())] } else { Vec::new() };
        let sync = request(push, Some(0), 100);
        let body = storage.sync(&a, &sync, noon()).expect("a syncs");
        assert_eq!(stored_responses(&storage, Some(a.device)), 1, "round {round}");
        last = Some((sync, body));
    }
    assert_eq!(stored_responses(&storage, None), 2, "one row for each device, whatever the number of syncs");
    // The pending batch is still answered byte for byte.
    let (sync, body) = last.expect("synced");
    assert_eq!(storage.sync(&a, &sync, noon()).expect("retry"), body);
}

#[test]
fn stored_responses_past_their_lifetime_are_dropped() {
    let (_dir, storage) = storage();
    let gone = enumerator(DeviceId::random());
    let recent = enumerator(DeviceId::random());
    let active = enumerator(DeviceId::random());
    let expired = noon() - STORED_RESPONSE_LIFETIME - time::Duration::minutes(1);
    storage.sync(&gone, &request(Vec::new(), Some(0), 100), expired).expect("a tablet that never comes back");
    let recent_sync = request(Vec::new(), Some(0), 100);
    let recent_at = noon() - STORED_RESPONSE_LIFETIME + time::Duration::minutes(1);
    storage.sync(&recent, &recent_sync, recent_at).expect("a tablet offline for days");
    assert_eq!(stored_responses(&storage, None), 2);
    storage.sync(&active, &request(Vec::new(), Some(0), 100), noon()).expect("another device syncs");
    assert_eq!(stored_responses(&storage, Some(gone.device)), 0, "expired");
    assert_eq!(stored_responses(&storage, Some(recent.device)), 1, "still within the lifetime");
    assert_eq!(stored_responses(&storage, None), 2);
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
    assert_eq!(stored_responses(&storage, Some(reader.device)), 1, "the smaller answer replaced the big one");
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
    let count = |table: &str, column: &str, import: uuid::Uuid| -> i64 {
        storage
            .read(|conn| {
                Ok(conn.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
                    params![import.to_string()],
                    |r| r.get(0),
                )?)
            })
            .expect("count")
    };
    assert_eq!((count("roster_imports", "id", abandoned), count("roster_chunks", "import_id", abandoned)), (0, 0));
    assert_eq!((count("roster_imports", "id", fresh), count("roster_chunks", "import_id", fresh)), (1, 1));
}
