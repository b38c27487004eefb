//! The disk tier's directory: which directory pixgate takes, the marker that records it, its
//! mode, and the names of the files pixgate writes there. Start-up and the scrub delete only
//! files with these names in these places, so anything else kept in the directory is never
//! touched.
//!
//! ```text
//! dir/.pixgate-cache            the marker, written when pixgate takes an empty or new directory
//! dir/<2 hex>/<64 hex>          a cache file, in the shard named by its first two digits
//! dir/tmp/<64 hex>.<pid>.<n>    a write in progress, renamed into place when complete
//! ```
//!
//! A directory that is not empty and has no marker is refused at start: what it holds is
//! someone else's. The directory and the ones pixgate creates in it are mode 0700.

use super::super::seal::{self, FileName};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The marker's file name.
pub const MARKER: &str = ".pixgate-cache";

const MARKER_TEXT: &str = "This directory is a pixgate disk cache (cache.disk.dir).\n\
pixgate deletes only the files it names here: <2 hex>/<64 hex> and tmp/<64 hex>.<pid>.<n>.\n";

/// The cache directory, once taken.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Takes `dir` for the cache. A missing directory is created (mode 0700) and marked; an
    /// empty one (the configured `key_file` aside) is marked; a marked one is taken as it is;
    /// anything else is refused and left untouched. A taken directory is set to mode 0700.
    /// Errors name `cache.disk.dir` and the path.
    pub fn take(dir: &Path, key_file: Option<&Path>) -> Result<Layout, String> {
        let fail = |what: String| format!("cache.disk.dir: {}: {what}", dir.display());
        let mark_it = || mark(dir).map_err(|e| fail(format!("cannot write {MARKER} in it: {e}")));
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => return Err(fail("exists and is not a directory".into())),
            Ok(_) if dir.join(MARKER).is_file() => {}
            Ok(_) => {
                let found =
                    occupants(dir, key_file).map_err(|e| fail(format!("cannot list it: {e}")))?;
                if let Some(first) = found.first() {
                    let more = match found.len() {
                        1 => String::new(),
                        n => format!(" and {} more", n - 1),
                    };
                    return Err(fail(format!(
                        "is not empty (it holds `{first}`{more}) and has no {MARKER} file, so it \
                         is not a pixgate cache directory; use an empty or new directory (pixgate \
                         marks it and deletes only files it named). A cache directory of an \
                         earlier pixgate has no marker: empty it (this version cannot read its \
                         files)"
                    )));
                }
                mark_it()?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                private_dir(dir).map_err(|e| fail(format!("cannot create it: {e}")))?;
                mark_it()?;
            }
            Err(e) => return Err(fail(format!("cannot read it: {e}"))),
        }
        make_private(dir).map_err(|e| fail(format!("cannot set its mode to 0700: {e}")))?;
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        private_dir(&layout.temp_dir()).map_err(|e| fail(format!("cannot create tmp/: {e}")))?;
        Ok(layout)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file called `n` lives.
    pub fn file(&self, n: &FileName) -> PathBuf {
        let hex = n.hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Creates (mode 0700) the shard directory of the file called `n`.
    pub fn create_shard(&self, n: &FileName) -> io::Result<()> {
        match self.file(n).parent() {
            Some(p) => private_dir(p),
            None => Ok(()),
        }
    }

    /// The directory of writes in progress.
    pub fn temp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// A temp file for the `seq`th write of this process, to become the file called `n`.
    pub fn temp(&self, n: &FileName, seq: u64) -> PathBuf {
        self.temp_dir()
            .join(format!("{}.{}.{seq}", n.hex(), std::process::id()))
    }

    /// The cache files: every regular file named `<64 hex>` in the `<2 hex>` shard its name
    /// begins with. Nothing else is listed, so nothing else is ever deleted.
    pub fn files(&self) -> Vec<(PathBuf, FileName)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return out;
        };
        for shard in rd.flatten() {
            let shard_name = shard.file_name();
            let Some(s) = shard_name.to_str().filter(|s| is_shard(s)) else {
                continue;
            };
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let file_name = f.file_name();
                let Some(name) = file_name.to_str().filter(|n| n.starts_with(s)) else {
                    continue;
                };
                if let Some(n) = FileName::parse(name) {
                    if f.file_type().is_ok_and(|t| t.is_file()) {
                        out.push((f.path(), n));
                    }
                }
            }
        }
        out
    }

    /// The temp files (`tmp/<64 hex>.<pid>.<n>`, regular files) and their modification times.
    pub fn temp_files(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        let Ok(rd) = fs::read_dir(self.temp_dir()) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|f| f.file_name().to_str().is_some_and(is_temp_name))
            .filter_map(|f| {
                let m = f.metadata().ok().filter(|m| m.is_file())?;
                Some((f.path(), m.modified().ok()))
            })
            .collect()
    }
}

