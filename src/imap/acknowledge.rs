//! When to tell the server that committed messages are done (MOVE, COPY + EXPUNGE, or flags).
//!
//! Dovecot with Maildir storage pays for each MOVE or EXPUNGE in proportion to the messages
//! still in the mailbox, whatever the number of UIDs named. Moving a 10,000-message backlog 100
//! at a time costs ~30 times a bare fetch of it; moving it in a few large UID sets costs little.
//! So while more mail is waiting to be fetched, committed UIDs are collected and acknowledged
//! together. Once nothing more waits to be fetched the connection is free, and committed UIDs
//! are acknowledged while the store commits the batches fetched last: each time at least as
//! many are committed as are still being committed, so the MOVEs halve (each also cheaper, the
//! mailbox emptying) and the one after the last commit is about a batch. One new message over
//! IDLE is moved as soon as it is stored. A MOVE of 1,000 takes Dovecot ~50 ms, during which the
//! store goes on with the batches fetched ahead (`commit.rs`); with sets of 5,000 the last one
//! took ~0.2 s.
//!
//! Acknowledging later never risks a message: it is already stored. A crash before the
//! acknowledgment leaves it in the mailbox; the next session fetches it again, the store
//! recognises its SHA-256 (`duplicate`) and only then is it acknowledged. The bounds below cap
//! how many such re-fetches a crash can cause and how long a stored message stays in the inbox.

use std::time::Duration;

/// Bounds on committed-but-unacknowledged messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    /// Acknowledge once this many committed messages wait (bounds memory and the re-fetches
    /// after a crash).
    pub max_unacknowledged: usize,
    /// Acknowledge once the oldest committed message has waited this long.
    pub max_wait: Duration,
}

impl Default for AckPolicy {
    fn default() -> Self {
        AckPolicy {
            max_unacknowledged: 1_000,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// How many of the `unacknowledged` committed messages (oldest first) to acknowledge now; 0
/// means wait. `to_fetch` is the number of messages known to be waiting on the server that are
/// not fetched yet, `committing` those fetched and handed to the store that have not committed
/// yet; `waited` is the time since the oldest unacknowledged one committed.
pub fn acknowledge_now(
    policy: AckPolicy,
    to_fetch: usize,
    committing: usize,
    unacknowledged: usize,
    waited: Duration,
) -> usize {
    if unacknowledged == 0 {
        return 0;
    }
    // The connection has nothing else to do, and waiting would leave more for after the last
    // commit than moving now leaves.
    let connection_free = to_fetch == 0 && unacknowledged >= committing;
    let full = unacknowledged >= policy.max_unacknowledged.max(1);
    let too_old = waited >= policy.max_wait;
    if connection_free || full || too_old {
        unacknowledged
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: AckPolicy = AckPolicy {
        max_unacknowledged: 1000,
        max_wait: Duration::from_secs(10),
    };
    const NOW: Duration = Duration::ZERO;

    #[test]
    fn nothing_committed_means_nothing_to_acknowledge() {
        for (to_fetch, committing) in [(0, 0), (1, 0), (0, 500), (10_000, 100)] {
            assert_eq!(
                acknowledge_now(POLICY, to_fetch, committing, 0, Duration::from_secs(3600)),
                0
            );
        }
    }

    #[test]
    fn idle_one_message_is_acknowledged_at_once() {
        assert_eq!(acknowledge_now(POLICY, 0, 0, 1, NOW), 1);
        assert_eq!(acknowledge_now(POLICY, 0, 0, 37, NOW), 37);
    }

    /// A sync of `total` messages fetched 100 at a time, with up to `ahead` batches fetched and
    /// not yet committed (the store lags the connection), asked after every commit as the
    /// session asks: the sizes of the acknowledgments, in order.
    fn sync(total: usize, ahead: usize) -> Vec<usize> {
        let (mut to_fetch, mut committing, mut pending) = (total, 0usize, 0usize);
        let mut sets = Vec::new();
        while to_fetch + committing > 0 {
            if to_fetch > 0 && committing < ahead * 100 {
                let batch = to_fetch.min(100);
                to_fetch -= batch;
                committing += batch;
                continue;
            }
            let batch = committing.min(100);
            committing -= batch;
            pending += batch;
            let n = acknowledge_now(POLICY, to_fetch, committing, pending, NOW);
            assert!(n == 0 || n == pending, "all or nothing: {n} of {pending}");
            if n > 0 {
                sets.push(n);
                pending -= n;
            }
        }
        assert_eq!(pending, 0, "everything is acknowledged when the sync ends");
        sets
    }

    #[test]
    fn a_backlog_is_acknowledged_in_sets_that_grow_with_it() {
        // Committed as soon as fetched.
        assert_eq!(sync(10_000, 1), vec![1000; 10]);
        assert_eq!(sync(250, 1), vec![250]);
        assert_eq!(sync(1, 1), vec![1]);
        // A backlog smaller than the bound: one acknowledgment for all of it.
        assert_eq!(sync(999, 1), vec![999]);
    }

    #[test]
    fn once_all_is_fetched_the_sets_halve_so_little_is_left_after_the_last_commit() {
        // All of a 1,000-message backlog fetched before the store has committed its first
        // batch: moved while the rest commits, in sets that shrink to the last batch.
        assert_eq!(sync(1000, 10), vec![500, 300, 100, 100]);
        // Without the halving, all 1,000 would wait for the last commit (or one MOVE per
        // batch would compete with the store for the whole tail).
        let last = *sync(10_000, 10).last().unwrap_or(&0);
        assert!(last <= 100, "after the last commit: {last}");
        let sets = sync(10_000, 10);
        assert_eq!(sets.iter().sum::<usize>(), 10_000);
        assert!(sets.len() <= 14, "{sets:?}");
        // Sets of at most the bound while fetching; a sync of 10,000 moves 1,000 at a time
        // until the last are fetched.
        assert!(sets.iter().all(|n| *n <= 1000), "{sets:?}");
    }

    #[test]
    fn the_unacknowledged_set_is_bounded() {
        assert_eq!(acknowledge_now(POLICY, 5000, 100, 999, NOW), 0);
        assert_eq!(acknowledge_now(POLICY, 5000, 100, 1000, NOW), 1000);
        assert_eq!(acknowledge_now(POLICY, 5000, 100, 1100, NOW), 1100);
        // A zero bound behaves as one: every message on its own.
        let each = AckPolicy {
            max_unacknowledged: 0,
            ..POLICY
        };
        assert_eq!(acknowledge_now(each, 5000, 100, 1, NOW), 1);
    }

    #[test]
    fn a_committed_message_waits_at_most_max_wait() {
        assert_eq!(
            acknowledge_now(POLICY, 5000, 100, 3, Duration::from_millis(9_999)),
            0
        );
        assert_eq!(
            acknowledge_now(POLICY, 5000, 100, 3, Duration::from_secs(10)),
            3
        );
        assert_eq!(
            acknowledge_now(POLICY, 5000, 100, 3, Duration::from_secs(60)),
            3
        );
    }
}
