//! A form definition → XLSForm workbook bytes (survey, choices, settings, pilar_outcomes,
//! pilar_checks), written so that [`crate::read_xlsform`] gives the identical definition back.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use sync_core::finding::Severity;
use sync_core::form::{Choice, Condition, FieldDef, FieldKind, FormDefinition, Required, Scope};

use crate::expression::constraint::write_constraint;
use crate::expression::{UnwritableCondition, write_condition};
use crate::layout::*;

/// Why a definition could not be written as an XLSForm.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A condition has a shape an expression cannot hold (it would not read back the same).
    #[error("{location}: {source}")]
    Condition {
        /// Where the condition is, e.g. "member field `pregnant` (relevant)".
        location: String,
        /// What the condition holds that an expression cannot.
        source: UnwritableCondition,
    },
    /// The workbook library failed to build the file.
    #[error("could not build the XLSX workbook: {0}")]
    Workbook(#[from] XlsxError),
}

/// Writes `form` as XLSX bytes.
pub fn write_xlsform(form: &FormDefinition) -> Result<Vec<u8>, ExportError> {
    let lists = ChoiceLists::of(form);
    let mut survey = vec![cells(&SURVEY_COLUMNS)];
    for scope in Scope::ALL {
        let fields = form.fields(scope);
        let repeat = match scope {
            Scope::Household => None,
            Scope::Member => Some((MEMBER_REPEAT, "Anggota rumah tangga")),
            Scope::Visit => Some((VISIT_REPEAT, "Kunjungan")),
        };
        if let Some((name, label)) = repeat {
            if fields.is_empty() {
                continue;
            }
            survey.push(row(&[(TYPE, "begin_repeat"), (NAME, name), (LABEL_WRITTEN, label), (PILAR_SCOPE, name)]));
        }
        for field in fields {
            survey.push(field_row(scope, field, &lists)?);
        }
        if repeat.is_some() {
            survey.push(row(&[(TYPE, "end_repeat")]));
        }
    }

    let mut choices = vec![cells(&CHOICES_COLUMNS)];
    for (name, list) in &lists.lists {
        for choice in list {
            choices.push(vec![name.clone(), choice.code.to_string(), choice.label.clone()]);
        }
    }

    let settings = vec![
        cells(&SETTINGS_COLUMNS),
        vec![
            form.id.clone(),
            form.version.to_string(),
            form.title.clone(),
            LANGUAGE_WRITTEN.to_owned(),
            form.description.clone().unwrap_or_default(),
        ],
    ];

    let mut outcomes = vec![cells(&OUTCOMES_COLUMNS)];
    for outcome in &form.outcomes {
        outcomes.push(vec![
            outcome.code.to_string(),
            outcome.key.clone(),
            outcome.label.clone(),
            yes_no(outcome.is_final),
            yes_no(outcome.complete_form),
        ]);
    }

    let mut checks = vec![cells(&CHECKS_COLUMNS)];
    for check in &form.checks {
        let when = match &check.when {
            Some(when) => condition(when, || format!("check `{}` (when)", check.id))?,
            None => String::new(),
        };
        checks.push(vec![
            check.id.clone(),
            check.scope.as_str().to_owned(),
            check
                .severity
                .map(|s| match s {
                    Severity::Reject => "reject".to_owned(),
                    Severity::Warn => "warn".to_owned(),
                })
                .unwrap_or_default(),
            check.fields.join(" "),
            when,
            if check.only_when_complete { "yes".into() } else { String::new() },
            check.message.clone(),
        ]);
    }

    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    for (name, rows) in
        [(SURVEY, survey), (CHOICES, choices), (SETTINGS, settings), (OUTCOMES, outcomes), (CHECKS, checks)]
    {
        let sheet = workbook.add_worksheet();
        sheet.set_name(name)?;
        for (r, cells) in rows.iter().enumerate() {
            let r = u32::try_from(r).map_err(|_| XlsxError::RowColumnLimitError)?;
            for (c, text) in cells.iter().enumerate() {
                let c = u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError)?;
                if text.is_empty() {
                    continue;
                }
                if r == 0 {
                    sheet.write_string_with_format(r, c, text, &bold)?;
                } else {
                    sheet.write_string(r, c, text)?;
                }
            }
        }
        sheet.set_freeze_panes(1, 0)?;
        if let Some(header) = rows.first() {
            for (c, title) in header.iter().enumerate() {
                let width = if title.starts_with(LABEL) || title == MESSAGE || title == RELEVANT { 48.0 } else { 18.0 };
                sheet.set_column_width(u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError)?, width)?;
            }
        }
    }
    Ok(workbook.save_to_buffer()?)
}

