//! The XLSX writer: one workbook with the sheets `households`, `members` and `visits`, each in
//! rust_xlsxwriter's constant-memory mode.
//!
//! Every sheet is set up for printing in an office: landscape A4, scaled to one page wide (as many
//! pages down as the rows need), the two header rows repeated at the top of every printed page,
//! gridlines, the sheet name and page number in the footer. Columns are as wide as their content
//! (within a bound) and never narrower than their header needs; the label row is as tall as its
//! longest wrapped label.
//!
//! Constant-memory worksheets flush a row to their temporary file as soon as a later row is
//! written, so memory stays flat however many households arrive; the price is that rows must be
//! written in order and a written row can never be changed (rust_xlsxwriter ignores such writes).
//! Everything that is not cell data (widths, frozen panes, autofilter) is sheet metadata and may be
//! set at any time. The temporary files live in the output directory, not in `/tmp`, which may be
//! in memory and is often small; they are anonymous and vanish with the process.

use super::plan::{Cell, ColumnPlan, Sheet};
use super::{ExportSummary, Staged, output_directory};
use anyhow::{Context, Result, bail};
use rust_xlsxwriter::{
    Color, ExcelDateTime, Format, FormatAlign, FormatBorder, IgnoreError, Workbook, Worksheet, XlsxError,
};
use std::fmt;
use std::path::{Path, PathBuf};
use sync_core::form::FormDefinition;
use sync_core::ids::LocalZone;
use sync_core::model::HouseholdState;
use time::PrimitiveDateTime;

/// Excel's row limit per sheet.
const MAX_ROWS: u32 = 1_048_576;
/// Excel's cell text limit, in characters.
const MAX_CELL_CHARS: usize = 32_767;
/// Rows above the data: Indonesian labels, then machine names.
const HEADER_ROWS: u32 = 2;
/// The widest a column grows to fit its content, in Excel's character units; a longer value is
/// cut off on screen and on paper (the cell keeps it whole).
const MAX_CONTENT_WIDTH: usize = 50;
/// The height of one line of Excel's default 11-point font, in points.
const LINE_POINTS: f64 = 15.0;
/// Excel's paper size code for A4.
const PAPER_A4: u8 = 9;

/// Cell formats shared by the four sheets.
struct Formats {
    label: Format,
    name: Format,
    text: Format,
    date: Format,
    datetime: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            label: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Top)
                .set_background_color(Color::RGB(0xDDEBF7))
                .set_border_bottom(FormatBorder::Thin),
            // Wrapped too, should a name ever be wider than the widest column.
            name: Format::new().set_italic().set_text_wrap().set_font_color(Color::RGB(0x595959)),
            // "@" keeps an identifier text when someone edits the cell in Excel.
            text: Format::new().set_num_format("@"),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        }
    }
}

/// An XLSX export in progress: call [`XlsxExport::write`] per household, then
/// [`XlsxExport::finish`]; nothing appears under the final name before `finish`.
pub struct XlsxExport {
    workbook: Workbook,
    plan: ColumnPlan,
    formats: Formats,
    /// The next row to write on each sheet, in [`Sheet::ALL`] order.
    next_row: [u32; 4],
    /// The widest content written so far in each column of each sheet, in characters.
    content_chars: [Vec<usize>; 4],
    target: PathBuf,
    summary: ExportSummary,
}

impl fmt::Debug for XlsxExport {
    // The workbook holds answers (personal data); show only where and how far.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XlsxExport").field("target", &self.target).field("summary", &self.summary).finish()
    }
}

impl XlsxExport {
    /// Start a workbook for `form` at `path`, times on the wall clock of `zone` (UTC when `None`);
    /// fails early when the directory is missing or not writable.
    pub fn create(path: &Path, form: &FormDefinition, zone: Option<LocalZone>) -> Result<XlsxExport> {
        let directory = output_directory(path)?;
        // Check the name now rather than after a long download.
        drop(Staged::new(path)?);
        let plan = ColumnPlan::new(form, zone)?;
        let mut workbook = Workbook::new();
        workbook.set_tempdir(&directory).with_context(|| {
            format!(
                "cannot write temporary files in {}; choose an output directory you can write to",
                directory.display()
            )
        })?;
        let formats = Formats::new();
        for sheet in Sheet::ALL {
            let worksheet = workbook.add_worksheet_with_constant_memory().context("cannot start a worksheet")?;
            worksheet.set_name(sheet.name())?;
            write_header(worksheet, &plan, sheet, &formats)?;
        }
        let content_chars = Sheet::ALL.map(|sheet| vec![0; plan.columns(sheet).len()]);
        Ok(XlsxExport {
            workbook,
            plan,
            formats,
            next_row: [HEADER_ROWS; 4],
            content_chars,
            target: path.to_path_buf(),
            summary: ExportSummary::default(),
        })
    }

