//! A stored variant: the body, the response headers to replay, where it came from, and its
//! lifetime. Also the compact binary form of its metadata that the disk tier seals.

use super::key::Source;
use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most surrogate keys one entry carries (more are dropped when stored).
pub const MAX_TAGS: usize = 64;

/// One cached response.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The response status (200 for variants and uploads; the shield stores others too).
    pub status: u16,
    /// Response headers to replay, in order (no Content-Length, Age, Via or cache-status
    /// header: those are written per response).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Bytes,
    /// The ETag the headers carry, for `If-None-Match`.
    pub etag: Option<String>,
    /// The `X-Pixgate` note (`avif`, `original; reason=not_smaller`, ...).
    pub note: String,
    /// Where it came from (purge selects on this).
    pub source: Source,
    /// When its source was fetched: the start of its retention.
    pub created: SystemTime,
    /// Until when it is fresh: served as a hit before this, and after it only in place of an
    /// origin error (`stale-if-error`) until `expires`. At most `expires`.
    pub fresh_until: SystemTime,
    /// When it stops being servable at all and is removed (at most `created + max_retention`).
    pub expires: SystemTime,
    /// The origin's `Age` when it was fetched, in seconds.
    pub origin_age: u64,
    /// Size of the source image it was made from (metering: savings on every hit).
    pub source_bytes: u64,
    /// The source's sniffed format name (`jpeg`, `png`, ...; `unknown`).
    pub source_format: String,
    /// The source's `ETag` when it differs from the entry's (a transformed variant): what a
    /// stale variant is revalidated with.
    pub source_etag: Option<String>,
}

/// A stored header list as a map (invalid names or values, which stored lists never hold,
/// skipped).
pub fn header_map(list: &[(String, Vec<u8>)]) -> http::HeaderMap {
    let mut m = http::HeaderMap::new();
    for (k, v) in list {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_bytes(v),
        ) {
            m.append(k, v);
        }
    }
    m
}

impl Entry {
    /// Bytes this entry costs in memory (body + headers + a fixed overhead).
    pub fn weight(&self) -> u32 {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 32)
            .sum();
        let tags: usize = self.source.tags.iter().map(|t| t.len() + 24).sum();
        let n = self.body.len() + h + tags + self.note.len() + self.source.path.len() + 256;
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The first stored value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether it may be served as a hit at `now` (not only as a stale stand-in).
    pub fn fresh(&self, now: SystemTime) -> bool {
        now < self.fresh_until
    }

    /// The `Age` to send at `now`.
    pub fn age(&self, now: SystemTime) -> u64 {
        self.origin_age
            + now
                .duration_since(self.created)
                .unwrap_or_default()
                .as_secs()
    }

    /// Encodes everything but the body (the disk tier seals this and the body separately).
    pub fn encode_meta(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(256);
        put_u64(&mut w, millis(self.created));
        put_u64(&mut w, millis(self.expires));
        put_u64(&mut w, millis(self.fresh_until));
        put_u64(&mut w, self.origin_age);
        put_u64(&mut w, self.source_bytes);
        put_bytes(&mut w, self.source_format.as_bytes());
        put_bytes(&mut w, self.source.host.as_bytes());
        put_bytes(&mut w, self.source.path.as_bytes());
        put_bytes(&mut w, self.note.as_bytes());
        put_bytes(&mut w, self.etag.as_deref().unwrap_or("").as_bytes());
        put_u64(&mut w, self.headers.len() as u64);
        for (k, v) in &self.headers {
            put_bytes(&mut w, k.as_bytes());
            put_bytes(&mut w, v);
        }
        put_u64(&mut w, u64::from(self.status));
        put_bytes(&mut w, self.source_etag.as_deref().unwrap_or("").as_bytes());
        put_u64(&mut w, self.source.tags.len() as u64);
        for t in &self.source.tags {
            put_bytes(&mut w, t.as_bytes());
        }
        w
    }

