//! Ingest of a realistic mixed corpus from a Maildir (issue 16, item 6), as ratios, never
//! asserted.
//!
//! N messages (default 1,000, `CASEGATE_BENCH_N`) are made with real gpg, in this mix:
//!   - 40% plain text mail (half replies on the case, half new reports from strangers);
//!   - 30% PGP/MIME (RFC 3156 multipart/encrypted), signed by Ed25519 senders (Cv25519
//!     subkeys) and encrypted to the coordinator;
//!   - 15% PGP/MIME, signed by RSA-3072 senders and encrypted to the coordinator;
//!   - 10% multipart/signed (RFC 3156 detached signature over a cleartext body), any sender;
//!   - 5% inline PGP: a text/plain body that is one armored `PGP MESSAGE`, signed+encrypted.
//!
//! Five senders with their own keys (three Ed25519/Cv25519, two RSA-3072) are contacts of the
//! case with their keys bound, so their signatures verify as `good`. The corpus is written into
//! a Maildir and, in one run, timed three ways:
//!   1. the release `casegate ingest --json MAILDIR` binary into a fresh data dir (group commit
//!      in batches of `[ingest] batch_messages`, as an operator runs it; process start-up,
//!      key loading and store opening included);
//!   2. the legacy baseline `benches/baselines/legacy_ingest.py` on the same files;
//!   3. the bound: raw sequoia on the same messages, on every core — decrypt+verify the
//!      encrypted ones, verify the detached signature of the multipart/signed ones, nothing
//!      for plain mail.
//!
//! Every run is checked before a ratio is printed: each message is in the store with the
//! verdicts its kind must have (encrypted and signed `good`; multipart/signed `good`, not
//! encrypted; plain neither), and the legacy script decrypted and verified as many as it must.
//!
//! Run: `cargo bench --bench ingest_mixed` (or `benches/run ingest_mixed`).
//! `CASEGATE_BENCH_PROFILE=FILE` also records the casegate ingest (a second, untimed run into
//! another fresh data dir) with `perf record --call-graph dwarf -o FILE` (sum it by stage with
//! `benches/perf_stages.py FILE`); `CASEGATE_BENCH_KEEP=1` keeps the
//! Maildir and a fresh data dir set up for it (the path is printed), to run casegate by hand.
#![allow(dead_code)]

#[path = "../tests/support_gpg/mod.rs"]
mod support_gpg;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use casegate::keyring::{self, Cert, Keyring};
use openpgp::KeyHandle;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::types::SymmetricAlgorithm;
use sequoia_openpgp as openpgp;
use support_gpg::{Gpg, crlf, headers, pgp_mime, signed_entity};

const CASE: &str = "VU#409117";
const BIN: &str = env!("CARGO_BIN_EXE_casegate");

/// The kinds of the mix, in the order of the breakdown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Plain,
    PgpMimeEd25519,
    PgpMimeRsa,
    MultipartSigned,
    Inline,
}

const KINDS: [Kind; 5] = [
    Kind::Plain,
    Kind::PgpMimeEd25519,
    Kind::PgpMimeRsa,
    Kind::MultipartSigned,
    Kind::Inline,
];

impl Kind {
    /// Which kind message `i` is: a repeating pattern of 20 (8 + 6 + 3 + 2 + 1), so every
    /// batch of the ingest holds the whole mix.
    fn of(i: usize) -> Kind {
        match i % 20 {
            0..=7 => Kind::Plain,
            8..=13 => Kind::PgpMimeEd25519,
            14..=16 => Kind::PgpMimeRsa,
            17..=18 => Kind::MultipartSigned,
            _ => Kind::Inline,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain text",
            Kind::PgpMimeEd25519 => "PGP/MIME, Ed25519/Cv25519 signer, encrypted",
            Kind::PgpMimeRsa => "PGP/MIME, RSA-3072 signer, encrypted",
            Kind::MultipartSigned => "multipart/signed (detached, cleartext)",
            Kind::Inline => "inline PGP, signed+encrypted",
        }
    }

