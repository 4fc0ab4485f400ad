//! The PostgreSQL schema and its migration runner, on a fresh database of the test cluster: the
//! migrations apply, a second run does nothing, a newer database is refused, servers starting at
//! once apply each migration once, the runner works through a connection pool inside tokio's
//! `spawn_blocking` (as the backend will call it), and the schema is SQLite's, table for table,
//! column for column, key for key and index for index.

use pilar_server::postgres_schema::{MIGRATIONS, VERSION_TABLE, migrate, schema_version};
use pilar_server::storage::StorageError;
use pilar_tests::Postgres;
use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

#[test]
fn migrations_apply_on_a_fresh_database_and_a_second_run_does_nothing() {
    let database = Postgres::database();
    let mut client = database.connect();
    assert_eq!(schema_version(&mut client).expect("version of an empty database"), 0);

    let applied = migrate(&mut client).expect("migrate a fresh database");
    assert_eq!(applied, MIGRATIONS.len());
    assert_eq!(schema_version(&mut client).expect("version"), MIGRATIONS.len() as i64);

    let again = migrate(&mut client).expect("migrate again");
    assert_eq!(again, 0, "a second run applies nothing");
    assert_eq!(schema_version(&mut client).expect("version"), MIGRATIONS.len() as i64);

    // The schema works: a household stored without created_at gets its updated_at, as on SQLite.
    client
        .execute(
            "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at)
             VALUES ($1::text::uuid, $2, $3, pilar_heads_bytes($4), $5, $6::text::timestamptz)",
            &[
                &"00000000-0000-4000-8000-000000000001",
                &"73.14.01.1001",
                &vec![0u8],
                &"",
                &1i64,
                &"2026-02-20T00:00:00Z",
            ],
        )
        .expect("insert a household");
    let created: String = client
        .query_one(
            "SELECT pilar_time_text(created_at) FROM households WHERE id = '00000000-0000-4000-8000-000000000001'",
            &[],
        )
        .expect("read the household")
        .get(0);
    assert_eq!(created, "2026-02-20T00:00:00Z");
}

#[test]
fn a_database_migrated_by_a_newer_server_is_refused() {
    let database = Postgres::database();
    let mut client = database.connect();
    migrate(&mut client).expect("migrate");
    let newer = MIGRATIONS.len() as i64 + 1;
    client.execute(&format!("INSERT INTO {VERSION_TABLE} (version) VALUES ($1)"), &[&newer]).expect("a newer version");

    match migrate(&mut client) {
        Err(StorageError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, MIGRATIONS.len() as i64));
        }
        other => panic!("a newer database must be refused, got {other:?}"),
    }
    let message = migrate(&mut client).expect_err("refused").to_string();
    assert!(message.contains("upgrade pilar-server"), "the refusal says what to do: {message}");
}

