//! Moving changes between stores: what one store has that another lacks, and applying it.
//!
//! This is the core the sync server builds on; between two device stores it also serves as a
//! direct merge (`pilar debug merge`). Changes travel per household, each batch applied at once.

use crate::model::{Household, HouseholdId};
use crate::store::{DeviceStore, StoreError};
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
pub struct MergeReport {
    /// Changes that were new to the receiving store.
    pub changes_applied: usize,
    /// Households that changed (new ones included).
    pub households_changed: usize,
    /// Households the receiving store did not have before.
    pub households_new: usize,
    /// Fields that hold conflicting values after the merge and did not before.
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
    ) -> Result<MergeReport, StoreError> {
        let mut report = MergeReport::default();
        let mut changed: Vec<(Household, String)> = Vec::new();
        for incoming in batch {
            let (household, village, applied, before) = if self.contains(incoming.household)? {
                let mut stored = self.load(incoming.household)?;
                let before = stored.household.conflicts().len();
                let applied = stored.household.apply_changes(&incoming.changes)?;
                (stored.household, stored.village, applied, before)
            } else {
                let household = Household::from_changes(incoming.household, &incoming.changes, self.identity().device)?;
                report.households_new += 1;
                (household, incoming.village.clone(), incoming.changes.len(), 0)
            };
            if applied == 0 {
                continue;
            }
            report.changes_applied += applied;
            report.households_changed += 1;
            report.new_conflicts += household.conflicts().len().saturating_sub(before);
            changed.push((household, village));
        }
        let refs: Vec<(&Household, &str)> = changed.iter().map(|(h, v)| (h, v.as_str())).collect();
        self.save_received(&refs, now)?;
        Ok(report)
    }
}

/// Bring `into` up to date with everything `from` has (one direction).
pub fn merge_stores(
    from: &DeviceStore,
    into: &mut DeviceStore,
    now: OffsetDateTime,
) -> Result<MergeReport, StoreError> {
    let theirs = into.heads_by_household()?;
    let batch = from.changes_missing_from(&theirs)?;
    into.apply_incoming(&batch, now)
}
