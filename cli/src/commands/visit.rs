//! `pilar visit`: record a visit with its outcome, answers and GPS, as one save.

use super::{explain, gather_answers, household_form, open_store, read_answers_file, report_saved};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use sync_core::entry;
use sync_core::form::Scope;
use sync_core::model::{Edits, NewVisit, VisitId};

/// Arguments of `pilar visit`.
#[derive(clap::Args)]
pub struct Args {
    /// Household id (or its first characters).
    household: String,
    /// Visit-outcome code: 1 found & complete, 2 partial, 3 not home, 4 refused, 5 moved, ... (`pilar form`).
    #[arg(long)]
    outcome: i64,
    /// A household answer as field=value; repeat as needed.
    #[arg(long = "answer", value_name = "FIELD=VALUE")]
    answers: Vec<String>,
    /// A visit answer as field=value (purpose, notice_given, officer_role, ...).
    #[arg(long = "visit-answer", value_name = "FIELD=VALUE")]
    visit_answers: Vec<String>,
    /// A JSON file of household answers; may hold "visit": {...} for visit answers.
    #[arg(long)]
    answers_file: Option<PathBuf>,
    /// GPS fix as lat,lon or lat,lon,accuracy_m.
    #[arg(long, allow_hyphen_values = true)]
    gps: Option<String>,
    /// A free-text note.
    #[arg(long)]
    note: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_gps(text: &str) -> Result<(f64, f64, Option<f64>)> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let num = |s: &str| {
        s.parse::<f64>().map_err(|_| {
            anyhow::anyhow!(
                "--gps {text:?}: {s:?} is not a number; write lat,lon[,accuracy_m], e.g. -3.9421,119.7812,8"
            )
        })
    };
    let (lat, lon, acc) = match parts.as_slice() {
        [lat, lon] => (num(lat)?, num(lon)?, None),
        [lat, lon, acc] => (num(lat)?, num(lon)?, Some(num(acc)?)),
        _ => bail!("--gps {text:?} must be lat,lon[,accuracy_m], e.g. -3.9421,119.7812,8"),
    };
    // Indonesia's longitudes (95..141) are never latitudes and its latitudes (-11..6) never its
    // longitudes: numbers that fit only the other way round were written in the wrong order.
    if (95.0..=141.0).contains(&lat) && (-11.0..=6.0).contains(&lon) {
        bail!(
            "--gps {text:?}: latitude and longitude look swapped ({lat} is a longitude in Indonesia); write latitude \
             first: --gps {lon},{lat}{}",
            acc.map(|a| format!(",{a}")).unwrap_or_default()
        );
    }
    Ok((lat, lon, acc))
}

/// Record the visit.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let id = store.resolve_id(&args.household)?;
    let form = household_form(&store, id)?;
    let mut file = match &args.answers_file {
        Some(p) => Some(read_answers_file(p)?),
        None => None,
    };
    let visit_json = match file.as_mut().and_then(|m| m.remove("visit")) {
        Some(serde_json::Value::Object(map)) => Some(map),
        Some(_) => bail!("\"visit\" in the answers file must be an object of visit answers"),
        None => None,
    };
    let answers = gather_answers(&form, Scope::Household, &args.answers, file.as_ref())?;
    let visit_answers = entry::only_set(gather_answers(&form, Scope::Visit, &args.visit_answers, visit_json.as_ref())?);
    let (lat, lon, accuracy_m) = match &args.gps {
        Some(text) => {
            let (la, lo, acc) = parse_gps(text)?;
            (Some(la), Some(lo), acc)
        }
        None => (None, None, None),
    };
    let edits = Edits {
        answers,
        visit: Some(NewVisit {
            id: VisitId::random(),
            outcome: args.outcome,
            lat,
            lon,
            accuracy_m,
            note: args.note,
            answers: visit_answers,
        }),
        ..Edits::default()
    };
    let saved = entry::save(&mut store, &form, id, "visit", &edits, super::now()?).map_err(explain)?;
    report_saved(&saved, "visit", args.json)
}
