//! The feed: every admitted change of a village, numbered so that a device following a cursor
//! never skips one, whatever order concurrent transactions commit in.
//!
//! The rule (ARCHITECTURE.md, "the feed cursor"): a change's position is counted per village from
//! the village's head, which the appending transaction locks ([`Tx::lock_feed_head`]) and moves
//! forward before it commits. Positions of one village are therefore gapless and commit in
//! order: when a reader sees position `p`, every position below `p` of that village committed
//! before it. A reader reads the head first and then the changes up to that head, and moves its
//! cursor only to a position it read or to that head, so it never steps past a change that is not
//! yet visible to it (a second statement may see more than the first, never less). Villages are
//! independent: appends to different villages never wait for each other.

use super::recent_changes::RecentChanges;
use crate::storage::{FeedChange, NewChange, ReadTx, StorageError, Tx};
use automerge::ChangeHash;
use sync_core::model::{DeviceId, Household, HouseholdId};
use time::OffsetDateTime;

/// A change to append: what it is and who wrote it (its position is given by [`append`]). The
/// writer stores the household's document, which holds the change, in the same transaction: the
/// feed keeps no second copy of the change's bytes (issue 15, server disk).
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The change hash (hex).
    pub hash: &'a str,
    /// The household it belongs to.
    pub household: HouseholdId,
    /// The device it is recorded for.
    pub device: DeviceId,
    /// The user who wrote it.
    pub user: &'a str,
}

/// Append `entries` (in causal order) to `village`'s feed inside `tx`: each one not stored yet
/// gets the next position after the village's head, which stays locked until `tx` commits.
/// Returns the village's head afterwards (the position of the last change appended, or of the
/// village's last change when every entry was stored already).
pub fn append(
    tx: &mut dyn Tx,
    village: &str,
    entries: &[Entry<'_>],
    received_at: OffsetDateTime,
) -> Result<u64, StorageError> {
    let mut appender = Appender::default();
    let head = appender.append(tx, village, entries, received_at)?;
    appender.flush(tx)?;
    Ok(head)
}

/// What [`append_each`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The village's head afterwards, as [`append`] returns it.
    pub head: u64,
    /// Each entry's new position, in the order given; `None` for an entry stored already (it
    /// keeps the position it has).
    pub positions: Vec<Option<u64>>,
}

