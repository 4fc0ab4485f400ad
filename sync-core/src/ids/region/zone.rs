//! Indonesia's three time zones and which provinces keep which, so a time shown to a person reads
//! as the wall clock of the village where it happened ("21:19 WITA"), while stored times stay UTC.
//!
//! The mapping (Keppres 41/1987, unchanged by the 2022 Papua splits, whose new provinces keep WIT):
//!
//! | zone | offset | provinces (Kemendagri codes) |
//! |---|---|---|
//! | WIB, Waktu Indonesia Barat | UTC+7 | Sumatra 11–19, Kepulauan Riau 21, Java 31–36, Kalimantan Barat 61, Kalimantan Tengah 62 |
//! | WITA, Waktu Indonesia Tengah | UTC+8 | Bali 51, NTB 52, NTT 53, Kalimantan Selatan 63, Kalimantan Timur 64, Kalimantan Utara 65, Sulawesi 71–76 |
//! | WIT, Waktu Indonesia Timur | UTC+9 | Maluku 81, Maluku Utara 82, Papua 91–96 |
//!
//! Indonesia has no daylight saving time, so a zone is one fixed offset.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use super::code::VillageCode;

/// One of Indonesia's three time zones (fixed offsets, no daylight saving).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalZone {
    /// Waktu Indonesia Barat, UTC+7: Sumatra, Java, West and Central Kalimantan.
    Wib,
    /// Waktu Indonesia Tengah, UTC+8: Bali, Nusa Tenggara, South/East/North Kalimantan, Sulawesi.
    Wita,
    /// Waktu Indonesia Timur, UTC+9: Maluku and Papua.
    Wit,
}

impl LocalZone {
    /// The zone of a two-digit Kemendagri province code (`73` → WITA); `None` for a code that is
    /// not an Indonesian province (see the table in this module's documentation).
    pub fn of_province(code: &str) -> Option<LocalZone> {
        match code {
            "11" | "12" | "13" | "14" | "15" | "16" | "17" | "18" | "19" | "21" | "31" | "32" | "33" | "34" | "35"
            | "36" | "61" | "62" => Some(LocalZone::Wib),
            "51" | "52" | "53" | "63" | "64" | "65" | "71" | "72" | "73" | "74" | "75" | "76" => Some(LocalZone::Wita),
            "81" | "82" | "91" | "92" | "93" | "94" | "95" | "96" => Some(LocalZone::Wit),
            _ => None,
        }
    }

    /// The zone of a village, from its province.
    pub fn of_village(village: &VillageCode) -> Option<LocalZone> {
        LocalZone::of_province(village.province_code())
    }

    /// The zone of any Kemendagri region code or text starting with one (`73`, `73.14`,
    /// `73.14.01.1001`, `7314011001`): its first two characters name the province.
    pub fn of_region_text(code: &str) -> Option<LocalZone> {
        LocalZone::of_province(code.trim().get(..2)?)
    }

    /// The abbreviation people read next to a time: `WIB`, `WITA` or `WIT`.
    pub fn abbreviation(self) -> &'static str {
        match self {
            LocalZone::Wib => "WIB",
            LocalZone::Wita => "WITA",
            LocalZone::Wit => "WIT",
        }
    }

    /// Hours ahead of UTC: 7, 8 or 9.
    pub fn hours_ahead_of_utc(self) -> i8 {
        match self {
            LocalZone::Wib => 7,
            LocalZone::Wita => 8,
            LocalZone::Wit => 9,
        }
    }

    /// The zone's fixed offset from UTC.
    pub fn offset(self) -> UtcOffset {
        // 7, 8 and 9 hours are always valid offsets; UTC is only a fallback the type demands.
        UtcOffset::from_hms(self.hours_ahead_of_utc(), 0, 0).unwrap_or(UtcOffset::UTC)
    }

    /// The same instant on this zone's wall clock.
    pub fn local(self, at: OffsetDateTime) -> OffsetDateTime {
        at.to_offset(self.offset())
    }
}

