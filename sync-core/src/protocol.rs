//! Wire types shared by `pilar` and `pilar-server`: accounts, login, administration, errors,
//! roster imports, exports and supervision (JSON), and the sync messages (see `sync`). Changing a
//! type here changes the protocol: keep old fields readable.
//!
//! Every JSON request type denies unknown fields (`#[serde(deny_unknown_fields)]`): a misspelt
//! field (`comentar`) is refused with 400 instead of silently ignored. Responses and the CBOR sync
//! messages (`sync::wire`) stay open to fields they do not know, so an older client or server
//! reads a newer one's answers.

use crate::model::DeviceId;
use crate::roster::{RosterHousehold, RosterProblem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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

// --- accounts administration (`/v1/admin/...`): users, assignments, devices; admins only ---

/// `POST /v1/admin/users`: a new account.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Login name: lowercase letters, digits, `.`, `-`, `_`.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The password; when absent the server generates one and returns it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The answer to `POST /v1/admin/users`.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedUser {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The generated password, present only when the request had none (shown once, never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A user with their active assignments (`GET /v1/admin/users` and the assignment endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the account was created (RFC 3339, UTC).
    pub created_at: String,
    /// Active village assignments.
    pub villages: Vec<String>,
    /// Active kecamatan assignments.
    pub kecamatan: Vec<String>,
}

/// `PUT /v1/admin/users/{name}/villages`: the complete new set of villages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VillagesRequest {
    /// Village codes (dotted or 10 digits); replaces the user's active set.
    pub villages: Vec<String>,
}

/// `POST /v1/admin/users/{name}/password`: a new password, or none to have one generated (answered
/// once, in `CreatedUser::password`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The new password; absent to have one generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl fmt::Debug for PasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordRequest").field("password", &self.password.as_ref().map(|_| "<redacted>")).finish()
    }
}

/// `PUT /v1/admin/users/{name}/role`: the user's new role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// The new role.
    pub role: Role,
}

/// `PUT /v1/admin/users/{name}/kecamatan`: the complete new set of kecamatan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KecamatanRequest {
    /// Kecamatan codes (dotted or 6 digits); replaces the user's active set.
    pub kecamatan: Vec<String>,
}

/// A registered device (`GET /v1/admin/devices`, and the answer to
/// `POST /v1/admin/devices/{id}/revoke`, which takes no body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    /// The device id (also its Automerge actor).
    pub id: String,
    /// The label given at login.
    pub name: String,
    /// The user the device belongs to.
    pub user: String,
    /// First login (RFC 3339, UTC).
    pub registered_at: String,
    /// Last login, refresh or request (RFC 3339, UTC, to the minute).
    pub last_seen_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

// --- roster import (`/v1/roster/...`): staged chunk by chunk, committed at once ---

/// Most households in one staged chunk: keeps a chunk's body near 1 MB.
pub const CHUNK_HOUSEHOLDS: usize = 1_000;

/// `PUT /v1/roster/{import}/chunks/{n}`: one chunk of a roster, as the CLI read it. The body is
/// JSON, plain or (what `pilar` sends) zstd-compressed with `Content-Encoding:`
/// [`ROSTER_CHUNK_ENCODING`]: a 100,000-row roster is 24 MB of JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterChunk {
    /// The chunk's households, in file order.
    pub households: Vec<RosterHousehold>,
}

/// The `Content-Encoding` of a compressed roster chunk.
pub const ROSTER_CHUNK_ENCODING: &str = "zstd";

/// zstd level of a compressed roster chunk: JSON of repeated field names compresses tenfold at
/// level 3 in a few milliseconds a chunk.
const ROSTER_CHUNK_LEVEL: i32 = 3;

/// Why a compressed roster chunk could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ChunkBodyError {
    /// The body expands beyond what the server accepts.
    #[error("the compressed chunk expands to more than {limit} bytes; send chunks of fewer households")]
    TooLarge {
        /// The most a chunk may expand to.
        limit: usize,
    },
    /// The body is not zstd data.
    #[error(
        "the chunk is not zstd-compressed ({0}); send it compressed with zstd, or as plain JSON without Content-Encoding"
    )]
    Compression(String),
    /// The JSON inside is not a roster chunk.
    #[error("the chunk is not the JSON of a roster chunk ({0}); see docs/roster.md")]
    Json(#[from] serde_json::Error),
}

