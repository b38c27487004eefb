//! The origin shield (`cache.scope: all`; issue 20, first part): GET responses that are not
//! image candidates are stored in the same cache as the variants (same tiers, byte limits,
//! retention cap, sweeper, sealing and purge) when the origin's headers let a shared cache
//! keep them, and answered from it while fresh. docs/caching.md, "Shield", has the rules and
//! what is not done yet (revalidation, stale-while-revalidate, collapsing, Vary beyond
//! `Accept-Encoding`, ranges from the cache, tags).
//!
//! Files: `mod.rs` (lookup, storing, answering), `stale.rs` (revalidation, stale-if-error),
//! `invalidate.rs` (unsafe methods), `tests.rs`.
//!
//! A request's path here: [`lookup`] in `request_filter` (a fresh entry answers at once, HEAD
//! included), else the request is proxied as before and [`Miss`] rides along in the context;
//! [`Miss::on_response`] in `response_filter` decides whether the response may be stored;
//! [`Pending::on_body`] in `response_body_filter` collects it (up to `cache.max_object_bytes`)
//! and stores it at the end. A successful unsafe request (POST, PUT, DELETE, PATCH) removes
//! what is stored for its URL and its `Location` / `Content-Location` ([`invalidate`]).

mod invalidate;
mod range;
mod stale;
mod vary;

pub(crate) use invalidate::invalidate;
pub(crate) use stale::stand_in;

use super::headers;
use super::state::State;
use crate::cache::config::{CookiePolicy, Scope};
use crate::cache::flight::{Join, Leader, Waited};
use crate::cache::key::{source_of, KeyParts};
use crate::cache::policy::{self, Limits};
use crate::cache::{Entry, Key, Source};
use crate::telemetry::{metrics, Record};
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use range::Ranged;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use vary::Marker;

/// The `Entry::note` of shield entries (an image variant's note names its format).
pub(crate) const NOTE: &str = "shield";

/// The encoding classes a URL is stored under (the key holds the request's class, so a
/// gzip answer never reaches a client that did not ask for gzip).
const CLASSES: [&str; 3] = ["br", "gzip", "identity"];

/// The parts of a request's primary shield key.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    host: String,
    path_and_query: String,
    class: &'static str,
}

impl Base {
    fn of(st: &State, req: &RequestHeader) -> Base {
        Base {
            host: st.origin.host_for(req).to_string(),
            path_and_query: req
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            class: class(req),
        }
    }

    /// The key for `vary` (empty: the primary key; else a [`vary::Marker`]'s secondary).
    fn key(&self, st: &State, vary: &str) -> Key {
        key_of(st, &self.host, &self.path_and_query, self.class, vary)
    }

    fn primary(&self, st: &State) -> Key {
        self.key(st, "")
    }
}

/// A request that missed and may fill the shield with its response.
#[derive(Debug)]
pub(crate) struct Miss {
    base: Base,
    /// Where its response would go: the primary key, or the secondary key under `marker`.
    key: Key,
    marker: Option<Marker>,
    source: Source,
    epoch: u64,
    started: SystemTime,
    cookie: bool,
    /// The matching rule's `ttl` cap.
    rule_ttl: Option<Duration>,
    /// This request leads the key's flight: concurrent misses wait for its entry (dropping
    /// it unfinished releases them to the origin).
    leader: Option<Leader>,
}

/// A storable response whose body is being collected.
#[derive(Debug)]
pub(crate) struct Pending {
    key: Key,
    /// The URL's marker to store at its primary key, and the variants it no longer lists.
    marker: Option<(Key, Arc<Entry>, Vec<Key>)>,
    leader: Option<Leader>,
    epoch: u64,
    entry: Option<Entry>,
    body: BytesMut,
    max: usize,
}

