//! `/v1/admin/…`: accounts, assignments and devices, for admins only (the [`Admin`] extractor
//! answers 403 to every other role). The JSON shapes of these endpoints live in
//! `sync_core::protocol`, shared with `pilar admin`.

use crate::auth::{self, Admin};
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::service::Service;
use crate::service::accounts::{DeviceRecord, UserSummary};
use crate::state::AppState;
use crate::storage::NewUser;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sync_core::ids::{DistrictCode, VillageCode};
use sync_core::model::DeviceId;
use sync_core::protocol::{
    CreateUserRequest, CreatedUser, DeviceView, KecamatanRequest, PasswordRequest, Role, RoleRequest, UserView,
    VillagesRequest,
};

/// Longest password accepted, in bytes (argon2 is fed the whole of it).
const MAX_PASSWORD_BYTES: usize = 1024;

impl From<UserSummary> for UserView {
    fn from(u: UserSummary) -> UserView {
        UserView {
            name: u.name,
            role: u.role,
            created_at: rfc3339(u.created_at),
            villages: u.villages,
            kecamatan: u.kecamatan,
        }
    }
}

impl From<DeviceRecord> for DeviceView {
    fn from(d: DeviceRecord) -> DeviceView {
        DeviceView {
            id: d.id.to_string(),
            name: d.name,
            user: d.user,
            registered_at: rfc3339(d.registered_at),
            last_seen_at: rfc3339(d.last_seen_at),
            revoked_at: d.revoked_at.map(rfc3339),
        }
    }
}

