//! SMTP delivery of outbox copies with lettre (tokio, rustls with the ring provider).
//!
//! Each copy goes out in its own SMTP transaction whose envelope names exactly one recipient,
//! the copy's own address: the architecture's "nothing leaves that is not a committed outbox
//! row with exactly one recipient", enforced here at the envelope.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpConfig, TlsMode};

use super::OutboxError;

/// The result of one SMTP attempt, with the server's reply (or the error) as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// 2xx after DATA: the server took responsibility for the copy.
    Accepted(String),
    /// 4xx, or no usable connection: worth trying again later.
    Temporary(String),
    /// 5xx, or a request the client can never make work: give up.
    Permanent(String),
}

/// A configured SMTP client, and the name under which it claims outbox copies. Build it inside
/// the tokio runtime that will use it.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Set when the server's certificate is pinned (`tls_cert_sha256`, `tls_cert_file`).
    pinned: Option<Pinned>,
    owner: String,
    lease: chrono::Duration,
}

/// A relay whose certificate is pinned. lettre takes no rustls configuration of ours, so the
/// certificate is checked right after the handshake, before anything but EHLO is said: the
/// pinned one as it is, any other against the roots and the host name
/// ([`crate::tls::ServerTrust::check_chain`]). The handshake itself proves the server holds
/// the certificate's key.
struct Pinned {
    host: String,
    port: u16,
    tls: TlsMode,
    trust: crate::tls::ServerTrust,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl SmtpSender {
    /// Builds the transport from the `[smtp]` settings: `tls = "none"` (plaintext, for loopback
    /// relays), `"starttls"` (STARTTLS required) or `"implicit"` (TLS from the first byte);
    /// `ca_file` is trusted in addition to the system roots; AUTH when a username and password
    /// are configured. The password is read here and kept only inside lettre.
    pub fn new(config: &SmtpConfig) -> Result<SmtpSender, OutboxError> {
        let host = config.host.clone();
        let tls = match config.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls => Tls::Required(tls_parameters(config)?),
            TlsMode::Implicit => Tls::Wrapper(tls_parameters(config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_secs.max(1))));
        let password = config
            .password
            .resolve()
            .map_err(|e| OutboxError::Config(e.to_string()))?;
        let mut credentials = None;
        match (&config.username, password) {
            (Some(user), Some(password)) => {
                let c = Credentials::new(user.clone(), password.expose().to_string());
                credentials = Some(c.clone());
                builder = builder.credentials(c);
            }
            (Some(_), None) => {
                return Err(OutboxError::Config(
                    "[smtp] username is set but no password_file or password_env".into(),
                ));
            }
            _ => {}
        }
        // A claim must outlast one SMTP transaction: about a dozen steps (connect, TLS, AUTH,
        // MAIL, RCPT, DATA, ...), each bounded by `timeout_secs`.
        let lease = i64::try_from(config.timeout_secs.max(1).saturating_mul(12))
            .unwrap_or(i64::MAX / 1000)
            .max(60);
        let pinned = pinned_trust(config)?.map(|trust| Pinned {
            host: config.host.clone(),
            port: config.port,
            tls: config.tls,
            trust,
            credentials,
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
        });
        Ok(SmtpSender {
            transport: builder.build(),
            pinned,
            owner: new_owner(),
            lease: chrono::Duration::seconds(lease),
        })
    }

    /// Who claims copies (unique to this sender; see `Store::claim_due_copy`).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a claim lasts: longer than one SMTP transaction can take.
    pub fn lease(&self) -> chrono::Duration {
        self.lease
    }

    /// Sends `raw` from `from` to exactly `to` (one RCPT) and classifies the outcome.
    /// Crate-private: only committed outbox rows go out ([`super::deliver_due`]).
    pub(crate) async fn send(&self, from: &str, to: &str, raw: &[u8]) -> SendResult {
        let envelope = match (from.parse(), to.parse()) {
            (Ok(from), Ok(to)) => match Envelope::new(Some(from), vec![to]) {
                Ok(e) => e,
                Err(e) => return SendResult::Permanent(format!("invalid envelope: {e}")),
            },
            _ => {
                return SendResult::Permanent(format!("invalid envelope address: {from} -> {to}"));
            }
        };
        let sent = match &self.pinned {
            Some(p) => match p.send(&envelope, raw).await {
                Ok(r) => Ok(r),
                Err(PinnedError::Smtp(e)) => Err(e),
                // The operator fixes a certificate; until then the copy waits and is retried.
                Err(PinnedError::Certificate(why)) => return SendResult::Temporary(why),
            },
            None => self.transport.send_raw(&envelope, raw).await,
        };
        match sent {
            Ok(response) => {
                let text = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                if response.is_positive() {
                    SendResult::Accepted(text)
                } else {
                    SendResult::Temporary(text)
                }
            }
            Err(e) if e.is_permanent() => SendResult::Permanent(e.to_string()),
            Err(e) if e.is_client() => SendResult::Permanent(e.to_string()),
            // 4xx, connection refused/reset, TLS, timeouts: the relay may be back later.
            Err(e) => SendResult::Temporary(error_chain(&e)),
        }
    }
}

