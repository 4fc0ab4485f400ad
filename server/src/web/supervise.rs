//! The supervisor's other pages: the dashboard (progress per village and enumerator, each
//! device's last sync, visits per day), the conflict inbox (pick a value or enter a new one) and
//! suspected duplicates side by side (merge or dismiss). Every list and decision is the API's
//! `Service` call with the same scope check.

use super::households::village_name;
use super::layout::{Lang, WebError, html_page, local_time, page};
use super::session::{WebUser, check_form};
use crate::service::review::Choice;
use crate::state::AppState;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use sync_core::form::{FormDefinition, Scope};
use sync_core::model::{Editor, FieldPath, Household, HouseholdId};
use sync_core::protocol::{ConflictItem, DuplicatePair, HouseholdBrief, ProgressReport, ProgressRow};

fn editor(user: &WebUser, now: time::OffsetDateTime) -> Editor {
    Editor { user: user.caller.user.clone(), device: user.caller.device.on_server(), now }
}

/// `GET /dashboard`: households, visits, outcomes and reviews per village and per enumerator, each
/// device's last sync, and the visits of the last days.
pub async fn dashboard(State(state): State<AppState>, user: WebUser) -> Response {
    let lang = user.lang;
    let caller = user.caller.clone();
    // WITA and WIT are ahead of UTC: their today may be the server's tomorrow.
    let today = (state.clock.now() + time::Duration::hours(9)).date();
    let loaded = state
        .blocking(move |service| {
            let areas = service.areas(&caller, None, "see progress")?;
            let report = service.progress(areas.as_deref())?;
            let days = service.visits_per_day(areas.as_deref(), today, 14)?;
            Ok((report, days))
        })
        .await;
    let (report, days) = match loaded {
        Ok(found) => found,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    let body = dashboard_body(lang, &report, &days);
    html_page(StatusCode::OK, page(lang, lang.t("Ringkasan", "Dashboard"), Some(&user), "/dashboard", body))
}

fn progress_table(lang: Lang, id: &str, first: &str, rows: &[ProgressRow], villages: bool) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                th { (first) } th { (lang.t("Rumah tangga", "Households")) } th { (lang.t("Dikunjungi", "Visited")) }
                th { (lang.t("Hasil final", "Final outcomes")) } th { (lang.t("Menunggu", "Awaiting review")) }
                th { (lang.t("Disetujui", "Approved")) } th { (lang.t("Dikembalikan", "Returned")) }
                th { (lang.t("Konflik", "Conflicts")) } th { (lang.t("Dugaan ganda", "Suspected duplicates")) }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { (r.key) @if villages { " " span.muted { (village_name(&r.key)) } } }
                        td { (r.total) } td { (r.visited) } td { (r.final_outcomes.values().sum::<u64>()) }
                        td { (r.awaiting_review) } td { (r.approved) } td { (r.returned) }
                        td { (r.conflicts) } td { (r.duplicates) }
                    }
                }
            }
        }
    }
}

