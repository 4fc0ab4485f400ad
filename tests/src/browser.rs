//! A real headless Chromium for browser tests, driven with WebDriver through `chromedriver`
//! (Debian's `chromium` and `chromium-driver` packages; `tests/run` installs them as root).
//!
//! [`Browser`] is synchronous, for plain `#[test]` functions: it owns a small tokio runtime and a
//! [`fantoccini`] client over plain HTTP on loopback (no TLS crate). Every method that needs an
//! element waits for it by polling, up to [`Browser::timeout`] (30 s unless set: generous, because
//! a passing wait ends as soon as its condition holds, and a debug server, Chromium and the tests
//! share two cores), so a test never sleeps; on failure it panics with the selector, the page's
//! URL and the start of its text.
//!
//! A failing test's message is never lost to the teardown: a browser dropped while its test
//! panics first writes the panic's message (with the page's URL and text) to the real stderr,
//! past libtest's capture, and to `failure.txt` beside the screenshots, saves a `failure`
//! screenshot, and only then ends the session; nothing in that teardown can panic again (a panic
//! while unwinding would abort the whole test process and every captured message with it).
//!
//! Screenshots go to `<target dir>/browser-screenshots/<test name>/<NN>-<name>.png` (the target
//! dir is the one holding the test binary), numbered in the order a test takes them. Downloads go
//! to a temporary directory of the browser's own ([`Browser::wait_for_download`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The Chromium binary Debian's `chromium` package installs (a launcher script).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long element waits last unless [`Browser::set_timeout`] changes it. A wait that succeeds
/// returns as soon as its condition holds, so only a failing test pays for a generous deadline;
/// under load (a debug server, Chromium and a build on two cores) a page can take seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The screen the office page is made for (issue 18: an old laptop at 1366×768).
pub const WINDOW_SIZE: (u32, u32) = (1366, 768);

/// How long chromedriver may take to start and Chromium to open a session. A safety net so a
/// broken installation fails the test instead of hanging it, not a synchronisation.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often waits poll the page (or the download directory).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long a page may take to load after `goto` or a click that navigates.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer than its own deadline a WebDriver exchange may take before the browser counts
/// as hung (see [`Browser::run`]).
const ANSWER_MARGIN: Duration = Duration::from_secs(60);

/// How long the failure context (URL and text) and closing the session may take on the way out.
const QUIET_TIMEOUT: Duration = Duration::from_secs(5);

/// How many characters of the page's text a failure message quotes.
const EXCERPT_CHARS: usize = 600;

/// `<target dir>/browser-screenshots`: the target dir is found from the test binary's path
/// (`<target>/<profile>/deps/<binary>`), so screenshots land in the build directory whatever
/// `CARGO_TARGET_DIR` says.
pub fn screenshot_root() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    // Now the profile directory (`debug`, `release`); its parent is the target dir.
    dir.pop();
    dir.join("browser-screenshots")
}

/// A cookie as the browser holds it (WebDriver's view, which includes HttpOnly cookies that
/// page scripts cannot see).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserCookie {
    /// The cookie's name.
    pub name: String,
    /// The cookie's value.
    pub value: String,
    /// The `Path` attribute, when the browser reports it.
    pub path: Option<String>,
    /// The `Domain` attribute, when the browser reports it.
    pub domain: Option<String>,
    /// `HttpOnly`: page scripts cannot read it.
    pub http_only: bool,
    /// `Secure`: sent only over HTTPS.
    pub secure: bool,
    /// The `SameSite` attribute, when the browser reports one.
    pub same_site: Option<SameSite>,
}

/// A cookie's `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with requests from the same site.
    Strict,
    /// Also sent with top-level navigations from other sites.
    Lax,
    /// Sent with every request (needs `Secure`).
    None,
}

/// A headless Chromium session and the `chromedriver` process serving it, both ended on drop.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    /// `None` only while dropping.
    client: Option<Client>,
    chromedriver: Child,
    /// Holds Chromium's profile (`profile/`), the downloads (`downloads/`) and chromedriver's
    /// log (`chromedriver.log`); removed on drop, after both processes ended.
    dir: TempDir,
    test_name: String,
    timeout: Duration,
    /// Downloads [`Browser::wait_for_download`] already returned, so the next call waits for a
    /// new one.
    returned_downloads: RefCell<HashSet<PathBuf>>,
    /// Whether a failure is also written to the real stderr at once (see [`Browser::drop`]).
    live_failure_report: bool,
}

