//! Writing a form definition as an XLSForm and reading it back gives the identical definition.

use pilar_xlsform::{read_xlsform, write_xlsform};
use sync_core::finding::Severity;
use sync_core::form::{
    CheckDef, Choice, Comparison, Condition, FieldDef, FieldKind, FormDefinition, OutcomeDef, Pattern, Required, Scope,
};
use sync_core::value::FieldValue;

fn round_trip(form: &FormDefinition) -> FormDefinition {
    let bytes = write_xlsform(form).expect("writes");
    match read_xlsform(&bytes) {
        Ok(again) => again,
        Err(error) => panic!("reads back: {error}"),
    }
}

#[test]
fn default_dtsen_form_round_trips_through_xlsform() {
    let form = FormDefinition::default_dtsen();
    let again = round_trip(form);
    for scope in Scope::ALL {
        for (a, b) in form.fields(scope).iter().zip(again.fields(scope)) {
            assert_eq!(a, b, "{scope} field `{}`", a.name);
        }
    }
    assert_eq!(&again, form);
}

fn field(name: &str, kind: FieldKind) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: format!("Pertanyaan {name}"),
        kind,
        required: Required::No,
        relevant: None,
        help: None,
        device_editable: true,
        sensitive: false,
        retired: false,
    }
}

fn choices(codes: &[i64]) -> Vec<Choice> {
    codes.iter().map(|c| Choice { code: *c, label: format!("pilihan {c}") }).collect()
}

fn test(field: &str, test: Comparison) -> Condition {
    Condition::Field { field: field.into(), test }
}

