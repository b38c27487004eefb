//! [`Rules`]: the live, atomically swappable rule set plus its reload and
//! watch logic.
//!
//! Readers call [`Rules::current`] and keep the returned `Arc<RuleSet>` for
//! the duration of a request; a concurrent reload swaps in a new set without
//! affecting them. A failed reload keeps the previous set.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::MissedTickBehavior;

use super::load::{load_dir, rule_files, LoadErrors};
use super::model::RuleSet;

/// What [`Rules::watch`] reports to its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A reload succeeded and the new set (with `rules` rules) is live.
    Reloaded {
        /// Number of rules in the new set.
        rules: usize,
    },
    /// A reload failed; the previous set stays live. `errors` is the
    /// newline-separated [`LoadErrors`] text (or why watching is degraded).
    Failed {
        /// Human-readable description, one problem per line.
        errors: String,
    },
}

/// The live rule set of one rules directory.
pub struct Rules {
    current: ArcSwap<RuleSet>,
    dir: PathBuf,
    errors: AtomicU64,
    /// Rule files as seen just before the last load attempt. The lock also
    /// serializes reloads, so a slow, older load cannot overwrite a newer one.
    seen: Mutex<Snapshot>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("dir", &self.dir)
            .field("rules", &self.current.load().len())
            .field("reload_errors", &self.reload_errors())
            .finish()
    }
}

impl Rules {
    /// Loads `dir` at start-up; any problem is fatal (returned as errors).
    pub fn load(dir: impl Into<PathBuf>) -> Result<Rules, LoadErrors> {
        let dir = dir.into();
        let seen = snapshot(&dir);
        let set = load_dir(&dir)?;
        Ok(Rules {
            current: ArcSwap::from_pointee(set),
            dir,
            errors: AtomicU64::new(0),
            seen: Mutex::new(seen),
        })
    }

    /// The rule set in force now. Holders keep it alive and unchanged even if
    /// a reload swaps in a new one meanwhile.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// The directory the rules are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the directory. On success the new set replaces the old one
    /// atomically and its rule count is returned; on failure the old set is
    /// kept, [`Rules::reload_errors`] is incremented and the problems are
    /// returned for the caller to log.
    pub fn reload(&self) -> Result<usize, LoadErrors> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Snapshot first, so edits made during the load trigger another one.
        *seen = snapshot(&self.dir);
        match load_dir(&self.dir) {
            Ok(set) => {
                let count = set.len();
                self.current.store(Arc::new(set));
                Ok(count)
            }
            Err(errors) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Err(errors)
            }
        }
    }

    /// Number of failed reloads since start-up.
    pub fn reload_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// `true` if the (name, size, mtime) of the rule files differ from what
    /// the last load attempt saw.
    fn files_changed(&self) -> bool {
        let now = snapshot(&self.dir);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) != now
    }

    /// Runs forever: reloads on SIGHUP and whenever the (name, size, mtime)
    /// of the rule files in the directory differ from what the last load
    /// attempt saw (checked every `poll`, at least 1ms; this includes edits
    /// made between [`Rules::load`] and the start of watching), reporting
    /// each reload to `on_event`. File system work runs on tokio's blocking
    /// pool. If SIGHUP cannot be watched, a [`ReloadEvent::Failed`] says so
    /// once and polling continues.
    ///
    /// # Panics
    ///
    /// When first polled outside a Tokio runtime with IO and time enabled
    /// (`Builder::enable_all`), as `tokio::signal` and `tokio::time` require.
    pub async fn watch(
        self: Arc<Self>,
        poll: Duration,
        on_event: impl Fn(ReloadEvent) + Send + Sync + 'static,
    ) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                on_event(ReloadEvent::Failed {
                    errors: format!("cannot watch SIGHUP ({e}); reloading on file changes only"),
                });
                None
            }
        };
        let mut ticker = tokio::time::interval(poll.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let wake = tokio::select! {
                _ = ticker.tick() => Wake::Tick,
                got = next_hup(&mut hup) => if got { Wake::Hup } else { Wake::HupClosed },
            };
            let forced = match wake {
                Wake::HupClosed => {
                    hup = None;
                    continue;
                }
                Wake::Tick => false,
                Wake::Hup => true,
            };
            let rules = Arc::clone(&self);
            let outcome = tokio::task::spawn_blocking(move || {
                (forced || rules.files_changed()).then(|| rules.reload())
            })
            .await;
            let event = match outcome {
                Ok(None) => continue,
                Ok(Some(Ok(count))) => ReloadEvent::Reloaded { rules: count },
                Ok(Some(Err(errors))) => ReloadEvent::Failed {
                    errors: errors.to_string(),
                },
                Err(e) => ReloadEvent::Failed {
                    errors: format!("reload task failed: {e}"),
                },
            };
            on_event(event);
        }
    }
}

/// Why the watch loop woke up.
enum Wake {
    Tick,
    Hup,
    HupClosed,
}

/// `true` when SIGHUP arrived, `false` if the stream ended; never resolves
/// when there is no stream.
async fn next_hup(hup: &mut Option<Signal>) -> bool {
    match hup {
        Some(s) => s.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// (file name, size and mtime if readable) of each rule file; `None` if the
/// directory cannot be listed.
type Snapshot = Option<Vec<(OsString, Option<(u64, Option<SystemTime>)>)>>;

fn snapshot(dir: &Path) -> Snapshot {
    let files = rule_files(dir).ok()?;
    Some(
        files
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path)
                    .ok()
                    .map(|m| (m.len(), m.modified().ok()));
                (path.file_name().unwrap_or_default().to_os_string(), meta)
            })
            .collect(),
    )
}
