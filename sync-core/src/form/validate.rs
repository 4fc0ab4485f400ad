//! Validation of household, member and visit answers against a form: every problem at once.
//!
//! Each problem names the field path (`roof_material`, `members[3].nik`, `visit.outcome`), the rule
//! and the offending value. Messages name the field, its Indonesian label, the rule and what to do;
//! they never contain names, identifiers, dates or free text (those may be personal data and
//! messages end up in logs): the offending value travels only in [`Problem::value`], which is for
//! showing to the user.
//!
//! What is checked, per scope: unknown field names; each answer's type and rules (range, length,
//! pattern, choice codes, dates, identifiers through [`crate::ids`]); requiredness (only while the
//! field is relevant); answers to questions that were not asked (a warning); the form's rule
//! checks; and, for a household, the built-in checks over all members. Server-only fields
//! (`device_editable: false`) are validated like any other: refusing device edits to them is the
//! model's and the server's job, not the form's.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use super::builtin;
use super::condition::{AnswerView, is_answered};
use super::definition::{FieldDef, FieldKind, FormDefinition, Required, Scope};
use super::input::list_choices;
use crate::finding::{Finding, Severity};
use crate::ids;
use crate::value::FieldValue;

/// One thing wrong (or suspicious) with one answer or one combination of answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Path of the field: `roof_material`, `members[3].nik` (member seq, else id), `visit.outcome`.
    pub field: String,
    /// Stable rule name scripts branch on: `type`, `range`, `required`, `nik_month_range`, …
    pub rule: String,
    /// The offending answer as text, for showing to the user only (it may be personal data).
    pub value: Option<String>,
    /// Reject blocks the save; warn is shown and stored.
    pub severity: Severity,
    /// Lowercase sentence: field, label, what is wrong, what to do. Never holds personal data.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every problem found in one validation, in form order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The problems, rejects and warnings mixed, in the order the form asks the fields.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when any problem is a rejection, i.e. the save must be refused.
    pub fn is_blocking(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Reject)
    }

    /// The problems that block the save.
    pub fn rejects(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Reject)
    }

    /// The problems that are reported but do not block the save.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warn)
    }

    /// Appends another report's problems (e.g. a member's to its household's).
    pub fn merge(&mut self, other: Report) {
        self.problems.extend(other.problems);
    }

    /// True when nothing at all was found.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What validation needs from outside the answers: the date, and how complete the form must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationContext {
    /// Today's date (passed in: sync-core never reads the clock); bounds dates and NIK centuries.
    pub today: Date,
    /// The visit outcome asks for a complete form, so `Required::Complete` fields are required.
    pub complete: bool,
}

impl ValidationContext {
    /// The context for a visit with this outcome code: complete when the outcome asks for it.
    pub fn for_outcome(form: &FormDefinition, outcome: Option<i64>, today: Date) -> Self {
        let complete = outcome.and_then(|code| form.outcome(code)).is_some_and(|o| o.complete_form);
        ValidationContext { today, complete }
    }
}

/// One member's answers, with the label that names the member in problem paths.
#[derive(Debug, Clone)]
pub struct MemberAnswers<'a> {
    /// The member's seq when known, else its id; problems read `members[{key}].field`.
    pub key: String,
    /// The member's answers by field name.
    pub answers: &'a BTreeMap<String, FieldValue>,
}

