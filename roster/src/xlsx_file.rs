//! Spreadsheet (XLSX, and the other formats calamine reads: XLS, XLSB, ODS) → cells, row by row.
//!
//! The first row with a value is the header; rows keep the numbers the spreadsheet shows. Numbers
//! that are whole are read without a decimal point (`1.0` → `1`), date cells as `YYYY-MM-DD`, and
//! error cells (`#N/A`) become a `cell_error` problem. A 16-digit identifier stored as a number is
//! flagged by the assembler: spreadsheets keep only 15 digits of a number.
//!
//! Memory: an XLSX sheet is streamed cell by cell (calamine's `worksheet_cells_reader`), so its
//! rows are never all in memory; but calamine loads the workbook's shared-string table whole when
//! it opens the file, and every distinct text of the sheet (names, addresses, identifiers typed
//! as text) is in it, so an XLSX roster still needs memory in proportion to its distinct text.
//! The other formats are read whole (calamine has no streaming reader for them). For very large
//! rosters, CSV keeps memory flat.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result, bail};
use calamine::{Data, Range, Reader, Xlsx, open_workbook, open_workbook_auto};
use sync_core::roster::RosterProblem;

use super::RosterOptions;
use super::assemble::{Cell, CellIssue, RowSink};

/// Largest integer an f64 holds exactly (2^53); bigger whole numbers are printed as floats.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// An open spreadsheet whose chosen sheet can be read from the start as often as needed.
pub(super) enum Spreadsheet {
    /// An XLSX workbook, read cell by cell on every pass.
    Xlsx { workbook: Box<Xlsx<BufReader<File>>>, sheet: String },
    /// Another format, its sheet read whole once.
    Whole { range: Range<Data>, sheet: String },
}

impl Spreadsheet {
    /// Opens the workbook at `path` and picks the sheet (the first one unless `options.sheet`
    /// names another).
    pub fn open(path: &Path, options: &RosterOptions) -> Result<Spreadsheet> {
        let cannot_open = || {
            format!(
                "could not open {} as a spreadsheet; check that it is an .xlsx file, or save it as CSV UTF-8",
                path.display()
            )
        };
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if matches!(extension.as_deref(), Some("xlsx" | "xlsm")) {
            let workbook: Xlsx<BufReader<File>> = open_workbook(path).with_context(cannot_open)?;
            let sheet = choose_sheet(path, workbook.sheet_names(), options)?;
            return Ok(Spreadsheet::Xlsx { workbook: Box::new(workbook), sheet });
        }
        let mut workbook = open_workbook_auto(path).with_context(cannot_open)?;
        let sheet = choose_sheet(path, workbook.sheet_names(), options)?;
        let range = workbook.worksheet_range(&sheet).with_context(|| {
            format!("could not read sheet {sheet:?} of {}; open and save it again in a spreadsheet", path.display())
        })?;
        Ok(Spreadsheet::Whole { range, sheet })
    }

    /// Reads the sheet once, handing every row to `sink`. The outer error is for a sheet that
    /// cannot be read; `Err` inside is a problem with the sheet as a whole (it is empty).
    pub fn read(&mut self, sink: &mut dyn RowSink) -> Result<Result<(), RosterProblem>> {
        let mut rows = RowAssembler::default();
        let sheet = match self {
            Spreadsheet::Xlsx { workbook, sheet } => {
                let mut cells = workbook
                    .worksheet_cells_reader(sheet)
                    .with_context(|| format!("could not read sheet {sheet:?}; open and save it again in Excel"))?;
                while let Some(cell) = cells
                    .next_cell()
                    .with_context(|| format!("could not read sheet {sheet:?}; open and save it again in Excel"))?
                {
                    let (row, column) = cell.get_position();
                    rows.cell(row, column, Data::from(cell.get_value().clone()), sink);
                }
                sheet
            }
            Spreadsheet::Whole { range, sheet } => {
                let (first_row, first_column) = range.start().unwrap_or_default();
                for (offset, cells) in range.rows().enumerate() {
                    for (column, data) in cells.iter().enumerate() {
                        rows.cell(first_row + offset as u32, first_column + column as u32, data.clone(), sink);
                    }
                }
                sheet
            }
        };
        rows.flush(sink);
        if rows.header_seen {
            Ok(Ok(()))
        } else {
            Ok(Err(RosterProblem::reject(
                1,
                "",
                "",
                "empty_file",
                format!(
                    "sheet {sheet:?} is empty; its first row must hold the column headers, then one row per \
                     household or person"
                ),
            )))
        }
    }
}

