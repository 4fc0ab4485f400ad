//! The target side of a migration: connect, refuse a database that holds anything, stream each
//! source table into PostgreSQL with `COPY … (FORMAT binary)`, and move identity sequences past
//! the copied numbers.

use super::tables::{Kind, Table, quoted, source_error};
use super::{FILLED_BY_SCHEMA, MigrateError, Progress};
use crate::postgres_schema::{MIGRATIONS, VERSION_TABLE};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient};
use rusqlite::types::ValueRef;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Rows between two progress reports of one table.
const PROGRESS_EVERY: u64 = 1_000;

/// A PostgreSQL failure as a migration error: PostgreSQL's message and code, never its DETAIL
/// (which quotes the values of a violated key).
pub(super) fn target_error(shown: &str, e: postgres::Error) -> MigrateError {
    let message = match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    MigrateError::Target { url: shown.to_string(), message }
}

/// A client on the target (PostgreSQL's notices kept out of the output).
pub(super) fn connect(url: &str, shown: &str) -> Result<Client, MigrateError> {
    let mut config: postgres::Config = url.parse().map_err(|e| {
        MigrateError::Usage(format!(
            "--to {shown} is not a PostgreSQL connection URL ({e}); write it as postgres://USER@HOST:PORT/NAME"
        ))
    })?;
    let options = match config.get_options() {
        Some(given) => format!("{given} -c client_min_messages=warning"),
        None => "-c client_min_messages=warning".to_string(),
    };
    config.options(&options);
    config.connect(postgres::NoTls).map_err(|e| MigrateError::Target {
        url: shown.to_string(),
        message: format!(
            "cannot connect ({e}); check that PostgreSQL runs, that the database exists (createdb) and that the URL's \
             user and password are right"
        ),
    })
}

