//! The variant cache: a bounded memory tier (moka) in front of an optional bounded, encrypted
//! disk tier, with per-entry TTLs capped by a retention guarantee, coalescing of concurrent
//! misses, and purge for erasure requests. Knows nothing about codecs or pingora: it stores
//! [`Entry`] values under [`Key`]s.
//!
//! The retention guarantee (docs/caching.md): an entry's deadline is never later than
//! `created + max_retention - sweep_interval`, where `created` is when its source was fetched,
//! so the sweeper, which removes expired entries from memory and disk every `sweep_interval`,
//! has them gone by `created + max_retention`. Reads check the deadline against the clock;
//! start-up and a periodic scrub remove anything on disk the index does not vouch for.

pub mod config;
pub mod disk;
pub mod entry;
pub mod flight;
pub mod key;
pub mod memory;
pub mod policy;
pub mod seal;
pub mod shared;
mod stats;

pub use entry::Entry;
pub use key::{Key, KeyParts, Source};
pub use stats::Stats;

use config::CacheConfig;
use disk::DiskTier;
use flight::Flights;
use memory::MemoryTier;
use shared::{Claim, SharedTier};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;

/// Which tier answered a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Memory.
    Memory,
    /// Disk (the entry is promoted to memory).
    Disk,
    /// The shared tier in Redis (the entry is promoted to memory).
    Shared,
}

impl Tier {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
            Tier::Shared => "shared",
        }
    }
}

/// What a purge removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every variant of one source path (any query), on one host or on all.
    Url {
        /// Host to match (`None`: any host).
        host: Option<String>,
        /// The path, without query.
        path: String,
    },
    /// Every variant whose source path starts with a prefix.
    Prefix {
        /// Host to match (`None`: any host).
        host: Option<String>,
        /// The path prefix.
        prefix: String,
    },
    /// Every entry the origin tagged with this surrogate key (`Surrogate-Key`, `Cache-Tag`).
    Tag(String),
    /// Everything.
    All,
}

impl Selector {
    /// Whether a source is selected.
    pub fn matches(&self, s: &Source) -> bool {
        let host_ok = |h: &Option<String>| h.as_ref().is_none_or(|h| *h == s.host);
        match self {
            Selector::Url { host, path } => host_ok(host) && s.path == *path,
            Selector::Prefix { host, prefix } => host_ok(host) && s.path.starts_with(prefix),
            Selector::Tag(t) => s.tags.iter().any(|x| x == t),
            Selector::All => true,
        }
    }
}

/// The outcome of [`Cache::claim`].
pub enum Claimed {
    /// Another node made it: here it is.
    Filled(Arc<Entry>),
    /// Make it; hold the claim (if any) until the entry is stored.
    Lead(Option<shared::Lock>),
    /// The node holding the claim took longer than the wait: as a local follower that timed
    /// out (the AVIF budget's stand-in, or a fill of its own).
    TimedOut,
}

/// The cache.
pub struct Cache {
    cfg: CacheConfig,
    memory: MemoryTier,
    disk: Option<Arc<DiskTier>>,
    /// Redis, shared by the nodes of a cluster (`cache.shared`).
    shared: Option<Arc<SharedTier>>,
    /// Bumped by every purge; a write that started before a purge is undone after it.
    epoch: AtomicU64,
    /// Misses being filled right now.
    pub flights: Flights,
    /// Permits for AVIF encodes that continue after their request was answered.
    pub background: Arc<Semaphore>,
}

impl Cache {
    /// Builds the tiers. With a disk tier, cleans its directory first (see [`DiskTier::open`]).
    pub fn open(cfg: &CacheConfig) -> Result<Cache, String> {
        Self::open_shared(cfg, None)
    }

    /// [`Cache::open`] with a shared tier after the local ones.
    pub fn open_shared(
        cfg: &CacheConfig,
        shared: Option<Arc<SharedTier>>,
    ) -> Result<Cache, String> {
        let idle = cfg.idle_limit();
        let disk = match cfg.disk.on() {
            Some(d) if cfg.enabled => {
                let (tier, st) = DiskTier::open(d, idle)?;
                tracing::info!(kept = st.kept, removed = st.removed, "disk cache opened");
                Some(Arc::new(tier))
            }
            _ => None,
        };
        Ok(Cache {
            memory: MemoryTier::new(cfg.memory.max_bytes.get(), idle),
            disk,
            shared,
            epoch: AtomicU64::new(0),
            flights: Flights::new(cfg.uncacheable_window.get()),
            background: Arc::new(Semaphore::new(cfg.max_background)),
            cfg: cfg.clone(),
        })
    }

