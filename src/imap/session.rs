//! One watched mailbox: connect, select, catch up, acknowledge, wait (IDLE or poll), and on any
//! failure reconnect with exponential backoff and jitter.
//!
//! Order of work in a session, each step bounded by the account's timeout:
//! 1. SELECT; compare UIDVALIDITY with the checkpoint (changed: reset, fetch from UID 1 again).
//! 2. Messages with UID <= checkpoint still waiting (stored before a crash, not yet moved or
//!    flagged): fetched and handed to the sink again — the store answers `duplicate` — and only
//!    then acknowledged. Re-fetching rather than trusting the checkpoint means a message is never
//!    acknowledged unless this very session saw its commit. The new messages after them are
//!    listed at once and go in the same run, as one backlog (step 3), so the confirmed ones are
//!    acknowledged in its large sets, not in the halving sets of a sync's end.
//! 3. New messages (UID > checkpoint), listed with `UID SEARCH`, in UID order, in batches of
//!    `batch_messages`: FETCH, hand what came to the store (`super::commit`: one transaction
//!    a batch, in order, while the next batches are fetched; each commit advances the
//!    checkpoint); committed UIDs are acknowledged in sets that grow with the backlog while
//!    more waits to be fetched, then in halving sets while the last batches commit (see
//!    [`super::acknowledge`]).
//! 4. IDLE (re-issued every `poll_interval_secs`, at most 29 minutes) or poll; back to 3.
//!
//! No size is asked before a batch is fetched: Dovecot reads every message of a Maildir whose
//! file names do not carry its size to answer `RFC822.SIZE` (~15 µs a message on this
//! machine, two thirds of what the fetch of its body costs). Each message is fetched as
//! `BODY.PEEK[]<0.n>` with n = `max_message_bytes` + 1, so no message costs more than that in
//! memory, and a batch is handed to the store as it comes, in parts of about `batch_bytes`
//! ([`Gathering`]).
//!
//! One message never holds up the ones behind it: a message over `max_message_bytes` is never
//! held whole — the rest of its batch is fetched again after it, and on its own its head and
//! the SHA-256 of all of it are read in chunks and quarantined; after a batch FETCH failed,
//! its messages are fetched one by one (`suspects`), each failure is counted in the store, and
//! a message that failed `max_attempts` times is quarantined unread and acknowledged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::types::Flag;
use futures::{Stream, StreamExt};
use rand::Rng;
use tokio::sync::watch;

use super::acknowledge::acknowledge_now;
use super::commit::{Commits, Committed, Origin};
use super::connection::{ImapSession, Server};
use super::{ImapError, ImapStatus, MessageSink, SinkError, WatchOptions};
use crate::config::AfterStore;
use crate::intake::Partial;
use crate::limits::Limits;
use crate::store::MessageSource;

/// The keyword that marks a message as stored when `after_store = "flag"`.
const STORED_KEYWORD: &str = "$CasegateStored";
/// RFC 2177: re-issue IDLE before 29 minutes.
const IDLE_MAX: Duration = Duration::from_secs(29 * 60);
/// An IDLE that ends sooner than this counts as a wake "at once".
const QUICK_WAKE: Duration = Duration::from_millis(200);
/// Wakes at once without new mail, in a row, before the session is given up and reconnected.
const MAX_EMPTY_WAKES: u32 = 50;

pub(crate) struct MailboxWorker {
    pub server: Arc<Server>,
    /// The mailbox as configured (checkpoint key, logs).
    pub mailbox: String,
    pub sink: Arc<dyn MessageSink>,
    pub status: Arc<ImapStatus>,
    pub shutdown: watch::Receiver<bool>,
    pub options: WatchOptions,
    /// UIDs (under this UIDVALIDITY) of a batch whose FETCH failed: fetched one at a time
    /// from now on, so that one that keeps failing is found, counted and given up.
    pub suspects: (u32, HashSet<u32>),
}

/// One unit of work in [`MailboxWorker::process`].
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// A batch fetched and committed the fast way.
    Batch(Vec<u32>),
    /// One message on its own: over `max_message_bytes`, or suspected of breaking a FETCH.
    Alone(u32),
}

impl Step {
    fn len(&self) -> usize {
        match self {
            Step::Batch(uids) => uids.len(),
            Step::Alone { .. } => 1,
        }
    }
}

/// Bytes per partial FETCH of a message over `max_message_bytes`.
const CHUNK: u64 = 1 << 20;

/// Committed UIDs not acknowledged yet, oldest first, and when the oldest of them committed.
#[derive(Default)]
struct Unacknowledged {
    uids: Vec<u32>,
    since: Option<Instant>,
}

impl Unacknowledged {
    fn add(&mut self, uids: Vec<u32>) {
        if !uids.is_empty() && self.uids.is_empty() {
            self.since = Some(Instant::now());
        }
        self.uids.extend(uids);
    }

    fn len(&self) -> usize {
        self.uids.len()
    }

