//! Screening of uploads before anything of them is kept: an exact SHA-256 deny list, a
//! perceptual (64-bit dHash) deny list matched within a Hamming distance, and an optional
//! external HTTP hook. [`Screening::check`] gives one [`Verdict`] per upload; the caller maps it
//! to an answer with [`Verdict::status`] (451 for a denial, 422/415 for what cannot be read).
//!
//! Order: the digest (no decoding), then the header probe (a bomb is refused before a pixel is
//! decoded), then the dHash (decoded on tokio's blocking pool, only when the list has perceptual
//! hashes or a hook wants one), then the hook. The deny list is swapped atomically by
//! [`Screening::reload_if_changed`] ([`Screening::watch`] polls it); a bad file keeps the
//! previous list.
//!
//! Privacy: nothing of an upload is logged — no bytes, names or hashes, allowed or denied. The
//! outcome is counted in `pixgate_screening_total{outcome}`.
//!
//! Imports image, located, telemetry and units; not proxy or upload (docs/architecture.md).

pub mod config;
pub mod deny_list;
pub mod dhash;
pub mod hook;

#[cfg(test)]
mod tests;

pub use config::{FailMode, HookConfig, ScreeningConfig, SendMode};
pub use deny_list::DenyList;
pub use dhash::Unreadable;
pub use hook::HookError;

use crate::image::probe::HeaderLimits;
use crate::located::Errors;
use crate::telemetry::metrics;
use arc_swap::ArcSwap;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// The answer for one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (including a hook failure under `fail: open`).
    Allow,
    /// Refused; nothing of the upload may be kept.
    Deny(DenyReason),
    /// Not screened because it cannot be read: not an image, a bomb, undecodable.
    Unreadable(Unreadable),
}

/// Why an upload was denied (a metric label; never shown to the uploader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// Its SHA-256 is listed.
    Digest,
    /// Its dHash is within `max_distance` of a listed one.
    NearDuplicate,
    /// The hook said no.
    Hook,
    /// The hook could not answer and `fail: closed`.
    HookFailedClosed,
}

impl DenyReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DenyReason::Digest => "digest",
            DenyReason::NearDuplicate => "near_duplicate",
            DenyReason::Hook => "hook",
            DenyReason::HookFailedClosed => "hook_failed_closed",
        }
    }
}

impl Verdict {
    /// The HTTP status for the uploader: `None` to go on, 451 for every denial, 415 for what
    /// is not an image, 422 for a bomb or undecodable data.
    pub fn status(self) -> Option<u16> {
        match self {
            Verdict::Allow => None,
            Verdict::Deny(_) => Some(451),
            Verdict::Unreadable(Unreadable::NotImage) => Some(415),
            Verdict::Unreadable(_) => Some(422),
        }
    }

    /// The public message for a refusal: generic for a denial, whatever the reason.
    pub fn message(self) -> &'static str {
        match self {
            Verdict::Allow => "",
            Verdict::Deny(_) => "This image cannot be accepted.",
            Verdict::Unreadable(Unreadable::NotImage) => {
                "The file is not an image in a supported format."
            }
            Verdict::Unreadable(Unreadable::Bomb) => "The image has too many pixels.",
            Verdict::Unreadable(Unreadable::Undecodable) => "The image could not be decoded.",
        }
    }
}

/// The live screening state: config, deny list (swapped on reload) and hook.
pub struct Screening {
    deny_list: Option<PathBuf>,
    max_distance: u32,
    reload_interval: Duration,
    fail: FailMode,
    hook: Option<hook::Hook>,
    limits: HeaderLimits,
    list: ArcSwap<DenyList>,
    /// (modified, length) of the deny list file at the last load attempt.
    seen: Mutex<Option<(Option<SystemTime>, u64)>>,
    /// Bounds concurrent dHash decodes to the number of cores.
    decodes: Semaphore,
}

