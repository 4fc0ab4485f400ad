//! The writer rules: every pushed change, and every record key that names a writer (a visit's
//! `user`, `device` and `at`; a removal's `removed_by` and `removed_at`), must name the calling
//! user and device and a plausible time. History, conflicts, the review list and progress credit
//! work to what these say, so a device may only ever say it about itself.

use super::Pusher;
use crate::model::{DeviceId, Record, rfc3339_seconds};
use crate::value::FieldValue;
use automerge::Change;
use time::{Duration, OffsetDateTime};

/// How far a change's time (and a visit's or removal's time) may lie outside what the server
/// knows: after the server's clock, or before the device's registration.
///
/// Tablets are offline for days, their clocks drift, and many sit in the wrong time zone (a clock
/// showing the right WIT hour under UTC is 9 hours ahead in absolute time). A change refused for
/// its time stays refused (the device keeps it, marked, and never sends it again), so the bound is
/// generous; it still keeps a forged date to within a day of the truth, where "last year" or "next
/// month" would rewrite a household's history.
pub const CLOCK_SKEW: Duration = Duration::hours(24);

/// What is wrong with the change's writer, as the end of a sentence starting "a change of
/// household … ".
pub(super) fn check_change(change: &Change, pusher: &Pusher<'_>) -> Result<(), String> {
    let user = change
        .message()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| v.get("u").and_then(|u| u.as_str()).map(str::to_string));
    match user {
        None => {
            return Err("carries no readable writer in its message ({\"u\": user, \"a\": action}); a device names its user in every change".into());
        }
        Some(user) if user != pusher.user => {
            return Err(format!(
                "names another user in its message than {}, who is signed in on this device; a device sends only its own user's work",
                pusher.user
            ));
        }
        Some(_) => {}
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(change.timestamp()) * 1_000_000)
        .map_err(|_| "has no valid time".to_string())?;
    plausible(at, pusher).map_err(|why| format!("is dated {why}"))
}

/// What is wrong with a writer-naming record key's value, as a whole sentence (the path is the
/// key's place, e.g. `visits.<id>`).
pub(super) fn check_record_key(
    record: Record,
    path: &str,
    key: &str,
    value: &FieldValue,
    pusher: &Pusher<'_>,
) -> Result<(), String> {
    match (record, key) {
        (Record::Visit, "user") | (Record::Member, "removed_by") | (Record::Photo, "by") => match value.as_text() {
            Some(user) if user == pusher.user => Ok(()),
            _ => Err(format!(
                "{path}.{key} names another user than {}, who is signed in on this device; a device records only its own user's work",
                pusher.user
            )),
        },
        (Record::Visit | Record::Photo, "device") => match value.as_text().and_then(|t| t.parse::<DeviceId>().ok()) {
            Some(device) if device == pusher.device => Ok(()),
            _ => Err(format!(
                "{path}.device names another device than {}, the one sending; a device records only its own visits and photos",
                pusher.device
            )),
        },
        (Record::Visit, "at") | (Record::Member, "removed_at") | (Record::Photo, "taken_at") => {
            match crate::model::record_time(value) {
                Some(at) => plausible(at, pusher).map_err(|why| format!("{path}.{key} is {why}")),
                None => Err(format!("{path}.{key} is not an RFC 3339 time")),
            }
        }
        _ => Ok(()),
    }
}

/// Whether `at` lies within [`CLOCK_SKEW`] of what the server knows; otherwise why not, as the
/// end of a sentence ("is dated …").
fn plausible(at: OffsetDateTime, pusher: &Pusher<'_>) -> Result<(), String> {
    let hours = CLOCK_SKEW.whole_hours();
    if at > pusher.now + CLOCK_SKEW {
        return Err(format!(
            "{}, more than {hours} hours after the server's clock ({}); check the tablet's date, time and time zone",
            rfc3339_seconds(at),
            rfc3339_seconds(pusher.now)
        ));
    }
    if at < pusher.registered_at - CLOCK_SKEW {
        return Err(format!(
            "{}, more than {hours} hours before this device was registered ({}); a device sends only work saved after its first login — check the tablet's date, time and time zone",
            rfc3339_seconds(at),
            rfc3339_seconds(pusher.registered_at)
        ));
    }
    Ok(())
}
