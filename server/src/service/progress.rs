//! The progress report: villages, enumerators and devices of an area, counted from the derived
//! facts on a read transaction (a report never holds up a sync). The database counts the
//! households ([`crate::storage::ReadTx::facts_tally`]); only households in a suspected pair or
//! with an open fold disagreement are read one by one.

use super::Service;
use super::duplicates::suspected_in;
use super::review::open_disagreement_counts;
use super::scope::in_areas;
use crate::clock::rfc3339;
use crate::storage::{AssignmentKind, StorageError, Transactions};
use std::collections::{BTreeMap, BTreeSet};
use sync_core::protocol::{DeviceProgress, ProgressReport, ProgressRow};

/// What one group of households adds to a row of the report.
struct Counted<'a> {
    households: u64,
    visited: bool,
    final_outcome: Option<i64>,
    review: Option<&'a str>,
    conflicts: u64,
    duplicates: u64,
}

fn add(row: &mut ProgressRow, c: &Counted<'_>) {
    row.total += c.households;
    if c.visited {
        row.visited += c.households;
    }
    if let Some(code) = c.final_outcome {
        *row.final_outcomes.entry(code).or_default() += c.households;
    }
    match c.review {
        Some("awaiting_review") => row.awaiting_review += c.households,
        Some("approved") => row.approved += c.households,
        Some("returned") => row.returned += c.households,
        _ => {}
    }
    row.conflicts += c.conflicts;
    row.duplicates += c.duplicates;
}

impl Service {
    /// Counts per village and enumerator of the areas (`None`: everywhere), and each device's
    /// last sync.
    pub fn progress(&self, areas: Option<&[String]>) -> Result<ProgressReport, StorageError> {
        self.refresh_derived()?;
        self.db.read(|tx| {
            let tally = tx.facts_tally(areas)?;
            let duplicates = suspected_in(tx, areas)?;
            let mut disagreements = Vec::new();
            for (survivor, open) in open_disagreement_counts(tx)? {
                if let Some(f) = tx.live_facts_of(survivor)?.filter(|f| in_areas(&f.village, areas)) {
                    disagreements.push((f.village, f.last_visit_by, u64::from(open)));
                }
            }
            let mut villages: BTreeMap<String, ProgressRow> = BTreeMap::new();
            // Villages assigned in the area appear even before their first household.
            let mut enumerator_villages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (user, village) in tx.active_assignments(AssignmentKind::Village)? {
                if in_areas(&village, areas) {
                    villages.entry(village.clone()).or_default();
                    enumerator_villages.entry(user).or_default().insert(village);
                }
            }
            let mut enumerators: BTreeMap<&str, ProgressRow> = enumerator_villages
                .keys()
                .map(|user| (user.as_str(), ProgressRow { key: user.clone(), ..ProgressRow::default() }))
                .collect();
            // An enumerator's row holds every household of their villages, and counts the rest
            // only for those whose last visit was theirs.
            let mut count = |village: &str, last_visit_by: Option<&str>, c: &Counted<'_>| {
                add(villages.entry(village.to_string()).or_default(), c);
                for (user, theirs) in &enumerator_villages {
                    if !theirs.contains(village) {
                        continue;
                    }
                    let Some(row) = enumerators.get_mut(user.as_str()) else { continue };
                    if last_visit_by == Some(user.as_str()) {
                        add(row, c);
                    } else {
                        row.total += c.households;
                    }
                }
            };
            for t in &tally {
                let c = Counted {
                    households: t.households,
                    visited: t.visited,
                    final_outcome: t.final_outcome,
                    review: t.review.as_deref(),
                    conflicts: t.conflicts,
                    duplicates: 0,
                };
                count(&t.village, t.last_visit_by.as_deref(), &c);
            }
            let nothing = |conflicts: u64, duplicates: u64| Counted {
                households: 0,
                visited: false,
                final_outcome: None,
                review: None,
                conflicts,
                duplicates,
            };
            for (village, by) in duplicates.values() {
                count(village, by.as_deref(), &nothing(0, 1));
            }
            for (village, by, open) in &disagreements {
                count(village, by.as_deref(), &nothing(*open, 0));
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
            let enumerators = enumerators.into_values().collect();
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
