//! The data operations of the seam ([`ReadTx`], [`Tx`]) in SQL on one PostgreSQL transaction.
//! SQL and row conversions only: what the rows mean is decided in `crate::service`. The SQL is
//! SQLite's (`storage/sqlite/tx.rs`) translated: `$n` parameters, `ON CONFLICT DO NOTHING` for
//! `INSERT OR IGNORE`, integers as `BIGINT` (`i64`), and the row locks of a backend with
//! concurrent writers (the feed head, the facts queue).

use super::FEED_LOCK_SPACE;
use crate::storage::at_rest;
use crate::storage::facts_sql::{self, Placeholder, Sql, SqlArg};
use crate::storage::sqlite::{parse_stored_time, stored_time};
use crate::storage::{
    Assignment, AssignmentKind, DeviceRow, FactsQuery, FactsRow, FactsTally, FeedChange, FoldDisagreementRow, FoldRow,
    FormDefaultRow, FormRow, HouseholdRow, HouseholdWrite, KeyGroup, LoginFailureRow, LoginSubjectKind, NewChange,
    NewUser, ReadTx, RosterImportRow, StorageError, StoredResponse, Tx, UserRecord, WebSessionRow, group_key_holders,
    held_keys,
};
use postgres::types::{FromSql, ToSql};
use postgres::{Row, Statement};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use sync_core::model::{DeviceId, HouseholdId};
use sync_core::protocol::Role;
use time::OffsetDateTime;
use uuid::Uuid;