    fn waited(&self) -> Duration {
        self.since.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// The oldest `n`. What is left keeps the old age (it errs toward acknowledging early).
    fn take(&mut self, n: usize) -> Vec<u32> {
        let taken: Vec<u32> = self.uids.drain(..n.min(self.uids.len())).collect();
        if self.uids.is_empty() {
            self.since = None;
        }
        taken
    }
}

/// What one session learned about the server and the mailbox.
struct Selected {
    /// Server-side names (hierarchy delimiter applied).
    mailbox: String,
    folder: Option<String>,
    uidvalidity: u32,
    last_uid: u32,
    has_move: bool,
    has_uidplus: bool,
    has_idle: bool,
    /// `+FLAGS` argument for `after_store = "flag"`.
    flag_with: String,
    /// The sink's bounds on one message, read once a session (not on every wake from IDLE).
    limits: Limits,
}

impl MailboxWorker {
    /// Runs until shutdown. Never returns early on a failure: each one is logged and retried.
    /// Watches only while this instance holds the mailbox's lease (several instances on one
    /// store); without it, it waits on standby and tries again.
    pub async fn run(mut self) {
        let account = self.server.account.clone();
        let mut failures: u32 = 0;
        loop {
            if self.stopping() || !self.wait_for_lease().await {
                break;
            }
            let mut synced = false;
            let keep = keep_lease(
                self.sink.clone(),
                account.clone(),
                self.mailbox.clone(),
                self.options.lease_ttl,
            );
            let result = tokio::select! {
                r = self.session(&mut synced) => r,
                lost = keep => Err(lost),
            };
            match result {
                Ok(()) => {
                    self.status.disconnected(&account, &self.mailbox, None);
                    break;
                }
                Err(e) => {
                    if synced {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    let delay = backoff(
                        failures,
                        self.options.reconnect_base,
                        self.options.reconnect_max,
                    );
                    tracing::warn!(
                        account = %account,
                        mailbox = %self.mailbox,
                        retry_in_ms = delay.as_millis() as u64,
                        "IMAP: {e}; reconnecting"
                    );
                    self.status
                        .disconnected(&account, &self.mailbox, Some(e.to_string()));
                    if self.sleep_or_shutdown(delay).await {
                        break;
                    }
                }
            }
        }
        let (sink, name) = (self.sink.clone(), self.mailbox.clone());
        let acct = account.clone();
        let _ = tokio::task::spawn_blocking(move || sink.release_lease(&acct, &name)).await;
        tracing::info!(account = %account, mailbox = %self.mailbox, "IMAP: stopped watching");
    }

    /// Waits until this instance holds the mailbox's lease; false on shutdown.
    async fn wait_for_lease(&mut self) -> bool {
        let account = self.server.account.clone();
        let mut said = false;
        loop {
            let (sink, acct, name, ttl) = (
                self.sink.clone(),
                account.clone(),
                self.mailbox.clone(),
                self.options.lease_ttl,
            );
            match blocking(move || sink.take_lease(&acct, &name, ttl)).await {
                Ok(true) => {
                    if said {
                        tracing::info!(account = %account, mailbox = %self.mailbox, "IMAP: took the mailbox over");
                    }
                    return true;
                }
                Ok(false) if !said => {
                    said = true;
                    tracing::info!(account = %account, mailbox = %self.mailbox, "IMAP: another instance watches this mailbox; standing by");
                    self.status.disconnected(
                        &account,
                        &self.mailbox,
                        Some("standby: another instance watches it".into()),
                    );
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(account = %account, mailbox = %self.mailbox, "IMAP: cannot take the mailbox lease ({e}); not watching, trying again");
                    self.status
                        .disconnected(&account, &self.mailbox, Some(e.to_string()));
                }
            }
            if self.sleep_or_shutdown(self.options.lease_ttl / 4).await {
                return false;
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow() || self.shutdown.has_changed().is_err()
    }

    /// Sleeps `d`; true when shutdown was asked for meanwhile.
    async fn sleep_or_shutdown(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.stopping(),
            _ = shutdown_requested(&mut self.shutdown) => true,
        }
    }

    /// One connection's life. `Ok` only on shutdown; `synced` tells the caller the session got
    /// as far as a full catch-up (so the backoff starts over).
    async fn session(&mut self, synced: &mut bool) -> Result<(), ImapError> {
        let server = self.server.clone();
        // Connecting holds no message, so shutdown need not wait for a slow server here.
        let mut s = tokio::select! {
            s = server.open() => s?,
            _ = shutdown_requested(&mut self.shutdown) => return Ok(()),
        };
        let mut sel = self.select(&mut s).await?;
        if self.suspects.0 != sel.uidvalidity {
            self.suspects = (sel.uidvalidity, HashSet::new());
        }
        self.status.connected(
            &server.account,
            &self.mailbox,
            sel.uidvalidity,
            sel.last_uid,
        );

        let can_idle = server.idle && sel.has_idle;
        tracing::info!(
            account = %server.account,
            mailbox = %self.mailbox,
            uidvalidity = sel.uidvalidity,
            last_uid = sel.last_uid,
            "IMAP: connected to {} ({})",
            server.address(),
            if can_idle { "IDLE" } else { "polling" }
        );

        if sel.last_uid > 0 && !self.stopping() {
            let query = match server.after_store {
                AfterStore::Move if !sel.has_move && !sel.has_uidplus => {
                    format!("UID 1:{} NOT DELETED", sel.last_uid)
                }
                AfterStore::Move => format!("UID 1:{}", sel.last_uid),
                AfterStore::Flag if sel.flag_with.contains(STORED_KEYWORD) => {
                    format!("UID 1:{} NOT KEYWORD {STORED_KEYWORD}", sel.last_uid)
                }
                AfterStore::Flag => format!("UID 1:{} UNSEEN", sel.last_uid),
            };
            let found = server.step("UID SEARCH", s.uid_search(&query)).await?;
            let mut waiting: Vec<u32> = found.into_iter().filter(|u| *u <= sel.last_uid).collect();
            waiting.sort_unstable();
            if !waiting.is_empty() {
                // The new mail behind them is one backlog with them: listed now, it is fetched
                // in the same run, and what this session confirms or commits is acknowledged in
                // the large sets a backlog gets. Alone, the confirmed ones would be moved in the
                // halving sets of a sync's last batches, each MOVE costing Dovecot in proportion
                // to the mail still in the mailbox (~0.8 s each behind 7,000 messages here).
                let newer = server
                    .step(
                        "UID SEARCH",
                        s.uid_search(format!("UID {}:*", sel.last_uid.saturating_add(1))),
                    )
                    .await?;
                let newer = after_checkpoint(newer, sel.last_uid);
                tracing::info!(
                    account = %server.account,
                    mailbox = %self.mailbox,
                    "IMAP: {} message(s) up to UID {} were stored but not yet acknowledged; confirming with the store, then acknowledging them with the {} new one(s) after them",
                    waiting.len(),
                    sel.last_uid,
                    newer.len()
                );
                waiting.extend(newer);
                self.process(&mut s, &mut sel, waiting).await?;
            }
        }

        // Wakes from IDLE that came at once and brought nothing: a server that keeps waking us
        // (with whatever untagged response) must not hold the session in a busy loop.
        let mut empty_wakes: u32 = 0;
        let mut woke_at_once = false;
        loop {
            if self.stopping() {
                break;
            }
            let last = sel.last_uid;
            let found = server
                .step(
                    "UID SEARCH",
                    s.uid_search(format!("UID {}:*", last.saturating_add(1))),
                )
                .await?;
            let items = after_checkpoint(found, last);
            if items.is_empty() && woke_at_once {
                empty_wakes = empty_wakes.saturating_add(1);
                if empty_wakes >= MAX_EMPTY_WAKES {
                    return Err(ImapError::Server {
                        server: server.address(),
                        message: format!(
                            "ended IDLE {empty_wakes} times in a row at once without new mail"
                        ),
                    });
                }
            } else {
                empty_wakes = 0;
            }
            if !items.is_empty() {
                self.process(&mut s, &mut sel, items).await?;
            }
            *synced = true;
            if self.stopping() {
                break;
            }
            if can_idle {
                let began = Instant::now();
                let (back, stop) = self.idle(s).await?;
                s = back;
                if stop {
                    break;
                }
                woke_at_once = began.elapsed() < QUICK_WAKE;
            } else {
                if self.sleep_or_shutdown(server.poll_interval).await {
                    break;
                }
                server.step("NOOP", s.noop()).await?;
            }
        }
        let _ = tokio::time::timeout(server.timeout, s.logout()).await;
        Ok(())
    }

    /// Creates the processed folder if needed, selects the mailbox and reads the checkpoint.
    async fn select(&mut self, s: &mut ImapSession) -> Result<Selected, ImapError> {
        let server = self.server.clone();
        let caps = server.step("CAPABILITY", s.capabilities()).await?;
        let names = collect(
            &server,
            "LIST",
            server.step("LIST", s.list(Some(""), Some("\"\""))).await?,
        )
        .await?;
        let delimiter = names
            .first()
            .and_then(|n| n.delimiter().map(str::to_string));
        // Names in the config use '/' between levels; the server may use another delimiter.
        let on_server = |name: &str| match &delimiter {
            Some(d) if d != "/" => name.replace('/', d),
            _ => name.to_string(),
        };
        let mailbox = on_server(&self.mailbox);
        let folder = match server.after_store {
            AfterStore::Move => {
                let folder = on_server(&server.processed_folder);
                self.ensure_folder(s, &folder).await?;
                Some(folder)
            }
            AfterStore::Flag => None,
        };
        let mb = server
            .step(&format!("SELECT {mailbox}"), s.select(&mailbox))
            .await?;
        let uidvalidity = mb.uid_validity.ok_or_else(|| ImapError::Server {
            server: server.address(),
            message: format!("SELECT {mailbox} did not report UIDVALIDITY"),
        })?;
        let keywords = mb
            .permanent_flags
            .iter()
            .any(|f| matches!(f, Flag::MayCreate) || *f == Flag::Custom(STORED_KEYWORD.into()));
        let flag_with = if keywords {
            format!("(\\Seen {STORED_KEYWORD})")
        } else {
            "(\\Seen)".to_string()
        };

        let sink = self.sink.clone();
        let (account, name) = (server.account.clone(), self.mailbox.clone());
        let (checkpoint, limits) =
            blocking(move || Ok((sink.checkpoint(&account, &name)?, sink.limits()))).await?;
        let last_uid = match checkpoint {
            Some(c) if c.uidvalidity == uidvalidity => c.last_uid,
            None => 0,
            Some(c) => {
                tracing::warn!(
                    account = %server.account,
                    mailbox = %self.mailbox,
                    "IMAP: UIDVALIDITY changed from {} to {uidvalidity}: the server renumbered the mailbox; fetching it again from UID 1 (messages already stored are recognised and not stored twice)",
                    c.uidvalidity
                );
                let sink = self.sink.clone();
                let (account, name) = (server.account.clone(), self.mailbox.clone());
                blocking(move || sink.reset_checkpoint(&account, &name, uidvalidity)).await?;
                0
            }
        };
        Ok(Selected {
            mailbox,
            folder,
            uidvalidity,
            last_uid,
            has_move: caps.has_str("MOVE"),
            has_uidplus: caps.has_str("UIDPLUS"),
            has_idle: caps.has_str("IDLE"),
            flag_with,
            limits,
        })
    }

    async fn ensure_folder(&self, s: &mut ImapSession, folder: &str) -> Result<(), ImapError> {
        let server = &self.server;
        let quoted = format!("\"{}\"", folder.replace('\\', "\\\\").replace('"', "\\\""));
        let exists = !collect(
            server,
            "LIST",
            server.step("LIST", s.list(Some(""), Some(&quoted))).await?,
        )
        .await?
        .is_empty();
        if exists {
            return Ok(());
        }
        match server
            .step(&format!("CREATE {folder}"), s.create(folder))
            .await
        {
            Ok(()) => {
                tracing::info!(account = %server.account, "IMAP: created folder {folder}");
                Ok(())
            }
            Err(e) => {
                // Another mailbox's task may have created it a moment ago.
                let again = collect(
                    server,
                    "LIST",
                    server.step("LIST", s.list(Some(""), Some(&quoted))).await?,
                )
                .await?;
                if again.is_empty() { Err(e) } else { Ok(()) }
            }
        }
    }

    /// The size the server gives for one message (`RFC822.SIZE`); 0 when it gives none.
    async fn size_of(&self, s: &mut ImapSession, uid: u32) -> Result<u64, ImapError> {
        let server = &self.server;
        let fetches = collect(
            server,
            "UID FETCH (RFC822.SIZE)",
            server
                .step(
                    "UID FETCH",
                    s.uid_fetch(uid.to_string(), "(UID RFC822.SIZE)"),
                )
                .await?,
        )
        .await?;
        Ok(fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.size)
            .map(u64::from)
            .unwrap_or(0))
    }

    /// Fetches, delivers and acknowledges `items` batch by batch, in UID order. The network
    /// and the store overlap: while batch k is being committed (on a blocking thread), batch k+1
    /// is fetched and committed UIDs are acknowledged. A message is acknowledged only after its
    /// commit, and batch k+1 is committed only after batch k. Committed UIDs are collected and
    /// acknowledged together while more of `items` waits ([`acknowledge_now`]), and all of them
    /// at the end. Stops between batches when shutdown is asked for; what was committed by then
    /// is acknowledged first. After a failure, what was committed is still acknowledged if the
    /// connection allows (what is not is fetched again by the next session, found a duplicate
    /// by the store, and acknowledged then).
    async fn process(
        &mut self,
        s: &mut ImapSession,
        sel: &mut Selected,
        items: Vec<u32>,
    ) -> Result<(), ImapError> {
        let mut pending = Unacknowledged::default();
        let result = self.sync(s, sel, items, &mut pending).await;
        let uids = pending.take(pending.len());
        match result {
            Ok(()) => self.acknowledge(s, sel, &uids).await,
            Err(e) => {
                if !uids.is_empty()
                    && let Err(ack) = self.acknowledge(s, sel, &uids).await
                {
                    tracing::debug!(
                        account = %self.server.account,
                        mailbox = %self.mailbox,
                        "IMAP: {} stored message(s) not acknowledged after a failure ({ack}); the next session does it",
                        uids.len()
                    );
                }
                Err(e)
            }
        }
    }

    /// The work of [`MailboxWorker::process`]; committed UIDs not acknowledged yet are left in
    /// `pending`.
    async fn sync(
        &mut self,
        s: &mut ImapSession,
        sel: &mut Selected,
        items: Vec<u32>,
        pending: &mut Unacknowledged,
    ) -> Result<(), ImapError> {
        let mut commits = Commits::start(Origin {
            sink: self.sink.clone(),
            status: self.status.clone(),
            account: self.server.account.clone(),
            mailbox: self.mailbox.clone(),
        });
        let steps = plan(&items, self.options.batch_messages, &self.suspects.1);
        let mut result = self.sync_steps(s, sel, steps, pending, &mut commits).await;
        // The last batches: settled as they commit while nothing failed (acknowledged in sets
        // as the backlog shrinks). After a failure, what was handed over still finishes (after
        // a failed commit nothing more is stored, see `commit.rs`); it is acknowledged by the
        // caller if the connection still allows, else fetched again by the next session and
        // found a duplicate. Nothing is left to fetch, so the connection is free: what has
        // committed is acknowledged while the store finishes the rest, in halving sets
        // ([`acknowledge_now`]).
        loop {
            if self.stopping() {
                commits.stop();
            }
            let Some(done) = commits.oldest().await else {
                break;
            };
            match self.finish(done, sel) {
                Ok(uids) => pending.add(uids),
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                    continue;
                }
            }
            if result.is_ok()
                && let Err(e) = self
                    .settle(s, sel, pending, Vec::new(), 0, commits.messages())
                    .await
            {
                result = Err(e);
            }
        }
        result
    }

