//! Ingest of signed+encrypted PGP/MIME mail (issue 4, item 8), as a ratio, never asserted.
//!
//! 1,000 messages (half signed with Cv25519/Ed25519, half with RSA-3072, all encrypted to the
//! coordinator) are made with real gpg, then timed three ways:
//!   1. raw sequoia: decrypt + verify each message and nothing else (the floor);
//!   2. casegate: the full pipeline (parse, open, route, verdict, commit) into a fresh store;
//!   3. the legacy baseline `benches/baselines/legacy_ingest.py` (python email + gpg per part).
//!
//! Run: `cargo bench --bench ingest_pgp` (needs `[[bench]] name = "ingest_pgp" harness = false`).
//! `CASEGATE_BENCH_N` changes the message count.
#![allow(dead_code)]

#[path = "../tests/support_gpg/mod.rs"]
mod support_gpg;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use casegate::keyring::{self, Cert, Keyring};
use casegate::pipeline::{Inbound, Pipeline, Rules};
use casegate::store::{MessageSource, Store};
use casegate::tracking::{Kind, TrackingNumber};
use openpgp::KeyHandle;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::types::SymmetricAlgorithm;
use sequoia_openpgp as openpgp;
use support_gpg::Gpg;

const CASE: &str = "VU#409117";
const COORDINATOR: &str = "cert@example.test";

