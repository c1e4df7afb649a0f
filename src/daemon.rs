//! `casegate serve`: wires the watchers (Maildir drop folder, IMAP accounts) and the outbox
//! sender to one pipeline, and stops them all on SIGTERM/SIGINT. It holds no logic of its own.
//!
//! Shutdown is a `watch` channel passed down to every task: each finishes the message in hand
//! (a message is only acknowledged to its source after its commit) and returns.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::app::{self, AppError};
use crate::config::Settings;
use crate::imap::ImapStatus;
use crate::pipeline::{Inbound, Outcome, Pipeline, PipelineError};
use crate::store::{Location, MessageSource, Store};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("cannot prepare the Maildir drop folder {path}: {source}")]
    Maildir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
    #[error(
        "another casegate serve ({pid}) is running on the data dir {data_dir}; stop it first, or give this one another --data-dir"
    )]
    AlreadyRunning { pid: String, data_dir: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The one pipeline every watcher feeds. SQLite writes are serialized anyway; a mutex keeps the
/// single connection in one place. `instance` names this process in mailbox leases; `owed` is
/// signalled after a commit that left the outbox side something to pay (an acknowledgment, a
/// relay), so it does not wait for its next round.
#[derive(Clone)]
pub struct SharedPipeline(Arc<Mutex<Pipeline>>, Arc<str>, Arc<tokio::sync::Notify>);

impl SharedPipeline {
    pub fn new(p: Pipeline) -> SharedPipeline {
        SharedPipeline::for_instance(p, "casegate")
    }

    /// A pipeline that takes mailbox leases as `instance` (see `Settings::instance_name`).
    pub fn for_instance(p: Pipeline, instance: &str) -> SharedPipeline {
        SharedPipeline(
            Arc::new(Mutex::new(p)),
            Arc::from(instance),
            Arc::new(tokio::sync::Notify::new()),
        )
    }

    /// Signalled after a commit that owes the outbox side work (see [`SharedPipeline`]).
    pub fn owed(&self) -> Arc<tokio::sync::Notify> {
        self.2.clone()
    }

    /// Wakes the outbox side when one of `outcomes` owes it an acknowledgment or a relay.
    fn note_owed<'o>(&self, mut outcomes: impl Iterator<Item = &'o Outcome>) {
        let owes = |o: &Outcome| {
            o.acknowledgment.is_some() || o.relay.as_deref().is_some_and(|r| r.starts_with("owed"))
        };
        if outcomes.any(owes) {
            self.2.notify_one();
        }
    }

    /// Reads message files within `max_message_bytes`, in order, and stores them with group
    /// commit (one transaction), on a blocking thread; returns after the commit. Reading stops
    /// after `batch.batch_millis` or [`MAILDIR_BATCH_BYTES`] (at least one file is read).
    ///
    /// Returns how many of `paths` were taken, and the files stored (with their outcome) in
    /// the order taken; with a store failure, the files before it are stored and the rest are
    /// not. A file that cannot be read is not stored yet (each failure is counted; after
    /// `max_attempts` it is quarantined unread); one that is gone is skipped.
    pub async fn process_files(
        &self,
        paths: Vec<PathBuf>,
        batch: crate::config::IngestConfig,
    ) -> (usize, Vec<(PathBuf, Outcome)>, Option<PipelineError>) {
        let inner = self.0.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let limits = *inner.lock().unwrap_or_else(|e| e.into_inner()).limits();
            // Read (and for a large file, hash) before taking the pipeline: IMAP commits go on.
            let started = std::time::Instant::now();
            let mut read = Vec::new();
            let mut bytes = 0u64;
            for path in paths {
                if !read.is_empty()
                    && (started.elapsed().as_millis() >= u128::from(batch.batch_millis)
                        || bytes >= MAILDIR_BATCH_BYTES)
                {
                    break;
                }
                let intake = crate::intake::read_file(&path, &limits);
                bytes += match &intake {
                    Ok(crate::intake::Intake::Whole(raw)) => raw.len() as u64,
                    Ok(crate::intake::Intake::Partial(p)) => p.head.len() as u64,
                    Err(_) => 0,
                };
                read.push((path, intake));
            }
            let taken = read.len();
            let mut p = inner.lock().unwrap_or_else(|e| e.into_inner());
            let mut stored = Vec::new();
            let mut paths = Vec::new();
            let mut batch = Vec::new();
            for (path, intake) in read {
                let source = MessageSource::Maildir(path.display().to_string());
                let input = match intake {
                    Ok(crate::intake::Intake::Whole(raw)) => Inbound::Whole(raw),
                    Ok(crate::intake::Intake::Partial(part)) => Inbound::Partial(part),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        let why = e.to_string();
                        let given_up = p.record_failed_attempt(&source, &why).and_then(|tries| {
                            if tries < limits.max_attempts {
                                tracing::warn!(file = %path.display(), error = %why, tries, "Maildir: unreadable; left in new/, tried again later");
                                return Ok(None);
                            }
                            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                            p.give_up_unread(source, size, tries, &why).map(Some)
                        });
                        match given_up {
                            Ok(Some(o)) => stored.push((path, o)),
                            Ok(None) => {}
                            Err(e) => return (taken, stored, Some(e)),
                        }
                        continue;
                    }
                };
                paths.push(path);
                batch.push((input, source));
            }
            let done = p.process_batch(batch);
            stored.extend(paths.into_iter().zip(done.outcomes));
            (taken, stored, done.failure)
        })
        .await;
        match joined {
            Ok(r) => {
                self.note_owed(r.1.iter().map(|(_, o)| o));
                r
            }
            Err(e) => (
                0,
                Vec::new(),
                Some(PipelineError::Store(crate::store::StoreError::Invalid(
                    format!("pipeline task failed: {e}"),
                ))),
            ),
        }
    }

    /// What IMAP is told of a stored batch (and the outbox side woken when it owes).
    fn batch_done(&self, stored: crate::pipeline::Stored) -> crate::imap::Batch {
        self.note_owed(stored.outcomes.iter());
        crate::imap::Batch {
            delivered: stored
                .outcomes
                .into_iter()
                .map(|o| crate::imap::Delivered {
                    outcome: o.outcome.to_string(),
                })
                .collect(),
            failure: stored
                .failure
                .map(|e| crate::imap::SinkError(e.to_string())),
        }
    }

    /// Runs `f` with the pipeline locked, on the calling thread (for short store reads).
    pub fn with<T>(&self, f: impl FnOnce(&mut Pipeline) -> T) -> T {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p)
    }
}