    /// Write one household: its row, its members' rows and its visits' rows, each flushed to disk
    /// once the next row of its sheet starts.
    pub fn write(&mut self, household: &HouseholdState) -> Result<()> {
        let XlsxExport { workbook, plan, formats, next_row, content_chars, summary, .. } = self;
        plan.for_each_row(household, |sheet, cells| {
            let index = sheet.index();
            let row = next_row[index];
            if row >= MAX_ROWS {
                bail!(
                    "the {} sheet is full (Excel holds at most 1,048,576 rows); export fewer villages per \
                     file or use --format csv",
                    sheet.name()
                );
            }
            let worksheet = workbook.worksheet_from_index(index)?;
            write_row(worksheet, row, cells, formats)
                .with_context(|| format!("cannot write row {} of the {} sheet", row + 1, sheet.name()))?;
            next_row[index] = row + 1;
            for (widest, cell) in content_chars[index].iter_mut().zip(cells) {
                *widest = (*widest).max(shown_chars(cell));
            }
            summary.count(sheet);
            Ok(())
        })
    }

    /// Widen the columns to their content, add the autofilters over the written rows, save the
    /// workbook and give it its final name.
    pub fn finish(mut self) -> Result<ExportSummary> {
        for sheet in Sheet::ALL {
            let index = sheet.index();
            let worksheet = self.workbook.worksheet_from_index(index)?;
            for (col, (column, widest)) in self.plan.columns(sheet).iter().zip(&self.content_chars[index]).enumerate() {
                let content = (widest + 2).min(MAX_CONTENT_WIDTH) as f64;
                worksheet.set_column_width(col as u16, column.width.max(content))?;
            }
            let last_col = self.plan.columns(sheet).len().saturating_sub(1) as u16;
            // The filter sits on the machine-name row, so sorting never moves the labels above it.
            let last_row = self.next_row[index].saturating_sub(1).max(HEADER_ROWS - 1);
            self.workbook.worksheet_from_index(index)?.autofilter(HEADER_ROWS - 1, 0, last_row, last_col)?;
        }
        let staged = Staged::new(&self.target)?;
        self.workbook
            .save(&staged.partial)
            .with_context(|| format!("cannot save {}; check free disk space", staged.partial.display()))?;
        let mut summary = self.summary;
        summary.files.push(staged.commit()?);
        Ok(summary)
    }

    /// Test hook: write text into an earlier row, which constant-memory mode must refuse to keep.
    #[cfg(test)]
    pub(super) fn write_text_for_test(&mut self, sheet: Sheet, row: u32, col: u16, text: &str) -> Result<()> {
        self.workbook.worksheet_from_index(sheet.index())?.write_string(row, col, text)?;
        Ok(())
    }
}

/// The two header rows with the heights their wrapped text needs, the header widths, frozen
/// headers, the page setup for printing and the ignored "number stored as text" warning
/// (identifiers are text on purpose).
fn write_header(worksheet: &mut Worksheet, plan: &ColumnPlan, sheet: Sheet, formats: &Formats) -> Result<()> {
    let columns = plan.columns(sheet);
    // Heights first: constant-memory mode writes a row out (height included) once the next row
    // starts. Content only widens a column (at finish), so these heights stay sufficient.
    let lines = |text: fn(&super::plan::Column) -> &str| {
        columns.iter().map(|c| wrapped_lines(text(c), c.width)).max().unwrap_or(1)
    };
    worksheet.set_row_height(0, header_height(lines(|c| &c.label)))?;
    let name_lines = lines(|c| &c.name);
    if name_lines > 1 {
        worksheet.set_row_height(1, header_height(name_lines))?;
    }
    for (col, column) in columns.iter().enumerate() {
        let col = col as u16;
        worksheet.set_column_width(col, column.width)?;
        worksheet.write_string_with_format(0, col, &column.label, &formats.label)?;
    }
    for (col, column) in columns.iter().enumerate() {
        worksheet.write_string_with_format(1, col as u16, &column.name, &formats.name)?;
    }
    worksheet.set_freeze_panes(HEADER_ROWS, 0)?;
    worksheet.set_landscape();
    worksheet.set_paper_size(PAPER_A4);
    // One page wide, as many pages down as needed (0: no limit).
    worksheet.set_print_fit_to_pages(1, 0);
    worksheet.set_repeat_rows(0, HEADER_ROWS - 1)?;
    worksheet.set_print_gridlines(true);
    worksheet.set_footer("&L&A&RHalaman &P dari &N");
    let last_col = columns.len().saturating_sub(1) as u16;
    worksheet.ignore_error_range(HEADER_ROWS, 0, MAX_ROWS - 1, last_col, IgnoreError::NumberStoredAsText)?;
    Ok(())
}

