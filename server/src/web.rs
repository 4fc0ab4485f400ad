//! The office web page (issue 18): what a kecamatan supervisor or a Dinas Sosial admin does with
//! `pilar`, in a browser, served by `pilar-server` itself. HTML is written on the server (maud,
//! escaped by default) with no script needed to use it, every asset is compiled into the binary,
//! and every page's data comes from the same `Service` functions as the API, with the same scope
//! rules (`Service::areas`, `Service::may_act`).
//!
//! - `session`: sign-in and sign-out, the session cookie (HttpOnly, SameSite=Strict, Secure over
//!   TLS), the [`Office`](session::Office) extractor every page takes, and the checks every
//!   state-changing form passes (its anti-forgery token and the request's origin).
//! - `layout`: the page frame, the language switch (Bahasa Indonesia, English), error pages.
//! - `households`: the households table (search, filters, pages), a household's page (answers
//!   with code labels, members, visits, each field's history, the review thread) and review.
//! - `supervise`: the dashboard, the conflict inbox, suspected duplicates side by side.
//! - `admin`: users and their areas, devices, questionnaire versions (admins only).
//! - `roster`: roster import (upload, the row-by-row report, commit), with `pilar-roster`.
//! - `export`: the XLSX/CSV download, the files `pilar export` writes (`pilar-export`).
//! - `assets`: the stylesheet.

mod admin;
mod assets;
mod export;
mod households;
mod layout;
mod roster;
mod session;
mod supervise;

pub use layout::Lang;
pub use session::{LANG_COOKIE, SESSION_COOKIE};

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The web page's routes, beside `/v1` and `/health`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(households::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/language", get(layout::switch_language))
        .route("/households", get(households::list))
        .route("/households/{id}", get(households::show))
        .route("/households/{id}/review", post(households::review))
        .route("/households/{id}/resolve", post(supervise::resolve))
        .route("/dashboard", get(supervise::dashboard))
        .route("/conflicts", get(supervise::conflicts))
        .route("/duplicates", get(supervise::duplicates))
        .route("/duplicates/merge", post(supervise::merge))
        .route("/duplicates/dismiss", post(supervise::dismiss))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{name}", get(admin::user_page))
        .route("/admin/users/{name}/areas", post(admin::set_areas))
        .route("/admin/users/{name}/password", post(admin::reset_password))
        .route("/admin/users/{name}/role", post(admin::change_role))
        .route("/admin/devices", get(admin::devices))
        .route("/admin/devices/{id}/revoke", post(admin::revoke))
        .route("/admin/forms", get(admin::forms).post(admin::publish))
        .route("/admin/forms/default", post(admin::set_default))
        .route("/admin/roster", get(roster::roster_page).post(roster::check))
        .route("/admin/roster/{import}/commit", post(roster::commit))
        .route("/export", get(export::export))
        .route("/assets/pilar.css", get(assets::stylesheet))
}

/// The page for an address the server does not have, in the reader's language.
pub(crate) fn not_found_page(headers: &axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let lang = layout::Lang::of(headers);
    layout::WebError::new(
        lang,
        axum::http::StatusCode::NOT_FOUND,
        lang.t("Halaman ini tidak ada. Periksa alamatnya.", "There is no such page. Check the address."),
    )
    .into_response()
}
