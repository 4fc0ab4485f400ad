//! Conditions written as XLSForm expressions read back as the identical condition, and
//! hand-written expressions read as Pilar conditions.

use pilar_xlsform::expression::{parse_condition, write_condition};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sync_core::form::{Choice, Comparison, Condition, FieldDef, FieldKind, FormDefinition, Required, Scope};
use sync_core::value::FieldValue;

fn field(name: &str, kind: FieldKind) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: name.into(),
        kind,
        required: Required::No,
        relevant: None,
        help: None,
        device_editable: true,
        sensitive: false,
        retired: false,
    }
}

/// One household question of each kind a condition can compare.
fn form() -> FormDefinition {
    let choices = |codes: &[i64]| codes.iter().map(|c| Choice { code: *c, label: format!("c{c}") }).collect();
    FormDefinition {
        id: "t".into(),
        version: 1,
        title: "t".into(),
        description: None,
        household: vec![
            field("age", FieldKind::Integer { min: None, max: None, unknown_codes: Vec::new() }),
            field("area", FieldKind::Decimal { min: None, max: None }),
            field("tenure", FieldKind::SelectOne { choices: choices(&[1, 2, 3, 4, 5, 98]) }),
            field("assets", FieldKind::MultiSelect { choices: choices(&[0, 1, 2, 4, 8]), exclusive: vec![0] }),
            field("name", FieldKind::Text { max_len: None, pattern: None, pattern_hint: None }),
            field("born", FieldKind::Date { allow_unknown_parts: false }),
            field("flag", FieldKind::Boolean),
        ],
        member: Vec::new(),
        visit: Vec::new(),
        outcomes: Vec::new(),
        checks: Vec::new(),
    }
}

fn value_for(name: &'static str) -> BoxedStrategy<FieldValue> {
    match name {
        "age" => any::<i64>().prop_map(FieldValue::Int).boxed(),
        "area" => prop_oneof![
            any::<i64>().prop_map(FieldValue::Int),
            (-1.0e9..1.0e9f64).prop_map(FieldValue::Decimal),
            prop::num::f64::NORMAL.prop_map(FieldValue::Decimal),
        ]
        .boxed(),
        "tenure" => prop::sample::select(vec![1i64, 2, 3, 4, 5, 98]).prop_map(FieldValue::Int).boxed(),
        "assets" => (0i64..16).prop_map(FieldValue::Int).boxed(),
        "flag" => any::<bool>().prop_map(FieldValue::Bool).boxed(),
        // Any text but the empty one (which is how "not answered" is written).
        _ => "[^\u{0}]{1,12}".prop_map(FieldValue::Text).boxed(),
    }
}

fn leaf() -> BoxedStrategy<Condition> {
    let names = ["age", "area", "tenure", "assets", "name", "born", "flag"];
    prop::sample::select(names.to_vec())
        .prop_flat_map(|name| {
            let numeric = matches!(name, "age" | "area" | "tenure");
            let bound = prop_oneof![-1.0e12..1.0e12f64, (-1000i64..1000).prop_map(|i| i as f64)];
            let mut tests: Vec<BoxedStrategy<Comparison>> = vec![
                value_for(name).prop_map(Comparison::Eq).boxed(),
                value_for(name).prop_map(Comparison::Ne).boxed(),
                prop::collection::vec(value_for(name), 1..4).prop_map(Comparison::In).boxed(),
                prop::collection::vec(value_for(name), 1..4).prop_map(Comparison::NotIn).boxed(),
                any::<bool>().prop_map(Comparison::Answered).boxed(),
            ];
            if numeric {
                tests.push(bound.clone().prop_map(Comparison::Gt).boxed());
                tests.push(bound.clone().prop_map(Comparison::Gte).boxed());
                tests.push(bound.clone().prop_map(Comparison::Lt).boxed());
                tests.push(bound.prop_map(Comparison::Lte).boxed());
            }
            if name == "assets" {
                tests.push(prop::sample::select(vec![1i64, 2, 4, 8]).prop_map(Comparison::HasBit).boxed());
            }
            prop::strategy::Union::new(tests).prop_map(move |test| Condition::Field { field: name.into(), test })
        })
        .boxed()
}

fn condition() -> impl Strategy<Value = Condition> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Condition::All),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Condition::Any),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

