//! `pilar roster import`: check a CSV/XLSX roster on this machine, then load it onto the server in
//! chunks that the server re-checks, stages and commits at once (admin only). A file with errors
//! imports nothing unless `--good-rows-only` is given; the report names row, column, value, rule.

use crate::client::{Client, ServerRefused};
use crate::roster::report::{render_problems, render_report, summary};
use crate::roster::{Layout, RosterOptions, check_roster, read_roster};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use sync_core::finding::Severity;
use sync_core::form::FormDefinition;
use sync_core::protocol::{
    CHUNK_HOUSEHOLDS, ChunkReply, CommitRequest, ImportSummary, ROSTER_CHUNK_ENCODING, RosterChunk,
};
use sync_core::roster::RosterHousehold;

/// `pilar roster` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Import a roster (CSV or XLSX) onto the server; re-importing updates households by DTSEN
    /// family id. Columns and layouts: docs/roster.md.
    Import(ImportArgs),
}

/// Arguments of `pilar roster import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The roster file: .csv (UTF-8) or .xlsx.
    file: PathBuf,
    /// How rows map to households (auto detects one row per person when rows share a family id).
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    layout: Layout,
    /// The spreadsheet sheet to read (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// Leave out columns that name no form field instead of refusing the file.
    #[arg(long)]
    ignore_unknown: bool,
    /// Import the households without errors and report the rest (default: any error imports nothing).
    #[arg(long)]
    good_rows_only: bool,
    /// Only check the file and print the report; send nothing.
    #[arg(long)]
    check: bool,
    /// Also write the report (one line per problem) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Run `pilar roster …`.
pub fn run(home: &Path, command: Command) -> Result<()> {
    match command {
        Command::Import(args) => import(home, args),
    }
}

/// A spinner line that names its phase and shows the time it has taken, so a long phase visibly
/// continues.
fn phase_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
}

/// Whether the server refused a request as malformed (an older server reading only plain JSON).
fn is_malformed(error: &anyhow::Error) -> bool {
    error.downcast_ref::<ServerRefused>().is_some_and(|refused| refused.body.error == "malformed_request")
}

fn import(home: &Path, args: ImportArgs) -> Result<()> {
    let form = FormDefinition::default_dtsen();
    let options = RosterOptions {
        layout: args.layout,
        ignore_unknown: args.ignore_unknown,
        today: super::now()?.date(),
        sheet: args.sheet.clone(),
    };
    let bar = indicatif::ProgressBar::new_spinner()
        .with_style(phase_style())
        .with_message(format!("reading and checking {}", args.file.display()));
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    let mut shown = 0;
    // A check keeps no household, so its memory stays flat however long the file is.
    let read = if args.check { check_roster } else { read_roster };
    let file = read(form, &args.file, &options, &mut |rows| {
        // Called per household with the rows so far: redraw every thousand rows or so.
        if rows >= shown + 1000 {
            shown = rows;
            bar.set_message(format!("reading and checking {}: {rows} row(s)", args.file.display()));
        }
    })?;
    bar.finish_and_clear();
    if let Some(path) = &args.report {
        std::fs::write(path, render_report(&file))
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    // The problems, then the summary exactly once: on stdout for a check, else after the problems.
    if !file.problems.is_empty() && !args.json {
        eprint!("{}", render_problems(&file));
        if !args.check {
            eprintln!("{}", summary(&file));
        }
    }
    if args.check && !args.json {
        println!("{}", summary(&file));
    }
    let households: Vec<&RosterHousehold> =
        if args.good_rows_only { file.clean_households() } else { file.households.iter().collect() };
    if file.has_errors() && !args.good_rows_only {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&json!({ "imported": false, "problems": file.problems }))?);
        }
        if args.check {
            bail!(
                "the roster has errors (listed above, one line each); fix them and check again, or import with \
                 --good-rows-only to import the {} household(s) without errors",
                file.clean_count
            );
        }
        bail!(
            "nothing was imported: the roster has errors (listed above, one line each); fix them and import again, \
             or use --good-rows-only to import the {} household(s) without errors",
            file.clean_count
        );
    }
    if args.check {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&json!({ "checked": true, "problems": file.problems }))?);
        }
        return Ok(());
    }
    if households.is_empty() {
        bail!("nothing to import: the roster has no household without errors");
    }
    let mut client = Client::from_session(home)?;
    let import = uuid::Uuid::new_v4();
    let chunks: Vec<&[&RosterHousehold]> = households.chunks(CHUNK_HOUSEHOLDS).collect();
    let bar = indicatif::ProgressBar::new(households.len() as u64)
        .with_style(
            indicatif::ProgressStyle::with_template("{msg}: {pos}/{len} households {wide_bar} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
        .with_message(format!("uploading {} chunk(s)", chunks.len()));
    // Chunks go up as zstd-compressed JSON (a tenth of the bytes); a server that reads only plain
    // JSON (older than this pilar) refuses the first one as malformed, and gets plain JSON.
    let mut compress = true;
    for (n, chunk) in chunks.iter().enumerate() {
        let body = RosterChunk { households: chunk.iter().map(|h| (*h).clone()).collect() };
        let path = format!("/v1/roster/{import}/chunks/{n}");
        let mut sent = None;
        if compress {
            let packed = body.to_compressed().context("cannot compress a roster chunk")?;
            match client.put_encoded::<ChunkReply>(&path, "application/json", ROSTER_CHUNK_ENCODING, &packed) {
                Ok(reply) => sent = Some(reply),
                Err(e) if n == 0 && is_malformed(&e) => compress = false,
                Err(e) => return Err(e),
            }
        }
        let reply: ChunkReply = match sent {
            Some(reply) => reply,
            None => client.put(&path, &body)?,
        };
        if !reply.staged {
            bar.finish_and_clear();
            for problem in reply.problems.iter().filter(|p| p.is_blocking()) {
                eprintln!("{problem}");
            }
            for (rule, _, more) in reply.unlisted().filter(|(_, severity, _)| *severity == Severity::Reject) {
                eprintln!("… and {more} more problem(s) of rule {rule} in this chunk of {} household(s)", chunk.len());
            }
            bail!(
                "nothing was imported: the server refused rows this pilar accepted (listed above); the server and \
                 pilar versions may differ"
            );
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // The server stores the whole roster in one transaction: say so while it works.
    let bar = indicatif::ProgressBar::new_spinner().with_style(phase_style()).with_message(format!(
        "committing {} household(s) on the server, all at once (a large roster takes a minute)",
        households.len()
    ));
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    let done: ImportSummary =
        client.post(&format!("/v1/roster/{import}/commit"), &CommitRequest { chunks: chunks.len() as u32 })?;
    bar.finish_and_clear();
    let skipped = file.households.len() - households.len();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "imported": true,
                "created": done.created,
                "updated": done.updated,
                "unchanged": done.unchanged,
                "skipped": skipped,
                "problems": file.problems,
            }))?
        );
    } else {
        println!(
            "imported {} household(s): {} created, {} updated, {} unchanged{}",
            households.len(),
            done.created,
            done.updated,
            done.unchanged,
            if skipped > 0 { format!("; {skipped} with errors skipped (see the report)") } else { String::new() }
        );
    }
    Ok(())
}
