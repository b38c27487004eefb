//! The upload service (docs/metrics.md, "Uploads"). Its transforms are also counted with the
//! proxy's in the transform metrics, and its tenants' usage in the tenant meters.

metrics! {
    /// Files uploaded, by outcome: `stored` (a link was handed out), or why not (`bad_request`,
    /// `too_large`, `not_image`, `unreadable`, `denied`, `limited`, `unauthorized`,
    /// `overloaded`, `failed`).
    UPLOADS: IntCounterVec = register_int_counter_vec!(
        "pixgate_uploads_total",
        "Upload requests' files, by outcome",
        &["outcome"]
    );

    /// Bytes received in stored uploads (`in`) and kept as their results (`out`).
    UPLOAD_BYTES: IntCounterVec = register_int_counter_vec!(
        "pixgate_upload_bytes_total",
        "Bytes of stored uploads (in) and of their results (out)",
        &["direction"]
    );

    /// Savings of each stored result, `1 - out/in` (0 when the original was kept).
    UPLOAD_SAVINGS: Histogram = register_histogram!(
        "pixgate_upload_savings_ratio",
        "Savings of each stored upload result (1 - out/in)",
        vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    );

    /// Upload processing time (screening, transform, store), per file.
    UPLOAD_SECONDS: Histogram = register_histogram!(
        "pixgate_upload_seconds",
        "Upload processing time per file (screening, transform, store)",
        vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    );

    /// What happened to links: `download`, `zip`, `erased` (DELETE), `downloaded_once` (erased
    /// by `delete_after_download`), `expired` (removed by the sweeper at its deadline or idle
    /// limit), `not_found`.
    UPLOAD_LINKS: IntCounterVec = register_int_counter_vec!(
        "pixgate_upload_links_total",
        "Upload link events: downloads, erasures, expiries, misses",
        &["event"]
    );

    /// Requests refused by a per-address limit: `requests`, `uploads_per_hour`,
    /// `bytes_per_day`.
    UPLOAD_LIMITED: IntCounterVec = register_int_counter_vec!(
        "pixgate_upload_limited_total",
        "Upload listener requests refused by a per-address limit",
        &["limit"]
    );

    /// Client addresses held by the upload listener's limiters now (forgotten once refilled).
    UPLOAD_LIMIT_KEYS: IntGauge = register_int_gauge!(
        "pixgate_upload_limit_keys",
        "Client addresses held by the upload listener's limiters"
    );
}
