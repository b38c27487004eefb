//! The screening section (`upload.screening` once the upload listener exists): the deny list,
//! its near-duplicate threshold and reload interval, and the optional external hook.

use crate::units::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What uploads are screened against (docs/upload.md, "Screening").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScreeningConfig {
    /// A file of lines `sha256:<64 hex>` (exact digests) or `dhash:<16 hex>` (64-bit
    /// perceptual hashes); `#` starts a comment. Errors at start are fatal; a bad file on reload
    /// keeps the previous list and is reported with its file and line. Default `null`: no list.
    pub deny_list: Option<PathBuf>,
    /// An image whose dHash differs from a listed one in at most this many of its 64 bits is a
    /// near duplicate and denied. 0 to 32. Default `6`.
    pub max_distance: u32,
    /// How often the deny list's modification time and size are checked; a change reloads it.
    /// Default `1s`.
    pub reload_interval: Dur,
    /// An external service asked about every upload the deny list lets through. Default `null`.
    pub hook: Option<HookConfig>,
}

impl Default for ScreeningConfig {
    fn default() -> Self {
        ScreeningConfig {
            deny_list: None,
            max_distance: 6,
            reload_interval: Dur::secs(1),
            hook: None,
        }
    }
}

/// The external screening service: pixgate POSTs to `url` and reads `{"allow": bool}` (or a
/// bare 200 = allow, 403/451 = deny).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// `http://host[:port]/path` (plain HTTP: a sidecar or a service on a private network).
    /// Required.
    pub url: String,
    /// The whole exchange (connect, send, answer) must finish within this. Default `2s`.
    #[serde(default = "default_hook_timeout")]
    pub timeout: Dur,
    /// When the hook cannot answer (timeout, refused connection, another status, a body that is
    /// not the expected JSON): `closed` denies the upload, `open` allows it (and counts it in
    /// `pixgate_screening_total{outcome="allow_failed_open"}`). Default `closed`.
    #[serde(default)]
    pub fail: FailMode,
    /// `hash`: a JSON body `{"sha256": "<hex>", "dhash": "<hex>"}`; `bytes`: the image itself
    /// (`application/octet-stream`, the hashes in `X-Pixgate-Sha256` / `X-Pixgate-Dhash`).
    /// Default `hash`.
    #[serde(default)]
    pub send: SendMode,
}

fn default_hook_timeout() -> Dur {
    Dur::secs(2)
}

/// What an unanswered hook means.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Allow the upload.
    Open,
    /// Deny the upload.
    #[default]
    Closed,
}

/// What the hook is sent.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// The SHA-256 and dHash only.
    #[default]
    Hash,
    /// The uploaded bytes (with the hashes in headers).
    Bytes,
}

impl ScreeningConfig {
    /// Checks values types alone cannot; `(key, problem)` for each, keys under `prefix`
    /// (`upload.screening`).
    pub fn validate(&self, prefix: &str) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.max_distance > 32 {
            p.push((
                format!("{prefix}.max_distance"),
                format!("must be between 0 and 32, got {}", self.max_distance),
            ));
        }
        if self.reload_interval.get() < Duration::from_millis(10) {
            p.push((
                format!("{prefix}.reload_interval"),
                "must be at least 10ms".to_string(),
            ));
        }
        if let Some(hook) = &self.hook {
            if let Err(e) = super::hook::Target::parse(&hook.url) {
                p.push((format!("{prefix}.hook.url"), e));
            }
            let t = hook.timeout.get();
            if t.is_zero() || t > Duration::from_secs(60) {
                p.push((
                    format!("{prefix}.hook.timeout"),
                    format!("must be more than 0s and at most 60s, got {}", hook.timeout),
                ));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_yaml() {
        let d: ScreeningConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(d, ScreeningConfig::default());
        assert!(d.validate("upload.screening").is_empty());
        let c: ScreeningConfig = serde_yaml_ng::from_str(
            "deny_list: /etc/pixgate/deny.txt\nmax_distance: 4\nreload_interval: 5s\n\
             hook: {url: 'http://127.0.0.1:9000/check', timeout: 500ms, fail: open, send: bytes}\n",
        )
        .unwrap();
        let hook = c.hook.as_ref().unwrap();
        assert_eq!(hook.fail, FailMode::Open);
        assert_eq!(hook.send, SendMode::Bytes);
        assert_eq!(hook.timeout, Dur::millis(500));
        assert!(c.validate("upload.screening").is_empty());
        let h: HookConfig = serde_yaml_ng::from_str("url: http://h/x").unwrap();
        assert_eq!(
            (h.fail, h.send, h.timeout),
            (FailMode::Closed, SendMode::Hash, Dur::secs(2))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(serde_yaml_ng::from_str::<ScreeningConfig>("deny: x").is_err());
        assert!(
            serde_yaml_ng::from_str::<ScreeningConfig>("hook: {url: 'http://h', x: 1}").is_err()
        );
        assert!(serde_yaml_ng::from_str::<ScreeningConfig>("hook: {timeout: 1s}").is_err());
        let c = ScreeningConfig {
            max_distance: 33,
            reload_interval: Dur::millis(1),
            hook: Some(HookConfig {
                url: "https://screen.example/check".into(),
                timeout: Dur::secs(0),
                fail: FailMode::Closed,
                send: SendMode::Hash,
            }),
            ..ScreeningConfig::default()
        };
        let keys: Vec<String> = c
            .validate("upload.screening")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "upload.screening.max_distance",
                "upload.screening.reload_interval",
                "upload.screening.hook.url",
                "upload.screening.hook.timeout"
            ]
        );
    }
}
