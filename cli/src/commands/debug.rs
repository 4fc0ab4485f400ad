//! `pilar debug`: developer tools, hidden from help (direct store-to-store merge).

use anyhow::Result;
use std::path::{Path, PathBuf};
use sync_core::merge::merge_stores;
use sync_core::store::DeviceStore;

/// The debug subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Pull every change another device store has into this one (no server involved).
    Merge {
        /// The other device's home directory.
        #[arg(long)]
        from: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Run a debug subcommand.
pub fn run(home: &Path, cmd: Command) -> Result<()> {
    match cmd {
        Command::Merge { from, json } => {
            let mut into = DeviceStore::open(home)?;
            let other = DeviceStore::open(&from)?;
            let report = merge_stores(&other, &mut into, super::now()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "merged {} change(s) into {} household(s) ({} new); {} new conflict(s)",
                    report.changes_applied, report.households_changed, report.households_new, report.new_conflicts
                );
            }
            Ok(())
        }
    }
}
