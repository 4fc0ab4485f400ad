//! Questionnaires an office publishes (issue 17), against a real server: an admin publishes
//! version 2 of the DTSEN form (a new question, a new choice, a retired question) and makes it
//! the default; an incompatible version is refused with its field and rule and nothing is
//! published; an enumerator's device receives version 2 on its next sync and records a visit with
//! the new question, which moves that household to version 2; a device still on version 1,
//! offline, syncs its version-1 visits (one answering the retired question) and they are
//! accepted; a household visited only under version 1 keeps version 1, shows with it and exports
//! with its answers in the file laid out for version 2.

use crate::export::sheet;
use pilar_tests::Campaign;
use serde_json::{Value, json};

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";

/// Version 2 of the built-in form, as an admin would edit the JSON `pilar form --json` prints.
fn version_2(v1: &Value) -> Value {
    let mut form = v1.clone();
    form["version"] = json!(2);
    let household = form["household"].as_array_mut().expect("household fields");
    household.push(json!({
        "name": "bantuan_daerah",
        "label": "Penerima bantuan daerah (program kabupaten)",
        "kind": {"type": "boolean"}
    }));
    let roof = household.iter_mut().find(|f| f["name"] == "roof_material").expect("roof_material");
    roof["kind"]["choices"].as_array_mut().expect("choices").push(json!({"code": 77, "label": "Bahan uji baru"}));
    let retired = household.iter_mut().find(|f| f["name"] == "bps_village_code").expect("bps_village_code");
    retired["retired"] = json!(true);
    form
}

