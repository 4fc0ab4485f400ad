//! Export pages: a kecamatan's or kabupaten's households in id order, loaded one at a time and
//! filtered (approved now, visited in a date range), so memory stays flat however large the area.

use super::{Service, corrupt};
use crate::storage::{StorageError, Transactions};
use sync_core::model::{DeviceId, Household, HouseholdId, HouseholdState, ReviewStatus};
use sync_core::protocol::{ExportFilter, ExportPage};

/// Rows read per page at most, whatever the filters keep: bounds the time of one request.
const SCAN_FACTOR: u32 = 10;

impl Service {
    /// One page of the households of `area` (a kecamatan or kabupaten code: its villages), in id
    /// order after `after`, that pass `filter`.
    pub fn export_page(
        &self,
        area: &str,
        after: Option<HouseholdId>,
        limit: u32,
        filter: &ExportFilter,
    ) -> Result<ExportPage, StorageError> {
        self.db.read(|tx| {
            let total = match after {
                None => Some(tx.area_household_count(area)?),
                Some(_) => None,
            };
            let scan = limit.saturating_mul(SCAN_FACTOR).max(1);
            let ask = limit.max(1).saturating_add(1);
            let mut households = Vec::new();
            let mut scanned = 0u32;
            let mut last: Option<HouseholdId> = None;
            let mut more = false;
            // Rows come a page at a time, so an unfiltered export reads only what it sends.
            'pages: loop {
                let rows = tx.area_households(area, last.or(after), ask)?;
                let exhausted = rows.len() < ask as usize;
                for (id, doc) in rows {
                    if scanned == scan || households.len() == limit as usize {
                        more = true;
                        break 'pages;
                    }
                    scanned += 1;
                    last = Some(id);
                    let household = Household::load(id, &doc, DeviceId(uuid::Uuid::nil()))
                        .map_err(|e| corrupt(format!("household {id}: {e}")))?;
                    let mut state = household.state();
                    state.review.status = household.review_status(&state);
                    if keep(&state, filter) {
                        households.push(state);
                    }
                }
                if exhausted {
                    break;
                }
            }
            Ok(ExportPage { households, next_after: if more { last } else { None }, total, scanned })
        })
    }
}

fn keep(state: &HouseholdState, filter: &ExportFilter) -> bool {
    // A household folded into another is the same family as its survivor, which carries its
    // members and visits: exporting both would count the family twice.
    if state.links.contains_key("merged_into") {
        return false;
    }
    if filter.approved_only && state.review.status != Some(ReviewStatus::Approved) {
        return false;
    }
    if filter.from.is_none() && filter.to.is_none() {
        return true;
    }
    state.visits.iter().any(|v| {
        let day = v.at.get(..10).unwrap_or_default();
        filter.from.as_deref().is_none_or(|from| day >= from) && filter.to.as_deref().is_none_or(|to| day <= to)
    })
}
