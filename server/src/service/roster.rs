//! Roster import on the server (the wire types of the two-step import, stage chunks then commit
//! them at once, are in `sync_core::protocol`): staged chunks, the DTSEN family-id index a
//! re-import matches on, and the commit that turns a whole import into household documents and
//! feed changes in one transaction; one roster household becomes a new household document, or one
//! change to the household a re-import matches.
//!
//! An import is staged chunk by chunk (each re-checked with the same rules the CLI applied) and
//! committed in one write transaction, so a file either imports whole or not at all, and a retried
//! commit answers what the first one did. A staged chunk sent again replaces the one staged under
//! its number, so a retried upload stages nothing twice.
//!
//! The commit is where a large import spends its time (building the Automerge documents, in one
//! batch each: `Household::create_batched`). It works chunk by chunk: the chunk's matched
//! households are read, its documents built ([`build_chunk`]; nothing there touches the
//! database), then written with one feed append per village. The villages' feed heads are locked first, all of them, in sorted
//! order, as a sync request locks them, so an import and a sync never wait for each other in a
//! circle.

use super::{Service, feed, heads_text};
use crate::storage::{HouseholdWrite, StorageError, Transactions, Tx};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use sync_core::form::FormDefinition;
use sync_core::model::{Editor, Edits, Household, HouseholdId, MemberId, ModelError};
use sync_core::roster::RosterHousehold;
use sync_core::value::FieldValue;
use time::OffsetDateTime;
use uuid::Uuid;

pub use sync_core::protocol::{CHUNK_HOUSEHOLDS, ChunkReply, CommitRequest, ImportSummary, RosterChunk};

/// The save action recorded on documents a re-import updates.
pub const REIMPORT_ACTION: &str = "roster-update";

/// A household document to store for one roster household.
pub struct Imported {
    /// The household's id (new, or the matched one).
    pub id: HouseholdId,
    /// What to write: `None` when a re-import changed nothing.
    pub written: Option<Written>,
}

/// A household document that changed, with its one new change.
pub struct Written {
    /// The whole document, saved.
    pub document: Vec<u8>,
    /// Its heads, comma-separated hex.
    pub heads: String,
    /// The new change's hash, hex (its bytes are in the document).
    pub hash: String,
}

/// Build the new household document for `roster` (one change, written by `editor`).
pub fn create(form: &FormDefinition, roster: &RosterHousehold, editor: &Editor) -> Result<Imported, ModelError> {
    let id = HouseholdId::random();
    let members: Vec<_> = roster.members.iter().map(|m| (MemberId::random(), m.clone())).collect();
    let (household, saved) = Household::create_batched(id, &form.key(), editor, &roster.answers, &members)?;
    let written =
        Written { document: household.save_nocompress(), heads: heads(&household), hash: saved.hash.to_string() };
    Ok(Imported { id, written: Some(written) })
}

/// Bring the matched household `existing` up to `roster`: household answers that differ are set;
/// members are matched by NIK, else by full name, and their differing answers set; members the
/// roster adds are added. Nothing is removed or cleared: field work since the last import (a
/// member who moved out, an answer corrected on a visit) outranks an old list.
pub fn update(mut existing: Household, roster: &RosterHousehold, editor: &Editor) -> Result<Imported, ModelError> {
    let state = existing.state();
    let mut edits = Edits::default();
    for (field, value) in &roster.answers {
        if state.answers.get(field) != Some(value) {
            edits.answers.insert(field.clone(), Some(value.clone()));
        }
    }
    let current: Vec<_> = state.current_members().collect();
    let mut taken: Vec<MemberId> = Vec::new();
    for member in &roster.members {
        let key = |m: &BTreeMap<String, FieldValue>, field: &str| m.get(field).map(|v| v.to_string().to_lowercase());
        let matched = current
            .iter()
            .filter(|c| !taken.contains(&c.id))
            .find(|c| key(member, "nik").is_some() && key(&c.answers, "nik") == key(member, "nik"))
            .or_else(|| {
                current.iter().filter(|c| !taken.contains(&c.id)).find(|c| {
                    key(member, "full_name").is_some() && key(&c.answers, "full_name") == key(member, "full_name")
                })
            });
        match matched {
            Some(c) => {
                taken.push(c.id);
                let changed: BTreeMap<String, Option<FieldValue>> = member
                    .iter()
                    .filter(|(f, v)| c.answers.get(*f) != Some(*v))
                    .map(|(f, v)| (f.clone(), Some(v.clone())))
                    .collect();
                if !changed.is_empty() {
                    edits.edit_members.push((c.id, changed));
                }
            }
            None => edits.add_members.push((MemberId::random(), member.clone())),
        }
    }
    let id = existing.id();
    if edits.is_empty() {
        return Ok(Imported { id, written: None });
    }
    let (_, saved) = existing
        .apply(editor, REIMPORT_ACTION, &edits, |_| Ok::<(), ()>(()))?
        .map_err(|()| ModelError::BadChange("a roster update was refused".into()))?;
    let written = saved.map(|s| Written {
        document: existing.save_nocompress(),
        heads: heads(&existing),
        hash: s.hash.to_string(),
    });
    Ok(Imported { id, written })
}

