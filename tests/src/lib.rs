//! The end-to-end harness: run the real `pilar` binary on real store directories, and make
//! synthetic households (never real people: domain.md §3).

pub mod synthetic;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// Path of a binary built by this workspace, next to the running test or bench executable.
///
/// `cargo test --workspace` builds `pilar` before running any test (the cli crate has its own
/// integration test, which makes cargo build the binary).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the whole workspace's tests (`cargo test --workspace`) or `cargo build --workspace` first",
        path.display()
    );
    path
}

/// One device: a home directory for `pilar`, removed when dropped.
pub struct TestDevice {
    home: TempDir,
    now: Option<String>,
}

impl Default for TestDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDevice {
    /// A device with an empty home directory (no store until `init`).
    pub fn new() -> TestDevice {
        TestDevice { home: TempDir::new().expect("temp home"), now: None }
    }

    /// The device's home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Fix the clock the CLI sees (`PILAR_NOW`), for reproducible times.
    pub fn set_now(&mut self, rfc3339: &str) {
        self.now = Some(rfc3339.to_string());
    }

    /// Run `pilar` with `args` on this device.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("pilar"));
        cmd.arg("--home").arg(self.home.path()).args(args).env_remove("PILAR_HOME");
        match &self.now {
            Some(now) => cmd.env("PILAR_NOW", now),
            None => cmd.env_remove("PILAR_NOW"),
        };
        cmd.output().expect("run pilar")
    }

    /// Run `pilar`, require success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pilar {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run `pilar` with `--json`, require success, parse stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("pilar {args:?} printed invalid JSON ({e}): {text}"))
    }

    /// Run `pilar`, require failure (non-zero exit), return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "pilar {args:?} should have failed but succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }
}
