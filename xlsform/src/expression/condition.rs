//! Pilar conditions ↔ XLSForm expressions, both ways, so that writing a condition and reading it
//! back gives the identical [`Condition`].
//!
//! Writing is canonical; reading accepts more (see `docs/forms.md`, "XLSForm"). The only shapes
//! that need care are those Pilar has and XPath lacks:
//!
//! - `in`: `${f} = 4 or ${f} = 5`, an `or` whose operands are all bare `=` tests of one question.
//!   An `any` of such tests is written with each operand in parentheses,
//!   `(${f} = 4) or (${f} = 5)`, and so reads back as `any`.
//! - `not_in`: `${f} != 4 and ${f} != 5`, likewise with `and`; an `all` of such tests is written
//!   with parentheses around each operand.
//! - One-element `in`/`not_in`/`any`/`all`: `${f} = 4 or false()`, `${f} != 4 and true()`,
//!   `(c) or false()`, `(c) and true()`. An empty `all` is `true()`, an empty `any` is `false()`.
//! - answered: `${f} != ''`; not answered: `${f} = ''` (`string-length(${f}) > 0` and `= 0` are
//!   read as well).

use sync_core::form::{Comparison, Condition, FieldKind, FormDefinition, Scope};
use sync_core::value::FieldValue;

use super::ExpressionError;
use super::syntax::{CompareOp, Expr, Node, parse};

/// Why a condition cannot be written as an XLSForm expression (it would not read back the same).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct UnwritableCondition {
    /// What the condition holds that an expression cannot, and what to change.
    pub reason: String,
}

/// Writes a condition as an XLSForm expression (`${building_tenure} = 1 and ${age_years} >= 5`).
pub fn write_condition(condition: &Condition) -> Result<String, UnwritableCondition> {
    render(condition).map(|(text, _)| text)
}

/// Reads an XLSForm expression as a condition of a question in `scope` of `form`: `${name}` must
/// name a question that scope may read (a visit question also reads household questions), and
/// values are read as the question's kind stores them (`'4'` on a select_one is the code 4).
pub fn parse_condition(text: &str, form: &FormDefinition, scope: Scope) -> Result<Condition, ExpressionError> {
    let node = parse(text)?;
    Reader { form, scope }.condition(&node)
}

/// How an expression binds, to know when it needs parentheses inside another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// A comparison, a call, `true()`: never needs parentheses.
    Atom,
    /// An `and` chain.
    And,
    /// An `or` chain.
    Or,
}

fn unwritable(reason: impl Into<String>) -> UnwritableCondition {
    UnwritableCondition { reason: reason.into() }
}

fn render(condition: &Condition) -> Result<(String, Binding), UnwritableCondition> {
    match condition {
        Condition::Field { field, test } => render_test(field, test),
        Condition::Not(inner) => Ok((format!("not({})", render(inner)?.0), Binding::Atom)),
        Condition::All(inner) if inner.is_empty() => Ok(("true()".into(), Binding::Atom)),
        Condition::Any(inner) if inner.is_empty() => Ok(("false()".into(), Binding::Atom)),
        Condition::All(inner) => Ok((render_chain(inner, " and ", "true()", CompareOp::Ne)?, Binding::And)),
        Condition::Any(inner) => Ok((render_chain(inner, " or ", "false()", CompareOp::Eq)?, Binding::Or)),
    }
}

/// An `all` or `any`: operands that would read as `not_in`/`in`, chains and `true()`/`false()` are
/// parenthesised; one operand gets the neutral `true()`/`false()` so the chain stays a chain.
fn render_chain(
    inner: &[Condition],
    joiner: &str,
    neutral: &str,
    bare: CompareOp,
) -> Result<String, UnwritableCondition> {
    let first_field = inner.first().and_then(|c| bare_test(c, bare));
    let would_merge = first_field.is_some() && inner.iter().all(|c| bare_test(c, bare) == first_field);
    let mut parts = Vec::with_capacity(inner.len() + 1);
    for condition in inner {
        let (text, binding) = render(condition)?;
        let empty_combinator = matches!(condition, Condition::All(c) | Condition::Any(c) if c.is_empty());
        if would_merge || binding != Binding::Atom || empty_combinator {
            parts.push(format!("({text})"));
        } else {
            parts.push(text);
        }
    }
    if inner.len() == 1 {
        parts.push(neutral.to_owned());
    }
    Ok(parts.join(joiner))
}

/// The question of a test written as a bare `${f} = v` (or `!=`) that a chain could absorb.
fn bare_test(condition: &Condition, op: CompareOp) -> Option<&str> {
    match (condition, op) {
        (Condition::Field { field, test: Comparison::Eq(_) }, CompareOp::Eq)
        | (Condition::Field { field, test: Comparison::Ne(_) }, CompareOp::Ne) => Some(field),
        _ => None,
    }
}