impl Browser {
    /// Start `chromedriver` on a free loopback port and a headless Chromium session with a
    /// 1366×768 window, a fresh profile and its own download directory.
    ///
    /// Panics, naming the Debian packages to install, when Chromium or chromedriver is missing.
    /// Screenshots are filed under the name of the test thread (libtest names it after the
    /// test, e.g. `health::health_json_is_shown`).
    pub fn start() -> Browser {
        remember_panic_messages();
        let chromedriver_path = find_chromedriver();
        let dir = tempfile::Builder::new().prefix("pilar-browser.").tempdir().expect("browser temp dir");
        let profile = dir.path().join("profile");
        let downloads = dir.path().join("downloads");
        std::fs::create_dir(&profile).expect("browser profile dir");
        std::fs::create_dir(&downloads).expect("browser download dir");
        let log_path = dir.path().join("chromedriver.log");

        let (mut chromedriver, port) = spawn_chromedriver(&chromedriver_path, &log_path);
        let driver_url = format!("http://127.0.0.1:{port}");
        if let Err(problem) = wait_until_ready(&driver_url, &mut chromedriver) {
            stop(&mut chromedriver);
            panic!("chromedriver at {driver_url} {problem}; its log:\n{}", read_tail(&log_path));
        }

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let capabilities = capabilities(&profile, &downloads);
        let session = runtime.block_on(async {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(capabilities);
            let connect = builder.connect(&driver_url);
            let client = tokio::time::timeout(START_TIMEOUT, connect)
                .await
                .map_err(|_| format!("no session within {START_TIMEOUT:?}"))?
                .map_err(|e| format!("no session: {e}"))?;
            let timeouts = TimeoutConfiguration::new(Some(PAGE_LOAD_TIMEOUT), Some(PAGE_LOAD_TIMEOUT), None);
            client.update_timeouts(timeouts).await.map_err(|e| format!("setting timeouts failed: {e}"))?;
            Ok::<_, String>(client)
        });
        let client = match session {
            Ok(client) => client,
            Err(problem) => {
                stop(&mut chromedriver);
                panic!(
                    "chromedriver started, but Chromium ({CHROMIUM}) did not: {problem}; chromedriver's log:\n{}",
                    read_tail(&log_path)
                );
            }
        };
        Browser {
            runtime,
            client: Some(client),
            chromedriver,
            dir,
            test_name: current_test_name(),
            timeout: DEFAULT_TIMEOUT,
            returned_downloads: RefCell::new(HashSet::new()),
            live_failure_report: true,
        }
    }

    /// How long element waits last (30 s unless set).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Change how long element waits last, e.g. for a page that builds a large export.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether a failing test's message also goes to the real stderr the moment the browser is
    /// dropped (on unless turned off: for the harness's own tests that fail on purpose, which
    /// would otherwise print their expected failures into every run). `failure.txt` and the
    /// `failure` screenshot are kept either way.
    pub fn set_live_failure_report(&mut self, on: bool) {
        self.live_failure_report = on;
    }

    /// Open `url` and wait for the page to load.
    pub fn goto(&self, url: &str) {
        if let Err(e) = self.run(self.client().goto(url)) {
            self.fail(&format!("could not open {url}: {e}"));
        }
    }

    /// The URL of the page shown now.
    pub fn current_url(&self) -> String {
        match self.run(self.client().current_url()) {
            Ok(url) => url.to_string(),
            Err(e) => panic!("browser: could not read the current URL: {e}"),
        }
    }

    /// The page's title (`document.title`).
    pub fn title(&self) -> String {
        self.run(self.client().title()).unwrap_or_else(|e| self.fail(&format!("could not read the title: {e}")))
    }

    /// The page's HTML as the browser holds it now (after scripts ran).
    pub fn source(&self) -> String {
        self.run(self.client().source()).unwrap_or_else(|e| self.fail(&format!("could not read the page source: {e}")))
    }

    /// Wait until an element matches the CSS selector `css`; panic after the timeout.
    pub fn wait_for(&self, css: &str) {
        self.find(css);
    }

