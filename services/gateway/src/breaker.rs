//! The per-upstream circuit breaker of api.md §3.7: opens after N consecutive connection
//! failures or timeouts, stays open for a while, then admits one trial request (half-open).
//! Pure state machine over a clock value; no I/O.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial request is in flight; everyone else is refused until it reports. A trial
    /// that never reports (the client went away and the request future was dropped, or it
    /// ended in an error that is not counted) is given up after `open_for`, and another one
    /// is admitted — otherwise the upstream would stay shut for good.
    HalfOpen {
        since: Instant,
    },
}

/// Whether a request may go to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refused; the value is how long until a trial request will be admitted.
    Open(Duration),
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    /// Whether `state` is `Closed { failures: 0 }`, the state of nearly every request: then
    /// `admit` and `success` have nothing to decide or change and skip the lock (two lock
    /// round trips per proxied request otherwise). Written only under the lock.
    clean: AtomicBool,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            clean: AtomicBool::new(true),
            threshold: threshold.max(1),
            open_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn admit(&self, now: Instant) -> Admission {
        if self.clean.load(Ordering::Acquire) {
            return Admission::Allowed;
        }
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { since: now };
                Admission::Allowed
            }
            State::Open { until } => Admission::Open(until - now),
            State::HalfOpen { since } if now >= since + self.open_for => {
                *state = State::HalfOpen { since: now };
                Admission::Allowed
            }
            State::HalfOpen { .. } => Admission::Open(Duration::from_secs(1)),
        }
    }

    /// Records a request that reached the upstream (any HTTP status). Returns whether the
    /// circuit was not closed before.
    pub fn success(&self) -> bool {
        // A success racing a failure without the lock is ordered before it, as it could
        // have been with the lock.
        if self.clean.load(Ordering::Acquire) {
            return false;
        }
        let mut state = self.lock();
        let was_closed = matches!(*state, State::Closed { .. });
        *state = State::Closed { failures: 0 };
        self.clean.store(true, Ordering::Release);
        !was_closed
    }

    /// Records a connection failure or timeout. Returns whether this opened the circuit.
    pub fn failure(&self, now: Instant) -> bool {
        let mut state = self.lock();
        self.clean.store(false, Ordering::Release);
        match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => {
                *state = State::Open {
                    until: now + self.open_for,
                };
                true
            }
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::HalfOpen { .. } | State::Open { .. } => {
                *state = State::Open {
                    until: now + self.open_for,
                };
                true
            }
        }
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_half_opens_once() {
        let b = Breaker::new(3, Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert_eq!(b.admit(t0), Admission::Allowed);
        assert!(b.failure(t0));
        assert_eq!(
            b.admit(t0 + Duration::from_secs(10)),
            Admission::Open(Duration::from_secs(20))
        );
        // Half-open: exactly one trial.
        let later = t0 + Duration::from_secs(31);
        assert_eq!(b.admit(later), Admission::Allowed);
        assert!(matches!(b.admit(later), Admission::Open(_)));
        // Trial fails: open again for the full period.
        assert!(b.failure(later));
        assert!(matches!(
            b.admit(later + Duration::from_secs(29)),
            Admission::Open(_)
        ));
        assert_eq!(b.admit(later + Duration::from_secs(31)), Admission::Allowed);
        assert!(b.success());
        assert_eq!(b.admit(later + Duration::from_secs(31)), Admission::Allowed);
        assert!(!b.is_open());
    }

    #[test]
    fn a_trial_that_never_reports_is_replaced_after_the_open_period() {
        let b = Breaker::new(1, Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(b.failure(t0));
        let trial = t0 + Duration::from_secs(30);
        assert_eq!(b.admit(trial), Admission::Allowed);
        // The trial's request is dropped: no success, no failure.
        assert!(matches!(
            b.admit(trial + Duration::from_secs(29)),
            Admission::Open(_)
        ));
        assert_eq!(b.admit(trial + Duration::from_secs(30)), Admission::Allowed);
        assert!(matches!(
            b.admit(trial + Duration::from_secs(30)),
            Admission::Open(_)
        ));
        assert!(b.success());
        assert!(!b.is_open());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(30));
        let t0 = Instant::now();
        b.failure(t0);
        b.success();
        assert!(!b.failure(t0));
        assert!(b.failure(t0));
    }
}
