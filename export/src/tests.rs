//! Tests of the export writers on synthetic households (NIK and KK serials ≥ 9000, family ids
//! `SYN-…`): XLSX read back cell by cell with calamine, CSV checked byte for byte, and streaming.

use super::csv::{UTF8_BOM, csv_paths, csv_text};
use super::plan::{Cell, ColumnKind, ColumnPlan};
use super::*;
use calamine::{Data, Range, Reader, Xlsx, open_workbook};
use std::borrow::Cow;
use std::collections::BTreeMap;
use sync_core::form::{FormDefinition, Scope};
use sync_core::ids::LocalZone;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, MemberId, NewVisit, VisitId};
use sync_core::value::FieldValue;
use time::macros::datetime;
use uuid::Uuid;

const HEAD_NIK: &str = "7314010101909001";
const SPOUSE_NIK: &str = "7314014502929002";
const KK: &str = "7314011203159003";
const ADDRESS: &str = "Jl. Poros, No. 5 \"Lorong 2\"";
const NOTE: &str = "Rumah di ujung lorong,\nsebelah masjid";
/// The zone of the test households' villages (Sulawesi Selatan 73, Nusa Tenggara Timur 53).
const ZONE: Option<LocalZone> = Some(LocalZone::Wita);

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_owned())
}

fn int(i: i64) -> FieldValue {
    FieldValue::Int(i)
}

fn form() -> &'static FormDefinition {
    FormDefinition::default_dtsen()
}

fn editor(user: &str, at: time::OffsetDateTime) -> Editor {
    Editor { user: user.to_owned(), device: DeviceId(Uuid::from_u128(0xD1)), now: at }
}

fn answers(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn ok(_: &HouseholdState) -> Result<(), ()> {
    Ok(())
}

/// A household in Wette'E (73.14.01.1002): three members (the child removed), one complete
/// visit, approved by the supervisor. Built through the model so the state is what a device reads.
fn wette_household() -> HouseholdState {
    let id = HouseholdId(Uuid::from_u128(1));
    let enumerator = editor("enum.wette", datetime!(2025-03-01 10:00:00 +08:00));
    let child = MemberId(Uuid::from_u128(0x30));
    let edits = Edits {
        answers: [
            ("village_code", text("73.14.01.1002")),
            ("dtsen_family_id", text("SYN-1-000001")),
            ("head_name", text("Baso Wette'E")),
            ("kk_number", text(KK)),
            ("address", text(ADDRESS)),
            ("rt", text("001")),
            ("phone", text("081234569001")),
            ("floor_area_m2", int(36)),
            ("floor_material", int(2)),
            ("latitude", FieldValue::Decimal(-3.9876)),
            ("dtsen_snapshot_date", text("2026-01-23")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Some(v)))
        .collect(),
        add_members: vec![
            (
                MemberId(Uuid::from_u128(0x10)),
                answers(&[
                    ("seq", int(1)),
                    ("full_name", text("Baso Wette'E")),
                    ("nik", text(HEAD_NIK)),
                    ("sex", int(1)),
                    ("birth_date", text("1990-01-01")),
                    ("relationship", int(1)),
                    ("id_documents", int(5)),
                ]),
            ),
            (
                MemberId(Uuid::from_u128(0x20)),
                answers(&[
                    ("seq", int(2)),
                    ("full_name", text("Sitti Regapu’u")),
                    ("nik", text(SPOUSE_NIK)),
                    ("sex", int(2)),
                    ("birth_date", text("1992-02-05")),
                    ("relationship", int(2)),
                    ("id_documents", int(0)),
                ]),
            ),
            (
                child,
                answers(&[
                    ("seq", int(3)),
                    ("full_name", text("Andi Wette'E")),
                    ("birth_date", text("2015-98-98")),
                    ("relationship", int(3)),
                ]),
            ),
        ],
        visit: Some(NewVisit {
            id: VisitId(Uuid::from_u128(0x100)),
            outcome: 1,
            lat: Some(-3.9876),
            lon: Some(119.7654),
            accuracy_m: Some(8.5),
            note: Some(NOTE.to_owned()),
            answers: answers(&[("purpose", int(1)), ("notice_given", FieldValue::Bool(true))]),
        }),
        ..Edits::default()
    };
    let (mut household, _) = Household::create(id, &form().key(), &enumerator, &edits).expect("create");
    let removal = Edits { remove_members: vec![(child, "pindah".to_owned())], ..Edits::default() };
    let later = editor("enum.wette", datetime!(2025-03-01 10:30:00 +08:00));
    household.apply(&later, "remove", &removal, ok).expect("model").expect("accepted");
    let supervisor = editor("spv.panca", datetime!(2025-03-02 09:15:00 +08:00));
    let review = Edits {
        review: [("status", text("approved")), ("by", text("spv.panca")), ("at", text("2025-03-02T09:15:00+08:00"))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Some(v)))
            .collect(),
        ..Edits::default()
    };
    household.apply(&supervisor, "review", &review, ok).expect("model").expect("accepted");
    household.state()
}

