//! The households table (search, filters, pages), a household's page, and review from it.

use super::layout::{Lang, WebError, html_page, local_time, page};
use super::session::{WebUser, check_form, encode};
use crate::service::office::{HouseholdFilter, HouseholdPage};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;
use sync_core::form::{FormDefinition, Scope};
use sync_core::ids::{DistrictCode, VillageCode};
use sync_core::model::{FieldPath, Household, HouseholdId, ReviewDecision, ReviewStatus};
use sync_core::protocol::HouseholdBrief;

/// `GET /`: the dashboard.
pub async fn home(_: WebUser) -> Response {
    Redirect::to("/dashboard").into_response()
}

/// Query of `GET /households`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    village: String,
    #[serde(default)]
    rt: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    conflicts: String,
    #[serde(default)]
    page: String,
}

fn some(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A review status as the office reads it.
pub fn status_label(lang: Lang, status: Option<&str>) -> &'static str {
    match status {
        Some("awaiting_review") => lang.t("Menunggu pemeriksaan", "Awaiting review"),
        Some("approved") => lang.t("Disetujui", "Approved"),
        Some("returned") => lang.t("Dikembalikan", "Returned"),
        _ => lang.t("Belum dikunjungi", "Not visited"),
    }
}

/// A village's name from the region table (empty when unknown).
pub fn village_name(code: &str) -> String {
    VillageCode::parse_format_only(code).ok().and_then(|v| v.name()).unwrap_or("").to_string()
}

/// `GET /households`: the households of the caller's areas, filtered and paged.
pub async fn list(State(state): State<AppState>, user: WebUser, Query(q): Query<ListQuery>) -> Response {
    let lang = user.lang;
    let filter = HouseholdFilter {
        text: some(&q.q),
        village: some(&q.village),
        rt: some(&q.rt),
        review: some(&q.status),
        outcome: q.outcome.trim().parse().ok(),
        conflicts_only: q.conflicts == "1",
        page: q.page.trim().parse().unwrap_or(1),
    };
    let caller = user.caller.clone();
    let found = state
        .blocking(move |service| {
            let areas = service.areas(&caller, None, "see households")?;
            let page = service.household_page(areas.as_deref(), &filter)?;
            Ok((areas, page))
        })
        .await;
    let (areas, found) = match found {
        Ok(found) => found,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    let form = Arc::new(FormDefinition::default_dtsen().clone());
    html_page(
        StatusCode::OK,
        page(
            lang,
            lang.t("Rumah tangga", "Households"),
            Some(&user),
            "/households",
            list_body(lang, &user.session.csrf, &q, &found, &form, areas.as_deref()),
        ),
    )
}

/// `areas`: the supervisor's kecamatan, offered for export; `None` (an admin) asks for a code.
fn list_body(
    lang: Lang,
    csrf: &str,
    q: &ListQuery,
    found: &HouseholdPage,
    form: &FormDefinition,
    areas: Option<&[String]>,
) -> Markup {
    let link = |page: usize| {
        format!(
            "/households?q={}&village={}&rt={}&status={}&outcome={}&conflicts={}&page={page}",
            encode(&q.q),
            encode(&q.village),
            encode(&q.rt),
            encode(&q.status),
            encode(&q.outcome),
            encode(&q.conflicts)
        )
    };
    html! {
        h1 { (lang.t("Rumah tangga", "Households")) }
        form.filters method="get" action="/households" id="filters" {
            label { (lang.t("Cari", "Search")) " "
                input type="text" name="q" id="q" value=(q.q) size="28"
                    placeholder=(lang.t("nama kepala keluarga, NIK atau nomor KK", "head's name, NIK or KK number")); }
            label { (lang.t("Desa", "Village")) " " input type="text" name="village" value=(q.village) size="14" placeholder="73.14.01.1001"; }
            label { "RT " input type="text" name="rt" value=(q.rt) size="4"; }
            label { (lang.t("Status", "Status")) " "
                select name="status" id="status" {
                    option value="" selected[q.status.is_empty()] { (lang.t("semua", "all")) }
                    @for (value, _) in [("awaiting_review", ()), ("approved", ()), ("returned", ()), ("none", ())] {
                        option value=(value) selected[q.status == value] { (status_label(lang, Some(value))) }
                    }
                }
            }
            label { (lang.t("Hasil kunjungan", "Visit outcome")) " "
                select name="outcome" {
                    option value="" selected[q.outcome.is_empty()] { (lang.t("semua", "all")) }
                    @for o in &form.outcomes {
                        option value=(o.code) selected[q.outcome == o.code.to_string()] { (o.code) " " (o.label) }
                    }
                }
            }
            label { input type="checkbox" name="conflicts" value="1" checked[q.conflicts == "1"]; " " (lang.t("ada konflik", "has conflicts")) }
            button.primary type="submit" id="search" { (lang.t("Tampilkan", "Show")) }
        }
        p.muted id="count" {
            (found.total) " " (lang.t("rumah tangga", "households"))
            @if found.pages > 1 { " · " (lang.t("halaman", "page")) " " (found.page) "/" (found.pages) }
        }
        table id="households" {
            thead { tr {
                th { (lang.t("Desa", "Village")) } th { "RT" } th { (lang.t("Kepala keluarga", "Head of household")) }
                th { (lang.t("Kunjungan", "Visits")) } th { (lang.t("Hasil terakhir", "Last outcome")) }
                th { (lang.t("Status pemeriksaan", "Review status")) } th { (lang.t("Konflik", "Conflicts")) }
                th { (lang.t("Periksa", "Review")) }
            } }
            tbody {
                @for h in &found.rows { (row(lang, h, form, csrf, &link(found.page))) }
            }
        }
        div.pager {
            @if found.page > 1 { a href=(link(found.page - 1)) rel="prev" { "« " (lang.t("sebelumnya", "previous")) } }
            @if found.page < found.pages { a href=(link(found.page + 1)) rel="next" id="next-page" { (lang.t("berikutnya", "next")) " »" } }
        }
        (export_form(lang, areas))
    }
}

/// The export form: `GET /export` with the filters of `pilar export` (a download, no state change,
/// so no anti-forgery token).
fn export_form(lang: Lang, areas: Option<&[String]>) -> Markup {
    html! {
        h2 { (lang.t("Ekspor", "Export")) }
        form.filters method="get" action="/export" id="export-form" {
            label { (lang.t("Wilayah", "Area")) " "
                @match areas {
                    Some(areas) => {
                        select name="area" id="export-area" {
                            @for area in areas { option value=(area) { (area) " " (district_name(area)) } }
                        }
                    }
                    None => {
                        input type="text" name="area" id="export-area" size="10" required
                            placeholder=(lang.t("kecamatan 73.14.01 atau kabupaten 73.14", "kecamatan 73.14.01 or kabupaten 73.14"));
                    }
                }
            }
            label { (lang.t("Format", "Format")) " "
                select name="format" id="export-format" {
                    option value="xlsx" { "XLSX" }
                    option value="csv" { "CSV (ZIP)" }
                }
            }
            label { (lang.t("Dikunjungi dari", "Visited from")) " " input type="date" name="from"; }
            label { (lang.t("sampai", "to")) " " input type="date" name="to"; }
            label { input type="checkbox" name="approved" value="1" id="export-approved"; " " (lang.t("hanya yang disetujui", "approved only")) }
            button type="submit" id="export" { (lang.t("Unduh", "Download")) }
        }
    }
}

fn district_name(code: &str) -> &'static str {
    DistrictCode::parse(code).ok().and_then(|k| k.name()).unwrap_or("")
}

