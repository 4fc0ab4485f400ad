//! Exports from the office web page over plain HTTP (issue 18): a signed-in supervisor downloads
//! their kecamatan as XLSX and as a ZIP of the four CSV files, another kecamatan is refused, and
//! both are the files `pilar export` writes for the same area (one implementation: the workbooks
//! equal sheet by sheet and cell by cell, the CSV files byte for byte).

use crate::export::sheet;
use calamine::{Reader, Xlsx, open_workbook};
use pilar_tests::{Campaign, example_roster};
use reqwest::blocking::{Client, Response};
use reqwest::header;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

const PANCA_LAUTANG: &str = "73.14.01";
const OTHER_KECAMATAN: &str = "73.14.02";

fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client")
}

/// Sign in through the form and keep the session cookie.
fn sign_in(url: &str, user: &str) -> String {
    let password = format!("sandi-{user}-12345");
    let answer = client()
        .post(format!("{url}/login"))
        .form(&[("user", user), ("password", password.as_str()), ("next", "/households")])
        .send()
        .expect("sign-in answer");
    assert_eq!(answer.status(), 303, "signed in");
    let set = answer.headers().get(header::SET_COOKIE).expect("a Set-Cookie").to_str().expect("ascii");
    set.split(';').next().expect("name=value").to_string()
}

fn get(url: &str, cookie: &str) -> Response {
    client().get(url).header(header::COOKIE, cookie).send().expect("answer")
}

/// The download's file name from `Content-Disposition`, after checking the headers a browser
/// saves it by.
fn attachment(answer: &Response, content_type: &str) -> String {
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[header::CONTENT_TYPE], content_type);
    let disposition = answer.headers()[header::CONTENT_DISPOSITION].to_str().expect("ascii").to_string();
    let name = disposition.strip_prefix("attachment; filename=\"").and_then(|n| n.strip_suffix('"'));
    name.unwrap_or_else(|| panic!("an attachment with a file name: {disposition}")).to_string()
}

/// The date in `pilar-73.14.01-<date>…`, checked to be one.
fn date_in(name: &str, suffix: &str) -> String {
    let date = name
        .strip_prefix(&format!("pilar-{PANCA_LAUTANG}-"))
        .and_then(|n| n.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("pilar-<area>-<date>{suffix}: {name}"));
    time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).expect("a date");
    date.to_string()
}

/// The body, checked against the `Content-Length` it announced.
fn body(answer: Response) -> Vec<u8> {
    let length: usize =
        answer.headers()[header::CONTENT_LENGTH].to_str().expect("ascii").parse().expect("a Content-Length");
    let bytes = answer.bytes().expect("the download").to_vec();
    assert_eq!(bytes.len(), length, "the whole file, as announced");
    bytes
}

/// Every sheet of two workbooks holds the same cells (calamine's values and types).
fn assert_same_workbooks(web: &Path, cli: &Path) {
    let mut web: Xlsx<_> = open_workbook(web).expect("open the web page's workbook");
    let mut cli: Xlsx<_> = open_workbook(cli).expect("open pilar export's workbook");
    assert_eq!(web.sheet_names(), cli.sheet_names());
    assert_eq!(web.sheet_names(), ["households", "members", "visits", "photos"]);
    for name in cli.sheet_names() {
        let (w, c) = (web.worksheet_range(&name).expect("sheet"), cli.worksheet_range(&name).expect("sheet"));
        assert_eq!(w.get_size(), c.get_size(), "sheet {name}: size");
        for (row, (w, c)) in w.rows().zip(c.rows()).enumerate() {
            assert_eq!(w, c, "sheet {name}, row {}", row + 1);
        }
    }
}