/// Validates household answers, every member's answers and the household-level checks.
///
/// The built-in member checks (`member_count_matches`, `exactly_one_head`,
/// `nik_unique_in_household`) are skipped while there are no members and the form need not be
/// complete: a household imported from a roster or visited without an interview has none yet.
pub fn validate_household(
    form: &FormDefinition,
    answers: &BTreeMap<String, FieldValue>,
    members: &[MemberAnswers<'_>],
    ctx: &ValidationContext,
) -> Report {
    let view = AnswerView::household(form, answers);
    let mut report = Report::default();
    validate_scope(form, Scope::Household, &view, answers, "", ctx, &mut report);
    if !members.is_empty() || ctx.complete {
        for check in &form.checks {
            if let Some(kind) = check.builtin() {
                builtin::run(form, kind, check.severity, answers, members, ctx, &mut report);
            }
        }
    }
    for member in members {
        report.merge(validate_member(form, member, ctx));
    }
    report
}

/// Validates one member's answers alone (member-scope fields and checks).
pub fn validate_member(form: &FormDefinition, member: &MemberAnswers<'_>, ctx: &ValidationContext) -> Report {
    let view = AnswerView::member(form, member.answers);
    let mut report = Report::default();
    let prefix = format!("members[{}].", member.key);
    validate_scope(form, Scope::Member, &view, member.answers, &prefix, ctx, &mut report);
    report
}

/// Validates one visit's answers; its conditions may also read the household's answers.
pub fn validate_visit(
    form: &FormDefinition,
    visit: &BTreeMap<String, FieldValue>,
    household: &BTreeMap<String, FieldValue>,
    ctx: &ValidationContext,
) -> Report {
    let view = AnswerView::visit(form, visit, household);
    let mut report = Report::default();
    validate_scope(form, Scope::Visit, &view, visit, "visit.", ctx, &mut report);
    report
}

/// The rules of one field applied to one value alone: type, length, pattern, range, choice codes,
/// date shape, identifier shapes (domain.md §1) and GPS shape. The device applies exactly these
/// (through [`validate_household`], [`validate_member`] and [`validate_visit`]) to every answer a
/// save writes, and the server applies them to every value a pushed change writes, so one rule
/// set guards both sides. Rules that read other answers (a NIK against the captured sex or birth
/// date) are left out: they only ever warn. Problem paths are the bare field name.
pub fn check_field(field: &FieldDef, value: &FieldValue, ctx: &ValidationContext) -> Vec<Problem> {
    let mut report = Report::default();
    check_value(field, value, &BTreeMap::new(), &field.name, ctx, &mut report);
    report.problems
}

/// Fields, unknown names and rule checks of one scope; `answers` are that scope's own answers.
fn validate_scope(
    form: &FormDefinition,
    scope: Scope,
    view: &AnswerView<'_>,
    answers: &BTreeMap<String, FieldValue>,
    prefix: &str,
    ctx: &ValidationContext,
    report: &mut Report,
) {
    for field in form.fields(scope) {
        let path = format!("{prefix}{}", field.name);
        let relevant = field.relevant.as_ref().is_none_or(|c| c.holds(view));
        match answers.get(&field.name).filter(|v| is_answered(v)) {
            None => {
                let required = match field.required {
                    _ if field.retired => false,
                    Required::No => false,
                    Required::Complete => ctx.complete,
                    Required::Always => true,
                };
                if relevant && required {
                    let why = match field.required {
                        Required::Always => "it is required on every save; enter it",
                        _ => {
                            "it is required when the interview is complete; answer it, or record \
                             the visit outcome that explains why it is missing"
                        }
                    };
                    report.problems.push(Problem {
                        message: format!("{}: no answer; {why}", title(&path, field)),
                        field: path,
                        rule: "required".into(),
                        value: None,
                        severity: Severity::Reject,
                    });
                }
            }
            Some(value) => {
                if !relevant {
                    let condition = field.relevant.as_ref().map(ToString::to_string).unwrap_or_default();
                    report.problems.push(Problem {
                        field: path.clone(),
                        rule: "not_asked".into(),
                        value: Some(value.to_string()),
                        severity: Severity::Warn,
                        message: format!(
                            "{}: answered but only asked when {condition}; clear the answer or correct the answers it depends on",
                            title(&path, field)
                        ),
                    });
                }
                check_value(field, value, answers, &path, ctx, report);
            }
        }
    }

    for (name, value) in answers {
        if form.field(scope, name).is_none() {
            report.problems.push(Problem {
                field: format!("{prefix}{name}"),
                rule: "unknown_field".into(),
                value: Some(value.to_string()),
                severity: Severity::Reject,
                message: format!(
                    "{prefix}{name}: not a {scope} field of form {}; check the spelling or the form version",
                    form.key()
                ),
            });
        }
    }

    for check in form.checks.iter().filter(|c| c.scope == scope) {
        let Some(when) = &check.when else { continue };
        if (check.only_when_complete && !ctx.complete) || !when.holds(view) {
            continue;
        }
        let Some(first) = check.fields.first() else {
            continue;
        };
        // A visit check may blame a household field, whose path has no `visit.` prefix.
        let (blamed, path) = match form.field(scope, first) {
            Some(def) => (Some(def), format!("{prefix}{first}")),
            None => (form.field(Scope::Household, first), first.clone()),
        };
        let named = match blamed {
            Some(def) => title(&path, def),
            None => path.clone(),
        };
        report.problems.push(Problem {
            value: view.answer(first).map(ToString::to_string),
            field: path,
            rule: check.id.clone(),
            severity: check.severity.unwrap_or(Severity::Reject),
            message: format!("{named}: {}", check.message),
        });
    }
}

/// `path (label)`: how a message names a field.
pub(crate) fn title(path: &str, field: &FieldDef) -> String {
    format!("{path} ({})", field.label)
}

/// The rules of the field's kind, applied to one answer.
fn check_value(
    field: &FieldDef,
    value: &FieldValue,
    answers: &BTreeMap<String, FieldValue>,
    path: &str,
    ctx: &ValidationContext,
    report: &mut Report,
) {
    let named = title(path, field);
    let hint = field.help.as_deref();
    let mut push = |rule: &str, severity: Severity, message: String| {
        report.problems.push(Problem {
            field: path.to_owned(),
            rule: rule.to_owned(),
            value: Some(value.to_string()),
            severity,
            message: format!("{named}: {message}"),
        });
    };
    let type_error = |push: &mut dyn FnMut(&str, Severity, String)| {
        push(
            "type",
            Severity::Reject,
            format!("the answer is {}, but this question takes {}; re-enter it", kind_of(value), field.kind.describe()),
        )
    };

    match &field.kind {
        FieldKind::Text { max_len, pattern, pattern_hint } => {
            let Some(text) = value.as_text() else {
                return type_error(&mut push);
            };
            let length = text.chars().count();
            if let Some(max) = max_len.filter(|max| length > *max) {
                push(
                    "max_len",
                    Severity::Reject,
                    format!("is {length} characters long, above the maximum {max}; shorten it"),
                );
            }
            if let Some(pattern) = pattern.as_ref().filter(|p| !p.is_match(text.trim())) {
                let expected = pattern_hint.as_deref().unwrap_or(pattern.as_str());
                push(
                    "pattern",
                    Severity::Reject,
                    format!("does not have the expected form ({expected}); {}", hint.unwrap_or("correct it")),
                );
            }
        }
        FieldKind::Integer { min, max, unknown_codes } => {
            let Some(number) = value.as_int() else {
                return type_error(&mut push);
            };
            if unknown_codes.contains(&number) {
                return;
            }
            let fix = range_fix(min.map(|v| v as f64), max.map(|v| v as f64), hint, unknown_codes);
            if let Some(min) = min.filter(|min| number < *min) {
                push("range", Severity::Reject, format!("{number} is below the minimum {min}; {fix}"));
            }
            if let Some(max) = max.filter(|max| number > *max) {
                push("range", Severity::Reject, format!("{number} is above the maximum {max}; {fix}"));
            }
        }
        FieldKind::Decimal { min, max } => {
            let Some(number) = value.as_f64().filter(|n| n.is_finite()) else {
                return type_error(&mut push);
            };
            let fix = range_fix(*min, *max, hint, &[]);
            if let Some(min) = min.filter(|min| number < *min) {
                push("range", Severity::Reject, format!("is below the minimum {min}; {fix}"));
            }
            if let Some(max) = max.filter(|max| number > *max) {
                push("range", Severity::Reject, format!("is above the maximum {max}; {fix}"));
            }
        }
        FieldKind::SelectOne { choices } => {
            let Some(code) = value.as_int() else {
                return type_error(&mut push);
            };
            if !choices.iter().any(|c| c.code == code) {
                push(
                    "choice",
                    Severity::Reject,
                    format!("{code} is not one of its codes; enter one of {}", list_choices(field)),
                );
            }
        }
        FieldKind::MultiSelect { choices, exclusive } => {
            let Some(sum) = value.as_int() else {
                return type_error(&mut push);
            };
            let mask = choices.iter().filter(|c| !exclusive.contains(&c.code)).fold(0i64, |mask, c| mask | c.code);
            let valid = exclusive.contains(&sum) || (sum > 0 && sum & !mask == 0);
            if !valid {
                push(
                    "choice",
                    Severity::Reject,
                    format!(
                        "{sum} is not a sum of its codes; enter codes from {} joined by '+' (codes {} stand alone)",
                        list_choices(field),
                        show_codes(exclusive)
                    ),
                );
            }
        }
        FieldKind::Date { allow_unknown_parts } => {
            let Some(text) = value.as_text() else {
                return type_error(&mut push);
            };
            match parse_date(text.trim(), *allow_unknown_parts) {
                Err(DateProblem::Format) => {
                    let unknown = if *allow_unknown_parts { " (98 for an unknown day or month)" } else { "" };
                    push("date", Severity::Reject, format!("not a date in the form YYYY-MM-DD{unknown}; re-enter it"))
                }
                Err(DateProblem::Calendar) => {
                    push("date", Severity::Reject, "is not a real calendar date; check the day and the month".into())
                }
                Ok(parts) => {
                    if parts.year < MIN_YEAR {
                        push("range", Severity::Reject, format!("is before {MIN_YEAR}; check the year"));
                    } else if parts.is_after(ctx.today) {
                        push("range", Severity::Reject, "is in the future; check the year".into());
                    }
                }
            }
        }
        FieldKind::Nik { sex_field, birth_date_field } => {
            let Some(text) = value.as_text() else {
                return type_error(&mut push);
            };
            let sex = sex_field
                .as_deref()
                .and_then(|name| answers.get(name))
                .and_then(FieldValue::as_int)
                .and_then(ids::Sex::from_code);
            let birth_date = birth_date_field
                .as_deref()
                .and_then(|name| answers.get(name))
                .and_then(FieldValue::as_text)
                .and_then(|text| parse_date(text.trim(), true).ok())
                .filter(|parts| parts.year >= MIN_YEAR)
                .map(|parts| ids::BirthDate { year: parts.year, month: parts.month, day: parts.day });
            let nik_ctx = ids::NikContext { sex, birth_date, today: ctx.today };
            let (_, findings) = ids::check_nik(text, &nik_ctx);
            findings.into_iter().for_each(|f| push_finding(&mut push, f));
        }
        FieldKind::KkNumber => {
            let Some(text) = value.as_text() else {
                return type_error(&mut push);
            };
            let (_, findings) = ids::check_kk(text, ctx.today);
            findings.into_iter().for_each(|f| push_finding(&mut push, f));
        }
        FieldKind::VillageCode => {
            let Some(text) = value.as_text() else {
                return type_error(&mut push);
            };
            if let Err(error) = ids::VillageCode::parse(text.trim()) {
                for mut finding in error.into_findings() {
                    // The shape finding quotes the text (right for a typed argument); a problem's
                    // message never does: the text may be anything a device or a file sent.
                    if finding.rule.ends_with("_format") {
                        finding.message = "is not a village code of the form PP.KK.CC.DDDD (e.g. 73.14.01.1001), \
                                           where DDDD starts with 1, 2 or 3; re-type the code from the region list"
                            .into();
                    }
                    push_finding(&mut push, finding);
                }
            }
        }
        FieldKind::Gps => {
            let Some(text) = value.as_text() else {
                return type_error(&mut push);
            };
            match parse_gps(text) {
                None => push(
                    "gps",
                    Severity::Reject,
                    "not a reading of the form lat,lon,accuracy_m (e.g. -3.99,119.65,8); take the reading again".into(),
                ),
                Some((lat, lon, accuracy)) => {
                    if !(LAT_RANGE.0..=LAT_RANGE.1).contains(&lat) {
                        push(
                            "range",
                            Severity::Reject,
                            "the latitude is outside Indonesia (-11 to 6); take the reading again".into(),
                        );
                    }
                    if !(LON_RANGE.0..=LON_RANGE.1).contains(&lon) {
                        push(
                            "range",
                            Severity::Reject,
                            "the longitude is outside Indonesia (95 to 141); take the reading again".into(),
                        );
                    }
                    if accuracy < 0.0 {
                        push("range", Severity::Reject, "the accuracy is negative; take the reading again".into());
                    }
                }
            }
        }
        FieldKind::Boolean => {
            if !matches!(value, FieldValue::Bool(_)) {
                type_error(&mut push);
            }
        }
    }
}

/// Turns an identifier finding into a problem on the field (the finding's message is already
/// free of the identifier).
fn push_finding(push: &mut dyn FnMut(&str, Severity, String), finding: Finding) {
    push(&finding.rule, finding.severity, finding.message);
}

/// What to do about an out-of-range number: the field's hint, else the allowed range.
fn range_fix(min: Option<f64>, max: Option<f64>, hint: Option<&str>, unknown: &[i64]) -> String {
    if let Some(hint) = hint {
        return hint.to_owned();
    }
    let range = match (min, max) {
        (Some(min), Some(max)) => format!("enter a value from {min} to {max}"),
        (Some(min), None) => format!("enter {min} or more"),
        (None, Some(max)) => format!("enter {max} or less"),
        (None, None) => "check the value".to_owned(),
    };
    if unknown.is_empty() { range } else { format!("{range}, or {}", show_codes(unknown)) }
}

fn show_codes(codes: &[i64]) -> String {
    let parts: Vec<String> = codes.iter().map(i64::to_string).collect();
    parts.join(", ")
}

/// The answer's type in words, for type errors (never the answer itself).
fn kind_of(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Bool(_) => "yes/no",
        FieldValue::Int(_) => "a whole number",
        FieldValue::Decimal(_) => "a decimal number",
        FieldValue::Text(_) => "text",
    }
}

