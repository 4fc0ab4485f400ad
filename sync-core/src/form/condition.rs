//! Skip logic: conditions over answers that decide whether a field is asked or a check fires.
//!
//! A condition is JSON such as `{"field": "building_tenure", "eq": 1}`, `{"field": "age_years",
//! "gte": 5}`, `{"field": "health_insurance", "has_bit": 1}` or a combinator `{"all": [...]}`,
//! `{"any": [...]}`, `{"not": {...}}`. A comparison on an unanswered field is false (only
//! `{"answered": false}` is true for it), so a follow-up question stays hidden until the question
//! it depends on has been answered.
//!
//! Which answers a condition can see depends on the scope it is written in, through [`AnswerView`]:
//! household conditions read household answers, member conditions read that member's answers, and
//! visit conditions read the visit's answers and then the household's.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::definition::{FieldKind, FormDefinition, Scope};
use crate::value::FieldValue;

/// A skip-logic or check condition over the answers of one scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCondition", into = "RawCondition")]
pub enum Condition {
    /// A test on one field's answer, e.g. `building_tenure` equals 1.
    Field {
        /// The field whose answer is tested.
        field: String,
        /// What is tested.
        test: Comparison,
    },
    /// True when every inner condition holds (true when empty).
    All(Vec<Condition>),
    /// True when at least one inner condition holds (false when empty).
    Any(Vec<Condition>),
    /// True when the inner condition does not hold.
    Not(Box<Condition>),
}

/// The test applied to one field's answer; every test but `Answered(false)` is false when unanswered.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// The answer equals the value (numbers compare numerically, `1` equals `1.0`).
    Eq(FieldValue),
    /// The answer is given and differs from the value.
    Ne(FieldValue),
    /// The answer equals one of the values.
    In(Vec<FieldValue>),
    /// The answer is given and equals none of the values.
    NotIn(Vec<FieldValue>),
    /// The answer is a number above the bound.
    Gt(f64),
    /// The answer is a number at or above the bound.
    Gte(f64),
    /// The answer is a number below the bound.
    Lt(f64),
    /// The answer is a number at or below the bound.
    Lte(f64),
    /// `true`: the field has an answer; `false`: it has none (blank text counts as none).
    Answered(bool),
    /// A multi-select answer includes this code (an exclusive code such as 99 includes none).
    HasBit(i64),
}

/// The answers a condition can see, tied to the form so multi-select codes are read correctly.
#[derive(Debug, Clone, Copy)]
pub struct AnswerView<'a> {
    form: &'a FormDefinition,
    scope: Scope,
    answers: &'a BTreeMap<String, FieldValue>,
    household: Option<&'a BTreeMap<String, FieldValue>>,
}

impl<'a> AnswerView<'a> {
    /// Household answers, for household-scope conditions.
    pub fn household(form: &'a FormDefinition, answers: &'a BTreeMap<String, FieldValue>) -> Self {
        AnswerView { form, scope: Scope::Household, answers, household: None }
    }

    /// One member's answers, for member-scope conditions.
    pub fn member(form: &'a FormDefinition, answers: &'a BTreeMap<String, FieldValue>) -> Self {
        AnswerView { form, scope: Scope::Member, answers, household: None }
    }

    /// A visit's answers, falling back to the household's for household fields.
    pub fn visit(
        form: &'a FormDefinition,
        visit: &'a BTreeMap<String, FieldValue>,
        household: &'a BTreeMap<String, FieldValue>,
    ) -> Self {
        AnswerView { form, scope: Scope::Visit, answers: visit, household: Some(household) }
    }

    /// The scope whose fields this view reads first.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The answer to `field`, or `None` when it is unanswered (blank text counts as unanswered).
    pub fn answer(&self, field: &str) -> Option<&'a FieldValue> {
        let source = match self.household {
            Some(household) if self.form.field(self.scope, field).is_none() => household,
            _ => self.answers,
        };
        source.get(field).filter(|value| is_answered(value))
    }

    /// The exclusive codes (e.g. 0 none, 99 unknown) of a multi-select field; empty for others.
    fn exclusive_codes(&self, field: &str) -> &'a [i64] {
        let def = self.form.field(self.scope, field).or_else(|| match self.household {
            Some(_) => self.form.field(Scope::Household, field),
            None => None,
        });
        match def.map(|def| &def.kind) {
            Some(FieldKind::MultiSelect { exclusive, .. }) => exclusive,
            _ => &[],
        }
    }
}

/// Whether a stored value counts as an answer: anything but blank text.
pub(crate) fn is_answered(value: &FieldValue) -> bool {
    !matches!(value, FieldValue::Text(text) if text.trim().is_empty())
}

