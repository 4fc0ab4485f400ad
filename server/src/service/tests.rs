//! Use cases that must not wait for the writer: with a write transaction held open in another
//! thread, every list, report, export, pack, document read, scope and token check completes.

use super::Service;
use crate::auth::Caller;
use crate::service::accounts::{DeviceAccess, DeviceLogin};
use crate::storage::{NewUser, Transactions};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId};
use sync_core::protocol::{ExportFilter, Role};
use sync_core::sync::{PushHousehold, SyncRequest};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

const VILLAGE: &str = "73.14.01.1001";

fn noon() -> OffsetDateTime {
    time::macros::datetime!(2026-11-20 12:00 UTC)
}

/// A server with a supervisor, an enumerator's device and one synced household.
fn campaign(service: &Service) -> (Caller, Caller, HouseholdId) {
    let user = |name: &str, role| NewUser { name: name.into(), role, password_hash: "x".into(), created_at: noon() };
    service.create_user(&user("spv.sintetis", Role::Supervisor)).expect("supervisor");
    service.create_user(&user("pkh.sintetis", Role::Enumerator)).expect("enumerator");
    service.set_kecamatan_assignments("spv.sintetis", &["73.14.01".into()], noon()).expect("kecamatan");
    service.set_village_assignments("pkh.sintetis", &[VILLAGE.into()], noon()).expect("village");
    let (device, desk) = (DeviceId::random(), DeviceId::random());
    for (id, who) in [(device, "pkh.sintetis"), (desk, "spv.sintetis")] {
        let login = DeviceLogin { device: id, user: who, name: "tablet", refresh_hash: &id.to_string(), now: noon() };
        service.register_device(&login).expect("register");
    }
    let enumerator = Caller { user: "pkh.sintetis".into(), role: Role::Enumerator, device };
    let supervisor = Caller { user: "spv.sintetis".into(), role: Role::Supervisor, device: desk };
    let editor = Editor { user: enumerator.user.clone(), device, now: noon() };
    let edits = Edits {
        answers: BTreeMap::from([
            ("village_code".to_string(), Some(FieldValue::Text(VILLAGE.to_string()))),
            ("head_name".to_string(), Some(FieldValue::Text("La Sintetis".to_string()))),
        ]),
        ..Edits::default()
    };
    let id = HouseholdId::random();
    let form = sync_core::form::FormDefinition::default_dtsen();
    let (_, change) = Household::create(id, &form.key(), &editor, &edits).expect("create");
    let push = PushHousehold { household: id, village: Some(VILLAGE.into()), changes: vec![change.bytes.into()] };
    let request =
        SyncRequest { batch: uuid::Uuid::new_v4(), cursors: BTreeMap::new(), push: vec![push], max_changes: 100 };
    let scope = service.sync_caller(&enumerator, time::Duration::days(14), noon()).expect("scope");
    service.sync(&scope, &request, noon()).expect("sync");
    (enumerator, supervisor, id)
}

#[test]
fn lists_reports_exports_and_checks_run_while_a_write_transaction_is_open() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = crate::storage::SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
    let service = Service::new(std::sync::Arc::new(db));
    let (enumerator, supervisor, id) = campaign(&service);
    service.refresh_derived().expect("facts derived before the writer is taken");

    let (taken_tx, taken) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let writer = {
        let service = service.clone();
        std::thread::spawn(move || {
            service.database().write(|_tx| {
                taken_tx.send(()).expect("tell the reader");
                // Held until every read below is done (or the test gives up).
                let _ = release_rx.recv();
                Ok(())
            })
        })
    };
    taken.recv().expect("the writer holds its transaction");
    let (done_tx, done) = mpsc::channel();
    let reader = {
        let service = service.clone();
        std::thread::spawn(move || {
            let now = noon() + time::Duration::seconds(10);
            let areas = Some(vec!["73.14.01".to_string()]);
            let areas = areas.as_deref();
            service.review_list(areas, None).expect("review list");
            service.conflicts(areas).expect("conflicts");
            service.duplicates(areas).expect("duplicates");
            service.progress(areas).expect("progress");
            service.export_page("73.14.01", None, 500, &ExportFilter::default()).expect("export");
            service.pack_page(VILLAGE, None, 200).expect("pack");
            service.documents(&[id]).expect("documents");
            service.households_with_prefix(&id.to_string()[..4], 5).expect("lookup");
            service.sync_caller(&enumerator, time::Duration::days(14), now).expect("scope");
            service.areas(&supervisor, None, "review").expect("areas");
            service.may_act(&supervisor, id, "review").expect("may act");
            let access = service.device_access(enumerator.device, &enumerator.user, now).expect("access");
            assert!(matches!(access, DeviceAccess::Active { .. }));
            service.users().expect("users");
            service.devices().expect("devices");
            done_tx.send(()).expect("done");
        })
    };
    // A bound, not a synchronisation: reads that waited for the writer would never finish.
    let finished = done.recv_timeout(Duration::from_secs(120));
    release.send(()).expect("release the writer");
    writer.join().expect("writer thread").expect("writer commits");
    reader.join().expect("a read failed");
    assert!(finished.is_ok(), "a read waited for the open write transaction");
}

