//! The region table: provinces, regencies, kecamatan and villages of Kepmendagri 300.2.2-2138/2025.
//!
//! The four CSVs under `sync-core/data/regions/` are compiled in with `include_str!`. Each level is
//! indexed on its first lookup, so a NIK check (kecamatan only) never pays for the 83,762 villages.
//! The index is a sorted list of byte offsets into the embedded text; only the names with `""`
//! escapes are copied. See `examples/region_load_time.rs` for the load time.
//!
//! Indexing is hand-written and total: it cannot fail or panic at run time. A line whose commas are
//! not where the fixed-width codes put them is left out, and the text is sliced with `get`, so even
//! a garbled file cannot make indexing or lookups panic. The tests below check that every embedded
//! line made it into the index, well-formed, so a bad data update fails `cargo test`, not a tablet.

use std::sync::OnceLock;

use serde::Serialize;

use super::code::{DistrictCode, RegencyCode, VillageCode, VillageKind};

const PROVINCES_CSV: &str = include_str!("../../../data/regions/provinces.csv");
const REGENCIES_CSV: &str = include_str!("../../../data/regions/regencies.csv");
const DISTRICTS_CSV: &str = include_str!("../../../data/regions/districts.csv");
const VILLAGES_CSV: &str = include_str!("../../../data/regions/villages.csv");

/// The Kemendagri 2025 region table; every lookup goes through this.
///
/// The table is only ever this `'static` value, so lookups hand out `&'static str` names that
/// callers can keep. Creating it costs nothing; each level is indexed on its first lookup.
pub fn regions() -> &'static RegionTable {
    static TABLE: RegionTable = RegionTable {
        provinces: Level::new(PROVINCES_CSV, 2, 0),
        regencies: Level::new(REGENCIES_CSV, 5, 2),
        districts: Level::new(DISTRICTS_CSV, 8, 5),
        villages: Level::new(VILLAGES_CSV, 13, 8),
    };
    &TABLE
}

/// All provinces, regencies, kecamatan and villages, each sorted by code for binary search.
///
/// Codes are dotted (`73`, `73.14`, `73.14.01`, `73.14.01.1001`); lookups take that form only.
/// Parse user input with [`VillageCode::parse`] and friends first, which accept undotted digits too.
pub struct RegionTable {
    provinces: Level,
    regencies: Level,
    districts: Level,
    villages: Level,
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

impl RegionTable {
    /// Number of provinces (38 in 2025), for summaries and sanity checks.
    pub fn province_count(&'static self) -> usize {
        self.provinces.len()
    }

    /// Number of regencies and cities (514 in 2025).
    pub fn regency_count(&'static self) -> usize {
        self.regencies.len()
    }

    /// Number of kecamatan (7,285 in 2025).
    pub fn district_count(&'static self) -> usize {
        self.districts.len()
    }

    /// Number of desa and kelurahan (83,762 in 2025).
    pub fn village_count(&'static self) -> usize {
        self.villages.len()
    }

    /// The province's name for a two-digit code such as `73`.
    pub fn province_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        self.provinces.find(code.as_ref()).map(|row| row.name)
    }

