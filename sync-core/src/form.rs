//! Questionnaires as data: versioned JSON form definitions, skip logic, input parsing and validation.
//!
//! A [`FormDefinition`] (`id@version`) lists the fields of three scopes — household, member,
//! visit — with their types, choices, ranges, requiredness and skip conditions, the visit outcomes,
//! and cross-field checks. Pilar ships one default form, the DTSEN ground check of domain.md §2
//! ([`FormDefinition::default_dtsen`], from `sync-core/forms/dtsen-ground-check@1.json`).
//!
//! Code map:
//! - `definition`: the definition types and the consistency checks a definition must pass to load.
//! - `condition`: skip logic ([`Condition`]) and the scoped [`AnswerView`] it reads.
//! - `input`: typed text and JSON answers to [`FieldValue`]s ([`FieldDef::parse_input`],
//!   [`FieldDef::coerce_json`]); `Ok(None)` means "no answer".
//! - `evolution`: whether a new version keeps older households readable ([`check_evolution`], the
//!   rules a publish is checked against) and what changed ([`diff`]).
//! - `set`: the versions a peer holds by key ([`FormSet`]); a household is read with the version
//!   its key names ([`split_key`]).
//! - `validate`: [`validate_household`], [`validate_member`], [`validate_visit`] → a [`Report`] of
//!   every [`Problem`] at once; [`check_field`]: one value against its field's own rules, the
//!   check the server makes on every value a device sends; `builtin`: the household checks that
//!   span all members.
//!
//! Invariants: validation never stops at the first problem; a problem's `message` never carries
//! personal data (names, identifiers, dates, free text, coordinates), only its `value` does; this
//! module never reads the clock (the caller passes `today` in [`ValidationContext`]) and never
//! decides which fields a device may edit (`device_editable` is enforced by the model and server).
//!
//! [`FieldValue`]: crate::value::FieldValue

mod builtin;
mod condition;
mod definition;
mod evolution;
mod input;
mod set;
mod validate;

pub use condition::{AnswerView, Comparison, Condition};
pub use definition::{
    BuiltinCheck, CheckDef, Choice, FieldDef, FieldKind, FormDefinition, FormError, OutcomeDef, Pattern, Required,
    Scope,
};
pub use evolution::{Difference, EvolutionProblem, check_evolution, diff};
pub use set::{FormSet, split_key};
pub use validate::{
    MemberAnswers, Problem, Report, ValidationContext, check_field, validate_household, validate_member, validate_visit,
};
