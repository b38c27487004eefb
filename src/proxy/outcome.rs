//! What a transform's result becomes: the cache [`Entry`] (headers derived from the bytes and
//! the source's caching headers, ETag, deadlines, provenance), and the pool [`Job`] for a
//! decided [`Variant`]. Owned, so a background AVIF encode can finish after its request.

use super::headers;
use super::respond;
use super::serve::Request;
use super::source::SourceImage;
use super::state::State;
use crate::cache::{policy, Entry};
use crate::image::format::SourceFormat;
use crate::image::pipeline::{Job, Outcome};
use crate::image::pool::PoolResult;
use crate::image::Reason;
use crate::telemetry::metrics::{self, record_original, record_transformed};
use crate::variant::Variant;
use http::header;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The pool job for variant `v` of `src`.
pub(super) fn job(st: &State, v: &Variant, src: &SourceImage) -> Job {
    Job::for_plan(
        src.body.clone(),
        src.format,
        v.plan,
        &st.cfg.images,
        st.header_limits,
    )
    .with_transform(v.transform)
    .with_qualities(&v.qualities)
    .with_marks(st.marks.current())
}

/// What turns a transform result into an entry; owned, so a background encode can finish
/// after its request is gone.
pub(super) struct Parts {
    /// The source's headers that an answer may carry: the origin's, or a remote source's
    /// [`crate::fetch::source_headers`].
    header: http::HeaderMap,
    body: bytes::Bytes,
    format: SourceFormat,
    fetched_at: SystemTime,
    pub(super) epoch: u64,
    source: crate::cache::Source,
    /// `None`: the origin forbids storing.
    ttl: Option<Duration>,
    /// A remote source (the URL API): never revalidated.
    remote: bool,
    /// The variant draws a watermark: the original is never an answer.
    pub(super) watermarked: bool,
    /// The URL API's `Content-Disposition`, with the source's path (its default name).
    pub(super) disposition: Option<(crate::request::imgproxy::Disposition, String)>,
}

impl Parts {
    pub(super) fn of(req: &Request, src: &SourceImage, ttl: Option<Duration>) -> Parts {
        // A third party's headers never reach the client on the URL API; the cache policy
        // already read the whole header.
        let header = match req.remote {
            Some(_) => crate::fetch::source_headers(&src.header.headers),
            None => src.header.headers.clone(),
        };
        Parts {
            header,
            body: src.body.clone(),
            format: src.format,
            fetched_at: src.fetched_at,
            epoch: src.epoch,
            // The origin's surrogate keys tag the variant (purge by tag); a remote source's
            // do not.
            source: match req.remote {
                Some(_) => crate::cache::key::source_of(&req.host, &req.path_and_query),
                None => crate::cache::key::source_of(&req.host, &req.path_and_query)
                    .tagged(&src.header.headers),
            },
            ttl,
            remote: req.remote.is_some(),
            watermarked: false,
            disposition: None,
        }
    }

    /// The answer instead of an unwatermarked original: 503 when the cause may pass (a
    /// timeout, a full queue), else 422; never stored.
    fn withheld(&self, reason: Reason) -> Arc<Entry> {
        let transient = is_transient(reason);
        let status = if transient { 503 } else { 422 };
        let body = format!("{}\n", withheld_message(reason));
        let now = std::time::SystemTime::now();
        Arc::new(Entry {
            status,
            headers: vec![
                ("content-type".into(), b"text/plain; charset=utf-8".to_vec()),
                ("cache-control".into(), b"no-store".to_vec()),
            ],
            body: body.into(),
            etag: None,
            note: format!("withheld; reason={}", reason.label()),
            source: self.source.clone(),
            created: now,
            fresh_until: now,
            expires: now,
            source_bytes: self.body.len() as u64,
            source_format: self.format.name().to_string(),
            source_etag: None,
            origin_age: 0,
        })
    }

    /// The entry of a source passed on untouched for `reason`, never stored.
    pub(super) fn original(&self, st: &State, reason: Reason) -> Arc<Entry> {
        let res = PoolResult {
            outcome: Outcome::Original(reason),
            queued: Duration::ZERO,
            ran: Duration::ZERO,
        };
        self.entry(st, res).0
    }

