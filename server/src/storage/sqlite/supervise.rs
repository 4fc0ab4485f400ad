//! The supervisor's half on SQLite: derived facts per household (review status, conflicts,
//! duplicate keys) for the lists and the progress report, and the writes a supervisor makes
//! through the server (review, conflict resolution), which enter the feed like any device's.
//!
//! Facts are derived, never edited: a household's row is recomputed from its document whenever
//! the document is newer than the row (`seq < households.updated_seq`). Sync does not pay for it;
//! the first list or report after new work does, for the households that changed.

use super::stored_time;
use crate::storage::{StorageError, in_areas};
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use sync_core::form::{FormDefinition, Scope};
use sync_core::model::{
    Attributed, DeviceId, Editor, FieldPath, Household, HouseholdId, HouseholdState, ReviewDecision, ReviewStatus,
    Saved,
};
use sync_core::protocol::{ConflictItem, ConflictValue, DuplicatePair, HouseholdBrief, ProgressReport, ProgressRow};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

/// Households sharing one duplicate key beyond which the key is not taken as evidence (see
/// [`duplicates`]).
const MAX_SUSPECT_GROUP: i64 = 8;

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(what.into())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| corrupt(format!("cannot encode facts: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StorageError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("stored facts are not readable: {e}")))
}

/// The key that makes duplicate-detection keys unlinkable outside this database (NIK and KK
/// numbers are never stored as plain lookup keys); created on first use.
fn lookup_key(tx: &Transaction<'_>) -> Result<Vec<u8>, StorageError> {
    let found: Option<Vec<u8>> =
        tx.query_row("SELECT value FROM server_secrets WHERE name = 'lookup_key'", [], |r| r.get(0)).optional()?;
    if let Some(key) = found {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    tx.execute("INSERT INTO server_secrets (name, value) VALUES ('lookup_key', ?1)", params![key.to_vec()])?;
    Ok(key.to_vec())
}

fn keyed(key: &[u8], kind: &str, value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    hex::encode(hasher.finalize())
}

/// A name compared for duplicates: lower case, letters and digits only, words single-spaced.
fn normalised_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The RT as compared for duplicates: digits without leading zeros (`003` = `3`).
fn normalised_rt(rt: &str) -> String {
    let digits = rt.trim().trim_start_matches('0');
    if digits.is_empty() { "0".into() } else { digits.to_string() }
}

/// The brief a list shows, from a household's state (review status already effective).
fn brief(state: &HouseholdState, village: &str, review: Option<ReviewStatus>, conflicts: u32) -> HouseholdBrief {
    let last = state.last_visit();
    HouseholdBrief {
        household: state.id,
        village: village.to_string(),
        head_name: state.answer_text("head_name"),
        rt: state.answer_text("rt"),
        review: review.map(|r| r.as_str().to_string()),
        review_by: state.review.by.clone(),
        review_at: state.review.at.clone(),
        comment: state.review.comments.last().map(|c| c.text.clone()),
        visits: state.visits.len() as u32,
        last_outcome: last.and_then(|v| v.outcome),
        last_visit_by: last.map(|v| v.user.clone()),
        last_visit_at: last.map(|v| v.at.clone()),
        conflicts,
    }
}

/// Recompute the facts of up to `limit` households written since the last refresh; returns how
/// many it looked at (the caller repeats, one short transaction at a time, until 0).
///
/// A watermark (`updated_seq`, id) walks the `households_updated` index, so each household is
/// looked at once per write, never rescanned: every write gives a household a feed sequence number
/// above all earlier ones, so a household written again lands after the watermark.
pub(super) fn refresh(tx: &Transaction<'_>, limit: u32) -> Result<usize, StorageError> {
    let (after_seq, after_id): (i64, String) = tx
        .query_row("SELECT seq, household_id FROM facts_watermark WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((-1, String::new()));
    let batch: Vec<(String, String, i64, Option<i64>)> = tx
        .prepare_cached(
            "SELECT h.id, h.village, h.updated_seq, f.seq FROM households h
             LEFT JOIN household_facts f ON f.household_id = h.id
             WHERE h.updated_seq > ?1 OR (h.updated_seq = ?1 AND h.id > ?2)
             ORDER BY h.updated_seq, h.id LIMIT ?3",
        )?
        .query_map(params![after_seq, after_id, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let Some((last_id, _, last_seq, _)) = batch.last().cloned() else { return Ok(0) };
    let key = lookup_key(tx)?;
    let form = FormDefinition::default_dtsen();
    let mut doc_of = tx.prepare_cached("SELECT doc FROM households WHERE id = ?1")?;
    for (id, village, seq, known) in &batch {
        if known.is_some_and(|k| k >= *seq) {
            continue;
        }
        let doc: Vec<u8> = doc_of.query_row(params![id], |r| r.get(0))?;
        let id: HouseholdId = id.parse().map_err(|_| corrupt(format!("bad household id {id:?}")))?;
        let household = Household::load(id, &doc, DeviceId(uuid::Uuid::nil()))
            .map_err(|e| corrupt(format!("household {id}: {e}")))?;
        write_facts(tx, &household, village, *seq, &key, form)?;
    }
    tx.execute(
        "INSERT INTO facts_watermark (id, seq, household_id) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, household_id = excluded.household_id",
        params![last_seq, last_id],
    )?;
    Ok(batch.len())
}

/// One household's facts and duplicate keys, replacing the old ones.
fn write_facts(
    tx: &Transaction<'_>,
    household: &Household,
    village: &str,
    seq: i64,
    key: &[u8],
    form: &FormDefinition,
) -> Result<(), StorageError> {
    let state = household.state();
    let review = household.review_status(&state);
    let conflicts = household.conflicts();
    let merged_into = state.links.get("merged_into").and_then(|v| v.as_text()).map(str::to_string);
    let final_outcome =
        state.last_visit().and_then(|v| v.outcome).filter(|code| form.outcome(*code).is_some_and(|o| o.is_final));
    let id = state.id.to_string();
    tx.prepare_cached(
        "INSERT INTO household_facts (household_id, village, seq, brief, conflicts, conflict_count, review,
             final_outcome, last_visit_by, visits, merged_into)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (household_id) DO UPDATE SET village = excluded.village, seq = excluded.seq,
             brief = excluded.brief, conflicts = excluded.conflicts, conflict_count = excluded.conflict_count,
             review = excluded.review, final_outcome = excluded.final_outcome,
             last_visit_by = excluded.last_visit_by, visits = excluded.visits, merged_into = excluded.merged_into",
    )?
    .execute(params![
        id,
        village,
        seq,
        json(&brief(&state, village, review, 0))?,
        json(&conflicts.iter().map(|(p, v)| (p.to_string(), v)).collect::<Vec<_>>())?,
        conflicts.len() as i64,
        review.map(|r| r.as_str()),
        final_outcome,
        state.last_visit().map(|v| v.user.as_str()),
        state.visits.len() as i64,
        merged_into,
    ])?;
    tx.prepare_cached("DELETE FROM household_keys WHERE household_id = ?1")?.execute(params![id])?;
    if merged_into.is_some() {
        // A retired household is no longer a family of its own: it suspects nothing.
        return Ok(());
    }
    let mut keys: BTreeSet<(&str, String)> = BTreeSet::new();
    if let Some(kk) = state.answer_text("kk_number").filter(|k| !k.is_empty()) {
        keys.insert(("same_kk", keyed(key, "kk", &kk)));
    }
    for member in state.current_members() {
        if let Some(nik) = member.answers.get("nik").and_then(|v| v.as_text()).filter(|n| !n.is_empty()) {
            keys.insert(("shared_nik", keyed(key, "nik", nik)));
        }
    }
    if let Some(name) = state.answer_text("head_name").map(|n| normalised_name(&n)).filter(|n| !n.is_empty()) {
        let rt = state.answer_text("rt").map(|r| normalised_rt(&r)).unwrap_or_default();
        keys.insert(("same_head_name", keyed(key, "name", &format!("{village}|{rt}|{name}"))));
    }
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO household_keys (kind, key, household_id) VALUES (?1, ?2, ?3)")?;
    for (kind, k) in keys {
        insert.execute(params![kind, k, id])?;
    }
    Ok(())
}

/// Open merge disagreements per survivor household.
fn open_merge_conflicts(tx: &Transaction<'_>) -> Result<HashMap<String, u32>, StorageError> {
    let rows = tx
        .prepare_cached("SELECT survivor, count(*) FROM merge_conflicts WHERE resolved_at IS NULL GROUP BY survivor")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u32)))?
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(rows)
}

/// A household's facts row, as the lists read it.
struct Facts {
    village: String,
    brief: HouseholdBrief,
    conflicts: String,
    review: Option<String>,
    final_outcome: Option<i64>,
    last_visit_by: Option<String>,
    visits: i64,
}

/// The facts of every live (not merged-away) household in `areas`, with conflict counts that
/// include open merge disagreements.
fn facts(tx: &Transaction<'_>, areas: Option<&[String]>) -> Result<Vec<Facts>, StorageError> {
    let merge_open = open_merge_conflicts(tx)?;
    let mut stmt = tx.prepare_cached(
        "SELECT household_id, village, brief, conflicts, conflict_count, review, final_outcome, last_visit_by, visits
         FROM household_facts WHERE merged_into IS NULL ORDER BY village, household_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let village: String = row.get(1)?;
        if !in_areas(&village, areas) {
            continue;
        }
        let id: String = row.get(0)?;
        let mut brief: HouseholdBrief = from_json(&row.get::<_, String>(2)?)?;
        brief.conflicts = row.get::<_, i64>(4)? as u32 + merge_open.get(&id).copied().unwrap_or(0);
        out.push(Facts {
            village,
            brief,
            conflicts: row.get(3)?,
            review: row.get(5)?,
            final_outcome: row.get(6)?,
            last_visit_by: row.get(7)?,
            visits: row.get(8)?,
        });
    }
    Ok(out)
}

/// Visited households of `areas`, filtered by effective review status.
pub(super) fn review_list(
    tx: &Transaction<'_>,
    areas: Option<&[String]>,
    status: Option<ReviewStatus>,
) -> Result<Vec<HouseholdBrief>, StorageError> {
    Ok(facts(tx, areas)?
        .into_iter()
        .filter(|f| f.visits > 0)
        .filter(|f| status.is_none_or(|s| f.review.as_deref() == Some(s.as_str())))
        .map(|f| f.brief)
        .collect())
}

/// A household loaded for a server-side write by `editor`, with its village.
pub(super) fn load(
    tx: &Transaction<'_>,
    id: HouseholdId,
    editor: &Editor,
) -> Result<(Household, String), StorageError> {
    let row: Option<(Vec<u8>, String)> = tx
        .prepare_cached("SELECT doc, village FROM households WHERE id = ?1")?
        .query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((doc, village)) = row else {
        return Err(StorageError::NotFound(format!(
            "no household {id} on the server; copy its id from `pilar review list` or `pilar conflicts`"
        )));
    };
    let household = Household::load(id, &doc, editor.device).map_err(|e| corrupt(format!("household {id}: {e}")))?;
    Ok((household, village))
}

/// Store a server-side change to `household`: into the feed (as written by the editor's
/// server-side device, so the editor's own device receives it too), then the document, then
/// its facts.
pub(super) fn store(
    tx: &Transaction<'_>,
    household: &Household,
    village: &str,
    saved: &Saved,
    editor: &Editor,
) -> Result<(), StorageError> {
    let id = household.id().to_string();
    let received_at = stored_time(editor.now);
    tx.prepare_cached(
        "INSERT INTO changes (hash, household_id, village, device_id, user_name, bytes, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO NOTHING",
    )?
    .execute(params![
        saved.hash.to_string(),
        id,
        village,
        editor.device.to_string(),
        editor.user,
        saved.bytes,
        received_at
    ])?;
    let seq: i64 = tx.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))?;
    let heads = household.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
    tx.prepare_cached("UPDATE households SET doc = ?2, heads = ?3, updated_seq = ?4, updated_at = ?5 WHERE id = ?1")?
        .execute(params![id, household.save(), heads, seq, received_at])?;
    let key = lookup_key(tx)?;
    write_facts(tx, household, village, seq, &key, FormDefinition::default_dtsen())
}

