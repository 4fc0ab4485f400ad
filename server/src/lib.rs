//! `pilar-server`: the sync server. Accounts, village scopes and (next) the sync endpoints, over
//! HTTP with axum, on SQLite.
//!
//! Crate map:
//! - [`config`]: flags and environment variables.
//! - [`state`]: the shared [`AppState`], first-start set-up, and [`AppState::blocking`], the only
//!   way handlers reach storage (tokio's blocking pool, never an async worker).
//! - [`error`]: [`ApiError`], the one error type, and its status table.
//! - [`auth`]: passwords, tokens, and the `Caller` / `Admin` extractors.
//! - [`routes`]: one file per area of the HTTP API (`/health`, `/v1/login`, `/v1/admin/…`).
//! - [`storage`]: the object-safe `Storage` trait and its SQLite backend.
//!
//! This crate never logs NIK, names, answers, passwords or tokens: only user names and device ids.

pub mod auth;
pub mod config;
pub mod error;
pub mod roster;
pub mod routes;
pub mod state;
pub mod storage;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The whole HTTP API for `state`: `/health`, the `/v1` routes, JSON errors for unknown paths and
/// methods, the body-size limit, request logs and panic containment.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.settings.max_body_bytes;
    Router::new()
        .route("/health", get(routes::health::health))
        .nest("/v1", routes::v1())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(
            TraceLayer::new_for_http()
                // Method and path only: query strings and headers (tokens) stay out of the log.
                .make_span_with(|request: &Request<_>| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .on_failure(()),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// Serve `router(state)` on `listener` until SIGTERM or ctrl-c, then finish the requests in
/// flight and return.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; check the server URL and the path (the API lives under /v1)".to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload may quote request data; it is not logged.
    ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
