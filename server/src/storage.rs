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

pub mod conformance;
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

use std::collections::{BTreeMap, BTreeSet};
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

// ------------------------------------------------------------------------------------------------
// The seam: transactions and data operations. Every rule lives above it (`crate::service`).
// ------------------------------------------------------------------------------------------------

/// A server database: read and write transactions over the data operations of [`ReadTx`] and
/// [`Tx`]. One implementation per backend module, chosen once at start-up; object-safe, so the
/// server holds an `Arc<dyn Database>`.
///
/// Contract for every backend (checked by `storage::conformance`):
/// - [`Database::read_tx`] runs on one consistent snapshot and never waits for a writer (SQLite:
///   a pooled read-only connection under WAL; PostgreSQL: `REPEATABLE READ READ ONLY`).
/// - [`Database::write_tx`] commits everything the closure did, or nothing (the closure's error
///   rolls it back). Writers may run concurrently (PostgreSQL) or one at a time (SQLite).
/// - A backend may run a closure again after a transient failure (a PostgreSQL serialization
///   failure or deadlock, as Zed's collab layer does): closures must not keep effects outside the
///   transaction from one run to the next.
/// - Times are stored to the whole second, truncated (`sessions_ended_at` to the millisecond).
/// - Blocking: call it from the blocking pool (`AppState::blocking`), never an async worker.
pub trait Database: Send + Sync + 'static {
    /// Run `work` in a read-only transaction (prefer [`Transactions::read`]).
    fn read_tx(&self, work: &mut dyn FnMut(&mut dyn ReadTx) -> Result<(), StorageError>) -> Result<(), StorageError>;

    /// Run `work` in a write transaction and commit it (prefer [`Transactions::write`]).
    fn write_tx(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StorageError>) -> Result<(), StorageError>;
}

/// Typed results over [`Database`]'s object-safe transactions: `db.read(|tx| ...)` returns what
/// the closure returns.
pub trait Transactions {
    /// Run `work` in a read-only transaction on one snapshot.
    fn read<T>(&self, work: impl FnMut(&mut dyn ReadTx) -> Result<T, StorageError>) -> Result<T, StorageError>;
    /// Run `work` in one write transaction; commits when it succeeds.
    fn write<T>(&self, work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>) -> Result<T, StorageError>;
}

impl<D: Database + ?Sized> Transactions for D {
    fn read<T>(&self, mut work: impl FnMut(&mut dyn ReadTx) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut out = None;
        self.read_tx(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })?;
        out.ok_or_else(not_run)
    }

    fn write<T>(&self, mut work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut out = None;
        self.write_tx(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })?;
        out.ok_or_else(not_run)
    }
}

fn not_run() -> StorageError {
    StorageError::Backend("the database backend returned without running the transaction".into())
}

/// The two kinds of assignment: villages (enumerators) and kecamatan (supervisors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentKind {
    /// A village (desa/kelurahan) assigned to an enumerator.
    Village,
    /// A kecamatan assigned to a supervisor.
    Kecamatan,
}

/// One assignment row: assignments are never deleted, an ended one keeps `ended_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The user it is assigned to.
    pub user: String,
    /// The village or kecamatan code.
    pub code: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// When it ended (`None`: active).
    pub ended_at: Option<OffsetDateTime>,
}

/// A device's row: registration, refresh-token chain, revocation, sessions.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// The device install (also its Automerge actor).
    pub id: DeviceId,
    /// The user it is registered to.
    pub user: String,
    /// Its label.
    pub name: String,
    /// First login.
    pub registered_at: OffsetDateTime,
    /// Last login, refresh or authenticated request.
    pub last_seen_at: OffsetDateTime,
    /// When an admin revoked it.
    pub revoked_at: Option<OffsetDateTime>,
    /// SHA-256 (hex) of the current refresh token (`None`: the chain was ended).
    pub refresh_hash: Option<String>,
    /// When the current refresh token was issued.
    pub refresh_issued_at: Option<OffsetDateTime>,
    /// SHA-256 (hex) of the refresh token just replaced, retriable until `previous_refresh_until`.
    pub previous_refresh_hash: Option<String>,
    /// End of the replaced token's retry window.
    pub previous_refresh_until: Option<OffsetDateTime>,
    /// Access tokens issued before this time (milliseconds) are refused.
    pub sessions_ended_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for DeviceRow {
    // Hashes of credentials stay out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRow")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("registered_at", &self.registered_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A stored household document with its scope and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdRow {
    /// The household.
    pub id: HouseholdId,
    /// Its village (the scope unit; never changes).
    pub village: String,
    /// The whole Automerge document, saved.
    pub doc: Vec<u8>,
    /// Its heads, comma-separated hex (compared to tell whether it moved).
    pub heads: String,
    /// When it was first stored (`None` on rows older than that column).
    pub created_at: Option<OffsetDateTime>,
}

