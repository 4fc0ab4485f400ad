//! `GET /export`: a kecamatan's or kabupaten's households as the files `pilar export` writes, for
//! a browser: one XLSX workbook, or the four CSV files in one ZIP.
//!
//! One implementation of everything but the delivery: the query is read with the API's
//! `routes::export::export_area_and_filter`, scope is `Service::may_export`, households come page
//! by page from `Service::export_page` (the service function `GET /v1/export` answers with), and
//! the files are written by `pilar-export`, laid out for the form `pilar export` picks
//! (`pilar_export::export_form_key`), on the area's clock. So the page's workbook and the CLI's
//! are the same, cell for cell.
//!
//! The files are written into a fresh temporary directory (the system's, mode 0700), one page at a
//! time on the blocking pool, each page a blocking turn of its own so a kabupaten export does not
//! hold one for minutes; memory holds one page of households and the XLSX writer's
//! constant-memory rows, never the area. The finished file is opened, then the directory is
//! removed: on Linux the open file stays readable and nothing of it is left on disk when the
//! download ends, is cut, or the server stops. The open file is then sent in 64 KiB blocks with
//! its `Content-Length`, each read on the blocking pool.

use super::layout::WebError;
use super::session::WebUser;
use crate::error::ApiError;
use crate::routes::export::export_area_and_filter;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pilar_export::{Export, ExportFormat};
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use sync_core::form::FormDefinition;
use sync_core::ids::LocalZone;
use sync_core::protocol::EXPORT_PAGE;

/// Bytes sent per block of a download.
const DOWNLOAD_BLOCK_BYTES: usize = 64 * 1024;

/// Query of `GET /export`: the filters of `pilar export` (`--area`, `--approved`, `--from`,
/// `--to`, `--format`). Empty fields are what a GET form sends for a field left blank.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// Kecamatan (`73.14.01`) or kabupaten (`73.14`) code.
    #[serde(default)]
    area: String,
    /// `xlsx` (the default) or `csv`.
    #[serde(default)]
    format: String,
    /// Only households approved now: any value but empty (a checked checkbox sends `1`).
    #[serde(default)]
    approved: String,
    /// Visited on or after (`YYYY-MM-DD`).
    #[serde(default)]
    from: String,
    /// Visited on or before (`YYYY-MM-DD`).
    #[serde(default)]
    to: String,
}

