//! `GET /health`: a liveness probe for load balancers and tests (no authentication, no database).

use axum::Json;
use serde_json::{Value, json};

/// Answers `{"status":"ok"}` while the process serves requests.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
