//! The admin's problem report: one line per problem, then a summary.
//!
//! Lines show cell values so the admin can find and fix them. Print the report to the admin's
//! screen or a file they asked for; never send it to logs or tracing (values are personal data).

use std::fmt::Write as _;

use super::RosterFile;

/// Renders every problem as `row 14, column nik, value "…": <message> (rule …)`, in row order,
/// followed by one summary line.
pub fn render_report(file: &RosterFile) -> String {
    let mut out = render_problems(file);
    let _ = writeln!(out, "{}", summary(file));
    out
}

/// The problem lines of [`render_report`] without its summary, for a screen that prints the
/// summary once elsewhere.
pub fn render_problems(file: &RosterFile) -> String {
    let mut out = String::new();
    for problem in &file.problems {
        let _ = writeln!(out, "{problem}");
    }
    out
}

/// One line: how many rows, households, errors and warnings, and how many households are clean.
pub fn summary(file: &RosterFile) -> String {
    let errors = file.problems.iter().filter(|p| p.is_blocking()).count();
    let warnings = file.problems.len() - errors;
    format!(
        "{} data row(s), {} household(s) ({} layout): {errors} error(s), {warnings} warning(s); {} household(s) \
         without errors",
        file.rows,
        file.household_count,
        file.layout.describe(),
        file.clean_count
    )
}
