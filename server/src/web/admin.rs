//! The admin's pages: users (create, with a generated password shown once), their areas
//! (villages or kecamatan, with region names), devices (last seen, revoke) and questionnaire
//! versions (publish a JSON or XLSForm file, choose the default). Each decision is the function
//! the API's admin routes call (`routes::admin::create_user_as`, `assign_as`, the `Service`).

use super::households::village_name;
use super::layout::{WebError, html_page, local_time, page};
use super::session::{WebUser, admin_only, check_admin_form, check_form};
use crate::error::ApiError;
use crate::routes::admin::{assign_as, change_role_as, create_user_as, reset_password_as, user_view};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;
use sync_core::form::FormDefinition;
use sync_core::ids::{DistrictCode, RegencyCode};
use sync_core::model::DeviceId;
use sync_core::protocol::{CreateUserRequest, Role};

fn failed(user: &WebUser, e: ApiError) -> Response {
    WebError::from_api(user, &e).into_response()
}

fn area_name(code: &str) -> String {
    if code.len() > 8 {
        return village_name(code);
    }
    DistrictCode::parse_format_only(code).ok().and_then(|c| c.name()).unwrap_or("").to_string()
}

/// `GET /admin/users`: every user with their areas, and the form that creates one.
pub async fn users(State(state): State<AppState>, user: WebUser) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let users = match state.blocking(|service| Ok(service.users()?)).await {
        Ok(users) => users,
        Err(e) => return failed(&user, e),
    };
    let body = html! {
        h1 { (lang.t("Pengguna", "Users")) }
        table id="users" {
            thead { tr { th { (lang.t("Nama", "Name")) } th { (lang.t("Peran", "Role")) } th { (lang.t("Wilayah", "Areas")) } } }
            tbody {
                @for u in &users {
                    tr {
                        td { a href={ "/admin/users/" (u.name) } { (u.name) } }
                        td { (u.role) }
                        td { @for code in u.villages.iter().chain(&u.kecamatan) { (code) " " span.muted { (area_name(code)) } br; } }
                    }
                }
            }
        }
        h2 { (lang.t("Tambah pengguna", "Add a user")) }
        form.filters method="post" action="/admin/users" id="new-user" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            label { (lang.t("Nama pengguna", "User name")) " " input type="text" name="name" id="new-name" placeholder="pkh.bilokka01" required; }
            label { (lang.t("Peran", "Role")) " "
                select name="role" id="new-role" {
                    option value="enumerator" { "enumerator" } option value="supervisor" { "supervisor" } option value="admin" { "admin" }
                }
            }
            label { (lang.t("Kata sandi (kosongkan untuk dibuatkan)", "Password (leave empty to generate one)")) " "
                input type="password" name="password" autocomplete="new-password"; }
            button.primary type="submit" id="create-user" { (lang.t("Tambah", "Add")) }
        }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Pengguna", "Users"), Some(&user), "/admin/users", body))
}

/// The form that creates a user.
#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    csrf: String,
    name: String,
    role: Role,
    #[serde(default)]
    password: String,
}

