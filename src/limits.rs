//! The `limits` section: what protects the process from expensive or hostile input (source
//! sizes, transform slots and deadlines, buffered bytes, connections and their timeouts).
//! Enforced by the image pool, the fetch, `proxy::budget`, `proxy::conns` and `proxy::deadline`;
//! a leaf besides `units`, so every one of them may name it.

use crate::units::{ByteSize, Dur};
use serde::{Deserialize, Serialize};

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
