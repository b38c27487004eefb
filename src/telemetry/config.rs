//! The `log` and `metrics` sections: what the access log may contain and where it goes, and
//! the closed set of tenants that usage is metered for.

use crate::units::Dur;
use serde::{Deserialize, Serialize};

/// Diagnostic and access logging (docs/logging.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Filter of the diagnostic log on stderr (`error`, `warn`, `info`, `debug`, or a
    /// tracing directive such as `pixgate=debug,pingora=warn`); the `PIXGATE_LOG` environment
    /// variable overrides it. Default `info`.
    pub level: String,
    /// The access log: one JSON line per proxied request.
    pub access: AccessLogConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            access: AccessLogConfig::default(),
        }
    }
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Appended to this file (created 0640 if missing; reopen is not needed for
    /// `copytruncate`-style rotation).
    File(std::path::PathBuf),
}

impl Serialize for Destination {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Destination::Stdout => s.serialize_str("stdout"),
            Destination::Stderr => s.serialize_str("stderr"),
            Destination::File(p) => s.serialize_str(&p.display().to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "stdout" => Destination::Stdout,
            "stderr" => Destination::Stderr,
            "" => return Err(serde::de::Error::custom("must be stdout, stderr or a path")),
            p => Destination::File(p.into()),
        })
    }
}

/// What the access log says about the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientIp {
    /// The network only: IPv4 /24, IPv6 /48.
    Truncated,
    /// No address at all.
    Omit,
}

/// What the access log says about the requested path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathLogging {
    /// Nothing: no path, query or filename.
    None,
    /// `path_hash`: HMAC-SHA256 of host and path with a key held only in memory and replaced
    /// every `hash_rotation`; equal paths give equal hashes within one key period, and the
    /// path cannot be recovered from it.
    Hashed,
    /// The path and query as requested. Only for debugging on systems whose privacy policy
    /// allows it.
    Full,
}

/// The access log.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Write one JSON line per request on the proxy listener. Default `true`.
    pub enabled: bool,
    /// `stdout`, `stderr` or a file path (appended). Default `stdout`.
    pub destination: Destination,
    /// `truncated` (IPv4 /24, IPv6 /48) or `omit`. Default `truncated`.
    pub client_ip: ClientIp,
    /// `none`, `hashed` or `full`. Default `none`.
    pub paths: PathLogging,
    /// How long one path-hash key lives before a new random one replaces it. Default `24h`.
    pub hash_rotation: Dur,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: true,
            destination: Destination::Stdout,
            client_ip: ClientIp::Truncated,
            paths: PathLogging::None,
            hash_rotation: Dur::secs(24 * 3600),
        }
    }
}

/// Prometheus metrics and per-tenant metering (docs/metrics.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Count every request (`pixgate_requests_total`, bytes, tenants, in-flight). Turning it
    /// off is only for measuring what the counting costs. Default `true`.
    pub per_request: bool,
    /// The tenants usage is metered for (label `tenant` of `pixgate_tenant_*`). Rules
    /// (`tenant:`) and URL API keys (`url_api.tenants`) assign them; a name not listed here
    /// is counted as `other`, a request without one as `none`. Default none.
    pub tenants: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            per_request: true,
            tenants: Vec::new(),
        }
    }
}

impl LogConfig {
    /// `(key, problem)` for every invalid value.
    pub(crate) fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            p.push((
                "log.level".into(),
                format!("`{}` is not a log level or tracing directive", self.level),
            ));
        }
        if self.access.hash_rotation.get() < std::time::Duration::from_secs(60) {
            p.push((
                "log.access.hash_rotation".into(),
                "must be at least 1m".into(),
            ));
        }
        p
    }
}

impl MetricsConfig {
    /// `(key, problem)` for every invalid value.
    pub(crate) fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.tenants.len() > 1000 {
            p.push((
                "metrics.tenants".into(),
                format!("at most 1000 tenants, got {}", self.tenants.len()),
            ));
        }
        for (i, t) in self.tenants.iter().enumerate() {
            if !crate::telemetry::tenant::valid_name(t) {
                p.push((
                    format!("metrics.tenants[{i}]"),
                    format!("`{t}`: use 1-64 letters, digits, `-`, `_` or `.`"),
                ));
            } else if matches!(t.as_str(), "none" | "other") {
                p.push((
                    format!("metrics.tenants[{i}]"),
                    format!("`{t}` is reserved"),
                ));
            } else if self.tenants[..i].contains(t) {
                p.push((
                    format!("metrics.tenants[{i}]"),
                    format!("`{t}` is listed twice"),
                ));
            }
        }
        p
    }
}
