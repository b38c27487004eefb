//! Caps on the client connections the proxy listener holds open: in total
//! (`limits.max_connections`) and per client address (`limits.max_connections_per_ip`).
//!
//! A connection costs a socket, a task and its buffers whether or not it ever sends a request,
//! so the caps are applied where connections are accepted ([`super::deadline::Guarded`]),
//! before pingora reads a byte: a connection over a cap is closed at once and counted in
//! `pixgate_connections_refused_total{limit}`, while the connections already open carry on.
//! A [`Permit`] is held for the connection's whole life (every kept-alive request on it) and
//! gives its place back when dropped.
//!
//! The address is the TCP peer, the only thing known at accept (`X-Forwarded-For` comes later,
//! with a request): IPv4 as is, IPv6 by its /64, as for `rate_limit.per_ip`. The per-address
//! cap applies only when `rate_limit.per_ip` is on, and never to peers in
//! `rate_limit.trusted_proxies`, which carry many clients over their connections. Addresses
//! are held in memory only while they have a connection open.

use crate::security::ssrf::Cidr;
use crate::telemetry::metrics;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Which cap refused a connection (the `limit` label of the refusal counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `limits.max_connections`.
    Total,
    /// `limits.max_connections_per_ip`.
    PerIp,
}

impl Refused {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerIp => "per_ip",
        }
    }
}

/// The open-connection counts and their caps.
#[derive(Debug)]
pub struct ConnLimits {
    max_total: usize,
    per_ip: Option<usize>,
    trusted: Vec<Cidr>,
    open: AtomicUsize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<ConnLimits>,
    key: Option<IpAddr>,
}

impl ConnLimits {
    /// Caps of `max_total` connections and, when `per_ip` is set, that many per address
    /// (peers inside `trusted` are exempt from the per-address cap).
    pub fn new(max_total: usize, per_ip: Option<usize>, trusted: Vec<Cidr>) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_total,
            per_ip,
            trusted,
            open: AtomicUsize::new(0),
            by_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a connection from `peer`, or says which cap it is over.
    pub fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Permit, Refused> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_total {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Total);
        }
        // Built now, so an early return below gives the total place back through Drop.
        let mut permit = Permit {
            limits: self.clone(),
            key: None,
        };
        metrics::CONNECTIONS_OPEN.inc();
        if let (Some(cap), Some(key)) = (self.per_ip, self.key(peer)) {
            let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = by_ip.entry(key).or_insert(0);
            if *n >= cap {
                if *n == 0 {
                    by_ip.remove(&key);
                }
                return Err(Refused::PerIp);
            }
            *n += 1;
            permit.key = Some(key);
        }
        Ok(permit)
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The per-address key of `peer`, `None` when the per-address cap does not apply to it.
    fn key(&self, peer: Option<IpAddr>) -> Option<IpAddr> {
        let ip = crate::request::client::canonical(peer?);
        if self.trusted.iter().any(|c| c.contains(ip)) {
            return None;
        }
        Some(crate::ratelimit::ip_key(ip))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut by_ip = self.limits.by_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = by_ip.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    // The address is forgotten with its last connection.
                    by_ip.remove(&key);
                }
            }
        }
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
        metrics::CONNECTIONS_OPEN.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn caps_refuse_the_one_too_many_and_give_places_back() {
        let l = ConnLimits::new(3, Some(2), vec![]);
        let a1 = l.admit(ip("192.0.2.1")).expect("first");
        let a2 = l.admit(ip("192.0.2.1")).expect("second");
        assert_eq!(l.admit(ip("192.0.2.1")).err(), Some(Refused::PerIp));
        // IPv4-mapped IPv6 is the same address.
        assert_eq!(l.admit(ip("::ffff:192.0.2.1")).err(), Some(Refused::PerIp));
        let b = l.admit(ip("192.0.2.2")).expect("another address");
        assert_eq!(l.open(), 3);
        assert_eq!(l.admit(ip("192.0.2.3")).err(), Some(Refused::Total));
        assert_eq!(l.open(), 3, "refusals hold no place");
        drop(a1);
        assert_eq!(l.open(), 2);
        let a3 = l.admit(ip("192.0.2.1")).expect("a place came back");
        drop((a2, a3, b));
        assert_eq!(l.open(), 0);
        assert!(l.by_ip.lock().map(|m| m.is_empty()).unwrap_or(false));
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_trusted_proxies_and_no_per_ip_are_exempt() {
        let l = ConnLimits::new(100, Some(1), vec![Cidr::parse("10.0.0.0/8").expect("cidr")]);
        let _a = l.admit(ip("2001:db8:1:2::1")).expect("first");
        assert_eq!(
            l.admit(ip("2001:db8:1:2::ffff")).err(),
            Some(Refused::PerIp)
        );
        let _b = l.admit(ip("2001:db8:1:3::1")).expect("another /64");
        let _p: Vec<_> = (0..5)
            .map(|_| l.admit(ip("10.1.2.3")).expect("trusted proxy"))
            .collect();
        let _u = l.admit(None).expect("no address: only the total applies");
        let off = ConnLimits::new(100, None, vec![]);
        let _o: Vec<_> = (0..5)
            .map(|_| off.admit(ip("192.0.2.1")).expect("per-ip off"))
            .collect();
    }
}
