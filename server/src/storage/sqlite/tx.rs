//! The data operations of the seam ([`ReadTx`], [`Tx`]) in SQL on one SQLite connection. SQL and
//! row conversions only: what the rows mean is decided in `crate::service`.

use super::{parse_stored_time, stored_time};
use crate::storage::at_rest;
use crate::storage::facts_sql::{self, Placeholder, SqlArg};
use crate::storage::{
    Assignment, AssignmentKind, DeviceRow, FactsQuery, FactsRow, FactsTally, FeedChange, FoldDisagreementRow, FoldRow,
    FormDefaultRow, FormRow, HouseholdRow, HouseholdWrite, KeyGroup, LoginFailureRow, LoginSubjectKind, NewChange,
    NewUser, ReadTx, RosterImportRow, StorageError, StoredResponse, Tx, UserRecord, WebSessionRow, group_key_holders,
    held_keys,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet};
use sync_core::model::{DeviceId, HouseholdId};
use sync_core::protocol::Role;
use time::OffsetDateTime;
use uuid::Uuid;

/// One transaction's view of a connection: the writer inside `BEGIN IMMEDIATE`, or a reader inside
/// a deferred read transaction (then only [`ReadTx`] is handed out).
pub(super) struct SqliteTx<'c> {
    pub(super) conn: &'c Connection,
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(what.into())
}

fn household_id(text: &str) -> Result<HouseholdId, StorageError> {
    text.parse().map_err(|_| corrupt(format!("bad household id {text:?}")))
}

fn device_id(text: &str) -> Result<DeviceId, StorageError> {
    text.parse().map_err(|_| corrupt(format!("bad device id {text:?}")))
}

fn role(text: &str) -> Result<Role, StorageError> {
    Role::parse(text).ok_or_else(|| corrupt(format!("unknown role {text:?}")))
}

fn time_opt(text: Option<String>) -> Result<Option<OffsetDateTime>, StorageError> {
    text.as_deref().map(parse_stored_time).transpose()
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Result<OffsetDateTime, StorageError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|_| corrupt("bad sessions_ended_ms"))
}

/// A time of [`LoginFailureRow`] from its stored milliseconds.
fn throttle_time(ms: i64) -> Result<OffsetDateTime, StorageError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| corrupt(format!("bad time in login_failures: {ms}")))
}

fn table(kind: AssignmentKind) -> (&'static str, &'static str) {
    match kind {
        AssignmentKind::Village => ("village_assignments", "village"),
        AssignmentKind::Kecamatan => ("kecamatan_assignments", "kecamatan"),
    }
}

const DEVICE_COLUMNS: &str = "id, user_name, name, registered_at, last_seen_at, revoked_at, refresh_hash, \
     refresh_issued_at, previous_refresh_hash, previous_refresh_until, sessions_ended_ms";

type DeviceColumns = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn device_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn device_row(c: DeviceColumns) -> Result<DeviceRow, StorageError> {
    let (id, user, name, registered_at, last_seen_at, revoked_at, refresh_hash, issued, previous, until, ended) = c;
    Ok(DeviceRow {
        id: device_id(&id)?,
        user,
        name,
        registered_at: parse_stored_time(&registered_at)?,
        last_seen_at: parse_stored_time(&last_seen_at)?,
        revoked_at: time_opt(revoked_at)?,
        refresh_hash,
        refresh_issued_at: time_opt(issued)?,
        previous_refresh_hash: previous,
        previous_refresh_until: time_opt(until)?,
        sessions_ended_at: ended.map(from_millis).transpose()?,
    })
}

const FACTS_COLUMNS: &str = "household_id, village, version, brief, conflicts, conflict_count, review, final_outcome, \
     last_visit_by, visits, merged_into, name_key, rt_key, last_outcome";

fn facts_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<FactsRow, StorageError>> {
    let id: String = r.get(0)?;
    let household = match household_id(&id) {
        Ok(household) => household,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(FactsRow {
        household,
        village: r.get(1)?,
        version: count(r.get(2)?),
        brief: r.get(3)?,
        conflicts: r.get(4)?,
        conflict_count: count(r.get(5)?) as u32,
        review: r.get(6)?,
        final_outcome: r.get(7)?,
        last_visit_by: r.get(8)?,
        visits: count(r.get(9)?) as u32,
        merged_into: r.get(10)?,
        name_key: r.get(11)?,
        rt_key: r.get(12)?,
        last_outcome: r.get(13)?,
    }))
}

fn sql_args(args: &[SqlArg]) -> Vec<rusqlite::types::Value> {
    args.iter()
        .map(|a| match a {
            SqlArg::Text(t) => rusqlite::types::Value::Text(t.clone()),
            SqlArg::Int(i) => rusqlite::types::Value::Integer(*i),
        })
        .collect()
}

fn documents(
    conn: &Connection,
    rows: impl Iterator<Item = rusqlite::Result<(String, Vec<u8>)>>,
) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError> {
    let mut out = Vec::new();
    for row in rows {
        let (id, doc) = row?;
        out.push((household_id(&id)?, decode(conn, doc)?));
    }
    Ok(out)
}

/// A compression dictionary's bytes by id.
fn kept_dictionary(conn: &Connection, id: u32) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT dictionary FROM kept_dictionaries WHERE id = ?1")?
        .query_row(params![i64::from(id)], |r| r.get(0))
        .optional()?)
}

