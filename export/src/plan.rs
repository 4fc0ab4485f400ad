//! The column plan: which columns each export sheet has, derived once from the form, and how one
//! household becomes one households row, one row per member and one row per visit.
//!
//! Both writers (XLSX and CSV) take their columns and cells from here, so the two formats can never
//! disagree on layout. Every column has a stable machine `name` (field names from the form, or the
//! fixed names below) and an Indonesian `label` (the form's label, or a fixed one).

use anyhow::{Result, bail};
use std::borrow::Cow;
use std::collections::HashSet;
use sync_core::form::{Choice, FieldDef, FieldKind, FormDefinition, Scope, split_key};
use sync_core::ids::{LocalZone, VillageCode, regions};
use sync_core::model::{HouseholdState, Member, PhotoRef, ReviewStatus, VISIT_KEYS, Visit};
use sync_core::photo::{Mime, PhotoId, PhotoKind};
use sync_core::value::FieldValue;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The four sheets (XLSX) or files (CSV) of an export, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sheet {
    /// One row per household.
    Households,
    /// One row per member, removed members included.
    Members,
    /// One row per visit, oldest first within a household.
    Visits,
    /// One row per photo a household references (the photo index): which file `pilar photo
    /// export` writes for it, so a supervisor finds a household's photos from the workbook.
    Photos,
}

impl Sheet {
    /// Every sheet, in file order.
    pub const ALL: [Sheet; 4] = [Sheet::Households, Sheet::Members, Sheet::Visits, Sheet::Photos];

    /// The sheet's stable name: the XLSX tab name and the CSV file suffix.
    pub fn name(self) -> &'static str {
        match self {
            Sheet::Households => "households",
            Sheet::Members => "members",
            Sheet::Visits => "visits",
            Sheet::Photos => "photos",
        }
    }

    /// The sheet's position in [`Sheet::ALL`].
    pub(super) fn index(self) -> usize {
        match self {
            Sheet::Households => 0,
            Sheet::Members => 1,
            Sheet::Visits => 2,
            Sheet::Photos => 3,
        }
    }
}

/// What a column holds, which decides how each writer stores its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free text, names, codes written as text.
    Text,
    /// Digits that are an identifier (NIK, KK number): always text, never a number.
    Identifier,
    /// Whole numbers and select-one codes.
    Integer,
    /// Decimal numbers (coordinates, accuracy).
    Decimal,
    /// A calendar date `YYYY-MM-DD` (possibly with unknown parts `98`).
    Date,
    /// A moment, shown on the wall clock of the export's zone (named in the column's label).
    DateTime,
    /// Yes or no.
    Boolean,
}

/// One column of a sheet: its stable machine name, its Indonesian label and its kind.
#[derive(Debug, Clone)]
pub struct Column {
    /// Stable machine name (second header row): the form's field name or a fixed export name.
    pub name: String,
    /// Header label in Bahasa Indonesia (first header row), from the form where there is one.
    pub label: String,
    /// What the cells hold (the writers take each cell's type from [`Cell`]; tests check the plan).
    #[cfg_attr(not(test), allow(dead_code))]
    pub kind: ColumnKind,
    /// The narrowest readable width in Excel's character units ([`header_width`]).
    pub width: f64,
    source: Source,
}