    /// The steps of [`MailboxWorker::sync`]: what each batch FETCH brings is queued to be
    /// committed, and the queue's oldest are settled (acknowledged as [`acknowledge_now`] says)
    /// as they finish, or when it is full. So the store goes on committing while a MOVE of
    /// thousands runs. A batch cut short by a message over `max_message_bytes` is followed by
    /// that message alone, then by the rest of the batch, fetched again: UID order is kept and
    /// nothing after the large message is held while it is read.
    async fn sync_steps(
        &mut self,
        s: &mut ImapSession,
        sel: &mut Selected,
        steps: Vec<Step>,
        pending: &mut Unacknowledged,
        commits: &mut Commits,
    ) -> Result<(), ImapError> {
        let limits = sel.limits;
        let mut steps: std::collections::VecDeque<Step> = steps.into();
        // Messages in the steps not taken yet: what still waits on the server to be fetched.
        let mut after: usize = steps.iter().map(Step::len).sum();
        while let Some(step) = steps.pop_front() {
            if self.stopping() {
                break;
            }
            after = after.saturating_sub(step.len());
            let batch = match step {
                Step::Batch(batch) => batch,
                Step::Alone(uid) => {
                    // Everything handed over is finished first: this one goes alone.
                    while let Some(done) = commits.oldest().await {
                        let done = self.finish(done, sel)?;
                        let committing = commits.messages();
                        self.settle(s, sel, pending, done, after + 1, committing)
                            .await?;
                    }
                    let done = self.alone(s, sel, uid, &limits).await?;
                    self.settle(s, sel, pending, done, after, 0).await?;
                    continue;
                }
            };
            let fetched = match self.fetch(s, sel, &batch, commits).await {
                Ok(f) => f,
                Err(e) => {
                    // One of them may be what breaks the FETCH: next time, one at a time.
                    self.suspects.1.extend(batch.iter().copied());
                    return Err(e);
                }
            };
            if !fetched.committed.is_empty() {
                let committing = commits.messages();
                self.settle(s, sel, pending, fetched.committed, after, committing)
                    .await?;
            }
            if let Some(e) = fetched.failure {
                return Err(e);
            }
            if let Some(large) = fetched.cut_at {
                after += 1 + fetched.rest.len();
                if !fetched.rest.is_empty() {
                    steps.push_front(Step::Batch(fetched.rest));
                }
                steps.push_front(Step::Alone(large));
                continue;
            }
            // Those the server handed out nothing for go alone next time, and are counted.
            self.suspects.1.extend(fetched.rest.iter().copied());
            // Settle the commits that are done, and wait for the oldest while too much waits.
            while commits.oldest_done() || commits.full(self.options.batch_bytes) {
                let Some(done) = commits.oldest().await else {
                    break;
                };
                let done = self.finish(done, sel)?;
                let committing = commits.messages();
                self.settle(s, sel, pending, done, after, committing)
                    .await?;
            }
        }
        Ok(())
    }