fn main() {
    // As `casegate` does; SAFETY: first statement of main, before any thread exists.
    unsafe { casegate::set_library_defaults() };
    let n: usize = std::env::var("CASEGATE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // libtest passes `--bench`; nothing else is accepted.
    let gpg = Gpg::new();
    let coordinator = keyring::generate_coordinator_key(COORDINATOR).expect("coordinator key");
    let tsk = {
        use openpgp::serialize::SerializeInto;
        coordinator.as_tsk().armored().to_vec().expect("tsk")
    };
    gpg.import(&tsk);
    let ed = gpg.gen_key(
        "Reporter <reporter@example.org>",
        "ed25519",
        "sign",
        "never",
        &[],
    );
    let rsa = gpg.gen_key(
        "Vendor PSIRT <psirt@foocorp.example>",
        "rsa3072",
        "sign",
        "never",
        &[],
    );
    let certs: Vec<Cert> = [&ed, &rsa]
        .iter()
        .flat_map(|f| keyring::parse_certs(&gpg.export(f)).expect("participant cert"))
        .collect();

    eprintln!("generating {n} messages with gpg …");
    let coordinator_fpr = coordinator.fingerprint().to_hex();
    let (from_ed, from_rsa) = ("reporter@example.org", "psirt@foocorp.example");
    let body = "Details of the issue.\r\n".repeat(60);
    let messages: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| {
            let (signer, from) = if i % 2 == 0 { (&ed, from_ed) } else { (&rsa, from_rsa) };
            let inner = format!(
                "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
                 Subject: [{CASE}] update {i}\r\n\r\n{body}"
            );
            let ct = gpg.run(
                &["--armor", "--encrypt", "-r", &coordinator_fpr, "--sign", "-u", signer],
                Some(inner.as_bytes()),
            );
            let armored = String::from_utf8_lossy(&ct).replace('\n', "\r\n");
            let raw = format!(
                "From: Sender <{from}>\r\nTo: CERT <{COORDINATOR}>\r\nSubject: ...\r\n\
                 Message-ID: <bench-{i}@test.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n\r\n\
                 --e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
                 --e\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--e--\r\n",
                armored.trim_end()
            );
            (raw.into_bytes(), ct)
        })
        .collect();

    // 1. Raw sequoia (after one warm-up run).
    raw_decrypt_verify(&messages[0].1, &coordinator, &certs);
    let t = Instant::now();
    for (_, ct) in &messages {
        raw_decrypt_verify(ct, &coordinator, &certs);
    }
    let sequoia = t.elapsed();
    // 1a. The same on every core: the bound a parallel ingest can reach.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..cores {
            let (messages, coordinator, certs) = (&messages, &coordinator, &certs);
            scope.spawn(move || {
                for (_, ct) in messages.iter().skip(c).step_by(cores) {
                    raw_decrypt_verify(ct, coordinator, certs);
                }
            });
        }
    });
    let sequoia_all_cores = t.elapsed();

    // 1b. casegate's open stage alone (MIME walk + sequoia), to show where the time goes.
    let kr = Keyring::new(Some(coordinator.clone()), certs.clone());
    let t = Instant::now();
    for (raw, _) in &messages {
        let o = casegate::open::open(raw, &kr).expect("open");
        assert!(matches!(
            o.signature,
            casegate::open::SignatureFacts::Valid { .. }
        ));
    }
    let open_only = t.elapsed();

    // 2. casegate, fresh store, one message at a time (one transaction each).
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh_pipeline = |path: &Path| {
        let mut store = Store::open(path).expect("store");
        let number = TrackingNumber::parse(CASE).expect("number");
        let thread = store
            .create_thread(Kind::Case, Some(&number), "bench", chrono::Utc::now())
            .expect("thread");
        for (org, role, addr, fpr) in [
            ("Reporter", "reporter", from_ed, &ed),
            ("FooCorp", "vendor", from_rsa, &rsa),
        ] {
            store
                .add_participant(thread.id, org, role, addr, Some(fpr))
                .expect("participant");
        }
        let kr = Keyring::new(Some(coordinator.clone()), certs.clone());
        Pipeline::new(
            store,
            kr,
            Rules {
                reporting_address: COORDINATOR.into(),
                coordinator_address: COORDINATOR.into(),
                require_signed_vendor_statements: false,
                limits: casegate::limits::Limits::default(),
                private_address: None,
                sender_check: std::sync::Arc::new(casegate::trust::SenderCheck::new(
                    &Default::default(),
                )),
                require_authenticated_participants: false,
            },
        )
    };
    let mut pipeline = fresh_pipeline(&dir.path().join("casegate.sqlite"));
    let t = Instant::now();
    let mut good = 0;
    for (i, (raw, _)) in messages.iter().enumerate() {
        let o = pipeline
            .process(raw, MessageSource::File(format!("bench-{i}.eml")))
            .expect("ingest");
        if o.outcome == "routed" && o.encrypted && o.signature == "good" {
            good += 1;
        }
    }
    let casegate = t.elapsed();

    // 2b. casegate with group commit, as `serve` ingests a backlog: batches of 100, each read
    // on every core and stored in one transaction.
    let batches: Vec<Vec<(Inbound, MessageSource)>> = messages
        .chunks(100)
        .enumerate()
        .map(|(b, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, (raw, _))| {
                    let source = MessageSource::File(format!("bench-{}.eml", b * 100 + i));
                    (Inbound::Whole(raw.clone()), source)
                })
                .collect()
        })
        .collect();
    let mut pipeline = fresh_pipeline(&dir.path().join("grouped.sqlite"));
    let commits_before = pipeline.store().commits();
    let t = Instant::now();
    let mut good_grouped = 0;
    for batch in batches {
        let done = pipeline.process_batch(batch);
        assert!(done.failure.is_none(), "{:?}", done.failure);
        good_grouped += done
            .outcomes
            .iter()
            .filter(|o| o.outcome == "routed" && o.encrypted && o.signature == "good")
            .count();
    }
    let grouped = t.elapsed();
    let grouped_commits = pipeline.store().commits() - commits_before;

    // 3. Legacy baseline, if python3 is there.
    let maildir = dir.path().join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    for (i, (raw, _)) in messages.iter().enumerate() {
        std::fs::write(maildir.join("new").join(format!("{i:05}.eml")), raw).expect("write");
    }
    let legacy = legacy(&gpg.home, &dir.path().join("legacy.sqlite"), &maildir, n);

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("messages: {n} PGP/MIME, signed+encrypted (half Ed25519/Cv25519, half RSA-3072)");
    println!(
        "sequoia decrypt+verify: {:.2} s ({:.0} msg/s)",
        sequoia.as_secs_f64(),
        rate(sequoia)
    );
    println!(
        "sequoia decrypt+verify on {cores} cores: {:.2} s ({:.0} msg/s)",
        sequoia_all_cores.as_secs_f64(),
        rate(sequoia_all_cores)
    );
    println!(
        "casegate open stage only: {:.2} s ({:.0} msg/s)",
        open_only.as_secs_f64(),
        rate(open_only)
    );
    println!(
        "casegate ingest (fresh store): {:.2} s ({:.0} msg/s)",
        casegate.as_secs_f64(),
        rate(casegate)
    );
    println!(
        "casegate ingest, group commit (batches of 100, read on {cores} cores; {grouped_commits} transactions): {:.2} s ({:.0} msg/s)",
        grouped.as_secs_f64(),
        rate(grouped)
    );
    let _ = std::process::Command::new("gpgconf")
        .arg("--homedir")
        .arg(&gpg.home)
        .args(["--kill", "gpg-agent"])
        .output();
    let _ = std::fs::remove_dir_all(&gpg.home);
    // A ratio compares two runs that did the same work: every message decrypted and verified.
    // Anything less is a failed run, and no ratio is printed for it.
    if good != n || good_grouped != n {
        eprintln!(
            "casegate routed, decrypted and verified only {good} (grouped: {good_grouped}) of {n} messages: no ratio"
        );
        std::process::exit(1);
    }
    match legacy {
        Ok(l) => {
            println!(
                "legacy python+gpg baseline: {:.2} s ({:.0} msg/s), {} decrypted and verified",
                l.seconds.as_secs_f64(),
                rate(l.seconds),
                l.processed
            );
            println!(
                "ratio: casegate/sequoia = {:.2}; legacy/casegate = {:.1}; grouped: sequoia on {cores} cores/casegate = {:.2}, legacy/casegate = {:.1}",
                casegate.as_secs_f64() / sequoia.as_secs_f64(),
                l.seconds.as_secs_f64() / casegate.as_secs_f64(),
                sequoia_all_cores.as_secs_f64() / grouped.as_secs_f64(),
                l.seconds.as_secs_f64() / grouped.as_secs_f64()
            );
        }
        Err(why) => {
            println!(
                "ratio: casegate/sequoia = {:.2}; none against the legacy baseline: {why}",
                casegate.as_secs_f64() / sequoia.as_secs_f64()
            );
            std::process::exit(1);
        }
    }
}

