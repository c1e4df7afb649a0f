//! Nothing from inbound mail reaches an outbound header unchecked: reports whose Message-ID,
//! display name or subject try to smuggle a header (bare CR, LF, NUL, folding, encoded words,
//! overlong values) are acknowledged through a real `serve` and SMTP, and each acknowledgment
//! is read back with Python's email parser, as a receiving client would: no injected header,
//! no CR/LF/NUL in any value, In-Reply-To only when the reporter's Message-ID was one.
//! Values from analysts and the configuration are checked too.

mod outbox_gpg;
mod outbox_receiver;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use casegate::header::{AddrSpec, MessageId};
use outbox_receiver::Receiver;
use support::cli::{bin, casegate, serve, sigterm, wait_for};

/// Prints, per file, the header fields as Python's email package sees them: names under
/// compat32 (line structure), names and decoded values under the default policy.
const PY_HEADERS: &str = r#"
import email, json, sys
from email import policy
out = []
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    c = email.message_from_bytes(data, policy=policy.compat32)
    d = email.message_from_bytes(data, policy=policy.default)
    out.append({'compat32': [k for k, _ in c.items()],
                'default': [[k, str(v)] for k, v in d.items()],
                'defects': [type(x).__name__ for x in d.defects]})
print(json.dumps(out))
"#;

/// What Python's parser made of one message's header section.
struct Parsed {
    names_compat32: Vec<String>,
    fields: Vec<(String, String)>,
}

impl Parsed {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn python_headers(files: &[PathBuf]) -> Vec<Parsed> {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PY_HEADERS)
        .args(files)
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Parsed {
            names_compat32: m["compat32"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect(),
            fields: m["default"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap().to_string(),
                        kv[1].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// The header fields casegate writes at the top of a message, and nothing else.
const OUTER: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
    "mime-version",
    "content-type",
];

/// Every field is one casegate writes, none twice, no value holds CR, LF or NUL after
/// decoding, and compat32 (which keeps line structure) sees the same fields.
fn assert_clean(p: &Parsed, what: &str) {
    let names: Vec<String> = p.fields.iter().map(|(k, _)| k.to_lowercase()).collect();
    for n in &names {
        assert!(
            OUTER.contains(&n.as_str()),
            "{what}: injected field {n:?}: {names:?}"
        );
        assert_eq!(
            names.iter().filter(|m| *m == n).count(),
            1,
            "{what}: {n} twice: {names:?}"
        );
    }
    let compat: Vec<String> = p.names_compat32.iter().map(|k| k.to_lowercase()).collect();
    assert_eq!(compat, names, "{what}: the parsers disagree on the fields");
    for (k, v) in &p.fields {
        assert!(
            !v.contains(['\r', '\n', '\0']),
            "{what}: {k} holds a line break or NUL after decoding: {v:?}"
        );
    }
}

fn report(from: &str, message_id_header: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: cert@example.test\r\nSubject: {subject}\r\n{message_id_header}\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nA report.\r\n"
    )
    .into_bytes()
}

#[test]
fn acknowledgments_of_hostile_reports_carry_no_injected_header() {
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[maildir]\nenabled = false\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 10\n",
            rx.plain_port
        ),
    )
    .unwrap();
    casegate(dir, &["init"]);