    /// Adds newly committed UIDs to `pending` and acknowledges as many as [`acknowledge_now`]
    /// says, with `to_fetch` messages still waiting on the server to be fetched and
    /// `committing` fetched and not committed yet.
    async fn settle(
        &self,
        s: &mut ImapSession,
        sel: &Selected,
        pending: &mut Unacknowledged,
        done: Vec<u32>,
        to_fetch: usize,
        committing: usize,
    ) -> Result<(), ImapError> {
        pending.add(done);
        let n = acknowledge_now(
            self.options.acknowledge,
            to_fetch,
            committing,
            pending.len(),
            pending.waited(),
        );
        if n > 0 {
            let uids = pending.take(n);
            self.acknowledge(s, sel, &uids).await?;
        }
        Ok(())
    }

    /// One message on its own: given up if it failed `max_attempts` times already; else read
    /// in chunks when over `max_message_bytes` (by its `RFC822.SIZE`, or by what a FETCH of
    /// it brought), or fetched alone. Returns the UIDs committed (none when the server handed
    /// out nothing: it stays, counted, for the next session).
    async fn alone(
        &mut self,
        s: &mut ImapSession,
        sel: &mut Selected,
        uid: u32,
        limits: &Limits,
    ) -> Result<Vec<u32>, ImapError> {
        let source = MessageSource::Imap {
            account: self.server.account.clone(),
            mailbox: self.mailbox.clone(),
            uidvalidity: sel.uidvalidity,
            uid,
        };
        // A server may drop the connection after failing on the message before this one
        // (Dovecot does, for a file it cannot read): that is not this message's failure. The
        // size, asked first, says so before anything is counted against it.
        let size = self.size_of(s, uid).await?;
        let sink = self.sink.clone();
        let src = source.clone();
        let (tries, last_error) = blocking(move || sink.failed_attempts(&src)).await?;
        if tries >= limits.max_attempts {
            tracing::warn!(
                account = %self.server.account,
                mailbox = %self.mailbox,
                uid,
                "IMAP: UID {uid} failed {tries} times ({last_error}); quarantined unread and acknowledged"
            );
            let sink = self.sink.clone();
            let src = source.clone();
            blocking(move || sink.give_up(src, size, tries, &last_error)).await?;
            return Ok(self.committed_alone(sel, uid));
        }
        let read = if size > limits.max_message_bytes {
            self.fetch_partial(s, uid, size, limits)
                .await
                .map(|p| p.map(Fetched::Partial))
        } else {
            match self.fetch_one(s, uid, limits).await {
                // Larger than the server said: read in chunks like any message over the bound.
                Ok(Some(raw)) if raw.len() as u64 > limits.max_message_bytes => {
                    drop(raw);
                    self.fetch_partial(s, uid, size, limits)
                        .await
                        .map(|p| p.map(Fetched::Partial))
                }
                other => other.map(|raw| raw.map(Fetched::Whole)),
            }
        };
        let fetched = match read {
            Ok(f) => f,
            Err(e) => {
                let sink = self.sink.clone();
                let (src, why) = (source.clone(), e.to_string());
                blocking(move || sink.record_failure(&src, &why)).await?;
                return Err(e);
            }
        };
        let sink = self.sink.clone();
        let status = self.status.clone();
        let (account, mailbox) = (self.server.account.clone(), self.mailbox.clone());
        let delivered = blocking(move || match fetched {
            Some(Fetched::Whole(raw)) => sink.deliver_owned(raw, source).map(Some),
            Some(Fetched::Partial(p)) => sink.deliver_partial(&p, source).map(Some),
            None => sink
                .record_failure(&source, "the server returned no content for it")
                .map(|_| None),
        })
        .await?;
        match delivered {
            Some(d) => {
                status.stored(&account, &mailbox, uid, &d.outcome);
                Ok(self.committed_alone(sel, uid))
            }
            None => Ok(Vec::new()),
        }
    }

