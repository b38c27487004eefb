//! Per-tenant metering (docs/metrics.md, "Tenants").

metrics! {
    /// Requests per tenant.
    TENANT_REQUESTS: IntCounterVec = register_int_counter_vec!(
        "pixgate_tenant_requests_total",
        "Requests, by tenant (metrics.tenants, none, other)",
        &["tenant"]
    );

    /// Origin bytes per tenant.
    TENANT_ORIGIN_BYTES: IntCounterVec = register_int_counter_vec!(
        "pixgate_tenant_origin_bytes_total",
        "Response body bytes received from the origin, by tenant",
        &["tenant"]
    );

    /// Response bytes per tenant.
    TENANT_RESPONSE_BYTES: IntCounterVec = register_int_counter_vec!(
        "pixgate_tenant_response_bytes_total",
        "Response body bytes sent to clients, by tenant",
        &["tenant"]
    );

    /// Transform time per tenant.
    TENANT_TRANSFORM_SECONDS: CounterVec = register_counter_vec!(
        "pixgate_tenant_transform_seconds_total",
        "Transform time spent for requests, by tenant",
        &["tenant"]
    );
}