    /// The regency's name, with its `Kabupaten`/`Kota` prefix, for a code such as `73.14`.
    pub fn regency_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        self.regencies.find(code.as_ref()).map(|row| row.name)
    }

    /// The kecamatan's name for a code such as `73.14.01`.
    pub fn district_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        self.districts.find(code.as_ref()).map(|row| row.name)
    }

    /// The village's name for a code such as `73.14.01.1001`.
    pub fn village_name(&'static self, code: impl AsRef<str>) -> Option<&'static str> {
        self.villages.find(code.as_ref()).map(|row| row.name)
    }

    /// Whether a two-digit province code is in the table.
    pub fn province_exists(&'static self, code: impl AsRef<str>) -> bool {
        self.provinces.find(code.as_ref()).is_some()
    }

    /// Whether a regency code such as `73.14` is in the table.
    pub fn regency_exists(&'static self, code: impl AsRef<str>) -> bool {
        self.regencies.find(code.as_ref()).is_some()
    }

    /// Whether a kecamatan code such as `73.14.01` is in the table (e.g. a NIK's region prefix).
    pub fn district_exists(&'static self, code: impl AsRef<str>) -> bool {
        self.districts.find(code.as_ref()).is_some()
    }

    /// Whether a village code such as `73.14.01.1001` is in the table.
    pub fn village_exists(&'static self, code: impl AsRef<str>) -> bool {
        self.villages.find(code.as_ref()).is_some()
    }

    /// The village with this code, with its kecamatan and name.
    pub fn village(&'static self, code: impl AsRef<str>) -> Option<Village> {
        self.villages.find(code.as_ref()).map(Row::village)
    }

    /// Every province as `(code, name)`, in code order.
    pub fn provinces(&'static self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.provinces.rows().map(|row| (row.code, row.name))
    }

    /// The regencies and cities of a province as `(code, name)`, in code order.
    pub fn regencies_in_province(
        &'static self,
        province_code: &str,
    ) -> impl Iterator<Item = (RegencyCode, &'static str)> + use<> {
        self.regencies.children(province_code).map(|row| (RegencyCode::from_table(row.code), row.name))
    }

    /// The kecamatan of a regency as `(code, name)`, in code order; empty when the regency is unknown.
    pub fn districts_in_regency(
        &'static self,
        regency: &RegencyCode,
    ) -> impl Iterator<Item = (DistrictCode, &'static str)> + use<> {
        self.districts.children(regency.as_str()).map(|row| (DistrictCode::from_table(row.code), row.name))
    }

    /// The villages of a kecamatan, in code order; empty when the kecamatan is unknown.
    pub fn villages_in_district(&'static self, district: &DistrictCode) -> impl Iterator<Item = Village> + use<> {
        self.villages.children(district.as_str()).map(Row::village)
    }
}

/// One row as seen through the index: slices of the embedded text (or of an unescaped copy).
#[derive(Debug, Clone, Copy)]
struct Row {
    code: &'static str,
    parent: &'static str,
    name: &'static str,
}

impl Row {
    fn village(self) -> Village {
        Village {
            code: VillageCode::from_table(self.code),
            district_code: DistrictCode::from_table(self.parent),
            name: self.name,
        }
    }
}

/// One level of the table: its embedded CSV (`code[,parent],name` lines with fixed-width codes)
/// and the index built over it on first use.
struct Level {
    csv: &'static str,
    code_len: usize,
    /// Width of the parent code column; 0 for provinces, which have none.
    parent_len: usize,
    index: OnceLock<Index>,
}

/// Where each row lies in the embedded text, sorted by code.
struct Index {
    /// Per row: byte offset of the line start and of the end of the name field.
    rows: Vec<(u32, u32)>,
    /// The names that had `""` escapes, unescaped, by line start (18 in the 2025 files).
    unescaped: Vec<(u32, String)>,
}

impl Level {
    const fn new(csv: &'static str, code_len: usize, parent_len: usize) -> Level {
        Level { csv, code_len, parent_len, index: OnceLock::new() }
    }

    /// Byte offset of the name within a line: after `code,` and, if present, `parent,`.
    fn name_offset(&self) -> usize {
        match self.parent_len {
            0 => self.code_len + 1,
            parent_len => self.code_len + 1 + parent_len + 1,
        }
    }

    fn index(&'static self) -> &'static Index {
        self.index.get_or_init(|| self.build_index())
    }

    fn len(&'static self) -> usize {
        self.index().rows.len()
    }

    fn code_at(&self, start: u32) -> &'static str {
        let start = start as usize;
        self.csv.get(start..start + self.code_len).unwrap_or("")
    }

