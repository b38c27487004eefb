//! Stale shield entries: revalidation with the origin (RFC 9111 §4.3) and standing in for a
//! failing origin (`stale-if-error`, RFC 5861).

use super::{answer, count, stored_headers, validated, Miss, NOTE};
use crate::cache::entry::header_map;
use crate::cache::flight::Join;
use crate::cache::policy;
use crate::cache::Entry;
use crate::proxy::headers;
use crate::proxy::state::State;
use crate::telemetry::{metrics, Record};
use http::{header, HeaderMap, HeaderValue};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Whether stale `e` may still stand in for a failing origin: within its `stale-if-error`
/// window (the origin's directive, else `cache.stale_if_error`) past its freshness. Its
/// retention cap holds regardless (the cache drops it by then).
pub(super) fn may_stand_in(st: &State, e: &Entry) -> bool {
    let window = policy::stale_if_error(&header_map(&e.headers), st.cfg.cache.stale_if_error.get());
    SystemTime::now() < e.fresh_until + window
}

/// Answers a shield miss whose origin failed (connect error, timeout) with its stale entry
/// when `stale-if-error` allows (`X-Cache: STALE`). `None`: nothing to stand in.
pub(crate) async fn stand_in(
    st: &State,
    session: &mut Session,
    miss: &Miss,
    rec: &mut Record,
) -> Option<u16> {
    let e = st.cache.get_stale(&miss.key).await?;
    if e.note != NOTE || !may_stand_in(st, &e) {
        return None;
    }
    count(rec, "stale");
    answer(st, session, &e, "STALE").await.ok()
}

/// The conditional request headers that revalidate `e`: `If-None-Match` from its ETag,
/// `If-Modified-Since` from its Last-Modified.
pub(super) fn validators(e: &Entry) -> impl Iterator<Item = (header::HeaderName, &[u8])> {
    let etag = e
        .etag
        .as_deref()
        .map(|t| (header::IF_NONE_MATCH, t.as_bytes()));
    let lm = e
        .header("last-modified")
        .map(|v| (header::IF_MODIFIED_SINCE, v));
    etag.into_iter().chain(lm)
}

/// How long past its freshness an entry without a validator is kept: the longer of its
/// `stale-while-revalidate` and `stale-if-error` windows (the cache caps both at
/// `max_retention`).
pub(super) fn window(st: &State, h: &HeaderMap) -> Duration {
    let cfg = &st.cfg.cache;
    policy::stale_if_error(h, cfg.stale_if_error.get()).max(policy::stale_while_revalidate(
        h,
        cfg.stale_while_revalidate.get(),
    ))
}

/// Whether stale `e` may be answered at once while a background request refreshes it: within
/// its `stale-while-revalidate` window (the origin's directive, else
/// `cache.stale_while_revalidate`), and not marked `must-revalidate` / `proxy-revalidate` /
/// `no-cache` (those are never served stale without the origin's word).
pub(super) fn may_serve_while_revalidating(st: &State, e: &Entry) -> bool {
    let h = header_map(&e.headers);
    if policy::never_stale(&h) {
        return false;
    }
    let window = policy::stale_while_revalidate(&h, st.cfg.cache.stale_while_revalidate.get());
    SystemTime::now() < e.fresh_until + window
}

/// Starts the one background refresh of `miss`'s key (RFC 5861 `stale-while-revalidate`): a
/// request that finds a refresh under way (the key's flight) starts none. The refresh asks
/// the origin with the stale entry's validators; a 304 refreshes the stored headers, a 5xx
/// leaves the stale entry (for `stale-if-error`), any other answer replaces it when it may be
/// stored and drops it otherwise.
pub(super) fn refresh_in_background(
    st: &Arc<State>,
    session: &Session,
    mut miss: Miss,
    stale: Arc<Entry>,
) {
    let Join::Leader(lead) = st.cache.flights.join(miss.key) else {
        return;
    };
    miss.leader = Some(lead);
    let mut req = session.req_header().clone();
    if headers::to_origin(&mut req, &st.origin, headers::peer_ip(session)).is_err() {
        return;
    }
    for h in [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::RANGE,
        header::IF_RANGE,
    ] {
        req.remove_header(&h);
    }
    let st = st.clone();
    tokio::spawn(async move {
        miss.refresh(&st, req, stale).await;
    });
}