    /// Decodes [`Entry::encode_meta`] output and attaches `body`. `None` on any malformation.
    pub fn decode_meta(mut r: &[u8], body: Bytes) -> Option<Entry> {
        let created = from_millis(get_u64(&mut r)?);
        let expires = from_millis(get_u64(&mut r)?);
        let fresh_until = from_millis(get_u64(&mut r)?);
        let origin_age = get_u64(&mut r)?;
        let source_bytes = get_u64(&mut r)?;
        let source_format = get_string(&mut r)?;
        let host = get_string(&mut r)?;
        let path = get_string(&mut r)?;
        let note = get_string(&mut r)?;
        let etag = get_string(&mut r)?;
        let n = get_u64(&mut r)?;
        if n > 1024 {
            return None;
        }
        let mut headers = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let k = get_string(&mut r)?;
            let v = get_bytes(&mut r)?.to_vec();
            headers.push((k, v));
        }
        let status = u16::try_from(get_u64(&mut r)?).ok()?;
        let source_etag = get_string(&mut r)?;
        let n = get_u64(&mut r)?;
        if n > MAX_TAGS as u64 {
            return None;
        }
        let mut tags = Vec::with_capacity(n as usize);
        for _ in 0..n {
            tags.push(get_string(&mut r)?);
        }
        if !r.is_empty() {
            return None;
        }
        Some(Entry {
            status,
            headers,
            body,
            etag: (!etag.is_empty()).then_some(etag),
            note,
            source: Source { host, path, tags },
            created,
            fresh_until,
            expires,
            origin_age,
            source_bytes,
            source_format,
            source_etag: (!source_etag.is_empty()).then_some(source_etag),
        })
    }
}

/// Milliseconds since the Unix epoch (0 for earlier times).
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The inverse of [`millis`].
pub fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u64(w, b.len() as u64);
    w.extend_from_slice(b);
}

fn get_u64(r: &mut &[u8]) -> Option<u64> {
    let (head, rest) = r.split_first_chunk::<8>()?;
    *r = rest;
    Some(u64::from_le_bytes(*head))
}

fn get_bytes<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = usize::try_from(get_u64(r)?).ok()?;
    if n > r.len() {
        return None;
    }
    let (b, rest) = r.split_at(n);
    *r = rest;
    Some(b)
}

fn get_string(r: &mut &[u8]) -> Option<String> {
    String::from_utf8(get_bytes(r)?.to_vec()).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An entry for tests: `body` from `path`, fetched at `created`, expiring after `ttl`.
    pub fn sample(path: &str, body: &'static [u8], created: SystemTime, ttl: Duration) -> Entry {
        Entry {
            status: 200,
            headers: vec![
                ("content-type".into(), b"image/webp".to_vec()),
                ("etag".into(), b"\"pg-1\"".to_vec()),
            ],
            body: Bytes::from_static(body),
            etag: Some("\"pg-1\"".into()),
            note: "webp".into(),
            source: Source {
                host: "example.com".into(),
                path: path.into(),
                tags: vec!["product-1".into()],
            },
            created,
            fresh_until: created + ttl,
            expires: created + ttl,
            origin_age: 3,
            source_bytes: 12_345,
            source_format: "jpeg".into(),
            source_etag: Some("\"src-1\"".into()),
        }
    }

    #[test]
    fn meta_round_trips() {
        let t = from_millis(1_700_000_000_123);
        let e = sample("/a/b.jpg", b"body", t, Duration::from_secs(60));
        let m = e.encode_meta();
        assert_eq!(Entry::decode_meta(&m, e.body.clone()), Some(e.clone()));
        for cut in 0..m.len() {
            assert_eq!(
                Entry::decode_meta(&m[..cut], e.body.clone()),
                None,
                "cut at {cut}"
            );
        }
        assert_eq!(e.age(t + Duration::from_secs(10)), 13);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Entry::decode_meta(&b, Bytes::new());
        }
    }
}
