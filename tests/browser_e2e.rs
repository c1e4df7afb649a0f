//! The analysts' page end to end in a real headless Chromium, against a real `casegate serve`:
//! an encrypted, signed vendor statement and a stranger's message arrive through the Maildir;
//! in the browser the analyst logs in with a token made by the CLI, opens the triage queue,
//! reads the vendor message decrypted, assigns the triaged message, previews and sends a
//! notice and sees its outbox copies (tests/browser/e2e.mjs, playwright-core driving
//! /usr/bin/chromium). Then the CLI checks that it all happened, in the analyst's name.
//! Screenshots go to target/browser-e2e/ (not committed). `./run test` installs Chromium and
//! the pinned playwright-core (tests/browser/package-lock.json).

mod support;
mod support_gpg;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::cli::{Desk, bin, sigterm, wait_for};
use support_gpg::*;

const CASE: &str = "VU#409117";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn deliver(maildir: &Path, name: &str, raw: &str) {
    std::fs::create_dir_all(maildir.join("tmp")).unwrap();
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn an_analyst_works_a_case_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `./run test` installs Debian's chromium"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: `./run test` installs it into tests/browser/node_modules"
    );
    let f = fixture();
    let cg = Desk::new();
    let coordinator = cg.ok(&["key", "export"]);
    f.gpg.import(coordinator.as_bytes());
    let coordinator_fpr = cg.json(&["key", "list", "--json"])[0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    cg.ok(&["open", "case", "--title", "FooRouter RCE", "--number", CASE]);
    let key = cg.write(
        "vendor.asc",
        &f.gpg.run(&["--armor", "--export", &f.vendor], None),
    );
    cg.ok(&[
        "participant",
        "add",
        CASE,
        "--org",
        "FooCorp",
        "--email",
        VENDOR,
        "--key",
        &key,
    ]);
    cg.ok(&[
        "participant",
        "add",
        CASE,
        "--org",
        "Keyless Inc",
        "--email",
        "psirt@keyless.example",
    ]);
    let token = cg.json(&["token", "add", "ann", "--json"])[0]["token"]
        .as_str()
        .unwrap()
        .to_string();

    let port = free_port();
    let config = cg.write(
        "casegate.toml",
        format!("[http]\nlisten = \"127.0.0.1:{port}\"\n\n[maildir]\npoll_interval_ms = 100\n")
            .as_bytes(),
    );
    let mut serve = Command::new(bin())
        .args(["--config", &config, "--data-dir"])
        .arg(&cg.data)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Mail arrives: the vendor's encrypted, signed statement and a stranger's question.
    let marker = "Fixed in FooRouter 2.0.8 (marker-7731)";
    let inner = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{marker}\r\n");
    let ct = f.gpg.run(
        &[
            "--armor",
            "--encrypt",
            "-r",
            &coordinator_fpr,
            "--sign",
            "-u",
            &f.vendor,
        ],
        Some(inner.as_bytes()),
    );
    let maildir = cg.data.join("Maildir");
    deliver(
        &maildir,
        "1.vendor",
        &format!(
            "{}{}",
            headers(VENDOR, &format!("Re: [{CASE}] statement"), "v1"),
            pgp_mime(&ct)
        ),
    );
    let question = "Is FooRouter 1.x affected too";
    deliver(
        &maildir,
        "2.stranger",
        &format!(
            "From: {STRANGER}\r\nTo: cert@example.test\r\nSubject: Re: {CASE} {question}\r\nMessage-ID: <q@elsewhere.example>\r\n\r\n?\r\n"
        ),
    );
    wait_for("both messages stored", Duration::from_secs(60), || {
        std::fs::read_dir(maildir.join("new"))
            .map(|d| d.count())
            .unwrap_or(1)
            == 0
            && cg.json(&["triage", "list", "--json"]).len() == 1
    });
    wait_for("the HTTP listener", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-e2e");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("node")
        .arg(browser_dir().join("e2e.mjs"))
        .current_dir(browser_dir())
        .env("CASEGATE_URL", format!("http://127.0.0.1:{port}"))
        .env("CASEGATE_TOKEN", &token)
        .env("CASE", CASE)
        .env("MARKER", marker)
        .env("TRIAGED", question)
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .env("HOME", profile.path())
        .env("XDG_CONFIG_HOME", profile.path())
        .env("XDG_CACHE_HOME", profile.path())
        .output()
        .unwrap();
    let stop = sigterm(&mut serve);
    assert!(
        out.status.success(),
        "browser steps failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stop, Some(0), "serve did not stop cleanly");
    for shot in [
        "1-triage",
        "2-thread",
        "3-message",
        "4-preview",
        "5-outbox",
        "6-narrow-triage",
        "7-narrow-thread",
        "8-narrow-threads",
        "9-narrow-outbox",
    ] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}.png");
    }

    // What the page did, as the command line sees it, in the analyst's name.
    assert!(cg.json(&["triage", "list", "--json"]).is_empty());
    let copies = cg.json(&["outbox", "list", "--json"]);
    let mut statuses: Vec<(String, String)> = copies
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            (VENDOR.to_string(), "queued".to_string()),
            ("psirt@keyless.example".to_string(), "held".to_string())
        ]
    );
    let audit = cg.json(&["audit", CASE, "--json"]);
    for action in ["triage assign", "notify"] {
        assert!(
            audit
                .iter()
                .any(|e| e["actor"] == "token:ann" && e["action"] == action),
            "no {action} by token:ann in {audit:?}"
        );
    }
}
