//! Turning what a person typed (CLI flags like `roof_material=2`) or wrote in a JSON answer file
//! into a [`FieldValue`] of the field's type.
//!
//! Parsing only converts: `"2"` becomes the code 2, a select-one label becomes its code, `"1+4"`
//! becomes the bitmask 5. Whether 2 is an allowed code, a value is in range or a NIK is valid is
//! judged afterwards by validation, so every problem is reported in one place and at once.
//! The exception is a multi-select sum, whose parts must each be a code of the field (otherwise
//! the sum would be ambiguous).
//!
//! Both entry points return `Ok(None)` for "no answer": blank text (after trimming) or JSON
//! `null`. Callers store that as a cleared answer.

use super::definition::{FieldDef, FieldKind};
use crate::finding::Finding;
use crate::ids;
use crate::value::FieldValue;

impl FieldDef {
    /// Converts typed text into this field's value type; `Ok(None)` means blank, i.e. no answer.
    ///
    /// Integers refuse `2.5`; decimals accept `2,5`; select-one accepts a code or a label (exact,
    /// any letter case); multi-select accepts `1+4` or the sum `5`; booleans accept
    /// 1/0/true/false/ya/tidak; NIK and KK numbers drop spaces, dots and dashes; a well-shaped
    /// village code is stored dotted (`7314011001` becomes `73.14.01.1001`); other text is
    /// trimmed.
    pub fn parse_input(&self, raw: &str) -> Result<Option<FieldValue>, Finding> {
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let value = match &self.kind {
            FieldKind::Text { .. } | FieldKind::Date { .. } | FieldKind::Gps => FieldValue::Text(text.to_owned()),
            FieldKind::Nik { .. } | FieldKind::KkNumber => {
                FieldValue::Text(text.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect())
            }
            // Whether the code exists is for validation to say; here it only gets its dots.
            FieldKind::VillageCode => FieldValue::Text(
                ids::VillageCode::parse_format_only(text)
                    .map(|code| code.as_str().to_owned())
                    .unwrap_or_else(|_| text.to_owned()),
            ),
            FieldKind::Integer { .. } => FieldValue::Int(self.parse_whole_number(text)?),
            FieldKind::Decimal { .. } => FieldValue::Decimal(self.parse_decimal(text)?),
            FieldKind::SelectOne { .. } => FieldValue::Int(self.parse_code_or_label(text)?),
            FieldKind::MultiSelect { .. } => FieldValue::Int(self.parse_code_sum(text)?),
            FieldKind::Boolean => FieldValue::Bool(self.parse_yes_no(text)?),
        };
        Ok(Some(value))
    }

