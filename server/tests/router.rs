//! The HTTP API through the router in-process (`tower::ServiceExt::oneshot`, no sockets): status
//! codes, error bodies, accounts, assignments, tokens and revocation. This integration test also
//! makes `cargo test` build the `pilar-server` binary that the end-to-end scenarios start.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use pilar_server::{AppState, Config, router};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

const ADMIN_PASSWORD: &str = "admin-password-for-tests";

struct Api {
    state: AppState,
    _dir: TempDir,
}

impl Api {
    fn new() -> Api {
        Api::with_limit(16 * 1024 * 1024)
    }

    fn with_limit(max_body_bytes: usize) -> Api {
        Api::with_config(|config| config.max_body_bytes = max_body_bytes)
    }

    fn with_config(change: impl FnOnce(&mut Config)) -> Api {
        let dir = TempDir::new().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path().join("data"));
        change(&mut config);
        let opened = AppState::open(&config, Some(ADMIN_PASSWORD.to_string())).expect("open data dir");
        assert!(opened.generated_admin_password.is_none());
        Api { state: opened.state, _dir: dir }
    }

    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = router(self.state.clone()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
            None => request.body(Body::empty()).expect("request"),
        };
        self.raw(request).await
    }

    async fn login(&self, user: &str, password: &str, device: &str) -> (StatusCode, Value) {
        let body = json!({ "user": user, "password": password, "device": device, "device_name": "test tablet" });
        self.call(Method::POST, "/v1/login", None, Some(body)).await
    }

    /// Log in and return the access token, requiring success.
    async fn token(&self, user: &str, password: &str, device: &str) -> String {
        let (status, body) = self.login(user, password, device).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("access token").to_string()
    }

    async fn admin(&self) -> String {
        self.token("admin", ADMIN_PASSWORD, &uuid()).await
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn access_token(session: &Value) -> &str {
    session["access_token"].as_str().expect("access token")
}

fn error_code(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("not an ErrorBody: {body}"))
}

