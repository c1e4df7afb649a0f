//! Real mail servers for integration tests: Dovecot IMAP (plain + STARTTLS, IMAPS, IDLE) and an
//! SMTP receiver that delivers into Dovecot over LMTP, started by `tests/support/mail-servers`.
//!
//! Each [`MailServers`] is a private instance: its own temp directory and free ports chosen at run
//! time, so tests in one binary and several test binaries can run at the same time. Dropping it
//! stops both servers and removes the directory (kept, and its path printed, when the test
//! panicked, so the logs in `DIR/log/` can be read).
//!
//! Use from a test file with `mod support;`.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod cli;
pub mod dns;
pub mod imap_sink;
pub mod postgres;
pub mod wkd;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The password of every test user.
pub const PASSWORD: &str = "secret";

/// The users every instance has; more can be asked for with [`MailServers::start_with_users`].
pub const USERS: &[&str] = &[
    "cert@example.test",
    "reports@example.test",
    "vendor@example.test",
    "vendor2@example.test",
    "vendor3@example.test",
    "psirt@example.test",
    "reporter@example.test",
    "stranger@example.test",
];

/// One running pair of servers on 127.0.0.1.
pub struct MailServers {
    /// All state: `dovecot.conf`, `mail/USER/Maildir`, `log/`, `smtp/` (copies), `tls/`.
    pub dir: PathBuf,
    pub host: String,
    /// Plaintext IMAP that also offers STARTTLS.
    pub imap_port: u16,
    /// IMAP over implicit TLS.
    pub imaps_port: u16,
    pub smtp_port: u16,
    /// The CA (PEM) that signed the servers' certificate (SAN localhost and 127.0.0.1).
    pub ca_cert: PathBuf,
    /// A file holding [`PASSWORD`], for configs that take `password_file`.
    pub password_file: PathBuf,
    stopped: bool,
}

/// How an instance differs from the default.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Users besides [`USERS`]: `user@domain` (password [`PASSWORD`]) or `user@domain=PASSWORD`.
    pub extra_users: Vec<String>,
    /// Replaces Dovecot's post-login CAPABILITY list, e.g. [`DOVECOT_CAPABILITY`] without `MOVE`.
    pub imap_capability: Option<String>,
    /// Record every IMAP session as the server saw it ([`MailServers::imap_commands`]).
    pub rawlog: bool,
    /// The servers present a self-signed certificate that is its own CA (`openssl req -x509`,
    /// CA:TRUE); `ca_cert` is that certificate.
    pub self_signed: bool,
}

/// Dovecot 2.3's own post-login capability list, to edit for [`ServerOptions::imap_capability`].
pub const DOVECOT_CAPABILITY: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY";

/// One message the SMTP receiver accepted: its envelope and its bytes as received.
#[derive(Debug, Clone)]
pub struct SmtpCopy {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub auth_user: Option<String>,
    pub raw: Vec<u8>,
    pub path: PathBuf,
}

/// The harness script (bash); also usable by hand: `tests/support/mail-servers help`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mail-servers")
}

impl MailServers {
    /// Starts an instance with the standard users. Panics with the script's message on failure
    /// (e.g. the packages to install when not root).
    pub fn start() -> MailServers {
        MailServers::start_with_users(&[])
    }

    /// Starts an instance with extra users besides [`USERS`]: `user@domain` (password
    /// [`PASSWORD`]) or `user@domain=PASSWORD`.
    pub fn start_with_users(extra_users: &[&str]) -> MailServers {
        MailServers::start_with(&ServerOptions {
            extra_users: extra_users.iter().map(|u| u.to_string()).collect(),
            ..ServerOptions::default()
        })
    }

    /// Starts an instance whose Dovecot records every session's commands (rawlog), for
    /// [`MailServers::imap_commands`].
    pub fn start_recording() -> MailServers {
        MailServers::start_with(&ServerOptions {
            rawlog: true,
            ..ServerOptions::default()
        })
    }

