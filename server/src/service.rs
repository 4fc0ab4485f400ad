//! The server's use cases, written once above the storage seam ([`Database`]): sync with its
//! admission flow and remembered responses, packs and documents, roster imports, review and
//! conflicts, duplicates and their folds, progress, exports, derived facts, accounts, login
//! throttling. Every rule lives here; a backend only moves rows.
//!
//! [`Service`] is what handlers hold: one method per use case, each one or a few transactions.
//! Methods block; handlers call them through `AppState::blocking`. Callers pass `now` (the
//! server's clock, `crate::clock`), so every rule is testable at any time.

pub mod accounts;
pub mod duplicates;
pub mod export;
pub mod facts;
pub mod feed;
pub mod fold;
pub mod forms;
pub mod kept;
pub mod office;
pub mod pack_cache;
pub mod photo_refs;
pub mod photos;
pub mod progress;
pub mod recent_changes;
pub mod review;
pub mod roster;
pub mod scope;
pub mod sync;
pub mod throttle;
pub mod web_sessions;

use crate::storage::{Database, HouseholdWrite, StorageError, Tx};
use std::sync::Arc;
use sync_core::model::{Editor, Household, HouseholdId, Saved};

/// The server's use cases over one database.
#[derive(Clone)]
pub struct Service {
    db: Arc<dyn Database>,
    /// Encoded compact pack pages, kept while their village does not change.
    packs: Arc<pack_cache::PackCache>,
    /// Households' photo references, kept while their document does not change.
    photo_refs: Arc<photo_refs::PhotoRefCache>,
    /// Bytes of the changes recently admitted or pulled (a pull's documents mostly stay unloaded).
    recent: Arc<recent_changes::RecentChanges>,
    /// Parsed form definitions by key (published versions never change).
    forms: Arc<forms::FormCache>,
    /// Rewritten documents, watched for when the compression dictionary stops fitting them.
    retrainer: Arc<kept::Retrainer>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// The use cases over `db`.
    pub fn new(db: Arc<dyn Database>) -> Service {
        Service {
            db,
            packs: Arc::new(pack_cache::PackCache::default()),
            photo_refs: Arc::new(photo_refs::PhotoRefCache::default()),
            recent: Arc::new(recent_changes::RecentChanges::default()),
            forms: Arc::new(forms::FormCache::default()),
            retrainer: Arc::new(kept::Retrainer::default()),
        }
    }

    /// The database underneath (tests and tools look at rows directly).
    pub fn database(&self) -> &dyn Database {
        self.db.as_ref()
    }
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(what.into())
}

/// A document's heads as stored: comma-separated hex.
fn heads_text(household: &Household) -> String {
    household.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")
}

/// A household loaded for a server-side write by `editor`, with its village.
fn load_for_edit(tx: &mut dyn Tx, id: HouseholdId, editor: &Editor) -> Result<(Household, String), StorageError> {
    let Some(row) = tx.household(id)? else {
        return Err(StorageError::NotFound(format!(
            "no household {id} on the server; copy its id from `pilar review list` or `pilar conflicts`"
        )));
    };
    let household =
        Household::load(id, &row.doc, editor.device).map_err(|e| corrupt(format!("household {id}: {e}")))?;
    Ok((household, row.village))
}

/// Store a server-side change to `household`: into the feed (recorded for the editor's
/// server-side device, so the editor's own device receives it too), then the document.
fn store_edit(
    tx: &mut dyn Tx,
    household: &Household,
    village: &str,
    saved: &Saved,
    editor: &Editor,
) -> Result<(), StorageError> {
    let hash = saved.hash.to_string();
    let entry = feed::Entry { hash: &hash, household: household.id(), device: editor.device, user: &editor.user };
    let position = feed::append(tx, village, &[entry], editor.now)?;
    let (doc, heads) = (household.save_nocompress(), heads_text(household));
    tx.put_household(&HouseholdWrite {
        id: household.id(),
        village,
        doc: &doc,
        heads: &heads,
        position,
        at: editor.now,
    })
}

#[cfg(test)]
mod tests;
