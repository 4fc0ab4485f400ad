//! A fault-injecting TCP proxy on 127.0.0.1 in front of a test server ([`FaultProxy`]): devices
//! log in through its URL, and each HTTP exchange passing it gets a [`Fault`] chosen by a
//! [`FaultPlan`] (seeded random, scripted, or one fault for everything): pass, delay, drop the
//! request, drop the answer after the server committed, truncate the answer, duplicate the request
//! on a second connection, or throttle to 2G speed. It records what it did to every exchange
//! ([`FaultRecord`]), so a test can match each failure a device reported to an injected fault.
//!
//! The proxy follows HTTP/1.1 framing per connection ([`crate::http_framing`]) and stores each
//! request and each answer whole before forwarding it (faults are decided per message, and a
//! dropped answer is read in full first, so the server has finished with the request). Blocking
//! threads, one per connection: the harness is blocking, and a test holds a few connections.

use crate::http_framing::{Event, Head, Parser, Side, request_kind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A connection silent this long is given up (no test process pauses that long mid-message).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A slow link: bytes per second and a one-way latency before each message starts to flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Bytes per second in each direction.
    pub bytes_per_second: u64,
    /// Delay before the first byte of each request and each answer (one way).
    pub latency: Duration,
}

impl Throttle {
    /// A 2G (EDGE) link as met in the field: 40 kbit/s each way, about 300 ms round trip.
    pub fn two_g() -> Throttle {
        Throttle { bytes_per_second: 40_000 / 8, latency: Duration::from_millis(150) }
    }
}

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A TCP reset (the device sees "connection reset by peer").
    Reset,
    /// An orderly close (the device sees the connection end without an answer).
    Close,
}

/// What the proxy does to one exchange (one request and its answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways untouched.
    Pass,
    /// Wait this long before forwarding the request, then pass.
    Delay(Duration),
    /// Reset the device's connection without forwarding the request: the server never sees it.
    DropRequest,
    /// Forward the request and read the server's whole answer (so the server has committed),
    /// then cut the device's connection before any byte of the answer.
    DropAnswer(Cut),
    /// Forward the request, then pass only the first `after` bytes of the answer (at most all
    /// but its last byte) and close the connection.
    Truncate {
        /// Bytes of the answer (head included) the device receives.
        after: usize,
    },
    /// Also send the same request bytes to the server on a second connection at the same time;
    /// that answer is discarded (its status is recorded).
    Duplicate,
    /// Pass, at the speed and latency of the link, both ways.
    Throttle(Throttle),
}

impl Fault {
    /// Whether the device cannot get a complete answer under this fault: what it reports then
    /// must be a network failure (try again; the work is safe on the device).
    pub fn breaks_the_exchange(&self) -> bool {
        matches!(self, Fault::DropRequest | Fault::DropAnswer(_) | Fault::Truncate { .. })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Pass => write!(f, "pass"),
            Fault::Delay(d) => write!(f, "delay {} ms", d.as_millis()),
            Fault::DropRequest => write!(f, "drop the request (reset)"),
            Fault::DropAnswer(Cut::Reset) => write!(f, "drop the answer (reset)"),
            Fault::DropAnswer(Cut::Close) => write!(f, "drop the answer (close)"),
            Fault::Truncate { after } => write!(f, "truncate the answer after {after} bytes"),
            Fault::Duplicate => write!(f, "duplicate the request"),
            Fault::Throttle(t) => {
                write!(f, "throttle to {} bytes/s, {} ms latency", t.bytes_per_second, t.latency.as_millis())
            }
        }
    }
}

/// What the proxy did to one exchange, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecord {
    /// The device connection it arrived on (numbered from 1 in order of acceptance).
    pub connection: u64,
    /// Request method.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// The fault applied.
    pub fault: Fault,
    /// Bytes of the request (head included) the device sent, forwarded or not.
    pub request_bytes: usize,
    /// The server's answer status; `None` when the server never saw the request or never answered.
    pub status: Option<u16>,
    /// Bytes of the server's answer (head included), when it answered.
    pub answer_bytes: Option<usize>,
    /// Bytes of the answer passed on to the device.
    pub delivered: usize,
    /// The status of the duplicate's answer ([`Fault::Duplicate`]).
    pub duplicate_status: Option<u16>,
    /// Forwarding failed on the server side (not an injected fault): what went wrong.
    pub upstream_error: Option<String>,
    /// Which server the exchange went to: the index of its URL given to
    /// [`FaultProxy::start_balanced`] (always 0 for [`FaultProxy::start`]).
    pub upstream: usize,
}

