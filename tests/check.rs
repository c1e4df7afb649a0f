//! `casegate check`: exit 0 only when all is well; one FAIL line per problem, never a secret.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn casegate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_casegate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn fresh_init_passes_and_a_world_readable_key_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = casegate(dir, &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("run `casegate init`"), "{}", text(&o));

    assert!(casegate(dir, &["init"]).status.success());
    let o = casegate(dir, &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let key = dir.join("casegate-data/coordinator.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = casegate(dir, &["check", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key_line = lines
        .iter()
        .find(|l| l["check"] == "coordinator key")
        .unwrap();
    assert_eq!(key_line["ok"], false);
    assert!(key_line["detail"].as_str().unwrap().contains("chmod 600"));
}

#[test]
fn unreachable_servers_and_missing_secrets_are_reported_without_leaking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(casegate(dir, &["init"]).status.success());
    std::fs::write(dir.join("imap-pass"), "s3cret-imap-pw\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("imap-pass"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let cfg = format!(
        r#"
[[imap]]
name = "cert"
host = "127.0.0.1"
port = {imap}
tls = "none"
username = "cert@example.test"
password_file = "imap-pass"
timeout_secs = 2

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
username = "cert@example.test"
password_env = "CASEGATE_CHECK_TEST_UNSET"
"#,
        imap = closed_port(),
        smtp = closed_port()
    );
    std::fs::write(dir.join("casegate.toml"), cfg).unwrap();
    let o = casegate(dir, &["check"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL imap cert"), "{t}");
    assert!(
        t.contains("FAIL smtp") && t.contains("CASEGATE_CHECK_TEST_UNSET"),
        "{t}"
    );
    assert!(!t.contains("s3cret-imap-pw"), "password leaked: {t}");
}

#[test]
fn a_broken_config_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        "[coordinator]\nadress = \"typo@example.test\"\n",
    )
    .unwrap();
    let o = casegate(dir, &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("casegate.toml") && t.contains("adress"), "{t}");
    assert!(!t.contains("panicked"));
}

#[test]
fn init_creates_the_key_where_the_config_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        "[coordinator]\nkey_file = \"keys/coordinator.key\"\n[store]\npath = \"db/casegate.sqlite\"\n",
    )
    .unwrap();
    let o = casegate(dir, &["init"]);
    assert!(o.status.success(), "{}", text(&o));
    let key = dir.join("keys/coordinator.key");
    assert!(key.is_file());
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(dir.join("db/casegate.sqlite").is_file());
    // Idempotent: the same fingerprint again.
    let again = casegate(dir, &["init"]);
    assert_eq!(o.stdout, again.stdout);
    assert_eq!(casegate(dir, &["check"]).status.code(), Some(0));
}
