//! Rules of the values the model writes beside form answers (a visit's time, writer, GPS reading
//! and note; a member's removal), applied by data entry on the device and by admission on the
//! server, so both refuse the same values. Messages name the key and the rule, never the value.

use super::DeviceId;
use crate::value::FieldValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest visit note, in characters: a few sentences typed on a tablet; anything longer is not
/// a note and would be delivered to every device of the village.
pub const NOTE_MAX_CHARS: usize = 1000;
/// Longest reason for removing a member, in characters ("pindah ke Makassar", "meninggal").
pub const REMOVAL_REASON_MAX_CHARS: usize = 300;
/// Indonesia's rough latitude bounds (domain.md §2.2 A9), as the form's GPS fields use them.
pub const LATITUDE_RANGE: (f64, f64) = (-11.0, 6.0);
/// Indonesia's rough longitude bounds (domain.md §2.2 A9).
pub const LONGITUDE_RANGE: (f64, f64) = (95.0, 141.0);

/// Which map of the household a record key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A visit map (`at`, `user`, `device`, `lat`, `lon`, `accuracy_m`, `note`).
    Visit,
    /// A member map's removal keys (`removed_at`, `removed_by`, `removed_reason`).
    Member,
    /// A photo reference (`kind`, `bytes`, `mime`, `taken_at`, `by`, `device`).
    Photo,
}

/// One broken rule of a record key: a stable rule name and a lowercase sentence without the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// Stable rule name (`type`, `range`, `max_len`, `time`, `empty`).
    pub rule: &'static str,
    /// What is wrong and what to do; names the key, never holds the value.
    pub message: String,
}

fn problem(rule: &'static str, message: String) -> Result<(), RecordProblem> {
    Err(RecordProblem { rule, message })
}

/// Checks one record key's value on its own (the writer rules, which compare the user, device and
/// time with the caller, are admission's). Keys that are not record keys of `record` pass: they
/// are form fields, checked with the form.
pub fn check_record_value(record: Record, key: &str, value: &FieldValue) -> Result<(), RecordProblem> {
    let in_range = |range: (f64, f64), what: &str| match value.as_f64().filter(|n| n.is_finite()) {
        None => problem("type", format!("visit {key} must be a number; take the GPS reading again")),
        Some(n) if !(range.0..=range.1).contains(&n) => problem(
            "range",
            format!(
                "visit {key}: the {what} is outside Indonesia ({} to {}); take the GPS reading again",
                range.0, range.1
            ),
        ),
        Some(_) => Ok(()),
    };
    let text = |max: Option<usize>| match value.as_text() {
        None => problem("type", format!("{key} must be text")),
        Some(t) if t.trim().is_empty() => problem("empty", format!("{key} is empty; write it or leave it out")),
        Some(t) => match max.filter(|max| t.chars().count() > *max) {
            Some(max) => problem("max_len", format!("{key} is longer than {max} characters; shorten it")),
            None => Ok(()),
        },
    };
    match (record, key) {
        (Record::Visit, "lat") => in_range(LATITUDE_RANGE, "latitude"),
        (Record::Visit, "lon") => in_range(LONGITUDE_RANGE, "longitude"),
        (Record::Visit, "accuracy_m") => match value.as_f64().filter(|n| n.is_finite()) {
            Some(n) if n >= 0.0 => Ok(()),
            _ => problem(
                "range",
                "visit accuracy_m must be a number of metres, 0 or more; take the GPS reading again".into(),
            ),
        },
        (Record::Visit, "note") => text(Some(NOTE_MAX_CHARS)),
        (Record::Member, "removed_reason") => text(Some(REMOVAL_REASON_MAX_CHARS)),
        (Record::Visit, "user") | (Record::Member, "removed_by") | (Record::Photo, "by") => text(Some(64)),
        (Record::Visit | Record::Photo, "device") => match value.as_text().map(|t| t.parse::<DeviceId>()) {
            Some(Ok(_)) => Ok(()),
            _ => problem("type", format!("{key} must be a device id")),
        },
        (Record::Photo, "kind") => match value.as_text().and_then(crate::photo::PhotoKind::parse) {
            Some(_) => Ok(()),
            None => problem("choice", "photo kind must be house_front, house_inside, kk_card or other".into()),
        },
        (Record::Photo, "mime") => match value.as_text().and_then(crate::photo::Mime::parse) {
            Some(_) => Ok(()),
            None => problem("choice", "photo mime must be image/jpeg or image/png".into()),
        },
        (Record::Photo, "bytes") => match value.as_int() {
            Some(n) if n >= 1 && n as u64 <= crate::photo::MAX_PHOTO_BYTES => Ok(()),
            _ => problem(
                "range",
                format!("photo bytes must be a whole number from 1 to {}", crate::photo::MAX_PHOTO_BYTES),
            ),
        },
        (Record::Visit, "at") | (Record::Member, "removed_at") | (Record::Photo, "taken_at") => {
            match record_time(value) {
                Some(_) => Ok(()),
                None => problem("time", format!("{key} must be a time in RFC 3339 (2026-11-20T09:00:00+08:00)")),
            }
        }
        _ => Ok(()),
    }
}