/// A stored RFC 3339 time (any offset) as a person reads it: `2026-12-01 21:19 WITA` on the
/// village's wall clock, or `2026-12-01 13:19 UTC` when the zone is unknown. Text that is not an
/// RFC 3339 time comes back unchanged, so nothing is ever hidden.
pub fn local_time_text(stored: &str, zone: Option<LocalZone>) -> String {
    let Ok(at) = OffsetDateTime::parse(stored.trim(), &Rfc3339) else {
        return stored.to_owned();
    };
    let (at, name) = match zone {
        Some(zone) => (zone.local(at), zone.abbreviation()),
        None => (at.to_offset(UtcOffset::UTC), "UTC"),
    };
    let wall = format_description!("[year]-[month]-[day] [hour]:[minute]");
    match at.format(&wall) {
        Ok(text) => format!("{text} {name}"),
        Err(_) => stored.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::regions;
    use time::macros::datetime;

    #[test]
    fn every_province_of_the_region_table_has_a_zone() {
        let mut counts = [0; 3];
        for (code, name) in regions().provinces() {
            let zone = LocalZone::of_province(code).unwrap_or_else(|| panic!("province {code} {name} has no zone"));
            counts[zone as usize] += 1;
        }
        // 38 provinces: 18 keep WIB, 12 WITA, 8 WIT.
        assert_eq!(counts, [18, 12, 8]);
    }

    #[test]
    fn provinces_keep_the_zone_of_their_island() {
        let zone = |code: &str| LocalZone::of_province(code).map(LocalZone::abbreviation);
        for (code, expected) in [
            ("11", "WIB"),  // Aceh
            ("31", "WIB"),  // Jakarta
            ("61", "WIB"),  // Kalimantan Barat
            ("62", "WIB"),  // Kalimantan Tengah
            ("51", "WITA"), // Bali
            ("53", "WITA"), // Nusa Tenggara Timur
            ("63", "WITA"), // Kalimantan Selatan
            ("65", "WITA"), // Kalimantan Utara
            ("73", "WITA"), // Sulawesi Selatan
            ("81", "WIT"),  // Maluku
            ("93", "WIT"),  // Papua Selatan (split from Papua in 2022)
            ("96", "WIT"),  // Papua Barat Daya
        ] {
            assert_eq!(zone(code), Some(expected), "province {code}");
        }
        assert_eq!(LocalZone::of_province("99"), None);
        assert_eq!(LocalZone::of_province(""), None);
        assert_eq!(LocalZone::of_region_text("73.14.01.1001"), Some(LocalZone::Wita));
        assert_eq!(LocalZone::of_region_text("3171"), Some(LocalZone::Wib));
        assert_eq!(LocalZone::of_region_text("9"), None);
    }

    #[test]
    fn a_stored_utc_time_reads_as_the_villages_wall_clock() {
        let stored = "2026-12-01T13:19:56Z";
        assert_eq!(local_time_text(stored, Some(LocalZone::Wita)), "2026-12-01 21:19 WITA");
        assert_eq!(local_time_text(stored, Some(LocalZone::Wib)), "2026-12-01 20:19 WIB");
        assert_eq!(local_time_text(stored, Some(LocalZone::Wit)), "2026-12-01 22:19 WIT");
        assert_eq!(local_time_text("2026-12-01T18:30:00Z", Some(LocalZone::Wit)), "2026-12-02 03:30 WIT");
        assert_eq!(local_time_text("2026-12-01T21:19:56+08:00", Some(LocalZone::Wita)), "2026-12-01 21:19 WITA");
        assert_eq!(local_time_text(stored, None), "2026-12-01 13:19 UTC");
        assert_eq!(local_time_text("yesterday", Some(LocalZone::Wita)), "yesterday");
        assert_eq!(LocalZone::Wita.local(datetime!(2026-12-01 13:19:56 UTC)), datetime!(2026-12-01 21:19:56 +08:00));
    }
}
