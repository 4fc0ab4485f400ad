//! Sync: one request is one write transaction (admitted changes, documents, the feed read and
//! the encoded response remembered under (device, batch) commit together), so nothing is
//! acknowledged before it is durable and a retried batch gets the same bytes back. Also the
//! snapshot packs of a first download and the whole documents a device repairs from.
//!
//! A remembered response keeps the answer without its pulled changes, and where the pull read
//! each village's feed from: a replay reads the same ranges again ([`replay`]), so the changes'
//! bytes are kept once, in the documents.
//!
//! Remembered responses are bounded: a device keeps at most one (its pending batch's), and none
//! outlives [`STORED_RESPONSE_LIFETIME`]. Without its stored response a retried batch is simply
//! handled again, which is safe: changes are stored by hash, so the device's own changes come back
//! `Known` and are acknowledged.

use super::recent_changes::RecentChanges;
use super::scope::SyncCaller;
use super::{Service, corrupt, feed, fold};
use crate::storage::{FeedChange, HouseholdWrite, ReadTx, StorageError, StoredResponse, Transactions, Tx};
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, BTreeSet};
use sync_core::form::FormSet;
use sync_core::model::{Household, HouseholdId};
use sync_core::sync::{
    CompactPageBuilder, PackPage, PackedHousehold, PullHousehold, PushHousehold, Pusher, Rejection, SyncRequest,
    SyncResponse, Verdict, admit, encode_compact,
};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

/// How long a stored sync response is kept for a device that never comes back to retry or move on
/// (a lost or retired tablet). A week covers a device offline for days between a lost answer and its
/// retry; a later retry is handled again instead of replayed, which is safe (see the module doc).
pub const STORED_RESPONSE_LIFETIME: time::Duration = time::Duration::days(7);

/// Expired stored responses deleted per sync transaction, so pruning never makes one request slow.
const EXPIRED_RESPONSES_PER_SYNC: u32 = 64;

/// Most changes one sync response carries, whatever the device asks for.
const MAX_CHANGES_PER_RESPONSE: u32 = 5000;

#[cfg(test)]
mod grace_tests;
#[cfg(test)]
mod tests;