    /// Converts a JSON answer into this field's value type; `Ok(None)` means `null` or blank text.
    ///
    /// Strings go through [`FieldDef::parse_input`]. Numbers suit number and code fields (a whole
    /// float such as `3.0` counts as 3) and plain text fields; identifiers must be strings so no
    /// digit is lost. A multi-select also takes an array of codes (`[1, 4]` is stored as 5).
    pub fn coerce_json(&self, value: &serde_json::Value) -> Result<Option<FieldValue>, Finding> {
        use serde_json::Value;
        match (value, &self.kind) {
            (Value::Null, _) => Ok(None),
            (Value::String(text), _) => self.parse_input(text),
            (Value::Bool(b), FieldKind::Boolean) => Ok(Some(FieldValue::Bool(*b))),
            (Value::Number(n), FieldKind::Boolean) => match n.as_i64() {
                Some(1) => Ok(Some(FieldValue::Bool(true))),
                Some(0) => Ok(Some(FieldValue::Bool(false))),
                _ => Err(self.type_error("not yes or no; write true or false")),
            },
            (Value::Number(n), FieldKind::Decimal { .. }) => match n.as_f64() {
                Some(number) if number.is_finite() => Ok(Some(FieldValue::Decimal(number))),
                _ => Err(self.type_error("not a number")),
            },
            (
                Value::Number(n),
                FieldKind::Integer { .. } | FieldKind::SelectOne { .. } | FieldKind::MultiSelect { .. },
            ) => match n.as_i64().or_else(|| n.as_f64().and_then(whole_f64)) {
                Some(whole) => Ok(Some(FieldValue::Int(whole))),
                None => Err(self.type_error("not a whole number; write a code or count without a fraction")),
            },
            (Value::Number(n), FieldKind::Text { .. }) => Ok(Some(FieldValue::Text(n.to_string()))),
            (Value::Array(items), FieldKind::MultiSelect { .. }) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_i64() {
                        Some(code) => parts.push(code),
                        None => {
                            return Err(self.type_error(
                                "lists something other than a code; write an array of codes such as [1, 4]",
                            ));
                        }
                    }
                }
                if parts.is_empty() {
                    return Ok(None);
                }
                self.sum_codes(&parts).map(|sum| Some(FieldValue::Int(sum)))
            }
            _ => Err(self.type_error(&format!(
                "the json value has the wrong type; write {} (identifiers and dates as strings in quotes)",
                self.kind.describe()
            ))),
        }
    }

    /// `name (label)`, how every message names a field.
    pub(crate) fn title(&self) -> String {
        format!("{} ({})", self.name, self.label)
    }

    fn type_error(&self, what: &str) -> Finding {
        Finding::reject("type", format!("{}: {what}", self.title()))
    }

    fn parse_decimal(&self, text: &str) -> Result<f64, Finding> {
        // A decimal comma (Indonesian style) is read as a point when there is no point.
        let normalised = if text.contains('.') { text.to_owned() } else { text.replace(',', ".") };
        match normalised.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(number),
            _ => Err(self.type_error("not a number; enter digits with a decimal point, e.g. 12.5")),
        }
    }

    fn parse_code_or_label(&self, text: &str) -> Result<i64, Finding> {
        if let Ok(code) = text.parse::<i64>() {
            return Ok(code);
        }
        let wanted = text.to_lowercase();
        match self.kind.choices().iter().find(|c| c.label.to_lowercase() == wanted) {
            Some(choice) => Ok(choice.code),
            None => Err(Finding::reject(
                "choice",
                format!(
                    "{}: not a code or a label of this question; enter one of {}",
                    self.title(),
                    list_choices(self)
                ),
            )),
        }
    }

    fn parse_yes_no(&self, text: &str) -> Result<bool, Finding> {
        match text.to_lowercase().as_str() {
            "1" | "true" | "ya" => Ok(true),
            "0" | "false" | "tidak" => Ok(false),
            _ => Err(self.type_error("not yes or no; enter ya or tidak (or 1/0, true/false)")),
        }
    }

    fn parse_whole_number(&self, text: &str) -> Result<i64, Finding> {
        text.parse::<i64>().map_err(|_| {
            if text.parse::<f64>().is_ok() {
                self.type_error("not a whole number; enter it without a fraction, e.g. 3")
            } else {
                self.type_error("not a number; enter digits only, e.g. 3")
            }
        })
    }

    /// Parses `1+4` (or `5`) into a bitmask, refusing parts that are not codes of the field.
    fn parse_code_sum(&self, text: &str) -> Result<i64, Finding> {
        let mut parts = Vec::new();
        for part in text.split('+') {
            let part = part.trim();
            match part.parse::<i64>() {
                Ok(code) => parts.push(code),
                Err(_) => {
                    return Err(self.type_error(
                        "not a code or a sum of codes; enter codes joined by '+', e.g. 1+4, or their sum",
                    ));
                }
            }
        }
        if parts.len() == 1 {
            // A single number is already the stored sum; validation judges whether it is one.
            return Ok(parts[0]);
        }
        self.sum_codes(&parts)
    }

    fn sum_codes(&self, parts: &[i64]) -> Result<i64, Finding> {
        let FieldKind::MultiSelect { choices, exclusive } = &self.kind else {
            return Err(self.type_error("is not a multi-select question"));
        };
        if parts.len() == 1 {
            return Ok(parts[0]);
        }
        let mut sum = 0i64;
        for code in parts {
            if exclusive.contains(code) {
                return Err(Finding::reject(
                    "choice",
                    format!(
                        "{}: code {code} stands alone and cannot be combined with other codes; enter it by itself",
                        self.title()
                    ),
                ));
            }
            if !choices.iter().any(|c| c.code == *code) {
                return Err(Finding::reject(
                    "choice",
                    format!(
                        "{}: {code} is not a code of this question; enter codes from {}",
                        self.title(),
                        list_choices(self)
                    ),
                ));
            }
            if sum & code != 0 {
                return Err(Finding::reject(
                    "choice",
                    format!("{}: code {code} is listed twice; list each code once", self.title()),
                ));
            }
            sum |= code;
        }
        Ok(sum)
    }
}

