//! Snapshot pack pages in the compact form (pack format 2): each household's history as rows of
//! operations, and the whole page compressed as one zstd stream at a high level.
//!
//! Why: a format-1 page carries each document's `save()`, whose Automerge columns are each
//! DEFLATE-compressed on their own and whose header holds the heads (32 random bytes each) and a
//! checksum; the outer zstd cannot see through either. Rows of operations (object, key, value,
//! the operations they replace), with actors named once per page, change times as differences
//! and dependencies as positions in the household's own list, repeat from household to household
//! in a way zstd finds: a first sync moves about a third of format 1's bytes.
//!
//! Nothing is lost: the device encodes each row back into the Automerge change it came from (a
//! change Pilar admits is encoded the way Automerge encodes it, so the bytes and the hash come
//! out the same), and checks the page's `digest` (SHA-256 over every household's id and heads)
//! before storing anything. A household whose history the rows cannot carry (an operation Pilar
//! never writes, a change encoded differently) travels as its whole document instead.
//!
//! Only a device that asks for format 2 (`Accept: ` [`PACK_CONTENT_TYPE`]) gets it; the answer's
//! `Content-Type` says which format came back, so a new device reads a format-1 page from an older
//! server, and an older device never receives rows it cannot read.

use crate::model::HouseholdId;
use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjType, ScalarValue};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;

/// Media type of a format-2 pack page (CBOR, `Content-Encoding: zstd`). A device lists it in
/// `Accept` to ask for the compact form; a server that answers with it sends a [`CompactPackPage`].
pub const PACK_CONTENT_TYPE: &str = "application/vnd.pilar.pack.v2+cbor";

/// zstd level of a format-2 page. Level 19 keeps about 4 % more off the wire than level 9 on
/// the benchmark's households and costs the server about 0.1 s a page, which it pays once per
/// village version (it keeps encoded pages while the village's feed does not move).
pub const PACK_LEVEL: i32 = 19;

/// Most households a format-2 page holds: about 90 KB at the benchmark's households, less than a
/// format-1 page of 200.
pub const MAX_COMPACT_PACK: u32 = 500;

/// One page of a village's snapshot pack in the compact form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactPackPage {
    /// The village.
    pub village: String,
    /// The feed position the page's households include (as in a format-1 page).
    pub seq: u64,
    /// Ask for the next page after this id; `None` when this was the last page.
    pub next_after: Option<HouseholdId>,
    /// Households in the village on the server now.
    #[serde(default)]
    pub total: u64,
    /// Every actor the page's changes name, once; rows refer to them by position.
    pub actors: Vec<ByteBuf>,
    /// The households, ordered by id.
    pub households: Vec<CompactHousehold>,
    /// SHA-256 over each household's id (16 bytes) and sorted heads (32 bytes each), in page
    /// order: the device's rebuilt changes must give the same.
    pub digest: ByteBuf,
}

/// One household of a compact page: its changes as rows, or its whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactHousehold {
    /// The household; left out when the first change's `household_id` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<HouseholdId>,
    /// Its changes, each after its dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeRow>,
    /// Its whole document (`save_nocompress()`), when rows cannot carry its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<ByteBuf>,
}

/// One change: actor (position in the page's actors), sequence number, first operation number,
/// time (milliseconds after the page's previous change, which may be negative), message,
/// dependencies (positions in the household's changes) and operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow(pub u32, pub u64, pub u64, pub i64, pub Option<String>, pub Vec<u32>, pub Vec<OpRow>);

/// One operation: the map it writes (operation number and actor position of the operation that
/// made it; `0, 0` is the root), the key, what it does, and the operations it replaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpRow(pub u64, pub u32, pub String, pub RowAction, pub Vec<(u64, u32)>);

/// What an operation does. Text and integers, nearly every operation, are written as plain CBOR
/// values; everything else as `[code, value]`.
#[derive(Debug, Clone, PartialEq)]
pub enum RowAction {
    /// Put a text.
    Text(String),
    /// Put a signed integer.
    Int(i64),
    /// Make a map.
    MakeMap,
    /// Delete the key.
    Delete,
    /// Put a float.
    Float(f64),
    /// Put a boolean.
    Bool(bool),
    /// Put an unsigned integer.
    Uint(u64),
    /// Put a timestamp.
    Timestamp(i64),
    /// Put a null.
    Null,
}

const CODE_MAKE_MAP: u8 = 0;
const CODE_DELETE: u8 = 1;
const CODE_FLOAT: u8 = 2;
const CODE_BOOL: u8 = 3;
const CODE_UINT: u8 = 4;
const CODE_TIMESTAMP: u8 = 5;
const CODE_NULL: u8 = 6;