    /// `uid` was committed on its own: the checkpoint moved, it is no longer a suspect.
    fn committed_alone(&mut self, sel: &mut Selected, uid: u32) -> Vec<u32> {
        sel.last_uid = sel.last_uid.max(uid);
        self.suspects.1.remove(&uid);
        vec![uid]
    }

    /// A message over `max_message_bytes`: its first `oversized_head_bytes`, its size and the
    /// SHA-256 of all of it, read with partial FETCHes of [`CHUNK`] bytes (never all at once).
    /// `None` when the server hands out nothing.
    async fn fetch_partial(
        &self,
        s: &mut ImapSession,
        uid: u32,
        size: u64,
        limits: &Limits,
    ) -> Result<Option<Partial>, ImapError> {
        use sha2::Digest;
        let server = &self.server;
        let mut hasher = sha2::Sha256::new();
        let mut head: Vec<u8> = Vec::new();
        let mut offset: u64 = 0;
        // The server's size is a promise, not a bound we trust: at most twice as much is read.
        while offset <= size.saturating_mul(2) {
            let items = collect(
                server,
                "UID FETCH (BODY.PEEK[]<partial>)",
                server
                    .step(
                        "UID FETCH",
                        s.uid_fetch(
                            uid.to_string(),
                            format!("(UID BODY.PEEK[]<{offset}.{CHUNK}>)"),
                        ),
                    )
                    .await?,
            )
            .await?;
            let Some(chunk) = items
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
            else {
                break;
            };
            if head.len() < limits.oversized_head_bytes {
                let want = (limits.oversized_head_bytes - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..want]); // ok: want <= chunk.len()
            }
            hasher.update(chunk);
            offset += chunk.len() as u64;
            if (chunk.len() as u64) < CHUNK {
                break;
            }
        }
        if offset == 0 {
            return Ok(None);
        }
        let kept = head.len();
        Ok(Some(Partial {
            head,
            size: offset,
            sha256: Some(hex::encode(hasher.finalize())),
            reason: Partial::oversized_reason(offset, limits, kept),
        }))
    }

