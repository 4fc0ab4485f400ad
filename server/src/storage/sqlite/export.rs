//! Export pages on SQLite: a kecamatan's or kabupaten's households in id order, loaded one at a
//! time and filtered (approved now, visited in a date range), so memory stays flat however large
//! the area.

use crate::storage::StorageError;
use rusqlite::params;
use sync_core::model::{DeviceId, Household, HouseholdId};
use sync_core::protocol::{ExportFilter, ExportPage};

/// Rows read per page at most, whatever the filters keep: bounds the time of one request.
const SCAN_FACTOR: u32 = 10;

/// One page: households of `area` after `after` that pass `filter`.
pub(super) fn page(
    conn: &rusqlite::Connection,
    area: &str,
    after: Option<HouseholdId>,
    limit: u32,
    filter: &ExportFilter,
) -> Result<ExportPage, StorageError> {
    let prefix = format!("{area}.");
    let total = match after {
        None => Some(conn.query_row(
            "SELECT count(*) FROM households WHERE substr(village, 1, length(?1)) = ?1",
            params![prefix],
            |r| r.get::<_, i64>(0),
        )? as u64),
        Some(_) => None,
    };
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let scan = limit.saturating_mul(SCAN_FACTOR).max(1);
    let mut stmt = conn.prepare_cached(
        "SELECT id, doc FROM households WHERE id > ?1 AND substr(village, 1, length(?2)) = ?2 ORDER BY id LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![after, prefix, i64::from(scan) + 1])?;
    let mut households = Vec::new();
    let mut scanned = 0u32;
    let mut last: Option<HouseholdId> = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if scanned == scan || households.len() == limit as usize {
            more = true;
            break;
        }
        scanned += 1;
        let id: String = row.get(0)?;
        let doc: Vec<u8> = row.get(1)?;
        let id: HouseholdId = id.parse().map_err(|_| StorageError::Corrupt(format!("bad household id {id:?}")))?;
        last = Some(id);
        let household = Household::load(id, &doc, DeviceId(uuid::Uuid::nil()))
            .map_err(|e| StorageError::Corrupt(format!("household {id}: {e}")))?;
        let mut state = household.state();
        state.review.status = household.review_status(&state);
        if keep(&state, filter) {
            households.push(state);
        }
    }
    Ok(ExportPage { households, next_after: if more { last } else { None }, total, scanned })
}

fn keep(state: &sync_core::model::HouseholdState, filter: &ExportFilter) -> bool {
    // A household merged into another is the same family as its survivor, which carries its
    // members and visits: exporting both would count the family twice.
    if state.links.contains_key("merged_into") {
        return false;
    }
    if filter.approved_only && state.review.status != Some(sync_core::model::ReviewStatus::Approved) {
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