impl RosterChunk {
    /// The chunk as zstd-compressed JSON, the body to send with [`ROSTER_CHUNK_ENCODING`].
    pub fn to_compressed(&self) -> Result<Vec<u8>, ChunkBodyError> {
        let json = serde_json::to_vec(self)?;
        zstd::bulk::compress(&json, ROSTER_CHUNK_LEVEL).map_err(|e| ChunkBodyError::Compression(e.to_string()))
    }

    /// A chunk from zstd-compressed JSON, refusing a body that expands beyond `limit` bytes (a
    /// zstd bomb) before it has expanded further.
    pub fn from_compressed(body: &[u8], limit: usize) -> Result<RosterChunk, ChunkBodyError> {
        use std::io::Read;
        let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| ChunkBodyError::Compression(e.to_string()))?;
        let mut json = Vec::new();
        let read = decoder
            .take(limit as u64 + 1)
            .read_to_end(&mut json)
            .map_err(|e| ChunkBodyError::Compression(e.to_string()))?;
        if read > limit {
            return Err(ChunkBodyError::TooLarge { limit });
        }
        Ok(serde_json::from_slice(&json)?)
    }
}

/// Most problems of one rule (and severity) a chunk's reply lists; the rest are only counted, so
/// a reply stays small however many rows share a problem. The admin's full report is made on
/// the admin's side: `pilar` checks every row with the same rules before it uploads anything.
pub const REPLY_PROBLEMS_PER_RULE: usize = 5;

/// The answer to a staged chunk: counts, and the first few problems of each rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReply {
    /// Whether the chunk was staged (false when the server's re-check found blocking problems).
    pub staged: bool,
    /// The first problems of each rule the server's re-check found (at most
    /// [`REPLY_PROBLEMS_PER_RULE`] per rule and severity), in row order.
    pub problems: Vec<RosterProblem>,
    /// How many problems of each rule the re-check found in all, listed or not (absent from a
    /// server that listed every problem).
    #[serde(default)]
    pub counts: Vec<RuleCount>,
}

/// How many problems of one rule a chunk's re-check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    /// The rule's stable code (`nik_region_unknown`, …).
    pub rule: String,
    /// Whether these problems block the import.
    pub severity: crate::finding::Severity,
    /// Problems of this rule and severity in the chunk.
    pub count: u64,
}

impl ChunkReply {
    /// The reply for a chunk whose re-check found `problems`: every rule counted, the first
    /// [`REPLY_PROBLEMS_PER_RULE`] problems of each rule listed (by row).
    pub fn new(staged: bool, mut problems: Vec<RosterProblem>) -> ChunkReply {
        problems.sort_by_key(|p| p.row);
        let mut counts: Vec<RuleCount> = Vec::new();
        let mut listed = Vec::new();
        for problem in problems {
            let position = counts.iter().position(|c| c.rule == problem.rule && c.severity == problem.severity);
            let count = match position {
                Some(i) => &mut counts[i],
                None => {
                    counts.push(RuleCount { rule: problem.rule.clone(), severity: problem.severity, count: 0 });
                    let last = counts.len() - 1;
                    &mut counts[last]
                }
            };
            count.count += 1;
            if count.count <= REPLY_PROBLEMS_PER_RULE as u64 {
                listed.push(problem);
            }
        }
        ChunkReply { staged, problems: listed, counts }
    }

    /// Problems the re-check found beyond those listed, by rule: `(rule, severity, how many)`.
    pub fn unlisted(&self) -> impl Iterator<Item = (&str, crate::finding::Severity, u64)> {
        self.counts.iter().filter_map(|c| {
            let listed = self.problems.iter().filter(|p| p.rule == c.rule && p.severity == c.severity).count() as u64;
            (c.count > listed).then(|| (c.rule.as_str(), c.severity, c.count - listed))
        })
    }
}

/// `POST /v1/roster/{import}/commit`: apply every staged chunk at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// How many chunks the import has (numbered from 0); all must be staged.
    pub chunks: u32,
}

/// What a committed import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Households created.
    pub created: u64,
    /// Households a re-import changed (matched by DTSEN family id).
    pub updated: u64,
    /// Households a re-import matched and found identical.
    pub unchanged: u64,
}

// --- exports (`GET /v1/export`): households page by page, filtered on the server ---

