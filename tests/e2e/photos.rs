//! Photos (issue 16) end to end: checked by content on the device, kept once, referenced in the
//! household; uploaded in chunks after the data, resumed after a cut, verified, served only in
//! scope, purged with the village.

use pilar_tests::{Backend, Cell, TestDevice};
use std::path::{Path, PathBuf};
use sync_core::photo::synthetic;

const BILOKKA: &str = "73.14.01.1001";

/// Write `bytes` as `name` in `dir`; return its path as text.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).expect("write photo file");
    path.to_str().expect("utf-8 path").to_string()
}

/// A household of a fresh offline device, with its id.
fn offline_household(device: &TestDevice) -> String {
    device.ok(&["init", "--user", "pkh.bilokka01", "--village", BILOKKA]);
    let added = device.json(&["add", "--village", BILOKKA, "--head-name", "Foto Sintetis", "--answer", "rt=001"]);
    added["household"].as_str().expect("id").to_string()
}

#[test]
fn a_file_named_jpg_with_other_content_is_refused_on_the_device() {
    let device = TestDevice::new();
    let household = offline_household(&device);
    let dir = tempfile::tempdir().expect("dir");
    let fake = file(dir.path(), "rumah.jpg", b"this is a text file renamed to .jpg, not a photo\n");
    let err = device.fails(&["photo", "add", &household, &fake, "--kind", "house_front"]);
    assert!(err.contains("not a JPEG or PNG image by its content (text)"), "{err}");
    assert!(err.contains("nothing was attached"), "{err}");
    assert_eq!(err.matches("by its content").count(), 1, "the cause is said once: {err}");
    let mut damaged = synthetic::jpeg(640, 480, 2_000, 1, None);
    damaged.truncate(25);
    let damaged = file(dir.path(), "cut.jpg", &damaged);
    let err = device.fails(&["photo", "add", &household, &damaged, "--kind", "house_front"]);
    assert!(err.contains("JPEG file is damaged"), "{err}");
    let big = file(dir.path(), "besar.png", &vec![0u8; 10 * 1024 * 1024 + 1]);
    let err = device.fails(&["photo", "add", &household, &big, "--kind", "other"]);
    assert!(err.contains("more than the limit of 10485760 bytes"), "{err}");
    assert_eq!(device.json(&["photo", "list"]), serde_json::json!([]), "nothing was kept");
    assert_eq!(device.json(&["status"])["unsent_photos"], 0);
}