#[test]
fn servers_starting_at_once_apply_each_migration_once() {
    const SERVERS: usize = 4;
    let database = Postgres::database();
    let start = Arc::new(Barrier::new(SERVERS));
    let applied: Vec<usize> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..SERVERS)
            .map(|_| {
                let (start, mut client) = (start.clone(), database.connect());
                scope.spawn(move || {
                    start.wait();
                    migrate(&mut client).expect("a concurrent migration")
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().expect("migration thread")).collect()
    });
    assert_eq!(applied.iter().sum::<usize>(), MIGRATIONS.len(), "each migration applied exactly once: {applied:?}");
    let rows: i64 = database
        .connect()
        .query_one(&format!("SELECT count(*) FROM {VERSION_TABLE}"), &[])
        .expect("count versions")
        .get(0);
    assert_eq!(rows, MIGRATIONS.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_through_a_pool_inside_spawn_blocking() {
    let database = Postgres::database();
    let url = database.url().to_string();
    // The pool is built, used and dropped on the blocking pool: `postgres::Client` runs a runtime
    // of its own (also when it closes), which must never happen on an async worker.
    let (applied, version) = tokio::task::spawn_blocking(move || {
        let config: postgres::Config = url.parse().expect("database URL");
        let manager = r2d2_postgres::PostgresConnectionManager::new(config, postgres::NoTls);
        let pool = r2d2_postgres::r2d2::Pool::builder().max_size(2).build(manager).expect("pool");
        let applied = migrate(&mut pool.get().expect("a pooled connection")).expect("migrate");
        let version = schema_version(&mut pool.get().expect("a pooled connection")).expect("version");
        (applied, version)
    })
    .await
    .expect("blocking task");
    assert_eq!((applied, version), (MIGRATIONS.len(), MIGRATIONS.len() as i64));
}

/// A table's column: name, type (PostgreSQL's spelling), whether NULL is refused.
type Column = (String, String, String, bool);

/// The schema as both backends can describe it, sorted for comparison.
struct Shape {
    /// (table, column, type, not null).
    columns: BTreeSet<Column>,
    /// (table, primary key columns).
    primary_keys: BTreeSet<(String, Vec<String>)>,
    /// (table, columns) of UNIQUE constraints.
    unique: BTreeSet<(String, Vec<String>)>,
    /// (table, `FOREIGN KEY (a) REFERENCES t(b)[ ON DELETE CASCADE]`).
    foreign_keys: BTreeSet<(String, String)>,
    /// Explicitly created indexes: (name, table, columns, unique, partial).
    indexes: BTreeSet<(String, String, Vec<String>, bool, bool)>,
}

#[test]
fn postgres_schema_matches_the_sqlite_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("server.db");
    drop(pilar_server::storage::sqlite::SqliteDatabase::open(&path).expect("a fresh SQLite database"));
    let sqlite = sqlite_shape(&rusqlite::Connection::open(&path).expect("open SQLite"));

    let database = Postgres::database();
    let mut client = database.connect();
    migrate(&mut client).expect("migrate");
    let mut postgres = postgres_shape(&mut client);
    // Photo bytes: a SQLite server keeps them as files in its data directory, PostgreSQL in
    // these tables (migration 0005), so that several servers share them.
    let postgres_only = |table: &String| table == "photo_uploads" || table == "photo_chunks";
    postgres.columns.retain(|c| !postgres_only(&c.0));
    postgres.primary_keys.retain(|k| !postgres_only(&k.0));
    postgres.unique.retain(|k| !postgres_only(&k.0));
    postgres.foreign_keys.retain(|k| !postgres_only(&k.0));
    postgres.indexes.retain(|i| !postgres_only(&i.1));
    same("columns (table, column, type, not null)", &postgres.columns, &sqlite.columns);
    same("primary keys", &postgres.primary_keys, &sqlite.primary_keys);
    same("unique constraints", &postgres.unique, &sqlite.unique);
    same("foreign keys", &postgres.foreign_keys, &sqlite.foreign_keys);
    same("indexes (name, table, columns, unique, partial)", &postgres.indexes, &sqlite.indexes);

    let uncollated: Vec<String> = client
        .query(
            "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'
               AND table_name <> $1",
            &[&VERSION_TABLE],
        )
        .expect("collations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        uncollated.is_empty(),
        "text columns must compare byte by byte like SQLite's (COLLATE \"C\"): {uncollated:?}"
    );
}

/// Fail naming what only one of the schemas has.
fn same<T: Ord + std::fmt::Debug>(what: &str, postgres: &BTreeSet<T>, sqlite: &BTreeSet<T>) {
    let only_postgres: Vec<&T> = postgres.difference(sqlite).collect();
    let only_sqlite: Vec<&T> = sqlite.difference(postgres).collect();
    assert!(
        only_postgres.is_empty() && only_sqlite.is_empty(),
        "the PostgreSQL schema's {what} differ from SQLite's:\nonly in PostgreSQL: {only_postgres:#?}\nonly in SQLite: \
         {only_sqlite:#?}\n(a new SQLite migration needs its PostgreSQL twin in server/migrations/postgres/)"
    );
}

fn sqlite_shape(conn: &rusqlite::Connection) -> Shape {
    let strings = |sql: &str| -> Vec<String> {
        let mut statement = conn.prepare(sql).expect("prepare");
        statement.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    let tables =
        strings("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
    let mut shape = Shape {
        columns: BTreeSet::new(),
        primary_keys: BTreeSet::new(),
        unique: BTreeSet::new(),
        foreign_keys: BTreeSet::new(),
        indexes: BTreeSet::new(),
    };
    let index_columns = |index: &str| -> Vec<String> {
        let mut statement = conn.prepare(&format!("PRAGMA index_info(\"{index}\")")).expect("index_info");
        statement.query_map([], |r| r.get(2)).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    for table in &tables {
        let mut info = conn.prepare(&format!("PRAGMA table_info(\"{table}\")")).expect("table_info");
        let columns: Vec<(String, String, bool, i64)> = info
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0, r.get(5)?)))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("rows");
        let mut key: Vec<(i64, String)> = Vec::new();
        for (name, declared, not_null, pk) in columns {
            let pg_type = match declared.as_str() {
                // Columns PostgreSQL keeps compactly (migration 0014) are still text in SQLite.
                "TEXT" => match pilar_server::postgres_schema::compact(table, &name) {
                    Some(pilar_server::postgres_schema::Compact::Uuid) => "uuid",
                    Some(pilar_server::postgres_schema::Compact::Hex) => "bytea",
                    Some(pilar_server::postgres_schema::Compact::Village) => "bigint",
                    Some(pilar_server::postgres_schema::Compact::Heads) => "bytea",
                    Some(pilar_server::postgres_schema::Compact::Time) => "timestamp with time zone",
                    None => "text",
                },
                "INTEGER" => "bigint",
                "BLOB" => "bytea",
                other => panic!("{table}.{name} has a type the PostgreSQL translation does not know: {other}"),
            };
            // A primary key column is never NULL in PostgreSQL (SQLite allows it outside WITHOUT
            // ROWID tables, but the server never stores one).
            shape.columns.insert((table.clone(), name.clone(), pg_type.to_string(), not_null || pk > 0));
            if pk > 0 {
                key.push((pk, name));
            }
        }
        key.sort();
        shape.primary_keys.insert((table.clone(), key.into_iter().map(|(_, c)| c).collect()));

        let mut list = conn.prepare(&format!("PRAGMA index_list(\"{table}\")")).expect("index_list");
        let indexes: Vec<(String, bool, String, bool)> = list
            .query_map([], |r| Ok((r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?, r.get::<_, i64>(4)? != 0)))
            .expect("indexes")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (name, unique, origin, partial) in indexes {
            match origin.as_str() {
                "c" => {
                    shape.indexes.insert((name.clone(), table.clone(), index_columns(&name), unique, partial));
                }
                "u" => {
                    shape.unique.insert((table.clone(), index_columns(&name)));
                }
                _ => {} // the primary key's own index
            }
        }

        let mut keys = conn.prepare(&format!("PRAGMA foreign_key_list(\"{table}\")")).expect("foreign_key_list");
        let foreign: Vec<(String, String, String, String)> = keys
            .query_map([], |r| Ok((r.get(2)?, r.get(3)?, r.get(4)?, r.get(6)?)))
            .expect("foreign keys")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (target, from, to, on_delete) in foreign {
            let cascade = if on_delete == "CASCADE" { " ON DELETE CASCADE" } else { "" };
            shape
                .foreign_keys
                .insert((table.clone(), format!("FOREIGN KEY ({from}) REFERENCES {target}({to}){cascade}")));
        }
    }
    shape
}

fn postgres_shape(client: &mut postgres::Client) -> Shape {
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO'
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> $1",
            &[&VERSION_TABLE],
        )
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut constraints = |kind: &str| -> BTreeSet<(String, Vec<String>)> {
        client
            .query(
                "SELECT t.relname::text,
                        array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord)
                 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = current_schema() AND c.contype = $1::text::\"char\" AND t.relname <> $2",
                &[&kind, &VERSION_TABLE],
            )
            .expect("constraints")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let primary_keys = constraints("p");
    // An exclusion constraint of equality (`EXCLUDE USING hash (c WITH =)`) refuses what a UNIQUE
    // constraint refuses, in fewer bytes (migration 0013): it stands for SQLite's UNIQUE.
    let mut unique = constraints("u");
    unique.extend(constraints("x"));
    let foreign_keys = client
        .query(
            "SELECT t.relname::text, pg_get_constraintdef(c.oid) FROM pg_constraint c
             JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema() AND c.contype = 'f'",
            &[],
        )
        .expect("foreign keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let indexes = client
        .query(
            "SELECT i.relname::text, t.relname::text,
                    array(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum ORDER BY k.ord),
                    ix.indisunique, ix.indpred IS NOT NULL
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema()
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)",
            &[],
        )
        .expect("indexes")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    Shape { columns, primary_keys, unique, foreign_keys, indexes }
}