/// One cell's value, borrowed from the household where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// No value.
    Empty,
    /// Text.
    Text(Cow<'a, str>),
    /// An identifier made of digits that must stay text (NIK, KK number).
    Identifier(Cow<'a, str>),
    /// A whole number or a select-one code.
    Int(i64),
    /// A decimal number.
    Decimal(f64),
    /// A date as stored, `YYYY-MM-DD`; parts may be `98` (unknown).
    Date(Cow<'a, str>),
    /// A stored time on the wall clock of the export's zone (WIB, WITA or WIT; UTC when unknown).
    DateTime(PrimitiveDateTime),
    /// Yes or no.
    Bool(bool),
}

/// Which part of a form field a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The stored value (for select fields: the code or codes).
    Value,
    /// The label(s) of the code(s) of a select field.
    Label,
}

/// Where a column's cells come from.
#[derive(Debug, Clone)]
enum Source {
    HouseholdId,
    RegencyCode,
    RegencyName,
    DistrictCode,
    DistrictName,
    VillageName,
    /// A household answer (also used on the members sheet for the family's DTSEN id and KK).
    HouseholdAnswer(Box<FieldDef>, Part),
    MemberAnswer(Box<FieldDef>, Part),
    VisitAnswer(Box<FieldDef>, Part),
    ReviewStatusCode,
    ReviewStatusLabel,
    ReviewBy,
    ReviewAt,
    LastVisitOutcome,
    LastVisitOutcomeLabel,
    LastVisitAt,
    CurrentMemberCount,
    Link(&'static str),
    MemberId,
    MemberStatus,
    RemovedAt,
    RemovedBy,
    RemovedReason,
    VisitId,
    VisitAt,
    VisitUser,
    VisitDevice,
    Outcome,
    OutcomeLabel,
    OutcomeKey,
    VisitLat,
    VisitLon,
    VisitAccuracy,
    VisitNote,
    PhotoSha256,
    PhotoKind,
    PhotoKindLabel,
    PhotoFile,
    PhotoBytes,
    PhotoMime,
    PhotoTakenAt,
    PhotoBy,
    PhotoDevice,
}

/// The export layout for one form: the columns of each sheet, and the form's outcome labels.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    form_key: String,
    zone: Option<LocalZone>,
    outcomes: Vec<(i64, String, String)>,
    sheets: [Vec<Column>; 4],
}

/// The region of a household, looked up once per household for its row.
struct Place {
    regency_code: String,
    regency_name: Option<&'static str>,
    district_code: String,
    district_name: Option<&'static str>,
    village_name: Option<&'static str>,
}

impl Place {
    fn of(household: &HouseholdState) -> Place {
        let code = household
            .answers
            .get("village_code")
            .and_then(FieldValue::as_text)
            .and_then(|raw| VillageCode::parse_format_only(raw).ok());
        match code {
            Some(code) => {
                let regency = code.regency();
                let district = code.district();
                Place {
                    regency_name: regions().regency_name(regency.as_str()),
                    district_name: regions().district_name(district.as_str()),
                    village_name: code.name(),
                    regency_code: regency.as_str().to_owned(),
                    district_code: district.as_str().to_owned(),
                }
            }
            None => Place {
                regency_code: String::new(),
                regency_name: None,
                district_code: String::new(),
                district_name: None,
                village_name: None,
            },
        }
    }
}

/// What a row's cells are read from: the household, and the member or visit of that row.
struct RowSource<'a> {
    household: &'a HouseholdState,
    place: &'a Place,
    member: Option<&'a Member>,
    visit: Option<&'a Visit>,
    photo: Option<(&'a str, &'a PhotoRef)>,
}

/// The review status label shown to people.
pub fn review_status_label(status: Option<ReviewStatus>) -> &'static str {
    match status {
        None => "Belum diajukan",
        Some(ReviewStatus::AwaitingReview) => "Menunggu pemeriksaan",
        Some(ReviewStatus::Approved) => "Disetujui",
        Some(ReviewStatus::Returned) => "Dikembalikan",
    }
}

fn column(name: &str, label: &str, kind: ColumnKind, source: Source) -> Column {
    Column { name: name.to_owned(), label: label.to_owned(), kind, width: header_width(name, label), source }
}

