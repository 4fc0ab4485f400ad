//! Scope: which villages a caller may read and write, decided by the server from assignments,
//! never by the request. One home for every scope rule: the villages a device syncs (with the
//! grace after an assignment ends), the areas a supervisor or admin works on, whether a caller may
//! act on one household, and what "a village lies in an area" means.

use super::Service;
use crate::auth::Caller;
use crate::storage::{AssignmentKind, ReadTx, StorageError, Transactions};
use std::collections::BTreeMap;
use sync_core::ids::{DistrictCode, RegencyCode, VillageCode, regions};
use sync_core::model::{DeviceId, HouseholdId};
use sync_core::protocol::Role;
use time::OffsetDateTime;

/// Whether `village` lies in one of `areas` (village, kecamatan or kabupaten codes, matched by
/// whole dotted segments); `None` is everywhere.
pub fn in_areas(village: &str, areas: Option<&[String]>) -> bool {
    match areas {
        None => true,
        Some(areas) => areas.iter().any(|a| {
            village == a
                || (village.len() > a.len() && village.starts_with(a.as_str()) && village.as_bytes()[a.len()] == b'.')
        }),
    }
}

/// The villages a user works in now, and those taken from them (for accepting pending uploads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VillageScope {
    /// Villages with an active assignment, sorted: the device receives these.
    pub active: Vec<String>,
    /// Villages whose assignment ended and that are not active again, sorted by village: the
    /// device never receives them again, but its pending uploads for them may still be accepted
    /// for a while (see [`EndedVillage`]).
    pub ended: Vec<EndedAssignment>,
}

/// A village taken from a user, and when: the latest end among its assignment rows (a village
/// assigned, ended and assigned again has several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedAssignment {
    /// The village code.
    pub village: String,
    /// When its last assignment to the user ended.
    pub ended_at: OffsetDateTime,
}

/// A village whose assignment to the caller ended, as sync treats the calling device's pending
/// uploads for it. They are accepted only while [`EndedVillage::grace_open`], only from a device
/// that was handed the village before the end ([`EndedVillage::held_before_end`]), and only for
/// households that the server stored before the end or that the device created before it (the
/// time of the household's first change). Everything else is `out_of_scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedVillage {
    /// The village code.
    pub village: String,
    /// When the (latest) assignment ended.
    pub ended_at: OffsetDateTime,
    /// The end of the grace period for pending uploads (`ended_at` + the configured grace).
    pub grace_until: OffsetDateTime,
    /// Whether the grace period is still running for this request.
    pub grace_open: bool,
    /// Whether the calling device was handed the village (a login, sync or pack answer listed
    /// it) at or before `ended_at`.
    pub held_before_end: bool,
}

impl EndedVillage {
    /// The ended assignment `ended` as sync treats the device that was `handed` these villages
    /// (first times, see [`Service::villages_handed`]), with `grace` after the end, at `now`.
    pub fn new(
        ended: EndedAssignment,
        handed: &BTreeMap<String, OffsetDateTime>,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> EndedVillage {
        EndedVillage {
            held_before_end: handed.get(&ended.village).is_some_and(|first| *first <= ended.ended_at),
            grace_until: ended.ended_at + grace,
            grace_open: now < ended.ended_at + grace,
            village: ended.village,
            ended_at: ended.ended_at,
        }
    }

    /// Whether the device may still upload to the village (and read back what it needs to
    /// repair its copies): within the grace, and it held the village before the end.
    pub fn accepts_pending_work(&self) -> bool {
        self.grace_open && self.held_before_end
    }
}

/// Who is syncing and the villages they may read and write (decided by the server).
#[derive(Debug, Clone)]
pub struct SyncCaller {
    /// The user.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// The calling device.
    pub device: DeviceId,
    /// Villages the caller may read and write now.
    pub active: Vec<String>,
    /// Villages whose assignment ended: nothing is sent, pending uploads are accepted within the
    /// bounds of [`EndedVillage`].
    pub ended: Vec<EndedVillage>,
    /// When the calling device was registered (its first login): admission refuses changes dated
    /// much earlier (`forged_writer`).
    pub registered_at: OffsetDateTime,
}

impl SyncCaller {
    /// The ended village `village`, if the caller's assignment to it ended.
    pub fn ended_village(&self, village: &str) -> Option<&EndedVillage> {
        self.ended.iter().find(|e| e.village == village)
    }

