//! The office web page in real Chromium (issue 18's acceptance): a supervisor signs in, finds a
//! household by a member's NIK, returns it with a comment, resolves a conflict, approves another
//! household, merges a duplicate pair and downloads an XLSX read back with calamine; an admin
//! creates an enumerator, assigns villages, and imports a roster after fixing its broken row; an
//! enumerator's sign-in is refused, another kecamatan's household is the 403 page, and the
//! language switch shows English labels and back. Every page visited is screenshotted
//! (`<target>/browser-screenshots/office.<test>/`); each action is checked on the page, and where
//! cheap on the server through the supervisor's or admin's `pilar`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use calamine::{Data, Reader, Xlsx, open_workbook};
use pilar_tests::browser::{Browser, SameSite};
use pilar_tests::{Campaign, TEST_ADMIN_PASSWORD, TestDevice, example_roster};
use serde_json::{Value, json};

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";
/// Another village of Kec. Panca Lautang (the example roster's second).
const WANIO: &str = "73.14.01.2004";
const OTHER_KECAMATAN: &str = "73.14.02";
const OTHER_VILLAGE: &str = "73.14.02.1001";
/// The NIK of Muh Regapu’u, a member (not the head) of Sitti Regapu’u's household in the example
/// roster (synthetic: serial 9006).
const MEMBER_NIK: &str = "7314010904019006";
/// The KK number of Baso Olimoo'o's household in the example roster; a second household recorded
/// with it is a suspected duplicate.
const BASO_KK: &str = "7314012209209007";
/// How long the XLSX download may take (a debug build on two shared cores).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The password `Campaign` gives an account it creates.
fn password(name: &str) -> String {
    format!("sandi-{name}-12345")
}

/// Open the sign-in form (screenshotted as `login`) and sign in as `user`.
fn sign_in(browser: &Browser, url: &str, user: &str, password: &str) {
    browser.goto(&format!("{url}/login"));
    browser.wait_for("#sign-in");
    browser.screenshot("login");
    browser.fill("#user", user);
    browser.fill("#password", password);
    browser.click("#sign-in");
}

/// The review status the server holds for household `id`, as `pilar review list` shows it.
fn review_status(supervisor: &TestDevice, id: &str) -> String {
    let listed = supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]);
    let brief = listed.as_array().expect("a list").iter().find(|b| b["household"] == id).cloned();
    let brief = brief.unwrap_or_else(|| panic!("{id} is not in the review list: {listed}"));
    brief["review"].as_str().unwrap_or_default().to_string()
}

/// The rows of sheet `name` of an export workbook, keyed by the machine names of its second
/// header row (the first row holds the labels).
fn sheet(path: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    let mut book: Xlsx<_> = open_workbook(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let range = book.worksheet_range(name).unwrap_or_else(|e| panic!("sheet {name}: {e}"));
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let names = rows.get(1).expect("the machine-name header row").clone();
    rows.iter().skip(2).map(|row| names.iter().cloned().zip(row.iter().cloned()).collect()).collect()
}

/// The HTTP status of the page shown now, asked again with the page's own cookies (WebDriver
/// does not report it).
fn status_of_this_page(browser: &Browser) -> Value {
    browser.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch(location.href, {redirect: 'manual'}).then(r => done(r.status), e => done(String(e)));",
    )
}

