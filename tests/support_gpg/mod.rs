//! Real GnuPG for the OpenPGP tests: a private GNUPGHOME, keys generated once per test
//! binary, and small helpers to run gpg. Never touches ~/.gnupg.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use casegate::keyring::{self, Cert, Keyring};

pub const COORDINATOR: &str = "cert@example.test";
pub const VENDOR: &str = "psirt@foocorp.example";
pub const REPORTER: &str = "reporter@example.org";
pub const STRANGER: &str = "someone@elsewhere.example";
pub const OLD: &str = "old@foocorp.example";
pub const REVOKED: &str = "revoked@foocorp.example";

const HOME_PREFIX: &str = "casegate-pgp-gnupg-";

/// A private GnuPG home directory.
pub struct Gpg {
    pub home: PathBuf,
}

impl Gpg {
    /// Creates a fresh home under the temp dir (named by pid), after removing homes left by
    /// earlier test processes that are gone (and stopping their agents).
    pub fn new() -> Gpg {
        let tmp = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix(HOME_PREFIX) else {
                    continue;
                };
                let alive = Path::new("/proc").join(pid).exists();
                if !alive {
                    let _ = Command::new("gpgconf")
                        .args(["--homedir"])
                        .arg(e.path())
                        .args(["--kill", "gpg-agent"])
                        .output();
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let home = tmp.join(format!("{HOME_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    /// Runs gpg with the test options; returns the raw output (does not check status).
    pub fn try_run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        // One home is shared by the tests of a binary, which run in parallel; gpg 2.2's keybox
        // is not safe for concurrent writers ("keydb_get_keyblock failed"), so take turns.
        static GPG_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = GPG_TURN.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = Command::new("/usr/bin/gpg");
        cmd.env("GNUPGHOME", &self.home)
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--trust-model",
                "always",
                "--no-auto-check-trustdb",
            ])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run /usr/bin/gpg");
        if let Some(input) = stdin {
            let mut si = child.stdin.take().unwrap();
            let input = input.to_vec();
            std::thread::spawn(move || {
                let _ = si.write_all(&input);
            });
        }
        child.wait_with_output().unwrap()
    }

    /// Runs gpg and panics with its stderr if it fails.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let out = self.try_run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Primary fingerprint of the (first) key matching `who`.
    pub fn fpr(&self, who: &str) -> String {
        let out = self.run(&["--with-colons", "--list-keys", who], None);
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string()
    }

    pub fn gen_key(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        extra: &[&str],
    ) -> String {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--quick-gen-key", uid, algo, usage, expire]);
        self.run(&args, None);
        let email = uid
            .split('<')
            .nth(1)
            .and_then(|s| s.split('>').next())
            .unwrap();
        self.fpr(&format!("<{email}>"))
    }

    pub fn add_subkey(&self, fpr: &str, algo: &str, usage: &str) {
        self.run(&["--quick-add-key", fpr, algo, usage, "never"], None);
    }

    pub fn export(&self, fpr: &str) -> Vec<u8> {
        self.run(&["--export", fpr], None)
    }

    pub fn import(&self, bytes: &[u8]) {
        self.run(&["--import"], Some(bytes));
    }
}

/// Keys shared by all tests of one binary.
pub struct Fixture {
    pub gpg: Gpg,
    pub coordinator: Cert,
    /// RSA-3072 vendor key (sign + encrypt subkey), in the keyring.
    pub vendor: String,
    /// Cv25519 reporter key (Ed25519 sign + Cv25519 encrypt), in the keyring.
    pub reporter: String,
    /// A key casegate does not know.
    pub stranger: String,
    /// Expired since 2020, in the keyring.
    pub old: String,
    /// Revoked, in the keyring; `revoked_signed` was made before the revocation.
    pub revoked: String,
    pub revoked_signed: Vec<u8>,
    /// Clear-signed by `old` while it was valid (faked time 2020-01-01).
    pub old_signed: Vec<u8>,
    pub keyring: Keyring,
}

impl Fixture {
    /// Key ID (hex) of the coordinator's encryption subkey, as gpg writes it in PKESKs.
    pub fn coordinator_enc_keyid(&self) -> String {
        let p = sequoia_openpgp::policy::StandardPolicy::new();
        let vc = self.coordinator.with_policy(&p, None).unwrap();
        vc.keys()
            .for_transport_encryption()
            .next()
            .unwrap()
            .key()
            .keyid()
            .to_hex()
    }