fn write_row(worksheet: &mut Worksheet, row: u32, cells: &[Cell<'_>], formats: &Formats) -> Result<(), XlsxError> {
    for (col, cell) in cells.iter().enumerate() {
        let col = col as u16;
        match cell {
            Cell::Empty => {}
            Cell::Text(s) => {
                worksheet.write_string(row, col, excel_text(s))?;
            }
            Cell::Identifier(s) => {
                worksheet.write_string_with_format(row, col, excel_text(s), &formats.text)?;
            }
            Cell::Int(i) => {
                worksheet.write_number(row, col, *i as f64)?;
            }
            Cell::Decimal(d) if d.is_finite() => {
                worksheet.write_number(row, col, *d)?;
            }
            Cell::Decimal(d) => {
                worksheet.write_string(row, col, d.to_string())?;
            }
            Cell::Date(s) => match excel_date(s) {
                Some(date) => {
                    worksheet.write_datetime_with_format(row, col, date, &formats.date)?;
                }
                // Unknown parts (`1980-98-98`) are not a date Excel can hold: keep the text.
                None => {
                    worksheet.write_string(row, col, excel_text(s))?;
                }
            },
            Cell::DateTime(at) => match excel_datetime(*at) {
                Some(at) => {
                    worksheet.write_datetime_with_format(row, col, at, &formats.datetime)?;
                }
                None => {
                    worksheet.write_string(row, col, super::csv::spreadsheet_datetime(*at))?;
                }
            },
            Cell::Bool(b) => {
                worksheet.write_boolean(row, col, *b)?;
            }
        }
    }
    Ok(())
}

/// Text cut to Excel's 32,767-character cell limit (only a pathological note gets there).
fn excel_text(s: &str) -> &str {
    match s.char_indices().nth(MAX_CELL_CHARS) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// A stored `YYYY-MM-DD` as an Excel date; `None` for unknown parts or anything else.
fn excel_date(s: &str) -> Option<ExcelDateTime> {
    let bytes = s.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: u16 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    time::Date::from_calendar_date(i32::from(year), time::Month::try_from(month).ok()?, day).ok()?;
    ExcelDateTime::from_ymd(year, month, day).ok()
}

/// A wall-clock time as an Excel date-time (Excel has no time zones: the column's label names it).
fn excel_datetime(at: PrimitiveDateTime) -> Option<ExcelDateTime> {
    let year = u16::try_from(at.year()).ok()?;
    ExcelDateTime::from_ymd(year, u8::from(at.month()), at.day())
        .ok()?
        .and_hms(u16::from(at.hour()), at.minute(), f64::from(at.second()))
        .ok()
}

/// How many characters a cell shows, for fitting its column's width.
fn shown_chars(cell: &Cell<'_>) -> usize {
    match cell {
        Cell::Empty => 0,
        Cell::Text(s) | Cell::Identifier(s) => s.lines().map(|l| l.chars().count()).max().unwrap_or(0),
        Cell::Int(i) => i.to_string().len(),
        // Excel's General format shows at most about 11 characters of a decimal.
        Cell::Decimal(d) => d.to_string().len().min(11),
        Cell::Date(s) => s.chars().count(),
        Cell::DateTime(_) => "yyyy-mm-dd hh:mm:ss".len(),
        Cell::Bool(_) => "FALSE".len(),
    }
}

/// The lines `text` takes when wrapped at spaces in a column `width` characters wide; a word
/// longer than a line is broken across lines, as Excel does. A line counts as two characters
/// narrower than the column: bold text and the cell's padding take room.
fn wrapped_lines(text: &str, width: f64) -> usize {
    let per_line = (width as usize).saturating_sub(2).max(1);
    let mut lines = 1;
    let mut used = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if used > 0 && used + 1 + len <= per_line {
            used += 1 + len;
            continue;
        }
        if used > 0 {
            lines += 1;
        }
        let extra = (len.max(1) - 1) / per_line;
        lines += extra;
        used = len - extra * per_line;
    }
    lines
}

/// The height in points of a header row whose tallest cell has `lines` lines.
fn header_height(lines: usize) -> f64 {
    lines as f64 * LINE_POINTS + 3.0
}

#[cfg(test)]
mod tests {
    use super::wrapped_lines;

    #[test]
    fn labels_wrap_at_spaces_and_long_words_break() {
        assert_eq!(wrapped_lines("Kode Kabupaten/Kota", 18.0), 2);
        assert_eq!(wrapped_lines("Kode Kabupaten/Kota", 12.0), 3);
        assert_eq!(wrapped_lines("Kode Kabupaten/Kota", 30.0), 1);
        assert_eq!(wrapped_lines("Jenis lantai terluas (kode)", 10.0), 4);
        assert_eq!(wrapped_lines("last_visit_outcome_label", 10.0), 3);
        assert_eq!(wrapped_lines("", 10.0), 1);
    }
}
