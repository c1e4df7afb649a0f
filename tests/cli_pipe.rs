//! The CLI in a pipe: every printing command, with and without --json, whose stdout's reader
//! has gone away (`casegate list | head -1`) exits 0 without a word on stderr — never
//! "internal error ... please report it". An ingest whose report nobody reads still stores
//! every message.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::cli::{bin, casegate, json_lines};

/// Runs `casegate ARGS` in `dir` with a stdout whose read end is already closed: the first
/// write fails with EPIPE, deterministically.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdout(writer)
        .output()
        .unwrap()
}

#[test]
fn every_printing_command_exits_quietly_when_stdout_is_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let case = casegate(dir, &["open", "case", "--title", "Overflow"])
        .trim()
        .to_string();
    let key = casegate::keyring::generate_coordinator_key("v@vendor.example").unwrap();
    std::fs::write(
        dir.join("v.asc"),
        casegate::keyring::armored_public(&key).unwrap(),
    )
    .unwrap();
    casegate(
        dir,
        &[
            "participant",
            "add",
            &case,
            "--org",
            "V",
            "--email",
            "v@vendor.example",
            "--key",
            "v.asc",
        ],
    );
    let mail = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap();
        name.to_string()
    };
    let report = mail(
        "report.eml",
        "From: r@reporter.example\r\nTo: cert@example.test\r\nSubject: A report\r\nMessage-ID: <r1@reporter.example>\r\n\r\nx\r\n",
    );
    let triaged = mail(
        "triage.eml",
        "From: s@elsewhere.example\r\nTo: cert@example.test\r\nSubject: Re: VU#999999\r\nMessage-ID: <t1@elsewhere.example>\r\n\r\nx\r\n",
    );
    let junk = mail("junk.eml", "\r\n\r\n");
    casegate(dir, &["ingest", &report, &triaged, &junk]);
    std::fs::write(dir.join("body.txt"), "Notice.\n").unwrap();
    let report_number =
        json_lines(&casegate(dir, &["list", "--json", "--kind", "report"]))[0]["number"]
            .as_str()
            .unwrap()
            .to_string();

    let commands: Vec<Vec<&str>> = vec![
        vec!["init"],
        vec!["init", "--json"],
        vec!["check"],
        vec!["check", "--json"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["show", &case],
        vec!["show", &case, "--json"],
        vec!["participant", "list", &case],
        vec!["participant", "list", &case, "--json"],
        vec!["key", "list"],
        vec!["key", "list", "--json"],
        vec!["key", "export"],
        vec!["key", "import", "v.asc"],
        vec!["key", "import", "--json", "v.asc"],
        vec!["outbox", "list"],
        vec!["outbox", "list", "--json", "--attempts"],
        vec!["triage", "list"],
        vec!["triage", "list", "--json"],
        vec!["quarantine", "list"],
        vec!["quarantine", "list", "--json"],
        vec!["route", "--dry-run", &report],
        vec!["route", "--dry-run", "--json", &report],
        vec!["notify", &case, "--body", "body.txt"],
        vec!["notify", &case, "--body", "body.txt", "--json"],
        vec!["open", "ticket", "--title", "t"],
        vec!["open", "case", "--title", "t", "--json"],
        vec!["set", &case, "--require-signed-statements", "true"],
        vec!["promote", &report_number],
        vec!["--help"],
    ];
    for args in &commands {
        let out = with_closed_stdout(dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("internal error"), "{args:?}: {err}");
        assert!(err.trim().is_empty(), "{args:?} said on stderr: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }

    // Nobody reads the report, every message is still stored.
    let many: Vec<String> = (0..5)
        .map(|i| {
            mail(
                &format!("m{i}.eml"),
                &format!(
                    "From: m{i}@reporter.example\r\nTo: cert@example.test\r\nSubject: Report {i}\r\nMessage-ID: <m{i}@reporter.example>\r\n\r\nx\r\n"
                ),
            )
        })
        .collect();
    let mut args = vec!["ingest", "--json"];
    args.extend(many.iter().map(String::as_str));
    let out = with_closed_stdout(dir, &args);
    assert_eq!(out.status.code(), Some(0));
    let reports = json_lines(&casegate(dir, &["list", "--json", "--kind", "report"]));
    for i in 0..5 {
        assert!(
            reports.iter().any(|r| r["title"] == format!("Report {i}")),
            "m{i} not stored"
        );
    }
}

#[test]
fn a_real_pipe_into_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for i in 0..3 {
        casegate(dir, &["open", "case", "--title", &format!("case {i}")]);
    }
    let out = Command::new("/bin/bash")
        .arg("-c")
        .arg(format!("set -o pipefail; '{}' list | head -1", bin()))
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty());
}