/// The request's `Accept-Encoding` class.
fn class(req: &RequestHeader) -> &'static str {
    let (mut br, mut gzip) = (false, false);
    let tokens = req
        .headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for t in tokens {
        let mut parts = t.split(';');
        let coding = parts.next().unwrap_or("").trim();
        // `gzip;q=0` refuses gzip.
        if parts.any(|p| p.trim().replace(' ', "") == "q=0") {
            continue;
        }
        br |= coding.eq_ignore_ascii_case("br");
        gzip |= coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip");
    }
    if br {
        "br"
    } else if gzip {
        "gzip"
    } else {
        "identity"
    }
}

/// The shield key of `path_and_query` on `host` in encoding class `class`, for `vary` (empty
/// for the primary key).
fn key_of(st: &State, host: &str, path_and_query: &str, class: &str, vary: &str) -> Key {
    KeyParts {
        origin: &st.cfg.origin.url,
        host,
        path_and_query,
        options: NOTE,
        plan: class,
        settings: vary,
    }
    .key()
}

/// What the shield holds for a request.
struct Found {
    /// Where its response is (or would be) stored.
    key: Key,
    /// The URL's `Vary` marker, when its responses vary on request headers.
    marker: Option<Marker>,
    /// A fresh stored response.
    fresh: Option<Arc<Entry>>,
}

/// Looks up `req`: its primary key, and through a marker found there, its secondary key.
async fn find(st: &State, base: &Base, req: &RequestHeader) -> Found {
    let primary = base.primary(st);
    let found = st.cache.get(&primary).await.map(|(e, _)| e);
    match found.as_deref().and_then(Marker::of) {
        Some(m) => {
            let key = m.key(st, base, req);
            let fresh = st.cache.get(&key).await.map(|(e, _)| e);
            Found {
                key,
                marker: Some(m),
                fresh: fresh.filter(|e| e.note == NOTE),
            }
        }
        None => Found {
            key: primary,
            marker: None,
            fresh: found.filter(|e| e.note == NOTE),
        },
    }
}

/// Looks `session`'s request up. `Ok(Some(Ok(status)))`: answered from the shield (fresh, or
/// stale within `stale-while-revalidate` while one background request refreshes it);
/// `Ok(Some(Err(miss)))`: not there, the response may fill it; `Ok(None)`: the shield does not
/// apply (off, not GET/HEAD, `Authorization`) or the request goes to the origin as it is
/// (a HEAD or a `Range` request that missed).
pub(crate) async fn lookup(
    st: &Arc<State>,
    session: &mut Session,
    scope: Scope,
    rule_ttl: Option<Duration>,
    rec: &mut Record,
) -> Result<Option<std::result::Result<u16, Miss>>> {
    if !(st.cache.enabled() && scope.shield()) {
        return Ok(None);
    }
    let req = session.req_header();
    let get = req.method == Method::GET;
    if !(get || req.method == Method::HEAD) || req.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let ranged = req.headers.contains_key(header::RANGE);
    let base = Base::of(st, req);
    let source = source_of(&base.host, &base.path_and_query);
    let cookie = req.headers.contains_key(header::COOKIE);
    let started = SystemTime::now();
    let epoch = st.cache.epoch();
    let found = find(st, &base, req).await;
    if let Some(e) = found.fresh {
        return hit(st, session, &e, false, rec).await;
    }
    let stale = st
        .cache
        .get_stale(&found.key)
        .await
        .filter(|e| e.note == NOTE);
    let mut miss = Miss {
        base,
        key: found.key,
        marker: found.marker,
        source,
        epoch,
        started,
        cookie,
        rule_ttl,
        leader: None,
    };
    if let Some(e) = stale
        .as_ref()
        .filter(|e| stale::may_serve_while_revalidating(st, e))
    {
        stale::refresh_in_background(st, session, miss, e.clone());
        count(rec, "stale");
        return answer(st, session, e, "STALE").await.map(|s| Some(Ok(s)));
    }
    if !get || ranged {
        // A HEAD's answer has no body to store and a range is forwarded as asked, but a
        // fetch of the whole response under way may answer them.
        if let Some(f) = st.cache.flights.follow(&miss.key) {
            if let Waited::Entry(_) = f.wait(st.cfg.cache.collapse_wait.get()).await {
                if let Some(e) = find(st, &miss.base, session.req_header()).await.fresh {
                    return hit(st, session, &e, true, rec).await;
                }
            }
        }
        count(rec, "miss");
        return Ok(None);
    }
    // Collapsing: the first miss leads; the others wait for its entry, up to
    // `cache.collapse_wait`, then look again (its response may vary on what they sent) and
    // go to the origin themselves.
    let again = match st.cache.flights.join(miss.key) {
        Join::Follower(f) => match f.wait(st.cfg.cache.collapse_wait.get()).await {
            Waited::Entry(_) => Some(find(st, &miss.base, session.req_header()).await),
            _ => None,
        },
        // A new leader looks once more: the previous flight may have stored it just now.
        Join::Leader(lead) => {
            let f = find(st, &miss.base, session.req_header()).await;
            match &f.fresh {
                Some(e) => lead.finish(Some(e.clone())),
                None => miss.leader = Some(lead),
            }
            Some(f)
        }
    };
    if let Some(f) = again {
        if let Some(e) = f.fresh {
            return hit(st, session, &e, true, rec).await;
        }
        miss.key = f.key;
        miss.marker = f.marker;
    }
    // A stale entry with a validator is revalidated, unless the client sent conditions of its
    // own (then the origin's answer to those goes to the client as it is).
    let req = session.req_header();
    let own_conditions = req.headers.contains_key(header::IF_NONE_MATCH)
        || req.headers.contains_key(header::IF_MODIFIED_SINCE);
    if !own_conditions {
        if let Some(stale) = stale.filter(|e| stale::validators(e).next().is_some()) {
            if let Some(status) = miss.revalidate(st, session, stale, rec).await? {
                // A flight led by a revalidation ends with the request (its entry, when
                // refreshed, is in the cache for anyone who looks again).
                return Ok(Some(Ok(status)));
            }
        }
    }
    count(rec, "miss");
    Ok(Some(Err(miss)))
}