/// Most households in one export page.
pub const EXPORT_PAGE: u32 = 500;

/// One page of an export: households in id order, their review status the effective one (an
/// approval made stale by a later change shows as awaiting review).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportPage {
    /// The households of this page that pass the filters.
    pub households: Vec<crate::model::HouseholdState>,
    /// Ask for the next page after this id; `None` after the last page.
    pub next_after: Option<crate::model::HouseholdId>,
    /// Households in the area (before the filters), for the progress bar; on the first page only.
    pub total: Option<u64>,
    /// Households this page looked at (kept or not), for the progress bar.
    pub scanned: u32,
}

/// What an export keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFilter {
    /// Only households whose review status is approved now.
    pub approved_only: bool,
    /// Only households visited on or after this date (`YYYY-MM-DD`, the visit's local date).
    pub from: Option<String>,
    /// Only households visited on or before this date.
    pub to: Option<String>,
}

// --- supervision (`/v1/review`, `/v1/conflicts`, `/v1/duplicates`, `/v1/progress`) ---

/// One household as a supervisor's lists show it (the supervisor's screen, never a log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HouseholdBrief {
    /// The household.
    pub household: crate::model::HouseholdId,
    /// Its village code (the scope).
    pub village: String,
    /// Head of household's name, as recorded.
    pub head_name: Option<String>,
    /// RT, as recorded.
    pub rt: Option<String>,
    /// Effective review status (`awaiting_review`, `approved`, `returned`); `None` before any visit.
    pub review: Option<String>,
    /// Who set the review status, and when.
    pub review_by: Option<String>,
    /// When the review status was set (RFC 3339).
    pub review_at: Option<String>,
    /// The newest review comment.
    pub comment: Option<String>,
    /// Number of visits.
    pub visits: u32,
    /// Outcome code of the last visit.
    pub last_outcome: Option<i64>,
    /// Who made the last visit.
    pub last_visit_by: Option<String>,
    /// When (RFC 3339).
    pub last_visit_at: Option<String>,
    /// Open conflicts (fields whose concurrent values differ, and merge disagreements).
    pub conflicts: u32,
}

/// `POST /v1/households/{id}/review`: approve or return a household.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approve` or `return`.
    pub decision: String,
    /// Required when returning: what the enumerator must fix.
    pub comment: Option<String>,
}

/// `GET /v1/households?prefix=`: the households of the caller's areas whose id starts with the
/// prefix (at most [`HouseholdMatches::LIMIT`]), so a supervisor can give the first characters of
/// an id as the lists show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdMatches {
    /// The matching households, in id order.
    pub matches: Vec<crate::model::HouseholdId>,
}

impl HouseholdMatches {
    /// Most matches answered: two already make a prefix ambiguous; a few more help the person.
    pub const LIMIT: u32 = 5;
}

/// One open conflict: a field with several values, each with its writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictItem {
    /// The household and its village.
    pub household: HouseholdBrief,
    /// The field (`answers.rt`, `members.<id>.nik`, ...).
    pub path: String,
    /// The field's label from the form (Bahasa Indonesia), when it is a form field.
    pub label: Option<String>,
    /// `sync` (concurrent edits met in a merge) or `merge` (two households merged disagreed).
    pub source: String,
    /// The values, the one shown today first.
    pub values: Vec<ConflictValue>,
}

/// One value of a conflicting field and who wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value.
    pub value: crate::value::FieldValue,
    /// The user who wrote it.
    pub user: String,
    /// The device it came from (its name, and its id).
    pub device: String,
    /// When it was written (RFC 3339).
    pub at: String,
}

/// `POST /v1/households/{id}/resolve`: settle one conflicting field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The field, as listed.
    pub path: String,
    /// Keep the value at this position of the listed values (1-based, as shown).
    pub pick: Option<usize>,
    /// Or write this new value (typed as in `pilar edit`: codes or labels, dates YYYY-MM-DD).
    pub value: Option<String>,
}

/// A pair of households suspected to be one family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    /// One household.
    pub a: HouseholdBrief,
    /// The other.
    pub b: HouseholdBrief,
    /// Why: `same_kk`, `shared_nik`, `same_head_name` (same village and RT).
    pub reasons: Vec<String>,
}

