//! Fan-out benchmark: one 20 KB notice to 1,000 recipients, composed, signed once, encrypted
//! per recipient and durably queued (one SQLite transaction on disk, WAL, synchronous=FULL),
//! with Cv25519 and with RSA-3072 recipient keys — next to the classic loop that runs
//! `gpg --sign --encrypt -r X` once per recipient on the same body (benches/baselines/
//! gpg_fanout.sh), as a per-recipient rate ratio.
//!
//! Measured as a fresh `casegate notify` runs: the keys and the store (case, contacts, imported
//! keys) are made by a child process, so this process starts with sequoia's caches cold and has
//! only what the store remembers. Timed: `outbox::notify` from reading the contacts to the
//! commit returning. Not timed: the WAL checkpoint, which the daemon runs in the background.
//!
//! `cargo bench --bench fanout` (Cargo.toml: `[[bench]] name = "fanout" harness = false`), or
//! `./run bench fanout`. Like `casegate`, it sets the libraries' defaults first
//! ([`casegate::set_library_defaults`]).
//! Environment: FANOUT_RECIPIENTS (default 1000), FANOUT_GPG_RECIPIENTS (default: the same
//! number, so both sides do the same work; a smaller number makes the gpg loop quicker and its
//! rate an extrapolation, which the output then says), FANOUT_RSA_KEYS (distinct RSA keys to
//! generate, default 20; RSA key generation is slow and the cost measured is encryption, so
//! recipients share keys round-robin on both sides — each still gets its own copy).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use casegate::config::OutboxConfig;
use casegate::outbox::{self, Notice, Selection};
use casegate::store::Store;
use casegate::tracking::{Kind, TrackingNumber};
use chrono::Utc;
use openpgp::Cert;
use openpgp::cert::CertParser;
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::parse::Parse;
use openpgp::serialize::Serialize;
use openpgp::types::Features;
use sequoia_openpgp as openpgp;

const FROM: &str = "cert@example.test";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A recipient cert as common clients make them (v4, SEIPDv1), so gpg can use it too.
fn recipient(suite: CipherSuite, addr: &str) -> Cert {
    CertBuilder::general_purpose(Some(format!("<{addr}>")))
        .set_cipher_suite(suite)
        .set_features(Features::empty().set_seipdv1())
        .unwrap()
        .generate()
        .unwrap()
        .0
        .strip_secret_key_material()
}

/// ~20 KB of advisory-like text.
fn body() -> String {
    let para = "The FooRouter web interface copies the `name` parameter into a fixed-size stack \
                buffer without checking its length; an unauthenticated attacker on the LAN can \
                overflow it and execute code as root. Affected: firmware 1.0 through 2.3.4.\n\n";
    let mut s = String::from("Dear vendor,\n\n");
    while s.len() < 20 * 1024 {
        s.push_str(para);
    }
    s.truncate(20 * 1024);
    s
}

/// The benchmark's notice to VU#409117.
fn notice(body: &str) -> Notice<'_> {
    Notice {
        thread: "VU#409117",
        subject: "Buffer overflow in FooRouter",
        body,
        in_reply_to: None,
        automatic: false,
    }
}

struct Result {
    recipients: usize,
    seconds: f64,
}

impl Result {
    fn rate(&self) -> f64 {
        self.recipients as f64 / self.seconds
    }
}

