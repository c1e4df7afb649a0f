//! `casegate ingest` within `max_message_bytes`: a larger message on stdin or in a file is not
//! read whole; its head, size and the SHA-256 of all of it are quarantined (a second copy is a
//! duplicate), `route --dry-run` says so without storing, and the next input goes on.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::cli::{bin, casegate, json_lines};

fn big(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.net\r\nTo: cert@example.test\r\nSubject: big\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
        );
    }
    m
}

fn sha256_hex(raw: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw))
}

fn ingest_stdin(dir: &std::path::Path, args: &[&str], raw: &[u8]) -> String {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = raw.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_oversized_message_is_quarantined_by_its_head_size_and_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        "[policy]\nmax_message_bytes = 100000\n\n[limits]\noversized_head_bytes = 1000\n",
    )
    .unwrap();
    let raw = big(3_000_000);

    let dry = json_lines(&ingest_stdin(
        dir,
        &["route", "--dry-run", "--json", "-"],
        &raw,
    ));
    assert_eq!(dry[0]["outcome"], "quarantine");
    assert!(
        dry[0]["reason"].as_str().unwrap().contains("3000"),
        "{dry:?}"
    );
    assert!(json_lines(&casegate(dir, &["quarantine", "list", "--json"])).is_empty());

    let out = json_lines(&ingest_stdin(dir, &["ingest", "--json", "-"], &raw));
    assert_eq!(out[0]["outcome"], "quarantine", "{out:?}");
    let file = dir.join("copy.eml");
    std::fs::write(&file, &raw).unwrap();
    let small = dir.join("small.eml");
    std::fs::write(
        &small,
        "From: r@example.net\r\nTo: cert@example.test\r\nSubject: small\r\n\r\nhi\r\n",
    )
    .unwrap();
    let out = json_lines(&casegate(
        dir,
        &["ingest", "--json", "copy.eml", "small.eml"],
    ));
    assert_eq!(out[0]["outcome"], "duplicate", "same SHA-256: {out:?}");
    assert_eq!(out[1]["outcome"], "routed", "{out:?}");

    let q = json_lines(&casegate(dir, &["quarantine", "list", "--json"]));
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["raw_size"], raw.len());
    assert_eq!(q[0]["sha256"], sha256_hex(&raw));
    assert_eq!(q[0]["flags"], "oversized");
    let reason = q[0]["reason"].as_str().unwrap();
    assert!(reason.contains("policy.max_message_bytes"), "{reason}");
    assert!(reason.contains("first 1000 bytes"), "{reason}");
}
