//! `pilar_server::migrate` on a fresh database of the test cluster: an empty server and one with
//! rows in every table of the schema are copied exactly (compared value by value here, beside the
//! migration's own verification), identities continue above the copied numbers, and a server
//! started on the copy keeps its admin and signing key; a target holding anything, a source of
//! another schema version or a source a server still holds are refused with nothing written; a
//! copy that differs from its source is caught and rolled back.

use pilar_server::migrate::{self, MigrateError, QuietProgress, Source, Summary};
use pilar_server::postgres_schema::{Compact, compact};
use pilar_server::storage::sqlite::{MIGRATIONS, SqliteDatabase};
use pilar_server::{AppState, Config};
use pilar_tests::Postgres;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::types::Value;
use std::collections::BTreeMap;
use std::path::Path;

const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A table's rows as comparable values, sorted (NULLs order differently in the two databases).
type Rows = Vec<Vec<Value>>;

fn run(dir: &Path, target: &Postgres) -> Result<Summary, MigrateError> {
    let source = Source::parse(dir.to_str().expect("utf-8 path"), None).expect("a SQLite source");
    migrate::run(&source, target.url(), &mut QuietProgress)
}

/// The names of the SQLite database's own tables.
fn table_names(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("tables")
}

/// Every table of the SQLite database with its rows.
fn sqlite_rows(path: &Path) -> BTreeMap<String, Rows> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let tables = table_names(&conn);
    tables
        .into_iter()
        .map(|table| {
            let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).expect("select");
            let width = statement.column_count();
            let mut rows: Rows = statement
                .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("rows");
            rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            (table, rows)
        })
        .collect()
}

/// Every table of the PostgreSQL database (the migration runner's aside) with its rows, in
/// SQLite's column order.
fn postgres_rows(target: &Postgres, like: &BTreeMap<String, Rows>, sqlite: &Path) -> BTreeMap<String, Rows> {
    let conn = rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let mut client = target.connect();
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()
             AND table_name <> 'pilar_schema_migrations'",
            &[],
        )
        .expect("tables")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|t| !pilar_server::postgres_schema::POSTGRES_ONLY_TABLES.contains(&t.as_str()))
        .collect();
    assert_eq!(tables.len(), like.len(), "the same tables: {tables:?}");
    tables
        .into_iter()
        .map(|table| {
            let columns: Vec<(String, String)> = conn
                .prepare(&format!("PRAGMA table_info(\"{table}\")"))
                .expect("table_info")
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
                .expect("columns")
                .collect::<Result<_, _>>()
                .expect("columns");
            // Compact columns read back as the text SQLite holds.
            let list = columns
                .iter()
                .map(|(c, _)| match compact(&table, c) {
                    Some(Compact::Uuid) => format!("\"{c}\"::text"),
                    Some(Compact::Hex) => format!("encode(\"{c}\", 'hex')"),
                    Some(Compact::Village) => format!("pilar_village_text(\"{c}\")"),
                    Some(Compact::Heads) => format!("pilar_heads_text(\"{c}\")"),
                    Some(Compact::Time) => format!("pilar_time_text(\"{c}\")"),
                    None => format!("\"{c}\""),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut rows: Rows = client
                .query(&format!("SELECT {list} FROM \"{table}\""), &[])
                .expect("select")
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, kind))| match kind.as_str() {
                            "INTEGER" => row.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Integer),
                            "TEXT" => row.get::<_, Option<String>>(i).map_or(Value::Null, Value::Text),
                            _ => row.get::<_, Option<Vec<u8>>>(i).map_or(Value::Null, Value::Blob),
                        })
                        .collect()
                })
                .collect();
            rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            (table, rows)
        })
        .collect()
}

/// Rows in the target's tables, per table (to show that a refusal wrote nothing).
fn target_counts(target: &Postgres) -> BTreeMap<String, i64> {
    let mut client = target.connect();
    let tables: Vec<String> = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()", &[])
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let n: i64 = client.query_one(&format!("SELECT count(*) FROM \"{t}\""), &[]).expect("count").get(0);
            (t, n)
        })
        .collect()
}

/// A data directory with the first start's server (admin, keys) and no other rows.
fn started_once(dir: &Path) {
    let opened = AppState::open(&Config::for_data_dir(dir), Some(ADMIN_PASSWORD.to_string())).expect("first start");
    drop(opened);
}

