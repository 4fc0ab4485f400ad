//! `pilar sync`: send this device's work and receive everyone else's in its villages. First sync of
//! a village downloads its snapshot pack (resumable), households whose copy is damaged are restored
//! from the server, then one request per round trip catches up.
//!
//! Whatever happens, the command ends by saying what it means for the person holding the tablet:
//! what happened, how much of their work is kept on the device, and what to do. The exit code says
//! the same to a tablet app: 0 everything reached the server, 3 network trouble (try again),
//! 4 the server refused something (see the message), 1 anything else.
//!
//! Photos go after the household data (`sync/photos.rs`): a slow photo never holds up the data.

mod photos;

use super::{EXIT_NETWORK, EXIT_REFUSED, Reported, open_store};
use crate::client::{Client, DeviceWiped, NetworkFailure, NetworkKind, ServerRefused};
use crate::render::{block, line};
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use sync_core::model::HouseholdId;
use sync_core::store::{DeviceStore, PageSizes};
use sync_core::sync::{
    self, CONTENT_TYPE, ClientError, DOCUMENTS_PATH, DocumentsResponse, FORMS_PATH, FormsDelivery, FormsRequest,
    PACK_CONTENT_TYPE, REQUEST_HEADERS, SYNC_PATH, SyncResponse,
};

/// Arguments of `pilar sync`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the summary as JSON (also when the sync fails).
    #[arg(long)]
    json: bool,
    /// Photo upload chunk size in KiB (1 to 1024). The default, 32, suits 2G: a cut connection
    /// loses at most one chunk; on office Wi-Fi 512 uploads faster.
    #[arg(long, default_value_t = sync_core::photo::DEFAULT_CHUNK_BYTES / 1024, value_parser = clap::value_parser!(u64).range(1..=1024))]
    chunk_kib: u64,
}

impl Args {
    /// Arguments for a sync started by another command (`pilar repair`).
    pub fn new(json: bool) -> Args {
        Args { json, chunk_kib: sync_core::photo::DEFAULT_CHUNK_BYTES / 1024 }
    }
}

/// Largest response body this client accepts after decompression.
const MAX_BODY: usize = 256 << 20;

/// A round trip quicker than this lets the next page grow.
const FAST_ROUND_TRIP: Duration = Duration::from_secs(2);

/// Round trips one `pilar sync` makes at most (a backstop against a server that never says done).
const MAX_ROUND_TRIPS: usize = 10_000;

/// Extra round trips for work saved while the sync was running.
const MAX_EXTRA_ROUNDS: usize = 3;

/// What one `pilar sync` did, and what it leaves on the device.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    /// `complete` (everything reached the server), `unsent` (work left, try again), `refused`
    /// (the server refused something), `network` (the connection failed).
    outcome: &'static str,
    round_trips: usize,
    bytes_sent: usize,
    bytes_received: usize,
    changes_sent: usize,
    changes_received: usize,
    households_changed: usize,
    households_from_packs: usize,
    /// Villages whose first download finished in this sync.
    villages_downloaded: usize,
    households_restored: usize,
    new_conflicts: usize,
    rejected: usize,
    /// Own changes not yet confirmed by the server (kept on the device, sent next time).
    still_unsent: usize,
    /// Households those changes belong to.
    unsent_households: usize,
    /// Own changes the server refused (kept on the device, not sent again; `pilar pending`).
    refused_kept: usize,
    /// Households waiting to be restored from the server.
    repairs_pending: usize,
    /// A village whose first download stopped part-way: (village, households kept).
    download_interrupted: Option<(String, usize)>,
    villages_added: Vec<String>,
    villages_removed: Vec<String>,
    /// Form versions received (`id@version`).
    forms_received: Vec<String>,
    /// Photo uploads (after the data).
    #[serde(flatten)]
    photos: photos::PhotoSummary,
    /// The failure, when the sync did not finish.
    error: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(client: &Client, body: &[u8], what: &str) -> Result<T> {
    // A body that arrives whole but does not decode was cut or damaged on the way (a proxy, a
    // broken link); the request is simply made again.
    sync::decode(body, MAX_BODY)
        .map_err(|e| anyhow::Error::new(NetworkFailure::broken_answer(client.server(), format_args!("{what}: {e}"))))
}

