//! The server's storage seam, modelled on automerge-repo's byte-level storage, atuin's one
//! backend per module and Zed's collab layer (one database layer on SQLite and PostgreSQL): a
//! [`Database`] runs read and write transactions over narrow data operations ([`ReadTx`], [`Tx`])
//! that move rows and bytes (households and their documents, the feed, users, devices,
//! assignments, facts, keys, staged imports, remembered responses, secrets). Every rule lives
//! above it, once, in `crate::service`; a backend module holds SQL and nothing else. SQLite is
//! [`sqlite`], PostgreSQL is [`postgres`]; the backend is chosen once at start-up
//! ([`open`], from the `--database` URL).
//!
//! Every backend runs the one conformance suite, [`conformance`].

pub mod at_rest;
pub mod conformance;
pub mod facts_sql;
pub mod photos;
pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresDatabase;
pub use sqlite::SqliteDatabase;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use sync_core::model::{DeviceId, HouseholdId};
use sync_core::protocol::Role;
use time::OffsetDateTime;
use uuid::Uuid;

/// What can go wrong in storage or in a use case above it. Callers branch on the account cases
/// and the refusals (each says what to do); `Backend`, `Corrupt` and `SchemaTooNew` are internal.
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
    /// The caller may not do this here (outside their scope or role): the message says why,
    /// naming nothing outside the caller's scope.
    #[error("{0}")]
    Forbidden(String),
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

/// Which backend holds the data, and where: the `--database` URL, parsed once at start-up.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// The embedded SQLite database: a file (`sqlite://PATH`, or `server.db` in the data directory).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`), which several servers may share.
    Postgres(String),
}

impl std::fmt::Debug for DatabaseLocation {
    // A PostgreSQL URL may carry a password: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for DatabaseLocation {
    /// The location as the operator wrote it, without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseLocation::Postgres(url) => f.write_str(&postgres::redacted(url)),
        }
    }
}