/// A claimant's name: `HOST/PID/START/RANDOM` — this host, this process (its start time tells
/// a reused PID apart) and a random part, one per sender.
fn new_owner() -> String {
    let pid = std::process::id();
    format!(
        "{}/{pid}/{}/{}",
        host_name(),
        process_start(pid).unwrap_or_default(),
        hex::encode(rand::random::<[u8; 6]>())
    )
}

/// Whether the sender named `owner` is known to be gone: it ran on this host and its process
/// has ended, or its PID now belongs to a process started later. What cannot be judged
/// (another host, no /proc) counts as alive, and its claim ends with its lease.
pub fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(host), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != host_name() || process_start(std::process::id()).is_none() {
        return false;
    }
    match process_start(pid) {
        None => true,
        Some(now) => now != start,
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace('/', "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A process's start time (clock ticks since boot, /proc/PID/stat field 22), or None when it
/// does not exist.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: count after it.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Why a send to a pinned relay failed.
enum PinnedError {
    Smtp(lettre::transport::smtp::Error),
    /// The server's certificate is neither pinned nor trusted by the roots for its name.
    Certificate(String),
}

impl From<lettre::transport::smtp::Error> for PinnedError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        PinnedError::Smtp(e)
    }
}

impl Pinned {
    /// Connects, secures the connection, checks the certificate and only then says anything
    /// that matters (AUTH, MAIL).
    async fn connect(&self) -> Result<AsyncSmtpConnection, PinnedError> {
        let hello = ClientId::default();
        // Verification happens in `check_chain`, right below, before AUTH and MAIL.
        let tls = TlsParameters::builder(self.host.clone())
            .dangerous_accept_invalid_certs(true)
            .build_rustls()?;
        let addr = (self.host.as_str(), self.port);
        let mut conn = match self.tls {
            TlsMode::Implicit => {
                AsyncSmtpConnection::connect_tokio1(
                    addr,
                    Some(self.timeout),
                    &hello,
                    Some(tls),
                    None,
                )
                .await?
            }
            TlsMode::Starttls => {
                let mut c = AsyncSmtpConnection::connect_tokio1(
                    addr,
                    Some(self.timeout),
                    &hello,
                    None,
                    None,
                )
                .await?;
                c.starttls(tls, &hello).await?;
                c
            }
            TlsMode::None => {
                return Err(PinnedError::Certificate(
                    "a pinned certificate needs tls = \"starttls\" or \"implicit\"".into(),
                ));
            }
        };
        let chain = conn.certificate_chain()?;
        if let Err(why) = self.trust.check_chain(&chain, &self.host) {
            conn.abort().await;
            return Err(PinnedError::Certificate(format!(
                "{}:{}: {why}",
                self.host, self.port
            )));
        }
        Ok(conn)
    }

    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<Response, PinnedError> {
        let whole = async {
            let mut conn = self.connect().await?;
            if let Some(c) = &self.credentials {
                conn.auth(DEFAULT_MECHANISMS, c).await?;
            }
            let response = conn.send(envelope, raw).await?;
            let _ = conn.quit().await;
            Ok(response)
        };
        // About a dozen steps, each bounded like the unpinned transport's.
        match tokio::time::timeout(self.timeout.saturating_mul(12), whole).await {
            Ok(r) => r,
            Err(_) => Err(PinnedError::Certificate(format!(
                "{}:{}: no answer within {} s",
                self.host,
                self.port,
                self.timeout.as_secs() * 12
            ))),
        }
    }
}

