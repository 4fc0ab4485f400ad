//! The supervisor's review: the review queue and decisions, the conflict inbox and resolutions,
//! read from the derived facts ([`super::facts`]) on a read transaction, never inside the writer.
//! Decisions and resolutions are changes the server makes for the supervisor under their
//! server-side device; they enter the feed like a device's.

use super::facts::{brief, from_json};
use super::{Service, corrupt, load_for_edit, store_edit};
use crate::storage::{FactsRow, ReadTx, StorageError, Transactions};
use std::collections::{BTreeMap, HashMap};
use sync_core::form::{FormDefinition, Scope};
use sync_core::model::{
    Attributed, DeviceId, Editor, FieldPath, Household, HouseholdId, ReviewDecision, ReviewStatus, values_disagree,
};
use sync_core::protocol::{ConflictItem, ConflictValue, HouseholdBrief};
use sync_core::value::FieldValue;

/// How a supervisor settles a conflict.
#[derive(Debug, Clone)]
pub enum Choice {
    /// Keep the value at this 1-based position of the listed values.
    Pick(usize),
    /// Write this value, typed as at data entry.
    Value(String),
}

/// A household's facts as the lists read them: its brief counts open fold disagreements too.
pub(super) struct Facts {
    pub(super) village: String,
    pub(super) brief: HouseholdBrief,
    pub(super) conflicts: String,
    pub(super) review: Option<String>,
    pub(super) visits: u32,
}

impl Facts {
    fn village_brief(&self) -> HouseholdBrief {
        let mut b = self.brief.clone();
        b.village.clone_from(&self.village);
        b
    }
}

/// Open fold disagreements per survivor household.
pub(super) fn open_disagreement_counts(tx: &mut dyn ReadTx) -> Result<HashMap<HouseholdId, u32>, StorageError> {
    let mut counts = HashMap::new();
    for row in tx.open_disagreements(None)? {
        *counts.entry(row.survivor).or_default() += 1;
    }
    Ok(counts)
}

fn facts_of(row: FactsRow, open: &HashMap<HouseholdId, u32>) -> Result<Facts, StorageError> {
    let mut brief: HouseholdBrief = from_json(&row.brief)?;
    brief.conflicts = row.conflict_count + open.get(&row.household).copied().unwrap_or(0);
    Ok(Facts { village: row.village, brief, conflicts: row.conflicts, review: row.review, visits: row.visits })
}

/// The facts of every live (not folded-away) household in `areas`, by village then id, with
/// conflict counts that include open fold disagreements.
pub(super) fn facts(tx: &mut dyn ReadTx, areas: Option<&[String]>) -> Result<Vec<Facts>, StorageError> {
    let open = open_disagreement_counts(tx)?;
    let rows = match areas {
        None => tx.live_facts(None)?,
        Some([area]) => tx.live_facts(Some(area))?,
        Some(areas) => {
            // Areas may overlap (a kecamatan and one of its villages): each household once.
            let mut by_key: BTreeMap<(String, HouseholdId), FactsRow> = BTreeMap::new();
            for area in areas {
                for row in tx.live_facts(Some(area))? {
                    by_key.insert((row.village.clone(), row.household), row);
                }
            }
            by_key.into_values().collect()
        }
    };
    rows.into_iter().map(|row| facts_of(row, &open)).collect()
}

/// The village and brief of a household that is not folded away (`None` if it is, or unknown).
pub(super) fn live_brief(
    tx: &mut dyn ReadTx,
    id: HouseholdId,
) -> Result<Option<(String, HouseholdBrief)>, StorageError> {
    let Some(row) = tx.live_facts_of(id)? else { return Ok(None) };
    let open = tx.open_disagreements(Some(id))?.len() as u32;
    let village = row.village.clone();
    let mut brief: HouseholdBrief = from_json(&row.brief)?;
    brief.conflicts = row.conflict_count + open;
    Ok(Some((village, brief)))
}

fn retired_note(household: &Household) -> Option<String> {
    household
        .state()
        .links
        .get("merged_into")
        .and_then(|v| v.as_text())
        .map(|s| format!("household {} was merged into {s}; work on {s} instead", household.id()))
}

/// The form label of the field a path names, for the supervisor's screen.
fn label(form: &FormDefinition, path: &str) -> Option<String> {
    match path.parse::<FieldPath>().ok()? {
        FieldPath::Answer(k) => form.field(Scope::Household, &k).map(|f| f.label.clone()),
        FieldPath::Member(_, k) => form.field(Scope::Member, &k).map(|f| f.label.clone()),
        FieldPath::Visit(_, k) => form.field(Scope::Visit, &k).map(|f| f.label.clone()),
        FieldPath::Review(_) | FieldPath::Link(_) => None,
    }
}

