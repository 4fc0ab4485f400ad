//! Validated Kemendagri region codes: village (`73.14.01.1001`), kecamatan (`73.14.01`), regency (`73.14`).
//!
//! Each code is stored dotted. `parse` accepts the dotted or the plain-digit form and requires the
//! code to be in the region table; `parse_format_only` checks the shape alone, for data recorded
//! under an older table. Deserializing checks the shape only, so stored data always loads.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::table::regions;
use crate::finding::Finding;
use crate::ids::IdError;

/// A desa/kelurahan code `PP.KK.CC.DDDD`, where D is 1 (kelurahan), 2 (desa) or 3 (desa adat).
///
/// Always well-formed; in the region table too when built by [`VillageCode::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VillageCode(String);

/// A kecamatan code `PP.KK.CC`, the unit supervisors and NIK prefixes work in.
///
/// Always well-formed; in the region table too when built by [`DistrictCode::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DistrictCode(String);

/// A kabupaten/kota code `PP.KK`: 01–69 are kabupaten, 71–99 kota.
///
/// Always well-formed; in the region table too when built by [`RegencyCode::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegencyCode(String);

/// Which kind of village a code names, from the first digit of its last four (domain.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VillageKind {
    /// Kelurahan (first digit 1): an urban village headed by a civil servant.
    Kelurahan,
    /// Desa (first digit 2): a rural village with an elected head.
    Desa,
    /// Desa adat (first digit 3): a customary village; in 2025 only in Kab. Jayapura.
    DesaAdat,
}

/// How one level of code is written and named in messages.
struct Level {
    noun: &'static str,
    rule: &'static str,
    widths: &'static [usize],
    form: &'static str,
    example: &'static str,
    note: &'static str,
}

const VILLAGE: Level = Level {
    noun: "village code",
    rule: "village_code",
    widths: &[2, 2, 2, 4],
    form: "PP.KK.CC.DDDD",
    example: "73.14.01.1001 or 7314011001",
    note: ", where DDDD starts with 1 for a kelurahan, 2 for a desa or 3 for a desa adat",
};

const DISTRICT: Level = Level {
    noun: "kecamatan code",
    rule: "district_code",
    widths: &[2, 2, 2],
    form: "PP.KK.CC",
    example: "73.14.01 or 731401",
    note: "",
};

const REGENCY: Level = Level {
    noun: "regency code",
    rule: "regency_code",
    widths: &[2, 2],
    form: "PP.KK",
    example: "73.14 or 7314",
    note: "",
};

impl Level {
    /// The dotted form of `raw` if it has this level's shape, dotted or as plain digits.
    fn dotted(&self, raw: &str) -> Option<String> {
        let trimmed = raw.trim();
        let total: usize = self.widths.iter().sum();
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let mut parts = Vec::with_capacity(self.widths.len());
        if trimmed.len() == total && all_digits(trimmed) {
            let mut rest = trimmed;
            for width in self.widths {
                let (part, tail) = rest.split_at(*width);
                parts.push(part);
                rest = tail;
            }
        } else {
            parts.extend(trimmed.split('.'));
        }
        let shaped = parts.len() == self.widths.len()
            && parts.iter().zip(self.widths).all(|(part, width)| part.len() == *width && all_digits(part));
        shaped.then(|| parts.join("."))
    }

    fn format_error(&self, raw: &str) -> IdError {
        let mut shown: String = raw.trim().chars().take(40).collect();
        if raw.trim().chars().count() > 40 {
            shown.push('…');
        }
        IdError::InvalidRegionCode {
            findings: vec![Finding::reject(
                format!("{}_format", self.rule),
                format!(
                    "{} '{shown}' is not in the form {} (e.g. {}){}; re-type the code from the \
                     region list",
                    self.noun, self.form, self.example, self.note
                ),
            )],
        }
    }

    fn unknown_error(&self, code: &str) -> IdError {
        IdError::UnknownRegionCode {
            findings: vec![Finding::reject(
                format!("{}_unknown", self.rule),
                format!(
                    "unknown {} {code}: not in the Kemendagri 2025 region table; check the code \
                     against the region list",
                    self.noun
                ),
            )],
        }
    }
}

