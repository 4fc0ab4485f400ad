//! Roster import from the office web page (admins): upload a CSV or XLSX, see every problem row by
//! row (the same reader and checks as `pilar roster import`, crate `pilar-roster`), and commit a
//! clean roster as `pilar` does: staged in chunks, applied in one transaction
//! (`Service::roster_stage`, `Service::roster_commit`). A roster with errors stages nothing.

use super::layout::{Lang, WebError, html_page, page};
use super::session::{WebUser, admin_only, check_admin_form, check_form};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use pilar_roster::{Layout, RosterFile, RosterOptions, read_roster};
use serde::Deserialize;
use std::io::Write as _;
use sync_core::finding::Severity;
use sync_core::form::FormDefinition;
use sync_core::model::Editor;
use sync_core::protocol::CHUNK_HOUSEHOLDS;

fn upload_form(lang: Lang, user: &WebUser) -> Markup {
    html! {
        form.filters method="post" action="/admin/roster" enctype="multipart/form-data" id="roster-upload" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            label { (lang.t("Berkas daftar (CSV atau XLSX)", "Roster file (CSV or XLSX)")) " "
                input type="file" name="file" id="roster-file" accept=".csv,.xlsx" required; }
            label { (lang.t("Susunan baris", "Row layout")) " "
                select name="layout" {
                    option value="auto" { (lang.t("otomatis", "automatic")) }
                    option value="per-household" { (lang.t("satu baris per rumah tangga", "one row per household")) }
                    option value="per-person" { (lang.t("satu baris per orang", "one row per person")) }
                }
            }
            button.primary type="submit" id="check-roster" { (lang.t("Periksa", "Check")) }
        }
    }
}

/// `GET /admin/roster`: the upload form.
pub async fn roster_page(user: WebUser) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let body = html! {
        h1 { (lang.t("Impor daftar rumah tangga", "Roster import")) }
        p.muted { (lang.t(
            "Berkas diperiksa baris demi baris. Berkas dengan kesalahan tidak diimpor sama sekali: perbaiki lalu unggah lagi.",
            "The file is checked row by row. A file with errors imports nothing: fix it and upload it again.")) }
        (upload_form(lang, &user))
    };
    html_page(StatusCode::OK, page(lang, lang.t("Impor daftar", "Roster import"), Some(&user), "/admin/roster", body))
}

