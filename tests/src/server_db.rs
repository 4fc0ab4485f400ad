//! Which database the end-to-end servers run on, and a look at a server's rows beside it, on
//! either backend. `PILAR_TEST_BACKEND=postgres` (set by `tests/run` for its second run of the
//! end-to-end suite) gives every [`crate::TestServer`] a fresh PostgreSQL database of its own
//! ([`crate::Postgres`]); unset or `sqlite`, servers keep SQLite in their data directory.
//!
//! Tests read (and, with the server stopped, change) stored rows with [`crate::TestServer::query`]
//! and [`crate::TestServer::execute`]: SQL both backends take, parameters written `?1`, `?2`, …
//! and passed as text.

/// The environment variable choosing the end-to-end servers' database: `sqlite` (the default)
/// or `postgres`.
pub const BACKEND_ENV: &str = "PILAR_TEST_BACKEND";

/// A server database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the server's data directory (the server's default).
    Sqlite,
    /// A PostgreSQL database of its own on the test cluster.
    Postgres,
}

/// The backend the end-to-end servers of this run use (`PILAR_TEST_BACKEND`).
///
/// Panics on a value it does not know, so that a typo never runs the suite on the wrong backend.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_ENV).ok().as_deref().map(str::trim) {
        None | Some("") | Some("sqlite") => Backend::Sqlite,
        Some("postgres") | Some("postgresql") => Backend::Postgres,
        Some(other) => panic!("{BACKEND_ENV}={other} is not a backend; use sqlite or postgres"),
    }
}

/// One value of a row read with [`crate::TestServer::query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (a document, a change).
    Bytes(Vec<u8>),
}

impl Cell {
    /// The integer, or a panic naming what the cell holds.
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }

    /// The text, or a panic naming what the cell holds.
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// The bytes, or a panic naming what the cell holds.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Cell::Bytes(b) => b,
            other => panic!("expected bytes, got {other:?}"),
        }
    }
}

/// Rows of `sql` on the SQLite database at `path` (read-only unless `write`), with the number of
/// rows changed.
pub(crate) fn sqlite(path: &std::path::Path, sql: &str, params: &[&str], write: bool) -> (Vec<Vec<Cell>>, u64) {
    use rusqlite::OpenFlags;
    let flags = if write { OpenFlags::SQLITE_OPEN_READ_WRITE } else { OpenFlags::SQLITE_OPEN_READ_ONLY };
    let conn = rusqlite::Connection::open_with_flags(path, flags)
        .unwrap_or_else(|e| panic!("cannot open the server database {}: {e}", path.display()));
    let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let columns = statement.column_count();
    if columns == 0 {
        let changed = statement.execute(rusqlite::params_from_iter(params)).unwrap_or_else(|e| panic!("{sql}: {e}"));
        return (Vec::new(), changed as u64);
    }
    let rows = statement
        .query_map(rusqlite::params_from_iter(params), |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Cell::Null,
                        rusqlite::types::ValueRef::Integer(n) => Cell::Int(n),
                        rusqlite::types::ValueRef::Real(r) => Cell::Text(r.to_string()),
                        rusqlite::types::ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        rusqlite::types::ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                    })
                })
                .collect::<rusqlite::Result<Vec<Cell>>>()
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (rows, 0)
}

/// Rows of `sql` (`?N` parameters) on the PostgreSQL database at `url`, with the number of rows
/// changed. Runs on a thread of its own: the synchronous client must not run inside an async task.
pub(crate) fn postgres(url: &str, sql: &str, params: &[&str]) -> (Vec<Vec<Cell>>, u64) {
    let sql = numbered_parameters(sql);
    let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
    let url = url.to_string();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls)
                    .unwrap_or_else(|e| panic!("cannot connect to the server database: {e}"));
                let values: Vec<&(dyn ::postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ::postgres::types::ToSql + Sync)).collect();
                let statement = client.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                if statement.columns().is_empty() {
                    let changed = client.execute(&statement, &values).unwrap_or_else(|e| panic!("{sql}: {e}"));
                    return (Vec::new(), changed);
                }
                let rows = client.query(&statement, &values).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let cells = rows
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                use ::postgres::types::Type;
                                let ty = row.columns()[i].type_().clone();
                                let cell = if ty == Type::INT8 {
                                    row.get::<_, Option<i64>>(i).map(Cell::Int)
                                } else if ty == Type::INT4 {
                                    row.get::<_, Option<i32>>(i).map(|n| Cell::Int(n.into()))
                                } else if ty == Type::UUID {
                                    // Ids PostgreSQL keeps as uuid (server migrations 0014–0015)
                                    // read as the text SQLite holds.
                                    row.get::<_, Option<uuid::Uuid>>(i).map(|u| Cell::Text(u.to_string()))
                                } else if ty == Type::BYTEA && row.columns()[i].name() == "hash" {
                                    // A change's hash, kept as its bytes there: SQLite's hex.
                                    row.get::<_, Option<Vec<u8>>>(i).map(|h| Cell::Text(hex::encode(h)))
                                } else if ty == Type::BYTEA && row.columns()[i].name() == "heads" {
                                    // A document's heads, kept as the hashes' bytes there (server
                                    // migration 0017): SQLite's comma-separated hex.
                                    row.get::<_, Option<Vec<u8>>>(i).map(|h| {
                                        Cell::Text(h.chunks(32).map(hex::encode).collect::<Vec<_>>().join(","))
                                    })
                                } else if ty == Type::TIMESTAMPTZ {
                                    // A time kept as timestamptz there: the text SQLite holds.
                                    // (whole seconds, UTC, RFC 3339).
                                    row.get::<_, Option<std::time::SystemTime>>(i).map(|at| {
                                        let at = time::OffsetDateTime::from(at);
                                        Cell::Text(
                                            at.format(&time::format_description::well_known::Rfc3339)
                                                .unwrap_or_else(|_| at.unix_timestamp().to_string()),
                                        )
                                    })
                                } else if ty == Type::BYTEA {
                                    row.get::<_, Option<Vec<u8>>>(i).map(Cell::Bytes)
                                } else {
                                    row.get::<_, Option<String>>(i).map(Cell::Text)
                                };
                                cell.unwrap_or(Cell::Null)
                            })
                            .collect()
                    })
                    .collect();
                (cells, 0)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// SQLite's `?N` parameters written as PostgreSQL's `$N`, each as text (`$N::text`, so that
/// PostgreSQL never guesses another type for a parameter passed as text).
fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                out.push(d);
                chars.next();
            }
            out.push_str("::text");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_parameters_become_postgres_text_parameters() {
        assert_eq!(
            numbered_parameters("SELECT count(*) FROM changes WHERE household_id = ?1 AND x = ?12"),
            "SELECT count(*) FROM changes WHERE household_id = $1::text AND x = $12::text"
        );
        assert_eq!(numbered_parameters("SELECT '?' , 1"), "SELECT '?' , 1");
    }
}
