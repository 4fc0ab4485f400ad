//! The one error type of the HTTP API: every handler returns `Result<_, ApiError>`, and one status
//! table here turns it into a status code and an [`ErrorBody`] (JSON). Internal errors are logged
//! once, here, and the client gets a plain message without details.

use crate::storage::StorageError;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sync_core::protocol::ErrorBody;

/// Every way a request can fail, as the client should see it. Messages are lowercase sentences
/// that say what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not the JSON the endpoint expects (syntax or shape).
    #[error("{0}")]
    Malformed(String),
    /// The request is well-formed but a value in it is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Unknown user or wrong password: one message for both, so names cannot be probed.
    #[error("unknown user or wrong password; check both and try again")]
    BadCredentials,
    /// No, bad, tampered or expired access token, or an unusable refresh token.
    #[error("{0}")]
    Unauthorized(String),
    /// The calling device was revoked by an admin; it must delete its local data.
    #[error("this device was revoked by an admin; it must delete its local data and can no longer sync")]
    DeviceRevoked,
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The HTTP method is not served at this path.
    #[error("this path does not accept that HTTP method; see the API description for the right one")]
    MethodNotAllowed,
    /// The request clashes with what is stored (a taken name, a device of another user).
    #[error("{message}")]
    Conflict {
        /// Stable machine code, e.g. `user_exists`.
        code: &'static str,
        /// What clashed and what to do.
        message: String,
    },
    /// The body is larger than the server accepts.
    #[error(
        "the request body is larger than this server accepts{}; send less in one request",
        limit.map(|n| format!(" ({n} bytes)")).unwrap_or_default()
    )]
    PayloadTooLarge {
        /// The configured limit, when known.
        limit: Option<usize>,
    },
    /// The body is not sent as the content type the endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many failed logins for this user name or from this address: wait, then try again.
    #[error(
        "too many failed logins for this user or from this address; wait {retry_after} seconds before trying \
         again (a correct password is refused too until then)"
    )]
    TooManyAttempts {
        /// Seconds until the next attempt is answered (sent as `Retry-After`).
        retry_after: u64,
    },
    /// The server is at a capacity limit (bytes being decompressed at once): try again shortly.
    #[error("the server is busy with other large requests; try again in {retry_after} seconds")]
    Busy {
        /// Seconds to wait before retrying (sent as `Retry-After`).
        retry_after: u64,
    },
    /// A bug or an environment failure (database, disk). Logged; the client sees a plain message.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The single status table: HTTP status and stable machine code for each case.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ApiError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::DeviceRevoked => (StatusCode::UNAUTHORIZED, "device_revoked"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// An internal error from anything that converts into `anyhow::Error`.
    pub fn internal(e: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(e.into())
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        let message = match self {
            ApiError::Internal(_) => {
                "the server failed to handle this request; try again later, and tell the admin if it persists"
                    .to_string()
            }
            other => other.to_string(),
        };
        ErrorBody { error: code.to_string(), message, wipe: matches!(self, ApiError::DeviceRevoked) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            // The one place internal errors are logged. Storage and I/O errors carry no request
            // values, so nothing personal or secret reaches the log.
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let (status, _) = self.status_and_code();
        let retry_after = match &self {
            ApiError::TooManyAttempts { retry_after } | ApiError::Busy { retry_after } => Some(*retry_after),
            _ => None,
        };
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        match e {
            StorageError::UserExists(name) => ApiError::Conflict {
                code: "user_exists",
                message: format!("a user named {name} already exists; choose another name"),
            },
            StorageError::NoSuchUser(name) => {
                ApiError::NotFound(format!("no user named {name}; list users with `pilar admin user list`"))
            }
            StorageError::Refused(message) => ApiError::Invalid(message),
            StorageError::NotFound(message) => ApiError::NotFound(message),
            StorageError::Forbidden(message) => ApiError::Forbidden(message),
            StorageError::Stale(message) => ApiError::Conflict { code: "stale", message },
            other => ApiError::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => ApiError::Malformed(format!(
                "the request body is not valid JSON ({}); send a JSON object",
                e.body_text()
            )),
            JsonRejection::JsonDataError(e) => ApiError::Malformed(format!(
                "the request body does not have the expected fields ({}); see the API description",
                e.body_text()
            )),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "send the body as JSON with the header `Content-Type: application/json`".to_string(),
            ),
            JsonRejection::BytesRejection(e) => ApiError::from(e),
            other => ApiError::Malformed(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: None }
        } else {
            ApiError::Malformed(format!(
                "the request body could not be read ({}); send it again",
                rejection.body_text()
            ))
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::Malformed(format!(
            "the query string is not valid ({}); see the API description for this endpoint's parameters",
            rejection.body_text()
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::Malformed(format!(
            "the URL path is not valid ({}); check the name or id in it",
            rejection.body_text()
        ))
    }
}

/// The code and message of an error response this crate did not make itself (a rejection from a
/// layer or an extractor that is not wrapped), by status.
fn generic_error(status: StatusCode) -> (&'static str, String) {
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("malformed_request", "the request is not valid; see the API description"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint; check the server URL and the path"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this path does not accept that HTTP method"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long to arrive; try again"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "the request body is larger than this server accepts; send less in one request")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "the body is not sent as the content type this endpoint reads")
        }
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_input", "a value in the request is not acceptable"),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_attempts", "too many requests; wait and try again"),
        StatusCode::SERVICE_UNAVAILABLE => ("busy", "the server is busy; try again shortly"),
        s if s.is_server_error() => {
            ("internal", "the server failed to handle this request; try again later, and tell the admin if it persists")
        }
        _ => ("bad_request", "the request was refused; see the API description"),
    };
    (code, message.to_string())
}

/// Middleware (`axum::middleware::map_response`): every 4xx and 5xx response leaves the server as
/// the JSON [`ErrorBody`]. Responses made from an [`ApiError`] already are; anything else (a
/// rejection of an extractor or a layer that no handler wraps) gets the generic body for its
/// status, keeping its headers (`Retry-After`, `Allow`). Logged, since it marks a gap to close.
pub async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // The office web page's errors are pages (`web::layout::WebError`), not JSON.
    if is_json {
        return response;
    }
    tracing::warn!(status = status.as_u16(), "an error response without the JSON body was given one");
    let (mut parts, _) = response.into_parts();
    let (code, message) = generic_error(status);
    let body = ErrorBody { error: code.to_string(), message, wipe: false };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(serde_json::to_vec(&body).unwrap_or_default()))
}
