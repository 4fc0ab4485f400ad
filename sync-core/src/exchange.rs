//! Moving changes between stores: what one store has that another lacks, and applying it.
//!
//! This is the core the sync server builds on; between two device stores it also serves as a
//! direct exchange (`pilar debug exchange`). Changes travel per household, each batch applied at once.

use crate::model::{Household, HouseholdId};
use crate::store::{DeviceStore, StoreError, StoreTx};
use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The heads a store holds for each household: what a peer needs to compute what to send.
pub type HeadsByHousehold = BTreeMap<HouseholdId, Vec<ChangeHash>>;

/// The changes of one household that a peer lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdChanges {
    /// The household.
    pub household: HouseholdId,
    /// The village it is filed under (its scope; lives outside the document).
    pub village: String,
    /// Encoded Automerge changes, in causal order.
    pub changes: Vec<Vec<u8>>,
}

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExchangeReport {
    /// Changes that were new to the receiving store.
    pub changes_applied: usize,
    /// Households that changed (new ones included).
    pub households_changed: usize,
    /// Households the receiving store did not have before.
    pub households_new: usize,
    /// Fields that hold conflicting values after the exchange and did not before.
    pub new_conflicts: usize,
}

impl DeviceStore {
    /// The current heads of every household in the store.
    pub fn heads_by_household(&self) -> Result<HeadsByHousehold, StoreError> {
        let mut stmt = self.conn().prepare("SELECT id, heads FROM households")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, heads) = row?;
            let id: HouseholdId = id.parse().map_err(|_| StoreError::Corrupt(format!("bad household id {id:?}")))?;
            let heads = heads
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| h.parse::<ChangeHash>().map_err(|_| StoreError::Corrupt(format!("bad head {h:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(id, heads);
        }
        Ok(out)
    }

    /// Every change this store has that a peer holding `theirs` lacks, household by household.
    /// Households whose heads match are skipped without loading their documents.
    pub fn changes_missing_from(&self, theirs: &HeadsByHousehold) -> Result<Vec<HouseholdChanges>, StoreError> {
        let ours = self.heads_by_household()?;
        let villages: BTreeMap<HouseholdId, String> = self.household_villages()?.into_iter().collect();
        let mut out = Vec::new();
        for (id, heads) in &ours {
            let their_heads = theirs.get(id).map(Vec::as_slice).unwrap_or(&[]);
            if heads.as_slice() == their_heads {
                continue;
            }
            let stored = self.load(*id)?;
            let changes = stored.household.changes_since(their_heads);
            if !changes.is_empty() {
                let village = villages.get(id).cloned().unwrap_or(stored.village);
                out.push(HouseholdChanges { household: *id, village, changes });
            }
        }
        Ok(out)
    }

    /// Apply changes from elsewhere, all in one transaction: either every household in the batch
    /// is stored, or none is.
    pub fn apply_incoming(
        &mut self,
        batch: &[HouseholdChanges],
        now: OffsetDateTime,
    ) -> Result<ExchangeReport, StoreError> {
        let mut report = ExchangeReport::default();
        let tx = self.write()?;
        for incoming in batch {
            // A household held here takes the changes into its log when it can (its village stays).
            if let Some(village) = tx.village_of(incoming.household)?
                && let Some(appended) = tx.append_received(incoming.household, &village, &incoming.changes, now)?
            {
                if appended.applied > 0 {
                    report.changes_applied += appended.applied;
                    report.households_changed += 1;
                    report.new_conflicts += appended.new_conflicts;
                }
                continue;
            }
            let Some(received) = tx.receive(incoming.household, &incoming.changes)? else { continue };
            report.households_new += usize::from(received.stored_village.is_none());
            report.changes_applied += received.applied;
            report.households_changed += 1;
            report.new_conflicts += received.new_conflicts;
            let village = received.stored_village.as_deref().unwrap_or(&incoming.village);
            tx.save_received(&received.household, village, now)?;
        }
        tx.commit()?;
        Ok(report)
    }
}

/// A household after changes from elsewhere were applied in memory (not yet stored).
pub(crate) struct Received {
    /// The document with the changes applied.
    pub household: Household,
    /// The village it is filed under on this device, or `None` when it is new here.
    pub stored_village: Option<String>,
    /// How many changes were new.
    pub applied: usize,
    /// Fields that became conflicting.
    pub new_conflicts: usize,
}

impl StoreTx<'_> {
    /// Apply changes of one household to its stored document (or start it from them), read inside
    /// this write transaction; `None` when every change was already here. Nothing is stored: the
    /// caller stores the result in the same transaction.
    pub(crate) fn receive(&self, id: HouseholdId, changes: &[Vec<u8>]) -> Result<Option<Received>, StoreError> {
        let (household, stored_village, applied, before) = if self.contains(id)? {
            let mut stored = self.load(id)?;
            let before = stored.household.conflicts().len();
            let applied = stored.household.apply_changes(changes)?;
            (stored.household, Some(stored.village), applied, before)
        } else {
            (Household::from_changes(id, changes, self.identity().device)?, None, changes.len(), 0)
        };
        if applied == 0 {
            return Ok(None);
        }
        let new_conflicts = household.conflicts().len().saturating_sub(before);
        Ok(Some(Received { household, stored_village, applied, new_conflicts }))
    }
}

/// Bring `into` up to date with everything `from` has (one direction).
pub fn pull_from_store(
    from: &DeviceStore,
    into: &mut DeviceStore,
    now: OffsetDateTime,
) -> Result<ExchangeReport, StoreError> {
    let theirs = into.heads_by_household()?;
    let batch = from.changes_missing_from(&theirs)?;
    into.apply_incoming(&batch, now)
}
