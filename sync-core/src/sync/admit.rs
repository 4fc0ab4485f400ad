//! The server's checks on one pushed household batch, before anything is stored: every change is
//! well-formed, written by the calling device and names the calling user and a plausible time
//! (`writer`); every operation is allowed at its place by the path policy (`paths`); every value
//! written to a form field passes the field's rules ([`check_field`], the device's own check) and
//! every record key its own (`model::record`). Sans-IO: the caller loads the stored document,
//! passes the time, and stores what is admitted.
//!
//! Every written operation is checked, not only the values left at the end: a bad value
//! overwritten later in the same batch stays in the history that travels to every device.

mod paths;
mod writer;

pub use paths::{Area, Operation, PATH_RULES, PathRule, Permission, path_rule};
pub use writer::CLOCK_SKEW;

use crate::finding::Severity;
use crate::form::{FieldDef, FieldKind, FormDefinition, FormSet, Scope, ValidationContext, check_field, split_key};
use crate::model::{
    DeviceId, Household, HouseholdId, MEMBER_REMOVAL_KEYS, ModelError, Place, ROOT_MAPS, Record, RecordKeys,
    VISIT_KEYS, Write, WrittenOp, check_record_value,
};
use crate::photo::{BadPhotoId, PHOTO_KEYS, PhotoId};
use crate::value::FieldValue;
use automerge::{Change, ObjType};
use std::collections::HashSet;
use time::OffsetDateTime;

/// Who pushes, as the server knows them, and when: what every pushed change must agree with.
#[derive(Debug, Clone, Copy)]
pub struct Pusher<'a> {
    /// The signed-in user's name: every change's message and every visit must name it.
    pub user: &'a str,
    /// The calling device: the only actor admitted, and the device every visit must name.
    pub device: DeviceId,
    /// When the device was registered (its first login): nothing it sends is dated much earlier.
    pub registered_at: OffsetDateTime,
    /// The server's clock: nothing is dated much later.
    pub now: OffsetDateTime,
}

/// The changes of one household that passed every check.
#[derive(Debug)]
pub struct Admitted {
    /// The document with the changes applied, ready to save.
    pub household: Household,
    /// The new changes (hash hex, bytes), in causal order; already-known ones are left out.
    pub new_changes: Vec<(String, Vec<u8>)>,
}

/// The verdict on one pushed household.
#[derive(Debug)]
pub enum Verdict {
    /// Store these (boxed: a loaded document is large, the other verdicts are small).
    Admit(Box<Admitted>),
    /// Every change was already stored: acknowledge, store nothing.
    AlreadyKnown,
    /// The changes depend on history the server lacks: ask the device for the whole household.
    NeedFull,
    /// Refuse all of the household's changes in this batch.
    Reject {
        /// Stable code.
        code: &'static str,
        /// Lowercase sentence.
        reason: String,
    },
}

fn reject(code: &'static str, reason: impl Into<String>) -> Verdict {
    Verdict::Reject { code, reason: reason.into() }
}