/// A household in Regapu’u (53.07.01.2021), visited twice, returned, merged into the first.
fn regapu_household() -> HouseholdState {
    let visit = |id: u128, outcome: i64, at: &str| sync_core::model::Visit {
        id: VisitId(Uuid::from_u128(id)),
        at: at.to_owned(),
        user: "enum.paga".to_owned(),
        device: Uuid::from_u128(0xD2).to_string(),
        outcome: Some(outcome),
        lat: None,
        lon: None,
        accuracy_m: None,
        note: None,
        answers: BTreeMap::new(),
    };
    HouseholdState {
        id: HouseholdId(Uuid::from_u128(2)),
        form: form().key(),
        answers: answers(&[
            ("village_code", text("53.07.01.2021")),
            ("dtsen_family_id", text("SYN-1-000002")),
            ("head_name", text("Maria Regapu’u")),
        ]),
        members: vec![sync_core::model::Member {
            id: MemberId(Uuid::from_u128(0x40)),
            answers: answers(&[("seq", int(1)), ("full_name", text("Maria Regapu’u"))]),
            removed: None,
            entered_seq: None,
        }],
        visits: vec![visit(0x200, 3, "2025-03-03T08:00:00+08:00"), visit(0x201, 1, "2025-03-04T14:05:09+08:00")],
        review: sync_core::model::Review {
            status: Some(sync_core::model::ReviewStatus::Returned),
            by: Some("spv.paga".to_owned()),
            at: Some("2025-03-05T11:00:00+08:00".to_owned()),
            ..Default::default()
        },
        links: answers(&[("merged_into", text(&Uuid::from_u128(1).to_string()))]),
        photos: BTreeMap::new(),
    }
}

/// A household with nothing but its id: no village code, members or visits.
fn empty_household() -> HouseholdState {
    HouseholdState {
        id: HouseholdId(Uuid::from_u128(3)),
        form: form().key(),
        answers: BTreeMap::new(),
        members: Vec::new(),
        visits: Vec::new(),
        review: Default::default(),
        links: BTreeMap::new(),
        photos: BTreeMap::new(),
    }
}

fn households() -> Vec<HouseholdState> {
    vec![wette_household(), regapu_household(), empty_household()]
}

fn export_xlsx(path: &Path, households: &[HouseholdState]) -> ExportSummary {
    let mut export = Export::create(ExportFormat::Xlsx, path, form(), ZONE).expect("create");
    for h in households {
        export.write(h).expect("write");
    }
    export.finish().expect("finish")
}

fn sheet(path: &Path, name: &str) -> Range<Data> {
    let mut workbook: Xlsx<_> = open_workbook(path).expect("open the workbook");
    workbook.worksheet_range(name).expect("sheet")
}

/// The column with this machine name (second header row).
fn col(range: &Range<Data>, name: &str) -> u32 {
    (0..range.width() as u32)
        .find(|c| range.get_value((1, *c)) == Some(&Data::String(name.to_owned())))
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn at(range: &Range<Data>, row: u32, name: &str) -> Data {
    range.get_value((row, col(range, name))).cloned().unwrap_or(Data::Empty)
}

fn s(v: &str) -> Data {
    Data::String(v.to_owned())
}

fn ymd_hms(cell: &Data) -> (u16, u8, u8, u8, u8, u8) {
    match cell {
        Data::DateTime(dt) => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            (y, mo, d, h, mi, s)
        }
        other => panic!("expected an Excel date, got {other:?}"),
    }
}

#[test]
fn xlsx_households_sheet_has_labels_names_codes_with_labels_and_region_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.xlsx");
    let summary = export_xlsx(&path, &households());
    assert_eq!((summary.households, summary.members, summary.visits), (3, 4, 3));
    assert_eq!(summary.files, std::slice::from_ref(&path));

    let h = sheet(&path, "households");
    assert_eq!(h.height(), 2 + 3, "two header rows and one row per household");
    // Header row 1: the form's Indonesian labels; row 2: the machine names.
    assert_eq!(h.get_value((0, 0)), Some(&s("ID Keluarga (sistem)")));
    assert_eq!(at(&h, 0, "floor_material"), s("Jenis lantai terluas (kode)"));
    assert_eq!(at(&h, 0, "floor_material_label"), s("Jenis lantai terluas"));
    assert_eq!(at(&h, 0, "floor_area_m2"), s("Luas lantai (m²)"));
    assert_eq!(at(&h, 0, "head_name"), s("Nama kepala keluarga"));
    assert_eq!(at(&h, 0, "village_code"), s("Kode Desa/Kelurahan (Kemendagri)"));
    assert_eq!(at(&h, 0, "review_status_label"), s("Status pemeriksaan"));

    let wette = 2;
    assert_eq!(at(&h, wette, "household_id"), s(&Uuid::from_u128(1).to_string()));
    assert_eq!(at(&h, wette, "regency_code"), s("73.14"));
    assert_eq!(at(&h, wette, "regency_name"), s("Kabupaten Sidenreng Rappang"));
    assert_eq!(at(&h, wette, "district_code"), s("73.14.01"));
    assert_eq!(at(&h, wette, "district_name"), s("Panca Lautang"));
    assert_eq!(at(&h, wette, "village_code"), s("73.14.01.1002"));
    assert_eq!(at(&h, wette, "village_name"), s("Wette'E"));
    assert_eq!(at(&h, wette, "head_name"), s("Baso Wette'E"));
    assert_eq!(at(&h, wette, "address"), s(ADDRESS));
    assert_eq!(at(&h, wette, "dtsen_family_id"), s("SYN-1-000001"));
    assert_eq!(at(&h, wette, "kk_number"), s(KK), "KK stays text with all 16 digits");
    assert_eq!(at(&h, wette, "rt"), s("001"), "leading zeros survive");
    assert_eq!(at(&h, wette, "phone"), s("081234569001"));
    assert_eq!(at(&h, wette, "floor_area_m2"), Data::Float(36.0));
    assert_eq!(at(&h, wette, "floor_material"), Data::Float(2.0));
    assert_eq!(at(&h, wette, "floor_material_label"), s("keramik"));
    assert_eq!(at(&h, wette, "wall_material"), Data::Empty, "unanswered stays empty");
    assert_eq!(at(&h, wette, "wall_material_label"), Data::Empty);
    assert_eq!(at(&h, wette, "latitude"), Data::Float(-3.9876));
    assert_eq!(ymd_hms(&at(&h, wette, "dtsen_snapshot_date")), (2026, 1, 23, 0, 0, 0));
    assert_eq!(at(&h, wette, "review_status"), s("approved"));
    assert_eq!(at(&h, wette, "review_status_label"), s("Disetujui"));
    assert_eq!(at(&h, wette, "review_by"), s("spv.panca"));
    assert_eq!(ymd_hms(&at(&h, wette, "review_at")), (2025, 3, 2, 9, 15, 0));
    assert_eq!(at(&h, wette, "last_visit_outcome"), Data::Float(1.0));
    assert_eq!(at(&h, wette, "last_visit_outcome_label"), s("Ditemukan, wawancara lengkap"));
    assert_eq!(at(&h, wette, "current_member_count"), Data::Float(2.0), "the removed child is not counted");
    assert_eq!(at(&h, wette, "merged_into"), Data::Empty);

    let regapu = 3;
    assert_eq!(at(&h, regapu, "village_name"), s("Regapu’u"));
    assert_eq!(at(&h, regapu, "regency_name"), s("Kabupaten Sikka"));
    assert_eq!(at(&h, regapu, "district_name"), s("Paga"));
    assert_eq!(at(&h, regapu, "review_status_label"), s("Dikembalikan"));
    assert_eq!(at(&h, regapu, "last_visit_outcome"), Data::Float(1.0), "the latest of two visits");
    assert_eq!(ymd_hms(&at(&h, regapu, "last_visit_at")), (2025, 3, 4, 14, 5, 9));
    assert_eq!(at(&h, regapu, "merged_into"), s(&Uuid::from_u128(1).to_string()));

    let empty = 4;
    assert_eq!(at(&h, empty, "review_status"), Data::Empty);
    assert_eq!(at(&h, empty, "review_status_label"), s("Belum diajukan"));
    assert_eq!(at(&h, empty, "village_name"), Data::Empty);
    assert_eq!(at(&h, empty, "current_member_count"), Data::Float(0.0));
}

