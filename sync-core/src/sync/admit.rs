//! The server's checks on one pushed household batch, before anything is stored: every change is
//! well-formed and written by the calling device; the paths it writes are allowed for the caller's
//! role; its values are scalars of the right type for form fields. Sans-IO: the caller loads the
//! stored document and stores what is admitted.

use crate::form::{FieldKind, FormDefinition, Scope};
use crate::model::{
    DeviceId, Household, HouseholdId, MEMBER_REMOVAL_KEYS, ModelError, Place, ROOT_MAPS, VISIT_KEYS, Write, WrittenOp,
};
use crate::protocol::Role;
use crate::value::FieldValue;
use automerge::{Change, ObjType};

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

/// Check one pushed household batch from `device` (with `role`) against the stored document.
pub fn admit(
    existing: Option<Household>,
    id: HouseholdId,
    pushed: &[Vec<u8>],
    device: DeviceId,
    role: Role,
    form: &FormDefinition,
) -> Verdict {
    let actor = device.actor();
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
    let mut household = match existing {
        Some(h) => h,
        None => Household::empty(id, device),
    };
    changes.retain(|c| !household.has_change(&c.hash()));
    if changes.is_empty() {
        return Verdict::AlreadyKnown;
    }
    let bytes: Vec<Vec<u8>> = changes.iter_mut().map(|c| c.bytes().into_owned()).collect();
    match household.apply_changes(&bytes) {
        Ok(_) => {}
        Err(ModelError::MissingDependencies { .. }) => return Verdict::NeedFull,
        Err(e) => return reject("malformed_change", e.to_string()),
    }
    if let Err(e) = household.check_layout() {
        return reject("invalid_layout", e.to_string());
    }
    let ops = household.written_ops(&changes);
    if let Some(problem) = check_ops(&ops, is_new, role, form) {
        return reject(problem.0, problem.1);
    }
    let new_changes = changes.iter().zip(bytes).map(|(c, b)| (c.hash().to_string(), b)).collect();
    Verdict::Admit(Box::new(Admitted { household, new_changes }))
}

fn type_fits(kind: &FieldKind, value: &FieldValue) -> bool {
    match kind {
        FieldKind::Integer { .. } | FieldKind::SelectOne { .. } | FieldKind::MultiSelect { .. } => {
            matches!(value, FieldValue::Int(_))
        }
        FieldKind::Decimal { .. } => matches!(value, FieldValue::Int(_) | FieldValue::Decimal(_)),
        FieldKind::Boolean => matches!(value, FieldValue::Bool(_)),
        FieldKind::Text { .. }
        | FieldKind::Date { .. }
        | FieldKind::Nik { .. }
        | FieldKind::KkNumber
        | FieldKind::VillageCode
        | FieldKind::Gps => matches!(value, FieldValue::Text(_)),
    }
}

/// Scalar keys of the document root, besides the top-level maps.
const ROOT_SCALARS: [&str; 3] = ["schema", "form", "household_id"];

/// The first thing wrong with the written operations, as (code, reason).
fn check_ops(ops: &[WrittenOp], is_new: bool, role: Role, form: &FormDefinition) -> Option<(&'static str, String)> {
    for op in ops {
        let field_check = |scope: Scope, extra: &[&str]| -> Option<(&'static str, String)> {
            match &op.write {
                Write::Scalar(Some(v)) => match form.field(scope, &op.key) {
                    Some(def) if !def.device_editable => Some((
                        "not_device_editable",
                        format!(
                            "{} ({}) is set by the server and cannot be written from a device",
                            def.name, def.label
                        ),
                    )),
                    Some(def) if !type_fits(&def.kind, v) => Some((
                        "invalid_value",
                        format!(
                            "{} ({}) must be {}; the value sent has the wrong type",
                            def.name,
                            def.label,
                            def.kind.describe()
                        ),
                    )),
                    Some(_) => None,
                    None if extra.contains(&op.key.as_str()) => None,
                    None => Some((
                        "unknown_field",
                        format!("{} is not a {} field of form {}", op.key, scope.as_str(), form.key()),
                    )),
                },
                Write::Scalar(None) => {
                    Some(("invalid_value", format!("{} holds a value of an unsupported type", op.key)))
                }
                Write::Delete => None,
                Write::Object(_) | Write::Other => {
                    Some(("invalid_layout", format!("{} must be a plain value, not an object", op.key)))
                }
            }
        };
        let problem = match &op.place {
            Place::Review if role == Role::Enumerator => {
                Some(("review_forbidden", "enumerators cannot write review fields; a supervisor reviews".to_string()))
            }
            Place::Root => match (&op.write, is_new) {
                (Write::Scalar(_) | Write::Object(ObjType::Map), true)
                    if ROOT_SCALARS.contains(&op.key.as_str()) || ROOT_MAPS.contains(&op.key.as_str()) =>
                {
                    None
                }
                _ => Some((
                    "invalid_layout",
                    format!("the change rewrites the document root ({}); only a new household creates it", op.key),
                )),
            },
            Place::Answers => field_check(Scope::Household, &[]),
            Place::Member(Some(_)) => field_check(Scope::Member, &MEMBER_REMOVAL_KEYS),
            Place::Visit(Some(_)) => field_check(Scope::Visit, &VISIT_KEYS),
            Place::Member(None) | Place::Visit(None) => match (&op.write, op.key.parse::<uuid::Uuid>()) {
                (Write::Object(ObjType::Map), Ok(_)) => None,
                _ => Some(("invalid_layout", format!("members and visits hold maps keyed by uuid, not {:?}", op.key))),
            },
            Place::Review | Place::Links | Place::Photos => match &op.write {
                Write::Scalar(_) | Write::Delete | Write::Object(ObjType::Map) => None,
                _ => Some(("invalid_layout", format!("{} must be a plain value or a map", op.key))),
            },
            Place::Unknown => Some(("invalid_layout", "the change writes outside the household layout".to_string())),
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}