/// One row of the table; a household awaiting review can be approved, or returned with a comment,
/// from it (the review queue is the table filtered to "awaiting review"), coming `back` to it.
fn row(lang: Lang, h: &HouseholdBrief, form: &FormDefinition, csrf: &str, back: &str) -> Markup {
    let outcome = h.last_outcome.map(|o| match form.outcome(o) {
        Some(def) => format!("{o} {}", def.label),
        None => o.to_string(),
    });
    html! {
        tr class=[(h.conflicts > 0).then_some("conflict")] {
            td { (h.village) " " span.muted { (village_name(&h.village)) } }
            td { (h.rt.as_deref().unwrap_or("")) }
            td { a href={ "/households/" (h.household) } { (h.head_name.as_deref().unwrap_or("—")) } }
            td { (h.visits) }
            td { (outcome.unwrap_or_default()) }
            td { span class={ "status-" (h.review.as_deref().unwrap_or("none")) } { (status_label(lang, h.review.as_deref())) } }
            td { @if h.conflicts > 0 { (h.conflicts) } }
            td.queue {
                @if h.review.as_deref() == Some("awaiting_review") {
                    form method="post" action={ "/households/" (h.household) "/review" } id={ "approve-" (h.household) } {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="decision" value="approve";
                        input type="hidden" name="back" value=(back);
                        button.primary type="submit" { (lang.t("Setujui", "Approve")) }
                    }
                    form method="post" action={ "/households/" (h.household) "/review" } id={ "return-" (h.household) } {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="decision" value="return";
                        input type="hidden" name="back" value=(back);
                        input type="text" name="comment" required size="14"
                            placeholder=(lang.t("apa yang harus diperbaiki", "what must be fixed"));
                        button.warn type="submit" { (lang.t("Kembalikan", "Return")) }
                    }
                }
            }
        }
    }
}

/// Query of a household's page: the field whose history is shown.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    history: Option<String>,
}

