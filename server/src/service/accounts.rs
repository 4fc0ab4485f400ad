//! Accounts: users, their assignments (never deleted, ended instead), devices and their rotated
//! refresh tokens, and the server's secrets. The rules (who a device belongs to, when a refresh
//! token may be retried, when reuse ends a chain) live here, over the device row the backend
//! stores.
//!
//! Invariants:
//! - Assignments are never deleted: removing a village or kecamatan from a user sets `ended_at`,
//!   so sync can still accept a device's pending uploads for a recently ended village.
//! - Refresh tokens are stored only as SHA-256 hashes, one per device; using one replaces it. The
//!   replaced token's hash is kept for the retry window: presented again while its successor is
//!   unused, it gets that same successor (the caller derives it), never a new one.
//! - A revoked device stays revoked: no login or refresh brings it back.

use super::Service;
use super::scope::{VillageScope, scope_of_rows};
use crate::storage::{AssignmentKind, DeviceRow, NewUser, StorageError, Transactions, Tx, UserRecord};
use std::collections::BTreeMap;
use sync_core::model::DeviceId;
use sync_core::protocol::Role;
use time::OffsetDateTime;

/// How stale `last_seen_at` may get before an authenticated request rewrites it.
const LAST_SEEN_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// A time as stored: whole seconds (the seam keeps no more), for comparisons with stored times.
fn second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A user with their active assignments, for admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// Active village assignments (enumerators), sorted.
    pub villages: Vec<String>,
    /// Active kecamatan assignments (supervisors), sorted.
    pub kecamatan: Vec<String>,
}

/// A registered device, for admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device install (also its Automerge actor).
    pub id: DeviceId,
    /// The label given at login (e.g. the tablet's sticker).
    pub name: String,
    /// The user the device is registered to; a device never changes user.
    pub user: String,
    /// First login from this device.
    pub registered_at: OffsetDateTime,
    /// Last login, refresh or authenticated request (to the minute).
    pub last_seen_at: OffsetDateTime,
    /// When an admin revoked it.
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<DeviceRow> for DeviceRecord {
    fn from(d: DeviceRow) -> DeviceRecord {
        DeviceRecord {
            id: d.id,
            name: d.name,
            user: d.user,
            registered_at: d.registered_at,
            last_seen_at: d.last_seen_at,
            revoked_at: d.revoked_at,
        }
    }
}

/// A successful password login from a device, to record.
pub struct DeviceLogin<'a> {
    /// The device logging in.
    pub device: DeviceId,
    /// The user who logged in (password already verified).
    pub user: &'a str,
    /// The device's label.
    pub name: &'a str,
    /// SHA-256 (hex) of the new refresh token; replaces any earlier one of this device.
    pub refresh_hash: &'a str,
    /// The time of the login.
    pub now: OffsetDateTime,
}

/// The outcome of recording a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRegistration {
    /// The device is (now) registered to the user and holds the new refresh token.
    Registered,
    /// The device id belongs to another user; nothing changed.
    RegisteredToAnotherUser,
    /// The device was revoked; nothing changed and it must wipe.
    Revoked,
}

/// A refresh-token exchange to record: the caller derives `new_hash` from the presented token, so
/// a retry with the same token names the same successor.
#[derive(Clone)]
pub struct RefreshRotation<'a> {
    /// The device presenting the token.
    pub device: DeviceId,
    /// SHA-256 (hex) of the presented refresh token.
    pub old_hash: &'a str,
    /// SHA-256 (hex) of its successor, the token the device gets.
    pub new_hash: &'a str,
    /// The presented token must have been issued at or after this time (older ones expired).
    pub issued_after: OffsetDateTime,
    /// Until when the presented token may be retried for the same successor, once replaced.
    pub retry_until: OffsetDateTime,
    /// The time of the exchange.
    pub now: OffsetDateTime,
    /// Whether a stored refresh hash belongs to a token further down the presented token's chain
    /// (a successor of its successor, and so on): then the presented token is an older link,
    /// reused. The caller can tell (it derives successors).
    pub later_in_chain: &'a (dyn Fn(&str) -> bool + Sync),
}