/// The pipeline as IMAP's sink: the message and the mailbox checkpoint commit together.
impl crate::imap::MessageSink for SharedPipeline {
    fn deliver(
        &self,
        raw: &[u8],
        source: MessageSource,
    ) -> Result<crate::imap::Delivered, crate::imap::SinkError> {
        let outcome = self
            .with(|p| p.process(raw, source))
            .map_err(|e| crate::imap::SinkError(e.to_string()))?;
        self.note_owed(std::iter::once(&outcome));
        Ok(crate::imap::Delivered {
            outcome: outcome.outcome.to_string(),
        })
    }

    fn deliver_owned(
        &self,
        raw: Vec<u8>,
        source: MessageSource,
    ) -> Result<crate::imap::Delivered, crate::imap::SinkError> {
        let outcome = self
            .with(|p| p.process_owned(raw, source))
            .map_err(|e| crate::imap::SinkError(e.to_string()))?;
        self.note_owed(std::iter::once(&outcome));
        Ok(crate::imap::Delivered {
            outcome: outcome.outcome.to_string(),
        })
    }

    fn deliver_batch(&self, batch: Vec<(Vec<u8>, MessageSource)>) -> crate::imap::Batch {
        let batch = batch
            .into_iter()
            .map(|(raw, source)| (Inbound::Whole(raw), source))
            .collect();
        let stored = self.with(|p| p.process_batch(batch));
        self.batch_done(stored)
    }

    fn count_batch(&self, batch: Vec<(Vec<u8>, MessageSource)>) -> crate::imap::Staged {
        use crate::imap::{Staged, StagedWork};
        let batch = batch
            .into_iter()
            .map(|(raw, source)| (Inbound::Whole(raw), source))
            .collect();
        match self.with(|p| p.count_batch(batch)) {
            Ok((batch, keyring, rules)) => Staged(StagedWork::Counted {
                batch,
                keyring,
                rules,
            }),
            // The keys could not be read: nothing is stored (the batch is fetched again).
            Err(e) => Staged(StagedWork::Failed(crate::imap::SinkError(e.to_string()))),
        }
    }

