//! The disk tier: one sealed file per variant under `dir/<2 hex>/<64 hex>`, an in-memory LRU
//! index of sizes and deadlines, and a byte limit that holds under a flood (space is reserved
//! and victims deleted before a file is written, so usage stays within `max_bytes` plus the
//! entry being written).
//!
//! Retention: the sweeper removes expired and idle files every sweep interval; a periodic
//! scrub walks the directory and removes anything the index does not vouch for; start-up
//! removes temp files, files sealed under another key (an ephemeral key makes that every old
//! file), torn, expired or unreadable files. Writes go to `dir/tmp/` and are renamed into
//! place; a temp file is removed by its guard if the write fails. All calls block: run them
//! on a blocking thread.

use super::entry::Entry;
use super::key::{Key, Source};
use super::policy;
use super::seal::{self, Header, Sealer, HEADER_LEN};
use crate::cache::config::DiskConfig;
use crate::telemetry::metrics;
use lru::LruCache;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Temp files older than this are leftovers of a crashed write and are removed by the scrub.
const TEMP_MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Meta {
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
    dir: PathBuf,
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
    /// Files removed (other key, torn, expired, unreadable, temp, stray).
    pub removed: u64,
}

impl DiskTier {
    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (creating) the directory, loads the key, and cleans up what a previous run left.
    pub fn open(cfg: &DiskConfig, idle: Option<Duration>) -> Result<(DiskTier, Startup), String> {
        let dir = cfg.dir.clone();
        create_private_dir(&dir)?;
        create_private_dir(&dir.join("tmp"))?;
        let sealer = match &cfg.key_file {
            Some(p) => Sealer::from_key_file(p)?,
            None => Sealer::ephemeral(),
        };
        let tier = DiskTier {
            dir,
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

    fn path(&self, key: &Key) -> PathBuf {
        let hex = key.hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index inconsistent with anything
        // but the files, which the scrub reconciles; keep serving.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the index from the directory, removing everything not servable.
    fn load(&self, now: SystemTime) -> Startup {
        let mut st = Startup::default();
        if let Ok(rd) = fs::read_dir(self.dir.join("tmp")) {
            for f in rd.flatten() {
                if fs::remove_file(f.path()).is_ok() {
                    st.removed += 1;
                }
            }
        }
        let mut found: Vec<(Key, Meta)> = Vec::new();
        for (path, name) in self.files() {
            let kept = Key::from_hex(&name).and_then(|k| {
                let (h, e) = self.read_meta(&k, &path)?;
                let size = fs::metadata(&path).ok()?.len();
                if size != h.file_len() || seal::expired(&h, now) {
                    return None;
                }
                let last_used = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .unwrap_or(e.created);
                if !policy::servable(e.expires, last_used, self.idle, now) {
                    return None;
                }
                Some((
                    k,
                    Meta {
                        size,
                        expires: e.expires,
                        created: e.created,
                        last_used,
                        source: e.source,
                    },
                ))
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
                    Some((k, m)) => {
                        ix.bytes -= m.size;
                        victims.push(k);
                    }
                    None => break,
                }
            }
            st.kept = ix.lru.len() as u64;
        }
        for k in victims {
            if fs::remove_file(self.path(&k)).is_ok() {
                st.removed += 1;
            }
        }
        st
    }

    /// Every cache file: `(path, file name)`; anything else in a shard directory is removed.
    fn files(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return out;
        };
        for shard in rd.flatten() {
            let name = shard.file_name().to_string_lossy().into_owned();
            if name == "tmp" {
                continue;
            }
            let p = shard.path();
            if !p.is_dir() {
                let _ = fs::remove_file(&p);
                continue;
            }
            if let Ok(files) = fs::read_dir(&p) {
                for f in files.flatten() {
                    out.push((f.path(), f.file_name().to_string_lossy().into_owned()));
                }
            }
        }
        out
    }

    fn read_meta(&self, key: &Key, path: &Path) -> Option<(Header, Entry)> {
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
        self.sealer.open_meta(key, &b)
    }

    /// The entry for `key` if servable at `now`. A torn or tampered file is deleted and
    /// counted, never served.
    pub fn get(&self, key: &Key, now: SystemTime) -> Option<Entry> {
        {
            let mut ix = self.lock();
            let m = ix.lru.get_mut(key)?;
            if !policy::servable(m.expires, m.last_used, self.idle, now) {
                drop(ix);
                self.remove(key, "expired");
                return None;
            }
            m.last_used = now;
        }
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                // Removed under us (sweep, purge): forget it.
                self.forget(key);
                return None;
            }
        };
        match self.sealer.open(key, &bytes) {
            Some(e) if now < e.expires => Some(e),
            Some(_) => {
                self.remove(key, "expired");
                None
            }
            None => {
                tracing::warn!(key = ?key, "disk cache file failed its integrity check; removed");
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
        let Some(sealed) = self.sealer.seal(key, e) else {
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
                    Some((k, m)) => {
                        ix.bytes -= m.size;
                        victims.push(k);
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
                    size,
                    expires: e.expires,
                    created: e.created,
                    last_used: SystemTime::now(),
                    source: e.source.clone(),
                },
            );
        }
        for k in &victims {
            let _ = fs::remove_file(self.path(k));
            metrics::CACHE_EVICTIONS
                .with_label_values(&["disk", "size"])
                .inc();
        }
        let written = self.write_atomic(key, &sealed);
        if !written {
            self.forget(key);
            return false;
        }
        if !still_valid() {
            self.remove(key, "purge");
            return false;
        }
        true
    }

    fn write_atomic(&self, key: &Key, data: &[u8]) -> bool {
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = TempFile(self.dir.join("tmp").join(format!(
            "{}.{}.{seq}",
            key.hex(),
            std::process::id()
        )));
        let dest = self.path(key);
        let ok = (|| -> std::io::Result<()> {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            seal::write_private(&tmp.0, data, false)?;
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
        self.forget(key);
        let _ = fs::remove_file(self.path(key));
        metrics::CACHE_EVICTIONS
            .with_label_values(&["disk", reason])
            .inc();
    }

    fn forget(&self, key: &Key) {
        let mut ix = self.lock();
        if let Some(m) = ix.lru.pop(key) {
            ix.bytes -= m.size;
        }
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
            self.forget(k);
            let _ = fs::remove_file(self.path(k));
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

    /// Walks the directory and removes what the index does not vouch for (stray files: the
    /// sweep handles the expiry of known ones) and temp files older than a write can take.
    /// Costs a directory listing, no file reads.
    pub fn scrub(&self, now: SystemTime) -> u64 {
        let mut removed = 0;
        for (path, name) in self.files() {
            let known = Key::from_hex(&name).is_some_and(|k| self.lock().lru.contains(&k));
            if !known && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if let Ok(rd) = fs::read_dir(self.dir.join("tmp")) {
            for f in rd.flatten() {
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default() > TEMP_MAX_AGE)
                    .unwrap_or(true);
                if old && fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
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

fn create_private_dir(p: &Path) -> Result<(), String> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(p)
        .map_err(|e| format!("cannot create cache directory {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::super::entry::tests::sample;
    use super::*;
    use crate::config::ByteSize;

    fn cfg(dir: &Path, max: u64, key_file: Option<PathBuf>) -> DiskConfig {
        DiskConfig {
            dir: dir.to_path_buf(),
            max_bytes: ByteSize(max),
            key_file,
        }
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in walk(dir) {
            if e.is_file() {
                out.push(e);
            }
        }
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.extend(walk(&p));
                } else {
                    out.push(p);
                }
            }
        }
        out
    }

    #[test]
    fn put_get_and_expiry_by_injected_clock() {
        let d = tempfile::tempdir().unwrap();
        let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        let now = SystemTime::now();
        let k = Key([1; 32]);
        assert!(t.put(
            &k,
            &sample("/a", b"abc", now, Duration::from_secs(2)),
            &|| true
        ));
        assert_eq!(
            t.get(&k, now).map(|e| e.body),
            Some(bytes::Bytes::from_static(b"abc"))
        );
        assert_eq!(t.sweep(now + Duration::from_millis(1999)), 0);
        assert_eq!(t.sweep(now + Duration::from_secs(2)), 1);
        assert!(files_under(d.path()).is_empty());
        assert_eq!(t.usage(), (0, 0));
    }

    #[test]
    fn byte_limit_holds_under_a_flood() {
        static BODY: [u8; 5000] = [3; 5000];
        let d = tempfile::tempdir().unwrap();
        let max = 64 * 1024;
        let (t, _) = DiskTier::open(&cfg(d.path(), max, None), None).unwrap();
        let now = SystemTime::now();
        for i in 0..200u8 {
            t.put(
                &Key([i; 32]),
                &sample("/f", &BODY, now, Duration::from_secs(60)),
                &|| true,
            );
            let on_disk: u64 = files_under(d.path())
                .iter()
                .map(|p| fs::metadata(p).unwrap().len())
                .sum();
            assert!(on_disk <= max, "{on_disk} > {max} after {i}");
        }
        assert!(t.usage().1 <= max);
    }

    #[test]
    fn restart_with_ephemeral_key_removes_everything_and_key_file_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let k = Key([5; 32]);
        {
            let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
            t.put(
                &k,
                &sample("/a", b"abc", now, Duration::from_secs(60)),
                &|| true,
            );
        }
        let (_t, st) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        assert_eq!(
            st,
            Startup {
                kept: 0,
                removed: 1
            }
        );
        assert!(files_under(d.path()).is_empty());

        let kf = d
            .path()
            .join("..")
            .join(format!("key-{}", std::process::id()));
        let kd = tempfile::tempdir().unwrap();
        let kf = kd.path().join(kf.file_name().unwrap());
        {
            let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, Some(kf.clone())), None).unwrap();
            t.put(
                &k,
                &sample("/a", b"abc", now, Duration::from_secs(60)),
                &|| true,
            );
        }
        let (t, st) = DiskTier::open(&cfg(d.path(), 1 << 20, Some(kf)), None).unwrap();
        assert_eq!(st.kept, 1);
        assert!(t.get(&k, now).is_some());
    }

    #[test]
    fn corrupt_file_is_not_served_and_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        let now = SystemTime::now();
        let k = Key([7; 32]);
        t.put(
            &k,
            &sample("/a", b"abcdef", now, Duration::from_secs(60)),
            &|| true,
        );
        let p = t.path(&k);
        let mut b = fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x40;
        fs::write(&p, b).unwrap();
        assert!(t.get(&k, now).is_none());
        assert!(!p.exists());
        assert_eq!(t.usage(), (0, 0));
    }

    #[test]
    fn a_purge_during_a_write_wins() {
        let d = tempfile::tempdir().unwrap();
        let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        let now = SystemTime::now();
        assert!(!t.put(
            &Key([1; 32]),
            &sample("/a", b"x", now, Duration::from_secs(60)),
            &|| false
        ));
        assert!(files_under(d.path()).is_empty());
    }

    #[test]
    fn scrub_removes_strays_and_old_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        fs::create_dir_all(d.path().join("ab")).unwrap();
        fs::write(d.path().join("ab").join("stray"), b"x").unwrap();
        fs::write(d.path().join("tmp").join("leftover"), b"x").unwrap();
        let later = SystemTime::now() + TEMP_MAX_AGE + Duration::from_secs(1);
        assert_eq!(t.scrub(later), 2);
        assert!(files_under(d.path()).is_empty());
    }

    #[test]
    fn sweep_skips_its_scan_until_something_is_due() {
        let d = tempfile::tempdir().unwrap();
        let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        let now = SystemTime::now();
        t.put(
            &Key([1; 32]),
            &sample("/a", b"x", now, Duration::from_secs(10)),
            &|| true,
        );
        t.put(
            &Key([2; 32]),
            &sample("/b", b"y", now, Duration::from_secs(20)),
            &|| true,
        );
        assert_eq!(t.sweep(now), 0);
        assert!(!t.lock().sweep_due(now + Duration::from_secs(9), None));
        assert!(t.lock().sweep_due(now + Duration::from_secs(10), None));
        assert_eq!(t.sweep(now + Duration::from_secs(10)), 1);
        assert!(!t.lock().sweep_due(now + Duration::from_secs(19), None));
        assert_eq!(t.sweep(now + Duration::from_secs(20)), 1);
    }

    #[test]
    fn idle_entries_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let (t, _) =
            DiskTier::open(&cfg(d.path(), 1 << 20, None), Some(Duration::from_secs(60))).unwrap();
        let now = SystemTime::now();
        let k = Key([2; 32]);
        t.put(
            &k,
            &sample("/a", b"x", now, Duration::from_secs(3600)),
            &|| true,
        );
        t.touch(&k, now + Duration::from_secs(50));
        assert_eq!(t.sweep(now + Duration::from_secs(100)), 0);
        assert_eq!(t.sweep(now + Duration::from_secs(111)), 1);
    }
}