    /// Whether the cache can take entries: the memory tier always can; the disk tier when its
    /// directory still exists and accepts a file (an empty probe, removed at once).
    pub fn check(&self) -> Result<(), String> {
        let Some(d) = &self.disk else {
            return Ok(());
        };
        let probe = d.dir().join(format!(".ready-{}", std::process::id()));
        std::fs::File::create(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| format!("disk tier {}: {e}", d.dir().display()))
    }

    /// Whether variants are stored at all.
    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// The limits a response's TTL is computed under. `cookie`: the request carried a
    /// `Cookie` (see `cache.cookies`).
    pub fn limits(&self, rule_ttl: Option<Duration>, cookie: bool) -> policy::Limits {
        policy::Limits {
            default_ttl: self.cfg.default_ttl.get(),
            rule_ttl,
            max_retention: self.cfg.hold_limit(),
            needs_public: cookie && self.cfg.cookies == config::CookiePolicy::RequirePublic,
        }
    }

    /// The purge epoch; pass it back to [`Cache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The shared tier, when configured.
    pub fn shared(&self) -> Option<&Arc<SharedTier>> {
        self.shared.as_ref()
    }

    /// Whether any local tier holds an entry.
    pub fn holds_entries(&self) -> bool {
        self.memory.usage().0 > 0 || self.disk.as_ref().is_some_and(|d| d.usage().0 > 0)
    }

    /// A fresh entry for `key`: in memory, then on disk, then in the shared tier (promoting a
    /// disk or shared hit to memory).
    pub async fn get(&self, key: &Key) -> Option<(Arc<Entry>, Tier)> {
        let now = SystemTime::now();
        self.lookup(key, now, true)
            .await
            .filter(|(e, _)| e.fresh(now))
    }

    /// [`Cache::get`] in this node's tiers only: a second look within one request (the first
    /// asked Redis already, and promoted what it found, fresh or stale, to memory).
    pub async fn get_local(&self, key: &Key) -> Option<(Arc<Entry>, Tier)> {
        let now = SystemTime::now();
        self.lookup(key, now, false)
            .await
            .filter(|(e, _)| e.fresh(now))
    }

    /// An entry for `key` past its freshness but inside its `stale-if-error` window (and so
    /// inside `max_retention`), to stand in for a failed origin. Local tiers only: it follows a
    /// [`Cache::get`] of the same request, which promoted a stale entry from Redis to memory.
    pub async fn get_stale(&self, key: &Key) -> Option<Arc<Entry>> {
        let now = SystemTime::now();
        let (e, _) = self.lookup(key, now, false).await?;
        (!e.fresh(now)).then_some(e)
    }

    /// Any servable entry for `key`, fresh or stale; with `shared`, Redis is asked last.
    async fn lookup(&self, key: &Key, now: SystemTime, shared: bool) -> Option<(Arc<Entry>, Tier)> {
        if let Some(e) = self.memory.get(key, now) {
            if let Some(d) = &self.disk {
                d.touch(key, now);
            }
            return Some((e, Tier::Memory));
        }
        let epoch = self.epoch();
        if let Some(disk) = self.disk.clone() {
            let k = *key;
            let found = tokio::task::spawn_blocking(move || disk.get(&k, now))
                .await
                .ok()
                .flatten();
            if let Some(e) = found {
                let e = Arc::new(e);
                self.insert_memory(*key, e.clone(), epoch);
                return Some((e, Tier::Disk));
            }
        }
        let tier = self.shared.as_ref().filter(|_| shared)?;
        let e = Arc::new(tier.get(key).await?);
        self.insert_memory(*key, e.clone(), epoch);
        Some((e, Tier::Shared))
    }

