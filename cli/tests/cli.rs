//! The `pilar` binary's own checks (this file also makes `cargo test` build the binary that the
//! end-to-end scenarios in tests/ drive).

use std::process::Command;

#[test]
fn a_command_without_a_device_store_says_how_to_create_one() {
    let home = tempfile::TempDir::new().expect("temp");
    let out = Command::new(env!("CARGO_BIN_EXE_pilar"))
        .arg("--home")
        .arg(home.path())
        .arg("list")
        .output()
        .expect("run pilar");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pilar init"), "{stderr}");
}