impl DatabaseLocation {
    /// Parse a `--database` URL: `sqlite://PATH` (a relative path is relative to the working
    /// directory; `sqlite:///var/lib/pilar/server.db` is absolute) or `postgres://…` /
    /// `postgresql://…` (libpq's URL form).
    pub fn parse(url: &str) -> Result<DatabaseLocation, StorageError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StorageError::Refused(
                    "--database sqlite:// names no file; write sqlite://PATH (or leave --database out for server.db \
                     in --data-dir)"
                        .into(),
                ));
            }
            return Ok(DatabaseLocation::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(url.to_string()));
        }
        Err(StorageError::Refused(format!(
            "--database {} is not a database this server knows; write sqlite://PATH or \
             postgres://USER@HOST:PORT/NAME",
            postgres::redacted(url)
        )))
    }

    /// Open the database (creating a SQLite file, or PostgreSQL's tables, when new) and bring
    /// its schema up to date. Blocking: call it before the async runtime starts, or off it.
    pub fn open(&self) -> Result<Arc<dyn Database>, StorageError> {
        Ok(match self {
            DatabaseLocation::Sqlite(path) => Arc::new(SqliteDatabase::open(path)?),
            DatabaseLocation::Postgres(url) => Arc::new(PostgresDatabase::open(url)?),
        })
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

// ------------------------------------------------------------------------------------------------
// The seam: transactions and data operations. Every rule lives above it (`crate::service`).
// ------------------------------------------------------------------------------------------------

/// How stale the last time a village was handed to a device may grow before a sync moves it on:
/// each sync hands every active village again, and rewriting those rows every time left dead rows
/// on PostgreSQL (issue 15, server disk); the time is an audit answer to the hour.
pub const HANDED_AGAIN_AFTER: time::Duration = time::Duration::hours(1);

/// A server database: read and write transactions over the data operations of [`ReadTx`] and
/// [`Tx`]. One implementation per backend module, chosen once at start-up; object-safe, so the
/// server holds an `Arc<dyn Database>`.
///
/// Contract for every backend (checked by `storage::conformance`):
/// - [`Database::read_tx`] runs on one consistent snapshot and never waits for a writer (SQLite:
///   a pooled read-only connection under WAL; PostgreSQL: `REPEATABLE READ READ ONLY`).
/// - [`Database::write_tx`] commits everything the closure did, or nothing (the closure's error
///   rolls it back), and write transactions behave as if they ran one at a time: the rules above
///   read rows and write them back (a device's refresh chain, an import's state, a household's
///   document). SQLite has one writer. A backend with concurrent writers runs them at snapshot
///   isolation at least (PostgreSQL: `REPEATABLE READ`, `storage::postgres`): of two transactions
///   that write one row, the later fails and is run again (as after a deadlock), so a rule that
///   writes back the row it decided on never overwrites another server's write. A rule that
///   decides on one row and writes another must write (or lock) the row it decided on too. The
///   feed locks its village head ([`Tx::lock_feed_head`]): sequence generators are not
///   transactional, and a position must commit in order (`service::feed`).
/// - A backend may run a closure again after such a failure: closures must not keep effects
///   outside the transaction from one run to the next.
/// - Times are stored to the whole second, truncated (`sessions_ended_at` and the times of
///   [`LoginFailureRow`] to the millisecond).
/// - Blocking: call it from the blocking pool (`AppState::blocking`), never an async worker.
pub trait Database: Send + Sync + 'static {
    /// Run `work` in a read-only transaction (prefer [`Transactions::read`]).
    fn read_tx(&self, work: &mut dyn FnMut(&mut dyn ReadTx) -> Result<(), StorageError>) -> Result<(), StorageError>;

    /// Run `work` in a write transaction and commit it (prefer [`Transactions::write`]).
    fn write_tx(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StorageError>) -> Result<(), StorageError>;

    /// [`Database::write_tx`] for work that will append to the feeds of `villages` (prefer
    /// [`Transactions::write_appending`]): a backend whose appenders can lose a village's head to
    /// a concurrent one queues the work behind them before it begins, so it is not done twice. A
    /// hint: appending to another village as well is allowed. SQLite's single writer needs none.
    fn write_tx_appending(
        &self,
        villages: &BTreeSet<String>,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let _ = villages;
        self.write_tx(work)
    }
}

/// Typed results over [`Database`]'s object-safe transactions: `db.read(|tx| ...)` returns what
/// the closure returns.
pub trait Transactions {
    /// Run `work` in a read-only transaction on one snapshot.
    fn read<T>(&self, work: impl FnMut(&mut dyn ReadTx) -> Result<T, StorageError>) -> Result<T, StorageError>;
    /// Run `work` in one write transaction; commits when it succeeds.
    fn write<T>(&self, work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>) -> Result<T, StorageError>;
    /// [`Transactions::write`] for work that appends to the feeds of `villages`
    /// ([`Database::write_tx_appending`]).
    fn write_appending<T>(
        &self,
        villages: &BTreeSet<String>,
        work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>,
    ) -> Result<T, StorageError>;
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

    fn write<T>(&self, work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>) -> Result<T, StorageError> {
        self.write_appending(&BTreeSet::new(), work)
    }

    fn write_appending<T>(
        &self,
        villages: &BTreeSet<String>,
        mut work: impl FnMut(&mut dyn Tx) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut out = None;
        self.write_tx_appending(villages, &mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })?;
        out.ok_or_else(not_run)
    }
}

/// A stored response's [`StoredResponse::pulled_from`] as its column holds it: a JSON object of
/// village code to feed position, the same text on both backends.
fn pulled_from_text(from: &BTreeMap<String, u64>) -> String {
    serde_json::to_string(from).unwrap_or_default()
}

