//! The progress report: villages, enumerators and devices of an area, counted from the derived
//! facts on a read transaction (a report never holds up a sync).

use super::Service;
use super::duplicates::suspected_among;
use super::review::{Facts, facts};
use super::scope::in_areas;
use crate::clock::rfc3339;
use crate::storage::{AssignmentKind, StorageError, Transactions};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use sync_core::model::HouseholdId;
use sync_core::protocol::{DeviceProgress, ProgressReport, ProgressRow};

impl Service {
    /// Counts per village and enumerator of the areas (`None`: everywhere), and each device's
    /// last sync.
    pub fn progress(&self, areas: Option<&[String]>) -> Result<ProgressReport, StorageError> {
        self.refresh_derived()?;
        self.db.read(|tx| {
            let live = facts(tx, areas)?;
            let ids: HashSet<HouseholdId> = live.iter().map(|f| f.brief.household).collect();
            let in_duplicates = suspected_among(tx, &ids)?;
            let count = |row: &mut ProgressRow, f: &Facts| {
                row.total += 1;
                if f.visits > 0 {
                    row.visited += 1;
                }
                if let Some(code) = f.final_outcome {
                    *row.final_outcomes.entry(code).or_default() += 1;
                }
                match f.review.as_deref() {
                    Some("awaiting_review") => row.awaiting_review += 1,
                    Some("approved") => row.approved += 1,
                    Some("returned") => row.returned += 1,
                    _ => {}
                }
                row.conflicts += u64::from(f.brief.conflicts);
                if in_duplicates.contains(&f.brief.household) {
                    row.duplicates += 1;
                }
            };
            let mut villages: BTreeMap<String, ProgressRow> = BTreeMap::new();
            // Villages assigned in the area appear even before their first household.
            let mut enumerator_villages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (user, village) in tx.active_assignments(AssignmentKind::Village)? {
                if in_areas(&village, areas) {
                    villages.entry(village.clone()).or_default();
                    enumerator_villages.entry(user).or_default().insert(village);
                }
            }
            let mut by_village: HashMap<&str, Vec<&Facts>> = HashMap::new();
            for f in &live {
                count(villages.entry(f.village.clone()).or_default(), f);
                by_village.entry(f.village.as_str()).or_default().push(f);
            }
            let mut enumerators: Vec<ProgressRow> = Vec::new();
            for (user, theirs) in &enumerator_villages {
                let mut row = ProgressRow { key: user.clone(), ..ProgressRow::default() };
                let theirs = theirs.iter().filter_map(|v| by_village.get(v.as_str())).flatten();
                for f in theirs {
                    row.total += 1;
                    if f.last_visit_by.as_deref() == Some(user.as_str()) {
                        let total = row.total;
                        count(&mut row, f);
                        row.total = total;
                    }
                }
                enumerators.push(row);
            }
            let villages = villages
                .into_iter()
                .map(|(code, mut row)| {
                    row.name =
                        sync_core::ids::VillageCode::parse(&code).ok().and_then(|c| c.name()).map(str::to_string);
                    row.key = code;
                    row
                })
                .collect();
            let last_syncs = tx.last_responses()?;
            let devices = tx
                .devices()?
                .into_iter()
                .filter(|d| enumerator_villages.contains_key(&d.user))
                .map(|d| DeviceProgress {
                    last_sync_at: last_syncs.get(&d.id).map(|t| rfc3339(*t)),
                    user: d.user,
                    device: d.id.to_string(),
                    name: d.name,
                    revoked: d.revoked_at.is_some(),
                })
                .collect();
            Ok(ProgressReport { villages, enumerators, devices })
        })
    }
}