fn household_id(user: &WebUser, path: Result<Path<String>, PathRejection>) -> Result<HouseholdId, WebError> {
    let text = path.map(|Path(p)| p).unwrap_or_default();
    text.parse().map_err(|_| {
        WebError::for_user(
            user,
            StatusCode::NOT_FOUND,
            user.lang.t("Rumah tangga ini tidak ada.", "There is no such household."),
        )
    })
}

/// `GET /households/{id}`: one household whole, if it is in the caller's areas (else 403).
pub async fn show(
    State(state): State<AppState>,
    user: WebUser,
    path: Result<Path<String>, PathRejection>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let lang = user.lang;
    let id = match household_id(&user, path) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let caller = user.caller.clone();
    let loaded = state
        .blocking(move |service| {
            service.may_act(&caller, id, "see households")?;
            let Some((village, household)) = service.household_whole(id)? else {
                return Err(crate::storage::StorageError::NotFound(format!("no household {id}")).into());
            };
            let form = service.form_definition(&household.form_key())?;
            Ok((village, household, form))
        })
        .await;
    let (village, household, form) = match loaded {
        Ok(found) => found,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    let form = form.unwrap_or_else(|| Arc::new(FormDefinition::default_dtsen().clone()));
    let title = household.state().answer_text("head_name").unwrap_or_else(|| id.to_string());
    let body = household_body(lang, &user, id, &village, &household, &form, q.history.as_deref());
    html_page(StatusCode::OK, page(lang, &title, Some(&user), &format!("/households/{id}"), body))
}

fn household_body(
    lang: Lang,
    user: &WebUser,
    id: HouseholdId,
    village: &str,
    household: &Household,
    form: &FormDefinition,
    history: Option<&str>,
) -> Markup {
    let state = household.state();
    let status = household.review_status(&state);
    let conflicts: Vec<String> = household.conflicts().iter().map(|(p, _)| p.to_string()).collect();
    let history_of = history.and_then(|h| h.parse::<FieldPath>().ok());
    let history_rows = history_of.as_ref().and_then(|p| household.field_history(p).ok()).unwrap_or_default();
    let label = |scope: Scope, name: &str| form.field(scope, name).map_or(name.to_string(), |f| f.label.clone());
    let value = |scope: Scope, name: &str, v: &sync_core::value::FieldValue| {
        form.field(scope, name).map_or_else(|| v.to_string(), |f| f.value_text(v))
    };
    html! {
        h1 id="household-title" { (state.answer_text("head_name").unwrap_or_default()) }
        p.muted {
            (lang.t("Desa", "Village")) " " (village) " " (village_name(village))
            " · RT " (state.answer_text("rt").unwrap_or_default())
            " · " (lang.t("formulir", "form")) " " (state.form)
            " · " span.muted { (id) }
        }
        h2 { (lang.t("Pemeriksaan", "Review")) }
        p id="review-status" {
            span class={ "status-" (status.map_or("none", ReviewStatus::as_str)) } { (status_label(lang, status.map(ReviewStatus::as_str))) }
            @if let (Some(by), Some(at)) = (&state.review.by, &state.review.at) { " — " (by) ", " (local_time(at, village)) }
        }
        @if !state.review.comments.is_empty() {
            table id="comments" {
                thead { tr { th { (lang.t("Waktu", "When")) } th { (lang.t("Oleh", "By")) } th { (lang.t("Komentar", "Comment")) } } }
                tbody { @for c in &state.review.comments { tr { td { (local_time(&c.at, village)) } td { (c.by) } td { (c.text) } } } }
            }
        }
        @if !state.visits.is_empty() {
            div.review-actions {
                form method="post" action={ "/households/" (id) "/review" } id="approve-form" {
                    input type="hidden" name="csrf" value=(user.session.csrf);
                    input type="hidden" name="decision" value="approve";
                    textarea name="comment" placeholder=(lang.t("komentar (tidak wajib)", "comment (optional)")) {}
                    button.primary type="submit" id="approve" { (lang.t("Setujui", "Approve")) }
                }
                form method="post" action={ "/households/" (id) "/review" } id="return-form" {
                    input type="hidden" name="csrf" value=(user.session.csrf);
                    input type="hidden" name="decision" value="return";
                    textarea name="comment" id="return-comment" required
                        placeholder=(lang.t("apa yang harus diperbaiki enumerator", "what the enumerator must fix")) {}
                    button.warn type="submit" id="return" { (lang.t("Kembalikan", "Return")) }
                }
            }
        }
        h2 { (lang.t("Jawaban", "Answers")) }
        table id="answers" {
            thead { tr { th { (lang.t("Pertanyaan", "Question")) } th { (lang.t("Jawaban", "Answer")) } th {} } }
            tbody {
                @for (name, v) in &state.answers {
                    @let path = format!("answers.{name}");
                    tr class=[conflicts.contains(&path).then_some("conflict")] {
                        td { (label(Scope::Household, name)) br; span.muted { (name) } }
                        td { (value(Scope::Household, name, v)) }
                        td { a href={ "/households/" (id) "?history=" (path) "#history" } { (lang.t("riwayat", "history")) } }
                    }
                }
            }
        }
        @if let Some(path) = &history_of {
            h2 id="history" { (lang.t("Riwayat", "History")) " " (path.to_string()) }
            table id="history-table" {
                thead { tr { th { (lang.t("Waktu", "When")) } th { (lang.t("Oleh", "By")) } th { (lang.t("Perangkat", "Device")) } th { (lang.t("Nilai", "Value")) } } }
                tbody {
                    @for h in &history_rows {
                        tr {
                            td { (local_time(&h.writer.at, village)) } td { (h.writer.user) } td.muted { (h.writer.device) }
                            td { @match &h.value { Some(v) => (v.to_string()), None => em { (lang.t("dikosongkan", "cleared")) } } }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("Anggota keluarga", "Members")) }
        table id="members" {
            thead { tr {
                th { "#" } th { (label(Scope::Member, "full_name")) } th { (label(Scope::Member, "relationship")) }
                th { (label(Scope::Member, "sex")) } th { (label(Scope::Member, "birth_date")) } th { (lang.t("Keterangan", "Note")) }
            } }
            tbody {
                @for m in &state.members {
                    tr {
                        td { (m.answers.get("seq").map(|v| v.to_string()).unwrap_or_default()) }
                        td { (m.answers.get("full_name").map(|v| v.to_string()).unwrap_or_default()) }
                        td { (m.answers.get("relationship").map(|v| value(Scope::Member, "relationship", v)).unwrap_or_default()) }
                        td { (m.answers.get("sex").map(|v| value(Scope::Member, "sex", v)).unwrap_or_default()) }
                        td { (m.answers.get("birth_date").map(|v| v.to_string()).unwrap_or_default()) }
                        td { @if let Some(r) = &m.removed { (lang.t("dihapus", "removed")) ": " (r.reason) } }
                    }
                }
            }
        }
        h2 { (lang.t("Kunjungan", "Visits")) }
        table id="visits" {
            thead { tr { th { (lang.t("Waktu", "When")) } th { (lang.t("Enumerator", "Enumerator")) } th { (lang.t("Hasil", "Outcome")) } th { (lang.t("Catatan", "Note")) } } }
            tbody {
                @for v in &state.visits {
                    tr {
                        td { (local_time(&v.at, village)) }
                        td { (v.user) }
                        td { @if let Some(o) = v.outcome { (o) " " (form.outcome(o).map(|d| d.label.as_str()).unwrap_or("")) } }
                        td { (v.note.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// The review form.
#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
    /// The page to come back to (the queue it was sent from); only a households page is followed.
    #[serde(default)]
    back: String,
}

/// `back` when it is a households page of this site (never another site, never a header break).
fn back_to(back: &str) -> Option<&str> {
    let local = back.starts_with("/households") && !back.starts_with("//");
    (local && back.bytes().all(|b| b.is_ascii_graphic())).then_some(back)
}

/// `POST /households/{id}/review`: approve or return (a return needs a comment), as `pilar review`
/// does, then back to the queue it came from or to the household's page.
pub async fn review(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Form(form): Form<ReviewForm>,
) -> Response {
    let lang = user.lang;
    if let Err(refused) = check_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let id = match household_id(&user, path) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let decision = match form.decision.as_str() {
        "approve" => ReviewDecision::Approve,
        "return" => ReviewDecision::Return,
        _ => {
            return WebError::for_user(&user, StatusCode::BAD_REQUEST, "decision must be approve or return")
                .into_response();
        }
    };
    let comment = some(&form.comment);
    let back = back_to(&form.back).map_or_else(|| format!("/households/{id}"), str::to_string);
    if decision == ReviewDecision::Return && comment.is_none() {
        return WebError::for_user(
            &user,
            StatusCode::BAD_REQUEST,
            lang.t(
                "Tulis apa yang harus diperbaiki sebelum mengembalikan.",
                "Say what must be fixed before returning.",
            ),
        )
        .into_response();
    }
    let caller = user.caller.clone();
    let now = state.clock.now();
    let done = state
        .blocking(move |service| {
            service.may_act(&caller, id, "approve or return households")?;
            let editor = sync_core::model::Editor { user: caller.user.clone(), device: caller.device.on_server(), now };
            Ok(service.review(id, &editor, decision, comment.as_deref())?)
        })
        .await;
    match done {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => WebError::from_api(&user, &e).into_response(),
    }
}