#[test]
fn a_supervisor_finds_returns_resolves_approves_merges_and_exports_in_chromium() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    let wette = ani.household_headed_by("Wette'E Bin Ali");
    let sitti = ani.household_headed_by("Sitti Regapu’u");
    let baso = ani.household_headed_by("Baso Olimoo'o");
    // Offline, Ani and Budi measure Wette'E's floor differently; Ani visits Sitti; Budi records
    // Baso's family again under its KK number. Then both sync.
    ani.ok(&["visit", &wette, "--outcome", "2", "--answer", "floor_area_m2=36"]);
    budi.ok(&["visit", &wette, "--outcome", "2", "--answer", "floor_area_m2=42"]);
    ani.ok(&["visit", &sitti, "--outcome", "2", "--note", "KK belum ditunjukkan"]);
    let again =
        budi.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis Ganda", "--kk", BASO_KK, "--rt", "003"]);
    let again = again["household"].as_str().expect("id").to_string();
    ani.json(&["sync"]);
    budi.json(&["sync"]);

    let browser = Browser::start();

    // Not signed in: the page leads to the sign-in form, and back to the dashboard after it.
    browser.goto(&format!("{url}/"));
    browser.wait_for_url_containing("/login?next=");
    sign_in(&browser, &url, "spv.panca", &password("spv.panca"));
    browser.wait_for_url_containing("/dashboard");
    browser.wait_for_text("#villages", "Bilokka");
    browser.wait_for_text("#enumerators", "pkh.budi");
    browser.screenshot("dashboard");
    let cookie = browser
        .cookie("pilar_session")
        .unwrap_or_else(|| panic!("no session cookie; the browser holds {:?}", browser.cookies()));
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site, Some(SameSite::Strict), "{cookie:?}");
    assert!(!cookie.secure, "plain HTTP on loopback: {cookie:?}");
    assert_eq!(browser.execute("return document.cookie;"), json!(""), "no script reads the session");

    // The households table: the roster's six and Budi's second record of Baso's family.
    browser.goto(&format!("{url}/households"));
    browser.wait_for_text("#count", "7 rumah tangga");
    browser.screenshot("households");

    // Search by a member's NIK: Sitti's household alone.
    browser.fill("#q", MEMBER_NIK);
    browser.click("#search");
    browser.wait_for_url_containing(&format!("q={MEMBER_NIK}"));
    browser.wait_for_text("#count", "1 rumah tangga");
    let rows = browser.texts("#households tbody tr");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("Sitti Regapu’u"), "{rows:?}");
    browser.screenshot("households-found-by-nik");

    // Sitti's page: returned with a comment.
    browser.click("#households tbody a");
    browser.wait_for_url_containing(&format!("/households/{sitti}"));
    browser.wait_for_text("#household-title", "Sitti Regapu’u");
    browser.wait_for_text("#review-status", "Menunggu pemeriksaan");
    browser.wait_for_text("#members", "Muh Regapu’u");
    browser.screenshot("household-sitti");
    browser.fill("#return-comment", "Foto KK belum ada, kunjungi lagi sore hari");
    browser.click("#return");
    browser.wait_for_text("#review-status", "Dikembalikan");
    browser.wait_for_text("#comments", "Foto KK belum ada, kunjungi lagi sore hari");
    assert!(browser.text("#review-status").contains("spv.panca"), "who returned it");
    browser.screenshot("household-sitti-returned");
    assert_eq!(review_status(&supervisor, &sitti), "returned");

    // The conflict inbox: both floors with their writers; keep Budi's 42.
    browser.goto(&format!("{url}/conflicts"));
    browser.wait_for_text("#conflict-0", "answers.floor_area_m2");
    assert!(!browser.exists("#conflict-1"), "one conflict: {:?}", browser.texts(".conflict-item"));
    let values = browser.texts("#conflict-0 td.value");
    let rows = browser.texts("#conflict-0 tbody tr");
    assert_eq!(values.len(), 2, "{rows:?}");
    let budi_row = values.iter().position(|v| v == "42").unwrap_or_else(|| panic!("42 is listed: {rows:?}"));
    assert!(rows[budi_row].contains("pkh.budi"), "{rows:?}");
    assert!(rows.iter().any(|row| row.contains("36") && row.contains("pkh.ani")), "{rows:?}");
    browser.screenshot("conflicts");
    browser.click(&format!("#conflict-0 tbody tr:nth-child({}) button", budi_row + 1));
    browser.wait_for_text("main > p.muted", "0 isian");
    assert!(!browser.exists("#conflict-0"));
    browser.screenshot("conflicts-resolved");
    let listed = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "resolved on the server: {listed}");

    // Wette'E's page: the kept value, no conflict left; approved.
    browser.goto(&format!("{url}/households/{wette}"));
    browser.wait_for_text("#household-title", "Wette'E Bin Ali");
    browser.wait_for_text("#answers tr", "floor_area_m2");
    let floor = browser.texts("#answers tr").into_iter().find(|row| row.contains("floor_area_m2")).expect("floor");
    assert!(floor.contains("42") && !floor.contains("36"), "{floor}");
    assert!(!browser.exists("#answers tr.conflict"), "no field is in conflict any more");
    browser.screenshot("household-wette");
    browser.click("#approve");
    browser.wait_for_text("#review-status", "Disetujui");
    browser.screenshot("household-wette-approved");
    assert_eq!(review_status(&supervisor, &wette), "approved");

    // Suspected duplicates: Baso's household and Budi's second record side by side; merge,
    // keeping the roster's.
    browser.goto(&format!("{url}/duplicates"));
    browser.wait_for_text("#pair-0", "same_kk");
    let pair = browser.text("#pair-0");
    assert!(pair.contains("Baso Olimoo'o") && pair.contains("La Sintetis Ganda"), "{pair}");
    assert!(!browser.exists("#pair-1"), "one pair");
    assert!(browser.exists("#pair-0 tr.conflict"), "the differing answers are marked");
    browser.screenshot("duplicates");
    browser
        .click(&format!("#pair-0 form[action='/duplicates/merge']:has(input[name='survivor'][value='{baso}']) button"));
    browser.wait_for_text("main > p.muted", "0 pasangan");
    assert!(!browser.exists("#pair-0"));
    browser.screenshot("duplicates-merged");
    let left = supervisor.json(&["duplicates", "list", "--area", PANCA_LAUTANG]);
    assert_eq!(left.as_array().map(Vec::len), Some(0), "merged on the server: {left}");

    // The households table now: Budi's record folded away (its differing answers went to the
    // inbox as a conflict on the survivor), the decisions shown. README's picture
    // (docs/office-households.png) is this screenshot.
    browser.goto(&format!("{url}/households"));
    browser.wait_for_text("#count", "6 rumah tangga");
    let rows = browser.texts("#households tbody tr");
    let row_with = |head: &str| rows.iter().find(|row| row.contains(head)).cloned().unwrap_or_default();
    assert!(!rows.iter().any(|row| row.contains("La Sintetis Ganda")), "{rows:?}");
    assert!(row_with("Sitti Regapu’u").contains("Dikembalikan"), "{rows:?}");
    assert!(row_with("Wette'E Bin Ali").contains("Disetujui"), "{rows:?}");
    assert_eq!(browser.texts("#households tbody tr.conflict").len(), 1, "{rows:?}");
    assert!(browser.text("#households tbody tr.conflict").contains("Baso Olimoo'o"), "{rows:?}");
    browser.screenshot("households-reviewed");

    // The export form on the same page: the kecamatan as XLSX, read back.
    browser.select("#export-area", PANCA_LAUTANG);
    browser.select("#export-format", "xlsx");
    browser.click("#export");
    let xlsx = browser.wait_for_download(".xlsx", DOWNLOAD_TIMEOUT);
    let name = xlsx.file_name().and_then(|n| n.to_str()).expect("file name").to_string();
    assert!(name.starts_with(&format!("pilar-{PANCA_LAUTANG}-")), "{name}");
    let households = sheet(&xlsx, "households");
    let row_of = |head: &str| {
        households
            .iter()
            .find(|h| h["head_name"] == head)
            .unwrap_or_else(|| panic!("{head} is not in the export: {households:?}"))
    };
    let (sitti_row, wette_row) = (row_of("Sitti Regapu’u"), row_of("Wette'E Bin Ali"));
    assert_eq!(sitti_row["review_status"], "returned");
    assert_eq!(sitti_row["review_status_label"], "Dikembalikan");
    assert_eq!(sitti_row["review_by"], "spv.panca");
    assert_eq!(wette_row["review_status"], "approved");
    assert_eq!(wette_row["review_status_label"], "Disetujui");
    assert_eq!(wette_row["kk_number"], "7314010503159001", "a KK number keeps its 16 digits");
    assert!(
        households.iter().all(|h| h["head_name"] != "La Sintetis Ganda" && !h.values().any(|v| v == &again)),
        "the merged-away household is not exported: {households:?}"
    );

    // Sign out: back to the sign-in form, the cookie forgotten.
    browser.goto(&format!("{url}/households"));
    browser.click("#logout");
    browser.wait_for_url_containing("/login");
    browser.wait_for("#sign-in");
    assert_eq!(browser.cookie("pilar_session"), None, "{:?}", browser.cookies());
    browser.screenshot("signed-out");
}

