//! The origin shield (`cache.scope: all`; issue 20, first part): GET responses that are not
//! image candidates are stored in the same cache as the variants (same tiers, byte limits,
//! retention cap, sweeper, sealing and purge) when the origin's headers let a shared cache
//! keep them, and answered from it while fresh. docs/caching.md, "Shield", has the rules and
//! what is not done yet (revalidation, stale-while-revalidate, collapsing, Vary beyond
//! `Accept-Encoding`, ranges from the cache, tags).
//!
//! A request's path here: [`lookup`] in `request_filter` (a fresh entry answers at once, HEAD
//! included), else the request is proxied as before and [`Miss`] rides along in the context;
//! [`Miss::on_response`] in `response_filter` decides whether the response may be stored;
//! [`Pending::on_body`] in `response_body_filter` collects it (up to `cache.max_object_bytes`)
//! and stores it at the end. A successful unsafe request (POST, PUT, DELETE, PATCH) removes
//! what is stored for its URL and its `Location` / `Content-Location` ([`invalidate`]).

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
use std::sync::Arc;
use std::time::SystemTime;

/// The `Entry::note` of shield entries (an image variant's note names its format).
pub(crate) const NOTE: &str = "shield";

/// The encoding classes a URL is stored under (the key holds the request's class, so a
/// gzip answer never reaches a client that did not ask for gzip).
const CLASSES: [&str; 3] = ["br", "gzip", "identity"];

/// A request that missed and may fill the shield with its response.
#[derive(Debug)]
pub(crate) struct Miss {
    key: Key,
    source: Source,
    epoch: u64,
    started: SystemTime,
    cookie: bool,
    /// This request leads the key's flight: concurrent misses wait for its entry (dropping
    /// it unfinished releases them to the origin).
    leader: Option<Leader>,
}

/// A storable response whose body is being collected.
#[derive(Debug)]
pub(crate) struct Pending {
    key: Key,
    leader: Option<Leader>,
    epoch: u64,
    entry: Option<Entry>,
    body: BytesMut,
    max: usize,
}

fn shield_on(st: &State) -> bool {
    st.cache.enabled() && st.cfg.cache.scope == Scope::All
}

/// The request's `Accept-Encoding` class.
fn class(req: &RequestHeader) -> &'static str {
    let ae = req
        .headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|t| {
            // `gzip;q=0` refuses gzip.
            !t.split(';')
                .skip(1)
                .any(|p| p.trim().replace(' ', "") == "q=0")
        })
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect::<Vec<_>>();
    if ae.iter().any(|t| t == "br") {
        "br"
    } else if ae.iter().any(|t| t == "gzip" || t == "x-gzip") {
        "gzip"
    } else {
        "identity"
    }
}

/// The shield key of `path_and_query` on `host` in encoding class `class`.
fn key_of(st: &State, host: &str, path_and_query: &str, class: &str) -> Key {
    KeyParts {
        origin: &st.cfg.origin.url,
        host,
        path_and_query,
        options: NOTE,
        plan: class,
        settings: "",
    }
    .key()
}

/// Looks `session`'s request up. `Ok(Some(Ok(status)))`: answered from the shield;
/// `Ok(Some(Err(miss)))`: not there, the response may fill it; `Ok(None)`: the shield does not
/// apply (off, not GET/HEAD, `Authorization`, `Range`).
pub(crate) async fn lookup(
    st: &State,
    session: &mut Session,
    rec: &mut Record,
) -> Result<Option<std::result::Result<u16, Miss>>> {
    if !shield_on(st) {
        return Ok(None);
    }
    let req = session.req_header();
    let get = req.method == Method::GET;
    if !(get || req.method == Method::HEAD)
        || req.headers.contains_key(header::AUTHORIZATION)
        || req.headers.contains_key(header::RANGE)
    {
        return Ok(None);
    }
    let host = st.origin.host_for(req).to_string();
    let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let key = key_of(st, &host, pq, class(req));
    let source = source_of(&host, pq);
    let cookie = req.headers.contains_key(header::COOKIE);
    let started = SystemTime::now();
    let epoch = st.cache.epoch();
    if let Some((e, _tier)) = st.cache.get(&key).await {
        if e.note == NOTE {
            metrics::SHIELD_REQUESTS.with_label_values(&["hit"]).inc();
            rec.cache = "hit";
            return answer(st, session, &e, "HIT").await.map(|s| Some(Ok(s)));
        }
    }
    metrics::SHIELD_REQUESTS.with_label_values(&["miss"]).inc();
    rec.cache = "miss";
    if !get {
        // A HEAD's answer has no body to store.
        return Ok(None);
    }
    // Collapsing: the first miss leads; the others wait for its entry, up to
    // `cache.collapse_wait`, then go to the origin themselves.
    let leader = match st.cache.flights.join(key) {
        Join::Follower(f) => {
            if let Waited::Entry(e) = f.wait(st.cfg.cache.collapse_wait.get()).await {
                if e.note == NOTE {
                    metrics::CACHE_COALESCED.inc();
                    rec.cache = "hit";
                    return answer(st, session, &e, "HIT").await.map(|s| Some(Ok(s)));
                }
            }
            None
        }
        // A new leader looks once more: the previous flight may have stored it just now.
        Join::Leader(lead) => match st.cache.get(&key).await {
            Some((e, _)) if e.note == NOTE => {
                lead.finish(Some(e.clone()));
                rec.cache = "hit";
                return answer(st, session, &e, "HIT").await.map(|s| Some(Ok(s)));
            }
            _ => Some(lead),
        },
    };
    let mut miss = Miss {
        key,
        source,
        epoch,
        started,
        cookie,
        leader,
    };
    // A stale entry with a validator is revalidated, unless the client sent conditions of its
    // own (then the origin's answer to those goes to the client as it is).
    let req = session.req_header();
    let own_conditions = req.headers.contains_key(header::IF_NONE_MATCH)
        || req.headers.contains_key(header::IF_MODIFIED_SINCE);
    if !own_conditions {
        if let Some(stale) = st.cache.get_stale(&miss.key).await {
            if stale.note == NOTE && validators(&stale).next().is_some() {
                if let Some(status) = miss.revalidate(st, session, stale, rec).await? {
                    // A flight led by a revalidation ends with the request (its entry, when
                    // refreshed, is in the cache for anyone who looks again).
                    return Ok(Some(Ok(status)));
                }
            }
        }
    }
    Ok(Some(Err(miss)))
}