/// Runs in a child process (see `main`): makes the coordinator key and `distinct` recipient
/// keys, and a store in which a case has `n` vendor contacts, their keys imported as
/// `casegate key import` does (self-signatures checked and remembered). The measuring process
/// never made or checked these keys, so it pays what a fresh `casegate notify` pays.
fn prepare(dir: &Path, suite: CipherSuite, distinct: usize, n: usize) {
    // Making a key checks its signatures too: count those as the import's.
    let before = casegate::signature_cache::snapshot();
    let coordinator = CertBuilder::general_purpose(Some(format!("<{FROM}>")))
        .generate()
        .unwrap()
        .0;
    let mut tsk = Vec::new();
    coordinator.as_tsk().serialize(&mut tsk).unwrap();
    std::fs::write(dir.join("coordinator.pgp"), tsk).unwrap();
    let certs: Vec<Cert> = (0..distinct.max(1))
        .map(|i| recipient(suite, &format!("psirt{i}@vendor{i}.example")))
        .collect();
    let mut public = Vec::new();
    for c in &certs {
        c.serialize(&mut public).unwrap();
    }
    std::fs::write(dir.join("recipients.pgp"), public).unwrap();

    let mut store = Store::open(&dir.join("casegate.sqlite")).unwrap();
    let number = TrackingNumber::parse("VU#409117").unwrap();
    let thread = store
        .create_thread(Kind::Case, Some(&number), "bench", Utc::now())
        .unwrap();
    casegate::keyring::import_certs(&mut store, certs.clone()).unwrap();
    casegate::signature_cache::save_since(&mut store, &before).unwrap();
    for i in 0..n {
        let fpr = certs[i % certs.len()].fingerprint().to_hex();
        store
            .add_participant(
                thread.id,
                &format!("Vendor {i}"),
                "vendor",
                &format!("psirt{i}@vendor{i}.example"),
                Some(&fpr),
            )
            .unwrap();
    }
}

fn casegate_fanout(dir: &Path, coordinator: &Cert, n: usize, body: &str) -> Result {
    let mut store = Store::open(&dir.join("casegate.sqlite")).unwrap();
    let number = TrackingNumber::parse("VU#409117").unwrap();
    let thread = store.thread(&number).unwrap().unwrap();
    let notice = notice(body);
    let start = Instant::now();
    let queued = outbox::notify(
        &mut store,
        coordinator,
        &thread,
        &Selection::All,
        &notice,
        &OutboxConfig::default(),
        FROM,
    )
    .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(queued.len(), n);
    assert!(queued.iter().all(|q| q.status == "queued"));
    Result {
        recipients: n,
        seconds,
    }
}

fn gpg(home: &Path, args: &[&str], input: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gpg");
    child.stdin.take().unwrap().write_all(input).unwrap();
    assert!(child.wait().unwrap().success(), "gpg {args:?}");
}

fn gpg_fanout(dir: &Path, coordinator: &Cert, certs: &[Cert], n: usize, body: &str) -> Result {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let mut tsk = Vec::new();
    coordinator.as_tsk().armored().serialize(&mut tsk).unwrap();
    gpg(&home, &["--import"], &tsk);
    let mut public = Vec::new();
    let mut recipients = Vec::new();
    for c in certs.iter().take(n) {
        c.armored().serialize(&mut public).unwrap();
        recipients.push(c.fingerprint().to_hex());
    }
    gpg(&home, &["--import"], &public);
    // Same number of runs as recipients asked for, keys round-robin as for casegate.
    let fprs: Vec<String> = (0..n)
        .map(|i| recipients[i % recipients.len()].clone())
        .collect();
    let body_file = dir.join("body.txt");
    std::fs::write(&body_file, body).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines/gpg_fanout.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&home)
        .arg(coordinator.fingerprint().to_hex())
        .arg(&body_file)
        .args(&fprs)
        .output()
        .expect("run gpg_fanout.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gpg_fanout.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `N recipients in S s (R per s)`
    let last = text.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.split_whitespace().collect();
    Result {
        recipients: words[0].parse().unwrap(),
        seconds: words[3].parse().unwrap(),
    }
}

/// Sealing alone, one core: what each extra recipient costs in CPU.
fn seal_cost(coordinator: &Cert, certs: &[Cert], body: &str) -> f64 {
    use casegate::outbox::compose;
    let now = std::time::SystemTime::now();
    let notice = notice(body);
    let from = casegate::header::AddrSpec::parse(FROM).unwrap();
    let to = casegate::header::AddrSpec::parse("psirt@vendor.example").unwrap();
    let signed = compose::sign_notice(&notice, coordinator, &from, now).unwrap();
    let k = 200;
    let start = Instant::now();
    for i in 0..k {
        compose::seal_for(&signed, &to, &certs[i % certs.len()], now).unwrap();
    }
    start.elapsed().as_secs_f64() * 1000.0 / k as f64
}

