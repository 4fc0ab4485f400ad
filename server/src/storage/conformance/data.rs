//! Every data operation of the seam ([`ReadTx`], [`Tx`]) on a fresh database: what it stores,
//! what it reads back, in which order, and what it leaves alone. Rows are synthetic.

use super::Case;
use crate::storage::{
    Assignment, AssignmentKind, Database, DeviceRow, FactsQuery, FactsRow, FactsTally, FoldDisagreementRow, FoldRow,
    FormDefaultRow, FormRow, HouseholdWrite, NewChange, NewUser, ReadTx, RosterImportRow, StorageError, StoredResponse,
    Transactions, Tx, UserRecord, WebSessionRow,
};
use std::collections::BTreeSet;
use sync_core::model::{DeviceId, HouseholdId};
use sync_core::protocol::Role;
use time::OffsetDateTime;
use uuid::Uuid;

/// Every data-operation case.
pub const CASES: &[Case] = &[
    ("users_are_inserted_once_and_read_by_name", users_are_inserted_once_and_read_by_name),
    ("assignments_keep_their_history", assignments_keep_their_history),
    ("handed_villages_keep_the_first_time", handed_villages_keep_the_first_time),
    (
        "device_rows_round_trip_and_last_seen_only_moves_forward",
        device_rows_round_trip_and_last_seen_only_moves_forward,
    ),
    ("a_server_secret_is_kept_once_stored", a_server_secret_is_kept_once_stored),
    ("households_are_stored_listed_and_counted", households_are_stored_listed_and_counted),
    ("the_feed_is_numbered_per_village_from_its_head", the_feed_is_numbered_per_village_from_its_head),
    ("responses_are_remembered_forgotten_and_pruned", responses_are_remembered_forgotten_and_pruned),
    ("roster_imports_stage_commit_and_prune", roster_imports_stage_commit_and_prune),
    ("household_writes_make_facts_stale_until_derived", household_writes_make_facts_stale_until_derived),
    ("facts_keys_and_dismissals_are_read_by_area", facts_keys_and_dismissals_are_read_by_area),
    ("facts_are_paged_filtered_and_counted_in_the_database", facts_are_paged_filtered_and_counted_in_the_database),
    ("folds_and_their_disagreements_are_kept", folds_and_their_disagreements_are_kept),
    (
        "writers_deciding_on_a_touched_household_decide_one_at_a_time",
        writers_deciding_on_a_touched_household_decide_one_at_a_time,
    ),
    (
        "a_failed_write_leaves_nothing_and_times_keep_whole_seconds",
        a_failed_write_leaves_nothing_and_times_keep_whole_seconds,
    ),
    ("a_read_neither_waits_for_nor_sees_an_open_write", a_read_neither_waits_for_nor_sees_an_open_write),
    (
        "documents_and_changes_read_back_as_written_before_and_after_a_dictionary",
        documents_and_changes_read_back_as_written_before_and_after_a_dictionary,
    ),
    ("form_versions_are_kept_once_and_defaults_replaced", form_versions_are_kept_once_and_defaults_replaced),
    ("web_sessions_are_kept_touched_ended_and_pruned", web_sessions_are_kept_touched_ended_and_pruned),
    ("a_users_password_and_role_are_replaced", a_users_password_and_role_are_replaced),
];

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("time")
}

fn hid(n: u8) -> HouseholdId {
    HouseholdId(Uuid::from_bytes([n; 16]))
}

fn did(n: u8) -> DeviceId {
    DeviceId(Uuid::from_bytes([n; 16]))
}

