//! `POST /v1/sync` and `GET /v1/packs/{village}`: the sync endpoints. Bodies are zstd-compressed
//! CBOR (`sync_core::sync`); scope comes from the caller's assignments, never from the request.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{ApiBytes, ApiQuery};
use crate::state::AppState;
use crate::storage::{EndedVillage, Storage, SyncCaller};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sync_core::ids::{DistrictCode, regions};
use sync_core::model::HouseholdId;
use sync_core::protocol::Role;
use sync_core::sync::{self, CONTENT_TYPE, DocumentsRequest, DocumentsResponse, PackedHousehold, SyncRequest};
use time::OffsetDateTime;

/// Households per pack page (≈ 200 documents, as DESIGN.md plans).
const PACK_PAGE: u32 = 200;
/// A sync body may expand to this many times the body limit after decompression.
const EXPANSION: usize = 8;

fn sync_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE), (header::CONTENT_ENCODING, "zstd")], body).into_response()
}

/// The villages a caller may read and write: enumerators from their village assignments (with
/// the villages taken from them, bounded by `grace` and by what this device held, see
/// [`EndedVillage`]), supervisors every village of their kecamatan, admins none (they do not sync).
fn scope_of(
    storage: &dyn Storage,
    caller: &Caller,
    grace: time::Duration,
    now: OffsetDateTime,
) -> Result<SyncCaller, ApiError> {
    let (active, ended) = match caller.role {
        Role::Enumerator => {
            let scope = storage.village_scope(&caller.user).map_err(ApiError::internal)?;
            let handed = if scope.ended.is_empty() {
                Default::default()
            } else {
                storage.villages_handed(caller.device).map_err(ApiError::internal)?
            };
            let ended = scope.ended.into_iter().map(|e| EndedVillage::new(e, &handed, grace, now)).collect();
            (scope.active, ended)
        }
        Role::Supervisor => {
            let mut villages = Vec::new();
            for code in storage.kecamatan_scope(&caller.user).map_err(ApiError::internal)? {
                if let Ok(district) = DistrictCode::parse(&code) {
                    villages.extend(regions().villages_in_district(&district).map(|v| v.code.to_string()));
                }
            }
            (villages, Vec::new())
        }
        Role::Admin => (Vec::new(), Vec::new()),
    };
    // The extractor found the device registered; a device row gone since is treated as new.
    let registered_at = storage
        .device_registered_at(caller.device)
        .map_err(ApiError::internal)?
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    Ok(SyncCaller { user: caller.user.clone(), role: caller.role, device: caller.device, active, ended, registered_at })
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
    let body = state
        .blocking(move |storage| {
            let now = OffsetDateTime::now_utc();
            let who = scope_of(storage, &caller, grace, now)?;
            let body = storage.sync(&who, &request, now).map_err(ApiError::internal);
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

/// `GET /v1/packs/{village}`: one page of a village's snapshot pack.
pub async fn pack(
    State(state): State<AppState>,
    caller: Caller,
    village: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<PackQuery>,
) -> Result<Response, ApiError> {
    let Path(village) = village?;
    let grace = state.settings.ended_assignment_grace;
    let page = state
        .blocking(move |storage| {
            let now = OffsetDateTime::now_utc();
            let who = scope_of(storage, &caller, grace, now)?;
            if !who.active.contains(&village) {
                return Err(ApiError::Forbidden(format!(
                    "village {village} is not assigned to you; ask your admin for the assignment"
                )));
            }
            if query.after.is_none() {
                // The first page hands the village to the device.
                storage.note_villages_handed(caller.device, std::slice::from_ref(&village), now)?;
            }
            let limit = query.limit.unwrap_or(PACK_PAGE).clamp(1, PACK_PAGE);
            storage.pack_page(&village, query.after, limit).map_err(ApiError::internal)
        })
        .await?;
    Ok(sync_response(sync::encode(&page)))
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
    let answer = state
        .blocking(move |storage| {
            let who = scope_of(storage, &caller, grace, OffsetDateTime::now_utc())?;
            // Villages taken from the caller: only while the device may still upload there.
            let readable = |village: &String| {
                who.active.contains(village)
                    || who.ended_village(village).is_some_and(EndedVillage::accepts_pending_work)
            };
            let found = storage.documents(&request.households).map_err(ApiError::internal)?;
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
