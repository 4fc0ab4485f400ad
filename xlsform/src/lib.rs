//! XLSForm import and export of Pilar form definitions, as bytes in and bytes out (no files, no
//! I/O): the CLI writes and reads files with it, the server's admin page will take uploads.
//!
//! - [`write_xlsform`]: a [`FormDefinition`] → XLSX bytes with the sheets `survey`, `choices`,
//!   `settings`, and Pilar's `pilar_outcomes` and `pilar_checks`.
//! - [`read_xlsform`]: XLSX bytes → a definition that passes [`FormDefinition::check`], or an
//!   [`ImportError`] listing every problem at once, each with its sheet, row, type and column.
//! - [`expression`]: skip conditions ↔ XLSForm expressions (`${age_years} >= 5`).
//!
//! Invariant: `read_xlsform(&write_xlsform(form)?)` gives `form` back, field for field. The subset
//! read, the `pilar::` columns and the expression grammar are in `docs/forms.md` ("XLSForm").
//!
//! Code map: `layout` (sheet and column names, one home for writer and reader), `write`, `read`
//! (`read/table`: cells as text with spreadsheet row numbers; `read/survey`: questions, groups,
//! repeats), `report` (problems), `expression` (`syntax`, `condition`, `constraint`).
//!
//! [`FormDefinition`]: sync_core::form::FormDefinition
//! [`FormDefinition::check`]: sync_core::form::FormDefinition::check

pub mod expression;
mod layout;
mod read;
mod report;
mod write;

pub use read::read_xlsform;
pub use report::{ImportError, Problem};
pub use write::{ExportError, write_xlsform};
