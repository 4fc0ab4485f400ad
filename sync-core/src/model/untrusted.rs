//! Checks on changes from elsewhere before Automerge applies them. Automerge 0.12 trusts the
//! changes it is given: a hand-made (or damaged) change that writes into an object outside its
//! history, numbers itself out of its writer's sequence, names a writer nobody knows or deletes
//! nothing makes it panic, or save a document it cannot load again. Pilar's own changes never do
//! any of this; these checks turn such a change into [`ModelError::BadChange`] so a server or a
//! device refuses it and stays up.

use super::ModelError;
use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjId as ExId, ObjType, ReadDoc};
use std::collections::{HashMap, HashSet};

/// Latest change time accepted (ms since the Unix epoch: the last millisecond of year 9999).
const MAX_CHANGE_TIME: i64 = 253_402_300_799_999;

/// For each writer, the number of its last change in a causal past.
type Clock = HashMap<ActorId, u64>;

fn refuse(change: &Change, what: &str) -> ModelError {
    ModelError::BadChange(format!("change {} {what}; it was not written by pilar", change.hash()))
}

/// A change's operations, decoded, once the change is shown to be encoded as Automerge encodes
/// it. Automerge's decoder panics on a change whose operations name a writer missing from the
/// change's own table (it trusts the bytes); and a change it reads but would encode differently
/// (another hash) makes a document whose save() no longer loads.
fn expand(change: &Change) -> Result<ExpandedChange, ModelError> {
    let expanded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change.decode()))
        .map_err(|_| refuse(change, "has operations that cannot be read"))?;
    let canonical = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Change::from(expanded.clone()).hash()));
    match canonical {
        Ok(hash) if hash == change.hash() => Ok(expanded),
        _ => Err(refuse(change, "is not encoded the way automerge encodes changes")),
    }
}

/// What is known of a change that is in the document or placed before: its writer, its number
/// and its causal past including itself.
struct Placed {
    actor: ActorId,
    seq: u64,
    max_op: u64,
    clock: Clock,
}

