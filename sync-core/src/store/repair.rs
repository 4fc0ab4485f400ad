//! Healing the device store: households whose stored copy cannot take what the server sends (a
//! change whose history is missing, a damaged document) are listed in `repairs` and restored from
//! the server's whole document merged with this device's own work; a store check finds damage
//! before a sync trips on it.

use super::{DeviceStore, StoreError, StoreTx};
use crate::model::{Household, HouseholdId, ModelError, Replayed, Saved, rfc3339_seconds};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

/// A household waiting to be restored from the server's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// The household.
    pub household: HouseholdId,
    /// The village it is filed under.
    pub village: String,
    /// Why its stored copy could not be used (no personal data: an error kind and counts).
    pub reason: String,
    /// When the problem was found (RFC 3339).
    pub since: String,
}

/// What a look through the whole store found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreCheck {
    /// Lines of SQLite's `PRAGMA integrity_check` other than `ok`.
    pub integrity: Vec<String>,
    /// Households whose document cannot be loaded, with the reason.
    pub damaged: Vec<(HouseholdId, String)>,
    /// Households whose document lacks some of this device's own unsent changes (how many).
    pub missing_own_changes: Vec<(HouseholdId, usize)>,
    /// Households whose document was restored from the device's own work, or marked for repair.
    pub mended: usize,
}

impl StoreCheck {
    /// Whether nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.integrity.is_empty() && self.damaged.is_empty() && self.missing_own_changes.is_empty()
    }
}

/// Apply as many of `changes` as their history allows, in rounds, so one change with a missing
/// dependency does not keep the others out. Returns those that could not be applied, in order.
pub(crate) fn apply_what_fits(household: &mut Household, changes: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if changes.is_empty() || household.apply_changes(&changes).is_ok() {
        return Vec::new();
    }
    let mut left = changes;
    loop {
        let before = left.len();
        left.retain(|change| household.apply_changes(std::slice::from_ref(change)).is_err());
        if left.is_empty() || left.len() == before {
            return left;
        }
    }
}

impl StoreTx<'_> {
    /// List a household for repair: the next sync asks the server for its whole document.
    pub fn mark_repair(
        &self,
        id: HouseholdId,
        village: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO repairs (household_id, village, reason, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (household_id) DO UPDATE SET reason = excluded.reason",
            params![id.to_string(), village, reason, rfc3339_seconds(now)],
        )?;
        Ok(())
    }

    /// Forget a repair (done, or the server no longer has the household for this device).
    pub fn clear_repair(&self, id: HouseholdId) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM repairs WHERE household_id = ?1", params![id.to_string()])?;
        Ok(())
    }

    /// Put `again` (a replayed change) in the outbox in place of the change `old`, keeping its
    /// action and time; with `None` (nothing left to write) the old row just goes.
    fn replace_outbox_change(&self, old: &[u8], again: Option<&Saved>) -> Result<(), StoreError> {
        let conn = self.conn();
        match again {
            Some(saved) => conn.execute(
                "UPDATE outbox SET hash = ?2, change = ?3, rejected_reason = NULL, batch = NULL WHERE change = ?1",
                params![old, saved.hash.to_string(), saved.bytes],
            )?,
            None => conn.execute("DELETE FROM outbox WHERE change = ?1", params![old])?,
        };
        Ok(())
    }

    /// Rebuild a household the server has never received from this device's own changes (its
    /// whole history, since none of it was acknowledged). Returns whether a usable document came
    /// out of them; if not, the stored copy is left as it is.
    pub fn rebuild_from_own_changes(
        &self,
        id: HouseholdId,
        village: &str,
        own: Vec<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut household = Household::empty(id, self.identity().device);
        apply_what_fits(&mut household, own);
        if household.check_layout().is_err() {
            return Ok(false);
        }
        self.save_received(&household, village, now)?;
        self.clear_repair(id)?;
        Ok(true)
    }

    /// Store the server's whole document of a household merged with everything this device has of
    /// it: the stored copy's changes (when it still loads) and the unsent outbox changes. Used for
    /// pack pages and repairs alike; nothing the device holds is dropped. Returns the number of own
    /// changes that still could not be applied (their history is nowhere).
    pub fn merge_document(
        &self,
        id: HouseholdId,
        village: &str,
        document: &[u8],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let household = Household::load(id, document, self.identity().device)?;
        self.merge_household(household, village, now)
    }

    /// [`StoreTx::merge_document`] for a household the server sent as changes (a compact pack
    /// page's, already checked against the server's heads).
    pub fn merge_changes(
        &self,
        id: HouseholdId,
        village: &str,
        changes: Vec<automerge::Change>,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let household = Household::from_trusted_changes(id, changes, self.identity().device)?;
        self.merge_household(household, village, now)
    }

    /// Store the server's copy of a household merged with the stored copy's changes and the
    /// unsent outbox changes.
    fn merge_household(
        &self,
        mut household: Household,
        village: &str,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let id = household.id();
        let stored_village = self.village_of(id)?;
        if stored_village.is_some()
            && let Ok(local) = self.load(id)
        {
            let extra = local.household.changes_since(&household.heads());
            apply_what_fits(&mut household, extra);
        }
        let orphans = apply_what_fits(&mut household, self.outbox_changes(id)?);
        // Own changes that fit no history (the copy here had lost some of this device's changes,
        // so later ones reused their sequence numbers): made again on the merged document, and
        // their outbox rows replaced, so the work still reaches the server.
        let mut replayed = Replayed::default();
        let mut lost = 0;
        for bytes in orphans {
            match household.replay(&bytes, &mut replayed) {
                Ok(again) => self.replace_outbox_change(&bytes, again.as_ref())?,
                Err(_) => lost += 1,
            }
        }
        // The server's village wins for a household it files; a repair keeps the device's.
        let village = stored_village.as_deref().unwrap_or(village);
        self.save_received(&household, village, now)?;
        self.clear_repair(id)?;
        Ok(lost)
    }
}

