//! Kemendagri region codes (`PP.KK.CC.DDDD`) and the embedded 2025 region table they are checked against.
//!
//! - [`code`]: the validated code newtypes, [`VillageCode`], [`DistrictCode`] (kecamatan) and
//!   [`RegencyCode`] (kabupaten/kota).
//! - [`table`]: [`regions`], the Kepmendagri 300.2.2-2138/2025 table vendored from `idn-area-data`
//!   4.0.1 under `sync-core/data/regions/` (ODbL 1.0), compiled in and parsed once on first use.
//! - [`zone`]: [`LocalZone`], the time zone (WIB, WITA, WIT) each province keeps, so times are
//!   shown on the village's wall clock.
//!
//! These are Kemendagri codes (Dukcapil, SIKS-NG, NIK prefixes), never BPS Wilkerstat codes: the two
//! systems disagree and one must not be derived from the other (domain.md §1.4).

pub mod code;
pub mod table;
pub mod zone;

pub use code::{DistrictCode, RegencyCode, VillageCode, VillageKind};
pub use table::{RegionTable, Village, regions};
pub use zone::{LocalZone, local_time_text};