/// The narrowest a column may be, in Excel's character units: the machine name fits on one line
/// (so the names of neighbouring columns never run into each other) and the label on about two
/// (it wraps; the header row is as tall as its longest label needs). The XLSX writer widens a
/// column to its content, up to a bound.
pub fn header_width(name: &str, label: &str) -> f64 {
    let name_chars = name.chars().count() + 2;
    let label_chars = label.chars().count().div_ceil(2) + 3;
    name_chars.max(label_chars).clamp(MIN_WIDTH, MAX_HEADER_WIDTH) as f64
}

/// The narrowest column, in Excel's character units.
const MIN_WIDTH: usize = 8;
/// The widest a header alone makes a column; longer labels wrap onto more lines.
const MAX_HEADER_WIDTH: usize = 40;

/// The form field's columns: one for most kinds, two (code, label) for select fields.
fn field_columns(field: &FieldDef, wrap: fn(Box<FieldDef>, Part) -> Source) -> Vec<Column> {
    let boxed = || Box::new(field.clone());
    let value_kind = match &field.kind {
        FieldKind::Text { .. } | FieldKind::VillageCode | FieldKind::Gps => ColumnKind::Text,
        FieldKind::Nik { .. } | FieldKind::KkNumber => ColumnKind::Identifier,
        FieldKind::Integer { .. } | FieldKind::SelectOne { .. } => ColumnKind::Integer,
        FieldKind::MultiSelect { .. } => ColumnKind::Text,
        FieldKind::Decimal { .. } => ColumnKind::Decimal,
        FieldKind::Date { .. } => ColumnKind::Date,
        FieldKind::Boolean => ColumnKind::Boolean,
    };
    match &field.kind {
        FieldKind::SelectOne { .. } | FieldKind::MultiSelect { .. } => {
            // The code column says so in its title, so the pair never reads as two equal columns.
            vec![
                column(&field.name, &format!("{} (kode)", field.label), value_kind, wrap(boxed(), Part::Value)),
                column(&format!("{}_label", field.name), &field.label, ColumnKind::Text, wrap(boxed(), Part::Label)),
            ]
        }
        _ => vec![column(&field.name, &field.label, value_kind, wrap(boxed(), Part::Value))],
    }
}

fn uuid_column(name: &str, label: &str, source: Source) -> Column {
    column(name, label, ColumnKind::Text, source)
}

