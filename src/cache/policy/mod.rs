//! Whether a response may be stored, and for how long: pure functions of the response
//! headers, the configured limits and an injected `now`, so TTL and retention are tested
//! without sleeping.
//!
//! Rules (docs/caching.md):
//! - never stored: `no-store`, `private`, `no-cache` (pixgate does not revalidate), a
//!   `Set-Cookie`, a `Vary` on anything but `Accept` / `Accept-Encoding`, a request with
//!   `Authorization`; for a request with a `Cookie`, anything without `public` or
//!   `s-maxage` (unless `cache.cookies: trust_origin`);
//! - freshness: `s-maxage`, else `max-age`, else `Expires` − `Date`, else `default_ttl`,
//!   minus the origin's `Age`;
//! - capped by the rule's TTL (when a rule sets one) and by `max_retention`, counted from when
//!   the source was fetched.

use http::header::{self, HeaderMap};
use std::time::{Duration, SystemTime};

/// Why a response is not stored (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStore {
    /// `Cache-Control: no-store`.
    NoStoreDirective,
    /// `Cache-Control: private`.
    Private,
    /// `Cache-Control: no-cache` (would need revalidation on every use).
    NoCache,
    /// The response sets a cookie.
    SetCookie,
    /// The request carried a cookie and the response does not say `public` / `s-maxage`.
    Cookie,
    /// `Vary` names a request header the key does not include.
    Vary,
    /// Already stale when received (`Age` ≥ lifetime, `max-age=0`, `Expires` in the past).
    Stale,
    /// A shield response with no freshness information and no `Last-Modified` to base a
    /// heuristic on.
    NoFreshness,
    /// A status the shield does not store: interim, `206` (pieces are not combined), `304`,
    /// or one that is not heuristically cacheable and comes without explicit freshness.
    Status,
}

impl NoStore {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            NoStore::NoStoreDirective => "no_store",
            NoStore::Private => "private",
            NoStore::NoCache => "no_cache",
            NoStore::SetCookie => "set_cookie",
            NoStore::Cookie => "cookie",
            NoStore::Vary => "vary",
            NoStore::Stale => "stale",
            NoStore::Status => "status",
            NoStore::NoFreshness => "no_freshness",
        }
    }
}

/// The limits a TTL is computed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Freshness when the origin gives none.
    pub default_ttl: Duration,
    /// A rule's TTL cap, when one applies.
    pub rule_ttl: Option<Duration>,
    /// The retention guarantee.
    pub max_retention: Duration,
    /// Store only a response that says `public` or `s-maxage` (the request carried a
    /// `Cookie` and `cache.cookies` is `require_public`).
    pub needs_public: bool,
}

/// Why a response with directives `cc` must not be stored, if it must not (the checks every
/// response goes through, before freshness).
fn refusal(h: &HeaderMap, cc: &[(String, Option<String>)], limits: &Limits) -> Option<NoStore> {
    let has = |name: &str| cc.iter().any(|(k, _)| k == name);
    if has("no-store") {
        Some(NoStore::NoStoreDirective)
    } else if has("private") {
        Some(NoStore::Private)
    } else if has("no-cache") {
        Some(NoStore::NoCache)
    } else if h.contains_key(header::SET_COOKIE) {
        Some(NoStore::SetCookie)
    } else if limits.needs_public && !has("public") && !has("s-maxage") {
        Some(NoStore::Cookie)
    } else {
        None
    }
}