fn heads(household: &Household) -> String {
    heads_text(household)
}

/// How long the staged chunks of an import that was never committed are kept: a `pilar roster
/// import` stages and commits within minutes, so a day-old uncommitted import was abandoned (the
/// admin's run was cut and they started a new import). Pruned when another import is staged.
pub const STAGED_IMPORT_LIFETIME: time::Duration = time::Duration::days(1);

fn corrupt_json(what: &str, e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(format!("{what}: {e}"))
}

impl Service {
    /// Stage chunk `chunk` of roster import `import` (replacing a chunk of that number), already
    /// checked. Refused once the import is committed.
    pub fn roster_stage(
        &self,
        import: Uuid,
        chunk: u32,
        user: &str,
        households: &[RosterHousehold],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let body = serde_json::to_vec(households).map_err(|e| corrupt_json("roster chunk", e))?;
        let packed = zstd::bulk::compress(&body, 3).map_err(|e| StorageError::Backend(Box::new(e)))?;
        self.db.write(|tx| {
            // Abandoned imports (and their chunks) never pile up.
            tx.prune_staged_imports(now - STAGED_IMPORT_LIFETIME, import)?;
            match tx.roster_import(import)? {
                Some(row) if row.committed_at.is_some() => {
                    return Err(StorageError::Refused(format!(
                        "roster import {import} is already committed; start a new import to load the file again"
                    )));
                }
                Some(_) => {}
                None => tx.insert_roster_import(import, user, now)?,
            }
            tx.put_roster_chunk(import, chunk, &packed)
        })
    }

    /// Apply every staged chunk (`0..chunks`) of an import in one write transaction, as `editor`:
    /// households matched by DTSEN family id are updated, the others created, and their changes
    /// enter the feed. A retried commit returns the first commit's summary.
    pub fn roster_commit(&self, import: Uuid, chunks: u32, editor: &Editor) -> Result<ImportSummary, StorageError> {
        let form = FormDefinition::default_dtsen();
        self.db.write(|tx| commit(tx, import, chunks, editor, form))
    }
}