/// Fill every table of the SQLite schema with synthetic rows (several per table, NULLs where a
/// column allows them, bytes of every length up to 200 KB, numbers up to i64's range), keeping
/// its keys and checks: a copy that skips a table, a column or a type shows.
fn fill_every_table(path: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.pragma_update(None, "foreign_keys", "ON").expect("foreign keys");
    let tables = table_names(&conn);
    // Parents first: users and roster_imports are referenced by others.
    let mut ordered: Vec<&String> = tables.iter().filter(|t| *t == "users" || *t == "roster_imports").collect();
    ordered.extend(tables.iter().filter(|t| *t != "users" && *t != "roster_imports"));
    for table in ordered {
        let columns: Vec<(String, String, bool, bool)> = conn
            .prepare(&format!("PRAGMA table_info(\"{table}\")"))
            .expect("table_info")
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0, r.get::<_, i64>(5)? > 0)))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("columns");
        let foreign: BTreeMap<String, String> = conn
            .prepare(&format!("PRAGMA foreign_key_list(\"{table}\")"))
            .expect("foreign keys")
            .query_map([], |r| Ok((r.get::<_, String>(3)?, r.get::<_, String>(2)?)))
            .expect("foreign keys")
            .collect::<Result<_, _>>()
            .expect("foreign keys");
        let rows = if table == "feed_floor" { 1 } else { 4 };
        if table == "feed_floor" {
            conn.execute("DELETE FROM feed_floor", []).expect("the schema's floor row");
        }
        for i in 0..rows {
            let values: Vec<Value> = columns
                .iter()
                .map(|(column, kind, not_null, key)| {
                    if let Some(parent) = foreign.get(column) {
                        return Value::Text(format!("{parent}.{}.{i}", if parent == "users" { "name" } else { "id" }));
                    }
                    if table == "users" && column == "role" {
                        return Value::Text(["admin", "supervisor", "enumerator"][i % 3].to_string());
                    }
                    if table == "login_failures" && column == "kind" {
                        return Value::Text(["user", "address"][i % 2].to_string());
                    }
                    if table == "feed_floor" && column == "id" {
                        return Value::Integer(1);
                    }
                    if i == 3 && !not_null && !key {
                        return Value::Null;
                    }
                    match kind.as_str() {
                        "INTEGER" if *key => Value::Integer(i as i64 + 1 + rng.random_range(0..3) * 1000 * (i as i64)),
                        "INTEGER" => Value::Integer([0, -7, i64::MAX, rng.random()][i % 4]),
                        "TEXT" if table == "users" && column == "name" => Value::Text(format!("users.name.{i}")),
                        "TEXT" if table == "roster_imports" && column == "id" => {
                            Value::Text(format!("roster_imports.id.{i}"))
                        }
                        // Kept compactly by PostgreSQL: what the server writes there.
                        "TEXT" if compact(table, column) == Some(Compact::Uuid) => {
                            Value::Text(uuid::Uuid::from_u128(rng.random()).to_string())
                        }
                        "TEXT" if compact(table, column) == Some(Compact::Hex) => {
                            Value::Text(hex::encode((0..32).map(|_| rng.random::<u8>()).collect::<Vec<u8>>()))
                        }
                        "TEXT" if compact(table, column) == Some(Compact::Village) => {
                            Value::Text(format!("73.{:02}.{:02}.{:04}", rng.random_range(10..100), i % 100, i))
                        }
                        "TEXT" if compact(table, column) == Some(Compact::Heads) => Value::Text(
                            (0..i % 3).map(|_| hex::encode(rng.random::<[u8; 32]>())).collect::<Vec<_>>().join(","),
                        ),
                        "TEXT" if compact(table, column) == Some(Compact::Time) => {
                            Value::Text(pilar_server::storage::sqlite::stored_time(
                                time::OffsetDateTime::from_unix_timestamp(rng.random_range(0..4_000_000_000))
                                    .expect("a time"),
                            ))
                        }
                        "TEXT" => Value::Text(format!("{table}.{column}.{i} Sintetis ü’")),
                        _ => {
                            let len = [0usize, 1, 300, 200_000][i % 4];
                            Value::Blob((0..len).map(|_| rng.random()).collect())
                        }
                    }
                })
                .collect();
            let list = columns.iter().map(|(c, ..)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            let marks = (1..=columns.len()).map(|n| format!("?{n}")).collect::<Vec<_>>().join(", ");
            conn.execute(
                &format!("INSERT INTO \"{table}\" ({list}) VALUES ({marks})"),
                rusqlite::params_from_iter(values),
            )
            .unwrap_or_else(|e| panic!("row {i} of {table}: {e}"));
        }
    }
}

