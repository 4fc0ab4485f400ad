//! Roster reading, end to end from file bytes to households and problems. Synthetic data only
//! (domain.md §3): NIK and KK serials 9000 and up, family ids `SYN-`, villages of 73.14.01.

use std::collections::BTreeSet;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use sync_core::finding::Severity;
use sync_core::form::FormDefinition;
use sync_core::value::FieldValue;
use time::Date;
use time::macros::date;

use super::report::render_report;
use super::synthetic::synthetic_roster_csv;
use super::*;

const TODAY: Date = date!(2026 - 03 - 01);

/// Auto layout, unknown columns reported, first sheet.
fn options() -> RosterOptions {
    RosterOptions { layout: Layout::Auto, ignore_unknown: false, today: TODAY, sheet: None }
}

fn form() -> &'static FormDefinition {
    FormDefinition::default_dtsen()
}

/// Reads `bytes` as a CSV roster, keeping the households; also checks the same bytes from a file
/// as `--check` does (streamed, no household kept) and requires the same problems and counts.
fn read_with(bytes: &[u8], options: &RosterOptions) -> RosterFile {
    let file = read_csv(form(), bytes, options, &mut |_| {});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("roster.csv");
    std::fs::write(&path, bytes).expect("write roster");
    let checked = check_roster(form(), &path, options, &mut |_| {}).expect("readable");
    assert_eq!(checked.problems, file.problems, "a check reports what a read reports");
    assert!(checked.households.is_empty(), "a check keeps no household");
    assert_eq!(
        (checked.rows, checked.household_count, checked.clean_count, checked.layout),
        (file.rows, file.households.len(), file.clean_households().len(), file.layout),
        "a check counts what a read keeps"
    );
    assert_eq!(file.clean_count, file.clean_households().len());
    file
}

fn read(bytes: &[u8]) -> RosterFile {
    read_with(bytes, &options())
}

/// (row, column, rule) of every blocking problem, in report order.
fn errors(file: &RosterFile) -> Vec<(usize, &str, &str)> {
    file.problems.iter().filter(|p| p.is_blocking()).map(|p| (p.row, p.column.as_str(), p.rule.as_str())).collect()
}

fn clean_rows(file: &RosterFile) -> Vec<usize> {
    file.clean_households().iter().map(|h| h.row).collect()
}

fn text(value: Option<&FieldValue>) -> Option<&str> {
    value.and_then(FieldValue::as_text)
}

#[test]
fn example_per_person_roster_reads_without_any_problem() {
    let mut progress = Vec::new();
    let file =
        read_csv(form(), include_bytes!("../../docs/examples/roster.csv"), &options(), &mut |done| progress.push(done));
    assert!(file.problems.is_empty(), "{}", render_report(&file));
    assert_eq!((file.layout, file.rows, file.households.len()), (Layout::PerPerson, 14, 6));
    let sizes: Vec<usize> = file.households.iter().map(|h| h.members.len()).collect();
    assert_eq!(sizes, [3, 2, 1, 4, 2, 2]);
    let first = &file.households[0];
    assert_eq!((first.row, first.member_rows.as_slice()), (2, [2, 3, 4].as_slice()));
    assert_eq!(first.family_id.as_deref(), Some("SYN-0001"));
    assert_eq!(first.village, "73.14.01.1001");
    assert_eq!(text(first.answers.get("head_name")), Some("Wette'E Bin Ali"), "derived from the head's row");
    assert_eq!(text(file.households[1].members[0].get("full_name")), Some("Sitti Regapu’u"));
    assert_eq!(file.households[3].village, "73.14.01.2004");
    assert_eq!(progress.last(), Some(&14));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(file.clean_households().len(), 6);
}

#[test]
fn example_per_household_roster_reads_with_indonesian_labels_as_headers() {
    let file = read(include_bytes!("../../docs/examples/roster-households.csv"));
    assert!(file.problems.is_empty(), "{}", render_report(&file));
    assert_eq!((file.layout, file.rows, file.households.len()), (Layout::PerHousehold, 6, 6));
    let second = &file.households[1];
    assert_eq!(second.row, 3);
    assert_eq!(second.family_id.as_deref(), Some("SYN-0002"));
    assert_eq!(text(second.answers.get("head_name")), Some("Sitti Regapu’u"));
    assert_eq!(second.answers.get("member_count"), Some(&FieldValue::Int(2)));
    assert!(second.members.is_empty());
}