fn dashboard_body(lang: Lang, report: &ProgressReport, days: &BTreeMap<String, u64>) -> Markup {
    let most = days.values().copied().max().unwrap_or(0).max(1);
    // Last syncs on the clock of the caller's villages (a supervisor's kecamatan lies in one
    // province, so one zone), as `pilar progress` shows them.
    let area = report.villages.first().map_or("", |v| v.key.as_str());
    html! {
        h1 { (lang.t("Ringkasan", "Dashboard")) }
        h2 { (lang.t("Per desa", "Per village")) }
        (progress_table(lang, "villages", lang.t("Desa", "Village"), &report.villages, true))
        h2 { (lang.t("Per enumerator", "Per enumerator")) }
        (progress_table(lang, "enumerators", lang.t("Enumerator", "Enumerator"), &report.enumerators, false))
        h2 { (lang.t("Kunjungan per hari (14 hari)", "Visits per day (14 days)")) }
        table id="visits-per-day" {
            tbody {
                @for (day, n) in days {
                    tr {
                        td style="width: 110px" { (day) }
                        td { div style={ "background:#0b5d4b;height:12px;width:" (n * 600 / most) "px" } {} }
                        td style="width: 60px" { (n) }
                    }
                }
            }
        }
        h2 { (lang.t("Perangkat", "Devices")) }
        table id="devices" {
            thead { tr { th { (lang.t("Pengguna", "User")) } th { (lang.t("Perangkat", "Device")) } th { (lang.t("Sinkron terakhir", "Last sync")) } } }
            tbody {
                @for d in &report.devices {
                    tr {
                        td { (d.user) } td { (d.name) " " span.muted { (d.device) } }
                        td {
                            @match &d.last_sync_at {
                                Some(at) => (local_time(at, area)),
                                None => (lang.t("belum pernah", "never")),
                            }
                            @if d.revoked { " " strong { (lang.t("dicabut", "revoked")) } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /conflicts`: every open conflict of the caller's areas, each value with who, when and from
/// which device.
pub async fn conflicts(State(state): State<AppState>, user: WebUser) -> Response {
    let lang = user.lang;
    let caller = user.caller.clone();
    let loaded = state
        .blocking(move |service| {
            let areas = service.areas(&caller, None, "see the conflict inbox")?;
            Ok(service.conflicts(areas.as_deref())?)
        })
        .await;
    let items = match loaded {
        Ok(items) => items,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    let body = html! {
        h1 { (lang.t("Konflik", "Conflicts")) }
        p.muted { (items.len()) " " (lang.t("isian dengan nilai yang berbeda", "fields with differing values")) }
        @for (n, item) in items.iter().enumerate() { (conflict(lang, &user, n, item)) }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Konflik", "Conflicts"), Some(&user), "/conflicts", body))
}

fn conflict(lang: Lang, user: &WebUser, n: usize, item: &ConflictItem) -> Markup {
    let h = &item.household;
    let action = format!("/households/{}/resolve", h.household);
    html! {
        div.conflict-item id={ "conflict-" (n) } {
            h2 {
                a href={ "/households/" (h.household) } { (h.head_name.as_deref().unwrap_or("—")) }
                " · " (item.label.as_deref().unwrap_or(&item.path)) " " span.muted { (item.path) }
            }
            table {
                thead { tr { th { (lang.t("Nilai", "Value")) } th { (lang.t("Oleh", "By")) } th { (lang.t("Waktu", "When")) } th { (lang.t("Perangkat", "Device")) } th {} } }
                tbody {
                    @for (i, v) in item.values.iter().enumerate() {
                        tr {
                            td.value { (v.value.to_string()) } td { (v.user) } td.when { (local_time(&v.at, &h.village)) } td.muted { (v.device) }
                            td {
                                form method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(user.session.csrf);
                                    input type="hidden" name="path" value=(item.path);
                                    input type="hidden" name="pick" value=(i + 1);
                                    button.primary type="submit" { (lang.t("Pilih", "Keep")) }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(user.session.csrf);
                input type="hidden" name="path" value=(item.path);
                label { (lang.t("Atau nilai baru", "Or a new value")) " " input type="text" name="value"; }
                " " button type="submit" { (lang.t("Simpan", "Save")) }
            }
        }
    }
}

/// The resolve form.
#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    csrf: String,
    path: String,
    #[serde(default)]
    pick: Option<usize>,
    #[serde(default)]
    value: Option<String>,
}

/// `POST /households/{id}/resolve`: keep one listed value or write a new one, as
/// `pilar conflicts resolve` does; then back to the inbox.
pub async fn resolve(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let lang = user.lang;
    if let Err(refused) = check_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let Some(id) = path.ok().and_then(|axum::extract::Path(p)| p.parse::<HouseholdId>().ok()) else {
        return WebError::for_user(
            &user,
            StatusCode::NOT_FOUND,
            lang.t("Rumah tangga ini tidak ada.", "No such household."),
        )
        .into_response();
    };
    let Ok(field) = form.path.parse::<FieldPath>() else {
        return WebError::for_user(&user, StatusCode::BAD_REQUEST, format!("{:?} is not a field path", form.path))
            .into_response();
    };
    let choice = match (form.pick, form.value.as_deref().map(str::trim).filter(|v| !v.is_empty())) {
        (Some(n), _) => Choice::Pick(n),
        (None, Some(v)) => Choice::Value(v.to_string()),
        (None, None) => {
            return WebError::for_user(
                &user,
                StatusCode::BAD_REQUEST,
                lang.t("Pilih satu nilai atau tulis nilai baru.", "Keep a value or type a new one."),
            )
            .into_response();
        }
    };
    let editor = editor(&user, state.clock.now());
    let caller = user.caller.clone();
    let done = state
        .blocking(move |service| {
            service.may_act(&caller, id, "resolve conflicts")?;
            Ok(service.resolve(id, &editor, &field, &choice)?)
        })
        .await;
    match done {
        Ok(_) => Redirect::to("/conflicts").into_response(),
        Err(e) => WebError::from_api(&user, &e).into_response(),
    }
}

/// `GET /duplicates`: each suspected pair side by side, differing answers marked, with merge and
/// dismiss.
pub async fn duplicates(State(state): State<AppState>, user: WebUser) -> Response {
    let lang = user.lang;
    let caller = user.caller.clone();
    let loaded = state
        .blocking(move |service| {
            let areas = service.areas(&caller, None, "see suspected duplicates")?;
            let pairs = service.duplicates(areas.as_deref())?;
            let mut whole = Vec::with_capacity(pairs.len());
            for pair in pairs {
                let a = service.household_whole(pair.a.household)?.map(|(_, h)| h);
                let b = service.household_whole(pair.b.household)?.map(|(_, h)| h);
                whole.push((pair, a, b));
            }
            Ok(whole)
        })
        .await;
    let pairs = match loaded {
        Ok(pairs) => pairs,
        Err(e) => return WebError::from_api(&user, &e).into_response(),
    };
    let form = FormDefinition::default_dtsen();
    let body = html! {
        h1 { (lang.t("Dugaan rumah tangga ganda", "Suspected duplicates")) }
        p.muted { (pairs.len()) " " (lang.t("pasangan", "pairs")) }
        @for (n, (pair, a, b)) in pairs.iter().enumerate() { (duplicate(lang, &user, n, pair, a.as_ref(), b.as_ref(), form)) }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Dugaan ganda", "Duplicates"), Some(&user), "/duplicates", body))
}

fn duplicate(
    lang: Lang,
    user: &WebUser,
    n: usize,
    pair: &DuplicatePair,
    a: Option<&Household>,
    b: Option<&Household>,
    form: &FormDefinition,
) -> Markup {
    let (sa, sb) = (a.map(Household::state), b.map(Household::state));
    let mut fields: Vec<&String> = sa.iter().chain(sb.iter()).flat_map(|s| s.answers.keys()).collect();
    fields.sort();
    fields.dedup();
    let cell = |s: &Option<sync_core::model::HouseholdState>, f: &str| {
        s.as_ref()
            .and_then(|s| s.answers.get(f))
            .map(|v| form.field(Scope::Household, f).map_or_else(|| v.to_string(), |d| d.value_text(v)))
            .unwrap_or_default()
    };
    let members = |s: &Option<sync_core::model::HouseholdState>| s.as_ref().map_or(0, |s| s.current_members().count());
    let heading = |h: &HouseholdBrief| html! { a href={ "/households/" (h.household) } { (h.head_name.as_deref().unwrap_or("—")) } " " span.muted { (h.village) } };
    html! {
        div.duplicate id={ "pair-" (n) } {
            h2 { (heading(&pair.a)) " ↔ " (heading(&pair.b)) }
            p.muted { (lang.t("Alasan", "Why")) ": " (pair.reasons.join(", ")) }
            table {
                thead { tr { th { (lang.t("Pertanyaan", "Question")) } th { "A" } th { "B" } } }
                tbody {
                    @for f in &fields {
                        @let (va, vb) = (cell(&sa, f), cell(&sb, f));
                        tr class=[(va != vb).then_some("conflict")] {
                            td { (form.field(Scope::Household, f).map_or(f.as_str(), |d| d.label.as_str())) }
                            td { (va) } td { (vb) }
                        }
                    }
                    tr { td { (lang.t("Anggota keluarga", "Members")) } td { (members(&sa)) } td { (members(&sb)) } }
                }
            }
            div.review-actions {
                @for (keep, retire, label) in [(&pair.a, &pair.b, lang.t("Gabungkan, pertahankan A", "Merge, keep A")), (&pair.b, &pair.a, lang.t("Gabungkan, pertahankan B", "Merge, keep B"))] {
                    form method="post" action="/duplicates/merge" {
                        input type="hidden" name="csrf" value=(user.session.csrf);
                        input type="hidden" name="survivor" value=(keep.household);
                        input type="hidden" name="retired" value=(retire.household);
                        button.primary type="submit" { (label) }
                    }
                }
                form method="post" action="/duplicates/dismiss" {
                    input type="hidden" name="csrf" value=(user.session.csrf);
                    input type="hidden" name="a" value=(pair.a.household);
                    input type="hidden" name="b" value=(pair.b.household);
                    button type="submit" { (lang.t("Bukan ganda (keluarga berbeda)", "Not duplicates (different families)")) }
                }
            }
        }
    }
}

/// The merge form.
#[derive(Debug, Deserialize)]
pub struct MergeForm {
    csrf: String,
    survivor: HouseholdId,
    retired: HouseholdId,
}

/// `POST /duplicates/merge`: fold `retired` into `survivor`, as `pilar duplicates merge` does.
pub async fn merge(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<MergeForm>,
) -> Response {
    if let Err(refused) = check_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let editor = editor(&user, state.clock.now());
    let caller = user.caller.clone();
    let done = state
        .blocking(move |service| {
            service.may_act(&caller, form.survivor, "merge households")?;
            service.may_act(&caller, form.retired, "merge households")?;
            Ok(service.fold(form.survivor, form.retired, &editor)?)
        })
        .await;
    match done {
        Ok(_) => Redirect::to("/duplicates").into_response(),
        Err(e) => WebError::from_api(&user, &e).into_response(),
    }
}

/// The dismiss form.
#[derive(Debug, Deserialize)]
pub struct DismissForm {
    csrf: String,
    a: HouseholdId,
    b: HouseholdId,
}

/// `POST /duplicates/dismiss`: the two are different families, as `pilar duplicates dismiss`.
pub async fn dismiss(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<DismissForm>,
) -> Response {
    if let Err(refused) = check_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let caller = user.caller.clone();
    let now = state.clock.now();
    let done = state
        .blocking(move |service| {
            service.may_act(&caller, form.a, "dismiss duplicate suspicions")?;
            service.may_act(&caller, form.b, "dismiss duplicate suspicions")?;
            Ok(service.dismiss(form.a, form.b, &caller.user, now)?)
        })
        .await;
    match done {
        Ok(()) => Redirect::to("/duplicates").into_response(),
        Err(e) => WebError::from_api(&user, &e).into_response(),
    }
}
