//! Login throttling: failed password logins are counted per user name and per client address,
//! and after a few of them the next attempt waits, exponentially longer (429 with `Retry-After`).
//! The check runs before argon2 (the expensive part), so a throttled guess costs the server one
//! read, and a correct password from a throttled user or address waits like any other.
//!
//! - The counts live in the database (`login_failures`), so every server on one database counts
//!   the same failures and a restart forgets none. Every rule is here; the backends store rows.
//! - A user name is stored as a keyed hash ([`THROTTLE_KEY_NAME`], a server secret): the name
//!   field may hold a password typed in the wrong place, and a list of the names guessed at is
//!   nobody's business. The client address is stored as counted (IPv6 per /64).
//! - Checking reads; only a failure writes (one short write transaction: the rows of the user
//!   name and the address read, counted and written back; on PostgreSQL a concurrent count of the
//!   same row fails one of the two, which runs again, so both count). A refused attempt writes
//!   nothing; a correct password writes only when its user name has failures to clear.
//! - The table is bounded: every failure prunes rows whose wait and quiet period are over
//!   ([`PRUNE_PER_FAILURE`]), and a failure that adds a row evicts rows once more than
//!   [`Policy::max_rows`] are stored: those not waiting first, then those whose wait ends first,
//!   so a flood of new names or addresses evicts other flood rows before the user it hides.
//! - Only wrong passwords count; a correct one clears its user name's count, so many devices of
//!   one account, or many colleagues behind one NAT, logging in at once are never throttled.
//!   Guesses sent all at once are still bounded: the throttle is asked again once an argon2 slot
//!   is held, and each outcome is recorded before the slot is given back
//!   ([`crate::auth::verify_password_gated`]), so a burst queues for the slots and all but the
//!   first few are turned away without running argon2.

use super::Service;
use crate::storage::{LoginFailureRow, LoginSubjectKind, StorageError, Transactions, Tx};
use hmac::Mac;
use sha2::Sha256;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use time::OffsetDateTime;

/// The server secret user names are hashed with before they are counted (its own key: the
/// duplicate-lookup key protects NIKs and is used for nothing else).
pub const THROTTLE_KEY_NAME: &str = "login_throttle_key";

/// Expired rows each recorded failure prunes at most (more than one failure adds, so the table
/// shrinks back after a flood).
pub const PRUNE_PER_FAILURE: u32 = 16;

/// How failed logins are counted and how long a throttled attempt waits.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Failures of one user name answered before it waits (the next is the first refused).
    pub free_per_user: u32,
    /// Failures from one address answered before it waits: higher than per user, since a
    /// carrier's NAT or an office puts many devices behind one address.
    pub free_per_address: u32,
    /// The first wait; each further failure doubles it.
    pub first_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
    /// A count with no failure for this long starts again from zero (and its row is pruned).
    pub forget_after: Duration,
    /// Most rows (user names and addresses) kept at once.
    pub max_rows: u64,
}

impl Default for Policy {
    /// Five failures per user name (the sixth wrong password within a minute waits a minute),
    /// thirty per address, waits doubling up to 15 minutes, forgotten after 15 quiet minutes,
    /// at most 50,000 rows (a few MiB).
    fn default() -> Policy {
        Policy {
            free_per_user: 5,
            free_per_address: 30,
            first_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_rows: 50_000,
        }
    }
}

impl Policy {
    /// The row of `kind`/`subject` after one more failure at `now` (`row`: as stored before).
    pub fn after_failure(
        &self,
        kind: LoginSubjectKind,
        subject: &str,
        row: Option<LoginFailureRow>,
        now: OffsetDateTime,
    ) -> LoginFailureRow {
        let free = match kind {
            LoginSubjectKind::User => self.free_per_user,
            LoginSubjectKind::Address => self.free_per_address,
        };
        let forget_after = time_span(self.forget_after);
        let mut failures = match &row {
            Some(row) if now - row.last_failure <= forget_after => row.failures,
            _ => 0,
        };
        failures = failures.saturating_add(1);
        let blocked_until = (failures >= free).then(|| {
            let doublings = (failures - free).min(20);
            now + time_span(self.first_wait.saturating_mul(1 << doublings).min(self.max_wait))
        });
        // A row that still holds a wait is kept until the wait is over.
        let earlier_wait = row.and_then(|r| r.blocked_until).filter(|until| *until > now);
        let blocked_until = blocked_until.max(earlier_wait);
        let forget_at = blocked_until.map_or(now + forget_after, |until| until.max(now + forget_after));
        LoginFailureRow { kind, subject: subject.to_string(), failures, last_failure: now, blocked_until, forget_at }
    }

