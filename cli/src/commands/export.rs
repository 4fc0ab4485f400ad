//! `pilar export`: download a kecamatan's or kabupaten's households from the server page by page
//! and write them as XLSX or CSV (supervisors: their kecamatan; admins: any area). Rows are
//! written as they arrive, so memory stays flat; the files appear only when complete.

use crate::client::Client;
use anyhow::{Result, bail};
use pilar_export::{Export, ExportFormat};
use std::path::{Path, PathBuf};
use sync_core::form::FormDefinition;
use sync_core::ids::LocalZone;
use sync_core::model::HouseholdId;
use sync_core::protocol::ExportPage;
use sync_core::protocol::FormsView;

/// Arguments of `pilar export`.
#[derive(clap::Args)]
pub struct Args {
    /// Kecamatan (e.g. 73.14.01) or kabupaten (e.g. 73.14) to export.
    #[arg(long)]
    area: String,
    /// Only households approved now (an approval made stale by a later change does not count).
    #[arg(long)]
    approved: bool,
    /// Only households visited on or after this date (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Only households visited on or before this date (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// xlsx (one workbook, four sheets: households, members, visits, photos) or csv (four files).
    #[arg(long, value_enum, default_value_t = ExportFormat::Xlsx)]
    format: ExportFormat,
    /// The .xlsx file to write, or for csv the prefix of `<prefix>-households.csv` etc.
    #[arg(long)]
    out: PathBuf,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

fn query(args: &Args, after: Option<HouseholdId>) -> String {
    let mut q = format!("/v1/export?area={}", args.area.trim());
    if args.approved {
        q.push_str("&approved=true");
    }
    for (key, value) in [("from", &args.from), ("to", &args.to), ("after", &after.map(|a| a.to_string()))] {
        if let Some(v) = value {
            q.push_str(&format!("&{key}={}", v.trim()));
        }
    }
    q
}

/// Run `pilar export`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    if args.area.contains(['&', '?', '#', '/']) {
        bail!("--area {:?} is not a region code; give a kecamatan (73.14.01) or kabupaten (73.14)", args.area);
    }
    let mut client = Client::from_session(home)?;
    let form = export_form(&mut client)?;
    let form = &form;
    // Ask for the first page before creating files: a refused area leaves nothing behind.
    let mut page: ExportPage = client.get(&query(&args, None))?;
    let bar = indicatif::ProgressBar::new(page.total.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} households checked")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("exporting");
    // An area is one kecamatan or kabupaten, so one province and one zone for the whole file.
    let zone = LocalZone::of_region_text(&args.area);
    let mut export = Export::create(args.format, &args.out, form, zone)?;
    loop {
        for household in &page.households {
            export.write(household)?;
        }
        bar.inc(u64::from(page.scanned));
        let Some(after) = page.next_after else { break };
        page = client.get(&query(&args, Some(after)))?;
    }
    bar.finish_and_clear();
    let summary = export.finish()?;
    let files: Vec<String> = summary.files.iter().map(|f| f.display().to_string()).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "households": summary.households,
                "members": summary.members,
                "visits": summary.visits,
                "photos": summary.photos,
                "files": files,
            }))?
        );
    } else {
        println!(
            "exported {} household(s), {} member(s), {} visit(s), {} photo reference(s) to {}",
            summary.households,
            summary.members,
            summary.visits,
            summary.photos,
            files.join(", ")
        );
    }
    Ok(())
}

/// The form an export is laid out for ([`pilar_export::export_form_key`]).
fn export_form(client: &mut Client) -> Result<FormDefinition> {
    let catalog: FormsView = client.get("/v1/forms")?;
    match pilar_export::export_form_key(&catalog) {
        Some(key) => client.get(&format!("/v1/forms/{key}")),
        None => Ok(FormDefinition::default_dtsen().clone()),
    }
}
