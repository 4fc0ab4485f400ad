//! The XPath subset of XLSForm expressions, as a syntax tree: a lexer and a small recursive-descent
//! parser. What a tree means (a condition, a constraint) is decided by the callers.
//!
//! Grammar (lowest precedence first; `or` and `and` chains are kept flat, parentheses are kept as
//! nodes because the meaning of an `or` of `=` tests depends on them, see `condition.rs`):
//!
//! ```text
//! or      := and ('or' and)*
//! and     := compare ('and' compare)*
//! compare := operand (('=' | '!=' | '<' | '<=' | '>' | '>=') operand)?
//! operand := '(' or ')' | name '(' (or (',' or)*)? ')' | '${' name '}' | '.' | '-'? number | string
//! ```

use super::ExpressionError;

/// One node of an expression with the character (1-based) where it starts, for messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where the node starts: the 1-based character position in the expression text.
    pub at: usize,
    /// What the node is.
    pub expr: Expr,
}

/// The shapes an expression node takes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `a or b or …` (two or more operands).
    Or(Vec<Node>),
    /// `a and b and …` (two or more operands).
    And(Vec<Node>),
    /// `( … )`, kept so that `(${f} = 1) or (${f} = 2)` differs from `${f} = 1 or ${f} = 2`.
    Paren(Box<Node>),
    /// `left op right`.
    Compare { left: Box<Node>, op: CompareOp, right: Box<Node> },
    /// `name(args…)`, e.g. `not(…)`, `selected(${f}, '2')`, `true()`.
    Call { name: String, args: Vec<Node> },
    /// `${name}`: another question's answer.
    Field(String),
    /// `.`: this question's own answer (constraints).
    Current,
    /// A number as written (an optional `-`, digits, an optional fraction and exponent).
    Number(String),
    /// A quoted string, quotes removed.
    Text(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl CompareOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Lte => "<=",
            CompareOp::Gt => ">",
            CompareOp::Gte => ">=",
        }
    }

    /// The operator with its operands swapped (`4 < ${f}` is `${f} > 4`).
    pub fn swapped(self) -> CompareOp {
        match self {
            CompareOp::Eq => CompareOp::Eq,
            CompareOp::Ne => CompareOp::Ne,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Lte => CompareOp::Gte,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Gte => CompareOp::Lte,
        }
    }
}

/// Parses a whole expression; anything left over after it is an error.
pub(crate) fn parse(text: &str) -> Result<Node, ExpressionError> {
    let tokens = lex(text)?;
    let mut parser = Parser { tokens, next: 0, end: text.chars().count() + 1 };
    if parser.tokens.is_empty() {
        return Err(ExpressionError::new(1, "the expression is empty"));
    }
    let node = parser.or()?;
    match parser.peek() {
        None => Ok(node),
        Some(token) => Err(ExpressionError::new(
            token.at,
            format!("unexpected {} after a complete expression; join conditions with `and` or `or`", token.kind),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Field(String),
    Dot,
    Number(String),
    Text(String),
    Name(String),
    Op(CompareOp),
    Minus,
    Open,
    Close,
    Comma,
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenKind::Field(name) => write!(f, "`${{{name}}}`"),
            TokenKind::Dot => f.write_str("`.`"),
            TokenKind::Number(n) => write!(f, "number `{n}`"),
            TokenKind::Text(t) => write!(f, "text '{t}'"),
            TokenKind::Name(n) => write!(f, "`{n}`"),
            TokenKind::Op(op) => write!(f, "`{}`", op.as_str()),
            TokenKind::Minus => f.write_str("`-`"),
            TokenKind::Open => f.write_str("`(`"),
            TokenKind::Close => f.write_str("`)`"),
            TokenKind::Comma => f.write_str("`,`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    at: usize,
    kind: TokenKind,
}

fn lex(text: &str) -> Result<Vec<Token>, ExpressionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        let next = chars.get(i + 1).copied();
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '$' if next == Some('{') => {
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| ExpressionError::new(at, "`${` is not closed; write a question as ${name}"))?;
                let name: String = chars[i + 2..i + 2 + close].iter().collect();
                if name.trim().is_empty() {
                    return Err(ExpressionError::new(at, "`${}` names no question; write ${name}"));
                }
                (TokenKind::Field(name.trim().to_owned()), close + 3)
            }
            '.' if !next.is_some_and(|c| c.is_ascii_digit()) => (TokenKind::Dot, 1),
            c if c.is_ascii_digit() || c == '.' => {
                let len = number_length(&chars[i..]);
                (TokenKind::Number(chars[i..i + len].iter().collect()), len)
            }
            '\'' | '"' => {
                let (value, len) = quoted(&chars[i..], at)?;
                (TokenKind::Text(value), len)
            }
            '‘' | '’' | '“' | '”' => {
                return Err(ExpressionError::new(
                    at,
                    format!(
                        "`{c}` is a typographic quote (a spreadsheet's autocorrect); type a straight ' or \" instead"
                    ),
                ));
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .position(|&c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == ':'))
                    .unwrap_or(chars.len() - i);
                (TokenKind::Name(chars[i..i + len].iter().collect()), len)
            }
            '=' if next == Some('=') => {
                return Err(ExpressionError::new(at, "`==` is not XPath; compare with a single `=`"));
            }
            '=' => (TokenKind::Op(CompareOp::Eq), 1),
            '!' if next == Some('=') => (TokenKind::Op(CompareOp::Ne), 2),
            '<' if next == Some('=') => (TokenKind::Op(CompareOp::Lte), 2),
            '<' => (TokenKind::Op(CompareOp::Lt), 1),
            '>' if next == Some('=') => (TokenKind::Op(CompareOp::Gte), 2),
            '>' => (TokenKind::Op(CompareOp::Gt), 1),
            '-' => (TokenKind::Minus, 1),
            '(' => (TokenKind::Open, 1),
            ')' => (TokenKind::Close, 1),
            ',' => (TokenKind::Comma, 1),
            '+' | '*' | '/' | '|' => {
                return Err(ExpressionError::new(at, format!("`{c}`: Pilar conditions have no arithmetic or paths")));
            }
            '&' => {
                return Err(ExpressionError::new(at, "`&`: join conditions with `and`, not `&&`"));
            }
            other => return Err(ExpressionError::new(at, format!("unexpected character `{other}`"))),
        };
        tokens.push(Token { at, kind });
        i += len;
    }
    Ok(tokens)
}

