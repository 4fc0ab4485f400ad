//! Making an own change again on a newer document: for a device whose copy lost some of its own
//! changes (an old store restored, a save overwritten before saves and syncs were serialised), a
//! new change of its would reuse a sequence number the server already holds and be refused as
//! malformed forever. Replaying its operations as a fresh change keeps the work.

use super::{Household, ModelError, Saved};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Change, ObjId, ROOT};
use std::collections::HashMap;

/// Objects created by replayed changes: the original object id (`counter@actor`) → the new one,
/// so a later replayed change that writes into such an object (a member added, then edited)
/// finds it.
#[derive(Debug, Default)]
pub struct Replayed {
    created: HashMap<String, ObjId>,
}

impl Household {
    /// Apply the operations of `bytes` (one of this device's own changes that no longer fits this
    /// document's history) as a new change with the same message and time. Returns the new
    /// change, or `None` when the document already holds every value it wrote.
    pub fn replay(&mut self, bytes: &[u8], replayed: &mut Replayed) -> Result<Option<Saved>, ModelError> {
        let change = Change::from_bytes(bytes.to_vec()).map_err(|e| ModelError::BadChange(e.to_string()))?;
        let actor = change.actor_id().to_hex_string();
        let start = change.start_op().get();
        let mut options = CommitOptions::default().with_time(change.timestamp());
        if let Some(message) = change.message() {
            options = options.with_message(message.to_string());
        }
        let operations = change.decode().operations;
        // Objects the change writes into that exist before it: resolved before the transaction.
        let made_here: Vec<String> = (0..operations.len()).map(|i| format!("{}@{actor}", start + i as u64)).collect();
        let mut existing: HashMap<String, ObjId> = HashMap::new();
        for op in &operations {
            if let automerge::legacy::ObjectId::Id(_) = &op.obj {
                let text = op.obj.to_string();
                if !replayed.created.contains_key(&text) && !made_here.contains(&text) && !existing.contains_key(&text)
                {
                    let id = self.doc.import_obj(&text).map_err(|e| ModelError::Automerge(Box::new(e)))?;
                    existing.insert(text, id);
                }
            }
        }
        let mut tx = self.doc.transaction();
        for (index, op) in operations.iter().enumerate() {
            let obj = match &op.obj {
                automerge::legacy::ObjectId::Root => ROOT,
                other => {
                    let text = other.to_string();
                    match replayed.created.get(&text).or_else(|| existing.get(&text)) {
                        Some(id) => id.clone(),
                        None => return Err(ModelError::BadChange(format!("writes into unknown object {text}"))),
                    }
                }
            };
            let automerge::legacy::Key::Map(key) = &op.key else {
                return Err(ModelError::BadChange("a list operation (Pilar documents hold no lists)".into()));
            };
            match &op.action {
                automerge::legacy::OpType::Put(value) => tx.put(&obj, key.as_str(), value.clone())?,
                automerge::legacy::OpType::Make(kind) => {
                    let id = tx.put_object(&obj, key.as_str(), *kind)?;
                    replayed.created.insert(format!("{}@{actor}", start + index as u64), id);
                }
                automerge::legacy::OpType::Delete => tx.delete(&obj, key.as_str())?,
                _ => return Err(ModelError::BadChange("an operation Pilar never writes".into())),
            }
        }
        if tx.pending_ops() == 0 {
            tx.rollback();
            return Ok(None);
        }
        let (hash, _) = tx.commit_with(options);
        match hash {
            Some(hash) => Ok(Some(self.saved(hash)?)),
            None => Ok(None),
        }
    }
}