fn write<T>(db: &dyn Database, what: &str, work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>) -> T {
    db.write(work).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn read<T>(db: &dyn Database, what: &str, work: impl FnMut(&mut dyn ReadTx) -> Result<T, StorageError>) -> T {
    db.read(work).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn new_user(name: &str, role: Role) -> NewUser {
    NewUser { name: name.into(), role, password_hash: format!("hash of {name}"), created_at: at(0) }
}

fn users_are_inserted_once_and_read_by_name(db: &dyn Database) {
    assert!(write(db, "insert", |tx| tx.insert_user(&new_user("pkh.b", Role::Enumerator))));
    assert!(write(db, "insert", |tx| tx.insert_user(&new_user("admin", Role::Admin))));
    let again = NewUser { password_hash: "other".into(), ..new_user("pkh.b", Role::Supervisor) };
    assert!(!write(db, "insert again", |tx| tx.insert_user(&again)), "a taken name is not inserted");
    assert_eq!(read(db, "count", |tx| tx.user_count()), 2);
    let b = read(db, "user", |tx| tx.user("pkh.b")).expect("stored");
    assert_eq!((b.role, b.password_hash.as_str(), b.created_at), (Role::Enumerator, "hash of pkh.b", at(0)));
    assert!(read(db, "user", |tx| tx.user("nobody")).is_none());
    let names: Vec<String> = read(db, "users", |tx| tx.users()).into_iter().map(|u: UserRecord| u.name).collect();
    assert_eq!(names, ["admin", "pkh.b"], "by name");
}

fn assignments_keep_their_history(db: &dyn Database) {
    use AssignmentKind::{Kecamatan, Village};
    write(db, "users", |tx| {
        tx.insert_user(&new_user("pkh.a", Role::Enumerator))?;
        tx.insert_user(&new_user("spv.a", Role::Supervisor))
    });
    write(db, "assign", |tx| {
        tx.start_assignment(Village, "pkh.a", "73.14.01.1002", at(1))?;
        tx.start_assignment(Village, "pkh.a", "73.14.01.1001", at(1))?;
        tx.start_assignment(Village, "pkh.a", "73.14.01.1001", at(2))?; // active already: nothing
        tx.start_assignment(Kecamatan, "spv.a", "73.14.01", at(1))
    });
    write(db, "end and restart", |tx| {
        tx.end_assignment(Village, "pkh.a", "73.14.01.1001", at(3))?;
        tx.end_assignment(Village, "pkh.a", "73.14.01.1003", at(3))?; // never assigned: nothing
        tx.start_assignment(Village, "pkh.a", "73.14.01.1001", at(4))
    });
    let rows = read(db, "assignments", |tx| tx.assignments_of(Village, "pkh.a"));
    let row = |code: &str, s, e: Option<i64>| Assignment {
        user: "pkh.a".into(),
        code: code.into(),
        started_at: at(s),
        ended_at: e.map(at),
    };
    assert_eq!(
        rows,
        [row("73.14.01.1001", 1, Some(3)), row("73.14.01.1001", 4, None), row("73.14.01.1002", 1, None)],
        "by code then start, ended rows kept"
    );
    assert_eq!(read(db, "kecamatan", |tx| tx.assignments_of(Kecamatan, "pkh.a")), []);
    let active = read(db, "active", |tx| tx.active_assignments(Village));
    assert_eq!(
        active,
        [("pkh.a".to_string(), "73.14.01.1001".to_string()), ("pkh.a".to_string(), "73.14.01.1002".to_string())]
    );
    assert_eq!(read(db, "active", |tx| tx.active_assignments(Kecamatan)), [("spv.a".into(), "73.14.01".into())]);
}

fn handed_villages_keep_the_first_time(db: &dyn Database) {
    let villages = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    write(db, "hand", |tx| tx.hand_villages(did(1), &villages(&["73.14.01.1001"]), at(10)));
    write(db, "hand", |tx| tx.hand_villages(did(1), &villages(&["73.14.01.1001", "73.14.01.1002"]), at(20)));
    write(db, "hand late", |tx| tx.hand_villages(did(1), &villages(&["73.14.01.1001"]), at(5)));
    let handed: Vec<_> = read(db, "handed", |tx| tx.villages_handed(did(1))).into_iter().collect();
    assert_eq!(handed, [("73.14.01.1001".to_string(), at(10)), ("73.14.01.1002".to_string(), at(20))]);
    assert!(read(db, "handed", |tx| tx.villages_handed(did(2))).is_empty());
}

fn device(id: DeviceId, user: &str, registered: i64) -> DeviceRow {
    DeviceRow {
        id,
        user: user.into(),
        name: "tablet 1".into(),
        registered_at: at(registered),
        last_seen_at: at(registered),
        revoked_at: None,
        refresh_hash: Some(format!("{:064x}", registered)),
        refresh_issued_at: Some(at(registered)),
        previous_refresh_hash: None,
        previous_refresh_until: None,
        sessions_ended_at: None,
    }
}

fn device_rows_round_trip_and_last_seen_only_moves_forward(db: &dyn Database) {
    write(db, "users", |tx| {
        tx.insert_user(&new_user("pkh.a", Role::Enumerator))?;
        tx.insert_user(&new_user("pkh.b", Role::Enumerator))
    });
    let (a1, a2, b1) = (did(3), did(1), did(2));
    write(db, "devices", |tx| {
        tx.insert_device(&device(a1, "pkh.a", 20))?;
        tx.insert_device(&device(b1, "pkh.b", 5))?;
        tx.insert_device(&device(a2, "pkh.a", 10))
    });
    let order: Vec<DeviceId> = read(db, "devices", |tx| tx.devices()).iter().map(|d| d.id).collect();
    assert_eq!(order, [a2, a1, b1], "by user, then registration");
    let mut changed = device(a1, "pkh.a", 20);
    changed.name = "tablet 2".into();
    changed.last_seen_at = at(30);
    changed.revoked_at = Some(at(31));
    changed.refresh_hash = None;
    changed.refresh_issued_at = None;
    changed.previous_refresh_hash = Some("f".repeat(64));
    changed.previous_refresh_until = Some(at(40));
    changed.sessions_ended_at = Some(at(32) + time::Duration::milliseconds(250));
    write(db, "update", |tx| tx.update_device(&changed));
    assert_eq!(read(db, "device", |tx| tx.device(a1)), Some(changed.clone()), "every column, ms for sessions");
    write(db, "touch", |tx| tx.touch_device(a1, at(25)));
    assert_eq!(read(db, "device", |tx| tx.device(a1)).expect("a1").last_seen_at, at(30), "never back");
    write(db, "touch", |tx| tx.touch_device(a1, at(50)));
    assert_eq!(read(db, "device", |tx| tx.device(a1)).expect("a1").last_seen_at, at(50));
    assert!(read(db, "device", |tx| tx.device(did(9))).is_none());
}

fn a_server_secret_is_kept_once_stored(db: &dyn Database) {
    assert!(read(db, "secret", |tx| tx.server_secret("refresh_key")).is_none());
    write(db, "insert", |tx| tx.insert_server_secret("refresh_key", &[1; 32]));
    write(db, "insert again", |tx| tx.insert_server_secret("refresh_key", &[2; 32]));
    write(db, "another", |tx| tx.insert_server_secret("lookup_key", &[3; 32]));
    assert_eq!(read(db, "secret", |tx| tx.server_secret("refresh_key")), Some(vec![1; 32]), "the first stays");
    assert_eq!(read(db, "secret", |tx| tx.server_secret("lookup_key")), Some(vec![3; 32]));
}

/// Heads as a document gives them: one 64-character hash, or two after concurrent writes (here
/// for documents of even length).
fn heads_of(doc: &[u8]) -> String {
    let n = doc.len();
    if n.is_multiple_of(2) { format!("{n:064x},{:064x}", n + 1000) } else { format!("{n:064x}") }
}

fn put(tx: &mut dyn Tx, id: HouseholdId, village: &str, doc: &[u8], position: u64, t: i64) -> Result<(), StorageError> {
    let heads = heads_of(doc);
    tx.put_household(&HouseholdWrite { id, village, doc, heads: &heads, position, at: at(t) })
}

fn households_are_stored_listed_and_counted(db: &dyn Database) {
    write(db, "households", |tx| {
        put(tx, hid(3), "73.14.01.1001", b"doc3", 1, 10)?;
        put(tx, hid(1), "73.14.01.1001", b"doc1", 2, 11)?;
        put(tx, hid(2), "73.14.01.1002", b"doc2", 3, 12)?;
        put(tx, hid(4), "73.14.011.1001", b"doc4", 1, 13)?;
        put(tx, hid(5), "73.15.01.1001", b"doc5", 1, 14)
    });
    // Rewritten: the document and heads move, the village and creation time stay.
    write(db, "rewrite", |tx| put(tx, hid(1), "73.99.99.9999", b"doc1 again", 4, 20));
    let one = read(db, "household", |tx| tx.household(hid(1))).expect("stored");
    assert_eq!(
        (one.village.as_str(), one.doc.as_slice(), one.heads.as_str(), one.created_at),
        ("73.14.01.1001", b"doc1 again".as_slice(), heads_of(b"doc1 again").as_str(), Some(at(11)))
    );
    assert_eq!(read(db, "heads", |tx| tx.household_heads(hid(1))), Some(heads_of(b"doc1 again")));
    assert_eq!(read(db, "village", |tx| tx.household_village(hid(2))).as_deref(), Some("73.14.01.1002"));
    assert!(read(db, "unknown", |tx| tx.household(hid(9))).is_none());
    assert!(read(db, "unknown", |tx| tx.household_heads(hid(9))).is_none());
    assert!(read(db, "unknown", |tx| tx.household_village(hid(9))).is_none());

    let ids = |rows: Vec<(HouseholdId, Vec<u8>)>| rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(read(db, "village", |tx| tx.village_households("73.14.01.1001", None, 10))), [hid(1), hid(3)]);
    assert_eq!(ids(read(db, "page", |tx| tx.village_households("73.14.01.1001", None, 1))), [hid(1)]);
    assert_eq!(ids(read(db, "after", |tx| tx.village_households("73.14.01.1001", Some(hid(1)), 10))), [hid(3)]);
    assert_eq!(read(db, "count", |tx| tx.village_household_count("73.14.01.1001")), 2);
    assert_eq!(read(db, "count", |tx| tx.village_household_count("73.14.01.1009")), 0);
    let area = ids(read(db, "area", |tx| tx.area_households("73.14.01", None, 10)));
    assert_eq!(area, [hid(1), hid(2), hid(3)], "by id; 73.14.011 is another kecamatan");
    assert_eq!(ids(read(db, "area after", |tx| tx.area_households("73.14", Some(hid(2)), 2))), [hid(3), hid(4)]);
    assert_eq!(read(db, "area count", |tx| tx.area_household_count("73.14")), 4);
    assert_eq!(read(db, "area count", |tx| tx.area_household_count("73.14.01")), 3);
    let prefix = read(db, "prefix", |tx| tx.households_with_prefix("0101", 10));
    assert_eq!(prefix, [(hid(1), "73.14.01.1001".to_string())]);
    assert_eq!(read(db, "prefix", |tx| tx.households_with_prefix("0", 2)).len(), 2, "at most the limit");
}

fn change<'a>(position: u64, hash: &'a str, village: &'a str, device: DeviceId) -> NewChange<'a> {
    NewChange {
        position,
        hash,
        household: hid(1),
        village,
        device,
        user: "pkh.a",
        bytes: hash.as_bytes(),
        received_at: at(position as i64),
    }
}

fn the_feed_is_numbered_per_village_from_its_head(db: &dyn Database) {
    let (v1, v2) = ("73.14.01.1001", "73.14.01.1002");
    assert_eq!(read(db, "head", |tx| tx.feed_head(v1)), 0, "a new database starts every village at 0");
    let head = write(db, "append", |tx| {
        let head = tx.lock_feed_head(v1)?;
        assert!(tx.insert_change(&change(head + 1, "c1", v1, did(1)))?);
        assert!(tx.insert_change(&change(head + 2, "c2", v1, did(2)))?);
        assert!(!tx.insert_change(&change(head + 3, "c1", v1, did(1)))?, "a stored hash is not inserted again");
        assert!(tx.insert_change(&change(head + 3, "c3", v1, did(1)))?);
        tx.set_feed_head(v1, head + 3)?;
        Ok(head)
    });
    assert_eq!(head, 0);
    write(db, "other village", |tx| {
        let head = tx.lock_feed_head(v2)?;
        assert_eq!(head, 0, "villages are numbered independently");
        tx.insert_change(&change(1, "d1", v2, did(1)))?;
        tx.set_feed_head(v2, 1)
    });
    assert_eq!(read(db, "heads", |tx| Ok((tx.feed_head(v1)?, tx.feed_head(v2)?))), (3, 1));
    let hashes = |rows: Vec<crate::storage::FeedChange>| {
        rows.into_iter().map(|c| (c.position, String::from_utf8(c.bytes).expect("text"))).collect::<Vec<_>>()
    };
    let all = read(db, "after", |tx| tx.feed_after(v1, 0, 3, None, 10));
    assert!(all.iter().all(|c| c.village == v1 && c.household == hid(1)));
    assert_eq!(hashes(all), [(1, "c1".into()), (2, "c2".into()), (3, "c3".into())]);
    assert_eq!(hashes(read(db, "range", |tx| tx.feed_after(v1, 1, 2, None, 10))), [(2, "c2".into())], "(after, upto]");
    assert_eq!(hashes(read(db, "limit", |tx| tx.feed_after(v1, 0, 3, None, 2))), [(1, "c1".into()), (2, "c2".into())]);
    let others = hashes(read(db, "exclude", |tx| tx.feed_after(v1, 0, 3, Some(did(1)), 10)));
    assert_eq!(others, [(2, "c2".into())], "not the excluded device's");
    assert!(read(db, "empty", |tx| tx.feed_after("73.14.01.1003", 0, 10, None, 10)).is_empty());
}

fn responses_are_remembered_forgotten_and_pruned(db: &dyn Database) {
    let (b1, b2, b3) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let response =
        |body: &[u8], max: Option<u32>| StoredResponse { body: body.to_vec(), max_changes: max, pulled_from: None };
    let from = std::collections::BTreeMap::from([("73.14.01.1001".to_string(), 7), ("73.14.01.1002".to_string(), 0)]);
    let by_place = StoredResponse { pulled_from: Some(from), ..response(b"four", Some(100)) };
    write(db, "store", |tx| {
        tx.store_response(did(3), b1, &by_place, at(12))?;
        tx.store_response(did(1), b1, &response(b"one", Some(100)), at(10))?;
        tx.store_response(did(1), b2, &response(b"two", None), at(20))?;
        tx.store_response(did(2), b3, &response(b"three", Some(5)), at(30))
    });
    assert_eq!(read(db, "stored", |tx| tx.stored_response(did(1), b1)), Some(response(b"one", Some(100))));
    assert_eq!(read(db, "stored", |tx| tx.stored_response(did(1), b2)), Some(response(b"two", None)));
    assert_eq!(read(db, "by place", |tx| tx.stored_response(did(3), b1)), Some(by_place), "with its feed positions");
    assert!(read(db, "other device", |tx| tx.stored_response(did(2), b1)).is_none(), "keyed by device too");
    let last: Vec<_> = read(db, "last", |tx| tx.last_responses()).into_iter().collect();
    assert_eq!(last, [(did(1), at(20)), (did(2), at(30)), (did(3), at(12))]);
    write(db, "replace", |tx| tx.store_response(did(2), b3, &response(b"three again", Some(4)), at(31)));
    assert_eq!(read(db, "replaced", |tx| tx.stored_response(did(2), b3)), Some(response(b"three again", Some(4))));
    write(db, "prune", |tx| tx.prune_responses(at(25), 1));
    assert!(read(db, "pruned", |tx| tx.stored_response(did(1), b1)).is_none(), "the oldest first");
    assert!(read(db, "kept", |tx| tx.stored_response(did(1), b2)).is_some(), "at most the limit");
    write(db, "forget", |tx| tx.forget_responses(did(1)));
    assert!(read(db, "forgotten", |tx| tx.stored_response(did(1), b2)).is_none());
    assert!(read(db, "other kept", |tx| tx.stored_response(did(2), b3)).is_some());
}

fn roster_imports_stage_commit_and_prune(db: &dyn Database) {
    let (old, fresh, done) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    write(db, "stage", |tx| {
        tx.insert_roster_import(old, "admin", at(0))?;
        tx.put_roster_chunk(old, 0, b"old chunk")?;
        tx.insert_roster_import(fresh, "admin", at(100))?;
        tx.put_roster_chunk(fresh, 0, b"first")?;
        tx.put_roster_chunk(fresh, 0, b"first again")?;
        tx.put_roster_chunk(fresh, 2, b"third")?;
        tx.insert_roster_import(done, "admin", at(0))?;
        tx.put_roster_chunk(done, 0, b"done")
    });
    assert_eq!(read(db, "chunk", |tx| tx.roster_chunk(fresh, 0)), Some(b"first again".to_vec()), "replaced");
    assert_eq!(read(db, "count", |tx| tx.staged_chunks(fresh, 2)), 1, "chunks below 2 only");
    assert_eq!(read(db, "count", |tx| tx.staged_chunks(fresh, 3)), 2);
    write(db, "commit", |tx| tx.finish_roster_import(done, at(5), "{\"created\":1}"));
    let row = read(db, "import", |tx| tx.roster_import(done)).expect("kept");
    let expected = RosterImportRow {
        user: "admin".into(),
        created_at: at(0),
        committed_at: Some(at(5)),
        summary: Some("{\"created\":1}".into()),
    };
    assert_eq!(row, expected);
    assert!(read(db, "chunks gone", |tx| tx.roster_chunk(done, 0)).is_none());
    write(db, "prune", |tx| tx.prune_staged_imports(at(50), fresh));
    assert!(read(db, "pruned", |tx| tx.roster_import(old)).is_none(), "uncommitted and older");
    assert!(read(db, "chunks pruned", |tx| tx.roster_chunk(old, 0)).is_none());
    assert!(read(db, "committed kept", |tx| tx.roster_import(done)).is_some());
    write(db, "prune all", |tx| tx.prune_staged_imports(at(500), fresh));
    assert!(read(db, "kept", |tx| tx.roster_import(fresh)).is_some(), "the import being staged stays");
    write(db, "family", |tx| {
        tx.put_family("3514012345", hid(1))?;
        tx.put_family("3514012345", hid(2))
    });
    assert_eq!(read(db, "family", |tx| tx.family_household("3514012345")), Some(hid(1)), "the first stays");
    assert!(read(db, "family", |tx| tx.family_household("nothing")).is_none());
}

fn facts(id: HouseholdId, village: &str, version: u64) -> FactsRow {
    FactsRow {
        household: id,
        village: village.into(),
        version,
        brief: format!("{{\"v\":{version}}}"),
        conflicts: "[]".into(),
        conflict_count: 2,
        review: Some("approved".into()),
        final_outcome: Some(1),
        last_visit_by: Some("pkh.a".into()),
        visits: 3,
        merged_into: None,
        name_key: String::new(),
        rt_key: String::new(),
        last_outcome: Some(1),
    }
}

fn household_writes_make_facts_stale_until_derived(db: &dyn Database) {
    write(db, "write", |tx| {
        put(tx, hid(1), "73.14.01.1001", b"a", 1, 1)?;
        put(tx, hid(2), "73.14.01.1001", b"b", 2, 1)
    });
    let stale: BTreeSet<_> = read(db, "stale", |tx| tx.stale_facts(10)).into_iter().collect();
    assert_eq!(stale, BTreeSet::from([(hid(1), 1), (hid(2), 1)]), "a new household is version 1");
    assert_eq!(read(db, "limit", |tx| tx.stale_facts(1)).len(), 1);
    // Derived from version 1 while a write made version 2: still stale.
    write(db, "rewrite", |tx| put(tx, hid(1), "73.14.01.1001", b"a2", 3, 2));
    write(db, "derive", |tx| {
        tx.put_facts(&facts(hid(1), "73.14.01.1001", 1), &[], &[])?;
        tx.clear_stale_facts(hid(1), 1)?;
        tx.put_facts(&facts(hid(2), "73.14.01.1001", 1), &[], &[])?;
        tx.clear_stale_facts(hid(2), 1)
    });
    assert_eq!(read(db, "stale", |tx| tx.stale_facts(10)), [(hid(1), 2)]);
    write(db, "derive again", |tx| {
        tx.put_facts(&facts(hid(1), "73.14.01.1001", 2), &[], &[])?;
        tx.clear_stale_facts(hid(1), 2)
    });
    assert!(read(db, "none stale", |tx| tx.stale_facts(10)).is_empty());
    assert_eq!(read(db, "facts", |tx| tx.live_facts_of(hid(1))), Some(facts(hid(1), "73.14.01.1001", 2)));
}

fn facts_keys_and_dismissals_are_read_by_area(db: &dyn Database) {
    let key = |kind: &str, k: &str| (kind.to_string(), k.to_string());
    let merged = FactsRow { merged_into: Some(hid(1).to_string()), ..facts(hid(5), "73.14.01.1001", 1) };
    write(db, "facts", |tx| {
        tx.put_facts(&facts(hid(2), "73.14.01.1002", 1), &[key("same_kk", "k1"), key("shared_nik", "n1")], &[])?;
        tx.put_facts(&facts(hid(1), "73.14.01.1001", 1), &[key("same_kk", "k1"), key("same_head_name", "h1")], &[])?;
        tx.put_facts(&facts(hid(3), "73.14.011.1001", 1), &[key("same_kk", "k1"), key("shared_nik", "n2")], &[])?;
        tx.put_facts(&facts(hid(4), "73.15.01.1001", 1), &[key("same_kk", "k2"), key("shared_nik", "n1")], &[])?;
        tx.put_facts(&merged, &[], &[])
    });
    let ids = |rows: Vec<FactsRow>| rows.into_iter().map(|f| f.household).collect::<Vec<_>>();
    assert_eq!(ids(read(db, "all", |tx| tx.live_facts(None))), [hid(1), hid(2), hid(3), hid(4)], "by village");
    assert_eq!(ids(read(db, "kecamatan", |tx| tx.live_facts(Some("73.14.01")))), [hid(1), hid(2)]);
    assert_eq!(ids(read(db, "village", |tx| tx.live_facts(Some("73.14.01.1002")))), [hid(2)]);
    assert!(read(db, "merged", |tx| tx.live_facts_of(hid(5))).is_none(), "folded away");
    let groups = read(db, "shared", |tx| tx.shared_keys(8));
    let shown: Vec<(String, Vec<HouseholdId>)> = groups.into_iter().map(|g| (g.kind, g.households)).collect();
    assert_eq!(
        shown,
        [("same_kk".to_string(), vec![hid(1), hid(2), hid(3)]), ("shared_nik".to_string(), vec![hid(2), hid(4)])],
        "keys of one household are not shared"
    );
    assert_eq!(read(db, "bounded", |tx| tx.shared_keys(2)).len(), 1, "a key of 3 households is beyond 2");
    let first = read(db, "live", |tx| tx.shared_keys(8)).remove(0);
    assert_eq!(
        first.live.get(&hid(3)),
        Some(&("73.14.011.1001".to_string(), Some("pkh.a".to_string()))),
        "each live holder comes with its village and last visitor"
    );
    assert_eq!(first.live.len(), 3);
    // Derived again with the same keys and another last visitor: the keys carry the new one.
    write(db, "revisit", |tx| {
        let again = FactsRow { last_visit_by: Some("pkh.b".into()), ..facts(hid(3), "73.14.011.1001", 2) };
        tx.put_facts(&again, &[key("same_kk", "k1"), key("shared_nik", "n2")], &[])
    });
    let first = read(db, "live", |tx| tx.shared_keys(8)).remove(0);
    assert_eq!(first.live.get(&hid(3)), Some(&("73.14.011.1001".to_string(), Some("pkh.b".to_string()))));
    // New keys replace a household's old ones.
    write(db, "rekey", |tx| tx.put_facts(&facts(hid(4), "73.15.01.1001", 2), &[], &[]));
    assert_eq!(read(db, "shared", |tx| tx.shared_keys(8)).len(), 1);
    write(db, "dismiss", |tx| {
        tx.dismiss_pair(hid(1), hid(2), "spv.a", at(1))?;
        tx.dismiss_pair(hid(1), hid(2), "spv.b", at(2))
    });
    assert_eq!(read(db, "dismissed", |tx| tx.dismissed_pairs()), BTreeSet::from([(hid(1), hid(2))]));
}

fn facts_are_paged_filtered_and_counted_in_the_database(db: &dyn Database) {
    let row = |n: u8, village: &str, name: &str, rt: &str, review: Option<&str>, outcome: Option<i64>| FactsRow {
        name_key: name.into(),
        rt_key: rt.into(),
        review: review.map(str::to_string),
        last_outcome: outcome,
        final_outcome: outcome.filter(|o| *o == 1),
        last_visit_by: outcome.map(|_| "pkh.a".to_string()),
        visits: u32::from(outcome.is_some()),
        conflict_count: u32::from(n == 3),
        ..facts(hid(n), village, 1)
    };
    let day = |d: &str, n: u32| (d.to_string(), n);
    write(db, "facts", |tx| {
        tx.put_facts(&row(1, "73.14.01.1002", "wa ode", "3", Some("approved"), Some(1)), &[], &[day("2026-11-30", 2)])?;
        tx.put_facts(&row(2, "73.14.01.1001", "la ode 50%", "3", None, None), &[], &[])?;
        tx.put_facts(&row(3, "73.14.01.1001", "andi", "12", Some("returned"), Some(2)), &[], &[day("2026-12-01", 1)])?;
        tx.put_facts(&row(4, "73.14.011.1001", "wa ode", "3", None, None), &[], &[day("2026-12-01", 5)])?;
        tx.put_facts(
            &FactsRow { merged_into: Some(hid(1).to_string()), ..row(5, "73.14.01.1001", "aa", "3", None, Some(1)) },
            &[],
            &[],
        )?;
        tx.insert_disagreement(
            &FoldDisagreementRow { survivor: hid(2), retired: hid(5), path: "answers.rt".into(), other: "{}".into() },
            at(1),
        )
    });
    let page = |query: FactsQuery| {
        let (total, rows) = read(db, "page", |tx| tx.facts_page(&FactsQuery { limit: 10, ..query.clone() }));
        (total, rows.into_iter().map(|r| r.household).collect::<Vec<_>>())
    };
    let kecamatan = Some(vec!["73.14.01".to_string()]);
    let area = FactsQuery { areas: kecamatan.clone(), ..FactsQuery::default() };
    assert_eq!(
        page(area.clone()),
        (3, vec![hid(3), hid(2), hid(1)]),
        "by village, then name; the folded one and 73.14.011 left out"
    );
    let (_, one) = read(db, "offset", |tx| tx.facts_page(&FactsQuery { offset: 1, limit: 1, ..area.clone() }));
    assert_eq!(one.iter().map(|r| r.household).collect::<Vec<_>>(), [hid(2)]);
    assert_eq!(page(FactsQuery { areas: None, ..FactsQuery::default() }).0, 4);
    assert_eq!(page(FactsQuery { areas: Some(vec![]), ..FactsQuery::default() }).0, 0);
    assert_eq!(
        page(FactsQuery { areas: Some(vec!["73.14.01.1002".into(), "73.14.011".into()]), ..FactsQuery::default() }),
        (2, vec![hid(1), hid(4)])
    );
    assert_eq!(page(FactsQuery { name_contains: Some("ode".into()), ..area.clone() }).1, [hid(2), hid(1)]);
    assert_eq!(page(FactsQuery { name_contains: Some("50%".into()), ..area.clone() }).1, [hid(2)]);
    assert_eq!(page(FactsQuery { name_contains: Some("o_e".into()), ..area.clone() }).0, 0, "no wildcards");
    assert_eq!(page(FactsQuery { village_prefix: Some("73.14.01.100".into()), ..FactsQuery::default() }).0, 3);
    assert_eq!(page(FactsQuery { rt_key: Some("3".into()), ..area.clone() }).1, [hid(2), hid(1)]);
    assert_eq!(page(FactsQuery { review: Some(None), ..area.clone() }).1, [hid(2)]);
    assert_eq!(page(FactsQuery { review: Some(Some("returned".into())), ..area.clone() }).1, [hid(3)]);
    assert_eq!(page(FactsQuery { last_outcome: Some(2), ..area.clone() }).1, [hid(3)]);
    assert_eq!(
        page(FactsQuery { conflicts_only: true, ..area.clone() }).1,
        [hid(3), hid(2)],
        "a fold disagreement counts"
    );
    assert_eq!(page(FactsQuery { households: Some(vec![hid(4), hid(1)]), ..area.clone() }).1, [hid(1)]);
    assert_eq!(page(FactsQuery { households: Some(vec![]), ..area.clone() }).0, 0);

    let mut tally = read(db, "tally", |tx| tx.facts_tally(kecamatan.as_deref()));
    tally.sort_by(|a, b| (&a.village, &a.review).cmp(&(&b.village, &b.review)));
    let expected =
        |village: &str, review: Option<&str>, outcome: Option<i64>, visited: bool, conflicts: u64| FactsTally {
            village: village.into(),
            last_visit_by: visited.then(|| "pkh.a".to_string()),
            review: review.map(str::to_string),
            final_outcome: outcome,
            visited,
            households: 1,
            conflicts,
        };
    assert_eq!(
        tally,
        [
            expected("73.14.01.1001", None, None, false, 0),
            expected("73.14.01.1001", Some("returned"), None, true, 1),
            expected("73.14.01.1002", Some("approved"), Some(1), true, 0),
        ]
    );
    assert_eq!(read(db, "tally everywhere", |tx| tx.facts_tally(None)).len(), 4);

    let days = read(db, "days", |tx| tx.visits_per_day(kecamatan.as_deref(), "2026-11-01"));
    assert_eq!(days, [("2026-11-30".to_string(), 2), ("2026-12-01".to_string(), 1)]);
    assert_eq!(read(db, "days", |tx| tx.visits_per_day(None, "2026-12-01")), [("2026-12-01".to_string(), 6)]);
    // Derived again: the days are replaced, not added to.
    write(db, "rederive", |tx| {
        tx.put_facts(&row(4, "73.14.011.1001", "wa ode", "3", None, None), &[], &[day("2026-12-02", 1)])
    });
    assert_eq!(
        read(db, "days", |tx| tx.visits_per_day(None, "2026-12-01")),
        [("2026-12-01".to_string(), 1), ("2026-12-02".to_string(), 1)]
    );
}

fn folds_and_their_disagreements_are_kept(db: &dyn Database) {
    let fold = FoldRow {
        retired: hid(2),
        survivor: hid(1),
        fold: "{\"members\":{}}".into(),
        user: "spv.a".into(),
        device: did(7),
        at: at(10),
    };
    write(db, "fold", |tx| tx.insert_fold(&fold));
    assert_eq!(read(db, "fold", |tx| tx.fold_of(hid(2))), Some(fold.clone()));
    assert!(read(db, "survivor", |tx| tx.fold_of(hid(1))).is_none());
    write(db, "refold", |tx| tx.update_fold(hid(2), "{\"members\":{\"x\":1}}"));
    assert_eq!(read(db, "fold", |tx| tx.fold_of(hid(2))).expect("fold").fold, "{\"members\":{\"x\":1}}");
    let row = |survivor, path: &str| FoldDisagreementRow {
        survivor,
        retired: hid(2),
        path: path.into(),
        other: format!("{{\"path\":\"{path}\"}}"),
    };
    write(db, "disagreements", |tx| {
        tx.insert_disagreement(&row(hid(1), "answers.rt"), at(10))?;
        tx.insert_disagreement(&row(hid(3), "answers.rw"), at(11))?;
        tx.insert_disagreement(&row(hid(1), "answers.rw"), at(12))
    });
    let open = read(db, "open", |tx| tx.open_disagreements(None));
    assert_eq!(open, [row(hid(1), "answers.rt"), row(hid(3), "answers.rw"), row(hid(1), "answers.rw")], "oldest first");
    write(db, "close", |tx| tx.close_disagreements(hid(1), "answers.rt", "spv.a", at(20)));
    assert_eq!(read(db, "open", |tx| tx.open_disagreements(Some(hid(1)))), [row(hid(1), "answers.rw")]);
}

/// Writers that each record a disagreement only when their household has none (the shape of an
/// approval racing a fold) meet on the household's row: on every backend, and whatever order
/// they commit in, each household ends with exactly one.
fn writers_deciding_on_a_touched_household_decide_one_at_a_time(db: &dyn Database) {
    const WRITERS: u8 = 8;
    const HOUSEHOLDS: u8 = 6;
    write(db, "households", |tx| {
        (1..=HOUSEHOLDS).try_for_each(|n| put(tx, hid(n), "73.14.01.1001", &[n], u64::from(n), 1))
    });
    for n in 1..=HOUSEHOLDS {
        let start = std::sync::Barrier::new(usize::from(WRITERS));
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    write(db, "decide", |tx| {
                        tx.touch_household(hid(n))?;
                        if tx.open_disagreements(Some(hid(n)))?.is_empty() {
                            let path = format!("answers.writer_{w}");
                            let row =
                                FoldDisagreementRow { survivor: hid(n), retired: hid(200), path, other: "1".into() };
                            tx.insert_disagreement(&row, at(2))?;
                        }
                        Ok(())
                    })
                });
            }
        });
        let open = read(db, "open", |tx| tx.open_disagreements(Some(hid(n))));
        assert_eq!(open.len(), 1, "household {n}: {} writers each saw none open: {open:?}", open.len());
    }
    let untouched = read(db, "document", |tx| tx.household(hid(1)));
    assert_eq!(untouched.map(|d| d.doc), Some(vec![1]), "touching changes nothing");
}

