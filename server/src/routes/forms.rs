//! `/v1/forms…`: published questionnaire versions and the defaults, readable by every signed-in
//! caller (a form holds no personal data), and `/v1/admin/forms…`: publishing a version and
//! choosing which one new visits use, for admins only.

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::routes::{ApiBytes, ApiJson};
use crate::service::forms::FormsError;
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sync_core::form::FormDefinition;
use sync_core::protocol::{FormDefaultRequest, FormDefaultView, FormsView, PublishedForm};

impl From<FormsError> for ApiError {
    fn from(e: FormsError) -> ApiError {
        let message = e.to_string();
        match e {
            FormsError::Storage(e) => e.into(),
            FormsError::VersionTaken { .. } => ApiError::Conflict { code: "form_version_exists", message },
            FormsError::NotNewest { .. } => ApiError::Conflict { code: "form_not_newest", message },
            FormsError::Incompatible { .. } => ApiError::Conflict { code: "form_incompatible", message },
            FormsError::UnknownForm(_) => ApiError::NotFound(message),
            FormsError::BadKabupaten(_) => ApiError::Invalid(message),
        }
    }
}

/// Every published version and the defaults.
pub async fn list(State(state): State<AppState>, _: Caller) -> Result<ApiJson<FormsView>, ApiError> {
    Ok(ApiJson(state.blocking(|service| Ok(service.forms_view()?)).await?))
}

/// One published version's definition (JSON), by `id@version`.
pub async fn definition(
    State(state): State<AppState>,
    _: Caller,
    key: Result<Path<String>, PathRejection>,
) -> Result<ApiJson<FormDefinition>, ApiError> {
    let Path(key) = key?;
    let lookup = key.clone();
    match state.blocking(move |service| Ok(service.form_definition(&lookup)?)).await? {
        Some(form) => Ok(ApiJson(form.as_ref().clone())),
        None => Err(FormsError::UnknownForm(key).into()),
    }
}

/// Publish a version: the body is a form definition (JSON). 201 when stored, 200 when this very
/// definition was published before (a retry), 409 with the report when refused.
pub async fn publish(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, ApiJson<PublishedForm>), ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::Malformed("the form definition is not UTF-8 text; send the JSON file".into()))?;
    let form = FormDefinition::from_json(text).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let now = state.clock.now();
    let published = state.blocking(move |service| Ok(service.publish_form(&form, &admin.user, now)?)).await?;
    let status = if published.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, ApiJson(published)))
}

/// Choose the version new visits use, in one kabupaten or everywhere else.
pub async fn set_default(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(request): ApiJson<FormDefaultRequest>,
) -> Result<ApiJson<FormDefaultView>, ApiError> {
    let now = state.clock.now();
    let view = state
        .blocking(move |service| {
            Ok(service.set_form_default(request.kabupaten.as_deref(), &request.form, &admin.user, now)?)
        })
        .await?;
    Ok(ApiJson(view))
}
