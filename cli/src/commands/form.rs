//! `pilar form`: the questionnaire this device uses: fields, codes and outcomes.

use super::{device_form, open_store};
use crate::render::table;
use anyhow::Context;
use anyhow::Result;
use std::path::{Path, PathBuf};
use sync_core::form::{FormDefinition, Scope, check_evolution, diff};

/// Arguments of `pilar form`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Compare two versions of a form instead of showing this device's.
    #[command(subcommand)]
    action: Option<Action>,
    /// Only this field (shows its codes).
    field: Option<String>,
    /// Print the whole form definition as JSON.
    #[arg(long)]
    json: bool,
}

/// What `pilar form` does besides showing the device's form.
#[derive(clap::Subcommand)]
enum Action {
    /// Show what changed between two form definitions (JSON files), and whether the newer one
    /// keeps every household recorded under the older one readable (exit 1 if not).
    Diff {
        /// The older version's definition.
        old: PathBuf,
        /// The newer version's definition.
        new: PathBuf,
    },
    /// Publish a form version on the server (admins): refused, with every problem, when it would
    /// make households recorded under an earlier version unreadable.
    Publish {
        /// The definition (JSON).
        file: PathBuf,
    },
    /// List the versions published on the server and which one new visits use.
    Versions {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a published version the one new visits use (admins), in one kabupaten or everywhere
    /// without a default of its own.
    Use {
        /// The version, `id@version` (e.g. dtsen-ground-check@2).
        form: String,
        /// Only in this kabupaten (e.g. 73.14).
        #[arg(long)]
        kabupaten: Option<String>,
    },
}

/// Print the form.
pub fn run(home: &Path, args: Args) -> Result<()> {
    if let Some(Action::Diff { old, new }) = &args.action {
        let (text, safe) = diff_files(old, new)?;
        print!("{text}");
        if !safe {
            anyhow::bail!(
                "{} would be refused at publish: it makes households recorded under {} unreadable (see above)",
                new.display(),
                old.display()
            );
        }
        return Ok(());
    }
    match args.action {
        Some(Action::Publish { file }) => return super::form_admin::publish(home, &read_definition(&file)?),
        Some(Action::Versions { json }) => return super::form_admin::versions(home, json),
        Some(Action::Use { form, kabupaten }) => return super::form_admin::use_version(home, &form, kabupaten),
        Some(Action::Diff { .. }) | None => {}
    }
    let store = open_store(home)?;
    let form = device_form(&store)?;
    let form = form.as_ref();
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

/// A form definition read from a JSON file, checked as a publish would check it.
fn read_definition(path: &Path) -> Result<FormDefinition> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    FormDefinition::from_json(&text).with_context(|| format!("{} is not a usable form definition", path.display()))
}

/// The differences between two definition files and the evolution report, as printed, and
/// whether the newer one may follow the older one.
fn diff_files(old: &Path, new: &Path) -> Result<(String, bool)> {
    let (old, new) = (read_definition(old)?, read_definition(new)?);
    let mut text = format!("{} → {}\n", old.key(), new.key());
    let differences = diff(&old, &new);
    if differences.is_empty() {
        text.push_str("no differences\n");
    }
    for difference in &differences {
        text.push_str(&format!("  {difference}\n"));
    }
    let problems = check_evolution(&old, &new);
    if problems.is_empty() {
        text.push_str("households recorded under the older version stay readable\n");
    } else {
        text.push_str(&format!("{} problem(s) would make stored answers unreadable:\n", problems.len()));
        for problem in &problems {
            text.push_str(&format!("  {problem}\n"));
        }
    }
    Ok((text, problems.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, form: &FormDefinition) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(form).expect("json")).expect("write");
        path
    }

    #[test]
    fn diff_names_what_changed_and_refuses_an_incompatible_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = FormDefinition::default_dtsen().clone();
        let old_path = write(dir.path(), "v1.json", &old);

        let mut added = old.clone();
        added.version = 2;
        let mut question = added.household[0].clone();
        question.name = "bantuan_daerah".into();
        question.label = "Penerima bantuan daerah".into();
        question.kind = sync_core::form::FieldKind::Boolean;
        question.required = sync_core::form::Required::No;
        question.relevant = None;
        added.household.push(question);
        let (text, safe) = diff_files(&old_path, &write(dir.path(), "v2.json", &added)).expect("diff");
        assert!(safe, "{text}");
        assert!(text.contains("dtsen-ground-check@1 → dtsen-ground-check@2"), "{text}");
        assert!(
            text.contains("household field `bantuan_daerah`: added: boolean \"Penerima bantuan daerah\""),
            "{text}"
        );

        let mut same = old.clone();
        same.version = 3;
        let (text, safe) = diff_files(&old_path, &write(dir.path(), "v3.json", &same)).expect("diff");
        assert!(safe && !text.contains("added") && !text.contains("problem"), "only the version moved: {text}");

        let mut broken = added.clone();
        broken.version = 4;
        broken.household.retain(|f| f.name != "bantuan_daerah");
        let (text, safe) =
            diff_files(&write(dir.path(), "v2b.json", &added), &write(dir.path(), "v4.json", &broken)).expect("diff");
        assert!(!safe, "{text}");
        assert!(
            text.contains("household field `bantuan_daerah`: is gone") && text.contains("(field_removed)"),
            "{text}"
        );

        std::fs::write(dir.path().join("bad.json"), "{").expect("write");
        let refused = diff_files(&old_path, &dir.path().join("bad.json")).expect_err("not a form");
        assert!(format!("{refused:#}").contains("bad.json is not a usable form definition"), "{refused:#}");
    }
}
