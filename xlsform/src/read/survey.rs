//! The survey sheet: questions with their kinds and rules, groups flattened (a group's `relevant`
//! joins each of its questions' own), repeats giving the member and visit scopes.

use std::collections::{HashMap, HashSet};

use sync_core::form::{Condition, FieldDef, FieldKind, FormDefinition, Required, Scope};

use super::table::{Row, Table};
use super::{Lists, Places, Report, flag, label_column, split_list};
use crate::expression::constraint::read_constraint;
use crate::expression::parse_condition;
use crate::layout::*;

/// One question row, its field built except for its condition.
pub(crate) struct Question {
    row: u32,
    row_type: String,
    scope: Scope,
    field: FieldDef,
    relevant: Option<String>,
    /// Indices into [`Survey::groups`] of the enclosing groups that have a `relevant`, outermost
    /// first.
    groups: Vec<usize>,
}

/// The survey sheet as read: questions, and the groups whose conditions they share.
pub(crate) struct Survey {
    questions: Vec<Question>,
    groups: Vec<Group>,
}

/// A group with a `relevant`, which every question inside it also needs.
pub(crate) struct Group {
    row: u32,
    row_type: String,
    relevant: String,
}

enum Block {
    Group { row: u32, relevant: Option<usize> },
    Repeat { row: u32, scope: Scope },
}

/// What a `type` cell says.
enum RowKind<'t> {
    BeginGroup,
    EndGroup,
    BeginRepeat,
    EndRepeat,
    Question(BaseType<'t>),
    Unsupported(String),
}

