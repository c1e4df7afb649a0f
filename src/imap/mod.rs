//! IMAP in: watch the configured mailboxes and hand every message to the pipeline exactly once.
//!
//! Exactly once rests on one rule: a message is acknowledged to the server (moved to the
//! processed folder, or flagged) only after the transaction that stored it — and advanced the
//! mailbox checkpoint (UIDVALIDITY, last UID) — has committed. A crash between the two leaves a
//! stored message in the mailbox; the next session fetches it again, the store recognises the
//! bytes (SHA-256) and says `duplicate`, and only then is it acknowledged. Nothing is removed from
//! the server before it is durably stored.
//!
//! Acknowledgments are batched while a backlog is being fetched ([`acknowledge`]): one MOVE per
//! thousand committed UIDs during an initial sync, one per message when idle.
//!
//! Layout: [`connection`] (TCP, TLS, login), `session` (one mailbox: select, sync, acknowledge,
//! IDLE/poll, reconnect), `commit` (the fetched batches stored in order on a thread of their
//! own, the next one read while one is stored), [`acknowledge`] (when to acknowledge: a pure decision), [`status`]
//! (what a status command or log line shows).

pub mod acknowledge;
mod commit;
pub mod connection;
mod session;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::ImapConfig;
use crate::intake::Partial;
use crate::limits::Limits;
use crate::store::{Checkpoint, MessageSource};

pub use acknowledge::AckPolicy;
pub use connection::{CheckReport, check};
pub use status::{ImapStatus, MailboxStatus};

/// The one thing IMAP needs from the rest of casegate: durably store a message and advance the
/// checkpoint in the SAME transaction. Implemented by the pipeline; calls are blocking (SQLite)
/// and are made from `tokio::task::spawn_blocking`.
pub trait MessageSink: Send + Sync + 'static {
    /// Runs the pipeline on `raw`; returns only after the commit. Err only for store failures (a
    /// bad message is quarantined = Ok).
    fn deliver(&self, raw: &[u8], source: MessageSource) -> Result<Delivered, SinkError>;
    /// [`MessageSink::deliver`] of bytes the caller gives up (stored without a copy).
    fn deliver_owned(&self, raw: Vec<u8>, source: MessageSource) -> Result<Delivered, SinkError> {
        self.deliver(&raw, source)
    }
    /// Stores a batch of fetched messages (in UID order), ideally in ONE transaction (see
    /// [`crate::pipeline::PipelineRef::process_batch`]); returns only after the commit. The
    /// result holds what became of the first messages, in order, all committed; when fewer
    /// than the batch, the error is why the next one was not stored and the rest were not
    /// tried. The default stores them one by one with [`MessageSink::deliver_owned`].
    fn deliver_batch(&self, batch: Vec<(Vec<u8>, MessageSource)>) -> Batch {
        let mut done = Batch::default();
        for (raw, source) in batch {
            match self.deliver_owned(raw, source) {
                Ok(d) => done.delivered.push(d),
                Err(e) => {
                    done.failure = Some(e);
                    break;
                }
            }
        }
        done
    }
    /// The first of [`MessageSink::deliver_batch`] in steps, so that a backlog's next batch is
    /// read (parsed and opened, [`Staged::read`], on any thread) while this one is stored
    /// ([`MessageSink::store_batch`]). Counts the batch's tries before anything reads it. The
    /// default does nothing ahead.
    fn count_batch(&self, batch: Vec<(Vec<u8>, MessageSource)>) -> Staged {
        Staged(StagedWork::Raw(batch))
    }
    /// Stores a batch from [`MessageSink::count_batch`] (read or not); as
    /// [`MessageSink::deliver_batch`].
    fn store_batch(&self, staged: Staged) -> Batch {
        match staged.0 {
            StagedWork::Raw(batch) => self.deliver_batch(batch),
            _ => Batch {
                delivered: Vec::new(),
                failure: Some(SinkError(
                    "internal: this sink cannot store a counted batch; it is fetched again".into(),
                )),
            },
        }
    }
    /// Where processing of this mailbox stands (`None`: never seen).
    fn checkpoint(&self, account: &str, mailbox: &str) -> Result<Option<Checkpoint>, SinkError>;
    /// The server changed the mailbox's UIDVALIDITY: every old UID is meaningless. Record the new
    /// value with last UID 0 (the resync that follows relies on the store's SHA-256 dedupe).
    /// Implement with [`crate::store::Store::mailbox_reset`].
    fn reset_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<(), SinkError>;
    /// Several instances share one store: take (or renew) this instance's lease on the
    /// mailbox for `ttl`; `false` while another instance holds it. Only the holder watches.
    /// Default: always held (a sink that is the only one).
    fn take_lease(
        &self,
        _account: &str,
        _mailbox: &str,
        _ttl: Duration,
    ) -> Result<bool, SinkError> {
        Ok(true)
    }
    /// Gives the lease up (shutdown), so another instance takes over at once.
    fn release_lease(&self, _account: &str, _mailbox: &str) {}

    /// The bounds on one message: a message over `max_message_bytes` is never held whole (at
    /// most `max_message_bytes` + 1 bytes of it are fetched at once), and one that failed
    /// `max_attempts` times is given up.
    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// Stores what is known of a message not fetched whole (its head, size and SHA-256; see
    /// [`crate::pipeline::Pipeline::process_partial`]) in quarantine, advancing the checkpoint
    /// like [`MessageSink::deliver`]. The default stores the head as if it were the message.
    fn deliver_partial(
        &self,
        partial: &Partial,
        source: MessageSource,
    ) -> Result<Delivered, SinkError> {
        self.deliver(&partial.head, source)
    }

    /// Counts a failed fetch of the message at `source` (durably); returns the count so far.
    /// The default counts nothing.
    fn record_failure(&self, _source: &MessageSource, _error: &str) -> Result<u32, SinkError> {
        Ok(1)
    }

    /// Failed tries counted for the message at `source`, and the last error.
    fn failed_attempts(&self, _source: &MessageSource) -> Result<(u32, String), SinkError> {
        Ok((0, String::new()))
    }

    /// Gives up on a message that could not be fetched `tries` times: records it in
    /// quarantine (no content), advancing the checkpoint, so it can be acknowledged.
    fn give_up(
        &self,
        source: MessageSource,
        size: u64,
        tries: u32,
        error: &str,
    ) -> Result<Delivered, SinkError> {
        let partial = Partial {
            head: Vec::new(),
            size,
            sha256: None,
            reason: format!("could not be fetched {tries} times: {error}"),
        };
        self.deliver_partial(&partial, source)
    }
}