/// `POST /admin/users`: create the user; a generated password is shown this once.
pub async fn create_user(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<NewUserForm>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let lang = user.lang;
    let request = CreateUserRequest {
        name: form.name.trim().to_string(),
        role: form.role,
        password: Some(form.password).filter(|p| !p.is_empty()),
    };
    let admin_name = user.session.user.clone();
    let now = state.clock.now();
    let created = match state.blocking(move |service| create_user_as(service, &admin_name, request, now)).await {
        Ok(created) => created,
        Err(e) => return failed(&user, e),
    };
    let body = html! {
        h1 { (lang.t("Pengguna dibuat", "User created")) }
        div.message.ok id="created" { (created.name) " (" (created.role) ")" }
        @if let Some(password) = &created.password {
            p { (lang.t("Kata sandi (hanya ditampilkan sekali ini; berikan secara pribadi):", "Password (shown only this once; hand it over privately):")) }
            p { code id="generated-password" { (password) } }
        }
        p { a href={ "/admin/users/" (created.name) } id="assign-link" { (lang.t("Tetapkan wilayahnya", "Assign their areas")) } }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Pengguna dibuat", "User created"), Some(&user), "/admin/users", body))
}

fn user_name(path: Result<Path<String>, PathRejection>) -> String {
    path.map(|Path(p)| p).unwrap_or_default()
}

/// `GET /admin/users/{name}`: the user's areas and the form that replaces them.
pub async fn user_page(
    State(state): State<AppState>,
    user: WebUser,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let name = user_name(path);
    let lookup = name.clone();
    let view = match state.blocking(move |service| user_view(service, &lookup)).await {
        Ok(view) => view,
        Err(e) => return failed(&user, e),
    };
    let (areas, what, example) = match view.role {
        Role::Enumerator => (&view.villages, lang.t("Desa", "Villages"), "73.14.01.1001"),
        _ => (&view.kecamatan, lang.t("Kecamatan", "Kecamatan"), "73.14.01"),
    };
    let body = html! {
        h1 { (view.name) " " span.muted { "(" (view.role) ")" } }
        div.review-actions {
            form method="post" action={ "/admin/users/" (view.name) "/password" } id="reset-password" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                button type="submit" { (lang.t("Buat kata sandi baru", "Make a new password")) }
            }
            form method="post" action={ "/admin/users/" (view.name) "/role" } id="change-role" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                select name="role" {
                    @for role in [Role::Enumerator, Role::Supervisor, Role::Admin] {
                        option value=(role) selected[role == view.role] { (role) }
                    }
                }
                " " button type="submit" { (lang.t("Ubah peran", "Change role")) }
            }
        }
        @if view.role == Role::Admin {
            p { (lang.t("Admin bekerja di semua wilayah.", "Admins work everywhere.")) }
        } @else {
            h2 { (what) }
            table id="areas" {
                tbody { @for code in areas { tr { td { (code) } td { (area_name(code)) } } } }
            }
            form.filters method="post" action={ "/admin/users/" (view.name) "/areas" } id="assign" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                label { (lang.t("Kode wilayah, satu per baris (menggantikan semua)", "Region codes, one per line (replaces them all)")) br;
                    textarea name="codes" id="codes" rows="6" cols="30" placeholder=(example) { (areas.join("\n")) } }
                br;
                button.primary type="submit" id="save-areas" { (lang.t("Simpan", "Save")) }
            }
        }
    };
    html_page(StatusCode::OK, page(lang, &view.name, Some(&user), "/admin/users", body))
}

/// The form that replaces a user's areas.
#[derive(Debug, Deserialize)]
pub struct AreasForm {
    csrf: String,
    codes: String,
}

/// `POST /admin/users/{name}/areas`: replace the user's villages or kecamatan (every code must be
/// in the region table, or nothing changes and the page names each bad code).
pub async fn set_areas(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Form(form): Form<AreasForm>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let name = user_name(path);
    let codes: Vec<String> =
        form.codes.split(['\n', ',', ';']).map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect();
    let admin_name = user.session.user.clone();
    let now = state.clock.now();
    let target = name.clone();
    let done = state
        .blocking(move |service| {
            let role = service
                .user(&target)?
                .map(|u| u.role)
                .ok_or_else(|| ApiError::NotFound(format!("no user named {target}")))?;
            assign_as(service, &admin_name, &target, role, &codes, now)
        })
        .await;
    match done {
        Ok(_) => Redirect::to(&format!("/admin/users/{name}")).into_response(),
        Err(e) => failed(&user, e),
    }
}

