//! The household document: one Automerge document per household, and a typed API over it.
//!
//! Layout (keys, never lists, wherever two devices may add concurrently):
//! ```text
//! { schema: 1, form: "<id>@<version>", household_id,
//!   answers: { <field>: scalar },
//!   members: { <member uuid>: { <field>: scalar, removed_at?, removed_by?, removed_reason? } },
//!   visits:  { <visit uuid>: { at, user, device, outcome, lat?, lon?, accuracy_m?, note?, <visit field>: scalar } },
//!   review:  { status?, by?, at?, approved_heads?, comments: { <uuid>: { by, at, text } } },
//!   links:   { duplicate_of?, merged_into? },
//!   photos:  { <sha256>: { kind, bytes, mime, taken_at, by, device } } }
//! ```
//! Only the device that creates a household creates these top-level maps, so they never conflict.
//! Members are removed softly (`removed_at`): deleting the map would silently drop a colleague's
//! concurrent edits to that member.

mod attribution;
mod combine;
mod edit;
mod inspect;
mod read;
mod record;
mod registers;
mod replay;
mod supervise;
mod untrusted;

pub use attribution::{Attributed, FieldChange, Writer, values_disagree};
pub use combine::{Combined, Disagreement, Fold, MERGE_ACTION, MERGE_FOLD_ACTION};
pub use edit::{Edits, NewPhoto, NewVisit};
pub use inspect::{Place, RecordKeys, Write, WrittenOp};
pub use read::{
    HouseholdState, MEMBER_REMOVAL_KEYS, Member, PhotoRef, ROOT_MAPS, Review, ReviewStatus, VISIT_KEYS, Visit,
};
pub use record::{
    LATITUDE_RANGE, LONGITUDE_RANGE, NOTE_MAX_CHARS, REMOVAL_REASON_MAX_CHARS, Record, RecordProblem,
    check_record_value, record_time,
};
pub use registers::{Registers, Unsupported};
pub use replay::Replayed;
pub use supervise::{RESOLVE_ACTION, REVIEW_ACTION, ReviewDecision};

use crate::value::FieldValue;
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjType, ROOT, ReadDoc, hydrate, transaction::Transactable};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// The action name of a household's first save; a device sends the village with it.
pub const CREATE_ACTION: &str = "create";

/// Version of the document layout above; bumped only with a migration.
pub const SCHEMA_VERSION: i64 = 1;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id (v4); ids are generated where the record is created, never reused.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, ModelError> {
                Uuid::parse_str(s.trim())
                    .map($name)
                    .map_err(|_| ModelError::BadId { what: $what, value: s.to_string() })
            }
        }
    };
}

uuid_id!(
    /// A household's own id: the KK number changes on moves and splits, so it cannot be the key.
    HouseholdId,
    "household id"
);
uuid_id!(
    /// A member's id inside a household: a map key, so concurrent adds never collide.
    MemberId,
    "member id"
);
uuid_id!(
    /// A visit's id inside a household: a map key, so concurrent visits never collide.
    VisitId,
    "visit id"
);
uuid_id!(
    /// A device install; its bytes are also the device's Automerge actor, so every change names it.
    DeviceId,
    "device id"
);

impl DeviceId {
    /// The Automerge actor of this device: the same 16 bytes, so actor → device needs no table.
    pub fn actor(&self) -> ActorId {
        ActorId::from(self.0.as_bytes().as_slice())
    }

    /// The device that wrote with `actor`, when the actor is a device id (16 bytes).
    pub fn from_actor(actor: &ActorId) -> Option<DeviceId> {
        Uuid::from_slice(actor.to_bytes()).ok().map(DeviceId)
    }

