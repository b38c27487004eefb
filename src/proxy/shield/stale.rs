//! Stale shield entries: revalidation with the origin (RFC 9111 §4.3) and standing in for a
//! failing origin (`stale-if-error`, RFC 5861).

use super::{age_of, answer, header_map, stored_headers, Miss, NOTE};
use crate::cache::policy;
use crate::cache::Entry;
use crate::proxy::headers;
use crate::proxy::state::State;
use crate::telemetry::{metrics, Record};
use http::{header, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::SystemTime;

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
    metrics::SHIELD_REQUESTS.with_label_values(&["stale"]).inc();
    rec.cache = "stale";
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
        .headers
        .iter()
        .find(|(k, _)| k == "last-modified")
        .map(|(_, v)| (header::IF_MODIFIED_SINCE, v.as_slice()));
    etag.into_iter().chain(lm)
}

impl Miss {
    /// Asks the origin whether `stale` still holds (its validators as conditions). A 304:
    /// the stored headers are updated with the 304's (RFC 9111 §4.3.4), freshness computed
    /// again, the entry stored again (its retention still counts from the original fetch:
    /// the body is the same bytes) and answered (`REVALIDATED`). Any other answer streams to
    /// the client as it is and the stale entry is dropped, so the next request stores the new
    /// one. `Ok(None)`: the origin could not be asked; the caller proxies as for a miss.
    pub(super) async fn revalidate(
        &mut self,
        st: &State,
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
            metrics::SHIELD_REQUESTS.with_label_values(&["stale"]).inc();
            rec.cache = "stale";
            return answer(st, session, &stale, "STALE").await.map(Some);
        }
        if up.header.status.as_u16() != 304 {
            let _ = st.cache.take(&self.key).await;
            return crate::proxy::respond::stream_through(st, session, up, Vec::new(), None, rec)
                .await
                .map(Some);
        }
        let peer = st.origin.peer();
        st.connector
            .release_http_session(up.session, &peer, Some(st.origin.idle_timeout()))
            .await;
        let mut merged = header_map(&stale.headers);
        let fresh = stored_headers(&up.header.headers, st.cfg.cache.status_header.as_deref());
        for (k, _) in &fresh {
            if let Ok(k) = header::HeaderName::from_bytes(k.as_bytes()) {
                merged.remove(k);
            }
        }
        for (k, v) in header_map(&fresh) {
            if let Some(k) = k {
                merged.append(k, v);
            }
        }
        let now = SystemTime::now();
        let mut e = (*stale).clone();
        e.headers = stored_headers(&merged, None);
        e.etag = merged
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        e.origin_age = age_of(&up.header.headers);
        match policy::shield_ttl(&merged, &self.limits(st), now) {
            Ok(ttl) => {
                // Freshness restarts now; Cache::insert caps it at the original retention.
                e.fresh_until = now + ttl;
                let e = st.cache.within_retention(Arc::new(e.clone()));
                st.cache.insert(self.key, e.clone(), self.epoch).await;
                if let Some(lead) = self.leader.take() {
                    lead.finish(Some(e));
                }
            }
            Err(why) => {
                // The origin now forbids storing it: answered this once, kept no longer.
                metrics::CACHE_NOT_STORED
                    .with_label_values(&[why.label()])
                    .inc();
                let _ = st.cache.take(&self.key).await;
            }
        }
        metrics::SHIELD_REQUESTS
            .with_label_values(&["revalidated"])
            .inc();
        rec.cache = "revalidated";
        answer(st, session, &e, "REVALIDATED").await.map(Some)
    }
}
