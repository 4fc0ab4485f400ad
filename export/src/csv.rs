//! The CSV writer: `<prefix>-households.csv`, `<prefix>-members.csv` and `<prefix>-visits.csv`,
//! with the same columns and two header rows as the XLSX sheets, written so Excel opens them
//! correctly: UTF-8 with a byte-order mark (without it Excel reads the bytes as the Windows code
//! page and `Regapu’u` turns into `Regapuâ€™u`), CRLF line ends, RFC 4180 quoting.
//!
//! Cells Excel would silently change are written as a formula that yields the text, `="…"`:
//! NIK and KK numbers always (16 digits exceed Excel's 15 significant digits, so the last digit
//! would become 0), and any text that Excel would read as a number, date or time (phone numbers
//! and RT/RW codes with leading zeros, `2024-03`) or as a formula (text starting with `=`, `+`,
//! `-`, `@`: a guard against formula injection through free-text answers). Scripts read such a
//! cell by stripping the leading `="` and the trailing `"` (and un-doubling inner quotes).
//!
//! Date-times are written `2026-12-01 21:19:56`, on the wall clock of the export's zone (the
//! area's WIB, WITA or WIT, named in the label row: `Waktu kunjungan (WITA)`): ISO 8601 with a
//! space and no offset is the form Excel and LibreOffice read as a date and time, so the column
//! sorts and filters by time. RFC 3339 (`2026-12-01T13:19:56Z`) stays text in both.
//!
//! Rows go straight through a buffered writer to the `.partial` files, so nothing accumulates.

use super::plan::{Cell, ColumnPlan, Sheet};
use super::{ExportSummary, Staged};
use anyhow::{Context, Result};
use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use sync_core::form::FormDefinition;
use sync_core::ids::LocalZone;
use sync_core::model::HouseholdState;
use time::PrimitiveDateTime;

/// The UTF-8 byte-order mark Excel needs to read a CSV file as UTF-8.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Excel keeps at most this many characters in a text constant inside a formula.
const MAX_FORMULA_TEXT: usize = 255;

/// One of the four files, being written under its `.partial` name.
struct CsvFile {
    writer: ::csv::Writer<BufWriter<File>>,
    staged: Staged,
}

/// A CSV export in progress: call [`CsvExport::write`] per household, then [`CsvExport::finish`];
/// the four files appear under their final names only at `finish`.
pub struct CsvExport {
    files: Vec<CsvFile>,
    plan: ColumnPlan,
    summary: ExportSummary,
}

impl fmt::Debug for CsvExport {
    // The writers hold answers (personal data); show only where and how far.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let targets: Vec<&Path> = self.files.iter().map(|f| f.staged.target.as_path()).collect();
        f.debug_struct("CsvExport").field("files", &targets).field("summary", &self.summary).finish()
    }
}

/// The four file paths for a prefix: `out/kab` → `out/kab-households.csv`, …; a trailing `.csv`
/// on the prefix is dropped, so `out/kab.csv` gives the same names.
pub fn csv_paths(prefix: &Path) -> Result<[PathBuf; 4]> {
    let Some(stem) = prefix.file_name().and_then(|n| n.to_str()) else {
        anyhow::bail!(
            "{} does not end in a file name; give a prefix such as out/kabupaten-7314 (the files become \
             out/kabupaten-7314-households.csv and so on)",
            prefix.display()
        );
    };
    let stem = stem.strip_suffix(".csv").unwrap_or(stem);
    Ok(Sheet::ALL.map(|sheet| prefix.with_file_name(format!("{stem}-{}.csv", sheet.name()))))
}

impl CsvExport {
    /// Start the four files for `form`, named from `prefix` (see [`csv_paths`]), with times on
    /// the wall clock of `zone` (UTC when `None`).
    pub fn create(prefix: &Path, form: &FormDefinition, zone: Option<LocalZone>) -> Result<CsvExport> {
        if prefix.is_dir() {
            anyhow::bail!(
                "{} is a directory; give a file name prefix inside it, such as {}",
                prefix.display(),
                prefix.join("export").display()
            );
        }
        let plan = ColumnPlan::new(form, zone)?;
        let mut files = Vec::with_capacity(Sheet::ALL.len());
        for (sheet, target) in Sheet::ALL.into_iter().zip(csv_paths(prefix)?) {
            let staged = Staged::new(&target)?;
            let file = File::create(&staged.partial)
                .with_context(|| format!("cannot create {}; check you may write there", staged.partial.display()))?;
            let mut out = BufWriter::with_capacity(64 * 1024, file);
            out.write_all(UTF8_BOM)?;
            let mut writer = ::csv::WriterBuilder::new()
                .terminator(::csv::Terminator::CRLF)
                .quote_style(::csv::QuoteStyle::Necessary)
                .from_writer(out);
            let columns = plan.columns(sheet);
            writer.write_record(columns.iter().map(|c| c.label.as_str()))?;
            writer.write_record(columns.iter().map(|c| c.name.as_str()))?;
            files.push(CsvFile { writer, staged });
        }
        Ok(CsvExport { files, plan, summary: ExportSummary::default() })
    }

