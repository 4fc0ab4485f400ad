//! The store's side of sync: the pending batch id, committing a sync response or a pack page in
//! one transaction, and purging a village.

use super::{DeviceStore, StoreError, StoreTx};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One outbox change on its way to the server.
#[derive(Debug, Clone)]
pub struct OutgoingChange {
    /// The household it belongs to.
    pub household: String,
    /// The household's village.
    pub village: String,
    /// The change hash.
    pub hash: String,
    /// The encoded change.
    pub bytes: Vec<u8>,
    /// The save action that made it (`create` for a new household's first change).
    pub action: String,
}

/// What one sync response (or pack page) changes on the device besides household documents,
/// recorded in the same transaction as the documents.
#[derive(Debug, Default)]
pub struct SyncCommit {
    /// The batch the response answers: its outbox rows are acknowledged (deleted), except those of
    /// households in `rejected` and `resend`.
    pub batch: Option<Uuid>,
    /// Households the server refused, with the reason: their rows in the batch are kept, marked.
    pub rejected: Vec<(String, String)>,
    /// Households the server wants again in full: their rows stay for the next batch.
    pub resend: Vec<String>,
    /// New cursors per village.
    pub cursors: BTreeMap<String, u64>,
    /// The villages the device now works in, when the server said so.
    pub villages: Option<Vec<String>>,
    /// Pack progress to record: (village, next household id or `None` when done, page seq).
    pub pack: Option<(String, Option<String>, u64)>,
}

impl DeviceStore {
    /// The batch id of a request whose response never arrived (reused on retry), if any.
    pub fn pending_batch(&self) -> Result<Option<Uuid>, StoreError> {
        let text: Option<Option<String>> =
            self.conn.query_row("SELECT batch FROM sync_state WHERE id = 1", [], |r| r.get(0)).optional()?;
        Ok(text.flatten().and_then(|t| t.parse().ok()))
    }

    /// The batch to send next: the pending one when its response was lost (a retry must carry
    /// exactly its changes so the server replays it), else `fresh`, which takes every outbox row
    /// not yet refused. Recorded before anything is sent.
    pub fn start_batch(&mut self, fresh: Uuid) -> Result<Uuid, StoreError> {
        let tx = self.write()?;
        let pending: Option<Option<String>> =
            tx.conn().query_row("SELECT batch FROM sync_state WHERE id = 1", [], |r| r.get(0)).optional()?;
        if let Some(pending) = pending.flatten().and_then(|t| t.parse().ok()) {
            return Ok(pending);
        }
        tx.conn().execute(
            "INSERT INTO sync_state (id, batch) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET batch = excluded.batch",
            params![fresh.to_string()],
        )?;
        tx.conn().execute("UPDATE outbox SET batch = ?1 WHERE rejected_reason IS NULL", params![fresh.to_string()])?;
        tx.commit()?;
        Ok(fresh)
    }