enum BaseType<'t> {
    Text,
    Integer,
    Decimal,
    SelectOne(&'t str),
    SelectMultiple(&'t str),
    Date,
    Geopoint,
}

/// Reads every row; problems go to `report`, questions that could be built are returned.
pub(crate) fn read(table: &Table, lists: &Lists, report: &mut Report) -> Survey {
    report.unknown_pilar_columns(table, &SURVEY_PILAR_COLUMNS);
    let sheet = table.name.as_str();
    let type_column = table.column(TYPE);
    let name_column = table.column(NAME);
    if type_column.is_none() || name_column.is_none() {
        report.sheet(sheet, "the survey sheet needs the columns type, name and label in its first row");
        return Survey { questions: Vec::new(), groups: Vec::new() };
    }
    let label = label_column(table, report);
    let hint = table.indonesian_column(HINT).ok().flatten();
    let mut groups: Vec<Group> = Vec::new();
    let mut stack: Vec<Block> = Vec::new();
    let mut questions: Vec<Question> = Vec::new();
    for row in &table.rows {
        let row_type = row.get(type_column);
        let problem = |report: &mut Report, column: Option<&str>, message: String| {
            report.row(sheet, row, Some(row_type), column, message)
        };
        if row_type.is_empty() {
            problem(report, Some(TYPE), "the row has no type; give it one (text, integer, …) or delete the row".into());
            continue;
        }
        let relevant = row.get(table.column(RELEVANT));
        match classify(row_type) {
            RowKind::Unsupported(message) => problem(report, None, message),
            RowKind::BeginGroup => {
                let relevant = (!relevant.is_empty()).then(|| {
                    groups.push(Group {
                        row: row.number,
                        row_type: row_type.to_owned(),
                        relevant: relevant.to_owned(),
                    });
                    groups.len() - 1
                });
                stack.push(Block::Group { row: row.number, relevant });
            }
            RowKind::BeginRepeat => {
                if let Some(Block::Repeat { row: outer, .. }) = stack.iter().find(|b| matches!(b, Block::Repeat { .. }))
                {
                    problem(
                        report,
                        None,
                        format!(
                            "a repeat inside the repeat of row {outer}; Pilar has one level of repeats (members, visits): \
                             move the questions into that repeat"
                        ),
                    );
                }
                if !relevant.is_empty() {
                    problem(
                        report,
                        Some(RELEVANT),
                        "a repeat is asked of every household in Pilar; move the condition to its questions".into(),
                    );
                }
                let name = row.get(name_column).to_lowercase();
                let scope = match row.get(table.column(PILAR_SCOPE)) {
                    "member" => Scope::Member,
                    "visit" => Scope::Visit,
                    "" if VISIT_REPEAT_NAMES.contains(&name.as_str()) => Scope::Visit,
                    "" => Scope::Member,
                    other => {
                        problem(report, Some(PILAR_SCOPE), format!("`{other}` is not member or visit"));
                        Scope::Member
                    }
                };
                stack.push(Block::Repeat { row: row.number, scope });
            }
            RowKind::EndGroup | RowKind::EndRepeat => {
                let want_group = matches!(classify(row_type), RowKind::EndGroup);
                match stack.last() {
                    Some(Block::Group { .. }) if want_group => {
                        stack.pop();
                    }
                    Some(Block::Repeat { .. }) if !want_group => {
                        stack.pop();
                    }
                    Some(Block::Group { row: open, .. } | Block::Repeat { row: open, .. }) => problem(
                        report,
                        None,
                        format!("this does not close the block opened in row {open}; close that one first"),
                    ),
                    None => problem(report, None, "nothing is open here to close; remove the row".into()),
                }
            }
            RowKind::Question(base) => {
                let scope = stack
                    .iter()
                    .rev()
                    .find_map(|b| match b {
                        Block::Repeat { scope, .. } => Some(*scope),
                        Block::Group { .. } => None,
                    })
                    .unwrap_or(Scope::Household);
                let groups: Vec<usize> = stack
                    .iter()
                    .filter_map(|b| match b {
                        Block::Group { relevant, .. } => *relevant,
                        Block::Repeat { .. } => None,
                    })
                    .collect();
                if let Some(field) = question(table, row, row_type, base, lists, label, hint, report) {
                    let relevant = (!relevant.is_empty()).then(|| relevant.to_owned());
                    questions.push(Question {
                        row: row.number,
                        row_type: row_type.to_owned(),
                        scope,
                        field,
                        relevant,
                        groups,
                    });
                }
            }
        }
    }
    for block in stack {
        let (row, what) = match block {
            Block::Group { row, .. } => (row, "end_group"),
            Block::Repeat { row, .. } => (row, "end_repeat"),
        };
        if let Some(open) = table.rows.iter().find(|r| r.number == row) {
            report.row(
                sheet,
                open,
                Some(open.get(type_column)),
                None,
                format!("never closed; add an {what} row after its questions"),
            );
        }
    }
    Survey { questions, groups }
}

fn classify(row_type: &str) -> RowKind<'_> {
    let words: Vec<&str> = row_type.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let list = |i: usize| words.get(i).copied();
    let unsupported = |message: &str| RowKind::Unsupported(message.to_owned());
    match lower.as_slice() {
        ["begin_group"] | ["begin", "group"] => RowKind::BeginGroup,
        ["end_group"] | ["end", "group"] => RowKind::EndGroup,
        ["begin_repeat"] | ["begin", "repeat"] => RowKind::BeginRepeat,
        ["end_repeat"] | ["end", "repeat"] => RowKind::EndRepeat,
        ["text"] => RowKind::Question(BaseType::Text),
        ["integer" | "int"] => RowKind::Question(BaseType::Integer),
        ["decimal"] => RowKind::Question(BaseType::Decimal),
        ["date"] => RowKind::Question(BaseType::Date),
        ["geopoint"] => RowKind::Question(BaseType::Geopoint),
        [.., "or_other"] => unsupported(
            "or_other is not supported by Pilar; add an \"other\" choice and a text question relevant on it",
        ),
        ["select_one", _] => RowKind::Question(BaseType::SelectOne(list(1).unwrap_or_default())),
        ["select", "one", _] => RowKind::Question(BaseType::SelectOne(list(2).unwrap_or_default())),
        ["select_multiple", _] => RowKind::Question(BaseType::SelectMultiple(list(1).unwrap_or_default())),
        ["select", "multiple", _] => RowKind::Question(BaseType::SelectMultiple(list(2).unwrap_or_default())),
        ["select_one" | "select_multiple"] => {
            unsupported("name the choice list after the type, e.g. select_one yes_no")
        }
        ["geotrace" | "geoshape"] => unsupported("not supported by Pilar; remove the row or use geopoint"),
        ["image" | "audio" | "video" | "file" | "background-audio"] => unsupported(
            "not supported by Pilar: photos are attached to a household separately (pilar photo add); remove the row",
        ),
        ["note"] => unsupported(
            "not supported by Pilar, which has no display-only rows; put the text in a question's hint or remove the row",
        ),
        ["calculate"] => unsupported("not supported by Pilar, which has no calculated questions; remove the row"),
        [
            "start" | "end" | "today" | "deviceid" | "subscriberid" | "simserial" | "phonenumber" | "username"
            | "email" | "audit" | "start-geopoint",
        ] => unsupported(
            "not supported by Pilar, which records when, where and on which device every change was made; remove the row",
        ),
        ["time" | "datetime"] => unsupported("not supported by Pilar, which asks for dates only; use date"),
        ["barcode"] => unsupported("not supported by Pilar; use text"),
        ["acknowledge"] => unsupported("not supported by Pilar; use text with pilar::kind boolean"),
        ["range"] => unsupported("not supported by Pilar; use integer with a constraint such as . >= 1 and . <= 10"),
        ["rank"] => unsupported("not supported by Pilar; use select_multiple"),
        [first, ..] if first.starts_with("select_") => unsupported(
            "choices from a file are not supported by Pilar; list them on the choices sheet and use select_one",
        ),
        _ => RowKind::Unsupported(format!(
            "unknown type; Pilar reads text, integer, decimal, select_one, select_multiple, date, geopoint, \
             begin_group/end_group and begin_repeat/end_repeat (row type `{row_type}`)"
        )),
    }
}

