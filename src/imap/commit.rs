//! The store's side of a mailbox sync: fetched batches are committed one after another, in
//! the order they were fetched, on a thread of their own, while the connection goes on
//! fetching and acknowledging (a MOVE of thousands takes Dovecot a quarter of a second). And
//! while one batch is stored, the next is counted and read (parsed and opened) on the other
//! cores, as `casegate ingest` does.
//!
//! Invariants: a batch is stored only after every batch handed over before it was stored;
//! after one fails, none handed over later is stored (the store keeps UID order, and what is
//! not stored is fetched again); a batch's tries are counted before anything reads it, and a
//! batch is counted ahead of the one being stored only when that one is grouped (see
//! [`crate::pipeline::PipelineRef::count_batch`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::{ImapStatus, MessageSink, SinkError, Staged};
use crate::store::MessageSource;

/// Most batches handed over and not settled at once (and at most about `batch_bytes` of
/// them): enough for the store to go on while the connection acknowledges.
const MAX_BATCHES: usize = 32;

/// The outcome of one batch's commit: the UIDs committed, from the first, and why the next
/// one was not.
#[derive(Default)]
pub(super) struct Committed {
    pub uids: Vec<u32>,
    pub failure: Option<SinkError>,
}

/// Where the messages come from (their sources, logs and status).
#[derive(Clone)]
pub(super) struct Origin {
    pub sink: Arc<dyn MessageSink>,
    pub status: Arc<ImapStatus>,
    pub account: String,
    pub mailbox: String,
}

/// A fetched batch, to be stored.
struct Job {
    uidvalidity: u32,
    messages: Vec<(u32, Vec<u8>)>,
    done: oneshot::Sender<Committed>,
}

/// A batch handed over and not settled yet.
struct Handed {
    done: oneshot::Receiver<Committed>,
    /// Taken from `done` once it arrived.
    got: Option<Committed>,
    messages: usize,
    bytes: u64,
}

/// The batches of one sync on their way to the store, oldest first. Dropping it lets the
/// thread finish what was handed over and end.
pub(super) struct Commits {
    jobs: mpsc::UnboundedSender<Job>,
    handed: VecDeque<Handed>,
    /// Set on shutdown: batches not counted yet are left alone (see [`Commits::stop`]).
    stopping: Arc<AtomicBool>,
}

impl Commits {
    /// Starts the storing thread for one sync.
    pub fn start(origin: Origin) -> Commits {
        let (jobs, rx) = mpsc::unbounded_channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        // Runs until `jobs` is dropped; a panic in it drops the senders, which reads as a
        // failed commit.
        tokio::task::spawn_blocking(move || run(&origin, rx, &stop));
        Commits {
            jobs,
            handed: VecDeque::new(),
            stopping,
        }
    }

    /// Shutdown: the batch being stored and the one read ahead of it are finished; those
    /// handed over after them are not stored (nothing of them is counted; they stay on the
    /// server and are fetched by the next start).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Hands a fetched batch (UID order) over to be stored after those handed before it.
    pub fn hand(&mut self, uidvalidity: u32, messages: Vec<(u32, Vec<u8>)>) {
        let (done, rx) = oneshot::channel();
        let count = messages.len();
        let bytes = messages.iter().map(|(_, raw)| raw.len() as u64).sum();
        // The thread ends only when `jobs` is dropped, or by a panic: then `rx` says so.
        let _ = self.jobs.send(Job {
            uidvalidity,
            messages,
            done,
        });
        self.handed.push_back(Handed {
            done: rx,
            got: None,
            messages: count,
            bytes,
        });
    }

    /// Messages handed over and not settled.
    pub fn messages(&self) -> usize {
        self.handed.iter().map(|h| h.messages).sum()
    }

    /// Whether to wait for the oldest before fetching more: memory stays bounded.
    pub fn full(&self, max_bytes: u64) -> bool {
        self.handed.len() >= MAX_BATCHES
            || self.handed.iter().map(|h| h.bytes).sum::<u64>() >= max_bytes
    }

    /// Whether the oldest batch is stored (or failed) already.
    pub fn oldest_done(&mut self) -> bool {
        let Some(h) = self.handed.front_mut() else {
            return false;
        };
        if h.got.is_none() {
            match h.done.try_recv() {
                Ok(c) => h.got = Some(c),
                Err(oneshot::error::TryRecvError::Empty) => return false,
                Err(oneshot::error::TryRecvError::Closed) => h.got = Some(gone()),
            }
        }
        true
    }

    /// Waits for the oldest batch: what became of it (`None`: nothing handed over).
    pub async fn oldest(&mut self) -> Option<Committed> {
        let h = self.handed.pop_front()?;
        Some(match h.got {
            Some(c) => c,
            None => h.done.await.unwrap_or_else(|_| gone()),
        })
    }
}

fn gone() -> Committed {
    Committed {
        uids: Vec::new(),
        failure: Some(SinkError(
            "the store task failed; the batch is fetched again".into(),
        )),
    }
}

