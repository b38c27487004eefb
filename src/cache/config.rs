//! The `cache` section of the configuration: tiers, their byte limits, TTL rules and the
//! retention guarantee. Owned here so the cache module documents and validates its own keys.

use crate::units::{ByteSize, Dur};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The variant cache.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Keep transformed variants. Default `true`.
    pub enabled: bool,
    /// Hard limit on how long anything derived from an image is kept, counted from when its
    /// source was fetched, whatever the origin says. After it, the entry is not served, not
    /// readable and not on disk: entries fall due one `sweep_interval` early (see
    /// [`CacheConfig::hold_limit`]), so the sweeper's removal lands inside the limit. Default `24h`.
    pub max_retention: Dur,
    /// Freshness when the origin sends no `Cache-Control` max-age / s-maxage and no `Expires`.
    /// Default `1h`.
    pub default_ttl: Dur,
    /// How long past its freshness a variant is kept to stand in for a failing origin
    /// (connect errors, timeouts, 5xx), when the origin's `Cache-Control` has no
    /// `stale-if-error=N` of its own (RFC 5861; the origin's value wins). Never past
    /// `max_retention`. Default `0s` (only what the origin allows).
    pub stale_if_error: Dur,
    /// Remove an entry after this long without a hit (memory and disk). Default: off.
    pub idle_ttl: Option<Dur>,
    /// How often the sweeper removes expired entries from memory and disk. At most `1s`.
    /// Default `250ms`.
    pub sweep_interval: Dur,
    /// Response header that says `HIT`, `MISS` or `BYPASS`; `null` turns it off.
    /// Default `X-Cache`.
    pub status_header: Option<String>,
    /// Responses to requests that carried a `Cookie`: `require_public` stores one only when
    /// the origin says `public` or `s-maxage` (a page that answers 200 to a session cookie
    /// and 403 without it would otherwise be shared with everyone); `trust_origin` applies the
    /// usual rules, for sites that set cookies on every page and mark private answers
    /// `private`. Default `require_public`.
    pub cookies: CookiePolicy,
    /// The memory tier.
    pub memory: MemoryConfig,
    /// The disk tier: `off` (nothing derived from an image is ever written to disk) or its
    /// settings. Default `off`.
    pub disk: DiskSetting,
    /// A cold AVIF variant not ready within this budget is answered with WebP while the AVIF
    /// encode finishes in the background. `null` always waits for AVIF. Default `800ms`.
    pub avif_budget: Option<Dur>,
    /// With `avif_budget` set, a cold AVIF variant whose encode is predicted (from its output
    /// pixels and the encode times seen so far) to take more than this longer than WebP's is
    /// answered with WebP at once, and AVIF is encoded in the background after it. `null`:
    /// no prediction, every cold AVIF waits up to `avif_budget`. Default `50ms`.
    pub avif_margin: Option<Dur>,
    /// Downstream `max-age` of a WebP answer given while AVIF is pending, so a CDN does not pin
    /// it. Default `30s`.
    pub fallback_max_age: Dur,
    /// AVIF encodes allowed to continue in the background at once; past it, a cold AVIF request
    /// gets WebP and no AVIF encode starts. Default `2`.
    pub max_background: usize,
    /// What is cached: `all` (image variants and every other response the origin's headers
    /// let a shared cache store: the origin shield; docs/caching.md "Shield"), `images`
    /// (transformed variants only) or `off`. A rule's `cache:` overrides it for its hosts and
    /// paths. Default `all`.
    pub scope: Scope,
    /// Largest response body the shield stores (bigger ones stream through); never more
    /// than `memory.max_bytes`. Default `8MiB`.
    pub max_object_bytes: ByteSize,
    /// Concurrent shield misses for one URL wait this long for the first one's response
    /// before going to the origin themselves. Default `5s`.
    pub collapse_wait: Dur,
    /// After a shield response that may not be stored, misses for its URL go to the origin
    /// at once for this long instead of waiting for each other (Varnish's hit-for-miss); their
    /// responses are still judged, and a storable one ends it. `0s`: always collapse.
    /// Default `2m`.
    pub uncacheable_window: Dur,
    /// How long past its freshness a shield entry may be answered at once while one background
    /// request refreshes it (RFC 5861 `stale-while-revalidate`), when the origin's
    /// `Cache-Control` does not say. Never past `max_retention`. Default `0s`.
    pub stale_while_revalidate: Dur,
    /// Variants of one URL the shield keeps for a `Vary` on request headers; storing one more
    /// drops the oldest. Default `32`.
    pub max_variants: usize,
    /// Send the origin's `Surrogate-Key` / `Cache-Tag` (what `POST /cache/purge?tag=` selects
    /// on) to clients too. Default `false`: stored, not forwarded.
    pub expose_tags: bool,
    /// The shared tier in Redis for a cluster of nodes (docs/caching.md, "Shared tier");
    /// `null`: off. Default `null`.
    pub shared: Option<super::shared::config::SharedConfig>,
    /// The promise that no image byte is ever written to disk, enforced: the start is refused
    /// when `cache.disk` or `upload.disk` is on, or when the shared tier's Redis persists
    /// (RDB or AOF); a Redis that starts persisting later is left alone. Default `false`.
    pub memory_only_promise: bool,
}