/// Whether stale `e` may still stand in for a failing origin: within its `stale-if-error`
/// window (the origin's directive, else `cache.stale_if_error`) past its freshness. Its
/// retention cap holds regardless (the cache drops it by then).
fn may_stand_in(st: &State, e: &Entry) -> bool {
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
fn validators(e: &Entry) -> impl Iterator<Item = (header::HeaderName, &[u8])> {
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

/// Shapes a response header the way every proxied answer is shaped (hints, SVG containment,
/// `Via`); the hit path and `response_filter` both call it.
pub(crate) fn shape(st: &State, resp: &mut ResponseHeader) -> Result<()> {
    st.advertise_hints(resp)?;
    headers::contain_svg(resp)?;
    headers::forward_response(resp)
}

/// Writes a stored response: 200 (or 304 for a matching `If-None-Match`), its headers, `Age`,
/// the cache-status header; no body for HEAD.
async fn answer(st: &State, session: &mut Session, e: &Entry, status: &str) -> Result<u16> {
    let req = session.req_header();
    let head = req.method == Method::HEAD;
    let not_modified = e
        .etag
        .as_deref()
        .is_some_and(|tag| headers::if_none_match(req.headers.get(header::IF_NONE_MATCH), tag));
    let code = if not_modified { 304 } else { 200 };
    let mut resp = stored_response(code, e)?;
    if !not_modified {
        resp.insert_header(header::CONTENT_LENGTH, e.body.len().to_string())?;
    }
    resp.insert_header(header::AGE, e.age(SystemTime::now()).to_string())?;
    shape(st, &mut resp)?;
    if let Some(name) = &st.cfg.cache.status_header {
        resp.insert_header(name.clone(), status)?;
    }
    let bodyless = not_modified || head;
    session
        .write_response_header(Box::new(resp), bodyless)
        .await?;
    if !bodyless {
        metrics::SHIELD_BYTES_SAVED.inc_by(e.body.len() as u64);
        session
            .write_response_body(Some(e.body.clone()), true)
            .await?;
    }
    Ok(code)
}

impl Miss {
    /// Decides, from the origin's response header, whether it will be stored (its body is
    /// then collected); marks the answer `MISS`.
    pub(crate) fn on_response(
        self,
        st: &State,
        resp: &mut ResponseHeader,
    ) -> Result<Option<Pending>> {
        if let Some(name) = &st.cfg.cache.status_header {
            resp.insert_header(name.clone(), "MISS")?;
        }
        if resp.status.as_u16() != 200 {
            return Ok(None);
        }
        let not_stored = |reason: &str| {
            metrics::CACHE_NOT_STORED.with_label_values(&[reason]).inc();
            Ok(None)
        };
        let cfg = &st.cfg.cache;
        let limits = self.limits(st);
        let now = SystemTime::now();
        let ttl = match policy::shield_ttl(&resp.headers, &limits, now) {
            Ok(t) => t,
            Err(why) => return not_stored(why.label()),
        };
        let validated = resp.headers.contains_key(header::ETAG)
            || resp.headers.contains_key(header::LAST_MODIFIED);
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
        let origin_age = age_of(&resp.headers);
        let entry = Entry {
            headers: stored_headers(&resp.headers, st.cfg.cache.status_header.as_deref()),
            body: Bytes::new(),
            etag,
            note: NOTE.into(),
            source: self.source,
            // Retention counts from when the origin was asked. With a validator the entry is kept
            // past its freshness (never past the retention cap) to be revalidated.
            created: self.started,
            fresh_until: self.started + ttl,
            expires: if validated {
                self.started + cfg.max_retention.get()
            } else {
                // Kept past freshness only to stand in for a failing origin.
                self.started + ttl + policy::stale_if_error(&resp.headers, cfg.stale_if_error.get())
            },
            origin_age,
            source_bytes: 0,
            source_format: "unknown".into(),
        };
        Ok(Some(Pending {
            key: self.key,
            leader: self.leader,
            epoch: self.epoch,
            entry: Some(entry),
            body: BytesMut::with_capacity(declared.unwrap_or(0).min(max)),
            max,
        }))
    }

    /// Asks the origin whether `stale` still holds (its validators as conditions). A 304:
    /// the stored headers are updated with the 304's (RFC 9111 §4.3.4), freshness computed
    /// again, the entry stored again (its retention still counts from the original fetch:
    /// the body is the same bytes) and answered (`REVALIDATED`). Any other answer streams to
    /// the client as it is and the stale entry is dropped, so the next request stores the new
    /// one. `Ok(None)`: the origin could not be asked; the caller proxies as for a miss.
    async fn revalidate(
        &mut self,
        st: &State,
        session: &mut Session,
        stale: Arc<Entry>,
        rec: &mut Record,
    ) -> Result<Option<u16>> {
        let mut req = session.req_header().clone();
        headers::strip_request(&mut req);
        req.set_version(http::Version::HTTP_11);
        st.origin.set_host(&mut req)?;
        headers::forward_request(&mut req, headers::peer_ip(session))?;
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
            return super::respond::stream_through(st, session, up, Vec::new(), None, rec)
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

    /// The freshness limits for this request's response.
    fn limits(&self, st: &State) -> Limits {
        let cfg = &st.cfg.cache;
        Limits {
            default_ttl: cfg.default_ttl.get(),
            rule_ttl: None,
            max_retention: cfg.max_retention.get(),
            needs_public: self.cookie && cfg.cookies == CookiePolicy::RequirePublic,
        }
    }
}

/// A header list as a map (invalid names or values, which stored lists never hold, skipped).
fn header_map(list: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in list {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            m.append(k, v);
        }
    }
    m
}

/// The origin's `Age`, in seconds (0 when absent or malformed).
fn age_of(h: &HeaderMap) -> u64 {
    h.get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
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

/// After a successful unsafe request (RFC 9111 §4.4): removes what the shield holds for its
/// URL and for its `Location` / `Content-Location` on the same host, in every encoding class.
pub(crate) async fn invalidate(st: &State, req: &RequestHeader, resp: &ResponseHeader) {
    if !shield_on(st)
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
            if st.cache.take(&key_of(st, &host, t, c)).await.is_some() {
                removed += 1;
            }
        }
    }
    metrics::SHIELD_INVALIDATED.inc_by(removed);
}

/// `target` (a `Location` value) as a path and query when it names `host`: a path, or an
/// absolute http(s) URL whose authority is `host`.
fn same_host_target(target: &str, host: &str) -> Option<String> {
    if target.starts_with('/') && !target.starts_with("//") {
        return Some(target.to_string());
    }
    let uri: http::Uri = target.parse().ok()?;
    let auth = uri.authority()?.as_str();
    let same = crate::cache::key::normalize_host(auth) == crate::cache::key::normalize_host(host);
    same.then(|| uri.path_and_query().map_or("/", |p| p.as_str()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ae: &str) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).expect("request");
        if !ae.is_empty() {
            r.insert_header("accept-encoding", ae).expect("header");
        }
        r
    }

    #[test]
    fn encoding_classes() {
        assert_eq!(class(&req("gzip, deflate, br, zstd")), "br");
        assert_eq!(class(&req("gzip, deflate")), "gzip");
        assert_eq!(class(&req("br;q=0, gzip")), "gzip");
        assert_eq!(class(&req("identity")), "identity");
        assert_eq!(class(&req("")), "identity");
    }

    #[test]
    fn locations_on_the_same_host_only() {
        assert_eq!(same_host_target("/a?b", "x.test").as_deref(), Some("/a?b"));
        assert_eq!(
            same_host_target("http://X.test:80/p", "x.test").as_deref(),
            Some("/p")
        );
        assert_eq!(same_host_target("https://other.test/p", "x.test"), None);
        assert_eq!(same_host_target("//other.test/p", "x.test"), None);
    }

    #[test]
    fn stored_headers_drop_per_answer_and_hop_by_hop_fields() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("content-type", "text/css"),
            ("content-length", "10"),
            ("connection", "keep-alive"),
            ("age", "3"),
            ("via", "1.1 origin"),
            ("x-cache", "MISS"),
            ("etag", "\"a\""),
        ] {
            h.insert(
                http::header::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        let names: Vec<String> = stored_headers(&h, Some("X-Cache"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["content-type", "etag"]);
    }
}
