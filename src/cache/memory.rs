//! The memory tier: moka, weighed in bytes, for its size-bounded eviction. Each entry expires
//! at its own deadline (its TTL, never past `created + max_retention`, less one sweep interval:
//! see [`crate::cache::config::CacheConfig::hold_limit`]); with `idle_ttl`, a read moves the idle
//! deadline but never past the hard one.
//!
//! Expiry is not moka's: its timer wheel has 1.07 s buckets at the finest level, and an entry
//! moka considers expired is invisible to `iter` but still holds its bytes until the wheel turns.
//! Reads check the deadline with the caller's clock, and the sweeper calls
//! [`MemoryTier::sweep`], which removes every entry past its hard or idle deadline by the wall
//! clock. A lower bound on the earliest deadline keeps that scan off until something is due.

use super::entry::Entry;
use super::key::{Key, Source};
use crate::telemetry::metrics;
use moka::notification::RemovalCause;
use moka::sync::Cache as Moka;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The memory tier.
pub struct MemoryTier {
    cache: Moka<Key, Arc<Held>>,
    idle: Option<Duration>,
    /// No entry is due before this (ms since the epoch): a lower bound, lowered by every insert
    /// and recomputed by each scan.
    next_due: AtomicU64,
}

/// An entry and when it was last read.
struct Held {
    entry: Arc<Entry>,
    /// Milliseconds since the epoch.
    last_used: AtomicU64,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Held {
    /// When this entry falls due (ms since the epoch): its hard deadline, or sooner its idle
    /// one. Servable strictly before it; reads and the sweep both go by this.
    fn due(&self, idle: Option<Duration>) -> u64 {
        let hard = ms(self.entry.expires);
        match idle {
            Some(i) => {
                let idle_at = self
                    .last_used
                    .load(Ordering::Relaxed)
                    .saturating_add(u64::try_from(i.as_millis()).unwrap_or(u64::MAX));
                hard.min(idle_at)
            }
            None => hard,
        }
    }
}

impl MemoryTier {
    /// A tier holding at most `max_bytes` (by [`Entry::weight`]).
    pub fn new(max_bytes: u64, idle: Option<Duration>) -> MemoryTier {
        let cache = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &Key, h: &Arc<Held>| h.entry.weight())
            .eviction_listener(|_k, _h, cause| {
                let label = match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired", // not used: no moka expiry
                    RemovalCause::Explicit => return,   // purge and the sweep count themselves
                    RemovalCause::Replaced => return,
                };
                metrics::CACHE_EVICTIONS
                    .with_label_values(&["memory", label])
                    .inc();
            })
            .build();
        MemoryTier {
            cache,
            idle,
            next_due: AtomicU64::new(u64::MAX),
        }
    }

    /// The entry for `key` if it is still servable at `now`.
    pub fn get(&self, key: &Key, now: SystemTime) -> Option<Arc<Entry>> {
        let h = self.cache.get(key)?;
        if ms(now) >= h.due(self.idle) {
            self.cache.invalidate(key);
            return None;
        }
        h.last_used.fetch_max(ms(now), Ordering::Relaxed);
        Some(h.entry.clone())
    }

    /// Stores an entry (replacing any previous one).
    pub fn insert(&self, key: Key, e: Arc<Entry>) {
        let h = Arc::new(Held {
            entry: e,
            last_used: AtomicU64::new(ms(SystemTime::now())),
        });
        let due = h.due(self.idle);
        self.cache.insert(key, h);
        self.next_due.fetch_min(due, Ordering::SeqCst);
    }

    /// Removes one entry.
    pub fn remove(&self, key: &Key) {
        self.cache.invalidate(key);
    }

    /// Removes one entry and returns it: of two concurrent takes, one gets it.
    pub fn take(&self, key: &Key) -> Option<Arc<Entry>> {
        self.cache.remove(key).map(|h| h.entry.clone())
    }

    /// Removes every entry whose source matches; returns their keys.
    pub fn purge(&self, matches: &dyn Fn(&Source) -> bool) -> Vec<Key> {
        let keys: Vec<Key> = self
            .cache
            .iter()
            .filter(|(_, h)| matches(&h.entry.source))
            .map(|(k, _)| *k)
            .collect();
        let removed: Vec<Key> = keys
            .into_iter()
            .filter(|k| self.cache.remove(k).is_some())
            .collect();
        self.cache.run_pending_tasks();
        removed
    }

    /// Removes every entry past its hard or idle deadline at `now` (by the wall clock, not
    /// moka's timer), then runs moka's maintenance so their bytes are freed. Returns how many
    /// it removed itself.
    pub fn sweep(&self, now: SystemTime) -> u64 {
        let mut removed = 0;
        if ms(now) >= self.next_due.load(Ordering::SeqCst) {
            // Reset first: an insert racing this scan lowers the bound again after it.
            self.next_due.store(u64::MAX, Ordering::SeqCst);
            let mut next = u64::MAX;
            for (k, h) in self.cache.iter() {
                let due = h.due(self.idle);
                if ms(now) < due {
                    next = next.min(due);
                } else if self.cache.remove(&*k).is_some() {
                    removed += 1;
                    let label = if due == ms(h.entry.expires) {
                        "expired"
                    } else {
                        "idle"
                    };
                    metrics::CACHE_EVICTIONS
                        .with_label_values(&["memory", label])
                        .inc();
                }
            }
            self.next_due.fetch_min(next, Ordering::SeqCst);
        }
        self.cache.run_pending_tasks();
        removed
    }

    /// (entries, weighted bytes), after applying pending writes (moka counts lazily).
    pub fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    /// The creation time of the oldest entry, if any.
    pub fn oldest(&self) -> Option<SystemTime> {
        self.cache.iter().map(|(_, h)| h.entry.created).min()
    }

    /// Whether idle expiry is on.
    pub fn has_idle(&self) -> bool {
        self.idle.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::tests::sample;
    use super::*;

    fn k(n: u8) -> Key {
        Key([n; 32])
    }

    /// Inserts `sample(path, body, created, ttl)` under `k(n)`.
    fn put(m: &MemoryTier, n: u8, path: &str, body: &'static [u8], created: SystemTime, ttl: u64) {
        m.insert(
            k(n),
            Arc::new(sample(path, body, created, Duration::from_secs(ttl))),
        );
    }

    #[test]
    fn expired_entries_are_not_served_and_are_swept() {
        let m = MemoryTier::new(1 << 20, None);
        let now = SystemTime::now();
        m.insert(
            k(1),
            Arc::new(sample("/a", b"x", now, Duration::from_millis(50))),
        );
        put(&m, 2, "/b", b"y", now, 60);
        assert!(m.get(&k(1), now).is_some());
        // Checked with the caller's clock, whatever moka's timer says.
        assert!(m.get(&k(1), now + Duration::from_millis(50)).is_none());
        std::thread::sleep(Duration::from_millis(80));
        m.sweep(SystemTime::now());
        assert_eq!(m.usage().0, 1);
    }

    #[test]
    fn the_sweep_removes_by_the_clock_not_by_mokas_timer() {
        // moka's timer wheel would keep these up to 1.07 s past their deadline.
        let m = MemoryTier::new(1 << 20, None);
        let now = SystemTime::now();
        put(&m, 1, "/a", b"x", now, 60);
        assert_eq!(m.sweep(now + Duration::from_millis(59_999)), 0);
        // Inserted after a scan set the bound to 60 s: its earlier deadline still counts.
        put(&m, 2, "/b", b"y", now, 10);
        assert_eq!(m.sweep(now + Duration::from_millis(9_999)), 0);
        assert_eq!(m.sweep(now + Duration::from_secs(10)), 1);
        assert_eq!(m.usage().0, 1);
        assert!(m.get(&k(1), now).is_some());
        assert_eq!(m.sweep(now + Duration::from_secs(60)), 1);
        assert_eq!(m.usage(), (0, 0));
    }

    #[test]
    fn the_sweep_removes_idle_entries_and_a_read_keeps_one() {
        let m = MemoryTier::new(1 << 20, Some(Duration::from_secs(10)));
        let created = SystemTime::now();
        for n in [1, 2] {
            put(&m, n, "/i", b"z", created, 600);
        }
        let t = SystemTime::now();
        assert!(m.get(&k(2), t + Duration::from_secs(8)).is_some());
        assert_eq!(m.sweep(t + Duration::from_secs(9)), 0);
        // k(1) was last used at insert, k(2) at t + 8 s.
        assert_eq!(m.sweep(t + Duration::from_millis(10_100)), 1);
        assert!(m.get(&k(2), t + Duration::from_millis(10_200)).is_some());
        assert_eq!(m.sweep(t + Duration::from_millis(20_300)), 1);
        assert_eq!(m.usage().0, 0);
    }

    #[test]
    fn byte_limit_holds_under_a_flood() {
        static BODY: [u8; 10_000] = [7; 10_000];
        let m = MemoryTier::new(200_000, None);
        let now = SystemTime::now();
        for i in 0..=255u8 {
            put(&m, i, "/f", &BODY, now, 60);
        }
        m.sweep(now);
        let (n, bytes) = m.usage();
        assert!(bytes <= 200_000, "{bytes} bytes in {n} entries");
        assert!(n > 0 && n < 256);
    }

    #[test]
    fn purge_selects_by_source() {
        let m = MemoryTier::new(1 << 20, None);
        let now = SystemTime::now();
        put(&m, 1, "/a/1.jpg", b"1", now, 60);
        put(&m, 2, "/a/2.jpg", b"2", now, 60);
        put(&m, 3, "/b/3.jpg", b"3", now, 60);
        assert_eq!(m.purge(&|s| s.path.starts_with("/a/")).len(), 2);
        assert!(m.get(&k(3), now).is_some());
        assert!(m.get(&k(1), now).is_none());
    }
}
