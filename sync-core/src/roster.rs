//! Roster import: the households a kabupaten admin loads from a CSV or XLSX list, and their checks.
//!
//! The CLI reads the file (`pilar`'s `roster` module: columns, layouts, encodings) into
//! [`RosterHousehold`]s and [`RosterProblem`]s; the server re-checks every household it receives
//! with [`validate_roster_household`], so both apply the same rules: the form's rules for a new
//! household (the ones `entry::add_household` applies) and the identifier rules of `ids`.
//!
//! A problem names the spreadsheet row and the column header, so an admin can find the cell. Its
//! `message` never carries the cell's content (names and identifiers are personal data); the
//! content travels only in `value`, for the admin's screen. Never log a problem's `value`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::entry::age_on;
use crate::finding::Severity;
use crate::form::{FormDefinition, MemberAnswers, Problem, Scope, ValidationContext, validate_household};
use crate::value::FieldValue;

/// Household field holding the DTSEN family id, the key a re-import matches households on.
pub const FAMILY_ID_FIELD: &str = "dtsen_family_id";
/// Household field holding the Kemendagri village code, the household's scope.
pub const VILLAGE_FIELD: &str = "village_code";
/// Member field whose code 1 marks the head of the family.
const RELATIONSHIP_FIELD: &str = "relationship";
/// Relationship code of the head of the family.
const HEAD: i64 = 1;

/// One household read from a roster file, ready to be checked and imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterHousehold {
    /// First source row, 1-based as a spreadsheet shows it (the header is usually row 1).
    pub row: usize,
    /// The DTSEN family id (`dtsen_family_id`), the re-import key; `None` for a family not in DTSEN.
    pub family_id: Option<String>,
    /// The village code as stored in `answers.village_code` (dotted, `73.14.01.1001`); empty if none.
    pub village: String,
    /// Household answers by field name, `village_code` and `dtsen_family_id` included.
    pub answers: BTreeMap<String, FieldValue>,
    /// Members' answers, in file order.
    pub members: Vec<BTreeMap<String, FieldValue>>,
    /// Source row of each member (same order as `members`), so problems point at the right row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_rows: Vec<usize>,
    /// Household answers that came from a later row of the family than `row` (one row per person).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answer_rows: BTreeMap<String, usize>,
}

impl RosterHousehold {
    /// A household first seen on `row`, with no answers yet.
    pub fn new(row: usize) -> Self {
        RosterHousehold {
            row,
            family_id: None,
            village: String::new(),
            answers: BTreeMap::new(),
            members: Vec::new(),
            member_rows: Vec::new(),
            answer_rows: BTreeMap::new(),
        }
    }

    /// Adds a member read from `row`.
    pub fn push_member(&mut self, row: usize, answers: BTreeMap<String, FieldValue>) {
        self.members.push(answers);
        self.member_rows.push(row);
    }

    /// The source row of member `index` (the household's first row when unknown).
    pub fn member_row(&self, index: usize) -> usize {
        self.member_rows.get(index).copied().unwrap_or(self.row)
    }

