//! The image path. pingora writes a response header before it sees the body, so a body filter
//! could not change Content-Type or fall back to the original after a failed or larger
//! transform. This path therefore answers from `request_filter`:
//!
//! 1. negotiate a [`Plan`] from Accept and build the variant [`Key`];
//! 2. serve a cache hit, or join the flight for the key (one leader fetches and transforms,
//!    the others wait for its entry);
//! 3. the leader fetches the origin, sniffs, streams a non-image through, or transforms the
//!    image on the pool and stores the result when the origin allows;
//! 4. a cold AVIF variant not ready within `cache.avif_budget` is answered with the WebP
//!    variant while AVIF finishes in the background.

use super::headers;
use super::origin::{self, FetchError, Upstream};
use super::respond::{self, CacheStatus};
use super::service::State;
use crate::cache::flight::{Join, Leader, Waited};
use crate::cache::policy::{self, NoStore};
use crate::cache::{Entry, Key, KeyParts};
use crate::image::format::{sniff, SourceFormat, SNIFF_LEN};
use crate::image::pipeline::{Job, Outcome};
use crate::image::pool::PoolResult;
use crate::image::Reason;
use crate::request::accept::Accept;
use crate::request::negotiate::Plan;
use crate::telemetry::metrics;
use bytes::{Bytes, BytesMut};
use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One image request: what to fetch and how to name its variants.
struct Request {
    /// The request sent to the origin.
    origin_req: RequestHeader,
    /// Host the origin sees (key part).
    host: String,
    /// Path and query sent to the origin (key part).
    path_and_query: String,
    /// Whether this request may use the cache at all.
    cacheable: bool,
}

impl Request {
    fn key(&self, st: &State, plan: &Plan) -> Key {
        self.parts(st, &plan.label()).key()
    }
    fn parts<'a>(&'a self, st: &'a State, plan: &'a str) -> KeyParts<'a> {
        KeyParts {
            origin: &st.cfg.origin.url,
            host: &self.host,
            path_and_query: &self.path_and_query,
            options: "",
            plan,
            settings: &st.settings_fingerprint,
        }
    }
}

/// A source image in hand.
struct SourceImage {
    header: ResponseHeader,
    body: Bytes,
    format: SourceFormat,
    fetched_at: SystemTime,
    epoch: u64,
}

/// What fetching the origin gave. One lives per request, briefly: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
enum Fetched {
    Image(SourceImage),
    Stream(Upstream, Vec<Bytes>, Option<Reason>),
    Failed(u16),
}

