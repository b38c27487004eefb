//! The graceful-upgrade socket (`server.upgrade_sock`): where it lives, and the checks on its
//! directory.
//!
//! On SIGQUIT the running process connects to this Unix socket and hands its listening sockets
//! (proxy and admin) to whatever listens there, meant to be a new pixgate started with
//! `--upgrade`. Anyone who can bind the path first receives them, and with them every client
//! connection from then on. The old default, `/tmp/pixgate_upgrade.sock`, was in a directory
//! every local user can write. So the socket must live in a directory only this user can
//! write: by default a private runtime directory ([`default_path`]), created 0700, and at
//! start-up ([`prepare`]) the directory of the socket, default or configured, is refused when
//! it is a symlink, is owned by another user, or is writable by group or others.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The configuration key, named in every error.
const KEY: &str = "server.upgrade_sock";
/// The socket's file name inside a runtime directory.
const FILE: &str = "upgrade.sock";
/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_PATH: usize = 107;

/// What the default location depends on: the process's environment and effective user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `$RUNTIME_DIRECTORY`: systemd's `RuntimeDirectory=`, already private to the service
    /// (the first one when several are listed).
    pub runtime_directory: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`: the user's runtime directory (`/run/user/<uid>`, 0700).
    pub xdg_runtime_dir: Option<PathBuf>,
    /// The effective user id.
    pub euid: u32,
}

impl Env {
    /// The environment of this process. Relative or empty paths are ignored.
    pub fn current() -> Env {
        let abs = |p: PathBuf| Some(p).filter(|p| p.is_absolute());
        let runtime_directory = std::env::var("RUNTIME_DIRECTORY")
            .ok()
            .and_then(|v| v.split(':').next().map(PathBuf::from))
            .and_then(abs);
        let xdg_runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .and_then(abs);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        Env {
            runtime_directory,
            xdg_runtime_dir,
            euid,
        }
    }
}

/// The socket's path when `server.upgrade_sock` is `null`: `$RUNTIME_DIRECTORY/upgrade.sock`,
/// else `$XDG_RUNTIME_DIR/pixgate/upgrade.sock`, else `/run/pixgate/upgrade.sock` for root,
/// else `/tmp/pixgate-<euid>/upgrade.sock` (a directory of this user's own, which the checks
/// of [`prepare`] keep another user from planting).
pub fn default_path(env: &Env) -> PathBuf {
    if let Some(d) = &env.runtime_directory {
        return d.join(FILE);
    }
    if let Some(d) = &env.xdg_runtime_dir {
        return d.join("pixgate").join(FILE);
    }
    if env.euid == 0 {
        return PathBuf::from("/run/pixgate").join(FILE);
    }
    PathBuf::from(format!("/tmp/pixgate-{}", env.euid)).join(FILE)
}

/// Resolves the socket's path (`configured`, else [`default_path`]), creates its directory
/// 0700 when it is missing, and checks that directory. The error names `server.upgrade_sock`.
pub fn prepare(configured: Option<&Path>, env: &Env) -> Result<PathBuf, String> {
    let path = configured.map_or_else(|| default_path(env), Path::to_path_buf);
    let shown = path.display();
    if path.as_os_str().len() > MAX_PATH {
        return Err(format!(
            "key `{KEY}`: `{shown}` is longer than the {MAX_PATH} bytes a Unix socket path holds"
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            format!(
                "key `{KEY}`: cannot create the directory `{}` of `{shown}`: {e}",
                dir.display()
            )
        })?;
    check_dir(dir, env.euid).map_err(|why| {
        format!(
            "key `{KEY}`: the directory `{}` of `{shown}` {why}; whoever can create a file \
             there could take the listening sockets on an upgrade. Use a directory only this \
             user can write (docs/operations.md)",
            dir.display()
        )
    })?;
    Ok(path)
}

/// Why `dir` is not private to `euid`, if it is not. The last component is not followed.
fn check_dir(dir: &Path, euid: u32) -> Result<(), String> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot be read: {e}"))?;
    if m.file_type().is_symlink() {
        return Err("is a symlink".into());
    }
    if !m.is_dir() {
        return Err("is not a directory".into());
    }
    if m.uid() != euid {
        return Err(format!(
            "is owned by uid {}, not by this process's user (uid {euid})",
            m.uid()
        ));
    }
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!("is writable by group or others (mode {mode:o})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(rd: Option<&str>, xdg: Option<&str>, euid: u32) -> Env {
        Env {
            runtime_directory: rd.map(PathBuf::from),
            xdg_runtime_dir: xdg.map(PathBuf::from),
            euid,
        }
    }

    #[test]
    fn the_default_is_a_private_runtime_directory() {
        let p = |e: &Env| default_path(e).display().to_string();
        assert_eq!(
            p(&env(Some("/run/pixgate"), Some("/run/user/1000"), 1000)),
            "/run/pixgate/upgrade.sock"
        );
        assert_eq!(
            p(&env(None, Some("/run/user/1000"), 1000)),
            "/run/user/1000/pixgate/upgrade.sock"
        );
        assert_eq!(p(&env(None, None, 0)), "/run/pixgate/upgrade.sock");
        assert_eq!(p(&env(None, None, 1000)), "/tmp/pixgate-1000/upgrade.sock");
        for e in [env(None, None, 0), env(None, None, 1000)] {
            let d = default_path(&e);
            assert_ne!(d.parent(), Some(Path::new("/tmp")), "{}", d.display());
        }
    }

    #[test]
    fn the_directory_is_created_private_and_unsafe_ones_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let me = Env::current();
        let xdg = env(None, Some(&root.path().display().to_string()), me.euid);
        let sock = prepare(None, &xdg).expect("a fresh directory is fine");
        assert_eq!(sock, root.path().join("pixgate/upgrade.sock"));
        let made = std::fs::metadata(root.path().join("pixgate")).expect("created");
        assert_eq!(made.permissions().mode() & 0o777, 0o700);
        // Created already: accepted again (a second start, an upgrade).
        assert!(prepare(None, &xdg).is_ok());

        let open = root.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let e = prepare(Some(&open.join("u.sock")), &me).expect_err("world-writable");
        assert!(
            e.contains("server.upgrade_sock") && e.contains("writable"),
            "{e}"
        );

        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path().join("pixgate"), &link).expect("symlink");
        let e = prepare(Some(&link.join("u.sock")), &me).expect_err("symlink");
        assert!(e.contains("symlink"), "{e}");

        let e = check_dir(root.path(), me.euid.wrapping_add(1)).expect_err("other owner");
        assert!(e.contains("owned by"), "{e}");

        let long = root.path().join("x".repeat(120));
        assert!(prepare(Some(&long), &me)
            .expect_err("too long")
            .contains("longer"));
    }
}