#[test]
fn an_empty_server_moves_with_its_admin_and_signing_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    started_once(dir.path());
    let target = Postgres::database();

    let summary = run(dir.path(), &target).expect("migrate");
    assert_eq!(summary.households, 0);
    assert_eq!(summary.tables, sqlite_rows(&dir.path().join("server.db")).len());
    let before = sqlite_rows(&dir.path().join("server.db"));
    assert_eq!(postgres_rows(&target, &before, &dir.path().join("server.db")), before);

    // A server started on the copy finds its admin (no new one made) and its keys.
    let on_sqlite = AppState::open(&Config::for_data_dir(dir.path()), None).expect("the SQLite server");
    let sqlite_key = on_sqlite.state.service.server_key("signing_key").expect("key");
    drop(on_sqlite);
    let other = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(other.path());
    config.database = Some(target.url().to_string());
    let on_postgres = AppState::open(&config, None).expect("a server on the copy");
    assert!(on_postgres.generated_admin_password.is_none(), "the copied admin is kept");
    assert_eq!(on_postgres.state.service.user_count().expect("users"), 1);
    assert_eq!(on_postgres.state.service.server_key("signing_key").expect("key"), sqlite_key);
}

#[test]
fn whole_photos_move_verified_and_a_server_on_the_copy_serves_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    started_once(dir.path());
    // Two whole photos as a SQLite server keeps them, one larger than a copy chunk (1 MiB), one
    // file damaged on disk, and an upload in progress.
    let large: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let small = b"synthetic photo bytes".to_vec();
    let damaged = sync_core::photo::PhotoId::of_bytes(b"what the file once held");
    let put = |name: &str, bytes: &[u8]| {
        let sub = dir.path().join("photos").join(&name[..2]);
        std::fs::create_dir_all(&sub).expect("photo dir");
        std::fs::write(sub.join(name), bytes).expect("photo file");
    };
    let large_id = sync_core::photo::PhotoId::of_bytes(&large);
    let small_id = sync_core::photo::PhotoId::of_bytes(&small);
    put(large_id.as_str(), &large);
    put(small_id.as_str(), &small);
    put(damaged.as_str(), b"bit rot");
    std::fs::create_dir_all(dir.path().join("photos/partial")).expect("partial dir");
    std::fs::write(dir.path().join("photos/partial").join(small_id.as_str()), b"half").expect("partial");
    let target = Postgres::database();

    let summary = run(dir.path(), &target).expect("migrate");
    assert_eq!(
        (summary.photos, summary.photo_bytes, summary.damaged_photos),
        (2, large.len() as u64 + small.len() as u64, 1)
    );
    assert!(summary.to_string().contains("1 damaged photo files not copied"), "{summary}");

    let store = pilar_server::storage::postgres::photos::PostgresPhotoStore::open(target.url()).expect("photo store");
    use pilar_server::storage::photos::{Held, PhotoStore};
    assert_eq!(store.held(&large_id).expect("held"), Held::Whole(large.len() as u64));
    assert_eq!(store.read_whole(&large_id, 0, large.len() as u64).expect("read"), large);
    assert_eq!(store.read_whole(&large_id, 1_048_570, 10).expect("read across chunks"), large[1_048_570..1_048_580]);
    assert_eq!(store.read_whole(&small_id, 0, 100).expect("read"), small);
    assert_eq!(store.held(&damaged).expect("held"), Held::Partial(0), "a damaged file is never served");
}

#[test]
fn every_table_moves_value_for_value_and_identities_continue_above_the_copied_numbers() {
    let seed = pilar_tests::seed_from_env("PILAR_TEST_SEED");
    eprintln!("seed {seed} (PILAR_TEST_SEED)");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("server.db");
    drop(SqliteDatabase::open(&path).expect("a new SQLite database"));
    fill_every_table(&path, seed);
    let before = sqlite_rows(&path);
    let empty: Vec<&String> = before.iter().filter(|(_, rows)| rows.is_empty()).map(|(t, _)| t).collect();
    assert!(empty.is_empty(), "the fixture fills every table (seed {seed}): {empty:?}");
    let target = Postgres::database();

    let summary = run(dir.path(), &target).expect("migrate");
    assert_eq!(summary.households, 4);
    assert_eq!(summary.documents_verified, 4);
    assert_eq!(summary.changes_verified, 4);
    assert_eq!(summary.rows, before.values().map(|rows| rows.len() as u64).sum::<u64>());
    assert_eq!(postgres_rows(&target, &before, &path), before, "every value copied (seed {seed})");
    assert_eq!(sqlite_rows(&path), before, "the source is unchanged");

    // New rows get numbers above the copied ones.
    let mut client = target.connect();
    let copied_max = before["village_assignments"]
        .iter()
        .map(|row| match row[0] {
            Value::Integer(n) => n,
            _ => panic!("village_assignments.id is the first column"),
        })
        .max()
        .expect("rows");
    let insert = "INSERT INTO village_assignments (user_name, village, started_at) VALUES ('users.name.0', 'v', 't') \
                  RETURNING id";
    let new: i64 = client.query_one(insert, &[]).expect("insert").get(0);
    assert_eq!(new, copied_max + 1, "village_assignments.id continues above the copied numbers");
}