    let long_id = format!("Message-ID: <{}@reporter.example>", "x".repeat(2000));
    // (sender, Message-ID header line, subject, the In-Reply-To expected on the ack)
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        (
            "r0@reporter.example",
            "Message-ID: <good-0@reporter.example>".into(),
            "A plain report",
            Some("<good-0@reporter.example>"),
        ),
        (
            "r1@reporter.example",
            "Message-ID: <abc\rX-Injected-CR: yes@reporter.example>".into(),
            "Bare CR",
            None,
        ),
        (
            "r2@reporter.example",
            "Message-ID: <abc\rBcc: victim@elsewhere.example>".into(),
            "Bare CR then Bcc",
            None,
        ),
        (
            "r3@reporter.example",
            "Message-ID: <abc\0def@reporter.example>".into(),
            "NUL",
            None,
        ),
        (
            "r4@reporter.example",
            "Message-ID: <abc\r\n X-Injected-Fold: yes@reporter.example>".into(),
            "Folded inside the id",
            None,
        ),
        (
            "r5@reporter.example",
            "Message-ID: <=?utf-8?q?a=0D=0AX-Injected-EW:=20yes?=@reporter.example>".into(),
            "Encoded word",
            None,
        ),
        (
            "r6@reporter.example",
            "Message-ID: <=?utf-8?q?a=0D=0Ab?=@reporter.example>".into(),
            "Encoded word without a colon",
            None,
        ),
        ("r7@reporter.example", long_id, "Overlong id", None),
        (
            "\"Evil\r\n Bcc: victim@elsewhere.example\" <r8@reporter.example>",
            "Message-ID: <good-8@reporter.example>".into(),
            "Folded display name",
            Some("<good-8@reporter.example>"),
        ),
        (
            "=?utf-8?q?Evil=0D=0ABcc:_victim@elsewhere.example?= <r9@reporter.example>",
            "Message-ID: <good-9@reporter.example>".into(),
            "=?utf-8?q?subject=0D=0AX-Injected-Subject:_yes?=",
            Some("<good-9@reporter.example>"),
        ),
        (
            "r10@reporter.example",
            "Message-ID: <abc\u{85}def@reporter.example>".into(),
            "NEL",
            None,
        ),
    ];
    for (i, (from, mid, subject, _)) in cases.iter().enumerate() {
        let path = dir.join(format!("r{i}.eml"));
        std::fs::write(&path, report(from, mid, subject)).unwrap();
        let out = casegate(dir, &["ingest", "--json", path.to_str().unwrap()]);
        let o: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(o["outcome"], "routed", "case {i}: {o}");
        assert!(
            o["acknowledgment"]
                .as_str()
                .is_some_and(|a| a.starts_with("queued")),
            "case {i}: {o}"
        );
    }

    let mut child = serve(dir);
    wait_for(
        "every acknowledgment accepted over SMTP",
        Duration::from_secs(60),
        || rx.accepted().len() >= cases.len(),
    );
    assert_eq!(sigterm(&mut child), Some(0));

    let accepted = rx.accepted();
    assert_eq!(accepted.len(), cases.len());
    let files: Vec<PathBuf> = accepted
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = dir.join(format!("ack{i}.eml"));
            std::fs::write(&p, &a.raw).unwrap();
            p
        })
        .collect();
    let parsed = python_headers(&files);
    for (a, p) in accepted.iter().zip(&parsed) {
        let rcpt = &a.rcpt_tos[0];
        let i: usize = rcpt
            .strip_prefix('r')
            .and_then(|r| r.split('@').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected recipient {rcpt}"));
        let what = format!("acknowledgment to {rcpt} (case {i})");
        assert_clean(p, &what);
        assert_eq!(p.get("To"), Some(rcpt.as_str()), "{what}");
        assert_eq!(a.rcpt_tos.len(), 1, "{what}");
        assert_eq!(p.get("In-Reply-To"), cases[i].3, "{what}");
        assert_eq!(p.get("References"), cases[i].3, "{what}");
        assert!(
            p.get("Subject")
                .is_some_and(|s| s.contains("Report received")),
            "{what}"
        );
    }
}

