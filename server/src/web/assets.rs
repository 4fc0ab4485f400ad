//! The stylesheet, compiled into the binary: offices have poor links and no CDN is reached.

use axum::http::header;
use axum::response::IntoResponse;

/// The page's only stylesheet: plain CSS that old browsers read, sized for 1366×768.
const STYLESHEET: &str = include_str!("assets/pilar.css");

/// `GET /assets/pilar.css`, cached for a day (a new server version may change it).
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], STYLESHEET)
}