/// Counts one lookup's result (`hit`, `miss`, `revalidated`, `stale`) in the metric and the
/// access record.
fn count(rec: &mut Record, status: &'static str) {
    metrics::SHIELD_REQUESTS.with_label_values(&[status]).inc();
    rec.cache = status;
}

/// Answers a fresh entry (`collapsed`: found after waiting for another request's fetch).
async fn hit(
    st: &State,
    session: &mut Session,
    e: &Entry,
    collapsed: bool,
    rec: &mut Record,
) -> Result<Option<std::result::Result<u16, Miss>>> {
    if collapsed {
        metrics::CACHE_COALESCED.inc();
    }
    count(rec, "hit");
    answer(st, session, e, "HIT").await.map(|s| Some(Ok(s)))
}

/// Shapes a response header the way every proxied answer is shaped (hints, SVG containment,
/// tags hidden, `Via`); the hit path and `response_filter` both call it.
pub(crate) fn shape(st: &State, resp: &mut ResponseHeader) -> Result<()> {
    st.advertise_hints(resp)?;
    headers::contain_svg(resp)?;
    headers::hide_tags(resp, st.cfg.cache.expose_tags);
    headers::forward_response(resp)
}

/// Writes a stored response: its status (a 200 may become a 304 for the client's
/// `If-None-Match` / `If-Modified-Since`, or a 206/416 for its `Range`), its headers, `Age`,
/// the cache-status header; no body for HEAD.
async fn answer(st: &State, session: &mut Session, e: &Entry, status: &str) -> Result<u16> {
    let req = session.req_header();
    let head = req.method == Method::HEAD;
    let last_modified = e.header("last-modified");
    let ok = e.status == 200;
    // Without Last-Modified, the response's Date stands for it (RFC 9110 §13.1.3).
    let modified = last_modified.or_else(|| e.header("date"));
    let not_modified = ok && not_modified(&req.headers, e.etag.as_deref(), modified);
    let len = e.body.len();
    let ranged = if ok && !not_modified {
        range::decide(
            req.headers.get(header::RANGE),
            req.headers.get(header::IF_RANGE),
            e.etag.as_deref(),
            last_modified,
            len,
        )
    } else {
        Ranged::Full
    };
    let (code, body) = match ranged {
        _ if not_modified => (304, None),
        // A 204 has no body, nor a Content-Length.
        Ranged::Full if e.status == 204 => (204, None),
        Ranged::Full => (e.status, Some(e.body.clone())),
        Ranged::Part { start, end } => (206, Some(e.body.slice(start..=end))),
        Ranged::Unsatisfiable => (416, Some(Bytes::new())),
    };
    let mut resp = stored_response(code, e)?;
    if let Some(b) = &body {
        resp.insert_header(header::CONTENT_LENGTH, b.len().to_string())?;
    }
    match ranged {
        Ranged::Part { start, end } => {
            resp.insert_header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))?;
        }
        Ranged::Unsatisfiable => {
            resp.insert_header(header::CONTENT_RANGE, format!("bytes */{len}"))?;
        }
        Ranged::Full => {}
    }
    if ok && !not_modified {
        resp.insert_header(header::ACCEPT_RANGES, "bytes")?;
    }
    resp.insert_header(header::AGE, e.age(SystemTime::now()).to_string())?;
    shape(st, &mut resp)?;
    if let Some(name) = &st.cfg.cache.status_header {
        resp.insert_header(name.clone(), status)?;
    }
    let body = body.filter(|b| !head && !b.is_empty());
    session
        .write_response_header(Box::new(resp), body.is_none())
        .await?;
    if let Some(b) = body {
        metrics::SHIELD_BYTES_SAVED.inc_by(b.len() as u64);
        session.write_response_body(Some(b), true).await?;
    }
    Ok(code)
}

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
    fn limits(&self, st: &State) -> Limits {
        let cfg = &st.cfg.cache;
        Limits {
            default_ttl: cfg.default_ttl.get(),
            rule_ttl: self.rule_ttl,
            max_retention: cfg.max_retention.get(),
            needs_public: self.cookie && cfg.cookies == CookiePolicy::RequirePublic,
        }
    }
}

