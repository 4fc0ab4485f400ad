//! `pilar member add|edit|remove`: change a household's members, one save each.

use super::{explain, gather_answers, household_form, open_store, report_saved};
use anyhow::{Result, bail};
use std::path::Path;
use sync_core::entry;
use sync_core::form::Scope;
use sync_core::model::{Edits, HouseholdState, MemberId};
use sync_core::value::FieldValue;

/// The member subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a member (seq is assigned when not given).
    Add {
        /// Household id (or its first characters).
        household: String,
        /// Full name (Nama).
        #[arg(long)]
        name: Option<String>,
        /// A member answer as field=value; repeat as needed.
        #[arg(long = "answer", value_name = "FIELD=VALUE")]
        answers: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a member's answers.
    Edit {
        /// Household id (or its first characters).
        household: String,
        /// The member's seq number or id (or its first characters).
        member: String,
        /// A member answer as field=value (empty value clears it); repeat as needed.
        #[arg(long = "answer", value_name = "FIELD=VALUE", required = true)]
        answers: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member (kept in history; e.g. moved away or died).
    Remove {
        /// Household id (or its first characters).
        household: String,
        /// The member's seq number or id (or its first characters).
        member: String,
        /// Why the member is removed.
        #[arg(long)]
        reason: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Find a current member by seq number or id prefix.
pub fn resolve_member(state: &HouseholdState, text: &str) -> Result<MemberId> {
    let text = text.trim();
    let matches: Vec<MemberId> = match text.parse::<i64>() {
        Ok(seq) if text.len() <= 2 => state.current_members().filter(|m| m.seq() == Some(seq)).map(|m| m.id).collect(),
        _ => state
            .current_members()
            .filter(|m| m.id.to_string().starts_with(&text.to_lowercase()))
            .map(|m| m.id)
            .collect(),
    };
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("household has no current member {text:?}; see the members with `pilar show`"),
        _ => bail!("{text:?} matches {} members; give the member id from `pilar show`", matches.len()),
    }
}

/// Run a member subcommand.
pub fn run(home: &Path, cmd: Command) -> Result<()> {
    let mut store = open_store(home)?;
    let now = super::now()?;
    let (household, action, edits, json) = match cmd {
        Command::Add { household, name, mut answers, json } => {
            let id = store.resolve_id(&household)?;
            let form = household_form(&store, id)?;
            if let Some(n) = name {
                answers.push(format!("full_name={n}"));
            }
            let mut parsed = entry::only_set(gather_answers(&form, Scope::Member, &answers, None)?);
            if !parsed.contains_key("seq") {
                let state = store.load(id)?.household.state();
                let next = state.members.iter().filter_map(|m| m.seq()).max().unwrap_or(0) + 1;
                parsed.insert("seq".into(), FieldValue::Int(next));
            }
            (id, "member-add", Edits { add_members: vec![(MemberId::random(), parsed)], ..Edits::default() }, json)
        }
        Command::Edit { household, member, answers, json } => {
            let id = store.resolve_id(&household)?;
            let member = resolve_member(&store.load(id)?.household.state(), &member)?;
            let form = household_form(&store, id)?;
            let parsed = gather_answers(&form, Scope::Member, &answers, None)?;
            (id, "member-edit", Edits { edit_members: vec![(member, parsed)], ..Edits::default() }, json)
        }
        Command::Remove { household, member, reason, json } => {
            let id = store.resolve_id(&household)?;
            if reason.trim().is_empty() {
                bail!("--reason must say why the member is removed, e.g. --reason \"pindah ke Makassar\"");
            }
            let member = resolve_member(&store.load(id)?.household.state(), &member)?;
            (id, "member-remove", Edits { remove_members: vec![(member, reason)], ..Edits::default() }, json)
        }
    };
    let form = household_form(&store, household)?;
    let saved = entry::save(&mut store, &form, household, action, &edits, now).map_err(explain)?;
    if !json && let Some(m) = saved.members_added.first() {
        println!("member {m} added.");
    }
    report_saved(&saved, "member", json)
}
