//! Exports of household states for the kabupaten admin and kecamatan supervisor: an XLSX workbook
//! or four CSV files, written one household at a time so a 100,000-household export never sits
//! in memory. `docs/export.md` is the user-facing description of the layout.
//!
//! One implementation for every place that writes an export: `pilar export` (households paged
//! from the server) and the office web page (`pilar-server`'s `web/export.rs`, households paged
//! from the same service functions) both call [`Export`]. The crate does no I/O but writing the
//! files it is given: where households come from, and where the files go next, is the caller's.
//!
//! Code map:
//! - `plan`: the column plan derived from the form ([`ColumnPlan`]) and the typed [`Cell`]s of
//!   each row; both writers take their layout from it, so XLSX and CSV always have the same columns.
//! - `xlsx`: [`XlsxExport`], four constant-memory worksheets (households, members, visits,
//!   photos: the photo index).
//! - `csv`: [`CsvExport`], `<prefix>-households.csv`, `-members.csv`, `-visits.csv`,
//!   `-photos.csv`, for Excel
//!   (UTF-8 with BOM, CRLF, RFC 4180 quoting, identifiers kept as text).
//! - here: [`ExportFormat`] and [`Export`], so the caller picks a writer by `--format`, and the
//!   staging of output files.
//!
//! Layout decisions (the reasons are in `docs/export.md`):
//! - Two header rows on every sheet and file: row 1 the Indonesian label from the form, row 2 the
//!   stable machine name (the form's field name, or a fixed export name). Data starts on row 3.
//! - A select-one field is two columns, `<name>` (the code, a number; label `<label> (kode)`) and
//!   `<name>_label` (its label). A multi-select field is the same pair with codes and labels
//!   joined by `"; "`.
//! - Times are on the wall clock of the area's zone (WIB, WITA or WIT by province), named in the
//!   label of every time column (`Waktu kunjungan (WITA)`); stored times stay UTC.
//! - NIK and KK numbers are always text; in CSV they (and other digit strings Excel would change)
//!   are written as `="…"` so Excel shows every digit.
//!
//! Invariant: an output file under its final name is complete. Writers write to `<name>.partial`
//! and rename at [`Export::finish`]; an export dropped before `finish` removes its partial files.

mod csv;
mod plan;
mod xlsx;

pub use self::csv::CsvExport;
pub use plan::Sheet;
pub use xlsx::XlsxExport;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use sync_core::form::{FormDefinition, split_key};
use sync_core::ids::LocalZone;
use sync_core::model::{HouseholdId, HouseholdState};
use sync_core::photo::{Mime, PhotoId, PhotoKind};
use sync_core::protocol::FormsView;

/// The file format of an export, as chosen with `--format` (feature `clap`) or the web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ExportFormat {
    /// One workbook with the sheets households, members, visits and photos.
    Xlsx,
    /// Four CSV files `<prefix>-households.csv`, `-members.csv`, `-visits.csv`, `-photos.csv`.
    Csv,
}

/// The key (`id@version`) of the form an export is laid out for: the newest published version of
/// the form new visits use everywhere (the global default), from the catalog `GET /v1/forms`
/// answers. A version never removes a field, so its columns hold the answers of every earlier
/// version, labelled from the newest (docs/forms.md). `None` when nothing of that form is
/// published: the export uses [`FormDefinition::default_dtsen`].
pub fn export_form_key(catalog: &FormsView) -> Option<String> {
    let global = catalog.defaults.iter().find(|d| d.kabupaten.is_empty()).map(|d| d.form.as_str());
    let id = global.and_then(split_key).map_or_else(|| FormDefinition::default_dtsen().id.as_str(), |(id, _)| id);
    catalog
        .versions
        .iter()
        .filter_map(|v| split_key(&v.key).filter(|(form_id, _)| *form_id == id).map(|(_, version)| (version, &v.key)))
        .max()
        .map(|(_, key)| key.clone())
}