/// Earliest year a date answer may have (REGSOSEK birth years start in 1900).
const MIN_YEAR: i32 = 1900;
/// Indonesia's rough latitude bounds (domain.md §2.2 A9).
const LAT_RANGE: (f64, f64) = (-11.0, 6.0);
/// Indonesia's rough longitude bounds (domain.md §2.2 A9).
const LON_RANGE: (f64, f64) = (95.0, 141.0);
/// The code for an unknown day or month in REGSOSEK date parts.
const UNKNOWN_PART: u8 = 98;

/// A date answer split into parts; `None` parts were recorded as 98 (unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateParts {
    year: i32,
    month: Option<u8>,
    day: Option<u8>,
}

impl DateParts {
    /// Whether the known parts put the date after `today`.
    fn is_after(&self, today: Date) -> bool {
        let today_month = u8::from(today.month());
        match (self.month, self.day) {
            _ if self.year != today.year() => self.year > today.year(),
            (None, _) => false,
            (Some(month), _) if month != today_month => month > today_month,
            (Some(_), None) => false,
            (Some(_), Some(day)) => day > today.day(),
        }
    }
}

enum DateProblem {
    /// Not `YYYY-MM-DD` (or 98 where unknown parts are not allowed).
    Format,
    /// Shaped right, but no such day (e.g. 1985-02-31).
    Calendar,
}