impl Serialize for RowAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn tagged<S: Serializer, T: Serialize>(s: S, code: u8, value: Option<T>) -> Result<S::Ok, S::Error> {
            let mut t = s.serialize_tuple(if value.is_some() { 2 } else { 1 })?;
            t.serialize_element(&code)?;
            if let Some(v) = value {
                t.serialize_element(&v)?;
            }
            t.end()
        }
        match self {
            RowAction::Text(t) => s.serialize_str(t),
            RowAction::Int(i) => s.serialize_i64(*i),
            RowAction::MakeMap => tagged::<S, u8>(s, CODE_MAKE_MAP, None),
            RowAction::Delete => tagged::<S, u8>(s, CODE_DELETE, None),
            RowAction::Float(f) => tagged(s, CODE_FLOAT, Some(*f)),
            RowAction::Bool(b) => tagged(s, CODE_BOOL, Some(*b)),
            RowAction::Uint(u) => tagged(s, CODE_UINT, Some(*u)),
            RowAction::Timestamp(t) => tagged(s, CODE_TIMESTAMP, Some(*t)),
            RowAction::Null => tagged::<S, u8>(s, CODE_NULL, None),
        }
    }
}

impl<'de> Deserialize<'de> for RowAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RowAction, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RowAction;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a text, an integer or [code, value]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RowAction, E> {
                Ok(RowAction::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RowAction, E> {
                Ok(RowAction::Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RowAction, E> {
                Ok(RowAction::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RowAction, E> {
                i64::try_from(v).map(RowAction::Int).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowAction, A::Error> {
                let code: u8 = seq.next_element()?.ok_or_else(|| de::Error::custom("missing action code"))?;
                let missing = || de::Error::custom("missing action value");
                let action = match code {
                    CODE_MAKE_MAP => RowAction::MakeMap,
                    CODE_DELETE => RowAction::Delete,
                    CODE_FLOAT => RowAction::Float(seq.next_element()?.ok_or_else(missing)?),
                    CODE_BOOL => RowAction::Bool(seq.next_element()?.ok_or_else(missing)?),
                    CODE_UINT => RowAction::Uint(seq.next_element()?.ok_or_else(missing)?),
                    CODE_TIMESTAMP => RowAction::Timestamp(seq.next_element()?.ok_or_else(missing)?),
                    CODE_NULL => RowAction::Null,
                    other => return Err(de::Error::custom(format!("unknown action code {other}"))),
                };
                Ok(action)
            }
        }
        d.deserialize_any(V)
    }
}

/// A compact page that cannot be read back into changes.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A row names an actor, a dependency or a household the page does not hold.
    #[error("a pack page row is malformed ({0}); sync again, and update pilar if it repeats")]
    Malformed(String),
    /// The rebuilt changes are not the server's.
    #[error(
        "a pack page did not rebuild into the server's households (their versions differ); sync again, and update pilar if it repeats"
    )]
    Digest,
}

/// One household of a compact page, read back.
#[derive(Debug)]
pub enum Unpacked {
    /// Its changes, each after its dependencies.
    Changes {
        /// The household.
        id: HouseholdId,
        /// The rebuilt changes.
        changes: Vec<Change>,
        /// Each rebuilt change as the rows gave it (`changes[i]` is `expanded[i]` encoded), so
        /// the device reads its operations without decoding the change again (decoding was a
        /// quarter of a new household's apply).
        expanded: Vec<ExpandedChange>,
    },
    /// Its whole document.
    Document {
        /// The household.
        id: HouseholdId,
        /// The document bytes.
        document: Vec<u8>,
    },
}

impl Unpacked {
    /// The household.
    pub fn id(&self) -> HouseholdId {
        match self {
            Unpacked::Changes { id, .. } | Unpacked::Document { id, .. } => *id,
        }
    }
}

/// A pack page as it came: format 1 (documents) or format 2 (rows).
#[derive(Debug, Clone, PartialEq)]
pub enum Pack {
    /// A format-1 page: each household's `save()`.
    Documents(super::PackPage),
    /// A format-2 page: each household's changes as rows.
    Changes(CompactPackPage),
}

impl Pack {
    /// The page's village.
    pub fn village(&self) -> &str {
        match self {
            Pack::Documents(p) => &p.village,
            Pack::Changes(p) => &p.village,
        }
    }

