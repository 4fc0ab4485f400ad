//! The one conformance suite every storage backend runs: each data operation of the seam
//! ([`data`]), the concurrent feed ([`feed`]), the account rules ([`accounts`]) and login
//! throttling ([`throttle`]: its data operations and concurrent failures), as functions
//! that take a factory of fresh, empty databases. A backend's tests call [`run_all`] with its
//! factory (SQLite: `storage::sqlite::tests`); that one line is all a new backend adds.

pub mod accounts;
pub mod data;
pub mod feed;
pub mod throttle;

use crate::storage::Database;
use std::sync::Arc;

/// A fresh, empty database for one case, with whatever must live as long as it (a temporary
/// directory, a throwaway schema).
pub struct Fresh {
    /// The database.
    pub db: Arc<dyn Database>,
    /// Dropped after the case.
    pub keep: Box<dyn std::any::Any + Send>,
}

/// Makes a fresh, empty database per case.
pub type Factory<'a> = &'a dyn Fn() -> Fresh;

/// A data-operation case: its name and the check, given a fresh database.
pub type Case = (&'static str, fn(&dyn Database));

/// Run every case of the suite on databases from `factory`, naming each case as it starts.
pub fn run_all(factory: Factory<'_>) {
    for (name, case) in data::CASES {
        eprintln!("conformance case: {name}");
        let fresh = factory();
        case(fresh.db.as_ref());
    }
    for (name, case) in throttle::CASES {
        eprintln!("conformance case: {name}");
        let fresh = factory();
        case(fresh.db.as_ref());
    }
    for (name, case) in accounts::CASES.iter().chain(throttle::RULE_CASES) {
        eprintln!("conformance case: {name}");
        let fresh = factory();
        case(&crate::service::Service::new(fresh.db));
    }
    eprintln!("conformance case: concurrent feed");
    feed::concurrent_writers_and_readers_see_every_change_once(factory, feed::Load::default());
}
