//! A real SMTP server for the outbox tests (aiosmtpd, Debian's python3-aiosmtpd, as in
//! shared/tools/mail-services): three listeners on 127.0.0.1 — plaintext, STARTTLS with AUTH
//! required, implicit TLS — storing every accepted message with its envelope, plus fault
//! injection (RCPT 451/550) and slow DATA for crash tests. Each instance has its own temp dir.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PASSWORD: &str = "secret";

const SERVER: &str = r#"
import asyncio, itertools, json, os, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult
D = sys.argv[1]
PLAIN, STARTTLS, IMPLICIT = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seq = itertools.count(1)
def control():
    try: return open(f'{D}/control').read().split()
    except FileNotFoundError: return []
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        w = control()
        if w and w[0] in ('temp', 'perm') and (len(w) < 2 or w[1].lower() == address.lower()):
            return {'temp': '451 4.3.0 Temporary failure (injected)',
                    'perm': '550 5.7.1 Permanent failure (injected)'}[w[0]]
        envelope.rcpt_tos.append(address)
        return '250 OK'
    async def handle_DATA(self, server, session, envelope):
        n = next(seq)
        name = f'{D}/smtp/{os.getpid()}-{n:06d}'
        with open(name + '.json', 'w') as f:
            json.dump({'mail_from': envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos,
                       'auth_user': session.auth_data.login.decode() if session.authenticated else None,
                       'port': server.transport.get_extra_info('sockname')[1]}, f)
        with open(name + '.eml.tmp', 'wb') as f: f.write(envelope.original_content or envelope.content)
        os.rename(name + '.eml.tmp', name + '.eml')
        w = control()
        if w and w[0] == 'slow': await asyncio.sleep(float(w[1]))
        return f'250 2.0.0 OK queued as {n}'
def auth(server, session, envelope, mechanism, data):
    return AuthResult(success=data.password.decode() == 'secret', handled=False, auth_data=data)
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(f'{D}/tls/cert.pem', f'{D}/tls/key.pem')
def smtp(**kw):
    return lambda: SMTP(Handler(), hostname='localhost', authenticator=auth, **kw)
loop = asyncio.new_event_loop()
loop.run_until_complete(loop.create_server(smtp(auth_require_tls=False), '127.0.0.1', PLAIN))
loop.run_until_complete(loop.create_server(
    smtp(tls_context=tls, require_starttls=True, auth_required=True), '127.0.0.1', STARTTLS))
loop.run_until_complete(loop.create_server(smtp(auth_require_tls=False), '127.0.0.1', IMPLICIT, ssl=tls))
open(f'{D}/ready', 'w').close()
loop.run_forever()
"#;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub auth_user: Option<String>,
    pub port: u16,
    pub raw: Vec<u8>,
}

/// `[smtp]` settings for the plaintext listener on `port` (no TLS, no AUTH).
pub fn smtp_plain(port: u16) -> casegate::config::SmtpConfig {
    casegate::config::SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: casegate::config::TlsMode::None,
        ca_file: None,
        pin: Default::default(),
        username: None,
        password: casegate::config::PasswordSource::default(),
        timeout_secs: 10,
    }
}

pub struct Receiver {
    pub dir: tempfile::TempDir,
    pub plain_port: u16,
    pub starttls_port: u16,
    pub implicit_port: u16,
    /// The CA that signed the server certificate (SAN localhost).
    pub ca_file: PathBuf,
    pub password_file: PathBuf,
    child: Child,
}

impl Receiver {
    pub fn start() -> Receiver {
        let dir = tempfile::Builder::new()
            .prefix("cg-smtp")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("smtp")).unwrap();
        std::fs::create_dir_all(d.join("tls")).unwrap();
        make_certs(&d.join("tls"));
        std::fs::write(d.join("server.py"), SERVER).unwrap();
        std::fs::write(d.join("password"), format!("{PASSWORD}\n")).unwrap();
        {
            // casegate refuses a password file others can read.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.join("password"), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        let ports = free_ports(3);
        let child = Command::new("/usr/bin/python3")
            .arg(d.join("server.py"))
            .arg(d)
            .args(ports.iter().map(|p| p.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("server.log")).unwrap())
            .spawn()
            .expect("start /usr/bin/python3 (python3-aiosmtpd)");
        let mut r = Receiver {
            ca_file: d.join("tls/ca.pem"),
            password_file: d.join("password"),
            plain_port: ports[0],
            starttls_port: ports[1],
            implicit_port: ports[2],
            dir,
            child,
        };
        for _ in 0..300 {
            if r.dir.path().join("ready").exists() {
                return r;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                let log =
                    std::fs::read_to_string(r.dir.path().join("server.log")).unwrap_or_default();
                panic!("SMTP test server exited ({status}): {log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("SMTP test server did not start");
    }

    /// `temp`/`perm` [address]: RCPT answered 451/550; `slow SECS`: DATA answered late;
    /// `off`: normal service.
    pub fn control(&self, words: &str) {
        let p = self.dir.path().join("control");
        if words == "off" {
            let _ = std::fs::remove_file(p);
        } else {
            let tmp = self.dir.path().join("control.tmp");
            std::fs::write(&tmp, words).unwrap();
            std::fs::rename(tmp, p).unwrap();
        }
    }

    /// Every message accepted so far, in arrival order.
    pub fn accepted(&self) -> Vec<Accepted> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("smtp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let env: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap())
                        .unwrap();
                Accepted {
                    mail_from: env["mail_from"].as_str().unwrap_or("").to_string(),
                    rcpt_tos: env["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                    auth_user: env["auth_user"].as_str().map(str::to_string),
                    port: env["port"].as_u64().unwrap() as u16,
                    raw: std::fs::read(&p).unwrap(),
                }
            })
            .collect()
    }

    /// The messages whose envelope names `addr` (what `addr`'s inbox would hold).
    pub fn inbox(&self, addr: &str) -> Vec<Accepted> {
        self.accepted()
            .into_iter()
            .filter(|a| a.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(addr)))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn make_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=casegate test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}

/// `n` distinct ports that were free a moment ago.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}
