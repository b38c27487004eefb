//! Metrics (Prometheus, default registry served by pingora-prometheus on the admin listener).

pub mod metrics;