/// `POST /admin/roster` (multipart: `csrf`, `file`, `layout`): read and check the file; show every
/// problem, or stage the households and ask to commit them.
pub async fn check(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let (mut csrf, mut layout, mut file) = (String::new(), Layout::Auto, None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().unwrap_or_default().to_string();
                let Ok(bytes) = field.bytes().await else { break };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "layout" => {
                        layout = match &bytes[..] {
                            b"per-household" => Layout::PerHousehold,
                            b"per-person" => Layout::PerPerson,
                            _ => Layout::Auto,
                        }
                    }
                    "file" => file = Some((file_name, bytes)),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return WebError::for_user(&user, StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    }
    if let Err(refused) = check_form(&headers, &user, &csrf) {
        return refused.into_response();
    }
    let Some((file_name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return WebError::for_user(
            &user,
            StatusCode::BAD_REQUEST,
            lang.t("Pilih berkas daftar.", "Choose a roster file."),
        )
        .into_response();
    };
    let extension = if file_name.to_ascii_lowercase().ends_with(".xlsx") { ".xlsx" } else { ".csv" };
    let now = state.clock.now();
    let admin_name = user.session.user.clone();
    let checked = state
        .blocking(move |service| {
            // The reader takes a path (it streams the file in two passes): a temporary file,
            // removed when this closure ends.
            let mut temp = tempfile::Builder::new()
                .suffix(extension)
                .tempfile()
                .map_err(|e| crate::error::ApiError::Internal(e.into()))?;
            temp.write_all(&bytes).map_err(|e| crate::error::ApiError::Internal(e.into()))?;
            let options = RosterOptions { layout, ignore_unknown: false, today: now.date(), sheet: None };
            let file = read_roster(FormDefinition::default_dtsen(), temp.path(), &options, &mut |_| {})
                .map_err(|e| crate::error::ApiError::Invalid(format!("{e:#}")))?;
            if file.has_errors() || file.households.is_empty() {
                return Ok((file, None));
            }
            let import = uuid::Uuid::new_v4();
            let chunks: Vec<_> = file.households.chunks(CHUNK_HOUSEHOLDS).collect();
            for (n, chunk) in chunks.iter().enumerate() {
                service.roster_stage(import, n as u32, &admin_name, chunk, now)?;
            }
            let staged = (import, chunks.len() as u32);
            Ok((file, Some(staged)))
        })
        .await;
    let (file, staged) = match checked {
        Ok(found) => found,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    let status = if staged.is_some() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = report_body(lang, &user, &file_name, &file, staged);
    html_page(
        status,
        page(lang, lang.t("Hasil pemeriksaan daftar", "Roster check"), Some(&user), "/admin/roster", body),
    )
}

fn report_body(
    lang: Lang,
    user: &WebUser,
    file_name: &str,
    file: &RosterFile,
    staged: Option<(uuid::Uuid, u32)>,
) -> Markup {
    html! {
        h1 { (lang.t("Hasil pemeriksaan", "Check result")) ": " (file_name) }
        p id="roster-summary" { (roster_summary(lang, file)) }
        @if !file.problems.is_empty() {
            table id="roster-problems" {
                thead { tr {
                    th { (lang.t("Baris", "Row")) } th { (lang.t("Kolom", "Column")) } th { (lang.t("Isi", "Value")) }
                    th { (lang.t("Aturan", "Rule")) } th { (lang.t("Keterangan", "What to do")) }
                } }
                tbody {
                    @for p in &file.problems {
                        tr class=[(p.severity == Severity::Reject).then_some("conflict")] {
                            td { (p.row) } td { (p.column) } td { (p.value) } td { (p.rule) } td { (p.message) }
                        }
                    }
                }
            }
        }
        @if let Some((import, chunks)) = staged {
            div.message.ok { (file.households.len()) " " (lang.t("rumah tangga siap diimpor.", "households ready to import.")) }
            form method="post" action={ "/admin/roster/" (import) "/commit" } id="commit-form" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                input type="hidden" name="chunks" value=(chunks);
                button.primary type="submit" id="commit-roster" { (lang.t("Impor sekarang", "Import now")) }
            }
        } @else {
            div.message.error id="roster-refused" {
                (lang.t("Tidak ada yang diimpor. Perbaiki baris yang disebut lalu unggah lagi.", "Nothing was imported. Fix the rows named above and upload again."))
            }
            (upload_form(lang, user))
        }
    }
}

/// The check's one-line summary (`pilar roster import --check` prints the English one of
/// `pilar_roster::report::summary`): rows, households, errors, warnings and clean households.
fn roster_summary(lang: Lang, file: &RosterFile) -> String {
    let errors = file.problems.iter().filter(|p| p.is_blocking()).count();
    let warnings = file.problems.len() - errors;
    let (rows, households, clean) = (file.rows, file.household_count, file.clean_count);
    let layout = match file.layout {
        Layout::PerPerson => lang.t("satu baris per orang", "one row per person"),
        Layout::PerHousehold | Layout::Auto => lang.t("satu baris per rumah tangga", "one row per household"),
    };
    match lang {
        Lang::Id => format!(
            "{rows} baris data, {households} rumah tangga ({layout}): {errors} kesalahan, {warnings} peringatan; \
             {clean} rumah tangga tanpa kesalahan"
        ),
        Lang::En => format!(
            "{rows} data row(s), {households} household(s) ({layout}): {errors} error(s), {warnings} warning(s); \
             {clean} household(s) without errors"
        ),
    }
}

/// The commit form.
#[derive(Debug, Deserialize)]
pub struct CommitForm {
    csrf: String,
    chunks: u32,
}

/// `POST /admin/roster/{import}/commit`: apply the staged roster in one transaction (a repeated
/// commit answers the first one's summary).
pub async fn commit(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<Path<uuid::Uuid>, PathRejection>,
    Form(form): Form<CommitForm>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let lang = user.lang;
    let Ok(Path(import)) = path else {
        return WebError::for_user(&user, StatusCode::NOT_FOUND, lang.t("Impor ini tidak ada.", "No such import."))
            .into_response();
    };
    let editor =
        Editor { user: user.caller.user.clone(), device: user.caller.device.on_server(), now: state.clock.now() };
    let done = state.blocking(move |service| Ok(service.roster_commit(import, form.chunks, &editor)?)).await;
    let summary = match done {
        Ok(summary) => summary,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    tracing::info!(%import, created = summary.created, updated = summary.updated, "roster imported from the web page");
    let body = html! {
        h1 { (lang.t("Daftar diimpor", "Roster imported")) }
        div.message.ok id="roster-imported" {
            (summary.created) " " (lang.t("baru", "created")) ", " (summary.updated) " " (lang.t("diperbarui", "updated")) ", "
            (summary.unchanged) " " (lang.t("tidak berubah", "unchanged"))
        }
        p { a href="/households" { (lang.t("Lihat rumah tangga", "See the households")) } }
    };
    html_page(
        StatusCode::OK,
        page(lang, lang.t("Daftar diimpor", "Roster imported"), Some(&user), "/admin/roster", body),
    )
}
