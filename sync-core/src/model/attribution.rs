//! Who wrote what: concurrent values with their writers, conflicts, and a field's history.

use super::read::{child_maps, root_objects, to_field_value};
use super::{DeviceId, FieldPath, MEMBER_REMOVAL_KEYS, ModelError};
use crate::value::FieldValue;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ReadDoc, Value};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

/// The user, device and time behind one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    /// User name recorded with the change.
    pub user: String,
    /// Device (Automerge actor) that made the change.
    pub device: String,
    /// When the change was made (RFC 3339, UTC).
    pub at: String,
    /// The change's hash (hex).
    pub change: String,
}

/// One concurrent value of a field, with its writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributed {
    /// The value.
    pub value: FieldValue,
    /// Who wrote it.
    pub writer: Writer,
}

/// One step in a field's history: a change that set the field, or cleared it (`value: None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The value written, or `None` when the change cleared the field.
    pub value: Option<FieldValue>,
    /// Who wrote it.
    pub writer: Writer,
}

/// Who made the change `hash`, read from its actor, timestamp and message.
pub(super) fn writer_of_change(doc: &Automerge, hash: &ChangeHash) -> Option<Writer> {
    let meta = doc.get_change_meta_by_hash(hash)?;
    let device = DeviceId::from_actor(&meta.actor).map(|d| d.to_string()).unwrap_or_else(|| meta.actor.to_hex_string());
    let user = meta
        .message
        .as_deref()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| v.get("u").and_then(|u| u.as_str()).map(str::to_string))
        .unwrap_or_default();
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(meta.timestamp) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    Some(Writer { user, device, at, change: hash.to_string() })
}

fn writer_of_op(doc: &Automerge, op: &ObjId) -> Writer {
    doc.hash_for_opid(op).and_then(|h| writer_of_change(doc, &h)).unwrap_or(Writer {
        user: String::new(),
        device: String::new(),
        at: String::new(),
        change: String::new(),
    })
}

fn map_child(doc: &Automerge, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

/// The map object and key a path points at; `None` when the member or visit does not exist.
fn locate(doc: &Automerge, path: &FieldPath) -> Result<Option<(ObjId, String)>, ModelError> {
    let roots = root_objects(doc).map_err(ModelError::BadPath)?;
    Ok(match path {
        FieldPath::Answer(k) => Some((roots["answers"].clone(), k.clone())),
        FieldPath::Member(m, k) => map_child(doc, &roots["members"], &m.to_string()).map(|o| (o, k.clone())),
        FieldPath::Visit(v, k) => map_child(doc, &roots["visits"], &v.to_string()).map(|o| (o, k.clone())),
        FieldPath::Review(k) => Some((roots["review"].clone(), k.clone())),
        FieldPath::Link(k) => Some((roots["links"].clone(), k.clone())),
    })
}

/// The values at `key`, the one shown today (Automerge's winner, which it lists last) first.
fn values_at(doc: &Automerge, obj: &ObjId, key: &str) -> Vec<Attributed> {
    doc.get_all(obj, key)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .filter_map(|(v, op)| to_field_value(&v).map(|value| Attributed { value, writer: writer_of_op(doc, &op) }))
        .collect()
}

/// Whether concurrent values are a conflict: at least two of them differ. Two devices that wrote
/// the same value at once (two enumerators confirming one answer) agree, and a supervisor has
/// nothing to decide; their writers stay in [`field_values`](super::Household::field_values) and
/// the field's history.
pub fn values_disagree(values: &[Attributed]) -> bool {
    values.split_first().is_some_and(|(first, rest)| rest.iter().any(|a| a.value != first.value))
}

pub(super) fn field_values(doc: &Automerge, path: &FieldPath) -> Result<Vec<Attributed>, ModelError> {
    Ok(match locate(doc, path)? {
        Some((obj, key)) => values_at(doc, &obj, &key),
        None => Vec::new(),
    })
}

pub(super) fn conflicts(doc: &Automerge) -> Vec<(FieldPath, Vec<Attributed>)> {
    let Ok(roots) = root_objects(doc) else { return Vec::new() };
    let mut out = Vec::new();
    let mut scan = |obj: &ObjId, make: &dyn Fn(String) -> FieldPath, skip: &[&str]| {
        // One pass that flags keys holding several values; only those are read in full, and
        // listed when their values differ.
        for item in doc.map_range(obj, ..) {
            if item.conflict && !skip.contains(&item.key.as_ref()) {
                let values = values_at(doc, obj, &item.key);
                if values_disagree(&values) {
                    out.push((make(item.key.to_string()), values));
                }
            }
        }
    };
    scan(&roots["answers"], &FieldPath::Answer, &[]);
    for (key, obj) in child_maps(doc, &roots["members"]) {
        if let Ok(id) = key.parse() {
            // A member removed on two devices at once is removed: the removals agree, and each
            // one's time, remover and reason stay in the member's history. Listing them as a
            // conflict would block approval over nothing to decide.
            scan(&obj, &|k| FieldPath::Member(id, k), &MEMBER_REMOVAL_KEYS);
        }
    }
    scan(&roots["review"], &FieldPath::Review, &[]);
    scan(&roots["links"], &FieldPath::Link, &[]);
    out
}

pub(super) fn history(doc: &Automerge, path: &FieldPath) -> Result<Vec<FieldChange>, ModelError> {
    let Some((obj, key)) = locate(doc, path)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    // Changes come in causal order. A change touched the field exactly when the set of visible
    // operations on it differs between the change's dependencies and the change itself.
    for change in doc.get_changes(&[]) {
        let hash = change.hash();
        let after = doc.get_all_at(&obj, key.as_str(), &[hash]).unwrap_or_default();
        let before = if change.deps().is_empty() {
            Vec::new()
        } else {
            doc.get_all_at(&obj, key.as_str(), change.deps()).unwrap_or_default()
        };
        let before_ops: Vec<&ObjId> = before.iter().map(|(_, op)| op).collect();
        let after_ops: Vec<&ObjId> = after.iter().map(|(_, op)| op).collect();
        if before_ops == after_ops {
            continue;
        }
        let Some(writer) = writer_of_change(doc, &hash) else { continue };
        let written = after.iter().find(|(_, op)| !before_ops.contains(&op)).and_then(|(v, _)| to_field_value(v));
        out.push(FieldChange { value: written, writer });
    }
    Ok(out)
}
