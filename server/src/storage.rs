//! The server's storage seam: one object-safe [`Storage`] trait with one backend per module
//! (SQLite in [`sqlite`] now; PostgreSQL later), chosen once at start-up.
//!
//! Every method is blocking. Handlers never call them on an async worker: they go through
//! `AppState::blocking`, which runs the closure on tokio's blocking pool.
//!
//! Invariants:
//! - Assignments are never deleted: removing a village or kecamatan from a user sets `ended_at`,
//!   so sync can still accept a device's pending uploads for a recently ended village.
//! - Refresh tokens are stored only as SHA-256 hashes, one per device; using one replaces it. The
//!   replaced token's hash is kept for the retry window: presented again while its successor is
//!   unused, it gets that same successor (the caller derives it), never a new one.
//! - A revoked device stays revoked: no login or refresh brings it back.

#[cfg(test)]
mod conformance;
pub mod sqlite;

pub use sqlite::SqliteStorage;

use crate::roster::ImportSummary;
use sync_core::model::{Editor, HouseholdId};
use sync_core::model::{FieldPath, ReviewDecision, ReviewStatus};
use sync_core::protocol::{
    ConflictItem, DuplicatePair, ExportFilter, ExportPage, HouseholdBrief, MergeReply, ProgressReport,
};

pub use sqlite::supervise::Choice;
use sync_core::roster::RosterHousehold;
use sync_core::sync::{PackPage, SyncRequest};
use uuid::Uuid;

use std::collections::BTreeMap;
use sync_core::model::DeviceId;
use sync_core::protocol::Role;
use time::OffsetDateTime;

/// Whether `village` lies in one of `areas` (village, kecamatan or kabupaten codes); `None` is
/// everywhere.
pub fn in_areas(village: &str, areas: Option<&[String]>) -> bool {
    match areas {
        None => true,
        Some(areas) => areas.iter().any(|a| {
            village == a
                || (village.len() > a.len() && village.starts_with(a.as_str()) && village.as_bytes()[a.len()] == b'.')
        }),
    }
}

/// What can go wrong in storage. Callers branch on the account cases; the rest are internal.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed (disk full, permissions, corruption, a bug in a query).
    #[error("database: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data is not in the form the server wrote it.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The database was written by a newer server.
    #[error(
        "database schema version {found} is newer than this pilar-server supports ({supported}); upgrade pilar-server"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// `create_user` with a name that is taken.
    #[error("user {0} already exists")]
    UserExists(String),
    /// An operation named a user that does not exist.
    #[error("no user named {0}")]
    NoSuchUser(String),
    /// A request the stored state refuses (a chunk missing from an import, a committed import
    /// staged again): the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// A named record (a household) does not exist: the message says which and what to do.
    #[error("{0}")]
    NotFound(String),
    /// The request was made against a state that has moved on (a conflict already resolved, a
    /// household already merged): the message says what to look at again.
    #[error("{0}")]
    Stale(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> StorageError {
        StorageError::Backend(Box::new(e))
    }
}

/// A user to create.
pub struct NewUser {
    /// Login name (validated by the caller: lowercase letters, digits, `.`, `-`, `_`).
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Argon2id PHC string; the password itself is never stored.
    pub password_hash: String,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

/// A stored user, as login needs it.
#[derive(Clone)]
pub struct UserRecord {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for UserRecord {
    // The hash is a credential's verifier: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
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

/// The villages a user works in now, and those taken from them (for accepting pending uploads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VillageScope {
    /// Villages with an active assignment, sorted: the device receives these.
    pub active: Vec<String>,
    /// Villages whose assignment ended and that are not active again, sorted by village: the
    /// device never receives them again, but its pending uploads for them may still be accepted
    /// for a while (see [`EndedVillage`]).
    pub ended: Vec<EndedAssignment>,
}

/// A village taken from a user, and when: the latest end among its assignment rows (a village
/// assigned, ended and assigned again has several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedAssignment {
    /// The village code.
    pub village: String,
    /// When its last assignment to the user ended.
    pub ended_at: OffsetDateTime,
}

/// A village whose assignment to the caller ended, as sync treats the calling device's pending
/// uploads for it. They are accepted only while [`EndedVillage::grace_open`], only from a device
/// that was handed the village before the end ([`EndedVillage::held_before_end`]), and only for
/// households that the server stored before the end or that the device created before it (the
/// time of the household's first change). Everything else is `out_of_scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedVillage {
    /// The village code.
    pub village: String,
    /// When the (latest) assignment ended.
    pub ended_at: OffsetDateTime,
    /// The end of the grace period for pending uploads (`ended_at` + the configured grace).
    pub grace_until: OffsetDateTime,
    /// Whether the grace period is still running for this request.
    pub grace_open: bool,
    /// Whether the calling device was handed the village (a login, sync or pack answer listed
    /// it) at or before `ended_at`.
    pub held_before_end: bool,
}

