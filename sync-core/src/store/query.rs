//! Listing and searching households through the search columns, without loading documents.

use super::households::name_key;
use super::{DeviceStore, StoreError};
use rusqlite::types::Value;
use serde::Serialize;

/// Which households to list; every filter that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this village code.
    pub village: Option<String>,
    /// Only this RT (compared as written, e.g. `003`).
    pub rt: Option<String>,
    /// Only households whose last visit had this outcome code.
    pub outcome: Option<i64>,
    /// Only households never visited.
    pub not_visited: bool,
    /// Only households with conflicting values.
    pub conflicted: bool,
    /// At most this many rows (all when `None`).
    pub limit: Option<usize>,
}

/// One row of a household list: what a field worker needs to pick the next house.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Household id.
    pub id: String,
    /// Village code.
    pub village: String,
    /// RT.
    pub rt: Option<String>,
    /// Name of the head of the family.
    pub head_name: Option<String>,
    /// KK number, masked in lists (first 4 and last 4 digits).
    pub kk_masked: Option<String>,
    /// Outcome code of the last visit.
    pub last_outcome: Option<i64>,
    /// Time of the last visit.
    pub last_visit_at: Option<String>,
    /// Number of visits.
    pub visits: i64,
    /// Number of current members.
    pub members: i64,
    /// Review status.
    pub review_status: Option<String>,
    /// Number of fields with conflicting values.
    pub conflicts: i64,
    /// Number of local changes not yet acknowledged by a server.
    pub pending_changes: i64,
}

/// Mask a 16-digit identifier for lists: `7314********0003`.
pub fn mask_identifier(digits: &str) -> String {
    let n = digits.chars().count();
    if n <= 8 {
        return "*".repeat(n);
    }
    digits.chars().enumerate().map(|(i, c)| if i < 4 || i >= n - 4 { c } else { '*' }).collect()
}

const SUMMARY_COLUMNS: &str = "h.id, h.village, h.rt, h.head_name, h.kk_number, h.last_outcome, h.last_visit_at,
    h.visit_count, h.member_count, h.review_status, h.conflict_count,
    (SELECT count(*) FROM outbox o WHERE o.household_id = h.id)";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    Ok(Summary {
        id: r.get(0)?,
        village: r.get(1)?,
        rt: r.get(2)?,
        head_name: r.get(3)?,
        kk_masked: r.get::<_, Option<String>>(4)?.map(|k| mask_identifier(&k)),
        last_outcome: r.get(5)?,
        last_visit_at: r.get(6)?,
        visits: r.get(7)?,
        members: r.get(8)?,
        review_status: r.get(9)?,
        conflicts: r.get(10)?,
        pending_changes: r.get(11)?,
    })
}

impl DeviceStore {
    /// Households matching `filter`, by village, RT and head name.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Summary>, StoreError> {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM households h WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(v) = &filter.village {
            args.push(Value::Text(v.clone()));
            sql.push_str(&format!(" AND h.village = ?{}", args.len()));
        }
        if let Some(rt) = &filter.rt {
            args.push(Value::Text(rt.clone()));
            sql.push_str(&format!(" AND h.rt = ?{}", args.len()));
        }
        if let Some(o) = filter.outcome {
            args.push(Value::Integer(o));
            sql.push_str(&format!(" AND h.last_outcome = ?{}", args.len()));
        }
        if filter.not_visited {
            sql.push_str(" AND h.visit_count = 0");
        }
        if filter.conflicted {
            sql.push_str(" AND h.conflict_count > 0");
        }
        sql.push_str(" ORDER BY h.village, h.rt, h.name_key, h.id");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Households whose head or a member matches `query`: a name (any part, ignoring case and
    /// punctuation), or digits matching the start of a NIK or KK number (at least 4 digits).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Summary>, StoreError> {
        let compact: String = query.chars().filter(|c| !c.is_whitespace() && *c != '.' && *c != '-').collect();
        let rows = if compact.len() >= 4 && compact.chars().all(|c| c.is_ascii_digit()) {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM households h
                 WHERE h.kk_number >= ?1 AND h.kk_number < ?1 || ':'
                    OR h.id IN (SELECT household_id FROM people WHERE nik >= ?1 AND nik < ?1 || ':')
                 ORDER BY h.village, h.rt, h.name_key, h.id LIMIT ?2"
            );
            let mut stmt = self.conn.prepare(&sql)?;
            stmt.query_map(rusqlite::params![compact, limit as i64], summary)?.collect::<Result<Vec<_>, _>>()?
        } else {
            let key = name_key(query);
            if key.is_empty() {
                return Ok(Vec::new());
            }
            let pattern = format!("%{key}%"); // name_key holds only letters, digits and spaces: no LIKE wildcards
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM households h
                 WHERE h.name_key LIKE ?1
                    OR h.id IN (SELECT household_id FROM people WHERE name_key LIKE ?1)
                 ORDER BY h.village, h.rt, h.name_key, h.id LIMIT ?2"
            );
            let mut stmt = self.conn.prepare(&sql)?;
            stmt.query_map(rusqlite::params![pattern, limit as i64], summary)?.collect::<Result<Vec<_>, _>>()?
        };
        Ok(rows)
    }
}