/// Builds one question's field (without its condition), reporting what it cannot hold.
#[expect(clippy::too_many_arguments, reason = "one row read against the sheet's columns and lists")]
fn question(
    table: &Table,
    row: &Row,
    row_type: &str,
    base: BaseType<'_>,
    lists: &Lists,
    label_column: Option<usize>,
    hint_column: Option<usize>,
    report: &mut Report,
) -> Option<FieldDef> {
    let sheet = table.name.as_str();
    let before = report.problems.len();
    let problem = |report: &mut Report, column: &str, message: String| {
        report.row(sheet, row, Some(row_type), Some(column), message)
    };
    let cell = |column: &str| row.get(table.column(column));

    let name = row.get(table.column(NAME));
    if name.is_empty() {
        problem(report, NAME, "the question has no name; give it one (lowercase letters, digits and _)".into());
    } else if !is_field_name(name) {
        problem(
            report,
            NAME,
            format!("`{name}`: a Pilar name uses only lowercase letters, digits and _, starting with a letter"),
        );
    }
    let label = row.get(label_column);
    if label.is_empty() {
        problem(report, LABEL, "the question has no label; write it in Bahasa Indonesia".into());
    }
    for (column, why) in [
        (
            CHOICE_FILTER,
            "choice_filter is not supported by Pilar; remove the filter (show every choice) or split the list",
        ),
        (CALCULATION, "calculation is not supported by Pilar, which has no calculated answers; clear the cell"),
        (DEFAULT, "default is not supported by Pilar, which has no default answers; clear the cell"),
    ] {
        if !cell(column).is_empty() {
            problem(report, column, why.into());
        }
    }

    let choices = |list: &str, report: &mut Report| match lists.get(list) {
        Some(choices) => choices.clone(),
        None => {
            report.row(
                sheet,
                row,
                Some(row_type),
                Some(TYPE),
                format!("list `{list}` is not on the choices sheet; add its choices there or fix the name"),
            );
            Vec::new()
        }
    };
    let pilar_kind = cell(PILAR_KIND);
    let mut kind = match (&base, pilar_kind) {
        (BaseType::Text, "nik") => FieldKind::Nik {
            sex_field: Some(cell(PILAR_SEX_FIELD)).filter(|s| !s.is_empty()).map(str::to_owned),
            birth_date_field: Some(cell(PILAR_BIRTH_DATE_FIELD)).filter(|s| !s.is_empty()).map(str::to_owned),
        },
        (BaseType::Text, "kk_number") => FieldKind::KkNumber,
        (BaseType::Text, "village_code") => FieldKind::VillageCode,
        (BaseType::Text, "boolean") => FieldKind::Boolean,
        (_, "nik" | "kk_number" | "village_code" | "boolean") => {
            problem(
                report,
                PILAR_KIND,
                format!("pilar::kind `{pilar_kind}` goes with type text; change the type to text"),
            );
            FieldKind::Boolean
        }
        (_, other) if !other.is_empty() => {
            problem(report, PILAR_KIND, format!("`{other}` is not one of nik, kk_number, village_code, boolean"));
            FieldKind::Boolean
        }
        (BaseType::Text, _) => FieldKind::Text {
            max_len: None,
            pattern: None,
            pattern_hint: Some(cell(CONSTRAINT_MESSAGE)).filter(|s| !s.is_empty()).map(str::to_owned),
        },
        (BaseType::Integer, _) => FieldKind::Integer {
            min: None,
            max: None,
            unknown_codes: codes(cell(PILAR_UNKNOWN_CODES), PILAR_UNKNOWN_CODES, &mut |c, m| problem(report, c, m)),
        },
        (BaseType::Decimal, _) => FieldKind::Decimal { min: None, max: None },
        (BaseType::SelectOne(list), _) => FieldKind::SelectOne { choices: choices(list, report) },
        (BaseType::SelectMultiple(list), _) => FieldKind::MultiSelect {
            choices: choices(list, report),
            exclusive: codes(cell(PILAR_EXCLUSIVE), PILAR_EXCLUSIVE, &mut |c, m| problem(report, c, m)),
        },
        (BaseType::Date, _) => {
            FieldKind::Date { allow_unknown_parts: flag(report, table, row, Some(row_type), PILAR_ALLOW_UNKNOWN_PARTS) }
        }
        (BaseType::Geopoint, _) => FieldKind::Gps,
    };
    // A Pilar column on a question of another kind would be lost without a word.
    for (column, suits) in [
        (PILAR_UNKNOWN_CODES, matches!(kind, FieldKind::Integer { .. })),
        (PILAR_EXCLUSIVE, matches!(kind, FieldKind::MultiSelect { .. })),
        (PILAR_ALLOW_UNKNOWN_PARTS, matches!(kind, FieldKind::Date { .. })),
        (PILAR_SEX_FIELD, matches!(kind, FieldKind::Nik { .. })),
        (PILAR_BIRTH_DATE_FIELD, matches!(kind, FieldKind::Nik { .. })),
        (PILAR_SCOPE, false),
    ] {
        if !suits && !cell(column).is_empty() {
            let what = if column == PILAR_SCOPE { "begin_repeat rows" } else { "other kinds of question" };
            problem(report, column, format!("{column} belongs to {what}; clear the cell"));
        }
    }
    let constraint = cell(CONSTRAINT);
    if !constraint.is_empty()
        && let Err(error) = read_constraint(constraint, &mut kind)
    {
        problem(report, CONSTRAINT, format!("`{constraint}`: {error}"));
    }

    let required = match (cell(REQUIRED).to_lowercase().as_str(), cell(PILAR_REQUIRED)) {
        (_, "complete") => Required::Complete,
        (_, "always") => Required::Always,
        (_, "no") => Required::No,
        (_, other) if !other.is_empty() => {
            problem(report, PILAR_REQUIRED, format!("`{other}` is not no, complete or always"));
            Required::No
        }
        ("yes" | "true" | "true()" | "1" | "ya" | "y", _) => Required::Always,
        ("" | "no" | "false" | "false()" | "0" | "tidak" | "n", _) => Required::No,
        (other, _) => {
            problem(
                report,
                REQUIRED,
                format!(
                    "`{other}`: Pilar's required is yes or no; put the condition in relevant, or set \
                     pilar::required to complete (required when the interview is complete)"
                ),
            );
            Required::No
        }
    };
    let device_editable = !flag(report, table, row, Some(row_type), READ_ONLY);
    let sensitive = flag(report, table, row, Some(row_type), PILAR_SENSITIVE);
    let retired = flag(report, table, row, Some(row_type), PILAR_RETIRED);
    let help = row.get(hint_column);
    (report.problems.len() == before).then(|| FieldDef {
        name: name.to_owned(),
        label: label.to_owned(),
        kind,
        required,
        relevant: None,
        help: (!help.is_empty()).then(|| help.to_owned()),
        device_editable,
        sensitive,
        retired,
    })
}

