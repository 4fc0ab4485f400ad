//! The information floor of `pilar-bench sync`: what the households hold now, as newline-delimited
//! JSON compressed with zstd level 19 — the least a sync could move if it sent facts instead of
//! Automerge documents. Beside the zstd-of-`save()` floor (what Pilar's documents compress to) it
//! shows how much of a sync's bytes is history and document encoding rather than information.
//!
//! A household's state line holds its id, its form, every answer (the village is the
//! `village_code` answer), every member with its id and every member answer (a removal too), and,
//! when present, its visits, review, links and the values of fields in conflict. It holds no
//! history: no earlier values, no change hashes, actors or times of changes. Objects are written
//! with sorted keys and members in the model's order, so the same state always renders the same
//! line, whatever order the changes arrived in.
//!
//! For a routine sync the floor is the written fields, not whole state lines: one line per save
//! action with the household id and each field it wrote with its new value ([`written_line`]).
//! The device already holds the rest of the household; what the enumerator entered is the
//! information that has to move. State lines of the changed households would put the "floor"
//! above what Pilar already sends for a routine sync (the bench prints that size beside it), so
//! they are no floor. A field written with the value it already held counts too: a re-confirmed
//! answer is information.

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use sync_core::model::{FieldPath, Household, HouseholdId, HouseholdState};
use sync_core::value::FieldValue;

/// zstd level of the information floor (issue 15): zstd's strong end, a floor and not a speed.
pub const INFORMATION_LEVEL: i32 = 19;

/// `value` without its `null` members (absent optional facts are not information).
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

/// One household's current state as one JSON line (without the newline): see the module comment
/// for what it holds. `conflicts` are the fields holding more than one value, with those values.
pub fn state_line(state: &HouseholdState, conflicts: &[(FieldPath, Vec<FieldValue>)]) -> String {
    let mut line = Map::new();
    line.insert("household".into(), json!(state.id.to_string()));
    line.insert("form".into(), json!(state.form));
    line.insert("answers".into(), json!(state.answers));
    let members: Vec<Value> = state
        .members
        .iter()
        .map(|m| {
            let mut member = Map::new();
            member.insert("id".into(), json!(m.id.to_string()));
            member.insert("answers".into(), json!(m.answers));
            if let Some(removed) = &m.removed {
                member.insert("removed".into(), json!({"at": removed.at, "by": removed.by, "reason": removed.reason}));
            }
            if let Some(seq) = m.entered_seq {
                member.insert("entered_seq".into(), json!(seq));
            }
            Value::Object(member)
        })
        .collect();
    line.insert("members".into(), Value::Array(members));
    if !state.visits.is_empty() {
        let visits = state.visits.iter().map(|v| without_nulls(serde_json::to_value(v).unwrap_or(Value::Null)));
        line.insert("visits".into(), Value::Array(visits.collect()));
    }
    let review = &state.review;
    if review.status.is_some() || !review.comments.is_empty() {
        line.insert("review".into(), without_nulls(serde_json::to_value(review).unwrap_or(Value::Null)));
    }
    if !state.links.is_empty() {
        line.insert("links".into(), json!(state.links));
    }
    if !conflicts.is_empty() {
        let conflicts = conflicts.iter().map(|(path, values)| json!({"path": path.to_string(), "values": values}));
        line.insert("conflicts".into(), Value::Array(conflicts.collect()));
    }
    Value::Object(line).to_string()
}

/// [`state_line`] of a household document as it is now.
pub fn household_line(household: &Household) -> String {
    let conflicts: Vec<(FieldPath, Vec<FieldValue>)> = household
        .conflicts()
        .into_iter()
        .map(|(path, values)| (path, values.into_iter().map(|a| a.value).collect()))
        .collect();
    state_line(&household.state(), &conflicts)
}

/// One save action's written household answers as one JSON line: the household id and each field
/// it wrote with its new value (`null` for a cleared field).
pub fn written_line(household: HouseholdId, answers: &BTreeMap<String, Option<FieldValue>>) -> String {
    json!({"household": household.to_string(), "answers": answers}).to_string()
}

