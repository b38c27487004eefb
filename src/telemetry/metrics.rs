//! Metric names and label sets in one place. Every label value comes from a closed set
//! (formats, reasons, routes, status classes), so cardinality stays bounded.

use once_cell::sync::Lazy;
use prometheus::{
    register_counter_vec, register_histogram, register_histogram_vec, register_int_counter,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec, CounterVec, Histogram,
    HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

/// Requests answered, by route (`proxy` = streamed by pingora, `image` = examined by
/// pixgate, `api` = the URL API, `admin` = the admin listener), status class and cache result
/// (`hit`, `miss`, `bypass`, `none`).
pub static REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_requests_total",
        "Requests answered, by route, status class and cache result",
        &["route", "status", "cache"]
    )
    .expect("metric registers once")
});

/// Response body bytes sent to clients, by route and response format (`avif`, `webp`,
/// `jpeg`, `png`, `original` = an image's own bytes, `none` = not an image).
pub static RESPONSE_BYTES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_response_bytes_total",
        "Response body bytes sent to clients, by route and response format",
        &["route", "format"]
    )
    .expect("metric registers once")
});

/// Response body bytes received from the origin (or a URL API source), by route and the
/// format of the response they became.
pub static ORIGIN_BYTES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_origin_bytes_total",
        "Response body bytes received from the origin, by route and response format",
        &["route", "format"]
    )
    .expect("metric registers once")
});

/// Time from sending a request to the origin until its body was in hand (image and API
/// routes) or its header arrived (proxy route).
pub static ORIGIN_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "pixgate_origin_fetch_seconds",
        "Origin fetch time: whole body on the image and api routes, header on the proxy route",
        &["route"],
        vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    )
    .expect("metric registers once")
});

/// Output size saved by a transform: `1 - output/input` (0 when the original was sent).
pub static SAVINGS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "pixgate_image_savings_ratio",
        "Share of the source bytes a transform saved (1 - output/input), by output format",
        &["output"],
        vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    )
    .expect("metric registers once")
});

/// Requests being answered now (proxy listener).
pub static REQUESTS_IN_FLIGHT: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_requests_in_flight",
        "Requests on the proxy listener being answered now"
    )
    .expect("metric registers once")
});

/// Transforms running now.
pub static TRANSFORMS_RUNNING: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_transforms_in_flight",
        "Transforms running now (at most pixgate_transform_slots)"
    )
    .expect("metric registers once")
});

/// Transforms waiting for a slot now.
pub static TRANSFORMS_QUEUED: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_transforms_queued",
        "Transforms waiting for a slot now"
    )
    .expect("metric registers once")
});

/// Configured transform slots (`limits.max_concurrent_transforms`).
pub static TRANSFORM_SLOTS: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_transform_slots",
        "Transforms allowed to run at once (limits.max_concurrent_transforms)"
    )
    .expect("metric registers once")
});

/// Requests refused by a rate limit, by scope (`ip`, `tenant`).
pub static RATE_LIMITED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_rate_limited_total",
        "Requests refused with 429 by a rate limit, by scope",
        &["scope"]
    )
    .expect("metric registers once")
});

/// Connections closed because a request header was not complete within
/// `limits.header_timeout` (slowloris).
pub static HEADER_TIMEOUTS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "pixgate_header_timeouts_total",
        "Connections closed because a request header took longer than limits.header_timeout"
    )
    .expect("metric registers once")
});

/// Client connections open now on the proxy listener (against `limits.max_connections`).
pub static CONNECTIONS_OPEN: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_connections_open",
        "Client connections open now on the proxy listener (limits.max_connections)"
    )
    .expect("metric registers once")
});

/// Connections closed as soon as they were accepted because a cap was reached, by limit
/// (`total`: `limits.max_connections`, `per_ip`: `limits.max_connections_per_ip`).
pub static CONNECTIONS_REFUSED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_connections_refused_total",
        "Connections closed at accept because a connection cap was reached, by limit",
        &["limit"]
    )
    .expect("metric registers once")
});

/// Source bytes held in memory by image requests now (the `limits.max_buffered_bytes` budget).
pub static BUFFERED_BYTES: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_buffered_bytes",
        "Source image bytes held in memory by requests now (limits.max_buffered_bytes)"
    )
    .expect("metric registers once")
});

/// Expired variants served because the origin failed (`stale-if-error`), by cause.
pub static CACHE_STALE: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_cache_stale_served_total",
        "Expired variants served within their stale-if-error window because the origin failed",
        &["cause"]
    )
    .expect("metric registers once")
});

