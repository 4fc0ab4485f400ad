//! XLSForm workbook bytes → a checked form definition, or every problem at once.
//!
//! Order of work: the choices sheet (lists of codes), the survey sheet (questions, their kinds and
//! rules; groups flattened, repeats giving the member and visit scopes), settings and
//! `pilar_outcomes`; then, with every question known, `relevant` and `pilar_checks.when`
//! conditions; last, [`FormDefinition::check`] on the result.

mod survey;
mod table;

use std::collections::{BTreeMap, HashMap};

use sync_core::finding::Severity;
use sync_core::form::{CheckDef, Choice, FormDefinition, FormError, OutcomeDef, Scope};

use crate::expression::parse_condition;
use crate::layout::*;
use crate::report::{ImportError, Problem};
use table::{Row, Table, read_tables};

/// Reads XLSForm bytes (XLSX; calamine also opens XLS, XLSB and ODS) as a form definition that
/// passes [`FormDefinition::check`].
pub fn read_xlsform(bytes: &[u8]) -> Result<FormDefinition, ImportError> {
    let tables = read_tables(bytes)?;
    let mut report = Report::default();
    let find = |name: &str| tables.iter().find(|t| t.name.trim().eq_ignore_ascii_case(name));
    for table in &tables {
        let name = table.name.trim().to_lowercase();
        if name.starts_with("pilar_") && !SHEETS.contains(&name.as_str()) {
            report.sheet(
                &table.name,
                format!("unknown Pilar sheet; Pilar reads {OUTCOMES} and {CHECKS}: fix the name or remove the sheet"),
            );
        }
    }

    let lists = find(CHOICES).map(|t| read_choices(t, &mut report)).unwrap_or_default();
    let survey = match find(SURVEY) {
        Some(table) => Some(survey::read(table, &lists, &mut report)),
        None => {
            report.sheet(
                SURVEY,
                "the workbook has no survey sheet; an XLSForm needs survey, choices (for select questions) and settings",
            );
            None
        }
    };
    let settings = read_settings(find(SETTINGS), &mut report);
    let outcomes = find(OUTCOMES).map(|t| read_outcomes(t, &mut report)).unwrap_or_default();

    let mut form = FormDefinition {
        id: settings.id,
        version: settings.version,
        title: settings.title,
        description: settings.description,
        household: Vec::new(),
        member: Vec::new(),
        visit: Vec::new(),
        outcomes: outcomes.iter().map(|(_, o)| o.clone()).collect(),
        checks: Vec::new(),
    };
    let mut places = Places::default();
    places.insert("form".into(), SETTINGS, Some(2), None);
    for (row, outcome) in &outcomes {
        places.insert(format!("outcome {} `{}`", outcome.code, outcome.key), OUTCOMES, Some(*row), None);
    }
    if let Some(survey) = &survey {
        survey::place(survey, &mut form, &mut places, &mut report);
        survey::conditions(survey, &mut form, &mut report);
    }
    if let Some(table) = find(CHECKS) {
        form.checks = read_checks(table, &form, &mut places, &mut report);
    }

    if !report.problems.is_empty() {
        return Err(report.finish());
    }
    match form.check() {
        Ok(()) => Ok(form),
        Err(error) => {
            report.problems.push(places.problem(&error));
            Err(report.finish())
        }
    }
}

/// The problems found so far.
#[derive(Default)]
pub(crate) struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// A problem with a sheet as a whole.
    pub fn sheet(&mut self, sheet: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            sheet: sheet.to_owned(),
            row: None,
            row_type: None,
            column: None,
            message: message.into(),
        });
    }

    /// A problem in one row (and column) of a sheet.
    pub fn row(
        &mut self,
        sheet: &str,
        row: &Row,
        row_type: Option<&str>,
        column: Option<&str>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            sheet: sheet.to_owned(),
            row: Some(row.number),
            row_type: row_type.filter(|t| !t.is_empty()).map(str::to_owned),
            column: column.map(str::to_owned),
            message: message.into(),
        });
    }

    /// `pilar::` columns the sheet does not know are typos: Pilar would silently lose them.
    pub fn unknown_pilar_columns(&mut self, table: &Table, known: &[&str]) {
        for header in table.headers() {
            if header.starts_with("pilar::") && !known.contains(&header.as_str()) {
                self.sheet(
                    &table.name,
                    format!("unknown column `{header}`; Pilar's columns here are {}", known.join(", ")),
                );
            }
        }
    }

    /// Every problem, in sheet order and then row order.
    fn finish(mut self) -> ImportError {
        let sheet_order =
            |p: &Problem| SHEETS.iter().position(|s| p.sheet.eq_ignore_ascii_case(s)).unwrap_or(SHEETS.len());
        self.problems.sort_by_key(|p| (sheet_order(p), p.row.unwrap_or(0)));
        ImportError::Problems(self.problems)
    }
}

