//! The region table: provinces, regencies, kecamatan and villages of Kepmendagri 300.2.2-2138/2025.
//!
//! The four CSVs under `sync-core/data/regions/` are compiled in with `include_str!` and parsed on
//! the first call to [`regions`] (about a millisecond in a release build; see
//! `examples/region_load_time.rs`). Parsing is hand-written and total: it cannot fail at run time.
//! The tests below check that every embedded row came out well-formed, so a bad data update fails
//! `cargo test` instead of a tablet in the field.
//!
//! Rows keep slices of the embedded text; only the 18 names with `""` escapes are copied.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Serialize;

use super::code::{DistrictCode, RegencyCode, VillageCode, VillageKind};

const PROVINCES_CSV: &str = include_str!("../../../data/regions/provinces.csv");
const REGENCIES_CSV: &str = include_str!("../../../data/regions/regencies.csv");
const DISTRICTS_CSV: &str = include_str!("../../../data/regions/districts.csv");
const VILLAGES_CSV: &str = include_str!("../../../data/regions/villages.csv");

/// The Kemendagri 2025 region table, loaded once; every lookup goes through this.
///
/// The table is only ever the `'static` value that [`regions`] returns, so lookups hand out
/// `&'static str` names that callers can keep.
pub fn regions() -> &'static RegionTable {
    static TABLE: OnceLock<RegionTable> = OnceLock::new();
    TABLE.get_or_init(RegionTable::embedded)
}

/// All provinces, regencies, kecamatan and villages, each sorted by code for binary search.
///
/// Codes are dotted (`73`, `73.14`, `73.14.01`, `73.14.01.1001`); lookups take that form only.
/// Parse user input with [`VillageCode::parse`] and friends first, which accept undotted digits too.
pub struct RegionTable {
    provinces: Vec<Row>,
    regencies: Vec<Row>,
    districts: Vec<Row>,
    villages: Vec<Row>,
}

/// One desa or kelurahan, as listed for a kecamatan or looked up by code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Village {
    /// The village's own code, e.g. `73.14.01.1001`.
    pub code: VillageCode,
    /// The kecamatan it belongs to, e.g. `73.14.01`.
    pub district_code: DistrictCode,
    /// The official name, UTF-8 and title case as published (e.g. `Wette'E`); not unique.
    pub name: &'static str,
}

impl Village {
    /// Kelurahan, desa or desa adat, read from the code.
    pub fn kind(&self) -> VillageKind {
        self.code.kind()
    }
}

/// One CSV row: code, parent code (empty for provinces) and name, borrowed from the embedded text.
struct Row {
    code: &'static str,
    parent: &'static str,
    name: Cow<'static, str>,
}

impl RegionTable {
    fn embedded() -> RegionTable {
        RegionTable {
            provinces: parse_rows(PROVINCES_CSV, false),
            regencies: parse_rows(REGENCIES_CSV, true),
            districts: parse_rows(DISTRICTS_CSV, true),
            villages: parse_rows(VILLAGES_CSV, true),
        }
    }

    /// Number of provinces (38 in 2025), for summaries and sanity checks.
    pub fn province_count(&self) -> usize {
        self.provinces.len()
    }

    /// Number of regencies and cities (514 in 2025).
    pub fn regency_count(&self) -> usize {
        self.regencies.len()
    }

    /// Number of kecamatan (7,285 in 2025).
    pub fn district_count(&self) -> usize {
        self.districts.len()
    }

    /// Number of desa and kelurahan (83,762 in 2025).
    pub fn village_count(&self) -> usize {
        self.villages.len()
    }