impl std::fmt::Debug for Screening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screening")
            .field("deny_list", &self.deny_list)
            .field("entries", &self.list.load().len())
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Screening {
    /// Loads the deny list (an unreadable or bad file is an error) and checks the hook URL
    /// (already checked by [`ScreeningConfig::validate`], which names the config file).
    /// `limits` are the pixel limits uploads are decoded under.
    pub fn new(cfg: &ScreeningConfig, limits: HeaderLimits) -> Result<Screening, Errors> {
        let hook = match &cfg.hook {
            Some(h) => Some(hook::Hook::new(h).map_err(|e| {
                Errors(vec![crate::located::Error {
                    file: PathBuf::from("<config>"),
                    line: None,
                    key: "upload.screening.hook.url".into(),
                    message: e,
                }])
            })?),
            None => None,
        };
        let s = Screening {
            deny_list: cfg.deny_list.clone(),
            max_distance: cfg.max_distance,
            reload_interval: cfg.reload_interval.get(),
            fail: cfg.hook.as_ref().map_or(FailMode::Closed, |h| h.fail),
            hook,
            limits,
            list: ArcSwap::from_pointee(DenyList::default()),
            seen: Mutex::new(None),
            decodes: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
        };
        if let Some(path) = &s.deny_list {
            *s.seen.lock().unwrap_or_else(PoisonError::into_inner) = stat(path);
            s.store(DenyList::load(path)?);
        }
        Ok(s)
    }

    /// Screens one upload and counts the outcome.
    pub async fn check(&self, bytes: &[u8]) -> Verdict {
        let (verdict, outcome) = self.judge(bytes).await;
        metrics::SCREENING.with_label_values(&[outcome]).inc();
        verdict
    }

    /// The verdict and its `pixgate_screening_total` outcome label.
    async fn judge(&self, bytes: &[u8]) -> (Verdict, &'static str) {
        let deny = |r: DenyReason| (Verdict::Deny(r), r.label());
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let list = self.list.load_full();
        if list.has_digest(&digest) {
            return deny(DenyReason::Digest);
        }
        if let Err(u) = dhash::probe(bytes, self.limits) {
            return (Verdict::Unreadable(u), u.label());
        }
        if !list.wants_dhash() && self.hook.is_none() {
            return (Verdict::Allow, "allow");
        }
        // Owned for the blocking decode (and the hook's body under `send: bytes`).
        let owned = Bytes::copy_from_slice(bytes);
        let dhash = match self.dhash(owned.clone()).await {
            Ok(h) => h,
            Err(u) => return (Verdict::Unreadable(u), u.label()),
        };
        if list.has_near(dhash, self.max_distance) {
            return deny(DenyReason::NearDuplicate);
        }
        drop(list);
        let Some(hook) = &self.hook else {
            return (Verdict::Allow, "allow");
        };
        let sha = deny_list::hex(&digest);
        let dhash = format!("{dhash:016x}");
        let started = Instant::now();
        let answer = hook
            .ask(&hook::Subject {
                sha256: &sha,
                dhash: &dhash,
                bytes: &owned,
            })
            .await;
        metrics::SCREENING_HOOK_SECONDS.observe(started.elapsed().as_secs_f64());
        let result = match answer {
            Ok(true) => "allow",
            Ok(false) => "deny",
            Err(e) => e.label(),
        };
        metrics::SCREENING_HOOK.with_label_values(&[result]).inc();
        match (answer, self.fail) {
            (Ok(true), _) => (Verdict::Allow, "allow"),
            (Ok(false), _) => deny(DenyReason::Hook),
            (Err(e), FailMode::Open) => {
                tracing::warn!(
                    error = e.label(),
                    "screening hook failed; allowed (fail: open)"
                );
                (Verdict::Allow, "allow_failed_open")
            }
            (Err(e), FailMode::Closed) => {
                tracing::warn!(
                    error = e.label(),
                    "screening hook failed; denied (fail: closed)"
                );
                deny(DenyReason::HookFailedClosed)
            }
        }
    }

    /// The dHash, decoded on the blocking pool (at most one decode per core at once).
    async fn dhash(&self, bytes: Bytes) -> Result<u64, Unreadable> {
        let _permit = self
            .decodes
            .acquire()
            .await
            .map_err(|_| Unreadable::Undecodable)?;
        let limits = self.limits;
        tokio::task::spawn_blocking(move || dhash::of_bytes(&bytes, limits))
            .await
            .unwrap_or(Err(Unreadable::Undecodable))
    }

    /// Re-reads the deny list if its modification time or size changed since the last attempt.
    /// `Ok(None)`: unchanged (or no list); `Ok(Some((digests, dhashes)))`: reloaded; `Err`: the
    /// file is bad or unreadable and the previous list stays.
    pub fn reload_if_changed(&self) -> Result<Option<(usize, usize)>, Errors> {
        let Some(path) = &self.deny_list else {
            return Ok(None);
        };
        let now = stat(path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now {
                return Ok(None);
            }
            *seen = now;
        }
        match DenyList::load(path) {
            Ok(list) => {
                let len = list.len();
                self.store(list);
                metrics::SCREENING_RELOADS.with_label_values(&["ok"]).inc();
                Ok(Some(len))
            }
            Err(e) => {
                metrics::SCREENING_RELOADS
                    .with_label_values(&["error"])
                    .inc();
                Err(e)
            }
        }
    }

    /// Runs forever: every `reload_interval`, reloads the deny list if it changed, logging the
    /// outcome (entry counts or the located problems; never an entry). Returns at once when no
    /// deny list is configured.
    pub async fn watch(self: Arc<Self>) {
        if self.deny_list.is_none() {
            return;
        }
        let mut ticker = tokio::time::interval(self.reload_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let s = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || s.reload_if_changed()).await {
                Ok(Ok(None)) => {}
                Ok(Ok(Some((digests, dhashes)))) => {
                    tracing::info!(digests, dhashes, "screening deny list reloaded")
                }
                Ok(Err(errors)) => tracing::error!(
                    "screening deny list not reloaded, the previous list stays: {errors}"
                ),
                Err(e) => tracing::error!("screening deny list reload task failed: {e}"),
            }
        }
    }

    /// (digests, perceptual hashes) in the live list.
    pub fn entries(&self) -> (usize, usize) {
        self.list.load().len()
    }

    /// True when uploads are screened by anything (a list or a hook): for the page's privacy
    /// facts.
    pub fn active(&self) -> bool {
        self.deny_list.is_some() || self.hook.is_some()
    }

    fn store(&self, list: DenyList) {
        let (digests, dhashes) = list.len();
        metrics::SCREENING_ENTRIES
            .with_label_values(&["sha256"])
            .set(digests as i64);
        metrics::SCREENING_ENTRIES
            .with_label_values(&["dhash"])
            .set(dhashes as i64);
        self.list.store(Arc::new(list));
    }
}

/// (modified, length) of `path`; `None` when it cannot be read.
fn stat(path: &std::path::Path) -> Option<(Option<SystemTime>, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok(), m.len()))
}