/// Parses `YYYY-MM-DD`, with `98` for an unknown day or month when allowed.
fn parse_date(text: &str, allow_unknown_parts: bool) -> Result<DateParts, DateProblem> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return Err(DateProblem::Format);
    }
    let year: i32 = text[0..4].parse().map_err(|_| DateProblem::Format)?;
    let month: u8 = text[5..7].parse().map_err(|_| DateProblem::Format)?;
    let day: u8 = text[8..10].parse().map_err(|_| DateProblem::Format)?;
    let unknown = |part: u8| allow_unknown_parts && part == UNKNOWN_PART;
    let month = if unknown(month) { None } else { Some(month) };
    let day = if unknown(day) { None } else { Some(day) };
    match (month, day) {
        (None, Some(_)) => Err(DateProblem::Format),
        (Some(m), _) if !(1..=12).contains(&m) => Err(DateProblem::Calendar),
        (_, Some(d)) if !(1..=31).contains(&d) => Err(DateProblem::Calendar),
        (Some(m), Some(d)) => {
            let month = time::Month::try_from(m).map_err(|_| DateProblem::Calendar)?;
            Date::from_calendar_date(year, month, d).map_err(|_| DateProblem::Calendar)?;
            Ok(DateParts { year, month: Some(m), day: Some(d) })
        }
        _ => Ok(DateParts { year, month, day }),
    }
}