fn render_test(field: &str, test: &Comparison) -> Result<(String, Binding), UnwritableCondition> {
    let question = format!("${{{field}}}");
    let atom = |text: String| Ok((text, Binding::Atom));
    match test {
        Comparison::Eq(v) => atom(format!("{question} = {}", render_value(field, v)?)),
        Comparison::Ne(v) => atom(format!("{question} != {}", render_value(field, v)?)),
        Comparison::Gt(b) => atom(format!("{question} > {}", render_bound(field, *b)?)),
        Comparison::Gte(b) => atom(format!("{question} >= {}", render_bound(field, *b)?)),
        Comparison::Lt(b) => atom(format!("{question} < {}", render_bound(field, *b)?)),
        Comparison::Lte(b) => atom(format!("{question} <= {}", render_bound(field, *b)?)),
        Comparison::Answered(true) => atom(format!("{question} != ''")),
        Comparison::Answered(false) => atom(format!("{question} = ''")),
        Comparison::HasBit(bit) => atom(format!("selected({question}, '{bit}')")),
        Comparison::In(values) => Ok((render_list(field, values, "=", " or ", "false()")?, Binding::Or)),
        Comparison::NotIn(values) => Ok((render_list(field, values, "!=", " and ", "true()")?, Binding::And)),
    }
}

fn render_list(
    field: &str,
    values: &[FieldValue],
    op: &str,
    joiner: &str,
    neutral: &str,
) -> Result<String, UnwritableCondition> {
    if values.is_empty() {
        return Err(unwritable(format!("the test on `{field}` lists no values; list at least one")));
    }
    let mut parts = values
        .iter()
        .map(|v| Ok(format!("${{{field}}} {op} {}", render_value(field, v)?)))
        .collect::<Result<Vec<_>, UnwritableCondition>>()?;
    if values.len() == 1 {
        parts.push(neutral.to_owned());
    }
    Ok(parts.join(joiner))
}

/// A value as an XPath literal: `4`, `-2.5`, `4.0` (a decimal keeps its point), `'text'`, `true()`.
fn render_value(field: &str, value: &FieldValue) -> Result<String, UnwritableCondition> {
    Ok(match value {
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Decimal(d) => {
            let text = render_bound(field, *d)?;
            if text.contains('.') { text } else { format!("{text}.0") }
        }
        FieldValue::Bool(b) => format!("{b}()"),
        FieldValue::Text(t) if t.is_empty() => {
            return Err(unwritable(format!(
                "the test on `{field}` compares with empty text, which reads back as (not) answered; \
                 use {{\"answered\": …}} instead"
            )));
        }
        FieldValue::Text(t) => quote(t),
    })
}

fn render_bound(field: &str, bound: f64) -> Result<String, UnwritableCondition> {
    if bound.is_finite() {
        Ok(bound.to_string())
    } else {
        Err(unwritable(format!("the test on `{field}` compares with {bound}; use a finite number")))
    }
}

/// Text in single quotes, or double quotes when it holds a single quote; a quote inside is doubled
/// only when the text holds both kinds.
pub(crate) fn quote(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// Reads expression trees as conditions in one scope of a form.
struct Reader<'a> {
    form: &'a FormDefinition,
    scope: Scope,
}

