//! The running build and its rules (docs/metrics.md, "Process").

metrics! {
    /// Always 1; the labels say which build is running.
    BUILD_INFO: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_build_info",
        "Always 1: the running pixgate version and its pingora version",
        &["version", "pingora"]
    );

    /// Rule reloads, by outcome (`ok`, `error`).
    RULES_RELOADS: IntCounterVec = register_int_counter_vec!(
        "pixgate_rules_reloads_total",
        "Rule reloads, by outcome",
        &["outcome"]
    );

    /// TLS certificate reloads on SIGHUP, by outcome (`ok`, `error`: the previous certificate
    /// stays).
    TLS_RELOADS: IntCounterVec = register_int_counter_vec!(
        "pixgate_tls_reloads_total",
        "TLS certificate reloads (SIGHUP), by outcome",
        &["outcome"]
    );

    /// Rules in the live rule set.
    RULES_LOADED: IntGauge = register_int_gauge!(
        "pixgate_rules_loaded",
        "Rules in the live rule set"
    );
}