/// [`append`], also saying where each entry went: for writers that append many households'
/// changes under one lock of the head (a roster import) and store each household with its own
/// change's position.
pub fn append_each(
    tx: &mut dyn Tx,
    village: &str,
    entries: &[Entry<'_>],
    received_at: OffsetDateTime,
) -> Result<Appended, StorageError> {
    let mut appender = Appender::default();
    let appended = appender.append_each(tx, village, entries, received_at)?;
    appender.flush(tx)?;
    Ok(appended)
}

/// Many appends in one transaction (a sync request's households): each village's head is locked
/// and read once and written once, at [`Appender::flush`], instead of three statements per
/// household. Until it is flushed the heads it moved exist only here, so nothing else in the
/// transaction may append (or read a head) in between: flush first.
#[derive(Debug, Default)]
pub struct Appender {
    /// Per village locked: (head as stored, head after the appends so far).
    heads: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Appender {
    /// Lock these villages' heads now, in sorted order, so two transactions over the same villages
    /// queue instead of each holding one head and waiting for the other.
    pub fn lock<'a>(tx: &mut dyn Tx, villages: impl IntoIterator<Item = &'a str>) -> Result<Appender, StorageError> {
        let sorted: std::collections::BTreeSet<&str> = villages.into_iter().collect();
        let mut appender = Appender::default();
        for village in sorted {
            let head = tx.lock_feed_head(village)?;
            appender.heads.insert(village.to_string(), (head, head));
        }
        Ok(appender)
    }

    /// [`append`] without writing the head yet (a village not locked yet is locked now).
    pub fn append(
        &mut self,
        tx: &mut dyn Tx,
        village: &str,
        entries: &[Entry<'_>],
        received_at: OffsetDateTime,
    ) -> Result<u64, StorageError> {
        Ok(self.append_each(tx, village, entries, received_at)?.head)
    }

    /// [`append_each`] without writing the head yet (a village not locked yet is locked now).
    pub fn append_each(
        &mut self,
        tx: &mut dyn Tx,
        village: &str,
        entries: &[Entry<'_>],
        received_at: OffsetDateTime,
    ) -> Result<Appended, StorageError> {
        let next = match self.heads.get_mut(village) {
            Some((_, next)) => next,
            None => {
                let head = tx.lock_feed_head(village)?;
                &mut self.heads.entry(village.to_string()).or_insert((head, head)).1
            }
        };
        let mut positions = Vec::with_capacity(entries.len());
        for entry in entries {
            let change = NewChange {
                position: *next + 1,
                hash: entry.hash,
                household: entry.household,
                village,
                device: entry.device,
                user: entry.user,
                // Its household's document, stored in the same transaction by every writer,
                // holds it: the feed keeps its place, `read` takes its bytes from the document.
                bytes: &[],
                received_at,
            };
            // A change already stored keeps its position and takes none: positions stay gapless.
            if tx.insert_change(&change)? {
                *next += 1;
                positions.push(Some(*next));
            } else {
                positions.push(None);
            }
        }
        Ok(Appended { head: *next, positions })
    }

    /// Write every head that moved (the locks stay held until the transaction ends); afterwards
    /// the next append reads the heads again.
    pub fn flush(&mut self, tx: &mut dyn Tx) -> Result<(), StorageError> {
        for (village, (stored, next)) in std::mem::take(&mut self.heads) {
            if next != stored {
                tx.set_feed_head(&village, next)?;
            }
        }
        Ok(())
    }
}

/// One read of a village's feed after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The changes read, by position (bytes empty where the document holds them: [`fill_bytes`]).
    pub changes: Vec<FeedChange>,
    /// Where the read started: the cursor given, or 0 when that cursor was past the head. The
    /// changes are exactly those after `from` up to `cursor` not left out for the reader, so the
    /// same read can be made again from these two ([`read_range`]).
    pub from: u64,
    /// The cursor to read from next: the last position returned when more wait, else the head
    /// read before the changes.
    pub cursor: u64,
    /// Whether more changes wait after `cursor`.
    pub more: bool,
}

/// Read up to `limit` (at least 1) changes of `village` after `cursor`, leaving out those
/// recorded for `exclude` (a device never gets its own changes back; its cursor still moves past
/// them).
///
/// A cursor above the village's head did not come from this numbering (a database restored from
/// an older backup): the village is read again from the start, which is safe, since devices
/// apply a change they hold as a no-op.
pub fn read(
    tx: &mut dyn ReadTx,
    village: &str,
    cursor: u64,
    exclude: Option<DeviceId>,
    limit: u32,
) -> Result<Page, StorageError> {
    let limit = limit.max(1);
    // The head first: every position up to it committed before this read, so the changes read
    // next include all of them, whether or not both reads share one snapshot.
    let head = tx.feed_head(village)?;
    let after = if cursor > head { 0 } else { cursor };
    let mut changes = tx.feed_after(village, after, head, exclude, limit + 1)?;
    let more = changes.len() > limit as usize;
    changes.truncate(limit as usize);
    let cursor = match changes.last() {
        Some(last) if more => last.position,
        _ => head,
    };
    Ok(Page { changes, from: after, cursor, more })
}

/// The changes of `village` after `from` up to `upto` not recorded for `exclude`, by position:
/// a [`Page`] read again from its `from` and `cursor` (positions are gapless and commit in
/// order, so the same range always holds the same changes).
pub fn read_range(
    tx: &mut dyn ReadTx,
    village: &str,
    from: u64,
    upto: u64,
    exclude: Option<DeviceId>,
) -> Result<Vec<FeedChange>, StorageError> {
    if upto <= from {
        return Ok(Vec::new());
    }
    let span = u32::try_from(upto - from).unwrap_or(u32::MAX);
    tx.feed_after(village, from, upto, exclude, span)
}

/// Give every change of `changes` read with empty bytes (the feed kept only its place) its bytes:
/// from `recent` when kept there, else from its household's stored document, each document loaded
/// once (and what it gives kept in `recent`). A document that lacks a change its feed lists is
/// damage, said as such.
pub fn fill_bytes(tx: &mut dyn ReadTx, recent: &RecentChanges, changes: &mut [FeedChange]) -> Result<(), StorageError> {
    let mut wanted: std::collections::BTreeMap<HouseholdId, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, change) in changes.iter_mut().enumerate() {
        if !change.bytes.is_empty() {
            continue;
        }
        match recent.get(&change.hash) {
            Some(bytes) => change.bytes = bytes.to_vec(),
            None => wanted.entry(change.household).or_default().push(i),
        }
    }
    for (id, indexes) in wanted {
        let damaged = |what: String| StorageError::Corrupt(format!("household {id}: {what}"));
        let row = tx.household(id)?.ok_or_else(|| damaged("its feed lists changes but it is not stored".into()))?;
        let household = Household::load(id, &row.doc, DeviceId(uuid::Uuid::nil()))
            .map_err(|e| damaged(format!("its stored document does not load: {e}")))?;
        for i in indexes {
            let change = &mut changes[i];
            let hash: ChangeHash =
                change.hash.parse().map_err(|_| damaged(format!("its feed names change {:?}", change.hash)))?;
            change.bytes = household
                .change_bytes(&hash)
                .ok_or_else(|| damaged(format!("its document lacks change {} of its feed", change.hash)))?;
            recent.put(&change.hash, &change.bytes);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{SqliteDatabase, Transactions};

    const VILLAGE: &str = "73.14.01.1001";

    fn append_as(db: &SqliteDatabase, device: DeviceId, hashes: &[&str]) -> u64 {
        let household = HouseholdId(uuid::Uuid::from_u128(1));
        let entries: Vec<Entry<'_>> =
            hashes.iter().map(|hash| Entry { hash, household, device, user: "pkh.sintetis" }).collect();
        db.write(|tx| append(tx, VILLAGE, &entries, OffsetDateTime::UNIX_EPOCH)).expect("append")
    }

    #[test]
    fn append_each_says_where_each_change_went_and_a_stored_one_takes_no_position() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
        let device = DeviceId(uuid::Uuid::from_u128(7));
        assert_eq!(append_as(&db, device, &["a"]), 1);
        let household = HouseholdId(uuid::Uuid::from_u128(2));
        let entries: Vec<Entry<'_>> =
            ["b", "a", "c"].iter().map(|hash| Entry { hash, household, device, user: "admin" }).collect();
        let appended =
            db.write(|tx| append_each(tx, VILLAGE, &entries, OffsetDateTime::UNIX_EPOCH)).expect("append each");
        assert_eq!(appended, Appended { head: 3, positions: vec![Some(2), None, Some(3)] });
    }

    #[test]
    fn a_reader_pages_skips_its_own_changes_and_restarts_a_cursor_from_elsewhere() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
        let (me, colleague) = (DeviceId(uuid::Uuid::from_u128(7)), DeviceId(uuid::Uuid::from_u128(8)));
        assert_eq!(append_as(&db, colleague, &["a", "b", "c"]), 3);
        assert_eq!(append_as(&db, me, &["d", "a"]), 4, "a stored change takes no position");
        assert_eq!(append_as(&db, colleague, &["e"]), 5);
        let read_from = |cursor, limit| db.read(|tx| read(tx, VILLAGE, cursor, Some(me), limit)).expect("read");
        let positions = |page: &Page| page.changes.iter().map(|c| c.position).collect::<Vec<_>>();

        let first = read_from(0, 2);
        assert_eq!((positions(&first), first.cursor, first.more), (vec![1, 2], 2, true));
        let rest = read_from(first.cursor, 2);
        assert_eq!((positions(&rest), rest.cursor, rest.more), (vec![3, 5], 5, false), "position 4 is mine");
        let nothing = read_from(5, 2);
        assert_eq!((positions(&nothing), nothing.cursor, nothing.more), (vec![], 5, false));
        // Only my own change after the cursor: nothing to send, and the cursor passes it.
        let own = db.read(|tx| read(tx, VILLAGE, 3, Some(me), 1)).expect("read");
        assert_eq!((own.changes.len(), own.cursor), (1, 5), "position 5 is the colleague's");
        let mine_only = db.read(|tx| read(tx, VILLAGE, 3, Some(colleague), 10)).expect("read");
        assert_eq!((positions(&mine_only), mine_only.cursor), (vec![4], 5));
        // A cursor this numbering never handed out is read again from the start.
        let foreign = read_from(99, 10);
        assert_eq!((positions(&foreign), foreign.cursor), (vec![1, 2, 3, 5], 5));
    }
}
