//! Synthetic households for tests and benchmarks. Obviously fake by construction (domain.md §3):
//! NIK and KK serials are 9000 and above, family ids start with `SYN-`, and the names are drawn
//! from a short list of common given names.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use sync_core::ids::VillageCode;
use sync_core::value::FieldValue;

const GIVEN: [&str; 24] = [
    "Andi", "Baso", "Becce", "Cahya", "Dewi", "Fitri", "Hasan", "Indah", "Jumriah", "Kasim", "Lina", "Muh", "Nur",
    "Puang", "Rahmat", "Sitti", "Syamsul", "Tenri", "Udin", "Wa Ode", "Yusuf", "Zainab", "Hj", "La",
];
const FAMILY: [&str; 16] = [
    "Sintetis",
    "Contoh",
    "Percobaan",
    "Uji",
    "Wette'E",
    "Olimoo'o",
    "Regapu’u",
    "Taula'a",
    "Ciro-Ciroe",
    "Pratama",
    "Lestari",
    "Saputra",
    "Rahayu",
    "Baco",
    "Beddu",
    "Tahir",
];

/// One synthetic household: household answers and members' answers.
#[derive(Debug, Clone)]
pub struct SyntheticHousehold {
    /// Household-level answers (village code excluded; the caller files it).
    pub answers: BTreeMap<String, FieldValue>,
    /// Members' answers, head first.
    pub members: Vec<BTreeMap<String, FieldValue>>,
}

/// A generator of synthetic households, reproducible from its seed.
pub struct Generator {
    rng: StdRng,
    serial: u32,
    seed: u64,
}

fn t(s: impl Into<String>) -> FieldValue {
    FieldValue::Text(s.into())
}

impl Generator {
    /// A generator; the same seed always yields the same households.
    pub fn new(seed: u64) -> Generator {
        Generator { rng: StdRng::seed_from_u64(seed), serial: 0, seed }
    }

    /// The seed, for printing when a test fails.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn next_serial(&mut self) -> u32 {
        self.serial += 1;
        9000 + (self.serial % 1000)
    }

    fn name(&mut self) -> String {
        let g = GIVEN[self.rng.random_range(0..GIVEN.len())];
        let f = FAMILY[self.rng.random_range(0..FAMILY.len())];
        format!("{g} {f}")
    }

    /// A structurally valid NIK for a person registered in `village`'s kecamatan.
    pub fn nik(&mut self, village: &VillageCode, female: bool, year: i32, month: u8, day: u8) -> String {
        let prefix: String = village.district().as_str().chars().filter(char::is_ascii_digit).collect();
        let dd = if female { day + 40 } else { day };
        format!("{prefix}{dd:02}{month:02}{:02}{:04}", year % 100, self.next_serial())
    }

    /// One household in `village`, with 1 to 6 members (head first).
    pub fn household(&mut self, village: &VillageCode, index: usize) -> SyntheticHousehold {
        let prefix: String = village.district().as_str().chars().filter(char::is_ascii_digit).collect();
        let kk_day = self.rng.random_range(1..=28u8);
        let kk_month = self.rng.random_range(1..=12u8);
        let kk_year = self.rng.random_range(10..=24u8);
        let kk = format!("{prefix}{kk_day:02}{kk_month:02}{kk_year:02}{:04}", self.next_serial());
        let size = self.rng.random_range(1..=6usize);
        let head_female = self.rng.random_bool(0.2);
        let mut members = Vec::with_capacity(size);
        let mut head_name = String::new();
        for seq in 1..=size {
            let (relationship, female, year) = match seq {
                1 => (1, head_female, self.rng.random_range(1950..=1995)),
                2 => (2, !head_female, self.rng.random_range(1955..=1998)),
                _ => (3, self.rng.random_bool(0.5), self.rng.random_range(2000..=2024)),
            };
            let month = self.rng.random_range(1..=12u8);
            let day = self.rng.random_range(1..=28u8);
            let name = self.name();
            if seq == 1 {
                head_name = name.clone();
            }
            let nik = self.nik(village, female, year, month, day);
            members.push(BTreeMap::from([
                ("seq".to_string(), FieldValue::Int(seq as i64)),
                ("full_name".to_string(), t(name)),
                ("nik".to_string(), t(nik)),
                ("presence".to_string(), FieldValue::Int(1)),
                ("sex".to_string(), FieldValue::Int(if female { 2 } else { 1 })),
                ("birth_date".to_string(), t(format!("{year:04}-{month:02}-{day:02}"))),
                ("relationship".to_string(), FieldValue::Int(relationship)),
                ("marital_status".to_string(), FieldValue::Int(if relationship <= 2 { 2 } else { 1 })),
            ]));
        }
        let answers = BTreeMap::from([
            ("dtsen_family_id".to_string(), t(format!("SYN-{}-{index:06}", self.seed))),
            ("head_name".to_string(), t(head_name)),
            ("kk_number".to_string(), t(kk)),
            ("rt".to_string(), t(format!("{:03}", self.rng.random_range(1..=15)))),
            ("rw".to_string(), t(format!("{:03}", self.rng.random_range(1..=5)))),
            ("address".to_string(), t(format!("Jl. Contoh No. {}", self.rng.random_range(1..=200)))),
            ("member_count".to_string(), FieldValue::Int(size as i64)),
        ]);
        SyntheticHousehold { answers, members }
    }
}