/// The lines as newline-delimited JSON.
pub fn ndjson<S: AsRef<str>>(lines: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.as_ref().len() + 1).sum());
    for line in lines {
        out.extend_from_slice(line.as_ref().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The information floor of `lines`: their newline-delimited JSON compressed as one zstd stream at
/// [`INFORMATION_LEVEL`], in bytes.
pub fn information_floor<S: AsRef<str>>(lines: &[S]) -> Result<u64> {
    let compressed = zstd::bulk::compress(&ndjson(lines), INFORMATION_LEVEL).context("zstd of the state lines")?;
    Ok(compressed.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilar_tests::synthetic::Generator;
    use sync_core::entry;
    use sync_core::form::FormDefinition;
    use sync_core::ids::VillageCode;
    use sync_core::model::{DeviceId, Edits};
    use sync_core::store::{DeviceIdentity, DeviceStore};
    use time::OffsetDateTime;

    /// A device store holding one synthetic household; returns it and the household's id.
    fn store_with_one_household(dir: &std::path::Path, seed: u64) -> (DeviceStore, HouseholdId) {
        let village = VillageCode::parse("73.14.01.1001").expect("a village of Panca Lautang");
        let form = FormDefinition::default_dtsen();
        let identity = DeviceIdentity { device: DeviceId::random(), user: "bench.floor".into(), form: form.key() };
        let now = OffsetDateTime::now_utc();
        let mut store =
            DeviceStore::create(dir, &identity, std::slice::from_ref(&village), now).expect("create a device store");
        let h = Generator::new(seed).household(&village, 0);
        let saved =
            entry::add_household(&mut store, form, &village, h.answers, h.members, now).expect("add a household");
        (store, saved.household)
    }

    #[test]
    fn state_line_holds_every_current_answer_and_no_history() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut store, id) = store_with_one_household(dir.path(), 7);
        let now = OffsetDateTime::now_utc();
        for area in [21, 34] {
            let answers = BTreeMap::from([("floor_area_m2".to_string(), Some(FieldValue::Int(area)))]);
            let edits = Edits { answers, ..Edits::default() };
            entry::save(&mut store, FormDefinition::default_dtsen(), id, "edit", &edits, now).expect("edit");
        }
        let household = store.load(id).expect("load").household;
        let line = household_line(&household);
        assert!(!line.contains('\n'), "one line per household: {line}");
        let parsed: Value = serde_json::from_str(&line).expect("the line is JSON");
        assert_eq!(parsed["household"], json!(id.to_string()));
        assert_eq!(parsed["answers"]["floor_area_m2"], json!(34), "the current value: {line}");
        assert!(!line.contains("\"floor_area_m2\":21"), "no earlier value: {line}");
        let state = household.state();
        assert_eq!(parsed["answers"].as_object().map(Map::len), Some(state.answers.len()), "every answer");
        assert_eq!(parsed["answers"]["village_code"], json!("73.14.01.1001"), "the village is an answer");
        let members = parsed["members"].as_array().expect("members");
        assert_eq!(members.len(), state.members.len());
        for (member, expected) in members.iter().zip(&state.members) {
            assert_eq!(member["id"], json!(expected.id.to_string()));
            assert_eq!(member["answers"].as_object().map(Map::len), Some(expected.answers.len()));
        }
        for hash in household.heads() {
            assert!(!line.contains(&hash.to_string()), "no change hashes: {line}");
        }
        assert!(!line.contains(&store.identity().device.to_string()), "no actors: {line}");
        assert!(parsed.get("conflicts").is_none() && parsed.get("visits").is_none(), "nothing absent: {line}");
    }

    #[test]
    fn the_same_state_renders_the_same_line_and_the_same_floor() {
        let (a, b) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
        let (store, id) = store_with_one_household(a.path(), 11);
        let household = store.load(id).expect("load").household;
        // The same document loaded again from its saved bytes in another store's process view.
        let reloaded = Household::load(id, &household.save(), DeviceId::random()).expect("load the saved bytes");
        assert_eq!(household_line(&household), household_line(&reloaded));
        let (other_store, other) = store_with_one_household(b.path(), 12);
        let lines = [household_line(&household), household_line(&other_store.load(other).expect("load").household)];
        assert_eq!(information_floor(&lines).expect("floor"), information_floor(&lines).expect("floor"));
        assert_eq!(ndjson(&lines).iter().filter(|&&b| b == b'\n').count(), 2, "one line each");
    }

    #[test]
    fn written_line_lists_each_written_field_in_key_order_and_a_cleared_one_as_null() {
        let id = HouseholdId::random();
        let answers = BTreeMap::from([
            ("wall_material".to_string(), Some(FieldValue::Int(3))),
            ("floor_area_m2".to_string(), Some(FieldValue::Int(40))),
            ("note_text".to_string(), None),
        ]);
        assert_eq!(
            written_line(id, &answers),
            format!(r#"{{"answers":{{"floor_area_m2":40,"note_text":null,"wall_material":3}},"household":"{id}"}}"#)
        );
    }
}
