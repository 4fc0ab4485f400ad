//! A token refresh whose answer is lost or whose request is duplicated (a flaky link) never locks a
//! device out: the token just replaced gets the same new refresh token back until the device uses
//! it, and `pilar sync` goes on without a password.

use pilar_tests::{Campaign, TEST_ADMIN_PASSWORD, TestServer};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use sync_core::model::DeviceId;
use sync_core::store::DeviceStore;

const BILOKKA: &str = "73.14.01.1001";

fn post(server: &TestServer, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = Client::new().post(format!("{}{path}", server.url())).json(body).send().expect("request");
    let status = response.status();
    (status, response.json().expect("JSON body"))
}

fn refresh(server: &TestServer, token: &str, device: DeviceId) -> (StatusCode, Value) {
    post(server, "/v1/token/refresh", &json!({ "refresh_token": token, "device": device }))
}

fn works(server: &TestServer, session: &Value) -> bool {
    let token = session["access_token"].as_str().expect("access token");
    let response =
        Client::new().get(format!("{}/v1/admin/users", server.url())).bearer_auth(token).send().expect("request");
    response.status() == StatusCode::OK
}

#[test]
fn a_duplicated_refresh_gets_the_same_refresh_token_and_both_access_tokens_work() {
    let server = TestServer::start();
    let device = DeviceId::random();
    let login = json!({ "user": "admin", "password": TEST_ADMIN_PASSWORD, "device": device, "device_name": "tablet" });
    let (status, session) = post(&server, "/v1/login", &login);
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["refresh_token"].as_str().expect("refresh token").to_string();

    // The same request twice in a row (a proxy that replays it), then twice at once.
    let (first_status, first) = refresh(&server, &token, device);
    let (second_status, second) = refresh(&server, &token, device);
    assert_eq!((first_status, second_status), (StatusCode::OK, StatusCode::OK), "{first} {second}");
    assert_eq!(first["refresh_token"], second["refresh_token"], "the same new refresh token both times");
    assert_ne!(first["refresh_token"], json!(token));
    assert!(works(&server, &first) && works(&server, &second), "both access tokens work");

    let next = first["refresh_token"].as_str().expect("refresh token").to_string();
    let answers: Vec<(StatusCode, Value)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..2).map(|_| scope.spawn(|| refresh(&server, &next, device))).collect();
        calls.into_iter().map(|c| c.join().expect("refresh thread")).collect()
    });
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK), "{answers:?}");
    assert_eq!(answers[0].1["refresh_token"], answers[1].1["refresh_token"], "concurrent duplicates agree too");
    assert!(answers.iter().all(|(_, session)| works(&server, session)));
    assert!(server.log().contains("token refresh retried"), "the retry is logged as one");
    assert!(!server.log().contains(&token) && !server.log().contains(&next), "tokens are never logged");
}

#[test]
fn a_device_whose_refresh_answer_was_lost_syncs_without_a_password() {
    let campaign = Campaign::start();
    let device = campaign.enumerator("pkh.sinyal", &[BILOKKA]);
    device.ok(&["sync"]);
    device.ok(&["add", "--village", BILOKKA, "--head-name", "La Sintetis Sinyal"]);
    let device_id = DeviceStore::open(device.home()).expect("store").identity().device;

    // The device's refresh reaches the server, but the answer is lost on the way back.
    let held = DeviceStore::open(device.home()).expect("store").session().expect("session").expect("logged in");
    let (status, lost) = refresh(&campaign.server, &held.refresh_token, device_id);
    assert_eq!(status, StatusCode::OK, "{lost}");
    expire_access_token(&device);

    // The next sync refreshes with the token the device still holds: no password asked for.
    let out = device.run(&["sync"]);
    assert!(
        out.status.success(),
        "sync after a lost refresh answer:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let now_held = DeviceStore::open(device.home()).expect("store").session().expect("session").expect("session");
    assert_eq!(json!(now_held.refresh_token), lost["refresh_token"], "the device got the token the lost answer held");
    assert_eq!(device.json(&["status"])["unsent_changes"], json!(0), "the household reached the server");

    // The device uses its new token; from then on the old one is refused.
    expire_access_token(&device);
    device.ok(&["sync"]);
    let (status, body) = refresh(&campaign.server, &held.refresh_token, device_id);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// Make the device's kept access token look expired, so its next command refreshes.
fn expire_access_token(device: &pilar_tests::TestDevice) {
    let mut store = DeviceStore::open(device.home()).expect("store");
    let (token, _) = store.access_token().expect("read access token").expect("an access token is kept");
    store.set_access_token(&token, 0).expect("expire the access token");
}