/// The tables in the target's schema (the migration runner's own table aside).
fn target_tables(client: &mut impl GenericClient, shown: &str) -> Result<Vec<String>, MigrateError> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> $1
             ORDER BY 1",
            &[&VERSION_TABLE],
        )
        .map_err(|e| target_error(shown, e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// "3 rows in users, 1 row in devices" for every table of `tables` holding rows, schema-filled
/// tables aside; empty when none does.
fn rows_found(client: &mut impl GenericClient, tables: &[String], shown: &str) -> Result<String, MigrateError> {
    let mut found = Vec::new();
    for table in tables.iter().filter(|t| !FILLED_BY_SCHEMA.contains(&t.as_str())) {
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM {}", quoted(table)), &[])
            .map_err(|e| target_error(shown, e))?
            .get(0);
        if count > 0 {
            found.push(format!("{count} row{} in {table}", if count == 1 { "" } else { "s" }));
        }
    }
    Ok(found.join(", "))
}

/// Refuse a target that holds rows, or tables without pilar-server's schema version, or a schema
/// from a newer pilar-server; before anything is written to it.
pub(super) fn refuse_unless_empty(client: &mut Client, shown: &str) -> Result<(), MigrateError> {
    let tables = target_tables(client, shown)?;
    let version = crate::postgres_schema::schema_version(client).map_err(|e| MigrateError::Target {
        url: shown.to_string(),
        message: format!("cannot read the schema version: {e}"),
    })?;
    let not_empty = |found: String| MigrateError::TargetNotEmpty { url: shown.to_string(), found };
    if version == 0 && !tables.is_empty() {
        return Err(not_empty(format!("tables of something else ({})", tables.join(", "))));
    }
    if version > MIGRATIONS.len() as i64 {
        return Err(not_empty(format!(
            "the schema of a newer pilar-server (version {version}; this one knows {})",
            MIGRATIONS.len()
        )));
    }
    let found = rows_found(client, &tables, shown)?;
    if found.is_empty() { Ok(()) } else { Err(not_empty(found)) }
}

/// In the copy's transaction: lock every target table (a server starting on the target meanwhile
/// waits, then finds it full), check again that none holds rows, and empty the schema-filled ones.
pub(super) fn lock_and_check_empty(
    tx: &mut postgres::Transaction<'_>,
    source: &[Table],
    shown: &str,
) -> Result<(), MigrateError> {
    let tables = target_tables(tx, shown)?;
    if !tables.is_empty() {
        let list = tables.iter().map(|t| quoted(t)).collect::<Vec<_>>().join(", ");
        tx.batch_execute(&format!("LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE")).map_err(|e| target_error(shown, e))?;
    }
    let found = rows_found(tx, &tables, shown)?;
    if !found.is_empty() {
        return Err(MigrateError::TargetNotEmpty { url: shown.to_string(), found });
    }
    for table in FILLED_BY_SCHEMA.iter().filter(|t| source.iter().any(|s| s.name == **t)) {
        tx.batch_execute(&format!("DELETE FROM {}", quoted(table))).map_err(|e| target_error(shown, e))?;
    }
    Ok(())
}

/// The target table's columns and their types (`information_schema` spelling).
pub(super) fn target_columns(
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    shown: &str,
) -> Result<BTreeMap<String, String>, MigrateError> {
    let rows = tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .map_err(|e| target_error(shown, e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Fail when the target has tables the source lacks (the schemas must be equal table for table).
pub(super) fn check_no_other_tables(
    tx: &mut postgres::Transaction<'_>,
    source: &[Table],
    shown: &str,
) -> Result<(), MigrateError> {
    let copied: BTreeSet<&str> = source.iter().map(|t| t.name.as_str()).collect();
    let extra: Vec<String> = target_tables(tx, shown)?
        .into_iter()
        .filter(|t| !copied.contains(t.as_str()) && !crate::postgres_schema::POSTGRES_ONLY_TABLES.contains(&t.as_str()))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    Err(MigrateError::Mismatch(format!(
        "the PostgreSQL schema has tables SQLite's lacks ({}); the two schemas must be equal table for table",
        extra.join(", ")
    )))
}

/// Stream one table from the source snapshot into the target; returns the rows copied.
pub(super) fn copy_table(
    source: &rusqlite::Transaction<'_>,
    tx: &mut postgres::Transaction<'_>,
    table: &Table,
    path: &Path,
    shown: &str,
    progress: &mut dyn Progress,
) -> Result<u64, MigrateError> {
    let name = quoted(&table.name);
    let total: i64 = source
        .query_row(&format!("SELECT count(*) FROM {name}"), [], |r| r.get(0))
        .map_err(|e| source_error(path, e))?;
    let total = total.max(0) as u64;
    progress.table(&table.name, total);
    let types: Vec<Type> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            Kind::Integer | Kind::Village => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Bytes | Kind::Hex | Kind::Heads => Type::BYTEA,
            Kind::Time => Type::TIMESTAMPTZ,
            Kind::Uuid => Type::UUID,
        })
        .collect();
    let columns = table.column_list();
    let writer = tx
        .copy_in(&format!("COPY {name} ({columns}) FROM STDIN (FORMAT binary)"))
        .map_err(|e| target_error(shown, e))?;
    let mut writer = BinaryCopyInWriter::new(writer, &types);
    let mut statement = source.prepare(&format!("SELECT {columns} FROM {name}")).map_err(|e| source_error(path, e))?;
    let mut rows = statement.query([]).map_err(|e| source_error(path, e))?;
    let mut copied = 0u64;
    while let Some(row) = rows.next().map_err(|e| source_error(path, e))? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            let value = row.get_ref(i).map_err(|e| source_error(path, e))?;
            let converted = convert(value, column.kind).ok_or_else(|| MigrateError::Source {
                path: path.to_path_buf(),
                message: format!(
                    "{}.{} in row {} holds {} where the schema says {}; the source was changed outside pilar-server",
                    table.name,
                    column.name,
                    copied + 1,
                    kind_of(value),
                    column.kind.postgres_name()
                ),
            })?;
            values.push(converted);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
        writer.write(&refs).map_err(|e| target_error(shown, e))?;
        copied += 1;
        if copied.is_multiple_of(PROGRESS_EVERY) {
            progress.copied(&table.name, copied, total);
        }
    }
    let written = writer.finish().map_err(|e| target_error(shown, e))?;
    if written != copied {
        return Err(MigrateError::Mismatch(format!(
            "PostgreSQL took {written} rows of {} where {copied} were sent",
            table.name
        )));
    }
    progress.table_done(&table.name, copied);
    Ok(copied)
}

/// A source value as the target column's type; `None` when SQLite holds another type there.
fn convert(value: ValueRef<'_>, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    Some(match (value, kind) {
        (ValueRef::Null, Kind::Integer | Kind::Village) => Box::new(None::<i64>),
        (ValueRef::Null, Kind::Text) => Box::new(None::<String>),
        (ValueRef::Null, Kind::Bytes | Kind::Hex | Kind::Heads) => Box::new(None::<Vec<u8>>),
        (ValueRef::Null, Kind::Time) => Box::new(None::<std::time::SystemTime>),
        (ValueRef::Null, Kind::Uuid) => Box::new(None::<uuid::Uuid>),
        (ValueRef::Text(text), Kind::Uuid) => {
            Box::new(Some(uuid::Uuid::parse_str(std::str::from_utf8(text).ok()?).ok()?))
        }
        (ValueRef::Text(text), Kind::Hex) => Box::new(Some(hex::decode(text).ok()?)),
        (ValueRef::Text(text), Kind::Heads) => {
            Box::new(Some(crate::postgres_schema::heads_bytes(std::str::from_utf8(text).ok()?)?))
        }
        (ValueRef::Text(text), Kind::Time) => {
            // Only the form the server writes, which reads back the same (`pilar_time_text`).
            let text = std::str::from_utf8(text).ok()?;
            let at = crate::storage::sqlite::parse_stored_time(text).ok()?;
            (crate::storage::sqlite::stored_time(at) == text).then_some(())?;
            Box::new(Some(std::time::SystemTime::from(at)))
        }
        (ValueRef::Text(text), Kind::Village) => {
            Box::new(Some(crate::postgres_schema::village_number(std::str::from_utf8(text).ok()?)?))
        }
        (ValueRef::Integer(n), Kind::Integer) => Box::new(Some(n)),
        (ValueRef::Text(text), Kind::Text) => Box::new(Some(String::from_utf8(text.to_vec()).ok()?)),
        (ValueRef::Blob(bytes), Kind::Bytes) => Box::new(Some(bytes.to_vec())),
        _ => return None,
    })
}

