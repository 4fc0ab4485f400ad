//! NIK (Nomor Induk Kependudukan): the validated 16-digit personal number and its checks (domain.md §1.1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;

use super::IdError;
use super::layout::{self, Kind};
use crate::finding::Finding;

const NIK: Kind = Kind {
    rule_prefix: "nik",
    noun: "nik",
    fix: "re-check the nik against the KTP or the KK card",
    date_noun: "birth date",
    day_plus_forty: true,
};

/// A NIK that passed every reject rule, stored as its 16 digits without separators.
///
/// The only way to get one is [`Nik::parse`] (or [`check_nik`], or deserializing, which parses).
/// `Debug` masks the middle digits so a NIK never reaches a log by accident; `Display` and
/// [`Nik::as_str`] give the full number for storage and for screens that must show it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nik(String);

/// Sex as captured on the member form (code 1 laki-laki, 2 perempuan) and as implied by a NIK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// Laki-laki, form code 1; the NIK birth day is the plain day (01–31).
    Male,
    /// Perempuan, form code 2; the NIK birth day is day + 40 (41–71).
    Female,
}

/// A captured birth date whose day or month may be unknown (form code 98), for cross-checking a NIK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BirthDate {
    /// Four-digit year; also settles the century the NIK's two-digit year cannot.
    pub year: i32,
    /// Month 1–12, or `None` when unknown (98 on the form).
    pub month: Option<u8>,
    /// Day 1–31, or `None` when unknown (98 on the form).
    pub day: Option<u8>,
}

/// What else is known about the person, so [`check_nik`] can cross-check the NIK against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NikContext {
    /// The captured sex, if any; a disagreement with the +40 rule is a warning.
    pub sex: Option<Sex>,
    /// The captured birth date, if any; a disagreement with digits 7–12 is a warning.
    pub birth_date: Option<BirthDate>,
    /// Today's date, passed in (sync-core never reads the clock), for the century and future checks.
    pub today: Date,
}

impl NikContext {
    /// A context with nothing captured yet, only today's date.
    pub fn new(today: Date) -> Self {
        NikContext { sex: None, birth_date: None, today }
    }
}

impl Sex {
    /// The sex for a member-form code: 1 male, 2 female, anything else `None`.
    pub fn from_code(code: i64) -> Option<Sex> {
        match code {
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            _ => None,
        }
    }

    /// The member-form code for this sex: 1 male, 2 female.
    pub fn code(self) -> i64 {
        match self {
            Sex::Male => 1,
            Sex::Female => 2,
        }
    }
}

impl Nik {
    /// Validates a NIK as typed: strips spaces, dots and dashes, then applies every reject rule.
    ///
    /// The error carries one finding per failed rule. Warnings (calendar date, region, mismatches)
    /// are not checked here; use [`check_nik`] for those.
    pub fn parse(raw: &str) -> Result<Nik, IdError> {
        let digits = layout::normalise(raw);
        let findings = layout::reject_findings(&NIK, &digits);
        if findings.is_empty() { Ok(Nik(digits)) } else { Err(IdError::InvalidNik { findings }) }
    }

    /// The 16 digits, without separators, for storage and comparison.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sex the NIK encodes: female when the birth day has 40 added (41–71).
    pub fn sex(&self) -> Sex {
        if self.raw_day() > 40 { Sex::Female } else { Sex::Male }
    }

    /// The birth day of the month (1–31), with the +40 for women removed.
    pub fn birth_day(&self) -> u8 {
        let day = self.raw_day();
        if day > 40 { day - 40 } else { day }
    }

    /// The birth month (1–12), digits 9–10.
    pub fn birth_month(&self) -> u8 {
        layout::two_digits(&self.0, 8)
    }

    /// The last two digits of the birth year (0–99), digits 11–12; the century is not encoded.
    pub fn birth_year_two_digits(&self) -> u8 {
        layout::two_digits(&self.0, 10)
    }

    /// The birth year by the century rule: above today's two-digit year means 19YY, else 20YY.
    ///
    /// Wrong for people over 100; prefer a captured birth year when there is one.
    pub fn inferred_birth_year(&self, today: Date) -> i32 {
        layout::infer_year(self.birth_year_two_digits(), today)
    }