impl Service {
    /// Handle one sync request: admit the pushed changes, read the feed after the caller's
    /// cursors, and remember the encoded response under (device, batch) so a retry gets the same
    /// bytes back. Returns the encoded response body.
    ///
    /// The checks (load, apply, validate, save each document: the CPU) run in a read transaction
    /// first, so concurrent devices use every core; the write transaction makes again only the
    /// decisions whose household moved in between.
    pub fn sync(
        &self,
        caller: &SyncCaller,
        request: &SyncRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StorageError> {
        let decisions = self.db.read(|tx| {
            if has_replay(tx, caller, request)? {
                return Ok(None);
            }
            let forms = self.forms.set(tx)?;
            request
                .push
                .iter()
                .map(|push| decide(tx, caller, push, &forms, now))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })?;
        // The feeds the decided changes go to: on PostgreSQL the write queues behind other
        // appenders to them before it begins, instead of losing a village's head and running again.
        let appending: BTreeSet<String> = decisions
            .iter()
            .flatten()
            .filter_map(|d| match &d.outcome {
                Outcome::Store { village, .. } => Some(village.clone()),
                _ => None,
            })
            .collect();
        let body = self.db.write_appending(&appending, |tx| {
            if let Some(body) = replay(tx, &self.recent, caller, request)? {
                return Ok(body);
            }
            let pulling = Pulling { recent: &self.recent, max_changes: MAX_CHANGES_PER_RESPONSE };
            let forms = self.forms.set(tx)?;
            commit(tx, &pulling, caller, request, decisions.as_deref(), &forms, now)
        })?;
        // Documents of households the server already had, rewritten: what the dictionary must fit.
        let rewritten = decisions.iter().flatten().filter_map(|d| match (&d.heads, &d.outcome) {
            (Some(_), Outcome::Store { document, .. }) => Some(document.as_slice()),
            _ => None,
        });
        self.retrainer.note(rewritten);
        self.retrainer.spawn_if_due(self.db.clone(), now);
        Ok(body)
    }

    /// Train the compression dictionary again now if rewritten documents made it due
    /// ([`super::kept::Retrainer`]); sync starts this in the background after each request.
    pub fn retrain_dictionary_if_due(&self, now: OffsetDateTime) -> Result<super::kept::Retrained, StorageError> {
        self.retrainer.retrain_if_due(self.db.as_ref(), now)
    }

    /// Wait for a dictionary training sync started in the background, if any (tests).
    pub fn wait_for_dictionary_training(&self) {
        self.retrainer.wait();
    }

    /// One page of a village's snapshot pack: compacted documents after `after`, by id, with the
    /// village's feed head read first (the device's cursor becomes the smallest of its pages', so
    /// whatever changed during the download arrives by the feed).
    pub fn pack_page(&self, village: &str, after: Option<HouseholdId>, limit: u32) -> Result<PackPage, StorageError> {
        self.db.read(|tx| {
            let seq = tx.feed_head(village)?;
            let mut households: Vec<PackedHousehold> = tx
                .village_households(village, after, limit.saturating_add(1))?
                .into_iter()
                .map(|(household, doc)| PackedHousehold { household, document: ByteBuf::from(doc) })
                .collect();
            let next_after = if households.len() > limit as usize {
                households.truncate(limit as usize);
                households.last().map(|h| h.household)
            } else {
                None
            };
            let total = tx.village_household_count(village)?;
            Ok(PackPage { village: village.to_string(), seq, households, next_after, total })
        })
    }

    /// One page of a village's snapshot pack in the compact form (format 2), encoded: each
    /// household's changes as rows, one zstd stream (`sync_core::sync::CompactPackPage`). The
    /// documents are read in one read transaction with the village's feed head; turning them
    /// into rows and compressing happen after it. A page already encoded at the current head is
    /// answered from [`pack_cache`](super::pack_cache) without reading the documents.
    pub fn compact_pack_page(
        &self,
        village: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<std::sync::Arc<Vec<u8>>, StorageError> {
        use super::pack_cache::PageKey;
        let key = |seq| PageKey { village: village.to_string(), after, limit, seq };
        let head = self.db.read(|tx| tx.feed_head(village))?;
        if let Some(body) = self.packs.get(&key(head)) {
            return Ok(body);
        }
        let (seq, mut documents, total) = self.db.read(|tx| {
            let seq = tx.feed_head(village)?;
            let documents = tx.village_households(village, after, limit.saturating_add(1))?;
            Ok((seq, documents, tx.village_household_count(village)?))
        })?;
        let next_after = if documents.len() > limit as usize {
            documents.truncate(limit as usize);
            documents.last().map(|(h, _)| *h)
        } else {
            None
        };
        let mut builder = CompactPageBuilder::new();
        for (household, document) in &documents {
            builder.push(*household, document);
        }
        drop(documents);
        let body = std::sync::Arc::new(encode_compact(&builder.finish(village, seq, next_after, total)));
        self.packs.put(key(seq), body.clone());
        Ok(body)
    }

    /// The stored documents of these households with their villages (unknown ids are left out):
    /// what a device restores a damaged copy from.
    pub fn documents(&self, ids: &[HouseholdId]) -> Result<Vec<(HouseholdId, String, Vec<u8>)>, StorageError> {
        self.db.read(|tx| {
            let mut out = Vec::new();
            for id in ids {
                if let Some(row) = tx.household(*id)? {
                    out.push((*id, row.village, row.doc));
                }
            }
            Ok(out)
        })
    }
}

/// The stored response of an earlier request with the same batch id, if any, and only if it was
/// made for the same `max_changes`: a device that shrank its page after a cut response must not
/// get the big answer again, so that batch is handled again (and its stored response replaced).
fn replayable(
    tx: &mut dyn ReadTx,
    caller: &SyncCaller,
    request: &SyncRequest,
) -> Result<Option<StoredResponse>, StorageError> {
    let stored = tx.stored_response(caller.device, request.batch)?;
    // Responses stored before the page size was recorded are replayed as they are.
    Ok(stored.filter(|s| s.max_changes.is_none_or(|m| m == request.max_changes)))
}

/// Whether [`replay`] will answer `request` (without reading the pulled changes again).
fn has_replay(tx: &mut dyn ReadTx, caller: &SyncCaller, request: &SyncRequest) -> Result<bool, StorageError> {
    Ok(replayable(tx, caller, request)?.is_some())
}

/// The answer sent to an earlier request with the same batch id, byte for byte, if it is to be
/// replayed ([`replayable`]). A response stored by its feed positions gets its pull read again:
/// the same ranges of the same villages hold the same changes (the feed only grows, in order,
/// and the documents holding the changes' bytes are never deleted), grouped as [`pull`] grouped
/// them, so the encoding is the same.
fn replay(
    tx: &mut dyn ReadTx,
    recent: &RecentChanges,
    caller: &SyncCaller,
    request: &SyncRequest,
) -> Result<Option<Vec<u8>>, StorageError> {
    let Some(stored) = replayable(tx, caller, request)? else {
        return Ok(None);
    };
    let Some(from) = stored.pulled_from else {
        return Ok(Some(stored.body));
    };
    let damaged = |what: String| corrupt(format!("the stored answer to batch {}: {what}", request.batch));
    let mut response: SyncResponse =
        sync_core::sync::decode(&stored.body, STORED_BODY_LIMIT).map_err(|e| damaged(e.to_string()))?;
    let mut changes = Vec::new();
    for (village, upto) in &response.cursors {
        let start = *from.get(village).ok_or_else(|| damaged(format!("no start for village {village}")))?;
        let mut read = feed::read_range(tx, village, start, *upto, Some(caller.device))?;
        feed::fill_bytes(tx, recent, &mut read)?;
        changes.append(&mut read);
    }
    response.pull = grouped(changes);
    Ok(Some(sync_core::sync::encode(&response)))
}

/// Most bytes a stored response (without its pull) may expand to when it is read back: far above
/// any real one, so only damage reaches it.
const STORED_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Remember the answer to `request` (given without its pull), in place of every earlier response
/// of the device: a device retries only its pending batch, so a new batch id proves it applied the
/// previous answer. The pulled changes are not stored again, only where the pull read the feed
/// from (`pulled_from`); the rest of the answer is. Also drops a few responses older than
/// [`STORED_RESPONSE_LIFETIME`].
fn remember(
    tx: &mut dyn Tx,
    caller: &SyncCaller,
    request: &SyncRequest,
    without_pull: &SyncResponse,
    pulled_from: BTreeMap<String, u64>,
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    tx.forget_responses(caller.device)?;
    tx.prune_responses(now - STORED_RESPONSE_LIFETIME, EXPIRED_RESPONSES_PER_SYNC)?;
    let stored = StoredResponse {
        body: sync_core::sync::encode(without_pull),
        max_changes: Some(request.max_changes),
        pulled_from: Some(pulled_from),
    };
    tx.store_response(caller.device, request.batch, &stored, now)
}

/// What to do with one pushed household, decided against the document as it was at `heads`.
#[derive(Debug)]
pub(super) struct Decision {
    /// The stored heads the decision was made against (`None`: the household was new).
    heads: Option<String>,
    /// The outcome.
    outcome: Outcome,
}

/// The outcome of the checks on one pushed household.
#[derive(Debug)]
enum Outcome {
    /// Store: the new changes, the document saved with them, its heads and village.
    Store { village: String, new_changes: Vec<(String, Vec<u8>)>, document: Vec<u8>, heads: String },
    /// Every change was already stored.
    Known,
    /// Ask the device for the household's whole history.
    NeedFull,
    /// Refuse the household's changes.
    Reject { code: String, reason: String },
}

/// Check one pushed household against the stored document: scope, then [`admit`]. This is the
/// CPU-heavy part of a sync (load, apply, validate, save the document), so it runs before the
/// write transaction; [`commit`] makes it again only if the household changed in between.
pub(super) fn decide(
    tx: &mut dyn ReadTx,
    caller: &SyncCaller,
    push: &PushHousehold,
    forms: &FormSet,
    now: OffsetDateTime,
) -> Result<Decision, StorageError> {
    let row = tx.household(push.household)?;
    let heads = row.as_ref().map(|r| r.heads.clone());
    let created_at = row.as_ref().and_then(|r| r.created_at);
    let existing = match row {
        None => None,
        Some(row) => {
            let household = Household::load(push.household, &row.doc, caller.device)
                .map_err(|e| corrupt(format!("household {}: {e}", push.household)))?;
            Some((household, row.village))
        }
    };
    let decision = |outcome| Ok(Decision { heads: heads.clone(), outcome });
    // Work the server already stored stays acknowledged whatever happened since (a retried batch
    // after the village left the caller's scope must not turn it into "rejected").
    if let Some((household, _)) = &existing
        && already_stored(household, push, caller)
    {
        return decision(Outcome::Known);
    }
    let reject = |code: &str, reason: String| decision(Outcome::Reject { code: code.into(), reason });
    let village = match (&existing, &push.village) {
        (Some((_, v)), _) => v.clone(),
        (None, Some(v)) => v.clone(),
        // New to the server but sent without its village: the device believes the server has it
        // (say, after a restore); the full resend carries the village.
        (None, None) => return decision(Outcome::NeedFull),
    };
    if !caller.active.contains(&village) {
        let stored = existing.as_ref().map(|_| created_at);
        match ended_village_refusal(caller, push, &village, stored) {
            EndedCheck::Accept => {}
            EndedCheck::NeedFull => return decision(Outcome::NeedFull),
            EndedCheck::Refuse(reason) => return reject("out_of_scope", reason),
        }
    }
    let is_new = existing.is_none();
    let bytes: Vec<Vec<u8>> = push.changes.iter().map(|c| c.to_vec()).collect();
    let pusher = Pusher { user: &caller.user, device: caller.device, registered_at: caller.registered_at, now };
    match admit(existing.map(|(h, _)| h), push.household, &bytes, &pusher, forms) {
        Verdict::Admit(admitted) => {
            if is_new {
                let declared = admitted.household.state().answers.get("village_code").cloned();
                if declared != Some(FieldValue::Text(village.clone())) {
                    return reject(
                        "village_mismatch",
                        format!("new household {} says it is in another village than {village}", push.household),
                    );
                }
            }
            decision(Outcome::Store {
                village,
                heads: super::heads_text(&admitted.household),
                document: admitted.household.save_nocompress(),
                new_changes: admitted.new_changes,
            })
        }
        Verdict::AlreadyKnown => decision(Outcome::Known),
        Verdict::NeedFull => decision(Outcome::NeedFull),
        Verdict::Reject { code, reason } => reject(code, reason),
    }
}

/// What the scope check says about a push to a village the caller does not hold now.
enum EndedCheck {
    /// Pending work the grace covers.
    Accept,
    /// A new household pushed without its first change: the full resend will show its time.
    NeedFull,
    /// Refused, with the reason for the person at the device.
    Refuse(String),
}

/// The bounded grace after an assignment ends (see [`super::scope::EndedVillage`]): a push to a
/// village the caller does not hold now is accepted only if the village was taken from the
/// caller, the grace is running, this device was handed the village before the end, and the
/// household was stored on the server before the end (`stored`: `Some` with its first storing
/// time when the server has it) or created by the device before it (its first change's time:
/// the device's clock, which the server bounds to a plausible range, so a device that held the
/// village could still date a creation a little before the end; it had write access then, and
/// the grace is short).
///
/// A refusal names the village only when it was the caller's: a household of a village that was
/// never theirs is not described at all.
fn ended_village_refusal(
    caller: &SyncCaller,
    push: &PushHousehold,
    village: &str,
    stored: Option<Option<OffsetDateTime>>,
) -> EndedCheck {
    let ask = "ask your supervisor to assign the village to you again, or to have its work entered by its \
               enumerator";
    let Some(ended) = caller.ended_village(village) else {
        return EndedCheck::Refuse(format!(
            "household {} is not in your villages, so this device cannot change it; {ask}",
            push.household
        ));
    };
    let day = |t: OffsetDateTime| t.date().to_string();
    let taken = format!("village {village} was taken from you on {}", day(ended.ended_at));
    if !ended.grace_open {
        return EndedCheck::Refuse(format!(
            "{taken}, and unsent work for it was accepted until {}; {ask}",
            day(ended.grace_until)
        ));
    }
    if !ended.held_before_end {
        return EndedCheck::Refuse(format!(
            "{taken}, and this device never held it before then: only devices that held the village may send \
             their unsent work for it; {ask}"
        ));
    }
    let created = match stored {
        Some(created_at) => created_at,
        None => match first_change_time(push) {
            Some(t) => Some(t),
            None => return EndedCheck::NeedFull,
        },
    };
    if created.is_none_or(|t| t > ended.ended_at) {
        return EndedCheck::Refuse(format!(
            "{taken}, and household {} was created there after that; {ask}",
            push.household
        ));
    }
    EndedCheck::Accept
}

/// The time of the pushed household's first change (the one without dependencies), if pushed,
/// in whole seconds like the stored times it is compared with (a creation in the second the
/// assignment ended counts as before the end).
fn first_change_time(push: &PushHousehold) -> Option<OffsetDateTime> {
    push.changes
        .iter()
        .filter_map(|bytes| automerge::Change::from_bytes(bytes.to_vec()).ok())
        .filter(|change| change.deps().is_empty())
        .map(|change| change.timestamp().div_euclid(1000))
        .min()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
}

/// A write that stores many households (a device's first upload) trains the database's compression
/// dictionary when it has none ([`super::kept`]) from the documents it stores.
fn train_dictionary(tx: &mut dyn Tx, decisions: &[Decision], now: OffsetDateTime) -> Result<(), StorageError> {
    let samples: Vec<&[u8]> = decisions
        .iter()
        .filter_map(|d| match &d.outcome {
            Outcome::Store { document, .. } => Some(document.as_slice()),
            _ => None,
        })
        .collect();
    if samples.len() < super::kept::MIN_SAMPLES || tx.current_kept_dictionary()?.is_some() {
        return Ok(());
    }
    super::kept::train_dictionary_if_none(tx, &samples, now)?;
    Ok(())
}

/// Whether every pushed change is the caller's own and already in the stored document.
fn already_stored(household: &Household, push: &PushHousehold, caller: &SyncCaller) -> bool {
    let actor = caller.device.actor();
    push.changes.iter().all(|bytes| {
        automerge::Change::from_bytes(bytes.to_vec())
            .is_ok_and(|change| change.actor_id() == &actor && household.has_change(&change.hash()))
    })
}

/// How a sync answer's pull is made: the most changes it carries, and where recent changes'
/// bytes are kept.
#[derive(Clone, Copy)]
pub(super) struct Pulling<'a> {
    pub(super) recent: &'a RecentChanges,
    pub(super) max_changes: u32,
}

/// Handle one sync request inside `tx`, with the decisions [`decide`] made beforehand (one per
/// pushed household, in order; `None`: none made): a decision made against heads that have moved
/// since is made again here. Stores what is admitted, reads the feed, remembers the response.
/// Returns the encoded response body.
pub(super) fn commit(
    tx: &mut dyn Tx,
    pulling: &Pulling<'_>,
    caller: &SyncCaller,
    request: &SyncRequest,
    decisions: Option<&[Decision]>,
    forms: &FormSet,
    now: OffsetDateTime,
) -> Result<Vec<u8>, StorageError> {
    let Pulling { recent, max_changes } = *pulling;
    let mut response = SyncResponse { villages: caller.active.clone(), ..SyncResponse::default() };
    // The answer hands these villages to the device (for the grace after an assignment ends).
    tx.hand_villages(caller.device, &caller.active, now)?;
    train_dictionary(tx, decisions.unwrap_or_default(), now)?;
    // Lock the feed heads of the villages this request will append to in one order (sorted) before
    // appending to any: two requests over the same villages then queue instead of each holding one
    // head and waiting for the other (a deadlock PostgreSQL ends only after a second, then runs
    // one again). A decision made again below locks its village when it appends, as before.
    let villages = decisions.unwrap_or_default().iter().filter_map(|d| match &d.outcome {
        Outcome::Store { village, .. } => Some(village.as_str()),
        _ => None,
    });
    let mut appender = feed::Appender::lock(tx, villages)?;
    for (i, push) in request.push.iter().enumerate() {
        let made_again;
        let decided = match decisions.and_then(|d| d.get(i)) {
            Some(d) if tx.household_heads(push.household)? == d.heads => d,
            _ => {
                made_again = decide(tx, caller, push, forms, now)?;
                &made_again
            }
        };
        match &decided.outcome {
            Outcome::Store { village, new_changes, document, heads } => {
                // Colleagues pull these soon: their bytes are kept so that those pulls need not
                // load the document.
                for (hash, bytes) in new_changes {
                    recent.put(hash, bytes);
                }
                let entries: Vec<feed::Entry<'_>> = new_changes
                    .iter()
                    .map(|(hash, _)| feed::Entry {
                        hash,
                        household: push.household,
                        device: caller.device,
                        user: &caller.user,
                    })
                    .collect();
                let position = appender.append(tx, village, &entries, now)?;
                tx.put_household(&HouseholdWrite {
                    id: push.household,
                    village,
                    doc: document,
                    heads,
                    position,
                    at: now,
                })?;
                // Work that reaches a household folded into another is folded into its survivor
                // now, so the pull below already carries it (the fold appends too: heads first).
                if let Some(folded) = tx.fold_of(push.household)? {
                    appender.flush(tx)?;
                    fold::refold(tx, folded, now)?;
                }
                response.acknowledged += push.changes.len() as u32;
            }
            Outcome::Known => response.acknowledged += push.changes.len() as u32,
            Outcome::NeedFull => response.need_full.push(push.household),
            Outcome::Reject { code, reason } => response.rejected.push(Rejection {
                household: push.household,
                code: code.clone(),
                reason: reason.clone(),
            }),
        }
    }
    appender.flush(tx)?;
    let pulled_from = pull(tx, recent, caller, request, max_changes, &mut response)?;
    response.forms = super::forms::catalog_token(forms, &tx.form_defaults()?);
    let body = sync_core::sync::encode(&response);
    // The pull is in `body` now; what is remembered is the rest (no copy of the changes' bytes).
    response.pull.clear();
    remember(tx, caller, request, &response, pulled_from, now)?;
    Ok(body)
}

/// The changes the caller lacks in its active villages, after its cursors, by village then
/// position (the feed's rule is in [`feed::read`]), at most the page size in all. Returns where
/// each village's read started (its new cursor in the response says where it ended).
fn pull(
    tx: &mut dyn Tx,
    recent: &RecentChanges,
    caller: &SyncCaller,
    request: &SyncRequest,
    max_changes: u32,
    response: &mut SyncResponse,
) -> Result<BTreeMap<String, u64>, StorageError> {
    let mut room = max_changes.clamp(1, 20_000).min(request.max_changes.max(1));
    let mut pulled = Vec::new();
    let mut cursors = BTreeMap::new();
    let mut from = BTreeMap::new();
    // Only villages the device has a cursor for: the others first need their snapshot pack.
    for (village, cursor) in &request.cursors {
        if !caller.active.contains(village) {
            continue;
        }
        // A full page still moves the cursors of villages with nothing new to their heads.
        let mut page = feed::read(tx, village, *cursor, Some(caller.device), room.max(1))?;
        if room == 0 && !page.changes.is_empty() {
            response.has_more = true;
            cursors.insert(village.clone(), *cursor);
            from.insert(village.clone(), *cursor);
            continue;
        }
        feed::fill_bytes(tx, recent, &mut page.changes)?;
        room -= page.changes.len() as u32;
        response.has_more |= page.more;
        cursors.insert(village.clone(), page.cursor);
        from.insert(village.clone(), page.from);
        pulled.append(&mut page.changes);
    }
    response.pull = grouped(pulled);
    response.cursors = cursors;
    Ok(from)
}

/// Pulled changes, in feed order, grouped by household in the order households first appear.
fn grouped(changes: Vec<FeedChange>) -> Vec<PullHousehold> {
    let mut order: Vec<HouseholdId> = Vec::new();
    let mut grouped: BTreeMap<HouseholdId, PullHousehold> = BTreeMap::new();
    for change in changes {
        let entry = grouped.entry(change.household).or_insert_with(|| {
            order.push(change.household);
            PullHousehold { household: change.household, village: change.village, changes: Vec::new() }
        });
        entry.changes.push(ByteBuf::from(change.bytes));
    }
    order.into_iter().filter_map(|id| grouped.remove(&id)).collect()
}