fn retired_note(household: &Household) -> Option<String> {
    household
        .state()
        .links
        .get("merged_into")
        .and_then(|v| v.as_text())
        .map(|s| format!("household {} was merged into {s}; work on {s} instead", household.id()))
}

/// Approve or return a household, as `editor` (the supervisor's server-side device).
pub(super) fn review(
    tx: &Transaction<'_>,
    id: HouseholdId,
    editor: &Editor,
    decision: ReviewDecision,
    comment: Option<&str>,
) -> Result<HouseholdBrief, StorageError> {
    let (mut household, village) = load(tx, id, editor)?;
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
        let open = household.conflicts().len()
            + tx.query_row(
                "SELECT count(*) FROM merge_conflicts WHERE survivor = ?1 AND resolved_at IS NULL",
                params![id.to_string()],
                |r| r.get::<_, i64>(0),
            )? as usize;
        if open > 0 {
            return Err(StorageError::Refused(format!(
                "household {id} has {open} open conflict(s); resolve them (`pilar conflicts`) before approving"
            )));
        }
    }
    let saved = household
        .review(editor, decision, comment, uuid::Uuid::new_v4())
        .map_err(|e| corrupt(format!("household {id}: {e}")))?;
    store(tx, &household, &village, &saved, editor)?;
    let state = household.state();
    Ok(brief(&state, &village, household.review_status(&state), 0))
}

