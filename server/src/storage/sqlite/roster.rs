//! Roster imports on SQLite: staged chunks, the family-id index a re-import matches on, and the
//! commit that turns a whole import into household documents and feed changes in one transaction.

use super::stored_time;
use crate::roster::{self, ImportSummary, Imported};
use crate::storage::StorageError;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::HashSet;
use sync_core::form::FormDefinition;
use sync_core::model::{Editor, Household, HouseholdId};
use sync_core::roster::RosterHousehold;
use time::OffsetDateTime;
use uuid::Uuid;

/// How long the staged chunks of an import that was never committed are kept: a `pilar roster
/// import` stages and commits within minutes, so a day-old uncommitted import was abandoned (the
/// admin's run was cut and they started a new import). Pruned when another import is staged.
pub(super) const STAGED_IMPORT_LIFETIME: time::Duration = time::Duration::days(1);

fn corrupt_json(what: &str, e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(format!("{what}: {e}"))
}

/// Stage one chunk inside `tx`.
pub(super) fn stage(
    tx: &Transaction<'_>,
    import: Uuid,
    chunk: u32,
    user: &str,
    households: &[RosterHousehold],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    let id = import.to_string();
    // Abandoned imports (their chunks go with them: ON DELETE CASCADE) never pile up.
    tx.execute(
        "DELETE FROM roster_imports WHERE committed_at IS NULL AND created_at < ?1 AND id != ?2",
        params![stored_time(now - STAGED_IMPORT_LIFETIME), id],
    )?;
    let committed: Option<Option<String>> =
        tx.query_row("SELECT committed_at FROM roster_imports WHERE id = ?1", params![id], |r| r.get(0)).optional()?;
    match committed {
        Some(Some(_)) => {
            return Err(StorageError::Refused(format!(
                "roster import {import} is already committed; start a new import to load the file again"
            )));
        }
        Some(None) => {}
        None => {
            tx.execute(
                "INSERT INTO roster_imports (id, user_name, created_at) VALUES (?1, ?2, ?3)",
                params![id, user, stored_time(now)],
            )?;
        }
    }
    let body = serde_json::to_vec(households).map_err(|e| corrupt_json("roster chunk", e))?;
    let packed = zstd::bulk::compress(&body, 3).map_err(|e| StorageError::Backend(Box::new(e)))?;
    tx.execute(
        "INSERT INTO roster_chunks (import_id, chunk, households) VALUES (?1, ?2, ?3)
         ON CONFLICT (import_id, chunk) DO UPDATE SET households = excluded.households",
        params![id, chunk, packed],
    )?;
    Ok(())
}

/// Commit an import inside `tx`: every chunk `0..chunks` must be staged.
pub(super) fn commit(
    tx: &Transaction<'_>,
    import: Uuid,
    chunks: u32,
    editor: &Editor,
    form: &FormDefinition,
) -> Result<ImportSummary, StorageError> {
    let id = import.to_string();
    let found: Option<(Option<String>, Option<String>)> = tx
        .query_row("SELECT committed_at, summary FROM roster_imports WHERE id = ?1", params![id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match found {
        None => {
            return Err(StorageError::Refused(format!(
                "roster import {import} has no staged chunks; send the file again with `pilar roster import`"
            )));
        }
        Some((Some(_), Some(summary))) => {
            return serde_json::from_str(&summary).map_err(|e| corrupt_json("import summary", e));
        }
        Some(_) => {}
    }
    let staged: i64 = tx.query_row(
        "SELECT count(*) FROM roster_chunks WHERE import_id = ?1 AND chunk < ?2",
        params![id, chunks],
        |r| r.get(0),
    )?;
    if staged != i64::from(chunks) {
        return Err(StorageError::Refused(format!(
            "roster import {import} has {staged} of its {chunks} chunks staged; send the file again with `pilar roster import`"
        )));
    }
    let received_at = stored_time(editor.now);
    let mut summary = ImportSummary::default();
    let mut seen: HashSet<String> = HashSet::new();
    for chunk in 0..chunks {
        let packed: Vec<u8> = tx.query_row(
            "SELECT households FROM roster_chunks WHERE import_id = ?1 AND chunk = ?2",
            params![id, chunk],
            |r| r.get(0),
        )?;
        let body = zstd::stream::decode_all(packed.as_slice()).map_err(|e| StorageError::Backend(Box::new(e)))?;
        let households: Vec<RosterHousehold> =
            serde_json::from_slice(&body).map_err(|e| corrupt_json("roster chunk", e))?;
        for household in &households {
            if let Some(family) = &household.family_id
                && !seen.insert(family.clone())
            {
                return Err(StorageError::Refused(format!(
                    "DTSEN family id at row {} appears twice in the roster; keep one row (or one family) per id",
                    household.row
                )));
            }
            let existing = match &household.family_id {
                Some(family) => matched(tx, family, editor)?,
                None => None,
            };
            let is_update = existing.is_some();
            let imported = match existing {
                Some(found) => roster::update(found, household, editor),
                None => roster::create(form, household, editor),
            }
            .map_err(|e| StorageError::Corrupt(format!("roster row {}: {e}", household.row)))?;
            match (&imported.change, is_update) {
                (None, _) => summary.unchanged += 1,
                (Some(_), true) => summary.updated += 1,
                (Some(_), false) => summary.created += 1,
            }
            store(tx, &imported, household, editor, &received_at)?;
        }
    }
    let text = serde_json::to_string(&summary).map_err(|e| corrupt_json("import summary", e))?;
    tx.execute(
        "UPDATE roster_imports SET committed_at = ?2, summary = ?3 WHERE id = ?1",
        params![id, received_at, text],
    )?;
    tx.execute("DELETE FROM roster_chunks WHERE import_id = ?1", params![id])?;
    Ok(summary)
}

/// The household a family id was imported as, loaded.
fn matched(tx: &Transaction<'_>, family: &str, editor: &Editor) -> Result<Option<Household>, StorageError> {
    let row: Option<(String, Vec<u8>)> = tx
        .query_row(
            "SELECT h.id, h.doc FROM roster_keys k JOIN households h ON h.id = k.household_id WHERE k.family_id = ?1",
            params![family],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((id, doc)) = row else { return Ok(None) };
    let id: HouseholdId = id.parse().map_err(|_| StorageError::Corrupt(format!("bad household id {id:?}")))?;
    let household =
        Household::load(id, &doc, editor.device).map_err(|e| StorageError::Corrupt(format!("household {id}: {e}")))?;
    Ok(Some(household))
}

/// Write an imported household: its change into the feed, the document, the family-id index.
fn store(
    tx: &Transaction<'_>,
    imported: &Imported,
    household: &RosterHousehold,
    editor: &Editor,
    received_at: &str,
) -> Result<(), StorageError> {
    let Some((hash, bytes)) = &imported.change else { return Ok(()) };
    let id = imported.id.to_string();
    tx.prepare_cached(
        "INSERT INTO changes (hash, household_id, village, device_id, user_name, bytes, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO NOTHING",
    )?
    .execute(params![hash, id, household.village, editor.device.to_string(), editor.user, bytes, received_at])?;
    let seq: i64 = tx.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO households (id, village, doc, heads, updated_seq, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
             updated_seq = excluded.updated_seq, updated_at = excluded.updated_at",
    )?
    .execute(params![id, household.village, imported.document, imported.heads, seq, received_at])?;
    if let Some(family) = &household.family_id {
        tx.prepare_cached("INSERT OR IGNORE INTO roster_keys (family_id, household_id) VALUES (?1, ?2)")?
            .execute(params![family, id])?;
    }
    Ok(())
}
