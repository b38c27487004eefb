//! Fetching a source from the origin for the image path: pingora's `Connector` (pooled, with
//! the configured timeouts), a sniff of the first bytes, and either the whole image body in
//! hand or a response to stream through unchanged (non-images, `no-transform`, too large).

use super::refused::Refused;
use super::respond::{self, CacheStatus};
use super::serve::Request;
use super::state::State;
use crate::cache::{Entry, Key};
use crate::fetch::origin::{self, FetchError, Upstream};
use crate::image::format::{sniff, SourceFormat, SNIFF_LEN};
use crate::image::Reason;
use crate::telemetry::metrics::{self, record_original};
use crate::telemetry::Record;
use bytes::{Bytes, BytesMut};
use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::SystemTime;

/// A source image in hand.
pub struct SourceImage {
    /// The origin's response header.
    pub header: ResponseHeader,
    /// The whole body.
    pub body: Bytes,
    /// Sniffed from the bytes.
    pub format: SourceFormat,
    /// When the fetch started: the start of any entry's retention.
    pub fetched_at: SystemTime,
    /// The cache's purge epoch before the fetch.
    pub epoch: u64,
    /// Its share of `limits.max_buffered_bytes`, released with it.
    #[allow(
        dead_code,
        reason = "held for its Drop: the budget is released with the source"
    )]
    pub held: super::budget::Held,
}

/// What fetching the origin gave. One lives per request, briefly: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Fetched {
    /// An image body in hand.
    Image(SourceImage),
    /// Stream this response through, after the chunks already read; the reason when it is an
    /// image sent untouched.
    Stream(Upstream, Vec<Bytes>, Option<Reason>),
    /// The origin could not be reached or broke off (502), or timed out (504).
    Failed(FetchError),
    /// A remote source was refused or failed (status and message for the client).
    Refused(crate::fetch::Refusal),
}

