//! Storing and loading household documents, their search columns and the outbox.

use super::{DeviceStore, StoreError, StoreTx};
use crate::model::rfc3339_seconds as rfc3339;
use crate::model::{DeviceId, Household, HouseholdId, HouseholdState, Registers, Saved};
use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

/// A loaded household with the village it is filed under on this device.
#[derive(Debug)]
pub struct StoredHousehold {
    /// The document.
    pub household: Household,
    /// The village (scope) the household belongs to.
    pub village: String,
}

/// One local change waiting for a server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// Order of creation.
    pub seq: i64,
    /// The household the change belongs to.
    pub household: String,
    /// The change hash.
    pub hash: String,
    /// The save action that made it (`create`, `visit`, `member-add`...).
    pub action: String,
    /// When it was saved (RFC 3339).
    pub created_at: String,
    /// Size of the encoded change in bytes.
    pub bytes: usize,
    /// Set when a server refused the change, with its reason; the change is kept, not dropped.
    pub rejected_reason: Option<String>,
}

/// The key names are searched by: lowercase letters and digits, one space between words, with
/// apostrophes, dots and dashes dropped (so `Wette'E`, `Wette’e` and `WETTE E` all match).
pub fn name_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split(|c: char| c.is_whitespace() || c == '-' || c == '.' || c == ',') {
        let w: String = word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
        if !w.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&w);
        }
    }
    out
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The search columns of a household, derived from its current values.
pub(super) struct Columns {
    rt: Option<String>,
    head_name: Option<String>,
    name_key: Option<String>,
    kk_number: Option<String>,
    last_outcome: Option<i64>,
    last_visit_at: Option<String>,
    visit_count: i64,
    member_count: i64,
    review_status: Option<&'static str>,
    conflict_count: i64,
    heads: String,
}

impl Columns {
    pub(super) fn of(state: &HouseholdState, conflicts: usize, heads: &[ChangeHash]) -> Columns {
        let last = state.last_visit();
        let head_name = state.answer_text("head_name");
        Columns {
            rt: state.answer_text("rt"),
            name_key: head_name.as_deref().map(name_key),
            head_name,
            kk_number: state.answer_text("kk_number").map(|k| digits(&k)),
            last_outcome: last.and_then(|v| v.outcome),
            last_visit_at: last.map(|v| v.at.clone()),
            visit_count: state.visits.len() as i64,
            member_count: state.current_members().count() as i64,
            review_status: state.review.status.map(|s| s.as_str()),
            conflict_count: conflicts as i64,
            heads: heads.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
        }
    }
}

/// The people rows of a household: (member id, name key, NIK digits) of every current member.
pub(super) fn people_of(state: &HouseholdState) -> Vec<(String, Option<String>, Option<String>)> {
    state
        .current_members()
        .map(|m| (m.id.to_string(), m.name().map(name_key), m.answers.get("nik").map(|v| digits(&v.to_string()))))
        .collect()
}

pub(super) fn write_people(
    tx: &Connection,
    id: &str,
    people: &[(String, Option<String>, Option<String>)],
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM people WHERE household_id = ?1")?.execute(params![id])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO people (household_id, member_id, name_key, nik) VALUES (?1, ?2, ?3, ?4)")?;
    for (member, name, nik) in people {
        insert.execute(params![id, member, name, nik])?;
    }
    Ok(())
}

/// Write a household's row: search columns, document, registers (its people rows are
/// [`write_people`]).
pub(super) fn write_row(
    tx: &Connection,
    id: &str,
    village: &str,
    columns: &Columns,
    doc: &[u8],
    registers: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let c = columns;
    tx.prepare_cached(
        "INSERT INTO households (id, village, rt, head_name, name_key, kk_number, last_outcome, last_visit_at,
             visit_count, member_count, review_status, conflict_count, doc, heads, updated_at, registers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET village = excluded.village, rt = excluded.rt,
             head_name = excluded.head_name, name_key = excluded.name_key, kk_number = excluded.kk_number,
             last_outcome = excluded.last_outcome, last_visit_at = excluded.last_visit_at,
             visit_count = excluded.visit_count, member_count = excluded.member_count,
             review_status = excluded.review_status, conflict_count = excluded.conflict_count,
             doc = excluded.doc, heads = excluded.heads, updated_at = excluded.updated_at,
             registers = excluded.registers",
    )?
    .execute(params![
        id,
        village,
        c.rt,
        c.head_name,
        c.name_key,
        c.kk_number,
        c.last_outcome,
        c.last_visit_at,
        c.visit_count,
        c.member_count,
        c.review_status,
        c.conflict_count,
        doc,
        c.heads,
        rfc3339(now),
        registers,
    ])?;
    Ok(())
}

