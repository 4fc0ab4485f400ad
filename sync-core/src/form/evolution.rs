//! Whether a new version of a form keeps every household recorded under an older one readable
//! (issue 17): the rules a publish is checked against ([`check_evolution`]) and the differences
//! `pilar form diff` shows ([`diff`]).
//!
//! A household keeps the version its visit used, and its answers are read, shown and exported
//! with the newest labels; so a new version may add fields, choices, outcomes and labels, relax
//! ranges, change skip logic, and retire a field (`retired: true`: kept for old data, not asked).
//! It may not change what a stored answer means or make one invalid:
//!
//! - `type_changed`: a field's answer type changed (an integer read as text, a code as a date);
//! - `field_removed`: a field, member or visit field disappeared (retire it instead);
//! - `choice_removed`: a choice code disappeared (answers holding it would have no label);
//! - `choice_reused`: a choice code kept with a label that means something else (a label equal
//!   after ignoring case, spaces and punctuation is a spelling fix, not a new meaning);
//! - `outcome_removed`, `outcome_reused`: the same for visit outcome codes (and their keys and
//!   whether they are final or ask for a complete form);
//! - `required_added`: a new field required at once (existing households have no answer: add it
//!   as not required);
//! - `range_narrowed`: a minimum raised, a maximum lowered, a text limit shortened or a pattern
//!   added or changed (stored answers may no longer pass);
//! - `not_a_new_version`: the new definition is another form, or not a higher version.
//!
//! A skip condition naming an unknown field is refused by [`FormDefinition::check`] already.

use super::definition::{Choice, FieldDef, FieldKind, FormDefinition, Required, Scope};
use std::fmt;

/// One reason a new version would make stored data unreadable: the rule, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvolutionProblem {
    /// The rule broken (the names in the module docs).
    pub rule: &'static str,
    /// Where: `household field `rt``, `outcome 3`, `form`.
    pub location: String,
    /// What changed and what to do instead.
    pub detail: String,
}

impl fmt::Display for EvolutionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.location, self.detail, self.rule)
    }
}

/// One difference between two versions, for people reading `pilar form diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where: `household field `rt``, `outcome 3`, `form`.
    pub location: String,
    /// What changed, old → new.
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.what)
    }
}

fn field_location(scope: Scope, name: &str) -> String {
    format!("{scope} field `{name}`")
}

/// The kind's name as written in JSON (`type`), for messages.
fn kind_name(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Text { .. } => "text",
        FieldKind::Integer { .. } => "integer",
        FieldKind::Decimal { .. } => "decimal",
        FieldKind::SelectOne { .. } => "select_one",
        FieldKind::MultiSelect { .. } => "multi_select",
        FieldKind::Date { .. } => "date",
        FieldKind::Nik { .. } => "nik",
        FieldKind::KkNumber => "kk_number",
        FieldKind::VillageCode => "village_code",
        FieldKind::Gps => "gps",
        FieldKind::Boolean => "boolean",
    }
}

/// A label as it means: lowercase letters and digits, words separated by one space.
fn meaning(label: &str) -> String {
    label
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every reason publishing `new` after `old` would make households recorded under `old`
/// unreadable; empty when `new` may be published. Both are assumed to pass their own
/// [`FormDefinition::check`].
pub fn check_evolution(old: &FormDefinition, new: &FormDefinition) -> Vec<EvolutionProblem> {
    let mut problems = Vec::new();
    let mut problem = |rule: &'static str, location: String, detail: String| {
        problems.push(EvolutionProblem { rule, location, detail });
    };
    if new.id != old.id || new.version <= old.version {
        problem(
            "not_a_new_version",
            "form".into(),
            format!(
                "{} does not follow {}: a new version keeps the form's id and raises its version",
                new.key(),
                old.key()
            ),
        );
    }
    for scope in Scope::ALL {
        for before in old.fields(scope) {
            let location = field_location(scope, &before.name);
            let Some(after) = new.field(scope, &before.name) else {
                problem(
                    "field_removed",
                    location,
                    "is gone; households recorded under the old version hold answers to it: keep it with \
                     `\"retired\": true` (kept for old data, no longer asked)"
                        .into(),
                );
                continue;
            };
            if std::mem::discriminant(&before.kind) != std::mem::discriminant(&after.kind) {
                problem(
                    "type_changed",
                    location,
                    format!(
                        "its type changed from {} to {}; stored answers are {}: add a new field with a new \
                         name and retire this one",
                        kind_name(&before.kind),
                        kind_name(&after.kind),
                        kind_name(&before.kind)
                    ),
                );
                continue;
            }
            choices_kept(before.kind.choices(), after.kind.choices(), &location, &mut problem);
            narrowed(before, after, &location, &mut problem);
        }
        for after in new.fields(scope) {
            if old.field(scope, &after.name).is_none() && after.required != Required::No && !after.retired {
                problem(
                    "required_added",
                    field_location(scope, &after.name),
                    "is new and required; households recorded before have no answer to it: add it with \
                     `\"required\": \"no\"`"
                        .into(),
                );
            }
        }
    }
    for before in &old.outcomes {
        let location = format!("outcome {}", before.code);
        match new.outcome(before.code) {
            None => problem(
                "outcome_removed",
                location,
                format!("`{}` is gone; visits recorded with it would have no meaning: keep it", before.key),
            ),
            Some(after)
                if after.key != before.key
                    || after.is_final != before.is_final
                    || after.complete_form != before.complete_form
                    || meaning(&after.label) != meaning(&before.label) =>
            {
                problem(
                    "outcome_reused",
                    location,
                    format!(
                        "`{}` ({}) became `{}` ({}); a stored visit's outcome would change meaning: give the new \
                         outcome a new code",
                        before.key, before.label, after.key, after.label
                    ),
                )
            }
            Some(_) => {}
        }
    }
    problems
}

