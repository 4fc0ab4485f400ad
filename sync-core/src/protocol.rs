//! Wire types shared by `pilar` and `pilar-server`: accounts, login and errors (JSON), and the
//! sync messages (see `sync`). Changing a type here changes the protocol: keep old fields readable.

use crate::model::DeviceId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a user may do. Scope comes from assignments, never from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the server: accounts, assignments, devices, imports, exports.
    Admin,
    /// Reviews the households of assigned kecamatan.
    Supervisor,
    /// Visits the households of assigned villages.
    Enumerator,
}

impl Role {
    /// The spelling used in the database, tokens and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Enumerator => "enumerator",
        }
    }

    /// Parse the spelling used in the database, tokens and the CLI.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "enumerator" => Some(Role::Enumerator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/login`: a password login that also registers the device and its Automerge actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// User name.
    pub user: String,
    /// Password (sent over TLS in production; never logged).
    pub password: String,
    /// The device install logging in; its bytes are the device's Automerge actor.
    pub device: DeviceId,
    /// A human name for the device (e.g. the tablet's label), shown to admins.
    pub device_name: String,
}

/// Tokens and scope returned by a login or a refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Short-lived access JWT for the `Authorization: Bearer` header.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub access_expires_in: u64,
    /// Device-bound refresh token (the server keeps only its hash); exchanged for new tokens.
    pub refresh_token: String,
    /// The user logged in.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// Villages assigned to the user (enumerators).
    pub villages: Vec<String>,
    /// Kecamatan assigned to the user (supervisors).
    pub kecamatan: Vec<String>,
}

/// `POST /v1/token/refresh`: exchange a refresh token for new tokens (rotating the refresh token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
    /// The device the token was issued to; a token is useless on any other device.
    pub device: DeviceId,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `unauthorized`, `device_revoked`, `out_of_scope`.
    pub error: String,
    /// Lowercase sentence: what is wrong and what to do.
    pub message: String,
    /// Set when the device must delete its local data (it was revoked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wipe: bool,
}
