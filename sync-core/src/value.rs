//! Field values: the scalars an answer can hold, as stored in a household document.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One answer's value. Answers are Automerge scalars, never text objects (one op per answer).
///
/// Codes (select-one), bitmasks (multi-select) and integers are `Int`; dates, identifiers,
/// GPS readings and free text are `Text`; decimals are `Decimal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A boolean flag (e.g. `notice_given`).
    Bool(bool),
    /// Integers, select-one codes and multi-select bitmasks.
    Int(i64),
    /// Decimal numbers such as coordinates.
    Decimal(f64),
    /// Text, dates (`YYYY-MM-DD`), identifiers and GPS (`lat,lon,accuracy_m`).
    Text(String),
}

impl FieldValue {
    /// The integer inside, when this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            FieldValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text inside, when this is a `Text`.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside as f64, when this is an `Int` or a `Decimal`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Int(i) => Some(*i as f64),
            FieldValue::Decimal(d) => Some(*d),
            _ => None,
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Decimal(d) => write!(f, "{d}"),
            FieldValue::Text(s) => f.write_str(s),
        }
    }
}
