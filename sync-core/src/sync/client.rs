//! The device side of sync: build a request from the store, apply a response or a pack page in
//! one transaction. The caller moves the bytes and loops while there is more.

use super::pack::{CompactPackPage, Pack, PackError, Unpacked};
use super::wire::{DocumentsRequest, DocumentsResponse, PackPage, PushHousehold, SyncRequest, SyncResponse};
use crate::model::{CREATE_ACTION, HouseholdId, ModelError};
use crate::store::{DeviceStore, StoreError, SyncCommit};
use serde::Serialize;
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use uuid::Uuid;

/// Why a sync step failed on the device.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A received document or change could not be applied.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A compact pack page could not be read back into the server's households.
    #[error(transparent)]
    Pack(#[from] PackError),
}

/// What one response did on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncOutcome {
    /// Own changes the server acknowledged (dropped from the outbox).
    pub acknowledged: usize,
    /// Own changes the server refused (kept, marked with the reason).
    pub rejected: usize,
    /// Changes received from others.
    pub received: usize,
    /// Households changed by received changes.
    pub households_changed: usize,
    /// Fields that became conflicting.
    pub new_conflicts: usize,
    /// Households the server wants in full (their history).
    pub need_full: Vec<HouseholdId>,
    /// More changes wait on the server.
    pub has_more: bool,
    /// Villages newly in scope: download their packs.
    pub villages_added: Vec<String>,
    /// Villages no longer in scope: purge them once their work is uploaded.
    pub villages_removed: Vec<String>,
    /// Households whose stored copy could not take the received changes: listed for repair from
    /// the server's whole document (their changes are not lost: the repair brings them).
    pub repairs: usize,
}

/// What a pack page did on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackProgress {
    /// Households stored from this page.
    pub households: usize,
    /// The next page to ask for, or `None` when the village is complete.
    pub next_after: Option<HouseholdId>,
}