/// Every open conflict in `areas`: fields with several concurrent values, and disagreements a
/// merge left for the supervisor.
pub(super) fn conflicts(
    tx: &Transaction<'_>,
    areas: Option<&[String]>,
    devices: &HashMap<String, (String, String)>,
) -> Result<Vec<ConflictItem>, StorageError> {
    let form = FormDefinition::default_dtsen();
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
                values: values.iter().map(|a| conflict_value(a, devices)).collect(),
            });
        }
    }
    for (survivor, path, other) in open_merge_rows(tx, None)? {
        let Some(f) = by_id.get(&survivor) else { continue };
        let (household, _) = load(tx, survivor, &nobody())?;
        let parsed: FieldPath = path.parse().map_err(|_| corrupt(format!("bad stored path {path:?}")))?;
        let mut values: Vec<ConflictValue> =
            household.field_values(&parsed).unwrap_or_default().iter().map(|a| conflict_value(a, devices)).collect();
        values.push(conflict_value(&other, devices));
        out.push(ConflictItem {
            household: f.village_brief(),
            label: label(form, &path),
            path,
            source: "merge".into(),
            values,
        });
    }
    Ok(out)
}

impl Facts {
    fn village_brief(&self) -> HouseholdBrief {
        let mut b = self.brief.clone();
        b.village.clone_from(&self.village);
        b
    }
}