impl Miss {
    /// The background half of [`refresh_in_background`].
    async fn refresh(mut self, st: &Arc<State>, mut req: RequestHeader, stale: Arc<Entry>) {
        for (name, value) in validators(&stale) {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                let _ = req.insert_header(name, v);
            }
        }
        let peer = st.origin.peer();
        let Ok(mut up) = crate::fetch::origin::send(&st.connector, &peer, req.clone()).await else {
            return;
        };
        metrics::SHIELD_REFRESHES
            .with_label_values(&[refresh_label(up.header.status.as_u16())])
            .inc();
        match up.header.status.as_u16() {
            304 => {
                self.refreshed(st, &stale, &up.header.headers).await;
            }
            s if s >= 500 => return,
            _ => {
                let key = self.key;
                let mut header = up.header.clone();
                let Ok(Some(mut p)) = self.on_response(st, &req, &mut header) else {
                    // The origin's new answer may not be stored: the stale one goes too.
                    let _ = st.cache.take(&key).await;
                    return;
                };
                loop {
                    match up.session.read_response_body().await {
                        Ok(Some(chunk)) => {
                            if !p.on_body(st, Some(&chunk), false) {
                                return;
                            }
                        }
                        Ok(None) => {
                            p.on_body(st, None, true);
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        }
        st.connector
            .release_http_session(up.session, &peer, Some(st.origin.idle_timeout()))
            .await;
    }

    /// Stores `stale` with the headers of the origin's 304 merged in (RFC 9111 §4.3.4) and its
    /// freshness computed again (its retention still counts from the original fetch: the body
    /// is the same bytes); returns the entry to answer with. When the new headers forbid
    /// storing, it is dropped (answered this once).
    async fn refreshed(&mut self, st: &State, stale: &Entry, fresh: &HeaderMap) -> Entry {
        let mut merged = header_map(&stale.headers);
        let fresh_list = stored_headers(fresh, st.cfg.cache.status_header.as_deref());
        for (k, _) in &fresh_list {
            if let Ok(k) = header::HeaderName::from_bytes(k.as_bytes()) {
                merged.remove(k);
            }
        }
        for (k, v) in header_map(&fresh_list) {
            if let Some(k) = k {
                merged.append(k, v);
            }
        }
        let now = SystemTime::now();
        let mut e = stale.clone();
        e.headers = stored_headers(&merged, None);
        e.etag = merged
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        e.origin_age = policy::age(fresh);
        match policy::shield_ttl(&merged, stale.status, &self.limits(st), now) {
            Ok(ttl) => {
                // Freshness restarts now; Cache::insert caps it at the original retention.
                e.fresh_until = now + ttl;
                if !validated(&merged) {
                    e.expires = e.fresh_until + window(st, &merged);
                }
                let stored = st.cache.within_retention(Arc::new(e.clone()));
                st.cache.insert(self.key, stored.clone(), self.epoch).await;
                if let Some(lead) = self.leader.take() {
                    lead.finish(Some(stored));
                }
            }
            Err(why) => {
                metrics::CACHE_NOT_STORED
                    .with_label_values(&[why.label()])
                    .inc();
                let _ = st.cache.take(&self.key).await;
            }
        }
        e
    }

    /// Asks the origin whether `stale` still holds (its validators as conditions). A 304:
    /// the stored headers are updated with the 304's (RFC 9111 §4.3.4), freshness computed
    /// again, the entry stored again (its retention still counts from the original fetch:
    /// the body is the same bytes) and answered (`REVALIDATED`). Any other answer streams to
    /// the client as it is and the stale entry is dropped, so the next request stores the new
    /// one. `Ok(None)`: the origin could not be asked; the caller proxies as for a miss.
    pub(super) async fn revalidate(
        &mut self,
        st: &Arc<State>,
        session: &mut Session,
        stale: Arc<Entry>,
        rec: &mut Record,
    ) -> Result<Option<u16>> {
        let mut req = session.req_header().clone();
        headers::to_origin(&mut req, &st.origin, headers::peer_ip(session))?;
        for (name, value) in validators(&stale) {
            let v = HeaderValue::from_bytes(value)
                .map_err(|_| pingora::Error::new_str("invalid stored validator"))?;
            req.insert_header(name, v)?;
        }
        let sent = std::time::Instant::now();
        let Ok(up) = crate::fetch::origin::send(&st.connector, &st.origin.peer(), req).await else {
            return Ok(None);
        };
        st.telemetry.origin.ok();
        rec.add_origin_time(sent.elapsed());
        if up.header.status.as_u16() >= 500 && may_stand_in(st, &stale) {
            count(rec, "stale");
            return answer(st, session, &stale, "STALE").await.map(Some);
        }
        if up.header.status.as_u16() != 304 {
            count(rec, "miss");
            let _ = st.cache.take(&self.key).await;
            return crate::proxy::respond::stream_through(st, session, up, Vec::new(), None, rec)
                .await
                .map(Some);
        }
        let peer = st.origin.peer();
        st.connector
            .release_http_session(up.session, &peer, Some(st.origin.idle_timeout()))
            .await;
        let e = self.refreshed(st, &stale, &up.header.headers).await;
        count(rec, "revalidated");
        answer(st, session, &e, "REVALIDATED").await.map(Some)
    }
}

/// The `outcome` label of a background refresh.
fn refresh_label(status: u16) -> &'static str {
    match status {
        304 => "not_modified",
        500.. => "origin_error",
        _ => "replaced",
    }
}
