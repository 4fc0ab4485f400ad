//! Reading a household document into plain Rust values (current, winning values only).

use super::{HouseholdId, MemberId, VisitId};
use crate::value::FieldValue;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value, ValueRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The top-level maps of a household document, created once by the creating device.
pub const ROOT_MAPS: [&str; 6] = ["answers", "members", "visits", "review", "links", "photos"];
/// Keys of a member map that record its removal rather than an answer.
pub const MEMBER_REMOVAL_KEYS: [&str; 3] = ["removed_at", "removed_by", "removed_reason"];
/// Keys of a visit map that the model itself writes; every other key is a visit-form answer.
pub const VISIT_KEYS: [&str; 8] = ["at", "user", "device", "outcome", "lat", "lon", "accuracy_m", "note"];

/// A household as a screen or an export sees it: the current value of everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HouseholdState {
    /// The household's id.
    pub id: HouseholdId,
    /// The form key (`id@version`) the household was created with.
    pub form: String,
    /// Household-level answers.
    pub answers: BTreeMap<String, FieldValue>,
    /// Members, removed ones included (see [`Member::removed`]), ordered by `seq` then id.
    pub members: Vec<Member>,
    /// Visits, oldest first.
    pub visits: Vec<Visit>,
    /// The supervisor's review.
    pub review: Review,
    /// Links to other households (`duplicate_of`, `merged_into`).
    pub links: BTreeMap<String, FieldValue>,
    /// Photos attached to the household, by content address (SHA-256 hex).
    #[serde(default)]
    pub photos: BTreeMap<String, PhotoRef>,
}

/// A photo attached to a household: the reference the document holds (`photos.<sha256>`); the
/// bytes travel separately (the device store's photo table, `PUT /v1/photos/{sha256}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// What it shows (`house_front`, `house_inside`, `kk_card`, `other`).
    pub kind: String,
    /// Its size in bytes.
    pub bytes: i64,
    /// `image/jpeg` or `image/png`.
    pub mime: String,
    /// When it was attached (RFC 3339, the device's clock).
    pub taken_at: String,
    /// The user who attached it.
    pub by: String,
    /// The device it was attached on.
    pub device: String,
}

impl HouseholdState {
    /// Members still in the household (not removed).
    pub fn current_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.removed.is_none())
    }

    /// The most recent visit, by its recorded time.
    pub fn last_visit(&self) -> Option<&Visit> {
        self.visits.last()
    }

    /// The answer to a household-level field as text, for lists and search columns.
    pub fn answer_text(&self, field: &str) -> Option<String> {
        self.answers.get(field).map(|v| v.to_string())
    }
}

/// One member of a household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member's id.
    pub id: MemberId,
    /// The member's answers (name, NIK, sex, ...).
    pub answers: BTreeMap<String, FieldValue>,
    /// Set when the member was removed: removal is soft so concurrent edits are never lost.
    pub removed: Option<Removal>,
    /// The `seq` written in the document when it is not the member's number: two members added at
    /// once on two devices get the same No. urut, and every reader renumbers all but one of them
    /// the same way (see [`unique_numbers`]) until a person writes a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_seq: Option<i64>,
}

impl Member {
    /// The member's `seq` (No. urut ART), when answered.
    pub fn seq(&self) -> Option<i64> {
        self.answers.get("seq").and_then(FieldValue::as_int)
    }

    /// The member's full name, when answered.
    pub fn name(&self) -> Option<&str> {
        self.answers.get("full_name").and_then(FieldValue::as_text)
    }
}

/// When, by whom and why a member was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    /// RFC 3339 time of the removal.
    pub at: String,
    /// User who removed the member.
    pub by: String,
    /// Why (free text, e.g. "pindah").
    pub reason: String,
}

/// One visit to the household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// The visit's id.
    pub id: VisitId,
    /// RFC 3339 time of the visit, with the local offset (WIB, WITA or WIT).
    pub at: String,
    /// User who made the visit.
    pub user: String,
    /// Device the visit was recorded on.
    pub device: String,
    /// Visit-outcome code (domain.md §2.4).
    pub outcome: Option<i64>,
    /// GPS latitude.
    pub lat: Option<f64>,
    /// GPS longitude.
    pub lon: Option<f64>,
    /// GPS accuracy in metres.
    pub accuracy_m: Option<f64>,
    /// Free-text note.
    pub note: Option<String>,
    /// Answers to the form's visit-level fields (purpose, notice_given, ...).
    pub answers: BTreeMap<String, FieldValue>,
}