/// Check one pushed household batch from `pusher`'s device against the stored document. Values
/// are checked with the form version the household records after the batch (`forms` holds every
/// version the checker knows); a batch may move the household to a newer version of its form.
pub fn admit(
    existing: Option<Household>,
    id: HouseholdId,
    pushed: &[Vec<u8>],
    pusher: &Pusher<'_>,
    forms: &FormSet,
) -> Verdict {
    let actor = pusher.device.actor();
    let mut changes = Vec::with_capacity(pushed.len());
    for bytes in pushed {
        match Change::from_bytes(bytes.clone()) {
            Ok(c) => changes.push(c),
            Err(e) => return reject("malformed_change", format!("a change of household {id} is not readable ({e})")),
        }
    }
    if let Some(c) = changes.iter().find(|c| c.actor_id() != &actor) {
        let writer =
            DeviceId::from_actor(c.actor_id()).map(|d| d.to_string()).unwrap_or_else(|| "an unknown actor".into());
        return reject(
            "foreign_actor",
            format!(
                "a change of household {id} was written by device {writer}, not by this device; a device can only send its own changes"
            ),
        );
    }
    let is_new = existing.is_none();
    let before_form = existing.as_ref().map(Household::form_key);
    let mut household = match existing {
        Some(h) => h,
        None => Household::empty(id, pusher.device),
    };
    changes.retain(|c| !household.has_change(&c.hash()));
    if changes.is_empty() {
        return Verdict::AlreadyKnown;
    }
    let before = household.record_keys();
    let bytes: Vec<Vec<u8>> = changes.iter_mut().map(|c| c.bytes().into_owned()).collect();
    match household.apply_changes(&bytes) {
        Ok(_) => {}
        Err(ModelError::MissingDependencies { .. }) => return Verdict::NeedFull,
        Err(e) => return reject("malformed_change", e.to_string()),
    }
    if let Err(e) = household.check_layout() {
        return reject("invalid_layout", e.to_string());
    }
    // Well-formed (applied above, so Automerge's own checks ran first); now who wrote it.
    for change in &changes {
        if let Err(why) = writer::check_change(change, pusher) {
            return reject("forged_writer", format!("a change of household {id} {why}"));
        }
    }
    let form_key = household.form_key();
    let Some(form) = forms.get(&form_key) else {
        return reject(
            "unknown_form",
            format!(
                "household {id} is recorded with form {form_key:?}, which this server has not published; \
                 an admin publishes it (pilar form publish), or the device updates pilar"
            ),
        );
    };
    let ops = household.written_ops(&changes);
    let batch = Batch { is_new, before, pusher, form, forms, before_form: before_form.as_deref() };
    if let Some((code, reason)) = batch.check_ops(&ops) {
        return reject(code, format!("household {id}: {reason}"));
    }
    // A photo reference is whole when it is recorded: every key, so the server can size, type and
    // attribute the upload that follows.
    let state = household.state();
    for (key, photo) in state.photos.iter().filter(|(key, _)| !batch.before.photos.contains(*key)) {
        let whole = !photo.kind.is_empty()
            && !photo.mime.is_empty()
            && photo.bytes > 0
            && !photo.taken_at.is_empty()
            && !photo.by.is_empty()
            && !photo.device.is_empty();
        if !whole {
            return reject(
                "invalid_layout",
                format!("household {id}: photos.{key} lacks keys; a photo reference holds {}", PHOTO_KEYS.join(", ")),
            );
        }
    }
    let new_changes = changes.iter().zip(bytes).map(|(c, b)| (c.hash().to_string(), b)).collect();
    Verdict::Admit(Box::new(Admitted { household, new_changes }))
}

/// Scalar keys of the document root, besides the top-level maps.
const ROOT_SCALARS: [&str; 3] = ["schema", "form", "household_id"];

/// A refusal: code and lowercase reason.
type Refusal = (&'static str, String);

/// What the operations of one batch are checked against.
struct Batch<'a> {
    /// The household is new to the server: this batch creates its root.
    is_new: bool,
    /// The member and visit keys the stored document held before the batch.
    before: RecordKeys,
    pusher: &'a Pusher<'a>,
    /// The form version the household records after the batch: values are checked with it.
    form: &'a FormDefinition,
    /// Every version the checker knows.
    forms: &'a FormSet,
    /// The form key the stored document recorded before the batch (`None` for a new household).
    before_form: Option<&'a str>,
}

