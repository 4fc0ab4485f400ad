//! `pilar add`: add a household found in the field.

use super::{explain, gather_answers, open_store, read_answers_file, report_saved};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use sync_core::entry;
use sync_core::form::Scope;
use sync_core::ids::VillageCode;

/// Arguments of `pilar add`.
#[derive(clap::Args)]
pub struct Args {
    /// Village code of the household (must be one of this device's villages).
    #[arg(long)]
    village: String,
    /// Name of the head of the family (Nama kepala keluarga).
    #[arg(long)]
    head_name: Option<String>,
    /// RT number, e.g. 003.
    #[arg(long)]
    rt: Option<String>,
    /// KK number (Nomor Kartu Keluarga), 16 digits.
    #[arg(long)]
    kk: Option<String>,
    /// Any household answer as field=value; repeat as needed. See `pilar form`.
    #[arg(long = "answer", value_name = "FIELD=VALUE")]
    answers: Vec<String>,
    /// A JSON file of answers: {"field": value, ..., "members": [{"full_name": ..., ...}]}.
    #[arg(long)]
    answers_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Print only the new household's id (for scripts: `id=$(pilar add … --quiet)`); warnings go
    /// to standard error.
    #[arg(long, short, conflicts_with = "json")]
    quiet: bool,
}

/// Add the household.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let village = VillageCode::parse(&args.village).with_context(|| format!("--village {}", args.village))?;
    let form = store.form_for_village(&store.forms()?, village.as_str())?;
    let mut file = match &args.answers_file {
        Some(p) => Some(read_answers_file(p)?),
        None => None,
    };
    let members_json = file.as_mut().and_then(|m| m.remove("members"));
    let mut flags = args.answers.clone();
    for (name, value) in [("head_name", &args.head_name), ("rt", &args.rt), ("kk_number", &args.kk)] {
        if let Some(v) = value {
            flags.push(format!("{name}={v}"));
        }
    }
    let answers = entry::only_set(gather_answers(&form, Scope::Household, &flags, file.as_ref())?);
    let mut members = Vec::new();
    if let Some(list) = members_json {
        let serde_json::Value::Array(items) = list else {
            bail!("\"members\" in the answers file must be a list of objects")
        };
        for (i, item) in items.iter().enumerate() {
            let serde_json::Value::Object(map) = item else {
                bail!("members[{i}] in the answers file must be an object")
            };
            let parsed = entry::parse_json_answers(&form, Scope::Member, map)
                .map_err(entry::EntryError::Refused)
                .map_err(explain)?;
            let mut m = entry::only_set(parsed);
            m.entry("seq".into()).or_insert(sync_core::value::FieldValue::Int(i as i64 + 1));
            members.push(m);
        }
    }
    let saved = entry::add_household(&mut store, &form, &village, answers, members, super::now()?).map_err(explain)?;
    if args.quiet {
        println!("{}", saved.household);
        for w in &saved.warnings {
            eprintln!("warning: {} [{}]", w.message, w.rule);
        }
        return Ok(());
    }
    report_saved(&saved, "household", args.json)
}
