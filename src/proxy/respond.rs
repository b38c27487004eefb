//! Writing image-path responses: a whole entry (fresh or cached) with exact headers, a 304 for
//! a matching `If-None-Match`, and streaming an origin response through unchanged.

use super::headers;
use super::state::State;
use crate::cache::Entry;
use crate::fetch::origin::Upstream;
use crate::image::Reason;
use crate::telemetry::record::{self, Record};
use http::header::{self, HeaderMap, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::time::{Duration, SystemTime};

/// Headers of the origin's response that describe its body and must not be copied onto a
/// different body (nor replayed from the cache: they are written per response).
const BODY_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "etag",
    "accept-ranges",
    "content-md5",
    "digest",
    "repr-digest",
    "content-range",
    "x-pixgate",
    "age",
    "via",
];

/// What the cache-status header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Fetched and transformed (and stored, or shared with waiting requests).
    Miss,
    /// Not cacheable (request or response), or the cache is off.
    Bypass,
    /// An expired entry served because the origin failed (`stale-if-error`).
    Stale,
    /// A stale entry the origin confirmed with a 304 (its source unchanged).
    Revalidated,
}

impl CacheStatus {
    /// Header value; the metric label is its lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Revalidated => "REVALIDATED",
        }
    }
    fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Stale => "stale",
            CacheStatus::Revalidated => "revalidated",
        }
    }
}

/// The headers an entry replays: the origin's (caching, CORS, Last-Modified, ...) minus
/// hop-by-hop and body-describing ones, plus the Content-Type of the bytes sent (sniffed or
/// encoded, never the origin's), ETag and `Vary: Accept` (plus `vary_fields`, the client
/// hints when they are on). A remote source's headers were cut to
/// [`crate::fetch::SOURCE_HEADERS`] when it was fetched.
pub fn stored_headers(
    origin: &HeaderMap,
    content_type: &str,
    etag: Option<&str>,
    vary_fields: &[&str],
) -> Vec<(String, Vec<u8>)> {
    let mut h = origin.clone();
    headers::strip_hop_by_hop(&mut h);
    let mut vary = headers::vary_with(&h, "Accept");
    for f in vary_fields {
        let mut m = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&vary) {
            m.insert(header::VARY, v);
        }
        vary = headers::vary_with(&m, f);
    }
    let mut out: Vec<(String, Vec<u8>)> = h
        .iter()
        .filter(|(n, _)| !BODY_HEADERS.contains(&n.as_str()) && *n != header::VARY)
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    out.push(("content-type".into(), content_type.as_bytes().to_vec()));
    if let Some(e) = etag {
        out.push(("etag".into(), e.as_bytes().to_vec()));
    }
    out.push(("vary".into(), vary.into_bytes()));
    out
}

/// Writes `e` as a complete response (or a 304 when the client holds this variant).
/// `fallback` replaces the caching headers with a short `max-age` (a WebP answer while AVIF is
/// pending, which a CDN must not keep for long).
pub async fn entry(
    st: &State,
    session: &mut Session,
    e: &Entry,
    status: CacheStatus,
    fallback: Option<Duration>,
    rec: &mut Record,
) -> Result<u16> {
    crate::telemetry::metrics::CACHE_REQUESTS
        .with_label_values(&[status.label()])
        .inc();
    rec.cache = status.label();
    rec.output = Some(record::output_label(&e.note));
    rec.source = Some(record::source_label(&e.source_format));
    rec.source_bytes = Some(e.source_bytes);
    let not_modified = e.etag.as_deref().is_some_and(|tag| {
        headers::if_none_match(session.req_header().headers.get(header::IF_NONE_MATCH), tag)
    });
    let code = if not_modified { 304 } else { e.status };
    let mut resp = ResponseHeader::build(code, Some(e.headers.len() + 6))?;
    for (name, value) in &e.headers {
        if fallback.is_some() && (name == "cache-control" || name == "expires") {
            continue;
        }
        if not_modified && name == "content-type" {
            continue;
        }
        let v = HeaderValue::from_bytes(value)
            .map_err(|_| pingora::Error::new_str("invalid stored header"))?;
        resp.append_header(name.clone(), v)?;
    }
    if let Some(max_age) = fallback {
        resp.insert_header(
            header::CACHE_CONTROL,
            format!("public, max-age={}", max_age.as_secs()),
        )?;
    }
    if !not_modified {
        resp.insert_header(header::CONTENT_LENGTH, e.body.len().to_string())?;
    }
    let age = e.age(SystemTime::now());
    if matches!(
        status,
        CacheStatus::Hit | CacheStatus::Stale | CacheStatus::Revalidated
    ) || e.origin_age > 0
    {
        resp.insert_header(header::AGE, age.to_string())?;
    }
    headers::forward_response(&mut resp)?;
    headers::hide_tags(&mut resp, st.cfg.cache.expose_tags);
    // An image answer is an image: no browser may sniff it into HTML (polyglot files), and
    // opened as a document nothing in it runs.
    headers::inert(&mut resp)?;
    if let Some(name) = &st.cfg.cache.status_header {
        resp.insert_header(name.clone(), status.as_str())?;
    }
    if st.cfg.images.debug_header {
        let note = if fallback.is_some() {
            format!("{}; avif=pending", e.note)
        } else {
            e.note.clone()
        };
        resp.insert_header("x-pixgate", note)?;
    }
    session
        .write_response_header(Box::new(resp), not_modified)
        .await?;
    let body = (!not_modified).then(|| e.body.clone());
    session.write_response_body(body, true).await?;
    Ok(code)
}

