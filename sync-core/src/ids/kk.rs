//! Nomor KK (Kartu Keluarga): the validated 16-digit family-card number and its checks (domain.md §1.2).
//!
//! A KK number is not a stable household key: it changes when the family moves kecamatan, when the
//! head dies, on divorce and on *pecah KK*. Households have their own id; this is one answer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;

use super::IdError;
use super::layout::{self, Kind};
use crate::finding::Finding;

const KK: Kind = Kind {
    rule_prefix: "kk",
    noun: "kk number",
    fix: "re-check the number printed on the KK card",
    date_noun: "recording date",
    day_plus_forty: false,
};

/// A KK number that passed every reject rule, stored as its 16 digits without separators.
///
/// Built only by [`KkNumber::parse`] (or [`check_kk`], or deserializing). `Debug` masks the middle
/// digits, like [`Nik`](super::Nik): the KK number identifies a family.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KkNumber(String);

impl KkNumber {
    /// Validates a KK number as typed: strips spaces, dots and dashes, then applies every reject rule.
    ///
    /// Same rules as a NIK except the day: 01–31 only, a KK has no +40.
    pub fn parse(raw: &str) -> Result<KkNumber, IdError> {
        let digits = layout::normalise(raw);
        let findings = layout::reject_findings(&KK, &digits);
        if findings.is_empty() { Ok(KkNumber(digits)) } else { Err(IdError::InvalidKkNumber { findings }) }
    }

    /// The 16 digits, without separators, for storage and comparison.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The day the KK was recorded (1–31), digits 7–8.
    pub fn recorded_day(&self) -> u8 {
        layout::two_digits(&self.0, 6)
    }

    /// The month the KK was recorded (1–12), digits 9–10.
    pub fn recorded_month(&self) -> u8 {
        layout::two_digits(&self.0, 8)
    }

    /// The last two digits of the recording year (0–99), digits 11–12.
    pub fn recorded_year_two_digits(&self) -> u8 {
        layout::two_digits(&self.0, 10)
    }

    /// The recording year by the century rule: above today's two-digit year means 19YY, else 20YY.
    pub fn inferred_recorded_year(&self, today: Date) -> i32 {
        layout::infer_year(self.recorded_year_two_digits(), today)
    }

    /// The issuing kecamatan, digits 1–6 as `PP.KK.CC` (e.g. `73.14.01`).
    pub fn district_prefix(&self) -> String {
        layout::district_prefix(&self.0)
    }

    /// The family serial number, digits 13–16 (1–9999).
    pub fn serial(&self) -> u16 {
        layout::serial(&self.0)
    }

    /// The number with the middle eight digits starred (`7314********9001`), for logs and lists.
    pub fn masked(&self) -> String {
        layout::masked(&self.0)
    }

    /// Every warning rule for this (already valid) KK number.
    fn warnings(&self, today: Date) -> Vec<Finding> {
        let date = (self.inferred_recorded_year(today), self.recorded_month(), self.recorded_day());
        let mut findings = Vec::new();
        findings.extend(layout::calendar_warning(&KK, date.0, date.1, date.2));
        findings.extend(layout::region_warning(&KK, &self.0));
        findings.extend(layout::future_warning(&KK, "future_recording_date", date, today));
        findings
    }
}

/// Checks a KK number as typed and returns every finding at once, for a form to show together.
///
/// When a reject rule fails, the result has no `KkNumber` and lists every failed reject rule.
/// Otherwise it has the number and lists the warnings: impossible calendar date, recording date
/// after `today`, region prefix not in the table.
pub fn check_kk(raw: &str, today: Date) -> (Option<KkNumber>, Vec<Finding>) {
    match KkNumber::parse(raw) {
        Ok(kk) => {
            let warnings = kk.warnings(today);
            (Some(kk), warnings)
        }
        Err(err) => (None, err.into_findings()),
    }
}

impl fmt::Display for KkNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KkNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KkNumber({})", self.masked())
    }
}

impl FromStr for KkNumber {
    type Err = IdError;

    fn from_str(raw: &str) -> Result<KkNumber, IdError> {
        KkNumber::parse(raw)
    }
}

impl AsRef<str> for KkNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for KkNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KkNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KkNumber, D::Error> {
        let raw = String::deserialize(deserializer)?;
        KkNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    //! Synthetic KK numbers only: serials 9000 and up (domain.md §3).