#[tokio::test]
async fn health_answers_ok() {
    let api = Api::new();
    let (status, body) = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let api = Api::new();
    let (status, body) = api.call(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = api.call(Method::GET, "/v1/login", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

#[tokio::test]
async fn an_unknown_page_outside_the_api_is_an_html_page_in_the_readers_language() {
    let api = Api::new();
    for (cookie, words) in [(None, "Halaman ini tidak ada"), (Some("pilar_lang=en"), "There is no such page")] {
        // What a browser sends; an API client asking for the same path gets the JSON error.
        let mut request = Request::get("/householdz").header(header::ACCEPT, "text/html,application/xhtml+xml");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response =
            router(api.state.clone()).oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let kind = response.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_string();
        assert!(kind.starts_with("text/html"), "{kind}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let page = String::from_utf8_lossy(&bytes);
        assert!(page.contains(words) && page.contains("href=\"/households\""), "{page}");
    }
    let (status, body) = api.call(Method::GET, "/householdz", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn malformed_json_gets_400_with_an_error_body() {
    let api = Api::new();
    let request = Request::post("/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"user\": \"admin\", "))
        .expect("request");
    let (status, body) = api.raw(request).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_request"));
    assert!(body["message"].as_str().expect("message").contains("not valid JSON"), "{body}");

    let (status, body) = api.call(Method::POST, "/v1/login", None, Some(json!({ "user": "admin" }))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_request"));
    assert!(body["message"].as_str().expect("message").contains("password"), "names the missing field: {body}");

    let request = Request::post("/v1/login").body(Body::from("{}")).expect("request");
    let (status, body) = api.raw(request).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_with_an_error_body() {
    let api = Api::with_limit(1024);
    let big = json!({ "user": "admin", "password": "x".repeat(4096), "device": uuid(), "device_name": "t" });
    let (status, body) = api.call(Method::POST, "/v1/login", None, Some(big)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    assert!(body["message"].as_str().expect("message").contains("1024 bytes"), "{body}");
}

#[tokio::test]
async fn every_refusal_is_the_json_error_body() {
    let api = Api::with_limit(1024);
    let admin = api.admin().await;
    let bytes = |method: Method, path: &str, body: Vec<u8>| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "application/vnd.pilar.sync+cbor")
            .body(Body::from(body))
            .expect("request")
    };
    // The body limit on the raw (compressed) sync bodies.
    for path in ["/v1/sync", "/v1/documents"] {
        let (status, body) = api.raw(bytes(Method::POST, path, vec![7u8; 4096])).await;
        assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"), "{path}");
        assert!(body["message"].as_str().expect("message").contains("1024 bytes"), "{body}");
    }
    // Query strings: a value of the wrong type, an unknown parameter.
    for path in [
        "/v1/packs/73.14.01.1001?limit=many",
        "/v1/packs/73.14.01.1001?after=not-a-uuid",
        "/v1/packs/73.14.01.1001?limt=10",
        "/v1/review?area=73.14.01&statu=approved",
        "/v1/export?area=73.14.01&aproved=true",
        "/v1/export?area=73.14.01&approved=perhaps",
    ] {
        let (status, body) = api.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_request"), "{path}: {body}");
    }
    // Unknown JSON fields, on every kind of JSON endpoint.
    let calls = [
        (
            Method::POST,
            "/v1/login",
            json!({ "user": "admin", "password": "x", "device": uuid(), "device_name": "t", "role": "admin" }),
        ),
        (Method::POST, "/v1/token/refresh", json!({ "refresh_token": "x", "device": uuid(), "user": "admin" })),
        (Method::POST, "/v1/admin/users", json!({ "name": "pkh.baru", "role": "enumerator", "admin": true })),
        (Method::PUT, "/v1/admin/users/admin/villages", json!({ "villages": [], "kecamatan": [] })),
        (Method::POST, &format!("/v1/roster/{}/commit", uuid()), json!({ "chunks": 1, "force": true })),
        (Method::PUT, &format!("/v1/roster/{}/chunks/0", uuid()), json!({ "households": [], "village": "x" })),
        (
            Method::PUT,
            &format!("/v1/roster/{}/chunks/0", uuid()),
            json!({ "households": [{ "row": 2, "family_id": null, "village": "", "answers": {}, "members": [], "extra": 1 }] }),
        ),
        (Method::POST, &format!("/v1/households/{}/review", uuid()), json!({ "decision": "approve", "by": "admin" })),
        (
            Method::POST,
            &format!("/v1/households/{}/resolve", uuid()),
            json!({ "path": "answers.rt", "pick": 1, "x": 1 }),
        ),
        (Method::POST, "/v1/duplicates/merge", json!({ "survivor": uuid(), "retired": uuid(), "note": "" })),
        (Method::POST, "/v1/duplicates/dismiss", json!({ "a": uuid(), "b": uuid(), "c": uuid() })),
    ];
    for (method, path, body) in calls {
        let (status, answer) = api.call(method, path, Some(&admin), Some(body)).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "malformed_request"), "{path}: {answer}");
        assert!(answer["message"].as_str().expect("message").contains("unknown field"), "{path}: {answer}");
    }
    // Bad path parameters and a body that is no JSON at all.
    let (status, body) =
        api.call(Method::POST, "/v1/households/not-a-uuid/review", Some(&admin), Some(json!({}))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_request"), "{body}");
    let request = Request::post("/v1/duplicates/dismiss")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("not json"))
        .expect("request");
    let (status, body) = api.raw(request).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_request"), "{body}");
    // A wrong method on a known path, and paths nobody serves, inside and outside /v1.
    for (method, path) in [(Method::DELETE, "/v1/sync"), (Method::PUT, "/health")] {
        let (status, body) = api.call(method, path, Some(&admin), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"), "{path}");
    }
    for path in ["/v2/sync", "/v1/nothing-here", "/v1/packs/"] {
        let (status, body) = api.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    // `/` is the office web page (issue 18): without a browser session it leads to the sign-in.
    let request = Request::get("/").body(Body::empty()).expect("request");
    let response = router(api.state.clone()).oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/login?next=/");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let api = Api::new();
    let (status, unknown) = api.login("nobody", ADMIN_PASSWORD, &uuid()).await;
    assert_eq!((status, error_code(&unknown)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    let (status, wrong) = api.login("admin", "not-the-password", &uuid()).await;
    assert_eq!((status, error_code(&wrong)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn the_sixth_wrong_password_gets_429_with_retry_after_and_so_does_the_right_one() {
    let api = Api::new();
    for _ in 0..5 {
        let (status, body) = api.login("admin", "not-the-password", &uuid()).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    }
    for password in ["not-the-password", ADMIN_PASSWORD] {
        let body = json!({ "user": "admin", "password": password, "device": uuid(), "device_name": "t" });
        let request = Request::post("/v1/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = router(api.state.clone()).oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("a Retry-After in seconds");
        assert!((1..=60).contains(&wait), "{wait}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(error_code(&body), "too_many_attempts");
        assert!(body["message"].as_str().expect("message").contains(&format!("{wait} seconds")), "{body}");
    }
    // Another user is not affected.
    let (status, _) = api.login("nobody", "whatever-password", &uuid()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_endpoints_need_a_token_and_the_admin_role() {
    let api = Api::new();
    let (status, body) = api.call(Method::GET, "/v1/admin/users", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (status, body) = api.call(Method::GET, "/v1/admin/users", Some("not.a.token"), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));

    let admin = api.admin().await;
    let new_user = json!({ "name": "pkh.contoh01", "role": "enumerator", "password": "enumerator-password" });
    let (status, _) = api.call(Method::POST, "/v1/admin/users", Some(&admin), Some(new_user)).await;
    assert_eq!(status, StatusCode::CREATED);
    let enumerator = api.token("pkh.contoh01", "enumerator-password", &uuid()).await;
    for (method, path) in [(Method::GET, "/v1/admin/users"), (Method::GET, "/v1/admin/devices")] {
        let (status, body) = api.call(method, path, Some(&enumerator), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "{path}");
    }
}

#[tokio::test]
async fn a_server_started_at_another_date_dates_its_records_by_its_clock_and_accepts_its_tokens() {
    // Years before the real date: an access token checked against the system clock would have
    // expired long ago.
    let api = Api::with_config(|config| config.now = Some("2020-01-15T08:00:00+08:00".into()));
    let admin = api.admin().await;
    let (status, users) = api.call(Method::GET, "/v1/admin/users", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let created = users[0]["created_at"].as_str().expect("created_at");
    assert!(created.starts_with("2020-01-15T00:0"), "the first admin is dated by the server's clock: {created}");
    let (_, devices) = api.call(Method::GET, "/v1/admin/devices", Some(&admin), None).await;
    assert!(devices[0]["registered_at"].as_str().is_some_and(|t| t.starts_with("2020-01-15")), "{devices}");
}

#[tokio::test]
async fn creating_users_validates_names_and_generates_missing_passwords() {
    let api = Api::new();
    let admin = api.admin().await;
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/admin/users",
            Some(&admin),
            Some(json!({ "name": "spv.contoh", "role": "supervisor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let password = created["password"].as_str().expect("generated password").to_string();
    api.token("spv.contoh", &password, &uuid()).await;

    let (status, body) = api
        .call(Method::POST, "/v1/admin/users", Some(&admin), Some(json!({ "name": "spv.contoh", "role": "admin" })))
        .await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "user_exists"));
    let (status, body) = api
        .call(Method::POST, "/v1/admin/users", Some(&admin), Some(json!({ "name": "Bad Name", "role": "admin" })))
        .await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let short = json!({ "name": "short.pw", "role": "enumerator", "password": "abc" });
    let (status, body) = api.call(Method::POST, "/v1/admin/users", Some(&admin), Some(short)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let bad_role = json!({ "name": "x.y", "role": "boss" });
    let (status, body) = api.call(Method::POST, "/v1/admin/users", Some(&admin), Some(bad_role)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_request"));
}

#[tokio::test]
async fn assignments_accept_known_codes_and_name_every_bad_one() {
    let api = Api::new();
    let admin = api.admin().await;
    for (name, role) in [("pkh.contoh01", "enumerator"), ("spv.contoh", "supervisor")] {
        let body = json!({ "name": name, "role": role, "password": "long-enough-password" });
        let (status, _) = api.call(Method::POST, "/v1/admin/users", Some(&admin), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let villages = json!({ "villages": ["7314011001", "73.14.01.1002", "73.14.01.1001"] });
    let (status, user) =
        api.call(Method::PUT, "/v1/admin/users/pkh.contoh01/villages", Some(&admin), Some(villages)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["villages"], json!(["73.14.01.1001", "73.14.01.1002"]), "canonical, sorted, deduplicated");

    let bad = json!({ "villages": ["73.14.01.1001", "73.14.01.9999", "banana"] });
    let (status, body) = api.call(Method::PUT, "/v1/admin/users/pkh.contoh01/villages", Some(&admin), Some(bad)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("73.14.01.9999") && message.contains("banana"), "{message}");

    let (status, body) = api
        .call(Method::PUT, "/v1/admin/users/spv.contoh/villages", Some(&admin), Some(json!({ "villages": [] })))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        "supervisors get kecamatan"
    );
    let (status, user) = api
        .call(
            Method::PUT,
            "/v1/admin/users/spv.contoh/kecamatan",
            Some(&admin),
            Some(json!({ "kecamatan": ["731401"] })),
        )
        .await;
    assert_eq!((status, &user["kecamatan"]), (StatusCode::OK, &json!(["73.14.01"])));
    let (status, body) =
        api.call(Method::PUT, "/v1/admin/users/nobody/villages", Some(&admin), Some(json!({ "villages": [] }))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    // The unchanged set is still in place, and the login returns it.
    let (status, login) = api.login("pkh.contoh01", "long-enough-password", &uuid()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["villages"], json!(["73.14.01.1001", "73.14.01.1002"]));
    let (_, users) = api.call(Method::GET, "/v1/admin/users", Some(&admin), None).await;
    let spv = users.as_array().expect("list").iter().find(|u| u["name"] == "spv.contoh").expect("supervisor listed");
    assert_eq!(spv["kecamatan"], json!(["73.14.01"]));
}

#[tokio::test]
async fn a_device_belongs_to_one_user() {
    let api = Api::new();
    let admin = api.admin().await;
    let body = json!({ "name": "pkh.contoh01", "role": "enumerator", "password": "long-enough-password" });
    api.call(Method::POST, "/v1/admin/users", Some(&admin), Some(body)).await;
    let device = uuid();
    api.token("pkh.contoh01", "long-enough-password", &device).await;
    let (status, body) = api.login("admin", ADMIN_PASSWORD, &device).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "device_in_use"));
}

#[tokio::test]
async fn refresh_rotates_the_token_and_the_old_one_stops_working() {
    let api = Api::new();
    let device = uuid();
    let (_, first) = api.login("admin", ADMIN_PASSWORD, &device).await;
    let refresh = |token: &Value| json!({ "refresh_token": token, "device": device });
    let (status, second) =
        api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&first["refresh_token"]))).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // Until the new token is used, the old one gets the same new one back (a lost answer).
    let (status, again) =
        api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&first["refresh_token"]))).await;
    assert_eq!((status, &again["refresh_token"]), (StatusCode::OK, &second["refresh_token"]), "{again}");
    let (status, third) =
        api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&second["refresh_token"]))).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let token = second["access_token"].as_str().expect("access token");
    let (status, _) = api.call(Method::GET, "/v1/admin/users", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    // A refresh token is bound to its device.
    let elsewhere = json!({ "refresh_token": third["refresh_token"], "device": uuid() });
    let (status, _) = api.call(Method::POST, "/v1/token/refresh", None, Some(elsewhere)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_device_chain_and_its_sessions() {
    let api = Api::new();
    let device = uuid();
    let (_, first) = api.login("admin", ADMIN_PASSWORD, &device).await;
    let refresh = |token: &Value| json!({ "refresh_token": token, "device": device });
    let (_, second) = api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&first["refresh_token"]))).await;
    let (status, third) =
        api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&second["refresh_token"]))).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    // The first token again, after its successor was used: someone else holds a copy.
    let (status, body) =
        api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&first["refresh_token"]))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert!(body["message"].as_str().expect("message").contains("log in again"), "{body}");
    assert_eq!(body.get("wipe"), None, "the device keeps its data; it logs in again");
    // Every refresh token and every access token of the chain stopped working.
    let (status, _) = api.call(Method::POST, "/v1/token/refresh", None, Some(refresh(&third["refresh_token"]))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for session in [&first, &second, &third] {
        let token = session["access_token"].as_str().expect("access token");
        let (status, body) = api.call(Method::GET, "/v1/admin/users", Some(token), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{body}");
    }
    // A password login starts again.
    let (status, fresh) = api.login("admin", ADMIN_PASSWORD, &device).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let (status, _) = api.call(Method::GET, "/v1/admin/users", Some(access_token(&fresh)), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_device_is_refused_everywhere_and_told_to_wipe() {
    let api = Api::new();
    let admin = api.admin().await;
    let body = json!({ "name": "pkh.contoh01", "role": "enumerator", "password": "long-enough-password" });
    api.call(Method::POST, "/v1/admin/users", Some(&admin), Some(body)).await;
    let device = uuid();
    let (_, session) = api.login("pkh.contoh01", "long-enough-password", &device).await;
    let (status, revoked) =
        api.call(Method::POST, &format!("/v1/admin/devices/{device}/revoke"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());

    let wipe = |status: StatusCode, body: &Value| {
        assert_eq!((status, error_code(body)), (StatusCode::UNAUTHORIZED, "device_revoked"), "{body}");
        assert_eq!(body["wipe"], json!(true));
    };
    let token = session["access_token"].as_str().expect("token");
    let (status, body) = api.call(Method::GET, "/v1/admin/users", Some(token), None).await;
    wipe(status, &body);
    let refresh = json!({ "refresh_token": session["refresh_token"], "device": device });
    let (status, body) = api.call(Method::POST, "/v1/token/refresh", None, Some(refresh)).await;
    wipe(status, &body);
    let (status, body) = api.login("pkh.contoh01", "long-enough-password", &device).await;
    wipe(status, &body);

    let (status, devices) = api.call(Method::GET, "/v1/admin/devices", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = devices.as_array().expect("list").iter().find(|d| d["id"] == json!(device)).expect("listed");
    assert_eq!((listed["user"].as_str(), listed["revoked_at"].is_string()), (Some("pkh.contoh01"), true));

    let (status, body) =
        api.call(Method::POST, &format!("/v1/admin/devices/{}/revoke", uuid()), Some(&admin), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = api.call(Method::POST, "/v1/admin/devices/not-a-uuid/revoke", Some(&admin), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
}

#[tokio::test]
async fn a_roster_chunk_is_read_compressed_or_plain_and_a_zstd_bomb_is_refused() {
    let api = Api::with_limit(64 * 1024);
    let admin = api.admin().await;
    let put = |body: Vec<u8>, content_type: &'static str, encoding: Option<&'static str>| {
        let mut request = Request::put(format!("/v1/roster/{}/chunks/0", uuid()))
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, content_type);
        if let Some(encoding) = encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        request.body(Body::from(body)).expect("request")
    };
    let empty = br#"{"households": []}"#.to_vec();
    let compressed = zstd::bulk::compress(&empty, 3).expect("compress");
    for (what, request) in [
        ("plain JSON", put(empty.clone(), "application/json", None)),
        ("zstd JSON", put(compressed.clone(), "application/json", Some("zstd"))),
    ] {
        let (status, body) = api.raw(request).await;
        assert_eq!((status, &body["staged"]), (StatusCode::OK, &json!(true)), "{what}: {body}");
    }
    // 8 × the 64 KiB body limit is the most a chunk may expand to.
    let bomb = zstd::bulk::compress(&vec![b' '; 8 * 64 * 1024 + 1], 3).expect("compress");
    let refusals = [
        ("a bomb", put(bomb, "application/json", Some("zstd")), StatusCode::BAD_REQUEST, "malformed_request"),
        (
            "not zstd",
            put(empty.clone(), "application/json", Some("zstd")),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "not JSON",
            put(compressed, "text/plain", Some("zstd")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (what, request, expected, code) in refusals {
        let (status, body) = api.raw(request).await;
        assert_eq!((status, error_code(&body)), (expected, code), "{what}: {body}");
    }
}