/// The certificate checks of a relay whose certificate is pinned; `None` when none is.
fn pinned_trust(config: &SmtpConfig) -> Result<Option<crate::tls::ServerTrust>, OutboxError> {
    if config.pin.is_empty() {
        return Ok(None);
    }
    if config.tls == TlsMode::None {
        return Err(OutboxError::Config(
            "[smtp] tls_cert_sha256/tls_cert_file need tls = \"starttls\" or \"implicit\"".into(),
        ));
    }
    let pins = crate::tls::Pins::from_config(&config.pin)
        .map_err(|e| OutboxError::Config(format!("[smtp] {e}")))?;
    crate::tls::ServerTrust::new(config.ca_file.as_deref(), pins)
        .map(Some)
        .map_err(|e| OutboxError::Config(format!("[smtp] {e}")))
}

/// What `casegate check` learns about the relay's TLS: the certificate it presents and
/// whether casegate trusts it (pinned, or by the roots for its name).
#[derive(Debug, Clone)]
pub struct TlsProbe {
    pub certificate_sha256: Option<String>,
    /// `Err` says why the certificate is not trusted (and what to pin).
    pub trusted: Result<&'static str, String>,
}

/// Connects to the relay, secures the connection as configured and reports the certificate.
/// Says nothing but EHLO (and STARTTLS); no AUTH, no mail.
pub async fn probe_tls(config: &SmtpConfig) -> Result<TlsProbe, String> {
    let pins = crate::tls::Pins::from_config(&config.pin).map_err(|e| format!("[smtp] {e}"))?;
    let pinned = !pins.is_empty();
    let trust = crate::tls::ServerTrust::new(config.ca_file.as_deref(), pins)
        .map_err(|e| format!("[smtp] {e}"))?;
    let probe = Pinned {
        host: config.host.clone(),
        port: config.port,
        tls: config.tls,
        trust: trust.clone(),
        credentials: None,
        timeout: Duration::from_secs(config.timeout_secs.clamp(1, 30)),
    };
    let result = tokio::time::timeout(probe.timeout.saturating_mul(4), probe.connect()).await;
    let seen = trust.seen().fingerprint();
    let trusted = match result {
        Err(_) => {
            return Err(format!(
                "no answer within {} s",
                probe.timeout.as_secs() * 4
            ));
        }
        Ok(Ok(mut conn)) => {
            let _ = conn.quit().await;
            let by_pin = seen.as_deref().is_some_and(|f| {
                crate::tls::parse_fingerprint(f).is_ok_and(|d| trust.pins().matches_digest(&d))
            });
            Ok(if pinned && by_pin {
                "pinned"
            } else {
                "trusted for its name"
            })
        }
        Ok(Err(PinnedError::Certificate(why))) => Err(why),
        Ok(Err(PinnedError::Smtp(e))) => return Err(error_chain(&e)),
    };
    Ok(TlsProbe {
        certificate_sha256: seen,
        trusted,
    })
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, OutboxError> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| OutboxError::Config(format!("[smtp] ca_file {}: {e}", path.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| OutboxError::Config(format!("[smtp] ca_file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| OutboxError::Config(format!("[smtp] TLS setup: {e}")))
}

/// The error and its causes on one line ("connection refused" hides in a source).
/// The error and its causes in one line; a cause the text already quotes (lettre's response
/// errors repeat the server's reply) is not added twice.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<std::io::Error>);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn a_sender_is_dead_when_its_process_is() {
        let me = super::new_owner();
        assert!(!super::owner_is_dead(&me), "{me}");
        let parts: Vec<&str> = me.split('/').collect();
        // The same PID with another start time: a reused PID, the old sender is gone.
        let reused = format!("{}/{}/1/ab", parts[0], parts[1]);
        assert!(super::owner_is_dead(&reused));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(super::owner_is_dead(&format!("{}/{pid}/0/ab", parts[0])));
        // Another host, or a name it cannot read: alive until the lease ends.
        assert!(!super::owner_is_dead(&format!("elsewhere/{pid}/0/ab")));
        assert!(!super::owner_is_dead("something else"));
    }

    #[test]
    fn causes_are_chained_once() {
        let reset = || Some(std::io::Error::other("connection reset"));
        assert_eq!(
            error_chain(&Wrapped("network error", reset())),
            "network error: connection reset"
        );
        assert_eq!(
            error_chain(&Wrapped("transient error (451): connection reset", reset())),
            "transient error (451): connection reset"
        );
    }
}