    fn row(&'static self, (start, name_end): (u32, u32)) -> Row {
        let (start, name_end) = (start as usize, name_end as usize);
        let parent_start = start + self.code_len + 1;
        let raw_name = self.csv.get(start + self.name_offset()..name_end).unwrap_or("");
        Row {
            code: self.csv.get(start..start + self.code_len).unwrap_or(""),
            parent: self.csv.get(parent_start..parent_start + self.parent_len).unwrap_or(""),
            name: self.unquote(start, raw_name),
        }
    }

    /// An RFC 4180 name field: `"Lubuk Pakam I,II"` loses its quotes, `"Soka""an"` is looked up
    /// in the unescaped copies; unquoted names are returned as they are.
    fn unquote(&'static self, start: usize, raw_name: &'static str) -> &'static str {
        let Some(inner) = raw_name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) else {
            return raw_name;
        };
        if !inner.contains("\"\"") {
            return inner;
        }
        let unescaped = &self.index().unescaped;
        unescaped.binary_search_by_key(&start, |(s, _)| *s as usize).map_or(inner, |i| unescaped[i].1.as_str())
    }

    fn rows(&'static self) -> impl Iterator<Item = Row> {
        self.index().rows.iter().map(|entry| self.row(*entry))
    }

    fn find(&'static self, code: &str) -> Option<Row> {
        let rows = &self.index().rows;
        rows.binary_search_by(|(start, _)| self.code_at(*start).cmp(code)).ok().map(|i| self.row(rows[i]))
    }

    /// The rows whose code starts with `parent.`: a contiguous run, because rows are sorted by code.
    fn children(&'static self, parent: &str) -> impl Iterator<Item = Row> + use<> {
        // Codes hold only digits and dots, and '/' is the character after '.', so every code
        // starting with "parent." sorts in ["parent.", "parent/").
        let (lower, upper) = (format!("{parent}."), format!("{parent}/"));
        let rows = &self.index().rows;
        let first = rows.partition_point(|(start, _)| self.code_at(*start) < lower.as_str());
        let end = rows.partition_point(|(start, _)| self.code_at(*start) < upper.as_str());
        rows[first..end].iter().map(|entry| self.row(*entry))
    }

    /// One pass over the CSV: skip the header, record each line whose commas sit where the
    /// fixed-width codes put them, sort by code if needed.
    fn build_index(&self) -> Index {
        let bytes = self.csv.as_bytes();
        let name_offset = self.name_offset();
        let mut rows: Vec<(u32, u32)> = Vec::with_capacity(bytes.len() / (name_offset + 8));
        let mut unescaped = Vec::new();
        let mut sorted = true;
        let mut previous_code: &[u8] = &[];

        let mut start = line_end(bytes, 0) + 1; // skip the header
        while start < bytes.len() {
            let end = line_end(bytes, start);
            let name_start = start + name_offset;
            // The codes are fixed-width, so the commas must sit at fixed places in the line. Checking
            // only those two bytes keeps indexing fast; the tests check every code in full.
            let fixed_part_ok =
                name_start <= end && bytes[start + self.code_len] == b',' && bytes[name_start - 1] == b',';
            if !fixed_part_ok {
                start = end + 1;
                continue;
            }
            let crlf = end > name_start && bytes[end - 1] == b'\r';
            let name_end = if crlf { end - 1 } else { end };
            let code = &bytes[start..start + self.code_len];
            sorted &= previous_code <= code;
            previous_code = code;
            rows.push((start as u32, name_end as u32));
            let name = self.csv.get(name_start..name_end).unwrap_or("");
            if let Some(inner) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).filter(|n| n.contains("\"\""))
            {
                unescaped.push((start as u32, inner.replace("\"\"", "\"")));
            }
            start = end + 1;
        }
        if !sorted {
            rows.sort_by(|a, b| self.code_at(a.0).cmp(self.code_at(b.0)));
        }
        Index { rows, unescaped }
    }
}

