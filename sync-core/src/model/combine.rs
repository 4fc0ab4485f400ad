//! Combining two household documents that turn out to be the same family.
//!
//! A supervisor picks a *survivor* and a *retired* household; [`Household::combine`] folds the
//! retired one into the survivor, and is called again whenever changes to the retired document
//! arrive later (a device that was offline keeps editing it until it syncs). What the server keeps
//! between calls is a [`Fold`]: the heads of both documents after the last call and which retired
//! member went into which survivor member.
//!
//! **First merge** (an empty [`Fold`]) takes everything the retired document holds:
//! - a household answer the survivor lacks is copied; an equal one is left alone; a different one
//!   stays as the survivor has it and is reported as a [`Disagreement`] for the supervisor;
//! - each current retired member is paired with a current survivor member by NIK, else by the
//!   normalised full name (never two people whose NIKs differ); a paired member gets the answers
//!   the survivor lacks, differing answers are disagreements; an unpaired member is added under
//!   its own member id; removed retired members stay behind;
//! - every retired visit the survivor lacks is copied key for key, so the enumerator who made it
//!   stays its author;
//! - every retired photo reference the survivor lacks is copied key for key (the photo follows the
//!   survivor: its uploader and time stay as recorded, and the server serves it to whoever may
//!   see the survivor);
//! - the retired document records `links.merged_into = <survivor id>`.
//!
//! **Later folds** look only at what changes written after the saved retired heads wrote: such an
//! answer or member answer is newer field work and replaces the survivor's, unless someone also
//! wrote that field in the survivor after the last fold with a different value (then it is a
//! disagreement, and the survivor keeps its value). New members are paired or added as above, a
//! member removed in the retired household is removed in the survivor with the same time, user and
//! reason, and new visits and photo references are copied. The retired document is not written.
//!
//! Each call makes at most one change per document, by the office [`Editor`]; calling again with
//! the returned [`Fold`] and nothing new writes nothing. Review and links other than
//! `merged_into` stay with the retired document, which remains readable through the link.

use super::attribution::Attributed;
use super::edit::{self, Edits};
use super::read::{self, MEMBER_REMOVAL_KEYS, Member};
use super::{
    Editor, FieldPath, Household, HouseholdId, HouseholdState, MemberId, ModelError, Place, Saved, VisitId, Write,
};
use crate::value::FieldValue;
use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjType, ReadDoc, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::convert::Infallible;
use std::fmt;

/// The action name of the first merge's changes (in both documents).
pub const MERGE_ACTION: &str = "merge";
/// The action name of a later fold's change in the survivor.
pub const MERGE_FOLD_ACTION: &str = "merge-fold";

/// What the server keeps between folds of one merge, so a later fold brings in only newer work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    /// Heads of the retired document already folded (hex; empty before the first merge).
    pub retired_heads: Vec<String>,
    /// Heads of the survivor right after the last fold (hex; empty before the first merge).
    pub survivor_heads: Vec<String>,
    /// Retired member id → the survivor member it was folded into (the same id when it was added).
    pub members: BTreeMap<MemberId, MemberId>,
}

/// A field the two households answer differently where the survivor kept its value, so a
/// supervisor can decide (it goes to the conflict inbox).
#[derive(Clone, PartialEq)]
pub struct Disagreement {
    /// The field, as a path in the survivor.
    pub path: FieldPath,
    /// The survivor's current value(s) with their writers.
    pub kept: Vec<Attributed>,
    /// The retired household's value, with the user, device and time that wrote it there.
    pub other: Attributed,
}

impl fmt::Debug for Disagreement {
    // Values are answers (names, NIKs): Debug shows where and who, never what.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept: Vec<_> = self.kept.iter().map(|a| &a.writer).collect();
        f.debug_struct("Disagreement")
            .field("path", &self.path)
            .field("kept", &kept)
            .field("other", &self.other.writer)
            .finish()
    }
}

