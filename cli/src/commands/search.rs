//! `pilar search`: find households by name, NIK or KK number.

use super::open_store;
use anyhow::{Result, bail};
use std::path::Path;

/// Arguments of `pilar search`.
#[derive(clap::Args)]
pub struct Args {
    /// A name (head or member, any part), or at least 4 leading digits of a NIK or KK number.
    query: String,
    /// At most this many results.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Run the search.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    if args.query.trim().is_empty() {
        bail!("give a name, or at least 4 digits of a NIK or KK number");
    }
    let rows = store.search(&args.query, args.limit)?;
    super::list::print_summaries(&rows, args.json)
}
