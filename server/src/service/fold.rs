//! Folding a household into another when a supervisor finds they are one family: the first fold
//! (the supervisor's request) and every later fold (a change that reaches the retired household by
//! sync, from a device that was offline). The document work is [`sync_core::model::Household::combine`]; here is
//! what the server keeps between folds (what was folded so far) and the disagreements it lists for
//! the supervisor. ("Merge" in the API's `/v1/duplicates/merge` is this fold.)

use super::{Service, corrupt, load_for_edit, store_edit};
use crate::storage::{FoldDisagreementRow, FoldRow, StorageError, Transactions, Tx};
use sync_core::model::{Disagreement, Editor, Fold, HouseholdId};
use sync_core::protocol::FoldReply;
use time::OffsetDateTime;

fn record_disagreements(
    tx: &mut dyn Tx,
    survivor: HouseholdId,
    retired: HouseholdId,
    disagreements: &[Disagreement],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    if !disagreements.is_empty() {
        // An approval decides on the survivor's open disagreements: meet it on the survivor's row.
        tx.touch_household(survivor)?;
    }
    for d in disagreements {
        let other = serde_json::to_string(&d.other).map_err(|e| corrupt(format!("cannot encode a value: {e}")))?;
        tx.insert_disagreement(&FoldDisagreementRow { survivor, retired, path: d.path.to_string(), other }, now)?;
    }
    Ok(())
}

fn encode(fold: &Fold) -> Result<String, StorageError> {
    serde_json::to_string(fold).map_err(|e| corrupt(format!("cannot encode a fold: {e}")))
}

impl Service {
    /// Fold `retired` into `survivor` as `editor` (a supervisor's server-side device); later
    /// changes that reach `retired` keep being folded in.
    pub fn fold(
        &self,
        survivor: HouseholdId,
        retired: HouseholdId,
        editor: &Editor,
    ) -> Result<FoldReply, StorageError> {
        self.db.write(|tx| {
            if let Some(into) = tx.fold_of(retired)? {
                return Err(StorageError::Stale(format!(
                    "household {retired} was already merged into {}",
                    into.survivor
                )));
            }
            if let Some(into) = tx.fold_of(survivor)? {
                let into = into.survivor;
                return Err(StorageError::Stale(format!(
                    "household {survivor} was itself merged into {into}; keep {into} instead"
                )));
            }
            // Two folds that share a household (A into B while B goes into C) meet on its row, so
            // the later one runs again and sees the other; a fold always writes the retired one.
            tx.touch_household(survivor)?;
            let (mut kept, kept_village) = load_for_edit(tx, survivor, editor)?;
            let (mut gone, gone_village) = load_for_edit(tx, retired, editor)?;
            let combined =
                kept.combine(&mut gone, &Fold::default(), editor).map_err(|e| StorageError::Refused(e.to_string()))?;
            if let Some(saved) = &combined.survivor_change {
                store_edit(tx, &kept, &kept_village, saved, editor)?;
            }
            if let Some(saved) = &combined.retired_change {
                store_edit(tx, &gone, &gone_village, saved, editor)?;
            }
            tx.insert_fold(&FoldRow {
                retired,
                survivor,
                fold: encode(&combined.fold)?,
                user: editor.user.clone(),
                device: editor.device,
                at: editor.now,
            })?;
            record_disagreements(tx, survivor, retired, &combined.disagreements, editor.now)?;
            Ok(FoldReply { survivor, retired, disagreements: combined.disagreements.len() as u32 })
        })
    }
}

/// After a sync stored new changes of a household folded into another (`row`, its fold): fold
/// what is new into the survivor (as the supervisor who asked for the fold, under the same
/// server-side device), in the same transaction.
pub(super) fn refold(tx: &mut dyn Tx, row: FoldRow, now: OffsetDateTime) -> Result<(), StorageError> {
    let household = row.retired;
    let fold: Fold =
        serde_json::from_str(&row.fold).map_err(|e| corrupt(format!("stored fold is not readable: {e}")))?;
    let editor = Editor { user: row.user, device: row.device, now };
    let (mut kept, kept_village) = load_for_edit(tx, row.survivor, &editor)?;
    let (mut gone, _) = load_for_edit(tx, household, &editor)?;
    let combined = kept
        .combine(&mut gone, &fold, &editor)
        .map_err(|e| corrupt(format!("folding {household} into {}: {e}", row.survivor)))?;
    if let Some(saved) = &combined.survivor_change {
        store_edit(tx, &kept, &kept_village, saved, &editor)?;
    }
    tx.update_fold(household, &encode(&combined.fold)?)?;
    record_disagreements(tx, row.survivor, household, &combined.disagreements, now)
}
