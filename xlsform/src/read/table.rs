//! Workbook bytes → sheets of text cells, with the row numbers a spreadsheet shows.
//!
//! The first row of a sheet is its header; headers are compared trimmed and in lowercase. Whole
//! numbers read without a decimal point (`1.0` → `1`, LibreOffice stores a typed 1 as a number),
//! booleans as `true`/`false`.

use std::io::Cursor;

use calamine::{Data, Reader, open_workbook_auto_from_rs};

use crate::report::ImportError;

/// One sheet: its header and its non-empty rows.
pub(crate) struct Table {
    /// The sheet's name as the workbook spells it.
    pub name: String,
    headers: Vec<String>,
    /// The rows below the header that have at least one value.
    pub rows: Vec<Row>,
}

/// One row of text cells.
pub(crate) struct Row {
    /// The row number a spreadsheet shows (the header is row 1).
    pub number: u32,
    cells: Vec<String>,
}

impl Row {
    /// The trimmed text of a column, empty when the sheet lacks the column.
    pub fn get(&self, column: Option<usize>) -> &str {
        column.and_then(|c| self.cells.get(c)).map(|s| s.trim()).unwrap_or_default()
    }
}

impl Table {
    /// The index of a column by its header (trimmed, case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// The headers, trimmed and in lowercase.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The Indonesian column of a translatable column (`label`, `hint`): plain `label`, or
    /// `label::` followed by Bahasa Indonesia, Indonesian or the code `id`. `Err` names the other
    /// languages when the sheet has only those.
    pub fn indonesian_column(&self, base: &str) -> Result<Option<usize>, Vec<String>> {
        if let Some(plain) = self.column(base) {
            return Ok(Some(plain));
        }
        let prefix = format!("{base}::");
        let mut others = Vec::new();
        for (i, header) in self.headers.iter().enumerate() {
            let Some(language) = header.strip_prefix(&prefix) else { continue };
            let language = language.trim();
            if language == "id"
                || language.ends_with("(id)")
                || language.starts_with("bahasa indonesia")
                || language.starts_with("indonesian")
                || language == "bahasa"
            {
                return Ok(Some(i));
            }
            others.push(header.clone());
        }
        if others.is_empty() { Ok(None) } else { Err(others) }
    }
}

/// Every sheet of the workbook.
pub(crate) fn read_tables(bytes: &[u8]) -> Result<Vec<Table>, ImportError> {
    let mut workbook =
        open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| ImportError::Unreadable(e.to_string()))?;
    let mut tables = Vec::new();
    for name in workbook.sheet_names() {
        let range =
            workbook.worksheet_range(&name).map_err(|e| ImportError::Unreadable(format!("sheet {name}: {e}")))?;
        let (first_row, first_column) = range.start().unwrap_or_default();
        let mut rows = range.rows().enumerate().map(|(i, cells)| {
            // Columns left of the range's first used column are empty; keep indices absolute.
            let mut text = vec![String::new(); first_column as usize];
            text.extend(cells.iter().map(cell_text));
            Row { number: first_row + i as u32 + 1, cells: text }
        });
        // The header is row 1; a sheet whose first row is empty has none.
        let headers = match rows.next() {
            Some(header) if header.number == 1 => header.cells.iter().map(|h| h.trim().to_lowercase()).collect(),
            _ => Vec::new(),
        };
        let rows = rows.filter(|row| row.cells.iter().any(|t| !t.trim().is_empty())).collect();
        tables.push(Table { name, headers, rows });
    }
    Ok(tables)
}

/// Largest integer an f64 holds exactly (2^53).
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < EXACT_INTEGER => format!("{}", *f as i64),
        Data::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}