    use super::*;
    use crate::finding::Severity;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 01);

    /// Recorded 12 Jun 2019 in Kec. Panca Lautang (73.14.01), serial 9001.
    const KK_NUMBER: &str = "7314011206199001";

    fn reject_rules(raw: &str) -> Vec<String> {
        let err = KkNumber::parse(raw).expect_err("should be rejected");
        assert!(err.findings().iter().all(|f| f.severity == Severity::Reject));
        err.findings().iter().map(|f| f.rule.clone()).collect()
    }

    fn warn_rules(raw: &str) -> Vec<String> {
        let (kk, findings) = check_kk(raw, TODAY);
        assert!(kk.is_some(), "warnings never drop the number: {findings:?}");
        assert!(findings.iter().all(|f| f.severity == Severity::Warn));
        findings.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn valid_kk_number_parses_and_exposes_its_parts() {
        let kk = KkNumber::parse(KK_NUMBER).expect("valid kk number");
        assert_eq!(kk.as_str(), KK_NUMBER);
        assert_eq!(kk.recorded_day(), 12);
        assert_eq!(kk.recorded_month(), 6);
        assert_eq!(kk.recorded_year_two_digits(), 19);
        assert_eq!(kk.inferred_recorded_year(TODAY), 2019);
        assert_eq!(kk.district_prefix(), "73.14.01");
        assert_eq!(kk.serial(), 9001);
        assert!(warn_rules(KK_NUMBER).is_empty());
    }

    #[test]
    fn parse_strips_spaces_dots_and_dashes() {
        for typed in ["7314 0112 0619 9001", "73.14.01.120619.9001", "731401-120619-9001"] {
            assert_eq!(KkNumber::parse(typed).expect(typed).as_str(), KK_NUMBER);
        }
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert_eq!(reject_rules("731401120619900"), ["kk_length"]);
        assert_eq!(reject_rules("73140112061990011"), ["kk_length"]);
    }

    #[test]
    fn non_digits_are_rejected() {
        assert_eq!(reject_rules("731401120619900I"), ["kk_digits"]);
    }

    #[test]
    fn regency_zero_is_rejected() {
        assert_eq!(reject_rules("7300011206199001"), ["kk_regency_zero"]);
    }

    #[test]
    fn kecamatan_zero_is_rejected() {
        assert_eq!(reject_rules("7314001206199001"), ["kk_district_zero"]);
    }

    #[test]
    fn day_outside_1_to_31_is_rejected_because_a_kk_has_no_plus_forty() {
        for day in ["00", "32", "41", "52", "71"] {
            let raw = format!("731401{day}06199001");
            assert_eq!(reject_rules(&raw), ["kk_day_range"], "day {day}");
        }
        assert!(KkNumber::parse("7314013106199001").is_ok());
        assert!(KkNumber::parse("7314010106199001").is_ok());
        let err = KkNumber::parse("7314015206199001").expect_err("day 52");
        assert!(err.to_string().contains("no +40"), "{err}");
    }

    #[test]
    fn month_outside_1_to_12_is_rejected() {
        assert_eq!(reject_rules("7314011200199001"), ["kk_month_range"]);
        assert_eq!(reject_rules("7314011213199001"), ["kk_month_range"]);
    }

    #[test]
    fn province_below_eleven_is_rejected() {
        assert_eq!(reject_rules("0514011206199001"), ["kk_province_range"]);
        assert_eq!(reject_rules("1014011206199001"), ["kk_province_range"]);
        assert!(KkNumber::parse("1114011206199001").is_ok());
    }

    #[test]
    fn serial_zero_is_rejected() {
        assert_eq!(reject_rules("7314011206190000"), ["kk_serial_zero"]);
    }

    #[test]
    fn check_reports_every_failed_reject_rule_at_once() {
        let (kk, findings) = check_kk("7300004513190000", TODAY);
        assert!(kk.is_none());
        let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["kk_regency_zero", "kk_district_zero", "kk_day_range", "kk_month_range", "kk_serial_zero"]);
    }

    #[test]
    fn impossible_calendar_date_is_only_a_warning() {
        assert_eq!(warn_rules("7314013102199001"), ["kk_calendar_date"]);
        assert_eq!(warn_rules("7314013106199001"), ["kk_calendar_date"]);
        assert!(warn_rules("7314012902209001").is_empty());
    }

    #[test]
    fn recording_date_after_today_is_a_warning() {
        assert_eq!(warn_rules("7314010204269001"), ["kk_future_recording_date"]);
        assert!(warn_rules("7314010103269001").is_empty());
    }

    #[test]
    fn region_prefix_not_in_table_is_only_a_warning() {
        assert_eq!(warn_rules("9101011206199001"), ["kk_region_unknown"]);
    }

    #[test]
    fn debug_masks_the_number_and_display_shows_it() {
        let kk = KkNumber::parse(KK_NUMBER).expect("valid kk number");
        assert_eq!(format!("{kk:?}"), "KkNumber(7314********9001)");
        assert_eq!(kk.to_string(), KK_NUMBER);
    }

    #[test]
    fn serde_uses_the_plain_string_and_deserializing_validates() {
        let kk = KkNumber::parse(KK_NUMBER).expect("valid kk number");
        let json = serde_json::to_string(&kk).expect("serialize");
        assert_eq!(json, format!("\"{KK_NUMBER}\""));
        assert_eq!(serde_json::from_str::<KkNumber>(&json).expect("deserialize"), kk);
        assert!(serde_json::from_str::<KkNumber>("\"7314014506199001\"").is_err());
    }
}
