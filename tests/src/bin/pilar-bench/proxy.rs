//! A byte-counting TCP proxy on 127.0.0.1 between the devices and the server: every byte that
//! crosses it, both ways, HTTP framing included, is counted before it is forwarded. It also follows
//! the HTTP/1.1 framing of each connection (request line and headers, `Content-Length` or chunked
//! bodies) so that each request and its response are attributed to one [`Exchange`]; the raw
//! totals never depend on that parsing.

use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// A connection idle this long in one direction is given up (the bench's processes never pause
/// that long; it only bounds a stuck copy loop).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest request or response head the parser follows (larger heads are counted, not parsed).
const MAX_HEAD: usize = 64 * 1024;

/// One HTTP request and its response as seen on the wire.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Request method, e.g. `POST`.
    pub method: String,
    /// Request path without the query string, e.g. `/v1/sync`.
    pub path: String,
    /// Response status, once the response head has passed.
    pub status: Option<u16>,
    /// Request bytes (head and body) on the wire.
    pub up: u64,
    /// Response bytes (head and body) on the wire.
    pub down: u64,
    /// Of `up`, the request head (request line and headers).
    pub up_head: u64,
    /// Of `down`, the response head (status line and headers).
    pub down_head: u64,
}

impl Exchange {
    /// What the request is for: `refresh`, `login`, `pack`, `sync` or `other`.
    pub fn kind(&self) -> &'static str {
        match (self.method.as_str(), self.path.as_str()) {
            ("POST", "/v1/token/refresh") => "refresh",
            ("POST", "/v1/login") => "login",
            ("POST", "/v1/sync") => "sync",
            ("GET", p) if p.starts_with("/v1/packs/") => "pack",
            _ => "other",
        }
    }
}

/// What the proxy has counted so far.
#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
    exchanges: Mutex<Vec<Exchange>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking copy thread must not stop the counting: the data is plain counters.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A point in the proxy's counts, to measure a phase as the difference of two.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    up: u64,
    down: u64,
    connections: u64,
    exchanges: usize,
}

/// The traffic between two marks.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// Bytes from the devices to the server.
    pub up: u64,
    /// Bytes from the server to the devices.
    pub down: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// HTTP requests whose request line passed, in order of arrival.
    pub exchanges: Vec<Exchange>,
}

impl Traffic {
    /// Bytes both ways.
    pub fn total(&self) -> u64 {
        self.up + self.down
    }

    /// Requests of one kind (see [`Exchange::kind`]).
    pub fn count(&self, kind: &str) -> usize {
        self.exchanges.iter().filter(|e| e.kind() == kind).count()
    }

    /// Bytes of HTTP heads (request and status lines, headers): up, down.
    pub fn heads(&self) -> (u64, u64) {
        (self.exchanges.iter().map(|e| e.up_head).sum(), self.exchanges.iter().map(|e| e.down_head).sum())
    }

    /// `12 = 1 refresh + 10 pack + 1 sync`.
    pub fn requests_text(&self) -> String {
        let mut parts = Vec::new();
        for kind in ["refresh", "login", "pack", "sync", "other"] {
            let n = self.count(kind);
            if n > 0 {
                parts.push(format!("{n} {kind}"));
            }
        }
        format!("{} = {}", self.exchanges.len(), if parts.is_empty() { "none".into() } else { parts.join(" + ") })
    }
}

/// The proxy: listening on 127.0.0.1 (port 0), forwarding to one server address.
pub struct Proxy {
    address: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on 127.0.0.1:0 and forward every connection to `server` (a 127.0.0.1 address).
    pub fn start(server: SocketAddr) -> Result<Proxy> {
        anyhow::ensure!(server.ip().is_loopback(), "the proxy only forwards to loopback, not {server}");
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen for the proxy")?;
        let address = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let counters = counters.clone();
            let stop = stop.clone();
            std::thread::spawn(move || accept_loop(&listener, server, &counters, &stop))
        };
        Ok(Proxy { address, counters, stop, acceptor: Some(acceptor) })
    }

    /// The URL devices use, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The counts now.
    pub fn mark(&self) -> Mark {
        Mark {
            up: self.counters.up.load(Ordering::SeqCst),
            down: self.counters.down.load(Ordering::SeqCst),
            connections: self.counters.connections.load(Ordering::SeqCst),
            exchanges: lock(&self.counters.exchanges).len(),
        }
    }

    /// The traffic since `mark`. Call it after the processes of the phase have exited: every byte
    /// is counted before it is forwarded, so nothing a finished process received is missing.
    pub fn since(&self, mark: Mark) -> Traffic {
        let now = self.mark();
        let exchanges = lock(&self.counters.exchanges)[mark.exchanges..now.exchanges].to_vec();
        Traffic {
            up: now.up - mark.up,
            down: now.down - mark.down,
            connections: now.connections - mark.connections,
            exchanges,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with one connection of our own; it sees the flag and returns.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, server: SocketAddr, counters: &Arc<Counters>, stop: &AtomicBool) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        let Ok(upstream) = TcpStream::connect(server) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        counters.connections.fetch_add(1, Ordering::SeqCst);
        let _ = spawn_pipes(client, upstream, counters);
    }
}

