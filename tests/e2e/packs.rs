//! Snapshot pack formats between versions: a device that asks for compact pages (format 2) gets
//! rows that rebuild into exactly the server's households, a device that does not (an older
//! `pilar`) gets documents (format 1), each answer names its format, and a fresh device's first
//! sync stores the same households either way. Histories come from a roster import, a visit, a
//! supervisor's approval and a fold, so server-made and device-made changes both travel.

use pilar_tests::{Campaign, TestServer};
use std::collections::BTreeMap;
use sync_core::model::{DeviceId, Household, HouseholdId};
use sync_core::sync::{CONTENT_TYPE, PACK_CONTENT_TYPE, Pack, Unpacked, decode_pack};

const BILOKKA: &str = "73.14.01.1001";
const PANCA_LAUTANG: &str = "73.14.01";

const ROSTER: &str = "\
family_id,village_code,kk_number,rt,rw,address,seq,full_name,nik,sex,birth_date,relationship,presence
SYN-P1,73.14.01.1001,7314010503159401,001,001,Jl. Sintetis 1,1,La Sintetis,7314011503809401,1,1980-03-15,1,1
SYN-P1,73.14.01.1001,7314010503159401,001,001,Jl. Sintetis 1,2,Wa Contoh,7314015207859402,2,1985-07-12,2,1
SYN-P2,73.14.01.1001,7314010503159403,002,001,Jl. Sintetis 2,1,Baso Sintetis,7314011001709403,1,1970-01-10,1,1
SYN-P3,73.14.01.1001,7314010503159404,002,001,Jl. Sintetis 2,1,Baso Sintetis,7314011001709403,1,1970-01-10,1,1
SYN-P4,73.14.01.1001,7314010503159405,003,001,Jl. Sintetis 3,1,Wa Ode Percobaan,7314015505909405,2,1990-05-15,1,1
";

/// A pack page as a device asking with `accept` receives it: its `Content-Type` and body.
fn fetch(server: &TestServer, token: &str, accept: &str, after: Option<HouseholdId>) -> (String, Vec<u8>) {
    let mut url = format!("{}/v1/packs/{BILOKKA}", server.url());
    if let Some(after) = after {
        url.push_str(&format!("?after={after}"));
    }
    let response = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .expect("pack request");
    assert!(response.status().is_success(), "pack: {}", response.status());
    let content_type = response.headers()["content-type"].to_str().expect("content type").to_string();
    (content_type, response.bytes().expect("pack body").to_vec())
}

#[test]
fn both_pack_formats_carry_the_server_s_households_and_a_fresh_device_stores_them_alike() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let worker = campaign.enumerator("pkh.pack", &[BILOKKA]);
    let roster = campaign.admin.home().join("pack-roster.csv");
    std::fs::write(&roster, ROSTER).expect("write roster");
    campaign.admin.ok(&["roster", "import", roster.to_str().expect("path")]);
    worker.json(&["sync"]);
    let target = worker.household_headed_by("La Sintetis");
    worker.ok(&["visit", &target, "--outcome", "2", "--answer", "floor_area_m2=36"]);
    assert_eq!(worker.json(&["sync"])["still_unsent"], 0);
    supervisor.ok(&["review", "approve", &target]);
    let listed = worker.json(&["list"]);
    let baso: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter(|h| h["head_name"] == "Baso Sintetis")
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert_eq!(baso.len(), 2, "{listed}");
    supervisor.json(&["duplicates", "merge", "--keep", baso[0], "--retire", baso[1]]);

    let password = campaign.user("pkh.baru", &[BILOKKA]);
    let token = crate::sync::http_login(&campaign.server, "pkh.baru", &password, DeviceId::random());

    // An older device's request: documents.
    let (old_type, old_body) = fetch(&campaign.server, &token, CONTENT_TYPE, None);
    assert_eq!(old_type, CONTENT_TYPE);
    let Pack::Documents(old) = decode_pack(Some(&old_type), &old_body, 64 << 20).expect("format 1") else {
        panic!("format 1 expected")
    };
    assert!(old.next_after.is_none(), "one page");
    // A current device's request: rows, checked against the server's heads.
    let accept = format!("{PACK_CONTENT_TYPE}, {CONTENT_TYPE};q=0.5");
    let (new_type, new_body) = fetch(&campaign.server, &token, &accept, None);
    assert_eq!(new_type, PACK_CONTENT_TYPE);
    let Pack::Changes(new) = decode_pack(Some(&new_type), &new_body, 64 << 20).expect("format 2") else {
        panic!("format 2 expected")
    };
    assert_eq!((new.seq, new.total, new.next_after), (old.seq, old.total, old.next_after));
    let documents: BTreeMap<HouseholdId, Household> = old
        .households
        .iter()
        .map(|h| (h.household, Household::load(h.household, &h.document, DeviceId::random()).expect("document loads")))
        .collect();
    let unpacked = new.unpack().expect("the rows rebuild into the server's heads");
    assert_eq!(unpacked.len(), documents.len());
    for household in unpacked {
        let id = household.id();
        let rebuilt = match household {
            Unpacked::Changes { id, changes, .. } => {
                Household::from_trusted_changes(id, changes, DeviceId::random()).expect("rebuilt")
            }
            Unpacked::Document { id, document } => {
                panic!(
                    "household {id} travelled as a document ({} bytes); rows carry pilar's histories",
                    document.len()
                )
            }
        };
        let document = &documents[&id];
        assert_eq!(rebuilt.heads(), document.heads(), "household {id}");
        assert_eq!(rebuilt.state(), document.state(), "household {id}");
    }
    // Smaller even for four households (a third at a village's size: `pilar-bench sync`).
    assert!(new_body.len() < old_body.len(), "rows are smaller: {} vs {} bytes", new_body.len(), old_body.len());
    // Asked again at the same feed head, the kept page comes back byte for byte.
    assert_eq!(fetch(&campaign.server, &token, &accept, None).1, new_body);

    // A fresh device's first sync (format 2) stores what the worker's device holds.
    let fresh = campaign.enumerator("pkh.segar", &[BILOKKA]);
    let first = fresh.json(&["sync"]);
    assert_eq!(first["households_from_packs"], documents.len() as u64, "{first}");
    worker.json(&["sync"]);
    for id in documents.keys() {
        let id = id.to_string();
        assert_eq!(fresh.json(&["show", &id]), worker.json(&["show", &id]), "household {id}");
    }

    // A change moves the village's feed head: the next page carries it, not the kept one.
    worker.ok(&["edit", &target, "--answer", "floor_area_m2=40"]);
    assert_eq!(worker.json(&["sync"])["still_unsent"], 0);
    let (_, after_edit) = fetch(&campaign.server, &token, &accept, None);
    let Pack::Changes(moved) = decode_pack(Some(PACK_CONTENT_TYPE), &after_edit, 64 << 20).expect("format 2") else {
        panic!("format 2 expected")
    };
    assert!(moved.seq > new.seq, "the page was read at the new head");
    let target_id: HouseholdId = target.parse().expect("id");
    let edited = moved.unpack().expect("unpack").into_iter().find(|h| h.id() == target_id).expect("target in the page");
    let Unpacked::Changes { changes, .. } = edited else { panic!("rows expected") };
    let household = Household::from_trusted_changes(target_id, changes, DeviceId::random()).expect("rebuilt");
    assert_eq!(household.state().answers["floor_area_m2"].to_string(), "40");
}
