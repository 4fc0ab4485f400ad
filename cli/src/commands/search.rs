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
    let digits: String = args.query.chars().filter(|c| !c.is_whitespace() && *c != '.' && *c != '-').collect();
    if !digits.is_empty() && digits.len() < 4 && digits.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "{:?} is too short to search by number: give at least 4 leading digits of a NIK or KK number \
             (e.g. `pilar search 7314`), or a name",
            args.query
        );
    }
    let rows = store.search(&args.query, args.limit)?;
    super::list::print_summaries(&rows, args.json)
}
