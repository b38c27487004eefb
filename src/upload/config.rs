//! The `upload` section: the compression service's listener, its retention, limits, quotas,
//! API keys and screening (docs/upload.md).

use crate::cache::config::{CacheConfig, DiskSetting, MemoryConfig};
use crate::ratelimit::Bucket;
use crate::screening::ScreeningConfig;
use crate::units::{ByteSize, Dur};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// The compression service (docs/upload.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Address of the upload listener (the web page at `/`, the API under `/api/v1/`, links
    /// under `/d/`); `null`: off. With `origin.url: demo` and no address here, the demo starts
    /// it on the proxy's port + 2. Default `null`.
    pub listen: Option<SocketAddr>,
    /// Links in answers are `<public_url>/d/<token>`; `null`: relative (`/d/<token>`).
    /// Default `null`.
    pub public_url: Option<String>,
    /// How long a result is kept after its upload, at most: the link stops working and the
    /// bytes are gone from memory (and disk) by then, whether or not anyone asks. An upload's
    /// `ttl` can only shorten it. Default `1h`.
    pub retention: Dur,
    /// Also remove a result after this long without a download. Default `null`: off.
    pub idle_ttl: Option<Dur>,
    /// Largest request body (all files together), refused with 413 as soon as a
    /// `Content-Length` or the bytes read pass it. Default `25MiB`.
    pub max_bytes: ByteSize,
    /// Files in one request. Default `10`.
    pub max_files: usize,
    /// Uploads processed at once; past it, 503 with `Retry-After`. Default `8`.
    pub max_concurrent: usize,
    /// The store's memory tier (results waiting for download). Default `256MiB`.
    pub memory: MemoryConfig,
    /// The store's sealed disk tier: `off` (default: results never touch the disk) or
    /// `{dir, max_bytes}` as `cache.disk`, in a directory of its own.
    pub disk: DiskSetting,
    /// Requests per client address (any route of this listener); `null`: off.
    /// Default `{rate: 5, burst: 20}`.
    pub rate_limit: Option<Bucket>,
    /// Uploads per client address per hour (a token bucket refilled evenly); `null`: off.
    /// Default `300`.
    pub uploads_per_hour: Option<u32>,
    /// Upload bytes per client address per day (same); `null`: off. Default `2GiB`.
    pub bytes_per_day: Option<ByteSize>,
    /// API keys (`X-Api-Key` or `Authorization: Bearer`), each naming a tenant of
    /// `metrics.tenants` for metering. Default none.
    pub api_keys: Vec<ApiKey>,
    /// Refuse requests without a valid API key (401). Default `false`.
    pub require_api_key: bool,
    /// What uploads are screened against before anything of them is kept.
    pub screening: ScreeningConfig,
}

/// One API key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The secret (at least 16 characters).
    pub key: String,
    /// The tenant it meters under.
    pub tenant: String,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            listen: None,
            public_url: None,
            retention: Dur::secs(3600),
            idle_ttl: None,
            max_bytes: ByteSize::mib(25),
            max_files: 10,
            max_concurrent: 8,
            memory: MemoryConfig::default(),
            disk: DiskSetting::Off,
            rate_limit: Some(Bucket { rate: 5, burst: 20 }),
            uploads_per_hour: Some(300),
            bytes_per_day: Some(ByteSize::mib(2048)),
            api_keys: Vec::new(),
            require_api_key: false,
            screening: ScreeningConfig::default(),
        }
    }
}

impl UploadConfig {
    /// The store's settings: a cache with the upload retention as its `max_retention`, so
    /// the cache's own guarantee (deadline capped, sweeper, sealed disk, byte limits) keeps the
    /// upload promise. `sweep_interval` is the variant cache's.
    pub fn store(&self, sweep_interval: Dur) -> CacheConfig {
        CacheConfig {
            enabled: true,
            max_retention: self.retention,
            default_ttl: self.retention,
            idle_ttl: self.idle_ttl,
            sweep_interval,
            memory: self.memory,
            disk: self.disk.clone(),
            avif_budget: None,
            max_background: 0,
            ..CacheConfig::default()
        }
    }

