//! Accounts and scope end to end: a real `pilar-server` on port 0 and real `pilar` homes. First
//! start, login and refresh rotation, assignments, roles, forged tokens, revocation and wipe, and
//! bad bodies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pilar_tests::{TEST_ADMIN_PASSWORD, TestDevice, TestServer};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use sync_core::model::DeviceId;
use sync_core::store::DeviceStore;

const ENUMERATOR_PASSWORD: &str = "enumerator-password-1";

/// A raw HTTP session against the server (for what `pilar` does not expose).
struct Http<'a> {
    server: &'a TestServer,
    client: Client,
}

impl<'a> Http<'a> {
    fn new(server: &'a TestServer) -> Http<'a> {
        Http { server, client: Client::new() }
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().expect("request");
        let status = response.status();
        let text = response.text().expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, body)
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.server.url())).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request)
    }

    fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.server.url())).bearer_auth(token))
    }

    fn login(&self, user: &str, password: &str, device: DeviceId) -> Value {
        let body = json!({ "user": user, "password": password, "device": device, "device_name": "test tablet" });
        let (status, session) = self.post("/v1/login", None, &body);
        assert_eq!(status, StatusCode::OK, "login as {user}: {session}");
        session
    }
}

fn access_token(session: &Value) -> &str {
    session["access_token"].as_str().expect("access token")
}

fn assert_error(status: StatusCode, body: &Value, expected_status: StatusCode, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"], json!(code), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "an ErrorBody has a message: {body}");
}

/// An admin home logged in through `pilar login`, with an enumerator created and assigned.
fn admin_with_enumerator(server: &TestServer, enumerator: &str, villages: &[&str]) -> TestDevice {
    let admin = TestDevice::new();
    admin.login(server, "admin", TEST_ADMIN_PASSWORD);
    let out = admin.run_with_stdin(
        &["admin", "user", "add", enumerator, "--role", "enumerator", "--password-stdin"],
        &format!("{ENUMERATOR_PASSWORD}\n"),
    );
    assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
    let mut args = vec!["admin", "assign", enumerator];
    for v in villages {
        args.extend(["--village", v]);
    }
    admin.ok(&args);
    admin
}

#[cfg(unix)]
#[test]
fn first_start_creates_a_signing_key_in_the_database_and_the_admin() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    assert_eq!(server.signing_key().len(), 64, "the key is a server secret in the database");
    if server.backend() == pilar_tests::Backend::Sqlite {
        assert!(!server.data_dir().join("jwt.key").exists(), "no key file beside the database");
        let dir_mode = std::fs::metadata(server.data_dir()).expect("data dir").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700, "the database is private to the server's user");
        assert!(server.data_dir().join("server.db").exists());
    } else {
        assert!(!server.data_dir().exists(), "with PostgreSQL nothing is kept on the server's disk");
    }
    assert!(
        !server.startup_output().iter().any(|l| l.contains("password")),
        "a password from the environment is not printed: {:?}",
        server.startup_output()
    );

    let health: Value =
        Client::new().get(format!("{}/health", server.url())).send().and_then(|r| r.json()).expect("health");
    assert_eq!(health, json!({ "status": "ok" }));

    let admin = TestDevice::new();
    let out = admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
    assert!(out.contains("as admin (admin)"), "{out}");
    let store = DeviceStore::open(admin.home()).expect("pilar login created the device store");
    let session = store.session().expect("session").expect("session saved");
    assert_eq!(session.server, server.url());
    assert!(!server.log().contains(TEST_ADMIN_PASSWORD), "the log never holds a password");
}

#[test]
fn a_generated_admin_password_is_printed_once_and_works() {
    let server = TestServer::start_with(&[], None);
    let line = server
        .startup_output()
        .iter()
        .find(|l| l.starts_with("created user admin with password "))
        .unwrap_or_else(|| panic!("no password line in {:?}", server.startup_output()));
    let password = line.trim_start_matches("created user admin with password ").split(' ').next().expect("password");
    Http::new(&server).login("admin", password, DeviceId::random());
    assert!(!server.log().contains(password), "the log never holds the password");
}

