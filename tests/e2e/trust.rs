//! The server's own defences against a real `pilar-server`: login throttling, a reused refresh
//! token ending the device's sessions, one JSON error shape for every refusal, the bounded grace
//! after an assignment ends, and refusals that name nothing outside the caller's scope.

use pilar_tests::{Campaign, TEST_ADMIN_PASSWORD, TestDevice, TestServer};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId};
use sync_core::protocol::{LoginResponse, RefreshRequest};
use sync_core::store::{DeviceStore, Session};
use sync_core::sync::{CONTENT_TYPE, PushHousehold, SyncRequest, SyncResponse};
use sync_core::value::FieldValue;

const BILOKKA: &str = "73.14.01.1001";
const WETTEE: &str = "73.14.01.1002";
/// A village of another kecamatan (Tellu Limpoe).
const AMPARITA: &str = "73.14.02.1001";

/// Send `request`; the status, `Retry-After` (if any) and the body, which must be JSON.
fn send(request: RequestBuilder) -> (StatusCode, Option<String>, Value) {
    let response = request.send().expect("request");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_string());
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("HTTP {status}: not JSON ({e}): {text:?}"));
    (status, retry_after, body)
}

fn login(server: &TestServer, user: &str, password: &str, device: DeviceId) -> (StatusCode, Option<String>, Value) {
    let body = json!({ "user": user, "password": password, "device": device, "device_name": "tablet uji" });
    send(Client::new().post(format!("{}/v1/login", server.url())).json(&body))
}

fn refresh(server: &TestServer, token: &Value, device: DeviceId) -> (StatusCode, Value) {
    let body = json!({ "refresh_token": token, "device": device });
    let (status, _, body) = send(Client::new().post(format!("{}/v1/token/refresh", server.url())).json(&body));
    (status, body)
}

fn users_list_status(server: &TestServer, session: &Value) -> StatusCode {
    let token = session["access_token"].as_str().expect("access token");
    Client::new().get(format!("{}/v1/admin/users", server.url())).bearer_auth(token).send().expect("request").status()
}

fn assert_error_body(status: StatusCode, body: &Value, expected: StatusCode, code: &str, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"], json!(code), "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: an ErrorBody has a message: {body}");
}

/// An access token for a `pilar` device, from its stored refresh token (the rotated one is
/// stored back, so the device's own commands keep working).
fn token_of(server: &TestServer, device: &TestDevice) -> String {
    let mut store = DeviceStore::open(device.home()).expect("store");
    let session = store.session().expect("session").expect("logged in");
    let request = RefreshRequest { refresh_token: session.refresh_token.clone(), device: store.identity().device };
    let login: LoginResponse = Client::new()
        .post(format!("{}/v1/token/refresh", server.url()))
        .json(&request)
        .send()
        .expect("refresh")
        .json()
        .expect("refresh response");
    store.set_session(&Session { refresh_token: login.refresh_token.clone(), ..session }).expect("save session");
    login.access_token
}

fn device_id(device: &TestDevice) -> DeviceId {
    DeviceStore::open(device.home()).expect("store").identity().device
}

fn post_sync(server: &TestServer, token: &str, push: Vec<PushHousehold>) -> SyncResponse {
    let request = SyncRequest { batch: uuid::Uuid::new_v4(), cursors: BTreeMap::new(), push, max_changes: 1000 };
    let response =
        pilar_tests::sync_http::sync_request(&Client::new(), server.url(), token, sync_core::sync::encode(&request))
            .send()
            .expect("sync request");
    assert!(response.status().is_success(), "sync: {}", response.status());
    sync_core::sync::decode(&response.bytes().expect("body"), 1 << 24).expect("sync response")
}

fn add(device: &TestDevice, village: &str, head: &str) -> String {
    device.json(&["add", "--village", village, "--head-name", head])["household"].as_str().expect("id").to_string()
}

/// Rows of the server's database (read while it runs: WAL readers do not disturb it).
fn server_count(server: &TestServer, sql: &str, household: &str) -> i64 {
    server.query(sql, &[household])[0][0].int()
}

