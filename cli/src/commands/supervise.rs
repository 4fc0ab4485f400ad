//! The supervisor's commands, which talk to the server with the session of `--home`:
//! `pilar review`, `pilar conflicts`, `pilar duplicates` and `pilar progress`; and the
//! enumerator's `pilar returned`, which lists from the device store (offline) what a supervisor
//! sent back.

use super::open_store;
use crate::client::Client;
use crate::render::{cell, line, local_time, table};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use sync_core::model::{HouseholdId, ReviewStatus};
use sync_core::protocol::{
    ConflictItem, DismissRequest, DuplicatePair, FoldReply, FoldRequest, HouseholdBrief, HouseholdMatches,
    ProgressReport, ProgressRow, ResolveRequest, ReviewRequest,
};

/// `--area` and `--json`, shared by the list commands.
#[derive(clap::Args)]
pub struct AreaArgs {
    /// Village (73.14.01.1001), kecamatan (73.14.01) or kabupaten (73.14); default: all of your
    /// kecamatan (admins: everywhere).
    #[arg(long)]
    area: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl AreaArgs {
    fn query(&self, path: &str) -> Result<String> {
        Ok(match &self.area {
            None => path.to_string(),
            Some(a) => {
                let a = a.trim();
                if !a.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    bail!(
                        "--area {a:?} is not a region code; give a village, kecamatan (73.14.01) or kabupaten (73.14)"
                    );
                }
                format!("{path}{}area={a}", if path.contains('?') { '&' } else { '?' })
            }
        })
    }
}

/// `pilar review` subcommands.
#[derive(clap::Subcommand)]
pub enum ReviewCommand {
    /// List visited households and their review status (awaiting review first).
    List(ReviewListArgs),
    /// Approve a household as it stands now; any later change puts it back in the queue.
    Approve(DecisionArgs),
    /// Return a household to its enumerator with a comment saying what to fix.
    Return(DecisionArgs),
}

/// Arguments of `pilar review list`.
#[derive(clap::Args)]
pub struct ReviewListArgs {
    #[command(flatten)]
    area: AreaArgs,
    /// Only this status: awaiting_review, approved or returned.
    #[arg(long)]
    status: Option<String>,
}

