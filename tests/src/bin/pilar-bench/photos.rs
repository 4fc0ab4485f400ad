//! `pilar-bench photos`: photo uploads (issue 16) against a real release `pilar-server` on
//! 127.0.0.1 port 0.
//!
//! - **loopback**: `pilar sync` uploads one synthetic JPEG of each size through a passing
//!   [`FaultProxy`] (which counts the bytes); throughput is the photo's bytes over the sync's
//!   wall time (process start and the small data exchange before the photo included).
//! - **throttled**: the same through a link of 5 KB/s (`Throttle::two_g`) that drops one chunk
//!   request halfway (the server never sees it), then a second `pilar sync` resumes; the bytes
//!   wasted are what crossed the link for the photo beyond the photo itself, and beyond an uncut
//!   upload of the same size.
//! - **chunk cost**: each chunk request checks that its household references the photo (read
//!   from the household's document); chunks of one photo timed in-process for a household of 2
//!   changes and one of many.
//! - **memory**: a fresh server per photo size; N devices (logged in from this process) push a
//!   household referencing 3 photos each, then upload them all at once from N threads, 32 KiB
//!   chunks as `pilar` sends them; the server's peak resident set (VmHWM, reset before the
//!   uploads) for each size shows whether memory grows with the photo size.

use anyhow::{Context, Result, bail, ensure};
use pilar_tests::faults::{Fault, FaultPlan, FaultProxy, FaultRecord, Throttle};
use pilar_tests::load::{reset_peak, status_bytes};
use pilar_tests::{Campaign, TEST_ADMIN_PASSWORD, TestDevice, TestServer};
use reqwest::blocking::Client;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use sync_core::form::FormDefinition;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, NewPhoto};
use sync_core::photo::{CHUNK_DIGEST_HEADER, DEFAULT_CHUNK_BYTES, Mime, PhotoId, PhotoKind, UploadStatus, synthetic};
use sync_core::protocol::{LoginRequest, LoginResponse};
use sync_core::sync::{PushHousehold, SyncRequest, SyncResponse, decode, encode};
use sync_core::value::FieldValue;

/// The village every household of the bench is in (Bilokka, Panca Lautang).
const VILLAGE: &str = "73.14.01.1001";
/// Devices per enumerator account in the memory figure.
const DEVICES_PER_ACCOUNT: usize = 10;
/// How much more the server's peak may be with the large photos than with the small ones, as a
/// share of the small run's peak, before "memory grows with photo size" is called. Holding each
/// photo whole would add (large − small) × photos uploading at once; streaming adds nothing that
/// depends on the size, so the two peaks differ by noise (allocator, SQLite cache, timing).
const GROWTH_ALLOWED: f64 = 0.10;

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Photo sizes uploaded on loopback, bytes.
    pub loopback_sizes: Vec<usize>,
    /// Size of the photo sent through the throttled link, bytes.
    pub throttled_size: usize,
    /// Speed of the throttled link, bytes per second.
    pub throttle_bytes_per_second: u64,
    /// Devices uploading at once in the memory figure.
    pub devices: usize,
    /// Photos each device uploads in the memory figure.
    pub photos_per_device: usize,
    /// Photo sizes of the memory figure, bytes (one fresh server each).
    pub memory_sizes: Vec<usize>,
    /// Changes of the long household in the chunk-cost figure.
    pub history: usize,
    /// Seed of the synthetic photos and ids.
    pub seed: u64,
}