impl VillageCode {
    /// Validates a village code typed dotted or as 10 digits, and requires it in the region table.
    pub fn parse(raw: &str) -> Result<VillageCode, IdError> {
        let code = VillageCode::parse_format_only(raw)?;
        if code.is_known() { Ok(code) } else { Err(VILLAGE.unknown_error(&code.0)) }
    }

    /// Validates the shape only, for codes recorded under an older table (e.g. before a split).
    pub fn parse_format_only(raw: &str) -> Result<VillageCode, IdError> {
        VILLAGE
            .dotted(raw)
            .filter(|code| matches!(code.as_bytes()[9], b'1'..=b'3'))
            .map(VillageCode)
            .ok_or_else(|| VILLAGE.format_error(raw))
    }

    /// A code taken from the embedded table, which the table's tests prove well-formed.
    pub(super) fn from_table(code: &str) -> VillageCode {
        VillageCode(code.to_owned())
    }

    /// The dotted code, e.g. `73.14.01.1001`, for storage and display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kecamatan the village belongs to (`73.14.01`).
    pub fn district(&self) -> DistrictCode {
        DistrictCode(self.0[..8].to_owned())
    }

    /// The regency the village belongs to (`73.14`).
    pub fn regency(&self) -> RegencyCode {
        RegencyCode(self.0[..5].to_owned())
    }

    /// The two-digit province code (`73`).
    pub fn province_code(&self) -> &str {
        &self.0[..2]
    }

    /// Kelurahan, desa or desa adat, from the first digit of the last four.
    pub fn kind(&self) -> VillageKind {
        match self.0.as_bytes()[9] {
            b'1' => VillageKind::Kelurahan,
            b'2' => VillageKind::Desa,
            // The format check admits only 1, 2 and 3 here.
            _ => VillageKind::DesaAdat,
        }
    }

    /// The official name, or `None` when the code is not in the current table.
    pub fn name(&self) -> Option<&'static str> {
        regions().village_name(&self.0)
    }

    /// Whether the code is in the current region table (always true after [`VillageCode::parse`]).
    pub fn is_known(&self) -> bool {
        regions().village_exists(&self.0)
    }
}

impl DistrictCode {
    /// Validates a kecamatan code typed dotted or as 6 digits, and requires it in the region table.
    pub fn parse(raw: &str) -> Result<DistrictCode, IdError> {
        let code = DistrictCode::parse_format_only(raw)?;
        if code.is_known() { Ok(code) } else { Err(DISTRICT.unknown_error(&code.0)) }
    }

    /// Validates the shape only, for codes recorded under an older table (e.g. a NIK prefix).
    pub fn parse_format_only(raw: &str) -> Result<DistrictCode, IdError> {
        DISTRICT.dotted(raw).map(DistrictCode).ok_or_else(|| DISTRICT.format_error(raw))
    }

    /// A code taken from the embedded table, which the table's tests prove well-formed.
    pub(super) fn from_table(code: &str) -> DistrictCode {
        DistrictCode(code.to_owned())
    }

    /// The dotted code, e.g. `73.14.01`, for storage and display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The regency the kecamatan belongs to (`73.14`).
    pub fn regency(&self) -> RegencyCode {
        RegencyCode(self.0[..5].to_owned())
    }

    /// The two-digit province code (`73`).
    pub fn province_code(&self) -> &str {
        &self.0[..2]
    }

    /// The official name, or `None` when the code is not in the current table.
    pub fn name(&self) -> Option<&'static str> {
        regions().district_name(&self.0)
    }

    /// Whether the code is in the current region table (always true after [`DistrictCode::parse`]).
    pub fn is_known(&self) -> bool {
        regions().district_exists(&self.0)
    }
}

impl RegencyCode {
    /// Validates a regency code typed dotted or as 4 digits, and requires it in the region table.
    pub fn parse(raw: &str) -> Result<RegencyCode, IdError> {
        let code = RegencyCode::parse_format_only(raw)?;
        if code.is_known() { Ok(code) } else { Err(REGENCY.unknown_error(&code.0)) }
    }