/// Every kind with every option, each requiredness and flag, and conditions of every shape.
fn synthetic() -> FormDefinition {
    use FieldValue::{Bool, Decimal, Int, Text};
    let household = vec![
        field("plain_text", FieldKind::Text { max_len: None, pattern: None, pattern_hint: None }),
        FieldDef {
            required: Required::Always,
            help: Some("as on the sign".into()),
            ..field(
                "full_text",
                FieldKind::Text {
                    max_len: Some(40),
                    pattern: Some(Pattern::new("(\\+62|0)8\\d{8,12}|-")),
                    pattern_hint: Some("08… or -".into()),
                },
            )
        },
        field(
            "name_quote",
            FieldKind::Text {
                max_len: None, pattern: Some(Pattern::new("\\p{L}[\\p{L} '’\"]*")), pattern_hint: None
            },
        ),
        FieldDef {
            required: Required::Complete,
            ..field("count", FieldKind::Integer { min: Some(-3), max: Some(40), unknown_codes: vec![98, 99] })
        },
        field("open_integer", FieldKind::Integer { min: None, max: None, unknown_codes: Vec::new() }),
        field("area", FieldKind::Decimal { min: Some(0.5), max: Some(1e6) }),
        field("open_decimal", FieldKind::Decimal { min: None, max: Some(-0.25) }),
        FieldDef {
            device_editable: false,
            ..field("tenure", FieldKind::SelectOne { choices: choices(&[1, 2, 3, 98]) })
        },
        FieldDef {
            sensitive: true,
            ..field("assets", FieldKind::MultiSelect { choices: choices(&[0, 1, 2, 4, 99]), exclusive: vec![0, 99] })
        },
        field("plain_multi", FieldKind::MultiSelect { choices: choices(&[1, 2, 4]), exclusive: Vec::new() }),
        field("snapshot", FieldKind::Date { allow_unknown_parts: false }),
        FieldDef { retired: true, ..field("old_gps", FieldKind::Gps) },
        field("kk", FieldKind::KkNumber),
        field("village", FieldKind::VillageCode),
        field("flag", FieldKind::Boolean),
        FieldDef {
            relevant: Some(Condition::All(vec![
                test("tenure", Comparison::In(vec![Int(1), Int(2)])),
                test("count", Comparison::Gte(5.0)),
                Condition::Not(Box::new(test("flag", Comparison::Eq(Bool(true))))),
                Condition::Any(vec![
                    test("assets", Comparison::HasBit(4)),
                    test("plain_text", Comparison::Answered(false)),
                    test("plain_text", Comparison::Eq(Text("it's \"x\"".into()))),
                ]),
                test("area", Comparison::Lt(2.5)),
                test("open_decimal", Comparison::Eq(Decimal(3.0))),
                test("tenure", Comparison::NotIn(vec![Int(3)])),
                test("tenure", Comparison::In(vec![Int(98)])),
            ])),
            ..field("follow_up", FieldKind::Text { max_len: Some(10), pattern: None, pattern_hint: None })
        },
        FieldDef {
            relevant: Some(Condition::Any(vec![
                test("count", Comparison::Eq(Int(1))),
                test("count", Comparison::Eq(Int(2))),
            ])),
            ..field("any_of_equalities", FieldKind::Boolean)
        },
        FieldDef {
            relevant: Some(Condition::All(vec![test("count", Comparison::Ne(Int(1)))])),
            ..field("single_all", FieldKind::Boolean)
        },
        FieldDef { relevant: Some(Condition::Any(Vec::new())), ..field("never", FieldKind::Boolean) },
    ];
    let member = vec![
        field("sex", FieldKind::SelectOne { choices: choices(&[1, 2]) }),
        field("birth_date", FieldKind::Date { allow_unknown_parts: true }),
        field("nik", FieldKind::Nik { sex_field: Some("sex".into()), birth_date_field: Some("birth_date".into()) }),
        field("nik_alone", FieldKind::Nik { sex_field: None, birth_date_field: None }),
        FieldDef {
            relevant: Some(test("sex", Comparison::Eq(Int(2)))),
            ..field("pregnant", FieldKind::SelectOne { choices: choices(&[1, 2]) })
        },
    ];
    let visit = vec![
        field("outcome", FieldKind::SelectOne { choices: choices(&[1, 2]) }),
        FieldDef {
            relevant: Some(Condition::All(vec![
                test("outcome", Comparison::Eq(Int(2))),
                test("village", Comparison::Answered(true)),
            ])),
            ..field("note", FieldKind::Text { max_len: None, pattern: None, pattern_hint: None })
        },
    ];
    FormDefinition {
        id: "uji-sintetis".into(),
        version: 7,
        title: "Uji sintetis".into(),
        description: Some("every kind and option".into()),
        household,
        member,
        visit,
        outcomes: vec![
            OutcomeDef { code: 1, key: "DONE".into(), label: "Selesai".into(), is_final: true, complete_form: true },
            OutcomeDef {
                code: 2,
                key: "AWAY".into(),
                label: "Tidak ada".into(),
                is_final: false,
                complete_form: false,
            },
        ],
        checks: vec![
            CheckDef {
                id: "count_with_flag".into(),
                scope: Scope::Household,
                severity: Some(Severity::Warn),
                fields: vec!["count".into(), "flag".into()],
                when: Some(Condition::All(vec![
                    test("count", Comparison::Gt(10.0)),
                    test("flag", Comparison::Eq(Bool(false))),
                ])),
                only_when_complete: true,
                message: "is above 10 while flag is no; check both".into(),
            },
            CheckDef {
                id: "pregnant_sex".into(),
                scope: Scope::Member,
                severity: Some(Severity::Reject),
                fields: vec!["pregnant".into()],
                when: Some(Condition::All(vec![
                    test("sex", Comparison::Eq(Int(1))),
                    test("pregnant", Comparison::Eq(Int(1))),
                ])),
                only_when_complete: false,
                message: "a man cannot be pregnant".into(),
            },
            CheckDef {
                id: "nik_unique_in_household".into(),
                scope: Scope::Household,
                severity: None,
                fields: Vec::new(),
                when: None,
                only_when_complete: false,
                message: String::new(),
            },
        ],
    }
}

#[test]
fn every_kind_and_option_round_trips_through_xlsform() {
    let form = synthetic();
    form.check().expect("the synthetic form is valid");
    assert_eq!(round_trip(&form), form);
}
