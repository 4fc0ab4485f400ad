//! The 16-digit `PP KK CC DDMMYY SSSS` layout that NIK and KK numbers share, and its shared rules.
//!
//! Digits 1–6 are the issuing kecamatan, 7–12 a date (birth date for a NIK, recording date for a
//! KK number), 13–16 a serial. There is no check digit, so every rule here is structural.

use time::{Date, Month};

use super::region::regions;
use crate::finding::Finding;

/// What differs between the two number kinds: rule names, wording, and the day rule.
pub(super) struct Kind {
    /// Prefix of every rule name: `nik` or `kk`.
    pub rule_prefix: &'static str,
    /// How messages name the number: `nik` or `kk number`.
    pub noun: &'static str,
    /// What the user should do about a rejected or suspicious number.
    pub fix: &'static str,
    /// What the date in digits 7–12 is, for messages: `birth date` or `recording date`.
    pub date_noun: &'static str,
    /// Whether a day of 41–71 (day + 40, women's NIK) is allowed.
    pub day_plus_forty: bool,
}

/// Drops the separators people type or copy: whitespace, dots and dashes.
pub(super) fn normalise(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace() && *c != '.' && *c != '-').collect()
}

/// Every reject rule that the normalised text fails; empty means the text is a valid number.
///
/// Positional rules (province, regency, kecamatan, day, month, serial) only run when there are exactly 16
/// characters, and each only when its own digits are all digits: a misplaced or wrong-length number
/// says nothing reliable about its parts.
pub(super) fn reject_findings(kind: &Kind, normalised: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let chars: Vec<char> = normalised.chars().collect();
    let rule = |name: &str| format!("{}_{name}", kind.rule_prefix);

    if chars.len() != 16 {
        findings.push(Finding::reject(
            rule("length"),
            format!(
                "{} has {} characters after removing spaces, dots and dashes, but it must have \
                 exactly 16 digits; {}",
                kind.noun,
                chars.len(),
                kind.fix
            ),
        ));
    }

    let non_digits: Vec<String> = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_ascii_digit())
        .map(|(i, c)| format!("'{c}' at position {}", i + 1))
        .collect();
    if !non_digits.is_empty() {
        let shown = non_digits.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = match non_digits.len() {
            0..=3 => String::new(),
            n => format!(" and {} more", n - 3),
        };
        findings.push(Finding::reject(
            rule("digits"),
            format!("{} may contain only digits, but it has {shown}{more}; {}", kind.noun, kind.fix),
        ));
    }

    if chars.len() != 16 {
        return findings;
    }
    let part = |from: usize, to: usize| -> Option<u32> {
        chars[from..to].iter().try_fold(0u32, |acc, c| c.to_digit(10).map(|d| acc * 10 + d))
    };

    // Province codes run from 11 (Aceh) up: the first digit is an island group 1-9 (domain.md
    // §1.3), so 00-10 was never issued.
    if let Some(province) = part(0, 2).filter(|p| *p < 11) {
        findings.push(Finding::reject(
            rule("province_range"),
            format!("province code {province:02} in digits 1-2 is not a province (codes run from 11); {}", kind.fix),
        ));
    }
    if part(2, 4) == Some(0) {
        findings.push(Finding::reject(
            rule("regency_zero"),
            format!("regency code 00 in digits 3-4 is not a valid regency; {}", kind.fix),
        ));
    }
    if part(4, 6) == Some(0) {
        findings.push(Finding::reject(
            rule("district_zero"),
            format!("kecamatan code 00 in digits 5-6 is not a valid kecamatan; {}", kind.fix),
        ));
    }
    if let Some(day) = part(6, 8) {
        let valid = (1..=31).contains(&day) || (kind.day_plus_forty && (41..=71).contains(&day));
        if !valid {
            let allowed = if kind.day_plus_forty {
                "01-31 for men, 41-71 for women (day + 40)"
            } else {
                "01-31; a kk number has no +40 for women"
            };
            findings.push(Finding::reject(
                rule("day_range"),
                format!("day {day:02} in digits 7-8 is not a valid day ({allowed}); {}", kind.fix),
            ));
        }
    }
    if let Some(month) = part(8, 10).filter(|m| !(1..=12).contains(m)) {
        findings.push(Finding::reject(
            rule("month_range"),
            format!("month {month:02} in digits 9-10 is not a month (01-12); {}", kind.fix),
        ));
    }
    if part(12, 16) == Some(0) {
        findings.push(Finding::reject(
            rule("serial_zero"),
            format!("serial 0000 in digits 13-16 is never issued (serials run 0001-9999); {}", kind.fix),
        ));
    }
    findings
}