    pub fn enc_keyid(&self, fpr: &str) -> String {
        let out = self.gpg.run(&["--with-colons", "--list-keys", fpr], None);
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .find(|l| {
                l.starts_with("sub:") && l.split(':').nth(11).is_some_and(|c| c.contains('e'))
            })
            .and_then(|l| l.split(':').nth(4))
            .unwrap()
            .to_string()
    }
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let gpg = Gpg::new();
        let coordinator = keyring::generate_coordinator_key(COORDINATOR).unwrap();
        gpg.import(keyring::armored_public(&coordinator).unwrap().as_bytes());

        let vendor = gpg.gen_key(
            &format!("Vendor PSIRT <{VENDOR}>"),
            "rsa3072",
            "default",
            "never",
            &[],
        );
        gpg.add_subkey(&vendor, "rsa3072", "encr");
        let reporter = gpg.gen_key(
            &format!("Reporter <{REPORTER}>"),
            "ed25519",
            "default",
            "never",
            &[],
        );
        gpg.add_subkey(&reporter, "cv25519", "encr");
        let stranger = gpg.gen_key(
            &format!("Stranger <{STRANGER}>"),
            "ed25519",
            "default",
            "never",
            &[],
        );
        gpg.add_subkey(&stranger, "cv25519", "encr");

        let old = gpg.gen_key(
            &format!("Old <{OLD}>"),
            "ed25519",
            "sign",
            "1d",
            &["--faked-system-time", "20200101T000000"],
        );
        let old_signed = gpg.run(
            &[
                "--faked-system-time",
                "20200101T010000",
                "-u",
                &old,
                "--clearsign",
            ],
            Some(b"Statement signed in 2020.\n"),
        );

        let revoked = gpg.gen_key(
            &format!("Revoked <{REVOKED}>"),
            "ed25519",
            "sign",
            "never",
            &[],
        );
        let revoked_signed = gpg.run(
            &["-u", &revoked, "--clearsign"],
            Some(b"Signed before the revocation.\n"),
        );
        let rev = std::fs::read_to_string(
            gpg.home
                .join("openpgp-revocs.d")
                .join(format!("{revoked}.rev")),
        )
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
        gpg.import(rev.as_bytes());

        let mut certs = Vec::new();
        for f in [&vendor, &reporter, &old, &revoked] {
            certs.extend(keyring::parse_certs(&gpg.export(f)).unwrap());
        }
        let keyring = Keyring::new(Some(coordinator.clone()), certs);
        Fixture {
            gpg,
            coordinator,
            vendor,
            reporter,
            stranger,
            old,
            revoked,
            revoked_signed,
            old_signed,
            keyring,
        }
    })
}

/// Headers of a test message from `from` (Message-ID `<id@test.example>`), ending before the
/// Content-Type the caller adds.
pub fn headers(from: &str, subject: &str, id: &str) -> String {
    format!(
        "From: Sender <{from}>\r\nTo: CERT <{COORDINATOR}>\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@test.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
}

/// MIME wants CRLF; gpg writes LF.
pub fn crlf(s: &[u8]) -> String {
    String::from_utf8_lossy(s)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
}

/// An RFC 3156 multipart/encrypted entity around armored ciphertext.
pub fn pgp_mime(armored: &[u8]) -> String {
    format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n\r\n\
         --e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --e\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{}\r\n--e--\r\n",
        crlf(armored).trim_end()
    )
}

/// An RFC 3156 multipart/signed entity: `part` is the signed entity, verbatim.
pub fn signed_entity(part: &str, sig: &[u8]) -> String {
    format!(
        "Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n\
         --s\r\n{part}\r\n--s\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
         Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n{}\r\n--s--\r\n",
        String::from_utf8_lossy(sig).trim_end()
    )
}
