//! `pilar form`: the questionnaire this device uses: fields, codes and outcomes.

use super::{device_form, open_store};
use crate::render::table;
use anyhow::Result;
use std::path::Path;
use sync_core::form::Scope;

/// Arguments of `pilar form`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this field (shows its codes).
    field: Option<String>,
    /// Print the whole form definition as JSON.
    #[arg(long)]
    json: bool,
}

/// Print the form.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let store = open_store(home)?;
    let form = device_form(&store)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(form)?);
        return Ok(());
    }
    if let Some(name) = &args.field {
        let found = [Scope::Household, Scope::Member, Scope::Visit]
            .into_iter()
            .find_map(|s| form.field(s, name).map(|f| (s, f)));
        let Some((scope, field)) = found else {
            anyhow::bail!("form {} has no field {name:?}; run `pilar form` for the list", form.key());
        };
        println!("{} ({} field): {} — {}", field.name, scope.as_str(), field.label, field.kind.describe());
        for c in field.kind.choices() {
            println!("  {:>3}  {}", c.code, c.label);
        }
        return Ok(());
    }
    println!("form {} — {}", form.key(), form.title);
    for scope in [Scope::Household, Scope::Member, Scope::Visit] {
        println!();
        println!("{} fields:", scope.as_str());
        let rows: Vec<Vec<String>> = form
            .fields(scope)
            .iter()
            .map(|f| vec![f.name.clone(), f.kind.describe().to_string(), f.label.clone()])
            .collect();
        table(&["FIELD", "TYPE", "LABEL"], &rows);
    }
    println!();
    println!("visit outcomes:");
    let rows: Vec<Vec<String>> = form
        .outcomes
        .iter()
        .map(|o| {
            vec![
                o.code.to_string(),
                o.key.clone(),
                if o.is_final { "final".into() } else { "revisit".into() },
                o.label.clone(),
            ]
        })
        .collect();
    table(&["CODE", "KEY", "KIND", "LABEL"], &rows);
    Ok(())
}
