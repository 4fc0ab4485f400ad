//! Sign-in and sign-out for browsers, the session cookie, and the checks every state-changing
//! form passes.
//!
//! The cookie `pilar_session` holds a random token (the database keeps only its SHA-256,
//! `service::web_sessions`): HttpOnly (no script reads it), SameSite=Strict (no other site's page
//! sends it), Secure when the page is served over TLS (`X-Forwarded-Proto: https` from the proxy
//! in front). A sign-in is throttled exactly as the API's login (the same counts,
//! `routes::login::verify_login`); an enumerator's right password is refused with a message
//! saying where they work instead. Every POST but the sign-in carries the session's anti-forgery
//! token, and a POST whose `Origin` (or `Sec-Fetch-Site`) says it came from another site is
//! refused before anything is read or written.

use super::layout::{Lang, WebError, page};
use crate::auth::Caller;
use crate::routes::login::{Attempt, verify_login};
use crate::service::accounts::{DeviceLogin, DeviceRegistration};
use crate::service::web_sessions::{WEB_SESSION_LIFETIME, WebSession, may_use_office};
use crate::state::AppState;
use crate::throttle::ClientAddress;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use sync_core::model::DeviceId;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pilar_session";
/// The language cookie's name (`en` for English).
pub const LANG_COOKIE: &str = "pilar_lang";

/// The value of cookie `name` in the request, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the browser reached the server over TLS (the proxy in front says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A signed-in supervisor or admin, as every page but the sign-in takes it: the session, the
/// caller the `Service` scope rules take, and the page's language.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// The session (user, role, anti-forgery token).
    pub session: WebSession,
    /// The same caller an API request of this user would be (its device is the user's web device).
    pub caller: Caller,
    /// The page's language.
    pub lang: Lang,
    /// The page asked for (path and query) when the request was a `GET`, else `/`: where the
    /// language switch of an error page comes back to (a form's address is no page to return to).
    pub page: String,
}

/// The Automerge actor of a user's changes made on the web page: one per user, derived from the
/// name, so it needs no table; server-side writes load the latest document in their write
/// transaction, so two sessions of one user never reuse a sequence number.
pub fn web_device(user: &str) -> DeviceId {
    let digest = Sha256::digest(format!("pilar-web-page:{user}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    DeviceId(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<WebUser, Response> {
        let lang = Lang::of(&parts.headers);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let to_login = || Redirect::to(&format!("/login?next={}", encode(&path))).into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_login()) };
        let now = state.clock.now();
        let session = state
            .blocking(move |service| Ok(service.web_session(&token, now)?))
            .await
            .map_err(|e| WebError::from_api_signed_out(lang, &e).into_response())?;
        let Some(session) = session else { return Err(to_login()) };
        let caller = Caller { user: session.user.clone(), role: session.role, device: web_device(&session.user) };
        let page = if parts.method == axum::http::Method::GET { path } else { "/".to_string() };
        Ok(WebUser { session, caller, lang, page })
    }
}

/// Percent-encode text for a query value (`/` kept, as a query may hold it).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path on this server to go to after sign-in; anything else (another site) is `/`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

/// Refuse a POST that came from another site: its `Origin` names another host (or `null`), or
/// the browser says `Sec-Fetch-Site: cross-site`. A request without either (an old browser) is
/// judged by its anti-forgery token alone.
pub fn check_origin(headers: &HeaderMap, lang: Lang) -> Result<(), WebError> {
    let refused = || {
        WebError::new(
            lang,
            StatusCode::FORBIDDEN,
            lang.t(
                "Permintaan ditolak: formulir ini tidak dikirim dari halaman Pilar ini. Buka halaman Pilar lalu coba lagi.",
                "Refused: this form was not sent from this Pilar page. Open the Pilar page and try again.",
            ),
        )
    };
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(refused());
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return Err(refused());
    }
    Ok(())
}

/// The checks of every state-changing form of a signed-in user: same origin, and the session's
/// anti-forgery token (compared in constant time).
pub fn check_form(headers: &HeaderMap, user: &WebUser, csrf: &str) -> Result<(), WebError> {
    check_origin(headers, user.lang).map_err(|refused| refused.signed_in(user))?;
    let expected = user.session.csrf.as_bytes();
    let given = csrf.as_bytes();
    let same = expected.len() == given.len() && expected.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(WebError::for_user(
            user,
            StatusCode::FORBIDDEN,
            user.lang.t(
                "Permintaan ditolak: token formulir tidak cocok (halaman sudah lama terbuka atau dikirim dari situs lain). Muat ulang halaman lalu coba lagi.",
                "Refused: the form's token does not match (the page was open too long, or another site sent it). Reload the page and try again.",
            ),
        ));
    }
    Ok(())
}

