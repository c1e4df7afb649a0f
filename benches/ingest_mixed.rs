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
//! a Maildir and, in one run, timed three ways (casegate and the bound: median of 3 runs):
//!   1. the release `casegate ingest --json MAILDIR` binary into a fresh data dir (group commit
//!      in batches of `[ingest] batch_messages`, as an operator runs it; process start-up,
//!      key loading and store opening included);
//!   2. the legacy baseline `benches/baselines/legacy_ingest.py` on the same files (gpg per
//!      encrypted or signed part, and a gpg-signed acknowledgment per new report, as casegate);
//!   3. the bound: raw sequoia on the same messages, on every core — decrypt+verify the
//!      encrypted ones, verify the detached signature of the multipart/signed ones, nothing
//!      for plain mail. Each run in a fresh process (sequoia remembers verified signatures
//!      for the life of a process), warmed up on messages outside the corpus.
//!
//! The same corpus is also delivered into Dovecot (the project's harness, default Maildir
//! storage) and synced by the release `casegate serve` into a fresh data dir, timed from its
//! start until every message is stored and moved out of the INBOX and no acknowledgment is
//! still owed (median of 3 runs, each its own mailbox), and checked as the ingest is.
//!
//! Where the time goes: casegate is also timed on the messages on the case alone (no new
//! report, so no acknowledgment); casegate and the bound each pinned to one core (`taskset -c
//! 0`, when it runs here; median of 3 runs each); and per kind: the bound and casegate's open
//! stage on one core.
//!
//! Every run is checked before a ratio is printed: each message is in the store with the
//! verdicts its kind must have (encrypted and signed `good` by its sender's key;
//! multipart/signed `good`, not encrypted; plain neither), each new report and only those got
//! an acknowledgment queued, and the legacy script decrypted, verified and acknowledged as many
//! as it must.
//!
//! Run: `cargo bench --bench ingest_mixed` (or `benches/run ingest_mixed`).
//! `CASEGATE_BENCH_PROFILE=FILE` also records another casegate ingest (untimed, into another
//! fresh data dir) with `perf record --call-graph dwarf -o FILE` (needs perf); sum it by stage
//! with `benches/perf_stages.py FILE`. `CASEGATE_BENCH_KEEP=1` keeps the Maildir and a fresh
//! data dir set up for it (the path is printed), to run casegate on by hand.
//! `CASEGATE_BENCH_SERVE_LOG=DIR` keeps the log of each run from Dovecot there, with the
//! detail `CASEGATE_BENCH_SERVE_RUST_LOG` sets (default `casegate=warn`).
#![allow(dead_code)]

mod common;
#[path = "../tests/support/mod.rs"]
mod support;
#[path = "../tests/support_gpg/mod.rs"]
mod support_gpg;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use casegate::keyring::{self, Cert, Keyring};
use common::{files_in, serve_imap_toml};
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
use support::MailServers;
use support_gpg::{Gpg, crlf, headers, pgp_mime, signed_entity};

