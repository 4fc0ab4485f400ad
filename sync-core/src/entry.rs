//! Data entry on a device: one save action becomes one validated change in the device store.
//!
//! Parsing typed input, validating the state the save would produce against the form, refusing
//! it whole when a rule rejects, and storing document + search columns + outbox row together.
//! A tablet app calls these functions exactly as the `pilar` CLI does.

use crate::finding::Severity;
use crate::form::{FormDefinition, FormSet, MemberAnswers, Problem, Report, Scope, ValidationContext, split_key};
use crate::form::{validate_household, validate_visit};
use crate::ids::VillageCode;
use crate::model::{
    Edits, Household, HouseholdId, HouseholdState, MemberId, ModelError, NewPhoto, Record, VisitId, check_record_value,
};
use crate::photo::{Mime, PhotoId, PhotoKind};
use crate::store::{DeviceStore, StoreError};
use crate::value::FieldValue;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use time::OffsetDateTime;

/// What a successful save produced.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    /// The household saved.
    pub household: HouseholdId,
    /// The hash of the new change, or `None` when the save changed nothing.
    pub change: Option<String>,
    /// Problems that did not block the save (shown to the user, kept with the data).
    pub warnings: Vec<Problem>,
    /// Members added by this save, in the order given.
    pub members_added: Vec<MemberId>,
    /// The visit recorded by this save.
    pub visit: Option<VisitId>,
}

/// Why a save did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Validation rejected the save; nothing was written. The report lists every problem.
    #[error("nothing was saved: {} answer(s) break a rule; fix them and save again", .0.rejects().count())]
    Refused(Report),
    /// The household's village is not one of this device's villages.
    #[error("village {0} is not assigned to this device; households can only be added in assigned villages")]
    OutOfScope(String),
    /// The household records a form version this device does not hold (or the save was made
    /// with a version that is not the household's nor a newer version of it).
    #[error(
        "household is recorded with form {household_form}, which this device cannot save with {device_form}; \
         run `pilar sync` to receive the form versions this device lacks, then save again"
    )]
    FormMismatch {
        /// The household's form key.
        household_form: String,
        /// The device's form key.
        device_form: String,
    },
    /// The household's stored copy is damaged; it is listed for repair from the server.
    #[error(
        "household {0} cannot be read on this device, so nothing was saved; it is listed for repair: run `pilar sync` (or `pilar repair`) to restore it from the server, then save again"
    )]
    AwaitsRepair(HouseholdId),
    /// The file is not a photo Pilar keeps (type by content, size, damaged header).
    /// (Not a `#[from]`/source: the message carries the cause, which a chain would repeat.)
    #[error("nothing was attached: {0}")]
    Photo(crate::photo::PhotoError),
    /// The device store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The document could not be edited.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl From<crate::photo::PhotoError> for EntryError {
    fn from(e: crate::photo::PhotoError) -> EntryError {
        EntryError::Photo(e)
    }
}

fn problem(field: String, rule: &str, value: Option<String>, message: String) -> Problem {
    Problem { field, rule: rule.to_string(), value, severity: Severity::Reject, message }
}

fn scope_prefix(scope: Scope) -> &'static str {
    match scope {
        Scope::Household => "",
        Scope::Member => "member.",
        Scope::Visit => "visit.",
    }
}

/// Parse `field=value` text answers for one scope. Every bad pair is reported at once; an empty
/// value clears the answer (`None`).
pub fn parse_answers(
    form: &FormDefinition,
    scope: Scope,
    pairs: &[(String, String)],
) -> Result<BTreeMap<String, Option<FieldValue>>, Report> {
    let mut out = BTreeMap::new();
    let mut report = Report::default();
    for (name, raw) in pairs {
        match lookup(form, scope, name, &mut report) {
            Some(field) => match field.parse_input(raw) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(f) => report.problems.push(Problem {
                    field: format!("{}{name}", scope_prefix(scope)),
                    rule: f.rule,
                    value: Some(raw.clone()),
                    severity: f.severity,
                    message: f.message,
                }),
            },
            None => continue,
        }
    }
    if report.is_blocking() { Err(report) } else { Ok(out) }
}