/// What the legacy baseline did: its time, and how many messages it really decrypted and
/// verified (all of them, or it is reported as failed).
struct Legacy {
    seconds: Duration,
    processed: usize,
}

/// Runs the legacy script; returns the time it reports for its ingest loop (interpreter
/// start-up excluded, as for casegate), or why the run does not count: it failed, or it did not
/// decrypt and verify every one of the `n` messages (a gpg that fails is fast).
fn legacy(home: &Path, db: &Path, maildir: &Path, n: usize) -> Result<Legacy, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines/legacy_ingest.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("--gnupghome")
        .arg(home)
        .arg("--db")
        .arg(db)
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
    let processed = decrypted.min(good) as usize;
    if read as usize != n || processed != n {
        return Err(format!(
            "it read {read} of {n} messages and decrypted {decrypted}, verified {good}"
        ));
    }
    Ok(Legacy {
        seconds: Duration::from_secs_f64(secs),
        processed,
    })
}

/// The floor: sequoia decrypting and verifying one message, with nothing around it.
fn raw_decrypt_verify(ct: &[u8], coordinator: &Cert, certs: &[Cert]) {
    struct H<'a> {
        coordinator: &'a Cert,
        certs: &'a [Cert],
        good: bool,
    }
    impl VerificationHelper for H<'_> {
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
    impl DecryptionHelper for H<'_> {
        fn decrypt(
            &mut self,
            pkesks: &[PKESK],
            _: &[SKESK],
            sym: Option<SymmetricAlgorithm>,
            decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
        ) -> openpgp::Result<Option<Cert>> {
            for ka in self.coordinator.keys().unencrypted_secret() {
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
    let p = StandardPolicy::new();
    let h = H {
        coordinator,
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
    let mut out = Vec::new();
    d.read_to_end(&mut out).expect("read");
    assert!(d.into_helper().good, "signature did not verify");
}