    /// How long an attempt at `now` waits because of `row` (`None`: it does not).
    pub fn wait(row: &LoginFailureRow, now: OffsetDateTime) -> Option<Duration> {
        let left = row.blocked_until? - now;
        (left > time::Duration::ZERO).then(|| Duration::try_from(left).unwrap_or_default())
    }
}

fn time_span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Why an attempt was not let through: the wait left, and what is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the next attempt is answered.
    pub wait: Duration,
    /// Whether the user name (`true`) or the address (`false`) is waiting the longest.
    pub by_user: bool,
}

impl Throttled {
    /// The wait in whole seconds, rounded up (for `Retry-After`), at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        let whole = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        whole.max(1)
    }
}

/// An attempt that may have its password checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    /// Whether its user name has failures counted (a correct password clears them).
    pub user_has_failures: bool,
}

/// The rule and the key that names what is counted; the counts are in the database.
pub struct LoginThrottle {
    policy: Policy,
    key: hmac::Hmac<Sha256>,
}

impl std::fmt::Debug for LoginThrottle {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// What one attempt is counted as: its user name's keyed hash and its counted address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSubjects {
    /// The keyed hash of a well-formed user name.
    pub user: Option<String>,
    /// The counted client address (IPv4, or an IPv6 /64).
    pub address: Option<String>,
}

impl LoginSubjects {
    fn each(&self) -> impl Iterator<Item = (LoginSubjectKind, &str)> {
        let user = self.user.as_deref().map(|s| (LoginSubjectKind::User, s));
        let address = self.address.as_deref().map(|s| (LoginSubjectKind::Address, s));
        user.into_iter().chain(address)
    }
}

impl LoginThrottle {
    /// A throttle with `policy`, hashing user names with `key` (the server secret
    /// [`THROTTLE_KEY_NAME`], the same for every server on the database).
    pub fn new(policy: Policy, key: &[u8]) -> Result<LoginThrottle, StorageError> {
        let key = hmac::Hmac::<Sha256>::new_from_slice(key)
            .map_err(|e| StorageError::Corrupt(format!("the login throttle key is not usable: {e}")))?;
        Ok(LoginThrottle { policy, key })
    }

    /// The throttle of `service`'s database with the default policy: its key is read (made on
    /// first use) from the server secrets.
    pub fn open(service: &Service, policy: Policy) -> Result<LoginThrottle, StorageError> {
        LoginThrottle::new(policy, &service.server_key(THROTTLE_KEY_NAME)?)
    }

    /// The rule.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What an attempt for `user` (a well-formed name, or `None`) from `address` is counted as.
    pub fn subjects(&self, user: Option<&str>, address: Option<IpAddr>) -> LoginSubjects {
        let user = user.map(|name| {
            let mut mac = self.key.clone();
            mac.update(b"login user\0");
            mac.update(name.as_bytes());
            hex::encode(&mac.finalize().into_bytes()[..16])
        });
        LoginSubjects { user, address: address.map(counted_address) }
    }
}