/// A value with its writer named as people know them: the device's name, and whether the server
/// wrote it for that device's user.
fn conflict_value(a: &Attributed, devices: &HashMap<String, (String, String)>) -> ConflictValue {
    let device = match devices.get(&a.writer.device) {
        Some((name, _)) => format!("{name} ({})", a.writer.device),
        None => match a.writer.device.parse::<uuid::Uuid>().ok().map(|u| DeviceId(u).on_server().to_string()) {
            Some(own) if devices.contains_key(&own) => format!("server, for {} ({own})", devices[&own].0),
            _ => a.writer.device.clone(),
        },
    };
    ConflictValue { value: a.value.clone(), user: a.writer.user.clone(), device, at: a.writer.at.clone() }
}

/// A new value typed for the field at `path`, parsed and checked as at data entry, with `form`:
/// the version the household records.
fn parse_value(form: &FormDefinition, path: &FieldPath, raw: &str) -> Result<FieldValue, StorageError> {
    let field = match path {
        FieldPath::Answer(k) => form.field(Scope::Household, k),
        FieldPath::Member(_, k) => form.field(Scope::Member, k),
        _ => None,
    };
    let Some(field) = field else {
        let text = raw.trim();
        if text.is_empty() {
            return Err(StorageError::Refused("the new value is empty; give a value or pick a listed one".into()));
        }
        return Ok(FieldValue::Text(text.to_string()));
    };
    match field.parse_input(raw) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(StorageError::Refused(format!(
            "the new value for {} ({}) is empty; give a value or pick a listed one",
            field.name, field.label
        ))),
        Err(finding) => Err(StorageError::Refused(format!(
            "the new value for {} ({}) is not valid: {}",
            field.name, field.label, finding.message
        ))),
    }
}

impl Service {
    /// The village a household belongs to (`None`: no such household), for scope checks.
    pub fn household_village(&self, id: HouseholdId) -> Result<Option<String>, StorageError> {
        self.db.read(|tx| tx.household_village(id))
    }

    /// Households whose id starts with `prefix` (lowercase hex and dashes), with their villages,
    /// in id order, at most `limit`: a supervisor names a household by the first characters its
    /// lists show, without a copy of the kecamatan on the office laptop.
    pub fn households_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<(HouseholdId, String)>, StorageError> {
        self.db.read(|tx| tx.households_with_prefix(prefix, limit))
    }

    /// Visited households of the areas (`None`: everywhere), optionally only those with one
    /// effective review status.
    pub fn review_list(
        &self,
        areas: Option<&[String]>,
        status: Option<ReviewStatus>,
    ) -> Result<Vec<HouseholdBrief>, StorageError> {
        self.refresh_derived()?;
        self.db.read(|tx| {
            Ok(facts(tx, areas)?
                .into_iter()
                .filter(|f| f.visits > 0)
                .filter(|f| status.is_none_or(|s| f.review.as_deref() == Some(s.as_str())))
                .map(|f| f.brief)
                .collect())
        })
    }

    /// Approve or return a household as `editor` (a server-side device); the change enters the feed.
    pub fn review(
        &self,
        id: HouseholdId,
        editor: &Editor,
        decision: ReviewDecision,
        comment: Option<&str>,
    ) -> Result<HouseholdBrief, StorageError> {
        self.db.write(|tx| {
            let (mut household, village) = load_for_edit(tx, id, editor)?;
            if let Some(note) = retired_note(&household) {
                return Err(StorageError::Stale(note));
            }
            let state = household.state();
            if state.visits.is_empty() {
                return Err(StorageError::Refused(format!(
                    "household {id} has no visit yet; there is nothing to review until an enumerator records one"
                )));
            }
            if decision == ReviewDecision::Approve {
                let open = household.conflicts().len() + tx.open_disagreements(Some(id))?.len();
                if open > 0 {
                    return Err(StorageError::Refused(format!(
                        "household {id} has {open} open conflict(s); resolve them (`pilar conflicts`) before approving"
                    )));
                }
            }
            // The comment's key is new on every run (a retried transaction writes a new change).
            let saved = household
                .review(editor, decision, comment, uuid::Uuid::new_v4())
                .map_err(|e| corrupt(format!("household {id}: {e}")))?;
            store_edit(tx, &household, &village, &saved, editor)?;
            let state = household.state();
            Ok(brief(&state, &village, household.review_status(&state), 0))
        })
    }