    /// Whether nothing of an upload is ever written to disk.
    pub fn memory_only(&self) -> bool {
        self.disk.on().is_none()
    }

    /// `(key, problem)` for every invalid value, keys under `upload.`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut bad = |k: &str, m: String| p.push((format!("upload.{k}"), m));
        let r = self.retention.get();
        if r < Duration::from_secs(1) || r > Duration::from_secs(30 * 86_400) {
            bad(
                "retention",
                format!("must be between 1s and 30d, got {}", self.retention),
            );
        }
        if let Some(i) = self.idle_ttl {
            if i.get() < Duration::from_secs(1) || i.get() > r {
                bad(
                    "idle_ttl",
                    format!("must be between 1s and `retention`, got {i}"),
                );
            }
        }
        let mb = self.max_bytes.get();
        if !(1024..=1 << 30).contains(&mb) {
            bad(
                "max_bytes",
                format!("must be between 1KiB and 1GiB, got {}", self.max_bytes),
            );
        }
        if !(1..=100).contains(&self.max_files) {
            bad(
                "max_files",
                format!("must be between 1 and 100, got {}", self.max_files),
            );
        }
        if !(1..=1024).contains(&self.max_concurrent) {
            bad(
                "max_concurrent",
                format!("must be between 1 and 1024, got {}", self.max_concurrent),
            );
        }
        if let Some(b) = self.rate_limit {
            for (field, v) in [("rate", b.rate), ("burst", b.burst)] {
                if !(1..=1_000_000).contains(&v) {
                    bad(
                        &format!("rate_limit.{field}"),
                        format!("must be between 1 and 1000000, got {v}"),
                    );
                }
            }
        }
        if self.uploads_per_hour == Some(0) {
            bad("uploads_per_hour", "must be at least 1 (or null)".into());
        }
        if let Some(b) = self.bytes_per_day {
            if b.get() < mb {
                bad(
                    "bytes_per_day",
                    format!("must be at least `max_bytes` ({}), got {b}", self.max_bytes),
                );
            }
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.ends_with('/') {
                bad(
                    "public_url",
                    format!("`{u}` must start with http:// or https:// and not end with /"),
                );
            }
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.key.chars().count() < 16 || k.key.chars().any(|c| !c.is_ascii_graphic()) {
                bad(
                    &format!("api_keys[{i}].key"),
                    "must be at least 16 printable ASCII characters".into(),
                );
            }
        }
        if self.require_api_key && self.api_keys.is_empty() {
            bad(
                "require_api_key",
                "is true but `api_keys` is empty: every request would be refused".into(),
            );
        }
        p.extend(self.screening.validate("upload.screening"));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_off() {
        let c = UploadConfig::default();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.listen, None);
        assert!(c.memory_only());
        let store = c.store(Dur::millis(250));
        assert_eq!(store.max_retention, Dur::secs(3600));
        assert!(store.validate().is_empty(), "{:?}", store.validate());
    }

    #[test]
    fn bad_values_name_their_keys() {
        let c = UploadConfig {
            retention: Dur::millis(10),
            idle_ttl: Some(Dur::secs(7200)),
            max_bytes: ByteSize(10),
            max_files: 0,
            max_concurrent: 0,
            uploads_per_hour: Some(0),
            public_url: Some("ftp://x/".into()),
            api_keys: vec![ApiKey {
                key: "short".into(),
                tenant: "acme".into(),
            }],
            ..UploadConfig::default()
        };
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "upload.retention",
                "upload.idle_ttl",
                "upload.max_bytes",
                "upload.max_files",
                "upload.max_concurrent",
                "upload.uploads_per_hour",
                "upload.public_url",
                "upload.api_keys[0].key"
            ]
        );
        assert!(serde_yaml_ng::from_str::<UploadConfig>("listen_on: x").is_err());
    }
}
