//! Writing a save action into a household document: answers, members, a visit, links, photos.

use super::read::{MEMBER_REMOVAL_KEYS, VISIT_KEYS, root_objects, to_field_value};
use super::{Editor, MemberId, ModelError, VisitId};
use crate::value::FieldValue;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjId, ObjType, ROOT, ScalarValue, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one save action (one form screen) changes; it becomes exactly one change.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    /// Household answers to set (`Some`) or clear (`None`).
    pub answers: BTreeMap<String, Option<FieldValue>>,
    /// Members to add, each with its first answers.
    pub add_members: Vec<(MemberId, BTreeMap<String, FieldValue>)>,
    /// Answers to set or clear on existing members.
    pub edit_members: Vec<(MemberId, BTreeMap<String, Option<FieldValue>>)>,
    /// Members to remove (softly), with the reason.
    pub remove_members: Vec<(MemberId, String)>,
    /// A visit to record.
    pub visit: Option<NewVisit>,
    /// Links to set or clear (`duplicate_of`, `merged_into`).
    pub links: BTreeMap<String, Option<FieldValue>>,
    /// Review fields to set or clear (`status`, `approved_heads`...): supervisors only; the server
    /// refuses an enumerator's change that writes here.
    pub review: BTreeMap<String, Option<FieldValue>>,
    /// Photos to attach (a reference each; the bytes live in the device store). A photo the
    /// household already references is left as it is.
    pub add_photos: Vec<NewPhoto>,
    /// Whether the values set in `answers` and `edit_members` are a person's confirmations (a
    /// visit's answers, a correction naming the field): each is written even when the field
    /// already holds it, so a colleague's concurrent different value becomes a conflict instead of
    /// silently winning. Without it (roster updates, folds, resolutions) an unchanged value writes
    /// nothing. Fields the edits do not name are never written either way.
    pub confirmed: bool,
    /// A newer version of the household's form (`id@version`) that this save was made with: the
    /// household records it, so its new answers are read with the version that asked them.
    pub form: Option<String>,
}

impl Edits {
    /// Whether the edits contain nothing at all.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
            && self.add_members.is_empty()
            && self.edit_members.is_empty()
            && self.remove_members.is_empty()
            && self.visit.is_none()
            && self.links.is_empty()
            && self.review.is_empty()
            && self.add_photos.is_empty()
            && self.form.is_none()
    }
}

/// A photo attached by this save: what the household document records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPhoto {
    /// Its content address.
    pub id: crate::photo::PhotoId,
    /// What it shows.
    pub kind: crate::photo::PhotoKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its type, from its content.
    pub mime: crate::photo::Mime,
}

/// A visit as the enumerator records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVisit {
    /// The visit's id (generated on the device).
    pub id: VisitId,
    /// Visit-outcome code (domain.md §2.4).
    pub outcome: i64,
    /// GPS latitude, if a fix was taken.
    pub lat: Option<f64>,
    /// GPS longitude.
    pub lon: Option<f64>,
    /// GPS accuracy in metres.
    pub accuracy_m: Option<f64>,
    /// Free-text note.
    pub note: Option<String>,
    /// Answers to the form's visit-level fields.
    pub answers: BTreeMap<String, FieldValue>,
}

/// The Automerge scalar for a field value.
pub(super) fn scalar(v: &FieldValue) -> ScalarValue {
    match v {
        FieldValue::Bool(b) => ScalarValue::Boolean(*b),
        FieldValue::Int(i) => ScalarValue::Int(*i),
        FieldValue::Decimal(d) => ScalarValue::F64(*d),
        FieldValue::Text(s) => ScalarValue::Str(s.as_str().into()),
    }
}

/// Metadata every change carries: the user (the device is the actor) and the action, plus time.
pub(super) fn commit_options(editor: &Editor, action: &str) -> CommitOptions {
    let message = serde_json::json!({ "u": editor.user, "a": action }).to_string();
    let millis = i64::try_from(editor.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    CommitOptions::default().with_message(message).with_time(millis)
}

/// Set `key` to `value`. A key already holding only that value is left alone, unless `confirm`.
fn put_value<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &FieldValue,
    confirm: bool,
) -> Result<(), ModelError> {
    let current = tx.get_all(obj, key)?;
    let holds_value = !current.is_empty() && current.iter().all(|(v, _)| to_field_value(v).as_ref() == Some(value));
    if holds_value && !confirm {
        return Ok(());
    }
    if current.len() > 1 || holds_value {
        // Automerge 0.12 turns a put of the value a key already shows into nothing (one value
        // there) or into deletions of the other values only (several): neither is a write of its
        // own, so a concurrent different value would silently replace the confirmation or the
        // resolution. Clearing first makes it a real put, concurrent with a colleague's.
        tx.delete(obj, key)?;
    }
    tx.put(obj, key, scalar(value))?;
    Ok(())
}

