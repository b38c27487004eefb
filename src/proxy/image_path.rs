//! The image path. pingora writes a response header before it sees the body, so a body filter
//! could not change Content-Type or fall back to the original after a failed or larger
//! transform. This path therefore answers from `request_filter`: it fetches the origin itself,
//! sniffs the first bytes, and either streams a non-image through unchanged or buffers the
//! image, transforms it on the pool, and writes one complete response with exact headers.

use super::headers;
use super::origin::{self, FetchError, Upstream};
use super::service::State;
use crate::image::format::{sniff, OutputFormat, SourceFormat, SNIFF_LEN};
use crate::image::pipeline::{Job, Outcome};
use crate::image::Reason;
use crate::request::accept::Accept;
use crate::telemetry::metrics;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Headers of the origin's response that describe its body and must not be copied onto a
/// different body.
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
];

/// Answers a candidate request. Returns the status written.
pub async fn handle(st: &State, session: &mut Session) -> Result<u16> {
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
    let peer = st.origin.peer();

    let mut up = match origin::send(&st.connector, &peer, req).await {
        Ok(u) => u,
        Err(e) => {
            metrics::ORIGIN_ERRORS.with_label_values(&[e.label()]).inc();
            let code = if e == FetchError::Connect { 502 } else { 504 };
            session.respond_error(code).await?;
            return Ok(code);
        }
    };

    let encoded = up
        .header
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if up.header.status != 200 || encoded {
        return stream_through(st, session, up, Vec::new(), None).await;
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
        return stream_through(st, session, up, chunks, reason).await;
    };

    if no_transform(&up.header) {
        record_original(format.name(), Reason::NoTransform, 0, 0);
        return stream_through(st, session, up, chunks, Some(Reason::NoTransform)).await;
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
        return stream_through(st, session, up, chunks, Some(Reason::TooLarge)).await;
    }
    while !eof {
        match up.session.read_response_body().await? {
            Some(b) => {
                total += b.len();
                chunks.push(b);
                if total > max {
                    record_original(format.name(), Reason::TooLarge, 0, 0);
                    return stream_through(st, session, up, chunks, Some(Reason::TooLarge)).await;
                }
            }
            None => eof = true,
        }
    }
    let Upstream {
        session: conn,
        header: origin_header,
    } = up;
    st.connector
        .release_http_session(conn, &peer, Some(st.origin.idle_timeout()))
        .await;
    let source = concat(chunks, total);

    let accept = Accept::parse(
        session
            .req_header()
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let job = Job::new(
        source.clone(),
        format,
        accept,
        &st.cfg.images,
        st.header_limits,
    );
    let res = st.pool.run(job).await;
    metrics::QUEUE_SECONDS.observe(res.queued.as_secs_f64());
    let (body, content_type, etag, note) = match res.outcome {
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
            (bytes, out.mime(), Some(etag), Note::Format(out))
        }
        Outcome::Original(reason) => {
            record_original(format.name(), reason, source.len(), source.len());
            (source, "", None, Note::Original(reason))
        }
    };
    write_image(st, session, &origin_header, body, content_type, etag, note).await
}

/// What the `X-Pixgate` header says.
enum Note {
    Format(OutputFormat),
    Original(Reason),
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
    out: OutputFormat,
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

/// Writes a whole image response: the origin's headers (caching, CORS, ...) minus those that
/// describe its body, plus exact Content-Type / Content-Length, the variant ETag and
/// `Vary: Accept`. Answers 304 when the client already holds this variant.
async fn write_image(
    st: &State,
    session: &mut Session,
    origin: &ResponseHeader,
    body: Bytes,
    content_type: &str,
    etag: Option<String>,
    note: Note,
) -> Result<u16> {
    let replaced = !content_type.is_empty();
    let mut h = origin.headers.clone();
    headers::strip_hop_by_hop(&mut h);
    let vary = headers::vary_with(&h, "Accept");
    let origin_etag = h.get(header::ETAG).cloned();
    let etag_value = match &etag {
        Some(e) => Some(HeaderValue::from_str(e).map_err(|_| pingora::Error::new_str("bad etag"))?),
        None => origin_etag,
    };
    let not_modified = etag_value
        .as_ref()
        .and_then(|e| e.to_str().ok())
        .is_some_and(|e| {
            headers::if_none_match(session.req_header().headers.get(header::IF_NONE_MATCH), e)
        });
    let status = if not_modified { 304 } else { 200 };
    let mut resp = ResponseHeader::build(status, Some(h.len() + 6))?;
    for (name, value) in h.iter() {
        let drop =
            BODY_HEADERS.contains(&name.as_str()) && (replaced || name != header::CONTENT_TYPE);
        if !drop {
            resp.append_header(name.clone(), value.clone())?;
        }
    }
    if replaced {
        resp.insert_header(header::CONTENT_TYPE, content_type)?;
    }
    if let Some(e) = etag_value {
        resp.insert_header(header::ETAG, e)?;
    }
    resp.insert_header(header::VARY, vary)?;
    if not_modified {
        resp.remove_header(&header::CONTENT_TYPE);
    } else {
        resp.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    }
    headers::forward_response(&mut resp)?;
    if st.cfg.images.debug_header {
        let v = match note {
            Note::Format(f) => f.name().to_string(),
            Note::Original(r) => format!("original; reason={}", r.label()),
        };
        resp.insert_header("x-pixgate", v)?;
    }
    session
        .write_response_header(Box::new(resp), not_modified)
        .await?;
    let body = if not_modified { None } else { Some(body) };
    session.write_response_body(body, true).await?;
    Ok(status)
}

/// Streams the origin's response to the client unchanged (headers minus hop-by-hop, plus Via),
/// starting with the chunks already read.
async fn stream_through(
    st: &State,
    session: &mut Session,
    mut up: Upstream,
    read: Vec<Bytes>,
    reason: Option<Reason>,
) -> Result<u16> {
    let mut resp = up.header.clone();
    headers::strip_response(&mut resp);
    // An HTTP/1.0 origin's body may be close-delimited; chunked framing needs HTTP/1.1.
    resp.set_version(http::Version::HTTP_11);
    headers::forward_response(&mut resp)?;
    if let Some(r) = reason {
        resp.insert_header(
            header::VARY,
            headers::vary_with(&up.header.headers, "Accept"),
        )?;
        if st.cfg.images.debug_header {
            resp.insert_header("x-pixgate", format!("original; reason={}", r.label()))?;
        }
    }
    let status = resp.status.as_u16();
    session.write_response_header(Box::new(resp), false).await?;
    for c in read {
        session.write_response_body(Some(c), false).await?;
    }
    while let Some(c) = up.session.read_response_body().await? {
        session.write_response_body(Some(c), false).await?;
    }
    session.write_response_body(None, true).await?;
    let peer = st.origin.peer();
    st.connector
        .release_http_session(up.session, &peer, Some(st.origin.idle_timeout()))
        .await;
    Ok(status)
}
