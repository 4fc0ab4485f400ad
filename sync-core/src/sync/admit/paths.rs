//! The path policy: for every place of the household layout, whether a device may put a value
//! there, delete one, or create a map. One table, the same for every device role, read by
//! admission for every operation of every pushed change (docs/protocol.md shows it).
//!
//! Roles do not differ: an enumerator's and a supervisor's device write the same places. What a
//! supervisor decides (review, conflict resolution, merges) is written by the server under its own
//! actor through the supervision endpoints, never pushed by a device; admins hold no villages.

use crate::model::Place;

/// A place of the household layout, as the path policy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// The document root: `schema`, `form`, `household_id` and the top-level maps.
    Root,
    /// `answers.<field>`.
    Answers,
    /// `members` itself: one map per member, keyed by uuid.
    Members,
    /// `members.<id>.<field>`: a member's answers and removal keys.
    Member,
    /// `visits` itself: one map per visit, keyed by uuid.
    Visits,
    /// `visits.<id>.<key>`: a visit's record keys and answers.
    Visit,
    /// `review` and everything below it.
    Review,
    /// `links`.
    Links,
    /// `photos` itself: one map per photo, keyed by its SHA-256.
    Photos,
    /// `photos.<sha256>.<key>`: a photo reference's record keys.
    Photo,
    /// Any object that is not part of the layout.
    Outside,
}

impl Area {
    /// The area an operation's place belongs to.
    pub fn of(place: &Place) -> Area {
        match place {
            Place::Root => Area::Root,
            Place::Answers => Area::Answers,
            Place::Member(None) => Area::Members,
            Place::Member(Some(_)) => Area::Member,
            Place::Visit(None) => Area::Visits,
            Place::Visit(Some(_)) => Area::Visit,
            Place::Review => Area::Review,
            Place::Links => Area::Links,
            Place::Photo(None) => Area::Photos,
            Place::Photo(Some(_)) => Area::Photo,
            Place::Unknown => Area::Outside,
        }
    }
}

/// What a device may do with one kind of operation at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Only in a new household's first batch, and only the layout's own keys (`schema`, `form`,
    /// `household_id` put; the top-level maps created).
    NewHousehold,
    /// A form field of the place's scope that devices may edit: unknown names are refused
    /// (`unknown_field`), server-only fields too (`not_device_editable`); a put value must pass
    /// the field's rules (`invalid_value`).
    Field,
    /// A form field as [`Permission::Field`], or one of the keys the model writes there (a
    /// member's `removed_at`, `removed_by`, `removed_reason`), checked by `model::record` and the
    /// writer rules.
    FieldOrRecordKey,
    /// As [`Permission::FieldOrRecordKey`], but only into a record created in the same batch: a
    /// visit is recorded once, with its time and writer, and never edited afterwards.
    NewRecordOnly,
    /// A map at a uuid key the household has never held (a new member or visit); creating one
    /// again would replace it and hide every edit made to it.
    NewUuidKey,
    /// A map at a photo's SHA-256 (64 lowercase hex digits) the household has never held: a
    /// photo reference is recorded once, with its writer, and never replaced.
    NewPhotoKey,
    /// Never from a device.
    Refused {
        /// The refusal code.
        code: &'static str,
        /// Why, as the end of a lowercase sentence.
        why: &'static str,
    },
}

/// The operation a change makes at a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Set a key to a plain value.
    Put,
    /// Delete a key.
    Delete,
    /// Create a map at a key.
    Create,
}

/// What a device may do at one place of the household layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRule {
    /// The place.
    pub area: Area,
    /// Setting a key to a plain value.
    pub put: Permission,
    /// Deleting a key.
    pub delete: Permission,
    /// Creating a map at a key.
    pub create: Permission,
}

impl PathRule {
    /// The permission for one operation.
    pub fn permission(&self, operation: Operation) -> Permission {
        match operation {
            Operation::Put => self.put,
            Operation::Delete => self.delete,
            Operation::Create => self.create,
        }
    }
}

const fn refused(code: &'static str, why: &'static str) -> Permission {
    Permission::Refused { code, why }
}

const PLAIN: Permission = refused("invalid_layout", "answers hold plain values, never maps");
const REVIEW: Permission = refused(
    "review_forbidden",
    "review is written by the server when a supervisor approves or returns (POST /v1/households/{id}/review), never pushed by a device",
);
const LINKS: Permission = refused(
    "not_device_editable",
    "links are written by the server when a supervisor merges households (POST /v1/duplicates/merge), never pushed by a device",
);
const PHOTO_RECORD: Permission = refused(
    "invalid_layout",
    "a photo reference is recorded once (kind, bytes, mime, taken_at, by, device) and never edited or deleted",
);
const OUTSIDE: Permission = refused("invalid_layout", "the change writes outside the household layout");