/// A counted batch being read (or read already), waiting for its turn.
struct Turn {
    uids: Vec<u32>,
    done: oneshot::Sender<Committed>,
    staged: Reading,
}

enum Reading {
    Thread(std::thread::JoinHandle<Staged>),
    Here(Box<Staged>),
}

/// The storing thread: counts each batch as it arrives and reads it on another thread while
/// the one before it is stored; a batch is stored as soon as nothing more waits behind it
/// (new mail over IDLE waits for nothing).
fn run(origin: &Origin, mut jobs: mpsc::UnboundedReceiver<Job>, stopping: &AtomicBool) {
    let mut ahead: Option<Turn> = None;
    let mut failed = false;
    loop {
        let next = if ahead.is_some() {
            jobs.try_recv().ok()
        } else {
            match jobs.blocking_recv() {
                Some(job) => Some(job),
                None => return,
            }
        };
        let Some(job) = next else {
            if let Some(turn) = ahead.take() {
                failed |= !store(origin, turn, failed);
            }
            continue;
        };
        if failed {
            skip(job.done);
            continue;
        }
        if stopping.load(Ordering::SeqCst) {
            // Not stored and not a failure: left for the next start.
            let _ = job.done.send(Committed::default());
            continue;
        }
        let uids: Vec<u32> = job.messages.iter().map(|(uid, _)| *uid).collect();
        let batch = job
            .messages
            .into_iter()
            .map(|(uid, raw)| {
                let source = MessageSource::Imap {
                    account: origin.account.clone(),
                    mailbox: origin.mailbox.clone(),
                    uidvalidity: job.uidvalidity,
                    uid,
                };
                (raw, source)
            })
            .collect();
        let staged = origin.sink.count_batch(batch);
        if staged.grouped() {
            let reading = std::thread::Builder::new()
                .name("casegate-read".into())
                .spawn(move || staged.read());
            if let Some(turn) = ahead.take() {
                failed |= !store(origin, turn, failed);
            }
            match reading {
                Ok(thread) => {
                    ahead = Some(Turn {
                        uids,
                        done: job.done,
                        staged: Reading::Thread(thread),
                    });
                }
                // The batch went with the thread that could not start: fetched again.
                Err(e) => {
                    let _ = job.done.send(Committed {
                        uids: Vec::new(),
                        failure: Some(SinkError(format!("no thread to read the batch on: {e}"))),
                    });
                    failed = true;
                }
            }
        } else {
            // Nothing after it is counted before it is stored.
            if let Some(turn) = ahead.take() {
                failed |= !store(origin, turn, failed);
            }
            let turn = Turn {
                uids,
                done: job.done,
                staged: Reading::Here(Box::new(staged)),
            };
            failed |= !store(origin, turn, failed);
        }
    }
}

/// Answers a batch that is not stored because one before it was not.
fn skip(done: oneshot::Sender<Committed>) {
    let _ = done.send(Committed {
        uids: Vec::new(),
        failure: Some(SinkError(
            "not stored: the batch before it was not stored".into(),
        )),
    });
}

