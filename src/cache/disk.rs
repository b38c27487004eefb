//! The disk tier: one sealed file per variant under `dir/<2 hex>/<64 hex>` (the name a keyed
//! MAC of the variant key, see [`seal`]), an in-memory LRU index of names, sizes and deadlines,
//! and a byte limit that holds under a flood (space is reserved and victims deleted before a
//! file is written, so usage stays within `max_bytes` plus the entry being written).
//!
//! Retention: the sweeper removes expired and idle files every sweep interval, by the
//! deadlines the index holds in memory (on disk they are sealed); a periodic scrub lists the
//! directory and removes cache files the index does not vouch for; start-up removes temp files,
//! and cache files sealed under another key (an ephemeral key makes that every old file), torn,
//! expired or unreadable. Only files named like pixgate's are ever removed ([`layout`]).
//! Writes go to `dir/tmp/` and are renamed into place; a temp file is removed by its guard if
//! the write fails. All calls block: run them on a blocking thread.

pub mod layout;

use super::entry::Entry;
use super::key::{Key, Source};
use super::policy;
use super::seal::{self, FileName, Header, Sealer, HEADER_LEN};
use crate::cache::config::DiskConfig;
use crate::telemetry::metrics;
use layout::Layout;
use lru::LruCache;
use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Temp files older than this are leftovers of a crashed write and are removed by the scrub.
const TEMP_MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Meta {
    name: FileName,
    size: u64,
    expires: SystemTime,
    created: SystemTime,
    last_used: SystemTime,
    source: Source,
}

struct Index {
    lru: LruCache<Key, Meta>,
    bytes: u64,
    /// No entry expires before this (a lower bound): the sweep skips its scan until then.
    earliest: SystemTime,
}

impl Index {
    /// Whether a sweep at `now` could find anything: an expiry is due, or the least recently
    /// used entry (the one idle longest: every use moves an entry to the front) is idle.
    fn sweep_due(&self, now: SystemTime, idle: Option<Duration>) -> bool {
        if now >= self.earliest {
            return true;
        }
        match (idle, self.lru.peek_lru()) {
            (Some(i), Some((_, m))) => now.duration_since(m.last_used).unwrap_or_default() >= i,
            _ => false,
        }
    }
}

/// The disk tier.
pub struct DiskTier {
    layout: Layout,
    max_bytes: u64,
    idle: Option<Duration>,
    sealer: Sealer,
    index: Mutex<Index>,
    temp_seq: AtomicU64,
}

/// What start-up found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Startup {
    /// Files kept (readable with the current key, not expired).
    pub kept: u64,
    /// Files removed (other key, torn, expired, unreadable, temp).
    pub removed: u64,
}

impl DiskTier {
    /// The cache directory.
    pub fn dir(&self) -> &Path {
        self.layout.dir()
    }

