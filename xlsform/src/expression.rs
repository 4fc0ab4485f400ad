//! XLSForm expressions: the XPath subset Pilar reads and writes in `relevant`, `constraint` and
//! `pilar_checks.when`.
//!
//! - `syntax`: the expression text → a tree (lexer and recursive-descent parser).
//! - `condition`: Pilar [`Condition`]s ↔ expressions, identical after a round trip.
//! - `constraint`: a field kind's ranges, length and pattern ↔ a `constraint` expression.
//!
//! [`Condition`]: sync_core::form::Condition

pub(crate) mod condition;
pub(crate) mod constraint;
pub(crate) mod syntax;

pub use condition::{UnwritableCondition, parse_condition, write_condition};

/// Why an expression cannot be read, at a 1-based character position of its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {at}: {message}")]
pub struct ExpressionError {
    /// The character (1-based, as a person counts them) where the problem starts.
    pub at: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl ExpressionError {
    pub(crate) fn new(at: usize, message: impl Into<String>) -> Self {
        ExpressionError { at, message: message.into() }
    }
}
