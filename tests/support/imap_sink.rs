//! A test-only [`MessageSink`] that writes into a real [`Store`]: every message goes to triage
//! with its SHA-256, the way the pipeline will store it (the real pipeline replaces this).

use std::path::Path;
use std::sync::{Arc, Mutex};

use casegate::imap::{Delivered, MessageSink, SinkError};
use casegate::store::{Checkpoint, Disposition, MessageSource, NewMessage, Store};
use sha2::Digest;

pub struct StoreSink {
    pub store: Mutex<Store>,
    /// What [`MessageSink::limits`] answers.
    pub limits: casegate::limits::Limits,
    /// The bytes of each batch handed to [`MessageSink::deliver_batch`], in order.
    pub batches: Mutex<Vec<u64>>,
}

impl StoreSink {
    pub fn open(path: &Path) -> Arc<StoreSink> {
        Self::open_with(path, casegate::limits::Limits::default())
    }

    /// A store at `path` whose sink has these bounds on one message.
    pub fn open_with(path: &Path, limits: casegate::limits::Limits) -> Arc<StoreSink> {
        Arc::new(StoreSink {
            store: Mutex::new(Store::open(path).unwrap()),
            limits,
            batches: Mutex::new(Vec::new()),
        })
    }
}

impl StoreSink {
    /// A store in memory: no fsync, for measuring the IMAP side alone.
    pub fn in_memory() -> Arc<StoreSink> {
        Arc::new(StoreSink {
            store: Mutex::new(Store::open_in_memory().unwrap()),
            limits: casegate::limits::Limits::default(),
            batches: Mutex::new(Vec::new()),
        })
    }
}

pub fn sha256_hex(raw: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(raw))
}

impl MessageSink for StoreSink {
    fn deliver(&self, raw: &[u8], source: MessageSource) -> Result<Delivered, SinkError> {
        let message = NewMessage {
            reason: "imap test sink".into(),
            ..NewMessage::inbound(raw, source, chrono::Utc::now(), Disposition::Triage)
        };
        let mut store = self.store.lock().map_err(|e| SinkError(e.to_string()))?;
        let c = store.commit_message(&message)?;
        Ok(Delivered {
            outcome: if c.duplicate { "duplicate" } else { "triage" }.into(),
        })
    }

    fn deliver_batch(&self, batch: Vec<(Vec<u8>, MessageSource)>) -> casegate::imap::Batch {
        if let Ok(mut b) = self.batches.lock() {
            b.push(batch.iter().map(|(raw, _)| raw.len() as u64).sum());
        }
        let mut done = casegate::imap::Batch::default();
        for (raw, source) in batch {
            match self.deliver(&raw, source) {
                Ok(d) => done.delivered.push(d),
                Err(e) => {
                    done.failure = Some(e);
                    break;
                }
            }
        }
        done
    }

    fn limits(&self) -> casegate::limits::Limits {
        self.limits
    }

    fn deliver_partial(
        &self,
        partial: &casegate::intake::Partial,
        source: MessageSource,
    ) -> Result<Delivered, SinkError> {
        let message = NewMessage {
            reason: format!(
                "imap test sink: {}; size {}; sha256 {}",
                partial.reason,
                partial.size,
                partial.sha256.as_deref().unwrap_or("-")
            ),
            ..NewMessage::inbound(
                &partial.head,
                source,
                chrono::Utc::now(),
                Disposition::Quarantine,
            )
        };
        let mut store = self.store.lock().map_err(|e| SinkError(e.to_string()))?;
        store.commit_message(&message)?;
        Ok(Delivered {
            outcome: "quarantine".into(),
        })
    }

    fn checkpoint(&self, account: &str, mailbox: &str) -> Result<Option<Checkpoint>, SinkError> {
        let store = self.store.lock().map_err(|e| SinkError(e.to_string()))?;
        Ok(store.mailbox_checkpoint(account, mailbox)?)
    }

    fn reset_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<(), SinkError> {
        let mut store = self.store.lock().map_err(|e| SinkError(e.to_string()))?;
        Ok(store.mailbox_reset(account, mailbox, uidvalidity)?)
    }
}

/// SHA-256 of every stored message, with how often each occurs (always 1 if dedupe holds).
pub fn stored_hashes(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT sha256 FROM messages ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// An `[[imap]]` table for `user` on `servers`, parsed like a config file would be (so it keeps
/// working when fields are added). `tls` is `none` (plain port), `starttls` (plain port) or
/// `implicit` (IMAPS port); `extra` is more TOML lines (e.g. `after_store = "flag"`).
pub fn imap_config(
    servers: &super::MailServers,
    user: &str,
    tls: &str,
    extra: &str,
) -> casegate::config::ImapConfig {
    let port = if tls == "implicit" {
        servers.imaps_port
    } else {
        servers.imap_port
    };
    let text = format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nusername = \"{user}\"\npassword_file = \"{}\"\ntimeout_secs = 10\n{extra}\n",
        servers.password_file.display()
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A unique, recognisable test message.
pub fn test_message(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "From: reporter@example.test\r\nTo: cert@example.test\r\nSubject: {tag} {i}\r\nMessage-ID: <{tag}-{i}@example.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nmessage {i} of {tag}\r\n"
    )
    .into_bytes()
}

/// Polls `cond` every 50 ms until it holds or `secs` pass; false on timeout.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}

/// `casegate::imap::watch_with` running on its own thread and runtime, so tests stay plain
/// blocking code.
pub struct Watcher {
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<Result<(), casegate::imap::ImapError>>>,
    pub status: Arc<casegate::imap::ImapStatus>,
}

/// Reconnects quickly: tests restart servers on purpose.
pub fn fast_options() -> casegate::imap::WatchOptions {
    casegate::imap::WatchOptions {
        reconnect_base: std::time::Duration::from_millis(100),
        reconnect_max: std::time::Duration::from_secs(2),
        ..casegate::imap::WatchOptions::default()
    }
}

impl Watcher {
    pub fn start(
        config: casegate::config::ImapConfig,
        sink: Arc<dyn MessageSink>,
        options: casegate::imap::WatchOptions,
    ) -> Watcher {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let status = Arc::new(casegate::imap::ImapStatus::new());
        let st = status.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(casegate::imap::watch_with(config, sink, rx, st, options))
        });
        Watcher {
            shutdown: tx,
            thread: Some(thread),
            status,
        }
    }

    /// Asks for shutdown and waits for `watch` to return.
    pub fn stop(mut self) -> Result<(), casegate::imap::ImapError> {
        let _ = self.shutdown.send(true);
        self.thread.take().unwrap().join().unwrap()
    }

    /// Asks for shutdown and waits for `watch` to return, failing the test if it has not
    /// within `limit` (a bound on an event, chosen far from what a hang would take).
    pub fn stop_within(
        mut self,
        limit: std::time::Duration,
    ) -> Result<(), casegate::imap::ImapError> {
        let _ = self.shutdown.send(true);
        let thread = self.thread.take().unwrap();
        let end = std::time::Instant::now() + limit;
        while !thread.is_finished() {
            assert!(
                std::time::Instant::now() < end,
                "the watcher did not stop within {limit:?} of the shutdown request"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        thread.join().unwrap()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Log lines of the code under test go to the test's output (shown when a test fails).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "casegate=info".into()),
        )
        .with_test_writer()
        .try_init();
}