/// What one call of [`Household::combine`] did: the changes to store and send, the fold to keep,
/// and the disagreements to show.
#[derive(Clone)]
pub struct Combined {
    /// The one new change in the survivor, if anything was brought in.
    pub survivor_change: Option<Saved>,
    /// The one new change in the retired household (`links.merged_into`), first merge only.
    pub retired_change: Option<Saved>,
    /// What to persist and pass to the next fold of these two households.
    pub fold: Fold,
    /// Fields where the survivor kept its own value over a different one from the retired household.
    pub disagreements: Vec<Disagreement>,
}

impl fmt::Debug for Combined {
    // Change bytes carry answers: Debug shows their hashes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Combined")
            .field("survivor_change", &self.survivor_change.as_ref().map(|s| s.hash))
            .field("retired_change", &self.retired_change.as_ref().map(|s| s.hash))
            .field("fold", &self.fold)
            .field("disagreements", &self.disagreements)
            .finish()
    }
}

impl Household {
    /// Fold `retired` into `self` (the survivor) as described in the module documentation, making
    /// at most one change in each document, by `editor`. Pass the [`Fold`] returned by the
    /// previous call for these two households, or `Fold::default()` for the first merge.
    pub fn combine(&mut self, retired: &mut Household, fold: &Fold, editor: &Editor) -> Result<Combined, ModelError> {
        self.refuse_merge(retired)?;
        self.check_layout()?;
        retired.check_layout()?;
        let first = fold.retired_heads.is_empty();
        let mut folding = Folding::new(self, retired, fold);
        if first {
            folding.take_everything()?;
        } else {
            let retired_heads = known_heads(retired, &fold.retired_heads)?;
            let survivor_heads = known_heads(self, &fold.survivor_heads)?;
            folding.take_newer(&retired_heads, &survivor_heads)?;
        }
        folding.take_missing_visits();
        folding.take_missing_photos();
        let Folding { writes, members, disagreements, .. } = folding;

        let action = if first { MERGE_ACTION } else { MERGE_FOLD_ACTION };
        let survivor_change = self.write_fold(editor, action, &writes)?;
        let retired_change = if first {
            let link = Edits {
                links: BTreeMap::from([("merged_into".to_string(), Some(FieldValue::Text(self.id.to_string())))]),
                ..Edits::default()
            };
            match retired.apply(editor, MERGE_ACTION, &link, |_| Ok::<(), Infallible>(()))? {
                Ok(((), saved)) => saved,
                Err(never) => match never {},
            }
        } else {
            None
        };
        let fold = Fold { retired_heads: hex(&retired.heads()), survivor_heads: hex(&self.heads()), members };
        Ok(Combined { survivor_change, retired_change, fold, disagreements })
    }

    /// Refuse merges that cannot be meant: a household into itself, a household already merged
    /// elsewhere, or one that would make a cycle.
    fn refuse_merge(&self, retired: &Household) -> Result<(), ModelError> {
        if self.id == retired.id {
            return Err(ModelError::MergeIntoItself(self.id));
        }
        let link = FieldPath::Link("merged_into".into());
        for value in retired.field_values(&link)? {
            let into = value.value.to_string();
            if into.parse::<HouseholdId>().ok() != Some(self.id) {
                let into =
                    into.parse::<HouseholdId>().map(|h| h.to_string()).unwrap_or_else(|_| "an unreadable id".into());
                return Err(ModelError::AlreadyMerged { household: retired.id, into });
            }
        }
        for value in self.field_values(&link)? {
            if value.value.to_string().parse::<HouseholdId>().ok() == Some(retired.id) {
                return Err(ModelError::AlreadyMerged { household: self.id, into: retired.id.to_string() });
            }
        }
        Ok(())
    }