impl Condition {
    /// Whether the condition holds for these answers.
    pub fn holds(&self, view: &AnswerView<'_>) -> bool {
        match self {
            Condition::All(inner) => inner.iter().all(|c| c.holds(view)),
            Condition::Any(inner) => inner.iter().any(|c| c.holds(view)),
            Condition::Not(inner) => !inner.holds(view),
            Condition::Field { field, test } => {
                let answer = view.answer(field);
                match (test, answer) {
                    (Comparison::Answered(expected), _) => answer.is_some() == *expected,
                    (_, None) => false,
                    (Comparison::Eq(v), Some(a)) => values_equal(a, v),
                    (Comparison::Ne(v), Some(a)) => !values_equal(a, v),
                    (Comparison::In(vs), Some(a)) => vs.iter().any(|v| values_equal(a, v)),
                    (Comparison::NotIn(vs), Some(a)) => !vs.iter().any(|v| values_equal(a, v)),
                    (Comparison::Gt(b), Some(a)) => a.as_f64().is_some_and(|a| a > *b),
                    (Comparison::Gte(b), Some(a)) => a.as_f64().is_some_and(|a| a >= *b),
                    (Comparison::Lt(b), Some(a)) => a.as_f64().is_some_and(|a| a < *b),
                    (Comparison::Lte(b), Some(a)) => a.as_f64().is_some_and(|a| a <= *b),
                    (Comparison::HasBit(bit), Some(a)) => {
                        a.as_int().is_some_and(|a| !view.exclusive_codes(field).contains(&a) && a & bit == *bit)
                    }
                }
            }
        }
    }

    /// Every field name the condition reads, in order of appearance (repeats included).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'s>(&'s self, out: &mut Vec<&'s str>) {
        match self {
            Condition::Field { field, .. } => out.push(field),
            Condition::All(inner) | Condition::Any(inner) => inner.iter().for_each(|c| c.collect_fields(out)),
            Condition::Not(inner) => inner.collect_fields(out),
        }
    }

    /// Every single-field test in the condition, for checking a definition against its fields.
    pub(crate) fn tests(&self) -> Vec<(&str, &Comparison)> {
        let mut out = Vec::new();
        self.collect_tests(&mut out);
        out
    }

    fn collect_tests<'s>(&'s self, out: &mut Vec<(&'s str, &'s Comparison)>) {
        match self {
            Condition::Field { field, test } => out.push((field, test)),
            Condition::All(inner) | Condition::Any(inner) => inner.iter().for_each(|c| c.collect_tests(out)),
            Condition::Not(inner) => inner.collect_tests(out),
        }
    }
}

/// Equality of an answer with a condition value: numbers numerically, text and booleans exactly.
fn values_equal(answer: &FieldValue, expected: &FieldValue) -> bool {
    match (answer, expected) {
        (FieldValue::Text(a), FieldValue::Text(b)) => a.trim() == b,
        (FieldValue::Bool(a), FieldValue::Bool(b)) => a == b,
        (a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// Reads as an English clause for messages: `building_tenure is 1`, `age_years is at least 5`.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Field { field, test } => write!(f, "{field} {test}"),
            Condition::All(inner) => write_joined(f, inner, " and "),
            Condition::Any(inner) => write_joined(f, inner, " or "),
            Condition::Not(inner) => write!(f, "not ({inner})"),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, inner: &[Condition], sep: &str) -> fmt::Result {
    for (i, c) in inner.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        match c {
            Condition::All(_) | Condition::Any(_) => write!(f, "({c})")?,
            _ => write!(f, "{c}")?,
        }
    }
    Ok(())
}

/// Reads as the predicate of an English clause: `is 1`, `is one of 4, 5`, `includes code 2`.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Eq(v) => write!(f, "is {}", ShowValue(v)),
            Comparison::Ne(v) => write!(f, "is not {}", ShowValue(v)),
            Comparison::In(vs) => write!(f, "is one of {}", ShowValues(vs)),
            Comparison::NotIn(vs) => write!(f, "is none of {}", ShowValues(vs)),
            Comparison::Gt(b) => write!(f, "is above {b}"),
            Comparison::Gte(b) => write!(f, "is at least {b}"),
            Comparison::Lt(b) => write!(f, "is below {b}"),
            Comparison::Lte(b) => write!(f, "is at most {b}"),
            Comparison::Answered(true) => f.write_str("is answered"),
            Comparison::Answered(false) => f.write_str("is not answered"),
            Comparison::HasBit(bit) => write!(f, "includes code {bit}"),
        }
    }
}