/// Image-path origin requests sent again because a pooled connection had been closed by the
/// origin while idle (the request had not reached it).
pub static ORIGIN_RETRIES: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "pixgate_origin_stale_connection_retries_total",
        "Origin requests sent again after a pooled connection turned out closed"
    )
    .expect("metric registers once")
});

/// Keys the rate limiters hold now, by scope (`ip`: client addresses, in memory only).
pub static RATE_LIMIT_KEYS: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "pixgate_rate_limit_keys",
        "Keys held by the rate limiters now (client addresses or tenants), by scope",
        &["scope"]
    )
    .expect("metric registers once")
});

/// Always 1; the labels say which build is running.
pub static BUILD_INFO: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "pixgate_build_info",
        "Always 1: the running pixgate version and its pingora version",
        &["version", "pingora"]
    )
    .expect("metric registers once")
});

/// The configured `cache.max_retention`, for alerts against the oldest entry's age.
pub static CACHE_MAX_RETENTION: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_cache_max_retention_seconds",
        "The configured retention limit (cache.max_retention)"
    )
    .expect("metric registers once")
});

/// Requests per tenant.
pub static TENANT_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_tenant_requests_total",
        "Requests, by tenant (metrics.tenants, none, other)",
        &["tenant"]
    )
    .expect("metric registers once")
});

/// Origin bytes per tenant.
pub static TENANT_ORIGIN_BYTES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_tenant_origin_bytes_total",
        "Response body bytes received from the origin, by tenant",
        &["tenant"]
    )
    .expect("metric registers once")
});

/// Response bytes per tenant.
pub static TENANT_RESPONSE_BYTES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_tenant_response_bytes_total",
        "Response body bytes sent to clients, by tenant",
        &["tenant"]
    )
    .expect("metric registers once")
});

/// Transform time per tenant.
pub static TENANT_TRANSFORM_SECONDS: Lazy<CounterVec> = Lazy::new(|| {
    register_counter_vec!(
        "pixgate_tenant_transform_seconds_total",
        "Transform time spent for requests, by tenant",
        &["tenant"]
    )
    .expect("metric registers once")
});

/// Images examined, by source format, output format (`original` when the source was sent) and
/// outcome (`ok` or a fallback reason).
pub static TRANSFORMS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_image_transforms_total",
        "Images examined, by source format, output format and outcome",
        &["source", "output", "outcome"]
    )
    .expect("metric registers once")
});

/// Source bytes that went into transforms, by output format (`original` when sent as is).
pub static BYTES_IN: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_transform_input_bytes_total",
        "Source image bytes examined by transforms, by output format",
        &["output"]
    )
    .expect("metric registers once")
});

/// Bytes transforms produced, by output format (the source's size for `original`).
pub static BYTES_OUT: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_transform_output_bytes_total",
        "Image bytes produced by transforms, by output format",
        &["output"]
    )
    .expect("metric registers once")
});

/// Transform wall time (decode + encode), by output format.
pub static TRANSFORM_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "pixgate_transform_seconds",
        "Transform wall time (decode + encode), by output format",
        &["output"],
        vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    )
    .expect("metric registers once")
});

/// Time spent waiting for a transform slot.
pub static QUEUE_SECONDS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram!(
        "pixgate_transform_queue_seconds",
        "Time spent waiting for a transform slot",
        vec![0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0]
    )
    .expect("metric registers once")
});

/// Origin fetch failures on the image path, by kind.
pub static ORIGIN_ERRORS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_origin_errors_total",
        "Origin fetch failures on the image path, by kind",
        &["kind"]
    )
    .expect("metric registers once")
});

/// Image-path requests by cache status (`hit`, `miss`, `bypass`).
pub static CACHE_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_cache_requests_total",
        "Image-path requests by cache status",
        &["status"]
    )
    .expect("metric registers once")
});

/// Cache hits by tier (`memory`, `disk`).
pub static CACHE_HITS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!("pixgate_cache_hits_total", "Cache hits by tier", &["tier"])
        .expect("metric registers once")
});

/// Requests that waited for another request's miss instead of fetching (coalescing).
pub static CACHE_COALESCED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "pixgate_cache_coalesced_total",
        "Requests answered by another request's fetch and transform (coalescing)"
    )
    .expect("metric registers once")
});

/// Responses not stored, by reason (`no_store`, `private`, `set_cookie`, `cookie`,
/// `transient`...).
pub static CACHE_NOT_STORED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_cache_not_stored_total",
        "Responses not stored, by reason",
        &["reason"]
    )
    .expect("metric registers once")
});

