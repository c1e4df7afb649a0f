//! When to tell the server that committed messages are done (MOVE, COPY + EXPUNGE, or flags).
//!
//! Dovecot with Maildir storage pays for each MOVE or EXPUNGE in proportion to the messages
//! still in the mailbox, whatever the number of UIDs named. Moving a 10,000-message backlog 100
//! at a time costs ~30 times a bare fetch of it; moving it in a few large UID sets costs little.
//! So while more mail is waiting to be fetched, committed UIDs are collected and acknowledged
//! together; the moment nothing more is waiting they are acknowledged at once, so one new
//! message over IDLE is moved as soon as it is stored. A MOVE of 1,000 takes Dovecot ~50 ms,
//! during which the store goes on with the batches fetched ahead (`commit.rs`), so sets of
//! 1,000 cost the sync nothing but the last set (with 5,000 the last one took ~0.2 s).
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
/// means wait. `backlog` is the number of messages known to be waiting on the server that are not
/// fetched and committed yet; `waited` is the time since the oldest unacknowledged one committed.
pub fn acknowledge_now(
    policy: AckPolicy,
    backlog: usize,
    unacknowledged: usize,
    waited: Duration,
) -> usize {
    if unacknowledged == 0 {
        return 0;
    }
    let nothing_more = backlog == 0;
    let full = unacknowledged >= policy.max_unacknowledged.max(1);
    let too_old = waited >= policy.max_wait;
    if nothing_more || full || too_old {
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
        for backlog in [0, 1, 10_000] {
            assert_eq!(
                acknowledge_now(POLICY, backlog, 0, Duration::from_secs(3600)),
                0
            );
        }
    }

    #[test]
    fn idle_one_message_is_acknowledged_at_once() {
        assert_eq!(acknowledge_now(POLICY, 0, 1, NOW), 1);
        assert_eq!(acknowledge_now(POLICY, 0, 37, NOW), 37);
    }

    #[test]
    fn a_backlog_is_acknowledged_in_sets_that_grow_with_it() {
        // A 10,000-message initial sync fetched 100 at a time: simulate and count the
        // acknowledgments and their sizes.
        let sync = |total: usize| {
            let (mut backlog, mut pending, mut sets) = (total, 0usize, Vec::new());
            while backlog > 0 {
                let batch = backlog.min(100);
                backlog -= batch;
                pending += batch;
                let n = acknowledge_now(POLICY, backlog, pending, NOW);
                assert!(n == 0 || n == pending, "all or nothing: {n} of {pending}");
                if n > 0 {
                    sets.push(n);
                    pending -= n;
                }
            }
            assert_eq!(
                pending, 0,
                "everything is acknowledged when the backlog ends"
            );
            sets
        };
        assert_eq!(sync(10_000), vec![1000; 10]);
        assert_eq!(sync(250), vec![250]);
        assert_eq!(sync(1), vec![1]);
        // A backlog smaller than the bound: one acknowledgment for all of it.
        assert_eq!(sync(999), vec![999]);
    }

    #[test]
    fn the_unacknowledged_set_is_bounded() {
        assert_eq!(acknowledge_now(POLICY, 5000, 999, NOW), 0);
        assert_eq!(acknowledge_now(POLICY, 5000, 1000, NOW), 1000);
        assert_eq!(acknowledge_now(POLICY, 5000, 1100, NOW), 1100);
        // A zero bound behaves as one: every message on its own.
        let each = AckPolicy {
            max_unacknowledged: 0,
            ..POLICY
        };
        assert_eq!(acknowledge_now(each, 5000, 1, NOW), 1);
    }

    #[test]
    fn a_committed_message_waits_at_most_max_wait() {
        assert_eq!(
            acknowledge_now(POLICY, 5000, 3, Duration::from_millis(9_999)),
            0
        );
        assert_eq!(acknowledge_now(POLICY, 5000, 3, Duration::from_secs(10)), 3);
        assert_eq!(acknowledge_now(POLICY, 5000, 3, Duration::from_secs(60)), 3);
    }
}