fn a_failed_write_leaves_nothing_and_times_keep_whole_seconds(db: &dyn Database) {
    let failed = db.write(|tx| {
        tx.insert_user(&new_user("pkh.a", Role::Enumerator))?;
        Err::<(), _>(StorageError::Refused("stop".into()))
    });
    assert!(matches!(failed, Err(StorageError::Refused(_))));
    assert_eq!(read(db, "count", |tx| tx.user_count()), 0, "rolled back");
    let precise = at(7) + time::Duration::milliseconds(999);
    write(db, "insert", |tx| tx.insert_user(&NewUser { created_at: precise, ..new_user("pkh.a", Role::Enumerator) }));
    assert_eq!(read(db, "user", |tx| tx.user("pkh.a")).expect("user").created_at, at(7), "truncated");
}

fn a_read_neither_waits_for_nor_sees_an_open_write(db: &dyn Database) {
    write(db, "user", |tx| tx.insert_user(&new_user("pkh.a", Role::Enumerator)));
    let (taken_tx, taken) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            db.write(|tx| {
                tx.insert_user(&new_user("pkh.b", Role::Enumerator))?;
                let _ = taken_tx.send(());
                let _ = release_rx.recv();
                Ok(())
            })
        });
        taken.recv().expect("the writer holds its transaction");
        let (done_tx, done) = std::sync::mpsc::channel();
        let reader = scope.spawn(move || {
            let seen = db.read(|tx| Ok((tx.user_count()?, tx.user("pkh.b")?.is_some())));
            let _ = done_tx.send(());
            seen
        });
        // A bound, not a synchronisation: a read that waited for the writer would never finish.
        let finished = done.recv_timeout(std::time::Duration::from_secs(60));
        release.send(()).expect("release the writer");
        writer.join().expect("writer thread").expect("the write commits");
        let seen = reader.join().expect("reader thread").expect("the read succeeds");
        assert!(finished.is_ok(), "a read waited for an open write transaction");
        assert_eq!(seen, (1, false), "a read sees only committed rows");
    });
    assert_eq!(read(db, "count", |tx| tx.user_count()), 2);
}

