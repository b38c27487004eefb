//! Metric names and label sets in one place. Every label value comes from a closed set
//! (formats, reasons, routes, status classes), so cardinality stays bounded.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Histogram, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec,
};

/// Requests answered, by route (`proxy` = pingora passthrough, `image` = examined by pixgate)
/// and status class.
pub static REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_requests_total",
        "Requests answered, by route and status class",
        &["route", "status"]
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

/// Image bytes received from the origin, by output format.
pub static BYTES_IN: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_image_bytes_in_total",
        "Image body bytes received from the origin, by output format",
        &["output"]
    )
    .expect("metric registers once")
});

/// Image bytes sent to clients, by output format.
pub static BYTES_OUT: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "pixgate_image_bytes_out_total",
        "Image body bytes sent to clients, by output format",
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

/// Responses not stored, by reason (`no_store`, `private`, `set_cookie`, `transient`...).
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

/// The status class label (`2xx`...) for a status code.
pub fn status_class(code: u16) -> &'static str {
    match code {
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

/// Touches every metric so `/metrics` lists them from the start.
pub fn init() {
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
