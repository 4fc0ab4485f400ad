//! The blocking HTTP client `pilar` talks to `pilar-server` with: it holds the server URL and a
//! short-lived access token, refreshes the token with the store's refresh token when it is missing,
//! expiring or refused (saving the rotated refresh token at once), turns error bodies into errors
//! carrying the server's message, and wipes the device store when the server says the device was
//! revoked.
//!
//! The client opens the device store only for a moment (to read or save the session), so a
//! command may hold its own `DeviceStore` open meanwhile; it must not hold a write transaction
//! across a request, and must drop its store when a request fails with [`DeviceWiped`].

use anyhow::{Context, Result, anyhow};
use reqwest::StatusCode;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sync_core::model::DeviceId;
use sync_core::protocol::{ErrorBody, LoginRequest, LoginResponse, RefreshRequest};
use sync_core::store::{DeviceStore, Session};

/// How long to wait for a connection (a 2G link is slow, but not this slow).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may take in all, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Refresh the access token when it has less than this left.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// What went wrong on the way to the server or back: the request may or may not have been
/// handled, and trying again later is the right move (exit code 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkKind {
    /// No connection could be made (no signal, wrong address, server down).
    Unreachable,
    /// The server did not answer in time.
    TimedOut,
    /// The connection broke while the request or the answer was on its way; the server may have
    /// handled the request.
    Broken,
    /// The server answered that it cannot handle requests now (HTTP 5xx).
    ServerTrouble,
}

/// A network failure (downcast an `anyhow::Error` to branch on it): nothing was refused, the
/// request should simply be tried again.
#[derive(Debug, Clone)]
pub struct NetworkFailure {
    /// What happened.
    pub kind: NetworkKind,
    /// The server's base URL.
    pub server: String,
    /// The underlying error, for the curious (no request data in it).
    pub detail: String,
}

impl NetworkFailure {
    /// The connection broke while the answer was arriving (a body that ended early or arrived
    /// damaged).
    pub fn broken_answer(server: &str, detail: impl fmt::Display) -> NetworkFailure {
        NetworkFailure { kind: NetworkKind::Broken, server: server.to_string(), detail: detail.to_string() }
    }
}

impl fmt::Display for NetworkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            NetworkKind::Unreachable => write!(f, "cannot reach the server at {} (no connection)", self.server),
            NetworkKind::TimedOut => write!(f, "the server at {} did not answer in time", self.server),
            NetworkKind::Broken => write!(f, "the connection to {} broke before the answer was complete", self.server),
            NetworkKind::ServerTrouble => write!(f, "the server at {} cannot handle requests right now", self.server),
        }?;
        write!(f, " ({})", self.detail)
    }
}

impl std::error::Error for NetworkFailure {}

/// The server refused a request with an `ErrorBody` (downcast an `anyhow::Error` to branch on it).
#[derive(Debug, Clone)]
pub struct ServerRefused {
    /// The server's explanation (`body.error` is the stable code to branch on).
    pub body: ErrorBody,
}

impl fmt::Display for ServerRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server refused: {}", self.body.message)
    }
}

impl std::error::Error for ServerRefused {}

/// The server said this device was revoked, and the device store was deleted (or deleting it
/// failed, see `failure`).
#[derive(Debug)]
pub struct DeviceWiped {
    /// The home directory whose store was deleted.
    pub home: PathBuf,
    /// Why deleting failed, if it did.
    pub failure: Option<String>,
}

impl fmt::Display for DeviceWiped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => write!(
                f,
                "this device was revoked by an admin, so its local data has been deleted from {}; to work again, \
                 log in with `pilar login` (the device gets a new identity)",
                self.home.display()
            ),
            Some(e) => write!(
                f,
                "this device was revoked by an admin and must delete its local data, but deleting the store in {} \
                 failed ({e}); delete that directory by hand",
                self.home.display()
            ),
        }
    }
}

impl std::error::Error for DeviceWiped {}