/// The review state of a household (written by supervisors only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Submitted, waiting for a supervisor.
    AwaitingReview,
    /// Approved at the recorded heads.
    Approved,
    /// Sent back to the enumerator with a comment.
    Returned,
}

impl ReviewStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::AwaitingReview => "awaiting_review",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Returned => "returned",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<ReviewStatus> {
        match s {
            "awaiting_review" => Some(ReviewStatus::AwaitingReview),
            "approved" => Some(ReviewStatus::Approved),
            "returned" => Some(ReviewStatus::Returned),
            _ => None,
        }
    }
}

/// The supervisor's review of a household.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Current status; `None` before anything was submitted or reviewed.
    pub status: Option<ReviewStatus>,
    /// Who set the status.
    pub by: Option<String>,
    /// When the status was set (RFC 3339).
    pub at: Option<String>,
    /// The document heads an approval covers (hex); any later change makes the approval stale.
    pub approved_heads: Vec<String>,
    /// Review comments, oldest first.
    pub comments: Vec<Comment>,
}

/// One review comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Who wrote it.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// The comment.
    pub text: String,
}

/// The ids of the top-level maps, or what is missing.
pub(super) fn root_objects<R: ReadDoc>(doc: &R) -> Result<BTreeMap<&'static str, ObjId>, String> {
    let mut out = BTreeMap::new();
    for key in ROOT_MAPS {
        match doc.get(ROOT, key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => {
                out.insert(key, id);
            }
            _ => return Err(format!("no `{key}` map")),
        }
    }
    Ok(out)
}

/// Convert an Automerge value to a field value; objects and nulls have none.
pub(super) fn to_field_value(value: &Value<'_>) -> Option<FieldValue> {
    use automerge::ScalarValue as S;
    match value {
        Value::Scalar(s) => match s.as_ref() {
            S::Str(t) => Some(FieldValue::Text(t.to_string())),
            S::Int(i) => Some(FieldValue::Int(*i)),
            S::Uint(u) => i64::try_from(*u).ok().map(FieldValue::Int),
            S::F64(f) => Some(FieldValue::Decimal(*f)),
            S::Boolean(b) => Some(FieldValue::Bool(*b)),
            S::Timestamp(t) => Some(FieldValue::Int(*t)),
            S::Counter(_) | S::Bytes(_) | S::Unknown { .. } | S::Null => None,
        },
        Value::Object(_) => None,
    }
}

/// The winning scalar values of a map, keyed by field.
pub(super) fn scalar_map<R: ReadDoc>(doc: &R, obj: &ObjId) -> BTreeMap<String, FieldValue> {
    // One pass over the map (`keys` then `get` per key would seek every key again).
    let mut out = BTreeMap::new();
    for item in doc.map_range(obj, ..) {
        if let Some(fv) = to_field_value(&item.value.into_value()) {
            out.insert(item.key.into_owned(), fv);
        }
    }
    out
}

/// Child maps of a map, keyed by their key (members, visits, comments).
pub(super) fn child_maps<R: ReadDoc>(doc: &R, obj: &ObjId) -> Vec<(String, ObjId)> {
    let mut out = Vec::new();
    for item in doc.map_range(obj, ..) {
        if matches!(item.value, ValueRef::Object(ObjType::Map)) {
            let id = item.id();
            out.push((item.key.into_owned(), id));
        }
    }
    out
}

fn text(map: &BTreeMap<String, FieldValue>, key: &str) -> Option<String> {
    map.get(key).map(|v| v.to_string())
}