fn nobody() -> Editor {
    Editor { user: String::new(), device: DeviceId(uuid::Uuid::nil()), now: OffsetDateTime::UNIX_EPOCH }
}

/// Open merge disagreements (survivor, path, the retired household's value), oldest first;
/// `only` limits them to one survivor.
fn open_merge_rows(
    tx: &Transaction<'_>,
    only: Option<HouseholdId>,
) -> Result<Vec<(HouseholdId, String, Attributed)>, StorageError> {
    let only = only.map(|h| h.to_string());
    let rows: Vec<(String, String, String)> = tx
        .prepare_cached(
            "SELECT survivor, path, other FROM merge_conflicts
             WHERE resolved_at IS NULL AND (?1 IS NULL OR survivor = ?1) ORDER BY id",
        )?
        .query_map(params![only], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(s, p, o)| {
            let s: HouseholdId = s.parse().map_err(|_| corrupt(format!("bad household id {s:?}")))?;
            Ok((s, p, from_json(&o)?))
        })
        .collect()
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

/// How a supervisor settles a conflict.
#[derive(Debug, Clone)]
pub enum Choice {
    /// Keep the value at this 1-based position of the listed values.
    Pick(usize),
    /// Write this value, typed as at data entry.
    Value(String),
}

/// Settle the conflict at `path` of household `id`; the merge disagreements at that path are
/// closed too. Refused when nothing is in conflict there any more.
pub(super) fn resolve(
    tx: &Transaction<'_>,
    id: HouseholdId,
    editor: &Editor,
    path: &FieldPath,
    choice: &Choice,
) -> Result<HouseholdBrief, StorageError> {
    let (mut household, village) = load(tx, id, editor)?;
    if let Some(note) = retired_note(&household) {
        return Err(StorageError::Stale(note));
    }
    let text = path.to_string();
    let mut values: Vec<FieldValue> =
        household.field_values(path).unwrap_or_default().into_iter().map(|a| a.value).collect();
    let merge_rows: Vec<Attributed> =
        open_merge_rows(tx, Some(id))?.into_iter().filter(|(_, p, _)| *p == text).map(|(_, _, o)| o).collect();
    if values.len() < 2 && merge_rows.is_empty() {
        return Err(StorageError::Stale(format!(
            "{text} of household {id} is not in conflict (any more); list open conflicts with `pilar conflicts`"
        )));
    }
    values.extend(merge_rows.into_iter().map(|o| o.value));
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
        Choice::Value(raw) => parse_value(path, raw)?,
    };
    let saved = household.resolve(editor, path, Some(value)).map_err(|e| match e {
        sync_core::model::ModelError::BadPath(m) => StorageError::Refused(m),
        other => corrupt(format!("household {id}: {other}")),
    })?;
    tx.execute(
        "UPDATE merge_conflicts SET resolved_by = ?3, resolved_at = ?4
         WHERE survivor = ?1 AND path = ?2 AND resolved_at IS NULL",
        params![id.to_string(), text, editor.user, stored_time(editor.now)],
    )?;
    match saved {
        Some(saved) => store(tx, &household, &village, &saved, editor)?,
        None => {
            let key = lookup_key(tx)?;
            let seq: i64 =
                tx.query_row("SELECT updated_seq FROM households WHERE id = ?1", params![id.to_string()], |r| {
                    r.get(0)
                })?;
            write_facts(tx, &household, &village, seq, &key, FormDefinition::default_dtsen())?;
        }
    }
    let state = household.state();
    Ok(brief(&state, &village, household.review_status(&state), 0))
}