    /// All cursors, per village.
    pub fn cursors(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT village, cursor FROM cursors")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (v, c) = row?;
            out.insert(v, c.max(0) as u64);
        }
        Ok(out)
    }

    /// Where an unfinished pack download of `village` stands: (next household id, smallest seq).
    pub fn pack_progress(&self, village: &str) -> Result<Option<(Option<String>, u64)>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT after, seq FROM pack_progress WHERE village = ?1", params![village], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .optional()?)
    }

    /// The outbox rows that went into `batch`, oldest first.
    pub fn batch_changes(&self, batch: Uuid) -> Result<Vec<OutgoingChange>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT o.household_id, h.village, o.hash, o.change, o.action
             FROM outbox o JOIN households h ON h.id = o.household_id
             WHERE o.batch = ?1 ORDER BY o.seq",
        )?;
        let rows = stmt.query_map(params![batch.to_string()], |r| {
            Ok(OutgoingChange {
                household: r.get(0)?,
                village: r.get(1)?,
                hash: r.get(2)?,
                bytes: r.get(3)?,
                action: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Delete a village's households, cursor, pack progress and photos, unless some of its
    /// households still have changes not acknowledged by the server or photos not uploaded. Returns how many were purged, or `None`
    /// when unsent work keeps the village on the device for now.
    pub fn purge_village(&mut self, village: &str) -> Result<Option<usize>, StoreError> {
        let store_tx = self.write()?;
        let tx = store_tx.conn();
        let unsent: i64 = tx.query_row(
            "SELECT count(*) FROM outbox o JOIN households h ON h.id = o.household_id WHERE h.village = ?1",
            params![village],
            |r| r.get(0),
        )?;
        if unsent > 0 || super::photos::unsent_in_village(tx, village)? > 0 {
            return Ok(None);
        }
        let purged = tx.execute("DELETE FROM households WHERE village = ?1", params![village])?;
        super::photos::drop_unreferenced(tx)?;
        tx.execute("DELETE FROM cursors WHERE village = ?1", params![village])?;
        tx.execute("DELETE FROM pack_progress WHERE village = ?1", params![village])?;
        tx.execute("DELETE FROM repairs WHERE village = ?1", params![village])?;
        store_tx.commit()?;
        Ok(Some(purged))
    }

    /// Forget every village's download position, so the next sync downloads each village's pack
    /// again (pages are merged with what the store holds; nothing of this device's is dropped).
    pub fn reset_downloads(&mut self) -> Result<(), StoreError> {
        let tx = self.write()?;
        tx.conn().execute("DELETE FROM cursors", [])?;
        tx.conn().execute("DELETE FROM pack_progress", [])?;
        tx.commit()
    }

    /// The page sizes to ask for next, as the link has allowed so far.
    pub fn page_sizes(&self) -> Result<PageSizes, StoreError> {
        let row: Option<(i64, i64)> = self
            .conn
            .query_row("SELECT pull_changes, pack_households FROM page_sizes WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(match row {
            Some((pull, pack)) => {
                PageSizes { pull_changes: pull.max(1) as u32, pack_households: pack.max(1) as u32 }.clamped()
            }
            None => PageSizes::default(),
        })
    }

    /// Remember the page sizes for the next round trip (and the next `pilar sync`).
    pub fn set_page_sizes(&mut self, sizes: PageSizes) -> Result<(), StoreError> {
        let sizes = sizes.clamped();
        self.conn.execute(
            "INSERT INTO page_sizes (id, pull_changes, pack_households) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET pull_changes = excluded.pull_changes,
                 pack_households = excluded.pack_households",
            params![sizes.pull_changes, sizes.pack_households],
        )?;
        Ok(())
    }
}

impl StoreTx<'_> {
    /// Record what a sync response (or pack page) changes besides documents: acknowledged and
    /// refused outbox rows, cursors, villages, pack progress.
    pub fn record_sync(&self, commit: &SyncCommit) -> Result<(), StoreError> {
        let tx = self.conn();
        if let Some(batch) = commit.batch.map(|b| b.to_string()) {
            for (household, reason) in &commit.rejected {
                tx.execute(
                    "UPDATE outbox SET rejected_reason = ?3, batch = NULL WHERE batch = ?1 AND household_id = ?2",
                    params![batch, household, reason],
                )?;
            }
            for household in &commit.resend {
                tx.execute(
                    "UPDATE outbox SET batch = NULL WHERE batch = ?1 AND household_id = ?2",
                    params![batch, household],
                )?;
            }
            tx.execute("DELETE FROM outbox WHERE batch = ?1", params![batch])?;
        }
        for (village, cursor) in &commit.cursors {
            tx.execute(
                "INSERT INTO cursors (village, cursor) VALUES (?1, ?2)
                 ON CONFLICT (village) DO UPDATE SET cursor = max(cursor, excluded.cursor)",
                params![village, *cursor as i64],
            )?;
        }
        if let Some(villages) = &commit.villages {
            tx.execute("DELETE FROM villages", [])?;
            for v in villages {
                tx.execute("INSERT OR IGNORE INTO villages (code) VALUES (?1)", params![v])?;
            }
        }
        if let Some((village, after, seq)) = &commit.pack {
            match after {
                Some(after) => {
                    tx.execute(
                        "INSERT INTO pack_progress (village, after, seq) VALUES (?1, ?2, ?3)
                         ON CONFLICT (village) DO UPDATE SET after = excluded.after, seq = min(seq, excluded.seq)",
                        params![village, after, *seq as i64],
                    )?;
                }
                None => {
                    let started: Option<i64> = tx
                        .query_row("SELECT seq FROM pack_progress WHERE village = ?1", params![village], |r| r.get(0))
                        .optional()?;
                    let cursor = started.map(|s| s.min(*seq as i64)).unwrap_or(*seq as i64);
                    tx.execute("DELETE FROM pack_progress WHERE village = ?1", params![village])?;
                    tx.execute(
                        "INSERT INTO cursors (village, cursor) VALUES (?1, ?2)
                         ON CONFLICT (village) DO UPDATE SET cursor = excluded.cursor",
                        params![village, cursor],
                    )?;
                }
            }
        }
        if commit.pack.is_none() {
            tx.execute("DELETE FROM sync_state", [])?;
        }
        Ok(())
    }
}

/// How much one round trip asks for. Pages shrink after a cut connection, so a retry on a bad link
/// does not download a whole large answer again, and grow back while round trips are fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    /// Most changes asked for in one sync response.
    pub pull_changes: u32,
    /// Households asked for in one snapshot-pack page.
    pub pack_households: u32,
}