#[test]
fn an_attached_photo_is_kept_byte_for_byte_once_and_referenced_in_the_household() {
    let device = TestDevice::new();
    let household = offline_household(&device);
    let dir = tempfile::tempdir().expect("dir");
    let kk = synthetic::jpeg(1200, 800, 30_000, 7, Some((-3.9952, 119.6501)));
    let front = synthetic::png(640, 480, 5_000, 3);
    let kk_path = file(dir.path(), "kk.jpg", &kk);
    let front_path = file(dir.path(), "depan.dat", &front);
    let out = device.ok(&["photo", "add", &household, &kk_path, "--kind", "kk_card"]);
    assert!(out.contains("EXIF says it was taken at -3.99520, 119.65010"), "{out}");
    assert!(out.contains("not stored"), "{out}");
    device.ok(&["photo", "add", &household, &front_path, "--kind", "house_front"]);
    // The same photo again: no new change, no second copy.
    let again = device.json(&["photo", "add", &household, &kk_path, "--kind", "kk_card"]);
    assert_eq!(again["change"], serde_json::Value::Null);
    assert_eq!(again["bytes_already_kept"], true);

    let listed = device.json(&["photo", "list", &household]);
    assert_eq!(listed.as_array().expect("list").len(), 2, "{listed}");
    let shown = device.json(&["show", &household]);
    let kk_id = sync_core::photo::PhotoId::of_bytes(&kk).to_string();
    let reference = &shown["household"]["photos"][&kk_id];
    assert_eq!(reference["kind"], "kk_card", "{shown}");
    assert_eq!(reference["bytes"], kk.len());
    assert_eq!(reference["mime"], "image/jpeg");
    assert_eq!(reference["by"], "pkh.bilokka01");
    assert!(shown.to_string().find("119.65").is_none(), "the EXIF position is not stored: {shown}");
    let status = device.json(&["status"]);
    assert_eq!(status["unsent_photos"], 2);
    assert_eq!(status["unsent_photo_bytes"], kk.len() + front.len());

    let out_dir = dir.path().join("export");
    device.ok(&["photo", "export", &household, out_dir.to_str().expect("path")]);
    let index = std::fs::read_to_string(out_dir.join("photos.csv")).expect("index");
    let mut lines = index.lines();
    assert_eq!(lines.next(), Some("household,kind,file,sha256,bytes"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{index}");
    for row in rows {
        let bytes = std::fs::read(out_dir.join(row[2])).expect("exported photo");
        assert_eq!(sync_core::photo::PhotoId::of_bytes(&bytes).as_str(), row[3], "kept byte for byte");
        assert_eq!(row[0], household);
    }
}

const PANCA_LAUTANG: &str = "73.14.01";
const WANIO: &str = "73.14.01.2004";

/// The bytes of each whole photo the server keeps (not uploads in progress), by SHA-256: files
/// in the data directory on SQLite, chunk rows on PostgreSQL.
fn photos_on_server(server: &pilar_tests::TestServer) -> Vec<Vec<u8>> {
    let mut out: std::collections::BTreeMap<String, Vec<u8>> = std::collections::BTreeMap::new();
    match server.backend() {
        Backend::Postgres => {
            let rows = server.query(
                "SELECT u.photo, c.bytes FROM photo_uploads u JOIN photo_chunks c ON c.photo = u.photo
                 WHERE u.whole ORDER BY u.photo, c.start",
                &[],
            );
            for row in rows {
                let (Cell::Text(photo), Cell::Bytes(bytes)) = (&row[0], &row[1]) else { panic!("photo row {row:?}") };
                out.entry(photo.clone()).or_default().extend_from_slice(bytes);
            }
        }
        Backend::Sqlite => {
            let root = server.data_dir().join("photos");
            for dir in std::fs::read_dir(&root).expect("photo dir").flatten() {
                if dir.file_name() == "partial" {
                    continue;
                }
                for f in std::fs::read_dir(dir.path()).expect("photo subdir").flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    out.insert(name, std::fs::read(f.path()).expect("stored photo"));
                }
            }
        }
    }
    out.into_values().collect()
}

/// A household added on `device` in Bilokka and synced, with its id.
fn synced_household(device: &TestDevice, head: &str) -> String {
    let added = device.json(&["add", "--village", BILOKKA, "--head-name", head, "--answer", "rt=002"]);
    let id = added["household"].as_str().expect("id").to_string();
    device.json(&["sync"]);
    id
}

#[test]
fn photos_upload_after_the_data_are_stored_once_and_are_served_only_in_scope() {
    let campaign = pilar_tests::Campaign::start();
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let cici = campaign.enumerator("pkh.cici", &[WANIO]);
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let other_supervisor = campaign.supervisor("spv.tellu", &["73.14.02"]);
    let household = synced_household(&ani, "Foto Sintetis");
    let dir = tempfile::tempdir().expect("dir");
    let kk = synthetic::jpeg(1600, 1000, 100_000, 9, None);
    let kk_path = file(dir.path(), "kk.jpg", &kk);

    ani.ok(&["photo", "add", &household, &kk_path, "--kind", "kk_card"]);
    let synced = ani.json(&["sync"]);
    assert_eq!(synced["outcome"], "complete", "{synced}");
    assert_eq!(synced["photos_uploaded"], 1);
    assert_eq!(synced["photo_bytes_sent"], kk.len());
    assert_eq!(ani.json(&["status"])["unsent_photos"], 0);
    assert_eq!(photos_on_server(&campaign.server).len(), 1);

    // The same photo attached by a second device (to the same household): stored once, not sent again.
    budi.json(&["sync"]);
    budi.ok(&["photo", "add", &household, &kk_path, "--kind", "kk_card"]);
    let synced = budi.json(&["sync"]);
    assert_eq!(synced["outcome"], "complete", "{synced}");
    assert_eq!(synced["photo_bytes_sent"], 0, "the server already holds it: {synced}");
    assert_eq!(photos_on_server(&campaign.server).len(), 1, "identical photos are stored once");

    // The kecamatan's supervisor exports it from the server, with the index.
    let out = dir.path().join("spv");
    supervisor.ok(&["photo", "export", &household, out.to_str().expect("path")]);
    let index = std::fs::read_to_string(out.join("photos.csv")).expect("index");
    let row: Vec<&str> = index.lines().nth(1).expect("a row").split(',').collect();
    assert_eq!((row[0], row[1]), (household.as_str(), "kk_card"), "{index}");
    assert_eq!(std::fs::read(out.join(row[2])).expect("photo"), kk, "byte for byte");

    // An enumerator of another village and a supervisor of another kecamatan get 403.
    let err = cici.fails(&["photo", "export", &household, dir.path().join("c").to_str().expect("path")]);
    assert!(err.contains("not in your villages"), "{err}");
    let err = other_supervisor.fails(&["photo", "export", &household, dir.path().join("t").to_str().expect("path")]);
    assert!(err.contains("outside your kecamatan"), "{err}");
}

/// The device's kept access token (tests call the API as the device does).
fn token(device: &TestDevice) -> String {
    let store = sync_core::store::DeviceStore::open(device.home()).expect("store");
    store.access_token().expect("token").expect("a token").0
}

#[test]
fn a_chunk_with_wrong_bytes_is_rejected_and_the_photo_is_never_served() {
    use pilar_tests::faults::{Fault, FaultPlan, FaultProxy};
    let campaign = pilar_tests::Campaign::start();
    // Every photo exchange is cut: the household data (with the reference) arrives, the photo not.
    let proxy = FaultProxy::start(campaign.server.url(), FaultPlan::always(Fault::DropRequest).only(&["photo"]));
    let ani = campaign.enumerator_at("pkh.ani", &[BILOKKA], &proxy.url());
    let household = synced_household(&ani, "Foto Sintetis");
    let dir = tempfile::tempdir().expect("dir");
    let photo = synthetic::png(800, 600, 20_000, 5);
    ani.ok(&["photo", "add", &household, &file(dir.path(), "p.png", &photo), "--kind", "house_front"]);
    let out = ani.run(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(3), "photos not uploaded: exit 3");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["photos_unsent"], 1, "{summary}");
    assert_ne!(summary["outcome"], "complete", "sync never says all is sent while a photo is not");

    let id = sync_core::photo::PhotoId::of_bytes(&photo);
    let base = format!("{}/v1/households/{household}/photos/{id}", campaign.server.url());
    let http = reqwest::blocking::Client::new();
    let put = |offset: usize, bytes: &[u8], digest: &str| {
        let r = http
            .put(format!("{base}?offset={offset}"))
            .bearer_auth(token(&ani))
            .header(sync_core::photo::CHUNK_DIGEST_HEADER, digest)
            .body(bytes.to_vec())
            .send()
            .expect("put");
        (r.status().as_u16(), r.json::<serde_json::Value>().expect("json"))
    };
    let sha = |b: &[u8]| sync_core::photo::PhotoId::of_bytes(b).to_string();
    // A chunk damaged on the way (its digest does not match) is not kept.
    let (status, body) = put(0, &photo[..1000], &sha(&photo[1..1001]));
    assert_eq!((status, body["error"].as_str()), (409, Some("chunk_damaged")), "{body}");
    // Bytes that are not the photo, sent whole with their own digest: the whole-file SHA-256
    // fails, the upload is discarded.
    let wrong = vec![0x55u8; photo.len()];
    let (status, body) = put(0, &wrong, &sha(&wrong));
    assert_eq!((status, body["error"].as_str()), (409, Some("photo_mismatch")), "{body}");
    let served = http.get(&base).bearer_auth(token(&ani)).send().expect("get");
    assert_eq!(served.status().as_u16(), 404, "a photo that did not verify is never served");
    let status: serde_json::Value =
        http.get(format!("{base}/status")).bearer_auth(token(&ani)).send().expect("status").json().expect("json");
    assert_eq!((status["held"].as_u64(), status["complete"].as_bool()), (Some(0), Some(false)), "{status}");
    assert!(photos_on_server(&campaign.server).is_empty());

    // The device's own upload, once the link lets it, completes and is served byte for byte.
    proxy.set_plan(FaultPlan::pass());
    let synced = ani.json(&["sync"]);
    assert_eq!(synced["outcome"], "complete", "{synced}");
    let served = http.get(&base).bearer_auth(token(&ani)).send().expect("get");
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.bytes().expect("bytes").to_vec(), photo);
}

