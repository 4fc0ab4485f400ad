//! A field worker's offline day, scripted through the `pilar` binary.

use pilar_tests::{TestDevice, conflict_writers};
use serde_json::Value;

const BILOKKA: &str = "73.14.01.1001";
const WETTEE: &str = "73.14.01.1002";

fn id_of(v: &Value) -> String {
    v["household"].as_str().expect("household id in output").to_string()
}

#[test]
fn a_day_offline_add_visit_refuse_search_and_pending() {
    let mut device = TestDevice::new();
    device.set_now("2026-11-20T08:30:00+08:00");
    let out = device.ok(&["init", "--user", "pkh.bilokka01", "--village", BILOKKA, "--village", WETTEE]);
    assert!(out.contains("Bilokka") && out.contains("Wette'E"), "{out}");

    // Two households; the second through an answers file with members.
    let first = id_of(&device.json(&[
        "add",
        "--village",
        BILOKKA,
        "--head-name",
        "La Baso Sintetis",
        "--rt",
        "003",
        "--kk",
        "7314011201209001",
    ]));
    let file = device.home().join("family.json");
    std::fs::write(
        &file,
        r#"{"head_name": "Wa Ode Contoh", "rt": "004", "kk_number": "7314 0115 0621 9002",
            "members": [
              {"full_name": "Wa Ode Contoh", "nik": "7314015507859003", "sex": 2, "presence": 1, "relationship": 1, "birth_date": "1985-07-15"},
              {"full_name": "Andi Contoh", "nik": "7314010302159004", "sex": 1, "presence": 1, "relationship": 3}
            ]}"#,
    )
    .expect("write answers file");
    let second = id_of(&device.json(&["add", "--village", WETTEE, "--answers-file", file.to_str().expect("path")]));

    // A visit with an answer outside its range is refused, naming the field, rule and value.
    device.set_now("2026-11-20T10:00:00+08:00");
    let err = device.fails(&[
        "visit",
        &first[..8],
        "--outcome",
        "3",
        "--answer",
        "floor_area_m2=1200",
        "--gps",
        "-3.94,119.78,8",
    ]);
    assert!(err.contains("floor_area_m2") && err.contains("997") && err.contains("[range]"), "{err}");
    assert!(err.contains("nothing was saved"), "{err}");
    // ... and nothing was saved: still unvisited, one pending change (the create).
    let listed = device.json(&["list", "--not-visited"]);
    assert_eq!(listed.as_array().expect("list").len(), 2);

    // A NIK that breaks a reject rule names the member's field.
    let err = device.fails(&[
        "member",
        "add",
        &second[..8],
        "--name",
        "Becce Contoh",
        "--answer",
        "nik=7314011399859005",
        "--answer",
        "sex=2",
        "--answer",
        "presence=1",
        "--answer",
        "relationship=3",
    ]);
    assert!(err.contains("nik") && err.contains("nik_month_range"), "{err}");

    // The same visit, corrected, is saved.
    device.ok(&[
        "visit",
        &first[..8],
        "--outcome",
        "3",
        "--answer",
        "floor_area_m2=36",
        "--gps",
        "-3.94,119.78,8",
        "--note",
        "rumah kosong",
    ]);
    let visited = device.json(&["list", "--outcome", "3"]);
    assert_eq!(visited.as_array().expect("list").len(), 1);
    assert_eq!(visited[0]["id"], first.as_str());
    let not_visited = device.json(&["list", "--not-visited"]);
    assert_eq!(not_visited[0]["id"], second.as_str());

    // Search by a member's name (any part, ignoring the apostrophe), by NIK prefix, by KK.
    let by_name = device.json(&["search", "andi contoh"]);
    assert_eq!(by_name[0]["id"], second.as_str());
    let by_nik = device.json(&["search", "7314015507859003"]);
    assert_eq!(by_nik[0]["id"], second.as_str());
    let by_kk = device.json(&["search", "7314011201209001"]);
    assert_eq!(by_kk[0]["id"], first.as_str());
    assert_eq!(by_kk[0]["kk_masked"], "7314********9001", "lists mask identifiers");

    // Show: members, visits, no conflicts.
    let shown = device.json(&["show", &second]);
    assert_eq!(shown["household"]["members"].as_array().expect("members").len(), 2);
    let shown = device.json(&["show", &first]);
    assert_eq!(shown["household"]["visits"][0]["outcome"], 3);
    assert_eq!(shown["household"]["visits"][0]["user"], "pkh.bilokka01");
    assert_eq!(shown["household"]["answers"]["floor_area_m2"], 36);

    // History of a field names who and when.
    let history = device.json(&["history", &first, "floor_area_m2"]);
    assert_eq!(history["history"][0]["value"], 36);
    assert_eq!(history["history"][0]["writer"]["user"], "pkh.bilokka01");
    assert_eq!(history["history"][0]["writer"]["at"], "2026-11-20T02:00:00Z");

    // Everything is still waiting to be sent: 2 creates + 1 visit.
    let pending = device.json(&["pending"]);
    let actions: Vec<&str> =
        pending.as_array().expect("outbox").iter().map(|e| e["action"].as_str().expect("action")).collect();
    assert_eq!(actions, ["create", "create", "visit"]);
    let text = device.ok(&["pending"]);
    assert!(text.contains("3 change(s) for 2 household(s)"), "{text}");
}

