//! One authenticated IMAP connection: TCP, then implicit TLS, STARTTLS, or (only when the config
//! says `tls = "none"`) plaintext; then LOGIN or AUTHENTICATE PLAIN. Every step is bounded by
//! `timeout_secs` so a server that hangs becomes an error, not a stuck daemon.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::{Client, Session};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ImapError;
use crate::config::{AfterStore, ImapConfig, PasswordSource, TlsMode};

/// The byte stream under an IMAP session: plaintext only for `tls = "none"`.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type ImapSession = Session<ImapStream>;

/// Everything needed to open a session to one account, checked once up front.
pub struct Server {
    /// Name for logs, status and the checkpoint table (`ImapConfig::account_name`).
    pub account: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    password: PasswordSource,
    tls_mode: TlsMode,
    tls: Option<TlsConnector>,
    /// What the server presented in the latest handshake (for errors and `check`).
    seen: Option<crate::tls::Seen>,
    pub timeout: Duration,
    pub processed_folder: String,
    pub after_store: AfterStore,
    pub idle: bool,
    pub poll_interval: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({} {}:{})", self.account, self.host, self.port)
    }
}

impl Server {
    /// Validates the account's settings and loads its trust roots; no network yet.
    pub fn from_config(c: &ImapConfig) -> Result<Server, ImapError> {
        let account = c.account_name();
        let bad = |message: String| ImapError::Config {
            account: account.clone(),
            message,
        };
        if c.mailboxes.is_empty() {
            return Err(bad(
                "`mailboxes` is empty; name at least one, e.g. [\"INBOX\"]".into(),
            ));
        }
        for name in c.mailboxes.iter().chain([&c.processed_folder]) {
            // Mailbox names travel as quoted strings; non-ASCII would need modified UTF-7.
            if name.is_empty() || !name.chars().all(|ch| (' '..='~').contains(&ch)) {
                return Err(bad(format!(
                    "mailbox name {name:?} must be non-empty printable ASCII"
                )));
            }
        }
        if c.mailboxes.contains(&c.processed_folder) && c.after_store == AfterStore::Move {
            return Err(bad(format!(
                "processed_folder {:?} is also a watched mailbox; messages would be stored and moved forever",
                c.processed_folder
            )));
        }
        match c.password.resolve() {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(bad(
                    "no password configured; set password_file or password_env".into(),
                ));
            }
            Err(e) => return Err(bad(e.to_string())),
        }
        let trust = match c.tls {
            TlsMode::None => None,
            TlsMode::Implicit | TlsMode::Starttls => {
                let pins = crate::tls::Pins::from_config(&c.pin).map_err(bad)?;
                Some(crate::tls::ServerTrust::new(c.ca_file.as_deref(), pins).map_err(bad)?)
            }
        };
        let tls = match &trust {
            None => None,
            Some(t) => Some(TlsConnector::from(Arc::new(
                t.client_config().map_err(bad)?,
            ))),
        };
        Ok(Server {
            account: account.clone(),
            host: c.host.clone(),
            port: c.port,
            username: c.username.clone(),
            password: c.password.clone(),
            tls_mode: c.tls,
            tls,
            seen: trust.map(|t| t.seen()),
            timeout: Duration::from_secs(c.timeout_secs.max(1)),
            processed_folder: c.processed_folder.clone(),
            after_store: c.after_store,
            idle: c.idle,
            poll_interval: Duration::from_secs(c.poll_interval_secs.max(1)),
        })
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Runs one network step under the account's timeout; `step` names it in the error.
    pub async fn step<T, F>(&self, step: &str, fut: F) -> Result<T, ImapError>
    where
        F: Future<Output = Result<T, async_imap::error::Error>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ImapError::protocol(self.address(), step, e)),
            Err(_) => Err(self.timed_out(step)),
        }
    }

    pub fn timed_out(&self, step: &str) -> ImapError {
        ImapError::Timeout {
            server: self.address(),
            step: step.to_string(),
            secs: self.timeout.as_secs(),
        }
    }

    /// Connects, secures and logs in. The password is read now (a rotated file is picked up)
    /// and never appears in an error.
    pub async fn open(&self) -> Result<ImapSession, ImapError> {
        let server = self.address();
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| self.timed_out("connect"))?
        .map_err(|source| ImapError::Connect {
            server: server.clone(),
            source,
        })?;
        let _ = tcp.set_nodelay(true);
        let client = match self.tls_mode {
            TlsMode::Implicit => {
                let mut c = Client::new(ImapStream::Tls(Box::new(self.handshake(tcp).await?)));
                self.greeting(&mut c).await?;
                c
            }
            TlsMode::None => {
                let mut c = Client::new(ImapStream::Plain(tcp));
                self.greeting(&mut c).await?;
                c
            }
            TlsMode::Starttls => {
                let mut plain = Client::new(tcp);
                self.greeting(&mut plain).await?;
                self.step("STARTTLS", plain.run_command_and_check_ok("STARTTLS", None))
                    .await
                    .map_err(|e| ImapError::Tls {
                        server: server.clone(),
                        message: format!("the server did not accept STARTTLS ({e})"),
                    })?;
                // Anything the server sent after its OK is dropped with the plaintext buffer: no
                // response injected before the handshake can be read as if it were protected.
                let tcp = plain.into_inner();
                Client::new(ImapStream::Tls(Box::new(self.handshake(tcp).await?)))
            }
        };
        let password = match self.password.resolve() {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(ImapError::Config {
                    account: self.account.clone(),
                    message: "no password configured".into(),
                });
            }
            Err(e) => {
                return Err(ImapError::Config {
                    account: self.account.clone(),
                    message: e.to_string(),
                });
            }
        };
        let auth_failed = |e: async_imap::error::Error| match e {
            e @ (async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)) => {
                ImapError::Auth {
                    server: server.clone(),
                    user: self.username.clone(),
                    message: super::describe(&e),
                }
            }
            other => ImapError::protocol(server.clone(), "login", other),
        };
        let secret = password.expose();
        // LOGIN takes a quoted string; a password it cannot carry goes through SASL PLAIN.
        let quotable = secret.chars().all(|c| (' '..='~').contains(&c));
        let login = async {
            if quotable {
                client
                    .login(&self.username, secret)
                    .await
                    .map_err(|(e, _)| auth_failed(e))
            } else {
                let plain = PlainAuth(format!("\0{}\0{}", self.username, secret));
                client
                    .authenticate("PLAIN", plain)
                    .await
                    .map_err(|(e, _)| auth_failed(e))
            }
        };
        let session = tokio::time::timeout(self.timeout, login)
            .await
            .map_err(|_| self.timed_out("login"))??;
        Ok(session)
    }

    async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ImapError> {
        let server = self.address();
        let connector = self.tls.as_ref().ok_or_else(|| ImapError::Tls {
            server: server.clone(),
            message: "TLS requested but not configured".into(),
        })?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| ImapError::Tls {
            server: server.clone(),
            message: format!("{:?} is not a valid server name: {e}", self.host),
        })?;
        tokio::time::timeout(self.timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| self.timed_out("TLS handshake"))?
            .map_err(|e| ImapError::Tls {
                server,
                message: describe_tls_error(&e, self.seen.as_ref()),
            })
    }

    /// The SHA-256 fingerprint of the certificate the server presented in the latest
    /// handshake (what `tls_cert_sha256` pins).
    pub fn seen_certificate(&self) -> Option<String> {
        self.seen.as_ref().and_then(|s| s.fingerprint())
    }

    async fn greeting<T>(&self, client: &mut Client<T>) -> Result<(), ImapError>
    where
        T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let server = self.address();
        let greeting = tokio::time::timeout(self.timeout, client.read_response())
            .await
            .map_err(|_| self.timed_out("greeting"))?
            .map_err(|source| ImapError::Connect {
                server: server.clone(),
                source,
            })?;
        match greeting {
            None => Err(ImapError::Server {
                server,
                message: "closed the connection before its greeting".into(),
            }),
            Some(r) => match r.parsed() {
                async_imap::imap_proto::Response::Data {
                    status: async_imap::imap_proto::Status::Bye,
                    outcome,
                } => Err(ImapError::Server {
                    server,
                    message: format!(
                        "refused the connection: {}",
                        outcome.information.as_deref().unwrap_or("BYE")
                    ),
                }),
                _ => Ok(()),
            },
        }
    }
}