#[test]
fn an_upload_cut_off_halfway_resumes_without_resending_the_first_half_and_the_data_goes_first() {
    use pilar_tests::faults::{Cut, Fault, FaultPlan, FaultProxy};
    let campaign = pilar_tests::Campaign::start();
    let proxy = FaultProxy::start(campaign.server.url(), FaultPlan::pass());
    let ani = campaign.enumerator_at("pkh.ani", &[BILOKKA], &proxy.url());
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let household = synced_household(&ani, "Foto Sintetis");
    let dir = tempfile::tempdir().expect("dir");
    let photo = synthetic::jpeg(2000, 1500, 8 * 32 * 1024 - 300, 4, None);
    let size = photo.len();
    ani.ok(&["photo", "add", &household, &file(dir.path(), "depan.jpg", &photo), "--kind", "house_front"]);
    // A change made after the photo was attached.
    ani.ok(&["edit", &household, "--answer", "rt=009"]);

    // Photo exchanges: the status, four 32 KiB chunks, then the connection drops mid-upload.
    let mut script = vec![Fault::Pass; 5];
    script.push(Fault::DropAnswer(Cut::Reset));
    proxy.set_plan(FaultPlan::scripted(script).then(Fault::DropRequest).only(&["photo"]));
    let out = ani.run(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(first["photo_bytes_sent"], 4 * 32 * 1024, "{first}");
    assert_eq!(first["still_unsent"], 0, "the household change went before the photo: {first}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 photo(s)") && stderr.contains("resumes"), "{stderr}");

    // The change reached the server before the photo finished: a colleague has it.
    budi.json(&["sync"]);
    let shown = budi.json(&["show", &household]);
    assert_eq!(shown["household"]["answers"]["rt"], "009", "{shown}");
    assert!(photos_on_server(&campaign.server).is_empty(), "the photo is not whole yet");

    // The next sync resumes from what the server holds (five chunks: the fifth's answer was
    // lost, its bytes were kept) and sends only the rest.
    proxy.set_plan(FaultPlan::pass());
    let second = ani.json(&["sync"]);
    assert_eq!(second["outcome"], "complete", "{second}");
    assert_eq!(second["photo_bytes_sent"], size - 5 * 32 * 1024, "{second}");
    assert_eq!(ani.json(&["status"])["unsent_photos"], 0);
    let on_server = photos_on_server(&campaign.server);
    assert_eq!(on_server.len(), 1);
    assert_eq!(on_server[0], photo, "verified byte for byte");
}

