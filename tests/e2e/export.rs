//! Exports against a real server: a supervisor's kecamatan as XLSX read back cell by cell with
//! calamine, CSV that Excel opens (BOM, UTF-8 names), the approved-only filter, who may export, and
//! times on the village's clock (a visit stored in UTC shows in WITA in `pilar show` and both files).

use calamine::{Data, Reader, Xlsx, open_workbook};
use pilar_tests::{Campaign, example_roster};
use std::collections::BTreeMap;
use std::path::Path;

const PANCA_LAUTANG: &str = "73.14.01";

/// A sheet as rows of (machine name → cell text), using the second header row's names.
pub(crate) fn sheet(path: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    let mut book: Xlsx<_> = open_workbook(path).expect("open xlsx");
    let range = book.worksheet_range(name).expect("sheet");
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let names = rows.get(1).expect("machine-name header row").clone();
    rows.iter().skip(2).map(|r| names.iter().cloned().zip(r.iter().cloned()).collect()).collect()
}

#[test]
fn a_supervisor_exports_the_kecamatan_as_xlsx_and_csv() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    campaign.admin.ok(&["roster", "import", example_roster().to_str().expect("path")]);

    let out = supervisor.home().join("panca.xlsx");
    let done = supervisor.json(&["export", "--area", PANCA_LAUTANG, "--out", out.to_str().expect("path")]);
    assert_eq!((done["households"].as_u64(), done["members"].as_u64()), (Some(6), Some(14)), "{done}");

    let households = sheet(&out, "households");
    assert_eq!(households.len(), 6);
    let wette = households.iter().find(|h| h["dtsen_family_id"] == "SYN-0001").expect("SYN-0001 exported");
    assert_eq!(wette["head_name"], "Wette'E Bin Ali");
    assert_eq!(wette["village_code"], "73.14.01.1001");
    assert_eq!(wette["kk_number"], "7314010503159001", "a KK number keeps all 16 digits");
    let members = sheet(&out, "members");
    assert_eq!(members.len(), 14);
    let sitti = members.iter().find(|m| m["full_name"] == "Sitti Regapu’u").expect("U+2019 kept");
    assert_eq!(sitti["nik"], "7314014211729005", "a NIK keeps all 16 digits");
    assert_eq!(sitti["sex"], "2");

    // CSV for Excel: UTF-8 with a BOM, names intact.
    let prefix = supervisor.home().join("panca");
    supervisor.ok(&["export", "--area", PANCA_LAUTANG, "--format", "csv", "--out", prefix.to_str().expect("path")]);
    let csv = std::fs::read(supervisor.home().join("panca-members.csv")).expect("members csv");
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "a BOM so Excel reads UTF-8");
    let text = String::from_utf8(csv).expect("utf-8");
    assert!(text.contains("Sitti Regapu’u") && text.contains("Wette'E Bin Ali"));

    // Nothing is approved yet: the approved-only export has the headers and no household.
    let approved = supervisor.home().join("approved.xlsx");
    let done =
        supervisor.json(&["export", "--area", PANCA_LAUTANG, "--approved", "--out", approved.to_str().expect("path")]);
    assert_eq!(done["households"].as_u64(), Some(0), "{done}");
    assert!(sheet(&approved, "households").is_empty());
}

#[test]
fn only_supervisors_of_the_area_and_admins_export() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let enumerator = campaign.enumerator("pkh.bilokka", &["73.14.01.1001"]);
    let out = enumerator.home().join("x.xlsx");
    let err = enumerator.fails(&["export", "--area", PANCA_LAUTANG, "--out", out.to_str().expect("path")]);
    assert!(err.contains("enumerators cannot export"), "{err}");
    assert!(!out.exists(), "a refused export leaves no file");
    let other = supervisor.home().join("other.xlsx");
    let err = supervisor.fails(&["export", "--area", "73.14.02", "--out", other.to_str().expect("path")]);
    assert!(err.contains("not a kecamatan assigned to you"), "{err}");
    let err = supervisor.fails(&["export", "--area", "73.14", "--out", other.to_str().expect("path")]);
    assert!(err.contains("not a kecamatan assigned to you"), "{err}");
    let kab = campaign.admin.home().join("kab.xlsx");
    campaign.admin.ok(&["export", "--area", "73.14", "--out", kab.to_str().expect("path")]);
    assert!(kab.exists());
}

