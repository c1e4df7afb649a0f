//! Settings: a TOML file (the spellings in shared/interface.md are fixed) over built-in
//! defaults. Secrets are never in the TOML the examples show: they come from a file or an
//! environment variable and live in [`Secret`], whose `Debug` prints nothing.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration could not be used. Messages name the file and the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read secret from {what}: {reason}")]
    Secret { what: String, reason: String },
}

/// Everything casegate reads from its configuration, with defaults filled in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub coordinator: CoordinatorConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub imap: Vec<ImapConfig>,
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub maildir: MaildirConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub followup: FollowupConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub authentication: AuthenticationConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    /// What one inbound message may cost; `max_message_bytes` comes from `[policy]`: use
    /// [`Config::limits`].
    #[serde(default)]
    pub limits: crate::limits::Limits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// `From:` of everything casegate sends.
    #[serde(default = "default_address")]
    pub address: String,
    /// Mail to this address without a tracking number opens a report.
    #[serde(default = "default_address")]
    pub reporting_address: String,
    /// Reserved: casegate writes no display names (From is the bare address; see `header`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Secret key file (mode 0600). Default: `<data-dir>/coordinator.key`.
    pub key_file: Option<PathBuf>,
    /// Mail sent (To, Cc, Bcc as the MTA's Delivered-To shows it) to this address is for
    /// the coordinator only: never relayed into a case discussion.
    pub private_address: Option<String>,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            address: default_address(),
            reporting_address: default_address(),
            name: default_name(),
            key_file: None,
            private_address: None,
        }
    }
}

fn default_address() -> String {
    "cert@example.test".to_string()
}
fn default_name() -> String {
    "casegate coordinator".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file. Default: `<data-dir>/casegate.sqlite`. Unused when `url` is set.
    pub path: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DB`, no password in it) that several
    /// instances share. Unset: the SQLite file.
    pub url: Option<String>,
    /// The database password (also used for a `postgres://` URL given to `store copy`).
    #[serde(flatten)]
    pub password: PasswordSource,
    /// TLS to the database: `require` (default; never a plaintext fallback) or `none`.
    #[serde(default = "default_store_tls")]
    pub tls: StoreTls,
    /// Trust this CA (PEM) for the database's certificate, besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// This instance's name in mailbox leases (unique per instance). Default:
    /// `HOSTNAME:DATA-DIR`, so a restarted instance takes its own leases back at once.
    pub instance: Option<String>,
    /// A mailbox lease lasts this long unless renewed; another instance takes a mailbox over
    /// at most this long (plus a quarter) after its watcher died.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            url: None,
            password: PasswordSource::default(),
            tls: default_store_tls(),
            ca_file: None,
            instance: None,
            lease_secs: default_lease_secs(),
        }
    }
}

/// TLS to the PostgreSQL server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreTls {
    Require,
    None,
}

fn default_store_tls() -> StoreTls {
    StoreTls::Require
}
fn default_lease_secs() -> u64 {
    20
}

/// How a connection is protected. `none` exists for loopback tests and must be chosen explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Implicit,
    Starttls,
    None,
}

/// What happens to a message on the IMAP server once it is durably stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AfterStore {
    /// MOVE (or COPY + \Deleted + UID EXPUNGE) to `processed_folder`.
    #[default]
    Move,
    /// Leave it in place, flagged `$CasegateStored` and `\Seen`.
    Flag,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// A short name for logs and status; default `username@host`.
    pub name: Option<String>,
    pub host: String,
    #[serde(default = "default_imap_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// Trust this CA (PEM) in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub pin: CertPinConfig,
    pub username: String,
    #[serde(flatten)]
    pub password: PasswordSource,
    #[serde(default = "default_mailboxes")]
    pub mailboxes: Vec<String>,
    #[serde(default = "default_processed_folder")]
    pub processed_folder: String,
    #[serde(default)]
    pub after_store: AfterStore,
    /// Poll interval when the server has no IDLE (and the IDLE re-issue bound otherwise).
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// Use IDLE when the server advertises it.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Upper bound on every single network step (connect, login, fetch, move).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl ImapConfig {
    /// The name used in logs, status and the mailbox checkpoint table.
    pub fn account_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{}@{}", self.username, self.host),
        }
    }
}

