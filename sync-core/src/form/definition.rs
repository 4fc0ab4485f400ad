//! Form definition types (fields, kinds, choices, outcomes, checks) and the checks a definition must
//! pass before any answer is validated against it.
//!
//! A definition that loads through [`FormDefinition::from_json`] is internally consistent: field
//! names are unique per scope, every condition and check names fields that exist in a scope it may
//! read, choice codes are unique, ranges are ordered and text patterns compile. Validation code
//! relies on that and never re-checks the definition.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::condition::{Comparison, Condition};
use crate::finding::Severity;
use crate::value::FieldValue;

/// Which part of a household a field or check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Household-level answers (Blok I, III, V of the questionnaire).
    Household,
    /// One member's answers (Blok IV); conditions read only that member's answers.
    Member,
    /// One visit's answers; conditions read the visit's answers, then the household's.
    Visit,
}

impl Scope {
    /// Every scope, in the order a form lists them.
    pub const ALL: [Scope; 3] = [Scope::Household, Scope::Member, Scope::Visit];

    /// The lowercase name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Household => "household",
            Scope::Member => "member",
            Scope::Visit => "visit",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A versioned questionnaire: what is asked of a household, its members and each visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    /// Stable form name, e.g. `dtsen-ground-check`; together with `version` it names the form.
    pub id: String,
    /// Version number; a published version never changes, edits make a new version.
    pub version: u32,
    /// Human title shown to users.
    pub title: String,
    /// Free notes for form authors (sources, unverified labels); never shown in the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Household-scope fields, in the order they are asked.
    pub household: Vec<FieldDef>,
    /// Member-scope fields, asked once per household member.
    pub member: Vec<FieldDef>,
    /// Visit-scope fields, asked once per visit.
    pub visit: Vec<FieldDef>,
    /// The visit outcomes an enumerator may record.
    pub outcomes: Vec<OutcomeDef>,
    /// Cross-field rules, including the named built-ins.
    #[serde(default)]
    pub checks: Vec<CheckDef>,
}

/// One question: its name, label, answer type, requiredness and skip logic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Machine name, unique in its scope: lowercase letters, digits and `_`.
    pub name: String,
    /// The question's label in Bahasa Indonesia, as enumerators see it.
    pub label: String,
    /// The answer type and its rules.
    pub kind: FieldKind,
    /// When an answer must be present (only ever while the field is relevant).
    #[serde(default)]
    pub required: Required,
    /// Skip logic: the field is asked only while this holds; `None` means always asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<Condition>,
    /// A short lowercase hint on what to enter, appended to validation messages for this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// False for server-only fields (e.g. `dtsen_decile`); the model and server refuse device edits.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub device_editable: bool,
    /// Specific personal data under UU PDP Art. 4 (health, disability, pregnancy, child nutrition).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sensitive: bool,
    /// Kept for answers recorded under an older version, no longer asked: never required (a
    /// later version retires a field instead of removing it, `form::evolution`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub retired: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The answer type of a field and the rules that come with it; JSON tag `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldKind {
    /// Free text, stored trimmed.
    Text {
        /// Longest allowed answer, in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<usize>,
        /// A regular expression the whole answer must match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<Pattern>,
        /// How the expected format reads to a person, e.g. "1 to 3 digits".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern_hint: Option<String>,
    },
    /// A whole number.
    Integer {
        /// Smallest allowed value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        /// Largest allowed value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
        /// Codes allowed outside the range, such as 98 "tidak tahu".
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unknown_codes: Vec<i64>,
    },
    /// A decimal number.
    Decimal {
        /// Smallest allowed value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// One code from a list, stored as the integer code.
    SelectOne {
        /// The allowed codes and their labels.
        choices: Vec<Choice>,
    },
    /// Several codes from a list, stored as the sum of power-of-two codes (a bitmask).
    MultiSelect {
        /// The allowed codes: powers of two, plus the exclusive codes.
        choices: Vec<Choice>,
        /// Codes that stand alone and never combine, such as 0 "none" or 99 "tidak tahu".
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclusive: Vec<i64>,
    },
    /// A date as text `YYYY-MM-DD`, never in the future and not before 1900.
    Date {
        /// Allows `98` for an unknown day, or for an unknown month and day (`1980-98-98`).
        #[serde(default)]
        allow_unknown_parts: bool,
    },
    /// A NIK (domain.md §1.1), checked with `ids::check_nik`.
    Nik {
        /// Field in the same scope holding the sex code, cross-checked with the NIK's day + 40.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sex_field: Option<String>,
        /// Date field in the same scope holding the birth date, cross-checked with the NIK's date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birth_date_field: Option<String>,
    },
    /// A family card number (domain.md §1.2), checked with `ids::check_kk`.
    KkNumber,
    /// A Kemendagri village code that must exist in the region table.
    VillageCode,
    /// A GPS reading as text `lat,lon,accuracy_m` inside Indonesia's rough bounds.
    Gps,
    /// Yes or no.
    Boolean,
}

