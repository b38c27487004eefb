//! The disk tier's directory and files with the real binary (issue 17): pixgate takes only an
//! empty or marked directory, makes it private, deletes only files named like its own, and
//! nothing in a copy of the directory (file names, plaintext bytes, modification times) tells
//! which image was cached or when.

mod common;
use common::*;
use pixgate::cache::KeyParts;
use pixgate::config::{ByteSize, Config, DiskConfig, DiskSetting, Dur};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WEBP: &str = "image/webp,*/*";
/// The file that says a directory is pixgate's cache directory.
const MARKER: &str = ".pixgate-cache";

/// Regular files anywhere under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
}

/// Cache files: in a two-hex-digit shard directory, named by 64 hex digits.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    files(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let shard = p
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str());
            p.parent().and_then(Path::parent) == Some(dir)
                && shard.is_some_and(|s| hex(s, 2))
                && hex(name, 64)
        })
        .collect()
}

fn config(origin: &str, dir: &Path, key_file: Option<PathBuf>) -> Config {
    let mut c = Config::default();
    c.origin.url = origin.to_string();
    c.server.grace_period = Dur::secs(0);
    c.cache.disk = DiskSetting::On(DiskConfig {
        dir: dir.to_path_buf(),
        max_bytes: ByteSize(64 << 20),
        key_file,
    });
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn xcache(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Someone else's files, and where the test put them.
fn plant_foreign(dir: &Path) -> Vec<(PathBuf, &'static [u8])> {
    let planted: Vec<(PathBuf, &'static [u8])> = vec![
        (dir.join("keep.txt"), b"family photos, not a cache file"),
        (dir.join("notes").join("keep.txt"), b"notes"),
        (dir.join("ab").join("keep.txt"), b"in a shard-like folder"),
        (
            dir.join("notes").join("ab".repeat(32)),
            b"pixgate-like name outside a shard",
        ),
    ];
    for (p, body) in &planted {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    planted
}

fn assert_intact(planted: &[(PathBuf, &'static [u8])], when: &str) {
    for (p, body) in planted {
        assert_eq!(
            std::fs::read(p).ok().as_deref(),
            Some(*body),
            "{} was changed or removed {when}",
            p.display()
        );
    }
}

#[test]
fn a_directory_holding_other_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("photos");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(cache.join("keep.txt"), b"family photos").unwrap();
    // Even a file named like a cache file is not pixgate's in a directory it never took.
    let look_alike = cache.join("ab").join("ab".repeat(32));
    std::fs::create_dir(cache.join("ab")).unwrap();
    std::fs::write(&look_alike, b"someone's content-addressed store").unwrap();

    let cfg = config("http://127.0.0.1:9", &cache, None);
    let (exit, stderr) = Pixgate::run_to_exit(cfg, Duration::from_secs(10));
    let exit = exit.expect("pixgate started on a directory holding someone else's files");
    assert!(!exit.success(), "{exit:?}: {stderr}");
    assert!(stderr.contains("cache.disk.dir"), "names the key: {stderr}");
    assert!(
        stderr.contains(&cache.display().to_string()),
        "names the path: {stderr}"
    );
    assert_eq!(
        std::fs::read(cache.join("keep.txt")).unwrap(),
        b"family photos"
    );
    assert_eq!(
        std::fs::read(&look_alike).unwrap(),
        b"someone's content-addressed store"
    );
    assert!(
        !cache.join(MARKER).exists(),
        "a refused directory is not marked"
    );
    assert!(!cache.join("tmp").exists(), "nothing is created in it");
    assert_eq!(mode(&cache), 0o755, "nor is its mode changed");
}

#[test]
fn the_cache_directory_is_marked_and_made_private() {
    let origin = TestOrigin::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    // An existing empty directory, readable by everyone: taken, marked and tightened.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A new one: created private.
    let fresh = dir.path().join("new").join("cache");
    for cache in [&existing, &fresh] {
        let px = Pixgate::start_config(config(&format!("http://{}", origin.addr), cache, None));
        assert_eq!(mode(cache), 0o700, "{}", cache.display());
        assert!(
            cache.join(MARKER).is_file(),
            "{} is marked",
            cache.display()
        );
        drop(px);
        // Marked: the next start takes it again.
        let _px = Pixgate::start_config(config(&format!("http://{}", origin.addr), cache, None));
        assert_eq!(mode(cache), 0o700);
    }
}

#[tokio::test]
async fn a_marked_directory_keeps_foreign_files_while_pixgate_removes_its_own() {
    let origin = TestOrigin::start(vec![
        (
            "/a.jpg",
            Route::ok("image/jpeg", photo(160, 120, 1)).header("cache-control", "max-age=3600"),
        ),
        (
            "/b.jpg",
            Route::ok("image/jpeg", photo(160, 120, 2)).header("cache-control", "max-age=3600"),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut cfg = config(
        &format!("http://{}", origin.addr),
        &cache,
        Some(dir.path().join("cache.key")),
    );
    cfg.cache.max_retention = Dur::secs(2);

    // A first run leaves one entry behind; the key file makes it readable to the next run.
    let mut px = Pixgate::start_config(cfg.clone());
    assert!(cache.join(MARKER).is_file());
    let t0 = Instant::now();
    assert_eq!(xcache(&get(&px.url("/a.jpg"), Some(WEBP)).await), "MISS");
    assert!(wait_until(Duration::from_secs(5), || entries(&cache).len() == 1).await);
    px.stop();
    let expired = entries(&cache).remove(0);
    assert!(
        t0.elapsed() < Duration::from_millis(1700),
        "killed before the sweep"
    );

    let planted = plant_foreign(&cache);
    // Pixgate's own leftovers: a torn cache file and a crashed write's temp file.
    let shard = cache.join("cd");
    std::fs::create_dir_all(&shard).unwrap();
    let torn = shard.join(format!("cd{}", "0".repeat(62)));
    std::fs::write(&torn, b"torn").unwrap();
    let temp = cache.join("tmp").join(format!("{}.4242.7", "e".repeat(64)));
    std::fs::write(&temp, b"half a write").unwrap();

    // Past the entry's retention, restart: start-up removes pixgate's files, nothing else.
    let wait = Duration::from_millis(2100).saturating_sub(t0.elapsed());
    tokio::time::sleep(wait).await;
    let px = Pixgate::start_config(cfg);
    assert!(!expired.exists(), "the expired entry was removed at start");
    assert!(!torn.exists(), "the torn cache file was removed at start");
    assert!(!temp.exists(), "the temp file was removed at start");
    assert_intact(&planted, "at start");

    // The sweeper removes a new entry at its deadline and nothing else.
    assert_eq!(xcache(&get(&px.url("/b.jpg"), Some(WEBP)).await), "MISS");
    assert!(wait_until(Duration::from_secs(5), || entries(&cache).len() == 1).await);
    assert!(
        wait_until(Duration::from_secs(5), || entries(&cache).is_empty()).await,
        "the sweeper removed the expired entry"
    );
    assert_intact(&planted, "by the sweeper");
    assert!(cache.join(MARKER).is_file());
}

/// Whether `v` lies in one of `ranges` (inclusive).
fn in_any(v: u64, ranges: &[(u64, u64)]) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&v))
}

/// Every way `b` could spell a value of `ranges` in the clear: 8-byte little- or big-endian
/// integers, and 10- or 13-digit decimal text (seconds or milliseconds since the epoch).
fn clear_times(b: &[u8], ranges: &[(u64, u64)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (i, w) in b.windows(8).enumerate() {
        let w: [u8; 8] = w.try_into().unwrap();
        for (v, how) in [(u64::from_le_bytes(w), "le"), (u64::from_be_bytes(w), "be")] {
            if in_any(v, ranges) {
                hits.push(format!("{v} as {how} u64 at {i}"));
            }
        }
    }
    for n in [10, 13] {
        for (i, w) in b.windows(n).enumerate() {
            if w.iter().all(u8::is_ascii_digit) {
                let v: u64 = std::str::from_utf8(w).unwrap().parse().unwrap();
                if in_any(v, ranges) {
                    hits.push(format!("{v} as text at {i}"));
                }
            }
        }
    }
    hits
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn a_copy_of_the_directory_tells_neither_which_image_nor_when() {
    const PATH: &str = "/users/x/passport.jpg";
    const HOST: &str = "images.example.com";
    let origin = TestOrigin::start(vec![(
        PATH,
        Route::ok("image/jpeg", photo(160, 120, 3)).header("cache-control", "max-age=3600"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut cfg = config(&format!("http://{}", origin.addr), &cache, None);
    cfg.origin.host = Some(HOST.into());
    let px = Pixgate::start_config(cfg.clone());

    let before = SystemTime::now();
    let r = get(&px.url(PATH), Some(WEBP)).await;
    assert_eq!((xcache(&r).as_str(), r.status().as_u16()), ("MISS", 200));
    let after = SystemTime::now();
    assert!(wait_until(Duration::from_secs(5), || entries(&cache).len() == 1).await);
    assert_eq!(xcache(&get(&px.url(PATH), Some(WEBP)).await), "HIT");

    // The name an unkeyed hash gives (what pixgate used to write): anyone can compute it from
    // the URL and look for it.
    let settings = format!(
        "{}\n{}",
        serde_yaml_ng::to_string(&cfg.images).unwrap(),
        serde_yaml_ng::to_string(&cfg.limits).unwrap()
    );
    let guessable = KeyParts {
        origin: &cfg.origin.url,
        host: HOST,
        path_and_query: PATH,
        options: "",
        plan: "webp",
        settings: &pixgate::cache::key::fingerprint(&settings),
    }
    .key();
    let all = files(&cache);
    for p in &all {
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(
            !name.contains(&guessable.hex()),
            "{} is named by the unkeyed hash of its URL",
            p.display()
        );
    }

    // Created: when the source fetch started; expires and fresh until: an hour later.
    let hour = 3600 * 1000;
    let (lo, hi) = (ms(before), ms(after));
    let ranges = [
        (lo, hi),
        (lo + hour, hi + hour),
        (lo / 1000, hi / 1000),
        ((lo + hour) / 1000, (hi + hour) / 1000),
    ];
    for p in &all {
        let b = std::fs::read(p).unwrap();
        let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        for needle in [PATH, "passport", HOST] {
            assert!(!has(needle.as_bytes()), "{} holds `{needle}`", p.display());
        }
        assert!(
            !has(&guessable.0),
            "{} holds the unkeyed variant key",
            p.display()
        );
        let hits = clear_times(&b, &ranges);
        assert!(
            hits.is_empty(),
            "{} holds the entry's times in the clear: {hits:?}",
            p.display()
        );
    }
    // Nor do the cache files' modification times (kept by cp -a, rsync -a and tar).
    for p in entries(&cache) {
        let m = ms(std::fs::metadata(&p).unwrap().modified().unwrap());
        assert!(
            !(lo.saturating_sub(5000)..=ms(SystemTime::now()) + 5000).contains(&m),
            "{} has its write time as mtime",
            p.display()
        );
    }
    drop(px);
}
