//! What the office web page reads beyond the API's lists (issue 18): a page of households with
//! search and filters, and one household whole. Scope is decided by the callers with the same
//! `Service::areas` / `Service::may_act` as the API; facts and documents come from the same
//! functions the API uses.

use super::Service;
use super::facts::{from_json, lookup_key, normalised_name, normalised_rt};
use super::review::open_disagreement_counts;
use crate::storage::{FactsQuery, StorageError, Transactions};
use std::collections::BTreeSet;
use sync_core::model::{DeviceId, Household, HouseholdId};
use sync_core::protocol::HouseholdBrief;

/// Households shown on one page of the table.
pub const PAGE_SIZE: usize = 50;

/// What the households table is filtered by (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HouseholdFilter {
    /// A head's name (any part, case and punctuation ignored), or a 16-digit NIK or KK number
    /// (found through the facts' keyed hashes, never stored as typed).
    pub text: Option<String>,
    /// A village code, or its start (`73.14.01.1001`).
    pub village: Option<String>,
    /// An RT (`003` = `3`).
    pub rt: Option<String>,
    /// A review status (`awaiting_review`, `approved`, `returned`, or `none` for not yet visited).
    pub review: Option<String>,
    /// The last visit's outcome code.
    pub outcome: Option<i64>,
    /// Only households with open conflicts.
    pub conflicts_only: bool,
    /// The page, from 1.
    pub page: usize,
}

/// One page of the households table.
#[derive(Debug, Clone)]
pub struct HouseholdPage {
    /// The households on this page.
    pub rows: Vec<HouseholdBrief>,
    /// How many households match in all.
    pub total: usize,
    /// This page (from 1).
    pub page: usize,
    /// How many pages.
    pub pages: usize,
}

impl Service {
    /// The households of `areas` that match `filter`, one page of them, by village then head name,
    /// filtered, counted and paged by the database.
    pub fn household_page(
        &self,
        areas: Option<&[String]>,
        filter: &HouseholdFilter,
    ) -> Result<HouseholdPage, StorageError> {
        self.refresh_derived()?;
        self.db.read(|tx| {
            let text = filter.text.as_deref().map(str::trim).unwrap_or("");
            let households = if text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit()) {
                let mut ids = BTreeSet::new();
                for (kind, name) in [("shared_nik", "nik"), ("same_kk", "kk")] {
                    if let Some(key) = lookup_key(tx, name, text)? {
                        ids.extend(tx.households_with_key(kind, &key)?);
                    }
                }
                Some(ids.into_iter().collect())
            } else {
                None
            };
            let name = Some(normalised_name(text)).filter(|n| !n.is_empty() && households.is_none());
            let nonempty =
                |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
            let mut query = FactsQuery {
                areas: areas.map(<[String]>::to_vec),
                households,
                village_prefix: nonempty(&filter.village),
                name_contains: name,
                rt_key: nonempty(&filter.rt).map(|rt| normalised_rt(&rt)),
                review: match filter.review.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some("none") => Some(None),
                    Some(status) => Some(Some(status.to_string())),
                },
                last_outcome: filter.outcome,
                conflicts_only: filter.conflicts_only,
                offset: (filter.page.max(1) as u64 - 1) * PAGE_SIZE as u64,
                limit: PAGE_SIZE as u64,
            };
            let (mut total, mut rows) = tx.facts_page(&query)?;
            let pages = (total as usize).div_ceil(PAGE_SIZE).max(1);
            let page = filter.page.clamp(1, pages);
            if page != filter.page.max(1) {
                // Past the last page: show the last one.
                query.offset = (page as u64 - 1) * PAGE_SIZE as u64;
                (total, rows) = tx.facts_page(&query)?;
            }
            let open = open_disagreement_counts(tx)?;
            let rows = rows
                .into_iter()
                .map(|row| {
                    let mut brief: HouseholdBrief = from_json(&row.brief)?;
                    brief.conflicts = row.conflict_count + open.get(&row.household).copied().unwrap_or(0);
                    brief.village = row.village;
                    Ok(brief)
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            Ok(HouseholdPage { rows, total: total as usize, page, pages })
        })
    }

    /// Visits on each of the `days` days up to `today` (the village's local date), oldest first,
    /// every day listed (counted by the database from each household's visits per day).
    pub fn visits_per_day(
        &self,
        areas: Option<&[String]>,
        today: time::Date,
        days: u32,
    ) -> Result<std::collections::BTreeMap<String, u64>, StorageError> {
        self.refresh_derived()?;
        let mut counts = std::collections::BTreeMap::new();
        for back in (0..days).rev() {
            let day = today - time::Duration::days(i64::from(back));
            counts.insert(day.to_string(), 0u64);
        }
        let Some(from) = counts.keys().next().cloned() else { return Ok(counts) };
        for (day, visits) in self.db.read(|tx| tx.visits_per_day(areas, &from))? {
            if let Some(count) = counts.get_mut(&day) {
                *count += visits;
            }
        }
        Ok(counts)
    }

    /// One household whole, with its village: the server's document, loaded.
    pub fn household_whole(&self, id: HouseholdId) -> Result<Option<(String, Household)>, StorageError> {
        let row = self.db.read(|tx| tx.household(id))?;
        row.map(|row| {
            let household = Household::load(id, &row.doc, DeviceId(uuid::Uuid::nil()))
                .map_err(|e| StorageError::Corrupt(format!("household {id}: {e}")))?;
            Ok((row.village, household))
        })
        .transpose()
    }
}