impl FieldKind {
    /// What an answer of this kind looks like, for messages ("a whole number", "a date …").
    pub fn describe(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Integer { .. } => "a whole number",
            FieldKind::Decimal { .. } => "a number",
            FieldKind::SelectOne { .. } => "one code",
            FieldKind::MultiSelect { .. } => "a sum of codes",
            FieldKind::Date { .. } => "a date YYYY-MM-DD",
            FieldKind::Nik { .. } => "a 16-digit NIK",
            FieldKind::KkNumber => "a 16-digit KK number",
            FieldKind::VillageCode => "a village code PP.KK.CC.DDDD",
            FieldKind::Gps => "a GPS reading lat,lon,accuracy_m",
            FieldKind::Boolean => "yes or no",
        }
    }

    /// The choices of a select-one or multi-select field; empty for other kinds.
    pub fn choices(&self) -> &[Choice] {
        match self {
            FieldKind::SelectOne { choices } | FieldKind::MultiSelect { choices, .. } => choices,
            _ => &[],
        }
    }
}

impl FieldDef {
    /// A value as people read it: a code with its label (`2 (Genteng)`), a multi-select sum with
    /// the labels of its codes, anything else as it is. The CLI and the office web page show
    /// answers this way.
    pub fn value_text(&self, value: &FieldValue) -> String {
        match (&self.kind, value) {
            (FieldKind::SelectOne { choices }, FieldValue::Int(code)) => match choices.iter().find(|c| c.code == *code)
            {
                Some(c) => format!("{code} ({})", c.label),
                None => code.to_string(),
            },
            (FieldKind::MultiSelect { choices, .. }, FieldValue::Int(mask)) => {
                let names: Vec<&str> = choices
                    .iter()
                    .filter(|c| {
                        if c.code == 0 || *mask == 0 {
                            c.code == *mask
                        } else {
                            c.code == *mask || (c.code.count_ones() == 1 && mask & c.code != 0)
                        }
                    })
                    .map(|c| c.label.as_str())
                    .collect();
                format!("{mask} ({})", names.join(", "))
            }
            _ => value.to_string(),
        }
    }
}

/// One allowed code of a select field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// The stored code (REGSOSEK22-K codes wherever one exists).
    pub code: i64,
    /// The code's label in Bahasa Indonesia.
    pub label: String,
}

/// When a relevant field must have an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Required {
    /// Never required.
    #[default]
    No,
    /// Required when the visit outcome asks for a complete form (outcomes 1 and 12).
    Complete,
    /// Required on every save, whatever the outcome (e.g. `village_code`, member `full_name`).
    Always,
}

/// A visit outcome code (domain.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeDef {
    /// The stored code, 1..12 in the default form.
    pub code: i64,
    /// Stable upper-case key, e.g. `FOUND_COMPLETE`, for scripts and exports.
    pub key: String,
    /// Label in Bahasa Indonesia.
    pub label: String,
    /// A final outcome closes the assignment; a non-final one schedules a revisit.
    pub is_final: bool,
    /// The outcome asks for a complete form, so `Required::Complete` fields become required.
    pub complete_form: bool,
}

/// A cross-field rule: either a condition written in JSON, or a named built-in.
///
/// A check with a `when` condition is a rule: the problem exists while `when` holds, and
/// `severity`, `fields` and `message` are required. A check without `when` is a built-in named by
/// its `id` (see [`BuiltinCheck`]); its `severity`, when given, overrides the built-in's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    /// Stable rule name; it becomes `Problem::rule`.
    pub id: String,
    /// The scope whose answers `when` reads.
    #[serde(default = "household_scope")]
    pub scope: Scope,
    /// Reject or warn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The fields to blame; the first one names the problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The problem exists while this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Only checked when the visit outcome asks for a complete form.
    #[serde(default, skip_serializing_if = "is_false")]
    pub only_when_complete: bool,
    /// Lowercase explanation and what to do; shown after the blamed field's name and label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn household_scope() -> Scope {
    Scope::Household
}

impl CheckDef {
    /// The built-in this check switches on, when it has no `when` condition.
    pub fn builtin(&self) -> Option<BuiltinCheck> {
        match self.when {
            Some(_) => None,
            None => BuiltinCheck::from_id(&self.id),
        }
    }
}

/// Household-level checks that need all members at once, so they cannot be written as conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinCheck {
    /// `member_count` equals the members with presence 1 or 4 (warn).
    MemberCountMatches,
    /// Exactly one present member has relationship 1 (reject for a complete form, else warn).
    ExactlyOneHead,
    /// No two members share a NIK (reject).
    NikUniqueInHousehold,
}

impl BuiltinCheck {
    /// Every built-in, for listing them in errors.
    pub const ALL: [BuiltinCheck; 3] =
        [BuiltinCheck::MemberCountMatches, BuiltinCheck::ExactlyOneHead, BuiltinCheck::NikUniqueInHousehold];