/// Whether `error` is the server refusing with the stable code `code`.
fn refused_with(error: &anyhow::Error, code: &str) -> bool {
    error.chain().filter_map(|c| c.downcast_ref::<ServerRefused>()).any(|r| r.body.error == code)
}

/// After a failed round trip: shrink the pages when the connection broke or timed out.
fn adapt_after_failure(store: &mut DeviceStore, sizes: PageSizes, error: &anyhow::Error) -> Result<()> {
    let cut = error
        .chain()
        .filter_map(|c| c.downcast_ref::<NetworkFailure>())
        .any(|f| matches!(f.kind, NetworkKind::Broken | NetworkKind::TimedOut));
    if cut {
        store.set_page_sizes(sizes.after_cut())?;
    }
    Ok(())
}

/// Which of the villages downloaded in this sync a download is (for "village 2 of 10").
#[derive(Clone, Copy)]
struct Place {
    index: usize,
    of: usize,
}

fn download_packs(
    client: &mut Client,
    store: &mut DeviceStore,
    village: &str,
    place: Place,
    summary: &mut Summary,
) -> Result<()> {
    let mut after: Option<String> = store.pack_progress(village)?.and_then(|(a, _)| a);
    let name = sync_core::ids::VillageCode::parse_format_only(village).ok().and_then(|v| v.name()).unwrap_or("");
    let bar = indicatif::ProgressBar::new(0)
        .with_style(
            indicatif::ProgressStyle::with_template("{msg}: {pos}/{len} households {wide_bar} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
        .with_message(format!("downloading village {} of {}, {village} {name}", place.index, place.of));
    bar.set_position(store.households_in(village)?);
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    summary.download_interrupted = Some((village.to_string(), 0));
    // Compact pages (format 2) when the server has them; an older server answers format 1.
    let mut accept = format!("{PACK_CONTENT_TYPE}, {CONTENT_TYPE};q=0.5");
    loop {
        let sizes = store.page_sizes()?;
        let limit = sizes.pack_households;
        let path = match &after {
            Some(a) => format!("/v1/packs/{village}?after={a}&limit={limit}"),
            None => format!("/v1/packs/{village}?limit={limit}"),
        };
        let url = client.url(&path);
        let started = Instant::now();
        let answer = client.send(|http| http.get(&url).header("accept", accept.as_str())).and_then(|r| {
            let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
            client.body(r).map(|body| (content_type, body))
        });
        let (content_type, body) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                adapt_after_failure(store, sizes, &e)?;
                return Err(e);
            }
        };
        summary.round_trips += 1;
        summary.bytes_received += body.len();
        let page = match sync::decode_pack(content_type.as_deref(), &body, MAX_BODY) {
            Ok(page) => page,
            Err(e) => {
                // Cut or damaged on the way (a proxy, a broken link): the request is made again.
                let e =
                    anyhow::Error::new(NetworkFailure::broken_answer(client.server(), format_args!("pack page: {e}")));
                adapt_after_failure(store, sizes, &e)?;
                return Err(e);
            }
        };
        let progress = match sync::apply_pack(store, &page, super::now()?) {
            Ok(progress) => progress,
            // A compact page that does not rebuild into the server's households (a version
            // mismatch): nothing of it was stored; the rest of the village comes as documents.
            Err(ClientError::Pack(e)) if accept.starts_with(PACK_CONTENT_TYPE) => {
                eprintln!("note: {e}; downloading the rest of village {village} as whole documents");
                accept = CONTENT_TYPE.to_string();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if started.elapsed() < FAST_ROUND_TRIP && progress.next_after.is_some() {
            store.set_page_sizes(sizes.after_fast())?;
        }
        summary.households_from_packs += progress.households;
        summary.villages_downloaded += usize::from(progress.next_after.is_none());
        if let Some((_, kept)) = &mut summary.download_interrupted {
            *kept += progress.households;
        }
        bar.inc(progress.households as u64);
        bar.set_length(page.total().max(bar.position()));
        match progress.next_after {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    summary.download_interrupted = None;
    bar.finish_and_clear();
    Ok(())
}

/// A sync or documents request with the headers the protocol asks for (`sync::REQUEST_HEADERS`).
fn with_sync_headers(request: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
    REQUEST_HEADERS.iter().fold(request, |request, (name, value)| request.header(*name, *value))
}

/// Restore households listed for repair from the server's whole documents.
fn repair(client: &mut Client, store: &mut DeviceStore, summary: &mut Summary) -> Result<()> {
    while let Some(request) = sync::repair_request(store)? {
        let body = sync::encode(&request);
        let url = client.url(DOCUMENTS_PATH);
        let response = client.send(|http| with_sync_headers(http.post(&url)).body(body.clone()))?;
        let reply = client.body(response)?;
        summary.round_trips += 1;
        summary.bytes_sent += body.len();
        summary.bytes_received += reply.len();
        let documents: DocumentsResponse = decode(client, &reply, "repair answer")?;
        let outcome = sync::apply_repair(store, &documents, super::now()?)?;
        summary.households_restored += outcome.restored;
        if outcome.restored + outcome.unavailable == 0 {
            break; // the server's copies did not load either; they stay listed
        }
    }
    Ok(())
}

/// Fetch the form versions this device lacks and the defaults for its kabupaten, when the
/// server's catalog token differs from the stored one (a read: retrying is harmless).
fn fetch_forms(client: &mut Client, store: &mut DeviceStore, token: &str, summary: &mut Summary) -> Result<()> {
    if token.is_empty() || store.forms_token()?.as_deref() == Some(token) {
        return Ok(());
    }
    let have: Vec<String> = store.forms()?.keys().map(str::to_string).collect();
    let body = sync::encode(&FormsRequest { have });
    let url = client.url(FORMS_PATH);
    let response = client.send(|http| with_sync_headers(http.post(&url)).body(body.clone()))?;
    let reply = client.body(response)?;
    summary.round_trips += 1;
    summary.bytes_sent += body.len();
    summary.bytes_received += reply.len();
    let delivery: FormsDelivery = decode(client, &reply, "forms answer")?;
    let keys: Vec<String> = delivery
        .forms
        .iter()
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .filter_map(|v| Some(format!("{}@{}", v.get("id")?.as_str()?, v.get("version")?.as_u64()?)))
        .collect();
    store.store_forms(&delivery)?;
    summary.forms_received.extend(keys);
    Ok(())
}

/// The round trips: repairs, first downloads, then sync pages until nothing is left.
fn exchange(client: &mut Client, store: &mut DeviceStore, summary: &mut Summary) -> Result<()> {
    let bar = indicatif::ProgressBar::new_spinner().with_message("syncing");
    let mut full: Vec<HouseholdId> = Vec::new();
    let mut extra_rounds = 0;
    for _ in 0..MAX_ROUND_TRIPS {
        repair(client, store, summary)?;
        // Villages without a cursor have not finished their pack yet: fetch those first.
        let cursors = store.cursors()?;
        let first: Vec<String> = store.villages()?.into_iter().filter(|v| !cursors.contains_key(v)).collect();
        for (i, village) in first.iter().enumerate() {
            {
                let place = Place { index: i + 1, of: first.len() };
                match download_packs(client, store, village, place, summary) {
                    // The village was taken away since the last sync: the sync request below
                    // uploads what is pending there and brings the new village list.
                    Err(e) if refused_with(&e, "forbidden") => summary.download_interrupted = None,
                    other => other?,
                }
            }
        }
        let sizes = store.page_sizes()?;
        let fresh = uuid::Uuid::new_v4();
        let request = sync::build_request(store, &full, fresh, sizes.pull_changes, super::now()?)?;
        let body = sync::encode(&request);
        let url = client.url(SYNC_PATH);
        let started = Instant::now();
        let reply =
            client.send(|http| with_sync_headers(http.post(&url)).body(body.clone())).and_then(|r| client.body(r));
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                adapt_after_failure(store, sizes, &e)?;
                return Err(e);
            }
        };
        summary.round_trips += 1;
        summary.bytes_sent += body.len();
        summary.changes_sent += request.push.iter().map(|p| p.changes.len()).sum::<usize>();
        summary.bytes_received += reply.len();
        let response: SyncResponse = match decode(client, &reply, "sync answer") {
            Ok(response) => response,
            Err(e) => {
                adapt_after_failure(store, sizes, &e)?;
                return Err(e);
            }
        };
        let outcome = sync::apply_response(store, &request, &response, super::now()?)?;
        fetch_forms(client, store, &response.forms, summary)?;
        if started.elapsed() < FAST_ROUND_TRIP && outcome.has_more {
            store.set_page_sizes(sizes.after_fast())?;
        }
        bar.set_message(format!("synced {} change(s)", summary.changes_received + outcome.received));
        summary.changes_received += outcome.received;
        summary.households_changed += outcome.households_changed;
        summary.new_conflicts += outcome.new_conflicts;
        summary.rejected += outcome.rejected;
        summary.villages_added.extend(outcome.villages_added.iter().cloned());
        summary.villages_removed.extend(outcome.villages_removed.iter().cloned());
        full = outcome.need_full.clone();
        // A retried batch carries only what went out before its response was lost, and its answer
        // is the one the server stored then: work saved since goes, and changes committed since
        // come, in a next (fresh) batch of this same sync. Work saved while this request was on
        // its way, and
        // households listed for repair, get a few extra rounds at most (saves that never stop, or
        // a household the server keeps refusing, cannot keep the sync going).
        let unsent = store.outbox()?.iter().any(|e| e.rejected_reason.is_none());
        let more_work = unsent || outcome.repairs > 0;
        if more_work && request.batch == fresh {
            extra_rounds += 1;
        }
        let go_on = outcome.has_more
            || !full.is_empty()
            || !outcome.villages_added.is_empty()
            || request.batch != fresh
            || (more_work && extra_rounds <= MAX_EXTRA_ROUNDS);
        if !go_on {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Run the sync and say what it means.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let mut store = open_store(home)?;
    let mut client = Client::from_session(home)?;
    let mut summary = Summary::default();
    let mut result = exchange(&mut client, &mut store, &mut summary);
    if result.is_ok() {
        // The data is on the server; now the photos, which may take long on 2G.
        result = photos::upload(&mut client, &mut store, args.chunk_kib * 1024, &mut summary.photos);
    } else {
        let (unsent, bytes) = store.unsent_photos()?;
        summary.photos.photos_unsent = unsent;
        summary.photos.photo_bytes_unsent = bytes;
    }
    if let Err(e) = &result
        && e.chain().any(|c| c.downcast_ref::<DeviceWiped>().is_some())
    {
        // The store is gone: there is nothing left to count.
        return result;
    }
    // Villages that left the scope go once their work is acknowledged and their photos uploaded:
    // those this sync was told of, and those an earlier sync had to keep (their last photo may
    // have gone up only now, after the data exchange that would have purged them).
    let mut kept = Vec::new();
    if result.is_ok() {
        let assigned: BTreeSet<String> = store.villages()?.into_iter().collect();
        let mut gone: BTreeSet<String> = summary.villages_removed.iter().cloned().collect();
        gone.extend(store.household_villages()?.into_iter().map(|(_, v)| v).filter(|v| !assigned.contains(v)));
        for village in gone {
            if store.purge_village(&village)?.is_none() {
                kept.push(village.clone());
            }
            if !summary.villages_removed.contains(&village) {
                summary.villages_removed.push(village);
            }
        }
    }
    let outbox = store.outbox()?;
    let unsent: Vec<_> = outbox.iter().filter(|e| e.rejected_reason.is_none()).collect();
    summary.still_unsent = unsent.len();
    summary.unsent_households = unsent.iter().map(|e| e.household.as_str()).collect::<BTreeSet<_>>().len();
    summary.refused_kept = outbox.len() - unsent.len();
    let refused_households =
        outbox.iter().filter(|e| e.rejected_reason.is_some()).map(|e| e.household.as_str()).collect::<BTreeSet<_>>();
    summary.repairs_pending = store.repairs()?.len();
    let code = match &result {
        Err(e) => {
            summary.error = Some(format!("{e:#}"));
            if e.chain().any(|c| c.downcast_ref::<NetworkFailure>().is_some()) {
                summary.outcome = "network";
                EXIT_NETWORK
            } else if e.chain().any(|c| c.downcast_ref::<ServerRefused>().is_some()) {
                summary.outcome = "refused";
                EXIT_REFUSED
            } else {
                summary.outcome = "failed";
                1
            }
        }
        Ok(()) if summary.refused_kept > 0 => {
            summary.outcome = "refused";
            EXIT_REFUSED
        }
        Ok(()) if summary.still_unsent > 0 || summary.repairs_pending > 0 || summary.photos.photos_unsent > 0 => {
            summary.outcome = "unsent";
            EXIT_NETWORK
        }
        Ok(()) => {
            summary.outcome = "complete";
            0
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if result.is_ok() {
        print_done(&summary, &kept);
    }
    if let Err(e) = &result {
        explain_failure(e, &summary);
    } else if summary.refused_kept > 0 {
        eprintln!(
            "{} change(s) in {} household(s) were refused by the server. They are kept on this device and are \
             not sent again; `pilar pending` shows each reason (fix the answer and save again, or ask your \
             supervisor).",
            summary.refused_kept,
            refused_households.len()
        );
    } else if summary.still_unsent > 0 || summary.repairs_pending > 0 || summary.photos.photos_unsent > 0 {
        eprintln!(
            "NOT fully synced: {} change(s) in {} household(s) are still unsent, {} household(s) wait to be \
             restored from the server and {} photo(s) ({} bytes) are not uploaded. They are safe on this device; \
             run `pilar sync` again.",
            summary.still_unsent,
            summary.unsent_households,
            summary.repairs_pending,
            summary.photos.photos_unsent,
            summary.photos.photo_bytes_unsent
        );
    }
    if code == 0 { Ok(()) } else { Err(anyhow::Error::new(Reported { code })) }
}

fn print_done(summary: &Summary, kept: &[String]) {
    let mut said = Vec::new();
    if summary.households_from_packs > 0 || summary.villages_downloaded > 0 {
        said.push(format!(
            "downloaded {} household(s) in {} village(s)",
            thousands(summary.households_from_packs),
            summary.villages_downloaded
        ));
    }
    said.push(match summary.changes_sent {
        0 => "sent no changes".to_string(),
        n => format!("sent {} change(s)", thousands(n)),
    });
    if summary.changes_received > 0 {
        said.push(format!(
            "received {} change(s) from colleagues in {} household(s)",
            thousands(summary.changes_received),
            thousands(summary.households_changed)
        ));
    }
    if !summary.forms_received.is_empty() {
        said.push(format!("received form version(s) {}", summary.forms_received.join(", ")));
    }
    if summary.new_conflicts > 0 {
        said.push(format!("{} field(s) now hold two values (see `pilar list --conflicts`)", summary.new_conflicts));
    }
    if summary.photos.photos_uploaded > 0 {
        said.push(format!(
            "uploaded {} photo(s) ({})",
            summary.photos.photos_uploaded,
            bytes(summary.photos.photo_bytes_sent as usize)
        ));
    }
    if summary.outcome == "complete" {
        said.push("nothing left to send".to_string());
    }
    println!("{}", said.join("; "));
    println!(
        "({} round trip(s), {} up, {} down)",
        summary.round_trips,
        bytes(summary.bytes_sent),
        bytes(summary.bytes_received)
    );
    if summary.households_restored > 0 {
        println!(
            "{} household(s) whose copy on this device was damaged or incomplete were restored from the server, \
             with this device's own work kept",
            summary.households_restored
        );
    }
    for v in &summary.villages_added {
        println!("village {} added to this device", line(v));
    }
    for v in &summary.villages_removed {
        if kept.contains(v) {
            println!(
                "village {} is no longer assigned: its households stay until their unsent work is accepted",
                line(v)
            );
        } else {
            println!(
                "village {} is no longer assigned: its households were removed from this device after upload",
                line(v)
            );
        }
    }
    if summary.outcome == "complete" {
        println!("everything on this device has reached the server");
    }
}

/// `33246` as `33,246`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count for people: `912 B`, `14.7 kB`, `1.6 MB`.
fn bytes(n: usize) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// Say on stderr, in the terms of the person holding the tablet, what happened, what is safe on
/// the device and what to do.
fn explain_failure(e: &anyhow::Error, summary: &Summary) {
    eprintln!("error: {}", block(&format!("{e:#}")));
    let network = e.chain().find_map(|c| c.downcast_ref::<NetworkFailure>());
    let refused = e.chain().find_map(|c| c.downcast_ref::<ServerRefused>());
    match (network.map(|n| n.kind), refused) {
        (Some(NetworkKind::Unreachable), _) => {
            eprintln!("No connection could be made, so nothing was sent or received this time.")
        }
        (Some(NetworkKind::Broken | NetworkKind::TimedOut), _) => eprintln!(
            "The server may already have stored what this device sent. The next `pilar sync` asks for the same \
             answer again, so nothing is sent or stored twice."
        ),
        (Some(NetworkKind::ServerTrouble), _) => {
            eprintln!("The server could not handle the request; nothing it had was lost.")
        }
        (None, Some(refused)) => eprintln!("The server refused the request ({}).", line(&refused.body.error)),
        (None, None) => {}
    }
    if summary.still_unsent + summary.refused_kept == 0 {
        eprintln!("Your work is safe on this device: nothing of yours was waiting to be sent.");
    } else {
        eprintln!(
            "Your work is safe on this device: {} change(s) in {} household(s) are kept here until the server \
             confirms them{}.",
            summary.still_unsent,
            summary.unsent_households,
            if summary.refused_kept > 0 {
                format!(", and {} refused change(s) stay here too (`pilar pending`)", summary.refused_kept)
            } else {
                String::new()
            }
        );
    }
    if summary.photos.photos_unsent > 0 {
        eprintln!(
            "{} photo(s) ({} bytes) are not uploaded yet and stay on this device; the next `pilar sync` resumes \
             each from the last byte the server holds.",
            summary.photos.photos_unsent, summary.photos.photo_bytes_unsent
        );
    }
    if let Some((village, kept)) = &summary.download_interrupted {
        eprintln!(
            "The download of village {village} stopped part-way: {kept} household(s) from this attempt are kept on \
             this device, and the next `pilar sync` resumes where it stopped."
        );
    }
    let advice = match (network.map(|n| n.kind), refused.map(|r| r.body.error.as_str())) {
        (Some(NetworkKind::Unreachable), _) => {
            "run `pilar sync` again when there is signal (if it keeps failing with signal, check the server \
             address in `pilar status`)"
        }
        (Some(NetworkKind::Broken | NetworkKind::TimedOut), _) => {
            "run `pilar sync` again; on a weak signal it asks for smaller pages"
        }
        (Some(NetworkKind::ServerTrouble), _) => "try again later; if it keeps happening, tell your admin",
        (None, Some("unauthorized" | "bad_credentials")) => "log in again with `pilar login`, then sync",
        (None, Some("forbidden")) => "ask your admin to check your villages",
        (None, Some(_)) => "read the server's message above",
        (None, None) => "read the message above; `pilar repair` checks this device's store",
    };
    eprintln!("What to do: {advice}.");
}