    /// Households on the page.
    pub fn households(&self) -> usize {
        match self {
            Pack::Documents(p) => p.households.len(),
            Pack::Changes(p) => p.households.len(),
        }
    }

    /// The next page to ask for, `None` after the last.
    pub fn next_after(&self) -> Option<HouseholdId> {
        match self {
            Pack::Documents(p) => p.next_after,
            Pack::Changes(p) => p.next_after,
        }
    }

    /// Households in the village on the server (0 when the server does not say).
    pub fn total(&self) -> u64 {
        match self {
            Pack::Documents(p) => p.total,
            Pack::Changes(p) => p.total,
        }
    }
}

/// Read a pack page body by the `Content-Type` it came with: [`PACK_CONTENT_TYPE`] is format 2,
/// anything else (an older server's sync type) format 1.
pub fn decode_pack(content_type: Option<&str>, body: &[u8], limit: usize) -> Result<Pack, super::WireError> {
    let format_2 = content_type.is_some_and(|t| t.split(';').next().is_some_and(|t| t.trim() == PACK_CONTENT_TYPE));
    if format_2 {
        super::decode(body, limit).map(Pack::Changes)
    } else {
        super::decode(body, limit).map(Pack::Documents)
    }
}

/// Builds a compact page from stored documents, household by household (the server's side).
#[derive(Debug, Default)]
pub struct CompactPageBuilder {
    actors: Vec<ActorId>,
    actor_index: HashMap<ActorId, u32>,
    households: Vec<CompactHousehold>,
    hasher: Sha256,
    last_time: i64,
}

/// Heads as the digest takes them: sorted.
fn digest_household(hasher: &mut Sha256, id: HouseholdId, heads: &mut [ChangeHash]) {
    heads.sort();
    hasher.update(id.0.as_bytes());
    for h in heads.iter() {
        hasher.update(h.0);
    }
}

impl CompactPageBuilder {
    /// An empty page.
    pub fn new() -> CompactPageBuilder {
        CompactPageBuilder::default()
    }

    fn actor(&mut self, actor: &ActorId) -> u32 {
        if let Some(i) = self.actor_index.get(actor) {
            return *i;
        }
        let i = self.actors.len() as u32;
        self.actors.push(actor.clone());
        self.actor_index.insert(actor.clone(), i);
        i
    }

    /// Add a household from its stored document. One whose changes rows cannot carry goes whole,
    /// and so does one that does not load (with no heads in the digest): the device lists it for
    /// repair, as it does a format-1 page's.
    pub fn push(&mut self, id: HouseholdId, document: &[u8]) {
        let Ok(doc) = Automerge::load(document) else {
            digest_household(&mut self.hasher, id, &mut []);
            self.households.push(CompactHousehold {
                id: Some(id),
                changes: Vec::new(),
                document: Some(ByteBuf::from(document.to_vec())),
            });
            return;
        };
        let mut heads = doc.get_heads();
        digest_household(&mut self.hasher, id, &mut heads);
        let changes = doc.get_changes(&[]);
        // Rows are built on the builder's state, rolled back unless every change fits.
        let (actors_before, last_time_before) = (self.actors.len(), self.last_time);
        match self.rows(&changes) {
            Some(rows) => {
                let named = first_household_id(&rows) == Some(id);
                self.households.push(CompactHousehold { id: (!named).then_some(id), changes: rows, document: None });
            }
            None => {
                for actor in self.actors.drain(actors_before..) {
                    self.actor_index.remove(&actor);
                }
                self.last_time = last_time_before;
                self.households.push(CompactHousehold {
                    id: Some(id),
                    changes: Vec::new(),
                    document: Some(ByteBuf::from(doc.save_nocompress())),
                });
            }
        }
    }