/// Arguments of `pilar review approve|return`.
#[derive(clap::Args)]
pub struct DecisionArgs {
    /// The household id, as `pilar review list` shows it.
    household: String,
    /// What the enumerator must fix (required to return).
    #[arg(long)]
    comment: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pilar conflicts` subcommands.
#[derive(clap::Subcommand)]
pub enum ConflictCommand {
    /// List every field with several values, each with who wrote it, from which device, when.
    List(AreaArgs),
    /// Settle one field: keep a listed value (--pick N) or write a new one (--value V).
    Resolve(ResolveArgs),
}

/// Arguments of `pilar conflicts resolve`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("choice").required(true).args(["pick", "value"])))]
pub struct ResolveArgs {
    /// The household id.
    household: String,
    /// The field, as listed (answers.rt, members.<id>.nik, ...).
    path: String,
    /// Keep the value with this number in the list (1, 2, ...).
    #[arg(long)]
    pick: Option<usize>,
    /// Write this value instead (codes or labels, dates as YYYY-MM-DD, as in `pilar edit`).
    #[arg(long)]
    value: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pilar duplicates` subcommands.
#[derive(clap::Subcommand)]
pub enum DuplicateCommand {
    /// List households suspected to be one family: same KK, a shared NIK, same head name in a village's RT.
    List(AreaArgs),
    /// Merge two households: --retire is folded into --keep (members, visits; disagreements become conflicts).
    Merge(MergeArgs),
    /// The two households are different families: stop suspecting them.
    Dismiss(DismissArgs),
}

/// Arguments of `pilar duplicates merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The household that stays.
    #[arg(long)]
    keep: String,
    /// The household folded into it and marked merged.
    #[arg(long)]
    retire: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `pilar duplicates dismiss`.
#[derive(clap::Args)]
pub struct DismissArgs {
    /// One household.
    a: String,
    /// The other.
    b: String,
}

/// Arguments of `pilar progress`.
#[derive(clap::Args)]
pub struct ProgressArgs {
    #[command(flatten)]
    area: AreaArgs,
    /// Also write the report as CSV files `<prefix>-villages.csv`, `-enumerators.csv`, `-devices.csv`.
    #[arg(long, value_name = "PREFIX")]
    csv: Option<PathBuf>,
}

/// Arguments of `pilar returned`.
#[derive(clap::Args)]
pub struct ReturnedArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A household named by its full id, or by its first characters when this device holds it (a
/// supervisor's device holds the kecamatan after `pilar sync`).
/// The household a full id or its first characters name, looked up on the server among the
/// caller's households (the office laptop keeps no copy of the kecamatan).
pub fn household(client: &mut Client, text: &str) -> Result<HouseholdId> {
    let text = text.trim();
    if let Ok(id) = text.parse() {
        return Ok(id);
    }
    let prefix = text.to_ascii_lowercase();
    if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        bail!(
            "{text:?} is not a household id: give the id the lists show (its first 4 or more characters are enough \
             when no other household starts with them)"
        );
    }
    let found: HouseholdMatches = client.get(&format!("/v1/households?prefix={prefix}"))?;
    match found.matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!(
            "no household of your area has an id starting with {text:?}; copy the id from `pilar review list`, \
             `pilar conflicts list` or `pilar duplicates list`"
        ),
        many => bail!(
            "{} households start with {text:?} ({}{}); give more characters of the id",
            many.len(),
            many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            if many.len() >= HouseholdMatches::LIMIT as usize { ", …" } else { "" }
        ),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn brief_row(b: &HouseholdBrief) -> Vec<String> {
    vec![
        b.household.to_string(),
        b.village.clone(),
        cell(b.rt.as_deref()),
        cell(b.head_name.as_deref()),
        cell(b.review.as_deref()),
        cell(b.last_outcome),
        cell(b.last_visit_by.as_deref()),
        b.last_visit_at.as_deref().map_or_else(|| "-".to_owned(), |at| local_time(at, &b.village)),
        b.conflicts.to_string(),
        cell(b.comment.as_deref()),
    ]
}

const BRIEF_HEADER: [&str; 10] =
    ["household", "village", "rt", "head", "review", "outcome", "visited by", "visited at", "conflicts", "comment"];

/// Run `pilar review …`.
pub fn review(home: &Path, cmd: ReviewCommand) -> Result<()> {
    let mut client = Client::from_session(home)?;
    match cmd {
        ReviewCommand::List(args) => {
            let mut path = args.area.query("/v1/review")?;
            if let Some(s) = &args.status {
                if ReviewStatus::parse(s).is_none() {
                    bail!("--status {s:?} is not one of awaiting_review, approved, returned");
                }
                path.push_str(&format!("{}status={s}", if path.contains('?') { '&' } else { '?' }));
            }
            let mut list: Vec<HouseholdBrief> = client.get(&path)?;
            let rank = |b: &HouseholdBrief| match b.review.as_deref() {
                Some("awaiting_review") => 0,
                Some("returned") => 1,
                _ => 2,
            };
            list.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.village.cmp(&b.village)));
            if args.area.json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no visited households to review here.");
                return Ok(());
            }
            table(&BRIEF_HEADER, &list.iter().map(brief_row).collect::<Vec<_>>());
            Ok(())
        }
        ReviewCommand::Approve(args) => decide(&mut client, args, "approve"),
        ReviewCommand::Return(args) => {
            if args.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                bail!("returning a household needs --comment \"what to fix\"; the enumerator reads it on the tablet");
            }
            decide(&mut client, args, "return")
        }
    }
}

fn decide(client: &mut Client, args: DecisionArgs, decision: &str) -> Result<()> {
    let id = household(client, &args.household)?;
    let request = ReviewRequest { decision: decision.to_string(), comment: args.comment.clone() };
    let brief: HouseholdBrief = client.post(&format!("/v1/households/{id}/review"), &request)?;
    if args.json {
        return print_json(&brief);
    }
    match decision {
        "approve" => println!("approved household {id}; a later change puts it back in the review queue."),
        _ => println!("returned household {id} to its enumerator; they see it after their next sync."),
    }
    Ok(())
}

