//! Hostile input over the documented protocol: a real device with a valid token sends changes
//! crafted with the project's own library (raw Automerge where the library will not forge them):
//! another writer, another time, another visitor, writes and deletions the path policy refuses,
//! and malformed values in every field the form gives a shape. Each case gets its documented
//! code, nothing of it is stored (checked on the server's database), and a colleague's device in
//! the same village syncs, lists, searches and shows normally afterwards.

use crate::sync::{http_login, post_sync};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
use pilar_tests::{Campaign, TestDevice, TestServer};
use std::collections::{BTreeMap, BTreeSet};
use sync_core::form::{FieldDef, FieldKind, FormDefinition, Scope};
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, NewVisit, VisitId, rfc3339_seconds};
use sync_core::store::DeviceStore;
use sync_core::sync::{PackPage, PushHousehold, SyncRequest, SyncResponse};
use sync_core::value::FieldValue;
use time::{Duration, OffsetDateTime};

const BILOKKA: &str = "73.14.01.1001";
const PANCA_LAUTANG: &str = "73.14.01";
const HOSTILE_USER: &str = "pkh.a";
const COLLEAGUE: &str = "tksk.b";

/// Three synthetic families: the first carries the server-only decile (a roster import may set
/// it), the other two are merged so that one of them holds `links.merged_into`.
const ROSTER: &str = "\
family_id,village_code,kk_number,rt,rw,address,dtsen_decile,seq,full_name,nik,sex,birth_date,relationship,presence
SYN-H1,73.14.01.1001,7314010503159301,001,001,Jl. Sintetis 1,3,1,La Sintetis,7314011503809301,1,1980-03-15,1,1
SYN-H1,73.14.01.1001,7314010503159301,001,001,Jl. Sintetis 1,3,2,Wa Contoh,7314015207859302,2,1985-07-12,2,1
SYN-H2,73.14.01.1001,7314010503159303,002,001,Jl. Sintetis 2,,1,Baso Sintetis,7314011001709303,1,1970-01-10,1,1
SYN-H3,73.14.01.1001,7314010503159304,002,001,Jl. Sintetis 2,,1,Baso Sintetis,7314011001709303,1,1970-01-10,1,1
";

/// One hostile push: what it is, the household's changes, the code the server must answer, and a
/// value the refusal's reason must never repeat.
struct Case {
    name: String,
    push: PushHousehold,
    code: &'static str,
    secret: Option<String>,
}

/// The hostile device: a real login, so a valid token, registered just now.
struct Hostile {
    device: DeviceId,
    token: String,
    registered: OffsetDateTime,
}

impl Hostile {
    fn editor(&self, user: &str, now: OffsetDateTime) -> Editor {
        Editor { user: user.into(), device: self.device, now }
    }

