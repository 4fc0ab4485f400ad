//! `POST /v1/sync` and `GET /v1/packs/{village}`: the sync endpoints. Bodies are zstd-compressed
//! CBOR (`sync_core::sync`); scope comes from the caller's assignments, never from the request.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{ApiBytes, ApiQuery};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sync_core::model::HouseholdId;
use sync_core::sync::{self, CONTENT_TYPE, DocumentsRequest, DocumentsResponse, PackedHousehold, SyncRequest};

/// Households per pack page (≈ 200 documents, as DESIGN.md plans).
const PACK_PAGE: u32 = 200;
/// A sync body may expand to this many times the body limit after decompression.
const EXPANSION: usize = 8;

fn sync_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE), (header::CONTENT_ENCODING, sync::CONTENT_ENCODING)], body).into_response()
}

/// Decode a compressed sync body within the decompression budget ([`crate::inflate`]): at most
/// [`EXPANSION`] × the body limit for this body, and room for it among every body being inflated
/// at once (else 503 `busy`). The reservation is returned to be held while the request is handled.
async fn decode_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: &[u8],
) -> Result<(T, crate::inflate::Reservation), ApiError> {
    let limit = state.settings.max_body_bytes.saturating_mul(EXPANSION);
    let reservation = state.inflating.reserve_for(body, limit).await?;
    let request = sync::decode(body, reservation.bytes()).map_err(|e| ApiError::Malformed(e.to_string()))?;
    Ok((request, reservation))
}

/// `POST /v1/sync`.
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let (request, reservation) = decode_body::<SyncRequest>(&state, &body).await?;
    drop(body);
    let pushed: usize = request.push.iter().map(|p| p.changes.len()).sum();
    let device = caller.device;
    let grace = state.settings.ended_assignment_grace;
    let now = state.clock.now();
    let body = state
        .blocking(move |service| {
            let who = service.sync_caller(&caller, grace, now)?;
            let body = service.sync(&who, &request, now).map_err(ApiError::internal);
            // The decoded request's room in the decompression budget is given back only now.
            drop((request, reservation));
            body
        })
        .await?;
    tracing::info!(%device, pushed, response_bytes = body.len(), "sync");
    Ok(sync_response(body))
}

/// Query of `GET /v1/packs/{village}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackQuery {
    /// Resume after this household id.
    after: Option<HouseholdId>,
    /// Households per page (1 to 200; a device on a bad link asks for fewer).
    limit: Option<u32>,
}

/// Whether a request's `Accept` asks for compact (format 2) pack pages.
fn accepts_compact_pack(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',')
            .any(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(sync::PACK_CONTENT_TYPE)))
    })
}

/// `GET /v1/packs/{village}`: one page of a village's snapshot pack, in the compact form (format
/// 2, `sync::CompactPackPage`, up to `sync::MAX_COMPACT_PACK` households) when `Accept` names
/// `sync::PACK_CONTENT_TYPE`, else as documents (format 1, up to [`PACK_PAGE`]).
pub async fn pack(
    State(state): State<AppState>,
    caller: Caller,
    village: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<PackQuery>,
) -> Result<Response, ApiError> {
    let Path(village) = village?;
    let compact = accepts_compact_pack(&headers);
    let grace = state.settings.ended_assignment_grace;
    let now = state.clock.now();
    let page = state
        .blocking(move |service| {
            let who = service.sync_caller(&caller, grace, now)?;
            if !who.active.contains(&village) {
                return Err(ApiError::Forbidden(format!(
                    "village {village} is not assigned to you; ask your admin for the assignment"
                )));
            }
            if query.after.is_none() {
                // The first page hands the village to the device.
                service.note_villages_handed(caller.device, std::slice::from_ref(&village), now)?;
            }
            if compact {
                let limit = query.limit.unwrap_or(sync::MAX_COMPACT_PACK).clamp(1, sync::MAX_COMPACT_PACK);
                let body = service.compact_pack_page(&village, query.after, limit).map_err(ApiError::internal)?;
                return Ok(body.as_ref().clone());
            }
            let limit = query.limit.unwrap_or(PACK_PAGE).clamp(1, PACK_PAGE);
            let page = service.pack_page(&village, query.after, limit).map_err(ApiError::internal)?;
            Ok(sync::encode(&page))
        })
        .await?;
    let content_type = if compact { sync::PACK_CONTENT_TYPE } else { CONTENT_TYPE };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_ENCODING, sync::CONTENT_ENCODING),
            (header::VARY, "accept"),
        ],
        page,
    )
        .into_response())
}

/// `POST /v1/documents`: whole documents of households a device must restore (its copy could not
/// take what it received). Only households of villages the caller holds (active, or ended within
/// the grace and held by this device before the end) are given; the rest are listed as unavailable. Read-only, so retrying is safe.
pub async fn documents(
    State(state): State<AppState>,
    caller: Caller,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let (request, _reservation) = decode_body::<DocumentsRequest>(&state, &body).await?;
    if request.households.len() > sync::REPAIR_PAGE {
        return Err(ApiError::Invalid(format!(
            "at most {} households a request; ask for the rest in further requests",
            sync::REPAIR_PAGE
        )));
    }
    let grace = state.settings.ended_assignment_grace;
    let now = state.clock.now();
    let answer = state
        .blocking(move |service| {
            let who = service.sync_caller(&caller, grace, now)?;
            // Villages taken from the caller: only while the device may still upload there.
            let readable = |village: &String| who.may_read(village);
            let found = service.documents(&request.households).map_err(ApiError::internal)?;
            let mut answer = DocumentsResponse::default();
            for id in &request.households {
                match found.iter().find(|(h, _, _)| h == id) {
                    Some((_, village, document)) if readable(village) => {
                        answer.households.push(PackedHousehold {
                            household: *id,
                            document: serde_bytes::ByteBuf::from(document.clone()),
                        });
                    }
                    _ => answer.unavailable.push(*id),
                }
            }
            Ok(answer)
        })
        .await?;
    Ok(sync_response(sync::encode(&answer)))
}

/// `POST /v1/sync/forms`: the form versions the device lacks and the defaults of its
/// kabupaten, with the catalog token they reflect. Read-only, so retrying is safe.
pub async fn forms(
    State(state): State<AppState>,
    caller: Caller,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let (request, _reservation) = decode_body::<sync::FormsRequest>(&state, &body).await?;
    let grace = state.settings.ended_assignment_grace;
    let now = state.clock.now();
    let answer = state
        .blocking(move |service| {
            let who = service.sync_caller(&caller, grace, now)?;
            service.forms_delivery(&who.active, &request.have).map_err(ApiError::internal)
        })
        .await?;
    tracing::info!(forms = answer.forms.len(), "forms delivered");
    Ok(sync_response(sync::encode(&answer)))
}