/// Who is syncing and the villages they may read and write (decided by the server).
#[derive(Debug, Clone)]
pub struct SyncCaller {
    /// The user.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// The calling device.
    pub device: DeviceId,
    /// Villages the caller may read and write now.
    pub active: Vec<String>,
    /// Villages whose assignment ended: nothing is sent, pending uploads are accepted within the
    /// bounds of [`EndedVillage`].
    pub ended: Vec<EndedVillage>,
    /// When the calling device was registered (its first login): admission refuses changes dated
    /// much earlier (`forged_writer`).
    pub registered_at: OffsetDateTime,
}

impl EndedVillage {
    /// The ended assignment `ended` as sync treats the device that was `handed` these villages
    /// (first times, see [`Storage::villages_handed`]), with `grace` after the end, at `now`.
    pub fn new(
        ended: EndedAssignment,
        handed: &BTreeMap<String, OffsetDateTime>,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> EndedVillage {
        EndedVillage {
            held_before_end: handed.get(&ended.village).is_some_and(|first| *first <= ended.ended_at),
            grace_until: ended.ended_at + grace,
            grace_open: now < ended.ended_at + grace,
            village: ended.village,
            ended_at: ended.ended_at,
        }
    }

    /// Whether the device may still upload to the village (and read back what it needs to
    /// repair its copies): within the grace, and it held the village before the end.
    pub fn accepts_pending_work(&self) -> bool {
        self.grace_open && self.held_before_end
    }
}

impl SyncCaller {
    /// The ended village `village`, if the caller's assignment to it ended.
    pub fn ended_village(&self, village: &str) -> Option<&EndedVillage> {
        self.ended.iter().find(|e| e.village == village)
    }
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
    /// reused. The caller can tell (it derives successors); the backend only asks.
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

/// Everything the server keeps, behind one object-safe trait (`Arc<dyn Storage>` in the state).
///
/// Methods block; call them through `AppState::blocking`. New features add methods here and in
/// every backend; SQLite tables are added as a new entry of `sqlite::MIGRATIONS`.
pub trait Storage: Send + Sync + 'static {
    // ---- users ----

    /// How many users exist (zero means first start).
    fn user_count(&self) -> Result<u64, StorageError>;

    /// Create a user; [`StorageError::UserExists`] when the name is taken.
    fn create_user(&self, user: &NewUser) -> Result<(), StorageError>;

    /// One user by name.
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StorageError>;

    /// Every user with their active assignments, by name.
    fn users(&self) -> Result<Vec<UserSummary>, StorageError>;

    // ---- assignments ----

    /// Replace a user's active villages: new ones start now, missing ones end now (kept as
    /// history). Codes must already be validated and canonical (dotted).
    fn set_village_assignments(&self, user: &str, villages: &[String], now: OffsetDateTime)
    -> Result<(), StorageError>;