    /// Wait until an element matching `css` has text containing `needle`; return that element's
    /// whole text. Panics after the timeout, quoting the texts the selector matched last.
    pub fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            let texts = self.try_texts(css);
            if let Ok(texts) = &texts
                && let Some(text) = texts.iter().find(|text| text.contains(needle))
            {
                return text.clone();
            }
            if Instant::now() >= deadline {
                let seen = match texts {
                    Ok(texts) if texts.is_empty() => "no element matched".to_string(),
                    Ok(texts) => format!("the matching elements' texts were {texts:?}"),
                    Err(e) => format!("the last attempt failed: {e}"),
                };
                self.fail(&format!("no `{css}` with text containing {needle:?} within {:?}: {seen}", self.timeout));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Wait until the current URL contains `needle` (e.g. after a form's redirect); return the URL.
    pub fn wait_for_url_containing(&self, needle: &str) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            let url = self.run(self.client().current_url()).map(|url| url.to_string());
            if let Ok(url) = &url
                && url.contains(needle)
            {
                return url.clone();
            }
            if Instant::now() >= deadline {
                self.fail(&format!("the URL did not come to contain {needle:?} within {:?}", self.timeout));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether an element matches `css` now (no waiting: for checking that something is absent,
    /// after waiting for something that shows the page is ready).
    pub fn exists(&self, css: &str) -> bool {
        match self.run(self.client().find_all(Locator::Css(css))) {
            Ok(found) => !found.is_empty(),
            Err(e) => self.fail(&format!("could not look for `{css}`: {e}")),
        }
    }

    /// The visible text of the first element matching `css` (waiting for it).
    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.run(element.text()).unwrap_or_else(|e| self.fail(&format!("could not read the text of `{css}`: {e}")))
    }

    /// The visible texts of every element matching `css` now, in document order (e.g. a table's
    /// rows: `texts("tbody tr")`). No waiting: wait for one first.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.try_texts(css).unwrap_or_else(|e| self.fail(&format!("could not read the texts of `{css}`: {e}")))
    }

    /// The current value of the input, select or textarea matching `css` (its `value` property,
    /// which follows typing, unlike the attribute).
    pub fn value(&self, css: &str) -> String {
        let element = self.find(css);
        match self.run(element.prop("value")) {
            Ok(value) => value.unwrap_or_default(),
            Err(e) => self.fail(&format!("could not read the value of `{css}`: {e}")),
        }
    }

    /// The attribute `name` of the first element matching `css` (waiting for it), if it has one.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css);
        self.run(element.attr(name)).unwrap_or_else(|e| self.fail(&format!("could not read `{css}`[{name}]: {e}")))
    }

    /// Clear the field matching `css` and type `text` into it, key by key as a person would.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        if let Err(e) = self.run(element.clear()) {
            self.fail(&format!("could not clear `{css}`: {e}"));
        }
        if let Err(e) = self.run(element.send_keys(text)) {
            self.fail(&format!("could not type into `{css}`: {e}"));
        }
    }

    /// Choose the option with value `value` in the `<select>` matching `css`.
    pub fn select(&self, css: &str, value: &str) {
        let element = self.find(css);
        if let Err(e) = self.run(element.select_by_value(value)) {
            self.fail(&format!("could not choose {value:?} in `{css}`: {e}"));
        }
    }

    /// Put the file at `path` into the file input matching `css` (as choosing it in the dialog
    /// would).
    pub fn upload(&self, css: &str, path: &Path) {
        let element = self.find(css);
        let path = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("upload: {}: {e}", path.display()));
        if let Err(e) = self.run(element.send_keys(&path.to_string_lossy())) {
            self.fail(&format!("could not choose {} in `{css}`: {e}", path.display()));
        }
    }

    /// Click the element matching `css`, waiting until it exists and can be clicked (not covered,
    /// not hidden). A click that navigates returns once the new page has loaded.
    pub fn click(&self, css: &str) {
        let deadline = Instant::now() + self.timeout;
        loop {
            let element = self.find(css);
            match self.run(element.click()) {
                Ok(()) => return,
                Err(e)
                    if Instant::now() < deadline
                        && (e.is_element_not_interactable()
                            || matches!(&e, CmdError::Standard(w) if w.error == ErrorStatus::ElementClickIntercepted)
                            || e.is_stale_element_reference()) => {}
                Err(e) => self.fail(&format!("could not click `{css}`: {e}")),
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Submit the form matching `css` as its submit button would (`requestSubmit()`: the form's
    /// validation and submit handlers run).
    pub fn submit(&self, css: &str) {
        let form = self.find(css);
        let form = serde_json::to_value(&form).expect("a WebDriver element reference is JSON");
        let submitted = self.run(self.client().execute("arguments[0].requestSubmit();", vec![form]));
        if let Err(e) = submitted {
            self.fail(&format!("could not submit `{css}`: {e}"));
        }
    }

    /// Accept the page's `alert`/`confirm` dialog (waiting for it).
    pub fn accept_dialog(&self) {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.run(self.client().accept_alert()) {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline && e.is_no_such_alert() => {}
                Err(e) => self.fail(&format!("no dialog to accept within {:?}: {e}", self.timeout)),
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Every cookie the browser holds for the current page, HttpOnly ones included.
    pub fn cookies(&self) -> Vec<BrowserCookie> {
        let cookies = self
            .run(self.client().get_all_cookies())
            .unwrap_or_else(|e| self.fail(&format!("could not read the cookies: {e}")));
        cookies
            .into_iter()
            .map(|cookie| BrowserCookie {
                name: cookie.name().to_string(),
                value: cookie.value().to_string(),
                path: cookie.path().map(str::to_string),
                domain: cookie.domain().map(str::to_string),
                http_only: cookie.http_only().unwrap_or(false),
                secure: cookie.secure().unwrap_or(false),
                same_site: cookie.same_site().map(|same_site| {
                    if same_site.is_strict() {
                        SameSite::Strict
                    } else if same_site.is_lax() {
                        SameSite::Lax
                    } else {
                        SameSite::None
                    }
                }),
            })
            .collect()
    }

    /// The cookie named `name` for the current page, if the browser holds one.
    pub fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().into_iter().find(|cookie| cookie.name == name)
    }

    /// Run `script` as the body of a function in the page and return what it returns, e.g.
    /// `execute("return document.title")`.
    pub fn execute(&self, script: &str) -> Value {
        self.run(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| self.fail(&format!("script failed: {e}\nscript: {script}")))
    }

    /// Run an asynchronous `script` in the page: it gets a callback as its last argument
    /// (`arguments[arguments.length - 1]`) and the call returns what the script passes to it,
    /// e.g. a `fetch` made with the page's cookies:
    ///
    /// ```text
    /// const done = arguments[arguments.length - 1];
    /// fetch('/v1/x', {method: 'POST'}).then(r => done(r.status), e => done(String(e)));
    /// ```
    pub fn execute_async(&self, script: &str) -> Value {
        self.run(self.client().execute_async(script, Vec::new()))
            .unwrap_or_else(|e| self.fail(&format!("script failed: {e}\nscript: {script}")))
    }

    /// Save a PNG of the window as `<target dir>/browser-screenshots/<test>/<NN>-<name>.png`
    /// and return its path; `NN` counts this test's screenshots from 01.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .run(self.client().screenshot())
            .unwrap_or_else(|e| self.fail(&format!("could not take the screenshot {name:?}: {e}")));
        save_screenshot(&self.test_name, name, &png).unwrap_or_else(|e| panic!("browser: {e}"))
    }

    /// The directory downloads land in (the browser's own, removed on drop).
    pub fn download_dir(&self) -> PathBuf {
        self.dir.path().join("downloads")
    }

    /// Wait until a download whose file name is `name` or ends with it (an extension such as
    /// `.csv`) has finished, and return its path. A download is finished when its file exists,
    /// Chromium has no partial (`.crdownload`) file left, and the file's size is the same at two
    /// polls in a row (Chromium renames the partial file when it is complete; the second look
    /// guards against a file still being flushed). Each call returns a file no earlier call
    /// returned, so a test can download twice. Panics after `timeout`, listing the files.
    pub fn wait_for_download(&self, name: &str, timeout: Duration) -> PathBuf {
        let dir = self.download_dir();
        let deadline = Instant::now() + timeout;
        // The finished-looking file of the previous poll, with its size then.
        let mut previous: Option<(PathBuf, u64)> = None;
        loop {
            let files = list_files(&dir);
            let partial = files.iter().any(|file| file.ends_with(".crdownload"));
            let found = files.iter().map(|file| dir.join(file)).find(|path| {
                let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
                (file == name || file.ends_with(name)) && !self.returned_downloads.borrow().contains(path)
            });
            let seen = found.filter(|_| !partial).and_then(|path| {
                let size = std::fs::metadata(&path).ok()?.len();
                Some((path, size))
            });
            if let Some(seen) = seen {
                if previous.as_ref() == Some(&seen) {
                    let (path, _) = seen;
                    self.returned_downloads.borrow_mut().insert(path.clone());
                    return path;
                }
                previous = Some(seen);
            } else {
                previous = None;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "no finished download named {name:?} (or ending so) within {timeout:?}; the download \
                     directory holds {files:?}"
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The first element matching `css`, waiting up to the timeout for it to appear.
    fn find(&self, css: &str) -> fantoccini::elements::Element {
        let wait = self.client().wait().at_most(self.timeout).every(POLL_INTERVAL).for_element(Locator::Css(css));
        match self.run(wait) {
            Ok(element) => element,
            Err(CmdError::WaitTimeout) => self.fail(&format!("no element matches `{css}` after {:?}", self.timeout)),
            Err(e) => self.fail(&format!("could not look for `{css}`: {e}")),
        }
    }

    fn try_texts(&self, css: &str) -> Result<Vec<String>, CmdError> {
        self.run(async {
            let mut texts = Vec::new();
            for element in self.client().find_all(Locator::Css(css)).await? {
                texts.push(element.text().await?);
            }
            Ok(texts)
        })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser session is open until drop")
    }

    /// Run one WebDriver exchange (or a wait made of several) to its end. chromedriver answers
    /// every command within the page-load or script timeout, and a wait ends at its own deadline;
    /// a browser that stops answering altogether fails the test after [`ANSWER_MARGIN`] more,
    /// instead of hanging the run (a run killed from outside loses every captured message).
    fn run<F: Future>(&self, future: F) -> F::Output {
        let limit = self.timeout.max(PAGE_LOAD_TIMEOUT) + ANSWER_MARGIN;
        match self.runtime.block_on(async { tokio::time::timeout(limit, future).await }) {
            Ok(output) => output,
            Err(_) => panic!("browser: chromedriver did not answer within {limit:?}; the browser hangs"),
        }
    }

    /// Panic with `problem`, the page's URL and the start of its text.
    fn fail(&self, problem: &str) -> ! {
        panic!("browser: {problem}\n{}", self.page_context())
    }

    /// The current URL and an excerpt of the page's text, for failure messages; never panics.
    fn page_context(&self) -> String {
        let Some(client) = self.client.as_ref() else { return String::new() };
        // Each step has its own deadline: `block_on` directly, as `run` may panic.
        let (url, text) = self.runtime.block_on(async {
            let url = tokio::time::timeout(QUIET_TIMEOUT, client.current_url()).await;
            let text = tokio::time::timeout(
                QUIET_TIMEOUT,
                client.execute("return document.body ? document.body.innerText : '';", Vec::new()),
            )
            .await;
            (url, text)
        });
        let url = match url {
            Ok(Ok(url)) => url.to_string(),
            Ok(Err(e)) => format!("(unknown: {e})"),
            Err(_) => "(unknown: the browser did not answer)".to_string(),
        };
        let text = match text {
            Ok(Ok(Value::String(text))) => excerpt(&text),
            Ok(Ok(other)) => format!("(not text: {other})"),
            Ok(Err(e)) => format!("(unknown: {e})"),
            Err(_) => "(unknown: the browser did not answer)".to_string(),
        };
        format!("page: {url}\ntext: {text}")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report_failure();
        }
        if let Some(client) = self.client.take() {
            // Ending the session makes chromedriver quit Chromium. When that fails (a hung
            // browser), Chromium is killed by its pid: it would outlive chromedriver otherwise.
            let closed = self.runtime.block_on(async { tokio::time::timeout(QUIET_TIMEOUT, client.close()).await });
            if !matches!(closed, Ok(Ok(()))) {
                for pid in children_of(self.chromedriver.id()) {
                    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                }
            }
        }
        stop(&mut self.chromedriver);
        // `dir` (profile, downloads, log) is removed after this, now that nothing writes there.
    }
}

impl Browser {
    /// The failing test's message, the page's URL and text: to the real stderr at once (libtest's
    /// capture is lost if the run is killed or aborts before the test is reported), then a
    /// `failure` screenshot and `failure.txt` beside it, all before the session ends. Never
    /// panics: this runs while the test's panic unwinds.
    fn report_failure(&self) {
        let message = LAST_PANIC.try_with(|last| last.borrow_mut().take()).ok().flatten();
        let message = message.unwrap_or_else(|| "(the panic's message was not recorded)".to_string());
        // `std::io::stderr()` written directly is not captured by libtest (only the print macros
        // and panic messages are), so this reaches the terminal even if the run dies later.
        let live = |text: String| {
            if self.live_failure_report {
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
            }
        };
        live(format!("browser test {} failed: {message}\n", self.test_name));
        let context = self.page_context();
        let png = self.client.as_ref().map(|client| {
            self.runtime.block_on(async { tokio::time::timeout(QUIET_TIMEOUT, client.screenshot()).await })
        });
        let screenshot = match png {
            Some(Ok(Ok(png))) => match save_screenshot(&self.test_name, "failure", &png) {
                Ok(path) => format!("the page at the failure: {}", path.display()),
                Err(e) => format!("the failure screenshot was not saved: {e}"),
            },
            Some(Ok(Err(e))) => format!("no failure screenshot: {e}"),
            Some(Err(_)) => "no failure screenshot: the browser did not answer".to_string(),
            None => "no failure screenshot: the session is closed".to_string(),
        };
        let dir = screenshot_root().join(&self.test_name);
        let text_path = dir.join("failure.txt");
        let report = format!("{message}\n{context}\n{screenshot}\n");
        let kept = match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&text_path, &report)) {
            Ok(()) => format!("kept in {}", text_path.display()),
            Err(e) => format!("could not be kept in {}: {e}", text_path.display()),
        };
        // A failure of the browser's own already quotes the page; an assertion's does not.
        let page = if message.contains("\npage: ") { String::new() } else { format!("{context}\n") };
        live(format!("browser test {}: {page}{screenshot}\nthe message {kept}\n", self.test_name));
    }
}

thread_local! {
    /// The last panic message of this thread (recorded by the hook [`remember_panic_messages`]
    /// installs), for the report of a browser dropped while its test panics.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Install, once per process, a panic hook that records each panic's message for its thread and
/// then calls the hook that was there before (libtest's output capture still gets the message).
fn remember_panic_messages() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = LAST_PANIC.try_with(|last| *last.borrow_mut() = Some(info.to_string()));
            previous(info);
        }));
    });
}