/// [`ttl`] for a shield response (any GET response, not an image variant): `Vary` may name
/// any request header but not `*` ([`vary_fields`] gives the secondary key), and a response
/// without `s-maxage`, `max-age` or `Expires` is fresh only by the heuristic of RFC 9111
/// §4.2.2: 10 % of the time since its `Last-Modified`, at most `default_ttl`.
///
/// `Ok(Duration::ZERO)`: storable, but only to be revalidated before every use (`no-cache`,
/// already stale on arrival, or an `ETag` without any freshness); the caller keeps such a
/// response only when it carries a validator. Without freshness, `Last-Modified` or `ETag`:
/// not stored (`NoFreshness`).
///
/// Statuses (RFC 9111 §3, RFC 9110 §15.1): the heuristically cacheable ones (200, 203, 204,
/// 300, 301, 308, 404, 405, 410, 414, 501) are stored like a 200; any other final status
/// only with explicit freshness (`max-age`, `s-maxage`, `Expires`) or `public`; never 1xx,
/// `206` or `304`.
pub fn shield_ttl(
    h: &HeaderMap,
    status: u16,
    limits: &Limits,
    now: SystemTime,
) -> Result<Duration, NoStore> {
    vary_fields(h)?;
    let cc = directives(h);
    let explicit = cc
        .iter()
        .any(|(k, _)| k == "s-maxage" || k == "max-age" || k == "public")
        || h.contains_key(header::EXPIRES);
    let heuristic_status = matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    );
    if !(200..600).contains(&status)
        || matches!(status, 206 | 304)
        || !(explicit || heuristic_status)
    {
        return Err(NoStore::Status);
    }
    let no_cache = cc.iter().any(|(k, _)| k == "no-cache");
    let others: Vec<(String, Option<String>)> = cc
        .iter()
        .filter(|(k, _)| k != "no-cache")
        .cloned()
        .collect();
    if let Some(why) = refusal(h, &others, limits) {
        return Err(why);
    }
    if no_cache {
        return Ok(Duration::ZERO);
    }
    let explicit = cc.iter().any(|(k, _)| k == "s-maxage" || k == "max-age")
        || h.contains_key(header::EXPIRES);
    let heuristic = if explicit {
        limits.default_ttl
    } else {
        let lm = http_date(h, header::LAST_MODIFIED);
        let base = http_date(h, header::DATE).unwrap_or(now);
        match lm.and_then(|lm| base.duration_since(lm).ok()) {
            Some(since) => (since / 10).min(limits.default_ttl),
            None if h.contains_key(header::ETAG) => return Ok(Duration::ZERO),
            None => return Err(NoStore::NoFreshness),
        }
    };
    match lifetime(
        h,
        &cc,
        &Limits {
            default_ttl: heuristic,
            ..*limits
        },
        now,
    ) {
        Err(NoStore::Stale) => Ok(Duration::ZERO),
        other => other,
    }
}

/// How long a response may be kept, counted from `fetched_at` (when its source was fetched).
/// `now` is when the response arrived; the result never exceeds `max_retention`.
pub fn ttl(h: &HeaderMap, limits: &Limits, now: SystemTime) -> Result<Duration, NoStore> {
    let cc = directives(h);
    if let Some(why) = refusal(h, &cc, limits) {
        return Err(why);
    }
    if !vary_is_keyed(h) {
        return Err(NoStore::Vary);
    }
    lifetime(h, &cc, limits, now)
}

/// The freshness lifetime left (RFC 9111 §4.2.1), capped: the rule's TTL, `max_retention`.
fn lifetime(
    h: &HeaderMap,
    cc: &[(String, Option<String>)],
    limits: &Limits,
    now: SystemTime,
) -> Result<Duration, NoStore> {
    // `None`: absent; `Some(None)`: present but not a number of seconds (negative, quoted
    // with single quotes, ...), which makes the response stale (RFC 9111 §4.2.1).
    let secs = |name: &str| {
        cc.iter().find(|(k, _)| k == name).map(|(_, v)| {
            v.as_deref()
                .map(|v| {
                    v.strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v)
                })
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .map(|v| v.parse::<u64>().unwrap_or(u64::MAX))
        })
    };
    let lifetime = if let Some(s) = secs("s-maxage").or_else(|| secs("max-age")) {
        s.map_or(Duration::ZERO, Duration::from_secs)
    } else if let Some(exp) = http_date(h, header::EXPIRES) {
        // A malformed Expires means "already expired" (RFC 9111 §5.3).
        let base = http_date(h, header::DATE).unwrap_or(now);
        exp.duration_since(base).unwrap_or(Duration::ZERO)
    } else if h.contains_key(header::EXPIRES) {
        Duration::ZERO
    } else {
        limits.default_ttl
    };
    let mut ttl = lifetime.saturating_sub(Duration::from_secs(age(h)));
    if let Some(r) = limits.rule_ttl {
        ttl = ttl.min(r);
    }
    ttl = ttl.min(limits.max_retention);
    if ttl.is_zero() {
        return Err(NoStore::Stale);
    }
    Ok(ttl)
}

