//! A re-confirmed answer is kept: two enumerators visit one household offline, one confirms the
//! floor area it already holds while the other measures another; after both sync the
//! supervisor's conflict inbox lists the field with both values and who wrote them, and an answer
//! both gave the same is no conflict anywhere.

use pilar_tests::{Campaign, conflict_writers};
use serde_json::Value;

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";

#[test]
fn a_reconfirmed_answer_and_a_concurrent_other_value_are_both_in_the_conflict_inbox() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let ani_device = ani.json(&["status"])["device"].as_str().expect("device").to_string();
    let budi_device = budi.json(&["status"])["device"].as_str().expect("device").to_string();

    // The household reaches both devices with a floor area of 36.
    let added = ani.json(&[
        "add",
        "--village",
        BILOKKA,
        "--head-name",
        "La Sintetis",
        "--rt",
        "002",
        "--answer",
        "floor_area_m2=36",
    ]);
    let id = added["household"].as_str().expect("household id").to_string();
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    assert_eq!(budi.household_headed_by("La Sintetis"), id);

    // Offline: Ani's visit confirms 36; Budi's measures 42. Both find the same wall material.
    ani.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=36", "--answer", "wall_material=1"]);
    budi.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=42", "--answer", "wall_material=1"]);
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    ani.json(&["sync"]);

    let inbox = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    let items: Vec<&Value> =
        inbox.as_array().expect("inbox").iter().filter(|c| c["household"]["household"] == id.as_str()).collect();
    let paths: Vec<&str> = items.iter().filter_map(|c| c["path"].as_str()).collect();
    assert_eq!(paths, ["answers.floor_area_m2"], "only the floor area disagrees: {inbox}");
    assert_eq!(items[0]["source"], "sync");
    let mut values: Vec<(String, String, bool)> = items[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| {
            let user = v["user"].as_str().expect("user").to_string();
            let device = v["device"].as_str().expect("device");
            let own = if user == "pkh.ani" { &ani_device } else { &budi_device };
            (v["value"].to_string(), user, device.contains(own.as_str()) && v["at"].is_string())
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        [("36".to_string(), "pkh.ani".to_string(), true), ("42".to_string(), "pkh.budi".to_string(), true)],
        "both values with who and which device: {inbox}"
    );
    let review = supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]);
    let brief = review.as_array().expect("review list").iter().find(|b| b["household"] == id.as_str()).cloned();
    assert_eq!(brief.map(|b| b["conflicts"].clone()), Some(Value::from(1)), "counted once: {review}");

    // Both devices show the same single conflict.
    for device in [&ani, &budi] {
        let shown = device.json(&["show", &id]);
        let expected = vec![("answers.floor_area_m2".to_string(), vec!["pkh.ani".to_string(), "pkh.budi".to_string()])];
        assert_eq!(conflict_writers(&shown), expected, "{shown}");
    }
}