#[test]
fn xlsx_members_sheet_keeps_niks_as_text_dates_as_dates_and_shows_removed_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.xlsx");
    export_xlsx(&path, &households());
    let m = sheet(&path, "members");
    assert_eq!(m.height(), 2 + 4);
    assert_eq!(at(&m, 0, "nik"), s("NIK"));
    assert_eq!(at(&m, 0, "full_name"), s("Nama"));
    assert_eq!(at(&m, 0, "member_status"), s("Status anggota"));

    let (head, spouse, child, maria) = (2, 3, 4, 5);
    assert_eq!(at(&m, head, "household_id"), s(&Uuid::from_u128(1).to_string()));
    assert_eq!(at(&m, head, "member_id"), s(&Uuid::from_u128(0x10).to_string()));
    assert_eq!(at(&m, head, "dtsen_family_id"), s("SYN-1-000001"));
    assert_eq!(at(&m, head, "kk_number"), s(KK));
    assert_eq!(at(&m, head, "nik"), s(HEAD_NIK), "NIK is text with all 16 digits");
    assert_eq!(at(&m, spouse, "nik"), s(SPOUSE_NIK));
    assert_eq!(at(&m, head, "full_name"), s("Baso Wette'E"));
    assert_eq!(at(&m, spouse, "full_name"), s("Sitti Regapu’u"));
    assert_eq!(at(&m, head, "sex"), Data::Float(1.0));
    assert_eq!(at(&m, head, "sex_label"), s("laki-laki"));
    assert_eq!(at(&m, spouse, "sex_label"), s("perempuan"));
    assert_eq!(ymd_hms(&at(&m, head, "birth_date")), (1990, 1, 1, 0, 0, 0));
    assert_eq!(ymd_hms(&at(&m, spouse, "birth_date")), (1992, 2, 5, 0, 0, 0));
    assert_eq!(at(&m, child, "birth_date"), s("2015-98-98"), "unknown day and month stay text");
    // Multi-select: codes and labels joined; an exclusive code stands alone.
    assert_eq!(at(&m, head, "id_documents"), s("1; 4"));
    assert_eq!(at(&m, head, "id_documents_label"), s("akta lahir; KTP"));
    assert_eq!(at(&m, spouse, "id_documents"), s("0"));
    assert_eq!(at(&m, spouse, "id_documents_label"), s("tidak memiliki"));

    assert_eq!(at(&m, head, "member_status"), s("aktif"));
    assert_eq!(at(&m, head, "removed_at"), Data::Empty);
    assert_eq!(at(&m, child, "full_name"), s("Andi Wette'E"), "a removed member is still exported");
    assert_eq!(at(&m, child, "member_status"), s("dihapus"));
    assert_eq!(at(&m, child, "removed_by"), s("enum.wette"));
    assert_eq!(at(&m, child, "removed_reason"), s("pindah"));
    assert_eq!(ymd_hms(&at(&m, child, "removed_at")), (2025, 3, 1, 10, 30, 0));
    assert_eq!(at(&m, maria, "nik"), Data::Empty);
    assert_eq!(at(&m, maria, "household_id"), s(&Uuid::from_u128(2).to_string()));
}

