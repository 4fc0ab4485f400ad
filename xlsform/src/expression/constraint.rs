//! A field kind's own rules ↔ an XLSForm `constraint`: ranges (`. >= 0 and . <= 100`), a length
//! (`string-length(.) <= 64`) and a pattern (`regex(., '^\d{10}$')`), joined with `and`.
//!
//! Pilar matches a pattern against the whole answer, so a pattern is written between `^` and `$`
//! (inside `(?:…)` when it has a top-level `|`), and reading one requires both anchors.

use sync_core::form::{FieldKind, Pattern};

use super::ExpressionError;
use super::condition::{bound, quote};
use super::syntax::{CompareOp, Expr, Node, parse};

/// The `constraint` expression for a kind's rules, or `None` when it has none.
pub(crate) fn write_constraint(kind: &FieldKind) -> Option<String> {
    let mut parts = Vec::new();
    match kind {
        FieldKind::Integer { min, max, .. } => {
            parts.extend(min.map(|m| format!(". >= {m}")));
            parts.extend(max.map(|m| format!(". <= {m}")));
        }
        FieldKind::Decimal { min, max } => {
            parts.extend(min.map(|m| format!(". >= {m}")));
            parts.extend(max.map(|m| format!(". <= {m}")));
        }
        FieldKind::Text { max_len, pattern, .. } => {
            parts.extend(max_len.map(|n| format!("string-length(.) <= {n}")));
            parts.extend(pattern.as_ref().map(|p| format!("regex(., {})", quote(&anchored(p.as_str())))));
        }
        _ => {}
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// Reads a `constraint` into the rules of `kind` (which has none yet).
pub(crate) fn read_constraint(text: &str, kind: &mut FieldKind) -> Result<(), ExpressionError> {
    let node = parse(text)?;
    let mut terms = Vec::new();
    flatten(&node, &mut terms);
    for term in terms {
        apply(term, kind)?;
    }
    Ok(())
}

fn flatten<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match &node.expr {
        Expr::Paren(inner) => flatten(inner, out),
        Expr::And(parts) => parts.iter().for_each(|p| flatten(p, out)),
        _ => out.push(node),
    }
}

const SUPPORTED: &str = "Pilar constraints are ranges (. >= 0 and . <= 100), a length (string-length(.) <= 64) \
                         and a pattern (regex(., '^\\d{10}$')), joined with `and`";

fn apply(term: &Node, kind: &mut FieldKind) -> Result<(), ExpressionError> {
    match &term.expr {
        Expr::Compare { left, op, right } => match (&left.expr, &right.expr) {
            (Expr::Current, _) => range(term.at, *op, right, kind),
            (_, Expr::Current) => range(term.at, op.swapped(), left, kind),
            (Expr::Call { name, args }, _)
                if name == "string-length" && matches!(args.as_slice(), [Node { expr: Expr::Current, .. }]) =>
            {
                length(term.at, *op, right, kind)
            }
            _ => Err(ExpressionError::new(term.at, SUPPORTED)),
        },
        Expr::Call { name, args } if name == "regex" => match args.as_slice() {
            [Node { expr: Expr::Current, .. }, Node { expr: Expr::Text(pattern), at }] => {
                let FieldKind::Text { pattern: slot @ None, .. } = kind else {
                    return Err(ExpressionError::new(term.at, wrong_place("regex()", "text", kind)));
                };
                *slot = Some(Pattern::new(unanchored(pattern).ok_or_else(|| {
                    ExpressionError::new(
                        *at,
                        "Pilar matches a pattern against the whole answer: begin it with ^ and end it with $, \
                         e.g. regex(., '^\\d{10}$')",
                    )
                })?));
                Ok(())
            }
            _ => Err(ExpressionError::new(term.at, "regex() takes `.` and a quoted pattern: regex(., '^\\d{10}$')")),
        },
        _ => Err(ExpressionError::new(term.at, SUPPORTED)),
    }
}

fn wrong_place(what: &str, suits: &str, kind: &FieldKind) -> String {
    match kind {
        FieldKind::Text { .. } | FieldKind::Integer { .. } | FieldKind::Decimal { .. } => {
            format!("{what} appears twice or does not suit this question; it suits {suits} questions, once")
        }
        _ => format!("{what} suits {suits} questions, and this one is {}; remove it", kind.describe()),
    }
}

fn range(at: usize, op: CompareOp, value: &Node, kind: &mut FieldKind) -> Result<(), ExpressionError> {
    let lower = match op {
        CompareOp::Gt | CompareOp::Gte => true,
        CompareOp::Lt | CompareOp::Lte => false,
        CompareOp::Eq | CompareOp::Ne => return Err(ExpressionError::new(at, SUPPORTED)),
    };
    let number = bound(value, op)?;
    match kind {
        FieldKind::Integer { min, max, .. } => {
            if number.fract() != 0.0 || number.abs() > 9.0e15 {
                return Err(ExpressionError::new(value.at, "an integer question's bounds are whole numbers"));
            }
            let whole = number as i64;
            let (slot, value) = match op {
                CompareOp::Gte => (min, whole),
                CompareOp::Gt => (min, whole + 1),
                CompareOp::Lte => (max, whole),
                _ => (max, whole - 1),
            };
            set_once(at, slot, value, lower)
        }
        FieldKind::Decimal { min, max } => {
            if matches!(op, CompareOp::Gt | CompareOp::Lt) {
                return Err(ExpressionError::new(
                    at,
                    "a decimal question's bounds include themselves in Pilar; use >= or <=",
                ));
            }
            set_once(at, if lower { min } else { max }, number, lower)
        }
        other => Err(ExpressionError::new(at, wrong_place("a range", "integer and decimal", other))),
    }
}

fn set_once<T>(at: usize, slot: &mut Option<T>, value: T, lower: bool) -> Result<(), ExpressionError> {
    if slot.is_some() {
        let which = if lower { "lower" } else { "upper" };
        return Err(ExpressionError::new(at, format!("a second {which} bound; keep one")));
    }
    *slot = Some(value);
    Ok(())
}

fn length(at: usize, op: CompareOp, value: &Node, kind: &mut FieldKind) -> Result<(), ExpressionError> {
    let FieldKind::Text { max_len, .. } = kind else {
        return Err(ExpressionError::new(at, wrong_place("string-length(.)", "text", kind)));
    };
    let limit = match (&value.expr, op) {
        (Expr::Number(n), CompareOp::Lte) => n.parse::<usize>().ok(),
        (Expr::Number(n), CompareOp::Lt) => n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)),
        _ => None,
    };
    match limit {
        Some(limit) if limit > 0 => set_once(at, max_len, limit, false),
        _ => Err(ExpressionError::new(
            at,
            "Pilar reads a length as a longest answer: string-length(.) <= 64 (a whole number above 0)",
        )),
    }
}