struct ShowValue<'a>(&'a FieldValue);

impl fmt::Display for ShowValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FieldValue::Text(text) => write!(f, "'{text}'"),
            other => write!(f, "{other}"),
        }
    }
}

struct ShowValues<'a>(&'a [FieldValue]);

impl fmt::Display for ShowValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", ShowValue(v))?;
        }
        Ok(())
    }
}

/// The JSON shape of a condition: one object, exactly one operator key.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eq: Option<FieldValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ne: Option<FieldValue>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    in_: Option<Vec<FieldValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_in: Option<Vec<FieldValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    has_bit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not: Option<Box<Condition>>,
}

const OPERATORS: &str = "eq, ne, in, not_in, gt, gte, lt, lte, answered, has_bit, all, any, not";

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(raw: RawCondition) -> Result<Self, String> {
        let RawCondition { field, eq, ne, in_, not_in, gt, gte, lt, lte, answered, has_bit, all, any, not } = raw;
        let mut found: Vec<Condition> = Vec::new();
        let mut tests: Vec<Comparison> = Vec::new();
        tests.extend(eq.map(Comparison::Eq));
        tests.extend(ne.map(Comparison::Ne));
        tests.extend(in_.map(Comparison::In));
        tests.extend(not_in.map(Comparison::NotIn));
        tests.extend(gt.map(Comparison::Gt));
        tests.extend(gte.map(Comparison::Gte));
        tests.extend(lt.map(Comparison::Lt));
        tests.extend(lte.map(Comparison::Lte));
        tests.extend(answered.map(Comparison::Answered));
        tests.extend(has_bit.map(Comparison::HasBit));
        found.extend(all.map(Condition::All));
        found.extend(any.map(Condition::Any));
        found.extend(not.map(Condition::Not));

        match (tests.len() + found.len(), field) {
            (0, _) => Err(format!("a condition needs one operator ({OPERATORS}); found none")),
            (n, _) if n > 1 => {
                Err(format!("a condition takes exactly one operator ({OPERATORS}); found {n}: nest them in \"all\""))
            }
            (_, Some(field)) => match tests.pop() {
                Some(test) => Ok(Condition::Field { field, test }),
                None => Err(format!(
                    "\"all\", \"any\" and \"not\" take no \"field\" (found \"field\": \"{field}\"); \
                     put it in the inner conditions"
                )),
            },
            (_, None) => match found.pop() {
                Some(combinator) => Ok(combinator),
                None => Err("a comparison needs a \"field\" naming the answer it tests".to_owned()),
            },
        }
    }
}