/// SASL PLAIN: `\0user\0password`, sent once.
struct PlainAuth(String);

impl async_imap::Authenticator for PlainAuth {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        std::mem::take(&mut self.0)
    }
}

/// A certificate problem says so plainly and says what to do (the CA, or the pin with the
/// fingerprint the server presented); other errors pass through.
fn describe_tls_error(e: &std::io::Error, seen: Option<&crate::tls::Seen>) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match (inner, seen) {
        (Some(e), Some(seen)) => crate::tls::describe_cert_error(e, seen),
        (Some(e), None) => e.to_string(),
        (None, _) => e.to_string(),
    }
}

/// What [`check`] found: enough for `casegate check` to print one line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub account: String,
    pub server: String,
    pub capabilities: Vec<String>,
    /// Each configured mailbox with its message count.
    pub mailboxes: Vec<(String, u32)>,
    /// SHA-256 of the certificate the server presented (TLS only): the value to pin.
    pub certificate_sha256: Option<String>,
}

/// Connects once, logs in, examines every configured mailbox (read-only) and logs out: what
/// `casegate check` needs to tell an unreachable server, a refused login or an untrusted
/// certificate apart.
pub async fn check(account: &ImapConfig) -> Result<CheckReport, ImapError> {
    let server = Server::from_config(account)?;
    let mut session = server.open().await?;
    let caps = server.step("CAPABILITY", session.capabilities()).await?;
    let mut capabilities: Vec<String> = caps
        .iter()
        .map(|c| match c {
            async_imap::types::Capability::Imap4rev1 => "IMAP4rev1".to_string(),
            async_imap::types::Capability::Auth(a) => format!("AUTH={a}"),
            async_imap::types::Capability::Atom(a) => a.to_string(),
        })
        .collect();
    capabilities.sort();
    let mut mailboxes = Vec::new();
    for name in &account.mailboxes {
        let mb = server
            .step(&format!("EXAMINE {name}"), session.examine(name))
            .await?;
        mailboxes.push((name.clone(), mb.exists));
    }
    let _ = tokio::time::timeout(server.timeout, session.logout()).await;
    Ok(CheckReport {
        account: server.account.clone(),
        server: server.address(),
        capabilities,
        mailboxes,
        certificate_sha256: server.seen_certificate(),
    })
}