/// Commit an import inside `tx`: every chunk `0..chunks` must be staged.
fn commit(
    tx: &mut dyn Tx,
    import: Uuid,
    chunks: u32,
    editor: &Editor,
    form: &FormDefinition,
) -> Result<ImportSummary, StorageError> {
    match tx.roster_import(import)? {
        None => {
            return Err(StorageError::Refused(format!(
                "roster import {import} has no staged chunks; send the file again with `pilar roster import`"
            )));
        }
        Some(row) => {
            if let (Some(_), Some(summary)) = (row.committed_at, row.summary) {
                return serde_json::from_str(&summary).map_err(|e| corrupt_json("import summary", e));
            }
        }
    }
    let staged = tx.staged_chunks(import, chunks)?;
    if staged != chunks {
        return Err(StorageError::Refused(format!(
            "roster import {import} has {staged} of its {chunks} chunks staged; send the file again with `pilar roster import`"
        )));
    }
    // Every village's feed head, locked in one order before any is appended to.
    let mut villages: BTreeSet<String> = BTreeSet::new();
    for chunk in 0..chunks {
        let body = staged_chunk(tx, import, chunk)?;
        let keys: Vec<VillageOnly> = serde_json::from_slice(&body).map_err(|e| corrupt_json("roster chunk", e))?;
        villages.extend(keys.into_iter().map(|k| k.village));
    }
    for village in &villages {
        tx.lock_feed_head(village)?;
    }
    // One builder thread makes the documents of a chunk while this one writes the previous
    // chunk: the CPU of the two overlaps, and Automerge's short-lived buffers stay in the
    // builder's own allocator arena instead of interleaving with the database's page cache
    // (which left the server's memory at 200-300 MB for 50,000 rows instead of about 100).
    let mut summary = ImportSummary::default();
    std::thread::scope(|scope| {
        let (jobs, queued) = std::sync::mpsc::sync_channel::<Job>(1);
        let (done, finished) =
            std::sync::mpsc::sync_channel::<(Vec<RosterHousehold>, Result<BuiltChunk, StorageError>)>(1);
        scope.spawn(move || {
            for (households, existing) in queued {
                let built = build_chunk(form, &households, existing, editor);
                if done.send((households, built)).is_err() {
                    break;
                }
            }
        });
        let mut seen: HashSet<String> = HashSet::new();
        let mut in_flight = false;
        for chunk in 0..chunks {
            let job = read_chunk(tx, import, chunk, &mut seen)?;
            jobs.send(job).map_err(|_| builder_gone())?;
            if in_flight {
                let (households, built) = finished.recv().map_err(|_| builder_gone())?;
                store_chunk(tx, &households, &built?, editor, &mut summary)?;
            }
            in_flight = true;
        }
        drop(jobs);
        if in_flight {
            let (households, built) = finished.recv().map_err(|_| builder_gone())?;
            store_chunk(tx, &households, &built?, editor, &mut summary)?;
        }
        Ok::<(), StorageError>(())
    })?;
    let text = serde_json::to_string(&summary).map_err(|e| corrupt_json("import summary", e))?;
    tx.finish_roster_import(import, editor.now, &text)?;
    Ok(summary)
}

/// One chunk for the builder: its households and the stored document each one's family id
/// matched, if any.
type Job = (Vec<RosterHousehold>, Vec<Option<Stored>>);

/// The builder thread stopped early: it panicked.
fn builder_gone() -> StorageError {
    StorageError::Corrupt("building the roster's household documents stopped (a panic, see the log)".into())
}

/// Read staged chunk `chunk` and the households its family ids match; a family id seen in an
/// earlier chunk of the import is refused.
fn read_chunk(tx: &mut dyn Tx, import: Uuid, chunk: u32, seen: &mut HashSet<String>) -> Result<Job, StorageError> {
    let body = staged_chunk(tx, import, chunk)?;
    let households: Vec<RosterHousehold> =
        serde_json::from_slice(&body).map_err(|e| corrupt_json("roster chunk", e))?;
    let mut existing = Vec::with_capacity(households.len());
    for household in &households {
        if let Some(family) = &household.family_id
            && !seen.insert(family.clone())
        {
            return Err(StorageError::Refused(format!(
                "DTSEN family id at row {} appears twice in the roster; keep one row (or one family) per id",
                household.row
            )));
        }
        existing.push(match &household.family_id {
            Some(family) => matched(tx, family)?,
            None => None,
        });
    }
    Ok((households, existing))
}

/// A staged household's village alone, read before the commit locks the villages' feed heads.
#[derive(serde::Deserialize)]
struct VillageOnly {
    village: String,
}

/// Chunk `chunk` of `import` as staged (JSON).
fn staged_chunk(tx: &mut dyn Tx, import: Uuid, chunk: u32) -> Result<Vec<u8>, StorageError> {
    let packed = tx.roster_chunk(import, chunk)?.ok_or_else(|| {
        StorageError::Refused(format!(
            "roster import {import} lost chunk {chunk}; send the file again with `pilar roster import`"
        ))
    })?;
    zstd::stream::decode_all(packed.as_slice()).map_err(|e| StorageError::Backend(Box::new(e)))
}