#[test]
fn per_household_row_may_carry_the_heads_member_fields() {
    let csv = "family_id,village_code,full_name,nik,sex,presence\n\
               SYN-1,7314011001,Wette'E Bin Ali,7314011503809001,laki-laki,1\n";
    let file = read(csv.as_bytes());
    assert!(file.problems.is_empty(), "{}", render_report(&file));
    let household = &file.households[0];
    assert_eq!(household.village, "73.14.01.1001", "stored dotted");
    assert_eq!(household.members[0].get("relationship"), Some(&FieldValue::Int(1)), "the row's person is the head");
    assert_eq!(household.members[0].get("sex"), Some(&FieldValue::Int(1)), "a choice label is read as its code");
    assert_eq!(text(household.answers.get("head_name")), Some("Wette'E Bin Ali"));
}

#[test]
fn headers_match_labels_in_any_case_and_unknown_columns_are_reported() {
    let csv = "ID KELUARGA DTSEN, kode desa/kelurahan (KEMENDAGRI) ,Nama  Kepala Keluarga,Warna rumah\n\
               SYN-1,73.14.01.1001,Wette'E Bin Ali,hijau\n";
    let file = read(csv.as_bytes());
    assert_eq!(errors(&file), [(1, "Warna rumah", "unknown_column")]);
    assert_eq!(text(file.households[0].answers.get("village_code")), Some("73.14.01.1001"));
    assert!(clean_rows(&file).is_empty(), "a header error concerns every row");

    let options = RosterOptions { ignore_unknown: true, ..options() };
    let file = read_with(csv.as_bytes(), &options);
    assert!(file.problems.is_empty(), "{}", render_report(&file));
    assert_eq!(clean_rows(&file), [2]);
}

#[test]
fn a_missing_required_column_is_reported_once_not_on_every_row() {
    let csv = "family_id,head_name\nSYN-1,Wette'E\nSYN-2,Baso\n";
    let file = read(csv.as_bytes());
    assert_eq!(errors(&file), [(1, "village_code", "missing_column")]);
}

#[test]
fn broken_one_row_per_household_file_reports_every_broken_row() {
    let mut csv = b"family_id,village_code,nik,full_name,sex,presence,head_name,rt\n\
        SYN-1,73.14.01.1001,7314011503809001,Wette'E Bin Ali,1,1,,001\n\
        SYN-2,73.14.01.1001,7314011513809002,Baso Olimoo'o,1,1,,001\n\
        SYN-3,73.14.01.1999,7314011503809003,Kasim Taula'a,1,1,,001\n\
        SYN-4,73.14.01.1001,,,,,,001\n\
        SYN-2,73.14.01.1001,7314011503809006,Hasan Baco,1,1,,001\n"
        .to_vec();
    csv.extend_from_slice(b"SYN-7,73.14.01.1001,7314015503809007,Sitti Regapu\x92u,2,1,,001\n");
    csv.extend_from_slice(b"SYN-8,73.14.01.1001,7314011503809008,Yusuf Beddu,laki,1,,001\n");
    let file = read(&csv);
    assert_eq!(file.layout, Layout::PerHousehold);
    assert_eq!(
        errors(&file),
        [
            (3, "family_id", "duplicate_family_id"),
            (3, "nik", "nik_month_range"),
            (4, "village_code", "village_code_unknown"),
            (5, "head_name", "required"),
            (6, "family_id", "duplicate_family_id"),
            (7, "full_name", "encoding"),
            (8, "sex", "choice"),
        ],
        "{}",
        render_report(&file)
    );
    assert!(file.has_errors());
    assert_eq!(clean_rows(&file), [2], "only the first row is clean");
    let encoding = file.problems.iter().find(|p| p.rule == "encoding").expect("an encoding problem");
    assert_eq!(encoding.value, "Sitti Regapu’u", "shown as Windows-1252");
    let duplicate = file.problems.iter().find(|p| p.row == 6).expect("a duplicate");
    assert!(duplicate.message.contains("already on row 3"), "{}", duplicate.message);
    assert_eq!(file.problems.len(), 7, "no warnings either: {}", render_report(&file));
    for problem in &file.problems {
        assert!(!problem.message.contains("7314011513809002"), "{}", problem.message);
    }
}