/// The checked base URL of a server: `http://` or `https://`, no trailing slash.
pub fn server_url(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .with_context(|| format!("{raw:?} is not a server URL; write it like https://pilar.example.go.id"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!("{raw:?} is not a server URL; write it like https://pilar.example.go.id");
    }
    Ok(trimmed.to_string())
}

/// Seconds since the Unix epoch by the device's clock (token expiry is checked against it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A connection to one server for one device.
pub struct Client {
    http: Http,
    server: String,
    home: PathBuf,
    device: DeviceId,
    access: Option<(String, Instant)>,
}

/// How far the tablet's clock may be from the server's before `pilar` warns: the server refuses
/// changes dated more than 24 hours ahead of its clock (`forged_writer`), so warn well before.
const CLOCK_WARNING: time::Duration = time::Duration::hours(6);

/// Say once per command when the tablet's clock is far from the server's (its `Date` header):
/// every save is stamped with the tablet's time, and work dated too far ahead is refused for good.
fn warn_about_clock(response: &Response) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let Some(server) = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|text| httpdate::parse_http_date(text).ok())
        .map(time::OffsetDateTime::from)
    else {
        return;
    };
    let Ok(device) = crate::commands::now() else { return };
    let off = device - server;
    if off.abs() > CLOCK_WARNING {
        WARNED.call_once(|| {
            eprintln!(
                "warning: this tablet's clock is {:.0} hour(s) {} the server's. Set the date, time and time zone \
                 (automatic, from the network): every save is stamped with the tablet's time, and the server refuses \
                 work dated more than 24 hours ahead of its own clock.",
                off.abs().as_seconds_f64() / 3600.0,
                if off.is_positive() { "ahead of" } else { "behind" }
            )
        });
    }
}

