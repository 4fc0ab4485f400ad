//! The bytes of recently admitted or pulled changes, by hash. The feed keeps no bytes of its own
//! (a change's bytes are in its household's document, `service::feed`), so a pull takes them from
//! the documents, loading each one whole. But what devices pull is mostly what colleagues sent
//! minutes before, and every device of a village pulls the same changes: keeping the latest
//! changes' bytes spares those loads (`pilar-bench load`: 286,650 changes delivered for 6,050
//! admitted). A hash names its bytes, so a kept entry is never stale, even one kept from a
//! transaction that then rolled back (the feed never asks for it). Bounded in bytes, oldest out
//! first; a miss only loads the document.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Change bytes kept at most: the changes a busy day's syncs pass around (6,050 changes of the
/// load run take about 4 MiB), small beside the server's 100 MB memory target.
pub const RECENT_CHANGE_BYTES: usize = 8 << 20;

/// Recent changes' bytes by hash (hex).
#[derive(Debug, Default)]
pub struct RecentChanges {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    by_hash: HashMap<String, Arc<[u8]>>,
    /// Hashes in the order they were kept, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

impl RecentChanges {
    /// The bytes of the change `hash`, if kept.
    pub fn get(&self, hash: &str) -> Option<Arc<[u8]>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).by_hash.get(hash).cloned()
    }

    /// Keep the bytes of the change `hash`, dropping the oldest kept past the bound.
    pub fn put(&self, hash: &str, bytes: &[u8]) {
        if bytes.is_empty() || bytes.len() > RECENT_CHANGE_BYTES / 16 {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.by_hash.contains_key(hash) {
            return;
        }
        kept.by_hash.insert(hash.to_string(), Arc::from(bytes));
        kept.order.push_back(hash.to_string());
        kept.bytes += bytes.len();
        while kept.bytes > RECENT_CHANGE_BYTES {
            let Some(oldest) = kept.order.pop_front() else { break };
            if let Some(gone) = kept.by_hash.remove(&oldest) {
                kept.bytes -= gone.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_bytes_stay_within_the_bound_oldest_out_first() {
        let recent = RecentChanges::default();
        let size = RECENT_CHANGE_BYTES / 20;
        for n in 0..25 {
            recent.put(&format!("h{n}"), &vec![n as u8; size]);
        }
        assert!(recent.get("h0").is_none() && recent.get("h4").is_none(), "the oldest went");
        assert_eq!(recent.get("h5").as_deref(), Some(&vec![5u8; size][..]));
        assert_eq!(recent.get("h24").as_deref(), Some(&vec![24u8; size][..]));
        let kept = recent.kept.lock().expect("lock");
        assert!(kept.bytes <= RECENT_CHANGE_BYTES && kept.by_hash.len() == kept.order.len());
        drop(kept);
        recent.put("h24", b"other");
        assert_eq!(recent.get("h24").as_deref(), Some(&vec![24u8; size][..]), "a hash names its bytes");
        recent.put("empty", b"");
        assert!(recent.get("empty").is_none(), "nothing is not kept");
    }
}