#[test]
fn broken_one_row_per_person_file_reports_every_broken_row() {
    let mut csv = b"family_id,kk_number,village_code,rt,full_name,nik,sex,birth_date,relationship,presence\n\
        SYN-1,7314010503159001,73.14.01.1001,001,Wette'E Bin Ali,7314011503809001,1,1980-03-15,1,1\n\
        SYN-1,7314010503159001,73.14.01.1001,002,Besse Ratna,7314015207859002,2,1985-07-12,2,1\n"
        .to_vec();
    csv.extend_from_slice(b"SYN-2,7314011206189004,73.14.01.1001,001,Sitti Regapu\x92u,7314014211729005,2,,1,1\n");
    csv.extend_from_slice(
        b"SYN-2,,,,Muh Regapu'u,731401090401900,1,2001-04-09,3,1\n\
          SYN-3,7314012209209007,73.14.01.1001,003,Baso Olimoo'o,7314013006559008,,1955-06-30,1,1\n\
          ,,73.14.01.1001,003,Andi Contoh,7314012001109010,1,2010-01-20,3,1\n\
          SYN-4,7314010101199009,73.14.01.2004,001,Kasim Taula'a,7314010808789010,1,1978-08-08,1,1\n\
          SYN-4,7314010101199009,73.14.01.2004,001,Nur Aini,7314015402819011,2,1981-02-14,2,1\n",
    );
    let file = read(&csv);
    assert_eq!(file.layout, Layout::PerPerson);
    assert_eq!(
        errors(&file),
        [
            (3, "rt", "household_disagrees"),
            (4, "full_name", "encoding"),
            (5, "nik", "nik_length"),
            (6, "sex", "required"),
            (7, "family_id", "no_group_key"),
            (7, "head_name", "required"),
        ],
        "{}",
        render_report(&file)
    );
    let disagreement = file.problems.iter().find(|p| p.row == 3).expect("a disagreement");
    assert!(disagreement.message.contains("row 2"), "names the other row: {}", disagreement.message);
    assert_eq!(disagreement.value, "002");
    assert_eq!(clean_rows(&file), [8], "only SYN-4 (rows 8 and 9) is clean");
    assert_eq!(
        file.households.iter().map(|h| h.rows()).collect::<Vec<_>>(),
        [vec![2, 3], vec![4, 5], vec![6], vec![7], vec![8, 9]]
    );
}

#[test]
fn forced_layout_overrides_detection() {
    let csv = b"family_id,village_code,full_name,sex,presence,relationship\n\
        SYN-1,73.14.01.1001,Wette'E Bin Ali,1,1,1\n\
        SYN-1,73.14.01.1001,Besse Ratna,2,1,2\n";
    let auto = read(csv);
    assert_eq!((auto.layout, auto.households.len()), (Layout::PerPerson, 1));
    assert!(auto.problems.is_empty(), "{}", render_report(&auto));

    let options = RosterOptions { layout: Layout::PerHousehold, ..options() };
    let forced = read_with(csv, &options);
    assert_eq!(forced.layout, Layout::PerHousehold);
    assert_eq!(
        errors(&forced),
        [
            (2, "family_id", "duplicate_family_id"),
            (3, "family_id", "duplicate_family_id"),
            // Besse is not the head (relationship 2), so the second "household" has no head name.
            (3, "head_name", "required"),
        ]
    );
}

#[test]
fn bom_semicolons_blank_lines_and_multiline_cells_keep_spreadsheet_row_numbers() {
    let csv = "\u{feff}family_id;village_code;head_name;address\n\
               SYN-1;73.14.01.1001;Wette'E;\"Jl. Poros\nBlok B\"\n\
               \n\
               SYN-2;73.14.01.1999;Baso;Dusun Wanio\n";
    let file = read(csv.as_bytes());
    assert_eq!(errors(&file), [(4, "village_code", "village_code_unknown")], "{}", render_report(&file));
    assert_eq!(text(file.households[0].answers.get("address")), Some("Jl. Poros\nBlok B"));
    assert_eq!(file.rows, 2);
    let windows = read(csv.replace('\n', "\r\n").as_bytes());
    assert_eq!(errors(&windows), [(4, "village_code", "village_code_unknown")], "{}", render_report(&windows));
}

