//! Roster import on the server, independent of the storage backend (the wire types of the two-step
//! import, stage chunks then commit them at once, are in `sync_core::protocol`): turning one roster household into a new
//! household document, or into one change to the household a re-import matches.
//!
//! An import is staged chunk by chunk (each re-checked with the same rules the CLI applied) and
//! committed in one write transaction, so a file either imports whole or not at all, and a retried
//! commit answers what the first one did.

use std::collections::BTreeMap;
use sync_core::form::FormDefinition;
use sync_core::model::{Editor, Edits, Household, HouseholdId, MemberId, ModelError};
use sync_core::roster::RosterHousehold;
use sync_core::value::FieldValue;

pub use sync_core::protocol::{CHUNK_HOUSEHOLDS, ChunkReply, CommitRequest, ImportSummary, RosterChunk};

/// The save action recorded on documents a re-import updates.
pub const REIMPORT_ACTION: &str = "roster-update";

/// A household document to store for one roster household.
pub struct Imported {
    /// The household's id (new, or the matched one).
    pub id: HouseholdId,
    /// The whole document, saved.
    pub document: Vec<u8>,
    /// Its heads, comma-separated hex.
    pub heads: String,
    /// The new change (hash hex, bytes): `None` when a re-import changed nothing.
    pub change: Option<(String, Vec<u8>)>,
}

/// Build the new household document for `roster` (one change, written by `editor`).
pub fn create(form: &FormDefinition, roster: &RosterHousehold, editor: &Editor) -> Result<Imported, ModelError> {
    let id = HouseholdId::random();
    let edits = Edits {
        answers: roster.answers.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        add_members: roster.members.iter().map(|m| (MemberId::random(), m.clone())).collect(),
        ..Edits::default()
    };
    let (household, saved) = Household::create(id, &form.key(), editor, &edits)?;
    Ok(Imported {
        id,
        heads: heads(&household),
        document: household.save(),
        change: Some((saved.hash.to_string(), saved.bytes)),
    })
}

/// Bring the matched household `existing` up to `roster`: household answers that differ are set;
/// members are matched by NIK, else by full name, and their differing answers set; members the
/// roster adds are added. Nothing is removed or cleared: field work since the last import (a
/// member who moved out, an answer corrected on a visit) outranks an old list.
pub fn update(mut existing: Household, roster: &RosterHousehold, editor: &Editor) -> Result<Imported, ModelError> {
    let state = existing.state();
    let mut edits = Edits::default();
    for (field, value) in &roster.answers {
        if state.answers.get(field) != Some(value) {
            edits.answers.insert(field.clone(), Some(value.clone()));
        }
    }
    let current: Vec<_> = state.current_members().collect();
    let mut taken: Vec<MemberId> = Vec::new();
    for member in &roster.members {
        let key = |m: &BTreeMap<String, FieldValue>, field: &str| m.get(field).map(|v| v.to_string().to_lowercase());
        let matched = current
            .iter()
            .filter(|c| !taken.contains(&c.id))
            .find(|c| key(member, "nik").is_some() && key(&c.answers, "nik") == key(member, "nik"))
            .or_else(|| {
                current.iter().filter(|c| !taken.contains(&c.id)).find(|c| {
                    key(member, "full_name").is_some() && key(&c.answers, "full_name") == key(member, "full_name")
                })
            });
        match matched {
            Some(c) => {
                taken.push(c.id);
                let changed: BTreeMap<String, Option<FieldValue>> = member
                    .iter()
                    .filter(|(f, v)| c.answers.get(*f) != Some(*v))
                    .map(|(f, v)| (f.clone(), Some(v.clone())))
                    .collect();
                if !changed.is_empty() {
                    edits.edit_members.push((c.id, changed));
                }
            }
            None => edits.add_members.push((MemberId::random(), member.clone())),
        }
    }
    let id = existing.id();
    if edits.is_empty() {
        return Ok(Imported { id, heads: heads(&existing), document: existing.save(), change: None });
    }
    let (_, saved) = existing
        .apply(editor, REIMPORT_ACTION, &edits, |_| Ok::<(), ()>(()))?
        .map_err(|()| ModelError::BadChange("a roster update was refused".into()))?;
    let change = saved.map(|s| (s.hash.to_string(), s.bytes));
    Ok(Imported { id, heads: heads(&existing), document: existing.save(), change })
}

fn heads(household: &Household) -> String {
    household.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")
}
