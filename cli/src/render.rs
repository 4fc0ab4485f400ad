//! Plain-text tables for terminal output (column widths fitted to the content), and the one place
//! that makes values from elsewhere safe to print: a colleague's device or a server can send any
//! text, and a terminal obeys control characters and direction overrides.

/// The widest a table cell gets; longer values are cut (the whole value is in `--json`).
pub const CELL_CHARS: usize = 60;

/// The longest a free-standing value (a comment, a note, a field's value) prints.
pub const LINE_CHARS: usize = 500;

/// Whether `c` would change how a terminal shows the text around it instead of being shown:
/// control characters, direction overrides and isolates, invisible marks.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}' | '\u{2028}' | '\u{2029}')
}

/// `s` made safe for a terminal and cut to `max_chars` characters: every unsafe character is
/// shown as its code (`<U+1B>`), never obeyed; a cut value ends in `…`.
pub fn text(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for c in s.chars() {
        let piece = if is_unsafe(c) { format!("<U+{:X}>", c as u32) } else { c.to_string() };
        let len = piece.chars().count();
        if shown + len > max_chars {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
        shown += len;
    }
    out
}

/// Print rows under a header, each column as wide as its widest cell (cells made safe and cut to
/// [`CELL_CHARS`]).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| text(c, CELL_CHARS)).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in &rows {
        line(row);
    }
}

/// An optional value as a cell, `-` when absent.
pub fn cell<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_string())
}

/// A value from elsewhere for a line of its own: safe, cut to [`LINE_CHARS`].
pub fn line<T: std::fmt::Display>(v: T) -> String {
    text(&v.to_string(), LINE_CHARS)
}

/// A stored time (RFC 3339, any offset) as a person reads it, on the wall clock of the village
/// it happened in: `2026-12-01 21:19 WITA` for a village of Sulawesi (`73.…`), labelled `UTC`
/// when the village is unknown. Made safe for the terminal; stored times stay as they are.
pub fn local_time(stored: &str, village: &str) -> String {
    line(sync_core::ids::local_time_text(stored, sync_core::ids::LocalZone::of_region_text(village)))
}

/// A message of several lines from elsewhere (a server's error): each line made safe and cut to
/// [`LINE_CHARS`], at most 200 lines.
pub fn block(s: &str) -> String {
    let mut lines: Vec<String> = s.lines().take(200).map(|l| text(l, LINE_CHARS)).collect();
    if s.lines().nth(200).is_some() {
        lines.push("…".into());
    }
    lines.join("\n")
}

/// Whether a panic's message says stdout or stderr went away (`pilar list | head`): the reader
/// stopped, which is not an error.
pub fn is_broken_pipe(message: &str) -> bool {
    (message.starts_with("failed printing to stdout") || message.starts_with("failed printing to stderr"))
        && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_overrides_are_shown_not_obeyed() {
        assert_eq!(text("a\u{1b}[2Jb\u{7}", 100), "a<U+1B>[2Jb<U+7>");
        assert_eq!(text("\u{202e}abc\u{2069}", 100), "<U+202E>abc<U+2069>");
        assert_eq!(text("La Sintetis 👨‍👩‍👧", 100), "La Sintetis 👨‍👩‍👧");
    }

    #[test]
    fn times_are_shown_on_the_villages_clock_with_the_zone_named() {
        assert_eq!(local_time("2026-12-01T13:19:56Z", "73.14.01.1001"), "2026-12-01 21:19 WITA");
        assert_eq!(local_time("2026-12-01T13:19:56Z", "31.71.01.1001"), "2026-12-01 20:19 WIB");
        assert_eq!(local_time("2026-12-01T13:19:56Z", "94.01.01.2001"), "2026-12-01 22:19 WIT");
        assert_eq!(local_time("2026-12-01T13:19:56Z", ""), "2026-12-01 13:19 UTC");
        assert_eq!(local_time("not a time\u{1b}", "73"), "not a time<U+1B>");
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(text(&"é".repeat(10), 4), "éééé…");
        assert_eq!(text("abcd", 4), "abcd");
        assert_eq!(text("ab\u{1b}", 4), "ab…");
        assert_eq!(text("", 4), "");
    }
}