    /// Takes the directory ([`Layout::take`]: refused when it holds others' files), loads the
    /// key, and cleans up what a previous run left.
    pub fn open(cfg: &DiskConfig, idle: Option<Duration>) -> Result<(DiskTier, Startup), String> {
        let layout = Layout::take(&cfg.dir, cfg.key_file.as_deref())?;
        let sealer = match &cfg.key_file {
            Some(p) => Sealer::from_key_file(p)?,
            None => Sealer::ephemeral(),
        };
        let tier = DiskTier {
            layout,
            max_bytes: cfg.max_bytes.get(),
            idle,
            sealer,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                bytes: 0,
                earliest: SystemTime::UNIX_EPOCH,
            }),
            temp_seq: AtomicU64::new(0),
        };
        let st = tier.load(SystemTime::now());
        Ok((tier, st))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index inconsistent with anything
        // but the files, which the scrub reconciles; keep serving.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the index from the directory, removing every cache file not servable.
    fn load(&self, now: SystemTime) -> Startup {
        let mut st = Startup::default();
        for (path, _) in self.layout.temp_files() {
            if fs::remove_file(path).is_ok() {
                st.removed += 1;
            }
        }
        let mut found: Vec<(Key, Meta)> = Vec::new();
        for (path, name) in self.layout.files() {
            let kept = self.read_meta(&name, &path).and_then(|(h, key, e)| {
                let size = fs::metadata(&path).ok()?.len();
                // File times are not kept (every file says 1970): the idle clock restarts
                // from the sealed creation time, which can only make idle removal earlier.
                let last_used = e.created;
                if size != h.file_len() || !policy::servable(e.expires, last_used, self.idle, now) {
                    return None;
                }
                let meta = Meta {
                    name,
                    size,
                    expires: e.expires,
                    created: e.created,
                    last_used,
                    source: e.source,
                };
                Some((key, meta))
            });
            match kept {
                Some(km) => found.push(km),
                None => {
                    if fs::remove_file(&path).is_ok() {
                        st.removed += 1;
                    }
                }
            }
        }
        found.sort_by_key(|(_, m)| m.last_used);
        let mut victims = Vec::new();
        {
            let mut ix = self.lock();
            for (k, m) in found {
                ix.bytes += m.size;
                ix.lru.put(k, m);
            }
            while ix.bytes > self.max_bytes {
                match ix.lru.pop_lru() {
                    Some((_, m)) => {
                        ix.bytes -= m.size;
                        victims.push(m.name);
                    }
                    None => break,
                }
            }
            st.kept = ix.lru.len() as u64;
        }
        for n in victims {
            if fs::remove_file(self.layout.file(&n)).is_ok() {
                st.removed += 1;
            }
        }
        st
    }

    fn read_meta(&self, name: &FileName, path: &Path) -> Option<(Header, Key, Entry)> {
        let mut f = fs::File::open(path).ok()?;
        let mut head = [0u8; HEADER_LEN];
        f.read_exact(&mut head).ok()?;
        let h = Header::parse(&head)?;
        if !self.sealer.owns(&h) {
            return None;
        }
        let end = usize::try_from(h.meta_end()).ok()?;
        if end > 16 << 20 {
            return None;
        }
        let mut b = head.to_vec();
        b.resize(end, 0);
        f.read_exact(&mut b[HEADER_LEN..]).ok()?;
        self.sealer.open_meta(name, &b)
    }

    /// The entry for `key` if servable at `now`. A torn or tampered file is deleted and
    /// counted, never served.
    pub fn get(&self, key: &Key, now: SystemTime) -> Option<Entry> {
        let name = {
            let mut ix = self.lock();
            let m = ix.lru.get_mut(key)?;
            if !policy::servable(m.expires, m.last_used, self.idle, now) {
                drop(ix);
                self.remove(key, "expired");
                return None;
            }
            m.last_used = now;
            m.name
        };
        let bytes = match fs::read(self.layout.file(&name)) {
            Ok(b) => b,
            Err(_) => {
                // Removed under us (sweep, purge): forget it.
                self.forget(key);
                return None;
            }
        };
        match self.sealer.open(&name, &bytes) {
            Some((k, e)) if k == *key && now < e.expires => Some(e),
            Some((k, _)) if k == *key => {
                self.remove(key, "expired");
                None
            }
            _ => {
                // The keyed name, not the key: a key prefix can be matched against guessed URLs.
                tracing::warn!(file = ?name, "disk cache file failed its integrity check; removed");
                self.remove(key, "corrupt");
                None
            }
        }
    }

    /// Marks a memory hit, so the disk copy stays recent and idle expiry counts it.
    pub fn touch(&self, key: &Key, now: SystemTime) {
        if let Some(m) = self.lock().lru.get_mut(key) {
            m.last_used = now;
        }
    }

    /// Writes `e` for `key`. `still_valid` is asked after the file is in place: a purge that
    /// ran meanwhile makes it `false`, and the new file is removed again.
    pub fn put(&self, key: &Key, e: &Entry, still_valid: &dyn Fn() -> bool) -> bool {
        let Some((name, sealed)) = self.sealer.seal(key, e) else {
            return false;
        };
        let size = sealed.len() as u64;
        if size > self.max_bytes {
            return false;
        }
        let mut victims = Vec::new();
        {
            let mut ix = self.lock();
            if let Some(old) = ix.lru.pop(key) {
                ix.bytes -= old.size;
            }
            while ix.bytes + size > self.max_bytes {
                match ix.lru.pop_lru() {
                    Some((_, m)) => {
                        ix.bytes -= m.size;
                        victims.push(m.name);
                    }
                    None => break,
                }
            }
            // Reserved before the write, so the scrub never mistakes the new file for a stray.
            ix.bytes += size;
            ix.earliest = ix.earliest.min(e.expires);
            ix.lru.put(
                *key,
                Meta {
                    name,
                    size,
                    expires: e.expires,
                    created: e.created,
                    last_used: SystemTime::now(),
                    source: e.source.clone(),
                },
            );
        }
        for n in &victims {
            let _ = fs::remove_file(self.layout.file(n));
            metrics::CACHE_EVICTIONS
                .with_label_values(&["disk", "size"])
                .inc();
        }
        if !self.write_atomic(&name, &sealed) {
            self.forget(key);
            return false;
        }
        if !still_valid() {
            self.remove(key, "purge");
            return false;
        }
        true
    }

    fn write_atomic(&self, name: &FileName, data: &[u8]) -> bool {
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = TempFile(self.layout.temp(name, seq));
        let dest = self.layout.file(name);
        let ok = (|| -> std::io::Result<()> {
            self.layout.create_shard(name)?;
            let mut f = seal::create_private(&tmp.0)?;
            f.write_all(data)?;
            // The write time would date the entry: every cache file says 1970 instead. (A temp
            // file caught by the scrub in this instant fails the rename: a write lost, no harm.)
            f.set_modified(SystemTime::UNIX_EPOCH)?;
            drop(f);
            fs::rename(&tmp.0, &dest)
        })();
        if let Err(e) = ok {
            tracing::warn!(error = %e, "disk cache write failed");
            return false;
        }
        std::mem::forget(tmp); // renamed: nothing left to remove
        true
    }

    /// Drops `key` from the index and deletes its file, counting the reason.
    fn remove(&self, key: &Key, reason: &str) {
        self.delete(key);
        metrics::CACHE_EVICTIONS
            .with_label_values(&["disk", reason])
            .inc();
    }

    /// Drops `key` from the index and deletes its file (named anew when the index no longer
    /// knows it: a purge may have dropped it while its file was being written).
    pub fn delete(&self, key: &Key) {
        let name = self.forget(key).unwrap_or_else(|| self.sealer.name(key));
        let _ = fs::remove_file(self.layout.file(&name));
    }

    /// Drops `key` from the index; returns its file name if it was there.
    fn forget(&self, key: &Key) -> Option<FileName> {
        let mut ix = self.lock();
        let m = ix.lru.pop(key)?;
        ix.bytes -= m.size;
        Some(m.name)
    }

    /// Removes every entry whose source matches; returns their keys.
    pub fn purge(&self, matches: &dyn Fn(&Source) -> bool) -> Vec<Key> {
        let keys: Vec<Key> = {
            let ix = self.lock();
            ix.lru
                .iter()
                .filter(|(_, m)| matches(&m.source))
                .map(|(k, _)| *k)
                .collect()
        };
        for k in &keys {
            self.delete(k);
        }
        keys
    }

    /// Removes expired and idle entries; returns how many.
    pub fn sweep(&self, now: SystemTime) -> u64 {
        let dead: Vec<(Key, &'static str)> = {
            let mut ix = self.lock();
            if !ix.sweep_due(now, self.idle) {
                return 0;
            }
            let mut earliest: Option<SystemTime> = None;
            let dead = ix
                .lru
                .iter()
                .filter_map(|(k, m)| {
                    if now >= m.expires {
                        Some((*k, "expired"))
                    } else if !policy::servable(m.expires, m.last_used, self.idle, now) {
                        Some((*k, "idle"))
                    } else {
                        earliest = Some(earliest.map_or(m.expires, |t| t.min(m.expires)));
                        None
                    }
                })
                .collect();
            // Empty: nothing is due until a put lowers it.
            ix.earliest = earliest.unwrap_or(now + Duration::from_secs(365 * 86_400));
            dead
        };
        for (k, why) in &dead {
            self.remove(k, why);
        }
        dead.len() as u64
    }

    /// Lists the directory and removes cache files the index does not vouch for (strays: the
    /// sweep handles the expiry of known ones) and temp files older than a write can take.
    /// Costs a directory listing, no file reads; touches nothing not named like pixgate's.
    pub fn scrub(&self, now: SystemTime) -> u64 {
        let mut removed = 0;
        let files = self.layout.files();
        let known: HashSet<FileName> = self.lock().lru.iter().map(|(_, m)| m.name).collect();
        for (path, name) in files {
            // Listed before the index was read: a file written since is not in `files`.
            if !known.contains(&name) && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        for (path, modified) in self.layout.temp_files() {
            let old =
                modified.is_none_or(|t| now.duration_since(t).unwrap_or_default() > TEMP_MAX_AGE);
            if old && fs::remove_file(path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// (entries, bytes) as the index counts them.
    pub fn usage(&self) -> (u64, u64) {
        let ix = self.lock();
        (ix.lru.len() as u64, ix.bytes)
    }

    /// The creation time of the oldest entry, if any.
    pub fn oldest(&self) -> Option<SystemTime> {
        self.lock().lru.iter().map(|(_, m)| m.created).min()
    }

    /// The configured limit.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// A temp file removed when dropped (unless forgotten after its rename).
struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests;