#[test]
fn an_admin_creates_an_enumerator_assigns_villages_and_imports_a_fixed_roster_in_chromium() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let files = tempfile::tempdir().expect("a directory for the roster files");
    let good = std::fs::read_to_string(example_roster()).expect("example roster");
    // Row 3 (the second data row, Besse Ratna's) gets a birth date in the future.
    let broken = good.replacen("1985-07-12", "2085-07-12", 1);
    assert_ne!(broken, good);
    let broken_file = files.path().join("daftar-rusak.csv");
    let fixed_file = files.path().join("daftar.csv");
    std::fs::write(&broken_file, &broken).expect("write the broken roster");
    std::fs::write(&fixed_file, &good).expect("write the fixed roster");

    let browser = Browser::start();
    sign_in(&browser, &url, "admin", TEST_ADMIN_PASSWORD);
    browser.wait_for_url_containing("/dashboard");

    // A new enumerator; the generated password is shown once.
    browser.goto(&format!("{url}/admin/users"));
    browser.wait_for_text("#users", "admin");
    browser.screenshot("users");
    browser.fill("#new-name", "pkh.baru");
    browser.select("#new-role", "enumerator");
    browser.click("#create-user");
    browser.wait_for_text("#created", "pkh.baru (enumerator)");
    let generated = browser.text("#generated-password");
    assert!(generated.len() >= 12 && !generated.contains(char::is_whitespace), "{generated:?}");
    browser.screenshot("user-created");

    // Their villages, on the user's page.
    browser.click("#assign-link");
    browser.wait_for_url_containing("/admin/users/pkh.baru");
    browser.wait_for("#codes");
    assert!(browser.texts("#areas tr").is_empty(), "no villages yet");
    browser.screenshot("user-page");
    browser.fill("#codes", &format!("{BILOKKA}\n{WANIO}"));
    browser.click("#save-areas");
    browser.wait_for_text("#areas", "Bilokka");
    let areas = browser.texts("#areas tr");
    assert_eq!(areas.len(), 2, "{areas:?}");
    assert!(areas[0].contains(BILOKKA) && areas[1].contains(WANIO), "{areas:?}");
    browser.screenshot("user-villages-saved");
    let users = campaign.admin.json(&["admin", "user", "list"]);
    let baru = users.as_array().expect("users").iter().find(|u| u["name"] == "pkh.baru").cloned().expect("created");
    assert_eq!(baru["role"], "enumerator");
    assert_eq!(baru["villages"], json!([BILOKKA, WANIO]), "{baru}");

    // The roster with a broken row: the row's error by number and column, nothing imported.
    browser.goto(&format!("{url}/admin/roster"));
    browser.wait_for("#roster-upload");
    browser.screenshot("roster");
    browser.upload("#roster-file", &broken_file);
    browser.click("#check-roster");
    browser.wait_for_text("#roster-refused", "Tidak ada yang diimpor");
    let problem_rows = browser.texts("#roster-problems tbody td:nth-child(1)");
    let problem_columns = browser.texts("#roster-problems tbody td:nth-child(2)");
    let problems: Vec<(String, String)> = problem_rows.into_iter().zip(problem_columns).collect();
    assert!(
        problems.contains(&("3".to_string(), "birth_date".to_string())),
        "row 3's birth_date is named: {:?}",
        browser.texts("#roster-problems tbody tr")
    );
    assert!(browser.text("#roster-problems").contains("2085-07-12"), "with the value");
    assert!(!browser.exists("#commit-roster"), "nothing to commit");
    browser.screenshot("roster-problems");

    // The fixed file, from the report page's own upload form: checked, then committed.
    browser.upload("#roster-file", &fixed_file);
    browser.click("#check-roster");
    browser.wait_for("#commit-roster");
    assert!(!browser.exists("#roster-refused"));
    browser.screenshot("roster-checked");
    browser.click("#commit-roster");
    // Six new households: the broken file left nothing behind.
    browser.wait_for_text("#roster-imported", "6 baru, 0 diperbarui, 0 tidak berubah");
    browser.screenshot("roster-imported");

    // The households, on the households page.
    browser.click("main a[href='/households']");
    browser.wait_for_url_containing("/households");
    browser.wait_for_text("#count", "6 rumah tangga");
    let rows = browser.texts("#households tbody tr");
    assert!(rows.iter().any(|row| row.contains("Wette'E Bin Ali") && row.contains(BILOKKA)), "{rows:?}");
    assert!(rows.iter().any(|row| row.contains("Kasim Taula'a") && row.contains(WANIO)), "{rows:?}");
    browser.screenshot("households");

    // The enumerator made in the browser signs in on a tablet with the generated password and
    // receives the households of the villages assigned in the browser.
    let tablet = TestDevice::new();
    tablet.login(&campaign.server, "pkh.baru", &generated);
    assert_eq!(tablet.json(&["sync"])["outcome"], "complete");
    let listed = tablet.json(&["list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(6), "{listed}");
}

#[test]
fn an_enumerator_is_refused_and_another_kecamatans_household_is_forbidden_in_chromium() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani_password = campaign.user("pkh.ani", &[BILOKKA]);
    let other = campaign.enumerator("pkh.lain", &[OTHER_VILLAGE]);
    let elsewhere = other.json(&["add", "--village", OTHER_VILLAGE, "--head-name", "Wa Sintetis Lain"]);
    let elsewhere = elsewhere["household"].as_str().expect("id").to_string();
    other.json(&["sync"]);
    campaign.supervisor("spv.lain", &[OTHER_KECAMATAN]);

    let browser = Browser::start();

    // An enumerator's right password: a clear refusal, no session.
    sign_in(&browser, &url, "pkh.ani", &ani_password);
    browser.wait_for_text("#error", "Akun enumerator tidak dapat masuk ke halaman kantor");
    assert!(browser.current_url().ends_with("/login"), "{}", browser.current_url());
    assert_eq!(browser.cookie("pilar_session"), None, "{:?}", browser.cookies());
    browser.screenshot("enumerator-refused");

    // A supervisor of Panca Lautang opening a household of another kecamatan: the 403 page.
    sign_in(&browser, &url, "spv.panca", &password("spv.panca"));
    browser.wait_for_url_containing("/dashboard");
    browser.goto(&format!("{url}/households/{elsewhere}"));
    browser.wait_for("#error");
    assert!(browser.title().starts_with("Tidak diizinkan"), "{}", browser.title());
    assert_eq!(status_of_this_page(&browser), json!(403));
    assert!(!browser.source().contains("Wa Sintetis Lain"), "nothing of the household is shown");
    browser.screenshot("other-kecamatan-forbidden");
}

