//! Login throttling on every backend: the data operations of `login_failures` (stored, replaced,
//! cleared, pruned, evicted in the documented order) and the rule above them (failures of one
//! user recorded at once from many threads, as two servers would, all count; a waiting user
//! waits whichever connection asks).

use super::Case;
use crate::service::Service;
use crate::service::throttle::{LoginThrottle, Policy};
use crate::storage::{Database, LoginFailureRow, LoginSubjectKind, StorageError, Transactions};
use time::OffsetDateTime;

/// The data-operation cases.
pub const CASES: &[Case] = &[
    ("login_failures_are_stored_replaced_and_cleared", login_failures_are_stored_replaced_and_cleared),
    ("quiet_login_failures_are_pruned_soonest_first", quiet_login_failures_are_pruned_soonest_first),
    ("evicted_login_failures_are_those_not_waiting_first", evicted_login_failures_are_those_not_waiting_first),
];

/// The rule cases: the service over a fresh database.
pub const RULE_CASES: &[super::accounts::Case] = &[
    ("concurrent_failures_of_one_user_all_count", concurrent_failures_of_one_user_all_count),
    (
        "a_count_made_on_one_connection_throttles_on_every_other",
        a_count_made_on_one_connection_throttles_on_every_other,
    ),
];

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time") + time::Duration::milliseconds(ms)
}

fn row(
    kind: LoginSubjectKind,
    subject: &str,
    failures: u32,
    blocked_ms: Option<i64>,
    forget_ms: i64,
) -> LoginFailureRow {
    LoginFailureRow {
        kind,
        subject: subject.to_string(),
        failures,
        last_failure: at_ms(forget_ms - 900_000),
        blocked_until: blocked_ms.map(at_ms),
        forget_at: at_ms(forget_ms),
    }
}

