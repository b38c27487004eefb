//! The circuit breaker in front of Redis: after `failures` errors or timeouts in a row, Redis
//! is left alone for `open_for` (every operation is skipped at once, so a dead or slow Redis
//! costs requests nothing); then one operation probes it, and its success closes the breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's state.
pub struct Breaker {
    failures: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Failures in a row.
    failed: u32,
    /// Open until this instant.
    open_until: Option<Instant>,
    /// A probe is out (half-open): others are still skipped.
    probing: bool,
}

/// Whether an operation may go to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Go ahead.
    Go,
    /// Go ahead: the one probe of a half-open breaker.
    Probe,
    /// Skip Redis.
    Skip,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(failures: u32, open_for: Duration) -> Breaker {
        Breaker {
            failures: failures.max(1),
            open_for,
            state: Mutex::new(State {
                failed: 0,
                open_until: None,
                probing: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to use Redis at `now`.
    pub fn pass(&self, now: Instant) -> Pass {
        let mut s = self.lock();
        match s.open_until {
            None => Pass::Go,
            Some(t) if now < t || s.probing => Pass::Skip,
            Some(_) => {
                s.probing = true;
                Pass::Probe
            }
        }
    }

    /// Reports how an operation that passed went; returns whether the breaker is now open.
    pub fn report(&self, pass: Pass, ok: bool, now: Instant) -> bool {
        let mut s = self.lock();
        if pass == Pass::Probe {
            s.probing = false;
        }
        if ok {
            s.failed = 0;
            s.open_until = None;
        } else {
            s.failed = s.failed.saturating_add(1);
            if s.failed >= self.failures || pass == Pass::Probe {
                s.open_until = Some(now + self.open_for);
            }
        }
        s.open_until.is_some()
    }

    /// Whether it is open (or half-open).
    pub fn is_open(&self) -> bool {
        self.lock().open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_failures_in_a_row_and_one_probe_closes_it() {
        let b = Breaker::new(3, Duration::from_secs(5));
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.pass(t0), Pass::Go);
            assert!(!b.report(Pass::Go, false, t0));
        }
        // A success in between resets the count.
        assert!(!b.report(Pass::Go, true, t0));
        for _ in 0..2 {
            b.report(Pass::Go, false, t0);
        }
        assert!(!b.is_open());
        assert!(
            b.report(Pass::Go, false, t0),
            "the third failure in a row opens it"
        );
        assert_eq!(b.pass(t0 + Duration::from_secs(4)), Pass::Skip);
        // After open_for: one probe, the others still skip.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(b.pass(t1), Pass::Probe);
        assert_eq!(b.pass(t1), Pass::Skip);
        // A failed probe opens it again for a whole period.
        assert!(b.report(Pass::Probe, false, t1));
        assert_eq!(b.pass(t1 + Duration::from_secs(4)), Pass::Skip);
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(b.pass(t2), Pass::Probe);
        assert!(!b.report(Pass::Probe, true, t2));
        assert_eq!(b.pass(t2), Pass::Go);
    }
}