impl ColumnPlan {
    /// The columns of all four sheets for `form`, with times on the wall clock of `zone` (the
    /// area's province; UTC when `None`), named in the time columns' labels: `Waktu kunjungan
    /// (WITA)`. Refuses a form whose field names collide with the export's own column names (the
    /// machine names must stay unique per sheet).
    pub fn new(form: &FormDefinition, zone: Option<LocalZone>) -> Result<ColumnPlan> {
        let household_field = |name: &str| form.field(Scope::Household, name);

        let mut households = vec![
            uuid_column("household_id", "ID Keluarga (sistem)", Source::HouseholdId),
            column("regency_code", "Kode Kabupaten/Kota", ColumnKind::Text, Source::RegencyCode),
            column("regency_name", "Nama Kabupaten/Kota", ColumnKind::Text, Source::RegencyName),
            column("district_code", "Kode Kecamatan", ColumnKind::Text, Source::DistrictCode),
            column("district_name", "Nama Kecamatan", ColumnKind::Text, Source::DistrictName),
        ];
        match household_field("village_code") {
            Some(field) => households.extend(field_columns(field, Source::HouseholdAnswer)),
            None => households.push(column(
                "village_code",
                "Kode Desa/Kelurahan",
                ColumnKind::Text,
                Source::HouseholdAnswer(Box::new(village_code_field()), Part::Value),
            )),
        }
        households.push(column("village_name", "Nama Desa/Kelurahan", ColumnKind::Text, Source::VillageName));
        for field in form.fields(Scope::Household).iter().filter(|f| f.name != "village_code") {
            households.extend(field_columns(field, Source::HouseholdAnswer));
        }
        let outcome_label =
            form.field(Scope::Visit, "outcome").map_or_else(|| "Hasil kunjungan".to_owned(), |f| f.label.clone());
        households.extend([
            column("review_status", "Status pemeriksaan (kode)", ColumnKind::Text, Source::ReviewStatusCode),
            column("review_status_label", "Status pemeriksaan", ColumnKind::Text, Source::ReviewStatusLabel),
            column("review_by", "Diperiksa oleh", ColumnKind::Text, Source::ReviewBy),
            column("review_at", "Waktu pemeriksaan", ColumnKind::DateTime, Source::ReviewAt),
            column(
                "last_visit_outcome",
                &format!("{outcome_label} terakhir (kode)"),
                ColumnKind::Integer,
                Source::LastVisitOutcome,
            ),
            column(
                "last_visit_outcome_label",
                &format!("{outcome_label} terakhir"),
                ColumnKind::Text,
                Source::LastVisitOutcomeLabel,
            ),
            column("last_visit_at", "Waktu kunjungan terakhir", ColumnKind::DateTime, Source::LastVisitAt),
            column("current_member_count", "Jumlah anggota saat ini", ColumnKind::Integer, Source::CurrentMemberCount),
            uuid_column("merged_into", "Digabung ke (ID Keluarga)", Source::Link("merged_into")),
            uuid_column("duplicate_of", "Duplikat dari (ID Keluarga)", Source::Link("duplicate_of")),
        ]);

        let mut members = vec![
            uuid_column("household_id", "ID Keluarga (sistem)", Source::HouseholdId),
            uuid_column("member_id", "ID Anggota (sistem)", Source::MemberId),
        ];
        for (name, fallback, kind) in [
            (
                "dtsen_family_id",
                "ID Keluarga DTSEN",
                FieldKind::Text { max_len: None, pattern: None, pattern_hint: None },
            ),
            ("kk_number", "Nomor Kartu Keluarga", FieldKind::KkNumber),
        ] {
            let field = household_field(name).cloned().unwrap_or_else(|| FieldDef {
                name: name.to_owned(),
                label: fallback.to_owned(),
                kind,
                required: Default::default(),
                relevant: None,
                help: None,
                device_editable: true,
                sensitive: false,
                retired: false,
            });
            members.extend(field_columns(&field, Source::HouseholdAnswer));
        }
        for field in form.fields(Scope::Member) {
            members.extend(field_columns(field, Source::MemberAnswer));
        }
        members.extend([
            column("member_status", "Status anggota", ColumnKind::Text, Source::MemberStatus),
            column("removed_at", "Waktu dihapus", ColumnKind::DateTime, Source::RemovedAt),
            column("removed_by", "Dihapus oleh", ColumnKind::Text, Source::RemovedBy),
            column("removed_reason", "Alasan dihapus", ColumnKind::Text, Source::RemovedReason),
        ]);

        let mut visits = vec![
            uuid_column("household_id", "ID Keluarga (sistem)", Source::HouseholdId),
            uuid_column("visit_id", "ID Kunjungan (sistem)", Source::VisitId),
            column("visited_at", "Waktu kunjungan", ColumnKind::DateTime, Source::VisitAt),
            column("user", "Petugas (pengguna)", ColumnKind::Text, Source::VisitUser),
            uuid_column("device", "Perangkat", Source::VisitDevice),
            column("outcome", &format!("{outcome_label} (kode)"), ColumnKind::Integer, Source::Outcome),
            column("outcome_label", &outcome_label, ColumnKind::Text, Source::OutcomeLabel),
            column("outcome_key", &format!("{outcome_label} (kunci)"), ColumnKind::Text, Source::OutcomeKey),
            column("lat", "GPS lintang", ColumnKind::Decimal, Source::VisitLat),
            column("lon", "GPS bujur", ColumnKind::Decimal, Source::VisitLon),
            column("accuracy_m", "GPS akurasi (m)", ColumnKind::Decimal, Source::VisitAccuracy),
            column("note", "Catatan", ColumnKind::Text, Source::VisitNote),
        ];
        // The model keeps its own visit keys (outcome, GPS, note) out of the visit's answers; they
        // have their fixed columns above.
        for field in form.fields(Scope::Visit).iter().filter(|f| !VISIT_KEYS.contains(&f.name.as_str())) {
            visits.extend(field_columns(field, Source::VisitAnswer));
        }

        let photos = vec![
            uuid_column("household_id", "ID Keluarga (sistem)", Source::HouseholdId),
            column("kind", "Jenis foto (kode)", ColumnKind::Text, Source::PhotoKind),
            column("kind_label", "Jenis foto", ColumnKind::Text, Source::PhotoKindLabel),
            column("file", "Nama file (pilar photo export)", ColumnKind::Text, Source::PhotoFile),
            column("sha256", "SHA-256", ColumnKind::Text, Source::PhotoSha256),
            column("bytes", "Ukuran (byte)", ColumnKind::Integer, Source::PhotoBytes),
            column("mime", "Jenis berkas", ColumnKind::Text, Source::PhotoMime),
            column("taken_at", "Waktu diambil", ColumnKind::DateTime, Source::PhotoTakenAt),
            column("taken_by", "Diambil oleh", ColumnKind::Text, Source::PhotoBy),
            uuid_column("device", "Perangkat", Source::PhotoDevice),
        ];

        let mut sheets = [households, members, visits, photos];
        let zone_name = zone.map_or("UTC", LocalZone::abbreviation);
        for column in sheets.iter_mut().flatten().filter(|c| c.kind == ColumnKind::DateTime) {
            column.label = format!("{} ({zone_name})", column.label);
            column.width = header_width(&column.name, &column.label);
        }
        let plan = ColumnPlan {
            form_key: form.key(),
            zone,
            outcomes: form.outcomes.iter().map(|o| (o.code, o.key.clone(), o.label.clone())).collect(),
            sheets,
        };
        for sheet in Sheet::ALL {
            let mut seen = HashSet::new();
            for column in plan.columns(sheet) {
                if !seen.insert(column.name.as_str()) {
                    bail!(
                        "form {} has a field whose export column `{}` collides with another column of the {} \
                         sheet; rename the field in the form (names ending in `_label` and the export's own \
                         column names are taken)",
                        plan.form_key,
                        column.name,
                        sheet.name()
                    );
                }
            }
        }
        Ok(plan)
    }