#[test]
fn a_supervisor_downloads_the_same_export_from_the_page_as_pilar_export_writes() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);
    let cookie = sign_in(&url, "spv.panca");
    let dir = tempfile::tempdir().expect("dir");

    // The households page offers the supervisor's own kecamatan for export.
    let page = get(&format!("{url}/households"), &cookie).text().expect("page");
    assert!(page.contains("id=\"export-form\"") && page.contains("action=\"/export\""), "the export form");
    assert!(page.contains(&format!("<option value=\"{PANCA_LAUTANG}\">")), "the own kecamatan to choose");

    // XLSX: households and members, names and 16-digit numbers kept as text.
    let started = Instant::now();
    let answer = get(&format!("{url}/export?area={PANCA_LAUTANG}&format=xlsx"), &cookie);
    let name = attachment(&answer, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let xlsx = body(answer);
    eprintln!(
        "web export of the example roster (6 households, 14 members) as XLSX: {:?}, {} bytes",
        started.elapsed(),
        xlsx.len()
    );
    let date = date_in(&name, ".xlsx");
    let web_xlsx = dir.path().join(&name);
    std::fs::write(&web_xlsx, &xlsx).expect("save the download");
    let households = sheet(&web_xlsx, "households");
    assert_eq!(households.len(), 6);
    let wette = households.iter().find(|h| h["dtsen_family_id"] == "SYN-0001").expect("SYN-0001 exported");
    assert_eq!(wette["head_name"], "Wette'E Bin Ali");
    assert_eq!(wette["kk_number"], "7314010503159001", "a KK number keeps all 16 digits");
    let members = sheet(&web_xlsx, "members");
    assert_eq!(members.len(), 14);
    let sitti = members.iter().find(|m| m["full_name"] == "Sitti Regapu’u").expect("U+2019 kept");
    assert_eq!(sitti["nik"], "7314014211729005", "a NIK keeps all 16 digits");

    // The same workbook `pilar export` writes, cell by cell.
    let cli_xlsx = supervisor.home().join("panca.xlsx");
    supervisor.ok(&["export", "--area", PANCA_LAUTANG, "--out", cli_xlsx.to_str().expect("path")]);
    assert_same_workbooks(&web_xlsx, &cli_xlsx);

    // CSV: the four files of `pilar export --format csv` in one ZIP, each with a BOM, byte for byte.
    let started = Instant::now();
    let answer = get(&format!("{url}/export?area={PANCA_LAUTANG}&format=csv"), &cookie);
    let name = attachment(&answer, "application/zip");
    assert_eq!(name, format!("pilar-{PANCA_LAUTANG}-{date}-csv.zip"));
    let zipped = body(answer);
    eprintln!("web export of the example roster as a CSV ZIP: {:?}, {} bytes", started.elapsed(), zipped.len());
    let prefix = supervisor.home().join("panca");
    supervisor.ok(&["export", "--area", PANCA_LAUTANG, "--format", "csv", "--out", prefix.to_str().expect("path")]);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped)).expect("a ZIP");
    let mut names: Vec<String> = archive.file_names().map(|n| n.expect("an entry name").into_owned()).collect();
    names.sort();
    let stem = format!("pilar-{PANCA_LAUTANG}-{date}");
    let files = ["households", "members", "photos", "visits"];
    assert_eq!(names, files.map(|f| format!("{stem}-{f}.csv")));
    for file in files {
        let mut csv = Vec::new();
        archive.by_name(&format!("{stem}-{file}.csv")).expect("entry").read_to_end(&mut csv).expect("read");
        assert!(csv.starts_with(b"\xEF\xBB\xBF"), "{file}: a BOM so Excel reads UTF-8");
        let cli = std::fs::read(supervisor.home().join(format!("panca-{file}.csv"))).expect("pilar export's csv");
        assert!(csv == cli, "{file}.csv is the file pilar export writes");
    }

    // The approved-only filter: nothing is approved yet, so only the header rows.
    let answer = get(&format!("{url}/export?area={PANCA_LAUTANG}&format=xlsx&approved=1"), &cookie);
    attachment(&answer, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let approved = dir.path().join("approved.xlsx");
    std::fs::write(&approved, body(answer)).expect("save");
    assert!(sheet(&approved, "households").is_empty());

    // Another kecamatan, or the whole kabupaten, is not the supervisor's: 403 and no file.
    for area in [OTHER_KECAMATAN, "73.14"] {
        let refused = get(&format!("{url}/export?area={area}&format=xlsx"), &cookie);
        assert_eq!(refused.status(), 403, "{area}");
        assert!(refused.headers().get(header::CONTENT_DISPOSITION).is_none());
        assert!(refused.text().expect("page").contains("not a kecamatan assigned to you"));
    }
    // Not a region code, or a bad date: the page says so.
    assert_eq!(get(&format!("{url}/export?area=73.99.99&format=xlsx"), &cookie).status(), 422);
    assert_eq!(get(&format!("{url}/export?area={PANCA_LAUTANG}&from=1-12-2026"), &cookie).status(), 422);
    // Not signed in: to the sign-in form.
    let answer = client().get(format!("{url}/export?area={PANCA_LAUTANG}")).send().expect("answer");
    assert_eq!(answer.status(), 303);
}