/// Entries removed by the cache itself, by tier and reason (`size`, `expired`, `idle`,
/// `corrupt`, `purge`).
pub static CACHE_EVICTIONS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_cache_evictions_total",
        "Entries removed by the cache, by tier and reason",
        &["tier", "reason"]
    )
    .expect("metric registers once")
});

/// Entries removed by purge requests (both tiers).
pub static CACHE_PURGED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "pixgate_cache_purged_total",
        "Entries removed by purge requests (memory and disk)"
    )
    .expect("metric registers once")
});

/// Background AVIF encodes, by outcome (`started`, `stored`, `not_stored`, `skipped`).
pub static CACHE_BACKGROUND: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_cache_background_total",
        "AVIF encodes that outlived their request's budget, by outcome",
        &["outcome"]
    )
    .expect("metric registers once")
});

/// WebP answers given while an AVIF variant was pending.
pub static CACHE_AVIF_FALLBACK: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "pixgate_cache_avif_fallback_total",
        "WebP answers given because AVIF was not ready within its budget"
    )
    .expect("metric registers once")
});

/// Bytes held, by tier (updated by the sweeper).
pub static CACHE_BYTES: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!("pixgate_cache_bytes", "Bytes held, by tier", &["tier"])
        .expect("metric registers once")
});

/// Entries held, by tier (updated by the sweeper).
pub static CACHE_ENTRIES: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!("pixgate_cache_entries", "Entries held, by tier", &["tier"])
        .expect("metric registers once")
});

/// Age of the oldest entry in either tier, in seconds (0 when empty).
pub static CACHE_OLDEST: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "pixgate_cache_oldest_entry_age_seconds",
        "Age of the oldest cached entry in either tier (0 when empty)"
    )
    .expect("metric registers once")
});

/// URL API requests refused or failed before a transform, by kind (`signature`,
/// `not_allowed`, `forbidden_address`, `too_large`, `not_image`, `timeout`, ...).
pub static REMOTE_REFUSALS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_remote_refusals_total",
        "URL API requests refused before a transform, by kind",
        &["kind"]
    )
    .expect("metric registers once")
});

/// Rule reloads, by outcome (`ok`, `error`).
pub static RULES_RELOADS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_rules_reloads_total",
        "Rule reloads, by outcome",
        &["outcome"]
    )
    .expect("metric registers once")
});

/// Rules in the live rule set.
pub static RULES_LOADED: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!("pixgate_rules_loaded", "Rules in the live rule set")
        .expect("metric registers once")
});

/// The pingora version pixgate is built on (Cargo.lock pins it).
pub const PINGORA_VERSION: &str = "0.9.1";

