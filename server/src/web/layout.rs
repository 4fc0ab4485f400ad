//! The page frame every page shares, the language switch, and error pages.

use super::session::{LANG_COOKIE, WebUser, encode};
use crate::error::ApiError;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use sync_core::ids::{LocalZone, local_time_text};

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
                        a href={ "/language?to=" (other.0) "&back=" (encode(path)) } { (other.1) }
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

/// Why a page could not be shown, as the page that says so: in the page's language, inside the
/// usual frame (with the navigation when someone is signed in), the server's own words kept as
/// the detail under it.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    /// What the reader is told, in the page's language.
    message: String,
    /// The server's own message (English, as the API says it) under the sentence, when the
    /// sentence is the page's own.
    detail: Option<String>,
    lang: Lang,
    /// The signed-in user the frame shows; `None` before sign-in. Boxed: every page handler's
    /// `Result` carries this type, and the user is large.
    user: Option<Box<WebUser>>,
}

impl WebError {
    /// A page with `status` and a message for someone not signed in (yet): the frame without the
    /// navigation.
    pub fn new(lang: Lang, status: StatusCode, message: impl Into<String>) -> WebError {
        WebError { status, message: message.into(), detail: None, lang, user: None }
    }

    /// A page with `status` and a message (already in the user's language) for a signed-in user:
    /// the frame with their navigation.
    pub fn for_user(user: &WebUser, status: StatusCode, message: impl Into<String>) -> WebError {
        WebError { status, message: message.into(), detail: None, lang: user.lang, user: Some(Box::new(user.clone())) }
    }

    /// The same page, shown to a signed-in user (with their navigation).
    pub fn signed_in(self, user: &WebUser) -> WebError {
        WebError { user: Some(Box::new(user.clone())), ..self }
    }

    /// The page for a refusal of the `Service` (the API's error): its status from the one status
    /// table; for the common ones (403, outside the user's area; 404, not found) a sentence in the
    /// user's language with the server's message as the detail. An internal error is logged here,
    /// once, and the page says only that the server failed.
    pub fn from_api(user: &WebUser, e: &ApiError) -> WebError {
        WebError::api(user.lang, Some(user), e)
    }

    /// [`WebError::from_api`] for a request of no one signed in (the sign-in itself).
    pub fn from_api_signed_out(lang: Lang, e: &ApiError) -> WebError {
        WebError::api(lang, None, e)
    }

    fn api(lang: Lang, user: Option<&WebUser>, e: &ApiError) -> WebError {
        let (status, _) = e.status_and_code();
        if let ApiError::Internal(cause) = e {
            // The one place the web page's internal errors are logged (the API's are logged in
            // `ApiError::into_response`).
            tracing::error!(error = format!("{cause:#}"), "internal error on the web page");
        }
        let sentence = match status {
            StatusCode::FORBIDDEN => Some(lang.t(
                "Ini di luar wilayah tugas Anda: supervisor wilayah itu yang menanganinya.",
                "This is outside your area: that area's own supervisor handles it.",
            )),
            StatusCode::NOT_FOUND => Some(lang.t(
                "Yang diminta tidak ada di server: mungkin sudah digabung, atau alamatnya salah.",
                "What was asked for is not on the server: it may have been merged away, or the address is wrong.",
            )),
            StatusCode::INTERNAL_SERVER_ERROR => Some(lang.t(
                "Server gagal menangani permintaan ini. Coba lagi nanti, dan beri tahu admin jika terulang.",
                "The server failed to handle this request. Try again later, and tell the admin if it persists.",
            )),
            _ => None,
        };
        let server_words = e.body().message;
        let (message, detail) = match sentence {
            // An internal error's words say nothing the sentence does not.
            Some(sentence) if status == StatusCode::INTERNAL_SERVER_ERROR => (sentence.to_string(), None),
            Some(sentence) => (sentence.to_string(), Some(server_words)),
            None => (server_words, None),
        };
        WebError { status, message, detail, lang, user: user.map(|user| Box::new(user.clone())) }
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
        // The language switch comes back to the page asked for when it was a page (a GET);
        // after a refused form, to the start.
        let back = self.user.as_ref().map_or("/", |u| u.page.as_str());
        let body = page(
            lang,
            title,
            self.user.as_deref(),
            back,
            html! {
                h1 { (title) }
                div.message.error id="error" { (self.message) }
                @if let Some(detail) = &self.detail {
                    p.muted id="error-detail" { (lang.t("Rincian dari server", "The server's detail")) ": " (detail) }
                }
                p { a href="/households" { (lang.t("Kembali ke daftar rumah tangga", "Back to the households")) } }
            },
        );
        html_page(self.status, body)
    }
}

/// A stored time (RFC 3339) on the wall clock of the area it belongs to (a village, kecamatan or
/// kabupaten code: its province names the zone), as `2026-12-01 21:19 WITA`; labelled `UTC`
/// when the area is unknown (e.g. `""`).
pub fn local_time(stored: &str, area: &str) -> String {
    local_time_text(stored, LocalZone::of_region_text(area))
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