/// Migration 16 keys the feed by its village as a number: rows written before it read back the
/// same (village code, position, hash, ids), and a village code of another form stops it with a
/// message that names the code.
#[test]
fn the_feed_written_before_migration_16_reads_back_the_same_after_it() {
    let before = MIGRATIONS.iter().position(|m| m.contains("pilar_village_number")).expect("migration 16");
    for (villages, fails) in [(["73.14.01.1001", "73.15.02.2003"], false), (["73.14.01.1001", "7314011002"], true)] {
        let database = Postgres::database();
        let mut client = database.connect();
        for sql in &MIGRATIONS[..before] {
            client.batch_execute(sql).expect("an older schema");
        }
        for (n, village) in villages.iter().enumerate() {
            client
                .execute(
                    "INSERT INTO changes (pos, hash, household_id, village, device_id, user_name, bytes, received_at)
                     VALUES ($1, decode($2, 'hex'), $3::text::uuid, $4, $5::text::uuid, 'pkh.contoh01', '', $6)",
                    &[
                        &(n as i64 + 1),
                        &format!("{n:02}").repeat(32),
                        &"00000000-0000-4000-8000-000000000001",
                        village,
                        &"00000000-0000-4000-8000-0000000000d1",
                        &"2026-02-20T00:00:00Z",
                    ],
                )
                .expect("a change of the older schema");
        }
        let migrated = client.batch_execute(MIGRATIONS[before]);
        if fails {
            let err = migrated.expect_err("a village code of another form");
            let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
            assert!(message.contains("\"7314011002\" is not of the form 73.14.01.1001"), "{err:?}");
            continue;
        }
        migrated.expect("migration 16");
        let rows: Vec<(String, i64, String, String, String)> = client
            .query(
                "SELECT pilar_village_text(village), pos, encode(hash, 'hex'), device_id::text,
                     pilar_time_text(received_at)
                 FROM changes ORDER BY 1",
                &[],
            )
            .expect("read the feed")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        let (device, at) = ("00000000-0000-4000-8000-0000000000d1", "2026-02-20T00:00:00Z");
        assert_eq!(
            rows,
            [
                ("73.14.01.1001".into(), 1, "00".repeat(32), device.into(), at.into()),
                ("73.15.02.2003".into(), 2, "01".repeat(32), device.into(), at.into()),
            ]
        );
        let number: i64 = client.query_one("SELECT pilar_village_number('73.15.02.2003')", &[]).expect("n").get(0);
        assert_eq!(Some(number), pilar_server::postgres_schema::village_number("73.15.02.2003"));
        assert_eq!(number, 7315022003);
        let duplicate = client.execute(
            "INSERT INTO changes (village, pos, household_id, device_id, hash, user_name, bytes, received_at)
             SELECT village, pos + 10, household_id, device_id, hash, user_name, bytes, received_at FROM changes LIMIT 1",
            &[],
        );
        assert!(duplicate.is_err(), "a hash is still kept once");
    }
}