/// The time a record key (`at`, `removed_at`) holds, when it is RFC 3339 text.
pub fn record_time(value: &FieldValue) -> Option<OffsetDateTime> {
    value.as_text().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldValue::{Decimal, Int, Text};

    fn rule(record: Record, key: &str, value: FieldValue) -> Option<&'static str> {
        check_record_value(record, key, &value).err().map(|p| p.rule)
    }

    #[test]
    fn visit_keys_hold_a_reading_inside_indonesia_a_short_note_and_a_time() {
        assert_eq!(rule(Record::Visit, "lat", Decimal(-3.99)), None);
        assert_eq!(rule(Record::Visit, "lat", Decimal(48.8)), Some("range"));
        assert_eq!(rule(Record::Visit, "lon", Int(119)), None);
        assert_eq!(rule(Record::Visit, "lon", Text("119".into())), Some("type"));
        assert_eq!(rule(Record::Visit, "accuracy_m", Decimal(-1.0)), Some("range"));
        assert_eq!(rule(Record::Visit, "note", Text("tidak ada orang".into())), None);
        assert_eq!(rule(Record::Visit, "note", Text("x".repeat(NOTE_MAX_CHARS + 1))), Some("max_len"));
        assert_eq!(rule(Record::Visit, "at", Text("2026-11-20T09:00:00+08:00".into())), None);
        assert_eq!(rule(Record::Visit, "at", Text("kemarin".into())), Some("time"));
        assert_eq!(rule(Record::Visit, "device", Text("../../etc/passwd".into())), Some("type"));
        assert_eq!(rule(Record::Member, "removed_reason", Text("  ".into())), Some("empty"));
        assert_eq!(rule(Record::Member, "full_name", Int(3)), None, "form fields are the form's");
        assert_eq!(rule(Record::Photo, "kind", Text("kk_card".into())), None);
        assert_eq!(rule(Record::Photo, "kind", Text("selfie".into())), Some("choice"));
        assert_eq!(rule(Record::Photo, "mime", Text("image/gif".into())), Some("choice"));
        assert_eq!(rule(Record::Photo, "bytes", Int(0)), Some("range"));
        assert_eq!(rule(Record::Photo, "bytes", Int(2_000_000)), None);
    }

    #[test]
    fn messages_never_carry_the_value() {
        let secret = "<script>7314011503809001</script>";
        for (record, key) in [(Record::Visit, "at"), (Record::Visit, "device"), (Record::Visit, "lat")] {
            let problem = check_record_value(record, key, &Text(secret.into())).expect_err("refused");
            assert!(!problem.message.contains("7314"), "{}", problem.message);
        }
    }
}
