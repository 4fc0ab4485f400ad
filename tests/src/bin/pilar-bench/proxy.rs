//! A byte-counting TCP proxy on 127.0.0.1 between the devices and the server: every byte that
//! crosses it, both ways, HTTP framing included, is counted before it is forwarded. It also follows
//! the HTTP/1.1 framing of each connection (request line and headers, `Content-Length` or chunked
//! bodies) so that each request and its response are attributed to one [`Exchange`]; the raw
//! totals never depend on that parsing.

use anyhow::{Context, Result};
use pilar_tests::http_framing::{Event, Parser, Side, request_kind};
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
        request_kind(&self.method, &self.path)
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
    let up = Direction {
        counters: counters.clone(),
        pending: pending.clone(),
        parser: Parser::new(Side::Request),
        current: None,
    };
    let down = Direction { counters: counters.clone(), pending, parser: Parser::new(Side::Response), current: None };
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
    /// The exchange the bytes now passing belong to (index into the log).
    current: Option<usize>,
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
            let total = match self.parser.side() {
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
                    match self.parser.side() {
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
                            self.current = Some(index);
                        }
                        Side::Response => {
                            let mut pending = lock(&self.pending);
                            // An interim (1xx) response precedes the real one of the same request.
                            let index = if head.interim { pending.front().copied() } else { pending.pop_front() };
                            self.current = index;
                            if let Some(e) = index.and_then(|i| log.get_mut(i)) {
                                e.status = Some(head.status);
                                e.down += head.len;
                                e.down_head += head.len;
                            }
                        }
                    }
                }
                Event::End => {}
                Event::Body(n) => {
                    if let Some(i) = self.current {
                        let mut log = lock(&self.counters.exchanges);
                        if let Some(e) = log.get_mut(i) {
                            match self.parser.side() {
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