/// Make every member's `seq` (No. urut) unique. Members added concurrently on two devices both
/// take the next number there; after the merge, the member whose id sorts first keeps it and the
/// others (in id order) get the numbers after the household's highest, so every device, the
/// server and every export number the members alike and "member 3" names one person. Removed
/// members keep their numbers (they stay in the history). The number written in the document is
/// kept in [`Member::entered_seq`]; writing a new `seq` (e.g. `pilar member edit … seq=5`) settles it.
fn unique_numbers(members: &mut [Member]) {
    let mut order: Vec<usize> = (0..members.len()).filter(|&i| members[i].seq().is_some()).collect();
    order.sort_by_key(|&i| (members[i].seq(), members[i].id));
    let mut next = members.iter().filter_map(Member::seq).max().unwrap_or(0);
    let mut taken = std::collections::BTreeSet::new();
    for i in order {
        let Some(seq) = members[i].seq() else { continue };
        if !taken.insert(seq) {
            next = next.saturating_add(1);
            members[i].entered_seq = Some(seq);
            members[i].answers.insert("seq".into(), FieldValue::Int(next));
        }
    }
}

/// Where a household's current values are read from: a document (through Automerge) or the
/// registers the device keeps beside it ([`super::Registers`]). One reading of the layout,
/// [`state_of`], serves both, so the two never read a household differently.
pub(crate) trait Source {
    /// A map.
    type Obj: Clone;
    /// The root map.
    fn root(&self) -> Self::Obj;
    /// The map shown at `key` of `obj`, if a map is shown there.
    fn map_at(&self, obj: &Self::Obj, key: &str) -> Option<Self::Obj>;
    /// Every value at `key` of `obj` that concurrent writes left visible (the winner among them).
    fn values_at(&self, obj: &Self::Obj, key: &str) -> Vec<FieldValue>;
    /// The values shown in `obj`, by key.
    fn scalars(&self, obj: &Self::Obj) -> BTreeMap<String, FieldValue>;
    /// The maps shown in `obj`, by key, in key order.
    fn children(&self, obj: &Self::Obj) -> Vec<(String, Self::Obj)>;
}

/// A document read through Automerge.
pub(crate) struct Doc<'a, R>(pub &'a R);

impl<R: ReadDoc> Source for Doc<'_, R> {
    type Obj = ObjId;

    fn root(&self) -> ObjId {
        ROOT
    }

    fn map_at(&self, obj: &ObjId, key: &str) -> Option<ObjId> {
        match self.0.get(obj, key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
            _ => None,
        }
    }

    fn values_at(&self, obj: &ObjId, key: &str) -> Vec<FieldValue> {
        self.0.get_all(obj, key).unwrap_or_default().into_iter().filter_map(|(v, _)| to_field_value(&v)).collect()
    }

    fn scalars(&self, obj: &ObjId) -> BTreeMap<String, FieldValue> {
        scalar_map(self.0, obj)
    }

    fn children(&self, obj: &ObjId) -> Vec<(String, ObjId)> {
        child_maps(self.0, obj)
    }
}

/// The top-level maps of `source`, if all are there.
pub(crate) fn root_objects_of<S: Source>(source: &S) -> Option<BTreeMap<&'static str, S::Obj>> {
    let root = source.root();
    ROOT_MAPS.iter().map(|key| source.map_at(&root, key).map(|obj| (*key, obj))).collect()
}

/// The form key a household's answers are read with, among the values concurrent saves left:
/// the highest version (see [`super::Household::form_key`]).
pub(crate) fn form_key_of(values: impl Iterator<Item = String>) -> String {
    values.max_by_key(|key| crate::form::split_key(key).map(|(_, version)| version)).unwrap_or_default()
}

/// Read the whole current state of a household document.
pub(super) fn state<R: ReadDoc>(doc: &R, id: HouseholdId) -> HouseholdState {
    state_of(&Doc(doc), id)
}

