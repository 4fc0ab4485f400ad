//! `pilar history`: every value one field has had, with who, when and which device.

use super::open_store;
use crate::render::{cell, line, local_time, table};
use anyhow::Result;
use std::path::Path;
use sync_core::model::FieldPath;

/// Arguments of `pilar history`.
#[derive(clap::Args)]
pub struct Args {
    /// Household id (or its first characters).
    household: String,
    /// The field: `roof_material`, `members.<seq or member id>.full_name`, `review.status`, ...
    field: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Show the history.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let id = store.resolve_id(&args.household)?;
    let stored = store.load(id)?;
    let (household, village) = (stored.household, stored.village);
    // Let people write a member by seq or id prefix: resolve it against the document.
    let parts: Vec<&str> = args.field.split('.').collect();
    let path: FieldPath = match parts.as_slice() {
        ["members", member, field] => {
            let m = super::member::resolve_member(&household.state(), member)?;
            FieldPath::Member(m, field.to_string())
        }
        _ => args.field.parse()?,
    };
    let history = household.field_history(&path)?;
    let current = household.field_values(&path)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "field": path.to_string(), "history": history, "current": current })
            )?
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|h| {
            vec![
                local_time(&h.writer.at, &village),
                h.writer.user.clone(),
                h.writer.device.chars().take(8).collect(),
                cell(h.value.as_ref()).replace('-', "(cleared)"),
            ]
        })
        .collect();
    println!("history of {}:", line(&path));
    table(&["AT", "USER", "DEVICE", "VALUE"], &rows);
    if current.len() > 1 {
        println!("CONFLICT: {} concurrent values right now; a new value resolves them", current.len());
    }
    Ok(())
}
