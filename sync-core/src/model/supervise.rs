//! The supervisor's writes to a household document, made by the server on the supervisor's
//! behalf (with the device's [`DeviceId::on_server`](super::DeviceId::on_server) actor): a review
//! decision with its comment, and the resolution of a conflicting field.

use super::edit::{Edits, commit_options};
use super::read::root_objects;
use super::{Editor, FieldPath, Household, ModelError, Saved};
use crate::value::FieldValue;
use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The save action of a review decision.
pub const REVIEW_ACTION: &str = "review";
/// The save action of a conflict resolution.
pub const RESOLVE_ACTION: &str = "resolve";

/// What a supervisor decides about a visited household.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// The data is right as it stands (at the current heads).
    Approve,
    /// The enumerator must fix something; a comment says what.
    Return,
}

impl Household {
    /// Record a review decision as one change: `review.status/by/at`, `approved_heads` = the heads
    /// the decision covers (the document as it is now), and the comment in `review.comments`
    /// under `comment_id`. Any later change other than a review makes it stale.
    pub fn review(
        &mut self,
        editor: &Editor,
        decision: ReviewDecision,
        comment: Option<&str>,
        comment_id: Uuid,
    ) -> Result<Saved, ModelError> {
        let heads = self.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
        let status = match decision {
            ReviewDecision::Approve => super::ReviewStatus::Approved,
            ReviewDecision::Return => super::ReviewStatus::Returned,
        };
        let now = super::rfc3339_seconds(editor.now);
        self.doc.set_actor(editor.device.actor());
        let id = self.id;
        let mut tx = self.doc.transaction();
        let roots = root_objects(&tx).map_err(|detail| ModelError::Layout { household: id, detail })?;
        let review = &roots["review"];
        tx.put(review, "status", status.as_str())?;
        tx.put(review, "by", editor.user.as_str())?;
        tx.put(review, "at", now.as_str())?;
        tx.put(review, "approved_heads", heads.as_str())?;
        if let Some(text) = comment.map(str::trim).filter(|t| !t.is_empty()) {
            let comments = match tx.get(review, "comments")? {
                Some((Value::Object(ObjType::Map), obj)) => obj,
                _ => tx.put_object(review, "comments", ObjType::Map)?,
            };
            let entry = tx.put_object(&comments, comment_id.to_string().as_str(), ObjType::Map)?;
            tx.put(&entry, "by", editor.user.as_str())?;
            tx.put(&entry, "at", now.as_str())?;
            tx.put(&entry, "text", text)?;
        }
        let (hash, _) = tx.commit_with(commit_options(editor, REVIEW_ACTION));
        let hash = hash.ok_or_else(|| ModelError::Layout { household: id, detail: "empty review".into() })?;
        self.saved(hash)
    }

    /// Write `value` at `path` (`None` clears it) as one change, superseding every concurrent
    /// value there: this is how a conflict is resolved. A conflicting key is written even when the
    /// chosen value is the current winner (the new write is what replaces the others); a settled
    /// key that already holds `value` (once, or several times concurrently) gives no change (`None`).
    pub fn resolve(
        &mut self,
        editor: &Editor,
        path: &FieldPath,
        value: Option<FieldValue>,
    ) -> Result<Option<Saved>, ModelError> {
        let mut edits = Edits::default();
        match path {
            FieldPath::Answer(k) => {
                edits.answers.insert(k.clone(), value.clone());
            }
            FieldPath::Member(m, k) => edits.edit_members.push((*m, BTreeMap::from([(k.clone(), value.clone())]))),
            FieldPath::Review(k) => {
                edits.review.insert(k.clone(), value.clone());
            }
            FieldPath::Link(k) => {
                edits.links.insert(k.clone(), value.clone());
            }
            FieldPath::Visit(..) => {
                return Err(ModelError::BadPath(format!(
                    "{path} is part of a recorded visit; visits are never edited, so it cannot be resolved"
                )));
            }
        }
        // A conflicting key is always written (see `edit::put_value`); a settled key already
        // holding `value` (alone, or as equal concurrent values) needs no change.
        let (_, saved) = self
            .apply(editor, RESOLVE_ACTION, &edits, |_| Ok::<(), ()>(()))?
            .map_err(|()| ModelError::BadPath(format!("{path} could not be written")))?;
        Ok(saved)
    }
}
