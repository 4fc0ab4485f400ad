//! One module per `pilar` subcommand, plus what they share: opening the store, reading answers.

pub mod add;
pub mod admin;
pub mod debug;
pub mod edit;
pub mod export;
pub mod form;
pub mod form_admin;
pub mod history;
pub mod init;
pub mod list;
pub mod login;
pub mod member;
pub mod pending;
pub mod photo;
pub mod repair;
pub mod roster;
pub mod search;
pub mod server;
pub mod show;
pub mod status;
pub mod supervise;
pub mod sync;
pub mod visit;

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use sync_core::entry::{self, EntryError};
use sync_core::form::{FormDefinition, Scope};
use sync_core::store::DeviceStore;
use sync_core::value::FieldValue;
use time::OffsetDateTime;

/// Exit code: network trouble (no connection, a connection that broke, the server unavailable);
/// the work is kept on the device, try again.
pub const EXIT_NETWORK: u8 = 3;

/// Exit code: the server refused (bad session, revoked device, out of scope, refused changes).
pub const EXIT_REFUSED: u8 = 4;

/// A failure the command has already explained on stderr; `main` only exits with its code.
#[derive(Debug)]
pub struct Reported {
    /// The exit code.
    pub code: u8,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "see the explanation above (exit code {})", self.code)
    }
}

impl std::error::Error for Reported {}

/// Open the device store in `home`, with a hint when there is none.
pub fn open_store(home: &Path) -> Result<DeviceStore> {
    Ok(DeviceStore::open(home)?)
}

/// The form version new visits use on this device: the default for its first village's
/// kabupaten that sync delivered, else the form the store was created with.
pub fn device_form(store: &DeviceStore) -> Result<Arc<FormDefinition>> {
    let forms = store.forms()?;
    let village = store.villages()?.into_iter().next().unwrap_or_default();
    Ok(store.form_for_village(&forms, &village)?)
}

/// The form a save to household `id` is parsed and checked with (`entry::form_for_household`).
pub fn household_form(store: &DeviceStore, id: sync_core::model::HouseholdId) -> Result<Arc<FormDefinition>> {
    entry::form_for_household(store, id).map_err(explain)
}

/// The form a household is shown with, and a note when it is not the household's own version
/// (this device has not received it yet).
pub fn showing_form(store: &DeviceStore, household_form: &str) -> Result<(Arc<FormDefinition>, Option<String>)> {
    let forms = store.forms()?;
    match entry::form_for_showing(&forms, household_form) {
        Some((form, true)) => Ok((form, None)),
        Some((form, false)) => {
            let note = format!(
                "recorded with form {household_form}, which this device has not received yet: shown with the labels of {}; \
                 run `pilar sync` to receive it",
                form.key()
            );
            Ok((form, Some(note)))
        }
        None => Ok((
            Arc::new(FormDefinition::default_dtsen().clone()),
            Some(format!("recorded with form {household_form}, which this device does not hold; run `pilar sync`")),
        )),
    }
}

/// The current time in the machine's offset (WIB/WITA/WIT on a tablet), or UTC when unknown.
/// `PILAR_NOW` (RFC 3339) overrides it, so scripted sessions and tests are reproducible.
pub fn now() -> Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(text) = std::env::var("PILAR_NOW") {
        return OffsetDateTime::parse(&text, &Rfc3339)
            .with_context(|| format!("PILAR_NOW={text:?} is not an RFC 3339 time"));
    }
    Ok(OffsetDateTime::now_local().unwrap_or_else(|_| OffsetDateTime::now_utc()))
}

/// Split `field=value` flags.
pub fn split_pairs(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_string(), v.to_string())),
            None => bail!("--answer {p:?} must be written field=value, e.g. --answer roof_material=2"),
        })
        .collect()
}

/// Read an answers file: a JSON object of field → value.
pub fn read_answers_file(path: &PathBuf) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read answers file {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("answers file {} is not valid JSON", path.display()))?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => bail!("answers file {} must hold a JSON object of field names to values", path.display()),
    }
}

/// Parse answers from `--answer` flags and an optional answers file (flags win), for one scope.
pub fn gather_answers(
    form: &FormDefinition,
    scope: Scope,
    flags: &[String],
    file: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<BTreeMap<String, Option<FieldValue>>> {
    let mut answers = match file {
        Some(map) => entry::parse_json_answers(form, scope, map).map_err(EntryError::Refused).map_err(explain)?,
        None => BTreeMap::new(),
    };
    let from_flags =
        entry::parse_answers(form, scope, &split_pairs(flags)?).map_err(EntryError::Refused).map_err(explain)?;
    answers.extend(from_flags);
    Ok(answers)
}

/// Turn an entry error into a message that lists every problem.
pub fn explain(e: EntryError) -> anyhow::Error {
    match e {
        EntryError::Refused(report) => {
            let mut text = String::from("nothing was saved; fix these answers and try again:");
            for p in report.rejects() {
                text.push_str(&format!("\n  - {} [{}]", p.message, p.rule));
                if let Some(v) = &p.value {
                    text.push_str(&format!(" (you entered {v:?})"));
                }
            }
            let warnings: Vec<_> = report.warnings().collect();
            if !warnings.is_empty() {
                text.push_str("\nalso noted (not blocking):");
                for p in warnings {
                    text.push_str(&format!("\n  - {} [{}]", p.message, p.rule));
                }
            }
            anyhow::anyhow!(text)
        }
        other => anyhow::Error::new(other),
    }
}

/// Print a save's result: the change and any warnings.
pub fn report_saved(saved: &entry::Saved, what: &str, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(saved)?);
        return Ok(());
    }
    match &saved.change {
        Some(_) => println!("{what} saved (household {}).", saved.household),
        None => println!("nothing changed (household {}).", saved.household),
    }
    for w in &saved.warnings {
        println!("warning: {} [{}]", w.message, w.rule);
    }
    Ok(())
}
