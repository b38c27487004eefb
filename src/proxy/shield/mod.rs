//! The origin shield (`cache.scope: all`; issue 20, first part): GET responses that are not
//! image candidates are stored in the same cache as the variants (same tiers, byte limits,
//! retention cap, sweeper, sealing and purge) when the origin's headers let a shared cache
//! keep them, and answered from it while fresh. docs/caching.md, "Shield", has the rules and
//! what is not done yet (revalidation, stale-while-revalidate, collapsing, Vary beyond
//! `Accept-Encoding`, ranges from the cache, tags).
//!
//! Files: `mod.rs` (keys, lookup), `answer.rs` (writing a stored response), `store.rs`
//! (whether and how a response is stored), `vary.rs` (Vary markers), `range.rs`, `stale.rs`
//! (revalidation, stale-while-revalidate, stale-if-error), `invalidate.rs` (unsafe methods),
//! `tests.rs`.
//!
//! A request's path here: [`lookup`] in `request_filter` (a fresh entry answers at once, HEAD
//! included), else the request is proxied as before and [`Miss`] rides along in the context;
//! [`Miss::on_response`] in `response_filter` decides whether the response may be stored;
//! [`Pending::on_body`] in `response_body_filter` collects it (up to `cache.max_object_bytes`)
//! and stores it at the end. A successful unsafe request (POST, PUT, DELETE, PATCH) removes
//! what is stored for its URL and its `Location` / `Content-Location` ([`invalidate`]).

mod answer;
mod invalidate;
mod range;
mod stale;
mod store;
mod vary;

pub(crate) use answer::shape;
pub(crate) use invalidate::invalidate;
pub(crate) use stale::stand_in;

use super::state::State;
use crate::cache::config::Scope;
use crate::cache::flight::{Join, Leader, Waited};
use crate::cache::key::{source_of, KeyParts};
use crate::cache::{Entry, Key, Source};
use crate::telemetry::Record;
use answer::{answer, count, hit};
use bytes::BytesMut;
use http::{header, Method};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use store::{stored_headers, validated};
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
    let base = Base::of(st, req);
    let found = find(st, &base, req).await;
    if let Some(e) = found.fresh {
        return hit(st, session, &e, false, rec).await;
    }
    // Boxed: the miss's future (collapsing, revalidation) is large, and a hit would otherwise
    // carry and copy its state too.
    Box::pin(missed(st, session, base, found, rule_ttl, rec)).await
}

/// The rest of [`lookup`] for a key with no fresh entry: stale serving, collapsing,
/// revalidation, or the miss that pingora proxies.
async fn missed(
    st: &Arc<State>,
    session: &mut Session,
    base: Base,
    found: Found,
    rule_ttl: Option<Duration>,
    rec: &mut Record,
) -> Result<Option<std::result::Result<u16, Miss>>> {
    let get = session.req_header().method == Method::GET;
    // A miss: what its response would be stored with. Retention counts from here, before
    // the origin is asked; a purge from now on makes that response unstorable (epoch).
    let req = session.req_header();
    let ranged = req.headers.contains_key(header::RANGE);
    let source = source_of(&base.host, &base.path_and_query);
    let cookie = req.headers.contains_key(header::COOKIE);
    let started = SystemTime::now();
    let epoch = st.cache.epoch();
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
    // go to the origin themselves. Not for a URL whose last response could not be stored.
    let again = if st.cache.flights.uncacheable(&miss.key) {
        None
    } else {
        match st.cache.flights.join(miss.key) {
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

#[cfg(test)]
mod tests;