#[test]
fn xlsx_visits_sheet_has_outcome_code_label_key_gps_note_and_visit_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.xlsx");
    export_xlsx(&path, &households());
    let v = sheet(&path, "visits");
    assert_eq!(v.height(), 2 + 3);
    assert_eq!(at(&v, 0, "outcome"), s("Hasil kunjungan (kode)"));
    assert_eq!(at(&v, 0, "purpose_label"), s("Tujuan kunjungan"));
    let names: Vec<Data> = (0..v.width() as u32).filter_map(|c| v.get_value((1, c)).cloned()).collect();
    assert_eq!(names.iter().filter(|n| **n == s("outcome")).count(), 1, "the outcome is not repeated");

    let first = 2;
    assert_eq!(at(&v, first, "visit_id"), s(&Uuid::from_u128(0x100).to_string()));
    assert_eq!(ymd_hms(&at(&v, first, "visited_at")), (2025, 3, 1, 10, 0, 0), "local time (WITA)");
    assert_eq!(at(&v, first, "user"), s("enum.wette"));
    assert_eq!(at(&v, first, "outcome"), Data::Float(1.0));
    assert_eq!(at(&v, first, "outcome_label"), s("Ditemukan, wawancara lengkap"));
    assert_eq!(at(&v, first, "outcome_key"), s("FOUND_COMPLETE"));
    assert_eq!(at(&v, first, "lat"), Data::Float(-3.9876));
    assert_eq!(at(&v, first, "lon"), Data::Float(119.7654));
    assert_eq!(at(&v, first, "accuracy_m"), Data::Float(8.5));
    assert_eq!(at(&v, first, "note"), s(NOTE));
    assert_eq!(at(&v, first, "purpose"), Data::Float(1.0));
    assert_eq!(at(&v, first, "purpose_label"), s("ground check DTSEN"));
    assert_eq!(at(&v, first, "notice_given"), Data::Bool(true));
    assert_eq!(at(&v, 3, "outcome_key"), s("NOT_HOME"));
    assert_eq!(at(&v, 3, "lat"), Data::Empty);
}

#[test]
fn csv_files_have_bom_crlf_rfc4180_quoting_and_utf8_names_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("kab-7314");
    let mut export = Export::create(ExportFormat::Csv, &prefix, form(), ZONE).expect("create");
    for h in households() {
        export.write(&h).expect("write");
    }
    let summary = export.finish().expect("finish");
    let names: Vec<PathBuf> = ["households", "members", "visits", "photos"]
        .iter()
        .map(|s| dir.path().join(format!("kab-7314-{s}.csv")))
        .collect();
    assert_eq!(summary.files, names);

    let households = std::fs::read(&names[0]).expect("read");
    assert!(households.starts_with(UTF8_BOM), "UTF-8 byte-order mark first");
    assert!(!households[3..].starts_with(UTF8_BOM));
    let body = &households[UTF8_BOM.len()..];
    // Every line ends in CRLF; no bare LF in a file without multi-line values.
    assert!(body.ends_with(b"\r\n"));
    assert_eq!(body.windows(2).filter(|w| w == b"\r\n").count(), 2 + 3);
    assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 2 + 3);
    assert!(body.starts_with("ID Keluarga (sistem),".as_bytes()));
    let has = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    // A label with a comma is quoted.
    assert!(has(body, b",\"Koordinat (akurasi, m)\","));
    // UTF-8 names, byte for byte: U+2019 is E2 80 99.
    assert!(has(body, b",Wette'E,"));
    assert!(has(body, b",Regapu\xE2\x80\x99u,"));
    assert!(has(body, b",Maria Regapu\xE2\x80\x99u,"));
    // RFC 4180: commas and quotes inside a field are quoted, inner quotes doubled.
    assert!(has(body, b",\"Jl. Poros, No. 5 \"\"Lorong 2\"\"\","));
    // Identifiers as ="…" so Excel keeps every digit; other digit strings Excel would change too.
    assert!(has(body, format!(",\"=\"\"{KK}\"\"\",").as_bytes()));
    assert!(has(body, b",\"=\"\"001\"\"\","));
    // Plain numbers and codes stay numbers; dates and times stay ISO text.
    assert!(has(body, b",36,2,keramik,"));
    assert!(has(body, b",2026-01-23,"));
    assert!(has(body, b",2025-03-02 09:15:00,"), "times as spreadsheets read them, on the WITA clock");

    let members = std::fs::read(&names[1]).expect("read");
    assert!(members.starts_with(UTF8_BOM));
    assert!(has(&members, format!(",\"=\"\"{HEAD_NIK}\"\"\",").as_bytes()));
    assert!(has(&members, b",Sitti Regapu\xE2\x80\x99u,"));
    assert!(has(&members, b",1; 4,akta lahir; KTP,"), "no comma, no quotes");
    assert!(has(&members, b",dihapus,2025-03-01 10:30:00,enum.wette,pindah\r\n"));

    let visits = std::fs::read(&names[2]).expect("read");
    // The note's own line break stays inside its quoted field; records still end in CRLF.
    assert!(has(&visits, b",\"Rumah di ujung lorong,\nsebelah masjid\","));
    assert!(has(&visits, b",TRUE"));
    assert_eq!(visits.windows(2).filter(|w| w == b"\r\n").count(), 2 + 3);

    // Read back as RFC 4180: every record has the header's width, and the values round-trip.
    for (path, sheet) in names.iter().zip(Sheet::ALL) {
        let bytes = std::fs::read(path).expect("read");
        let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[UTF8_BOM.len()..]);
        let records: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
        let plan = ColumnPlan::new(form(), ZONE).expect("plan");
        let labels: Vec<&str> = plan.columns(sheet).iter().map(|c| c.label.as_str()).collect();
        assert_eq!(records[0].iter().collect::<Vec<_>>(), labels);
        assert!(records.iter().all(|r| r.len() == labels.len()), "{}", sheet.name());
    }
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(&visits[UTF8_BOM.len()..]);
    let records: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let note = records[1].iter().position(|n| n == "note").expect("note column");
    assert_eq!(&records[2][note], NOTE);
}

