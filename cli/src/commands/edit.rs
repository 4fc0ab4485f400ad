//! `pilar edit`: change household answers outside a visit (a supervisor's correction, a typo fixed).

use super::{explain, gather_answers, household_form, open_store, read_answers_file, report_saved};
use anyhow::Result;
use std::path::{Path, PathBuf};
use sync_core::entry;
use sync_core::form::Scope;
use sync_core::model::Edits;

/// Arguments of `pilar edit`.
#[derive(clap::Args)]
pub struct Args {
    /// Household id (or its first characters).
    household: String,
    /// A household answer as field=value (an empty value clears it); repeat as needed.
    #[arg(long = "answer", value_name = "FIELD=VALUE")]
    answers: Vec<String>,
    /// A JSON file of household answers.
    #[arg(long)]
    answers_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Save the edit.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let id = store.resolve_id(&args.household)?;
    let form = household_form(&store, id)?;
    let file = match &args.answers_file {
        Some(p) => Some(read_answers_file(p)?),
        None => None,
    };
    let answers = gather_answers(&form, Scope::Household, &args.answers, file.as_ref())?;
    if answers.is_empty() {
        anyhow::bail!("give at least one --answer field=value (or --answers-file) to change");
    }
    let edits = Edits { answers, ..Edits::default() };
    let saved = entry::save(&mut store, &form, id, "edit", &edits, super::now()?).map_err(explain)?;
    report_saved(&saved, "edit", args.json)
}