    /// Cluster-wide coalescing, for the one local leader of a miss: claims the making of
    /// `key`'s entry in the shared tier, or waits up to `wait` (and `cache.shared.lock_wait`)
    /// for the node that holds the claim. Without a shared tier: `Lead(None)` at once.
    pub async fn claim(&self, key: &Key, wait: std::time::Duration) -> Claimed {
        let Some(shared) = &self.shared else {
            return Claimed::Lead(None);
        };
        let (result, claimed) = match shared.claim(key).await {
            Claim::Mine(lock) => ("won", Claimed::Lead(Some(lock))),
            Claim::Unavailable => return Claimed::Lead(None),
            Claim::Busy => {
                let epoch = self.epoch();
                let limit = wait.min(shared.config().lock_wait.get());
                match shared.wait(key, limit).await {
                    shared::Waited::Entry(e) => {
                        let e = Arc::new(*e);
                        self.insert_memory(*key, e.clone(), epoch);
                        ("waited", Claimed::Filled(e))
                    }
                    shared::Waited::Released => ("released", Claimed::Lead(None)),
                    shared::Waited::TimedOut => ("gave_up", Claimed::TimedOut),
                }
            }
        };
        crate::telemetry::metrics::SHARED_COALESCE
            .with_label_values(&[result])
            .inc();
        claimed
    }

    fn insert_memory(&self, key: Key, e: Arc<Entry>, epoch: u64) {
        self.memory.insert(key, e);
        // A purge that began before this insert has bumped the epoch: undo, so an erased
        // source never comes back (the purge bumps the epoch before it scans).
        if self.epoch() != epoch {
            self.memory.remove(&key);
        }
    }

    /// Stores `e` in memory at once and returns the disk write, to be awaited by the request
    /// that made the entry (on a blocking thread; so the temp file of the write never outlives
    /// that request). Call [`flight::Leader::finish`] after both, so a request that joins once
    /// the flight has ended finds the entry in some tier. `epoch` is [`Cache::epoch`] read
    /// before the fetch. Whatever deadlines `e` carries, what is stored falls due by
    /// `created + hold_limit` ([`Cache::within_retention`]): the retention promise is kept
    /// here, not by callers.
    pub fn insert(
        self: &Arc<Self>,
        key: Key,
        e: Arc<Entry>,
        epoch: u64,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.insert_claimed(key, e, epoch, None)
    }

    /// Stores the entry a flight's leader made and ends the flight: the claim (if any) goes
    /// with the Redis write and is released after it, the local followers get the entry at
    /// once. Not storable: nothing is stored, the followers and other nodes make their own.
    pub async fn store_and_finish(
        self: &Arc<Self>,
        key: Key,
        e: Arc<Entry>,
        epoch: u64,
        storable: bool,
        lead: Option<flight::Leader>,
    ) {
        let mut lead = lead;
        let claim = lead.as_mut().and_then(|l| l.take_claim());
        if storable {
            self.insert_claimed(key, e.clone(), epoch, claim).await;
        }
        // After the insert (memory and the sealed file): a request that joins once this flight
        // has ended finds the entry in some tier, even when the memory tier did not keep it.
        if let Some(l) = lead {
            l.finish(storable.then_some(e));
        }
    }

