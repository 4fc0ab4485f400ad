//! The photo references of recently checked households, kept while their document does not
//! change. Every chunk of a photo upload must check that its household references the photo;
//! reading that from the document costs loading the whole Automerge document (every change
//! rebuilt and hashed), which grows with the household's history, once per 32 KiB chunk
//! (`pilar-bench photos`, "chunk cost"). An upload's chunks ask about the same household one after
//! another, so the references are kept under the household's heads, which the database gives
//! cheaply (`ReadTx::household_heads`): any change to the household moves its heads, so kept
//! references are exactly what loading the document again would give. Nothing here matters for
//! correctness (a miss loads the document), scope is checked on every request as before, and the
//! cache is bounded in households, least recently used out first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use sync_core::model::{HouseholdId, PhotoRef};

/// Households whose references are kept at most (a few hundred bytes each: a campaign's
/// uploads in flight at once, with room to spare).
pub const PHOTO_REFS_KEPT: usize = 1024;

/// A household's photo references, by SHA-256 hex, as its document at some heads holds them.
pub type References = Arc<BTreeMap<String, PhotoRef>>;

/// The kept references, most recently used last.
#[derive(Debug, Default)]
pub struct PhotoRefCache {
    kept: Mutex<VecDeque<(HouseholdId, String, References)>>,
}

impl PhotoRefCache {
    /// The references of `household` at `heads`, if kept (and now the most recently used).
    pub fn get(&self, household: HouseholdId, heads: &str) -> Option<References> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let position = kept.iter().position(|(id, h, _)| *id == household && h == heads)?;
        let entry = kept.remove(position)?;
        let references = entry.2.clone();
        kept.push_back(entry);
        Some(references)
    }

    /// Keep the references of `household` at `heads`, replacing any kept at other heads (they
    /// can never be asked for again) and dropping the least recently used past the bound.
    pub fn put(&self, household: HouseholdId, heads: String, references: References) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(id, _, _)| *id != household);
        kept.push_back((household, heads, references));
        while kept.len() > PHOTO_REFS_KEPT {
            kept.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> HouseholdId {
        HouseholdId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn references_are_kept_only_for_the_heads_they_were_read_at_and_bounded() {
        let cache = PhotoRefCache::default();
        let refs: References = Arc::new(BTreeMap::new());
        cache.put(id(1), "a".into(), refs.clone());
        assert!(cache.get(id(1), "a").is_some());
        assert!(cache.get(id(1), "b").is_none(), "other heads: the document moved");
        cache.put(id(1), "b".into(), refs.clone());
        assert!(cache.get(id(1), "a").is_none(), "older heads are dropped");
        for n in 2..(PHOTO_REFS_KEPT as u128 + 2) {
            cache.put(id(n), "h".into(), refs.clone());
        }
        assert!(cache.get(id(1), "b").is_none(), "the least recently used went first");
        assert!(cache.get(id(PHOTO_REFS_KEPT as u128 + 1), "h").is_some());
    }
}
