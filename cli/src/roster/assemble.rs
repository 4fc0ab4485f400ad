//! Cells → households: parse each cell for its field, pick the layout, group rows into households
//! and check every household, keeping every problem with its row and column.
//!
//! Work is linear in the number of cells: rows are parsed once, grouped through one hash map and
//! each household is validated once. Nothing here reads the clock (the caller passes `today`).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use sync_core::form::{FieldDef, FieldKind, FormDefinition, Required, Scope};
use sync_core::roster::{FAMILY_ID_FIELD, RosterHousehold, RosterProblem, validate_roster_household};
use sync_core::value::FieldValue;

use super::columns::{Columns, Target, map_headers};
use super::{Layout, RosterFile, RosterOptions};

/// Member field whose code 1 marks the head of the family.
const RELATIONSHIP: &str = "relationship";
/// Relationship code of the head of the family.
const HEAD: i64 = 1;
/// Household field that groups one-row-per-person rows when there is no family id.
const KK_NUMBER: &str = "kk_number";

/// One cell as a file format delivers it: its text, and what went wrong reading it, if anything.
#[derive(Debug, Clone)]
pub(super) struct Cell<'a> {
    /// The text (decoded as well as possible when `issue` says the bytes were wrong).
    pub text: Cow<'a, str>,
    /// A problem reading the cell itself (bad encoding, a spreadsheet error value).
    pub issue: Option<CellIssue>,
    /// The spreadsheet stored the cell as a floating-point number, which holds only 15 digits.
    pub float: bool,
}

impl<'a> Cell<'a> {
    /// A cell whose text was read without trouble.
    pub fn plain(text: impl Into<Cow<'a, str>>) -> Self {
        Cell { text: text.into(), issue: None, float: false }
    }
}

/// Why a cell could not be read as it is.
#[derive(Debug, Clone)]
pub(super) struct CellIssue {
    /// Stable rule code, e.g. `encoding`.
    pub rule: &'static str,
    /// What is wrong and what to do; never the cell's content.
    pub message: String,
}

/// One data row after parsing: its household and member answers.
struct ParsedRow<'f> {
    row: usize,
    household: Vec<(&'f FieldDef, FieldValue)>,
    member: Vec<(&'f FieldDef, FieldValue)>,
}

impl ParsedRow<'_> {
    fn household_text(&self, name: &str) -> Option<String> {
        self.household.iter().find(|(f, _)| f.name == name).map(|(_, v)| v.to_string()).filter(|t| !t.is_empty())
    }

    fn relationship(&self) -> Option<i64> {
        self.member.iter().find(|(f, _)| f.name == RELATIONSHIP).and_then(|(_, v)| v.as_int())
    }
}

/// Collects the rows of one file and turns them into a [`RosterFile`].
pub(super) struct Assembler<'f> {
    form: &'f FormDefinition,
    options: RosterOptions,
    header_row: usize,
    columns: Columns<'f>,
    rows: Vec<ParsedRow<'f>>,
    problems: Vec<RosterProblem>,
    /// (row, column) of cells that failed to parse, so a `required` problem does not repeat them.
    unparsed: HashSet<(usize, String)>,
    /// Columns without a header that hold a value: column index → first row with a value.
    stray: BTreeMap<usize, usize>,
}

