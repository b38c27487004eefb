//! The closed set of tenants usage is metered for. Names come from `metrics.tenants`; a rule
//! or signing key naming anything else is counted as `other`, a request without a tenant as
//! `none`, so the `tenant` label never takes a value the operator did not list.

use super::metrics;
use prometheus::{Counter, IntCounter};
use std::sync::Arc;

/// A tenant of the closed set (an index into [`Tenants`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantId(u16);

impl TenantId {
    /// No tenant assigned.
    pub(crate) const NONE: TenantId = TenantId(0);
    /// A tenant name outside `metrics.tenants`.
    pub(crate) const OTHER: TenantId = TenantId(1);

    /// Its index in the closed set (a rate-limit key).
    pub(crate) fn index(self) -> u16 {
        self.0
    }
}

/// Whether `s` is a usable tenant name: 1-64 of letters, digits, `-`, `_`, `.`.
pub(crate) fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// One tenant's usage counters, resolved once (no label lookup per request).
struct Meters {
    name: Arc<str>,
    requests: IntCounter,
    origin_bytes: IntCounter,
    response_bytes: IntCounter,
    transform_seconds: Counter,
}

/// The configured tenants and their counters.
pub struct Tenants {
    meters: Vec<Meters>,
}

impl Tenants {
    /// `none`, `other`, then `names` in order.
    pub(crate) fn new(names: &[String]) -> Tenants {
        let all = ["none", "other"]
            .into_iter()
            .map(str::to_string)
            .chain(names.iter().cloned());
        let meters = all
            .map(|n| Meters {
                requests: metrics::TENANT_REQUESTS.with_label_values(&[&n]),
                origin_bytes: metrics::TENANT_ORIGIN_BYTES.with_label_values(&[&n]),
                response_bytes: metrics::TENANT_RESPONSE_BYTES.with_label_values(&[&n]),
                transform_seconds: metrics::TENANT_TRANSFORM_SECONDS.with_label_values(&[&n]),
                name: n.into(),
            })
            .collect();
        Tenants { meters }
    }

    /// The tenant called `name` (`None`: no tenant; unlisted: `other`).
    pub(crate) fn id(&self, name: Option<&str>) -> TenantId {
        let Some(name) = name else {
            return TenantId::NONE;
        };
        self.meters
            .iter()
            .skip(2)
            .position(|m| &*m.name == name)
            .and_then(|i| u16::try_from(i + 2).ok())
            .map_or(TenantId::OTHER, TenantId)
    }

    /// The tenant's name (the label value).
    pub(crate) fn name(&self, id: TenantId) -> &str {
        self.meters
            .get(usize::from(id.0))
            .map_or("none", |m| &m.name)
    }

    /// Adds one request's usage.
    pub(crate) fn record(
        &self,
        id: TenantId,
        origin_bytes: u64,
        response_bytes: u64,
        transform: f64,
    ) {
        let Some(m) = self.meters.get(usize::from(id.0)) else {
            return;
        };
        m.requests.inc();
        m.origin_bytes.inc_by(origin_bytes);
        m.response_bytes.inc_by(response_bytes);
        if transform > 0.0 {
            m.transform_seconds.inc_by(transform);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_set() {
        let t = Tenants::new(&["acme".into(), "globex".into()]);
        assert_eq!(t.id(None), TenantId::NONE);
        assert_eq!(t.name(t.id(Some("acme"))), "acme");
        assert_eq!(t.name(t.id(Some("globex"))), "globex");
        assert_eq!(t.id(Some("initech")), TenantId::OTHER);
        assert_eq!(t.name(TenantId::OTHER), "other");
        assert_eq!(t.name(TenantId::NONE), "none");
    }

    #[test]
    fn names() {
        assert!(valid_name("acme-eu.1_b"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a\"b"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
