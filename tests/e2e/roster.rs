//! The admin's roster import against a real server: a clean roster reaches the devices of its
//! villages on their next sync, a re-import updates instead of duplicating, a roster with broken
//! rows imports nothing and names every broken row, and only an admin may import. Rosters as Excel
//! leaves them: identifiers it changed are one error each naming Excel and the fix, RT/RW lose no
//! leading zero, a column of identifiers all ending in 0 is warned about; the summary prints once.
//! A chunk's reply counts its problems and lists only the first few of each rule, while the
//! admin's own report lists every one.

use pilar_tests::{Campaign, TEST_ADMIN_PASSWORD, TestDevice, example_roster};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use sync_core::finding::Severity;
use sync_core::model::DeviceId;
use sync_core::protocol::{ChunkReply, LoginResponse, REPLY_PROBLEMS_PER_RULE, RosterChunk};
use sync_core::roster::RosterHousehold;
use sync_core::value::FieldValue;

const BILOKKA: &str = "73.14.01.1001";
const WANIO: &str = "73.14.01.2004";

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
    let sample = example_roster();
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
    let sample = example_roster();
    let err = enumerator.fails(&["roster", "import", sample.to_str().expect("path")]);
    assert!(err.contains("only an admin"), "{err}");
}

/// A roster as Excel leaves it: NIKs in scientific notation, RT/RW without leading zeros.
const EXCEL_HEADER: &str = "family_id,village_code,kk_number,rt,rw,full_name,nik,sex,relationship,presence\n";