/// A synthetic document-like value: field names shared by every one, values of its own.
fn synthetic_value(n: u32) -> Vec<u8> {
    format!("household_size={} roof=tile wall=brick water=well full_name=Synthetic Person {n} nik=0000{n:012}", n % 9)
        .into_bytes()
}

fn documents_and_changes_read_back_as_written_before_and_after_a_dictionary(db: &dyn Database) {
    let village = "73.14.01.1001";
    assert_eq!(read(db, "no dictionary", |tx| tx.current_kept_dictionary()), None);
    let before = synthetic_value(1);
    write(db, "before", |tx| {
        put(tx, hid(1), village, &before, 1, 10)?;
        tx.insert_change(&NewChange { bytes: &before, ..change(1, "c1", village, did(1)) })?;
        Ok(())
    });
    let samples: Vec<Vec<u8>> = (0..300).map(synthetic_value).collect();
    let refs: Vec<&[u8]> = samples.iter().map(|s| s.as_slice()).collect();
    let (id, dictionary) = crate::storage::at_rest::train(&refs).expect("trained");
    let after = synthetic_value(2);
    write(db, "after", |tx| {
        tx.insert_kept_dictionary(id, &dictionary, at(20))?;
        tx.insert_kept_dictionary(id, b"another", at(21))?;
        put(tx, hid(2), village, &after, 2, 20)?;
        tx.insert_change(&NewChange { bytes: &after, ..change(2, "c2", village, did(1)) })?;
        Ok(())
    });
    assert_eq!(read(db, "current", |tx| tx.current_kept_dictionary()), Some(id));
    assert_eq!(read(db, "current's time", |tx| tx.current_kept_dictionary_at()), Some(at(20)));
    assert_eq!(read(db, "kept once", |tx| tx.kept_dictionary(id)).as_deref(), Some(dictionary.as_slice()));
    // One trained again later becomes the current one; rows keep the one they name.
    let again: Vec<Vec<u8>> = (300..600).map(synthetic_value).collect();
    let again: Vec<&[u8]> = again.iter().map(|s| s.as_slice()).collect();
    let (second, second_bytes) = crate::storage::at_rest::train(&again).expect("trained again");
    assert_ne!(second, id);
    write(db, "second", |tx| tx.insert_kept_dictionary(second, &second_bytes, at(22)));
    assert_eq!(read(db, "newest", |tx| tx.current_kept_dictionary()), Some(second));
    assert_eq!(read(db, "newest's time", |tx| tx.current_kept_dictionary_at()), Some(at(22)));
    assert_eq!(read(db, "doc 1", |tx| tx.household(hid(1))).expect("stored").doc, before);
    assert_eq!(read(db, "doc 2", |tx| tx.household(hid(2))).expect("stored").doc, after);
    let listed = read(db, "listed", |tx| tx.village_households(village, None, 10));
    assert_eq!(listed, [(hid(1), before.clone()), (hid(2), after.clone())]);
    assert_eq!(read(db, "area", |tx| tx.area_households("73.14.01", None, 10)), listed);
    let feed: Vec<Vec<u8>> =
        read(db, "feed", |tx| tx.feed_after(village, 0, 2, None, 10)).into_iter().map(|c| c.bytes).collect();
    assert_eq!(feed, [before, after]);
}