/// `POST /v1/duplicates/merge`: fold `retired` into `survivor` ("merge" is the supervisor's word
/// for it on the wire and in `pilar`; inside the code it is a fold).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldRequest {
    /// The household that stays.
    pub survivor: crate::model::HouseholdId,
    /// The household marked `merged_into` the survivor.
    pub retired: crate::model::HouseholdId,
}

/// What a fold (a supervisor's merge of duplicates) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldReply {
    /// The household that stays.
    pub survivor: crate::model::HouseholdId,
    /// The retired household.
    pub retired: crate::model::HouseholdId,
    /// Fields where the two disagreed; listed in the conflict inbox.
    pub disagreements: u32,
}

/// `POST /v1/duplicates/dismiss`: the two households are different families.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DismissRequest {
    /// One household.
    pub a: crate::model::HouseholdId,
    /// The other.
    pub b: crate::model::HouseholdId,
}

/// `GET /v1/progress`: the campaign's state per village and per enumerator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressReport {
    /// One row per village in the area.
    pub villages: Vec<ProgressRow>,
    /// One row per enumerator assigned in the area (households of their villages; visited and
    /// outcomes count the households whose last visit they made).
    pub enumerators: Vec<ProgressRow>,
    /// Every device of those enumerators, with its last sync.
    pub devices: Vec<DeviceProgress>,
}

/// Counts for one village or one enumerator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressRow {
    /// Village code or user name.
    pub key: String,
    /// Village name (for villages).
    pub name: Option<String>,
    /// Households (merged-away households not counted).
    pub total: u64,
    /// Households with at least one visit.
    pub visited: u64,
    /// Households by the final outcome code of their last visit.
    pub final_outcomes: BTreeMap<i64, u64>,
    /// Visited households awaiting review (never reviewed, or changed since).
    pub awaiting_review: u64,
    /// Approved and unchanged since.
    pub approved: u64,
    /// Returned to the enumerator and not yet fixed.
    pub returned: u64,
    /// Open conflicts.
    pub conflicts: u64,
    /// Households in an open duplicate suspicion.
    pub duplicates: u64,
}

/// One device and when it last synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceProgress {
    /// The device's user.
    pub user: String,
    /// The device id.
    pub device: String,
    /// The name given at login.
    pub name: String,
    /// Last completed sync (RFC 3339), `None` if never.
    pub last_sync_at: Option<String>,
    /// Whether the device was revoked.
    pub revoked: bool,
}

/// One published questionnaire version, as `GET /v1/forms` lists it (the definition itself is at
/// `GET /v1/forms/{key}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormVersionView {
    /// `id@version`, as households record it.
    pub key: String,
    /// The form's title.
    pub title: String,
    /// Who published it (`built-in` for the version compiled into Pilar).
    pub published_by: String,
    /// When (RFC 3339 UTC); empty for the built-in version.
    pub published_at: String,
}

/// Which version new visits use: per kabupaten, with a global fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDefaultView {
    /// A kabupaten code (`73.14`), or empty for every kabupaten without its own.
    pub kabupaten: String,
    /// The kabupaten's name from the region table; empty for the global default.
    #[serde(default)]
    pub name: String,
    /// The form version (`id@version`).
    pub form: String,
    /// Who set it (`built-in` when nobody has).
    pub set_by: String,
    /// When (RFC 3339 UTC); empty when nobody has.
    pub set_at: String,
}

/// `GET /v1/forms`: every published version and the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormsView {
    /// Published versions, by form id then version.
    pub versions: Vec<FormVersionView>,
    /// The global default first, then each kabupaten's.
    pub defaults: Vec<FormDefaultView>,
}

/// What `POST /v1/admin/forms` did with a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedForm {
    /// The version's key.
    pub key: String,
    /// False when this very definition was already published (a retried publish).
    pub created: bool,
}