#[test]
fn a_published_version_reaches_devices_and_households_keep_the_version_they_were_recorded_with() {
    let campaign = Campaign::start();
    let admin = &campaign.admin;
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);

    // A fresh server has the built-in form as version 1, the default everywhere.
    let listed = admin.json(&["form", "versions"]);
    assert_eq!(listed["versions"][0]["key"], "dtsen-ground-check@1", "{listed}");
    assert_eq!(listed["defaults"][0]["form"], "dtsen-ground-check@1", "{listed}");

    // Two households recorded under version 1; both devices hold both.
    let first = ani.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis", "--rt", "002"]);
    let first = first["household"].as_str().expect("id").to_string();
    let second = ani.json(&["add", "--village", BILOKKA, "--head-name", "Wa Contoh", "--rt", "003"]);
    let second = second["household"].as_str().expect("id").to_string();
    ani.json(&["sync"]);
    budi.json(&["sync"]);

    // Budi goes offline on version 1: a visit answering the question version 2 retires.
    budi.ok(&["visit", &second, "--outcome", "2", "--answer", "bps_village_code=7314010001"]);

    // The admin publishes version 2 and makes it the default.
    let v1 = admin.json(&["form"]);
    assert_eq!(v1["version"], 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let v2_path = dir.path().join("dtsen@2.json");
    std::fs::write(&v2_path, serde_json::to_string_pretty(&version_2(&v1)).expect("json")).expect("write");
    let published = admin.ok(&["form", "publish", v2_path.to_str().expect("path")]);
    assert!(published.contains("published dtsen-ground-check@2"), "{published}");
    let again = admin.ok(&["form", "publish", v2_path.to_str().expect("path")]);
    assert!(again.contains("already published"), "a retried publish changes nothing: {again}");
    admin.ok(&["form", "use", "dtsen-ground-check@2"]);

    // Incompatible versions are refused with the field and the rule, and nothing is published.
    let mut typed = version_2(&v1);
    typed["version"] = json!(3);
    let rt = typed["household"].as_array_mut().expect("fields").iter_mut().find(|f| f["name"] == "rt").expect("rt");
    rt["kind"] = json!({"type": "integer"});
    let mut reused = version_2(&v1);
    reused["version"] = json!(3);
    let roof = reused["household"]
        .as_array_mut()
        .expect("fields")
        .iter_mut()
        .find(|f| f["name"] == "roof_material")
        .expect("roof");
    roof["kind"]["choices"][0]["label"] = json!("Sesuatu yang lain sama sekali");
    let mut required = version_2(&v1);
    required["version"] = json!(3);
    required["household"].as_array_mut().expect("fields").push(json!({
        "name": "nomor_kis", "label": "Nomor KIS", "kind": {"type": "text"}, "required": "always"
    }));
    let mut unknown = version_2(&v1);
    unknown["version"] = json!(3);
    let daerah = unknown["household"]
        .as_array_mut()
        .expect("fields")
        .iter_mut()
        .find(|f| f["name"] == "bantuan_daerah")
        .expect("new field");
    daerah["relevant"] = json!({"field": "tidak_ada", "eq": 1});
    for (form, field, rule) in [
        (typed, "rt", "type_changed"),
        (reused, "roof_material", "choice_reused"),
        (required, "nomor_kis", "required_added"),
        (unknown, "tidak_ada", "is not a household field"),
    ] {
        let path = dir.path().join("dtsen@3.json");
        std::fs::write(&path, serde_json::to_string(&form).expect("json")).expect("write");
        let refused = admin.fails(&["form", "publish", path.to_str().expect("path")]);
        assert!(refused.contains(field) && refused.contains(rule), "{rule}: {refused}");
    }
    let listed = admin.json(&["form", "versions"]);
    let keys: Vec<&str> =
        listed["versions"].as_array().expect("versions").iter().filter_map(|v| v["key"].as_str()).collect();
    assert_eq!(keys, ["dtsen-ground-check@1", "dtsen-ground-check@2"], "nothing else was published: {listed}");

    // Ani's device receives version 2 on its next sync and asks the new question.
    let synced = ani.json(&["sync"]);
    assert_eq!(synced["forms_received"], json!(["dtsen-ground-check@2"]), "{synced}");
    assert_eq!(ani.json(&["form"])["version"], 2);
    ani.ok(&["visit", &first, "--outcome", "2", "--answer", "bantuan_daerah=true", "--answer", "roof_material=77"]);
    let refused = ani.fails(&["edit", &first, "--answer", "bps_village_code=7314010001"]);
    assert!(refused.contains("retired"), "version 2 no longer asks a retired question: {refused}");
    let shown = ani.json(&["show", &first]);
    assert_eq!(shown["household"]["form"], "dtsen-ground-check@2", "the visit moved it to version 2");
    let synced = ani.json(&["sync"]);
    assert_eq!(synced["outcome"], "complete", "{synced}");
    let again = ani.json(&["sync"]);
    assert_eq!(again["forms_received"], json!([]), "forms travel only when they changed: {again}");

    // Budi, still on version 1, syncs the visit made offline: accepted, then version 2 arrives.
    let synced = budi.json(&["sync"]);
    assert_eq!((synced["outcome"].as_str(), synced["rejected"].as_u64()), (Some("complete"), Some(0)), "{synced}");
    assert_eq!(synced["forms_received"], json!(["dtsen-ground-check@2"]), "{synced}");
    let kept = budi.json(&["show", &second]);
    assert_eq!(kept["household"]["form"], "dtsen-ground-check@1", "visited only under version 1");
    assert_eq!(kept["household"]["answers"]["bps_village_code"], "7314010001");
    let moved = budi.json(&["show", &first]);
    assert_eq!(moved["household"]["answers"]["bantuan_daerah"], true, "{moved}");
    ani.json(&["sync"]);
    let shown = ani.ok(&["show", &second]);
    assert!(shown.contains("dtsen-ground-check@1"), "{shown}");

    // One export laid out for version 2 holds both households with the answers each recorded.
    let out = supervisor.home().join("panca.xlsx");
    supervisor.json(&["export", "--area", PANCA_LAUTANG, "--out", out.to_str().expect("path")]);
    let households = sheet(&out, "households");
    let row = |head: &str| households.iter().find(|h| h["head_name"] == head).expect("exported").clone();
    let (v2_row, v1_row) = (row("La Sintetis"), row("Wa Contoh"));
    assert!(v2_row.contains_key("bantuan_daerah"), "the new question is a column: {v2_row:?}");
    assert_eq!(v2_row["roof_material"], "77");
    assert_eq!(v2_row["roof_material_label"], "Bahan uji baru", "labelled from the newest version");
    assert_eq!(v1_row["bps_village_code"], "7314010001", "a version-1 answer to the retired question is kept");
    assert_eq!(v1_row["bantuan_daerah"], "", "not asked under version 1");

    // A version written as an XLSForm workbook is published the same way, here for one kabupaten.
    let mut v3 = version_2(&v1);
    v3["version"] = json!(3);
    v3["title"] = json!("Ground check DTSEN 2027");
    let (v3_json, v3_xlsx) = (dir.path().join("dtsen@3.json"), dir.path().join("dtsen@3.xlsx"));
    std::fs::write(&v3_json, serde_json::to_string(&v3).expect("json")).expect("write");
    admin.ok(&["form", "convert", v3_json.to_str().expect("path"), "--out", v3_xlsx.to_str().expect("path")]);
    let published = admin.ok(&["form", "publish", v3_xlsx.to_str().expect("path")]);
    assert!(published.contains("published dtsen-ground-check@3"), "{published}");
    let set = admin.ok(&["form", "use", "dtsen-ground-check@3", "--kabupaten", "73.14"]);
    assert!(set.contains("73.14") && set.contains("dtsen-ground-check@3"), "{set}");
    let synced = ani.json(&["sync"]);
    assert_eq!(synced["forms_received"], json!(["dtsen-ground-check@3"]), "{synced}");
    assert_eq!(ani.json(&["form"])["title"], "Ground check DTSEN 2027", "Bilokka is in kabupaten 73.14");
}