/// A new value typed for the field at `path`, parsed and checked as at data entry.
fn parse_value(path: &FieldPath, raw: &str) -> Result<FieldValue, StorageError> {
    let form = FormDefinition::default_dtsen();
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

/// Suspected duplicate pairs with at least one household in `areas`, minus dismissed pairs.
pub(super) fn duplicates(tx: &Transaction<'_>, areas: Option<&[String]>) -> Result<Vec<DuplicatePair>, StorageError> {
    // Pairs come only from keys shared by a few households: a key held by many (a very common
    // name in one RT) says nothing about any one pair, and pairing n households is n² work.
    let pairs: Vec<(String, String, String)> = tx
        .prepare_cached(
            "WITH shared AS (SELECT kind, key FROM household_keys GROUP BY kind, key HAVING count(*) BETWEEN 2 AND ?1)
             SELECT k1.household_id, k2.household_id, k1.kind FROM shared s
             JOIN household_keys k1 ON k1.kind = s.kind AND k1.key = s.key
             JOIN household_keys k2 ON k2.kind = s.kind AND k2.key = s.key AND k2.household_id > k1.household_id
             WHERE NOT EXISTS (SELECT 1 FROM duplicate_dismissals d WHERE d.a = k1.household_id AND d.b = k2.household_id)
             ORDER BY k1.household_id, k2.household_id, k1.kind",
        )?
        .query_map(params![MAX_SUSPECT_GROUP], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut grouped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (a, b, kind) in pairs {
        grouped.entry((a, b)).or_default().push(kind);
    }
    let mut briefs: HashMap<String, Option<(String, HouseholdBrief)>> = HashMap::new();
    let mut out = Vec::new();
    for ((a, b), reasons) in grouped {
        for id in [&a, &b] {
            if !briefs.contains_key(id) {
                briefs.insert(id.clone(), live_brief(tx, id)?);
            }
        }
        let (Some(Some((va, ba))), Some(Some((vb, bb)))) = (briefs.get(&a), briefs.get(&b)) else { continue };
        if !in_areas(va, areas) && !in_areas(vb, areas) {
            continue;
        }
        out.push(DuplicatePair { a: ba.clone(), b: bb.clone(), reasons });
    }
    Ok(out)
}

/// The village and brief of a household that is not merged away (`None` if it is, or unknown).
fn live_brief(tx: &Transaction<'_>, id: &str) -> Result<Option<(String, HouseholdBrief)>, StorageError> {
    let row: Option<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT village, brief, conflict_count FROM household_facts WHERE household_id = ?1 AND merged_into IS NULL",
        )?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((village, brief, conflicts)) = row else { return Ok(None) };
    let mut brief: HouseholdBrief = from_json(&brief)?;
    let open: i64 = tx.query_row(
        "SELECT count(*) FROM merge_conflicts WHERE survivor = ?1 AND resolved_at IS NULL",
        params![id],
        |r| r.get(0),
    )?;
    brief.conflicts = (conflicts + open) as u32;
    Ok(Some((village, brief)))
}

/// Record that `a` and `b` are different families: the pair is no longer suspected.
pub(super) fn dismiss(
    tx: &Transaction<'_>,
    a: HouseholdId,
    b: HouseholdId,
    user: &str,
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    let (a, b) = if a.to_string() < b.to_string() { (a, b) } else { (b, a) };
    tx.execute(
        "INSERT INTO duplicate_dismissals (a, b, by_user, at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (a, b) DO NOTHING",
        params![a.to_string(), b.to_string(), user, stored_time(now)],
    )?;
    Ok(())
}

/// Villages, enumerators and devices of `areas`, counted from the facts.
pub(super) fn progress(tx: &Transaction<'_>, areas: Option<&[String]>) -> Result<ProgressReport, StorageError> {
    let live = facts(tx, areas)?;
    let in_duplicates: BTreeSet<HouseholdId> =
        duplicates(tx, areas)?.iter().flat_map(|p| [p.a.household, p.b.household]).collect();
    let count = |row: &mut ProgressRow, f: &Facts| {
        row.total += 1;
        if f.visits > 0 {
            row.visited += 1;
        }
        if let Some(code) = f.final_outcome {
            *row.final_outcomes.entry(code).or_default() += 1;
        }
        match f.review.as_deref() {
            Some("awaiting_review") => row.awaiting_review += 1,
            Some("approved") => row.approved += 1,
            Some("returned") => row.returned += 1,
            _ => {}
        }
        row.conflicts += u64::from(f.brief.conflicts);
        if in_duplicates.contains(&f.brief.household) {
            row.duplicates += 1;
        }
    };
    let mut villages: BTreeMap<String, ProgressRow> = BTreeMap::new();
    // Villages assigned in the area appear even before their first household.
    let assigned: Vec<(String, String)> = tx
        .prepare_cached("SELECT user_name, village FROM village_assignments WHERE ended_at IS NULL ORDER BY user_name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut enumerator_villages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (user, village) in &assigned {
        if in_areas(village, areas) {
            villages.entry(village.clone()).or_default();
            enumerator_villages.entry(user.clone()).or_default().insert(village.clone());
        }
    }
    for f in &live {
        count(villages.entry(f.village.clone()).or_default(), f);
    }
    let mut enumerators: Vec<ProgressRow> = Vec::new();
    for (user, theirs) in &enumerator_villages {
        let mut row = ProgressRow { key: user.clone(), ..ProgressRow::default() };
        for f in live.iter().filter(|f| theirs.contains(&f.village)) {
            row.total += 1;
            if f.last_visit_by.as_deref() == Some(user.as_str()) {
                let total = row.total;
                count(&mut row, f);
                row.total = total;
            }
        }
        enumerators.push(row);
    }
    let villages = villages
        .into_iter()
        .map(|(code, mut row)| {
            row.name = sync_core::ids::VillageCode::parse(&code).ok().and_then(|c| c.name()).map(str::to_string);
            row.key = code;
            row
        })
        .collect();
    let mut devices = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT d.user_name, d.id, d.name, d.revoked_at,
                    (SELECT max(b.created_at) FROM sync_batches b WHERE b.device_id = d.id)
             FROM devices d ORDER BY d.user_name, d.registered_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (user, device, name, revoked, last) = row?;
            if enumerator_villages.contains_key(&user) {
                devices.push(sync_core::protocol::DeviceProgress {
                    user,
                    device,
                    name,
                    last_sync_at: last,
                    revoked: revoked.is_some(),
                });
            }
        }
    }
    Ok(ProgressReport { villages, enumerators, devices })
}