impl fmt::Debug for Client {
    // The access token is a credential: keep it out of Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("server", &self.server).field("device", &self.device).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `server` acting as `device`, whose store (if any) lives in `home`; no token yet.
    pub fn new(server: &str, home: &Path, device: DeviceId) -> Result<Client> {
        let http = Http::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("pilar/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client { http, server: server_url(server)?, home: home.to_path_buf(), device, access: None })
    }

    /// A client for the server this device logged in to (`pilar login`).
    pub fn from_session(home: &Path) -> Result<Client> {
        let store = DeviceStore::open(home)?;
        let session = store.session()?.ok_or_else(|| {
            anyhow!("this device has not logged in to a server; run `pilar login --server URL --user NAME` first")
        })?;
        let mut client = Client::new(&session.server, home, store.identity().device)?;
        // A token kept by an earlier command saves a refresh round trip on slow links.
        if let Some((token, expires_at)) = store.access_token()? {
            let left = expires_at - unix_now();
            if left > EXPIRY_MARGIN.as_secs() as i64 {
                client.access = Some((token, Instant::now() + Duration::from_secs(left as u64)));
            }
        }
        Ok(client)
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The full URL of an API path such as `/v1/admin/users`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    /// Log in with a password (no token needed); keeps the access token for later requests.
    /// Saving the session in the store is the caller's job (the store may not exist yet).
    pub fn login(&mut self, request: &LoginRequest) -> Result<LoginResponse> {
        let response = self.http.post(self.url("/v1/login")).json(request).send().map_err(|e| self.unreachable(e))?;
        let body = self.body(self.accept(response)?)?;
        let login: LoginResponse =
            serde_json::from_slice(&body).context("the server's answer to the login is not what pilar expects")?;
        self.remember(&login);
        Ok(login)
    }

    /// Exchange the store's refresh token for new tokens and save the rotated refresh token.
    pub fn refresh(&mut self) -> Result<LoginResponse> {
        let session = DeviceStore::open(&self.home)?.session()?.ok_or_else(|| {
            anyhow!("this device has not logged in to a server; run `pilar login --server URL --user NAME` first")
        })?;
        let request = RefreshRequest { refresh_token: session.refresh_token.clone(), device: self.device };
        let response =
            self.http.post(self.url("/v1/token/refresh")).json(&request).send().map_err(|e| self.unreachable(e))?;
        let login: LoginResponse = match self.accept(response) {
            Ok(response) => {
                let body = self.body(response)?;
                serde_json::from_slice(&body)
                    .context("the server's answer to the token refresh is not what pilar expects")?
            }
            Err(e) => {
                if e.downcast_ref::<ServerRefused>().is_some_and(|refused| refused.body.error == "unauthorized") {
                    return Err(e.context(format!(
                        "the server no longer accepts this device's session; log in again with `pilar login --server \
                         {} --user NAME`",
                        self.server
                    )));
                }
                return Err(e);
            }
        };
        // The old refresh token stopped working the moment the server answered: save the new one now.
        DeviceStore::open(&self.home)?.set_session(&Session {
            server: session.server,
            refresh_token: login.refresh_token.clone(),
            role: login.role,
        })?;
        self.remember(&login);
        Ok(login)
    }

    /// Send an authenticated request built by `build` (given the HTTP client), refreshing the
    /// access token first when needed and once more if the server refuses it. Returns the
    /// successful response; a refusal becomes a [`ServerRefused`] or [`DeviceWiped`] error.
    pub fn send(&mut self, build: impl Fn(&Http) -> RequestBuilder) -> Result<Response> {
        let mut refreshed = false;
        loop {
            let token = match &self.access {
                Some((token, expires)) if Instant::now() + EXPIRY_MARGIN < *expires => token.clone(),
                _ => {
                    self.refresh()?;
                    refreshed = true;
                    match &self.access {
                        Some((token, _)) => token.clone(),
                        None => return Err(anyhow!("the server's token refresh gave no access token")),
                    }
                }
            };
            let response = build(&self.http).bearer_auth(token).send().map_err(|e| self.unreachable(e))?;
            match self.accept(response) {
                Ok(response) => return Ok(response),
                Err(e) => {
                    let expired =
                        e.downcast_ref::<ServerRefused>().is_some_and(|refused| refused.body.error == "unauthorized");
                    if expired && !refreshed {
                        self.access = None;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// `GET path` → JSON.
    pub fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        let url = self.url(path);
        let response = self.send(|http| http.get(&url))?;
        self.decode(response)
    }

    /// `POST path` with a JSON body → JSON.
    pub fn post<B: Serialize, T: DeserializeOwned>(&mut self, path: &str, body: &B) -> Result<T> {
        let url = self.url(path);
        let response = self.send(|http| http.post(&url).json(body))?;
        self.decode(response)
    }

    /// `PUT path` with a JSON body → JSON.
    pub fn put<B: Serialize, T: DeserializeOwned>(&mut self, path: &str, body: &B) -> Result<T> {
        let url = self.url(path);
        let response = self.send(|http| http.put(&url).json(body))?;
        self.decode(response)
    }

    /// `PUT path` with a body already encoded (`content_type`, and `encoding` as its
    /// `Content-Encoding`) → JSON.
    pub fn put_encoded<T: DeserializeOwned>(
        &mut self,
        path: &str,
        content_type: &str,
        encoding: &str,
        body: &[u8],
    ) -> Result<T> {
        let url = self.url(path);
        let response = self.send(|http| {
            http.put(&url)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .header(reqwest::header::CONTENT_ENCODING, encoding)
                .body(body.to_vec())
        })?;
        self.decode(response)
    }

    fn decode<T: DeserializeOwned>(&self, response: Response) -> Result<T> {
        let body = self.body(response)?;
        serde_json::from_slice(&body)
            .context("the server's answer is not what this pilar expects; is pilar up to date?")
    }

    fn remember(&mut self, login: &LoginResponse) {
        let expires = Instant::now() + Duration::from_secs(login.access_expires_in);
        self.access = Some((login.access_token.clone(), expires));
        // Keep it for the next command when the store exists (at first login it does not yet; the
        // login command creates it and the next refresh keeps the token).
        if let Ok(mut store) = DeviceStore::open(&self.home) {
            let expires_at = unix_now().saturating_add(i64::try_from(login.access_expires_in).unwrap_or(i64::MAX));
            if let Err(e) = store.set_access_token(&login.access_token, expires_at) {
                eprintln!("warning: could not keep the access token ({e}); the next command will refresh it");
            }
        }
    }

    /// The response if it succeeded; otherwise the server's error (wiping the store when told to).
    fn accept(&self, response: Response) -> Result<Response> {
        warn_about_clock(&response);
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Option<ErrorBody> = response.json().ok();
        if status.is_server_error() {
            let detail = match &body {
                Some(body) => format!("HTTP {status}: {}", body.message),
                None => format!("HTTP {status}"),
            };
            return Err(anyhow::Error::new(NetworkFailure {
                kind: NetworkKind::ServerTrouble,
                server: self.server.clone(),
                detail,
            }));
        }
        match body {
            Some(body) if body.wipe => {
                let failure = DeviceStore::wipe(&self.home).err().map(|e| e.to_string());
                Err(anyhow::Error::new(DeviceWiped { home: self.home.clone(), failure }))
            }
            Some(body) => Err(anyhow::Error::new(ServerRefused { body })),
            None => Err(anyhow!(
                "the server at {} answered HTTP {status} without an explanation{}",
                self.server,
                if status == StatusCode::NOT_FOUND {
                    "; check the server URL"
                } else {
                    "; try again later, or check the server URL"
                }
            )),
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        let kind = if e.is_timeout() {
            NetworkKind::TimedOut
        } else if e.is_connect() {
            NetworkKind::Unreachable
        } else {
            NetworkKind::Broken
        };
        anyhow::Error::new(NetworkFailure { kind, server: self.server.clone(), detail: error_chain(&e) })
    }

    /// Read a whole response body; a body that stops early is a [`NetworkFailure`] (the
    /// connection broke during the answer), not a bug.
    pub fn body(&self, response: Response) -> Result<Vec<u8>> {
        response.bytes().map(|b| b.to_vec()).map_err(|e| {
            let kind = if e.is_timeout() { NetworkKind::TimedOut } else { NetworkKind::Broken };
            anyhow::Error::new(NetworkFailure { kind, server: self.server.clone(), detail: error_chain(&e) })
        })
    }
}

/// An error and its sources on one line (reqwest's own message is often just "error sending
/// request"; the cause says what happened).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
