//! The workbook's sheet and column names, shared by the writer and the reader so both agree.
//!
//! Standard XLSForm sheets and columns first; Pilar's extensions are columns prefixed `pilar::`
//! (ODK tools ignore columns they do not know) and sheets named `pilar_…`.

/// The questions, one row each, plus group and repeat markers.
pub(crate) const SURVEY: &str = "survey";
/// The choice lists of select questions.
pub(crate) const CHOICES: &str = "choices";
/// One row: form_id, version, form_title.
pub(crate) const SETTINGS: &str = "settings";
/// Pilar's visit outcomes (code, key, label, is_final, complete_form).
pub(crate) const OUTCOMES: &str = "pilar_outcomes";
/// Pilar's cross-field checks and built-ins.
pub(crate) const CHECKS: &str = "pilar_checks";

/// The sheets in the order the reader reports problems and the writer writes them.
pub(crate) const SHEETS: [&str; 5] = [SURVEY, CHOICES, SETTINGS, OUTCOMES, CHECKS];

/// The label column the writer uses (ODK's `label::Language (code)` form); the reader also takes
/// plain `label` and other spellings of Indonesian.
pub(crate) const LABEL_WRITTEN: &str = "label::Bahasa Indonesia (id)";
/// The language written in settings, matching [`LABEL_WRITTEN`].
pub(crate) const LANGUAGE_WRITTEN: &str = "Bahasa Indonesia (id)";

pub(crate) const TYPE: &str = "type";
pub(crate) const NAME: &str = "name";
pub(crate) const LABEL: &str = "label";
pub(crate) const HINT: &str = "hint";
pub(crate) const REQUIRED: &str = "required";
pub(crate) const RELEVANT: &str = "relevant";
pub(crate) const CONSTRAINT: &str = "constraint";
pub(crate) const CONSTRAINT_MESSAGE: &str = "constraint_message";
pub(crate) const READ_ONLY: &str = "read_only";
pub(crate) const CHOICE_FILTER: &str = "choice_filter";
pub(crate) const CALCULATION: &str = "calculation";
pub(crate) const DEFAULT: &str = "default";

pub(crate) const PILAR_REQUIRED: &str = "pilar::required";
pub(crate) const PILAR_KIND: &str = "pilar::kind";
pub(crate) const PILAR_SENSITIVE: &str = "pilar::sensitive";
pub(crate) const PILAR_RETIRED: &str = "pilar::retired";
pub(crate) const PILAR_UNKNOWN_CODES: &str = "pilar::unknown_codes";
pub(crate) const PILAR_EXCLUSIVE: &str = "pilar::exclusive";
pub(crate) const PILAR_ALLOW_UNKNOWN_PARTS: &str = "pilar::allow_unknown_parts";
pub(crate) const PILAR_SEX_FIELD: &str = "pilar::sex_field";
pub(crate) const PILAR_BIRTH_DATE_FIELD: &str = "pilar::birth_date_field";
pub(crate) const PILAR_SCOPE: &str = "pilar::scope";
pub(crate) const PILAR_DESCRIPTION: &str = "pilar::description";

/// The survey sheet's columns, in the order the writer writes them.
pub(crate) const SURVEY_COLUMNS: [&str; 19] = [
    TYPE,
    NAME,
    LABEL_WRITTEN,
    HINT,
    REQUIRED,
    RELEVANT,
    CONSTRAINT,
    CONSTRAINT_MESSAGE,
    READ_ONLY,
    PILAR_REQUIRED,
    PILAR_KIND,
    PILAR_SENSITIVE,
    PILAR_RETIRED,
    PILAR_UNKNOWN_CODES,
    PILAR_EXCLUSIVE,
    PILAR_ALLOW_UNKNOWN_PARTS,
    PILAR_SEX_FIELD,
    PILAR_BIRTH_DATE_FIELD,
    PILAR_SCOPE,
];

pub(crate) const LIST_NAME: &str = "list_name";
/// The choices sheet's columns.
pub(crate) const CHOICES_COLUMNS: [&str; 3] = [LIST_NAME, NAME, LABEL_WRITTEN];

pub(crate) const FORM_ID: &str = "form_id";
pub(crate) const VERSION: &str = "version";
pub(crate) const FORM_TITLE: &str = "form_title";
pub(crate) const DEFAULT_LANGUAGE: &str = "default_language";
/// The settings sheet's columns.
pub(crate) const SETTINGS_COLUMNS: [&str; 5] = [FORM_ID, VERSION, FORM_TITLE, DEFAULT_LANGUAGE, PILAR_DESCRIPTION];

pub(crate) const CODE: &str = "code";
pub(crate) const KEY: &str = "key";
pub(crate) const IS_FINAL: &str = "is_final";
pub(crate) const COMPLETE_FORM: &str = "complete_form";
/// The outcomes sheet's columns.
pub(crate) const OUTCOMES_COLUMNS: [&str; 5] = [CODE, KEY, LABEL, IS_FINAL, COMPLETE_FORM];

pub(crate) const ID: &str = "id";
pub(crate) const SCOPE: &str = "scope";
pub(crate) const SEVERITY: &str = "severity";
pub(crate) const FIELDS: &str = "fields";
pub(crate) const WHEN: &str = "when";
pub(crate) const ONLY_WHEN_COMPLETE: &str = "only_when_complete";
pub(crate) const MESSAGE: &str = "message";
/// The checks sheet's columns.
pub(crate) const CHECKS_COLUMNS: [&str; 7] = [ID, SCOPE, SEVERITY, FIELDS, WHEN, ONLY_WHEN_COMPLETE, MESSAGE];

/// Every `pilar::` column the survey sheet may have; any other `pilar::` column is a typo.
pub(crate) const SURVEY_PILAR_COLUMNS: [&str; 10] = [
    PILAR_REQUIRED,
    PILAR_KIND,
    PILAR_SENSITIVE,
    PILAR_RETIRED,
    PILAR_UNKNOWN_CODES,
    PILAR_EXCLUSIVE,
    PILAR_ALLOW_UNKNOWN_PARTS,
    PILAR_SEX_FIELD,
    PILAR_BIRTH_DATE_FIELD,
    PILAR_SCOPE,
];

/// The repeat names read as the visit scope when the row has no `pilar::scope`.
pub(crate) const VISIT_REPEAT_NAMES: [&str; 3] = ["visit", "visits", "kunjungan"];
/// The names the writer gives the two repeats.
pub(crate) const MEMBER_REPEAT: &str = "member";
pub(crate) const VISIT_REPEAT: &str = "visit";
