//! When to try a copy again after a temporary failure (pure).
//!
//! Exponential backoff so a struggling relay is not hammered, jitter so that the copies of one
//! notice (all failing together when the relay is down) do not come back in lockstep, and an
//! age limit so that a copy nobody can deliver ends as `dead` with its reason instead of
//! retrying forever.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::OutboxConfig;

/// What to do after a temporary failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    At(DateTime<Utc>),
    GiveUp,
}

/// The delay before attempt `attempts + 1`, given that `attempts` (≥ 1) have failed:
/// `base · 2^(attempts-1)`, capped at `max`, then a uniformly random point in its upper half
/// (`jitter` in 0..=1 picks the point; callers pass a random number).
pub fn backoff(config: &OutboxConfig, attempts: u32, jitter: f64) -> Duration {
    let base = config.retry_base_secs.max(1);
    let max = config.retry_max_secs.max(base);
    let exp = attempts.saturating_sub(1).min(40);
    let full = base.saturating_mul(1u64 << exp).min(max);
    let jitter = jitter.clamp(0.0, 1.0);
    // Upper half: never sooner than half the nominal delay, never later than the cap.
    let secs = (full as f64) * (0.5 + 0.5 * jitter);
    Duration::from_millis((secs * 1000.0) as u64)
}

/// Whether and when to retry a copy first queued at `created_at` that has now failed
/// `attempts` times. The last retry is placed no later than the age limit; past it, give up.
pub fn next_attempt(
    config: &OutboxConfig,
    created_at: DateTime<Utc>,
    attempts: u32,
    now: DateTime<Utc>,
    jitter: f64,
) -> Retry {
    let max_age = i64::try_from(config.max_age_hours)
        .ok()
        .and_then(chrono::Duration::try_hours)
        .unwrap_or(chrono::Duration::MAX);
    let deadline = created_at
        .checked_add_signed(max_age)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if now >= deadline {
        return Retry::GiveUp;
    }
    let delay = chrono::Duration::from_std(backoff(config, attempts, jitter))
        .unwrap_or(chrono::Duration::MAX);
    let at = now.checked_add_signed(delay).unwrap_or(deadline);
    Retry::At(at.min(deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OutboxConfig {
        OutboxConfig {
            max_age_hours: 2,
            retry_base_secs: 30,
            retry_max_secs: 600,
            stub_when_no_key: false,
        }
    }

    #[test]
    fn doubles_then_caps_and_jitter_stays_in_upper_half() {
        let c = config();
        assert_eq!(backoff(&c, 1, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(&c, 1, 0.0), Duration::from_secs(15));
        assert_eq!(backoff(&c, 2, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&c, 3, 1.0), Duration::from_secs(120));
        assert_eq!(backoff(&c, 10, 1.0), Duration::from_secs(600));
        assert_eq!(backoff(&c, 10, 0.0), Duration::from_secs(300));
        assert_eq!(backoff(&c, u32::MAX, 1.0), Duration::from_secs(600));
        let mid = backoff(&c, 2, 0.5);
        assert!(mid > Duration::from_secs(30) && mid < Duration::from_secs(60));
    }

    #[test]
    fn gives_up_at_the_age_limit_and_never_schedules_past_it() {
        let c = config();
        let t0 = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let early = t0 + chrono::Duration::minutes(1);
        assert_eq!(
            next_attempt(&c, t0, 1, early, 1.0),
            Retry::At(early + chrono::Duration::seconds(30))
        );
        let close = t0 + chrono::Duration::minutes(118);
        assert_eq!(
            next_attempt(&c, t0, 9, close, 1.0),
            Retry::At(t0 + chrono::Duration::hours(2))
        );
        assert_eq!(
            next_attempt(&c, t0, 10, t0 + chrono::Duration::hours(2), 1.0),
            Retry::GiveUp
        );
    }
}