impl std::fmt::Debug for RefreshRotation<'_> {
    // Hashes only, never tokens; still, they stay out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRotation").field("device", &self.device).field("now", &self.now).finish_non_exhaustive()
    }
}

/// The outcome of a refresh-token exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token matched and was replaced by its successor.
    Rotated {
        /// The device's user.
        user: String,
        /// The user's current role.
        role: Role,
    },
    /// The token was the one just replaced, its successor is still unused and the retry window
    /// is open (the answer to the first exchange was lost): the same successor is current.
    Retried {
        /// The device's user.
        user: String,
        /// The user's current role.
        role: Role,
    },
    /// The device was revoked; it must wipe.
    Revoked,
    /// An older token of the device's current chain came back outside the idempotent retry: the
    /// token just replaced after its window closed or after its successor was used, or a token
    /// further back ([`RefreshRotation::later_in_chain`]). Reuse means a copy is in other hands,
    /// so the chain was ended in the same transaction: no refresh token of the device works any
    /// more, and access tokens issued before now are refused (`sessions_ended_at`). The device
    /// logs in with its password again.
    Reused {
        /// The device's user (for the log).
        user: String,
    },
    /// Unknown device, wrong, replaced (by a login) or expired token: log in again.
    Invalid,
}

/// Whether a device may act for a user now (checked on every authenticated request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAccess {
    /// Registered to this user and not revoked.
    Active {
        /// The user's current role (authoritative over the token's copy).
        role: Role,
        /// Access tokens issued before this time are refused: the device's sessions were ended
        /// (refresh-token reuse).
        sessions_ended_at: Option<OffsetDateTime>,
    },
    /// Revoked: the device must wipe.
    Revoked,
    /// Not registered, or registered to someone else.
    Unknown,
}

/// Replace the active assignments of one kind of `user` with `codes`: new ones start now, missing
/// ones end now (kept as history).
fn replace_assignments(
    tx: &mut dyn Tx,
    kind: AssignmentKind,
    user: &str,
    codes: &[String],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    if tx.user(user)?.is_none() {
        return Err(StorageError::NoSuchUser(user.to_string()));
    }
    let active = scope_of_rows(tx, kind, user)?.active;
    for code in active.iter().filter(|c| !codes.contains(c)) {
        tx.end_assignment(kind, user, code, now)?;
    }
    for code in codes.iter().filter(|c| !active.contains(c)) {
        tx.start_assignment(kind, user, code, now)?;
    }
    Ok(())
}