impl<'f> Assembler<'f> {
    /// Starts a file whose header row is `header_row` with these header cells.
    pub fn new(form: &'f FormDefinition, options: &RosterOptions, header_row: usize, headers: &[Cell<'_>]) -> Self {
        let columns = map_headers(form, headers, header_row, options.ignore_unknown);
        Assembler {
            form,
            options: options.clone(),
            header_row,
            columns,
            rows: Vec::new(),
            problems: Vec::new(),
            unparsed: HashSet::new(),
            stray: BTreeMap::new(),
        }
    }

    /// Parses one data row; a row whose cells are all empty is skipped.
    pub fn push_row(&mut self, row: usize, cells: &[Cell<'_>]) {
        if cells.iter().all(|c| c.issue.is_none() && c.text.trim().is_empty()) {
            return;
        }
        let mut parsed = ParsedRow { row, household: Vec::new(), member: Vec::new() };
        for (index, cell) in cells.iter().enumerate() {
            let text = cell.text.trim();
            let Some(column) = self.columns.columns.get(index) else {
                if !text.is_empty() {
                    self.stray.entry(index).or_insert(row);
                }
                continue;
            };
            if let Some(issue) = &cell.issue {
                self.problems.push(RosterProblem::reject(row, &column.header, text, issue.rule, issue.message.clone()));
            }
            let (scope, field) = match column.target {
                Target::Field(scope, field) => (scope, field),
                Target::Skip => continue,
                Target::Unnamed => {
                    if !text.is_empty() {
                        self.stray.entry(index).or_insert(row);
                    }
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            if cell.float && matches!(field.kind, FieldKind::Nik { .. } | FieldKind::KkNumber) {
                self.problems.push(RosterProblem::reject(
                    row,
                    &column.header,
                    text,
                    "number_precision",
                    "the spreadsheet stores this identifier as a number, which keeps only 15 digits, so the \
                     last digit may already be lost; format the column as Text, re-enter the numbers and import again",
                ));
            }
            match field.parse_input(text) {
                Ok(Some(value)) => match scope {
                    Scope::Member => parsed.member.push((field, value)),
                    _ => parsed.household.push((field, value)),
                },
                Ok(None) => {}
                Err(finding) => {
                    let message = strip_title(&finding.message, field).to_owned();
                    self.problems.push(RosterProblem {
                        row,
                        column: column.header.clone(),
                        value: text.to_owned(),
                        rule: finding.rule,
                        message,
                        severity: finding.severity,
                    });
                    self.unparsed.insert((row, column.header.clone()));
                }
            }
        }
        self.rows.push(parsed);
    }

    /// Records a problem found by the file reader outside any cell (e.g. broken CSV quoting).
    pub fn push_problem(&mut self, problem: RosterProblem) {
        self.problems.push(problem);
    }

    /// Groups the rows into households, checks each one and reports progress in rows checked.
    pub fn finish(mut self, progress: &mut dyn FnMut(usize)) -> RosterFile {
        let mut problems = std::mem::take(&mut self.columns.problems);
        for (index, first_row) in &self.stray {
            problems.push(RosterProblem::reject(
                self.header_row,
                format!("#{}", index + 1),
                "",
                "unknown_column",
                format!(
                    "column {} has no header, but row {first_row} has a value in it; add a header naming its \
                     field, or delete the values",
                    index + 1
                ),
            ));
        }
        let layout = self.resolve_layout();
        let missing = self.missing_columns(layout, &mut problems);
        problems.append(&mut self.problems);

        let rows = self.rows.len();
        let (mut households, row_counts) = match layout {
            Layout::PerPerson => self.group_per_person(&mut problems),
            _ => self.group_per_household(&mut problems),
        };

        let mut done = 0;
        for (household, count) in households.iter_mut().zip(row_counts) {
            household.fill_derived(self.options.today);
            let checked = validate_roster_household(self.form, household, &self.columns.names, self.options.today);
            problems.extend(checked.into_iter().filter(|p| {
                p.rule != "required"
                    || !(missing.contains(p.column.as_str()) || self.unparsed.contains(&(p.row, p.column.clone())))
            }));
            done += count;
            progress(done);
        }
        // Report order: by row, then in the file's column order (columns it lacks come last).
        let position: HashMap<&str, usize> =
            self.columns.columns.iter().enumerate().map(|(i, c)| (c.header.as_str(), i)).collect();
        problems.sort_by_key(|p| (p.row, position.get(p.column.as_str()).copied().unwrap_or(usize::MAX)));
        RosterFile { households, problems, rows, header_row: self.header_row, layout }
    }

    /// The layout to use: the forced one, else one row per person when rows share a family id or
    /// KK number and some row is a member other than the head (so a one-row-per-household file
    /// with an accidental duplicate is reported as a duplicate, not merged).
    fn resolve_layout(&self) -> Layout {
        if self.options.layout != Layout::Auto {
            return self.options.layout;
        }
        let mut seen: HashSet<String> = HashSet::with_capacity(self.rows.len());
        let mut shared = false;
        for row in &self.rows {
            let key = match row.household_text(FAMILY_ID_FIELD) {
                Some(id) => format!("f:{id}"),
                None => match row.household_text(KK_NUMBER) {
                    Some(kk) => format!("k:{kk}"),
                    None => continue,
                },
            };
            if !seen.insert(key) {
                shared = true;
                break;
            }
        }
        let non_heads = self.rows.iter().any(|r| r.relationship().is_some_and(|code| code != HEAD));
        if shared && non_heads { Layout::PerPerson } else { Layout::PerHousehold }
    }

    /// Reports fields every household (or member) needs that have no column at all, once, on the
    /// header row; returns their names so the same gap is not repeated on every row.
    fn missing_columns(&self, layout: Layout, problems: &mut Vec<RosterProblem>) -> HashSet<&'f str> {
        let names = &self.columns.names;
        let needed = |field: &&FieldDef| field.required == Required::Always && field.relevant.is_none();
        let mut missing = HashSet::new();
        for field in self.form.fields(Scope::Household).iter().filter(needed) {
            let derived = field.name == "head_name" && names.has(Scope::Member, "full_name");
            if !names.has(Scope::Household, &field.name) && !derived {
                missing.insert(field.name.as_str());
            }
        }
        if self.columns.has_member_columns() {
            for field in self.form.fields(Scope::Member).iter().filter(needed) {
                let implied = field.name == RELATIONSHIP && layout == Layout::PerHousehold;
                if !names.has(Scope::Member, &field.name) && !implied {
                    missing.insert(field.name.as_str());
                }
            }
        }
        for scope in [Scope::Household, Scope::Member] {
            for field in self.form.fields(scope).iter().filter(|f| missing.contains(f.name.as_str())) {
                problems.push(RosterProblem::reject(
                    self.header_row,
                    &field.name,
                    "",
                    "missing_column",
                    format!(
                        "the file has no column for the {scope} field `{}` ({}), which every {} needs; add the \
                         column (header `{}` or `{}`) and fill it in",
                        field.name,
                        field.label,
                        if scope == Scope::Member { "member" } else { "household" },
                        field.name,
                        field.label
                    ),
                ));
            }
        }
        missing
    }

    /// One household per row; the head's member fields may sit on the same row.
    fn group_per_household(&mut self, problems: &mut Vec<RosterProblem>) -> (Vec<RosterHousehold>, Vec<usize>) {
        let family_header = self.columns.names.header(Scope::Household, FAMILY_ID_FIELD).to_owned();
        let mut first_row_of: HashMap<String, (usize, bool)> = HashMap::new();
        let mut households = Vec::with_capacity(self.rows.len());
        for row in std::mem::take(&mut self.rows) {
            let mut household = RosterHousehold::new(row.row);
            household.answers = row.household.into_iter().map(|(f, v)| (f.name.clone(), v)).collect();
            if !row.member.is_empty() {
                let mut member: BTreeMap<String, FieldValue> =
                    row.member.into_iter().map(|(f, v)| (f.name.clone(), v)).collect();
                if self.form.field(Scope::Member, RELATIONSHIP).is_some() {
                    member.entry(RELATIONSHIP.to_owned()).or_insert(FieldValue::Int(HEAD));
                }
                household.push_member(row.row, member);
            }
            household.sync_keys();
            if let Some(id) = household.family_id.clone() {
                match first_row_of.entry(id) {
                    Entry::Vacant(slot) => {
                        slot.insert((row.row, false));
                    }
                    Entry::Occupied(mut slot) => {
                        let hint = "each household appears once in a one-row-per-household file: remove or \
                                    correct the duplicate row (if the file has one row per person, add a relationship \
                                    column or import with layout per-person)";
                        let (first, reported) = *slot.get();
                        if !reported {
                            slot.get_mut().1 = true;
                            problems.push(RosterProblem::reject(
                                first,
                                &family_header,
                                slot.key(),
                                "duplicate_family_id",
                                format!("the same family id is also on row {}; {hint}", row.row),
                            ));
                        }
                        problems.push(RosterProblem::reject(
                            row.row,
                            &family_header,
                            slot.key(),
                            "duplicate_family_id",
                            format!("the same family id is already on row {first}; {hint}"),
                        ));
                    }
                }
            }
            households.push(household);
        }
        let counts = vec![1; households.len()];
        (households, counts)
    }

    /// One row per person, grouped by family id, else by KK number; household fields repeated on
    /// the rows of a family must agree (an empty cell after the first row is fine).
    fn group_per_person(&mut self, problems: &mut Vec<RosterProblem>) -> (Vec<RosterHousehold>, Vec<usize>) {
        let names = &self.columns.names;
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let mut households: Vec<RosterHousehold> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        for row in std::mem::take(&mut self.rows) {
            let key = match row.household_text(FAMILY_ID_FIELD) {
                Some(id) => Some(format!("f:{id}")),
                None => row.household_text(KK_NUMBER).map(|kk| format!("k:{kk}")),
            };
            let index = match key {
                Some(key) => *group_of.entry(key).or_insert_with(|| {
                    households.push(RosterHousehold::new(row.row));
                    counts.push(0);
                    households.len() - 1
                }),
                None => {
                    problems.push(RosterProblem::reject(
                        row.row,
                        names.header(Scope::Household, FAMILY_ID_FIELD),
                        "",
                        "no_group_key",
                        format!(
                            "this row has neither a family id nor a KK number, so it cannot be put with the rest of \
                             its family; fill in column {} or {}",
                            names.header(Scope::Household, FAMILY_ID_FIELD),
                            names.header(Scope::Household, KK_NUMBER)
                        ),
                    ));
                    households.push(RosterHousehold::new(row.row));
                    counts.push(0);
                    households.len() - 1
                }
            };
            let household = &mut households[index];
            counts[index] += 1;
            for (field, value) in row.household {
                let first = household.answer_rows.get(&field.name).copied().unwrap_or(household.row);
                match household.answers.entry(field.name.clone()) {
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(value);
                        if row.row != household.row {
                            household.answer_rows.insert(field.name.clone(), row.row);
                        }
                    }
                    std::collections::btree_map::Entry::Occupied(slot) => {
                        if *slot.get() != value {
                            problems.push(RosterProblem::reject(
                                row.row,
                                names.header(Scope::Household, &field.name),
                                value.to_string(),
                                "household_disagrees",
                                format!(
                                    "this household column differs from row {first} of the same family; household \
                                     columns must be the same on every row of a family (or empty after its first \
                                     row): correct row {} or row {first}",
                                    row.row
                                ),
                            ));
                        }
                    }
                }
            }
            if !row.member.is_empty() {
                household.push_member(row.row, row.member.into_iter().map(|(f, v)| (f.name.clone(), v)).collect());
            }
        }
        for household in &mut households {
            household.sync_keys();
        }
        (households, counts)
    }
}

/// Drops the leading `name (label): ` of a parse message: the problem already names the column.
fn strip_title<'m>(message: &'m str, field: &FieldDef) -> &'m str {
    let title = format!("{} ({}): ", field.name, field.label);
    message.strip_prefix(title.as_str()).unwrap_or(message)
}