fn suite_named(label: &str) -> CipherSuite {
    match label {
        "rsa3072" => CipherSuite::RSA3k,
        _ => CipherSuite::Cv25519,
    }
}

fn main() {
    // As `casegate` does; SAFETY: first statement of main, before any thread exists.
    unsafe { casegate::set_library_defaults() };
    // Child mode: build the keys and the store, then exit (see `prepare`).
    if let Ok(dir) = std::env::var("FANOUT_PREPARE_DIR") {
        let label = std::env::var("FANOUT_PREPARE_SUITE").unwrap();
        let distinct = env_usize("FANOUT_PREPARE_DISTINCT", 1);
        let n = env_usize("FANOUT_PREPARE_N", 1);
        prepare(Path::new(&dir), suite_named(&label), distinct, n);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_usize("FANOUT_RECIPIENTS", if quick { 20 } else { 1000 });
    let n_gpg = env_usize("FANOUT_GPG_RECIPIENTS", if quick { 3 } else { n });
    let rsa_keys = env_usize("FANOUT_RSA_KEYS", if quick { 2 } else { 20 });
    let body = body();
    println!(
        "fanout: one {} KB notice, signed once, encrypted per recipient, queued durably",
        body.len() / 1024
    );
    let mut ratios = Vec::new();
    for (label, distinct) in [("cv25519", n), ("rsa3072", rsa_keys.min(n))] {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .env("FANOUT_PREPARE_DIR", dir.path())
            .env("FANOUT_PREPARE_SUITE", label)
            .env("FANOUT_PREPARE_DISTINCT", distinct.to_string())
            .env("FANOUT_PREPARE_N", n.to_string())
            .status()
            .expect("run the preparing child");
        assert!(status.success(), "preparing {label} failed");
        let coordinator = Cert::from_file(dir.path().join("coordinator.pgp")).unwrap();
        let ours = casegate_fanout(dir.path(), &coordinator, n, &body);
        // Read only now: parsing them here must not warm the cache the run above started cold.
        let certs: Vec<Cert> = CertParser::from_file(dir.path().join("recipients.pgp"))
            .unwrap()
            .collect::<openpgp::Result<_>>()
            .unwrap();
        let theirs = gpg_fanout(dir.path(), &coordinator, &certs, n_gpg, &body);
        // Only copies gpg really made count; a short run is a failed baseline, not a fast one.
        if theirs.recipients != n_gpg {
            eprintln!(
                "{label}: the gpg loop made {} of {n_gpg} copies: no ratio",
                theirs.recipients
            );
            std::process::exit(1);
        }
        let per_copy_ms = seal_cost(&coordinator, &certs, &body);
        let ratio = ours.rate() / theirs.rate();
        let extrapolated = if theirs.recipients < ours.recipients {
            format!(
                " (gpg ran for {} of the {} recipients; its rate is extrapolated)",
                theirs.recipients, ours.recipients
            )
        } else {
            String::new()
        };
        println!(
            "{label}: casegate {} recipients in {:.3} s ({:.0} per s, {} distinct keys); \
             gpg loop {} recipients in {:.2} s ({:.1} per s); ratio {ratio:.0}x{extrapolated}; \
             sealing alone {per_copy_ms:.2} ms per copy on one core",
            ours.recipients,
            ours.seconds,
            ours.rate(),
            certs.len(),
            theirs.recipients,
            theirs.seconds,
            theirs.rate(),
        );
        ratios.push(format!("{label} {ratio:.0}x"));
    }
    println!("ratio: {}", ratios.join(", "));
}