/// The pattern between `^` and `$`, grouped when a top-level `|` would escape the anchors.
fn anchored(pattern: &str) -> String {
    if has_top_level_alternation(pattern) { format!("^(?:{pattern})$") } else { format!("^{pattern}$") }
}

/// The inverse of [`anchored`]: `None` when the text is not anchored at both ends.
fn unanchored(text: &str) -> Option<String> {
    let inner = text.strip_prefix('^')?.strip_suffix('$')?;
    let trailing_backslashes = inner.chars().rev().take_while(|&c| c == '\\').count();
    if trailing_backslashes % 2 == 1 {
        return None; // `\$` is a literal dollar sign, not an anchor
    }
    if let Some(grouped) = inner.strip_prefix("(?:").and_then(|g| g.strip_suffix(')'))
        && closes_at_end(inner)
        && has_top_level_alternation(grouped)
    {
        return Some(grouped.to_owned());
    }
    Some(inner.to_owned())
}

/// Whether the group opened by the first character closes at the last one.
fn closes_at_end(text: &str) -> bool {
    let mut depth = 0usize;
    let mut end = None;
    scan(text, |i, c, in_class| {
        if in_class {
            return true;
        }
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = Some(i);
                    return false;
                }
            }
            _ => {}
        }
        true
    });
    end == Some(text.chars().count() - 1)
}