    /// Write one fold's plan into the survivor as one change; `None` when there is nothing to write.
    fn write_fold(&mut self, editor: &Editor, action: &str, writes: &Writes) -> Result<Option<Saved>, ModelError> {
        let household = self.id;
        self.doc.set_actor(editor.device.actor());
        let mut tx = self.doc.transaction();
        let edits = Edits {
            answers: writes.answers.clone(),
            add_members: writes.add_members.clone(),
            edit_members: writes.edit_members.iter().map(|(m, fields)| (*m, fields.clone())).collect(),
            ..Edits::default()
        };
        edit::write(&mut tx, household, editor, &edits)?;
        let roots = read::root_objects(&tx).map_err(|detail| ModelError::Layout { household, detail })?;
        for (member, removal) in &writes.removals {
            let obj = match tx.get(&roots["members"], member.to_string().as_str())? {
                Some((Value::Object(ObjType::Map), obj)) => obj,
                _ => return Err(ModelError::NoSuchMember(*member)),
            };
            for (key, value) in removal {
                tx.put(&obj, key.as_str(), edit::scalar(value))?;
            }
        }
        for (visit, fields) in &writes.visits {
            let obj = tx.put_object(&roots["visits"], visit.to_string().as_str(), ObjType::Map)?;
            for (key, value) in fields {
                tx.put(&obj, key.as_str(), edit::scalar(value))?;
            }
        }
        for (photo, fields) in &writes.photos {
            let obj = tx.put_object(&roots["photos"], photo.as_str(), ObjType::Map)?;
            for (key, value) in fields {
                tx.put(&obj, key.as_str(), edit::scalar(value))?;
            }
        }
        if tx.pending_ops() == 0 {
            tx.rollback();
            return Ok(None);
        }
        let (hash, _) = tx.commit_with(edit::commit_options(editor, action));
        hash.map(|h| self.saved(h)).transpose()
    }
}

/// Everything one fold writes into the survivor, gathered before anything is written.
#[derive(Default)]
struct Writes {
    answers: BTreeMap<String, Option<FieldValue>>,
    add_members: Vec<(MemberId, BTreeMap<String, FieldValue>)>,
    edit_members: BTreeMap<MemberId, BTreeMap<String, Option<FieldValue>>>,
    /// Survivor member → its removal keys, copied from the retired member.
    removals: BTreeMap<MemberId, BTreeMap<String, FieldValue>>,
    /// Retired visits the survivor lacks, every stored key as it is.
    visits: BTreeMap<VisitId, BTreeMap<String, FieldValue>>,
    /// Retired photo references the survivor lacks (by SHA-256), every stored key as it is.
    photos: BTreeMap<String, BTreeMap<String, FieldValue>>,
}

impl Writes {
    fn set(&mut self, path: &FieldPath, value: Option<FieldValue>) {
        match path {
            FieldPath::Answer(k) => {
                self.answers.insert(k.clone(), value);
            }
            FieldPath::Member(m, k) => {
                self.edit_members.entry(*m).or_default().insert(k.clone(), value);
            }
            // Folding writes answers and member answers only; visits are copied whole.
            FieldPath::Visit(..) | FieldPath::Review(_) | FieldPath::Link(_) => {}
        }
    }
}

/// One fold in progress: both documents as they were when it started, and what it will write.
struct Folding<'a> {
    survivor: &'a Household,
    retired: &'a Household,
    survivor_state: HouseholdState,
    retired_state: HouseholdState,
    members: BTreeMap<MemberId, MemberId>,
    writes: Writes,
    disagreements: Vec<Disagreement>,
}

impl<'a> Folding<'a> {
    fn new(survivor: &'a Household, retired: &'a Household, fold: &Fold) -> Self {
        Folding {
            survivor,
            retired,
            survivor_state: survivor.state(),
            retired_state: retired.state(),
            members: fold.members.clone(),
            writes: Writes::default(),
            disagreements: Vec::new(),
        }
    }

    /// First merge: every answer, current member and visit of the retired household.
    fn take_everything(&mut self) -> Result<(), ModelError> {
        let answers = self.retired_state.answers.clone();
        for (field, value) in &answers {
            let path = FieldPath::Answer(field.clone());
            self.fill(&path, &path, value)?;
        }
        let members: Vec<Member> = self.retired_state.current_members().cloned().collect();
        for member in &members {
            self.fold_member(member)?;
        }
        Ok(())
    }

