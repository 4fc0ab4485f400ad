//! The storage conformance suite on PostgreSQL: every data operation, the account rules and the
//! concurrent feed (8 writers, 8 readers, 2,000 changes; `PILAR_FEED_SEED`), each case on a fresh
//! database of the test cluster (`pilar_tests::Postgres`); and the feed under heavier load, with
//! several villages and many writers per village.

use pilar_server::storage::conformance::{self, Fresh, feed};
use pilar_server::storage::{Database, PostgresDatabase, Transactions};
use pilar_tests::Postgres;
use std::sync::Arc;

fn fresh_backend() -> (Arc<PostgresDatabase>, Postgres) {
    let database = Postgres::database();
    let backend = PostgresDatabase::open(database.url()).expect("open the PostgreSQL backend on a fresh database");
    (Arc::new(backend), database)
}

fn fresh() -> Fresh {
    let (db, database) = fresh_backend();
    // `db` is dropped before `keep`, the database.
    Fresh { db, keep: Box::new(database) }
}

#[test]
fn postgres_passes_the_conformance_suite() {
    conformance::run_all(&fresh);
}

#[test]
fn the_feed_loses_nothing_with_twelve_writers_and_eight_readers_over_six_thousand_changes() {
    let (db, database) = fresh_backend();
    let factory = {
        let db = Arc::clone(&db);
        move || Fresh { db: db.clone() as Arc<dyn Database>, keep: Box::new(()) }
    };
    let load = feed::Load { writers: 12, readers: 8, villages: 4, changes_per_writer: 500, ..feed::Load::default() };
    let started = std::time::Instant::now();
    feed::concurrent_writers_and_readers_see_every_change_once(&factory, load);
    let changes: i64 = database.connect().query_one("SELECT count(*) FROM changes", &[]).expect("count").get(0);
    eprintln!(
        "{changes} changes by {} writers, read by {} readers, in {:.1} s; {} write transactions ran again (seed {})",
        load.writers,
        load.readers,
        started.elapsed().as_secs_f64(),
        db.retried_writes(),
        load.seed
    );
    assert_eq!(changes, 6000);
    // Positions are gapless per village: the head of each village is its count of changes.
    let gaps: i64 = database
        .connect()
        .query_one(
            "SELECT count(*) FROM feed_heads h WHERE h.head <> (SELECT count(*) FROM changes c WHERE c.village = h.village)",
            &[],
        )
        .expect("heads")
        .get(0);
    assert_eq!(gaps, 0, "every village's head is its number of changes");
    drop(factory);
    let reads = db.read(|tx| tx.user_count()).expect("the backend still reads");
    assert_eq!(reads, 0);
}