/// [`pulled_from_text`] read back; text that is not such an object is damage.
fn pulled_from(text: &str) -> Result<BTreeMap<String, u64>, StorageError> {
    serde_json::from_str(text)
        .map_err(|e| StorageError::Corrupt(format!("a stored sync response's feed positions {text:?}: {e}")))
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
    /// The change hash (lowercase hex, as Automerge writes it; PostgreSQL keeps its bytes): a
    /// change is stored once.
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
    /// The change hash (hex).
    pub hash: String,
    /// The raw Automerge change as it was stored: empty where the feed keeps only its place and
    /// its household's document holds it (`service::feed::read` fills it in).
    pub bytes: Vec<u8>,
}

/// An encoded sync response remembered under (device, batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The encoded body, as sent.
    pub body: Vec<u8>,
    /// The `max_changes` it was made for (`None` on rows older than that column).
    pub max_changes: Option<u32>,
    /// Where the answer's pull read each village's feed from (its cursors say up to where):
    /// `Some` when `body` was stored without the pulled changes, which a replay reads again from
    /// the feed (issue 15, server disk: the documents already hold their bytes); `None` when
    /// `body` is the whole answer as sent (rows stored before that column).
    pub pulled_from: Option<BTreeMap<String, u64>>,
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
    /// The head's name as searched and sorted (normalised above the seam; empty when none).
    pub name_key: String,
    /// The RT as searched (normalised above the seam; empty when none).
    pub rt_key: String,
    /// The last visit's outcome code, final or not.
    pub last_outcome: Option<i64>,
}

/// Which live households a page of the households table wants; every condition is ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactsQuery {
    /// Areas (village codes, or codes whose villages start with `code.`); `None`: everywhere.
    pub areas: Option<Vec<String>>,
    /// Only these households (found through their duplicate keys).
    pub households: Option<Vec<HouseholdId>>,
    /// Villages equal to this or starting with it.
    pub village_prefix: Option<String>,
    /// `name_key` contains this.
    pub name_contains: Option<String>,
    /// `rt_key` equals this.
    pub rt_key: Option<String>,
    /// The review status: `Some(None)` for none yet.
    pub review: Option<Option<String>>,
    /// The last visit's outcome code.
    pub last_outcome: Option<i64>,
    /// Only households with a conflict or an open fold disagreement.
    pub conflicts_only: bool,
    /// Rows skipped (ordered by village, name key, id).
    pub offset: u64,
    /// Rows returned at most.
    pub limit: u64,
}

/// Live households of an area counted by what the progress report groups them by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsTally {
    /// The village.
    pub village: String,
    /// Who made the last visit.
    pub last_visit_by: Option<String>,
    /// The effective review status.
    pub review: Option<String>,
    /// The last visit's outcome when final.
    pub final_outcome: Option<i64>,
    /// Whether they were visited at all.
    pub visited: bool,
    /// How many households.
    pub households: u64,
    /// Their conflicts (fold disagreements not included).
    pub conflicts: u64,
}

/// Households sharing one duplicate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGroup {
    /// What the key is made of (`same_kk`, `shared_nik`, `same_head_name`).
    pub kind: String,
    /// The households holding it, in id order.
    pub households: Vec<HouseholdId>,
    /// Those of them not folded away, with their village and last visitor, which the key rows
    /// carry (a folded household holds no keys), so a caller counting suspects per area reads no
    /// household one by one.
    pub live: BTreeMap<HouseholdId, (String, Option<String>)>,
}

/// One holder of a shared key, as both backends read it: kind, key, household, and its village
/// and last visitor when it is live.
pub(crate) type KeyHolderRow = (String, String, HouseholdId, Option<String>, Option<String>);

/// The keys a household holds, from its rows (kind, key, village, last visitor), and whether the
/// village or last visitor they carry differs from its new facts (then every row is rewritten).
pub(crate) fn held_keys(
    held: Vec<(String, String, Option<String>, Option<String>)>,
    facts: &FactsRow,
) -> (BTreeSet<(String, String)>, bool) {
    let moved = held
        .iter()
        .any(|(_, _, village, by)| village.as_deref() != Some(facts.village.as_str()) || *by != facts.last_visit_by);
    (held.into_iter().map(|(kind, key, _, _)| (kind, key)).collect(), moved)
}

