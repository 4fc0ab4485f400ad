//! `pilar sync`: send this device's work and receive everyone else's in its villages. First sync of
//! a village downloads its snapshot pack (resumable), then one request per round trip catches up.

use super::open_store;
use crate::client::Client;
use anyhow::{Context, Result};
use std::path::Path;
use sync_core::model::HouseholdId;
use sync_core::store::DeviceStore;
use sync_core::sync::{self, CONTENT_TYPE, PackPage, SyncResponse};

/// Arguments of `pilar sync`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Largest response body this client accepts after decompression.
const MAX_BODY: usize = 256 << 20;
/// Changes asked for per round trip.
const PAGE_CHANGES: u32 = 5000;

/// What one `pilar sync` did, for the summary line.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    round_trips: usize,
    bytes_sent: usize,
    bytes_received: usize,
    changes_sent: usize,
    changes_received: usize,
    households_changed: usize,
    households_from_packs: usize,
    new_conflicts: usize,
    rejected: usize,
    still_unsent: usize,
    villages_added: Vec<String>,
    villages_removed: Vec<String>,
}

fn download_packs(client: &mut Client, store: &mut DeviceStore, village: &str, summary: &mut Summary) -> Result<()> {
    let mut after: Option<String> = store.pack_progress(village)?.and_then(|(a, _)| a);
    let bar = indicatif::ProgressBar::new_spinner().with_message(format!("downloading village {village}"));
    loop {
        let path = match &after {
            Some(a) => format!("/v1/packs/{village}?after={a}"),
            None => format!("/v1/packs/{village}"),
        };
        let url = client.url(&path);
        let body = client.send(|http| http.get(&url).header("accept", CONTENT_TYPE))?.bytes()?;
        summary.round_trips += 1;
        summary.bytes_received += body.len();
        let page: PackPage = sync::decode(&body, MAX_BODY).context("the server sent an unreadable pack")?;
        let progress = sync::apply_pack_page(store, &page, super::now()?)?;
        summary.households_from_packs += progress.households;
        bar.inc(progress.households as u64);
        match progress.next_after {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Run the sync.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let mut client = Client::from_session(home)?;
    let mut summary = Summary::default();
    let mut full: Vec<HouseholdId> = Vec::new();
    let bar = indicatif::ProgressBar::new_spinner().with_message("syncing");
    for _ in 0..10_000 {
        // Villages without a cursor have not finished their pack yet: fetch those first.
        let cursors = store.cursors()?;
        for village in store.villages()? {
            if !cursors.contains_key(&village) {
                download_packs(&mut client, &mut store, &village, &mut summary)?;
            }
        }
        let fresh = uuid::Uuid::new_v4();
        let request = sync::build_request(&mut store, &full, fresh, PAGE_CHANGES)?;
        let body = sync::encode(&request);
        summary.bytes_sent += body.len();
        summary.changes_sent += request.push.iter().map(|p| p.changes.len()).sum::<usize>();
        let url = client.url("/v1/sync");
        let reply = client
            .send(|http| {
                http.post(&url)
                    .header("content-type", CONTENT_TYPE)
                    .header("content-encoding", "zstd")
                    .header("accept", CONTENT_TYPE)
                    .body(body.clone())
            })?
            .bytes()?;
        summary.round_trips += 1;
        summary.bytes_received += reply.len();
        let response: SyncResponse =
            sync::decode(&reply, MAX_BODY).context("the server sent an unreadable response")?;
        let outcome = sync::apply_response(&mut store, &request, &response, super::now()?)?;
        bar.set_message(format!("synced {} change(s)", summary.changes_received + outcome.received));
        summary.changes_received += outcome.received;
        summary.households_changed += outcome.households_changed;
        summary.new_conflicts += outcome.new_conflicts;
        summary.rejected += outcome.rejected;
        summary.villages_added.extend(outcome.villages_added.iter().cloned());
        summary.villages_removed.extend(outcome.villages_removed.iter().cloned());
        full = outcome.need_full.clone();
        // A retried batch carries only what went out before its response was lost; work saved
        // since then goes in the next batch of this same sync.
        let saved_since = request.batch != fresh && store.outbox()?.iter().any(|e| e.rejected_reason.is_none());
        if !outcome.has_more && full.is_empty() && outcome.villages_added.is_empty() && !saved_since {
            break;
        }
    }
    bar.finish_and_clear();
    // Villages that left the scope go once their work is acknowledged.
    let mut kept = Vec::new();
    for village in summary.villages_removed.clone() {
        if store.purge_village(&village)?.is_none() {
            kept.push(village);
        }
    }
    let outbox = store.outbox()?;
    summary.still_unsent = outbox.iter().filter(|e| e.rejected_reason.is_none()).count();
    let rejected_kept = outbox.len() - summary.still_unsent;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "sent {} change(s), received {} change(s) in {} household(s) ({} from snapshot packs), {} new conflict(s); {} round trip(s), {} bytes up, {} bytes down",
            summary.changes_sent,
            summary.changes_received,
            summary.households_changed,
            summary.households_from_packs,
            summary.new_conflicts,
            summary.round_trips,
            summary.bytes_sent,
            summary.bytes_received
        );
        for v in &summary.villages_added {
            println!("village {v} added to this device");
        }
        for v in &summary.villages_removed {
            if kept.contains(v) {
                println!("village {v} is no longer assigned: its households stay until their unsent work is accepted");
            } else {
                println!(
                    "village {v} is no longer assigned: its households were removed from this device after upload"
                );
            }
        }
        if rejected_kept > 0 {
            println!("{rejected_kept} change(s) were refused by the server and are kept here; see `pilar pending`");
        }
        if summary.still_unsent > 0 {
            println!("NOT fully synced: {} change(s) still unsent; run `pilar sync` again", summary.still_unsent);
        } else if rejected_kept == 0 {
            println!("everything on this device has reached the server");
        }
    }
    Ok(())
}
