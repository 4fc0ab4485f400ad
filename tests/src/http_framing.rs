//! HTTP/1.1 message framing for the harness's loopback proxies (the byte-counting proxy of
//! `pilar-bench` and [`crate::faults::FaultProxy`]): where a request or response head ends and how
//! long its body is (`Content-Length`, chunked, or until the connection closes). Only framing: no
//! header is interpreted beyond what finds the end of a message.

/// Longest request or response head (or chunk line) the parser follows; a longer one makes the
/// framing [`Parser::is_lost`].
pub const MAX_HEAD: usize = 64 * 1024;

/// Which way the messages a parser reads travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Requests, from the device to the server.
    Request,
    /// Responses, from the server to the device.
    Response,
}

/// A parsed message head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Request method (`POST`); empty for responses.
    pub method: String,
    /// Request path without the query string (`/v1/sync`); empty for responses.
    pub path: String,
    /// Response status; 0 for requests.
    pub status: u16,
    /// A 1xx response, which precedes the final response to the same request.
    pub interim: bool,
    /// Bytes of the head on the wire (start line, headers, blank line).
    pub len: u64,
}

/// What the parser recognised in the bytes it was fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message head completed.
    Head(Head),
    /// Bytes of the current message after its head (body, chunk framing, trailers).
    Body(u64),
    /// The current message is complete; the next byte starts a new message.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    ChunkLine,
    ChunkData(u64),
    Trailer,
    UntilClose,
    /// Framing the parser does not follow: later bytes are body bytes of nothing in particular.
    Lost,
}

/// An incremental HTTP/1.1 framing parser for one direction of one connection.
#[derive(Debug)]
pub struct Parser {
    side: Side,
    state: State,
    line: Vec<u8>,
    bodiless_response: bool,
}

impl Parser {
    /// A parser at the start of a connection.
    pub fn new(side: Side) -> Parser {
        Parser { side, state: State::Head, line: Vec::new(), bodiless_response: false }
    }

    /// The direction this parser reads.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The next response answers a `HEAD` request: it has no body whatever its headers say.
    pub fn expect_bodiless_response(&mut self) {
        self.bodiless_response = true;
    }

    /// Whether the framing could not be followed (a head longer than [`MAX_HEAD`], a bad chunk
    /// size); everything after that is reported as body bytes.
    pub fn is_lost(&self) -> bool {
        self.state == State::Lost
    }

    /// Whether the parser is between messages (nothing of a next message seen yet).
    pub fn between_messages(&self) -> bool {
        self.state == State::Head && self.line.is_empty()
    }