#[test]
fn identifiers_excel_changed_are_one_error_each_naming_excel_and_the_fix() {
    let campaign = Campaign::start();
    let rows = [
        "SYN-0201,73.14.01.1001,7314010503159201,001,001,La Sintetis,7314011503809201,1,1,1",
        // row 3: the NIK as Excel's General format writes a 16-digit number
        "SYN-0202,73.14.01.1001,7314010503159202,001,001,Wa Contoh,7.31401E+15,2,1,1",
        // row 4: the KK number with Excel's thousands separators (the 16th digit already 0)
        "SYN-0203,73.14.01.1001,\"7,314,010,503,159,200\",001,001,Baso Uji,7314011503809203,1,1,1",
    ];
    let path = campaign.admin.home().join("from-excel.csv");
    std::fs::write(&path, format!("{EXCEL_HEADER}{}\n", rows.join("\n"))).expect("write roster");
    let file = path.to_str().expect("path");

    for check in [true, false] {
        let mut args = vec!["roster", "import", file];
        if check {
            args.push("--check");
        }
        let out = campaign.admin.run(&args);
        assert_eq!(out.status.code(), Some(1), "a roster with errors fails (exit 1): {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines_of = |row: usize| stderr.lines().filter(|l| l.starts_with(&format!("row {row},"))).count();
        assert_eq!((lines_of(2), lines_of(3), lines_of(4)), (0, 1, 1), "one line per changed cell: {stderr}");
        let nik = stderr.lines().find(|l| l.starts_with("row 3, column nik")).expect("the NIK is reported");
        for needed in
            ["Excel changed this identifier", "scientific notation", "format the column as Text", "(rule excel_number)"]
        {
            assert!(nik.contains(needed), "{needed:?} in {nik}");
        }
        let kk = stderr.lines().find(|l| l.starts_with("row 4, column kk_number")).expect("the KK is reported");
        assert!(kk.contains("thousands separators") && kk.contains("format the column as Text"), "{kk}");
        let last = stderr.lines().last().unwrap_or_default();
        let next_step = if check { "fix them and check again" } else { "nothing was imported" };
        assert!(last.contains(next_step) && last.contains("--good-rows-only"), "{last}");
    }
}

#[test]
fn rt_rw_are_padded_and_identifiers_all_ending_in_zero_are_warned_about_and_imported() {
    let campaign = Campaign::start();
    let bilokka = campaign.enumerator("pkh.bilokka", &[BILOKKA]);
    let rows = [
        "SYN-0301,73.14.01.1001,7314010503159301,3,1,La Sintetis,7314011503809310,1,1,1",
        "SYN-0302,73.14.01.1001,7314010503159302,12,2,Wa Contoh,7314014503809320,2,1,1",
        "SYN-0303,73.14.01.1001,7314010503159303,003,001,Baso Uji,7314011503809330,1,1,1",
    ];
    let path = campaign.admin.home().join("padded.csv");
    std::fs::write(&path, format!("{EXCEL_HEADER}{}\n", rows.join("\n"))).expect("write roster");
    let out = campaign.admin.run(&["roster", "import", path.to_str().expect("path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "warnings do not stop an import: {stderr}");
    let warning = |column: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(&format!("row 1, column {column},")))
            .unwrap_or_else(|| panic!("{stderr}"))
    };
    assert!(warning("nik").contains("warning: all 3 numbers in this column end in 0"), "{stderr}");
    assert!(warning("nik").contains("format the column as Text"), "{stderr}");
    assert!(warning("rt").contains("warning: 2 value(s) in this column had fewer than 3 digits"), "{stderr}");
    assert!(warning("rw").contains("warning: 2 value(s)"), "{stderr}");

    bilokka.json(&["sync"]);
    let listed = bilokka.json(&["list", "--rt", "003"]);
    let mut heads: Vec<&str> =
        listed.as_array().expect("list").iter().filter_map(|h| h["head_name"].as_str()).collect();
    heads.sort();
    assert_eq!(heads, ["Baso Uji", "La Sintetis"], "RT 3 is stored as 003, so the filter finds it");
}

#[test]
fn good_rows_only_prints_the_summary_once() {
    let campaign = Campaign::start();
    let rows = [
        "SYN-0401,73.14.01.1001,7314010503159401,001,001,La Sintetis,7314011503809401,1,1,1",
        "SYN-0402,73.14.99.9999,7314010503159402,001,001,Wa Contoh,7314014503809402,2,1,1",
    ];
    let path = campaign.admin.home().join("half.csv");
    std::fs::write(&path, format!("{EXCEL_HEADER}{}\n", rows.join("\n"))).expect("write roster");
    let file = path.to_str().expect("path");
    for (args, exit) in [
        (vec!["roster", "import", file, "--good-rows-only", "--check"], 0),
        (vec!["roster", "import", file, "--good-rows-only"], 0),
        (vec!["roster", "import", file, "--check"], 1),
    ] {
        let out = campaign.admin.run(&args);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let summaries = all.lines().filter(|l| l.contains("data row(s)")).count();
        assert_eq!(summaries, 1, "{args:?}: {all}");
        assert!(all.contains("2 data row(s), 2 household(s) (per-household layout): 1 error(s), 0 warning(s); 1 household(s) without errors"), "{all}");
        assert_eq!(out.status.code(), Some(exit), "{args:?}: {all}");
    }
}

/// Households whose head's NIK carries the region prefix 91.01.01 (Merauke before its split): a
/// warning each (`nik_region_unknown`), which blocks nothing.
const OLD_PREFIX_FAMILIES: usize = 40;

#[test]
fn a_chunk_reply_lists_the_first_warnings_of_a_rule_and_counts_them_while_the_admins_report_has_all() {
    let campaign = Campaign::start();
    let rows: Vec<String> = (0..OLD_PREFIX_FAMILIES)
        .map(|i| {
            format!("SYN-05{i:02},73.14.01.1001,73140105031595{i:02},001,001,La Sintetis,91010115038095{i:02},1,1,1")
        })
        .collect();
    let path = campaign.admin.home().join("old-prefixes.csv");
    std::fs::write(&path, format!("{EXCEL_HEADER}{}\n", rows.join("\n"))).expect("write roster");
    let file = path.to_str().expect("path");

    // The admin's report is complete: every warning in --json, in --report's file and on screen.
    let report = campaign.admin.home().join("report.txt");
    let done = campaign.admin.json(&["roster", "import", file, "--report", report.to_str().expect("path")]);
    assert_eq!(done["created"].as_u64(), Some(OLD_PREFIX_FAMILIES as u64), "{done}");
    let warned = done["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["rule"] == "nik_region_unknown" && p["severity"] == "warn")
        .count();
    assert_eq!(warned, OLD_PREFIX_FAMILIES, "--json lists every warning: {done}");
    let written = std::fs::read_to_string(&report).expect("report");
    assert_eq!(written.lines().filter(|l| l.ends_with("(rule nik_region_unknown)")).count(), OLD_PREFIX_FAMILIES);
    let again = campaign.admin.run(&["roster", "import", file]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    let shown = stderr.lines().filter(|l| l.contains("warning: ") && l.ends_with("(rule nik_region_unknown)")).count();
    assert_eq!(shown, OLD_PREFIX_FAMILIES, "the screen shows every warning: {stderr}");

    // The server's reply to the same households in one chunk: the first few, and the count.
    let households: Vec<RosterHousehold> = (0..OLD_PREFIX_FAMILIES)
        .map(|i| {
            let text = |s: String| FieldValue::Text(s);
            let mut household = RosterHousehold::new(i + 2);
            household.answers = BTreeMap::from([
                ("dtsen_family_id".to_string(), text(format!("SYN-06{i:02}"))),
                ("village_code".to_string(), text("73.14.01.1001".into())),
                ("head_name".to_string(), text("La Sintetis".into())),
            ]);
            household.push_member(
                i + 2,
                BTreeMap::from([
                    ("full_name".to_string(), text("La Sintetis".into())),
                    ("nik".to_string(), text(format!("91010115038096{i:02}"))),
                    ("sex".to_string(), FieldValue::Int(1)),
                    ("relationship".to_string(), FieldValue::Int(1)),
                    ("presence".to_string(), FieldValue::Int(1)),
                ]),
            );
            household.sync_keys();
            household
        })
        .collect();
    let client = reqwest::blocking::Client::new();
    let login: LoginResponse = client
        .post(format!("{}/v1/login", campaign.server.url()))
        .json(&json!({ "user": "admin", "password": TEST_ADMIN_PASSWORD, "device": DeviceId::random(), "device_name": "laptop uji" }))
        .send()
        .expect("login")
        .json()
        .expect("login answer");
    let response = client
        .put(format!("{}/v1/roster/{}/chunks/0", campaign.server.url(), uuid::Uuid::new_v4()))
        .bearer_auth(&login.access_token)
        .json(&RosterChunk { households })
        .send()
        .expect("stage");
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.bytes().expect("reply");
    let reply: ChunkReply = serde_json::from_slice(&body).expect("a chunk reply");
    assert!(reply.staged, "warnings do not stop a chunk");
    let listed: Vec<usize> = reply.problems.iter().map(|p| p.row).collect();
    assert_eq!(listed, (2..2 + REPLY_PROBLEMS_PER_RULE).collect::<Vec<_>>(), "the first rows of the rule, in order");
    let counted: Vec<(&str, Severity, u64)> =
        reply.counts.iter().map(|c| (c.rule.as_str(), c.severity, c.count)).collect();
    assert_eq!(counted, [("nik_region_unknown", Severity::Warn, OLD_PREFIX_FAMILIES as u64)]);
    assert!(body.len() < 4096, "a small reply: {} bytes", body.len());
}