#[test]
fn a_household_outside_the_devices_villages_is_refused() {
    let device = TestDevice::new();
    device.ok(&["init", "--user", "pkh.bilokka01", "--village", BILOKKA]);
    let err = device.fails(&["add", "--village", WETTEE, "--head-name", "La Contoh"]);
    assert!(err.contains("not assigned to this device"), "{err}");
    let err = device.fails(&["add", "--village", "73.14.01.1999", "--head-name", "La Contoh"]);
    assert!(err.contains("73.14.01.1999"), "{err}");
    assert!(device.json(&["list"]).as_array().expect("list").is_empty());
}

#[test]
fn two_devices_merged_directly_keep_both_values_of_a_conflicting_field() {
    let a = TestDevice::new();
    let b = TestDevice::new();
    a.ok(&["init", "--user", "pkh.a", "--village", BILOKKA]);
    b.ok(&["init", "--user", "tksk.b", "--village", BILOKKA]);
    let id = id_of(&a.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis"]));
    let home_a = a.home().to_str().expect("path").to_string();
    let home_b = b.home().to_str().expect("path").to_string();
    b.ok(&["debug", "exchange", "--from", &home_a]);
    a.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=30"]);
    b.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=45"]);
    a.ok(&["debug", "exchange", "--from", &home_b]);
    let shown = a.json(&["show", &id]);
    assert_eq!(
        conflict_writers(&shown),
        vec![("answers.floor_area_m2".to_string(), vec!["pkh.a".to_string(), "tksk.b".to_string()])]
    );
    assert_eq!(a.json(&["list", "--conflicts"]).as_array().expect("list").len(), 1);
    assert_eq!(shown["household"]["visits"].as_array().expect("visits").len(), 2, "both visits survive");
}

#[test]
fn every_mistake_gets_a_message_naming_it_and_the_next_step() {
    let device = TestDevice::new();
    // Before anything: a field worker starts with a login.
    let out = device.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no device store") && err.contains("pilar login --server"), "{err}");
    device.ok(&["init", "--user", "pkh.bilokka01", "--village", BILOKKA]);
    let id = id_of(&device.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis"]));
    // An offline store cannot sync until it logs in.
    let out = device.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pilar login --server"), "{err}");
    let cases: [(&[&str], &[&str]); 4] = [
        (&["history", &id, "roof_colour"], &["answers.roof_colour is not a field", "pilar form"]),
        (&["search", "731"], &["too short", "at least 4"]),
        (&["visit", &id, "--outcome", "3", "--gps", "119.78,-3.94,8"], &["swapped", "--gps -3.94,119.78,8"]),
        (&["visit", &id, "--outcome", "3", "--gps", "-3.94"], &["must be lat,lon", "e.g."]),
    ];
    for (args, words) in cases {
        let out = device.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "pilar {args:?}: {err}");
        for w in words {
            assert!(err.contains(w), "pilar {args:?} should say {w:?}: {err}");
        }
    }
    // Nothing of the refused visits was saved.
    assert_eq!(device.json(&["show", &id])["household"]["visits"], serde_json::json!([]));
}
