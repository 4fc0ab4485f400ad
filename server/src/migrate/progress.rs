//! How a migration reports its progress: a bar per table on a terminal ([`BarProgress`]), plain
//! lines otherwise ([`LineProgress`], for logs and scripts), nothing in tests ([`QuietProgress`]).
//! Only table names and counts: never a row's content.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;

/// Receives a migration's progress.
pub trait Progress {
    /// A table's copy starts; it holds `total` rows.
    fn table(&mut self, table: &str, total: u64);
    /// `copied` of `total` rows of `table` are copied so far.
    fn copied(&mut self, table: &str, copied: u64, total: u64);
    /// A table is copied.
    fn table_done(&mut self, table: &str, copied: u64);
    /// Another step (verification) has news.
    fn step(&mut self, message: &str);
}

/// No output (tests, embedding).
#[derive(Debug, Default)]
pub struct QuietProgress;

impl Progress for QuietProgress {
    fn table(&mut self, _: &str, _: u64) {}
    fn copied(&mut self, _: &str, _: u64, _: u64) {}
    fn table_done(&mut self, _: &str, _: u64) {}
    fn step(&mut self, _: &str) {}
}

/// Plain lines on stderr: one when a table starts, one every tenth of a large table, one when it
/// is done.
#[derive(Debug, Default)]
pub struct LineProgress {
    next_report: u64,
}

impl Progress for LineProgress {
    fn table(&mut self, table: &str, total: u64) {
        self.next_report = (total / 10).max(1);
        say(&format!("copying {table}: {total} rows"));
    }

    fn copied(&mut self, table: &str, copied: u64, total: u64) {
        if copied >= self.next_report && copied < total {
            say(&format!("copying {table}: {copied}/{total} rows"));
            self.next_report = copied + (total / 10).max(1);
        }
    }

    fn table_done(&mut self, table: &str, copied: u64) {
        say(&format!("copied {table}: {copied}/{copied} rows"));
    }

    fn step(&mut self, message: &str) {
        say(message);
    }
}

fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    // Progress is a courtesy: a closed stderr must not stop the copy.
    let _ = writeln!(stderr, "{line}");
}

/// A progress bar per table on stderr (a terminal).
#[derive(Debug, Default)]
pub struct BarProgress {
    bar: Option<ProgressBar>,
}

impl Progress for BarProgress {
    fn table(&mut self, table: &str, total: u64) {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(table.to_string());
        self.bar = Some(bar);
    }

    fn copied(&mut self, _: &str, copied: u64, _: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(copied);
        }
    }

    fn table_done(&mut self, table: &str, copied: u64) {
        match self.bar.take() {
            Some(bar) => {
                bar.set_position(copied);
                bar.finish_and_clear();
                say(&format!("copied {table}: {copied}/{copied} rows"));
            }
            None => say(&format!("copied {table}: {copied}/{copied} rows")),
        }
    }

    fn step(&mut self, message: &str) {
        say(message);
    }
}
