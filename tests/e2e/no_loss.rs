//! No loss, ever: saves made on a device while `pilar sync` applies hundreds of pulled changes on
//! the same home all survive, and a household damaged on a device (an older copy written back, a
//! document that no longer loads) is restored by the next sync with the device's unsent work intact.

use pilar_tests::{Campaign, TestDevice, seed_from_env};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use sync_core::entry;
use sync_core::form::FormDefinition;
use sync_core::model::{Edits, HouseholdId};
use sync_core::store::DeviceStore;
use sync_core::value::FieldValue;
use time::OffsetDateTime;

const BILOKKA: &str = "73.14.01.1001";

fn answer(field: &str, value: i64) -> Edits {
    Edits { answers: BTreeMap::from([(field.to_string(), Some(FieldValue::Int(value)))]), ..Edits::default() }
}

/// A colleague's busy day, written straight into their device store (hundreds of changes a
/// second, where the CLI would take a process start per save).
fn colleague_edits(device: &TestDevice, ids: &[HouseholdId], edits: usize, rng: &mut StdRng) {
    let mut store = DeviceStore::open(device.home()).expect("colleague store");
    let form = FormDefinition::default_dtsen();
    for _ in 0..edits {
        let id = ids[rng.random_range(0..ids.len())];
        let edit = answer("floor_area_m2", rng.random_range(1..=997));
        entry::save(&mut store, form, id, "edit", &edit, OffsetDateTime::now_utc()).expect("colleague save");
    }
}

fn add(device: &TestDevice, head: &str) -> HouseholdId {
    let added = device.json(&["add", "--village", BILOKKA, "--head-name", head]);
    added["household"].as_str().expect("household id").parse().expect("uuid")
}

fn has_change(device: &TestDevice, id: HouseholdId, hash: &str) -> bool {
    let store = DeviceStore::open(device.home()).expect("store");
    let household = store.load(id).expect("household loads").household;
    household.has_change(&hash.parse::<automerge::ChangeHash>().expect("hash"))
}

/// Heads of every household on a device, for comparing two copies.
fn all_heads(device: &TestDevice) -> BTreeMap<HouseholdId, Vec<String>> {
    let store = DeviceStore::open(device.home()).expect("store");
    store
        .heads_by_household()
        .expect("heads")
        .into_iter()
        .map(|(id, heads)| {
            let mut heads: Vec<String> = heads.iter().map(ToString::to_string).collect();
            heads.sort();
            (id, heads)
        })
        .collect()
}

fn sync_ok(device: &TestDevice) -> serde_json::Value {
    let out = device.run(&["sync", "--json"]);
    assert!(
        out.status.success(),
        "sync failed ({:?}):\nstdout: {}\nstderr: {}\npending: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        device.ok(&["pending"])
    );
    serde_json::from_slice(&out.stdout).expect("sync summary")
}