fn default_imap_port() -> u16 {
    993
}
fn default_tls() -> TlsMode {
    TlsMode::Implicit
}
fn default_mailboxes() -> Vec<String> {
    vec!["INBOX".to_string()]
}
fn default_processed_folder() -> String {
    "casegate/processed".to_string()
}
fn default_poll_secs() -> u64 {
    60
}
fn default_timeout_secs() -> u64 {
    60
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "default_smtp_tls")]
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub pin: CertPinConfig,
    pub username: Option<String>,
    #[serde(flatten)]
    pub password: PasswordSource,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_tls() -> TlsMode {
    TlsMode::Starttls
}

/// A mail server's own certificate, trusted for that server only, whoever signed it (a
/// self-signed `openssl req -x509` certificate is its own CA, which rustls refuses as a server
/// certificate even in `ca_file`). Any other certificate the server presents is checked as
/// usual: system roots, `ca_file`, host name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertPinConfig {
    /// SHA-256 of the certificate (DER), hex, colons optional: what `casegate check` prints.
    /// One value or a list (the old and the new one while a certificate is replaced).
    #[serde(default)]
    pub tls_cert_sha256: OneOrMany,
    /// A PEM (or DER) file holding exactly the server's certificate(s).
    pub tls_cert_file: Option<PathBuf>,
}

impl CertPinConfig {
    pub fn is_empty(&self) -> bool {
        self.tls_cert_sha256.0.is_empty() && self.tls_cert_file.is_none()
    }
}

/// A string or a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(OneOrMany(match Either::deserialize(d)? {
            Either::One(s) => vec![s],
            Either::Many(v) => v,
        }))
    }
}

/// Where a password comes from. Only files and environment variables: the command line is
/// visible to every user of the machine.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSource {
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

impl PasswordSource {
    /// Reads the secret now; `Ok(None)` when neither source is configured. A password file
    /// that group or others may read is refused ("chmod 600 PATH").
    pub fn resolve(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(path) = &self.password_file {
            let what = format!("password_file {}", path.display());
            match crate::at_rest::require_private_file(path, "password_file") {
                Ok(Ok(())) => {}
                Ok(Err(loose)) => {
                    return Err(ConfigError::Secret {
                        what,
                        reason: loose.to_string(),
                    });
                }
                Err(e) => {
                    return Err(ConfigError::Secret {
                        what,
                        reason: e.to_string(),
                    });
                }
            }
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Secret {
                what: format!("password_file {}", path.display()),
                reason: e.to_string(),
            })?;
            let text = text.trim_end_matches(['\r', '\n']);
            return Ok(Some(Secret(text.to_string())));
        }
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(v) => Ok(Some(Secret(v))),
                Err(_) => Err(ConfigError::Secret {
                    what: format!("password_env {var}"),
                    reason: "the environment variable is not set".to_string(),
                }),
            };
        }
        Ok(None)
    }
}

/// A password or other secret. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for handing to a protocol library. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The drop folder `serve` watches: any MTA or fetchmail-style tool can deliver here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaildirConfig {
    /// Default: `<data-dir>/Maildir`.
    pub path: Option<PathBuf>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_maildir_poll_ms")]
    pub poll_interval_ms: u64,
}

impl Default for MaildirConfig {
    fn default() -> Self {
        MaildirConfig {
            path: None,
            enabled: true,
            poll_interval_ms: default_maildir_poll_ms(),
        }
    }
}

fn default_maildir_poll_ms() -> u64 {
    500
}

/// Group commit (`[ingest]`): messages waiting at a source are stored together, in one
/// transaction with one fsync, and only then acknowledged to the source.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// At most this many messages per transaction (and per IMAP FETCH).
    #[serde(default = "default_batch_messages")]
    pub batch_messages: usize,
    /// A Maildir batch stops reading files after this long and is stored with what it has.
    /// A batch never waits for mail: it closes as soon as nothing more is waiting.
    #[serde(default = "default_batch_millis")]
    pub batch_millis: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_messages: default_batch_messages(),
            batch_millis: default_batch_millis(),
        }
    }
}

fn default_batch_messages() -> usize {
    100
}

fn default_batch_millis() -> u64 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// A copy that still fails after this long is given up (`dead`).
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u64,
    /// First retry delay; doubles each attempt, with jitter, up to `retry_max_secs`.
    #[serde(default = "default_retry_base_secs")]
    pub retry_base_secs: u64,
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// When a contact has no valid key, send a short stub that names the tracking number and
    /// asks for a key (never case details) instead of only holding the copy.
    #[serde(default)]
    pub stub_when_no_key: bool,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_age_hours: default_max_age_hours(),
            retry_base_secs: default_retry_base_secs(),
            retry_max_secs: default_retry_max_secs(),
            stub_when_no_key: false,
        }
    }
}