/// Create an account; returns 201 with the generated password when none was given.
pub async fn create_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<CreatedUser>), ApiError> {
    let now = state.clock.now();
    let created = state.blocking(move |service| create_user_as(service, &admin.user, request, now)).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Create an account as `admin` asked: the name's rules, the password's length (or a generated
/// one, returned once). The API and the office web page both create users through this.
pub(crate) fn create_user_as(
    service: &Service,
    admin: &str,
    request: CreateUserRequest,
    now: time::OffsetDateTime,
) -> Result<CreatedUser, ApiError> {
    if !auth::is_valid_user_name(&request.name) {
        return Err(ApiError::Invalid(
            "name must be 1–64 lowercase letters, digits, '.', '-' or '_', starting with a letter or digit (e.g. \
             pkh.bilokka01)"
                .to_string(),
        ));
    }
    let (password, generated) = chosen_password(request.password.as_deref())?;
    let (name, role) = (request.name.clone(), request.role);
    let password_hash = auth::hash_password(&password).map_err(ApiError::Internal)?;
    service.create_user(&NewUser { name: name.clone(), role, password_hash, created_at: now })?;
    tracing::info!(admin, user = name, %role, "created user");
    let password = generated.then_some(password);
    Ok(CreatedUser { name, role, password })
}

/// The password `requested`, when long enough, else a generated one (`true`): the rule every
/// password an admin sets follows.
fn chosen_password(requested: Option<&str>) -> Result<(String, bool), ApiError> {
    match requested {
        Some(p) if p.chars().count() < auth::MIN_PASSWORD_LEN || p.len() > MAX_PASSWORD_BYTES => {
            Err(ApiError::Invalid(format!(
                "password must be {} to {MAX_PASSWORD_BYTES} characters long; choose a longer one, or leave it out to \
                 have one generated",
                auth::MIN_PASSWORD_LEN
            )))
        }
        Some(p) => Ok((p.to_string(), false)),
        None => Ok((auth::generate_password(), true)),
    }
}

/// Set a new password for a user (generated when none is given, answered once); their office web
/// page sessions end.
pub async fn reset_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    name: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<PasswordRequest>,
) -> Result<ApiJson<CreatedUser>, ApiError> {
    let Path(name) = name?;
    state
        .blocking(move |service| reset_password_as(service, &admin.user, &name, request.password.as_deref()))
        .await
        .map(ApiJson)
}

/// Give `name` a new password as `admin` asked: the API and the office web page both use this.
pub(crate) fn reset_password_as(
    service: &Service,
    admin: &str,
    name: &str,
    requested: Option<&str>,
) -> Result<CreatedUser, ApiError> {
    let (password, generated) = chosen_password(requested)?;
    let password_hash = auth::hash_password(&password).map_err(ApiError::Internal)?;
    service.reset_password(name, &password_hash)?;
    let user = service.user(name)?.ok_or_else(|| ApiError::NotFound(format!("no user named {name}")))?;
    tracing::info!(admin, user = name, "password reset");
    Ok(CreatedUser { name: user.name, role: user.role, password: generated.then_some(password) })
}

/// Change a user's role (refused while they hold villages or kecamatan of the old role).
pub async fn change_role(
    State(state): State<AppState>,
    Admin(admin): Admin,
    name: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<RoleRequest>,
) -> Result<ApiJson<UserView>, ApiError> {
    let Path(name) = name?;
    state.blocking(move |service| change_role_as(service, &admin.user, &name, request.role)).await.map(ApiJson)
}

/// Change `name`'s role as `admin` asked: the API and the office web page both use this.
pub(crate) fn change_role_as(service: &Service, admin: &str, name: &str, role: Role) -> Result<UserView, ApiError> {
    service.change_role(name, role)?;
    tracing::info!(admin, user = name, %role, "role changed");
    user_view(service, name)
}

/// Every user with their active assignments.
pub async fn list_users(State(state): State<AppState>, _: Admin) -> Result<ApiJson<Vec<UserView>>, ApiError> {
    let users = state.blocking(|service| Ok(service.users()?)).await?;
    Ok(ApiJson(users.into_iter().map(UserView::from).collect()))
}

/// Replace an enumerator's villages; every code must be in the region table.
pub async fn set_villages(
    State(state): State<AppState>,
    Admin(admin): Admin,
    name: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<VillagesRequest>,
) -> Result<ApiJson<UserView>, ApiError> {
    let Path(name) = name?;
    let now = state.clock.now();
    state
        .blocking(move |service| assign_as(service, &admin.user, &name, Role::Enumerator, &request.villages, now))
        .await
        .map(ApiJson)
}

/// Replace a supervisor's kecamatan; every code must be in the region table.
pub async fn set_kecamatan(
    State(state): State<AppState>,
    Admin(admin): Admin,
    name: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<KecamatanRequest>,
) -> Result<ApiJson<UserView>, ApiError> {
    let Path(name) = name?;
    let now = state.clock.now();
    state
        .blocking(move |service| assign_as(service, &admin.user, &name, Role::Supervisor, &request.kecamatan, now))
        .await
        .map(ApiJson)
}

/// Replace a user's areas as `admin` asked: villages for an enumerator (`role` Enumerator),
/// kecamatan for a supervisor; every code must be in the region table, or nothing changes. The
/// API and the office web page both assign through this.
pub(crate) fn assign_as(
    service: &Service,
    admin: &str,
    name: &str,
    role: Role,
    raw: &[String],
    now: time::OffsetDateTime,
) -> Result<UserView, ApiError> {
    if role == Role::Enumerator {
        require_role(service, name, Role::Enumerator, "villages", "kecamatan")?;
        let codes = canonical_codes(raw, "village", |raw| VillageCode::parse(raw).map(|c| c.as_str().to_string()))?;
        service.set_village_assignments(name, &codes, now)?;
        tracing::info!(admin, user = name, villages = codes.len(), "assigned villages");
    } else {
        require_role(service, name, Role::Supervisor, "kecamatan", "villages")?;
        let codes = canonical_codes(raw, "kecamatan", |raw| DistrictCode::parse(raw).map(|c| c.as_str().to_string()))?;
        service.set_kecamatan_assignments(name, &codes, now)?;
        tracing::info!(admin, user = name, kecamatan = codes.len(), "assigned kecamatan");
    }
    user_view(service, name)
}

/// Every registered device.
pub async fn list_devices(State(state): State<AppState>, _: Admin) -> Result<ApiJson<Vec<DeviceView>>, ApiError> {
    let devices = state.blocking(|service| Ok(service.devices()?)).await?;
    Ok(ApiJson(devices.into_iter().map(DeviceView::from).collect()))
}

/// Revoke a device: it can no longer log in, refresh or call the API, and is told to wipe.
pub async fn revoke_device(
    State(state): State<AppState>,
    Admin(admin): Admin,
    id: Result<Path<String>, PathRejection>,
) -> Result<ApiJson<DeviceView>, ApiError> {
    let Path(id) = id?;
    let device: DeviceId = id.parse().map_err(|_| {
        ApiError::Invalid(format!(
            "{id:?} is not a device id (a UUID such as 3f2b…); list devices with `pilar admin devices`"
        ))
    })?;
    let now = state.clock.now();
    let record = state.blocking(move |service| Ok(service.revoke_device(device, now)?)).await?;
    let Some(record) = record else {
        return Err(ApiError::NotFound(format!(
            "no device {device} is registered; list devices with `pilar admin devices`"
        )));
    };
    tracing::info!(admin = admin.user, user = record.user, %device, "revoked device");
    Ok(ApiJson(DeviceView::from(record)))
}

/// Refuse unless `name` exists with `role` (villages go to enumerators, kecamatan to supervisors).
fn require_role(service: &Service, name: &str, role: Role, what: &str, other: &str) -> Result<(), ApiError> {
    let user = service
        .user(name)?
        .ok_or_else(|| ApiError::NotFound(format!("no user named {name}; list users with `pilar admin user list`")))?;
    if user.role != role {
        return Err(ApiError::Invalid(format!(
            "{what} are assigned to {role}s only, and {name} is {}; assign {other} instead, or use another user",
            user.role
        )));
    }
    Ok(())
}

/// Parse every code (reporting every bad one at once), in canonical dotted form, sorted, deduplicated.
fn canonical_codes<E: std::fmt::Display>(
    raw: &[String],
    noun: &str,
    parse: impl Fn(&str) -> Result<String, E>,
) -> Result<Vec<String>, ApiError> {
    let mut codes = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    for code in raw {
        match parse(code) {
            Ok(c) => codes.push(c),
            Err(e) => problems.push(format!("- {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid(format!(
            "{} of the {noun} codes cannot be assigned; nothing was changed. Fix them and send the whole list again:\n{}",
            problems.len(),
            problems.join("\n")
        )));
    }
    codes.sort();
    codes.dedup();
    Ok(codes)
}

/// A user with their active assignments, as the API and the web page show one.
pub(crate) fn user_view(service: &Service, name: &str) -> Result<UserView, ApiError> {
    let user = service.user(name)?.ok_or_else(|| ApiError::NotFound(format!("no user named {name}")))?;
    Ok(UserView {
        name: user.name,
        role: user.role,
        created_at: rfc3339(user.created_at),
        villages: service.village_scope(name)?.active,
        kecamatan: service.kecamatan_scope(name)?,
    })
}
