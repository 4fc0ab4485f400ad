//! `pilar form`: the questionnaire this device uses: fields, codes and outcomes; `export` and
//! `convert` write it as JSON or as an XLSForm workbook, `diff` compares two versions.

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
    /// Show what changed between two form definitions (.json or XLSForm .xlsx files), and whether
    /// the newer one keeps every household recorded under the older one readable (exit 1 if not).
    Diff {
        /// The older version's definition.
        old: PathBuf,
        /// The newer version's definition.
        new: PathBuf,
    },
    /// Publish a form version on the server (admins): refused, with every problem, when it would
    /// make households recorded under an earlier version unreadable.
    Publish {
        /// The definition: JSON, or an XLSForm workbook (.xlsx).
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
    /// Write this device's form to a file: an XLSForm workbook (ODK, Kobo, SurveyCTO tools and
    /// any spreadsheet open it) or the JSON definition.
    Export {
        /// The file to write; the format follows `--xlsform`/`--json`, else its extension.
        #[arg(long)]
        out: PathBuf,
        /// Write an XLSForm workbook (.xlsx).
        #[arg(long, conflicts_with = "json")]
        xlsform: bool,
        /// Write the JSON definition.
        #[arg(long)]
        json: bool,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Convert a form definition between XLSForm (.xlsx) and JSON (.json), checking it on the way.
    Convert {
        /// The definition to read (.json or .xlsx).
        input: PathBuf,
        /// The file to write (.json or .xlsx).
        #[arg(long)]
        out: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// The two files a form definition is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormFile {
    /// The JSON definition (`FormDefinition`'s own format).
    Json,
    /// An XLSForm workbook (`pilar_xlsform`).
    Xlsform,
}

impl FormFile {
    /// The format a path's extension names, or an error saying which extensions work.
    fn of(path: &Path) -> Result<FormFile> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Ok(FormFile::Json),
            Some("xlsx") => Ok(FormFile::Xlsform),
            _ => anyhow::bail!(
                "{} is neither .json nor .xlsx; a form definition is a JSON file or an XLSForm workbook \
                 (save a spreadsheet as .xlsx)",
                path.display()
            ),
        }
    }
}

