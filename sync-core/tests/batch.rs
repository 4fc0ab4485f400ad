//! The device side of batch acknowledgement: a retry after a lost response carries exactly the
//! lost batch, and its response acknowledges exactly that, never work saved since.

use std::collections::BTreeMap;
use sync_core::entry;
use sync_core::form::FormDefinition;
use sync_core::ids::VillageCode;
use sync_core::model::{DeviceId, Edits};
use sync_core::store::{DB_FILE, DeviceIdentity, DeviceStore};
use sync_core::sync::{SyncResponse, apply_response, build_request};
use sync_core::value::FieldValue;
use tempfile::TempDir;
use time::macros::datetime;
use uuid::Uuid;

const VILLAGE: &str = "73.14.01.1001"; // Bilokka, Panca Lautang, Sidenreng Rappang

fn store(dir: &TempDir) -> DeviceStore {
    let identity = DeviceIdentity {
        device: DeviceId::random(),
        user: "pkh.a".into(),
        form: FormDefinition::default_dtsen().key(),
    };
    let village = VillageCode::parse(VILLAGE).expect("real village");
    DeviceStore::create(dir.path(), &identity, &[village], datetime!(2026-11-01 08:00 +8)).expect("create")
}

fn answer(field: &str, value: i64) -> Edits {
    Edits { answers: BTreeMap::from([(field.to_string(), Some(FieldValue::Int(value)))]), ..Edits::default() }
}

#[test]
fn a_retry_resends_exactly_the_lost_batch_and_acknowledges_only_it() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = store(&dir);
    let form = FormDefinition::default_dtsen();
    let village = VillageCode::parse(VILLAGE).expect("village");
    let now = datetime!(2026-11-02 09:00 +8);
    let answers = BTreeMap::from([("head_name".to_string(), FieldValue::Text("La Sintetis".into()))]);
    let id = entry::add_household(&mut store, form, &village, answers, Vec::new(), now).expect("add").household;

    // First attempt: the new household's creation, with its village.
    let first = build_request(&mut store, &[], Uuid::new_v4(), 100, now).expect("request");
    assert_eq!(first.push.len(), 1);
    assert_eq!(first.push[0].changes.len(), 1);
    assert_eq!(first.push[0].village.as_deref(), Some(village.as_str()));

    // The response is lost; the field worker saves again before retrying.
    entry::save(&mut store, form, id, "edit", &answer("floor_area_m2", 36), now).expect("edit");
    let retry = build_request(&mut store, &[], Uuid::new_v4(), 100, now).expect("retry");
    assert_eq!(retry, first, "a retry carries the lost batch, id and changes, and nothing newer");

    // The (replayed) response acknowledges the batch: the creation goes, the new edit stays.
    let response = SyncResponse { acknowledged: 1, ..SyncResponse::default() };
    let outcome = apply_response(&mut store, &retry, &response, now).expect("apply");
    assert_eq!(outcome.acknowledged, 1);
    let outbox = store.outbox().expect("outbox");
    assert_eq!(outbox.len(), 1, "the edit saved after the lost batch is still unsent");

    // The next batch is fresh and carries the edit, without the village (the server knows it).
    let fresh = Uuid::new_v4();
    let next = build_request(&mut store, &[], fresh, 100, now).expect("next");
    assert_eq!(next.batch, fresh);
    assert_eq!(next.push.len(), 1);
    assert_eq!(next.push[0].changes.len(), 1);
    assert_eq!(next.push[0].village, None);
}

#[test]
fn a_refused_or_resend_household_keeps_its_changes() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = store(&dir);
    let form = FormDefinition::default_dtsen();
    let village = VillageCode::parse(VILLAGE).expect("village");
    let now = datetime!(2026-11-02 09:00 +8);
    let mut ids = Vec::new();
    for head in ["La Sintetis", "Wa Contoh", "Baso Uji"] {
        let answers = BTreeMap::from([("head_name".to_string(), FieldValue::Text(head.into()))]);
        ids.push(entry::add_household(&mut store, form, &village, answers, Vec::new(), now).expect("add").household);
    }
    let request = build_request(&mut store, &[], Uuid::new_v4(), 100, now).expect("request");
    let response = SyncResponse {
        acknowledged: 1,
        rejected: vec![sync_core::sync::Rejection {
            household: ids[0],
            code: "out_of_scope".into(),
            reason: "not assigned to you".into(),
        }],
        need_full: vec![ids[1]],
        ..SyncResponse::default()
    };
    let outcome = apply_response(&mut store, &request, &response, now).expect("apply");
    assert_eq!((outcome.acknowledged, outcome.rejected), (1, 1));
    let outbox = store.outbox().expect("outbox");
    let kept: Vec<(String, bool)> = outbox.iter().map(|e| (e.household.clone(), e.rejected_reason.is_some())).collect();
    assert_eq!(kept, vec![(ids[0].to_string(), true), (ids[1].to_string(), false)]);
    // The refused change is not sent again; the other goes in full.
    let next = build_request(&mut store, &[ids[1]], Uuid::new_v4(), 100, now).expect("next");
    assert_eq!(next.push.iter().map(|p| p.household).collect::<Vec<_>>(), vec![ids[1]]);
}

#[test]
fn a_version_1_store_is_upgraded_on_open() {
    let dir = TempDir::new().expect("temp dir");
    drop(store(&dir));
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
        conn.execute_batch(
            "DROP TABLE forms; DROP TABLE form_defaults; DROP TABLE forms_token;
             DROP TABLE photo_refs; DROP TABLE photos;
             DROP TABLE household_log; ALTER TABLE households DROP COLUMN registers;
             DROP TABLE repairs; DROP TABLE page_sizes; DROP INDEX outbox_batch; ALTER TABLE outbox DROP COLUMN batch;
             PRAGMA user_version = 1;",
        )
        .expect("downgrade to version 1");
    }
    let mut store = DeviceStore::open(dir.path()).expect("a version 1 store opens");
    build_request(&mut store, &[], Uuid::new_v4(), 100, datetime!(2026-11-02 09:00 +8)).expect("and syncs");
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    assert_eq!(version, 6);
    assert!(store.repairs().expect("repairs table").is_empty());
    assert_eq!(store.forms_token().expect("forms tables"), None);
    assert_eq!(store.forms().expect("forms").keys().collect::<Vec<_>>(), ["dtsen-ground-check@1"]);
    assert_eq!(store.unsent_photos().expect("photo tables"), (0, 0));
    let logged: i64 = conn.query_row("SELECT count(*) FROM household_log", [], |r| r.get(0)).expect("log table");
    assert_eq!(logged, 0);
}

#[test]
fn page_sizes_are_kept_between_syncs() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = store(&dir);
    let sizes = store.page_sizes().expect("default");
    store.set_page_sizes(sizes.after_cut()).expect("shrink");
    drop(store);
    let store = DeviceStore::open(dir.path()).expect("reopen");
    assert_eq!(store.page_sizes().expect("kept"), sizes.after_cut());
}
