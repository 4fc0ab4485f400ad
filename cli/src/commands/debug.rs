//! `pilar debug`: developer tools, hidden from help (direct store-to-store exchange, synthetic
//! rosters for the benchmark).

use anyhow::Result;
use std::path::{Path, PathBuf};
use sync_core::exchange::pull_from_store;
use sync_core::store::DeviceStore;

/// The debug subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Pull every change another device store has into this one (no server involved).
    Exchange {
        /// The other device's home directory.
        #[arg(long)]
        from: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write an obviously fake roster CSV (domain.md §3) with exactly `rows` person rows.
    RosterSample {
        /// Person rows to write.
        #[arg(long)]
        rows: usize,
        /// Largest family (1: one row per household).
        #[arg(long, default_value_t = 5)]
        largest_family: usize,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run a debug subcommand.
pub fn run(home: &Path, cmd: Command) -> Result<()> {
    match cmd {
        Command::Exchange { from, json } => {
            let mut into = DeviceStore::open(home)?;
            let other = DeviceStore::open(&from)?;
            let report = pull_from_store(&other, &mut into, super::now()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "received {} change(s) into {} household(s) ({} new); {} new conflict(s)",
                    report.changes_applied, report.households_changed, report.households_new, report.new_conflicts
                );
            }
            Ok(())
        }
        Command::RosterSample { rows, largest_family, out } => {
            let csv = crate::roster::synthetic::synthetic_roster_csv_families(rows, largest_family);
            std::fs::write(&out, csv).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            Ok(())
        }
    }
}
