//! Upload screening (docs/metrics.md, "Screening").

metrics! {
    /// Uploads screened, by outcome: `allow`, `allow_failed_open`, a denial (`digest`,
    /// `near_duplicate`, `hook`, `hook_failed_closed`) or unreadable (`not_image`, `bomb`,
    /// `undecodable`).
    SCREENING: IntCounterVec = register_int_counter_vec!(
        "pixgate_screening_total",
        "Uploads screened, by outcome",
        &["outcome"]
    );

    /// Screening hook exchanges, by result: `allow`, `deny`, `timeout`, `connection`,
    /// `status`, `answer`.
    SCREENING_HOOK: IntCounterVec = register_int_counter_vec!(
        "pixgate_screening_hook_requests_total",
        "Screening hook exchanges, by result",
        &["result"]
    );

    /// Screening hook exchange time.
    SCREENING_HOOK_SECONDS: Histogram = register_histogram!(
        "pixgate_screening_hook_seconds",
        "Screening hook exchange time (connect to answer)",
        vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
    );

    /// Entries in the live deny list, by kind (`sha256`, `dhash`).
    SCREENING_ENTRIES: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_screening_deny_list_entries",
        "Entries in the live screening deny list, by kind",
        &["kind"]
    );

    /// Deny list reloads after a change, by result (`ok`, `error`: the previous list stays).
    SCREENING_RELOADS: IntCounterVec = register_int_counter_vec!(
        "pixgate_screening_reloads_total",
        "Screening deny list reloads after a change, by result",
        &["result"]
    );
}
