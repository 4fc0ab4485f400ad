//! Sync messages and their encoding: CBOR (binary changes stay bytes) compressed with zstd.
//!
//! Unknown fields are ignored in sync messages, both ways, unlike the JSON requests: tablets are
//! updated weeks apart from the server (offline in the field), and a newer device adding an
//! optional field must still sync with an older server. Ignoring is safe because nothing of a
//! sync message is stored but the changes, and every change passes the server's admission checks.

use crate::model::HouseholdId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Media type of every sync body; bodies are always zstd-compressed (`Content-Encoding: zstd`).
pub const CONTENT_TYPE: &str = "application/vnd.pilar.sync+cbor";

/// `Content-Encoding` of every sync body, request and answer: [`encode`] compresses with zstd.
pub const CONTENT_ENCODING: &str = "zstd";

/// `POST` a [`SyncRequest`], get a [`SyncResponse`].
pub const SYNC_PATH: &str = "/v1/sync";

/// `POST` a [`DocumentsRequest`], get a [`DocumentsResponse`] (households listed for repair).
pub const DOCUMENTS_PATH: &str = "/v1/documents";

/// `POST` a [`FormsRequest`], get a [`FormsDelivery`] (form versions the device lacks).
pub const FORMS_PATH: &str = "/v1/sync/forms";

/// The sync HTTP framing, written once: the headers of a request that carries a sync body and
/// wants one back (`POST` [`SYNC_PATH`] and [`DOCUMENTS_PATH`]), besides `Authorization: Bearer
/// <access token>`. Every client (the CLI, a tablet app, the tests and the benchmark) sets
/// exactly these; sync-core itself speaks no HTTP.
pub const REQUEST_HEADERS: [(&str, &str); 3] =
    [("content-type", CONTENT_TYPE), ("content-encoding", CONTENT_ENCODING), ("accept", CONTENT_TYPE)];

/// zstd level: 3 is zstd's default, fast on a phone and within a few percent of level 9 on
/// Automerge changes.
const LEVEL: i32 = 3;

/// A body that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is not zstd or not CBOR of the expected message.
    #[error("the body is not a valid Pilar sync message ({0}); the client and server versions may differ")]
    Malformed(String),
    /// The body decompresses to more than the allowed size.
    #[error("the body expands to more than {limit} bytes; send smaller batches")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Encode a message: CBOR, then zstd.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut cbor = Vec::new();
    // Serialising plain structs into a Vec cannot fail.
    let _ = ciborium::into_writer(message, &mut cbor);
    zstd::bulk::compress(&cbor, LEVEL).unwrap_or_default()
}

/// Decode a message, refusing bodies that expand beyond `limit` bytes (a zstd bomb).
pub fn decode<T: DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, WireError> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| WireError::Malformed(e.to_string()))?;
    let mut cbor = Vec::new();
    let read =
        decoder.take(limit as u64 + 1).read_to_end(&mut cbor).map_err(|e| WireError::Malformed(e.to_string()))?;
    if read > limit {
        return Err(WireError::TooLarge { limit });
    }
    ciborium::from_reader(cbor.as_slice()).map_err(|e| WireError::Malformed(e.to_string()))
}

/// `POST /v1/sync`: the device's unacknowledged changes and its position in each village's feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Client batch id: a retry after a lost response reuses it and gets the same response.
    pub batch: Uuid,
    /// Last feed sequence number seen, per village.
    pub cursors: BTreeMap<String, u64>,
    /// The outbox, grouped by household, each household's changes in causal order.
    pub push: Vec<PushHousehold>,
    /// Most changes the device wants back in this response (the server may send fewer).
    pub max_changes: u32,
}

/// One household's changes going up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushHousehold {
    /// The household.
    pub household: HouseholdId,
    /// Its village, sent only while the household's creation is unacknowledged: the server files
    /// a new household under it and ignores it otherwise (it owns the village of known ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub village: Option<String>,
    /// Encoded Automerge changes.
    pub changes: Vec<ByteBuf>,
}

