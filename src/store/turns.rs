//! The writers of one SQLite file in this process take turns, first come first served.
//!
//! SQLite lets one connection write at a time. The others wait in its busy handler, which
//! sleeps 1, 2, 5, 10, 15, … ms between tries and wins only if the lock is free at that
//! instant. A writer that commits back to back — the pipeline storing a backlog batch after
//! batch — takes the lock again microseconds after each commit, so a sleeper rarely wins: in
//! `serve`, the acknowledgments of new reports were all queued after the last batch of a sync
//! instead of after each, and an analyst's request that writes would wait as long (or fail
//! after the busy timeout, for a backlog that takes longer to store). So, before `BEGIN
//! IMMEDIATE`, a connection takes a turn here: whoever asked first writes next. Other
//! processes (a CLI command beside `serve`) still meet in SQLite's busy handler.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The queue of one file's writers.
#[derive(Default)]
pub(crate) struct WriteTurns {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Tickets of the writers waiting, in the order they asked.
    waiting: VecDeque<u64>,
    /// Whether a writer holds the turn now.
    held: bool,
    next_ticket: u64,
}

/// A turn held; the next writer's comes when it is dropped.
pub(crate) struct Turn(Arc<WriteTurns>);

impl WriteTurns {
    /// The queue shared by every connection of this process to the file at `path`.
    pub(crate) fn of(path: &Path) -> Arc<WriteTurns> {
        static FILES: OnceLock<Mutex<HashMap<PathBuf, Weak<WriteTurns>>>> = OnceLock::new();
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut files = relock(FILES.get_or_init(Default::default).lock());
        if let Some(turns) = files.get(&key).and_then(Weak::upgrade) {
            return turns;
        }
        // Entries of files no connection holds any more go (bounded by the files opened).
        files.retain(|_, w| w.strong_count() > 0);
        let turns = Arc::new(WriteTurns::default());
        files.insert(key, Arc::downgrade(&turns));
        turns
    }

    /// Waits for this writer's turn, at most `wait`; `None` when it did not come by then (the
    /// caller then goes on to SQLite's own busy wait, as a writer of another process would).
    pub(crate) fn take(self: &Arc<Self>, wait: Duration) -> Option<Turn> {
        let deadline = Instant::now() + wait;
        let mut s = relock(self.state.lock());
        let ticket = s.next_ticket;
        s.next_ticket = s.next_ticket.wrapping_add(1);
        s.waiting.push_back(ticket);
        loop {
            if !s.held && s.waiting.front() == Some(&ticket) {
                s.waiting.pop_front();
                s.held = true;
                return Some(Turn(self.clone()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                s.waiting.retain(|t| *t != ticket);
                drop(s);
                // The writer behind this one may be first now.
                self.changed.notify_all();
                return None;
            }
            s = match self.changed.wait_timeout(s, left) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        relock(self.0.state.lock()).held = false;
        self.0.changed.notify_all();
    }
}

/// The queue's state even if a thread panicked while holding its lock: it holds no invariant
/// a panic could break half-way (each change is one assignment or one queue operation).
type Locked<'a, T> = Result<MutexGuard<'a, T>, std::sync::PoisonError<MutexGuard<'a, T>>>;

fn relock<T>(r: Locked<'_, T>) -> MutexGuard<'_, T> {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_get_their_turn_in_the_order_they_asked() {
        let turns = Arc::new(WriteTurns::default());
        let first = turns.take(Duration::from_secs(5)).expect("free");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for i in 0..4 {
            let (t, order) = (turns.clone(), order.clone());
            writers.push(std::thread::spawn(move || {
                let turn = t.take(Duration::from_secs(5)).expect("turn");
                relock(order.lock()).push(i);
                drop(turn);
            }));
            // The next one asks only once this one is queued.
            while relock(turns.state.lock()).waiting.len() <= i {
                std::thread::yield_now();
            }
        }
        drop(first);
        for w in writers {
            w.join().expect("writer");
        }
        assert_eq!(*relock(order.lock()), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_writer_that_releases_and_asks_again_goes_behind_the_one_waiting() {
        let turns = Arc::new(WriteTurns::default());
        let busy = turns.take(Duration::from_secs(5)).expect("free");
        let other = {
            let turns = turns.clone();
            std::thread::spawn(move || turns.take(Duration::from_secs(5)).map(|_| Instant::now()))
        };
        while relock(turns.state.lock()).waiting.is_empty() {
            std::thread::yield_now();
        }
        drop(busy);
        // The committer asks again at once, as the pipeline does between batches.
        let again = turns.take(Duration::from_secs(5)).map(|_| Instant::now());
        let other = other.join().expect("other").expect("its turn");
        assert!(
            other <= again.expect("turn again"),
            "the waiting writer went first"
        );
    }

    #[test]
    fn a_turn_not_come_in_time_is_given_up_and_the_queue_goes_on() {
        let turns = Arc::new(WriteTurns::default());
        let busy = turns.take(Duration::from_secs(5)).expect("free");
        assert!(turns.take(Duration::from_millis(20)).is_none());
        assert!(relock(turns.state.lock()).waiting.is_empty());
        drop(busy);
        assert!(turns.take(Duration::from_millis(20)).is_some());
    }

    #[test]
    fn connections_to_one_file_share_its_queue_and_other_files_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
        std::fs::write(&a, b"").expect("a");
        std::fs::write(&b, b"").expect("b");
        let one = WriteTurns::of(&a);
        let same = WriteTurns::of(&dir.path().join(".").join("a.sqlite"));
        assert!(Arc::ptr_eq(&one, &same));
        assert!(!Arc::ptr_eq(&one, &WriteTurns::of(&b)));
    }
}