/// `f64` to `i64` when it is a whole number in range.
fn whole_f64(number: f64) -> Option<i64> {
    let in_range = number >= i64::MIN as f64 && number <= i64::MAX as f64;
    (number.fract() == 0.0 && in_range).then_some(number as i64)
}

/// A short list of a select field's codes for messages: labels when few, code ranges when many.
pub(crate) fn list_choices(field: &FieldDef) -> String {
    let choices = field.kind.choices();
    if choices.len() <= 8 {
        let parts: Vec<String> = choices.iter().map(|c| format!("{} {}", c.code, c.label)).collect();
        return parts.join(", ");
    }
    let mut codes: Vec<i64> = choices.iter().map(|c| c.code).collect();
    codes.sort_unstable();
    let mut ranges: Vec<String> = Vec::new();
    let mut start = codes[0];
    let mut end = codes[0];
    for &code in &codes[1..] {
        if code == end + 1 {
            end = code;
        } else {
            ranges.push(show_range(start, end));
            start = code;
            end = code;
        }
    }
    ranges.push(show_range(start, end));
    format!("codes {}", ranges.join(", "))
}

fn show_range(start: i64, end: i64) -> String {
    if start == end { start.to_string() } else { format!("{start}–{end}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::form::{FormDefinition, Scope};
    use serde_json::json;

    fn household(name: &str) -> &'static FieldDef {
        FormDefinition::default_dtsen().field(Scope::Household, name).expect("field exists")
    }

    fn member(name: &str) -> &'static FieldDef {
        FormDefinition::default_dtsen().field(Scope::Member, name).expect("field exists")
    }

    fn parsed(field: &FieldDef, raw: &str) -> Option<FieldValue> {
        field.parse_input(raw).expect("parses")
    }

    fn refused(field: &FieldDef, raw: &str) -> Finding {
        field.parse_input(raw).expect_err("refused")
    }

    #[test]
    fn blank_input_means_no_answer() {
        assert_eq!(parsed(household("roof_material"), "   "), None);
        assert_eq!(parsed(household("address"), ""), None);
        assert_eq!(household("floor_area_m2").coerce_json(&json!(null)), Ok(None));
        assert_eq!(household("address").coerce_json(&json!(" ")), Ok(None));
    }

    #[test]
    fn select_one_takes_a_code_or_its_exact_label_in_any_case() {
        let roof = household("roof_material");
        assert_eq!(parsed(roof, "2"), Some(FieldValue::Int(2)));
        assert_eq!(parsed(roof, "Genteng"), Some(FieldValue::Int(2)));
        assert_eq!(parsed(roof, " SENG "), Some(FieldValue::Int(3)));
        // Out-of-list codes are left to validation, which reports them with the valid codes.
        assert_eq!(parsed(roof, "42"), Some(FieldValue::Int(42)));
        let finding = refused(roof, "genting");
        assert_eq!((finding.rule.as_str(), finding.severity), ("choice", Severity::Reject));
        assert!(finding.message.starts_with("roof_material (Jenis atap terluas):"), "{}", finding.message);
        assert!(finding.message.contains("2 genteng"), "{}", finding.message);
    }

    #[test]
    fn integers_refuse_fractions_and_words() {
        let area = household("floor_area_m2");
        assert_eq!(parsed(area, "36"), Some(FieldValue::Int(36)));
        assert_eq!(refused(area, "2.5").rule, "type");
        assert!(refused(area, "2.5").message.contains("whole number"));
        assert_eq!(refused(area, "tiga").rule, "type");
        assert_eq!(area.coerce_json(&json!(36)), Ok(Some(FieldValue::Int(36))));
        assert_eq!(area.coerce_json(&json!(36.0)), Ok(Some(FieldValue::Int(36))));
        assert!(area.coerce_json(&json!(2.5)).is_err());
        assert!(area.coerce_json(&json!(true)).is_err());
    }

    #[test]
    fn decimals_accept_a_decimal_comma() {
        let lat = household("latitude");
        assert_eq!(parsed(lat, "-3.99"), Some(FieldValue::Decimal(-3.99)));
        assert_eq!(parsed(lat, "-3,99"), Some(FieldValue::Decimal(-3.99)));
        assert_eq!(refused(lat, "utara").rule, "type");
        assert_eq!(lat.coerce_json(&json!(-4)), Ok(Some(FieldValue::Decimal(-4.0))));
    }

    #[test]
    fn multi_select_takes_a_plus_list_or_the_sum() {
        let docs = member("id_documents");
        assert_eq!(parsed(docs, "1+4"), Some(FieldValue::Int(5)));
        assert_eq!(parsed(docs, "5"), Some(FieldValue::Int(5)));
        assert_eq!(parsed(docs, "0"), Some(FieldValue::Int(0)));
        assert_eq!(refused(docs, "0+4").rule, "choice");
        assert_eq!(refused(docs, "1+3").rule, "choice");
        assert_eq!(refused(docs, "1+1").rule, "choice");
        assert_eq!(refused(docs, "1+x").rule, "type");
        assert_eq!(docs.coerce_json(&json!([1, 4])), Ok(Some(FieldValue::Int(5))));
        assert_eq!(docs.coerce_json(&json!(5)), Ok(Some(FieldValue::Int(5))));
        assert!(docs.coerce_json(&json!([0, 4])).is_err());
    }

    #[test]
    fn booleans_accept_indonesian_and_numeric_forms() {
        let notice = FormDefinition::default_dtsen().field(Scope::Visit, "notice_given").expect("field");
        for (raw, expected) in
            [("ya", true), ("Tidak", false), ("1", true), ("0", false), ("TRUE", true), ("false", false)]
        {
            assert_eq!(parsed(notice, raw), Some(FieldValue::Bool(expected)), "{raw}");
        }
        assert_eq!(refused(notice, "mungkin").rule, "type");
        assert_eq!(notice.coerce_json(&json!(true)), Ok(Some(FieldValue::Bool(true))));
        assert_eq!(notice.coerce_json(&json!(0)), Ok(Some(FieldValue::Bool(false))));
    }

    #[test]
    fn identifiers_drop_separators_and_must_be_json_strings() {
        let nik = member("nik");
        assert_eq!(parsed(nik, " 7314 0152.0785-9001 "), Some(FieldValue::Text("7314015207859001".into())));
        assert!(nik.coerce_json(&json!(7314015207859001_i64)).is_err());
        let kk = household("kk_number");
        assert_eq!(parsed(kk, "7314-0101-0120-9001"), Some(FieldValue::Text("7314010101209001".into())));
        // Village codes are stored in their dotted form, however they were typed.
        for typed in [" 73.14.01.1001 ", "7314011001"] {
            assert_eq!(parsed(household("village_code"), typed), Some(FieldValue::Text("73.14.01.1001".into())));
        }
        assert_eq!(parsed(household("village_code"), "73.14"), Some(FieldValue::Text("73.14".into())));
    }

    #[test]
    fn text_dates_and_gps_are_trimmed_text() {
        assert_eq!(parsed(household("address"), "  Jl. Poros  "), Some(FieldValue::Text("Jl. Poros".into())));
        assert_eq!(parsed(member("birth_date"), "1985-07-12"), Some(FieldValue::Text("1985-07-12".into())));
        assert_eq!(household("rt").coerce_json(&json!(3)), Ok(Some(FieldValue::Text("3".into()))));
        assert!(household("address").coerce_json(&json!({"a": 1})).is_err());
    }
}
