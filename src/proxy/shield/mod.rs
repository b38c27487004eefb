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
mod stale;

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
            if stale.note == NOTE && stale::validators(&stale).next().is_some() {
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

#[cfg(test)]
mod tests;
