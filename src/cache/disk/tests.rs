//! The disk tier's tests: limits, expiry by an injected clock, restarts, corruption, and
//! what start-up and the scrub delete (only pixgate's own files).

use super::super::entry::tests::sample;
use super::*;
use crate::units::ByteSize;
use layout::MARKER as MARK;

fn cfg(dir: &Path, max: u64, key_file: Option<PathBuf>) -> DiskConfig {
    DiskConfig {
        dir: dir.to_path_buf(),
        max_bytes: ByteSize(max),
        key_file,
    }
}

/// Every file under `dir` but the marker.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk(dir) {
        if e.is_file() && e != dir.join(MARK) {
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
    let p = t.layout.file(&t.sealer.name(&k));
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
    let now = SystemTime::now();
    let k = Key([4; 32]);
    t.put(
        &k,
        &sample("/a", b"x", now, Duration::from_secs(60)),
        &|| true,
    );
    fs::create_dir_all(d.path().join("ab")).unwrap();
    fs::write(d.path().join("ab").join("ab".repeat(32)), b"x").unwrap();
    let young = d
        .path()
        .join("tmp")
        .join(format!("{}.1.1", "cd".repeat(32)));
    fs::write(&young, b"x").unwrap();
    assert_eq!(
        t.scrub(now),
        1,
        "the stray; not the young temp file, nor the entry"
    );
    assert!(young.exists());
    let later = now + TEMP_MAX_AGE + Duration::from_secs(1);
    assert_eq!(
        t.scrub(later),
        1,
        "the temp file, once older than a write takes"
    );
    assert_eq!(
        files_under(d.path()),
        vec![t.layout.file(&t.sealer.name(&k))]
    );
    assert!(t.get(&k, now).is_some());
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

#[test]
fn start_and_scrub_leave_foreign_files_alone() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join(MARK), b"").unwrap();
    let foreign = [
        d.path().join("keep.txt"),
        d.path().join("notes").join("keep.txt"),
        d.path().join("notes").join("ab".repeat(32)),
        d.path().join("ab").join("keep.txt"),
        d.path().join("ab").join(format!("cd{}", "0".repeat(62))),
        d.path().join("tmp").join("keep.txt"),
    ];
    for p in &foreign {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"not pixgate's").unwrap();
    }
    let intact = |when: &str| {
        for p in &foreign {
            assert_eq!(
                fs::read(p).ok().as_deref(),
                Some(&b"not pixgate's"[..]),
                "{} {when}",
                p.display()
            );
        }
    };
    let (t, st) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
    assert_eq!(st.removed, 0);
    intact("at start");

    let now = SystemTime::now();
    t.put(
        &Key([3; 32]),
        &sample("/a", b"x", now, Duration::from_secs(10)),
        &|| true,
    );
    let own = files_under(d.path())
        .into_iter()
        .filter(|p| !foreign.contains(p) && !p.ends_with(MARK))
        .collect::<Vec<_>>();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(t.sweep(now + Duration::from_secs(10)), 1);
    assert!(!own[0].exists(), "the expired entry is removed");

    // Pixgate's own strays: a cache file the index does not know, an old temp file.
    let stray = d.path().join("ab").join(format!("ab{}", "1".repeat(62)));
    fs::write(&stray, b"stray").unwrap();
    let temp = d.path().join("tmp").join(format!("{}.1.2", "f".repeat(64)));
    fs::write(&temp, b"half").unwrap();
    let later = SystemTime::now() + TEMP_MAX_AGE + Duration::from_secs(1);
    assert_eq!(t.scrub(later), 2);
    assert!(!stray.exists() && !temp.exists());
    intact("after a scrub");
}

#[test]
fn file_names_are_keyed_not_the_variant_key() {
    let k = crate::cache::KeyParts {
        origin: "http://origin",
        host: "images.example.com",
        path_and_query: "/users/x/passport.jpg",
        options: "",
        plan: "webp",
        settings: "s",
    }
    .key();
    let now = SystemTime::now();
    let mut names = Vec::new();
    for _ in 0..2 {
        let d = tempfile::tempdir().unwrap();
        let (t, _) = DiskTier::open(&cfg(d.path(), 1 << 20, None), None).unwrap();
        assert!(t.put(
            &k,
            &sample("/users/x/passport.jpg", b"x", now, Duration::from_secs(60)),
            &|| true
        ));
        for p in files_under(d.path()) {
            let rel = p
                .strip_prefix(d.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                !rel.contains(&k.hex()),
                "{rel} is the unkeyed hash of the URL"
            );
            assert!(
                !rel.contains(&k.hex()[..8]),
                "{rel} shares the unkeyed hash's start"
            );
            if !rel.ends_with(MARK) {
                names.push(rel);
            }
        }
    }
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0], names[1], "another key, another name");
}