    /// Every source row this household came from, ascending, so callers can tell clean households.
    pub fn rows(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = std::iter::once(self.row)
            .chain(self.member_rows.iter().copied())
            .chain(self.answer_rows.values().copied())
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// Sets `family_id` and `village` from the answers they mirror.
    pub fn sync_keys(&mut self) {
        self.family_id = self.answers.get(FAMILY_ID_FIELD).map(ToString::to_string).filter(|id| !id.is_empty());
        self.village = self.answers.get(VILLAGE_FIELD).map(ToString::to_string).unwrap_or_default();
    }

    /// Fills what a roster may leave out but the form derives: members' `age_years` from their
    /// `birth_date` (as data entry does, domain.md §2.3), and `head_name` from the full name of the
    /// one member whose relationship is 1 (head). Given answers are never overwritten.
    pub fn fill_derived(&mut self, today: Date) {
        for member in &mut self.members {
            if !member.contains_key("age_years")
                && let Some(age) = member.get("birth_date").and_then(FieldValue::as_text).and_then(|b| age_on(b, today))
            {
                member.insert("age_years".into(), FieldValue::Int(age));
            }
        }
        if !self.answers.contains_key("head_name") {
            let mut heads =
                self.members.iter().filter(|m| m.get(RELATIONSHIP_FIELD).and_then(FieldValue::as_int) == Some(HEAD));
            if let (Some(head), None) = (heads.next(), heads.next())
                && let Some(name) = head.get("full_name").filter(|n| n.as_text().is_some_and(|t| !t.is_empty()))
            {
                self.answers.insert("head_name".into(), name.clone());
            }
        }
        self.sync_keys();
    }
}

/// One thing wrong (or suspicious) in a roster file, located by row and column for the admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterProblem {
    /// Spreadsheet row (1-based; the header row for problems with the columns themselves).
    pub row: usize,
    /// The column header as written in the file (the field name when no header is known).
    pub column: String,
    /// The offending cell as text (empty when the cell is missing); for the admin's screen only.
    pub value: String,
    /// Stable rule code scripts branch on: `required`, `nik_month_range`, `village_code_unknown`,
    /// `duplicate_family_id`, `encoding`, `unknown_column`, …
    pub rule: String,
    /// What is wrong and what to do; never contains the cell's content.
    pub message: String,
    /// Reject blocks the household's import; warn is shown and the household still imports.
    #[serde(default = "reject")]
    pub severity: Severity,
}

fn reject() -> Severity {
    Severity::Reject
}

impl RosterProblem {
    /// A blocking problem at one cell.
    pub fn reject(
        row: usize,
        column: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RosterProblem {
            row,
            column: column.into(),
            value: value.into(),
            rule: rule.into(),
            message: message.into(),
            severity: Severity::Reject,
        }
    }

    /// True when the problem blocks the import of its household.
    pub fn is_blocking(&self) -> bool {
        self.severity == Severity::Reject
    }
}

/// Longest value a report line shows before cutting it off with `…`.
const SHOWN_VALUE_CHARS: usize = 80;

impl fmt::Display for RosterProblem {
    /// One report line: `row 14, column nik, value "7314…": <message> (rule nik_month_range)`.
    /// It shows the cell's value: print it for the admin, never log it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}, column {}", self.row, self.column)?;
        let mut chars = self.value.chars();
        let shown: String = chars.by_ref().take(SHOWN_VALUE_CHARS).collect();
        let more = if chars.next().is_some() { "…" } else { "" };
        write!(f, ", value {:?}{more}: ", shown)?;
        if self.severity == Severity::Warn {
            f.write_str("warning: ")?;
        }
        write!(f, "{} (rule {})", self.message, self.rule)
    }
}

/// The column header each field was read from, so problems name columns as the file does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterColumns {
    household: HashMap<String, String>,
    member: HashMap<String, String>,
}

impl RosterColumns {
    /// Records that `field` of `scope` was read from the column headed `header`.
    pub fn insert(&mut self, scope: Scope, field: impl Into<String>, header: impl Into<String>) {
        let map = if scope == Scope::Member { &mut self.member } else { &mut self.household };
        map.insert(field.into(), header.into());
    }

    /// The header `field` was read from; the field name itself when the file had no such column.
    pub fn header<'a>(&'a self, scope: Scope, field: &'a str) -> &'a str {
        let map = if scope == Scope::Member { &self.member } else { &self.household };
        map.get(field).map_or(field, String::as_str)
    }

    /// True when the file had a column for `field`.
    pub fn has(&self, scope: Scope, field: &str) -> bool {
        let map = if scope == Scope::Member { &self.member } else { &self.household };
        map.contains_key(field)
    }
}