#[test]
fn the_photo_sheet_lists_each_reference_with_the_file_pilar_photo_export_writes() {
    use sync_core::model::NewPhoto;
    use sync_core::photo::{Mime, PhotoId, PhotoKind};
    let mut household = wette_household();
    let mut document = {
        let id = household.id;
        let (doc, _) = Household::create(
            id,
            &form().key(),
            &editor("enum.wette", datetime!(2025-03-01 10:00:00 +08:00)),
            &Edits { answers: [("village_code".to_owned(), Some(text("73.14.01.1002")))].into(), ..Edits::default() },
        )
        .expect("create");
        doc
    };
    let kk = PhotoId::of_bytes(b"synthetic kk card photo");
    let front = PhotoId::of_bytes(b"synthetic house front photo");
    let photos = vec![
        NewPhoto { id: kk.clone(), kind: PhotoKind::KkCard, bytes: 123_456, mime: Mime::Jpeg },
        NewPhoto { id: front.clone(), kind: PhotoKind::HouseFront, bytes: 7_890, mime: Mime::Png },
    ];
    let photographer = editor("enum.wette", datetime!(2025-03-02 09:20:00 +08:00));
    let edits = Edits { add_photos: photos, ..Edits::default() };
    document.apply(&photographer, "photo", &edits, ok).expect("apply").expect("saved");
    household.photos = document.state().photos;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("foto.xlsx");
    let summary = export_xlsx(&path, &[household.clone(), regapu_household()]);
    assert_eq!(summary.photos, 2, "one row per photo reference");
    let p = sheet(&path, "photos");
    assert_eq!(p.height(), 2 + 2, "two header rows and two photos");
    for row in [2, 3] {
        let sha = match at(&p, row, "sha256") {
            Data::String(sha) => sha,
            other => panic!("sha256 cell {other:?}"),
        };
        let (id, kind, label, mime, bytes) = if sha == kk.as_str() {
            (&kk, "kk_card", "Kartu Keluarga", Mime::Jpeg, 123_456.0)
        } else {
            (&front, "house_front", "Tampak depan rumah", Mime::Png, 7_890.0)
        };
        assert_eq!(at(&p, row, "kind_label"), s(label));
        assert_eq!(at(&p, row, "household_id"), s(&household.id.to_string()));
        assert_eq!(at(&p, row, "kind"), s(kind));
        assert_eq!(at(&p, row, "bytes"), Data::Float(bytes));
        assert_eq!(at(&p, row, "mime"), s(mime.as_str()));
        assert_eq!(at(&p, row, "taken_by"), s("enum.wette"));
        assert_eq!(
            at(&p, row, "file"),
            s(&crate::photo_file_name(household.id, kind, id, mime)),
            "the file name `pilar photo export` writes"
        );
        assert_eq!(ymd_hms(&at(&p, row, "taken_at")), (2025, 3, 2, 9, 20, 0), "on the WITA clock");
    }
}

#[test]
fn xlsx_and_csv_have_the_same_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.xlsx");
    export_xlsx(&path, &[]);
    let prefix = dir.path().join("export");
    let summary = Export::create(ExportFormat::Csv, &prefix, form(), ZONE).expect("create").finish().expect("finish");
    for (file, sheet_kind) in summary.files.iter().zip(Sheet::ALL) {
        let range = sheet(&path, sheet_kind.name());
        let bytes = std::fs::read(file).expect("read");
        let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[UTF8_BOM.len()..]);
        let rows: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
        assert_eq!(rows.len(), 2, "an empty export still has both header rows");
        for (row, record) in rows.iter().enumerate() {
            let from_xlsx: Vec<Data> = (0..range.width() as u32)
                .map(|c| range.get_value((row as u32, c)).cloned().unwrap_or(Data::Empty))
                .collect();
            let from_csv: Vec<Data> = record.iter().map(s).collect();
            assert_eq!(from_xlsx, from_csv, "{} header row {}", sheet_kind.name(), row + 1);
        }
    }
}

/// Many households from one template, each with its own ids.
fn many(count: u128) -> impl Iterator<Item = HouseholdState> {
    let template = wette_household();
    (0..count).map(move |i| {
        let mut h = template.clone();
        h.id = HouseholdId(Uuid::from_u128(0x1_0000 + i));
        for (k, member) in h.members.iter_mut().enumerate() {
            member.id = MemberId(Uuid::from_u128((0x1_0000 + i) << 8 | k as u128));
        }
        h
    })
}

#[test]
fn xlsx_writer_flushes_rows_and_does_not_retain_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.xlsx");
    let mut export = XlsxExport::create(&path, form(), ZONE).expect("create");
    for h in many(5_000) {
        export.write(&h).expect("write");
    }
    assert!(!path.exists(), "nothing under the final name before finish");
    // In constant-memory mode a row is on disk, not in memory, once a later row was written: an
    // attempt to change the first data row is ignored. A writer that kept rows would apply it.
    export.write_text_for_test(Sheet::Households, 2, 0, "changed").expect("hook");
    export.write_text_for_test(Sheet::Members, 2, 0, "changed").expect("hook");
    let summary = export.finish().expect("finish");
    assert_eq!((summary.households, summary.members, summary.visits), (5_000, 15_000, 5_000));

    let h = sheet(&path, "households");
    assert_eq!(h.height(), 2 + 5_000);
    assert_eq!(h.get_value((2, 0)), Some(&s(&Uuid::from_u128(0x1_0000).to_string())));
    assert_eq!(h.get_value((5_001, 0)), Some(&s(&Uuid::from_u128(0x1_0000 + 4_999).to_string())));
    let m = sheet(&path, "members");
    assert_eq!(m.height(), 2 + 15_000);
    assert_eq!(m.get_value((2, 0)), Some(&s(&Uuid::from_u128(0x1_0000).to_string())));
    assert_eq!(at(&m, 15_001, "nik"), Data::Empty, "the last member is the child without a NIK");
    assert_eq!(at(&m, 15_000, "nik"), s(SPOUSE_NIK));
}