/// The order in which to apply `changes` (new to `doc`; every dependency is in `doc` or among
/// `incoming`, their hashes), each after its dependencies, once every change is checked: its time
/// is a date; it follows its writer's previous change (in number and in history) and numbers its
/// operations after its history's; every operation writes a map key of a map in the change's
/// history (or made by the change itself; Pilar documents hold no lists), replaces only older
/// operations of that history, and a deletion deletes something. Nothing is applied by this
/// function; a change that fails is refused before anything is.
pub(super) fn application_order(
    doc: &Automerge,
    changes: Vec<Change>,
    incoming: &HashSet<ChangeHash>,
) -> Result<Vec<Change>, ModelError> {
    let expanded = changes.iter().map(expand).collect::<Result<Vec<_>, _>>()?;
    let mut placed = doc_history(doc);
    let mut known_actors: HashSet<ActorId> = placed.values().map(|p| p.actor.clone()).collect();
    known_actors.extend(changes.iter().map(|c| c.actor_id().clone()));
    let mut next_seq: HashMap<ActorId, u64> = HashMap::new();
    let mut writer_max_op: HashMap<ActorId, u64> = HashMap::new();
    for p in placed.values() {
        let next = next_seq.entry(p.actor.clone()).or_insert(1);
        *next = (*next).max(p.seq.saturating_add(1));
        let last = writer_max_op.entry(p.actor.clone()).or_insert(0);
        *last = (*last).max(p.max_op);
    }
    // Objects made by the batch, and which batch change holds each operation number, by writer.
    let mut made: HashMap<(u64, ActorId), ObjType> = HashMap::new();
    for (change, e) in changes.iter().zip(&expanded) {
        if !(0..=MAX_CHANGE_TIME).contains(&change.timestamp()) {
            return Err(refuse(change, &format!("has an impossible time ({} ms since 1970)", change.timestamp())));
        }
        if !change.other_actor_ids().iter().all(|a| known_actors.contains(a)) {
            return Err(refuse(change, "names a writer this household has never seen"));
        }
        for (i, op) in e.operations.iter().enumerate() {
            let counter = operation_number(change, i)?;
            if let OpType::Make(kind) = op.action {
                made.insert((counter, e.actor_id.clone()), kind);
            }
        }
    }

    let mut pending: Vec<(Change, ExpandedChange)> = changes.into_iter().zip(expanded).collect();
    // Decoded changes: of the batch once placed, and of the document when an operation is looked up.
    let mut written: HashMap<ChangeHash, ExpandedChange> = HashMap::new();
    let mut read: HashMap<ChangeHash, ExpandedChange> = HashMap::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|(c, _)| {
            c.seq() == next_seq.get(c.actor_id()).copied().unwrap_or(1)
                && c.deps().iter().all(|d| placed.contains_key(d) || !incoming.contains(d))
        });
        let Some(i) = ready else {
            let (c, _) = &pending[0];
            let previous = next_seq.get(c.actor_id()).copied().unwrap_or(1).saturating_sub(1);
            return Err(refuse(
                c,
                &format!("is number {} of its writer but cannot follow the writer's change {previous}", c.seq()),
            ));
        };
        let (change, e) = pending.remove(i);
        if change.author().is_some() && change.seq() != 1 {
            return Err(refuse(&change, "names an author after its writer's first change"));
        }
        // The causal past: every dependency and everything before it.
        let mut past = Clock::new();
        let mut history_max_op = writer_max_op.get(change.actor_id()).copied().unwrap_or(0);
        for dep in change.deps() {
            let Some(p) = placed.get(dep) else {
                return Err(refuse(&change, "depends on a change this household does not have"));
            };
            for (actor, seq) in &p.clock {
                let entry = past.entry(actor.clone()).or_insert(0);
                *entry = (*entry).max(*seq);
            }
            history_max_op = history_max_op.max(p.max_op);
        }
        if past.get(change.actor_id()).copied().unwrap_or(0) != change.seq().saturating_sub(1) {
            return Err(refuse(&change, "does not build on its writer's previous change"));
        }
        if change.start_op().get() <= history_max_op {
            return Err(refuse(&change, "numbers its operations before those of its history"));
        }
        // Where an operation number was written: this change, or a change in its causal past.
        let in_history = |id: &OpId| -> bool {
            if id.1 == *change.actor_id() && id.0 >= change.start_op().get() && id.0 <= change.max_op() {
                return true;
            }
            let seq_of_writer = past.get(&id.1).copied().unwrap_or(0);
            match doc.hash_for_opid(&ExId::Id(id.0, id.1.clone(), 0)).and_then(|h| placed.get(&h)) {
                Some(p) => p.seq <= seq_of_writer,
                // Not in the document: it must be an earlier change of this batch.
                None => ordered.iter().any(|c: &Change| {
                    c.actor_id() == &id.1
                        && c.seq() <= seq_of_writer
                        && (c.start_op().get()..=c.max_op()).contains(&id.0)
                }),
            }
        };
        for (i, op) in e.operations.iter().enumerate() {
            let counter = operation_number(&change, i)?;
            let target = match &op.obj {
                ObjectId::Root => Some(ObjType::Map),
                ObjectId::Id(id) if in_history(id) && id.0 < counter => made
                    .get(&(id.0, id.1.clone()))
                    .copied()
                    .or_else(|| doc.object_type(ExId::Id(id.0, id.1.clone(), 0)).ok()),
                ObjectId::Id(_) => None,
            };
            match target {
                Some(ObjType::Map | ObjType::Table) => {}
                Some(_) => return Err(refuse(&change, "writes into a list or text; pilar households hold none")),
                None => return Err(refuse(&change, "writes into an object outside its history")),
            }
            if op.insert || !matches!(op.key, Key::Map(_)) {
                return Err(refuse(&change, "writes a list position; pilar households hold no lists"));
            }
            match op.action {
                OpType::MarkBegin(_) | OpType::MarkEnd(_) => return Err(refuse(&change, "marks text")),
                OpType::Delete | OpType::Increment(_) if op.pred.iter().next().is_none() => {
                    return Err(refuse(&change, "deletes or increments a value that is not there"));
                }
                _ => {}
            }
            // An operation replaces only older operations of its history (Lamport order), and
            // only values of its own key: Automerge would record others it could not load again.
            let replaces_own_key = |p: &OpId| {
                p.0 < counter
                    && in_history(p)
                    && operation(p, &change, &e, &written, &mut read, doc).is_some_and(|(obj, key, action)| {
                        obj == op.obj && key == op.key && !matches!(action, OpType::Delete)
                    })
            };
            if !op.pred.iter().all(replaces_own_key) {
                return Err(refuse(&change, "replaces a value outside its history or its key"));
            }
        }
        let mut clock = past;
        clock.insert(change.actor_id().clone(), change.seq());
        next_seq.insert(change.actor_id().clone(), change.seq().saturating_add(1));
        writer_max_op.insert(change.actor_id().clone(), change.max_op());
        placed.insert(
            change.hash(),
            Placed { actor: change.actor_id().clone(), seq: change.seq(), max_op: change.max_op(), clock },
        );
        written.insert(change.hash(), e);
        ordered.push(change);
    }
    Ok(ordered)
}

