//! Login throttling: failed password logins are counted per user name and per client address,
//! and after a few of them the next attempt waits, exponentially longer (429 with `Retry-After`).
//! The check runs before argon2 (the expensive part), so a throttled guess costs the server next
//! to nothing, and a correct password from a throttled user or address waits like any other.
//!
//! - The state lives in memory, per server process: a restart forgets it, and several servers
//!   behind one address (issue 14) each count on their own.
//! - The client address is the TCP peer ([`ClientAddress`]). Behind a reverse proxy that is the
//!   proxy, so every client shares one address count: give the proxy its own limits, or raise
//!   nothing here (forwarded headers are not trusted, since any client can send them).
//!   IPv6 addresses count per /64, the block a single host can pick addresses from.
//! - Memory is bounded: at most [`Policy::max_entries`] names and addresses are remembered; when
//!   full, entries quiet for longer than [`Policy::forget_after`] are dropped, then the oldest.
//! - Only wrong passwords count; a correct one clears its user name's count, so many devices of
//!   one account, or many colleagues behind one NAT, logging in at once are never throttled.
//!   Guesses sent all at once are still bounded: the throttle is asked again once an argon2 slot
//!   is held, and each outcome is recorded before the slot is given back
//!   ([`crate::auth::verify_password_gated`]), so a burst queues for the slots and all but the
//!   first few are turned away without running argon2.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// A count with no failure for this long starts again from zero.
    pub forget_after: Duration,
    /// Most user names and addresses remembered at once.
    pub max_entries: usize,
}

impl Default for Policy {
    /// Five failures per user name (the sixth wrong password within a minute waits a minute),
    /// thirty per address, waits doubling up to 15 minutes, forgotten after 15 quiet minutes,
    /// at most 50,000 entries (a few MiB).
    fn default() -> Policy {
        Policy {
            free_per_user: 5,
            free_per_address: 30,
            first_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_entries: 50_000,
        }
    }
}

/// What is counted: a user name as typed (well-formed names only) or a client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// Counts failed logins per user name and per client address (see the module doc).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    policy: Policy,
    entries: Mutex<HashMap<Key, Entry>>,
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

impl LoginThrottle {
    /// A throttle with `policy`.
    pub fn new(policy: Policy) -> LoginThrottle {
        LoginThrottle { policy, entries: Mutex::new(HashMap::new()) }
    }

    /// Whether an attempt for `user` (a well-formed name, or `None`) from `address` may have its
    /// password checked now, or how long it must wait. Counts nothing: ask again right before
    /// the check ([`crate::auth::verify_password_gated`]), and report its outcome.
    pub fn check(&self, user: Option<&str>, address: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let address = address.map(counted_address);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = |key: &Key| {
            entries
                .get(key)
                .and_then(|e| e.blocked_until)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|left| !left.is_zero())
        };
        let by_user = user.and_then(|u| wait(&Key::User(u.to_string())));
        let by_address = address.and_then(|a| wait(&Key::Address(a)));
        match (by_user, by_address) {
            (None, None) => Ok(()),
            (u, a) => {
                let (u, a) = (u.unwrap_or_default(), a.unwrap_or_default());
                Err(Throttled { wait: u.max(a), by_user: u >= a })
            }
        }
    }

    /// The password was right: the user name's count is cleared (the address's stays, so that
    /// one good account does not reset an address that guesses others).
    pub fn succeeded(&self, user: Option<&str>) {
        if let Some(user) = user {
            self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(&Key::User(user.to_string()));
        }
    }

    /// The password was wrong (or the user unknown): one more failure for the user name and
    /// for the address.
    pub fn failed(&self, user: Option<&str>, address: Option<IpAddr>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(user) = user {
            self.count_failure(&mut entries, Key::User(user.to_string()), self.policy.free_per_user, now);
        }
        if let Some(address) = address.map(counted_address) {
            self.count_failure(&mut entries, Key::Address(address), self.policy.free_per_address, now);
        }
    }

    /// How many user names and addresses are remembered now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn count_failure(&self, entries: &mut HashMap<Key, Entry>, key: Key, free: u32, now: Instant) {
        if !entries.contains_key(&key) && entries.len() >= self.policy.max_entries {
            self.make_room(entries, now);
        }
        let entry = entries.entry(key).or_insert(Entry { failures: 0, last_failure: now, blocked_until: None });
        if now.saturating_duration_since(entry.last_failure) > self.policy.forget_after {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= free {
            let doublings = (entry.failures - free).min(20);
            let wait = self.policy.first_wait.saturating_mul(1 << doublings).min(self.policy.max_wait);
            entry.blocked_until = Some(now + wait);
        }
    }

    /// Drop entries nobody needs any more; if the map is still full, an eighth of it: those idle
    /// the longest among the ones not waiting, then those whose wait ends first (so a flood of
    /// new names evicts other flood names before the user it is meant to hide).
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let forget_after = self.policy.forget_after;
        entries.retain(|_, e| {
            e.blocked_until.is_some_and(|until| until > now)
                || now.saturating_duration_since(e.last_failure) <= forget_after
        });
        if entries.len() < self.policy.max_entries {
            return;
        }
        let evict = entries.len() + 1 - self.policy.max_entries + self.policy.max_entries / 8;
        let mut order: Vec<((bool, Instant), Key)> = entries
            .iter()
            .map(|(k, e)| {
                let waiting = e.blocked_until.filter(|until| *until > now);
                ((waiting.is_some(), waiting.unwrap_or(e.last_failure)), k.clone())
            })
            .collect();
        let evict = evict.min(order.len());
        if evict < order.len() {
            order.select_nth_unstable_by_key(evict, |(rank, _)| *rank);
        }
        for (_, key) in order.into_iter().take(evict) {
            entries.remove(&key);
        }
    }
}