/// Parses `lat,lon,accuracy_m` into three finite numbers.
fn parse_gps(text: &str) -> Option<(f64, f64, f64)> {
    let mut parts = text.split(',').map(|p| p.trim().parse::<f64>().ok().filter(|n| n.is_finite()));
    let reading = (parts.next()??, parts.next()??, parts.next()??);
    match parts.next() {
        None => Some(reading),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    //! Synthetic identifiers only: NIK and KK serials 9000 and up, region 73.14.01 (Panca Lautang).

    use super::*;
    use FieldValue::{Bool, Int, Text};
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 01);
    /// Male, born 15 Mar 1980 in Kec. Panca Lautang.
    const MAN_NIK: &str = "7314011503809001";
    /// Female (day 52 = 12 + 40), born 12 Jul 1985 in Kec. Panca Lautang.
    const WOMAN_NIK: &str = "7314015207859001";
    const HEAD_NAME: &str = "Wette'E Bin Ali";

    fn form() -> &'static FormDefinition {
        FormDefinition::default_dtsen()
    }

    fn complete() -> ValidationContext {
        ValidationContext { today: TODAY, complete: true }
    }

    fn partial() -> ValidationContext {
        ValidationContext { today: TODAY, complete: false }
    }

    fn map(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn text(s: &str) -> FieldValue {
        Text(s.to_owned())
    }

    /// A household with every complete-form question answered consistently.
    fn household() -> BTreeMap<String, FieldValue> {
        let mut answers = map(&[
            ("village_code", text("73.14.01.1001")),
            ("sls_name", text("RT 001 Dusun Satu")),
            ("rt", text("1")),
            ("rw", text("2")),
            ("address", text("Jl. Poros Bilokka")),
            ("head_name", text(HEAD_NAME)),
            ("kk_number", text("7314010101209001")),
            ("member_count", Int(2)),
            ("building_tenure", Int(1)),
            ("land_proof", Int(1)),
            ("floor_area_m2", Int(36)),
            ("floor_material", Int(2)),
            ("wall_material", Int(1)),
            ("roof_material", Int(2)),
            ("water_source", Int(3)),
            ("lighting_source", Int(1)),
            ("power_meter_1", Int(2)),
            ("cooking_fuel", Int(4)),
            ("toilet_facility", Int(1)),
            ("toilet_type", Int(1)),
            ("feces_disposal", Int(1)),
            ("internet_access", Int(3)),
            ("bank_account", Int(4)),
            ("prog_pkh_month", text("2025-11")),
        ]);
        for field in form().fields(Scope::Household) {
            let yes_no = field.kind.choices().iter().map(|c| c.code).eq([1, 2]);
            if field.name.starts_with("asset_") || (field.name.starts_with("prog_") && yes_no) {
                answers.insert(field.name.clone(), Int(2));
            }
            if field.name.starts_with("livestock_") {
                answers.insert(field.name.clone(), Int(0));
            }
        }
        answers.insert("prog_pkh".into(), Int(1));
        answers.insert("asset_motorcycle".into(), Int(1));
        answers
    }

    /// An adult member with every complete-form question answered.
    fn adult(
        seq: i64,
        sex: i64,
        nik: &str,
        birth_date: &str,
        age: i64,
        relationship: i64,
    ) -> BTreeMap<String, FieldValue> {
        let mut answers = map(&[
            ("seq", Int(seq)),
            ("full_name", text(if sex == 1 { HEAD_NAME } else { "Besse Ratna" })),
            ("nik", text(nik)),
            ("presence", Int(1)),
            ("sex", Int(sex)),
            ("birth_date", text(birth_date)),
            ("age_years", Int(age)),
            ("marital_status", Int(2)),
            ("relationship", Int(relationship)),
            ("id_documents", Int(5)),
            ("school_participation", Int(3)),
            ("education_level", Int(3)),
            ("highest_grade", Int(8)),
            ("highest_diploma", Int(3)),
            ("worked_last_week", Int(1)),
            ("work_hours", Int(40)),
            ("industry", Int(1)),
            ("employment_status", Int(1)),
            ("owns_business", Int(2)),
            ("chronic_disease", Int(1)),
            ("health_insurance", Int(1)),
            ("prog_prakerja", Int(2)),
            ("prog_kur", Int(2)),
            ("prog_umi", Int(2)),
            ("employment_insurance", Int(0)),
        ]);
        for field in form().fields(Scope::Member).iter().filter(|f| f.name.starts_with("difficulty_")) {
            answers.insert(field.name.clone(), Int(4));
        }
        if sex == 2 {
            answers.insert("pregnant".into(), Int(2));
        }
        answers
    }

    fn head() -> BTreeMap<String, FieldValue> {
        adult(1, 1, MAN_NIK, "1980-03-15", 45, 1)
    }

    fn wife() -> BTreeMap<String, FieldValue> {
        adult(2, 2, WOMAN_NIK, "1985-07-12", 40, 2)
    }

    fn members<'a>(list: &'a [BTreeMap<String, FieldValue>]) -> Vec<MemberAnswers<'a>> {
        list.iter()
            .map(|answers| MemberAnswers {
                key: answers.get("seq").map(ToString::to_string).unwrap_or_default(),
                answers,
            })
            .collect()
    }

    fn check(
        answers: &BTreeMap<String, FieldValue>,
        list: &[BTreeMap<String, FieldValue>],
        ctx: ValidationContext,
    ) -> Report {
        validate_household(form(), answers, &members(list), &ctx)
    }

    fn problem<'r>(report: &'r Report, field: &str, rule: &str) -> &'r Problem {
        report
            .problems
            .iter()
            .find(|p| p.field == field && p.rule == rule)
            .unwrap_or_else(|| panic!("no {rule} problem on {field} in {:#?}", report.problems))
    }

    fn with(mut answers: BTreeMap<String, FieldValue>, field: &str, value: FieldValue) -> BTreeMap<String, FieldValue> {
        answers.insert(field.to_owned(), value);
        answers
    }

    fn without(mut answers: BTreeMap<String, FieldValue>, field: &str) -> BTreeMap<String, FieldValue> {
        answers.remove(field);
        answers
    }

    #[test]
    fn complete_consistent_household_has_no_problems() {
        let report = check(&household(), &[head(), wife()], complete());
        assert!(report.is_empty(), "{:#?}", report.problems);
    }

    #[test]
    fn each_rule_names_field_rule_and_value() {
        let long_name = "x".repeat(101);
        let cases: Vec<(&str, FieldValue, &str, Severity)> = vec![
            ("floor_area_m2", Int(1200), "range", Severity::Reject),
            ("floor_area_m2", text("luas"), "type", Severity::Reject),
            ("sls_name", text(&long_name), "max_len", Severity::Reject),
            ("rt", text("12a"), "pattern", Severity::Reject),
            ("roof_material", Int(42), "choice", Severity::Reject),
            ("latitude", FieldValue::Decimal(20.5), "range", Severity::Reject),
            ("dtsen_snapshot_date", text("2026-02-30"), "date", Severity::Reject),
            ("dtsen_snapshot_date", text("23-01-2026"), "date", Severity::Reject),
            ("dtsen_snapshot_date", text("2026-12-01"), "range", Severity::Reject),
            ("land_proof", Bool(true), "type", Severity::Reject),
            ("village_code", text("73.14.01.1999"), "village_code_unknown", Severity::Reject),
            ("village_code", text("73.14.01"), "village_code_format", Severity::Reject),
            ("kk_number", text("73140101012090"), "kk_length", Severity::Reject),
            ("roof_colour", Int(1), "unknown_field", Severity::Reject),
        ];
        for (field, value, rule, severity) in cases {
            let report = check(&with(household(), field, value.clone()), &[head(), wife()], complete());
            let found = problem(&report, field, rule);
            assert_eq!(found.value.as_deref(), Some(value.to_string().as_str()), "{field}");
            assert_eq!(found.severity, severity, "{field} {rule}");
            assert!(found.message.starts_with(field), "{}", found.message);
            // One rejection; a lone latitude also draws the coordinates-in-pairs warning.
            assert_eq!(report.rejects().count(), 1, "{field}: {:#?}", report.problems);
        }
    }

    #[test]
    fn range_message_names_label_value_limit_and_what_to_do() {
        let report = check(&with(household(), "floor_area_m2", Int(1200)), &[head(), wife()], complete());
        assert_eq!(
            problem(&report, "floor_area_m2", "range").message,
            "floor_area_m2 (Luas lantai (m²)): 1200 is above the maximum 997; enter the floor area in square metres"
        );
        let report = check(&with(household(), "roof_material", Int(42)), &[], partial());
        let message = &problem(&report, "roof_material", "choice").message;
        assert!(message.contains("42 is not one of its codes") && message.contains("2 genteng"), "{message}");
        let report = check(&with(household(), "roof_colour", Int(1)), &[], partial());
        assert!(problem(&report, "roof_colour", "unknown_field").message.contains("dtsen-ground-check@1"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut answers = with(household(), "floor_area_m2", Int(0));
        answers.insert("roof_material".into(), Int(99));
        answers.insert("rw".into(), text("RW dua"));
        let report = check(&answers, &[head(), wife()], complete());
        let fields: Vec<&str> = report.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["rw", "floor_area_m2", "roof_material"]);
        assert_eq!(report.rejects().count(), 3);
        assert!(report.is_blocking());
    }

    #[test]
    fn land_proof_is_asked_only_when_the_house_is_owned() {
        // Rented: land_proof is not asked, so its absence is fine even for a complete form.
        let rented = without(with(household(), "building_tenure", Int(2)), "land_proof");
        assert!(check(&rented, &[head(), wife()], complete()).is_empty());
        // Owned: it is asked, and required for a complete form.
        let owned = without(household(), "land_proof");
        let report = check(&owned, &[head(), wife()], complete());
        assert_eq!(problem(&report, "land_proof", "required").severity, Severity::Reject);
        // Answered although not asked: a warning that does not block.
        let report = check(&with(household(), "building_tenure", Int(2)), &[head(), wife()], complete());
        let warned = problem(&report, "land_proof", "not_asked");
        assert_eq!(warned.severity, Severity::Warn);
        assert_eq!(warned.value.as_deref(), Some("1"));
        assert!(warned.message.contains("only asked when building_tenure is 1"), "{}", warned.message);
        assert!(!report.is_blocking());
    }

    #[test]
    fn complete_questions_are_required_only_when_the_outcome_asks_for_a_complete_form() {
        let answers = without(household(), "roof_material");
        let report = check(&answers, &[head(), wife()], complete());
        let missing = problem(&report, "roof_material", "required");
        assert_eq!((missing.severity, missing.value.as_deref()), (Severity::Reject, None));
        assert!(check(&answers, &[head(), wife()], partial()).is_empty());
        // An always-required question is required on every save.
        let report = check(&without(household(), "village_code"), &[], partial());
        assert_eq!(problem(&report, "village_code", "required").severity, Severity::Reject);
        // Blank text is no answer.
        let report = check(&with(household(), "head_name", text("  ")), &[], partial());
        problem(&report, "head_name", "required");
    }

    #[test]
    fn context_for_outcome_is_complete_only_for_outcomes_asking_for_the_full_form() {
        assert!(ValidationContext::for_outcome(form(), Some(1), TODAY).complete);
        assert!(ValidationContext::for_outcome(form(), Some(12), TODAY).complete);
        assert!(!ValidationContext::for_outcome(form(), Some(3), TODAY).complete);
        assert!(!ValidationContext::for_outcome(form(), None, TODAY).complete);
    }

    #[test]
    fn nik_birth_date_mismatch_with_the_members_birth_date_warns_without_blocking() {
        let wife = with(wife(), "birth_date", text("1985-07-15"));
        let report = check(&household(), &[head(), wife], complete());
        let warned = problem(&report, "members[2].nik", "nik_birth_date_mismatch");
        assert_eq!(warned.severity, Severity::Warn);
        assert_eq!(warned.value.as_deref(), Some(WOMAN_NIK));
        assert!(!report.is_blocking(), "{:#?}", report.problems);
    }

    #[test]
    fn nik_sex_mismatch_with_the_members_sex_warns() {
        let report = validate_member(
            form(),
            &MemberAnswers { key: "2".into(), answers: &with(wife(), "sex", Int(1)) },
            &partial(),
        );
        assert_eq!(problem(&report, "members[2].nik", "nik_sex_mismatch").severity, Severity::Warn);
    }

    #[test]
    fn invalid_member_nik_blocks_and_names_the_member() {
        let bad = "7314015213859001"; // month 13
        let report = check(&household(), &[head(), with(wife(), "nik", text(bad))], complete());
        let rejected = problem(&report, "members[2].nik", "nik_month_range");
        assert_eq!(rejected.severity, Severity::Reject);
        assert_eq!(rejected.value.as_deref(), Some(bad));
        assert!(rejected.message.starts_with("members[2].nik (NIK):"), "{}", rejected.message);
        assert!(report.is_blocking());
    }

    #[test]
    fn unknown_village_code_blocks() {
        let report = check(&with(household(), "village_code", text("73.14.01.1999")), &[], partial());
        assert!(report.is_blocking());
        assert_eq!(report.rejects().count(), 1);
    }

    #[test]
    fn messages_never_carry_names_or_identifiers() {
        let bad_nik = "7314015213859001";
        let answers = with(with(household(), "kk_number", text("73140101012090")), "head_name", text("Ali 2"));
        let list = [
            with(head(), "full_name", text(&"Nama Panjang ".repeat(10))),
            with(with(wife(), "nik", text(bad_nik)), "birth_date", text("1985-13-40")),
            with(adult(3, 2, WOMAN_NIK, "1985-07-15", 40, 3), "full_name", text("Ratna 3")),
        ];
        let report = check(&answers, &list, complete());
        assert!(report.problems.len() >= 5, "{:#?}", report.problems);
        for p in &report.problems {
            for secret in [
                bad_nik,
                WOMAN_NIK,
                "7314015213",
                "73140101012090",
                "Ali 2",
                "Nama Panjang",
                "Ratna",
                "1985-13-40",
                "1985-07-15",
            ] {
                assert!(!p.message.contains(secret), "{secret} leaked into {}", p.message);
            }
        }
    }

    #[test]
    fn member_count_must_match_present_members() {
        let report = check(&with(household(), "member_count", Int(3)), &[head(), wife()], complete());
        let warned = problem(&report, "member_count", "member_count_matches");
        assert_eq!((warned.severity, warned.value.as_deref()), (Severity::Warn, Some("3")));
        assert!(!report.is_blocking());
        // A member who moved out does not count.
        let moved = with(wife(), "presence", Int(3));
        let report = check(&with(household(), "member_count", Int(1)), &[head(), moved], complete());
        assert!(report.is_empty(), "{:#?}", report.problems);
    }

    #[test]
    fn exactly_one_head_rejects_for_a_complete_form_and_warns_otherwise() {
        let two_heads = [head(), with(wife(), "relationship", Int(1))];
        let report = check(&household(), &two_heads, complete());
        let rejected = problem(&report, "members", "exactly_one_head");
        assert_eq!((rejected.severity, rejected.value.as_deref()), (Severity::Reject, Some("1, 2")));
        let report = check(&household(), &two_heads, partial());
        assert_eq!(problem(&report, "members", "exactly_one_head").severity, Severity::Warn);
        // A dead head does not count: record the new head.
        let report =
            check(&with(household(), "member_count", Int(1)), &[with(head(), "presence", Int(2)), wife()], complete());
        assert_eq!(problem(&report, "members", "exactly_one_head").severity, Severity::Reject);
        // No members yet and no interview: nothing to say.
        assert!(check(&household(), &[], partial()).is_empty());
    }

    #[test]
    fn two_members_with_one_nik_are_rejected() {
        let report = check(&household(), &[head(), with(wife(), "nik", text(MAN_NIK))], partial());
        let rejected = problem(&report, "members[2].nik", "nik_unique_in_household");
        assert_eq!(rejected.severity, Severity::Reject);
        assert_eq!(rejected.value.as_deref(), Some(MAN_NIK));
        assert!(rejected.message.contains("member 1"), "{}", rejected.message);
    }

    #[test]
    fn electric_assets_without_electricity_are_rejected() {
        let answers = with(without(with(household(), "lighting_source", Int(4)), "power_meter_1"), "asset_ac", Int(1));
        let report = check(&answers, &[head(), wife()], complete());
        let rejected = problem(&report, "asset_ac", "asset_ac_needs_electricity");
        assert_eq!((rejected.severity, rejected.value.as_deref()), (Severity::Reject, Some("1")));
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    }

    #[test]
    fn lpg_tube_without_lpg_cooking_warns() {
        let answers = with(household(), "asset_lpg_5kg_plus", Int(1));
        let report = check(&answers, &[head(), wife()], complete());
        assert_eq!(problem(&report, "asset_lpg_5kg_plus", "lpg_asset_matches_cooking_fuel").severity, Severity::Warn);
        let agrees = with(answers, "cooking_fuel", Int(3));
        assert!(check(&agrees, &[head(), wife()], complete()).is_empty());
    }

    #[test]
    fn caregiver_is_required_for_the_elderly_in_a_complete_form() {
        let grandmother = adult(3, 2, "7314014101509001", "1950-01-01", 76, 6);
        let grandmother = without(grandmother, "pregnant");
        let ctx = complete();
        let report = validate_member(form(), &MemberAnswers { key: "3".into(), answers: &grandmother }, &ctx);
        assert_eq!(problem(&report, "members[3].caregiver", "caregiver_required").severity, Severity::Reject);
        let cared = with(grandmother, "caregiver", Int(1));
        let report = validate_member(form(), &MemberAnswers { key: "3".into(), answers: &cared }, &ctx);
        assert!(report.is_empty(), "{:#?}", report.problems);
    }

    #[test]
    fn pregnancy_is_asked_only_of_women_of_childbearing_age_who_have_married() {
        let report = validate_member(
            form(),
            &MemberAnswers { key: "1".into(), answers: &with(head(), "pregnant", Int(2)) },
            &complete(),
        );
        assert_eq!(problem(&report, "members[1].pregnant", "not_asked").severity, Severity::Warn);
        let report = validate_member(
            form(),
            &MemberAnswers { key: "2".into(), answers: &without(wife(), "pregnant") },
            &complete(),
        );
        problem(&report, "members[2].pregnant", "required");
    }

    #[test]
    fn birth_dates_accept_unknown_parts_but_not_impossible_ones() {
        let ctx = partial();
        let member_with = |date: &str| {
            let answers = map(&[
                ("full_name", text("Besse")),
                ("presence", Int(1)),
                ("sex", Int(2)),
                ("relationship", Int(3)),
                ("birth_date", text(date)),
            ]);
            validate_member(form(), &MemberAnswers { key: "4".into(), answers: &answers }, &ctx)
        };
        assert!(member_with("1980-98-98").is_empty());
        assert!(member_with("1980-07-98").is_empty());
        problem(&member_with("1980-98-12"), "members[4].birth_date", "date");
        problem(&member_with("1980-02-30"), "members[4].birth_date", "date");
        problem(&member_with("1899-01-01"), "members[4].birth_date", "range");
        problem(&member_with("2026-03-02"), "members[4].birth_date", "range");
        assert!(member_with("2026-03-01").is_empty());
        assert!(member_with("2026-98-98").is_empty());
    }

    #[test]
    fn multi_select_sums_must_be_made_of_its_codes() {
        let ctx = partial();
        let docs = |n| {
            let answers = with(head(), "id_documents", Int(n));
            validate_member(form(), &MemberAnswers { key: "1".into(), answers: &answers }, &ctx)
        };
        assert!(docs(0).is_empty() && docs(7).is_empty());
        problem(&docs(8), "members[1].id_documents", "choice");
        let insurance = |n| {
            let answers = with(head(), "health_insurance", Int(n));
            validate_member(form(), &MemberAnswers { key: "1".into(), answers: &answers }, &ctx)
        };
        assert!(insurance(99).is_empty() && insurance(15).is_empty());
        problem(&insurance(16), "members[1].health_insurance", "choice");
    }

    #[test]
    fn visit_answers_are_checked_against_the_visit_scope() {
        let house = household();
        let visit = map(&[("outcome", Int(1)), ("purpose", Int(1)), ("notice_given", Bool(true))]);
        assert!(validate_visit(form(), &visit, &house, &complete()).is_empty());

        let report = validate_visit(form(), &map(&[("purpose", Int(9))]), &house, &complete());
        let fields: Vec<(&str, &str)> = report.problems.iter().map(|p| (p.field.as_str(), p.rule.as_str())).collect();
        assert_eq!(
            fields,
            [("visit.outcome", "required"), ("visit.purpose", "choice"), ("visit.notice_given", "required")]
        );

        let refused_but_complete = with(visit, "refusal_reason", text("sibuk"));
        let report = validate_visit(form(), &refused_but_complete, &house, &complete());
        let warned = problem(&report, "visit.refusal_reason", "not_asked");
        assert!(warned.message.contains("outcome is 4"), "{}", warned.message);
        assert!(!warned.message.contains("sibuk"));
    }

    #[test]
    fn visit_checks_read_household_answers_and_blame_fields_by_their_own_path() {
        let form = FormDefinition::from_json(
            r#"{"id": "v", "version": 1, "title": "v",
                "household": [{"name": "head_name", "label": "Nama kepala keluarga", "kind": {"type": "text"}}],
                "member": [],
                "visit": [{"name": "outcome", "label": "Hasil", "kind": {"type": "integer"}}],
                "outcomes": [],
                "checks": [{"id": "interview_needs_head", "scope": "visit", "severity": "warn",
                            "fields": ["head_name", "outcome"],
                            "when": {"all": [{"field": "outcome", "eq": 1}, {"field": "head_name", "answered": false}]},
                            "message": "no answer although the interview was complete; enter the head's name"}]}"#,
        )
        .expect("valid");
        let visit = map(&[("outcome", Int(1))]);
        let report = validate_visit(&form, &visit, &BTreeMap::new(), &partial());
        let warned = problem(&report, "head_name", "interview_needs_head");
        assert_eq!(warned.severity, Severity::Warn);
        assert!(warned.message.starts_with("head_name (Nama kepala keluarga): no answer"), "{}", warned.message);
        let named = map(&[("head_name", text(HEAD_NAME))]);
        assert!(validate_visit(&form, &visit, &named, &partial()).is_empty());
    }

    #[test]
    fn gps_readings_must_be_inside_indonesia() {
        let form = FormDefinition::from_json(
            r#"{"id": "g", "version": 1, "title": "g", "household": [{"name": "pos", "label": "Posisi", "kind": {"type": "gps"}}],
                "member": [], "visit": [], "outcomes": []}"#,
        )
        .expect("valid");
        let rules = |reading: &str| -> Vec<String> {
            let answers = map(&[("pos", text(reading))]);
            validate_household(&form, &answers, &[], &partial()).problems.into_iter().map(|p| p.rule).collect()
        };
        assert!(rules("-3.99,119.65,8").is_empty());
        assert_eq!(rules("-3.99,119.65"), ["gps"]);
        assert_eq!(rules("a,b,c"), ["gps"]);
        assert_eq!(rules("-12,150,-1"), ["range", "range", "range"]);
    }

    #[test]
    fn report_merge_and_filters_split_rejects_from_warnings() {
        let mut report = check(&with(household(), "member_count", Int(3)), &[head(), wife()], complete());
        assert_eq!((report.rejects().count(), report.warnings().count()), (0, 1));
        report.merge(check(&without(household(), "village_code"), &[], partial()));
        assert_eq!((report.rejects().count(), report.warnings().count()), (1, 1));
        assert!(report.is_blocking());
        assert_eq!(report.problems[1].to_string(), report.problems[1].message);
    }

    /// Values a hostile device might write into an identifier field.
    const HOSTILE: [&str; 6] = [
        "'; DROP TABLE households; --",
        "<script>alert(1)</script>",
        "../../../etc/passwd",
        "73140115038091",
        "7314019913809001",
        "0014011503809001",
    ];

    #[test]
    fn check_field_refuses_hostile_text_in_every_shaped_field_without_repeating_it() {
        let form = form();
        let shaped: Vec<&FieldDef> = Scope::ALL
            .iter()
            .flat_map(|scope| form.fields(*scope))
            .filter(|f| match &f.kind {
                FieldKind::Nik { .. } | FieldKind::KkNumber | FieldKind::VillageCode | FieldKind::Gps => true,
                FieldKind::Text { pattern, .. } => pattern.is_some(),
                _ => false,
            })
            .collect();
        assert!(shaped.len() >= 10, "the form's shaped fields: {}", shaped.len());
        for field in shaped {
            for value in HOSTILE {
                let problems = check_field(field, &text(value), &partial());
                // A run of digits can be a valid free-form number (a PLN customer id): patterned
                // text must refuse the texts with other characters, identifiers every one.
                let rejected = problems.iter().any(|p| p.severity == Severity::Reject);
                let must = !matches!(field.kind, FieldKind::Text { .. }) || value.chars().any(|c| !c.is_ascii_digit());
                if must {
                    assert!(rejected, "{} accepted {value:?}", field.name);
                }
                for p in &problems {
                    assert!(!p.message.contains(value), "{}: the message repeats the value: {}", field.name, p.message);
                }
            }
        }
    }

    #[test]
    fn check_field_applies_length_pattern_range_choices_and_identifier_parts() {
        let rules = |scope: Scope, name: &str, value: FieldValue| -> Vec<String> {
            let field = form().field(scope, name).expect("field");
            check_field(field, &value, &partial())
                .into_iter()
                .filter(|p| p.severity == Severity::Reject)
                .map(|p| p.rule)
                .collect()
        };
        assert_eq!(rules(Scope::Household, "head_name", text(&"La Sintetis ".repeat(9))), ["max_len"]);
        assert_eq!(rules(Scope::Household, "rt", text("0001")), ["pattern"]);
        assert_eq!(rules(Scope::Household, "roof_material", Int(77)), ["choice"]);
        assert_eq!(rules(Scope::Household, "floor_area_m2", Int(5000)), ["range"]);
        assert_eq!(rules(Scope::Household, "floor_area_m2", text("36")), ["type"]);
        assert_eq!(rules(Scope::Member, "nik", text("7314019913809001")), ["nik_day_range", "nik_month_range"]);
        assert_eq!(rules(Scope::Member, "nik", text("0514011503809001")), ["nik_province_range"]);
        assert_eq!(rules(Scope::Household, "kk_number", text("7300010503159101")), ["kk_regency_zero"]);
        assert_eq!(rules(Scope::Household, "village_code", text("73.14.01.1999")), ["village_code_unknown"]);
        assert_eq!(rules(Scope::Member, "birth_date", text("2027-01-01")), ["range"]);
        // A NIK that disagrees with the captured sex is only a warning, and check_field does not
        // even read other answers.
        assert!(rules(Scope::Member, "nik", text(MAN_NIK)).is_empty());
    }
}