/// The object, key and action of the operation numbered `id`: in `current` (being checked,
/// decoded as `expanded`), in a change of the batch placed before (`written`), or in the document
/// (its changes decoded on demand into `read`).
fn operation(
    id: &OpId,
    current: &Change,
    expanded: &ExpandedChange,
    written: &HashMap<ChangeHash, ExpandedChange>,
    read: &mut HashMap<ChangeHash, ExpandedChange>,
    doc: &Automerge,
) -> Option<(ObjectId, Key, OpType)> {
    let pick = |e: &ExpandedChange| {
        let index = usize::try_from(id.0.checked_sub(e.start_op.get())?).ok()?;
        let op = e.operations.get(index)?;
        Some((op.obj.clone(), op.key.clone(), op.action.clone()))
    };
    if id.1 == *current.actor_id() && id.0 >= current.start_op().get() && id.0 <= current.max_op() {
        return pick(expanded);
    }
    if let Some(e) = written
        .values()
        .find(|e| e.actor_id == id.1 && id.0 >= e.start_op.get() && id.0 < e.start_op.get() + e.operations.len() as u64)
    {
        return pick(e);
    }
    let hash = doc.hash_for_opid(&ExId::Id(id.0, id.1.clone(), 0))?;
    if let std::collections::hash_map::Entry::Vacant(slot) = read.entry(hash) {
        slot.insert(expand(&doc.get_change_by_hash(&hash)?).ok()?);
    }
    read.get(&hash).and_then(pick)
}

/// The number of a change's `i`-th operation.
fn operation_number(change: &Change, i: usize) -> Result<u64, ModelError> {
    change.start_op().get().checked_add(i as u64).ok_or_else(|| refuse(change, "numbers its operations past the end"))
}

/// Every change of the document with its causal past (Automerge lists changes with each after
/// its dependencies; the passes only guard against another order).
fn doc_history(doc: &Automerge) -> HashMap<ChangeHash, Placed> {
    let mut placed: HashMap<ChangeHash, Placed> = HashMap::new();
    let mut remaining = doc.get_changes_meta(&[]);
    while !remaining.is_empty() {
        let before = remaining.len();
        remaining.retain(|meta| {
            if !meta.deps.iter().all(|d| placed.contains_key(d)) {
                return true;
            }
            let mut clock = Clock::new();
            for p in meta.deps.iter().filter_map(|d| placed.get(d)) {
                for (actor, seq) in &p.clock {
                    let entry = clock.entry(actor.clone()).or_insert(0);
                    *entry = (*entry).max(*seq);
                }
            }
            let actor = meta.actor.clone().into_owned();
            clock.insert(actor.clone(), meta.seq);
            placed.insert(meta.hash, Placed { actor, seq: meta.seq, max_op: meta.max_op, clock });
            false
        });
        if remaining.len() == before {
            // A loaded document has every dependency; nothing more can be placed.
            break;
        }
    }
    placed
}
