//! Triage works for a person: a message a number could not place waits with its reason;
//! `triage assign` posts it into a thread and records who decided.

use std::process::Command;

mod support;
use support::cli::{bin, casegate, json_lines};

#[test]
fn assign_posts_the_message_and_records_who_decided() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
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
    let raw = "From: Colleague <someone@foocorp.example>\r\nTo: cert@example.test\r\n\
Subject: Re: VU#409117 forwarded to me\r\nMessage-ID: <fw-1@foocorp.example>\r\n\r\nHi\r\n";
    std::fs::write(dir.join("m.eml"), raw).unwrap();
    let o = json_lines(&casegate(dir, &["ingest", "--json", "m.eml"]));
    assert_eq!(o[0]["outcome"], "triage");
    let waiting = json_lines(&casegate(dir, &["triage", "list", "--json"]));
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0]["triage_reason"],
        "sender is not a participant of VU#409117"
    );

    // An empty or too short key matches nothing (not every message).
    let out = Command::new(bin())
        .args(["triage", "assign", "", "VU#409117"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    casegate(
        dir,
        &[
            "triage",
            "assign",
            "fw-1@foocorp.example",
            "VU#409117",
            "--by",
            "analyst-ann",
        ],
    );
    assert!(json_lines(&casegate(dir, &["triage", "list", "--json"])).is_empty());
    let all = json_lines(&casegate(dir, &["triage", "list", "--all", "--json"]));
    assert_eq!(all[0]["assigned_by"], "analyst-ann");
    assert_eq!(all[0]["thread"], "VU#409117");
    let show = json_lines(&casegate(dir, &["show", "VU#409117", "--json"]));
    let msgs = show[0]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("assigned by analyst-ann")
    );

    // Assigning twice is an error that says where to look.
    let out = Command::new(bin())
        .args(["triage", "assign", "<fw-1@foocorp.example>", "VU#409117"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("triage list"));
}
