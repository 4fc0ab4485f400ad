//! The SQL of the office page's facts queries ([`FactsQuery`], the tally, visits per day), written
//! once for both backends: they differ only in how a placeholder is spelled (`?1` or `$1`), so
//! each backend asks for its spelling and binds the [`SqlArg`]s in order. Every text column these
//! read is compared bytewise (SQLite's default, `COLLATE "C"` on PostgreSQL), so an area's villages
//! are the range `[code, code/)`, which an index answers.

use super::FactsQuery;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlArg {
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
}

/// One statement and what its placeholders are bound to, in order.
#[derive(Debug, Clone)]
pub struct Sql {
    /// The statement.
    pub text: String,
    /// The placeholders' values (`?1`/`$1` first).
    pub args: Vec<SqlArg>,
}

/// How a backend spells its placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `?1` (SQLite).
    Question,
    /// `$1` (PostgreSQL).
    Dollar,
}

struct Builder {
    style: Placeholder,
    args: Vec<SqlArg>,
}

impl Builder {
    fn new(style: Placeholder) -> Self {
        Builder { style, args: Vec::new() }
    }

    fn arg(&mut self, value: SqlArg) -> String {
        self.args.push(value);
        match self.style {
            Placeholder::Question => format!("?{}", self.args.len()),
            Placeholder::Dollar => format!("${}", self.args.len()),
        }
    }

    fn text(&mut self, value: &str) -> String {
        self.arg(SqlArg::Text(value.to_string()))
    }

    /// `village` in one of `areas` (`None`: always true).
    fn areas(&mut self, areas: Option<&[String]>) -> String {
        let Some(areas) = areas else { return "1 = 1".into() };
        if areas.is_empty() {
            return "1 = 0".into();
        }
        let one: Vec<String> = areas
            .iter()
            .map(|area| {
                // One range an index answers, [code, code/), then exactly the code or `code.`
                // and more (a village code holds digits and dots only, but the range alone would
                // also take `code-x`).
                let exact = self.text(area);
                let below = self.text(&format!("{area}/"));
                let under = self.text(&format!("{area}."));
                format!("(village >= {exact} AND village < {below} AND (village = {exact} OR village >= {under}))")
            })
            .collect();
        format!("({})", one.join(" OR "))
    }
}

/// `value` as a LIKE pattern matching itself literally (with `ESCAPE '\'`).
fn like_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The conditions of a [`FactsQuery`], for `household_facts`.
fn facts_where(b: &mut Builder, query: &FactsQuery) -> String {
    let mut conditions = vec!["merged_into IS NULL".to_string(), b.areas(query.areas.as_deref())];
    if let Some(ids) = &query.households {
        if ids.is_empty() {
            conditions.push("1 = 0".into());
        } else {
            let list: Vec<String> = ids.iter().map(|id| b.text(&id.to_string())).collect();
            conditions.push(format!("household_id IN ({})", list.join(", ")));
        }
    }
    if let Some(prefix) = &query.village_prefix {
        let pattern = b.text(&format!("{}%", like_literal(prefix)));
        conditions.push(format!("village LIKE {pattern} ESCAPE '\\'"));
    }
    if let Some(name) = &query.name_contains {
        let pattern = b.text(&format!("%{}%", like_literal(name)));
        conditions.push(format!("name_key LIKE {pattern} ESCAPE '\\'"));
    }
    if let Some(rt) = &query.rt_key {
        conditions.push(format!("rt_key = {}", b.text(rt)));
    }
    match &query.review {
        None => {}
        Some(None) => conditions.push("review IS NULL".into()),
        Some(Some(status)) => conditions.push(format!("review = {}", b.text(status))),
    }
    if let Some(code) = query.last_outcome {
        conditions.push(format!("last_outcome = {}", b.arg(SqlArg::Int(code))));
    }
    if query.conflicts_only {
        conditions.push(
            "(conflict_count > 0 OR household_id IN \
             (SELECT survivor FROM fold_disagreements WHERE resolved_at IS NULL))"
                .into(),
        );
    }
    conditions.join(" AND ")
}

/// How many households match a [`FactsQuery`] (one column: the count).
pub fn facts_count(style: Placeholder, query: &FactsQuery) -> Sql {
    let mut b = Builder::new(style);
    let conditions = facts_where(&mut b, query);
    Sql { text: format!("SELECT count(*) FROM household_facts WHERE {conditions}"), args: b.args }
}

/// The page of a [`FactsQuery`]: `columns` of the matching rows, by village, name key, id.
pub fn facts_page(style: Placeholder, query: &FactsQuery, columns: &str) -> Sql {
    let mut b = Builder::new(style);
    let conditions = facts_where(&mut b, query);
    let limit = b.arg(SqlArg::Int(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let offset = b.arg(SqlArg::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    Sql {
        text: format!(
            "SELECT {columns} FROM household_facts WHERE {conditions}
             ORDER BY village, name_key, household_id LIMIT {limit} OFFSET {offset}"
        ),
        args: b.args,
    }
}

/// Live households of `areas` grouped for the progress report: village, last visitor, review,
/// final outcome, visited (0/1), households, conflicts (all integers 64-bit).
pub fn facts_tally(style: Placeholder, areas: Option<&[String]>) -> Sql {
    let mut b = Builder::new(style);
    let areas = b.areas(areas);
    Sql {
        text: format!(
            "SELECT village, last_visit_by, review, final_outcome,
                    CAST(CASE WHEN visits > 0 THEN 1 ELSE 0 END AS BIGINT),
                    CAST(count(*) AS BIGINT), CAST(sum(conflict_count) AS BIGINT)
             FROM household_facts WHERE merged_into IS NULL AND {areas}
             GROUP BY 1, 2, 3, 4, 5"
        ),
        args: b.args,
    }
}

/// Visits per day (day, visits) from day `from` on, of live households of `areas`, by day.
pub fn visits_per_day(style: Placeholder, areas: Option<&[String]>, from: &str) -> Sql {
    let mut b = Builder::new(style);
    let from = b.text(from);
    let areas = b.areas(areas);
    Sql {
        text: format!(
            "SELECT day, CAST(sum(visits) AS BIGINT) FROM household_visit_days
             WHERE day >= {from} AND {areas} GROUP BY day ORDER BY day"
        ),
        args: b.args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_the_order_they_are_bound() {
        let query = FactsQuery {
            areas: Some(vec!["73.14.01".into()]),
            name_contains: Some("50%_off".into()),
            last_outcome: Some(1),
            limit: 50,
            ..FactsQuery::default()
        };
        let sql = facts_page(Placeholder::Dollar, &query, "household_id");
        assert!(
            sql.text.contains("(village >= $1 AND village < $2 AND (village = $1 OR village >= $3))"),
            "{}",
            sql.text
        );
        assert!(sql.text.contains("name_key LIKE $4"), "{}", sql.text);
        assert!(sql.text.contains("LIMIT $6 OFFSET $7"), "{}", sql.text);
        assert_eq!(sql.args[3], SqlArg::Text("%50\\%\\_off%".into()));
        assert_eq!(sql.args.len(), 7);
        let sql = facts_count(Placeholder::Question, &FactsQuery { areas: Some(vec![]), ..FactsQuery::default() });
        assert!(sql.text.contains("1 = 0") && sql.args.is_empty(), "{}", sql.text);
    }
}
