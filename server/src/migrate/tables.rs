//! The source side of a migration: the SQLite database opened read-only at the schema version
//! this binary writes, and its tables as SQLite's own catalogue lists them (columns, declared
//! types, primary keys), parents before children.

use super::MigrateError;
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A column's kind, from SQLite's declared type (and PostgreSQL's `data_type`, which must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// SQLite `INTEGER`, PostgreSQL `bigint`.
    Integer,
    /// SQLite `TEXT`, PostgreSQL `text`.
    Text,
    /// SQLite `BLOB`, PostgreSQL `bytea`.
    Bytes,
    /// SQLite `TEXT` holding a uuid, PostgreSQL `uuid` ([`crate::postgres_schema::COMPACT_COLUMNS`]).
    Uuid,
    /// SQLite `TEXT` holding lowercase hex, PostgreSQL `bytea` of those bytes (the same list).
    Hex,
    /// SQLite `TEXT` holding a village code, PostgreSQL `bigint` of its digits (the same list).
    Village,
    /// SQLite `TEXT` holding a document's heads, PostgreSQL `bytea` of the hashes (the same list).
    Heads,
    /// SQLite `TEXT` holding a stored time, PostgreSQL `timestamptz` (the same list).
    Time,
}

impl Kind {
    /// PostgreSQL's name for the kind, as `information_schema.columns.data_type` spells it.
    pub(super) fn postgres_name(self) -> &'static str {
        match self {
            Kind::Integer | Kind::Village => "bigint",
            Kind::Text => "text",
            Kind::Bytes | Kind::Hex | Kind::Heads => "bytea",
            Kind::Time => "timestamp with time zone",
            Kind::Uuid => "uuid",
        }
    }
}

/// One column of a source table.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) kind: Kind,
}

/// One table of the source, as copied.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) name: String,
    pub(super) columns: Vec<Column>,
    /// The primary key's columns in key order (all columns when the table has none): the order
    /// rows are compared in.
    pub(super) order_by: Vec<String>,
}

impl Table {
    /// The column list, quoted, for SQL.
    pub(super) fn column_list(&self) -> String {
        self.columns.iter().map(|c| quoted(&c.name)).collect::<Vec<_>>().join(", ")
    }

    /// `ORDER BY` columns, quoted, for SQL.
    pub(super) fn order_list(&self) -> String {
        self.order_by.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ")
    }
}

/// An identifier quoted for SQL (both SQLite and PostgreSQL take double quotes).
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQLite failure on the source, as a migration error.
pub(super) fn source_error(path: &Path, e: rusqlite::Error) -> MigrateError {
    MigrateError::Source { path: path.to_path_buf(), message: e.to_string() }
}

/// Open the source read-only and check that its schema is the one this binary writes.
pub(super) fn open_source(path: &Path) -> Result<Connection, MigrateError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| source_error(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| source_error(path, e))?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| source_error(path, e))?;
    let supported = crate::storage::sqlite::MIGRATIONS.len() as i64;
    if found == supported {
        return Ok(conn);
    }
    let shown = path.display();
    Err(MigrateError::SourceSchema(if found == 0 {
        format!("{shown} is not a pilar-server database (it has no schema version); check --from")
    } else if found < supported {
        format!(
            "{shown} was last opened by an older pilar-server (SQLite schema version {found}; this one copies version \
             {supported}): start this pilar-server once on it (it upgrades the database at start-up), stop it, and \
             migrate again"
        )
    } else {
        format!(
            "{shown} was written by a newer pilar-server (SQLite schema version {found}; this one knows {supported}): \
             run the migrate command of that newer pilar-server"
        )
    }))
}

/// Every table of the source (SQLite's own `sqlite_*` tables aside), parents before the tables
/// whose foreign keys point at them, otherwise by name.
pub(super) fn source_tables(conn: &Connection, path: &Path) -> Result<Vec<Table>, MigrateError> {
    let err = |e| source_error(path, e);
    let names: Vec<String> = {
        let mut statement = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(err)?;
        statement.query_map([], |r| r.get(0)).map_err(err)?.collect::<Result<_, _>>().map_err(err)?
    };
    let mut tables = BTreeMap::new();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in names {
        let mut info = conn.prepare(&format!("PRAGMA table_info({})", quoted(&name))).map_err(err)?;
        let rows: Vec<(String, String, i64)> = info
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(5)?)))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut columns = Vec::with_capacity(rows.len());
        let mut key: Vec<(i64, String)> = Vec::new();
        for (column, declared, pk) in rows {
            let kind = match declared.to_ascii_uppercase().as_str() {
                "INTEGER" => Kind::Integer,
                "TEXT" => match crate::postgres_schema::compact(&name, &column) {
                    Some(crate::postgres_schema::Compact::Uuid) => Kind::Uuid,
                    Some(crate::postgres_schema::Compact::Hex) => Kind::Hex,
                    Some(crate::postgres_schema::Compact::Village) => Kind::Village,
                    Some(crate::postgres_schema::Compact::Heads) => Kind::Heads,
                    Some(crate::postgres_schema::Compact::Time) => Kind::Time,
                    None => Kind::Text,
                },
                "BLOB" => Kind::Bytes,
                other => {
                    return Err(MigrateError::SourceSchema(format!(
                        "{name}.{column} in {} has the type {other:?}, which pilar-server never writes; the source was \
                         changed outside pilar-server",
                        path.display()
                    )));
                }
            };
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(Column { name: column, kind });
        }
        key.sort();
        let order_by = if key.is_empty() {
            columns.iter().map(|c| c.name.clone()).collect()
        } else {
            key.into_iter().map(|(_, c)| c).collect()
        };
        let mut keys = conn.prepare(&format!("PRAGMA foreign_key_list({})", quoted(&name))).map_err(err)?;
        let referenced: BTreeSet<String> =
            keys.query_map([], |r| r.get(2)).map_err(err)?.collect::<Result<_, _>>().map_err(err)?;
        parents.insert(name.clone(), referenced.into_iter().filter(|parent| *parent != name).collect());
        tables.insert(name.clone(), Table { name, columns, order_by });
    }
    // Kahn's algorithm over the foreign keys; ties by name, so the order is stable.
    let mut ordered = Vec::with_capacity(tables.len());
    let mut placed = BTreeSet::new();
    while placed.len() < tables.len() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|name| !placed.contains(*name))
            .filter(|name| parents[*name].iter().all(|parent| placed.contains(parent) || !tables.contains_key(parent)))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(MigrateError::SourceSchema(format!(
                "the foreign keys of {} form a cycle, which pilar-server's schema never has; the source was changed \
                 outside pilar-server",
                path.display()
            )));
        }
        for name in ready {
            placed.insert(name.clone());
            if let Some(table) = tables.get(&name) {
                ordered.push(table.clone());
            }
        }
    }
    Ok(ordered)
}

/// Fail unless the target table has exactly the source table's columns, of the same kinds.
pub(super) fn check_same_columns(table: &Table, target: &BTreeMap<String, String>) -> Result<(), MigrateError> {
    let source: BTreeMap<String, String> =
        table.columns.iter().map(|c| (c.name.clone(), c.kind.postgres_name().to_string())).collect();
    if &source == target {
        return Ok(());
    }
    Err(MigrateError::Mismatch(format!(
        "the PostgreSQL table {} has the columns {target:?} where SQLite's has {source:?} (the two schemas must be \
         equal column for column)",
        table.name
    )))
}