/// Run every figure and print it.
pub fn run(s: &Settings) -> Result<()> {
    println!(
        "pilar-bench photos: release pilar-server on 127.0.0.1 (port 0), backend {:?}, seed {}; photos are synthetic \
         JPEGs (a header that parses, filler scan data); sizes in bytes, KB = 1000 bytes",
        pilar_tests::backend(),
        s.seed
    );
    let started = Instant::now();
    link_figures(s)?;
    chunk_cost(s)?;
    let mut peaks = Vec::new();
    for &size in &s.memory_sizes {
        peaks.push((size, memory_figure(s, size)?));
    }
    memory_verdict(s, &peaks);
    println!("whole run {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A synthetic JPEG of about `size` bytes; `n` makes it distinct (its width and pattern).
fn photo(size: usize, n: usize) -> Vec<u8> {
    synthetic::jpeg(1600 + (n % 4000) as u16, 1200, size.saturating_sub(64), n as u8, None)
}

/// Bytes per second as `123.4 KB/s`.
fn rate(bytes: u64, wall: Duration) -> String {
    format!("{:.1} KB/s", bytes as f64 / wall.as_secs_f64().max(1e-9) / 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Request and answer bytes of the photo exchanges in `records` (heads included).
fn photo_wire(records: &[FaultRecord]) -> (u64, u64, usize) {
    let photo: Vec<&FaultRecord> = records.iter().filter(|r| r.kind() == "photo").collect();
    let up = photo.iter().map(|r| r.request_bytes as u64).sum();
    let down = photo.iter().map(|r| r.delivered as u64).sum();
    (up, down, photo.len())
}

/// `pilar sync --json` on `device`: its summary, exit code and wall time.
fn timed_sync(device: &TestDevice) -> Result<(serde_json::Value, Option<i32>, Duration)> {
    let t = Instant::now();
    let out = device.run(&["sync", "--json"]);
    let wall = t.elapsed();
    let summary = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("pilar sync printed no JSON summary: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok((summary, out.status.code(), wall))
}

/// Loopback throughput per size, then the throttled upload with one cut.
fn link_figures(s: &Settings) -> Result<()> {
    let campaign = Campaign::start();
    let proxy = FaultProxy::start(campaign.server.url(), FaultPlan::pass());
    let ani = campaign.enumerator_at("bench.photo", &[VILLAGE], &proxy.url());
    let household = ani.json(&["add", "--village", VILLAGE, "--head-name", "Foto Sintetis"])["household"]
        .as_str()
        .context("pilar add printed no household id")?
        .to_string();
    ani.json(&["sync"]);
    let dir = tempfile::tempdir()?;
    let attach = |bytes: &[u8], name: &str| -> Result<()> {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes)?;
        ani.ok(&["photo", "add", &household, path.to_str().context("utf-8 path")?, "--kind", "house_front"]);
        Ok(())
    };

    println!();
    println!(
        "loopback: `pilar sync` uploads one photo ({} KiB chunks, the default) through a passing proxy; wall time of \
         the whole `pilar sync` (process start and the data exchange included)",
        DEFAULT_CHUNK_BYTES / 1024
    );
    println!(
        "{:>10} {:>7} {:>9} {:>12} {:>11} {:>12}",
        "photo B", "chunks", "wall s", "throughput", "wire up B", "wire down B"
    );
    let mut sizes = s.loopback_sizes.clone();
    if !sizes.contains(&s.throttled_size) {
        sizes.push(s.throttled_size);
    }
    let mut uncut = Vec::new();
    for (n, &size) in sizes.iter().enumerate() {
        let bytes = photo(size, n + 1);
        attach(&bytes, &format!("loopback-{n}.jpg"))?;
        let mark = proxy.mark();
        let (summary, code, wall) = timed_sync(&ani)?;
        ensure!(code == Some(0) && summary["photos_uploaded"] == 1, "the loopback upload failed: {summary}");
        let (up, down, exchanges) = photo_wire(&proxy.log_since(mark));
        println!(
            "{:>10} {:>7} {:>9.3} {:>12} {:>11} {:>12}",
            bytes.len(),
            exchanges - 1,
            wall.as_secs_f64(),
            rate(bytes.len() as u64, wall),
            up,
            down
        );
        uncut.push((bytes.len(), up + down));
    }

    // Throttled, one chunk request dropped halfway through the photo.
    let bytes = photo(s.throttled_size, 9_999);
    attach(&bytes, "throttled.jpg")?;
    let chunks = bytes.len().div_ceil(DEFAULT_CHUNK_BYTES as usize);
    let link = Throttle { bytes_per_second: s.throttle_bytes_per_second, ..Throttle::two_g() };
    // Exchanges: the status, then chunks; the cut takes the chunk after the first half.
    let before_cut = 1 + chunks / 2;
    let plan = FaultPlan::scripted(vec![Fault::Throttle(link); before_cut]).then(Fault::DropRequest);
    proxy.set_plan(plan.only(&["photo"]));
    let mark = proxy.mark();
    let (first, code, first_wall) = timed_sync(&ani)?;
    ensure!(code == Some(3), "the cut upload should exit 3 (network), got {code:?}: {first}");
    proxy.set_plan(FaultPlan::always(Fault::Throttle(link)).only(&["photo"]));
    let (second, code, second_wall) = timed_sync(&ani)?;
    ensure!(code == Some(0) && second["photos_uploaded"] == 1, "the resumed upload failed: {second}");
    proxy.set_plan(FaultPlan::pass());
    let records = proxy.log_since(mark);
    let (up, down, exchanges) = photo_wire(&records);
    let wall = first_wall + second_wall;
    let chunk_bytes_sent =
        first["photo_bytes_sent"].as_u64().unwrap_or(0) + second["photo_bytes_sent"].as_u64().unwrap_or(0);
    let dropped: u64 = records
        .iter()
        .filter(|r| r.kind() == "photo" && r.fault == Fault::DropRequest)
        .map(|r| r.request_bytes as u64)
        .sum();
    let size = bytes.len() as u64;
    let same_size_uncut = uncut.iter().find(|(b, _)| *b as u64 == size).map(|(_, wire)| *wire);
    println!();
    println!(
        "throttled: the same through a link of {} B/s each way, {} ms one-way latency, the chunk request after the \
         first half ({} of {} chunks) dropped (the server never sees it: `pilar sync` exits 3), then `pilar sync` \
         again resumes",
        link.bytes_per_second,
        link.latency.as_millis(),
        before_cut - 1,
        chunks
    );
    println!(
        "throttled upload of {size} B with one cut: {:.1} s over both syncs ({:.1} s + {:.1} s), {} effective; \
         {exchanges} photo exchanges",
        wall.as_secs_f64(),
        first_wall.as_secs_f64(),
        second_wall.as_secs_f64(),
        rate(size, wall),
    );
    println!(
        "bytes sent for the photo (requests, heads included): {up} = photo + {} ({:.1} %); answers {down} B; chunk \
         bodies acknowledged {chunk_bytes_sent} B (each byte of the photo once)",
        up.saturating_sub(size),
        up.saturating_sub(size) as f64 * 100.0 / size as f64
    );
    match same_size_uncut {
        Some(uncut) => println!(
            "bytes wasted by the one interruption: {} B on the wire (both ways, against the uncut loopback upload of \
             the same size: {uncut} B); the dropped request was {dropped} B, at most one chunk ({} B) and its head",
            (up + down).saturating_sub(uncut),
            DEFAULT_CHUNK_BYTES
        ),
        None => println!("bytes wasted by the one interruption: the dropped request, {dropped} B"),
    }
    Ok(())
}

/// A device logged in from this process: its id, user and access token.
struct RawDevice {
    id: DeviceId,
    user: String,
    token: String,
}

fn client() -> Result<Client> {
    Client::builder().timeout(Duration::from_secs(600)).build().context("cannot build an HTTP client")
}

fn admin_json(
    http: &Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> Result<()> {
    let answer = http.request(method, format!("{base}{path}")).bearer_auth(token).json(&body).send()?;
    ensure!(answer.status().is_success(), "{path}: {} {}", answer.status(), answer.text().unwrap_or_default());
    Ok(())
}

fn login(http: &Client, base: &str, user: &str, password: &str, device: DeviceId) -> Result<String> {
    let request = LoginRequest {
        user: user.to_string(),
        password: password.to_string(),
        device,
        device_name: "bench tablet".to_string(),
    };
    let answer = http.post(format!("{base}/v1/login")).json(&request).send()?;
    ensure!(answer.status().is_success(), "login of {user}: {} {}", answer.status(), answer.text().unwrap_or_default());
    Ok(answer.json::<LoginResponse>()?.access_token)
}

/// `count` enumerator devices in [`VILLAGE`], logged in (10 per account).
fn devices(server: &TestServer, count: usize, rng: &mut u64) -> Result<Vec<RawDevice>> {
    let base = server.url();
    let http = client()?;
    let admin = login(&http, base, "admin", TEST_ADMIN_PASSWORD, next_device(rng))?;
    let accounts = count.div_ceil(DEVICES_PER_ACCOUNT);
    for a in 0..accounts {
        let name = format!("bench.foto{a:03}");
        admin_json(
            &http,
            base,
            &admin,
            reqwest::Method::POST,
            "/v1/admin/users",
            serde_json::json!({ "name": name, "role": "enumerator", "password": format!("sandi-bench-{a:03}") }),
        )?;
        admin_json(
            &http,
            base,
            &admin,
            reqwest::Method::PUT,
            &format!("/v1/admin/users/{name}/villages"),
            serde_json::json!({ "villages": [VILLAGE] }),
        )?;
    }
    let ids: Vec<DeviceId> = (0..count).map(|_| next_device(rng)).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(d, &id)| {
                scope.spawn(move || -> Result<RawDevice> {
                    let a = d / DEVICES_PER_ACCOUNT;
                    let user = format!("bench.foto{a:03}");
                    let token = login(&client()?, base, &user, &format!("sandi-bench-{a:03}"), id)?;
                    Ok(RawDevice { id, user, token })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| anyhow::anyhow!("a login thread panicked"))?).collect()
    })
}

/// A device id from the bench's seeded counter (splitmix64).
fn next_device(state: &mut u64) -> DeviceId {
    let mut word = || {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let bytes = (u128::from(word()) << 64 | u128::from(word())).to_be_bytes();
    DeviceId(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// Push one new household of `device` with `edits` extra saves and references to `photos`; its id.
fn push_household(
    http: &Client,
    base: &str,
    device: &RawDevice,
    edits: usize,
    photos: &[&[u8]],
    rng: &mut u64,
) -> Result<HouseholdId> {
    let editor = Editor { user: device.user.clone(), device: device.id, now: time::OffsetDateTime::now_utc() };
    let id = HouseholdId(next_device(rng).0);
    let first = Edits {
        answers: BTreeMap::from([
            ("head_name".to_string(), Some(FieldValue::Text("Foto Sintetis".into()))),
            ("village_code".to_string(), Some(FieldValue::Text(VILLAGE.into()))),
        ]),
        ..Edits::default()
    };
    let form = FormDefinition::default_dtsen().key();
    let (mut household, saved) = Household::create(id, &form, &editor, &first).context("creating a household")?;
    let mut changes = vec![ByteBuf::from(saved.bytes)];
    for e in 0..edits {
        let edit = Edits {
            answers: BTreeMap::from([("floor_area_m2".to_string(), Some(FieldValue::Int(20 + (e % 2) as i64)))]),
            ..Edits::default()
        };
        changes.push(ByteBuf::from(save(&mut household, &editor, &edit)?));
    }
    let add_photos = photos
        .iter()
        .map(|p| NewPhoto {
            id: PhotoId::of_bytes(p),
            kind: PhotoKind::HouseFront,
            bytes: p.len() as u64,
            mime: Mime::Jpeg,
        })
        .collect();
    changes.push(ByteBuf::from(save(&mut household, &editor, &Edits { add_photos, ..Edits::default() })?));
    let request = SyncRequest {
        batch: next_device(rng).0,
        cursors: BTreeMap::new(),
        push: vec![PushHousehold { household: id, village: Some(VILLAGE.into()), changes }],
        max_changes: 50,
    };
    let answer = pilar_tests::sync_http::sync_request(http, base, &device.token, encode(&request)).send()?;
    ensure!(answer.status().is_success(), "pushing household {id}: {}", answer.status());
    let response: SyncResponse = decode(&answer.bytes()?, 64 << 20)?;
    ensure!(response.rejected.is_empty(), "household {id} refused: {:?}", response.rejected);
    Ok(id)
}

fn save(household: &mut Household, editor: &Editor, edits: &Edits) -> Result<Vec<u8>> {
    let saved = household
        .apply(editor, "bench", edits, |_| Ok::<(), std::convert::Infallible>(()))
        .context("a save")?
        .unwrap_or_else(|never| match never {})
        .1
        .context("a save that changed nothing")?;
    Ok(saved.bytes)
}

/// Upload `bytes` as `pilar` does (32 KiB chunks from byte 0); each chunk's latency.
fn upload(http: &Client, base: &str, token: &str, household: HouseholdId, bytes: &[u8]) -> Result<Vec<Duration>> {
    let photo = PhotoId::of_bytes(bytes);
    let url = format!("{base}/v1/households/{household}/photos/{photo}");
    let mut latencies = Vec::new();
    let mut offset = 0usize;
    loop {
        let chunk = &bytes[offset..(offset + DEFAULT_CHUNK_BYTES as usize).min(bytes.len())];
        let t = Instant::now();
        let answer = http
            .put(format!("{url}?offset={offset}"))
            .bearer_auth(token)
            .header(CHUNK_DIGEST_HEADER, PhotoId::of_bytes(chunk).as_str())
            .body(chunk.to_vec())
            .send()?;
        ensure!(
            answer.status().is_success(),
            "chunk at {offset}: {} {}",
            answer.status(),
            answer.text().unwrap_or_default()
        );
        let status: UploadStatus = answer.json()?;
        latencies.push(t.elapsed());
        if status.complete {
            return Ok(latencies);
        }
        ensure!(
            status.held as usize == offset + chunk.len(),
            "the server holds {} after the chunk at {offset}",
            status.held
        );
        offset = status.held as usize;
    }
}

/// Chunk latency for a household of 2 changes against one of `history` changes.
fn chunk_cost(s: &Settings) -> Result<()> {
    let server = TestServer::start();
    let mut rng = s.seed ^ 0xc4;
    let device = devices(&server, 1, &mut rng)?.remove(0);
    let http = client()?;
    let base = server.url();
    println!();
    println!(
        "chunk cost: each chunk request checks that its household references the photo; one photo of 1 MB in {} \
         KiB chunks, sent in order from this process, for a household of 2 changes and one of {} changes",
        DEFAULT_CHUNK_BYTES / 1024,
        s.history + 2
    );
    for (edits, n) in [(0, 20_001), (s.history, 20_002)] {
        let bytes = photo(1_000_000, n);
        let household = push_household(&http, base, &device, edits, &[&bytes], &mut rng)?;
        let mut latencies = upload(&http, base, &device.token, household, &bytes)?;
        latencies.sort();
        let p50 = latencies[latencies.len() / 2];
        let total: Duration = latencies.iter().sum();
        println!(
            "household of {:>5} changes: {} chunks, p50 {:.2} ms, max {:.2} ms, {} on loopback",
            edits + 2,
            latencies.len(),
            p50.as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            rate(bytes.len() as u64, total)
        );
    }
    Ok(())
}

/// The server's peak resident set while `devices` devices upload their photos of `size` at once.
fn memory_figure(s: &Settings, size: usize) -> Result<u64> {
    let server = TestServer::start();
    let pid = server.pid();
    let base = server.url();
    let mut rng = s.seed ^ size as u64;
    let devices = devices(&server, s.devices, &mut rng)?;
    let http = client()?;
    let mut work = Vec::new();
    for (d, device) in devices.iter().enumerate() {
        let photos: Vec<Vec<u8>> =
            (0..s.photos_per_device).map(|p| photo(size, 1 + d * s.photos_per_device + p)).collect();
        let refs: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
        let household = push_household(&http, base, device, 0, &refs, &mut rng)?;
        work.push((device, household, photos));
    }
    let rss_before = status_bytes(pid, "VmRSS:").unwrap_or(0);
    if !reset_peak(pid) {
        bail!("cannot reset the server's peak memory (/proc/{pid}/clear_refs); the figure would include the set-up");
    }
    let t = Instant::now();
    let uploaded: Vec<Result<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .iter()
            .map(|(device, household, photos)| {
                scope.spawn(move || -> Result<usize> {
                    let http = client()?;
                    let mut chunks = 0;
                    for p in photos {
                        chunks += upload(&http, base, &device.token, *household, p)?.len();
                    }
                    Ok(chunks)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("an upload thread panicked"))))
            .collect()
    });
    let wall = t.elapsed();
    let chunks: usize = uploaded.into_iter().collect::<Result<Vec<_>>>()?.into_iter().sum();
    let peak = status_bytes(pid, "VmHWM:").context("the server's VmHWM is not readable")?;
    let total = (s.devices * s.photos_per_device * size) as u64;
    if size == s.memory_sizes[0] {
        println!();
        println!(
            "memory: a fresh server per photo size; {} devices (logged in from this process, {} per account) each \
             push a household referencing {} photos, then all upload at once from {} threads, {} KiB chunks in \
             order as `pilar` sends them; peak = the server's VmHWM, reset just before the uploads",
            s.devices,
            DEVICES_PER_ACCOUNT,
            s.photos_per_device,
            s.devices,
            DEFAULT_CHUNK_BYTES / 1024
        );
    }
    println!(
        "photos of {size} B: {} photos, {} chunks, {:.1} s, {} in total; server resident before {}, peak during the \
         uploads {}",
        s.devices * s.photos_per_device,
        chunks,
        wall.as_secs_f64(),
        rate(total, wall),
        mib(rss_before),
        mib(peak)
    );
    Ok(peak)
}

fn memory_verdict(s: &Settings, peaks: &[(usize, u64)]) {
    let (Some(&(small, small_peak)), Some(&(large, large_peak))) = (peaks.first(), peaks.last()) else { return };
    if peaks.len() < 2 {
        return;
    }
    // Each device sends its photos one after another: one photo per device is uploading at once.
    let at_once = s.devices;
    let whole = (large.saturating_sub(small) * at_once) as u64;
    let growth = large_peak as f64 / small_peak.max(1) as f64 - 1.0;
    println!(
        "issue 16 target: server memory does not grow with photo size: peak {} with {large} B photos against {} with \
         {small} B photos ({:+.1} %; allowed +{:.0} %, where holding each uploading photo whole would add about {}): {}",
        mib(large_peak),
        mib(small_peak),
        growth * 100.0,
        GROWTH_ALLOWED * 100.0,
        mib(whole),
        crate::sync::verdict(Some(growth <= GROWTH_ALLOWED))
    );
}