/// Digits, an optional fraction and an optional exponent.
fn number_length(chars: &[char]) -> usize {
    let digits = |from: usize| chars[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut len = digits(0);
    if chars.get(len) == Some(&'.') {
        len += 1 + digits(len + 1);
    }
    if matches!(chars.get(len), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(len + 1), Some('+' | '-')));
        let exponent = digits(len + 1 + sign);
        if exponent > 0 {
            len += 1 + sign + exponent;
        }
    }
    len
}

/// A string in `'…'` or `"…"`; the quote doubled inside stands for itself (`'Wette''E'`).
fn quoted(chars: &[char], at: usize) -> Result<(String, usize), ExpressionError> {
    let quote = chars[0];
    let mut value = String::new();
    let mut i = 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(ExpressionError::new(at, format!("the text starting here has no closing {quote}")));
            }
            Some(&c) if c == quote => {
                if chars.get(i + 1) == Some(&quote) {
                    value.push(quote);
                    i += 2;
                } else {
                    return Ok((value, i + 1));
                }
            }
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// The position just after the text, for "ended early" messages.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn take(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += usize::from(token.is_some());
        token
    }

    fn at_name(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Name(n), .. }) if n == word)
    }

    fn or(&mut self) -> Result<Node, ExpressionError> {
        self.chain("or", Parser::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Node, ExpressionError> {
        self.chain("and", Parser::compare, Expr::And)
    }

    fn chain(
        &mut self,
        word: &str,
        operand: fn(&mut Parser) -> Result<Node, ExpressionError>,
        build: fn(Vec<Node>) -> Expr,
    ) -> Result<Node, ExpressionError> {
        let first = operand(self)?;
        if !self.at_name(word) {
            return Ok(first);
        }
        let at = first.at;
        let mut operands = vec![first];
        while self.at_name(word) {
            self.take();
            operands.push(operand(self)?);
        }
        Ok(Node { at, expr: build(operands) })
    }

    fn compare(&mut self) -> Result<Node, ExpressionError> {
        let left = self.operand()?;
        let Some(Token { kind: TokenKind::Op(op), .. }) = self.peek() else {
            return Ok(left);
        };
        let op = *op;
        self.take();
        let right = self.operand()?;
        if let Some(Token { at, kind: TokenKind::Op(_) }) = self.peek() {
            return Err(ExpressionError::new(
                *at,
                "comparisons do not chain; write `. >= 0 and . <= 100` instead of `0 <= . <= 100`",
            ));
        }
        Ok(Node { at: left.at, expr: Expr::Compare { left: Box::new(left), op, right: Box::new(right) } })
    }

    fn operand(&mut self) -> Result<Node, ExpressionError> {
        let Some(token) = self.take() else {
            return Err(ExpressionError::new(self.end, "the expression ends early; a value or question is missing"));
        };
        let at = token.at;
        let expr = match token.kind {
            TokenKind::Open => {
                let inner = self.or()?;
                self.expect_close(at)?;
                Expr::Paren(Box::new(inner))
            }
            TokenKind::Field(name) => Expr::Field(name),
            TokenKind::Dot => Expr::Current,
            TokenKind::Number(text) => Expr::Number(text),
            TokenKind::Text(text) => Expr::Text(text),
            TokenKind::Minus => match self.take() {
                Some(Token { kind: TokenKind::Number(text), .. }) => Expr::Number(format!("-{text}")),
                _ => return Err(ExpressionError::new(at, "`-` must be followed by a number")),
            },
            TokenKind::Name(name) if matches!(self.peek(), Some(Token { kind: TokenKind::Open, .. })) => {
                self.take();
                let mut args = Vec::new();
                if matches!(self.peek(), Some(Token { kind: TokenKind::Close, .. })) {
                    self.take();
                } else {
                    loop {
                        args.push(self.or()?);
                        match self.take() {
                            Some(Token { kind: TokenKind::Comma, .. }) => {}
                            Some(Token { kind: TokenKind::Close, .. }) => break,
                            Some(other) => {
                                return Err(ExpressionError::new(
                                    other.at,
                                    format!("expected `,` or `)` in the arguments of {name}(), found {}", other.kind),
                                ));
                            }
                            None => {
                                return Err(ExpressionError::new(at, format!("{name}( is not closed; add `)`")));
                            }
                        }
                    }
                }
                Expr::Call { name, args }
            }
            TokenKind::Name(name) if name == "and" || name == "or" => {
                return Err(ExpressionError::new(at, format!("`{name}` needs a condition on its left")));
            }
            TokenKind::Name(name) => {
                return Err(ExpressionError::new(
                    at,
                    format!("`{name}` is not a value: write a question as ${{{name}}} and text in quotes '{name}'"),
                ));
            }
            other => return Err(ExpressionError::new(at, format!("expected a value or a question, found {other}"))),
        };
        Ok(Node { at, expr })
    }

    fn expect_close(&mut self, open_at: usize) -> Result<(), ExpressionError> {
        match self.take() {
            Some(Token { kind: TokenKind::Close, .. }) => Ok(()),
            Some(other) => Err(ExpressionError::new(other.at, format!("expected `)`, found {}", other.kind))),
            None => Err(ExpressionError::new(open_at, "this `(` is never closed; add `)`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(at: usize, name: &str) -> Node {
        Node { at, expr: Expr::Field(name.into()) }
    }

    #[test]
    fn or_and_and_chains_stay_flat_and_parentheses_are_kept() {
        let node = parse("${a} = 1 or (${b} != 'x' and selected(${c}, '4'))").expect("parses");
        let Expr::Or(operands) = node.expr else { panic!("an or: {node:?}") };
        assert_eq!(operands.len(), 2);
        assert_eq!(
            operands[0].expr,
            Expr::Compare {
                left: Box::new(field(1, "a")),
                op: CompareOp::Eq,
                right: Box::new(Node { at: 8, expr: Expr::Number("1".into()) })
            }
        );
        let Expr::Paren(inner) = &operands[1].expr else { panic!("parenthesised: {operands:?}") };
        assert!(matches!(&inner.expr, Expr::And(parts) if parts.len() == 2));
    }

    #[test]
    fn strings_take_either_quote_and_a_doubled_quote_stands_for_itself() {
        assert_eq!(parse("'Wette''E'").expect("parses").expr, Expr::Text("Wette'E".into()));
        assert_eq!(parse("\"it's\"").expect("parses").expr, Expr::Text("it's".into()));
        assert_eq!(parse("-2.5e3").expect("parses").expr, Expr::Number("-2.5e3".into()));
        assert_eq!(parse(".").expect("parses").expr, Expr::Current);
    }

    #[test]
    fn errors_name_the_character_and_what_to_do() {
        let cases = [
            ("${age} >== 5", 10, "expected a value"),
            ("${age} == 5", 8, "single `=`"),
            ("${a} = 1 ${b} = 2", 10, "join conditions"),
            ("(${a} = 1", 1, "never closed"),
            ("${a} = ’x’", 8, "typographic quote"),
            ("${a} = yes", 8, "in quotes"),
            ("0 <= . <= 100", 8, "do not chain"),
            ("${a} = ", 8, "ends early"),
            ("${a} + 1", 6, "arithmetic"),
        ];
        for (text, at, words) in cases {
            let error = parse(text).expect_err(text);
            assert_eq!(error.at, at, "{text}: {error}");
            assert!(error.to_string().contains(words), "{text}: {error}");
        }
    }
}