/// A household in `village` with these answers, created and synced by the enumerator.
fn synced(service: &Service, enumerator: &Caller, village: &str, answers: &[(&str, &str)]) -> HouseholdId {
    let editor = Editor { user: enumerator.user.clone(), device: enumerator.device, now: noon() };
    let mut all = BTreeMap::from([("village_code".to_string(), Some(FieldValue::Text(village.to_string())))]);
    for (field, value) in answers {
        all.insert(field.to_string(), Some(FieldValue::Text(value.to_string())));
    }
    let edits = Edits { answers: all, ..Edits::default() };
    let id = HouseholdId::random();
    let form = sync_core::form::FormDefinition::default_dtsen();
    let (_, change) = Household::create(id, &form.key(), &editor, &edits).expect("create");
    let push = PushHousehold { household: id, village: Some(village.into()), changes: vec![change.bytes.into()] };
    let request =
        SyncRequest { batch: uuid::Uuid::new_v4(), cursors: BTreeMap::new(), push: vec![push], max_changes: 100 };
    let scope = service.sync_caller(enumerator, time::Duration::days(14), noon()).expect("scope");
    let reply = service.sync(&scope, &request, noon()).expect("sync");
    let reply: sync_core::sync::SyncResponse = sync_core::sync::decode(&reply, 1 << 20).expect("reply");
    assert!(reply.rejected.is_empty(), "{village}: {:?}", reply.rejected);
    id
}

#[test]
fn progress_counts_exactly_the_area_households_the_duplicate_list_shows() {
    const OTHER_KECAMATAN: &str = "73.14.02.1001";
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = crate::storage::SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
    let service = Service::new(std::sync::Arc::new(db));
    let (enumerator, supervisor, _) = campaign(&service);
    service.set_village_assignments("pkh.sintetis", &[VILLAGE.into(), OTHER_KECAMATAN.into()], noon()).expect("both");
    let kk = |n: u32| format!("731401010100{n:04}");
    // A pair inside the area (same head name and RT).
    let twin_a = synced(&service, &enumerator, VILLAGE, &[("head_name", "La Kembar"), ("rt", "001")]);
    let twin_b = synced(&service, &enumerator, VILLAGE, &[("head_name", "la  kembar"), ("rt", "1")]);
    // A pair across the area's edge (same KK number): only its inside half is counted here.
    let inside = synced(&service, &enumerator, VILLAGE, &[("kk_number", &kk(1))]);
    let outside = synced(&service, &enumerator, OTHER_KECAMATAN, &[("kk_number", &kk(1))]);
    // A dismissed pair, and a pair whose outside partner was folded into another household.
    let dismissed_a = synced(&service, &enumerator, VILLAGE, &[("kk_number", &kk(2))]);
    let dismissed_b = synced(&service, &enumerator, VILLAGE, &[("kk_number", &kk(2))]);
    service.dismiss(dismissed_a, dismissed_b, "spv.sintetis", noon()).expect("dismiss");
    let orphan = synced(&service, &enumerator, VILLAGE, &[("kk_number", &kk(3))]);
    let folded = synced(&service, &enumerator, OTHER_KECAMATAN, &[("kk_number", &kk(3))]);
    let keeper = synced(&service, &enumerator, OTHER_KECAMATAN, &[("kk_number", &kk(4))]);
    service.refresh_derived().expect("facts");
    let editor = Editor { user: supervisor.user.clone(), device: supervisor.device, now: noon() };
    service.fold(keeper, folded, &editor).expect("fold");

    let areas = Some(vec!["73.14.01".to_string()]);
    let pairs = service.duplicates(areas.as_deref()).expect("duplicates");
    let listed: std::collections::BTreeSet<HouseholdId> = pairs
        .iter()
        .flat_map(|p| [&p.a, &p.b])
        .filter(|b| b.village.starts_with("73.14.01."))
        .map(|b| b.household)
        .collect();
    let report = service.progress(areas.as_deref()).expect("progress");
    let counted: u64 = report.villages.iter().map(|v| v.duplicates).sum();
    assert_eq!(counted, listed.len() as u64, "progress counts {counted}, the duplicate list shows {listed:?}");
    for id in [twin_a, twin_b, inside] {
        assert!(listed.contains(&id), "{id} is in a suspected pair in the area");
    }
    let across = pairs.iter().any(|p| [p.a.household, p.b.household] == [inside.min(outside), inside.max(outside)]);
    assert!(across, "the pair across the area's edge is listed");
    // Dismissed, or paired only with a household folded away (no longer live).
    for id in [dismissed_a, dismissed_b, orphan] {
        assert!(!listed.contains(&id), "{id} is not in a suspected pair");
    }
}
