//! The page frame every page shares, the language switch, and error pages.

use super::session::{LANG_COOKIE, WebUser};
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

/// The page's language: Bahasa Indonesia unless the browser chose English with the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Bahasa Indonesia, what supervisors read.
    Id,
    /// English.
    En,
}

impl Lang {
    /// The language the `pilar_lang` cookie names.
    pub fn of(headers: &HeaderMap) -> Lang {
        match super::session::cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Id,
        }
    }

    /// The text in this language: each call site carries both, so no string is ever missing.
    pub fn t<'a>(self, id: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }
}

/// A whole page: the frame (navigation, who is signed in, sign-out, the language switch) around
/// `body`.
pub fn page(lang: Lang, title: &str, user: Option<&WebUser>, path: &str, body: Markup) -> Markup {
    let other = match lang {
        Lang::Id => ("en", "English"),
        Lang::En => ("id", "Bahasa Indonesia"),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Pilar" }
                link rel="stylesheet" href="/assets/pilar.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Pilar" }
                    @if user.is_some() {
                        a href="/dashboard" { (lang.t("Ringkasan", "Dashboard")) }
                        a href="/households" { (lang.t("Rumah tangga", "Households")) }
                        a href="/conflicts" { (lang.t("Konflik", "Conflicts")) }
                        a href="/duplicates" { (lang.t("Dugaan ganda", "Duplicates")) }
                    }
                    @if user.is_some_and(|u| u.session.role == sync_core::protocol::Role::Admin) {
                        a href="/admin/users" { (lang.t("Pengguna", "Users")) }
                        a href="/admin/devices" { (lang.t("Perangkat", "Devices")) }
                        a href="/admin/roster" { (lang.t("Impor daftar", "Roster import")) }
                        a href="/admin/forms" { (lang.t("Kuesioner", "Questionnaires")) }
                    }
                    span.who {
                        a href={ "/language?to=" (other.0) "&back=" (path) } { (other.1) }
                        @if let Some(user) = user {
                            span { (user.session.user) " (" (role_label(lang, user)) ") " }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(user.session.csrf);
                                button type="submit" id="logout" { (lang.t("Keluar", "Sign out")) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn role_label(lang: Lang, user: &WebUser) -> &'static str {
    match user.session.role {
        sync_core::protocol::Role::Admin => lang.t("admin", "admin"),
        _ => lang.t("supervisor", "supervisor"),
    }
}

/// A page as the answer: HTML, never cached (it shows one user's data).
pub fn html_page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        markup.into_string(),
    )
        .into_response()
}

/// Why a page could not be shown, as the page that says so.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    message: String,
    lang: Lang,
}

impl WebError {
    /// A page with `status` and a message for the person reading it.
    pub fn new(lang: Lang, status: StatusCode, message: impl Into<String>) -> WebError {
        WebError { status, message: message.into(), lang }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let lang = self.lang;
        let title = match self.status {
            StatusCode::FORBIDDEN => lang.t("Tidak diizinkan", "Not allowed"),
            StatusCode::NOT_FOUND => lang.t("Tidak ditemukan", "Not found"),
            _ => lang.t("Tidak dapat dilakukan", "Could not be done"),
        };
        let body = page(
            lang,
            title,
            None,
            "/",
            html! {
                h1 { (title) }
                div.message.error id="error" { (self.message) }
                p { a href="/households" { (lang.t("Kembali ke daftar rumah tangga", "Back to the households")) } }
            },
        );
        (self.status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.into_string()).into_response()
    }
}

/// Query of `GET /language`.
#[derive(Debug, Deserialize)]
pub struct LanguageQuery {
    to: String,
    #[serde(default)]
    back: Option<String>,
}

/// `GET /language?to=en&back=/households`: remember the language in a cookie and go back (a
/// preference, not a state change of data: no anti-forgery token needed).
pub async fn switch_language(Query(q): Query<LanguageQuery>) -> Response {
    let lang = if q.to == "en" { "en" } else { "id" };
    // Only a path on this server, never another site.
    let back = q.back.filter(|b| b.starts_with('/') && !b.starts_with("//")).unwrap_or_else(|| "/".into());
    let cookie = format!("{LANG_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response()
}
