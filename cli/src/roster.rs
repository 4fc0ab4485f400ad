//! Roster files: read a kabupaten admin's CSV or XLSX list of households to verify into
//! [`RosterHousehold`]s, with every problem located by row and column (docs/roster.md).
//!
//! A file with errors imports nothing; [`RosterFile::clean_households`] lists the households
//! without errors for an explicit "import good rows only". Reading touches no store and no server:
//! the caller decides what to import, and the server re-checks each household with
//! `sync_core::roster::validate_roster_household`.
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
use sync_core::form::FormDefinition;
use sync_core::roster::{RosterHousehold, RosterProblem};
use time::Date;

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
    /// Every household read, clean or not, in file order of their first row.
    pub households: Vec<RosterHousehold>,
    /// Every problem, errors and warnings, in row order (header problems first).
    pub problems: Vec<RosterProblem>,
    /// Data rows read (blank rows not counted).
    pub rows: usize,
    /// The header's row number (1 for CSV; where the used area starts in a spreadsheet).
    pub header_row: usize,
    /// The layout used (never `Auto`).
    pub layout: Layout,
}

impl RosterFile {
    /// A file that could not be read past its start (empty, wrong encoding): one problem only.
    fn unreadable(problem: RosterProblem, layout: Layout) -> Self {
        let layout = if layout == Layout::Auto { Layout::PerHousehold } else { layout };
        RosterFile { households: Vec::new(), problems: vec![problem], rows: 0, header_row: 1, layout }
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

/// Reads a roster file by its extension: `.xlsx`, `.xlsm`, `.xls`, `.xlsb`, `.ods` as a
/// spreadsheet, anything else as CSV. `progress` receives the number of data rows checked so far.
pub fn read_roster(
    form: &FormDefinition,
    path: &Path,
    options: &RosterOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<RosterFile> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("xlsx" | "xlsm" | "xls" | "xlsb" | "ods") => read_spreadsheet(form, path, options, progress),
        _ => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("could not read the roster file {}; check the path", path.display()))?;
            Ok(read_csv(form, &bytes, options, progress))
        }
    }
}

/// Reads a CSV roster from its bytes (UTF-8; see `csv_file` for encodings and delimiters).
pub fn read_csv(
    form: &FormDefinition,
    bytes: &[u8],
    options: &RosterOptions,
    progress: &mut dyn FnMut(usize),
) -> RosterFile {
    match csv_file::read(form, bytes, options) {
        Ok(assembler) => assembler.finish(progress),
        Err(problem) => RosterFile::unreadable(problem, options.layout),
    }
}

/// Reads a spreadsheet roster (first sheet unless `options.sheet` names one).
pub fn read_spreadsheet(
    form: &FormDefinition,
    path: &Path,
    options: &RosterOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<RosterFile> {
    Ok(match xlsx_file::read(form, path, options)? {
        Ok(assembler) => assembler.finish(progress),
        Err(problem) => RosterFile::unreadable(problem, options.layout),
    })
}