/// The path policy, one row per place; see the module doc.
pub const PATH_RULES: [PathRule; 11] = [
    PathRule {
        area: Area::Root,
        put: Permission::NewHousehold,
        delete: refused("invalid_layout", "the document root and its top-level maps are never deleted"),
        create: Permission::NewHousehold,
    },
    PathRule { area: Area::Answers, put: Permission::Field, delete: Permission::Field, create: PLAIN },
    PathRule {
        area: Area::Members,
        put: refused("invalid_layout", "members holds one map per member, keyed by uuid"),
        delete: refused(
            "invalid_layout",
            "a member is never deleted: remove it softly (removed_at, removed_by, removed_reason), so a colleague's concurrent edits to it are kept",
        ),
        create: Permission::NewUuidKey,
    },
    PathRule { area: Area::Member, put: Permission::FieldOrRecordKey, delete: Permission::Field, create: PLAIN },
    PathRule {
        area: Area::Visits,
        put: refused("invalid_layout", "visits holds one map per visit, keyed by uuid"),
        delete: refused("invalid_layout", "a visit is never deleted: it is the record of who was there and when"),
        create: Permission::NewUuidKey,
    },
    PathRule {
        area: Area::Visit,
        put: Permission::NewRecordOnly,
        delete: refused("invalid_layout", "a visit is recorded once and never edited"),
        create: PLAIN,
    },
    PathRule { area: Area::Review, put: REVIEW, delete: REVIEW, create: REVIEW },
    PathRule { area: Area::Links, put: LINKS, delete: LINKS, create: LINKS },
    PathRule {
        area: Area::Photos,
        put: refused("invalid_layout", "photos holds one map per photo, keyed by its SHA-256"),
        delete: PHOTO_RECORD,
        create: Permission::NewPhotoKey,
    },
    PathRule { area: Area::Photo, put: Permission::NewRecordOnly, delete: PHOTO_RECORD, create: PLAIN },
    PathRule { area: Area::Outside, put: OUTSIDE, delete: OUTSIDE, create: OUTSIDE },
];

/// The rule of one place.
pub fn path_rule(area: Area) -> &'static PathRule {
    // Every area has exactly one row (checked by the tests below).
    PATH_RULES.iter().find(|r| r.area == area).unwrap_or(&PATH_RULES[PATH_RULES.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREAS: [Area; 11] = [
        Area::Root,
        Area::Answers,
        Area::Members,
        Area::Member,
        Area::Visits,
        Area::Visit,
        Area::Review,
        Area::Links,
        Area::Photos,
        Area::Photo,
        Area::Outside,
    ];

    #[test]
    fn every_area_has_exactly_one_rule() {
        for area in AREAS {
            assert_eq!(PATH_RULES.iter().filter(|r| r.area == area).count(), 1, "{area:?}");
            assert_eq!(path_rule(area).area, area);
        }
    }

    #[test]
    fn links_and_review_are_never_a_devices_and_nothing_structural_is_deleted() {
        let code = |p: Permission| match p {
            Permission::Refused { code, .. } => Some(code),
            _ => None,
        };
        for op in [Operation::Put, Operation::Delete, Operation::Create] {
            assert_eq!(code(path_rule(Area::Review).permission(op)), Some("review_forbidden"));
            assert_eq!(code(path_rule(Area::Links).permission(op)), Some("not_device_editable"));
        }
        for area in [Area::Root, Area::Members, Area::Visits, Area::Visit, Area::Photos, Area::Photo] {
            assert_eq!(code(path_rule(area).delete), Some("invalid_layout"), "{area:?}");
        }
        // What entry writes on a device stays allowed.
        assert_eq!(path_rule(Area::Answers).delete, Permission::Field, "clearing an answer");
        assert_eq!(path_rule(Area::Member).put, Permission::FieldOrRecordKey, "a soft removal");
        assert_eq!(path_rule(Area::Members).create, Permission::NewUuidKey, "a new member");
        assert_eq!(path_rule(Area::Visit).put, Permission::NewRecordOnly, "a new visit");
        assert_eq!(path_rule(Area::Photos).create, Permission::NewPhotoKey, "a new photo reference");
        assert_eq!(path_rule(Area::Photo).put, Permission::NewRecordOnly, "a new photo reference's keys");
    }
}