/// Parse a JSON object of answers for one scope (as read from an answers file).
pub fn parse_json_answers(
    form: &FormDefinition,
    scope: Scope,
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, Option<FieldValue>>, Report> {
    let mut out = BTreeMap::new();
    let mut report = Report::default();
    for (name, raw) in object {
        if let Some(field) = lookup(form, scope, name, &mut report) {
            match field.coerce_json(raw) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(f) => report.problems.push(Problem {
                    field: format!("{}{name}", scope_prefix(scope)),
                    rule: f.rule,
                    value: Some(raw.to_string()),
                    severity: f.severity,
                    message: f.message,
                }),
            }
        }
    }
    if report.is_blocking() { Err(report) } else { Ok(out) }
}

fn lookup<'f>(
    form: &'f FormDefinition,
    scope: Scope,
    name: &str,
    report: &mut Report,
) -> Option<&'f crate::form::FieldDef> {
    let path = format!("{}{name}", scope_prefix(scope));
    match form.field(scope, name) {
        None => {
            report.problems.push(problem(
                path,
                "unknown_field",
                None,
                format!(
                    "{name} is not a {} field of form {}; see `pilar form` for the field names",
                    scope.as_str(),
                    form.key()
                ),
            ));
            None
        }
        Some(f) if !f.device_editable => {
            report.problems.push(problem(
                path,
                "not_device_editable",
                None,
                format!("{name} ({}) is set by the server and cannot be edited on a device", f.label),
            ));
            None
        }
        Some(f) if f.retired => {
            report.problems.push(problem(
                path,
                "retired_field",
                None,
                format!(
                    "{name} ({}) is retired in form {}: it keeps answers recorded before and is no longer asked",
                    f.label,
                    form.key()
                ),
            ));
            None
        }
        Some(f) => Some(f),
    }
}

/// Keep only the values that are set (for new records, where "clear" means nothing).
pub fn only_set(answers: BTreeMap<String, Option<FieldValue>>) -> BTreeMap<String, FieldValue> {
    answers.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}

/// Problem paths name members by seq when they have one, else by id.
fn member_key(id: MemberId, answers: &BTreeMap<String, FieldValue>) -> String {
    answers.get("seq").and_then(FieldValue::as_int).map(|s| s.to_string()).unwrap_or_else(|| id.to_string())
}

/// Validate the state a save would produce. `touched` lists the problem paths this save wrote:
/// rejections elsewhere were already stored and only block when the visit asks for a complete
/// form (the enumerator must then fix the whole record).
fn validate_after(
    form: &FormDefinition,
    state: &HouseholdState,
    edits: &Edits,
    touched: &Touched,
    today: time::Date,
) -> Report {
    let visit = edits.visit.as_ref();
    let ctx = ValidationContext::for_outcome(form, visit.map(|v| v.outcome), today);
    let members: Vec<MemberAnswers<'_>> = state
        .current_members()
        .map(|m| MemberAnswers { key: member_key(m.id, &m.answers), answers: &m.answers })
        .collect();
    let mut report = validate_household(form, &state.answers, &members, &ctx);
    if let Some(v) = visit {
        let mut answers = v.answers.clone();
        answers.insert("outcome".into(), FieldValue::Int(v.outcome));
        report.merge(validate_visit(form, &answers, &state.answers, &ctx));
        // The keys the model writes beside the answers: the same rules the server applies.
        let record = [
            ("lat", v.lat.map(FieldValue::Decimal)),
            ("lon", v.lon.map(FieldValue::Decimal)),
            ("accuracy_m", v.accuracy_m.map(FieldValue::Decimal)),
            ("note", v.note.clone().map(FieldValue::Text)),
        ];
        for (key, value) in record {
            if let Some(value) = value
                && let Err(p) = check_record_value(Record::Visit, key, &value)
            {
                report.problems.push(problem(format!("visit.{key}"), p.rule, Some(value.to_string()), p.message));
            }
        }
    }
    // A removal's reason is this save's own: checked apart from the already-stored problems below.
    for (id, reason) in &edits.remove_members {
        let value = FieldValue::Text(reason.clone());
        if let Err(p) = check_record_value(Record::Member, "removed_reason", &value) {
            report.problems.push(problem(
                format!("members.{id}.removed_reason"),
                p.rule,
                Some(reason.clone()),
                p.message,
            ));
        }
    }
    if ctx.complete || touched.everything {
        return report;
    }
    let member_keys: BTreeSet<String> = state
        .current_members()
        .filter(|m| touched.members.contains(&m.id))
        .map(|m| format!("members[{}].", member_key(m.id, &m.answers)))
        .collect();
    for p in &mut report.problems {
        let mine = touched.answers.contains(&p.field)
            || p.field.starts_with("visit.")
            || p.field.ends_with(".removed_reason")
            || member_keys.iter().any(|k| p.field.starts_with(k.as_str()))
            // Checks over all members (one head, member count) blame `members`.
            || (p.field == "members" && !touched.members.is_empty());
        if !mine && p.severity == Severity::Reject {
            p.severity = Severity::Warn;
            p.message = format!("{} (already stored; not blocking this save)", p.message);
        }
    }
    report
}

