//! Rate limits: a token bucket (GCRA, the `governor` crate) per client address and per tenant.
//! A request over its limit gets `429 Too Many Requests` with `Retry-After`.
//!
//! Privacy ("IP used only for rate limiting"): addresses live only in the limiter's in-memory
//! map, and only while they matter: every second the janitor drops each key whose bucket has
//! refilled (its state is then the same as a fresh key's), so an address is forgotten about
//! `burst / rate` seconds plus two after its last request (measured: 5 s for a 3-request burst
//! at 1/s, `tests/ratelimit.rs`). Nothing else keeps it.

use crate::security::ssrf::Cidr;
use crate::telemetry::metrics;
use crate::telemetry::tenant::TenantId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// One token bucket: `rate` requests per second on average, `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Requests per second, sustained (1–1,000,000).
    pub rate: u32,
    /// Requests allowed at once after a quiet period (1–1,000,000).
    pub burst: u32,
}

/// The `rate_limit` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Per client address (IPv4 /32, IPv6 /64); `null`: off. Default `null`.
    pub per_ip: Option<Bucket>,
    /// Per tenant (each tenant of `metrics.tenants` has its own bucket; requests without a
    /// tenant are not limited by it); `null`: off. Default `null`.
    pub per_tenant: Option<Bucket>,
    /// Proxies (CIDR) whose `X-Forwarded-For` / `Forwarded` name the client; the chain is read
    /// from the right. Default none: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

impl RateLimitConfig {
    /// `(key, problem)` for every invalid value.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for (name, b) in [("per_ip", self.per_ip), ("per_tenant", self.per_tenant)] {
            let Some(b) = b else { continue };
            for (field, v) in [("rate", b.rate), ("burst", b.burst)] {
                if !(1..=1_000_000).contains(&v) {
                    p.push((
                        format!("rate_limit.{name}.{field}"),
                        format!("must be between 1 and 1000000, got {v}"),
                    ));
                }
            }
        }
        for (i, c) in self.trusted_proxies.iter().enumerate() {
            if let Err(e) = Cidr::parse(c) {
                p.push((format!("rate_limit.trusted_proxies[{i}]"), e));
            }
        }
        p
    }
}

fn quota(b: Bucket) -> Option<Quota> {
    Some(Quota::per_second(NonZeroU32::new(b.rate)?).allow_burst(NonZeroU32::new(b.burst)?))
}

/// The key of an address: IPv4 as is, IPv6 by its /64 (one host's usual allocation).
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The live limiters.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_tenant: Option<DefaultKeyedRateLimiter<u16>>,
    /// Trusted proxy ranges.
    pub trusted: Vec<Cidr>,
    clock: DefaultClock,
}

impl RateLimits {
    /// From a validated section.
    pub fn new(cfg: &RateLimitConfig) -> RateLimits {
        RateLimits {
            per_ip: cfg.per_ip.and_then(quota).map(RateLimiter::keyed),
            per_tenant: cfg.per_tenant.and_then(quota).map(RateLimiter::keyed),
            trusted: cfg
                .trusted_proxies
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when `ip` is over its limit (counted in `pixgate_rate_limited_total`).
    pub fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        let (Some(l), Some(ip)) = (&self.per_ip, ip) else {
            return Ok(());
        };
        l.check_key(&ip_key(ip)).map_err(|n| {
            metrics::RATE_LIMITED.with_label_values(&["ip"]).inc();
            n.wait_time_from(self.clock.now())
        })
    }

    /// `Err(wait)` when tenant `t` is over its limit. Requests without a tenant pass.
    pub fn check_tenant(&self, t: TenantId) -> Result<(), Duration> {
        let Some(l) = &self.per_tenant else {
            return Ok(());
        };
        if t == TenantId::NONE {
            return Ok(());
        }
        l.check_key(&t.index()).map_err(|n| {
            metrics::RATE_LIMITED.with_label_values(&["tenant"]).inc();
            n.wait_time_from(self.clock.now())
        })
    }

    /// Forgets every key whose bucket has refilled; publishes how many are held.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
            metrics::RATE_LIMIT_KEYS
                .with_label_values(&["ip"])
                .set(l.len() as i64);
        }
        if let Some(l) = &self.per_tenant {
            l.retain_recent();
            metrics::RATE_LIMIT_KEYS
                .with_label_values(&["tenant"])
                .set(l.len() as i64);
        }
    }

    /// Addresses held right now.
    pub fn ips_held(&self) -> usize {
        self.per_ip.as_ref().map_or(0, |l| l.len())
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after(wait: Duration) -> u64 {
    let s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32) -> RateLimits {
        RateLimits::new(&RateLimitConfig {
            per_ip: Some(Bucket { rate, burst }),
            per_tenant: Some(Bucket { rate, burst }),
            trusted_proxies: vec![],
        })
    }

    #[test]
    fn burst_then_refused_with_a_wait() {
        let l = limits(1, 3);
        let a = Some("203.0.113.1".parse().unwrap());
        for _ in 0..3 {
            assert!(l.check_ip(a).is_ok());
        }
        let wait = l.check_ip(a).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(retry_after(wait), 1);
        // Another address has its own bucket.
        assert!(l.check_ip(Some("203.0.113.2".parse().unwrap())).is_ok());
        // No address (a Unix socket): not limited.
        assert!(l.check_ip(None).is_ok());
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let l = limits(1, 1);
        assert!(l.check_ip(Some("2001:db8:1:2::1".parse().unwrap())).is_ok());
        assert!(l
            .check_ip(Some("2001:db8:1:2::ffff".parse().unwrap()))
            .is_err());
        assert!(l.check_ip(Some("2001:db8:1:3::1".parse().unwrap())).is_ok());
    }

    #[test]
    fn tenants_have_their_own_buckets_and_none_is_free() {
        let t = crate::telemetry::tenant::Tenants::new(&["a".into(), "b".into()]);
        let l = limits(1, 1);
        assert!(l.check_tenant(t.id(Some("a"))).is_ok());
        assert!(l.check_tenant(t.id(Some("a"))).is_err());
        assert!(l.check_tenant(t.id(Some("b"))).is_ok());
        for _ in 0..10 {
            assert!(l.check_tenant(TenantId::NONE).is_ok());
        }
    }

    #[test]
    fn addresses_are_forgotten_once_their_bucket_refills() {
        let l = limits(100, 2);
        for i in 0..50u8 {
            let _ = l.check_ip(Some(IpAddr::from([198, 51, 100, i])));
        }
        assert_eq!(l.ips_held(), 50);
        l.forget_idle();
        // 2 tokens at 100/s: refilled after 20 ms.
        std::thread::sleep(Duration::from_millis(40));
        l.forget_idle();
        assert_eq!(l.ips_held(), 0);
    }

    #[test]
    fn config_errors() {
        let c = RateLimitConfig {
            per_ip: Some(Bucket { rate: 0, burst: 5 }),
            per_tenant: None,
            trusted_proxies: vec!["10.0.0.0/8".into(), "nonsense".into()],
        };
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["rate_limit.per_ip.rate", "rate_limit.trusted_proxies[1]"]
        );
    }
}