const CASE: &str = "VU#409117";
/// Runs of the bound and of casegate (each into a fresh data dir); the median is reported.
const RUNS: usize = 3;
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
    /// A new report from a stranger (no tracking number): it opens a report and is owed an
    /// acknowledgment.
    new_report: bool,
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
    unsafe { casegate::set_library_defaults() };
    if let Some(corpus) = std::env::var_os(BOUND_CHILD) {
        bound_child(Path::new(&corpus));
        return;
    }
    let n: usize = std::env::var("CASEGATE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // `CASEGATE_BENCH_BODY_SCALE=K`: every body K times longer (the same mix, larger mail).
    let body_scale: usize = std::env::var("CASEGATE_BENCH_BODY_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
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
        let fpr = gpg.gen_key(
            &format!("{org} <{address}>"),
            "ed25519",
            "sign",
            "never",
            &[],
        );
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
        let fpr = gpg.gen_key(
            &format!("{org} <{address}>"),
            "rsa3072",
            "sign",
            "never",
            &[],
        );
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
        .map(|i| make_message(i, body_scale, &gpg, &coordinator_fpr, &ed, &rsa, &senders))
        .collect();
    // Messages of each kind that are not in the corpus, to warm up the bound with.
    let warm_up: Vec<Message> = (n..n + 20)
        .map(|i| make_message(i, body_scale, &gpg, &coordinator_fpr, &ed, &rsa, &senders))
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

    // 1. The bound: raw sequoia on every core, the median of RUNS runs as for casegate. Each
    // run is a fresh process (this bench, re-run), because sequoia remembers every signature it
    // verified for the life of a process: a second pass over the same messages in one process
    // would skip the signature checks.
    let corpus = dir.path().join("bound");
    write_corpus(&corpus, &coordinator, &certs, &messages, &warm_up);
    let bound_runs: Vec<Duration> = (0..RUNS)
        .map(|_| run_bound_child(&corpus, "all")[0])
        .collect();
    let bound = median(&bound_runs);
    // Per kind, one core, in one more fresh process.
    let bound_per_kind = run_bound_child(&corpus, "per-kind");

    // 1b. casegate's open stage alone (MIME walk + sequoia), one core, per kind: where the
    // time goes next to the bound (one pass: this process has verified none of these
    // signatures yet). Every message must open as its kind says.
    let kr = Keyring::new(Some(coordinator.clone()), certs.clone());
    for m in &warm_up {
        casegate::open::open(&m.raw, &kr).expect("open");
    }
    let mut open_per_kind = [Duration::ZERO; 5];
    for (i, k) in KINDS.iter().enumerate() {
        let t = Instant::now();
        for m in messages.iter().filter(|m| m.kind == *k) {
            let o = casegate::open::open(&m.raw, &kr).expect("open");
            let valid = matches!(o.signature, casegate::open::SignatureFacts::Valid { .. });
            let full = matches!(o.encryption, casegate::open::Encryption::Full { .. });
            assert!(
                valid == m.kind.signed() && full == m.kind.encrypted(),
                "open stage: message {} ({:?}) opened as encrypted={full} valid={valid}",
                m.id,
                m.kind
            );
        }
        open_per_kind[i] = t.elapsed();
    }

    // 2. casegate: the release binary, each run into a fresh data dir, the whole Maildir;
    // every run's store is checked.
    let fresh_data_dir = |name: &str| {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        keyring::write_secret_key_file(&data.join("coordinator.key"), &coordinator)
            .expect("key file");
        casegate(&work, &data, &["init"]);
        setup_case(&work, &data, &senders, &gpg);
        data
    };
    // `casegate ingest --json DIR` into a data dir, timed from the page cache written back.
    let timed_ingest = |data: &Path, from: &Path, run: fn(&Path, &Path, &[&str]) -> String| {
        written_back();
        let t = Instant::now();
        let out = run(
            &work,
            data,
            &["ingest", "--json", from.to_str().expect("path")],
        );
        (t.elapsed(), out)
    };
    let mut casegate_runs = Vec::new();
    let mut checked = Vec::new();
    for run in 0..RUNS {
        let data = if run == 0 {
            setup_case(&work, &data, &senders, &gpg);
            data.clone()
        } else {
            fresh_data_dir(&format!("data-{run}"))
        };
        let (took, out) = timed_ingest(&data, &maildir, casegate);
        casegate_runs.push(took);
        checked.push(check_casegate(
            &out,
            &data.join("casegate.sqlite"),
            &messages,
        ));
    }
    let casegate_time = median(&casegate_runs);
    // 2b. Where the time goes: the same without the new reports (the mail on the case only),
    // since each new report also costs an acknowledgment composed, signed and queued.
    let on_case = dir.path().join("maildir-case");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(on_case.join(sub)).expect("maildir");
    }
    let on_case_messages: Vec<&Message> = messages.iter().filter(|m| !m.new_report).collect();
    for entry in std::fs::read_dir(maildir.join("new")).expect("maildir") {
        let path = entry.expect("entry").path();
        let idx: Option<usize> = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.split('.').nth(1))
            .and_then(|i| i.parse().ok());
        if idx
            .and_then(|i| messages.get(i))
            .is_some_and(|m| !m.new_report)
        {
            let name = path.file_name().expect("name");
            std::fs::hard_link(&path, on_case.join("new").join(name)).expect("link");
        }
    }
    let on_case_runs: Vec<Duration> = (0..RUNS)
        .map(|run| {
            let data = fresh_data_dir(&format!("data-case-{run}"));
            let (took, out) = timed_ingest(&data, &on_case, casegate);
            assert_eq!(out.lines().count(), on_case_messages.len(), "{out}");
            took
        })
        .collect();
    let on_case_time = median(&on_case_runs);

    // 2d. The whole corpus with casegate pinned to one core (`taskset`), next to the bound
    // pinned the same way: how much of casegate's work is the crypto, whatever a second core
    // adds on this machine. Each run checked as above.
    let one_core_runs: Option<(Vec<Duration>, Vec<Duration>)> = taskset_works().then(|| {
        let bound_runs = (0..RUNS)
            .map(|_| run_bound_child_on_one_core(&corpus))
            .collect();
        let casegate_runs = (0..RUNS)
            .map(|run| {
                let data = fresh_data_dir(&format!("data-one-core-{run}"));
                let (took, out) = timed_ingest(&data, &maildir, casegate_on_one_core);
                checked.push(check_casegate(
                    &out,
                    &data.join("casegate.sqlite"),
                    &messages,
                ));
                took
            })
            .collect();
        (casegate_runs, bound_runs)
    });

    // 2c. The same corpus from Dovecot (default Maildir storage, delivered beforehand): the
    // release `casegate serve`, each run into a fresh data dir, until every message is stored
    // and moved out of the INBOX and every acknowledgment owed is queued. Checked as above.
    let servers = MailServers::start();
    let raws: Vec<Vec<u8>> = messages.iter().map(|m| m.raw.clone()).collect();
    for user in &IMAP_USERS[..RUNS] {
        servers.deliver_many(user, &raws);
        assert_eq!(servers.count(user, "INBOX"), n);
    }
    let mut imap_runs = Vec::new();
    for (run, user) in IMAP_USERS[..RUNS].iter().enumerate() {
        let data = fresh_data_dir(&format!("data-imap-{run}"));
        let (took, verdicts) = serve_from_dovecot(&servers, user, &work, &data, &messages);
        imap_runs.push(took);
        checked.push(Checked {
            outcomes: String::new(),
            verdicts,
        });
    }
    let imap_time = median(&imap_runs);

    // 3. The legacy baseline on the same files.
    let legacy = legacy(
        &gpg.home,
        &dir.path().join("legacy.sqlite"),
        &maildir,
        &messages,
    );

    // Optional: a profile of another casegate ingest (untimed), into another fresh data dir.
    if let Ok(profile) = std::env::var("CASEGATE_BENCH_PROFILE") {
        let data2 = fresh_data_dir("data-profile");
        let status = Command::new("perf")
            // DWARF unwinding: the release build has no frame pointers, so `-g` alone would
            // lose most callers (see benches/perf_stages.py to sum the profile by stage).
            .args([
                "record",
                "-F",
                "2000",
                "--call-graph",
                "dwarf,16384",
                "-o",
                &profile,
                "--",
            ])
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
    let total_bytes: usize = messages.iter().map(|m| m.raw.len()).sum();
    println!(
        "messages: {n} ({} plain of which {} new reports, {} PGP/MIME Ed25519/Cv25519, {} PGP/MIME RSA-3072, {} multipart/signed, {} inline PGP), {:.1} MB (mean {:.1} KB, bodies x{body_scale}); {} senders with keys",
        count(Kind::Plain),
        messages.iter().filter(|m| m.new_report).count(),
        count(Kind::PgpMimeEd25519),
        count(Kind::PgpMimeRsa),
        count(Kind::MultipartSigned),
        count(Kind::Inline),
        total_bytes as f64 / 1e6,
        total_bytes as f64 / 1e3 / n.max(1) as f64,
        senders.len()
    );
    let secs = |runs: &[Duration]| {
        runs.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "bound, sequoia decrypt/verify on {cores} cores: {:.2} s ({:.0} msg/s), median of {RUNS} runs ({} s)",
        bound.as_secs_f64(),
        rate(bound),
        secs(&bound_runs)
    );
    println!(
        "casegate ingest (release binary, fresh store, group commit): {:.2} s ({:.0} msg/s), median of {RUNS} runs ({} s); outcomes: {}",
        casegate_time.as_secs_f64(),
        rate(casegate_time),
        secs(&casegate_runs),
        checked.first().map_or("-", |c| c.outcomes.as_str())
    );
    println!(
        "casegate ingest of the {} messages on the case only (no new reports, no acknowledgments): {:.2} s, median of {RUNS} runs ({} s)",
        on_case_messages.len(),
        on_case_time.as_secs_f64(),
        secs(&on_case_runs)
    );
    println!(
        "casegate serve from Dovecot (release binary, fresh store, {n} messages delivered beforehand, until all are stored, moved and their acknowledgments queued): {:.2} s ({:.0} msg/s), median of {RUNS} runs ({} s)",
        imap_time.as_secs_f64(),
        rate(imap_time),
        secs(&imap_runs)
    );
    match &one_core_runs {
        Some((runs, bound_runs)) => {
            let (one, bound_one) = (median(runs), median(bound_runs));
            println!(
                "on one core (taskset -c 0), medians of {RUNS} runs: casegate ingest {:.2} s ({} s); the bound {:.2} s ({} s) = {:.0}% of casegate; on {cores} cores the bound is {:.2}x its one-core time, casegate {:.2}x",
                one.as_secs_f64(),
                secs(runs),
                bound_one.as_secs_f64(),
                secs(bound_runs),
                100.0 * bound_one.as_secs_f64() / one.as_secs_f64(),
                bound_one.as_secs_f64() / bound.as_secs_f64(),
                one.as_secs_f64() / casegate_time.as_secs_f64()
            );
        }
        None => println!("on one core: not measured (`taskset -c 0` does not run here)"),
    }
    println!(
        "per kind, one core, one pass (sequoia bound | casegate open stage | legacy, whole ingest):"
    );
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
    if let Ok(l) = &legacy {
        println!(
            "  of the plain text, the {} new reports (each acknowledged): legacy {:.3} ms per message",
            messages.iter().filter(|m| m.new_report).count(),
            l.new_report_ms
        );
    }
    for (run, c) in checked.iter().enumerate() {
        if let Err(why) = &c.verdicts {
            eprintln!(
                "casegate run {} did not store every message with its verdicts: {why}; no ratio",
                run + 1
            );
            std::process::exit(1);
        }
    }
    match legacy {
        Ok(l) => {
            println!(
                "legacy python+gpg baseline: {:.2} s ({:.0} msg/s), {} decrypted, {} good signatures, {} new reports acknowledged",
                l.seconds.as_secs_f64(),
                rate(l.seconds),
                l.decrypted,
                l.good,
                l.acked
            );
            // The legacy time of the same messages, from its per-message times of this run.
            let legacy_on_case =
                l.seconds.as_secs_f64() - l.new_report_ms * l.acked as f64 / 1000.0;
            println!(
                "  on the case only: legacy {legacy_on_case:.2} s vs casegate {:.2} s = {:.1}x; bound/casegate = {:.0}%",
                on_case_time.as_secs_f64(),
                legacy_on_case / on_case_time.as_secs_f64(),
                100.0 * bound.as_secs_f64() / on_case_time.as_secs_f64()
            );
            println!(
                "ratio: legacy/casegate = {:.1} (target >= 25); bound on {cores} cores/casegate = {:.0}% (target >= 70%)",
                l.seconds.as_secs_f64() / casegate_time.as_secs_f64(),
                100.0 * bound.as_secs_f64() / casegate_time.as_secs_f64()
            );
            println!(
                "ratio from Dovecot: legacy (on the Maildir's files)/casegate serve = {:.1}; bound on {cores} cores/casegate serve = {:.0}%",
                l.seconds.as_secs_f64() / imap_time.as_secs_f64(),
                100.0 * bound.as_secs_f64() / imap_time.as_secs_f64()
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

/// The mailboxes of the runs from Dovecot, one each (the project's harness has these users).
const IMAP_USERS: [&str; RUNS] = [
    "reports@example.test",
    "vendor2@example.test",
    "vendor3@example.test",
];

/// `casegate serve` on `data` syncs `user`'s INBOX (the corpus, delivered beforehand): the time
/// from its start until every message is moved to the processed folder and no acknowledgment
/// is still owed, and whether every message was stored once with its verdicts.
fn serve_from_dovecot(
    servers: &MailServers,
    user: &str,
    work: &Path,
    data: &Path,
    messages: &[Message],
) -> (Duration, Result<(), String>) {
    let config = data.join("imap.toml");
    std::fs::write(
        &config,
        serve_imap_toml(servers, user, "\n[http]\nenabled = false\n"),
    )
    .expect("config");
    let inbox = servers.maildir(user);
    let processed = inbox.join(".casegate.processed");
    written_back();
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .current_dir(work)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data)
        .arg("serve")
        .env(
            "RUST_LOG",
            std::env::var("CASEGATE_BENCH_SERVE_RUST_LOG").unwrap_or("casegate=warn".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(data.join("serve.log")).expect("log"))
        .spawn()
        .expect("run casegate serve");
    let end = start + Duration::from_secs(600);
    let mut store: Option<casegate::store::Store> = None;
    let took = loop {
        assert!(Instant::now() < end, "serve did not finish the sync");
        assert!(
            child.try_wait().expect("serve").is_none(),
            "serve exited: {}",
            std::fs::read_to_string(data.join("serve.log")).unwrap_or_default()
        );
        if files_in(&processed) == messages.len() && files_in(&inbox) == 0 {
            let s = match store.take() {
                Some(s) => s,
                None => casegate::store::Store::open(&data.join("casegate.sqlite")).expect("store"),
            };
            let owed = s.pending_acks().expect("pending acknowledgments").len();
            store = Some(s);
            if owed == 0 {
                break start.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(store);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    // `CASEGATE_BENCH_SERVE_LOG=DIR`: serve's log of each run is kept there.
    if let Ok(keep) = std::env::var("CASEGATE_BENCH_SERVE_LOG") {
        let _ = std::fs::copy(
            data.join("serve.log"),
            Path::new(&keep).join(format!("serve-{user}.log")),
        );
    }
    (
        took,
        check_stored(&data.join("casegate.sqlite"), messages, None),
    )
}

fn median(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn kind_index(k: Kind) -> usize {
    KINDS.iter().position(|x| *x == k).unwrap_or(0)
}

/// Message `i` of the corpus, made with gpg.
fn make_message(
    i: usize,
    scale: usize,
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
    // Bodies of a few hundred bytes to a few KB, as mail on a case is (`scale` times that).
    let body = format!(
        "Hello,\r\n\r\nmessage {i} on {topic}.\r\n\r\n{}\r\nRegards\r\n",
        "Details of the issue, steps to reproduce and the versions we tested.\r\n"
            .repeat((4 + i % 40) * scale)
    );
    let encrypt = |signer: &str, data: &str| -> Vec<u8> {
        gpg.run(
            &[
                "--armor",
                "--encrypt",
                "-r",
                coordinator,
                "--sign",
                "-u",
                signer,
            ],
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
            let new_report = i % 2 == 1;
            let (from, subject) = if !new_report {
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
                new_report,
            }
        }
        Kind::PgpMimeEd25519 | Kind::PgpMimeRsa => {
            let keys = if kind == Kind::PgpMimeEd25519 {
                ed
            } else {
                rsa
            };
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
                new_report: false,
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
                new_report: false,
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
                new_report: false,
            }
        }
    }
}

/// Runs the casegate binary in `work` on `data`; panics with its stderr if it fails.
fn casegate(work: &Path, data: &Path, args: &[&str]) -> String {
    run_casegate(Command::new(BIN), work, data, args)
}

/// Whether `taskset -c 0` can pin a process here (util-linux; CPU 0 allowed).
fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// [`casegate`] pinned to CPU 0: it sees one core (`available_parallelism` follows the
/// affinity), so every stage shares it.
fn casegate_on_one_core(work: &Path, data: &Path, args: &[&str]) -> String {
    let mut pinned = Command::new("taskset");
    pinned.args(["-c", "0"]).arg(BIN);
    run_casegate(pinned, work, data, args)
}

fn run_casegate(mut command: Command, work: &Path, data: &Path, args: &[&str]) -> String {
    let out = command
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
        &[
            "open",
            "case",
            "--title",
            "FooCorp router RCE",
            "--number",
            CASE,
        ],
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
    let mut acknowledgments = std::collections::HashMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("ingest --json line");
        *tally
            .entry(v["outcome"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        lines += 1;
        if let (Some(id), Some(ack)) = (v["message_id"].as_str(), v["acknowledgment"].as_str()) {
            acknowledgments.insert(id.to_string(), ack.to_string());
        }
    }
    let outcomes = tally
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let verdicts = if lines != messages.len() {
        Err(format!(
            "{lines} result lines for {} messages",
            messages.len()
        ))
    } else {
        check_stored(store, messages, Some(&acknowledgments))
    };
    Checked { outcomes, verdicts }
}

/// Every message of the corpus stored once, with the verdicts its kind calls for, and the
/// signed ones routed to the case; with `acknowledgments` (what `ingest --json` said of each),
/// an acknowledgment queued for each new report and for nothing else.
fn check_stored(
    store: &Path,
    messages: &[Message],
    acknowledgments: Option<&std::collections::HashMap<String, String>>,
) -> Result<(), String> {
    {
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
            if let Some(acknowledgments) = acknowledgments {
                let ack = acknowledgments.get(&format!("<{}>", m.id));
                if m.new_report != ack.is_some_and(|a| a.starts_with("queued")) {
                    return Err(format!(
                        "{} (new report: {}) acknowledgment: {ack:?}",
                        m.id, m.new_report
                    ));
                }
            }
            if m.kind.signed() && r.thread.as_ref().map(|t| t.as_str()) != Some(CASE) {
                return Err(format!("{} ({:?}) not routed to {CASE}", m.id, m.kind));
            }
        }
        Ok(())
    }
}

/// What the legacy baseline did.
struct Legacy {
    seconds: Duration,
    decrypted: usize,
    good: usize,
    acked: usize,
    /// Milliseconds per new report (plain, acknowledged).
    new_report_ms: f64,
    /// Milliseconds per message, in the order of KINDS.
    per_kind_ms: Vec<f64>,
}

/// Runs the legacy script; returns the time it reports for its ingest loop (interpreter
/// start-up excluded), or why the run does not count: it failed, or it did not decrypt and
/// verify what the corpus holds (a gpg that fails is fast).
fn legacy(home: &Path, db: &Path, maildir: &Path, messages: &[Message]) -> Result<Legacy, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines/legacy_ingest.py");
    written_back();
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
    let mut new_reports = (0.0f64, 0usize);
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
            if m.new_report {
                new_reports.0 += secs;
                new_reports.1 += 1;
            }
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
    let (Some(read), Some(secs), Some(decrypted), Some(good), Some(acked)) = (
        number("", " messages in "),
        number(" messages in ", " s ("),
        number("; ", " decrypted"),
        number("decrypted, ", " good signatures"),
        number("good signatures, ", " acknowledged"),
    ) else {
        return Err(format!("unreadable result line {last:?}"));
    };
    let (read, decrypted, good, acked) = (
        read as usize,
        decrypted as usize,
        good as usize,
        acked as usize,
    );
    let want_decrypted = messages.iter().filter(|m| m.kind.encrypted()).count();
    let want_good = messages.iter().filter(|m| m.kind.signed()).count();
    let want_acked = messages.iter().filter(|m| m.new_report).count();
    if read != messages.len()
        || decrypted != want_decrypted
        || good != want_good
        || acked != want_acked
    {
        return Err(format!(
            "it read {read} of {} messages, decrypted {decrypted} of {want_decrypted}, verified {good} of {want_good}, acknowledged {acked} of {want_acked} new reports",
            messages.len()
        ));
    }
    Ok(Legacy {
        seconds: Duration::from_secs_f64(secs),
        decrypted,
        good,
        acked,
        new_report_ms: new_reports.0 * 1000.0 / new_reports.1.max(1) as f64,
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
    // Same hold-back buffer as casegate (`open::crypto::STREAM_BUFFER`; sequoia's 25 MiB
    // default, and even 1 MiB, cost more per message: a buffer that size is zeroed for each).
    let mut d = DecryptorBuilder::from_bytes(ct)
        .expect("parse")
        .buffer_size(1 << 16)
        .with_policy(&p, None, h)
        .expect("decrypt");
    // Sized as casegate sizes it (`open::crypto::unwrap_message_inner`).
    let mut out = Vec::with_capacity(ct.len());
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

/// Set (to the corpus directory) when this bench runs as the bound's child process.
const BOUND_CHILD: &str = "CASEGATE_BENCH_BOUND_CORPUS";

/// Writes what the bound needs for a child process: the coordinator key, the senders' certs,
/// and the crypto of each message (`corpus`) and of the warm-up messages (`warm-up`).
fn write_corpus(
    dir: &Path,
    coordinator: &Cert,
    certs: &[Cert],
    messages: &[Message],
    warm_up: &[Message],
) {
    use openpgp::serialize::Marshal;
    std::fs::create_dir_all(dir).expect("corpus dir");
    keyring::write_secret_key_file(&dir.join("coordinator.key"), coordinator).expect("key");
    let mut bytes = Vec::new();
    for c in certs {
        c.serialize(&mut bytes).expect("cert");
    }
    std::fs::write(dir.join("certs.pgp"), bytes).expect("certs");
    for (name, list) in [("corpus", messages), ("warm-up", warm_up)] {
        let mut out = Vec::new();
        for m in list {
            let (tag, a, b): (u8, &[u8], &[u8]) = match &m.crypto {
                Crypto::Nothing => (0, &[], &[]),
                Crypto::Decrypt(ct) => (1, ct, &[]),
                Crypto::Detached { data, signature } => (2, data, signature),
            };
            out.push(tag);
            out.push(kind_index(m.kind) as u8);
            for part in [a, b] {
                out.extend((part.len() as u32).to_le_bytes());
                out.extend(part);
            }
        }
        std::fs::write(dir.join(name), out).expect("corpus");
    }
}

fn read_corpus(path: &Path) -> Vec<(usize, Crypto)> {
    let bytes = std::fs::read(path).expect("corpus");
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    let take = |rest: &mut &[u8]| -> Vec<u8> {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let (part, tail) = tail.split_at(len);
        *rest = tail;
        part.to_vec()
    };
    while let [tag, kind, tail @ ..] = rest {
        let (tag, kind) = (*tag, *kind as usize);
        rest = tail;
        let a = take(&mut rest);
        let b = take(&mut rest);
        out.push((
            kind,
            match tag {
                0 => Crypto::Nothing,
                1 => Crypto::Decrypt(a),
                _ => Crypto::Detached {
                    data: a,
                    signature: b,
                },
            },
        ));
    }
    out
}

/// Runs the bound in a fresh process; `what` is `all` (every core; one duration) or
/// `per-kind` (one core; one duration per kind, in the order of KINDS).
/// Writes back what the page cache holds (`sync`) before a timed run: the files the setup just
/// wrote (keys, corpus, a fresh data dir) would otherwise be flushed during the run, by the
/// first fsync of whichever contender comes next. Every contender gets it.
fn written_back() {
    let _ = Command::new("sync").status();
}

fn run_bound_child(corpus: &Path, what: &str) -> Vec<Duration> {
    written_back();
    bound_child_output(
        Command::new(std::env::current_exe().expect("this bench"))
            .env(BOUND_CHILD, corpus)
            .env("CASEGATE_BENCH_BOUND_WHAT", what),
    )
}

/// The bound (`all`) pinned to CPU 0: one thread, as casegate pinned there.
fn run_bound_child_on_one_core(corpus: &Path) -> Duration {
    written_back();
    bound_child_output(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(std::env::current_exe().expect("this bench"))
            .env(BOUND_CHILD, corpus)
            .env("CASEGATE_BENCH_BOUND_WHAT", "all"),
    )[0]
}

fn bound_child_output(child: &mut Command) -> Vec<Duration> {
    let out = child.output().expect("run the bound");
    assert!(
        out.status.success(),
        "bound failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| Duration::from_secs_f64(s.parse().expect("seconds")))
        .collect()
}

/// The bound's child process: warm up on messages outside the corpus (certificates checked,
/// code paged in), then time the corpus once; prints seconds.
fn bound_child(dir: &Path) {
    let coordinator = keyring::read_secret_key_file(&dir.join("coordinator.key")).expect("key");
    let certs =
        keyring::parse_certs(&std::fs::read(dir.join("certs.pgp")).expect("certs")).expect("certs");
    let messages = read_corpus(&dir.join("corpus"));
    for (_, c) in read_corpus(&dir.join("warm-up")) {
        raw_crypto(&c, &coordinator, &certs);
    }
    if std::env::var("CASEGATE_BENCH_BOUND_WHAT").as_deref() == Ok("per-kind") {
        let mut per_kind = [Duration::ZERO; 5];
        for (i, slot) in per_kind.iter_mut().enumerate() {
            let t = Instant::now();
            for (_, c) in messages.iter().filter(|(k, _)| *k == i) {
                raw_crypto(c, &coordinator, &certs);
            }
            *slot = t.elapsed();
        }
        let shown: Vec<String> = per_kind
            .iter()
            .map(|d| format!("{:.6}", d.as_secs_f64()))
            .collect();
        println!("{}", shown.join(" "));
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..cores {
            let (messages, coordinator, certs) = (&messages, &coordinator, &certs);
            scope.spawn(move || {
                for (_, m) in messages.iter().skip(c).step_by(cores) {
                    raw_crypto(m, coordinator, certs);
                }
            });
        }
    });
    println!("{:.6}", t.elapsed().as_secs_f64());
}