    /// The id under which the server writes on this device's user's behalf (review, conflict
    /// resolution, merges, roster import). A separate actor, because the device may hold offline
    /// changes of its own to the same household: sharing its actor would give two different
    /// changes the same sequence number. Deterministic and reversible, so the server maps a
    /// writer back to the device without a table; the device itself can never send changes under
    /// it (the server admits only a device's own actor).
    pub fn on_server(self) -> DeviceId {
        DeviceId(Uuid::from_u128(self.0.as_u128() ^ SERVER_SIDE_MASK))
    }
}

/// Mask between a device id and [`DeviceId::on_server`] (an involution: applying it twice gives
/// the device back).
const SERVER_SIDE_MASK: u128 = 0x5e5e_5e5e_5e5e_5e5e_5e5e_5e5e_5e5e_5e5e;

/// RFC 3339 text of a time to whole seconds, in its own offset (WIB/WITA/WIT stay visible): the
/// form of every time the device stores (visits, removals, outbox, search columns).
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Who is saving, from which device, and when: passed in so the core never reads the clock.
#[derive(Debug, Clone)]
pub struct Editor {
    /// The user name logged in on the device.
    pub user: String,
    /// The device install doing the save.
    pub device: DeviceId,
    /// The moment of the save action.
    pub now: OffsetDateTime,
}

/// Where a value lives in a household document, as written in commands and messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldPath {
    /// `answers.<field>` (also written as just `<field>`).
    Answer(String),
    /// `members.<member id>.<field>`.
    Member(MemberId, String),
    /// `visits.<visit id>.<field>`.
    Visit(VisitId, String),
    /// `review.<field>`.
    Review(String),
    /// `links.<field>`.
    Link(String),
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Answer(k) => write!(f, "answers.{k}"),
            FieldPath::Member(m, k) => write!(f, "members.{m}.{k}"),
            FieldPath::Visit(v, k) => write!(f, "visits.{v}.{k}"),
            FieldPath::Review(k) => write!(f, "review.{k}"),
            FieldPath::Link(k) => write!(f, "links.{k}"),
        }
    }
}

impl FromStr for FieldPath {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::BadPath(s.to_string());
        let parts: Vec<&str> = s.trim().split('.').collect();
        let field = |p: &str| if p.is_empty() { Err(bad()) } else { Ok(p.to_string()) };
        match parts.as_slice() {
            [k] => Ok(FieldPath::Answer(field(k)?)),
            ["answers", k] => Ok(FieldPath::Answer(field(k)?)),
            ["members", m, k] => Ok(FieldPath::Member(m.parse()?, field(k)?)),
            ["visits", v, k] => Ok(FieldPath::Visit(v.parse()?, field(k)?)),
            ["review", k] => Ok(FieldPath::Review(field(k)?)),
            ["links", k] => Ok(FieldPath::Link(field(k)?)),
            _ => Err(bad()),
        }
    }
}