#[derive(Default)]
struct Touched {
    everything: bool,
    answers: BTreeSet<String>,
    members: BTreeSet<MemberId>,
}

fn touched_by(edits: &Edits) -> Touched {
    Touched {
        everything: false,
        answers: edits.answers.keys().cloned().collect(),
        members: edits
            .add_members
            .iter()
            .map(|(id, _)| *id)
            .chain(edits.edit_members.iter().map(|(id, _)| *id))
            .collect(),
    }
}

fn split(report: Report) -> Result<Vec<Problem>, EntryError> {
    if report.is_blocking() { Err(EntryError::Refused(report)) } else { Ok(report.problems) }
}

/// Age in whole years on `today` from a `YYYY-MM-DD` birth date whose month/day may be `98`.
pub fn age_on(birth_date: &str, today: time::Date) -> Option<i64> {
    let mut parts = birth_date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (parts.next()??, parts.next()?, parts.next()?);
    let mut age = i64::from(today.year()) - year;
    let (m, d) = (i64::from(u8::from(today.month())), i64::from(today.day()));
    match (month.filter(|m| *m != 98), day.filter(|d| *d != 98)) {
        (Some(bm), Some(bd)) if (m, d) < (bm, bd) => age -= 1,
        (Some(bm), None) if m < bm => age -= 1,
        _ => {}
    }
    (0..=130).contains(&age).then_some(age)
}

/// Fill `age_years` from `birth_date` wherever a save sets a birth date without an age (domain.md
/// §2.3: age is derived from the birth date when known), so age-based skip logic works.
fn derive_ages(edits: &mut Edits, today: time::Date) {
    let derive = |birth: Option<&FieldValue>| birth.and_then(FieldValue::as_text).and_then(|b| age_on(b, today));
    for (_, answers) in &mut edits.add_members {
        if !answers.contains_key("age_years")
            && let Some(age) = derive(answers.get("birth_date"))
        {
            answers.insert("age_years".into(), FieldValue::Int(age));
        }
    }
    for (_, answers) in &mut edits.edit_members {
        if !answers.contains_key("age_years")
            && let Some(age) = derive(answers.get("birth_date").and_then(Option::as_ref))
        {
            answers.insert("age_years".into(), Some(FieldValue::Int(age)));
        }
    }
}

/// Add a new household in one of the device's villages, with its first answers and members.
pub fn add_household(
    store: &mut DeviceStore,
    form: &FormDefinition,
    village: &VillageCode,
    answers: BTreeMap<String, FieldValue>,
    members: Vec<BTreeMap<String, FieldValue>>,
    now: OffsetDateTime,
) -> Result<Saved, EntryError> {
    let members = members.into_iter().map(|m| (MemberId::random(), m)).collect();
    add_household_with_ids(store, form, village, HouseholdId::random(), answers, members, now)
}

/// [`add_household`] with the household and member ids chosen by the caller, so a seeded test
/// (the convergence model) replays exactly; entry points use [`add_household`].
pub fn add_household_with_ids(
    store: &mut DeviceStore,
    form: &FormDefinition,
    village: &VillageCode,
    id: HouseholdId,
    mut answers: BTreeMap<String, FieldValue>,
    members: Vec<(MemberId, BTreeMap<String, FieldValue>)>,
    now: OffsetDateTime,
) -> Result<Saved, EntryError> {
    if !store.works_in(village)? {
        return Err(EntryError::OutOfScope(village.to_string()));
    }
    answers.insert("village_code".into(), FieldValue::Text(village.to_string()));
    let editor = store.editor(now);
    let mut edits = Edits {
        answers: answers.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        add_members: members,
        ..Edits::default()
    };
    derive_ages(&mut edits, now.date());
    let (household, saved) = Household::create(id, &form.key(), &editor, &edits)?;
    let touched = Touched { everything: true, ..Touched::default() };
    // Nothing is stored until the new household passes validation.
    let warnings = split(validate_after(form, &household.state(), &edits, &touched, now.date()))?;
    let tx = store.write()?;
    tx.save_local(&household, village.as_str(), &saved, crate::model::CREATE_ACTION, now)?;
    tx.commit()?;
    let members_added = edits.add_members.iter().map(|(id, _)| *id).collect();
    Ok(Saved { household: id, change: Some(saved.hash.to_string()), warnings, members_added, visit: None })
}