    /// Replace a user's active kecamatan, like [`Storage::set_village_assignments`].
    fn set_kecamatan_assignments(
        &self,
        user: &str,
        kecamatan: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;

    /// The user's active villages and the villages whose assignment ended.
    fn village_scope(&self, user: &str) -> Result<VillageScope, StorageError>;

    /// The user's active kecamatan, sorted.
    fn kecamatan_scope(&self, user: &str) -> Result<Vec<String>, StorageError>;

    /// Record that `device` was handed `villages` (a login, refresh or pack answer listed them)
    /// at `now`: the first time is kept, so that after an assignment ends the server knows which
    /// devices held the village before. (A sync answer records its villages in its own
    /// transaction.)
    fn note_villages_handed(
        &self,
        device: DeviceId,
        villages: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;

    /// Every village `device` was ever handed, with the first time.
    fn villages_handed(&self, device: DeviceId) -> Result<BTreeMap<String, OffsetDateTime>, StorageError>;

    // ---- devices and refresh tokens ----

    /// Record a password login: register the device to the user (first time) or refresh its
    /// label, last-seen time and refresh token.
    fn register_device(&self, login: &DeviceLogin<'_>) -> Result<DeviceRegistration, StorageError>;

    /// Exchange the device's refresh token (by hash) for its successor in one write transaction:
    /// the current token works if issued at or after `issued_after`; the token it replaced works
    /// again only while the successor is unused and `retry_until` (set at rotation) has not passed.
    fn rotate_refresh_token(&self, rotation: &RefreshRotation<'_>) -> Result<RefreshOutcome, StorageError>;

    /// The server secret named `name` (32 random bytes, made on first use and kept in the
    /// database so that it lives and dies with the data it protects).
    fn server_key(&self, name: &str) -> Result<Vec<u8>, StorageError>;

    /// Whether `device` may act for `user`; notes the device as seen (at most once a minute).
    fn device_access(&self, device: DeviceId, user: &str, now: OffsetDateTime) -> Result<DeviceAccess, StorageError>;

    /// When `device` was registered (its first login), if it is.
    fn device_registered_at(&self, device: DeviceId) -> Result<Option<OffsetDateTime>, StorageError>;

    /// Every registered device, by user then registration time.
    fn devices(&self) -> Result<Vec<DeviceRecord>, StorageError>;

    /// Revoke a device and drop its refresh token; revoking twice keeps the first time.
    /// `None` when no such device is registered.
    fn revoke_device(&self, device: DeviceId, now: OffsetDateTime) -> Result<Option<DeviceRecord>, StorageError>;

    // --- sync ---

    /// Handle one sync request in one write transaction: admit the pushed changes, read the feed
    /// after the caller's cursors, and remember the encoded response under (device, batch) so a
    /// retry gets the same bytes back. Returns the encoded response body.
    fn sync(&self, caller: &SyncCaller, request: &SyncRequest, now: OffsetDateTime) -> Result<Vec<u8>, StorageError>;

    /// One page of a village's snapshot pack (compacted documents after `after`, by id).
    fn pack_page(&self, village: &str, after: Option<HouseholdId>, limit: u32) -> Result<PackPage, StorageError>;

    /// The stored documents of these households with their villages (unknown ids are left out):
    /// what a device restores a damaged copy from.
    fn documents(&self, ids: &[HouseholdId]) -> Result<Vec<(HouseholdId, String, Vec<u8>)>, StorageError>;

    // --- roster import ---

    /// Stage chunk `chunk` of roster import `import` (replacing a chunk of that number), already
    /// checked. Refused once the import is committed.
    fn roster_stage(
        &self,
        import: Uuid,
        chunk: u32,
        user: &str,
        households: &[RosterHousehold],
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;

    /// Apply every staged chunk (`0..chunks`) of an import in one write transaction, as `editor`:
    /// households matched by DTSEN family id are updated, the others created, and their changes
    /// enter the feed. A retried commit returns the first commit's summary.
    fn roster_commit(&self, import: Uuid, chunks: u32, editor: &Editor) -> Result<ImportSummary, StorageError>;

    // --- exports ---

    /// One page of the households whose village code starts with `area` (a kecamatan or
    /// kabupaten code and its dot), in id order after `after`, that pass `filter`.
    fn export_page(
        &self,
        area: &str,
        after: Option<HouseholdId>,
        limit: u32,
        filter: &ExportFilter,
    ) -> Result<ExportPage, StorageError>;

    // --- supervision: areas are kecamatan or kabupaten codes; `None` means everywhere (admin) ---

    /// Bring the derived facts behind the supervisor's lists up to date (also run in the
    /// background after a roster import, so the first list does not pay for a whole kabupaten).
    fn refresh_derived(&self) -> Result<(), StorageError>;

    /// The village a household belongs to (`None`: no such household), for scope checks.
    fn household_village(&self, id: HouseholdId) -> Result<Option<String>, StorageError>;

    /// Households whose id starts with `prefix` (lowercase hex and dashes), with their villages,
    /// in id order, at most `limit`: a supervisor names a household by the first characters its
    /// lists show, without a copy of the kecamatan on the office laptop.
    fn households_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<(HouseholdId, String)>, StorageError>;

    /// Visited households of the areas, optionally only those with one effective review status.
    fn review_list(
        &self,
        areas: Option<&[String]>,
        status: Option<ReviewStatus>,
    ) -> Result<Vec<HouseholdBrief>, StorageError>;

    /// Approve or return a household as `editor` (a server-side device); the change enters the feed.
    fn review(
        &self,
        id: HouseholdId,
        editor: &Editor,
        decision: ReviewDecision,
        comment: Option<&str>,
    ) -> Result<HouseholdBrief, StorageError>;

    /// Every open conflict of the areas, each value with its writer.
    fn conflicts(&self, areas: Option<&[String]>) -> Result<Vec<ConflictItem>, StorageError>;

    /// Settle the conflict at `path` by picking a listed value or writing a new one.
    fn resolve(
        &self,
        id: HouseholdId,
        editor: &Editor,
        path: &FieldPath,
        choice: &Choice,
    ) -> Result<HouseholdBrief, StorageError>;

    /// Households suspected to be the same family (at least one of each pair in the areas).
    fn duplicates(&self, areas: Option<&[String]>) -> Result<Vec<DuplicatePair>, StorageError>;

    /// Fold `retired` into `survivor` as `editor`; later edits of `retired` keep being folded.
    fn merge(&self, survivor: HouseholdId, retired: HouseholdId, editor: &Editor) -> Result<MergeReply, StorageError>;

    /// Record that two suspected households are different families.
    fn dismiss(&self, a: HouseholdId, b: HouseholdId, user: &str, now: OffsetDateTime) -> Result<(), StorageError>;

    /// Counts per village and enumerator, and each device's last sync.
    fn progress(&self, areas: Option<&[String]>) -> Result<ProgressReport, StorageError>;
}