#[test]
fn a_revoked_devices_photos_are_wiped() {
    let campaign = pilar_tests::Campaign::start();
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let household = synced_household(&ani, "Foto Sintetis");
    let dir = tempfile::tempdir().expect("dir");
    let kk = synthetic::jpeg(1200, 800, 20_000, 3, None);
    ani.ok(&["photo", "add", &household, &file(dir.path(), "kk.jpg", &kk), "--kind", "kk_card"]);
    let device = sync_core::store::DeviceStore::open(ani.home()).expect("store").identity().device;
    campaign.admin.ok(&["admin", "revoke", &device.to_string()]);
    let err = ani.fails(&["sync"]);
    assert!(err.contains("revoked"), "{err}");
    // Nothing of the photo is left anywhere in the device's home.
    let needle = &kk[kk.len() / 2..kk.len() / 2 + 64];
    let mut stack = vec![ani.home().to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).expect("dir").flatten().map(|e| e.path()));
        } else {
            let bytes = std::fs::read(&path).expect("file");
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "photo bytes left in {}", path.display());
        }
    }
}

#[test]
fn a_large_photo_downloads_byte_for_byte_streamed_from_storage() {
    let campaign = pilar_tests::Campaign::start();
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let household = synced_household(&ani, "Foto Besar Sintetis");
    let dir = tempfile::tempdir().expect("dir");
    // Near the 10 MiB limit, in many of the server's download blocks, not a multiple of any.
    let photo = synthetic::png(4000, 3000, 10 * 1024 * 1024 - 4099, 29);
    ani.ok(&["photo", "add", &household, &file(dir.path(), "besar.png", &photo), "--kind", "house_inside"]);
    let synced = ani.json(&["sync", "--chunk-kib", "1024"]);
    assert_eq!(synced["outcome"], "complete", "{synced}");

    let id = sync_core::photo::PhotoId::of_bytes(&photo);
    let served = reqwest::blocking::Client::new()
        .get(format!("{}/v1/households/{household}/photos/{id}", campaign.server.url()))
        .bearer_auth(token(&ani))
        .send()
        .expect("get");
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.content_length(), Some(photo.len() as u64), "the length is announced before the bytes");
    assert_eq!(served.headers()["content-type"], "image/png");
    let body = served.bytes().expect("bytes");
    assert!(body[..] == photo[..], "byte for byte ({} bytes served of {})", body.len(), photo.len());

    let out = dir.path().join("spv");
    supervisor.ok(&["photo", "export", &household, out.to_str().expect("path")]);
    let index = std::fs::read_to_string(out.join("photos.csv")).expect("index");
    let row: Vec<&str> = index.lines().nth(1).expect("a row").split(',').collect();
    assert!(std::fs::read(out.join(row[2])).expect("photo") == photo, "the supervisor's export is byte for byte");
}