/// Update a household's search columns and registers, leaving its document as it is (changes
/// received after it are in its log).
pub(super) fn update_row(
    tx: &Connection,
    id: &str,
    village: &str,
    columns: &Columns,
    registers: &[u8],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let c = columns;
    tx.prepare_cached(
        "UPDATE households SET village = ?2, rt = ?3, head_name = ?4, name_key = ?5, kk_number = ?6,
             last_outcome = ?7, last_visit_at = ?8, visit_count = ?9, member_count = ?10, review_status = ?11,
             conflict_count = ?12, heads = ?13, updated_at = ?14, registers = ?15
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        village,
        c.rt,
        c.head_name,
        c.name_key,
        c.kk_number,
        c.last_outcome,
        c.last_visit_at,
        c.visit_count,
        c.member_count,
        c.review_status,
        c.conflict_count,
        c.heads,
        rfc3339(now),
        registers,
    ])?;
    Ok(())
}

/// Registers as stored: [`Registers::to_bytes`]. (zstd level 1 saved a third of their bytes and
/// cost a third of a received change's time: a compression context per household.)
pub(super) fn encode_registers(registers: &Registers) -> Vec<u8> {
    registers.to_bytes()
}

/// Stored registers, or `None` when they do not read (the slow way stores them again). Registers
/// stored by earlier versions are CBOR, and read as such.
pub(super) fn decode_registers(blob: &[u8]) -> Option<Registers> {
    match Registers::from_bytes(blob) {
        Some(registers) => Some(registers),
        None => ciborium::from_reader(blob).ok(),
    }
}

/// Write the household row and its people rows from the whole document (search columns and
/// registers derived here), and empty its log: the document now holds every change.
///
/// The document is stored without Automerge's DEFLATE of large columns: setting up a DEFLATE
/// stream per column made `save()` about five times the cost of `save_nocompress()` and loading
/// slower too, for a document of a few KB that SQLite stores either way (the store grows by about
/// a quarter). Documents stored compressed by earlier versions load as they are.
pub(super) fn upsert(
    tx: &Connection,
    household: &Household,
    state: &HouseholdState,
    village: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let id = household.id().to_string();
    let columns = Columns::of(state, household.conflicts().len(), &household.heads());
    // A document the registers cannot follow is stored without them: its received changes take the slow way.
    let registers = household.registers().ok().map(|r| encode_registers(&r));
    write_row(tx, &id, village, &columns, &household.save_nocompress(), registers.as_deref(), now)?;
    write_people(tx, &id, &people_of(state))?;
    tx.prepare_cached("DELETE FROM household_log WHERE household_id = ?1")?.execute(params![id])?;
    Ok(())
}