/// The two-digit number at `at` in a string already checked to be 16 ASCII digits.
pub(super) fn two_digits(digits: &str, at: usize) -> u8 {
    let b = digits.as_bytes();
    (b[at] - b'0') * 10 + (b[at + 1] - b'0')
}

/// The serial in digits 13–16 of a string already checked to be 16 ASCII digits.
pub(super) fn serial(digits: &str) -> u16 {
    digits.as_bytes()[12..16].iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
}

/// The kecamatan prefix, digits 1–6, in the dotted `PP.KK.CC` form of the region table.
pub(super) fn district_prefix(digits: &str) -> String {
    format!("{}.{}.{}", &digits[0..2], &digits[2..4], &digits[4..6])
}

/// First 4 and last 4 digits visible, the rest starred: enough to tell numbers apart in a log.
pub(super) fn masked(digits: &str) -> String {
    format!("{}********{}", &digits[0..4], &digits[12..16])
}

/// The century rule of domain.md §1.1: a two-digit year above today's is last century.
///
/// Wrong for anyone over 100; callers prefer a captured four-digit year when they have one.
pub(super) fn infer_year(two_digit_year: u8, today: Date) -> i32 {
    let this_two = today.year().rem_euclid(100);
    let this_century = today.year() - this_two;
    let yy = i32::from(two_digit_year);
    if yy > this_two { this_century - 100 + yy } else { this_century + yy }
}

/// Warning when day and month (and year) cannot be a real date, e.g. 31/02.
pub(super) fn calendar_warning(kind: &Kind, year: i32, month: u8, day: u8) -> Option<Finding> {
    let real = Month::try_from(month).ok().is_some_and(|m| Date::from_calendar_date(year, m, day).is_ok());
    (!real).then(|| {
        Finding::warn(
            format!("{}_calendar_date", kind.rule_prefix),
            format!(
                "{} {day:02}/{month:02}/{year} in digits 7-12 is not a real calendar date; {}",
                kind.date_noun, kind.fix
            ),
        )
    })
}

/// Warning when the date lies after `today`.
pub(super) fn future_warning(
    kind: &Kind,
    rule: &str,
    (year, month, day): (i32, u8, u8),
    today: Date,
) -> Option<Finding> {
    let today_parts = (today.year(), u8::from(today.month()), today.day());
    ((year, month, day) > today_parts).then(|| {
        Finding::warn(
            format!("{}_{rule}", kind.rule_prefix),
            format!(
                "{} {day:02}/{month:02}/{year} in digits 7-12 is after today ({today}); {}",
                kind.date_noun, kind.fix
            ),
        )
    })
}

/// Warning when digits 1–6 are not a kecamatan of the current region table.
///
/// Only a warning: the prefix is where the number was first issued and never changes, so it can
/// name a kecamatan that a later split renumbered (Merauke was 91.01, is now 93.01).
pub(super) fn region_warning(kind: &Kind, digits: &str) -> Option<Finding> {
    let prefix = district_prefix(digits);
    (!regions().district_exists(&prefix)).then(|| {
        Finding::warn(
            format!("{}_region_unknown", kind.rule_prefix),
            format!(
                "region prefix {prefix} in digits 1-6 is not a kecamatan in the Kemendagri 2025 \
                 region table; numbers issued before a region was split keep the old code (e.g. \
                 Merauke 91.01 is now 93.01), so keep the {} if it matches the card",
                kind.noun
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn normalise_drops_spaces_dots_dashes_and_other_whitespace() {
        assert_eq!(normalise(" 73.14-01\t1508\u{a0}85 9001 "), "7314011508859001");
    }

    #[test]
    fn century_rule_puts_years_above_this_year_in_the_last_century() {
        let today = date!(2026 - 03 - 01);
        assert_eq!(infer_year(85, today), 1985);
        assert_eq!(infer_year(27, today), 1927);
        assert_eq!(infer_year(26, today), 2026);
        assert_eq!(infer_year(0, today), 2000);
        assert_eq!(infer_year(99, date!(2101 - 01 - 01)), 2099);
        assert_eq!(infer_year(1, date!(2101 - 01 - 01)), 2101);
    }
}