impl Batch<'_> {
    /// The first operation the path policy, the value rules or the writer rules refuse.
    fn check_ops(&self, ops: &[WrittenOp]) -> Option<Refusal> {
        let mut created: HashSet<(Area, String)> = HashSet::new();
        ops.iter().find_map(|op| self.check_op(op, &mut created).err())
    }

    fn check_op(&self, op: &WrittenOp, created: &mut HashSet<(Area, String)>) -> Result<(), Refusal> {
        let area = Area::of(&op.place);
        let path = place_path(&op.place);
        let operation = match &op.write {
            Write::Scalar(_) => Operation::Put,
            Write::Delete => Operation::Delete,
            Write::Object(ObjType::Map) => Operation::Create,
            Write::Object(_) | Write::Other => {
                return Err((
                    "invalid_layout",
                    format!("{path}{}: a household holds maps and plain values only", op.key),
                ));
            }
        };
        match path_rule(area).permission(operation) {
            Permission::Refused { code, why } => Err((code, format!("{path}{}: {why}", op.key))),
            Permission::NewHousehold if !self.is_new && operation == Operation::Put && op.key == "form" => {
                self.check_form_move(&op.write)
            }
            Permission::NewHousehold => {
                let layout_key = match operation {
                    Operation::Put => ROOT_SCALARS.contains(&op.key.as_str()),
                    _ => ROOT_MAPS.contains(&op.key.as_str()),
                };
                if self.is_new && layout_key {
                    Ok(())
                } else {
                    Err((
                        "invalid_layout",
                        format!("the change rewrites the document root ({}); only a new household creates it", op.key),
                    ))
                }
            }
            Permission::NewUuidKey => {
                let existing = match area {
                    Area::Members => &self.before.members,
                    _ => &self.before.visits,
                };
                if op.key.parse::<uuid::Uuid>().is_err() {
                    Err(("invalid_layout", format!("{path}: members and visits are maps keyed by uuid")))
                } else if existing.contains(&op.key) || !created.insert((area, op.key.clone())) {
                    Err((
                        "invalid_layout",
                        format!(
                            "{path}{} is created again; a new member or visit takes a new uuid, and creating one again would hide every edit made to it",
                            op.key
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
            Permission::NewPhotoKey => {
                if op.key.parse::<PhotoId>().is_err() {
                    Err((
                        "invalid_layout",
                        format!("{path}: photos is a map keyed by each photo's SHA-256 ({BadPhotoId})"),
                    ))
                } else if self.before.photos.contains(&op.key) || !created.insert((area, op.key.clone())) {
                    Err((
                        "invalid_layout",
                        format!(
                            "{path}{} is created again; a photo is referenced once, and creating the reference again would replace its writer",
                            op.key
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
            Permission::Field | Permission::FieldOrRecordKey | Permission::NewRecordOnly => {
                let permission = path_rule(area).permission(operation);
                let recorded = match &op.place {
                    Place::Visit(Some(visit)) => self.before.visits.contains(&visit.to_string()).then_some("a visit"),
                    Place::Photo(Some(photo)) => self.before.photos.contains(photo).then_some("a photo reference"),
                    _ => None,
                };
                if permission == Permission::NewRecordOnly
                    && let Some(what) = recorded
                {
                    return Err((
                        "invalid_layout",
                        format!("{path}{}: {what} is recorded once and never edited", op.key),
                    ));
                }
                self.check_key(op, &path, permission)
            }
        }
    }

    /// A write of the root `form` key of a stored household: only to a newer version of the same
    /// form that the checker knows (a visit made with a newer version records it).
    fn check_form_move(&self, write: &Write) -> Result<(), Refusal> {
        let Write::Scalar(Some(FieldValue::Text(key))) = write else {
            return Err(("invalid_layout", "form: a household's form is a key such as dtsen-ground-check@2".into()));
        };
        let before = self.before_form.and_then(split_key);
        match (before, split_key(key)) {
            (Some((old_id, old_version)), Some((id, version))) if id == old_id && version > old_version => {
                if self.forms.get(key).is_some() {
                    Ok(())
                } else {
                    Err((
                        "unknown_form",
                        format!("form: {key} is not published on this server; an admin publishes it first"),
                    ))
                }
            }
            _ => Err((
                "invalid_layout",
                format!(
                    "form: a household moves only to a newer version of its own form ({}), not to {key}",
                    self.before_form.unwrap_or("none recorded")
                ),
            )),
        }
    }

    /// A put or delete of one key of answers, a member or a visit.
    fn check_key(&self, op: &WrittenOp, path: &str, permission: Permission) -> Result<(), Refusal> {
        let (scope, record, record_keys): (Scope, Option<Record>, &[&str]) = match op.place {
            Place::Member(_) => (Scope::Member, Some(Record::Member), &MEMBER_REMOVAL_KEYS),
            Place::Visit(_) => (Scope::Visit, Some(Record::Visit), &VISIT_KEYS),
            Place::Photo(_) => (Scope::Household, Some(Record::Photo), &PHOTO_KEYS),
            _ => (Scope::Household, None, &[]),
        };
        let key = op.key.as_str();
        let form_field = if record == Some(Record::Photo) { None } else { self.form.field(scope, key) };
        if let Some(def) = form_field {
            if !def.device_editable {
                return Err((
                    "not_device_editable",
                    format!(
                        "{path}{key} ({}) is set by the server and cannot be written or deleted from a device",
                        def.label
                    ),
                ));
            }
            return match &op.write {
                Write::Scalar(Some(value)) => self.check_value(def, path, value),
                Write::Scalar(None) => Err(unsupported(path, key)),
                _ => Ok(()),
            };
        }
        match (record, record_keys.contains(&key)) {
            (Some(record), true) if permission != Permission::Field => match &op.write {
                Write::Scalar(Some(value)) => {
                    check_record_value(record, key, value).map_err(|p| {
                        ("invalid_value", format!("{path}{key} breaks the rule `{}`: {}", p.rule, p.message))
                    })?;
                    let at = path.trim_end_matches('.');
                    writer::check_record_key(record, at, key, value, self.pusher).map_err(|why| ("forged_writer", why))
                }
                Write::Scalar(None) => Err(unsupported(path, key)),
                _ => Ok(()),
            },
            (Some(_), true) => Err((
                "invalid_layout",
                format!("{path}{key} records a removal, which a device never undoes or rewrites"),
            )),
            _ if record == Some(Record::Photo) => Err((
                "invalid_layout",
                format!("{path}{key} is not a key of a photo reference ({})", PHOTO_KEYS.join(", ")),
            )),
            _ => Err((
                "unknown_field",
                format!("{path}{key} is not a {} field of form {}", scope.as_str(), self.form.key()),
            )),
        }
    }

    /// A form field's value against the field's own rules; the reason names the field and the
    /// rules broken, never the value.
    fn check_value(&self, def: &FieldDef, path: &str, value: &FieldValue) -> Result<(), Refusal> {
        // Tomorrow by the server's clock plus the skew: a device a time zone ahead may enter
        // today's date while the server's day has not begun.
        let today = (self.pusher.now + CLOCK_SKEW).date();
        let ctx = ValidationContext { today, complete: false };
        let mut rules: Vec<String> = check_field(def, value, &ctx)
            .into_iter()
            .filter(|p| p.severity == Severity::Reject)
            .map(|p| p.rule)
            .collect();
        if rules.is_empty() {
            return Ok(());
        }
        rules.dedup();
        Err((
            "invalid_value",
            format!(
                "{path}{} ({}) breaks the rule{} {}: it must be {}; the value is not repeated here, correct it on the device",
                def.name,
                def.label,
                if rules.len() > 1 { "s" } else { "" },
                rules.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "),
                expected(&def.kind)
            ),
        ))
    }
}

fn unsupported(path: &str, key: &str) -> Refusal {
    ("invalid_value", format!("{path}{key} holds a value of a type Pilar never writes (bytes, null or a counter)"))
}

/// Where a place is, as a path prefix for messages: `answers.`, `members.<id>.`, `review.`.
fn place_path(place: &Place) -> String {
    match place {
        Place::Root => String::new(),
        Place::Answers => "answers.".into(),
        Place::Member(None) => "members.".into(),
        Place::Member(Some(m)) => format!("members.{m}."),
        Place::Visit(None) => "visits.".into(),
        Place::Visit(Some(v)) => format!("visits.{v}."),
        Place::Review => "review.".into(),
        Place::Links => "links.".into(),
        Place::Photo(None) => "photos.".into(),
        Place::Photo(Some(p)) => format!("photos.{p}."),
        Place::Unknown => "(outside the layout) ".into(),
    }
}

/// What a field's values look like, in words that never quote a value.
fn expected(kind: &FieldKind) -> String {
    match kind {
        FieldKind::Text { max_len, pattern_hint, .. } => {
            let mut words = "text".to_string();
            if let Some(max) = max_len {
                words.push_str(&format!(" of at most {max} characters"));
            }
            if let Some(hint) = pattern_hint {
                words.push_str(&format!(" ({hint})"));
            }
            words
        }
        FieldKind::Integer { min, max, .. } => match (min, max) {
            (Some(min), Some(max)) => format!("a whole number from {min} to {max}"),
            _ => kind.describe().into(),
        },
        FieldKind::Nik { .. } | FieldKind::KkNumber => format!(
            "{} (PP KK CC DDMMYY SSSS: a province from 11, regency and kecamatan not 00, a valid day and month, serial not 0000)",
            kind.describe()
        ),
        FieldKind::VillageCode => format!("{} from the Kemendagri region table", kind.describe()),
        _ => kind.describe().into(),
    }
}