/// A survey row for one field.
fn field_row(scope: Scope, field: &FieldDef, lists: &ChoiceLists) -> Result<Vec<String>, ExportError> {
    let mut values: Vec<(&str, String)> = Vec::new();
    let (kind_type, pilar_kind) = match &field.kind {
        FieldKind::Text { .. } => ("text".to_owned(), None),
        FieldKind::Integer { .. } => ("integer".to_owned(), None),
        FieldKind::Decimal { .. } => ("decimal".to_owned(), None),
        FieldKind::SelectOne { choices } => (format!("select_one {}", lists.name_of(choices)), None),
        FieldKind::MultiSelect { choices, .. } => (format!("select_multiple {}", lists.name_of(choices)), None),
        FieldKind::Date { .. } => ("date".to_owned(), None),
        FieldKind::Gps => ("geopoint".to_owned(), None),
        FieldKind::Nik { .. } => ("text".to_owned(), Some("nik")),
        FieldKind::KkNumber => ("text".to_owned(), Some("kk_number")),
        FieldKind::VillageCode => ("text".to_owned(), Some("village_code")),
        FieldKind::Boolean => ("text".to_owned(), Some("boolean")),
    };
    values.push((TYPE, kind_type));
    values.push((NAME, field.name.clone()));
    values.push((LABEL_WRITTEN, field.label.clone()));
    values.extend(field.help.clone().map(|h| (HINT, h)));
    match field.required {
        Required::No => {}
        Required::Always => values.push((REQUIRED, "yes".into())),
        Required::Complete => values.push((PILAR_REQUIRED, "complete".into())),
    }
    if let Some(relevant) = &field.relevant {
        values.push((RELEVANT, condition(relevant, || format!("{scope} field `{}` (relevant)", field.name))?));
    }
    values.extend(write_constraint(&field.kind).map(|c| (CONSTRAINT, c)));
    if !field.device_editable {
        values.push((READ_ONLY, "yes".into()));
    }
    values.extend(pilar_kind.map(|k| (PILAR_KIND, k.to_owned())));
    if field.sensitive {
        values.push((PILAR_SENSITIVE, "yes".into()));
    }
    if field.retired {
        values.push((PILAR_RETIRED, "yes".into()));
    }
    match &field.kind {
        FieldKind::Text { pattern_hint: Some(hint), .. } => values.push((CONSTRAINT_MESSAGE, hint.clone())),
        FieldKind::Integer { unknown_codes, .. } if !unknown_codes.is_empty() => {
            values.push((PILAR_UNKNOWN_CODES, codes(unknown_codes)));
        }
        FieldKind::MultiSelect { exclusive, .. } if !exclusive.is_empty() => {
            values.push((PILAR_EXCLUSIVE, codes(exclusive)));
        }
        FieldKind::Date { allow_unknown_parts: true } => values.push((PILAR_ALLOW_UNKNOWN_PARTS, "yes".into())),
        FieldKind::Nik { sex_field, birth_date_field } => {
            values.extend(sex_field.clone().map(|f| (PILAR_SEX_FIELD, f)));
            values.extend(birth_date_field.clone().map(|f| (PILAR_BIRTH_DATE_FIELD, f)));
        }
        _ => {}
    }
    Ok(SURVEY_COLUMNS
        .iter()
        .map(|column| values.iter().find(|(c, _)| c == column).map(|(_, v)| v.clone()).unwrap_or_default())
        .collect())
}

fn condition(condition: &Condition, location: impl FnOnce() -> String) -> Result<String, ExportError> {
    write_condition(condition).map_err(|source| ExportError::Condition { location: location(), source })
}

/// A survey row with only these columns filled.
fn row(values: &[(&str, &str)]) -> Vec<String> {
    SURVEY_COLUMNS
        .iter()
        .map(|column| values.iter().find(|(c, _)| c == column).map(|(_, v)| (*v).to_owned()).unwrap_or_default())
        .collect()
}

fn cells(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| (*c).to_owned()).collect()
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn codes(codes: &[i64]) -> String {
    codes.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
}

/// The choices sheet's lists: one per distinct set of choices (a yes/no list shared by forty
/// questions is written once), named after its labels when shared and short (`ya_tidak`), else
/// after the first field that uses it.
struct ChoiceLists {
    lists: Vec<(String, Vec<Choice>)>,
}

impl ChoiceLists {
    fn of(form: &FormDefinition) -> ChoiceLists {
        let all: Vec<&FieldDef> = Scope::ALL.iter().flat_map(|s| form.fields(*s)).collect();
        let mut lists: Vec<(String, Vec<Choice>)> = Vec::new();
        for field in &all {
            let choices = field.kind.choices();
            if choices.is_empty() || lists.iter().any(|(_, list)| list == choices) {
                continue;
            }
            let shared = all.iter().filter(|f| f.kind.choices() == choices).count() > 1;
            let from_labels = choices.iter().map(|c| slug(&c.label)).collect::<Vec<_>>().join("_");
            let base = if shared && !from_labels.is_empty() && from_labels.len() <= 24 {
                from_labels
            } else {
                field.name.clone()
            };
            let mut name = base.clone();
            let mut suffix = 2;
            while lists.iter().any(|(n, _)| *n == name) {
                name = format!("{base}_{suffix}");
                suffix += 1;
            }
            lists.push((name, choices.to_vec()));
        }
        ChoiceLists { lists }
    }

    fn name_of(&self, choices: &[Choice]) -> &str {
        self.lists.iter().find(|(_, list)| list == choices).map(|(name, _)| name.as_str()).unwrap_or_default()
    }
}

/// A label as a list-name word: lowercase ASCII letters and digits, other runs as `_`.
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}
