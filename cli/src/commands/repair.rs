//! `pilar repair`: check the whole device store and bring it back to the server's state plus this
//! device's own unsent work — for a store that a crash, a full disk or an old bug left damaged.

use super::{open_store, sync};
use anyhow::Result;
use std::path::Path;

/// Arguments of `pilar repair`.
#[derive(clap::Args)]
pub struct Args {
    /// Only check and mend on this device; do not contact the server.
    #[arg(long)]
    offline: bool,
    /// Also download every village again (merged with what is here, nothing of this device's is
    /// dropped), for a store that may have lost households or changes.
    #[arg(long)]
    full: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Check, mend, then sync.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let check = store.check(true, super::now()?)?;
    if args.full {
        store.reset_downloads()?;
    }
    let repairs = store.repairs()?.len();
    if args.json {
        let out = serde_json::json!({
            "integrity": check.integrity,
            "damaged": check.damaged.iter().map(|(h, r)| serde_json::json!({"household": h, "reason": r})).collect::<Vec<_>>(),
            "missing_own_changes": check.missing_own_changes.iter().map(|(h, n)| serde_json::json!({"household": h, "changes": n})).collect::<Vec<_>>(),
            "mended": check.mended,
            "awaiting_repair": repairs,
            "downloads_reset": args.full,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if check.integrity.is_empty() {
            println!("store file: SQLite integrity check ok");
        } else {
            println!(
                "store file: SQLite found damage ({}); copy {} somewhere safe before anything else",
                check.integrity.join("; "),
                home.display()
            );
        }
        for (household, reason) in &check.damaged {
            println!("household {household}: {reason}; listed to be restored from the server");
        }
        for (household, missing) in &check.missing_own_changes {
            println!("household {household}: {missing} of this device's own change(s) were put back into its document");
        }
        if check.is_clean() {
            println!("every household on this device loads and holds this device's own work");
        }
        if args.full {
            println!("every village will be downloaded again and merged with what is here");
        }
    }
    if args.offline {
        if repairs > 0 || args.full {
            println!("run `pilar sync` when online to finish: {repairs} household(s) wait for the server's copy");
        }
        return Ok(());
    }
    sync::run(home, sync::Args::new(args.json))
}
