//! Encoded compact pack pages kept while their village does not change. A format-2 page costs the
//! server about a third of a second (every document's changes turned into rows, then zstd level
//! 19); the devices of a village are set up together on the first day and ask for the same pages
//! one after another. A page is keyed by the village's feed head it was read at: any change to a
//! household of the village moves the head, so a kept page is exactly what reading again would
//! give. Nothing here matters for correctness (a miss reads and encodes again) and the cache is
//! bounded in bytes, oldest page out first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use sync_core::model::HouseholdId;

/// Encoded bytes kept at most (the benchmark's whole kecamatan of 3,000 households is 0.5 MiB).
pub const PACK_CACHE_BYTES: usize = 16 << 20;

/// What a page is: the village, where it starts, how many households, and the feed head it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    /// The village.
    pub village: String,
    /// The page starts after this household.
    pub after: Option<HouseholdId>,
    /// Households asked for.
    pub limit: u32,
    /// The village's feed head the page was read at.
    pub seq: u64,
}

/// The kept pages, most recently used last, and their bytes.
#[derive(Debug, Default)]
struct Kept {
    pages: VecDeque<(PageKey, Arc<Vec<u8>>)>,
    bytes: usize,
}

/// The kept pages.
#[derive(Debug, Default)]
pub struct PackCache {
    kept: Mutex<Kept>,
}

impl PackCache {
    /// The page, if kept (and now the most recently used).
    pub fn get(&self, key: &PageKey) -> Option<Arc<Vec<u8>>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let position = kept.pages.iter().position(|(k, _)| k == key)?;
        let entry = kept.pages.remove(position)?;
        let body = entry.1.clone();
        kept.pages.push_back(entry);
        Some(body)
    }

    /// Keep a page, dropping the least recently used ones past [`PACK_CACHE_BYTES`]; a village's
    /// pages read at an older head are dropped at once (they can never be asked for again).
    pub fn put(&self, key: PageKey, body: Arc<Vec<u8>>) {
        if body.len() > PACK_CACHE_BYTES {
            return;
        }
        let mut guard = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let Kept { pages, bytes } = &mut *guard;
        pages.retain(|(k, b)| {
            let stale = k.village == key.village && k.seq < key.seq;
            if stale {
                *bytes -= b.len();
            }
            !stale
        });
        if pages.iter().any(|(k, _)| *k == key) {
            return;
        }
        *bytes += body.len();
        pages.push_back((key, body));
        while *bytes > PACK_CACHE_BYTES {
            let Some((_, dropped)) = pages.pop_front() else { break };
            *bytes -= dropped.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(village: &str, seq: u64) -> PageKey {
        PageKey { village: village.into(), after: None, limit: 500, seq }
    }

    #[test]
    fn a_page_read_at_a_newer_head_replaces_the_village_s_older_pages_and_the_bytes_stay_bounded() {
        let cache = PackCache::default();
        cache.put(key("73.14.01.1001", 5), Arc::new(vec![1; 10]));
        cache.put(key("73.14.01.1002", 5), Arc::new(vec![2; 10]));
        assert!(cache.get(&key("73.14.01.1001", 5)).is_some());
        cache.put(key("73.14.01.1001", 6), Arc::new(vec![3; 10]));
        assert!(cache.get(&key("73.14.01.1001", 5)).is_none(), "an older head's page is gone");
        assert!(cache.get(&key("73.14.01.1002", 5)).is_some(), "other villages keep theirs");
        let big = PACK_CACHE_BYTES / 2 + 1;
        cache.put(key("73.14.01.1003", 1), Arc::new(vec![0; big]));
        cache.put(key("73.14.01.1004", 1), Arc::new(vec![0; big]));
        assert!(cache.get(&key("73.14.01.1003", 1)).is_none(), "the least recently used page went first");
        assert!(cache.get(&key("73.14.01.1004", 1)).is_some());
        let kept = cache.kept.lock().expect("lock").bytes;
        assert!(kept <= PACK_CACHE_BYTES, "{kept} bytes kept");
    }
}