    /// Every open conflict of the areas (fields with several concurrent values, and disagreements
    /// a fold left for the supervisor), each value with its writer.
    pub fn conflicts(&self, areas: Option<&[String]>) -> Result<Vec<ConflictItem>, StorageError> {
        self.refresh_derived()?;
        self.db.read(|tx| {
            let devices: HashMap<String, (String, String)> =
                tx.devices()?.into_iter().map(|d| (d.id.to_string(), (d.name, d.user))).collect();
            // Labels from the newest version of the form: it labels every earlier version's fields.
            let set = self.forms.set(tx)?;
            let built_in = FormDefinition::default_dtsen();
            let form = set.newest(&built_in.id).map_or(built_in, |f| f.as_ref());
            let mut out = Vec::new();
            let live = facts(tx, areas)?;
            let mut by_id: HashMap<HouseholdId, &Facts> = HashMap::new();
            for f in &live {
                by_id.insert(f.brief.household, f);
                let listed: Vec<(String, Vec<Attributed>)> = from_json(&f.conflicts)?;
                for (path, values) in listed {
                    out.push(ConflictItem {
                        household: f.brief.clone(),
                        label: label(form, &path),
                        path,
                        source: "sync".into(),
                        values: values.iter().map(|a| conflict_value(a, &devices)).collect(),
                    });
                }
            }
            for row in tx.open_disagreements(None)? {
                let Some(f) = by_id.get(&row.survivor) else { continue };
                let Some(stored) = tx.household(row.survivor)? else { continue };
                let household = Household::load(row.survivor, &stored.doc, DeviceId(uuid::Uuid::nil()))
                    .map_err(|e| corrupt(format!("household {}: {e}", row.survivor)))?;
                let other: Attributed = from_json(&row.other)?;
                let parsed: FieldPath =
                    row.path.parse().map_err(|_| corrupt(format!("bad stored path {:?}", row.path)))?;
                let mut values: Vec<ConflictValue> = household
                    .field_values(&parsed)
                    .unwrap_or_default()
                    .iter()
                    .map(|a| conflict_value(a, &devices))
                    .collect();
                values.push(conflict_value(&other, &devices));
                out.push(ConflictItem {
                    household: f.village_brief(),
                    label: label(form, &row.path),
                    path: row.path,
                    source: "merge".into(),
                    values,
                });
            }
            Ok(out)
        })
    }

    /// Settle the conflict at `path` of household `id` by picking a listed value or writing a new
    /// one; the fold disagreements at that path are closed too. Refused when nothing is in
    /// conflict there any more.
    pub fn resolve(
        &self,
        id: HouseholdId,
        editor: &Editor,
        path: &FieldPath,
        choice: &Choice,
    ) -> Result<HouseholdBrief, StorageError> {
        self.db.write(|tx| {
            let (mut household, village) = load_for_edit(tx, id, editor)?;
            if let Some(note) = retired_note(&household) {
                return Err(StorageError::Stale(note));
            }
            let text = path.to_string();
            let attributed = household.field_values(path).unwrap_or_default();
            let in_conflict = values_disagree(&attributed);
            let mut values: Vec<FieldValue> = attributed.into_iter().map(|a| a.value).collect();
            let mut others = Vec::new();
            for row in tx.open_disagreements(Some(id))?.into_iter().filter(|r| r.path == text) {
                let other: Attributed = from_json(&row.other)?;
                others.push(other.value);
            }
            if !in_conflict && others.is_empty() {
                return Err(StorageError::Stale(format!(
                    "{text} of household {id} is not in conflict (any more); list open conflicts with `pilar conflicts`"
                )));
            }
            values.extend(others);
            let value = match choice {
                Choice::Pick(n) => match values.get(n.wrapping_sub(1)) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(StorageError::Refused(format!(
                            "--pick {n} is not one of the {} listed values of {text}; pick 1 to {}",
                            values.len(),
                            values.len()
                        )));
                    }
                },
                Choice::Value(raw) => {
                    let key = household.form_key();
                    let form = self.forms.get(tx, &key)?.ok_or_else(|| {
                        StorageError::Corrupt(format!("household {id} records form {key}, which is not published"))
                    })?;
                    parse_value(&form, path, raw)?
                }
            };
            let saved = household.resolve(editor, path, Some(value)).map_err(|e| match e {
                sync_core::model::ModelError::BadPath(m) => StorageError::Refused(m),
                other => corrupt(format!("household {id}: {other}")),
            })?;
            tx.close_disagreements(id, &text, &editor.user, editor.now)?;
            if let Some(saved) = saved {
                store_edit(tx, &household, &village, &saved, editor)?;
            }
            let state = household.state();
            Ok(brief(&state, &village, household.review_status(&state), 0))
        })
    }
}