/// One transaction: a write (`REPEATABLE READ`) or a read (`REPEATABLE READ READ ONLY`, then only
/// [`ReadTx`] is handed out).
pub(super) struct PgTx<'a, 't> {
    pub(super) tx: &'a mut postgres::Transaction<'t>,
    /// The connection's prepared statements, by SQL text.
    pub(super) statements: &'a mut HashMap<String, Statement>,
    /// A write transaction (it may lock rows).
    pub(super) write: bool,
    /// Villages whose feed lock this session took before `BEGIN`.
    pub(super) prelocked: &'a BTreeSet<String>,
    /// Villages whose feed head another transaction held (lock them first on the next attempt).
    pub(super) contended: &'a mut BTreeSet<String>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl PgTx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StorageError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StorageError> {
        let statement = self.statement(sql)?;
        Ok(self.tx.query(&statement, params)?)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StorageError> {
        let statement = self.statement(sql)?;
        Ok(self.tx.query_opt(&statement, params)?)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StorageError> {
        let statement = self.statement(sql)?;
        Ok(self.tx.query_one(&statement, params)?)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StorageError> {
        let statement = self.statement(sql)?;
        Ok(self.tx.execute(&statement, params)?)
    }

    /// The first column of the row `sql` returns, if any.
    fn value<T: for<'r> FromSql<'r>>(&mut self, sql: &str, params: Params<'_>) -> Result<Option<T>, StorageError> {
        self.query_opt(sql, params)?.map(|row| col(&row, 0)).transpose()
    }

    /// The count (a `BIGINT`) `sql` returns.
    fn count(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StorageError> {
        Ok(count(col(&self.query_one(sql, params)?, 0)?))
    }

    /// A compression dictionary's bytes by id.
    fn dictionary_bytes(&mut self, id: u32) -> Result<Option<Vec<u8>>, StorageError> {
        self.value("SELECT dictionary FROM kept_dictionaries WHERE id = $1", &[&i64::from(id)])
    }

    /// The id of the dictionary values are compressed with now: the last one stored.
    fn current_dictionary(&mut self) -> Result<Option<u32>, StorageError> {
        let id: Option<i64> =
            self.value("SELECT id FROM kept_dictionaries ORDER BY created_at DESC, id DESC LIMIT 1", &[])?;
        id.map(|id| {
            u32::try_from(id)
                .map_err(|_| StorageError::Corrupt(format!("compression dictionary id {id} is out of range")))
        })
        .transpose()
    }

    /// A stored document or change as it was given ([`at_rest::decode`]).
    fn decode(&mut self, stored: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        at_rest::decode(stored, &mut |id| self.dictionary_bytes(id))
    }

    /// A document or change as it is kept ([`at_rest::encode`], with the current dictionary).
    fn encode(&mut self, value: &[u8]) -> Result<Vec<u8>, StorageError> {
        let current = self.current_dictionary()?;
        at_rest::encode(value, current, &mut |id| self.dictionary_bytes(id))
    }

    /// Households' ids and documents from rows of (id, doc).
    fn documents(&mut self, rows: Vec<Row>) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError> {
        rows.iter().map(|r| Ok((household_id(&col::<String>(r, 0)?)?, self.decode(col(r, 1)?)?))).collect()
    }
}

/// Column `i` of `row`, or an error naming it (never a panic).
fn col<T: for<'r> FromSql<'r>>(row: &Row, i: usize) -> Result<T, StorageError> {
    row.try_get(i).map_err(|e| corrupt(format!("column {i}: {e}")))
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

/// Heads kept as their hashes' bytes (migration 0017) as SQLite's comma-separated hex.
fn heads_text(bytes: &[u8]) -> String {
    bytes.chunks(32).map(hex::encode).collect::<Vec<_>>().join(",")
}

/// A time kept as `timestamptz` (migrations 0016, 0017) as the server reads it, whole seconds as
/// written.
fn kept_time(at: Option<std::time::SystemTime>) -> Option<OffsetDateTime> {
    at.map(OffsetDateTime::from)
}

/// A time as `timestamptz` keeps it: whole seconds, as [`stored_time`] writes it on SQLite.
fn time_to_keep(at: OffsetDateTime) -> std::time::SystemTime {
    at.replace_nanosecond(0).unwrap_or(at).into()
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

fn device_row(r: &Row) -> Result<DeviceRow, StorageError> {
    Ok(DeviceRow {
        id: device_id(&col::<String>(r, 0)?)?,
        user: col(r, 1)?,
        name: col(r, 2)?,
        registered_at: parse_stored_time(&col::<String>(r, 3)?)?,
        last_seen_at: parse_stored_time(&col::<String>(r, 4)?)?,
        revoked_at: time_opt(col(r, 5)?)?,
        refresh_hash: col(r, 6)?,
        refresh_issued_at: time_opt(col(r, 7)?)?,
        previous_refresh_hash: col(r, 8)?,
        previous_refresh_until: time_opt(col(r, 9)?)?,
        sessions_ended_at: col::<Option<i64>>(r, 10)?.map(from_millis).transpose()?,
    })
}

const FACTS_COLUMNS: &str = "household_id, village, version, brief, conflicts, conflict_count, review, final_outcome, \
     last_visit_by, visits, merged_into, name_key, rt_key, last_outcome";

fn facts_row(r: &Row) -> Result<FactsRow, StorageError> {
    Ok(FactsRow {
        household: household_id(&col::<String>(r, 0)?)?,
        village: col(r, 1)?,
        version: count(col(r, 2)?),
        brief: col(r, 3)?,
        conflicts: col(r, 4)?,
        conflict_count: count(col(r, 5)?).min(u64::from(u32::MAX)) as u32,
        review: col(r, 6)?,
        final_outcome: col(r, 7)?,
        last_visit_by: col(r, 8)?,
        visits: count(col(r, 9)?).min(u64::from(u32::MAX)) as u32,
        merged_into: col(r, 10)?,
        name_key: col(r, 11)?,
        rt_key: col(r, 12)?,
        last_outcome: col(r, 13)?,
    })
}

/// The rows of a statement built by [`facts_sql`], its arguments bound in order.
fn shared_sql_rows(tx: &mut PgTx<'_, '_>, sql: &Sql) -> Result<Vec<Row>, StorageError> {
    let args: Vec<Box<dyn ToSql + Sync>> = sql
        .args
        .iter()
        .map(|a| -> Box<dyn ToSql + Sync> {
            match a {
                SqlArg::Text(t) => Box::new(t.clone()),
                SqlArg::Int(i) => Box::new(*i),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    tx.query(&sql.text, &params)
}

fn user_record(r: &Row) -> Result<UserRecord, StorageError> {
    Ok(UserRecord {
        name: col(r, 0)?,
        role: role(&col::<String>(r, 1)?)?,
        password_hash: col(r, 2)?,
        created_at: parse_stored_time(&col::<String>(r, 3)?)?,
    })
}

/// A row inserted with `ON CONFLICT DO NOTHING` where the caller checked it was new: inserted, or
/// a key already in this transaction's snapshot (a bug above, as SQLite's primary key would
/// say). A row another transaction inserted meanwhile is a serialization failure instead (the
/// transaction runs again and finds it), which is why these inserts say `ON CONFLICT`.
fn stored_once(inserted: u64, what: &str, key: &str) -> Result<(), StorageError> {
    if inserted == 1 {
        return Ok(());
    }
    Err(StorageError::Backend(format!("{what} {key} is already stored").into()))
}

impl ReadTx for PgTx<'_, '_> {
    fn user_count(&mut self) -> Result<u64, StorageError> {
        self.count("SELECT count(*) FROM users", &[])
    }

    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        let row =
            self.query_opt("SELECT name, role, password_hash, created_at FROM users WHERE name = $1", &[&name])?;
        row.as_ref().map(user_record).transpose()
    }

    fn users(&mut self) -> Result<Vec<UserRecord>, StorageError> {
        let rows = self.query("SELECT name, role, password_hash, created_at FROM users ORDER BY name", &[])?;
        rows.iter().map(user_record).collect()
    }

    fn assignments_of(&mut self, kind: AssignmentKind, user: &str) -> Result<Vec<Assignment>, StorageError> {
        let (table, column) = table(kind);
        let rows = self.query(
            &format!(
                "SELECT {column}, started_at, ended_at FROM {table} WHERE user_name = $1 ORDER BY {column}, started_at, id"
            ),
            &[&user],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Assignment {
                    user: user.to_string(),
                    code: col(r, 0)?,
                    started_at: parse_stored_time(&col::<String>(r, 1)?)?,
                    ended_at: time_opt(col(r, 2)?)?,
                })
            })
            .collect()
    }

    fn active_assignments(&mut self, kind: AssignmentKind) -> Result<Vec<(String, String)>, StorageError> {
        let (table, column) = table(kind);
        let rows = self.query(
            &format!("SELECT user_name, {column} FROM {table} WHERE ended_at IS NULL ORDER BY user_name, {column}"),
            &[],
        )?;
        rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    fn villages_handed(&mut self, device: DeviceId) -> Result<BTreeMap<String, OffsetDateTime>, StorageError> {
        let rows =
            self.query("SELECT village, first_at FROM device_villages WHERE device_id = $1", &[&device.to_string()])?;
        rows.iter().map(|r| Ok((col(r, 0)?, parse_stored_time(&col::<String>(r, 1)?)?))).collect()
    }

    fn device(&mut self, id: DeviceId) -> Result<Option<DeviceRow>, StorageError> {
        let row = self.query_opt(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"), &[&id.to_string()])?;
        row.as_ref().map(device_row).transpose()
    }

    fn devices(&mut self) -> Result<Vec<DeviceRow>, StorageError> {
        let rows =
            self.query(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY user_name, registered_at, id"), &[])?;
        rows.iter().map(device_row).collect()
    }

    fn server_secret(&mut self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.value("SELECT value FROM server_secrets WHERE name = $1", &[&name])
    }

    fn current_kept_dictionary(&mut self) -> Result<Option<u32>, StorageError> {
        self.current_dictionary()
    }

    fn current_kept_dictionary_at(&mut self) -> Result<Option<OffsetDateTime>, StorageError> {
        let at: Option<String> =
            self.value("SELECT created_at FROM kept_dictionaries ORDER BY created_at DESC, id DESC LIMIT 1", &[])?;
        at.as_deref().map(parse_stored_time).transpose()
    }

    fn kept_dictionary(&mut self, id: u32) -> Result<Option<Vec<u8>>, StorageError> {
        self.dictionary_bytes(id)
    }

    fn household(&mut self, id: HouseholdId) -> Result<Option<HouseholdRow>, StorageError> {
        let row = self.query_opt(
            "SELECT village, doc, heads, created_at FROM households WHERE id = $1::text::uuid",
            &[&id.to_string()],
        )?;
        row.map(|r| {
            Ok(HouseholdRow {
                id,
                village: col(&r, 0)?,
                doc: self.decode(col(&r, 1)?)?,
                heads: heads_text(&col::<Vec<u8>>(&r, 2)?),
                created_at: kept_time(col(&r, 3)?),
            })
        })
        .transpose()
    }

    fn household_heads(&mut self, id: HouseholdId) -> Result<Option<String>, StorageError> {
        let heads: Option<Vec<u8>> =
            self.value("SELECT heads FROM households WHERE id = $1::text::uuid", &[&id.to_string()])?;
        Ok(heads.map(|h| heads_text(&h)))
    }

    fn household_village(&mut self, id: HouseholdId) -> Result<Option<String>, StorageError> {
        self.value("SELECT village FROM households WHERE id = $1::text::uuid", &[&id.to_string()])
    }

    fn households_with_prefix(&mut self, prefix: &str, limit: u32) -> Result<Vec<(HouseholdId, String)>, StorageError> {
        // Ids are kept as `uuid` (migration 0015), which sorts as their lowercase hyphenated text
        // does: a prefix of that text is the range from it filled with 0s to it filled with fs.
        let Some((low, high)) = uuid_prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        let rows = self.query(
            "SELECT id::text, village FROM households WHERE id BETWEEN $1::text::uuid AND $2::text::uuid
             ORDER BY id LIMIT $3",
            &[&low, &high, &i64::from(limit)],
        )?;
        rows.iter().map(|r| Ok((household_id(&col::<String>(r, 0)?)?, col(r, 1)?))).collect()
    }

    fn village_households(
        &mut self,
        village: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError> {
        let (after, sql) = match after {
            Some(a) => (
                a.to_string(),
                "SELECT id::text, doc FROM households WHERE village = $1 AND id > $2::text::uuid ORDER BY id LIMIT $3",
            ),
            // From the very first (a device may have named a household by the nil uuid).
            None => (
                uuid::Uuid::nil().to_string(),
                "SELECT id::text, doc FROM households WHERE village = $1 AND id >= $2::text::uuid ORDER BY id LIMIT $3",
            ),
        };
        let rows = self.query(sql, &[&village, &after, &i64::from(limit)])?;
        self.documents(rows)
    }

    fn village_household_count(&mut self, village: &str) -> Result<u64, StorageError> {
        self.count("SELECT count(*) FROM households WHERE village = $1", &[&village])
    }

    fn area_households(
        &mut self,
        area: &str,
        after: Option<HouseholdId>,
        limit: u32,
    ) -> Result<Vec<(HouseholdId, Vec<u8>)>, StorageError> {
        let (after, sql) = match after {
            Some(a) => (
                a.to_string(),
                "SELECT id::text, doc FROM households WHERE id > $1::text::uuid AND substr(village, 1, length($2)) = $2
                 ORDER BY id LIMIT $3",
            ),
            None => (
                uuid::Uuid::nil().to_string(),
                "SELECT id::text, doc FROM households WHERE id >= $1::text::uuid AND substr(village, 1, length($2)) = $2
                 ORDER BY id LIMIT $3",
            ),
        };
        let rows = self.query(sql, &[&after, &format!("{area}."), &i64::from(limit)])?;
        self.documents(rows)
    }

    fn area_household_count(&mut self, area: &str) -> Result<u64, StorageError> {
        self.count("SELECT count(*) FROM households WHERE substr(village, 1, length($1)) = $1", &[&format!("{area}.")])
    }

    fn feed_head(&mut self, village: &str) -> Result<u64, StorageError> {
        let head: i64 = col(
            &self.query_one(
                "SELECT COALESCE((SELECT head FROM feed_heads WHERE village = $1), (SELECT floor FROM feed_floor), 0)",
                &[&village],
            )?,
            0,
        )?;
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
        // The feed keys a village by its code's digits (migration 0016): another text has none.
        let Some(number) = crate::postgres_schema::village_number(village) else {
            return Ok(Vec::new());
        };
        let rows = self.query(
            // Ids and hashes are kept compactly (migration 0014) and read as text.
            "SELECT pos, household_id::text, bytes, encode(hash, 'hex') FROM changes
             WHERE village = $1 AND pos > $2 AND pos <= $3 AND device_id::text <> $4 ORDER BY pos LIMIT $5",
            &[&number, &int(after), &int(upto), &exclude, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(FeedChange {
                    position: count(col(r, 0)?),
                    household: household_id(&col::<String>(r, 1)?)?,
                    village: village.to_string(),
                    hash: col(r, 3)?,
                    bytes: self.decode(col(r, 2)?)?,
                })
            })
            .collect()
    }

    fn stored_response(&mut self, device: DeviceId, batch: Uuid) -> Result<Option<StoredResponse>, StorageError> {
        let row = self.query_opt(
            "SELECT response, max_changes, pull_from FROM sync_batches WHERE device_id = $1 AND batch = $2",
            &[&device.to_string(), &batch.to_string()],
        )?;
        row.map(|r| {
            Ok(StoredResponse {
                body: col(&r, 0)?,
                max_changes: col::<Option<i64>>(&r, 1)?.map(|m| m.clamp(0, i64::from(u32::MAX)) as u32),
                pulled_from: col::<Option<String>>(&r, 2)?.as_deref().map(super::super::pulled_from).transpose()?,
            })
        })
        .transpose()
    }

    fn last_responses(&mut self) -> Result<BTreeMap<DeviceId, OffsetDateTime>, StorageError> {
        let rows = self.query("SELECT device_id, max(created_at) FROM sync_batches GROUP BY device_id", &[])?;
        let mut out = BTreeMap::new();
        for r in &rows {
            // Rows of a malformed device id (none are written) are skipped rather than failing a report.
            if let Ok(device) = col::<String>(r, 0)?.parse() {
                out.insert(device, parse_stored_time(&col::<String>(r, 1)?)?);
            }
        }
        Ok(out)
    }

    fn roster_import(&mut self, import: Uuid) -> Result<Option<RosterImportRow>, StorageError> {
        let row = self.query_opt(
            "SELECT user_name, created_at, committed_at, summary FROM roster_imports WHERE id = $1",
            &[&import.to_string()],
        )?;
        row.map(|r| {
            Ok(RosterImportRow {
                user: col(&r, 0)?,
                created_at: parse_stored_time(&col::<String>(&r, 1)?)?,
                committed_at: time_opt(col(&r, 2)?)?,
                summary: col(&r, 3)?,
            })
        })
        .transpose()
    }

    fn staged_chunks(&mut self, import: Uuid, below: u32) -> Result<u32, StorageError> {
        let n = self.count(
            "SELECT count(*) FROM roster_chunks WHERE import_id = $1 AND chunk < $2",
            &[&import.to_string(), &i64::from(below)],
        )?;
        Ok(n.min(u64::from(u32::MAX)) as u32)
    }

    fn roster_chunk(&mut self, import: Uuid, chunk: u32) -> Result<Option<Vec<u8>>, StorageError> {
        self.value(
            "SELECT households FROM roster_chunks WHERE import_id = $1 AND chunk = $2",
            &[&import.to_string(), &i64::from(chunk)],
        )
    }

    fn family_household(&mut self, family: &str) -> Result<Option<HouseholdId>, StorageError> {
        let id: Option<String> = self.value("SELECT household_id FROM roster_keys WHERE family_id = $1", &[&family])?;
        id.as_deref().map(household_id).transpose()
    }

    fn stale_facts(&mut self, limit: u32) -> Result<Vec<(HouseholdId, u64)>, StorageError> {
        // In a write transaction the rows are locked until commit, and rows another transaction
        // (another server) is deriving are skipped: each stale household is derived once.
        let sql = if self.write {
            "SELECT household_id::text, version FROM facts_stale LIMIT $1 FOR UPDATE SKIP LOCKED"
        } else {
            "SELECT household_id::text, version FROM facts_stale LIMIT $1"
        };
        let rows = self.query(sql, &[&i64::from(limit)])?;
        rows.iter().map(|r| Ok((household_id(&col::<String>(r, 0)?)?, count(col(r, 1)?)))).collect()
    }

    fn live_facts(&mut self, area: Option<&str>) -> Result<Vec<FactsRow>, StorageError> {
        let rows = match area {
            Some(a) => self.query(
                &format!(
                    "SELECT {FACTS_COLUMNS} FROM household_facts WHERE merged_into IS NULL
                         AND (village = $1 OR substr(village, 1, length($2)) = $2)
                     ORDER BY village, household_id"
                ),
                &[&a, &format!("{a}.")],
            )?,
            None => self.query(
                &format!(
                    "SELECT {FACTS_COLUMNS} FROM household_facts WHERE merged_into IS NULL
                     ORDER BY village, household_id"
                ),
                &[],
            )?,
        };
        rows.iter().map(facts_row).collect()
    }

    fn live_facts_of(&mut self, id: HouseholdId) -> Result<Option<FactsRow>, StorageError> {
        let row = self.query_opt(
            &format!("SELECT {FACTS_COLUMNS} FROM household_facts WHERE household_id = $1 AND merged_into IS NULL"),
            &[&id.to_string()],
        )?;
        row.as_ref().map(facts_row).transpose()
    }

    fn facts_page(&mut self, query: &FactsQuery) -> Result<(u64, Vec<FactsRow>), StorageError> {
        let total = shared_sql_rows(self, &facts_sql::facts_count(Placeholder::Dollar, query))?;
        let total = count(col(total.first().ok_or_else(|| corrupt("a count answered no row"))?, 0)?);
        let rows = shared_sql_rows(self, &facts_sql::facts_page(Placeholder::Dollar, query, FACTS_COLUMNS))?;
        Ok((total, rows.iter().map(facts_row).collect::<Result<Vec<_>, _>>()?))
    }

    fn facts_tally(&mut self, areas: Option<&[String]>) -> Result<Vec<FactsTally>, StorageError> {
        let rows = shared_sql_rows(self, &facts_sql::facts_tally(Placeholder::Dollar, areas))?;
        rows.iter()
            .map(|r| {
                Ok(FactsTally {
                    village: col(r, 0)?,
                    last_visit_by: col(r, 1)?,
                    review: col(r, 2)?,
                    final_outcome: col(r, 3)?,
                    visited: col::<i64>(r, 4)? != 0,
                    households: count(col(r, 5)?),
                    conflicts: count(col(r, 6)?),
                })
            })
            .collect()
    }

    fn visits_per_day(&mut self, areas: Option<&[String]>, from: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let rows = shared_sql_rows(self, &facts_sql::visits_per_day(Placeholder::Dollar, areas, from))?;
        rows.iter().map(|r| Ok((col(r, 0)?, count(col(r, 1)?)))).collect()
    }

    fn shared_keys(&mut self, max_households: u32) -> Result<Vec<KeyGroup>, StorageError> {
        let rows = self.query(
            "SELECT k.kind, k.key, k.household_id, k.village, k.last_visit_by FROM household_key_counts c
             JOIN household_keys k ON k.kind = c.kind AND k.key = c.key
             WHERE c.holders >= 2 AND c.holders <= $1",
            &[&i64::from(max_households)],
        )?;
        let rows = rows
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, household_id(&col::<String>(r, 2)?)?, col(r, 3)?, col(r, 4)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(group_key_holders(rows))
    }

    fn dismissed_pairs(&mut self) -> Result<BTreeSet<(HouseholdId, HouseholdId)>, StorageError> {
        let rows = self.query("SELECT a, b FROM duplicate_dismissals", &[])?;
        rows.iter().map(|r| Ok((household_id(&col::<String>(r, 0)?)?, household_id(&col::<String>(r, 1)?)?))).collect()
    }

    fn fold_of(&mut self, retired: HouseholdId) -> Result<Option<FoldRow>, StorageError> {
        let row = self.query_opt(
            "SELECT survivor, fold, by_user, device_id, at FROM folds WHERE retired = $1",
            &[&retired.to_string()],
        )?;
        row.map(|r| {
            Ok(FoldRow {
                retired,
                survivor: household_id(&col::<String>(&r, 0)?)?,
                fold: col(&r, 1)?,
                user: col(&r, 2)?,
                device: device_id(&col::<String>(&r, 3)?)?,
                at: parse_stored_time(&col::<String>(&r, 4)?)?,
            })
        })
        .transpose()
    }

    fn open_disagreements(&mut self, survivor: Option<HouseholdId>) -> Result<Vec<FoldDisagreementRow>, StorageError> {
        let rows = match survivor {
            Some(s) => self.query(
                "SELECT survivor, retired, path, other FROM fold_disagreements
                 WHERE resolved_at IS NULL AND survivor = $1 ORDER BY id",
                &[&s.to_string()],
            )?,
            None => self.query(
                "SELECT survivor, retired, path, other FROM fold_disagreements WHERE resolved_at IS NULL ORDER BY id",
                &[],
            )?,
        };
        rows.iter()
            .map(|r| {
                Ok(FoldDisagreementRow {
                    survivor: household_id(&col::<String>(r, 0)?)?,
                    retired: household_id(&col::<String>(r, 1)?)?,
                    path: col(r, 2)?,
                    other: col(r, 3)?,
                })
            })
            .collect()
    }

    fn login_failures(
        &mut self,
        kind: LoginSubjectKind,
        subject: &str,
    ) -> Result<Option<LoginFailureRow>, StorageError> {
        let row = self.query_opt(
            "SELECT failures, last_failure_ms, blocked_until_ms, forget_at_ms FROM login_failures
             WHERE kind = $1 AND subject = $2",
            &[&kind.as_str(), &subject],
        )?;
        row.map(|r| {
            Ok(LoginFailureRow {
                kind,
                subject: subject.to_string(),
                failures: u32::try_from(col::<i64>(&r, 0)?.max(0)).unwrap_or(u32::MAX),
                last_failure: throttle_time(col(&r, 1)?)?,
                blocked_until: col::<Option<i64>>(&r, 2)?.map(throttle_time).transpose()?,
                forget_at: throttle_time(col(&r, 3)?)?,
            })
        })
        .transpose()
    }

    fn login_failure_rows(&mut self) -> Result<u64, StorageError> {
        self.count("SELECT count(*) FROM login_failures", &[])
    }

    fn forms(&mut self) -> Result<Vec<FormRow>, StorageError> {
        let rows = self.query(
            "SELECT key, form_id, version, title, published_by, published_at FROM forms ORDER BY form_id, version",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                let key: String = col(r, 0)?;
                let version: i64 = col(r, 2)?;
                let version =
                    u32::try_from(version).map_err(|_| corrupt(format!("form {key} has version {version}")))?;
                Ok(FormRow {
                    form_id: col(r, 1)?,
                    version,
                    title: col(r, 3)?,
                    published_by: col(r, 4)?,
                    published_at: parse_stored_time(&col::<String>(r, 5)?)?,
                    key,
                })
            })
            .collect()
    }

    fn form_definition(&mut self, key: &str) -> Result<Option<String>, StorageError> {
        self.value("SELECT definition FROM forms WHERE key = $1", &[&key])
    }

    fn form_defaults(&mut self) -> Result<Vec<FormDefaultRow>, StorageError> {
        let rows = self.query("SELECT area, form_key, set_by, set_at FROM form_defaults ORDER BY area", &[])?;
        rows.iter()
            .map(|r| {
                Ok(FormDefaultRow {
                    area: col(r, 0)?,
                    form_key: col(r, 1)?,
                    set_by: col(r, 2)?,
                    set_at: parse_stored_time(&col::<String>(r, 3)?)?,
                })
            })
            .collect()
    }
    fn households_with_key(&mut self, kind: &str, key: &str) -> Result<Vec<HouseholdId>, StorageError> {
        let rows = self.query(
            "SELECT household_id FROM household_keys WHERE kind = $1 AND key = $2 ORDER BY household_id",
            &[&kind, &key],
        )?;
        rows.iter().map(|r| household_id(&col::<String>(r, 0)?)).collect()
    }

    fn web_session(&mut self, token_hash: &str) -> Result<Option<WebSessionRow>, StorageError> {
        let row = self.query_opt(
            "SELECT user_name, csrf, created_at, expires_at, seen_at FROM web_sessions WHERE token_hash = $1",
            &[&token_hash],
        )?;
        row.map(|r| {
            Ok(WebSessionRow {
                token_hash: token_hash.to_string(),
                user: col(&r, 0)?,
                csrf: col(&r, 1)?,
                created_at: parse_stored_time(&col::<String>(&r, 2)?)?,
                expires_at: parse_stored_time(&col::<String>(&r, 3)?)?,
                seen_at: parse_stored_time(&col::<String>(&r, 4)?)?,
            })
        })
        .transpose()
    }
}

impl Tx for PgTx<'_, '_> {
    fn insert_user(&mut self, user: &NewUser) -> Result<bool, StorageError> {
        let inserted = self.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
            &[&user.name, &user.role.as_str(), &user.password_hash, &stored_time(user.created_at)],
        )?;
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
        self.execute(
            &format!(
                "INSERT INTO {table} (user_name, {column}, started_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            ),
            &[&user, &code, &stored_time(now)],
        )?;
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
        self.execute(
            &format!("UPDATE {table} SET ended_at = $3 WHERE user_name = $1 AND {column} = $2 AND ended_at IS NULL"),
            &[&user, &code, &stored_time(now)],
        )?;
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
        for village in villages {
            self.execute(
                "INSERT INTO device_villages (device_id, village, first_at, last_at) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (device_id, village) DO UPDATE SET last_at = excluded.last_at
                     WHERE device_villages.last_at <= $4",
                &[&device, village, &now, &stale],
            )?;
        }
        Ok(())
    }

    fn insert_device(&mut self, d: &DeviceRow) -> Result<(), StorageError> {
        let inserted = self.execute(
            &format!(
                "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING"
            ),
            &[
                &d.id.to_string(),
                &d.user,
                &d.name,
                &stored_time(d.registered_at),
                &stored_time(d.last_seen_at),
                &d.revoked_at.map(stored_time),
                &d.refresh_hash,
                &d.refresh_issued_at.map(stored_time),
                &d.previous_refresh_hash,
                &d.previous_refresh_until.map(stored_time),
                &d.sessions_ended_at.map(millis),
            ],
        )?;
        stored_once(inserted, "device", &d.id.to_string())
    }

    fn update_device(&mut self, d: &DeviceRow) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET name = $2, last_seen_at = $3, revoked_at = $4, refresh_hash = $5,
                 refresh_issued_at = $6, previous_refresh_hash = $7, previous_refresh_until = $8,
                 sessions_ended_ms = $9
             WHERE id = $1",
            &[
                &d.id.to_string(),
                &d.name,
                &stored_time(d.last_seen_at),
                &d.revoked_at.map(stored_time),
                &d.refresh_hash,
                &d.refresh_issued_at.map(stored_time),
                &d.previous_refresh_hash,
                &d.previous_refresh_until.map(stored_time),
                &d.sessions_ended_at.map(millis),
            ],
        )?;
        Ok(())
    }

    fn touch_device(&mut self, id: DeviceId, now: OffsetDateTime) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2",
            &[&id.to_string(), &stored_time(now)],
        )?;
        Ok(())
    }

    fn insert_server_secret(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )?;
        Ok(())
    }

    fn lock_feed_head(&mut self, village: &str) -> Result<u64, StorageError> {
        let locked = self.lock_feed_head_row(village);
        if locked.is_err() {
            // Moved since this transaction's snapshot (or a deadlock): noted, so that a
            // transaction that keeps losing the village takes its lock before it begins.
            self.contended.insert(village.to_string());
        }
        locked
    }

    fn set_feed_head(&mut self, village: &str, head: u64) -> Result<(), StorageError> {
        self.execute("UPDATE feed_heads SET head = $2 WHERE village = $1", &[&village, &int(head)])?;
        Ok(())
    }

    fn insert_kept_dictionary(&mut self, id: u32, dictionary: &[u8], at: OffsetDateTime) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO kept_dictionaries (id, dictionary, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&i64::from(id), &dictionary, &stored_time(at)],
        )?;
        Ok(())
    }

    fn insert_change(&mut self, c: &NewChange<'_>) -> Result<bool, StorageError> {
        // The feed keys a village by its code's digits (migration 0016).
        let village = crate::postgres_schema::village_number(c.village).ok_or_else(|| {
            StorageError::Refused(format!(
                "the feed keeps changes of villages by codes like 73.14.01.1001, not {:?}",
                c.village
            ))
        })?;
        let bytes = self.encode(c.bytes)?;
        let inserted = self.execute(
            // Kept once by hash: the exclusion constraint `changes_hash_once` refuses a second row
            // (and makes a concurrent inserter of the same hash wait), so a change stored already
            // is found first and takes no position.
            "INSERT INTO changes (pos, hash, household_id, village, device_id, user_name, bytes, received_at)
             SELECT $1::bigint, decode($2::text, 'hex'), $3::text::uuid, $4::bigint,
                 $5::text::uuid, $6::text, $7::bytea, $8::timestamptz
             WHERE NOT EXISTS (SELECT 1 FROM changes WHERE hash = decode($2::text, 'hex'))",
            &[
                &int(c.position),
                &c.hash,
                &c.household.to_string(),
                &village,
                &c.device.to_string(),
                &c.user,
                &bytes,
                &time_to_keep(c.received_at),
            ],
        )?;
        Ok(inserted == 1)
    }

    fn put_household(&mut self, h: &HouseholdWrite<'_>) -> Result<(), StorageError> {
        let id = h.id.to_string();
        // Heads and times kept compactly (migration 0017).
        let at = time_to_keep(h.at);
        let heads = crate::postgres_schema::heads_bytes(h.heads)
            .ok_or_else(|| corrupt(format!("household {id}: heads {:?} are not 64-character hashes", h.heads)))?;
        let doc = self.encode(h.doc)?;
        let version: i64 = col(
            &self.query_one(
                "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at, created_at, version)
                 VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $6, 1)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
                     updated_pos = excluded.updated_pos, updated_at = excluded.updated_at,
                     version = households.version + 1
                 RETURNING version",
                &[&id, &h.village, &doc, &heads, &int(h.position), &at],
            )?,
            0,
        )?;
        self.execute(
            "INSERT INTO facts_stale (household_id, version) VALUES ($1::text::uuid, $2)
             ON CONFLICT (household_id) DO UPDATE SET version = excluded.version",
            &[&id, &version],
        )?;
        Ok(())
    }