    /// The kecamatan of first registration, digits 1–6 as `PP.KK.CC` (e.g. `73.14.01`).
    ///
    /// It may not be in the current region table: NIKs keep the code they were issued under.
    pub fn district_prefix(&self) -> String {
        layout::district_prefix(&self.0)
    }

    /// The serial number, digits 13–16 (1–9999).
    pub fn serial(&self) -> u16 {
        layout::serial(&self.0)
    }

    /// The NIK with the middle eight digits starred (`7314********9001`), for logs and lists.
    pub fn masked(&self) -> String {
        layout::masked(&self.0)
    }

    /// Digits 7–8 as written, 41–71 for women.
    fn raw_day(&self) -> u8 {
        layout::two_digits(&self.0, 6)
    }

    /// Every warning rule for this (already valid) NIK, in the order of domain.md §1.1.
    fn warnings(&self, ctx: &NikContext) -> Vec<Finding> {
        let two_digit_year = self.birth_year_two_digits();
        // A captured year settles the century when it agrees on the last two digits.
        let year = ctx
            .birth_date
            .map(|b| b.year)
            .filter(|y| y.rem_euclid(100) == i32::from(two_digit_year))
            .unwrap_or_else(|| self.inferred_birth_year(ctx.today));
        let (month, day) = (self.birth_month(), self.birth_day());

        let mut findings = Vec::new();
        findings.extend(layout::calendar_warning(&NIK, year, month, day));
        findings.extend(layout::region_warning(&NIK, &self.0));
        if let Some(captured) = ctx.sex.filter(|s| *s != self.sex()) {
            findings.push(self.sex_mismatch(captured));
        }
        if let Some(captured) = ctx.birth_date {
            findings.extend(self.birth_date_mismatch(captured));
        }
        findings.extend(layout::future_warning(&NIK, "future_birth_date", (year, month, day), ctx.today));
        findings
    }

    fn sex_mismatch(&self, captured: Sex) -> Finding {
        let (nik_says, captured_says) = match captured {
            Sex::Male => ("a woman", "male"),
            Sex::Female => ("a man", "female"),
        };
        Finding::warn(
            "nik_sex_mismatch",
            format!(
                "day {:02} in digits 7-8 marks {nik_says} (a woman's nik birth day is day + 40), \
                 but the captured sex is {captured_says}; check the sex and the nik against the KTP",
                self.raw_day()
            ),
        )
    }

    fn birth_date_mismatch(&self, captured: BirthDate) -> Option<Finding> {
        let mut parts = Vec::new();
        if let Some(day) = captured.day.filter(|d| *d != self.birth_day()) {
            parts.push(format!("day (nik {:02}, captured {day:02})", self.birth_day()));
        }
        if let Some(month) = captured.month.filter(|m| *m != self.birth_month()) {
            parts.push(format!("month (nik {:02}, captured {month:02})", self.birth_month()));
        }
        let two_digit_year = self.birth_year_two_digits();
        if captured.year.rem_euclid(100) != i32::from(two_digit_year) {
            parts.push(format!("year (nik ..{two_digit_year:02}, captured {})", captured.year));
        }
        (!parts.is_empty()).then(|| {
            Finding::warn(
                "nik_birth_date_mismatch",
                format!(
                    "the birth date in digits 7-12 disagrees with the captured birth date on {}; \
                     a corrected birth date does not change the nik, so check both against the KTP",
                    parts.join(", ")
                ),
            )
        })
    }
}

/// Checks a NIK as typed and returns every finding at once, for a form to show together.
///
/// When a reject rule fails, the result has no `Nik` and lists every failed reject rule. Otherwise
/// it has the `Nik` and lists the warnings: impossible calendar date, region prefix not in the
/// table, mismatch with the captured sex or birth date, birth date after `ctx.today`.
pub fn check_nik(raw: &str, ctx: &NikContext) -> (Option<Nik>, Vec<Finding>) {
    match Nik::parse(raw) {
        Ok(nik) => {
            let warnings = nik.warnings(ctx);
            (Some(nik), warnings)
        }
        Err(err) => (None, err.into_findings()),
    }
}