    fn encrypted(self) -> bool {
        matches!(self, Kind::PgpMimeEd25519 | Kind::PgpMimeRsa | Kind::Inline)
    }

    fn signed(self) -> bool {
        self != Kind::Plain
    }
}

/// What the bound does for one message: nothing, decrypt+verify, or verify a detached
/// signature over the signed entity.
enum Crypto {
    Nothing,
    Decrypt(Vec<u8>),
    Detached { data: Vec<u8>, signature: Vec<u8> },
}

struct Message {
    kind: Kind,
    raw: Vec<u8>,
    crypto: Crypto,
    /// Message-ID without angle brackets.
    id: String,
    /// Primary fingerprint of the signer, for the signed kinds.
    signer: Option<String>,
}

/// One sender of the corpus: a contact of the case with a key.
struct Sender {
    org: &'static str,
    role: &'static str,
    address: &'static str,
    fpr: String,
}

const SUBJECTS: [&str; 6] = [
    "patch timeline",
    "PoC against firmware 2.4.1",
    "draft advisory text",
    "CVE request status",
    "affected versions",
    "coordinated release date",
];

const REPORTS: [&str; 6] = [
    "Vulnerability report: SQL injection in Acme Portal 4.2",
    "Security issue in BarNet VPN client (local privilege escalation)",
    "Possible RCE in FooCorp router web UI",
    "Hardcoded credentials in SmartHome hub",
    "XSS in the login page of your customer portal",
    "Heap overflow in libfoo image decoder",
];