/// Read the whole current state of a household from `source`.
pub(crate) fn state_of<S: Source>(source: &S, id: HouseholdId) -> HouseholdState {
    let form = form_key_of(source.values_at(&source.root(), "form").iter().map(|v| v.to_string()));
    let Some(roots) = root_objects_of(source) else {
        return HouseholdState {
            id,
            form,
            answers: BTreeMap::new(),
            members: Vec::new(),
            visits: Vec::new(),
            review: Review::default(),
            links: BTreeMap::new(),
            photos: BTreeMap::new(),
        };
    };
    let answers = source.scalars(&roots["answers"]);
    let mut members: Vec<Member> = source
        .children(&roots["members"])
        .into_iter()
        .filter_map(|(key, obj)| {
            let id: MemberId = key.parse().ok()?;
            let mut answers = source.scalars(&obj);
            let removed = answers.contains_key("removed_at").then(|| Removal {
                at: text(&answers, "removed_at").unwrap_or_default(),
                by: text(&answers, "removed_by").unwrap_or_default(),
                reason: text(&answers, "removed_reason").unwrap_or_default(),
            });
            for k in MEMBER_REMOVAL_KEYS {
                answers.remove(k);
            }
            Some(Member { id, answers, removed, entered_seq: None })
        })
        .collect();
    unique_numbers(&mut members);
    members.sort_by_key(|m| (m.seq().unwrap_or(i64::MAX), m.id));
    let mut visits: Vec<Visit> = source
        .children(&roots["visits"])
        .into_iter()
        .filter_map(|(key, obj)| {
            let id: VisitId = key.parse().ok()?;
            let mut fields = source.scalars(&obj);
            let visit = Visit {
                id,
                at: text(&fields, "at").unwrap_or_default(),
                user: text(&fields, "user").unwrap_or_default(),
                device: text(&fields, "device").unwrap_or_default(),
                outcome: fields.get("outcome").and_then(FieldValue::as_int),
                lat: fields.get("lat").and_then(FieldValue::as_f64),
                lon: fields.get("lon").and_then(FieldValue::as_f64),
                accuracy_m: fields.get("accuracy_m").and_then(FieldValue::as_f64),
                note: text(&fields, "note"),
                answers: BTreeMap::new(),
            };
            for k in VISIT_KEYS {
                fields.remove(k);
            }
            Some(Visit { answers: fields, ..visit })
        })
        .collect();
    visits.sort_by(|a, b| visit_instant(a).cmp(&visit_instant(b)).then(a.id.cmp(&b.id)));
    let review_map = source.scalars(&roots["review"]);
    let mut comments: Vec<Comment> = source
        .map_at(&roots["review"], "comments")
        .map(|obj| {
            source
                .children(&obj)
                .into_iter()
                .map(|(_, c)| {
                    let m = source.scalars(&c);
                    Comment {
                        by: text(&m, "by").unwrap_or_default(),
                        at: text(&m, "at").unwrap_or_default(),
                        text: text(&m, "text").unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    comments.sort_by(|a, b| a.at.cmp(&b.at));
    let review = Review {
        status: review_map.get("status").and_then(|v| v.as_text()).and_then(ReviewStatus::parse),
        by: text(&review_map, "by"),
        at: text(&review_map, "at"),
        approved_heads: text(&review_map, "approved_heads")
            .map(|s| s.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
        comments,
    };
    let links = source.scalars(&roots["links"]);
    let photos = source
        .children(&roots["photos"])
        .into_iter()
        .map(|(key, obj)| {
            let m = source.scalars(&obj);
            let photo = PhotoRef {
                kind: text(&m, "kind").unwrap_or_default(),
                bytes: m.get("bytes").and_then(FieldValue::as_int).unwrap_or(0),
                mime: text(&m, "mime").unwrap_or_default(),
                taken_at: text(&m, "taken_at").unwrap_or_default(),
                by: text(&m, "by").unwrap_or_default(),
                device: text(&m, "device").unwrap_or_default(),
            };
            (key, photo)
        })
        .collect();
    HouseholdState { id, form, answers, members, visits, review, links, photos }
}

/// A visit's time as an instant for ordering (offsets differ across Indonesia's time zones).
fn visit_instant(v: &Visit) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(&v.at, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u128, seq: Option<i64>) -> Member {
        let mut answers = BTreeMap::new();
        if let Some(seq) = seq {
            answers.insert("seq".to_string(), FieldValue::Int(seq));
        }
        Member { id: MemberId(uuid::Uuid::from_u128(id)), answers, removed: None, entered_seq: None }
    }

    #[test]
    fn colliding_numbers_are_renumbered_after_the_highest_in_id_order() {
        let mut members =
            vec![member(9, Some(3)), member(1, Some(1)), member(5, Some(3)), member(7, Some(3)), member(2, None)];
        unique_numbers(&mut members);
        let numbers: Vec<(u128, Option<i64>, Option<i64>)> =
            members.iter().map(|m| (m.id.0.as_u128(), m.seq(), m.entered_seq)).collect();
        assert_eq!(
            numbers,
            vec![(9, Some(5), Some(3)), (1, Some(1), None), (5, Some(3), None), (7, Some(4), Some(3)), (2, None, None)]
        );
    }
}
