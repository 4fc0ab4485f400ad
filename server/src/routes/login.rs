//! `POST /v1/login` (password → tokens, registering the device; throttled per user name and
//! client address, see [`crate::service::throttle`]) and `POST /v1/token/refresh` (refresh token → new
//! tokens, rotating the refresh token; a retry with the token just replaced gets the same
//! successor back, see [`crate::auth::REFRESH_RETRY_WINDOW`]; any other reuse of a replaced token
//! ends the device's chain and sessions).

use crate::auth::{self, REFRESH_RETRY_WINDOW, RefreshKey, TokenKeys};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::service::Service;
use crate::service::accounts::{DeviceLogin, DeviceRegistration, RefreshOutcome, RefreshRotation};
use crate::service::throttle::{LoginSubjects, LoginThrottle, Throttled};
use crate::state::AppState;
use crate::throttle::ClientAddress;
use axum::extract::State;
use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::sync::Arc;
use sync_core::model::DeviceId;
use sync_core::protocol::{LoginRequest, LoginResponse, RefreshRequest, Role};
use time::OffsetDateTime;

/// Longest device label accepted, in characters.
const MAX_DEVICE_NAME_CHARS: usize = 100;

/// Label stored for a device that logs in without one.
const UNNAMED_DEVICE: &str = "unnamed device";

/// Log in with a password from a device: registers the device to the user on first login.
/// Throttled per user name and client address before the password is checked
/// ([`crate::service::throttle`], counts shared by every server on the database): a throttled
/// attempt gets 429 with `Retry-After`, right password or not.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<ApiJson<LoginResponse>, ApiError> {
    let device_name = device_label(&request.device_name)?;
    // Only well-formed names are counted or logged: a password typed into the name field must
    // not reach the log (it is counted only as a keyed hash, like any name).
    let name = auth::is_valid_user_name(&request.user).then(|| request.user.clone());
    let throttle = Arc::clone(&state.login_throttle);
    let tokens = Arc::clone(&state.tokens);
    let clock = Arc::clone(&state.clock);
    state
        .blocking(move |service| {
            let subjects = throttle.subjects(name.as_deref(), address);
            let attempt = Attempt { name, address, subjects };
            login_blocking(service, &tokens, &throttle, clock.as_ref(), request, attempt, device_name)
        })
        .await
        .map(ApiJson)
}

/// Who a login attempt is counted as.
pub(crate) struct Attempt {
    /// The user name, when well-formed.
    pub(crate) name: Option<String>,
    /// The client address.
    pub(crate) address: Option<IpAddr>,
    /// What the throttle counts it as.
    pub(crate) subjects: LoginSubjects,
}

/// The refusal of a throttled login (logged without the user name: it may be a password typed
/// into the wrong field).
fn throttled_login(throttled: Throttled, address: Option<IpAddr>, from: &str) -> ApiError {
    let retry_after = throttled.retry_after_seconds();
    let by = if throttled.by_user { "user name" } else { "address" };
    tracing::warn!(address = %shown(address), from, by, retry_after, "login throttled");
    ApiError::TooManyAttempts { retry_after }
}

/// A client address for the log (`-` when the server runs without connection info).
fn shown(address: Option<IpAddr>) -> String {
    address.map_or_else(|| "-".to_string(), |a| a.to_string())
}

fn login_blocking(
    service: &Service,
    tokens: &TokenKeys,
    throttle: &LoginThrottle,
    clock: &dyn Clock,
    request: LoginRequest,
    attempt: Attempt,
    device_name: String,
) -> Result<LoginResponse, ApiError> {
    let from = format!("device {}", request.device);
    let user = verify_login(service, throttle, clock, &attempt, &request.password, &from)?;
    register(service, tokens, &request, &user.name, user.role, &device_name, clock.now())
}

/// Check a password for a login attempt, throttled per user name and client address: the user
/// when it is right; 429 with `Retry-After` when throttled (right password or not); one answer for
/// an unknown user and a wrong password. `from` names where the attempt came from in the log
/// (a device, or the office web page). Shared by the API login and the web page's sign-in.
pub(crate) fn verify_login(
    service: &Service,
    throttle: &LoginThrottle,
    clock: &dyn Clock,
    attempt: &Attempt,
    password: &str,
    from: &str,
) -> Result<crate::storage::UserRecord, ApiError> {
    let Attempt { name, address, subjects } = attempt;
    let address = *address;
    // A first look before the user is read and an argon2 slot is waited for; asked again once a
    // slot is held, and the outcome is recorded before it is given back.
    if let Err(throttled) = service.check_login(subjects, clock.now())? {
        return Err(throttled_login(throttled, address, from));
    }
    let user = match name {
        Some(name) => service.user(name)?,
        None => None,
    };
    let refused = Cell::new(None);
    let user_has_failures = Cell::new(false);
    let failed = RefCell::new(None);
    let gate = || match service.check_login(subjects, clock.now()) {
        Ok(Ok(cleared)) => {
            user_has_failures.set(cleared.user_has_failures);
            true
        }
        Ok(Err(throttled)) => {
            refused.set(Some(throttled));
            false
        }
        Err(e) => {
            failed.replace(Some(e));
            false
        }
    };
    let settle = |right: bool| {
        let recorded = match right {
            // Nothing counted, nothing to clear: a correct login writes nothing here.
            true if !user_has_failures.get() => Ok(()),
            true => service.login_succeeded(subjects),
            false => service.login_failed(throttle, subjects, clock.now()),
        };
        if let Err(e) = recorded {
            failed.replace(Some(e));
        }
    };
    let hash = user.as_ref().map(|u| u.password_hash.as_str());
    let outcome = auth::verify_password_gated(password, hash, &gate, &settle);
    if let Some(e) = failed.take() {
        return Err(e.into());
    }
    match outcome {
        None => {
            let throttled =
                refused.take().unwrap_or(Throttled { wait: std::time::Duration::from_secs(1), by_user: false });
            Err(throttled_login(throttled, address, from))
        }
        Some(false) => {
            match &user {
                Some(user) => {
                    tracing::warn!(user = user.name, address = %shown(address), from, "login refused: wrong password")
                }
                None => tracing::warn!(address = %shown(address), from, "login refused: unknown user"),
            }
            Err(ApiError::BadCredentials)
        }
        Some(true) => user.ok_or(ApiError::BadCredentials),
    }
}