impl FaultRecord {
    /// What the request was for: `refresh`, `login`, `pack`, `sync`, `photo` or `other`.
    pub fn kind(&self) -> &'static str {
        request_kind(&self.method, &self.path)
    }

    /// Whether the device got no complete answer to this exchange, injected or not.
    pub fn broke(&self) -> bool {
        self.fault.breaks_the_exchange() || self.upstream_error.is_some()
    }
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}: {}", self.connection, self.method, self.path, self.fault)?;
        match self.status {
            Some(s) => write!(
                f,
                " (server answered {s}, {} of {} bytes delivered)",
                self.delivered,
                self.answer_bytes.unwrap_or(0)
            )?,
            None => write!(f, " (the server did not answer)")?,
        }
        if let Some(e) = &self.upstream_error {
            write!(f, " upstream error: {e}")?;
        }
        Ok(())
    }
}

enum Choice {
    Always(Fault),
    Script { left: VecDeque<Fault>, then: Fault },
    Random { rng: Box<StdRng>, faults: Vec<(f64, Fault)> },
}

/// Which fault each exchange gets.
///
/// Only exchanges of the kinds given to [`FaultPlan::only`] (all by default) consume the plan;
/// others pass. A random plan draws one number per exchange from its seed, so the same seed and
/// the same order of requests give the same faults.
pub struct FaultPlan {
    choice: Choice,
    kinds: Option<Vec<String>>,
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let choice = match &self.choice {
            Choice::Always(fault) => format!("always {fault}"),
            Choice::Script { left, then } => format!("script, {} left, then {then}", left.len()),
            Choice::Random { faults, .. } => format!("random over {} faults", faults.len()),
        };
        f.debug_struct("FaultPlan").field("choice", &choice).field("kinds", &self.kinds).finish()
    }
}

impl FaultPlan {
    /// Every exchange passes.
    pub fn pass() -> FaultPlan {
        FaultPlan::always(Fault::Pass)
    }

    /// Every exchange gets `fault` (e.g. [`Fault::Throttle`] for a whole 2G session).
    pub fn always(fault: Fault) -> FaultPlan {
        FaultPlan { choice: Choice::Always(fault), kinds: None }
    }

    /// The given faults for the next exchanges, in order; then every exchange passes (or gets
    /// the fault given to [`FaultPlan::then`]).
    pub fn scripted(faults: impl IntoIterator<Item = Fault>) -> FaultPlan {
        FaultPlan { choice: Choice::Script { left: faults.into_iter().collect(), then: Fault::Pass }, kinds: None }
    }

    /// In a scripted plan, the fault for every exchange after the script (e.g. a throttle that
    /// goes on after a scripted cut).
    pub fn then(mut self, fault: Fault) -> FaultPlan {
        match &mut self.choice {
            Choice::Script { then, .. } => *then = fault,
            _ => panic!("FaultPlan::then is for scripted plans (FaultPlan::scripted)"),
        }
        self
    }

    /// Random faults from `seed`; add them with [`FaultPlan::with`] (what is left over passes).
    pub fn random(seed: u64) -> FaultPlan {
        FaultPlan {
            choice: Choice::Random { rng: Box::new(StdRng::seed_from_u64(seed)), faults: Vec::new() },
            kinds: None,
        }
    }

    /// In a random plan, give `fault` to each exchange with `probability` (the probabilities of
    /// one plan add up to at most 1).
    pub fn with(mut self, probability: f64, fault: Fault) -> FaultPlan {
        match &mut self.choice {
            Choice::Random { faults, .. } => {
                let total: f64 = faults.iter().map(|(p, _)| p).sum::<f64>() + probability;
                assert!((0.0..=1.0 + 1e-9).contains(&total), "fault probabilities add up to {total}, more than 1");
                faults.push((probability, fault));
            }
            _ => panic!("FaultPlan::with is for random plans (FaultPlan::random)"),
        }
        self
    }