#[test]
fn refresh_rotates_the_refresh_token_and_the_old_one_is_refused() {
    let server = TestServer::start();
    let http = Http::new(&server);
    let device = DeviceId::random();
    let refresh =
        |token: &Value| http.post("/v1/token/refresh", None, &json!({ "refresh_token": token, "device": device }));
    let first = http.login("admin", TEST_ADMIN_PASSWORD, device);
    let (status, second) = refresh(&first["refresh_token"]);
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"], "the refresh token is rotated");
    let (status, _) = http.get("/v1/admin/users", access_token(&second));
    assert_eq!(status, StatusCode::OK, "the new access token works");

    // Once the device has used the new token, the old one is refused.
    let (status, third) = refresh(&second["refresh_token"]);
    assert_eq!(status, StatusCode::OK, "the rotated token works: {third}");
    let (status, fourth) = refresh(&third["refresh_token"]);
    assert_eq!(status, StatusCode::OK, "the latest token works");
    let (status, body) = refresh(&first["refresh_token"]);
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    // A replaced token presented again means a copy is elsewhere: the device's chain ends.
    let (status, body) = refresh(&fourth["refresh_token"]);
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!server.log().contains(first["refresh_token"].as_str().expect("token")), "tokens are never logged");
}

#[test]
fn an_enumerator_gets_assigned_villages_at_login_and_no_admin_powers() {
    let server = TestServer::start();
    let admin = admin_with_enumerator(&server, "pkh.contoh01", &["73.14.01.1001"]);

    // Unknown codes are refused, each named, and nothing changes.
    let err =
        admin.fails(&["admin", "assign", "pkh.contoh01", "--village", "73.14.01.1002", "--village", "73.14.01.9999"]);
    assert!(err.contains("73.14.01.9999") && err.contains("nothing was changed"), "{err}");
    admin.ok(&["admin", "assign", "pkh.contoh01", "--village", "73.14.01.1002", "--village", "7314011001"]);
    let users = admin.json(&["admin", "user", "list"]);
    let listed = users.as_array().expect("list").iter().find(|u| u["name"] == "pkh.contoh01").expect("listed");
    assert_eq!(listed["villages"], json!(["73.14.01.1001", "73.14.01.1002"]));
    assert_eq!(listed["role"], json!("enumerator"));

    let tablet = TestDevice::new();
    let out = tablet.login(&server, "pkh.contoh01", ENUMERATOR_PASSWORD);
    assert!(out.contains("73.14.01.1001") && out.contains("73.14.01.1002"), "{out}");
    let store = DeviceStore::open(tablet.home()).expect("store created by login");
    assert_eq!(store.identity().user, "pkh.contoh01");
    assert_eq!(store.villages().expect("villages"), vec!["73.14.01.1001", "73.14.01.1002"]);
    drop(store);

    // Logging in again from the same home keeps the device; another user is refused there.
    tablet.login(&server, "pkh.contoh01", ENUMERATOR_PASSWORD);
    let out = tablet.run_with_stdin(&["login", "--server", server.url(), "--user", "admin"], "x\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("one device store serves one user"));

    // A wrong password is refused with the same message as an unknown user.
    let wrong = tablet.run_with_stdin(&["login", "--server", server.url(), "--user", "pkh.contoh01"], "nope\n");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("unknown user or wrong password"));

    // An enumerator is not an admin: 403 through pilar and over HTTP.
    let err = tablet.fails(&["admin", "user", "list"]);
    assert!(err.contains("only an admin"), "{err}");
    let http = Http::new(&server);
    let session = http.login("pkh.contoh01", ENUMERATOR_PASSWORD, DeviceId::random());
    let (status, body) =
        http.post("/v1/admin/users", Some(access_token(&session)), &json!({ "name": "pkh.contoh99", "role": "admin" }));
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

#[test]
fn an_admin_resets_a_password_and_changes_a_role_with_pilar() {
    let server = TestServer::start();
    let admin = admin_with_enumerator(&server, "pkh.contoh01", &["73.14.01.1001"]);
    let http = Http::new(&server);
    let login = |user: &str, password: &str| {
        let body = json!({ "user": user, "password": password, "device": DeviceId::random(), "device_name": "t" });
        http.post("/v1/login", None, &body).0
    };

    // A generated password, shown once: it signs in, the old one no longer does.
    let out = admin.ok(&["admin", "user", "password", "pkh.contoh01"]);
    let generated = out.lines().find_map(|l| l.strip_prefix("password: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(out.contains("shown only this once"), "{out}");
    assert_eq!(login("pkh.contoh01", ENUMERATOR_PASSWORD), StatusCode::UNAUTHORIZED, "the old password");
    assert_eq!(login("pkh.contoh01", generated), StatusCode::OK, "the generated password");
    // One the admin chose, from standard input: not printed.
    let chosen = "sandi-pilihan-admin-1";
    let out = admin
        .run_with_stdin(&["admin", "user", "password", "pkh.contoh01", "--password-stdin"], &format!("{chosen}\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains(chosen) && !stdout.contains("password: "), "{stdout}");
    assert_eq!(login("pkh.contoh01", chosen), StatusCode::OK, "the chosen password");

    // An unknown user: refused (exit code 4) with the name and where to look.
    let out = admin.run(&["admin", "user", "password", "pkh.tidakada"]);
    assert_eq!(out.status.code(), Some(4), "a refusal by the server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot set a new password for pkh.tidakada (there is no such user"), "{err}");
    let err = admin.fails(&["admin", "user", "role", "pkh.tidakada", "--role", "supervisor"]);
    assert!(err.contains("cannot make pkh.tidakada a supervisor (there is no such user"), "{err}");

    // A role change is refused while the enumerator holds villages, saying what to do; nothing
    // changes. With the villages taken away it is made.
    let role_of = |name: &str| {
        let users = admin.json(&["admin", "user", "list"]);
        users.as_array().expect("list").iter().find(|u| u["name"] == name).expect("listed")["role"].clone()
    };
    let err = admin.fails(&["admin", "user", "role", "pkh.contoh01", "--role", "supervisor"]);
    assert!(err.contains("cannot make pkh.contoh01 a supervisor"), "{err}");
    assert!(err.contains("still holds villages"), "the server's reason: {err}");
    assert!(err.contains("pilar admin assign pkh.contoh01 --none"), "the next step: {err}");
    assert_eq!(role_of("pkh.contoh01"), json!("enumerator"));
    admin.ok(&["admin", "assign", "pkh.contoh01", "--none"]);
    let out = admin.ok(&["admin", "user", "role", "pkh.contoh01", "--role", "supervisor"]);
    assert!(out.contains("pkh.contoh01 is now a supervisor"), "{out}");
    assert_eq!(role_of("pkh.contoh01"), json!("supervisor"));
    admin.ok(&["admin", "assign", "pkh.contoh01", "--kecamatan", "73.14.01"]);
}

#[test]
fn expired_tampered_and_wrong_algorithm_tokens_get_401() {
    let server = TestServer::start();
    let http = Http::new(&server);
    let device = DeviceId::random();
    let session = http.login("admin", TEST_ADMIN_PASSWORD, device);
    let (status, _) = http.get("/v1/admin/users", access_token(&session));
    assert_eq!(status, StatusCode::OK, "the genuine token works");

    let key = server.signing_key();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |exp: i64| json!({ "sub": "admin", "role": "admin", "dev": device, "iat": now - 7200, "exp": exp });
    let sign = |alg: Algorithm, claims: &Value| {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(&key)).expect("sign")
    };

    let expired = sign(Algorithm::HS256, &claims(now - 3600));
    let hs384 = sign(Algorithm::HS384, &claims(now + 600));
    let hs512 = sign(Algorithm::HS512, &claims(now + 600));
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(now + 600).to_string())
    );
    // Tampered: a genuine token's payload swapped for one naming another device, same signature.
    let genuine = access_token(&session);
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(
        json!({ "sub": "admin", "role": "admin", "dev": DeviceId::random(), "iat": now, "exp": now + 600 }).to_string(),
    );
    parts[1] = &forged_payload;
    let tampered = parts.join(".");
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now + 600),
        &EncodingKey::from_secret(b"some-other-key-some-other-key-some-other-key"),
    )
    .expect("sign");

    for (what, token) in [
        ("expired", expired),
        ("HS384", hs384),
        ("HS512", hs512),
        ("alg none", none),
        ("tampered", tampered),
        ("wrong key", wrong_key),
    ] {
        let (status, body) = http.get("/v1/admin/users", &token);
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{what}: {body}"
        );
    }
    // A genuinely signed token for a device that is not registered to the user is refused too.
    let unregistered = sign(
        Algorithm::HS256,
        &json!({ "sub": "admin", "role": "admin", "dev": DeviceId::random(), "iat": now, "exp": now + 600 }),
    );
    let (status, body) = http.get("/v1/admin/users", &unregistered);
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[test]
fn a_revoked_device_is_refused_with_wipe_and_pilar_deletes_its_store() {
    let server = TestServer::start();
    let admin = admin_with_enumerator(&server, "pkh.contoh02", &["73.14.01.1001"]);
    let tablet = TestDevice::new();
    tablet.login(&server, "pkh.contoh02", ENUMERATOR_PASSWORD);
    let device = DeviceStore::open(tablet.home()).expect("store").identity().device;

    // Keep an access token of the tablet to show the raw refusal too.
    let http = Http::new(&server);
    let other_device = DeviceId::random();
    let other = http.login("pkh.contoh02", ENUMERATOR_PASSWORD, other_device);

    let devices = admin.json(&["admin", "devices"]);
    let listed = devices.as_array().expect("list").iter().find(|d| d["id"] == json!(device)).expect("tablet listed");
    assert_eq!(listed["user"], json!("pkh.contoh02"));
    assert!(listed["revoked_at"].is_null());

    // A short id that is not a device's says so and what to give instead.
    let err = admin.fails(&["admin", "revoke", "zz"]);
    assert!(err.contains("not a device id") && err.contains("pilar admin devices"), "{err}");
    let err = admin.fails(&["admin", "revoke", "0000"]);
    assert!(err.contains("no device id starts with") || err.contains("devices start with"), "{err}");
    // The first characters of an id, as the table shows them, are enough.
    let short: String = device.to_string().chars().take(8).collect();
    let out = admin.ok(&["admin", "revoke", &short]);
    assert!(out.contains("revoked") && out.contains(&device.to_string()), "{out}");
    admin.ok(&["admin", "revoke", &other_device.to_string()]);
    let devices = admin.json(&["admin", "devices"]);
    let listed = devices.as_array().expect("list").iter().find(|d| d["id"] == json!(device)).expect("tablet listed");
    assert!(listed["revoked_at"].is_string(), "{listed}");

    let (status, body) = http.get("/v1/admin/devices", access_token(&other));
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "device_revoked");
    assert_eq!(body["wipe"], json!(true));

    // The tablet's next contact with the server (here an authenticated request) wipes its store.
    assert!(tablet.home().join(sync_core::store::DB_FILE).exists());
    let err = tablet.fails(&["admin", "devices"]);
    assert!(err.contains("revoked") && err.contains("deleted"), "{err}");
    assert!(!tablet.home().join(sync_core::store::DB_FILE).exists(), "the device store is gone");
    assert!(DeviceStore::open(tablet.home()).is_err());
}

#[test]
fn malformed_json_gets_400_and_an_oversized_body_gets_413() {
    let server = TestServer::start_with(&["--max-body-bytes", "4096"], Some(TEST_ADMIN_PASSWORD));
    let client = Client::new();
    let url = format!("{}/v1/login", server.url());
    let http = Http::new(&server);

    let (status, body) = http
        .send(client.post(&url).header("content-type", "application/json").body("{\"user\": \"admin\", \"password\""));
    assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_request");

    let big =
        json!({ "user": "admin", "password": "x".repeat(100_000), "device": DeviceId::random(), "device_name": "t" });
    let (status, body) = http.send(client.post(&url).json(&big));
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(body["message"].as_str().expect("message").contains("4096"), "{body}");

    // Nothing was stored: the admin has no device registered.
    let session = http.login("admin", TEST_ADMIN_PASSWORD, DeviceId::random());
    let (status, devices) = http.get("/v1/admin/devices", access_token(&session));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(devices.as_array().map(Vec::len), Some(1), "only the login just made: {devices}");
}