impl fmt::Display for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nik({})", self.masked())
    }
}

impl FromStr for Nik {
    type Err = IdError;

    fn from_str(raw: &str) -> Result<Nik, IdError> {
        Nik::parse(raw)
    }
}

impl AsRef<str> for Nik {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Nik {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Nik {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Nik, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Nik::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    //! Synthetic NIKs only: serials 9000 and up (domain.md §3).

    use super::*;
    use crate::finding::Severity;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 01);

    /// Male, 15 Aug 1985, Kec. Panca Lautang (73.14.01), serial 9001.
    const MAN: &str = "7314011508859001";
    /// Female (day 55 = 15 + 40), 15 Aug 1985, Kec. Panca Lautang, serial 9002.
    const WOMAN: &str = "7314015508859002";

    fn rules(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule.as_str()).collect()
    }

    fn reject_rules(raw: &str) -> Vec<String> {
        let err = Nik::parse(raw).expect_err("should be rejected");
        assert!(err.findings().iter().all(|f| f.severity == Severity::Reject));
        err.findings().iter().map(|f| f.rule.clone()).collect()
    }

    fn warn_rules(raw: &str, ctx: &NikContext) -> Vec<String> {
        let (nik, findings) = check_nik(raw, ctx);
        assert!(nik.is_some(), "warnings never drop the nik: {findings:?}");
        assert!(findings.iter().all(|f| f.severity == Severity::Warn));
        findings.into_iter().map(|f| f.rule).collect()
    }

    fn ctx() -> NikContext {
        NikContext::new(TODAY)
    }

    #[test]
    fn valid_nik_parses_and_exposes_its_parts() {
        let nik = Nik::parse(MAN).expect("valid nik");
        assert_eq!(nik.as_str(), MAN);
        assert_eq!(nik.sex(), Sex::Male);
        assert_eq!(nik.birth_day(), 15);
        assert_eq!(nik.birth_month(), 8);
        assert_eq!(nik.birth_year_two_digits(), 85);
        assert_eq!(nik.inferred_birth_year(TODAY), 1985);
        assert_eq!(nik.district_prefix(), "73.14.01");
        assert_eq!(nik.serial(), 9001);
        assert_eq!(nik.masked(), "7314********9001");
    }