/// What the pipeline did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// `routed`, `triage`, `quarantine` or `duplicate`.
    pub outcome: String,
}

/// A fetched batch between [`MessageSink::count_batch`] and [`MessageSink::store_batch`].
pub struct Staged(pub(crate) StagedWork);

pub(crate) enum StagedWork {
    /// Nothing done yet.
    Raw(Vec<(Vec<u8>, MessageSource)>),
    /// Counted by the pipeline, with what reading it needs.
    Counted {
        batch: crate::pipeline::CountedBatch,
        keyring: Arc<crate::keyring::Keyring>,
        rules: crate::pipeline::Rules,
    },
    /// Could not be counted: nothing of it is stored.
    Failed(SinkError),
    /// Counted and read, with the keyring it was read with.
    Read {
        batch: crate::pipeline::ReadBatch,
        keyring: Arc<crate::keyring::Keyring>,
    },
}

impl Staged {
    /// Whether the batch after this one may be counted before this one is stored: not when
    /// it goes one message at a time (see [`crate::pipeline::PipelineRef::count_batch`]).
    pub fn grouped(&self) -> bool {
        match &self.0 {
            StagedWork::Counted { batch, .. } => batch.grouped(),
            StagedWork::Read { .. } | StagedWork::Raw(_) | StagedWork::Failed(_) => true,
        }
    }

    /// Parses and opens the messages of a counted batch, touching no store (on every core).
    pub fn read(self) -> Staged {
        match self.0 {
            StagedWork::Counted {
                batch,
                keyring,
                rules,
            } => Staged(StagedWork::Read {
                batch: crate::pipeline::read_batch(batch, &keyring, &rules),
                keyring,
            }),
            other => Staged(other),
        }
    }
}

/// What [`MessageSink::deliver_batch`] did: the messages stored, from the first, and why the
/// next one was not.
#[derive(Debug, Default)]
pub struct Batch {
    pub delivered: Vec<Delivered>,
    pub failure: Option<SinkError>,
}

/// The sink could not store a message (the store failed). The message is not acknowledged and
/// will be fetched again after a reconnect.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl From<crate::store::StoreError> for SinkError {
    fn from(e: crate::store::StoreError) -> Self {
        SinkError(e.to_string())
    }
}