#[test]
fn a_visit_in_sulawesi_shows_in_wita_in_show_and_in_both_exports() {
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let mut enumerator = campaign.enumerator("pkh.bilokka", &["73.14.01.1001"]);
    // A tablet whose clock runs in UTC stores the visit at 13:19:56 UTC: 21:19:56 in Bilokka (WITA).
    // Today's date, so the server (on the real clock) takes the visit as recent.
    let day = time::OffsetDateTime::now_utc().date();
    let date = format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day());
    enumerator.set_now(&format!("{date}T13:19:56Z"));
    let added =
        enumerator.json(&["add", "--village", "73.14.01.1001", "--head-name", "La Sintetis", "--answer", "rt=003"]);
    let id = added["household"].as_str().expect("household id").to_string();
    enumerator.ok(&["visit", &id, "--outcome", "2", "--answer", "floor_area_m2=30"]);
    let stored = enumerator.json(&["show", &id]);
    assert_eq!(stored["household"]["visits"][0]["at"], format!("{date}T13:19:56Z"), "stored times stay UTC");
    let shown = enumerator.ok(&["show", &id]);
    let wita = format!("{date} 21:19 WITA");
    assert!(shown.contains(&wita), "{shown}");
    assert!(!shown.contains("13:19"), "no UTC time is shown: {shown}");
    let history = enumerator.ok(&["history", &id, "floor_area_m2"]);
    assert!(history.contains(&wita), "{history}");
    let pending = enumerator.ok(&["pending"]);
    assert!(pending.contains(&wita) && !pending.contains("13:19"), "{pending}");
    enumerator.json(&["sync"]);

    let xlsx = supervisor.home().join("panca.xlsx");
    supervisor.ok(&["export", "--area", PANCA_LAUTANG, "--out", xlsx.to_str().expect("path")]);
    let mut book: Xlsx<_> = open_workbook(&xlsx).expect("open xlsx");
    let visits = book.worksheet_range("visits").expect("visits sheet");
    let column = (0..visits.width() as u32)
        .find(|c| visits.get_value((1, *c)) == Some(&Data::String("visited_at".into())))
        .expect("visited_at column");
    assert_eq!(visits.get_value((0, column)), Some(&Data::String("Waktu kunjungan (WITA)".into())));
    match visits.get_value((2, column)) {
        Some(Data::DateTime(at)) => {
            let (y, mo, d, h, mi, s, _) = at.to_ymd_hms_milli();
            let expected = (day.year() as u16, u8::from(day.month()), day.day(), 21, 19, 56);
            assert_eq!((y, mo, d, h, mi, s), expected, "an Excel date-time on the WITA clock");
        }
        other => panic!("visited_at is not an Excel date-time: {other:?}"),
    }

    let prefix = supervisor.home().join("panca");
    supervisor.ok(&["export", "--area", PANCA_LAUTANG, "--format", "csv", "--out", prefix.to_str().expect("path")]);
    let csv = std::fs::read_to_string(supervisor.home().join("panca-visits.csv")).expect("visits csv");
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let labels = lines.next().expect("label row");
    assert!(labels.contains("Waktu kunjungan (WITA)"), "{labels}");
    assert!(lines.next().expect("name row").contains(",visited_at,"), "machine names stay as they were");
    let visit = lines.next().expect("the visit");
    assert!(visit.contains(&format!(",{date} 21:19:56,")), "{visit}");
}

#[test]
fn the_export_indexes_each_households_photos_under_the_file_names_photo_export_writes() {
    use sync_core::photo::synthetic;
    let campaign = Campaign::start();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &["73.14.01.1001"]);
    let id = ani.json(&["add", "--village", "73.14.01.1001", "--head-name", "Foto Sintetis"])["household"]
        .as_str()
        .expect("id")
        .to_string();
    let dir = tempfile::tempdir().expect("dir");
    let kk = synthetic::jpeg(1200, 800, 20_000, 5, None);
    let path = dir.path().join("kk.jpg");
    std::fs::write(&path, &kk).expect("write");
    ani.ok(&["photo", "add", &id, path.to_str().expect("path"), "--kind", "kk_card"]);
    assert_eq!(ani.json(&["sync"])["outcome"], "complete");

    let out = supervisor.home().join("panca.xlsx");
    let done = supervisor.json(&["export", "--area", PANCA_LAUTANG, "--out", out.to_str().expect("path")]);
    assert_eq!(done["photos"].as_u64(), Some(1), "{done}");
    let photos = sheet(&out, "photos");
    assert_eq!(photos.len(), 1, "{photos:?}");
    let row = &photos[0];
    let sha = sync_core::photo::PhotoId::of_bytes(&kk).to_string();
    assert_eq!((row["household_id"].as_str(), row["kind"].as_str()), (id.as_str(), "kk_card"));
    assert_eq!((row["sha256"].as_str(), row["bytes"].as_str()), (sha.as_str(), kk.len().to_string().as_str()));
    assert_eq!(row["kind_label"], "Kartu Keluarga");
    assert_eq!(row["taken_by"], "pkh.ani");

    // The file name leads to the file `pilar photo export` writes.
    let photo_dir = supervisor.home().join("foto");
    supervisor.ok(&["photo", "export", &id, photo_dir.to_str().expect("path")]);
    assert_eq!(std::fs::read(photo_dir.join(&row["file"])).expect("the file the sheet names"), kk);

    // CSV: the same index beside the other files.
    let prefix = supervisor.home().join("panca");
    supervisor.ok(&["export", "--area", PANCA_LAUTANG, "--format", "csv", "--out", prefix.to_str().expect("path")]);
    let csv = std::fs::read_to_string(supervisor.home().join("panca-photos.csv")).expect("photos csv");
    assert!(csv.contains(&sha) && csv.contains(row["file"].as_str()), "{csv}");
}
