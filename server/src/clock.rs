//! The server's clock, injected: handlers and background work read [`crate::AppState::clock`],
//! never the system clock, so a test can run a whole server at another date. `PILAR_SERVER_NOW`
//! (RFC 3339, the server's `--now`) starts the clock at that time, from where it runs on at the
//! system clock's pace (access tokens still expire, throttles still wait); like the CLI's
//! `PILAR_NOW`, it is for tests and demonstrations, never for a real campaign.

use anyhow::{Context, Result};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The environment variable of `--now`.
pub const NOW_ENV: &str = "PILAR_SERVER_NOW";

/// Where the server's "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that started at a chosen time and runs on at the system clock's pace.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    offset: time::Duration,
}

impl ShiftedClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: OffsetDateTime) -> ShiftedClock {
        ShiftedClock { offset: start - OffsetDateTime::now_utc() }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset
    }
}

/// The clock for a `--now` setting: the system clock without one, else one starting there.
pub fn from_setting(now: Option<&str>) -> Result<Arc<dyn Clock>> {
    match now.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(Arc::new(SystemClock)),
        Some(text) => {
            let start = OffsetDateTime::parse(text, &Rfc3339).with_context(|| {
                format!("{NOW_ENV}={text:?} is not an RFC 3339 time; write it as 2026-11-20T08:00:00+08:00")
            })?;
            Ok(Arc::new(ShiftedClock::starting_at(start)))
        }
    }
}

/// A time as the API shows it: RFC 3339, UTC, whole seconds (`2026-01-02T03:04:05Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_starts_where_it_is_told_and_runs_on() {
        let start = time::macros::datetime!(2026-11-20 08:00 +8);
        let clock = from_setting(Some("2026-11-20T08:00:00+08:00")).expect("clock");
        let (first, second) = (clock.now(), clock.now());
        assert!(first >= start && first - start < time::Duration::minutes(1), "{first}");
        assert!(second >= first, "it runs on");
        assert!(from_setting(Some("yesterday")).expect_err("refused").to_string().contains("RFC 3339"));
        assert!(from_setting(None).expect("system").now() > start - time::Duration::days(365 * 30));
    }

    #[test]
    fn api_times_are_utc_whole_seconds() {
        let t = time::macros::datetime!(2026-11-20 08:00:01.750 +8);
        assert_eq!(rfc3339(t), "2026-11-20T00:00:01Z");
    }
}