    /// Write one household: its row, its members' rows and its visits' rows.
    pub fn write(&mut self, household: &HouseholdState) -> Result<()> {
        let CsvExport { files, plan, summary } = self;
        plan.for_each_row(household, |sheet, cells| {
            let CsvFile { writer, staged } = &mut files[sheet.index()];
            let mut write = || -> Result<(), ::csv::Error> {
                for cell in cells {
                    writer.write_field(csv_text(cell).as_bytes())?;
                }
                // An empty record ends the row of fields written one by one.
                writer.write_record(None::<&[u8]>)
            };
            write().with_context(|| format!("cannot write to {}; check free disk space", staged.partial.display()))?;
            summary.count(sheet);
            Ok(())
        })
    }

    /// Flush the four files to disk and give them their final names.
    pub fn finish(self) -> Result<ExportSummary> {
        let CsvExport { files, mut summary, .. } = self;
        let mut complete = Vec::with_capacity(files.len());
        for CsvFile { writer, staged } in files {
            let partial = staged.partial.clone();
            let cannot = || format!("cannot finish {}; check free disk space", partial.display());
            let out = writer.into_inner().map_err(|e| e.into_error()).with_context(cannot)?;
            let file = out.into_inner().map_err(|e| e.into_error()).with_context(cannot)?;
            file.sync_all().with_context(cannot)?;
            drop(file);
            complete.push(staged);
        }
        for staged in complete {
            summary.files.push(staged.commit()?);
        }
        Ok(summary)
    }

    /// Test hook: the `.partial` paths being written, to watch rows reach the disk.
    #[cfg(test)]
    pub(super) fn partial_paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.staged.partial.clone()).collect()
    }
}

/// One cell as CSV text (before RFC 4180 quoting, which the csv writer adds).
pub fn csv_text<'a>(cell: &'a Cell<'a>) -> Cow<'a, str> {
    match cell {
        Cell::Empty => Cow::Borrowed(""),
        Cell::Text(s) if excel_would_change(s) => as_excel_text(s),
        Cell::Text(s) | Cell::Date(s) => Cow::Borrowed(s),
        Cell::DateTime(at) => Cow::Owned(spreadsheet_datetime(*at)),
        Cell::Identifier(s) if s.is_empty() => Cow::Borrowed(""),
        Cell::Identifier(s) => as_excel_text(s),
        Cell::Int(i) => Cow::Owned(i.to_string()),
        Cell::Decimal(d) => Cow::Owned(d.to_string()),
        Cell::Bool(true) => Cow::Borrowed("TRUE"),
        Cell::Bool(false) => Cow::Borrowed("FALSE"),
    }
}

/// A wall-clock time as spreadsheets read a date-time typed or opened from CSV: `2026-12-01 21:19:56`.
pub fn spreadsheet_datetime(at: PrimitiveDateTime) -> String {
    let (year, month, day) = at.to_calendar_date();
    let (hour, minute, second) = at.as_hms();
    format!("{year:04}-{:02}-{day:02} {hour:02}:{minute:02}:{second:02}", u8::from(month))
}

/// Whether Excel, opening the CSV, would read this text as something else: a formula (leading
/// `=`, `+`, `-`, `@`, tab, CR), or a number, date or time (only digits and `- / . : , space`,
/// which also covers leading zeros and long digit strings).
fn excel_would_change(s: &str) -> bool {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let numeric = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'/' | b'.' | b':' | b',' | b' '));
    formula || numeric
}

/// Text Excel must keep as it is: `="…"` (a formula whose result is the text) when it fits Excel's
/// limit for text in a formula, otherwise the text behind an apostrophe so it cannot run as one.
fn as_excel_text(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= MAX_FORMULA_TEXT && !s.contains(['\n', '\r']) {
        Cow::Owned(format!("=\"{}\"", s.replace('"', "\"\"")))
    } else if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}
