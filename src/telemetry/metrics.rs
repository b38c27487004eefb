//! Metric names and label sets in one place. Every label value comes from a closed set
//! (formats, reasons, routes, status classes), so cardinality stays bounded.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter_vec, Histogram, HistogramVec,
    IntCounterVec,
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

/// Touches every metric so `/metrics` lists them from the start.
pub fn init() {
    Lazy::force(&REQUESTS);
    Lazy::force(&TRANSFORMS);
    Lazy::force(&BYTES_IN);
    Lazy::force(&BYTES_OUT);
    Lazy::force(&TRANSFORM_SECONDS);
    Lazy::force(&QUEUE_SECONDS);
    Lazy::force(&ORIGIN_ERRORS);
}