fn codes(text: &str, column: &str, problem: &mut dyn FnMut(&str, String)) -> Vec<i64> {
    split_list(text)
        .filter_map(|code| match code.parse::<i64>() {
            Ok(code) => Some(code),
            Err(_) => {
                problem(column, format!("`{code}` is not a whole number; list codes such as 98 99"));
                None
            }
        })
        .collect()
}

fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Puts the questions into their scopes, reporting names used twice (a visit question may not
/// reuse a household name either, since visit conditions read both).
pub(crate) fn place(survey: &Survey, form: &mut FormDefinition, places: &mut Places, report: &mut Report) {
    let mut seen: HashMap<(Scope, &str), u32> = HashMap::new();
    for q in &survey.questions {
        let name = q.field.name.as_str();
        let clash = seen.get(&(q.scope, name)).copied().or_else(|| match q.scope {
            Scope::Visit => seen.get(&(Scope::Household, name)).copied(),
            _ => None,
        });
        if let Some(first) = clash {
            report.problems.push(crate::report::Problem {
                sheet: SURVEY.into(),
                row: Some(q.row),
                row_type: Some(q.row_type.clone()),
                column: Some(NAME.into()),
                message: format!(
                    "`{name}` is already the name of the {} question in row {first}; give each question its own name",
                    q.scope
                ),
            });
            continue;
        }
        seen.insert((q.scope, name), q.row);
        places.insert(format!("{} field `{name}`", q.scope), SURVEY, Some(q.row), Some(&q.row_type));
        match q.scope {
            Scope::Household => form.household.push(q.field.clone()),
            Scope::Member => form.member.push(q.field.clone()),
            Scope::Visit => form.visit.push(q.field.clone()),
        }
    }
}

/// Reads every question's `relevant` (and its groups') now that every question is known.
pub(crate) fn conditions(survey: &Survey, form: &mut FormDefinition, report: &mut Report) {
    let mut group_cache: HashMap<(usize, Scope), Option<Condition>> = HashMap::new();
    let mut reported_groups: HashSet<(usize, Scope)> = HashSet::new();
    let mut found: Vec<(Scope, String, Option<Condition>)> = Vec::new();
    for q in &survey.questions {
        let mut parts = Vec::new();
        let mut failed = false;
        for &g in &q.groups {
            let group = &survey.groups[g];
            let parsed = group_cache.entry((g, q.scope)).or_insert_with(|| {
                match parse_condition(&group.relevant, form, q.scope) {
                    Ok(condition) => Some(condition),
                    Err(error) => {
                        if reported_groups.insert((g, q.scope)) {
                            report.problems.push(crate::report::Problem {
                                sheet: SURVEY.into(),
                                row: Some(group.row),
                                row_type: Some(group.row_type.clone()),
                                column: Some(RELEVANT.into()),
                                message: format!("`{}`: {error}", group.relevant),
                            });
                        }
                        None
                    }
                }
            });
            match parsed {
                Some(condition) => parts.push(condition.clone()),
                None => failed = true,
            }
        }
        if let Some(text) = &q.relevant {
            match parse_condition(text, form, q.scope) {
                Ok(condition) => parts.push(condition),
                Err(error) => {
                    failed = true;
                    report.problems.push(crate::report::Problem {
                        sheet: SURVEY.into(),
                        row: Some(q.row),
                        row_type: Some(q.row_type.clone()),
                        column: Some(RELEVANT.into()),
                        message: format!("`{text}`: {error}"),
                    });
                }
            }
        }
        if failed {
            continue;
        }
        let relevant = match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Condition::All(parts)),
        };
        found.push((q.scope, q.field.name.clone(), relevant));
    }
    for (scope, name, relevant) in found {
        let fields = match scope {
            Scope::Household => &mut form.household,
            Scope::Member => &mut form.member,
            Scope::Visit => &mut form.visit,
        };
        if let Some(field) = fields.iter_mut().find(|f| f.name == name) {
            field.relevant = relevant;
        }
    }
}