impl DeviceStore {
    /// Households waiting for a repair, oldest first.
    pub fn repairs(&self) -> Result<Vec<Repair>, StoreError> {
        let mut stmt =
            self.conn().prepare("SELECT household_id, village, reason, since FROM repairs ORDER BY since")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, village, reason, since) = row?;
            let household = id.parse().map_err(|_| StoreError::Corrupt(format!("bad household id {id:?}")))?;
            out.push(Repair { household, village, reason, since });
        }
        Ok(out)
    }

    /// Look through the whole store: SQLite's integrity check, every document loads, every unsent
    /// change is in its document. With `mend`, in one write transaction: a document missing own
    /// changes gets them back, a damaged one is listed for repair from the server, and every
    /// household's search columns are derived again.
    pub fn check(&mut self, mend: bool, now: OffsetDateTime) -> Result<StoreCheck, StoreError> {
        let mut check = StoreCheck::default();
        {
            let mut stmt = self.conn().prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for row in rows {
                let line = row?;
                if line != "ok" {
                    check.integrity.push(line);
                }
            }
        }
        let tx = self.write()?;
        let ids: Vec<(String, String)> = {
            let mut stmt = tx.conn().prepare("SELECT id, village FROM households ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, village) in ids {
            let id: HouseholdId = id.parse().map_err(|_| StoreError::Corrupt(format!("bad household id {id:?}")))?;
            match tx.load(id) {
                Err(StoreError::Model(e)) => {
                    let reason = damage_reason(&e);
                    check.damaged.push((id, reason.clone()));
                    if mend {
                        tx.mark_repair(id, &village, &reason, now)?;
                        check.mended += 1;
                    }
                }
                Err(e) => return Err(e),
                Ok(stored) => {
                    let mut household = stored.household;
                    let own = tx.outbox_changes(id)?;
                    let missing = own
                        .iter()
                        .filter(|bytes| {
                            automerge::Change::from_bytes((*bytes).clone())
                                .map(|c| !household.has_change(&c.hash()))
                                .unwrap_or(false)
                        })
                        .count();
                    if missing > 0 {
                        check.missing_own_changes.push((id, missing));
                    }
                    if mend {
                        if missing > 0 {
                            // Changes that do not fit wait for the server's copy (a repair).
                            if !apply_what_fits(&mut household, own).is_empty() {
                                tx.mark_repair(id, &stored.village, "own changes do not fit the stored copy", now)?;
                            }
                            check.mended += 1;
                        }
                        tx.save_received(&household, &stored.village, now)?;
                    }
                }
            }
        }
        if mend {
            tx.commit()?;
        }
        Ok(check)
    }

    /// Whether a household is waiting for a repair.
    pub fn awaits_repair(&self, id: HouseholdId) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM repairs WHERE household_id = ?1", params![id.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

/// A reason for the repair list that names the kind of damage, never document content.
pub(crate) fn damage_reason(e: &ModelError) -> String {
    match e {
        ModelError::MissingDependencies { missing } => {
            format!("received changes depend on {missing} change(s) this device does not have")
        }
        ModelError::Load { .. } => "the stored document cannot be read".into(),
        ModelError::Layout { .. } => "the stored document is not a Pilar household".into(),
        ModelError::BadChange(_) => "a received change is corrupt".into(),
        other => format!("the document cannot take the received changes ({})", kind_of(other)),
    }
}

fn kind_of(e: &ModelError) -> &'static str {
    match e {
        ModelError::Automerge(_) => "automerge refused them",
        _ => "model error",
    }
}
