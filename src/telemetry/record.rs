//! One request's figures, filled in as it is answered and counted once at the end: the
//! Prometheus counters, the tenant's usage and the access-log line all come from the same
//! [`Record`], so they cannot disagree.

use super::access::{self, AccessLog, Line};
use super::config::{LogConfig, MetricsConfig};
use super::health::OriginHealth;
use super::metrics;
use super::tenant::{TenantId, Tenants};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Telemetry shared by all requests.
pub struct Telemetry {
    /// The metered tenants.
    pub tenants: Tenants,
    /// The access log.
    pub access: AccessLog,
    /// `metrics.per_request`.
    pub per_request: bool,
    /// When the origin last answered or failed (for `/readyz`).
    pub origin: OriginHealth,
}

impl Telemetry {
    /// From the `metrics` and `log` sections.
    pub(crate) fn new(metrics: &MetricsConfig, log: &LogConfig) -> Telemetry {
        Telemetry {
            tenants: Tenants::new(&metrics.tenants),
            access: AccessLog::new(&log.access),
            per_request: metrics.per_request,
            origin: OriginHealth::default(),
        }
    }
}

/// The closed-set label for a source format name (`unknown` otherwise).
pub(crate) fn source_label(name: &str) -> &'static str {
    use crate::image::format::SourceFormat as S;
    S::ALL
        .into_iter()
        .map(S::name)
        .find(|n| *n == name)
        .unwrap_or("unknown")
}

/// The closed-set label for an entry's note (`avif`, `webp`, `jpeg`, `png`, `gif`, else
/// `original`).
pub(crate) fn output_label(note: &str) -> &'static str {
    crate::image::format::OutputFormat::PRODUCED
        .into_iter()
        .map(crate::image::format::OutputFormat::name)
        .find(|n| *n == note)
        .unwrap_or("original")
}

/// One request's figures.
#[derive(Debug)]
pub struct Record {
    start: Instant,
    counted: bool,
    /// `proxy`, `image` or `api`.
    pub route: &'static str,
    /// `hit`, `miss`, `bypass` (image responses) or `none`.
    pub cache: &'static str,
    /// The source's format, when an image was examined.
    pub source: Option<&'static str>,
    /// The response's format (`avif`, ..., `original`), when an image was sent.
    pub output: Option<&'static str>,
    /// Size of the source image the response was made from (for savings).
    pub source_bytes: Option<u64>,
    /// Body bytes received from the origin for this request.
    pub origin_bytes: u64,
    /// Time spent fetching from the origin.
    pub origin_time: Option<Duration>,
    /// Time a transform ran for this request.
    pub transform_time: Option<Duration>,
    /// Time waiting for a transform slot.
    pub queue_time: Option<Duration>,
    /// The tenant (rule or signing key).
    pub tenant: TenantId,
    /// Why the original was sent or the request failed (closed set).
    pub reason: Option<&'static str>,
    /// The client's address (the TCP peer, or what a trusted proxy says).
    pub client: Option<std::net::IpAddr>,
}

impl Record {
    /// A request starting now; counts it in flight when `per_request` (until dropped).
    pub(crate) fn start(per_request: bool) -> Record {
        if per_request {
            metrics::REQUESTS_IN_FLIGHT.inc();
        }
        Record {
            start: Instant::now(),
            counted: per_request,
            route: "proxy",
            cache: "none",
            source: None,
            output: None,
            source_bytes: None,
            origin_bytes: 0,
            origin_time: None,
            transform_time: None,
            queue_time: None,
            tenant: TenantId::NONE,
            reason: None,
            client: None,
        }
    }

    /// Adds origin time (a request may fetch twice: a redirect, a retried flight).
    pub(crate) fn add_origin_time(&mut self, d: Duration) {
        self.origin_time = Some(self.origin_time.unwrap_or_default() + d);
    }

    /// A transform ran for this request: `queued` waiting for a slot, then `ran`.
    pub(crate) fn transformed(&mut self, queued: Duration, ran: Duration) {
        self.queue_time = Some(queued);
        self.transform_time = Some(ran);
    }

    /// Counts the request and writes its access-log line.
    pub(crate) fn finish(&self, tel: &Telemetry, done: Done<'_>) {
        let bytes_out = done.bytes_out;
        let format = self.output.unwrap_or("none");
        if tel.per_request {
            metrics::REQUESTS
                .with_label_values(&[self.route, metrics::status_class(done.status), self.cache])
                .inc();
            metrics::RESPONSE_BYTES
                .with_label_values(&[self.route, format])
                .inc_by(bytes_out);
            if self.origin_bytes > 0 {
                metrics::ORIGIN_BYTES
                    .with_label_values(&[self.route, format])
                    .inc_by(self.origin_bytes);
            }
            let secs = self.transform_time.map_or(0.0, |d| d.as_secs_f64());
            tel.tenants
                .record(self.tenant, self.origin_bytes, bytes_out, secs);
        }
        if !tel.access.enabled() {
            return;
        }
        // Savings of what was sent: only for a whole image body.
        let savings = self
            .source_bytes
            .filter(|n| *n > 0 && done.status == 200 && bytes_out > 0 && self.output.is_some())
            .map(|n| ((1.0 - bytes_out as f64 / n as f64) * 1e4).round() / 1e4);
        let line = Line {
            method: done.method,
            route: self.route,
            status: done.status,
            bytes_out,
            bytes_in: self.origin_bytes,
            duration_ms: access::millis(self.start.elapsed()),
            origin_ms: self.origin_time.map(access::millis),
            transform_ms: self.transform_time.map(access::millis),
            queue_ms: self.queue_time.map(access::millis),
            cache: self.cache,
            source_format: self.source,
            output_format: self.output,
            savings,
            tenant: tel.tenants.name(self.tenant),
            reason: self.reason,
        };
        tel.access
            .write(&line, self.client.or(done.client), done.host, done.path);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if self.counted {
            metrics::REQUESTS_IN_FLIGHT.dec();
        }
    }
}

/// How a request ended (what the server session knows).
pub struct Done<'a> {
    /// Request method.
    pub method: &'a str,
    /// Status sent (0 when none was).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Client address.
    pub client: Option<IpAddr>,
    /// Host header (used only for `paths: hashed`).
    pub host: &'a str,
    /// Path and query (used only for `paths: hashed|full`).
    pub path: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_closed() {
        assert_eq!(source_label("jpeg"), "jpeg");
        assert_eq!(source_label("../etc/passwd"), "unknown");
        assert_eq!(output_label("avif"), "avif");
        assert_eq!(output_label("original; reason=not_smaller"), "original");
        assert_eq!(output_label("anything"), "original");
    }

    #[test]
    fn in_flight_gauge_follows_records() {
        let before = metrics::REQUESTS_IN_FLIGHT.get();
        let r = Record::start(true);
        let off = Record::start(false);
        assert_eq!(metrics::REQUESTS_IN_FLIGHT.get(), before + 1);
        drop(r);
        drop(off);
        assert_eq!(metrics::REQUESTS_IN_FLIGHT.get(), before);
    }
}