/// The sheet to read: the one named in `options`, else the first.
fn choose_sheet(path: &Path, sheets: Vec<String>, options: &RosterOptions) -> Result<String> {
    match &options.sheet {
        Some(name) if sheets.contains(name) => Ok(name.clone()),
        Some(name) => bail!("{} has no sheet named {name:?}; its sheets are: {}", path.display(), sheets.join(", ")),
        None => match sheets.into_iter().next() {
            Some(first) => Ok(first),
            None => bail!("{} has no sheets; put the roster on the first sheet", path.display()),
        },
    }
}

/// Collects cells arriving in row order into rows (columns from A, so a column's position is
/// the spreadsheet's) and hands each complete row on; rows without a value are skipped, and
/// the first row with one is the header.
#[derive(Default)]
struct RowAssembler {
    row: Option<u32>,
    cells: Vec<Data>,
    has_value: bool,
    header_seen: bool,
}

impl RowAssembler {
    fn cell(&mut self, row: u32, column: u32, data: Data, sink: &mut dyn RowSink) {
        if self.row != Some(row) {
            self.flush(sink);
            self.row = Some(row);
        }
        if data == Data::Empty {
            return;
        }
        let column = column as usize;
        if self.cells.len() <= column {
            self.cells.resize(column + 1, Data::Empty);
        }
        self.cells[column] = data;
        self.has_value = true;
    }

    fn flush(&mut self, sink: &mut dyn RowSink) {
        if let (Some(row), true) = (self.row, self.has_value) {
            let cells: Vec<Cell<'_>> = self.cells.iter().map(cell).collect();
            let number = row as usize + 1;
            if self.header_seen {
                sink.row(number, &cells);
            } else {
                self.header_seen = true;
                sink.header(number, &cells);
            }
        }
        self.cells.clear();
        self.has_value = false;
    }
}

/// One spreadsheet cell as text.
fn cell(data: &Data) -> Cell<'_> {
    match data {
        Data::Empty => Cell::plain(""),
        Data::String(text) | Data::DurationIso(text) => Cell::plain(text.as_str()),
        // An ISO date-time at midnight is a date: keep `YYYY-MM-DD`.
        Data::DateTimeIso(text) => Cell::plain(text.strip_suffix("T00:00:00").unwrap_or(text)),
        Data::Int(number) => Cell::plain(number.to_string()),
        Data::Float(number) => Cell { float: true, ..Cell::plain(float_text(*number)) },
        Data::Bool(yes) => Cell::plain(if *yes { "true" } else { "false" }),
        Data::DateTime(moment) if moment.is_datetime() => {
            let (year, month, day, ..) = moment.to_ymd_hms_milli();
            Cell::plain(format!("{year:04}-{month:02}-{day:02}"))
        }
        Data::DateTime(duration) => Cell::plain(float_text(duration.as_f64())),
        Data::Error(error) => Cell {
            text: Cow::Borrowed(""),
            issue: Some(CellIssue {
                rule: "cell_error",
                message: format!("the cell holds the spreadsheet error {error}; fix the formula or type the value in"),
            }),
            float: false,
        },
    }
}

/// A number as a person would type it: whole numbers without `.0`.
fn float_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < EXACT_INTEGER {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::float_text;

    #[test]
    fn whole_numbers_lose_their_decimal_point() {
        assert_eq!(float_text(1.0), "1");
        assert_eq!(float_text(7314011503809001.0), "7314011503809001");
        assert_eq!(float_text(-3.99), "-3.99");
        assert_eq!(float_text(12.5), "12.5");
    }
}