    /// A later fold: what the retired household's changes after `retired_heads` wrote.
    fn take_newer(&mut self, retired_heads: &[ChangeHash], survivor_heads: &[ChangeHash]) -> Result<(), ModelError> {
        let newer_changes = self.retired.doc.get_changes(retired_heads);
        let newer_in_retired: HashSet<String> = newer_changes.iter().map(|c| c.hash().to_string()).collect();
        let newer_in_survivor: HashSet<String> =
            self.survivor.doc.get_changes(survivor_heads).iter().map(|c| c.hash().to_string()).collect();
        let newer = Newer { in_retired: &newer_in_retired, in_survivor: &newer_in_survivor };

        let mut answers = BTreeSet::new();
        let mut member_fields: BTreeMap<MemberId, BTreeSet<String>> = BTreeMap::new();
        let mut removed = BTreeSet::new();
        for op in self.retired.written_ops(&newer_changes) {
            if !matches!(op.write, Write::Scalar(_) | Write::Delete) {
                continue;
            }
            match op.place {
                Place::Answers => {
                    answers.insert(op.key);
                }
                Place::Member(Some(m)) if MEMBER_REMOVAL_KEYS.contains(&op.key.as_str()) => {
                    removed.insert(m);
                }
                Place::Member(Some(m)) => {
                    member_fields.entry(m).or_default().insert(op.key);
                }
                _ => {}
            }
        }

        // New members first: they are folded whole, so their own writes need no second look.
        let survivor_ids: HashSet<MemberId> = self.survivor_state.members.iter().map(|m| m.id).collect();
        let unfolded: Vec<Member> = self
            .retired_state
            .current_members()
            .filter(|m| self.members.get(&m.id).is_none_or(|s| !survivor_ids.contains(s)))
            .cloned()
            .collect();
        for member in &unfolded {
            self.fold_member(member)?;
        }
        let just_folded: HashSet<MemberId> = unfolded.iter().map(|m| m.id).collect();

        for field in answers {
            let path = FieldPath::Answer(field);
            self.bring_newer(&path, &path, &newer)?;
        }
        for (retired_member, fields) in member_fields {
            if just_folded.contains(&retired_member) {
                continue;
            }
            let Some(&survivor_member) = self.members.get(&retired_member) else { continue };
            if !survivor_ids.contains(&survivor_member) {
                continue;
            }
            for field in fields {
                let into = FieldPath::Member(survivor_member, field.clone());
                self.bring_newer(&into, &FieldPath::Member(retired_member, field), &newer)?;
            }
        }
        for retired_member in removed {
            if just_folded.contains(&retired_member) {
                continue;
            }
            self.bring_removal(retired_member);
        }
        Ok(())
    }

    /// Copy every retired visit the survivor lacks, key for key (the author stays the enumerator).
    fn take_missing_visits(&mut self) {
        let (Ok(retired_roots), Ok(survivor_roots)) =
            (read::root_objects(&self.retired.doc), read::root_objects(&self.survivor.doc))
        else {
            return;
        };
        let have: HashSet<String> =
            read::child_maps(&self.survivor.doc, &survivor_roots["visits"]).into_iter().map(|(k, _)| k).collect();
        for (key, obj) in read::child_maps(&self.retired.doc, &retired_roots["visits"]) {
            if have.contains(&key) {
                continue;
            }
            if let Ok(id) = key.parse::<VisitId>() {
                self.writes.visits.insert(id, read::scalar_map(&self.retired.doc, &obj));
            }
        }
    }