/// `PUT /v1/admin/forms/default`: which version new visits use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefaultRequest {
    /// A kabupaten code (`73.14` or `7314`); absent for the global default.
    #[serde(default)]
    pub kabupaten: Option<String>,
    /// A published version, `id@version`.
    pub form: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_roster_chunk_round_trips_and_a_bomb_is_refused_at_the_limit() {
        let mut household = RosterHousehold::new(2);
        household.answers.insert("head_name".into(), crate::value::FieldValue::Text("La Sintetis".into()));
        let chunk = RosterChunk { households: vec![household; 200] };
        let body = chunk.to_compressed().expect("compressed");
        let json = serde_json::to_vec(&chunk).expect("json");
        assert!(body.len() * 10 < json.len(), "{} compressed bytes of {} JSON bytes", body.len(), json.len());
        let back = RosterChunk::from_compressed(&body, json.len()).expect("read back");
        assert_eq!(back.households, chunk.households);
        let refused = RosterChunk::from_compressed(&body, json.len() - 1).expect_err("over the limit");
        assert!(matches!(refused, ChunkBodyError::TooLarge { .. }), "{refused}");
        let plain = RosterChunk::from_compressed(&json, json.len()).expect_err("plain JSON is not zstd");
        assert!(matches!(plain, ChunkBodyError::Compression(_)), "{plain}");
        let unknown = zstd::bulk::compress(br#"{"households": [], "village": "x"}"#, 3).expect("compress");
        let refused = RosterChunk::from_compressed(&unknown, 1000).expect_err("unknown field");
        assert!(refused.to_string().contains("unknown field"), "{refused}");
    }

    #[test]
    fn a_chunk_reply_lists_the_first_problems_of_each_rule_and_counts_them_all() {
        use crate::finding::Severity;
        let warning = |row: usize| RosterProblem {
            severity: Severity::Warn,
            ..RosterProblem::reject(row, "nik", "9101011503809001", "nik_region_unknown", "region prefix unknown")
        };
        let mut problems: Vec<RosterProblem> = (2..40).rev().map(warning).collect();
        problems.push(RosterProblem::reject(7, "sex", "x", "choice", "not a code"));
        let reply = ChunkReply::new(false, problems);
        let rows = |rule: &str| reply.problems.iter().filter(|p| p.rule == rule).map(|p| p.row).collect::<Vec<_>>();
        assert_eq!(rows("nik_region_unknown"), [2, 3, 4, 5, 6]);
        assert_eq!(rows("choice"), [7]);
        let counts: Vec<(&str, Severity, u64)> =
            reply.counts.iter().map(|c| (c.rule.as_str(), c.severity, c.count)).collect();
        assert_eq!(counts, [("nik_region_unknown", Severity::Warn, 38), ("choice", Severity::Reject, 1)]);
        assert_eq!(reply.unlisted().collect::<Vec<_>>(), [("nik_region_unknown", Severity::Warn, 33)]);

        // A reply from a server that listed every problem and counted none still reads.
        let old: ChunkReply = serde_json::from_str(r#"{"staged": true, "problems": []}"#).expect("an older reply");
        assert!(old.counts.is_empty() && old.unlisted().next().is_none());
    }

    #[test]
    fn admin_requests_refuse_unknown_fields() {
        let misspelt = r#"{"name": "pkh.a", "role": "enumerator", "is_admin": true}"#;
        assert!(serde_json::from_str::<CreateUserRequest>(misspelt).is_err());
        assert!(serde_json::from_str::<VillagesRequest>(r#"{"villages": [], "desa": []}"#).is_err());
        assert!(serde_json::from_str::<KecamatanRequest>(r#"{"kecamatan": [], "x": 1}"#).is_err());
        let plain: CreateUserRequest =
            serde_json::from_str(r#"{"name": "pkh.a", "role": "enumerator"}"#).expect("a request without password");
        assert_eq!(plain.password, None);
    }

    #[test]
    fn admin_types_round_trip_and_leave_out_an_absent_password() {
        let request = CreateUserRequest { name: "pkh.a".into(), role: Role::Enumerator, password: None };
        assert_eq!(serde_json::to_string(&request).expect("json"), r#"{"name":"pkh.a","role":"enumerator"}"#);
        let user = UserView {
            name: "spv.a".into(),
            role: Role::Supervisor,
            created_at: "2026-01-02T03:04:05Z".into(),
            villages: vec![],
            kecamatan: vec!["73.14.01".into()],
        };
        let back: UserView = serde_json::from_str(&serde_json::to_string(&user).expect("json")).expect("parse");
        assert_eq!(back, user);
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let request =
            CreateUserRequest { name: "pkh.a".into(), role: Role::Enumerator, password: Some("rahasia-sekali".into()) };
        let created =
            CreatedUser { name: "pkh.a".into(), role: Role::Enumerator, password: Some("rahasia-juga".into()) };
        let shown = format!("{request:?} {created:?}");
        assert!(!shown.contains("rahasia"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
