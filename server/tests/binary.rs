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

#[cfg(unix)]
#[test]
fn the_signing_key_file_of_an_older_server_moves_into_the_database() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().expect("temp dir");
    let key = dir.path().join("jwt.key");
    let old_key: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    std::fs::write(&key, &old_key).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut server = Command::new(env!("CARGO_BIN_EXE_pilar-server"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("PILAR_ADMIN_PASSWORD", "admin-password-for-tests")
        .env_remove("PILAR_DATABASE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run pilar-server");
    let stdout = server.stdout.take().expect("stdout");
    let listening = std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("listening on"));
    let _ = server.kill();
    let _ = server.wait();
    assert!(listening, "the server started");
    let conn = rusqlite::Connection::open(dir.path().join("server.db")).expect("open the database");
    let stored: Vec<u8> = conn
        .query_row("SELECT value FROM server_secrets WHERE name = 'signing_key'", [], |r| r.get(0))
        .expect("the signing key is a server secret");
    assert_eq!(stored, old_key, "tokens the older server signed stay valid");
}
