//! What a set of changes writes, by place in the household layout: the server checks incoming
//! changes with it (the path policy of `sync::admit`, the values of form fields).

use super::read::{child_maps, root_objects};
use super::{Household, MemberId, VisitId};
use crate::value::FieldValue;
use automerge::{Change, ObjType, ROOT, ReadDoc, Value};
use std::collections::{HashMap, HashSet};

/// Where in the household layout an operation lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The document root (`schema`, `form`, the top-level maps).
    Root,
    /// `answers`.
    Answers,
    /// `members.<id>` (or `members` itself when the id is `None`).
    Member(Option<MemberId>),
    /// `visits.<id>` (or `visits` itself when the id is `None`).
    Visit(Option<VisitId>),
    /// `review` or anything below it.
    Review,
    /// `links`.
    Links,
    /// `photos.<sha256>` (or `photos` itself when the key is `None`).
    Photo(Option<String>),
    /// An object that is not part of the layout.
    Unknown,
}

/// One operation of an incoming change, placed.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenOp {
    /// Where it lands.
    pub place: Place,
    /// The map key it writes (empty for list operations, which the layout never uses).
    pub key: String,
    /// What it writes.
    pub write: Write,
}

/// The kind of write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A scalar value (`None` for a scalar with no field-value form, e.g. bytes or null).
    Scalar(Option<FieldValue>),
    /// A new object of this type.
    Object(ObjType),
    /// A deletion.
    Delete,
    /// Anything else (counters, marks): never produced by Pilar.
    Other,
}

/// The member and visit keys a document holds: what the changes of a new batch may not create
/// again (a map put over an existing one replaces it, hiding every edit made to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordKeys {
    /// Keys of `members`.
    pub members: HashSet<String>,
    /// Keys of `visits`.
    pub visits: HashSet<String>,
    /// Keys of `photos`.
    pub photos: HashSet<String>,
}

impl Household {
    /// The member and visit keys of the document as it is now.
    pub fn record_keys(&self) -> RecordKeys {
        let Ok(roots) = root_objects(&self.doc) else { return RecordKeys::default() };
        let keys = |top: &str| child_maps(&self.doc, &roots[top]).into_iter().map(|(k, _)| k).collect();
        RecordKeys { members: keys("members"), visits: keys("visits"), photos: keys("photos") }
    }

    /// Every operation in `changes`, placed in the layout. The changes must already be applied to
    /// this document (objects they create are then known).
    pub fn written_ops(&self, changes: &[Change]) -> Vec<WrittenOp> {
        let mut places: HashMap<String, Place> = HashMap::new();
        places.insert(ROOT.to_string(), Place::Root);
        if let Ok(roots) = root_objects(&self.doc) {
            let simple = [("answers", Place::Answers), ("review", Place::Review), ("links", Place::Links)];
            for (key, place) in simple {
                places.insert(roots[key].to_string(), place);
            }
            places.insert(roots["members"].to_string(), Place::Member(None));
            places.insert(roots["visits"].to_string(), Place::Visit(None));
            places.insert(roots["photos"].to_string(), Place::Photo(None));
            for (key, obj) in child_maps(&self.doc, &roots["photos"]) {
                places.insert(obj.to_string(), Place::Photo(Some(key)));
            }
            for (key, obj) in child_maps(&self.doc, &roots["members"]) {
                places.insert(obj.to_string(), key.parse().map(|m| Place::Member(Some(m))).unwrap_or(Place::Unknown));
            }
            for (key, obj) in child_maps(&self.doc, &roots["visits"]) {
                places.insert(obj.to_string(), key.parse().map(|v| Place::Visit(Some(v))).unwrap_or(Place::Unknown));
            }
            // Everything below review belongs to it.
            let mut stack = vec![roots["review"].clone()];
            while let Some(obj) = stack.pop() {
                for key in self.doc.keys(&obj) {
                    if let Ok(Some((Value::Object(_), child))) = self.doc.get(&obj, key.as_str()) {
                        places.insert(child.to_string(), Place::Review);
                        stack.push(child);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for change in changes {
            for op in change.decode().operations {
                let place = places.get(&op.obj.to_string()).cloned().unwrap_or(Place::Unknown);
                let key = match &op.key {
                    automerge::legacy::Key::Map(k) => k.to_string(),
                    automerge::legacy::Key::Seq(_) => String::new(),
                };
                let write = match &op.action {
                    automerge::legacy::OpType::Put(v) => {
                        Write::Scalar(super::read::to_field_value(&Value::Scalar(std::borrow::Cow::Borrowed(v))))
                    }
                    automerge::legacy::OpType::Make(t) => Write::Object(*t),
                    automerge::legacy::OpType::Delete => Write::Delete,
                    _ => Write::Other,
                };
                out.push(WrittenOp { place, key, write });
            }
        }
        out
    }
}