    fn store_batch(&self, staged: crate::imap::Staged) -> crate::imap::Batch {
        use crate::imap::StagedWork;
        let stored = match staged.0 {
            StagedWork::Raw(batch) => return self.deliver_batch(batch),
            StagedWork::Failed(e) => {
                return crate::imap::Batch {
                    delivered: Vec::new(),
                    failure: Some(e),
                };
            }
            StagedWork::Counted { batch, keyring, .. } => {
                self.with(|p| p.store_read(crate::pipeline::ReadBatch::unread(batch), &keyring))
            }
            StagedWork::Read { batch, keyring } => self.with(|p| p.store_read(batch, &keyring)),
        };
        self.batch_done(stored)
    }

    fn checkpoint(
        &self,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<crate::store::Checkpoint>, crate::imap::SinkError> {
        Ok(self.with(|p| p.store().mailbox_checkpoint(account, mailbox))?)
    }

    fn reset_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<(), crate::imap::SinkError> {
        Ok(self.with(|p| p.store_mut().mailbox_reset(account, mailbox, uidvalidity))?)
    }

    fn take_lease(
        &self,
        account: &str,
        mailbox: &str,
        ttl: Duration,
    ) -> Result<bool, crate::imap::SinkError> {
        let owner = self.1.clone();
        Ok(self.with(|p| {
            p.store_mut()
                .take_mailbox_lease(account, mailbox, &owner, chrono::Utc::now(), ttl)
        })?)
    }

    fn release_lease(&self, account: &str, mailbox: &str) {
        let owner = self.1.clone();
        if let Err(e) = self.with(|p| {
            p.store_mut()
                .release_mailbox_lease(account, mailbox, &owner)
        }) {
            tracing::debug!(error = %e, "mailbox lease not released; it expires by itself");
        }
    }

    fn limits(&self) -> crate::limits::Limits {
        self.with(|p| *p.limits())
    }

    fn deliver_partial(
        &self,
        partial: &crate::intake::Partial,
        source: MessageSource,
    ) -> Result<crate::imap::Delivered, crate::imap::SinkError> {
        let outcome = self
            .with(|p| p.process_partial(partial, source))
            .map_err(|e| crate::imap::SinkError(e.to_string()))?;
        Ok(crate::imap::Delivered {
            outcome: outcome.outcome.to_string(),
        })
    }

    fn record_failure(
        &self,
        source: &MessageSource,
        error: &str,
    ) -> Result<u32, crate::imap::SinkError> {
        self.with(|p| p.record_failed_attempt(source, error))
            .map_err(|e| crate::imap::SinkError(e.to_string()))
    }

    fn failed_attempts(
        &self,
        source: &MessageSource,
    ) -> Result<(u32, String), crate::imap::SinkError> {
        self.with(|p| p.failed_attempts(source))
            .map_err(|e| crate::imap::SinkError(e.to_string()))
    }

    fn give_up(
        &self,
        source: MessageSource,
        size: u64,
        tries: u32,
        error: &str,
    ) -> Result<crate::imap::Delivered, crate::imap::SinkError> {
        let outcome = self
            .with(|p| p.give_up_unread(source, size, tries, error))
            .map_err(|e| crate::imap::SinkError(e.to_string()))?;
        Ok(crate::imap::Delivered {
            outcome: outcome.outcome.to_string(),
        })
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Refuses to start while another `serve` runs on
/// the same data dir.
pub fn serve(settings: Settings) -> Result<(), DaemonError> {
    // Held until this function returns; the kernel drops it when the process dies.
    let _lock = lock_data_dir(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Every recursion over sender data is bounded (limits.max_nesting_depth), and a few
        // MB would do; the margin is for the libraries' own recursion on hostile input. An
        // untouched stack costs address space, not memory.
        .thread_stack_size(16 << 20)
        .build()
        .map_err(DaemonError::Signal)?;
    runtime.block_on(serve_async(settings))
}

async fn serve_async(settings: Settings) -> Result<(), DaemonError> {
    // Signals first: a SIGTERM that arrives while we start up (store, keyring, owed
    // acknowledgments) is kept and answered with a clean stop, never the default death.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    // First run on embedded defaults: create the store and the coordinator key.
    let init = app::init(&settings)?;
    let opened = app::open_pipeline(&settings)?;
    if let Err(e) = opened.store().leave_checkpoints_to_another() {
        tracing::warn!(error = %e, "the pipeline's commits will checkpoint the store themselves");
    }
    let instance = settings.instance_name();
    let pipeline = SharedPipeline::for_instance(opened, &instance);
    let location = app::store_location(&settings)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    tracing::info!(
        data_dir = %settings.data_dir.display(),
        store = %location,
        instance = %instance,
        coordinator = %init.fingerprint,
        "casegate serving"
    );
    if settings.config.maildir.enabled {
        let dir = settings.maildir_path();
        prepare_maildir(&dir)?;
        tracing::info!(path = %dir.display(), "watching Maildir drop folder");
        let poll = Duration::from_millis(settings.config.maildir.poll_interval_ms.max(50));
        tasks.spawn(watch_maildir(
            dir,
            poll,
            settings.config.ingest,
            pipeline.clone(),
            stop_rx.clone(),
        ));
    }
    let imap_status = Arc::new(ImapStatus::new());
    if settings.config.imap.is_empty() {
        tracing::info!("no [[imap]] accounts configured");
    }
    let watch_options = crate::imap::WatchOptions {
        lease_ttl: Duration::from_secs(settings.config.store.lease_secs),
        batch_messages: settings.config.ingest.batch_messages,
        ..crate::imap::WatchOptions::default()
    };
    for account in settings.config.imap.clone() {
        let sink: Arc<dyn crate::imap::MessageSink> = Arc::new(pipeline.clone());
        let (stop, status, options) = (stop_rx.clone(), imap_status.clone(), watch_options.clone());
        tasks.spawn(async move {
            let name = account.account_name();
            if let Err(e) = crate::imap::watch_with(account, sink, stop, status, options).await {
                tracing::error!(account = %name, error = %e, "IMAP account not watched");
            }
        });
    }
    if !settings.config.imap.is_empty() {
        // One status line per mailbox every few minutes: connected, last UID, today's counts.
        let (status, mut stop) = (imap_status.clone(), stop_rx.clone());
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(300)) => status.log(),
                    _ = stop.changed() => return,
                }
            }
        });
    }
    if let Location::Sqlite(path) = &location {
        tasks.spawn(checkpoint_now_and_then(path.clone(), stop_rx.clone()));
    }
    if settings.config.http.enabled {
        // A listener that cannot start is an error for the analysts, not for the mail: the
        // daemon goes on taking mail in and sending notices.
        match crate::http::bind(&settings).await {
            Ok(listener) => {
                let addr = listener.local_addr();
                let scheme = if settings.config.http.tls_cert_file.is_some() {
                    "https"
                } else {
                    "http"
                };
                if let Some(addr) = addr {
                    tracing::info!(url = %format!("{scheme}://{addr}/"), "analysts' web page and API listening");
                    if scheme == "http" && !addr.ip().is_loopback() {
                        // Tokens and case content would cross the network in the clear.
                        tracing::warn!(%addr, "the HTTP listener is not on loopback and has no TLS; set [http] tls_cert_file and tls_key_file");
                    }
                }
                tasks.spawn(crate::http::run(listener, stop_rx.clone()));
            }
            Err(e) => tracing::error!(error = %e, "HTTP API and web page not started"),
        }
    }
    tasks.spawn(keys_daily(settings.clone(), stop_rx.clone()));
    // Its first round, at once, pays what is owed from before a crash.
    tasks.spawn(acks_relays_and_reminders(
        settings.clone(),
        pipeline.owed(),
        stop_rx.clone(),
    ));
    match settings.config.smtp.clone() {
        None => tracing::info!("no [smtp] configured: outbox copies stay queued until it is"),
        Some(smtp) => {
            let (location, cfg, stop) = (
                location.clone(),
                settings.config.outbox.clone(),
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                if let Err(e) = crate::outbox::run_sender(location, smtp, cfg, stop).await {
                    tracing::error!(error = %e, "outbox sender stopped; queued copies wait for the next start");
                }
            });
        }
    }

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing the message in hand"),
        _ = interrupt.recv() => tracing::info!("SIGINT: finishing the message in hand"),
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Nothing is taken in any more: what the last messages stored owe goes into the outbox
    // now (sent at the next start), not after the next start's first round.
    let last = tokio::task::spawn_blocking(move || {
        FollowupWorker::open(settings).map(|mut w| w.settle_before_exit())
    })
    .await;
    if !matches!(last, Ok(Ok(()))) {
        tracing::warn!(
            "owed acknowledgments and relays not settled before exit; the next start does it"
        );
    }
    tracing::info!("casegate stopped");
    Ok(())
}