impl Reader<'_> {
    fn kind(&self, name: &str, at: usize) -> Result<&FieldKind, ExpressionError> {
        let field = self.form.field(self.scope, name).or_else(|| match self.scope {
            Scope::Visit => self.form.field(Scope::Household, name),
            _ => None,
        });
        field.map(|f| &f.kind).ok_or_else(|| {
            let readable = match self.scope {
                Scope::Household => "a household question (outside the repeats)",
                Scope::Member => "a question of the same member repeat",
                Scope::Visit => "a visit or household question",
            };
            ExpressionError::new(at, format!("`${{{name}}}` is not {readable}; fix the name or move the question"))
        })
    }

    fn condition(&self, node: &Node) -> Result<Condition, ExpressionError> {
        match &node.expr {
            Expr::Paren(inner) => self.condition(inner),
            Expr::Or(operands) => self.chain(operands, CompareOp::Eq, "false", Comparison::In, Condition::Any),
            Expr::And(operands) => self.chain(operands, CompareOp::Ne, "true", Comparison::NotIn, Condition::All),
            Expr::Compare { left, op, right } => self.compare(left, *op, right),
            Expr::Call { name, args } => self.call(node.at, name, args),
            Expr::Field(name) => Err(ExpressionError::new(
                node.at,
                format!(
                    "`${{{name}}}` alone is not a condition; compare it, e.g. ${{{name}}} = 1 or ${{{name}}} != ''"
                ),
            )),
            Expr::Current => Err(ExpressionError::new(
                node.at,
                "`.` (this question's own answer) belongs in constraint; here name a question as ${name}",
            )),
            Expr::Number(_) | Expr::Text(_) => {
                Err(ExpressionError::new(node.at, "a value alone is not a condition; compare a question with it"))
            }
        }
    }

    /// An `or` (`and`) chain: bare `=` (`!=`) tests of one question are `in` (`not_in`), a
    /// trailing `false()` (`true()`) after one operand marks a one-element chain.
    fn chain(
        &self,
        operands: &[Node],
        op: CompareOp,
        neutral: &str,
        list: fn(Vec<FieldValue>) -> Comparison,
        combine: fn(Vec<Condition>) -> Condition,
    ) -> Result<Condition, ExpressionError> {
        let is_neutral =
            |node: &Node| matches!(&node.expr, Expr::Call { name, args } if name == neutral && args.is_empty());
        let operands = match operands {
            [single, last] if is_neutral(last) => std::slice::from_ref(single),
            all => all,
        };
        let bare: Vec<Option<(&str, &Node)>> = operands.iter().map(|n| bare_compare(n, op)).collect();
        if let Some(Some((first, _))) = bare.first()
            && bare.iter().all(|b| b.is_some_and(|(field, _)| field == *first))
        {
            let kind = self.kind(first, operands[0].at)?;
            let values = bare
                .iter()
                .flatten()
                .map(|(_, value)| literal(value, kind))
                .collect::<Result<Vec<_>, ExpressionError>>()?;
            return Ok(Condition::Field { field: (*first).to_owned(), test: list(values) });
        }
        Ok(combine(operands.iter().map(|n| self.condition(n)).collect::<Result<_, _>>()?))
    }

    fn compare(&self, left: &Node, op: CompareOp, right: &Node) -> Result<Condition, ExpressionError> {
        match (&left.expr, &right.expr) {
            (Expr::Field(field), _) => {
                let kind = self.kind(field, left.at)?;
                let test = match op {
                    CompareOp::Eq | CompareOp::Ne => match (op, literal(right, kind)?) {
                        (CompareOp::Eq, FieldValue::Text(t)) if t.is_empty() => Comparison::Answered(false),
                        (CompareOp::Ne, FieldValue::Text(t)) if t.is_empty() => Comparison::Answered(true),
                        (CompareOp::Eq, value) => Comparison::Eq(value),
                        (_, value) => Comparison::Ne(value),
                    },
                    CompareOp::Gt => Comparison::Gt(bound(right, op)?),
                    CompareOp::Gte => Comparison::Gte(bound(right, op)?),
                    CompareOp::Lt => Comparison::Lt(bound(right, op)?),
                    CompareOp::Lte => Comparison::Lte(bound(right, op)?),
                };
                Ok(Condition::Field { field: field.clone(), test })
            }
            (Expr::Call { name, args }, _) if name == "string-length" => {
                let [Node { expr: Expr::Field(field), at }] = args.as_slice() else {
                    return Err(ExpressionError::new(left.at, "string-length() takes one question, ${name}"));
                };
                self.kind(field, *at)?;
                let answered = match (op, &right.expr) {
                    (CompareOp::Gt | CompareOp::Ne, Expr::Number(n)) if n == "0" => true,
                    (CompareOp::Gte, Expr::Number(n)) if n == "1" => true,
                    (CompareOp::Eq | CompareOp::Lte, Expr::Number(n)) if n == "0" => false,
                    (CompareOp::Lt, Expr::Number(n)) if n == "1" => false,
                    _ => {
                        return Err(ExpressionError::new(
                            left.at,
                            "string-length(${name}) is read only as answered (> 0) or not answered (= 0)",
                        ));
                    }
                };
                Ok(Condition::Field { field: field.clone(), test: Comparison::Answered(answered) })
            }
            (_, Expr::Field(_)) if is_literal(left) => self.compare(right, op.swapped(), left),
            (Expr::Call { name, .. }, _) if !is_literal(left) => Err(unsupported_function(left.at, name)),
            (Expr::Current, _) => Err(ExpressionError::new(
                left.at,
                "`.` (this question's own answer) belongs in constraint; here name a question as ${name}",
            )),
            _ => Err(ExpressionError::new(
                left.at,
                "a comparison needs a question on one side and a value on the other, e.g. ${age_years} >= 5",
            )),
        }
    }

    fn call(&self, at: usize, name: &str, args: &[Node]) -> Result<Condition, ExpressionError> {
        match (name, args) {
            ("not", [inner]) => Ok(Condition::Not(Box::new(self.condition(inner)?))),
            ("true", []) => Ok(Condition::All(Vec::new())),
            ("false", []) => Ok(Condition::Any(Vec::new())),
            ("selected", [Node { expr: Expr::Field(field), at: field_at }, value]) => {
                let kind = self.kind(field, *field_at)?;
                let code = match literal(value, kind)? {
                    FieldValue::Int(code) => code,
                    _ => {
                        return Err(ExpressionError::new(
                            value.at,
                            "selected() needs a choice code, a whole number such as '4'",
                        ));
                    }
                };
                let test = match kind {
                    FieldKind::MultiSelect { .. } => Comparison::HasBit(code),
                    FieldKind::SelectOne { .. } => Comparison::Eq(FieldValue::Int(code)),
                    _ => {
                        return Err(ExpressionError::new(
                            at,
                            format!(
                                "selected() reads select_one and select_multiple questions, and `{field}` is neither"
                            ),
                        ));
                    }
                };
                Ok(Condition::Field { field: field.clone(), test })
            }
            ("not" | "selected" | "true" | "false", _) => Err(ExpressionError::new(
                at,
                format!(
                    "{name}() takes {}",
                    match name {
                        "not" => "one condition: not(${a} = 1)",
                        "selected" => "a question and a code: selected(${a}, '4')",
                        _ => "no arguments",
                    }
                ),
            )),
            _ => Err(unsupported_function(at, name)),
        }
    }
}