/// Migration 17 rebuilds households compactly: a household written before it reads back the same
/// (heads, times, village, document, version), and the trigger still fills a missing creation time.
#[test]
fn households_written_before_migration_17_read_back_the_same_after_it() {
    let before = MIGRATIONS.iter().position(|m| m.contains("pilar_heads_bytes")).expect("migration 17");
    let database = Postgres::database();
    let mut client = database.connect();
    for sql in &MIGRATIONS[..before] {
        client.batch_execute(sql).expect("an older schema");
    }
    let heads = format!("{},{}", "ab".repeat(32), "0f".repeat(32));
    client
        .execute(
            "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at, created_at, version)
             VALUES ('00000000-0000-4000-8000-000000000001', '73.14.01.1001', '\\x0102', $1, 7,
                 '2026-02-21T08:30:05Z', '2026-02-20T00:00:00Z', 3)",
            &[&heads],
        )
        .expect("a household of the older schema");
    client.batch_execute(MIGRATIONS[before]).expect("migration 17");
    let row = client
        .query_one(
            "SELECT id::text, village, doc, pilar_heads_text(heads), updated_pos, pilar_time_text(updated_at),
                 pilar_time_text(created_at), version FROM households",
            &[],
        )
        .expect("read the household");
    let read: (String, String, Vec<u8>, String, i64, String, String, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6), row.get(7));
    assert_eq!(
        read,
        (
            "00000000-0000-4000-8000-000000000001".to_string(),
            "73.14.01.1001".to_string(),
            vec![1, 2],
            heads.clone(),
            7,
            "2026-02-21T08:30:05Z".to_string(),
            "2026-02-20T00:00:00Z".to_string(),
            3
        )
    );
    client
        .execute(
            "INSERT INTO households (id, village, doc, heads, updated_pos, updated_at)
             VALUES ('00000000-0000-4000-8000-000000000002', '73.14.01.1001', '\\x03', '\\x', 8, now())",
            &[],
        )
        .expect("a household without a creation time");
    let filled: bool = client
        .query_one("SELECT created_at = updated_at FROM households WHERE version = 1", &[])
        .expect("read it")
        .get(0);
    assert!(filled, "the trigger fills created_at from updated_at");
}