fn stored_changes(server: &TestServer, household: &str) -> i64 {
    server_count(server, "SELECT count(*) FROM changes WHERE CAST(household_id AS TEXT) = ?1", household)
}

// --- login throttling ---

#[test]
fn the_sixth_wrong_password_within_a_minute_gets_429_and_the_log_holds_no_password() {
    let server = TestServer::start();
    let wrong: Vec<String> = (0..7).map(|i| format!("salah-sandi-nomor-{i}")).collect();
    for (i, password) in wrong.iter().take(5).enumerate() {
        let (status, _, body) = login(&server, "admin", password, DeviceId::random());
        assert_error_body(status, &body, StatusCode::UNAUTHORIZED, "bad_credentials", &format!("attempt {}", i + 1));
    }
    let (status, retry_after, body) = login(&server, "admin", &wrong[5], DeviceId::random());
    assert_error_body(status, &body, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "the sixth");
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(body["message"].as_str().expect("message").contains("seconds"), "{body}");

    // The right password waits too, from this address or any other (the user name is counted).
    let (status, retry_after, body) = login(&server, "admin", TEST_ADMIN_PASSWORD, DeviceId::random());
    assert_error_body(status, &body, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "the right password");
    assert!(retry_after.is_some());

    let log = server.log();
    assert!(log.contains("login refused: wrong password"), "failed logins are logged:\n{log}");
    assert!(log.contains("127.0.0.1"), "with the client address:\n{log}");
    assert!(log.contains("login throttled"), "{log}");
    for password in wrong.iter().chain([&TEST_ADMIN_PASSWORD.to_string()]) {
        assert!(!log.contains(password.as_str()), "the log holds a password: {password}");
    }
}

#[test]
fn a_restarted_server_keeps_a_throttled_user_waiting() {
    let mut server = TestServer::start();
    for i in 0..5 {
        let (status, _, body) = login(&server, "admin", &format!("salah-sandi-{i}"), DeviceId::random());
        assert_error_body(status, &body, StatusCode::UNAUTHORIZED, "bad_credentials", &format!("attempt {}", i + 1));
    }
    // The counts are in the database: a restart (SIGKILL, then a new process) forgets none.
    server.restart();
    let (status, retry_after, body) = login(&server, "admin", TEST_ADMIN_PASSWORD, DeviceId::random());
    assert_error_body(status, &body, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "after the restart");
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // The user name is counted as a keyed hash, never as typed.
    let subjects = server.query("SELECT subject FROM login_failures WHERE kind = 'user'", &[]);
    assert_eq!(subjects.len(), 1);
    assert!(!subjects[0][0].text().contains("admin"), "{:?}", subjects[0][0]);
}

// --- refresh-token reuse ---