    /// The rows of a document's changes, or `None` when one of them cannot be carried exactly.
    fn rows(&mut self, changes: &[Change]) -> Option<Vec<ChangeRow>> {
        let position: HashMap<ChangeHash, u32> =
            changes.iter().enumerate().map(|(i, c)| (c.hash(), i as u32)).collect();
        let mut rows = Vec::with_capacity(changes.len());
        for change in changes {
            let expanded = change.decode();
            if !expanded.extra_bytes.is_empty() || expanded.author.is_some() {
                return None;
            }
            let actor = self.actor(&expanded.actor_id);
            let deps = expanded.deps.iter().map(|d| position.get(d).copied()).collect::<Option<Vec<u32>>>()?;
            let mut ops = Vec::with_capacity(expanded.operations.len());
            for op in &expanded.operations {
                if op.insert {
                    return None;
                }
                let (obj_counter, obj_actor) = match &op.obj {
                    ObjectId::Root => (0, 0),
                    ObjectId::Id(OpId(counter, actor)) => (*counter, self.actor(actor)),
                };
                let Key::Map(key) = &op.key else { return None };
                let action = match &op.action {
                    OpType::Make(ObjType::Map) => RowAction::MakeMap,
                    OpType::Delete => RowAction::Delete,
                    OpType::Put(value) => match value {
                        ScalarValue::Str(t) => RowAction::Text(t.to_string()),
                        ScalarValue::Int(i) => RowAction::Int(*i),
                        ScalarValue::F64(f) => RowAction::Float(*f),
                        ScalarValue::Boolean(b) => RowAction::Bool(*b),
                        ScalarValue::Uint(u) => RowAction::Uint(*u),
                        ScalarValue::Timestamp(t) => RowAction::Timestamp(*t),
                        ScalarValue::Null => RowAction::Null,
                        _ => return None,
                    },
                    _ => return None,
                };
                let pred = op.pred.iter().map(|OpId(counter, actor)| (*counter, self.actor(actor))).collect();
                ops.push(OpRow(obj_counter, obj_actor, key.to_string(), action, pred));
            }
            let row = ChangeRow(
                actor,
                expanded.seq,
                expanded.start_op.get(),
                expanded.time.wrapping_sub(self.last_time),
                expanded.message.clone(),
                deps,
                ops,
            );
            // Only a change that rows give back byte for byte can travel as rows.
            let rebuilt = rebuild(&row, &self.actors, self.last_time, &rows_hashes(&rows, changes)).ok()?;
            if rebuilt.hash() != change.hash() {
                return None;
            }
            self.last_time = expanded.time;
            rows.push(row);
        }
        Some(rows)
    }