    /// The columns of one sheet, in order.
    pub fn columns(&self, sheet: Sheet) -> &[Column] {
        &self.sheets[sheet.index()]
    }

    /// Calls `row` once for the household's row, then once per member, once per visit and once
    /// per photo, with the sheet and the cells in column order; refuses a household of another
    /// form.
    pub fn for_each_row(
        &self,
        household: &HouseholdState,
        mut row: impl FnMut(Sheet, &[Cell<'_>]) -> Result<()>,
    ) -> Result<()> {
        // A version never removes a field or changes what a code means (form::evolution), so the
        // newest version's columns hold every earlier version's answers, labelled from the newest.
        let readable = match (split_key(&household.form), split_key(&self.form_key)) {
            (Some((id, version)), Some((plan_id, plan_version))) => id == plan_id && version <= plan_version,
            _ => false,
        };
        if !readable {
            bail!(
                "household {} was recorded with form {:?}, but this export is laid out for {} (and its earlier \
                 versions); export each form to its own file",
                household.id,
                household.form,
                self.form_key
            );
        }
        let place = Place::of(household);
        let mut cells = Vec::new();
        let mut source = RowSource { household, place: &place, member: None, visit: None, photo: None };
        self.fill(Sheet::Households, &source, &mut cells);
        row(Sheet::Households, &cells)?;
        for member in &household.members {
            source.member = Some(member);
            self.fill(Sheet::Members, &source, &mut cells);
            row(Sheet::Members, &cells)?;
        }
        source.member = None;
        for visit in &household.visits {
            source.visit = Some(visit);
            self.fill(Sheet::Visits, &source, &mut cells);
            row(Sheet::Visits, &cells)?;
        }
        source.visit = None;
        for (photo, reference) in &household.photos {
            source.photo = Some((photo.as_str(), reference));
            self.fill(Sheet::Photos, &source, &mut cells);
            row(Sheet::Photos, &cells)?;
        }
        Ok(())
    }

    fn fill<'a>(&'a self, sheet: Sheet, source: &RowSource<'a>, cells: &mut Vec<Cell<'a>>) {
        cells.clear();
        cells.extend(self.columns(sheet).iter().map(|c| self.cell(&c.source, source)));
    }

    /// A stored time on the export zone's wall clock; text that is no RFC 3339 time stays text.
    fn time_cell<'a>(&self, stored: &'a str) -> Cell<'a> {
        if stored.is_empty() {
            return Cell::Empty;
        }
        match OffsetDateTime::parse(stored, &Rfc3339) {
            Ok(at) => {
                let local = at.to_offset(self.zone.map_or(UtcOffset::UTC, LocalZone::offset));
                Cell::DateTime(PrimitiveDateTime::new(local.date(), local.time()))
            }
            Err(_) => Cell::Text(Cow::Borrowed(stored)),
        }
    }

    fn outcome(&self, code: i64) -> Option<&(i64, String, String)> {
        self.outcomes.iter().find(|(c, _, _)| *c == code)
    }

    fn cell<'a>(&'a self, column: &'a Source, row: &RowSource<'a>) -> Cell<'a> {
        let h = row.household;
        let text = |s: &'a str| Cell::Text(Cow::Borrowed(s));
        let opt_text = |s: Option<&'a str>| s.map_or(Cell::Empty, text);
        let time = |s: &'a str| self.time_cell(s);
        match column {
            Source::HouseholdId => Cell::Text(Cow::Owned(h.id.to_string())),
            Source::RegencyCode => opt_text(Some(row.place.regency_code.as_str()).filter(|s| !s.is_empty())),
            Source::RegencyName => opt_text(row.place.regency_name),
            Source::DistrictCode => opt_text(Some(row.place.district_code.as_str()).filter(|s| !s.is_empty())),
            Source::DistrictName => opt_text(row.place.district_name),
            Source::VillageName => opt_text(row.place.village_name),
            Source::HouseholdAnswer(field, part) => answer_cell(field, *part, h.answers.get(&field.name)),
            Source::MemberAnswer(field, part) => {
                answer_cell(field, *part, row.member.and_then(|m| m.answers.get(&field.name)))
            }
            Source::VisitAnswer(field, part) => {
                answer_cell(field, *part, row.visit.and_then(|v| v.answers.get(&field.name)))
            }
            Source::ReviewStatusCode => opt_text(h.review.status.map(ReviewStatus::as_str)),
            Source::ReviewStatusLabel => text(review_status_label(h.review.status)),
            Source::ReviewBy => opt_text(h.review.by.as_deref()),
            Source::ReviewAt => h.review.at.as_deref().map_or(Cell::Empty, time),
            Source::LastVisitOutcome => h.last_visit().and_then(|v| v.outcome).map_or(Cell::Empty, Cell::Int),
            Source::LastVisitOutcomeLabel => {
                opt_text(h.last_visit().and_then(|v| v.outcome).and_then(|c| self.outcome(c)).map(|o| o.2.as_str()))
            }
            Source::LastVisitAt => h.last_visit().map_or(Cell::Empty, |v| time(&v.at)),
            Source::CurrentMemberCount => Cell::Int(h.current_members().count() as i64),
            Source::Link(key) => h.links.get(*key).map_or(Cell::Empty, value_as_text),
            Source::MemberId => row.member.map_or(Cell::Empty, |m| Cell::Text(Cow::Owned(m.id.to_string()))),
            Source::MemberStatus => match row.member {
                Some(m) if m.removed.is_some() => text("dihapus"),
                Some(_) => text("aktif"),
                None => Cell::Empty,
            },
            Source::RemovedAt => row.member.and_then(|m| m.removed.as_ref()).map_or(Cell::Empty, |r| time(&r.at)),
            Source::RemovedBy => opt_text(row.member.and_then(|m| m.removed.as_ref()).map(|r| r.by.as_str())),
            Source::RemovedReason => opt_text(row.member.and_then(|m| m.removed.as_ref()).map(|r| r.reason.as_str())),
            Source::VisitId => row.visit.map_or(Cell::Empty, |v| Cell::Text(Cow::Owned(v.id.to_string()))),
            Source::VisitAt => row.visit.map_or(Cell::Empty, |v| time(&v.at)),
            Source::VisitUser => opt_text(row.visit.map(|v| v.user.as_str())),
            Source::VisitDevice => opt_text(row.visit.map(|v| v.device.as_str())),
            Source::Outcome => row.visit.and_then(|v| v.outcome).map_or(Cell::Empty, Cell::Int),
            Source::OutcomeLabel => {
                opt_text(row.visit.and_then(|v| v.outcome).and_then(|c| self.outcome(c)).map(|o| o.2.as_str()))
            }
            Source::OutcomeKey => {
                opt_text(row.visit.and_then(|v| v.outcome).and_then(|c| self.outcome(c)).map(|o| o.1.as_str()))
            }
            Source::VisitLat => row.visit.and_then(|v| v.lat).map_or(Cell::Empty, Cell::Decimal),
            Source::VisitLon => row.visit.and_then(|v| v.lon).map_or(Cell::Empty, Cell::Decimal),
            Source::VisitAccuracy => row.visit.and_then(|v| v.accuracy_m).map_or(Cell::Empty, Cell::Decimal),
            Source::VisitNote => opt_text(row.visit.and_then(|v| v.note.as_deref())),
            Source::PhotoSha256 => opt_text(row.photo.map(|(sha, _)| sha)),
            Source::PhotoKind => opt_text(row.photo.map(|(_, p)| p.kind.as_str())),
            Source::PhotoKindLabel => opt_text(row.photo.map(|(_, p)| photo_kind_label(&p.kind))),
            Source::PhotoFile => row.photo.map_or(Cell::Empty, |(sha, p)| match sha.parse::<PhotoId>() {
                Ok(id) => Cell::Text(Cow::Owned(crate::photo_file_name(
                    h.id,
                    &p.kind,
                    &id,
                    Mime::parse(&p.mime).unwrap_or(Mime::Jpeg),
                ))),
                Err(_) => Cell::Empty,
            }),
            Source::PhotoBytes => row.photo.map_or(Cell::Empty, |(_, p)| Cell::Int(p.bytes)),
            Source::PhotoMime => opt_text(row.photo.map(|(_, p)| p.mime.as_str())),
            Source::PhotoTakenAt => row.photo.map_or(Cell::Empty, |(_, p)| time(&p.taken_at)),
            Source::PhotoBy => opt_text(row.photo.map(|(_, p)| p.by.as_str())),
            Source::PhotoDevice => opt_text(row.photo.map(|(_, p)| p.device.as_str())),
        }
    }
}

