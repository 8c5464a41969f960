//! Login throttling and lockout rules (api.md §4.3) as pure functions over the stored state.

use chrono::{DateTime, TimeDelta, Utc};

use crate::store::throttle::Throttle;

pub const MAX_FAILURES: i32 = 5;
pub const LOCK_DURATION: TimeDelta = TimeDelta::minutes(15);
pub const FAILURE_MEMORY: TimeDelta = TimeDelta::minutes(15);

/// Delay that must pass after the n-th consecutive failure.
pub fn backoff(n: i32) -> Option<TimeDelta> {
    match n {
        2 => Some(TimeDelta::seconds(1)),
        3 => Some(TimeDelta::seconds(2)),
        4 => Some(TimeDelta::seconds(4)),
        _ => None,
    }
}

/// Whole seconds until `until`, rounded up, at least 1.
pub fn wait_seconds(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let ms = (until - now).num_milliseconds();
    ((ms + 999) / 1000).max(1)
}

/// Forgets failures once 15 minutes pass without one (and no lock is running).
pub fn apply_memory_reset(t: &mut Throttle, now: DateTime<Utc>) -> bool {
    let lock_running = t.locked_until.is_some_and(|u| u > now);
    let stale = t
        .last_failed_at
        .is_some_and(|last| now - last >= FAILURE_MEMORY);
    if stale && !lock_running {
        *t = Throttle::default();
        return true;
    }
    false
}

/// What the state allows before the password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { until: DateTime<Utc>, wait: i64 },
    Backoff { wait: i64 },
}

pub fn gate(t: &Throttle, now: DateTime<Utc>) -> Gate {
    if let Some(until) = t.locked_until.filter(|u| *u > now) {
        return Gate::Locked {
            until,
            wait: wait_seconds(until, now),
        };
    }
    if let (Some(delay), Some(last)) = (backoff(t.failed_count), t.last_failed_at) {
        let free_at = last + delay;
        if free_at > now {
            return Gate::Backoff {
                wait: wait_seconds(free_at, now),
            };
        }
    }
    Gate::Open
}

/// The answer to a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `remaining` only after the third and fourth failures.
    Counted {
        remaining: Option<i32>,
    },
    LockedNow {
        until: DateTime<Utc>,
    },
}

pub fn record_failure(t: &mut Throttle, now: DateTime<Utc>) -> Failure {
    // A lock that has ended starts a fresh count.
    if t.locked_until.is_some_and(|u| u <= now) {
        *t = Throttle::default();
    }
    t.failed_count += 1;
    t.first_failed_at.get_or_insert(now);
    t.last_failed_at = Some(now);
    if t.failed_count >= MAX_FAILURES {
        let until = now + LOCK_DURATION;
        t.locked_at = Some(now);
        t.locked_until = Some(until);
        Failure::LockedNow { until }
    } else {
        let remaining = MAX_FAILURES - t.failed_count;
        Failure::Counted {
            remaining: (remaining <= 2).then_some(remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn five_failures_lock_with_backoff_between() {
        let mut t = Throttle::default();
        let mut now = t0();
        assert_eq!(
            record_failure(&mut t, now),
            Failure::Counted { remaining: None }
        );
        assert_eq!(
            gate(&t, now),
            Gate::Open,
            "no backoff after the first failure"
        );
        assert_eq!(
            record_failure(&mut t, now),
            Failure::Counted { remaining: None }
        );
        assert_eq!(gate(&t, now), Gate::Backoff { wait: 1 });
        now += TimeDelta::seconds(1);
        assert_eq!(gate(&t, now), Gate::Open);
        assert_eq!(
            record_failure(&mut t, now),
            Failure::Counted { remaining: Some(2) }
        );
        assert_eq!(
            gate(&t, now + TimeDelta::milliseconds(500)),
            Gate::Backoff { wait: 2 }
        );
        now += TimeDelta::seconds(2);
        assert_eq!(
            record_failure(&mut t, now),
            Failure::Counted { remaining: Some(1) }
        );
        assert_eq!(gate(&t, now), Gate::Backoff { wait: 4 });
        now += TimeDelta::seconds(4);
        let until = now + LOCK_DURATION;
        assert_eq!(record_failure(&mut t, now), Failure::LockedNow { until });
        assert_eq!(gate(&t, now), Gate::Locked { until, wait: 900 });
        assert!(!apply_memory_reset(&mut t, now + TimeDelta::minutes(14)));
        assert!(apply_memory_reset(&mut t, until));
        assert_eq!(gate(&t, until), Gate::Open);
        assert_eq!(t.failed_count, 0);
    }

    #[test]
    fn memory_resets_after_quiet_period_only() {
        let mut t = Throttle::default();
        record_failure(&mut t, t0());
        record_failure(&mut t, t0());
        assert!(!apply_memory_reset(&mut t, t0() + TimeDelta::minutes(14)));
        assert!(apply_memory_reset(&mut t, t0() + TimeDelta::minutes(15)));
        assert_eq!(t, Throttle::default());
    }

    #[test]
    fn wait_rounds_up_to_at_least_one() {
        assert_eq!(wait_seconds(t0() + TimeDelta::milliseconds(1), t0()), 1);
        assert_eq!(wait_seconds(t0() + TimeDelta::milliseconds(1001), t0()), 2);
        assert_eq!(wait_seconds(t0(), t0()), 1);
    }
}
