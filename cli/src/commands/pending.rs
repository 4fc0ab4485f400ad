//! `pilar pending`: what is waiting to be sent, change by change.

use super::open_store;
use crate::render::{cell, local_time, table};
use anyhow::Result;
use std::path::Path;

/// Arguments of `pilar pending`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Show the outbox.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let entries = store.outbox()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    // Each change's time on the clock of its household's village.
    let villages: std::collections::HashMap<String, String> =
        store.household_villages()?.into_iter().map(|(id, village)| (id.to_string(), village)).collect();
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.household.chars().take(8).collect(),
                e.action.clone(),
                local_time(&e.created_at, villages.get(&e.household).map_or("", String::as_str)),
                e.bytes.to_string(),
                e.hash.chars().take(12).collect(),
                cell(e.rejected_reason.as_deref()),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("nothing waiting to be sent");
        return Ok(());
    }
    table(&["HOUSEHOLD", "ACTION", "SAVED AT", "BYTES", "CHANGE", "REJECTED"], &rows);
    let households: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.household.as_str()).collect();
    let bytes: usize = entries.iter().map(|e| e.bytes).sum();
    println!(
        "{} change(s) for {} household(s), {} bytes, not yet acknowledged by a server",
        entries.len(),
        households.len(),
        bytes
    );
    Ok(())
}
