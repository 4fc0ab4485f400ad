//! The feed cursor under concurrent writers and readers (ARCHITECTURE.md, "the feed cursor"):
//! writer threads append changes to a few villages through `service::feed::append` while reader
//! threads follow every village with cursors through `service::feed::read`. Every reader must see
//! every change exactly once, in position order. Seeded: the seed is printed on failure.

use super::Factory;
use crate::service::feed::{self, Entry};
use crate::storage::{Database, Transactions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use sync_core::model::{DeviceId, HouseholdId};
use time::OffsetDateTime;

/// How hard the test pushes.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Writer threads.
    pub writers: usize,
    /// Reader threads.
    pub readers: usize,
    /// Villages written to.
    pub villages: usize,
    /// Changes each writer appends.
    pub changes_per_writer: usize,
    /// Most changes a reader takes per read (small, so readers interleave with writers).
    pub page: u32,
    /// The seed of the writers' choices.
    pub seed: u64,
}

impl Default for Load {
    fn default() -> Load {
        Load { writers: 8, readers: 8, villages: 3, changes_per_writer: 250, page: 7, seed: seed_from_env() }
    }
}

fn seed_from_env() -> u64 {
    std::env::var("PILAR_FEED_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(14)
}

fn village(n: usize) -> String {
    format!("73.14.01.{}", 1001 + n)
}

/// What one reader saw: per village, the change hashes in the order read.
type Seen = BTreeMap<String, Vec<String>>;

/// N writers append `changes_per_writer` changes each (1 to 3 per transaction, to a random
/// village) while M readers poll every village after their cursors; once the writers are done,
/// each reader drains what is left. Every reader must hold every change exactly once, and read
/// the positions of each village in increasing order.
pub fn concurrent_writers_and_readers_see_every_change_once(factory: Factory<'_>, load: Load) {
    let fresh = factory();
    let db = Arc::clone(&fresh.db);
    let done = Arc::new(AtomicBool::new(false));
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    let readers: Vec<_> = (0..load.readers)
        .map(|r| {
            let (db, done) = (Arc::clone(&db), Arc::clone(&done));
            std::thread::spawn(move || follow(db.as_ref(), &done, load, r))
        })
        .collect();
    let writers: Vec<_> = (0..load.writers)
        .map(|w| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || write_changes(db.as_ref(), load, w, now))
        })
        .collect();
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for writer in writers {
        for (village, hash) in writer.join().expect("a writer panicked") {
            written.entry(village).or_default().insert(hash);
        }
    }
    done.store(true, Ordering::SeqCst);
    let total: usize = written.values().map(BTreeSet::len).sum();
    assert_eq!(total, load.writers * load.changes_per_writer, "seed {}: every change was written", load.seed);
    for (r, reader) in readers.into_iter().enumerate() {
        let seen = reader.join().unwrap_or_else(|_| panic!("seed {}: reader {r} panicked", load.seed));
        for (village, hashes) in &written {
            let got = seen.get(village).cloned().unwrap_or_default();
            let unique: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(
                unique.len(),
                got.len(),
                "seed {}: reader {r} saw a change of {village} twice (PILAR_FEED_SEED replays)",
                load.seed
            );
            let missed = hashes.difference(&unique).count();
            assert_eq!(
                missed,
                0,
                "seed {}: reader {r} never saw {missed} of {} changes of {village} (PILAR_FEED_SEED replays)",
                load.seed,
                hashes.len()
            );
            assert_eq!(unique, *hashes, "seed {}: reader {r} saw changes nobody wrote", load.seed);
        }
    }
}

/// One writer: its changes, as (village, hash).
fn write_changes(db: &dyn Database, load: Load, w: usize, now: OffsetDateTime) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(load.seed.wrapping_mul(1000).wrapping_add(w as u64));
    let device = DeviceId(uuid::Uuid::from_u128(w as u128 + 1));
    let household = HouseholdId(uuid::Uuid::from_u128(w as u128 + 1));
    let mut out = Vec::new();
    let mut n = 0;
    while n < load.changes_per_writer {
        let village = village(rng.random_range(0..load.villages));
        let batch = rng.random_range(1..=3).min(load.changes_per_writer - n);
        // Hashes are hex, as Automerge's are (PostgreSQL keeps their bytes).
        let hashes: Vec<String> = (n..n + batch).map(|i| format!("{w:08x}{i:056x}")).collect();
        let entries: Vec<Entry<'_>> =
            hashes.iter().map(|hash| Entry { hash, household, device, user: "pkh.sintetis" }).collect();
        // As a sync does: append, then read the village's feed in the same transaction (which
        // also keeps the transaction open a little after its positions are taken).
        db.write(|tx| {
            let head = feed::append(tx, &village, &entries, now)?;
            feed::read(tx, &village, head.saturating_sub(u64::from(load.page)), Some(device), load.page)
        })
        .unwrap_or_else(|e| panic!("seed {}: writer {w} could not append: {e}", load.seed));
        out.extend(hashes.into_iter().map(|h| (village.clone(), h)));
        n += batch;
    }
    out
}

/// One reader: follow every village until the writers are done, then drain.
fn follow(db: &dyn Database, done: &AtomicBool, load: Load, r: usize) -> Seen {
    let mut cursors: BTreeMap<String, u64> = (0..load.villages).map(|v| (village(v), 0)).collect();
    let mut last_position: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = Seen::new();
    let mut round = |cursors: &mut BTreeMap<String, u64>| -> bool {
        let mut more = false;
        for (village, cursor) in cursors.iter_mut() {
            let page = db
                .read(|tx| feed::read(tx, village, *cursor, None, load.page))
                .unwrap_or_else(|e| panic!("seed {}: reader {r} could not read: {e}", load.seed));
            for change in &page.changes {
                let last = last_position.entry(village.clone()).or_insert(0);
                assert!(change.position > *last, "seed {}: reader {r} read {village} out of order", load.seed);
                *last = change.position;
                let hash = change.hash.clone();
                seen.entry(village.clone()).or_default().push(hash);
            }
            assert!(page.cursor >= *cursor, "seed {}: reader {r}'s cursor went back", load.seed);
            *cursor = page.cursor;
            more |= page.more;
        }
        more
    };
    while !done.load(Ordering::SeqCst) {
        round(&mut cursors);
    }
    while round(&mut cursors) {}
    seen
}
