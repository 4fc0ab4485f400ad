//! `/v1/roster/...`: the admin's roster import, staged chunk by chunk and committed at once.

use crate::auth::Admin;
use crate::error::ApiError;
use crate::inflate::Reservation;
use crate::routes::{ApiBytes, ApiJson};
use crate::service::roster::{CHUNK_HOUSEHOLDS, ChunkReply, CommitRequest, ImportSummary, RosterChunk};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header;
use sync_core::finding::Severity;
use sync_core::model::Editor;
use sync_core::protocol::{ChunkBodyError, ROSTER_CHUNK_ENCODING};
use sync_core::roster::{RosterColumns, validate_roster_household};

/// A compressed chunk may expand to this many times the body limit (as a sync body may).
const EXPANSION: usize = 8;

/// A roster chunk's body: JSON, or zstd-compressed JSON (`Content-Encoding: zstd`, what `pilar`
/// sends), inflated within the server's decompression budget ([`crate::inflate`]); the
/// reservation is held while the chunk is handled.
pub struct ChunkBody(RosterChunk, Option<Reservation>);

impl FromRequest<AppState> for ChunkBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<ChunkBody, ApiError> {
        let (compressed, json) = {
            let header_is = |name, value: &str| {
                request.headers().get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().starts_with(value))
            };
            (
                header_is(header::CONTENT_ENCODING, ROSTER_CHUNK_ENCODING),
                header_is(header::CONTENT_TYPE, "application/json"),
            )
        };
        if !compressed {
            let ApiJson(chunk) = ApiJson::<RosterChunk>::from_request(request, state).await?;
            return Ok(ChunkBody(chunk, None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "send the chunk as JSON with the header `Content-Type: application/json`".to_string(),
            ));
        }
        let ApiBytes(body) = ApiBytes::from_request(request, state).await?;
        let limit = state.settings.max_body_bytes.saturating_mul(EXPANSION);
        let reservation = state.inflating.reserve_for(&body, limit).await?;
        let chunk = RosterChunk::from_compressed(&body, reservation.bytes())
            .map_err(|e: ChunkBodyError| ApiError::Malformed(e.to_string()))?;
        Ok(ChunkBody(chunk, Some(reservation)))
    }
}

/// `PUT /v1/roster/{import}/chunks/{n}`: re-check a chunk with the CLI's rules and stage it.
/// A chunk with blocking problems is not staged. The reply counts the problems of each rule and
/// lists the first few of each (`ChunkReply::new`), so it stays small.
pub async fn stage(
    State(state): State<AppState>,
    Admin(caller): Admin,
    path: Result<Path<(uuid::Uuid, u32)>, PathRejection>,
    ChunkBody(chunk, reservation): ChunkBody,
) -> Result<ApiJson<ChunkReply>, ApiError> {
    let Path((import, n)) = path.map_err(|_| {
        ApiError::Malformed("the import must be a UUID and the chunk a number: /v1/roster/{import}/chunks/{n}".into())
    })?;
    if chunk.households.len() > CHUNK_HOUSEHOLDS {
        return Err(ApiError::Invalid(format!(
            "a chunk holds at most {CHUNK_HOUSEHOLDS} households, this one {}; send smaller chunks",
            chunk.households.len()
        )));
    }
    let now = state.clock.now();
    let reply = state
        .blocking(move |service| {
            let form = sync_core::form::FormDefinition::default_dtsen();
            let today = now.date();
            let problems: Vec<_> = chunk
                .households
                .iter()
                .flat_map(|h| validate_roster_household(form, h, &RosterColumns::default(), today))
                .collect();
            // The reply counts every problem and lists the first few of each rule: the admin's
            // `pilar` checked every row itself and holds the full report.
            if problems.iter().any(|p| p.is_blocking()) {
                return Ok(ChunkReply::new(false, problems));
            }
            service.roster_stage(import, n, &caller.user, &chunk.households, now)?;
            // The decoded chunk's room in the decompression budget is given back only now.
            drop((chunk, reservation));
            Ok(ChunkReply::new(true, problems))
        })
        .await?;
    let counted = |severity| reply.counts.iter().filter(|c| c.severity == severity).map(|c| c.count).sum::<u64>();
    tracing::info!(
        %import,
        chunk = n,
        staged = reply.staged,
        errors = counted(Severity::Reject),
        warnings = counted(Severity::Warn),
        "roster chunk"
    );
    Ok(ApiJson(reply))
}

/// `POST /v1/roster/{import}/commit`: apply every staged chunk in one transaction.
pub async fn commit(
    State(state): State<AppState>,
    Admin(caller): Admin,
    path: Result<Path<uuid::Uuid>, PathRejection>,
    ApiJson(request): ApiJson<CommitRequest>,
) -> Result<ApiJson<ImportSummary>, ApiError> {
    let Path(import) = path.map_err(|_| ApiError::Malformed("the import must be a UUID".into()))?;
    let editor = Editor { user: caller.user.clone(), device: caller.device.on_server(), now: state.clock.now() };
    let summary = state.blocking(move |service| Ok(service.roster_commit(import, request.chunks, &editor)?)).await?;
    tracing::info!(%import, created = summary.created, updated = summary.updated, "roster import committed");
    // Derive the supervisor-list facts of the new households now, in short transactions that
    // syncs interleave with, rather than in the first supervisor's request.
    let service = std::sync::Arc::clone(&state.service);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = service.refresh_derived() {
            tracing::error!(error = %e, "deriving household facts after a roster import failed");
        }
    });
    Ok(ApiJson(summary))
}