    /// `UID FETCH (BODY.PEEK[]<0.n>)` of one batch. What comes is handed to `commits` in
    /// parts as it comes ([`Gathering`]), and the oldest commits are waited for while too much
    /// is in flight: no size is asked first, and memory stays within about `batch_bytes` in
    /// flight, one part being gathered, and one message.
    async fn fetch(
        &self,
        s: &mut ImapSession,
        sel: &mut Selected,
        batch: &[u32],
        commits: &mut Commits,
    ) -> Result<BatchFetched, ImapError> {
        let server = &self.server;
        let max_bytes = self.options.batch_bytes;
        let mut gathering = Gathering::new(batch, max_bytes, sel.limits.max_message_bytes);
        let mut committed = Vec::new();
        let mut failure = None;
        {
            let stream = server
                .step(
                    "UID FETCH",
                    s.uid_fetch(uid_set(batch), fetch_items(&sel.limits)),
                )
                .await?;
            let mut stream = std::pin::pin!(stream);
            // The stream is read to its end even after a failed commit, so that the session
            // can still acknowledge what was committed.
            while let Some(item) = next(server, "UID FETCH (BODY.PEEK[])", &mut stream).await? {
                let (Some(uid), Some(body)) = (item.uid, item.body()) else {
                    continue;
                };
                let Some(part) = gathering.take(uid, body) else {
                    continue;
                };
                commits.hand(sel.uidvalidity, part);
                while commits.full(max_bytes) {
                    let Some(done) = commits.oldest().await else {
                        break;
                    };
                    match self.finish(done, sel) {
                        Ok(uids) => committed.extend(uids),
                        Err(e) => {
                            // After a failed commit nothing more is stored (`commit.rs`).
                            gathering.stop();
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        let gathered = gathering.finish();
        if failure.is_none() && !gathered.last.is_empty() {
            commits.hand(sel.uidvalidity, gathered.last);
        }
        if failure.is_none() && gathered.cut_at.is_none() && !gathered.rest.is_empty() {
            // Expunged meanwhile, or the server could not read it: not acknowledged, so a
            // message that still exists is fetched again (alone, and counted) by the next
            // session.
            tracing::warn!(
                account = %server.account,
                mailbox = %self.mailbox,
                "IMAP: the server returned no content for UID(s) {}; they are left in place",
                uid_set(&gathered.rest)
            );
        }
        Ok(BatchFetched {
            committed,
            rest: gathered.rest,
            cut_at: gathered.cut_at,
            failure,
        })
    }

    /// One message, at most `max_message_bytes` + 1 of it. `None` when the server hands out
    /// nothing.
    async fn fetch_one(
        &self,
        s: &mut ImapSession,
        uid: u32,
        limits: &Limits,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let server = &self.server;
        let items = collect(
            server,
            "UID FETCH (BODY.PEEK[])",
            server
                .step(
                    "UID FETCH",
                    s.uid_fetch(uid.to_string(), fetch_items(limits)),
                )
                .await?,
        )
        .await?;
        Ok(items
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(<[u8]>::to_vec))
    }

    /// A batch's commits: the committed UIDs, or the store failure (after the committed part is
    /// recorded in `sel`, so it is still acknowledged by the caller's next session as "stored but
    /// not acknowledged").
    fn finish(&self, done: Committed, sel: &mut Selected) -> Result<Vec<u32>, ImapError> {
        if let Some(&max) = done.uids.iter().max() {
            sel.last_uid = sel.last_uid.max(max);
        }
        match done.failure {
            Some(e) => Err(ImapError::Sink(e)),
            None => Ok(done.uids),
        }
    }

    /// Tells the server these (committed) messages are done: MOVE, or COPY + \Deleted +
    /// UID EXPUNGE, or flags.
    async fn acknowledge(
        &self,
        s: &mut ImapSession,
        sel: &Selected,
        uids: &[u32],
    ) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let server = &self.server;
        for set in uid_sets(uids, MAX_SET_CHARS) {
            self.acknowledge_set(s, sel, &set).await?;
        }
        tracing::info!(
            account = %server.account,
            mailbox = %self.mailbox,
            "IMAP: stored and {} {} message(s), UIDs {}",
            if sel.folder.is_some() { "moved" } else { "flagged" },
            uids.len(),
            uid_set(uids)
        );
        Ok(())
    }

    /// One acknowledging command (or COPY + STORE + EXPUNGE) for one UID set.
    async fn acknowledge_set(
        &self,
        s: &mut ImapSession,
        sel: &Selected,
        set: &str,
    ) -> Result<(), ImapError> {
        let server = &self.server;
        match &sel.folder {
            Some(folder) if sel.has_move => {
                server
                    .step(&format!("UID MOVE to {folder}"), s.uid_mv(set, folder))
                    .await?;
            }
            Some(folder) => {
                server
                    .step(&format!("UID COPY to {folder}"), s.uid_copy(set, folder))
                    .await?;
                let stream = server
                    .step(
                        "UID STORE \\Deleted",
                        s.uid_store(set, "+FLAGS.SILENT (\\Deleted)"),
                    )
                    .await?;
                collect(server, "UID STORE \\Deleted", stream).await?;
                if sel.has_uidplus {
                    let stream = server.step("UID EXPUNGE", s.uid_expunge(set)).await?;
                    collect(server, "UID EXPUNGE", stream).await?;
                } else {
                    // Plain EXPUNGE would also remove messages someone else marked \Deleted
                    // that were never stored; leave them for the mail client to expunge.
                    tracing::debug!(
                        account = %server.account,
                        "IMAP: no UIDPLUS; copied messages stay flagged \\Deleted in {}",
                        sel.mailbox
                    );
                }
            }
            None => {
                let stream = server
                    .step(
                        "UID STORE",
                        s.uid_store(set, format!("+FLAGS.SILENT {}", sel.flag_with)),
                    )
                    .await?;
                collect(server, "UID STORE", stream).await?;
            }
        }
        Ok(())
    }

    /// IDLE until the server reports a change, the re-issue interval passes, or shutdown.
    /// Returns the session and whether shutdown was asked for.
    async fn idle(&mut self, s: ImapSession) -> Result<(ImapSession, bool), ImapError> {
        let server = self.server.clone();
        // Responses that arrived outside a command: EXPUNGE after our own MOVE is of no use, but
        // EXISTS/RECENT means new mail came in while we worked. The server will not announce it
        // again during IDLE, so go back and fetch instead of waiting for the next re-issue.
        // async-imap drops responses once its channel is full (a MOVE of many UIDs fills it
        // with EXPUNGEs): then an EXISTS may have been lost, so look for new mail once more.
        let mut new_mail = s.unsolicited_responses.is_full();
        while let Ok(r) = s.unsolicited_responses.try_recv() {
            new_mail |= matches!(
                r,
                async_imap::types::UnsolicitedResponse::Exists(_)
                    | async_imap::types::UnsolicitedResponse::Recent(_)
            );
        }
        if new_mail {
            return Ok((s, false));
        }
        let mut handle = s.idle();
        server.step("IDLE", handle.init()).await?;
        let reissue = server.poll_interval.min(IDLE_MAX);
        let stop = {
            let (wait, _interrupt) = handle.wait_with_timeout(reissue + server.timeout);
            tokio::select! {
                r = wait => {
                    let woke = r.map_err(|e| ImapError::protocol(server.address(), "IDLE", e))?;
                    // A server that answers IDLE with NO, BAD or BYE (Dovecot does, with "Internal
                    // error", for a mailbox deleted and made again under it) would wake us at
                    // once, every time, for ever: give the session up and reconnect, whose SELECT
                    // sees the mailbox as it is now (a new UIDVALIDITY included).
                    if let async_imap::extensions::idle::IdleResponse::NewData(data) = &woke
                        && let Some(said) = refusal(data.parsed())
                    {
                        return Err(ImapError::Server {
                            server: server.address(),
                            message: format!("answered IDLE with {said}"),
                        });
                    }
                    false
                }
                _ = tokio::time::sleep(reissue) => false,
                _ = shutdown_requested(&mut self.shutdown) => true,
            }
        };
        let s = server.step("DONE (end of IDLE)", handle.done()).await?;
        Ok((s, stop))
    }
}

/// An untagged NO, BAD or BYE, as the server's words, or None for anything else.
fn refusal(response: &async_imap::imap_proto::Response<'_>) -> Option<String> {
    use async_imap::imap_proto::{Response, Status};
    let Response::Data { status, outcome } = response else {
        return None;
    };
    let word = match status {
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::Bye => "BYE",
        _ => return None,
    };
    let text = outcome.information.as_deref().unwrap_or("");
    // The server's text is sender-controlled in the sense that it is not ours: bound it.
    Some(
        format!("{word} {}", text.chars().take(200).collect::<String>())
            .trim_end()
            .to_string(),
    )
}

/// Resolves when shutdown is asked for: the value turns true or the sender is gone.
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Renews the mailbox lease every third of its time; returns (ending the session) when it is
/// lost or cannot be renewed. Losing it is safe at any point: what was committed stays, and
/// what was not acknowledged is fetched again by the next holder and stored once.
async fn keep_lease(
    sink: Arc<dyn MessageSink>,
    account: String,
    mailbox: String,
    ttl: Duration,
) -> ImapError {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let (sink, acct, name) = (sink.clone(), account.clone(), mailbox.clone());
        match blocking(move || sink.take_lease(&acct, &name, ttl)).await {
            Ok(true) => {}
            Ok(false) => {
                return ImapError::Lease(
                    "another instance took the mailbox over (this one's lease had expired)".into(),
                );
            }
            Err(e) => return ImapError::Lease(format!("cannot renew the mailbox lease: {e}")),
        }
    }
}

/// Runs a blocking sink call off the async threads.
async fn blocking<T, F>(f: F) -> Result<T, ImapError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SinkError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ImapError::Sink),
        Err(e) => Err(ImapError::Sink(SinkError(format!(
            "the store task failed: {e}"
        )))),
    }
}