    fn forget_responses(&mut self, device: DeviceId) -> Result<(), StorageError> {
        self.execute("DELETE FROM sync_batches WHERE device_id = $1", &[&device.to_string()])?;
        Ok(())
    }

    fn prune_responses(&mut self, before: OffsetDateTime, limit: u32) -> Result<(), StorageError> {
        self.execute(
            "DELETE FROM sync_batches WHERE (device_id, batch) IN
                 (SELECT device_id, batch FROM sync_batches WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
            &[&stored_time(before), &i64::from(limit)],
        )?;
        Ok(())
    }

    fn store_response(
        &mut self,
        device: DeviceId,
        batch: Uuid,
        response: &StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO sync_batches (device_id, batch, response, created_at, max_changes, pull_from)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (device_id, batch) DO UPDATE SET response = excluded.response,
                 created_at = excluded.created_at, max_changes = excluded.max_changes,
                 pull_from = excluded.pull_from",
            &[
                &device.to_string(),
                &batch.to_string(),
                &response.body,
                &stored_time(now),
                &response.max_changes.map(i64::from),
                &response.pulled_from.as_ref().map(super::super::pulled_from_text),
            ],
        )?;
        Ok(())
    }

    fn insert_roster_import(&mut self, import: Uuid, user: &str, now: OffsetDateTime) -> Result<(), StorageError> {
        let inserted = self.execute(
            "INSERT INTO roster_imports (id, user_name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&import.to_string(), &user, &stored_time(now)],
        )?;
        stored_once(inserted, "roster import", &import.to_string())
    }