/// Run `pilar conflicts …`.
pub fn conflicts(home: &Path, cmd: ConflictCommand) -> Result<()> {
    let mut client = Client::from_session(home)?;
    match cmd {
        ConflictCommand::List(args) => {
            let list: Vec<ConflictItem> = client.get(&args.query("/v1/conflicts")?)?;
            if args.json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no open conflicts.");
                return Ok(());
            }
            for item in &list {
                println!(
                    "household {} (village {}, {}) — {}{} [{}]",
                    item.household.household,
                    line(&item.household.village),
                    line(cell(item.household.head_name.as_deref())),
                    line(&item.path),
                    item.label.as_ref().map(|l| format!(" ({})", line(l))).unwrap_or_default(),
                    line(&item.source)
                );
                for (i, v) in item.values.iter().enumerate() {
                    println!(
                        "  {}. {}  — {} on {}, {}",
                        i + 1,
                        line(&v.value),
                        line(&v.user),
                        line(&v.device),
                        local_time(&v.at, &item.household.village)
                    );
                }
            }
            println!(
                "{} open conflict(s). Settle one with: pilar conflicts resolve <household> <field> --pick N | --value V",
                list.len()
            );
            Ok(())
        }
        ConflictCommand::Resolve(args) => {
            let id = household(&mut client, &args.household)?;
            let request = ResolveRequest { path: args.path.clone(), pick: args.pick, value: args.value.clone() };
            let brief: HouseholdBrief = client.post(&format!("/v1/households/{id}/resolve"), &request)?;
            if args.json {
                return print_json(&brief);
            }
            println!("resolved {} of household {id}; devices receive it on their next sync.", args.path);
            Ok(())
        }
    }
}

/// Run `pilar duplicates …`.
pub fn duplicates(home: &Path, cmd: DuplicateCommand) -> Result<()> {
    let mut client = Client::from_session(home)?;
    match cmd {
        DuplicateCommand::List(args) => {
            let list: Vec<DuplicatePair> = client.get(&args.query("/v1/duplicates")?)?;
            if args.json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no suspected duplicates.");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|p| {
                    vec![
                        p.a.household.to_string(),
                        cell(p.a.head_name.as_deref()),
                        p.b.household.to_string(),
                        cell(p.b.head_name.as_deref()),
                        p.reasons.join(", "),
                    ]
                })
                .collect();
            table(&["household a", "head a", "household b", "head b", "why"], &rows);
            Ok(())
        }
        DuplicateCommand::Merge(args) => {
            let request = FoldRequest {
                survivor: household(&mut client, &args.keep)?,
                retired: household(&mut client, &args.retire)?,
            };
            let reply: FoldReply = client.post("/v1/duplicates/merge", &request)?;
            if args.json {
                return print_json(&reply);
            }
            println!(
                "merged household {} into {}; {} field(s) disagreed and wait in `pilar conflicts list`.",
                reply.retired, reply.survivor, reply.disagreements
            );
            Ok(())
        }
        DuplicateCommand::Dismiss(args) => {
            let request = DismissRequest { a: household(&mut client, &args.a)?, b: household(&mut client, &args.b)? };
            let _: serde_json::Value = client.post("/v1/duplicates/dismiss", &request)?;
            println!("households {} and {} are no longer suspected to be one family.", request.a, request.b);
            Ok(())
        }
    }
}

fn outcomes(row: &ProgressRow) -> String {
    row.final_outcomes.iter().map(|(code, n)| format!("{code}:{n}")).collect::<Vec<_>>().join(" ")
}

fn progress_cells(row: &ProgressRow) -> Vec<String> {
    vec![
        row.key.clone(),
        cell(row.name.as_deref()),
        row.total.to_string(),
        row.visited.to_string(),
        outcomes(row),
        row.awaiting_review.to_string(),
        row.approved.to_string(),
        row.returned.to_string(),
        row.conflicts.to_string(),
        row.duplicates.to_string(),
    ]
}

const PROGRESS_HEADER: [&str; 10] = [
    "",
    "name",
    "households",
    "visited",
    "final outcomes",
    "awaiting",
    "approved",
    "returned",
    "conflicts",
    "duplicates",
];