    /// [`Cache::insert`], holding `claim` until the Redis write is done. The Redis write runs
    /// on the shared tier's runtime, not in the returned future: a request never waits for it
    /// (nor for a Redis in trouble), and other nodes wait for the claim instead.
    fn insert_claimed(
        self: &Arc<Self>,
        key: Key,
        e: Arc<Entry>,
        epoch: u64,
        claim: Option<shared::Lock>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let e = self.within_retention(e);
        let store = if !self.cfg.enabled {
            false
        } else if SystemTime::now() >= e.expires {
            // A transform that outlasted the retention limit produced something already expired.
            crate::telemetry::metrics::CACHE_NOT_STORED
                .with_label_values(&["expired"])
                .inc();
            false
        } else {
            self.insert_memory(key, e.clone(), epoch);
            true
        };
        let disk = self.disk.clone().filter(|_| store);
        let shared = self.shared.clone().filter(|_| store);
        let me = self.clone();
        async move {
            if let Some(disk) = disk {
                let e = e.clone();
                let me = me.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    disk.put(&key, &e, &|| me.epoch() == epoch);
                })
                .await;
            }
            if let Some(shared) = shared {
                let tier = shared.clone();
                shared.spawn(async move {
                    // A purge that began meanwhile may have scanned Redis already: undo.
                    if me.epoch() == epoch && tier.put(&key, &e).await && me.epoch() != epoch {
                        tier.delete(&key).await;
                    }
                    drop(claim);
                });
            }
        }
    }

    /// `e` with its freshness and expiry capped at `created + hold_limit` (one sweep interval
    /// inside `max_retention`, so the sweeper's removal lands within the limit).
    pub fn within_retention(&self, e: Arc<Entry>) -> Arc<Entry> {
        let cap = e
            .created
            .checked_add(self.cfg.hold_limit())
            .unwrap_or(e.created);
        if e.expires <= cap && e.fresh_until <= cap {
            return e;
        }
        let mut c = (*e).clone();
        c.expires = c.expires.min(cap);
        c.fresh_until = c.fresh_until.min(cap);
        Arc::new(c)
    }

    /// Removes one entry from both tiers at once and returns it if it was fresh: the upload
    /// service's erasure (`DELETE /d/{token}`) and its `delete_after_download`. Of two
    /// concurrent takes, one gets the entry. The purge epoch is not bumped: a write of this key
    /// still in flight is the caller's own (the upload service awaits its insert before it hands
    /// out the link), and other keys' writes must not be undone.
    pub async fn take(&self, key: &Key) -> Option<Arc<Entry>> {
        // Servable (fresh, not idle)? A disk-only entry is promoted, so the take finds it.
        let found = self.get(key).await;
        let taken = self.memory.take(key);
        if let Some(d) = self.disk.clone() {
            let k = *key;
            let _ = tokio::task::spawn_blocking(move || d.delete(&k)).await;
        }
        let remote = match &self.shared {
            Some(s) => s.take(key).await,
            None => None,
        };
        found
            .and(taken)
            .or_else(|| remote.filter(|e| e.fresh(SystemTime::now())).map(Arc::new))
    }

    /// Removes every variant the selector matches, in memory and on disk; returns how many
    /// distinct variants were removed.
    pub fn purge(&self, sel: &Selector) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut keys = self.memory.purge(&|s| sel.matches(s));
        if let Some(d) = &self.disk {
            keys.extend(d.purge(&|s| sel.matches(s)));
        }
        keys.sort_unstable();
        keys.dedup();
        let n = keys.len() as u64;
        crate::telemetry::metrics::CACHE_PURGED.inc_by(n);
        n
    }

    /// Removes expired entries from both tiers. Called every `sweep_interval`.
    pub fn sweep(&self, now: SystemTime) -> u64 {
        let mut removed = self.memory.sweep(now);
        if let Some(d) = &self.disk {
            removed += d.sweep(now);
        }
        removed
    }

    /// Walks the disk directory for strays (see [`DiskTier::scrub`]).
    pub fn scrub(&self, now: SystemTime) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.scrub(now))
    }

    /// Current usage.
    pub fn stats(&self) -> Stats {
        let now = SystemTime::now();
        let (memory_entries, memory_bytes) = self.memory.usage();
        let (disk_entries, disk_bytes) = self.disk.as_ref().map_or((0, 0), |d| d.usage());
        let oldest = [
            self.memory.oldest(),
            self.disk.as_ref().and_then(|d| d.oldest()),
        ]
        .into_iter()
        .flatten()
        .min();
        Stats {
            memory_entries,
            memory_bytes,
            memory_max_bytes: self.cfg.memory.max_bytes.get(),
            disk_enabled: self.disk.is_some(),
            disk_entries,
            disk_bytes,
            disk_max_bytes: self.disk.as_ref().map_or(0, |d| d.max_bytes()),
            oldest_age_seconds: oldest.map(|t| now.duration_since(t).unwrap_or_default().as_secs()),
            background: (self.cfg.max_background - self.background.available_permits()) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Dur;

    #[tokio::test]
    async fn the_cache_caps_every_deadline_at_the_retention_limit() {
        let cfg = CacheConfig {
            max_retention: Dur::secs(60),
            ..CacheConfig::default()
        };
        let cache = Arc::new(Cache::open(&cfg).expect("memory-only cache"));
        let now = SystemTime::now();
        // A caller that computed a day of freshness: the cache keeps its own promise.
        let e = entry::tests::sample("/a.jpg", b"x", now, Duration::from_secs(86_400));
        let key = Key([7; 32]);
        cache.insert(key, Arc::new(e), cache.epoch()).await;
        let (stored, _) = cache.get(&key).await.expect("stored");
        let cap = now + cfg.hold_limit();
        assert!(stored.expires <= cap, "{:?} > {cap:?}", stored.expires);
        assert!(stored.fresh_until <= cap);
        // Within the limit, the entry is stored as given.
        let short = entry::tests::sample("/b.jpg", b"y", now, Duration::from_secs(10));
        let kept = cache.within_retention(Arc::new(short.clone()));
        assert_eq!(*kept, short);
    }
}