/// The ids of the households on `device`, sorted.
fn household_ids(device: &TestDevice) -> Vec<String> {
    let listed = device.json(&["list"]);
    let mut ids: Vec<String> =
        listed.as_array().expect("list").iter().map(|h| h["id"].as_str().expect("id").to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn a_merged_households_photo_follows_the_surviving_household() {
    let campaign = pilar_tests::Campaign::start();
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    // One family registered twice; only Budi's copy has the KK photo.
    let family = ["--village", BILOKKA, "--head-name", "Rahmat Sintetis", "--answer", "rt=004"];
    let kk_number = ["--answer", "kk_number=7314011010109020"];
    let add = |device: &TestDevice| {
        let mut args = vec!["add"];
        args.extend(family);
        args.extend(kk_number);
        device.json(&args)["household"].as_str().expect("id").to_string()
    };
    let survivor = add(&ani);
    let retired = add(&budi);
    let dir = tempfile::tempdir().expect("dir");
    let kk = synthetic::jpeg(1600, 1000, 60_000, 21, None);
    budi.ok(&["photo", "add", &retired, &file(dir.path(), "kk.jpg", &kk), "--kind", "kk_card"]);
    assert_eq!(ani.json(&["sync"])["outcome"], "complete");
    let synced = budi.json(&["sync"]);
    assert_eq!((synced["outcome"].as_str(), synced["photos_uploaded"].as_u64()), (Some("complete"), Some(1)));

    let merged = supervisor.json(&["duplicates", "merge", "--keep", &survivor, "--retire", &retired]);
    assert_eq!(merged["survivor"], survivor.as_str(), "{merged}");

    // The survivor references the photo, and the server serves it through the survivor.
    let photo = sync_core::photo::PhotoId::of_bytes(&kk).to_string();
    ani.json(&["sync"]);
    let shown = ani.json(&["show", &survivor]);
    assert_eq!(shown["household"]["photos"][&photo]["kind"], "kk_card", "{shown}");
    assert_eq!(shown["household"]["photos"][&photo]["by"], "pkh.budi", "the reference keeps its writer");
    let out = dir.path().join("spv");
    supervisor.ok(&["photo", "export", &survivor, out.to_str().expect("path")]);
    let index = std::fs::read_to_string(out.join("photos.csv")).expect("index");
    let row: Vec<&str> = index.lines().nth(1).expect("a row").split(',').collect();
    assert_eq!((row[0], row[1], row[3]), (survivor.as_str(), "kk_card", photo.as_str()), "{index}");
    assert_eq!(std::fs::read(out.join(row[2])).expect("photo"), kk, "downloaded byte for byte through the survivor");
    let served = reqwest::blocking::Client::new()
        .get(format!("{}/v1/households/{survivor}/photos/{photo}", campaign.server.url()))
        .bearer_auth(token(&ani))
        .send()
        .expect("get");
    assert_eq!(served.status().as_u16(), 200, "an enumerator of the village reads it through the survivor");
    assert_eq!(served.bytes().expect("bytes").to_vec(), kk);

    // `pilar photo list` of the survivor shows it, on the device that took it and on another.
    budi.json(&["sync"]);
    for (device, on_device) in [(&budi, true), (&ani, false)] {
        let listed = device.json(&["photo", "list", &survivor]);
        let listed = listed.as_array().expect("list");
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (listed[0]["id"].as_str(), listed[0]["household"].as_str()),
            (Some(photo.as_str()), Some(survivor.as_str()))
        );
        assert_eq!(listed[0]["kind"], "kk_card");
        assert_eq!(listed[0]["on_this_device"], on_device, "{listed:?}");
    }
    let text = ani.ok(&["photo", "list", &survivor]);
    assert!(text.contains("taken on another device"), "{text}");
}

#[test]
fn a_village_whose_assignment_ended_stays_on_the_device_until_its_photo_is_uploaded() {
    use pilar_tests::faults::{Fault, FaultPlan, FaultProxy};
    const WETTEE: &str = "73.14.01.1002";
    let campaign = pilar_tests::Campaign::start();
    // Photo exchanges fail until the link lets them; the household data goes through.
    let proxy = FaultProxy::start(campaign.server.url(), FaultPlan::always(Fault::DropRequest).only(&["photo"]));
    let ani = campaign.enumerator_at("pkh.ani", &[BILOKKA, WETTEE], &proxy.url());
    assert_eq!(ani.json(&["sync"])["outcome"], "complete");
    let kept = ani.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis"])["household"]
        .as_str()
        .expect("id")
        .to_string();
    let leaving = ani.json(&["add", "--village", WETTEE, "--head-name", "Wa Ode Sintetis"])["household"]
        .as_str()
        .expect("id")
        .to_string();
    let dir = tempfile::tempdir().expect("dir");
    let front = synthetic::jpeg(1200, 900, 40_000, 17, None);
    ani.ok(&["photo", "add", &leaving, &file(dir.path(), "depan.jpg", &front), "--kind", "house_front"]);
    // The admin takes Wette'E away before the device syncs.
    campaign.admin.ok(&["admin", "assign", "pkh.ani", "--village", BILOKKA]);

    let out = ani.run(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(3), "the photo could not go: {}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["still_unsent"], 0, "the household data went first: {summary}");
    assert_eq!(summary["photos_unsent"], 1, "{summary}");
    let mut both = vec![kept.clone(), leaving.clone()];
    both.sort();
    assert_eq!(household_ids(&ani), both, "Wette'E stays while its photo is not uploaded");
    let listed = ani.json(&["photo", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["household"], leaving.as_str());
    let status = ani.json(&["status"]);
    assert_eq!(
        (status["unsent_photos"].as_u64(), status["unsent_photo_bytes"].as_u64()),
        (Some(1), Some(front.len() as u64))
    );

    // Once the link lets the photo through, it is uploaded and then the village is purged.
    proxy.set_plan(FaultPlan::pass());
    let synced = ani.json(&["sync"]);
    assert_eq!(synced["outcome"], "complete", "{synced}");
    assert_eq!(synced["photos_uploaded"], 1, "{synced}");
    assert_eq!(synced["villages_removed"], serde_json::json!([WETTEE]), "{synced}");
    assert_eq!(household_ids(&ani), vec![kept], "Wette'E's households are gone from the device");
    assert_eq!(ani.json(&["photo", "list"]), serde_json::json!([]), "and its photo with them");
    assert_eq!(ani.json(&["status"])["unsent_photos"], 0);
    let on_server = photos_on_server(&campaign.server);
    assert_eq!(on_server, vec![front], "the photo reached the server whole before the purge");
}