/// `chromedriver` on PATH; panics naming the packages when it or Chromium is missing.
fn find_chromedriver() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("chromedriver")).find(|p| p.is_file()))
        .unwrap_or_default();
    match found {
        Some(path) if Path::new(CHROMIUM).exists() => path,
        _ => panic!(
            "the browser tests need Chromium ({CHROMIUM}) and chromedriver on PATH: install Debian's `chromium` \
             and `chromium-driver` packages (sudo apt-get install chromium chromium-driver), or run tests/run \
             as root, which installs them"
        ),
    }
}

/// Start chromedriver on a port it chooses (`--port=0`) and read the port from its start-up
/// line; a reader thread keeps draining its stdout. Its log goes to `log_path`.
fn spawn_chromedriver(path: &Path, log_path: &Path) -> (Child, u16) {
    let mut command = Command::new(path);
    command
        .arg("--port=0")
        .arg(format!("--log-path={}", log_path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("could not start {}: {e}", path.display()));
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // After the port line nobody listens; keep draining so the pipe never fills.
            let _ = lines.send(line);
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(wait) {
            Ok(line) => {
                // "ChromeDriver was started successfully on port 46681."
                let port = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, rest)| rest.trim_end_matches('.').trim().parse::<u16>().ok());
                printed.push(line);
                if let Some(port) = port {
                    return (child, port);
                }
            }
            Err(_) => {
                stop(&mut child);
                panic!(
                    "chromedriver did not say which port it listens on within {START_TIMEOUT:?}; it printed \
                     {printed:?}; its log:\n{}",
                    read_tail(log_path)
                );
            }
        }
    }
}