    /// The finished page.
    pub fn finish(self, village: &str, seq: u64, next_after: Option<HouseholdId>, total: u64) -> CompactPackPage {
        CompactPackPage {
            village: village.to_string(),
            seq,
            next_after,
            total,
            actors: self.actors.iter().map(|a| ByteBuf::from(a.to_bytes().to_vec())).collect(),
            households: self.households,
            digest: ByteBuf::from(self.hasher.finalize().to_vec()),
        }
    }
}

/// The hashes of the changes already turned into rows (the first `rows.len()` of `changes`).
fn rows_hashes(rows: &[ChangeRow], changes: &[Change]) -> Vec<ChangeHash> {
    changes.iter().take(rows.len()).map(Change::hash).collect()
}

/// The household a household's first row files itself under: the root `household_id` its first
/// change puts. Read from the rows (the rebuilt change holds the same operations), so a device
/// does not decode that change once more only to find its household (a sixth of a page's apply).
fn first_household_id(rows: &[ChangeRow]) -> Option<HouseholdId> {
    rows.first()?.6.iter().find_map(|OpRow(obj_counter, _, key, action, _)| match action {
        RowAction::Text(v) if *obj_counter == 0 && key == "household_id" => v.parse().ok(),
        _ => None,
    })
}

/// Encode a compact page: CBOR, then zstd at [`PACK_LEVEL`].
pub fn encode_compact(page: &CompactPackPage) -> Vec<u8> {
    let mut cbor = Vec::new();
    // Serialising plain structs into a Vec cannot fail.
    let _ = ciborium::into_writer(page, &mut cbor);
    zstd::bulk::compress(&cbor, PACK_LEVEL).unwrap_or_default()
}

fn actor_at(actors: &[ActorId], i: u32) -> Result<&ActorId, PackError> {
    actors.get(i as usize).ok_or_else(|| PackError::Malformed(format!("actor {i} is not in the page")))
}

/// The change a row stands for; `time_base` is the time of the page's previous change and `done`
/// the hashes of the household's changes before it.
fn rebuild(row: &ChangeRow, actors: &[ActorId], time_base: i64, done: &[ChangeHash]) -> Result<Change, PackError> {
    rebuild_expanded(row, actors, time_base, done).map(|(change, _)| change)
}

/// [`rebuild`], also giving the change's operations as built (Automerge encodes them in the order
/// given, so they are what `change.decode()` would give).
fn rebuild_expanded(
    row: &ChangeRow,
    actors: &[ActorId],
    time_base: i64,
    done: &[ChangeHash],
) -> Result<(Change, ExpandedChange), PackError> {
    let ChangeRow(actor, seq, start_op, time, message, deps, ops) = row;
    let start_op = NonZeroU64::new(*start_op).ok_or_else(|| PackError::Malformed("operation number 0".into()))?;
    let deps = deps
        .iter()
        .map(|d| {
            done.get(*d as usize)
                .copied()
                .ok_or_else(|| PackError::Malformed(format!("dependency {d} comes after its change")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut operations = Vec::with_capacity(ops.len());
    for OpRow(obj_counter, obj_actor, key, action, pred) in ops {
        let obj = if *obj_counter == 0 {
            ObjectId::Root
        } else {
            ObjectId::Id(OpId(*obj_counter, actor_at(actors, *obj_actor)?.clone()))
        };
        let action = match action {
            RowAction::Text(t) => OpType::Put(ScalarValue::Str(t.as_str().into())),
            RowAction::Int(i) => OpType::Put(ScalarValue::Int(*i)),
            RowAction::MakeMap => OpType::Make(ObjType::Map),
            RowAction::Delete => OpType::Delete,
            RowAction::Float(f) => OpType::Put(ScalarValue::F64(*f)),
            RowAction::Bool(b) => OpType::Put(ScalarValue::Boolean(*b)),
            RowAction::Uint(u) => OpType::Put(ScalarValue::Uint(*u)),
            RowAction::Timestamp(t) => OpType::Put(ScalarValue::Timestamp(*t)),
            RowAction::Null => OpType::Put(ScalarValue::Null),
        };
        let pred = pred
            .iter()
            .map(|(counter, a)| Ok(OpId(*counter, actor_at(actors, *a)?.clone())))
            .collect::<Result<Vec<_>, PackError>>()?;
        operations.push(automerge::legacy::Op {
            action,
            obj,
            key: Key::Map(key.as_str().into()),
            pred: pred.into(),
            insert: false,
        });
    }
    let expanded = ExpandedChange {
        operations,
        actor_id: actor_at(actors, *actor)?.clone(),
        hash: None,
        seq: *seq,
        start_op,
        time: time_base.wrapping_add(*time),
        message: message.clone(),
        deps,
        extra_bytes: Vec::new(),
        author: None,
    };
    // Automerge's encoder panics on operations it cannot order (the server never sends such);
    // a page that makes it is refused, not a crash.
    let change = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Change::from(expanded.clone())))
        .map_err(|_| PackError::Malformed("operations cannot be encoded".into()))?;
    Ok((change, expanded))
}

impl CompactPackPage {
    /// Every household of the page as changes or a document, after checking that together they
    /// give the server's heads (the page's digest). Nothing is returned from a page that fails.
    pub fn unpack(&self) -> Result<Vec<Unpacked>, PackError> {
        let actors: Vec<ActorId> = self.actors.iter().map(|a| ActorId::from(a.as_slice())).collect();
        let mut hasher = Sha256::new();
        let mut last_time = 0i64;
        let mut out = Vec::with_capacity(self.households.len());
        for household in &self.households {
            if let Some(document) = &household.document {
                let id = household.id.ok_or_else(|| PackError::Malformed("a document without its household".into()))?;
                // A document that does not load is stored for repair, as from a format-1 page.
                let mut heads = Automerge::load(document).map(|d| d.get_heads()).unwrap_or_default();
                digest_household(&mut hasher, id, &mut heads);
                out.push(Unpacked::Document { id, document: document.to_vec() });
                continue;
            }
            let mut changes: Vec<Change> = Vec::with_capacity(household.changes.len());
            let mut expanded: Vec<ExpandedChange> = Vec::with_capacity(household.changes.len());
            let mut hashes: Vec<ChangeHash> = Vec::with_capacity(household.changes.len());
            for row in &household.changes {
                let (change, ops) = rebuild_expanded(row, &actors, last_time, &hashes)?;
                last_time = change.timestamp();
                hashes.push(change.hash());
                changes.push(change);
                expanded.push(ops);
            }
            let id = match household.id {
                Some(id) => id,
                None => first_household_id(&household.changes)
                    .ok_or_else(|| PackError::Malformed("a household without its id".into()))?,
            };
            let depended: HashSet<ChangeHash> = changes.iter().flat_map(|c| c.deps().to_vec()).collect();
            let mut heads: Vec<ChangeHash> = hashes.iter().copied().filter(|h| !depended.contains(h)).collect();
            digest_household(&mut hasher, id, &mut heads);
            out.push(Unpacked::Changes { id, changes, expanded });
        }
        if hasher.finalize()[..] != self.digest[..] {
            return Err(PackError::Digest);
        }
        Ok(out)
    }
}
