//! Column headers → form fields: a header is a field name (household or member scope) or, in any
//! letter case, that field's Indonesian label; `family_id` is accepted for `dtsen_family_id`.
//!
//! Every header is mapped once, before any row is read, so each row costs one lookup per cell.

use std::collections::HashMap;

use sync_core::form::{FieldDef, FormDefinition, Scope};
use sync_core::roster::{FAMILY_ID_FIELD, RosterColumns, RosterProblem};

use super::assemble::Cell;

/// Header aliases: common names for a field that are neither its name nor its label.
const ALIASES: [(&str, Scope, &str); 1] = [("family_id", Scope::Household, FAMILY_ID_FIELD)];

/// What one column of the file feeds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target<'f> {
    /// A household or member field.
    Field(Scope, &'f FieldDef),
    /// A column that is read but not imported (unknown or duplicate; a problem says which).
    Skip,
    /// A column with an empty header: fine while empty, a problem as soon as a cell has a value.
    Unnamed,
}

/// One column: its header as written in the file, and the field it feeds.
#[derive(Debug, Clone)]
pub(super) struct Column<'f> {
    /// The header as written in the file (`#n` for an empty header), for naming the column.
    pub header: String,
    /// The field the column feeds, or why it feeds none.
    pub target: Target<'f>,
}

/// The mapped header row.
#[derive(Debug, Clone)]
pub(super) struct Columns<'f> {
    /// One entry per header cell, in file order.
    pub columns: Vec<Column<'f>>,
    /// Field → header, for naming columns in validation problems.
    pub names: RosterColumns,
    /// Problems with the headers themselves (unknown, duplicate, ambiguous, badly encoded).
    pub problems: Vec<RosterProblem>,
}

impl<'f> Columns<'f> {
    /// True when some column feeds a member field (the file has member data).
    pub fn has_member_columns(&self) -> bool {
        self.columns.iter().any(|c| matches!(c.target, Target::Field(Scope::Member, _)))
    }
}

/// How headers are compared: trimmed, without a byte-order mark, lowercase, single spaces.
pub(super) fn normalise(header: &str) -> String {
    let cleaned = header.trim_start_matches('\u{feff}');
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    words.join(" ").to_lowercase()
}

/// Maps the header row. Unknown headers are problems unless `ignore_unknown` is set, in which
/// case their columns are skipped.
pub(super) fn map_headers<'f>(
    form: &'f FormDefinition,
    headers: &[Cell<'_>],
    header_row: usize,
    ignore_unknown: bool,
) -> Columns<'f> {
    let lookup = lookup_table(form);
    let mut names = RosterColumns::default();
    let mut problems = Vec::new();
    let mut first_column: HashMap<(Scope, &str), usize> = HashMap::new();
    let mut columns = Vec::with_capacity(headers.len());
    for (index, cell) in headers.iter().enumerate() {
        let header = cell.text.trim().trim_start_matches('\u{feff}').to_owned();
        if let Some(issue) = &cell.issue {
            problems.push(RosterProblem::reject(header_row, &header, &header, issue.rule, issue.message.clone()));
        }
        if header.is_empty() {
            columns.push(Column { header: format!("#{}", index + 1), target: Target::Unnamed });
            continue;
        }
        let target = match lookup.get(normalise(&header).as_str()).map(Vec::as_slice) {
            Some([(scope, field)]) => match first_column.get(&(*scope, field.name.as_str())) {
                Some(first) => {
                    problems.push(RosterProblem::reject(
                        header_row,
                        &header,
                        &header,
                        "duplicate_column",
                        format!(
                            "this column is the same {scope} field `{}` as column {}; keep one of the two columns",
                            field.name,
                            first + 1
                        ),
                    ));
                    Target::Skip
                }
                None => {
                    first_column.insert((*scope, field.name.as_str()), index);
                    names.insert(*scope, field.name.clone(), header.clone());
                    Target::Field(*scope, field)
                }
            },
            Some(several) => {
                let fields: Vec<String> = several.iter().map(|(s, f)| format!("{s}.{}", f.name)).collect();
                problems.push(RosterProblem::reject(
                    header_row,
                    &header,
                    &header,
                    "ambiguous_column",
                    format!(
                        "this header names several fields ({}); rename the column to one of them",
                        fields.join(", ")
                    ),
                ));
                Target::Skip
            }
            None => {
                if !ignore_unknown {
                    problems.push(RosterProblem::reject(
                        header_row,
                        &header,
                        &header,
                        "unknown_column",
                        format!(
                            "this header is not a household or member field of form {} (by name or by label); \
                             rename it (see `pilar form` for the names), delete the column, or import with \
                             --ignore-unknown to leave it out",
                            form.key()
                        ),
                    ));
                }
                Target::Skip
            }
        };
        columns.push(Column { header, target });
    }
    Columns { columns, names, problems }
}

/// Normalised header → the fields it may name. Names and labels of both scopes, `household.x`
/// and `member.x` to tell apart a name both scopes use, and the aliases.
fn lookup_table(form: &FormDefinition) -> HashMap<String, Vec<(Scope, &FieldDef)>> {
    let mut table = HashMap::new();
    for scope in [Scope::Household, Scope::Member] {
        for field in form.fields(scope) {
            add(&mut table, normalise(&field.name), scope, field);
            add(&mut table, normalise(&field.label), scope, field);
            add(&mut table, format!("{scope}.{}", normalise(&field.name)), scope, field);
        }
    }
    for (alias, scope, name) in ALIASES {
        if let Some(field) = form.field(scope, name) {
            add(&mut table, alias.to_owned(), scope, field);
        }
    }
    table
}

/// Adds one way of naming a field, once.
fn add<'f>(table: &mut HashMap<String, Vec<(Scope, &'f FieldDef)>>, key: String, scope: Scope, field: &'f FieldDef) {
    let entry = table.entry(key).or_default();
    if !entry.iter().any(|(s, f)| *s == scope && f.name == field.name) {
        entry.push((scope, field));
    }
}
