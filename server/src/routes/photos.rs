//! Photo endpoints (`docs/protocol.md`, "Photos"): the upload status of one photo of a household,
//! its chunks (`PUT` with `?offset=`), the photo itself, and a household's photo list. Every one
//! is addressed through the household that references the photo and checked with the caller's
//! scope (`service::photos`).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{ApiBytes, ApiJson};
use crate::service::photos::PhotoRefusal;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sync_core::model::HouseholdId;
use sync_core::photo::{CHUNK_DIGEST_HEADER, ListedPhoto, MAX_CHUNK_BYTES, PhotoId, UploadStatus};

fn household(path: Result<Path<HouseholdId>, PathRejection>) -> Result<HouseholdId, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::Malformed("the household must be a UUID: /v1/households/{id}/photos".into()))
}

fn household_photo(
    path: Result<Path<(HouseholdId, String)>, PathRejection>,
) -> Result<(HouseholdId, PhotoId), ApiError> {
    let Path((id, photo)) = path
        .map_err(|_| ApiError::Malformed("the household must be a UUID: /v1/households/{id}/photos/{sha256}".into()))?;
    let photo =
        photo.parse::<PhotoId>().map_err(|e| ApiError::Malformed(format!("/v1/households/{id}/photos/…: {e}")))?;
    Ok((id, photo))
}

fn refusal(e: PhotoRefusal) -> ApiError {
    match e {
        PhotoRefusal::Storage(e) => e.into(),
        e @ PhotoRefusal::Offset { .. } => ApiError::Conflict { code: "photo_offset", message: e.to_string() },
        e @ PhotoRefusal::Mismatch { .. } => ApiError::Conflict { code: "photo_mismatch", message: e.to_string() },
    }
}

fn store(state: &AppState) -> Result<std::sync::Arc<dyn crate::storage::photos::PhotoStore>, ApiError> {
    Ok(state.photos.clone())
}

/// `GET /v1/households/{id}/photos/{sha256}/status`: how many bytes of the photo the server holds.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(HouseholdId, String)>, PathRejection>,
) -> Result<ApiJson<UploadStatus>, ApiError> {
    let (id, photo) = household_photo(path)?;
    let photos = store(&state)?;
    let (grace, now) = (state.settings.ended_assignment_grace, state.clock.now());
    let status = state
        .blocking(move |service| Ok(service.photo_status(photos.as_ref(), &caller, id, &photo, grace, now)?))
        .await?;
    Ok(ApiJson(status))
}

/// Query of a chunk `PUT`: where the chunk starts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkQuery {
    /// The chunk's first byte in the photo.
    offset: u64,
}

/// `PUT /v1/households/{id}/photos/{sha256}?offset=N`: one chunk, its SHA-256 in
/// `pilar-chunk-sha256`. Answers what the server holds after it.
pub async fn chunk(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(HouseholdId, String)>, PathRejection>,
    q: Result<Query<ChunkQuery>, QueryRejection>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<ApiJson<UploadStatus>, ApiError> {
    let (id, photo) = household_photo(path)?;
    let q = q.map(|Query(q)| q).map_err(|e| {
        ApiError::Malformed(format!("bad query ({}); send ?offset=<the chunk's first byte>", e.body_text()))
    })?;
    if body.len() as u64 > MAX_CHUNK_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: Some(MAX_CHUNK_BYTES as usize) });
    }
    let digest = headers.get(CHUNK_DIGEST_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiError::Malformed(format!("a chunk needs the header {CHUNK_DIGEST_HEADER}: the SHA-256 (hex) of its bytes"))
    })?;
    if !hex::encode(Sha256::digest(&body)).eq_ignore_ascii_case(digest.trim()) {
        return Err(ApiError::Conflict {
            code: "chunk_damaged",
            message: format!(
                "the chunk at byte {} does not match its {CHUNK_DIGEST_HEADER}; it was damaged on the way and not kept: send it again",
                q.offset
            ),
        });
    }
    let photos = store(&state)?;
    let (grace, now) = (state.settings.ended_assignment_grace, state.clock.now());
    let status = state
        .blocking(move |service| {
            service.photo_chunk(photos.as_ref(), &caller, id, &photo, q.offset, &body, grace, now).map_err(refusal)
        })
        .await?;
    Ok(ApiJson(status))
}

/// Bytes of a photo read from the store at once while it streams to the client: memory per
/// download stays one block whatever the photo's size (up to 10 MiB) and however slow the link.
const DOWNLOAD_BLOCK_BYTES: u64 = 64 * 1024;

/// `GET /v1/households/{id}/photos/{sha256}`: the photo, once whole and verified, streamed from
/// the store a block at a time (each block read on the blocking pool), with its length up front
/// so a client can tell a cut download from a whole one.
pub async fn photo(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(HouseholdId, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (id, photo) = household_photo(path)?;
    let photos = store(&state)?;
    let (grace, now) = (state.settings.ended_assignment_grace, state.clock.now());
    let (reference, size) = {
        let (photos, photo) = (photos.clone(), photo.clone());
        state
            .blocking(move |service| Ok(service.photo_download(photos.as_ref(), &caller, id, &photo, grace, now)?))
            .await?
    };
    let mime = sync_core::photo::Mime::parse(&reference.mime).map(|m| m.as_str()).unwrap_or("application/octet-stream");
    let blocks = futures_util::stream::unfold(0u64, move |offset| {
        let (state, photos, photo) = (state.clone(), photos.clone(), photo.clone());
        async move {
            if offset >= size {
                return None;
            }
            let len = DOWNLOAD_BLOCK_BYTES.min(size - offset);
            let read = state.blocking(move |_| Ok(photos.read_whole(&photo, offset, len)?)).await;
            Some(match read {
                Ok(block) if !block.is_empty() => {
                    let next = offset + block.len() as u64;
                    (Ok(Bytes::from(block)), next)
                }
                // Ending the body early (before the length it announced) tells the client the
                // download broke off; the server logs why.
                Ok(_) => {
                    tracing::error!(offset, size, "photo download: the stored photo is shorter than it was");
                    (Err(std::io::Error::other("the stored photo ended early")), size)
                }
                Err(e) => {
                    tracing::error!(offset, size, error = ?e, "photo download: reading the stored photo failed");
                    (Err(std::io::Error::other("reading the stored photo failed")), size)
                }
            })
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        Body::from_stream(blocks),
    )
        .into_response())
}

/// `GET /v1/households/{id}/photos`: the photos the household references, and which have arrived.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<HouseholdId>, PathRejection>,
) -> Result<ApiJson<Vec<ListedPhoto>>, ApiError> {
    let id = household(path)?;
    let photos = store(&state)?;
    let (grace, now) = (state.settings.ended_assignment_grace, state.clock.now());
    let listed =
        state.blocking(move |service| Ok(service.household_photos(photos.as_ref(), &caller, id, grace, now)?)).await?;
    Ok(ApiJson(listed))
}