/// Build the next request: the batch's outbox rows (households in `full` sent with their whole
/// history), the cursors of villages that have finished their pack, and the batch id. The batch is
/// `fresh_batch` with every unrefused outbox row, unless an earlier request's response was lost:
/// then its id and exactly its rows go again, so the server replays its answer and the answer
/// acknowledges exactly what it names.
pub fn build_request(
    store: &mut DeviceStore,
    full: &[HouseholdId],
    fresh_batch: Uuid,
    max_changes: u32,
    now: OffsetDateTime,
) -> Result<SyncRequest, ClientError> {
    let batch = store.start_batch(fresh_batch)?;
    let mut push: Vec<PushHousehold> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let full_set: BTreeSet<String> = full.iter().map(|h| h.to_string()).collect();
    for crate::store::OutgoingChange { household, village, bytes, action, .. } in store.batch_changes(batch)? {
        if full_set.contains(&household) {
            continue;
        }
        let i = *index.entry(household.clone()).or_insert_with(|| {
            push.push(PushHousehold {
                household: household.parse().unwrap_or(HouseholdId(Uuid::nil())),
                village: None,
                changes: Vec::new(),
            });
            push.len() - 1
        });
        // The server needs the village only to file a household it has never seen.
        if action == CREATE_ACTION {
            push[i].village = Some(village);
        }
        push[i].changes.push(ByteBuf::from(bytes));
    }
    for id in full {
        let stored = match store.load(*id) {
            Ok(stored) => stored,
            // A damaged copy cannot give its history: restore it from the server first (its
            // unsent changes stay in the outbox and go in a later batch).
            Err(StoreError::Model(e)) => {
                let village = store.household_villages()?.into_iter().find(|(h, _)| h == id).map(|(_, v)| v);
                if let Some(village) = village {
                    let tx = store.write()?;
                    tx.mark_repair(*id, &village, &crate::store::damage_reason(&e), now)?;
                    tx.commit()?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let changes = stored.household.changes_since(&[]).into_iter().map(ByteBuf::from).collect();
        push.push(PushHousehold { household: *id, village: Some(stored.village), changes });
    }
    let villages: BTreeSet<String> = store.villages()?.into_iter().collect();
    let cursors = store.cursors()?.into_iter().filter(|(v, _)| villages.contains(v)).collect();
    Ok(SyncRequest { batch, cursors, push, max_changes })
}

/// Apply a response: acknowledgements, rejections, received changes, cursors and scope, all in one
/// transaction. Villages that left the scope are purged here when nothing of theirs is unsent.
pub fn apply_response(
    store: &mut DeviceStore,
    request: &SyncRequest,
    response: &SyncResponse,
    now: OffsetDateTime,
) -> Result<SyncOutcome, ClientError> {
    let mut outcome =
        SyncOutcome { need_full: response.need_full.clone(), has_more: response.has_more, ..SyncOutcome::default() };
    let rejected: Vec<(String, String)> =
        response.rejected.iter().map(|r| (r.household.to_string(), format!("{}: {}", r.code, r.reason))).collect();
    let refused: BTreeSet<HouseholdId> = response.rejected.iter().map(|r| r.household).collect();
    let resend: BTreeSet<HouseholdId> = response.need_full.iter().copied().collect();
    for push in &request.push {
        if refused.contains(&push.household) {
            outcome.rejected += push.changes.len();
        } else if !resend.contains(&push.household) {
            outcome.acknowledged += push.changes.len();
        }
    }
    let local: BTreeSet<String> = store.villages()?.into_iter().collect();
    let remote: BTreeSet<String> = response.villages.iter().cloned().collect();
    outcome.villages_added = remote.difference(&local).cloned().collect();
    outcome.villages_removed = local.difference(&remote).cloned().collect();
    // Villages that never finished a pack are skipped by the cursor list; keep them that way.
    let cursors = response
        .cursors
        .iter()
        .filter(|(v, _)| request.cursors.contains_key(*v))
        .map(|(v, c)| (v.clone(), *c))
        .collect();
    let commit = SyncCommit {
        batch: Some(request.batch),
        rejected,
        resend: resend.iter().map(|h| h.to_string()).collect(),
        cursors,
        villages: Some(response.villages.clone()),
        pack: None,
    };
    // One write transaction: each household is read, merged and stored under the write lock, so a
    // save in another process waits instead of being overwritten.
    let tx = store.write()?;
    for pull in &response.pull {
        let changes: Vec<Vec<u8>> = pull.changes.iter().map(|c| c.to_vec()).collect();
        // Into the household's log without loading its document when it can; else the slow way.
        let appended = match tx.append_received(pull.household, &pull.village, &changes, now) {
            Ok(appended) => appended,
            Err(StoreError::Model(e)) => {
                let village = tx.village_of(pull.household)?.unwrap_or_else(|| pull.village.clone());
                tx.mark_repair(pull.household, &village, &crate::store::damage_reason(&e), now)?;
                outcome.repairs += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(appended) = appended {
            if appended.applied > 0 {
                outcome.received += appended.applied;
                outcome.households_changed += 1;
                outcome.new_conflicts += appended.new_conflicts;
            }
            continue;
        }
        match tx.receive(pull.household, &changes) {
            Ok(None) => {}
            Ok(Some(received)) => {
                outcome.received += received.applied;
                outcome.households_changed += 1;
                outcome.new_conflicts += received.new_conflicts;
                // The server's village wins: it owns moves between villages.
                tx.save_received(&received.household, &pull.village, now)?;
            }
            // The stored copy cannot take them (missing history, a damaged document): the
            // household is restored from the server's whole document before the next request.
            Err(StoreError::Model(e)) => {
                let village = tx.village_of(pull.household)?.unwrap_or_else(|| pull.village.clone());
                tx.mark_repair(pull.household, &village, &crate::store::damage_reason(&e), now)?;
                outcome.repairs += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // A household refused as malformed (say, an own change reusing a sequence number the server
    // already holds, because this copy lost some of this device's changes) is restored from the
    // server's document, where its refused changes are made again.
    for rejection in response.rejected.iter().filter(|r| r.code == "malformed_change") {
        if let Some(village) = tx.village_of(rejection.household)? {
            tx.mark_repair(rejection.household, &village, "the server refused a change as malformed", now)?;
            outcome.repairs += 1;
        }
    }
    tx.record_sync(&commit)?;
    tx.commit()?;
    // Purge every village the device still holds households of but may no longer see (also ones
    // a re-login already dropped from the village list), once nothing of it is unsent.
    let held: BTreeSet<String> = store.household_villages()?.into_iter().map(|(_, v)| v).collect();
    for village in held.difference(&remote) {
        if store.purge_village(village)?.is_some() && !outcome.villages_removed.contains(village) {
            outcome.villages_removed.push(village.clone());
        }
    }
    Ok(outcome)
}

/// Apply one pack page: store (or merge) its documents and record the progress, in one
/// transaction. After the last page the village's cursor is set and routine sync takes over.
pub fn apply_pack_page(
    store: &mut DeviceStore,
    page: &PackPage,
    now: OffsetDateTime,
) -> Result<PackProgress, ClientError> {
    let commit = SyncCommit {
        pack: Some((page.village.clone(), page.next_after.map(|h| h.to_string()), page.seq)),
        ..SyncCommit::default()
    };
    let tx = store.write()?;
    for packed in &page.households {
        match tx.merge_document(packed.household, &page.village, &packed.document, now) {
            Ok(_) => {}
            // A document the server sent that does not load: listed, retried by the repair step.
            Err(StoreError::Model(e)) => {
                tx.mark_repair(packed.household, &page.village, &crate::store::damage_reason(&e), now)?
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.record_sync(&commit)?;
    tx.commit()?;
    Ok(PackProgress { households: page.households.len(), next_after: page.next_after })
}

/// Apply one compact (format 2) pack page: rebuild its households' changes, check them against
/// the server's heads, then store (or merge) them and record the progress in one transaction.
/// Nothing is stored from a page that does not check.
pub fn apply_compact_pack_page(
    store: &mut DeviceStore,
    page: &CompactPackPage,
    now: OffsetDateTime,
) -> Result<PackProgress, ClientError> {
    let households = page.unpack()?;
    let commit = SyncCommit {
        pack: Some((page.village.clone(), page.next_after.map(|h| h.to_string()), page.seq)),
        ..SyncCommit::default()
    };
    let tx = store.write()?;
    for household in households {
        let id = household.id();
        let stored = match household {
            // New here and nothing unsent: stored from its changes as they are.
            Unpacked::Changes { id, changes, expanded }
                if tx.store_new_from_changes(id, &page.village, &changes, &expanded, now)? =>
            {
                Ok(0)
            }
            Unpacked::Changes { id, changes, .. } => tx.merge_changes(id, &page.village, changes, now),
            Unpacked::Document { id, document } => tx.merge_document(id, &page.village, &document, now),
        };
        match stored {
            Ok(_) => {}
            Err(StoreError::Model(e)) => tx.mark_repair(id, &page.village, &crate::store::damage_reason(&e), now)?,
            Err(e) => return Err(e.into()),
        }
    }
    tx.record_sync(&commit)?;
    tx.commit()?;
    Ok(PackProgress { households: page.households.len(), next_after: page.next_after })
}

/// Apply a pack page of either format ([`apply_pack_page`], [`apply_compact_pack_page`]).
pub fn apply_pack(store: &mut DeviceStore, page: &Pack, now: OffsetDateTime) -> Result<PackProgress, ClientError> {
    match page {
        Pack::Documents(page) => apply_pack_page(store, page, now),
        Pack::Changes(page) => apply_compact_pack_page(store, page, now),
    }
}

/// Most households asked for in one repair request.
pub const REPAIR_PAGE: usize = 200;

/// The next repair request: households listed for repair (at most [`REPAIR_PAGE`]), or `None`
/// when nothing waits.
pub fn repair_request(store: &DeviceStore) -> Result<Option<DocumentsRequest>, ClientError> {
    let households: Vec<HouseholdId> = store.repairs()?.into_iter().take(REPAIR_PAGE).map(|r| r.household).collect();
    Ok((!households.is_empty()).then_some(DocumentsRequest { households }))
}

/// What applying a repair answer did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairOutcome {
    /// Households restored from the server's document merged with this device's own work.
    pub restored: usize,
    /// Households the server no longer gives this device (out of scope, or never uploaded): kept
    /// as they are, taken off the repair list.
    pub unavailable: usize,
    /// Own changes that fit in no history (counted, kept in the outbox).
    pub orphaned_changes: usize,
}

/// Apply the server's whole documents for households listed for repair, in one transaction: each
/// is merged with the device's stored copy (if it still loads) and its unsent changes.
pub fn apply_repair(
    store: &mut DeviceStore,
    response: &DocumentsResponse,
    now: OffsetDateTime,
) -> Result<RepairOutcome, ClientError> {
    let mut outcome = RepairOutcome::default();
    let listed: BTreeMap<HouseholdId, String> =
        store.repairs()?.into_iter().map(|r| (r.household, r.village)).collect();
    let tx = store.write()?;
    for doc in &response.households {
        let Some(village) = listed.get(&doc.household) else { continue };
        match tx.merge_document(doc.household, village, &doc.document, now) {
            Ok(orphans) => {
                outcome.restored += 1;
                outcome.orphaned_changes += orphans;
            }
            Err(StoreError::Model(_)) => {} // stays listed; the server's copy did not load
            Err(e) => return Err(e.into()),
        }
    }
    for id in &response.unavailable {
        let Some(village) = listed.get(id) else { continue };
        // A household the server never received is this device's own: rebuild it from its unsent
        // changes (all of its history is in the outbox), whatever became of the stored copy.
        let own = tx.outbox_changes(*id)?;
        if !own.is_empty() && tx.rebuild_from_own_changes(*id, village, own, now)? {
            outcome.restored += 1;
        } else {
            tx.clear_repair(*id)?;
            outcome.unavailable += 1;
        }
    }
    tx.commit()?;
    Ok(outcome)
}