    /// Whether the caller may read a household of `village` back (a device repairing its copy):
    /// an active village, or one taken from it that still accepts its pending work.
    pub fn may_read(&self, village: &str) -> bool {
        self.active.iter().any(|v| v == village)
            || self.ended_village(village).is_some_and(EndedVillage::accepts_pending_work)
    }
}

/// The active codes and the ended villages of one user's assignment rows of one kind.
pub(super) fn scope_of_rows(
    tx: &mut dyn ReadTx,
    kind: AssignmentKind,
    user: &str,
) -> Result<VillageScope, StorageError> {
    let rows = tx.assignments_of(kind, user)?;
    let mut active: Vec<String> = rows.iter().filter(|r| r.ended_at.is_none()).map(|r| r.code.clone()).collect();
    active.sort();
    active.dedup();
    // A village assigned, ended and assigned again has several rows: the latest end counts, and
    // none while it is active again.
    let mut ended: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    for row in &rows {
        if let Some(end) = row.ended_at
            && !active.contains(&row.code)
        {
            let latest = ended.entry(row.code.clone()).or_insert(end);
            *latest = (*latest).max(end);
        }
    }
    let ended = ended.into_iter().map(|(village, ended_at)| EndedAssignment { village, ended_at }).collect();
    Ok(VillageScope { active, ended })
}

impl Service {
    /// The villages `caller` may read and write: enumerators from their village assignments (with
    /// the villages taken from them, bounded by `grace` and by what this device held, see
    /// [`EndedVillage`]), supervisors every village of their kecamatan, admins none (they do not
    /// sync).
    pub fn sync_caller(
        &self,
        caller: &Caller,
        grace: time::Duration,
        now: OffsetDateTime,
    ) -> Result<SyncCaller, StorageError> {
        self.db.read(|tx| {
            let (active, ended) = match caller.role {
                Role::Enumerator => {
                    let scope = scope_of_rows(tx, AssignmentKind::Village, &caller.user)?;
                    let handed =
                        if scope.ended.is_empty() { BTreeMap::new() } else { tx.villages_handed(caller.device)? };
                    let ended =
                        scope.ended.into_iter().map(|e| EndedVillage::new(e, &handed, grace, now)).collect::<Vec<_>>();
                    (scope.active, ended)
                }
                Role::Supervisor => {
                    let mut villages = Vec::new();
                    for code in scope_of_rows(tx, AssignmentKind::Kecamatan, &caller.user)?.active {
                        if let Ok(district) = DistrictCode::parse(&code) {
                            villages.extend(regions().villages_in_district(&district).map(|v| v.code.to_string()));
                        }
                    }
                    (villages, Vec::new())
                }
                Role::Admin => (Vec::new(), Vec::new()),
            };
            // The extractor found the device registered; a device row gone since is treated as new.
            let registered_at = tx.device(caller.device)?.map_or(now, |d| d.registered_at);
            Ok(SyncCaller {
                user: caller.user.clone(),
                role: caller.role,
                device: caller.device,
                active,
                ended,
                registered_at,
            })
        })
    }

    /// The areas a supervisor or admin works on for this request: `None` is everywhere (an admin
    /// without `area`). A supervisor may name one of their kecamatan or a village in one;
    /// enumerators may do none of the supervision work `what` names.
    pub fn areas(&self, caller: &Caller, area: Option<&str>, what: &str) -> Result<Option<Vec<String>>, StorageError> {
        let area = match area.map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(match (VillageCode::parse(a), DistrictCode::parse(a), RegencyCode::parse(a)) {
                (Ok(v), _, _) => v.as_str().to_string(),
                (_, Ok(k), _) => k.as_str().to_string(),
                (_, _, Ok(r)) => r.as_str().to_string(),
                _ => {
                    return Err(StorageError::Refused(format!(
                        "area {a:?} is not a village (73.14.01.1001), kecamatan (73.14.01) or kabupaten (73.14) code \
                         in the region table"
                    )));
                }
            }),
        };
        match caller.role {
            Role::Enumerator => {
                Err(StorageError::Forbidden(format!("enumerators cannot {what}; your kecamatan supervisor does")))
            }
            Role::Admin => Ok(area.map(|a| vec![a])),
            Role::Supervisor => {
                let mine = self.kecamatan_scope(&caller.user)?;
                match area {
                    None => Ok(Some(mine)),
                    Some(a) if mine.contains(&a) || in_areas(&a, Some(&mine)) => Ok(Some(vec![a])),
                    Some(a) => Err(StorageError::Forbidden(format!(
                        "{a} is not a kecamatan assigned to you; supervisors work on their own kecamatan ({})",
                        if mine.is_empty() { "none assigned yet".to_string() } else { mine.join(", ") }
                    ))),
                }
            }
        }
    }

    /// Check that `caller` may act on household `id` (its village lies in their areas). A refusal
    /// names nothing of the household: it is outside the caller's scope.
    pub fn may_act(&self, caller: &Caller, id: HouseholdId, what: &str) -> Result<(), StorageError> {
        let scope = self.areas(caller, None, what)?;
        let Some(village) = self.household_village(id)? else {
            return Err(StorageError::NotFound(format!(
                "no household {id} on the server; copy its id from `pilar review list` or `pilar conflicts`"
            )));
        };
        if !in_areas(&village, scope.as_deref()) {
            return Err(StorageError::Forbidden(format!(
                "household {id} is outside your kecamatan; its own supervisor reviews it"
            )));
        }
        Ok(())
    }

    /// Whether a supervisor may export `area` (a kecamatan or kabupaten code): admins anywhere,
    /// supervisors their own kecamatan, enumerators nowhere.
    pub fn may_export(&self, caller: &Caller, area: &str) -> Result<(), StorageError> {
        match caller.role {
            Role::Admin => Ok(()),
            Role::Supervisor if self.kecamatan_scope(&caller.user)?.iter().any(|k| k == area) => Ok(()),
            Role::Supervisor => Err(StorageError::Forbidden(format!(
                "{area} is not a kecamatan assigned to you; supervisors export their own kecamatan"
            ))),
            Role::Enumerator => {
                Err(StorageError::Forbidden("enumerators cannot export; ask your kecamatan supervisor".to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_match_whole_code_segments_only() {
        let panca = ["73.14.01".to_string()];
        assert!(in_areas("73.14.01.1001", Some(&panca)));
        assert!(!in_areas("73.14.011.1001", Some(&panca)), "a longer code is another kecamatan");
        assert!(!in_areas("73.14.02.1001", Some(&panca)));
        assert!(in_areas("73.14.02.1001", Some(&["73.14".to_string()])));
        assert!(in_areas("11.01.01.2001", None), "no areas: everywhere");
        assert!(!in_areas("73.14.01.1001", Some(&[])));
    }
}
