//! The memory tier: moka, weighed in bytes. Each entry expires at its own deadline (its TTL,
//! never past `created + max_retention`); with `idle_ttl`, a read moves the idle deadline but
//! never past the hard one. Reads check the deadline again with the caller's clock, and the
//! sweeper runs moka's maintenance so expired bodies leave memory within one sweep interval.

use super::entry::Entry;
use super::key::{Key, Source};
use crate::telemetry::metrics;
use moka::notification::RemovalCause;
use moka::sync::Cache as Moka;
use moka::Expiry;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The memory tier.
pub struct MemoryTier {
    cache: Moka<Key, Arc<Entry>>,
    idle: Option<Duration>,
}

struct Deadline {
    idle: Option<Duration>,
}

/// Time left before the entry's hard deadline, on the wall clock.
fn remaining(e: &Entry) -> Duration {
    e.expires
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

impl Expiry<Key, Arc<Entry>> for Deadline {
    fn expire_after_create(&self, _k: &Key, e: &Arc<Entry>, _at: Instant) -> Option<Duration> {
        let hard = remaining(e);
        Some(self.idle.map_or(hard, |i| i.min(hard)))
    }

    fn expire_after_read(
        &self,
        _k: &Key,
        e: &Arc<Entry>,
        _at: Instant,
        left: Option<Duration>,
        _modified: Instant,
    ) -> Option<Duration> {
        match self.idle {
            Some(i) => Some(i.min(remaining(e))),
            None => left,
        }
    }

    fn expire_after_update(
        &self,
        _k: &Key,
        e: &Arc<Entry>,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        let hard = remaining(e);
        Some(self.idle.map_or(hard, |i| i.min(hard)))
    }
}

impl MemoryTier {
    /// A tier holding at most `max_bytes` (by [`Entry::weight`]).
    pub fn new(max_bytes: u64, idle: Option<Duration>) -> MemoryTier {
        let cache = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &Key, e: &Arc<Entry>| e.weight())
            .expire_after(Deadline { idle })
            .eviction_listener(|_k, _e, cause| {
                let label = match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Explicit => return, // purge counts itself
                    RemovalCause::Replaced => return,
                };
                metrics::CACHE_EVICTIONS
                    .with_label_values(&["memory", label])
                    .inc();
            })
            .build();
        MemoryTier { cache, idle }
    }

    /// The entry for `key` if it is still servable at `now`.
    pub fn get(&self, key: &Key, now: SystemTime) -> Option<Arc<Entry>> {
        let e = self.cache.get(key)?;
        if now >= e.expires {
            self.cache.invalidate(key);
            return None;
        }
        Some(e)
    }

    /// Stores an entry (replacing any previous one).
    pub fn insert(&self, key: Key, e: Arc<Entry>) {
        self.cache.insert(key, e);
    }

    /// Removes one entry.
    pub fn remove(&self, key: &Key) {
        self.cache.invalidate(key);
    }

    /// Removes every entry whose source matches; returns their keys.
    pub fn purge(&self, matches: &dyn Fn(&Source) -> bool) -> Vec<Key> {
        let keys: Vec<Key> = self
            .cache
            .iter()
            .filter(|(_, e)| matches(&e.source))
            .map(|(k, _)| *k)
            .collect();
        let removed: Vec<Key> = keys
            .into_iter()
            .filter(|k| self.cache.remove(k).is_some())
            .collect();
        self.cache.run_pending_tasks();
        removed
    }

    /// Runs moka's maintenance: expired entries are dropped and their bytes freed.
    pub fn sweep(&self) {
        self.cache.run_pending_tasks();
    }

    /// (entries, weighted bytes), after applying pending writes (moka counts lazily).
    pub fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    /// The creation time of the oldest entry, if any.
    pub fn oldest(&self) -> Option<SystemTime> {
        self.cache.iter().map(|(_, e)| e.created).min()
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

    #[test]
    fn expired_entries_are_not_served_and_are_swept() {
        let m = MemoryTier::new(1 << 20, None);
        let now = SystemTime::now();
        m.insert(
            k(1),
            Arc::new(sample("/a", b"x", now, Duration::from_millis(50))),
        );
        m.insert(
            k(2),
            Arc::new(sample("/b", b"y", now, Duration::from_secs(60))),
        );
        assert!(m.get(&k(1), now).is_some());
        // Checked with the caller's clock, whatever moka's timer says.
        assert!(m.get(&k(1), now + Duration::from_millis(50)).is_none());
        std::thread::sleep(Duration::from_millis(80));
        m.sweep();
        assert_eq!(m.usage().0, 1);
    }

    #[test]
    fn byte_limit_holds_under_a_flood() {
        static BODY: [u8; 10_000] = [7; 10_000];
        let m = MemoryTier::new(200_000, None);
        let now = SystemTime::now();
        for i in 0..=255u8 {
            m.insert(
                k(i),
                Arc::new(sample("/f", &BODY, now, Duration::from_secs(60))),
            );
        }
        m.sweep();
        let (n, bytes) = m.usage();
        assert!(bytes <= 200_000, "{bytes} bytes in {n} entries");
        assert!(n > 0 && n < 256);
    }

    #[test]
    fn purge_selects_by_source() {
        let m = MemoryTier::new(1 << 20, None);
        let now = SystemTime::now();
        m.insert(
            k(1),
            Arc::new(sample("/a/1.jpg", b"1", now, Duration::from_secs(60))),
        );
        m.insert(
            k(2),
            Arc::new(sample("/a/2.jpg", b"2", now, Duration::from_secs(60))),
        );
        m.insert(
            k(3),
            Arc::new(sample("/b/3.jpg", b"3", now, Duration::from_secs(60))),
        );
        assert_eq!(m.purge(&|s| s.path.starts_with("/a/")).len(), 2);
        assert!(m.get(&k(3), now).is_some());
        assert!(m.get(&k(1), now).is_none());
    }
}