/// A stored document or change as it was given ([`at_rest::decode`]).
fn decode(conn: &Connection, stored: Vec<u8>) -> Result<Vec<u8>, StorageError> {
    at_rest::decode(stored, &mut |id| kept_dictionary(conn, id))
}

/// The id of the dictionary values are compressed with now: the last one stored.
fn current_dictionary(conn: &Connection) -> Result<Option<u32>, StorageError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM kept_dictionaries ORDER BY created_at DESC, id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    id.map(|id| u32::try_from(id).map_err(|_| corrupt(format!("compression dictionary id {id}")))).transpose()
}

/// A document or change as it is kept ([`at_rest::encode`], with the current dictionary).
fn encode(conn: &Connection, value: &[u8]) -> Result<Vec<u8>, StorageError> {
    let current = current_dictionary(conn)?;
    at_rest::encode(value, current, &mut |id| kept_dictionary(conn, id))
}

impl ReadTx for SqliteTx<'_> {
    fn user_count(&mut self) -> Result<u64, StorageError> {
        Ok(count(self.conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?))
    }

    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        let row: Option<(String, String, String, String)> = self
            .conn
            .prepare_cached("SELECT name, role, password_hash, created_at FROM users WHERE name = ?1")?
            .query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(name, r, password_hash, created_at)| {
            Ok(UserRecord { name, role: role(&r)?, password_hash, created_at: parse_stored_time(&created_at)? })
        })
        .transpose()
    }

    fn users(&mut self) -> Result<Vec<UserRecord>, StorageError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT name, role, password_hash, created_at FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, r, password_hash, created_at) = row?;
            out.push(UserRecord { name, role: role(&r)?, password_hash, created_at: parse_stored_time(&created_at)? });
        }
        Ok(out)
    }

    fn assignments_of(&mut self, kind: AssignmentKind, user: &str) -> Result<Vec<Assignment>, StorageError> {
        let (table, column) = table(kind);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {column}, started_at, ended_at FROM {table} WHERE user_name = ?1 ORDER BY {column}, started_at, id"
        ))?;
        let rows = stmt.query_map(params![user], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (code, started_at, ended_at) = row?;
            out.push(Assignment {
                user: user.to_string(),
                code,
                started_at: parse_stored_time(&started_at)?,
                ended_at: time_opt(ended_at)?,
            });
        }
        Ok(out)
    }

    fn active_assignments(&mut self, kind: AssignmentKind) -> Result<Vec<(String, String)>, StorageError> {
        let (table, column) = table(kind);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT user_name, {column} FROM {table} WHERE ended_at IS NULL ORDER BY user_name, {column}"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn villages_handed(&mut self, device: DeviceId) -> Result<BTreeMap<String, OffsetDateTime>, StorageError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT village, first_at FROM device_villages WHERE device_id = ?1")?;
        let rows = stmt
            .query_map(params![device.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|(village, first)| Ok((village, parse_stored_time(&first)?))).collect()
    }

    fn device(&mut self, id: DeviceId) -> Result<Option<DeviceRow>, StorageError> {
        let row = self
            .conn
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"))?
            .query_row(params![id.to_string()], device_columns)
            .optional()?;
        row.map(device_row).transpose()
    }

    fn devices(&mut self) -> Result<Vec<DeviceRow>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY user_name, registered_at, id"))?;
        let rows = stmt.query_map([], device_columns)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(device_row).collect()
    }

    fn server_secret(&mut self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?)
    }

    fn current_kept_dictionary(&mut self) -> Result<Option<u32>, StorageError> {
        current_dictionary(self.conn)
    }

    fn current_kept_dictionary_at(&mut self) -> Result<Option<OffsetDateTime>, StorageError> {
        let at: Option<String> = self
            .conn
            .prepare_cached("SELECT created_at FROM kept_dictionaries ORDER BY created_at DESC, id DESC LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        at.as_deref().map(parse_stored_time).transpose()
    }

    fn kept_dictionary(&mut self, id: u32) -> Result<Option<Vec<u8>>, StorageError> {
        kept_dictionary(self.conn, id)
    }

    fn household(&mut self, id: HouseholdId) -> Result<Option<HouseholdRow>, StorageError> {
        let row: Option<(String, Vec<u8>, String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT village, doc, heads, created_at FROM households WHERE id = ?1")?
            .query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(village, doc, heads, created_at)| {
            Ok(HouseholdRow { id, village, doc: decode(self.conn, doc)?, heads, created_at: time_opt(created_at)? })
        })
        .transpose()
    }

    fn household_heads(&mut self, id: HouseholdId) -> Result<Option<String>, StorageError> {
        Ok(self
            .conn
            .prepare_cached("SELECT heads FROM households WHERE id = ?1")?
            .query_row(params![id.to_string()], |r| r.get(0))
            .optional()?)
    }

    fn household_village(&mut self, id: HouseholdId) -> Result<Option<String>, StorageError> {
        Ok(self
            .conn
            .prepare_cached("SELECT village FROM households WHERE id = ?1")?
            .query_row(params![id.to_string()], |r| r.get(0))
            .optional()?)
    }

    fn households_with_prefix(&mut self, prefix: &str, limit: u32) -> Result<Vec<(HouseholdId, String)>, StorageError> {
        // Ids are stored as lowercase hyphenated UUIDs: a prefix is a range of them ('g' sorts
        // after every hex digit and the dash).
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, village FROM households WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![prefix, i64::from(limit)], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, village) = row?;
            out.push((household_id(&id)?, village));
        }
        Ok(out)
    }

    fn village_households(
        &mut self,
        village: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, doc FROM households WHERE village = ?1 AND id > ?2 ORDER BY id LIMIT ?3")?;
        let rows = stmt.query_map(params![village, after, i64::from(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        documents(self.conn, rows)
    }

    fn village_household_count(&mut self, village: &str) -> Result<u64, StorageError> {
        Ok(count(
            self.conn
                .prepare_cached("SELECT count(*) FROM households WHERE village = ?1")?
                .query_row(params![village], |r| r.get(0))?,
        ))
    }

    fn area_households(
        &mut self,
        area: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, doc FROM households WHERE id > ?1 AND substr(village, 1, length(?2)) = ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows =
            stmt.query_map(params![after, format!("{area}."), i64::from(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        documents(self.conn, rows)
    }

    fn area_household_count(&mut self, area: &str) -> Result<u64, StorageError> {
        Ok(count(
            self.conn
                .prepare_cached("SELECT count(*) FROM households WHERE substr(village, 1, length(?1)) = ?1")?
                .query_row(params![format!("{area}.")], |r| r.get(0))?,
        ))
    }

    fn feed_head(&mut self, village: &str) -> Result<u64, StorageError> {
        let head: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE((SELECT head FROM feed_heads WHERE village = ?1), (SELECT floor FROM feed_floor), 0)",
            )?
            .query_row(params![village], |r| r.get(0))?;
        Ok(count(head))
    }

    fn feed_after(
        &mut self,
        village: &str,
        after: u64,
        upto: u64,
        exclude: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<FeedChange>, StorageError> {
        let exclude = exclude.map(|d| d.to_string()).unwrap_or_default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT pos, household_id, bytes, hash FROM changes
             WHERE village = ?1 AND pos > ?2 AND pos <= ?3 AND device_id != ?4 ORDER BY pos LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![village, after as i64, upto.min(i64::MAX as u64) as i64, exclude, i64::from(limit)],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, String>(3)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (position, household, bytes, hash) = row?;
            out.push(FeedChange {
                position: count(position),
                household: household_id(&household)?,
                village: village.to_string(),
                hash,
                bytes: decode(self.conn, bytes)?,
            });
        }
        Ok(out)
    }

    fn stored_response(&mut self, device: DeviceId, batch: Uuid) -> Result<Option<StoredResponse>, StorageError> {
        let row: Option<(Vec<u8>, Option<i64>, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT response, max_changes, pull_from FROM sync_batches WHERE device_id = ?1 AND batch = ?2",
            )?
            .query_row(params![device.to_string(), batch.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(body, max_changes, pulled_from)| {
            Ok(StoredResponse {
                body,
                max_changes: max_changes.map(|m| m.clamp(0, i64::from(u32::MAX)) as u32),
                pulled_from: pulled_from.as_deref().map(super::super::pulled_from).transpose()?,
            })
        })
        .transpose()
    }

    fn last_responses(&mut self) -> Result<BTreeMap<DeviceId, OffsetDateTime>, StorageError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT device_id, max(created_at) FROM sync_batches GROUP BY device_id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = BTreeMap::new();
        for (device, at) in rows {
            // Rows of a malformed device id (none are written) are skipped rather than failing a report.
            if let Ok(device) = device.parse() {
                out.insert(device, parse_stored_time(&at)?);
            }
        }
        Ok(out)
    }

    fn roster_import(&mut self, import: Uuid) -> Result<Option<RosterImportRow>, StorageError> {
        let row: Option<(String, String, Option<String>, Option<String>)> = self
            .conn
            .prepare_cached("SELECT user_name, created_at, committed_at, summary FROM roster_imports WHERE id = ?1")?
            .query_row(params![import.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(user, created_at, committed_at, summary)| {
            Ok(RosterImportRow {
                user,
                created_at: parse_stored_time(&created_at)?,
                committed_at: time_opt(committed_at)?,
                summary,
            })
        })
        .transpose()
    }

    fn staged_chunks(&mut self, import: Uuid, below: u32) -> Result<u32, StorageError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM roster_chunks WHERE import_id = ?1 AND chunk < ?2")?
            .query_row(params![import.to_string(), below], |r| r.get(0))?;
        Ok(count(n) as u32)
    }

    fn roster_chunk(&mut self, import: Uuid, chunk: u32) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .conn
            .prepare_cached("SELECT households FROM roster_chunks WHERE import_id = ?1 AND chunk = ?2")?
            .query_row(params![import.to_string(), chunk], |r| r.get(0))
            .optional()?)
    }

    fn family_household(&mut self, family: &str) -> Result<Option<HouseholdId>, StorageError> {
        let id: Option<String> = self
            .conn
            .prepare_cached("SELECT household_id FROM roster_keys WHERE family_id = ?1")?
            .query_row(params![family], |r| r.get(0))
            .optional()?;
        id.as_deref().map(household_id).transpose()
    }

    fn stale_facts(&mut self, limit: u32) -> Result<Vec<(HouseholdId, u64)>, StorageError> {
        let mut stmt = self.conn.prepare_cached("SELECT household_id, version FROM facts_stale LIMIT ?1")?;
        let rows = stmt
            .query_map(params![i64::from(limit)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|(id, version)| Ok((household_id(&id)?, count(version)))).collect()
    }

    fn live_facts(&mut self, area: Option<&str>) -> Result<Vec<FactsRow>, StorageError> {
        let (exact, prefix) = match area {
            Some(a) => (Some(a.to_string()), Some(format!("{a}."))),
            None => (None, None),
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {FACTS_COLUMNS} FROM household_facts WHERE merged_into IS NULL
                 AND (?1 IS NULL OR village = ?1 OR substr(village, 1, length(?2)) = ?2)
             ORDER BY village, household_id"
        ))?;
        let rows = stmt.query_map(params![exact, prefix], facts_row)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().collect()
    }

    fn live_facts_of(&mut self, id: HouseholdId) -> Result<Option<FactsRow>, StorageError> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {FACTS_COLUMNS} FROM household_facts WHERE household_id = ?1 AND merged_into IS NULL"
            ))?
            .query_row(params![id.to_string()], facts_row)
            .optional()?;
        row.transpose()
    }

    fn facts_page(&mut self, query: &FactsQuery) -> Result<(u64, Vec<FactsRow>), StorageError> {
        let sql = facts_sql::facts_count(Placeholder::Question, query);
        let total: i64 = self
            .conn
            .prepare_cached(&sql.text)?
            .query_row(rusqlite::params_from_iter(sql_args(&sql.args)), |r| r.get(0))?;
        let sql = facts_sql::facts_page(Placeholder::Question, query, FACTS_COLUMNS);
        let mut stmt = self.conn.prepare_cached(&sql.text)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(sql_args(&sql.args)), facts_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((count(total), rows.into_iter().collect::<Result<Vec<_>, _>>()?))
    }

    fn facts_tally(&mut self, areas: Option<&[String]>) -> Result<Vec<FactsTally>, StorageError> {
        let sql = facts_sql::facts_tally(Placeholder::Question, areas);
        let mut stmt = self.conn.prepare_cached(&sql.text)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(sql_args(&sql.args)), |r| {
            Ok(FactsTally {
                village: r.get(0)?,
                last_visit_by: r.get(1)?,
                review: r.get(2)?,
                final_outcome: r.get(3)?,
                visited: r.get::<_, i64>(4)? != 0,
                households: count(r.get(5)?),
                conflicts: count(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn visits_per_day(&mut self, areas: Option<&[String]>, from: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let sql = facts_sql::visits_per_day(Placeholder::Question, areas, from);
        let mut stmt = self.conn.prepare_cached(&sql.text)?;
        let rows =
            stmt.query_map(rusqlite::params_from_iter(sql_args(&sql.args)), |r| Ok((r.get(0)?, count(r.get(1)?))))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn shared_keys(&mut self, max_households: u32) -> Result<Vec<KeyGroup>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT k.kind, k.key, k.household_id, k.village, k.last_visit_by FROM household_key_counts c
             JOIN household_keys k ON k.kind = c.kind AND k.key = c.key
             WHERE c.holders >= 2 AND c.holders <= ?1",
        )?;
        let rows = stmt
            .query_map(params![i64::from(max_households)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let rows = rows
            .into_iter()
            .map(|(kind, key, id, village, by)| Ok((kind, key, household_id(&id)?, village, by)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(group_key_holders(rows))
    }

    fn dismissed_pairs(&mut self) -> Result<BTreeSet<(HouseholdId, HouseholdId)>, StorageError> {
        let mut stmt = self.conn.prepare_cached("SELECT a, b FROM duplicate_dismissals")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|(a, b)| Ok((household_id(&a)?, household_id(&b)?))).collect()
    }

    fn fold_of(&mut self, retired: HouseholdId) -> Result<Option<FoldRow>, StorageError> {
        let row: Option<(String, String, String, String, String)> = self
            .conn
            .prepare_cached("SELECT survivor, fold, by_user, device_id, at FROM folds WHERE retired = ?1")?
            .query_row(params![retired.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        row.map(|(survivor, fold, user, device, at)| {
            Ok(FoldRow {
                retired,
                survivor: household_id(&survivor)?,
                fold,
                user,
                device: device_id(&device)?,
                at: parse_stored_time(&at)?,
            })
        })
        .transpose()
    }

    fn open_disagreements(&mut self, survivor: Option<HouseholdId>) -> Result<Vec<FoldDisagreementRow>, StorageError> {
        let only = survivor.map(|h| h.to_string());
        let mut stmt = self.conn.prepare_cached(
            "SELECT survivor, retired, path, other FROM fold_disagreements
             WHERE resolved_at IS NULL AND (?1 IS NULL OR survivor = ?1) ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![only], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(s, r, path, other)| {
                Ok(FoldDisagreementRow { survivor: household_id(&s)?, retired: household_id(&r)?, path, other })
            })
            .collect()
    }

    fn login_failures(
        &mut self,
        kind: LoginSubjectKind,
        subject: &str,
    ) -> Result<Option<LoginFailureRow>, StorageError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT failures, last_failure_ms, blocked_until_ms, forget_at_ms FROM login_failures
                 WHERE kind = ?1 AND subject = ?2",
            )?
            .query_row(params![kind.as_str(), subject], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?, r.get::<_, i64>(3)?))
            })
            .optional()?;
        row.map(|(failures, last, blocked, forget)| {
            Ok(LoginFailureRow {
                kind,
                subject: subject.to_string(),
                failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
                last_failure: throttle_time(last)?,
                blocked_until: blocked.map(throttle_time).transpose()?,
                forget_at: throttle_time(forget)?,
            })
        })
        .transpose()
    }

    fn login_failure_rows(&mut self) -> Result<u64, StorageError> {
        let n: i64 = self.conn.prepare_cached("SELECT count(*) FROM login_failures")?.query_row([], |r| r.get(0))?;
        Ok(count(n))
    }

    fn forms(&mut self) -> Result<Vec<FormRow>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, form_id, version, title, published_by, published_at FROM forms ORDER BY form_id, version",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, form_id, version, title, published_by, published_at) = row?;
            let version = u32::try_from(version).map_err(|_| corrupt(format!("form {key} has version {version}")))?;
            out.push(FormRow {
                key,
                form_id,
                version,
                title,
                published_by,
                published_at: parse_stored_time(&published_at)?,
            });
        }
        Ok(out)
    }

    fn form_definition(&mut self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .conn
            .prepare_cached("SELECT definition FROM forms WHERE key = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?)
    }

    fn form_defaults(&mut self) -> Result<Vec<FormDefaultRow>, StorageError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT area, form_key, set_by, set_at FROM form_defaults ORDER BY area")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (area, form_key, set_by, set_at) = row?;
            out.push(FormDefaultRow { area, form_key, set_by, set_at: parse_stored_time(&set_at)? });
        }
        Ok(out)
    }

    fn households_with_key(&mut self, kind: &str, key: &str) -> Result<Vec<HouseholdId>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT household_id FROM household_keys WHERE kind = ?1 AND key = ?2 ORDER BY household_id",
        )?;
        let rows = stmt.query_map(params![kind, key], |r| r.get::<_, String>(0))?;
        rows.map(|r| household_id(&r?)).collect()
    }

    fn web_session(&mut self, token_hash: &str) -> Result<Option<WebSessionRow>, StorageError> {
        let row: Option<(String, String, String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT user_name, csrf, created_at, expires_at, seen_at FROM web_sessions WHERE token_hash = ?1",
            )?
            .query_row(params![token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        row.map(|(user, csrf, created_at, expires_at, seen_at)| {
            Ok(WebSessionRow {
                token_hash: token_hash.to_string(),
                user,
                csrf,
                created_at: parse_stored_time(&created_at)?,
                expires_at: parse_stored_time(&expires_at)?,
                seen_at: parse_stored_time(&seen_at)?,
            })
        })
        .transpose()
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_user(&mut self, user: &NewUser) -> Result<bool, StorageError> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![user.name, user.role.as_str(), user.password_hash, stored_time(user.created_at)])?;
        Ok(inserted == 1)
    }

    fn start_assignment(
        &mut self,
        kind: AssignmentKind,
        user: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let (table, column) = table(kind);
        self.conn
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} (user_name, {column}, started_at) VALUES (?1, ?2, ?3)"
            ))?
            .execute(params![user, code, stored_time(now)])?;
        Ok(())
    }

    fn end_assignment(
        &mut self,
        kind: AssignmentKind,
        user: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let (table, column) = table(kind);
        self.conn
            .prepare_cached(&format!(
                "UPDATE {table} SET ended_at = ?3 WHERE user_name = ?1 AND {column} = ?2 AND ended_at IS NULL"
            ))?
            .execute(params![user, code, stored_time(now)])?;
        Ok(())
    }

    fn hand_villages(
        &mut self,
        device: DeviceId,
        villages: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let stale = stored_time(now - crate::storage::HANDED_AGAIN_AFTER);
        let (device, now) = (device.to_string(), stored_time(now));
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO device_villages (device_id, village, first_at, last_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (device_id, village) DO UPDATE SET last_at = excluded.last_at WHERE last_at <= ?4",
        )?;
        for village in villages {
            upsert.execute(params![device, village, now, stale])?;
        }
        Ok(())
    }

    fn insert_device(&mut self, d: &DeviceRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))?
            .execute(params![
                d.id.to_string(),
                d.user,
                d.name,
                stored_time(d.registered_at),
                stored_time(d.last_seen_at),
                d.revoked_at.map(stored_time),
                d.refresh_hash,
                d.refresh_issued_at.map(stored_time),
                d.previous_refresh_hash,
                d.previous_refresh_until.map(stored_time),
                d.sessions_ended_at.map(millis),
            ])?;
        Ok(())
    }

    fn update_device(&mut self, d: &DeviceRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "UPDATE devices SET name = ?2, last_seen_at = ?3, revoked_at = ?4, refresh_hash = ?5,
                     refresh_issued_at = ?6, previous_refresh_hash = ?7, previous_refresh_until = ?8,
                     sessions_ended_ms = ?9
                 WHERE id = ?1",
            )?
            .execute(params![
                d.id.to_string(),
                d.name,
                stored_time(d.last_seen_at),
                d.revoked_at.map(stored_time),
                d.refresh_hash,
                d.refresh_issued_at.map(stored_time),
                d.previous_refresh_hash,
                d.previous_refresh_until.map(stored_time),
                d.sessions_ended_at.map(millis),
            ])?;
        Ok(())
    }

    fn touch_device(&mut self, id: DeviceId, now: OffsetDateTime) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("UPDATE devices SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2")?
            .execute(params![id.to_string(), stored_time(now)])?;
        Ok(())
    }

    fn insert_server_secret(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")?
            .execute(params![name, value])?;
        Ok(())
    }

    fn lock_feed_head(&mut self, village: &str) -> Result<u64, StorageError> {
        // The writer connection holds SQLite's write lock from BEGIN IMMEDIATE: the head is
        // already the transaction's alone. The row is made on first use, at the floor.
        self.conn
            .prepare_cached(
                "INSERT INTO feed_heads (village, head) VALUES (?1, COALESCE((SELECT floor FROM feed_floor), 0))
                 ON CONFLICT (village) DO NOTHING",
            )?
            .execute(params![village])?;
        self.feed_head(village)
    }

    fn set_feed_head(&mut self, village: &str, head: u64) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("UPDATE feed_heads SET head = ?2 WHERE village = ?1")?
            .execute(params![village, head as i64])?;
        Ok(())
    }

    fn insert_kept_dictionary(&mut self, id: u32, dictionary: &[u8], at: OffsetDateTime) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO kept_dictionaries (id, dictionary, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![i64::from(id), dictionary, stored_time(at)])?;
        Ok(())
    }

    fn insert_change(&mut self, c: &NewChange<'_>) -> Result<bool, StorageError> {
        let bytes = encode(self.conn, c.bytes)?;
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO changes (pos, hash, household_id, village, device_id, user_name, bytes, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (hash) DO NOTHING",
            )?
            .execute(params![
                c.position as i64,
                c.hash,
                c.household.to_string(),
                c.village,
                c.device.to_string(),
                c.user,
                bytes,
                stored_time(c.received_at)
            ])?;
        Ok(inserted == 1)
    }

    fn put_household(&mut self, h: &HouseholdWrite<'_>) -> Result<(), StorageError> {
        let id = h.id.to_string();
        let at = stored_time(h.at);
        let doc = encode(self.conn, h.doc)?;
        let version: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at, created_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
                     updated_pos = excluded.updated_pos, updated_at = excluded.updated_at,
                     version = households.version + 1
                 RETURNING version",
            )?
            .query_row(params![id, h.village, doc, h.heads, h.position as i64, at], |r| r.get(0))?;
        self.conn
            .prepare_cached(
                "INSERT INTO facts_stale (household_id, version) VALUES (?1, ?2)
                 ON CONFLICT (household_id) DO UPDATE SET version = excluded.version",
            )?
            .execute(params![id, version])?;
        Ok(())
    }

    fn forget_responses(&mut self, device: DeviceId) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("DELETE FROM sync_batches WHERE device_id = ?1")?
            .execute(params![device.to_string()])?;
        Ok(())
    }

    fn prune_responses(&mut self, before: OffsetDateTime, limit: u32) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "DELETE FROM sync_batches WHERE rowid IN
                     (SELECT rowid FROM sync_batches WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
            )?
            .execute(params![stored_time(before), i64::from(limit)])?;
        Ok(())
    }

    fn store_response(
        &mut self,
        device: DeviceId,
        batch: Uuid,
        response: &StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sync_batches (device_id, batch, response, created_at, max_changes, pull_from)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id, batch) DO UPDATE SET response = excluded.response,
                     created_at = excluded.created_at, max_changes = excluded.max_changes,
                     pull_from = excluded.pull_from",
            )?
            .execute(params![
                device.to_string(),
                batch.to_string(),
                response.body,
                stored_time(now),
                response.max_changes,
                response.pulled_from.as_ref().map(super::super::pulled_from_text),
            ])?;
        Ok(())
    }

    fn insert_roster_import(&mut self, import: Uuid, user: &str, now: OffsetDateTime) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("INSERT INTO roster_imports (id, user_name, created_at) VALUES (?1, ?2, ?3)")?
            .execute(params![import.to_string(), user, stored_time(now)])?;
        Ok(())
    }

    fn prune_staged_imports(&mut self, before: OffsetDateTime, keep: Uuid) -> Result<(), StorageError> {
        // Their chunks go with them (ON DELETE CASCADE).
        self.conn
            .prepare_cached("DELETE FROM roster_imports WHERE committed_at IS NULL AND created_at < ?1 AND id != ?2")?
            .execute(params![stored_time(before), keep.to_string()])?;
        Ok(())
    }

    fn put_roster_chunk(&mut self, import: Uuid, chunk: u32, bytes: &[u8]) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO roster_chunks (import_id, chunk, households) VALUES (?1, ?2, ?3)
                 ON CONFLICT (import_id, chunk) DO UPDATE SET households = excluded.households",
            )?
            .execute(params![import.to_string(), chunk, bytes])?;
        Ok(())
    }

    fn finish_roster_import(&mut self, import: Uuid, at: OffsetDateTime, summary: &str) -> Result<(), StorageError> {
        let id = import.to_string();
        self.conn
            .prepare_cached("UPDATE roster_imports SET committed_at = ?2, summary = ?3 WHERE id = ?1")?
            .execute(params![id, stored_time(at), summary])?;
        self.conn.prepare_cached("DELETE FROM roster_chunks WHERE import_id = ?1")?.execute(params![id])?;
        Ok(())
    }

    fn put_family(&mut self, family: &str, household: HouseholdId) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO roster_keys (family_id, household_id) VALUES (?1, ?2)")?
            .execute(params![family, household.to_string()])?;
        Ok(())
    }

    fn put_facts(
        &mut self,
        f: &FactsRow,
        keys: &[(String, String)],
        visit_days: &[(String, u32)],
    ) -> Result<(), StorageError> {
        let id = f.household.to_string();
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO household_facts ({FACTS_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (household_id) DO UPDATE SET village = excluded.village, version = excluded.version,
                     brief = excluded.brief, conflicts = excluded.conflicts, conflict_count = excluded.conflict_count,
                     review = excluded.review, final_outcome = excluded.final_outcome,
                     last_visit_by = excluded.last_visit_by, visits = excluded.visits,
                     merged_into = excluded.merged_into, name_key = excluded.name_key, rt_key = excluded.rt_key,
                     last_outcome = excluded.last_outcome"
            ))?
            .execute(params![
                id,
                f.village,
                f.version as i64,
                f.brief,
                f.conflicts,
                i64::from(f.conflict_count),
                f.review,
                f.final_outcome,
                f.last_visit_by,
                i64::from(f.visits),
                f.merged_into,
                f.name_key,
                f.rt_key,
                f.last_outcome,
            ])?;
        // Only the keys that changed are touched, each with its holders' count.
        let held: Vec<(String, String, Option<String>, Option<String>)> = self
            .conn
            .prepare_cached("SELECT kind, key, village, last_visit_by FROM household_keys WHERE household_id = ?1")?
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let (old, moved) = held_keys(held, f);
        if moved {
            self.conn
                .prepare_cached("UPDATE household_keys SET village = ?2, last_visit_by = ?3 WHERE household_id = ?1")?
                .execute(params![id, f.village, f.last_visit_by])?;
        }
        let new: BTreeSet<(String, String)> = keys.iter().cloned().collect();
        for (kind, key) in old.difference(&new) {
            self.conn
                .prepare_cached("DELETE FROM household_keys WHERE kind = ?1 AND key = ?2 AND household_id = ?3")?
                .execute(params![kind, key, id])?;
            self.conn
                .prepare_cached("UPDATE household_key_counts SET holders = holders - 1 WHERE kind = ?1 AND key = ?2")?
                .execute(params![kind, key])?;
            self.conn
                .prepare_cached("DELETE FROM household_key_counts WHERE kind = ?1 AND key = ?2 AND holders <= 0")?
                .execute(params![kind, key])?;
        }
        for (kind, key) in new.difference(&old) {
            self.conn
                .prepare_cached(
                    "INSERT INTO household_keys (kind, key, household_id, village, last_visit_by)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![kind, key, id, f.village, f.last_visit_by])?;
            self.conn
                .prepare_cached(
                    "INSERT INTO household_key_counts (kind, key, holders) VALUES (?1, ?2, 1)
                     ON CONFLICT (kind, key) DO UPDATE SET holders = holders + 1",
                )?
                .execute(params![kind, key])?;
        }
        self.conn.prepare_cached("DELETE FROM household_visit_days WHERE household_id = ?1")?.execute(params![id])?;
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO household_visit_days (household_id, village, day, visits) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (household_id, day) DO UPDATE SET visits = visits + excluded.visits",
        )?;
        for (day, visits) in visit_days {
            insert.execute(params![id, f.village, day, i64::from(*visits)])?;
        }
        Ok(())
    }

    fn clear_stale_facts(&mut self, id: HouseholdId, version: u64) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("DELETE FROM facts_stale WHERE household_id = ?1 AND version <= ?2")?
            .execute(params![id.to_string(), version as i64])?;
        Ok(())
    }

    fn dismiss_pair(
        &mut self,
        a: HouseholdId,
        b: HouseholdId,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO duplicate_dismissals (a, b, by_user, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (a, b) DO NOTHING",
            )?
            .execute(params![a.to_string(), b.to_string(), user, stored_time(now)])?;
        Ok(())
    }

    fn insert_fold(&mut self, f: &FoldRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO folds (retired, survivor, fold, by_user, device_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                f.retired.to_string(),
                f.survivor.to_string(),
                f.fold,
                f.user,
                f.device.to_string(),
                stored_time(f.at)
            ])?;
        Ok(())
    }

    fn update_fold(&mut self, retired: HouseholdId, fold: &str) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("UPDATE folds SET fold = ?2 WHERE retired = ?1")?
            .execute(params![retired.to_string(), fold])?;
        Ok(())
    }

    fn touch_household(&mut self, id: HouseholdId) -> Result<(), StorageError> {
        self.conn.prepare_cached("UPDATE households SET id = id WHERE id = ?1")?.execute([id.to_string()])?;
        Ok(())
    }

    fn insert_disagreement(&mut self, row: &FoldDisagreementRow, now: OffsetDateTime) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO fold_disagreements (survivor, retired, path, other, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                row.survivor.to_string(),
                row.retired.to_string(),
                row.path,
                row.other,
                stored_time(now)
            ])?;
        Ok(())
    }

    fn close_disagreements(
        &mut self,
        survivor: HouseholdId,
        path: &str,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "UPDATE fold_disagreements SET resolved_by = ?3, resolved_at = ?4
                 WHERE survivor = ?1 AND path = ?2 AND resolved_at IS NULL",
            )?
            .execute(params![survivor.to_string(), path, user, stored_time(now)])?;
        Ok(())
    }

    fn put_login_failures(&mut self, row: &LoginFailureRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO login_failures (kind, subject, failures, last_failure_ms, blocked_until_ms, forget_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (kind, subject) DO UPDATE SET failures = excluded.failures,
                     last_failure_ms = excluded.last_failure_ms, blocked_until_ms = excluded.blocked_until_ms,
                     forget_at_ms = excluded.forget_at_ms",
            )?
            .execute(params![
                row.kind.as_str(),
                row.subject,
                i64::from(row.failures),
                millis(row.last_failure),
                row.blocked_until.map(millis),
                millis(row.forget_at)
            ])?;
        Ok(())
    }

    fn clear_login_failures(&mut self, kind: LoginSubjectKind, subject: &str) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("DELETE FROM login_failures WHERE kind = ?1 AND subject = ?2")?
            .execute(params![kind.as_str(), subject])?;
        Ok(())
    }

    fn prune_login_failures(&mut self, now: OffsetDateTime, limit: u32) -> Result<u64, StorageError> {
        let pruned = self
            .conn
            .prepare_cached(
                "DELETE FROM login_failures WHERE (kind, subject) IN
                     (SELECT kind, subject FROM login_failures WHERE forget_at_ms <= ?1 ORDER BY forget_at_ms LIMIT ?2)",
            )?
            .execute(params![millis(now), i64::from(limit)])?;
        Ok(pruned as u64)
    }

    fn evict_login_failures(&mut self, now: OffsetDateTime, count: u64) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "DELETE FROM login_failures WHERE (kind, subject) IN
                     (SELECT kind, subject FROM login_failures
                      ORDER BY COALESCE(blocked_until_ms > ?1, 0), forget_at_ms LIMIT ?2)",
            )?
            .execute(params![millis(now), i64::try_from(count).unwrap_or(i64::MAX)])?;
        Ok(())
    }

    fn insert_form(&mut self, form: &FormRow, definition: &str) -> Result<bool, StorageError> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO forms (key, form_id, version, title, definition, published_by, published_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                form.key,
                form.form_id,
                i64::from(form.version),
                form.title,
                definition,
                form.published_by,
                stored_time(form.published_at)
            ])?;
        Ok(inserted == 1)
    }

    fn put_form_default(&mut self, row: &FormDefaultRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO form_defaults (area, form_key, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (area) DO UPDATE SET form_key = excluded.form_key, set_by = excluded.set_by,
                 set_at = excluded.set_at",
            )?
            .execute(params![row.area, row.form_key, row.set_by, stored_time(row.set_at)])?;
        Ok(())
    }

    fn set_user_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StorageError> {
        let n = self
            .conn
            .prepare_cached("UPDATE users SET password_hash = ?2 WHERE name = ?1")?
            .execute(params![name, password_hash])?;
        Ok(n == 1)
    }

    fn set_user_role(&mut self, name: &str, role: Role) -> Result<bool, StorageError> {
        let n = self
            .conn
            .prepare_cached("UPDATE users SET role = ?2 WHERE name = ?1")?
            .execute(params![name, role.as_str()])?;
        Ok(n == 1)
    }

    fn insert_web_session(&mut self, row: &WebSessionRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "INSERT INTO web_sessions (token_hash, user_name, csrf, created_at, expires_at, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                row.token_hash,
                row.user,
                row.csrf,
                stored_time(row.created_at),
                stored_time(row.expires_at),
                stored_time(row.seen_at)
            ])?;
        Ok(())
    }

    fn touch_web_session(&mut self, token_hash: &str, seen_at: OffsetDateTime) -> Result<(), StorageError> {
        self.conn
            .prepare_cached("UPDATE web_sessions SET seen_at = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, stored_time(seen_at)])?;
        Ok(())
    }

    fn delete_web_session(&mut self, token_hash: &str) -> Result<(), StorageError> {
        self.conn.prepare_cached("DELETE FROM web_sessions WHERE token_hash = ?1")?.execute(params![token_hash])?;
        Ok(())
    }

    fn delete_web_sessions_of(&mut self, user: &str) -> Result<u64, StorageError> {
        let n = self.conn.prepare_cached("DELETE FROM web_sessions WHERE user_name = ?1")?.execute(params![user])?;
        Ok(n as u64)
    }

    fn prune_web_sessions(
        &mut self,
        ended_before: OffsetDateTime,
        idle_before: OffsetDateTime,
        limit: u32,
    ) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(
                "DELETE FROM web_sessions WHERE token_hash IN
                     (SELECT token_hash FROM web_sessions WHERE expires_at < ?1 OR seen_at < ?2 LIMIT ?3)",
            )?
            .execute(params![stored_time(ended_before), stored_time(idle_before), i64::from(limit)])?;
        Ok(())
    }
}
