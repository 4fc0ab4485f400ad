//! `pilar list`: households on this device, filtered.

use super::open_store;
use crate::render::{cell, table};
use anyhow::Result;
use std::path::Path;
use sync_core::store::{ListFilter, Summary};

/// Arguments of `pilar list`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this village code.
    #[arg(long)]
    village: Option<String>,
    /// Only this RT.
    #[arg(long)]
    rt: Option<String>,
    /// Only households whose last visit had this outcome code (see `pilar form`).
    #[arg(long)]
    outcome: Option<i64>,
    /// Only households not visited yet.
    #[arg(long)]
    not_visited: bool,
    /// Only households with conflicting values.
    #[arg(long)]
    conflicts: bool,
    /// At most this many rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// List the households.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let village = match &args.village {
        Some(v) => Some(sync_core::ids::VillageCode::parse(v)?.to_string()),
        None => None,
    };
    let rows = store.list(&ListFilter {
        village,
        rt: args.rt,
        outcome: args.outcome,
        not_visited: args.not_visited,
        conflicted: args.conflicts,
        limit: args.limit,
    })?;
    print_summaries(&rows, args.json)
}

/// Print household summaries as a table or JSON (shared with `pilar search`).
pub fn print_summaries(rows: &[Summary], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            vec![
                s.id.chars().take(8).collect(),
                s.village.clone(),
                cell(s.rt.as_deref()),
                cell(s.head_name.as_deref()),
                cell(s.kk_masked.as_deref()),
                cell(s.last_outcome),
                s.visits.to_string(),
                s.members.to_string(),
                cell(s.review_status.as_deref()),
                s.conflicts.to_string(),
                s.pending_changes.to_string(),
            ]
        })
        .collect();
    table(
        &["ID", "VILLAGE", "RT", "HEAD", "KK", "OUTCOME", "VISITS", "MEMBERS", "REVIEW", "CONFLICTS", "UNSENT"],
        &cells,
    );
    println!("{} household(s)", rows.len());
    Ok(())
}
