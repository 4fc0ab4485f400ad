//! Cells → households, streaming: parse each cell for its field, pick the layout, group rows into
//! households and check every household, keeping every problem with its row and column.
//!
//! The file is read twice, row by row, and never held. The first pass ([`Assembler::scan_row`])
//! finds the layout and the last row of every family; the second ([`Assembler::push_row`]) parses
//! each row, puts it with its family and checks a household as soon as its last row is read, then
//! lets it go (or keeps it, when the caller will import it). What stays in memory is an 8-byte
//! key hash and a 4-byte row per family (each family's last row; dropped after the first pass of
//! a one-row-per-household file, which needs only the family ids seen twice), the families whose
//! rows are still to come (rows of a family need not be next to each other), and the problems.
//! Work is linear in the number of cells. Nothing here reads the clock.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use sync_core::finding::Severity;
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
/// Household fields stored with three digits (`003`); Excel drops the leading zeros of `003`.
const THREE_DIGIT_FIELDS: [&str; 2] = ["rt", "rw"];
/// Digits in a NIK or KK number. Excel keeps 15 significant digits of a number.
const IDENTIFIER_DIGITS: usize = 16;
/// A column of identifiers that all end in 0 is suspicious from this many values on (one in ten
/// ends in 0 by chance; three in a row by chance is one in a thousand).
const TRAILING_ZERO_MIN_VALUES: usize = 3;

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