#[test]
fn utf16_and_empty_files_are_one_clear_problem() {
    let file = read(b"\xFF\xFEf\x00a\x00");
    assert_eq!(errors(&file), [(1, "", "encoding")]);
    assert!(file.problems[0].message.contains("UTF-16"), "{}", file.problems[0].message);
    let file = read(b"");
    assert_eq!(errors(&file), [(1, "", "empty_file")]);
    assert!(file.households.is_empty());
}

#[test]
fn xlsx_roster_reads_dates_numbers_and_flags_identifiers_stored_as_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("roster.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    // The table starts on the sheet's second row: problems must use the sheet's row numbers.
    let header = ["family_id", "village_code", "rt", "full_name", "nik", "sex", "birth_date", "presence"];
    for (col, name) in (0u16..).zip(header) {
        sheet.write_string(1, col, name).expect("header");
    }
    let rows = [("SYN-1", "Wette'E Bin Ali", 1980u16, 3u8, 15u8), ("SYN-2", "Sitti Regapu’u", 1972, 11, 2)];
    for (row, (family, name, year, month, day)) in (2u32..).zip(rows) {
        sheet.write_string(row, 0, family).expect("family id");
        sheet.write_string(row, 1, "73.14.01.1001").expect("village");
        sheet.write_number(row, 2, 1.0).expect("rt");
        sheet.write_string(row, 3, name).expect("name");
        let born = ExcelDateTime::from_ymd(year, month, day).expect("date");
        sheet.write_datetime_with_format(row, 6, &born, &date_format).expect("birth date");
        sheet.write_number(row, 7, 1.0).expect("presence");
    }
    sheet.write_string(2, 4, "7314011503809001").expect("nik as text");
    sheet.write_number(2, 5, 1.0).expect("sex");
    sheet.write_number(3, 4, 7314014211729005.0).expect("nik as a number");
    sheet.write_number(3, 5, 2.0).expect("sex");
    workbook.save(&path).expect("saved");

    let file = read_roster(form(), &path, &options(), &mut |_| {}).expect("readable");
    assert_eq!(file.header_row, 2);
    assert_eq!(errors(&file), [(4, "nik", "number_precision")], "{}", render_report(&file));
    assert_eq!(file.households.iter().map(|h| h.row).collect::<Vec<_>>(), [3, 4]);
    let head = &file.households[0].members[0];
    assert_eq!(text(head.get("birth_date")), Some("1980-03-15"));
    assert_eq!(text(head.get("nik")), Some("7314011503809001"));
    assert_eq!(text(file.households[0].answers.get("rt")), Some("001"), "padded to three digits");
    assert_eq!(head.get("age_years"), Some(&FieldValue::Int(45)), "derived from the birth date");
    assert_eq!(clean_rows(&file), [3]);
}

#[test]
fn a_missing_xlsx_sheet_is_an_error_naming_the_sheets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("roster.xlsx");
    let mut workbook = Workbook::new();
    workbook.add_worksheet().set_name("Daftar").expect("name").write_string(0, 0, "family_id").expect("cell");
    workbook.save(&path).expect("saved");
    let options = RosterOptions { sheet: Some("Roster".into()), ..options() };
    let error = read_roster(form(), &path, &options, &mut |_| {}).expect_err("no such sheet");
    assert!(error.to_string().contains("Daftar"), "{error}");
}

#[test]
fn synthetic_roster_of_two_thousand_rows_reads_clean() {
    let bytes = synthetic_roster_csv(2_000);
    let mut last = 0;
    let file = read_csv(form(), &bytes, &options(), &mut |done| last = done);
    assert!(file.problems.is_empty(), "{}", render_report(&file));
    assert_eq!((file.rows, last, file.layout), (2_000, 2_000, Layout::PerPerson));
    let families: BTreeSet<&str> = file.households.iter().filter_map(|h| h.family_id.as_deref()).collect();
    assert_eq!(families.len(), file.households.len());
    assert!(families.iter().all(|id| id.starts_with("SYN-")));
    assert_eq!(file.households.iter().map(|h| h.members.len()).sum::<usize>(), 2_000);
    assert_eq!(file.clean_households().len(), file.households.len());
}