/// Answers 429 with `Retry-After` (whole seconds, rounded up).
pub async fn too_many(session: &mut Session, wait: Duration, rec: &mut Record) -> Result<u16> {
    rec.reason = Some("rate_limited");
    retry_later(session, 429, "too many requests", wait).await
}

/// Answers 503 with `Retry-After: 1`: the transform queue is full and `limits.overload` says
/// `reject`.
pub async fn overloaded(session: &mut Session, rec: &mut Record) -> Result<u16> {
    rec.reason = Some(Reason::Overloaded.label());
    let wait = Duration::from_secs(1);
    retry_later(session, 503, "overloaded, retry shortly", wait).await
}

async fn retry_later(
    session: &mut Session,
    status: u16,
    message: &str,
    wait: Duration,
) -> Result<u16> {
    let body = bytes::Bytes::from(format!("pixgate: {message}\n"));
    let mut resp = ResponseHeader::build(status, Some(5))?;
    resp.insert_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    resp.insert_header(header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(
        header::RETRY_AFTER,
        crate::ratelimit::retry_after(wait).to_string(),
    )?;
    headers::forward_response(&mut resp)?;
    headers::inert(&mut resp)?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(status)
}

/// Answers `status` with a plain-text message (never cached).
pub async fn error(session: &mut Session, status: u16, message: &str) -> Result<u16> {
    let body = bytes::Bytes::from(format!("pixgate: {message}\n"));
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    resp.insert_header(header::CACHE_CONTROL, "no-store")?;
    headers::forward_response(&mut resp)?;
    // The message may quote the request: never a page.
    headers::inert(&mut resp)?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(status)
}

/// Streams the origin's response to the client unchanged (headers minus hop-by-hop, plus Via),
/// starting with the chunks already read. `reason` is set when it is an image sent untouched.
pub async fn stream_through(
    st: &State,
    session: &mut Session,
    mut up: Upstream,
    read: Vec<bytes::Bytes>,
    reason: Option<Reason>,
    rec: &mut Record,
) -> Result<u16> {
    if st.cfg.images.svg == crate::config::SvgPolicy::Reject && headers::is_svg(&up.header) {
        rec.reason = Some("svg_rejected");
        return error(session, 403, "SVG is not served here").await;
    }
    let mut resp = up.header.clone();
    headers::strip_response(&mut resp);
    // An HTTP/1.0 origin's body may be close-delimited; chunked framing needs HTTP/1.1.
    resp.set_version(http::Version::HTTP_11);
    st.advertise_hints(&mut resp)?;
    headers::contain_svg(&mut resp)?;
    headers::forward_response(&mut resp)?;
    if let Some(r) = reason {
        resp.insert_header(
            header::VARY,
            headers::vary_with(&up.header.headers, "Accept"),
        )?;
        resp.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
        if st.cfg.images.debug_header {
            resp.insert_header("x-pixgate", format!("original; reason={}", r.label()))?;
        }
        if let Some(name) = &st.cfg.cache.status_header {
            resp.insert_header(name.clone(), CacheStatus::Bypass.as_str())?;
        }
        crate::telemetry::metrics::CACHE_REQUESTS
            .with_label_values(&["bypass"])
            .inc();
        rec.cache = CacheStatus::Bypass.label();
        rec.output = Some("original");
        rec.reason = Some(r.label());
    }
    let status = resp.status.as_u16();
    session.write_response_header(Box::new(resp), false).await?;
    for c in read {
        rec.origin_bytes += c.len() as u64;
        session.write_response_body(Some(c), false).await?;
    }
    while let Some(c) = up.session.read_response_body().await? {
        rec.origin_bytes += c.len() as u64;
        session.write_response_body(Some(c), false).await?;
    }
    session.write_response_body(None, true).await?;
    let peer = st.origin.peer();
    st.connector
        .release_http_session(up.session, &peer, Some(st.origin.idle_timeout()))
        .await;
    Ok(status)
}
