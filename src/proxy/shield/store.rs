//! Filling the shield: whether the origin's response may be stored (under which key, with
//! which deadlines) and collecting its body.

use super::vary::Marker;
use super::{stale, Miss, Pending, NOTE};
use crate::cache::policy::{self, Limits};
use crate::cache::Entry;
use crate::proxy::headers;
use crate::proxy::state::State;
use crate::telemetry::metrics;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use std::sync::Arc;
use std::time::SystemTime;

impl Miss {
    /// Decides, from the origin's response header, whether it will be stored (its body is
    /// then collected); marks the answer `MISS`.
    pub(crate) fn on_response(
        self,
        st: &Arc<State>,
        req: &RequestHeader,
        resp: &mut ResponseHeader,
    ) -> Result<Option<Pending>> {
        if let Some(name) = &st.cfg.cache.status_header {
            resp.insert_header(name.clone(), "MISS")?;
        }
        let not_stored = |reason: &str| {
            metrics::CACHE_NOT_STORED.with_label_values(&[reason]).inc();
            st.cache.flights.mark_uncacheable(self.key);
            Ok(None)
        };
        let cfg = &st.cfg.cache;
        let limits = self.limits(st);
        let now = SystemTime::now();
        let status = resp.status.as_u16();
        let ttl = match policy::shield_ttl(&resp.headers, status, &limits, now) {
            Ok(t) => t,
            Err(why) => return not_stored(why.label()),
        };
        let validated = validated(&resp.headers);
        if ttl.is_zero() && !validated {
            return not_stored("stale");
        }
        let max = usize::try_from(cfg.object_limit()).unwrap_or(usize::MAX);
        let declared = resp
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > max) {
            return not_stored("too_large");
        }
        st.cache.flights.cacheable(&self.key);
        let etag = resp
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let origin_age = policy::age(&resp.headers);
        // A response that varies on request headers goes under its secondary key, listed in
        // the URL's marker (a new generation when the fields changed).
        let names = policy::vary_fields(&resp.headers).unwrap_or_default();
        let (key, marker) = if names.is_empty() {
            (self.key, None)
        } else {
            let mut m = match self.marker {
                Some(m) if m.names_are(&names) => m,
                _ => Marker::new(names),
            };
            let key = m.key(st, &self.base, req);
            let dropped = m.add(key, cfg.max_variants);
            let e = m.entry(self.source.clone(), now, cfg.hold_limit());
            (key, Some((self.base.primary(st), Arc::new(e), dropped)))
        };
        let entry = Entry {
            status,
            headers: stored_headers(&resp.headers, st.cfg.cache.status_header.as_deref()),
            body: Bytes::new(),
            etag,
            note: NOTE.into(),
            source: self.source.tagged(&resp.headers),
            // Retention counts from when the origin was asked. With a validator the entry is kept
            // past its freshness (never past the retention cap) to be revalidated.
            created: self.started,
            fresh_until: self.started + ttl,
            expires: if validated {
                self.started + cfg.max_retention.get()
            } else {
                // Kept past freshness only to be served while refreshed or in place of a
                // failing origin.
                self.started + ttl + stale::window(st, &resp.headers)
            },
            origin_age,
            source_bytes: 0,
            source_format: "unknown".into(),
            source_etag: None,
        };
        let mut pending = Pending {
            key,
            marker,
            leader: self.leader,
            epoch: self.epoch,
            entry: Some(entry),
            body: BytesMut::with_capacity(declared.unwrap_or(0).min(max)),
            max,
        };
        if status == 204 {
            // No body will come through the body filter: stored now.
            pending.on_body(st, None, true);
            return Ok(None);
        }
        Ok(Some(pending))
    }

    /// The freshness limits for this request's response.
    pub(super) fn limits(&self, st: &State) -> Limits {
        st.cache.limits(self.rule_ttl, self.cookie)
    }
}

/// Whether a response carries a validator (`ETag`, `Last-Modified`): then it is kept past its
/// freshness (never past retention) to be revalidated.
pub(super) fn validated(h: &HeaderMap) -> bool {
    h.contains_key(header::ETAG) || h.contains_key(header::LAST_MODIFIED)
}

/// The origin's headers as a shield entry replays them: without hop-by-hop headers,
/// `Content-Length` and `Age` (written per answer), `Via` (added per answer) and the
/// cache-status header.
pub(super) fn stored_headers(h: &HeaderMap, status_header: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut h = h.clone();
    headers::strip_hop_by_hop(&mut h);
    h.iter()
        .filter(|(n, _)| {
            !matches!(n.as_str(), "content-length" | "age" | "via" | "set-cookie")
                && status_header.is_none_or(|s| !n.as_str().eq_ignore_ascii_case(s))
        })
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

impl Pending {
    /// Collects a body chunk; at the end, stores the entry. `false`: the body passed
    /// `cache.max_object_bytes`, nothing will be stored (drop this).
    pub(crate) fn on_body(&mut self, st: &Arc<State>, chunk: Option<&Bytes>, end: bool) -> bool {
        if let Some(b) = chunk {
            if self.body.len() + b.len() > self.max {
                metrics::CACHE_NOT_STORED
                    .with_label_values(&["too_large"])
                    .inc();
                st.cache.flights.mark_uncacheable(self.key);
                return false;
            }
            self.body.extend_from_slice(b);
        }
        if end {
            if let Some(mut e) = self.entry.take() {
                e.body = std::mem::take(&mut self.body).freeze();
                e.source_bytes = e.body.len() as u64;
                metrics::SHIELD_STORED.inc();
                if let Some((primary, marker, dropped)) = self.marker.take() {
                    tokio::spawn(st.cache.insert(primary, marker, self.epoch));
                    let st = st.clone();
                    tokio::spawn(async move {
                        for k in dropped {
                            let _ = st.cache.take(&k).await;
                        }
                    });
                }
                let e = st.cache.within_retention(Arc::new(e));
                tokio::spawn(st.cache.insert(self.key, e.clone(), self.epoch));
                if let Some(lead) = self.leader.take() {
                    lead.finish(Some(e));
                }
            }
        }
        true
    }
}