/// Apply one save action to an existing household: answers, members, a visit.
///
/// Every answer the save carries is the enumerator's confirmation and is written even when the
/// field already holds it ([`Edits::confirmed`] is set here, whatever the caller passed): a visit
/// that re-enters a value a colleague changed at the same time leaves both values as a conflict.
/// Fields the save does not name are not written.
pub fn save(
    store: &mut DeviceStore,
    form: &FormDefinition,
    id: HouseholdId,
    action: &str,
    edits: &Edits,
    now: OffsetDateTime,
) -> Result<Saved, EntryError> {
    let editor = store.editor(now);
    // Read, change and store the household inside one write transaction: a sync applying received
    // changes in another process waits, and so does this save for it; neither overwrites the other.
    let tx = store.write()?;
    let Some(stored) = tx.load_or_list_for_repair(id, now)? else {
        tx.commit()?;
        return Err(EntryError::AwaitsRepair(id));
    };
    let mut household = stored.household;
    let household_form = household.form_key();
    let mut derived = edits.clone();
    match moves_to(&household_form, form) {
        Some(true) => derived.form = Some(form.key()),
        Some(false) => {}
        None => return Err(EntryError::FormMismatch { household_form, device_form: form.key() }),
    }
    derived.confirmed = true;
    derive_ages(&mut derived, now.date());
    let edits = &derived;
    let touched = touched_by(edits);
    let (warnings, saved) = household
        .apply(&editor, action, edits, |after| split(validate_after(form, after, edits, &touched, now.date())))??;
    let members_added = edits.add_members.iter().map(|(id, _)| *id).collect();
    let visit = edits.visit.as_ref().map(|v| v.id);
    let change = match saved {
        Some(saved) => {
            tx.save_local(&household, &stored.village, &saved, action, now)?;
            tx.commit()?;
            Some(saved.hash.to_string())
        }
        None => None,
    };
    Ok(Saved { household: id, change, warnings, members_added, visit })
}

/// Whether a save made with `form` to a household recording `household_form` moves the household
/// to `form` (`Some(true)`: a newer version of its form), keeps it (`Some(false)`: the same
/// version), or cannot be made (`None`).
fn moves_to(household_form: &str, form: &FormDefinition) -> Option<bool> {
    if household_form == form.key() {
        return Some(false);
    }
    match split_key(household_form) {
        Some((id, version)) if id == form.id && version < form.version => Some(true),
        _ => None,
    }
}

/// The form a save to household `id` is parsed and checked with: the version new visits use in
/// its village when that is a newer version of the household's form (the save then moves the
/// household to it), else the version the household records. Refused when the device does not
/// hold the household's version: the next sync delivers it.
pub fn form_for_household(store: &DeviceStore, id: HouseholdId) -> Result<Arc<FormDefinition>, EntryError> {
    let forms = store.forms()?;
    let stored = match store.load(id) {
        Ok(stored) => stored,
        // A copy that does not load: the save lists it for repair (`save`), whatever the form.
        Err(StoreError::Model(_)) => match store.village_of(id)? {
            Some(village) => return Ok(store.form_for_village(&forms, &village)?),
            None => return Err(StoreError::NoSuchHousehold(id.to_string()).into()),
        },
        Err(e) => return Err(e.into()),
    };
    let current = store.form_for_village(&forms, &stored.village)?;
    let household_form = stored.household.form_key();
    if moves_to(&household_form, &current).is_some() {
        return Ok(current);
    }
    match forms.get(&household_form) {
        Some(form) => Ok(Arc::clone(form)),
        None => Err(EntryError::FormMismatch { household_form, device_form: current.key() }),
    }
}

/// The form a household is shown with: the version it records, or, when this device does not hold
/// that version yet, the newest it holds of the same form (`false`: not the household's own).
pub fn form_for_showing(forms: &FormSet, household_form: &str) -> Option<(Arc<FormDefinition>, bool)> {
    if let Some(form) = forms.get(household_form) {
        return Some((Arc::clone(form), true));
    }
    let id = split_key(household_form).map(|(id, _)| id)?;
    forms.newest(id).map(|form| (Arc::clone(form), false))
}