/// Checks one roster household against the form and the identifier rules, as a new household:
/// the same validation `entry::add_household` runs before saving (no visit yet, so only
/// `required: always` fields must be answered). Identifier warnings (e.g. a NIK prefix not in the
/// current region table) come back as warnings, not errors. Every problem carries the source row
/// and the column header from `columns` (pass `RosterColumns::default()` to name fields instead).
pub fn validate_roster_household(
    form: &FormDefinition,
    household: &RosterHousehold,
    columns: &RosterColumns,
    today: Date,
) -> Vec<RosterProblem> {
    let keys: Vec<String> = (0..household.members.len()).map(|i| format!("row {}", household.member_row(i))).collect();
    let members: Vec<MemberAnswers<'_>> =
        household.members.iter().zip(&keys).map(|(answers, key)| MemberAnswers { key: key.clone(), answers }).collect();
    let ctx = ValidationContext { today, complete: false };
    let report = validate_household(form, &household.answers, &members, &ctx);
    let mut problems: Vec<RosterProblem> =
        report.problems.into_iter().map(|p| locate(form, household, columns, p)).collect();

    let mirrored = [
        (FAMILY_ID_FIELD, household.family_id.clone().unwrap_or_default()),
        (VILLAGE_FIELD, household.village.clone()),
    ];
    for (field, key) in mirrored {
        let answer = household.answers.get(field).map(ToString::to_string).unwrap_or_default();
        if answer != key {
            problems.push(RosterProblem::reject(
                household.row,
                columns.header(Scope::Household, field),
                key,
                "roster_key_mismatch",
                format!(
                    "the household's {} key differs from its {field} answer; rebuild the household from the file",
                    if field == VILLAGE_FIELD { "village" } else { "family id" }
                ),
            ));
        }
    }
    problems.sort_by_key(|p| p.row);
    problems
}

/// Turns a validation problem (a field path) into a roster problem (a row and a column).
fn locate(
    form: &FormDefinition,
    household: &RosterHousehold,
    columns: &RosterColumns,
    problem: Problem,
) -> RosterProblem {
    let path = problem.field.as_str();
    let (row, scope, field) = match path.strip_prefix("members[").and_then(|rest| rest.split_once("].")) {
        Some((key, field)) => {
            let row = key.strip_prefix("row ").and_then(|n| n.parse().ok()).unwrap_or(household.row);
            (row, Scope::Member, field)
        }
        // Checks over all members (one head) blame `members`; the relationship column fixes them.
        None if path == "members" => (household.row, Scope::Member, RELATIONSHIP_FIELD),
        None => (household.answer_rows.get(path).copied().unwrap_or(household.row), Scope::Household, path),
    };
    let column = columns.header(scope, field).to_owned();
    let label = form.field(scope, field).map(|f| f.label.as_str());
    let message = strip_title(&problem.message, path, label).to_owned();
    RosterProblem {
        row,
        column,
        value: problem.value.unwrap_or_default(),
        rule: problem.rule,
        message,
        severity: problem.severity,
    }
}

/// Drops the leading `path (label): ` that validation puts on messages: a roster problem already
/// names its row and column.
fn strip_title<'m>(message: &'m str, path: &str, label: Option<&str>) -> &'m str {
    let Some(rest) = message.strip_prefix(path) else {
        return message;
    };
    let rest = match label {
        Some(label) => rest
            .strip_prefix(" (")
            .and_then(|r| r.strip_prefix(label))
            .and_then(|r| r.strip_prefix(')'))
            .unwrap_or(rest),
        None => rest,
    };
    rest.strip_prefix(": ").unwrap_or(message)
}

#[cfg(test)]
mod tests {
    //! Synthetic identifiers only (domain.md §3): NIK and KK serials 9000 and up, family ids `SYN-`.

