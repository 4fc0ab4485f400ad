//! The admin's roster import against a real server: a clean roster reaches the devices of its
//! villages on their next sync, a re-import updates instead of duplicating, a roster with broken
//! rows imports nothing and names every broken row, and only an admin may import.

use pilar_tests::{Campaign, TestDevice};
use serde_json::Value;
use std::path::{Path, PathBuf};

const BILOKKA: &str = "73.14.01.1001";
const WANIO: &str = "73.14.01.2004";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/roster.csv")
}

fn heads(device: &TestDevice) -> Vec<String> {
    let mut names: Vec<String> = device
        .json(&["list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|h| h["head_name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn an_imported_roster_reaches_the_devices_of_its_villages_and_a_reimport_updates() {
    let campaign = Campaign::start();
    let bilokka = campaign.enumerator("pkh.bilokka", &[BILOKKA]);
    let wanio = campaign.enumerator("pkh.wanio", &[WANIO]);
    let sample = sample();
    let file = sample.to_str().expect("path");

    let done = campaign.admin.json(&["roster", "import", file]);
    assert_eq!(done["imported"], true, "{done}");
    assert_eq!((done["created"].as_u64(), done["updated"].as_u64()), (Some(6), Some(0)), "{done}");

    // The first sync says in plain words what came down.
    let said = bilokka.ok(&["sync"]);
    assert!(
        said.contains("downloaded 3 household(s) in 1 village(s); sent no changes; nothing left to send"),
        "{said}"
    );
    wanio.json(&["sync"]);
    assert_eq!(heads(&bilokka), vec!["Baso Olimoo'o", "Sitti Regapu’u", "Wette'E Bin Ali"]);
    assert_eq!(heads(&wanio), vec!["Fitri Wette'E", "Hasan Ciro-Ciroe", "Kasim Taula'a"]);
    let listed = bilokka.json(&["list"]);
    let first =
        listed.as_array().expect("list").iter().find(|h| h["head_name"] == "Wette'E Bin Ali").expect("SYN-0001");
    let id = first["id"].as_str().expect("id").to_string();
    let shown = bilokka.json(&["show", &id]);
    let members = shown["household"]["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "the family's three person rows became its members");

    // The same roster again changes nothing; with one address changed, that household updates.
    let again = campaign.admin.json(&["roster", "import", file]);
    assert_eq!((again["created"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(6)), "{again}");
    let edited = campaign.admin.home().join("roster-edited.csv");
    let text =
        std::fs::read_to_string(&sample).expect("sample").replace("Jl. Poros Bilokka No. 3", "Jl. Poros Bilokka No. 5");
    std::fs::write(&edited, text).expect("write");
    let updated = campaign.admin.json(&["roster", "import", edited.to_str().expect("path")]);
    assert_eq!(
        (updated["created"].as_u64(), updated["updated"].as_u64(), updated["unchanged"].as_u64()),
        (Some(0), Some(1), Some(5)),
        "{updated}"
    );
    bilokka.json(&["sync"]);
    assert_eq!(heads(&bilokka).len(), 3, "no duplicate households");
    let shown = bilokka.json(&["show", &id]);
    assert_eq!(shown["household"]["answers"]["address"], "Jl. Poros Bilokka No. 5");
    assert_eq!(shown["household"]["members"].as_array().expect("members").len(), 3, "no duplicate members");
}

#[test]
fn a_roster_with_broken_rows_imports_nothing_and_names_every_broken_row() {
    let campaign = Campaign::start();
    let bilokka = campaign.enumerator("pkh.bilokka", &[BILOKKA]);
    let header =
        "family_id,village_code,kk_number,rt,rw,address,seq,full_name,nik,sex,birth_date,relationship,presence\n";
    let rows = [
        // row 2: fine
        "SYN-0101,73.14.01.1001,7314010503159101,001,001,Jl. Contoh 1,1,La Sintetis,7314011503809101,1,1980-03-15,1,1",
        // row 3: NIK with an impossible birth date (day 45 = female 05, month 13)
        "SYN-0102,73.14.01.1001,7314010503159102,001,001,Jl. Contoh 2,1,Wa Contoh,7314014513809102,2,1980-01-05,1,1",
        // row 4: unknown village code
        "SYN-0103,73.14.99.9999,7314010503159103,001,001,Jl. Contoh 3,1,Baso Uji,7314011503809103,1,1980-03-15,1,1",
        // row 5: full name (required) missing
        "SYN-0104,73.14.01.1001,7314010503159104,001,001,Jl. Contoh 4,1,,7314011503809104,1,1980-03-15,1,1",
    ];
    let mut bytes = format!("{header}{}\n", rows.join("\n")).into_bytes();
    // row 6: a name in Windows-1252 (0x92 is its right single quote), not UTF-8
    bytes.extend_from_slice(b"SYN-0105,73.14.01.1001,7314010503159105,001,001,Jl. Contoh 5,1,Regapu\x92u,7314011503809105,1,1980-03-15,1,1\n");
    let path = campaign.admin.home().join("broken.csv");
    std::fs::write(&path, &bytes).expect("write roster");

    let out = campaign.admin.run(&["roster", "import", path.to_str().expect("path")]);
    assert!(!out.status.success(), "a roster with errors must not import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    for (row, column) in [(3, "nik"), (4, "village_code"), (5, "full_name"), (6, "full_name")] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&format!("row {row}, column {column}"))),
            "row {row} column {column} is reported: {stderr}"
        );
    }
    assert!(!stderr.lines().any(|l| l.starts_with("row 2,")), "the clean row is not reported: {stderr}");
    bilokka.json(&["sync"]);
    assert!(heads(&bilokka).is_empty(), "nothing reached the server");

    // With --good-rows-only the clean household goes in and the rest are reported.
    let done: Value = campaign.admin.json(&["roster", "import", path.to_str().expect("path"), "--good-rows-only"]);
    assert_eq!(done["created"].as_u64(), Some(1), "{done}");
    bilokka.json(&["sync"]);
    assert_eq!(heads(&bilokka), vec!["La Sintetis"]);
}

#[test]
fn only_an_admin_may_import_a_roster() {
    let campaign = Campaign::start();
    let enumerator = campaign.enumerator("pkh.bilokka", &[BILOKKA]);
    let sample = sample();
    let err = enumerator.fails(&["roster", "import", sample.to_str().expect("path")]);
    assert!(err.contains("only an admin"), "{err}");
}
