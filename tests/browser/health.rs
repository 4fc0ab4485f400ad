//! The browser reaches a real `pilar-server`, and its screenshots land in the build directory.

use pilar_tests::TestServer;
use pilar_tests::browser::Browser;

/// The PNG file signature: every PNG file starts with these eight bytes.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

#[test]
fn health_json_is_shown_and_screenshotted() {
    let server = TestServer::start();
    let browser = Browser::start();

    let url = format!("{}/health", server.url());
    browser.goto(&url);
    assert_eq!(browser.current_url(), url);
    // Chromium shows a JSON answer as text in a <pre>.
    let shown = browser.text("pre");
    let health: serde_json::Value =
        serde_json::from_str(&shown).unwrap_or_else(|e| panic!("/health showed {shown:?}, not JSON: {e}"));
    assert_eq!(health, serde_json::json!({ "status": "ok" }));

    let path = browser.screenshot("health");
    assert!(path.starts_with(pilar_tests::browser::screenshot_root()), "{} is under the target dir", path.display());
    assert!(
        path.ends_with("health.health_json_is_shown_and_screenshotted/01-health.png"),
        "screenshots are filed by test and numbered: {}",
        path.display()
    );
    let png = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(png.starts_with(&PNG_SIGNATURE), "{} is not a PNG", path.display());
    assert!(png.len() > 1000, "{} is a real picture, not an empty one ({} bytes)", path.display(), png.len());

    let second = browser.screenshot("again");
    assert!(second.ends_with("02-again.png"), "the second screenshot is numbered 02: {}", second.display());
}
