//! Answering from the shield: a stored response written with its status (or 304 / 206 / 416
//! for the client's conditions and range), `Age`, `Via` and the cache-status header.

use super::range::{self, Ranged};
use super::Miss;
use crate::cache::Entry;
use crate::proxy::headers;
use crate::proxy::state::State;
use crate::telemetry::{metrics, Record};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::time::SystemTime;

/// Counts one lookup's result (`hit`, `miss`, `revalidated`, `stale`) in the metric and the
/// access record.
pub(super) fn count(rec: &mut Record, status: &'static str) {
    metrics::SHIELD_REQUESTS.with_label_values(&[status]).inc();
    rec.cache = status;
}

/// Answers a fresh entry (`collapsed`: found after waiting for another request's fetch).
pub(super) async fn hit(
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
pub(super) async fn answer(
    st: &State,
    session: &mut Session,
    e: &Entry,
    status: &str,
) -> Result<u16> {
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