fn given(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// `GET /export?area=…&format=xlsx|csv&approved=1&from=…&to=…`: the download, or an error page
/// (403 for an area not the caller's, as the API).
pub async fn export(State(state): State<AppState>, user: WebUser, Query(q): Query<ExportQuery>) -> Response {
    match download(&state, &user, q).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn download(state: &AppState, user: &WebUser, q: ExportQuery) -> Result<Response, WebError> {
    let format = match q.format.trim() {
        "" | "xlsx" => ExportFormat::Xlsx,
        "csv" => ExportFormat::Csv,
        other => {
            return Err(WebError::for_user(
                user,
                StatusCode::BAD_REQUEST,
                format!("format {other:?} is not xlsx or csv; choose one of them"),
            ));
        }
    };
    let (area, filter) =
        export_area_and_filter(q.area.trim(), given(&q.approved).is_some(), given(&q.from), given(&q.to))
            .map_err(|e| WebError::from_api(user, &e))?;
    // An area is one kecamatan or kabupaten, so one province and one zone for the whole file;
    // the date in the file name is the area's too.
    let zone = LocalZone::of_region_text(&area);
    let today = zone.map_or(state.clock.now(), |z| z.local(state.clock.now())).date();
    let stem = format!("pilar-{area}-{today}");

    // Scope and form first: a refused area creates no file.
    let caller = user.caller.clone();
    let scoped_area = area.clone();
    let form = state
        .blocking(move |service| {
            service.may_export(&caller, &scoped_area)?;
            let form = match pilar_export::export_form_key(&service.forms_view()?) {
                Some(key) => service.form_definition(&key)?,
                None => None,
            };
            Ok(form.unwrap_or_else(|| Arc::new(FormDefinition::default_dtsen().clone())))
        })
        .await
        .map_err(|e| WebError::from_api(user, &e))?;

    let temp = tempfile::Builder::new()
        .prefix("pilar-export-")
        .tempdir()
        .map_err(|e| internal(user, anyhow::Error::new(e).context("cannot create a temporary directory")))?;
    let dir = temp.path().to_path_buf();
    let output = match format {
        ExportFormat::Xlsx => dir.join(format!("{stem}.xlsx")),
        ExportFormat::Csv => dir.join(&stem),
    };
    let (created_form, created_output) = (Arc::clone(&form), output.clone());
    let mut export = state
        .blocking(move |_| Export::create(format, &created_output, &created_form, zone).map_err(ApiError::internal))
        .await
        .map_err(|e| WebError::from_api(user, &e))?;

    let mut after = None;
    loop {
        let (area, filter) = (area.clone(), filter.clone());
        let written = state
            .blocking(move |service| {
                let page = service.export_page(&area, after, EXPORT_PAGE, &filter)?;
                for household in &page.households {
                    export.write(household).map_err(ApiError::internal)?;
                }
                Ok((export, page.next_after))
            })
            .await
            .map_err(|e| WebError::from_api(user, &e))?;
        export = written.0;
        after = written.1;
        if after.is_none() {
            break;
        }
    }

    let zip_path = dir.join(format!("{stem}-csv.zip"));
    let (file, name, content_type) = state
        .blocking(move |_| {
            let summary = export.finish().map_err(ApiError::internal)?;
            let (path, name, content_type) = match format {
                ExportFormat::Xlsx => (
                    output,
                    format!("{stem}.xlsx"),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                ExportFormat::Csv => {
                    zip_files(&summary.files, &zip_path).map_err(ApiError::internal)?;
                    (zip_path, format!("{stem}-csv.zip"), "application/zip")
                }
            };
            let file = std::fs::File::open(&path)
                .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("cannot open the written export")))?;
            // Unlinked while open: the download reads the open file, and nothing is left on disk
            // after it, however it ends.
            temp.close()
                .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("cannot remove the export's files")))?;
            Ok((file, name, content_type))
        })
        .await
        .map_err(|e| WebError::from_api(user, &e))?;
    let size = file.metadata().map_err(|e| internal(user, e.into()))?.len();
    tracing::info!(user = user.session.user, file = %name, bytes = size, "web export");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        Body::from_stream(blocks(state.clone(), file, size)),
    )
        .into_response())
}

fn internal(user: &WebUser, e: anyhow::Error) -> WebError {
    WebError::from_api(user, &ApiError::internal(e))
}

/// The open file's bytes, a block at a time, each read on the blocking pool.
fn blocks(
    state: AppState,
    file: std::fs::File,
    size: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some((file, 0u64)), move |next| {
        let state = state.clone();
        async move {
            let (mut file, sent) = next?;
            if sent >= size {
                return None;
            }
            let read = state
                .blocking(move |_| {
                    let mut block = vec![0u8; DOWNLOAD_BLOCK_BYTES];
                    let n = file.read(&mut block).map_err(ApiError::internal)?;
                    block.truncate(n);
                    Ok((file, block))
                })
                .await;
            Some(match read {
                Ok((file, block)) if !block.is_empty() => {
                    let sent = sent + block.len() as u64;
                    (Ok(Bytes::from(block)), Some((file, sent)))
                }
                // Ending the body before the length it announced tells the browser the download
                // broke off; the server logs why.
                Ok(_) => {
                    tracing::error!(sent, size, "web export: the file ended early");
                    (Err(std::io::Error::other("the export file ended early")), None)
                }
                Err(e) => {
                    tracing::error!(sent, size, error = ?e, "web export: reading the file failed");
                    (Err(std::io::Error::other("reading the export file failed")), None)
                }
            })
        }
    })
}

/// The CSV files of an export in one ZIP at `target`, each under its own name (deflated: CSV
/// shrinks to a fifth or less).
fn zip_files(files: &[std::path::PathBuf], target: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let out = std::fs::File::create(target).with_context(|| format!("cannot create {}", target.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(out));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).context("an export file without a name")?;
        zip.start_file(name, options)?;
        let mut input = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        std::io::copy(&mut input, &mut zip).with_context(|| format!("cannot zip {}", file.display()))?;
    }
    zip.finish()?.flush()?;
    Ok(())
}