    /// Starts an instance with the given options.
    pub fn start_with(options: &ServerOptions) -> MailServers {
        let dir = temp_dir();
        let mut last_error = String::new();
        // A port found free can be taken by someone else before Dovecot binds it: retry.
        for _ in 0..5 {
            let ports = free_ports(3);
            let out = Command::new(script())
                .arg("start")
                .arg(&dir)
                .env("MAIL_IMAP_PORT", ports[0].to_string())
                .env("MAIL_IMAPS_PORT", ports[1].to_string())
                .env("MAIL_SMTP_PORT", ports[2].to_string())
                .env("MAIL_EXTRA_USERS", options.extra_users.join(" "))
                .env(
                    "MAIL_SELF_SIGNED",
                    if options.self_signed { "1" } else { "" },
                )
                .env(
                    "MAIL_IMAP_CAPABILITY",
                    options.imap_capability.clone().unwrap_or_default(),
                )
                .env("MAIL_IMAP_RAWLOG", if options.rawlog { "1" } else { "" })
                .stdin(Stdio::null())
                .output()
                .expect("run tests/support/mail-servers");
            if out.status.success() {
                return MailServers::from_env_lines(&dir, &String::from_utf8_lossy(&out.stdout));
            }
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
            if !last_error.contains("already in use") {
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("cannot start test mail servers: {}", last_error.trim());
    }

    fn from_env_lines(dir: &Path, text: &str) -> MailServers {
        let get = |key: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("mail-servers start did not print {key}: {text}"))
                .to_string()
        };
        MailServers {
            dir: dir.to_path_buf(),
            host: get("MAIL_HOST"),
            imap_port: get("MAIL_IMAP_PORT").parse().unwrap(),
            imaps_port: get("MAIL_IMAPS_PORT").parse().unwrap(),
            smtp_port: get("MAIL_SMTP_PORT").parse().unwrap(),
            ca_cert: PathBuf::from(get("MAIL_CA_CERT")),
            password_file: PathBuf::from(get("MAIL_PASSWORD_FILE")),
            stopped: false,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(script())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tests/support/mail-servers");
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mail-servers {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        out
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// A server certificate for `names` signed by this instance's CA (for other test servers,
    /// e.g. a WKD web server): (certificate PEM, key PEM).
    pub fn leaf_certificate(&self, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let mut args = vec!["leaf", self.dir_str(), name];
        args.extend_from_slice(names);
        self.run(&args, None);
        let tls = self.dir.join("tls");
        (
            tls.join(format!("{name}.pem")),
            tls.join(format!("{name}.key")),
        )
    }

    /// Puts one raw message into `user`'s INBOX (`doveadm save`), as a mail server would.
    pub fn deliver(&self, user: &str, raw: &[u8]) {
        self.deliver_to(user, "INBOX", raw);
    }

    /// Puts one raw message into `user`'s `mailbox` (which must exist).
    pub fn deliver_to(&self, user: &str, mailbox: &str, raw: &[u8]) {
        let mut child = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .args(["save", "-u", user, "-m", mailbox])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run doveadm");
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "doveadm save -u {user} -m {mailbox}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// Puts many messages into `user`'s INBOX at once by writing them into the Maildir's `new/`
    /// (how a local delivery agent hands mail to Dovecot): far faster than one `doveadm` each.
    /// Dovecot gives them UIDs at its next look (at once for an IDLE client).
    pub fn deliver_many(&self, user: &str, raws: &[Vec<u8>]) {
        let maildir = self.maildir(user);
        let owner = std::fs::metadata(self.dir.join("mail")).unwrap();
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = (owner.uid(), owner.gid());
        for sub in ["", "cur", "new", "tmp"] {
            let p = maildir.join(sub);
            if !p.exists() {
                std::fs::create_dir_all(&p).unwrap();
            }
        }
        for p in [
            self.dir.join("mail").join(user),
            maildir.clone(),
            maildir.join("cur"),
            maildir.join("new"),
            maildir.join("tmp"),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        for raw in raws {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let name = format!(
                "{}.M{}P{}Q{}.casegate-test",
                now.as_secs(),
                now.subsec_micros(),
                std::process::id(),
                n
            );
            let tmp = maildir.join("tmp").join(&name);
            std::fs::write(&tmp, raw).unwrap();
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).unwrap();
            std::fs::rename(&tmp, maildir.join("new").join(&name)).unwrap();
        }
    }

    /// `user`'s Maildir (INBOX); other folders are `.NAME` inside it.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user).join("Maildir")
    }

    /// Makes the SMTP receiver answer RCPT with 451 (`"temp"`) or 550 (`"perm"`), for every
    /// address or only `addr`; `"off"` restores normal service.
    pub fn smtp_fail(&self, mode: &str, addr: Option<&str>) {
        let mut args = vec!["smtp-fail", self.dir_str(), mode];
        if let Some(a) = addr {
            args.push(a);
        }
        self.run(&args, None);
    }

    /// Every message the SMTP receiver accepted, oldest first.
    pub fn smtp_accepted(&self) -> Vec<SmtpCopy> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.join("smtp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let envelope: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap())
                        .unwrap();
                SmtpCopy {
                    mail_from: envelope["mail_from"].as_str().unwrap_or("").to_string(),
                    rcpt_tos: envelope["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    auth_user: envelope["auth_user"].as_str().map(str::to_string),
                    raw: std::fs::read(&p).unwrap(),
                    path: p,
                }
            })
            .collect()
    }

    /// Stops and starts Dovecot (same ports, mail kept); clients see their connections drop.
    pub fn restart_imap(&self) {
        self.run(&["restart-imap", self.dir_str()], None);
    }

    /// Stops only Dovecot (e.g. to test a client's reconnect); [`MailServers::restart_imap`]
    /// brings it back.
    pub fn stop_imap(&self) {
        self.run(&["stop-imap", self.dir_str()], None);
    }

    /// Runs `doveadm ARGS` against this instance (e.g. `mailbox delete -u USER NAME`).
    pub fn doveadm(&self, args: &[&str]) -> String {
        let conf = self.dir.join("dovecot.conf");
        let out = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(&conf)
            .args(args)
            .output()
            .expect("run doveadm");
        assert!(
            out.status.success(),
            "doveadm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Number of messages in `user`'s `mailbox`: 0 when the mailbox does not exist; any other
    /// failure (the server gone, an unknown user) panics, so that "the INBOX is empty" can
    /// never be concluded from a server that cannot answer.
    pub fn count(&self, user: &str, mailbox: &str) -> usize {
        let conf = self.dir.join("dovecot.conf");
        let out = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(&conf)
            .args([
                "-f", "flow", "mailbox", "status", "-u", user, "messages", mailbox,
            ])
            .output()
            .expect("run doveadm");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // doveadm's EX_NOTFOUND (68) with its own words: only a missing mailbox counts as 0.
            assert!(
                out.status.code() == Some(68) && err.contains("Mailbox doesn't exist"),
                "doveadm mailbox status -u {user} {mailbox} failed ({:?}): {}",
                out.status.code(),
                err.trim()
            );
            return 0;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        flow_value(&text, "messages")
            .unwrap_or_else(|| panic!("doveadm mailbox status printed {text:?}"))
    }

    /// The UIDVALIDITY of `user`'s `mailbox`.
    pub fn uidvalidity(&self, user: &str, mailbox: &str) -> u32 {
        let out = self.doveadm(&[
            "-f",
            "flow",
            "mailbox",
            "status",
            "-u",
            user,
            "uidvalidity",
            mailbox,
        ]);
        flow_value(&out, "uidvalidity").unwrap_or_else(|| panic!("doveadm printed {out:?}"))
    }

    /// Every command `user`'s IMAP clients sent after login, in order, as Dovecot logged it
    /// (needs [`ServerOptions::rawlog`]): `UID MOVE 1:3 casegate.processed`, `IDLE`, `NOOP`...
    /// with the tag left out. One session after another, oldest first.
    pub fn imap_commands(&self, user: &str) -> Vec<String> {
        let dir = self.dir.join("rawlog").join(user);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (start with ServerOptions::rawlog)", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "in"))
            .collect();
        // Names are `YYYYMMDD-HHMMSS.mmm.N.in`: time order, then the session counter.
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            for line in text.lines() {
                // `<unix time> <tag> <command ...>`; IDLE's `DONE` has no tag.
                let mut words = line.splitn(3, ' ');
                let (Some(_time), Some(second)) = (words.next(), words.next()) else {
                    continue;
                };
                match words.next() {
                    Some(rest) => out.push(rest.to_string()),
                    None => out.push(second.to_string()),
                }
            }
        }
        out
    }

    /// Stops both servers (idempotent); the directory stays until drop.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = Command::new(script())
                .arg("stop")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "test mail servers kept for inspection: {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A short, fresh directory under /tmp that the `dovecot` user can enter (unix sockets need
/// short paths; Dovecot drops privileges when run as root).
fn temp_dir() -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("cg-")
        .tempdir_in("/tmp")
        .unwrap()
        .keep();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `n` distinct ports that were free a moment ago (all bound at once so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// `KEY=N` from doveadm's `-f flow` output (which starts with the mailbox name).
fn flow_value<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
