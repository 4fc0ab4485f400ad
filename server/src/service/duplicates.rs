//! Duplicate suspicions: households that share a keyed KK number, a member's NIK, or a normalised
//! head name in one village and RT (the keys are derived with the facts, [`super::facts`]), minus
//! pairs a supervisor dismissed. Folding a pair is [`super::fold`].

use super::Service;
use super::review::live_brief;
use super::scope::in_areas;
use crate::storage::{StorageError, Transactions};
use std::collections::{BTreeMap, HashMap};
use sync_core::model::HouseholdId;
use sync_core::protocol::{DuplicatePair, HouseholdBrief};
use time::OffsetDateTime;

/// Households sharing one duplicate key beyond which the key is not taken as evidence: a key
/// held by many (a very common name in one RT) says nothing about any one pair, and pairing n
/// households is n² work.
const MAX_SUSPECT_GROUP: u32 = 8;

/// Ids compare as the text the API shows (lowercase hyphenated), which is also their byte order,
/// the order of the UUID they hold.
fn ordered(a: HouseholdId, b: HouseholdId) -> (HouseholdId, HouseholdId) {
    if a < b { (a, b) } else { (b, a) }
}

impl Service {
    /// Households suspected to be the same family (at least one of each pair in the areas).
    pub fn duplicates(&self, areas: Option<&[String]>) -> Result<Vec<DuplicatePair>, StorageError> {
        self.refresh_derived()?;
        self.db.read(|tx| suspected(tx, areas))
    }

    /// Record that two suspected households are different families.
    pub fn dismiss(&self, a: HouseholdId, b: HouseholdId, user: &str, now: OffsetDateTime) -> Result<(), StorageError> {
        let (a, b) = ordered(a, b);
        self.db.write(|tx| tx.dismiss_pair(a, b, user, now))
    }
}

/// Pairs of households sharing a key held by a few, not dismissed, by (a, b) id, each with the
/// kinds of key they share (sorted). Whether both are still live is for the caller to check.
fn candidate_pairs(
    tx: &mut dyn crate::storage::ReadTx,
) -> Result<BTreeMap<(HouseholdId, HouseholdId), Vec<String>>, StorageError> {
    let dismissed = tx.dismissed_pairs()?;
    let mut grouped: BTreeMap<(HouseholdId, HouseholdId), Vec<String>> = BTreeMap::new();
    for group in tx.shared_keys(MAX_SUSPECT_GROUP)? {
        for (i, a) in group.households.iter().enumerate() {
            for b in &group.households[i + 1..] {
                let pair = ordered(*a, *b);
                if !dismissed.contains(&pair) {
                    grouped.entry(pair).or_default().push(group.kind.clone());
                }
            }
        }
    }
    for reasons in grouped.values_mut() {
        reasons.sort();
    }
    Ok(grouped)
}

/// The suspected pairs, by (a, b) id, each with the kinds of key they share.
pub(super) fn suspected(
    tx: &mut dyn crate::storage::ReadTx,
    areas: Option<&[String]>,
) -> Result<Vec<DuplicatePair>, StorageError> {
    let mut briefs: HashMap<HouseholdId, Option<(String, HouseholdBrief)>> = HashMap::new();
    let mut out = Vec::new();
    for ((a, b), reasons) in candidate_pairs(tx)? {
        for id in [a, b] {
            if let std::collections::hash_map::Entry::Vacant(slot) = briefs.entry(id) {
                slot.insert(live_brief(tx, id)?);
            }
        }
        let (Some(Some((va, ba))), Some(Some((vb, bb)))) = (briefs.get(&a), briefs.get(&b)) else { continue };
        if !in_areas(va, areas) && !in_areas(vb, areas) {
            continue;
        }
        out.push(DuplicatePair { a: ba.clone(), b: bb.clone(), reasons });
    }
    Ok(out)
}

/// The households of `areas` that [`suspected`] would list in a pair for those areas, with each
/// one's village and last visitor as the shared keys carry them (a pair counts when both are live
/// and one is in the areas), so no household is read one by one.
pub(super) fn suspected_in(
    tx: &mut dyn crate::storage::ReadTx,
    areas: Option<&[String]>,
) -> Result<BTreeMap<HouseholdId, (String, Option<String>)>, StorageError> {
    let dismissed = tx.dismissed_pairs()?;
    let mut out = BTreeMap::new();
    for group in tx.shared_keys(MAX_SUSPECT_GROUP)? {
        for (i, (a, fa)) in group.live.iter().enumerate() {
            for (b, fb) in group.live.iter().skip(i + 1) {
                if dismissed.contains(&ordered(*a, *b)) {
                    continue;
                }
                for (id, found) in [(a, fa), (b, fb)] {
                    if in_areas(&found.0, areas) {
                        out.insert(*id, found.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}
