//! `[policy] max_message_bytes` through the pipeline: a message of exactly the limit is opened
//! and routed; one byte more is kept raw (all of it: it is smaller than the kept head), byte for
//! byte, in quarantine, unread, with a reason that names the setting — by `ingest` and by the running daemon's drop folder alike.

mod support;

use std::path::Path;
use std::time::Duration;

use support::cli::{Serve, casegate, json_lines, wait_for};

const LIMIT: usize = 2000;

/// A participant's mail to the case, padded to exactly `size` bytes.
fn message_of(size: usize, id: &str) -> Vec<u8> {
    let head = format!(
        "From: FooCorp PSIRT <psirt@foocorp.example>\r\nTo: cert@example.test\r\n\
Subject: Re: VU#409117 statement\r\nMessage-ID: <{id}@foocorp.example>\r\n\r\n"
    );
    let mut raw = head.into_bytes();
    while raw.len() < size - 2 {
        raw.push(b'x');
    }
    raw.extend(b"\r\n");
    assert_eq!(raw.len(), size);
    raw
}

fn setup(dir: &Path) {
    std::fs::write(
        dir.join("casegate.toml"),
        format!("[policy]\nmax_message_bytes = {LIMIT}\n\n[maildir]\npoll_interval_ms = 100\n"),
    )
    .unwrap();
    casegate(dir, &["init"]);
    casegate(
        dir,
        &["open", "case", "--title", "t", "--number", "VU#409117"],
    );
    casegate(
        dir,
        &[
            "participant",
            "add",
            "VU#409117",
            "--org",
            "FooCorp",
            "--email",
            "psirt@foocorp.example",
        ],
    );
}

/// The raw bytes of the one quarantined message (too large to be parsed: no Message-ID).
fn quarantined_raw(dir: &Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(dir.join("casegate-data/casegate.sqlite")).unwrap();
    conn.query_row(
        "SELECT raw FROM messages WHERE outcome = 'quarantine'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn max_message_bytes_through_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);
    std::fs::write(dir.join("at.eml"), message_of(LIMIT, "at-limit")).unwrap();
    let over = message_of(LIMIT + 1, "over-limit");
    std::fs::write(dir.join("over.eml"), &over).unwrap();
    let lines = json_lines(&casegate(dir, &["ingest", "--json", "at.eml", "over.eml"]));
    assert_eq!(lines[0]["outcome"], "routed", "{}", lines[0]);
    assert_eq!(lines[0]["thread"], "VU#409117");
    assert_eq!(lines[1]["outcome"], "quarantine", "{}", lines[1]);
    assert_eq!(
        lines[1]["reason"],
        format!(
            "message is {} bytes, over the limit of {LIMIT} (policy.max_message_bytes): kept, not read",
            LIMIT + 1
        )
    );
    let quarantined = json_lines(&casegate(dir, &["quarantine", "list", "--json"]));
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined_raw(dir), over, "kept byte for byte");
}

#[test]
fn max_message_bytes_through_the_drop_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);
    let maildir = dir.join("casegate-data/Maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let over = message_of(LIMIT + 1, "over-limit");
    for (name, raw) in [
        ("1.eml", message_of(LIMIT, "at-limit")),
        ("2.eml", over.clone()),
    ] {
        std::fs::write(maildir.join("tmp").join(name), raw).unwrap();
        std::fs::rename(
            maildir.join("tmp").join(name),
            maildir.join("new").join(name),
        )
        .unwrap();
    }
    let serve = Serve::start(dir, &[]);
    wait_for("both stored and moved", Duration::from_secs(60), || {
        std::fs::read_dir(maildir.join("cur")).unwrap().count() == 2
    });
    assert_eq!(serve.stop(), Some(0));
    let quarantined = json_lines(&casegate(dir, &["quarantine", "list", "--json"]));
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(
        quarantined[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("2.eml"),
        "{quarantined:?}"
    );
    assert!(
        quarantined[0]["reason"]
            .as_str()
            .unwrap()
            .contains("2001 bytes, over the limit of 2000 (policy.max_message_bytes)"),
        "{quarantined:?}"
    );
    assert_eq!(quarantined_raw(dir), over, "kept byte for byte");
    let show = json_lines(&casegate(dir, &["show", "VU#409117", "--json"]));
    let ids: Vec<&str> = show[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["<at-limit@foocorp.example>"]);
}