    /// Copy every retired photo reference the survivor lacks, key for key: the photo follows the
    /// survivor, its uploader and time as recorded.
    fn take_missing_photos(&mut self) {
        for (key, photo) in &self.retired_state.photos {
            if self.survivor_state.photos.contains_key(key) || key.parse::<crate::photo::PhotoId>().is_err() {
                continue;
            }
            let fields = BTreeMap::from([
                ("kind".to_string(), FieldValue::Text(photo.kind.clone())),
                ("bytes".to_string(), FieldValue::Int(photo.bytes)),
                ("mime".to_string(), FieldValue::Text(photo.mime.clone())),
                ("taken_at".to_string(), FieldValue::Text(photo.taken_at.clone())),
                ("by".to_string(), FieldValue::Text(photo.by.clone())),
                ("device".to_string(), FieldValue::Text(photo.device.clone())),
            ]);
            self.writes.photos.insert(key.clone(), fields);
        }
    }

    /// Pair a retired member with a survivor member (or add it) and fill what the survivor lacks.
    fn fold_member(&mut self, member: &Member) -> Result<(), ModelError> {
        let paired = self.members.get(&member.id).copied();
        let paired = paired.filter(|s| self.survivor_state.members.iter().any(|m| m.id == *s));
        match paired.or_else(|| self.partner(member)) {
            Some(survivor_member) => {
                self.members.insert(member.id, survivor_member);
                for (field, value) in &member.answers {
                    let into = FieldPath::Member(survivor_member, field.clone());
                    self.fill(&into, &FieldPath::Member(member.id, field.clone()), value)?;
                }
            }
            None => {
                self.members.insert(member.id, member.id);
                self.writes.add_members.push((member.id, member.answers.clone()));
            }
        }
        Ok(())
    }

    /// The survivor member that is the same person: the same member id (the map already exists),
    /// else an unpaired current member with the same NIK, else one with the same normalised name
    /// whose NIK does not contradict.
    fn partner(&self, member: &Member) -> Option<MemberId> {
        if self.survivor_state.members.iter().any(|m| m.id == member.id) {
            return Some(member.id);
        }
        let taken: HashSet<MemberId> = self.members.values().copied().collect();
        let free: Vec<&Member> = self.survivor_state.current_members().filter(|m| !taken.contains(&m.id)).collect();
        let nik = nik_of(member);
        if let Some(nik) = &nik
            && let Some(same) = free.iter().find(|m| nik_of(m).as_ref() == Some(nik))
        {
            return Some(same.id);
        }
        let name = member.name().map(normalised_name).filter(|n| !n.is_empty())?;
        free.iter()
            .find(|m| {
                let contradicts = matches!((&nik, nik_of(m)), (Some(a), Some(b)) if *a != b);
                !contradicts && m.name().map(normalised_name).as_deref() == Some(name.as_str())
            })
            .map(|m| m.id)
    }

    /// First-merge rule for one field: copy when the survivor lacks it, report when it differs.
    fn fill(&mut self, into: &FieldPath, from: &FieldPath, value: &FieldValue) -> Result<(), ModelError> {
        let kept = self.survivor.field_values(into)?;
        if kept.is_empty() {
            self.writes.set(into, Some(value.clone()));
        } else if !kept.iter().any(|a| same_value(into, &a.value, value)) {
            self.disagree(into, kept, from, value)?;
        }
        Ok(())
    }

    /// Later-fold rule for one field the retired household wrote after the last fold: it is newer
    /// field work and replaces the survivor's value, unless the survivor's value is newer too.
    fn bring_newer(&mut self, into: &FieldPath, from: &FieldPath, newer: &Newer<'_>) -> Result<(), ModelError> {
        let theirs = self.retired.field_values(from)?;
        let kept = self.survivor.field_values(into)?;
        let kept_is_newer = kept.iter().any(|a| newer.in_survivor.contains(&a.writer.change));
        let fresh: Vec<&Attributed> = theirs.iter().filter(|a| newer.in_retired.contains(&a.writer.change)).collect();
        if fresh.is_empty() {
            // Cleared in the retired household (nothing newer is left there): clear it here too,
            // unless the survivor's value was written after the last fold.
            if theirs.is_empty() && !kept.is_empty() && !kept_is_newer {
                self.writes.set(into, None);
            }
            return Ok(());
        }
        let winner = state_value(&self.retired_state, from);
        let value = fresh.iter().find(|a| Some(&a.value) == winner).unwrap_or(&fresh[0]).value.clone();
        if !kept_is_newer {
            self.writes.set(into, Some(value));
        } else if !kept.iter().any(|a| same_value(into, &a.value, &value)) {
            self.disagree(into, kept, from, &value)?;
        }
        Ok(())
    }