#[test]
fn csv_writer_streams_rows_to_disk_as_they_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("big");
    let mut export = CsvExport::create(&prefix, form(), ZONE).expect("create");
    for h in many(5_000) {
        export.write(&h).expect("write");
    }
    let partial = export.partial_paths();
    let on_disk: Vec<u64> = partial.iter().map(|p| std::fs::metadata(p).expect("partial file").len()).collect();
    let final_paths = csv_paths(&prefix).expect("paths");
    assert!(final_paths.iter().all(|p| !p.exists()), "nothing under the final names before finish");
    let summary = export.finish().expect("finish");
    assert!(partial.iter().all(|p| !p.exists()));
    // The photo index holds only its header rows (these households have no photos).
    for (path, written) in summary.files.iter().zip(on_disk).take(3) {
        let total = std::fs::metadata(path).expect("final file").len();
        // Before finish, all but the writer's 64 KiB buffer was already on disk.
        assert!(total > 1_000_000, "{total}");
        assert!(written + 64 * 1024 >= total, "{path:?}: {written} of {total} bytes on disk before finish");
    }
}

#[test]
fn abandoned_exports_leave_no_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = Export::create(ExportFormat::Csv, &dir.path().join("x"), form(), ZONE).expect("create");
    csv.write(&wette_household()).expect("write");
    drop(csv);
    let mut xlsx = Export::create(ExportFormat::Xlsx, &dir.path().join("x.xlsx"), form(), ZONE).expect("create");
    xlsx.write(&wette_household()).expect("write");
    drop(xlsx);
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn missing_output_directory_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-dir");
    for format in [ExportFormat::Xlsx, ExportFormat::Csv] {
        let message =
            format!("{:#}", Export::create(format, &missing.join("out.xlsx"), form(), ZONE).expect_err("refused"));
        assert!(message.contains("no-such-dir") && message.contains("does not exist"), "{message}");
    }
    let message = format!("{:#}", Export::create(ExportFormat::Xlsx, dir.path(), form(), ZONE).expect_err("refused"));
    assert!(message.contains("is a directory"), "{message}");
}

#[test]
fn household_of_another_form_is_refused_naming_both_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut export = Export::create(ExportFormat::Csv, &dir.path().join("x"), form(), ZONE).expect("create");
    for key in ["dtsen-ground-check@2", "other-form@1"] {
        let mut other = empty_household();
        other.form = key.to_owned();
        let message = format!("{:#}", export.write(&other).expect_err("refused"));
        assert!(message.contains(key) && message.contains("dtsen-ground-check@1"), "{message}");
    }
}

#[test]
fn an_export_laid_out_for_a_newer_version_takes_households_of_earlier_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let newer = FormDefinition { version: 3, ..form().clone() };
    let mut export = Export::create(ExportFormat::Csv, &dir.path().join("x"), &newer, ZONE).expect("create");
    for key in ["dtsen-ground-check@1", "dtsen-ground-check@3"] {
        let mut household = empty_household();
        household.form = key.to_owned();
        export.write(&household).expect(key);
    }
}