/// Stores one batch (unless `skip`) and says whether it all committed.
fn store(origin: &Origin, turn: Turn, skip_it: bool) -> bool {
    let staged = match turn.staged {
        Reading::Here(s) => Some(*s),
        // Reading catches its own panics; one here loses only the read-ahead of the batch,
        // which is then fetched again.
        Reading::Thread(t) => t.join().ok(),
    };
    let Some(staged) = staged.filter(|_| !skip_it) else {
        if skip_it {
            skip(turn.done);
        } else {
            let _ = turn.done.send(gone());
        }
        return false;
    };
    let stored = origin.sink.store_batch(staged);
    let mut done = Committed {
        uids: Vec::with_capacity(stored.delivered.len()),
        failure: stored.failure,
    };
    for (uid, d) in turn.uids.into_iter().zip(stored.delivered) {
        tracing::debug!(account = %origin.account, mailbox = %origin.mailbox, uid, outcome = %d.outcome, "IMAP: stored");
        origin
            .status
            .stored(&origin.account, &origin.mailbox, uid, &d.outcome);
        done.uids.push(uid);
    }
    let ok = done.failure.is_none();
    let _ = turn.done.send(done);
    ok
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::imap::{Batch, Delivered, StagedWork};
    use crate::store::Checkpoint;

    /// Records what it was asked to do; fails the store of the batch whose first UID is
    /// `fail_at`, and holds each store up for `slow` so that batches pile up behind it.
    #[derive(Default)]
    struct Recorder {
        log: Mutex<Vec<String>>,
        fail_at: Option<u32>,
        slow: Duration,
    }

    fn uid_of(s: &MessageSource) -> u32 {
        match s {
            MessageSource::Imap { uid, .. } => *uid,
            _ => 0,
        }
    }

    impl MessageSink for Recorder {
        fn deliver(&self, _raw: &[u8], _source: MessageSource) -> Result<Delivered, SinkError> {
            Err(SinkError("not used".into()))
        }
        fn checkpoint(&self, _: &str, _: &str) -> Result<Option<Checkpoint>, SinkError> {
            Ok(None)
        }
        fn reset_checkpoint(&self, _: &str, _: &str, _: u32) -> Result<(), SinkError> {
            Ok(())
        }
        fn count_batch(&self, batch: Vec<(Vec<u8>, MessageSource)>) -> Staged {
            let first = batch.first().map_or(0, |(_, s)| uid_of(s));
            self.log.lock().unwrap().push(format!("count {first}"));
            Staged(StagedWork::Raw(batch))
        }
        fn store_batch(&self, staged: Staged) -> Batch {
            let StagedWork::Raw(batch) = staged.0 else {
                panic!("a raw batch was handed over");
            };
            std::thread::sleep(self.slow);
            let first = batch.first().map_or(0, |(_, s)| uid_of(s));
            self.log.lock().unwrap().push(format!("store {first}"));
            if Some(first) == self.fail_at {
                return Batch {
                    delivered: Vec::new(),
                    failure: Some(SinkError("disk full".into())),
                };
            }
            Batch {
                delivered: batch
                    .iter()
                    .map(|_| Delivered {
                        outcome: "routed".into(),
                    })
                    .collect(),
                failure: None,
            }
        }
    }

    fn origin(sink: Arc<Recorder>) -> Origin {
        Origin {
            sink,
            status: Arc::new(ImapStatus::new()),
            account: "a".into(),
            mailbox: "INBOX".into(),
        }
    }

    /// Batches of two messages from UID `first`.
    fn batch(first: u32) -> Vec<(u32, Vec<u8>)> {
        vec![(first, b"x".to_vec()), (first + 1, b"y".to_vec())]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_stored_in_the_order_handed_over_and_each_counted_first() {
        let sink = Arc::new(Recorder {
            slow: Duration::from_millis(5),
            ..Recorder::default()
        });
        let mut commits = Commits::start(origin(sink.clone()));
        for first in [1, 3, 5, 7, 9] {
            commits.hand(7, batch(first));
        }
        assert_eq!(commits.messages(), 10);
        let mut got = Vec::new();
        while let Some(done) = commits.oldest().await {
            assert!(done.failure.is_none());
            got.extend(done.uids);
        }
        assert_eq!(got, (1..=10).collect::<Vec<u32>>());
        let log = sink.log.lock().unwrap().clone();
        let stores: Vec<&String> = log.iter().filter(|l| l.starts_with("store")).collect();
        assert_eq!(
            stores,
            ["store 1", "store 3", "store 5", "store 7", "store 9"]
        );
        for first in [1, 3, 5, 7, 9] {
            let counted = log.iter().position(|l| *l == format!("count {first}"));
            let stored = log.iter().position(|l| *l == format!("store {first}"));
            assert!(
                counted < stored,
                "{first} stored before it was counted: {log:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_handed_over_after_a_failed_batch_is_stored() {
        let sink = Arc::new(Recorder {
            fail_at: Some(3),
            slow: Duration::from_millis(5),
            ..Recorder::default()
        });
        let mut commits = Commits::start(origin(sink.clone()));
        for first in [1, 3, 5, 7] {
            commits.hand(7, batch(first));
        }
        let mut outcomes = Vec::new();
        while let Some(done) = commits.oldest().await {
            outcomes.push((done.uids, done.failure.map(|e| e.0)));
        }
        assert_eq!(outcomes[0], (vec![1, 2], None));
        assert_eq!(outcomes[1], (vec![], Some("disk full".into())));
        for later in &outcomes[2..] {
            assert!(later.0.is_empty(), "stored after a failure: {outcomes:?}");
            assert!(later.1.is_some(), "{outcomes:?}");
        }
        let log = sink.log.lock().unwrap().clone();
        assert!(
            !log.iter().any(|l| l == "store 5" || l == "store 7"),
            "{log:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_shutdown_what_was_not_counted_is_left_alone_and_is_no_failure() {
        let sink = Arc::new(Recorder {
            slow: Duration::from_millis(200),
            ..Recorder::default()
        });
        let mut commits = Commits::start(origin(sink.clone()));
        for first in (1..40).step_by(2) {
            commits.hand(7, batch(first));
        }
        commits.stop();
        let mut stored = Vec::new();
        while let Some(done) = commits.oldest().await {
            assert!(done.failure.is_none(), "{:?}", done.failure);
            stored.extend(done.uids);
        }
        // At most the batch being stored and the one read ahead of it.
        assert!(stored.len() <= 4, "{stored:?}");
        let log = sink.log.lock().unwrap().clone();
        let counted = log.iter().filter(|l| l.starts_with("count")).count();
        assert!(counted <= 2, "{log:?}");
        assert_eq!(
            stored,
            (1..=stored.len() as u32).collect::<Vec<u32>>(),
            "from the first, in order"
        );
    }
}