/// What the cache stores (`cache.scope`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Nothing (per rule: that site section is never stored).
    Off,
    /// Transformed image variants only.
    Images,
    /// Image variants and every other storable response (the origin shield).
    #[default]
    All,
}

impl Scope {
    /// Whether image variants are stored.
    pub fn images(self) -> bool {
        self != Scope::Off
    }

    /// Whether other responses are stored too (the shield).
    pub fn shield(self) -> bool {
        self == Scope::All
    }
}

/// Whether a response to a request with a `Cookie` may be shared (`cache.cookies`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CookiePolicy {
    /// Only when the response says `public` or `s-maxage`.
    RequirePublic,
    /// As any other response (the origin marks per-user answers `private`).
    TrustOrigin,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_retention: Dur::secs(24 * 3600),
            default_ttl: Dur::secs(3600),
            stale_if_error: Dur::secs(0),
            idle_ttl: None,
            sweep_interval: Dur::millis(250),
            status_header: Some("X-Cache".into()),
            cookies: CookiePolicy::RequirePublic,
            memory: MemoryConfig::default(),
            disk: DiskSetting::Off,
            avif_budget: Some(Dur::millis(800)),
            avif_margin: Some(Dur::millis(50)),
            fallback_max_age: Dur::secs(30),
            max_background: 2,
            scope: Scope::All,
            max_object_bytes: ByteSize::mib(8),
            collapse_wait: Dur::secs(5),
            uncacheable_window: Dur::secs(120),
            stale_while_revalidate: Dur::secs(0),
            max_variants: 32,
            expose_tags: false,
            shared: None,
            memory_only_promise: false,
        }
    }
}

/// The memory tier (moka, weighed in bytes).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Bytes of bodies and headers held in memory. Default `256MiB`.
    pub max_bytes: ByteSize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_bytes: ByteSize::mib(256),
        }
    }
}

/// The disk tier's settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DiskConfig {
    /// Directory of the cache files. pixgate takes a new or empty directory (and marks it with
    /// a `.pixgate-cache` file) or one it marked before, refuses any other at start, and sets
    /// its mode to 0700. Start-up and the scrub delete only files named like pixgate's.
    /// Required.
    pub dir: PathBuf,
    /// Bytes of files on disk, headers and AEAD tags included. Default `1GiB`.
    pub max_bytes: ByteSize,
    /// A 32-byte key (raw, or 64 hex digits) that keeps the cache readable across restarts;
    /// created with mode 0600 when missing. `null`: a fresh key per start, held only in
    /// memory, so a restart crypto-shreds the old files (and start-up deletes them).
    /// Default `null`.
    pub key_file: Option<PathBuf>,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            dir: PathBuf::new(),
            max_bytes: ByteSize::mib(1024),
            key_file: None,
        }
    }
}

/// `disk: off` or `disk: { dir: ..., max_bytes: ... }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum DiskSetting {
    /// Memory only: nothing derived from an image touches the disk.
    #[default]
    Off,
    /// A disk tier with these settings.
    On(DiskConfig),
}

impl DiskSetting {
    /// The settings when the tier is on.
    pub fn on(&self) -> Option<&DiskConfig> {
        match self {
            DiskSetting::Off => None,
            DiskSetting::On(d) => Some(d),
        }
    }
}

impl Serialize for DiskSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DiskSetting::Off => s.serialize_str("off"),
            DiskSetting::On(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DiskSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DiskVisitor)
    }
}

