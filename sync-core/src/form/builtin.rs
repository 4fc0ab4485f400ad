//! The built-in household checks that need all members at once: the member count, exactly one
//! head of the family, and no NIK shared by two members.
//!
//! A member counts as present when its `presence` (REGSOSEK 404) is 1 (lives with the family) or
//! 4 (new member); members whose presence is unanswered are not counted (the `required` rule
//! reports the missing presence instead).

use std::collections::BTreeMap;

use super::definition::{BuiltinCheck, FormDefinition, MEMBER_COUNT_FIELD, PRESENCE_FIELD, RELATIONSHIP_FIELD};
use super::validate::{MemberAnswers, Problem, Report, ValidationContext, title};
use crate::finding::Severity;
use crate::value::FieldValue;

/// Presence codes of members who live in the household.
const PRESENT: [i64; 2] = [1, 4];
/// Relationship code of the head of the family.
const HEAD: i64 = 1;

/// Runs one built-in; `severity` (from the form's check) overrides the built-in's own level.
pub(crate) fn run(
    form: &FormDefinition,
    kind: BuiltinCheck,
    severity: Option<Severity>,
    answers: &BTreeMap<String, FieldValue>,
    members: &[MemberAnswers<'_>],
    ctx: &ValidationContext,
    report: &mut Report,
) {
    match kind {
        BuiltinCheck::MemberCountMatches => {
            member_count_matches(form, severity.unwrap_or(Severity::Warn), answers, members, report)
        }
        BuiltinCheck::ExactlyOneHead => {
            let default = if ctx.complete { Severity::Reject } else { Severity::Warn };
            exactly_one_head(severity.unwrap_or(default), members, report)
        }
        BuiltinCheck::NikUniqueInHousehold => nik_unique(form, severity.unwrap_or(Severity::Reject), members, report),
    }
}

fn is_present(member: &MemberAnswers<'_>) -> bool {
    member.answers.get(PRESENCE_FIELD).and_then(FieldValue::as_int).is_some_and(|p| PRESENT.contains(&p))
}

fn member_count_matches(
    form: &FormDefinition,
    severity: Severity,
    answers: &BTreeMap<String, FieldValue>,
    members: &[MemberAnswers<'_>],
    report: &mut Report,
) {
    let Some(count) = answers.get(MEMBER_COUNT_FIELD).and_then(FieldValue::as_int) else {
        return;
    };
    let present = members.iter().filter(|m| is_present(m)).count();
    if usize::try_from(count).is_ok_and(|count| count == present) {
        return;
    }
    let named = match form.field(super::Scope::Household, MEMBER_COUNT_FIELD) {
        Some(field) => title(MEMBER_COUNT_FIELD, field),
        None => MEMBER_COUNT_FIELD.to_owned(),
    };
    report.problems.push(Problem {
        field: MEMBER_COUNT_FIELD.into(),
        rule: BuiltinCheck::MemberCountMatches.id().into(),
        value: Some(count.to_string()),
        severity,
        message: format!(
            "{named}: {count}, but {present} members live in the household (presence 1 or 4); \
             correct the count or the members' presence"
        ),
    });
}

fn exactly_one_head(severity: Severity, members: &[MemberAnswers<'_>], report: &mut Report) {
    let heads: Vec<&str> = members
        .iter()
        .filter(|m| is_present(m))
        .filter(|m| m.answers.get(RELATIONSHIP_FIELD).and_then(FieldValue::as_int) == Some(HEAD))
        .map(|m| m.key.as_str())
        .collect();
    let (value, message) = match heads.len() {
        1 => return,
        0 => (
            None,
            "members: no present member is the head of the family (relationship 1); mark the \
             head, or record a new head if the head has died or moved"
                .to_owned(),
        ),
        n => (
            Some(heads.join(", ")),
            format!(
                "members: {n} present members ({}) are recorded as head of the family \
                 (relationship 1); exactly one is allowed, change the relationship of the others",
                heads.join(", ")
            ),
        ),
    };
    report.problems.push(Problem {
        field: "members".into(),
        rule: BuiltinCheck::ExactlyOneHead.id().into(),
        value,
        severity,
        message,
    });
}

fn nik_unique(form: &FormDefinition, severity: Severity, members: &[MemberAnswers<'_>], report: &mut Report) {
    let Some(nik_field) = form.member_nik_field() else {
        return;
    };
    let mut first_holder: BTreeMap<String, &str> = BTreeMap::new();
    for member in members {
        let Some(raw) = member.answers.get(&nik_field.name).and_then(FieldValue::as_text) else {
            continue;
        };
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect();
        if digits.is_empty() {
            continue;
        }
        match first_holder.get(&digits) {
            None => {
                first_holder.insert(digits, member.key.as_str());
            }
            Some(first) => {
                let path = format!("members[{}].{}", member.key, nik_field.name);
                report.problems.push(Problem {
                    message: format!(
                        "{}: the same NIK as member {first}; each person has their own NIK, \
                         check both against the KK",
                        title(&path, nik_field)
                    ),
                    field: path,
                    rule: BuiltinCheck::NikUniqueInHousehold.id().into(),
                    value: Some(raw.to_owned()),
                    severity,
                });
            }
        }
    }
}
