//! `pilar-server`: the sync server. Accounts, village scopes, sync, supervision, roster imports
//! and exports, over HTTP with axum.
//!
//! Crate map (three layers; ARCHITECTURE.md has the entry points):
//! - HTTP: [`config`] (flags and environment variables), [`clock`] (the injected clock),
//!   [`state`] (the shared [`AppState`], first-start set-up, and [`AppState::blocking`], the only
//!   way handlers reach the use cases: tokio's blocking pool, never an async worker), [`error`]
//!   ([`ApiError`] and its status table), [`auth`] (passwords, tokens, the `Caller` / `Admin`
//!   extractors), [`inflate`] (the cap on bytes being decompressed at once), [`throttle`] (the
//!   client address failed logins are counted by), [`routes`] (one file per area of the HTTP API).
//! - [`service`]: every use case, written once on the storage seam.
//! - [`storage`]: the seam (`Database`, `ReadTx`, `Tx`), its SQLite backend, the conformance
//!   suite every backend runs.
//! - [`postgres_schema`]: the PostgreSQL schema (`server/migrations/postgres/`) and its migration
//!   runner, for the PostgreSQL backend.
//! - [`migrate`]: `pilar-server migrate`, a whole server copied from SQLite to PostgreSQL.
//!
//! This crate never logs NIK, names, answers, passwords or tokens: only user names and device ids.

pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod inflate;
pub mod migrate;
pub mod postgres_schema;
pub mod routes;
pub mod service;
pub mod state;
pub mod storage;
pub mod throttle;
pub mod web;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
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
        .merge(web::routes())
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
        // Outermost: whatever produced an error response, it leaves as the JSON error body.
        .layer(axum::middleware::map_response(error::json_error_bodies))
        .with_state(state)
}

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Requests still running when the grace period ended, abandoned by the exit (their devices
    /// retry: nothing is acknowledged before its transaction commits).
    pub cut: usize,
}

/// Serve `router(state)` on `listener` until SIGTERM or ctrl-c, then stop as [`serve_until`] does.
pub async fn serve(listener: TcpListener, state: AppState, grace: Duration) -> std::io::Result<Stopped> {
    serve_until(listener, state, grace, shutdown_signal()).await
}

/// Serve `router(state)` on `listener` until `stop` completes; then refuse new connections, close
/// idle ones, and give the requests in flight `grace` to finish (a second SIGTERM or ctrl-c ends
/// the wait). Returns when all have finished or the wait ends. Requests still running then are
/// not awaited: the caller exits and they are cut, which is safe (see [`Stopped::cut`]); so is
/// background work on the blocking pool (the caller must not wait for it either).
pub async fn serve_until(
    listener: TcpListener,
    state: AppState,
    grace: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Stopped> {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&in_flight);
    let app = router(state).layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: Next| {
        let guard = InFlight::enter(&counter);
        async move {
            let response = next.run(request).await;
            drop(guard);
            response
        }
    }));
    let (stopping, mut stopping_seen) = tokio::sync::watch::channel(false);
    let signal = async move {
        stop.await;
        let _ = stopping.send(true);
    };
    // The peer address reaches handlers as `ConnectInfo` (login throttling counts per address).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
    let running = Arc::clone(&in_flight);
    let deadline = async move {
        if stopping_seen.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
        let running = running.load(Ordering::SeqCst);
        tracing::info!(in_flight = running, grace_seconds = grace.as_secs(), "shutting down: new connections refused");
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            () = shutdown_signal() => tracing::info!("asked again: stopping now"),
        }
    };
    tokio::select! {
        served = server => served.map(|()| Stopped { cut: 0 }),
        () = deadline => Ok(Stopped { cut: in_flight.load(Ordering::SeqCst) }),
    }
}

/// Counts one request in flight from the moment its head is read until its handler has answered
/// (or was dropped), for the shutdown report.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An unknown path: the API's JSON error, except for a browser (it accepts `text/html`) outside
/// `/v1`, which gets the office web page's "not found" page in its reader's language.
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let path = uri.path();
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !browser || path == "/v1" || path.starts_with("/v1/") {
        return ApiError::NotFound(
            "no such endpoint; check the server URL and the path (the API lives under /v1)".to_string(),
        )
        .into_response();
    }
    web::not_found_page(&headers)
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload may quote request data; it is not logged.
    ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
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
}
