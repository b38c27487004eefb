//! Invalidation by unsafe methods (RFC 9111 §4.4).

use super::{key_of, vary, CLASSES};
use crate::proxy::state::State;
use crate::telemetry::metrics;
use http::{header, Method};
use pingora::http::{RequestHeader, ResponseHeader};

/// After a successful unsafe request (RFC 9111 §4.4): removes what the shield holds for its
/// URL and for its `Location` / `Content-Location` on the same host, in every encoding class.
pub(crate) async fn invalidate(st: &State, req: &RequestHeader, resp: &ResponseHeader) {
    if !st.cache.enabled()
        || matches!(
            req.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        )
        || !(200..400).contains(&resp.status.as_u16())
    {
        return;
    }
    let host = st.origin.host_for(req).to_string();
    let mut targets = vec![req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string()];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        if let Some(t) = resp.headers.get(name).and_then(|v| v.to_str().ok()) {
            if let Some(local) = same_host_target(t, &host) {
                targets.push(local);
            }
        }
    }
    let mut removed = 0u64;
    for t in &targets {
        for c in CLASSES {
            removed += vary::forget(st, &key_of(st, &host, t, c, "")).await;
        }
    }
    metrics::SHIELD_INVALIDATED.inc_by(removed);
}

/// `target` (a `Location` value) as a path and query when it names `host`: a path, or an
/// absolute http(s) URL whose authority is `host`.
pub(super) fn same_host_target(target: &str, host: &str) -> Option<String> {
    if target.starts_with('/') && !target.starts_with("//") {
        return Some(target.to_string());
    }
    let uri: http::Uri = target.parse().ok()?;
    let auth = uri.authority()?.as_str();
    let same = crate::cache::key::normalize_host(auth) == crate::cache::key::normalize_host(host);
    same.then(|| uri.path_and_query().map_or("/", |p| p.as_str()).to_string())
}