fn is_shard(s: &str) -> bool {
    s.len() == 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_temp_name(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let mut parts = s.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(n), Some(pid), Some(seq), None)
            if FileName::parse(n).is_some() && digits(pid) && digits(seq)
    )
}

/// What `dir` holds (names, sorted), the configured key file aside.
fn occupants(dir: &Path, key_file: Option<&Path>) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !is_key_file(dir, n, key_file))
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `dir/name` is the configured key file (which may be kept in the cache directory).
fn is_key_file(dir: &Path, name: &OsStr, key_file: Option<&Path>) -> bool {
    let Some(k) = key_file.filter(|k| k.file_name() == Some(name)) else {
        return false;
    };
    let parent = k
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    matches!(
        (fs::canonicalize(parent), fs::canonicalize(dir)),
        (Ok(a), Ok(b)) if a == b
    )
}

fn mark(dir: &Path) -> io::Result<()> {
    match seal::write_private(&dir.join(MARKER), MARKER_TEXT.as_bytes(), true) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Creates `p` and its missing parents with mode 0700.
fn private_dir(p: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(p)
}

/// Sets an existing directory's mode to 0700.
fn make_private(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if fs::metadata(dir)?.permissions().mode() & 0o7777 != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn only_pixgate_s_names_count() {
        let n = "ab".repeat(32);
        assert!(is_shard("ab") && is_shard("09"));
        assert!(!is_shard("AB") && !is_shard("tmp") && !is_shard("a"));
        assert!(is_temp_name(&format!("{n}.123.0")));
        for bad in [
            n.clone(),
            format!("{n}.123"),
            format!("{n}.123.0.1"),
            format!("{n}.x.0"),
            format!("{}.1.2", n.to_uppercase()),
            "keep.txt".into(),
        ] {
            assert!(!is_temp_name(&bad), "{bad}");
        }
    }

    #[test]
    fn lists_only_files_named_like_its_own() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::take(d.path(), None).unwrap();
        let own = FileName([0xab; 32]);
        l.create_shard(&own).unwrap();
        fs::write(l.file(&own), b"x").unwrap();
        let other = [
            d.path().join("ab").join("keep.txt"),
            d.path().join("ab").join(format!("cd{}", "0".repeat(62))),
            d.path()
                .join("cd")
                .join(format!("cd{}", "1".repeat(62)))
                .join("inside"),
            d.path().join("notes").join("ab".repeat(32)),
            d.path().join("tmp").join("keep.txt"),
        ];
        for p in &other {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"y").unwrap();
        }
        assert_eq!(l.files(), vec![(l.file(&own), own)]);
        assert!(l.temp_files().is_empty());
        let t = l.temp(&own, 7);
        fs::write(&t, b"z").unwrap();
        assert_eq!(l.temp_files().len(), 1);
        assert_eq!(l.temp_files()[0].0, t);
    }

    #[test]
    fn takes_empty_or_marked_directories_and_refuses_others() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("a").join("b");
        Layout::take(&new, None).unwrap();
        assert_eq!(mode(&new), 0o700);
        assert!(new.join(MARKER).is_file());
        assert_eq!(mode(&new.join(MARKER)), 0o600);
        assert_eq!(mode(&new.join("tmp")), 0o700);

        let empty = d.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o2775)).unwrap();
        Layout::take(&empty, None).unwrap();
        assert_eq!(mode(&empty), 0o700);
        assert!(empty.join(MARKER).is_file());
        fs::write(empty.join("keep.txt"), b"k").unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o755)).unwrap();
        Layout::take(&empty, None).expect("marked: taken with whatever it holds");
        assert_eq!(mode(&empty), 0o700);

        let full = d.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(full.join("b.txt"), b"b").unwrap();
        fs::write(full.join("a.txt"), b"a").unwrap();
        let e = Layout::take(&full, None).unwrap_err();
        assert!(e.starts_with("cache.disk.dir: "), "{e}");
        assert!(e.contains(&full.display().to_string()), "{e}");
        assert!(e.contains("`a.txt` and 1 more"), "{e}");
        assert_eq!(mode(&full), 0o755, "a refused directory is left as it was");
        assert!(!full.join(MARKER).exists() && !full.join("tmp").exists());

        let file = d.path().join("file");
        fs::write(&file, b"f").unwrap();
        let e = Layout::take(&file, None).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn the_key_file_may_live_in_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("cache");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("cache.key"), b"k").unwrap();
        let other = d.path().join("elsewhere").join("cache.key");
        assert!(
            Layout::take(&dir, Some(&other)).is_err(),
            "another file of that name"
        );
        Layout::take(&dir, Some(&dir.join(".").join("cache.key"))).unwrap();
        assert!(dir.join(MARKER).is_file());
    }
}
