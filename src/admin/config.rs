//! The `admin` section: the admin listener's address and the purge token.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The admin listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener: `/metrics` (Prometheus text), `/healthz`, `/readyz`,
    /// `/cache/stats`, `/cache/purge`. Default: off.
    pub listen: Option<SocketAddr>,
    /// Bearer token required by `/cache/purge`; without one, purging is refused (403).
    /// Default: none.
    pub token: Option<String>,
}