/// Where each named thing came from, to put a [`FormError`] on its row.
#[derive(Default)]
pub(crate) struct Places {
    by_location: HashMap<String, (String, Option<u32>, Option<String>)>,
}

impl Places {
    /// Remembers that the thing `FormError` calls `location` is on this row.
    pub fn insert(&mut self, location: String, sheet: &str, row: Option<u32>, row_type: Option<&str>) {
        self.by_location.insert(location, (sheet.to_owned(), row, row_type.map(str::to_owned)));
    }

    fn problem(&self, error: &FormError) -> Problem {
        let location = match error {
            FormError::DuplicateField { scope, field } => format!("{scope} field `{field}`"),
            FormError::UnknownField { location, .. } | FormError::Invalid { location, .. } => location.clone(),
            FormError::Json(_) => String::new(),
        };
        let place = self
            .by_location
            .iter()
            .filter(|(key, _)| location.starts_with(key.as_str()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, place)| place.clone());
        let (sheet, row, row_type) = place.unwrap_or_else(|| (SURVEY.to_owned(), None, None));
        Problem { sheet, row, row_type, column: None, message: error.to_string() }
    }
}

/// The choice lists by name, each choice with the row it came from.
pub(crate) type Lists = BTreeMap<String, Vec<Choice>>;

fn read_choices(table: &Table, report: &mut Report) -> Lists {
    let list_column = table.column(LIST_NAME).or_else(|| table.column("list name"));
    let name_column = table.column(NAME);
    let label_column = label_column(table, report);
    if list_column.is_none() || name_column.is_none() {
        report.sheet(&table.name, "the choices sheet needs the columns list_name, name and label");
        return Lists::new();
    }
    report.unknown_pilar_columns(table, &[]);
    let mut lists = Lists::new();
    for row in &table.rows {
        let (list, name, label) = (row.get(list_column), row.get(name_column), row.get(label_column));
        if list.is_empty() {
            report.row(
                &table.name,
                row,
                None,
                Some(LIST_NAME),
                "the choice has no list_name; name the list it belongs to",
            );
            continue;
        }
        let Ok(code) = name.parse::<i64>() else {
            report.row(
                &table.name,
                row,
                None,
                Some(NAME),
                format!(
                    "choice `{name}` of list `{list}` is not a whole number; Pilar stores choices as codes: \
                     use 1, 2, 3, … (1, 2, 4, 8, … for select_multiple)"
                ),
            );
            continue;
        };
        if label.is_empty() {
            report.row(
                &table.name,
                row,
                None,
                Some(LABEL),
                format!("choice {code} of list `{list}` has no label; give it one"),
            );
            continue;
        }
        let choices = lists.entry(list.to_owned()).or_default();
        if choices.iter().any(|c: &Choice| c.code == code) {
            report.row(
                &table.name,
                row,
                None,
                Some(NAME),
                format!("choice {code} appears twice in list `{list}`; give each choice its own code"),
            );
            continue;
        }
        choices.push(Choice { code, label: label.to_owned() });
    }
    lists
}

/// The sheet's Indonesian label column, reporting a sheet that has only other languages.
pub(crate) fn label_column(table: &Table, report: &mut Report) -> Option<usize> {
    match table.indonesian_column(LABEL) {
        Ok(column) => column,
        Err(others) => {
            report.sheet(
                &table.name,
                format!(
                    "Pilar's labels are in Bahasa Indonesia, and this sheet has only {}; add a column \
                     `{LABEL_WRITTEN}` or a plain `label`",
                    others.join(", ")
                ),
            );
            None
        }
    }
}

struct Settings {
    id: String,
    version: u32,
    title: String,
    description: Option<String>,
}