/// The file name of one photo in `pilar photo export`'s folder; the photo sheet of an export
/// names the same file, so a row leads to its file.
pub fn photo_file_name(household: HouseholdId, kind: &str, photo: &PhotoId, mime: Mime) -> String {
    let kind = PhotoKind::parse(kind).map(|k| k.as_str()).unwrap_or("other");
    format!("{household}-{kind}-{}.{}", &photo.as_str()[..16], mime.extension())
}

/// What an export wrote, for the closing message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportSummary {
    /// Households written (rows of the households sheet).
    pub households: u64,
    /// Members written, removed members included.
    pub members: u64,
    /// Visits written.
    pub visits: u64,
    /// Photo references written (rows of the photos sheet).
    pub photos: u64,
    /// The complete files, under their final names.
    pub files: Vec<PathBuf>,
}

impl ExportSummary {
    fn count(&mut self, sheet: Sheet) {
        match sheet {
            Sheet::Households => self.households += 1,
            Sheet::Members => self.members += 1,
            Sheet::Visits => self.visits += 1,
            Sheet::Photos => self.photos += 1,
        }
    }
}

/// An export in progress in either format: the caller picks one with [`ExportFormat`].
#[derive(Debug)]
pub enum Export {
    /// An XLSX workbook (boxed: rust_xlsxwriter's workbook is large).
    Xlsx(Box<XlsxExport>),
    /// Four CSV files (boxed too: four writers with their buffers' bookkeeping).
    Csv(Box<CsvExport>),
}

impl Export {
    /// Start an export: `output` is the `.xlsx` path, or for CSV the prefix of the four files;
    /// times are shown on the wall clock of `zone`, the area's (UTC when `None`).
    pub fn create(
        format: ExportFormat,
        output: &Path,
        form: &FormDefinition,
        zone: Option<LocalZone>,
    ) -> Result<Export> {
        Ok(match format {
            ExportFormat::Xlsx => Export::Xlsx(Box::new(XlsxExport::create(output, form, zone)?)),
            ExportFormat::Csv => Export::Csv(Box::new(CsvExport::create(output, form, zone)?)),
        })
    }

    /// Write one household: its row, one row per member, one row per visit, one row per photo.
    pub fn write(&mut self, household: &HouseholdState) -> Result<()> {
        match self {
            Export::Xlsx(x) => x.write(household),
            Export::Csv(c) => c.write(household),
        }
    }

    /// Complete the files and give them their final names.
    pub fn finish(self) -> Result<ExportSummary> {
        match self {
            Export::Xlsx(x) => (*x).finish(),
            Export::Csv(c) => (*c).finish(),
        }
    }
}

/// An output file written under `<name>.partial` and renamed to `<name>` only when complete; the
/// partial file is removed if the export is abandoned (dropped) first.
#[derive(Debug)]
struct Staged {
    partial: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    /// Staging for `target`, after checking its directory exists and `target` is not a directory.
    fn new(target: &Path) -> Result<Staged> {
        let directory = output_directory(target)?;
        if target.is_dir() {
            bail!("{} is a directory; give the export a file name inside it", target.display());
        }
        let Some(name) = target.file_name() else {
            bail!("{} has no file name; give the export a file name", target.display());
        };
        let mut partial_name = name.to_os_string();
        partial_name.push(".partial");
        Ok(Staged { partial: directory.join(partial_name), target: target.to_path_buf(), committed: false })
    }

    /// Give the complete file its final name (replacing an older export of the same name).
    fn commit(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.partial, &self.target).with_context(|| {
            format!(
                "cannot rename {} to {}; if the file is open in Excel, close it and export again",
                self.partial.display(),
                self.target.display()
            )
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the partial file may never have been created.
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// The directory an output path lives in, which must exist (the export does not create folders).
fn output_directory(target: &Path) -> Result<PathBuf> {
    let directory = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !directory.is_dir() {
        bail!(
            "the output directory {} does not exist; create it first or choose another output path",
            directory.display()
        );
    }
    Ok(directory)
}

#[cfg(test)]
mod tests;
