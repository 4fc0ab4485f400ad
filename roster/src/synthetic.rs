//! Obviously fake rosters (domain.md §3) for tests and benchmarks: NIK and KK serials from 9000
//! upwards, family ids `SYN-…`, villages of Kec. Panca Lautang (73.14.01), names from a short
//! list that includes apostrophes (Wette'E, Regapu’u). Deterministic: the same size, the same bytes.

use std::fmt::Write as _;

/// Villages of Kec. Panca Lautang, Kab. Sidenreng Rappang (Kepmendagri 300.2.2-2138/2025).
const VILLAGES: [&str; 10] = [
    "73.14.01.1001",
    "73.14.01.1002",
    "73.14.01.1003",
    "73.14.01.2004",
    "73.14.01.2005",
    "73.14.01.2006",
    "73.14.01.2007",
    "73.14.01.2008",
    "73.14.01.2009",
    "73.14.01.2010",
];
const GIVEN: [&str; 12] =
    ["Andi", "Baso", "Becce", "Dewi", "Fitri", "Hasan", "Indah", "Kasim", "Nur", "Sitti", "Tenri", "Yusuf"];
const FAMILY: [&str; 8] = ["Sintetis", "Contoh", "Wette'E", "Regapu’u", "Olimoo'o", "Uji", "Baco", "Beddu"];

/// The header of [`synthetic_roster_csv`] files.
pub const SYNTHETIC_HEADER: &str =
    "family_id,village_code,kk_number,rt,rw,address,seq,full_name,nik,sex,birth_date,relationship,presence";

/// A one-row-per-person roster CSV with exactly `rows` data rows (families of 1 to 5 people), for
/// tests and for benchmarking the import of large files.
#[cfg(test)]
pub fn synthetic_roster_csv(rows: usize) -> Vec<u8> {
    synthetic_roster_csv_families(rows, 5)
}

/// Like [`synthetic_roster_csv`] with families of 1 to `largest` people (1: one row per household).
pub fn synthetic_roster_csv_families(rows: usize, largest: usize) -> Vec<u8> {
    let mut out = String::with_capacity(128 * (rows + 1));
    out.push_str(SYNTHETIC_HEADER);
    out.push('\n');
    let mut written = 0;
    let mut family = 0usize;
    while written < rows {
        let size = (1 + mix(family) % largest.max(1)).min(rows - written);
        let village = VILLAGES[family % VILLAGES.len()];
        let kk = format!(
            "731401{:02}{:02}{:02}{:04}",
            1 + mix(family + 7) % 28,
            1 + family % 12,
            10 + family % 15,
            serial(family)
        );
        let rt = 1 + family % 15;
        let rw = 1 + family % 5;
        let head_female = family.is_multiple_of(5);
        for seq in 1..=size {
            let person = written;
            let (relationship, female, year) = match seq {
                1 => (1, head_female, 1950 + mix(person) % 46),
                2 => (2, !head_female, 1955 + mix(person) % 44),
                _ => (3, mix(person + 3).is_multiple_of(2), 2000 + mix(person) % 21),
            };
            let month = 1 + mix(person + 1) % 12;
            let day = 1 + mix(person + 2) % 28;
            let nik_day = if female { day + 40 } else { day };
            let name = format!("{} {}", GIVEN[mix(person + 4) % GIVEN.len()], FAMILY[family % FAMILY.len()]);
            let nik = format!("731401{nik_day:02}{month:02}{:02}{:04}", year % 100, serial(person));
            let sex = if female { 2 } else { 1 };
            let address = format!("Jl. Contoh No. {}", 1 + family % 200);
            let _ = writeln!(
                out,
                "SYN-{family:07},{village},{kk},{rt:03},{rw:03},{address},{seq},{name},{nik},{sex},\
                 {year}-{month:02}-{day:02},{relationship},1"
            );
            written += 1;
        }
        family += 1;
    }
    out.into_bytes()
}

/// A serial from 9000 to 9999: obviously synthetic (domain.md §3).
fn serial(n: usize) -> usize {
    9000 + n % 1000
}

/// A cheap, fixed scramble of `n` so sizes and dates vary without a random number generator.
fn mix(n: usize) -> usize {
    let mut x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    (x % 1_000_003) as usize
}
