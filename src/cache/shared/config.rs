//! `cache.shared`: the Redis tier's settings (docs/caching.md, "Shared tier").

use crate::units::{ByteSize, Dur};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The shared tier: variants and shield responses kept in Redis for every node of a cluster.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SharedConfig {
    /// `redis://[user:password@]host:port[/db]` (`rediss://` for TLS), or with `cluster: true`
    /// a list of seed URLs of a Redis Cluster. Required.
    pub redis: Urls,
    /// Talk to a Redis Cluster (`redis` are seeds) instead of one instance. Default `false`.
    pub cluster: bool,
    /// File holding the cluster key: 32 raw bytes or 64 hex digits, the same on every node.
    /// Values are sealed and key names derived with it. Unlike `cache.disk.key_file`, a missing
    /// file is an error (each node would make its own key). One of `key_file`, `key_env`.
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the cluster key as 64 hex digits.
    pub key_env: Option<String>,
    /// Longest wait for one Redis command; past it the request goes on without Redis.
    /// Default `100ms`.
    pub timeout: Dur,
    /// How long a node's claim to make a variant lasts (cluster-wide coalescing): the most a
    /// crashed node delays the others. Default `30s`.
    pub lock_ttl: Dur,
    /// How long a node waits for another node's variant before making it itself. Default `10s`.
    pub lock_wait: Dur,
    /// Connections to Redis (each multiplexed). Default `4`.
    pub pool: usize,
    /// Largest sealed entry stored in Redis; bigger ones stay local. Default `8MiB`.
    pub max_entry_bytes: ByteSize,
    /// Prefix of every key and channel name, to share one Redis between clusters. Default `pg:`.
    pub prefix: String,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
}

/// One URL or a list.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(untagged)]
pub enum Urls {
    /// No URL given.
    #[default]
    #[serde(skip)]
    None,
    /// One URL.
    One(String),
    /// Seed URLs.
    Many(Vec<String>),
}

impl Urls {
    /// The URLs.
    pub fn list(&self) -> Vec<String> {
        match self {
            Urls::None => Vec::new(),
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

/// After `failures` Redis errors or timeouts in a row, Redis is left alone for `open_for`;
/// then one request tries it again.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Default `5`.
    pub failures: u32,
    /// How long it stays open. Default `5s`.
    pub open_for: Dur,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            open_for: Dur::secs(5),
        }
    }
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            redis: Urls::None,
            cluster: false,
            key_file: None,
            key_env: None,
            timeout: Dur::millis(100),
            lock_ttl: Dur::secs(30),
            lock_wait: Dur::secs(10),
            pool: 4,
            max_entry_bytes: ByteSize::mib(8),
            prefix: "pg:".into(),
            breaker: BreakerConfig::default(),
        }
    }
}

impl SharedConfig {
    /// Problems as `(key, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut bad = |k: &str, m: String| p.push((format!("cache.shared.{k}"), m));
        let urls = self.redis.list();
        if urls.is_empty() {
            bad("redis", "is required (redis://host:6379)".into());
        }
        if urls.len() > 1 && !self.cluster {
            bad(
                "redis",
                "lists several URLs: set `cluster: true` for a Redis Cluster".into(),
            );
        }
        for u in &urls {
            let ok = redis::parse_redis_url(u)
                .is_some_and(|url| matches!(url.scheme(), "redis" | "rediss"));
            if !ok {
                bad(
                    "redis",
                    format!("`{}` is not a redis:// or rediss:// URL", redact(u)),
                );
            }
        }
        match (&self.key_file, &self.key_env) {
            (None, None) => bad(
                "key_file",
                "a cluster key is required (key_file or key_env): 32 random bytes, the same on every node".into(),
            ),
            (Some(_), Some(_)) => bad("key_env", "give key_file or key_env, not both".into()),
            _ => {}
        }
        let t = self.timeout.get().as_millis();
        if !(1..=10_000).contains(&t) {
            bad(
                "timeout",
                format!("must be between 1ms and 10s, got {}", self.timeout),
            );
        }
        if self.lock_ttl.get().as_millis() < 100 {
            bad(
                "lock_ttl",
                format!("must be at least 100ms, got {}", self.lock_ttl),
            );
        }
        if self.lock_wait > self.lock_ttl {
            bad(
                "lock_wait",
                format!("must be at most lock_ttl ({})", self.lock_ttl),
            );
        }
        if !(1..=64).contains(&self.pool) {
            bad(
                "pool",
                format!("must be between 1 and 64, got {}", self.pool),
            );
        }
        if self.max_entry_bytes.get() < 1024 {
            bad("max_entry_bytes", "must be at least 1KiB".into());
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 32
            || self.prefix.contains(char::is_whitespace)
        {
            bad("prefix", "must be 1 to 32 characters without spaces".into());
        }
        if self.breaker.failures == 0 {
            bad("breaker.failures", "must be at least 1".into());
        }
        p
    }
}

/// `u` with any password replaced, for messages and logs.
pub fn redact(u: &str) -> String {
    let Some(start) = u.find("://").map(|i| i + 3) else {
        return u.to_string();
    };
    let end = u[start..].find('/').map_or(u.len(), |i| start + i);
    match u[start..end].rfind('@') {
        Some(at) => {
            let user = u[start..start + at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &u[..start], &u[start + at..])
        }
        None => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> SharedConfig {
        serde_yaml_ng::from_str(yaml).expect("parses")
    }

    #[test]
    fn one_url_or_a_cluster_list_and_a_key_are_required() {
        let c = parse("redis: redis://127.0.0.1:6379\nkey_env: K\n");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let keys = |c: &SharedConfig| c.validate().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(&parse("key_env: K\n")), ["cache.shared.redis"]);
        assert_eq!(
            keys(&parse("redis: redis://a\n")),
            ["cache.shared.key_file"]
        );
        assert_eq!(
            keys(&parse("redis: [redis://a:1, redis://b:2]\nkey_env: K\n")),
            ["cache.shared.redis"]
        );
        let c = parse("redis: [redis://a:1, redis://b:2]\ncluster: true\nkey_env: K\n");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(
            keys(&parse("redis: http://a\nkey_env: K\n")),
            ["cache.shared.redis"]
        );
        assert_eq!(
            keys(&parse("redis: redis://a\nkey_env: K\nlock_wait: 1m\n")),
            ["cache.shared.lock_wait"]
        );
    }

    #[test]
    fn passwords_never_reach_a_message() {
        let c = parse("redis: ftp://u:hunter2@a\nkey_env: K\n");
        let p = c.validate();
        assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
        assert_eq!(
            redact("redis://u:hunter2@a:6379/0"),
            "redis://u:***@a:6379/0"
        );
        assert_eq!(redact("redis://a:6379"), "redis://a:6379");
    }
}