/// A photo kind as a supervisor reads it (the code stays in its own column).
fn photo_kind_label(kind: &str) -> &'static str {
    match PhotoKind::parse(kind) {
        Some(PhotoKind::HouseFront) => "Tampak depan rumah",
        Some(PhotoKind::HouseInside) => "Bagian dalam rumah",
        Some(PhotoKind::KkCard) => "Kartu Keluarga",
        Some(PhotoKind::Other) | None => "Lainnya",
    }
}

/// A stand-in definition for forms without a `village_code` field.
fn village_code_field() -> FieldDef {
    FieldDef {
        name: "village_code".to_owned(),
        label: "Kode Desa/Kelurahan".to_owned(),
        kind: FieldKind::VillageCode,
        required: Default::default(),
        relevant: None,
        help: None,
        device_editable: true,
        sensitive: false,
        retired: false,
    }
}

/// Any value as text: for answers whose stored type does not match the field's kind.
fn value_as_text(value: &FieldValue) -> Cell<'_> {
    match value {
        FieldValue::Text(s) => Cell::Text(Cow::Borrowed(s)),
        other => Cell::Text(Cow::Owned(other.to_string())),
    }
}

/// The cell for one part of one answer, typed by the field's kind.
fn answer_cell<'a>(field: &'a FieldDef, part: Part, value: Option<&'a FieldValue>) -> Cell<'a> {
    let Some(value) = value else { return Cell::Empty };
    match (&field.kind, part, value) {
        (FieldKind::SelectOne { .. }, Part::Value, FieldValue::Int(code)) => Cell::Int(*code),
        (FieldKind::SelectOne { choices }, Part::Label, FieldValue::Int(code)) => {
            choices.iter().find(|c| c.code == *code).map_or(Cell::Empty, |c| Cell::Text(Cow::Borrowed(&c.label)))
        }
        (FieldKind::MultiSelect { choices, exclusive }, part, FieldValue::Int(mask)) => {
            let picked = multi_select_codes(choices, exclusive, *mask);
            let joined: Vec<Cow<'_, str>> = match part {
                Part::Value => picked.iter().map(|(code, _)| Cow::Owned(code.to_string())).collect(),
                Part::Label => picked.iter().filter_map(|(_, label)| label.map(Cow::Borrowed)).collect(),
            };
            if joined.is_empty() { Cell::Empty } else { Cell::Text(Cow::Owned(joined.join("; "))) }
        }
        (_, Part::Label, _) => Cell::Empty,
        (FieldKind::Integer { .. }, _, FieldValue::Int(i)) => Cell::Int(*i),
        (FieldKind::Decimal { .. }, _, FieldValue::Int(i)) => Cell::Decimal(*i as f64),
        (FieldKind::Decimal { .. }, _, FieldValue::Decimal(d)) => Cell::Decimal(*d),
        (FieldKind::Date { .. }, _, FieldValue::Text(s)) => Cell::Date(Cow::Borrowed(s)),
        (FieldKind::Nik { .. } | FieldKind::KkNumber, _, FieldValue::Text(s)) => Cell::Identifier(Cow::Borrowed(s)),
        (FieldKind::Boolean, _, FieldValue::Bool(b)) => Cell::Bool(*b),
        (_, _, value) => value_as_text(value),
    }
}

/// The codes a multi-select bitmask holds, each with its label when the form has one: an exclusive
/// code stands alone; otherwise each set bit in form order, then any bits the form does not list.
fn multi_select_codes<'a>(choices: &'a [Choice], exclusive: &[i64], mask: i64) -> Vec<(i64, Option<&'a str>)> {
    let label = |code: i64| choices.iter().find(|c| c.code == code).map(|c| c.label.as_str());
    if exclusive.contains(&mask) || mask <= 0 {
        return vec![(mask, label(mask))];
    }
    let mut out = Vec::new();
    let mut rest = mask;
    for choice in choices.iter().filter(|c| !exclusive.contains(&c.code) && c.code > 0) {
        if mask & choice.code == choice.code {
            out.push((choice.code, Some(choice.label.as_str())));
            rest &= !choice.code;
        }
    }
    let mut bit = 1i64;
    while rest != 0 && bit > 0 {
        if rest & bit != 0 {
            out.push((bit, None));
            rest &= !bit;
        }
        bit = bit.wrapping_shl(1);
    }
    out
}
