//! `GET /v1/export`: households of a kecamatan or kabupaten, page by page, for `pilar export`.
//! Supervisors export their own kecamatan; admins any area; enumerators nothing.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use sync_core::ids::{DistrictCode, RegencyCode};
use sync_core::model::HouseholdId;
use sync_core::protocol::{EXPORT_PAGE, ExportFilter, ExportPage};

/// Query of `GET /v1/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Kecamatan (`73.14.01`) or kabupaten (`73.14`) code.
    area: String,
    /// Only households approved now.
    #[serde(default)]
    approved: bool,
    /// Visited on or after (`YYYY-MM-DD`).
    from: Option<String>,
    /// Visited on or before (`YYYY-MM-DD`).
    to: Option<String>,
    /// Resume after this household id.
    after: Option<HouseholdId>,
}

fn date(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match value {
        None => Ok(None),
        Some(v) => match time::Date::parse(&v, &format) {
            Ok(_) => Ok(Some(v)),
            Err(_) => Err(ApiError::Invalid(format!("{field} {v:?} is not a date; write it as YYYY-MM-DD"))),
        },
    }
}

/// The area (a kecamatan or kabupaten code, canonical) and filter an export asks for, checked: the
/// API and the office web page's export (`web/export.rs`) read their queries with it.
pub fn export_area_and_filter(
    area: &str,
    approved_only: bool,
    from: Option<String>,
    to: Option<String>,
) -> Result<(String, ExportFilter), ApiError> {
    let area = match (DistrictCode::parse(area), RegencyCode::parse(area)) {
        (Ok(k), _) => k.as_str().to_string(),
        (_, Ok(r)) => r.as_str().to_string(),
        _ => {
            return Err(ApiError::Invalid(format!(
                "area {area:?} is not a kecamatan (73.14.01) or kabupaten (73.14) code in the region table"
            )));
        }
    };
    Ok((area, ExportFilter { approved_only, from: date("from", from)?, to: date("to", to)? }))
}

/// `GET /v1/export?area=…&approved=…&from=…&to=…&after=…`.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<ApiJson<ExportPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::Malformed(format!("bad export query: {}", e.body_text())))?;
    let (area, filter) = export_area_and_filter(&query.area, query.approved, query.from, query.to)?;
    let after = query.after;
    let page = state
        .blocking(move |service| {
            service.may_export(&caller, &area)?;
            Ok(service.export_page(&area, after, EXPORT_PAGE, &filter)?)
        })
        .await?;
    Ok(ApiJson(page))
}