fn main() {
    // As `casegate` does; SAFETY: first statement of main, before any thread exists.
    unsafe { casegate::library_backtraces_off() };
    let n: usize = std::env::var("CASEGATE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");

    // The coordinator: `casegate init` makes its key; gpg (the legacy side) gets a copy.
    let data = dir.path().join("data");
    let init = casegate(&work, &data, &["init"]);
    assert_eq!(init.trim().len(), 40, "casegate init: {init}");
    let coordinator =
        keyring::read_secret_key_file(&data.join("coordinator.key")).expect("coordinator key");
    let gpg = Gpg::new();
    {
        use openpgp::serialize::SerializeInto;
        gpg.import(&coordinator.as_tsk().armored().to_vec().expect("tsk"));
    }
    let coordinator_fpr = coordinator.fingerprint().to_hex();

    eprintln!("generating sender keys …");
    let ed_senders = [
        ("Reporter", "reporter", "reporter@example.org"),
        ("Lab", "reporter", "researcher@lab.example"),
        ("BarNet", "vendor", "secteam@barnet.example"),
    ];
    let rsa_senders = [
        ("FooCorp", "vendor", "psirt@foocorp.example"),
        ("Acme", "vendor", "security@acme.example"),
    ];
    let mut ed = Vec::new();
    for (org, role, address) in ed_senders {
        let fpr = gpg.gen_key(&format!("{org} <{address}>"), "ed25519", "sign", "never", &[]);
        gpg.add_subkey(&fpr, "cv25519", "encr");
        ed.push(Sender {
            org,
            role,
            address,
            fpr,
        });
    }
    let mut rsa = Vec::new();
    for (org, role, address) in rsa_senders {
        let fpr = gpg.gen_key(&format!("{org} <{address}>"), "rsa3072", "sign", "never", &[]);
        gpg.add_subkey(&fpr, "rsa3072", "encr");
        rsa.push(Sender {
            org,
            role,
            address,
            fpr,
        });
    }
    let senders: Vec<&Sender> = ed.iter().chain(rsa.iter()).collect();
    let certs: Vec<Cert> = senders
        .iter()
        .flat_map(|s| keyring::parse_certs(&gpg.export(&s.fpr)).expect("sender cert"))
        .collect();

    eprintln!("generating {n} messages with gpg …");
    let t = Instant::now();
    let messages: Vec<Message> = (0..n)
        .map(|i| make_message(i, &gpg, &coordinator_fpr, &ed, &rsa, &senders))
        .collect();
    eprintln!("… {:.1} s", t.elapsed().as_secs_f64());

    let maildir = dir.path().join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    for (i, m) in messages.iter().enumerate() {
        // Maildir names: unique, sorted in arrival order.
        let name = format!("{}.{i:05}.bench:2,", 1_764_400_000 + i);
        std::fs::write(maildir.join("new").join(name), &m.raw).expect("write");
    }

    // 1. The bound: raw sequoia, one core and every core (after a warm-up of each kind).
    for k in KINDS {
        if let Some(m) = messages.iter().find(|m| m.kind == k) {
            raw_crypto(&m.crypto, &coordinator, &certs);
        }
    }
    let mut bound_per_kind = [Duration::ZERO; 5];
    let t = Instant::now();
    for m in &messages {
        let t = Instant::now();
        raw_crypto(&m.crypto, &coordinator, &certs);
        bound_per_kind[kind_index(m.kind)] += t.elapsed();
    }
    let bound_one_core = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..cores {
            let (messages, coordinator, certs) = (&messages, &coordinator, &certs);
            scope.spawn(move || {
                for m in messages.iter().skip(c).step_by(cores) {
                    raw_crypto(&m.crypto, coordinator, certs);
                }
            });
        }
    });
    let bound = t.elapsed();

    // 1b. casegate's open stage alone (MIME walk + sequoia), one core, per kind: where the
    // time goes next to the bound.
    let kr = Keyring::new(Some(coordinator.clone()), certs.clone());
    let mut open_per_kind = [Duration::ZERO; 5];
    for m in &messages {
        let t = Instant::now();
        let o = casegate::open::open(&m.raw, &kr).expect("open");
        open_per_kind[kind_index(m.kind)] += t.elapsed();
        let valid = matches!(o.signature, casegate::open::SignatureFacts::Valid { .. });
        let full = matches!(o.encryption, casegate::open::Encryption::Full { .. });
        assert!(
            valid == m.kind.signed() && full == m.kind.encrypted(),
            "open stage: message {} ({:?}) opened as encrypted={full} valid={valid}",
            m.id,
            m.kind
        );
    }

    // 2. casegate: the release binary, fresh data dir, the whole Maildir.
    setup_case(&work, &data, &senders, &gpg);
    let t = Instant::now();
    let out = casegate(&work, &data, &["ingest", "--json", maildir.to_str().expect("path")]);
    let casegate_time = t.elapsed();
    let checked = check_casegate(&out, &data.join("casegate.sqlite"), &messages);

    // 3. The legacy baseline on the same files.
    let legacy = legacy(&gpg.home, &dir.path().join("legacy.sqlite"), &maildir, &messages);

    // Optional: a profile of a second casegate ingest (untimed), into another fresh data dir.
    let fresh_data_dir = |name: &str| {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        keyring::write_secret_key_file(&data.join("coordinator.key"), &coordinator)
            .expect("key file");
        casegate(&work, &data, &["init"]);
        setup_case(&work, &data, &senders, &gpg);
        data
    };
    if let Ok(profile) = std::env::var("CASEGATE_BENCH_PROFILE") {
        let data2 = fresh_data_dir("data-profile");
        let status = Command::new("perf")
            // DWARF unwinding: the release build has no frame pointers, so `-g` alone would
            // lose most callers (see benches/perf_stages.py to sum the profile by stage).
            .args(["record", "-F", "2000", "--call-graph", "dwarf,16384", "-o", &profile, "--"])
            .arg(BIN)
            .arg("--data-dir")
            .arg(&data2)
            .args(["ingest", "--json"])
            .arg(&maildir)
            .current_dir(&work)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run perf");
        eprintln!("perf record: {status}; profile in {profile}");
    }

    // Optional: keep the corpus and a fresh data dir set up for it, to run casegate by hand.
    if std::env::var_os("CASEGATE_BENCH_KEEP").is_some() {
        fresh_data_dir("data-fresh");
        let kept = dir.keep();
        eprintln!(
            "kept: {}/maildir and a fresh data dir {}/data-fresh (run in {}/work)",
            kept.display(),
            kept.display(),
            kept.display()
        );
    }

    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&gpg.home)
        .args(["--kill", "gpg-agent"])
        .output();
    let _ = std::fs::remove_dir_all(&gpg.home);

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let count = |k: Kind| messages.iter().filter(|m| m.kind == k).count();
    println!(
        "messages: {n} ({} plain, {} PGP/MIME Ed25519/Cv25519, {} PGP/MIME RSA-3072, {} multipart/signed, {} inline PGP); {} senders with keys",
        count(Kind::Plain),
        count(Kind::PgpMimeEd25519),
        count(Kind::PgpMimeRsa),
        count(Kind::MultipartSigned),
        count(Kind::Inline),
        senders.len()
    );
    println!(
        "bound, sequoia decrypt/verify: one core {:.2} s; {cores} cores {:.2} s ({:.0} msg/s)",
        bound_one_core.as_secs_f64(),
        bound.as_secs_f64(),
        rate(bound)
    );
    println!(
        "casegate ingest (release binary, fresh store, group commit): {:.2} s ({:.0} msg/s); outcomes: {}",
        casegate_time.as_secs_f64(),
        rate(casegate_time),
        checked.outcomes
    );
    println!("per kind, one core (sequoia bound | casegate open stage | legacy):");
    for (i, k) in KINDS.iter().enumerate() {
        let c = count(*k).max(1) as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0 / c;
        println!(
            "  {:<46} {:>4} msgs: {:7.3} ms | {:7.3} ms | {} ms per message",
            k.name(),
            count(*k),
            ms(bound_per_kind[i]),
            ms(open_per_kind[i]),
            legacy
                .as_ref()
                .ok()
                .and_then(|l| l.per_kind_ms.get(i).copied())
                .map_or("-".into(), |v| format!("{v:7.3}"))
        );
    }
    if let Err(why) = &checked.verdicts {
        eprintln!("casegate did not store every message with its verdicts: {why}; no ratio");
        std::process::exit(1);
    }
    match legacy {
        Ok(l) => {
            println!(
                "legacy python+gpg baseline: {:.2} s ({:.0} msg/s), {} decrypted, {} good signatures",
                l.seconds.as_secs_f64(),
                rate(l.seconds),
                l.decrypted,
                l.good
            );
            println!(
                "ratio: legacy/casegate = {:.1} (target >= 25); bound on {cores} cores/casegate = {:.0}% (target >= 70%)",
                l.seconds.as_secs_f64() / casegate_time.as_secs_f64(),
                100.0 * bound.as_secs_f64() / casegate_time.as_secs_f64()
            );
        }
        Err(why) => {
            println!(
                "ratio: bound on {cores} cores/casegate = {:.0}%; none against the legacy baseline: {why}",
                100.0 * bound.as_secs_f64() / casegate_time.as_secs_f64()
            );
            std::process::exit(1);
        }
    }
}

