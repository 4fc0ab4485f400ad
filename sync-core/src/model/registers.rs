//! The current values of a household document without its history: for every map key, the
//! operations that still hold a value (Automerge's multi-value register), with the hashes of
//! every change seen. The device store keeps it beside the document, so a change received from
//! the server updates the search columns, the conflict count and the heads without loading the
//! document (loading a document rebuilds and hashes every change it holds, the bulk of a
//! received change's cost).
//!
//! It follows Automerge's map rules exactly, for the documents Pilar writes (maps of scalars,
//! nothing else): an operation hides the operations it names as replaced (its `pred`), a delete
//! holds nothing, a key holding several operations is a conflict, and the one shown is the
//! greatest operation id (counter, then actor). Changes are applied in causal order, each after
//! its dependencies, so an operation is always seen before one that replaces it. Anything else (a
//! list, a counter, a write into an object it does not know) is [`Unsupported`]: the caller loads
//! the document instead.

use super::read::{self, Source};
use super::{HouseholdId, HouseholdState};
use crate::value::FieldValue;
use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, HashSet};

mod encoding;

/// A change the registers cannot follow: the caller loads the document instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the registers cannot follow this change ({0}); load the document")]
pub struct Unsupported(pub &'static str);

/// What a key holds: a value (`None` for a scalar no answer reads, such as a null) or a map.
/// Stored as the value itself (CBOR null for `None`) or `[map]`: registers are kept for every
/// household, so their bytes count.
#[derive(Debug, Clone, PartialEq)]
enum Held {
    /// A scalar.
    Value(Option<FieldValue>),
    /// A map, by its position in [`Registers::objects`].
    Map(u32),
}

impl Serialize for Held {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Held::Value(Some(value)) => value.serialize(s),
            Held::Value(None) => s.serialize_none(),
            Held::Map(obj) => [*obj].serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Held {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Held, D::Error> {
        use serde::de::{self, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Held;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value, null or [map]")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Held, E> {
                Ok(Held::Value(Some(FieldValue::Bool(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Held, E> {
                Ok(Held::Value(Some(FieldValue::Int(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Held, E> {
                i64::try_from(v)
                    .map(|v| Held::Value(Some(FieldValue::Int(v))))
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Held, E> {
                Ok(Held::Value(Some(FieldValue::Decimal(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Held, E> {
                Ok(Held::Value(Some(FieldValue::Text(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Held, E> {
                Ok(Held::Value(Some(FieldValue::Text(v))))
            }
            fn visit_none<E: de::Error>(self) -> Result<Held, E> {
                Ok(Held::Value(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Held, E> {
                Ok(Held::Value(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Held, A::Error> {
                let obj = seq.next_element()?.ok_or_else(|| de::Error::custom("missing map"))?;
                Ok(Held::Map(obj))
            }
        }
        d.deserialize_any(V)
    }
}

/// One operation that still holds a value: its counter, its actor's position, what it holds.
type Visible = (u64, u32, Held);

/// The current values of one household document; see the module comment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registers {
    /// Actors, by position.
    actors: Vec<ByteBuf>,
    /// Maps other than the root (position 0 is the root): the operation that made each.
    objects: Vec<(u64, u32)>,
    /// Every key of every map with its visible operations, in (map, key) order.
    keys: Vec<(u32, String, Vec<Visible>)>,
    /// Every change's hash, concatenated (32 bytes each), in the order seen.
    hashes: ByteBuf,
    /// The heads, as positions in `hashes`.
    heads: Vec<u32>,
}

fn scalar(value: &ScalarValue) -> Option<FieldValue> {
    read::to_field_value(&Value::Scalar(std::borrow::Cow::Borrowed(value)))
}

impl Registers {
    /// The registers of an empty document.
    pub fn new() -> Registers {
        Registers { objects: vec![(0, 0)], ..Registers::default() }
    }

    fn actor(&mut self, actor: &ActorId) -> u32 {
        let bytes = actor.to_bytes();
        if let Some(i) = self.actors.iter().position(|a| a.as_slice() == bytes) {
            return i as u32;
        }
        self.actors.push(ByteBuf::from(bytes.to_vec()));
        (self.actors.len() - 1) as u32
    }

    fn find_actor(&self, actor: &ActorId) -> Option<u32> {
        let bytes = actor.to_bytes();
        self.actors.iter().position(|a| a.as_slice() == bytes).map(|i| i as u32)
    }

    fn hash_at(&self, i: u32) -> Option<ChangeHash> {
        let start = i as usize * 32;
        self.hashes.get(start..start + 32).and_then(|b| ChangeHash::try_from(b).ok())
    }

    fn position_of(&self, hash: &ChangeHash) -> Option<u32> {
        self.hashes.chunks_exact(32).position(|h| h == hash.0).map(|i| i as u32)
    }

    /// Whether the document holds the change.
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.position_of(hash).is_some()
    }

    /// The document's heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        let mut heads: Vec<ChangeHash> = self.heads.iter().filter_map(|i| self.hash_at(*i)).collect();
        heads.sort();
        heads
    }

    /// The registers of a loaded document (every map reachable from the root, every change).
    pub fn of_document(doc: &automerge::Automerge) -> Result<Registers, Unsupported> {
        let mut registers = Registers::new();
        let mut stack: Vec<(automerge::ObjId, u32)> = vec![(ROOT, 0)];
        while let Some((obj, index)) = stack.pop() {
            for item in doc.map_range(&obj, ..) {
                let key = item.key.to_string();
                let mut visible = Vec::new();
                for (value, id) in
                    doc.get_all(&obj, key.as_str()).map_err(|_| Unsupported("a map key cannot be read"))?
                {
                    let automerge::ObjId::Id(counter, actor, _) = &id else {
                        return Err(Unsupported("an operation without an id"));
                    };
                    let actor = registers.actor(actor);
                    let held = match &value {
                        Value::Object(ObjType::Map) => {
                            registers.objects.push((*counter, actor));
                            let child = (registers.objects.len() - 1) as u32;
                            stack.push((id.clone(), child));
                            Held::Map(child)
                        }
                        Value::Object(_) => return Err(Unsupported("an object other than a map")),
                        Value::Scalar(s) => Held::Value(scalar(s)),
                    };
                    visible.push((*counter, actor, held));
                }
                registers.keys.push((index, key, visible));
            }
        }
        registers.keys.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut hashes = Vec::new();
        let mut depended = HashSet::new();
        for meta in doc.get_changes_meta(&[]) {
            hashes.extend_from_slice(&meta.hash.0);
            depended.extend(meta.deps.iter().copied());
        }
        registers.hashes = ByteBuf::from(hashes);
        registers.heads = (0..registers.hashes.len() / 32)
            .map(|i| i as u32)
            .filter(|i| registers.hash_at(*i).is_some_and(|h| !depended.contains(&h)))
            .collect();
        Ok(registers)
    }

    /// Apply one change, decoded; every dependency must already be here (the caller checks with
    /// [`Registers::has_change`] and keeps causal order). A change already here changes nothing.
    /// On [`Unsupported`] the registers may be half changed: the caller drops them and loads the
    /// document instead. (Keeping them as they were meant copying every key for every change:
    /// a tenth of a received change's cost.)
    pub fn apply(&mut self, change: &Change, expanded: &ExpandedChange) -> Result<(), Unsupported> {
        let hash = change.hash();
        if self.has_change(&hash) {
            return Ok(());
        }
        let next = self;
        let deps: Vec<u32> = change
            .deps()
            .iter()
            .map(|d| next.position_of(d).ok_or(Unsupported("a dependency the document lacks")))
            .collect::<Result<_, _>>()?;
        let me = next.actor(&expanded.actor_id);
        for (i, op) in expanded.operations.iter().enumerate() {
            let counter = expanded.start_op.get() + i as u64;
            if op.insert {
                return Err(Unsupported("a list insertion"));
            }
            let Key::Map(key) = &op.key else { return Err(Unsupported("a list position")) };
            let obj = match &op.obj {
                ObjectId::Root => 0,
                ObjectId::Id(OpId(c, a)) => {
                    let a = next.find_actor(a).ok_or(Unsupported("a write into an unknown map"))?;
                    next.objects.iter().position(|o| *o == (*c, a)).ok_or(Unsupported("a write into an unknown map"))?
                        as u32
                }
            };
            let held = match &op.action {
                OpType::Put(value) => Some(Held::Value(scalar(value))),
                OpType::Make(ObjType::Map) => {
                    next.objects.push((counter, me));
                    Some(Held::Map((next.objects.len() - 1) as u32))
                }
                OpType::Delete => None,
                _ => return Err(Unsupported("an operation other than put, make map and delete")),
            };
            let replaced: Vec<(u64, u32)> = op
                .pred
                .iter()
                .map(|OpId(c, a)| Ok((*c, next.find_actor(a).ok_or(Unsupported("an unknown writer replaced"))?)))
                .collect::<Result<_, Unsupported>>()?;
            let at = match next.keys.binary_search_by(|k| (k.0, k.1.as_str()).cmp(&(obj, key.as_str()))) {
                Ok(at) => at,
                Err(at) => {
                    next.keys.insert(at, (obj, key.to_string(), Vec::new()));
                    at
                }
            };
            let visible = &mut next.keys[at].2;
            visible.retain(|(c, a, _)| !replaced.contains(&(*c, *a)));
            if let Some(held) = held {
                visible.push((counter, me, held));
            }
        }
        let position = (next.hashes.len() / 32) as u32;
        next.hashes.extend_from_slice(&hash.0);
        next.heads.retain(|h| !deps.contains(h));
        next.heads.push(position);
        Ok(())
    }

    /// Whether a change may change who the household's current members are or their names and
    /// NIKs: it writes the root, the members map or a map held under it, or a map the registers
    /// do not know. When no change of a batch does, the household's people rows stay as they are
    /// (reading the members before and after was a fifth of a received change's cost).
    pub fn touches_members(&self, expanded: &ExpandedChange) -> bool {
        let Some(members) = read::root_objects_of(self).map(|roots| roots["members"]) else { return true };
        let member_maps: Vec<u32> = self
            .entries(members)
            .flat_map(|(_, _, visible)| visible.iter())
            .filter_map(|(_, _, held)| match held {
                Held::Map(obj) => Some(*obj),
                Held::Value(_) => None,
            })
            .collect();
        expanded.operations.iter().any(|op| match &op.obj {
            ObjectId::Root => true,
            ObjectId::Id(OpId(c, a)) => {
                let obj = self.find_actor(a).and_then(|a| self.objects.iter().position(|o| *o == (*c, a)));
                obj.is_none_or(|obj| obj as u32 == members || member_maps.contains(&(obj as u32)))
            }
        })
    }

    /// The operation shown at a key (Automerge's winner: the greatest counter, then actor).
    fn winner<'a>(&'a self, visible: &'a [Visible]) -> Option<&'a Held> {
        visible
            .iter()
            .max_by(|x, y| x.0.cmp(&y.0).then_with(|| self.actors[x.1 as usize].cmp(&self.actors[y.1 as usize])))
            .map(|(_, _, held)| held)
    }

    fn entries(&self, obj: u32) -> impl Iterator<Item = &(u32, String, Vec<Visible>)> {
        let start = self.keys.partition_point(|k| k.0 < obj);
        self.keys[start..].iter().take_while(move |k| k.0 == obj)
    }

    /// The household's state, as [`super::Household::state`] reads it from the document.
    pub fn state(&self, id: HouseholdId) -> HouseholdState {
        read::state_of(self, id)
    }

    /// Whether the Pilar layout is there (the top-level maps), as [`super::Household::check_layout`] asks.
    pub fn has_layout(&self) -> bool {
        read::root_objects_of(self).is_some()
    }

    /// Fields whose concurrent values differ, counted as [`super::Household::conflicts`] lists them.
    pub fn conflict_count(&self) -> usize {
        let Some(roots) = read::root_objects_of(self) else { return 0 };
        // A key holding several values is a conflict when they differ (`values_disagree`: values
        // no answer reads, and maps, are left out as there).
        let disagree = |visible: &[Visible]| {
            let mut values = visible.iter().filter_map(|(_, _, held)| match held {
                Held::Value(Some(value)) => Some(value),
                _ => None,
            });
            values.next().is_some_and(|first| values.any(|v| v != first))
        };
        let several = |obj: u32, skip: &[&str]| {
            self.entries(obj)
                .filter(|(_, key, visible)| visible.len() > 1 && !skip.contains(&key.as_str()) && disagree(visible))
                .count()
        };
        let mut count = several(roots["answers"], &[]) + several(roots["review"], &[]) + several(roots["links"], &[]);
        for (key, member) in self.children(&roots["members"]) {
            if key.parse::<super::MemberId>().is_ok() {
                count += several(member, &super::MEMBER_REMOVAL_KEYS);
            }
        }
        count
    }
}

impl Source for Registers {
    type Obj = u32;

    fn root(&self) -> u32 {
        0
    }

    fn map_at(&self, obj: &u32, key: &str) -> Option<u32> {
        let (_, _, visible) = self.entries(*obj).find(|(_, k, _)| k == key)?;
        match self.winner(visible)? {
            Held::Map(child) => Some(*child),
            Held::Value(_) => None,
        }
    }

    fn values_at(&self, obj: &u32, key: &str) -> Vec<FieldValue> {
        let Some((_, _, visible)) = self.entries(*obj).find(|(_, k, _)| k == key) else { return Vec::new() };
        visible
            .iter()
            .filter_map(|(_, _, held)| match held {
                Held::Value(value) => value.clone(),
                Held::Map(_) => None,
            })
            .collect()
    }

    fn scalars(&self, obj: &u32) -> BTreeMap<String, FieldValue> {
        self.entries(*obj)
            .filter_map(|(_, key, visible)| match self.winner(visible)? {
                Held::Value(Some(value)) => Some((key.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    fn children(&self, obj: &u32) -> Vec<(String, u32)> {
        self.entries(*obj)
            .filter_map(|(_, key, visible)| match self.winner(visible)? {
                Held::Map(child) => Some((key.clone(), *child)),
                Held::Value(_) => None,
            })
            .collect()
    }
}