impl PageSizes {
    /// Largest sync page (the server's own cap is 5,000 changes).
    pub const MAX_PULL: u32 = 5000;
    /// Smallest sync page.
    pub const MIN_PULL: u32 = 50;
    /// Largest pack page: a compact (format-2) page's most; a server sending format 1 answers
    /// at most 200.
    pub const MAX_PACK: u32 = crate::sync::MAX_COMPACT_PACK;
    /// Smallest pack page.
    pub const MIN_PACK: u32 = 10;

    fn clamped(self) -> PageSizes {
        PageSizes {
            pull_changes: self.pull_changes.clamp(Self::MIN_PULL, Self::MAX_PULL),
            pack_households: self.pack_households.clamp(Self::MIN_PACK, Self::MAX_PACK),
        }
    }

    /// After a connection broke mid-answer: a quarter of the size (at least the minimum).
    pub fn after_cut(self) -> PageSizes {
        PageSizes { pull_changes: self.pull_changes / 4, pack_households: self.pack_households / 4 }.clamped()
    }

    /// After a quick, complete round trip: twice the size (at most the maximum).
    pub fn after_fast(self) -> PageSizes {
        PageSizes {
            pull_changes: self.pull_changes.saturating_mul(2),
            pack_households: self.pack_households.saturating_mul(2),
        }
        .clamped()
    }
}

impl Default for PageSizes {
    fn default() -> PageSizes {
        PageSizes { pull_changes: 1000, pack_households: Self::MAX_PACK }
    }
}

#[cfg(test)]
mod tests {
    use super::PageSizes;

    #[test]
    fn pages_shrink_after_a_cut_and_grow_back_while_fast_within_bounds() {
        let start = PageSizes::default();
        let cut = start.after_cut();
        assert_eq!(cut, PageSizes { pull_changes: 250, pack_households: PageSizes::MAX_PACK / 4 });
        let floor = cut.after_cut().after_cut().after_cut();
        assert_eq!(floor, PageSizes { pull_changes: PageSizes::MIN_PULL, pack_households: PageSizes::MIN_PACK });
        let mut grown = floor;
        for _ in 0..10 {
            grown = grown.after_fast();
        }
        assert_eq!(grown, PageSizes { pull_changes: PageSizes::MAX_PULL, pack_households: PageSizes::MAX_PACK });
    }
}