    fn prune_staged_imports(&mut self, before: OffsetDateTime, keep: Uuid) -> Result<(), StorageError> {
        // Their chunks go with them (ON DELETE CASCADE).
        self.execute(
            "DELETE FROM roster_imports WHERE committed_at IS NULL AND created_at < $1 AND id <> $2",
            &[&stored_time(before), &keep.to_string()],
        )?;
        Ok(())
    }

    fn put_roster_chunk(&mut self, import: Uuid, chunk: u32, bytes: &[u8]) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO roster_chunks (import_id, chunk, households) VALUES ($1, $2, $3)
             ON CONFLICT (import_id, chunk) DO UPDATE SET households = excluded.households",
            &[&import.to_string(), &i64::from(chunk), &bytes],
        )?;
        Ok(())
    }

    fn finish_roster_import(&mut self, import: Uuid, at: OffsetDateTime, summary: &str) -> Result<(), StorageError> {
        let id = import.to_string();
        self.execute(
            "UPDATE roster_imports SET committed_at = $2, summary = $3 WHERE id = $1",
            &[&id, &stored_time(at), &summary],
        )?;
        self.execute("DELETE FROM roster_chunks WHERE import_id = $1", &[&id])?;
        Ok(())
    }

    fn put_family(&mut self, family: &str, household: HouseholdId) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO roster_keys (family_id, household_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&family, &household.to_string()],
        )?;
        Ok(())
    }

    fn put_facts(
        &mut self,
        f: &FactsRow,
        keys: &[(String, String)],
        visit_days: &[(String, u32)],
    ) -> Result<(), StorageError> {
        let id = f.household.to_string();
        self.execute(
            &format!(
                "INSERT INTO household_facts ({FACTS_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (household_id) DO UPDATE SET village = excluded.village, version = excluded.version,
                     brief = excluded.brief, conflicts = excluded.conflicts, conflict_count = excluded.conflict_count,
                     review = excluded.review, final_outcome = excluded.final_outcome,
                     last_visit_by = excluded.last_visit_by, visits = excluded.visits,
                     merged_into = excluded.merged_into, name_key = excluded.name_key, rt_key = excluded.rt_key,
                     last_outcome = excluded.last_outcome"
            ),
            &[
                &id,
                &f.village,
                &int(f.version),
                &f.brief,
                &f.conflicts,
                &i64::from(f.conflict_count),
                &f.review,
                &f.final_outcome,
                &f.last_visit_by,
                &i64::from(f.visits),
                &f.merged_into,
                &f.name_key,
                &f.rt_key,
                &f.last_outcome,
            ],
        )?;
        // Only the keys that changed are touched, each with its holders' count (two servers adding
        // holders of one key write the same count row: one waits or is retried, none is lost).
        let held = self
            .query("SELECT kind, key, village, last_visit_by FROM household_keys WHERE household_id = $1", &[&id])?
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?, col(r, 3)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        let (old, moved) = held_keys(held, f);
        if moved {
            self.execute(
                "UPDATE household_keys SET village = $2, last_visit_by = $3 WHERE household_id = $1",
                &[&id, &f.village, &f.last_visit_by],
            )?;
        }
        let new: BTreeSet<(String, String)> = keys.iter().cloned().collect();
        for (kind, key) in old.difference(&new) {
            self.execute(
                "DELETE FROM household_keys WHERE kind = $1 AND key = $2 AND household_id = $3",
                &[kind, key, &id],
            )?;
            self.execute(
                "UPDATE household_key_counts SET holders = holders - 1 WHERE kind = $1 AND key = $2",
                &[kind, key],
            )?;
            self.execute(
                "DELETE FROM household_key_counts WHERE kind = $1 AND key = $2 AND holders <= 0",
                &[kind, key],
            )?;
        }
        for (kind, key) in new.difference(&old) {
            self.execute(
                "INSERT INTO household_keys (kind, key, household_id, village, last_visit_by) VALUES ($1, $2, $3, $4, $5)",
                &[kind, key, &id, &f.village, &f.last_visit_by],
            )?;
            self.execute(
                "INSERT INTO household_key_counts (kind, key, holders) VALUES ($1, $2, 1)
                 ON CONFLICT (kind, key) DO UPDATE SET holders = household_key_counts.holders + 1",
                &[kind, key],
            )?;
        }
        self.execute("DELETE FROM household_visit_days WHERE household_id = $1", &[&id])?;
        for (day, visits) in visit_days {
            self.execute(
                "INSERT INTO household_visit_days (household_id, village, day, visits) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (household_id, day) DO UPDATE
                     SET visits = household_visit_days.visits + excluded.visits",
                &[&id, &f.village, day, &i64::from(*visits)],
            )?;
        }
        Ok(())
    }

    fn clear_stale_facts(&mut self, id: HouseholdId, version: u64) -> Result<(), StorageError> {
        self.execute(
            "DELETE FROM facts_stale WHERE household_id = $1::text::uuid AND version <= $2",
            &[&id.to_string(), &int(version)],
        )?;
        Ok(())
    }

    fn dismiss_pair(
        &mut self,
        a: HouseholdId,
        b: HouseholdId,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO duplicate_dismissals (a, b, by_user, at) VALUES ($1, $2, $3, $4) ON CONFLICT (a, b) DO NOTHING",
            &[&a.to_string(), &b.to_string(), &user, &stored_time(now)],
        )?;
        Ok(())
    }

    fn insert_fold(&mut self, f: &FoldRow) -> Result<(), StorageError> {
        let inserted = self.execute(
            "INSERT INTO folds (retired, survivor, fold, by_user, device_id, at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (retired) DO NOTHING",
            &[
                &f.retired.to_string(),
                &f.survivor.to_string(),
                &f.fold,
                &f.user,
                &f.device.to_string(),
                &stored_time(f.at),
            ],
        )?;
        stored_once(inserted, "fold of household", &f.retired.to_string())
    }

    fn update_fold(&mut self, retired: HouseholdId, fold: &str) -> Result<(), StorageError> {
        self.execute("UPDATE folds SET fold = $2 WHERE retired = $1", &[&retired.to_string(), &fold])?;
        Ok(())
    }

    fn touch_household(&mut self, id: HouseholdId) -> Result<(), StorageError> {
        // A new row version: a concurrent transaction that writes or touches it fails (40001).
        self.execute("UPDATE households SET id = id WHERE id = $1::text::uuid", &[&id.to_string()])?;
        Ok(())
    }

    fn insert_disagreement(&mut self, row: &FoldDisagreementRow, now: OffsetDateTime) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO fold_disagreements (survivor, retired, path, other, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&row.survivor.to_string(), &row.retired.to_string(), &row.path, &row.other, &stored_time(now)],
        )?;
        Ok(())
    }

    fn close_disagreements(
        &mut self,
        survivor: HouseholdId,
        path: &str,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.execute(
            "UPDATE fold_disagreements SET resolved_by = $3, resolved_at = $4
             WHERE survivor = $1 AND path = $2 AND resolved_at IS NULL",
            &[&survivor.to_string(), &path, &user, &stored_time(now)],
        )?;
        Ok(())
    }

    fn put_login_failures(&mut self, row: &LoginFailureRow) -> Result<(), StorageError> {
        // At REPEATABLE READ a row another transaction wrote (or inserted) after this one's
        // snapshot fails this one with a serialization failure, and it runs again: two servers
        // counting a failure of one user at once both count.
        self.execute(
            "INSERT INTO login_failures (kind, subject, failures, last_failure_ms, blocked_until_ms, forget_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (kind, subject) DO UPDATE SET failures = excluded.failures,
                 last_failure_ms = excluded.last_failure_ms, blocked_until_ms = excluded.blocked_until_ms,
                 forget_at_ms = excluded.forget_at_ms",
            &[
                &row.kind.as_str(),
                &row.subject,
                &i64::from(row.failures),
                &millis(row.last_failure),
                &row.blocked_until.map(millis),
                &millis(row.forget_at),
            ],
        )?;
        Ok(())
    }

    fn clear_login_failures(&mut self, kind: LoginSubjectKind, subject: &str) -> Result<(), StorageError> {
        self.execute("DELETE FROM login_failures WHERE kind = $1 AND subject = $2", &[&kind.as_str(), &subject])?;
        Ok(())
    }

    fn prune_login_failures(&mut self, now: OffsetDateTime, limit: u32) -> Result<u64, StorageError> {
        self.execute(
            "DELETE FROM login_failures WHERE (kind, subject) IN
                 (SELECT kind, subject FROM login_failures WHERE forget_at_ms <= $1 ORDER BY forget_at_ms LIMIT $2)",
            &[&millis(now), &i64::from(limit)],
        )
    }

    fn evict_login_failures(&mut self, now: OffsetDateTime, count: u64) -> Result<(), StorageError> {
        self.execute(
            "DELETE FROM login_failures WHERE (kind, subject) IN
                 (SELECT kind, subject FROM login_failures
                  ORDER BY COALESCE(blocked_until_ms > $1, false), forget_at_ms LIMIT $2)",
            &[&millis(now), &int(count)],
        )?;
        Ok(())
    }

    fn insert_form(&mut self, form: &FormRow, definition: &str) -> Result<bool, StorageError> {
        let inserted = self.execute(
            "INSERT INTO forms (key, form_id, version, title, definition, published_by, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &form.key,
                &form.form_id,
                &i64::from(form.version),
                &form.title,
                &definition,
                &form.published_by,
                &stored_time(form.published_at),
            ],
        )?;
        Ok(inserted == 1)
    }

    fn put_form_default(&mut self, row: &FormDefaultRow) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO form_defaults (area, form_key, set_by, set_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (area) DO UPDATE SET form_key = excluded.form_key, set_by = excluded.set_by,
             set_at = excluded.set_at",
            &[&row.area, &row.form_key, &row.set_by, &stored_time(row.set_at)],
        )?;
        Ok(())
    }
    fn set_user_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StorageError> {
        Ok(self.execute("UPDATE users SET password_hash = $2 WHERE name = $1", &[&name, &password_hash])? == 1)
    }

    fn set_user_role(&mut self, name: &str, role: Role) -> Result<bool, StorageError> {
        Ok(self.execute("UPDATE users SET role = $2 WHERE name = $1", &[&name, &role.as_str()])? == 1)
    }

    fn insert_web_session(&mut self, row: &WebSessionRow) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO web_sessions (token_hash, user_name, csrf, created_at, expires_at, seen_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &row.token_hash,
                &row.user,
                &row.csrf,
                &stored_time(row.created_at),
                &stored_time(row.expires_at),
                &stored_time(row.seen_at),
            ],
        )?;
        Ok(())
    }

    fn touch_web_session(&mut self, token_hash: &str, seen_at: OffsetDateTime) -> Result<(), StorageError> {
        self.execute(
            "UPDATE web_sessions SET seen_at = $2 WHERE token_hash = $1",
            &[&token_hash, &stored_time(seen_at)],
        )?;
        Ok(())
    }

    fn delete_web_session(&mut self, token_hash: &str) -> Result<(), StorageError> {
        self.execute("DELETE FROM web_sessions WHERE token_hash = $1", &[&token_hash])?;
        Ok(())
    }

    fn delete_web_sessions_of(&mut self, user: &str) -> Result<u64, StorageError> {
        self.execute("DELETE FROM web_sessions WHERE user_name = $1", &[&user])
    }

    fn prune_web_sessions(
        &mut self,
        ended_before: OffsetDateTime,
        idle_before: OffsetDateTime,
        limit: u32,
    ) -> Result<(), StorageError> {
        self.execute(
            "DELETE FROM web_sessions WHERE token_hash IN
                 (SELECT token_hash FROM web_sessions WHERE expires_at < $1 OR seen_at < $2 LIMIT $3)",
            &[&stored_time(ended_before), &stored_time(idle_before), &i64::from(limit)],
        )?;
        Ok(())
    }
}