fn unsupported_function(at: usize, name: &str) -> ExpressionError {
    ExpressionError::new(
        at,
        format!(
            "{name}() is not supported in Pilar conditions; use not(), selected(), string-length(), true() or false()"
        ),
    )
}

/// `${f} op literal` with a non-empty value, the shape `in`/`not_in` chains are made of.
fn bare_compare(node: &Node, want: CompareOp) -> Option<(&str, &Node)> {
    match &node.expr {
        Expr::Compare { left, op, right } if *op == want && is_literal(right) => match (&left.expr, &right.expr) {
            (_, Expr::Text(t)) if t.is_empty() => None,
            (Expr::Field(field), _) => Some((field, right)),
            _ => None,
        },
        _ => None,
    }
}

fn is_literal(node: &Node) -> bool {
    match &node.expr {
        Expr::Number(_) | Expr::Text(_) => true,
        Expr::Call { name, args } => args.is_empty() && (name == "true" || name == "false"),
        _ => false,
    }
}

/// A literal as a value of a question of this kind: ODK quotes choice codes (`'4'`), so quoted
/// numbers on numeric questions are numbers, and unquoted numbers on text questions are text.
fn literal(node: &Node, kind: &FieldKind) -> Result<FieldValue, ExpressionError> {
    let numeric = matches!(
        kind,
        FieldKind::Integer { .. }
            | FieldKind::Decimal { .. }
            | FieldKind::SelectOne { .. }
            | FieldKind::MultiSelect { .. }
    );
    match &node.expr {
        Expr::Number(text) if numeric => number(text, node.at),
        Expr::Number(text) => Ok(FieldValue::Text(text.clone())),
        Expr::Text(text) if numeric && looks_numeric(text) => number(text.trim(), node.at),
        Expr::Text(text) => Ok(FieldValue::Text(text.clone())),
        Expr::Call { name, args } if args.is_empty() && name == "true" => Ok(FieldValue::Bool(true)),
        Expr::Call { name, args } if args.is_empty() && name == "false" => Ok(FieldValue::Bool(false)),
        _ => Err(ExpressionError::new(node.at, "expected a value: a number, 'text', true() or false()")),
    }
}

/// The number an ordering comparison (`>`, `>=`, `<`, `<=`) compares with.
pub(crate) fn bound(node: &Node, op: CompareOp) -> Result<f64, ExpressionError> {
    let text = match &node.expr {
        Expr::Number(text) => text.as_str(),
        Expr::Text(text) if looks_numeric(text) => text.trim(),
        _ => "",
    };
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(ExpressionError::new(node.at, format!("`{}` compares numbers; write a number here", op.as_str()))),
    }
}

fn looks_numeric(text: &str) -> bool {
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    digits.starts_with(|c: char| c.is_ascii_digit()) && text.parse::<f64>().is_ok()
}

/// `4` is a whole number, `4.0` and `4e2` are decimals.
fn number(text: &str, at: usize) -> Result<FieldValue, ExpressionError> {
    if text.contains(['.', 'e', 'E']) {
        match text.parse::<f64>() {
            Ok(d) if d.is_finite() => Ok(FieldValue::Decimal(d)),
            _ => Err(ExpressionError::new(at, format!("`{text}` is not a usable number"))),
        }
    } else {
        text.parse::<i64>().map(FieldValue::Int).map_err(|_| {
            ExpressionError::new(at, format!("`{text}` is too large for a whole number; Pilar codes fit in 64 bits"))
        })
    }
}