    /// Apply the plan only to requests of these kinds (`sync`, `pack`, `refresh`, `login`,
    /// `other`: see [`crate::http_framing::request_kind`]); the rest pass.
    pub fn only(mut self, kinds: &[&str]) -> FaultPlan {
        self.kinds = Some(kinds.iter().map(|k| k.to_string()).collect());
        self
    }

    fn next(&mut self, method: &str, path: &str) -> Fault {
        if let Some(kinds) = &self.kinds
            && !kinds.iter().any(|k| k == request_kind(method, path))
        {
            return Fault::Pass;
        }
        match &mut self.choice {
            Choice::Always(fault) => *fault,
            Choice::Script { left, then } => left.pop_front().unwrap_or(*then),
            Choice::Random { rng, faults } => {
                let mut draw: f64 = rng.random();
                for (p, fault) in faults.iter() {
                    if draw < *p {
                        return *fault;
                    }
                    draw -= p;
                }
                Fault::Pass
            }
        }
    }
}

/// State shared by the acceptor and the connection threads.
struct Shared {
    /// The servers, taken in turn by device connections.
    upstreams: Vec<SocketAddr>,
    plan: Mutex<FaultPlan>,
    log: Mutex<Vec<FaultRecord>>,
    /// A handle on each open device connection, to cut them all when the proxy stops.
    open: Mutex<HashMap<u64, TcpStream>>,
    stop: AtomicBool,
    connections: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the log down with it: the data stays valid.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The proxy: listening on 127.0.0.1 (port 0), forwarding to one server; stopped when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listen on 127.0.0.1:0 in front of the server at `server_url` (e.g. `TestServer::url()`,
    /// a loopback address), applying `plan`.
    pub fn start(server_url: &str, plan: FaultPlan) -> FaultProxy {
        FaultProxy::start_balanced(&[server_url], plan)
    }

    /// Listen on 127.0.0.1:0 in front of several servers, as a load balancer would (one address,
    /// several `pilar-server` processes on one database): device connections go to the servers
    /// in turn (the first to `server_urls[0]`), every request of a connection to its server;
    /// each record names its server ([`FaultRecord::upstream`]).
    pub fn start_balanced(server_urls: &[&str], plan: FaultPlan) -> FaultProxy {
        assert!(!server_urls.is_empty(), "the fault proxy needs a server to forward to");
        let upstreams = server_urls.iter().map(|url| loopback_address(url)).collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen for the fault proxy");
        let address = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstreams,
            plan: Mutex::new(plan),
            log: Mutex::new(Vec::new()),
            open: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        FaultProxy { address, shared, acceptor: Some(acceptor) }
    }

    /// The URL devices use instead of the server's, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Apply `plan` to the exchanges from now on.
    pub fn set_plan(&self, plan: FaultPlan) {
        *lock(&self.shared.plan) = plan;
    }

    /// Every exchange so far, in order of arrival. Complete for every exchange whose device has
    /// seen its outcome: a record is final before the device gets its answer (or its cut).
    pub fn log(&self) -> Vec<FaultRecord> {
        lock(&self.shared.log).clone()
    }

    /// How many exchanges have arrived: a mark for [`FaultProxy::log_since`].
    pub fn mark(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// The exchanges that arrived after `mark`.
    pub fn log_since(&self, mark: usize) -> Vec<FaultRecord> {
        lock(&self.shared.log)[mark..].to_vec()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with one connection of our own; it sees the flag and returns.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, connection) in lock(&self.shared.open).drain() {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

/// The loopback socket address of `server_url` (`http://host:port`).
fn loopback_address(server_url: &str) -> SocketAddr {
    let authority = server_url.trim_start_matches("http://").trim_end_matches('/');
    let upstream = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| panic!("{server_url} is not an http://host:port address"));
    assert!(upstream.ip().is_loopback(), "the fault proxy only forwards to loopback, not {upstream}");
    upstream
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(handle) = client.try_clone() {
            lock(&shared.open).insert(id, handle);
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            serve_connection(&shared, client, id);
        });
    }
}

/// One HTTP message read whole from a connection.
struct Message {
    head: Head,
    bytes: Vec<u8>,
}

/// Reads whole messages from one direction of one connection, keeping bytes read past a message.
struct MessageReader {
    parser: Parser,
    buffer: Vec<u8>,
}

impl MessageReader {
    fn new(side: Side) -> MessageReader {
        MessageReader { parser: Parser::new(side), buffer: Vec::new() }
    }