/// A household document to store (created, or replacing the stored one).
#[derive(Debug, Clone, Copy)]
pub struct HouseholdWrite<'a> {
    /// The household.
    pub id: HouseholdId,
    /// Its village (kept from the first write when the household exists).
    pub village: &'a str,
    /// The whole document, saved.
    pub doc: &'a [u8],
    /// Its heads, comma-separated hex.
    pub heads: &'a str,
    /// The feed position of its latest change in its village.
    pub position: u64,
    /// The time of the write (`created_at` too when new).
    pub at: OffsetDateTime,
}

/// A change to insert into the feed at `position` of its village.
#[derive(Debug, Clone, Copy)]
pub struct NewChange<'a> {
    /// Its position in the village's numbering (see `service::feed`).
    pub position: u64,
    /// The change hash (hex): a change is stored once.
    pub hash: &'a str,
    /// The household it belongs to.
    pub household: HouseholdId,
    /// The household's village.
    pub village: &'a str,
    /// The device it is recorded for (a server-side device for server writes).
    pub device: DeviceId,
    /// The user who wrote it.
    pub user: &'a str,
    /// The raw Automerge change.
    pub bytes: &'a [u8],
    /// When it arrived.
    pub received_at: OffsetDateTime,
}

/// A change read from the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedChange {
    /// Its position in its village's numbering.
    pub position: u64,
    /// The household it belongs to.
    pub household: HouseholdId,
    /// The village.
    pub village: String,
    /// The raw Automerge change.
    pub bytes: Vec<u8>,
}

/// An encoded sync response remembered under (device, batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The encoded body, as sent.
    pub body: Vec<u8>,
    /// The `max_changes` it was made for (`None` on rows older than that column).
    pub max_changes: Option<u32>,
}

/// A roster import: staged until committed, then its summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterImportRow {
    /// The admin who staged it.
    pub user: String,
    /// When its first chunk was staged.
    pub created_at: OffsetDateTime,
    /// When it was committed.
    pub committed_at: Option<OffsetDateTime>,
    /// The commit's summary (JSON), kept for a retried commit.
    pub summary: Option<String>,
}

/// Derived facts of one household, as the supervisor's lists read them (encoded above the seam).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsRow {
    /// The household.
    pub household: HouseholdId,
    /// Its village.
    pub village: String,
    /// The household version the facts were derived from.
    pub version: u64,
    /// Its brief (JSON).
    pub brief: String,
    /// Its open conflicts (JSON).
    pub conflicts: String,
    /// How many conflicts.
    pub conflict_count: u32,
    /// Effective review status.
    pub review: Option<String>,
    /// The last visit's outcome code when final.
    pub final_outcome: Option<i64>,
    /// Who made the last visit.
    pub last_visit_by: Option<String>,
    /// Number of visits.
    pub visits: u32,
    /// The survivor it was folded into, if it was.
    pub merged_into: Option<String>,
}

/// Households sharing one duplicate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGroup {
    /// What the key is made of (`same_kk`, `shared_nik`, `same_head_name`).
    pub kind: String,
    /// The households holding it, in id order.
    pub households: Vec<HouseholdId>,
}

/// A household folded into another: what was folded so far, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldRow {
    /// The household retired into the survivor.
    pub retired: HouseholdId,
    /// The household kept.
    pub survivor: HouseholdId,
    /// What was folded so far (JSON of `sync_core::model::Fold`).
    pub fold: String,
    /// The supervisor who asked for it.
    pub user: String,
    /// The server-side device later folds are written under.
    pub device: DeviceId,
    /// When.
    pub at: OffsetDateTime,
}

/// An answer a fold left for the supervisor: the retired household's value differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldDisagreementRow {
    /// The survivor.
    pub survivor: HouseholdId,
    /// The retired household.
    pub retired: HouseholdId,
    /// The field path.
    pub path: String,
    /// The retired household's value with its writer (JSON of `Attributed`).
    pub other: String,
}