    use super::*;
    use FieldValue::{Int, Text};
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 01);

    fn text(s: &str) -> FieldValue {
        Text(s.to_owned())
    }

    fn household() -> RosterHousehold {
        let mut household = RosterHousehold::new(2);
        household.answers.insert(FAMILY_ID_FIELD.into(), text("SYN-000001"));
        household.answers.insert(VILLAGE_FIELD.into(), text("73.14.01.1001"));
        household.answers.insert("kk_number".into(), text("7314010101209001"));
        household.push_member(
            2,
            BTreeMap::from([
                ("full_name".into(), text("Wette'E Bin Ali")),
                ("nik".into(), text("7314011503809001")),
                ("presence".into(), Int(1)),
                ("sex".into(), Int(1)),
                ("birth_date".into(), text("1980-03-15")),
                ("relationship".into(), Int(1)),
            ]),
        );
        household.push_member(
            3,
            BTreeMap::from([
                ("full_name".into(), text("Besse Regapu’u")),
                ("nik".into(), text("7314015207859001")),
                ("presence".into(), Int(1)),
                ("sex".into(), Int(2)),
                ("relationship".into(), Int(2)),
            ]),
        );
        household.fill_derived(TODAY);
        household
    }

    fn form() -> &'static FormDefinition {
        FormDefinition::default_dtsen()
    }

    #[test]
    fn a_consistent_household_has_no_problems_and_derives_head_name_and_age() {
        let household = household();
        assert_eq!(household.answers.get("head_name"), Some(&text("Wette'E Bin Ali")));
        assert_eq!(household.members[0].get("age_years"), Some(&Int(45)));
        assert_eq!(household.family_id.as_deref(), Some("SYN-000001"));
        assert_eq!(household.village, "73.14.01.1001");
        let problems = validate_roster_household(form(), &household, &RosterColumns::default(), TODAY);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn member_problems_name_the_member_row_and_the_file_header() {
        let mut household = household();
        household.members[1].insert("nik".into(), text("7314015213859001"));
        let mut columns = RosterColumns::default();
        columns.insert(Scope::Member, "nik", "NIK");
        let problems = validate_roster_household(form(), &household, &columns, TODAY);
        let found: Vec<(usize, &str, &str)> =
            problems.iter().map(|p| (p.row, p.column.as_str(), p.rule.as_str())).collect();
        assert_eq!(found, [(3, "NIK", "nik_month_range")]);
        assert_eq!(problems[0].value, "7314015213859001");
        assert!(!problems[0].message.contains("7314015213859001"), "{}", problems[0].message);
        assert!(!problems[0].message.starts_with("members["), "{}", problems[0].message);
    }

    #[test]
    fn household_problems_point_at_the_row_the_answer_came_from() {
        let mut household = household();
        household.answers.insert(VILLAGE_FIELD.into(), text("73.14.01.1999"));
        household.answer_rows.insert(VILLAGE_FIELD.into(), 3);
        household.sync_keys();
        let problems = validate_roster_household(form(), &household, &RosterColumns::default(), TODAY);
        let found: Vec<(usize, &str, &str)> =
            problems.iter().map(|p| (p.row, p.column.as_str(), p.rule.as_str())).collect();
        assert_eq!(found, [(3, "village_code", "village_code_unknown")]);
        assert_eq!(household.rows(), [2, 3]);
    }

    #[test]
    fn missing_required_answers_and_two_heads_are_reported_per_row() {
        let mut household = household();
        household.members[1].insert("relationship".into(), Int(1));
        household.members[1].remove("sex");
        household.answers.remove("head_name");
        let problems = validate_roster_household(form(), &household, &RosterColumns::default(), TODAY);
        let found: Vec<(usize, &str, &str, Severity)> =
            problems.iter().map(|p| (p.row, p.column.as_str(), p.rule.as_str(), p.severity)).collect();
        assert_eq!(
            found,
            [
                (2, "head_name", "required", Severity::Reject),
                (2, "relationship", "exactly_one_head", Severity::Warn),
                (3, "sex", "required", Severity::Reject),
            ]
        );
    }

    #[test]
    fn a_household_whose_keys_disagree_with_its_answers_is_refused() {
        let mut household = household();
        household.village = "73.14.01.1002".into();
        let problems = validate_roster_household(form(), &household, &RosterColumns::default(), TODAY);
        assert_eq!(problems.iter().map(|p| p.rule.as_str()).collect::<Vec<_>>(), ["roster_key_mismatch"]);
    }

    #[test]
    fn report_line_names_row_column_value_and_rule() {
        let problem = RosterProblem::reject(14, "nik", "7314", "nik_length", "has 4 digits; a NIK has 16");
        assert_eq!(
            problem.to_string(),
            r#"row 14, column nik, value "7314": has 4 digits; a NIK has 16 (rule nik_length)"#
        );
        let long = RosterProblem { value: "x".repeat(100), severity: Severity::Warn, ..problem };
        let line = long.to_string();
        assert!(line.contains(&format!("\"{}\"…: warning: ", "x".repeat(80))), "{line}");
    }

    #[test]
    fn roster_household_survives_a_json_round_trip() {
        let household = household();
        let json = serde_json::to_string(&household).expect("serialises");
        let again: RosterHousehold = serde_json::from_str(&json).expect("parses");
        assert_eq!(again, household);
    }
}
