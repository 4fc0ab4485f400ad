//! Roster files: read a kabupaten admin's CSV or XLSX list of households to verify into
//! [`RosterHousehold`]s, with every problem located by row and column (docs/roster.md).
//!
//! A file with errors imports nothing; [`RosterFile::clean_households`] lists the households
//! without errors for an explicit "import good rows only". Reading touches no store and no server:
//! the caller decides what to import, and the server re-checks each household with
//! `sync_core::roster::validate_roster_household`.
//!
//! Reading streams the file in two passes (the first finds the layout and where each family
//! ends, the second checks each household as soon as its last row is read), so a check's memory
//! does not grow with the file's rows: [`check_roster`] keeps no household, [`read_roster`] keeps
//! the households for an import.
//!
//! Code map: `columns` (headers → form fields), `csv_file` and `xlsx_file` (file bytes → cells,
//! encodings, row numbers), `assemble` (cells → households: layouts, grouping, checks), `report`
//! ([`report::render_report`], the admin's problem list), `synthetic`
//! ([`synthetic::synthetic_roster_csv`], obviously fake rosters for tests and benchmarks).
//!
//! Problems carry cell values for the admin's screen: never log them (tracing included).

mod assemble;
mod columns;
mod csv_file;
/// The admin's problem report (printed, never logged).
pub mod report;
/// Obviously fake rosters, for tests and for benchmarking large imports.
pub mod synthetic;
#[cfg(test)]
mod tests;
mod xlsx_file;

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};

use assemble::{Assembler, Cell, RowSink};
use sync_core::form::FormDefinition;
use sync_core::roster::{RosterHousehold, RosterProblem};
use time::Date;
use xlsx_file::Spreadsheet;

/// How rows map to households; `Auto` decides from the data (docs/roster.md, "Layouts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// One row per person when rows share a family id (or KK number) and some row is not the
    /// head; otherwise one row per household.
    #[default]
    Auto,
    /// One row per household: household fields, optionally the head's member fields.
    PerHousehold,
    /// One row per person, grouped into households by family id, else by KK number.
    PerPerson,
}

impl Layout {
    /// The layout's name as the `--layout` option spells it.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Auto => "auto",
            Layout::PerHousehold => "per-household",
            Layout::PerPerson => "per-person",
        }
    }
}

/// How to read a roster file; build it once from the command's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterOptions {
    /// Force a layout instead of detecting it.
    pub layout: Layout,
    /// Leave out columns that name no form field instead of reporting them (`--ignore-unknown`).
    pub ignore_unknown: bool,
    /// Today's date, for date and NIK checks (passed in so reading is deterministic).
    pub today: Date,
    /// The spreadsheet sheet to read; the first sheet when `None` (ignored for CSV).
    pub sheet: Option<String>,
}

/// What a roster file holds: its households and every problem found in it.
#[derive(Debug, Clone)]
pub struct RosterFile {
    /// Every household read, clean or not, in file order of their first row; empty after
    /// [`check_roster`], which counts households without keeping them.
    pub households: Vec<RosterHousehold>,
    /// Every problem, errors and warnings, in row order (header problems first).
    pub problems: Vec<RosterProblem>,
    /// Data rows read (blank rows not counted).
    pub rows: usize,
    /// The header's row number (1 for CSV; where the used area starts in a spreadsheet).
    pub header_row: usize,
    /// The layout used (never `Auto`).
    pub layout: Layout,
    /// Households read, clean or not (also when they were not kept).
    pub household_count: usize,
    /// Households none of whose rows has an error (0 when the header has one).
    pub clean_count: usize,
}

impl RosterFile {
    /// A file that could not be read past its start (empty, wrong encoding): one problem only.
    fn unreadable(problem: RosterProblem, layout: Layout) -> Self {
        let layout = if layout == Layout::Auto { Layout::PerHousehold } else { layout };
        RosterFile {
            households: Vec::new(),
            problems: vec![problem],
            rows: 0,
            header_row: 1,
            layout,
            household_count: 0,
            clean_count: 0,
        }
    }

    /// True when any problem blocks the import; then nothing is imported unless the admin asks
    /// for the clean households only.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(RosterProblem::is_blocking)
    }

    /// The households none of whose rows has an error, for "import good rows only". Empty when the
    /// header has errors (an unknown or missing column concerns every row).
    pub fn clean_households(&self) -> Vec<&RosterHousehold> {
        let blocked: HashSet<usize> = self.problems.iter().filter(|p| p.is_blocking()).map(|p| p.row).collect();
        if blocked.contains(&self.header_row) {
            return Vec::new();
        }
        self.households.iter().filter(|h| h.rows().iter().all(|row| !blocked.contains(row))).collect()
    }
}

