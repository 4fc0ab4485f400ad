//! The check before a migration commits: every table holds as many rows on PostgreSQL as in the
//! source snapshot, and every row is equal, read from both sides in key order; byte columns
//! (household documents, feed changes, stored sync responses, secrets) are compared by SHA-256,
//! computed by PostgreSQL (`sha256()`) on its side so documents are not read back.

use super::copy::target_error;
use super::tables::{Kind, Table, quoted, source_error};
use super::{MigrateError, Progress};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What the verification compared, for the summary.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Verified {
    /// Household documents found equal.
    pub(super) documents: u64,
    /// Feed changes found equal.
    pub(super) changes: u64,
}

/// Compare every table of `tables` between the source snapshot and the target transaction.
pub(super) fn compare(
    source: &rusqlite::Transaction<'_>,
    tx: &mut postgres::Transaction<'_>,
    tables: &[Table],
    path: &Path,
    shown: &str,
    progress: &mut dyn Progress,
) -> Result<Verified, MigrateError> {
    let mut verified = Verified::default();
    for table in tables {
        let rows = compare_table(source, tx, table, path, shown)?;
        match table.name.as_str() {
            "households" => verified.documents = rows,
            "changes" => verified.changes = rows,
            _ => {}
        }
        progress.step(&format!("verified {}: {rows} rows equal", table.name));
    }
    Ok(verified)
}

/// Compare one table row by row; returns the rows compared.
fn compare_table(
    source: &rusqlite::Transaction<'_>,
    tx: &mut postgres::Transaction<'_>,
    table: &Table,
    path: &Path,
    shown: &str,
) -> Result<u64, MigrateError> {
    let name = quoted(&table.name);
    let order = table.order_list();
    let in_source: i64 = source
        .query_row(&format!("SELECT count(*) FROM {name}"), [], |r| r.get(0))
        .map_err(|e| source_error(path, e))?;
    let in_target: i64 =
        tx.query_one(&format!("SELECT count(*) FROM {name}"), &[]).map_err(|e| target_error(shown, e))?.get(0);
    if in_source != in_target {
        return Err(MigrateError::Mismatch(format!(
            "{} holds {in_source} rows in SQLite but {in_target} in PostgreSQL",
            table.name
        )));
    }
    let target_columns = table
        .columns
        .iter()
        .map(|c| match c.kind {
            Kind::Bytes => format!("sha256({})", quoted(&c.name)),
            Kind::Integer | Kind::Text => quoted(&c.name),
            // Compared as the text SQLite holds.
            Kind::Uuid => format!("{}::text", quoted(&c.name)),
            Kind::Hex => format!("encode({}, 'hex')", quoted(&c.name)),
            Kind::Village => format!("pilar_village_text({})", quoted(&c.name)),
            Kind::Heads => format!("pilar_heads_text({})", quoted(&c.name)),
            Kind::Time => format!("pilar_time_text({})", quoted(&c.name)),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let no_params: [&(dyn ToSql + Sync); 0] = [];
    let mut target_rows = tx
        .query_raw(&format!("SELECT {target_columns} FROM {name} ORDER BY {order}"), no_params)
        .map_err(|e| target_error(shown, e))?;
    let mut statement = source
        .prepare(&format!("SELECT {} FROM {name} ORDER BY {order}", table.column_list()))
        .map_err(|e| source_error(path, e))?;
    let mut source_rows = statement.query([]).map_err(|e| source_error(path, e))?;
    let mut compared = 0u64;
    loop {
        let from_source = source_rows.next().map_err(|e| source_error(path, e))?;
        let from_target = target_rows.next().map_err(|e| target_error(shown, e))?;
        let (source_row, target_row) = match (from_source, from_target) {
            (None, None) => break,
            (Some(s), Some(t)) => (s, t),
            _ => {
                return Err(MigrateError::Mismatch(format!(
                    "{} ran out of rows on one side after {compared} rows",
                    table.name
                )));
            }
        };
        compared += 1;
        for (i, column) in table.columns.iter().enumerate() {
            let value = source_row.get_ref(i).map_err(|e| source_error(path, e))?;
            let equal = match column.kind {
                Kind::Integer => {
                    let source_number = value.as_i64_or_null().ok();
                    source_number.is_some() && source_number == target_row.try_get::<_, Option<i64>>(i).ok()
                }
                Kind::Text | Kind::Uuid | Kind::Hex | Kind::Village | Kind::Heads | Kind::Time => {
                    let source_text = value.as_str_or_null().ok();
                    let target_text = target_row.try_get::<_, Option<&str>>(i).ok();
                    source_text.is_some() && source_text == target_text
                }
                Kind::Bytes => {
                    let source_digest = value.as_blob_or_null().ok().map(|b| b.map(|b| Sha256::digest(b).to_vec()));
                    let target_digest = target_row.try_get::<_, Option<Vec<u8>>>(i).ok();
                    source_digest.is_some() && source_digest == target_digest
                }
            };
            if !equal {
                // The row's place in key order and the column, never its values.
                return Err(MigrateError::Mismatch(format!(
                    "{}.{} differs in row {compared} (in key order {})",
                    table.name,
                    column.name,
                    table.order_by.join(", ")
                )));
            }
        }
    }
    Ok(compared)
}
