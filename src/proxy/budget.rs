//! The budget of source bytes that image requests hold in memory at once, across all
//! requests (`limits.max_buffered_bytes`). Each source is already capped by
//! `limits.max_source_bytes`; this caps their sum, so many concurrent large images cannot
//! exhaust memory. A request that cannot get budget for its source does not wait: the source
//! is streamed through untouched (reason `buffer_budget`), so the client still gets its image.

use crate::telemetry::metrics;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget is counted in KiB so that a 64-bit byte limit fits the semaphore's permit count.
const UNIT: u64 = 1024;

/// The shared budget.
pub struct Budget {
    sem: Arc<Semaphore>,
}

/// Budget held by one request; released when dropped.
#[derive(Debug, Default)]
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
    units: u64,
}

impl Budget {
    /// A budget of `max_bytes`.
    pub fn new(max_bytes: u64) -> Budget {
        let units = usize::try_from(max_bytes / UNIT)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Budget {
            sem: Arc::new(Semaphore::new(units)),
        }
    }

    /// Grows `held` to cover `bytes` in all. `false` (and `held` unchanged) when the budget
    /// has no room for the difference.
    pub fn grow(&self, held: &mut Held, bytes: u64) -> bool {
        let want = bytes.div_ceil(UNIT);
        if want <= held.units {
            return true;
        }
        let more = want - held.units;
        let Ok(n) = u32::try_from(more) else {
            return false;
        };
        let Ok(p) = self.sem.clone().try_acquire_many_owned(n) else {
            return false;
        };
        match &mut held.permit {
            Some(mine) => mine.merge(p),
            None => held.permit = Some(p),
        }
        held.units = want;
        metrics::BUFFERED_BYTES.add(i64::try_from(more * UNIT).unwrap_or(i64::MAX));
        true
    }

    /// Bytes of budget free now.
    pub fn available(&self) -> u64 {
        self.sem.available_permits() as u64 * UNIT
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.units > 0 {
            metrics::BUFFERED_BYTES.sub(i64::try_from(self.units * UNIT).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_grow_until_the_budget_is_spent_and_return_on_drop() {
        let b = Budget::new(10 * UNIT);
        let mut a = Held::default();
        assert!(b.grow(&mut a, 1));
        assert!(b.grow(&mut a, 4 * UNIT));
        assert_eq!(b.available(), 6 * UNIT);
        let mut c = Held::default();
        assert!(!b.grow(&mut c, 7 * UNIT), "only 6 KiB are left");
        assert_eq!(b.available(), 6 * UNIT, "a refused grow takes nothing");
        assert!(b.grow(&mut c, 6 * UNIT));
        assert!(!b.grow(&mut a, 5 * UNIT));
        drop(a);
        assert_eq!(b.available(), 4 * UNIT);
        drop(c);
        assert_eq!(b.available(), 10 * UNIT);
        // A source bigger than the whole budget never fits.
        assert!(!b.grow(&mut Held::default(), 11 * UNIT));
    }
}
