//! A small campaign end to end against a real server: a roster for two villages reaches two
//! enumerators, who visit offline (one field written differently by both, one family registered
//! by both); the supervisor resolves the conflict, merges the duplicate (and a later offline edit
//! of the retired household still lands in the survivor), approves and returns households; the
//! enumerator sees the return and fixes it; approvals go stale on change and are given again;
//! the approved-only export holds exactly the approved households, checked cell by cell. Then:
//! who may do what (403 for enumerators, supervisors only in their kecamatan).

use crate::export::sheet;
use pilar_tests::{Campaign, TestDevice, example_roster};
use serde_json::Value;

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";
const WANIO: &str = "73.14.01.2004";

fn review_of(supervisor: &TestDevice, id: &str) -> Option<String> {
    let list = supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]);
    let found = list.as_array().expect("list").iter().find(|b| b["household"] == id).cloned();
    found.and_then(|b| b["review"].as_str().map(str::to_string))
}

#[test]
fn a_small_campaign_runs_from_roster_to_approved_export() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let mut ani = campaign.enumerator("pkh.ani", &[BILOKKA, WANIO]);
    let mut budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    // Fixed times keep Ani's work before Budi's; they are today's, since the server refuses work
    // dated long before a device's first login (forged_writer).
    let wita = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
    ani.set_now(&sync_core::model::rfc3339_seconds(wita - time::Duration::minutes(60)));
    budi.set_now(&sync_core::model::rfc3339_seconds(wita - time::Duration::minutes(30)));

    // 1. The roster of two villages reaches both enumerators.
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    let wette = ani.household_headed_by("Wette'E Bin Ali");
    let sitti = ani.household_headed_by("Sitti Regapu’u");
    let kasim = ani.household_headed_by("Kasim Taula'a");
    assert_eq!(budi.household_headed_by("Wette'E Bin Ali"), wette, "both devices hold the same household");

    // 2. Offline: both visit Wette'E and measure the floor differently; both register the same
    //    new family; Ani visits Sitti and Kasim.
    ani.ok(&["visit", &wette, "--outcome", "2", "--answer", "floor_area_m2=36", "--answer", "roof_material=2"]);
    budi.ok(&["visit", &wette, "--outcome", "2", "--answer", "floor_area_m2=42", "--answer", "wall_material=1"]);
    let new_family = ["--village", BILOKKA, "--head-name", "Rahmat Sintetis", "--answer", "rt=004"];
    let mut ani_add = vec!["add"];
    ani_add.extend(new_family);
    ani_add.extend(["--answer", "kk_number=7314011010109020", "--answer", "address=Jl. Baru 1"]);
    let ani_rahmat = ani.json(&ani_add)["household"].as_str().expect("id").to_string();
    let mut budi_add = vec!["add"];
    budi_add.extend(new_family);
    budi_add.extend(["--answer", "kk_number=7314011010109020", "--answer", "phone=081200000001"]);
    let budi_rahmat = budi.json(&budi_add)["household"].as_str().expect("id").to_string();
    ani.ok(&["visit", &ani_rahmat, "--outcome", "2", "--answer", "floor_area_m2=20"]);
    budi.ok(&["visit", &budi_rahmat, "--outcome", "2", "--answer", "floor_area_m2=24"]);
    ani.ok(&["visit", &sitti, "--outcome", "2", "--answer", "roof_material=1"]);
    ani.ok(&["visit", &kasim, "--outcome", "2", "--answer", "floor_area_m2=54"]);

    // 3. Everyone syncs.
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    ani.json(&["sync"]);

    // 4. The conflict inbox lists the floor area with both writers; the supervisor keeps 42.
    let inbox = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    let items = inbox.as_array().expect("inbox");
    let floor = items
        .iter()
        .find(|c| c["household"]["household"] == wette.as_str() && c["path"] == "answers.floor_area_m2")
        .unwrap_or_else(|| panic!("floor area conflict listed: {inbox}"));
    assert_eq!(floor["source"], "sync");
    let values = floor["values"].as_array().expect("values");
    let mut writers: Vec<(String, String)> =
        values.iter().map(|v| (v["value"].to_string(), v["user"].as_str().expect("user").to_string())).collect();
    writers.sort();
    assert_eq!(writers, [("36".to_string(), "pkh.ani".to_string()), ("42".to_string(), "pkh.budi".to_string())]);
    assert!(values.iter().all(|v| !v["device"].as_str().unwrap_or_default().is_empty() && v["at"].is_string()));
    let pick = values.iter().position(|v| v["value"] == 42).expect("42 listed") + 1;
    let err = supervisor.fails(&["review", "approve", &wette]);
    assert!(err.contains("open conflict"), "no approval over an open conflict: {err}");
    supervisor.ok(&["conflicts", "resolve", &wette, "answers.floor_area_m2", "--pick", &pick.to_string()]);
    let inbox = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    assert!(
        !inbox.as_array().expect("inbox").iter().any(|c| c["household"]["household"] == wette.as_str()),
        "resolved: {inbox}"
    );

    // 5. The family registered twice is suspected (same KK, same head in the same RT); merged.
    let suspected = supervisor.json(&["duplicates", "list", "--area", PANCA_LAUTANG]);
    let pair = suspected.as_array().expect("pairs");
    assert_eq!(pair.len(), 1, "{suspected}");
    let mut ids = [pair[0]["a"]["household"].as_str().expect("a"), pair[0]["b"]["household"].as_str().expect("b")];
    ids.sort();
    let mut expected = [ani_rahmat.as_str(), budi_rahmat.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    let mut reasons: Vec<&str> =
        pair[0]["reasons"].as_array().expect("reasons").iter().filter_map(Value::as_str).collect();
    reasons.sort();
    assert_eq!(reasons, ["same_head_name", "same_kk"]);
    // Budi keeps working on his copy offline, not yet knowing it is a duplicate.
    budi.ok(&[
        "member",
        "add",
        &budi_rahmat,
        "--name",
        "Nurul Sintetis",
        "--answer",
        "sex=2",
        "--answer",
        "presence=1",
        "--answer",
        "relationship=2",
    ]);
    let merged = supervisor.json(&["duplicates", "merge", "--keep", &ani_rahmat, "--retire", &budi_rahmat]);
    assert_eq!(merged["disagreements"].as_u64(), Some(1), "floor area 20 against 24: {merged}");
    assert!(supervisor.json(&["duplicates", "list", "--area", PANCA_LAUTANG]).as_array().expect("pairs").is_empty());
    let inbox = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    let disagreement = inbox
        .as_array()
        .expect("inbox")
        .iter()
        .find(|c| c["household"]["household"] == ani_rahmat.as_str())
        .unwrap_or_else(|| panic!("merge disagreement listed: {inbox}"));
    assert_eq!(
        (disagreement["source"].as_str(), disagreement["path"].as_str()),
        (Some("merge"), Some("answers.floor_area_m2"))
    );
    supervisor.ok(&["conflicts", "resolve", &ani_rahmat, "answers.floor_area_m2", "--value", "22"]);
    budi.json(&["sync"]);
    ani.json(&["sync"]);
    let survivor = ani.json(&["show", &ani_rahmat]);
    let answers = &survivor["household"]["answers"];
    assert_eq!((answers["floor_area_m2"].as_i64(), answers["phone"].as_str()), (Some(22), Some("081200000001")));
    let members: Vec<&str> = survivor["household"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["answers"]["full_name"].as_str())
        .collect();
    assert!(members.contains(&"Nurul Sintetis"), "Budi's offline work on the retired copy was folded in: {members:?}");
    assert_eq!(survivor["household"]["visits"].as_array().expect("visits").len(), 2, "both visits kept");
    let retired = budi.json(&["show", &budi_rahmat]);
    assert_eq!(retired["household"]["links"]["merged_into"], ani_rahmat.as_str());

    // The resolution reached both devices: the conflict is gone everywhere, 42 kept.
    for device in [&ani, &budi] {
        let shown = device.json(&["show", &wette]);
        assert_eq!(shown["conflicts"].as_array().map(Vec::len), Some(0), "{shown}");
        assert_eq!(shown["household"]["answers"]["floor_area_m2"].as_i64(), Some(42));
    }
    let history = ani.json(&["history", &wette, "floor_area_m2"]);
    let last = history["history"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(last["writer"]["user"], "spv.panca", "the resolution is recorded with who: {history}");

    // 6. Review: approve Wette'E and Kasim; return Sitti with a comment.
    supervisor.ok(&["review", "approve", &wette]);
    supervisor.ok(&["review", "approve", &kasim]);
    let err = supervisor.fails(&["review", "return", &sitti]);
    assert!(err.contains("--comment"), "{err}");
    supervisor.ok(&["review", "return", &sitti, "--comment", "Luas lantai belum diisi"]);
    assert_eq!(review_of(&supervisor, &kasim).as_deref(), Some("approved"));
    assert_eq!(review_of(&supervisor, &sitti).as_deref(), Some("returned"));

    // 7. Ani sees the return after syncing and fixes it; she also corrects Kasim's household.
    assert!(ani.json(&["returned"]).as_array().expect("returned").is_empty(), "nothing before the sync");
    ani.json(&["sync"]);
    let returned = ani.json(&["returned"]);
    let returned = returned.as_array().expect("returned");
    assert_eq!(returned.len(), 1);
    assert_eq!(
        (returned[0]["household"].as_str(), returned[0]["comment"].as_str()),
        (Some(sitti.as_str()), Some("Luas lantai belum diisi"))
    );
    ani.ok(&["edit", &sitti, "--answer", "floor_area_m2=40"]);
    ani.ok(&["edit", &kasim, "--answer", "bedrooms=3"]);
    ani.json(&["sync"]);
    assert!(ani.json(&["returned"]).as_array().expect("returned").is_empty(), "fixed");

    // 8. Both are back in the queue; the supervisor approves them again.
    assert_eq!(review_of(&supervisor, &sitti).as_deref(), Some("awaiting_review"));
    assert_eq!(review_of(&supervisor, &kasim).as_deref(), Some("awaiting_review"), "the approval went stale");
    assert_eq!(review_of(&supervisor, &wette).as_deref(), Some("approved"), "untouched: still approved");
    supervisor.ok(&["review", "approve", &sitti]);
    supervisor.ok(&["review", "approve", &kasim]);

    // 9. The approved-only export holds exactly Wette'E, Sitti and Kasim, cell by cell.
    let out = supervisor.home().join("approved.xlsx");
    let done =
        supervisor.json(&["export", "--area", PANCA_LAUTANG, "--approved", "--out", out.to_str().expect("path")]);
    assert_eq!(done["households"].as_u64(), Some(3), "{done}");
    let mut households = sheet(&out, "households");
    households.sort_by(|a, b| a["household_id"].cmp(&b["household_id"]));
    let mut expected = vec![
        (wette.clone(), "SYN-0001", "Wette'E Bin Ali", BILOKKA, "42"),
        (sitti.clone(), "SYN-0002", "Sitti Regapu’u", BILOKKA, "40"),
        (kasim.clone(), "SYN-0004", "Kasim Taula'a", WANIO, "54"),
    ];
    expected.sort();
    assert_eq!(households.len(), expected.len());
    for (row, (id, family, head, village, floor)) in households.iter().zip(&expected) {
        assert_eq!(&row["household_id"], id);
        assert_eq!(row["dtsen_family_id"], *family);
        assert_eq!(row["head_name"], *head);
        assert_eq!(row["village_code"], *village);
        assert_eq!(row["floor_area_m2"], *floor);
        assert_eq!(row["review_status"], "approved");
        assert_eq!(row["review_status_label"], "Disetujui");
        assert_eq!(row["review_by"], "spv.panca");
        assert_eq!(row["last_visit_outcome"], "2");
        assert_eq!(row["district_code"], PANCA_LAUTANG);
    }
    let members = sheet(&out, "members");
    assert_eq!(members.len(), 3 + 2 + 4, "the members of exactly those three families");
    let visits = sheet(&out, "visits");
    let mut visit_rows: Vec<(String, String)> =
        visits.iter().map(|v| (v["household_id"].clone(), v["user"].clone())).collect();
    visit_rows.sort();
    let mut expected_visits = vec![
        (wette.clone(), "pkh.ani".to_string()),
        (wette.clone(), "pkh.budi".to_string()),
        (sitti.clone(), "pkh.ani".to_string()),
        (kasim.clone(), "pkh.ani".to_string()),
    ];
    expected_visits.sort();
    assert_eq!(visit_rows, expected_visits);

    // 10. Progress: per village and per enumerator, and each device's last sync.
    let progress = supervisor.json(&["progress", "--area", PANCA_LAUTANG]);
    let village = |code: &str| {
        progress["villages"]
            .as_array()
            .expect("villages")
            .iter()
            .find(|v| v["key"] == code)
            .cloned()
            .expect("village row")
    };
    let bilokka = village(BILOKKA);
    assert_eq!(
        (bilokka["total"].as_u64(), bilokka["visited"].as_u64(), bilokka["approved"].as_u64()),
        (Some(4), Some(3), Some(2)),
        "three roster families and the merged new family: {bilokka}"
    );
    assert_eq!(bilokka["conflicts"].as_u64(), Some(0));
    let wanio = village(WANIO);
    assert_eq!((wanio["total"].as_u64(), wanio["approved"].as_u64()), (Some(3), Some(1)));
    let devices = progress["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 2, "one device per enumerator: {progress}");
    assert!(devices.iter().all(|d| d["last_sync_at"].is_string()));
    let prefix = supervisor.home().join("progress");
    supervisor.ok(&["progress", "--area", PANCA_LAUTANG, "--csv", prefix.to_str().expect("path")]);
    let csv = std::fs::read_to_string(supervisor.home().join("progress-villages.csv")).expect("villages csv");
    assert!(csv.starts_with('\u{feff}') && csv.contains(BILOKKA), "{csv}");
}

#[test]
fn enumerators_get_403_and_supervisors_stay_in_their_kecamatan() {
    let campaign = Campaign::start();
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let panca = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let other = campaign.supervisor("spv.tellu", &["73.14.02"]);
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);
    ani.json(&["sync"]);
    let id = ani.household_headed_by("Wette'E Bin Ali");
    ani.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=30"]);
    ani.json(&["sync"]);
    let other_id = ani.household_headed_by("Baso Olimoo'o");

    for args in [
        vec!["review", "list"],
        vec!["review", "approve", &id],
        vec!["review", "return", &id, "--comment", "x"],
        vec!["conflicts", "list"],
        vec!["conflicts", "resolve", &id, "answers.rt", "--value", "001"],
        vec!["duplicates", "list"],
        vec!["duplicates", "merge", "--keep", &id, "--retire", &other_id],
        vec!["duplicates", "dismiss", &id, &other_id],
        vec!["progress"],
        vec!["export", "--area", PANCA_LAUTANG, "--out", "x.xlsx"],
    ] {
        let err = ani.fails(&args);
        assert!(err.contains("403") || err.contains("enumerators cannot"), "pilar {args:?}: {err}");
    }
    assert_eq!(review_of(&panca, &id).as_deref(), Some("awaiting_review"), "nothing was written");

    // Another kecamatan's supervisor neither sees nor touches it.
    assert!(other.json(&["review", "list"]).as_array().expect("list").is_empty());
    let err = other.fails(&["review", "list", "--area", PANCA_LAUTANG]);
    assert!(err.contains("not a kecamatan assigned to you"), "{err}");
    let err = other.fails(&["review", "approve", &id]);
    assert!(err.contains("outside your kecamatan"), "{err}");
    let err = other.fails(&["progress", "--area", "73.14"]);
    assert!(err.contains("not a kecamatan assigned to you"), "{err}");
    assert_eq!(review_of(&panca, &id).as_deref(), Some("awaiting_review"));
    // The first characters of an id, as the lists show them, are looked up on the server among
    // the supervisor's households: the office laptop holds no copy of the kecamatan.
    let short: String = id.chars().take(8).collect();
    let err = other.fails(&["review", "approve", &short]);
    assert!(err.contains("no household of your area"), "another kecamatan learns nothing of it: {err}");
    let err = panca.fails(&["review", "approve", "zz"]);
    assert!(err.contains("is not a household id") && err.contains("first 4 or more characters"), "{err}");
    panca.ok(&["review", "approve", &short]);
    assert_eq!(review_of(&panca, &id).as_deref(), Some("approved"));
    let stored = sync_core::store::DeviceStore::open(panca.home()).expect("supervisor store");
    assert!(stored.household_villages().expect("households").is_empty(), "no households on the office laptop");
}

#[test]
fn a_person_registered_in_two_villages_is_suspected_and_can_be_dismissed() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[WANIO]);
    let mut ids = Vec::new();
    for (device, village, head) in [(&ani, BILOKKA, "La Satu Sintetis"), (&budi, WANIO, "La Dua Sintetis")] {
        let id = device.json(&["add", "--village", village, "--head-name", head])["household"]
            .as_str()
            .expect("id")
            .to_string();
        device.ok(&[
            "member",
            "add",
            &id,
            "--name",
            "Andi Sintetis",
            "--answer",
            "nik=7314011503809101",
            "--answer",
            "sex=1",
            "--answer",
            "presence=1",
            "--answer",
            "relationship=3",
        ]);
        device.json(&["sync"]);
        ids.push(id);
    }
    let pairs = supervisor.json(&["duplicates", "list"]);
    let pairs = pairs.as_array().expect("pairs");
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0]["reasons"], serde_json::json!(["shared_nik"]));
    // A village as the area: the pair shows from either side; the other village's list is its own.
    let bilokka = supervisor.json(&["duplicates", "list", "--area", BILOKKA]);
    assert_eq!(bilokka.as_array().map(Vec::len), Some(1));
    let progress = supervisor.json(&["progress", "--area", WANIO]);
    let villages: Vec<&str> =
        progress["villages"].as_array().expect("villages").iter().filter_map(|v| v["key"].as_str()).collect();
    assert_eq!(villages, [WANIO]);
    assert_eq!(progress["villages"][0]["duplicates"].as_u64(), Some(1));

    supervisor.ok(&["duplicates", "dismiss", &ids[0], &ids[1]]);
    assert!(supervisor.json(&["duplicates", "list"]).as_array().expect("pairs").is_empty(), "dismissed");
    let progress = supervisor.json(&["progress", "--area", WANIO]);
    assert_eq!(progress["villages"][0]["duplicates"].as_u64(), Some(0));
}