/// Record a login whose password was right, and answer the session.
fn register(
    service: &Service,
    tokens: &TokenKeys,
    request: &LoginRequest,
    user: &str,
    role: Role,
    device_name: &str,
    now: OffsetDateTime,
) -> Result<LoginResponse, ApiError> {
    let (refresh_token, refresh_hash) = auth::new_refresh_token();
    let registration = service.register_device(&DeviceLogin {
        device: request.device,
        user,
        name: device_name,
        refresh_hash: &refresh_hash,
        now,
    })?;
    match registration {
        DeviceRegistration::Registered => {}
        DeviceRegistration::RegisteredToAnotherUser => {
            tracing::warn!(user, device = %request.device, "login refused: device of another user");
            return Err(ApiError::Conflict {
                code: "device_in_use",
                message: "this device is registered to another user, and a device belongs to one user; log in \
                          from a device store of your own (another `pilar --home`)"
                    .to_string(),
            });
        }
        DeviceRegistration::Revoked => {
            tracing::warn!(user, device = %request.device, "login refused: revoked device");
            return Err(ApiError::DeviceRevoked);
        }
    }
    tracing::info!(user, %role, device = %request.device, "login");
    session(service, tokens, user, role, request.device, refresh_token, now)
}

/// Exchange a refresh token for new tokens. The old refresh token stops working once the device
/// uses the new one; until then (within the retry window) it gets the same new one back.
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<ApiJson<LoginResponse>, ApiError> {
    let tokens = Arc::clone(&state.tokens);
    let key = Arc::clone(&state.refresh_key);
    let lifetime = state.settings.refresh_token_lifetime;
    let now = state.clock.now();
    state.blocking(move |service| refresh_blocking(service, &tokens, &key, lifetime, request, now)).await.map(ApiJson)
}

fn refresh_blocking(
    service: &Service,
    tokens: &TokenKeys,
    key: &RefreshKey,
    lifetime: time::Duration,
    request: RefreshRequest,
    now: OffsetDateTime,
) -> Result<LoginResponse, ApiError> {
    let old_hash = auth::hash_refresh_token(&request.refresh_token);
    // The successor is derived from the presented token, so a retry names the same one.
    let (refresh_token, new_hash) = key.successor(&request.refresh_token);
    let rotation = RefreshRotation {
        device: request.device,
        old_hash: &old_hash,
        new_hash: &new_hash,
        issued_after: now - lifetime,
        retry_until: now + REFRESH_RETRY_WINDOW,
        now,
        later_in_chain: &|stored: &str| key.later_in_chain(&request.refresh_token, stored),
    };
    match service.rotate_refresh_token(&rotation)? {
        RefreshOutcome::Rotated { user, role } => {
            tracing::info!(user, device = %request.device, "token refreshed");
            session(service, tokens, &user, role, request.device, refresh_token, now)
        }
        RefreshOutcome::Retried { user, role } => {
            tracing::info!(user, device = %request.device, "token refresh retried: the same refresh token again");
            session(service, tokens, &user, role, request.device, refresh_token, now)
        }
        RefreshOutcome::Revoked => {
            tracing::warn!(device = %request.device, "refresh refused: revoked device");
            Err(ApiError::DeviceRevoked)
        }
        RefreshOutcome::Reused { user } => {
            tracing::warn!(
                user,
                device = %request.device,
                "refresh refused: a replaced token was presented again; the device's refresh chain and sessions \
                 were ended"
            );
            Err(ApiError::Unauthorized(
                "this refresh token was already replaced, and using it again means a copy may be in other hands: \
                 every session of this device was ended; log in again with `pilar login`, and tell your admin if \
                 you did not expect this"
                    .to_string(),
            ))
        }
        RefreshOutcome::Invalid => {
            tracing::warn!(device = %request.device, "refresh refused: unknown, used or expired token");
            Err(invalid_refresh_token())
        }
    }
}

fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthorized(
        "the refresh token is not valid (already used, replaced by a newer login, or expired); log in again with \
         `pilar login`"
            .to_string(),
    )
}

/// The tokens and scope of a fresh session.
fn session(
    service: &Service,
    tokens: &TokenKeys,
    user: &str,
    role: Role,
    device: DeviceId,
    refresh_token: String,
    now: OffsetDateTime,
) -> Result<LoginResponse, ApiError> {
    let villages = service.village_scope(user)?.active;
    // The answer hands these villages to the device (see `Service::note_villages_handed`).
    service.note_villages_handed(device, &villages, now)?;
    let kecamatan = service.kecamatan_scope(user)?;
    Ok(LoginResponse {
        access_token: tokens.issue(user, role, device, now)?,
        access_expires_in: tokens.access_lifetime_seconds(),
        refresh_token,
        user: user.to_string(),
        role,
        villages,
        kecamatan,
    })
}

fn device_label(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(UNNAMED_DEVICE.to_string());
    }
    if name.chars().count() > MAX_DEVICE_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "device_name must be at most {MAX_DEVICE_NAME_CHARS} characters without control characters; use a \
             short label such as the tablet's sticker"
        )));
    }
    Ok(name.to_string())
}
