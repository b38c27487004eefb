//! The `url_api` section: the imgproxy-compatible signed URL API and its remote sources.

use crate::security::ssrf::{Allowed, Cidr};
use crate::units::Dur;
use serde::{Deserialize, Serialize};

/// The URL API (docs/url-api.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UrlApiConfig {
    /// Serve `/{signature}/{options}/plain/{url}` and `/{signature}/{options}/{base64url}`
    /// under `prefix`. Default `false`.
    pub enabled: bool,
    /// Path prefix on the proxy listener (`/` gives the whole listener to the API, as a
    /// dedicated imgproxy host would). Default `/img`.
    pub prefix: String,
    /// HMAC-SHA256 keys, hex, as imgproxy's `IMGPROXY_KEY`; several for rotation (any pair
    /// verifies). Each must be at least [`MIN_KEY_BYTES`] bytes (32 hex digits). Default none.
    pub keys: Vec<String>,
    /// Salts, hex, paired with `keys` by position. Default none.
    pub salts: Vec<String>,
    /// The tenant each key's requests are metered for, by position (names from
    /// `metrics.tenants`); keys without one meter as `none`. Default none.
    pub tenants: Vec<String>,
    /// Signature length in bytes before base64url (imgproxy's `IMGPROXY_SIGNATURE_SIZE`),
    /// 8–32 (1–32 with `allow_short_signatures`). Default `32`.
    pub signature_size: usize,
    /// Accept a `signature_size` below [`MIN_SIGNATURE_BYTES`]: a 1-byte signature is one guess
    /// in 256. Only for templates that cannot change. Default `false`.
    pub allow_short_signatures: bool,
    /// Accept `insecure` / `unsafe` / `_` in place of a signature. Default `false`.
    pub allow_unsigned: bool,
    /// Allowed sources: `scheme://host-glob[:port][/path/]`, matched on parsed URL parts.
    /// Empty: no remote source is allowed. Default none.
    pub sources: Vec<String>,
    /// Address ranges exempt from the refusal of loopback / private / link-local / metadata
    /// addresses (CIDR). Default none.
    pub allow_ip_ranges: Vec<String>,
    /// Redirects followed, each checked again. Default `3`.
    pub max_redirects: u32,
    /// TCP connect timeout per attempt. Default `5s`.
    pub connect_timeout: Dur,
    /// Total time for a source fetch, redirects included. Default `20s`.
    pub timeout: Dur,
    /// PEM file of the CA certificates trusted for https sources; `null`: the system's roots
    /// (plus `SSL_CERT_FILE`). Default `null`.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for UrlApiConfig {
    fn default() -> Self {
        UrlApiConfig {
            enabled: false,
            prefix: "/img".into(),
            keys: Vec::new(),
            salts: Vec::new(),
            tenants: Vec::new(),
            signature_size: 32,
            allow_short_signatures: false,
            allow_unsigned: false,
            sources: Vec::new(),
            allow_ip_ranges: Vec::new(),
            max_redirects: 3,
            connect_timeout: Dur::secs(5),
            timeout: Dur::secs(20),
            ca_file: None,
        }
    }
}

/// The shortest signing key accepted, in bytes: 128 bits, so a key cannot be searched for.
pub const MIN_KEY_BYTES: usize = 16;

/// The shortest signature accepted without `allow_short_signatures`, in bytes (64 bits: an
/// online guess of a valid signature stays out of reach).
pub const MIN_SIGNATURE_BYTES: usize = 8;

/// Decodes hex (imgproxy keys and salts).
pub fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl UrlApiConfig {
    /// `(key, problem)` for every invalid value.
    pub(crate) fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if !self.prefix.starts_with('/') {
            p.push(("url_api.prefix".into(), "must start with `/`".into()));
        }
        for (i, k) in self.keys.iter().enumerate() {
            match hex(k) {
                None => p.push((format!("url_api.keys[{i}]"), "must be hex".into())),
                Some(b) if b.len() < MIN_KEY_BYTES => p.push((
                    format!("url_api.keys[{i}]"),
                    format!(
                        "must be at least {MIN_KEY_BYTES} bytes ({} hex digits), got {}: \
                         generate one with `openssl rand -hex 32`",
                        MIN_KEY_BYTES * 2,
                        b.len()
                    ),
                )),
                Some(_) => {}
            }
        }
        for (i, s) in self.salts.iter().enumerate() {
            if hex(s).is_none() {
                p.push((format!("url_api.salts[{i}]"), "must be hex".into()));
            }
        }
        if self.keys.len() != self.salts.len() {
            p.push((
                "url_api.salts".into(),
                format!(
                    "{} keys but {} salts: they pair by position",
                    self.keys.len(),
                    self.salts.len()
                ),
            ));
        }
        let min = if self.allow_short_signatures {
            1
        } else {
            MIN_SIGNATURE_BYTES
        };
        if !(min..=32).contains(&self.signature_size) {
            let why = if self.signature_size < MIN_SIGNATURE_BYTES && self.signature_size >= 1 {
                " (shorter signatures need url_api.allow_short_signatures: true)"
            } else {
                ""
            };
            p.push((
                "url_api.signature_size".into(),
                format!(
                    "must be between {min} and 32, got {}{why}",
                    self.signature_size
                ),
            ));
        }
        if self.enabled && self.keys.is_empty() && !self.allow_unsigned {
            p.push((
                "url_api.keys".into(),
                "the URL API is enabled without keys: set keys and salts, or allow_unsigned".into(),
            ));
        }
        for (i, s) in self.sources.iter().enumerate() {
            if let Err(e) = Allowed::parse(s) {
                p.push((format!("url_api.sources[{i}]"), e));
            }
        }
        for (i, s) in self.allow_ip_ranges.iter().enumerate() {
            if let Err(e) = Cidr::parse(s) {
                p.push((format!("url_api.allow_ip_ranges[{i}]"), e));
            }
        }
        if let Some(f) = &self.ca_file {
            if std::fs::metadata(f).is_err() {
                p.push((
                    "url_api.ca_file".into(),
                    format!("cannot read `{}`", f.display()),
                ));
            }
        }
        if self.max_redirects > 10 {
            p.push((
                "url_api.max_redirects".into(),
                format!("must be at most 10, got {}", self.max_redirects),
            ));
        }
        p
    }
}
