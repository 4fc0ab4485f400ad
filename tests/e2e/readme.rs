//! README.md runs as written: every `sh` block of it (but those marked
//! `<!-- readme-test: skip (why) -->`) is run, in order, as one `bash` script against a real
//! server, so the tour a new user follows cannot drift from the code.

use pilar_tests::TestServer;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The admin password the README's set-up gives the server's first start.
const README_ADMIN_PASSWORD: &str = "Contoh-admin-2026";

/// The README's `sh` blocks, in order, without the skipped ones.
fn runnable_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut skip_next = false;
    // The block being read: whether it runs, and its lines.
    let mut current: Option<(bool, Vec<&str>)> = None;
    for line in readme.lines() {
        let fence = line.trim_start().starts_with("```");
        match &mut current {
            Some((runs, lines)) if fence => {
                if *runs {
                    blocks.push(lines.join("\n"));
                }
                current = None;
            }
            Some((_, lines)) => lines.push(line),
            None if fence => {
                let runs = line.trim() == "```sh" && !skip_next;
                skip_next = false;
                current = Some((runs, Vec::new()));
            }
            None if line.trim_start().starts_with("<!-- readme-test: skip") => skip_next = true,
            None => {}
        }
    }
    assert!(current.is_none(), "README.md has an unclosed code block");
    blocks
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

#[test]
fn the_readme_tour_runs_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(readme.contains(&format!("PILAR_ADMIN_PASSWORD={README_ADMIN_PASSWORD}")), "the set-up names the password");
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 4, "README.md should have its tour blocks, found {}", blocks.len());
    let server = TestServer::start_with(&[], Some(README_ADMIN_PASSWORD));
    let bin_dir = pilar_tests::binary("pilar").parent().expect("bin dir").to_path_buf();
    // The tour's own words, with this run's server and binaries in place of the defaults.
    let script = format!("set -euo pipefail\nPS4='+ README: '\nset -x\n{}\n", blocks.join("\n"))
        .replace("http://127.0.0.1:8080", server.url())
        .replace("$PWD/target/release", bin_dir.to_str().expect("utf-8 path"));
    // An empty home and working directory, with the repository's docs/ where the tour expects it.
    let home = tempfile::TempDir::new().expect("home");
    let work = tempfile::TempDir::new().expect("work dir");
    std::os::unix::fs::symlink(root.join("docs"), work.path().join("docs")).expect("docs link");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("HOME", home.path())
        .env_remove("PILAR_HOME")
        .env_remove("PILAR_NOW")
        .env_remove("PILAR_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README tour failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // What the tour promises along the way.
    for said in [
        "downloaded 6 household(s) in 2 village(s)",
        "nothing left to send",
        "Kunjungi lagi sore hari",
        "La Baso Contoh",
        "rumah kosong",
    ] {
        assert!(stdout.contains(said), "the tour should print {said:?}:\n{stdout}");
    }
    assert!(work.path().join("kecamatan.xlsx").exists(), "the export was written");
    assert!(work.path().join("progress-villages.csv").exists(), "the progress report was written");
}

#[test]
fn the_block_reader_skips_marked_and_other_language_blocks() {
    let text = "a\n```sh\none\n```\n<!-- readme-test: skip (x) -->\n```sh\ntwo\n```\n```text\nthree\n```\n```sh\nfour\nfive\n```\n";
    assert_eq!(runnable_blocks(text), vec!["one".to_string(), "four\nfive".to_string()]);
}