impl From<Condition> for RawCondition {
    fn from(condition: Condition) -> Self {
        let mut raw = RawCondition::default();
        match condition {
            Condition::All(inner) => raw.all = Some(inner),
            Condition::Any(inner) => raw.any = Some(inner),
            Condition::Not(inner) => raw.not = Some(inner),
            Condition::Field { field, test } => {
                raw.field = Some(field);
                match test {
                    Comparison::Eq(v) => raw.eq = Some(v),
                    Comparison::Ne(v) => raw.ne = Some(v),
                    Comparison::In(vs) => raw.in_ = Some(vs),
                    Comparison::NotIn(vs) => raw.not_in = Some(vs),
                    Comparison::Gt(b) => raw.gt = Some(b),
                    Comparison::Gte(b) => raw.gte = Some(b),
                    Comparison::Lt(b) => raw.lt = Some(b),
                    Comparison::Lte(b) => raw.lte = Some(b),
                    Comparison::Answered(b) => raw.answered = Some(b),
                    Comparison::HasBit(bit) => raw.has_bit = Some(bit),
                }
            }
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(json: &str) -> Condition {
        serde_json::from_str(json).expect("a valid condition")
    }

    fn answers(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn member_holds(json: &str, pairs: &[(&str, FieldValue)]) -> bool {
        let form = FormDefinition::default_dtsen();
        let answers = answers(pairs);
        condition(json).holds(&AnswerView::member(form, &answers))
    }

    #[test]
    fn comparisons_read_the_members_answers() {
        use FieldValue::Int;
        let age = |n| [("age_years", Int(n))];
        assert!(member_holds(r#"{"field": "age_years", "eq": 5}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "eq": 5.0}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "ne": 5}"#, &age(6)));
        assert!(member_holds(r#"{"field": "age_years", "in": [4, 5]}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "not_in": [4, 5]}"#, &age(6)));
        assert!(member_holds(r#"{"field": "age_years", "gt": 4}"#, &age(5)));
        assert!(!member_holds(r#"{"field": "age_years", "gt": 5}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "gte": 5}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "lt": 6}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "lte": 5}"#, &age(5)));
        assert!(member_holds(r#"{"field": "age_years", "answered": true}"#, &age(5)));
    }

    #[test]
    fn every_comparison_on_an_unanswered_field_is_false_except_answered_false() {
        for json in [
            r#"{"field": "age_years", "eq": 5}"#,
            r#"{"field": "age_years", "ne": 5}"#,
            r#"{"field": "age_years", "not_in": [5]}"#,
            r#"{"field": "age_years", "lt": 5}"#,
            r#"{"field": "age_years", "answered": true}"#,
            r#"{"field": "health_insurance", "has_bit": 1}"#,
        ] {
            assert!(!member_holds(json, &[]), "{json}");
        }
        assert!(member_holds(r#"{"field": "age_years", "answered": false}"#, &[]));
        // Blank text is no answer.
        let blank = [("full_name", FieldValue::Text("  ".into()))];
        assert!(member_holds(r#"{"field": "full_name", "answered": false}"#, &blank));
    }

    #[test]
    fn has_bit_reads_a_multi_select_sum_but_not_an_exclusive_code() {
        let insurance = |n| [("health_insurance", FieldValue::Int(n))];
        assert!(member_holds(r#"{"field": "health_insurance", "has_bit": 1}"#, &insurance(5)));
        assert!(member_holds(r#"{"field": "health_insurance", "has_bit": 4}"#, &insurance(5)));
        assert!(!member_holds(r#"{"field": "health_insurance", "has_bit": 2}"#, &insurance(5)));
        // 99 "tidak tahu" = 64 + 32 + 2 + 1 in binary, yet includes no insurance.
        assert!(!member_holds(r#"{"field": "health_insurance", "has_bit": 1}"#, &insurance(99)));
    }

    #[test]
    fn combinators_nest() {
        use FieldValue::Int;
        let woman = [("sex", Int(2)), ("age_years", Int(30)), ("marital_status", Int(2))];
        let pregnant_asked = r#"{"all": [{"field": "sex", "eq": 2}, {"field": "age_years", "gte": 10},
            {"field": "age_years", "lte": 54}, {"field": "marital_status", "in": [2, 3, 4]}]}"#;
        assert!(member_holds(pregnant_asked, &woman));
        assert!(!member_holds(pregnant_asked, &[("sex", Int(1)), ("age_years", Int(30)), ("marital_status", Int(2))]));
        assert!(member_holds(r#"{"any": [{"field": "sex", "eq": 1}, {"field": "age_years", "gt": 20}]}"#, &woman));
        assert!(member_holds(r#"{"not": {"field": "sex", "eq": 1}}"#, &woman));
        assert!(member_holds(r#"{"all": []}"#, &[]));
        assert!(!member_holds(r#"{"any": []}"#, &[]));
    }

    #[test]
    fn visit_conditions_read_visit_answers_then_household_answers() {
        let form = FormDefinition::default_dtsen();
        let visit = answers(&[("outcome", FieldValue::Int(4))]);
        let household = answers(&[("lighting_source", FieldValue::Int(1))]);
        let view = AnswerView::visit(form, &visit, &household);
        assert!(condition(r#"{"field": "outcome", "eq": 4}"#).holds(&view));
        assert!(condition(r#"{"field": "lighting_source", "eq": 1}"#).holds(&view));
        // A household view never sees visit answers.
        let household_view = AnswerView::household(form, &household);
        assert!(!condition(r#"{"field": "outcome", "eq": 4}"#).holds(&household_view));
    }

    #[test]
    fn conditions_need_exactly_one_operator_and_a_field_for_comparisons() {
        for bad in [
            r#"{"field": "a"}"#,
            r#"{"field": "a", "eq": 1, "ne": 2}"#,
            r#"{"eq": 1}"#,
            r#"{"field": "a", "all": []}"#,
            r#"{"field": "a", "equals": 1}"#,
        ] {
            assert!(serde_json::from_str::<Condition>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditions_read_as_english_and_round_trip_through_json() {
        let c = condition(
            r#"{"all": [{"field": "sex", "eq": 2}, {"any": [{"field": "age_years", "gte": 10}, {"field": "x", "answered": false}]}]}"#,
        );
        assert_eq!(c.to_string(), "sex is 2 and (age_years is at least 10 or x is not answered)");
        let again: Condition = serde_json::from_str(&serde_json::to_string(&c).expect("serialises")).expect("parses");
        assert_eq!(again, c);
        assert_eq!(c.fields(), ["sex", "age_years", "x"]);
    }
}