/// A household a family id was imported as: its id and stored document.
type Stored = (HouseholdId, Vec<u8>);

/// The household a family id was imported as: its id and stored document.
fn matched(tx: &mut dyn Tx, family: &str) -> Result<Option<Stored>, StorageError> {
    let Some(id) = tx.family_household(family)? else { return Ok(None) };
    Ok(tx.household(id)?.map(|row| (id, row.doc)))
}

/// One chunk's households as built, every byte in one buffer: a chunk's thousand documents and
/// changes kept as allocations of their own, each made while Automerge allocated and freed its
/// large DEFLATE buffers around it, scattered glibc's heaps (a 100,000-row import's server held
/// 350 MB with 66 MB in use, 120 MB before documents were built in a batch).
struct BuiltChunk {
    /// Documents, heads and change hashes, one after the other (the feed takes a change's bytes
    /// from its document).
    bytes: Vec<u8>,
    /// Each household, in the chunk's order.
    households: Vec<Built>,
}

/// One roster household as built: where its bytes are in [`BuiltChunk::bytes`].
struct Built {
    /// The household's id (new, or the matched one).
    id: HouseholdId,
    /// Whether it updates a household matched by family id.
    is_update: bool,
    /// The saved document, its heads and the new change's hash; `None` when a re-import changed
    /// nothing.
    written: Option<[Range<usize>; 3]>,
}

/// What to write for one household of a [`BuiltChunk`].
struct WrittenBytes<'a> {
    document: &'a [u8],
    heads: &'a str,
    hash: &'a str,
}

impl BuiltChunk {
    /// What to write for the household at `index`, if it changed.
    fn written(&self, index: usize) -> Result<Option<WrittenBytes<'_>>, StorageError> {
        let Some([document, heads, hash]) = &self.households[index].written else { return Ok(None) };
        let text = |range: &Range<usize>| {
            std::str::from_utf8(&self.bytes[range.clone()])
                .map_err(|_| StorageError::Corrupt("a built roster household's heads are not text".into()))
        };
        Ok(Some(WrittenBytes { document: &self.bytes[document.clone()], heads: text(heads)?, hash: text(hash)? }))
    }
}

/// Build the documents of one chunk's households (`existing`: the stored document each one's
/// family id matched, if any): this is where an import spends its CPU, and nothing here reads or
/// writes the database. The households of one chunk are built one after the other: on two busy
/// cores, splitting a chunk over two threads started for it took more CPU (each new thread's
/// allocations fault in fresh pages for every DEFLATE state Automerge makes) and more time
/// (50,000 rows: 7.0-12.4 s on one thread, 9.6-17.7 s on two, alternating runs).
fn build_chunk(
    form: &FormDefinition,
    households: &[RosterHousehold],
    existing: Vec<Option<Stored>>,
    editor: &Editor,
) -> Result<BuiltChunk, StorageError> {
    // About 1.3 KB a new household (document and change); room reserved up front.
    let mut chunk = BuiltChunk {
        bytes: Vec::with_capacity(households.len() * 2048),
        households: Vec::with_capacity(households.len()),
    };
    for (household, existing) in households.iter().zip(existing) {
        let is_update = existing.is_some();
        let imported = match existing {
            Some((id, doc)) => {
                Household::load(id, &doc, editor.device).and_then(|found| update(found, household, editor))
            }
            None => create(form, household, editor),
        }
        .map_err(|e| StorageError::Corrupt(format!("roster row {}: {e}", household.row)))?;
        let mut keep = |bytes: &[u8]| {
            let start = chunk.bytes.len();
            chunk.bytes.extend_from_slice(bytes);
            start..chunk.bytes.len()
        };
        let written = imported.written.map(|w| [keep(&w.document), keep(w.heads.as_bytes()), keep(w.hash.as_bytes())]);
        chunk.households.push(Built { id: imported.id, is_update, written });
    }
    Ok(chunk)
}