/// Changes received after a household's stored document, in order.
fn log_of(conn: &Connection, id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT change FROM household_log WHERE household_id = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map(params![id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Load one household through `conn`: its document, then its logged changes (checked as every
/// change from elsewhere is); `device` becomes the actor of edits made to it.
fn load_from(conn: &Connection, id: HouseholdId, device: DeviceId) -> Result<StoredHousehold, StoreError> {
    let key = id.to_string();
    let (doc, village) = conn
        .prepare_cached("SELECT doc, village FROM households WHERE id = ?1")?
        .query_row(params![key], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)))
        .optional()?
        .ok_or_else(|| StoreError::NoSuchHousehold(key.clone()))?;
    Ok(StoredHousehold { household: Household::load_with_log(id, &doc, &log_of(conn, &key)?, device)?, village })
}

fn contains_in(conn: &Connection, id: HouseholdId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM households WHERE id = ?1")?
        .query_row(params![id.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

impl StoreTx<'_> {
    /// Load one household as it stands inside this transaction (nobody else can change it until
    /// the transaction ends).
    pub fn load(&self, id: HouseholdId) -> Result<StoredHousehold, StoreError> {
        load_from(self.conn(), id, self.identity.device)
    }

    /// Load one household to change it, or, when its stored copy is damaged, list it for repair
    /// (the next sync restores it from the server) and answer `None`: the caller commits that and
    /// tells the user the household awaits its repair.
    pub fn load_or_list_for_repair(
        &self,
        id: HouseholdId,
        now: OffsetDateTime,
    ) -> Result<Option<StoredHousehold>, StoreError> {
        match self.load(id) {
            Ok(stored) => Ok(Some(stored)),
            Err(StoreError::Model(e)) => {
                let village = self.village_of(id)?.unwrap_or_default();
                self.mark_repair(id, &village, &super::damage_reason(&e), now)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the store holds this household.
    pub fn contains(&self, id: HouseholdId) -> Result<bool, StoreError> {
        contains_in(self.conn(), id)
    }

    /// The village a household is filed under, if the store holds it (even when its document is
    /// damaged).
    pub fn village_of(&self, id: HouseholdId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT village FROM households WHERE id = ?1")?
            .query_row(params![id.to_string()], |r| r.get(0))
            .optional()?)
    }

    /// Store a household after a local save action and queue its change for the server.
    pub fn save_local(
        &self,
        household: &Household,
        village: &str,
        saved: &Saved,
        action: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        upsert(self.conn(), household, &household.state(), village, now)?;
        self.conn().execute(
            "INSERT INTO outbox (household_id, hash, change, action, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hash) DO NOTHING",
            params![household.id().to_string(), saved.hash.to_string(), saved.bytes, action, rfc3339(now)],
        )?;
        Ok(())
    }

    /// Store a household changed by changes from elsewhere (nothing is queued).
    pub fn save_received(&self, household: &Household, village: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        upsert(self.conn(), household, &household.state(), village, now)
    }

    /// This device's own unacknowledged changes to one household, oldest first.
    pub fn outbox_changes(&self, id: HouseholdId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn().prepare_cached("SELECT change FROM outbox WHERE household_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map(params![id.to_string()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl DeviceStore {
    /// Load one household (and only that one).
    pub fn load(&self, id: HouseholdId) -> Result<StoredHousehold, StoreError> {
        load_from(&self.conn, id, self.identity.device)
    }

    /// Whether the store holds this household.
    pub fn contains(&self, id: HouseholdId) -> Result<bool, StoreError> {
        contains_in(&self.conn, id)
    }

    /// The village a household is filed under, if the store holds it (even when its document is
    /// damaged).
    pub fn village_of(&self, id: HouseholdId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT village FROM households WHERE id = ?1")?
            .query_row(params![id.to_string()], |r| r.get(0))
            .optional()?)
    }

    /// Find the household whose id is `text` or starts with it (at least 4 characters).
    pub fn resolve_id(&self, text: &str) -> Result<HouseholdId, StoreError> {
        let prefix = text.trim().to_ascii_lowercase();
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::NoSuchHousehold(text.to_string()));
        }
        let mut stmt = self.conn.prepare("SELECT id FROM households WHERE id >= ?1 AND id < ?1 || 'g' LIMIT 2")?;
        let ids: Vec<String> = stmt.query_map(params![prefix], |r| r.get(0))?.collect::<Result<_, _>>()?;
        match ids.as_slice() {
            [one] => one.parse().map_err(|_| StoreError::Corrupt(format!("bad household id {one:?}"))),
            [] => Err(StoreError::NoSuchHousehold(text.to_string())),
            _ => {
                let count: i64 = self.conn.query_row(
                    "SELECT count(*) FROM households WHERE id >= ?1 AND id < ?1 || 'g'",
                    params![prefix],
                    |r| r.get(0),
                )?;
                Err(StoreError::AmbiguousId { prefix: text.to_string(), count: count as usize })
            }
        }
    }

    /// Every local change not yet acknowledged by a server, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, household_id, hash, action, created_at, length(change), rejected_reason FROM outbox ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OutboxEntry {
                seq: r.get(0)?,
                household: r.get(1)?,
                hash: r.get(2)?,
                action: r.get(3)?,
                created_at: r.get(4)?,
                bytes: r.get::<_, i64>(5)? as usize,
                rejected_reason: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many households of `village` the store holds (a first download's progress).
    pub fn households_in(&self, village: &str) -> Result<u64, StoreError> {
        let n: i64 =
            self.conn
                .query_row("SELECT count(*) FROM households WHERE village = ?1", params![village], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Ids and villages of every household in the store.
    pub fn household_villages(&self) -> Result<Vec<(HouseholdId, String)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, village FROM households ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, village) = row?;
            out.push((id.parse().map_err(|_| StoreError::Corrupt(format!("bad household id {id:?}")))?, village));
        }
        Ok(out)
    }
}
