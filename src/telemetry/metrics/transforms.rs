//! Transforms, transform slots and image-path origin fetches (docs/metrics.md, "Transforms").

metrics! {
    /// Images examined, by source format, output format (`original` when the source was sent) and
    /// outcome (`ok` or a fallback reason).
    TRANSFORMS: IntCounterVec = register_int_counter_vec!(
        "pixgate_image_transforms_total",
        "Images examined, by source format, output format and outcome",
        &["source", "output", "outcome"]
    );

    /// Transform wall time (decode + encode), by output format.
    TRANSFORM_SECONDS: HistogramVec = register_histogram_vec!(
        "pixgate_transform_seconds",
        "Transform wall time (decode + encode), by output format",
        &["output"],
        vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    );

    /// Time spent waiting for a transform slot.
    QUEUE_SECONDS: Histogram = register_histogram!(
        "pixgate_transform_queue_seconds",
        "Time spent waiting for a transform slot",
        vec![0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0]
    );

    /// Output size saved by a transform: `1 - output/input` (0 when the original was sent).
    SAVINGS: HistogramVec = register_histogram_vec!(
        "pixgate_image_savings_ratio",
        "Share of the source bytes a transform saved (1 - output/input), by output format",
        &["output"],
        vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    );

    /// Source bytes that went into transforms, by output format (`original` when sent as is).
    BYTES_IN: IntCounterVec = register_int_counter_vec!(
        "pixgate_transform_input_bytes_total",
        "Source image bytes examined by transforms, by output format",
        &["output"]
    );

    /// Bytes transforms produced, by output format (the source's size for `original`).
    BYTES_OUT: IntCounterVec = register_int_counter_vec!(
        "pixgate_transform_output_bytes_total",
        "Image bytes produced by transforms, by output format",
        &["output"]
    );

    /// Transforms running now.
    TRANSFORMS_RUNNING: IntGauge = register_int_gauge!(
        "pixgate_transforms_in_flight",
        "Transforms running now (at most pixgate_transform_slots)"
    );

    /// Transforms waiting for a slot now.
    TRANSFORMS_QUEUED: IntGauge = register_int_gauge!(
        "pixgate_transforms_queued",
        "Transforms waiting for a slot now"
    );

    /// Configured transform slots (`limits.max_concurrent_transforms`).
    TRANSFORM_SLOTS: IntGauge = register_int_gauge!(
        "pixgate_transform_slots",
        "Transforms allowed to run at once (limits.max_concurrent_transforms)"
    );

    /// Origin fetch failures on the image path, by kind.
    ORIGIN_ERRORS: IntCounterVec = register_int_counter_vec!(
        "pixgate_origin_errors_total",
        "Origin fetch failures on the image path, by kind",
        &["kind"]
    );

    /// Image-path origin requests sent again because a pooled connection had been closed by the
    /// origin while idle (the request had not reached it).
    ORIGIN_RETRIES: IntCounter = register_int_counter!(
        "pixgate_origin_stale_connection_retries_total",
        "Origin requests sent again after a pooled connection turned out closed"
    );

    /// Expired variants served because the origin failed (`stale-if-error`), by cause.
    CACHE_STALE: IntCounterVec = register_int_counter_vec!(
        "pixgate_cache_stale_served_total",
        "Expired variants served within their stale-if-error window because the origin failed",
        &["cause"]
    );

    /// URL API requests refused or failed before a transform, by kind (`signature`,
    /// `not_allowed`, `forbidden_address`, `too_large`, `not_image`, `timeout`, ...).
    REMOTE_REFUSALS: IntCounterVec = register_int_counter_vec!(
        "pixgate_remote_refusals_total",
        "URL API requests refused before a transform, by kind",
        &["kind"]
    );
}