fn kind_index(k: Kind) -> usize {
    KINDS.iter().position(|x| *x == k).unwrap_or(0)
}

/// Message `i` of the corpus, made with gpg.
fn make_message(
    i: usize,
    gpg: &Gpg,
    coordinator: &str,
    ed: &[Sender],
    rsa: &[Sender],
    all: &[&Sender],
) -> Message {
    let kind = Kind::of(i);
    let id = format!("mixed-{i}@test.example");
    let topic = SUBJECTS[i % SUBJECTS.len()];
    let case_subject = format!("Re: [{CASE}] {topic}");
    // Bodies of a few hundred bytes to a few KB, as mail on a case is.
    let body = format!(
        "Hello,\r\n\r\nmessage {i} on {topic}.\r\n\r\n{}\r\nRegards\r\n",
        "Details of the issue, steps to reproduce and the versions we tested.\r\n"
            .repeat(4 + i % 40)
    );
    let encrypt = |signer: &str, data: &str| -> Vec<u8> {
        gpg.run(
            &["--armor", "--encrypt", "-r", coordinator, "--sign", "-u", signer],
            Some(data.as_bytes()),
        )
    };
    // A dearmored copy for the bound (sequoia reads armor too, but the bound is the crypto).
    let dearmor = |armored: &[u8]| -> Vec<u8> {
        let mut r = openpgp::armor::Reader::from_bytes(armored, None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("armor");
        out
    };
    match kind {
        Kind::Plain => {
            // Half replies from the case's contacts, half new reports from strangers.
            let (from, subject) = if i % 2 == 0 {
                (all[i % all.len()].address.to_string(), case_subject)
            } else {
                (
                    format!("finder{i}@researchers.example"),
                    REPORTS[i % REPORTS.len()].to_string(),
                )
            };
            let raw = format!(
                "{}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
                headers(&from, &subject, &id.replace("@test.example", ""))
            );
            Message {
                kind,
                raw: raw.into_bytes(),
                crypto: Crypto::Nothing,
                id,
                signer: None,
            }
        }
        Kind::PgpMimeEd25519 | Kind::PgpMimeRsa => {
            let keys = if kind == Kind::PgpMimeEd25519 { ed } else { rsa };
            let s = &keys[i % keys.len()];
            let inner = format!(
                "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
                 Subject: {case_subject}\r\n\r\n{body}"
            );
            let ct = encrypt(&s.fpr, &inner);
            let raw = format!(
                "{}{}",
                headers(s.address, "...", &id.replace("@test.example", "")),
                pgp_mime(&ct)
            );
            Message {
                kind,
                raw: raw.into_bytes(),
                crypto: Crypto::Decrypt(dearmor(&ct)),
                id,
                signer: Some(s.fpr.clone()),
            }
        }
        Kind::MultipartSigned => {
            let s = all[i % all.len()];
            let part = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}");
            let sig = gpg.run(
                &["--armor", "--detach-sign", "-u", &s.fpr],
                Some(part.as_bytes()),
            );
            let raw = format!(
                "{}{}",
                headers(s.address, &case_subject, &id.replace("@test.example", "")),
                signed_entity(&part, &crlf(&sig).into_bytes())
            );
            Message {
                kind,
                raw: raw.into_bytes(),
                crypto: Crypto::Detached {
                    data: part.into_bytes(),
                    signature: dearmor(&sig),
                },
                id,
                signer: Some(s.fpr.clone()),
            }
        }
        Kind::Inline => {
            let s = all[i % all.len()];
            let ct = encrypt(&s.fpr, &body);
            let raw = format!(
                "{}Content-Type: text/plain; charset=us-ascii\r\n\r\n{}\r\n",
                headers(s.address, &case_subject, &id.replace("@test.example", "")),
                crlf(&ct).trim_end()
            );
            Message {
                kind,
                raw: raw.into_bytes(),
                crypto: Crypto::Decrypt(dearmor(&ct)),
                id,
                signer: Some(s.fpr.clone()),
            }
        }
    }
}

