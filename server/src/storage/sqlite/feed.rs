//! The sync feed on SQLite: households, admitted changes with their feed sequence numbers, and
//! remembered responses per (device, batch). One sync request is one write transaction: nothing is
//! acknowledged before it commits, and a retried batch gets the stored response back, byte for byte.
//!
//! Remembered responses are bounded: a device keeps at most one (its pending batch's), and none
//! outlives [`STORED_RESPONSE_LIFETIME`]. Without its stored response a retried batch is simply
//! handled again, which is safe: changes are stored by hash, so the device's own changes come back
//! `Known` and are acknowledged.

use crate::storage::{StorageError, SyncCaller};
use rusqlite::{OptionalExtension, Transaction, params};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use sync_core::form::FormDefinition;
use sync_core::model::{Household, HouseholdId};
use sync_core::sync::{
    PackPage, PackedHousehold, PullHousehold, PushHousehold, Pusher, Rejection, SyncRequest, SyncResponse, Verdict,
    admit,
};
use sync_core::value::FieldValue;
use time::OffsetDateTime;

/// How long a stored sync response is kept for a device that never comes back to retry or move on
/// (a lost or retired tablet). A week covers a device offline for days between a lost answer and its
/// retry; a later retry is handled again instead of replayed, which is safe (see the module doc).
pub(super) const STORED_RESPONSE_LIFETIME: time::Duration = time::Duration::days(7);

/// Expired stored responses deleted per sync transaction, so pruning never makes one request slow.
const EXPIRED_RESPONSES_PER_SYNC: i64 = 64;

#[cfg(test)]
mod grace_tests;
#[cfg(test)]
mod tests;

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(what.into())
}