fn default_max_age_hours() -> u64 {
    72
}
fn default_retry_base_secs() -> u64 {
    30
}
fn default_retry_max_secs() -> u64 {
    3600
}

/// The analysts' HTTP API and web page, served by `serve` on the same listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `false`: no listener at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Address and port. Loopback by default: put a TLS-terminating proxy in front, or set
    /// the TLS files below, before listening anywhere else.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// PEM certificate chain and private key: with both, the listener speaks only HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Largest request body accepted (a key upload, a notice, a message handed in).
    #[serde(default = "default_http_max_body")]
    pub max_body_bytes: usize,
    /// A web session ends this long after log-in.
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
    /// Store connections for requests (at least 1); requests beyond wait their turn.
    #[serde(default = "default_http_connections")]
    pub store_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: default_http_listen(),
            tls_cert_file: None,
            tls_key_file: None,
            max_body_bytes: default_http_max_body(),
            session_hours: default_session_hours(),
            store_connections: default_http_connections(),
        }
    }
}

impl HttpConfig {
    /// The address to listen on.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| {
            ConfigError::Invalid(format!(
                "[http] listen = {:?} is not an address and port ({e}); write e.g. \"127.0.0.1:8025\"",
                self.listen
            ))
        })
    }
}

fn default_http_listen() -> String {
    "127.0.0.1:8025".to_string()
}
fn default_http_max_body() -> usize {
    10 << 20
}
fn default_session_hours() -> u64 {
    12
}
fn default_http_connections() -> usize {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Vendors' messages must be signed by a key bound to their contact to count as statements.
    #[serde(default)]
    pub require_signed_vendor_statements: bool,
    /// Acknowledgments sent to one sender address per UTC day, at most.
    #[serde(default = "default_ack_limit")]
    pub ack_limit_per_sender_per_day: u32,
    /// Largest message read at all; of a larger one only its head, size and SHA-256 are
    /// quarantined (see [`crate::limits::Limits`]).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// Mail from a participant's address that neither carries a good OpenPGP signature bound
    /// to that participant nor passes sender authentication waits in triage (instead of being
    /// routed with the flag `unauthenticated-sender`).
    #[serde(default)]
    pub require_authenticated_participants: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            require_signed_vendor_statements: false,
            ack_limit_per_sender_per_day: default_ack_limit(),
            max_message_bytes: default_max_message_bytes(),
            require_authenticated_participants: false,
        }
    }
}

fn default_ack_limit() -> u32 {
    3
}
fn default_max_message_bytes() -> u64 {
    crate::limits::DEFAULT_MAX_MESSAGE_BYTES
}

/// Following up on organizations that do not answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupConfig {
    /// An organization notified this many days ago that has not replied is overdue
    /// (`casegate overdue`).
    #[serde(default = "default_overdue_days")]
    pub overdue_days: u32,
    /// `casegate serve` sends each contact of an overdue organization a reminder (encrypted
    /// like any notice), at most once per `reminder_interval_days`.
    #[serde(default)]
    pub remind: bool,
    /// Default: `overdue_days`.
    pub reminder_interval_days: Option<u32>,
}

impl Default for FollowupConfig {
    fn default() -> Self {
        FollowupConfig {
            overdue_days: default_overdue_days(),
            remind: false,
            reminder_interval_days: None,
        }
    }
}

/// Where the sender authentication verdict of inbound mail comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticationSource {
    /// Not checked: every message's verdict is `none`.
    #[default]
    Off,
    /// casegate checks DKIM and DMARC itself (DNS from `dns_servers` or the system).
    Dkim,
    /// The `Authentication-Results` header the coordinator's own MTA added, named by
    /// `trusted_authserv_id`.
    AuthenticationResults,
}

/// `[authentication]`: who vouches for the From address of mail without an OpenPGP signature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationConfig {
    #[serde(default)]
    pub source: AuthenticationSource,
    /// The authserv-id the coordinator's MTA writes into its Authentication-Results header
    /// (usually its host name). Required for `source = "authentication-results"`.
    pub trusted_authserv_id: Option<String>,
    /// Resolvers to ask, `IP` or `IP:PORT` (default: the system's, /etc/resolv.conf).
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Bound on one DNS question.
    #[serde(default = "default_dns_timeout_secs")]
    pub dns_timeout_secs: u64,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig {
            source: AuthenticationSource::Off,
            trusted_authserv_id: None,
            dns_servers: Vec::new(),
            dns_timeout_secs: default_dns_timeout_secs(),
        }
    }
}

impl FollowupConfig {
    pub fn interval_days(&self) -> u32 {
        self.reminder_interval_days.unwrap_or(self.overdue_days)
    }
}