/// What can go wrong reading or editing a household document.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The stored bytes are not a loadable Automerge document.
    #[error("household document {household} cannot be loaded: {source}")]
    Load {
        /// Which household.
        household: HouseholdId,
        /// Automerge's reason (boxed: it is large and errors are the cold path).
        source: Box<automerge::AutomergeError>,
    },
    /// The document loads but lacks the Pilar layout (missing `answers`, wrong schema...).
    #[error(
        "household document {household} is not a Pilar household ({detail}); it may come from a newer version of Pilar"
    )]
    Layout {
        /// Which household.
        household: HouseholdId,
        /// What is missing.
        detail: String,
    },
    /// A text that should be an id is not one.
    #[error("{value:?} is not a valid {what}; copy the id from `pilar show` or `pilar list`")]
    BadId {
        /// Which kind of id was expected.
        what: &'static str,
        /// The text given.
        value: String,
    },
    /// A field path does not have one of the accepted shapes.
    #[error(
        "{0:?} is not a field path; write `<field>`, `members.<member id>.<field>`, `visits.<visit id>.<field>`, `review.<field>` or `links.<field>`"
    )]
    BadPath(String),
    /// An edit names a member the household does not have.
    #[error("household has no member {0}; list members with `pilar show`")]
    NoSuchMember(MemberId),
    /// Incoming change bytes are not an Automerge change.
    #[error("change bytes are corrupt: {0}")]
    BadChange(String),
    /// Changes arrived whose predecessors this document lacks; nothing was applied.
    #[error("{missing} change(s) depend on history this household does not have; nothing was applied")]
    MissingDependencies {
        /// How many dependency hashes are missing.
        missing: usize,
    },
    /// A supervisor tried to merge a household into itself.
    #[error("household {0} cannot be merged into itself; pick the other copy of the family as the survivor")]
    MergeIntoItself(HouseholdId),
    /// A merge would fold a household that is already merged elsewhere (or make a cycle).
    #[error("household {household} is already merged into household {into}; fold it into that household instead")]
    AlreadyMerged {
        /// The household whose `links.merged_into` is set.
        household: HouseholdId,
        /// The household it names (its id as stored).
        into: String,
    },
    /// The saved [`Fold`] names changes a document does not have: it belongs to other documents
    /// or to an older copy of them.
    #[error(
        "the saved merge record does not match household {household}: it names changes the document lacks; pass the record returned by the last merge of these two households"
    )]
    FoldMismatch {
        /// The household whose heads do not match.
        household: HouseholdId,
    },
    /// Automerge refused an operation (a bug in Pilar if it happens).
    #[error("automerge: {0}")]
    Automerge(Box<automerge::AutomergeError>),
}

impl From<automerge::AutomergeError> for ModelError {
    fn from(e: automerge::AutomergeError) -> Self {
        ModelError::Automerge(Box::new(e))
    }
}

/// One household document, loaded for reading or editing; drop it when done (documents are not cached).
pub struct Household {
    id: HouseholdId,
    doc: Automerge,
}

impl fmt::Debug for Household {
    // Never print answers: they are personal data and Debug output reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Household").field("id", &self.id).field("heads", &self.heads().len()).finish()
    }
}

/// The result of one save action: the single new change, ready for the outbox.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The change's hash: its natural key everywhere.
    pub hash: ChangeHash,
    /// The encoded change.
    pub bytes: Vec<u8>,
}

impl Household {
    /// Create a household, with the first save action's edits, as one change by `editor`'s device.
    pub fn create(
        id: HouseholdId,
        form_key: &str,
        editor: &Editor,
        edits: &Edits,
    ) -> Result<(Household, Saved), ModelError> {
        let mut doc = Automerge::new().with_actor(editor.device.actor());
        let mut tx = doc.transaction();
        tx.put(ROOT, "schema", SCHEMA_VERSION)?;
        tx.put(ROOT, "form", form_key)?;
        tx.put(ROOT, "household_id", id.to_string())?;
        for key in ROOT_MAPS {
            tx.put_object(ROOT, key, ObjType::Map)?;
        }
        edit::write(&mut tx, id, editor, edits)?;
        let (hash, _) = tx.commit_with(edit::commit_options(editor, CREATE_ACTION));
        let hash = hash.ok_or_else(|| ModelError::Layout { household: id, detail: "empty create".into() })?;
        let household = Household { id, doc };
        let saved = household.saved(hash)?;
        Ok((household, saved))
    }

