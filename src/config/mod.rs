//! The configuration tree: one typed section per concern, loaded from YAML with every key
//! documented, unknown keys rejected, and every error naming the file, line and key.
//!
//! `config/pixgate.yaml` is the documented default and is compiled into the binary
//! ([`DEFAULT_YAML`]), so `pixgate` runs with no file at all.

mod server;
mod validate;

use crate::located;
pub use crate::units::{ByteSize, Dur};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

pub use crate::admin::config::AdminConfig;
pub use crate::cache::config::{CacheConfig, DiskConfig, DiskSetting, MemoryConfig, Scope};
pub use crate::fetch::config::UrlApiConfig;
pub use crate::fetch::origin::OriginConfig;
pub use crate::image::config::{
    AvifConfig, DetectMode, ImagesConfig, JpegConfig, PngConfig, SvgPolicy, WebpConfig,
};
pub use crate::limits::{LimitsConfig, Overload};
pub use crate::request::config::TransformConfig;
pub use crate::rules::config::RulesConfig;
pub use crate::telemetry::config::{AccessLogConfig, LogConfig, MetricsConfig};
pub use crate::upload::config::{ApiKey, UploadConfig};
pub use server::ServerConfig;

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
    /// The compression service: uploads, private expiring links, screening (docs/upload.md).
    pub upload: UploadConfig,
    /// TLS on `listen` (rustls; ALPN h2 and http/1.1; the certificate reloaded on SIGHUP).
    /// `null`: plain HTTP. Default `null`.
    pub tls: Option<crate::tls::TlsConfig>,
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
            upload: UploadConfig::default(),
            tls: None,
        }
    }
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
}

#[cfg(test)]
mod tests;