#[test]
fn report_has_one_line_per_problem_with_row_column_value_and_rule() {
    let csv = "family_id,village_code,head_name,nik,full_name,sex,presence\n\
               SYN-1,73.14.01.1001,Wette'E,7314011513809002,Wette'E,1,1\n\
               SYN-2,73.14.01.1001,Baso,9101011503809003,Baso,1,1\n";
    let file = read(csv.as_bytes());
    let report = render_report(&file);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert!(
        lines[0].starts_with(r#"row 2, column nik, value "7314011513809002": "#)
            && lines[0].ends_with("(rule nik_month_range)"),
        "{report}"
    );
    assert!(lines[1].starts_with(r#"row 3, column nik, value "9101011503809003": warning: "#), "{report}");
    assert!(lines[2].contains("1 error(s), 1 warning(s); 1 household(s) without errors"), "{report}");
    assert_eq!(file.problems[1].severity, Severity::Warn);
}

/// (row, column, rule, blocking) of every problem, in report order.
fn all_problems(file: &RosterFile) -> Vec<(usize, &str, &str, bool)> {
    file.problems.iter().map(|p| (p.row, p.column.as_str(), p.rule.as_str(), p.is_blocking())).collect()
}

#[test]
fn an_identifier_excel_wrote_in_scientific_notation_is_one_error_saying_how_to_fix_it() {
    let csv = "family_id,village_code,kk_number,full_name,nik,sex,presence\n\
               SYN-1,73.14.01.1001,7314010503159001,Wette'E Bin Ali,7.31401E+15,1,1\n\
               SYN-2,73.14.01.1001,\"7,31401E+15\",Baso Olimoo'o,7314011503809002,1,1\n\
               SYN-3,73.14.01.1001,7314010503159003,Kasim Taula'a,\"7,314,011,503,809,000\",1,1\n\
               SYN-4,73.14.01.1001,7314010503159004,Hasan Baco,7314011503809000.00,1,1\n\
               SYN-5,73.14.01.1001,7314010503159005,Yusuf Beddu,7314011503809005,1,1\n";
    let file = read(csv.as_bytes());
    assert_eq!(
        errors(&file),
        [
            (2, "nik", "excel_number"),
            (3, "kk_number", "excel_number"),
            (4, "nik", "excel_number"),
            (5, "nik", "excel_number")
        ],
        "one error per changed cell, no digit rules on what is left of it: {}",
        render_report(&file)
    );
    let scientific = &file.problems[0];
    assert_eq!(scientific.value, "7.31401E+15", "the value as the file has it");
    for needed in [
        "Excel changed this identifier into a number",
        "scientific notation",
        "only 6 digit(s)",
        "format the column as Text",
        "import this column as Text",
    ] {
        assert!(scientific.message.contains(needed), "{needed:?} in {}", scientific.message);
    }
    assert!(!scientific.message.contains("7.31401"), "messages never repeat the value");
    let grouped = &file.problems[2];
    assert!(
        grouped.message.contains("thousands separators") && grouped.message.contains("the 16th"),
        "{}",
        grouped.message
    );
    assert_eq!(clean_rows(&file), [6]);
}

#[test]
fn a_column_whose_identifiers_all_end_in_zero_gets_one_warning_on_the_header() {
    let csv = "family_id,village_code,full_name,nik,sex,presence\n\
               SYN-1,73.14.01.1001,Wette'E Bin Ali,7314011503809010,1,1\n\
               SYN-2,73.14.01.1001,Baso Olimoo'o,7314011503809020,1,1\n\
               SYN-3,73.14.01.1001,Kasim Taula'a,7314011503809030,1,1\n";
    let file = read(csv.as_bytes());
    assert_eq!(all_problems(&file), [(1, "nik", "excel_trailing_zeros", false)], "{}", render_report(&file));
    let warning = &file.problems[0];
    for needed in ["all 3 numbers in this column end in 0", "Excel keeps only 15 digits", "format the column as Text"] {
        assert!(warning.message.contains(needed), "{needed:?} in {}", warning.message);
    }
    assert_eq!(clean_rows(&file), [2, 3, 4], "a warning blocks nothing");

    // One identifier that does not end in 0 is enough to trust the column; so are too few values.
    let mixed = csv.replace("7314011503809030", "7314011503809031");
    assert!(read(mixed.as_bytes()).problems.is_empty());
    let two: String = csv.lines().take(3).map(|l| format!("{l}\n")).collect();
    assert!(read(two.as_bytes()).problems.is_empty());
}

#[test]
fn rt_and_rw_are_padded_to_three_digits_with_a_warning_counting_them() {
    let csv = "family_id,village_code,head_name,rt,rw\n\
               SYN-1,73.14.01.1001,Wette'E Bin Ali,3,1\n\
               SYN-2,73.14.01.1001,Baso Olimoo'o,12,002\n\
               SYN-3,73.14.01.1001,Kasim Taula'a,003,3\n";
    let file = read(csv.as_bytes());
    let rt: Vec<Option<&str>> = file.households.iter().map(|h| text(h.answers.get("rt"))).collect();
    let rw: Vec<Option<&str>> = file.households.iter().map(|h| text(h.answers.get("rw"))).collect();
    assert_eq!(rt, [Some("003"), Some("012"), Some("003")]);
    assert_eq!(rw, [Some("001"), Some("002"), Some("003")]);
    assert_eq!(
        all_problems(&file),
        [(1, "rt", "rt_rw_padded", false), (1, "rw", "rt_rw_padded", false)],
        "{}",
        render_report(&file)
    );
    assert!(
        file.problems[0].message.starts_with("2 value(s) in this column had fewer than 3 digits"),
        "{}",
        file.problems[0].message
    );
    assert!(file.problems[0].message.contains("padded with zeros to 3 digits (003)"), "{}", file.problems[0].message);
    assert_eq!(clean_rows(&file), [2, 3, 4]);
}

#[test]
fn families_whose_rows_are_apart_are_still_one_household_each() {
    let csv = "family_id,village_code,full_name,sex,presence,relationship\n\
               SYN-1,73.14.01.1001,Wette'E Bin Ali,1,1,1\n\
               SYN-2,73.14.01.1001,Baso Olimoo'o,1,1,1\n\
               SYN-1,73.14.01.1001,Besse Ratna,2,1,2\n\
               SYN-3,73.14.01.1001,Kasim Taula'a,1,1,1\n\
               SYN-2,73.14.01.1001,Nur Aini,2,1,2\n\
               SYN-1,73.14.01.1001,Andi Contoh,1,1,3\n";
    let mut seen = Vec::new();
    let file = read_csv(form(), csv.as_bytes(), &options(), &mut |rows| seen.push(rows));
    assert!(file.problems.is_empty(), "{}", render_report(&file));
    assert_eq!(
        file.households.iter().map(|h| h.rows()).collect::<Vec<_>>(),
        [vec![2, 4, 7], vec![3, 6], vec![5]],
        "in file order of their first rows"
    );
    // Rows checked so far, after each household: SYN-3 (1 row) at row 5, SYN-2 (2) at row 6, SYN-1 (3) at row 7.
    assert_eq!(seen, [1, 3, 6], "each household is checked once its last row is read");
    read(csv.as_bytes());
}

#[test]
fn an_xlsx_identifier_stored_as_a_number_is_one_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("roster.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, name) in (0u16..).zip(["family_id", "village_code", "full_name", "nik", "sex", "presence"]) {
        sheet.write_string(0, col, name).expect("header");
    }
    sheet.write_string(1, 0, "SYN-1").expect("family id");
    sheet.write_string(1, 1, "73.14.01.1001").expect("village");
    sheet.write_string(1, 2, "Wette'E Bin Ali").expect("name");
    // What Excel keeps of 7314011513809002 (a NIK with month 13, too): 15 digits and a 0.
    sheet.write_number(1, 3, 7314011513809000.0).expect("nik as a number");
    sheet.write_number(1, 4, 1.0).expect("sex");
    sheet.write_number(1, 5, 1.0).expect("presence");
    workbook.save(&path).expect("saved");
    let file = read_roster(form(), &path, &options(), &mut |_| {}).expect("readable");
    assert_eq!(errors(&file), [(2, "nik", "number_precision")], "{}", render_report(&file));
    let checked = check_roster(form(), &path, &options(), &mut |_| {}).expect("readable");
    assert_eq!(checked.problems, file.problems);
    assert_eq!((checked.household_count, checked.clean_count), (1, 0));
}

#[test]
fn summary_counts_households_even_when_a_check_keeps_none() {
    let bytes = synthetic_roster_csv(500);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("roster.csv");
    std::fs::write(&path, &bytes).expect("write");
    let read = read_roster(form(), &path, &options(), &mut |_| {}).expect("readable");
    let checked = check_roster(form(), &path, &options(), &mut |_| {}).expect("readable");
    assert!(checked.households.is_empty());
    assert_eq!(report::summary(&checked), report::summary(&read));
    assert!(report::summary(&checked).starts_with(&format!("500 data row(s), {} household(s)", read.households.len())));
}
