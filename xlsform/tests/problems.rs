//! A workbook Pilar cannot use is refused with every problem at once, each on its sheet, row,
//! type and column.

use pilar_xlsform::{ImportError, Problem, read_xlsform};
use rust_xlsxwriter::Workbook;

/// An XLSX with these sheets, every cell written as text (as a person types it).
fn workbook(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    for (name, rows) in sheets {
        let sheet = workbook.add_worksheet();
        sheet.set_name(*name).expect("sheet name");
        for (r, cells) in rows.iter().enumerate() {
            for (c, text) in cells.iter().enumerate() {
                if !text.is_empty() {
                    sheet.write_string(r as u32, c as u16, *text).expect("cell");
                }
            }
        }
    }
    workbook.save_to_buffer().expect("workbook")
}

fn problems(bytes: &[u8]) -> Vec<String> {
    match read_xlsform(bytes) {
        Ok(form) => panic!("should be refused, read {form:?}"),
        Err(error) => error.problems().iter().map(Problem::to_string).collect(),
    }
}

const SETTINGS: &[&[&str]] = &[&["form_id", "version", "form_title"], &["uji", "1", "Uji"]];

#[test]
fn every_row_pilar_cannot_express_is_reported_with_its_row_and_type() {
    let survey: &[&[&str]] = &[
        &["type", "name", "label", "relevant", "constraint", "choice_filter"],
        &["text", "nama", "Nama"],
        &["geotrace", "jalur", "Jalur jalan"],
        &["select_one desa", "desa", "Desa", "", "", "${kab} = 1"],
        &["integer", "umur", "Umur", "${nama >= 5"],
        &["select_one pekerjaan", "kerja", "Pekerjaan"],
        &["text", "nama", "Nama lagi"],
        &["note", "catatan", "Catatan"],
        &["integer", "jumlah", "Jumlah", "", ". >= 0 or . = 98"],
        &["decimal", "luas", "Luas", "${umurr} > 5"],
        &["begin_repeat", "anggota", "Anggota"],
        &["text", "Nama_Anggota", "Nama"],
    ];
    let choices: &[&[&str]] = &[&["list_name", "name", "label"], &["desa", "1", "Desa A"], &["desa", "dua", "Desa B"]];
    let found = problems(&workbook(&[("survey", survey), ("choices", choices), ("settings", SETTINGS)]));
    assert_eq!(
        found,
        [
            "survey row 3, type `geotrace`: not supported by Pilar; remove the row or use geopoint",
            "survey row 4, type `select_one desa`, column `choice_filter`: choice_filter is not supported by Pilar; \
             remove the filter (show every choice) or split the list",
            "survey row 5, type `integer`, column `relevant`: `${nama >= 5`: at character 1: `${` is not closed; \
             write a question as ${name}",
            "survey row 6, type `select_one pekerjaan`, column `type`: list `pekerjaan` is not on the choices sheet; \
             add its choices there or fix the name",
            "survey row 7, type `text`, column `name`: `nama` is already the name of the household question in row 2; \
             give each question its own name",
            "survey row 8, type `note`: not supported by Pilar, which has no display-only rows; put the text in a \
             question's hint or remove the row",
            "survey row 9, type `integer`, column `constraint`: `. >= 0 or . = 98`: at character 1: Pilar constraints \
             are ranges (. >= 0 and . <= 100), a length (string-length(.) <= 64) and a pattern \
             (regex(., '^\\d{10}$')), joined with `and`",
            "survey row 10, type `decimal`, column `relevant`: `${umurr} > 5`: at character 1: `${umurr}` is not a \
             household question (outside the repeats); fix the name or move the question",
            "survey row 11, type `begin_repeat`: never closed; add an end_repeat row after its questions",
            "survey row 12, type `text`, column `name`: `Nama_Anggota`: a Pilar name uses only lowercase letters, \
             digits and _, starting with a letter",
            "choices row 3, column `name`: choice `dua` of list `desa` is not a whole number; Pilar stores choices \
             as codes: use 1, 2, 3, … (1, 2, 4, 8, … for select_multiple)",
        ]
    );
}

#[test]
fn the_report_lists_every_problem_in_one_message() {
    let survey: &[&[&str]] = &[&["type", "name", "label"], &["geoshape", "batas", "Batas"], &["image", "foto", "Foto"]];
    let error = read_xlsform(&workbook(&[("survey", survey), ("settings", SETTINGS)])).expect_err("refused");
    let message = error.to_string();
    assert!(
        message.starts_with("the XLSForm has 2 problems Pilar cannot import; fix them and import again:"),
        "{message}"
    );
    assert!(
        message.contains("\n  survey row 2, type `geoshape`: not supported by Pilar; remove the row or use geopoint")
    );
    assert!(
        message.contains("\n  survey row 3, type `image`: not supported by Pilar: photos are attached"),
        "{message}"
    );
}

#[test]
fn a_definition_that_does_not_hold_together_is_reported_on_its_row() {
    // Codes 1, 2, 3 cannot be summed unambiguously: the definition's own check refuses them.
    let survey: &[&[&str]] =
        &[&["type", "name", "label"], &["text", "nama", "Nama"], &["select_multiple aset", "aset", "Aset"]];
    let choices: &[&[&str]] =
        &[&["list_name", "name", "label"], &["aset", "1", "Motor"], &["aset", "2", "Mobil"], &["aset", "3", "Perahu"]];
    let found = problems(&workbook(&[("survey", survey), ("choices", choices), ("settings", SETTINGS)]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("survey row 3, type `select_multiple aset`: household field `aset`:"), "{found:?}");
    assert!(found[0].contains("multi-select code 3 is not a power of two"), "{found:?}");
}

#[test]
fn settings_and_labels_pilar_needs_are_reported() {
    let survey: &[&[&str]] = &[&["type", "name", "label::English (en)"], &["text", "nama", "Name"]];
    let settings: &[&[&str]] = &[&["form_id", "version"], &["uji", "2024-06-01"]];
    let found = problems(&workbook(&[("survey", survey), ("settings", settings)]));
    assert_eq!(
        found,
        [
            "survey: Pilar's labels are in Bahasa Indonesia, and this sheet has only label::english (en); add a \
             column `label::Bahasa Indonesia (id)` or a plain `label`",
            "survey row 2, type `text`, column `label`: the question has no label; write it in Bahasa Indonesia",
            "settings row 2, column `version`: version `2024-06-01` is not a whole number from 1 to 4294967295; \
             Pilar numbers versions 1, 2, 3, …",
        ]
    );
}

#[test]
fn bytes_that_are_not_a_spreadsheet_are_unreadable() {
    let error = read_xlsform(b"id,name\n1,x\n").expect_err("not xlsx");
    assert!(matches!(error, ImportError::Unreadable(_)), "{error}");
    assert!(error.to_string().contains("save it as .xlsx"), "{error}");
}