/// Two copy threads for one connection; they end when either side closes (or stays silent for
/// [`IDLE_TIMEOUT`]).
fn spawn_pipes(client: TcpStream, upstream: TcpStream, counters: &Arc<Counters>) -> std::io::Result<()> {
    for s in [&client, &upstream] {
        s.set_read_timeout(Some(IDLE_TIMEOUT))?;
        s.set_nodelay(true)?;
    }
    let pending = Arc::new(Mutex::new(VecDeque::new()));
    let (client_read, upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = Direction { counters: counters.clone(), pending: pending.clone(), parser: Parser::new(Side::Request) };
    let down = Direction { counters: counters.clone(), pending, parser: Parser::new(Side::Response) };
    std::thread::spawn(move || up.pipe(client_read, upstream_write));
    std::thread::spawn(move || down.pipe(upstream, client));
    Ok(())
}

/// One direction of one connection.
struct Direction {
    counters: Arc<Counters>,
    /// Exchanges on this connection whose response has not started yet, oldest first.
    pending: Arc<Mutex<VecDeque<usize>>>,
    parser: Parser,
}

impl Direction {
    fn pipe(mut self, mut from: TcpStream, mut to: TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Count (and attribute) first, forward second: once the peer has the bytes, they are counted.
            let total = match self.parser.side {
                Side::Request => &self.counters.up,
                Side::Response => &self.counters.down,
            };
            total.fetch_add(n as u64, Ordering::SeqCst);
            self.follow(&buf[..n]);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    }

    fn follow(&mut self, bytes: &[u8]) {
        for event in self.parser.feed(bytes) {
            match event {
                Event::Head(head) => {
                    let mut log = lock(&self.counters.exchanges);
                    match self.parser.side {
                        Side::Request => {
                            log.push(Exchange {
                                method: head.method,
                                path: head.path,
                                up: head.len,
                                up_head: head.len,
                                ..Exchange::default()
                            });
                            let index = log.len() - 1;
                            lock(&self.pending).push_back(index);
                            self.parser.current = Some(index);
                        }
                        Side::Response => {
                            let mut pending = lock(&self.pending);
                            // An interim (1xx) response precedes the real one of the same request.
                            let index = if head.interim { pending.front().copied() } else { pending.pop_front() };
                            self.parser.current = index;
                            if let Some(e) = index.and_then(|i| log.get_mut(i)) {
                                e.status = Some(head.status);
                                e.down += head.len;
                                e.down_head += head.len;
                            }
                        }
                    }
                }
                Event::Body(n) => {
                    if let Some(i) = self.parser.current {
                        let mut log = lock(&self.counters.exchanges);
                        if let Some(e) = log.get_mut(i) {
                            match self.parser.side {
                                Side::Request => e.up += n,
                                Side::Response => e.down += n,
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// A parsed message head.
#[derive(Debug)]
struct Head {
    method: String,
    path: String,
    status: u16,
    interim: bool,
    /// Bytes of the head on the wire.
    len: u64,
}

#[derive(Debug)]
enum Event {
    /// A message head completed.
    Head(Head),
    /// Bytes of the current message after its head.
    Body(u64),
}

#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    ChunkLine,
    ChunkData(u64),
    Trailer,
    UntilClose,
    /// Framing the parser does not follow: later bytes go to the current exchange, if any.
    Lost,
}

/// An incremental HTTP/1.1 framing parser for one direction.
struct Parser {
    side: Side,
    state: State,
    line: Vec<u8>,
    current: Option<usize>,
}

impl Parser {
    fn new(side: Side) -> Parser {
        Parser { side, state: State::Head, line: Vec::new(), current: None }
    }

    fn feed(&mut self, data: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut pos = 0;
        // Each pass consumes at least one byte or changes state towards consuming one.
        while pos < data.len() {
            match self.state {
                State::Head => {
                    self.line.push(data[pos]);
                    pos += 1;
                    if self.line.ends_with(b"\r\n\r\n") {
                        let head = std::mem::take(&mut self.line);
                        let (parsed, next) = self.parse_head(&head);
                        events.push(Event::Head(parsed));
                        self.state = next;
                    } else if self.line.len() > MAX_HEAD {
                        events.push(Event::Body(self.line.len() as u64));
                        self.line.clear();
                        self.state = State::Lost;
                    }
                }
                State::Body(left) => {
                    let take = left.min((data.len() - pos) as u64);
                    events.push(Event::Body(take));
                    pos += take as usize;
                    self.state = if take == left { State::Head } else { State::Body(left - take) };
                }
                State::ChunkLine | State::Trailer => {
                    self.line.push(data[pos]);
                    pos += 1;
                    events.push(Event::Body(1));
                    if self.line.ends_with(b"\r\n") {
                        let line = std::mem::take(&mut self.line);
                        self.state = match self.state {
                            State::ChunkLine => match chunk_size(&line) {
                                Some(0) => State::Trailer,
                                Some(n) => State::ChunkData(n + 2),
                                None => State::Lost,
                            },
                            // An empty line ends the trailer (and the message).
                            _ if line.len() == 2 => State::Head,
                            _ => State::Trailer,
                        };
                    } else if self.line.len() > MAX_HEAD {
                        self.line.clear();
                        self.state = State::Lost;
                    }
                }
                State::ChunkData(left) => {
                    let take = left.min((data.len() - pos) as u64);
                    events.push(Event::Body(take));
                    pos += take as usize;
                    self.state = if take == left { State::ChunkLine } else { State::ChunkData(left - take) };
                }
                State::UntilClose | State::Lost => {
                    events.push(Event::Body((data.len() - pos) as u64));
                    pos = data.len();
                }
            }
        }
        events
    }

    /// The head's fields and the state for what follows it.
    fn parse_head(&self, head: &[u8]) -> (Head, State) {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default();
        let mut words = start.split(' ');
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
        let mut parsed =
            Head { method: String::new(), path: String::new(), status: 0, interim: false, len: head.len() as u64 };
        let body = |length: Option<u64>| match length {
            Some(0) => State::Head,
            Some(n) => State::Body(n),
            None => State::Head,
        };
        let next = match self.side {
            Side::Request => {
                parsed.method = words.next().unwrap_or_default().to_string();
                let target = words.next().unwrap_or_default();
                parsed.path = target.split('?').next().unwrap_or_default().to_string();
                if chunked { State::ChunkLine } else { body(length) }
            }
            Side::Response => {
                let _version = words.next();
                parsed.status = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                parsed.interim = (100..200).contains(&parsed.status);
                if parsed.interim || parsed.status == 204 || parsed.status == 304 {
                    State::Head
                } else if chunked {
                    State::ChunkLine
                } else if length.is_some() {
                    body(length)
                } else {
                    State::UntilClose
                }
            }
        };
        (parsed, next)
    }
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let hex = text.split(';').next()?.trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(events: &[Event]) -> (usize, u64) {
        let heads = events.iter().filter(|e| matches!(e, Event::Head(_))).count();
        let body = events.iter().map(|e| if let Event::Body(n) = e { *n } else { 0 }).sum();
        (heads, body)
    }

    #[test]
    fn requests_with_bodies_split_anywhere_are_framed() {
        let wire =
            b"POST /v1/sync HTTP/1.1\r\ncontent-length: 5\r\n\r\n\r\n\r\nxGET /v1/packs/1?after=2 HTTP/1.1\r\n\r\n";
        for split in 0..wire.len() {
            let mut p = Parser::new(Side::Request);
            let mut events = p.feed(&wire[..split]);
            events.extend(p.feed(&wire[split..]));
            assert_eq!(sizes(&events), (2, 5), "split at {split}");
            assert!(matches!(p.state, State::Head));
        }
    }

    #[test]
    fn chunked_responses_are_framed() {
        let wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let mut p = Parser::new(Side::Response);
        let events = p.feed(wire);
        assert_eq!(sizes(&events).0, 2);
        assert!(matches!(p.state, State::Head));
    }
}