/// Fetches the origin: an image body in hand, or a response to stream through unchanged.
pub async fn fetch(st: &State, req: &RequestHeader) -> Result<Fetched> {
    let epoch = st.cache.epoch();
    let fetched_at = SystemTime::now();
    let peer = st.origin.peer();
    let mut up = match origin::send(&st.connector, &peer, req.clone()).await {
        Ok(u) => u,
        Err(e) => return Ok(failed(st, e)),
    };
    st.telemetry.origin.ok();
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
        let chunk = match up.session.read_response_body().await {
            Ok(c) => c,
            Err(e) => return Ok(failed(st, FetchError::of(&e, false))),
        };
        match chunk {
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
    // The declared length is reserved up front; without one, the budget grows per chunk.
    let mut held = super::budget::Held::default();
    if !st
        .budget
        .grow(&mut held, declared.unwrap_or(0).max(total as u64))
    {
        record_original(format.name(), Reason::BufferBudget, 0, 0);
        return Ok(Fetched::Stream(up, chunks, Some(Reason::BufferBudget)));
    }
    while !eof {
        let chunk = match up.session.read_response_body().await {
            Ok(c) => c,
            // A reset, a timeout, or a body shorter than its Content-Length: nothing of it
            // is transformed or stored.
            Err(e) => return Ok(failed(st, FetchError::of(&e, false))),
        };
        match chunk {
            Some(b) => {
                total += b.len();
                chunks.push(b);
                if total > max {
                    record_original(format.name(), Reason::TooLarge, 0, 0);
                    return Ok(Fetched::Stream(up, chunks, Some(Reason::TooLarge)));
                }
                if !st.budget.grow(&mut held, total as u64) {
                    record_original(format.name(), Reason::BufferBudget, 0, 0);
                    return Ok(Fetched::Stream(up, chunks, Some(Reason::BufferBudget)));
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
        held,
    }))
}

/// Counts a failed origin exchange and says what the client gets.
fn failed(st: &State, e: FetchError) -> Fetched {
    st.telemetry.origin.failed();
    metrics::ORIGIN_ERRORS.with_label_values(&[e.label()]).inc();
    Fetched::Failed(e)
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

/// The source of an image request: the origin, or the remote source behind the SSRF guard,
/// timed and counted in the request's record.
pub(super) async fn fetch_for(st: &State, req: &Request, rec: &mut Record) -> Result<Fetched> {
    let t0 = std::time::Instant::now();
    let fetched = fetch_remote_or_origin(st, req).await?;
    let took = t0.elapsed();
    rec.add_origin_time(took);
    if let Fetched::Image(img) = &fetched {
        rec.origin_bytes += img.body.len() as u64;
        metrics::ORIGIN_SECONDS
            .with_label_values(&[rec.route])
            .observe(took.as_secs_f64());
    }
    Ok(fetched)
}

async fn fetch_remote_or_origin(st: &State, req: &Request) -> Result<Fetched> {
    let (Some(url), Some(guard)) = (&req.remote, &st.guard) else {
        return fetch(st, &req.origin_req).await;
    };
    let epoch = st.cache.epoch();
    let fetched_at = SystemTime::now();
    // The budget is charged as the body arrives (the declared length up front), as on the
    // proxy path: concurrent large sources never sit in memory past max_buffered_bytes.
    let mut held = super::budget::Held::default();
    let mut reserve = |n: u64| st.budget.grow(&mut held, n);
    let fetched = guard.fetch(url.clone(), &mut reserve).await;
    Ok(match fetched {
        Ok(r) => Fetched::Image(SourceImage {
            header: r.header,
            body: r.body,
            format: r.format,
            fetched_at,
            epoch,
            held,
        }),
        Err(r) if r.kind == crate::fetch::NO_BUDGET => {
            record_original("unknown", Reason::BufferBudget, 0, 0);
            Fetched::Refused(r)
        }
        Err(refusal) => Fetched::Refused(refusal),
    })
}

/// The answer when the fetch gave no image in hand: the response streams through, or a
/// failed or refused fetch answers its error, or the stale entry for `key` when its
/// `stale-if-error` window still holds it.
pub(super) async fn not_an_image(
    st: &State,
    session: &mut Session,
    fetched: Fetched,
    key: Option<Key>,
    rec: &mut Record,
) -> Result<u16> {
    let stale_entry = |cause| stale(st, key, cause);
    match fetched {
        Fetched::Image(_) => Err(pingora::Error::new_str("an image is not streamed")),
        Fetched::Stream(up, chunks, reason) => {
            if up.header.status.as_u16() >= 500 {
                if let Some(e) = stale_entry("origin_5xx").await {
                    rec.reason = Some("origin_5xx");
                    return respond::entry(st, session, &e, CacheStatus::Stale, None, rec).await;
                }
            }
            respond::stream_through(st, session, up, chunks, reason, rec).await
        }
        Fetched::Failed(e) => {
            rec.reason = Some(e.label());
            if let Some(entry) = stale_entry("origin_error").await {
                return respond::entry(st, session, &entry, CacheStatus::Stale, None, rec).await;
            }
            session.respond_error(e.status()).await?;
            Ok(e.status())
        }
        Fetched::Refused(r) => {
            let r = Refused::from(r);
            r.record(rec);
            if r.status >= 502 {
                if let Some(e) = stale_entry("origin_error").await {
                    return respond::entry(st, session, &e, CacheStatus::Stale, None, rec).await;
                }
            }
            r.write(session).await
        }
    }
}

/// The expired variant for `key` in place of a failed origin, when its `stale-if-error`
/// window (inside `max_retention`) still holds it.
async fn stale(st: &State, key: Option<Key>, cause: &'static str) -> Option<Arc<Entry>> {
    let e = st.cache.get_stale(&key?).await?;
    metrics::CACHE_STALE.with_label_values(&[cause]).inc();
    Some(e)
}