#[test]
fn saves_during_a_sync_on_the_same_device_are_all_kept_and_every_later_sync_succeeds() {
    let seed = seed_from_env("PILAR_TEST_SEED");
    let iterations: usize = std::env::var("PILAR_SOAK_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    eprintln!("seed {seed} (PILAR_TEST_SEED), {iterations} iterations (PILAR_SOAK_ITERATIONS)");
    let mut rng = StdRng::seed_from_u64(seed);
    let campaign = Campaign::start();
    let mine = campaign.enumerator("pkh.sibuk", &[BILOKKA]);
    let colleague = campaign.enumerator("tksk.rekan", &[BILOKKA]);
    sync_ok(&mine);
    let names = ["Andi", "Baso", "Becce", "Cahya", "Dewi", "Fitri", "Hasan", "Indah"];
    let ids: Vec<HouseholdId> = names.iter().map(|n| add(&mine, &format!("{n} Sintetis"))).collect();
    sync_ok(&mine);
    sync_ok(&colleague);
    let mut saved: Vec<(HouseholdId, String)> = Vec::new();
    for iteration in 0..iterations {
        // The colleague's work on the same households: hundreds of changes for `mine` to pull.
        colleague_edits(&colleague, &ids, 300, &mut rng);
        sync_ok(&colleague);
        // `mine` syncs in the background while the enumerator keeps saving on the same home.
        let mut sync = Command::new(pilar_tests::binary("pilar"))
            .arg("--home")
            .arg(mine.home())
            .args(["sync", "--json"])
            .env_remove("PILAR_HOME")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sync");
        let mut during = 0;
        loop {
            let id = ids[rng.random_range(0..ids.len())];
            let (field, value) = if rng.random_bool(0.5) {
                ("floor_area_m2", rng.random_range(1..=997))
            } else {
                ("roof_material", rng.random_range(1..=3))
            };
            let out = mine.json(&["edit", &id.to_string(), "--answer", &format!("{field}={value}")]);
            if let Some(hash) = out["change"].as_str() {
                saved.push((id, hash.to_string()));
                during += 1;
            }
            if sync.try_wait().expect("sync status").is_some() || during > 200 {
                break;
            }
        }
        let out = sync.wait_with_output().expect("sync output");
        // Work saved after its last batch may be left for the next sync (exit 3, "unsent"); the
        // sync itself must not fail.
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sync summary");
        assert!(
            out.status.success() || (out.status.code() == Some(3) && summary["outcome"] == "unsent"),
            "seed {seed}, iteration {iteration}: the background sync failed:\n{summary}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("iteration {iteration}: {during} save(s) while the sync ran");
        // Every later sync succeeds, and every saved edit is in the device's own document.
        sync_ok(&mine);
        for (id, hash) in &saved {
            assert!(has_change(&mine, *id, hash), "seed {seed}: saved change {hash} of {id} is missing on the device");
        }
    }
    sync_ok(&mine);
    sync_ok(&colleague);
    // The server has every one of them: the colleague received them all.
    for (id, hash) in &saved {
        assert!(has_change(&colleague, *id, hash), "seed {seed}: saved change {hash} of {id} never reached the server");
    }
    assert_eq!(all_heads(&mine), all_heads(&colleague), "seed {seed}: the two devices differ");
    let status = mine.json(&["status"]);
    assert_eq!(status["unsent_changes"], 0, "{status}");
}

/// Replace a household's stored copy on a device with `document`, as a crash or an old bug could
/// leave it: the document, without the changes logged after it or the registers read from them.
fn overwrite_document(device: &TestDevice, id: HouseholdId, document: &[u8]) {
    let conn = rusqlite::Connection::open(device.home().join(sync_core::store::DB_FILE)).expect("open store");
    let n = conn
        .execute(
            "UPDATE households SET doc = ?2, registers = NULL WHERE id = ?1",
            rusqlite::params![id.to_string(), document],
        )
        .expect("overwrite");
    assert_eq!(n, 1);
    conn.execute("DELETE FROM household_log WHERE household_id = ?1", [id.to_string()]).expect("empty the log");
}

fn stored_document(device: &TestDevice, id: HouseholdId) -> Vec<u8> {
    DeviceStore::open(device.home()).expect("store").load(id).expect("load").household.save()
}

#[test]
fn a_household_damaged_on_a_device_is_restored_by_the_next_sync_with_its_unsent_work() {
    let campaign = Campaign::start();
    let mine = campaign.enumerator("pkh.rusak", &[BILOKKA]);
    let colleague = campaign.enumerator("tksk.utuh", &[BILOKKA]);
    sync_ok(&mine);
    let stale = add(&mine, "La Sintetis Lama");
    let broken = add(&mine, "Wa Ode Sintetis Rusak");
    let forgetful = add(&mine, "Puang Sintetis Lupa");
    sync_ok(&mine);
    sync_ok(&colleague);
    // The device's copy of `forgetful` loses one of the device's OWN acknowledged edits (an old
    // backup restored, or a save overwritten before saves and syncs were serialised): its next
    // edit reuses that change's sequence number, which the server must refuse as malformed.
    let forgetful_copy = stored_document(&mine, forgetful);
    mine.ok(&["edit", &forgetful.to_string(), "--answer", "wall_material=3"]);
    sync_ok(&mine);
    overwrite_document(&mine, forgetful, &forgetful_copy);
    mine.ok(&["edit", &forgetful.to_string(), "--answer", "lighting_source=1"]);
    // An older copy of `stale` is kept; then a colleague's edit reaches the device.
    let old_copy = stored_document(&mine, stale);
    colleague.ok(&["edit", &stale.to_string(), "--answer", "wall_material=2"]);
    sync_ok(&colleague);
    sync_ok(&mine);
    // The device loses that edit from its document (the old copy is written back, as a save that
    // raced a sync could leave it before this was fixed; its cursor is past the edit, so the feed
    // never sends it again), and the other household's document stops loading at all.
    overwrite_document(&mine, stale, &old_copy);
    overwrite_document(&mine, broken, b"not an automerge document");
    // A colleague builds on the lost edit; the device keeps working offline on the old copy.
    colleague.ok(&["sync"]);
    colleague.ok(&["edit", &stale.to_string(), "--answer", "floor_area_m2=48"]);
    colleague.ok(&["edit", &broken.to_string(), "--answer", "roof_material=2"]);
    sync_ok(&colleague);
    let unsent = mine.json(&["edit", &stale.to_string(), "--answer", "water_source=2"]);
    let unsent_hash = unsent["change"].as_str().expect("a change").to_string();
    // Saving on the unreadable household is refused and lists it for repair.
    let refused = mine.fails(&["edit", &broken.to_string(), "--answer", "roof_material=1"]);
    assert!(refused.contains("listed for repair"), "{refused}");
    assert!(mine.ok(&["status"]).contains("wait to be restored from the server"));

    // One sync: the pulled changes do not fit the damaged copies, which are restored from the
    // server's documents merged with the device's unsent work; nothing blocks.
    let summary = sync_ok(&mine);
    assert_eq!(summary["households_restored"], 2, "{summary}");
    assert_eq!(summary["repairs_pending"], 0, "{summary}");
    assert!(has_change(&mine, stale, &unsent_hash), "the unsent edit must survive the repair");
    sync_ok(&colleague);
    assert!(has_change(&colleague, stale, &unsent_hash), "the unsent edit must reach the server");
    assert_eq!(all_heads(&mine), all_heads(&colleague));
    let shown = mine.json(&["show", &stale.to_string()]);
    let answers = &shown["household"]["answers"];
    assert_eq!(answers["wall_material"], 2, "{shown}");
    assert_eq!(answers["floor_area_m2"], 48, "{shown}");
    assert_eq!(answers["water_source"], 2, "{shown}");
    // The edit made on the copy that had lost its own change was made again and reached the
    // server, next to the edit it had lost.
    for device in [&mine, &colleague] {
        let shown = device.json(&["show", &forgetful.to_string()]);
        assert_eq!(shown["household"]["answers"]["wall_material"], 3, "{shown}");
        assert_eq!(shown["household"]["answers"]["lighting_source"], 1, "{shown}");
    }
    // And the later syncs go on as usual.
    sync_ok(&mine);
    assert_eq!(mine.json(&["status"])["unsent_changes"], 0);
}

#[test]
fn a_pilar_killed_mid_save_or_mid_sync_leaves_an_intact_store_and_whole_saves() {
    let seed = seed_from_env("PILAR_TEST_SEED");
    let rounds: usize = std::env::var("PILAR_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    eprintln!("seed {seed} (PILAR_TEST_SEED), {rounds} kills (PILAR_KILL_ROUNDS)");
    let mut rng = StdRng::seed_from_u64(seed);
    let campaign = Campaign::start();
    let mine = campaign.enumerator("pkh.mati", &[BILOKKA]);
    let colleague = campaign.enumerator("tksk.hidup", &[BILOKKA]);
    sync_ok(&mine);
    let names = ["Andi", "Baso", "Becce", "Cahya"];
    let ids: Vec<HouseholdId> = names.iter().map(|n| add(&mine, &format!("{n} Sintetis"))).collect();
    sync_ok(&mine);
    sync_ok(&colleague);
    for round in 0..rounds {
        // Something to pull, so a sync has pages to apply when it is killed.
        colleague_edits(&colleague, &ids, 150, &mut rng);
        sync_ok(&colleague);
        let id = ids[rng.random_range(0..ids.len())].to_string();
        let value = format!("floor_area_m2={}", rng.random_range(1..=997));
        let (args, window_ms): (Vec<&str>, u64) =
            if rng.random_bool(0.5) { (vec!["edit", &id, "--answer", &value], 60) } else { (vec!["sync"], 600) };
        let mut child = Command::new(pilar_tests::binary("pilar"))
            .arg("--home")
            .arg(mine.home())
            .args(&args)
            .env_remove("PILAR_HOME")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pilar");
        // The fault: SIGKILL at a seeded moment inside the command's usual run time.
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..window_ms)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        // The store reopens intact: SQLite's integrity check passes, every document loads, and every
        // own change queued for the server is in its document (a save is all or nothing).
        let check = mine.json(&["repair", "--offline"]);
        assert_eq!(check["integrity"], serde_json::json!([]), "seed {seed}, round {round} ({args:?}): {check}");
        assert_eq!(check["damaged"], serde_json::json!([]), "seed {seed}, round {round} ({args:?}): {check}");
        assert_eq!(
            check["missing_own_changes"],
            serde_json::json!([]),
            "seed {seed}, round {round} ({args:?}, {status}): {check}"
        );
    }
    // Whatever was cut converges: every change in the device's documents reached the server (a
    // change stored without its outbox row never would), and the device has everything.
    sync_ok(&mine);
    sync_ok(&colleague);
    assert_eq!(all_heads(&mine), all_heads(&colleague), "seed {seed}");
    assert_eq!(mine.json(&["status"])["unsent_changes"], 0);
}

/// Every change hash the server has stored, read from its database (read-only, beside the server).
fn server_changes(server: &pilar_tests::TestServer) -> std::collections::BTreeSet<String> {
    server.query("SELECT hash FROM changes", &[]).iter().map(|r| r[0].text().to_string()).collect()
}

fn outbox_hashes(device: &TestDevice) -> std::collections::BTreeSet<String> {
    DeviceStore::open(device.home()).expect("store").outbox().expect("outbox").into_iter().map(|e| e.hash).collect()
}

#[test]
fn a_server_killed_while_devices_sync_keeps_every_acknowledged_change_and_devices_converge() {
    let seed = seed_from_env("PILAR_TEST_SEED");
    let rounds: usize = std::env::var("PILAR_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    eprintln!("seed {seed} (PILAR_TEST_SEED), {rounds} server kills (PILAR_KILL_ROUNDS)");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut campaign = Campaign::start();
    let devices: Vec<TestDevice> =
        ["pkh.satu", "pkh.dua", "pkh.tiga"].iter().map(|u| campaign.enumerator(u, &[BILOKKA])).collect();
    for d in &devices {
        sync_ok(d);
    }
    let names = ["Andi", "Baso", "Becce", "Cahya", "Dewi", "Fitri"];
    let ids: Vec<HouseholdId> = names.iter().map(|n| add(&devices[0], &format!("{n} Sintetis"))).collect();
    for d in &devices {
        sync_ok(d);
    }
    for round in 0..rounds {
        // Offline work on every device, then all three sync at once and the server is killed at a
        // seeded moment while they do.
        for d in &devices {
            colleague_edits(d, &ids, 60, &mut rng);
        }
        let before: Vec<_> = devices.iter().map(outbox_hashes).collect();
        let children: Vec<_> = devices
            .iter()
            .map(|d| {
                Command::new(pilar_tests::binary("pilar"))
                    .arg("--home")
                    .arg(d.home())
                    .args(["sync", "--json"])
                    .env_remove("PILAR_HOME")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start sync")
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..400)));
        campaign.server.kill();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().expect("sync output");
            let code = out.status.code();
            assert!(
                code == Some(0) || code == Some(3),
                "seed {seed}, round {round}: a sync cut by the server's death must end 0 or 3 (network), got {code:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if code == Some(3) {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.contains("safe on this device"), "seed {seed}, round {round}, device {i}: {stderr}");
            }
        }
        campaign.server.restart();
        // Every change a device saw acknowledged (gone from its outbox) is on the restarted server.
        let stored = server_changes(&campaign.server);
        for (i, d) in devices.iter().enumerate() {
            let after = outbox_hashes(d);
            for hash in before[i].difference(&after) {
                assert!(stored.contains(hash), "seed {seed}, round {round}: acknowledged change {hash} was lost");
            }
        }
    }
    // The devices converge once the server stays up.
    for _ in 0..2 {
        for d in &devices {
            sync_ok(d);
        }
    }
    let heads = all_heads(&devices[0]);
    for d in &devices[1..] {
        assert_eq!(all_heads(d), heads, "seed {seed}: devices differ after the server came back");
    }
    let stored = server_changes(&campaign.server);
    for d in &devices {
        assert!(outbox_hashes(d).is_empty());
        let store = DeviceStore::open(d.home()).expect("store");
        for id in &ids {
            for hash in store.load(*id).expect("load").household.heads() {
                assert!(stored.contains(&hash.to_string()), "seed {seed}: a head {hash} is not on the server");
            }
        }
    }
}
