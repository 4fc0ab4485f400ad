//! `pilar show`: one household with members, visits, review and conflicting values.

use super::{open_store, showing_form};
use crate::render::{cell, line, local_time, table};
use anyhow::Result;
use std::path::Path;
use sync_core::form::{FormDefinition, Scope};
use sync_core::ids::VillageCode;
use sync_core::model::Attributed;
use sync_core::value::FieldValue;

/// Arguments of `pilar show`.
#[derive(clap::Args)]
pub struct Args {
    /// Household id (or its first characters).
    household: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A value with its code label, e.g. `2 (genteng)`.
pub fn labelled(form: &FormDefinition, scope: Scope, field: &str, value: &FieldValue) -> String {
    form.field(scope, field).map_or_else(|| value.to_string(), |def| def.value_text(value))
}

fn label(form: &FormDefinition, scope: Scope, field: &str) -> String {
    form.field(scope, field).map(|f| f.label.clone()).unwrap_or_default()
}

/// Show the household.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let id = store.resolve_id(&args.household)?;
    let stored = store.load(id)?;
    let state = stored.household.state();
    let (form, note) = showing_form(&store, &state.form)?;
    let form = form.as_ref();
    let conflicts = stored.household.conflicts();
    if args.json {
        let conflicts: Vec<serde_json::Value> = conflicts
            .iter()
            .map(|(path, values)| serde_json::json!({ "field": path.to_string(), "values": values }))
            .collect();
        let out = serde_json::json!({ "village": stored.village, "household": state, "conflicts": conflicts });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let village_name = VillageCode::parse_format_only(&stored.village).ok().and_then(|v| v.name());
    println!("household {}", state.id);
    println!("village   {} {}", line(&stored.village), village_name.unwrap_or(""));
    println!("form      {}", line(&state.form));
    if let Some(note) = &note {
        println!("          ({note})");
    }
    println!();
    println!("answers:");
    let rows: Vec<Vec<String>> = state
        .answers
        .iter()
        .map(|(k, v)| vec![k.clone(), label(form, Scope::Household, k), labelled(form, Scope::Household, k, v)])
        .collect();
    table(&["FIELD", "LABEL", "VALUE"], &rows);
    println!();
    println!("members:");
    let rows: Vec<Vec<String>> = state
        .members
        .iter()
        .map(|m| {
            vec![
                m.id.to_string().chars().take(8).collect(),
                match m.entered_seq {
                    Some(entered) => format!("{} (entered as {entered})", cell(m.seq())),
                    None => cell(m.seq()),
                },
                cell(m.name()),
                cell(m.answers.get("relationship").map(|v| labelled(form, Scope::Member, "relationship", v))),
                cell(m.answers.get("nik").and_then(|v| v.as_text()).map(sync_core::store::mask_identifier)),
                match &m.removed {
                    Some(r) => format!("removed {} by {}: {}", local_time(&r.at, &stored.village), r.by, r.reason),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    table(&["MEMBER", "SEQ", "NAME", "RELATIONSHIP", "NIK", "REMOVED"], &rows);
    println!();
    println!("visits:");
    let rows: Vec<Vec<String>> = state
        .visits
        .iter()
        .map(|v| {
            let outcome = v.outcome.map(|o| match form.outcome(o) {
                Some(def) => format!("{o} {}", def.key),
                None => o.to_string(),
            });
            let gps = match (v.lat, v.lon) {
                (Some(la), Some(lo)) => format!("{la:.6},{lo:.6}"),
                _ => "-".into(),
            };
            vec![local_time(&v.at, &stored.village), v.user.clone(), cell(outcome), gps, cell(v.note.as_deref())]
        })
        .collect();
    table(&["AT", "USER", "OUTCOME", "GPS", "NOTE"], &rows);
    println!();
    match state.review.status {
        Some(s) => println!(
            "review: {} by {} at {}",
            s.as_str(),
            line(cell(state.review.by.as_deref())),
            state.review.at.as_deref().map_or_else(|| "-".to_owned(), |at| local_time(at, &stored.village))
        ),
        None => println!("review: not reviewed"),
    }
    for c in &state.review.comments {
        println!("  comment by {} at {}: {}", line(&c.by), local_time(&c.at, &stored.village), line(&c.text));
    }
    if conflicts.is_empty() {
        println!("conflicts: none");
    } else {
        println!("conflicts ({}): each field below holds several values until someone resolves it", conflicts.len());
        for (path, values) in &conflicts {
            println!("  {}", line(path));
            for Attributed { value, writer } in values {
                println!(
                    "    {}  by {} on device {} at {}",
                    line(value),
                    line(&writer.user),
                    line(&writer.device),
                    local_time(&writer.at, &stored.village)
                );
            }
        }
    }
    Ok(())
}