/// The address counted for `address`: IPv4 as is (also when mapped into IPv6), IPv6 per /64
/// (`2001:db8:1:2::/64`), the block a single host can pick addresses from.
pub fn counted_address(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Service {
    /// Whether an attempt counted as `subjects` may have its password checked at `now`, or how
    /// long it must wait. Reads only (never waits for a writer): ask again right before the
    /// check ([`crate::auth::verify_password_gated`]), and report its outcome.
    pub fn check_login(
        &self,
        subjects: &LoginSubjects,
        now: OffsetDateTime,
    ) -> Result<Result<Cleared, Throttled>, StorageError> {
        let rows = self.db.read(|tx| {
            let mut rows = Vec::new();
            for (kind, subject) in subjects.each() {
                rows.extend(tx.login_failures(kind, subject)?);
            }
            Ok(rows)
        })?;
        let (mut by_user, mut by_address) = (None, None);
        let mut user_has_failures = false;
        for row in &rows {
            let wait = Policy::wait(row, now);
            match row.kind {
                LoginSubjectKind::User => {
                    user_has_failures = true;
                    by_user = wait;
                }
                LoginSubjectKind::Address => by_address = wait,
            }
        }
        Ok(match (by_user, by_address) {
            (None, None) => Ok(Cleared { user_has_failures }),
            (u, a) => {
                let (u, a) = (u.unwrap_or_default(), a.unwrap_or_default());
                Err(Throttled { wait: u.max(a), by_user: u >= a })
            }
        })
    }

    /// The password was wrong (or the user unknown): one more failure for the user name and for
    /// the address, in one write transaction that also keeps the table bounded.
    pub fn login_failed(
        &self,
        throttle: &LoginThrottle,
        subjects: &LoginSubjects,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let policy = throttle.policy();
        self.db.write(|tx| {
            let mut added = false;
            for (kind, subject) in subjects.each() {
                let before = tx.login_failures(kind, subject)?;
                added |= before.is_none();
                tx.put_login_failures(&policy.after_failure(kind, subject, before, now))?;
            }
            keep_bounded(tx, policy, added, now)
        })
    }

    /// The password was right: the user name's count is cleared (the address's stays, so that
    /// one good account does not reset an address that guesses others).
    pub fn login_succeeded(&self, subjects: &LoginSubjects) -> Result<(), StorageError> {
        match &subjects.user {
            Some(user) => self.db.write(|tx| tx.clear_login_failures(LoginSubjectKind::User, user)),
            None => Ok(()),
        }
    }
}

/// Prune rows of no more use; when a row was added and more than `max_rows` are stored, evict
/// an eighth of them beyond (see the module doc for which).
fn keep_bounded(tx: &mut dyn Tx, policy: &Policy, added: bool, now: OffsetDateTime) -> Result<(), StorageError> {
    tx.prune_login_failures(now, PRUNE_PER_FAILURE)?;
    if !added {
        return Ok(());
    }
    let rows = tx.login_failure_rows()?;
    if rows > policy.max_rows {
        tx.evict_login_failures(now, rows - policy.max_rows + policy.max_rows / 8)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SqliteDatabase;
    use std::sync::Arc;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("address"))
    }

    /// A throttle with `policy` over a fresh SQLite database.
    struct Bench {
        service: Service,
        throttle: LoginThrottle,
        _dir: tempfile::TempDir,
    }

    impl Bench {
        fn new(policy: Policy) -> Bench {
            let dir = tempfile::TempDir::new().expect("temp dir");
            let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
            let service = Service::new(Arc::new(db));
            let throttle = LoginThrottle::open(&service, policy).expect("throttle");
            Bench { service, throttle, _dir: dir }
        }

        fn check(&self, user: Option<&str>, address: Option<IpAddr>, now: OffsetDateTime) -> Result<(), Throttled> {
            let subjects = self.throttle.subjects(user, address);
            self.service.check_login(&subjects, now).expect("check").map(|_| ())
        }

        /// Run one attempt that fails; `Err` if it was throttled.
        fn fail(&self, user: &str, address: Option<IpAddr>, now: OffsetDateTime) -> Result<(), Throttled> {
            self.check(Some(user), address, now)?;
            let subjects = self.throttle.subjects(Some(user), address);
            self.service.login_failed(&self.throttle, &subjects, now).expect("record the failure");
            Ok(())
        }

        fn succeed(&self, user: &str) {
            let subjects = self.throttle.subjects(Some(user), None);
            self.service.login_succeeded(&subjects).expect("clear");
        }

        fn rows(&self) -> u64 {
            self.service.db.read(|tx| tx.login_failure_rows()).expect("rows")
        }
    }

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time") + time::Duration::milliseconds(250)
    }

    fn secs(n: u64) -> time::Duration {
        time::Duration::seconds(n as i64)
    }

    #[test]
    fn the_sixth_wrong_password_within_a_minute_waits_and_so_does_a_right_one() {
        let bench = Bench::new(Policy::default());
        let start = start();
        for i in 0..5 {
            bench.fail("pkh.contoh01", ip("192.0.2.7"), start + secs(i)).expect("answered");
        }
        let sixth = start + secs(10);
        let refused = bench.check(Some("pkh.contoh01"), ip("192.0.2.7"), sixth).expect_err("throttled");
        assert!(refused.by_user);
        assert_eq!(refused.retry_after_seconds(), 54, "a minute after the fifth failure");
        // From another address, the same user name still waits; another user does not.
        assert!(bench.check(Some("pkh.contoh01"), ip("198.51.100.1"), sixth).is_err());
        assert!(bench.check(Some("pkh.lain"), ip("192.0.2.7"), sixth).is_ok());

        // After the wait one attempt is answered; failing again doubles the wait.
        let later = start + secs(65);
        bench.fail("pkh.contoh01", ip("192.0.2.7"), later).expect("the wait is over");
        let refused = bench.check(Some("pkh.contoh01"), None, later).expect_err("throttled again");
        assert_eq!(refused.retry_after_seconds(), 120);

        // A correct password after the wait clears the user's count.
        let after = later + secs(121);
        bench.check(Some("pkh.contoh01"), None, after).expect("answered");
        bench.succeed("pkh.contoh01");
        for i in 0..5 {
            bench.fail("pkh.contoh01", None, after + secs(i)).expect("a fresh count");
        }
    }

    #[test]
    fn user_names_are_stored_as_keyed_hashes_the_same_on_every_server_of_the_database() {
        let bench = Bench::new(Policy::default());
        bench.fail("pkh.contoh01", ip("192.0.2.7"), start()).expect("answered");
        let subjects = bench.throttle.subjects(Some("pkh.contoh01"), ip("192.0.2.7"));
        let user = subjects.user.clone().expect("a user subject");
        assert!(!user.contains("contoh"), "{user}");
        assert_eq!(user.len(), 32, "{user}");
        let row = bench.service.db.read(|tx| tx.login_failures(LoginSubjectKind::User, &user)).expect("read");
        assert_eq!(row.expect("stored").failures, 1);
        // Another server on the database reads the same key, so it names the user alike.
        let again = LoginThrottle::open(&bench.service, Policy::default()).expect("throttle");
        assert_eq!(again.subjects(Some("pkh.contoh01"), None).user, Some(user));
        assert_eq!(subjects.address.as_deref(), Some("192.0.2.7"));
    }

    #[test]
    fn waits_double_up_to_the_longest_and_quiet_counts_are_forgotten() {
        let bench = Bench::new(Policy::default());
        let mut now = start();
        let mut waits = Vec::new();
        for _ in 0..16 {
            match bench.fail("pkh.contoh01", None, now) {
                Ok(()) => {}
                Err(throttled) => {
                    waits.push(throttled.retry_after_seconds());
                    now += time_span(throttled.wait);
                }
            }
        }
        assert_eq!(waits, [60, 120, 240, 480, 900, 900]);
        // Fifteen quiet minutes after the last failure, the count starts again, and the row is
        // pruned by the next failure anyone records.
        now += secs(15 * 60 + 1);
        bench.fail("pkh.lain", None, now).expect("another user");
        assert_eq!(bench.rows(), 1, "the quiet row was pruned");
        for _ in 0..5 {
            bench.fail("pkh.contoh01", None, now).expect("forgotten");
        }
    }

    #[test]
    fn a_burst_of_guesses_runs_argon2_only_for_the_first_few() {
        let bench = Bench::new(Policy::default());
        let hash = crate::auth::hash_password("sandi-yang-benar-1").expect("hash");
        let checked = std::sync::atomic::AtomicUsize::new(0);
        let refused = std::sync::atomic::AtomicUsize::new(0);
        let subjects = bench.throttle.subjects(Some("pkh.sasaran"), None);
        std::thread::scope(|scope| {
            for i in 0..20 {
                let (bench, hash, checked, refused, subjects) = (&bench, &hash, &checked, &refused, &subjects);
                scope.spawn(move || {
                    let outcome = crate::auth::verify_password_gated(
                        &format!("tebakan-{i}"),
                        Some(hash),
                        &|| bench.service.check_login(subjects, OffsetDateTime::now_utc()).expect("check").is_ok(),
                        &|right| {
                            checked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            if !right {
                                bench
                                    .service
                                    .login_failed(&bench.throttle, subjects, OffsetDateTime::now_utc())
                                    .expect("record");
                            }
                        },
                    );
                    if outcome.is_none() {
                        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        let checked = checked.into_inner();
        // Two argon2 slots: at most one attempt beyond the five free ones can pass the gate
        // while another is being checked.
        assert!((5..=6).contains(&checked), "{checked} passwords were checked");
        assert_eq!(checked + refused.into_inner(), 20);
    }

    #[test]
    fn many_devices_of_one_account_logging_in_at_once_are_never_throttled_and_write_nothing() {
        let bench = Bench::new(Policy::default());
        let now = start();
        for _ in 0..50 {
            let subjects = bench.throttle.subjects(Some("pkh.bersama"), ip("198.51.100.1"));
            let cleared = bench.service.check_login(&subjects, now).expect("check").expect("never throttled");
            assert!(!cleared.user_has_failures, "nothing to clear, so nothing is written");
        }
        assert_eq!(bench.rows(), 0);
    }

    #[test]
    fn one_address_guessing_many_names_waits_after_its_own_limit() {
        let bench = Bench::new(Policy::default());
        let now = start();
        for i in 0..30 {
            bench.fail(&format!("pkh.nama{i}"), ip("2001:db8::1"), now).expect("under the address limit");
        }
        // Another host in the same /64 counts as the same address; another /64 does not.
        let refused = bench.check(Some("pkh.baru"), ip("2001:db8::ffff:2"), now).expect_err("the /64 waits");
        assert!(!refused.by_user);
        assert!(bench.check(Some("pkh.baru"), ip("2001:db8:0:1::1"), now).is_ok(), "another /64");
        // An IPv4 address mapped into IPv6 is the IPv4 address.
        for _ in 0..30 {
            bench.check(None, ip("::ffff:192.0.2.9"), now).expect("answered");
            let subjects = bench.throttle.subjects(None, ip("::ffff:192.0.2.9"));
            bench.service.login_failed(&bench.throttle, &subjects, now).expect("record");
        }
        assert!(bench.check(None, ip("192.0.2.9"), now).is_err());
        assert_eq!(counted_address("2001:db8::ffff:2".parse().expect("address")), "2001:db8::/64");
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_names_and_keeps_the_waiting_user() {
        let bench = Bench::new(Policy { max_rows: 100, ..Policy::default() });
        let start = start();
        // A throttled user first, then a flood of other names from many addresses.
        for _ in 0..5 {
            bench.fail("pkh.sasaran", None, start).expect("answered");
        }
        for i in 0..400u32 {
            let now = start + time::Duration::milliseconds(i64::from(i));
            let address = Some(IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]));
            let _ = bench.fail(&format!("pkh.banjir{i}"), address, now);
            assert!(bench.rows() <= 100, "{} rows", bench.rows());
        }
        let refused = bench.check(Some("pkh.sasaran"), None, start + secs(10));
        assert!(refused.is_err(), "the flood did not evict the waiting user");
    }
}