/// `GET /admin/devices`: every registered device, its last contact, and revoke.
pub async fn devices(State(state): State<AppState>, user: WebUser) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let loaded = state.blocking(|service| Ok((service.devices()?, service.users()?))).await;
    let (devices, users) = match loaded {
        Ok(found) => found,
        Err(e) => return failed(&user, e),
    };
    // A device's times on the clock of its user's first area (an admin's own: UTC, labelled so).
    let areas: HashMap<String, String> = users
        .into_iter()
        .filter_map(|u| {
            let first = u.villages.first().or(u.kecamatan.first())?.clone();
            Some((u.name, first))
        })
        .collect();
    let shown = |at: time::OffsetDateTime, user: &str| {
        local_time(&crate::clock::rfc3339(at), areas.get(user).map_or("", String::as_str))
    };
    let body = html! {
        h1 { (lang.t("Perangkat", "Devices")) }
        table id="devices" {
            thead { tr { th { (lang.t("Perangkat", "Device")) } th { (lang.t("Pengguna", "User")) } th { (lang.t("Terakhir terlihat", "Last seen")) } th {} } }
            tbody {
                @for d in &devices {
                    tr {
                        td { (d.name) br; span.muted { (d.id) } }
                        td { (d.user) }
                        td { (shown(d.last_seen_at, &d.user)) }
                        td {
                            @if let Some(at) = d.revoked_at {
                                (lang.t("dicabut", "revoked")) " " (shown(at, &d.user))
                            } @else {
                                form method="post" action={ "/admin/devices/" (d.id) "/revoke" } {
                                    input type="hidden" name="csrf" value=(user.session.csrf);
                                    button.warn type="submit" { (lang.t("Cabut (perangkat hilang)", "Revoke (device lost)")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Perangkat", "Devices"), Some(&user), "/admin/devices", body))
}

/// A form carrying only the anti-forgery token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /admin/devices/{id}/revoke`: as `pilar admin revoke`: the device can no longer sign in,
/// refresh or sync, and wipes itself when it next reaches the server.
pub async fn revoke(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let lang = user.lang;
    let Some(device) = user_name(path).parse::<DeviceId>().ok() else {
        return WebError::for_user(&user, StatusCode::NOT_FOUND, lang.t("Perangkat ini tidak ada.", "No such device."))
            .into_response();
    };
    let now = state.clock.now();
    let admin_name = user.session.user.clone();
    match state.blocking(move |service| Ok(service.revoke_device(device, now)?)).await {
        Ok(Some(record)) => {
            tracing::info!(admin = admin_name, user = record.user, %device, "revoked device");
            Redirect::to("/admin/devices").into_response()
        }
        Ok(None) => {
            WebError::for_user(&user, StatusCode::NOT_FOUND, lang.t("Perangkat ini tidak ada.", "No such device."))
                .into_response()
        }
        Err(e) => failed(&user, e),
    }
}

/// `GET /admin/forms`: published questionnaire versions, the defaults, and the forms that publish
/// a version and choose a default.
pub async fn forms(State(state): State<AppState>, user: WebUser) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let view = match state.blocking(|service| Ok(service.forms_view()?)).await {
        Ok(view) => view,
        Err(e) => return failed(&user, e),
    };
    let body = html! {
        h1 { (lang.t("Kuesioner", "Questionnaires")) }
        table id="form-versions" {
            thead { tr { th { (lang.t("Versi", "Version")) } th { (lang.t("Judul", "Title")) } th { (lang.t("Diterbitkan oleh", "Published by")) } th { (lang.t("Waktu", "When")) } } }
            tbody { @for v in &view.versions { tr { td { (v.key) } td { (v.title) } td { (v.published_by) } td { (local_time(&v.published_at, "")) } } } }
        }
        h2 { (lang.t("Dipakai untuk kunjungan baru", "Used for new visits")) }
        table id="form-defaults" {
            thead { tr { th { (lang.t("Kabupaten", "Kabupaten")) } th { (lang.t("Versi", "Version")) } th { (lang.t("Oleh", "By")) } } }
            tbody {
                @for d in &view.defaults {
                    tr {
                        td { @if d.kabupaten.is_empty() { (lang.t("(semua lainnya)", "(every other)")) } @else { (d.kabupaten) " " (d.name) } }
                        td { (d.form) } td { (d.set_by) }
                    }
                }
            }
        }
        h2 { (lang.t("Terbitkan versi baru", "Publish a new version")) }
        form.filters method="post" action="/admin/forms" enctype="multipart/form-data" id="publish" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            label { (lang.t("Berkas (JSON atau XLSForm .xlsx)", "File (JSON or XLSForm .xlsx)")) " " input type="file" name="file" accept=".json,.xlsx" required; }
            button.primary type="submit" { (lang.t("Terbitkan", "Publish")) }
        }
        h2 { (lang.t("Pilih versi untuk kunjungan baru", "Choose the version for new visits")) }
        form.filters method="post" action="/admin/forms/default" id="default" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            label { (lang.t("Versi", "Version")) " " select name="form" { @for v in &view.versions { option value=(v.key) { (v.key) } } } }
            label { (lang.t("Kabupaten (kosongkan untuk semua)", "Kabupaten (empty for all)")) " " input type="text" name="kabupaten" size="6" placeholder="73.14"; }
            button.primary type="submit" { (lang.t("Simpan", "Save")) }
        }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Kuesioner", "Questionnaires"), Some(&user), "/admin/forms", body))
}

/// `POST /admin/forms` (multipart: `csrf`, `file`): publish a JSON definition or an XLSForm
/// workbook, checked as `pilar form publish` is; the page lists every problem when refused.
pub async fn publish(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    if let Err(refused) = admin_only(&user) {
        return refused.into_response();
    }
    let lang = user.lang;
    let (mut csrf, mut file) = (String::new(), None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().unwrap_or_default().to_string();
                let Ok(bytes) = field.bytes().await else { break };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
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
    let Some((file_name, bytes)) = file else {
        return WebError::for_user(
            &user,
            StatusCode::BAD_REQUEST,
            lang.t("Pilih berkas kuesioner.", "Choose a form file."),
        )
        .into_response();
    };
    let form = if file_name.to_ascii_lowercase().ends_with(".xlsx") {
        pilar_xlsform::read_xlsform(&bytes).map_err(|e| e.to_string())
    } else {
        std::str::from_utf8(&bytes)
            .map_err(|_| "the file is not UTF-8 text; give the JSON definition or an .xlsx XLSForm".to_string())
            .and_then(|text| FormDefinition::from_json(text).map_err(|e| e.to_string()))
    };
    let form = match form {
        Ok(form) => form,
        Err(report) => return report_page(&user, &file_name, &report),
    };
    let by = user.session.user.clone();
    let now = state.clock.now();
    match state.blocking(move |service| Ok(service.publish_form(&form, &by, now)?)).await {
        Ok(_) => Redirect::to("/admin/forms").into_response(),
        Err(e) => report_page(&user, &file_name, &e.to_string()),
    }
}

fn report_page(user: &WebUser, file_name: &str, report: &str) -> Response {
    let lang = user.lang;
    let body = html! {
        h1 { (lang.t("Tidak diterbitkan", "Not published")) }
        p { (file_name) }
        div.message.error id="error" { pre { (report) } }
        p { a href="/admin/forms" { (lang.t("Kembali", "Back")) } }
    };
    html_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        page(lang, lang.t("Tidak diterbitkan", "Not published"), Some(user), "/admin/forms", body),
    )
}

/// The form that chooses a default version.
#[derive(Debug, Deserialize)]
pub struct DefaultForm {
    csrf: String,
    form: String,
    #[serde(default)]
    kabupaten: String,
}

/// `POST /admin/forms/default`: the version new visits use, in one kabupaten or everywhere else.
pub async fn set_default(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<DefaultForm>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let kabupaten = Some(form.kabupaten.trim().to_string()).filter(|k| !k.is_empty());
    if let Some(k) = &kabupaten
        && RegencyCode::parse(k).is_err()
    {
        return WebError::for_user(
            &user,
            StatusCode::BAD_REQUEST,
            format!("{k:?}: not a kabupaten code such as 73.14"),
        )
        .into_response();
    }
    let by = user.session.user.clone();
    let now = state.clock.now();
    match state.blocking(move |service| Ok(service.set_form_default(kabupaten.as_deref(), &form.form, &by, now)?)).await
    {
        Ok(_) => Redirect::to("/admin/forms").into_response(),
        Err(e) => failed(&user, e),
    }
}

/// `POST /admin/users/{name}/password`: a generated password, shown this once; the user's web
/// sessions end.
pub async fn reset_password(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let lang = user.lang;
    let name = user_name(path);
    let admin_name = user.session.user.clone();
    let done = state.blocking(move |service| reset_password_as(service, &admin_name, &name, None)).await;
    let created = match done {
        Ok(created) => created,
        Err(e) => return failed(&user, e),
    };
    let body = html! {
        h1 { (created.name) }
        p { (lang.t("Kata sandi baru (hanya ditampilkan sekali ini; berikan secara pribadi):", "New password (shown only this once; hand it over privately):")) }
        p { code id="generated-password" { (created.password.unwrap_or_default()) } }
        p { a href={ "/admin/users/" (created.name) } { (lang.t("Kembali", "Back")) } }
    };
    html_page(StatusCode::OK, page(lang, lang.t("Kata sandi baru", "New password"), Some(&user), "/admin/users", body))
}

/// The role form.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: Role,
}

/// `POST /admin/users/{name}/role`: change the role (refused while the user holds areas of the old
/// one); the user's web sessions end.
pub async fn change_role(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Form(form): Form<RoleForm>,
) -> Response {
    if let Err(refused) = check_admin_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let name = user_name(path);
    let admin_name = user.session.user.clone();
    let target = name.clone();
    match state.blocking(move |service| change_role_as(service, &admin_name, &target, form.role)).await {
        Ok(_) => Redirect::to(&format!("/admin/users/{name}")).into_response(),
        Err(e) => failed(&user, e),
    }
}
