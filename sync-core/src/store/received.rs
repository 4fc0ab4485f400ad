//! Storing what the server sends without loading documents: a household new to the device from a
//! compact pack page's changes, and received changes appended to a household's log. Both update
//! the registers kept beside the document and derive the search columns from them, in the same
//! write transaction. Loading a document (rebuilding and hashing every change it holds) was most
//! of the cost of a received change; it now happens when someone opens or edits the household,
//! and that write stores the document whole again (the log empties).
//!
//! Whatever these paths cannot follow, they leave untouched and say so (`Ok(None)` / `false`):
//! the caller takes the slow way, which loads the document, applies the changes with every check
//! and stores the household whole.

use super::households::{Columns, decode_registers, encode_registers, people_of, update_row, write_people, write_row};
use super::{StoreError, StoreTx};
use crate::model::{HouseholdId, ModelError, Registers};
use automerge::{Change, ChangeHash, ExpandedChange};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

/// Most changes a household's log holds: the change after them takes the slow way, which stores
/// the document whole and empties the log (loading a household applies its log, so a long one
/// would slow every later load).
pub const LOG_LIMIT: i64 = 32;

/// What storing received changes did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Changes that were new.
    pub applied: usize,
    /// Fields that became conflicting.
    pub new_conflicts: usize,
}

impl StoreTx<'_> {
    /// Store a household the device does not hold, and has no unsent work for, from its changes
    /// (a compact pack page's, checked against the server's heads): an empty document, the
    /// changes in its log, its registers and search columns. `expanded[i]` is `changes[i]`
    /// decoded (a pack page rebuilds changes from their operations, so it has them already).
    /// `false` (nothing stored) when the household is here already or its changes are not plain
    /// Pilar writes.
    pub fn store_new_from_changes(
        &self,
        id: HouseholdId,
        village: &str,
        changes: &[Change],
        expanded: &[ExpandedChange],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if changes.len() != expanded.len() {
            return Ok(false);
        }
        let key = id.to_string();
        let conn = self.conn();
        let held = conn.prepare_cached("SELECT 1 FROM households WHERE id = ?1")?.query_row(params![key], |_| Ok(()));
        let unsent = conn
            .prepare_cached("SELECT 1 FROM outbox WHERE household_id = ?1 LIMIT 1")?
            .query_row(params![key], |_| Ok(()));
        if held.optional()?.is_some() || unsent.optional()?.is_some() {
            return Ok(false);
        }
        let mut registers = Registers::new();
        for (change, ops) in changes.iter().zip(expanded) {
            if change.deps().iter().any(|d| !registers.has_change(d)) || registers.apply(change, ops).is_err() {
                return Ok(false);
            }
        }
        if !registers.has_layout() {
            return Ok(false);
        }
        let state = registers.state(id);
        let columns = Columns::of(&state, registers.conflict_count(), &registers.heads());
        write_row(conn, &key, village, &columns, &[], Some(&encode_registers(&registers)), now)?;
        write_people(conn, &key, &people_of(&state))?;
        let mut log = conn.prepare_cached("INSERT INTO household_log (household_id, change) VALUES (?1, ?2)")?;
        for change in changes {
            log.execute(params![key, change.raw_bytes()])?;
        }
        Ok(true)
    }

    /// Append changes received for a household the device holds to its log, and update its
    /// registers and search columns from them. `Ok(None)` (nothing stored) when the household is
    /// not here, has no registers, awaits a repair, has a full log, or the changes are not plain
    /// Pilar writes in causal order. A change that is not an Automerge change, or that depends on
    /// a change the household lacks, is the same error the slow way gives (the caller lists the
    /// household for repair).
    pub fn append_received(
        &self,
        id: HouseholdId,
        village: &str,
        changes: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError> {
        let key = id.to_string();
        let conn = self.conn();
        let row: Option<(Option<Vec<u8>>, i64)> = conn
            .prepare_cached(
                "SELECT h.registers, (SELECT count(*) FROM household_log l WHERE l.household_id = h.id)
                 FROM households h WHERE h.id = ?1 AND NOT EXISTS (SELECT 1 FROM repairs r WHERE r.household_id = h.id)",
            )?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((Some(blob), logged)) = row else { return Ok(None) };
        if logged + changes.len() as i64 > LOG_LIMIT {
            return Ok(None);
        }
        let Some(mut registers) = decode_registers(&blob) else { return Ok(None) };
        let before = registers.conflict_count();
        // The people rows before these changes, read just before the first change that may
        // touch a member (the changes before it leave them as they were); `None` while none has.
        let mut people_before = None;
        let mut new: Vec<&Vec<u8>> = Vec::with_capacity(changes.len());
        let mut seen: Vec<ChangeHash> = Vec::with_capacity(changes.len());
        for bytes in changes {
            let change = Change::from_bytes(bytes.clone()).map_err(|e| ModelError::BadChange(e.to_string()))?;
            let hash = change.hash();
            if registers.has_change(&hash) || seen.contains(&hash) {
                continue;
            }
            let missing = change.deps().iter().filter(|d| !registers.has_change(d)).count();
            if missing > 0 {
                // Not yet here: in this batch but later (not causal order: the slow way sorts
                // it), or nowhere (the slow way says so).
                return Ok(None);
            }
            let expanded = change.decode();
            if people_before.is_none() && registers.touches_members(&expanded) {
                people_before = Some(people_of(&registers.state(id)));
            }
            if registers.apply(&change, &expanded).is_err() {
                return Ok(None);
            }
            seen.push(hash);
            new.push(bytes);
        }
        if new.is_empty() {
            return Ok(Some(Appended { applied: 0, new_conflicts: 0 }));
        }
        let state = registers.state(id);
        let conflicts = registers.conflict_count();
        let columns = Columns::of(&state, conflicts, &registers.heads());
        update_row(conn, &key, village, &columns, &encode_registers(&registers), now)?;
        if let Some(people_before) = people_before {
            let people = people_of(&state);
            if people != people_before {
                write_people(conn, &key, &people)?;
            }
        }
        let mut log = conn.prepare_cached("INSERT INTO household_log (household_id, change) VALUES (?1, ?2)")?;
        for bytes in &new {
            log.execute(params![key, bytes])?;
        }
        Ok(Some(Appended { applied: new.len(), new_conflicts: conflicts.saturating_sub(before) }))
    }
}