impl PgTx<'_, '_> {
    /// The feed head row of `village`, made at the floor on first use and locked until commit.
    fn lock_feed_head_row(&mut self, village: &str) -> Result<u64, StorageError> {
        if !self.prelocked.contains(village) {
            // Appenders to one village queue on this lock (and wait for a transaction that holds
            // it from before its BEGIN, see `storage::postgres`). One that waited finds the head
            // moved after its snapshot and fails with a serialization failure: it runs again.
            self.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&FEED_LOCK_SPACE, &village])?;
        }
        self.execute(
            "INSERT INTO feed_heads (village, head) VALUES ($1, COALESCE((SELECT floor FROM feed_floor), 0))
             ON CONFLICT (village) DO NOTHING",
            &[&village],
        )?;
        let head: i64 =
            col(&self.query_one("SELECT head FROM feed_heads WHERE village = $1 FOR UPDATE", &[&village])?, 0)?;
        Ok(count(head))
    }
}

/// The lowest and highest lowercase hyphenated uuid that start with `prefix` (of that text form),
/// or `None` when no uuid does.
fn uuid_prefix_range(prefix: &str) -> Option<(String, String)> {
    const SHAPE: &str = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    let prefix = prefix.to_ascii_lowercase();
    if prefix.len() > SHAPE.len() {
        return None;
    }
    let fill = |digit: char| -> Option<String> {
        let mut out = String::with_capacity(SHAPE.len());
        for (i, shape) in SHAPE.chars().enumerate() {
            match (prefix.chars().nth(i), shape) {
                (Some('-'), '-') => out.push('-'),
                (Some(c), 'x') if c.is_ascii_hexdigit() => out.push(c),
                (Some(_), _) => return None,
                (None, '-') => out.push('-'),
                (None, _) => out.push(digit),
            }
        }
        Some(out)
    };
    Some((fill('0')?, fill('f')?))
}
