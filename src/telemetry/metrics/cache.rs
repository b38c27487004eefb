//! The variant cache, both tiers (docs/metrics.md, "Cache").

metrics! {
    /// Shield lookups (`cache.scope: all`) by result (`hit`, `miss`; `revalidated`: a miss
    /// whose stale entry the origin confirmed with a 304; `stale`: a stale entry answered
    /// while refreshed in the background (`stale-while-revalidate`) or for a failing origin
    /// (`stale-if-error`)).
    SHIELD_REQUESTS: IntCounterVec = register_int_counter_vec!(
        "pixgate_shield_requests_total",
        "Origin-shield lookups of non-image GET/HEAD requests, by result",
        &["status"]
    );

    /// Shield responses stored.
    SHIELD_STORED: IntCounter = register_int_counter!(
        "pixgate_shield_stored_total",
        "Non-image responses stored by the origin shield"
    );

    /// Background refreshes of stale shield entries (`stale-while-revalidate`) by outcome
    /// (`not_modified`, `replaced`: a new answer, stored when storable, `origin_error`).
    SHIELD_REFRESHES: IntCounterVec = register_int_counter_vec!(
        "pixgate_shield_refreshes_total",
        "Background refreshes of stale shield entries (stale-while-revalidate), by outcome",
        &["outcome"]
    );

    /// Shield entries removed because an unsafe request changed their URL.
    SHIELD_INVALIDATED: IntCounter = register_int_counter!(
        "pixgate_shield_invalidated_total",
        "Shield entries removed by a successful POST/PUT/DELETE/PATCH on their URL or Location"
    );

    /// Body bytes answered from the shield (the origin did not send them again).
    SHIELD_BYTES_SAVED: IntCounter = register_int_counter!(
        "pixgate_shield_bytes_saved_total",
        "Body bytes answered from the origin shield instead of the origin"
    );

    /// Image-path requests by cache status (`hit`, `miss`, `bypass`).
    CACHE_REQUESTS: IntCounterVec = register_int_counter_vec!(
        "pixgate_cache_requests_total",
        "Image-path requests by cache status",
        &["status"]
    );

    /// Cache hits by tier (`memory`, `disk`).
    CACHE_HITS: IntCounterVec = register_int_counter_vec!(
        "pixgate_cache_hits_total",
        "Cache hits by tier",
        &["tier"]
    );

    /// Requests that waited for another request's miss instead of fetching (coalescing).
    CACHE_COALESCED: IntCounter = register_int_counter!(
        "pixgate_cache_coalesced_total",
        "Requests answered by another request's fetch and transform (coalescing)"
    );

    /// Responses not stored, by reason (`no_store`, `private`, `set_cookie`, `cookie`,
    /// `transient`...).
    CACHE_NOT_STORED: IntCounterVec = register_int_counter_vec!(
        "pixgate_cache_not_stored_total",
        "Responses not stored, by reason",
        &["reason"]
    );

    /// Entries removed by the cache itself, by tier and reason (`size`, `expired`, `idle`,
    /// `corrupt`, `purge`).
    CACHE_EVICTIONS: IntCounterVec = register_int_counter_vec!(
        "pixgate_cache_evictions_total",
        "Entries removed by the cache, by tier and reason",
        &["tier", "reason"]
    );

    /// Entries removed by purge requests (both tiers).
    CACHE_PURGED: IntCounter = register_int_counter!(
        "pixgate_cache_purged_total",
        "Entries removed by purge requests (memory and disk)"
    );

    /// Background AVIF encodes, by outcome (`started`, `stored`, `not_stored`, `skipped`).
    CACHE_BACKGROUND: IntCounterVec = register_int_counter_vec!(
        "pixgate_cache_background_total",
        "AVIF encodes that outlived their request (past its budget, or predicted late), by outcome",
        &["outcome"]
    );

    /// WebP answers given while an AVIF variant was pending.
    CACHE_AVIF_FALLBACK: IntCounter = register_int_counter!(
        "pixgate_cache_avif_fallback_total",
        "WebP answers given because AVIF was not ready within its budget"
    );

    /// Bytes held, by store (`variants`, `uploads`) and tier (updated by the sweeper).
    CACHE_BYTES: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_cache_bytes",
        "Bytes held, by store and tier",
        &["store", "tier"]
    );

    /// Entries held, by store and tier (updated by the sweeper).
    CACHE_ENTRIES: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_cache_entries",
        "Entries held, by store and tier",
        &["store", "tier"]
    );

    /// Age of the oldest entry in either tier of a store, in seconds (0 when empty).
    CACHE_OLDEST: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_cache_oldest_entry_age_seconds",
        "Age of the oldest entry in either tier of a store (0 when empty)",
        &["store"]
    );

    /// A store's retention limit (`cache.max_retention`, `upload.retention`), for alerts
    /// against its oldest entry's age.
    CACHE_MAX_RETENTION: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_cache_max_retention_seconds",
        "A store's retention limit (cache.max_retention, upload.retention)",
        &["store"]
    );
}