/// Rows of key holders (in any order) grouped per key, by kind, key and household.
pub(crate) fn group_key_holders(mut rows: Vec<KeyHolderRow>) -> Vec<KeyGroup> {
    rows.sort_unstable_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    let mut groups: Vec<KeyGroup> = Vec::new();
    let mut last_key: Option<(String, String)> = None;
    for (kind, key, household, village, by) in rows {
        let same = last_key.as_ref().is_some_and(|(k, v)| *k == kind && *v == key);
        if !same {
            groups.push(KeyGroup { kind: kind.clone(), households: Vec::new(), live: BTreeMap::new() });
        }
        if let Some(group) = groups.last_mut() {
            group.households.push(household);
            if let Some(village) = village {
                group.live.insert(household, (village, by));
            }
        }
        last_key = Some((kind, key));
    }
    groups
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

/// What a row of failed logins counts: a user name or a client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LoginSubjectKind {
    /// A user name, stored as a keyed hash (`service::throttle`).
    User,
    /// A client address (IPv6 per /64).
    Address,
}

impl LoginSubjectKind {
    /// The stored name of the kind (`user`, `address`).
    pub fn as_str(self) -> &'static str {
        match self {
            LoginSubjectKind::User => "user",
            LoginSubjectKind::Address => "address",
        }
    }

    /// The kind a stored name names.
    pub fn parse(text: &str) -> Option<LoginSubjectKind> {
        match text {
            "user" => Some(LoginSubjectKind::User),
            "address" => Some(LoginSubjectKind::Address),
            _ => None,
        }
    }
}

/// The failed logins of one user name or client address, as the throttle rule left them
/// (`service::throttle` decides every value; the backend stores them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailureRow {
    /// What is counted.
    pub kind: LoginSubjectKind,
    /// The keyed hash of the user name, or the counted address.
    pub subject: String,
    /// Failures counted.
    pub failures: u32,
    /// The last failure (stored to the millisecond).
    pub last_failure: OffsetDateTime,
    /// The next attempt waits until then (`None`: it does not wait).
    pub blocked_until: Option<OffsetDateTime>,
    /// From then on the row is of no use and may be pruned.
    pub forget_at: OffsetDateTime,
}

/// A signed-in office web page session (issue 18). The cookie carries a random token; only its
/// SHA-256 is kept, so a copy of the database signs nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSessionRow {
    /// SHA-256 of the cookie's token, hex.
    pub token_hash: String,
    /// The signed-in user.
    pub user: String,
    /// The anti-forgery token every state-changing form of this session carries.
    pub csrf: String,
    /// When the session began.
    pub created_at: OffsetDateTime,
    /// When it ends whatever happens (an absolute limit).
    pub expires_at: OffsetDateTime,
    /// When it was last used (it also ends after a while unused).
    pub seen_at: OffsetDateTime,
}

/// One published questionnaire version (issue 17): kept once, never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormRow {
    /// `id@version`, as households record it.
    pub key: String,
    /// The form's id.
    pub form_id: String,
    /// The version number.
    pub version: u32,
    /// The form's title, for listings without the definition.
    pub title: String,
    /// Who published it.
    pub published_by: String,
    /// When.
    pub published_at: OffsetDateTime,
}