fn default_overdue_days() -> u32 {
    14
}

fn default_dns_timeout_secs() -> u64 {
    5
}

/// `[keys]`: participants' keys over time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// `serve` logs, once a day, the keys (participants' and the coordinator's) that expire
    /// within this many days.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
    /// `serve` looks every contact's key up by WKD once a day.
    #[serde(default)]
    pub refresh_daily: bool,
    #[serde(default)]
    pub wkd: WkdConfig,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            expiry_warning_days: default_expiry_warning_days(),
            refresh_daily: false,
            wkd: WkdConfig::default(),
        }
    }
}

fn default_expiry_warning_days() -> u32 {
    30
}

/// `[keys.wkd]`: Web Key Directory lookups (HTTPS; certificates checked as for IMAP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WkdConfig {
    /// Trust this CA (PEM) in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Bound on each network step of one lookup.
    #[serde(default = "default_wkd_timeout_secs")]
    pub timeout_secs: u64,
    /// Connect to this address instead of what DNS says for a host (`"host" = "IP:PORT"`);
    /// the certificate is still checked for the host's own name. For tests and split DNS.
    #[serde(default)]
    pub resolve: std::collections::BTreeMap<String, String>,
}

impl Default for WkdConfig {
    fn default() -> Self {
        WkdConfig {
            ca_file: None,
            timeout_secs: default_wkd_timeout_secs(),
            resolve: Default::default(),
        }
    }
}

fn default_wkd_timeout_secs() -> u64 {
    20
}

/// The configuration together with where its files live.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub data_dir: PathBuf,
    /// The file the configuration came from, if any.
    pub source: Option<PathBuf>,
}

impl Settings {
    /// `--config FILE` if given; else `casegate.toml` in the working directory if present; else
    /// built-in defaults. `--data-dir` defaults to `./casegate-data`.
    pub fn load(config: Option<&Path>, data_dir: Option<&Path>) -> Result<Settings, ConfigError> {
        let path = match config {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let p = PathBuf::from("casegate.toml");
                p.is_file().then_some(p)
            }
        };
        let cfg = match &path {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        let data_dir = data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("casegate-data"));
        cfg.validate()?;
        Ok(Settings {
            config: cfg,
            data_dir,
            source: path,
        })
    }

    pub fn store_path(&self) -> PathBuf {
        self.config
            .store
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("casegate.sqlite"))
    }

    /// This instance's name in mailbox leases: `[store] instance`, else `HOSTNAME:DATA-DIR`.
    pub fn instance_name(&self) -> String {
        if let Some(name) = &self.config.store.instance {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let dir = std::fs::canonicalize(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        format!("{host}:{}", dir.display())
    }

    pub fn key_file(&self) -> PathBuf {
        self.config
            .coordinator
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("coordinator.key"))
    }

    /// Held by the running `casegate serve` (one daemon per data dir).
    pub fn lock_path(&self) -> PathBuf {
        self.data_dir.join("serve.lock")
    }

    pub fn maildir_path(&self) -> PathBuf {
        self.config
            .maildir
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("Maildir"))
    }
}

