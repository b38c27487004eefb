//! Revalidation of a stale image variant (issue 20): a variant made from an origin source
//! with a validator (`ETag`, `Last-Modified`) is kept past its freshness (never past
//! retention). When a request finds it stale and leads its key's flight, the origin is asked
//! for the source with those validators: a `304` means the source is unchanged, so the variant
//! still holds; its freshness is computed again from the 304's caching headers and it is
//! stored again and answered (`X-Cache: REVALIDATED`) with no source body fetched and no
//! transform run. Any other answer (the source changed, or an error) leaves the request to the
//! usual fill, which fetches the source again (and stands in the stale variant on an origin
//! failure within `stale-if-error`).

use super::respond::{self, CacheStatus};
use super::serve::Request;
use super::state::State;
use crate::cache::entry::header_map;
use crate::cache::flight::Leader;
use crate::cache::{policy, Entry, Key};
use crate::telemetry::Record;
use http::{header, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The headers of a 304 that carry the source's new freshness.
const FRESHNESS: [header::HeaderName; 4] = [
    header::CACHE_CONTROL,
    header::EXPIRES,
    header::DATE,
    header::AGE,
];

/// Answers `key`'s stale variant when the origin confirms its source with a 304; `None`: no
/// stale variant with a validator, or the origin did not confirm it (fill as usual).
pub(super) async fn stale_variant(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    key: Key,
    rule_ttl: Option<Duration>,
    lead: &mut Option<Leader>,
    rec: &mut Record,
) -> Result<Option<u16>> {
    if req.remote.is_some() {
        return Ok(None);
    }
    let Some(stale) = st.cache.get_stale(&key).await else {
        return Ok(None);
    };
    let last_modified = stale
        .header("last-modified")
        .and_then(|v| HeaderValue::from_bytes(v).ok());
    if stale.source_etag.is_none() && last_modified.is_none() {
        return Ok(None);
    }
    let mut ask = req.origin_req.clone();
    if let Some(t) = stale
        .source_etag
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        ask.insert_header(header::IF_NONE_MATCH, t)?;
    }
    if let Some(lm) = last_modified {
        ask.insert_header(header::IF_MODIFIED_SINCE, lm)?;
    }
    let sent = std::time::Instant::now();
    let peer = st.origin.peer();
    let Ok(up) = crate::fetch::origin::send(&st.connector, &peer, ask).await else {
        return Ok(None);
    };
    st.telemetry.origin.ok();
    rec.add_origin_time(sent.elapsed());
    if up.header.status.as_u16() != 304 {
        // Changed: the fill fetches it again (this connection, mid-body, is not reused).
        return Ok(None);
    }
    st.connector
        .release_http_session(up.session, &peer, Some(st.origin.idle_timeout()))
        .await;
    let Some(e) = refreshed(st, &stale, &up.header.headers, rule_ttl, req.cookie) else {
        // The origin now forbids storing: drop the variant, make it again unstored.
        let _ = st.cache.take(&key).await;
        return Ok(None);
    };
    let e = st.cache.within_retention(Arc::new(e));
    st.cache.insert(key, e.clone(), st.cache.epoch()).await;
    if let Some(l) = lead.take() {
        l.finish(Some(e.clone()));
    }
    respond::entry(st, session, &e, CacheStatus::Revalidated, None, rec)
        .await
        .map(Some)
}

/// `stale` with the 304's freshness headers in place of its own and its freshness computed
/// again from now; `None` when they no longer allow storing.
fn refreshed(
    st: &State,
    stale: &Entry,
    fresh: &http::HeaderMap,
    rule_ttl: Option<Duration>,
    cookie: bool,
) -> Option<Entry> {
    let mut h = header_map(&stale.headers);
    for name in &FRESHNESS {
        if fresh.contains_key(name) {
            h.remove(name);
            for v in fresh.get_all(name) {
                h.append(name.clone(), v.clone());
            }
        }
    }
    let now = SystemTime::now();
    let ttl = policy::ttl(&h, &st.cache.limits(rule_ttl, cookie), now).ok()?;
    let mut e = stale.clone();
    e.headers = h
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    e.fresh_until = now + ttl;
    e.origin_age = policy::age(fresh);
    Some(e)
}
