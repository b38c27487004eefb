//! Requests and bytes, connections and rate limits (docs/metrics.md, "Requests and bytes").

metrics! {
    /// Requests answered, by route (`proxy` = streamed by pingora, `image` = examined by
    /// pixgate, `api` = the URL API, `admin` = the admin listener), status class and cache result
    /// (`hit`, `miss`, `bypass`, `none`).
    REQUESTS: IntCounterVec = register_int_counter_vec!(
        "pixgate_requests_total",
        "Requests answered, by route, status class and cache result",
        &["route", "status", "cache"]
    );

    /// Response body bytes sent to clients, by route and response format (`avif`, `webp`,
    /// `jpeg`, `png`, `original` = an image's own bytes, `none` = not an image).
    RESPONSE_BYTES: IntCounterVec = register_int_counter_vec!(
        "pixgate_response_bytes_total",
        "Response body bytes sent to clients, by route and response format",
        &["route", "format"]
    );

    /// Response body bytes received from the origin (or a URL API source), by route and the
    /// format of the response they became.
    ORIGIN_BYTES: IntCounterVec = register_int_counter_vec!(
        "pixgate_origin_bytes_total",
        "Response body bytes received from the origin, by route and response format",
        &["route", "format"]
    );

    /// Time from sending a request to the origin until its body was in hand (image and API
    /// routes) or its header arrived (proxy route).
    ORIGIN_SECONDS: HistogramVec = register_histogram_vec!(
        "pixgate_origin_fetch_seconds",
        "Origin fetch time: whole body on the image and api routes, header on the proxy route",
        &["route"],
        vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    );

    /// Requests being answered now (proxy listener).
    REQUESTS_IN_FLIGHT: IntGauge = register_int_gauge!(
        "pixgate_requests_in_flight",
        "Requests on the proxy listener being answered now"
    );

    /// Requests refused by a rate limit, by scope (`ip`, `tenant`).
    RATE_LIMITED: IntCounterVec = register_int_counter_vec!(
        "pixgate_rate_limited_total",
        "Requests refused with 429 by a rate limit, by scope",
        &["scope"]
    );

    /// Connections closed because a request header was not complete within
    /// `limits.header_timeout` (slowloris).
    HEADER_TIMEOUTS: IntCounter = register_int_counter!(
        "pixgate_header_timeouts_total",
        "Connections closed because a request header took longer than limits.header_timeout"
    );

    /// Client connections open now on the proxy listener (against `limits.max_connections`).
    CONNECTIONS_OPEN: IntGauge = register_int_gauge!(
        "pixgate_connections_open",
        "Client connections open now on the proxy listener (limits.max_connections)"
    );

    /// Connections closed as soon as they were accepted because a cap was reached, by limit
    /// (`total`: `limits.max_connections`, `per_ip`: `limits.max_connections_per_ip`).
    CONNECTIONS_REFUSED: IntCounterVec = register_int_counter_vec!(
        "pixgate_connections_refused_total",
        "Connections closed at accept because a connection cap was reached, by limit",
        &["limit"]
    );

    /// Source bytes held in memory by image requests now (the `limits.max_buffered_bytes` budget).
    BUFFERED_BYTES: IntGauge = register_int_gauge!(
        "pixgate_buffered_bytes",
        "Source image bytes held in memory by requests now (limits.max_buffered_bytes)"
    );

    /// Keys the rate limiters hold now, by scope (`ip`: client addresses, in memory only).
    RATE_LIMIT_KEYS: IntGaugeVec = register_int_gauge_vec!(
        "pixgate_rate_limit_keys",
        "Keys held by the rate limiters now (client addresses or tenants), by scope",
        &["scope"]
    );
}
