//! Merging two households that are one family, on SQLite: the first merge (a supervisor's
//! request) and every later fold (a change that reaches the retired household by sync, from a
//! device that was offline). The document work is [`Household::combine`]; here is what the
//! server keeps between folds (`merges.fold`) and the disagreements it lists for the supervisor
//! (`merge_conflicts`).

use super::stored_time;
use super::supervise::{load, store};
use crate::storage::StorageError;
use rusqlite::{OptionalExtension, Transaction, params};
use sync_core::model::{DeviceId, Disagreement, Editor, Fold, HouseholdId};
use sync_core::protocol::MergeReply;
use time::OffsetDateTime;

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(what.into())
}

/// The survivor a household was merged into, if it was.
fn survivor_of(tx: &Transaction<'_>, retired: HouseholdId) -> Result<Option<String>, StorageError> {
    Ok(tx
        .prepare_cached("SELECT survivor FROM merges WHERE retired = ?1")?
        .query_row(params![retired.to_string()], |r| r.get(0))
        .optional()?)
}

fn record_disagreements(
    tx: &Transaction<'_>,
    survivor: HouseholdId,
    retired: HouseholdId,
    disagreements: &[Disagreement],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO merge_conflicts (survivor, retired, path, other, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for d in disagreements {
        let other = serde_json::to_string(&d.other).map_err(|e| corrupt(format!("cannot encode a value: {e}")))?;
        insert.execute(params![
            survivor.to_string(),
            retired.to_string(),
            d.path.to_string(),
            other,
            stored_time(now)
        ])?;
    }
    Ok(())
}

/// Fold `retired` into `survivor` for the first time, as `editor`.
pub(super) fn merge(
    tx: &Transaction<'_>,
    survivor: HouseholdId,
    retired: HouseholdId,
    editor: &Editor,
) -> Result<MergeReply, StorageError> {
    if let Some(into) = survivor_of(tx, retired)? {
        return Err(StorageError::Stale(format!("household {retired} was already merged into {into}")));
    }
    if let Some(into) = survivor_of(tx, survivor)? {
        return Err(StorageError::Stale(format!(
            "household {survivor} was itself merged into {into}; keep {into} instead"
        )));
    }
    let (mut kept, kept_village) = load(tx, survivor, editor)?;
    let (mut gone, gone_village) = load(tx, retired, editor)?;
    let combined =
        kept.combine(&mut gone, &Fold::default(), editor).map_err(|e| StorageError::Refused(e.to_string()))?;
    if let Some(saved) = &combined.survivor_change {
        store(tx, &kept, &kept_village, saved, editor)?;
    }
    if let Some(saved) = &combined.retired_change {
        store(tx, &gone, &gone_village, saved, editor)?;
    }
    let fold = serde_json::to_string(&combined.fold).map_err(|e| corrupt(format!("cannot encode a fold: {e}")))?;
    tx.execute(
        "INSERT INTO merges (retired, survivor, fold, by_user, device_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            retired.to_string(),
            survivor.to_string(),
            fold,
            editor.user,
            editor.device.to_string(),
            stored_time(editor.now)
        ],
    )?;
    record_disagreements(tx, survivor, retired, &combined.disagreements, editor.now)?;
    Ok(MergeReply { survivor, retired, disagreements: combined.disagreements.len() as u32 })
}

/// After a sync stored new changes of `household`: if it was merged into another, fold what is
/// new into the survivor (as the supervisor who merged, under the same server-side device).
pub(super) fn refold(tx: &Transaction<'_>, household: HouseholdId, now: OffsetDateTime) -> Result<(), StorageError> {
    let row: Option<(String, String, String, String)> = tx
        .prepare_cached("SELECT survivor, fold, by_user, device_id FROM merges WHERE retired = ?1")?
        .query_row(params![household.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((survivor, fold, user, device)) = row else { return Ok(()) };
    let survivor: HouseholdId = survivor.parse().map_err(|_| corrupt(format!("bad household id {survivor:?}")))?;
    let fold: Fold = serde_json::from_str(&fold).map_err(|e| corrupt(format!("stored fold is not readable: {e}")))?;
    let device: DeviceId = device.parse().map_err(|_| corrupt(format!("bad device id {device:?}")))?;
    let editor = Editor { user, device, now };
    let (mut kept, kept_village) = load(tx, survivor, &editor)?;
    let (mut gone, _) = load(tx, household, &editor)?;
    let combined = kept
        .combine(&mut gone, &fold, &editor)
        .map_err(|e| corrupt(format!("folding {household} into {survivor}: {e}")))?;
    if let Some(saved) = &combined.survivor_change {
        store(tx, &kept, &kept_village, saved, &editor)?;
    }
    let fold = serde_json::to_string(&combined.fold).map_err(|e| corrupt(format!("cannot encode a fold: {e}")))?;
    tx.execute("UPDATE merges SET fold = ?2 WHERE retired = ?1", params![household.to_string(), fold])?;
    record_disagreements(tx, survivor, household, &combined.disagreements, now)?;
    Ok(())
}
