//! CSV → cells, row by row, with the spreadsheet's row numbers, streamed from the file: only the
//! csv reader's buffer and the current record are in memory, never the file.
//!
//! The file must be UTF-8 (a byte-order mark is dropped). A cell that is not UTF-8 — typically
//! Windows-1252 from an older Excel "CSV" save — is not an error for the whole file: that cell
//! gets an `encoding` problem on its own row and is read as Windows-1252 so the rest of the row is
//! still checked. The delimiter is `,`, or `;` or a tab when the header row uses those (Excel in an
//! Indonesian locale saves with `;`). Rows are numbered as a spreadsheet shows them: header = 1,
//! blank lines count, a quoted cell spanning lines stays one row.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

use csv::{ByteRecord, ReaderBuilder};
use sync_core::roster::RosterProblem;

use super::assemble::{Cell, CellIssue, RowSink};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// How much of the file start is looked at for the byte-order mark, UTF-16 and the delimiter.
const START_BYTES: usize = 64 * 1024;

/// Reads a whole CSV file once, handing every row to `sink`. `Err` is a problem with the file as
/// a whole (empty, UTF-16, unreadable from its first byte).
pub(super) fn read(input: impl Read, sink: &mut dyn RowSink) -> Result<(), RosterProblem> {
    let read_error = |row: usize, error: &dyn std::fmt::Display| {
        RosterProblem::reject(
            row,
            "",
            "",
            "csv_format",
            format!("the file could not be read as CSV from this row on ({error}); check the quotes on this row"),
        )
    };
    let mut input = BufReader::with_capacity(START_BYTES, input);
    let start = input.fill_buf().map_err(|e| read_error(1, &e))?;
    if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") {
        return Err(RosterProblem::reject(
            1,
            "",
            "",
            "encoding",
            "the file is UTF-16 text (Excel's \"Unicode Text\"), not UTF-8 CSV; save it as \"CSV UTF-8 (Comma \
             delimited)\" and import it again",
        ));
    }
    let bom = start.starts_with(UTF8_BOM);
    let delimiter = detect_delimiter(if bom { &start[UTF8_BOM.len()..] } else { start });
    if bom {
        input.consume(UTF8_BOM.len());
    }
    let mut reader =
        ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(LineBreaks::new(input));
    let mut record = ByteRecord::new();
    let mut rows = RowNumbers::default();

    let has_header = reader.read_byte_record(&mut record).map_err(|e| read_error(1, &e))?;
    if !has_header {
        return Err(RosterProblem::reject(
            1,
            "",
            "",
            "empty_file",
            "the file is empty; the first row must hold the column headers, then one row per household or person",
        ));
    }
    let header_row = rows.next(&record, reader.get_mut());
    let headers: Vec<Cell<'_>> = record.iter().map(decode).collect();
    sink.header(header_row, &headers);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let row = rows.next(&record, reader.get_mut());
                let cells: Vec<Cell<'_>> = record.iter().map(decode).collect();
                sink.row(row, &cells);
            }
            Ok(false) => break,
            Err(error) => {
                sink.problem(read_error(rows.last + 1, &error));
                break;
            }
        }
    }
    Ok(())
}

/// The file's reader, noting where its runs of line breaks (`\r`, `\n`) are while the csv reader
/// reads ahead, so a record's row can be told after the csv reader skipped blank lines. Runs
/// behind the record being numbered are dropped, so this holds about a buffer's worth of them.
struct LineBreaks<R> {
    inner: R,
    /// Bytes read so far (the position of the next byte).
    offset: u64,
    runs: VecDeque<BreakRun>,
}

/// Consecutive line-break bytes `start..end`, and where its `\n`s are.
struct BreakRun {
    start: u64,
    end: u64,
    newlines: Vec<u64>,
}

impl<R> LineBreaks<R> {
    fn new(inner: R) -> Self {
        LineBreaks { inner, offset: 0, runs: VecDeque::new() }
    }

    /// How many `\n` follow `start` before its first byte that is not a line break (the blank
    /// lines a record starting at `start` skipped); forgets the runs before `start`.
    fn newlines_from(&mut self, start: u64) -> u64 {
        while self.runs.front().is_some_and(|run| run.end <= start) {
            self.runs.pop_front();
        }
        match self.runs.front() {
            Some(run) if run.start <= start => run.newlines.iter().filter(|at| **at >= start).count() as u64,
            _ => 0,
        }
    }
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            if !matches!(byte, b'\r' | b'\n') {
                continue;
            }
            let at = self.offset + i as u64;
            if self.runs.back().is_none_or(|run| run.end != at) {
                self.runs.push_back(BreakRun { start: at, end: at, newlines: Vec::new() });
            }
            if let Some(run) = self.runs.back_mut() {
                run.end = at + 1;
                if *byte == b'\n' {
                    run.newlines.push(at);
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Tracks spreadsheet row numbers. The csv reader gives each record the line where it started
/// looking for it, before the blank lines (and the `\n` of a previous `\r\n`) it skipped; those
/// are counted from the line breaks [`LineBreaks`] saw. A record starting `n` lines after the
/// previous one, minus the line breaks inside the previous one's quoted cells, is `n` rows
/// further down.
#[derive(Default)]
struct RowNumbers {
    last: usize,
    last_line: u64,
    last_breaks: u64,
}

impl RowNumbers {
    fn next<R>(&mut self, record: &ByteRecord, breaks: &mut LineBreaks<R>) -> usize {
        let line = match record.position() {
            Some(position) => position.line() + breaks.newlines_from(position.byte()),
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