/// Where a file reader delivers the rows of one pass, in file order.
pub(super) trait RowSink {
    /// The header row (the first row with a value), with its spreadsheet row number.
    fn header(&mut self, row: usize, cells: &[Cell<'_>]);
    /// A row after the header, with its spreadsheet row number.
    fn row(&mut self, row: usize, cells: &[Cell<'_>]);
    /// A problem the reader found outside any cell (e.g. broken CSV quoting).
    fn problem(&mut self, problem: RosterProblem);
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

    /// The key that groups one-row-per-person rows: the family id, else the KK number.
    fn group_key(&self) -> Option<String> {
        match self.household_text(FAMILY_ID_FIELD) {
            Some(id) => Some(format!("f:{id}")),
            None => self.household_text(KK_NUMBER).map(|kk| format!("k:{kk}")),
        }
    }
}

/// What reading one row found besides its answers; the second pass keeps it, the first drops it.
#[derive(Default)]
struct RowFindings {
    problems: Vec<RosterProblem>,
    /// Headers of the cells that failed to parse, so a `required` problem does not repeat them.
    unparsed: Vec<String>,
    /// Indexes of columns without a header that hold a value.
    stray: Vec<usize>,
    /// Indexes of the RT/RW columns whose value was padded to three digits.
    padded: Vec<usize>,
    /// (column index, ends in 0) of each 16-digit identifier.
    identifiers: Vec<(usize, bool)>,
}

/// A family key (`f:` family id or `k:` KK number) as two 64-bit hashes: 16 bytes per family
/// instead of its text. Two keys share a hash with a chance of about one in 2^128, so families
/// are told apart by it.
type KeyHash = (u64, u64);

fn key_hash(key: &str) -> KeyHash {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish()
    };
    (half(0), half(1))
}

/// A row number as stored per family (4 bytes; a roster has fewer than 4 billion rows).
fn compact_row(row: usize) -> u32 {
    u32::try_from(row).unwrap_or(u32::MAX)
}

/// A family of a one-row-per-person file whose last row is still to come.
struct OpenFamily {
    household: RosterHousehold,
    rows: usize,
}

/// The first row of a family id in a one-row-per-household file, to report duplicates.
struct FirstRow {
    row: u32,
    /// The duplicate problem on this first row was already reported.
    reported: bool,
    /// Its household was counted as clean (a later duplicate takes that back).
    counted_clean: bool,
}

/// How many 16-digit identifiers a column holds, and how many of them end in 0.
#[derive(Debug, Clone, Copy, Default)]
struct IdentifierTally {
    values: usize,
    ending_in_zero: usize,
}

/// Reads the rows of one file (two passes) and turns them into a [`RosterFile`].
pub(super) struct Assembler<'f> {
    form: &'f FormDefinition,
    options: RosterOptions,
    header_row: usize,
    columns: Columns<'f>,
    /// Keep the checked households (for an import) or count them and let them go (a check).
    keep: bool,

    // First pass.
    /// First half of a key hash → the last row of that family. Half a hash is enough here: two
    /// families sharing it (about one in 2^64) only keep the earlier one open until `finish`.
    last_row_of: HashMap<u64, u32>,
    /// Some family key is on two rows.
    shared_key: bool,
    /// First halves of the hashes of the keys on more than one row (duplicates are rare, so this
    /// stays small); only these are followed for duplicate family ids.
    repeated_keys: HashSet<u64>,
    /// Some row's person is not the head.
    non_heads: bool,
    /// Columns without a header that hold a value: column index → first row with a value.
    stray: BTreeMap<usize, usize>,

    // Decided between the passes.
    layout: Layout,
    /// Required fields without any column (reported once, not on every row).
    missing: HashSet<&'f str>,

    // Second pass.
    open: HashMap<KeyHash, OpenFamily>,
    first_row_of: HashMap<KeyHash, FirstRow>,
    problems: Vec<RosterProblem>,
    blocked_rows: HashSet<usize>,
    unparsed: HashSet<(usize, String)>,
    identifiers: BTreeMap<usize, IdentifierTally>,
    padded: BTreeMap<usize, usize>,
    households: Vec<RosterHousehold>,
    rows: usize,
    household_count: usize,
    clean_count: usize,
    rows_checked: usize,
}

impl<'f> Assembler<'f> {
    /// Starts a file whose header row is `header_row` with these header cells; `keep` keeps the
    /// checked households for an import.
    pub fn new(
        form: &'f FormDefinition,
        options: &RosterOptions,
        header_row: usize,
        headers: &[Cell<'_>],
        keep: bool,
    ) -> Self {
        let columns = map_headers(form, headers, header_row, options.ignore_unknown);
        Assembler {
            form,
            options: options.clone(),
            header_row,
            columns,
            keep,
            last_row_of: HashMap::new(),
            shared_key: false,
            repeated_keys: HashSet::new(),
            non_heads: false,
            stray: BTreeMap::new(),
            layout: options.layout,
            missing: HashSet::new(),
            open: HashMap::new(),
            first_row_of: HashMap::new(),
            problems: Vec::new(),
            blocked_rows: HashSet::new(),
            unparsed: HashSet::new(),
            identifiers: BTreeMap::new(),
            padded: BTreeMap::new(),
            households: Vec::new(),
            rows: 0,
            household_count: 0,
            clean_count: 0,
            rows_checked: 0,
        }
    }

    /// First pass: notes the row's family key, whether its person is the head and stray values.
    pub fn scan_row(&mut self, row: usize, cells: &[Cell<'_>]) {
        let Some((parsed, findings)) = self.parse_row(row, cells) else { return };
        for index in findings.stray {
            self.stray.entry(index).or_insert(row);
        }
        if parsed.relationship().is_some_and(|code| code != HEAD) {
            self.non_heads = true;
        }
        if let Some(key) = parsed.group_key() {
            let hash = key_hash(&key).0;
            if self.last_row_of.insert(hash, compact_row(row)).is_some() {
                self.shared_key = true;
                self.repeated_keys.insert(hash);
            }
        }
    }

    /// Between the passes: decides the layout and reports what concerns the header row.
    pub fn start_checking(&mut self) {
        self.layout = self.resolve_layout();
        if self.layout != Layout::PerPerson {
            // Only one-row-per-person files need each family's last row.
            self.last_row_of = HashMap::new();
        }
        for problem in std::mem::take(&mut self.columns.problems) {
            self.add_problem(problem);
        }
        for (index, first_row) in std::mem::take(&mut self.stray) {
            self.add_problem(RosterProblem::reject(
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
        self.missing = self.missing_columns();
    }

    /// Second pass: parses one row, puts it with its household and checks every household whose
    /// last row this is; a row whose cells are all empty is skipped.
    pub fn push_row(&mut self, row: usize, cells: &[Cell<'_>], progress: &mut dyn FnMut(usize)) {
        let Some((parsed, findings)) = self.parse_row(row, cells) else { return };
        self.rows += 1;
        let RowFindings { problems, unparsed, stray: _, padded, identifiers } = findings;
        for problem in problems {
            self.add_problem(problem);
        }
        self.unparsed.extend(unparsed.into_iter().map(|column| (row, column)));
        for index in padded {
            *self.padded.entry(index).or_default() += 1;
        }
        for (index, ends_in_zero) in identifiers {
            let tally = self.identifiers.entry(index).or_default();
            tally.values += 1;
            tally.ending_in_zero += usize::from(ends_in_zero);
        }
        match self.layout {
            Layout::PerPerson => self.push_person(parsed, progress),
            _ => self.push_household(parsed, progress),
        }
    }

    /// Records a problem found by the file reader outside any cell (e.g. broken CSV quoting).
    pub fn push_problem(&mut self, problem: RosterProblem) {
        self.add_problem(problem);
    }

    /// Checks the families still open (only when rows moved between the passes), adds the
    /// file-level warnings and puts every problem in report order.
    pub fn finish(mut self, progress: &mut dyn FnMut(usize)) -> RosterFile {
        let mut open: Vec<OpenFamily> = std::mem::take(&mut self.open).into_values().collect();
        open.sort_by_key(|family| family.household.row);
        for family in open {
            self.check(family.household, family.rows, progress);
        }
        self.file_warnings();
        if self.blocked_rows.contains(&self.header_row) {
            // A header error (an unknown or missing column) concerns every row.
            self.clean_count = 0;
        }
        // Report order: by row, then in the file's column order (columns it lacks come last).
        let position: HashMap<&str, usize> =
            self.columns.columns.iter().enumerate().map(|(i, c)| (c.header.as_str(), i)).collect();
        let mut problems = std::mem::take(&mut self.problems);
        problems.sort_by_key(|p| (p.row, position.get(p.column.as_str()).copied().unwrap_or(usize::MAX)));
        let mut households = std::mem::take(&mut self.households);
        households.sort_by_key(|h| h.row);
        RosterFile {
            households,
            problems,
            rows: self.rows,
            header_row: self.header_row,
            layout: self.layout,
            household_count: self.household_count,
            clean_count: self.clean_count,
        }
    }

    fn add_problem(&mut self, problem: RosterProblem) {
        if problem.is_blocking() {
            self.blocked_rows.insert(problem.row);
        }
        self.problems.push(problem);
    }

    /// Parses the cells of one row for their fields; `None` for a row whose cells are all empty.
    fn parse_row(&self, row: usize, cells: &[Cell<'_>]) -> Option<(ParsedRow<'f>, RowFindings)> {
        if cells.iter().all(|c| c.issue.is_none() && c.text.trim().is_empty()) {
            return None;
        }
        let mut parsed = ParsedRow { row, household: Vec::new(), member: Vec::new() };
        let mut found = RowFindings::default();
        for (index, cell) in cells.iter().enumerate() {
            let text = cell.text.trim();
            let Some(column) = self.columns.columns.get(index) else {
                if !text.is_empty() {
                    found.stray.push(index);
                }
                continue;
            };
            if let Some(issue) = &cell.issue {
                found.problems.push(RosterProblem::reject(
                    row,
                    &column.header,
                    text,
                    issue.rule,
                    issue.message.clone(),
                ));
            }
            let (scope, field) = match column.target {
                Target::Field(scope, field) => (scope, field),
                Target::Skip => continue,
                Target::Unnamed => {
                    if !text.is_empty() {
                        found.stray.push(index);
                    }
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            let mut text = Cow::Borrowed(text);
            if matches!(field.kind, FieldKind::Nik { .. } | FieldKind::KkNumber) {
                // One problem per identifier Excel changed, instead of the digit rules failing on
                // what is left of it.
                let changed = if cell.float { Some(number_precision_message()) } else { excel_number_message(&text) };
                if let Some((rule, message)) = changed {
                    found.problems.push(RosterProblem::reject(row, &column.header, text.as_ref(), rule, message));
                    found.unparsed.push(column.header.clone());
                    continue;
                }
                let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect();
                if digits.len() == IDENTIFIER_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
                    found.identifiers.push((index, digits.ends_with('0')));
                }
            }
            if scope == Scope::Household
                && THREE_DIGIT_FIELDS.contains(&field.name.as_str())
                && text.len() < 3
                && text.bytes().all(|b| b.is_ascii_digit())
            {
                text = Cow::Owned(format!("{text:0>3}"));
                found.padded.push(index);
            }
            match field.parse_input(&text) {
                Ok(Some(value)) => match scope {
                    Scope::Member => parsed.member.push((field, value)),
                    _ => parsed.household.push((field, value)),
                },
                Ok(None) => {}
                Err(finding) => {
                    found.problems.push(RosterProblem {
                        row,
                        column: column.header.clone(),
                        value: text.into_owned(),
                        rule: finding.rule,
                        message: strip_title(&finding.message, field).to_owned(),
                        severity: finding.severity,
                    });
                    found.unparsed.push(column.header.clone());
                }
            }
        }
        Some((parsed, found))
    }

    /// The layout to use: the forced one, else one row per person when rows share a family id or
    /// KK number and some row is a member other than the head (so a one-row-per-household file
    /// with an accidental duplicate is reported as a duplicate, not merged).
    fn resolve_layout(&self) -> Layout {
        if self.options.layout != Layout::Auto {
            return self.options.layout;
        }
        if self.shared_key && self.non_heads { Layout::PerPerson } else { Layout::PerHousehold }
    }

    /// Reports fields every household (or member) needs that have no column at all, once, on the
    /// header row; returns their names so the same gap is not repeated on every row.
    fn missing_columns(&mut self) -> HashSet<&'f str> {
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
                let implied = field.name == RELATIONSHIP && self.layout == Layout::PerHousehold;
                if !names.has(Scope::Member, &field.name) && !implied {
                    missing.insert(field.name.as_str());
                }
            }
        }
        for scope in [Scope::Household, Scope::Member] {
            for field in self.form.fields(scope).iter().filter(|f| missing.contains(f.name.as_str())) {
                self.add_problem(RosterProblem::reject(
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
    fn push_household(&mut self, row: ParsedRow<'f>, progress: &mut dyn FnMut(usize)) {
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
        let Some(id) = household.family_id.clone() else {
            self.check(household, 1, progress);
            return;
        };
        // The same key as the first pass's, so only family ids it saw twice are followed.
        let hash = key_hash(&format!("f:{id}"));
        if !self.repeated_keys.contains(&hash.0) {
            self.check(household, 1, progress);
            return;
        }
        let family_header = self.columns.names.header(Scope::Household, FAMILY_ID_FIELD).to_owned();
        let hint = "each household appears once in a one-row-per-household file: remove or correct the duplicate \
                    row (if the file has one row per person, add a relationship column or import with layout \
                    per-person)";
        let first = match self.first_row_of.get_mut(&hash) {
            None => None,
            Some(first) => {
                let earlier = (first.row as usize, !first.reported, first.counted_clean);
                first.reported = true;
                first.counted_clean = false;
                Some(earlier)
            }
        };
        match first {
            None => {
                let clean = self.check(household, 1, progress);
                let first = FirstRow { row: compact_row(row.row), reported: false, counted_clean: clean };
                self.first_row_of.insert(hash, first);
            }
            Some((first, report_first, first_was_clean)) => {
                if report_first {
                    self.add_problem(RosterProblem::reject(
                        first,
                        &family_header,
                        &id,
                        "duplicate_family_id",
                        format!("the same family id is also on row {}; {hint}", row.row),
                    ));
                    if first_was_clean {
                        self.clean_count -= 1;
                    }
                }
                self.add_problem(RosterProblem::reject(
                    row.row,
                    &family_header,
                    &id,
                    "duplicate_family_id",
                    format!("the same family id is already on row {first}; {hint}"),
                ));
                self.check(household, 1, progress);
            }
        }
    }

    /// One row per person, grouped by family id, else by KK number; household fields repeated on
    /// the rows of a family must agree (an empty cell after the first row is fine). A family is
    /// checked once its last row (found by the first pass) is in.
    fn push_person(&mut self, row: ParsedRow<'f>, progress: &mut dyn FnMut(usize)) {
        let Some(key) = row.group_key() else {
            let names = &self.columns.names;
            let problem = RosterProblem::reject(
                row.row,
                names.header(Scope::Household, FAMILY_ID_FIELD),
                "",
                "no_group_key",
                format!(
                    "this row has neither a family id nor a KK number, so it cannot be put with the rest of its \
                     family; fill in column {} or {}",
                    names.header(Scope::Household, FAMILY_ID_FIELD),
                    names.header(Scope::Household, KK_NUMBER)
                ),
            );
            self.add_problem(problem);
            let mut family = OpenFamily { household: RosterHousehold::new(row.row), rows: 0 };
            let mut disagreements = Vec::new();
            add_person(&mut family, row, &self.columns, &mut disagreements);
            family.household.sync_keys();
            self.check(family.household, family.rows, progress);
            return;
        };
        let hash = key_hash(&key);
        let row_number = row.row;
        let family = self
            .open
            .entry(hash)
            .or_insert_with(|| OpenFamily { household: RosterHousehold::new(row_number), rows: 0 });
        let mut disagreements = Vec::new();
        add_person(family, row, &self.columns, &mut disagreements);
        for problem in disagreements {
            self.add_problem(problem);
        }
        // A row the first pass did not see (the file changed in between) waits for `finish`.
        if self.last_row_of.get(&hash.0) == Some(&compact_row(row_number))
            && let Some(mut family) = self.open.remove(&hash)
        {
            self.last_row_of.remove(&hash.0);
            family.household.sync_keys();
            self.check(family.household, family.rows, progress);
        }
    }

    /// Checks one complete household, counts it and keeps it when asked; true when none of its
    /// rows has an error so far.
    fn check(&mut self, mut household: RosterHousehold, rows: usize, progress: &mut dyn FnMut(usize)) -> bool {
        household.fill_derived(self.options.today);
        let checked = validate_roster_household(self.form, &household, &self.columns.names, self.options.today);
        for problem in checked {
            let repeated = problem.rule == "required"
                && (self.missing.contains(problem.column.as_str())
                    || self.unparsed.contains(&(problem.row, problem.column.clone())));
            if !repeated {
                self.add_problem(problem);
            }
        }
        let clean = household.rows().iter().all(|row| !self.blocked_rows.contains(row));
        self.household_count += 1;
        self.clean_count += usize::from(clean);
        self.rows_checked += rows;
        progress(self.rows_checked);
        if self.keep {
            self.households.push(household);
        }
        clean
    }

    /// Warnings about whole columns, on the header row: identifier columns whose values all end
    /// in 0, and RT/RW values padded to three digits.
    fn file_warnings(&mut self) {
        let mut warnings = Vec::new();
        for (index, tally) in &self.identifiers {
            if tally.values >= TRAILING_ZERO_MIN_VALUES && tally.ending_in_zero == tally.values {
                warnings.push(self.warning(
                    *index,
                    "excel_trailing_zeros",
                    format!(
                        "all {} numbers in this column end in 0: Excel keeps only 15 digits of a number, so a column it \
                         took for numbers has each 16th digit replaced by 0; if the file went through Excel, format \
                         the column as Text, re-enter the numbers from the source (KTP, KK card) and import again; if \
                         the numbers are right, nothing to do",
                        tally.values
                    ),
                ));
            }
        }
        for (index, count) in &self.padded {
            warnings.push(self.warning(
                *index,
                "rt_rw_padded",
                format!(
                    "{count} value(s) in this column had fewer than 3 digits (such as 3, as Excel leaves 003 when it \
                     drops leading zeros) and were padded with zeros to 3 digits (003), the way RT and RW are stored; \
                     nothing to do unless the column holds something else"
                ),
            ));
        }
        for warning in warnings {
            self.add_problem(warning);
        }
    }

    /// A warning on the header row about the column at `index`.
    fn warning(&self, index: usize, rule: &str, message: String) -> RosterProblem {
        let header = self.columns.columns.get(index).map_or_else(|| format!("#{}", index + 1), |c| c.header.clone());
        RosterProblem { severity: Severity::Warn, ..RosterProblem::reject(self.header_row, header, "", rule, message) }
    }
}

/// Adds one person row to its family: household answers (reporting a value that differs from an
/// earlier row's) and the member.
fn add_person(family: &mut OpenFamily, row: ParsedRow<'_>, columns: &Columns<'_>, problems: &mut Vec<RosterProblem>) {
    let household = &mut family.household;
    family.rows += 1;
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
                        columns.names.header(Scope::Household, &field.name),
                        value.to_string(),
                        "household_disagrees",
                        format!(
                            "this household column differs from row {first} of the same family; household columns \
                             must be the same on every row of a family (or empty after its first row): correct row \
                             {} or row {first}",
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

/// The problem for a NIK or KK number a spreadsheet stored as a floating-point number.
fn number_precision_message() -> (&'static str, String) {
    (
        "number_precision",
        "the spreadsheet stores this identifier as a number, which keeps only 15 digits, so the last digit may \
         already be lost; format the column as Text, re-enter the numbers and import again"
            .to_owned(),
    )
}

/// The problem for a NIK or KK number whose text shows that Excel took it for a number and
/// changed it: scientific notation (`7.31401E+15`), thousands separators (`7,314,011,503,809,000`)
/// or decimals (`7314011503809000.00`). The message never repeats the value.
fn excel_number_message(text: &str) -> Option<(&'static str, String)> {
    let fix = "in Excel, format the column as Text before pasting or typing the numbers (when opening a CSV, import \
               this column as Text), re-enter them from the source (KTP, KK card), save as CSV UTF-8 and import again";
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((mantissa, exponent)) = text.split_once(['e', 'E']) {
        let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
        let mantissa_ok = mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
            && mantissa.bytes().any(|b| b.is_ascii_digit());
        if mantissa_ok && digits(exponent) {
            let kept = mantissa.bytes().filter(u8::is_ascii_digit).count();
            return Some((
                "excel_number",
                format!(
                    "Excel changed this identifier into a number and wrote it in scientific notation, which keeps \
                     only {kept} digit(s): the rest are lost and cannot be recovered from this file; {fix}"
                ),
            ));
        }
    }
    let groups: Vec<&str> = text.split([',', '.']).collect();
    let grouped = groups.len() >= 5
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| digits(g))
        && groups[1..].iter().all(|g| g.len() == 3);
    let decimals = text.rsplit_once(['.', ',']).is_some_and(|(whole, fraction)| {
        whole.len() >= 15 && digits(whole) && !fraction.is_empty() && fraction.bytes().all(|b| b == b'0')
    });
    if grouped || decimals {
        return Some((
            "excel_number",
            format!(
                "Excel changed this identifier into a number (written with {}), which keeps only 15 digits: the 16th \
                 is lost (it becomes 0); {fix}",
                if grouped { "thousands separators" } else { "decimals" }
            ),
        ));
    }
    None
}

/// Drops the leading `name (label): ` of a parse message: the problem already names the column.
fn strip_title<'m>(message: &'m str, field: &FieldDef) -> &'m str {
    let title = format!("{} ({}): ", field.name, field.label);
    message.strip_prefix(title.as_str()).unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::excel_number_message;

    #[test]
    fn numbers_excel_changed_are_told_from_identifiers() {
        for changed in [
            "7.31401E+15",
            "7,31401E+15",
            "7.31401e15",
            "7E+15",
            "7,314,011,503,809,000",
            "7.314.011.503.809.000",
            "7314011503809000.00",
            "7314011503809000,0",
        ] {
            assert!(excel_number_message(changed).is_some(), "{changed}");
        }
        for identifier in [
            "7314011503809001",
            "7314 0115 0380 9001",
            "73.14.01.150380.9001",
            "7314-01-150380-9001",
            "731401150380900",
            "E+15",
            "SYN-0001",
        ] {
            assert!(excel_number_message(identifier).is_none(), "{identifier}");
        }
        let (rule, message) = excel_number_message("7.31401E+15").expect("scientific");
        assert_eq!(rule, "excel_number");
        assert!(message.contains("only 6 digit(s)") && message.contains("format the column as Text"), "{message}");
        assert!(!message.contains("7.31401"), "the value is not repeated: {message}");
    }
}
