//! Fan-out benchmark: one 20 KB notice to 1,000 recipients, composed, signed once, encrypted
//! per recipient and durably queued (one SQLite transaction on disk, WAL, synchronous=FULL),
//! with Cv25519 and with RSA-3072 recipient keys — next to the classic loop that runs
//! `gpg --sign --encrypt -r X` once per recipient on the same body (benches/baselines/
//! gpg_fanout.sh), as a per-recipient rate ratio.
//!
//! `cargo bench --bench fanout` (Cargo.toml: `[[bench]] name = "fanout" harness = false`).
//! Environment: FANOUT_RECIPIENTS (default 1000), FANOUT_GPG_RECIPIENTS (default 40: the gpg
//! loop is slow, its per-recipient rate is what is compared), FANOUT_RSA_KEYS (distinct RSA
//! keys to generate, default 20; RSA key generation is slow and the cost measured is
//! encryption, so recipients share keys round-robin — each still gets its own copy).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use casegate::config::OutboxConfig;
use casegate::outbox::{self, Notice, Selection};
use casegate::store::{Store, StoredCert};
use casegate::tracking::{Kind, TrackingNumber};
use chrono::Utc;
use openpgp::Cert;
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::serialize::{Serialize, SerializeInto};
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

struct Result {
    recipients: usize,
    seconds: f64,
}

impl Result {
    fn rate(&self) -> f64 {
        self.recipients as f64 / self.seconds
    }
}

fn casegate_fanout(dir: &Path, coordinator: &Cert, certs: &[Cert], n: usize, body: &str) -> Result {
    let mut store = Store::open(&dir.join("casegate.sqlite")).unwrap();
    let number = TrackingNumber::parse("VU#409117").unwrap();
    let thread = store
        .create_thread(Kind::Case, Some(&number), "bench", Utc::now())
        .unwrap();
    for c in certs {
        store
            .put_cert(&StoredCert {
                fingerprint: c.fingerprint().to_hex(),
                public_cert: c.to_vec().unwrap(),
                user_ids: vec![],
                imported_at: casegate::store::time_text(Utc::now()),
            })
            .unwrap();
    }
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
    let notice = Notice {
        thread: "VU#409117",
        subject: "Buffer overflow in FooRouter",
        body,
        in_reply_to: None,
        automatic: false,
    };
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
    let mut recipients = Vec::new();
    for c in certs.iter().take(n) {
        let mut public = Vec::new();
        c.armored().serialize(&mut public).unwrap();
        gpg(&home, &["--import"], &public);
        recipients.push(c.fingerprint().to_hex());
    }
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
    let notice = Notice {
        thread: "VU#409117",
        subject: "Buffer overflow in FooRouter",
        body,
        in_reply_to: None,
        automatic: false,
    };
    let signed = compose::sign_notice(&notice, coordinator, FROM, now).unwrap();
    let k = certs.len().min(200);
    let start = Instant::now();
    for c in &certs[..k] {
        compose::seal_for(&signed, "psirt@vendor.example", c, now).unwrap();
    }
    start.elapsed().as_secs_f64() * 1000.0 / k as f64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_usize("FANOUT_RECIPIENTS", if quick { 20 } else { 1000 });
    let n_gpg = env_usize("FANOUT_GPG_RECIPIENTS", if quick { 3 } else { 40 });
    let rsa_keys = env_usize("FANOUT_RSA_KEYS", if quick { 2 } else { 20 });
    let body = body();
    let coordinator = CertBuilder::general_purpose(Some(format!("<{FROM}>")))
        .generate()
        .unwrap()
        .0;
    println!(
        "fanout: one {} KB notice, signed once, encrypted per recipient, queued durably",
        body.len() / 1024
    );
    let mut ratios = Vec::new();
    for (label, suite, distinct) in [
        ("cv25519", CipherSuite::Cv25519, n),
        ("rsa3072", CipherSuite::RSA3k, rsa_keys.min(n)),
    ] {
        let certs: Vec<Cert> = (0..distinct.max(1))
            .map(|i| recipient(suite, &format!("psirt{i}@vendor{i}.example")))
            .collect();
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let ours = casegate_fanout(dir.path(), &coordinator, &certs, n, &body);
        let theirs = gpg_fanout(dir.path(), &coordinator, &certs, n_gpg, &body);
        let per_copy_ms = seal_cost(&coordinator, &certs, &body);
        let ratio = ours.rate() / theirs.rate();
        println!(
            "{label}: casegate {} recipients in {:.3} s ({:.0} per s, {} distinct keys); \
             gpg loop {} recipients in {:.2} s ({:.1} per s); ratio {ratio:.0}x; \
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
