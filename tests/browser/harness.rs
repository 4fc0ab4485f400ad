//! The harness against a tiny site served from this test (a form, an HttpOnly SameSite=Strict
//! cookie, a CSV download, a select, a file input, a confirm dialog): typing, clicking,
//! submitting, choosing, uploading, waiting, cookies, scripts, downloads, and failure messages
//! that explain themselves.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use pilar_tests::browser::{Browser, SameSite};
use serde_json::json;

/// The CSV the site offers for download.
const CSV: &str = "household,village\nHH-1,7315040001\nHH-2,7315040002\n";

#[test]
fn form_cookie_and_download_work_in_chromium() {
    let site = TinySite::start();
    let browser = Browser::start();

    browser.goto(&site.url("/"));
    assert_eq!(browser.title(), "Tiny site");
    assert_eq!(browser.text("h1"), "A tiny form");

    // The cookie the page set: the browser holds it with its flags, page scripts cannot read it.
    let cookie =
        browser.cookie("t").unwrap_or_else(|| panic!("no cookie t; the browser holds {:?}", browser.cookies()));
    assert_eq!(cookie.value, "1");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site, Some(SameSite::Strict), "{cookie:?}");
    assert!(!cookie.secure, "{cookie:?}");
    assert_eq!(browser.execute("return document.cookie;"), json!(""));
    assert_eq!(browser.execute("return document.title;"), json!("Tiny site"));

    // Typing replaces what the field held; clicking the button posts the form with the cookie.
    assert_eq!(browser.value("#name"), "prefilled");
    browser.fill("#name", "Wette'E");
    assert_eq!(browser.value("#name"), "Wette'E");
    browser.screenshot("form filled");
    browser.click("#send");
    assert_eq!(browser.wait_for_text("#greeting", "Wette'E"), "Hello, Wette'E");
    assert_eq!(browser.text("#cookie"), "cookie header: t=1");
    assert!(browser.wait_for_url_containing("/greet").ends_with("/greet"));
    assert!(browser.source().contains("id=\"greeting\""));

    // Submitting the form itself (as pressing Enter would), with a name outside ASCII.
    browser.goto(&site.url("/"));
    browser.fill("#name", "Regapu’u");
    browser.submit("#greet");
    browser.wait_for_text("#greeting", "Hello, Regapu’u");

    // A script in the page can fetch with the page's cookies.
    let echoed = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch('/cookie').then(r => r.text()).then(done, e => done(String(e)));",
    );
    assert_eq!(echoed, json!("t=1"));

    // The link answers with an attachment: it lands in the download directory, whole.
    browser.goto(&site.url("/"));
    browser.click("#export");
    let path = browser.wait_for_download(".csv", Duration::from_secs(10));
    assert_eq!(path.file_name().and_then(|n| n.to_str()), Some("households.csv"));
    assert_eq!(std::fs::read_to_string(&path).expect("read the download"), CSV);
    // A second download of the same file is a new file, and the wait returns that one.
    browser.click("#export");
    let again = browser.wait_for_download(".csv", Duration::from_secs(10));
    assert_ne!(again, path, "the second wait returned the first download again");
    assert_eq!(std::fs::read_to_string(&again).expect("read the second download"), CSV);
}

#[test]
fn select_upload_dialog_and_lists_work_in_chromium() {
    let site = TinySite::start();
    let browser = Browser::start();
    browser.goto(&site.url("/more"));

    browser.wait_for(".row");
    assert_eq!(browser.texts(".row"), ["Rumah tangga 1", "Rumah tangga 2"]);
    assert!(!browser.exists("#absent"));
    assert_eq!(browser.attribute("#status", "name").as_deref(), Some("status"));
    assert_eq!(browser.attribute("#status", "data-missing"), None);

    assert_eq!(browser.value("#status"), "all");
    browser.select("#status", "returned");
    assert_eq!(browser.value("#status"), "returned");

    let roster = tempfile::Builder::new().suffix(".csv").tempfile().expect("a file to upload");
    std::fs::write(roster.path(), CSV).expect("write the file to upload");
    browser.upload("#roster", roster.path());
    let file_name = roster.path().file_name().and_then(|n| n.to_str()).expect("file name");
    assert_eq!(browser.execute("return document.getElementById('roster').files[0].size;"), json!(CSV.len()));
    assert!(browser.value("#roster").ends_with(file_name), "{}", browser.value("#roster"));

    // The button asks with confirm(); the page acts only once the dialog is accepted.
    browser.click("#merge");
    browser.accept_dialog();
    browser.wait_for_text("#merged", "merged");
}

#[test]
fn a_failed_wait_names_the_selector_the_page_and_its_text() {
    let site = TinySite::start();
    let mut browser = Browser::start();
    browser.goto(&site.url("/"));
    browser.set_timeout(Duration::from_millis(300));

    let message = panic_message(|| browser.wait_for_text("h1", "a heading that is not there"));
    assert!(message.contains("`h1`"), "{message}");
    assert!(message.contains("a heading that is not there"), "{message}");
    assert!(message.contains("A tiny form"), "the message quotes what the selector matched: {message}");
    assert!(message.contains(&site.url("/")), "the message names the page: {message}");

    let message = panic_message(|| browser.click("#missing"));
    assert!(message.contains("no element matches `#missing`"), "{message}");
    assert!(message.contains("Download the households"), "the message quotes the page's text: {message}");

    let message = panic_message(|| browser.wait_for_download(".xlsx", Duration::from_millis(200)));
    assert!(message.contains(".xlsx"), "{message}");
}