/// Run `pilar progress`.
pub fn progress(home: &Path, args: ProgressArgs) -> Result<()> {
    let mut client = Client::from_session(home)?;
    let report: ProgressReport = client.get(&args.area.query("/v1/progress")?)?;
    if let Some(prefix) = &args.csv {
        write_progress_csv(prefix, &report)?;
    }
    if args.area.json {
        return print_json(&report);
    }
    let mut header = PROGRESS_HEADER;
    header[0] = "village";
    table(&header, &report.villages.iter().map(progress_cells).collect::<Vec<_>>());
    println!();
    header[0] = "enumerator";
    header[1] = "-";
    table(&header, &report.enumerators.iter().map(progress_cells).collect::<Vec<_>>());
    println!();
    // Last syncs on the clock of the area's province (every village of one area keeps one zone).
    let area = args.area.area.clone().or_else(|| report.villages.first().map(|v| v.key.clone())).unwrap_or_default();
    let rows: Vec<Vec<String>> = report
        .devices
        .iter()
        .map(|d| {
            vec![
                d.user.clone(),
                d.name.clone(),
                d.device.clone(),
                d.last_sync_at.as_deref().map_or_else(|| "-".to_owned(), |at| local_time(at, &area)),
                if d.revoked { "revoked".into() } else { String::new() },
            ]
        })
        .collect();
    table(&["user", "device", "id", "last sync", ""], &rows);
    if let Some(prefix) = &args.csv {
        println!("\nwrote {}-villages.csv, -enumerators.csv, -devices.csv", prefix.display());
    }
    Ok(())
}

/// The three CSV files of the progress report (UTF-8 with a BOM, so Excel reads names right).
fn write_progress_csv(prefix: &Path, report: &ProgressReport) -> Result<()> {
    let codes: std::collections::BTreeSet<i64> =
        report.villages.iter().chain(&report.enumerators).flat_map(|r| r.final_outcomes.keys().copied()).collect();
    let file = |suffix: &str| -> Result<(PathBuf, csv::Writer<std::fs::File>)> {
        let mut name = prefix.as_os_str().to_os_string();
        name.push(format!("-{suffix}.csv"));
        let path = PathBuf::from(name);
        let mut f = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut f, b"\xEF\xBB\xBF")?;
        Ok((path, csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(f)))
    };
    for (suffix, key, rows) in
        [("villages", "village", &report.villages), ("enumerators", "enumerator", &report.enumerators)]
    {
        let (_, mut w) = file(suffix)?;
        let mut header: Vec<String> = [key, "name", "households", "visited"].iter().map(|s| s.to_string()).collect();
        header.extend(codes.iter().map(|c| format!("final_outcome_{c}")));
        header.extend(["awaiting_review", "approved", "returned", "conflicts", "duplicates"].map(String::from));
        w.write_record(&header)?;
        for r in rows {
            let mut record =
                vec![r.key.clone(), r.name.clone().unwrap_or_default(), r.total.to_string(), r.visited.to_string()];
            record.extend(codes.iter().map(|c| r.final_outcomes.get(c).copied().unwrap_or(0).to_string()));
            record
                .extend([r.awaiting_review, r.approved, r.returned, r.conflicts, r.duplicates].map(|n| n.to_string()));
            w.write_record(&record)?;
        }
        w.flush()?;
    }
    let (_, mut w) = file("devices")?;
    w.write_record(["user", "device_name", "device_id", "last_sync_at", "revoked"])?;
    for d in &report.devices {
        w.write_record([
            d.user.as_str(),
            d.name.as_str(),
            d.device.as_str(),
            d.last_sync_at.as_deref().unwrap_or(""),
            if d.revoked { "yes" } else { "no" },
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Run `pilar returned`: households on this device a supervisor returned, with the comment.
pub fn returned(home: &Path, args: ReturnedArgs) -> Result<()> {
    let store = open_store(home)?;
    let mut rows = Vec::new();
    for (id, village) in store.household_villages()? {
        let household = store.load(id)?.household;
        let state = household.state();
        if household.review_status(&state) != Some(ReviewStatus::Returned) {
            continue;
        }
        rows.push(serde_json::json!({
            "household": id,
            "village": village,
            "head_name": state.answer_text("head_name"),
            "returned_by": state.review.by,
            "returned_at": state.review.at,
            "comment": state.review.comments.last().map(|c| c.text.clone()),
        }));
    }
    if args.json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("nothing returned to you: no household waits for a fix.");
        return Ok(());
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| "-".into());
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                text(&r["household"]),
                text(&r["village"]),
                text(&r["head_name"]),
                text(&r["returned_by"]),
                r["returned_at"].as_str().map_or_else(|| "-".to_owned(), |at| local_time(at, &text(&r["village"]))),
                text(&r["comment"]),
            ]
        })
        .collect();
    table(&["household", "village", "head", "returned by", "returned at", "comment"], &table_rows);
    println!("{} household(s) to fix: visit or edit them, then `pilar sync`.", rows.len());
    Ok(())
}
