//! What the office web page reads beyond the API's lists (issue 18): a page of households with
//! search and filters, and one household whole. Scope is decided by the callers with the same
//! `Service::areas` / `Service::may_act` as the API; facts and documents come from the same
//! functions the API uses.

use super::Service;
use super::facts::{lookup_key, normalised_name};
use super::review::facts;
use crate::storage::{StorageError, Transactions};
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

fn rt_digits(rt: &str) -> String {
    let trimmed = rt.trim().trim_start_matches('0');
    if trimmed.is_empty() && !rt.trim().is_empty() { "0".into() } else { trimmed.to_string() }
}

impl Service {
    /// The households of `areas` that match `filter`, one page of them, by village then head name.
    pub fn household_page(
        &self,
        areas: Option<&[String]>,
        filter: &HouseholdFilter,
    ) -> Result<HouseholdPage, StorageError> {
        self.refresh_derived()?;
        let (live, by_number) = self.db.read(|tx| {
            let live = facts(tx, areas)?;
            let text = filter.text.as_deref().map(str::trim).unwrap_or("");
            let by_number = if text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit()) {
                let mut ids = BTreeSet::new();
                for (kind, name) in [("shared_nik", "nik"), ("same_kk", "kk")] {
                    if let Some(key) = lookup_key(tx, name, text)? {
                        ids.extend(tx.households_with_key(kind, &key)?);
                    }
                }
                Some(ids)
            } else {
                None
            };
            Ok((live, by_number))
        })?;
        let name = filter.text.as_deref().map(normalised_name).filter(|n| !n.is_empty() && by_number.is_none());
        let rt = filter.rt.as_deref().map(rt_digits).filter(|r| !r.is_empty());
        let village = filter.village.as_deref().map(str::trim).filter(|v| !v.is_empty());
        let mut rows: Vec<HouseholdBrief> = live
            .into_iter()
            .filter(|f| by_number.as_ref().is_none_or(|ids| ids.contains(&f.brief.household)))
            .filter(|f| village.is_none_or(|v| f.village.starts_with(v)))
            .filter(|f| {
                name.as_deref()
                    .is_none_or(|n| f.brief.head_name.as_deref().is_some_and(|h| normalised_name(h).contains(n)))
            })
            .filter(|f| rt.as_deref().is_none_or(|r| f.brief.rt.as_deref().map(rt_digits).as_deref() == Some(r)))
            .filter(|f| match filter.review.as_deref() {
                None | Some("") => true,
                Some("none") => f.review.is_none(),
                Some(status) => f.review.as_deref() == Some(status),
            })
            .filter(|f| filter.outcome.is_none_or(|o| f.brief.last_outcome == Some(o)))
            .filter(|f| !filter.conflicts_only || f.brief.conflicts > 0)
            .map(|f| {
                let mut brief = f.brief;
                brief.village = f.village;
                brief
            })
            .collect();
        rows.sort_by(|a, b| (&a.village, &a.head_name, a.household).cmp(&(&b.village, &b.head_name, b.household)));
        let total = rows.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = filter.page.clamp(1, pages);
        let rows = rows.into_iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
        Ok(HouseholdPage { rows, total, page, pages })
    }

    /// How many households had their last visit on each of the `days` days up to `today` (the
    /// village's local date), oldest first, every day listed.
    pub fn visits_per_day(
        &self,
        areas: Option<&[String]>,
        today: time::Date,
        days: u32,
    ) -> Result<std::collections::BTreeMap<String, u64>, StorageError> {
        self.refresh_derived()?;
        let live = self.db.read(|tx| facts(tx, areas))?;
        let mut counts = std::collections::BTreeMap::new();
        for back in (0..days).rev() {
            let day = today - time::Duration::days(i64::from(back));
            counts.insert(day.to_string(), 0u64);
        }
        for f in live {
            let Some(at) = f.brief.last_visit_at.as_deref() else { continue };
            let zone = sync_core::ids::LocalZone::of_region_text(&f.village);
            let local = sync_core::ids::local_time_text(at, zone);
            if let Some(count) = counts.get_mut(local.get(..10).unwrap_or("")) {
                *count += 1;
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