fn choices_kept(
    before: &[Choice],
    after: &[Choice],
    location: &str,
    problem: &mut impl FnMut(&'static str, String, String),
) {
    for choice in before {
        match after.iter().find(|c| c.code == choice.code) {
            None => problem(
                "choice_removed",
                location.to_string(),
                format!("choice {} ({}) is gone; stored answers hold it: keep it", choice.code, choice.label),
            ),
            Some(now) if meaning(&now.label) != meaning(&choice.label) => problem(
                "choice_reused",
                location.to_string(),
                format!(
                    "choice {} was \"{}\" and is now \"{}\"; stored answers meant the old label: give the new \
                     meaning a new code",
                    choice.code, choice.label, now.label
                ),
            ),
            Some(_) => {}
        }
    }
}

fn narrowed(
    before: &FieldDef,
    after: &FieldDef,
    location: &str,
    problem: &mut impl FnMut(&'static str, String, String),
) {
    let mut narrow = |what: String| {
        problem(
            "range_narrowed",
            location.to_string(),
            format!("{what}; stored answers may no longer pass: keep the old limit or widen it"),
        )
    };
    match (&before.kind, &after.kind) {
        (FieldKind::Integer { min: a_min, max: a_max, .. }, FieldKind::Integer { min: b_min, max: b_max, .. }) => {
            if raised(*a_min, *b_min) {
                narrow(format!("its minimum rose from {} to {}", show(*a_min), show(*b_min)));
            }
            if lowered(*a_max, *b_max) {
                narrow(format!("its maximum fell from {} to {}", show(*a_max), show(*b_max)));
            }
        }
        (FieldKind::Decimal { min: a_min, max: a_max }, FieldKind::Decimal { min: b_min, max: b_max }) => {
            if raised(*a_min, *b_min) {
                narrow(format!("its minimum rose from {} to {}", show(*a_min), show(*b_min)));
            }
            if lowered(*a_max, *b_max) {
                narrow(format!("its maximum fell from {} to {}", show(*a_max), show(*b_max)));
            }
        }
        (
            FieldKind::Text { max_len: a_len, pattern: a_pattern, .. },
            FieldKind::Text { max_len: b_len, pattern: b_pattern, .. },
        ) => {
            if lowered(*a_len, *b_len) {
                narrow(format!("its longest answer fell from {} to {} characters", show(*a_len), show(*b_len)));
            }
            let (a, b) = (a_pattern.as_ref().map(|p| p.as_str()), b_pattern.as_ref().map(|p| p.as_str()));
            if b.is_some() && a != b {
                narrow(format!("its pattern changed from {} to {}", a.unwrap_or("none"), b.unwrap_or("none")));
            }
        }
        (FieldKind::Date { allow_unknown_parts: true }, FieldKind::Date { allow_unknown_parts: false }) => {
            narrow("unknown date parts (98) are no longer allowed".into())
        }
        (FieldKind::MultiSelect { exclusive: a, .. }, FieldKind::MultiSelect { exclusive: b, .. }) => {
            if let Some(code) = a.iter().find(|c| !b.contains(c)) {
                narrow(format!("code {code} is no longer exclusive"));
            }
            if let Some(code) = b.iter().find(|c| !a.contains(c)) {
                narrow(format!("code {code} became exclusive"));
            }
        }
        _ => {}
    }
}

/// Whether a lower limit went up (or appeared).
fn raised<T: PartialOrd>(before: Option<T>, after: Option<T>) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => b > a,
    }
}

/// Whether an upper limit went down (or appeared).
fn lowered<T: PartialOrd>(before: Option<T>, after: Option<T>) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => b < a,
    }
}

fn show<T: fmt::Display>(limit: Option<T>) -> String {
    limit.map_or_else(|| "none".into(), |v| v.to_string())
}