/// The server secret `name` inside `tx`, made (32 random bytes) on first use; when two servers
/// make it at once, the first stored wins and both use it.
pub(super) fn secret(tx: &mut dyn Tx, name: &str) -> Result<Vec<u8>, StorageError> {
    if let Some(key) = tx.server_secret(name)? {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    tx.insert_server_secret(name, &key)?;
    tx.server_secret(name)?.ok_or_else(|| StorageError::Corrupt(format!("server secret {name} was not stored")))
}

impl Service {
    /// How many users exist (zero means first start).
    pub fn user_count(&self) -> Result<u64, StorageError> {
        self.db.read(|tx| tx.user_count())
    }

    /// Create a user; [`StorageError::UserExists`] when the name is taken.
    pub fn create_user(&self, user: &NewUser) -> Result<(), StorageError> {
        self.db.write(
            |tx| {
                if tx.insert_user(user)? { Ok(()) } else { Err(StorageError::UserExists(user.name.clone())) }
            },
        )
    }

    /// One user by name.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        self.db.read(|tx| tx.user(name))
    }

    /// Give `name` a new password (its hash): their office web page sessions end; their devices
    /// keep syncing (a lost device is revoked, not re-passworded).
    pub fn reset_password(&self, name: &str, password_hash: &str) -> Result<(), StorageError> {
        let found = self.db.write(|tx| {
            let found = tx.set_user_password(name, password_hash)?;
            if found {
                tx.delete_web_sessions_of(name)?;
            }
            Ok(found)
        })?;
        if found { Ok(()) } else { Err(StorageError::NotFound(format!("no user named {name}"))) }
    }

    /// Change `name`'s role. Refused while they hold areas of their present role (villages or
    /// kecamatan): an admin ends those first, so nobody keeps a scope their new role does not
    /// read. Their office web page sessions end.
    pub fn change_role(&self, name: &str, role: Role) -> Result<(), StorageError> {
        self.db.write(|tx| {
            let Some(user) = tx.user(name)? else {
                return Err(StorageError::NotFound(format!("no user named {name}")));
            };
            if user.role == role {
                return Ok(());
            }
            let villages = tx.assignments_of(AssignmentKind::Village, name)?.iter().any(|a| a.ended_at.is_none());
            let kecamatan = tx.assignments_of(AssignmentKind::Kecamatan, name)?.iter().any(|a| a.ended_at.is_none());
            if villages || kecamatan {
                return Err(StorageError::Refused(format!(
                    "{name} still holds {} as {}; remove them first (assign an empty list), then change the role",
                    if villages { "villages" } else { "kecamatan" },
                    user.role
                )));
            }
            tx.set_user_role(name, role)?;
            tx.delete_web_sessions_of(name)?;
            Ok(())
        })
    }

    /// Every user with their active assignments, by name.
    pub fn users(&self) -> Result<Vec<UserSummary>, StorageError> {
        self.db.read(|tx| {
            let mut users: BTreeMap<String, UserSummary> = tx
                .users()?
                .into_iter()
                .map(|u| {
                    let summary = UserSummary {
                        name: u.name.clone(),
                        role: u.role,
                        created_at: u.created_at,
                        villages: Vec::new(),
                        kecamatan: Vec::new(),
                    };
                    (u.name, summary)
                })
                .collect();
            for (user, village) in tx.active_assignments(AssignmentKind::Village)? {
                if let Some(summary) = users.get_mut(&user) {
                    summary.villages.push(village);
                }
            }
            for (user, kecamatan) in tx.active_assignments(AssignmentKind::Kecamatan)? {
                if let Some(summary) = users.get_mut(&user) {
                    summary.kecamatan.push(kecamatan);
                }
            }
            Ok(users.into_values().collect())
        })
    }

    /// Replace a user's active villages: new ones start now, missing ones end now (kept as
    /// history). Codes must already be validated and canonical (dotted).
    pub fn set_village_assignments(
        &self,
        user: &str,
        villages: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.db.write(|tx| replace_assignments(tx, AssignmentKind::Village, user, villages, now))
    }

    /// Replace a user's active kecamatan, like [`Service::set_village_assignments`].
    pub fn set_kecamatan_assignments(
        &self,
        user: &str,
        kecamatan: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.db.write(|tx| replace_assignments(tx, AssignmentKind::Kecamatan, user, kecamatan, now))
    }

    /// The user's active villages and the villages whose assignment ended.
    pub fn village_scope(&self, user: &str) -> Result<VillageScope, StorageError> {
        self.db.read(|tx| scope_of_rows(tx, AssignmentKind::Village, user))
    }

    /// The user's active kecamatan, sorted.
    pub fn kecamatan_scope(&self, user: &str) -> Result<Vec<String>, StorageError> {
        self.db.read(|tx| Ok(scope_of_rows(tx, AssignmentKind::Kecamatan, user)?.active))
    }

    /// Record that `device` was handed `villages` (a login, refresh or pack answer listed them)
    /// at `now`: the first time is kept, so that after an assignment ends the server knows which
    /// devices held the village before. (A sync answer records its villages in its own
    /// transaction.)
    pub fn note_villages_handed(
        &self,
        device: DeviceId,
        villages: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        if villages.is_empty() {
            return Ok(());
        }
        self.db.write(|tx| tx.hand_villages(device, villages, now))
    }

    /// Every village `device` was ever handed, with the first time.
    pub fn villages_handed(&self, device: DeviceId) -> Result<BTreeMap<String, OffsetDateTime>, StorageError> {
        self.db.read(|tx| tx.villages_handed(device))
    }

    /// Record a password login: register the device to the user (first time) or refresh its
    /// label, last-seen time and refresh token.
    pub fn register_device(&self, login: &DeviceLogin<'_>) -> Result<DeviceRegistration, StorageError> {
        self.db.write(|tx| match tx.device(login.device)? {
            None => {
                tx.insert_device(&DeviceRow {
                    id: login.device,
                    user: login.user.to_string(),
                    name: login.name.to_string(),
                    registered_at: login.now,
                    last_seen_at: login.now,
                    revoked_at: None,
                    refresh_hash: Some(login.refresh_hash.to_string()),
                    refresh_issued_at: Some(login.now),
                    previous_refresh_hash: None,
                    previous_refresh_until: None,
                    sessions_ended_at: None,
                })?;
                Ok(DeviceRegistration::Registered)
            }
            Some(row) if row.revoked_at.is_some() => Ok(DeviceRegistration::Revoked),
            Some(row) if row.user != login.user => Ok(DeviceRegistration::RegisteredToAnotherUser),
            Some(mut row) => {
                row.name = login.name.to_string();
                row.last_seen_at = login.now;
                row.refresh_hash = Some(login.refresh_hash.to_string());
                row.refresh_issued_at = Some(login.now);
                row.previous_refresh_hash = None;
                row.previous_refresh_until = None;
                tx.update_device(&row)?;
                Ok(DeviceRegistration::Registered)
            }
        })
    }

    /// Exchange the device's refresh token (by hash) for its successor in one write transaction:
    /// the current token works if issued at or after `issued_after`; the token it replaced works
    /// again only while the successor is unused and `retry_until` (set at rotation) has not passed.
    pub fn rotate_refresh_token(&self, rotation: &RefreshRotation<'_>) -> Result<RefreshOutcome, StorageError> {
        self.db.write(|tx| {
            let Some(mut row) = tx.device(rotation.device)? else { return Ok(RefreshOutcome::Invalid) };
            let Some(user) = tx.user(&row.user)? else { return Ok(RefreshOutcome::Invalid) };
            if row.revoked_at.is_some() {
                return Ok(RefreshOutcome::Revoked);
            }
            let now = rotation.now;
            if row.refresh_hash.as_deref() == Some(rotation.old_hash) {
                let fresh = row.refresh_issued_at.is_some_and(|t| t >= second(rotation.issued_after));
                if !fresh {
                    return Ok(RefreshOutcome::Invalid);
                }
                row.refresh_hash = Some(rotation.new_hash.to_string());
                row.refresh_issued_at = Some(now);
                row.last_seen_at = now;
                row.previous_refresh_hash = Some(rotation.old_hash.to_string());
                row.previous_refresh_until = Some(rotation.retry_until);
                tx.update_device(&row)?;
                return Ok(RefreshOutcome::Rotated { user: user.name, role: user.role });
            }
            let older_link = match row.previous_refresh_hash.as_deref() {
                Some(previous) if previous == rotation.old_hash => {
                    // The token just replaced. Its successor is still current only if the device
                    // never used it: then the answer to the first exchange was lost, and it is
                    // given again.
                    let successor_unused = row.refresh_hash.as_deref() == Some(rotation.new_hash);
                    let window_open = row.previous_refresh_until.is_some_and(|until| until >= second(now));
                    if successor_unused && window_open {
                        tx.touch_device(rotation.device, now)?;
                        return Ok(RefreshOutcome::Retried { user: user.name, role: user.role });
                    }
                    true
                }
                // A token further back in the chain: the current one descends from it.
                _ => row.refresh_hash.as_deref().is_some_and(|current| (rotation.later_in_chain)(current)),
            };
            if !older_link {
                return Ok(RefreshOutcome::Invalid);
            }
            // A replaced token came back outside the retry window: one of the two presenters is
            // not the device. End the chain and every session of the device; it logs in again.
            row.refresh_hash = None;
            row.refresh_issued_at = None;
            row.previous_refresh_hash = None;
            row.previous_refresh_until = None;
            row.sessions_ended_at = Some(now);
            tx.update_device(&row)?;
            Ok(RefreshOutcome::Reused { user: user.name })
        })
    }

    /// The server secret named `name` (32 random bytes, made on first use and kept in the
    /// database so that it lives and dies with the data it protects, and every server on the
    /// database shares it).
    pub fn server_key(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        if let Some(key) = self.db.read(|tx| tx.server_secret(name))? {
            return Ok(key);
        }
        self.db.write(|tx| secret(tx, name))
    }

    /// The server secret named `name`, when one is stored.
    pub fn stored_server_key(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.read(|tx| tx.server_secret(name))
    }

    /// The server secret named `name`, stored as `value` unless one is stored already (the stored
    /// one wins, also over another server storing one at the same moment): for a key that
    /// existed before the database held it.
    pub fn adopt_server_key(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StorageError> {
        self.db.write(|tx| {
            tx.insert_server_secret(name, value)?;
            tx.server_secret(name)?.ok_or_else(|| StorageError::Corrupt(format!("server secret {name} was not stored")))
        })
    }

    /// Whether `device` may act for `user`; notes the device as seen (at most once a minute, so
    /// most requests stay read-only).
    pub fn device_access(
        &self,
        device: DeviceId,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<DeviceAccess, StorageError> {
        let found = self.db.read(|tx| {
            let Some(row) = tx.device(device)? else { return Ok(None) };
            let role = tx.user(&row.user)?.map(|u| u.role);
            Ok(Some((row, role)))
        })?;
        let Some((row, Some(role))) = found else { return Ok(DeviceAccess::Unknown) };
        if row.revoked_at.is_some() {
            return Ok(DeviceAccess::Revoked);
        }
        if row.user != user {
            return Ok(DeviceAccess::Unknown);
        }
        if row.last_seen_at < second(now - LAST_SEEN_GRANULARITY) {
            self.db.write(|tx| tx.touch_device(device, now))?;
        }
        Ok(DeviceAccess::Active { role, sessions_ended_at: row.sessions_ended_at })
    }

    /// When `device` was registered (its first login), if it is.
    pub fn device_registered_at(&self, device: DeviceId) -> Result<Option<OffsetDateTime>, StorageError> {
        self.db.read(|tx| Ok(tx.device(device)?.map(|d| d.registered_at)))
    }

    /// Every registered device, by user then registration time.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StorageError> {
        self.db.read(|tx| Ok(tx.devices()?.into_iter().map(DeviceRecord::from).collect()))
    }

    /// Revoke a device and drop its refresh tokens; revoking twice keeps the first time.
    /// `None` when no such device is registered.
    pub fn revoke_device(&self, device: DeviceId, now: OffsetDateTime) -> Result<Option<DeviceRecord>, StorageError> {
        self.db.write(|tx| {
            let Some(mut row) = tx.device(device)? else { return Ok(None) };
            row.revoked_at = Some(row.revoked_at.unwrap_or(now));
            row.refresh_hash = None;
            row.refresh_issued_at = None;
            row.previous_refresh_hash = None;
            row.previous_refresh_until = None;
            tx.update_device(&row)?;
            // As stored: to the second.
            Ok(tx.device(device)?.map(DeviceRecord::from))
        })
    }
}