/// Answers a candidate request. Returns the status written.
pub async fn handle(st: &Arc<State>, session: &mut Session) -> Result<u16> {
    let accept = Accept::parse(
        session
            .req_header()
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let plan = Plan::new(&accept, &st.cfg.images.formats);
    let req = build_request(st, session)?;
    if !req.cacheable {
        return fill(st, session, &req, plan, None, None, None, None).await;
    }
    variant(st, session, &req, plan, true).await
}

fn build_request(st: &State, session: &Session) -> Result<Request> {
    let mut req = session.req_header().clone();
    headers::strip_request(&mut req);
    // The client's validators belong to the variant it holds, not to the origin's resource;
    // they are evaluated here against the variant's ETag instead.
    req.remove_header(&header::IF_NONE_MATCH);
    req.remove_header(&header::IF_MODIFIED_SINCE);
    req.set_version(http::Version::HTTP_11);
    st.origin.set_host(&mut req)?;
    let client = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    headers::forward_request(&mut req, client)?;
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path_and_query = req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    // A shared cache must not reuse answers to authenticated requests (RFC 9111 §3.5).
    let cacheable = st.cache.enabled()
        && !session
            .req_header()
            .headers
            .contains_key(header::AUTHORIZATION);
    Ok(Request {
        origin_req: req,
        host,
        path_and_query,
        cacheable,
    })
}

/// How long a follower waits for a leader before fetching itself: everything a leader may
/// legitimately take.
fn wait_limit(st: &State) -> Duration {
    let l = &st.cfg.limits;
    let o = &st.cfg.origin;
    l.queue_timeout.get()
        + l.transform_timeout.get()
        + o.connect_timeout.get()
        + o.read_timeout.get()
}

/// Serves the variant of `plan`: from the cache, from another request's flight, or by filling
/// it. `budgeted`: a cold AVIF may be answered with WebP (see the module docs).
async fn variant(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    plan: Plan,
    budgeted: bool,
) -> Result<u16> {
    let key = req.key(st, &plan);
    if let Some((e, tier)) = st.cache.get(&key).await {
        metrics::CACHE_HITS.with_label_values(&[tier.label()]).inc();
        return respond::entry(st, session, &e, CacheStatus::Hit, None).await;
    }
    let budget = if budgeted && plan.wants_avif() {
        st.cfg.cache.avif_budget.map(|d| d.get())
    } else {
        None
    };
    match st.cache.flights.join(key) {
        Join::Follower(f) => match f.wait(budget.unwrap_or_else(|| wait_limit(st))).await {
            Waited::Entry(e) => {
                metrics::CACHE_COALESCED.inc();
                respond::entry(st, session, &e, CacheStatus::Miss, None).await
            }
            Waited::TimedOut if budget.is_some() => {
                webp_instead(st, session, req, plan, None).await
            }
            _ => fill(st, session, req, plan, Some(key), None, budget, None).await,
        },
        Join::Leader(lead) => {
            fill(st, session, req, plan, Some(key), Some(lead), budget, None).await
        }
    }
}

/// The WebP variant as a stand-in while AVIF is pending, with a short downstream max-age.
async fn webp_instead(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    plan: Plan,
    source: Option<SourceImage>,
) -> Result<u16> {
    metrics::CACHE_AVIF_FALLBACK.inc();
    let short = Some(st.cfg.cache.fallback_max_age.get());
    let plan = plan.avif_as_webp();
    let key = req.key(st, &plan);
    if let Some((e, tier)) = st.cache.get(&key).await {
        metrics::CACHE_HITS.with_label_values(&[tier.label()]).inc();
        return respond::entry(st, session, &e, CacheStatus::Hit, short).await;
    }
    match st.cache.flights.join(key) {
        Join::Follower(f) => match f.wait(wait_limit(st)).await {
            Waited::Entry(e) => {
                metrics::CACHE_COALESCED.inc();
                respond::entry(st, session, &e, CacheStatus::Miss, short).await
            }
            _ => Box::pin(fill(st, session, req, plan, Some(key), None, None, short)).await,
        },
        Join::Leader(lead) => {
            Box::pin(fill_with(
                st,
                session,
                req,
                plan,
                Some(key),
                Some(lead),
                None,
                short,
                source,
            ))
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn fill(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    plan: Plan,
    key: Option<Key>,
    lead: Option<Leader>,
    budget: Option<Duration>,
    fallback: Option<Duration>,
) -> Result<u16> {
    fill_with(st, session, req, plan, key, lead, budget, fallback, None).await
}

/// Fetches (unless `source` is given), transforms, stores when allowed, and answers. `key:
/// None` never stores. The leader guard, if any, is finished with the stored entry (or
/// `None`), releasing its followers.
#[allow(clippy::too_many_arguments)]
async fn fill_with(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    plan: Plan,
    key: Option<Key>,
    lead: Option<Leader>,
    budget: Option<Duration>,
    fallback: Option<Duration>,
    source: Option<SourceImage>,
) -> Result<u16> {
    let src = match source {
        Some(s) => s,
        None => match fetch(st, req).await? {
            Fetched::Image(s) => s,
            Fetched::Stream(up, chunks, reason) => {
                drop(lead);
                return respond::stream_through(st, session, up, chunks, reason).await;
            }
            Fetched::Failed(code) => {
                drop(lead);
                session.respond_error(code).await?;
                return Ok(code);
            }
        },
    };
    let ttl = policy::ttl(
        &src.header.headers,
        &st.cache.limits(None),
        SystemTime::now(),
    );
    let key = match (&ttl, key) {
        (Ok(_), Some(k)) => Some(k),
        (Err(why), Some(_)) => {
            metrics::CACHE_NOT_STORED
                .with_label_values(&[why.label()])
                .inc();
            None
        }
        (_, None) => None,
    };
    if key.is_none() {
        // Not shareable: release any waiters now so they fetch for themselves.
        drop(lead);
        let res = st.pool.run(job(st, &src, plan)).await;
        let (e, _) = make_entry(st, req, &src, res, &ttl);
        return respond::entry(st, session, &e, CacheStatus::Bypass, fallback).await;
    }
    let (Some(key), Ok(ttl)) = (key, ttl) else {
        return Ok(500); // unreachable by the match above
    };

    if let Some(budget) = budget {
        let Ok(permit) = st.cache.background.clone().try_acquire_owned() else {
            metrics::CACHE_BACKGROUND
                .with_label_values(&["skipped"])
                .inc();
            drop(lead);
            return webp_instead(st, session, req, plan, Some(src)).await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st2 = st.clone();
        let job = job(st, &src, plan);
        let parts = OwnedParts::of(req, &src, ttl);
        tokio::spawn(async move {
            let res = st2.pool.run(job).await;
            let (e, storable) = parts.entry(&st2, res);
            if storable {
                st2.cache.insert(key, e.clone(), parts.epoch);
            }
            if let Some(l) = lead {
                l.finish(storable.then(|| e.clone()));
            }
            if tx.send(e).is_err() {
                metrics::CACHE_BACKGROUND
                    .with_label_values(&[if storable { "stored" } else { "not_stored" }])
                    .inc();
            }
            drop(permit);
        });
        return match tokio::time::timeout(budget, rx).await {
            Ok(Ok(e)) => respond::entry(st, session, &e, CacheStatus::Miss, fallback).await,
            _ => {
                metrics::CACHE_BACKGROUND
                    .with_label_values(&["started"])
                    .inc();
                webp_instead(st, session, req, plan, Some(src)).await
            }
        };
    }

    let res = st.pool.run(job(st, &src, plan)).await;
    let (e, storable) = make_entry(st, req, &src, res, &Ok(ttl));
    if storable {
        st.cache.insert(key, e.clone(), src.epoch);
    } else {
        metrics::CACHE_NOT_STORED
            .with_label_values(&["transient"])
            .inc();
    }
    if let Some(l) = lead {
        l.finish(storable.then(|| e.clone()));
    }
    let status = if storable {
        CacheStatus::Miss
    } else {
        CacheStatus::Bypass
    };
    respond::entry(st, session, &e, status, fallback).await
}

fn job(st: &State, src: &SourceImage, plan: Plan) -> Job {
    Job::for_plan(
        src.body.clone(),
        src.format,
        plan,
        &st.cfg.images,
        st.header_limits,
    )
}

/// What a background task needs to build the entry after its request is gone.
struct OwnedParts {
    header: http::HeaderMap,
    body: Bytes,
    format: SourceFormat,
    fetched_at: SystemTime,
    epoch: u64,
    source: crate::cache::Source,
    ttl: Duration,
}

impl OwnedParts {
    fn of(req: &Request, src: &SourceImage, ttl: Duration) -> OwnedParts {
        OwnedParts {
            header: src.header.headers.clone(),
            body: src.body.clone(),
            format: src.format,
            fetched_at: src.fetched_at,
            epoch: src.epoch,
            source: KeyParts {
                origin: "",
                host: &req.host,
                path_and_query: &req.path_and_query,
                options: "",
                plan: "",
                settings: "",
            }
            .source(),
            ttl,
        }
    }

    fn entry(&self, st: &State, res: PoolResult) -> (Arc<Entry>, bool) {
        build_entry(
            st,
            &self.header,
            &self.body,
            self.format,
            self.fetched_at,
            self.source.clone(),
            &Ok(self.ttl),
            res,
        )
    }
}

fn make_entry(
    st: &State,
    req: &Request,
    src: &SourceImage,
    res: PoolResult,
    ttl: &std::result::Result<Duration, NoStore>,
) -> (Arc<Entry>, bool) {
    let source = req.parts(st, "").source();
    build_entry(
        st,
        &src.header.headers,
        &src.body,
        src.format,
        src.fetched_at,
        source,
        ttl,
        res,
    )
}

/// Turns a transform result into an entry; `true` when it may be stored (a stored TTL and a
/// deterministic outcome: timeouts and encoder failures are not remembered).
#[allow(clippy::too_many_arguments)]
fn build_entry(
    st: &State,
    origin: &http::HeaderMap,
    source: &Bytes,
    format: SourceFormat,
    fetched_at: SystemTime,
    src: crate::cache::Source,
    ttl: &std::result::Result<Duration, NoStore>,
    res: PoolResult,
) -> (Arc<Entry>, bool) {
    metrics::QUEUE_SECONDS.observe(res.queued.as_secs_f64());
    let (headers, body, etag, note, deterministic) = match res.outcome {
        Outcome::Transformed {
            format: out, bytes, ..
        } => {
            record_transformed(
                format,
                out,
                source.len(),
                bytes.len(),
                res.ran.as_secs_f64(),
            );
            let etag = headers::variant_etag(&bytes);
            let h = respond::stored_headers(origin, Some(out.mime()), Some(&etag));
            (h, bytes, Some(etag), out.name().to_string(), true)
        }
        Outcome::Original(reason) => {
            record_original(format.name(), reason, source.len(), source.len());
            let etag = origin
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let h = respond::stored_headers(origin, None, etag.as_deref());
            let transient = matches!(
                reason,
                Reason::Timeout | Reason::QueueTimeout | Reason::EncodeFailed
            );
            (
                h,
                source.clone(),
                etag,
                format!("original; reason={}", reason.label()),
                !transient,
            )
        }
    };
    let ttl_ok = ttl.as_ref().ok().copied();
    let max_retention = st.cfg.cache.max_retention.get();
    let e = Entry {
        headers,
        body,
        etag,
        note,
        source: src,
        created: fetched_at,
        expires: policy::expires_at(fetched_at, ttl_ok.unwrap_or_default(), max_retention),
        origin_age: origin
            .get(header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    };
    (Arc::new(e), deterministic && ttl_ok.is_some())
}

/// Fetches the origin: an image body in hand, or a response to stream through unchanged.
async fn fetch(st: &State, req: &Request) -> Result<Fetched> {
    let epoch = st.cache.epoch();
    let fetched_at = SystemTime::now();
    let peer = st.origin.peer();
    let mut up = match origin::send(&st.connector, &peer, req.origin_req.clone()).await {
        Ok(u) => u,
        Err(e) => {
            metrics::ORIGIN_ERRORS.with_label_values(&[e.label()]).inc();
            let code = if e == FetchError::Connect { 502 } else { 504 };
            return Ok(Fetched::Failed(code));
        }
    };
    let encoded = up
        .header
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if up.header.status != 200 || encoded {
        return Ok(Fetched::Stream(up, Vec::new(), None));
    }

    // Read until the format can be sniffed.
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    let mut eof = false;
    while total < SNIFF_LEN {
        match up.session.read_response_body().await? {
            Some(b) => {
                total += b.len();
                chunks.push(b);
            }
            None => {
                eof = true;
                break;
            }
        }
    }
    let head: Vec<u8> = chunks
        .iter()
        .flat_map(|c| c.iter().copied())
        .take(SNIFF_LEN)
        .collect();
    let Some(format) = sniff(&head) else {
        let reason = (total == 0 && content_type_is_image(&up.header)).then_some(Reason::Empty);
        if let Some(r) = reason {
            record_original("unknown", r, 0, 0);
        }
        return Ok(Fetched::Stream(up, chunks, reason));
    };
    if no_transform(&up.header) {
        record_original(format.name(), Reason::NoTransform, 0, 0);
        return Ok(Fetched::Stream(up, chunks, Some(Reason::NoTransform)));
    }
    let max = st.cfg.limits.max_source_bytes.get() as usize;
    let declared = up
        .header
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        record_original(format.name(), Reason::TooLarge, 0, 0);
        return Ok(Fetched::Stream(up, chunks, Some(Reason::TooLarge)));
    }
    while !eof {
        match up.session.read_response_body().await? {
            Some(b) => {
                total += b.len();
                chunks.push(b);
                if total > max {
                    record_original(format.name(), Reason::TooLarge, 0, 0);
                    return Ok(Fetched::Stream(up, chunks, Some(Reason::TooLarge)));
                }
            }
            None => eof = true,
        }
    }
    let Upstream {
        session: conn,
        header,
    } = up;
    st.connector
        .release_http_session(conn, &peer, Some(st.origin.idle_timeout()))
        .await;
    Ok(Fetched::Image(SourceImage {
        header,
        body: concat(chunks, total),
        format,
        fetched_at,
        epoch,
    }))
}

fn concat(chunks: Vec<Bytes>, total: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().unwrap_or_default();
    }
    let mut b = BytesMut::with_capacity(total);
    for c in chunks {
        b.extend_from_slice(&c);
    }
    b.freeze()
}

fn no_transform(h: &ResponseHeader) -> bool {
    h.headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

fn content_type_is_image(h: &ResponseHeader) -> bool {
    h.headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().len() >= 6 && v.as_bytes()[..6].eq_ignore_ascii_case(b"image/")
    })
}

fn record_transformed(
    src: SourceFormat,
    out: crate::image::format::OutputFormat,
    bytes_in: usize,
    bytes_out: usize,
    secs: f64,
) {
    metrics::TRANSFORMS
        .with_label_values(&[src.name(), out.name(), "ok"])
        .inc();
    metrics::BYTES_IN
        .with_label_values(&[out.name()])
        .inc_by(bytes_in as u64);
    metrics::BYTES_OUT
        .with_label_values(&[out.name()])
        .inc_by(bytes_out as u64);
    metrics::TRANSFORM_SECONDS
        .with_label_values(&[out.name()])
        .observe(secs);
}

fn record_original(src: &str, reason: Reason, bytes_in: usize, bytes_out: usize) {
    metrics::TRANSFORMS
        .with_label_values(&[src, "original", reason.label()])
        .inc();
    metrics::BYTES_IN
        .with_label_values(&["original"])
        .inc_by(bytes_in as u64);
    metrics::BYTES_OUT
        .with_label_values(&["original"])
        .inc_by(bytes_out as u64);
}