#[test]
fn a_refresh_token_reused_after_its_successor_was_used_ends_the_devices_sessions() {
    let server = TestServer::start();
    let device = DeviceId::random();
    let (status, _, first) = login(&server, "admin", TEST_ADMIN_PASSWORD, device);
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = refresh(&server, &first["refresh_token"], device);
    let (status, third) = refresh(&server, &second["refresh_token"], device);
    assert_eq!(status, StatusCode::OK, "{third}");

    // A copy of the first token comes back after the chain moved on.
    let (status, body) = refresh(&server, &first["refresh_token"], device);
    assert_error_body(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", "the reused token");
    let (status, body) = refresh(&server, &third["refresh_token"], device);
    assert_error_body(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", "the newest token of the chain");
    assert_eq!(users_list_status(&server, &third), StatusCode::UNAUTHORIZED, "issued access tokens die too");
    assert!(server.log().contains("refresh chain and sessions were ended"), "{}", server.log());

    // The password starts a new chain.
    let (status, _, fresh) = login(&server, "admin", TEST_ADMIN_PASSWORD, device);
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(users_list_status(&server, &fresh), StatusCode::OK);
}

#[test]
fn a_replaced_refresh_token_presented_after_the_retry_window_ends_the_chain() {
    let mut server = TestServer::start();
    let device = DeviceId::random();
    let (_, _, first) = login(&server, "admin", TEST_ADMIN_PASSWORD, device);
    let (status, second) = refresh(&server, &first["refresh_token"], device);
    assert_eq!(status, StatusCode::OK, "{second}");
    // Within the window the replaced token is a retry: the same successor.
    let (status, again) = refresh(&server, &first["refresh_token"], device);
    assert_eq!((status, &again["refresh_token"]), (StatusCode::OK, &second["refresh_token"]));

    // Age the window: stop the server, move the stored end of the window into the past.
    server.kill();
    let moved = server.execute(
        "UPDATE devices SET previous_refresh_until = '2000-01-01T00:00:00Z' WHERE id = ?1",
        &[&device.to_string()],
    );
    assert_eq!(moved, 1, "age the retry window");
    server.restart();

    let (status, body) = refresh(&server, &first["refresh_token"], device);
    assert_error_body(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", "outside the window");
    let (status, _) = refresh(&server, &second["refresh_token"], device);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the successor was never used, and is dead now too");
    assert_eq!(users_list_status(&server, &second), StatusCode::UNAUTHORIZED);
}

// --- one error shape ---

#[test]
fn every_refusal_is_the_json_error_body() {
    let server = TestServer::start_with(&["--max-body-bytes", "4096"], Some(TEST_ADMIN_PASSWORD));
    let (_, _, session) = login(&server, "admin", TEST_ADMIN_PASSWORD, DeviceId::random());
    let token = session["access_token"].as_str().expect("access token").to_string();
    let url = |path: &str| format!("{}{path}", server.url());
    let client = Client::new();
    let cases: Vec<(&str, RequestBuilder, StatusCode, &str)> = vec![
        (
            "a sync body over the limit",
            client.post(url("/v1/sync")).bearer_auth(&token).header("content-type", CONTENT_TYPE).body(vec![0u8; 10_000]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "a JSON body over the limit",
            client.post(url("/v1/admin/users")).bearer_auth(&token).json(&json!({ "name": "x".repeat(10_000) })),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "a bad query string",
            client.get(url("/v1/packs/73.14.01.1001?limit=banyak")).bearer_auth(&token),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "an unknown query parameter",
            client.get(url("/v1/export?area=73.14.01&semua=ya")).bearer_auth(&token),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        ("an unknown route", client.get(url("/v1/rahasia")), StatusCode::NOT_FOUND, "not_found"),
        ("an unknown route outside /v1", client.get(url("/admin")), StatusCode::NOT_FOUND, "not_found"),
        ("a wrong method", client.delete(url("/v1/login")), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (
            "an unknown field on an admin endpoint",
            client.post(url("/v1/admin/users")).bearer_auth(&token).json(&json!({ "name": "pkh.x", "role": "enumerator", "is_admin": true })),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "an unknown field on a roster endpoint",
            client
                .post(url(&format!("/v1/roster/{}/commit", uuid::Uuid::new_v4())))
                .bearer_auth(&token)
                .json(&json!({ "chunks": 1, "paksa": true })),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "an unknown field in a roster household",
            client.put(url(&format!("/v1/roster/{}/chunks/0", uuid::Uuid::new_v4()))).bearer_auth(&token).json(
                &json!({ "households": [{ "row": 2, "family_id": null, "village": BILOKKA, "answers": {}, "members": [], "skor": 9 }] }),
            ),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "an unknown field at login",
            client.post(url("/v1/login")).json(&json!({ "user": "admin", "password": "x", "device": DeviceId::random(), "device_name": "t", "role": "admin" })),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "a body that is not JSON",
            client.post(url("/v1/duplicates/dismiss")).bearer_auth(&token).header("content-type", "application/json").body("{bukan json"),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "JSON without its content type",
            client.post(url("/v1/token/refresh")).body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "a sync body that is not a sync message",
            client.post(url("/v1/sync")).bearer_auth(&token).header("content-type", CONTENT_TYPE).body("halo"),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ];
    for (what, request, status, code) in cases {
        let (got, _, body) = send(request);
        assert_error_body(got, &body, status, code, what);
    }
}

// --- the bounded grace after an assignment ends ---

/// An edit of the stored household `id` (from the server's database) made on `device` now.
fn edit_of_stored(server: &TestServer, id: &str, device: DeviceId, user: &str) -> PushHousehold {
    let stored = server.query("SELECT doc FROM households WHERE CAST(id AS TEXT) = ?1", &[id])[0][0].bytes().to_vec();
    // Kept as a zstd frame; without a dictionary on a server this small (see server/src/service/kept.rs).
    let doc = zstd::decode_all(stored.as_slice()).expect("a document kept as zstd");
    let household_id: HouseholdId = id.parse().expect("household id");
    let mut household = Household::load(household_id, &doc, device).expect("load");
    let editor = Editor { user: user.into(), device, now: time::OffsetDateTime::now_utc() };
    let edits = Edits {
        answers: BTreeMap::from([("floor_area_m2".to_string(), Some(FieldValue::Int(48)))]),
        ..Edits::default()
    };
    let saved = household.apply(&editor, "edit", &edits, |_| Ok::<(), ()>(())).expect("apply").expect("valid");
    let change = saved.1.expect("a change");
    PushHousehold { household: household_id, village: None, changes: vec![serde_bytes::ByteBuf::from(change.bytes)] }
}

/// A new synthetic household in `village` made on `device` now.
fn new_household(device: DeviceId, user: &str, village: &str) -> PushHousehold {
    let editor = Editor { user: user.into(), device, now: time::OffsetDateTime::now_utc() };
    let edits = Edits {
        answers: BTreeMap::from([
            ("head_name".to_string(), Some(FieldValue::Text("La Sintetis Pindahan".into()))),
            ("village_code".to_string(), Some(FieldValue::Text(village.into()))),
        ]),
        ..Edits::default()
    };
    let id = HouseholdId::random();
    let form = sync_core::form::FormDefinition::default_dtsen();
    let (_, saved) = Household::create(id, &form.key(), &editor, &edits).expect("create");
    PushHousehold {
        household: id,
        village: Some(village.into()),
        changes: vec![serde_bytes::ByteBuf::from(saved.bytes)],
    }
}

#[test]
fn after_a_move_only_the_device_that_held_the_village_uploads_its_pending_work_within_the_grace() {
    let campaign = Campaign::start();
    let password = campaign.user("pkh.pindah", &[BILOKKA]);
    let held = TestDevice::new();
    held.login(&campaign.server, "pkh.pindah", &password);
    held.ok(&["sync"]);
    let stored = add(&held, BILOKKA, "La Sintetis Lama");
    assert_eq!(held.json(&["sync"])["still_unsent"], 0);
    // Offline work before the move: an edit and a new household.
    held.ok(&["edit", &stored, "--answer", "floor_area_m2=36"]);
    let created = add(&held, BILOKKA, "La Sintetis Baru");

    // The admin moves the enumerator to Wette'E; a new tablet logs in afterwards.
    campaign.admin.ok(&["admin", "assign", "pkh.pindah", "--village", WETTEE]);
    let newcomer = TestDevice::new();
    newcomer.login(&campaign.server, "pkh.pindah", &password);
    let (newcomer_id, token) = (device_id(&newcomer), token_of(&campaign.server, &newcomer));
    let before = stored_changes(&campaign.server, &stored);
    let crafted = new_household(newcomer_id, "pkh.pindah", BILOKKA);
    let crafted_id = crafted.household.to_string();
    let response = post_sync(
        &campaign.server,
        &token,
        vec![edit_of_stored(&campaign.server, &stored, newcomer_id, "pkh.pindah"), crafted],
    );
    let codes: Vec<&str> = response.rejected.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["out_of_scope", "out_of_scope"], "{:?}", response.rejected);
    assert!(response.rejected.iter().all(|r| r.reason.contains("never held")), "{:?}", response.rejected);
    assert_eq!(response.acknowledged, 0);
    assert_eq!(stored_changes(&campaign.server, &stored), before, "the edit was stored nowhere");
    assert_eq!(
        server_count(&campaign.server, "SELECT count(*) FROM households WHERE CAST(id AS TEXT) = ?1", &crafted_id),
        0
    );

    // The device that held Bilokka sends its pending edit and new household: accepted.
    let summary = held.json(&["sync"]);
    assert_eq!((summary["still_unsent"].clone(), summary["rejected"].clone()), (json!(0), json!(0)), "{summary}");
    assert_eq!(stored_changes(&campaign.server, &stored), before + 1);
    assert_eq!(stored_changes(&campaign.server, &created), 1);
    // A colleague in Bilokka receives both.
    let colleague = campaign.enumerator("tksk.bilokka", &[BILOKKA]);
    colleague.ok(&["sync"]);
    assert_eq!(colleague.json(&["show", &stored])["household"]["answers"]["floor_area_m2"], 36);
    colleague.json(&["show", &created]);
}

#[test]
fn after_the_grace_the_device_that_held_the_village_is_refused_and_nothing_is_stored() {
    let campaign = Campaign::start_with(&["--ended-assignment-grace-days", "0"]);
    let held = campaign.enumerator("pkh.telat", &[BILOKKA]);
    held.ok(&["sync"]);
    let stored = add(&held, BILOKKA, "La Sintetis Telat");
    assert_eq!(held.json(&["sync"])["still_unsent"], 0);
    held.ok(&["edit", &stored, "--answer", "floor_area_m2=36"]);
    campaign.admin.ok(&["admin", "assign", "pkh.telat", "--village", WETTEE]);

    let out = held.run(&["sync"]);
    assert_eq!(out.status.code(), Some(4), "a refusal: {}", String::from_utf8_lossy(&out.stderr));
    let pending = held.json(&["pending"]);
    let reasons: Vec<&str> = pending
        .as_array()
        .expect("outbox")
        .iter()
        .map(|e| e["rejected_reason"].as_str().expect("marked refused"))
        .collect();
    assert_eq!(reasons.len(), 1, "{pending}");
    assert!(reasons[0].contains("accepted until") && reasons[0].contains("supervisor"), "{pending}");
    assert_eq!(stored_changes(&campaign.server, &stored), 1, "only the creation");
}

// --- no cross-scope leaks ---

#[test]
fn a_supervisors_refusal_for_another_kecamatan_names_nothing_of_it() {
    let campaign = Campaign::start();
    let far = campaign.enumerator("pkh.amparita", &[AMPARITA]);
    far.ok(&["sync"]);
    let head = "La Sintetis Rahasia";
    let id = add(&far, AMPARITA, head);
    far.ok(&["visit", &id, "--outcome", "3"]);
    assert_eq!(far.json(&["sync"])["still_unsent"], 0);

    let supervisor = campaign.supervisor("spv.panca", &["73.14.01"]);
    let token = token_of(&campaign.server, &supervisor);
    let client = Client::new();
    let url = |path: &str| format!("{}{path}", campaign.server.url());
    let other = HouseholdId::random();
    let attempts = [
        client.post(url(&format!("/v1/households/{id}/review"))).json(&json!({ "decision": "approve" })),
        client.post(url(&format!("/v1/households/{id}/resolve"))).json(&json!({ "path": "answers.rt", "pick": 1 })),
        client.post(url("/v1/duplicates/dismiss")).json(&json!({ "a": id, "b": other })),
        client.get(url("/v1/review?area=73.14.02")),
        client.get(url(&format!("/v1/packs/{AMPARITA}"))),
    ];
    for request in attempts {
        let (status, _, body) = send(request.bearer_auth(&token));
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let message = body["message"].as_str().expect("message");
        for secret in ["Tellu Limpoe", "Amparita", head] {
            assert!(!message.contains(secret), "{message}");
        }
    }
    // The household's own village is not named either (only the id the caller sent).
    let (_, _, body) = send(
        client
            .post(url(&format!("/v1/households/{id}/review")))
            .bearer_auth(&token)
            .json(&json!({ "decision": "approve" })),
    );
    assert!(!body["message"].as_str().expect("message").contains(AMPARITA), "{body}");
}