fn kind_of(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "bytes",
    }
}

/// Move every identity column's sequence past the copied numbers, and past SQLite's
/// AUTOINCREMENT counter (numbers SQLite handed out once are never handed out again).
pub(super) fn move_identities_past_copied_rows(
    source: &rusqlite::Transaction<'_>,
    tx: &mut postgres::Transaction<'_>,
    path: &Path,
    shown: &str,
) -> Result<(), MigrateError> {
    let has_sequence_table: bool = source
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| source_error(path, e))?;
    let mut handed_out: BTreeMap<String, i64> = BTreeMap::new();
    if has_sequence_table {
        let mut statement =
            source.prepare("SELECT name, seq FROM sqlite_sequence").map_err(|e| source_error(path, e))?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| source_error(path, e))?;
        for row in rows {
            let (table, seq) = row.map_err(|e| source_error(path, e))?;
            handed_out.insert(table, seq);
        }
    }
    let identities: Vec<(String, String)> = tx
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY 1, 2",
            &[],
        )
        .map_err(|e| target_error(shown, e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (table, column) in identities {
        let max: Option<i64> = tx
            .query_one(&format!("SELECT max({}) FROM {}", quoted(&column), quoted(&table)), &[])
            .map_err(|e| target_error(shown, e))?
            .get(0);
        let last = max.unwrap_or(0).max(handed_out.get(&table).copied().unwrap_or(0));
        // setval(…, n, true): the next number is n + 1; setval(…, 1, false): the next is 1.
        let (value, called) = if last > 0 { (last, true) } else { (1, false) };
        tx.execute(
            "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)",
            &[&quoted(&table), &column, &value, &called],
        )
        .map_err(|e| target_error(shown, e))?;
    }
    Ok(())
}

/// Photos copied from the source's data directory into the target's photo tables.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct CopiedPhotos {
    /// Whole photos copied, each verified by its SHA-256 as read.
    pub(super) photos: u64,
    /// Their bytes.
    pub(super) bytes: u64,
    /// Files whose bytes do not match their SHA-256 name: not copied (the device that sent the
    /// photo sends it again if it still holds it).
    pub(super) damaged: u64,
}

/// Copy every whole photo a SQLite server keeps as a file (`photos/<ab>/<sha256>`) into the
/// target's `photo_uploads`/`photo_chunks`, in the copy's transaction, 1 MiB a row (memory stays
/// one chunk). Uploads in progress (`photos/partial`) are left: devices resume them from 0.
pub(super) fn copy_photos(
    data_dir: &Path,
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    progress: &mut dyn super::Progress,
) -> Result<CopiedPhotos, MigrateError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let root = data_dir.join("photos");
    let mut copied = CopiedPhotos::default();
    let Ok(dirs) = std::fs::read_dir(&root) else { return Ok(copied) };
    let source_error =
        |path: &Path, e: std::io::Error| MigrateError::Usage(format!("cannot read the photo {}: {e}", path.display()));
    let mut files = Vec::new();
    for dir in dirs.flatten() {
        if dir.file_name() == "partial" || !dir.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).map_err(|e| source_error(&dir.path(), e))?.flatten() {
            files.push(file.path());
        }
    }
    files.sort();
    if !files.is_empty() {
        progress.step(&format!("copying {} photos from {}", files.len(), root.display()));
    }
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let mut file = std::fs::File::open(&path).map_err(|e| source_error(&path, e))?;
        tx.execute("INSERT INTO photo_uploads (photo, held, whole) VALUES ($1, 0, FALSE)", &[&name])
            .map_err(|e| target_error(shown, e))?;
        let mut hasher = Sha256::new();
        let mut block = vec![0u8; 1024 * 1024];
        let mut start: i64 = 0;
        loop {
            let mut filled = 0;
            while filled < block.len() {
                let n = file.read(&mut block[filled..]).map_err(|e| source_error(&path, e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            hasher.update(&block[..filled]);
            tx.execute(
                "INSERT INTO photo_chunks (photo, start, bytes) VALUES ($1, $2, $3)",
                &[&name, &start, &&block[..filled]],
            )
            .map_err(|e| target_error(shown, e))?;
            start += filled as i64;
        }
        if hex::encode(hasher.finalize()) == name {
            tx.execute("UPDATE photo_uploads SET held = $2, whole = TRUE WHERE photo = $1", &[&name, &start])
                .map_err(|e| target_error(shown, e))?;
            copied.photos += 1;
            copied.bytes += start as u64;
        } else {
            tx.execute("DELETE FROM photo_uploads WHERE photo = $1", &[&name]).map_err(|e| target_error(shown, e))?;
            copied.damaged += 1;
        }
    }
    Ok(copied)
}
