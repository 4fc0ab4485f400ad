//! The supervisor's endpoints: the review queue and decisions, the conflict inbox, duplicate
//! suspicions (merge, dismiss) and the progress report. Supervisors see and act on their own
//! kecamatan only, admins everywhere; enumerators get 403 on every one of them.
//!
//! Writes to household documents (review, resolution, merge) are made by the server under the
//! caller's server-side device ([`DeviceId::on_server`](sync_core::model::DeviceId::on_server)) and
//! enter the feed like a device's change, so they reach every device in scope on its next sync.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::service::review::Choice;
use crate::service::scope::in_areas;
use crate::state::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use sync_core::model::{Editor, FieldPath, HouseholdId, ReviewDecision, ReviewStatus};
use sync_core::protocol::{
    ConflictItem, DismissRequest, DuplicatePair, FoldReply, FoldRequest, HouseholdBrief, HouseholdMatches,
    ProgressReport, ResolveRequest, ReviewRequest,
};

/// Query of the list endpoints: `?area=<kecamatan or kabupaten>&status=<review status>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaQuery {
    /// Village (`73.14.01.1001`), kecamatan (`73.14.01`) or kabupaten (`73.14`); all of the
    /// caller's scope when absent.
    area: Option<String>,
    /// For `/review`: `awaiting_review`, `approved` or `returned`.
    status: Option<String>,
}

fn editor(caller: &Caller, now: time::OffsetDateTime) -> Editor {
    Editor { user: caller.user.clone(), device: caller.device.on_server(), now }
}

fn query(query: Result<Query<AreaQuery>, QueryRejection>) -> Result<AreaQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::Malformed(format!("bad query: {}", e.body_text())))
}

fn household(path: Result<Path<HouseholdId>, PathRejection>) -> Result<HouseholdId, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::Malformed("the household must be a UUID: /v1/households/{id}/...".into()))
}

/// Query of `GET /v1/households`: `?prefix=<first characters of an id>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixQuery {
    /// At least 4 characters of a household id (hex digits and dashes).
    prefix: String,
}

/// `GET /v1/households?prefix=`: the caller's households whose id starts with `prefix`. Ids
/// outside the caller's areas are never listed, so the answer says nothing about other scopes.
pub async fn find_households(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<PrefixQuery>, QueryRejection>,
) -> Result<ApiJson<HouseholdMatches>, ApiError> {
    let q = q.map(|Query(q)| q).map_err(|e| ApiError::Malformed(format!("bad query: {}", e.body_text())))?;
    let prefix = q.prefix.trim().to_ascii_lowercase();
    if prefix.len() < 4 || prefix.len() > 36 || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ApiError::Invalid(
            "prefix must be 4 to 36 characters of a household id (hex digits and dashes), as the lists show it".into(),
        ));
    }
    let matches = state
        .blocking(move |service| {
            let scope = service.areas(&caller, None, "look up households")?;
            // Read past households of other areas: a prefix shared with them must not hide ours.
            let found = service.households_with_prefix(&prefix, 1000)?;
            Ok(found
                .into_iter()
                .filter(|(_, village)| in_areas(village, scope.as_deref()))
                .map(|(id, _)| id)
                .take(HouseholdMatches::LIMIT as usize)
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(ApiJson(HouseholdMatches { matches }))
}

/// `GET /v1/review?area=&status=`: visited households and their review status.
pub async fn review_list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AreaQuery>, QueryRejection>,
) -> Result<ApiJson<Vec<HouseholdBrief>>, ApiError> {
    let q = query(q)?;
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(ReviewStatus::parse(s).ok_or_else(|| {
            ApiError::Invalid(format!("status {s:?} is not one of awaiting_review, approved, returned"))
        })?),
    };
    let list = state
        .blocking(move |service| {
            let areas = service.areas(&caller, q.area.as_deref(), "review households")?;
            Ok(service.review_list(areas.as_deref(), status)?)
        })
        .await?;
    Ok(ApiJson(list))
}

/// `POST /v1/households/{id}/review`: approve, or return with a comment.
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<HouseholdId>, PathRejection>,
    ApiJson(request): ApiJson<ReviewRequest>,
) -> Result<ApiJson<HouseholdBrief>, ApiError> {
    let id = household(path)?;
    let decision = match request.decision.as_str() {
        "approve" => ReviewDecision::Approve,
        "return" => ReviewDecision::Return,
        other => return Err(ApiError::Invalid(format!("decision {other:?} is not approve or return"))),
    };
    let comment = request.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_string);
    if decision == ReviewDecision::Return && comment.is_none() {
        return Err(ApiError::Invalid(
            "returning a household needs a comment that tells the enumerator what to fix".into(),
        ));
    }
    let now = state.clock.now();
    let brief = state
        .blocking(move |service| {
            service.may_act(&caller, id, "approve or return households")?;
            Ok(service.review(id, &editor(&caller, now), decision, comment.as_deref())?)
        })
        .await?;
    tracing::info!(household = %id, decision = request.decision, "review");
    Ok(ApiJson(brief))
}

