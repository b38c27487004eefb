//! Telemetry: Prometheus metrics (default registry, served on the admin listener), per-tenant
//! metering, the privacy-preserving access log and the origin health `/readyz` reports.

pub mod access;
pub mod config;
pub mod health;
pub(crate) mod metrics;
pub mod record;
pub mod tenant;

pub use record::{Done, Record, Telemetry};