#[test]
fn analysts_and_configuration_cannot_write_a_broken_header() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let case = casegate(dir, &["open", "case", "--title", "t"]);
    let case = case.trim();
    std::fs::write(dir.join("body.txt"), "Hello\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    for bad in [
        "<a\rBcc: x@y.example>",
        "<a@b.example>\r\nBcc: x@y.example",
        "<=?utf-8?q?a=0D=0Ab?=@b.example>",
        "not a message id",
    ] {
        let out = run(&["notify", case, "--body", "body.txt", "--in-reply-to", bad]);
        assert_eq!(out.status.code(), Some(1), "--in-reply-to {bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--in-reply-to"), "{err}");
    }
    for bad in [
        "v@x.example\r\nBcc: y@z.example",
        "Vendor <v@x.example>",
        "v@x.example, w@x.example",
    ] {
        let out = run(&["participant", "add", case, "--org", "V", "--email", bad]);
        assert_eq!(out.status.code(), Some(1), "--email {bad:?} accepted");
    }
    std::fs::write(
        dir.join("bad.toml"),
        "[coordinator]\naddress = \"cert@example.test\\r\\nBcc: x@y.example\"\n",
    )
    .unwrap();
    let out = run(&["--config", "bad.toml", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("coordinator address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A subject an analyst (or a thread title taken from a hostile report) chose travels only in
/// the protected headers inside the encryption; decrypted, that header section is clean too.
#[test]
fn protected_headers_inside_the_encryption_are_clean() {
    use casegate::keyring::Keyring;
    use casegate::outbox::compose::{Notice, seal_for, sign_notice};
    let coordinator = outbox_gpg::coordinator_cert("cert@example.test");
    let (vendor, _) =
        sequoia_openpgp::cert::CertBuilder::general_purpose(Some("<vendor@example.test>"))
            .generate()
            .unwrap();
    let parent = MessageId::parse("<p@vendor.example>").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, subject) in [
        "Title\r\nBcc: victim@elsewhere.example",
        "Title\rX-Injected: yes",
        "Title\0\nX-Injected: yes",
        "=?utf-8?q?a=0D=0AX-Injected:_yes?=",
        &"ü".repeat(5000),
    ]
    .iter()
    .enumerate()
    {
        let now = SystemTime::now();
        let signed = sign_notice(
            &Notice {
                thread: "VU#409117",
                subject,
                body: "Details.\n",
                in_reply_to: Some(&parent),
                automatic: false,
            },
            &coordinator,
            &AddrSpec::parse("cert@example.test").unwrap(),
            now,
        )
        .unwrap();
        let sealed = seal_for(
            &signed,
            &AddrSpec::parse("vendor@example.test").unwrap(),
            &vendor.clone().strip_secret_key_material(),
            now,
        )
        .unwrap();
        let keyring = Keyring::new(
            Some(vendor.clone()),
            vec![coordinator.clone().strip_secret_key_material()],
        );
        let opened = casegate::open::open(&sealed.bytes, &keyring).unwrap();
        let inner = opened.inner.expect("decrypted content");
        let outer = tmp.path().join(format!("outer{i}.eml"));
        let protected = tmp.path().join(format!("inner{i}.eml"));
        std::fs::write(&outer, &sealed.bytes).unwrap();
        std::fs::write(&protected, &inner).unwrap();
        files.push((outer, protected));
    }
    let paths: Vec<PathBuf> = files
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let parsed = python_headers(&paths);
    for (i, pair) in parsed.chunks(2).enumerate() {
        assert_clean(&pair[0], &format!("outer header of copy {i}"));
        assert_eq!(pair[0].get("In-Reply-To"), Some("<p@vendor.example>"));
        let inner = &pair[1];
        for (k, v) in &inner.fields {
            assert!(
                !v.contains(['\r', '\n', '\0']),
                "protected {k} of copy {i}: {v:?}"
            );
        }
        let names: Vec<String> = inner.fields.iter().map(|(k, _)| k.to_lowercase()).collect();
        for n in &names {
            assert!(
                [
                    "content-type",
                    "content-transfer-encoding",
                    "from",
                    "subject",
                    "date"
                ]
                .contains(&n.as_str()),
                "copy {i}: injected protected field {n:?}"
            );
        }
        let subject = inner.get("Subject").unwrap();
        assert!(subject.starts_with("[VU#409117]"), "{subject}");
        assert!(subject.chars().count() <= casegate::header::MAX_TEXT_CHARS);
    }
}