/// Refuse (403 page) a signed-in user who is not an admin.
pub fn admin_only(user: &WebUser) -> Result<(), WebError> {
    if user.session.role == sync_core::protocol::Role::Admin {
        return Ok(());
    }
    Err(WebError::for_user(
        user,
        StatusCode::FORBIDDEN,
        user.lang.t("Halaman ini hanya untuk admin.", "This page is for admins only."),
    ))
}

/// The checks of an admin's state-changing form: an admin, then [`check_form`].
pub fn check_admin_form(headers: &HeaderMap, user: &WebUser, csrf: &str) -> Result<(), WebError> {
    admin_only(user)?;
    check_form(headers, user, csrf)
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// The sign-in form of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn login_form(lang: Lang, next: &str, user: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = page(
        lang,
        lang.t("Masuk", "Sign in"),
        None,
        "/login",
        html! {
            div.login {
                h1 { (lang.t("Masuk ke Pilar", "Sign in to Pilar")) }
                p.muted { (lang.t("Untuk supervisor kecamatan dan admin Dinas Sosial.", "For kecamatan supervisors and Dinas Sosial admins.")) }
                @if let Some(error) = error {
                    div.message.error id="error" { (error) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label for="user" { (lang.t("Nama pengguna", "User name")) }
                    input type="text" id="user" name="user" value=(user) autocomplete="username" required autofocus;
                    label for="password" { (lang.t("Kata sandi", "Password")) }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    button.primary type="submit" id="sign-in" { (lang.t("Masuk", "Sign in")) }
                }
            }
        },
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        body.into_string(),
    )
        .into_response()
}

/// `GET /login`.
pub async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    login_form(Lang::of(&headers), &local_path(q.next.as_deref()), "", None, StatusCode::OK)
}

/// `POST /login`: check the password (throttled like the API's login), refuse enumerators with a
/// clear message, start a session and go where the user was going.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(refused) = check_origin(&headers, lang) {
        return refused.into_response();
    }
    let next = local_path(form.next.as_deref());
    let name = crate::auth::is_valid_user_name(&form.user).then(|| form.user.clone());
    let throttle = Arc::clone(&state.login_throttle);
    let clock = Arc::clone(&state.clock);
    let password = form.password;
    let outcome = state
        .blocking(move |service| {
            let subjects = throttle.subjects(name.as_deref(), address);
            let attempt = Attempt { name, address, subjects };
            let user = verify_login(service, &throttle, clock.as_ref(), &attempt, &password, "the web page")?;
            if !may_use_office(user.role) {
                tracing::warn!(user = user.name, "web sign-in refused: an enumerator");
                return Ok(Err(user.name));
            }
            let now = clock.now();
            let device = web_device(&user.name);
            let (_, refresh_hash) = crate::auth::new_refresh_token();
            let login = DeviceLogin {
                device,
                user: &user.name,
                name: "halaman kantor (web)",
                refresh_hash: &refresh_hash,
                now,
            };
            if service.register_device(&login)? == DeviceRegistration::Revoked {
                return Err(crate::error::ApiError::DeviceRevoked);
            }
            let (token, _) = service.start_web_session(&user, now)?;
            tracing::info!(user = user.name, role = %user.role, "web sign-in");
            Ok(Ok(token))
        })
        .await;
    let user_typed = form.user.clone();
    match outcome {
        Ok(Ok(token)) => {
            let secure = if over_tls(&headers) { "; Secure" } else { "" };
            let max_age = WEB_SESSION_LIFETIME.whole_seconds();
            let cookie =
                format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Ok(Err(_)) => login_form(
            lang,
            &next,
            &user_typed,
            Some(lang.t(
                "Akun enumerator tidak dapat masuk ke halaman kantor. Gunakan aplikasi Pilar di tablet Anda.",
                "Enumerator accounts cannot sign in to the office page. Use the Pilar app on your tablet.",
            )),
            StatusCode::FORBIDDEN,
        ),
        Err(crate::error::ApiError::TooManyAttempts { retry_after }) => login_form(
            lang,
            &next,
            &user_typed,
            Some(&match lang {
                Lang::Id => format!("Terlalu banyak percobaan masuk. Coba lagi dalam {retry_after} detik."),
                Lang::En => format!("Too many sign-in attempts. Try again in {retry_after} seconds."),
            }),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(crate::error::ApiError::BadCredentials) => login_form(
            lang,
            &next,
            &user_typed,
            Some(lang.t(
                "Nama pengguna atau kata sandi salah. Periksa keduanya lalu coba lagi.",
                "Unknown user or wrong password. Check both and try again.",
            )),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => WebError::from_api_signed_out(lang, &e).into_response(),
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`: end the session and forget the cookie.
pub async fn logout(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = check_form(&headers, &user, &form.csrf) {
        return refused.into_response();
    }
    let hash = user.session.token_hash.clone();
    if let Err(e) = state.blocking(move |service| Ok(service.end_web_session(&hash)?)).await {
        return WebError::from_api(&user, &e).into_response();
    }
    tracing::info!(user = user.session.user, "web sign-out");
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