/// Runs the casegate binary in `work` on `data`; panics with its stderr if it fails.
fn casegate(work: &Path, data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .current_dir(work)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run casegate");
    assert!(
        out.status.success(),
        "casegate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens the case and binds every sender, with its key, as a contact of it.
fn setup_case(work: &Path, data: &Path, senders: &[&Sender], gpg: &Gpg) {
    casegate(
        work,
        data,
        &["open", "case", "--title", "FooCorp router RCE", "--number", CASE],
    );
    for s in senders {
        let key: PathBuf = work.join(format!("{}.asc", s.fpr));
        std::fs::write(&key, gpg.run(&["--armor", "--export", &s.fpr], None)).expect("key");
        casegate(
            work,
            data,
            &[
                "participant",
                "add",
                CASE,
                "--org",
                s.org,
                "--email",
                s.address,
                "--key",
                key.to_str().expect("path"),
                "--role",
                s.role,
            ],
        );
    }
}

struct Checked {
    /// `routed: N, triage: M`.
    outcomes: String,
    /// Every message stored with the verdicts of its kind, or the first that is not.
    verdicts: Result<(), String>,
}

/// Checks what casegate printed and what its store holds: one stored record per message,
/// not quarantined, with the encryption and signature verdicts its kind must have.
fn check_casegate(out: &str, store: &Path, messages: &[Message]) -> Checked {
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    let mut lines = 0;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("ingest --json line");
        *tally
            .entry(v["outcome"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        lines += 1;
    }
    let outcomes = tally
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let verdicts = (|| {
        if lines != messages.len() {
            return Err(format!("{lines} result lines for {} messages", messages.len()));
        }
        let store = casegate::store::Store::open(store).map_err(|e| e.to_string())?;
        for m in messages {
            let mut found = store
                .messages_by_message_id(&format!("<{}>", m.id))
                .map_err(|e| e.to_string())?;
            if found.is_empty() {
                found = store
                    .messages_by_message_id(&m.id)
                    .map_err(|e| e.to_string())?;
            }
            let [r] = found.as_slice() else {
                return Err(format!("{} stored {} times", m.id, found.len()));
            };
            let want_signature = if m.kind.signed() { "good" } else { "none" };
            let signer = r.signer.as_deref().map(keyring::normalize_fingerprint);
            let want_signer = m.signer.as_deref().map(keyring::normalize_fingerprint);
            if r.outcome == "quarantine"
                || r.encrypted != m.kind.encrypted()
                || r.signature != want_signature
                || signer != want_signer
            {
                return Err(format!(
                    "{} ({:?}) stored as {} encrypted={} signature={} signer={:?}",
                    m.id, m.kind, r.outcome, r.encrypted, r.signature, r.signer
                ));
            }
            if m.kind.signed() && r.thread.as_ref().map(|t| t.as_str()) != Some(CASE) {
                return Err(format!("{} ({:?}) not routed to {CASE}", m.id, m.kind));
            }
        }
        Ok(())
    })();
    Checked {
        outcomes,
        verdicts,
    }
}

/// What the legacy baseline did.
struct Legacy {
    seconds: Duration,
    decrypted: usize,
    good: usize,
    /// Milliseconds per message, in the order of KINDS.
    per_kind_ms: Vec<f64>,
}

/// Runs the legacy script; returns the time it reports for its ingest loop (interpreter
/// start-up excluded), or why the run does not count: it failed, or it did not decrypt and
/// verify what the corpus holds (a gpg that fails is fast).
fn legacy(home: &Path, db: &Path, maildir: &Path, messages: &[Message]) -> Result<Legacy, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines/legacy_ingest.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--gnupghome")
        .arg(home)
        .arg("--db")
        .arg(db)
        .arg("--per-message-times")
        .arg(maildir)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "it failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // Per message: "time FILE SECONDS", then the result line.
    let mut per_kind = [0.0f64; 5];
    let mut counts = [0usize; 5];
    for line in text.lines().filter(|l| l.starts_with("time ")) {
        let mut parts = line.split_whitespace().skip(1);
        let (Some(file), Some(secs)) = (parts.next(), parts.next()) else {
            continue;
        };
        // The index is the second dot-separated field of the Maildir name.
        let idx: Option<usize> = Path::new(file)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.split('.').nth(1))
            .and_then(|i| i.parse().ok());
        if let (Some(idx), Ok(secs)) = (idx, secs.parse::<f64>())
            && let Some(m) = messages.get(idx)
        {
            per_kind[kind_index(m.kind)] += secs;
            counts[kind_index(m.kind)] += 1;
        }
    }
    let last = text.lines().last().unwrap_or_default();
    // "N messages in S s (R msg/s); D decrypted, G good signatures"
    let number = |after: &str, before: &str| -> Option<f64> {
        let rest = if after.is_empty() {
            last
        } else {
            last.split(after).nth(1)?
        };
        rest.split(before).next()?.trim().parse().ok()
    };
    let (Some(read), Some(secs), Some(decrypted), Some(good)) = (
        number("", " messages in "),
        number(" messages in ", " s ("),
        number("; ", " decrypted"),
        number("decrypted, ", " good signatures"),
    ) else {
        return Err(format!("unreadable result line {last:?}"));
    };
    let (read, decrypted, good) = (read as usize, decrypted as usize, good as usize);
    let want_decrypted = messages.iter().filter(|m| m.kind.encrypted()).count();
    let want_good = messages.iter().filter(|m| m.kind.signed()).count();
    if read != messages.len() || decrypted != want_decrypted || good != want_good {
        return Err(format!(
            "it read {read} of {} messages, decrypted {decrypted} of {want_decrypted}, verified {good} of {want_good}",
            messages.len()
        ));
    }
    Ok(Legacy {
        seconds: Duration::from_secs_f64(secs),
        decrypted,
        good,
        per_kind_ms: per_kind
            .iter()
            .zip(counts)
            .map(|(s, c)| s * 1000.0 / c.max(1) as f64)
            .collect(),
    })
}

/// The bound for one message: sequoia and nothing around it.
fn raw_crypto(crypto: &Crypto, coordinator: &Cert, certs: &[Cert]) {
    match crypto {
        Crypto::Nothing => {}
        Crypto::Decrypt(ct) => raw_decrypt_verify(ct, coordinator, certs),
        Crypto::Detached { data, signature } => raw_verify_detached(data, signature, certs),
    }
}

/// Finds the signer's certificate and records whether a signature verified.
struct Helper<'a> {
    /// The decryption key; none to verify a detached signature.
    coordinator: Option<&'a Cert>,
    certs: &'a [Cert],
    good: bool,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .certs
            .iter()
            .filter(|c| c.keys().key_handles(ids.iter()).next().is_some())
            .cloned()
            .collect())
    }
    fn check(&mut self, s: MessageStructure<'_>) -> openpgp::Result<()> {
        for layer in s {
            if let MessageLayer::SignatureGroup { results } = layer {
                self.good |= results.iter().any(|r| r.is_ok());
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _: &[SKESK],
        sym: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let Some(coordinator) = self.coordinator else {
            return Err(anyhow::anyhow!("no key"));
        };
        for ka in coordinator.keys().unencrypted_secret() {
            let mut pair = ka.key().clone().into_keypair()?;
            for p in pkesks.iter().filter(|p| {
                p.recipient()
                    .is_some_and(|r| r.aliases(ka.key().key_handle()))
            }) {
                if let Some((a, sk)) = p.decrypt(&mut pair, sym)
                    && decrypt(a, &sk)
                {
                    return Ok(None);
                }
            }
        }
        Err(anyhow::anyhow!("no key"))
    }
}

fn raw_decrypt_verify(ct: &[u8], coordinator: &Cert, certs: &[Cert]) {
    let p = StandardPolicy::new();
    let h = Helper {
        coordinator: Some(coordinator),
        certs,
        good: false,
    };
    // Same hold-back buffer as casegate (sequoia's 25 MiB default costs more per message).
    let mut d = DecryptorBuilder::from_bytes(ct)
        .expect("parse")
        .buffer_size(1 << 20)
        .with_policy(&p, None, h)
        .expect("decrypt");
    let mut out = Vec::new();
    d.read_to_end(&mut out).expect("read");
    assert!(d.into_helper().good, "signature did not verify");
}

fn raw_verify_detached(data: &[u8], signature: &[u8], certs: &[Cert]) {
    let p = StandardPolicy::new();
    let h = Helper {
        coordinator: None,
        certs,
        good: false,
    };
    let mut v = DetachedVerifierBuilder::from_bytes(signature)
        .expect("parse")
        .with_policy(&p, None, h)
        .expect("verifier");
    v.verify_bytes(data).expect("verify");
    assert!(v.into_helper().good, "detached signature did not verify");
}