    /// Validates the shape only, for codes recorded under an older table (e.g. Merauke's 91.01).
    pub fn parse_format_only(raw: &str) -> Result<RegencyCode, IdError> {
        REGENCY.dotted(raw).map(RegencyCode).ok_or_else(|| REGENCY.format_error(raw))
    }

    /// A code taken from the embedded table, which the table's tests prove well-formed.
    pub(super) fn from_table(code: &str) -> RegencyCode {
        RegencyCode(code.to_owned())
    }

    /// The dotted code, e.g. `73.14`, for storage and display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two-digit province code (`73`).
    pub fn province_code(&self) -> &str {
        &self.0[..2]
    }

    /// Whether this is a kota (71–99) rather than a kabupaten (01–69).
    pub fn is_city(&self) -> bool {
        self.0[3..5] >= *"71"
    }

    /// The official name with its `Kabupaten`/`Kota` prefix, or `None` when not in the table.
    pub fn name(&self) -> Option<&'static str> {
        regions().regency_name(&self.0)
    }

    /// Whether the code is in the current region table (always true after [`RegencyCode::parse`]).
    pub fn is_known(&self) -> bool {
        regions().regency_exists(&self.0)
    }
}

impl fmt::Display for VillageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VillageKind::Kelurahan => "kelurahan",
            VillageKind::Desa => "desa",
            VillageKind::DesaAdat => "desa adat",
        })
    }
}