/// The stored response of an earlier request with the same batch id, if any, and only if it was
/// made for the same `max_changes`: a device that shrank its page after a cut response must not
/// get the big answer again, so that batch is handled again (and its stored response replaced).
pub(super) fn replay(
    tx: &rusqlite::Connection,
    caller: &SyncCaller,
    request: &SyncRequest,
) -> Result<Option<Vec<u8>>, StorageError> {
    let stored: Option<(Vec<u8>, Option<i64>)> = tx
        .query_row(
            "SELECT response, max_changes FROM sync_batches WHERE device_id = ?1 AND batch = ?2",
            params![caller.device.to_string(), request.batch.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    // Responses stored before the page size was recorded (NULL) are replayed as they are.
    Ok(stored.and_then(|(body, max_changes)| {
        max_changes.is_none_or(|m| m == i64::from(request.max_changes)).then_some(body)
    }))
}

/// Remember `body` as the answer to `request`, in place of every earlier response of the device:
/// a device retries only its pending batch, so a new batch id proves it applied the previous
/// answer. Also drops a few responses older than [`STORED_RESPONSE_LIFETIME`].
fn remember(
    tx: &Transaction<'_>,
    caller: &SyncCaller,
    request: &SyncRequest,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    let device = caller.device.to_string();
    tx.prepare_cached("DELETE FROM sync_batches WHERE device_id = ?1")?.execute(params![device])?;
    tx.prepare_cached(
        "DELETE FROM sync_batches WHERE rowid IN
             (SELECT rowid FROM sync_batches WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
    )?
    .execute(params![super::stored_time(now - STORED_RESPONSE_LIFETIME), EXPIRED_RESPONSES_PER_SYNC])?;
    tx.prepare_cached(
        "INSERT INTO sync_batches (device_id, batch, response, created_at, max_changes) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![device, request.batch.to_string(), body, super::stored_time(now), request.max_changes])?;
    Ok(())
}

fn max_seq(tx: &rusqlite::Connection) -> Result<u64, StorageError> {
    let seq: Option<i64> = tx.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))?;
    Ok(seq.unwrap_or(0).max(0) as u64)
}

/// The stored document, village and heads of a household, if the server has it.
fn load(
    conn: &rusqlite::Connection,
    id: HouseholdId,
    caller: &SyncCaller,
) -> Result<Option<(Household, String, String)>, StorageError> {
    let row: Option<(Vec<u8>, String, String)> = conn
        .prepare_cached("SELECT doc, village, heads FROM households WHERE id = ?1")?
        .query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((doc, village, heads)) => {
            let household =
                Household::load(id, &doc, caller.device).map_err(|e| corrupt(format!("household {id}: {e}")))?;
            Ok(Some((household, village, heads)))
        }
    }
}

/// The stored heads of a household (`None` when the server does not have it).
fn stored_heads(tx: &rusqlite::Connection, id: HouseholdId) -> Result<Option<String>, StorageError> {
    Ok(tx
        .prepare_cached("SELECT heads FROM households WHERE id = ?1")?
        .query_row(params![id.to_string()], |r| r.get(0))
        .optional()?)
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
/// write lock is taken, on a read connection; [`commit`] redoes it only if the household changed
/// in between.
pub(super) fn decide(
    conn: &rusqlite::Connection,
    caller: &SyncCaller,
    push: &PushHousehold,
    form: &FormDefinition,
    now: OffsetDateTime,
) -> Result<Decision, StorageError> {
    let existing = load(conn, push.household, caller)?;
    let heads = existing.as_ref().map(|(_, _, h)| h.clone());
    let decision = |outcome| Ok(Decision { heads: heads.clone(), outcome });
    // Work the server already stored stays acknowledged whatever happened since (a retried batch
    // after the village left the caller's scope must not turn it into "rejected").
    if let Some((household, _, _)) = &existing
        && already_stored(household, push, caller)
    {
        return decision(Outcome::Known);
    }
    let reject = |code: &str, reason: String| decision(Outcome::Reject { code: code.into(), reason });
    let village = match (&existing, &push.village) {
        (Some((_, v, _)), _) => v.clone(),
        (None, Some(v)) => v.clone(),
        // New to the server but sent without its village: the device believes the server has it
        // (say, after a restore); the full resend carries the village.
        (None, None) => return decision(Outcome::NeedFull),
    };
    if !caller.active.contains(&village) {
        match ended_village_refusal(conn, caller, push, &village, existing.is_some())? {
            EndedCheck::Accept => {}
            EndedCheck::NeedFull => return decision(Outcome::NeedFull),
            EndedCheck::Refuse(reason) => return reject("out_of_scope", reason),
        }
    }
    let is_new = existing.is_none();
    let bytes: Vec<Vec<u8>> = push.changes.iter().map(|c| c.to_vec()).collect();
    let pusher = Pusher { user: &caller.user, device: caller.device, registered_at: caller.registered_at, now };
    match admit(existing.map(|(h, _, _)| h), push.household, &bytes, &pusher, form) {
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
            let heads = admitted.household.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
            decision(Outcome::Store {
                village,
                document: admitted.household.save(),
                new_changes: admitted.new_changes,
                heads,
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

/// The bounded grace after an assignment ends (see [`crate::storage::EndedVillage`]): a push to a
/// village the caller does not hold now is accepted only if the village was taken from the
/// caller, the grace is running, this device was handed the village before the end, and the
/// household was stored on the server before the end (`households.created_at`) or created by the
/// device before it (its first change's time: the device's clock, which the server bounds to a
/// plausible range, so a device that held the village could still date a creation a little
/// before the end; it had write access then, and the grace is short).
///
/// A refusal names the village only when it was the caller's: a household of a village that was
/// never theirs is not described at all.
fn ended_village_refusal(
    conn: &rusqlite::Connection,
    caller: &SyncCaller,
    push: &PushHousehold,
    village: &str,
    stored: bool,
) -> Result<EndedCheck, StorageError> {
    let ask = "ask your supervisor to assign the village to you again, or to have its work entered by its \
               enumerator";
    let Some(ended) = caller.ended_village(village) else {
        return Ok(EndedCheck::Refuse(format!(
            "household {} is not in your villages, so this device cannot change it; {ask}",
            push.household
        )));
    };
    let day = |t: OffsetDateTime| t.date().to_string();
    let taken = format!("village {village} was taken from you on {}", day(ended.ended_at));
    if !ended.grace_open {
        return Ok(EndedCheck::Refuse(format!(
            "{taken}, and unsent work for it was accepted until {}; {ask}",
            day(ended.grace_until)
        )));
    }
    if !ended.held_before_end {
        return Ok(EndedCheck::Refuse(format!(
            "{taken}, and this device never held it before then: only devices that held the village may send \
             their unsent work for it; {ask}"
        )));
    }
    let created = if stored {
        conn.prepare_cached("SELECT created_at FROM households WHERE id = ?1")?
            .query_row(params![push.household.to_string()], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten()
            .map(|t| super::parse_stored_time(&t))
            .transpose()?
    } else {
        match first_change_time(push) {
            Some(t) => Some(t),
            None => return Ok(EndedCheck::NeedFull),
        }
    };
    if created.is_none_or(|t| t > ended.ended_at) {
        return Ok(EndedCheck::Refuse(format!(
            "{taken}, and household {} was created there after that; {ask}",
            push.household
        )));
    }
    Ok(EndedCheck::Accept)
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

/// Whether every pushed change is the caller's own and already in the stored document.
fn already_stored(household: &Household, push: &PushHousehold, caller: &SyncCaller) -> bool {
    let actor = caller.device.actor();
    push.changes.iter().all(|bytes| {
        automerge::Change::from_bytes(bytes.to_vec())
            .is_ok_and(|change| change.actor_id() == &actor && household.has_change(&change.hash()))
    })
}

/// Handle one sync request inside `tx`, with the decisions [`decide`] made beforehand (one per
/// pushed household, in order): a decision made against heads that have moved since is made
/// again here. Stores what is admitted, reads the feed, remembers the response. Returns the
/// encoded response body.
pub(super) fn commit(
    tx: &Transaction<'_>,
    caller: &SyncCaller,
    request: &SyncRequest,
    decisions: Vec<Decision>,
    form: &FormDefinition,
    max_changes: u32,
    now: OffsetDateTime,
) -> Result<Vec<u8>, StorageError> {
    let mut response = SyncResponse { villages: caller.active.clone(), ..SyncResponse::default() };
    // The answer hands these villages to the device (for the grace after an assignment ends).
    super::hand_villages(tx, caller.device, &caller.active, now)?;
    let received_at = super::stored_time(now);
    for (push, decided) in request.push.iter().zip(decisions) {
        let decided = if stored_heads(tx, push.household)? == decided.heads {
            decided
        } else {
            decide(tx, caller, push, form, now)?
        };
        match decided.outcome {
            Outcome::Store { village, new_changes, document, heads } => {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO changes (hash, household_id, village, device_id, user_name, bytes, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO NOTHING",
                )?;
                for (hash, change) in &new_changes {
                    insert.execute(params![
                        hash,
                        push.household.to_string(),
                        village,
                        caller.device.to_string(),
                        caller.user,
                        change,
                        received_at
                    ])?;
                }
                let seq = max_seq(tx)? as i64;
                tx.prepare_cached(
                    "INSERT INTO households (id, village, doc, heads, updated_seq, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
                         updated_seq = excluded.updated_seq, updated_at = excluded.updated_at",
                )?
                .execute(params![push.household.to_string(), village, document, heads, seq, received_at])?;
                // Work that reaches a merged-away household is folded into its survivor now, so
                // the pull below already carries it.
                super::merge::refold(tx, push.household, now)?;
                response.acknowledged += push.changes.len() as u32;
            }
            Outcome::Known => response.acknowledged += push.changes.len() as u32,
            Outcome::NeedFull => response.need_full.push(push.household),
            Outcome::Reject { code, reason } => {
                response.rejected.push(Rejection { household: push.household, code, reason })
            }
        }
    }
    pull(tx, caller, request, max_changes, &mut response)?;
    let body = sync_core::sync::encode(&response);
    remember(tx, caller, request, &body, now)?;
    Ok(body)
}

/// The changes the caller lacks in its active villages, after its cursors, oldest first.
fn pull(
    tx: &Transaction<'_>,
    caller: &SyncCaller,
    request: &SyncRequest,
    max_changes: u32,
    response: &mut SyncResponse,
) -> Result<(), StorageError> {
    let limit = max_changes.clamp(1, 20_000).min(request.max_changes.max(1)) as usize;
    let mut rows: Vec<(u64, String, String, Vec<u8>)> = Vec::new();
    let mut stmt = tx.prepare_cached(
        "SELECT seq, household_id, village, bytes FROM changes
         WHERE village = ?1 AND seq > ?2 AND device_id != ?3 ORDER BY seq LIMIT ?4",
    )?;
    // Only villages the device has a cursor for: the others first need their snapshot pack.
    for (village, cursor) in &request.cursors {
        if !caller.active.contains(village) {
            continue;
        }
        let found = stmt
            .query_map(params![village, *cursor as i64, caller.device.to_string(), (limit + 1) as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        for row in found {
            rows.push(row?);
        }
    }
    rows.sort_by_key(|r| r.0);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let upto = if has_more { rows.last().map(|r| r.0).unwrap_or(0) } else { max_seq(tx)? };
    let mut order: Vec<HouseholdId> = Vec::new();
    let mut grouped: BTreeMap<HouseholdId, PullHousehold> = BTreeMap::new();
    for (_, household, village, bytes) in rows {
        let id: HouseholdId = household.parse().map_err(|_| corrupt(format!("bad household id {household:?}")))?;
        let entry = grouped.entry(id).or_insert_with(|| {
            order.push(id);
            PullHousehold { household: id, village, changes: Vec::new() }
        });
        entry.changes.push(ByteBuf::from(bytes));
    }
    response.pull = order.into_iter().filter_map(|id| grouped.remove(&id)).collect();
    response.has_more = has_more;
    response.cursors = request
        .cursors
        .iter()
        .filter(|(v, _)| caller.active.contains(*v))
        .map(|(v, c)| (v.clone(), (*c).max(upto)))
        .collect();
    Ok(())
}

/// One page of a village's snapshot pack: compacted documents after `after`, by id.
pub(super) fn pack_page(
    tx: &rusqlite::Connection,
    village: &str,
    after: Option<HouseholdId>,
    limit: u32,
) -> Result<PackPage, StorageError> {
    let seq = max_seq(tx)?;
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let mut stmt =
        tx.prepare_cached("SELECT id, doc FROM households WHERE village = ?1 AND id > ?2 ORDER BY id LIMIT ?3")?;
    let rows = stmt.query_map(params![village, after, i64::from(limit) + 1], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut households = Vec::new();
    for row in rows {
        let (id, doc) = row?;
        let household: HouseholdId = id.parse().map_err(|_| corrupt(format!("bad household id {id:?}")))?;
        households.push(PackedHousehold { household, document: ByteBuf::from(doc) });
    }
    let next_after = if households.len() > limit as usize {
        households.truncate(limit as usize);
        households.last().map(|h| h.household)
    } else {
        None
    };
    let total: i64 = tx
        .prepare_cached("SELECT count(*) FROM households WHERE village = ?1")?
        .query_row(params![village], |r| r.get(0))?;
    Ok(PackPage { village: village.to_string(), seq, households, next_after, total: total.max(0) as u64 })
}

/// The stored documents and villages of `ids` (unknown ones left out), for devices restoring a
/// damaged copy.
pub(super) fn documents(
    conn: &rusqlite::Connection,
    ids: &[HouseholdId],
) -> Result<Vec<(HouseholdId, String, Vec<u8>)>, StorageError> {
    let mut stmt = conn.prepare_cached("SELECT village, doc FROM households WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in ids {
        let row: Option<(String, Vec<u8>)> =
            stmt.query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some((village, doc)) = row {
            out.push((*id, village, doc));
        }
    }
    Ok(out)
}