fn has_top_level_alternation(pattern: &str) -> bool {
    let mut depth = 0usize;
    let mut found = false;
    scan(pattern, |_, c, in_class| {
        if !in_class {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                '|' if depth == 0 => found = true,
                _ => {}
            }
        }
        !found
    });
    found
}

/// Visits the unescaped characters of a pattern with their index and whether they are inside a
/// character class; stops when `visit` returns false.
fn scan(pattern: &str, mut visit: impl FnMut(usize, char, bool) -> bool) {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut class_start: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        match class_start {
            Some(start) => {
                // `]` right after `[` or `[^` is a literal bracket.
                let first = i == start + 1 || (i == start + 2 && chars[start + 1] == '^');
                if c == ']' && !first {
                    class_start = None;
                }
                if !visit(i, c, true) {
                    return;
                }
            }
            None => {
                if c == '[' {
                    class_start = Some(i);
                }
                if !visit(i, c, c == '[') {
                    return;
                }
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> FieldKind {
        FieldKind::Text { max_len: None, pattern: None, pattern_hint: None }
    }

    fn integer() -> FieldKind {
        FieldKind::Integer { min: None, max: None, unknown_codes: Vec::new() }
    }

    #[test]
    fn patterns_round_trip_through_anchors() {
        for pattern in ["\\d{10}", "a|b", "(\\+62|0)8\\d{8,12}", "[|]x", "(?:a|b)c", "x\\$", "[]|]"] {
            let mut kind = text();
            let written = write_constraint(&FieldKind::Text {
                max_len: Some(5),
                pattern: Some(Pattern::new(pattern)),
                pattern_hint: None,
            })
            .expect("a constraint");
            read_constraint(&written, &mut kind).expect(&written);
            assert_eq!(
                kind,
                FieldKind::Text { max_len: Some(5), pattern: Some(Pattern::new(pattern)), pattern_hint: None },
                "{written}"
            );
        }
        assert_eq!(anchored("a|b"), "^(?:a|b)$");
    }

    #[test]
    fn ranges_lengths_and_patterns_are_read_into_the_kind() {
        let mut kind = integer();
        read_constraint(". >= 0 and . <= 100", &mut kind).expect("a range");
        assert_eq!(kind, FieldKind::Integer { min: Some(0), max: Some(100), unknown_codes: Vec::new() });
        let mut kind = integer();
        read_constraint("(. > 0) and 100 > .", &mut kind).expect("strict bounds");
        assert_eq!(kind, FieldKind::Integer { min: Some(1), max: Some(99), unknown_codes: Vec::new() });
        let mut kind = text();
        read_constraint("string-length(.) <= 64 and regex(., '^\\d{10}$')", &mut kind).expect("text rules");
        assert_eq!(
            kind,
            FieldKind::Text { max_len: Some(64), pattern: Some(Pattern::new("\\d{10}")), pattern_hint: None }
        );
    }

    #[test]
    fn constraints_pilar_cannot_hold_are_refused_with_what_to_write() {
        let cases: [(&str, FieldKind, &str); 6] = [
            (". >= 0 or . = 98", integer(), "joined with `and`"),
            ("regex(., '\\d{10}')", text(), "begin it with ^"),
            (". >= 0", text(), "suits integer and decimal"),
            (". >= 1 and . >= 2", integer(), "second lower bound"),
            (". >= 1.5", integer(), "whole numbers"),
            (". != 3", integer(), "Pilar constraints are"),
        ];
        for (constraint, mut kind, words) in cases {
            let error = read_constraint(constraint, &mut kind).expect_err(constraint);
            assert!(error.to_string().contains(words), "{constraint}: {error}");
        }
    }
}
