//! The shared tier in Redis (docs/metrics.md, "Shared tier").

metrics! {
    /// Redis operations by kind (`get`, `put`, `lock`, `delete`, `purge`, `publish`) and
    /// result (`hit`, `miss`, `ok`, `busy`: a lock held by another node, `error`, `timeout`,
    /// `skipped`: the breaker is open, `too_large`: the entry stays local).
    SHARED_OPS: IntCounterVec = register_int_counter_vec!(
        "pixgate_shared_ops_total",
        "Shared-tier (Redis) operations, by operation and result",
        &["op", "result"]
    );

    /// Time of one Redis operation, sealing excluded.
    SHARED_SECONDS: HistogramVec = register_histogram_vec!(
        "pixgate_shared_op_seconds",
        "Shared-tier (Redis) operation time, by operation",
        &["op"],
        vec![0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]
    );

    /// 1 while the breaker is open (Redis is skipped).
    SHARED_BREAKER_OPEN: IntGauge = register_int_gauge!(
        "pixgate_shared_breaker_open",
        "1 while the shared tier's circuit breaker is open and Redis is skipped"
    );

    /// Sealed bytes read from and written to Redis (`read`, `written`).
    SHARED_BYTES: IntCounterVec = register_int_counter_vec!(
        "pixgate_shared_bytes_total",
        "Sealed bytes read from and written to the shared tier",
        &["direction"]
    );

    /// Purges from other nodes applied to this node's tiers.
    SHARED_PURGES_RECEIVED: IntCounter = register_int_counter!(
        "pixgate_shared_purges_received_total",
        "Purge messages from other nodes applied to this node's memory and disk tiers"
    );

    /// Times this node dropped its local tiers because it may have missed a purge
    /// (`reconnect`: first contact or back after a disconnection with tiers to drop,
    /// `epoch`: the cluster's purge epoch moved while it was away).
    SHARED_LOCAL_DROPS: IntCounterVec = register_int_counter_vec!(
        "pixgate_shared_local_drops_total",
        "Local tiers dropped because purges may have been missed, by reason",
        &["reason"]
    );

    /// Cluster-wide coalescing of misses: `won` (this node makes the variant), `waited` (another
    /// node's variant came from Redis), `released` (the other node's claim ended without a
    /// value: this node makes it), `gave_up` (the wait's limit passed).
    SHARED_COALESCE: IntCounterVec = register_int_counter_vec!(
        "pixgate_shared_coalesce_total",
        "Cluster-wide coalescing of misses, by result",
        &["result"]
    );
}

/// Creates the label sets dashboards read, at 0.
pub(super) fn init() {
    let results = [
        "hit",
        "miss",
        "ok",
        "busy",
        "error",
        "timeout",
        "skipped",
        "too_large",
    ];
    for op in ["get", "put", "lock", "delete", "purge", "publish"] {
        SHARED_SECONDS.with_label_values(&[op]);
        for r in results {
            SHARED_OPS.with_label_values(&[op, r]);
        }
    }
    for d in ["read", "written"] {
        SHARED_BYTES.with_label_values(&[d]);
    }
    for r in ["reconnect", "epoch"] {
        SHARED_LOCAL_DROPS.with_label_values(&[r]);
    }
    for r in ["won", "waited", "released", "gave_up"] {
        SHARED_COALESCE.with_label_values(&[r]);
    }
}