/// The offset of the first `\n` at or after `from`, or the length of `bytes` when there is none.
///
/// Eight bytes at a time (the classic has-zero-byte test on `word ^ 0x0a0a…`): this search is most
/// of the indexing work, and a byte-at-a-time loop doubles it.
fn line_end(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let rest = bytes.get(from..).unwrap_or_default();
    let mut chunks = rest.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ NEWLINES;
        // The lowest flagged byte is the first zero byte of x, i.e. the first newline.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return from + i * 8 + (found.trailing_zeros() / 8) as usize;
        }
    }
    let tail = chunks.remainder();
    tail.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| bytes.len() - tail.len() + i)
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
        let villages = &regions().villages;
        let count = |kind| villages.rows().filter(|row| row.village().kind() == kind).count();
        assert_eq!(count(VillageKind::Kelurahan), 8_496);
        assert_eq!(count(VillageKind::Desa), 75_252);
        assert_eq!(count(VillageKind::DesaAdat), 14);
        assert!(
            villages
                .rows()
                .filter(|row| row.village().kind() == VillageKind::DesaAdat)
                .all(|row| row.code.starts_with("91.03."))
        );
    }

    #[test]
    fn every_embedded_line_is_indexed_well_formed_unique_and_sorted() {
        let table = regions();
        for (level, name) in [
            (&table.provinces, "provinces"),
            (&table.regencies, "regencies"),
            (&table.districts, "districts"),
            (&table.villages, "villages"),
        ] {
            let lines = level.csv.lines().skip(1).filter(|l| !l.is_empty()).count();
            assert_eq!(level.len(), lines, "{name}: a line was left out of the index");
            let rows: Vec<Row> = level.rows().collect();
            for pair in rows.windows(2) {
                assert!(pair[0].code < pair[1].code, "{name}: duplicate or unsorted {}", pair[1].code);
            }
            for row in &rows {
                let shaped = row
                    .code
                    .char_indices()
                    .all(|(i, c)| if i % 3 == 2 && i < 9 { c == '.' } else { c.is_ascii_digit() });
                assert!(shaped, "{name}: bad code {:?}", row.code);
                assert_eq!(row.parent, &row.code[..level.parent_len], "{name}: parent of {}", row.code);
                assert!(!row.name.trim().is_empty(), "{name}: empty name for {}", row.code);
                assert_eq!(row.name.trim(), row.name, "{name}: padded name for {}", row.code);
                assert!(!row.name.starts_with('"'), "{name}: quote left in {}", row.code);
            }
        }
        for row in table.villages.rows() {
            assert_eq!(VillageCode::parse_format_only(row.code).expect(row.code).as_str(), row.code);
        }
        // Every parent exists.
        assert!(table.regencies.rows().all(|r| table.province_exists(r.parent)));
        assert!(table.districts.rows().all(|r| table.regency_exists(r.parent)));
        assert!(table.villages.rows().all(|r| table.district_exists(r.parent)));
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
        assert_eq!(table.regency_name("73.14"), Some("Kabupaten Sidenreng Rappang"));
        assert_eq!(table.district_name("73.14.01"), Some("Panca Lautang"));
        assert_eq!(table.village_name("73.14.01.1001"), Some("Bilokka"));
        assert_eq!(table.village_name("73.14.01.1999"), None);
        assert_eq!(table.district_name("7314.01"), None);
        assert_eq!(table.district_name(""), None);
        assert!(table.district_exists("93.01.01"));
        assert!(!table.district_exists("91.01.01"));
        assert_eq!(table.province_name("11"), Some("Aceh"));
        assert_eq!(table.village_name("11.01.01.2001"), Some("Keude Bakongan"));
    }

    #[test]
    fn village_lookup_returns_code_kecamatan_and_name() {
        let village = regions().village("73.14.01.1001").expect("Bilokka");
        assert_eq!(village.code.as_str(), "73.14.01.1001");
        assert_eq!(village.district_code.as_str(), "73.14.01");
        assert_eq!(village.name, "Bilokka");
        assert_eq!(village.kind(), VillageKind::Kelurahan);
        assert_eq!(regions().village("73.14.01.1002").map(|v| v.name), Some("Wette'E"));
        assert_eq!(regions().village("75.01.05.2012").map(|v| v.name), Some("Olimoo'o"));
    }

    #[test]
    fn quoted_csv_names_are_unescaped() {
        let table = regions();
        assert_eq!(table.village_name("35.13.15.2017"), Some("Soka\"an"));
        assert_eq!(table.village_name("12.07.28.1007"), Some("Lubuk Pakam I,II"));
        assert_eq!(table.village_name("14.02.09.2010"), Some("Lambang Sari I, II, III"));
        assert_eq!(table.village_name("94.04.10.2004"), Some("T\"Singa"));
        assert_eq!(table.district_name("35.29.22"), Some("Ra\"as"));
    }

    #[test]
    fn names_keep_their_unicode_apostrophes() {
        assert_eq!(regions().village_name("53.07.01.2021"), Some("Regapu\u{2019}u"));
    }

    #[test]
    fn sidrap_has_11_kecamatan_and_106_villages() {
        let table = regions();
        let districts: Vec<_> = table.districts_in_regency(&regency("73.14")).collect();
        assert_eq!(districts.len(), 11);
        assert_eq!(districts[0].0.as_str(), "73.14.01");
        assert_eq!(districts[0].1, "Panca Lautang");
        assert_eq!(districts[10].1, "Pitu Riase");
        let villages: usize = districts.iter().map(|(code, _)| table.villages_in_district(code).count()).sum();
        assert_eq!(villages, 106);
    }

    #[test]
    fn panca_lautang_lists_its_10_villages_with_the_serial_shared_across_kinds() {
        let villages: Vec<Village> = regions().villages_in_district(&district("73.14.01")).collect();
        assert_eq!(villages.len(), 10);
        let codes: Vec<&str> = villages.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(&codes[..4], ["73.14.01.1001", "73.14.01.1002", "73.14.01.1003", "73.14.01.2004"]);
        assert_eq!(codes[9], "73.14.01.2010");
        assert!(villages.iter().all(|v| v.district_code.as_str() == "73.14.01"));
    }

    #[test]
    fn listing_an_unknown_parent_is_empty() {
        let table = regions();
        assert_eq!(table.villages_in_district(&DistrictCode::from_table("73.14.99")).count(), 0);
        assert_eq!(table.districts_in_regency(&RegencyCode::from_table("91.01")).count(), 0);
        assert_eq!(table.regencies_in_province("00").count(), 0);
        assert_eq!(table.regencies_in_province("").count(), 0);
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
        for row in regions().regencies.rows() {
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
    fn line_end_finds_the_first_newline_from_any_offset() {
        let text = b"a\n\n0123456789abcdef\nxy\n\n\n01234567\n0123456\nno newline at the end";
        for from in 0..=text.len() + 2 {
            let naive = text.iter().skip(from).position(|b| *b == b'\n').map_or(text.len(), |i| from + i);
            assert_eq!(line_end(text, from), naive, "from {from}");
        }
        assert_eq!(line_end(b"", 0), 0);
    }

    #[test]
    fn indexing_handles_quotes_crlf_unsorted_input_and_skips_malformed_lines() {
        static LEVEL: Level = Level::new(
            "code,parent,name\r\n02.01,02,\"A \"\"b\"\", c\"\r\n01.01,01,Plain\nbad line\n\n\
             1.02,01,Short\n01.03,01,\"x,y\"\n01.02,01,Last",
            5,
            2,
        );
        let got: Vec<(&str, &str, &str)> = LEVEL.rows().map(|r| (r.code, r.parent, r.name)).collect();
        assert_eq!(
            got,
            [("01.01", "01", "Plain"), ("01.02", "01", "Last"), ("01.03", "01", "x,y"), ("02.01", "02", "A \"b\", c"),]
        );
        assert_eq!(LEVEL.find("02.01").map(|r| r.name), Some("A \"b\", c"));
        assert_eq!(LEVEL.children("01").count(), 3);
    }
}