/// The next item of a response stream, under the account's timeout.
async fn next<T, S>(server: &Server, step: &str, stream: &mut S) -> Result<Option<T>, ImapError>
where
    S: Stream<Item = Result<T, async_imap::error::Error>> + Unpin,
{
    match tokio::time::timeout(server.timeout, stream.next()).await {
        Err(_) => Err(server.timed_out(step)),
        Ok(None) => Ok(None),
        Ok(Some(Ok(v))) => Ok(Some(v)),
        Ok(Some(Err(e))) => Err(ImapError::protocol(server.address(), step, e)),
    }
}

/// Reads a response stream to its end (the command's tagged reply), each item under the timeout.
async fn collect<T, S>(server: &Server, step: &str, stream: S) -> Result<Vec<T>, ImapError>
where
    S: Stream<Item = Result<T, async_imap::error::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(v) = next(server, step, &mut stream).await? {
        out.push(v);
    }
    Ok(out)
}

/// Delay before reconnect attempt `n` (1-based): base·2^(n-1), capped, then a random point in
/// its upper half so many clients do not reconnect in step.
fn backoff(n: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    let capped = exp.min(max);
    let half = capped / 2;
    let jitter_ms = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter_ms)
}

/// What one message read on its own gave.
enum Fetched {
    Whole(Vec<u8>),
    Partial(Partial),
}

/// The UIDs of a `UID n:*` search above `last`, in order: `n:*` names the last message even
/// when its UID is below n.
fn after_checkpoint(found: impl IntoIterator<Item = u32>, last: u32) -> Vec<u32> {
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
    uids.sort_unstable();
    uids
}

/// The work for UID-ordered `uids`: batches of at most `max_messages`, with each suspect on
/// its own, in UID order.
fn plan(uids: &[u32], max_messages: usize, suspects: &HashSet<u32>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run: Vec<u32> = Vec::new();
    for &uid in uids {
        if suspects.contains(&uid) {
            steps.extend(
                run.chunks(max_messages.max(1))
                    .map(|c| Step::Batch(c.to_vec())),
            );
            run.clear();
            steps.push(Step::Alone(uid));
        } else {
            run.push(uid);
        }
    }
    steps.extend(
        run.chunks(max_messages.max(1))
            .map(|c| Step::Batch(c.to_vec())),
    );
    steps
}

/// What a message is fetched as: all of it, or `max_message_bytes` + 1 bytes of it (so that
/// one over the bound is known as such and never held whole).
fn fetch_items(limits: &Limits) -> String {
    format!(
        "(UID BODY.PEEK[]<0.{}>)",
        limits.max_message_bytes.saturating_add(1)
    )
}

/// What one batch FETCH did.
struct BatchFetched {
    /// UIDs whose commits were waited for during the FETCH.
    committed: Vec<u32>,
    /// UIDs asked for and not handed to the store, in UID order: after `cut_at`, fetched
    /// again; else the server sent nothing for them.
    rest: Vec<u32>,
    /// The message over `max_message_bytes` the batch was cut at.
    cut_at: Option<u32>,
    /// A commit that failed during the FETCH.
    failure: Option<ImapError>,
}

/// What one batch FETCH keeps of the messages the server sends, as they come: parts for the
/// store of about `max_bytes` each, so that a batch of large messages is never held whole.
/// A message over `max_message_bytes` cuts the batch: it and everything after it are not
/// kept (fetched again after it, on its own), so UID order is kept and memory bounded.
/// Messages not asked for, and a second copy of one, are ignored.
struct Gathering {
    /// UIDs asked for and not kept yet.
    wanted: HashSet<u32>,
    part: Vec<(u32, Vec<u8>)>,
    part_bytes: u64,
    max_bytes: u64,
    max_message_bytes: u64,
    cut_at: Option<u32>,
    stopped: bool,
}

/// The end of a [`Gathering`].
struct Gathered {
    /// The last part, in UID order (may be empty).
    last: Vec<(u32, Vec<u8>)>,
    /// UIDs asked for and not kept, in UID order (not the one cut at).
    rest: Vec<u32>,
    cut_at: Option<u32>,
}

impl Gathering {
    fn new(batch: &[u32], max_bytes: u64, max_message_bytes: u64) -> Gathering {
        Gathering {
            wanted: batch.iter().copied().collect(),
            part: Vec::new(),
            part_bytes: 0,
            max_bytes,
            max_message_bytes,
            cut_at: None,
            stopped: false,
        }
    }

    /// Takes one message the server sent. Returns a part (in UID order) to hand to the store
    /// once the part reaches `max_bytes`.
    fn take(&mut self, uid: u32, body: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
        if self.stopped || self.cut_at.is_some() || !self.wanted.remove(&uid) {
            return None;
        }
        if body.len() as u64 > self.max_message_bytes {
            self.cut_at = Some(uid);
            return None;
        }
        self.part_bytes += body.len() as u64;
        self.part.push((uid, body.to_vec()));
        if self.part_bytes < self.max_bytes {
            return None;
        }
        self.part_bytes = 0;
        let mut part = std::mem::take(&mut self.part);
        part.sort_by_key(|(uid, _)| *uid);
        Some(part)
    }

    /// Keeps nothing more.
    fn stop(&mut self) {
        self.stopped = true;
    }

    fn finish(self) -> Gathered {
        let mut last = self.part;
        last.sort_by_key(|(uid, _)| *uid);
        let mut rest: Vec<u32> = self.wanted.into_iter().collect();
        rest.sort_unstable();
        Gathered {
            last,
            rest,
            cut_at: self.cut_at,
        }
    }
}

/// Longest UID set in one acknowledging command: well under the 64 KB command line servers
/// accept (Dovecot's `imap_max_line_length`), whatever gaps the committed UIDs have.
const MAX_SET_CHARS: usize = 8 * 1024;