    /// The entry, and whether it may be stored: a TTL and a deterministic outcome (timeouts
    /// and encoder failures are not remembered).
    pub(super) fn entry(&self, st: &State, res: PoolResult) -> (Arc<Entry>, bool) {
        metrics::QUEUE_SECONDS.observe(res.queued.as_secs_f64());
        if let (Outcome::Original(reason), true) = (&res.outcome, self.watermarked) {
            record_original(self.format.name(), *reason, self.body.len(), 0);
            return (self.withheld(*reason), false);
        }
        let n = self.body.len();
        let ext = match &res.outcome {
            Outcome::Transformed { format, .. } => format.name(),
            Outcome::Original(_) => self.format.name(),
            Outcome::Info(_) => "json",
        };
        let disposition = self.disposition.as_ref().map(|(d, path)| {
            let ext = if ext == "jpeg" { "jpg" } else { ext };
            d.header(ext, path)
        });
        let (mut headers, body, etag, note, deterministic) = match res.outcome {
            Outcome::Info(json) => {
                let etag = headers::variant_etag(&json);
                let h = respond::stored_headers(
                    &self.header,
                    "application/json",
                    Some(&etag),
                    st.vary(),
                );
                (h, json, Some(etag), "info".to_string(), true)
            }
            Outcome::Transformed {
                format: out, bytes, ..
            } => {
                record_transformed(self.format, out, n, bytes.len(), res.ran.as_secs_f64());
                let etag = headers::variant_etag(&bytes);
                let h = respond::stored_headers(&self.header, out.mime(), Some(&etag), st.vary());
                (h, bytes, Some(etag), out.name().to_string(), true)
            }
            Outcome::Original(reason) => {
                record_original(self.format.name(), reason, n, n);
                let etag = self
                    .header
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // The type comes from the bytes, never from the origin's or a remote
                // source's Content-Type (a JPEG-looking HTML page stays an image to clients).
                let h = respond::stored_headers(
                    &self.header,
                    self.format.mime(),
                    etag.as_deref(),
                    st.vary(),
                );
                let transient = is_transient(reason);
                let note = format!("original; reason={}", reason.label());
                (h, self.body.clone(), etag, note, !transient)
            }
        };
        if let Some(d) = disposition {
            headers.push(("content-disposition".into(), d.into_bytes()));
        }
        let hold = st.cfg.cache.hold_limit();
        let ttl = self.ttl.unwrap_or_default();
        // A source with a validator keeps its variants past freshness (never past retention):
        // a stale variant is revalidated with the origin instead of fetched and made again.
        let source_etag = match self.remote {
            true => None,
            false => self
                .header
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        let validated = !self.remote
            && (source_etag.is_some() || self.header.contains_key(header::LAST_MODIFIED));
        let stale = match validated {
            true => hold,
            false => policy::stale_if_error(&self.header, st.cfg.cache.stale_if_error.get()),
        };
        let e = Entry {
            status: 200,
            headers,
            body,
            etag,
            note,
            source: self.source.clone(),
            created: self.fetched_at,
            fresh_until: policy::expires_at(self.fetched_at, ttl, hold),
            expires: policy::expires_at(self.fetched_at, ttl.saturating_add(stale), hold),
            source_bytes: n as u64,
            source_format: self.format.name().to_string(),
            source_etag,
            origin_age: policy::age(&self.header),
        };
        (Arc::new(e), deterministic && self.ttl.is_some())
    }
}

/// Whether the cause of an original may pass (then it is not remembered).
fn is_transient(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Timeout | Reason::QueueTimeout | Reason::EncodeFailed | Reason::Overloaded
    )
}

/// Why a watermarked variant is not answered: the image could not be marked, and the
/// original is no answer.
pub(super) fn withheld_message(reason: Reason) -> String {
    format!(
        "pixgate: the image could not be watermarked ({}), and is not sent without its watermark",
        reason.label()
    )
}