fn put(db: &dyn Database, rows: &[LoginFailureRow]) {
    db.write(|tx| {
        for row in rows {
            tx.put_login_failures(row)?;
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("put login failures: {e}"));
}

fn stored(db: &dyn Database) -> Vec<(LoginSubjectKind, String)> {
    let mut found = Vec::new();
    for kind in [LoginSubjectKind::User, LoginSubjectKind::Address] {
        for subject in ["a", "b", "c", "d", "e", "f"] {
            if db.read(|tx| tx.login_failures(kind, subject)).expect("read").is_some() {
                found.push((kind, subject.to_string()));
            }
        }
    }
    found
}

fn login_failures_are_stored_replaced_and_cleared(db: &dyn Database) {
    use LoginSubjectKind::{Address, User};
    // Milliseconds are kept (a wait is reported to the second, rounded up).
    let first = LoginFailureRow { last_failure: at_ms(1_234), ..row(User, "a", 1, None, 900_001) };
    put(db, &[first.clone(), row(Address, "a", 3, Some(60_500), 900_500)]);
    assert_eq!(db.read(|tx| tx.login_failures(User, "a")).expect("read"), Some(first));
    assert_eq!(
        db.read(|tx| tx.login_failures(Address, "a")).expect("read"),
        Some(row(Address, "a", 3, Some(60_500), 900_500)),
        "a user and an address of the same text are two rows"
    );
    let replaced = row(User, "a", 6, Some(120_000), 1_000_000);
    put(db, std::slice::from_ref(&replaced));
    assert_eq!(db.read(|tx| tx.login_failures(User, "a")).expect("read"), Some(replaced));
    assert_eq!(db.read(|tx| tx.login_failure_rows()).expect("count"), 2);

    db.write(|tx| tx.clear_login_failures(User, "a")).expect("clear");
    assert_eq!(db.read(|tx| tx.login_failures(User, "a")).expect("read"), None);
    assert!(db.read(|tx| tx.login_failures(Address, "a")).expect("read").is_some(), "the address's row stays");
    db.write(|tx| tx.clear_login_failures(User, "nobody")).expect("clearing nothing is no error");
    assert_eq!(db.read(|tx| tx.login_failure_rows()).expect("count"), 1);
}

fn quiet_login_failures_are_pruned_soonest_first(db: &dyn Database) {
    use LoginSubjectKind::{Address, User};
    put(
        db,
        &[
            row(User, "a", 1, None, 3_000),
            row(User, "b", 1, None, 1_000),
            row(Address, "c", 1, None, 2_000),
            row(User, "d", 1, None, 5_000),
        ],
    );
    let pruned = db.write(|tx| tx.prune_login_failures(at_ms(4_000), 2)).expect("prune");
    assert_eq!(pruned, 2, "at most the limit");
    assert_eq!(stored(db), [(User, "a".to_string()), (User, "d".to_string())], "the soonest forgotten went first");
    let pruned = db.write(|tx| tx.prune_login_failures(at_ms(3_000), 10)).expect("prune");
    assert_eq!(pruned, 1, "forget_at at or before now");
    assert_eq!(stored(db), [(User, "d".to_string())], "a row still of use stays");
}

fn evicted_login_failures_are_those_not_waiting_first(db: &dyn Database) {
    use LoginSubjectKind::{Address, User};
    let now = 10_000;
    put(
        db,
        &[
            row(User, "a", 9, Some(now + 50_000), 1_000_000),
            row(User, "b", 9, Some(now + 5_000), 1_100_000),
            row(User, "c", 1, None, 1_200_000),
            row(Address, "d", 1, Some(now - 1), 1_300_000),
            row(User, "e", 1, None, 1_400_000),
        ],
    );
    db.write(|tx| tx.evict_login_failures(at_ms(now), 2)).expect("evict");
    assert_eq!(
        stored(db),
        [(User, "a".to_string()), (User, "b".to_string()), (User, "e".to_string())],
        "rows not waiting, soonest forgotten first (a wait that is over is no wait)"
    );
    db.write(|tx| tx.evict_login_failures(at_ms(now), 2)).expect("evict");
    assert_eq!(stored(db), [(User, "b".to_string())], "then the waiting ones, soonest forgotten first");
}

fn concurrent_failures_of_one_user_all_count(service: &Service) {
    const THREADS: usize = 8;
    const EACH: u32 = 5;
    let throttle = LoginThrottle::open(service, Policy::default()).expect("throttle");
    let subjects = throttle.subjects(Some("pkh.sasaran"), Some("192.0.2.44".parse().expect("address")));
    let now = at_ms(0);
    let barrier = std::sync::Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let (throttle, subjects, barrier) = (&throttle, &subjects, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for _ in 0..EACH {
                    service.login_failed(throttle, subjects, now).expect("a failure is recorded");
                }
            });
        }
    });
    let read = |kind, subject: &Option<String>| -> Result<u32, StorageError> {
        let subject = subject.as_deref().expect("subject");
        Ok(service.database().read(|tx| tx.login_failures(kind, subject))?.expect("stored").failures)
    };
    let all = THREADS as u32 * EACH;
    assert_eq!(read(LoginSubjectKind::User, &subjects.user).expect("user"), all, "every failure of the user counts");
    assert_eq!(read(LoginSubjectKind::Address, &subjects.address).expect("address"), all);
}

fn a_count_made_on_one_connection_throttles_on_every_other(service: &Service) {
    let throttle = LoginThrottle::open(service, Policy::default()).expect("throttle");
    // A second server on the same database: its own throttle, the same key.
    let other = LoginThrottle::open(service, Policy::default()).expect("throttle");
    let now = at_ms(0);
    let subjects = throttle.subjects(Some("pkh.contoh01"), None);
    for _ in 0..5 {
        service.check_login(&subjects, now).expect("check").expect("answered");
        service.login_failed(&throttle, &subjects, now).expect("record");
    }
    let seen_elsewhere = other.subjects(Some("pkh.contoh01"), None);
    let refused = service.check_login(&seen_elsewhere, now + time::Duration::seconds(1)).expect("check");
    assert_eq!(refused.expect_err("throttled").retry_after_seconds(), 59);
    // A correct password after the wait clears it for everyone.
    let later = now + time::Duration::seconds(61);
    assert!(service.check_login(&seen_elsewhere, later).expect("check").expect("answered").user_has_failures);
    service.login_succeeded(&seen_elsewhere).expect("clear");
    assert!(!service.check_login(&subjects, later).expect("check").expect("answered").user_has_failures);
}
