//! The `admin` section: the admin listener's address and the purge token.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// A file holding the token instead (a mounted Kubernetes or compose secret; surrounding
    /// whitespace ignored), read at start. Default: none.
    pub token_file: Option<PathBuf>,
}

impl AdminConfig {
    /// The purge token: `token`, or the contents of `token_file`.
    pub fn purge_token(&self) -> Result<Option<String>, String> {
        let Some(p) = &self.token_file else {
            return Ok(self.token.clone());
        };
        let t = std::fs::read_to_string(p)
            .map_err(|e| format!("admin.token_file: {}: {e}", p.display()))?;
        let t = t.trim();
        if t.len() < 16 {
            return Err(format!(
                "admin.token_file: {}: the token must be at least 16 characters",
                p.display()
            ));
        }
        Ok(Some(t.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_config_or_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("token");
        std::fs::write(&f, "  a-token-of-twenty-chars\n").expect("write");
        let c = AdminConfig {
            token_file: Some(f.clone()),
            ..AdminConfig::default()
        };
        assert_eq!(c.purge_token(), Ok(Some("a-token-of-twenty-chars".into())));
        std::fs::write(&f, "short").expect("write");
        assert!(c.purge_token().unwrap_err().contains("at least 16"));
        let missing = AdminConfig {
            token_file: Some(dir.path().join("nope")),
            ..AdminConfig::default()
        };
        assert!(missing
            .purge_token()
            .unwrap_err()
            .starts_with("admin.token_file: "));
        let inline = AdminConfig {
            token: Some("x".repeat(16)),
            ..AdminConfig::default()
        };
        assert_eq!(inline.purge_token(), Ok(Some("x".repeat(16))));
    }
}