    /// The id that switches the built-in on in a form's `checks`.
    pub fn id(self) -> &'static str {
        match self {
            BuiltinCheck::MemberCountMatches => "member_count_matches",
            BuiltinCheck::ExactlyOneHead => "exactly_one_head",
            BuiltinCheck::NikUniqueInHousehold => "nik_unique_in_household",
        }
    }

    /// The built-in with this id.
    pub fn from_id(id: &str) -> Option<BuiltinCheck> {
        BuiltinCheck::ALL.into_iter().find(|b| b.id() == id)
    }
}

/// A regular expression for text answers; it must match the whole (trimmed) answer.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Pattern {
    source: String,
    compiled: OnceLock<Result<Regex, String>>,
}

impl Pattern {
    /// A pattern from its source text; it is compiled on first use.
    pub fn new(source: impl Into<String>) -> Self {
        Pattern { source: source.into(), compiled: OnceLock::new() }
    }

    /// The pattern as written in the definition.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled expression, anchored at both ends, or why it does not compile.
    pub fn regex(&self) -> Result<&Regex, &str> {
        self.compiled
            .get_or_init(|| Regex::new(&format!("^(?:{})$", self.source)).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// Whether the whole text matches; false when the pattern does not compile.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex().is_ok_and(|re| re.is_match(text))
    }
}

impl From<String> for Pattern {
    fn from(source: String) -> Self {
        Pattern::new(source)
    }
}

impl From<Pattern> for String {
    fn from(pattern: Pattern) -> Self {
        pattern.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// Why a form definition was refused; each case names the offending field or check.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// The text is not JSON of the definition's shape (unknown keys are refused too).
    #[error("form definition is not valid: {0}; fix the json at that line and column")]
    Json(#[from] serde_json::Error),
    /// Two fields in one scope share a name (or a visit field shadows a household field).
    #[error(
        "{scope} field `{field}` is defined twice (visit and household names must differ too); \
         give each field a unique name"
    )]
    DuplicateField {
        /// The scope holding the duplicate.
        scope: Scope,
        /// The repeated name.
        field: String,
    },
    /// A condition, check or identifier field refers to a field its scope cannot read.
    #[error("{location} refers to `{field}`, which is not a {scopes} field; define it or fix the name")]
    UnknownField {
        /// Where the reference is, e.g. "member field `pregnant` (relevant)".
        location: String,
        /// The scopes the reference may read, e.g. "visit or household".
        scopes: String,
        /// The unknown name.
        field: String,
    },
    /// Any other inconsistency: duplicate choice codes, min above max, a pattern that does not
    /// compile, an operator that does not suit the field's type.
    #[error("{location}: {reason}")]
    Invalid {
        /// Where the problem is, e.g. "household field `rt`".
        location: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl FormDefinition {
    /// The form's key as stored in household documents: `"{id}@{version}"`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// Parses a definition and checks it is internally consistent (see the module docs).
    pub fn from_json(text: &str) -> Result<FormDefinition, FormError> {
        let form: FormDefinition = serde_json::from_str(text)?;
        form.check()?;
        Ok(form)
    }

    /// The Pilar default DTSEN ground-check form, embedded in the binary and parsed once.
    pub fn default_dtsen() -> &'static FormDefinition {
        static FORM: OnceLock<FormDefinition> = OnceLock::new();
        FORM.get_or_init(|| {
            FormDefinition::from_json(DEFAULT_DTSEN_JSON)
                .expect("the embedded default form is valid; a unit test parses it")
        })
    }

    /// The fields of one scope, in the order they are asked.
    pub fn fields(&self, scope: Scope) -> &[FieldDef] {
        match scope {
            Scope::Household => &self.household,
            Scope::Member => &self.member,
            Scope::Visit => &self.visit,
        }
    }

    /// The field of that name in that scope.
    pub fn field(&self, scope: Scope, name: &str) -> Option<&FieldDef> {
        self.fields(scope).iter().find(|f| f.name == name)
    }

    /// The outcome with that code.
    pub fn outcome(&self, code: i64) -> Option<&OutcomeDef> {
        self.outcomes.iter().find(|o| o.code == code)
    }

    /// Checks the definition's internal consistency; `from_json` calls it.
    pub fn check(&self) -> Result<(), FormError> {
        let invalid = |location: String, reason: String| FormError::Invalid { location, reason };
        if self.id.trim().is_empty() || self.id.contains('@') {
            return Err(invalid(
                "form".into(),
                "`id` must be a non-empty name without '@', e.g. dtsen-ground-check".into(),
            ));
        }
        if self.version == 0 {
            return Err(invalid("form".into(), "`version` starts at 1".into()));
        }
        for scope in Scope::ALL {
            let mut seen = HashSet::new();
            for field in self.fields(scope) {
                let location = format!("{scope} field `{}`", field.name);
                if !is_field_name(&field.name) {
                    return Err(invalid(
                        location,
                        "a field name uses only lowercase letters, digits and '_', starting with a letter".into(),
                    ));
                }
                if !seen.insert(field.name.as_str())
                    || (scope == Scope::Visit && self.field(Scope::Household, &field.name).is_some())
                {
                    return Err(FormError::DuplicateField { scope, field: field.name.clone() });
                }
                if field.label.trim().is_empty() {
                    return Err(invalid(location, "the label is empty; give the question's label".into()));
                }
                self.check_kind(scope, field, &location)?;
            }
        }
        for scope in Scope::ALL {
            for field in self.fields(scope) {
                if let Some(condition) = &field.relevant {
                    let location = format!("{scope} field `{}` (relevant)", field.name);
                    if condition.fields().contains(&field.name.as_str()) {
                        return Err(invalid(location, "a field cannot be relevant on its own answer".into()));
                    }
                    self.check_condition(scope, condition, &location)?;
                }
            }
        }
        self.check_outcomes()?;
        self.check_checks()
    }

    fn check_kind(&self, scope: Scope, field: &FieldDef, location: &str) -> Result<(), FormError> {
        let invalid = |reason: String| FormError::Invalid { location: location.to_owned(), reason };
        match &field.kind {
            FieldKind::Text { max_len, pattern, .. } => {
                if *max_len == Some(0) {
                    return Err(invalid("`max_len` must be at least 1".into()));
                }
                if let Some(pattern) = pattern {
                    pattern.regex().map_err(|e| invalid(format!("`pattern` does not compile: {e}")))?;
                }
            }
            FieldKind::Integer { min: Some(min), max: Some(max), .. } if min > max => {
                return Err(invalid(format!("`min` {min} is above `max` {max}")));
            }
            FieldKind::Decimal { min, max } => {
                if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
                    return Err(invalid("`min` and `max` must be finite numbers".into()));
                }
                match (min, max) {
                    (Some(min), Some(max)) if min > max => {
                        return Err(invalid(format!("`min` {min} is above `max` {max}")));
                    }
                    _ => {}
                }
            }
            FieldKind::SelectOne { choices } => check_choices(choices).map_err(invalid)?,
            FieldKind::MultiSelect { choices, exclusive } => {
                check_choices(choices).map_err(invalid)?;
                let mut mask = 0i64;
                for choice in choices.iter().filter(|c| !exclusive.contains(&c.code)) {
                    if choice.code <= 0 || choice.code.count_ones() != 1 {
                        return Err(invalid(format!(
                            "multi-select code {} is not a power of two; use 1, 2, 4, 8, … or list it in `exclusive`",
                            choice.code
                        )));
                    }
                    mask |= choice.code;
                }
                for code in exclusive {
                    if !choices.iter().any(|c| c.code == *code) {
                        return Err(invalid(format!(
                            "exclusive code {code} is not one of the choices; add it to `choices`"
                        )));
                    }
                    if *code != 0 && code & !mask == 0 {
                        return Err(invalid(format!(
                            "exclusive code {code} is also a sum of other codes, so answers would be ambiguous; pick another code"
                        )));
                    }
                }
            }
            FieldKind::Nik { sex_field, birth_date_field } => {
                if let Some(name) = sex_field {
                    match self.field(scope, name).map(|f| &f.kind) {
                        Some(FieldKind::SelectOne { .. } | FieldKind::Integer { .. }) => {}
                        Some(_) => {
                            return Err(invalid(format!("`sex_field` `{name}` must be a select_one or integer field")));
                        }
                        None => {
                            return Err(FormError::UnknownField {
                                location: format!("{location} (sex_field)"),
                                scopes: scope.to_string(),
                                field: name.clone(),
                            });
                        }
                    }
                }
                if let Some(name) = birth_date_field {
                    match self.field(scope, name).map(|f| &f.kind) {
                        Some(FieldKind::Date { .. }) => {}
                        Some(_) => {
                            return Err(invalid(format!("`birth_date_field` `{name}` must be a date field")));
                        }
                        None => {
                            return Err(FormError::UnknownField {
                                location: format!("{location} (birth_date_field)"),
                                scopes: scope.to_string(),
                                field: name.clone(),
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The field a condition or check in `scope` reads under this name, if it may read one.
    fn readable_field(&self, scope: Scope, name: &str) -> Option<&FieldDef> {
        self.field(scope, name).or_else(|| match scope {
            Scope::Visit => self.field(Scope::Household, name),
            _ => None,
        })
    }

    fn check_condition(&self, scope: Scope, condition: &Condition, location: &str) -> Result<(), FormError> {
        for (name, test) in condition.tests() {
            let Some(field) = self.readable_field(scope, name) else {
                return Err(FormError::UnknownField {
                    location: location.to_owned(),
                    scopes: readable_scopes(scope).into(),
                    field: name.to_owned(),
                });
            };
            check_test(field, test).map_err(|reason| FormError::Invalid {
                location: location.to_owned(),
                reason: format!("the test on `{name}` {reason}"),
            })?;
        }
        Ok(())
    }

    fn check_outcomes(&self) -> Result<(), FormError> {
        let mut codes = HashSet::new();
        let mut keys = HashSet::new();
        for outcome in &self.outcomes {
            let location = format!("outcome {} `{}`", outcome.code, outcome.key);
            if !codes.insert(outcome.code) {
                return Err(FormError::Invalid {
                    location,
                    reason: "the code is used twice; give each outcome its own code".into(),
                });
            }
            if outcome.key.trim().is_empty() || !keys.insert(outcome.key.as_str()) {
                return Err(FormError::Invalid {
                    location,
                    reason: "the key is empty or used twice; give each outcome its own key".into(),
                });
            }
        }
        Ok(())
    }

    fn check_checks(&self) -> Result<(), FormError> {
        let mut ids = HashSet::new();
        for check in &self.checks {
            let location = format!("check `{}`", check.id);
            let invalid = |reason: String| FormError::Invalid { location: location.clone(), reason };
            if !ids.insert(check.id.as_str()) {
                return Err(invalid("the id is used twice; give each check its own id".into()));
            }
            let Some(when) = &check.when else {
                let Some(builtin) = BuiltinCheck::from_id(&check.id) else {
                    let known: Vec<&str> = BuiltinCheck::ALL.iter().map(|b| b.id()).collect();
                    return Err(invalid(format!(
                        "a check without `when` must name a built-in ({}); add a `when` condition or fix the id",
                        known.join(", ")
                    )));
                };
                if check.scope != Scope::Household {
                    return Err(invalid("built-in checks run in the household scope".into()));
                }
                return self.check_builtin_prerequisites(builtin, &location);
            };
            if check.severity.is_none() {
                return Err(invalid("a rule check needs a `severity` (reject or warn)".into()));
            }
            if check.message.trim().is_empty() {
                return Err(invalid("a rule check needs a `message` saying what to do".into()));
            }
            if check.fields.is_empty() {
                return Err(invalid("a rule check needs `fields` naming what to blame".into()));
            }
            for name in &check.fields {
                if self.readable_field(check.scope, name).is_none() {
                    return Err(FormError::UnknownField {
                        location: format!("{location} (fields)"),
                        scopes: readable_scopes(check.scope).into(),
                        field: name.clone(),
                    });
                }
            }
            self.check_condition(check.scope, when, &format!("{location} (when)"))?;
        }
        Ok(())
    }

    fn check_builtin_prerequisites(&self, builtin: BuiltinCheck, location: &str) -> Result<(), FormError> {
        let needs: &[(Scope, &str)] = match builtin {
            BuiltinCheck::MemberCountMatches => {
                &[(Scope::Household, MEMBER_COUNT_FIELD), (Scope::Member, PRESENCE_FIELD)]
            }
            BuiltinCheck::ExactlyOneHead => &[(Scope::Member, PRESENCE_FIELD), (Scope::Member, RELATIONSHIP_FIELD)],
            BuiltinCheck::NikUniqueInHousehold => &[],
        };
        for (scope, name) in needs {
            if self.field(*scope, name).is_none() {
                return Err(FormError::UnknownField {
                    location: location.to_owned(),
                    scopes: scope.to_string(),
                    field: (*name).to_owned(),
                });
            }
        }
        if builtin == BuiltinCheck::NikUniqueInHousehold && self.member_nik_field().is_none() {
            return Err(FormError::Invalid {
                location: location.to_owned(),
                reason: "the member scope has no field of type nik to compare".into(),
            });
        }
        Ok(())
    }

    /// The member field holding the NIK (the first of kind `nik`).
    pub(crate) fn member_nik_field(&self) -> Option<&FieldDef> {
        self.member.iter().find(|f| matches!(f.kind, FieldKind::Nik { .. }))
    }
}

/// Household field the `member_count_matches` built-in compares.
pub(crate) const MEMBER_COUNT_FIELD: &str = "member_count";
/// Member field with REGSOSEK 404 presence codes (1 lives here, 4 new member count as present).
pub(crate) const PRESENCE_FIELD: &str = "presence";
/// Member field with REGSOSEK 409 relationship codes (1 = head of the family).
pub(crate) const RELATIONSHIP_FIELD: &str = "relationship";

/// The form that ships with Pilar (domain.md §2).
const DEFAULT_DTSEN_JSON: &str = include_str!("../../forms/dtsen-ground-check@1.json");

fn readable_scopes(scope: Scope) -> &'static str {
    match scope {
        Scope::Household => "household",
        Scope::Member => "member",
        Scope::Visit => "visit or household",
    }
}

fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_choices(choices: &[Choice]) -> Result<(), String> {
    if choices.is_empty() {
        return Err("`choices` is empty; list at least one code".into());
    }
    let mut codes = BTreeSet::new();
    let mut labels = HashSet::new();
    for choice in choices {
        if !codes.insert(choice.code) {
            return Err(format!("choice code {} is listed twice; codes must be unique", choice.code));
        }
        if choice.label.trim().is_empty() || !labels.insert(choice.label.to_lowercase()) {
            return Err(format!(
                "the label of choice code {} is empty or repeats another; labels must be unique",
                choice.code
            ));
        }
    }
    Ok(())
}

/// Whether a test suits the field's type; `Err` completes "the test on `x` …".
fn check_test(field: &FieldDef, test: &Comparison) -> Result<(), String> {
    let numeric =
        matches!(field.kind, FieldKind::Integer { .. } | FieldKind::Decimal { .. } | FieldKind::SelectOne { .. });
    match test {
        Comparison::Answered(_) => Ok(()),
        Comparison::Gt(_) | Comparison::Gte(_) | Comparison::Lt(_) | Comparison::Lte(_) => {
            if numeric {
                Ok(())
            } else {
                Err(format!("compares numbers, but `{}` is {}", field.name, field.kind.describe()))
            }
        }
        Comparison::HasBit(bit) => match &field.kind {
            FieldKind::MultiSelect { choices, exclusive } => {
                if exclusive.contains(bit) || !choices.iter().any(|c| c.code == *bit) {
                    Err(format!("asks for code {bit}, which is not a combinable choice"))
                } else {
                    Ok(())
                }
            }
            _ => Err("uses has_bit, which only suits multi_select fields".into()),
        },
        Comparison::Eq(v) | Comparison::Ne(v) => check_operand(field, v),
        Comparison::In(vs) | Comparison::NotIn(vs) => {
            if vs.is_empty() {
                return Err("lists no values".into());
            }
            vs.iter().try_for_each(|v| check_operand(field, v))
        }
    }
}

/// Whether a value could ever be an answer of this field, so a condition on it can be true.
fn check_operand(field: &FieldDef, value: &FieldValue) -> Result<(), String> {
    let fits = match (&field.kind, value) {
        (FieldKind::SelectOne { choices }, FieldValue::Int(code)) => {
            if !choices.iter().any(|c| c.code == *code) {
                return Err(format!("compares with {code}, which is not one of its codes"));
            }
            true
        }
        (FieldKind::Integer { .. } | FieldKind::MultiSelect { .. }, FieldValue::Int(_)) => true,
        (FieldKind::Decimal { .. }, FieldValue::Int(_) | FieldValue::Decimal(_)) => true,
        (FieldKind::Boolean, FieldValue::Bool(_)) => true,
        (
            FieldKind::Text { .. }
            | FieldKind::Date { .. }
            | FieldKind::Nik { .. }
            | FieldKind::KkNumber
            | FieldKind::VillageCode
            | FieldKind::Gps,
            FieldValue::Text(_),
        ) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("compares with {value}, but `{}` holds {}", field.name, field.kind.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field domain.md §2.2 (A–E, minus the system id and `review_state`), §2.3 and the
    /// visit record name.
    const HOUSEHOLD_FIELDS: &[&str] = &[
        "dtsen_family_id",
        "village_code",
        "bps_village_code",
        "sls_code",
        "sls_name",
        "rt",
        "rw",
        "address",
        "latitude",
        "longitude",
        "gps_accuracy_m",
        "head_name",
        "kk_number",
        "kk_code",
        "family_status",
        "member_count",
        "special_group",
        "phone",
        "building_tenure",
        "land_proof",
        "floor_area_m2",
        "floor_material",
        "wall_material",
        "wall_condition",
        "roof_material",
        "roof_condition",
        "bedrooms",
        "water_source",
        "water_septic_distance",
        "lighting_source",
        "power_meter_1",
        "power_meter_2",
        "power_meter_3",
        "pln_customer_id",
        "cooking_fuel",
        "toilet_facility",
        "toilet_type",
        "feces_disposal",
        "asset_lpg_5kg_plus",
        "asset_refrigerator",
        "asset_ac",
        "asset_water_heater",
        "asset_landline",
        "asset_flat_tv_30in",
        "asset_gold_10g",
        "asset_computer",
        "asset_motorcycle",
        "asset_bicycle",
        "asset_car",
        "asset_boat",
        "asset_motorboat",
        "asset_smartphone",
        "asset_land_elsewhere",
        "asset_house_elsewhere",
        "livestock_cattle",
        "livestock_buffalo",
        "livestock_horse",
        "livestock_pig",
        "livestock_goat_sheep",
        "internet_access",
        "bank_account",
        "prog_sembako_bpnt",
        "prog_sembako_bpnt_month",
        "prog_pkh",
        "prog_pkh_month",
        "prog_blt_dana_desa",
        "prog_blt_dana_desa_month",
        "prog_electricity_subsidy",
        "prog_electricity_subsidy_month",
        "prog_local_gov",
        "prog_local_gov_month",
        "prog_fertilizer_subsidy",
        "prog_fertilizer_subsidy_month",
        "prog_lpg_subsidy",
        "prog_lpg_subsidy_month",
        "dtsen_decile",
        "dtsen_snapshot_date",
    ];
    const MEMBER_FIELDS: &[&str] = &[
        "seq",
        "full_name",
        "nik",
        "presence",
        "sex",
        "birth_date",
        "age_years",
        "marital_status",
        "relationship",
        "pregnant",
        "id_documents",
        "school_participation",
        "education_level",
        "highest_grade",
        "highest_diploma",
        "worked_last_week",
        "work_hours",
        "industry",
        "employment_status",
        "owns_business",
        "child_nutrition",
        "difficulty_seeing",
        "difficulty_hearing",
        "difficulty_walking",
        "difficulty_hands",
        "difficulty_learning",
        "difficulty_behaviour",
        "difficulty_communication",
        "difficulty_selfcare",
        "difficulty_memory",
        "depression_freq",
        "caregiver",
        "chronic_disease",
        "health_insurance",
        "prog_prakerja",
        "prog_kur",
        "prog_umi",
        "prog_pip",
        "employment_insurance",
        "disability_type",
    ];
    const VISIT_FIELDS: &[&str] = &["outcome", "purpose", "officer_role", "notice_given", "respondent_member_id"];

    fn names(form: &FormDefinition, scope: Scope) -> Vec<&str> {
        form.fields(scope).iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn default_form_parses_and_has_every_domain_field() {
        let form = FormDefinition::default_dtsen();
        assert_eq!(form.key(), "dtsen-ground-check@1");
        for (scope, expected) in
            [(Scope::Household, HOUSEHOLD_FIELDS), (Scope::Member, MEMBER_FIELDS), (Scope::Visit, VISIT_FIELDS)]
        {
            let have = names(form, scope);
            let missing: Vec<&&str> = expected.iter().filter(|n| !have.contains(n)).collect();
            assert!(missing.is_empty(), "{scope} fields missing: {missing:?}");
        }
        assert!(form.field(Scope::Household, "review_state").is_none());
        assert_eq!(form.field(Scope::Household, "floor_area_m2").map(|f| f.label.as_str()), Some("Luas lantai (m²)"));
    }

    #[test]
    fn default_form_has_the_twelve_outcomes_with_complete_forms_for_1_and_12() {
        let form = FormDefinition::default_dtsen();
        let codes: Vec<i64> = form.outcomes.iter().map(|o| o.code).collect();
        assert_eq!(codes, (1..=12).collect::<Vec<_>>());
        let complete: Vec<i64> = form.outcomes.iter().filter(|o| o.complete_form).map(|o| o.code).collect();
        assert_eq!(complete, [1, 12]);
        let not_final: Vec<i64> = form.outcomes.iter().filter(|o| !o.is_final).map(|o| o.code).collect();
        assert_eq!(not_final, [2, 3]);
        assert_eq!(form.outcome(1).map(|o| o.key.as_str()), Some("FOUND_COMPLETE"));
        // The visit's outcome question offers exactly the outcome codes.
        let offered: Vec<i64> = form
            .field(Scope::Visit, "outcome")
            .map(|f| f.kind.choices().iter().map(|c| c.code).collect())
            .unwrap_or_default();
        assert_eq!(offered, codes);
    }

    #[test]
    fn default_form_marks_server_only_and_sensitive_fields() {
        let form = FormDefinition::default_dtsen();
        let server_only: Vec<&str> = Scope::ALL
            .iter()
            .flat_map(|s| form.fields(*s))
            .filter(|f| !f.device_editable)
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(server_only, ["dtsen_decile", "dtsen_snapshot_date"]);
        for name in [
            "pregnant",
            "child_nutrition",
            "difficulty_seeing",
            "difficulty_memory",
            "chronic_disease",
            "disability_type",
        ] {
            assert!(form.field(Scope::Member, name).is_some_and(|f| f.sensitive), "{name}");
        }
        assert!(form.field(Scope::Member, "full_name").is_some_and(|f| !f.sensitive));
        assert!(form.field(Scope::Household, "village_code").is_some_and(|f| f.required == Required::Always));
        assert!(form.field(Scope::Household, "head_name").is_some_and(|f| f.required == Required::Always));
    }

    #[test]
    fn default_form_switches_on_the_three_builtins() {
        let form = FormDefinition::default_dtsen();
        let builtins: Vec<BuiltinCheck> = form.checks.iter().filter_map(CheckDef::builtin).collect();
        assert_eq!(builtins, BuiltinCheck::ALL);
    }

    #[test]
    fn default_form_survives_a_json_round_trip() {
        let form = FormDefinition::default_dtsen();
        let text = serde_json::to_string(form).expect("serialises");
        let again = FormDefinition::from_json(&text).expect("parses again");
        assert_eq!(&again, form);
    }

    /// A small valid form to break one piece at a time.
    fn minimal(household: &str, checks: &str) -> String {
        format!(
            r#"{{"id": "t", "version": 1, "title": "t",
                "household": [{household}],
                "member": [{{"name": "sex", "label": "Jenis kelamin", "kind": {{"type": "select_one",
                             "choices": [{{"code": 1, "label": "laki-laki"}}, {{"code": 2, "label": "perempuan"}}]}}}}],
                "visit": [], "outcomes": [], "checks": [{checks}]}}"#
        )
    }

    const TENURE: &str = r#"{"name": "building_tenure", "label": "Status", "kind": {"type": "select_one",
        "choices": [{"code": 1, "label": "milik sendiri"}, {"code": 2, "label": "sewa"}]}}"#;

    fn refused(household: &str, checks: &str) -> String {
        match FormDefinition::from_json(&minimal(household, checks)) {
            Ok(_) => panic!("should be refused: {household} {checks}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_form_used_by_these_tests_is_valid() {
        FormDefinition::from_json(&minimal(TENURE, "")).expect("valid");
    }

    #[test]
    fn duplicate_field_is_refused_naming_it() {
        let err = FormDefinition::from_json(&minimal(&format!("{TENURE}, {TENURE}"), ""));
        match err {
            Err(FormError::DuplicateField { scope, field }) => {
                assert_eq!((scope, field.as_str()), (Scope::Household, "building_tenure"));
            }
            other => panic!("expected a duplicate field error, got {other:?}"),
        }
        assert!(refused(&format!("{TENURE}, {TENURE}"), "").contains("`building_tenure`"));
    }

    #[test]
    fn condition_on_unknown_field_is_refused_naming_it() {
        let land = r#"{"name": "land_proof", "label": "Bukti", "kind": {"type": "integer"},
                       "relevant": {"field": "building_tenur", "eq": 1}}"#;
        let message = refused(&format!("{TENURE}, {land}"), "");
        assert!(message.contains("`land_proof`"), "{message}");
        assert!(message.contains("`building_tenur`"), "{message}");
    }

    #[test]
    fn household_condition_cannot_read_member_fields() {
        let land = r#"{"name": "land_proof", "label": "Bukti", "kind": {"type": "integer"},
                       "relevant": {"field": "sex", "eq": 1}}"#;
        let message = refused(land, "");
        assert!(message.contains("`sex`") && message.contains("not a household field"), "{message}");
    }

    #[test]
    fn condition_comparing_with_a_code_the_field_lacks_is_refused() {
        let land = r#"{"name": "land_proof", "label": "Bukti", "kind": {"type": "integer"},
                       "relevant": {"field": "building_tenure", "eq": 7}}"#;
        let message = refused(&format!("{TENURE}, {land}"), "");
        assert!(message.contains("7") && message.contains("land_proof"), "{message}");
    }

    #[test]
    fn inconsistent_kinds_are_refused_naming_the_field() {
        let cases = [
            (
                r#"{"name": "a", "label": "A", "kind": {"type": "select_one", "choices": [{"code": 1, "label": "x"}, {"code": 1, "label": "y"}]}}"#,
                "code 1",
            ),
            (r#"{"name": "a", "label": "A", "kind": {"type": "integer", "min": 5, "max": 1}}"#, "`min` 5"),
            (r#"{"name": "a", "label": "A", "kind": {"type": "text", "pattern": "(\\d"}}"#, "does not compile"),
            (
                r#"{"name": "a", "label": "A", "kind": {"type": "multi_select", "choices": [{"code": 3, "label": "x"}]}}"#,
                "power of two",
            ),
            (
                r#"{"name": "a", "label": "A", "kind": {"type": "multi_select", "choices": [{"code": 1, "label": "x"}, {"code": 2, "label": "y"}, {"code": 3, "label": "z"}], "exclusive": [3]}}"#,
                "ambiguous",
            ),
            (r#"{"name": "A b", "label": "A", "kind": {"type": "boolean"}}"#, "lowercase"),
        ];
        for (field, expected) in cases {
            let message = refused(field, "");
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("household field `a`") || message.contains("`A b`"), "{message}");
        }
    }

    #[test]
    fn unknown_keys_in_the_json_are_refused() {
        let typo = r#"{"name": "a", "label": "A", "kind": {"type": "boolean"}, "relevent": {"field": "b", "eq": 1}}"#;
        assert!(refused(typo, "").contains("relevent"));
        let kind_typo = r#"{"name": "a", "label": "A", "kind": {"type": "integer", "maximum": 3}}"#;
        assert!(refused(kind_typo, "").contains("maximum"));
    }

    #[test]
    fn checks_are_refused_when_they_name_unknown_fields_or_builtins() {
        let check = r#"{"id": "c", "severity": "warn", "fields": ["roof"], "message": "m",
                        "when": {"field": "building_tenure", "eq": 1}}"#;
        let message = refused(TENURE, check);
        assert!(message.contains("check `c`") && message.contains("`roof`"), "{message}");
        let message = refused(TENURE, r#"{"id": "one_head_please"}"#);
        assert!(message.contains("built-in") && message.contains("exactly_one_head"), "{message}");
        let no_severity = r#"{"id": "c", "fields": ["building_tenure"], "message": "m",
                              "when": {"field": "building_tenure", "eq": 1}}"#;
        assert!(refused(TENURE, no_severity).contains("severity"));
    }

    #[test]
    fn builtin_check_needs_the_fields_it_reads() {
        let message = refused(TENURE, r#"{"id": "member_count_matches"}"#);
        assert!(message.contains("`member_count`"), "{message}");
    }

    #[test]
    fn invalid_json_is_a_json_error() {
        assert!(matches!(FormDefinition::from_json("{"), Err(FormError::Json(_))));
    }
}
