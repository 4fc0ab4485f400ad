//! Spreadsheet (XLSX, and the other formats calamine reads: XLS, XLSB, ODS) → cells, row by row.
//!
//! The first row of the sheet's used area is the header; rows keep the numbers the spreadsheet
//! shows. Numbers that are whole are read without a decimal point (`1.0` → `1`), date cells as
//! `YYYY-MM-DD`, and error cells (`#N/A`) become a `cell_error` problem. A 16-digit identifier
//! stored as a number is flagged by the assembler: spreadsheets keep only 15 digits of a number.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result, bail};
use calamine::{Data, Reader, open_workbook_auto};
use sync_core::form::FormDefinition;
use sync_core::roster::RosterProblem;

use super::RosterOptions;
use super::assemble::{Assembler, Cell, CellIssue};

/// Largest integer an f64 holds exactly (2^53); bigger whole numbers are printed as floats.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Reads the chosen sheet (the first one unless `options.sheet` names another). The outer error
/// is for files that cannot be opened at all; `Err` inside is a problem with the sheet as a whole.
pub(super) fn read<'f>(
    form: &'f FormDefinition,
    path: &Path,
    options: &RosterOptions,
) -> Result<Result<Assembler<'f>, RosterProblem>> {
    let mut workbook = open_workbook_auto(path).with_context(|| {
        format!(
            "could not open {} as a spreadsheet; check that it is an .xlsx file, or save it as CSV UTF-8",
            path.display()
        )
    })?;
    let sheets = workbook.sheet_names();
    let sheet = match &options.sheet {
        Some(name) if sheets.contains(name) => name.clone(),
        Some(name) => bail!("{} has no sheet named {name:?}; its sheets are: {}", path.display(), sheets.join(", ")),
        None => match sheets.first() {
            Some(first) => first.clone(),
            None => bail!("{} has no sheets; put the roster on the first sheet", path.display()),
        },
    };
    let range = workbook.worksheet_range(&sheet).with_context(|| {
        format!("could not read sheet {sheet:?} of {}; open and save it again in a spreadsheet", path.display())
    })?;
    let Some((first_row, _)) = range.start() else {
        return Ok(Err(RosterProblem::reject(
            1,
            "",
            "",
            "empty_file",
            format!(
                "sheet {sheet:?} is empty; its first row must hold the column headers, then one row per household \
                 or person"
            ),
        )));
    };
    let mut rows = range.rows();
    let header_row = first_row as usize + 1;
    let headers: Vec<Cell<'_>> = rows.next().map(|cells| cells.iter().map(cell).collect()).unwrap_or_default();
    let mut assembler = Assembler::new(form, options, header_row, &headers);
    for (offset, cells) in rows.enumerate() {
        let cells: Vec<Cell<'_>> = cells.iter().map(cell).collect();
        assembler.push_row(header_row + 1 + offset, &cells);
    }
    Ok(Ok(assembler))
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