    /// Feed bytes; every event they complete, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            pos += self.step(&data[pos..], &mut events);
        }
        events
    }

    /// Feed bytes up to the end of the current message at most: how many of `data` were consumed,
    /// and the events (the last is [`Event::End`] when the message completed within `data`).
    pub fn feed_message(&mut self, data: &[u8]) -> (usize, Vec<Event>) {
        let mut events = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            pos += self.step(&data[pos..], &mut events);
            if events.last() == Some(&Event::End) {
                break;
            }
        }
        (pos, events)
    }

    /// The connection closed: [`Event::End`] if that ends the current message (a response
    /// without a length), `None` otherwise (then a message was cut short, or none had begun).
    pub fn finish(&mut self) -> Option<Event> {
        if self.state == State::UntilClose {
            self.state = State::Head;
            Some(Event::End)
        } else {
            None
        }
    }

    /// Consume at least one byte of `data` (non-empty); push the events it completes.
    fn step(&mut self, data: &[u8], events: &mut Vec<Event>) -> usize {
        match self.state {
            State::Head => {
                self.line.push(data[0]);
                if self.line.ends_with(b"\r\n\r\n") {
                    let head = std::mem::take(&mut self.line);
                    let (parsed, next) = self.parse_head(&head);
                    events.push(Event::Head(parsed));
                    self.state = next;
                    if next == State::Head {
                        events.push(Event::End);
                    }
                } else if self.line.len() > MAX_HEAD {
                    events.push(Event::Body(self.line.len() as u64));
                    self.line.clear();
                    self.state = State::Lost;
                }
                1
            }
            State::Body(left) => {
                let take = left.min(data.len() as u64);
                events.push(Event::Body(take));
                if take == left {
                    self.state = State::Head;
                    events.push(Event::End);
                } else {
                    self.state = State::Body(left - take);
                }
                take as usize
            }
            State::ChunkLine | State::Trailer => {
                self.line.push(data[0]);
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
                        _ if line.len() == 2 => {
                            events.push(Event::End);
                            State::Head
                        }
                        _ => State::Trailer,
                    };
                } else if self.line.len() > MAX_HEAD {
                    self.line.clear();
                    self.state = State::Lost;
                }
                1
            }
            State::ChunkData(left) => {
                let take = left.min(data.len() as u64);
                events.push(Event::Body(take));
                self.state = if take == left { State::ChunkLine } else { State::ChunkData(left - take) };
                take as usize
            }
            State::UntilClose | State::Lost => {
                events.push(Event::Body(data.len() as u64));
                data.len()
            }
        }
    }

    /// The head's fields and the state for what follows it.
    fn parse_head(&mut self, head: &[u8]) -> (Head, State) {
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
            Some(0) | None => State::Head,
            Some(n) => State::Body(n),
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
                let bodiless = std::mem::take(&mut self.bodiless_response);
                if parsed.interim {
                    // The final response to the same request is still to come.
                    self.bodiless_response = bodiless;
                    State::Head
                } else if bodiless || parsed.status == 204 || parsed.status == 304 {
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

/// What a request is for, by method and path: `refresh`, `login`, `pack`, `sync`, `photo` or `other`.
pub fn request_kind(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("POST", "/v1/token/refresh") => "refresh",
        ("POST", "/v1/login") => "login",
        ("POST", "/v1/sync") => "sync",
        ("POST", "/v1/sync/forms") => "forms",
        ("GET", p) if p.starts_with("/v1/packs/") => "pack",
        (_, p) if p.starts_with("/v1/households/") && p.contains("/photos") => "photo",
        _ => "other",
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

    fn sizes(events: &[Event]) -> (usize, u64, usize) {
        let heads = events.iter().filter(|e| matches!(e, Event::Head(_))).count();
        let body = events.iter().map(|e| if let Event::Body(n) = e { *n } else { 0 }).sum();
        let ends = events.iter().filter(|e| **e == Event::End).count();
        (heads, body, ends)
    }

    #[test]
    fn requests_with_bodies_split_anywhere_are_framed() {
        let wire =
            b"POST /v1/sync HTTP/1.1\r\ncontent-length: 5\r\n\r\n\r\n\r\nxGET /v1/packs/1?after=2 HTTP/1.1\r\n\r\n";
        for split in 0..wire.len() {
            let mut p = Parser::new(Side::Request);
            let mut events = p.feed(&wire[..split]);
            events.extend(p.feed(&wire[split..]));
            assert_eq!(sizes(&events), (2, 5, 2), "split at {split}");
            assert!(p.between_messages());
        }
    }

    #[test]
    fn chunked_responses_are_framed() {
        let wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let mut p = Parser::new(Side::Response);
        let events = p.feed(wire);
        assert_eq!((sizes(&events).0, sizes(&events).2), (2, 2));
        assert!(p.between_messages());
    }

    #[test]
    fn feed_message_stops_at_the_end_of_one_message() {
        let first = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc".as_slice();
        let wire = [first, b"HTTP/1.1 200 OK\r\n\r\n".as_slice()].concat();
        let mut p = Parser::new(Side::Response);
        let (used, events) = p.feed_message(&wire);
        assert_eq!(used, first.len());
        assert_eq!(events.last(), Some(&Event::End));
    }

    #[test]
    fn a_response_without_length_ends_when_the_connection_closes() {
        let mut p = Parser::new(Side::Response);
        let (_, events) = p.feed_message(b"HTTP/1.0 200 OK\r\n\r\nall of it");
        assert!(!events.contains(&Event::End));
        assert_eq!(p.finish(), Some(Event::End));
        let mut cut = Parser::new(Side::Response);
        cut.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
        assert_eq!(cut.finish(), None, "a body cut short is not a complete message");
    }

    #[test]
    fn the_answer_to_head_has_no_body_and_interim_responses_keep_waiting() {
        let mut p = Parser::new(Side::Response);
        p.expect_bodiless_response();
        let events = p.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n");
        assert_eq!(sizes(&events), (2, 0, 2));
        assert!(p.between_messages());
    }
}