fn form_versions_are_kept_once_and_defaults_replaced(db: &dyn Database) {
    let row = |id: &str, version: u32, seconds: i64| FormRow {
        key: format!("{id}@{version}"),
        form_id: id.to_string(),
        version,
        title: format!("Uji {version}"),
        published_by: "admin.uji".into(),
        published_at: at(seconds),
    };
    let (b2, a3, a2) = (row("b-form", 2, 3), row("a-form", 3, 2), row("a-form", 2, 1));
    write(db, "publish", |tx| {
        assert!(tx.insert_form(&b2, r#"{"b":2}"#)?);
        assert!(tx.insert_form(&a3, r#"{"a":3}"#)?);
        assert!(tx.insert_form(&a2, r#"{"a":2}"#)?);
        // A key is published once: a second insert changes nothing and says so.
        let mut again = a2.clone();
        again.title = "Lain".into();
        assert!(!tx.insert_form(&again, r#"{"a":"other"}"#)?);
        Ok(())
    });
    let (forms, definition, missing) = db
        .read(|tx| Ok((tx.forms()?, tx.form_definition("a-form@2")?, tx.form_definition("a-form@9")?)))
        .expect("read forms");
    assert_eq!(forms, vec![a2.clone(), a3.clone(), b2.clone()], "by form id, then version");
    assert_eq!(definition.as_deref(), Some(r#"{"a":2}"#));
    assert_eq!(missing, None);

    let global =
        FormDefaultRow { area: String::new(), form_key: "a-form@2".into(), set_by: "admin.uji".into(), set_at: at(4) };
    let kabupaten =
        FormDefaultRow { area: "73.14".into(), form_key: "b-form@2".into(), set_by: "admin.uji".into(), set_at: at(5) };
    write(db, "defaults", |tx| {
        tx.put_form_default(&kabupaten)?;
        tx.put_form_default(&global)
    });
    let moved = FormDefaultRow { form_key: "a-form@3".into(), set_at: at(6), ..global.clone() };
    write(db, "move the global default", |tx| tx.put_form_default(&moved));
    let defaults = db.read(|tx| tx.form_defaults()).expect("defaults");
    assert_eq!(defaults, vec![moved, kabupaten], "by area, the global one (empty) first, replaced in place");
}

fn web_sessions_are_kept_touched_ended_and_pruned(db: &dyn Database) {
    let session = |hash: &str, user: &str, start: i64| WebSessionRow {
        token_hash: hash.into(),
        user: user.into(),
        csrf: format!("csrf-{hash}"),
        created_at: at(start),
        expires_at: at(start + 1000),
        seen_at: at(start),
    };
    let (a, b, c) = (session("aa", "spv.satu", 0), session("bb", "spv.satu", 10), session("cc", "admin.dua", 20));
    write(db, "sign in", |tx| {
        for s in [&a, &b, &c] {
            tx.insert_web_session(s)?;
        }
        Ok(())
    });
    assert_eq!(read(db, "read", |tx| tx.web_session("aa")), Some(a.clone()));
    assert_eq!(read(db, "read", |tx| tx.web_session("zz")), None);
    write(db, "touch", |tx| tx.touch_web_session("aa", at(500)));
    assert_eq!(read(db, "read", |tx| tx.web_session("aa")).map(|s| s.seen_at), Some(at(500)));
    write(db, "sign out", |tx| tx.delete_web_session("cc"));
    assert_eq!(read(db, "read", |tx| tx.web_session("cc")), None);
    // Pruned: none ended (absolute) before 999; idle before 100 is `bb` (seen at 10).
    write(db, "prune", |tx| tx.prune_web_sessions(at(999), at(100), 10));
    assert_eq!(read(db, "read", |tx| tx.web_session("bb")), None, "idle");
    assert!(read(db, "read", |tx| tx.web_session("aa")).is_some(), "touched at 500, ends at 1000");
    write(db, "prune", |tx| tx.prune_web_sessions(at(1001), at(100), 10));
    assert_eq!(read(db, "read", |tx| tx.web_session("aa")), None, "past its absolute end");
    write(db, "again", |tx| {
        tx.insert_web_session(&session("dd", "spv.satu", 30))?;
        tx.insert_web_session(&session("ee", "spv.satu", 30))?;
        tx.insert_web_session(&session("ff", "admin.dua", 30))
    });
    assert_eq!(write(db, "revoke", |tx| tx.delete_web_sessions_of("spv.satu")), 2);
    assert!(read(db, "read", |tx| tx.web_session("ff")).is_some(), "another user's session stays");
}

fn a_users_password_and_role_are_replaced(db: &dyn Database) {
    write(db, "user", |tx| tx.insert_user(&new_user("pkh.ganti", Role::Enumerator)));
    assert!(write(db, "password", |tx| tx.set_user_password("pkh.ganti", "hash-baru")));
    assert!(write(db, "role", |tx| tx.set_user_role("pkh.ganti", Role::Supervisor)));
    assert!(!write(db, "nobody", |tx| tx.set_user_password("tidak.ada", "x")));
    assert!(!write(db, "nobody", |tx| tx.set_user_role("tidak.ada", Role::Admin)));
    let user = read(db, "read", |tx| tx.user("pkh.ganti")).expect("the user");
    assert_eq!((user.password_hash.as_str(), user.role), ("hash-baru", Role::Supervisor));
}