/// `GET /v1/conflicts?area=`: the conflict inbox.
pub async fn conflicts(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AreaQuery>, QueryRejection>,
) -> Result<ApiJson<Vec<ConflictItem>>, ApiError> {
    let q = query(q)?;
    let list = state
        .blocking(move |service| {
            let areas = service.areas(&caller, q.area.as_deref(), "see the conflict inbox")?;
            Ok(service.conflicts(areas.as_deref())?)
        })
        .await?;
    Ok(ApiJson(list))
}

/// `POST /v1/households/{id}/resolve`: settle one conflicting field.
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<HouseholdId>, PathRejection>,
    ApiJson(request): ApiJson<ResolveRequest>,
) -> Result<ApiJson<HouseholdBrief>, ApiError> {
    let id = household(path)?;
    let field: FieldPath = request.path.parse().map_err(|_| {
        ApiError::Invalid(format!(
            "{:?} is not a field path; copy it from `pilar conflicts` (e.g. answers.rt, members.<id>.nik)",
            request.path
        ))
    })?;
    let choice = match (request.pick, request.value) {
        (Some(n), None) => Choice::Pick(n),
        (None, Some(v)) => Choice::Value(v),
        _ => return Err(ApiError::Invalid("give exactly one of pick (a listed value's number) or value".into())),
    };
    let now = state.clock.now();
    let brief = state
        .blocking(move |service| {
            service.may_act(&caller, id, "resolve conflicts")?;
            Ok(service.resolve(id, &editor(&caller, now), &field, &choice)?)
        })
        .await?;
    tracing::info!(household = %id, "conflict resolved");
    Ok(ApiJson(brief))
}

/// `GET /v1/duplicates?area=`: households suspected to be one family.
pub async fn duplicates(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AreaQuery>, QueryRejection>,
) -> Result<ApiJson<Vec<DuplicatePair>>, ApiError> {
    let q = query(q)?;
    let list = state
        .blocking(move |service| {
            let areas = service.areas(&caller, q.area.as_deref(), "see suspected duplicates")?;
            Ok(service.duplicates(areas.as_deref())?)
        })
        .await?;
    Ok(ApiJson(list))
}

/// `POST /v1/duplicates/merge`: fold one household into another.
pub async fn fold(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<FoldRequest>,
) -> Result<ApiJson<FoldReply>, ApiError> {
    if request.survivor == request.retired {
        return Err(ApiError::Invalid("a household cannot be merged into itself; give two different ids".into()));
    }
    let now = state.clock.now();
    let reply = state
        .blocking(move |service| {
            service.may_act(&caller, request.survivor, "merge households")?;
            service.may_act(&caller, request.retired, "merge households")?;
            Ok(service.fold(request.survivor, request.retired, &editor(&caller, now))?)
        })
        .await?;
    tracing::info!(survivor = %reply.survivor, retired = %reply.retired, disagreements = reply.disagreements, "fold");
    Ok(ApiJson(reply))
}

/// `POST /v1/duplicates/dismiss`: two suspected households are different families.
pub async fn dismiss(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<DismissRequest>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    if request.a == request.b {
        return Err(ApiError::Invalid("give two different households".into()));
    }
    let now = state.clock.now();
    state
        .blocking(move |service| {
            service.may_act(&caller, request.a, "dismiss duplicate suspicions")?;
            service.may_act(&caller, request.b, "dismiss duplicate suspicions")?;
            Ok(service.dismiss(request.a, request.b, &caller.user, now)?)
        })
        .await?;
    Ok(ApiJson(serde_json::json!({ "dismissed": [request.a, request.b] })))
}

/// `GET /v1/progress?area=`: counts per village and enumerator, last sync per device.
pub async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AreaQuery>, QueryRejection>,
) -> Result<ApiJson<ProgressReport>, ApiError> {
    let q = query(q)?;
    let report = state
        .blocking(move |service| {
            let areas = service.areas(&caller, q.area.as_deref(), "see the progress report")?;
            Ok(service.progress(areas.as_deref())?)
        })
        .await?;
    Ok(ApiJson(report))
}
