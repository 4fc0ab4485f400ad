//! The HTTP API's route table under `/v1` (one file per area under `routes/`), and the extractors
//! whose rejections are [`ApiError`]s, so a malformed request gets an `ErrorBody`, not axum's
//! plain-text default: [`ApiJson`] (JSON bodies), [`ApiQuery`] (query strings) and [`ApiBytes`]
//! (raw bodies, e.g. the compressed sync bodies).

pub mod admin;
pub mod export;
pub mod forms;
pub mod health;
pub mod login;
pub mod photos;
pub mod roster;
pub mod supervise;
pub mod sync;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The `/v1` routes. A new endpoint is one `.route(...)` line here and a handler in `routes/`.
pub fn v1() -> Router<AppState> {
    Router::new()
        .route("/login", post(login::login))
        .route("/token/refresh", post(login::refresh))
        .route("/admin/users", get(admin::list_users).post(admin::create_user))
        .route("/admin/users/{name}/villages", put(admin::set_villages))
        .route("/admin/users/{name}/kecamatan", put(admin::set_kecamatan))
        .route("/admin/users/{name}/password", post(admin::reset_password))
        .route("/admin/users/{name}/role", put(admin::change_role))
        .route("/admin/devices", get(admin::list_devices))
        .route("/admin/devices/{id}/revoke", post(admin::revoke_device))
        .route("/admin/forms", post(forms::publish))
        .route("/admin/forms/default", put(forms::set_default))
        .route("/forms", get(forms::list))
        .route("/forms/{key}", get(forms::definition))
        .route("/sync", post(sync::sync))
        .route("/packs/{village}", get(sync::pack))
        .route("/documents", post(sync::documents))
        .route("/sync/forms", post(sync::forms))
        .route("/roster/{import}/chunks/{n}", put(roster::stage))
        .route("/roster/{import}/commit", post(roster::commit))
        .route("/export", get(export::export))
        .route("/review", get(supervise::review_list))
        .route("/households", get(supervise::find_households))
        .route("/households/{id}/review", post(supervise::review))
        .route("/conflicts", get(supervise::conflicts))
        .route("/households/{id}/resolve", post(supervise::resolve))
        .route("/duplicates", get(supervise::duplicates))
        .route("/duplicates/merge", post(supervise::fold))
        .route("/duplicates/dismiss", post(supervise::dismiss))
        .route("/progress", get(supervise::progress))
        .route("/households/{id}/photos", get(photos::list))
        .route("/households/{id}/photos/{sha256}", get(photos::photo).put(photos::chunk))
        .route("/households/{id}/photos/{sha256}/status", get(photos::status))
}

/// A JSON request body or response. As an extractor (always the last argument of a handler) it
/// turns every rejection into an [`ApiError`]: bad syntax or shape → 400, missing content type →
/// 415, over the body limit → 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<ApiJson<T>, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => match ApiError::from(rejection) {
                ApiError::PayloadTooLarge { .. } => {
                    Err(ApiError::PayloadTooLarge { limit: Some(state.settings.max_body_bytes) })
                }
                other => Err(other),
            },
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string, parsed into `T`; a malformed one (or an unknown parameter, when `T` denies
/// them) is 400 `malformed_request` with the JSON error body.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// A whole request body as bytes, within the body limit (413 `payload_too_large` with the JSON
/// error body otherwise).
#[derive(Debug, Clone)]
pub struct ApiBytes(pub Bytes);

impl FromRequest<AppState> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<ApiBytes, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(ApiBytes(bytes)),
            Err(rejection) => match ApiError::from(rejection) {
                ApiError::PayloadTooLarge { .. } => {
                    Err(ApiError::PayloadTooLarge { limit: Some(state.settings.max_body_bytes) })
                }
                other => Err(other),
            },
        }
    }
}