fn read_settings(table: Option<&Table>, report: &mut Report) -> Settings {
    let mut settings = Settings { id: String::new(), version: 1, title: String::new(), description: None };
    let Some(table) = table else {
        report.sheet(SETTINGS, "the workbook has no settings sheet; add one with form_id, version and form_title");
        return settings;
    };
    report.unknown_pilar_columns(table, &[PILAR_DESCRIPTION]);
    let Some(row) = table.rows.first() else {
        report.sheet(
            &table.name,
            "the settings sheet has no row under its header; fill in form_id, version and form_title",
        );
        return settings;
    };
    settings.id = row.get(table.column(FORM_ID)).to_owned();
    if settings.id.is_empty() {
        report.row(&table.name, row, None, Some(FORM_ID), "form_id is empty; name the form, e.g. dtsen-ground-check");
    }
    let version = row.get(table.column(VERSION));
    match version.parse::<u32>() {
        Ok(v) if v > 0 => settings.version = v,
        _ => report.row(
            &table.name,
            row,
            None,
            Some(VERSION),
            format!(
                "version `{version}` is not a whole number from 1 to 4294967295; Pilar numbers versions 1, 2, 3, …"
            ),
        ),
    }
    settings.title = row.get(table.column(FORM_TITLE)).to_owned();
    if settings.title.is_empty() {
        settings.title = settings.id.clone();
    }
    let description = row.get(table.column(PILAR_DESCRIPTION));
    settings.description = (!description.is_empty()).then(|| description.to_owned());
    settings
}

fn read_outcomes(table: &Table, report: &mut Report) -> Vec<(u32, OutcomeDef)> {
    report.unknown_pilar_columns(table, &[]);
    let label = label_column(table, report);
    let mut outcomes = Vec::new();
    for row in &table.rows {
        let code_text = row.get(table.column(CODE));
        let Ok(code) = code_text.parse::<i64>() else {
            report.row(&table.name, row, None, Some(CODE), format!("outcome code `{code_text}` is not a whole number"));
            continue;
        };
        let is_final = flag(report, table, row, None, IS_FINAL);
        let complete_form = flag(report, table, row, None, COMPLETE_FORM);
        outcomes.push((
            row.number,
            OutcomeDef {
                code,
                key: row.get(table.column(KEY)).to_owned(),
                label: row.get(label).to_owned(),
                is_final,
                complete_form,
            },
        ));
    }
    outcomes
}

fn read_checks(table: &Table, form: &FormDefinition, places: &mut Places, report: &mut Report) -> Vec<CheckDef> {
    report.unknown_pilar_columns(table, &[]);
    let mut checks = Vec::new();
    for row in &table.rows {
        let id = row.get(table.column(ID)).to_owned();
        places.insert(format!("check `{id}`"), &table.name, Some(row.number), None);
        let scope = match row.get(table.column(SCOPE)) {
            "" | "household" => Scope::Household,
            "member" => Scope::Member,
            "visit" => Scope::Visit,
            other => {
                report.row(
                    &table.name,
                    row,
                    None,
                    Some(SCOPE),
                    format!("scope `{other}` is not household, member or visit"),
                );
                continue;
            }
        };
        let severity = match row.get(table.column(SEVERITY)) {
            "" => None,
            "reject" => Some(Severity::Reject),
            "warn" => Some(Severity::Warn),
            other => {
                report.row(&table.name, row, None, Some(SEVERITY), format!("severity `{other}` is not reject or warn"));
                continue;
            }
        };
        let when_text = row.get(table.column(WHEN));
        let when = if when_text.is_empty() {
            None
        } else {
            match parse_condition(when_text, form, scope) {
                Ok(condition) => Some(condition),
                Err(error) => {
                    report.row(&table.name, row, None, Some(WHEN), format!("`{when_text}`: {error}"));
                    continue;
                }
            }
        };
        checks.push(CheckDef {
            id,
            scope,
            severity,
            fields: split_list(row.get(table.column(FIELDS))).map(str::to_owned).collect(),
            when,
            only_when_complete: flag(report, table, row, None, ONLY_WHEN_COMPLETE),
            message: row.get(table.column(MESSAGE)).to_owned(),
        });
    }
    checks
}

/// A yes/no cell (empty is no), reporting anything else.
pub(crate) fn flag(report: &mut Report, table: &Table, row: &Row, row_type: Option<&str>, column: &str) -> bool {
    let text = row.get(table.column(column));
    match parse_flag(text) {
        Some(value) => value,
        None => {
            report.row(&table.name, row, row_type, Some(column), format!("`{text}` is not yes or no"));
            false
        }
    }
}

/// `yes`/`true`/`1`/`ya` or `no`/`false`/`0`/`tidak`/empty.
pub(crate) fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "yes" | "true" | "true()" | "1" | "ya" | "y" => Some(true),
        "" | "no" | "false" | "false()" | "0" | "tidak" | "n" => Some(false),
        _ => None,
    }
}

/// Names or codes separated by spaces or commas.
pub(crate) fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split([' ', ',', ';']).filter(|s| !s.is_empty())
}