/// [`uid_set`] of `uids` cut into sets of at most `max_chars` characters (one range never cut).
fn uid_sets(uids: &[u32], max_chars: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for part in uid_set(uids).split(',').filter(|p| !p.is_empty()) {
        if !cur.is_empty() && cur.len() + 1 + part.len() > max_chars {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(part);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `1:3,7,9:10` from UIDs (any order, duplicates allowed).
fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 7, 8, 3]), "1:3,5,7:9");
        assert_eq!(uid_set(&[4]), "4");
    }

    #[test]
    fn long_uid_sets_are_cut_between_ranges() {
        let gappy: Vec<u32> = (1..=2000).map(|u| u * 2).collect();
        let sets = uid_sets(&gappy, 100);
        assert!(sets.len() > 1);
        assert!(sets.iter().all(|s| s.len() <= 100), "{sets:?}");
        let mut back: Vec<u32> = sets
            .iter()
            .flat_map(|s| s.split(','))
            .map(|u| u.parse::<u32>().unwrap())
            .collect();
        back.sort_unstable();
        assert_eq!(back, gappy);
        assert_eq!(uid_sets(&[1, 2, 3, 9], 100), vec!["1:3,9".to_string()]);
        assert!(uid_sets(&[], 100).is_empty());
    }

    #[test]
    fn plan_makes_batches_of_a_count_with_suspects_alone_in_uid_order() {
        let uids: Vec<u32> = (1..=8).collect();
        let suspects: HashSet<u32> = [3, 4].into_iter().collect();
        assert_eq!(
            plan(&uids, 2, &suspects),
            vec![
                Step::Batch(vec![1, 2]),
                Step::Alone(3),
                Step::Alone(4),
                Step::Batch(vec![5, 6]),
                Step::Batch(vec![7, 8]),
            ]
        );
        assert_eq!(
            plan(&uids[..3], 0, &HashSet::new()),
            vec![
                Step::Batch(vec![1]),
                Step::Batch(vec![2]),
                Step::Batch(vec![3])
            ]
        );
        assert!(plan(&[], 100, &suspects).is_empty());
    }

    #[test]
    fn only_uids_after_the_checkpoint_are_new_in_order() {
        // `UID 8:*` on a mailbox whose last UID is 5 names 5.
        assert_eq!(after_checkpoint([5], 7), Vec::<u32>::new());
        assert_eq!(after_checkpoint([12, 3, 9, 7, 8], 7), vec![8, 9, 12]);
        assert!(after_checkpoint([], 0).is_empty());
    }

    #[test]
    fn a_message_is_fetched_to_one_byte_past_the_bound() {
        let limits = Limits {
            max_message_bytes: 2048,
            ..Limits::default()
        };
        assert_eq!(fetch_items(&limits), "(UID BODY.PEEK[]<0.2049>)");
    }

    fn uids(part: &[(u32, Vec<u8>)]) -> Vec<u32> {
        part.iter().map(|(u, _)| *u).collect()
    }

    #[test]
    fn a_batch_is_handed_over_in_parts_of_about_max_bytes() {
        let mut g = Gathering::new(&[1, 2, 3, 4, 5], 25, 1000);
        assert!(g.take(1, &[b'a'; 10]).is_none());
        assert!(g.take(2, &[b'b'; 10]).is_none());
        let part = g.take(3, &[b'c'; 10]).expect("30 bytes reach 25");
        assert_eq!(uids(&part), vec![1, 2, 3]);
        assert_eq!(part[1].1, vec![b'b'; 10]);
        // One message over the part's bound goes on its own.
        assert_eq!(uids(&g.take(4, &[b'd'; 100]).unwrap()), vec![4]);
        assert!(g.take(5, b"e").is_none());
        let end = g.finish();
        assert_eq!(uids(&end.last), vec![5]);
        assert!(end.rest.is_empty());
        assert_eq!(end.cut_at, None);
    }

    #[test]
    fn a_message_over_the_bound_cuts_the_batch_and_what_follows_is_fetched_again() {
        let mut g = Gathering::new(&[1, 2, 3, 4, 5], 1 << 20, 100);
        assert!(g.take(1, &[0; 100]).is_none());
        assert!(g.take(2, &[0; 101]).is_none());
        // Nothing after the large one is kept, however small.
        assert!(g.take(3, b"x").is_none());
        assert!(g.take(4, &[0; 2 << 20]).is_none());
        let end = g.finish();
        assert_eq!(uids(&end.last), vec![1]);
        assert_eq!(end.cut_at, Some(2));
        assert_eq!(end.rest, vec![3, 4, 5]);
    }

    #[test]
    fn a_gathering_keeps_only_what_was_asked_once_in_uid_order() {
        let mut g = Gathering::new(&[3, 5, 7], 1 << 20, 100);
        // Out of order, a UID not asked for, a second copy.
        for (uid, body) in [(7, b"seven"), (9, b"nine!"), (3, b"three"), (7, b"again")] {
            assert!(g.take(uid, body).is_none());
        }
        let end = g.finish();
        assert_eq!(uids(&end.last), vec![3, 7]);
        assert_eq!(end.last[1].1, b"seven".to_vec());
        assert_eq!(end.rest, vec![5], "sent nothing for 5");
        let mut stopped = Gathering::new(&[1, 2], 1 << 20, 100);
        assert!(stopped.take(1, b"a").is_none());
        stopped.stop();
        assert!(stopped.take(2, b"b").is_none());
        let end = stopped.finish();
        assert_eq!(uids(&end.last), vec![1]);
        assert_eq!(end.rest, vec![2]);
    }

    #[test]
    fn an_untagged_no_bad_or_bye_is_a_refusal_and_nothing_else_is() {
        use async_imap::imap_proto::Response;
        let said = |raw: &[u8]| -> Option<String> {
            let (_, r) = Response::parse(raw).ok()?;
            refusal(&r)
        };
        assert_eq!(
            said(b"* NO Internal error occurred.\r\n").as_deref(),
            Some("NO Internal error occurred.")
        );
        assert_eq!(said(b"* BAD Nonsense\r\n").as_deref(), Some("BAD Nonsense"));
        assert_eq!(
            said(b"* BYE Server shutting down.\r\n").as_deref(),
            Some("BYE Server shutting down.")
        );
        assert_eq!(said(b"* OK Still here\r\n"), None);
        assert_eq!(said(b"* 3 EXISTS\r\n"), None);
        assert_eq!(said(b"* 2 EXPUNGE\r\n"), None);
        let long = format!("* NO {}\r\n", "x".repeat(5000));
        assert!(said(long.as_bytes()).is_some_and(|s| s.len() <= 204));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(60);
        for n in 1..40 {
            let d = backoff(n, base, max);
            let full = base.saturating_mul(1 << (n - 1).min(16)).min(max);
            assert!(
                d >= full / 2 && d <= full + Duration::from_millis(1),
                "{n}: {d:?}"
            );
        }
        assert!(backoff(30, base, max) >= Duration::from_secs(30));
    }
}