#[test]
fn generated_conditions_read_back_identical_after_writing() {
    let form = form();
    let seed: [u8; 32] = *b"pilar-xlsform-condition-roundtri";
    println!("proptest seed (ChaCha): {seed:?}");
    let mut runner = TestRunner::new_with_rng(
        Config { cases: 2000, failure_persistence: None, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let result = runner.run(&condition(), |condition| {
        let text = write_condition(&condition).map_err(|e| TestCaseError::fail(format!("{condition:?}: {e}")))?;
        let again =
            parse_condition(&text, &form, Scope::Household).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&again, &condition, "written as {}", text);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("seed {seed:?}: {failure}");
    }
}

fn read(text: &str) -> Condition {
    parse_condition(text, &form(), Scope::Household).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn test(field: &str, test: Comparison) -> Condition {
    Condition::Field { field: field.into(), test }
}

#[test]
fn hand_written_expressions_read_as_pilar_conditions() {
    use FieldValue::{Int, Text};
    assert_eq!(read("${tenure} = '4'"), test("tenure", Comparison::Eq(Int(4))));
    assert_eq!(read("selected(${tenure}, '4')"), test("tenure", Comparison::Eq(Int(4))));
    assert_eq!(read("selected(${assets}, '4')"), test("assets", Comparison::HasBit(4)));
    assert_eq!(read("5 <= ${age}"), test("age", Comparison::Gte(5.0)));
    assert_eq!(read("string-length(${name}) > 0"), test("name", Comparison::Answered(true)));
    assert_eq!(read("string-length(${name}) = 0"), test("name", Comparison::Answered(false)));
    assert_eq!(read("${name} != \"\""), test("name", Comparison::Answered(true)));
    assert_eq!(read("${born} = 2020"), test("born", Comparison::Eq(Text("2020".into()))));
    assert_eq!(read("(${tenure} = 4 or ${tenure} = 5)"), test("tenure", Comparison::In(vec![Int(4), Int(5)])));
    assert_eq!(read("${tenure} != 4 and ${tenure} != 5"), test("tenure", Comparison::NotIn(vec![Int(4), Int(5)])));
    assert_eq!(
        read("${age} >= 10 and (${tenure} = 1 or ${age} < 3)"),
        Condition::All(vec![
            test("age", Comparison::Gte(10.0)),
            Condition::Any(vec![test("tenure", Comparison::Eq(Int(1))), test("age", Comparison::Lt(3.0))]),
        ])
    );
    assert_eq!(
        read("not(${flag} = true())"),
        Condition::Not(Box::new(test("flag", Comparison::Eq(FieldValue::Bool(true)))))
    );
}

#[test]
fn written_expressions_read_like_xlsform() {
    use FieldValue::Int;
    let written = |c: Condition| write_condition(&c).expect("writes");
    assert_eq!(written(test("tenure", Comparison::In(vec![Int(4), Int(5)]))), "${tenure} = 4 or ${tenure} = 5");
    assert_eq!(
        written(Condition::Any(vec![test("tenure", Comparison::Eq(Int(4))), test("tenure", Comparison::Eq(Int(5)))])),
        "(${tenure} = 4) or (${tenure} = 5)"
    );
    assert_eq!(
        written(Condition::All(vec![
            test("age", Comparison::Gte(5.0)),
            test("tenure", Comparison::NotIn(vec![Int(2), Int(3)]))
        ])),
        "${age} >= 5 and (${tenure} != 2 and ${tenure} != 3)"
    );
    assert_eq!(written(test("assets", Comparison::HasBit(2))), "selected(${assets}, '2')");
    assert_eq!(written(test("name", Comparison::Answered(true))), "${name} != ''");
}

#[test]
fn unreadable_expressions_name_the_position_and_the_fix() {
    let cases = [
        ("${agee} >= 5", 1, "`${agee}` is not a household question"),
        ("${age} >= 'lima'", 11, "compares numbers"),
        ("count-selected(${assets}) > 1", 1, "count-selected() is not supported"),
        ("${age}", 1, "alone is not a condition"),
        ("selected(${name}, 'x')", 19, "choice code"),
    ];
    for (text, at, words) in cases {
        let error = parse_condition(text, &form(), Scope::Household).expect_err(text);
        assert_eq!(error.at, at, "{text}: {error}");
        assert!(error.to_string().contains(words), "{text}: {error}");
    }
}