/// What attaching a photo did.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoAdded {
    /// The household it is attached to.
    pub household: HouseholdId,
    /// Its content address.
    pub photo: PhotoId,
    /// What it shows.
    pub kind: PhotoKind,
    /// Its type, from its content.
    pub mime: Mime,
    /// Its size in bytes.
    pub bytes: u64,
    /// Width and height in pixels, from its header.
    pub size_px: (u32, u32),
    /// The EXIF GPS position the camera wrote, reported and never stored or trusted.
    pub exif_gps: Option<(f64, f64)>,
    /// The change recording the reference, or `None` when the household already referenced it.
    pub change: Option<String>,
    /// Whether the store already held these bytes (attached elsewhere): they are kept once.
    pub bytes_already_kept: bool,
}

/// Attach a photo to a household: check the file by its content, keep its bytes as given under
/// its SHA-256, record the reference (`photos.<sha256>`) as one change, and queue it for upload,
/// all in one write transaction.
pub fn add_photo(
    store: &mut DeviceStore,
    id: HouseholdId,
    kind: PhotoKind,
    bytes: &[u8],
    now: OffsetDateTime,
) -> Result<PhotoAdded, EntryError> {
    let inspected = crate::photo::inspect(bytes)?;
    let photo = PhotoId::of_bytes(bytes);
    let editor = store.editor(now);
    let tx = store.write()?;
    let Some(stored) = tx.load_or_list_for_repair(id, now)? else {
        tx.commit()?;
        return Err(EntryError::AwaitsRepair(id));
    };
    let mut household = stored.household;
    let edits = Edits {
        add_photos: vec![NewPhoto { id: photo.clone(), kind, bytes: bytes.len() as u64, mime: inspected.mime }],
        ..Edits::default()
    };
    let ((), saved) = household
        .apply(&editor, "photo", &edits, |_| Ok::<(), std::convert::Infallible>(()))?
        .unwrap_or_else(|never| match never {});
    if let Some(saved) = &saved {
        tx.save_local(&household, &stored.village, saved, "photo", now)?;
    }
    let new_bytes = tx.keep_photo(id, &photo, inspected.mime, kind, bytes, now)?;
    tx.commit()?;
    Ok(PhotoAdded {
        household: id,
        photo,
        kind,
        mime: inspected.mime,
        bytes: bytes.len() as u64,
        size_px: (inspected.width, inspected.height),
        exif_gps: inspected.exif_gps,
        change: saved.map(|s| s.hash.to_string()),
        bytes_already_kept: !new_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::age_on;
    use time::macros::date;

    #[test]
    fn age_counts_whole_years_and_tolerates_unknown_parts() {
        let today = date!(2026 - 11 - 20);
        assert_eq!(age_on("1985-07-15", today), Some(41));
        assert_eq!(age_on("1985-12-15", today), Some(40));
        assert_eq!(age_on("1985-11-21", today), Some(40));
        assert_eq!(age_on("1985-11-20", today), Some(41));
        assert_eq!(age_on("1985-98-98", today), Some(41));
        assert_eq!(age_on("1985-12-98", today), Some(40));
        assert_eq!(age_on("2030-01-01", today), None);
        assert_eq!(age_on("garbage", today), None);
    }

    #[test]
    fn a_retired_field_is_no_longer_answered_and_never_required() {
        use crate::form::{FormDefinition, Required, Scope};
        let mut form = FormDefinition::default_dtsen().clone();
        form.version += 1;
        let field = form.household.iter_mut().find(|f| f.name == "rt").expect("rt");
        field.retired = true;
        field.required = Required::Always;
        let pairs = [("rt".to_string(), "005".to_string())];
        let refused = super::parse_answers(&form, Scope::Household, &pairs).expect_err("retired");
        assert_eq!(refused.problems[0].rule, "retired_field");
        assert!(refused.problems[0].message.contains("no longer asked"), "{}", refused.problems[0].message);
        let ctx = crate::form::ValidationContext::for_outcome(&form, Some(1), date!(2026 - 11 - 20));
        let report = crate::form::validate_household(&form, &Default::default(), &[], &ctx);
        assert!(!report.problems.iter().any(|p| p.field == "rt"), "a retired field is never required");
    }
}