    /// The province's name for a two-digit code such as `73`.
    pub fn province_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        find(&self.provinces, code.as_ref()).map(|row| &*row.name)
    }

    /// The regency's name, with its `Kabupaten`/`Kota` prefix, for a code such as `73.14`.
    pub fn regency_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        find(&self.regencies, code.as_ref()).map(|row| &*row.name)
    }

    /// The kecamatan's name for a code such as `73.14.01`.
    pub fn district_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        find(&self.districts, code.as_ref()).map(|row| &*row.name)
    }

    /// The village's name for a code such as `73.14.01.1001`.
    pub fn village_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        find(&self.villages, code.as_ref()).map(|row| &*row.name)
    }

    /// Whether a two-digit province code is in the table.
    pub fn province_exists(&self, code: impl AsRef<str>) -> bool {
        find(&self.provinces, code.as_ref()).is_some()
    }

    /// Whether a regency code such as `73.14` is in the table.
    pub fn regency_exists(&self, code: impl AsRef<str>) -> bool {
        find(&self.regencies, code.as_ref()).is_some()
    }

    /// Whether a kecamatan code such as `73.14.01` is in the table (e.g. a NIK's region prefix).
    pub fn district_exists(&self, code: impl AsRef<str>) -> bool {
        find(&self.districts, code.as_ref()).is_some()
    }

    /// Whether a village code such as `73.14.01.1001` is in the table.
    pub fn village_exists(&self, code: impl AsRef<str>) -> bool {
        find(&self.villages, code.as_ref()).is_some()
    }

    /// The village with this code, with its kecamatan and name.
    pub fn village(&'static self, code: impl AsRef<str>) -> Option<Village> {
        find(&self.villages, code.as_ref()).map(Row::village)
    }

    /// Every province as `(code, name)`, in code order.
    pub fn provinces(&'static self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.provinces.iter().map(|row| (row.code, &*row.name))
    }

    /// The regencies and cities of a province as `(code, name)`, in code order.
    pub fn regencies_in_province(
        &'static self,
        province_code: &str,
    ) -> impl Iterator<Item = (RegencyCode, &'static str)> + use<> {
        children(&self.regencies, province_code)
            .iter()
            .map(|row| (RegencyCode::from_table(row.code), &*row.name))
    }

    /// The kecamatan of a regency as `(code, name)`, in code order; empty when the regency is unknown.
    pub fn districts_in_regency(
        &'static self,
        regency: &RegencyCode,
    ) -> impl Iterator<Item = (DistrictCode, &'static str)> + use<> {
        children(&self.districts, regency.as_str())
            .iter()
            .map(|row| (DistrictCode::from_table(row.code), &*row.name))
    }

    /// The villages of a kecamatan, in code order; empty when the kecamatan is unknown.
    pub fn villages_in_district(
        &'static self,
        district: &DistrictCode,
    ) -> impl Iterator<Item = Village> + use<> {
        children(&self.villages, district.as_str())
            .iter()
            .map(Row::village)
    }
}

impl Row {
    fn village(&'static self) -> Village {
        Village {
            code: VillageCode::from_table(self.code),
            district_code: DistrictCode::from_table(self.parent),
            name: &self.name,
        }
    }
}

fn find<'t>(rows: &'t [Row], code: &str) -> Option<&'t Row> {
    rows.binary_search_by(|row| row.code.cmp(code))
        .ok()
        .map(|i| &rows[i])
}

/// The rows whose code starts with `parent.`: a contiguous run, because rows are sorted by code.
fn children<'t>(rows: &'t [Row], parent: &str) -> &'t [Row] {
    // Codes hold only digits and dots, and '/' is the character after '.', so every code starting
    // with "parent." sorts in ["parent.", "parent/").
    let (lower, upper) = (format!("{parent}."), format!("{parent}/"));
    let start = rows.partition_point(|row| row.code < lower.as_str());
    let end = rows.partition_point(|row| row.code < upper.as_str());
    &rows[start..end]
}

/// Parses one embedded CSV: a header line, then `code,name` or `code,parent,name` lines.
///
/// Total by design: codes and parents are never quoted in these files, and the name is the last
/// field, so it is everything after the last needed comma, unquoted per RFC 4180 when quoted.
/// Rows come out sorted by code even if a future file is not.
fn parse_rows(csv: &'static str, has_parent: bool) -> Vec<Row> {
    let mut rows = Vec::with_capacity(csv.len() / 32);
    for line in csv.lines().skip(1).filter(|line| !line.is_empty()) {
        let (code, rest) = line.split_once(',').unwrap_or((line, ""));
        let (parent, name) = if has_parent {
            rest.split_once(',').unwrap_or(("", rest))
        } else {
            ("", rest)
        };
        rows.push(Row {
            code,
            parent,
            name: unquote(name),
        });
    }
    if !rows.is_sorted_by(|a, b| a.code <= b.code) {
        rows.sort_unstable_by(|a, b| a.code.cmp(b.code));
    }
    rows
}

