//! The PostgreSQL schema and its migration runner, ready for the PostgreSQL storage backend.
//!
//! Migrations are numbered like SQLite's (`PRAGMA user_version` there, the table
//! `pilar_schema_migrations` here): entry `i` of [`MIGRATIONS`] moves a database from version `i`
//! to `i + 1`, each in its own transaction, and a database newer than this binary is refused.
//! Several servers may start at once on one database: every migration transaction first takes a
//! transaction-scoped advisory lock ([`MIGRATION_LOCK`]) and reads the version again under it, so
//! exactly one of them applies each migration and the others find it applied.

use crate::storage::StorageError;

/// The schema, one migration per entry (the SQL files in `server/migrations/postgres/`). Never
/// edit an entry that has shipped; append a new file.
pub const MIGRATIONS: &[&str] = &[
    // 1: today's SQLite schema (its six migrations), translated column for column.
    include_str!("../migrations/postgres/0001_schema.sql"),
    // 2: SQLite's migration 7: the feed numbered per village, facts from a queue, folds.
    include_str!("../migrations/postgres/0002_feed_per_village.sql"),
    // 3: SQLite's migration 8: failed logins, shared by every server on the database.
    include_str!("../migrations/postgres/0003_login_failures.sql"),
    // 4: SQLite's migration 9: the dictionaries documents and changes are compressed with.
    include_str!("../migrations/postgres/0004_kept_dictionaries.sql"),
    // 5: photo bytes (PostgreSQL only: a SQLite server keeps them as files).
    include_str!("../migrations/postgres/0005_photos.sql"),
    // 6: SQLite's migration 10: the feed kept by (village, position), without a sequence number.
    include_str!("../migrations/postgres/0006_changes_by_place.sql"),
    // 7: SQLite's migration 11: published questionnaire versions and the defaults.
    include_str!("../migrations/postgres/0007_forms.sql"),
    // 8: SQLite's migration 12: the office web page's sessions.
    include_str!("../migrations/postgres/0008_web_sessions.sql"),
    // 9: SQLite's migration 13: facts searched, paged and counted in SQL, visits per day.
    include_str!("../migrations/postgres/0009_facts_in_sql.sql"),
    // 10: SQLite's migration 14: holders counted per duplicate key.
    include_str!("../migrations/postgres/0010_key_counts.sql"),
    // 11: SQLite's migration 15: a duplicate key's row carries its holder's village and last visitor.
    include_str!("../migrations/postgres/0011_keys_carry_holder.sql"),
    // 12: SQLite's migration 16: stored sync responses keep their pull's feed positions, not its bytes.
    include_str!("../migrations/postgres/0012_responses_by_place.sql"),
    // 13: the feed's hashes kept once by an exclusion constraint on a hash index, not a UNIQUE btree.
    include_str!("../migrations/postgres/0013_change_hashes_hashed.sql"),
    // 14: compact keys: the feed's hashes as bytes, its and the facts queue's ids as uuid.
    include_str!("../migrations/postgres/0014_compact_feed_keys.sql"),
    // 15: households' ids as uuid.
    include_str!("../migrations/postgres/0015_compact_household_ids.sql"),
    // 16: the feed keyed by its village as a number, rebuilt with fixed-width columns first (the
    // arrival time as timestamptz).
    include_str!("../migrations/postgres/0016_feed_by_village_number.sql"),
    // 17: households rebuilt compactly (heads as bytes, times as timestamptz); the hash index full.
    include_str!("../migrations/postgres/0017_compact_households.sql"),
];

/// How a column SQLite keeps as text is kept more compactly on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compact {
    /// A uuid's text (`0193…-…`), kept as `uuid`.
    Uuid,
    /// Lowercase hex, kept as its bytes (`bytea`).
    Hex,
    /// A village code (`73.14.01.1001`), kept as the `bigint` of its ten digits
    /// (`pilar_village_number`, `pilar_village_text`).
    Village,
    /// A document's heads (comma-separated 64-character hex hashes), kept as the hashes' bytes
    /// one after another (`pilar_heads_bytes`, `pilar_heads_text`).
    Heads,
    /// A time as [`crate::storage::sqlite::stored_time`] writes it (whole seconds, UTC), kept as
    /// `timestamptz` (`$1::text::timestamptz`, `pilar_time_text`).
    Time,
}

/// The columns PostgreSQL keeps in a compact type where SQLite keeps text (table, column, how):
/// the rows sync writes most, where 20–50 bytes a row add up (issue 15, server disk).
/// `pilar-server migrate` converts them, and the schema comparison expects these types.
pub const COMPACT_COLUMNS: &[(&str, &str, Compact)] = &[
    ("changes", "hash", Compact::Hex),
    ("changes", "household_id", Compact::Uuid),
    ("changes", "device_id", Compact::Uuid),
    ("changes", "village", Compact::Village),
    ("changes", "received_at", Compact::Time),
    ("facts_stale", "household_id", Compact::Uuid),
    ("households", "id", Compact::Uuid),
    ("households", "heads", Compact::Heads),
    ("households", "updated_at", Compact::Time),
    ("households", "created_at", Compact::Time),
];