/// Poll chromedriver's `/status` until it reports ready (or it exits, or the start timeout).
fn wait_until_ready(driver_url: &str, chromedriver: &mut Child) -> Result<(), String> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| format!("could not be asked: {e}"))?;
    let status_url = format!("{driver_url}/status");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = chromedriver.try_wait() {
            return Err(format!("exited ({status}) before it was ready"));
        }
        let last = match http.get(&status_url).send().and_then(|response| response.json::<Value>()) {
            Ok(body) if body["value"]["ready"] == Value::Bool(true) => return Ok(()),
            Ok(body) => format!("not ready: {body}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("was not ready within {START_TIMEOUT:?} (last: {last})"));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The session's capabilities: Debian's Chromium, headless, the issue's window size, a profile
/// and a download directory of its own.
fn capabilities(profile: &Path, downloads: &Path) -> serde_json::Map<String, Value> {
    let (width, height) = WINDOW_SIZE;
    let mut args = vec![
        "--headless=new".to_string(),
        format!("--window-size={width},{height}"),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        format!("--user-data-dir={}", profile.display()),
        "--no-first-run".to_string(),
        "--no-default-browser-check".to_string(),
    ];
    // Chromium refuses to run as root with its sandbox on (CI containers run as root).
    if running_as_root() {
        args.push("--no-sandbox".to_string());
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": args,
            "prefs": {
                "download.default_directory": downloads.to_string_lossy(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        },
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("capabilities are a JSON object"),
    }
}

/// Whether this process runs as root: `/proc/self` belongs to the effective user (no `unsafe`
/// `geteuid` call needed).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|meta| meta.uid() == 0).unwrap_or(false)
}

/// Kill a child process by its own handle (its pid) and reap it.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The processes whose parent is `pid` (from `/proc/<pid>/stat`, whose fourth field is the
/// parent's pid; the second, the command name in parentheses, may itself hold spaces).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            let stat = std::fs::read_to_string(format!("/proc/{candidate}/stat")).unwrap_or_default();
            let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after_name.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// The name screenshots are filed under: the test thread's name (libtest names it after the
/// test), else the test binary's name.
fn current_test_name() -> String {
    let name = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
            .map(|stem| stem.split('-').next().unwrap_or("test").to_string())
            .unwrap_or_else(|| "test".to_string()),
    };
    file_safe(&name.replace("::", "."))
}

/// Screenshots taken so far per test name in this process, so that the numbers keep counting
/// across several browsers of one test, and a test's old screenshots are cleared only once.
static SCREENSHOT_COUNTS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// Write `png` as the test's next numbered screenshot. A test's first screenshot in this process
/// clears the pictures of an earlier run (the files, never the directory: another process running
/// the same test at the same time must not find the directory gone under its own write).
fn save_screenshot(test_name: &str, name: &str, png: &[u8]) -> Result<PathBuf, String> {
    let dir = screenshot_root().join(test_name);
    let number = {
        let mut counts = SCREENSHOT_COUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.get_or_insert_with(HashMap::new).entry(test_name.to_string()).or_insert(0);
        if *count == 0 {
            // A fresh run of this test: the previous run's pictures would mislead.
            for old in list_files(&dir) {
                let _ = std::fs::remove_file(dir.join(old));
            }
        }
        *count += 1;
        *count
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{number:02}-{}.png", file_safe(name)));
    std::fs::write(&path, png).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(path)
}

/// `name` with anything but letters, digits, `.`, `_` and `-` replaced by `-`.
fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect()
}

fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        return format!("{flat:?}");
    }
    let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    format!("{cut:?}…")
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The last lines of a log file, for failure messages.
fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_of_finds_a_child_by_its_parent_pid() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("start sleep");
        let found = children_of(std::process::id());
        stop(&mut child);
        assert!(found.contains(&child.id()), "{} is not among {found:?}", child.id());
        assert!(children_of(child.id()).is_empty(), "sleep has no children");
    }
}