/// Reads a roster file by its extension, keeping its households for an import: `.xlsx`, `.xlsm`,
/// `.xls`, `.xlsb`, `.ods` as a spreadsheet, anything else as CSV. `progress` receives the number
/// of data rows checked so far.
pub fn read_roster(
    form: &FormDefinition,
    path: &Path,
    options: &RosterOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<RosterFile> {
    read_file(form, path, options, true, progress)
}

/// Checks a roster file like [`read_roster`] but keeps no household (counts only), so memory
/// stays flat however long a CSV file is: for `--check`.
pub fn check_roster(
    form: &FormDefinition,
    path: &Path,
    options: &RosterOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<RosterFile> {
    read_file(form, path, options, false, progress)
}

fn read_file(
    form: &FormDefinition,
    path: &Path,
    options: &RosterOptions,
    keep: bool,
    progress: &mut dyn FnMut(usize),
) -> Result<RosterFile> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if let Some("xlsx" | "xlsm" | "xls" | "xlsb" | "ods") = extension.as_deref() {
        let mut spreadsheet = Spreadsheet::open(path, options)?;
        return assemble(form, options, keep, &mut |sink| spreadsheet.read(sink), progress);
    }
    let open = || {
        std::fs::File::open(path)
            .with_context(|| format!("could not read the roster file {}; check the path", path.display()))
    };
    // Fail on a missing file before anything else is said.
    drop(open()?);
    assemble(form, options, keep, &mut |sink| Ok(csv_file::read(open()?, sink)), progress)
}

/// Reads a CSV roster from its bytes (UTF-8; see `csv_file` for encodings and delimiters),
/// keeping its households: for tests, which build rosters in memory.
#[cfg(test)]
pub fn read_csv(
    form: &FormDefinition,
    bytes: &[u8],
    options: &RosterOptions,
    progress: &mut dyn FnMut(usize),
) -> RosterFile {
    let mut read = |sink: &mut dyn RowSink| Ok(csv_file::read(bytes, sink));
    match assemble(form, options, true, &mut read, progress) {
        Ok(file) => file,
        // Reading bytes in memory cannot fail to open.
        Err(error) => {
            RosterFile::unreadable(RosterProblem::reject(1, "", "", "csv_format", format!("{error:#}")), options.layout)
        }
    }
}

/// One pass over the file: the reader hands each row to a [`RowSink`]. The outer error is for a
/// file that cannot be read at all; `Err` inside is a problem with the file as a whole.
type ReadPass<'r> = dyn FnMut(&mut dyn RowSink) -> Result<Result<(), RosterProblem>> + 'r;

/// Reads the file twice: the first pass builds the [`Assembler`] from the header and scans the
/// rows, the second checks them.
fn assemble(
    form: &FormDefinition,
    options: &RosterOptions,
    keep: bool,
    read: &mut ReadPass<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<RosterFile> {
    let mut scanning = Scanning { form, options, keep, assembler: None };
    if let Err(problem) = read(&mut scanning)? {
        return Ok(RosterFile::unreadable(problem, options.layout));
    }
    let Some(mut assembler) = scanning.assembler else {
        let problem = RosterProblem::reject(
            1,
            "",
            "",
            "empty_file",
            "the file has no header row; put the column headers on its first row",
        );
        return Ok(RosterFile::unreadable(problem, options.layout));
    };
    assembler.start_checking();
    let mut checking = Checking { assembler, progress };
    if let Err(problem) = read(&mut checking)? {
        // The file changed between the two passes.
        return Ok(RosterFile::unreadable(problem, options.layout));
    }
    let Checking { assembler, progress } = checking;
    Ok(assembler.finish(progress))
}

/// The first pass: the header makes the assembler, rows are scanned, problems wait for the second.
struct Scanning<'f, 'o> {
    form: &'f FormDefinition,
    options: &'o RosterOptions,
    keep: bool,
    assembler: Option<Assembler<'f>>,
}

impl RowSink for Scanning<'_, '_> {
    fn header(&mut self, row: usize, cells: &[Cell<'_>]) {
        self.assembler = Some(Assembler::new(self.form, self.options, row, cells, self.keep));
    }

    fn row(&mut self, row: usize, cells: &[Cell<'_>]) {
        if let Some(assembler) = &mut self.assembler {
            assembler.scan_row(row, cells);
        }
    }

    fn problem(&mut self, _: RosterProblem) {}
}

/// The second pass: every row is checked, households as soon as they are complete.
struct Checking<'f, 'p> {
    assembler: Assembler<'f>,
    progress: &'p mut dyn FnMut(usize),
}

impl RowSink for Checking<'_, '_> {
    fn header(&mut self, _: usize, _: &[Cell<'_>]) {}

    fn row(&mut self, row: usize, cells: &[Cell<'_>]) {
        self.assembler.push_row(row, cells, self.progress);
    }

    fn problem(&mut self, problem: RosterProblem) {
        self.assembler.push_problem(problem);
    }
}
