//! Moving up (issue 14): a campaign runs on a SQLite server (a roster import, three enumerator
//! devices, a conflict resolved, a duplicate folded, households approved and returned), every
//! device synced; the server is stopped, `pilar-server migrate` copies it to a fresh PostgreSQL
//! database, and a server started there takes over. Each device is given the new address
//! (`pilar server URL`) and notices nothing else: its sync is a no-op without a password, every
//! household's document is the same, the supervisor's lists and progress are the same, and new
//! work syncs on. Runs on PostgreSQL whatever `PILAR_TEST_BACKEND` says.

use pilar_tests::{Backend, Campaign, Postgres, TEST_ADMIN_PASSWORD, TestDevice, TestServer, binary, example_roster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";
const WANIO: &str = "73.14.01.2004";

/// Every household the server holds: its heads (the document's hashes) and its document's bytes.
fn server_households(server: &TestServer) -> BTreeMap<String, (String, Vec<u8>)> {
    server
        .query("SELECT id, heads, doc FROM households", &[])
        .into_iter()
        .map(|row| (row[0].text().to_string(), (row[1].text().to_string(), row[2].bytes().to_vec())))
        .collect()
}

/// `pilar sync --json`, required to succeed; the summary.
fn sync(device: &TestDevice, who: &str) -> Value {
    let summary = device.json(&["sync"]);
    assert_eq!(summary["outcome"], "complete", "{who}: {summary}");
    summary
}

#[test]
fn a_campaign_moved_from_sqlite_to_postgres_is_the_same_server_to_every_device() {
    let mut campaign = Campaign::start_on(Backend::Sqlite, &[]);
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA, WANIO]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let cici = campaign.enumerator("pkh.cici", &[WANIO]);
    let enumerators = [("pkh.ani", &ani), ("pkh.budi", &budi), ("pkh.cici", &cici)];

    // The roster reaches the devices; visits, a field measured twice, a family registered twice.
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);
    for (who, device) in enumerators {
        sync(device, who);
    }
    let wette = ani.household_headed_by("Wette'E Bin Ali");
    let sitti = ani.household_headed_by("Sitti Regapu’u");
    let kasim = ani.household_headed_by("Kasim Taula'a");
    ani.ok(&["visit", &wette, "--outcome", "2", "--answer", "floor_area_m2=36"]);
    budi.ok(&["visit", &wette, "--outcome", "2", "--answer", "floor_area_m2=42"]);
    ani.ok(&["visit", &kasim, "--outcome", "2", "--answer", "floor_area_m2=54"]);
    ani.ok(&["visit", &sitti, "--outcome", "2", "--answer", "roof_material=1"]);
    let family = ["--village", BILOKKA, "--head-name", "Rahmat Sintetis", "--answer", "rt=004", "--answer"];
    let mut add = vec!["add"];
    add.extend(family);
    add.push("kk_number=7314011010109020");
    let ani_rahmat = ani.json(&add)["household"].as_str().expect("id").to_string();
    let budi_rahmat = budi.json(&add)["household"].as_str().expect("id").to_string();
    let wanio_head = cici.json(&["add", "--village", WANIO, "--head-name", "Becce Sintetis"])["household"]
        .as_str()
        .expect("id")
        .to_string();
    cici.ok(&["visit", &wanio_head, "--outcome", "2", "--answer", "floor_area_m2=30"]);
    for (who, device) in enumerators {
        sync(device, who);
    }

    // The supervisor settles the conflict, folds the duplicate, approves and returns.
    let inbox = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    let floor = inbox
        .as_array()
        .expect("inbox")
        .iter()
        .find(|c| c["household"]["household"] == wette.as_str() && c["path"] == "answers.floor_area_m2")
        .cloned()
        .unwrap_or_else(|| panic!("the floor area conflict: {inbox}"));
    let pick = floor["values"].as_array().expect("values").iter().position(|v| v["value"] == 42).expect("42") + 1;
    supervisor.ok(&["conflicts", "resolve", &wette, "answers.floor_area_m2", "--pick", &pick.to_string()]);
    let pairs = supervisor.json(&["duplicates", "list", "--area", PANCA_LAUTANG]);
    assert_eq!(pairs.as_array().expect("pairs").len(), 1, "{pairs}");
    supervisor.json(&["duplicates", "merge", "--keep", &ani_rahmat, "--retire", &budi_rahmat]);
    supervisor.ok(&["review", "approve", &wette]);
    supervisor.ok(&["review", "approve", &kasim]);
    supervisor.ok(&["review", "return", &sitti, "--comment", "Luas lantai belum diisi"]);
    for (who, device) in enumerators {
        sync(device, who);
    }
    // Once more, so that every device holds what the others' last syncs brought.
    for (who, device) in enumerators {
        sync(device, who);
    }

    let households = server_households(&campaign.server);
    assert!(households.len() >= 7, "the roster and the added families: {:?}", households.keys());
    let review = supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]);
    let progress = supervisor.json(&["progress", "--area", PANCA_LAUTANG]);
    let conflicts = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    let changes = campaign.server.query("SELECT count(*) FROM changes", &[])[0][0].int();

    // Not while the server runs; then stop it, move it, start the new one.
    let target = Postgres::database();
    let data_dir = campaign.server.data_dir();
    let migrate = || {
        Command::new(binary("pilar-server"))
            .arg("migrate")
            .arg("--from")
            .arg(&data_dir)
            .args(["--to", target.url()])
            .env_remove("PILAR_MIGRATE_TO")
            .output()
            .expect("run pilar-server migrate")
    };
    let refused = migrate();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "refused while the server runs: {message}");
    assert!(message.contains("stop that server first"), "{message}");
    let tables = target.connect().query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'public'", &[]);
    assert!(tables.expect("tables").is_empty(), "nothing written to the target");
    campaign.server.terminate();
    let out = migrate();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "migrate failed:\nstdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains(&format!("copied households: {0}/{0} rows", households.len())), "progress: {stderr}");
    assert!(stderr.contains(&format!("copied changes: {changes}/{changes} rows")), "progress: {stderr}");
    assert!(
        stdout.contains(&format!(
            "{} households ({} documents verified by SHA-256)",
            households.len(),
            households.len()
        )),
        "summary: {stdout}"
    );
    for content in ["Sintetis", "Wette", "Regapu", "7314011010109020", "Luas lantai"] {
        assert!(!stdout.contains(content) && !stderr.contains(content), "no row content in the output: {content}");
    }
    let moved = TestServer::start_on_postgres(&target, &[], Some(TEST_ADMIN_PASSWORD));
    assert_eq!(moved.backend(), Backend::Postgres);

    // Every household is the same document on the new server.
    assert!(server_households(&moved) == households, "every household's heads and document bytes are the same");
    for device in [&campaign.admin, &supervisor, &ani, &budi, &cici] {
        device.ok(&["server", moved.url()]);
        assert_eq!(device.ok(&["server"]).trim(), moved.url());
    }
    // The supervisor's view is the same, with the session it had (no password asked).
    assert_eq!(supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]), review);
    assert_eq!(supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]), conflicts);
    assert_eq!(supervisor.json(&["progress", "--area", PANCA_LAUTANG]), progress);

    // Every device's sync is a no-op: nothing sent, nothing received, no password (stdin is closed).
    for (who, device) in enumerators {
        let summary = sync(device, who);
        for field in
            ["changes_sent", "changes_received", "households_changed", "households_from_packs", "villages_downloaded"]
        {
            assert_eq!(summary[field], 0, "{who}: {field} after the move: {summary}");
        }
        assert_eq!(summary["still_unsent"], 0, "{who}: {summary}");
    }
    assert!(server_households(&moved) == households, "the no-op syncs changed nothing");

    // New work syncs on the new server.
    ani.ok(&["visit", &sitti, "--outcome", "2", "--answer", "floor_area_m2=28"]);
    let sent = sync(&ani, "pkh.ani");
    assert!(sent["changes_sent"].as_u64() >= Some(1), "{sent}");
    let received = sync(&budi, "pkh.budi");
    assert!(received["changes_received"].as_u64() >= Some(1), "budi gets ani's visit: {received}");
    let cici_sync = sync(&cici, "pkh.cici");
    assert_eq!(cici_sync["changes_received"], 0, "Wanio saw nothing new: {cici_sync}");
    let shown = budi.json(&["show", &sitti]);
    assert_eq!(shown["household"]["answers"]["floor_area_m2"], 28, "{shown}");
    drop(moved);
}