/// An RFC 4180 field: `"Soka""an"` becomes `Soka"an`; unquoted fields are borrowed as they are.
fn unquote(field: &'static str) -> Cow<'static, str> {
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) if inner.contains("\"\"") => Cow::Owned(inner.replace("\"\"", "\"")),
        Some(inner) => Cow::Borrowed(inner),
        None => Cow::Borrowed(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn district(code: &str) -> DistrictCode {
        DistrictCode::parse(code).expect(code)
    }

    fn regency(code: &str) -> RegencyCode {
        RegencyCode::parse(code).expect(code)
    }

    #[test]
    fn table_has_the_2025_counts() {
        let table = regions();
        assert_eq!(table.province_count(), 38);
        assert_eq!(table.regency_count(), 514);
        assert_eq!(table.district_count(), 7_285);
        assert_eq!(table.village_count(), 83_762);
    }

    #[test]
    fn village_kinds_have_the_2025_counts_and_desa_adat_are_in_kabupaten_jayapura() {
        let table = regions();
        let count = |kind| {
            table
                .villages
                .iter()
                .filter(|row| row.village().kind() == kind)
                .count()
        };
        assert_eq!(count(VillageKind::Kelurahan), 8_496);
        assert_eq!(count(VillageKind::Desa), 75_252);
        assert_eq!(count(VillageKind::DesaAdat), 14);
        assert!(
            table
                .villages
                .iter()
                .filter(|row| row.village().kind() == VillageKind::DesaAdat)
                .all(|row| row.code.starts_with("91.03."))
        );
    }

    #[test]
    fn every_embedded_row_is_well_formed() {
        let table = regions();
        let check = |rows: &[Row], code_len: usize, has_parent: bool| {
            for pair in rows.windows(2) {
                assert!(
                    pair[0].code < pair[1].code,
                    "duplicate or unsorted {}",
                    pair[1].code
                );
            }
            for row in rows {
                let well_formed = row.code.len() == code_len
                    && row.code.char_indices().all(|(i, c)| {
                        if i % 3 == 2 {
                            c == '.'
                        } else {
                            c.is_ascii_digit()
                        }
                    });
                assert!(well_formed, "bad code {:?}", row.code);
                if has_parent {
                    assert_eq!(
                        row.parent,
                        &row.code[..code_len - 3],
                        "parent of {}",
                        row.code
                    );
                }
                assert!(!row.name.trim().is_empty(), "empty name for {}", row.code);
                assert_eq!(row.name.trim(), row.name, "padded name for {}", row.code);
                assert!(!row.name.starts_with('"'), "quote left in {}", row.code);
            }
        };
        check(&table.provinces, 2, false);
        check(&table.regencies, 5, true);
        check(&table.districts, 8, true);
        for row in &table.villages {
            let code = VillageCode::parse_format_only(row.code).expect(row.code);
            assert_eq!(code.as_str(), row.code);
            assert_eq!(
                row.parent,
                code.district().as_str(),
                "parent of {}",
                row.code
            );
            assert!(!row.name.trim().is_empty(), "empty name for {}", row.code);
            assert!(!row.name.starts_with('"'), "quote left in {}", row.code);
        }
        for pair in table.villages.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "duplicate or unsorted {}",
                pair[1].code
            );
        }
        // Every parent exists.
        assert!(
            table
                .regencies
                .iter()
                .all(|r| table.province_exists(r.parent))
        );
        assert!(
            table
                .districts
                .iter()
                .all(|r| table.regency_exists(r.parent))
        );
        assert!(
            table
                .villages
                .iter()
                .all(|r| table.district_exists(r.parent))
        );
    }

    #[test]
    fn embedded_files_start_with_the_expected_headers() {
        assert!(PROVINCES_CSV.starts_with("code,name\n"));
        assert!(REGENCIES_CSV.starts_with("code,province_code,name\n"));
        assert!(DISTRICTS_CSV.starts_with("code,regency_code,name\n"));
        assert!(VILLAGES_CSV.starts_with("code,district_code,name\n"));
    }

    #[test]
    fn looks_up_names_at_every_level() {
        let table = regions();
        assert_eq!(table.province_name("73"), Some("Sulawesi Selatan"));
        assert_eq!(
            table.regency_name("73.14"),
            Some("Kabupaten Sidenreng Rappang")
        );
        assert_eq!(table.district_name("73.14.01"), Some("Panca Lautang"));
        assert_eq!(table.village_name("73.14.01.1001"), Some("Bilokka"));
        assert_eq!(table.village_name("73.14.01.1999"), None);
        assert_eq!(table.district_name("7314.01"), None);
        assert!(table.district_exists("93.01.01"));
        assert!(!table.district_exists("91.01.01"));
    }

    #[test]
    fn village_lookup_returns_code_kecamatan_and_name() {
        let village = regions().village("73.14.01.1001").expect("Bilokka");
        assert_eq!(village.code.as_str(), "73.14.01.1001");
        assert_eq!(village.district_code.as_str(), "73.14.01");
        assert_eq!(village.name, "Bilokka");
        assert_eq!(village.kind(), VillageKind::Kelurahan);
        assert_eq!(
            regions().village("73.14.01.1002").map(|v| v.name),
            Some("Wette'E")
        );
        assert_eq!(
            regions().village("75.01.05.2012").map(|v| v.name),
            Some("Olimoo'o")
        );
    }

    #[test]
    fn quoted_csv_names_are_unescaped() {
        let table = regions();
        assert_eq!(table.village_name("35.13.15.2017"), Some("Soka\"an"));
        assert_eq!(
            table.village_name("12.07.28.1007"),
            Some("Lubuk Pakam I,II")
        );
        assert_eq!(
            table.village_name("14.02.09.2010"),
            Some("Lambang Sari I, II, III")
        );
        assert_eq!(table.district_name("35.29.22"), Some("Ra\"as"));
    }

    #[test]
    fn names_keep_their_unicode_apostrophes() {
        assert_eq!(
            regions().village_name("53.07.01.2021"),
            Some("Regapu\u{2019}u")
        );
    }

    #[test]
    fn sidrap_has_11_kecamatan_and_106_villages() {
        let table = regions();
        let districts: Vec<_> = table.districts_in_regency(&regency("73.14")).collect();
        assert_eq!(districts.len(), 11);
        assert_eq!(districts[0].0.as_str(), "73.14.01");
        assert_eq!(districts[0].1, "Panca Lautang");
        assert_eq!(districts[10].1, "Pitu Riase");
        let villages: usize = districts
            .iter()
            .map(|(code, _)| table.villages_in_district(code).count())
            .sum();
        assert_eq!(villages, 106);
    }

    #[test]
    fn panca_lautang_lists_its_10_villages_with_the_serial_shared_across_kinds() {
        let villages: Vec<Village> = regions()
            .villages_in_district(&district("73.14.01"))
            .collect();
        assert_eq!(villages.len(), 10);
        let codes: Vec<&str> = villages.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(
            &codes[..4],
            [
                "73.14.01.1001",
                "73.14.01.1002",
                "73.14.01.1003",
                "73.14.01.2004"
            ]
        );
        assert_eq!(codes[9], "73.14.01.2010");
        assert!(
            villages
                .iter()
                .all(|v| v.district_code.as_str() == "73.14.01")
        );
    }

    #[test]
    fn listing_an_unknown_parent_is_empty() {
        let table = regions();
        assert_eq!(
            table
                .villages_in_district(&DistrictCode::from_table("73.14.99"))
                .count(),
            0
        );
        assert_eq!(
            table
                .districts_in_regency(&RegencyCode::from_table("91.01"))
                .count(),
            0
        );
        assert_eq!(table.regencies_in_province("00").count(), 0);
    }

    #[test]
    fn province_listing_covers_gorontalo_regencies() {
        let table = regions();
        assert_eq!(table.provinces().count(), 38);
        let gorontalo: Vec<_> = table.regencies_in_province("75").collect();
        assert_eq!(gorontalo.len(), 6);
        assert_eq!(gorontalo[5].1, "Kota Gorontalo");
    }

    #[test]
    fn regency_codes_from_71_are_exactly_the_cities() {
        for row in &regions().regencies {
            assert_eq!(
                RegencyCode::from_table(row.code).is_city(),
                row.name.starts_with("Kota "),
                "{} {}",
                row.code,
                row.name
            );
        }
    }

    #[test]
    fn parser_handles_quotes_crlf_and_unsorted_input() {
        let rows = parse_rows(
            "code,parent,name\r\n02.01,02,\"A \"\"b\"\", c\"\r\n01.01,01,Plain\n\n01.02,01,\"x,y\"",
            true,
        );
        let got: Vec<(&str, &str, &str)> =
            rows.iter().map(|r| (r.code, r.parent, &*r.name)).collect();
        assert_eq!(
            got,
            [
                ("01.01", "01", "Plain"),
                ("01.02", "01", "x,y"),
                ("02.01", "02", "A \"b\", c")
            ]
        );
    }
}
