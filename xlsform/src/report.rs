//! What the reader reports when a workbook cannot become a form definition: every problem at once,
//! each naming its sheet, row (as the spreadsheet shows it), the row's type and column.

use std::fmt;

/// One thing in the workbook Pilar cannot use, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The sheet, e.g. `survey`.
    pub sheet: String,
    /// The row as a spreadsheet numbers it (the header is row 1); `None` for the sheet as a whole.
    pub row: Option<u32>,
    /// The row's `type` cell (survey rows), e.g. `geotrace`.
    pub row_type: Option<String>,
    /// The column the problem is in, e.g. `relevant`.
    pub column: Option<String>,
    /// What is wrong and what to do, lowercase.
    pub message: String,
}

/// Reads as `survey row 14, type `geotrace`: not supported by Pilar; remove the row or use geopoint`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sheet)?;
        if let Some(row) = self.row {
            write!(f, " row {row}")?;
        }
        if let Some(row_type) = &self.row_type {
            write!(f, ", type `{row_type}`")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a workbook could not be read as a form definition.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not a spreadsheet calamine can open.
    #[error("the file is not a readable spreadsheet ({0}); save it as .xlsx (Excel 2007 or later) and try again")]
    Unreadable(String),
    /// The workbook opened, but rows cannot be expressed in Pilar; every problem is listed.
    #[error("{}", list(.0))]
    Problems(Vec<Problem>),
}

impl ImportError {
    /// Every problem found (empty for an unreadable file).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ImportError::Unreadable(_) => &[],
            ImportError::Problems(problems) => problems,
        }
    }
}

fn list(problems: &[Problem]) -> String {
    let mut text = match problems.len() {
        1 => "the XLSForm has 1 problem Pilar cannot import; fix it and import again:".to_owned(),
        n => format!("the XLSForm has {n} problems Pilar cannot import; fix them and import again:"),
    };
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}