/// The origin's `Age` in seconds: the first value of a list, 0 when absent or malformed.
pub fn age(h: &HeaderMap) -> u64 {
    h.get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// RFC 9213's CDN-targeted caching field.
const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

/// `CDN-Cache-Control`'s directives; `None` when it is absent, or not a valid Structured Field
/// dictionary, or a directive with a number of seconds has another type (RFC 9213 §2.1: an
/// invalid field is ignored, `Cache-Control` applies).
fn cdn_directives(h: &HeaderMap) -> Option<Vec<(String, Option<String>)>> {
    let lines = h
        .get_all(CDN_CACHE_CONTROL)
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<Vec<_>>>()?;
    if lines.is_empty() {
        return None;
    }
    let dict: sfv::Dictionary = sfv::Parser::new(&lines.join(", ")).parse().ok()?;
    let mut out = Vec::with_capacity(dict.len());
    for (key, entry) in &dict {
        let sfv::ListEntry::Item(item) = entry else {
            return None;
        };
        let seconds = matches!(
            key.as_str(),
            "max-age" | "s-maxage" | "stale-while-revalidate" | "stale-if-error"
        );
        let value = match &item.bare_item {
            sfv::BareItem::Integer(i) => Some(i.to_string()),
            _ if seconds => return None,
            sfv::BareItem::Boolean(true) => None,
            sfv::BareItem::Boolean(false) => continue,
            sfv::BareItem::Token(t) => Some(t.as_str().to_string()),
            sfv::BareItem::String(s) => Some(s.as_str().to_string()),
            _ => return None,
        };
        out.push((key.as_str().to_string(), value));
    }
    Some(out)
}

/// Whether a stored response must never be answered stale without the origin's word:
/// `must-revalidate`, `proxy-revalidate`, `no-cache` (RFC 9111 §5.2.2).
pub fn never_stale(h: &HeaderMap) -> bool {
    directives(h).iter().any(|(k, _)| {
        matches!(
            k.as_str(),
            "must-revalidate" | "proxy-revalidate" | "no-cache"
        )
    })
}

/// The caching directives pixgate follows, lowercased names with their optional values:
/// `CDN-Cache-Control`'s when the origin sends it (RFC 9213: a CDN-targeted field replaces
/// `Cache-Control` for the caches it targets, and pixgate is one), else `Cache-Control`'s.
fn directives(h: &HeaderMap) -> Vec<(String, Option<String>)> {
    if let Some(cdn) = cdn_directives(h) {
        return cdn;
    }
    h.get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|d| {
            let d = d.trim();
            if d.is_empty() {
                return None;
            }
            Some(match d.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                None => (d.to_ascii_lowercase(), None),
            })
        })
        .collect()
}

/// Only `Accept` (part of the key, through the plan) and `Accept-Encoding` (images are not
/// content-encoded on this path) may appear in the origin's `Vary`.
fn vary_is_keyed(h: &HeaderMap) -> bool {
    vary_within(h, &["accept", "accept-encoding"])
}

/// The request headers a shield response varies on, lowercase, sorted, once each, without
/// `Accept-Encoding` (the shield's primary key already holds the request's encoding class).
/// `Vary: *` matches no later request (RFC 9111 §4.1): not stored.
pub fn vary_fields(h: &HeaderMap) -> Result<Vec<String>, NoStore> {
    let mut out: Vec<String> = Vec::new();
    let fields = h
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty());
    for f in fields {
        if f == "*" {
            return Err(NoStore::Vary);
        }
        let f = f.to_ascii_lowercase();
        if f != "accept-encoding" && !out.contains(&f) {
            out.push(f);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Whether every field `Vary` names is one of `allowed` (lowercase).
fn vary_within(h: &HeaderMap, allowed: &[&str]) -> bool {
    h.get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .all(|f| allowed.iter().any(|a| f.eq_ignore_ascii_case(a)))
}

fn http_date(h: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// When an entry fetched at `fetched_at` with `ttl` stops being servable: never later than
/// `fetched_at + max_retention`.
pub fn expires_at(fetched_at: SystemTime, ttl: Duration, max_retention: Duration) -> SystemTime {
    fetched_at + ttl.min(max_retention)
}

/// How long past its freshness an entry may stand in for a failed origin (RFC 5861
/// `stale-if-error`): the origin's `stale-if-error=N` directive, else `default`. The entry's
/// removal deadline is `fresh + this`, still capped by `max_retention` (see [`expires_at`]).
pub fn stale_if_error(h: &HeaderMap, default: Duration) -> Duration {
    window(h, "stale-if-error", default)
}

/// How long past its freshness a shield entry may be answered at once while a background
/// request revalidates it (RFC 5861 `stale-while-revalidate`): the origin's directive, else
/// `default`. Capped by `max_retention` like every deadline.
pub fn stale_while_revalidate(h: &HeaderMap, default: Duration) -> Duration {
    window(h, "stale-while-revalidate", default)
}

/// A `Cache-Control` directive's seconds (`name=N`), else `default`.
fn window(h: &HeaderMap, name: &str, default: Duration) -> Duration {
    directives(h)
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
        .map_or(default, Duration::from_secs)
}

/// Whether an entry may still be served at `now`: before its expiry and, with an idle limit,
/// used recently enough.
pub fn servable(
    expires: SystemTime,
    last_used: SystemTime,
    idle: Option<Duration>,
    now: SystemTime,
) -> bool {
    if now >= expires {
        return false;
    }
    match idle {
        Some(i) => now.duration_since(last_used).unwrap_or(Duration::ZERO) < i,
        None => true,
    }
}

#[cfg(test)]
mod tests;