/// The address counted for `address`: IPv4 as is (also when mapped into IPv6), IPv6 per /64.
fn counted_address(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address: the TCP peer of the connection (`None` when the server runs without
/// connection info, as in-process router tests do). Behind a reverse proxy this is the proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<ClientAddress, Infallible> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("address"))
    }

    /// Run one attempt that fails; `Err` if it was throttled.
    fn fail(throttle: &LoginThrottle, user: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        throttle.check(Some(user), address, now)?;
        throttle.failed(Some(user), address, now);
        Ok(())
    }

    #[test]
    fn the_sixth_wrong_password_within_a_minute_waits_and_so_does_a_right_one() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..5 {
            fail(&throttle, "pkh.contoh01", ip("192.0.2.7"), start + Duration::from_secs(i)).expect("answered");
        }
        let sixth = start + Duration::from_secs(10);
        let refused = throttle.check(Some("pkh.contoh01"), ip("192.0.2.7"), sixth).expect_err("throttled");
        assert!(refused.by_user);
        assert_eq!(refused.retry_after_seconds(), 54, "a minute after the fifth failure");
        // From another address, the same user name still waits; another user does not.
        assert!(throttle.check(Some("pkh.contoh01"), ip("198.51.100.1"), sixth).is_err());
        assert!(throttle.check(Some("pkh.lain"), ip("192.0.2.7"), sixth).is_ok());

        // After the wait one attempt is answered; failing again doubles the wait.
        let later = start + Duration::from_secs(65);
        fail(&throttle, "pkh.contoh01", ip("192.0.2.7"), later).expect("the wait is over");
        let refused = throttle.check(Some("pkh.contoh01"), None, later).expect_err("throttled again");
        assert_eq!(refused.retry_after_seconds(), 120);

        // A correct password after the wait clears the user's count.
        let after = later + Duration::from_secs(121);
        throttle.check(Some("pkh.contoh01"), None, after).expect("answered");
        throttle.succeeded(Some("pkh.contoh01"));
        for i in 0..5 {
            fail(&throttle, "pkh.contoh01", None, after + Duration::from_secs(i)).expect("a fresh count");
        }
    }

    #[test]
    fn waits_double_up_to_the_longest_and_quiet_counts_are_forgotten() {
        let throttle = LoginThrottle::default();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..16 {
            match fail(&throttle, "pkh.contoh01", None, now) {
                Ok(()) => {}
                Err(throttled) => {
                    waits.push(throttled.retry_after_seconds());
                    now += throttled.wait;
                }
            }
        }
        assert_eq!(waits, [60, 120, 240, 480, 900, 900]);
        // Fifteen quiet minutes after the last failure, the count starts again.
        now += Duration::from_secs(15 * 60 + 1);
        for _ in 0..5 {
            fail(&throttle, "pkh.contoh01", None, now).expect("forgotten");
        }
    }

    #[test]
    fn a_burst_of_guesses_runs_argon2_only_for_the_first_few() {
        let throttle = std::sync::Arc::new(LoginThrottle::default());
        let hash = crate::auth::hash_password("sandi-yang-benar-1").expect("hash");
        let checked = std::sync::atomic::AtomicUsize::new(0);
        let refused = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for i in 0..20 {
                let (throttle, hash, checked, refused) = (&throttle, &hash, &checked, &refused);
                scope.spawn(move || {
                    let user = Some("pkh.sasaran");
                    let outcome = crate::auth::verify_password_gated(
                        &format!("tebakan-{i}"),
                        Some(hash),
                        &|| throttle.check(user, None, Instant::now()).is_ok(),
                        &|right| {
                            checked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            if !right {
                                throttle.failed(user, None, Instant::now());
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
    fn many_devices_of_one_account_logging_in_at_once_are_never_throttled() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..50 {
            throttle.check(Some("pkh.bersama"), ip("198.51.100.1"), now).expect("never throttled");
        }
        for _ in 0..50 {
            throttle.succeeded(Some("pkh.bersama"));
        }
        assert!(throttle.is_empty());
    }

    #[test]
    fn one_address_guessing_many_names_waits_after_its_own_limit() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..30 {
            fail(&throttle, &format!("pkh.nama{i}"), ip("2001:db8::1"), now).expect("under the address limit");
        }
        // Another host in the same /64 counts as the same address; another /64 does not.
        let refused = throttle.check(Some("pkh.baru"), ip("2001:db8::ffff:2"), now).expect_err("the /64 waits");
        assert!(!refused.by_user);
        assert!(throttle.check(Some("pkh.baru"), ip("2001:db8:0:1::1"), now).is_ok(), "another /64");
        // An IPv4 address mapped into IPv6 is the IPv4 address.
        for _ in 0..30 {
            throttle.check(None, ip("::ffff:192.0.2.9"), now).expect("answered");
            throttle.failed(None, ip("::ffff:192.0.2.9"), now);
        }
        assert!(throttle.check(None, ip("192.0.2.9"), now).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let policy = Policy { max_entries: 100, ..Policy::default() };
        let throttle = LoginThrottle::new(policy);
        let start = Instant::now();
        // A throttled user first, then a flood of other names from many addresses.
        for _ in 0..5 {
            fail(&throttle, "pkh.sasaran", None, start).expect("answered");
        }
        for i in 0..10_000u32 {
            let now = start + Duration::from_millis(u64::from(i));
            let address = Some(IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]));
            let _ = fail(&throttle, &format!("pkh.banjir{i}"), address, now);
            assert!(throttle.len() <= 100, "{} entries", throttle.len());
        }
        let refused = throttle.check(Some("pkh.sasaran"), None, start + Duration::from_secs(10));
        assert!(refused.is_err(), "the flood did not evict the waiting user");
    }
}