/// Display, `AsRef<str>`, `FromStr` (full validation) and serde (shape only) for one code type.
macro_rules! code_traits {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = IdError;

            fn from_str(raw: &str) -> Result<$ty, IdError> {
                $ty::parse(raw)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let raw = String::deserialize(deserializer)?;
                $ty::parse_format_only(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

code_traits!(VillageCode);
code_traits!(DistrictCode);
code_traits!(RegencyCode);

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(err: &IdError) -> &str {
        &err.findings()[0].rule
    }

    #[test]
    fn village_code_parses_dotted_or_plain_digits_to_dotted() {
        for typed in ["73.14.01.1001", "7314011001", " 73.14.01.1001 "] {
            assert_eq!(VillageCode::parse(typed).expect(typed).as_str(), "73.14.01.1001");
        }
    }

    #[test]
    fn village_code_exposes_its_parents_kind_and_name() {
        let code = VillageCode::parse("73.14.01.1001").expect("Bilokka");
        assert_eq!(code.district().as_str(), "73.14.01");
        assert_eq!(code.regency().as_str(), "73.14");
        assert_eq!(code.province_code(), "73");
        assert_eq!(code.kind(), VillageKind::Kelurahan);
        assert_eq!(code.name(), Some("Bilokka"));
        assert_eq!(code.to_string(), "73.14.01.1001");
        assert_eq!(VillageCode::parse("73.14.01.1002").expect("exists").name(), Some("Wette'E"));
    }

    #[test]
    fn village_kind_comes_from_the_first_of_the_last_four_digits() {
        // In 73.14.01 the serial runs on across kinds: kelurahan 1001-1003, then desa 2004.
        let wanio = VillageCode::parse("73.14.01.2004").expect("Wanio");
        assert_eq!(wanio.kind(), VillageKind::Desa);
        assert_eq!(wanio.name(), Some("Wanio"));
        assert!(VillageCode::parse("73.14.01.2001").is_err());
        let yoboi = VillageCode::parse("91.03.01.3007").expect("Desa Adat Yoboi");
        assert_eq!(yoboi.kind(), VillageKind::DesaAdat);
        assert_eq!(VillageKind::DesaAdat.to_string(), "desa adat");
    }

    #[test]
    fn badly_shaped_village_code_is_rejected_with_the_expected_form() {
        for raw in [
            "",
            "73.14.01",
            "73.14.1.1001",
            "73.14.01.4001",
            "73.14.01.0001",
            "7314011",
            "731401100",
            "73-14-01-1001",
            "73.14.01.1001.",
            "73.14.01.10O1",
        ] {
            let err = VillageCode::parse(raw).expect_err(raw);
            assert!(matches!(err, IdError::InvalidRegionCode { .. }), "{raw}");
            assert_eq!(rule_of(&err), "village_code_format");
            assert!(err.to_string().contains("PP.KK.CC.DDDD (e.g. 73.14.01.1001"), "{err}");
            assert!(VillageCode::parse_format_only(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn unknown_village_code_is_rejected_but_loads_format_only() {
        let err = VillageCode::parse("7314011999").expect_err("no such village");
        assert!(matches!(err, IdError::UnknownRegionCode { .. }));
        assert_eq!(rule_of(&err), "village_code_unknown");
        assert_eq!(
            err.to_string(),
            "unknown village code 73.14.01.1999: not in the Kemendagri 2025 region table; \
             check the code against the region list"
        );
        let old = VillageCode::parse_format_only("73.14.01.1999").expect("shape is fine");
        assert!(!old.is_known());
        assert_eq!(old.name(), None);
    }

    #[test]
    fn district_code_is_validated_and_named() {
        let code = DistrictCode::parse("731401").expect("Panca Lautang");
        assert_eq!(code.as_str(), "73.14.01");
        assert_eq!(code.name(), Some("Panca Lautang"));
        assert_eq!(code.regency().as_str(), "73.14");
        assert_eq!(code.province_code(), "73");
        let unknown = DistrictCode::parse("73.14.99").expect_err("no such kecamatan");
        assert_eq!(rule_of(&unknown), "district_code_unknown");
        let bad = DistrictCode::parse("73.14.1").expect_err("bad shape");
        assert_eq!(rule_of(&bad), "district_code_format");
        assert!(bad.to_string().contains("PP.KK.CC"), "{bad}");
        // A pre-2022 Merauke NIK prefix still has a well-formed kecamatan code.
        assert!(!DistrictCode::parse_format_only("91.01.01").expect("shape").is_known());
    }

    #[test]
    fn regency_code_is_validated_named_and_typed() {
        let sidrap = RegencyCode::parse("7314").expect("Sidrap");
        assert_eq!(sidrap.as_str(), "73.14");
        assert_eq!(sidrap.name(), Some("Kabupaten Sidenreng Rappang"));
        assert_eq!(sidrap.province_code(), "73");
        assert!(!sidrap.is_city());
        assert!(RegencyCode::parse("75.71").expect("Kota Gorontalo").is_city());
        assert_eq!(rule_of(&RegencyCode::parse("91.01").expect_err("merauke moved")), "regency_code_unknown");
        assert_eq!(rule_of(&RegencyCode::parse("73.1").expect_err("shape")), "regency_code_format");
    }

    #[test]
    fn long_garbage_is_truncated_in_the_message() {
        let err = VillageCode::parse(&"9".repeat(100)).expect_err("too long");
        assert!(err.to_string().contains(&format!("'{}…'", "9".repeat(40))), "{err}");
    }

    #[test]
    fn codes_sort_numerically_and_use_plain_strings_in_serde() {
        let mut codes: Vec<VillageCode> = ["73.14.01.2004", "12.07.28.1007", "73.14.01.1001"]
            .into_iter()
            .map(|c| VillageCode::parse(c).expect(c))
            .collect();
        codes.sort();
        let sorted: Vec<&str> = codes.iter().map(VillageCode::as_str).collect();
        assert_eq!(sorted, ["12.07.28.1007", "73.14.01.1001", "73.14.01.2004"]);

        let json = serde_json::to_string(&codes[1]).expect("serialize");
        assert_eq!(json, "\"73.14.01.1001\"");
        assert_eq!(serde_json::from_str::<VillageCode>(&json).expect("deserialize"), codes[1]);
        // Stored data from an older table still loads; a bad shape does not.
        assert!(serde_json::from_str::<VillageCode>("\"91.01.01.1001\"").is_ok());
        assert!(serde_json::from_str::<DistrictCode>("\"91.01.01\"").is_ok());
        assert!(serde_json::from_str::<RegencyCode>("\"91.01\"").is_ok());
        assert!(serde_json::from_str::<VillageCode>("\"73.14.01\"").is_err());
    }

    #[test]
    fn from_str_validates_fully() {
        assert!("73.14.01.1001".parse::<VillageCode>().is_ok());
        assert!("73.14.01.1999".parse::<VillageCode>().is_err());
        assert!("73.14.01".parse::<DistrictCode>().is_ok());
        assert!("73.14".parse::<RegencyCode>().is_ok());
    }
}
