//! The server process: one per data directory, a graceful stop on SIGTERM (requests in flight
//! finish, idle connections do not hold it up, a request still running at the deadline is cut),
//! and a restart on the same data directory after SIGKILL.

use pilar_tests::{SERVER_EXIT_TIMEOUT, TEST_ADMIN_PASSWORD, TestServer, binary, wait_or_kill};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Safety net for socket reads: a test waits on the server's bytes, never on a clock, but must
/// fail rather than hang if they never come.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn connect(server: &TestServer) -> TcpStream {
    let address = server.url().strip_prefix("http://").expect("http URL");
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
    stream
}

/// Read from `stream` until `marker` has arrived; returns everything read.
fn read_until(stream: &mut TcpStream, marker: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(marker) {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {marker:?}: {e}; got {:?}", String::from_utf8_lossy(&seen)));
        assert!(n > 0, "connection closed before {marker:?}; got {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Read until the server closes the connection; returns everything read.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("waiting for the server to close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// A keep-alive connection that has had one answer and now sits idle.
fn idle_connection(server: &TestServer) -> TcpStream {
    let mut idle = connect(server);
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: pilar\r\n\r\n").expect("write");
    read_until(&mut idle, r#"{"status":"ok"}"#);
    idle
}

/// A login whose handler is running and waiting for its body: the head is sent with
/// `Expect: 100-continue`, and the server's `100 Continue` proves the handler reads the body.
/// Returns the connection and the body still to send.
fn request_in_flight(server: &TestServer) -> (TcpStream, String) {
    let body = format!(
        r#"{{"user":"admin","password":"{TEST_ADMIN_PASSWORD}","device":"{}","device_name":"tablet"}}"#,
        uuid::Uuid::new_v4()
    );
    let mut stream = connect(server);
    let head = format!(
        "POST /v1/login HTTP/1.1\r\nHost: pilar\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    read_until(&mut stream, "100 Continue");
    (stream, body)
}

#[test]
fn a_second_server_on_the_same_data_directory_stops_at_once_and_the_first_keeps_serving() {
    let server = TestServer::start();
    if server.backend() == pilar_tests::Backend::Postgres {
        // Servers on PostgreSQL keep nothing in a data directory and share their database
        // (tests/e2e/several_servers.rs); the lock guards SQLite's one writer.
        eprintln!("the data directory lock is SQLite's: nothing to check on PostgreSQL");
        return;
    }
    let mut second = Command::new(binary("pilar-server"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(server.data_dir())
        .env("PILAR_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD)
        .env_remove("PILAR_LISTEN")
        .env_remove("PILAR_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second pilar-server");
    // If the lock failed, the second server would serve until killed.
    let status = wait_or_kill(&mut second, SERVER_EXIT_TIMEOUT).expect("the second server exits at once");
    let (mut stdout, mut stderr) = (String::new(), String::new());
    second.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read stdout");
    second.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(!status.success(), "the second server must not start; stdout: {stdout}");
    assert!(stdout.is_empty(), "nothing is served: {stdout}");
    let dir = server.data_dir().display().to_string();
    assert!(stderr.contains(&dir), "the message names the data directory: {stderr}");
    assert!(stderr.contains(&format!("pid {}", server.pid())), "and the other server's pid: {stderr}");
    assert!(stderr.contains("stop that server first"), "and what to do: {stderr}");

    let mut health = connect(&server);
    health.write_all(b"GET /health HTTP/1.1\r\nHost: pilar\r\n\r\n").expect("write");
    read_until(&mut health, r#"{"status":"ok"}"#);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    let mut server = TestServer::start();
    let mut idle = idle_connection(&server);
    let (mut in_flight, body) = request_in_flight(&server);

    server.signal("TERM");
    // The idle keep-alive connection is closed at once: the stop has begun.
    assert_eq!(read_to_close(&mut idle), "", "an idle connection gets no answer, only the close");

    // The request that was in flight when the stop began still gets its whole answer.
    in_flight.write_all(body.as_bytes()).expect("send the rest of the body");
    let answer = read_to_close(&mut in_flight);
    assert!(answer.contains("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("access_token"), "{answer}");

    let status = server.wait_exit(SERVER_EXIT_TIMEOUT);
    assert!(status.success(), "a requested stop is a clean exit: {status}");
    let log = server.log();
    assert!(log.contains("stopped") && log.contains("requests_cut=0"), "{log}");
}

#[test]
fn a_request_still_running_at_the_deadline_is_cut_and_the_server_exits() {
    let mut server = TestServer::start_with(&["--shutdown-grace-seconds", "1"], Some(TEST_ADMIN_PASSWORD));
    let _idle = idle_connection(&server);
    // Its body never comes: without the deadline the server would wait for it forever.
    let (mut in_flight, _body) = request_in_flight(&server);
    let stopping = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(SERVER_EXIT_TIMEOUT);
    let took = stopping.elapsed();
    assert!(status.success(), "{status}");
    assert!(took >= Duration::from_secs(1), "the request had its grace period first: {took:?}");
    assert_eq!(read_to_close(&mut in_flight), "", "the cut request gets no answer");
    let log = server.log();
    assert!(log.contains("stopped") && log.contains("requests_cut=1"), "{log}");
}

#[test]
fn a_killed_server_restarts_on_its_data_directory_with_its_accounts() {
    let mut server = TestServer::start();
    let admin = pilar_tests::TestDevice::new();
    admin.login(&server, "admin", TEST_ADMIN_PASSWORD);
    let url = server.url().to_string();
    server.kill();
    server.restart();
    assert_eq!(server.url(), url, "same address");
    // The device's session (tokens signed with the kept key, its refresh token) still works.
    let users = admin.json(&["admin", "user", "list"]);
    assert!(users.to_string().contains("admin"), "{users}");
    assert_eq!(server.terminate().code(), Some(0));
}