#[test]
fn plan_lists_every_form_field_once_in_form_order_with_unique_names() {
    let plan = ColumnPlan::new(form(), ZONE).expect("plan");
    for (sheet, scope) in [(Sheet::Households, Scope::Household), (Sheet::Members, Scope::Member)] {
        let names: Vec<&str> = plan.columns(sheet).iter().map(|c| c.name.as_str()).collect();
        let position =
            |field: &str| names.iter().position(|n| *n == field).unwrap_or_else(|| panic!("{field} missing"));
        // village_code sits in the location block, before every other household field.
        let positions: Vec<usize> =
            form().fields(scope).iter().filter(|f| f.name != "village_code").map(|f| position(&f.name)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{scope} fields in form order");
        if sheet == Sheet::Households {
            assert!(positions.iter().all(|p| position("village_code") < *p));
            assert_eq!(position("village_code") + 1, position("village_name"));
        }
    }
    let columns = plan.columns(Sheet::Members);
    let nik = columns.iter().find(|c| c.name == "nik").expect("nik");
    assert_eq!(nik.kind, ColumnKind::Identifier);
    let sex = columns.iter().position(|c| c.name == "sex").expect("sex");
    assert_eq!(columns[sex + 1].name, "sex_label", "the label follows its code");
}

#[test]
fn csv_text_guards_what_excel_would_change_and_nothing_else() {
    let t = |v: &str| csv_text(&Cell::Text(Cow::Borrowed(v))).into_owned();
    assert_eq!(t("001"), "=\"001\"");
    assert_eq!(t("081234569001"), "=\"081234569001\"");
    assert_eq!(t("+6281234569001"), "=\"+6281234569001\"");
    assert_eq!(t("2024-03"), "=\"2024-03\"");
    assert_eq!(t("=HYPERLINK(\"x\")"), "=\"=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(t("Wette'E"), "Wette'E");
    assert_eq!(t("Regapu’u"), "Regapu’u");
    assert_eq!(t("1; 4"), "1; 4");
    assert_eq!(t("RT 01"), "RT 01");
    assert_eq!(t(""), "");
    let long_formula = format!("={}", "a".repeat(300));
    assert_eq!(t(&long_formula), format!("'{long_formula}"));
    assert_eq!(csv_text(&Cell::Identifier(Cow::Borrowed(HEAD_NIK))), format!("=\"{HEAD_NIK}\""));
    assert_eq!(csv_text(&Cell::Int(12)), "12");
    assert_eq!(csv_text(&Cell::Decimal(-3.9876)), "-3.9876");
    assert_eq!(csv_text(&Cell::Date(Cow::Borrowed("1990-01-01"))), "1990-01-01");
}

/// One part of a written XLSX file (a zip of XML parts), as text.
fn xlsx_part(path: &Path, part: &str) -> String {
    let file = std::fs::File::open(path).expect("open the workbook");
    let mut archive = zip::ZipArchive::new(file).expect("an xlsx is a zip archive");
    let mut entry = archive.by_name(part).unwrap_or_else(|_| panic!("no {part} in the workbook"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).expect("utf-8 xml");
    text
}

/// The value of `attribute` in the first `<element …>` tag of `xml`, if both are there.
fn xml_attribute<'x>(xml: &'x str, element: &str, attribute: &str) -> Option<&'x str> {
    let start = xml.find(&format!("<{element} "))?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let key = format!(" {attribute}=\"");
    let value = &tag[tag.find(&key)? + key.len()..];
    Some(&value[..value.find('"')?])
}

/// Every `<col min max width>` of a sheet as (first column, last column, width), 1-based.
fn xml_columns(xml: &str) -> Vec<(usize, usize, f64)> {
    xml.split("<col ")
        .skip(1)
        .map(|tag| {
            let tag = format!("<col {}", &tag[..=tag.find('>').expect("closed tag")]);
            let number = |name: &str| xml_attribute(&tag, "col", name).expect(name).parse::<f64>().expect(name);
            (number("min") as usize, number("max") as usize, number("width"))
        })
        .collect()
}

/// The width Excel shows column `col` (0-based) with.
fn column_width(columns: &[(usize, usize, f64)], col: usize) -> f64 {
    columns.iter().find(|(min, max, _)| (*min..=*max).contains(&(col + 1))).map(|c| c.2).expect("a width")
}

/// The height of row `row` (1-based) in points.
fn row_height(xml: &str, row: u32) -> f64 {
    let tag = xml.split("<row ").skip(1).find(|t| t.starts_with(&format!("r=\"{row}\""))).expect("the row");
    let tag = format!("<row {}", &tag[..=tag.find('>').expect("closed tag")]);
    xml_attribute(&tag, "row", "ht").map_or(15.0, |h| h.parse().expect("height"))
}

#[test]
fn xlsx_sheets_print_landscape_one_page_wide_with_both_header_rows_on_every_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.xlsx");
    export_xlsx(&path, &households());
    let workbook = xlsx_part(&path, "xl/workbook.xml");
    for (index, sheet) in Sheet::ALL.into_iter().enumerate() {
        let xml = xlsx_part(&path, &format!("xl/worksheets/sheet{}.xml", index + 1));
        assert_eq!(xml_attribute(&xml, "pageSetUpPr", "fitToPage"), Some("1"), "{}: scaled to fit", sheet.name());
        assert_eq!(xml_attribute(&xml, "pageSetup", "orientation"), Some("landscape"), "{}", sheet.name());
        // Excel's default for fitToWidth is 1 (one page wide); 0 pages tall means "as many as needed".
        assert_eq!(xml_attribute(&xml, "pageSetup", "fitToWidth").unwrap_or("1"), "1", "{}", sheet.name());
        assert_eq!(xml_attribute(&xml, "pageSetup", "fitToHeight"), Some("0"), "{}", sheet.name());
        assert_eq!(xml_attribute(&xml, "pageSetup", "paperSize"), Some("9"), "{}: A4", sheet.name());
        assert!(xml.contains("Halaman &amp;P dari &amp;N"), "{}: page numbers in the footer", sheet.name());
        // Rows 1 and 2 (labels and machine names) repeat at the top of every printed page.
        let titles = format!(
            "<definedName name=\"_xlnm.Print_Titles\" localSheetId=\"{index}\">{}!$1:$2</definedName>",
            sheet.name()
        );
        assert!(workbook.contains(&titles), "{}: {workbook}", sheet.name());
    }
}

#[test]
fn xlsx_header_rows_fit_their_text_and_columns_fit_their_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.xlsx");
    let mut long_address = wette_household();
    long_address.answers.insert("address".into(), text(&"Jl. Poros Bilokka ".repeat(8)));
    export_xlsx(&path, &[wette_household(), long_address]);
    let plan = ColumnPlan::new(form(), ZONE).expect("plan");
    for (index, sheet) in Sheet::ALL.into_iter().enumerate() {
        let xml = xlsx_part(&path, &format!("xl/worksheets/sheet{}.xml", index + 1));
        let widths = xml_columns(&xml);
        let label_row = row_height(&xml, 1);
        assert_ne!(label_row, 30.0, "no fixed height that cuts a third line");
        for (col, column) in plan.columns(sheet).iter().enumerate() {
            let width = column_width(&widths, col);
            // The machine name fits its column, so neighbouring names never run into each other.
            assert!(width >= column.name.chars().count() as f64 + 1.0, "{}: {} in {width}", sheet.name(), column.name);
            // Every label fits the label row when wrapped at spaces, counting a line as two
            // characters narrower than the column (bold text and padding).
            let per_line = (width as usize - 2).max(1);
            let mut lines = 1;
            let mut used = 0;
            for word in column.label.split_whitespace() {
                let len = word.chars().count();
                if used > 0 && used + 1 + len > per_line {
                    lines += 1;
                    used = 0;
                }
                lines += len.saturating_sub(1) / per_line;
                used += len % per_line + usize::from(used > 0);
            }
            assert!(
                label_row >= 15.0 * lines as f64,
                "{}: label {:?} takes {lines} line(s) at width {width}, the row is {label_row} pt",
                sheet.name(),
                column.label
            );
        }
    }
    let households = xlsx_part(&path, "xl/worksheets/sheet1.xml");
    let widths = xml_columns(&households);
    let width_of = |name: &str| {
        column_width(&widths, plan.columns(Sheet::Households).iter().position(|c| c.name == name).expect(name))
    };
    assert!(width_of("household_id") >= 37.0, "a household id is shown whole");
    // The file stores Excel's width plus its cell padding (0.71 character).
    let address = width_of("address");
    assert!((50.0..51.0).contains(&address), "long content widens a column up to the bound: {address}");
    assert!(width_of("rt") < 12.0, "short content keeps a column narrow: {}", width_of("rt"));
}

