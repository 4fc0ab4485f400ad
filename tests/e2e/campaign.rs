//! A small campaign end to end against a real server: a roster for two villages reaches two
//! enumerators, who visit offline (one field written differently by both, one family registered
//! by both); the supervisor resolves the conflict, merges the duplicate (and a later offline edit
//! of the retired household still lands in the survivor), approves and returns households; the
//! enumerator sees the return and fixes it; approvals go stale on change and are given again;
//! the approved-only export holds exactly the approved households, checked cell by cell. Then:
//! who may do what (403 for enumerators, supervisors only in their kecamatan).

use pilar_tests::{Campaign, TestDevice};
use std::path::{Path, PathBuf};

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/roster.csv")
}

/// The id of the household whose head is `head`, as the device lists it.
fn by_head(device: &TestDevice, head: &str) -> String {
    let listed = device.json(&["list"]);
    let found = listed.as_array().expect("list").iter().find(|h| h["head_name"] == head);
    found.unwrap_or_else(|| panic!("{head} not on the device: {listed}"))["id"].as_str().expect("id").to_string()
}

fn review_of(supervisor: &TestDevice, id: &str) -> Option<String> {
    let list = supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]);
    let found = list.as_array().expect("list").iter().find(|b| b["household"] == id).cloned();
    found.and_then(|b| b["review"].as_str().map(str::to_string))
}

#[test]
fn enumerators_get_403_and_supervisors_stay_in_their_kecamatan() {
    let campaign = Campaign::start();
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let panca = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let other = campaign.supervisor("spv.tellu", &["73.14.02"]);
    campaign.admin.ok(&["roster", "import", sample().to_str().expect("path")]);
    ani.json(&["sync"]);
    let id = by_head(&ani, "Wette'E Bin Ali");
    ani.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=30"]);
    ani.json(&["sync"]);
    let other_id = by_head(&ani, "Baso Olimoo'o");

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
    panca.ok(&["review", "approve", &id]);
    assert_eq!(review_of(&panca, &id).as_deref(), Some("approved"));
}