/// Which version new visits use in an area: a kabupaten code, or empty for everywhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormDefaultRow {
    /// A kabupaten code (`73.14`), or empty for the global default.
    pub area: String,
    /// The version's key.
    pub form_key: String,
    /// Who set it.
    pub set_by: String,
    /// When.
    pub set_at: OffsetDateTime,
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
    /// The dictionary documents and changes are compressed with now (the last one stored), if
    /// any: its id (see [`at_rest`]).
    fn current_kept_dictionary(&mut self) -> Result<Option<u32>, StorageError>;
    /// When the current dictionary was stored: one trained again is dated after it, so that it
    /// becomes the current one whatever the clock says.
    fn current_kept_dictionary_at(&mut self) -> Result<Option<OffsetDateTime>, StorageError>;
    /// A compression dictionary's bytes by id.
    fn kept_dictionary(&mut self, id: u32) -> Result<Option<Vec<u8>>, StorageError>;
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
    /// most `limit`, in no particular order. A backend with concurrent writers skips rows another
    /// transaction is deriving (`FOR UPDATE SKIP LOCKED`), so several servers share the work.
    fn stale_facts(&mut self, limit: u32) -> Result<Vec<(HouseholdId, u64)>, StorageError>;
    /// Facts of households not folded into another, under `area` (a code: that village, or the
    /// villages starting with `area.`; `None` everywhere), by village then id.
    fn live_facts(&mut self, area: Option<&str>) -> Result<Vec<FactsRow>, StorageError>;
    /// Facts of one household not folded into another.
    fn live_facts_of(&mut self, id: HouseholdId) -> Result<Option<FactsRow>, StorageError>;
    /// How many live households match `query`, and the page of them it asks for, by village,
    /// name key, then id (the office page's table, without reading every household).
    fn facts_page(&mut self, query: &FactsQuery) -> Result<(u64, Vec<FactsRow>), StorageError>;
    /// Live households of `areas` (`None`: everywhere) counted per village, last visitor, review
    /// status, final outcome and visited (the progress report, without reading every household).
    fn facts_tally(&mut self, areas: Option<&[String]>) -> Result<Vec<FactsTally>, StorageError>;
    /// Visits to live households of `areas` per local day, for days `from` (`YYYY-MM-DD`) on.
    fn visits_per_day(&mut self, areas: Option<&[String]>, from: &str) -> Result<Vec<(String, u64)>, StorageError>;
    /// Duplicate keys held by 2 to `max_households` households, by kind then key (found through
    /// the holders counted per key, not by grouping every key).
    fn shared_keys(&mut self, max_households: u32) -> Result<Vec<KeyGroup>, StorageError>;
    /// Pairs (a < b by id text) a supervisor said are different families.
    fn dismissed_pairs(&mut self) -> Result<BTreeSet<(HouseholdId, HouseholdId)>, StorageError>;
    /// The fold of a retired household.
    fn fold_of(&mut self, retired: HouseholdId) -> Result<Option<FoldRow>, StorageError>;
    /// Open fold disagreements (of one survivor, or all), oldest first.
    fn open_disagreements(&mut self, survivor: Option<HouseholdId>) -> Result<Vec<FoldDisagreementRow>, StorageError>;

    // ---- login throttling ----
    /// The failed logins of one user name (keyed hash) or address.
    fn login_failures(
        &mut self,
        kind: LoginSubjectKind,
        subject: &str,
    ) -> Result<Option<LoginFailureRow>, StorageError>;
    /// How many rows of failed logins are stored.
    fn login_failure_rows(&mut self) -> Result<u64, StorageError>;
    /// Every published form version, by form id then version (without definitions).
    fn forms(&mut self) -> Result<Vec<FormRow>, StorageError>;
    /// A published version's definition (JSON), by key.
    fn form_definition(&mut self, key: &str) -> Result<Option<String>, StorageError>;
    /// Every area's default form version, by area.
    fn form_defaults(&mut self) -> Result<Vec<FormDefaultRow>, StorageError>;
    /// Households holding a duplicate key (`same_kk`, `shared_nik`, …): a search by NIK or KK finds
    /// them by the keyed hash, never by the number.
    fn households_with_key(&mut self, kind: &str, key: &str) -> Result<Vec<HouseholdId>, StorageError>;
    /// A web page session by the SHA-256 of its token.
    fn web_session(&mut self, token_hash: &str) -> Result<Option<WebSessionRow>, StorageError>;
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
    /// only moves forward, and only once it is [`HANDED_AGAIN_AFTER`] old (so that a device's
    /// every sync does not rewrite its rows).
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
    /// Store a trained compression dictionary (unless one with its id is stored): documents and
    /// changes written after it in this transaction and later are compressed with it.
    fn insert_kept_dictionary(&mut self, id: u32, dictionary: &[u8], at: OffsetDateTime) -> Result<(), StorageError>;
    /// Lock the village's feed head until commit and return it (see [`ReadTx::feed_head`]):
    /// another transaction appending to the village waits here. Villages stay independent. The
    /// row is made at the floor on first use (PostgreSQL: `INSERT … ON CONFLICT DO NOTHING`, then
    /// `SELECT head … FOR UPDATE`).
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
    /// Store a household's facts and replace its duplicate keys (kind, keyed hash) and its visits
    /// per local day (`YYYY-MM-DD`, count).
    fn put_facts(
        &mut self,
        facts: &FactsRow,
        keys: &[(String, String)],
        visit_days: &[(String, u32)],
    ) -> Result<(), StorageError>;
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
    /// Count household `id` as written by this transaction without changing it: two transactions
    /// that each decide on one household (an approval that found no open disagreement, a fold that
    /// records one; two folds sharing a household) then cannot both commit where writers run
    /// concurrently (PostgreSQL fails the later one, which runs again).
    fn touch_household(&mut self, id: HouseholdId) -> Result<(), StorageError>;
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

    // ---- login throttling ----
    /// Store a row of failed logins (inserted, or replacing the row of its kind and subject).
    fn put_login_failures(&mut self, row: &LoginFailureRow) -> Result<(), StorageError>;
    /// Forget the failed logins of one user name (keyed hash) or address.
    fn clear_login_failures(&mut self, kind: LoginSubjectKind, subject: &str) -> Result<(), StorageError>;
    /// Forget up to `limit` rows whose `forget_at` is at or before `now`, soonest first; returns
    /// how many.
    fn prune_login_failures(&mut self, now: OffsetDateTime, limit: u32) -> Result<u64, StorageError>;
    /// Forget `count` rows: first those whose `blocked_until` is not after `now` (not waiting),
    /// then those waiting; within each, soonest `forget_at` first.
    fn evict_login_failures(&mut self, now: OffsetDateTime, count: u64) -> Result<(), StorageError>;
    /// Store a published version and its definition; false (and nothing written) when its key
    /// exists.
    fn insert_form(&mut self, form: &FormRow, definition: &str) -> Result<bool, StorageError>;
    /// Set (or replace) an area's default version.
    fn put_form_default(&mut self, row: &FormDefaultRow) -> Result<(), StorageError>;
    /// Replace a user's password hash; false when there is no such user.
    fn set_user_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StorageError>;
    /// Change a user's role; false when there is no such user.
    fn set_user_role(&mut self, name: &str, role: Role) -> Result<bool, StorageError>;
    /// Store a new web page session.
    fn insert_web_session(&mut self, row: &WebSessionRow) -> Result<(), StorageError>;
    /// Record that a session was used.
    fn touch_web_session(&mut self, token_hash: &str, seen_at: OffsetDateTime) -> Result<(), StorageError>;
    /// End one session (sign-out).
    fn delete_web_session(&mut self, token_hash: &str) -> Result<(), StorageError>;
    /// End every session of a user (password reset, role change); returns how many ended.
    fn delete_web_sessions_of(&mut self, user: &str) -> Result<u64, StorageError>;
    /// Delete up to `limit` sessions that ended before `before` (absolute or idle).
    fn prune_web_sessions(
        &mut self,
        ended_before: OffsetDateTime,
        idle_before: OffsetDateTime,
        limit: u32,
    ) -> Result<(), StorageError>;
}
