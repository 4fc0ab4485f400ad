//! Devices meet the server: offline work in several villages, synced in several orders, converges
//! with nothing lost, duplicated or leaked outside its village.

use pilar_tests::{TEST_ADMIN_PASSWORD, TestDevice, TestServer, conflict_writers};
use serde_json::Value;

const BILOKKA: &str = "73.14.01.1001";
const WETTEE: &str = "73.14.01.1002";

struct Campaign {
    server: TestServer,
    admin: TestDevice,
}

impl Campaign {
    fn start() -> Campaign {
        let server = TestServer::start();
        let admin = TestDevice::new();
        admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
        Campaign { server, admin }
    }

    /// Create an enumerator assigned to `villages`, and a device logged in as them.
    fn enumerator(&self, name: &str, villages: &[&str]) -> TestDevice {
        let password = format!("sandi-{name}-12345");
        let out = self.admin.run_with_stdin(
            &["admin", "user", "add", name, "--role", "enumerator", "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut args = vec!["admin", "assign", name];
        for v in villages {
            args.extend(["--village", v]);
        }
        self.admin.ok(&args);
        let device = TestDevice::new();
        device.login(&self.server, name, &password);
        device
    }
}

fn household_ids(device: &TestDevice) -> Vec<String> {
    let mut ids: Vec<String> = device
        .json(&["list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|h| h["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

fn sync(device: &TestDevice) -> Value {
    device.json(&["sync"])
}

fn add(device: &TestDevice, village: &str, head: &str) -> String {
    device.json(&["add", "--village", village, "--head-name", head])["household"].as_str().expect("id").to_string()
}

#[test]
fn three_enumerators_edit_offline_and_converge_without_loss_or_leaks() {
    let campaign = Campaign::start();
    let a = campaign.enumerator("pkh.a", &[BILOKKA]);
    let b = campaign.enumerator("tksk.b", &[BILOKKA]);
    let c = campaign.enumerator("psm.c", &[WETTEE]);
    for d in [&a, &b, &c] {
        sync(d);
    }

    // A household both Bilokka enumerators will work on.
    let shared = add(&a, BILOKKA, "La Sintetis Bersama");
    assert_eq!(sync(&a)["still_unsent"], 0);
    sync(&b);
    assert_eq!(household_ids(&b), vec![shared.clone()]);

    // Offline: different fields, the same field, new households, new members.
    a.ok(&["visit", &shared, "--outcome", "2", "--answer", "floor_area_m2=36", "--answer", "roof_material=2"]);
    b.ok(&["visit", &shared, "--outcome", "2", "--answer", "floor_area_m2=42", "--answer", "wall_material=1"]);
    a.ok(&[
        "member",
        "add",
        &shared,
        "--name",
        "Andi Sintetis",
        "--answer",
        "sex=1",
        "--answer",
        "presence=1",
        "--answer",
        "relationship=3",
    ]);
    b.ok(&[
        "member",
        "add",
        &shared,
        "--name",
        "Becce Sintetis",
        "--answer",
        "sex=2",
        "--answer",
        "presence=1",
        "--answer",
        "relationship=3",
    ]);
    let new_a = add(&a, BILOKKA, "Wa Ode Sintetis");
    let new_b = add(&b, BILOKKA, "Puang Sintetis");
    let new_c = add(&c, WETTEE, "Hasan Sintetis");

    // Sync in an interleaved order, then everyone once more.
    let b_first = sync(&b);
    assert_eq!(b_first["still_unsent"], 0, "{b_first}");
    sync(&c);
    let a_sync = sync(&a);
    assert_eq!(a_sync["new_conflicts"], 1, "{a_sync}");
    for d in [&b, &c, &a] {
        let s = sync(d);
        assert_eq!(s["still_unsent"], 0);
        assert_eq!(s["rejected"], 0);
    }

    // Bilokka devices hold exactly the three Bilokka households; the Wette'E device only its own.
    let mut bilokka = vec![shared.clone(), new_a, new_b];
    bilokka.sort();
    assert_eq!(household_ids(&a), bilokka);
    assert_eq!(household_ids(&b), bilokka);
    assert_eq!(household_ids(&c), vec![new_c], "a device never receives another village's households");

    // No value lost: both visits, both members, every field, and the same-field conflict with both
    // writers, identical on both devices.
    let show_a = a.json(&["show", &shared]);
    let show_b = b.json(&["show", &shared]);
    assert_eq!(show_a["household"], show_b["household"]);
    let h = &show_a["household"];
    assert_eq!(h["visits"].as_array().expect("visits").len(), 2);
    assert_eq!(h["members"].as_array().expect("members").len(), 2);
    assert_eq!(h["answers"]["roof_material"], 2);
    assert_eq!(h["answers"]["wall_material"], 1);
    assert_eq!(
        conflict_writers(&show_a),
        vec![("answers.floor_area_m2".to_string(), vec!["pkh.a".to_string(), "tksk.b".to_string()])]
    );
    assert_eq!(show_b["conflicts"], show_a["conflicts"]);

    // A later write resolves the conflict everywhere.
    a.ok(&["visit", &shared, "--outcome", "2", "--answer", "floor_area_m2=40"]);
    sync(&a);
    sync(&b);
    let resolved = b.json(&["show", &shared]);
    assert!(resolved["conflicts"].as_array().expect("conflicts").is_empty());
    assert_eq!(resolved["household"]["answers"]["floor_area_m2"], 40);
}

#[test]
fn a_sync_with_nothing_to_do_moves_under_a_kilobyte_and_says_nothing_is_unsent() {
    let campaign = Campaign::start();
    let a = campaign.enumerator("pkh.a", &[BILOKKA]);
    sync(&a);
    add(&a, BILOKKA, "La Sintetis");
    sync(&a);
    let idle = sync(&a);
    assert_eq!(idle["round_trips"], 1);
    let bytes = idle["bytes_sent"].as_u64().expect("sent") + idle["bytes_received"].as_u64().expect("received");
    assert!(bytes < 1024, "{idle}");
    let text = a.ok(&["sync"]);
    assert!(text.contains("everything on this device has reached the server"), "{text}");
}

#[test]
fn an_unassigned_village_is_purged_after_its_pending_work_is_uploaded() {
    let campaign = Campaign::start();
    let a = campaign.enumerator("pkh.a", &[BILOKKA, WETTEE]);
    let watcher = campaign.enumerator("psm.w", &[WETTEE]);
    sync(&a);
    sync(&watcher);
    // Offline work in Wette'E, then the admin takes Wette'E away before the device syncs.
    let pending = add(&a, WETTEE, "Wa Ode Sintetis");
    let kept = add(&a, BILOKKA, "La Sintetis");
    campaign.admin.ok(&["admin", "assign", "pkh.a", "--village", BILOKKA]);
    let s = sync(&a);
    assert_eq!(s["still_unsent"], 0, "the pending Wette'E household was uploaded first: {s}");
    assert_eq!(s["villages_removed"], serde_json::json!([WETTEE]));
    assert_eq!(household_ids(&a), vec![kept], "Wette'E households are gone from the device");
    // The upload really reached the server: a colleague still assigned to Wette'E receives it.
    sync(&watcher);
    assert_eq!(household_ids(&watcher), vec![pending]);
}