/// The status class label (`2xx`...) for a status code.
pub fn status_class(code: u16) -> &'static str {
    match code {
        // No response: the client went away first (or the connection broke before one).
        0 => "aborted",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts a transformed image: transforms, bytes in/out, time.
pub fn record_transformed(
    src: crate::image::format::SourceFormat,
    out: crate::image::format::OutputFormat,
    bytes_in: usize,
    bytes_out: usize,
    secs: f64,
) {
    TRANSFORMS
        .with_label_values(&[src.name(), out.name(), "ok"])
        .inc();
    BYTES_IN
        .with_label_values(&[out.name()])
        .inc_by(bytes_in as u64);
    BYTES_OUT
        .with_label_values(&[out.name()])
        .inc_by(bytes_out as u64);
    TRANSFORM_SECONDS
        .with_label_values(&[out.name()])
        .observe(secs);
    if bytes_in > 0 {
        SAVINGS
            .with_label_values(&[out.name()])
            .observe(1.0 - (bytes_out as f64 / bytes_in as f64).min(1.0));
    }
}

/// Counts an image sent as its original bytes, with the reason.
pub fn record_original(src: &str, reason: crate::image::Reason, bytes_in: usize, bytes_out: usize) {
    TRANSFORMS
        .with_label_values(&[src, "original", reason.label()])
        .inc();
    BYTES_IN
        .with_label_values(&["original"])
        .inc_by(bytes_in as u64);
    BYTES_OUT
        .with_label_values(&["original"])
        .inc_by(bytes_out as u64);
}

/// Touches every metric so `/metrics` lists them from the start, and sets the constant ones.
pub fn init() {
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION"), PINGORA_VERSION])
        .set(1);
    // Vectors show in the text only once a label set exists: create the common ones at 0,
    // so dashboards and `rate()` see them from the start.
    for scope in ["ip", "tenant"] {
        RATE_LIMITED.with_label_values(&[scope]);
        RATE_LIMIT_KEYS.with_label_values(&[scope]);
    }
    const FORMATS: [&str; 6] = ["avif", "webp", "jpeg", "png", "original", "none"];
    for status in ["2xx", "3xx", "4xx", "5xx"] {
        REQUESTS.with_label_values(&["proxy", status, "none"]);
        REQUESTS.with_label_values(&["admin", status, "none"]);
        for route in ["image", "api"] {
            for cache in ["hit", "miss", "bypass", "stale", "none"] {
                REQUESTS.with_label_values(&[route, status, cache]);
            }
        }
    }
    for route in ["proxy", "image", "api"] {
        ORIGIN_SECONDS.with_label_values(&[route]);
        for f in FORMATS {
            if route != "proxy" || f == "none" {
                RESPONSE_BYTES.with_label_values(&[route, f]);
                ORIGIN_BYTES.with_label_values(&[route, f]);
            }
        }
    }
    for out in crate::image::format::OutputFormat::ALL {
        SAVINGS.with_label_values(&[out.name()]);
        TRANSFORM_SECONDS.with_label_values(&[out.name()]);
        BYTES_IN.with_label_values(&[out.name()]);
        BYTES_OUT.with_label_values(&[out.name()]);
        for src in ["jpeg", "png", "gif", "webp"] {
            TRANSFORMS.with_label_values(&[src, out.name(), "ok"]);
        }
    }
    for kind in [
        "connect",
        "connect_timeout",
        "timeout",
        "io",
        "protocol",
        "other",
    ] {
        ORIGIN_ERRORS.with_label_values(&[kind]);
    }
    for status in ["hit", "miss", "bypass", "stale"] {
        CACHE_REQUESTS.with_label_values(&[status]);
    }
    for cause in ["origin_error", "origin_5xx"] {
        CACHE_STALE.with_label_values(&[cause]);
    }
    Lazy::force(&HEADER_TIMEOUTS);
    Lazy::force(&CONNECTIONS_OPEN);
    for limit in ["total", "per_ip"] {
        CONNECTIONS_REFUSED.with_label_values(&[limit]);
    }
    Lazy::force(&ORIGIN_RETRIES);
    Lazy::force(&BUFFERED_BYTES);
    for tier in ["memory", "disk"] {
        CACHE_HITS.with_label_values(&[tier]);
        CACHE_BYTES.with_label_values(&[tier]);
        CACHE_ENTRIES.with_label_values(&[tier]);
    }
    Lazy::force(&RESPONSE_BYTES);
    Lazy::force(&ORIGIN_BYTES);
    Lazy::force(&ORIGIN_SECONDS);
    Lazy::force(&SAVINGS);
    Lazy::force(&REQUESTS_IN_FLIGHT);
    Lazy::force(&TRANSFORMS_RUNNING);
    Lazy::force(&TRANSFORMS_QUEUED);
    Lazy::force(&TRANSFORM_SLOTS);
    Lazy::force(&CACHE_MAX_RETENTION);
    Lazy::force(&TENANT_REQUESTS);
    Lazy::force(&TENANT_ORIGIN_BYTES);
    Lazy::force(&TENANT_RESPONSE_BYTES);
    Lazy::force(&TENANT_TRANSFORM_SECONDS);
    Lazy::force(&REQUESTS);
    Lazy::force(&TRANSFORMS);
    Lazy::force(&BYTES_IN);
    Lazy::force(&BYTES_OUT);
    Lazy::force(&TRANSFORM_SECONDS);
    Lazy::force(&QUEUE_SECONDS);
    Lazy::force(&ORIGIN_ERRORS);
    Lazy::force(&REMOTE_REFUSALS);
    Lazy::force(&RULES_RELOADS);
    Lazy::force(&RULES_LOADED);
    Lazy::force(&CACHE_REQUESTS);
    Lazy::force(&CACHE_HITS);
    Lazy::force(&CACHE_COALESCED);
    Lazy::force(&CACHE_NOT_STORED);
    Lazy::force(&CACHE_EVICTIONS);
    Lazy::force(&CACHE_PURGED);
    Lazy::force(&CACHE_BACKGROUND);
    Lazy::force(&CACHE_AVIF_FALLBACK);
    Lazy::force(&CACHE_BYTES);
    Lazy::force(&CACHE_ENTRIES);
    Lazy::force(&CACHE_OLDEST);
}