#[test]
fn the_language_switch_shows_english_labels_and_back_in_chromium() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);

    let browser = Browser::start();
    sign_in(&browser, &url, "spv.panca", &password("spv.panca"));
    browser.wait_for_url_containing("/dashboard");
    browser.goto(&format!("{url}/households"));
    browser.wait_for_text("h1", "Rumah tangga");
    assert_eq!(browser.text("#search"), "Tampilkan");
    browser.screenshot("households-bahasa");

    browser.click("a[href^='/language?to=en']");
    browser.wait_for_text("h1", "Households");
    assert!(browser.current_url().ends_with("/households"), "back on the same page: {}", browser.current_url());
    assert_eq!(browser.text("#search"), "Show");
    browser.wait_for_text("#count", "6 households");
    browser.wait_for_text("#households thead", "Head of household");
    browser.wait_for_text("#households tbody", "Not visited");
    assert_eq!(browser.attribute("html", "lang").as_deref(), Some("en"));
    assert_eq!(browser.cookie("pilar_lang").map(|c| c.value), Some("en".to_string()));
    browser.screenshot("households-english");

    browser.click("a[href^='/language?to=id']");
    browser.wait_for_text("h1", "Rumah tangga");
    assert_eq!(browser.text("#search"), "Tampilkan");
    browser.wait_for_text("#households tbody", "Belum dikunjungi");
    assert_eq!(browser.attribute("html", "lang").as_deref(), Some("id"));
    browser.screenshot("households-bahasa-again");
}