/// Device id → (name, user), to name the writers of conflicting values.
pub(super) fn device_names(tx: &Transaction<'_>) -> Result<HashMap<String, (String, String)>, StorageError> {
    Ok(tx
        .prepare_cached("SELECT id, name, user_name FROM devices")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, String>(1)?, r.get::<_, String>(2)?))))?
        .collect::<Result<_, _>>()?)
}

/// The village of a household, for scope checks.
pub(super) fn village_of(conn: &rusqlite::Connection, id: HouseholdId) -> Result<Option<String>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT village FROM households WHERE id = ?1")?
        .query_row(params![id.to_string()], |r| r.get(0))
        .optional()?)
}

/// Households whose id starts with `prefix`, with their villages, in id order.
pub(super) fn with_prefix(
    conn: &rusqlite::Connection,
    prefix: &str,
    limit: u32,
) -> Result<Vec<(HouseholdId, String)>, StorageError> {
    // Ids are stored as lowercase hyphenated UUIDs: a prefix is a range of them ('g' sorts after
    // every hex digit and the dash).
    let mut stmt = conn
        .prepare_cached("SELECT id, village FROM households WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT ?2")?;
    let rows = stmt.query_map(params![prefix, i64::from(limit)], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, village) = row?;
        out.push((id.parse().map_err(|_| corrupt(format!("bad household id {id:?}")))?, village));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_match_whole_code_segments_only() {
        let panca = ["73.14.01".to_string()];
        assert!(in_areas("73.14.01.1001", Some(&panca)));
        assert!(!in_areas("73.14.011.1001", Some(&panca)), "a longer code is another kecamatan");
        assert!(!in_areas("73.14.02.1001", Some(&panca)));
        assert!(in_areas("73.14.02.1001", Some(&["73.14".to_string()])));
        assert!(in_areas("11.01.01.2001", None), "no areas: everywhere");
        assert!(!in_areas("73.14.01.1001", Some(&[])));
    }

    #[test]
    fn head_names_and_rts_compare_as_people_write_them() {
        assert_eq!(normalised_name("  Wette'E   Bin ALI "), normalised_name("wette e bin ali"));
        assert_eq!(normalised_name("Sitti Regapu’u"), "sitti regapu u");
        assert_ne!(normalised_name("La Baso"), normalised_name("La Basso"));
        assert_eq!(normalised_rt("003"), normalised_rt("3"));
        assert_eq!(normalised_rt("000"), "0");
    }
}
