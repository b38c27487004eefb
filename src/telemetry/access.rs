//! The access log: one JSON line per request, written through `tracing` (target
//! [`TARGET`]) by a non-blocking writer, so a slow disk or pipe never holds a request.
//!
//! Privacy by construction: a line is built only from the fields of [`Line`], and `Line` has
//! no slot for a User-Agent, Referer, cookie or full client address. The path appears only as
//! a keyed hash (`paths: hashed`) or, when the operator says `paths: full`, as itself.

use super::config::{AccessLogConfig, ClientIp, Destination, LogConfig, PathLogging};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The tracing target of access-log events (kept out of the diagnostic log).
pub(crate) const TARGET: &str = "pixgate_access";

/// The client's network: IPv4 /24 (`203.0.113.0/24`), IPv6 /48 (`2001:db8:1::/48`).
/// IPv4-mapped IPv6 addresses are treated as IPv4.
pub(crate) fn truncate_ip(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

/// HMAC-SHA256 of host and path under a random key that lives only in memory and is replaced
/// every `rotation`: equal paths hash equally within one period, and nothing maps a hash back
/// to its path once the key is gone.
pub(crate) struct PathHasher {
    rotation: Duration,
    key: Mutex<(u64, [u8; 32])>,
}

impl PathHasher {
    /// A hasher whose key changes every `rotation`.
    pub(crate) fn new(rotation: Duration) -> PathHasher {
        PathHasher {
            rotation: rotation.max(Duration::from_secs(1)),
            key: Mutex::new((u64::MAX, [0; 32])),
        }
    }

    fn period(&self, now: SystemTime) -> u64 {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        secs / self.rotation.as_secs().max(1)
    }

    /// 16 hex digits (64 bits) of the HMAC of `host` and `path` under the key of `now`'s period.
    pub(crate) fn hash(&self, host: &str, path: &str, now: SystemTime) -> String {
        let period = self.period(now);
        let key = {
            let mut k = self.key.lock().unwrap_or_else(|p| p.into_inner());
            if k.0 != period {
                let mut fresh = [0u8; 32];
                fill_random(&mut fresh);
                *k = (period, fresh);
            }
            k.1
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return String::new();
        };
        mac.update(host.as_bytes());
        mac.update(b"\0");
        mac.update(path.as_bytes());
        let out = mac.finalize().into_bytes();
        out.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

fn fill_random(buf: &mut [u8; 32]) {
    use chacha20poly1305::aead::{KeyInit, OsRng};
    let k = chacha20poly1305::ChaCha20Poly1305::generate_key(&mut OsRng);
    buf.copy_from_slice(&k);
}

/// One access-log line: everything it may contain.
#[derive(Debug, Default)]
pub(crate) struct Line<'a> {
    /// `GET`, `HEAD`, ...
    pub method: &'a str,
    /// `proxy`, `image`, `api`.
    pub route: &'static str,
    /// Status code sent.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Body bytes received from the origin.
    pub bytes_in: u64,
    /// Whole request, milliseconds.
    pub duration_ms: f64,
    /// Origin fetch, milliseconds (when the origin was asked).
    pub origin_ms: Option<f64>,
    /// Transform, milliseconds (when one ran for this request).
    pub transform_ms: Option<f64>,
    /// Wait for a transform slot, milliseconds.
    pub queue_ms: Option<f64>,
    /// `hit`, `miss`, `bypass`, `none`.
    pub cache: &'static str,
    /// Source image format, when known.
    pub source_format: Option<&'static str>,
    /// Response format (`avif`, ..., `original`), when an image.
    pub output_format: Option<&'static str>,
    /// `1 - sent/source` for an image response.
    pub savings: Option<f64>,
    /// Tenant label.
    pub tenant: &'a str,
    /// Why the original was sent / the request failed (closed set), when it did.
    pub reason: Option<&'static str>,
}

/// The configured access log.
pub struct AccessLog {
    enabled: bool,
    client_ip: ClientIp,
    paths: PathLogging,
    hasher: PathHasher,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Milliseconds, rounded to microseconds, for a line.
pub(crate) fn millis(d: Duration) -> f64 {
    ms(d)
}

impl AccessLog {
    /// From `log.access`.
    pub(crate) fn new(cfg: &AccessLogConfig) -> AccessLog {
        AccessLog {
            enabled: cfg.enabled,
            client_ip: cfg.client_ip,
            paths: cfg.paths,
            hasher: PathHasher::new(cfg.hash_rotation.get()),
        }
    }

    /// Whether lines are written at all.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// What `paths` allows to be said about a request's path: nothing, `path_hash=...` or
    /// the path itself. pingora's own error messages use this too (`request_summary`).
    pub(crate) fn describe_path(&self, host: &str, path: &str) -> String {
        match self.paths {
            PathLogging::None => "path withheld".into(),
            PathLogging::Hashed => format!(
                "path_hash={}",
                self.hasher.hash(host, path, SystemTime::now())
            ),
            PathLogging::Full => path.to_string(),
        }
    }

    /// Writes `line`; `client`, `host` and `path` are used only as the configuration allows.
    pub(crate) fn write(&self, line: &Line, client: Option<IpAddr>, host: &str, path: &str) {
        if !self.enabled {
            return;
        }
        let client = match self.client_ip {
            ClientIp::Truncated => client.map(truncate_ip),
            ClientIp::Omit => None,
        };
        let (path_hash, full_path) = match self.paths {
            PathLogging::None => (None, None),
            PathLogging::Hashed => (Some(self.hasher.hash(host, path, SystemTime::now())), None),
            PathLogging::Full => (None, Some(path)),
        };
        tracing::info!(
            target: TARGET,
            method = line.method,
            route = line.route,
            status = line.status,
            bytes_out = line.bytes_out,
            bytes_in = line.bytes_in,
            duration_ms = line.duration_ms,
            origin_ms = line.origin_ms,
            transform_ms = line.transform_ms,
            queue_ms = line.queue_ms,
            cache = line.cache,
            source_format = line.source_format,
            output_format = line.output_format,
            savings = line.savings,
            reason = line.reason,
            tenant = line.tenant,
            client = client.as_deref(),
            path_hash = path_hash.as_deref(),
            path = full_path,
        );
    }
}

/// Keeps the access log's writer thread alive; dropping it flushes what is queued.
pub type Flush = Option<tracing_appender::non_blocking::WorkerGuard>;

/// Installs the global subscriber: the diagnostic log on stderr (filtered by `PIXGATE_LOG`,
/// else `log.level`) and, when on, the access log as JSON lines to its destination.
pub fn install(cfg: &LogConfig) -> std::io::Result<Flush> {
    use tracing_subscriber::filter::{EnvFilter, FilterExt, FilterFn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let (directives, mut filter) = std::env::var("PIXGATE_LOG")
        .ok()
        .and_then(|v| Some((EnvFilter::try_new(&v).ok()?, v)))
        .or_else(|| Some((EnvFilter::try_new(&cfg.level).ok()?, cfg.level.clone())))
        .map_or_else(|| (String::new(), EnvFilter::new("info")), |(f, v)| (v, f));
    if let Ok(off) = format!("{TARGET}=off").parse() {
        filter = filter.add_directive(off);
    }
    // pingora's DEBUG and TRACE events print request headers (Authorization, cookies) and the
    // raw bytes of malformed requests: kept out unless the filter names pingora itself.
    let pingora_asked = directives.contains("pingora");
    // The hint lets the combined filter keep the level's hint (a filter without one makes
    // it "anything"), which `try_init` hands to the `log` crate as its max level: pingora's
    // `debug!`/`trace!` lines then stop at a level check instead of being built and
    // dispatched on every request.
    let filter = filter.and(
        FilterFn::new(move |m| pingora_asked || !is_pingora_verbose(m))
            .with_max_level_hint(tracing::level_filters::LevelFilter::TRACE),
    );
    // Colours only on a terminal: `docker logs`, journald and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let diagnostic = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let (access, guard) = if cfg.access.enabled {
        let (writer, guard) = match &cfg.access.destination {
            Destination::Stdout => tracing_appender::non_blocking(std::io::stdout()),
            Destination::Stderr => tracing_appender::non_blocking(std::io::stderr()),
            Destination::File(p) => tracing_appender::non_blocking(open_append(p)?),
        };
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .with_level(false)
            .with_writer(writer)
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(TARGET, tracing::Level::INFO),
            );
        (Some(layer), Some(guard))
    } else {
        (None, None)
    };
    // A second install (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(diagnostic)
        .with(access)
        .try_init();
    Ok(guard)
}

/// A DEBUG or TRACE event of one of pingora's crates (their targets start with `pingora`;
/// `log` records arrive with the module path as target).
fn is_pingora_verbose(m: &tracing::Metadata<'_>) -> bool {
    matches!(*m.level(), tracing::Level::DEBUG | tracing::Level::TRACE)
        && m.target().starts_with("pingora")
}

fn open_append(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o640);
    }
    o.open(p).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("log.access.destination `{}`: {e}", p.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation() {
        assert_eq!(
            truncate_ip("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            truncate_ip("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(
            truncate_ip("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0/24"
        );
        assert_eq!(truncate_ip("::1".parse().unwrap()), "::/48");
    }

    #[test]
    fn hashes_rotate_and_hide_the_path() {
        let h = PathHasher::new(Duration::from_secs(3600));
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = h.hash("example.com", "/photos/cat.jpg", t0);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            a,
            h.hash(
                "example.com",
                "/photos/cat.jpg",
                t0 + Duration::from_secs(5)
            )
        );
        assert_ne!(a, h.hash("example.com", "/photos/dog.jpg", t0));
        assert_ne!(a, h.hash("example.org", "/photos/cat.jpg", t0));
        // The next period has a new random key: the same path no longer links.
        let later = h.hash(
            "example.com",
            "/photos/cat.jpg",
            t0 + Duration::from_secs(3600),
        );
        assert_ne!(a, later);
        // A second process (another key) gives another hash.
        let other = PathHasher::new(Duration::from_secs(3600));
        assert_ne!(a, other.hash("example.com", "/photos/cat.jpg", t0));
    }
}