#[test]
fn every_column_title_is_distinct_and_codes_are_titled_as_codes() {
    let plan = ColumnPlan::new(form(), ZONE).expect("plan");
    for sheet in Sheet::ALL {
        let columns = plan.columns(sheet);
        let mut seen = std::collections::HashSet::new();
        for column in columns {
            assert!(seen.insert(column.label.as_str()), "{}: two columns titled {:?}", sheet.name(), column.label);
        }
        for pair in columns.windows(2) {
            if pair[1].name == format!("{}_label", pair[0].name) {
                assert_eq!(pair[0].label, format!("{} (kode)", pair[1].label), "{}", sheet.name());
            }
        }
    }
    let roof = plan.columns(Sheet::Households).iter().find(|c| c.name == "roof_material").expect("roof");
    assert!(roof.label.ends_with(" (kode)"), "{}", roof.label);
}

/// A household of Bilokka (73.14.01.1001, Sulawesi Selatan: WITA) visited at 13:19:56 UTC, stored
/// as UTC the way a device whose clock runs in UTC stores it.
fn visited_at_utc() -> HouseholdState {
    let mut household = regapu_household();
    household.answers.insert("village_code".into(), text("73.14.01.1001"));
    household.visits.truncate(1);
    household.visits[0].at = "2026-12-01T13:19:56Z".into();
    household
}

/// Whether a spreadsheet opening a CSV reads `text` as a date and time rather than text: Excel's
/// and LibreOffice's rule for ISO dates, `yyyy-mm-dd` then a space and `hh:mm` or `hh:mm:ss`, each
/// part in range. `T` between date and time, a `Z` or an offset make it text in Excel.
fn spreadsheet_reads_as_datetime(text: &str) -> bool {
    let Some((date, time)) = text.split_once(' ') else { return false };
    let numbers = |s: &str, sep: char| s.split(sep).map(|p| p.parse::<u32>().ok()).collect::<Option<Vec<u32>>>();
    let (Some(date), Some(time)) = (numbers(date, '-'), numbers(time, ':')) else { return false };
    let date_ok = match date.as_slice() {
        [year, month, day] => {
            (1900..=9999).contains(year)
                && time::Month::try_from(*month as u8)
                    .ok()
                    .and_then(|m| time::Date::from_calendar_date(*year as i32, m, *day as u8).ok())
                    .is_some()
        }
        _ => false,
    };
    let time_ok = match time.as_slice() {
        [hour, minute] => *hour < 24 && *minute < 60,
        [hour, minute, second] => *hour < 24 && *minute < 60 && *second < 60,
        _ => false,
    };
    date_ok && time_ok
}

#[test]
fn csv_times_are_local_dates_spreadsheets_parse_with_the_zone_in_the_header() {
    assert!(!spreadsheet_reads_as_datetime("2026-12-01T13:19:56Z"), "the old form stays text");
    assert!(!spreadsheet_reads_as_datetime("2026-12-01 13:19:56+08:00"));
    assert!(!spreadsheet_reads_as_datetime("2026-02-30 13:19:56"));
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("sulawesi");
    let mut export = Export::create(ExportFormat::Csv, &prefix, form(), ZONE).expect("create");
    export.write(&visited_at_utc()).expect("write");
    let summary = export.finish().expect("finish");
    let bytes = std::fs::read(&summary.files[2]).expect("visits csv");
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[UTF8_BOM.len()..]);
    let records: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let column = records[1].iter().position(|n| n == "visited_at").expect("visited_at keeps its machine name");
    assert_eq!(&records[0][column], "Waktu kunjungan (WITA)", "the zone is named in the header");
    assert_eq!(&records[2][column], "2026-12-01 21:19:56", "13:19:56 UTC is 21:19:56 WITA");
    assert!(spreadsheet_reads_as_datetime(&records[2][column]));
}

#[test]
fn xlsx_times_are_excel_dates_on_the_villages_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sulawesi.xlsx");
    export_xlsx(&path, &[visited_at_utc()]);
    let v = sheet(&path, "visits");
    assert_eq!(at(&v, 0, "visited_at"), s("Waktu kunjungan (WITA)"));
    assert_eq!(ymd_hms(&at(&v, 2, "visited_at")), (2026, 12, 1, 21, 19, 56));
    let h = sheet(&path, "households");
    assert_eq!(at(&h, 0, "last_visit_at"), s("Waktu kunjungan terakhir (WITA)"));
    assert_eq!(ymd_hms(&at(&h, 2, "last_visit_at")), (2026, 12, 1, 21, 19, 56));
    // Without a known zone, times stay UTC and say so.
    let plan = ColumnPlan::new(form(), None).expect("plan");
    let visited = plan.columns(Sheet::Visits).iter().find(|c| c.name == "visited_at").expect("visited_at");
    assert_eq!(visited.label, "Waktu kunjungan (UTC)");
}
