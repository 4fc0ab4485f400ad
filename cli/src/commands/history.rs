//! `pilar history`: every value one field has had, with who, when and which device.

use super::open_store;
use crate::render::{cell, line, local_time, table};
use anyhow::{Result, bail};
use std::path::Path;
use sync_core::form::{FormDefinition, Scope};
use sync_core::model::{FieldPath, MEMBER_REMOVAL_KEYS, VISIT_KEYS, values_disagree};

/// Arguments of `pilar history`.
#[derive(clap::Args)]
pub struct Args {
    /// Household id (or its first characters).
    household: String,
    /// The field: `roof_material`, `members.<seq or member id>.full_name`, `review.status`, ...
    field: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Show the history.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let id = store.resolve_id(&args.household)?;
    let stored = store.load(id)?;
    let (household, village) = (stored.household, stored.village);
    // Let people write a member by seq or id prefix: resolve it against the document.
    let parts: Vec<&str> = args.field.split('.').collect();
    let path: FieldPath = match parts.as_slice() {
        ["members", member, field] => {
            let m = super::member::resolve_member(&household.state(), member)?;
            FieldPath::Member(m, field.to_string())
        }
        _ => args.field.parse()?,
    };
    let (form, _) = super::showing_form(&store, &household.form_key())?;
    if !known_field(&form, &path) {
        bail!(
            "{path} is not a field of this household's form: `pilar form` lists the fields (household answers by \
             name, e.g. `floor_area_m2`; members as `members.<seq>.<field>`, e.g. `members.1.nik`)"
        );
    }
    let history = household.field_history(&path)?;
    let current = household.field_values(&path)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "field": path.to_string(), "history": history, "current": current })
            )?
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|h| {
            vec![
                local_time(&h.writer.at, &village),
                h.writer.user.clone(),
                h.writer.device.chars().take(8).collect(),
                cell(h.value.as_ref()).replace('-', "(cleared)"),
            ]
        })
        .collect();
    println!("history of {}:", line(&path));
    table(&["AT", "USER", "DEVICE", "VALUE"], &rows);
    if values_disagree(&current) {
        println!("CONFLICT: {} concurrent values right now; a new value resolves them", current.len());
    }
    Ok(())
}

/// Whether `path` names something a household can hold: a form field, a member's removal, a
/// visit's own keys, a review or link key.
fn known_field(form: &FormDefinition, path: &FieldPath) -> bool {
    match path {
        FieldPath::Answer(k) => form.field(Scope::Household, k).is_some(),
        FieldPath::Member(_, k) => form.field(Scope::Member, k).is_some() || MEMBER_REMOVAL_KEYS.contains(&k.as_str()),
        FieldPath::Visit(_, k) => form.field(Scope::Visit, k).is_some() || VISIT_KEYS.contains(&k.as_str()),
        FieldPath::Review(k) => ["status", "by", "at", "approved_heads"].contains(&k.as_str()),
        FieldPath::Link(k) => ["duplicate_of", "merged_into"].contains(&k.as_str()),
    }
}
