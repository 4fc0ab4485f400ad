//! Indonesian identifiers: NIK, KK number, Kemendagri region codes, and the embedded region table.
//!
//! Every identifier is a newtype that can only be built validated (domain.md §1):
//! - [`Nik`] and [`KkNumber`] share the 16-digit `PP KK CC DDMMYY SSSS` layout. `parse` applies the
//!   reject rules; [`check_nik`] and [`check_kk`] return every finding at once, warnings included.
//! - [`VillageCode`], [`DistrictCode`] and [`RegencyCode`] are dotted Kemendagri codes; `parse` also
//!   requires the code to be in the region table, `parse_format_only` does not.
//! - [`regions`] is the Kepmendagri 300.2.2-2138/2025 table (`idn-area-data` 4.0.1, ODbL), compiled
//!   into the binary and parsed once on first use.
//!
//! A NIK is personal data: `Debug` masks it and no error message or finding repeats it whole, so a
//! stray `{:?}` or a logged error never leaks one. `Display` prints it in full, for the places that
//! must show or store it.

pub mod kk;
mod layout;
pub mod nik;
pub mod region;

pub use kk::{KkNumber, check_kk};
pub use nik::{BirthDate, Nik, NikContext, Sex, check_nik};
pub use region::{
    DistrictCode, LocalZone, RegencyCode, RegionTable, Village, VillageCode, VillageKind, local_time_text, regions,
};

use crate::finding::Finding;

/// Why text could not be turned into an identifier; callers branch on the kind, users read the findings.
///
/// Every variant carries the reject findings that caused it (never the full identifier). `Display`
/// joins their messages, each of which says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not a NIK: at least one reject rule of domain.md §1.1 failed.
    #[error("{}", join_messages(findings))]
    InvalidNik {
        /// The reject findings, one per failed rule (`nik_length`, `nik_month_range`, …).
        findings: Vec<Finding>,
    },
    /// The text is not a KK number: at least one reject rule of domain.md §1.2 failed.
    #[error("{}", join_messages(findings))]
    InvalidKkNumber {
        /// The reject findings, one per failed rule (`kk_length`, `kk_day_range`, …).
        findings: Vec<Finding>,
    },
    /// The text is not shaped like a Kemendagri region code (village, kecamatan or regency).
    #[error("{}", join_messages(findings))]
    InvalidRegionCode {
        /// One finding, e.g. rule `village_code_format`, whose message shows the expected form.
        findings: Vec<Finding>,
    },
    /// The region code is well-formed but not in the current region table.
    #[error("{}", join_messages(findings))]
    UnknownRegionCode {
        /// One finding, e.g. rule `village_code_unknown`.
        findings: Vec<Finding>,
    },
}

impl IdError {
    /// The findings behind the error, so a form can show them per rule.
    pub fn findings(&self) -> &[Finding] {
        match self {
            IdError::InvalidNik { findings }
            | IdError::InvalidKkNumber { findings }
            | IdError::InvalidRegionCode { findings }
            | IdError::UnknownRegionCode { findings } => findings,
        }
    }

    /// The findings behind the error, owned, for storing them with the answer.
    pub fn into_findings(self) -> Vec<Finding> {
        match self {
            IdError::InvalidNik { findings }
            | IdError::InvalidKkNumber { findings }
            | IdError::InvalidRegionCode { findings }
            | IdError::UnknownRegionCode { findings } => findings,
        }
    }
}

fn join_messages(findings: &[Finding]) -> String {
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    messages.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_error_display_joins_finding_messages_without_the_full_nik() {
        let err = Nik::parse("7314011508859OO1").expect_err("letters are rejected");
        let text = err.to_string();
        assert!(text.contains("'O' at position 14"), "{text}");
        assert!(!text.contains("7314011508859"), "{text}");
        assert_eq!(err.findings().len(), 1);
        assert_eq!(err.clone().into_findings(), err.findings());
    }

    #[test]
    fn id_error_kinds_let_callers_branch() {
        assert!(matches!(Nik::parse("1"), Err(IdError::InvalidNik { .. })));
        assert!(matches!(KkNumber::parse("1"), Err(IdError::InvalidKkNumber { .. })));
        assert!(matches!(VillageCode::parse("73.14.01"), Err(IdError::InvalidRegionCode { .. })));
        assert!(matches!(VillageCode::parse("73.14.01.1999"), Err(IdError::UnknownRegionCode { .. })));
    }
}