#[test]
fn a_target_that_holds_anything_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    started_once(dir.path());

    // A server started on the target once: its admin and keys.
    let target = Postgres::database();
    let other = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(other.path());
    config.database = Some(target.url().to_string());
    drop(AppState::open(&config, Some("another-admin-password".into())).expect("a server on the target"));
    let before = target_counts(&target);
    let err = run(dir.path(), &target).expect_err("a used target");
    assert!(matches!(err, MigrateError::TargetNotEmpty { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("1 row in users") && message.contains("server_secrets"), "{message}");
    assert!(message.contains("new, empty database"), "says what to do: {message}");
    assert_eq!(target_counts(&target), before, "nothing written");

    // A database holding someone else's tables gets no schema.
    let foreign = Postgres::database();
    foreign.connect().batch_execute("CREATE TABLE ledger (id BIGINT)").expect("a table");
    let err = run(dir.path(), &foreign).expect_err("another application's database");
    assert!(err.to_string().contains("ledger"), "{err}");
    assert_eq!(target_counts(&foreign).into_keys().collect::<Vec<_>>(), ["ledger"], "no table created");
}

#[test]
fn a_source_of_another_schema_version_is_refused_and_left_as_it_was() {
    for (version, expected) in [(6, "start this pilar-server once on it"), (99, "newer pilar-server")] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.db");
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            for sql in &MIGRATIONS[..6] {
                conn.execute_batch(sql).expect("an older schema");
            }
            conn.pragma_update(None, "user_version", version).expect("version");
        }
        let target = Postgres::database();
        let err = run(dir.path(), &target).expect_err("another schema version");
        assert!(matches!(err, MigrateError::SourceSchema(_)), "{err:?}");
        assert!(err.to_string().contains(expected), "version {version}: {err}");
        let conn = rusqlite::Connection::open(&path).expect("open");
        let after: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(after, version, "the source is not upgraded");
        assert!(target_counts(&target).is_empty(), "no schema created on the target");
    }
}

#[test]
fn a_source_a_running_server_holds_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = AppState::open(&Config::for_data_dir(dir.path()), Some(ADMIN_PASSWORD.to_string())).expect("start");
    let target = Postgres::database();
    let err = run(dir.path(), &target).expect_err("the server still runs");
    assert!(matches!(err, MigrateError::SourceInUse { .. }), "{err:?}");
    assert!(err.to_string().contains("stop that server first"), "{err}");
    assert!(target_counts(&target).is_empty(), "nothing written");
    drop(opened);
    run(dir.path(), &target).expect("once it stopped");
}

#[test]
fn a_copy_that_differs_from_its_source_is_caught_and_rolled_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("server.db");
    drop(SqliteDatabase::open(&path).expect("a new SQLite database"));
    fill_every_table(&path, 7);
    let target = Postgres::database();
    // An empty target with the schema, and a trigger that damages every stored document.
    let mut client = target.connect();
    pilar_server::postgres_schema::migrate(&mut client).expect("schema");
    client
        .batch_execute(
            "CREATE FUNCTION damage() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN NEW.doc := NEW.doc || '\\x00'::bytea; RETURN NEW; END; $$;
             CREATE TRIGGER damage BEFORE INSERT ON households FOR EACH ROW EXECUTE FUNCTION damage();",
        )
        .expect("a damaging trigger");

    let err = run(dir.path(), &target).expect_err("a damaged copy");
    assert!(matches!(err, MigrateError::Mismatch(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("households.doc differs in row 1"), "{message}");
    assert!(message.contains("rolled back"), "{message}");
    let rows: i64 =
        target_counts(&target).into_iter().filter(|(t, _)| t != "pilar_schema_migrations").map(|(_, n)| n).sum();
    assert_eq!(rows, 1, "nothing but the schema's own feed_floor row");
}