struct DiskVisitor;
impl<'de> Visitor<'de> for DiskVisitor {
    type Value = DiskSetting;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`off` or a map with `dir` (and optionally `max_bytes`, `key_file`)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DiskSetting, E> {
        match v {
            "off" | "false" | "none" => Ok(DiskSetting::Off),
            _ => Err(E::custom(format!(
                "`{v}` is not a disk setting: use `off` or a map with `dir`"
            ))),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<DiskSetting, E> {
        if v {
            Err(E::custom("`true` is not enough: give a map with `dir`"))
        } else {
            Ok(DiskSetting::Off)
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<DiskSetting, E> {
        Ok(DiskSetting::Off)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DiskSetting, A::Error> {
        DiskConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(DiskSetting::On)
    }
}

impl CacheConfig {
    /// How long after its fetch an entry is due for removal: `max_retention` less one
    /// `sweep_interval`. The sweeper notices a due entry within one interval, so memory and disk
    /// are empty of it by `fetched_at + max_retention`, not one interval after.
    pub fn hold_limit(&self) -> Duration {
        self.max_retention
            .get()
            .saturating_sub(self.sweep_interval.get())
    }

    /// `idle_ttl` less one `sweep_interval`, for the same reason as [`CacheConfig::hold_limit`].
    pub fn idle_limit(&self) -> Option<Duration> {
        self.idle_ttl
            .map(|i| i.get().saturating_sub(self.sweep_interval.get()))
    }

    /// The largest body the shield stores: `max_object_bytes`, at most the memory tier.
    pub fn object_limit(&self) -> u64 {
        self.max_object_bytes.get().min(self.memory.max_bytes.get())
    }

    /// `(key, problem)` for every invalid value.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.max_variants == 0 || self.max_variants > 1024 {
            p.push((
                "cache.max_variants".into(),
                format!("must be 1 to 1024, got {}", self.max_variants),
            ));
        }
        if self.max_object_bytes.get() < 1024 {
            p.push((
                "cache.max_object_bytes".into(),
                format!("must be at least 1KiB, got {}", self.max_object_bytes),
            ));
        }
        if self.max_retention.get().as_millis() < 1000 {
            p.push(("cache.max_retention".into(), "must be at least 1s".into()));
        }
        let sweep = self.sweep_interval.get().as_millis();
        if !(10..=1000).contains(&sweep) {
            p.push((
                "cache.sweep_interval".into(),
                format!(
                    "must be between 10ms and 1s (the memory sweep lag it bounds), got {}",
                    self.sweep_interval
                ),
            ));
        }
        // Entries fall due one sweep interval early (`hold_limit`): keep that margin small.
        let limits = [
            ("max_retention", Some(self.max_retention)),
            ("idle_ttl", self.idle_ttl),
        ];
        for (name, limit) in limits {
            if let Some(l) = limit.filter(|l| self.sweep_interval.get() * 4 > l.get()) {
                p.push((
                    "cache.sweep_interval".into(),
                    format!(
                        "must be at most a quarter of cache.{name} ({l}), got {}",
                        self.sweep_interval
                    ),
                ));
            }
        }
        if let Some(i) = self.idle_ttl {
            if i.get().as_millis() < 1000 {
                p.push(("cache.idle_ttl".into(), "must be at least 1s".into()));
            }
        }
        if let Some(h) = &self.status_header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                p.push((
                    "cache.status_header".into(),
                    format!("`{h}` is not a valid header name"),
                ));
            }
        }
        if self.max_background > 64 {
            p.push((
                "cache.max_background".into(),
                format!("must be between 0 and 64, got {}", self.max_background),
            ));
        }
        if let Some(sh) = &self.shared {
            p.extend(sh.validate());
        }
        if self.memory_only_promise && matches!(self.disk, DiskSetting::On(_)) {
            p.push((
                "cache.disk".into(),
                "must be `off` under cache.memory_only_promise".into(),
            ));
        }
        if let DiskSetting::On(d) = &self.disk {
            if d.dir.as_os_str().is_empty() {
                p.push((
                    "cache.disk.dir".into(),
                    "is required when the disk tier is on (or set `disk: off`)".into(),
                ));
            }
            if d.max_bytes.get() < 1024 * 1024 {
                p.push((
                    "cache.disk.max_bytes".into(),
                    format!("must be at least 1MiB, got {}", d.max_bytes),
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
    fn entries_fall_due_one_sweep_early_so_removal_lands_inside_the_limit() {
        let c = CacheConfig::default();
        assert_eq!(
            c.hold_limit(),
            Duration::from_secs(24 * 3600) - Duration::from_millis(250)
        );
        assert_eq!(c.idle_limit(), None);
        let c = CacheConfig {
            max_retention: Dur::secs(2),
            idle_ttl: Some(Dur::secs(1)),
            sweep_interval: Dur::millis(100),
            ..CacheConfig::default()
        };
        assert_eq!(c.hold_limit(), Duration::from_millis(1900));
        assert_eq!(c.idle_limit(), Some(Duration::from_millis(900)));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn a_sweep_interval_too_long_for_the_limits_is_refused() {
        let c = CacheConfig {
            max_retention: Dur::secs(1),
            sweep_interval: Dur::millis(400),
            ..CacheConfig::default()
        };
        let p = c.validate();
        assert!(
            p.iter()
                .any(|(k, m)| k == "cache.sweep_interval" && m.contains("cache.max_retention")),
            "{p:?}"
        );
        let c = CacheConfig {
            idle_ttl: Some(Dur::secs(2)),
            sweep_interval: Dur::millis(600),
            ..CacheConfig::default()
        };
        let p = c.validate();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("cache.idle_ttl"), "{p:?}");
    }
}
