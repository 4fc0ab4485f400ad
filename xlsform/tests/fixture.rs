//! The hand-written example (docs/examples/xlsform/pendataan-mini.fods, saved as .xlsx by
//! LibreOffice Calc) imports to exactly the definition below.

use pilar_xlsform::{read_xlsform, write_xlsform};
use sync_core::form::{Choice, Comparison, Condition, FieldDef, FieldKind, FormDefinition, Pattern, Required};
use sync_core::value::FieldValue::Int;

const LIBREOFFICE_XLSX: &[u8] = include_bytes!("../../docs/examples/xlsform/pendataan-mini.xlsx");

fn field(name: &str, label: &str, kind: FieldKind) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: label.into(),
        kind,
        required: Required::No,
        relevant: None,
        help: None,
        device_editable: true,
        sensitive: false,
        retired: false,
    }
}

fn required(field: FieldDef) -> FieldDef {
    FieldDef { required: Required::Always, ..field }
}

fn relevant(field: FieldDef, condition: Condition) -> FieldDef {
    FieldDef { relevant: Some(condition), ..field }
}

fn choices(list: &[(i64, &str)]) -> Vec<Choice> {
    list.iter().map(|(code, label)| Choice { code: *code, label: (*label).into() }).collect()
}

fn test(field: &str, test: Comparison) -> Condition {
    Condition::Field { field: field.into(), test }
}

fn text(max_len: Option<usize>) -> FieldKind {
    FieldKind::Text { max_len, pattern: None, pattern_hint: None }
}

fn integer(min: i64, max: i64) -> FieldKind {
    FieldKind::Integer { min: Some(min), max: Some(max), unknown_codes: Vec::new() }
}

fn expected() -> FormDefinition {
    let yes_no = choices(&[(1, "Ya"), (2, "Tidak")]);
    let not_official = test("status_bangunan", Comparison::Ne(Int(4)));
    FormDefinition {
        id: "pendataan-mini".into(),
        version: 1,
        title: "Pendataan rumah tangga (contoh)".into(),
        description: None,
        household: vec![
            required(field("nama_kepala", "Nama kepala keluarga", text(Some(60)))),
            FieldDef {
                help: Some("tulis tanpa spasi".into()),
                ..field(
                    "no_hp",
                    "Nomor HP",
                    FieldKind::Text {
                        max_len: None,
                        pattern: Some(Pattern::new("08\\d{8,11}")),
                        pattern_hint: Some("08 diikuti 8 sampai 11 angka".into()),
                    },
                )
            },
            required(field("jumlah_art", "Jumlah anggota rumah tangga", integer(1, 30))),
            required(field(
                "status_bangunan",
                "Status kepemilikan bangunan",
                FieldKind::SelectOne {
                    choices: choices(&[(1, "Milik sendiri"), (2, "Kontrak/sewa"), (3, "Bebas sewa"), (4, "Dinas")]),
                },
            )),
            relevant(
                field("nama_pemilik", "Nama pemilik bangunan", text(None)),
                test("status_bangunan", Comparison::In(vec![Int(2), Int(3)])),
            ),
            // The group "fasilitas" is flattened: its condition joins each of its questions'.
            relevant(
                field(
                    "aset",
                    "Aset yang dimiliki",
                    FieldKind::MultiSelect {
                        choices: choices(&[(1, "Sepeda"), (2, "Sepeda motor"), (4, "Mobil"), (8, "Perahu")]),
                        exclusive: Vec::new(),
                    },
                ),
                not_official.clone(),
            ),
            relevant(
                field("jumlah_motor", "Jumlah sepeda motor", integer(1, 20)),
                Condition::All(vec![not_official, test("aset", Comparison::HasBit(2))]),
            ),
            field("lokasi", "Lokasi rumah", FieldKind::Gps),
        ],
        member: vec![
            required(field("nama", "Nama anggota", text(Some(60)))),
            required(field(
                "jenis_kelamin",
                "Jenis kelamin",
                FieldKind::SelectOne { choices: choices(&[(1, "Laki-laki"), (2, "Perempuan")]) },
            )),
            field("umur", "Umur (tahun)", integer(0, 120)),
            relevant(
                field("hamil", "Sedang hamil?", FieldKind::SelectOne { choices: yes_no }),
                Condition::All(vec![
                    test("jenis_kelamin", Comparison::Eq(Int(2))),
                    test("umur", Comparison::Gte(10.0)),
                    test("umur", Comparison::Lte(54.0)),
                ]),
            ),
            field("tanggal_lahir", "Tanggal lahir", FieldKind::Date { allow_unknown_parts: false }),
        ],
        visit: Vec::new(),
        outcomes: Vec::new(),
        checks: Vec::new(),
    }
}

#[test]
fn libreoffice_xlsform_imports_to_the_expected_definition() {
    let form = read_xlsform(LIBREOFFICE_XLSX).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(form, expected());
}

#[test]
fn the_imported_example_round_trips_through_export() {
    let form = expected();
    let again = read_xlsform(&write_xlsform(&form).expect("writes")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, form);
}