    /// Create a household whose first change only sets household answers and adds members (a
    /// roster import's new household), building the whole document in one batch: the same
    /// document as [`Household::create`] with those edits, several times faster, which is what
    /// a kabupaten's import of tens of thousands of households spends its time on.
    pub fn create_batched(
        id: HouseholdId,
        form_key: &str,
        editor: &Editor,
        answers: &BTreeMap<String, FieldValue>,
        members: &[(MemberId, BTreeMap<String, FieldValue>)],
    ) -> Result<(Household, Saved), ModelError> {
        let scalar = |v: &FieldValue| hydrate::Value::Scalar(edit::scalar(v));
        let mut root: HashMap<String, hydrate::Value> = HashMap::new();
        root.insert("schema".into(), hydrate::Value::Scalar(SCHEMA_VERSION.into()));
        root.insert("form".into(), hydrate::Value::Scalar(form_key.into()));
        root.insert("household_id".into(), hydrate::Value::Scalar(id.to_string().into()));
        for key in ROOT_MAPS {
            root.insert(key.into(), hydrate::Value::map());
        }
        let answers: HashMap<String, hydrate::Value> = answers.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
        root.insert("answers".into(), hydrate::Map::from(answers).into());
        let members: HashMap<String, hydrate::Value> = members
            .iter()
            .map(|(member, answers)| {
                let answers: HashMap<String, hydrate::Value> = answers
                    .iter()
                    .filter(|(k, _)| !MEMBER_REMOVAL_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), scalar(v)))
                    .collect();
                (member.to_string(), hydrate::Map::from(answers).into())
            })
            .collect();
        root.insert("members".into(), hydrate::Map::from(members).into());
        let mut doc = Automerge::new().with_actor(editor.device.actor());
        let mut tx = doc.transaction();
        tx.init_root_from_hydrate(&hydrate::Map::from(root))?;
        let (hash, _) = tx.commit_with(edit::commit_options(editor, CREATE_ACTION));
        let hash = hash.ok_or_else(|| ModelError::Layout { household: id, detail: "empty create".into() })?;
        let household = Household { id, doc };
        let saved = household.saved(hash)?;
        Ok((household, saved))
    }

    /// Load a stored document; `device` becomes the actor of any edits made through it.
    pub fn load(id: HouseholdId, bytes: &[u8], device: DeviceId) -> Result<Household, ModelError> {
        let doc =
            Automerge::load(bytes).map_err(|source| ModelError::Load { household: id, source: Box::new(source) })?;
        let household = Household { id, doc: doc.with_actor(device.actor()) };
        household.check_layout()?;
        Ok(household)
    }

    /// Load a stored document followed by changes received after it was stored (the device
    /// store's log), checked like every change from elsewhere. An empty document is a household
    /// that came as changes alone.
    pub fn load_with_log(
        id: HouseholdId,
        bytes: &[u8],
        log: &[Vec<u8>],
        device: DeviceId,
    ) -> Result<Household, ModelError> {
        if log.is_empty() {
            return Household::load(id, bytes, device);
        }
        let doc =
            Automerge::load(bytes).map_err(|source| ModelError::Load { household: id, source: Box::new(source) })?;
        let mut household = Household { id, doc: doc.with_actor(device.actor()) };
        household.apply_changes(log)?;
        household.check_layout()?;
        Ok(household)
    }

    /// Build a household from changes alone (a household first seen through a merge or sync).
    pub fn from_changes(id: HouseholdId, changes: &[Vec<u8>], device: DeviceId) -> Result<Household, ModelError> {
        let mut household = Household { id, doc: Automerge::new().with_actor(device.actor()) };
        household.apply_changes(changes)?;
        household.check_layout()?;
        Ok(household)
    }

    /// Build a household from changes known to be well-formed: a snapshot pack's, rebuilt from
    /// its rows and checked against the server's heads (the same trust as a pack's document,
    /// which is loaded as it is). Changes from anywhere else go through [`Household::from_changes`].
    pub fn from_trusted_changes(
        id: HouseholdId,
        changes: Vec<Change>,
        device: DeviceId,
    ) -> Result<Household, ModelError> {
        let mut doc = Automerge::new().with_actor(device.actor());
        doc.apply_changes(changes)?;
        let household = Household { id, doc };
        household.check_layout()?;
        Ok(household)
    }

    /// An empty document to apply a new household's first changes to (the server's view of a
    /// household it has not seen yet); check [`Household::check_layout`] after applying.
    pub fn empty(id: HouseholdId, device: DeviceId) -> Household {
        Household { id, doc: Automerge::new().with_actor(device.actor()) }
    }

    /// Whether the document has the Pilar layout (the top-level maps).
    pub fn check_layout(&self) -> Result<(), ModelError> {
        read::root_objects(&self.doc).map(|_| ()).map_err(|detail| ModelError::Layout { household: self.id, detail })
    }

    fn saved(&self, hash: ChangeHash) -> Result<Saved, ModelError> {
        let mut change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| ModelError::Layout { household: self.id, detail: "committed change vanished".into() })?;
        Ok(Saved { hash, bytes: change.bytes().into_owned() })
    }

    /// The household's id.
    pub fn id(&self) -> HouseholdId {
        self.id
    }

    /// The full document, compacted, for storage or a snapshot pack.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The full document without Automerge's DEFLATE of large columns: a snapshot pack page
    /// compresses many of these as one zstd stream, which finds what DEFLATE hides.
    pub fn save_nocompress(&self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    /// The document's current values without its history ([`Registers`]), for the device store
    /// to keep beside it.
    pub fn registers(&self) -> Result<Registers, Unsupported> {
        Registers::of_document(&self.doc)
    }

    /// The document's current heads: the version a review approves, and what a peer compares.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The form (`id@version`) this household's answers are read with: the version it was created
    /// with, or the newest a later save used. Two devices that moved it to different versions at
    /// once leave both values; the highest version counts, so every peer reads the same.
    pub fn form_key(&self) -> String {
        let values = self.doc.get_all(ROOT, "form").unwrap_or_default();
        read::form_key_of(values.into_iter().filter_map(|(v, _)| read::to_field_value(&v).map(|v| v.to_string())))
    }

    /// Everything a screen shows: current answers, members, visits, review, links.
    pub fn state(&self) -> HouseholdState {
        read::state(&self.doc, self.id)
    }

    /// Apply one save action as one commit. `check` sees the state the save would produce and may
    /// refuse it, in which case nothing changes. The saved change is `None` when nothing changed.
    pub fn apply<T, E>(
        &mut self,
        editor: &Editor,
        action: &str,
        edits: &Edits,
        check: impl FnOnce(&HouseholdState) -> Result<T, E>,
    ) -> Result<Result<(T, Option<Saved>), E>, ModelError> {
        self.doc.set_actor(editor.device.actor());
        let mut tx = self.doc.transaction();
        edit::write(&mut tx, self.id, editor, edits)?;
        let after = read::state(&tx, self.id);
        let verdict = match check(&after) {
            Ok(v) => v,
            Err(e) => {
                tx.rollback();
                return Ok(Err(e));
            }
        };
        if tx.pending_ops() == 0 {
            tx.rollback();
            return Ok(Ok((verdict, None)));
        }
        let (hash, _) = tx.commit_with(edit::commit_options(editor, action));
        match hash {
            Some(h) => Ok(Ok((verdict, Some(self.saved(h)?)))),
            None => Ok(Ok((verdict, None))),
        }
    }

    /// The review status as it stands now. An approval or a return covers the document at the
    /// heads it recorded (`review.approved_heads`); any later change other than review writes
    /// (a fix, a new visit, a colleague's edit) makes it stale and puts the household back in the
    /// queue (`AwaitingReview`). A household never reviewed awaits review once it has a visit.
    pub fn review_status(&self, state: &HouseholdState) -> Option<ReviewStatus> {
        let queued = if state.visits.is_empty() { None } else { Some(ReviewStatus::AwaitingReview) };
        let Some(status) = state.review.status else { return queued };
        if status == ReviewStatus::AwaitingReview {
            return Some(status);
        }
        let heads: Option<Vec<ChangeHash>> =
            state.review.approved_heads.iter().map(|h| h.parse::<ChangeHash>().ok()).collect();
        let Some(heads) = heads.filter(|h| !h.is_empty() && h.iter().all(|h| self.has_change(h))) else {
            return Some(ReviewStatus::AwaitingReview);
        };
        let since: Vec<Change> = self.doc.get_changes(&heads);
        let only_review = self.written_ops(&since).iter().all(|op| op.place == Place::Review);
        if only_review { Some(status) } else { Some(ReviewStatus::AwaitingReview) }
    }

    /// The changes this document has that a peer at `their_heads` lacks.
    ///
    /// Heads the document does not know are ignored, so the answer may include a few changes the
    /// peer already has; applying them again is harmless.
    pub fn changes_since(&self, their_heads: &[ChangeHash]) -> Vec<Vec<u8>> {
        let known: Vec<ChangeHash> =
            their_heads.iter().copied().filter(|h| self.doc.get_change_by_hash(h).is_some()).collect();
        self.doc.get_changes(&known).into_iter().map(|mut c| c.bytes().into_owned()).collect()
    }

    /// The bytes of the change with `hash`, if this document holds it (the server's feed keeps
    /// only a change's place and takes its bytes from the document, which holds every change).
    pub fn change_bytes(&self, hash: &ChangeHash) -> Option<Vec<u8>> {
        self.doc.get_change_by_hash(hash).map(|mut c| c.bytes().into_owned())
    }

    /// Whether this document already contains the change with `hash`.
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// Apply changes from elsewhere, all at once. Duplicates are ignored. If any change depends on
    /// history this document lacks, nothing is applied and the caller must send the full document.
    /// Returns how many changes were new.
    pub fn apply_changes(&mut self, changes: &[Vec<u8>]) -> Result<usize, ModelError> {
        let mut decoded = Vec::with_capacity(changes.len());
        let mut seen = std::collections::HashSet::new();
        for bytes in changes {
            let change = Change::from_bytes(bytes.clone()).map_err(|e| ModelError::BadChange(e.to_string()))?;
            if self.doc.get_change_by_hash(&change.hash()).is_none() && seen.insert(change.hash()) {
                decoded.push(change);
            }
        }
        if decoded.is_empty() {
            return Ok(0);
        }
        let incoming: std::collections::HashSet<ChangeHash> = decoded.iter().map(|c| c.hash()).collect();
        let missing = decoded
            .iter()
            .flat_map(|c| c.deps().to_vec())
            .filter(|d| !incoming.contains(d) && self.doc.get_change_by_hash(d).is_none())
            .count();
        if missing > 0 {
            return Err(ModelError::MissingDependencies { missing });
        }
        let count = decoded.len();
        // Checked first, then one at a time in a checked order: nothing is applied unless all can be.
        for change in untrusted::application_order(&self.doc, decoded, &incoming)? {
            self.doc.apply_changes(std::iter::once(change))?;
        }
        Ok(count)
    }

    /// Every value a field holds right now: one when settled, several after concurrent writes
    /// (the one shown today first), which conflict when they differ ([`values_disagree`]). Each
    /// comes with the user, device and time that wrote it.
    pub fn field_values(&self, path: &FieldPath) -> Result<Vec<Attributed>, ModelError> {
        attribution::field_values(&self.doc, path)
    }

    /// Every field whose concurrent values differ ([`values_disagree`]): the one place conflicts
    /// are computed, so the device's lists, `pilar show`, the server's facts, its inbox and the
    /// approval check agree. Equal concurrent values are no conflict.
    pub fn conflicts(&self) -> Vec<(FieldPath, Vec<Attributed>)> {
        attribution::conflicts(&self.doc)
    }

    /// The history of one field: each change that set or cleared it, oldest first.
    pub fn field_history(&self, path: &FieldPath) -> Result<Vec<FieldChange>, ModelError> {
        attribution::history(&self.doc, path)
    }

    /// Who wrote the change with this hash, from which device, when.
    pub fn writer_of_change(&self, hash: &ChangeHash) -> Option<Writer> {
        attribution::writer_of_change(&self.doc, hash)
    }
}