/// Print the form.
pub fn run(home: &Path, args: Args) -> Result<()> {
    match &args.action {
        Some(Action::Diff { old, new }) => {
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
        Some(Action::Export { out, xlsform, json, force }) => {
            let store = open_store(home)?;
            let form = device_form(&store)?;
            let format = match (xlsform, json) {
                (true, _) => FormFile::Xlsform,
                (_, true) => FormFile::Json,
                _ => FormFile::of(out)?,
            };
            write_form_file(&form, out, format, *force)?;
            println!("wrote form {} to {}", form.key(), out.display());
            return Ok(());
        }
        Some(Action::Convert { input, out, force }) => {
            let form = read_form_file(input)?;
            write_form_file(&form, out, FormFile::of(out)?, *force)?;
            println!("wrote form {} to {}", form.key(), out.display());
            return Ok(());
        }
        Some(Action::Publish { file }) => return super::form_admin::publish(home, &read_form_file(file)?),
        Some(Action::Versions { json }) => return super::form_admin::versions(home, *json),
        Some(Action::Use { form, kabupaten }) => {
            return super::form_admin::use_version(home, form, kabupaten.clone());
        }
        None => {}
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

/// A form definition from a `.json` file or an XLSForm `.xlsx` workbook (by extension), checked
/// as a publish would check it; `pilar form diff` and `convert` read files with it, and so will
/// publishing a new version.
pub fn read_form_file(path: &Path) -> Result<FormDefinition> {
    let format = FormFile::of(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let unusable = || format!("{} is not a usable form definition", path.display());
    match format {
        FormFile::Json => {
            let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
            FormDefinition::from_json(&text).with_context(unusable)
        }
        FormFile::Xlsform => pilar_xlsform::read_xlsform(&bytes).with_context(unusable),
    }
}

/// Writes a definition to `path` in `format`: refused if the file exists (unless `force`), and
/// written to `<name>.partial` first, then renamed, so the path never holds half a file.
fn write_form_file(form: &FormDefinition, path: &Path, format: FormFile, force: bool) -> Result<()> {
    if path.is_dir() {
        anyhow::bail!("{} is a directory; give a file name inside it", path.display());
    }
    if path.exists() && !force {
        anyhow::bail!("{} already exists; choose another name or add --force to replace it", path.display());
    }
    let bytes = match format {
        FormFile::Json => {
            let mut text = serde_json::to_string_pretty(form)?;
            text.push('\n');
            text.into_bytes()
        }
        FormFile::Xlsform => pilar_xlsform::write_xlsform(form)
            .with_context(|| format!("form {} cannot be written as an XLSForm", form.key()))?,
    };
    let Some(name) = path.file_name() else {
        anyhow::bail!("{} has no file name; give one", path.display());
    };
    let mut partial_name = name.to_os_string();
    partial_name.push(".partial");
    let partial = path.with_file_name(partial_name);
    let written = std::fs::write(&partial, &bytes)
        .with_context(|| format!("cannot write {}; check that its folder exists", partial.display()))
        .and_then(|()| {
            std::fs::rename(&partial, path).with_context(|| {
                format!(
                    "cannot rename {} to {}; if the file is open in a spreadsheet, close it and try again",
                    partial.display(),
                    path.display()
                )
            })
        });
    if written.is_err() {
        // Best effort: the partial file may never have been created.
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// The differences between two definition files and the evolution report, as printed, and
/// whether the newer one may follow the older one.
fn diff_files(old: &Path, new: &Path) -> Result<(String, bool)> {
    let (old, new) = (read_form_file(old)?, read_form_file(new)?);
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

    #[test]
    fn export_writes_xlsform_and_json_that_read_form_file_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let form = FormDefinition::default_dtsen();
        for (name, format) in [("dtsen.xlsx", FormFile::Xlsform), ("dtsen.json", FormFile::Json)] {
            let path = dir.path().join(name);
            write_form_file(form, &path, format, false).expect("writes");
            assert_eq!(&read_form_file(&path).expect("reads back"), form, "{name}");
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".partial")), "no partial file is left: {names:?}");
    }

    #[test]
    fn export_refuses_to_replace_a_file_unless_forced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("form.xlsx");
        std::fs::write(&path, "keep me").expect("write");
        let form = FormDefinition::default_dtsen();
        let refused = write_form_file(form, &path, FormFile::Xlsform, false).expect_err("exists");
        assert!(format!("{refused:#}").contains("already exists; choose another name or add --force"), "{refused:#}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "keep me");
        write_form_file(form, &path, FormFile::Xlsform, true).expect("forced");
        assert_eq!(&read_form_file(&path).expect("reads"), form);
        assert!(!dir.path().join("form.xlsx.partial").exists());
    }

    #[test]
    fn read_form_file_refuses_other_extensions_and_lists_xlsform_problems() {
        let dir = tempfile::tempdir().expect("temp dir");
        let csv = dir.path().join("form.csv");
        std::fs::write(&csv, "type,name\n").expect("write");
        let refused = read_form_file(&csv).expect_err("csv");
        assert!(format!("{refused:#}").contains("form.csv is neither .json nor .xlsx"), "{refused:#}");

        let mut workbook = rust_xlsxwriter::Workbook::new();
        let survey = workbook.add_worksheet();
        survey.set_name("survey").expect("name");
        for (r, row) in
            [["type", "name", "label"], ["geotrace", "jalan", "Jalan"], ["note", "info", "Info"]].iter().enumerate()
        {
            for (c, text) in row.iter().enumerate() {
                survey.write_string(r as u32, c as u16, *text).expect("cell");
            }
        }
        let settings = workbook.add_worksheet();
        settings.set_name("settings").expect("name");
        for (c, (head, value)) in [("form_id", "uji"), ("version", "1")].iter().enumerate() {
            settings.write_string(0, c as u16, *head).expect("cell");
            settings.write_string(1, c as u16, *value).expect("cell");
        }
        let path = dir.path().join("uji.xlsx");
        std::fs::write(&path, workbook.save_to_buffer().expect("xlsx")).expect("write");
        let message = format!("{:#}", read_form_file(&path).expect_err("unsupported rows"));
        assert!(message.contains("uji.xlsx is not a usable form definition"), "{message}");
        assert!(message.contains("survey row 2, type `geotrace`: not supported by Pilar"), "{message}");
        assert!(message.contains("survey row 3, type `note`"), "{message}");
    }

    #[test]
    fn diff_reads_an_xlsform_against_a_json_definition() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = FormDefinition::default_dtsen().clone();
        let old_path = write(dir.path(), "v1.json", &old);
        let mut new = old.clone();
        new.version = 2;
        for field in new.household.iter_mut().filter(|f| f.name == "bps_village_code") {
            field.label = "Kode desa menurut BPS".into();
        }
        let new_path = dir.path().join("v2.xlsx");
        write_form_file(&new, &new_path, FormFile::Xlsform, false).expect("writes");
        let (text, safe) = diff_files(&old_path, &new_path).expect("diff");
        assert!(safe, "{text}");
        assert!(text.contains("dtsen-ground-check@1 → dtsen-ground-check@2"), "{text}");
        assert!(text.contains("household field `bps_village_code`: label"), "{text}");
    }
}