    /// A member removed in the retired household after the last fold is removed in the survivor,
    /// with the retired household's time, user and reason.
    fn bring_removal(&mut self, retired_member: MemberId) {
        let Some(&survivor_member) = self.members.get(&retired_member) else { return };
        let removed_there = self.retired_state.members.iter().any(|m| m.id == retired_member && m.removed.is_some());
        let present_here = self.survivor_state.current_members().any(|m| m.id == survivor_member);
        if !(removed_there && present_here) {
            return;
        }
        let Ok(roots) = read::root_objects(&self.retired.doc) else { return };
        let Ok(Some((Value::Object(ObjType::Map), obj))) =
            self.retired.doc.get(&roots["members"], retired_member.to_string().as_str())
        else {
            return;
        };
        let keys: BTreeMap<String, FieldValue> = read::scalar_map(&self.retired.doc, &obj)
            .into_iter()
            .filter(|(k, _)| MEMBER_REMOVAL_KEYS.contains(&k.as_str()))
            .collect();
        self.writes.removals.insert(survivor_member, keys);
    }

    fn disagree(
        &mut self,
        into: &FieldPath,
        kept: Vec<Attributed>,
        from: &FieldPath,
        value: &FieldValue,
    ) -> Result<(), ModelError> {
        let other = self.retired.field_values(from)?.into_iter().find(|a| &a.value == value);
        if let Some(other) = other {
            self.disagreements.push(Disagreement { path: into.clone(), kept, other });
        }
        Ok(())
    }
}

/// The changes written after the last fold, in each document (hex hashes).
struct Newer<'a> {
    in_retired: &'a HashSet<String>,
    in_survivor: &'a HashSet<String>,
}

/// The current (winning) value at an answer or member path.
fn state_value<'s>(state: &'s HouseholdState, path: &FieldPath) -> Option<&'s FieldValue> {
    match path {
        FieldPath::Answer(k) => state.answers.get(k),
        FieldPath::Member(m, k) => state.members.iter().find(|x| x.id == *m).and_then(|x| x.answers.get(k)),
        FieldPath::Visit(..) | FieldPath::Review(_) | FieldPath::Link(_) => None,
    }
}

/// Whether two answers agree. Full names agree when they pair (case and spacing aside): "LA
/// SINTETIS" on one form and "La Sintetis" on the other is no decision for a supervisor.
fn same_value(path: &FieldPath, a: &FieldValue, b: &FieldValue) -> bool {
    match (path, a, b) {
        (FieldPath::Member(_, field), FieldValue::Text(a), FieldValue::Text(b)) if field == "full_name" => {
            normalised_name(a) == normalised_name(b)
        }
        _ => a == b,
    }
}

/// A member's NIK digits, when answered (separators typed by hand do not make two NIKs differ).
fn nik_of(member: &Member) -> Option<String> {
    let digits: String = member.answers.get("nik")?.to_string().chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// A name for pairing: lowercase, whitespace collapsed, trimmed.
fn normalised_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Parse saved heads and check the document has them all.
fn known_heads(household: &Household, heads: &[String]) -> Result<Vec<ChangeHash>, ModelError> {
    heads
        .iter()
        .map(|h| h.parse::<ChangeHash>().ok().filter(|h| household.has_change(h)))
        .collect::<Option<Vec<_>>>()
        .ok_or(ModelError::FoldMismatch { household: household.id })
}

fn hex(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(ChangeHash::to_string).collect()
}