/// Data operations inside a read transaction. Each moves rows, never decides: the rules that use
/// them live in `crate::service`.
pub trait ReadTx {
    // ---- accounts ----
    /// How many users exist.
    fn user_count(&mut self) -> Result<u64, StorageError>;
    /// One user by name.
    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StorageError>;
    /// Every user, by name.
    fn users(&mut self) -> Result<Vec<UserRecord>, StorageError>;
    /// Every assignment row of `user` of one kind, ended ones included, by code then start.
    fn assignments_of(&mut self, kind: AssignmentKind, user: &str) -> Result<Vec<Assignment>, StorageError>;
    /// Every active assignment of one kind, as (user, code), by user then code.
    fn active_assignments(&mut self, kind: AssignmentKind) -> Result<Vec<(String, String)>, StorageError>;
    /// Every village `device` was handed, with the first time.
    fn villages_handed(&mut self, device: DeviceId) -> Result<BTreeMap<String, OffsetDateTime>, StorageError>;
    /// One device's row.
    fn device(&mut self, id: DeviceId) -> Result<Option<DeviceRow>, StorageError>;
    /// Every device, by user, registration time, id.
    fn devices(&mut self) -> Result<Vec<DeviceRow>, StorageError>;
    /// A server secret by name.
    fn server_secret(&mut self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;

    // ---- households and the feed ----
    /// A stored household.
    fn household(&mut self, id: HouseholdId) -> Result<Option<HouseholdRow>, StorageError>;
    /// The stored heads of a household (cheaper than the whole row).
    fn household_heads(&mut self, id: HouseholdId) -> Result<Option<String>, StorageError>;
    /// The village of a household.
    fn household_village(&mut self, id: HouseholdId) -> Result<Option<String>, StorageError>;
    /// Households whose id starts with `prefix` (lowercase), with villages, by id, at most `limit`.
    fn households_with_prefix(&mut self, prefix: &str, limit: u32) -> Result<Vec<(HouseholdId, String)>, StorageError>;
    /// Documents of one village after household `after`, by id, at most `limit`.
    fn village_households(
        &mut self,
        village: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError>;
    /// How many households one village holds.
    fn village_household_count(&mut self, village: &str) -> Result<u64, StorageError>;
    /// Documents of the villages under `area` (a kecamatan or kabupaten code: villages starting
    /// with `area.`) after household `after`, by id, at most `limit`.
    fn area_households(
        &mut self,
        area: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError>;
    /// How many households the villages under `area` hold.
    fn area_household_count(&mut self, area: &str) -> Result<u64, StorageError>;
    /// The village's feed head: the position of its last change, or the feed's floor when it has
    /// none (0 on a new database; on one upgraded from global sequence numbers, the last of them,
    /// so that every cursor a device holds from before stays at or below every head).
    fn feed_head(&mut self, village: &str) -> Result<u64, StorageError>;
    /// Changes of `village` at positions in `(after, upto]`, not recorded for `exclude`, by
    /// position, at most `limit`.
    fn feed_after(
        &mut self,
        village: &str,
        after: u64,
        upto: u64,
        exclude: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<FeedChange>, StorageError>;
    /// The response remembered for (device, batch).
    fn stored_response(&mut self, device: DeviceId, batch: Uuid) -> Result<Option<StoredResponse>, StorageError>;
    /// When each device's remembered response was made (its last sync, while remembered).
    fn last_responses(&mut self) -> Result<BTreeMap<DeviceId, OffsetDateTime>, StorageError>;

    // ---- roster imports ----
    /// A roster import.
    fn roster_import(&mut self, import: Uuid) -> Result<Option<RosterImportRow>, StorageError>;
    /// How many of chunks `0..below` of an import are staged.
    fn staged_chunks(&mut self, import: Uuid, below: u32) -> Result<u32, StorageError>;
    /// One staged chunk's bytes.
    fn roster_chunk(&mut self, import: Uuid, chunk: u32) -> Result<Option<Vec<u8>>, StorageError>;
    /// The household a DTSEN family id was imported as.
    fn family_household(&mut self, family: &str) -> Result<Option<HouseholdId>, StorageError>;

    // ---- supervision ----
    /// Households whose facts are stale (written since derived), with the version to derive, at
    /// most `limit`, in no particular order.
    fn stale_facts(&mut self, limit: u32) -> Result<Vec<(HouseholdId, u64)>, StorageError>;
    /// Facts of households not folded into another, under `area` (a code: that village, or the
    /// villages starting with `area.`; `None` everywhere), by village then id.
    fn live_facts(&mut self, area: Option<&str>) -> Result<Vec<FactsRow>, StorageError>;
    /// Facts of one household not folded into another.
    fn live_facts_of(&mut self, id: HouseholdId) -> Result<Option<FactsRow>, StorageError>;
    /// Duplicate keys held by 2 to `max_households` households, by kind then key.
    fn shared_keys(&mut self, max_households: u32) -> Result<Vec<KeyGroup>, StorageError>;
    /// Pairs (a < b by id text) a supervisor said are different families.
    fn dismissed_pairs(&mut self) -> Result<BTreeSet<(HouseholdId, HouseholdId)>, StorageError>;
    /// The fold of a retired household.
    fn fold_of(&mut self, retired: HouseholdId) -> Result<Option<FoldRow>, StorageError>;
    /// Open fold disagreements (of one survivor, or all), oldest first.
    fn open_disagreements(&mut self, survivor: Option<HouseholdId>) -> Result<Vec<FoldDisagreementRow>, StorageError>;
}

/// Data operations inside a write transaction (and every read).
pub trait Tx: ReadTx {
    // ---- accounts ----
    /// Insert a user; `false` (nothing written) when the name is taken.
    fn insert_user(&mut self, user: &NewUser) -> Result<bool, StorageError>;
    /// Start an assignment of `code` to `user` at `now` (nothing when one is active).
    fn start_assignment(
        &mut self,
        kind: AssignmentKind,
        user: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;
    /// End the active assignment of `code` to `user` at `now`.
    fn end_assignment(
        &mut self,
        kind: AssignmentKind,
        user: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;
    /// Record that `device` was handed `villages` at `now`: the first time is kept, the last
    /// only moves forward.
    fn hand_villages(&mut self, device: DeviceId, villages: &[String], now: OffsetDateTime)
    -> Result<(), StorageError>;
    /// Insert a new device row.
    fn insert_device(&mut self, device: &DeviceRow) -> Result<(), StorageError>;
    /// Replace a device's row (by id; the user and registration time never change).
    fn update_device(&mut self, device: &DeviceRow) -> Result<(), StorageError>;
    /// Move a device's last-seen time forward to `now` (never back).
    fn touch_device(&mut self, id: DeviceId, now: OffsetDateTime) -> Result<(), StorageError>;
    /// Insert a server secret unless one of that name exists (the stored one wins).
    fn insert_server_secret(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError>;

    // ---- households and the feed ----
    /// Lock the village's feed head until commit and return it (see [`ReadTx::feed_head`]):
    /// another transaction appending to the village waits here. Villages stay independent.
    fn lock_feed_head(&mut self, village: &str) -> Result<u64, StorageError>;
    /// Set the village's feed head (locked by [`Tx::lock_feed_head`] in this transaction).
    fn set_feed_head(&mut self, village: &str, head: u64) -> Result<(), StorageError>;
    /// Insert a change unless its hash is stored; whether it was inserted.
    fn insert_change(&mut self, change: &NewChange<'_>) -> Result<bool, StorageError>;
    /// Store a household document (created, or replacing it: `village` and `created_at` stay),
    /// bump its version and mark its facts stale.
    fn put_household(&mut self, household: &HouseholdWrite<'_>) -> Result<(), StorageError>;
    /// Forget every remembered response of a device.
    fn forget_responses(&mut self, device: DeviceId) -> Result<(), StorageError>;
    /// Forget up to `limit` remembered responses made before `before`, oldest first.
    fn prune_responses(&mut self, before: OffsetDateTime, limit: u32) -> Result<(), StorageError>;
    /// Remember a response under (device, batch).
    fn store_response(
        &mut self,
        device: DeviceId,
        batch: Uuid,
        response: &StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;

    // ---- roster imports ----
    /// Start staging an import.
    fn insert_roster_import(&mut self, import: Uuid, user: &str, now: OffsetDateTime) -> Result<(), StorageError>;
    /// Drop imports never committed and started before `before` (and their chunks), except `keep`.
    fn prune_staged_imports(&mut self, before: OffsetDateTime, keep: Uuid) -> Result<(), StorageError>;
    /// Stage (or replace) chunk `chunk` of an import.
    fn put_roster_chunk(&mut self, import: Uuid, chunk: u32, bytes: &[u8]) -> Result<(), StorageError>;
    /// Mark an import committed with its summary, and drop its chunks.
    fn finish_roster_import(&mut self, import: Uuid, at: OffsetDateTime, summary: &str) -> Result<(), StorageError>;
    /// Record the household a DTSEN family id was imported as (the first one stays).
    fn put_family(&mut self, family: &str, household: HouseholdId) -> Result<(), StorageError>;

    // ---- supervision ----
    /// Store a household's facts and replace its duplicate keys (kind, keyed hash).
    fn put_facts(&mut self, facts: &FactsRow, keys: &[(String, String)]) -> Result<(), StorageError>;
    /// The facts of `id` were derived from `version`: no longer stale, unless written since.
    fn clear_stale_facts(&mut self, id: HouseholdId, version: u64) -> Result<(), StorageError>;
    /// Record that `a` and `b` (a < b by id text) are different families.
    fn dismiss_pair(
        &mut self,
        a: HouseholdId,
        b: HouseholdId,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;
    /// Record a first fold.
    fn insert_fold(&mut self, fold: &FoldRow) -> Result<(), StorageError>;
    /// Replace what was folded so far for a retired household.
    fn update_fold(&mut self, retired: HouseholdId, fold: &str) -> Result<(), StorageError>;
    /// Record a disagreement a fold left.
    fn insert_disagreement(&mut self, row: &FoldDisagreementRow, now: OffsetDateTime) -> Result<(), StorageError>;
    /// Close the open disagreements of `survivor` at `path`.
    fn close_disagreements(
        &mut self,
        survivor: HouseholdId,
        path: &str,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;
}