/// What the server did with a request, and what the device lacks.
///
/// The response acknowledges the request's batch as a whole: every pushed change is durably
/// stored (or was already known) except those of households listed in `rejected` or `need_full`.
/// Listing each change hash would cost 64 bytes per change on a 2G link; the device instead
/// remembers which outbox rows went into the batch (a retry resends exactly those).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SyncResponse {
    /// How many pushed changes are now stored (or already known): a count for the summary.
    pub acknowledged: u32,
    /// Pushed households refused, with the reason; their changes were stored nowhere.
    pub rejected: Vec<Rejection>,
    /// Households whose pushed changes depend on history the server lacks (or that are new to the
    /// server but came without a village): send all their changes, with the village.
    pub need_full: Vec<HouseholdId>,
    /// Changes the device lacks in its villages, by household, in feed order.
    pub pull: Vec<PullHousehold>,
    /// New cursors per village.
    pub cursors: BTreeMap<String, u64>,
    /// More changes wait: sync again (with the new cursors) to get them.
    pub has_more: bool,
    /// The villages the device may hold now (its scope, decided by the server).
    pub villages: Vec<String>,
    /// The server's form catalog token: when it differs from the one the device stored, the
    /// device fetches the form versions it lacks (`FORMS_PATH`). Empty from an older server.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub forms: String,
}

/// The form versions a device holds (the built-in one included), so the answer leaves them out.
/// Reading only: a retry is harmless.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FormsRequest {
    /// Keys (`id@version`) of every version the device holds.
    pub have: Vec<String>,
}

/// Which version new visits use in the device's kabupaten, and the versions it lacks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FormsDelivery {
    /// The catalog token this answer reflects (the device stores it with the forms).
    pub token: String,
    /// Defaults: a kabupaten code (`73.14`) or empty for every other kabupaten, and the key.
    pub defaults: Vec<(String, String)>,
    /// Every published version the device lacks, each as its definition's JSON (the device
    /// checks each one as any definition is checked before it stores them).
    pub forms: Vec<String>,
}

/// A pushed household the server refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// The household: all of its changes in the request are refused.
    pub household: HouseholdId,
    /// Stable code: `foreign_actor`, `out_of_scope`, `review_forbidden`, `invalid_value`, ...
    pub code: String,
    /// Lowercase sentence for the person at the device.
    pub reason: String,
}

/// One household's changes coming down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullHousehold {
    /// The household.
    pub household: HouseholdId,
    /// Its village (scope).
    pub village: String,
    /// Encoded Automerge changes, in causal order.
    pub changes: Vec<ByteBuf>,
}

/// `GET /v1/packs/{village}?after=<household id>`: one page of a village's snapshot pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackPage {
    /// The village.
    pub village: String,
    /// The feed position the page's documents include; after the last page, the device's cursor
    /// for the village becomes the smallest `seq` of all pages.
    pub seq: u64,
    /// Households, ordered by id, as compacted documents.
    pub households: Vec<PackedHousehold>,
    /// Ask for the next page after this id; `None` when this was the last page.
    pub next_after: Option<HouseholdId>,
    /// Households in the village on the server now, for the device's "done of total" (0 from a
    /// server that does not say).
    #[serde(default)]
    pub total: u64,
}

/// One household in a pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedHousehold {
    /// The household.
    pub household: HouseholdId,
    /// The document's `save()`.
    pub document: ByteBuf,
}

/// `POST /v1/documents`: households the device needs whole, because its copy could not take what
/// the server sent (missing history, a damaged document). At most 200 a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentsRequest {
    /// The households wanted.
    pub households: Vec<HouseholdId>,
}

/// The answer to [`DocumentsRequest`]: the server's compacted document of each household the
/// caller may hold, and the ones it may not (or that the server does not have).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DocumentsResponse {
    /// The documents, in request order.
    pub households: Vec<PackedHousehold>,
    /// Households not given: unknown to the server or outside the caller's villages.
    pub unavailable: Vec<HouseholdId>,
}
