//! CSV bytes → cells, row by row, with the spreadsheet's row numbers.
//!
//! The file must be UTF-8 (a byte-order mark is dropped). A cell that is not UTF-8 — typically
//! Windows-1252 from an older Excel "CSV" save — is not an error for the whole file: that cell
//! gets an `encoding` problem on its own row and is read as Windows-1252 so the rest of the row is
//! still checked. The delimiter is `,`, or `;` or a tab when the header row uses those (Excel in an
//! Indonesian locale saves with `;`). Rows are numbered as a spreadsheet shows them: header = 1,
//! blank lines count, a quoted cell spanning lines stays one row.

use std::borrow::Cow;

use csv::{ByteRecord, ReaderBuilder};
use sync_core::form::FormDefinition;
use sync_core::roster::RosterProblem;

use super::RosterOptions;
use super::assemble::{Assembler, Cell, CellIssue};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a whole CSV file. `Err` is a problem with the file as a whole (empty, UTF-16).
pub(super) fn read<'f>(
    form: &'f FormDefinition,
    bytes: &[u8],
    options: &RosterOptions,
) -> Result<Assembler<'f>, RosterProblem> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(RosterProblem::reject(
            1,
            "",
            "",
            "encoding",
            "the file is UTF-16 text (Excel's \"Unicode Text\"), not UTF-8 CSV; save it as \"CSV UTF-8 (Comma \
             delimited)\" and import it again",
        ));
    }
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut reader =
        ReaderBuilder::new().has_headers(false).flexible(true).delimiter(detect_delimiter(bytes)).from_reader(bytes);
    let mut record = ByteRecord::new();
    let mut rows = RowNumbers::default();

    let read_error = |row: usize, error: csv::Error| {
        RosterProblem::reject(
            row,
            "",
            "",
            "csv_format",
            format!("the file could not be read as CSV from this row on ({error}); check the quotes on this row"),
        )
    };
    let has_header = reader.read_byte_record(&mut record).map_err(|e| read_error(1, e))?;
    if !has_header {
        return Err(RosterProblem::reject(
            1,
            "",
            "",
            "empty_file",
            "the file is empty; the first row must hold the column headers, then one row per household or person",
        ));
    }
    let header_row = rows.next(&record, bytes);
    let headers: Vec<Cell<'_>> = record.iter().map(decode).collect();
    let mut assembler = Assembler::new(form, options, header_row, &headers);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let row = rows.next(&record, bytes);
                let cells: Vec<Cell<'_>> = record.iter().map(decode).collect();
                assembler.push_row(row, &cells);
            }
            Ok(false) => break,
            Err(error) => {
                assembler.push_problem(read_error(rows.last + 1, error));
                break;
            }
        }
    }
    Ok(assembler)
}

/// Tracks spreadsheet row numbers. The csv reader gives each record the line where it started
/// looking for it, before the blank lines (and the `\n` of a previous `\r\n`) it skipped; those
/// are counted from the bytes. A record starting `n` lines after the previous one, minus the line
/// breaks inside the previous one's quoted cells, is `n` rows further down.
#[derive(Default)]
struct RowNumbers {
    last: usize,
    last_line: u64,
    last_breaks: u64,
}

impl RowNumbers {
    fn next(&mut self, record: &ByteRecord, bytes: &[u8]) -> usize {
        let line = match record.position() {
            Some(position) => {
                let start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
                let skipped = bytes.get(start..).unwrap_or_default();
                let blank = skipped.iter().take_while(|b| matches!(b, b'\r' | b'\n')).filter(|b| **b == b'\n').count();
                position.line() + blank as u64
            }
            None => self.last_line + self.last_breaks + 1,
        };
        let step = if self.last == 0 { line } else { line.saturating_sub(self.last_line + self.last_breaks) };
        self.last += usize::try_from(step.max(1)).unwrap_or(1);
        self.last_line = line;
        self.last_breaks = record.iter().map(|cell| cell.iter().filter(|b| **b == b'\n').count() as u64).sum();
        self.last
    }
}

/// `;` or tab when the first line has more of them than commas, else `,`.
fn detect_delimiter(bytes: &[u8]) -> u8 {
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| first_line.iter().filter(|b| **b == d).count();
    let (commas, semicolons, tabs) = (count(b','), count(b';'), count(b'\t'));
    if semicolons > commas && semicolons >= tabs {
        b';'
    } else if tabs > commas && tabs > semicolons {
        b'\t'
    } else {
        b','
    }
}

/// One cell: borrowed when it is UTF-8, else read as Windows-1252 with an `encoding` issue.
fn decode(bytes: &[u8]) -> Cell<'_> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cell::plain(text),
        Err(error) => {
            let at = error.valid_up_to();
            let before = String::from_utf8_lossy(&bytes[..at]).chars().count();
            let byte = bytes.get(at).copied().unwrap_or_default();
            Cell {
                text: Cow::Owned(bytes.iter().map(|b| windows_1252(*b)).collect()),
                issue: Some(CellIssue {
                    rule: "encoding",
                    message: format!(
                        "the cell is not UTF-8 text: byte 0x{byte:02X} after {before} character(s) is not valid \
                         UTF-8 (the value shown is read as Windows-1252); save the file as \"CSV UTF-8 (Comma \
                         delimited)\" and import it again"
                    ),
                }),
                float: false,
            }
        }
    }
}

/// The character a Windows-1252 byte stands for (ISO-8859-1 except 0x80–0x9F).
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_bytes_decode_to_their_characters() {
        let decoded: String = b"Regapu\x92u Caf\xE9 \x80".iter().map(|b| windows_1252(*b)).collect();
        assert_eq!(decoded, "Regapu’u Café €");
    }

    #[test]
    fn delimiter_follows_the_header_row() {
        assert_eq!(detect_delimiter(b"a;b;c\n1,5;2;3"), b';');
        assert_eq!(detect_delimiter(b"a,b,c\n"), b',');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"a"), b',');
    }

    #[test]
    fn invalid_utf8_cell_gets_an_encoding_issue_naming_the_byte() {
        let cell = decode(b"Regapu\x92u");
        assert_eq!(cell.text, "Regapu’u");
        let issue = cell.issue.expect("an encoding issue");
        assert_eq!(issue.rule, "encoding");
        assert!(issue.message.contains("0x92 after 6 character(s)"), "{}", issue.message);
        assert!(!issue.message.contains("Regapu"), "{}", issue.message);
    }
}