impl Config {
    /// The bounds on one inbound message: `[limits]` with `[policy] max_message_bytes`.
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            max_message_bytes: self.policy.max_message_bytes,
            ..self.limits
        }
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))
    }

    /// Checks what TOML cannot: limits in range, plain addresses, and the rest
    /// [`Settings::load`] refuses to start with. Public for the `config` fuzz target.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits().validate().map_err(ConfigError::Invalid)?;
        for addr in [
            &self.coordinator.address,
            &self.coordinator.reporting_address,
        ] {
            // It is the From of everything casegate sends: it must be a plain addr-spec.
            if let Err(e) = crate::header::AddrSpec::parse(addr) {
                return Err(ConfigError::Invalid(format!(
                    "coordinator address {addr:?} is not a plain email address ({e}); set [coordinator] address = \"cert@your.domain\""
                )));
            }
        }
        if let Some(url) = &self.store.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "[store] url {url:?} is not a PostgreSQL URL; write postgres://USER@HOST:PORT/DATABASE (or remove url to use the SQLite file)"
            )));
        }
        if !(4..=3600).contains(&self.store.lease_secs) {
            return Err(ConfigError::Invalid(format!(
                "[store] lease_secs = {} is out of range; use 4 to 3600 (default 20)",
                self.store.lease_secs
            )));
        }
        if let Some(p) = &self.coordinator.private_address
            && !p.contains('@')
        {
            return Err(ConfigError::Invalid(format!(
                "[coordinator] private_address {p:?} is not an email address"
            )));
        }
        if self.followup.overdue_days == 0 || self.followup.interval_days() == 0 {
            return Err(ConfigError::Invalid(
                "[followup] overdue_days and reminder_interval_days must be at least 1".into(),
            ));
        }
        if !(1..=10_000).contains(&self.ingest.batch_messages) {
            return Err(ConfigError::Invalid(format!(
                "[ingest] batch_messages is {}; it must be between 1 (one transaction per message) and 10000",
                self.ingest.batch_messages
            )));
        }
        if self.http.enabled {
            self.http.listen_addr()?;
            if self.http.tls_cert_file.is_some() != self.http.tls_key_file.is_some() {
                return Err(ConfigError::Invalid(
                    "[http] TLS needs both tls_cert_file and tls_key_file (PEM), or neither".into(),
                ));
            }
            if self.http.session_hours == 0 || self.http.max_body_bytes == 0 {
                return Err(ConfigError::Invalid(
                    "[http] session_hours and max_body_bytes must be above 0".into(),
                ));
            }
        }
        if self.authentication.source == AuthenticationSource::AuthenticationResults
            && self
                .authentication
                .trusted_authserv_id
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            return Err(ConfigError::Invalid(
                "[authentication] source = \"authentication-results\" needs trusted_authserv_id: the authserv-id your MTA writes (usually its host name)".into(),
            ));
        }
        for server in &self.authentication.dns_servers {
            crate::trust::dns_server_address(server).map_err(ConfigError::Invalid)?;
        }
        for (host, to) in &self.keys.wkd.resolve {
            to.parse::<std::net::SocketAddr>().map_err(|_| {
                ConfigError::Invalid(format!(
                    "[keys.wkd] resolve: {host:?} = {to:?} is not IP:PORT"
                ))
            })?;
        }
        for imap in &self.imap {
            if imap.mailboxes.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "[[imap]] {}: mailboxes is empty; list at least one, e.g. mailboxes = [\"INBOX\"]",
                    imap.account_name()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_example_parses() {
        let cfg = Config::from_toml(
            r#"
[coordinator]
address = "cert@example.test"
reporting_address = "cert@example.test"
key_file = "casegate-data/coordinator.key"

[store]
path = "casegate-data/casegate.sqlite"

[[imap]]
host = "127.0.0.1"
port = 10143
tls = "none"
ca_file = "path/to/ca.pem"
username = "cert@example.test"
password_file = "path/to/secret"
mailboxes = ["INBOX"]
processed_folder = "casegate/processed"

[smtp]
host = "127.0.0.1"
port = 10025
tls = "none"
ca_file = "path/to/ca.pem"
username = "cert@example.test"
password_file = "path/to/secret"
"#,
        )
        .unwrap();
        assert_eq!(cfg.imap.len(), 1);
        assert_eq!(cfg.imap[0].tls, TlsMode::None);
        assert_eq!(cfg.imap[0].port, 10143);
        assert_eq!(
            cfg.imap[0].password.password_file.as_deref(),
            Some(Path::new("path/to/secret"))
        );
        let smtp = cfg.smtp.unwrap();
        assert_eq!(smtp.port, 10025);
        assert_eq!(smtp.username.as_deref(), Some("cert@example.test"));
    }

    #[test]
    fn the_example_config_states_the_limits_defaults() {
        let cfg = Config::from_toml(include_str!("../config/casegate.example.toml")).unwrap();
        assert_eq!(cfg.limits(), Config::default().limits());
        assert_eq!(cfg.limits(), crate::limits::Limits::default());
        let small =
            Config::from_toml("[limits]\nmax_parts = 5\n[policy]\nmax_message_bytes = 2048\n")
                .unwrap()
                .limits();
        assert_eq!((small.max_parts, small.max_message_bytes), (5, 2048));
        assert_eq!(
            small.max_headers,
            crate::limits::Limits::default().max_headers
        );
        assert!(Config::from_toml("[limits]\nmax_part = 5\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[coordinator]\nadress = \"x@y\"\n").unwrap_err();
        assert!(err.contains("adress"), "{err}");
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn password_env_missing_is_an_error() {
        let src = PasswordSource {
            password_file: None,
            password_env: Some("CASEGATE_TEST_SURELY_UNSET_VAR".into()),
        };
        let err = src.resolve().unwrap_err().to_string();
        assert!(err.contains("CASEGATE_TEST_SURELY_UNSET_VAR"));
        assert!(!err.contains("hunter"));
    }
}