    /// A change made with the model (which writes whatever it is asked to) on top of the server's
    /// copy of the household.
    fn edit(&self, base: &[u8], id: HouseholdId, editor: &Editor, edits: &Edits) -> Vec<u8> {
        let mut household = Household::load(id, base, self.device).expect("pack document loads");
        let (_, saved) = household.apply(editor, "edit", edits, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
        saved.expect("a change").bytes
    }

    /// A change made with raw Automerge under this device's actor, with its own user and time in
    /// the message: what the model will not write (a visit by someone else, a deleted map).
    fn raw(&self, base: &[u8], write: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> Vec<u8> {
        let mut doc = automerge::Automerge::load(base).expect("pack document loads").with_actor(self.device.actor());
        let mut tx = doc.transaction();
        write(&mut tx);
        let now = OffsetDateTime::now_utc();
        let options = CommitOptions::default()
            .with_message(format!(r#"{{"u":"{HOSTILE_USER}","a":"edit"}}"#))
            .with_time((now.unix_timestamp_nanos() / 1_000_000) as i64);
        let (hash, _) = tx.commit_with(options);
        let mut change = doc.get_change_by_hash(&hash.expect("a change")).expect("committed").clone();
        change.bytes().into_owned()
    }
}

fn push(id: HouseholdId, change: Vec<u8>) -> PushHousehold {
    PushHousehold { household: id, village: None, changes: vec![serde_bytes::ByteBuf::from(change)] }
}

/// The map at `path` (dot-separated keys from the root) inside a transaction.
fn map_at(tx: &impl ReadDoc, path: &str) -> ObjId {
    path.split('.').fold(ROOT, |parent, key| match tx.get(&parent, key).expect("read") {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("{path}: {key} is not a map ({other:?})"),
    })
}

/// Every stored change (hash, writing device) and every household's heads, read beside the
/// running server from its database (read-only).
fn server_state(server: &TestServer) -> (BTreeSet<(String, String)>, BTreeMap<String, String>) {
    let pairs = |sql: &str| -> Vec<(String, String)> {
        server.query(sql, &[]).iter().map(|r| (r[0].text().to_string(), r[1].text().to_string())).collect()
    };
    let changes = pairs("SELECT hash, device_id FROM changes").into_iter().collect();
    let heads = pairs("SELECT id, heads FROM households").into_iter().collect();
    (changes, heads)
}

/// The first pack page of the village, as the hostile device downloads it.
fn pack(server: &TestServer, token: &str) -> PackPage {
    let response = reqwest::blocking::Client::new()
        .get(format!("{}/v1/packs/{BILOKKA}", server.url()))
        .bearer_auth(token)
        .send()
        .expect("pack request");
    assert!(response.status().is_success(), "pack: {}", response.status());
    sync_core::sync::decode(&response.bytes().expect("pack body"), 64 << 20).expect("pack page")
}

/// The fields the form gives a shape (identifiers, codes, patterned text, dates) that a device
/// may write, with their scope.
fn shaped_fields(form: &FormDefinition) -> Vec<(Scope, &FieldDef)> {
    Scope::ALL
        .iter()
        .flat_map(|scope| form.fields(*scope).iter().map(move |f| (*scope, f)))
        .filter(|(_, f)| f.device_editable)
        .filter(|(_, f)| match &f.kind {
            FieldKind::Nik { .. }
            | FieldKind::KkNumber
            | FieldKind::VillageCode
            | FieldKind::Gps
            | FieldKind::Date { .. } => true,
            FieldKind::Text { pattern, .. } => pattern.is_some(),
            _ => false,
        })
        .collect()
}

/// Malformed values for a field, by what is wrong with them.
fn malformed(kind: &FieldKind) -> Vec<(&'static str, String)> {
    let mut values = vec![
        ("sql text", "'; DROP TABLE households; --".to_string()),
        ("markup", "<img src=x onerror=alert(1)>".to_string()),
        ("a path", "../../../etc/passwd".to_string()),
    ];
    match kind {
        FieldKind::Nik { .. } | FieldKind::KkNumber => values.extend([
            ("wrong length", "731401150380930".to_string()),
            ("bad date part", "7314019913809301".to_string()),
            ("bad region prefix (province)", "0014011503809301".to_string()),
            ("bad region prefix (regency)", "7300011503809301".to_string()),
            ("letters", "73140115038O9301".to_string()),
        ]),
        FieldKind::VillageCode => values.extend([
            ("wrong length", "73.14.01.10011".to_string()),
            ("bad region prefix", "73.14.01.1999".to_string()),
        ]),
        FieldKind::Date { .. } => {
            values.extend([("bad date part", "1985-13-45".to_string()), ("in the future", "2999-01-01".to_string())])
        }
        _ => values.push(("wrong length", "1".repeat(25))),
    }
    values
}

#[test]
fn hostile_changes_are_refused_with_their_codes_stored_nowhere_and_colleagues_are_unaffected() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let colleague = campaign.enumerator(COLLEAGUE, &[BILOKKA]);
    let password = campaign.user(HOSTILE_USER, &[BILOKKA]);
    let roster = campaign.admin.home().join("hostile-roster.csv");
    std::fs::write(&roster, ROSTER).expect("write roster");
    campaign.admin.ok(&["roster", "import", roster.to_str().expect("path")]);

    // The colleague works normally: syncs, visits the first family.
    colleague.json(&["sync"]);
    let by_head = |device: &TestDevice, head: &str| -> Vec<String> {
        let listed = device.json(&["list"]);
        let ids = listed.as_array().expect("list").iter().filter(|h| h["head_name"] == head);
        ids.map(|h| h["id"].as_str().expect("id").to_string()).collect()
    };
    let target: HouseholdId = by_head(&colleague, "La Sintetis")[0].parse().expect("id");
    colleague.ok(&["visit", &target.to_string(), "--outcome", "2", "--answer", "floor_area_m2=36"]);
    assert_eq!(colleague.json(&["sync"])["still_unsent"], 0);
    // The supervisor approves it (review keys exist) and merges the two copies of Baso's family
    // (links.merged_into exists on the retired one).
    supervisor.ok(&["review", "approve", &target.to_string()]);
    let pair = by_head(&colleague, "Baso Sintetis");
    assert_eq!(pair.len(), 2, "two copies of one family: {pair:?}");
    supervisor.json(&["duplicates", "merge", "--keep", &pair[0], "--retire", &pair[1]]);
    let retired: HouseholdId = pair[1].parse().expect("id");
    let colleague_device = DeviceStore::open(colleague.home()).expect("store").identity().device;

    // The hostile device: a valid login, then the village's pack, to build on the server's copies.
    let device = DeviceId::random();
    let registered = OffsetDateTime::now_utc();
    let token = http_login(&campaign.server, HOSTILE_USER, &password, device);
    let hostile = Hostile { device, token, registered };
    let page = pack(&campaign.server, &hostile.token);
    let document = |id: HouseholdId| -> Vec<u8> {
        let found = page.households.iter().find(|h| h.household == id).expect("household in the pack");
        found.document.to_vec()
    };
    let target_doc = document(target);
    let retired_doc = document(retired);
    let target_state = Household::load(target, &target_doc, device).expect("loads").state();
    assert_eq!(target_state.answers.get("dtsen_decile"), Some(&FieldValue::Int(3)), "the roster set the decile");
    assert!(target_state.review.status.is_some(), "the supervisor approved it");
    let member = target_state.members[0].id;
    let visit = target_state.visits[0].id;
    let before = server_state(&campaign.server);

    let now = OffsetDateTime::now_utc();
    let own = hostile.editor(HOSTILE_USER, now);
    let set = |pairs: Vec<(&str, Option<FieldValue>)>| Edits {
        answers: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..Edits::default()
    };
    let floor = || set(vec![("floor_area_m2", Some(FieldValue::Int(40)))]);
    let case = |name: &str, id: HouseholdId, change: Vec<u8>, code: &'static str| Case {
        name: name.into(),
        push: push(id, change),
        code,
        secret: None,
    };
    let visit_by = |user: String, visit_device: String, at: OffsetDateTime| {
        hostile.raw(&target_doc, move |tx| {
            let visits = map_at(tx, "visits");
            let v = tx.put_object(&visits, VisitId::random().to_string().as_str(), ObjType::Map).expect("visit");
            tx.put(&v, "at", rfc3339_seconds(at)).expect("at");
            tx.put(&v, "user", user.as_str()).expect("user");
            tx.put(&v, "device", visit_device.as_str()).expect("device");
            tx.put(&v, "outcome", 2).expect("outcome");
        })
    };
    let mut cases = vec![
        // The writer is the caller.
        case(
            "a change whose message names the colleague",
            target,
            hostile.edit(&target_doc, target, &hostile.editor(COLLEAGUE, now), &floor()),
            "forged_writer",
        ),
        case(
            "a change dated three days ahead",
            target,
            hostile.edit(&target_doc, target, &hostile.editor(HOSTILE_USER, now + Duration::days(3)), &floor()),
            "forged_writer",
        ),
        case(
            "a change dated before the device was registered",
            target,
            hostile.edit(
                &target_doc,
                target,
                &hostile.editor(HOSTILE_USER, hostile.registered - Duration::days(3)),
                &floor(),
            ),
            "forged_writer",
        ),
        case(
            "a visit credited to the colleague",
            target,
            visit_by(COLLEAGUE.into(), device.to_string(), now),
            "forged_writer",
        ),
        case(
            "a visit credited to the colleague's device",
            target,
            visit_by(HOSTILE_USER.into(), colleague_device.to_string(), now),
            "forged_writer",
        ),
        case(
            "a visit dated last year",
            target,
            visit_by(HOSTILE_USER.into(), device.to_string(), now - Duration::days(365)),
            "forged_writer",
        ),
        // The path policy.
        case(
            "deleting the server-only decile",
            target,
            hostile.edit(&target_doc, target, &own, &set(vec![("dtsen_decile", None)])),
            "not_device_editable",
        ),
        case(
            "writing links.merged_into",
            target,
            hostile.edit(
                &target_doc,
                target,
                &own,
                &Edits {
                    links: BTreeMap::from([("merged_into".into(), Some(FieldValue::Text(pair[0].clone())))]),
                    ..Edits::default()
                },
            ),
            "not_device_editable",
        ),
        case(
            "deleting links.merged_into of a retired household",
            retired,
            hostile.edit(
                &retired_doc,
                retired,
                &own,
                &Edits { links: BTreeMap::from([("merged_into".into(), None)]), ..Edits::default() },
            ),
            "not_device_editable",
        ),
        case(
            "approving its own work",
            target,
            hostile.edit(
                &target_doc,
                target,
                &own,
                &Edits {
                    review: BTreeMap::from([("by".into(), Some(FieldValue::Text(HOSTILE_USER.into())))]),
                    ..Edits::default()
                },
            ),
            "review_forbidden",
        ),
        case(
            "deleting the supervisor's review",
            target,
            hostile.edit(
                &target_doc,
                target,
                &own,
                &Edits { review: BTreeMap::from([("status".into(), None)]), ..Edits::default() },
            ),
            "review_forbidden",
        ),
        case(
            "deleting a member map",
            target,
            hostile.raw(&target_doc, |tx| {
                let members = map_at(tx, "members");
                tx.delete(&members, member.to_string().as_str()).expect("delete member");
            }),
            "invalid_layout",
        ),
        case(
            "deleting a visit map",
            target,
            hostile.raw(&target_doc, |tx| {
                let visits = map_at(tx, "visits");
                tx.delete(&visits, visit.to_string().as_str()).expect("delete visit");
            }),
            "invalid_layout",
        ),
        case(
            "deleting the top-level review map",
            target,
            hostile.raw(&target_doc, |tx| tx.delete(&ROOT, "review").expect("delete review")),
            "invalid_layout",
        ),
        case(
            "rewriting the colleague's visit",
            target,
            hostile.raw(&target_doc, |tx| {
                let v = map_at(tx, &format!("visits.{visit}"));
                tx.put(&v, "outcome", 1).expect("outcome");
            }),
            "invalid_layout",
        ),
    ];
    let long_name = "La Sintetis ".repeat(100 * 1024 / 12);
    cases.push(Case {
        name: "a 100 KB head_name".into(),
        push: push(
            target,
            hostile.edit(
                &target_doc,
                target,
                &own,
                &set(vec![("head_name", Some(FieldValue::Text(long_name.clone())))]),
            ),
        ),
        code: "invalid_value",
        secret: Some(long_name[..40].to_string()),
    });
    // A malformed value in every shaped field, several ways each.
    let form = FormDefinition::default_dtsen();
    let fields = shaped_fields(form);
    assert!(fields.len() >= 15, "the form's shaped fields: {}", fields.len());
    for (scope, field) in &fields {
        for (what, value) in malformed(&field.kind) {
            let text = Some(FieldValue::Text(value.clone()));
            let edits = match scope {
                Scope::Household => set(vec![(field.name.as_str(), text)]),
                Scope::Member => Edits {
                    edit_members: vec![(member, BTreeMap::from([(field.name.clone(), text)]))],
                    ..Edits::default()
                },
                Scope::Visit => Edits {
                    visit: Some(NewVisit {
                        id: VisitId::random(),
                        outcome: 5,
                        lat: None,
                        lon: None,
                        accuracy_m: None,
                        note: None,
                        answers: BTreeMap::from([(field.name.clone(), FieldValue::Text(value.clone()))]),
                    }),
                    ..Edits::default()
                },
            };
            cases.push(Case {
                name: format!("{scope} field {} with {what}", field.name),
                push: push(target, hostile.edit(&target_doc, target, &own, &edits)),
                code: "invalid_value",
                secret: Some(value),
            });
        }
    }
    // A control, sent after the refused cases are checked: the same device's honest edit, made
    // the same way, is admitted.
    let honest = push(target, hostile.edit(&target_doc, target, &own, &floor()));

    let mut sent_hashes = BTreeSet::new();
    for case in &cases {
        for change in &case.push.changes {
            let hash = automerge::Change::from_bytes(change.to_vec()).expect("a change").hash().to_string();
            sent_hashes.insert(hash);
        }
        let request = SyncRequest {
            batch: uuid::Uuid::new_v4(),
            cursors: BTreeMap::new(),
            push: vec![case.push.clone()],
            max_changes: 100,
        };
        let (status, body) = post_sync(&campaign.server, &hostile.token, sync_core::sync::encode(&request));
        assert!(status.is_success(), "{}: HTTP {status}", case.name);
        let response: SyncResponse = sync_core::sync::decode(&body, 64 << 20).expect("response");
        assert_eq!(response.acknowledged, 0, "{}: acknowledged", case.name);
        let rejected: Vec<(HouseholdId, &str)> =
            response.rejected.iter().map(|r| (r.household, r.code.as_str())).collect();
        assert_eq!(rejected, [(case.push.household, case.code)], "{}: {:?}", case.name, response.rejected);
        let reason = &response.rejected[0].reason;
        if let Some(secret) = &case.secret {
            assert!(!reason.contains(secret.as_str()), "{}: the reason repeats the value: {reason}", case.name);
        }
        assert!(reason.len() < 2_000, "{}: a short reason, not {} bytes", case.name, reason.len());
    }
    eprintln!("hostile: {} cases refused, {} changes", cases.len(), sent_hashes.len());

    // Nothing of it is stored: the server's changes and every household's heads are as before.
    let after = server_state(&campaign.server);
    assert_eq!(after, before, "the server stored something of a refused case");
    assert!(after.0.iter().all(|(hash, _)| !sent_hashes.contains(hash)));
    assert!(after.0.iter().all(|(_, writer)| *writer != device.to_string()), "nothing by the hostile device");
    assert!(server_log_is_clean(&campaign.server), "the server log repeats a hostile value");

    // The honest control goes through, so the refusals above were not a broken endpoint.
    let request =
        SyncRequest { batch: uuid::Uuid::new_v4(), cursors: BTreeMap::new(), push: vec![honest], max_changes: 100 };
    let (status, body) = post_sync(&campaign.server, &hostile.token, sync_core::sync::encode(&request));
    assert!(status.is_success());
    let response: SyncResponse = sync_core::sync::decode(&body, 64 << 20).expect("response");
    assert_eq!((response.acknowledged, response.rejected.len()), (1, 0), "{:?}", response.rejected);

    // The colleague's device, and a colleague's new device, work normally afterwards.
    let synced = colleague.json(&["sync"]);
    assert_eq!(synced["still_unsent"], 0, "{synced}");
    let newcomer = campaign.enumerator("psm.c", &[BILOKKA]);
    newcomer.json(&["sync"]);
    for device in [&colleague, &newcomer] {
        let listed = device.json(&["list"]);
        let ids: Vec<&str> = listed.as_array().expect("list").iter().filter_map(|h| h["id"].as_str()).collect();
        assert!(ids.contains(&target.to_string().as_str()) && ids.contains(&pair[0].as_str()), "{listed}");
        let shown = device.json(&["show", &target.to_string()]);
        let answers = &shown["household"]["answers"];
        assert_eq!(answers["head_name"], "La Sintetis", "{shown}");
        assert_eq!(answers["dtsen_decile"], 3, "{shown}");
        assert_eq!(answers["floor_area_m2"], 40, "the honest edit arrived: {shown}");
        let visits = shown["household"]["visits"].as_array().expect("visits");
        assert_eq!(visits.len(), 1, "no forged visit: {shown}");
        assert_eq!(visits[0]["user"], COLLEAGUE);
        assert_eq!(shown["household"]["members"].as_array().expect("members").len(), 2, "{shown}");
        let found = device.json(&["search", "sintetis"]);
        assert!(!found.as_array().expect("search").is_empty(), "{found}");
        let retired_shown = device.json(&["show", &retired.to_string()]);
        assert_eq!(retired_shown["household"]["links"]["merged_into"], pair[0].as_str(), "{retired_shown}");
    }
}

/// Whether the server's log is free of the hostile values (SQL text, markup, the long name).
fn server_log_is_clean(server: &TestServer) -> bool {
    let log = server.log();
    ["DROP TABLE", "onerror", "etc/passwd", "La Sintetis La Sintetis"].iter().all(|s| !log.contains(s))
}
