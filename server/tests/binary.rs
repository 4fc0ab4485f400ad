//! The `pilar-server` binary's own start-up checks (this file also makes `cargo test` build the
//! binary that the end-to-end scenarios in tests/ start).

use std::process::Command;

#[cfg(unix)]
#[test]
fn a_signing_key_readable_by_others_stops_the_server_with_a_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().expect("temp dir");
    let key = dir.path().join("jwt.key");
    std::fs::write(&key, [7u8; 64]).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_pilar-server"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("PILAR_ADMIN_PASSWORD", "admin-password-for-tests")
        .output()
        .expect("run pilar-server");
    assert!(!out.status.success(), "the server must refuse to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is served: {}", String::from_utf8_lossy(&out.stdout));
}