/// Why a connection or a watch failed. Messages name the server and what to check; they never
/// contain the password.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("IMAP account {account}: {message}")]
    Config { account: String, message: String },
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("TLS with {server} failed: {message}")]
    Tls { server: String, message: String },
    #[error("{server} refused the login of {user}: {message}")]
    Auth {
        server: String,
        user: String,
        message: String,
    },
    #[error("{server}: no answer within {secs} s to {step}")]
    Timeout {
        server: String,
        step: String,
        secs: u64,
    },
    #[error("{server}: {step} failed: {message}")]
    Protocol {
        server: String,
        step: String,
        message: String,
    },
    #[error("{server}: {message}")]
    Server { server: String, message: String },
    #[error("storing a message failed: {0}")]
    Sink(#[from] SinkError),
    /// This instance no longer holds the mailbox's lease (another took over, or the store
    /// could not be asked): it stops watching and waits to take the lease again.
    #[error("{0}")]
    Lease(String),
}

/// Knobs that are not in the config file (tests and benchmarks use short ones).
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// First reconnect delay; doubles per failure (with jitter) up to `reconnect_max`.
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// At most this many messages per FETCH.
    pub batch_messages: usize,
    /// At most this many bytes per FETCH (one larger message still goes alone).
    pub batch_bytes: u64,
    /// A mailbox lease lasts this long; it is renewed every third of it while watching, and
    /// an instance on standby tries to take it every quarter.
    pub lease_ttl: Duration,
    /// When committed messages are acknowledged (see [`acknowledge`]).
    pub acknowledge: AckPolicy,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            reconnect_base: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            batch_messages: 100,
            batch_bytes: 32 * 1024 * 1024,
            lease_ttl: Duration::from_secs(20),
            acknowledge: AckPolicy::default(),
        }
    }
}

/// Watches every mailbox of one account until `shutdown` becomes true (or its sender is
/// dropped): one connection and task per mailbox; connection failures are logged and retried
/// with backoff, so this returns `Err` only for a configuration that can never work.
pub async fn watch(
    account: ImapConfig,
    sink: Arc<dyn MessageSink>,
    shutdown: watch::Receiver<bool>,
    status: Arc<ImapStatus>,
) -> Result<(), ImapError> {
    watch_with(account, sink, shutdown, status, WatchOptions::default()).await
}

/// [`watch`] with explicit [`WatchOptions`].
pub async fn watch_with(
    account: ImapConfig,
    sink: Arc<dyn MessageSink>,
    shutdown: watch::Receiver<bool>,
    status: Arc<ImapStatus>,
    options: WatchOptions,
) -> Result<(), ImapError> {
    let server = Arc::new(connection::Server::from_config(&account)?);
    let mut tasks = tokio::task::JoinSet::new();
    for mailbox in &account.mailboxes {
        status.register(&server.account, mailbox);
        let worker = session::MailboxWorker {
            server: server.clone(),
            mailbox: mailbox.clone(),
            sink: sink.clone(),
            status: status.clone(),
            shutdown: shutdown.clone(),
            options: options.clone(),
            suspects: (0, Default::default()),
        };
        tasks.spawn(worker.run());
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(account = %server.account, error = %e, "IMAP mailbox task ended abnormally");
        }
    }
    Ok(())
}

impl ImapError {
    /// A failed protocol step, with the server's own words when it answered NO or BAD.
    pub(crate) fn protocol(server: String, step: &str, e: async_imap::error::Error) -> ImapError {
        ImapError::Protocol {
            server,
            step: step.to_string(),
            message: describe(&e),
        }
    }
}

/// async-imap renders a NO/BAD reply as Rust debug output; a log line wants the server's text.
pub(crate) fn describe(e: &async_imap::error::Error) -> String {
    use async_imap::error::Error;
    match e {
        Error::No(t) => format!("the server answered NO: {}", server_text(t)),
        Error::Bad(t) => format!("the server answered BAD: {}", server_text(t)),
        Error::ConnectionLost => "the connection was closed".to_string(),
        other => other.to_string(),
    }
}

fn server_text(debug: &str) -> String {
    // `code: None, info: Some("text")` or `outcome: Outcome { .., information: Some("text") }`
    let re = regex::Regex::new(r#"info(?:rmation)?: Some\("((?:[^"\\]|\\.)*)"\)"#);
    match re.ok().and_then(|re| re.captures(debug)) {
        Some(c) => c[1].replace("\\\"", "\"").replace("\\\\", "\\"),
        None => debug.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_read_as_text() {
        let no = async_imap::error::Error::No(
            r#"outcome: Outcome { code: None, information: Some("Mailbox doesn't exist: \"X\" (0.001 secs).") }"#.into(),
        );
        assert_eq!(
            describe(&no),
            r#"the server answered NO: Mailbox doesn't exist: "X" (0.001 secs)."#
        );
        let bad = async_imap::error::Error::Bad(
            r#"code: None, info: Some("Error in IMAP command")"#.into(),
        );
        assert_eq!(
            describe(&bad),
            "the server answered BAD: Error in IMAP command"
        );
    }
}