#[test]
fn a_failed_test_leaves_its_message_and_page_beside_its_screenshots() {
    let site = TinySite::start();
    let message = panic_message(|| {
        let mut browser = Browser::start();
        browser.set_live_failure_report(false);
        browser.goto(&site.url("/"));
        browser.set_timeout(Duration::from_millis(300));
        browser.wait_for_text("h1", "a heading that is not there");
    });
    assert!(message.contains("a heading that is not there"), "{message}");
    let dir = this_tests_screenshots();
    let kept = std::fs::read_to_string(dir.join("failure.txt"))
        .unwrap_or_else(|e| panic!("no failure.txt in {}: {e}", dir.display()));
    assert!(kept.contains("a heading that is not there"), "the panic's message: {kept}");
    assert!(kept.contains(&site.url("/")) && kept.contains("A tiny form"), "the page and its text: {kept}");
    assert!(dir.join("01-failure.png").is_file(), "the failure screenshot");
}

#[test]
fn a_failure_whose_screenshot_cannot_be_saved_still_reports_its_message() {
    let site = TinySite::start();
    // The test's screenshot directory is a file, so nothing can be saved there. The teardown of
    // a failing test used to panic on that while the test's panic unwound, which aborts the whole
    // test process: every test's captured message was lost.
    let dir = this_tests_screenshots();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(pilar_tests::browser::screenshot_root()).expect("the screenshot root");
    std::fs::write(&dir, "not a directory").expect("block the screenshot directory");
    let message = panic_message(|| {
        let mut browser = Browser::start();
        browser.set_live_failure_report(false);
        browser.goto(&site.url("/"));
        browser.set_timeout(Duration::from_millis(300));
        browser.wait_for_text("h1", "a heading that is not there");
    });
    let _ = std::fs::remove_file(&dir);
    assert!(message.contains("a heading that is not there"), "{message}");
}

/// Where this test's screenshots go (the harness files them under the test thread's name).
fn this_tests_screenshots() -> std::path::PathBuf {
    let name = std::thread::current().name().expect("libtest names test threads").replace("::", ".");
    pilar_tests::browser::screenshot_root().join(name)
}

/// What `action` panicked with; fails the test when it did not panic.
fn panic_message<T>(action: impl FnOnce() -> T) -> String {
    let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(action)) else {
        panic!("the action should have failed");
    };
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => panic.downcast::<&str>().map(|m| m.to_string()).unwrap_or_default(),
    }
}

/// A tiny HTTP/1.1 site on 127.0.0.1 (port 0), one thread per connection, `Connection: close`.
/// It lives as long as the test process (the thread accepts until then).
struct TinySite {
    base: String,
}

impl TinySite {
    fn start() -> TinySite {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tiny site");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || serve(stream));
            }
        });
        TinySite { base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Answer one request. Chromium may open a connection and send nothing (a preconnect); that
/// thread ends when the browser closes it.
fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut content_length = 0;
    let mut cookie = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.trim().parse().unwrap_or(0),
            "cookie" => cookie = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, headers, content) = match (method, path) {
        ("GET", "/") => (
            "200 OK",
            "Content-Type: text/html; charset=utf-8\r\nSet-Cookie: t=1; HttpOnly; SameSite=Strict\r\n",
            FORM_PAGE.to_string(),
        ),
        ("GET", "/more") => ("200 OK", "Content-Type: text/html; charset=utf-8\r\n", MORE_PAGE.to_string()),
        ("POST", "/greet") => {
            let form = String::from_utf8_lossy(&body).to_string();
            let name = form.split('&').find_map(|pair| pair.strip_prefix("name=")).map(form_decode).unwrap_or_default();
            let page = format!(
                "<!doctype html><title>Greeted</title><p id=\"greeting\">Hello, {}</p><p id=\"cookie\">cookie header: {}</p>",
                html_escape(&name),
                html_escape(&cookie)
            );
            ("200 OK", "Content-Type: text/html; charset=utf-8\r\n", page)
        }
        ("GET", "/cookie") => ("200 OK", "Content-Type: text/plain\r\n", cookie.clone()),
        ("GET", "/export.csv") => (
            "200 OK",
            "Content-Type: text/csv\r\nContent-Disposition: attachment; filename=\"households.csv\"\r\n",
            CSV.to_string(),
        ),
        _ => ("404 Not Found", "Content-Type: text/plain\r\n", "not found".to_string()),
    };
    let mut stream = reader.into_inner();
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{content}",
        content.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>Tiny site</title></head>
<body>
<h1>A tiny form</h1>
<form id="greet" method="post" action="/greet">
  <label>Name <input id="name" name="name" value="prefilled"></label>
  <button id="send" type="submit">Send</button>
</form>
<p><a id="export" href="/export.csv">Download the households</a></p>
</body></html>"#;

const MORE_PAGE: &str = r#"<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>More</title></head>
<body>
<ul><li class="row">Rumah tangga 1</li><li class="row">Rumah tangga 2</li></ul>
<select id="status" name="status"><option value="all">Semua</option><option value="returned">Dikembalikan</option></select>
<input type="file" id="roster">
<button id="merge" onclick="if (confirm('Gabungkan?')) document.getElementById('merged').textContent = 'merged';">Gabungkan</button>
<p id="merged"></p>
</body></html>"#;

/// Decode an `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte).
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
