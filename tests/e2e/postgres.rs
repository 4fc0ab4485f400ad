//! The PostgreSQL test fixture works: each test gets its own empty database on a running cluster,
//! which takes DDL and rows, and the database is gone once the fixture is dropped. CI runs this
//! through `tests/run`, so a green run proves the cluster started.

use pilar_tests::Postgres;

#[test]
fn postgres_fixture_gives_each_test_a_fresh_database_that_takes_rows() {
    let database = Postgres::database();
    let mut client = database.connect();
    client
        .batch_execute("CREATE TABLE households (id TEXT PRIMARY KEY, doc BYTEA NOT NULL, updated_seq BIGINT NOT NULL)")
        .expect("create a table");
    let inserted = client
        .execute(
            "INSERT INTO households (id, doc, updated_seq) VALUES ($1, $2, $3), ($4, $5, $6)",
            &[&"h-1", &vec![0u8, 1, 2], &7i64, &"h-2", &vec![3u8], &8i64],
        )
        .expect("insert rows");
    assert_eq!(inserted, 2);
    let rows = client.query("SELECT id, doc, updated_seq FROM households ORDER BY id", &[]).expect("select");
    let read: Vec<(String, Vec<u8>, i64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(read, vec![("h-1".to_string(), vec![0, 1, 2], 7), ("h-2".to_string(), vec![3], 8)]);
    let version: i32 =
        client.query_one("SELECT current_setting('server_version_num')::int", &[]).expect("version").get(0);
    assert!(version >= 130_000, "PostgreSQL {version} is older than 13 (DROP DATABASE … WITH (FORCE) needs 13)");

    // Another database of the same cluster is empty: nothing leaks between tests.
    let other = Postgres::database();
    assert_ne!(other.name(), database.name());
    let tables: i64 = other
        .connect()
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .expect("count tables")
        .get(0);
    assert_eq!(tables, 0, "a fresh database has no tables");

    // Dropping the fixture drops the database, even while a client is still connected to it.
    let name = database.name().to_string();
    drop(database);
    let still_there: i64 = other
        .connect()
        .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name])
        .expect("look the database up")
        .get(0);
    assert_eq!(still_there, 0, "the dropped fixture's database {name} still exists");
    drop(client);
}