/// Whether the client's conditions say it holds this response (RFC 9110 §13.2.2):
/// `If-None-Match` against the ETag (weak comparison); without it, `If-Modified-Since` at or
/// after `Last-Modified`.
fn not_modified(req: &HeaderMap, etag: Option<&str>, last_modified: Option<&[u8]>) -> bool {
    if let Some(inm) = req.get(header::IF_NONE_MATCH) {
        return etag.is_some_and(|tag| headers::if_none_match(Some(inm), tag));
    }
    let date = |v: &[u8]| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
    };
    match (
        req.get(header::IF_MODIFIED_SINCE)
            .and_then(|v| date(v.as_bytes())),
        last_modified.and_then(date),
    ) {
        (Some(since), Some(lm)) => lm <= since,
        _ => false,
    }
}

/// Whether a response carries a validator (`ETag`, `Last-Modified`): then it is kept past its
/// freshness (never past retention) to be revalidated.
fn validated(h: &HeaderMap) -> bool {
    h.contains_key(header::ETAG) || h.contains_key(header::LAST_MODIFIED)
}

/// A response header with `code` and `e`'s stored headers.
fn stored_response(code: u16, e: &Entry) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(code, Some(e.headers.len() + 4))?;
    for (name, value) in &e.headers {
        let v = HeaderValue::from_bytes(value)
            .map_err(|_| pingora::Error::new_str("invalid stored header"))?;
        resp.append_header(name.clone(), v)?;
    }
    Ok(resp)
}

/// The origin's headers as a shield entry replays them: without hop-by-hop headers,
/// `Content-Length` and `Age` (written per answer), `Via` (added per answer) and the
/// cache-status header.
fn stored_headers(h: &HeaderMap, status_header: Option<&str>) -> Vec<(String, Vec<u8>)> {
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

#[cfg(test)]
mod tests;