fn set_or_clear<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &Option<FieldValue>,
    confirm: bool,
) -> Result<(), ModelError> {
    match value {
        Some(v) => put_value(tx, obj, key, v, confirm),
        // A confirmed absence writes nothing: there is no value to write, and a deletion of
        // nothing is no change.
        None => {
            if !tx.get_all(obj, key)?.is_empty() {
                tx.delete(obj, key)?;
            }
            Ok(())
        }
    }
}

fn member_obj<T: Transactable>(tx: &T, members: &ObjId, id: MemberId) -> Result<ObjId, ModelError> {
    match tx.get(members, id.to_string().as_str())? {
        Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
        _ => Err(ModelError::NoSuchMember(id)),
    }
}

/// Write `edits` into the open transaction.
pub(super) fn write<T: Transactable>(
    tx: &mut T,
    household: super::HouseholdId,
    editor: &Editor,
    edits: &Edits,
) -> Result<(), ModelError> {
    let roots = root_objects(&*tx).map_err(|detail| ModelError::Layout { household, detail })?;
    let now = super::rfc3339_seconds(editor.now);
    if let Some(form) = &edits.form {
        tx.put(ROOT, "form", form.as_str())?;
    }
    for (k, v) in &edits.answers {
        set_or_clear(tx, &roots["answers"], k, v, edits.confirmed)?;
    }
    for (id, answers) in &edits.add_members {
        let obj = tx.put_object(&roots["members"], id.to_string().as_str(), ObjType::Map)?;
        for (k, v) in answers {
            if !MEMBER_REMOVAL_KEYS.contains(&k.as_str()) {
                tx.put(&obj, k.as_str(), scalar(v))?;
            }
        }
    }
    for (id, answers) in &edits.edit_members {
        let obj = member_obj(tx, &roots["members"], *id)?;
        for (k, v) in answers {
            if !MEMBER_REMOVAL_KEYS.contains(&k.as_str()) {
                set_or_clear(tx, &obj, k, v, edits.confirmed)?;
            }
        }
    }
    for (id, reason) in &edits.remove_members {
        let obj = member_obj(tx, &roots["members"], *id)?;
        tx.put(&obj, "removed_at", now.as_str())?;
        tx.put(&obj, "removed_by", editor.user.as_str())?;
        tx.put(&obj, "removed_reason", reason.as_str())?;
    }
    if let Some(visit) = &edits.visit {
        let obj = tx.put_object(&roots["visits"], visit.id.to_string().as_str(), ObjType::Map)?;
        tx.put(&obj, "at", now.as_str())?;
        tx.put(&obj, "user", editor.user.as_str())?;
        tx.put(&obj, "device", editor.device.to_string())?;
        tx.put(&obj, "outcome", visit.outcome)?;
        for (k, v) in [("lat", visit.lat), ("lon", visit.lon), ("accuracy_m", visit.accuracy_m)] {
            if let Some(v) = v {
                tx.put(&obj, k, v)?;
            }
        }
        if let Some(note) = &visit.note {
            tx.put(&obj, "note", note.as_str())?;
        }
        for (k, v) in &visit.answers {
            if !VISIT_KEYS.contains(&k.as_str()) {
                tx.put(&obj, k.as_str(), scalar(v))?;
            }
        }
    }
    for (k, v) in &edits.links {
        set_or_clear(tx, &roots["links"], k, v, false)?;
    }
    for (k, v) in &edits.review {
        set_or_clear(tx, &roots["review"], k, v, false)?;
    }
    for photo in &edits.add_photos {
        // A reference is written once: creating it again would replace the first writer's record.
        if tx.get(&roots["photos"], photo.id.as_str())?.is_some() {
            continue;
        }
        let obj = tx.put_object(&roots["photos"], photo.id.as_str(), ObjType::Map)?;
        tx.put(&obj, "kind", photo.kind.as_str())?;
        tx.put(&obj, "bytes", i64::try_from(photo.bytes).unwrap_or(i64::MAX))?;
        tx.put(&obj, "mime", photo.mime.as_str())?;
        tx.put(&obj, "taken_at", now.as_str())?;
        tx.put(&obj, "by", editor.user.as_str())?;
        tx.put(&obj, "device", editor.device.to_string())?;
    }
    Ok(())
}