/// One daemon per data dir: an exclusive OS lock (flock) on `<data-dir>/serve.lock`, which
/// holds the owner's PID for the message a second daemon prints. Two daemons on one store
/// would fetch every message twice; the lock goes away with the process, however it ends,
/// so a crash never leaves a stale lock behind.
pub fn lock_data_dir(settings: &Settings) -> Result<std::fs::File, DaemonError> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = settings.lock_path();
    let lock_err = |source| DaemonError::Lock {
        path: path.clone(),
        source,
    };
    crate::at_rest::private_dir(&settings.data_dir).map_err(lock_err)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(crate::at_rest::PRIVATE_FILE)
        .open(&path)
        .map_err(lock_err)?;
    crate::at_rest::tighten(&path, crate::at_rest::PRIVATE_FILE).map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => {
            let pid = std::process::id();
            file.set_len(0).map_err(lock_err)?;
            file.rewind().map_err(lock_err)?;
            file.write_all(format!("{pid}\n").as_bytes())
                .map_err(lock_err)?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // The owner writes its PID right after locking: give it a moment.
            let mut pid = String::new();
            for _ in 0..20 {
                pid.clear();
                let _ = file.rewind().and_then(|_| file.read_to_string(&mut pid));
                if !pid.trim().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let pid = match pid.trim() {
                "" => "PID unknown".to_string(),
                p => format!("PID {p}"),
            };
            Err(DaemonError::AlreadyRunning {
                pid,
                data_dir: settings.data_dir.clone(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
    }
}

/// How often the daemon copies the write-ahead log into the store's main file. The pipeline's
/// connection leaves this to it ([`Store::leave_checkpoints_to_another`]); a checkpoint with
/// nothing new to copy costs a read of the log's index.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The next checkpoint's wait after one that found at least [`CHECKPOINT_BUSY_FRAMES`] new in
/// the log: mail is coming in fast (a sync), and each copy is then a few MB, done on another
/// core while the commits go on, instead of the pipeline's commit doing it at the backstop.
/// A trickle of new mail (IDLE) keeps the one-second pace, so that the checkpoint's own flush
/// of the main file meets a message's commit less often.
const CHECKPOINT_AGAIN: Duration = Duration::from_millis(200);

/// Frames (4 KiB pages) written to the log since the last checkpoint that make the next come
/// sooner: ~4 MB, some 400 messages of a sync.
const CHECKPOINT_BUSY_FRAMES: i64 = 1_000;

/// Checkpoints the store's WAL in the background, on a connection of its own, so that no
/// commit (a message stored, a notice queued) waits for it. A failure is only logged: the WAL
/// keeps every commit durable until the next try.
async fn checkpoint_now_and_then(path: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut kept: Option<Store> = None;
    let (mut wait, mut last) = (CHECKPOINT_EVERY, (0, 0));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let (path, taken) = (path.clone(), kept.take());
        let done = tokio::task::spawn_blocking(move || {
            let store = match taken {
                Some(s) => s,
                None => Store::open(&path)?,
            };
            let copied = store.checkpoint()?;
            Ok::<_, crate::store::StoreError>((store, copied))
        })
        .await;
        match done {
            Ok(Ok((store, (frames, copied)))) => {
                kept = Some(store);
                wait = next_checkpoint(last, (frames, copied));
                if copied > 0 && (frames, copied) != last {
                    tracing::debug!(frames, copied, "store WAL checkpointed");
                }
                last = (frames, copied);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "store WAL checkpoint failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "store WAL checkpoint task failed; will retry"),
        }
    }
}

/// The wait before the next checkpoint, from the counts the last two returned (frames in the
/// log, frames copied; -1 when another checkpoint was running). They are of the log as it
/// stands, not of one call; a log started again since holds only what was written since.
fn next_checkpoint(before: (i64, i64), now: (i64, i64)) -> Duration {
    let written = if now.0 >= before.0 {
        now.0 - before.0
    } else {
        now.0
    };
    if now.0 < 0 || written >= CHECKPOINT_BUSY_FRAMES {
        CHECKPOINT_AGAIN
    } else {
        CHECKPOINT_EVERY
    }
}

/// How often the daemon looks at keys over time.
const KEYS_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// At start and once a day: one log line naming the keys (the coordinator's and those bound
/// to contacts) that expire within `[keys] expiry_warning_days`, and, when `[keys]
/// refresh_daily` is on, a WKD lookup of every contact (a different key waits for review).
async fn keys_daily(settings: Settings, mut stop: watch::Receiver<bool>) {
    loop {
        let s = settings.clone();
        let done = tokio::task::spawn_blocking(move || keys_once(s)).await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "daily key check failed; tries again tomorrow");
        }
        tokio::select! {
            _ = tokio::time::sleep(KEYS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

fn keys_once(settings: Settings) {
    let days = settings.config.keys.expiry_warning_days;
    let refresh = settings.config.keys.refresh_daily;
    let daemon = crate::ops::Actor::named("daemon", false);
    let mut cx = match crate::ops::Context::open(settings) {
        Ok(cx) => cx,
        Err(e) => {
            tracing::warn!(error = %e, "daily key check: cannot open the store");
            return;
        }
    };
    match crate::ops::keys::expiring(&mut cx, &daemon, days) {
        Ok(list) => match crate::trust::keys::expiry_log_line(&list, days) {
            Some(line) => {
                tracing::warn!("{line}; ask for new keys (`casegate key list --expiring {days}`)")
            }
            None => tracing::info!("no key expires within {days} days"),
        },
        Err(e) => tracing::warn!(error = %e, "daily key check failed"),
    }
    if refresh {
        match crate::ops::keys::refresh(&mut cx, &daemon, None) {
            Ok(results) => {
                for r in results.iter().filter(|r| r.outcome != "unchanged") {
                    tracing::info!(address = %r.address, outcome = r.outcome, detail = %r.detail, "WKD refresh");
                }
                tracing::info!(looked_up = results.len(), "daily WKD refresh done");
            }
            Err(e) => tracing::warn!(error = %e, "daily WKD refresh failed"),
        }
    }
}

/// How often the outbox side looks for acknowledgments and relays the pipeline recorded as
/// owed (besides being woken by the pipeline after such a commit).
const RELAY_POLL: Duration = Duration::from_secs(1);
/// How often reminders are looked for (when `[followup] remind` is on).
const REMIND_EVERY: Duration = Duration::from_secs(3600);

/// The outbox side of what the pipeline records as owed, and of follow-up, on a connection of
/// its own: composes and queues the acknowledgments of new reports and the relays owed (the
/// pipeline only records them, in the message's transaction) — woken by the pipeline after
/// such a commit, and every second — and, when `[followup] remind` is on, reminds overdue
/// organizations once an hour (each contact at most once per interval). Failures are logged
/// and tried again; the debts stay recorded.
async fn acks_relays_and_reminders(
    settings: Settings,
    owed: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut worker: Option<Box<FollowupWorker>> = None;
    loop {
        let settings = settings.clone();
        let taken = worker.take();
        let round = tokio::task::spawn_blocking(move || {
            let mut w = match taken {
                Some(w) => w,
                None => Box::new(FollowupWorker::open(settings)?),
            };
            w.round();
            Ok::<_, AppError>(w)
        })
        .await;
        match round {
            Ok(Ok(w)) => worker = Some(w),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "relays and reminders: cannot open the store; will retry")
            }
            Err(e) => tracing::warn!(error = %e, "relays and reminders: round failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RELAY_POLL) => {}
            _ = owed.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// How long a stopping daemon spends settling what the last messages owe.
const SETTLE_BEFORE_EXIT: Duration = Duration::from_secs(10);

struct FollowupWorker {
    settings: Settings,
    store: Store,
    keyring: (i64, crate::keyring::Keyring),
    last_remind: Option<std::time::Instant>,
    /// Relays that could not be made, logged once each.
    reported: std::collections::HashSet<i64>,
}

impl FollowupWorker {
    fn open(settings: Settings) -> Result<FollowupWorker, AppError> {
        let store = app::open_store(&settings)?;
        let keyring = (
            store.keys_generation()?,
            app::load_keyring(&settings, &store)?,
        );
        Ok(FollowupWorker {
            settings,
            store,
            keyring,
            last_remind: None,
            reported: Default::default(),
        })
    }

    /// Settles the acknowledgments and relays owed, round after round while one makes progress,
    /// for at most [`SETTLE_BEFORE_EXIT`].
    fn settle_before_exit(&mut self) {
        let started = std::time::Instant::now();
        while started.elapsed() < SETTLE_BEFORE_EXIT {
            match self.acknowledgments() {
                // Nothing owed any more, or nothing could be settled (no key, say).
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "acknowledgments not queued; they stay owed");
                    break;
                }
            }
        }
        if let Err(e) = self.relays() {
            tracing::warn!(error = %e, "relays not queued; they stay owed");
        }
    }

    fn round(&mut self) {
        if let Err(e) = self.acknowledgments() {
            tracing::warn!(error = %e, "acknowledgments not queued; they stay owed");
        }
        if let Err(e) = self.relays() {
            tracing::warn!(error = %e, "relays not queued; they stay owed");
        }
        let cfg = &self.settings.config.followup;
        if cfg.remind && self.last_remind.is_none_or(|t| t.elapsed() >= REMIND_EVERY) {
            self.last_remind = Some(std::time::Instant::now());
            if let Err(e) = self.remind() {
                tracing::warn!(error = %e, "reminders not queued; will try again");
            }
        }
    }

    fn refresh_keyring(&mut self) -> Result<(), AppError> {
        let version = self.store.keys_generation()?;
        if version != self.keyring.0 {
            self.keyring = (version, app::load_keyring(&self.settings, &self.store)?);
        }
        Ok(())
    }

    /// Acknowledgments of new reports (`outbox::ack::queue_owed` logs each); how many debts
    /// this round settled (queued or dropped for good).
    fn acknowledgments(&mut self) -> Result<usize, Box<dyn std::error::Error>> {
        if !self.store.any_pending_ack()? {
            return Ok(0);
        }
        self.refresh_keyring()?;
        let c = &self.settings.config;
        let handled = crate::outbox::ack::queue_owed(
            &mut self.store,
            &self.keyring.1,
            &crate::outbox::ack::AckPolicy {
                from: &c.coordinator.address,
                outbox: &c.outbox,
                limit_per_day: c.policy.ack_limit_per_sender_per_day,
            },
        )?;
        Ok(handled.iter().filter(|o| !o.owed).count())
    }

    fn relays(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        if self.store.owed_relays()?.is_empty() {
            return Ok(());
        }
        self.refresh_keyring()?;
        let c = &self.settings.config;
        let done = crate::outbox::relay::pay_owed(
            &mut self.store,
            &self.keyring.1,
            &crate::outbox::relay::RelayPolicy {
                from: &c.coordinator.address,
                private_address: c.coordinator.private_address.as_deref(),
                outbox: &c.outbox,
                actor: "daemon",
            },
        )?;
        for r in done {
            if r.result == "owed" {
                if self.reported.insert(r.message_ref) {
                    tracing::warn!(thread = %r.thread, message_id = r.message_id.as_deref().unwrap_or("-"), detail = %r.detail, "relay not made yet; it stays owed");
                }
            } else {
                self.reported.remove(&r.message_ref);
            }
        }
        Ok(())
    }

    fn remind(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let c = &self.settings.config;
        let overdue = crate::outbox::remind::overdue(
            &self.store,
            chrono::Utc::now(),
            c.followup.overdue_days,
        )?;
        if overdue.is_empty() {
            return Ok(());
        }
        let Some(coordinator) = app::coordinator_key(&self.settings)? else {
            return Ok(());
        };
        let sent = crate::outbox::remind::send_reminders(
            &mut self.store,
            &coordinator,
            &overdue,
            &crate::outbox::remind::ReminderPolicy {
                from: &c.coordinator.address,
                outbox: &c.outbox,
                interval_days: c.followup.interval_days(),
                actor: "daemon",
            },
        )?;
        if !sent.is_empty() {
            tracing::info!(
                copies = sent.len(),
                "reminders queued to overdue organizations"
            );
        }
        Ok(())
    }
}

/// The drop folder and its `tmp/`, `new/`, `cur/`, private (0700) whatever the umask.
fn prepare_maildir(dir: &Path) -> Result<(), DaemonError> {
    for sub in ["", "tmp", "new", "cur"] {
        crate::at_rest::private_dir(&dir.join(sub)).map_err(|source| DaemonError::Maildir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Ingests every message delivered to `new/`, and only after its commit moves it to `cur/`
/// (the Maildir way of saying "seen"). A crash in between re-reads it on the next start, and
/// the store recognises the duplicate: stored exactly once. A file that cannot be read is
/// skipped (and counted); one that keeps failing, or keeps killing the process, is quarantined
/// after `limits.max_attempts` and moved on; one over `max_message_bytes` is never read whole.
async fn watch_maildir(
    dir: PathBuf,
    poll: Duration,
    batch: crate::config::IngestConfig,
    pipeline: SharedPipeline,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        match drain_maildir(&dir, &pipeline, batch, &stop).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "Maildir: message not stored; it stays in new/");
                backoff = (backoff * 2).min(Duration::from_secs(60));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn drain_maildir(
    dir: &Path,
    pipeline: &SharedPipeline,
    batch: crate::config::IngestConfig,
    stop: &watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let new = dir.join("new");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&new) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            tracing::warn!(path = %new.display(), error = %e, "Maildir: cannot list new/");
            return Ok(());
        }
    };
    files.sort();
    let mut rest = files.as_slice();
    while !rest.is_empty() {
        if *stop.borrow() {
            return Ok(());
        }
        let next = rest[..rest.len().min(batch.batch_messages.max(1))].to_vec();
        let (taken, stored, failure) = pipeline.process_files(next, batch).await;
        rest = &rest[taken.min(rest.len())..];
        // Committed: now, and only now, mark them seen.
        for (path, outcome) in stored {
            mark_seen(dir, &path, &outcome);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if taken == 0 {
            break;
        }
    }
    Ok(())
}

/// Bytes a Maildir batch reads before it is stored (one larger message still goes whole).
const MAILDIR_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// Moves a stored message file from `new/` to `cur/`, flagged seen (the Maildir way of saying
/// "done"). Another instance may have moved it already; a failure to move leaves it to be
/// found a duplicate next time.
fn mark_seen(dir: &Path, path: &Path, outcome: &Outcome) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let base = name.split(":2,").next().unwrap_or(name);
    let target = dir.join("cur").join(format!("{base}:2,S"));
    if let Err(e) = std::fs::rename(path, &target) {
        if e.kind() == std::io::ErrorKind::NotFound {
            // Another instance watching this folder stored it too (a duplicate) and moved it.
            tracing::debug!(file = %path.display(), "Maildir: already moved by another process");
            return;
        }
        tracing::error!(file = %path.display(), error = %e, "Maildir: stored but could not move to cur/; it will be seen as a duplicate next time");
    }
    tracing::info!(file = %name, outcome = outcome.outcome, thread = ?outcome.thread.as_ref().map(|t| t.as_str()), "Maildir message stored");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_come_quicker_only_while_the_log_grows_fast() {
        // Idle: the log as it was.
        assert_eq!(next_checkpoint((40, 40), (40, 40)), CHECKPOINT_EVERY);
        // A message or two (IDLE): the usual pace.
        assert_eq!(next_checkpoint((40, 40), (70, 70)), CHECKPOINT_EVERY);
        assert_eq!(next_checkpoint((3_710, 3_710), (30, 30)), CHECKPOINT_EVERY);
        // A sync: thousands of frames written (and copied) since.
        assert_eq!(next_checkpoint((40, 40), (3_710, 3_710)), CHECKPOINT_AGAIN);
        // Started again from the beginning, and as many written since.
        assert_eq!(
            next_checkpoint((3_710, 3_710), (2_000, 2_000)),
            CHECKPOINT_AGAIN
        );
        // Busy (the pipeline's own backstop checkpoint ran): look again soon.
        assert_eq!(next_checkpoint((3_710, 3_710), (-1, -1)), CHECKPOINT_AGAIN);
        assert!(CHECKPOINT_AGAIN < CHECKPOINT_EVERY);
    }
}