/// What changed from `old` to `new`, field by field, in the order the new form lists them.
pub fn diff(old: &FormDefinition, new: &FormDefinition) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut say = |location: String, what: String| out.push(Difference { location, what });
    if old.key() != new.key() {
        say("form".into(), format!("{} → {}", old.key(), new.key()));
    }
    if old.title != new.title {
        say("form".into(), format!("title \"{}\" → \"{}\"", old.title, new.title));
    }
    for scope in Scope::ALL {
        for before in old.fields(scope) {
            if new.field(scope, &before.name).is_none() {
                say(field_location(scope, &before.name), "removed".into());
            }
        }
        for after in new.fields(scope) {
            let location = field_location(scope, &after.name);
            let Some(before) = old.field(scope, &after.name) else {
                say(location, format!("added: {} \"{}\"", kind_name(&after.kind), after.label));
                continue;
            };
            if before.label != after.label {
                say(location.clone(), format!("label \"{}\" → \"{}\"", before.label, after.label));
            }
            if before.retired != after.retired {
                say(location.clone(), if after.retired { "retired".into() } else { "asked again".into() });
            }
            if before.required != after.required {
                say(location.clone(), format!("required {:?} → {:?}", before.required, after.required));
            }
            if before.relevant != after.relevant {
                say(location.clone(), "skip condition changed".into());
            }
            if kind_name(&before.kind) != kind_name(&after.kind) {
                say(location.clone(), format!("type {} → {}", kind_name(&before.kind), kind_name(&after.kind)));
                continue;
            }
            for choice in after.kind.choices() {
                match before.kind.choices().iter().find(|c| c.code == choice.code) {
                    None => say(location.clone(), format!("choice {} \"{}\" added", choice.code, choice.label)),
                    Some(old_choice) if old_choice.label != choice.label => say(
                        location.clone(),
                        format!("choice {} \"{}\" → \"{}\"", choice.code, old_choice.label, choice.label),
                    ),
                    Some(_) => {}
                }
            }
            for choice in before.kind.choices() {
                if !after.kind.choices().iter().any(|c| c.code == choice.code) {
                    say(location.clone(), format!("choice {} \"{}\" removed", choice.code, choice.label));
                }
            }
            if before.kind != after.kind && before.kind.choices() == after.kind.choices() {
                say(location, "limits changed".into());
            }
        }
    }
    for after in &new.outcomes {
        match old.outcome(after.code) {
            None => say(format!("outcome {}", after.code), format!("added: {} \"{}\"", after.key, after.label)),
            Some(before) if before != after => say(
                format!("outcome {}", after.code),
                format!("{} \"{}\" → {} \"{}\"", before.key, before.label, after.key, after.label),
            ),
            Some(_) => {}
        }
    }
    for before in &old.outcomes {
        if new.outcome(before.code).is_none() {
            say(format!("outcome {}", before.code), "removed".into());
        }
    }
    if old.checks != new.checks {
        say("checks".into(), format!("{} → {} cross-field checks", old.checks.len(), new.checks.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dtsen() -> FormDefinition {
        FormDefinition::default_dtsen().clone()
    }

    fn next(edit: impl FnOnce(&mut FormDefinition)) -> FormDefinition {
        try_next(edit).expect("the edited form is consistent")
    }

    /// The next version with `edit` made, if it is still a consistent form.
    fn try_next(edit: impl FnOnce(&mut FormDefinition)) -> Option<FormDefinition> {
        let mut form = dtsen();
        form.version += 1;
        edit(&mut form);
        form.check().ok().map(|()| form)
    }

    /// A household field of the default form for which `edit` keeps the form consistent (no
    /// condition or check depends on what it changes), with the edited form.
    fn field_where(
        wanted: impl Fn(&FieldDef) -> bool,
        edit: impl Fn(&mut FormDefinition, &str),
    ) -> (String, FormDefinition) {
        dtsen()
            .household
            .iter()
            .filter(|f| wanted(f))
            .find_map(|f| try_next(|form| edit(form, &f.name)).map(|form| (f.name.clone(), form)))
            .expect("a field that can take the edit")
    }

    fn rules(old: &FormDefinition, new: &FormDefinition) -> Vec<(&'static str, String)> {
        check_evolution(old, new).into_iter().map(|p| (p.rule, p.location)).collect()
    }

    fn household_field<'a>(form: &'a mut FormDefinition, name: &str) -> &'a mut FieldDef {
        form.household.iter_mut().find(|f| f.name == name).expect("field")
    }

    fn first_select(form: &mut FormDefinition) -> (String, &mut Vec<Choice>) {
        let field = form
            .household
            .iter_mut()
            .find(|f| matches!(f.kind, FieldKind::SelectOne { .. }))
            .expect("a select-one field");
        let name = field.name.clone();
        let FieldKind::SelectOne { choices } = &mut field.kind else { unreachable!() };
        (name, choices)
    }

    #[test]
    fn adding_a_question_a_choice_and_a_label_and_retiring_a_field_are_fine() {
        let old = dtsen();
        let new = next(|form| {
            let mut added = form.household[0].clone();
            added.name = "bantuan_daerah".into();
            added.label = "Penerima bantuan daerah".into();
            added.kind = FieldKind::Boolean;
            added.required = Required::No;
            added.relevant = None;
            form.household.push(added);
            let (_, choices) = first_select(form);
            let code = choices.iter().map(|c| c.code).max().unwrap_or(0) + 1;
            choices.push(Choice { code, label: "Lainnya (sintetis)".into() });
            form.household[1].label.push_str(" (diperbarui)");
            form.household[2].retired = true;
            form.household[2].required = Required::No;
        });
        assert_eq!(rules(&old, &new), Vec::<(&str, String)>::new());
        let shown: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert!(shown.iter().any(|d| d.contains("`bantuan_daerah`: added: boolean")), "{shown:?}");
        assert!(shown.iter().any(|d| d.contains("Lainnya (sintetis)") && d.contains("added")), "{shown:?}");
        assert!(shown.iter().any(|d| d.contains(": retired")), "{shown:?}");
        assert!(shown.iter().any(|d| d.contains("label \"")), "{shown:?}");
    }

    #[test]
    fn each_incompatible_change_is_named_with_its_field_and_rule() {
        let old = dtsen();
        let is_text = |f: &FieldDef| matches!(f.kind, FieldKind::Text { .. });
        let (text_name, retyped) =
            field_where(is_text, |form, name| household_field(form, name).kind = FieldKind::Boolean);
        assert_eq!(rules(&old, &retyped), [("type_changed", format!("household field `{text_name}`"))]);

        let (gone, removed) = field_where(|_| true, |form, name| form.household.retain(|f| f.name != name));
        assert_eq!(rules(&old, &removed), [("field_removed", format!("household field `{gone}`"))]);

        let mut select_name = String::new();
        let reused = next(|form| {
            let (name, choices) = first_select(form);
            select_name = name;
            choices[0].label = "Arti lain sama sekali".into();
        });
        assert_eq!(rules(&old, &reused), [("choice_reused", format!("household field `{select_name}`"))]);
        let respelled = next(|form| {
            let (_, choices) = first_select(form);
            choices[0].label = format!("  {}.", choices[0].label.to_uppercase());
        });
        assert_eq!(rules(&old, &respelled), Vec::<(&str, String)>::new(), "case and punctuation are spelling");

        let dropped = next(|form| {
            let (_, choices) = first_select(form);
            choices.remove(0);
        });
        assert_eq!(rules(&old, &dropped), [("choice_removed", format!("household field `{select_name}`"))]);

        let required = next(|form| {
            let mut added = form.household[0].clone();
            added.name = "wajib_baru".into();
            added.kind = FieldKind::Boolean;
            added.required = Required::Always;
            added.relevant = None;
            form.household.push(added);
        });
        assert_eq!(rules(&old, &required), [("required_added", "household field `wajib_baru`".to_string())]);

        let has_max = |f: &FieldDef| matches!(f.kind, FieldKind::Integer { max: Some(_), .. });
        let (integer_name, narrowed) = field_where(has_max, |form, name| {
            if let FieldKind::Integer { max, .. } = &mut household_field(form, name).kind {
                *max = max.map(|m| m - 1);
            }
        });
        assert_eq!(rules(&old, &narrowed), [("range_narrowed", format!("household field `{integer_name}`"))]);
        let relaxed = next(|form| {
            if let FieldKind::Integer { max, .. } = &mut household_field(form, &integer_name).kind {
                *max = max.map(|m| m + 100);
            }
        });
        assert_eq!(rules(&old, &relaxed), Vec::<(&str, String)>::new(), "relaxing a range is fine");

        let outcome_gone = next(|form| {
            form.outcomes.pop();
        });
        let last = old.outcomes.last().expect("outcomes").code;
        assert_eq!(rules(&old, &outcome_gone), [("outcome_removed", format!("outcome {last}"))]);

        let same_version = dtsen();
        assert_eq!(rules(&old, &same_version), [("not_a_new_version", "form".to_string())]);
    }

    #[test]
    fn a_problem_reads_as_location_detail_and_rule() {
        let old = dtsen();
        let (name, new) = field_where(|_| true, |form, name| form.household.retain(|f| f.name != name));
        let text = check_evolution(&old, &new)[0].to_string();
        assert!(text.starts_with(&format!("household field `{name}`: is gone")), "{text}");
        assert!(text.contains("\"retired\": true") && text.ends_with("(field_removed)"), "{text}");
    }
}