    #[test]
    fn valid_nik_without_context_has_no_findings() {
        let (nik, findings) = check_nik(MAN, &ctx());
        assert_eq!(nik.map(|n| n.to_string()).as_deref(), Some(MAN));
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn parse_strips_spaces_dots_and_dashes() {
        for typed in ["73 14 01 150885 9001", "73.14.01.150885.9001", "731401-150885-9001"] {
            assert_eq!(Nik::parse(typed).expect(typed).as_str(), MAN);
        }
    }

    #[test]
    fn woman_has_forty_added_to_birth_day() {
        let nik = Nik::parse(WOMAN).expect("valid nik");
        assert_eq!(nik.sex(), Sex::Female);
        assert_eq!(nik.birth_day(), 15);
        for day in ["41", "71"] {
            let raw = format!("731401{day}08859003");
            assert_eq!(Nik::parse(&raw).expect(&raw).sex(), Sex::Female);
        }
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert_eq!(reject_rules("731401150885900"), ["nik_length"]);
        assert_eq!(reject_rules("73140115088590011"), ["nik_length"]);
        assert_eq!(reject_rules(""), ["nik_length"]);
        let err = Nik::parse("731401150885900").expect_err("15 digits");
        assert!(err.to_string().contains("has 15 characters"), "{err}");
    }

    #[test]
    fn non_digits_are_rejected_with_their_position() {
        assert_eq!(reject_rules("73140115088S9001"), ["nik_digits"]);
        let err = Nik::parse("73140115088S9001").expect_err("letter");
        assert!(err.to_string().contains("'S' at position 12"), "{err}");
        assert_eq!(reject_rules("73140115088x"), ["nik_length", "nik_digits"]);
    }

    #[test]
    fn regency_zero_is_rejected() {
        assert_eq!(reject_rules("7300011508859001"), ["nik_regency_zero"]);
    }

    #[test]
    fn kecamatan_zero_is_rejected() {
        assert_eq!(reject_rules("7314001508859001"), ["nik_district_zero"]);
    }

    #[test]
    fn day_outside_1_to_31_and_41_to_71_is_rejected() {
        for day in ["00", "32", "40", "72", "99"] {
            let raw = format!("731401{day}08859001");
            assert_eq!(reject_rules(&raw), ["nik_day_range"], "day {day}");
        }
        for day in ["01", "31", "41", "71"] {
            let raw = format!("731401{day}08859001");
            assert!(Nik::parse(&raw).is_ok(), "day {day}");
        }
        let err = Nik::parse("7314013508859001").expect_err("day 35");
        assert!(err.to_string().contains("day 35 in digits 7-8"), "{err}");
    }

    #[test]
    fn month_outside_1_to_12_is_rejected() {
        assert_eq!(reject_rules("7314011500859001"), ["nik_month_range"]);
        assert_eq!(reject_rules("7314011513859001"), ["nik_month_range"]);
        let err = Nik::parse("7314011513859001").expect_err("month 13");
        assert!(err.to_string().contains("month 13 in digits 9-10"), "{err}");
    }

    #[test]
    fn province_below_eleven_is_rejected() {
        assert_eq!(reject_rules("0514011206199001"), ["nik_province_range"]);
        assert_eq!(reject_rules("1014011206199001"), ["nik_province_range"]);
        assert!(Nik::parse("1114011206199001").is_ok());
    }

    #[test]
    fn serial_zero_is_rejected() {
        assert_eq!(reject_rules("7314011508850000"), ["nik_serial_zero"]);
    }

    #[test]
    fn check_reports_every_failed_reject_rule_at_once() {
        let (nik, findings) = check_nik("7300003213850000", &ctx());
        assert!(nik.is_none());
        assert_eq!(
            rules(&findings),
            ["nik_regency_zero", "nik_district_zero", "nik_day_range", "nik_month_range", "nik_serial_zero"]
        );
    }

    #[test]
    fn impossible_calendar_date_is_only_a_warning() {
        assert_eq!(warn_rules("7314013102859001", &ctx()), ["nik_calendar_date"]);
        // 31 Feb for a woman: day 71.
        assert_eq!(warn_rules("7314017102859002", &ctx()), ["nik_calendar_date"]);
        assert_eq!(warn_rules("7314013104859001", &ctx()), ["nik_calendar_date"]);
        // 29 Feb exists in 1984, not in 1985.
        assert!(warn_rules("7314012902849001", &ctx()).is_empty());
        assert_eq!(warn_rules("7314012902859001", &ctx()), ["nik_calendar_date"]);
    }

    #[test]
    fn region_prefix_not_in_table_is_only_a_warning() {
        // Kec. 73.14.99 does not exist.
        assert_eq!(warn_rules("7314991508859001", &ctx()), ["nik_region_unknown"]);
    }

    #[test]
    fn merauke_nik_issued_before_the_papua_split_is_kept_with_a_warning() {
        // Kab. Merauke was 91.01 until 2022; it is 93.01 in the 2025 table.
        let (nik, findings) = check_nik("9101011508859001", &ctx());
        assert_eq!(nik.map(|n| n.district_prefix()).as_deref(), Some("91.01.01"));
        assert_eq!(rules(&findings), ["nik_region_unknown"]);
        assert!(findings[0].message.contains("91.01.01"), "{findings:?}");
        assert!(warn_rules("9301011508859001", &ctx()).is_empty());
    }

    #[test]
    fn captured_sex_that_disagrees_with_the_plus_forty_rule_is_a_warning() {
        let as_male = NikContext { sex: Some(Sex::Male), ..ctx() };
        let as_female = NikContext { sex: Some(Sex::Female), ..ctx() };
        assert_eq!(warn_rules(WOMAN, &as_male), ["nik_sex_mismatch"]);
        assert_eq!(warn_rules(MAN, &as_female), ["nik_sex_mismatch"]);
        assert!(warn_rules(WOMAN, &as_female).is_empty());
        assert!(warn_rules(MAN, &as_male).is_empty());
    }

    #[test]
    fn captured_birth_date_that_disagrees_is_a_warning() {
        let with = |year, month, day| NikContext { birth_date: Some(BirthDate { year, month, day }), ..ctx() };
        assert!(warn_rules(MAN, &with(1985, Some(8), Some(15))).is_empty());
        assert!(warn_rules(WOMAN, &with(1985, Some(8), Some(15))).is_empty());
        assert!(warn_rules(MAN, &with(1985, None, None)).is_empty());
        assert_eq!(warn_rules(MAN, &with(1985, Some(8), Some(16))), ["nik_birth_date_mismatch"]);
        assert_eq!(warn_rules(MAN, &with(1985, Some(9), None)), ["nik_birth_date_mismatch"]);
        assert_eq!(warn_rules(MAN, &with(1986, None, None)), ["nik_birth_date_mismatch"]);
        let (_, findings) = check_nik(MAN, &with(1986, Some(8), Some(16)));
        let message = &findings[0].message;
        assert!(message.contains("day (nik 15, captured 16)"), "{message}");
        assert!(message.contains("year (nik ..85, captured 1986)"), "{message}");
    }

    #[test]
    fn birth_date_after_today_is_a_warning() {
        // 15 Aug 26 with today 1 Mar 2026: the century rule says 2026, which is still ahead.
        assert_eq!(warn_rules("7314011508269001", &ctx()), ["nik_future_birth_date"]);
        assert!(warn_rules("7314011502269001", &ctx()).is_empty());
        assert!(warn_rules("7314010103269001", &ctx()).is_empty());
        assert_eq!(warn_rules("7314010203269001", &ctx()), ["nik_future_birth_date"]);
    }

    #[test]
    fn captured_birth_year_settles_the_century() {
        let born_1926 =
            NikContext { birth_date: Some(BirthDate { year: 1926, month: Some(8), day: Some(15) }), ..ctx() };
        assert!(warn_rules("7314011508269001", &born_1926).is_empty());
        // 29 Feb 00: real in 2000, not in 1900.
        let born_1900 = NikContext { birth_date: Some(BirthDate { year: 1900, month: None, day: None }), ..ctx() };
        assert!(warn_rules("7314012902009001", &ctx()).is_empty());
        assert_eq!(warn_rules("7314012902009001", &born_1900), ["nik_calendar_date"]);
    }

    #[test]
    fn century_is_inferred_from_today() {
        let year_of = |raw: &str| Nik::parse(raw).expect(raw).inferred_birth_year(TODAY);
        assert_eq!(year_of("7314011508859001"), 1985);
        assert_eq!(year_of("7314011508279001"), 1927);
        assert_eq!(year_of("7314011508269001"), 2026);
        assert_eq!(year_of("7314011508059001"), 2005);
    }

    #[test]
    fn debug_masks_the_nik_and_display_shows_it() {
        let nik = Nik::parse(MAN).expect("valid nik");
        let debug = format!("{nik:?} {:?}", Some(&nik));
        assert_eq!(debug, "Nik(7314********9001) Some(Nik(7314********9001))");
        assert!(!debug.contains(MAN));
        assert_eq!(nik.to_string(), MAN);
    }

    #[test]
    fn serde_uses_the_plain_string_and_deserializing_validates() {
        let nik = Nik::parse(MAN).expect("valid nik");
        let json = serde_json::to_string(&nik).expect("serialize");
        assert_eq!(json, format!("\"{MAN}\""));
        let back: Nik = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, nik);
        let err = serde_json::from_str::<Nik>("\"7314011513859001\"").expect_err("month 13");
        assert!(err.to_string().contains("month 13"), "{err}");
    }

    #[test]
    fn sex_codes_follow_the_member_form() {
        assert_eq!(Sex::from_code(1), Some(Sex::Male));
        assert_eq!(Sex::from_code(2), Some(Sex::Female));
        assert_eq!(Sex::from_code(0), None);
        assert_eq!(Sex::from_code(98), None);
        assert_eq!(Sex::Female.code(), 2);
    }
}