/// Write one chunk's built households: their changes into the feed, one append per village (in
/// file order within it), then each document with its own change's position, and the
/// family-id index; count them in `summary`.
fn store_chunk(
    tx: &mut dyn Tx,
    households: &[RosterHousehold],
    built: &BuiltChunk,
    editor: &Editor,
    summary: &mut ImportSummary,
) -> Result<(), StorageError> {
    for one in &built.households {
        match (&one.written, one.is_update) {
            (None, _) => summary.unchanged += 1,
            (Some(_), true) => summary.updated += 1,
            (Some(_), false) => summary.created += 1,
        }
    }
    // The first import trains the database's compression dictionary (`service::kept`) on its
    // documents.
    let mut written = Vec::with_capacity(built.households.len());
    for i in 0..built.households.len() {
        if let Some(w) = built.written(i)? {
            written.push(w);
        }
    }
    if written.len() >= super::kept::MIN_SAMPLES && tx.current_kept_dictionary()?.is_none() {
        let samples: Vec<&[u8]> = written.iter().map(|w| w.document).collect();
        super::kept::train_dictionary_if_none(tx, &samples, editor.now)?;
    }
    let mut by_village: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (household, one)) in households.iter().zip(&built.households).enumerate() {
        if one.written.is_some() {
            by_village.entry(household.village.as_str()).or_default().push(i);
        }
    }
    for (village, indexes) in by_village {
        let mut entries = Vec::with_capacity(indexes.len());
        for &i in &indexes {
            if let Some(written) = built.written(i)? {
                let household = built.households[i].id;
                entries.push(feed::Entry { hash: written.hash, household, device: editor.device, user: &editor.user });
            }
        }
        let appended = feed::append_each(tx, village, &entries, editor.now)?;
        for (&i, position) in indexes.iter().zip(appended.positions) {
            let Some(written) = built.written(i)? else { continue };
            let id = built.households[i].id;
            tx.put_household(&HouseholdWrite {
                id,
                village,
                doc: written.document,
                heads: written.heads,
                // A change stored already (never, for a change just made) keeps its position.
                position: position.unwrap_or(appended.head),
                at: editor.now,
            })?;
            if let Some(family) = &households[i].family_id {
                tx.put_family(family, id)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The commit on a real SQLite database: several chunks over several villages, a re-import,
    //! and a family id used twice. Synthetic households only (domain.md §3).

    use super::*;
    use crate::storage::SqliteDatabase;
    use sync_core::model::DeviceId;

    fn storage() -> (tempfile::TempDir, Service) {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
        (dir, Service::new(std::sync::Arc::new(db)))
    }

    const VILLAGES: [&str; 3] = ["73.14.01.1001", "73.14.01.1002", "73.14.01.2004"];

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-20 12:00 UTC)
    }

    /// Household `n` of a synthetic roster, its village chosen by `n`, with `address` as written.
    fn household(n: usize, address: &str) -> RosterHousehold {
        let text = |s: &str| FieldValue::Text(s.to_string());
        let mut household = RosterHousehold::new(n + 2);
        household.answers = BTreeMap::from([
            ("dtsen_family_id".to_string(), text(&format!("SYN-{n:04}"))),
            ("village_code".to_string(), text(VILLAGES[n % VILLAGES.len()])),
            ("head_name".to_string(), text("La Sintetis")),
            ("address".to_string(), text(address)),
        ]);
        household.push_member(
            n + 2,
            BTreeMap::from([
                ("full_name".to_string(), text("La Sintetis")),
                ("sex".to_string(), FieldValue::Int(1)),
                ("relationship".to_string(), FieldValue::Int(1)),
                ("presence".to_string(), FieldValue::Int(1)),
            ]),
        );
        household.sync_keys();
        household
    }

    /// Stage `households` in chunks of 7 and commit them as one import.
    fn import(
        service: &Service,
        households: &[RosterHousehold],
        editor: &Editor,
    ) -> Result<ImportSummary, StorageError> {
        let import = Uuid::new_v4();
        let chunks: Vec<&[RosterHousehold]> = households.chunks(7).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            service.roster_stage(import, n as u32, &editor.user, chunk, now()).expect("stage");
        }
        service.roster_commit(import, chunks.len() as u32, editor)
    }

    /// Every village's feed: (position, household) in position order.
    fn feeds(service: &Service) -> BTreeMap<&'static str, Vec<(u64, HouseholdId)>> {
        VILLAGES
            .iter()
            .map(|village| {
                let changes = service
                    .database()
                    .read(|tx| {
                        let head = tx.feed_head(village)?;
                        tx.feed_after(village, 0, head, None, 1000)
                    })
                    .expect("feed");
                (*village, changes.iter().map(|c| (c.position, c.household)).collect())
            })
            .collect()
    }

    #[test]
    fn a_roster_of_several_chunks_and_villages_commits_whole_and_a_reimport_adds_only_what_changed() {
        let (_dir, service) = storage();
        let editor = Editor { user: "admin".into(), device: DeviceId::random().on_server(), now: now() };
        let roster: Vec<RosterHousehold> = (0..20).map(|n| household(n, "Jl. Contoh No. 1")).collect();
        let summary = import(&service, &roster, &editor).expect("commit");
        assert_eq!(summary, ImportSummary { created: 20, updated: 0, unchanged: 0 });

        // Each village's feed is gapless from 1 and holds its households in file order, once.
        let first = feeds(&service);
        for (i, village) in VILLAGES.iter().enumerate() {
            let positions: Vec<u64> = first[village].iter().map(|(p, _)| *p).collect();
            let expected = roster.iter().skip(i).step_by(VILLAGES.len()).count() as u64;
            assert_eq!(positions, (1..=expected).collect::<Vec<_>>(), "{village}");
        }
        let family = |n: usize| {
            let id = service.database().read(|tx| tx.family_household(&format!("SYN-{n:04}"))).expect("read");
            id.expect("the family id is indexed")
        };
        assert_eq!(first[VILLAGES[1]][0].1, family(1), "row order within a village");
        assert_eq!(first[VILLAGES[1]][1].1, family(4));
        for n in [0, 13, 19] {
            let row = service.database().read(|tx| tx.household(family(n))).expect("read").expect("stored");
            let state = Household::load(family(n), &row.doc, editor.device).expect("loads").state();
            assert_eq!(state.answers.get("dtsen_family_id"), Some(&FieldValue::Text(format!("SYN-{n:04}"))));
            assert_eq!(row.village, VILLAGES[n % VILLAGES.len()]);
        }

        // The same roster again writes nothing; one changed address is one change.
        let again = import(&service, &roster, &editor).expect("re-import");
        assert_eq!(again, ImportSummary { created: 0, updated: 0, unchanged: 20 });
        assert_eq!(feeds(&service), first);
        let mut edited = roster.clone();
        edited[13] = household(13, "Jl. Contoh No. 5");
        let updated = import(&service, &edited, &editor).expect("re-import with a change");
        assert_eq!(updated, ImportSummary { created: 0, updated: 1, unchanged: 19 });
        let village = VILLAGES[13 % VILLAGES.len()];
        let last = feeds(&service)[village].last().copied().expect("a change");
        assert_eq!(last, (first[village].len() as u64 + 1, family(13)));
    }

    #[test]
    fn a_family_id_in_two_chunks_refuses_the_whole_import() {
        let (_dir, service) = storage();
        let editor = Editor { user: "admin".into(), device: DeviceId::random().on_server(), now: now() };
        let mut roster: Vec<RosterHousehold> = (0..10).map(|n| household(n, "Jl. Contoh No. 1")).collect();
        roster[9] = household(2, "Jl. Contoh No. 2");
        let refused = import(&service, &roster, &editor).expect_err("refused");
        assert!(refused.to_string().contains("appears twice"), "{refused}");
        assert!(feeds(&service).values().all(Vec::is_empty), "nothing was stored");
        let stored = service.database().read(|tx| tx.family_household("SYN-0000")).expect("read");
        assert_eq!(stored, None);
    }
}