    /// The next message; `None` when the connection closed cleanly between messages.
    fn read(&mut self, stream: &mut TcpStream) -> io::Result<Option<Message>> {
        let mut bytes = Vec::new();
        let mut head = None;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if self.buffer.is_empty() {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return match (self.parser.finish(), head) {
                        (Some(Event::End), Some(head)) => Ok(Some(Message { head, bytes })),
                        (_, None) if bytes.is_empty() => Ok(None),
                        _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed mid-message")),
                    };
                }
                self.buffer.extend_from_slice(&chunk[..n]);
            }
            let (used, events) = self.parser.feed_message(&self.buffer);
            bytes.extend(self.buffer.drain(..used));
            for event in events {
                match event {
                    // A 1xx answer is forwarded together with the final one that follows it.
                    Event::Head(h) if !h.interim => head = Some(h),
                    Event::End if head.is_some() => {
                        return Ok(head.map(|head| Message { head, bytes: std::mem::take(&mut bytes) }));
                    }
                    _ => {}
                }
            }
            if self.parser.is_lost() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "HTTP framing the proxy cannot follow"));
            }
        }
    }
}

/// A connection to the server, opened when the first request needs it.
struct Upstream {
    stream: TcpStream,
    reader: MessageReader,
}

impl Upstream {
    fn connect(address: SocketAddr) -> io::Result<Upstream> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Upstream { stream, reader: MessageReader::new(Side::Response) })
    }

    /// Whether the server has closed this idle connection (then a new one is opened rather than
    /// sending a request into a closing socket, which would be a failure nobody injected).
    fn closed_by_server(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let peeked = self.stream.peek(&mut [0u8; 1]);
        let restored = self.stream.set_nonblocking(false).is_ok();
        !restored || !matches!(peeked, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Send `request` and read the whole answer.
    fn exchange(&mut self, request: &Message, throttle: Option<Throttle>) -> io::Result<Message> {
        write_paced(&mut self.stream, &request.bytes, throttle)?;
        if request.head.method == "HEAD" {
            self.reader.parser.expect_bodiless_response();
        }
        self.reader
            .read(&mut self.stream)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed without answering"))
    }
}

/// Write `bytes`, at the throttle's speed after its latency when there is one.
fn write_paced(to: &mut TcpStream, bytes: &[u8], throttle: Option<Throttle>) -> io::Result<()> {
    let Some(throttle) = throttle else { return to.write_all(bytes) };
    std::thread::sleep(throttle.latency);
    let rate = throttle.bytes_per_second.max(1);
    // Slices of about 50 ms keep the pace smooth without a write per byte.
    let slice = usize::try_from(rate / 20).unwrap_or(usize::MAX).max(1);
    let start = Instant::now();
    let mut sent: u64 = 0;
    for piece in bytes.chunks(slice) {
        to.write_all(piece)?;
        sent += piece.len() as u64;
        let due = start + Duration::from_micros(sent.saturating_mul(1_000_000) / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
    Ok(())
}

/// Cut a connection: a reset (linger 0, then close) or an orderly close.
fn cut(shared: &Shared, id: u64, stream: TcpStream, how: Cut) {
    // The copy kept for stopping the proxy must go first: the socket closes with its last handle.
    drop(lock(&shared.open).remove(&id));
    if how == Cut::Reset {
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    } else {
        let _ = stream.shutdown(Shutdown::Both);
    }
    drop(stream);
}

fn update(shared: &Shared, index: usize, change: impl FnOnce(&mut FaultRecord)) {
    if let Some(record) = lock(&shared.log).get_mut(index) {
        change(record);
    }
}

/// Serve one device connection: request by request, each with the plan's fault.
fn serve_connection(shared: &Shared, mut client: TcpStream, id: u64) {
    let _ = client.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = client.set_nodelay(true);
    let mut requests = MessageReader::new(Side::Request);
    // Connections are numbered from 1: the first goes to the first server.
    let server = usize::try_from(id.saturating_sub(1)).unwrap_or(0) % shared.upstreams.len();
    let address = shared.upstreams[server];
    let mut upstream: Option<Upstream> = None;
    let mut ending = Cut::Close;
    while let Ok(Some(request)) = requests.read(&mut client) {
        let fault = lock(&shared.plan).next(&request.head.method, &request.head.path);
        let index = {
            let mut log = lock(&shared.log);
            log.push(FaultRecord {
                connection: id,
                method: request.head.method.clone(),
                path: request.head.path.clone(),
                fault,
                request_bytes: request.bytes.len(),
                status: None,
                answer_bytes: None,
                delivered: 0,
                duplicate_status: None,
                upstream_error: None,
                upstream: server,
            });
            log.len() - 1
        };
        let throttle = match fault {
            Fault::DropRequest => {
                ending = Cut::Reset;
                break;
            }
            Fault::Delay(delay) => {
                std::thread::sleep(delay);
                None
            }
            Fault::Throttle(throttle) => Some(throttle),
            _ => None,
        };
        let duplicate = (fault == Fault::Duplicate).then(|| {
            let bytes = request.bytes.clone();
            let head = request.head.clone();
            std::thread::spawn(move || {
                let mut second = Upstream::connect(address).ok()?;
                second.exchange(&Message { head, bytes }, None).ok().map(|answer| answer.head.status)
            })
        });
        let answer = match upstream.take().filter(|up| !up.closed_by_server()) {
            Some(up) => Ok(up),
            None => Upstream::connect(address),
        }
        .and_then(|mut up| up.exchange(&request, throttle).map(|answer| (up, answer)));
        let duplicate_status = duplicate.and_then(|d| d.join().ok().flatten());
        let answer = match answer {
            Ok((up, answer)) => {
                upstream = Some(up);
                answer
            }
            Err(e) => {
                update(shared, index, |r| {
                    r.upstream_error = Some(e.to_string());
                    r.duplicate_status = duplicate_status;
                });
                ending = Cut::Reset;
                break;
            }
        };
        let delivered = match fault {
            Fault::DropAnswer(_) => 0,
            Fault::Truncate { after } => after.min(answer.bytes.len().saturating_sub(1)),
            _ => answer.bytes.len(),
        };
        update(shared, index, |r| {
            r.status = Some(answer.head.status);
            r.answer_bytes = Some(answer.bytes.len());
            r.delivered = delivered;
            r.duplicate_status = duplicate_status;
        });
        if let Fault::DropAnswer(how) = fault {
            ending = how;
            break;
        }
        if write_paced(&mut client, &answer.bytes[..delivered], throttle).is_err() {
            break;
        }
        if delivered < answer.bytes.len() {
            break;
        }
    }
    if let Some(up) = upstream {
        let _ = up.stream.shutdown(Shutdown::Both);
    }
    cut(shared, id, client, ending);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A tiny HTTP server: answers every request with `200` and a body of `body_len` bytes
    /// (chunked when asked), and reports each request's bytes on a channel.
    struct TinyServer {
        url: String,
        requests: mpsc::Receiver<Vec<u8>>,
    }

    impl TinyServer {
        fn start(body_len: usize, chunked: bool) -> TinyServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("address"));
            let (tx, requests) = mpsc::channel();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        let mut reader = MessageReader::new(Side::Request);
                        while let Ok(Some(request)) = reader.read(&mut stream) {
                            let _ = tx.send(request.bytes.clone());
                            let body = body(body_len);
                            let mut answer = Vec::new();
                            if chunked {
                                answer.extend(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
                                for part in body.chunks(1000) {
                                    answer.extend(format!("{:x}\r\n", part.len()).as_bytes());
                                    answer.extend(part);
                                    answer.extend(b"\r\n");
                                }
                                answer.extend(b"0\r\n\r\n");
                            } else {
                                answer.extend(
                                    format!("HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\n\r\n").as_bytes(),
                                );
                                answer.extend(&body);
                            }
                            if stream.write_all(&answer).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            TinyServer { url, requests }
        }

        /// Requests the server has received so far (without waiting).
        fn received(&self) -> Vec<Vec<u8>> {
            self.requests.try_iter().collect()
        }
    }

    /// The tiny server's body of `len` bytes.
    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| b'a' + (i % 26) as u8).collect()
    }

    /// Bytes of the tiny server's whole answer (not chunked) with a body of `len` bytes.
    fn answer_len(len: usize) -> usize {
        format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").len() + len
    }

    const REQUEST: &[u8] = b"POST /v1/sync HTTP/1.1\r\nhost: test\r\ncontent-length: 11\r\n\r\nhello world";

    /// Send one request on a new connection: the complete answer (empty if none came), and
    /// whether the connection was reset.
    fn send(proxy: &FaultProxy, request: &[u8]) -> (Vec<u8>, bool) {
        let mut stream = TcpStream::connect(proxy.address).expect("connect");
        stream.write_all(request).expect("send");
        let mut reader = MessageReader::new(Side::Response);
        match reader.read(&mut stream) {
            Ok(Some(answer)) => (answer.bytes, false),
            Ok(None) => (Vec::new(), false),
            Err(e) => (Vec::new(), e.kind() == io::ErrorKind::ConnectionReset),
        }
    }

    /// Like `send`, but reads raw bytes until the connection ends (for truncation).
    fn send_raw(proxy: &FaultProxy, request: &[u8]) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(proxy.address)?;
        stream.write_all(request)?;
        let mut all = Vec::new();
        stream.read_to_end(&mut all)?;
        Ok(all)
    }

    #[test]
    fn a_passed_exchange_arrives_intact_and_is_logged() {
        let server = TinyServer::start(2000, false);
        let proxy = FaultProxy::start(&server.url, FaultPlan::pass());
        let (answer, reset) = send(&proxy, REQUEST);
        assert!(!reset);
        assert!(answer.starts_with(b"HTTP/1.1 200 OK") && answer.ends_with(&body(2000)));
        assert_eq!(server.received(), vec![REQUEST.to_vec()]);
        let log = proxy.log();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].method.as_str(), log[0].path.as_str(), log[0].kind()), ("POST", "/v1/sync", "sync"));
        assert_eq!((log[0].fault, log[0].status, log[0].delivered), (Fault::Pass, Some(200), answer.len()));
    }

    #[test]
    fn several_requests_on_one_connection_each_get_their_own_fault() {
        let server = TinyServer::start(10, true);
        let proxy = FaultProxy::start(
            &server.url,
            FaultPlan::scripted([Fault::Pass, Fault::Duplicate]).then(Fault::Delay(Duration::ZERO)),
        );
        let mut stream = TcpStream::connect(proxy.address).expect("connect");
        let mut reader = MessageReader::new(Side::Response);
        for _ in 0..3 {
            stream.write_all(REQUEST).expect("send");
            let answer = reader.read(&mut stream).expect("answer").expect("not closed");
            assert!(answer.bytes.ends_with(b"0\r\n\r\n"), "chunked answers are forwarded whole");
        }
        let faults: Vec<Fault> = proxy.log().iter().map(|r| r.fault).collect();
        assert_eq!(
            faults,
            vec![Fault::Pass, Fault::Duplicate, Fault::Delay(Duration::ZERO)],
            "the script, then `then`"
        );
        assert_eq!(proxy.log().iter().map(|r| r.connection).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert_eq!(server.received().len(), 4, "three requests and one duplicate");
    }

    #[test]
    fn a_delayed_exchange_waits_then_passes() {
        let server = TinyServer::start(10, false);
        let delay = Duration::from_millis(300);
        let proxy = FaultProxy::start(&server.url, FaultPlan::always(Fault::Delay(delay)));
        let started = Instant::now();
        let (answer, _) = send(&proxy, REQUEST);
        assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
        assert!(answer.ends_with(b"abcdefghij"));
        assert_eq!(server.received().len(), 1);
    }

    #[test]
    fn a_dropped_request_resets_the_connection_and_never_reaches_the_server() {
        let server = TinyServer::start(10, false);
        let proxy = FaultProxy::start(&server.url, FaultPlan::scripted([Fault::DropRequest]));
        let (answer, reset) = send(&proxy, REQUEST);
        assert!(answer.is_empty());
        assert!(reset, "the device sees a reset");
        // The next exchange passes; by its answer the server has seen only that one request.
        let (answer, _) = send(&proxy, REQUEST);
        assert!(!answer.is_empty());
        assert_eq!(server.received().len(), 1);
        let log = proxy.log();
        assert_eq!((log[0].fault, log[0].status), (Fault::DropRequest, None));
        assert!(log[0].broke() && !log[1].broke());
    }

    #[test]
    fn a_dropped_answer_reaches_the_server_but_not_the_device() {
        for how in [Cut::Reset, Cut::Close] {
            let server = TinyServer::start(500, false);
            let proxy = FaultProxy::start(&server.url, FaultPlan::always(Fault::DropAnswer(how)));
            let (answer, reset) = send(&proxy, REQUEST);
            assert!(answer.is_empty(), "{how:?}: no byte of the answer");
            assert_eq!(reset, how == Cut::Reset, "{how:?}");
            assert_eq!(server.received(), vec![REQUEST.to_vec()], "{how:?}: the server got it");
            let log = proxy.log();
            assert_eq!((log[0].status, log[0].answer_bytes, log[0].delivered), (Some(200), Some(answer_len(500)), 0));
        }
    }

    #[test]
    fn a_truncated_answer_stops_after_the_given_bytes() {
        let server = TinyServer::start(5000, false);
        let proxy = FaultProxy::start(
            &server.url,
            FaultPlan::scripted([Fault::Truncate { after: 100 }, Fault::Truncate { after: 1 << 20 }]),
        );
        let got = send_raw(&proxy, REQUEST).expect("read until close");
        assert_eq!(got.len(), 100);
        assert!(got.starts_with(b"HTTP/1.1 200 OK"));
        let got = send_raw(&proxy, REQUEST).expect("read until close");
        let whole = proxy.log()[1].answer_bytes.expect("answered");
        assert_eq!(got.len(), whole - 1, "a truncation longer than the answer still cuts its last byte");
        assert_eq!(server.received().len(), 2);
    }

    #[test]
    fn a_duplicated_request_reaches_the_server_twice_and_the_device_once() {
        let server = TinyServer::start(10, false);
        let proxy = FaultProxy::start(&server.url, FaultPlan::always(Fault::Duplicate));
        let (answer, _) = send(&proxy, REQUEST);
        assert!(answer.ends_with(b"abcdefghij"));
        assert_eq!(server.received(), vec![REQUEST.to_vec(), REQUEST.to_vec()], "the same bytes twice");
        assert_eq!(proxy.log()[0].duplicate_status, Some(200));
    }

    #[test]
    fn a_throttled_exchange_takes_as_long_as_the_link_needs() {
        let body = 20_000;
        let server = TinyServer::start(body, false);
        let link = Throttle { bytes_per_second: 50_000, latency: Duration::from_millis(100) };
        let proxy = FaultProxy::start(&server.url, FaultPlan::always(Fault::Throttle(link)));
        let started = Instant::now();
        let (answer, _) = send(&proxy, REQUEST);
        let took = started.elapsed();
        assert_eq!(answer.len(), answer_len(body), "intact");
        // Two latencies plus 20 KB at 50 KB/s (the request is small).
        assert!(took >= Duration::from_millis(200 + 400), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn a_random_plan_is_reproducible_from_its_seed_and_keeps_to_its_kinds() {
        let faults = |seed| {
            let mut plan = FaultPlan::random(seed)
                .with(0.2, Fault::DropRequest)
                .with(0.2, Fault::DropAnswer(Cut::Reset))
                .with(0.2, Fault::Duplicate)
                .only(&["sync"]);
            let mut drawn: Vec<Fault> = (0..200).map(|_| plan.next("POST", "/v1/sync")).collect();
            assert!((0..50).all(|_| plan.next("POST", "/v1/token/refresh") == Fault::Pass));
            drawn.push(plan.next("POST", "/v1/sync"));
            drawn
        };
        let a = faults(7);
        assert_eq!(a, faults(7));
        assert_ne!(a, faults(8));
        let passes = a.iter().filter(|f| **f == Fault::Pass).count();
        assert!((50..110).contains(&passes), "about 40% pass: {passes}");
        for fault in [Fault::DropRequest, Fault::DropAnswer(Cut::Reset), Fault::Duplicate] {
            assert!(a.contains(&fault), "{fault} drawn");
        }
    }
}
