//! Findings: what a validation rule says about one value, shared by identifier and form checks.

use serde::{Deserialize, Serialize};

/// How serious a finding is: a rejection blocks the save, a warning is shown and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The value is impossible; the save is refused until it is fixed.
    Reject,
    /// The value is suspicious (e.g. NIK birth date disagrees with the captured one) but may be true.
    Warn,
}

/// One rule's verdict on one value, before it is tied to a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Reject or warn.
    pub severity: Severity,
    /// Stable machine name of the rule, e.g. `nik_month_range`; scripts branch on it.
    pub rule: String,
    /// Lowercase sentence saying what is wrong and what to do.
    pub message: String,
}

impl Finding {
    /// A finding that blocks the save.
    pub fn reject(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Reject, rule: rule.into(), message: message.into() }
    }

    /// A finding that is reported but does not block the save.
    pub fn warn(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Warn, rule: rule.into(), message: message.into() }
    }
}