/// The number PostgreSQL keeps a village code as (`73.14.01.1001` → 7314011001), as the
/// migration's `pilar_village_number` computes it; `None` for text not of that form.
pub fn village_number(code: &str) -> Option<i64> {
    let b = code.as_bytes();
    let dots = [2, 5, 8];
    let well_formed = b.len() == 13
        && b.iter().enumerate().all(|(i, c)| if dots.contains(&i) { *c == b'.' } else { c.is_ascii_digit() });
    well_formed.then(|| code.replace('.', "").parse().ok()).flatten()
}

/// Heads as PostgreSQL keeps them: each comma-separated hex hash as its bytes, one after another
/// (as the migration's `pilar_heads_bytes`); `None` unless each is 64 hex characters.
pub fn heads_bytes(heads: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(heads.len() / 2);
    for hash in heads.split(',').filter(|h| !heads.is_empty() || !h.is_empty()) {
        if hash.len() != 64 {
            return None;
        }
        bytes.extend(hex::decode(hash).ok()?);
    }
    Some(bytes)
}

/// How PostgreSQL keeps `table.column` if not as SQLite does.
pub fn compact(table: &str, column: &str) -> Option<Compact> {
    COMPACT_COLUMNS.iter().find(|(t, c, _)| *t == table && *c == column).map(|(_, _, how)| *how)
}

/// Tables only PostgreSQL has: photo bytes, which a SQLite server keeps as files in its data
/// directory (`pilar-server migrate` fills them from those files).
pub const POSTGRES_ONLY_TABLES: &[&str] = &["photo_uploads", "photo_chunks"];

/// The advisory lock key every migration transaction holds (the bytes of "pilarmig"), so two
/// servers starting at once never apply one migration twice.
pub const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"pilarmig");

/// The table that records applied migrations (one row per version).
pub const VERSION_TABLE: &str = "pilar_schema_migrations";

/// Bring the database's schema up to date; returns how many migrations this call applied.
///
/// Refuses ([`StorageError::SchemaTooNew`]) a database a newer pilar-server migrated. Runs on a
/// synchronous client: call it off the async workers (at start-up, or in `spawn_blocking`).
pub fn migrate(client: &mut postgres::Client) -> Result<usize, StorageError> {
    let supported = MIGRATIONS.len() as i64;
    let mut applied = 0;
    loop {
        let mut tx = client.transaction().map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(backend)?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )"
        ))
        .map_err(backend)?;
        let found = version_in(&mut tx)?;
        if found > supported {
            return Err(StorageError::SchemaTooNew { found, supported });
        }
        if found == supported {
            tx.commit().map_err(backend)?;
            return Ok(applied);
        }
        let next = found + 1;
        let sql = MIGRATIONS[found as usize];
        tx.batch_execute(sql).map_err(|e| migration_failed(next, e))?;
        tx.execute(&format!("INSERT INTO {VERSION_TABLE} (version) VALUES ($1)"), &[&next]).map_err(backend)?;
        tx.commit().map_err(|e| migration_failed(next, e))?;
        applied += 1;
    }
}

/// The database's schema version: the newest migration applied, 0 for an empty database.
pub fn schema_version(client: &mut postgres::Client) -> Result<i64, StorageError> {
    let exists: bool =
        client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&VERSION_TABLE]).map_err(backend)?.get(0);
    if !exists {
        return Ok(0);
    }
    let mut tx = client.transaction().map_err(backend)?;
    let version = version_in(&mut tx)?;
    tx.commit().map_err(backend)?;
    Ok(version)
}

fn version_in(tx: &mut postgres::Transaction<'_>) -> Result<i64, StorageError> {
    let row = tx.query_one(&format!("SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}"), &[]).map_err(backend)?;
    Ok(row.get(0))
}

fn backend(e: postgres::Error) -> StorageError {
    StorageError::Backend(Box::new(e))
}

fn migration_failed(version: i64, e: postgres::Error) -> StorageError {
    StorageError::Backend(
        format!(
            "postgresql schema migration {version} failed and was rolled back (the database stays at version {}): {e}",
            version - 1
        )
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn village_codes_become_their_digits_and_nothing_else_does() {
        assert_eq!(village_number("73.14.01.1001"), Some(7_314_011_001));
        assert_eq!(village_number("11.01.01.2001"), Some(1_101_012_001));
        for other in ["7314011001", "73.14.01.100", "73.14.01.10011", "73-14-01-1001", "73.14.0a.1001", ""] {
            assert_eq!(village_number(other), None, "{other:?}");
        }
    }

    #[test]
    fn heads_become_their_hashes_bytes_one_after_another() {
        let (a, b) = ("ab".repeat(32), "0f".repeat(32));
        assert_eq!(heads_bytes(""), Some(Vec::new()));
        assert_eq!(heads_bytes(&a), Some(vec![0xab; 32]));
        assert_eq!(heads_bytes(&format!("{a},{b}")), Some([vec![0xab; 32], vec![0x0f; 32]].concat()));
        for other in [format!("{a},"), format!(",{a}"), "heads-10".to_string(), "zz".repeat(32), a[..62].to_string()] {
            assert_eq!(heads_bytes(&other), None, "{other:?}");
        }
    }
}
