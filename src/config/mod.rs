//! The configuration tree: one typed section per concern, loaded from YAML with every key
//! documented, unknown keys rejected, and every error naming the file, line and key.
//!
//! `config/pixgate.yaml` is the documented default and is compiled into the binary
//! ([`DEFAULT_YAML`]), so `pixgate` runs with no file at all.

use crate::located;
pub use crate::units::{ByteSize, Dur};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

pub use crate::cache::config::{CacheConfig, DiskConfig, DiskSetting, MemoryConfig};
pub use crate::fetch::config::UrlApiConfig;
pub use crate::fetch::origin::OriginConfig;
pub use crate::image::config::{
    AvifConfig, DetectMode, ImagesConfig, JpegConfig, PngConfig, SvgPolicy, WebpConfig,
};
pub use crate::telemetry::config::{AccessLogConfig, LogConfig, MetricsConfig};

/// The default configuration, byte for byte the file `config/pixgate.yaml`.
pub const DEFAULT_YAML: &str = include_str!("../../config/pixgate.yaml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the proxy listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Where requests are forwarded.
    pub origin: OriginConfig,
    /// Which images are re-encoded, into what, at which quality and effort.
    pub images: ImagesConfig,
    /// Limits that protect the process from expensive or hostile input.
    pub limits: LimitsConfig,
    /// Process-level settings (threads, shutdown).
    pub server: ServerConfig,
    /// Transform options from URLs: which are read, and their limits.
    pub transform: TransformConfig,
    /// Per-site / per-path rules (rules/*.yaml).
    pub rules: RulesConfig,
    /// The imgproxy-compatible signed URL API and its remote sources.
    pub url_api: UrlApiConfig,
    /// The variant cache: tiers, TTLs and the retention guarantee.
    pub cache: CacheConfig,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`, cache stats and purge). Off
    /// unless `listen` is set.
    pub admin: AdminConfig,
    /// The diagnostic log and the access log.
    pub log: LogConfig,
    /// Prometheus metrics and per-tenant metering.
    pub metrics: MetricsConfig,
    /// Token buckets per client address and per tenant; trusted proxies.
    pub rate_limit: crate::ratelimit::RateLimitConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            origin: OriginConfig::default(),
            images: ImagesConfig::default(),
            limits: LimitsConfig::default(),
            server: ServerConfig::default(),
            transform: TransformConfig::default(),
            rules: RulesConfig::default(),
            url_api: UrlApiConfig::default(),
            cache: CacheConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            rate_limit: Default::default(),
        }
    }
}

/// Limits applied before and during a transform.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Larger origin bodies are streamed through untouched. Default `32MiB`.
    pub max_source_bytes: ByteSize,
    /// Images declaring more pixels (width × height, read from the header before decoding)
    /// are sent untouched. Default `50000000` (50 MP).
    pub max_source_pixels: u64,
    /// Images wider or taller than this are sent untouched. Default `16384`.
    pub max_source_dimension: u32,
    /// A transform running longer than this is abandoned and the original is sent. Default `15s`.
    pub transform_timeout: Dur,
    /// A request waiting longer than this for a transform slot gets the original. Default `3s`.
    pub queue_timeout: Dur,
    /// Transforms running at once (each on its own blocking thread). Default `2`.
    pub max_concurrent_transforms: usize,
    /// Transforms allowed to wait for a slot; past that a request does not queue: it gets
    /// what `overload` says at once. Default `64`.
    pub max_queued_transforms: usize,
    /// When the transform queue is full: `original` sends the source untouched (fail-open,
    /// reason `overloaded`), `reject` answers `503` with `Retry-After: 1`. Default `original`.
    pub overload: Overload,
    /// Source image bytes that image requests may hold in memory at once, across all
    /// requests (bodies being read, waiting for a slot, being transformed). A source that
    /// would go past it is streamed through untouched instead (reason `buffer_budget`).
    /// Default `512MiB`.
    pub max_buffered_bytes: ByteSize,
    /// A client must send a whole request header within this, counted from the connection's
    /// accept (or, on a kept-alive connection, from the next request's first byte); past it
    /// the connection is closed (slowloris). Default `10s`.
    pub header_timeout: Dur,
    /// A write to a client that makes no progress for this long ends its connection (slow
    /// readers). Default `30s`.
    pub client_write_timeout: Dur,
    /// A kept-alive connection on which no new request starts within this long after a
    /// response is closed. Whole seconds (pingora's unit; a fraction is rounded up), 1s–1h.
    /// Default `60s`.
    pub keepalive_timeout: Dur,
    /// Client connections the proxy listener holds open at once; one more is closed as soon
    /// as it is accepted. Default `4096`.
    pub max_connections: usize,
    /// Client connections one address (IPv4, or an IPv6 /64) may hold open at once on the
    /// proxy listener, applied when `rate_limit.per_ip` is on; peers in
    /// `rate_limit.trusted_proxies` are exempt (they carry many clients). Default `256`.
    pub max_connections_per_ip: usize,
}

/// What a request gets when the transform queue is full.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Overload {
    /// The original bytes (fail-open).
    Original,
    /// `503 Service Unavailable` with `Retry-After`.
    Reject,
}
impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_source_bytes: ByteSize::mib(32),
            max_source_pixels: 50_000_000,
            max_source_dimension: 16_384,
            transform_timeout: Dur::secs(15),
            queue_timeout: Dur::secs(3),
            max_concurrent_transforms: 2,
            max_queued_transforms: 64,
            overload: Overload::Original,
            max_buffered_bytes: ByteSize::mib(512),
            header_timeout: Dur::secs(10),
            client_write_timeout: Dur::secs(30),
            keepalive_timeout: Dur::secs(60),
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

impl LimitsConfig {
    /// `keepalive_timeout` in the whole seconds pingora takes, rounded up (at least 1).
    pub fn keepalive_secs(&self) -> u64 {
        let d = self.keepalive_timeout.get();
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// Transform options from URLs (docs/url-api.md).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    /// Read `w`, `h`, `fit`, `g`, `q`, `fm`, `dpr`, `blur`, `sharpen`, `enlarge`, `bg` from the
    /// query of proxied image URLs (they are removed from the origin request). Default `true`.
    pub query_options: bool,
    /// Largest output width or height a URL may ask for, after the DPR; larger requests are
    /// scaled down proportionally. Default `4096`.
    pub max_output_dimension: u32,
    /// `dpr` values above this are capped. Default `3`.
    pub max_dpr: f32,
    /// Use client hints (`Sec-CH-DPR`/`DPR`, `Sec-CH-Width`/`Width`, `Save-Data`) where the URL
    /// is silent, advertise them with `Accept-CH` on HTML pages, and add them to `Vary` on
    /// images. Default `false` (a site opts in: hints fragment CDN caches).
    pub client_hints: bool,
    /// Quality used for `Save-Data: on` clients when the URL sets none. Default `50`.
    pub save_data_quality: u8,
}

impl Default for TransformConfig {
    fn default() -> Self {
        TransformConfig {
            query_options: true,
            max_output_dimension: 4096,
            max_dpr: 3.0,
            client_hints: false,
            save_data_quality: 50,
        }
    }
}

/// Where rules live and how they reload (docs/rules.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Directory of `*.yaml` rule files; `null`: no rules (the global settings apply to every
    /// image). Errors at start are fatal; on reload a bad file keeps the old rules. Default `null`.
    pub dir: Option<std::path::PathBuf>,
    /// How often the directory is checked for changes (SIGHUP also reloads). Default `1s`.
    pub poll_interval: Dur,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dir: None,
            poll_interval: Dur::secs(1),
        }
    }
}

/// Process settings handed to pingora.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Worker threads of the proxy service. Default `2`.
    pub threads: usize,
    /// On SIGTERM, keep serving this long before shutting down. Default `5s`.
    pub grace_period: Dur,
    /// Unix socket over which a new process started with `--upgrade` takes the listening
    /// sockets from this one when it gets SIGQUIT (pingora's graceful upgrade). `null`: a
    /// private runtime directory (`crate::upgrade::default_path`). Its directory is created
    /// 0700 if missing; start-up is refused when it is a symlink, not owned by this user, or
    /// writable by group or others. Default `null`.
    pub upgrade_sock: Option<std::path::PathBuf>,
    /// Per-connection write buffer of the proxy listener. A response whose header and body
    /// fit go out in one write; a Content-Length body streamed from the origin is sent when
    /// this much has gathered (chunked bodies are sent chunk by chunk whatever the size).
    /// `0` writes straight through. Default `16KiB`: a 12 KB hit is one `sendto` instead of
    /// two, 15 % less CPU per hit (docs/benchmarks.md); pingora's own default is 1460 B.
    pub write_buffer: ByteSize,
    /// An encoded `/` or `\` (`%2F`, `%5C`) in a request path: `refuse` (400: an origin that
    /// decodes it would serve a path the rules never judged) or `keep` (data inside its
    /// segment, for APIs such as `projects/group%2Fname` behind an origin that does not decode
    /// it). Default `refuse`.
    pub encoded_slashes: crate::path::EncodedSlashes,
}
impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: 2,
            grace_period: Dur::secs(5),
            upgrade_sock: None,
            write_buffer: ByteSize(16 * 1024),
            encoded_slashes: crate::path::EncodedSlashes::Refuse,
        }
    }
}

/// The admin listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener: `/metrics` (Prometheus text), `/healthz`, `/readyz`,
    /// `/cache/stats`, `/cache/purge`. Default: off.
    pub listen: Option<SocketAddr>,
    /// Bearer token required by `/cache/purge`; without one, purging is refused (403).
    /// Default: none.
    pub token: Option<String>,
}

/// A configuration problem, located in its file (file, line, dotted key, message): the
/// located error shared with the rule files.
pub use crate::located::Error as ConfigError;
/// All problems found in one file (validation reports every one at once).
pub use crate::located::Errors as ConfigErrors;

impl Config {
    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::whole_file(
                name.clone(),
                format!("cannot read: {e}"),
            )])
        })?;
        Config::from_yaml(&text, &name)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Config, ConfigErrors> {
        Config::from_yaml(DEFAULT_YAML, "<embedded config/pixgate.yaml>")
    }

    /// Parses and validates YAML text; `file` is used in error messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: Config = match serde_path_to_error::deserialize(de) {
            Ok(c) => c,
            Err(e) => {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let line = inner.location().map(|l| l.line());
                let mut message = inner.to_string();
                // serde_yaml appends " at line X column Y"; the prefix already says where.
                if let Some(i) = message.find(" at line ") {
                    message.truncate(i);
                }
                let key = if key == "." { String::new() } else { key };
                return Err(ConfigErrors(vec![ConfigError {
                    file: file.into(),
                    line: line.or_else(|| located::line_of(text, &key)),
                    key,
                    message,
                }]));
            }
        };
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(
                problems
                    .into_iter()
                    .map(|(key, message)| ConfigError {
                        file: file.into(),
                        line: located::line_of_nearest(text, &key),
                        key,
                        message,
                    })
                    .collect(),
            ))
        }
    }

    /// Checks values that types alone cannot; returns `(key, problem)` for every problem.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut range = |key: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                p.push((
                    key.to_string(),
                    format!("must be between {lo} and {hi}, got {v}"),
                ));
            }
        };
        let i = &self.images;
        range("images.avif.quality", i.avif.quality.into(), 1, 100);
        range("images.avif.speed", i.avif.speed.into(), 1, 10);
        range("images.webp.quality", i.webp.quality.into(), 1, 100);
        range("images.webp.method", i.webp.method.into(), 0, 6);
        range("images.jpeg.quality", i.jpeg.quality.into(), 1, 100);
        range("images.png.level", i.png.level.into(), 0, 6);
        let l = &self.limits;
        range(
            "limits.max_concurrent_transforms",
            l.max_concurrent_transforms as u64,
            1,
            256,
        );
        range(
            "limits.max_queued_transforms",
            l.max_queued_transforms as u64,
            0,
            100_000,
        );
        range(
            "limits.max_source_dimension",
            l.max_source_dimension.into(),
            1,
            65_535,
        );
        range("limits.max_source_pixels", l.max_source_pixels, 1, 1 << 32);
        range(
            "limits.max_source_bytes",
            l.max_source_bytes.get(),
            1,
            1 << 32,
        );
        range("server.threads", self.server.threads as u64, 1, 1024);
        // Allocated per connection: a few connections' worth must not exhaust memory.
        range(
            "server.write_buffer",
            self.server.write_buffer.get(),
            0,
            1 << 20,
        );
        range(
            "transform.save_data_quality",
            self.transform.save_data_quality.into(),
            1,
            100,
        );
        range(
            "transform.max_output_dimension",
            self.transform.max_output_dimension.into(),
            16,
            16_384,
        );
        range(
            "limits.max_connections",
            l.max_connections as u64,
            1,
            1_000_000,
        );
        range(
            "limits.max_connections_per_ip",
            l.max_connections_per_ip as u64,
            1,
            1_000_000,
        );
        let keepalive = l.keepalive_timeout.get();
        if keepalive.is_zero() || keepalive > std::time::Duration::from_secs(3600) {
            p.push((
                "limits.keepalive_timeout".into(),
                format!("must be between 1s and 1h, got {}", l.keepalive_timeout),
            ));
        }
        for (key, d) in [
            ("limits.transform_timeout", l.transform_timeout),
            ("limits.header_timeout", l.header_timeout),
            ("limits.client_write_timeout", l.client_write_timeout),
        ] {
            if d.get().is_zero() {
                p.push((key.into(), "must be greater than 0".into()));
            }
        }
        if l.max_buffered_bytes.get() < l.max_source_bytes.get() {
            p.push((
                "limits.max_buffered_bytes".into(),
                format!(
                    "must be at least limits.max_source_bytes ({}), got {}",
                    l.max_source_bytes.get(),
                    l.max_buffered_bytes.get()
                ),
            ));
        }
        let mut seen = Vec::new();
        for f in &i.formats {
            if seen.contains(f) {
                p.push((
                    "images.formats".into(),
                    format!("`{}` is listed twice", f.name()),
                ));
            }
            seen.push(*f);
        }
        if let Err(e) = crate::fetch::origin::OriginTarget::parse(&self.origin.url) {
            p.push(("origin.url".into(), e));
        }
        if !(1.0..=10.0).contains(&self.transform.max_dpr) {
            p.push((
                "transform.max_dpr".into(),
                format!("must be between 1 and 10, got {}", self.transform.max_dpr),
            ));
        }
        let poll = self.rules.poll_interval.get().as_millis();
        if !(10..=60_000).contains(&poll) {
            p.push((
                "rules.poll_interval".into(),
                format!(
                    "must be between 10ms and 60s, got {}",
                    self.rules.poll_interval
                ),
            ));
        }
        if !matches!(self.images.avif.depth, 8 | 10) {
            let got = self.images.avif.depth;
            p.push((
                "images.avif.depth".into(),
                format!("must be 8 or 10, got {got}"),
            ));
        }
        p.extend(self.url_api.validate());
        p.extend(self.cache.validate());
        p.extend(self.log.validate());
        p.extend(self.metrics.validate());
        p.extend(self.rate_limit.validate());
        for (i, t) in self.url_api.tenants.iter().enumerate() {
            if !self.metrics.tenants.contains(t) {
                p.push((
                    format!("url_api.tenants[{i}]"),
                    format!("`{t}` is not listed in metrics.tenants"),
                ));
            }
        }
        if self.url_api.tenants.len() > self.url_api.keys.len() {
            p.push((
                "url_api.tenants".into(),
                format!(
                    "names a tenant for {} keys, but there are {} keys",
                    self.url_api.tenants.len(),
                    self.url_api.keys.len()
                ),
            ));
        }
        if self.admin.token.as_deref().is_some_and(|t| t.len() < 16) {
            p.push((
                "admin.token".into(),
                "must be at least 16 characters".into(),
            ));
        }
        if let Some(a) = self.admin.listen {
            if a == self.listen {
                p.push(("admin.listen".into(), "must differ from `listen`".into()));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests;
